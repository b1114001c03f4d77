"""GET /v1/nodes: every sheafd (--role all, api, worker) registers itself,
heartbeats from its sweeper, is shown lost once its lease passes (kill -9),
removes its row when it stops cleanly (SIGTERM); a node lost for longer
than SHEAF_NODE_RETENTION_S is removed by the sweepers; the list is paged
and needs a token like every /v1 route."""
import re
import socket
import subprocess
import time
import uuid

import pytest

from harness import database_url, http


def psql(sql):
    out = subprocess.run(["psql", database_url(), "-XAtqc", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def all_nodes(srv, headers=None, limit=None):
    """Every node, following next_cursor; checks the pages do not overlap."""
    nodes, cursor = [], None
    for _ in range(1000):
        q = []
        if limit:
            q.append(f"limit={limit}")
        if cursor:
            q.append(f"cursor={cursor}")
        path = "/v1/nodes" + ("?" + "&".join(q) if q else "")
        r = srv.api("GET", path, headers=headers)
        assert r.status == 200, r
        page = r.body["nodes"]
        if limit:
            assert len(page) <= limit, r
        nodes.extend(page)
        cursor = r.body["next_cursor"]
        if cursor is None:
            break
        assert page, f"an empty page with a next_cursor: {r!r}"
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)), f"a node listed twice: {ids}"
    return nodes


def node_of(srv, pid, **kw):
    """The row of the sheafd whose main process is 'pid' on this host, or
    None."""
    host = socket.gethostname()
    mine = [n for n in all_nodes(srv, **kw)
            if n["pid"] == pid and n["hostname"] == host]
    assert len(mine) <= 1, mine
    return mine[0] if mine else None


def wait_for(what, fn, timeout=30):
    """Poll fn() until it returns something true; fail after 'timeout' s
    (a guard against hanging, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s (last: {got!r})",
                        pytrace=False)
        time.sleep(0.2)


def build_of(srv):
    """The version and commit /metrics reports, as a node's build."""
    r = srv.api("GET", "/metrics")
    assert r.status == 200, r
    m = re.search(r'sheaf_build_info\{version="([^"]*)",commit="([^"]*)"\}',
                  r.raw.decode())
    assert m, r.raw[:500]
    return f"{m.group(1)} ({m.group(2)})"


def test_every_role_registers_and_heartbeats(life_sheaf):
    api = life_sheaf("nodes-all", env={"SHEAF_WORKERS": "2",
                                       "SHEAF_ADVERTISE": "10.1.2.3:8443"})
    only_api = life_sheaf("nodes-api", role="api")
    worker = life_sheaf("nodes-worker", role="worker",
                        env={"SHEAF_WORKERS": "1"})
    build = build_of(api)

    a = node_of(api, api.pid)
    o = node_of(api, only_api.pid)
    w = node_of(api, worker.pid)
    assert a and o and w, all_nodes(api)
    assert (a["role"], a["workers"], a["address"]) == \
        ("all", 2, "10.1.2.3:8443"), a
    assert (o["role"], o["workers"], o["address"]) == \
        ("api", 0, f"127.0.0.1:{only_api.port}"), o
    assert (w["role"], w["workers"], w["address"]) == ("worker", 1, None), w
    for n in (a, o, w):
        assert n["state"] == "alive", n
        assert n["build"] == build, n
        assert n["lease_s"] == 5, n
        assert n["heartbeat_at"] >= n["started_at"], n
    assert len({a["id"], o["id"], w["id"]}) == 3
    # the api-only node runs no worker process
    assert only_api.children() == {}
    # every node's API answers for all of them
    assert node_of(only_api, worker.pid)["id"] == w["id"]

    # the heartbeat moves on (a third of the 5 s lease)
    wait_for("a newer heartbeat of the worker node",
             lambda: node_of(api, worker.pid)["heartbeat_at"]
             > w["heartbeat_at"])

    # paged: one node a page gives the same nodes as one page
    full = all_nodes(api)
    paged = all_nodes(api, limit=1)
    assert [n["id"] for n in paged] == [n["id"] for n in full]
    for bad in ("limit=0", "limit=1001", "limit=x", "cursor=abc",
                "cursor=-1"):
        r = api.api("GET", f"/v1/nodes?{bad}")
        assert r.status == 400 and r.body["error"]["code"] == "bad_request", r

    # SIGTERM: the node removes its row on its way out
    pid = worker.pid
    worker.stop()
    assert node_of(api, pid) is None


def test_killed_node_is_lost_then_removed(life_sheaf):
    api = life_sheaf("nodes-watch", env={"SHEAF_SWEEP_S": "1"})
    victim = life_sheaf("nodes-victim", role="worker",
                        env={"SHEAF_WORKERS": "1", "SHEAF_LEASE_S": "2"})
    pid = victim.pid
    assert node_of(api, pid)["state"] == "alive"
    victim.kill9()
    victim.reap_orphans(grace=5)
    lost = wait_for("the killed node shown lost",
                    lambda: (node_of(api, pid) or {}).get("state") == "lost"
                    and node_of(api, pid))
    assert lost["lease_s"] == 2, lost
    # lost, not removed: the retention (a day by default) has not passed
    time.sleep(1.5)  # at least one pass of the sweeper (SHEAF_SWEEP_S=1)
    assert node_of(api, pid)["state"] == "lost"

    # a node lost for longer than the retention is removed by the sweeper
    old = str(uuid.uuid4())
    psql("INSERT INTO nodes (id, hostname, address, role, workers, pid,"
         " build, lease_s, started_at, heartbeat_at, lease_until) VALUES"
         f" ('{old}', 'gone.example', NULL, 'worker', 4, 1, 'old', 30,"
         " now() - interval '3 days', now() - interval '2 days',"
         " now() - interval '2 days')")
    wait_for("the node lost 2 days ago removed",
             lambda: psql(f"SELECT count(*) FROM nodes WHERE id = '{old}'")
             == "0")
    assert node_of(api, pid)["state"] == "lost"


def test_nodes_need_a_token_of_any_tenant(life_sheaf, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-nodes-a tenant-a\ntok-nodes-b tenant-b\n")
    srv = life_sheaf("nodes-auth", env={"SHEAF_TOKENS_FILE": str(tokens)})
    r = http(srv.base, "GET", "/v1/nodes")
    assert r.status == 401 and r.body["error"]["code"] == "unauthorized", r
    r = http(srv.base, "GET", "/v1/nodes",
             headers={"Authorization": "Bearer wrong"})
    assert r.status == 401, r
    seen = []
    for tok in ("tok-nodes-a", "tok-nodes-b"):
        n = node_of(srv, srv.pid,
                    headers={"Authorization": f"Bearer {tok}"})
        assert n is not None and n["state"] == "alive", n
        seen.append(n["id"])
    assert seen[0] == seen[1]
