#!/usr/bin/env python3
"""
bench_service.py - the service half of `make bench` (scripts/bench_service.sh
starts PostgreSQL and calls this): a private sheafd on a loopback port, and
the figures of issue 13 measured over real HTTP.

  seq      one-row jobs one after the other: POST /v1/jobs, then
           GET /v1/jobs/{id}?wait= until it has ended; the time from the
           POST to the answer saying "succeeded" (p50, p99, mean)
  burst    N one-row jobs submitted at once (16 connections), each then
           awaited with GET ?wait=; jobs/s = N / time from the first POST
           to the last job seen ended
  wrk      wrk -t2 -c50 -d10s --latency on GET /v1/jobs/{id} of a
           succeeded job (req/s, p99); skipped when wrk is missing
  task     the overhead of one task (claim, start, finish, commit): a job
           of one-row partitions ("partition_size": 1) run by the
           workers; (job wall time x workers) / tasks, and the gap the
           workers leave between one task's end and their next claim
  handoff  a stage hand-off on tiny partitions: a groupby job's gap from
           its last stage-0 task's end to its first stage-1 task's start
           (median over jobs)
  dask     Dask's own overhead for scale: LocalCluster with 2 worker
           processes, read_csv + filter + compute() of a one-row file with
           an in-process client, p50 over runs (run by /usr/bin/python3 in
           a child; skipped with a note when dask cannot be imported)

Everything is bounded: every HTTP call has a timeout, wrk runs for its
--duration, the Dask child has a timeout, and sheafd is stopped at the end.

usage: bench_service.py --sheafd BIN --work DIR [--seq N] [--burst N]
                        [--wrk-duration S] [--dask-runs N] [--json FILE]
Environment: DATABASE_URL (required); SHEAF_WORKERS etc. pass through.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_sheaf import Sheafd, log  # noqa: E402

ONE_ROW = "id,x\n1,5\n"


class Client:
    """One keep-alive HTTP/1.1 connection to sheafd."""

    def __init__(self, base, timeout=60):
        host, port = base.rsplit("//", 1)[1].split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout)
            try:
                data = None if body is None else json.dumps(body)
                hdrs = {"Content-Type": "application/json"} if data else {}
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, raw
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def one_row_spec(name, extra=None):
    spec = {"name": name, "input": {"path": "one.csv"},
            "steps": [{"op": "filter", "where": "x > 0"}],
            "output": {"format": "csv"}}
    if extra:
        spec.update(extra)
    return spec


def submit(c, spec):
    st, raw = c.call("POST", "/v1/jobs", spec)
    if st != 201:
        raise SystemExit(f"POST /v1/jobs: {st} {raw[:300]!r}")
    return json.loads(raw)["id"]


def await_end(c, jid, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while True:
        st, raw = c.call("GET", f"/v1/jobs/{jid}?wait=10")
        if st != 200:
            raise SystemExit(f"GET /v1/jobs/{jid}: {st} {raw[:300]!r}")
        job = json.loads(raw)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {jid} did not end in {timeout_s} s")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def wal_syncs():
    """pg_stat_wal.wal_sync of the database (WAL flushes so far), or None
    when psql cannot tell."""
    psql = shutil.which("psql")
    if psql is None:
        return None
    try:
        out = subprocess.run([psql, "-X", "-Atc",
                              "SELECT wal_sync FROM pg_stat_wal",
                              os.environ["DATABASE_URL"]],
                             capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip())
    except (subprocess.SubprocessError, ValueError):
        return None


def bench_seq(base, n):
    c = Client(base)
    lat = []
    syncs0 = None
    for i in range(n + 5):
        t0 = time.perf_counter()
        jid = submit(c, one_row_spec(f"seq-{i}"))
        job = await_end(c, jid)
        dt = (time.perf_counter() - t0) * 1000
        if job["status"] != "succeeded":
            raise SystemExit(f"one-row job {jid}: {job['status']}: "
                             f"{job.get('error')}")
        if i >= 5:  # the first few warm the workers' caches
            lat.append(dt)
        if i == 4:
            syncs0 = wal_syncs()
    c.close()
    syncs1 = wal_syncs()
    per_job = (syncs1 - syncs0) / n if None not in (syncs0, syncs1) \
        else None
    return {"n": n, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "mean_ms": statistics.fmean(lat), "max_ms": max(lat),
            "wal_syncs_per_job": per_job}


def bench_burst(base, n, conns=16):
    ids = [[] for _ in range(conns)]
    errors = []
    start = threading.Barrier(conns + 1)
    t_submitted = [0.0] * conns
    t_ended = [0.0] * conns

    def run(k):
        c = Client(base)
        try:
            start.wait()
            for i in range(k, n, conns):
                ids[k].append(submit(c, one_row_spec(f"burst-{i}")))
            t_submitted[k] = time.perf_counter()
            for jid in ids[k]:
                job = await_end(c, jid)
                if job["status"] != "succeeded":
                    errors.append(f"{jid}: {job['status']}")
            t_ended[k] = time.perf_counter()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"burst: {len(errors)} error(s), first: {errors[0]}")
    wall = max(t_ended) - t0
    return {"n": n, "conns": conns, "wall_s": wall, "jobs_per_s": n / wall,
            "submit_s": max(t_submitted) - t0}


def bench_wrk(base, jid, duration):
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (scripts/deps.sh)"}
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{duration}s", "--latency", "--timeout",
         "5s", f"{base}/v1/jobs/{jid}"],
        capture_output=True, text=True, timeout=duration + 60).stdout
    res = {"raw": out, "duration": duration}
    for line in out.splitlines():
        w = line.split()
        if line.startswith("Requests/sec:"):
            res["req_s"] = float(w[1])
        elif len(w) == 2 and w[0] in ("50%", "99%"):
            res["p" + w[0][:-1] + "_ms"] = wrk_ms(w[1])
        elif "Non-2xx" in line:
            res["non_2xx"] = int(w[-1])
        elif line.strip().startswith("Socket errors"):
            res["socket_errors"] = line.strip()
    return res


def wrk_ms(s):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 6e4)):
        if s.endswith(unit):
            return float(s[:-len(unit)]) * f
    return float(s)


def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def tasks_of(c, jid):
    st, raw = c.call("GET", f"/v1/jobs/{jid}/tasks")
    if st != 200:
        raise SystemExit(f"tasks of {jid}: {st}")
    return json.loads(raw)["tasks"]


def bench_task(base, workers, rows):
    c = Client(base)
    spec = one_row_spec("task-overhead", {
        "input": {"path": "many.csv", "partition_size": 1}})
    walls, gaps, runs = [], [], []
    for _ in range(3):
        jid = submit(c, spec)
        job = await_end(c, jid, 300)
        if job["status"] != "succeeded":
            raise SystemExit(f"task job: {job['status']} {job.get('error')}")
        tasks = tasks_of(c, jid)
        n = len(tasks)
        wall = ts(job["finished_at"]) - ts(job["started_at"])
        walls.append(wall * 1000 * workers / n)
        by_worker = {}
        for t in tasks:
            by_worker.setdefault(t["worker"], []).append(
                (ts(t["started_at"]), ts(t["finished_at"])))
            runs.append((ts(t["finished_at"]) - ts(t["started_at"])) * 1000)
        for spans in by_worker.values():
            spans.sort()
            for a, b in zip(spans, spans[1:]):
                gaps.append((b[0] - a[1]) * 1000)
        c.call("DELETE", f"/v1/jobs/{jid}")
    c.close()
    return {"tasks": n, "per_task_ms": statistics.median(walls),
            "claim_gap_ms": statistics.median(gaps) if gaps else None,
            "in_task_ms": statistics.median(runs)}


def bench_handoff(base, runs=10):
    c = Client(base)
    spec = {"name": "handoff", "input": {"path": "many.csv",
                                         "partition_size": 1},
            "steps": [{"op": "groupby", "by": ["x"],
                       "aggs": [{"as": "n", "fn": "count"}]}],
            "output": {"format": "csv"}}
    gaps, walls = [], []
    for _ in range(runs):
        jid = submit(c, spec)
        job = await_end(c, jid, 300)
        if job["status"] != "succeeded":
            raise SystemExit(f"handoff job: {job['status']} "
                             f"{job.get('error')}")
        tasks = tasks_of(c, jid)
        s0 = [ts(t["finished_at"]) for t in tasks if t["stage"] == 0]
        s1 = [ts(t["started_at"]) for t in tasks if t["stage"] == 1]
        if s0 and s1:
            gaps.append((min(s1) - max(s0)) * 1000)
        walls.append((ts(job["finished_at"]) - ts(job["started_at"])) * 1000)
        c.call("DELETE", f"/v1/jobs/{jid}")
    c.close()
    return {"stage0_tasks": len(s0), "stage1_tasks": len(s1),
            "handoff_ms": statistics.median(gaps) if gaps else None,
            "job_ms": statistics.median(walls)}


DASK_CHILD = r"""
import json, statistics, sys, time
try:
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster
except Exception as e:
    print(json.dumps({"skipped": "dask is not importable: %s" % e}))
    sys.exit(0)
path, runs = sys.argv[1], int(sys.argv[2])
import logging
logging.disable(logging.WARNING)
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                  dashboard_address=None, host="127.0.0.1") as cluster, \
        Client(cluster) as client:
    lat = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        df = dd.read_csv(path)
        out = df[df.x > 0].compute()
        dt = (time.perf_counter() - t0) * 1000
        assert len(out) == 1
        if i >= 2:
            lat.append(dt)
    lat.sort()
    print(json.dumps({"runs": runs, "p50_ms": statistics.median(lat),
                      "p99_ms": lat[-1]}))
"""


def bench_dask(path, runs):
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
        else sys.executable
    try:
        p = subprocess.run([py, "-c", DASK_CHILD, str(path), str(runs)],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {"skipped": "the Dask run did not end in 300 s"}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"skipped": f"the Dask run failed: {p.stderr[-300:]}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheafd", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seq", type=int, default=200)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--wrk-duration", type=int, default=10)
    ap.add_argument("--dask-runs", type=int, default=20)
    ap.add_argument("--tiny-rows", type=int, default=200)
    ap.add_argument("--only", default="seq burst wrk task handoff dask")
    ap.add_argument("--json")
    a = ap.parse_args()
    only = set(a.only.split())

    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("bench_service.py: DATABASE_URL is not set")
    work = Path(a.work)
    data, spool = work / "data", work / "spool"
    shutil.rmtree(spool, ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    spool.mkdir(parents=True, exist_ok=True)
    (data / "one.csv").write_text(ONE_ROW)
    (data / "many.csv").write_text(
        "id,x\n" + "".join(f"{i},{i % 7}\n" for i in range(a.tiny_rows)))
    env = dict(os.environ, SHEAF_DATA_ROOT=str(data), SHEAF_SPOOL=str(spool),
               SHEAF_MIGRATIONS=str(ROOT / "migrations"))
    env.pop("SHEAF_TOKENS_FILE", None)
    env.setdefault("SHEAF_USER", "")  # stays root: inputs written as root
    workers = int(env.get("SHEAF_WORKERS") or os.cpu_count())
    res = {"workers": workers}
    sd = Sheafd(a.sheafd, env, work / "sheafd.log")
    sd.start()
    try:
        if "seq" in only:
            log(f"service: {a.seq} sequential one-row jobs")
            res["seq"] = bench_seq(sd.base, a.seq)
        if "burst" in only:
            log(f"service: {a.burst} one-row jobs at once")
            res["burst"] = bench_burst(sd.base, a.burst)
        if "wrk" in only:
            c = Client(sd.base)
            jid = submit(c, one_row_spec("wrk"))
            await_end(c, jid)
            c.close()
            log(f"service: wrk -t2 -c50 -d{a.wrk_duration}s on GET job")
            res["wrk"] = bench_wrk(sd.base, jid, a.wrk_duration)
        if "task" in only:
            log(f"service: task overhead ({a.tiny_rows} one-row partitions)")
            res["task"] = bench_task(sd.base, workers, a.tiny_rows)
        if "handoff" in only:
            log("service: stage hand-off (groupby on one-row partitions)")
            res["handoff"] = bench_handoff(sd.base)
    finally:
        sd.stop()
    if "dask" in only:
        log(f"service: Dask LocalCluster overhead ({a.dask_runs} runs)")
        res["dask"] = bench_dask(data / "one.csv", a.dask_runs)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    print(table(res))


def table(r):
    def f(v, fmt="{:.1f}"):
        return "-" if v is None else fmt.format(v)
    rows = ["| what | figure | target |", "|---|---|---|"]
    if "seq" in r:
        s = r["seq"]
        rows.append(f"| one-row job, POST -> GET ?wait= succeeded, "
                    f"sequential ({s['n']}), p50 / p99 | "
                    f"{f(s['p50_ms'])} / {f(s['p99_ms'])} ms | "
                    f"<= 5 / 20 ms |")
        rows.append(f"| WAL flushes per sequential one-row job "
                    f"(pg_stat_wal.wal_sync) | "
                    f"{f(s.get('wal_syncs_per_job'), '{:.2f}')} | |")
    if "burst" in r:
        b = r["burst"]
        rows.append(f"| {b['n']} one-row jobs at once, all ended | "
                    f"{b['wall_s']:.2f} s ({b['jobs_per_s']:.0f} jobs/s) | "
                    f">= 1000 jobs/s |")
    if "wrk" in r:
        w = r["wrk"]
        if "skipped" in w:
            rows.append(f"| GET /v1/jobs/{{id}}, wrk -t2 -c50 | "
                        f"skipped: {w['skipped']} | |")
        else:
            extra = f", {w['non_2xx']} non-2xx" if w.get("non_2xx") else ""
            rows.append(f"| GET /v1/jobs/{{id}}, wrk -t2 -c50 "
                        f"-d{w['duration']}s | "
                        f"{f(w.get('req_s'), '{:.0f}')} req/s, p50 "
                        f"{f(w.get('p50_ms'), '{:.2f}')} ms, p99 "
                        f"{f(w.get('p99_ms'), '{:.2f}')} ms{extra} | "
                        f">= 20000 req/s, p99 <= 10 ms |")
    if "task" in r:
        t = r["task"]
        rows.append(f"| one task's overhead ({t['tasks']} one-row "
                    f"partitions, {r['workers']} workers): wall x workers "
                    f"/ tasks; gap between a worker's tasks; inside a task "
                    f"| {f(t['per_task_ms'], '{:.2f}')} ms; "
                    f"{f(t['claim_gap_ms'], '{:.2f}')} ms; "
                    f"{f(t['in_task_ms'], '{:.2f}')} ms | |")
    if "handoff" in r:
        h = r["handoff"]
        rows.append(f"| stage hand-off (groupby, {h['stage0_tasks']} -> "
                    f"{h['stage1_tasks']} tasks): last stage-0 end to "
                    f"first stage-1 start, median | "
                    f"{f(h['handoff_ms'])} ms (job {f(h['job_ms'])} ms) | |")
    if "dask" in r:
        d = r["dask"]
        if "skipped" in d:
            rows.append(f"| Dask LocalCluster (2 processes), one-row "
                        f"read_csv + filter + compute() | skipped: "
                        f"{d['skipped']} | for scale |")
        else:
            rows.append(f"| Dask LocalCluster (2 processes), one-row "
                        f"read_csv + filter + compute(), p50 of "
                        f"{d['runs']} | {f(d['p50_ms'])} ms | for scale |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
