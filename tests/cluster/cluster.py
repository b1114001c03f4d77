"""
cluster.py - three sheaf "hosts" as Linux network namespaces, for the
multi-host tests (test_cluster.py) and the scaling bench
(scripts/bench_cluster.sh). Root only.

    SW   a namespace holding only a bridge (br0)
    db   PostgreSQL (its own cluster, run as the postgres user) on
         ADDR.2:5432, TCP only, scram-sha-256 passwords
    s3   s3rver (npm, tools/it) on ADDR.3:4569, one bucket
    n1..n3  one sheafd each on ADDR.11..13:8080, with a hostname of its
         own (a UTS namespace: workers are named n1:PID...), its own data
         root and spool under the cluster's directory; shuffle files and
         results go through the store (SHEAF_STORE)
    cl   the client: the test process itself enters it (setns) to speak
         HTTP to the nodes, psql to the database and S3 to the store

Every namespace is linked to the bridge by a veth pair made inside the
namespaces (`ip -n SW link add ... peer ... netns NS`): nothing is added to
the root namespace, and the private range (10.213.X.0/24) is seen by
nothing else on the machine. Names carry a prefix and the test's pid, so
parallel runs do not clash. close() kills only the processes it started
(by process group), stops PostgreSQL and deletes the namespaces.
"""

import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import http  # noqa: E402

S3RVER = REPO / "tools" / "it" / "node_modules" / "s3rver" / "bin" / "s3rver.js"
S3CHECK = REPO / "tools" / "it" / "s3check.js"
BUCKET = "sheaf-cluster"
ACCESS_KEY = SECRET_KEY = "S3RVER"  # s3rver's built-in account
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def run(*args, timeout=60, check=True, **kw):
    """Run a command (a list of strings); -> CompletedProcess (text)."""
    p = subprocess.run([str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, check=False, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited "
                           f"{p.returncode}: {p.stderr.strip()}")
    return p


def pg_bin():
    vers = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                  key=lambda p: int(p.parent.name))
    if not vers:
        raise RuntimeError("no PostgreSQL in /usr/lib/postgresql")
    return vers[-1]


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


class Node:
    """One sheafd in namespace 'ns' (hostname 'name')."""

    def __init__(self, cluster, name, ip, role=None, cpu=None):
        self.c = cluster
        self.name = name
        self.ns = f"{cluster.tag}-{name}"
        self.ip = ip
        self.role = role
        self.cpu = cpu
        self.root = cluster.root / name
        self.spool = self.root / "spool"
        self.data = self.root / "data"
        self.log_path = self.root / "sheafd.log"
        self.base = f"http://{ip}:8080"
        self.proc = None
        self.starts = 0
        for d in (self.spool, self.data):
            d.mkdir(parents=True, exist_ok=True)

    def env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SHEAF_", "PG", "AWS_"))}
        env.update({
            "DATABASE_URL": self.c.db_url,
            "SHEAF_LISTEN": f"{self.ip}:8080",
            "SHEAF_DATA_ROOT": str(self.data),
            "SHEAF_SPOOL": str(self.spool),
            "SHEAF_WORKERS": str(self.c.workers),
            "SHEAF_MIGRATIONS": str(REPO / "migrations"),
            "SHEAF_LEASE_S": str(self.c.lease_s),
            "SHEAF_GRACE_S": "3",
            "SHEAF_USER": "",  # stays root: the test writes its files as root
            "SHEAF_STORE": f"s3://{BUCKET}/{self.c.store_prefix}/",
            "SHEAF_S3_ENDPOINT": self.c.s3_endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        })
        env.update(self.c.extra_env)
        return env

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30):
        """Start sheafd in the namespace; wait for /healthz (or, for a
        worker node, its workers)."""
        self.starts += 1
        argv = ["ip", "netns", "exec", self.ns, "unshare", "--uts"]
        if self.cpu is not None:
            argv += ["taskset", "-c", str(self.cpu)]
        argv += ["sh", "-c", 'hostname "$1" && shift && exec "$@"', "sh",
                 self.name, str(self.c.sheafd)]
        if self.role:
            argv += ["--role", self.role]
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n==== cluster: start #{self.starts} of {self.name}"
                       f" ====\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(
                argv, env=self.env(), cwd=str(self.root),
                stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sheafd on {self.name} exited "
                                   f"{self.proc.returncode}:\n{self.tail()}")
            if self.role == "worker":
                if len(self.workers()) >= self.c.workers:
                    return
            else:
                try:
                    if http(self.base, "GET", "/healthz",
                            timeout=2).status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"sheafd on {self.name} not up in {timeout} s:\n"
                           f"{self.tail()}")

    def pids(self):
        """Live pids of this node's process group (sheafd, its workers)."""
        if self.proc is None:
            return []
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rindex(")") + 2:].split()
            if rest[0] != "Z" and int(rest[2]) == self.proc.pid:
                out.append(int(d))
        return out

    def workers(self):
        """Pids of sheafd's children (its workers)."""
        if self.proc is None:
            return []
        return [p for p in self.pids() if p != self.proc.pid]

    def kill9(self):
        """SIGKILL the whole process group (sheafd and its workers)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, timeout=15):
        """SIGTERM sheafd; wait for it and its workers to be gone (SIGKILL
        after 'timeout'). -> its exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        if rc is None or self.pids():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None
        return rc

    def link(self, up):
        run("ip", "-n", self.ns, "link", "set", "eth0",
            "up" if up else "down")

    def tail(self, n=40):
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-n:])


class Cluster:
    """The namespaces, PostgreSQL, s3rver and three nodes (see the file's
    comment). Use as a context manager, or call close()."""

    def __init__(self, root, sheafd, n_nodes=3, workers=2, lease_s=2,
                 cpus=None, extra_env=None, roles=None):
        self.tag = f"shc{os.getpid() % 100000}"
        self.net = f"10.213.{os.getpid() % 250}"
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sheafd = Path(sheafd)
        self.workers = workers
        self.lease_s = lease_s
        self.extra_env = dict(extra_env or {})
        self.store_prefix = f"c{os.getpid()}"
        self.namespaces = []
        self.pg_dir = Path(f"/var/tmp/{self.tag}-pg")
        self.pg_started = False
        self.s3 = None
        self.orig_ns = None
        self.password = secrets.token_hex(12)
        self.db_ip = f"{self.net}.2"
        self.s3_ip = f"{self.net}.3"
        self.s3_endpoint = f"http://{self.s3_ip}:4569"
        self.db_url = (f"host={self.db_ip} port=5432 user=sheaf "
                       f"password={self.password} dbname=sheaf "
                       f"connect_timeout=5")
        cpus = cpus or [None] * n_nodes
        roles = roles or [None] * n_nodes
        self.nodes = [Node(self, f"n{i + 1}", f"{self.net}.{11 + i}",
                           roles[i], cpus[i]) for i in range(n_nodes)]

    # -- set-up ----------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self._network()
        self._enter_client()
        self._postgres()
        self._s3rver()
        for n in self.nodes:
            n.start()

    def _network(self):
        sw = f"{self.tag}-sw"
        run("ip", "netns", "add", sw)
        self.namespaces.append(sw)
        run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", sw, "link", "set", "br0", "up")
        hosts = [("db", self.db_ip), ("s3", self.s3_ip),
                 ("cl", f"{self.net}.4")]
        hosts += [(n.name, n.ip) for n in self.nodes]
        for name, ip in hosts:
            ns = f"{self.tag}-{name}"
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            run("ip", "-n", sw, "link", "add", f"v-{name}", "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            run("ip", "-n", sw, "link", "set", f"v-{name}", "master", "br0",
                "up")
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def _enter_client(self):
        """This process (its main thread) moves into the client namespace;
        close() brings it back."""
        self.orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.tag}-cl", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def _as_pg(self, *args, ns=None, timeout=60):
        pre = ["ip", "netns", "exec", ns] if ns else []
        return run(*pre, "runuser", "-u", "postgres", "--", *args,
                   timeout=timeout, cwd="/")

    def _postgres(self):
        bindir = pg_bin()
        if self.pg_dir.exists():
            shutil.rmtree(self.pg_dir)
        data, sock = self.pg_dir / "data", self.pg_dir / "run"
        self.pg_dir.mkdir(parents=True)
        sock.mkdir()
        pw = self.pg_dir / "pw"
        pw.write_text(self.password + "\n")
        shutil.chown(self.pg_dir, "postgres")
        shutil.chown(sock, "postgres")
        shutil.chown(pw, "postgres")
        self._as_pg(bindir / "initdb", "-D", data, "-U", "sheaf",
                    "--auth-local=trust", "--auth-host=scram-sha-256",
                    f"--pwfile={pw}", "-E", "UTF8", "--locale=C",
                    timeout=120)
        with open(data / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = '{self.db_ip}'\nport = 5432\n"
                    f"unix_socket_directories = '{sock}'\n"
                    f"password_encryption = 'scram-sha-256'\n"
                    f"max_connections = 200\nshared_buffers = 32MB\n"
                    f"fsync = off\ntimezone = 'UTC'\n")
        with open(data / "pg_hba.conf", "a") as f:
            f.write(f"host all all {self.net}.0/24 scram-sha-256\n")
        self._as_pg(bindir / "pg_ctl", "-D", data, "-l",
                    self.pg_dir / "postgresql.log", "-w", "-t", "60", "-s",
                    "start", ns=f"{self.tag}-db", timeout=90)
        self.pg_started = True
        run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
            self.db_url.replace("dbname=sheaf", "dbname=postgres"),
            "-c", "CREATE DATABASE sheaf")

    def _s3rver(self):
        if not S3RVER.exists():
            run(REPO / "scripts" / "npm_tools.sh", "it", timeout=600)
        d = self.root / "s3rver"
        d.mkdir(exist_ok=True)
        with open(self.root / "s3rver.log", "ab") as logf:
            self.s3 = subprocess.Popen(
                ["ip", "netns", "exec", f"{self.tag}-s3", "node",
                 str(S3RVER), "-d", str(d), "-a", self.s3_ip, "-p", "4569",
                 "--no-vhost-buckets", "--configure-bucket", BUCKET],
                stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.s3.poll() is not None:
                raise RuntimeError("s3rver exited: " + (
                    self.root / "s3rver.log").read_text())
            try:
                _OPENER.open(self.s3_endpoint + "/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("s3rver did not answer in 30 s")

    # -- use -------------------------------------------------------------

    def s3check(self, *args, data=False):
        env = dict(os.environ, SHEAF_S3_ENDPOINT=self.s3_endpoint,
                   AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1")
        p = subprocess.run(["node", str(S3CHECK), *map(str, args)], env=env,
                           capture_output=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"s3check {args}: {p.stderr.decode()}")
        return p.stdout if data else p.stdout.decode()

    def put(self, key, path):
        """Upload file 'path' as 'key'. Past 50 MB with sheaf's own client
        (s3_tool beside sheafd: one PUT), as minio would send a multipart
        upload that s3rver refuses ("NotImplemented")."""
        tool = self.sheafd.parent / "s3_tool"
        if os.path.getsize(path) <= 50 * 10 ** 6 or not os.access(tool,
                                                                  os.X_OK):
            self.s3check("put", BUCKET, key, path)
            return
        env = dict(os.environ, SHEAF_S3_ENDPOINT=self.s3_endpoint,
                   AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1")
        run(tool, "put", BUCKET, key, path, env=env, timeout=600)

    def list(self, prefix):
        import json
        out = self.s3check("list", BUCKET, prefix)
        return [json.loads(ln) for ln in out.splitlines() if ln]

    def api(self, method, path, body=None, nodes=None, timeout=30):
        """A request to the first node that answers (of 'nodes', default
        all): -> harness.Response."""
        last = None
        for n in nodes or self.nodes:
            if not n.running() or n.role == "worker":
                continue
            try:
                return http(n.base, method, path, body, timeout=timeout)
            except OSError as e:
                last = e
        raise RuntimeError(f"no node answered {method} {path}: {last!r}")

    # -- tear-down -------------------------------------------------------

    def close(self):
        errors = []
        for n in self.nodes:
            try:
                n.kill9()
            except Exception as e:  # noqa: BLE001 - go on cleaning
                errors.append(f"{n.name}: {e}")
        if self.s3 is not None and self.s3.poll() is None:
            try:
                os.killpg(self.s3.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.s3.wait(timeout=10)
        if self.pg_started:
            try:
                self._as_pg(pg_bin() / "pg_ctl", "-D", self.pg_dir / "data",
                            "-m", "immediate", "-w", "-t", "30", "-s", "stop")
            except Exception as e:  # noqa: BLE001
                errors.append(f"pg_ctl stop: {e}")
            self.pg_started = False
        if self.orig_ns is not None:
            _setns(self.orig_ns)
            os.close(self.orig_ns)
            self.orig_ns = None
        for ns in reversed(self.namespaces):
            p = run("ip", "netns", "del", ns, check=False)
            if p.returncode != 0:
                errors.append(f"ip netns del {ns}: {p.stderr.strip()}")
        self.namespaces = []
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        if errors:
            raise RuntimeError("cluster clean-up: " + "; ".join(errors))
