"""
test_s3_shuffle.py - the spool's shuffle files through the store
(SHEAF_STORE, service/store.h): two sheafd with spools of their own (as on
two hosts) run one multi-stage job; each fetches the outputs the other
wrote from the bucket, the result is exact, and the job's shuffle objects
leave the store once its result is there. The same with three hosts in
network namespaces, one of them lost: tests/cluster.
"""

import time

import pytest

from harness import RUN_ID, check_exact, unique_name
from s3fixture import BUCKET

ROWS = 60000
GROUPS = 3  # fewer groups than buckets: some tasks write nothing


def data_text():
    lines = ["k,v"] + [f"g{(i * 7) % GROUPS:02d},{i % 1000}"
                       for i in range(ROWS)]
    return "\n".join(lines) + "\n"


def expected():
    acc = {}
    for i in range(ROWS):
        g, v = f"g{(i * 7) % GROUPS:02d}", i % 1000
        n, s = acc.get(g, (0, 0))
        acc[g] = (n + 1, s + v)
    return [[g, n, s] for g, (n, s) in sorted(acc.items())]


def test_two_spools_share_a_job_through_the_store(life_sheaf, s3_server):
    prefix = f"shuffle-{RUN_ID}"
    env = dict(s3_server.env(), SHEAF_STORE=f"s3://{BUCKET}/{prefix}/",
               SHEAF_WORKERS="1")
    a = life_sheaf("shuffle-a", env=env)
    b = life_sheaf("shuffle-b", env=env)
    assert a.spool != b.spool
    a.write_data(f"{prefix}/in.csv", data_text())
    spec = {"name": unique_name("shuffle"),
            "input": {"path": f"{prefix}/in.csv", "partition_size": "16KiB"},
            "steps": [{"op": "groupby", "by": ["k"],
                       "aggs": [{"as": "n", "fn": "count"},
                                {"as": "s", "fn": "sum", "column": "v"}]},
                      {"op": "sort", "by": [{"column": "k"}]}],
            "output": {"format": "csv"}}
    jid = a.submit(spec)["id"]
    job = a.wait(jid, 120)
    assert job["status"] == "succeeded", job
    tasks = a.api("GET", f"/v1/jobs/{jid}/tasks?limit=1000").body["tasks"]
    assert len({t["stage"] for t in tasks}) >= 2, tasks[:3]
    # Both ran tasks, and at least one read what the other wrote.
    workers = {t["worker"] for t in tasks}
    assert len(workers) >= 2, workers
    fetched = [ln for srv in (a, b) for ln in srv.tail(100000).splitlines()
               if jid in ln and "from the store" in ln]
    assert fetched, "no node fetched an output from the store"
    key = f"{prefix}/results/{jid}/result"
    deadline = time.monotonic() + 60
    while not [o for o in s3_server.list(key) if o["key"] == key]:
        if time.monotonic() > deadline:
            pytest.fail(f"no result object {key}")
        time.sleep(0.2)
    for srv in (a, b):
        check_exact(srv.result(jid), ["k", "n", "s"], expected(),
                    f"result via {srv.label}")
    deadline = time.monotonic() + 60
    while s3_server.list(f"{prefix}/spool/{jid}/"):
        if time.monotonic() > deadline:
            pytest.fail(f"shuffle objects of {jid} left in the store: "
                        f"{s3_server.list(f'{prefix}/spool/{jid}/')[:5]}")
        time.sleep(0.2)
