"""Quantiles and min_by/max_by through a real sheafd (issue 11, point 4).

approx_quantile (a KLL sketch) is checked by the rank of its answers:
within 2 % of n of q n, as is DuckDB's approx_quantile on the same data.

groupby and aggregate with median, quantile (q), min_by and max_by over
generated data at small partition sizes (many partial states merged),
checked against Python (linear interpolation, numpy's default and DuckDB's
quantile_cont, in DuckDB's order of operations, and statistics.median)
and, when it is installed, against DuckDB's quantile_cont, arg_min and
arg_max on the same CSV: equal to the bit. The 'by'
values are distinct, so no tie decides min_by/max_by. Bad specs ('q'
missing or out of [0, 1], 'by' on median, median of a string) are 400s
naming the field.

Past the budget: a sheafd with SHEAF_MEMORY_MB=16 runs a groupby where
one group holds 3,000,000 values (24 MB of exact quantile state): the
final half sorts them out of core, and every group's median and quantiles
equal Python's and DuckDB's to the bit.
"""
import json
import math
import random
import statistics
import uuid

import pytest

from harness import duckdb_missing, duckdb_query_csv, unique_name

GROUPS = ["a", "b", "c", "d", "e"]


def make_rows(n=3000, seed=7):
    rnd = random.Random(seed)
    ids = list(range(n))
    rnd.shuffle(ids)  # distinct 'i' values: no ties in min_by/max_by
    rows = []
    for k in range(n):
        g = GROUPS[rnd.randrange(len(GROUPS))]
        x = None if rnd.random() < 0.05 else round(rnd.gauss(50, 20), 6)
        rows.append({"g": g, "x": x, "i": ids[k] - n // 2,
                     "s": f"s{k:05d}"})
    return rows


ROWS = make_rows()


def to_csv(rows):
    out = ["g,x,i,s"]
    for r in rows:
        out.append(f"{r['g']},{'' if r['x'] is None else r['x']},"
                   f"{r['i']},{r['s']}")
    return "\n".join(out) + "\n"


def cont(vals, q):
    """quantile_cont: linear interpolation between closest ranks, in
    DuckDB's order of operations for doubles (lo (1 - d) + hi d), so that
    the floats are equal to the bit."""
    xs = sorted(vals)
    if not xs:
        return None
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    d = h - lo
    if lo >= len(xs) - 1 or d == 0:
        return float(xs[min(lo, len(xs) - 1)])
    return xs[lo] * (1.0 - d) + xs[lo + 1] * d


def expected_by_group():
    out = {}
    for g in GROUPS:
        rs = [r for r in ROWS if r["g"] == g]
        xs = [r["x"] for r in rs if r["x"] is not None]
        iv = [r["i"] for r in rs]
        out[g] = {"g": g, "n": len(rs), "med": cont(xs, 0.5),
                  "p90": cont(xs, 0.9), "i10": cont(iv, 0.1),
                  "first": min(rs, key=lambda r: r["i"])["s"],
                  "last": max(rs, key=lambda r: r["i"])["s"],
                  "x_at_min_i": min((r for r in rs if r["x"] is not None),
                                    key=lambda r: r["i"])["x"]}
        assert out[g]["med"] == pytest.approx(statistics.median(xs),
                                              rel=1e-12)  # cont() itself
    return out


@pytest.fixture(scope="module")
def data(session_server, tmp_path_factory):
    rel = f"quant-{uuid.uuid4().hex[:8]}/q.csv"
    text = to_csv(ROWS)
    session_server.write_data(rel, text)
    duck = tmp_path_factory.mktemp("quant") / "q.csv"
    duck.write_text(text, encoding="utf-8")
    return {"rel": rel, "duck": duck}


def spec_for(rel, steps, size="4KiB"):
    return {"name": unique_name("quant"),
            "input": {"path": rel, "format": "csv",
                      "columns": {"g": "string", "x": "float", "i": "int",
                                  "s": "string"},
                      "partition_size": size},
            "steps": steps, "output": {"format": "jsonl"}}


GROUP_AGGS = [{"as": "n", "fn": "count"},
              {"as": "med", "fn": "median", "column": "x"},
              {"as": "p90", "fn": "quantile", "column": "x", "q": 0.9},
              {"as": "i10", "fn": "quantile", "column": "i", "q": 0.1},
              {"as": "first", "fn": "min_by", "column": "s", "by": "i"},
              {"as": "last", "fn": "max_by", "column": "s", "by": "i"},
              {"as": "x_at_min_i", "fn": "min_by", "column": "x",
               "by": "i"}]


def run(sheaf, spec):
    done, body = sheaf.run(spec, timeout=120)
    return done, [json.loads(x) for x in body.decode().splitlines() if x]


def check_rows(got, want):
    """Every answer equal, the floats to the bit."""
    assert [g["g"] for g in got] == [w["g"] for w in want]
    for g, w in zip(got, want):
        for k in ("med", "p90", "i10", "x_at_min_i", "n", "first", "last"):
            assert g[k] == w[k], (g["g"], k, g[k], w[k])


@pytest.mark.parametrize("size", ["2KiB", "64MiB"])
def test_groupby_quantiles_and_by(sheaf, data, size):
    steps = [{"op": "groupby", "by": ["g"], "aggs": GROUP_AGGS},
             {"op": "sort", "by": [{"column": "g"}]}]
    done, got = run(sheaf, spec_for(data["rel"], steps, size))
    if size == "2KiB":
        assert done["progress"]["partitions_total"] > 20, done["progress"]
    exp = expected_by_group()
    check_rows(got, [exp[g] for g in GROUPS])


def test_aggregate_extremes(sheaf, data):
    steps = [{"op": "aggregate",
              "aggs": [{"as": "q0", "fn": "quantile", "column": "i", "q": 0},
                       {"as": "q1", "fn": "quantile", "column": "i", "q": 1},
                       {"as": "lo", "fn": "min", "column": "i"},
                       {"as": "hi", "fn": "max", "column": "i"},
                       {"as": "med", "fn": "median", "column": "i"}]}]
    _, got = run(sheaf, spec_for(data["rel"], steps, "3KiB"))
    iv = [r["i"] for r in ROWS]
    assert len(got) == 1
    assert got[0]["q0"] == min(iv) == got[0]["lo"]
    assert got[0]["q1"] == max(iv) == got[0]["hi"]
    assert got[0]["med"] == pytest.approx(statistics.median(iv))


DUCK_COLUMNS = {"g": "VARCHAR", "x": "DOUBLE", "i": "BIGINT",
                "s": "VARCHAR"}


def duck_query(csv_path, sql):
    return duckdb_query_csv(csv_path, DUCK_COLUMNS, sql)


def rank_ok(vals, v, q, eps=0.02):
    n = len(vals)
    lo = sum(1 for x in vals if x < v)
    hi = sum(1 for x in vals if x <= v)
    return hi >= 1 and lo <= q * n + eps * n and hi >= q * n - eps * n


@pytest.mark.parametrize("size", ["2KiB", "64MiB"])
def test_approx_quantile_rank_error(sheaf, data, size):
    """approx_quantile: the rank of each answer within 2 % of n of q n
    (DuckDB's approx_quantile, a t-digest, too when installed); an int
    column gives one of its values."""
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    aggs = [{"as": f"x{k}", "fn": "approx_quantile", "column": "x", "q": q}
            for k, q in enumerate(qs)]
    aggs += [{"as": "i50", "fn": "approx_quantile", "column": "i",
              "q": 0.5}]
    steps = [{"op": "groupby", "by": ["g"], "aggs": aggs},
             {"op": "sort", "by": [{"column": "g"}]}]
    _, got = run(sheaf, spec_for(data["rel"], steps, size))
    assert [g["g"] for g in got] == GROUPS
    for g in got:
        rs = [r for r in ROWS if r["g"] == g["g"]]
        xs = [r["x"] for r in rs if r["x"] is not None]
        iv = [r["i"] for r in rs]
        for k, q in enumerate(qs):
            assert rank_ok(xs, g[f"x{k}"], q), (g["g"], q, g[f"x{k}"])
        assert g["i50"] in iv and rank_ok(iv, g["i50"], 0.5), g
    why = duckdb_missing()
    if why or size != "2KiB":
        return
    sql = ("SELECT g, " + ", ".join(
        f"approx_quantile(x, {q}) AS x{k}" for k, q in enumerate(qs))
        + " FROM src GROUP BY g ORDER BY g")
    cols, rows = duck_query(data["duck"], sql)
    for row in rows:
        d = dict(zip(cols, row))
        xs = [r["x"] for r in ROWS if r["g"] == d["g"] and r["x"] is not None]
        for k, q in enumerate(qs):
            assert rank_ok(xs, float(d[f"x{k}"]), q), ("duckdb", d, q)


def test_against_duckdb(sheaf, data):
    why = duckdb_missing()
    if why:
        pytest.skip(f"DuckDB comparison skipped: {why}")
    steps = [{"op": "groupby", "by": ["g"], "aggs": GROUP_AGGS},
             {"op": "sort", "by": [{"column": "g"}]}]
    _, got = run(sheaf, spec_for(data["rel"], steps, "2KiB"))
    sql = ("SELECT g, count(*) AS n, quantile_cont(x, 0.5) AS med, "
           "quantile_cont(x, 0.9) AS p90, quantile_cont(i, 0.1) AS i10, "
           "arg_min(s, i) AS first, arg_max(s, i) AS last, "
           "arg_min(x, i) FILTER (WHERE x IS NOT NULL) AS x_at_min_i "
           "FROM src GROUP BY g ORDER BY g")
    cols, rows = duck_query(data["duck"], sql)
    duck = []
    for row in rows:
        d = dict(zip(cols, row))
        for k in ("med", "p90", "i10", "x_at_min_i"):
            d[k] = float(d[k])
        d["n"] = int(d["n"])
        duck.append(d)
    check_rows(got, duck)


@pytest.mark.parametrize("agg,path,word", [
    ({"as": "y", "fn": "quantile", "column": "x"}, "q", "'q'"),
    ({"as": "y", "fn": "quantile", "column": "x", "q": 1.5}, "q", "'q'"),
    ({"as": "y", "fn": "quantile", "column": "x", "q": "0.5"}, "q", "'q'"),
    ({"as": "y", "fn": "median", "column": "x", "by": "i"}, "by", "min_by"),
    ({"as": "y", "fn": "median", "column": "x", "q": 0.5}, "q", "quantile"),
    ({"as": "y", "fn": "median", "column": "s"}, "column", "int or float"),
    ({"as": "y", "fn": "min_by", "column": "s"}, "by", "by"),
    ({"as": "y", "fn": "approx_quantile", "column": "x"}, "q", "'q'"),
    ({"as": "y", "fn": "approx_quantile", "column": "x", "q": -0.1}, "q",
     "'q'"),
    ({"as": "y", "fn": "approx_quantile", "column": "s", "q": 0.5},
     "column", "int or float"),
    ({"as": "y", "fn": "max_by", "column": "s", "by": "nope"}, "by", "nope"),
])
def test_bad_specs(sheaf, data, agg, path, word):
    steps = [{"op": "groupby", "by": ["g"],
              "aggs": [{"as": "n", "fn": "count"}, agg]}]
    r = sheaf.api("POST", "/v1/jobs", spec_for(data["rel"], steps))
    assert r.status == 400, r
    err = r.body["error"]
    assert err["path"] == f"steps[0].aggs[1].{path}", err
    assert word in err["message"], err


# --------------------------------------------------------------------------
# Past the memory budget (a sheafd of its own with SHEAF_MEMORY_MB=16, the
# floor): one group of 3,000,000 values, 24 MB of exact quantile state,
# beside groups of 1 to 100,000 values and one of nulls only.

BIG_N = 3000000
SMALL = {"g1": 1, "g2": 2, "g1k": 1000, "g100k": 100000}


def big_rows():
    """(group, x) rows, the groups interleaved; every x a multiple of 1/8,
    so its text is exact in any parser."""
    rows = [("big", ((i * 7919) % 1000003) / 8) for i in range(BIG_N)]
    for k, (g, n) in enumerate(sorted(SMALL.items())):
        rows += [(g, ((i * 104729 + k) % 99991) / 4 - 1000.0)
                 for i in range(n)]
    rows += [("nulls", None)] * 5
    random.Random(3).shuffle(rows)
    return rows


@pytest.mark.recovery  # stops the session sheafd: run with the last ones
def test_exact_quantile_past_budget(private_sheaf, monkeypatch, tmp_path):
    """median and quantile of a group larger than the final half's budget:
    its values are sorted out of core (the task that holds it reports
    spill bytes), and every group's answers equal, to the bit, Python's
    quantile_cont over the sorted values and DuckDB's quantile_cont on
    the same file. The plan is valid and the job succeeds: nothing is
    refused past the budget any more."""
    monkeypatch.setenv("SHEAF_MEMORY_MB", "16")
    srv = private_sheaf("quant")
    rows = big_rows()
    text = "g,x\n" + "".join(
        f"{g},{'' if x is None else repr(x)}\n" for g, x in rows)
    rel = f"quant-big-{uuid.uuid4().hex[:8]}/big.csv"
    srv.write_data(rel, text)
    qs = {"med": 0.5, "p90": 0.9, "p25": 0.25}
    aggs = [{"as": "n", "fn": "count", "column": "x"},
            {"as": "med", "fn": "median", "column": "x"},
            {"as": "p90", "fn": "quantile", "column": "x", "q": 0.9},
            {"as": "p25", "fn": "quantile", "column": "x", "q": 0.25}]
    spec = {"name": unique_name("quant-big"),
            "input": {"path": rel, "format": "csv",
                      "columns": {"g": "string", "x": "float"},
                      "partition_size": "4MiB"},
            "steps": [{"op": "groupby", "by": ["g"], "aggs": aggs},
                      {"op": "sort", "by": [{"column": "g"}]}],
            "output": {"format": "jsonl"}}

    r = srv.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 200, r
    done, body = srv.run(spec, timeout=600)
    assert done["status"] == "succeeded", done
    got = {d["g"]: d for d in (json.loads(x) for x in
                               body.decode().splitlines() if x)}

    by_group = {}
    for g, x in rows:
        by_group.setdefault(g, [])
        if x is not None:
            by_group[g].append(x)
    assert sorted(got) == sorted(by_group)
    for g, xs in by_group.items():
        assert got[g]["n"] == len(xs), (g, got[g])
        for k, q in qs.items():
            want = cont(xs, q)
            assert got[g][k] == want, (g, k, got[g][k], want)

    tasks = srv.api("GET", f"/v1/jobs/{done['id']}/tasks?limit=1000")
    assert tasks.status == 200, tasks
    final = [t for t in tasks.body["tasks"] if t["stage"] > 0]
    assert any(t["spill_bytes"] > BIG_N * 8 for t in final), final

    why = duckdb_missing()
    if why:
        pytest.skip(f"DuckDB comparison skipped: {why}")
    duck = tmp_path / "big.csv"
    duck.write_text(text, encoding="utf-8")
    cols, drows = duckdb_query_csv(
        duck, {"g": "VARCHAR", "x": "DOUBLE"},
        "SELECT g, count(x) AS n, quantile_cont(x, 0.5) AS med, "
        "quantile_cont(x, 0.9) AS p90, quantile_cont(x, 0.25) AS p25 "
        "FROM src GROUP BY g ORDER BY g")
    assert len(drows) == len(got)
    for row in drows:
        d = dict(zip(cols, row))
        for k in qs:
            want = None if d[k] is None else float(d[k])
            assert got[d["g"]][k] == want, ("duckdb", d["g"], k,
                                            got[d["g"]][k], want)
