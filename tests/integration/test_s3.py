"""
test_s3.py - lib/s3 against a real S3-compatible server (s3rver), through
the driver build/s3_tool, with what it writes checked by an independent
client (npm's minio, tools/it/s3check.js); and its retries against a faulty
server of our own that answers 503 and cuts a body short.
"""

import hashlib
import http.server
import os
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from s3fixture import BUCKET


def s3_tool():
    bindir = os.environ.get("SHEAF_BIN") or "build"
    path = Path(bindir) / "s3_tool"
    if not os.access(path, os.X_OK):
        pytest.fail(f"no s3_tool in {bindir} (make all builds it)",
                    pytrace=False)
    return str(path)


def tool(env_over, *args, check=True):
    env = dict(os.environ)
    env.update(env_over)
    p = subprocess.run([s3_tool(), *args], env=env, capture_output=True,
                       timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"s3_tool {args}: {p.stderr.decode()}")
    return p


@pytest.fixture
def blob(tmp_path):
    data = b"".join(b"line %d,\xc3\xa9,x\n" % i for i in range(60000))
    path = tmp_path / "blob.csv"
    path.write_bytes(data)
    return data, path


def test_put_head_get_ranges(s3_server, blob):
    data, path = blob
    env = s3_server.env()
    key = "put/dir with space/a+b.csv"
    tool(env, "put", BUCKET, key, str(path))
    # The independent client sees the same object.
    assert s3_server.get(key) == data
    st = s3_server.stat(key)
    size, etag = tool(env, "head", BUCKET, key).stdout.decode().split()
    assert int(size) == len(data) == st["size"]
    assert etag == st["etag"] == hashlib.md5(data).hexdigest()
    assert tool(env, "get", BUCKET, key).stdout == data
    for start, end in [(0, 1), (17, 70000), (len(data) - 5, len(data)),
                       (100, len(data) + 1000), (len(data), len(data) + 5)]:
        got = tool(env, "get", BUCKET, key, str(start), str(end)).stdout
        assert got == data[start:end], (start, end)


def test_missing_object(s3_server):
    env = s3_server.env()
    p = tool(env, "head", BUCKET, "no/such.csv", check=False)
    assert p.returncode == 1 and p.stderr.startswith(b"ENOENT")
    p = tool(env, "get", BUCKET, "no/such.csv", check=False)
    assert p.returncode == 1 and b"NoSuchKey" in p.stderr
    p = tool(env, "get", "no-such-bucket", "k", check=False)
    assert p.returncode == 1 and b"NoSuchBucket" in p.stderr


def test_list_prefix(s3_server, tmp_path):
    env = s3_server.env()
    keys = ["lst/a.csv", "lst/b.csv", "lst/sub/c.csv", "lst/&<é>.csv",
            "lstx/d.csv"]
    for i, k in enumerate(keys):
        f = tmp_path / f"f{i}"
        f.write_bytes(b"x" * (i + 1))
        s3_server.put(k, f)
    out = tool(env, "list", BUCKET, "lst/").stdout.decode()
    got = [line.split("\t") for line in out.splitlines()]
    want = sorted((o["key"], str(o["size"]), o["etag"])
                  for o in s3_server.list("lst/"))
    assert sorted(tuple(g) for g in got) == want
    assert sorted(g[0] for g in got) == sorted(keys[:4])


def test_multipart_upload(s3_server, tmp_path):
    env = s3_server.env()
    data = os.urandom(12 * 1024 * 1024 + 123)
    f = tmp_path / "big"
    f.write_bytes(data)
    tool(env, "mpu", BUCKET, "mpu/big.bin", str(f), str(5 * 1024 * 1024))
    assert s3_server.get("mpu/big.bin") == data
    assert s3_server.stat("mpu/big.bin")["size"] == len(data)


def test_multipart_abort_leaves_no_object(s3_server, tmp_path):
    env = s3_server.env()
    f = tmp_path / "big"
    f.write_bytes(os.urandom(6 * 1024 * 1024))
    p = tool(env, "mpu", BUCKET, "mpu/aborted.bin", str(f),
             str(5 * 1024 * 1024), "abort", check=False)
    upload_id = p.stdout.decode().strip()
    assert upload_id
    # s3rver does not implement AbortMultipartUpload: it answers 405, and
    # the client reports it. A real S3 deletes the parts.
    assert p.returncode == 0 or b"HTTP 405 MethodNotAllowed" in p.stderr
    assert [o for o in s3_server.list("mpu/aborted")] == []
    with pytest.raises(AssertionError, match="NotFound|NoSuchKey"):
        s3_server.stat("mpu/aborted.bin")


def test_presign_matches_minio(s3_server, tmp_path):
    env = s3_server.env()
    key = "pre/a b+é.csv"
    when = datetime(2026, 12, 7, 10, 0, 0, tzinfo=timezone.utc)
    ours = tool(env, "presign", BUCKET, key, "600",
                str(int(when.timestamp()))).stdout.decode().strip()
    theirs = s3_server.check("presign", BUCKET, key, "600",
                             when.isoformat().replace("+00:00", "Z"))
    assert ours == theirs
    # And a fresh one fetches the object without credentials.
    f = tmp_path / "o"
    f.write_bytes(b"presigned\n")
    s3_server.put(key, f)
    url = tool(env, "presign", BUCKET, key, "60").stdout.decode().strip()
    p = subprocess.run(["curl", "-sf", "--noproxy", "*", url],
                       capture_output=True, timeout=30)
    assert p.stdout == b"presigned\n"


# ---- retries, against a server of our own ---------------------------------

class Faulty(http.server.BaseHTTPRequestHandler):
    """Serves DATA with ranges; the answers to the first requests follow
    PLAN: "503", "cut" (a body cut short, then the connection closed),
    "ok"."""

    protocol_version = "HTTP/1.1"
    DATA = b""
    PLAN = []
    seen = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range", "")
        type(self).seen.append(rng)
        what = type(self).PLAN.pop(0) if type(self).PLAN else "ok"
        if what == "norange":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.DATA)))
            self.end_headers()
            self.wfile.write(self.DATA)
            return
        if what == "503":
            body = (b"<Error><Code>SlowDown</Code><Message>Please reduce "
                    b"your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        a, _, b = rng.removeprefix("bytes=").partition("-")
        start = int(a)
        end = int(b) + 1 if b else len(self.DATA)
        end = min(end, len(self.DATA))
        chunk = self.DATA[start:end]
        self.send_response(206)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Content-Range",
                         f"bytes {start}-{end - 1}/{len(self.DATA)}")
        self.end_headers()
        if what == "cut":
            self.wfile.write(chunk[:len(chunk) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def faulty():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Faulty)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Faulty.DATA = os.urandom(3 * 1024 * 1024 + 7)
    Faulty.seen = []
    yield srv
    srv.shutdown()
    srv.server_close()


def faulty_env(srv, retries):
    return {"SHEAF_S3_ENDPOINT": f"http://127.0.0.1:{srv.server_port}",
            "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK",
            "SHEAF_S3_RETRIES": str(retries)}


def test_get_retries_and_resumes(faulty):
    Faulty.PLAN = ["503", "cut", "cut", "ok"]
    p = tool(faulty_env(faulty, 5), "get", "bkt", "k", "1000",
             str(3 * 1024 * 1024))
    assert p.stdout == Faulty.DATA[1000:3 * 1024 * 1024]
    assert b"requests 4" in p.stderr
    # Each retry after a cut asks for the bytes from the last received.
    starts = [int(r.removeprefix("bytes=").partition("-")[0])
              for r in Faulty.seen]
    assert starts[0] == starts[1] == 1000
    assert 1000 < starts[2] < starts[3] < 3 * 1024 * 1024
    assert all(r.endswith(f"-{3 * 1024 * 1024 - 1}") for r in Faulty.seen)


def test_get_gives_up_after_retries(faulty):
    Faulty.PLAN = ["503"] * 10
    p = tool(faulty_env(faulty, 2), "get", "bkt", "k", check=False)
    assert p.returncode == 1
    assert b"HTTP 503 SlowDown: Please reduce your request rate." in p.stderr
    assert len(Faulty.seen) == 3


def test_get_refuses_an_ignored_range(faulty):
    Faulty.PLAN = ["norange"]
    p = tool(faulty_env(faulty, 2), "get", "bkt", "k", "10", "20",
             check=False)
    assert p.returncode == 1
    assert b"ignored the byte range" in p.stderr
    assert p.stdout == b""
