"""The `sheaf` command line against a real sheafd, as a CI pipeline uses it.

Every test runs the real binary (SHEAF_CLI, else $SHEAF_BIN/sheaf, else
<repo>/build/sheaf) and checks what scripts rely on: stdout carries only the
job id or the data, errors go to stderr, and the exit status says what
happened:

    0 succeeded   1 job failed/cancelled   2 usage   3 refused (4xx)
    4 unreachable / 5xx   5 --timeout passed   6 local write failed

The `sheaf` fixture (conftest.py) is the session's sheafd (harness.Server:
`.base`, `.write_data()`). A few tests that need a server misbehaving on
purpose (503s, a job that never ends, a download cut short) use a tiny fake
server defined here instead.
"""

import http.server
import json
import os
import re
import socket
import subprocess
import uuid

import pytest

from harness import fake_service, unique_name

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")


def cli_path():
    """The sheaf binary under test."""
    if os.environ.get("SHEAF_CLI"):
        return os.environ["SHEAF_CLI"]
    if os.environ.get("SHEAF_BIN"):
        p = os.path.join(os.environ["SHEAF_BIN"], "sheaf")
        if os.path.exists(p):
            return p
    return os.path.join(REPO, "build", "sheaf")


@pytest.fixture(scope="module")
def cli_bin():
    p = cli_path()
    assert os.access(p, os.X_OK), (
        "no sheaf binary at %s: run `make build/sheaf` or set SHEAF_CLI" % p)
    return p


def run(cli_bin, url, *args, stdin=None, token=None, timeout=120):
    """Run `sheaf ARGS` against `url`; return the CompletedProcess."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SHEAF_URL", "SHEAF_TOKEN")}
    if url is not None:
        env["SHEAF_URL"] = url
    if token:
        env["SHEAF_TOKEN"] = token
    p = subprocess.run([cli_bin] + list(args), input=stdin, env=env,
                       capture_output=True, text=True, timeout=timeout)
    # Whatever happened, it was not a crash: no signal, a documented code.
    assert p.returncode in range(0, 7), (
        "sheaf %s exited %d\nstdout: %s\nstderr: %s"
        % (args, p.returncode, p.stdout, p.stderr))
    assert "Traceback" not in p.stderr and "AddressSanitizer" not in p.stderr
    return p


def explain(p):
    return "exit %d\nstdout: %r\nstderr: %r" % (p.returncode, p.stdout,
                                                 p.stderr)


@pytest.fixture
def sh(sheaf, cli_bin):
    """sh(*args, **kw): run sheaf against the session's sheafd."""
    def call(*args, **kw):
        return run(cli_bin, sheaf.base, *args, **kw)
    return call


@pytest.fixture(scope="module")
def data(session_server):
    """Input files of these tests, under <data root>/cli-<random>/."""
    sub = "cli-" + uuid.uuid4().hex[:8]
    session_server.write_data(
        sub + "/papers.csv",
        "year,category,n\n2011,cs,3\n2012,math,4\n2009,cs,1\n2015,cs,2\n")
    # Good for far longer than any sample, then one row that is not an int:
    # the job is accepted and fails while it runs.
    session_server.write_data(
        sub + "/bad.csv",
        "year,category,n\n"
        + "".join("%d,cs,%d\n" % (2000 + i % 20, i) for i in range(200000))
        + "abc,math,7\n")
    return sub


GOOD_CSV = "year,category,n\n2011,cs,3\n2012,math,4\n2015,cs,2\n"


def good_spec(data, name=None):
    return {"name": name or unique_name("cli"),
            "input": {"path": data + "/papers.csv", "format": "csv"},
            "steps": [{"op": "filter", "where": "year >= 2010"}],
            "output": {"format": "csv"}}


def write_spec(tmp_path, spec, name="job.json"):
    p = tmp_path / name
    p.write_text(json.dumps(spec))
    return str(p)


def lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


# ---- against the real sheafd ------------------------------------------------

def test_submit_wait_downloads_the_result(sh, data, tmp_path):
    spec = write_spec(tmp_path, good_spec(data))
    out = tmp_path / "out.csv"
    p = sh("submit", "--wait", spec, "-o", str(out))
    assert p.returncode == 0, explain(p)
    # stdout is the id alone, so ID=$(sheaf submit ...) works.
    assert UUID_RE.match(p.stdout.strip()), explain(p)
    assert len(p.stdout.splitlines()) == 1
    assert out.read_text() == GOOD_CSV
    assert not (tmp_path / "out.csv.part").exists()
    # Without a terminal, one line per state change, ending succeeded.
    assert "succeeded" in p.stderr


def test_status_result_and_ls(sh, data, tmp_path):
    name = unique_name("cli-ls")
    spec = write_spec(tmp_path, good_spec(data))
    p = sh("submit", spec, "--name", name)
    assert p.returncode == 0, explain(p)
    first_id = p.stdout.strip()
    p = sh("submit", spec, "--name", name)  # --name overrides spec.name
    assert p.returncode == 0, explain(p)
    job_id = p.stdout.strip()
    assert job_id != first_id

    p = sh("wait", job_id, "--timeout", "60")
    assert p.returncode == 0, explain(p)

    p = sh("status", job_id)
    assert p.returncode == 0, explain(p)
    assert len(lines(p.stdout)) == 1
    assert job_id in p.stdout and "succeeded" in p.stdout
    assert "3 rows out" in p.stdout, explain(p)

    p = sh("status", job_id, "--json")
    assert p.returncode == 0, explain(p)
    job = json.loads(p.stdout)
    assert job["id"] == job_id and job["name"] == name
    assert job["status"] == "succeeded"

    p = sh("result", job_id)
    assert p.returncode == 0, explain(p)
    assert p.stdout == GOOD_CSV

    out = tmp_path / "r.csv"
    p = sh("result", job_id, "-o", str(out))
    assert p.returncode == 0, explain(p)
    assert out.read_text() == GOOD_CSV and p.stdout == ""

    p = sh("wait", first_id, "--timeout", "60")
    assert p.returncode == 0, explain(p)
    p = sh("ls", "--name", name)
    assert p.returncode == 0, explain(p)
    rows = lines(p.stdout)
    assert rows[0].split()[:2] == ["ID", "STATUS"]
    # Newest first.
    assert [r.split()[0] for r in rows[1:]] == [job_id, first_id], explain(p)
    assert "succeeded" in rows[1] and name in rows[1]

    # One page of one job; --all follows the cursor to the second page.
    p = sh("ls", "--name", name, "--limit", "1", "--json")
    assert p.returncode == 0, explain(p)
    assert [json.loads(ln)["id"] for ln in lines(p.stdout)] == [job_id]
    p = sh("ls", "--name", name, "--limit", "1", "--all", "--json")
    assert p.returncode == 0, explain(p)
    ids = [json.loads(ln)["id"] for ln in lines(p.stdout)]
    assert ids == [job_id, first_id], explain(p)
    p = sh("ls", "--name", name, "--status", "failed")
    assert p.returncode == 0 and len(lines(p.stdout)) == 1, explain(p)


def test_submit_reads_stdin(sh, data):
    p = sh("submit", "-", "--wait", stdin=json.dumps(good_spec(data)))
    assert p.returncode == 0, explain(p)
    assert UUID_RE.match(p.stdout.strip())


def test_failed_job_exits_1_with_its_error(sh, data, tmp_path):
    spec = {"name": unique_name("cli-bad"),
            "input": {"path": data + "/bad.csv", "format": "csv",
                      "columns": {"year": "int"}},
            "steps": [{"op": "derive", "as": "next", "expr": "year + 1"}],
            "output": {"format": "csv"}}
    out = tmp_path / "never.csv"
    p = sh("submit", "--wait", write_spec(tmp_path, spec), "-o", str(out))
    assert p.returncode == 1, explain(p)
    job_id = p.stdout.strip()
    assert UUID_RE.match(job_id), explain(p)
    assert "failed" in p.stderr and "abc" in p.stderr, explain(p)
    assert not out.exists() and not (tmp_path / "never.csv.part").exists()

    p = sh("wait", job_id)
    assert p.returncode == 1 and "abc" in p.stderr, explain(p)

    p = sh("status", job_id)  # a query: it worked, whatever the job did
    assert p.returncode == 0 and "failed" in p.stdout, explain(p)
    assert "abc" in p.stdout

    p = sh("result", job_id, "-o", str(out))  # 409: no result
    assert p.returncode == 3, explain(p)
    assert not out.exists() and not (tmp_path / "never.csv.part").exists()


def test_invalid_spec_exits_3_naming_the_field(sh, data, tmp_path):
    spec = good_spec(data)
    spec["steps"].append({"op": "filter", "where": "no_such_column > 1"})
    path = write_spec(tmp_path, spec)

    p = sh("submit", "--wait", path)
    assert p.returncode == 3, explain(p)
    assert p.stdout == ""
    first = p.stderr.splitlines()[0]
    assert first.startswith("sheaf: invalid_spec at steps[1].where: "), \
        explain(p)
    assert "no_such_column" in first

    p = sh("validate", path)
    assert p.returncode == 3 and "steps[1].where" in p.stderr, explain(p)


def test_validate_prints_the_plan(sh, data, tmp_path):
    path = write_spec(tmp_path, good_spec(data))
    p = sh("validate", path)
    assert p.returncode == 0, explain(p)
    assert "partitions" in p.stdout, explain(p)
    p = sh("validate", path, "--json")
    assert p.returncode == 0, explain(p)
    assert isinstance(json.loads(p.stdout), dict)


def test_unknown_job_exits_3(sh):
    p = sh("status", str(uuid.uuid4()))
    assert p.returncode == 3, explain(p)
    assert p.stderr.startswith("sheaf: not_found"), explain(p)
    p = sh("wait", str(uuid.uuid4()))
    assert p.returncode == 3, explain(p)


def test_usage_errors_exit_2(sh, tmp_path):
    assert sh().returncode == 2
    assert sh("frobnicate").returncode == 2
    assert sh("status").returncode == 2
    assert sh("status", "a", "b").returncode == 2
    assert sh("ls", "--bogus").returncode == 2
    assert sh("wait", str(uuid.uuid4()), "--timeout", "soon").returncode == 2
    assert sh("ls", "--limit", "0").returncode == 2
    p = sh("submit", str(tmp_path / "missing.json"))
    assert p.returncode == 2 and "missing.json" in p.stderr, explain(p)
    bad = tmp_path / "bad.json"
    bad.write_text('{"input": ')
    p = sh("submit", str(bad))
    assert p.returncode == 2 and "bad.json:1:" in p.stderr, explain(p)
    p = sh("result", "")
    assert p.returncode == 2, explain(p)


def test_help_and_version(sh):
    p = sh("--help")
    assert p.returncode == 0
    assert "exit status" in p.stdout and "submit" in p.stdout
    for cmd in ("submit", "status", "wait", "result", "cancel", "ls",
                "validate", "datasets"):
        p = sh(cmd, "--help")
        assert p.returncode == 0 and ("sheaf " + cmd) in p.stdout, explain(p)
    p = sh("help", "wait")
    assert p.returncode == 0 and "sheaf wait" in p.stdout
    p = sh("--version")
    assert p.returncode == 0 and p.stdout.startswith("sheaf ")


# ---- no server, or a server misbehaving on purpose --------------------------

def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_unreachable_server_exits_4(cli_bin, tmp_path):
    url = "http://127.0.0.1:%d" % closed_port()
    spec = write_spec(tmp_path, {"input": {"path": "x.csv"}})
    for args in (("submit", spec), ("status", str(uuid.uuid4())),
                 ("wait", str(uuid.uuid4())), ("ls",)):
        p = run(cli_bin, url, *args)
        assert p.returncode == 4, explain(p)
        assert p.stdout == ""
        assert "127.0.0.1" in p.stderr.splitlines()[-1], explain(p)
    # --url overrides SHEAF_URL.
    p = run(cli_bin, "http://127.0.0.1:1", "--url", url, "ls")
    assert p.returncode == 4 and url in p.stderr, explain(p)


JOB_ID = "11111111-2222-3333-4444-555555555555"
RESULT = "".join("row,%d\n" % i for i in range(5000)).encode()


class Fake(http.server.BaseHTTPRequestHandler):
    """A server with scripted faults; counts requests per path."""
    protocol_version = "HTTP/1.1"
    hits = {}

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def job(self, status):
        body = json.dumps({"id": JOB_ID, "status": status,
                           "progress": {"partitions_total": 2,
                                        "partitions_done": 1},
                           "error": None}).encode()
        self.reply(200, body, [("Content-Type", "application/json")])

    def do_GET(self):
        path = self.path.split("?")[0]
        n = Fake.hits[path] = Fake.hits.get(path, 0) + 1
        if path == "/v1/jobs/" + JOB_ID:
            return self.job("running")          # never ends
        if path == "/flaky/v1/jobs/" + JOB_ID:
            if n <= 2:                           # 503 twice, then fine
                return self.reply(503, b'{"error": {"code": "unavailable",'
                                  b' "message": "busy", "path": ""}}',
                                  [("Retry-After", "0")])
            return self.job("succeeded")
        if path == "/broken/v1/jobs/" + JOB_ID:
            return self.reply(500, b"<html>internal</html>")
        if path == "/cut/v1/jobs/" + JOB_ID + "/result":
            rng = self.headers.get("Range")
            if rng and self.headers.get("If-Range") == '"r1"':
                start = int(rng.split("=")[1].rstrip("-"))
                return self.reply(206, RESULT[start:], [
                    ("ETag", '"r1"'), ("Content-Range", "bytes %d-%d/%d" % (
                        start, len(RESULT) - 1, len(RESULT)))])
            # Promise it all, send a part, hang up.
            self.send_response(200)
            self.send_header("ETag", '"r1"')
            self.send_header("Content-Length", str(len(RESULT)))
            self.end_headers()
            self.wfile.write(RESULT[:10000])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.reply(404, b'{"error": {"code": "not_found", "message": '
                   b'"nothing here", "path": ""}}')


@pytest.fixture(scope="module")
def fake():
    with fake_service(Fake) as url:
        yield url


def test_wait_timeout_exits_5_and_leaves_the_job(cli_bin, fake):
    p = run(cli_bin, fake, "wait", JOB_ID, "--timeout", "2")
    assert p.returncode == 5, explain(p)
    assert "timed out" in p.stderr and "sheaf wait " + JOB_ID in p.stderr


def test_get_is_retried_after_503(cli_bin, fake):
    p = run(cli_bin, fake + "/flaky", "wait", JOB_ID)
    assert p.returncode == 0, explain(p)
    assert "retry 1 of" in p.stderr, explain(p)


def test_server_error_exits_4(cli_bin, fake):
    p = run(cli_bin, fake + "/broken", "status", JOB_ID)
    assert p.returncode == 4, explain(p)
    assert "HTTP 500" in p.stderr, explain(p)


def test_cut_download_is_resumed(cli_bin, fake, tmp_path):
    out = tmp_path / "r.csv"
    p = run(cli_bin, fake + "/cut", "result", JOB_ID, "-o", str(out))
    assert p.returncode == 0, explain(p)
    assert out.read_bytes() == RESULT
