"""
progress.py - the progress bar of Job.wait: tqdm when it is installed, a
plain one-line bar otherwise (redrawn with a carriage return on a terminal
or in a notebook; in a log, one line per change of state).
"""

from __future__ import annotations

import sys
import time
from typing import Any, IO, Mapping, Optional

TERMINAL = ("succeeded", "failed", "cancelled")
REDRAW_S = 0.1  # a live line is redrawn at most this often


def fmt_duration(s: float) -> str:
    """'42s', '3m05s', '1h02m'."""
    s = int(max(s, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s // 60 % 60:02d}m"


def fmt_count(n: float) -> str:
    """1234 -> '1234', 1234567 -> '1.2M'."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div * 10:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


class Progress:
    """What a bar shows: partitions done/total, rows, MB/s, elapsed, ETA
    and the state, from job objects or event payloads."""

    def __init__(self, total_bytes: Optional[int] = None) -> None:
        self.total_bytes = total_bytes  # set: a byte bar (an upload)
        self.start = time.monotonic()
        self.status = "queued"
        self.done = self.total = self.failed = 0
        self.rows_in = self.bytes_in = 0

    def update(self, job: Mapping[str, Any]) -> None:
        """Take what 'job' (a job object or an event's data) says."""
        if isinstance(job.get("status"), str):
            self.status = job["status"]
        p = job.get("progress")
        p = p if isinstance(p, Mapping) else job
        for key, attr in (("partitions_done", "done"),
                          ("partitions_total", "total"),
                          ("partitions_failed", "failed"),
                          ("rows_in", "rows_in"), ("bytes_in", "bytes_in")):
            v = p.get(key)
            if isinstance(v, (int, float)):
                setattr(self, attr, int(v))

    def line(self, width: int = 20) -> str:
        """'[#####---------------] 4/16 parts 1.2M rows 35.0 MB/s 12s
        ETA 36s running'"""
        el = time.monotonic() - self.start
        if self.total_bytes is not None:
            done, total = self.bytes_in, self.total_bytes
            out = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
        else:
            done, total = self.done, self.total
            out = f"{done}/{total} partitions {fmt_count(self.rows_in)} rows"
        fill = int(done / total * width) if total else 0
        out = f"[{'#' * fill}{'-' * (width - fill)}] " + out
        if el > 0 and self.bytes_in:
            out += f" {self.bytes_in / el / 1e6:.1f} MB/s"
        out += f" {fmt_duration(el)}"
        if 0 < done < total and self.status in ("running", "uploading"):
            out += f" ETA {fmt_duration(el * (total - done) / done)}"
        if self.failed:
            out += f" {self.failed} failed"
        return out + f" {self.status}"


class PlainBar:
    """The bar without tqdm."""

    def __init__(self, file: IO[str], live: bool,
                 total_bytes: Optional[int] = None) -> None:
        self.file, self.live = file, live
        self.p = Progress(total_bytes)
        self.last_status: Optional[str] = None
        self.drawn = 0
        self.last_draw = 0.0

    def update(self, job: Mapping[str, Any]) -> None:
        self.p.update(job)
        now = time.monotonic()
        if self.live and (self.p.status != self.last_status
                          or now - self.last_draw >= REDRAW_S):
            self.last_draw = now
            text = self.p.line()
            pad = max(self.drawn - len(text), 0)
            self.file.write("\r" + text + " " * pad)
            self.drawn = len(text)
            self.file.flush()
        elif self.p.status != self.last_status:
            self.file.write(self.p.line() + "\n")
            self.file.flush()
        self.last_status = self.p.status

    def close(self) -> None:
        if self.live and self.drawn:
            self.last_status = None
            self.update({})
            self.file.write("\n")
            self.file.flush()
        self.drawn = 0


class TqdmBar:
    """The bar with tqdm: partitions as its unit, the rest as postfix."""

    def __init__(self, tqdm: Any, file: IO[str],
                 total_bytes: Optional[int] = None) -> None:
        self.p = Progress(total_bytes)
        if total_bytes is not None:
            self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True,
                            file=file, leave=True)
        else:
            self.bar = tqdm(total=0, unit="part", file=file, leave=True)

    def update(self, job: Mapping[str, Any]) -> None:
        self.p.update(job)
        if self.p.total_bytes is not None:
            self.bar.n = self.p.bytes_in
            self.bar.refresh()
            return
        if self.bar.total != self.p.total:
            self.bar.total = self.p.total
        self.bar.n = self.p.done
        self.bar.set_postfix_str(f"{fmt_count(self.p.rows_in)} rows "
                                 f"{self.p.status}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class NoBar:
    """progress=False."""

    def update(self, job: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def make_bar(enabled: bool, file: Optional[IO[str]] = None,
             total_bytes: Optional[int] = None) -> Any:
    """A bar with update(job) and close(): tqdm when installed, else the
    plain one, live on a terminal or in a notebook; NoBar when disabled.
    With 'total_bytes', a bar of bytes (update with {"bytes_in": n})."""
    if not enabled:
        return NoBar()
    file = file or sys.stderr
    try:
        from tqdm.auto import tqdm  # type: ignore
        return TqdmBar(tqdm, file, total_bytes)
    except ImportError:
        pass
    try:
        live = file.isatty()
    except (AttributeError, ValueError):
        live = False
    return PlainBar(file, live or "ipykernel" in sys.modules, total_bytes)
