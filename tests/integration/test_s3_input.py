"""
test_s3_input.py - s3:// inputs (issue 14, point 1): the benchmark
workloads W1-W5 over a file in an S3 bucket (s3rver, uploaded with npm's
minio, an independent client) give byte-for-byte the result of the same
job over the local file; globs over keys; errors of missing objects.

The sheafd here is a harness.LifeServer with the bucket's settings
(SHEAF_S3_ENDPOINT, AWS_*), since the session instance has none.
"""

import os
import subprocess
from pathlib import Path

import pytest

import workloads as W
from harness import REPO, RUN_ID, unique_name
from s3fixture import BUCKET

PY = "/usr/bin/python3"
BENCH = Path(os.environ.get("SHEAF_BENCH_DIR")
             or REPO.parent / "shared" / "bench")
ROWS = 3000


@pytest.fixture(scope="module")
def arxiv_file(tmp_root):
    gen = BENCH / "gen_arxiv.py"
    if not gen.is_file():
        pytest.skip(f"no {gen}: the bench's generator is needed (set "
                    f"SHEAF_BENCH_DIR to the shared/bench directory)")
    path = tmp_root / f"s3-arxiv-{RUN_ID}.csv"
    subprocess.run([PY, str(gen), "--rows", str(ROWS), "--seed", "7",
                    "--out", str(path)], check=True, timeout=300)
    return path


@pytest.fixture
def s3_sheaf(life_sheaf, s3_server):
    return life_sheaf("s3", env=s3_server.env())


def put_local_and_s3(srv, s3_server, rel, key, data):
    srv.write_data(rel, data)
    f = srv.data / rel
    s3_server.put(key, f)
    assert s3_server.get(key) == data


def test_workloads_s3_equal_local(s3_sheaf, s3_server, arxiv_file):
    data = arxiv_file.read_bytes()
    rel = f"s3in-{RUN_ID}/arxiv.csv"
    key = f"in-{RUN_ID}/arxiv.csv"
    put_local_and_s3(s3_sheaf, s3_server, rel, key, data)
    # ~40 partitions: every partition but the last reads past its end.
    part = "64KiB"
    r = s3_sheaf.api("POST", "/v1/jobs/validate",
                     W.spec("w1", f"s3://{BUCKET}/{key}", part))
    assert r.status == 200, r
    local = s3_sheaf.api("POST", "/v1/jobs/validate",
                         W.spec("w1", rel, part))
    assert r.body["partitions"] == local.body["partitions"], (r, local)
    assert r.body["partitions"] > 10
    for w in ["w1", "w2", "w3", "w4", "w5"]:
        _, got_local = s3_sheaf.run(
            W.spec(w, rel, part, name=unique_name(f"{w}-local")), 300)
        _, got_s3 = s3_sheaf.run(
            W.spec(w, f"s3://{BUCKET}/{key}", part,
                   name=unique_name(f"{w}-s3")), 300)
        assert got_local.count(b"\n") > 1, w
        assert got_s3 == got_local, w


def test_glob_over_keys(s3_sheaf, s3_server):
    header = "k,v\n"
    files = {"a.csv": "x,1\ny,2\n", "b.csv": "x,10\n\"z\nq\",5\n",
             "sub/c.csv": "x,100\n", "a.txt": "x,1000\n"}
    for name, body in files.items():
        put_local_and_s3(s3_sheaf, s3_server, f"glob-{RUN_ID}/{name}",
                         f"glob-{RUN_ID}/{name}", (header + body).encode())
    steps = [{"op": "groupby", "by": ["k"],
              "aggs": [{"as": "n", "fn": "count"},
                       {"as": "s", "fn": "sum", "column": "v"}]},
             {"op": "sort", "by": [{"column": "k"}]}]

    def spec(path):
        return {"name": unique_name("glob"),
                "input": {"path": path, "partition_size": 5},
                "steps": steps, "output": {"format": "csv"}}

    _, local = s3_sheaf.run(spec(f"glob-{RUN_ID}/*.csv"))
    _, remote = s3_sheaf.run(spec(f"s3://{BUCKET}/glob-{RUN_ID}/*.csv"))
    assert remote == local
    # '*' stays within one part of the key: sub/c.csv is not matched.
    assert remote.replace(b"\r\n", b"\n") == b'k,n,s\nx,2,11\ny,1,2\n"z\nq",1,5\n'


@pytest.mark.parametrize("path,words", [
    ("s3://{b}/no/such.csv", "no such object"),
    ("s3://{b}/nothing-{r}/*.csv", "no object matches"),
    ("s3://no-such-bucket-{r}/x/*.csv", "no such bucket"),
    ("s3://{b}/", "no object"),
    ("s3://B_ad/k.csv", "bad bucket name"),
])
def test_bad_s3_paths(s3_sheaf, path, words):
    path = path.format(b=BUCKET, r=RUN_ID)
    r = s3_sheaf.api("POST", "/v1/jobs", {"input": {"path": path},
                                         "output": {"format": "csv"}})
    assert r.status == 400, r
    assert r.body["error"]["path"] == "input.path", r.body
    assert words in r.body["error"]["message"], r.body


@pytest.mark.parametrize("fmt", ["jsonl", "lines"])
def test_line_formats_s3_equal_local(s3_sheaf, s3_server, fmt):
    if fmt == "jsonl":
        body = "".join(f'{{"k": "g{i % 7}", "v": {i}}}\n' for i in range(5000))
        steps = [{"op": "groupby", "by": ["k"],
                  "aggs": [{"as": "n", "fn": "count"},
                           {"as": "s", "fn": "sum", "column": "v"}]},
                 {"op": "sort", "by": [{"column": "k"}]}]
    else:
        body = "".join(f"line {i}\n" for i in range(5000)) + "\n\nlast"
        steps = [{"op": "filter", "where": "line != ''"}]
    rel = f"fmt-{RUN_ID}/in.{fmt}"
    put_local_and_s3(s3_sheaf, s3_server, rel, rel, body.encode())

    def spec(path):
        return {"name": unique_name(fmt),
                "input": {"path": path, "format": fmt,
                          "partition_size": "4KiB"},
                "steps": steps, "output": {"format": "csv"}}

    _, local = s3_sheaf.run(spec(rel))
    _, remote = s3_sheaf.run(spec(f"s3://{BUCKET}/{rel}"))
    assert remote == local
    assert local.count(b"\n") == (8 if fmt == "jsonl" else 5002)
