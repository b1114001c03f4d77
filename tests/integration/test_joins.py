"""
test_joins.py - the join step's 'how' (inner, left, right, full, semi,
anti), several keys with different names (left_on/right_on), null keys
(never match) and duplicate keys on both sides, through the real sheafd;
each answer is compared with a Python-computed one and with DuckDB's SQL
answer on the same CSVs (skipped, with the reason, when DuckDB is absent).
The plan (/v1/jobs/validate) names each join's strategy and why.

Both strategies run: broadcast (the 'with' side fits the budget) and
partitioned (a right or full join over several tasks; a 'with' side over
SHEAF_MEMORY_MB in a sheafd of its own).
"""

import json
import random
import subprocess
import uuid

import pytest

from harness import NODE_MODULES, duckdb_missing, unique_name

LEFT_COLS = {"id": "int", "a": "string", "b": "int", "lv": "int"}
RIGHT_COLS = {"ra": "string", "rb": "int", "rv": "int"}
HOWS = ["inner", "left", "right", "full", "semi", "anti"]


def make_tables(seed=5):
    rnd = random.Random(seed)
    left, right = [], []
    for i in range(240):
        a = None if rnd.random() < 0.08 else rnd.choice("pqrstu")
        b = None if rnd.random() < 0.05 else rnd.randrange(4)
        left.append((i, a, b, rnd.randrange(1000)))
    for i in range(70):
        a = None if rnd.random() < 0.08 else rnd.choice("qrstuvw")
        b = None if rnd.random() < 0.05 else rnd.randrange(5)
        right.append((a, b, 1000 + i))
    return left, right


def csv_of(header, rows):
    def cell(v):
        return "" if v is None else str(v)
    return header + "\n" + "".join(
        ",".join(cell(v) for v in r) + "\n" for r in rows)


def oracle(left, right, how):
    """The rows a join gives (SQL semantics; the key columns of a 'with'
    row without a match hold its keys)."""
    out = []
    matched = set()
    index = {}
    for k, r in enumerate(right):
        if r[0] is not None and r[1] is not None:
            index.setdefault((r[0], r[1]), []).append(k)
    for l in left:
        hits = index.get((l[1], l[2]), []) \
            if l[1] is not None and l[2] is not None else []
        if how == "semi":
            if hits:
                out.append(l)
            continue
        if how == "anti":
            if not hits:
                out.append(l)
            continue
        for k in hits:
            matched.add(k)
            out.append(l + (right[k][2],))
        if not hits and how in ("left", "full"):
            out.append(l + (None,))
    if how in ("right", "full"):
        for k, r in enumerate(right):
            if k not in matched:
                out.append((None, r[0], r[1], None, r[2]))
    return out


DUCK_JS = r"""
const path = require("path");
const { DuckDBInstance } = require("module").createRequire(
    path.join(process.argv[1], "x.js"))("@duckdb/node-api");
(async () => {
  const [lp, rp, sql] = process.argv.slice(2);
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  await c.run(`CREATE VIEW l AS SELECT * FROM read_csv('${lp}', header =
      true, columns = {'id': 'BIGINT', 'a': 'VARCHAR', 'b': 'BIGINT',
      'lv': 'BIGINT'})`);
  await c.run(`CREATE VIEW r AS SELECT * FROM read_csv('${rp}', header =
      true, columns = {'ra': 'VARCHAR', 'rb': 'BIGINT', 'rv': 'BIGINT'})`);
  const res = await c.runAndReadAll(sql);
  process.stdout.write(JSON.stringify(res.getRowsJson()));
})().catch((e) => { console.error(e.message); process.exit(1); });
"""

ON = "l.a = r.ra AND l.b = r.rb"
DUCK_SQL = {
    "inner": f"SELECT l.id, l.a, l.b, l.lv, r.rv FROM l JOIN r ON {ON}",
    "left": f"SELECT l.id, l.a, l.b, l.lv, r.rv FROM l LEFT JOIN r ON {ON}",
    "right": f"SELECT l.id, COALESCE(l.a, r.ra), COALESCE(l.b, r.rb), "
             f"l.lv, r.rv FROM l RIGHT JOIN r ON {ON}",
    "full": f"SELECT l.id, COALESCE(l.a, r.ra), COALESCE(l.b, r.rb), "
            f"l.lv, r.rv FROM l FULL JOIN r ON {ON}",
    "semi": f"SELECT * FROM l WHERE EXISTS (SELECT 1 FROM r WHERE {ON})",
    "anti": f"SELECT * FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE {ON})",
}


def duck_rows(lpath, rpath, sql):
    r = subprocess.run(["node", "-e", DUCK_JS, NODE_MODULES, str(lpath),
                        str(rpath), sql], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"duckdb failed on {sql!r}: {r.stderr}"
    return [tuple(int(v) if isinstance(v, str) and v.lstrip("-").isdigit()
                  and i != 1 else v for i, v in enumerate(row))
            for row in json.loads(r.stdout)]


def canon(rows):
    return sorted(rows, key=lambda r: json.dumps(r))


@pytest.fixture(scope="module")
def tables(session_server, tmp_path_factory):
    left, right = make_tables()
    d = f"joins-{uuid.uuid4().hex[:8]}"
    lt = csv_of("id,a,b,lv", left)
    rt = csv_of("ra,rb,rv", right)
    session_server.write_data(f"{d}/left.csv", lt)
    session_server.write_data(f"{d}/right.csv", rt)
    local = tmp_path_factory.mktemp("joins")
    (local / "left.csv").write_text(lt)
    (local / "right.csv").write_text(rt)
    return {"dir": d, "left": left, "right": right,
            "lpath": local / "left.csv", "rpath": local / "right.csv"}


def spec_for(t, how, partition_size=None):
    inp = {"path": f"{t['dir']}/left.csv", "columns": LEFT_COLS}
    if partition_size:
        inp["partition_size"] = partition_size
    return {"name": unique_name("join"), "input": inp,
            "steps": [{"op": "join",
                       "with": {"path": f"{t['dir']}/right.csv",
                                "columns": RIGHT_COLS},
                       "left_on": ["a", "b"], "right_on": ["ra", "rb"],
                       "how": how}],
            "output": {"format": "jsonl"}}


def run_rows(sheaf, spec):
    _, body = sheaf.run(spec, timeout=120)
    rows = [json.loads(x) for x in body.decode().splitlines() if x]
    return [tuple(r.values()) for r in rows], (list(rows[0].keys())
                                               if rows else None)


@pytest.mark.parametrize("how", HOWS)
def test_join_how_matches_python_and_duckdb(sheaf, tables, how):
    """One partition on the left (right and full need one task)."""
    got, cols = run_rows(sheaf, spec_for(tables, how))
    want = oracle(tables["left"], tables["right"], how)
    if how in ("semi", "anti"):
        assert cols in (None, ["id", "a", "b", "lv"]), cols
    else:
        assert cols in (None, ["id", "a", "b", "lv", "rv"]), cols
    assert canon(got) == canon(want)
    assert len(want) > 0
    why = duckdb_missing()
    if why:
        pytest.skip(f"DuckDB comparison skipped: {why}")
    duck = duck_rows(tables["lpath"], tables["rpath"], DUCK_SQL[how])
    assert canon(got) == canon(duck)


@pytest.mark.parametrize("how", ["inner", "left", "semi", "anti"])
def test_join_many_partitions(sheaf, tables, how):
    """Several tasks each probe the broadcast side: same answer."""
    spec = spec_for(tables, how, "512B")
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 200 and r.body["partitions"] >= 4, r
    got, _ = run_rows(sheaf, spec)
    assert canon(got) == canon(oracle(tables["left"], tables["right"], how))


@pytest.mark.parametrize("how", ["right", "full"])
def test_right_full_over_many_tasks_is_partitioned(sheaf, tables, how):
    spec = spec_for(tables, how, "512B")
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 200, r
    j = r.body["steps"][0]["join"]
    assert j["strategy"] == "partitioned" and "tasks" in j["why"], j
    assert r.body["stages"][1]["tasks"] == 16, r.body["stages"]
    got, _ = run_rows(sheaf, spec)
    assert canon(got) == canon(oracle(tables["left"], tables["right"], how))


@pytest.mark.recovery  # stops the session sheafd: run with the last ones
def test_side_over_budget_is_partitioned(life_sheaf, tmp_path):
    """SHEAF_MEMORY_MB=16 and a 'with' side of over 16 MB: the plan says
    partitioned, and every how gives Python's (and DuckDB's) answer."""
    srv = life_sheaf("join-part", env={"SHEAF_MEMORY_MB": "16"})
    rnd = random.Random(9)
    left, right = make_tables(seed=7)
    for i in range(300000):
        right.append((f"x{i:040d}", rnd.randrange(5), 10 ** 15 + i))
    d = f"joins-{uuid.uuid4().hex[:8]}"
    lt, rt = csv_of("id,a,b,lv", left), csv_of("ra,rb,rv", right)
    assert len(rt) > 17 * 2 ** 20, len(rt)
    srv.write_data(f"{d}/left.csv", lt)
    srv.write_data(f"{d}/right.csv", rt)
    (tmp_path / "left.csv").write_text(lt)
    (tmp_path / "right.csv").write_text(rt)
    t = {"dir": d}
    spec = spec_for(t, "inner", "2KiB")
    r = srv.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 200, r
    j = r.body["steps"][0]["join"]
    assert j["strategy"] == "partitioned" and "over the memory" in j["why"], j
    why = duckdb_missing()
    for how in HOWS:
        got, _ = run_rows(srv, spec_for(t, how, "2KiB"))
        want = oracle(left, right, how)
        assert canon(got) == canon(want), how
        if not why:
            duck = duck_rows(tmp_path / "left.csv", tmp_path / "right.csv",
                             DUCK_SQL[how])
            assert canon(got) == canon(duck), how
    # bounded memory: no task held more than the budget, and with the
    # 'with' side doubled (every row twice) neither; the answer doubles
    srv.write_data(f"{d}/right2.csv", rt + csv_of("ra,rb,rv", right)
                   .split("\n", 1)[1])
    peaks = []
    for name, mult in (("right.csv", 1), ("right2.csv", 2)):
        sp = spec_for(t, "inner", "2KiB")
        sp["steps"][0]["with"]["path"] = f"{d}/{name}"
        job, body = srv.run(sp, timeout=300)
        got = [tuple(json.loads(x).values())
               for x in body.decode().splitlines() if x]
        assert canon(got) == canon(oracle(left, right, "inner") * mult)
        tasks = srv.api("GET", f"/v1/jobs/{job['id']}/tasks").body["tasks"]
        peaks.append(max(t.get("peak_bytes") or 0 for t in tasks))
    print(f"partitioned join, 16 MiB budget: peak bytes {peaks} for the "
          f"'with' side x1, x2")
    assert max(peaks) <= 16 * 2 ** 20, peaks


def test_plan_names_the_strategy(sheaf, tables):
    r = sheaf.api("POST", "/v1/jobs/validate", spec_for(tables, "inner"))
    assert r.status == 200, r
    j = r.body["steps"][0]["join"]
    assert j["strategy"] == "broadcast", j
    assert "fits the memory budget" in j["why"], j


def test_on_shorthand_and_errors(sheaf, tables):
    spec = spec_for(tables, "inner")
    st = spec["steps"][0]
    del st["right_on"]
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 400 and \
        r.body["error"]["path"] == "steps[0].right_on", r
    st["right_on"] = ["ra"]
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 400 and \
        r.body["error"]["path"] == "steps[0].right_on", r
    st["right_on"] = ["ra", "nope"]
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 400 and \
        r.body["error"]["path"] == "steps[0].right_on[1]", r
    st["right_on"] = ["rv", "rb"]
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 400 and \
        r.body["error"]["path"] == "steps[0].right_on[0]", r
    st["on"] = ["a"]
    r = sheaf.api("POST", "/v1/jobs/validate", spec)
    assert r.status == 400 and r.body["error"]["path"] in (
        "steps[0].left_on", "steps[0].right_on"), r
    # 'on' alone: the same names on both sides (rename with a derive)
    spec = spec_for(tables, "semi")
    spec["steps"] = [{"op": "derive", "as": "ra", "expr": "a"},
                     {"op": "derive", "as": "rb", "expr": "b"},
                     {"op": "join",
                      "with": {"path": f"{tables['dir']}/right.csv",
                               "columns": RIGHT_COLS},
                      "on": ["ra", "rb"], "how": "semi"},
                     {"op": "select", "columns": ["id", "a", "b", "lv"]}]
    got, _ = run_rows(sheaf, spec)
    assert canon(got) == canon(oracle(tables["left"], tables["right"],
                                      "semi"))
