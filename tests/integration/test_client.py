"""The Python client (clients/python/sheaf) against the real sheafd, and
against a small fake server for what today's sheafd does not serve yet
(events, manifests, uploads) and for faults (a cut download, a damaged
result).

Tests of routes that answer 501 today (datasets, events, manifest) run
against the real service when the route answers, and are skipped with the
reason while it answers 501.
"""

import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness import (REPO, FakeHandler, fake_service, read_csv_rows,
                     unique_name)

# Importable from the repo without installing.
sys.path.insert(0, str(REPO / "clients" / "python"))
import sheaf as sheaf_client  # noqa: E402
from sheaf import (IntegrityError, JobFailedError, Sheaf,  # noqa: E402
                   SheafError)

pd = pytest.importorskip("pandas")  # Debian's python3-pandas

ROWS = ("id,zip,name,score,flag,note\n"
        "1,00123,ann,1.5,true,NA\n"
        "2,04567,bob,,false,\n"
        "3,99999,cy,2.25,true,null\n"
        "4,00001,,-3,,x\n")
TYPES = {"id": "int", "zip": "string", "score": "float", "flag": "bool",
         "note": "string"}


@pytest.fixture(scope="module")
def data(session_server):
    sub = "client-" + uuid.uuid4().hex[:8]
    session_server.write_data(sub + "/t.csv", ROWS)
    # Many small partitions: a job that runs for a while (to cancel it).
    session_server.write_data(
        sub + "/big.csv", "k,v\n" + "".join("%d,%d\n" % (i % 97, i)
                                           for i in range(100000)))
    session_server.write_data(
        sub + "/nb.csv", "id,text,label\n" + "".join(
            "%d,%s,%s\n" % (i, ("good fine great" if i % 2 else
                                "bad awful poor"), "pos" if i % 2 else "neg")
            for i in range(200)))
    return sub


@pytest.fixture
def sh(sheaf):
    return Sheaf(sheaf.base)


def spec_of(data, **kw):
    spec = {"name": unique_name("client"),
            "input": {"path": data + "/t.csv", "columns": TYPES},
            "steps": [], "output": {"format": "csv"}}
    spec.update(kw)
    return spec


def route_or_skip(srv, method, path, body=None, job_id=None):
    """Skip the test while 'path' answers 501 (the route is not served
    yet); -> the Response otherwise."""
    r = srv.api(method, path, body)
    if r.status == 501:
        route = path.split("?")[0].replace(job_id or "\0", "{id}")
        pytest.skip(f"{method} {route} answers 501 "
                    f"not_implemented today; this test runs once it is "
                    f"served")
    return r


# ---- against the real sheafd ----------------------------------------------

def test_defaults_from_the_environment(monkeypatch, sheaf):
    monkeypatch.setenv("SHEAF_URL", sheaf.base + "/")
    monkeypatch.setenv("SHEAF_TOKEN", "t0k")
    s = Sheaf()
    assert s.url == sheaf.base and s.http.token == "t0k"
    monkeypatch.delenv("SHEAF_URL")
    monkeypatch.delenv("SHEAF_TOKEN")
    s = Sheaf()
    assert s.url == "http://127.0.0.1:8080" and s.http.token is None
    with pytest.raises(ValueError):
        Sheaf("ftp://x")


def test_submit_wait_result_and_to_pandas(sh, data, capsys):
    job = sh.submit(spec_of(data), wait=True)
    assert job.status == "succeeded", job.data
    # No terminal: the plain bar prints a line per state, ending with it.
    err = capsys.readouterr().err
    assert "partitions" in err and err.rstrip().endswith("succeeded"), err
    body = job.result()
    assert read_csv_rows(body)[1] == ["1", "00123", "ann", "1.5", "true",
                                      "NA"]

    assert job.dtypes() == {"id": "Int64", "zip": "object",
                            "name": "object", "score": "float64",
                            "flag": "boolean", "note": "object"}
    df = job.to_pandas()
    assert list(df.columns) == ["id", "zip", "name", "score", "flag",
                                "note"]
    assert str(df["id"].dtype) == "Int64"
    assert df["id"].tolist() == [1, 2, 3, 4]
    # Leading zeros stay: the column is a string column.
    assert df["zip"].tolist() == ["00123", "04567", "99999", "00001"]
    assert df["score"].tolist()[0] == 1.5 and pd.isna(df["score"][1])
    assert df["score"].tolist()[3] == -3.0
    assert str(df["flag"].dtype) == "boolean"
    assert df["flag"].tolist()[:3] == [True, False, True]
    assert pd.isna(df["flag"][3])
    # An empty field is null; "NA" and "null" are text.
    assert df["note"].tolist()[0] == "NA" and pd.isna(df["note"][1])
    assert df["note"].tolist()[2:] == ["null", "x"]


def test_ints_with_nulls_stay_ints(sh, data, sheaf):
    sheaf.write_data(data + "/nulls.csv", "a,b\n1,007\n,10\n3,\n")
    spec = spec_of(data, input={"path": data + "/nulls.csv",
                                "columns": {"a": "int", "b": "string"}})
    df = sh.submit(spec, wait=True, progress=False).to_pandas()
    assert str(df["a"].dtype) == "Int64"
    assert df["a"].tolist()[0] == 1 and pd.isna(df["a"][1])
    assert df["a"].tolist()[2] == 3
    assert df["b"].tolist()[0] == "007" and pd.isna(df["b"][2])


def test_to_pandas_after_steps_and_jsonl_gzip(sh, data):
    spec = spec_of(data, steps=[
        {"op": "groupby", "by": ["flag"],
         "aggs": [{"as": "n", "fn": "count"},
                  {"as": "top", "fn": "max", "column": "zip"}]},
        {"op": "sort", "by": ["flag"]}],
        output={"format": "jsonl", "compression": "gzip"})
    job = sh.submit(spec, wait=True, progress=False)
    assert job.status == "succeeded", job.data
    df = job.to_pandas()
    assert list(df.columns) == ["flag", "n", "top"]
    assert str(df["n"].dtype) == "Int64" and str(df["flag"].dtype) == \
        "boolean"
    rows = [(None if pd.isna(f) else bool(f), int(n), t)
            for f, n, t in zip(df["flag"], df["n"], df["top"])]
    assert rows == [(False, 1, "04567"), (True, 2, "99999"),
                    (None, 1, "00001")]


def test_result_to_a_file_resumes_a_part(sh, data, tmp_path, sheaf):
    job = sh.submit(spec_of(data, input={"path": data + "/big.csv"}),
                    wait=True, progress=False)
    assert job.status == "succeeded", job.data
    full = sheaf.result(job.id)
    etag = sheaf.api("GET", f"/v1/jobs/{job.id}/result").headers["ETag"]
    out = tmp_path / "big.csv"
    # A download cut short earlier: the first bytes are there, with the
    # ETag they came with; the rest is fetched with Range.
    Path(str(out) + ".part").write_bytes(full[:12345])
    Path(str(out) + ".part.etag").write_text(etag)
    assert job.result(out) == out
    assert out.read_bytes() == full
    assert not Path(str(out) + ".part").exists()
    assert not Path(str(out) + ".part.etag").exists()
    # A .part longer than the result (416 for its Range): started over.
    Path(str(out) + ".part").write_bytes(b"X" * (len(full) + 5))
    Path(str(out) + ".part.etag").write_text(etag)
    assert job.result(out) == out and out.read_bytes() == full
    # A .part without its ETag cannot be trusted: started over.
    Path(str(out) + ".part").write_bytes(b"X" * 100)
    assert job.result(out) == out and out.read_bytes() == full
    if job.manifest() is not None:
        # Bytes that are not the result's, with the right ETag: only the
        # manifest's SHA-256s can tell (without it, the length matches).
        Path(str(out) + ".part").write_bytes(b"X" * 100)
        Path(str(out) + ".part.etag").write_text(etag)
        with pytest.raises(IntegrityError):
            job.result(out)


def test_progress_bar_on_a_terminal(sheaf, data):
    """Job.wait's plain bar (no tqdm here) under a real pseudo-terminal:
    one line redrawn with carriage returns, ending with the state."""
    import pty
    spec = spec_of(data, input={"path": data + "/big.csv",
                                "partition_size": "8KiB"},
                   steps=[{"op": "groupby", "by": ["k"],
                           "aggs": [{"as": "n", "fn": "count"}]}])
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from sheaf import Sheaf\n"
            "job = Sheaf(%r).submit(%r, wait=True)\n"
            "print('END', job.status, job.progress['partitions_total'])\n"
            % (str(REPO / "clients" / "python"), sheaf.base, spec))
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", code])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child's side closed
            break
        if not chunk:
            break
        out += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")
    assert os.WEXITSTATUS(status) == 0, text
    m = re.search(r"END succeeded (\d+)", text)
    assert m, text
    total = int(m.group(1))
    draws = [d.split("\n")[0] for d in text.split("\r")[1:]]
    assert len(draws) >= 2, text
    assert draws[-1].rstrip().endswith("succeeded"), draws
    assert f"{total}/{total} partitions" in draws[-1], draws
    assert draws[0].rstrip().endswith(("queued", "running")), draws


def test_errors_carry_code_message_and_path(sh, data):
    spec = spec_of(data, steps=[{"op": "filter", "where": "nope > 1"}])
    with pytest.raises(SheafError) as e:
        sh.submit(spec)
    assert e.value.status == 400 and e.value.code == "invalid_spec"
    assert e.value.path == "steps[0].where" and "nope" in e.value.message
    with pytest.raises(SheafError) as e:
        sh.job(str(uuid.uuid4()))
    assert e.value.status == 404 and e.value.code == "not_found"
    with pytest.raises(SheafError) as e:
        sh.submit({"input": {"path": "../etc/passwd"}})
    assert e.value.status == 400 and e.value.path.startswith("input")


def test_failed_job_result_raises_job_failed(sh, data, sheaf):
    sheaf.write_data(data + "/bad.csv", "a\n1\n2\nx\n")
    spec = spec_of(data, input={"path": data + "/bad.csv",
                                "columns": {"a": "int"}})
    job = sh.submit(spec, wait=True, progress=False)
    assert job.status == "failed"
    with pytest.raises(JobFailedError) as e:
        job.to_pandas()
    assert e.value.code == "job_failed" and "'x'" in e.value.message


def test_idempotency_key_gives_the_same_job(sh, data):
    spec = spec_of(data)
    key = uuid.uuid4().hex
    a = sh.submit(spec, idempotency_key=key)
    b = sh.submit(spec, idempotency_key=key)
    assert a.id == b.id
    with pytest.raises(SheafError) as e:
        sh.submit(dict(spec, name=spec["name"] + "-other"),
                  idempotency_key=key)
    assert e.value.status == 409


def test_jobs_filters_and_pages(sh, data):
    name = unique_name("client-ls")
    ids = [sh.submit(spec_of(data, name=name)).id for _ in range(3)]
    for i in ids:
        sh.job(i).wait(progress=False)
    got = sh.jobs(name=name)
    assert [j.id for j in got] == ids[::-1]  # newest first
    assert [j.id for j in sh.jobs(name=name, limit=2)] == ids[::-1][:2]
    assert sh.jobs(name=name, status="failed") == []
    assert {j.status for j in sh.jobs(name=name, status="succeeded")} == \
        {"succeeded"}
    # A page of one at a time follows the cursor.
    assert [j.id for j in sh.iter_jobs(name=name)] == ids[::-1]


def test_cancel_and_tasks(sh, data):
    spec = spec_of(data, input={"path": data + "/big.csv",
                                "partition_size": "4KiB"},
                   steps=[{"op": "derive", "as": "w", "expr": "v * 2"}])
    job = sh.submit(spec)
    job.cancel()
    job.wait(timeout=120, progress=False)
    assert job.status == "cancelled", job.data
    tasks = job.tasks()
    assert len(tasks) == job.progress["partitions_total"] > 100
    assert {"state", "attempts", "rows_in", "worker"} <= set(tasks[0])
    with pytest.raises(JobFailedError) as e:
        job.result()
    assert e.value.code == "job_cancelled"


def test_wait_timeout_raises_and_job_goes_on(sh, data):
    spec = spec_of(data, input={"path": data + "/big.csv",
                                "partition_size": "4KiB"},
                   priority=-1000)
    job = sh.submit(spec)
    try:
        with pytest.raises(TimeoutError):
            job.wait(timeout=0, progress=False)
    finally:
        job.cancel()


def test_report_of_naive_bayes(sh, data):
    spec = spec_of(data, input={"path": data + "/nb.csv"},
                   steps=[{"op": "train_naive_bayes", "text": "text",
                           "label": "label", "holdout": "id % 5 == 0"}])
    job = sh.submit(spec, wait=True, progress=False)
    assert job.status == "succeeded", job.data
    rep = job.report()
    assert rep["n_test"] == 40 and rep["n_train"] == 160
    assert rep["accuracy"] == 1.0
    assert "report" in json.dumps(job.artifacts())
    plain = sh.submit(spec_of(data), wait=True, progress=False)
    with pytest.raises(SheafError) as e:
        plain.report()
    assert e.value.status == 404


def test_upload_then_a_job_on_the_dataset(sh, sheaf, tmp_path):
    route_or_skip(sheaf, "GET", "/v1/datasets")
    f = tmp_path / "up.csv"
    f.write_bytes(ROWS.encode())
    ds = sh.upload(f)
    assert ds["bytes"] == len(ROWS) and ds["name"] == "up.csv"
    assert ds["sha256"] == hashlib.sha256(ROWS.encode()).hexdigest()
    assert ds["id"] in {d["id"] for d in sh.datasets()}
    # A file object with a name of the caller's.
    ds2 = sh.upload(io.BytesIO(ROWS.encode()), name="again.csv")
    assert ds2["name"] == "again.csv"
    job = sh.submit({"name": unique_name("client-ds"),
                     "input": {"dataset": ds["id"], "columns": TYPES}},
                    wait=True, progress=False)
    assert job.status == "succeeded", job.data
    assert job.to_pandas()["zip"].tolist()[0] == "00123"
    sh.delete_dataset(ds2["id"])


def test_events_of_a_job(sh, data, sheaf):
    job = sh.submit(spec_of(data))
    route_or_skip(sheaf, "GET", f"/v1/jobs/{job.id}/events",
                  job_id=job.id)
    seen = [ev.json() for ev in job.events()]
    assert seen and all(isinstance(d, dict) for d in seen)
    assert seen[-1].get("status") == "succeeded"


def test_manifest_checks_the_result(sh, data, sheaf):
    job = sh.submit(spec_of(data, input={"path": data + "/big.csv",
                                         "partition_size": "64KiB"},
                            steps=[{"op": "sort", "by": ["v"]}]),
                    wait=True, progress=False)
    r = route_or_skip(sheaf, "GET", f"/v1/jobs/{job.id}/manifest",
                      job_id=job.id)
    assert r.status == 200, r
    m = job.manifest()
    full = sheaf.result(job.id)
    assert sum(p["bytes"] for p in m["parts"]) == len(full)
    pos = 0
    for p in m["parts"]:
        chunk = full[pos:pos + p["bytes"]]
        assert hashlib.sha256(chunk).hexdigest() == p["sha256"]
        pos += p["bytes"]
    assert job.result() == full


def test_pip_install_and_import(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "clients" / "python", src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                  "__pycache__"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "--no-build-isolation", "--no-deps", "--no-index",
                        "--target", str(target), str(src)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named pip" in r.stderr:
        pytest.skip("pip is not installed (Debian: python3-pip)")
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c",
                        "import sheaf; print(sheaf.__file__, "
                        "sheaf.Sheaf.__doc__ is not None)"],
                       env=dict(os.environ, PYTHONPATH=str(target)),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(str(target)) and "True" in r.stdout


# ---- a fake service: events, manifests, uploads and faults -----------------

FAKE_ID = "11111111-2222-3333-4444-555555555555"
FAKE_RESULT = b"a,b\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(3000))
PARTS = [FAKE_RESULT[:5000], FAKE_RESULT[5000:20000], FAKE_RESULT[20000:]]


def fake_job(status, done):
    return {"id": FAKE_ID, "status": status, "name": "fake",
            "progress": {"partitions_total": 3, "partitions_done": done,
                         "rows_in": 1000 * done, "bytes_in": 9000 * done},
            "error": None,
            "result": {"url": f"/v1/jobs/{FAKE_ID}/result",
                       "bytes": len(FAKE_RESULT), "rows": 3000},
            "spec": {"input": {"path": "x.csv"}}}


class Fake(FakeHandler):
    """Serves a job whose events break once mid-stream, a manifest (right,
    or with one wrong SHA-256 under /bad), a result cut once (under
    /cut), and uploads."""
    log = []
    events_done = False

    def do_GET(self):
        Fake.log.append((self.path, {k.lower(): v for k, v
                                      in self.headers.items()}))
        prefix, _, path = self.path.partition("/v1/")
        path = "/v1/" + path.split("?")[0]
        base = f"/v1/jobs/{FAKE_ID}"
        if path == base:
            if prefix == "/silent":
                return self.send(200, fake_job("running", 1))
            if prefix == "/ev" and not Fake.events_done:
                return self.send(200, fake_job("running", 0))
            return self.send(200, fake_job("succeeded", 3))
        if path == base + "/events" and prefix == "/silent":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.close_connection = True
            time.sleep(3)  # a stream that says nothing
            return
        if path == base + "/events":
            return self.events()
        if path == base + "/manifest":
            parts = [{"bytes": len(p), "rows": p.count(b"\n"),
                      "sha256": hashlib.sha256(p).hexdigest()}
                     for p in PARTS]
            if prefix == "/bad":
                parts[1]["sha256"] = "0" * 64
            return self.send(200, {"bytes": len(FAKE_RESULT),
                                   "parts": parts})
        if path == base + "/result":
            rng = self.headers.get("Range")
            if rng and self.headers.get("If-Range") == '"e1"':
                start = int(rng.split("=")[1].rstrip("-"))
                return self.send(206, FAKE_RESULT[start:], "text/csv", [
                    ("ETag", '"e1"'), ("Content-Range", "bytes %d-%d/%d" % (
                        start, len(FAKE_RESULT) - 1, len(FAKE_RESULT)))])
            if prefix == "/cut":
                self.send_response(200)
                self.send_header("ETag", '"e1"')
                self.send_header("Content-Length", str(len(FAKE_RESULT)))
                self.end_headers()
                self.wfile.write(FAKE_RESULT[:7000])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            return self.send(200, FAKE_RESULT, "text/csv",
                             [("ETag", '"e1"')])
        self.send(404, {"error": {"code": "not_found", "message": "no",
                                  "path": ""}})

    def events(self):
        last = self.headers.get("Last-Event-ID")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.close_connection = True
        w = self.wfile
        if last is None:
            w.write(b": hello\n\nid: 1\nevent: state\n"
                    b'data: {"status": "running"}\n\n'
                    b"id: 2\nevent: progress\n"
                    b'data: {"progress": {"partitions_total": 3,\n'
                    b'data: "partitions_done": 1, "rows_in": 1000}}\n\n'
                    b"id: 3\nevent: progress\ndata: {\"progr")
            w.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # broken mid-event
            return
        assert last == "2", last
        w.write(b"id: 3\r\nevent: progress\r\n"
                b'data: {"status": "running", "progress": '
                b'{"partitions_total": 3, "partitions_done": 3}}\r\n\r\n'
                b'id: 4\nevent: state\ndata: {"status": "succeeded"}\n\n')
        w.flush()
        Fake.events_done = True

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(n)
        Fake.log.append((self.path, {k.lower(): v for k, v
                                      in self.headers.items()}))
        digest = self.headers.get("Content-Digest")
        sha = hashlib.sha256(body)
        if digest is not None and digest != (
                "sha-256=:" + base64.b64encode(sha.digest()).decode() + ":"):
            return self.send(400, {"error": {"code": "bad_request",
                                             "message": "digest mismatch",
                                             "path": ""}})
        stored = sha.hexdigest() if "damage" not in self.path else "0" * 64
        self.send(201, {"id": "d1", "name": self.path.split("name=")[-1],
                        "bytes": len(body), "sha256": stored})


@pytest.fixture(scope="module")
def fake():
    with fake_service(Fake) as url:
        yield url


def test_sse_parser():
    stream = io.BytesIO(b"\xef\xbb\xbf: comment\n\nid: 7\nevent: a\n"
                        b"data: 1\ndata:2\n\n"
                        b"retry: 500\ndata: {\"x\": 1}\r\n\r\n"
                        b"data: last, never ended")
    evs = list(sheaf_client.iter_events(stream))
    assert [(e.event, e.data, e.id) for e in evs] == [
        ("a", "1\n2", "7"), ("message", '{"x": 1}', "7")]
    assert evs[1].retry_ms == 500 and evs[1].json() == {"x": 1}


def test_wait_follows_events_and_resumes_them(fake, capsys):
    Fake.log.clear()
    Fake.events_done = False
    job = Sheaf(fake + "/ev").job(FAKE_ID)
    assert job.status == "running"
    job.wait(timeout=60)
    assert job.status == "succeeded"
    ev_gets = [h for p, h in Fake.log if p.endswith("/events")]
    assert len(ev_gets) == 2
    assert "last-event-id" not in ev_gets[0]
    assert ev_gets[1].get("last-event-id") == "2"
    err = capsys.readouterr().err
    assert "3/3 partitions" in err and "succeeded" in err


def test_result_checked_against_the_manifest(fake, tmp_path):
    job = Sheaf(fake).job(FAKE_ID)
    assert job.result() == FAKE_RESULT
    out = tmp_path / "r.csv"
    assert Sheaf(fake + "/cut").job(FAKE_ID).result(out) == out
    assert out.read_bytes() == FAKE_RESULT
    with pytest.raises(IntegrityError) as e:
        Sheaf(fake + "/bad").job(FAKE_ID).result(tmp_path / "bad.csv")
    assert "part 1" in str(e.value) and e.value.code == "checksum_mismatch"
    assert not (tmp_path / "bad.csv").exists()
    assert not (tmp_path / "bad.csv.part").exists()
    with pytest.raises(IntegrityError):
        Sheaf(fake + "/bad").job(FAKE_ID).result_stream().read()


def test_upload_sends_the_sha256(fake, tmp_path):
    f = tmp_path / "in.csv"
    f.write_bytes(FAKE_RESULT)
    Fake.log.clear()
    ds = Sheaf(fake).upload(f, progress=True)
    assert ds["bytes"] == len(FAKE_RESULT) and ds["name"] == "in.csv"
    hdrs = Fake.log[-1][1]
    assert hdrs["content-digest"] == "sha-256=:" + base64.b64encode(
        hashlib.sha256(FAKE_RESULT).digest()).decode() + ":"
    # A stream that cannot seek goes chunked; the answer is still checked.
    r, w = os.pipe()
    os.write(w, b"x,y\n1,2\n")
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        ds = Sheaf(fake).upload(pipe, name="p.csv")
    assert ds["bytes"] == 8
    with pytest.raises(IntegrityError):
        Sheaf(fake + "/damage").upload(f)


def test_wait_on_a_silent_stream_times_out(fake):
    job = Sheaf(fake + "/silent").job(FAKE_ID)
    with pytest.raises(TimeoutError):
        job.wait(timeout=1, progress=False)
    assert job.status == "running"
