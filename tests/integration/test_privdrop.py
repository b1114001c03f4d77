"""
test_privdrop.py - a sheafd started as root with SHEAF_USER gives up root
(issue 9, point 11): after binding its listener it runs, as its workers
do, as that user (uid, gid, no supplementary groups of root's, no
capabilities: /proc/<pid>/status), owns its spool, still runs jobs whose
results download, and cannot read a file only root may read.

Needs root (skipped otherwise); creates the system user 'sheaf-it' when it
is missing and removes it after. The test database's socket is root's
(mode 0700, scripts/pg.sh), so a small proxy on a socket the user can
reach forwards its connections (for `make run`, pg.sh gives the cluster's
socket to the user's group instead: SHEAF_PG_SOCKET_GROUP).
"""

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from harness import (LifeServer, check_exact, database_url, unique_name,
                     wait_until)

USER = "sheaf-it"

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="privilege drop needs root")


class SocketProxy:
    """Forward connections on the unix socket 'path' (mode 0777) to the
    unix socket 'target', a pair of threads a connection."""

    def __init__(self, target, path):
        self.target = target
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        os.chmod(path, 0o777)
        self.srv.listen(64)
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                b.connect(self.target)
            except OSError:
                a.close()
                continue
            self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y),
                                 daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.srv.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def conninfo(url):
    """A libpq keyword/value string -> dict (values without spaces)."""
    return dict(kv.split("=", 1) for kv in url.split())


@pytest.fixture(scope="module")
def user():
    made = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--user-group",
                            "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", USER],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot create the user {USER}: {r.stderr}")
        made = True
    yield pwd.getpwnam(USER)
    if made:
        subprocess.run(["userdel", USER], check=False)


@pytest.fixture(scope="module")
def priv_server(user, session_server):
    # The session instance shares the database: stopped, it takes none of
    # this one's tasks (restarted at the end, for the tests that follow).
    session_server.stop()
    info = conninfo(database_url())
    if not info.get("host", "").startswith("/"):
        pytest.skip("the test database is not reached by a unix socket")
    root = Path(tempfile.mkdtemp(prefix="sheaf-priv-", dir="/var/tmp"))
    root.chmod(0o755)
    sockdir = root / "pg"
    sockdir.mkdir()
    sockdir.chmod(0o755)
    port = info.get("port", "5432")
    proxy = SocketProxy(f"{info['host']}/.s.PGSQL.{port}",
                        str(sockdir / f".s.PGSQL.{port}"))
    url = " ".join(f"{k}={v}" for k, v in dict(info, host=str(sockdir)).items())
    srv = LifeServer(root, label="privdrop", db_url=url,
                     env={"SHEAF_USER": USER, "SHEAF_WORKERS": "2"})
    srv.start()
    yield srv
    try:
        srv.stop()
    finally:
        proxy.close()
        shutil.rmtree(root, ignore_errors=True)
        session_server.ensure_running()


def status(pid):
    """/proc/<pid>/status as a dict of its fields."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f
                    if ":\t" in line)


def check_unprivileged(pid, user, what):
    st = status(pid)
    uids = st["Uid"].split()
    gids = st["Gid"].split()
    assert uids == [str(user.pw_uid)] * 4, f"{what} {pid}: Uid {uids}"
    assert gids == [str(user.pw_gid)] * 4, f"{what} {pid}: Gid {gids}"
    groups = st.get("Groups", "").split()
    assert "0" not in groups, f"{what} {pid}: Groups {groups}"
    for cap in ("CapEff", "CapPrm"):
        assert int(st[cap], 16) == 0, f"{what} {pid}: {cap} {st[cap]}"
    return st


def test_sheafd_and_workers_run_as_the_user(priv_server, user):
    srv = priv_server
    check_unprivileged(srv.pid, user, "sheafd")
    kids = srv.children()
    assert len(kids) == 2, f"workers of sheafd: {kids}"
    for pid in kids:
        # a worker sets its limits once it has started (later under ASan),
        # the seccomp filter (service/sandbox.c; mode 2) last
        wait_until(lambda: status(pid)["Seccomp"].strip() == "2", 30,
                   f"worker {pid} to install its seccomp filter")
        st = check_unprivileged(pid, user, "worker")
        assert st["NoNewPrivs"].strip() == "1", f"worker {pid}: {st}"
    # what sheafd writes is the user's
    assert srv.spool.stat().st_uid == user.pw_uid
    assert "running as sheaf-it" in srv.log_path.read_text(errors="replace")


def test_jobs_run_and_results_download(priv_server):
    srv = priv_server
    rel = f"priv-{uuid.uuid4().hex[:8]}/a.csv"
    srv.write_data(rel, "k,v\na,1\nb,2\na,3\n")
    spec = {"name": unique_name("priv"),
            "input": {"path": rel, "format": "csv", "partition_size": 4},
            "steps": [{"op": "groupby", "by": ["k"],
                       "aggs": [{"fn": "sum", "column": "v", "as": "s"}]},
                      {"op": "sort", "by": ["k"]}],
            "output": {"format": "csv"}}
    job, body = srv.run(spec, timeout=60)
    check_exact(body, ["k", "s"], [["a", 4], ["b", 2]])
    assert job["progress"]["partitions_total"] >= 2, job["progress"]
    # the job's files in the spool are the user's too
    owners = {p.stat().st_uid for p in (srv.spool / "jobs").rglob("*")}
    assert owners <= {pwd.getpwnam(USER).pw_uid}, owners


def test_a_root_only_file_cannot_be_read(priv_server):
    """A file of the data root that only root may read (0600) is refused
    (at submit, where the service reads the input's header, or by the
    worker): as root, it would have been read."""
    srv = priv_server
    rel = f"priv-{uuid.uuid4().hex[:8]}/secret.csv"
    path = srv.write_data(rel, "k,v\nsecret,1\n")
    path.chmod(0o600)
    assert path.stat().st_uid == 0
    spec = {"name": unique_name("priv-secret"),
            "input": {"path": rel, "format": "csv",
                      "columns": {"k": "string", "v": "int"}},
            "steps": [], "output": {"format": "csv"}}
    r = srv.api("POST", "/v1/jobs", spec)
    if r.status == 400:  # the caller's to fix, not the service's fault
        assert r.body["error"]["path"] == "input.path", r.body
        msg = r.body["error"]["message"]
    else:
        assert r.status == 201, r
        job = srv.wait(r.body["id"], timeout=60)
        assert job["status"] == "failed", job
        msg = job["error"]
    assert re.search(r"[Pp]ermission denied", msg), msg
    assert "secret,1" not in msg
