"""Migrations: two sheafd starting at the same moment on a new database
apply each migration exactly once, and both come up."""
import os
import subprocess
import tempfile
import time
import uuid

from harness import REPO, database_url, sheafd_path


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtqc", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def test_two_instances_migrate_once():
    base = database_url()
    name = "sheaf_mig_" + uuid.uuid4().hex[:12]
    psql(base, f"CREATE DATABASE {name}")
    url = f"{base} dbname={name}"  # a later keyword wins in libpq
    procs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(2):
                env = dict(os.environ, DATABASE_URL=url,
                           SHEAF_DATA_ROOT=f"{tmp}/data",
                           SHEAF_SPOOL=f"{tmp}/spool{i}",
                           SHEAF_WORKERS="1",
                           SHEAF_MIGRATIONS=str(REPO / "migrations"))
                log = open(f"{tmp}/log{i}", "w+")
                procs.append((subprocess.Popen(
                    [sheafd_path(), "--role", "worker"], env=env,
                    stdout=log, stderr=subprocess.STDOUT), log))
            deadline = time.time() + 30
            logs = ["", ""]
            while time.time() < deadline:
                logs = [open(f"{tmp}/log{i}").read() for i in range(2)]
                if all("worker node" in text for text in logs):
                    break
                assert all(p.poll() is None for p, _ in procs), logs
                time.sleep(0.1)
            assert all("worker node" in text for text in logs), logs
            files = sorted(f for f in os.listdir(REPO / "migrations")
                           if f.endswith(".sql"))
            rows = psql(url, "SELECT version, count(*) FROM "
                        "schema_migrations GROUP BY version ORDER BY 1")
            assert rows.splitlines() == [f"{f}|1" for f in files]
            assert psql(url, "SELECT count(*) FROM jobs") == "0"
    finally:
        for p, log in procs:
            p.terminate()
            p.wait(timeout=20)
            log.close()
        psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
