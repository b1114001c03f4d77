"""
test_formats.py - input and output formats of SPEC section 2 through the
real service: jsonl input (types inferred, missing keys null), lines input
(one column "line"), gzip input (one partition per file, as the plan says),
globs (partitions across files, in order), jsonl output, gzip output, and
gzip + jsonl output. Each input is read at tiny partitions and as one
partition; every answer is checked against Python's reading of the same
bytes.
"""

import gzip
import json
import random
import uuid

import pytest

import datagen as dg
from harness import unique_name

TINY = 64
BIG = "64MiB"


def spec_for(path, steps, psize, fmt, columns=None, out=None, **inp):
    i = {"path": path, "format": fmt, "partition_size": psize}
    if columns:
        i["columns"] = columns
    i.update(inp)
    return {"name": unique_name("fmt"), "input": i, "steps": steps,
            "output": out or {"format": "csv"}}


def run_specs(sheaf, specs, timeout=90):
    ids = [sheaf.submit(s)["id"] for s in specs]
    out = []
    for jid, s in zip(ids, specs):
        job = sheaf.wait(jid, timeout)
        assert job["status"] == "succeeded", (
            f"job {jid} ({s['input']}, output {s['output']}) ended "
            f"{job['status']}: error={job.get('error')!r}")
        out.append((job, sheaf.result(jid)))
    return out


def validate(sheaf, spec):
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 200, f"validate: {r!r}"
    return r.body


def schema_types(plan, side="input"):
    return {c["name"]: c["type"] for c in plan[side]["schema"]}


# --------------------------------------------------------------------------
# jsonl input


def jsonl_rows(n, seed):
    """Objects with keys in random order, some missing, some null; and the
    Python values of the columns id, name, score, ok, note, x, big."""
    rnd = random.Random(seed)
    names = ["ann", 'bob "b"', "línea\nnueva", "comma, here", "tab\tx",
             "日本語", "🙂", "back\\slash", "", " sp "]
    lines, rows = [], []
    for i in range(n):
        obj = {"id": i,
               "name": rnd.choice(names),
               "score": rnd.choice([1.5, -2.25, 1e-3, 12345.678,
                                    rnd.uniform(-100, 100), 0.1]),
               "ok": rnd.random() < 0.5,
               "note": None if rnd.random() < 0.5 else f"n{i}",
               # ints and floats mixed: a float column
               "x": rnd.choice([1, 2.5, -3, 0.125]),
               "big": 2 ** 53 + i * 2 + 1}
        row = [obj["id"], obj["name"], obj["score"], obj["ok"],
               obj["note"], float(obj["x"]), obj["big"]]
        # keys missing now and then (but never in the first line, so the
        # sample sees every column early), explicit nulls too
        for j, k in enumerate(["name", "score", "ok", "note", "x"]):
            if i > 0 and rnd.random() < 0.08:
                del obj[k]
                row[1 + j] = None
            elif i > 0 and rnd.random() < 0.04:
                obj[k] = None
                row[1 + j] = None
        items = list(obj.items())
        rnd.shuffle(items)
        sep = rnd.choice([(",", ":"), (", ", ": ")])
        text = json.dumps(dict(items), separators=sep,
                          ensure_ascii=rnd.random() < 0.5)
        lines.append(text)
        rows.append(row)
    data = "".join(ln + ("\r\n" if rnd.random() < 0.2 else "\n")
                   for ln in lines)
    return rows, data.encode("utf-8")


JSONL_COLS = ["id", "name", "score", "ok", "note", "x", "big"]


@pytest.fixture(scope="module")
def jsonl_file(session_server):
    rows, data = jsonl_rows(150, seed=5)
    rel = f"fmt-{uuid.uuid4().hex[:8]}/a.jsonl"
    session_server.write_data(rel, data)
    return {"path": rel, "rows": rows, "bytes": len(data)}


def test_jsonl_types_inferred(sheaf, jsonl_file):
    plan = validate(sheaf, spec_for(jsonl_file["path"], [], TINY, "jsonl"))
    assert schema_types(plan) == {
        "id": "int", "name": "string", "score": "float", "ok": "bool",
        "note": "string", "x": "float", "big": "int"}, plan["input"]
    assert plan["partitions"] >= jsonl_file["bytes"] // TINY // 2, plan


def test_jsonl_input(sheaf, jsonl_file):
    """Values of every type read back exactly, missing keys and nulls are
    null, and the types work in expressions."""
    steps = [{"op": "derive", "as": "s2", "expr": "score * 2"},
             {"op": "derive", "as": "nb", "expr": "big - 1"},
             {"op": "filter", "where": "id % 3 != 1 or ok"},
             {"op": "select", "columns": JSONL_COLS + ["s2", "nb"]}]
    specs = [spec_for(jsonl_file["path"], steps, ps, "jsonl")
             for ps in (TINY, BIG)]
    want = [r + [None if r[2] is None else r[2] * 2, r[6] - 1]
            for r in jsonl_file["rows"] if r[0] % 3 != 1 or r[3] is True]
    for (job, body), ps in zip(run_specs(sheaf, specs), (TINY, BIG)):
        h, rows = dg.parse_csv_result(body)
        dg.check_rows(h, rows, JSONL_COLS + ["s2", "nb"], want,
                      label=f"jsonl, partition_size={ps!r}")
        if ps == TINY:
            assert job["progress"]["partitions_total"] > 20, job["progress"]
        assert job["progress"]["rows_in"] == len(jsonl_file["rows"]), \
            job["progress"]


def test_jsonl_columns_override(sheaf, jsonl_file):
    """input.columns sets a type the sample would not infer."""
    spec = spec_for(jsonl_file["path"], [{"op": "select",
                                          "columns": ["id", "x"]}],
                    BIG, "jsonl", columns={"id": "float"})
    assert schema_types(validate(sheaf, spec))["id"] == "float"
    (job, body), = run_specs(sheaf, [spec])
    h, rows = dg.parse_csv_result(body)
    dg.check_rows(h, rows, ["id", "x"],
                  [[float(r[0]), r[5]] for r in jsonl_file["rows"]])


# --------------------------------------------------------------------------
# lines input


LINES = ["plain line", 'a "quoted" one, with a comma', "tab\there",
         "  leading and trailing  ", "日本語のテキスト", "🙂 emoji",
         "semi;colon", "x", "1,2,3", '""', "back\\slash", "ünïcödé"]


@pytest.fixture(scope="module")
def lines_file(session_server):
    rnd = random.Random(9)
    lines = [f"{i:03d} {rnd.choice(LINES)}" for i in range(200)]
    # LF, CRLF and lone CR (old Mac) line ends, mixed
    data = "".join(ln + rnd.choice(["\n", "\n", "\r\n", "\r"])
                   for ln in lines[:-1]) + lines[-1]  # no final line end
    rel = f"fmt-{uuid.uuid4().hex[:8]}/a.txt"
    session_server.write_data(rel, data)
    return {"path": rel, "lines": lines}


def test_lines_input(sheaf, lines_file):
    """One string column "line", line ends (LF or CRLF) removed, nothing
    else parsed: quotes and commas are data."""
    plan = validate(sheaf, spec_for(lines_file["path"], [], TINY, "lines"))
    assert [(c["name"], c["type"]) for c in plan["input"]["schema"]] == [
        ("line", "string")], plan["input"]
    steps = [{"op": "derive", "as": "n", "expr": "length(line)"},
             {"op": "filter", "where": "not contains(line, 'x')"}]
    specs = [spec_for(lines_file["path"], steps, ps, "lines")
             for ps in (TINY, BIG)]
    want = [[ln, len(ln)] for ln in lines_file["lines"] if "x" not in ln]
    for (job, body), ps in zip(run_specs(sheaf, specs), (TINY, BIG)):
        h, rows = dg.parse_csv_result(body)
        dg.check_rows(h, rows, ["line", "n"], want,
                      label=f"lines, partition_size={ps!r}")
        assert job["progress"]["rows_in"] == len(lines_file["lines"]), \
            job["progress"]


def test_lines_word_count(sheaf, lines_file):
    steps = [{"op": "tokenize", "column": "line", "as": "w"},
             {"op": "groupby", "by": ["w"],
              "aggs": [{"as": "n", "fn": "count"}]},
             {"op": "sort", "by": [{"column": "n", "desc": True},
                                   {"column": "w"}]},
             {"op": "limit", "n": 10}]
    specs = [spec_for(lines_file["path"], steps, ps, "lines")
             for ps in (256, BIG)]
    counts = {}
    for ln in lines_file["lines"]:
        for t in dg.tokens(ln):
            counts[t] = counts.get(t, 0) + 1
    want = sorted(([w, n] for w, n in counts.items()),
                  key=lambda x: (-x[1], x[0]))[:10]
    for (job, body), ps in zip(run_specs(sheaf, specs), (256, BIG)):
        h, rows = dg.parse_csv_result(body)
        dg.check_rows(h, rows, ["w", "n"], want, label=f"{ps!r}")


# --------------------------------------------------------------------------
# globs and gzip input


@pytest.fixture(scope="module")
def multi(session_server):
    """Three csv files, their gzip copies, three jsonl files and three text
    files, written out of name order; -> the directory and expectations."""
    d = f"fmt-{uuid.uuid4().hex[:8]}"
    csv_rows, jsonl_rows_, text_lines = {}, {}, {}
    for name, seed in (("p-b", 2), ("p-c", 3), ("p-a", 1)):
        rnd = random.Random(seed)
        rows = [[seed * 1000 + i, f"{name}-{i}", rnd.uniform(-1, 1)]
                for i in range(60)]
        data = dg.write_csv(["id", "tag", "v"], rows)
        session_server.write_data(f"{d}/{name}.csv", data)
        session_server.write_data(f"{d}/{name}.csv.gz",
                                  gzip.compress(data, mtime=0))
        csv_rows[name] = rows
        objs = [{"id": r[0], "tag": r[1], "v": r[2]} for r in rows]
        jl = "".join(json.dumps(o) + "\n" for o in objs).encode()
        session_server.write_data(f"{d}/{name}.jsonl", jl)
        session_server.write_data(f"{d}/{name}.jsonl.gz",
                                  gzip.compress(jl, mtime=0))
        jsonl_rows_[name] = rows
        lines = [f"{name} line {i}, \"q\"" for i in range(40)]
        tx = ("\n".join(lines) + "\n").encode()
        session_server.write_data(f"{d}/{name}.txt", tx)
        session_server.write_data(f"{d}/{name}.txt.gz",
                                  gzip.compress(tx, mtime=0))
        text_lines[name] = lines
    order = sorted(csv_rows)
    return {"dir": d, "csv": [r for n in order for r in csv_rows[n]],
            "lines": [ln for n in order for ln in text_lines[n]]}


COLS3 = {"id": "int", "tag": "string", "v": "float"}


@pytest.mark.parametrize("fmt,pattern", [("csv", "p-*.csv"),
                                         ("jsonl", "p-*.jsonl"),
                                         ("lines", "p-*.txt")])
def test_glob_partitions_across_files_in_order(sheaf, multi, fmt, pattern):
    """A glob: every file cut into partitions, results in file-name order
    then input order."""
    path = f"{multi['dir']}/{pattern}"
    cols = COLS3 if fmt != "lines" else None
    plan = validate(sheaf, spec_for(path, [], TINY, fmt, cols))
    assert len(plan["input"]["files"]) == 3, plan["input"]
    assert [f["path"].rsplit("/", 1)[-1] for f in plan["input"]["files"]] \
        == [f"p-{c}.{pattern.rsplit('.', 1)[1]}" for c in "abc"], plan
    assert plan["partitions"] > 6, plan
    specs = [spec_for(path, [], ps, fmt, cols) for ps in (TINY, BIG)]
    for (job, body), ps in zip(run_specs(sheaf, specs), (TINY, BIG)):
        h, rows = dg.parse_csv_result(body)
        if fmt == "lines":
            dg.check_rows(h, rows, ["line"], [[ln] for ln in multi["lines"]],
                          label=f"{fmt} {ps!r}")
        else:
            dg.check_rows(h, rows, ["id", "tag", "v"], multi["csv"],
                          label=f"{fmt} {ps!r}")
        if ps == BIG:
            assert job["progress"]["partitions_total"] == 3, job["progress"]


def test_glob_limit_spans_files(sheaf, multi):
    """limit without sort over a glob: the first rows, across files."""
    path = f"{multi['dir']}/p-*.csv"
    steps = [{"op": "filter", "where": "v > 0"}, {"op": "limit", "n": 45}]
    (job, body), = run_specs(sheaf, [spec_for(path, steps, TINY, "csv",
                                              COLS3)])
    want = [r for r in multi["csv"] if r[2] > 0][:45]
    assert want[-1][1][:3] != want[0][1][:3]  # spans more than one file
    h, rows = dg.parse_csv_result(body)
    dg.check_rows(h, rows, ["id", "tag", "v"], want)


@pytest.mark.parametrize("fmt,pattern", [("csv", "p-*.csv.gz"),
                                         ("jsonl", "p-*.jsonl.gz"),
                                         ("lines", "p-*.txt.gz")])
def test_gzip_input_one_partition_per_file(sheaf, multi, fmt, pattern):
    """A .gz file is not splittable by byte range: one partition per file
    whatever partition_size says, and the plan says so."""
    path = f"{multi['dir']}/{pattern}"
    cols = COLS3 if fmt != "lines" else None
    plan = validate(sheaf, spec_for(path, [], TINY, fmt, cols))
    assert plan["partitions"] == 3, (
        f"{pattern} at partition_size {TINY}: {plan['partitions']} "
        f"partitions, expected one per file (3)")
    assert "gzip" in json.dumps(plan["input"]), (
        f"the plan's input does not say the files are gzip: "
        f"{plan['input']}")
    (job, body), = run_specs(sheaf, [spec_for(path, [], TINY, fmt, cols)])
    assert job["progress"]["partitions_total"] == 3, job["progress"]
    tasks = sheaf.api("GET", f"/v1/jobs/{job['id']}/tasks").body["tasks"]
    assert len(tasks) >= 3, tasks
    h, rows = dg.parse_csv_result(body)
    if fmt == "lines":
        dg.check_rows(h, rows, ["line"], [[ln] for ln in multi["lines"]],
                      label=pattern)
    else:
        dg.check_rows(h, rows, ["id", "tag", "v"], multi["csv"],
                      label=pattern)


def test_gzip_input_with_combine_steps(sheaf, multi):
    path = f"{multi['dir']}/p-*.csv.gz"
    steps = [{"op": "derive", "as": "pos", "expr": "v > 0"},
             {"op": "groupby", "by": ["pos"],
              "aggs": [{"as": "n", "fn": "count"},
                       {"as": "s", "fn": "sum", "column": "v"}]},
             {"op": "sort", "by": [{"column": "pos"}]}]
    (job, body), = run_specs(sheaf, [spec_for(path, steps, TINY, "csv",
                                              COLS3)])
    rows = multi["csv"]
    want = [[b, sum(1 for r in rows if (r[2] > 0) == b),
             dg.agg_value("sum", [r[2] for r in rows if (r[2] > 0) == b])]
            for b in (False, True)]
    h, got = dg.parse_csv_result(body)
    dg.check_rows(h, got, ["pos", "n", "s"], want)


# --------------------------------------------------------------------------
# Output formats


@pytest.fixture(scope="module")
def table(session_server):
    header, rows, data = dg.steps_table(150, seed=31)
    rel = f"fmt-{uuid.uuid4().hex[:8]}/t.csv"
    session_server.write_data(rel, data)
    return {"path": rel, "header": header, "rows": rows}


def jsonl_check(body, header, want, label):
    recs = dg.parse_jsonl_result(body)
    for j, (keys, _) in enumerate(recs):
        assert keys == header, (
            f"{label}: line {j + 1} has keys {keys}, expected the columns "
            f"in order {header}")
    dg.check_rows(header, [[obj[k] for k in header] for _, obj in recs],
                  header, want, label=label)


def out_specs(table, steps, outs, psize=1024):
    return [spec_for(table["path"], steps, psize, "csv", dg.STEP_TYPES,
                     out=o) for o in outs]


def test_jsonl_output(sheaf, table):
    """One object a line, keys in column order; ints (also past 2^53) as
    JSON integers, floats as numbers that read back to the same double,
    bools, nulls, strings with quotes, newlines, tabs and non-ASCII."""
    steps = [{"op": "derive", "as": "half", "expr": "i / 2"}]
    (job, body), = run_specs(sheaf, out_specs(table, steps,
                                              [{"format": "jsonl"}]))
    r = sheaf.api("GET", f"/v1/jobs/{job['id']}/result")
    assert r.headers.get("Content-Type", "").startswith(
        "application/x-ndjson"), r.headers
    want = [row + [None if row[3] is None else row[3] / 2]
            for row in table["rows"]]
    jsonl_check(body, table["header"] + ["half"], want, "jsonl output")
    assert job["result"]["rows"] == len(want), job["result"]


def test_gzip_outputs(sheaf, table):
    """gzip output, CSV and JSONL, from many partitions (map only) and from
    a sort (one final task): decompressed, the same bytes as uncompressed."""
    steps_map = [{"op": "filter", "where": "g != 1"}]
    steps_sort = [{"op": "sort", "by": [{"column": "f", "desc": True},
                                        {"column": "id"}]}]
    outs = [{"format": "csv"}, {"format": "csv", "compression": "gzip"},
            {"format": "jsonl"}, {"format": "jsonl", "compression": "gzip"},
            {"format": "csv", "compression": "none"}]
    specs = out_specs(table, steps_map, outs) + out_specs(table, steps_sort,
                                                          outs)
    res = run_specs(sheaf, specs)
    for base in (0, len(outs)):
        (_, plain_csv), (gjob, gz_csv), (_, plain_jl), (jjob, gz_jl), \
            (_, none_csv) = res[base:base + len(outs)]
        what = "map" if base == 0 else "sort"
        for gz, plain, kind in ((gz_csv, plain_csv, "csv"),
                                (gz_jl, plain_jl, "jsonl")):
            assert gz[:2] == b"\x1f\x8b", (
                f"{what}, {kind}+gzip: the result is not gzip: {gz[:40]!r}")
            assert gzip.decompress(gz) == plain, (
                f"{what}, {kind}+gzip: decompressed result differs from "
                f"the uncompressed one")
        assert none_csv == plain_csv
        # and the uncompressed ones are right
        rows = [r for r in table["rows"] if r[2] is not None and r[2] != 1]
        if base:
            rows = dg.sort_oracle(table["header"], table["rows"],
                                  steps_sort[0]["by"])
        h, got = dg.parse_csv_result(plain_csv)
        dg.check_rows(h, got, table["header"], rows, label=f"{what} csv")
        jsonl_check(plain_jl, table["header"], rows, f"{what} jsonl")
        assert gjob["result"]["rows"] == len(rows), gjob["result"]


def test_csv_one_column_null(sheaf):
    """In a one-column CSV output a null cannot be an empty line: CSV
    readers (Python's csv, pandas, DuckDB, sheaf's own) skip empty lines, so
    the row would be lost. sheaf writes it as "" (as Python's csv.writer
    writes [None]); a null and an empty string then read back alike there,
    which is why JSONL output keeps them apart (README, choices)."""
    rel = f"fmt-{uuid.uuid4().hex[:8]}/one.csv"
    sheaf.write_data(rel, 'id,s\n1,a\n2,\n3,""\n')
    cols = {"id": "int", "s": "string"}
    steps = [{"op": "select", "columns": ["s"]}]
    specs = [spec_for(rel, steps, BIG, "csv", cols, out=o)
             for o in ({"format": "jsonl"}, {"format": "csv"})]
    (_, jl), (_, body) = run_specs(sheaf, specs)
    assert [obj["s"] for _, obj in dg.parse_jsonl_result(jl)] == [
        "a", None, ""], jl
    text = body.decode().replace("\r\n", "\n")
    assert text == 's\na\n""\n""\n', (
        f"one-column CSV with a null and an empty string: got {text!r}, "
        f"expected every row kept, null and '' both written as \"\"")
