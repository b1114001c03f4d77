"""
test_s3_store.py - results in object storage (SHEAF_STORE=s3://bucket/
prefix, service/store.h): a succeeded job's result is uploaded with a
multipart upload, checked with npm's minio; the result route serves it from
the bucket (also when the spool's copy is gone, and for byte ranges), or
redirects to a presigned URL with SHEAF_S3_PRESIGN=1; a failed job leaves
no object; retention removes the objects. Artifacts and datasets through
the store: a train_naive_bayes job run on node A whose artifacts node B
(a spool of its own) serves byte for byte and whose model it predicts
with, node C redirecting to the artifact; a dataset uploaded through A
read by a job on B; DELETE removing the objects.
"""

import random
import time
import urllib.request

import pytest

from harness import RUN_ID, check_exact, http, unique_name
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


# --------------------------------------------------------------------------
# artifacts through the store: a train_naive_bayes job run by node A, its
# artifacts served and its model used by node B (a spool of its own).

SPAM = ["buy", "cheap", "pills", "winner", "prize", "offer", "free", "cash"]
HAM = ["meeting", "tomorrow", "lunch", "report", "project", "agenda",
       "notes", "review"]


def nb_text(rnd, words):
    return " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 9)))


def nb_spec(path, steps, columns, part):
    return {"name": unique_name("store-nb"),
            "input": {"path": path, "format": "csv", "columns": columns,
                      "partition_size": part},
            "steps": steps, "output": {"format": "csv"}}


def test_artifacts_and_model_from_another_node(life_sheaf, s3_server,
                                               store_env):
    prefix = store_env["SHEAF_STORE"][len(f"s3://{BUCKET}/"):].rstrip("/")
    a = life_sheaf("store-nb-a", env=store_env)
    rnd = random.Random(21)
    lines = ["id,text,label"]
    for i in range(600):
        label = "spam" if rnd.random() < 0.4 else "ham"
        lines.append(f"{i},{nb_text(rnd, SPAM if label == 'spam' else HAM)},"
                     f"{label}")
    a.write_data(f"{prefix}/nb-train.csv", "\n".join(lines) + "\n")
    train = nb_spec(f"{prefix}/nb-train.csv",
                    [{"op": "train_naive_bayes", "text": "text",
                      "label": "label", "features": 512,
                      "holdout": "id % 5 == 0"}],
                    {"id": "int", "text": "string", "label": "string"},
                    "4KiB")
    job, _ = a.run(train, 120)
    jid = job["id"]
    names = ["model", "report"]
    objs = {n: wait_object(s3_server, f"{prefix}/artifacts/{jid}/{n}")
            for n in names}
    local = {}
    for n in names:
        r = a.api("GET", f"/v1/jobs/{jid}/artifacts/{n}")
        assert r.status == 200, r
        local[n] = r.raw
        # What the bucket holds (read by minio) is what node A serves.
        assert s3_server.get(f"{prefix}/artifacts/{jid}/{n}") == r.raw
        assert objs[n]["size"] == len(r.raw) > 0
    a.stop()

    # Node B: its own spool, none of the job's files; it answers from the
    # store, and its predict job fetches the model from there.
    b = life_sheaf("store-nb-b", env=store_env)
    assert b.spool != a.spool
    assert not (b.spool / "jobs" / jid).exists()
    r = b.api("GET", f"/v1/jobs/{jid}")
    assert r.status == 200 and r.body.get("artifacts") == names, r
    r = b.api("GET", f"/v1/jobs/{jid}/artifacts")
    assert r.status == 200, r
    assert r.body["artifacts"] == [{"name": n, "bytes": len(local[n])}
                                   for n in names], r.body
    for n in names:
        r = b.api("GET", f"/v1/jobs/{jid}/artifacts/{n}")
        assert r.status == 200, r
        assert r.raw == local[n], n
    assert r.headers["Content-Type"].startswith("application/json"), r
    r = b.api("GET", f"/v1/jobs/{jid}/artifacts/nope")
    assert r.status == 404 and "model" in r.body["error"]["message"], r

    rows = [(i, nb_text(rnd, SPAM if i % 3 == 0 else HAM),
             "spam" if i % 3 == 0 else "ham") for i in range(200)]
    b.write_data(f"{prefix}/nb-new.csv", "id,text\n" + "".join(
        f"{i},{t}\n" for i, t, _ in rows))
    predict = nb_spec(f"{prefix}/nb-new.csv",
                      [{"op": "predict_naive_bayes", "model": f"job:{jid}",
                        "text": "text", "as": "pred"},
                       {"op": "select", "columns": ["id", "pred"]}],
                      {"id": "int", "text": "string"}, "2KiB")
    _, body = b.run(predict, 120)
    check_exact(body, ["id", "pred"], [[i, lab] for i, _, lab in rows],
                "predict on node B")
    assert (b.spool / "jobs" / jid / "model.store").read_bytes() \
        == local["model"]

    # Node C, with SHEAF_S3_PRESIGN=1: a redirect to the object.
    c = life_sheaf("store-nb-c", env=dict(store_env, SHEAF_S3_PRESIGN="1"))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), NoRedirect)
    try:
        opener.open(f"{c.base}/v1/jobs/{jid}/artifacts/model", timeout=30)
        pytest.fail("no redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302
        loc = e.headers["Location"]
    assert loc.startswith(
        f"{s3_server.endpoint}/{BUCKET}/{prefix}/artifacts/{jid}/model?")
    plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert plain.open(loc, timeout=30).read() == local["model"]
    c.stop()

    # DELETE through node B: the result and the artifacts leave the store.
    r = b.api("DELETE", f"/v1/jobs/{jid}")
    assert r.status == 204, r
    assert s3_server.list(f"{prefix}/artifacts/{jid}/") == []
    assert s3_server.list(f"{prefix}/results/{jid}/") == []


# --------------------------------------------------------------------------
# datasets through the store: uploaded through node A, read by a job that
# node B (a spool of its own) runs.


def test_dataset_uploaded_on_one_node_read_on_another(life_sheaf, s3_server,
                                                      store_env):
    prefix = store_env["SHEAF_STORE"][len(f"s3://{BUCKET}/"):].rstrip("/")
    n = 20000
    body = ("id,city,amount\n" + "".join(
        f"{i},c{(i * 7) % 13:02d},{(i * 31) % 1000}\n"
        for i in range(n))).encode()
    a = life_sheaf("store-ds-a", env=store_env)
    r = http(a.base, "POST", f"/v1/datasets?name={unique_name('ds')}", body,
             {"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status == 201, r
    ds = r.body
    key = f"{prefix}/datasets/{ds['id']}"
    # In the bucket (read by minio) before the upload was answered.
    assert s3_server.get(key) == body
    a.stop()

    b = life_sheaf("store-ds-b", env=store_env)
    assert b.spool != a.spool
    assert not (b.spool / "datasets" / ds["id"]).exists()
    spec = {"name": unique_name("store-ds"),
            "input": {"dataset": ds["id"], "partition_size": "16KiB"},
            "steps": [{"op": "groupby", "by": ["city"],
                       "aggs": [{"as": "n", "fn": "count"},
                                {"as": "s", "fn": "sum",
                                 "column": "amount"}]},
                      {"op": "sort", "by": [{"column": "city"}]}],
            "output": {"format": "csv"}}
    job, out = b.run(spec, 120)
    acc = {}
    for i in range(n):
        c = f"c{(i * 7) % 13:02d}"
        k, s = acc.get(c, (0, 0))
        acc[c] = (k + 1, s + (i * 31) % 1000)
    check_exact(out, ["city", "n", "s"],
                [[c, k, s] for c, (k, s) in sorted(acc.items())],
                "a dataset of node A read on node B")
    tasks = b.api("GET", f"/v1/jobs/{job['id']}/tasks?limit=1000").body
    assert len([t for t in tasks["tasks"] if t["stage"] == 0]) > 1, tasks

    # DELETE (through node B) removes the object.
    r = b.api("DELETE", f"/v1/datasets/{ds['id']}")
    assert r.status == 204, r
    assert s3_server.list(key) == []


def test_retention_removes_the_objects(life_sheaf, s3_server, store_env):
    """A job past its retention leaves the store too (result and
    artifacts prefixes), as its spool files go."""
    prefix = store_env["SHEAF_STORE"][len(f"s3://{BUCKET}/"):].rstrip("/")
    srv = life_sheaf("store-retain", env=dict(store_env, SHEAF_SWEEP_S="1"))
    srv.write_data(f"{prefix}/retain.csv", data_text())
    job = srv.submit(spec(f"{prefix}/retain.csv", retention_s=3))
    assert srv.wait(job["id"], 120)["status"] == "succeeded"
    key = f"{prefix}/results/{job['id']}/result"
    wait_object(s3_server, key)
    deadline = time.monotonic() + 30
    while s3_server.list(f"{prefix}/results/{job['id']}/"):
        if time.monotonic() > deadline:
            pytest.fail(f"{key} still in the store after the retention")
        time.sleep(0.3)
    assert srv.api("GET", f"/v1/jobs/{job['id']}").status == 404
