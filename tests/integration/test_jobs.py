"""
test_jobs.py - jobs end to end: results against the Python oracle, the job
object, tasks, failures on bad data, listing and paging, ?wait, result
download (Content-Type, ETag, Range, 409).
"""

import re
import time
import uuid
from datetime import datetime

import pytest

from harness import (STATUSES, TERMINAL, check_exact, check_output,
                     read_csv_rows, unique_name)
import datagen

N_E2E = 3000
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def spec_for(path, steps, name=None, **input_extra):
    inp = {"path": path, "format": "csv"}
    inp.update(input_extra)
    return {"name": name or unique_name("job"), "input": inp,
            "steps": steps, "output": {"format": "csv"}}


def ts(s):
    assert isinstance(s, str) and TS_RE.match(s), f"bad timestamp {s!r}"
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# --------------------------------------------------------------------------
# End to end


@pytest.fixture(scope="module")
def e2e(session_server):
    header, rows, data = datagen.e2e_table(N_E2E, seed=4180)
    rel = f"e2e-{uuid.uuid4().hex[:8]}/table.csv"
    session_server.write_data(rel, data)
    # The generator and Python's csv module agree on the file.
    parsed = datagen_text_rows(rows)
    assert read_csv_rows(data) == [header] + parsed
    return {"path": rel, "rows": rows, "bytes": len(data),
            "expected": datagen.e2e_expected(rows), "results": {}}


def datagen_text_rows(rows):
    """The rows as csv.reader gives them back (null and '' both '')."""
    out = []
    for i, a, x, s, flag in rows:
        out.append([str(i), "" if a is None else str(a),
                    "" if x is None else repr(x), s or "",
                    "true" if flag else "false"])
    return out


@pytest.mark.parametrize("psize", ["1KiB", "64MiB", 4096, "100000"])
def test_e2e_filter_derive_select(sheaf, e2e, psize):
    spec = spec_for(e2e["path"], datagen.E2E_STEPS,
                    columns=datagen.E2E_COLUMNS, partition_size=psize)
    job, body = sheaf.run(spec, timeout=90)
    expected = e2e["expected"]
    assert 0 < len(expected) < N_E2E  # the filter is a real one
    check_output(body, datagen.E2E_HEADER, expected, f"partition_size={psize}")

    # The job object tells the truth about the run.
    p = job["progress"]
    assert p["partitions_done"] == p["partitions_total"] >= 1, p
    assert p["partitions_running"] == 0 and p["partitions_failed"] == 0, p
    assert p["rows_in"] == N_E2E, p
    assert p["rows_out"] == len(expected), p
    assert job["result"]["rows"] == len(expected), job["result"]
    assert job["result"]["bytes"] == len(body), job["result"]
    if psize == "64MiB":
        assert p["partitions_total"] == 1, p
    if psize == "1KiB":
        # about one partition per KiB of input, never a record split
        assert abs(p["partitions_total"] - e2e["bytes"] / 1024) <= 3, (
            p, e2e["bytes"])

    # Same bytes whatever the partitioning (rows keep input order).
    e2e["results"][psize] = body
    first = next(iter(e2e["results"].values()))
    assert body == first, "result differs with the partition size"


def test_e2e_glob_sorted_files(sheaf):
    d = f"glob-{uuid.uuid4().hex[:8]}"
    parts = {}
    # created out of order; results must follow sorted names
    for name, seed in (("part-b.csv", 1), ("part-c.csv", 2), ("part-a.csv", 3)):
        header, rows, data = datagen.e2e_table(400, seed=seed)
        sheaf.write_data(f"{d}/{name}", data)
        parts[name] = rows
    sheaf.write_data(f"{d}/part-z.txt", b"id,a,x,s,flag\n1,1,1.0,zz,true\n")
    sheaf.write_data(f"{d}/other.csv", b"id,a,x,s,flag\n1,1,1.0,zz,true\n")
    spec = spec_for(f"{d}/part-*.csv", datagen.E2E_STEPS,
                    columns=datagen.E2E_COLUMNS, partition_size="1KiB")
    job, body = sheaf.run(spec, timeout=90)
    expected = []
    for name in sorted(parts):
        expected += datagen.e2e_expected(parts[name])
    check_output(body, datagen.E2E_HEADER, expected, "glob of 3 files")
    assert job["progress"]["rows_in"] == 1200, job["progress"]


def test_exact_text_derive_without_select(sheaf):
    """Derived columns come after the input's, in step order; ints, strings,
    bools and nulls have exactly one spelling."""
    rel = f"exact-{uuid.uuid4().hex[:8]}.csv"
    sheaf.write_data(rel, 'k,n,t\n1,10,plain\n2,,"a,b"\n3,-4,""\n'
                          '4,7,\n5,0,"say ""hi"""\r\n6,3,"two\nlines"')
    steps = [{"op": "derive", "as": "m", "expr": "n * 2"},
             {"op": "derive", "as": "pos", "expr": "n > 0"},
             {"op": "derive", "as": "tt", "expr": "concat(t, '!')"}]
    _, body = sheaf.run(spec_for(rel, steps))
    check_exact(body, ["k", "n", "t", "m", "pos", "tt"], [
        [1, 10, "plain", 20, True, "plain!"],
        [2, None, "a,b", None, False, "a,b!"],
        [3, -4, "", -8, False, "!"],
        [4, 7, None, 14, True, None],
        [5, 0, 'say "hi"', 0, False, 'say "hi"!'],
        [6, 3, "two\nlines", 6, True, "two\nlines!"],
    ])


def test_empty_result_is_header_only(sheaf):
    rel = f"empty-{uuid.uuid4().hex[:8]}.csv"
    sheaf.write_data(rel, "id,v\n1,2\n3,4\n")
    job, body = sheaf.run(spec_for(rel, [{"op": "filter",
                                          "where": "v > 100"}]))
    check_exact(body, ["id", "v"], [])
    assert job["result"]["rows"] == 0


def test_job_object_and_location(sheaf):
    rel = f"obj-{uuid.uuid4().hex[:8]}.csv"
    sheaf.write_data(rel, "id,v\n1,2\n3,4\n")
    name = unique_name("object")
    spec = spec_for(rel, [{"op": "filter", "where": "v > 2"}], name=name)
    r = sheaf.api("POST", "/v1/jobs", spec)
    assert r.status == 201, r
    assert r.headers.get("Content-Type", "").startswith("application/json")
    job = r.body
    jid = job["id"]
    loc = r.headers.get("Location")
    assert loc and loc.endswith(f"/v1/jobs/{jid}"), f"Location: {loc!r}"
    assert job["name"] == name
    assert job["status"] in STATUSES
    ts(job["created_at"])
    assert job["error"] is None
    assert job["result"]["url"] == f"/v1/jobs/{jid}/result"
    assert job["spec"]["name"] == name
    assert job["spec"]["steps"] == spec["steps"]
    assert job["spec"]["input"]["path"] == rel
    for k in ("partitions_total", "partitions_done", "partitions_running",
              "partitions_failed", "rows_in", "bytes_in", "rows_out"):
        assert isinstance(job["progress"][k], int), (k, job["progress"])

    done = sheaf.wait(jid)
    assert done["id"] == jid and done["status"] == "succeeded", done
    created, started, finished = (ts(done["created_at"]),
                                  ts(done["started_at"]),
                                  ts(done["finished_at"]))
    assert created <= started <= finished, done
    assert done["progress"]["bytes_in"] > 0, done["progress"]
    assert done["result"]["rows"] == 1 and done["result"]["bytes"] > 0
    # the location names the job
    assert sheaf.get(jid)["id"] == jid


def test_tasks_one_per_partition(sheaf, e2e):
    spec = spec_for(e2e["path"], datagen.E2E_STEPS,
                    columns=datagen.E2E_COLUMNS, partition_size="8KiB")
    job, _ = sheaf.run(spec, timeout=90)
    r = sheaf.api("GET", f"/v1/jobs/{job['id']}/tasks")
    assert r.status == 200, r
    tasks = r.body["tasks"]
    total = job["progress"]["partitions_total"]
    assert total > 1 and len(tasks) == total, (total, len(tasks))
    for t in tasks:
        assert t["state"] in ("done", "succeeded"), t
        assert t["attempts"] >= 1, t
        assert not t.get("error"), t


def test_bad_value_fails_job_with_useful_error(sheaf):
    """'abc' in a column declared int: the job fails, and says where."""
    rel = f"bad-{uuid.uuid4().hex[:8]}.csv"
    lines = ["id,qty,note"]
    # a multi-line quoted field early on: line numbers count file lines
    lines.append('0,1,"first\nsecond\nthird"')
    n = 150000  # ~2 MB: the bad row lies far past any submit-time sample
    lines += [f"{i},{i % 100},n{i}" for i in range(1, n)]
    bad_row = n - 500
    lines[bad_row + 1] = f"{bad_row},abc,n{bad_row}"  # +1: header
    text = "\n".join(lines) + "\n"
    sheaf.write_data(rel, text)
    bad_line = text[:text.index(f"\n{bad_row},abc,")].count("\n") + 2
    bad_offset = len(text[:text.index(f"\n{bad_row},abc,") + 1].encode())
    spec = spec_for(rel, [{"op": "filter", "where": "qty >= 0"}],
                    columns={"qty": "int"}, partition_size="256KiB")
    spec["max_attempts"] = 1
    job = sheaf.submit(spec)
    done = sheaf.wait(job["id"], timeout=60)
    assert done["status"] == "failed", done
    err = done["error"]
    assert isinstance(err, str) and err, done
    assert "qty" in err, f"error does not name the column: {err!r}"
    assert "abc" in err, f"error does not name the value: {err!r}"
    assert re.search(rf"\bline {bad_line}\b", err), (
        f"error does not say line {bad_line}: {err!r}")
    m = re.search(r"partition (\d+)", err)
    assert m, f"error does not name the partition: {err!r}"
    m = re.search(r"bytes (\d+)-(\d+)", err)
    if m:
        assert int(m.group(1)) <= bad_offset < int(m.group(2)), (
            f"byte range in {err!r} does not hold offset {bad_offset}")
    assert done["progress"]["partitions_failed"] >= 1, done["progress"]
    # no result for a failed job
    r = sheaf.api("GET", f"/v1/jobs/{job['id']}/result")
    assert r.status == 409, r
    tasks = sheaf.api("GET", f"/v1/jobs/{job['id']}/tasks").body["tasks"]
    failed = [t for t in tasks if t["state"] == "failed"]
    assert failed and "abc" in (failed[0].get("error") or ""), failed[:3]


# --------------------------------------------------------------------------
# Listing


def list_jobs(sheaf, query):
    r = sheaf.api("GET", f"/v1/jobs?{query}")
    assert r.status == 200, r
    assert isinstance(r.body.get("jobs"), list) and "next_cursor" in r.body, r
    return r.body


def page_all(sheaf, query, limit, on_first_page=None):
    ids, pages, cursor = [], 0, None
    while True:
        q = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = list_jobs(sheaf, q)
        pages += 1
        assert len(body["jobs"]) <= limit, body
        ids += [j["id"] for j in body["jobs"]]
        if pages == 1 and on_first_page:
            on_first_page()
        cursor = body["next_cursor"]
        if not cursor:
            return ids, pages
        assert pages < 50, "paging does not end"


@pytest.fixture(scope="module")
def listed(session_server):
    rel = f"list-{uuid.uuid4().hex[:8]}.csv"
    session_server.write_data(rel, "id,v\n1,2\n3,4\n")
    name = unique_name("list")
    ids = []
    for _ in range(5):
        ids.append(session_server.submit(spec_for(rel, [], name=name))["id"])
    for jid in ids:
        assert session_server.wait(jid)["status"] == "succeeded"
    return {"name": name, "ids": ids, "path": rel}


def test_list_newest_first_and_name_filter(sheaf, listed):
    body = list_jobs(sheaf, f"name={listed['name']}")
    got = [j["id"] for j in body["jobs"]]
    assert got == listed["ids"][::-1], "not newest first, or name filter"
    assert all(j["name"] == listed["name"] for j in body["jobs"])
    assert body["next_cursor"] in (None, ""), body["next_cursor"]
    # unfiltered: newest first as well
    jobs = list_jobs(sheaf, "limit=20")["jobs"]
    created = [ts(j["created_at"]) for j in jobs]
    assert created == sorted(created, reverse=True), created


def test_paging_visits_each_job_once(sheaf, listed):
    extra = []

    def submit_newer():
        # a job submitted while paging is newer than every cursor: unseen
        j = sheaf.submit(spec_for(listed["path"], [], name=listed["name"]))
        extra.append(j["id"])

    ids, pages = page_all(sheaf, f"name={listed['name']}", 2, submit_newer)
    assert ids == listed["ids"][::-1], (ids, listed["ids"])
    assert pages == 3
    sheaf.wait(extra[0])
    ids, _ = page_all(sheaf, f"name={listed['name']}", 4)
    assert ids == extra + listed["ids"][::-1]
    listed["ids"].append(extra[0])


def test_list_status_filter(sheaf, listed):
    name = listed["name"]
    ok = list_jobs(sheaf, f"name={name}&status=succeeded")["jobs"]
    assert sorted(j["id"] for j in ok) == sorted(listed["ids"])
    assert all(j["status"] == "succeeded" for j in ok)
    assert list_jobs(sheaf, f"name={name}&status=failed")["jobs"] == []
    # one failing job with the same name
    rel = f"listbad-{uuid.uuid4().hex[:8]}.csv"
    sheaf.write_data(rel, "id,v\n" + "".join(f"{i},{i}\n"
                                             for i in range(150000))
                     + "x,y\n")
    spec = spec_for(rel, [], name=name, columns={"id": "int", "v": "int"},
                    partition_size="256KiB")
    spec["max_attempts"] = 1
    bad = sheaf.submit(spec)["id"]
    assert sheaf.wait(bad)["status"] == "failed"
    failed = list_jobs(sheaf, f"name={name}&status=failed")["jobs"]
    assert [j["id"] for j in failed] == [bad]
    listed["ids"].append(bad)


# --------------------------------------------------------------------------
# A slower job: ?wait, 409 before the result exists


@pytest.fixture(scope="module")
def slow_path(session_server):
    rel = f"slow-{uuid.uuid4().hex[:8]}/big.csv"
    path = session_server.data / rel
    path.parent.mkdir(parents=True)
    n = datagen.write_big(path, 12 * 1024 * 1024)
    return rel, n


def slow_spec(slow):
    return spec_for(slow[0], datagen.BIG_STEPS, partition_size="64KiB",
                    name=unique_name("slow"))


def test_wait_semantics(sheaf, slow_path):
    job = sheaf.submit(slow_spec(slow_path))
    jid = job["id"]
    t = time.monotonic()
    j0 = sheaf.get(jid, wait=0)
    assert time.monotonic() - t < 2.0, "wait=0 did not answer at once"
    assert j0["status"] in STATUSES
    t = time.monotonic()
    j1 = sheaf.get(jid, wait=1)
    dt = time.monotonic() - t
    assert dt < 4.0, f"wait=1 took {dt:.1f} s"
    if j1["status"] not in TERMINAL:
        assert dt >= 0.8, f"wait=1 answered a running job after {dt:.2f} s"
    done = sheaf.wait(jid, timeout=90)
    assert done["status"] == "succeeded", done
    # on a terminal job, a long wait answers at once
    t = time.monotonic()
    j2 = sheaf.get(jid, wait=30)
    assert time.monotonic() - t < 2.0, "wait on a terminal job held the reply"
    assert j2["status"] == "succeeded"


def test_result_409_until_succeeded(sheaf, slow_path):
    job = sheaf.submit(slow_spec(slow_path))
    jid = job["id"]
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result")
    if r.status == 200:
        st = sheaf.get(jid)["status"]
        assert st == "succeeded", f"result served while the job is {st}"
        pytest.skip("the job finished before its result could be asked for")
    assert r.status == 409, r
    assert r.body["error"]["code"], r
    done = sheaf.wait(jid, timeout=90)
    assert done["status"] == "succeeded", done
    body = sheaf.result(jid)
    check_exact(body, ["id", "g", "w"], datagen.big_expected(slow_path[1]),
                "slow job")


# --------------------------------------------------------------------------
# Result download


@pytest.fixture(scope="module")
def finished(session_server):
    rel = f"dl-{uuid.uuid4().hex[:8]}.csv"
    session_server.write_data(rel, "id,s\n" + "".join(
        f"{i},row {i} ünïcode\n" for i in range(300)))
    job, body = session_server.run(spec_for(rel, [], partition_size="1KiB"))
    return job["id"], body


def test_result_headers_and_range(sheaf, finished):
    jid, body = finished
    assert body.startswith(b"id,s")
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result")
    assert r.status == 200
    assert r.headers.get("Content-Type", "").startswith("text/csv"), r.headers
    etag = r.headers.get("ETag")
    assert etag, "no ETag"
    assert r.raw == body
    assert sheaf.api("GET", f"/v1/jobs/{jid}/result").headers["ETag"] == etag
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                  headers={"Range": "bytes=0-9"})
    assert r.status == 206, r
    assert r.raw == body[:10]
    assert r.headers.get("Content-Range") == f"bytes 0-9/{len(body)}", \
        r.headers


def test_result_range_forms(sheaf, finished):
    jid, body = finished
    n = len(body)
    for rng, want in (("bytes=10-", body[10:]), ("bytes=-5", body[-5:]),
                      (f"bytes=100-{n + 1000}", body[100:]),
                      (f"bytes={n - 1}-{n - 1}", body[-1:])):
        r = sheaf.api("GET", f"/v1/jobs/{jid}/result", headers={"Range": rng})
        assert r.status == 206 and r.raw == want, (rng, r)
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                  headers={"Range": f"bytes={n}-"})
    assert r.status == 416, r


def test_result_if_none_match(sheaf, finished):
    jid, _ = finished
    etag = sheaf.api("GET", f"/v1/jobs/{jid}/result").headers["ETag"]
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                  headers={"If-None-Match": etag})
    assert r.status == 304, r


# --------------------------------------------------------------------------
# Health


def test_healthz_readyz(sheaf):
    assert sheaf.api("GET", "/healthz").status == 200
    assert sheaf.api("GET", "/readyz").status == 200


def test_workers_are_children(sheaf):
    kids = sheaf.children()
    assert len(kids) >= 2, f"sheafd {sheaf.pid} has children {kids}"
