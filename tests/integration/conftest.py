"""
conftest.py - fixtures of sheaf's integration tests (helpers: harness.py).

  sheaf          the session's sheafd (started once, 2 workers, lease 5 s),
                 a harness.Server: api(), submit(), wait(), result(),
                 write_data(), run(), children() ...
  private_sheaf  a factory of sheafd instances of the test's own (recovery
                 tests kill them); it stops the session instance first, so
                 that no other sheafd on the same database takes their work.
  life_sheaf     the same for harness.LifeServer instances: settings of the
                 test's own (env, --role worker, a shared spool, another
                 database); make(label, start=True, env=..., role=...,
                 spool=..., db_url=...).
"""

import subprocess
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import pytest

from harness import RUN_ID, LifeServer, Server


# --------------------------------------------------------------------------
# Fixtures


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "recovery: kills processes of a private sheafd; runs last")


def pytest_collection_modifyitems(session, config, items):
    # Recovery tests stop the shared instance; run them after all others.
    items.sort(key=lambda it: 1 if it.get_closest_marker("recovery") else 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        now = time.time()
        for srv in Server.registry:
            try:
                recent = now - srv.log_path.stat().st_mtime < 600
            except OSError:
                recent = False
            if recent:
                rep.sections.append((f"sheafd log tail: {srv.log_path}",
                                     srv.tail()))


@pytest.fixture(scope="session")
def tmp_root(request):
    root = Path(tempfile.mkdtemp(prefix=f"sheaf-it-{RUN_ID}-"))
    yield root
    if request.session.testsfailed == 0:
        subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture(scope="session")
def session_server(tmp_root, request):
    srv = Server(tmp_root / "session", label="session")
    srv.start()
    yield srv
    try:
        srv.stop()
    finally:
        if request.session.testsfailed:
            tr = request.config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                tr.write_line(f"\n---- sheafd log tail ({srv.log_path}) ----")
                tr.write_line(srv.tail(100))


@pytest.fixture
def sheaf(session_server):
    """The shared sheafd; restarted if a test stopped it."""
    session_server.ensure_running()
    return session_server


@pytest.fixture
def private_sheaf(tmp_root, session_server):
    """Make sheafd instances of this test's own (same database, own port and
    spool; data root shared with the session instance). The session instance
    is stopped first so it takes none of their tasks."""
    session_server.stop()
    made = []

    def make(label="private"):
        srv = Server(tmp_root / f"{label}-{uuid.uuid4().hex[:6]}",
                     data_root=session_server.data, label=label)
        made.append(srv)
        srv.start()
        return srv

    yield make
    errors = []
    for srv in made:
        try:
            srv.stop()
        except BaseException as e:  # pytest.fail raises BaseException
            errors.append(str(e))
        leftover = srv.kill_orphans()
        if leftover:
            warnings.warn(f"workers {sorted(leftover)} of a sheafd killed with "
                          f"SIGKILL were still alive at the end of the test "
                          f"(killed now)")
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def life_sheaf(tmp_root, session_server):
    """A factory of harness.LifeServer instances (see private_sheaf: the
    session instance is stopped first; every instance made is stopped at
    the end, and workers of instances killed with SIGKILL are killed)."""
    session_server.stop()
    made = []

    def make(label="life", start=True, **kw):
        srv = LifeServer(tmp_root / f"{label}-{uuid.uuid4().hex[:6]}",
                         data_root=session_server.data, label=label, **kw)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    errors = []
    for srv in made:
        try:
            srv.stop()
        except BaseException as e:  # pytest.fail raises BaseException
            errors.append(str(e))
        srv.kill_orphans()
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def s3_server(tmp_root):
    """An s3rver on 127.0.0.1 with one bucket (s3fixture.py)."""
    from s3fixture import S3Server

    srv = S3Server(tmp_root / "s3")
    srv.start()
    yield srv
    srv.stop()
