"""
test_crashloop.py - the crash loop of issue 4: round after round, start a
job, kill a random worker or the whole sheafd at a random moment, start
again what was killed, and check that the job ends succeeded with exactly
the oracle's result and that no partition output was committed twice.

The moment is random in two ways: how far the job has got (a random number
of partitions done), and how the kill lands:
  frozen  every worker is stopped (SIGSTOP) first, so the kill lands
          mid-job for sure, and the partitions done at that instant are
          known: they must not be computed again;
  live    the kill lands while everything runs: a worker may be writing its
          output, or have its commit in flight, when it dies.
Victims: one worker (SIGKILL; the supervisor replaces it), or sheafd itself
(SIGKILL; its workers die with it, as a machine that dies; the partitions
they held come back when their lease of 2 s ends).

SHEAF_IT_CRASH_ROUNDS (default 20) rounds must interrupt a running job;
SHEAF_IT_CRASH_SEED replays a run (the seed is printed on failure).
"""

import os
import random
import signal
import time
import uuid

import pytest

import datagen
from harness import (TERMINAL, check_committed_once, check_exact, db_tasks,
                     signal_all, unique_name, wait_until)

pytestmark = pytest.mark.recovery

ROUNDS = int(os.environ.get("SHEAF_IT_CRASH_ROUNDS", "20"))
SEED = int(os.environ.get("SHEAF_IT_CRASH_SEED", "0")) or \
    random.SystemRandom().randrange(1, 1 << 31)
INPUT_MB = 2
COPIES = 2
HEADER = ["id", "g", "w"]
ROUND_TIMEOUT_S = 60  # one round's job, crash and recovery included


@pytest.fixture(scope="module")
def crash_input(session_server):
    d = f"crash-{uuid.uuid4().hex[:8]}"
    first = session_server.data / d / "part-0.csv"
    first.parent.mkdir(parents=True)
    n = datagen.write_big(first, INPUT_MB * 1024 * 1024)
    for i in range(1, COPIES):
        os.link(first, first.parent / f"part-{i}.csv")
    return {"glob": f"{d}/part-*.csv",
            "expected": datagen.big_expected(n) * COPIES}


def run_round(srv, inp, rnd, no, log):
    """One round; -> True when the kill hit a job still running."""
    victim = rnd.choice(["worker", "worker", "sheafd"])
    mode = rnd.choice(["frozen", "live"])
    size = rnd.choice(["40KiB", "80KiB", "160KiB"])
    spec = {"name": unique_name(f"crash{no}"),
            "input": {"path": inp["glob"], "format": "csv",
                      "partition_size": size},
            "steps": datagen.BIG_STEPS, "output": {"format": "csv"},
            "max_attempts": 10}
    job = srv.submit(spec)
    jid = job["id"]
    total = job["progress"]["partitions_total"]
    target = rnd.randrange(0, max(1, total * 3 // 4))
    where = f"round {no} (seed {SEED}, {victim}, {mode}, {size}, job {jid})"

    def reached():
        j = srv.get(jid)
        return j if (j["status"] in TERMINAL
                     or j["progress"]["partitions_done"] >= target) else None
    wait_until(reached, ROUND_TIMEOUT_S, f"{where}: no progress", 0.005)

    kids = srv.children()
    before = {}
    pid = rnd.choice(sorted(kids))
    if mode == "frozen":
        signal_all(kids, signal.SIGSTOP)
        before = {(t["stage"], t["part"]): t for t in db_tasks(jid)}
    status = srv.get(jid)["status"]
    hit = status not in TERMINAL
    if victim == "worker":
        os.kill(pid, signal.SIGKILL)
        signal_all(kids, signal.SIGCONT)
    else:
        orphans = srv.kill9()
        signal_all(orphans, signal.SIGKILL)  # they die with it anyway
        srv.start()
    t_kill = time.monotonic()
    log.append(f"{where}: killed at {target}/{total} partitions, job "
               f"{status}")

    job = srv.wait(jid, timeout=ROUND_TIMEOUT_S)
    t_end = time.monotonic()
    assert job["status"] == "succeeded", (
        f"{where}: job ended {job['status']}: {job.get('error')!r}")
    check_exact(srv.result(jid), HEADER, inp["expected"], where)
    tasks = check_committed_once(srv, jid)
    assert len(tasks) == total == job["progress"]["partitions_done"], where
    for t in tasks:
        b = before.get((t["stage"], t["part"]))
        if b is None:
            continue
        if b["state"] == "done":
            assert (t["lease"], t["output"], t["attempts"]) == (
                b["lease"], b["output"], b["attempts"]), (
                f"{where}: partition {t['part']} was done before the kill "
                f"and ran again: before {b}, after {t}")
        elif b["state"] == "running" and (
                victim == "sheafd" or b["worker"].endswith(f":{pid}")):
            # Its attempt died with its worker: another one committed.
            assert t["attempts"] > b["attempts"] and \
                t["lease"] != b["lease"], (
                f"{where}: partition {t['part']} was running in a killed "
                f"worker, yet its attempt committed: before {b}, after {t}")
    # Every worker slot is filled again.
    wait_until(lambda: len(srv.children()) >= 2, 15,
               f"{where}: workers not replaced")
    log[-1] += (f"; recovered in {t_end - t_kill:.1f} s, checked in "
                f"{time.monotonic() - t_end:.1f} s")
    return hit


def test_crash_loop(life_sheaf, crash_input):
    srv = life_sheaf("crashloop", env={"SHEAF_LEASE_S": "2"})
    rnd = random.Random(SEED)
    log = []
    hits = rounds = 0
    t0 = time.monotonic()
    try:
        while hits < ROUNDS:
            rounds += 1
            assert rounds <= ROUNDS + 10, (
                f"only {hits} of {rounds - 1} rounds hit a running job")
            hits += run_round(srv, crash_input, rnd, rounds, log)
    except BaseException:
        print("\n".join(log))
        raise
    took = time.monotonic() - t0
    print("\n".join(log))
    print(f"crash loop: {hits} of {rounds} rounds interrupted a running "
          f"job, {took:.0f} s, seed {SEED}")
