"""
test_recovery.py - crashes mid-job: SIGKILL a worker (the supervisor starts
a new one, the job still succeeds with the right result), SIGKILL sheafd
itself and start it again with the same environment (the job still
succeeds). Each test has a sheafd of its own; the shared one is stopped so
that it takes none of the work.
"""

import os
import re
import signal
import time
import uuid
import warnings

import pytest

from harness import (TERMINAL, check_exact, db_tasks, freeze_busy_worker,
                     proc_alive, unique_name)
import datagen

pytestmark = pytest.mark.recovery

BIG_MB = int(os.environ.get("SHEAF_IT_BIG_MB", "24"))
COPIES = 4  # hard links of the one file: more input, no more generation


@pytest.fixture(scope="module")
def big_input(session_server):
    d = f"recovery-{uuid.uuid4().hex[:8]}"
    first = session_server.data / d / "part-0.csv"
    first.parent.mkdir(parents=True)
    n = datagen.write_big(first, BIG_MB * 1024 * 1024)
    for i in range(1, COPIES):
        os.link(first, first.parent / f"part-{i}.csv")
    return {"glob": f"{d}/part-*.csv", "expected":
            datagen.big_expected(n) * COPIES, "rows": n * COPIES}


def big_spec(big):
    return {"name": unique_name("recovery"),
            "input": {"path": big["glob"], "format": "csv",
                      "partition_size": "256KiB"},
            "steps": datagen.BIG_STEPS, "output": {"format": "csv"},
            "max_attempts": 5}


def until_running(srv, jid, timeout=30):
    """Poll until the job runs; skip the test if it ends first (the input is
    then too small for this machine: raise SHEAF_IT_BIG_MB)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = srv.get(jid)
        if job["status"] in TERMINAL:
            pytest.skip(f"job {job['status']} in {time.monotonic() - t0:.2f}"
                        f" s, before it could be interrupted; raise "
                        f"SHEAF_IT_BIG_MB (now {BIG_MB})")
        if job["status"] == "running":
            return job
        time.sleep(0.005)
    pytest.fail(f"job {jid} not running after {timeout} s: {job}")


def check_result(srv, jid, big, timeout=90):
    job = srv.wait(jid, timeout=timeout)
    assert job["status"] == "succeeded", (
        f"job ended {job['status']}: {job['error']!r}")
    p = job["progress"]
    assert p["partitions_done"] == p["partitions_total"], p
    assert p["rows_in"] == big["rows"], p
    check_exact(srv.result(jid), ["id", "g", "w"], big["expected"],
                "result after the crash")
    tasks = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"]
    assert len(tasks) == p["partitions_total"]
    assert all(t["state"] in ("done", "succeeded") for t in tasks), [
        t for t in tasks if t["state"] not in ("done", "succeeded")][:3]
    return job, tasks


def test_kill_worker_mid_job(private_sheaf, big_input):
    srv = private_sheaf("kill-worker")
    jid = srv.submit(big_spec(big_input))["id"]
    until_running(srv, jid)
    kids = srv.children()
    assert kids, f"sheafd {srv.pid} has no worker processes"
    # Frozen outside any transaction (harness.freeze_busy_worker): no
    # commit of its can be in flight, so the task it holds is still its own.
    victim, held = freeze_busy_worker(srv, jid, kids, timeout=10)
    if victim is None:
        victim = sorted(kids)[0]
    os.kill(victim, signal.SIGKILL)
    at_kill = srv.get(jid)
    if held is not None:
        # What the database says of the victim's task right after the kill:
        # only an attempt still running then must run again.
        now = [t for t in db_tasks(jid) if (t["stage"], t["part"]) ==
               (held["stage"], held["part"])][0]
        must_rerun = now["state"] != "done"
    p = at_kill["progress"]
    if at_kill["status"] in TERMINAL or \
            p["partitions_done"] == p["partitions_total"]:
        pytest.skip("the job was done when the worker died; raise "
                    "SHEAF_IT_BIG_MB")

    # The supervisor reaps the dead worker and starts another.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = srv.children()
        if victim not in now and len(now) >= len(kids) and set(now) - set(
                kids):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"no new worker 15 s after killing {victim}: children "
                    f"before {sorted(kids)}, now {sorted(srv.children())}")

    job, tasks = check_result(srv, jid, big_input)
    if held is not None:
        key = (held["stage"], held["part"])
        row = [t for t in tasks if (t["stage"], t["partition"]) == key][0]
        assert row["state"] in ("done", "succeeded"), row
        if must_rerun:
            # the task the victim held ran again
            assert row["attempts"] >= 2, (
                f"task {key} held by the killed worker (state {now['state']}"
                f" right after the kill) did not run again: {row}")
    assert srv.running()


def worker_pids(task):
    return {int(n) for n in re.findall(r"\d+", str(task.get("worker") or ""))}


@pytest.mark.parametrize("crash", ["sheafd", "node"])
def test_kill_sheafd_mid_job_and_restart(private_sheaf, big_input, crash):
    """crash=sheafd: SIGKILL sheafd only (its workers are orphaned);
    crash=node: SIGKILL sheafd and all its workers, as a machine that dies;
    the tasks they held are taken again once their lease (5 s) ends."""
    srv = private_sheaf(f"kill-{crash}")
    jid = srv.submit(big_spec(big_input))["id"]
    until_running(srv, jid)
    before = srv.get(jid)
    orphans = srv.kill9()
    if crash == "node":
        for pid, start in orphans.items():
            if proc_alive(pid, start):
                os.kill(pid, signal.SIGKILL)
    p = before["progress"]
    if before["status"] in TERMINAL or \
            p["partitions_done"] == p["partitions_total"]:
        pytest.skip("the job was done before sheafd died; raise "
                    "SHEAF_IT_BIG_MB")
    time.sleep(0.2)
    srv.start()  # same environment, port, spool
    # tasks the dead workers held: still "running" until their lease ends
    held = []
    if crash == "node":
        tasks = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"]
        held = [(t["stage"], t["partition"]) for t in tasks
                if t["state"] == "running" and worker_pids(t) & set(orphans)]
    job, tasks = check_result(srv, jid, big_input, timeout=120)
    by_key = {(t["stage"], t["partition"]): t for t in tasks}
    for key in held:
        assert by_key[key]["attempts"] >= 2, (
            f"task {key} held by a dead worker: {by_key[key]}")
    if crash == "sheafd":
        alive = [pid for pid, t in orphans.items() if proc_alive(pid, t)]
        if alive:
            warnings.warn(f"workers {alive} of the killed sheafd still run "
                          f"after the job ended")


def test_cancel_stops_workers_then_delete(session_server, big_input):
    """POST cancel: 202, the job ends cancelled at once, the worker
    processes running its partitions are signalled (replaced within a
    second or two); DELETE then removes the job and its files."""
    srv = session_server
    srv.ensure_running()
    jid = srv.submit(big_spec(big_input))["id"]
    until_running(srv, jid)
    st, _, body = srv.api("DELETE", f"/v1/jobs/{jid}")
    assert st == 409, (st, body)
    st, _, job = srv.api("POST", f"/v1/jobs/{jid}/cancel")
    assert st == 202 and job["status"] == "cancelled", (st, job)
    # The partitions running at the moment of the cancel keep the name of
    # their worker; those processes must be stopped, not left to finish.
    tasks = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"]
    assert not [t for t in tasks if t["state"] in ("queued", "running")]
    busy_pids = {int(t["worker"].rsplit(":", 1)[1]) for t in tasks
                 if t["state"] == "cancelled" and t["worker"]}
    assert busy_pids, "no partition was running when the job was cancelled"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not busy_pids & set(srv.children()):
            break
        time.sleep(0.05)
    assert not busy_pids & set(srv.children()), \
        f"workers {busy_pids} still alive after cancel"
    assert srv.get(jid)["status"] == "cancelled"
    st, _, body = srv.api("POST", f"/v1/jobs/{jid}/cancel")
    assert st == 409 and body["error"]["code"] == "wrong_state", (st, body)
    assert srv.api("GET", f"/v1/jobs/{jid}/result").status == 409
    # Workers come back for the next job.
    deadline = time.monotonic() + 10
    while len(srv.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(srv.children()) >= 2
    st, _, body = srv.api("DELETE", f"/v1/jobs/{jid}")
    assert st == 204, (st, body)
    assert srv.api("GET", f"/v1/jobs/{jid}").status == 404
    assert not (srv.spool / "jobs" / jid).exists()
    assert srv.api("DELETE", f"/v1/jobs/{jid}").status == 404
