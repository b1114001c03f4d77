"""
harness.py - the machinery of sheaf's black-box integration tests: start the
real sheafd against a real PostgreSQL, speak HTTP to it, and compare what it
answers with an oracle computed in plain Python (the csv module, RFC 4180).
conftest.py turns it into fixtures; tests import the helpers from here.

Environment:
  SHEAF_BIN     directory holding sheafd (default: <repo>/build)
  DATABASE_URL  libpq connection string of an empty-or-reused test database;
                tests never assume it is empty: every job gets a unique name
                and listings are filtered by it.

"""

import contextlib
import csv
import io
import json
import threading
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import openapi_check

REPO = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:10]
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running") + TERMINAL
WORKERS = 2
LEASE_S = 5
GRACE_S = 3  # SHEAF_GRACE_S: shutdown grace, well below the 10 s we allow
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: ThreadSanitizer")

# Never go through an HTTP proxy from the environment to reach 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unique_name(tag):
    """A job name no other test, run or user of the database shares."""
    return f"it-{RUN_ID}-{tag}-{uuid.uuid4().hex[:6]}"


def sheafd_path():
    bindir = os.environ.get("SHEAF_BIN") or str(REPO / "build")
    path = Path(bindir) / "sheafd"
    if not os.access(path, os.X_OK):
        pytest.fail(f"no executable sheafd at {path} (set SHEAF_BIN to the "
                    f"directory holding it)", pytrace=False)
    return path


def database_url():
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: the integration tests need a "
                    "PostgreSQL database (scripts/integration.sh sets it)",
                    pytrace=False)
    return url


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# HTTP


class Response:
    """status, headers (case-insensitive), body (parsed JSON when the reply
    is JSON, else bytes) and raw (the bytes). Unpacks as (status, headers,
    body)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.body = raw
        ctype = headers.get("Content-Type", "") or ""
        if ("application/json" in ctype
                or (not ctype and raw[:1] in (b"{", b"["))):
            try:
                self.body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self.body = raw

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        body = self.raw[:600]
        return f"<HTTP {self.status} {dict(self.headers)!r} {body!r}>"


def http(base, method, path, body=None, headers=None, timeout=30):
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers=hdrs)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            r = Response(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        try:
            raw = e.read()
        except OSError:
            raw = b""
        r = Response(e.code, e.headers, raw)
    # Every reply must be as api/openapi.yaml describes it.
    openapi_check.check(method, path, r.status, r.headers, r.raw)
    return r


def raw_request(port, head, body=b"", timeout=20):
    """Send 'head' (bytes, ending in a blank line) and 'body' over a fresh
    connection, stopping early if the server already answered (a 413 may
    come before the body is read), and return the status and the bytes of
    the reply."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        view = memoryview(body)
        try:
            while view:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break
                n = s.send(view[:65536])
                view = view[n:]
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(timeout)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    hdr, _, rest = out.partition(b"\r\n\r\n")
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", hdr)
                    if m and len(rest) >= int(m.group(1)):
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return (int(m.group(1)) if m else None), out


# --------------------------------------------------------------------------
# Processes


def _proc_stat(pid):
    """(state, ppid, starttime) of 'pid', or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return None
    rest = st[st.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), rest[19]


def proc_children(ppid):
    """{pid: starttime} of the live (non-zombie) children of 'ppid'."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _proc_stat(int(d))
        if st and st[1] == ppid and st[0] != "Z":
            out[int(d)] = st[2]
    return out


def proc_alive(pid, starttime=None):
    st = _proc_stat(pid)
    if st is None or st[0] == "Z":
        return False
    return starttime is None or st[2] == starttime


class Server:
    """One sheafd process and the client helpers bound to it."""

    registry = []  # every Server made, for log tails of failed tests

    def __init__(self, root, data_root=None, label="session"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = Path(data_root) if data_root else self.root / "data"
        self.spool = self.root / "spool"
        self.data.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / "sheafd.log"
        self.proc = None
        self.starts = 0
        self.seen_children = {}  # pid -> starttime of this run's workers
        self.orphans = {}        # workers of a run ended by kill9()
        Server.registry.append(self)

    # -- process control ---------------------------------------------------

    def env(self):
        env = dict(os.environ)
        env.pop("SHEAF_TOKENS_FILE", None)
        env.update({
            "DATABASE_URL": database_url(),
            "SHEAF_LISTEN": f"127.0.0.1:{self.port}",
            "SHEAF_DATA_ROOT": str(self.data),
            "SHEAF_SPOOL": str(self.spool),
            "SHEAF_WORKERS": str(WORKERS),
            "SHEAF_MIGRATIONS": str(REPO / "migrations"),
            "SHEAF_LEASE_S": str(LEASE_S),
            "SHEAF_GRACE_S": str(GRACE_S),
            # Stay root even where a user 'sheaf' exists: the tests write
            # their inputs as root (test_privdrop.py sets a user).
            "SHEAF_USER": "",
        })
        return env

    def args(self):
        """sheafd's arguments (none: --role all)."""
        return []

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=20):
        exe = sheafd_path()
        env = self.env()
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n==== test harness: start #{self.starts} of "
                       f"{exe} on port {self.port} ====\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(
                [str(exe)] + self.args(), env=env, cwd=str(self.root),
                stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail(f"sheafd ({self.label}) exited with status {rc} "
                            f"during start-up; log tail:\n{self.tail()}",
                            pytrace=False)
            try:
                r = http(self.base, "GET", "/healthz", timeout=2)
                if r.status == 200:
                    self.note_children()
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        pytest.fail(f"sheafd ({self.label}) did not answer GET /healthz with "
                    f"200 within {timeout} s (last: {last!r}); log tail:\n"
                    f"{self.tail()}", pytrace=False)

    def ensure_running(self):
        if not self.running():
            self.start()

    def note_children(self):
        if self.running():
            kids = proc_children(self.pid)
            self.seen_children.update(kids)
            return kids
        return {}

    def children(self):
        """{pid: starttime} of sheafd's live children (its workers)."""
        return self.note_children()

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; fail unless it exits by itself,
        cleanly, with no sanitizer report in its log."""
        if self.proc is None:
            return
        self.note_children()
        proc, self.proc = self.proc, None
        problems = []
        if proc.poll() is not None:
            problems.append(f"sheafd had already exited with {proc.returncode}"
                            f" before the harness stopped it")
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                problems.append("sheafd did not exit within 10 s of SIGTERM "
                                "(killed with SIGKILL)")
            else:
                if proc.returncode not in (0, -signal.SIGTERM, 128 + 15):
                    problems.append(f"sheafd exited with status "
                                    f"{proc.returncode} after SIGTERM")
        leftover = self.reap_orphans(grace=5)
        if leftover:
            problems.append(f"worker processes {sorted(leftover)} outlived "
                            f"sheafd by 5 s (killed)")
        san = self.sanitizer_reports()
        if san:
            problems.append("sanitizer reports in the log:\n" + san)
        if problems:
            pytest.fail("; ".join(problems) + f"\nlog tail ({self.log_path}):"
                        f"\n{self.tail()}", pytrace=False)

    def kill9(self):
        """SIGKILL sheafd itself (not its workers); returns the workers it
        had, which the caller may watch."""
        kids = self.note_children()
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.orphans.update(self.seen_children)
        self.seen_children = {}
        return kids

    def kill_orphans(self):
        """SIGKILL the workers of killed runs that are still alive (by pid,
        checked by start time); -> their pids."""
        alive = [p for p, t in self.orphans.items() if proc_alive(p, t)]
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.orphans = {}
        return alive

    def reap_orphans(self, grace=0.0):
        """Wait up to 'grace' s for every worker this sheafd ever had to be
        gone; SIGKILL (by pid, checked by start time) any still alive.
        Returns the pids that had to be killed."""
        deadline = time.monotonic() + grace
        while True:
            alive = {p: t for p, t in self.seen_children.items()
                     if proc_alive(p, t)}
            if not alive or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.seen_children = {}
        return alive

    def tail(self, n=60):
        try:
            lines = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(lines.splitlines()[-n:])

    def sanitizer_reports(self):
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines()
                 if any(m in ln for m in SANITIZER_MARKS)]
        return "\n".join(lines[:20])

    # -- client helpers ----------------------------------------------------

    def api(self, method, path, body=None, headers=None, timeout=30):
        """-> Response, unpackable as (status, headers, body)."""
        return http(self.base, method, path, body, headers, timeout)

    def submit(self, spec, headers=None):
        r = self.api("POST", "/v1/jobs", spec, headers)
        assert r.status == 201, (
            f"POST /v1/jobs: expected 201, got {r!r}\nspec: "
            f"{json.dumps(spec)[:800]}")
        assert isinstance(r.body, dict) and r.body.get("id"), r
        return r.body

    def get(self, job_id, wait=None):
        q = f"?wait={wait}" if wait is not None else ""
        r = self.api("GET", f"/v1/jobs/{job_id}{q}",
                     timeout=(wait or 0) + 30)
        assert r.status == 200, f"GET /v1/jobs/{job_id}{q}: {r!r}"
        return r.body

    def wait(self, job_id, timeout=30):
        """The job once terminal; fails after 'timeout' s with its state."""
        deadline = time.monotonic() + timeout
        job = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            job = self.get(job_id, wait=max(1, min(30, int(left))))
            if job.get("status") in TERMINAL:
                return job
            if not self.running():
                pytest.fail(f"sheafd died while job {job_id} ran; log tail:\n"
                            f"{self.tail()}", pytrace=False)
        tasks = self.api("GET", f"/v1/jobs/{job_id}/tasks")
        pytest.fail(f"job {job_id} not terminal after {timeout} s: "
                    f"{json.dumps(job)[:1500]}\ntasks: {tasks.raw[:1500]!r}",
                    pytrace=False)

    def result(self, job_id):
        r = self.api("GET", f"/v1/jobs/{job_id}/result", timeout=120)
        assert r.status == 200, f"GET result of {job_id}: {r!r}"
        return r.raw

    def run(self, spec, timeout=60):
        """Submit, wait, require success; -> (job, result bytes)."""
        job = self.submit(spec)
        done = self.wait(job["id"], timeout)
        assert done["status"] == "succeeded", (
            f"job {job['id']} ended {done['status']}: error="
            f"{done.get('error')!r}")
        return done, self.result(job["id"])

    def write_data(self, relpath, content):
        """Write 'content' (str is UTF-8, written as is: no newline
        translation) to <data root>/relpath; -> the Path."""
        path = self.data / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path


# --------------------------------------------------------------------------
# The CSV oracle and output checks


def read_csv_rows(data):
    """Records of a CSV file as Python's csv module reads them: BOM skipped,
    empty lines (which csv gives as []) dropped. 'data' is bytes or str."""
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    elif data.startswith("\ufeff"):
        data = data[1:]
    return [row for row in csv.reader(io.StringIO(data, newline="")) if row]


def parse_output(text):
    """Parse sheaf's output CSV strictly (RFC 4180 with LF or CRLF record
    ends): -> list of records, each a list of (value, quoted). A quote in an
    unquoted field, text after a closing quote, or a lone CR is an error,
    since the writer quotes minimally and correctly."""
    rows, row = [], []
    i, n = 0, len(text)
    if n == 0:
        return rows
    while True:
        # one field, starting at i
        if i < n and text[i] == '"':
            i += 1
            buf = []
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise AssertionError(f"unterminated quoted field at "
                                         f"offset {i - 1}")
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            row.append(("".join(buf), True))
        else:
            j = i
            while j < n and text[j] not in ',\r\n':
                if text[j] == '"':
                    raise AssertionError(f"quote inside an unquoted field at "
                                         f"offset {j}: {text[i:j + 10]!r}")
                j += 1
            row.append((text[i:j], False))
            i = j
        # what follows the field
        if i >= n:
            rows.append(row)
            return rows
        c = text[i]
        if c == ",":
            i += 1
            continue
        if c == "\r" and text[i + 1:i + 2] == "\n":
            i += 2
        elif c == "\n":
            i += 1
        else:
            raise AssertionError(f"unexpected {c!r} after a field at offset "
                                 f"{i}: {text[max(0, i - 20):i + 20]!r}")
        rows.append(row)
        row = []
        if i >= n:
            return rows


def needs_quotes(s):
    return s == "" or any(c in s for c in ',"\r\n')


def csv_text(header, rows, term="\n"):
    """The exact output sheaf must write for string/int/bool/null values
    (None is null: an empty field; '' is written ""). No floats here."""
    def cell(v):
        if v is None:
            return ""
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, int):
            return str(v)
        assert isinstance(v, str), f"csv_text cannot format {v!r}"
        if needs_quotes(v):
            return '"' + v.replace('"', '""') + '"'
        return v
    out = [",".join(cell(h) for h in header)]
    out += [",".join(cell(v) for v in row) for row in rows]
    return "".join(line + term for line in out)


def record_terminator(text):
    """LF or CRLF: the one the writer used after the header."""
    j = text.find("\n")
    return "\r\n" if j > 0 and text[j - 1] == "\r" else "\n"


class Approx:
    """An expected float compared with a relative tolerance."""

    def __init__(self, value, rel=1e-12):
        self.value, self.rel = value, rel

    def __repr__(self):
        return f"~{self.value!r}"


def sig_digits(text):
    """The significant digits of a number's text: '-0.00120e+5' -> '12'."""
    mant = re.split(r"[eE]", text)[0]
    return mant.lstrip("+-").replace(".", "").strip("0")


def check_cell(got, want, where):
    """Compare one output field (value, quoted) with the expected Python
    value: None (null: unquoted empty), str (exact; quoted iff it must be),
    bool (true/false), int (exact text), float (read back, equal),
    Approx (read back, relative tolerance)."""
    text, quoted = got
    if want is None:
        assert text == "" and not quoted, (
            f"{where}: expected null (an empty unquoted field), got "
            f"{'quoted ' if quoted else ''}{text!r}")
    elif isinstance(want, bool):
        assert (text, quoted) == ("true" if want else "false", False), (
            f"{where}: expected {want}, got {text!r} (quoted={quoted})")
    elif isinstance(want, int):
        assert (text, quoted) == (str(want), False), (
            f"{where}: expected int {want}, got {text!r} (quoted={quoted})")
    elif isinstance(want, float):
        try:
            val = float(text)
        except ValueError:
            raise AssertionError(f"{where}: expected float {want!r}, got "
                                 f"{text!r}") from None
        assert not quoted and (val == want or (val != val and want != want)),\
            f"{where}: expected float {want!r}, got {text!r}"
        frac = re.split(r"[eE]", text)[0].partition(".")[2]
        assert (len(sig_digits(text)) <= len(sig_digits(repr(want)))
                and (frac == "0" or not frac.endswith("0"))), (
            f"{where}: {text!r} is not the shortest text of {want!r}")
    elif isinstance(want, Approx):
        try:
            val = float(text)
        except ValueError:
            raise AssertionError(f"{where}: expected float ~{want.value!r}, "
                                 f"got {text!r}") from None
        tol = want.rel * max(1.0, abs(want.value))
        assert not quoted and abs(val - want.value) <= tol, (
            f"{where}: expected float ~{want.value!r}, got {text!r}")
    elif isinstance(want, str):
        assert text == want, f"{where}: expected {want!r}, got {text!r}"
        assert quoted == needs_quotes(want), (
            f"{where}: string {want!r} written {'quoted' if quoted else 'unquoted'}"
            f"; minimal quoting quotes exactly the empty string and fields "
            f"holding , \" CR or LF")
    else:
        raise TypeError(want)


def check_output(body, header, rows, label="result"):
    """Check sheaf's CSV output 'body' (bytes) against the header and the
    rows of expected Python values (see check_cell). The values must also be
    what Python's csv module reads from it."""
    assert isinstance(body, bytes), body
    text = body.decode("utf-8")
    assert not text.startswith("\ufeff"), f"{label}: output begins with a BOM"
    parsed = parse_output(text)
    # The csv module agrees with the strict parser on the values.
    assert read_csv_rows(text) == [[v for v, _ in r] for r in parsed if
                                   r != [("", False)]], \
        f"{label}: Python's csv module reads the output differently"
    assert parsed, f"{label}: empty output (not even a header)"
    got_header = [v for v, _ in parsed[0]]
    assert got_header == list(header), (
        f"{label}: header {got_header!r}, expected {list(header)!r}")
    got = parsed[1:]
    for i, (g, w) in enumerate(zip(got, rows)):
        assert len(g) == len(w), (
            f"{label}: row {i}: {len(g)} fields {g!r}, expected {len(w)}: "
            f"{w!r}")
        for c, (gc, wc) in enumerate(zip(g, w)):
            check_cell(gc, wc, f"{label}: row {i} column {header[c]!r} "
                       f"(expected row {w!r})")
    assert len(got) == len(rows), (
        f"{label}: {len(got)} rows, expected {len(rows)}; first extra/missing"
        f": {(got[len(rows)] if len(got) > len(rows) else rows[len(got)])!r}")


def check_exact(body, header, rows, label="result"):
    """check_output, then the exact bytes (LF or CRLF record ends, used
    consistently) for outputs without floats."""
    check_output(body, header, rows, label)
    text = body.decode("utf-8")
    want = csv_text(header, rows, record_terminator(text))
    if text != want and not text.endswith(("\n", "\r\n")):
        # a last record without a line end is also RFC 4180
        want = want[:-len(record_terminator(text))]
    assert text == want, f"{label}: not the exact expected text"


# --------------------------------------------------------------------------
# Lifecycle helpers: looking into the database and the spool, freezing
# workers, sheafd instances with settings of their own (test_lifecycle.py,
# test_crashloop.py)

_SQL_FS, _SQL_RS, _SQL_NULL = "\x1f", "\x1e", "\x01"


def sql(query, url=None, timeout=30):
    """Run 'query' with psql on the test database (or 'url'); -> its rows,
    each a list of strings (None for NULL). Only for looking: the tests
    change nothing behind sheafd's back."""
    r = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-F", _SQL_FS, "-R", _SQL_RS, "-P", f"null={_SQL_NULL}",
         "-d", url or database_url(), "-c", query],
        capture_output=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise AssertionError(f"psql failed ({r.returncode}) on {query!r}: "
                             f"{r.stderr.decode('utf-8', 'replace')}")
    out = r.stdout.decode("utf-8")
    if out.endswith("\n"):
        out = out[:-1]
    if not out:
        return []
    return [[None if v == _SQL_NULL else v for v in rec.split(_SQL_FS)]
            for rec in out.split(_SQL_RS)]


def _uuid(s):
    return str(uuid.UUID(str(s)))  # also refuses anything but a UUID


def db_tasks(job_id, url=None):
    """The task rows of a job, as the database has them (the API does not
    show leases and output paths): dicts with stage, part, state, attempts,
    lease, output, worker, error; by stage then part."""
    rows = sql("SELECT stage, part, state, attempts, lease, output, worker,"
               " error FROM tasks WHERE job_id = '" + _uuid(job_id) + "'"
               " ORDER BY stage, part", url)
    out = []
    for st, part, state, att, lease, output, worker, error in rows:
        out.append({"stage": int(st), "part": int(part), "state": state,
                    "attempts": int(att),
                    "lease": None if lease is None else int(lease),
                    "output": output, "worker": worker, "error": error})
    return out


def db_in_transaction(url=None):
    """How many other sessions sit inside a transaction. A worker frozen
    between a row lock and its commit would hold the lock (and whoever waits
    for it) until it is continued."""
    rows = sql("SELECT count(*) FROM pg_stat_activity WHERE pid <>"
               " pg_backend_pid() AND datname = current_database() AND"
               " state LIKE 'idle in transaction%'", url)
    return int(rows[0][0])


def job_spool_files(spool, job_id):
    """Names of the files in a job's spool directory (the artifacts
    directory aside); an empty set when the directory is gone."""
    d = Path(spool) / "jobs" / _uuid(job_id)
    try:
        return {p.name for p in d.iterdir() if p.name != "artifacts"}
    except FileNotFoundError:
        return set()


def wait_until(pred, timeout, what, interval=0.05):
    """Call 'pred' until it returns something true; -> that. Fails with
    'what' (a string, or a callable giving one) after 'timeout' s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            msg = what() if callable(what) else what
            pytest.fail(f"after {timeout} s: {msg}", pytrace=False)
        time.sleep(interval)


def signal_all(pids, sig):
    """Send 'sig' to each pid that still exists; -> the pids signalled."""
    done = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            done.append(pid)
        except ProcessLookupError:
            pass
    return done


def worker_pid(worker):
    """The pid of a worker name 'host:pid', or None."""
    if not worker or ":" not in worker:
        return None
    tail = worker.rsplit(":", 1)[1]
    return int(tail) if tail.isdigit() else None


def writes_for_lease(pid, lease):
    """Non-zero when process 'pid' has a file of the attempt with lease
    'lease' open (its output, under its temporary name, or a spill file):
    it is inside the executor, not claiming or committing."""
    pat = re.compile(rf"-l{int(lease)}(\.|$)")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if pat.search(os.readlink(f"/proc/{pid}/fd/{fd}")):
                return True
        except OSError:
            pass
    return False


def freeze_busy_worker(srv, job_id, pids, timeout=15, url=None,
                       writing=False):
    """-> (pid, task row of db_tasks): one of 'pids', stopped with SIGSTOP,
    that holds a running task of the job, caught outside any transaction (so
    that it holds no row lock, and no commit of its is in flight: the task
    is really still its own). With 'writing', only one caught while it
    writes that task's files (so that, continued, it has an output to try to
    commit). (None, None) if none is caught before the job ends or 'timeout'
    passes. The caller SIGCONTs or kills it. 'pids' None means whichever
    workers srv has at each look. Polls the job's tasks over HTTP (psql
    takes a fifth of a second to start on a busy machine; a task may take
    less)."""
    deadline = time.monotonic() + timeout
    fixed = None if pids is None else set(pids)
    while time.monotonic() < deadline:
        pids = fixed if fixed is not None else set(srv.children())
        r = srv.api("GET", f"/v1/jobs/{job_id}/tasks")
        rows = r.body.get("tasks", []) if r.status == 200 else []
        if rows and all(t["state"] in ("done", "failed", "cancelled")
                        for t in rows):
            break
        for t in rows:
            pid = worker_pid(t["worker"])
            if t["state"] != "running" or pid not in pids:
                continue
            if not signal_all([pid], signal.SIGSTOP):
                continue
            time.sleep(0.03)  # a statement already sent reaches its end
            if db_in_transaction(url) == 0:
                again = [d for d in db_tasks(job_id, url)
                         if d["state"] == "running"
                         and worker_pid(d["worker"]) == pid]
                if again and (not writing
                              or writes_for_lease(pid, again[0]["lease"])):
                    return pid, again[0]
            signal_all([pid], signal.SIGCONT)
            break
        time.sleep(0.005)
    return None, None


def check_committed_once(srv, job_id, timeout=15, url=None, spool=None):
    """After a job succeeded: every task is done exactly once, with one
    output named for the lease of its last attempt, and (once the job's
    cleanup has run: waited for up to 'timeout' s) the job's spool
    directory holds exactly those outputs: no second copy of a part, no
    output of a stale attempt, no temporary file. -> the task rows."""
    tasks = db_tasks(job_id, url)
    assert tasks, f"job {job_id} has no tasks"
    bad = [t for t in tasks if t["state"] != "done" or not t["output"]
           or t["attempts"] < 1 or t["lease"] is None]
    assert not bad, f"tasks not done exactly once: {bad[:5]}"
    outputs = [t["output"] for t in tasks]
    assert len(set(outputs)) == len(outputs), "two tasks share an output"
    last = max(t["stage"] for t in tasks)
    for t in tasks:
        base = os.path.basename(t["output"])
        stem = f"s{t['stage']}-p{t['part']:05d}-l{t['lease']}"
        assert base == stem or base.startswith(stem + "."), (
            f"task {t['stage']}/{t['part']}: output {base!r} is not that "
            f"of its committed attempt (lease {t['lease']})")
    want = {os.path.basename(t["output"]) for t in tasks
            if t["stage"] == last}
    spool = spool or srv.spool

    def settled():
        return job_spool_files(spool, job_id) == want

    wait_until(settled, timeout, lambda: (
        f"job {job_id}'s spool holds {sorted(job_spool_files(spool, job_id))}"
        f", expected exactly the committed outputs {sorted(want)}"), 0.1)
    for name in want:
        p = Path(spool) / "jobs" / _uuid(job_id) / name
        assert p.is_file(), f"committed output {p} is missing"
    return tasks


class LifeServer(Server):
    """A sheafd with settings of its own: extra environment ('env'), a role
    ('worker': no API; start() waits for its workers instead of /healthz), a
    spool shared with other instances, another database."""

    def __init__(self, root, data_root=None, label="life", env=None,
                 role=None, spool=None, db_url=None):
        super().__init__(root, data_root, label)
        if spool is not None:
            self.spool = Path(spool)
            self.spool.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(env or {})
        self.role = role
        self.db_url = db_url

    def env(self):
        env = super().env()
        if self.db_url:
            env["DATABASE_URL"] = self.db_url
        env["SHEAF_SPOOL"] = str(self.spool)
        env.update(self.extra_env)
        return env

    def n_workers(self):
        return int(self.env().get("SHEAF_WORKERS", WORKERS))

    def args(self):
        # --role api serves the API as --role all does (start() waits for
        # /healthz); --role worker is started below.
        return ["--role", self.role] if self.role else []

    def start(self, timeout=20):
        if self.role != "worker":
            return super().start(timeout)
        exe = sheafd_path()
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n==== test harness: start #{self.starts} of "
                       f"{exe} --role worker ====\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(
                [str(exe), "--role", "worker"], env=self.env(),
                cwd=str(self.root), stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail(f"sheafd --role worker ({self.label}) exited "
                            f"with status {rc} during start-up; log tail:\n"
                            f"{self.tail()}", pytrace=False)
            if len(self.note_children()) >= self.n_workers():
                return
            time.sleep(0.05)
        pytest.fail(f"sheafd --role worker ({self.label}) did not start its "
                    f"workers within {timeout} s; log tail:\n{self.tail()}",
                    pytrace=False)


class PrivatePg:
    """A PostgreSQL cluster of one test's own (scripts/pg.sh), for tests that
    stop and start the database. It lives under /var/tmp (a directory the
    postgres user can reach when the tests run as root) and is removed by
    destroy()."""

    def __init__(self, tag):
        self.dir = Path(f"/var/tmp/sheaf-it-{RUN_ID}-{tag}")
        self.port = str(5500 + int(uuid.uuid4().int % 400))
        self.url = None

    def _run(self, *args, timeout=120):
        env = dict(os.environ, SHEAF_PG_DIR=str(self.dir),
                   SHEAF_PG_PORT=self.port, SHEAF_PG_DB="sheaf_life")
        r = subprocess.run([str(REPO / "scripts" / "pg.sh"), *args], env=env,
                           capture_output=True, timeout=timeout, check=False)
        if r.returncode != 0:
            pytest.fail(f"scripts/pg.sh {' '.join(args)} failed "
                        f"({r.returncode}):\n"
                        f"{r.stderr.decode('utf-8', 'replace')}",
                        pytrace=False)
        return r.stdout.decode().strip()

    def start(self):
        self.url = self._run("start").splitlines()[-1]
        return self.url

    def stop(self):
        self._run("stop")

    def destroy(self):
        try:
            if self.dir.exists():
                self._run("stop")
        finally:
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)


# --------------------------------------------------------------------------
# Fake services: a server misbehaving on purpose, or serving routes the
# real one does not serve yet (test_cli.py, test_client.py,
# test_cli_progress.py)


class FakeHandler(BaseHTTPRequestHandler):
    """The base of a fake service's handler: HTTP/1.1, quiet, send()."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json", headers=()):
        """Reply 'status' with 'body' (bytes, or a value sent as JSON)."""
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def fake_service(handler):
    """Serve 'handler' (a request handler class) on a free port of
    127.0.0.1 in a thread; -> its base URL, and stop it at the end."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield "http://127.0.0.1:%d" % srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


# --------------------------------------------------------------------------
# DuckDB, when installed: @duckdb/node-api under $BENCH_NODE_MODULES
# (../shared/bench/setup.sh installs it there), run by node.

NODE_MODULES = os.environ.get("BENCH_NODE_MODULES", "/tmp/bench-peers")

_DUCK_CSV_JS = r"""
const path = require("path");
const { DuckDBInstance } = require("module").createRequire(
    path.join(process.argv[1], "x.js"))("@duckdb/node-api");
(async () => {
  const [csvPath, columns, sql] = process.argv.slice(2);
  const cols = Object.entries(JSON.parse(columns))
      .map(([name, type]) => `'${name}': '${type}'`).join(", ");
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  await c.run(`CREATE VIEW src AS SELECT * FROM read_csv('${csvPath}',
      header = true, columns = {${cols}})`);
  const r = await c.runAndReadAll(sql);
  process.stdout.write(JSON.stringify({cols: r.columnNames(),
                                       rows: r.getRowsJson()}));
})().catch((e) => { console.error(e.message); process.exit(1); });
"""


def duckdb_missing():
    """None when DuckDB can run, else why not (for pytest.skip)."""
    node = shutil.which("node")
    if node is None:
        return "no node on PATH"
    probe = subprocess.run(
        [node, "-e", "require('module').createRequire(process.argv[1] + "
         "'/x.js')('@duckdb/node-api')", NODE_MODULES], capture_output=True)
    if probe.returncode != 0:
        return (f"@duckdb/node-api is not installed in {NODE_MODULES} "
                f"(run ../shared/bench/setup.sh)")
    return None


def duckdb_query_csv(csv_path, columns, sql, timeout=120):
    """Run 'sql' in DuckDB over the CSV file 'csv_path' (a header line),
    seen as the view 'src' whose columns are 'columns' ({name: DuckDB
    type}, in the file's order). Returns (column names, rows) as
    getRowsJson gives them: BIGINT as text, DOUBLE as a JSON number, dates
    and timestamps as ISO text."""
    r = subprocess.run(["node", "-e", _DUCK_CSV_JS, NODE_MODULES,
                        str(csv_path), json.dumps(columns), sql],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"duckdb failed on {sql!r}: {r.stderr}"
    out = json.loads(r.stdout)
    return out["cols"], out["rows"]
