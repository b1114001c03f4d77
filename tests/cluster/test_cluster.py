"""
test_cluster.py - sheaf on three hosts that really lose one (issue 14,
point 3): three network namespaces each running a sheafd (API and two
workers), PostgreSQL over TCP with scram-sha-256 passwords in a fourth,
s3rver in a fifth, the test in a sixth (cluster.py). Every node has its own
spool and data root: the input is an object in the bucket, shuffle files
and the result go through the store.

  * a host cut off mid-job (its link dropped, its processes killed with
    SIGKILL): the job ends with the oracle's exact answer, every task done
    once, the lost host's tasks redone by the others after their leases
    expired;
  * a worker frozen past its lease while it writes: its task is taken over
    by another host; continued, its late finish is refused (fenced) and
    leaves nothing in the store; the result is exact;
  * a rolling restart (SIGTERM, wait, start) of the three nodes one by one
    during a job loses nothing.

Root only (network namespaces): skipped otherwise. One cluster serves the
three tests (module fixture); each test leaves all three nodes running.
"""

import os
import re
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from cluster import Cluster, REPO

from harness import (SANITIZER_MARKS, check_exact, db_in_transaction, db_tasks, proc_alive,
                     signal_all, sql, worker_pid, writes_for_lease)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the cluster tests make network namespaces (ip netns): root only")

ROWS = int(os.environ.get("SHEAF_CLUSTER_ROWS", "600000"))
PART = os.environ.get("SHEAF_CLUSTER_PART", "128KiB")
GROUPS = 400
ROLL_COPIES = 3
TERMINAL = ("succeeded", "failed", "cancelled")
HEADER = ["g", "n", "sum_v", "min_v", "max_v"]


def row(i):
    return f"k{(i * 7919) % GROUPS:04d}", (i * 31) % 1000 - 300


def write_input(path):
    with open(path, "w") as f:
        f.write("id,g,v\n")
        for i in range(ROWS):
            g, v = row(i)
            f.write(f"{i},{g},{v}\n")


def oracle():
    """The job's answer, computed here: per key of the rows with v >= 0,
    count, sum, min, max; by key."""
    acc = {}
    for i in range(ROWS):
        g, v = row(i)
        if v < 0:
            continue
        a = acc.get(g)
        if a is None:
            acc[g] = [1, v, v, v]
        else:
            a[0] += 1
            a[1] += v
            a[2] = min(a[2], v)
            a[3] = max(a[3], v)
    return [[g] + acc[g] for g in sorted(acc)]


@pytest.fixture(scope="module")
def cluster(request):
    sheafd = (Path(os.environ.get("SHEAF_BIN") or REPO / "build")
              / "sheafd").resolve()
    if not os.access(sheafd, os.X_OK):
        pytest.fail(f"no sheafd at {sheafd} (SHEAF_BIN)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="sheaf-cluster-"))
    os.chmod(root, 0o755)
    c = Cluster(root, sheafd)
    ok = False
    try:
        c.start()
        src = root / "input.csv"
        write_input(src)
        c.input_key = f"{c.store_prefix}-in/input.csv"
        c.put(c.input_key, src)
        # The tests' jobs read three copies (long enough to act in).
        for i in range(ROLL_COPIES):
            c.put(f"{c.store_prefix}-in/copy-{i}.csv", src)
        src.unlink()
        c.expected = oracle()
        yield c
        ok = request.session.testsfailed == 0
    finally:
        try:
            c.close()
            san = [f"{n.name}: {ln}" for n in c.nodes
                   for ln in n.tail(100000).splitlines()
                   if any(m in ln for m in SANITIZER_MARKS)]
            if san:
                ok = False
                pytest.fail("sanitizer reports in the nodes' logs:\n"
                            + "\n".join(san[:20]), pytrace=False)
        finally:
            if ok:
                subprocess_rm(root)
            else:
                print(f"cluster files kept in {root}")


def subprocess_rm(root):
    import shutil
    shutil.rmtree(root, ignore_errors=True)


def expected(c, copies):
    """The oracle's answer over 'copies' copies of the input."""
    return [[g, n * copies, s * copies, lo, hi]
            for g, n, s, lo, hi in c.expected]


def spec(c, tag, copies=1):
    path = (c.input_key if copies == 1 else
            f"{c.store_prefix}-in/copy-*.csv")
    return {"name": f"cluster-{tag}-{uuid.uuid4().hex[:6]}",
            "input": {"path": f"s3://sheaf-cluster/{path}",
                      "format": "csv", "partition_size": PART},
            "steps": [
                {"op": "filter", "where": "v >= 0"},
                {"op": "groupby", "by": ["g"],
                 "aggs": [{"as": "n", "fn": "count"},
                          {"as": "sum_v", "fn": "sum", "column": "v"},
                          {"as": "min_v", "fn": "min", "column": "v"},
                          {"as": "max_v", "fn": "max", "column": "v"}]},
                {"op": "sort", "by": [{"column": "g"}]}],
            "output": {"format": "csv"}, "max_attempts": 5}


def submit(c, tag, nodes=None, copies=1):
    r = c.api("POST", "/v1/jobs", spec(c, tag, copies), nodes=nodes)
    assert r.status == 201, r
    return r.body["id"]


def tasks(c, jid, nodes=None):
    r = c.api("GET", f"/v1/jobs/{jid}/tasks?limit=1000", nodes=nodes)
    assert r.status == 200, r
    return r.body["tasks"]


def job(c, jid, nodes=None):
    r = c.api("GET", f"/v1/jobs/{jid}", nodes=nodes)
    assert r.status == 200, r
    return r.body


def lease_ends(c, jid, keys, column="lease_until"):
    """{(stage, part): 'column' as epoch seconds} of the tasks 'keys'."""
    rows = sql(f"SELECT stage, part, extract(epoch FROM {column}) FROM tasks"
               f" WHERE job_id = '{uuid.UUID(jid)}'", c.db_url)
    got = {(int(st), int(p)): float(v) for st, p, v in rows if v}
    return {k: got[k] for k in keys}


def host_of(t):
    w = t.get("worker") or ""
    return w.split(":", 1)[0] if ":" in w else None


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail(f"after {timeout} s: "
                        f"{what() if callable(what) else what}",
                        pytrace=False)
        time.sleep(interval)


def running_job(c, jid, nodes=None):
    j = job(c, jid, nodes)
    assert j["status"] not in TERMINAL, (
        f"job {jid} ended {j['status']} before the test could act "
        f"(raise SHEAF_CLUSTER_ROWS, now {ROWS}): {j.get('error')}")
    return j


def wait_succeeded(c, jid, timeout=180, nodes=None, copies=1):
    """The job once it succeeded, its result (from the store) exact, every
    task done once; -> its tasks."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.api("GET", f"/v1/jobs/{jid}?wait=5", nodes=nodes, timeout=40)
        assert r.status == 200, r
        if r.body["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"job {jid} not over after {timeout} s: {r.body}",
                        pytrace=False)
    j = r.body
    assert j["status"] == "succeeded", j
    # The result object appears once the last task's worker has uploaded
    # it; then any node serves it from the store.
    key = f"{c.store_prefix}/results/{jid}/result"
    wait_for(lambda: [o for o in c.list(key) if o["key"] == key], 60,
             f"no result object {key}", 0.3)
    for n in [n for n in (nodes or c.nodes) if n.running()]:
        r = c.api("GET", f"/v1/jobs/{jid}/result", nodes=[n], timeout=120)
        assert r.status == 200, (n.name, r)
        check_exact(r.raw, HEADER, expected(c, copies), f"result of {jid} "
                    f"via {n.name}")
    ts = tasks(c, jid, nodes)
    keys = [(t["stage"], t["partition"]) for t in ts]
    assert len(keys) == len(set(keys)), "a task listed twice"
    assert all(t["state"] == "done" for t in ts), [
        t for t in ts if t["state"] != "done"][:5]
    p = j["progress"]
    assert p["partitions_done"] == p["partitions_total"], p
    assert len(ts) == p["partitions_total"], (len(ts), p)
    s0 = [t for t in ts if t["stage"] == 0]
    # Every input row was read once: the partitions' rows add up.
    assert sum(t["rows_in"] for t in s0) == ROWS * copies, sum(
        t["rows_in"] for t in s0)
    # The job's shuffle files leave the store after its result is there.
    wait_for(lambda: c.list(f"{c.store_prefix}/spool/{jid}/") == [], 60,
             lambda: f"shuffle files of {jid} left in the store: "
             f"{c.list(f'{c.store_prefix}/spool/{jid}/')[:5]}", 0.5)
    return ts


def all_hosts_working(c, jid, need_running=None):
    """Tasks done by workers of all three hosts (and, with
    'need_running', a task running on that host); -> the tasks."""
    running_job(c, jid)
    ts = tasks(c, jid)
    done = {host_of(t) for t in ts if t["state"] == "done"}
    if not {"n1", "n2", "n3"} <= done:
        return None
    if need_running and not [t for t in ts if t["state"] == "running"
                             and host_of(t) == need_running]:
        return None
    return ts


# --------------------------------------------------------------------------


def test_lost_host(cluster):
    """n3 cut off mid-job (link down, then SIGKILL of sheafd and its
    workers): the others redo its tasks once its leases expire, and the
    job's answer is exact."""
    c = cluster
    lost = c.nodes[2]
    jid = submit(c, "lost", nodes=c.nodes[:1], copies=ROLL_COPIES)
    wait_for(lambda: all_hosts_working(c, jid, need_running="n3"), 60,
             lambda: f"not every host ran a task of {jid}: "
             f"{[(t['state'], t['worker']) for t in tasks(c, jid)][:40]}",
             0.02)
    lost.link(False)
    lost.kill9()
    before = tasks(c, jid)
    held = [(t["stage"], t["partition"]) for t in before
            if t["state"] == "running" and host_of(t) == "n3"]
    assert held, "n3 held no running task when it was cut off"
    done_n3 = [t for t in before if t["state"] == "done"
               and host_of(t) == "n3"]
    assert done_n3
    # n3 is gone: its leases are final. Their ends, as the database has
    # them (a redo must not start before).
    until = lease_ends(c, jid, held)
    try:
        ts = wait_succeeded(c, jid, nodes=c.nodes[:2], copies=ROLL_COPIES)
    finally:
        lost.link(True)
        lost.start()
    by_key = {(t["stage"], t["partition"]): t for t in ts}
    for k in held:
        t = by_key[k]
        assert t["attempts"] >= 2 and host_of(t) in ("n1", "n2"), (
            f"task {k} held by the lost host was not redone elsewhere: {t}")
    # Redone only once the lost host's lease had expired.
    starts = lease_ends(c, jid, held, "started_at")
    for k in held:
        assert starts[k] >= until[k], (
            f"task {k} restarted at {starts[k]} before the lost host's "
            f"lease ended at {until[k]}")
    # Work done by n3 before the cut that was committed stays (its shuffle
    # files were in the store, not on its disk): some n3 tasks survive.
    hosts = {host_of(t) for t in ts}
    assert {"n1", "n2"} <= hosts, hosts


def catch_writer(c, node, jid, timeout=60):
    """-> (pid, lease, (stage, part)): a worker of 'node' stopped with
    SIGSTOP while it writes the files of a running task of job 'jid',
    caught outside any transaction (so that it holds no row lock and no
    commit of its is in flight); (None, None, None) if the job ends
    first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job(c, jid)["status"] in TERMINAL:
            break
        mine = set(node.workers())
        for t in tasks(c, jid):
            pid = worker_pid(t["worker"])
            if (t["state"] != "running" or host_of(t) != node.name
                    or pid not in mine):
                continue
            if not signal_all([pid], signal.SIGSTOP):
                continue
            time.sleep(0.03)
            if db_in_transaction(c.db_url) == 0:
                again = [d for d in db_tasks(jid, c.db_url)
                         if d["state"] == "running"
                         and worker_pid(d["worker"]) == pid
                         and d["worker"].startswith(node.name + ":")]
                if again and writes_for_lease(pid, again[0]["lease"]):
                    return (pid, again[0]["lease"],
                            (again[0]["stage"], again[0]["part"]))
            signal_all([pid], signal.SIGCONT)
            break
        time.sleep(0.005)
    return None, None, None


def test_stale_host_is_fenced(cluster):
    """A worker of n2 frozen (SIGSTOP) while writing a task, past its lease:
    the task is re-claimed by another worker, the job succeeds; continued
    (SIGCONT), the stale attempt's finish is refused and its files leave
    the store; the result is exact."""
    c = cluster
    n2 = c.nodes[1]
    # Catching a worker at the right moment is a matter of chance: a job
    # that ends first is followed by another (three at most).
    for _ in range(3):
        jid = submit(c, "fence", nodes=c.nodes[:1], copies=ROLL_COPIES)
        victim, stale, part = catch_writer(c, n2, jid)
        if victim:
            break
        wait_succeeded(c, jid, copies=ROLL_COPIES)
    assert victim, "no worker of n2 caught writing a task of three jobs"
    mark = len(n2.log_path.read_bytes().splitlines())
    try:
        def taken_over():
            r = [d for d in db_tasks(jid, c.db_url)
                 if (d["stage"], d["part"]) == part][0]
            return r if r["lease"] not in (None, stale) else None
        r = wait_for(taken_over, 30, f"task {part} held by frozen worker "
                     f"{victim} (lease {stale}) never taken over")
        assert worker_pid(r["worker"]) != victim or not r["worker"].startswith(
            "n2:"), r
        ts = wait_succeeded(c, jid, copies=ROLL_COPIES)
        assert proc_alive(victim), "the frozen worker died"
    finally:
        signal_all([victim], signal.SIGCONT)

    def said():
        lines = n2.log_path.read_bytes().decode("utf-8", "replace")
        return [ln for ln in lines.splitlines()[mark:]
                if f"[{victim}]" in ln and jid in ln]
    lines = wait_for(said, 30, f"worker {victim} said nothing about job "
                     f"{jid} once continued")
    # Its finish refused ("... its output is discarded"), or stopped at its
    # next heartbeat ("lease lost"), or its failure record refused ("lease
    # of job J part P lost": its files went with the job's clean-up).
    assert any("discarded" in ln or "lease lost" in ln
               or re.search(r"lease of job \S+ part \d+ lost", ln)
               for ln in lines), lines
    t = [t for t in ts if (t["stage"], t["partition"]) == part][0]
    assert t["attempts"] >= 2, t
    time.sleep(0.5)  # a refused attempt removes its objects as it logs
    left = [o["key"] for o in c.list(f"{c.store_prefix}/spool/{jid}/")]
    assert not left, f"objects of job {jid} left in the store: {left[:5]}"
    check_exact(c.api("GET", f"/v1/jobs/{jid}/result").raw, HEADER,
                expected(c, ROLL_COPIES))


def test_rolling_restart(cluster):
    """The three nodes stopped (SIGTERM) and started again one by one while
    a job runs: it succeeds with the exact answer."""
    c = cluster
    jid = submit(c, "rolling", nodes=c.nodes[:1], copies=ROLL_COPIES)
    done_before = 0
    for n in c.nodes:
        others = [m for m in c.nodes if m is not n]

        def progressed():
            j = running_job(c, jid, others)
            return j["progress"]["partitions_done"] > done_before
        wait_for(progressed, 60, f"job {jid} made no progress before "
                 f"{n.name}'s restart")
        running_job(c, jid, others)
        rc = n.stop()
        assert rc == 0, f"{n.name} exited {rc} after SIGTERM:\n{n.tail()}"
        n.start()
        done_before = job(c, jid, others)["progress"]["partitions_done"]
    wait_succeeded(c, jid, copies=ROLL_COPIES)
