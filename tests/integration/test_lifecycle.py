"""
test_lifecycle.py - no accepted job is ever lost (issue 4), one test per
point: fencing of a worker presumed dead, retries and a poison partition, a
worker that segfaults, a restart that resumes from the finished partitions,
several instances sharing a job, timeout and retention, graceful shutdown,
a database restart, an unwritable spool and a full disk, idempotent
submission.

Tests that kill or freeze processes run sheafd instances of their own
(conftest.life_sheaf; the shared one is stopped so that it takes none of
their work) and synchronise on what they can observe - task rows, leases,
process states, files - never on sleeps: a worker is frozen (SIGSTOP) before
the test looks at the task it holds, so it cannot finish that task behind
the test's back. The crash loop is test_crashloop.py.
"""

import json
import os
import resource
import signal
import subprocess
import time
import uuid

import pytest

import datagen
from harness import (TERMINAL, PrivatePg, check_committed_once, check_exact,
                     db_tasks, freeze_busy_worker, job_spool_files,
                     proc_alive, signal_all, sql, unique_name, wait_until,
                     worker_pid)

LIFE_MB = int(os.environ.get("SHEAF_IT_LIFE_MB", "24"))
COPIES = 3            # hard links of the one file: more input, no more writing
PART = "512KiB"       # about 48 partitions per copy: each long enough to be
                      # caught running now that the engine is faster
HEADER = ["id", "g", "w"]


@pytest.fixture(scope="module")
def life_input(session_server):
    d = f"life-{uuid.uuid4().hex[:8]}"
    first = session_server.data / d / "part-0.csv"
    first.parent.mkdir(parents=True)
    n = datagen.write_big(first, LIFE_MB * 1024 * 1024)
    for i in range(1, COPIES):
        os.link(first, first.parent / f"part-{i}.csv")
    # One partition of its own, for the poison test.
    return {"glob": f"{d}/part-*.csv", "one": f"{d}/part-0.csv", "rows": n,
            "expected": datagen.big_expected(n) * COPIES,
            "expected_one": datagen.big_expected(n)}


def spec_of(inp, tag, **opts):
    spec = {"name": unique_name(tag),
            "input": {"path": inp["glob"], "format": "csv",
                      "partition_size": PART},
            "steps": datagen.BIG_STEPS, "output": {"format": "csv"},
            "max_attempts": 5}
    spec.update(opts)
    return spec


def until_progress(srv, jid, min_done=0, timeout=30):
    """Wait until the job runs with at least 'min_done' partitions done and
    is not over; -> the job. Fails if it ends first."""
    def ready():
        job = srv.get(jid)
        assert job["status"] not in TERMINAL, (
            f"job ended {job['status']} before the test could interrupt it "
            f"(raise SHEAF_IT_LIFE_MB, now {LIFE_MB}): {job.get('error')}")
        p = job["progress"]
        return job if (job["status"] == "running"
                       and p["partitions_done"] >= min_done) else None
    return wait_until(ready, timeout, f"job {jid} not running with "
                      f"{min_done} partitions done", 0.01)


def check_succeeded(srv, jid, expected, timeout=90, url=None, spool=None):
    """The job succeeded with exactly the oracle's result, each partition
    committed once; -> (job, task rows)."""
    job = srv.wait(jid, timeout=timeout)
    assert job["status"] == "succeeded", (
        f"job {jid} ended {job['status']}: {job.get('error')!r}")
    check_exact(srv.result(jid), HEADER, expected, f"result of {jid}")
    tasks = check_committed_once(srv, jid, url=url, spool=spool)
    p = job["progress"]
    assert p["partitions_done"] == p["partitions_total"] == len(tasks), p
    return job, tasks


def log_lines(srv):
    return srv.log_path.read_bytes().decode("utf-8", "replace").splitlines()


def where_is(pid):
    """What process 'pid' is doing, for a failure message."""
    try:
        state = open(f"/proc/{pid}/stat").read().split()[2]
        wchan = open(f"/proc/{pid}/wchan").read()
    except OSError:
        return "(gone)"
    try:
        bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "bt"],
                            capture_output=True, text=True, check=False,
                            timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        bt = f"(no backtrace: {e})"
    return f"state {state}, wchan {wchan}\n{bt[-4000:]}"


def cancel_if_running(srv, jid):
    """Leave no job running for the next test's instances to pick up."""
    try:
        if srv.running() and srv.get(jid)["status"] not in TERMINAL:
            srv.api("POST", f"/v1/jobs/{jid}/cancel")
    except (OSError, AssertionError):
        pass


# --------------------------------------------------------------------------
# 1. Fencing


@pytest.mark.recovery
def test_fencing_stale_worker_cannot_commit(life_sheaf, life_input):
    """A worker frozen past its lease (2 s) while holding a partition: the
    reaper hands the partition back, the other worker takes it under a new
    lease and the job finishes without the frozen one. Continued, the stale
    attempt can commit nothing: the task keeps the new attempt's output, the
    result is exact, and the stale attempt's files are gone."""
    srv = life_sheaf("fence", env={"SHEAF_LEASE_S": "2"})
    jid = srv.submit(spec_of(life_input, "fence"))["id"]
    until_progress(srv, jid)
    victim, held = freeze_busy_worker(srv, jid, srv.children(),
                                      writing=True)
    assert victim, f"no worker caught writing a partition of job {jid}"
    part, stale = held["part"], held["lease"]
    # Had it been frozen inside a transaction instead, the server would end
    # its session after a lease, so its row locks could not stall the job.
    with open(f"/proc/{victim}/environ", "rb") as f:
        environ = f.read().split(b"\0")
    assert any(e.startswith(b"PGOPTIONS=") and
               b"idle_in_transaction_session_timeout=2000" in e
               for e in environ), "workers' sessions have no idle timeout"
    try:
        def taken_over():
            row = [t for t in db_tasks(jid) if t["part"] == part][0]
            return row if row["lease"] not in (None, stale) else None
        row = wait_until(taken_over, 30, f"partition {part}, held by frozen "
                         f"worker {victim} under lease {stale}, was never "
                         f"taken over")
        assert worker_pid(row["worker"]) != victim, row
        job = srv.wait(jid, timeout=90)
        assert job["status"] == "succeeded", job
        assert proc_alive(victim), "the frozen worker died"
        mark = len(log_lines(srv))
    finally:
        signal_all([victim], signal.SIGCONT)

    # The stale attempt runs on: whether it is stopped at its next heartbeat
    # or reaches its commit, it must say so and leave nothing behind.
    def stale_done():
        return [ln for ln in log_lines(srv)[mark:]
                if f"[{victim}]" in ln and jid in ln]
    wait_until(stale_done, 30, lambda: f"worker {victim} said nothing about "
               f"job {jid} after being continued; it is at:\n"
               f"{where_is(victim)}")
    _, tasks = check_succeeded(srv, jid, life_input["expected"])
    row = [t for t in tasks if t["part"] == part][0]
    assert row["attempts"] >= 2 and row["lease"] != stale, row
    assert not [f for f in job_spool_files(srv.spool, jid)
                if f"-l{stale}." in f or f.endswith(f"-l{stale}")]
    assert proc_alive(victim), "the stale worker should live on"


# --------------------------------------------------------------------------
# 2, 3. Retries, a poison partition, a worker that segfaults


@pytest.mark.recovery
def test_poison_partition_fails_after_max_attempts(life_sheaf, life_input):
    """A partition whose worker is killed on every attempt: retried (the
    attempts show in /tasks) until max_attempts, then the job fails with an
    error that names the partition and says its worker died."""
    srv = life_sheaf("poison")
    spec = spec_of(life_input, "poison", max_attempts=3)
    spec["input"].update(path=life_input["one"], partition_size="1GiB")
    jid = srv.submit(spec)["id"]
    try:
        for attempt in (1, 2, 3):
            victim, held = freeze_busy_worker(srv, jid, None, 60)
            assert victim, f"attempt {attempt}: no worker caught running it"
            assert held["attempts"] == attempt, held
            r = srv.api("GET", f"/v1/jobs/{jid}/tasks")
            t = r.body["tasks"][0]
            assert (t["state"], t["attempts"]) == ("running", attempt), t
            os.kill(victim, signal.SIGKILL)

            def handed_back():
                t = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"][0]
                return t["attempts"] > attempt or t["state"] != "running"
            wait_until(handed_back, 30,
                       f"attempt {attempt}'s task was not handed back", 0.005)
        job = srv.wait(jid, timeout=60)
    finally:
        cancel_if_running(srv, jid)
    assert job["status"] == "failed", job
    err = job["error"] or ""
    assert "partition 0" in err and "died" in err and "3 attempts" in err, err
    t = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"][0]
    assert (t["state"], t["attempts"]) == ("failed", 3), t
    assert "attempt 3" in (t["error"] or ""), t
    # The supervisor replaced every worker it lost.
    wait_until(lambda: len(srv.children()) >= 2, 15, "workers not replaced")


@pytest.mark.recovery
def test_worker_segfault_is_retried(life_sheaf, life_input):
    """A worker that dies of SIGSEGV mid-partition is replaced, its
    partition runs again, and the job still gives the exact result."""
    # The sanitizer build would report the signal as a crash of its own
    # (and the harness fails on such reports): let it die plainly. No core.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"ASAN_OPTIONS": (asan + ":" if asan else "") + "handle_segv=0"}
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    try:
        srv = life_sheaf("segv", env=env)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    jid = srv.submit(spec_of(life_input, "segv"))["id"]
    until_progress(srv, jid)
    victim, held = freeze_busy_worker(srv, jid, srv.children())
    assert victim, f"no worker caught holding a partition of job {jid}"
    os.kill(victim, signal.SIGSEGV)
    os.kill(victim, signal.SIGCONT)
    wait_until(lambda: not proc_alive(victim), 10, f"{victim} lives on")
    _, tasks = check_succeeded(srv, jid, life_input["expected"])
    row = [t for t in tasks if t["part"] == held["part"]][0]
    assert row["attempts"] >= 2 and row["lease"] != held["lease"], row
    assert any(f"worker {victim} killed by signal {int(signal.SIGSEGV)}"
               in ln for ln in log_lines(srv)), "the crash was not logged"


# --------------------------------------------------------------------------
# 4. A restart resumes from the finished partitions


@pytest.mark.recovery
def test_restart_keeps_finished_partitions(life_sheaf, life_input):
    """sheafd and its workers killed with SIGKILL a third of the way
    through a job, then started again: the partitions finished before the
    kill are not computed again (same lease, same output, same attempt
    count); the ones that were running are; the result is exact."""
    srv = life_sheaf("resume", env={"SHEAF_LEASE_S": "2"})
    jid = srv.submit(spec_of(life_input, "resume"))["id"]
    total = srv.get(jid)["progress"]["partitions_total"]
    until_progress(srv, jid, min_done=max(1, total // 3))
    kids = srv.children()
    signal_all(kids, signal.SIGSTOP)  # nothing ends between look and kill
    before = {t["part"]: t for t in db_tasks(jid)}
    orphans = srv.kill9()
    signal_all(orphans, signal.SIGKILL)
    done = {p: t for p, t in before.items() if t["state"] == "done"}
    running = [p for p, t in before.items() if t["state"] == "running"]
    assert 0 < len(done) < total, (len(done), total)
    srv.start()
    _, tasks = check_succeeded(srv, jid, life_input["expected"])
    by_part = {t["part"]: t for t in tasks}
    for p, t in done.items():
        now = by_part[p]
        assert (now["lease"], now["output"], now["attempts"]) == (
            t["lease"], t["output"], t["attempts"]), (
            f"partition {p} finished before the kill was run again: "
            f"before {t}, after {now}")
    for p in running:
        assert by_part[p]["attempts"] > before[p]["attempts"], by_part[p]


# --------------------------------------------------------------------------
# 5. Several instances


@pytest.mark.recovery
def test_several_instances_share_a_job(life_sheaf, life_input, tmp_root):
    """Two sheafd (one API each) and a `sheafd --role worker`, one worker
    each, on one database and one spool: the job's partitions are run by
    workers of all of them; one sheafd killed mid-job leaves the job to the
    others, which finish it with the exact result, each partition committed
    once."""
    spool = tmp_root / f"shared-spool-{uuid.uuid4().hex[:6]}"
    env = {"SHEAF_WORKERS": "1", "SHEAF_LEASE_S": "2"}
    a = life_sheaf("multi-a", env=env, spool=spool)
    b = life_sheaf("multi-b", env=env, spool=spool)
    c = life_sheaf("multi-c", env=env, spool=spool, role="worker")
    nodes = {"a": a, "b": b, "c": c}
    jid = a.submit(spec_of(life_input, "multi"))["id"]

    def node_of(worker):
        pid = worker_pid(worker)
        for name, n in nodes.items():
            if pid in n.seen_children or pid in n.orphans:
                return name
        return None

    def nodes_done():
        for n in nodes.values():
            n.note_children()
        ts = a.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"]
        assert a.get(jid)["status"] not in TERMINAL, "job ended too soon"
        seen = {node_of(t["worker"]) for t in ts if t["state"] == "done"}
        return seen if len(seen - {None}) >= 2 else None
    wait_until(nodes_done, 60, "no partitions done by two instances")

    everyone = [p for n in nodes.values() for p in n.children()]
    signal_all(everyone, signal.SIGSTOP)
    try:
        assert a.get(jid)["status"] not in TERMINAL
        orphans = a.kill9()
        signal_all(orphans, signal.SIGKILL)
    finally:
        signal_all(everyone, signal.SIGCONT)
    _, tasks = check_succeeded(b, jid, life_input["expected"], spool=spool)
    api_tasks = b.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"]
    by_node = {node_of(t["worker"]) for t in api_tasks}
    assert len(by_node - {None}) >= 2, by_node
    assert {"b", "c"} <= by_node, (
        f"after a was killed, b and c should have finished the job: "
        f"{by_node}")


# --------------------------------------------------------------------------
# 6. Timeout and retention (cancel and delete: test_recovery.py)


@pytest.mark.recovery
def test_timeout_fails_job(life_sheaf, life_input):
    """A job that cannot end within its timeout_s (its workers are frozen)
    ends failed with a timeout error; its partitions are no longer running
    and the workers that held them are replaced."""
    srv = life_sheaf("timeout")
    kids = srv.children()
    jid = srv.submit(spec_of(life_input, "timeout", timeout_s=1))["id"]
    signal_all(kids, signal.SIGSTOP)
    try:
        job = srv.wait(jid, timeout=30)
    finally:
        signal_all(kids, signal.SIGCONT)
    assert job["status"] == "failed", job
    assert "timed out" in job["error"] and "timeout_s" in job["error"], job
    ts = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"]
    assert not [t for t in ts if t["state"] in ("queued", "running")], ts
    assert srv.api("GET", f"/v1/jobs/{jid}/result").status == 409
    wait_until(lambda: len(srv.children()) >= 2, 15, "workers not replaced")


@pytest.mark.recovery
def test_retention_removes_job(life_sheaf, life_input):
    """A job with retention_s = 1 is gone (404, files removed) a few
    seconds after it ended (SHEAF_SWEEP_S = 1); one with the default
    retention stays."""
    srv = life_sheaf("retention", env={"SHEAF_SWEEP_S": "1"})
    spec = spec_of(life_input, "retain", retention_s=1)
    spec["input"].update(path=life_input["one"], partition_size="1MiB")
    short = srv.submit(spec)["id"]
    spec = dict(spec, name=unique_name("keep"))
    spec.pop("retention_s")
    kept = srv.submit(spec)["id"]
    for jid in (short, kept):
        assert srv.wait(jid)["status"] == "succeeded"
    wait_until(lambda: srv.api("GET", f"/v1/jobs/{short}").status == 404
               and not (srv.spool / "jobs" / short).exists(), 15,
               f"job {short} or its files still there after its retention")
    assert srv.api("GET", f"/v1/jobs/{short}/result").status == 404
    assert srv.get(kept)["status"] == "succeeded"
    assert job_spool_files(srv.spool, kept)
    check_exact(srv.result(kept), HEADER, life_input["expected_one"])


# --------------------------------------------------------------------------
# 7. Graceful shutdown


@pytest.mark.recovery
@pytest.mark.parametrize("max_attempts", [5, 1])
def test_sigterm_graceful_then_restart(life_sheaf, life_input, max_attempts):
    """SIGTERM (twice) mid-job, one worker frozen on a partition so that it
    cannot finish within SHEAF_GRACE_S: sheafd exits 0 within the grace (and
    a little), the frozen partition is handed back to the queue, none is
    left running, and a restarted sheafd finishes the job exactly. A
    shutdown is not the partition's fault: handed back on its last attempt
    (max_attempts 1), it must not fail the job."""
    grace = 3
    srv = life_sheaf("sigterm", env={"SHEAF_GRACE_S": str(grace),
                                     "SHEAF_LEASE_S": "30"})
    spec = spec_of(life_input, "sigterm", max_attempts=max_attempts)
    jid = srv.submit(spec)["id"]
    until_progress(srv, jid)
    victim, held = freeze_busy_worker(srv, jid, srv.children())
    assert victim, f"no worker caught holding a partition of job {jid}"
    proc = srv.proc
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # a second one changes nothing
    try:
        rc = proc.wait(timeout=grace + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"sheafd did not exit within {grace + 10} s of SIGTERM")
    took = time.monotonic() - t0
    srv.proc = None
    assert rc == 0, f"sheafd exited with {rc} after SIGTERM"
    assert took < grace + 5, f"shutdown took {took:.1f} s (grace {grace} s)"
    assert not srv.reap_orphans(grace=5), "workers outlived sheafd"
    assert not srv.sanitizer_reports()
    rows = db_tasks(jid)
    assert not [t for t in rows if t["state"] == "running"], [
        t for t in rows if t["state"] == "running"]
    row = [t for t in rows if t["part"] == held["part"]][0]
    assert row["state"] == "queued" and row["worker"] is None, (
        f"the partition of the worker killed at the end of the grace was "
        f"not handed back: {row}")
    assert any("did not stop within" in ln for ln in log_lines(srv))

    srv.start()
    _, tasks = check_succeeded(srv, jid, life_input["expected"])
    row = [t for t in tasks if t["part"] == held["part"]][0]
    assert row["lease"] != held["lease"], row  # it ran again


# --------------------------------------------------------------------------
# 8. Database outage, unwritable spool


@pytest.mark.recovery
def test_database_restart_mid_job(life_sheaf, life_input):
    """PostgreSQL (a cluster of this test's own) stopped mid-job and started
    again: meanwhile /healthz is 200, /readyz and the API answer 503 at once
    (not hang), workers and the sweeper back off; once it is back, /readyz
    is 200 and the job finishes with the exact result."""
    pg = PrivatePg("outage")
    srv = None
    try:
        url = pg.start()
        srv = life_sheaf("outage", db_url=url, env={"SHEAF_LEASE_S": "2"})
        jid = srv.submit(spec_of(life_input, "outage"))["id"]
        until_progress(srv, jid, min_done=2)
        kids = srv.children()
        signal_all(kids, signal.SIGSTOP)  # keep the job unfinished
        try:
            pg.stop()
        finally:
            signal_all(kids, signal.SIGCONT)
        down_at = len(log_lines(srv))
        t_down = time.monotonic()
        spec = spec_of(life_input, "outage-2")
        for _ in range(3):  # several rounds: the pool's idle connections too
            for method, path, body in (
                    ("GET", "/readyz", None),
                    ("GET", f"/v1/jobs/{jid}", None),
                    ("GET", f"/v1/jobs/{jid}/tasks", None),
                    ("GET", "/v1/jobs", None),
                    ("POST", "/v1/jobs", spec)):
                t0 = time.monotonic()
                r = srv.api(method, path, body, timeout=15)
                took = time.monotonic() - t0
                assert r.status == 503, f"{method} {path} during the outage: "\
                                        f"{r!r}"
                assert r.body["error"]["code"] == "unavailable", r
                assert r.headers.get("Retry-After"), r
                assert took < 6, f"{method} {path} took {took:.1f} s"
            r = srv.api("GET", "/healthz", timeout=5)
            assert r.status == 200, r
            time.sleep(0.5)
        assert srv.running()
        assert len(srv.children()) == 2, "workers died of the outage"
        down_for = time.monotonic() - t_down
        pg.start()
        wait_until(lambda: srv.api("GET", "/readyz").status == 200, 20,
                   "/readyz not 200 after the database came back")
        # The main loop's housekeeping backs off: it says once that the
        # database is away, not at each of its 250 ms ticks.
        warns = [ln for ln in log_lines(srv)[down_at:]
                 if f"sheafd[{srv.pid}] warn:" in ln]
        assert len(warns) <= 2 + down_for / 2, "\n".join(warns[-20:])
        check_succeeded(srv, jid, life_input["expected"], url=url)

        # A short restart with no request in between: the pool's idle
        # connections are all dead, yet the first calls after it succeed.
        for _ in range(4):
            assert srv.api("GET", f"/v1/jobs/{jid}").status == 200
        pg.stop()
        pg.start()
        for path in (f"/v1/jobs/{jid}", "/readyz", f"/v1/jobs/{jid}/tasks",
                     f"/v1/jobs/{jid}/result"):
            r = srv.api("GET", path)
            assert r.status == 200, f"GET {path} right after a restart: {r!r}"
        srv.stop()
    finally:
        if srv is not None and srv.running():
            srv.stop()
        pg.destroy()


@pytest.mark.recovery
def test_unwritable_spool_fails_partition(life_sheaf, life_input):
    """A spool where the job's directory cannot be made (SPOOL/jobs is a
    file: root ignores permission bits, so chmod would prove nothing) fails
    the partition with an error naming the directory, retried with backoff
    up to max_attempts, while the service stays healthy; once the spool is
    writable again a retried partition succeeds."""
    srv = life_sheaf("spool")
    jobs = srv.spool / "jobs"
    subprocess.run(["rm", "-rf", str(jobs)], check=True)
    jobs.write_text("not a directory\n")
    try:
        spec = spec_of(life_input, "spool", max_attempts=2)
        spec["input"].update(path=life_input["one"], partition_size="1GiB")
        jid = srv.submit(spec)["id"]

        def task():
            return srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"][0]

        def first_ended():
            t = task()
            return t if t["attempts"] >= 1 and t["state"] != "running" \
                else None
        t = wait_until(first_ended, 30, "the first attempt did not end",
                       0.005)
        assert (t["state"], t["attempts"]) == ("queued", 1), t
        assert "spool" in (t["error"] or ""), t
        failed_at = time.monotonic()
        wait_until(lambda: task()["attempts"] >= 2, 30,
                   "the partition was not retried", 0.005)
        # Attempt 2 waits out a backoff of 1 s +- 50 % (no NOTIFY then:
        # the idle worker's polling finds it).
        assert time.monotonic() - failed_at >= 0.45
        job = srv.wait(jid, timeout=30)
        assert job["status"] == "failed", job
        err = job["error"] or ""
        assert "partition 0" in err and "spool" in err and \
            "Not a directory" in err, err
        t = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"][0]
        assert (t["state"], t["attempts"]) == ("failed", 2), t
        assert srv.api("GET", "/healthz").status == 200
        assert srv.api("GET", "/readyz").status == 200

        # A retryable failure, then the spool is repaired: the next
        # attempt (after the backoff, found by polling) succeeds.
        spec = dict(spec, name=unique_name("spool-retry"), max_attempts=5)
        jid = srv.submit(spec)["id"]
        wait_until(lambda: db_tasks(jid)[0]["attempts"] >= 1
                   and db_tasks(jid)[0]["state"] == "queued", 30,
                   "the first attempt's failure was not recorded")
    finally:
        jobs.unlink()
        jobs.mkdir()
    job = srv.wait(jid, timeout=30)
    assert job["status"] == "succeeded", job
    check_exact(srv.result(jid), HEADER, life_input["expected_one"])
    t = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"][0]
    assert t["attempts"] >= 2 and t["error"] is None, t
    assert srv.running()


@pytest.mark.recovery
def test_full_disk_fails_partition(life_sheaf, life_input):
    """A full disk: the files the attempts of a partition will write (their
    names follow from the lease sequence) are links to /dev/full, where
    every write fails with ENOSPC. Each attempt fails with an error that
    says so, the partition is retried up to max_attempts, the job fails
    naming the partition, and the service stays healthy and runs the next
    job."""
    srv = life_sheaf("full")
    kids = srv.children()
    spec = spec_of(life_input, "full", max_attempts=2)
    spec["input"].update(path=life_input["one"], partition_size="1GiB")
    signal_all(kids, signal.SIGSTOP)  # nothing is claimed until the trap
    try:
        jid = srv.submit(spec)["id"]
        (last, called), = sql("SELECT last_value, is_called FROM"
                              " task_lease_seq")
        first = int(last) + (1 if called == "t" else 0)
        d = srv.spool / "jobs" / jid
        d.mkdir(parents=True)
        for lease in range(first, first + 2):
            os.symlink("/dev/full", d / f"s0-p00000-l{lease}.csv.tmp")
    finally:
        signal_all(kids, signal.SIGCONT)
    job = srv.wait(jid, timeout=30)
    assert job["status"] == "failed", job
    err = job["error"] or ""
    assert "partition 0" in err and "No space left on device" in err, err
    t = srv.api("GET", f"/v1/jobs/{jid}/tasks").body["tasks"][0]
    assert (t["state"], t["attempts"]) == ("failed", 2), t
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")
    for path in ("/healthz", "/readyz"):
        assert srv.api("GET", path).status == 200, path
    assert len(srv.children()) == 2
    spec = dict(spec, name=unique_name("full-after"))
    _, body = srv.run(spec)
    check_exact(body, HEADER, life_input["expected_one"])


# --------------------------------------------------------------------------
# 9. Idempotency


def test_idempotency_key(sheaf, life_input):
    """The same Idempotency-Key and body give back the same job (200), also
    with keys reordered and respaced and after the job ended; the same key
    with another body is 409; another key is another job."""
    spec = spec_of(life_input, "idem")
    spec["input"].update(path=life_input["one"], partition_size="1MiB")
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    r1 = sheaf.api("POST", "/v1/jobs", spec, key)
    assert r1.status == 201, r1
    jid = r1.body["id"]
    r2 = sheaf.api("POST", "/v1/jobs", spec, key)
    assert (r2.status, r2.body["id"]) == (200, jid), r2
    respaced = "{\n  " + ",\n  ".join(
        f"{json.dumps(k)} :  {json.dumps(v)}"
        for k, v in reversed(list(spec.items()))) + "\n}"
    r3 = sheaf.api("POST", "/v1/jobs", respaced, key)
    assert (r3.status, r3.body["id"]) == (200, jid), r3
    other = dict(spec, max_attempts=4)
    r4 = sheaf.api("POST", "/v1/jobs", other, key)
    assert r4.status == 409 and r4.body["error"]["code"] == "conflict", r4
    r5 = sheaf.api("POST", "/v1/jobs", spec,
                   {"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    assert r5.status == 201 and r5.body["id"] != jid, r5
    assert sheaf.wait(jid)["status"] == "succeeded"
    r6 = sheaf.api("POST", "/v1/jobs", spec, key)
    assert (r6.status, r6.body["id"], r6.body["status"]) == (
        200, jid, "succeeded"), r6
    listed = sheaf.api("GET", f"/v1/jobs?name={spec['name']}").body["jobs"]
    assert sorted(j["id"] for j in listed) == sorted([jid, r5.body["id"]])
    sheaf.wait(r5.body["id"])
