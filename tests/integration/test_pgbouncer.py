"""sheafd behind pgbouncer in transaction mode (Debian's pgbouncer): two
nodes, each client connection multiplexed over fewer server sessions than
there are clients, migrate a new database, run a one-stage and a
multi-stage job to the exact answer, and wake long polls through the one
direct session SHEAF_DB_LISTEN_URL names (LISTEN needs a session); with
SHEAF_DB_LISTEN_URL=off nothing listens and everything polls. No advisory
lock is left behind (migrations take transaction-level ones)."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from harness import check_output, database_url, free_port

POOL_SIZE = 3  # server sessions pgbouncer opens to the database


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtqc", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def conninfo(url):
    """key=value pairs of a libpq keyword/value connection string."""
    return dict(kv.split("=", 1) for kv in url.split())


class PgBouncer:
    """A pgbouncer of this test's own on 127.0.0.1 in front of the test
    PostgreSQL (reached through its unix socket)."""

    def __init__(self):
        self.exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.access(self.exe, os.X_OK):
            pytest.fail("pgbouncer is not installed (scripts/deps.sh "
                        "installs Debian's pgbouncer)", pytrace=False)
        base = conninfo(database_url())
        self.user = base.get("user", "sheaf")
        self.db = "sheaf_pgb_" + uuid.uuid4().hex[:10]
        psql(database_url(), f"CREATE DATABASE {self.db}")
        # pgbouncer refuses to run as root: as root it runs as postgres,
        # which can reach the cluster's socket; its files must be readable
        # by that user, so not under pytest's private temporary directory.
        self.dir = tempfile.mkdtemp(prefix="sheaf-pgb-", dir="/var/tmp")
        self.port = free_port()
        self.log = os.path.join(self.dir, "pgbouncer.log")
        with open(os.path.join(self.dir, "users.txt"), "w") as f:
            f.write(f'"{self.user}" ""\n')
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w") as f:
            f.write(f"""[databases]
* = host={base['host']} port={base['port']}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/users.txt
admin_users = {self.user}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 200
; sheafd sends -c idle_in_transaction_session_timeout in PGOPTIONS, which
; pgbouncer cannot pass on per session: its own timeout stands in for it
ignore_startup_parameters = options
idle_transaction_timeout = 30
logfile = {self.log}
""")
        args = [self.exe, os.path.join(self.dir, "pgbouncer.ini")]
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.dir, pg.pw_uid, pg.pw_gid)
            for name in os.listdir(self.dir):
                os.chown(os.path.join(self.dir, name), pg.pw_uid, pg.pw_gid)
            args[1:1] = ["-u", "postgres"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        self.url = (f"host=127.0.0.1 port={self.port} user={self.user} "
                    f"dbname={self.db}")
        self.direct_url = f"{database_url()} dbname={self.db}"
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"pgbouncer exited with {self.proc.returncode}:"
                            f"\n{self.log_tail()}", pytrace=False)
            try:
                if psql(self.url, "SELECT 1") == "1":
                    break
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"pgbouncer did not answer within 20 s:\n"
                            f"{self.log_tail()}", pytrace=False)
            time.sleep(0.2)

    def log_tail(self):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-30:])
        except OSError as e:
            return str(e)

    def admin(self, command):
        """Rows of a pgbouncer console command, as lists of fields."""
        url = (f"host=127.0.0.1 port={self.port} user={self.user} "
               f"dbname=pgbouncer")
        out = subprocess.run(["psql", url, "-XAtq", "-F", "\t", "-c",
                              command], check=True, capture_output=True,
                             text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def server_sessions(self):
        """Backends of the test database: pgbouncer's server sessions and
        the direct LISTEN sessions."""
        return int(psql(database_url(), "SELECT count(*) FROM "
                        f"pg_stat_activity WHERE datname = '{self.db}'"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        psql(database_url(), f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


@pytest.fixture
def pgbouncer():
    pgb = PgBouncer()
    try:
        yield pgb
    finally:
        pgb.stop()


def groupby_job(srv):
    """A three-stage job (groupby, then sort) over many 1 KiB partitions,
    and its exact answer."""
    rel = f"pgb-{uuid.uuid4().hex[:8]}.csv"
    lines = ["k,v"] + [f"k{i % 7},{i}" for i in range(2000)]
    srv.write_data(rel, "\n".join(lines) + "\n")
    spec = {"input": {"path": rel, "columns": {"k": "string", "v": "int"},
                      "partition_size": "1KiB"},
            "steps": [{"op": "groupby", "by": ["k"],
                       "aggs": [{"as": "s", "fn": "sum", "column": "v"},
                                {"as": "n", "fn": "count"}]},
                      {"op": "sort", "by": [{"column": "k"}]}]}
    sums = {}
    for i in range(2000):
        s, n = sums.get(f"k{i % 7}", (0, 0))
        sums[f"k{i % 7}"] = (s + i, n + 1)
    expected = [[k, sums[k][0], sums[k][1]] for k in sorted(sums)]
    return spec, expected


def filter_job(srv):
    rel = f"pgb-f-{uuid.uuid4().hex[:8]}.csv"
    lines = ["id,v"] + [f"{i},{i * 3}" for i in range(500)]
    srv.write_data(rel, "\n".join(lines) + "\n")
    spec = {"input": {"path": rel, "columns": {"id": "int", "v": "int"},
                      "partition_size": "1KiB"},
            "steps": [{"op": "filter", "where": "v % 2 == 0"}]}
    return spec, [[i, i * 3] for i in range(500) if (i * 3) % 2 == 0]


def run_jobs(srv):
    """Run the filter and the groupby jobs through 'srv' to their exact
    answers; the second is waited for with ?wait= long polls."""
    spec, expected = filter_job(srv)
    job, body = srv.run(spec, timeout=120)
    check_output(body, ["id", "v"], expected)
    spec, expected = groupby_job(srv)
    job = srv.submit(spec)
    done = srv.wait(job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    check_output(srv.result(job["id"]), ["k", "s", "n"], expected)
    tasks = srv.api("GET", f"/v1/jobs/{job['id']}/tasks").body["tasks"]
    assert {t["stage"] for t in tasks} == {0, 1, 2}, tasks
    assert all(t["state"] == "done" for t in tasks), tasks


def notifications(srv):
    r = srv.api("GET", "/metrics")
    assert r.status == 200, r
    m = re.search(r"^sheaf_job_notifications_total (\d+)", r.raw.decode(),
                  re.M)
    assert m, r.raw[:800]
    return int(m.group(1))


def test_jobs_through_transaction_pooling(pgbouncer, life_sheaf):
    env = {"SHEAF_DB_LISTEN_URL": pgbouncer.direct_url, "SHEAF_DB_POOL": "4",
           "SHEAF_WORKERS": "2"}
    api = life_sheaf("pgb-api", db_url=pgbouncer.url, env=env)
    worker = life_sheaf("pgb-worker", role="worker", db_url=pgbouncer.url,
                        env=env, spool=api.spool)
    # migrated through pgbouncer, each migration once
    files = sorted(f for f in os.listdir(os.path.join(
        os.path.dirname(__file__), "..", "..", "migrations"))
        if f.endswith(".sql"))
    rows = psql(pgbouncer.direct_url, "SELECT version, count(*) FROM "
                "schema_migrations GROUP BY version ORDER BY 1")
    assert rows.splitlines() == [f"{f}|1" for f in files]

    run_jobs(api)

    # both nodes registered and alive, seen through the pooler
    nodes = api.api("GET", "/v1/nodes").body["nodes"]
    mine = {n["pid"]: n for n in nodes if n["hostname"] == socket.gethostname()}
    assert mine[api.pid]["state"] == "alive", nodes
    assert mine[worker.pid]["state"] == "alive", nodes
    assert mine[worker.pid]["role"] == "worker"

    # the long polls were woken through the direct LISTEN session
    assert notifications(api) > 0

    # more clients than server sessions: transaction pooling really was
    # in use, so nothing relied on a session
    clients = [c for c in pgbouncer.admin("SHOW CLIENTS")
               if pgbouncer.db in c]
    assert len(clients) > POOL_SIZE, clients
    # pgbouncer's sessions (at most POOL_SIZE) and the one direct LISTEN
    # session of the API node (its jobwatch); workers do not LISTEN
    assert pgbouncer.server_sessions() <= POOL_SIZE + 1
    assert psql(database_url(), "SELECT count(*) FROM pg_locks l JOIN"
                " pg_database d ON d.oid = l.database WHERE"
                f" l.locktype = 'advisory' AND d.datname = '{pgbouncer.db}'"
                ) == "0"


def test_polling_without_listen(pgbouncer, life_sheaf):
    env = {"SHEAF_DB_LISTEN_URL": "off", "SHEAF_WORKERS": "2"}
    srv = life_sheaf("pgb-poll", db_url=pgbouncer.url, env=env)
    run_jobs(srv)
    # nothing listened: every wake-up was a poll
    assert notifications(srv) == 0
    # only pgbouncer's sessions reach the database
    assert pgbouncer.server_sessions() <= POOL_SIZE
