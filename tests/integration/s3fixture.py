"""
s3fixture.py - an S3-compatible server for the object-storage tests: npm's
s3rver (installed under tools/it by scripts/npm_tools.sh it: npm ci) started on
127.0.0.1 on a free port with a temporary directory and one bucket, stopped
by its pid; and npm's minio client (tools/it/s3check.js) to check what sheaf
writes independently of lib/s3.

s3rver accepts any well-formed SigV4 signature without checking it, and
does not implement AbortMultipartUpload (it answers 405): the tests say so
where it matters. Presigned URLs are compared with minio's instead.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import REPO, free_port

TOOLS = REPO / "tools" / "it"
S3RVER = TOOLS / "node_modules" / "s3rver" / "bin" / "s3rver.js"
S3CHECK = TOOLS / "s3check.js"
BUCKET = "sheaf-test"
# s3rver's built-in account.
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"


def ensure_tools():
    """Install tools/it's npm packages when they are missing (deps.sh
    normally has: scripts/npm_tools.sh it is instant then)."""
    p = subprocess.run([str(REPO / "scripts" / "npm_tools.sh"), "it"],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        pytest.fail(f"scripts/npm_tools.sh it failed: {p.stderr}", pytrace=False)


class S3Server:
    """One s3rver process with one bucket (BUCKET)."""

    def __init__(self, root):
        self.root = Path(root)
        self.dir = self.root / "s3rver"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / "s3rver.log"
        self.proc = None

    def env(self):
        """The settings lib/s3 (and s3check.js) read."""
        return {
            "SHEAF_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def start(self, timeout=20):
        ensure_tools()
        if not S3RVER.exists():
            pytest.fail(f"no s3rver at {S3RVER}: run scripts/npm_tools.sh it",
                        pytrace=False)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                ["node", str(S3RVER), "-d", str(self.dir), "-a", "127.0.0.1",
                 "-p", str(self.port), "--no-vhost-buckets",
                 "--configure-bucket", BUCKET],
                stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"s3rver exited: {self.log_path.read_text()}")
            try:
                opener.open(f"{self.endpoint}/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail("s3rver did not answer in time")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    # -- the independent client (npm minio) ------------------------------

    def check(self, *args, data=False):
        """Run tools/it/s3check.js; its stdout (bytes when 'data')."""
        env = dict(os.environ)
        env.update(self.env())
        p = subprocess.run(["node", str(S3CHECK), *args], env=env,
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"s3check {args}: {p.stderr.decode()}")
        return p.stdout if data else p.stdout.decode()

    def put(self, key, path):
        self.check("put", BUCKET, key, str(path))

    def get(self, key):
        return self.check("get", BUCKET, key, data=True)

    def stat(self, key):
        return json.loads(self.check("stat", BUCKET, key))

    def list(self, prefix=""):
        out = self.check("list", BUCKET, prefix)
        return [json.loads(line) for line in out.splitlines() if line]

    def uploads_dir(self):
        """Where s3rver keeps the parts of unfinished multipart uploads."""
        return self.dir / BUCKET / "._S3rver_uploads"
