#!/usr/bin/env python3
"""
bench_sheaf.py - the sheaf half of `make bench` (scripts/bench.sh): start a
private sheafd, run the workloads W1-W6 (tests/integration/workloads.py) as
jobs through its HTTP API, and record for each run

  wall       seconds from POST /v1/jobs to the last byte of the result
             downloaded (GET /v1/jobs/{id}?wait= to see it end, then GET
             /v1/jobs/{id}/result streamed to a file)
  rss        peak resident memory (VmHWM) of the largest sheafd worker
             process, and of the sheafd main process (API, scheduler)

Peak RSS: the workers live across jobs, so before each run the peak of
every sheafd process is reset (writing 5 to /proc/PID/clear_refs, Linux
>= 4.0) and, while the job runs, /proc/PID/status of sheafd and of every
descendant is read every 50 ms; a process's VmHWM is the kernel's own
high-water mark, so the sampling interval loses nothing for processes alive
at the end; a process that exits between two reads loses its peak since the
last read. Without the right to reset (not root, not the owner), sheafd is
restarted before each run instead, so every worker starts fresh.

usage: bench_sheaf.py --sheafd BIN --data-root DIR --spool DIR --csv REL
                      --out-dir DIR --json FILE [--workloads "w1 w2"]
                      [--runs N] [--timeout S]
Environment: DATABASE_URL (required), SHEAF_WORKERS, SHEAF_MEMORY_MB, ...
pass through to sheafd. A workload with an environment of its own
(workloads.ENV: W8's SHEAF_MEMORY_MB=64) runs in a sheafd restarted with
it, and the one of the other workloads is restarted after.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import workloads as W  # noqa: E402

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def http(base, method, path, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- processes ------------------------------------------------------------

def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rindex(")") + 2:].split()
            if int(rest[1]) == ppid and rest[0] != "Z":
                out.append(int(d))
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Reads VmHWM of sheafd and its descendants every 'interval' s."""

    def __init__(self, main_pid, interval=0.05):
        super().__init__(daemon=True)
        self.main = main_pid
        self.interval = interval
        self.peak = {}  # pid -> max VmHWM kB seen
        self.stop_ev = threading.Event()

    def sample(self):
        for pid in [self.main] + descendants(self.main):
            kb = vm_hwm_kb(pid)
            if kb is not None and kb > self.peak.get(pid, 0):
                self.peak[pid] = kb

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            self.stop_ev.wait(self.interval)

    def finish(self):
        self.stop_ev.set()
        self.join()
        self.sample()
        main_kb = self.peak.get(self.main, 0)
        workers = {p: kb for p, kb in self.peak.items() if p != self.main}
        return main_kb, workers


class Sheafd:
    def __init__(self, exe, env, log_path):
        self.exe, self.env, self.log_path = exe, env, log_path
        self.proc = None
        self.base = None

    def start(self):
        port = free_port()
        env = dict(self.env, SHEAF_LISTEN=f"127.0.0.1:{port}")
        self.base = f"http://127.0.0.1:{port}"
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.exe], env=env, stdout=logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"sheafd exited with {self.proc.returncode} "
                                 f"at start; see {self.log_path}")
            try:
                if http(self.base, "GET", "/readyz", timeout=2)[0] == 200:
                    # the workers are spawned at start; let them settle
                    time.sleep(0.5)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"sheafd did not become ready in 30 s; see "
                         f"{self.log_path}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---- one run --------------------------------------------------------------

def stage_seconds(tasks):
    """{stage: [seconds of each task]} from GET /v1/jobs/{id}/tasks."""
    from datetime import datetime
    out = {}
    for t in tasks:
        a, b = t.get("started_at"), t.get("finished_at")
        if not a or not b:
            continue
        d = (datetime.fromisoformat(b.replace("Z", "+00:00"))
             - datetime.fromisoformat(a.replace("Z", "+00:00")))
        out.setdefault(t["stage"], []).append(d.total_seconds())
    return out


def run_once(sd, w, rel, out_path, size, timeout, fresh):
    """-> dict(wall, rss_worker_kb, rss_main_kb, status, error, job)."""
    if fresh:
        sd.stop()
        sd.start()
    else:
        for pid in [sd.proc.pid] + descendants(sd.proc.pid):
            reset_hwm(pid)
    sampler = Sampler(sd.proc.pid)
    sampler.start()
    spec = W.spec(w, rel, size, f"bench-{w}-{int(time.time())}")
    res_plan = None
    if w in W.ENV:
        # the plan of the workloads run under their own budget: W8's join
        # strategy and why
        st, raw = http(sd.base, "POST", "/v1/jobs/validate", spec)
        if st == 200:
            res_plan = json.loads(raw)
    t0 = time.monotonic()
    st, raw = http(sd.base, "POST", "/v1/jobs", spec)
    res = {"workload": w, "status": "failed", "error": None}
    if res_plan is not None:
        res["plan"] = res_plan
    try:
        if st != 201:
            try:
                msg = json.loads(raw)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                msg = raw[:300].decode(errors="replace")
            res["status"] = f"rejected ({st})"
            res["error"] = msg
            return res
        job = json.loads(raw)
        jid = job["id"]
        deadline = t0 + timeout
        while job["status"] not in ("succeeded", "failed", "cancelled"):
            left = deadline - time.monotonic()
            if left <= 0:
                http(sd.base, "POST", f"/v1/jobs/{jid}/cancel")
                res["status"] = f"timeout >{timeout}s"
                return res
            st, raw = http(sd.base, "GET",
                           f"/v1/jobs/{jid}?wait={max(1, min(60, int(left)))}",
                           timeout=90)
            if st != 200:
                res["error"] = f"GET job: {st}"
                return res
            job = json.loads(raw)
        res["job"] = {k: job.get(k) for k in ("id", "progress", "error",
                                              "started_at", "finished_at")}
        if job["status"] != "succeeded":
            res["status"] = job["status"]
            res["error"] = job.get("error")
            return res
        req = urllib.request.Request(sd.base + f"/v1/jobs/{jid}/result")
        with _OPENER.open(req, timeout=600) as r, open(out_path, "wb") as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
        res["wall"] = time.monotonic() - t0
        res["status"] = "ok"
        # the engine's own account of each task: spill and peak bytes
        st, raw = http(sd.base, "GET", f"/v1/jobs/{jid}/tasks")
        if st == 200:
            tasks = json.loads(raw).get("tasks", [])
            res["task_list"] = tasks
            res["tasks"] = len(tasks)
            res["spill_bytes"] = sum(t.get("spill_bytes") or 0 for t in tasks)
            res["task_peak_bytes"] = max(
                [t.get("peak_bytes") or 0 for t in tasks], default=0)
        http(sd.base, "DELETE", f"/v1/jobs/{jid}")
        return res
    finally:
        main_kb, workers = sampler.finish()
        res["rss_main_kb"] = main_kb
        res["rss_worker_kb"] = max(workers.values(), default=0)
        res["workers_seen"] = len(workers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheafd", required=True)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--spool", required=True)
    ap.add_argument("--csv", required=True, help="path under the data root")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--workloads", default=" ".join(W.ALL))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--partition-size", default="64MiB")
    a = ap.parse_args()

    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("bench_sheaf.py: DATABASE_URL is not set")
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    Path(a.spool).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SHEAF_DATA_ROOT=a.data_root, SHEAF_SPOOL=a.spool,
               SHEAF_MIGRATIONS=str(ROOT / "migrations"))
    env.pop("SHEAF_TOKENS_FILE", None)
    sd = Sheafd(a.sheafd, env, out_dir / "sheafd.log")
    sd.start()
    fresh = not reset_hwm(sd.proc.pid)
    if fresh:
        log("cannot reset peak RSS through /proc/PID/clear_refs: sheafd is "
            "restarted before each run")
    results = {"partition_size": a.partition_size,
               "workers": env.get("SHEAF_WORKERS") or str(os.cpu_count()),
               "memory_mb": env.get("SHEAF_MEMORY_MB") or "256",
               "rss_method": "restart" if fresh else "clear_refs",
               "workloads": {}}
    try:
        for w in a.workloads.split():
            runs = []
            out_path = out_dir / f"sheaf-{w}.csv"
            w_env = W.ENV.get(w)
            if w_env:
                log(f"{w}: sheafd restarted with " + " ".join(
                    f"{k}={v}" for k, v in w_env.items()))
                sd.stop()
                sd = Sheafd(a.sheafd, dict(env, **w_env),
                            out_dir / "sheafd.log")
                sd.start()
            for i in range(a.runs):
                r = run_once(sd, w, a.csv, out_path, a.partition_size,
                             a.timeout, fresh)
                runs.append(r)
                if r["status"] != "ok":
                    log(f"{w} sheaf run {i + 1}: {r['status']}: {r['error']}")
                    break
                log(f"{w} sheaf run {i + 1}: {r['wall']:.2f}s, largest worker "
                    f"{r['rss_worker_kb'] / 1024:.0f} MiB, sheafd "
                    f"{r['rss_main_kb'] / 1024:.0f} MiB")
            if w_env:
                sd.stop()
                sd = Sheafd(a.sheafd, env, out_dir / "sheafd.log")
                sd.start()
            ok = [r for r in runs if r["status"] == "ok"]
            entry = {"runs": runs}
            if w_env:
                entry["env"] = dict(w_env)
            if ok:
                tl = ok[-1].pop("task_list", [])
                entry["stage_seconds"] = stage_seconds(tl)
                for r in runs:
                    r.pop("task_list", None)
                if "plan" in ok[-1]:
                    entry["plan"] = ok[-1].pop("plan")
            if ok and len(ok) == len(runs):
                entry.update(
                    status="ok", wall=statistics.median_low(
                        [r["wall"] for r in ok]),
                    rss_worker_kb=max(r["rss_worker_kb"] for r in ok),
                    rss_main_kb=max(r["rss_main_kb"] for r in ok),
                    spill_bytes=max(r.get("spill_bytes", 0) for r in ok),
                    tasks=ok[-1].get("tasks"),
                    output=str(out_path))
                with open(out_path, "rb") as f:
                    body = f.read()
                try:
                    canon = W.canonical(w, body)
                    (out_dir / f"sheaf-{w}.canon.csv").write_text(canon)
                except ValueError as e:
                    entry["canon_error"] = str(e)
            else:
                entry.update(status=runs[-1]["status"],
                             error=runs[-1]["error"])
            results["workloads"][w] = entry
            Path(a.json).write_text(json.dumps(results, indent=1))
    finally:
        sd.stop()
    Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
