"""
test_artifacts.py - multi-stage jobs through the real service: a filter,
groupby and sort across stages against a Python oracle, the progress and
/tasks of every stage, the spool directory once a job has ended (only the
result parts and the artifacts stay; nothing at all of a failed job), and
the artifacts of train_naive_bayes (GET /v1/jobs/{id}/artifacts[/{name}])
fed to predict_naive_bayes in a second job.
"""

import json
import random
import re
import time
import uuid

import pytest

from harness import Approx, check_output, read_csv_rows, unique_name

# A result part of the last stage: sS-pNNNNN-lL.csv[.gz] or .jsonl[.gz].
PART_RE = re.compile(r"^s(\d+)-p(\d{5})-l(\d+)\.(csv|jsonl)(\.gz)?$")
CATS = [f"cat{i:02d}" for i in range(37)]


def spec_for(path, steps, name=None, **input_extra):
    inp = {"path": path, "format": "csv"}
    inp.update(input_extra)
    return {"name": name or unique_name("stages"), "input": inp,
            "steps": steps, "output": {"format": "csv"}}


def job_dir(sheaf, jid):
    return sheaf.spool / "jobs" / jid


def listing(sheaf, jid):
    """{relative path: is a directory} of everything in the job's spool
    directory ({} when it is gone)."""
    d = job_dir(sheaf, jid)
    if not d.exists():
        return {}
    return {str(p.relative_to(d)): p.is_dir() for p in d.rglob("*")}


def wait_listing(sheaf, jid, ok, timeout=20):
    """Poll the job's spool directory until ok(listing) holds; -> the
    listing. Fails with what is there after 'timeout' s."""
    deadline = time.monotonic() + timeout
    while True:
        got = listing(sheaf, jid)
        if ok(got):
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"spool directory of job {jid} after {timeout} s: "
                        f"{sorted(got)}", pytrace=False)
        time.sleep(0.2)


def tasks_of(sheaf, jid):
    r = sheaf.api("GET", f"/v1/jobs/{jid}/tasks")
    assert r.status == 200, r
    return r.body["tasks"]


# --------------------------------------------------------------------------
# filter -> groupby -> sort


@pytest.fixture(scope="module")
def table(session_server):
    """~6000 rows (id, cat, val, note): val null now and then."""
    rnd = random.Random(7)
    rows = []
    for i in range(6000):
        val = None if rnd.random() < 0.05 else rnd.randint(-40, 200)
        rows.append((i, rnd.choice(CATS), val,
                     "".join(rnd.choice("abcdefgh ") for _ in range(12))))
    text = "id,cat,val,note\n" + "".join(
        f"{i},{c},{'' if v is None else v},{n}\n" for i, c, v, n in rows)
    rel = f"stages-{uuid.uuid4().hex[:8]}/table.csv"
    session_server.write_data(rel, text)
    return {"path": rel, "rows": rows, "bytes": len(text.encode())}


STEPS = [
    {"op": "filter", "where": "val >= 10"},
    {"op": "groupby", "by": ["cat"],
     "aggs": [{"as": "n", "fn": "count"},
              {"as": "total", "fn": "sum", "column": "val"},
              {"as": "hi", "fn": "max", "column": "val"},
              {"as": "first_id", "fn": "min", "column": "id"},
              {"as": "mean_val", "fn": "mean", "column": "val"}]},
    {"op": "sort", "by": [{"column": "total", "desc": True},
                          {"column": "cat"}]},
]
HEADER = ["cat", "n", "total", "hi", "first_id", "mean_val"]
COLUMNS = {"id": "int", "cat": "string", "val": "int", "note": "string"}


def expected_groups(rows):
    groups = {}
    for i, c, v, _ in rows:
        if v is None or v < 10:
            continue
        groups.setdefault(c, []).append((i, v))
    out = []
    for c, g in groups.items():
        vals = [v for _, v in g]
        out.append([c, len(g), sum(vals), max(vals), min(i for i, _ in g),
                    Approx(sum(vals) / len(vals), 1e-9)])
    out.sort(key=lambda r: (-r[2], r[0]))
    return out


def test_filter_groupby_sort_across_stages(sheaf, table):
    spec = spec_for(table["path"], STEPS, columns=COLUMNS,
                    partition_size="8KiB")
    job, body = sheaf.run(spec, timeout=120)
    jid = job["id"]
    want = expected_groups(table["rows"])
    check_output(body, HEADER, want, "filter -> groupby -> sort")

    # Every stage's tasks are listed, each with its stage.
    tasks = tasks_of(sheaf, jid)
    stages = sorted({t["stage"] for t in tasks})
    assert stages == list(range(len(stages))) and len(stages) >= 2, (
        f"stages of the tasks: {stages}")
    stage0 = [t for t in tasks if t["stage"] == 0]
    assert len(stage0) >= 4, f"{len(stage0)} partitions of 8 KiB"
    for t in tasks:
        assert t["state"] == "done" and t["attempts"] >= 1, t
        assert "spill_bytes" in t and "peak_bytes" in t, t
    # The task indexes of each stage are 0..n-1.
    for s in stages:
        idx = sorted(t["partition"] for t in tasks if t["stage"] == s)
        assert idx == list(range(len(idx))), (s, idx)
    last = stages[-1]

    # Progress: partitions are the tasks of all stages; the input counters
    # are stage 0's, rows_out the result's.
    p = job["progress"]
    assert p["partitions_total"] == len(tasks) == p["partitions_done"], (
        p, len(tasks))
    assert p["partitions_running"] == 0 and p["partitions_failed"] == 0, p
    assert p["rows_in"] == len(table["rows"]), p
    assert p["bytes_in"] == sum(t["bytes_in"] for t in stage0) > 0, p
    assert p["rows_out"] == len(want), p
    assert p["rows_skipped"] == 0, p
    assert job["result"]["rows"] == len(want), job["result"]
    assert job["result"]["bytes"] == len(body), job["result"]

    # Once the job has succeeded its directory holds the result parts of
    # the last stage and the artifacts directory, nothing else.
    n_last = sum(1 for t in tasks if t["stage"] == last)

    def only_result(files):
        parts = [f for f in files if PART_RE.match(f)]
        others = [f for f in files if not PART_RE.match(f)
                  and f != "artifacts"]
        return not others and len(parts) == n_last
    files = wait_listing(sheaf, jid, only_result)
    for f in files:
        m = PART_RE.match(f)
        if m:
            assert int(m.group(1)) == last, f"a part of stage {m.group(1)}"
    assert not any(f.startswith(("s0-", "tmp-")) for f in files), files

    # The result is still served from those parts, whole and in ranges.
    assert sheaf.result(jid) == body
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                  headers={"Range": "bytes=5-"})
    assert r.status == 206 and r.raw == body[5:], r

    # No artifacts: an empty list, and a 404 that says so.
    r = sheaf.api("GET", f"/v1/jobs/{jid}/artifacts")
    assert r.status == 200 and r.body == {"artifacts": []}, r
    r = sheaf.api("GET", f"/v1/jobs/{jid}/artifacts/report")
    assert r.status == 404 and r.body["error"]["code"] == "not_found", r
    assert "no artifact 'report'" in r.body["error"]["message"], r
    assert "artifacts" not in sheaf.get(jid), "artifacts of a plain job"


def test_sort_limit_jsonl_matches_python(sheaf, table):
    """groupby -> sort -> limit (a top-n) with JSON lines output."""
    spec = spec_for(table["path"], [
        {"op": "groupby", "by": ["cat"],
         "aggs": [{"as": "n", "fn": "count"}]},
        {"op": "sort", "by": [{"column": "n", "desc": True},
                              {"column": "cat"}]},
        {"op": "limit", "n": 5},
    ], columns=COLUMNS, partition_size="16KiB")
    spec["output"] = {"format": "jsonl"}
    job, body = sheaf.run(spec, timeout=120)
    counts = {}
    for _, c, _, _ in table["rows"]:
        counts[c] = counts.get(c, 0) + 1
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    got = [json.loads(line) for line in body.decode().splitlines()]
    assert got == [{"cat": c, "n": n} for c, n in want], got
    assert job["progress"]["rows_out"] == 5, job["progress"]
    assert job["progress"]["rows_in"] == len(table["rows"]), job["progress"]


def test_rows_skipped_is_stage_0s(sheaf):
    """on_error skip: the skipped records of stage 0 are the job's."""
    rel = f"skip-{uuid.uuid4().hex[:8]}.csv"
    lines = ["k,v"] + [f"k{i % 3},{i}" for i in range(600)]
    lines[101] = "k1,oops"
    lines[402] = "k2,nope"
    sheaf.write_data(rel, "\n".join(lines) + "\n")
    spec = spec_for(rel, [
        {"op": "groupby", "by": ["k"],
         "aggs": [{"as": "s", "fn": "sum", "column": "v"}]},
        {"op": "sort", "by": [{"column": "k"}]},
    ], columns={"k": "string", "v": "int"}, partition_size="1KiB",
        on_error="skip")
    job, body = sheaf.run(spec, timeout=60)
    sums = {}
    for i in range(600):
        if i in (100, 401):
            continue
        sums[f"k{i % 3}"] = sums.get(f"k{i % 3}", 0) + i
    check_output(body, ["k", "s"], [[k, sums[k]] for k in sorted(sums)])
    p = job["progress"]
    assert p["rows_skipped"] == 2, p
    assert p["rows_in"] in (598, 600), p
    assert p["rows_out"] == 3, p


# --------------------------------------------------------------------------
# Failures leave nothing behind


def test_failed_multistage_job_leaves_no_files(sheaf):
    """A bad value near the end fails stage 0 after other partitions have
    committed their partial aggregates: once the job has failed, its
    directory holds nothing but (an empty) artifacts directory."""
    rel = f"fail-{uuid.uuid4().hex[:8]}.csv"
    n = 20000
    lines = ["id,cat,val"] + [f"{i},{CATS[i % len(CATS)]},{i % 50}"
                              for i in range(n)]
    lines[n - 100] = f"{n - 101},{CATS[0]},abc"
    sheaf.write_data(rel, "\n".join(lines) + "\n")
    spec = spec_for(rel, STEPS[:2] + [{"op": "sort", "by": [
        {"column": "cat"}]}], columns={"id": "int", "cat": "string",
                                       "val": "int"},
        partition_size="16KiB")
    spec["max_attempts"] = 1
    job = sheaf.submit(spec)
    jid = job["id"]
    done = sheaf.wait(jid, timeout=90)
    assert done["status"] == "failed", done
    assert "abc" in (done["error"] or ""), done["error"]
    tasks = tasks_of(sheaf, jid)
    assert any(t["state"] == "done" for t in tasks), (
        "no partition committed before the failure: the test proves "
        "nothing")
    assert all(t["stage"] == 0 for t in tasks), tasks
    wait_listing(sheaf, jid, lambda f: set(f) <= {"artifacts"})

    # A failed job has neither a result nor artifacts.
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result")
    assert r.status == 409, r
    for path in (f"/v1/jobs/{jid}/artifacts",
                 f"/v1/jobs/{jid}/artifacts/model"):
        r = sheaf.api("GET", path)
        assert r.status == 409, r
        assert r.body["error"]["code"] == "wrong_state", r
        assert "failed" in r.body["error"]["message"], r


def test_failure_in_a_later_stage_leaves_no_files(sheaf):
    """Sums that fit in each partition but overflow once merged: stage 0
    commits, stage 1 fails the job; nothing of either stays."""
    rel = f"ovf-{uuid.uuid4().hex[:8]}.csv"
    big = 4 * 10**18
    lines = ["k,v,pad"]
    for i in range(300):
        v = big if i % 100 == 0 else 1
        lines.append(f"a,{v},{'x' * 60}")
    sheaf.write_data(rel, "\n".join(lines) + "\n")
    spec = spec_for(rel, [
        {"op": "groupby", "by": ["k"],
         "aggs": [{"as": "s", "fn": "sum", "column": "v"}]},
        {"op": "sort", "by": [{"column": "k"}]},
    ], columns={"k": "string", "v": "int", "pad": "string"},
        partition_size="2KiB")
    spec["max_attempts"] = 1
    job = sheaf.submit(spec)
    jid = job["id"]
    done = sheaf.wait(jid, timeout=60)
    assert done["status"] == "failed", done
    assert re.search(r"overflow", done["error"] or "", re.I), done["error"]
    tasks = tasks_of(sheaf, jid)
    assert [t for t in tasks if t["stage"] == 0 and t["state"] == "done"]
    assert any(t["stage"] == 1 and t["state"] == "failed" for t in tasks), (
        tasks)
    wait_listing(sheaf, jid, lambda f: set(f) <= {"artifacts"})


def test_cancelled_multistage_job_leaves_no_files(sheaf):
    """Cancel while stage 0 runs: the job's directory is emptied."""
    rel = f"cancel-{uuid.uuid4().hex[:8]}.csv"
    n = 400000
    text = "id,cat,val\n" + "".join(f"{i},{CATS[i % len(CATS)]},{i % 97}\n"
                                    for i in range(n))
    sheaf.write_data(rel, text)
    spec = spec_for(rel, STEPS[:2] + [{"op": "sort", "by": [
        {"column": "cat"}]}], columns={"id": "int", "cat": "string",
                                       "val": "int"},
        partition_size="64KiB")
    job = sheaf.submit(spec)
    jid = job["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = sheaf.get(jid)["progress"]
        if p["partitions_done"] >= 2 or sheaf.get(jid)["status"] != "queued":
            break
        time.sleep(0.05)
    r = sheaf.api("POST", f"/v1/jobs/{jid}/cancel")
    if r.status == 409:
        pytest.skip("the job ended before it could be cancelled")
    assert r.status == 202, r
    done = sheaf.wait(jid, timeout=30)
    assert done["status"] == "cancelled", done
    wait_listing(sheaf, jid, lambda f: set(f) <= {"artifacts"})


def test_artifact_routes_404(sheaf):
    jid = str(uuid.uuid4())
    for path in (f"/v1/jobs/{jid}/artifacts",
                 f"/v1/jobs/{jid}/artifacts/report"):
        r = sheaf.api("GET", path)
        assert r.status == 404, r
        assert r.body["error"]["code"] == "not_found", r


# --------------------------------------------------------------------------
# naive Bayes: train (artifacts), then predict with the model


SPAM = ["buy", "cheap", "pills", "winner", "prize", "offer", "free", "cash"]
HAM = ["meeting", "tomorrow", "lunch", "report", "project", "agenda",
       "notes", "review"]


def nb_text(rnd, words):
    return " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 9)))


@pytest.fixture(scope="module")
def trained(session_server):
    """A train_naive_bayes job over separable texts: -> (job, result)."""
    sheaf = session_server
    sheaf.ensure_running()
    rnd = random.Random(11)
    lines = ["id,text,label"]
    for i in range(800):
        label = "spam" if rnd.random() < 0.4 else "ham"
        text = nb_text(rnd, SPAM if label == "spam" else HAM)
        if i % 7 == 0:
            text = text.upper()  # tokens are lowercased
        lines.append(f"{i},{text},{label}")
    rel = f"nb-{uuid.uuid4().hex[:8]}/train.csv"
    sheaf.write_data(rel, "\n".join(lines) + "\n")
    spec = spec_for(rel, [{"op": "train_naive_bayes", "text": "text",
                           "label": "label", "features": 1024,
                           "holdout": "id % 5 == 0"}],
                    columns={"id": "int", "text": "string",
                             "label": "string"},
                    partition_size="4KiB")
    job = sheaf.submit(spec)
    done = sheaf.wait(job["id"], timeout=120)
    if done["status"] != "succeeded":
        pytest.fail(f"train job ended {done['status']}: {done['error']}",
                    pytrace=False)
    return done, sheaf.result(job["id"])


def test_train_report_and_model_artifacts(sheaf, trained):
    job, body = trained
    jid = job["id"]
    n_test = sum(1 for i in range(800) if i % 5 == 0)
    rows = read_csv_rows(body)
    assert rows[0] == ["n_train", "n_test", "accuracy"], rows
    assert len(rows) == 2, rows
    assert int(rows[1][0]) == 800 - n_test and int(rows[1][1]) == n_test
    assert float(rows[1][2]) == 1.0, rows

    assert job.get("artifacts") == ["model", "report"], job.get("artifacts")
    r = sheaf.api("GET", f"/v1/jobs/{jid}/artifacts")
    assert r.status == 200, r
    arts = {a["name"]: a["bytes"] for a in r.body["artifacts"]}
    assert set(arts) == {"model", "report"} and all(
        b > 0 for b in arts.values()), r.body

    r = sheaf.api("GET", f"/v1/jobs/{jid}/artifacts/report")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/json"), r
    report = r.body
    assert isinstance(report, dict), r
    assert report["n_train"] == 800 - n_test, report
    assert report["n_test"] == n_test, report
    assert report["accuracy"] == 1.0, report
    assert len(r.raw) == arts["report"]

    r = sheaf.api("GET", f"/v1/jobs/{jid}/artifacts/model")
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "application/octet-stream", r
    assert len(r.raw) == arts["model"], (len(r.raw), arts)

    for name in ("nope", "Report", "report.tmp", ".."):
        r = sheaf.api("GET", f"/v1/jobs/{jid}/artifacts/{name}")
        assert r.status == 404, (name, r)
        msg = r.body["error"]["message"]
        assert "has no artifact" in msg and "model" in msg \
            and "report" in msg, (name, msg)

    # Cleaned up: the result part and the artifacts, nothing else.
    def tidy(files):
        return set(files) - {"artifacts", "artifacts/model",
                             "artifacts/report"} == {
            f for f in files if PART_RE.match(f)} and len(
            [f for f in files if PART_RE.match(f)]) == 1
    files = wait_listing(sheaf, jid, tidy)
    assert {"artifacts/model", "artifacts/report"} <= set(files), files


def test_predict_with_the_trained_model(sheaf, trained):
    job, _ = trained
    rnd = random.Random(12)
    rows = []
    for i in range(300):
        label = "spam" if i % 3 == 0 else "ham"
        rows.append((i, nb_text(rnd, SPAM if label == "spam" else HAM),
                     label))
    rel = f"nb-{uuid.uuid4().hex[:8]}/new.csv"
    sheaf.write_data(rel, "id,text\n" + "".join(
        f"{i},{t}\n" for i, t, _ in rows))
    spec = spec_for(rel, [{"op": "predict_naive_bayes",
                           "model": f"job:{job['id']}", "text": "text",
                           "as": "pred"},
                          {"op": "select", "columns": ["id", "pred"]}],
                    columns={"id": "int", "text": "string"},
                    partition_size="2KiB")
    done, body = sheaf.run(spec, timeout=120)
    check_output(body, ["id", "pred"], [[i, lab] for i, _, lab in rows])
    assert done["progress"]["rows_out"] == len(rows), done["progress"]


def test_predict_with_a_job_without_model_is_400(sheaf, table):
    spec = spec_for(table["path"], [{"op": "filter", "where": "val > 0"}],
                    columns=COLUMNS)
    job, _ = sheaf.run(spec)
    spec = spec_for(table["path"], [{"op": "predict_naive_bayes",
                                     "model": f"job:{job['id']}",
                                     "text": "note", "as": "pred"}],
                    columns=COLUMNS)
    r = sheaf.api("POST", "/v1/jobs", spec)
    assert r.status == 400, r
    assert r.body["error"]["path"].startswith("steps[0]"), r
