"""
bench_cluster.py - scaling measured (issue 14, point 5): W1, W3 and W5 of
../shared/bench over one generated file in the store, run on 1, 2 and 3
sheafd hosts of cluster.py (network namespaces, PostgreSQL over TCP,
s3rver), each host one worker pinned to one core with taskset. Run by
scripts/bench_cluster.sh (root only).

For each workload and host count: the job's time (created_at to
finished_at, the database's clock), the speed-up over one host, and the
coordination overhead read from the tasks' timestamps and the nodes' logs:

  claim gap   per worker, from the end of one task to the start of its
              next one of the same job (claim and commit round trips),
              median and the largest
  start       from the job's creation to its first task's start
  handoff     per stage boundary, from the last task of stage s ending to
              the first of stage s+1 starting, summed
  shuffle     bytes the stages before the last wrote to the store
  moved       bytes a host fetched from the store that another host wrote
              (the nodes' "fetched N bytes" log lines): what crossed hosts

  python3 tests/cluster/bench_cluster.py CSV [--part 8MiB] [--out FILE]
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cluster import Cluster, REPO, BUCKET

sys.path.insert(0, str(REPO / "tests" / "integration"))
import workloads  # noqa: E402

WORKLOADS = ["w1", "w3", "w5"]


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")) \
        .timestamp()


def run_job(c, wl, key, part, hosts, timeout):
    spec = workloads.spec(wl, f"s3://{BUCKET}/{key}", part,
                          name=f"bench-cluster-{wl}-{hosts}")
    r = c.api("POST", "/v1/jobs", spec)
    assert r.status == 201, r
    jid = r.body["id"]
    deadline = time.monotonic() + timeout
    while True:
        j = c.api("GET", f"/v1/jobs/{jid}?wait=10", timeout=40).body
        if j["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            c.api("POST", f"/v1/jobs/{jid}/cancel")
            raise RuntimeError(f"{wl} on {hosts} hosts: not over in "
                               f"{timeout} s")
    if j["status"] != "succeeded":
        raise RuntimeError(f"{wl} on {hosts} hosts: {j['status']}: "
                           f"{j.get('error')}")
    tasks = c.api("GET", f"/v1/jobs/{jid}/tasks?limit=1000").body["tasks"]
    # The result, from the store once published (a check that every host
    # count gives the same bytes).
    rkey = f"{c.store_prefix}/results/{jid}/result"
    end = time.monotonic() + 120
    while not [o for o in c.list(rkey) if o["key"] == rkey]:
        if time.monotonic() > end:
            raise RuntimeError(f"no result object for {jid}")
        time.sleep(0.3)
    body = c.api("GET", f"/v1/jobs/{jid}/result", timeout=300).raw
    return jid, j, tasks, body


def overhead(c, jid, job, tasks):
    created = ts(job["created_at"])
    by_worker = {}
    for t in tasks:
        by_worker.setdefault(t["worker"], []).append(
            (ts(t["started_at"]), ts(t["finished_at"])))
    gaps = []
    for spans in by_worker.values():
        spans.sort()
        gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    stages = sorted({t["stage"] for t in tasks})
    handoff = 0.0
    for s in stages[1:]:
        prev_end = max(ts(t["finished_at"]) for t in tasks
                       if t["stage"] == s - 1)
        first = min(ts(t["started_at"]) for t in tasks if t["stage"] == s)
        handoff += max(0.0, first - prev_end)
    last = stages[-1]
    shuffle = sum(t["bytes_out"] for t in tasks if t["stage"] != last)
    moved = 0
    pat = re.compile(rf"job {jid} .*fetched (\d+) bytes")
    for n in c.nodes:
        for ln in n.tail(10 ** 7).splitlines():
            m = pat.search(ln)
            if m:
                moved += int(m.group(1))
    return {
        "start_s": min(ts(t["started_at"]) for t in tasks) - created,
        "gap_med_ms": 1000 * statistics.median(gaps) if gaps else 0.0,
        "gap_max_ms": 1000 * max(gaps) if gaps else 0.0,
        "handoff_s": handoff,
        "shuffle_mb": shuffle / 1e6,
        "moved_mb": moved / 1e6,
        "tasks": len(tasks),
        "hosts_used": len({(t["worker"] or "").split(":")[0]
                           for t in tasks}),
    }


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--part", default="8MiB")
    ap.add_argument("--out")
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--workloads", default=" ".join(WORKLOADS))
    a = ap.parse_args(argv)
    sheafd = (Path(os.environ.get("SHEAF_BIN") or REPO / "build")
              / "sheafd").resolve()
    ncpu = os.cpu_count() or 1
    cpus = [i % ncpu for i in range(3)]
    root = Path(tempfile.mkdtemp(prefix="sheaf-bench-cluster-"))
    os.chmod(root, 0o755)
    size = os.path.getsize(a.csv)
    rows = []
    with Cluster(root, sheafd, workers=1, lease_s=10, cpus=cpus,
                 extra_env={"SHEAF_MEMORY_MB": "256"}) as c:
        key = f"{c.store_prefix}-in/{os.path.basename(a.csv)}"
        t0 = time.monotonic()
        c.put(key, a.csv)
        print(f"uploaded {size / 1e6:.0f} MB in "
              f"{time.monotonic() - t0:.1f} s", file=sys.stderr)
        for hosts in (1, 2, 3):
            for n in c.nodes[:hosts]:
                if not n.running():
                    n.start()
            for n in c.nodes[hosts:]:
                n.stop()
            for wl in a.workloads.split():
                jid, job, tasks, body = run_job(c, wl, key, a.part, hosts,
                                                a.timeout)
                o = overhead(c, jid, job, tasks)
                o.update(wl=wl, hosts=hosts,
                         wall_s=ts(job["finished_at"]) - ts(job["created_at"]),
                         result_bytes=len(body),
                         result_hash=hashlib.sha256(body).hexdigest())
                rows.append(o)
                print(json.dumps(o), file=sys.stderr)
    import shutil
    shutil.rmtree(root, ignore_errors=True)

    base = {r["wl"]: r["wall_s"] for r in rows if r["hosts"] == 1}
    same = {}
    for r in rows:
        same.setdefault(r["wl"], set()).add(r["result_hash"])
    out = [f"file: {size / 1e6:.0f} MB ({os.path.basename(a.csv)}), "
           f"partition_size {a.part}; each host 1 worker pinned with "
           f"taskset to one core (cpus {cpus[0]}, {cpus[1]}, {cpus[2]}: "
           f"this machine has {ncpu} cores, so hosts 1 and 3 share one)",
           "",
           "| workload | hosts | tasks | time (s) | speed-up | job start (s) "
           "| claim gap median / max (ms) | stage handoffs (s) "
           "| shuffle to store (MB) | moved between hosts (MB) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['wl'].upper()} {workloads.NAMES[r['wl']]} | {r['hosts']} "
            f"| {r['tasks']} | {r['wall_s']:.1f} "
            f"| {base[r['wl']] / r['wall_s']:.2f}x | {r['start_s']:.2f} "
            f"| {r['gap_med_ms']:.0f} / {r['gap_max_ms']:.0f} "
            f"| {r['handoff_s']:.2f} | {r['shuffle_mb']:.2f} "
            f"| {r['moved_mb']:.2f} |")
    out.append("")
    out.append("same result bytes on 1, 2 and 3 hosts: " + ", ".join(
        f"{wl.upper()} {'yes' if len(h) == 1 else 'NO'}"
        for wl, h in same.items()))
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0 if all(len(h) == 1 for h in same.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
