"""
test_s3_store.py - results in object storage (SHEAF_STORE=s3://bucket/
prefix, service/store.h): a succeeded job's result is uploaded with a
multipart upload, checked with npm's minio; the result route serves it from
the bucket (also when the spool's copy is gone, and for byte ranges), or
redirects to a presigned URL with SHEAF_S3_PRESIGN=1; a failed job leaves
no object.
"""

import time
import urllib.request

import pytest

from harness import RUN_ID, unique_name
from s3fixture import BUCKET

ROWS = 40000


def data_text():
    lines = ["k,v"] + [f"key{i % 97},{i}" for i in range(ROWS)]
    return "\n".join(lines) + "\n"


def spec(path, **over):
    s = {"name": unique_name("store"),
         "input": {"path": path, "partition_size": "64KiB"},
         "steps": [{"op": "filter", "where": "v % 3 == 0"}],
         "output": {"format": "csv"}}
    s.update(over)
    return s


def wait_object(s3_server, key, timeout=60):
    """The object's stat once the worker has uploaded it (the upload follows
    the job's success)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        objs = [o for o in s3_server.list(key) if o["key"] == key]
        if objs:
            return objs[0]
        time.sleep(0.3)
    pytest.fail(f"no object {key} after {timeout} s")


@pytest.fixture
def store_env(s3_server):
    env = dict(s3_server.env())
    env["SHEAF_STORE"] = f"s3://{BUCKET}/store-{RUN_ID}/"
    return env


def test_result_in_store_streamed(life_sheaf, s3_server, store_env):
    srv = life_sheaf("store", env=store_env)
    srv.write_data(f"store-{RUN_ID}/in.csv", data_text())
    job, body = srv.run(spec(f"store-{RUN_ID}/in.csv"), 120)
    key = f"store-{RUN_ID}/results/{job['id']}/result"
    obj = wait_object(s3_server, key)
    # What the bucket holds (read by minio) is the result the API gave.
    stored = s3_server.get(key)
    assert obj["size"] == len(stored) == len(body)
    assert stored == body
    assert body.count(b"\n") == ROWS // 3 + 1 + (1 if ROWS % 3 else 0)
    # Remove the spool's copy: the result now comes from the bucket only.
    jobdir = srv.spool / "jobs" / job["id"]
    parts = sorted(p for p in jobdir.iterdir() if p.name.startswith("s"))
    assert parts
    for p in parts:
        p.unlink()
    r = srv.api("GET", f"/v1/jobs/{job['id']}/result")
    assert r.status == 200 and r.raw == body
    r = srv.api("GET", f"/v1/jobs/{job['id']}/result",
                headers={"Range": "bytes=100-5000"})
    assert r.status == 206 and r.raw == body[100:5001]


def test_failed_job_leaves_no_object(life_sheaf, s3_server, store_env):
    srv = life_sheaf("store-fail", env=store_env)
    srv.write_data(f"store-{RUN_ID}/bad.csv", "k,v\nx,1\ny,notanumber\n")
    s = spec(f"store-{RUN_ID}/bad.csv")
    s["input"]["columns"] = {"v": "int"}
    job = srv.submit(s)
    done = srv.wait(job["id"], 60)
    assert done["status"] == "failed", done
    assert s3_server.list(f"store-{RUN_ID}/results/{job['id']}/") == []


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_presigned_redirect(life_sheaf, s3_server, store_env):
    env = dict(store_env)
    env["SHEAF_S3_PRESIGN"] = "1"
    srv = life_sheaf("store-presign", env=env)
    srv.write_data(f"store-{RUN_ID}/p.csv", data_text())
    # Not srv.run: its download would follow the redirect.
    job = srv.submit(spec(f"store-{RUN_ID}/p.csv"))
    assert srv.wait(job["id"], 120)["status"] == "succeeded"
    key = f"store-{RUN_ID}/results/{job['id']}/result"
    wait_object(s3_server, key)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), NoRedirect)
    try:
        opener.open(f"{srv.base}/v1/jobs/{job['id']}/result", timeout=30)
        pytest.fail("no redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302
        loc = e.headers["Location"]
    assert loc.startswith(f"{s3_server.endpoint}/{BUCKET}/{key}?")
    assert "X-Amz-Signature=" in loc and "X-Amz-Expires=300" in loc
    plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    got = plain.open(loc, timeout=30).read()
    assert got == s3_server.get(key)
