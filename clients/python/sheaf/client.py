"""
client.py - Sheaf (the service) and Job (one job of it): upload, submit,
wait with a progress bar (events, else ?wait= long polls), results
downloaded resumably and checked against the manifest (else the announced
length), to_pandas with the job's column types, list, cancel.

The routes are those of the API contract (SPEC section 3). Where the
contract leaves the wire shape open, this client assumes (and the service
should answer):

  POST /v1/datasets?name=N   the raw body, with the header
                             "Content-Digest: sha-256=:<base64>:" (RFC 9530)
                             when the SHA-256 is known before sending;
                             201 {"id", "name", "bytes", "sha256" (hex)}
  GET /v1/jobs/{id}/events   text/event-stream; each event's data is a JSON
                             object holding "status" and/or "progress" (the
                             job object's fields, or a whole job object);
                             the stream ends after the terminal state;
                             Last-Event-ID resumes
  GET /v1/jobs/{id}/manifest {"bytes", "rows", "sha256"?, "parts": [{"bytes",
                             "rows", "sha256" (hex)}, ...]}: the result body
                             is the parts in order
"""

from __future__ import annotations

import base64
import http.client as http_client
import hashlib
import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import (IO, Any, Dict, Iterator, List, Mapping, Optional, Union)
from urllib.parse import quote, urlencode

from ._http import (IntegrityError, JobFailedError, SheafConnectionError,
                    SheafError, Transport, is_timeout)
from .progress import TERMINAL, make_bar
from .sse import Event, iter_events

DEFAULT_URL = "http://127.0.0.1:8080"
CHUNK = 1 << 20
POLL_LIVE_S = 1     # ?wait= while a progress bar shows
POLL_QUIET_S = 30   # ?wait= otherwise
EVENTS_IDLE_S = 30  # a stream silent this long is reopened
DTYPES = {"int": "Int64", "float": "float64", "string": "object",
          "bool": "boolean"}


def _qid(job_id: str) -> str:
    if not job_id:
        raise ValueError("empty job id")
    return quote(str(job_id), safe="")


class Sheaf:
    """A sheaf service.

    Args:
        url:     the service, default $SHEAF_URL, else http://127.0.0.1:8080
        token:   bearer token, default $SHEAF_TOKEN (none when unset)
        timeout: seconds a request (one read of a reply) may take
    """

    def __init__(self, url: Optional[str] = None,
                 token: Optional[str] = None, timeout: float = 60.0) -> None:
        url = url or os.environ.get("SHEAF_URL") or DEFAULT_URL
        if token is None:
            token = os.environ.get("SHEAF_TOKEN") or None
        self.http = Transport(url, token, timeout)

    @property
    def url(self) -> str:
        """The base URL."""
        return self.http.url

    def __repr__(self) -> str:
        return f"Sheaf({self.url!r})"

    # -- datasets ---------------------------------------------------------

    def upload(self, path_or_fileobj: Union[str, os.PathLike, IO[bytes]],
               name: Optional[str] = None,
               progress: bool = False) -> Dict[str, Any]:
        """Upload a file as a dataset, streamed, and return the dataset
        ({"id", "name", "bytes", "sha256"}); a job names it with
        {"input": {"dataset": ID}}.

        A path (or a seekable file) is hashed first and its SHA-256 sent
        in the Content-Digest header, so the service can refuse a body
        that arrived damaged; any file's SHA-256 is also computed while
        sending and compared with the one the service answers
        (IntegrityError when they differ). 'name' defaults to the file's
        base name.
        """
        own = isinstance(path_or_fileobj, (str, os.PathLike))
        f: IO[bytes] = (open(path_or_fileobj, "rb") if own
                        else path_or_fileobj)  # type: ignore[assignment]
        try:
            if name is None:
                name = os.path.basename(str(path_or_fileobj if own else
                                            getattr(f, "name", "")))
            if not name:
                raise ValueError("upload of a file object needs a name")
            headers = self.http.headers(
                {"Content-Type": "application/octet-stream"})
            size = None
            digest = None
            try:
                start = f.tell()
                h = hashlib.sha256()
                for block in iter(lambda: f.read(CHUNK), b""):
                    h.update(block)
                size = f.tell() - start
                f.seek(start)
                digest = h.digest()
            except (AttributeError, OSError, io.UnsupportedOperation):
                pass
            if digest is not None:
                headers["Content-Length"] = str(size)
                headers["Content-Digest"] = (
                    "sha-256=:" + base64.b64encode(digest).decode() + ":")
            body = _HashingReader(f, size, progress)
            path = "/v1/datasets?" + urlencode({"name": name})
            with self.http.open("POST", path, body if size is not None
                                else iter(body), headers,
                                retry=False) as resp:
                raw = resp.read()
            body.close_bar()
            ds = json.loads(raw.decode("utf-8"))
            sent = body.hash.hexdigest()
            if ds.get("sha256") and str(ds["sha256"]).lower() != sent:
                raise IntegrityError(f"the service stored SHA-256 "
                                     f"{ds['sha256']}, the file's is {sent}")
            return ds
        finally:
            if own:
                f.close()

    def datasets(self) -> List[Dict[str, Any]]:
        """The uploaded datasets."""
        r = self.http.json("GET", "/v1/datasets")
        return r["datasets"] if isinstance(r, dict) else r

    def dataset(self, dataset_id: str) -> Dict[str, Any]:
        """One dataset."""
        return self.http.json("GET", "/v1/datasets/" + _qid(dataset_id))

    def delete_dataset(self, dataset_id: str) -> None:
        """Remove a dataset."""
        self.http.json("DELETE", "/v1/datasets/" + _qid(dataset_id))

    # -- jobs --------------------------------------------------------------

    def submit(self, spec: Union[Mapping[str, Any], str, os.PathLike],
               wait: bool = False, idempotency_key: Optional[str] = None,
               timeout: Optional[float] = None,
               progress: bool = True) -> "Job":
        """Submit a job and return it.

        Args:
            spec: the job spec, a dict, or the path of a JSON file
            wait: wait for the job to end (Job.wait with 'timeout' and
                  'progress'); it is returned whatever its end
            idempotency_key: the Idempotency-Key header: the same key and
                  spec give back the same job; with it the request is also
                  retried after a broken connection
        Raises SheafError with the API's code, message and path (an
        invalid spec is "invalid_spec" with the field at fault).
        """
        if not isinstance(spec, Mapping):
            spec = json.loads(Path(spec).read_text(encoding="utf-8"))
        headers = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        data = self.http.json("POST", "/v1/jobs", dict(spec), headers,
                              retry=idempotency_key is not None)
        job = Job(self, data)
        if wait:
            job.wait(timeout=timeout, progress=progress)
        return job

    def validate(self, spec: Mapping[str, Any]) -> Dict[str, Any]:
        """The plan of 'spec' (schemas, partitions, stages); nothing runs."""
        return self.http.json("POST", "/v1/jobs/validate", dict(spec),
                              retry=True)

    def job(self, job_id: str) -> "Job":
        """The job 'job_id', as it is now."""
        return Job(self, self.http.json("GET", "/v1/jobs/" + _qid(job_id)))

    def jobs(self, status: Optional[str] = None, name: Optional[str] = None,
             limit: Optional[int] = None) -> List["Job"]:
        """Jobs, newest first, following the pages: only those in 'status'
        and named 'name' when given, at most 'limit' when given."""
        return list(self.iter_jobs(status, name, limit))

    def iter_jobs(self, status: Optional[str] = None,
                  name: Optional[str] = None,
                  limit: Optional[int] = None) -> Iterator["Job"]:
        """jobs(), one page at a time."""
        cursor = None
        n = 0
        while limit is None or n < limit:
            q: Dict[str, Any] = {}
            if status:
                q["status"] = status
            if name:
                q["name"] = name
            if limit is not None:
                q["limit"] = min(limit - n, 1000)
            if cursor:
                q["cursor"] = cursor
            page = self.http.json("GET", "/v1/jobs?" + urlencode(q))
            for j in page.get("jobs", []):
                n += 1
                yield Job(self, j)
                if limit is not None and n >= limit:
                    return
            nxt = page.get("next_cursor")
            if not nxt or nxt == cursor:
                return
            cursor = nxt


class Job:
    """One job. `data` is the job object as last seen; `id`, `status`,
    `progress`, `error` read from it; refresh() asks again."""

    def __init__(self, sheaf: Sheaf, data: Mapping[str, Any]) -> None:
        self.sheaf = sheaf
        self.data: Dict[str, Any] = dict(data)
        self.id: str = str(self.data["id"])
        self._plan: Optional[Dict[str, Any]] = None

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status}>"

    @property
    def status(self) -> str:
        """queued, running, succeeded, failed or cancelled."""
        return str(self.data.get("status"))

    @property
    def done(self) -> bool:
        """The job has ended (succeeded, failed or cancelled)."""
        return self.status in TERMINAL

    @property
    def progress(self) -> Dict[str, Any]:
        """partitions_total/done/running/failed, rows_in, bytes_in, ..."""
        return dict(self.data.get("progress") or {})

    @property
    def error(self) -> Any:
        """Why it failed (None unless it did)."""
        return self.data.get("error")

    def _path(self, tail: str = "") -> str:
        return f"/v1/jobs/{_qid(self.id)}{tail}"

    def refresh(self, wait: Optional[float] = None) -> "Job":
        """Ask for the job again; with 'wait', hold until it ends or 'wait'
        seconds pass (the ?wait= long poll, at most 300)."""
        tail = f"?wait={int(wait)}" if wait else ""
        self.data = self.sheaf.http.json(
            "GET", self._path(tail),
            timeout=None if not wait else wait + self.sheaf.http.timeout)
        return self

    # -- waiting -----------------------------------------------------------

    def events(self, last_event_id: Optional[str] = None,
               idle_timeout: float = EVENTS_IDLE_S) -> Iterator[Event]:
        """The job's server-sent events (progress and state changes) until
        it ends, reconnecting with Last-Event-ID after a broken or silent
        connection. Raises SheafError (not_implemented) when the service
        has no event stream."""
        return self._event_stream(last_event_id, idle_timeout, None)

    def _event_stream(self, last_event_id: Optional[str],
                      idle_timeout: float,
                      deadline: Optional[float]) -> Iterator[Event]:
        """events(), raising TimeoutError past 'deadline' (monotonic)."""
        http = self.sheaf.http
        failures = 0
        while True:
            headers = http.headers(accept="text/event-stream")
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            resp = http.open("GET", self._path("/events"), None, headers,
                             timeout=idle_timeout, retry=True)
            ended = False
            try:
                with resp:
                    for ev in iter_events(resp):
                        failures = 0
                        if ev.id is not None:
                            last_event_id = ev.id
                        yield ev
                        d = ev.json()
                        if ev.event in ("end", "done") or (
                                isinstance(d, dict)
                                and d.get("status") in TERMINAL):
                            ended = True
                            return
            except (OSError, http_client.HTTPException) as e:
                if not is_timeout(e):
                    failures += 1
                    if failures >= 4:
                        raise SheafConnectionError(
                            f"events of job {self.id}: {e}") from None
            if ended:
                return
            # The stream ended or went silent before the end: reopen it
            # (the job may have ended in between; the caller checks).
            self._left(deadline)
            time.sleep(0.25)  # a stream that ends at once is not hammered
            self.refresh()
            if self.done:
                return

    def wait(self, timeout: Optional[float] = None,
             progress: bool = True) -> "Job":
        """Wait until the job ends and return it (whatever the end: see
        `status`; result() and to_pandas() raise JobFailedError for a
        failed one). Shows a progress bar on stderr (tqdm when installed,
        else a plain one-line bar) unless 'progress' is False. Follows the
        event stream; where the service has none, long polls with ?wait=.
        Raises TimeoutError after 'timeout' seconds (the job keeps
        running)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = make_bar(progress)
        try:
            bar.update(self.data)
            if not self.done and not self._follow_events(bar, deadline):
                self._poll(bar, deadline, POLL_LIVE_S if progress
                           else POLL_QUIET_S)
            bar.update(self.data)
        finally:
            bar.close()
        return self

    def _left(self, deadline: Optional[float]) -> Optional[float]:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"job {self.id} still {self.status} after "
                               f"the timeout; it keeps running")
        return left

    def _follow_events(self, bar: Any, deadline: Optional[float]) -> bool:
        """Wait on the event stream. False when the service has none."""
        try:
            idle = EVENTS_IDLE_S
            left = self._left(deadline)
            if left is not None:
                idle = max(min(idle, left), 0.5)
            for ev in self._event_stream(None, idle, deadline):
                d = ev.json()
                if isinstance(d, dict):
                    if "id" in d and "status" in d and d["id"] == self.id:
                        self.data = d
                    elif isinstance(d.get("status"), str):
                        self.data["status"] = d["status"]
                    if isinstance(d.get("progress"), dict):
                        self.data["progress"] = d["progress"]
                    bar.update(d)
                self._left(deadline)
        except SheafConnectionError:
            return False  # broken too often: the long polls ride it out
        except SheafError as e:
            if e.status in (404, 405, 406, 501) or e.not_implemented:
                if e.status == 404 and e.code != "not_implemented":
                    # an unknown job, not an unknown route: say so
                    self.refresh()
                return False
            raise
        self.refresh()  # the final object: its error, its result's bytes
        return True

    def _poll(self, bar: Any, deadline: Optional[float],
              step_s: int) -> None:
        while not self.done:
            left = self._left(deadline)
            w = step_s if left is None else max(1, min(step_s, int(left)))
            self.refresh(wait=w)
            bar.update(self.data)

    # -- results -----------------------------------------------------------

    def _require_succeeded(self) -> None:
        if self.status != "succeeded":
            self.refresh()
        if self.status in ("failed", "cancelled"):
            raise JobFailedError(self.data)
        if self.status != "succeeded":
            raise SheafError(409, "wrong_state",
                             f"job {self.id} is {self.status}: no result "
                             f"yet (wait() first)")

    def manifest(self) -> Optional[Dict[str, Any]]:
        """The result's manifest (parts with bytes, rows, SHA-256), or None
        when the service does not serve manifests yet."""
        try:
            return self.sheaf.http.json("GET", self._path("/manifest"))
        except SheafError as e:
            if e.not_implemented:
                return None
            raise

    def _checker(self) -> "_Checker":
        return _Checker(self.manifest(), (self.data.get("result") or {})
                        .get("bytes"), self.id)

    def _open_result(self, start: int = 0, etag: Optional[str] = None) -> Any:
        headers = self.sheaf.http.headers(accept="*/*")
        if start > 0:
            headers["Range"] = f"bytes={start}-"
            if etag:
                headers["If-Range"] = etag
        return self.sheaf.http.open("GET", self._path("/result"), None,
                                    headers, retry=True)

    def result(self, path: Union[str, os.PathLike, None] = None,
               verify: bool = True) -> Union[bytes, Path]:
        """Download the result: to 'path' (returned as a Path), else into
        memory (the bytes returned). Checked against the manifest's
        SHA-256s when the service serves one, else against the job's
        result bytes (IntegrityError when it does not match). To a path,
        it goes to PATH.part first, renamed once whole and checked; a
        broken connection resumes with Range (also a later call finds
        the .part and goes on from it)."""
        self._require_succeeded()
        check = self._checker() if verify else _Checker(None, None, self.id)
        if path is None:
            buf = io.BytesIO()
            self._download(buf, 0, None)
            data = buf.getvalue()
            check.feed(data)
            check.finish()
            return data
        dest = Path(path)
        part = Path(str(dest) + ".part")
        tag = Path(str(dest) + ".part.etag")
        start = part.stat().st_size if part.exists() else 0
        etag = tag.read_text().strip() if tag.exists() else None
        if start and not etag:
            start = 0  # no way to tell it is the same result: start over
        with open(part, "ab" if start else "wb") as f:
            self._download(f, start, etag, tag)
        try:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    check.feed(block)
            check.finish()
        except IntegrityError:
            part.unlink()
            tag.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        tag.unlink(missing_ok=True)
        return dest

    def _download(self, f: IO[bytes], start: int, etag: Optional[str],
                  tag: Optional[Path] = None) -> None:
        """Write the result from byte 'start' on to 'f' (which holds the
        first 'start' bytes), resuming after a broken connection."""
        pos = start
        for attempt in range(1, 5):
            try:
                with self._open_result(pos, etag) as resp:
                    if resp.status == 200 and pos > 0:
                        # The server sends it all again: start over.
                        f.seek(0)
                        f.truncate()
                        pos = 0
                    new = resp.headers.get("ETag")
                    if new and new != etag:
                        etag = new
                        if tag is not None:
                            tag.write_text(etag)
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        f.write(block)
                        pos += len(block)
                    # http.client ends a body cut short quietly.
                    if getattr(resp, "length", None):
                        raise http_client.IncompleteRead(b"", resp.length)
                    return
            except SheafError as e:
                if e.status != 416 or pos == 0:
                    raise
                # Nothing past what we hold: start again from the top.
                f.seek(0)
                f.truncate()
                pos, etag = 0, None
            except (OSError, http_client.HTTPException) as e:
                if attempt == 4 or not etag:
                    raise SheafConnectionError(
                        f"result of job {self.id}: the download broke "
                        f"after {pos} bytes: {e}") from None
                f.flush()
                time.sleep(0.5 * attempt)

    def result_stream(self, verify: bool = True) -> IO[bytes]:
        """The result as a binary stream, read as it arrives; at its end
        it is checked as result() checks (IntegrityError)."""
        self._require_succeeded()
        check = self._checker() if verify else _Checker(None, None, self.id)
        return _CheckedStream(self._open_result(), check)

    def plan(self) -> Dict[str, Any]:
        """The job's plan (POST /v1/jobs/validate with its spec): the
        schemas of its input, of each step and of its output."""
        if self._plan is None:
            spec = self.data.get("spec")
            if not isinstance(spec, dict):
                spec = self.refresh().data.get("spec")
            spec = {k: v for k, v in dict(spec or {}).items()
                    if k != "callback"}  # its secret is not shown back
            self._plan = self.sheaf.validate(spec)
        return self._plan

    def schema(self) -> List[Dict[str, str]]:
        """The output's columns: [{"name", "type"}, ...] (int, float,
        string, bool)."""
        out = self.data.get("schema") or (self.plan().get("output") or {}) \
            .get("schema")
        return list(out or [])

    def dtypes(self) -> Dict[str, str]:
        """pandas dtypes of the output's columns: int -> Int64 (nullable:
        ints stay ints), float -> float64, string -> object (text as
        written: leading zeros stay), bool -> boolean."""
        return {c["name"]: DTYPES.get(c.get("type"), "object")
                for c in self.schema()}

    def to_pandas(self, **kwargs: Any) -> Any:
        """The result as a pandas DataFrame, streamed into read_csv (or
        read_json(lines=True) for a jsonl output) with the job's column
        types (see dtypes()); an empty CSV field is null (NA), other text
        ("NA", "null") stays text. Extra keyword arguments go to pandas.
        Needs pandas (pip install pandas, or Debian's python3-pandas)."""
        import pandas as pd  # optional: only this method needs it
        self._require_succeeded()
        try:
            dtypes = self.dtypes()
            plan_out = (self.plan().get("output") or {})
        except SheafError as e:
            warnings.warn(f"sheaf: the types of job {self.id}'s columns are "
                          f"unknown ({e}); pandas will guess them")
            dtypes, plan_out = {}, {}
        spec_out = (self.data.get("spec") or {}).get("output") or {}
        fmt = plan_out.get("format") or spec_out.get("format") or "csv"
        comp = plan_out.get("compression") or spec_out.get("compression")
        compression = "gzip" if comp == "gzip" else None
        with self.result_stream() as stream:
            if fmt == "jsonl":
                kw = dict(lines=True, dtype=dtypes or True,
                          convert_dates=False, keep_default_dates=False,
                          compression=compression)
                kw.update(kwargs)
                df = pd.read_json(stream, **kw)
                for col, t in dtypes.items():
                    if col in df.columns and t != "object":
                        df[col] = df[col].astype(t)
                return df
            kw = dict(dtype=dtypes or None, keep_default_na=False,
                      na_values=[""], compression=compression)
            kw.update(kwargs)
            return pd.read_csv(stream, **kw)

    # -- the rest ----------------------------------------------------------

    def tasks(self) -> List[Dict[str, Any]]:
        """One entry per partition task: stage, partition, state, attempts,
        rows, bytes, times, worker, error. Follows the list's pages."""
        out: List[Dict[str, Any]] = []
        cursor = None
        while True:
            path = self._path("/tasks")
            if cursor is not None:
                path += "?cursor=" + quote(cursor, safe="")
            page = self.sheaf.http.json("GET", path)
            out.extend(page["tasks"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def artifacts(self) -> List[Any]:
        """The names (and sizes) of the job's extra outputs."""
        return self.sheaf.http.json("GET",
                                    self._path("/artifacts"))["artifacts"]

    def artifact(self, name: str) -> bytes:
        """One extra output, as bytes."""
        with self.sheaf.http.open(
                "GET", self._path("/artifacts/" + quote(name, safe="")),
                None, self.sheaf.http.headers(accept="*/*"),
                retry=True) as resp:
            return resp.read()

    def report(self) -> Dict[str, Any]:
        """The job's report artifact (train_naive_bayes: accuracy, n_train,
        n_test, per-class precision/recall/f1/support, confusion), parsed.
        SheafError not_found when the job has none."""
        return json.loads(self.artifact("report").decode("utf-8"))

    def cancel(self) -> "Job":
        """Ask the service to stop the job (it ends cancelled); returns it
        as the service answered."""
        d = self.sheaf.http.json("POST", self._path("/cancel"))
        if isinstance(d, dict) and d.get("id"):
            self.data = d
        return self

    def delete(self) -> None:
        """Remove an ended job and its files."""
        self.sheaf.http.json("DELETE", self._path())


class _Checker:
    """Checks bytes fed in order against a manifest (each part's SHA-256
    and length, and the whole's when given) or, without one, the expected
    length."""

    def __init__(self, manifest: Optional[Mapping[str, Any]],
                 length: Optional[int], job_id: str) -> None:
        self.job_id = job_id
        self.parts: List[Mapping[str, Any]] = []
        self.whole: Optional[str] = None
        self.length = length if isinstance(length, int) else None
        if manifest:
            self.parts = [p for p in manifest.get("parts") or []
                          if isinstance(p, Mapping)]
            self.whole = manifest.get("sha256") or None
            if isinstance(manifest.get("bytes"), int):
                self.length = manifest["bytes"]
            elif self.parts:
                self.length = sum(int(p.get("bytes", 0)) for p in self.parts)
        self.n = 0
        self.all = hashlib.sha256()
        self.i = 0          # the part being read
        self.in_part = 0    # its bytes read so far
        self.h = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        self.n += len(data)
        self.all.update(data)
        view = memoryview(data)
        while view and self.i < len(self.parts):
            want = int(self.parts[self.i].get("bytes", 0)) - self.in_part
            take = view[:want]
            self.h.update(take)
            self.in_part += len(take)
            view = view[len(take):]
            if self.in_part == int(self.parts[self.i].get("bytes", 0)):
                self._end_part()

    def _end_part(self) -> None:
        p = self.parts[self.i]
        want = str(p.get("sha256") or "").lower()
        got = self.h.hexdigest()
        if want and want != got:
            raise IntegrityError(f"result of job {self.job_id}: part "
                                 f"{self.i} has SHA-256 {got}, the manifest "
                                 f"says {want}")
        self.i += 1
        self.in_part = 0
        self.h = hashlib.sha256()

    def finish(self) -> None:
        while self.i < len(self.parts) and int(
                self.parts[self.i].get("bytes", 0)) == 0:
            self._end_part()
        if self.length is not None and self.n != self.length:
            raise IntegrityError(f"result of job {self.job_id}: "
                                 f"{self.n} bytes, expected {self.length}")
        if self.whole and self.whole.lower() != self.all.hexdigest():
            raise IntegrityError(f"result of job {self.job_id}: SHA-256 "
                                 f"{self.all.hexdigest()}, the manifest "
                                 f"says {self.whole}")


class _CheckedStream(io.RawIOBase):
    """A response read through a _Checker; checked at its end."""

    def __init__(self, resp: Any, check: _Checker) -> None:
        self.resp, self.check, self.ended = resp, check, False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.resp.read(len(b))
        if not data:
            if not self.ended:
                self.ended = True
                self.check.finish()
            return 0
        self.check.feed(data)
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self.resp.close()
        finally:
            super().close()


class _HashingReader:
    """An upload's body: reads the file in blocks, hashing and counting
    (and drawing a byte bar when asked)."""

    def __init__(self, f: IO[bytes], size: Optional[int],
                 progress: bool) -> None:
        self.f, self.size = f, size
        self.hash = hashlib.sha256()
        self.sent = 0
        self.bar = make_bar(progress, total_bytes=size) if progress else None

    def read(self, n: int = CHUNK) -> bytes:
        data = self.f.read(n if n and n > 0 else CHUNK)
        self.hash.update(data)
        self.sent += len(data)
        if self.bar is not None:
            self.bar.update({"status": "uploading", "bytes_in": self.sent})
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(CHUNK), b"")

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
