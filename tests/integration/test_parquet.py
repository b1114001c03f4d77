"""
test_parquet.py - Parquet input and output through the real service, with
DuckDB as the oracle: DuckDB writes the input files (each codec, data pages
V1 and V2 so dictionary, plain and delta encodings, nulls, several row
groups), sheaf runs filter / select / groupby / sort jobs on them, and the
answers must equal DuckDB's SQL over the same files. Also: a glob of
Parquet files; a nested column is a 400 naming it; a damaged file fails the
job with a message naming the file, the row group and the column; a filter
on a sorted column skips row groups (the plan says how many, rows_in is
smaller); and Parquet output (each codec, row_group_rows) downloaded whole
and by ranges, which DuckDB reads back equal to the CSV result of the same
job.

DuckDB comes from @duckdb/node-api under $BENCH_NODE_MODULES (default
/tmp/bench-peers, installed by ../shared/bench/setup.sh); without it (or
without node) the tests are skipped, saying so.
"""

import csv
import datetime
import io
import json
import math
import os
import shutil
import subprocess
import uuid

import pytest

from harness import unique_name

NODE_MODULES = os.environ.get("BENCH_NODE_MODULES", "/tmp/bench-peers")
N_ROWS = 20000
RG_ROWS = 2048
CODECS = ["uncompressed", "snappy", "zstd", "gzip"]
VERSIONS = ["V1", "V2"]

# Runs the SQL statements of the JSON array on stdin in one in-memory
# DuckDB; prints the rows of the last as JSON: {"columns", "rows"}, big
# integers as strings, NaN and infinities as strings.
DUCK_JS = r"""
const path = require("path");
const { DuckDBInstance } = require("module").createRequire(
  path.join(process.argv[2], "x.js"))("@duckdb/node-api");
let input = "";
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", async () => {
  try {
    const stmts = JSON.parse(input);
    const con = await (await DuckDBInstance.create(":memory:")).connect();
    await con.run("SET TimeZone = 'UTC'");
    for (const s of stmts.slice(0, -1)) await con.run(s);
    const r = await con.runAndReadAll(stmts[stmts.length - 1]);
    const conv = (v) => {
      if (typeof v === "bigint") {
        const n = Number(v);
        return Number.isSafeInteger(n) ? n : v.toString();
      }
      if (typeof v === "number" && !Number.isFinite(v)) return String(v);
      if (v !== null && typeof v === "object") return String(v);
      return v;
    };
    const rows = r.getRows().map((row) => row.map(conv));
    process.stdout.write(JSON.stringify({columns: r.columnNames(), rows}));
  } catch (e) {
    process.stderr.write(String(e));
    process.exit(1);
  }
});
"""


def duck_missing():
    node = shutil.which("node")
    if node is None:
        return "DuckDB oracle: node is not installed"
    probe = ("require('module').createRequire(process.argv[1] + "
             "'/x.js')('@duckdb/node-api')")
    r = subprocess.run([node, "-e", probe, NODE_MODULES],
                       capture_output=True)
    if r.returncode != 0:
        return (f"DuckDB oracle: @duckdb/node-api is not installed in "
                f"{NODE_MODULES} (run ../shared/bench/setup.sh)")
    return None


class Duck:
    """DuckDB through node: duck.sql(stmt, ...) -> (columns, rows)."""

    def __init__(self, tmp):
        self.js = tmp / "duck_sql.js"
        self.js.write_text(DUCK_JS)

    def sql(self, *stmts):
        r = subprocess.run(["node", str(self.js), NODE_MODULES],
                           input=json.dumps(list(stmts)).encode(),
                           capture_output=True, timeout=300)
        assert r.returncode == 0, (
            f"duckdb failed: {r.stderr.decode(errors='replace')[:2000]}\n"
            f"sql: {stmts}")
        out = json.loads(r.stdout)
        return out["columns"], [tuple(row) for row in out["rows"]]


def q(s):
    return "'" + str(s).replace("'", "''") + "'"


# The table of the input files: every type sheaf reads, nulls in most
# columns, a dictionary column (k) and unique strings (s).
TABLE = f"""CREATE TABLE t AS SELECT
  i::BIGINT AS id,
  'k' || (i * 7 % 23) AS k,
  CASE WHEN i % 7 = 3 THEN NULL ELSE (i * 37 % 1000 - 500)::INTEGER END AS n,
  CASE WHEN i % 9 = 2 THEN NULL ELSE (i * 0.25 - 1234.5)::DOUBLE END AS v,
  CASE WHEN i % 5 = 1 THEN NULL ELSE i % 3 = 0 END AS b,
  CASE WHEN i % 8 = 1 THEN NULL ELSE 'row ' || i || repeat('z', i % 13) END
    AS s,
  CASE WHEN i % 12 = 7 THEN NULL ELSE (i * 13.37 - 5000)::DECIMAL(9,2) END
    AS dec,
  CASE WHEN i % 14 = 2 THEN NULL ELSE DATE '1969-12-01' + (i % 20000) END
    AS d,
  CASE WHEN i % 15 = 3 THEN NULL
       ELSE TIMESTAMP '1999-12-31 23:59:59.123456'
            + i * INTERVAL 1234567 MICROSECOND END AS ts
FROM (SELECT range::INTEGER AS i FROM range({N_ROWS}))"""

# The columns as sheaf reads them, in DuckDB's words: DECIMAL as double;
# DATE and TIMESTAMP are sheaf's date and timestamp, compared as days and
# microseconds since the epoch (convert() reads sheaf's ISO text so).
AS_SHEAF = {"id": "id", "k": "k", "n": "n", "v": "v", "b": "b", "s": "s",
            "dec": "dec::DOUBLE", "d": "(d - DATE '1970-01-01')",
            "ts": "epoch_us(ts)"}
TYPES = {"id": "int", "k": "string", "n": "int", "v": "float",
         "b": "bool", "s": "string", "dec": "float", "d": "date",
         "ts": "timestamp"}


def cols_sql(names):
    return ", ".join(f"{AS_SHEAF[c]} AS {c}" for c in names)


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    why = duck_missing()
    if why:
        pytest.skip(why)
    return Duck(tmp_path_factory.mktemp("duck"))


@pytest.fixture(scope="module")
def pqdata(session_server, duck):
    """The Parquet files under the data root: {name: relpath}."""
    rel = f"pq_{uuid.uuid4().hex[:8]}"
    d = session_server.data / rel
    d.mkdir(parents=True)
    stmts = [TABLE]
    files = {}
    for ver in VERSIONS:
        for codec in CODECS:
            name = f"all_{ver.lower()}_{codec}.parquet"
            files[(ver, codec)] = f"{rel}/{name}"
            stmts.append(
                f"COPY (SELECT * FROM t ORDER BY id) TO {q(d / name)} "
                f"(FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE "
                f"{RG_ROWS}, PARQUET_VERSION {ver})")
    nested = d / "nested" / "n.parquet"
    nested.parent.mkdir()
    stmts.append(
        f"COPY (SELECT range::INTEGER AS id, [range, range + 1] AS l, "
        f"'s' || range AS s FROM range(100)) TO {q(nested)} "
        f"(FORMAT parquet)")
    stmts.append("SELECT 1")
    duck.sql(*stmts)
    # the files hold what the tests mean to read: dictionary, plain and
    # delta encodings, data pages v1 and v2, several row groups
    _, enc = duck.sql(
        f"SELECT DISTINCT unnest(string_split(encodings, ', ')) FROM "
        f"parquet_metadata({q(str(d) + '/all_*.parquet')})")
    enc = {e[0] for e in enc}
    for want in ("PLAIN", "RLE_DICTIONARY", "DELTA_BINARY_PACKED"):
        assert want in enc, (want, enc)
    _, rgs = duck.sql(f"SELECT max(row_group_id) FROM parquet_metadata("
                      f"{q(d / 'all_v1_zstd.parquet')})")
    assert rgs[0][0] >= 5, rgs
    files["nested"] = f"{rel}/nested/n.parquet"
    files["dir"] = rel
    files["abs"] = d
    return files


def convert(text, typ):
    """A CSV field of sheaf's output as a Python value of column type."""
    if text == "":
        return None
    if typ == "int":
        return int(text)
    if typ == "float":
        return float(text)
    if typ == "bool":
        assert text in ("true", "false"), text
        return text == "true"
    if typ == "date":
        return (datetime.date.fromisoformat(text) - EPOCH.date()).days
    if typ == "timestamp":
        assert text.endswith("Z"), text
        t = datetime.datetime.fromisoformat(text[:-1])
        return (t - EPOCH) // datetime.timedelta(microseconds=1)
    return text


EPOCH = datetime.datetime(1970, 1, 1)


def csv_rows(body, types):
    """sheaf's CSV result: (header, rows of Python values)."""
    recs = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    header = recs[0]
    rows = [tuple(convert(f, types[h]) for f, h in zip(r, header))
            for r in recs[1:] if r]
    return header, rows


def norm(v):
    """A DuckDB value as sheaf reads it (big ints came as strings)."""
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    return v


def same_value(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def check_rows(got, want, label, ordered=True):
    want = [tuple(norm(v) for v in r) for r in want]
    if not ordered:
        key = lambda r: tuple((x is None, str(x)) for x in r)  # noqa: E731
        got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want), (
        f"{label}: {len(got)} rows, DuckDB has {len(want)}; first got "
        f"{got[:3]}, want {want[:3]}")
    for i, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w) and all(
            same_value(x, y) for x, y in zip(g, w)), (
            f"{label}: row {i} is {g}, DuckDB has {w}")


def spec(path, steps, out=None, **inp):
    i = {"path": path}
    i.update(inp)
    return {"name": unique_name("pq"), "input": i, "steps": steps,
            "output": out or {"format": "csv"}}


def run_all(sheaf, specs, timeout=180):
    ids = [sheaf.submit(s)["id"] for s in specs]
    out = []
    for jid, s in zip(ids, specs):
        job = sheaf.wait(jid, timeout)
        assert job["status"] == "succeeded", (
            f"job {jid} ({json.dumps(s)[:300]}) ended {job['status']}: "
            f"{job.get('error')!r}")
        out.append((job, sheaf.result(jid)))
    return out


FILTER = "not is_null(v) and n > 100 and b"
SELECT = ["id", "k", "v", "dec", "d", "ts", "s"]
GROUP_AGGS = [{"fn": "count", "as": "cnt"},
              {"fn": "sum", "column": "n", "as": "sum_n"},
              {"fn": "min", "column": "v", "as": "min_v"},
              {"fn": "max", "column": "dec", "as": "max_dec"},
              {"fn": "max", "column": "s", "as": "max_s"},
              {"fn": "count", "column": "ts", "as": "cnt_ts"}]
GROUP_SQL = ("SELECT k, count(*), sum(n), min(v), max(dec::DOUBLE), "
             "max(s), count(ts) FROM read_parquet({f}) GROUP BY k")
GROUP_TYPES = {"k": "string", "cnt": "int", "sum_n": "int",
               "min_v": "float", "max_dec": "float", "max_s": "string",
               "cnt_ts": "int"}


def test_parquet_jobs_equal_duckdb(sheaf, duck, pqdata):
    """filter + select, groupby, sort over every codec and page version,
    read at one partition per row group and as one partition."""
    specs, checks = [], []
    for ver in VERSIONS:
        for codec in CODECS:
            rel = pqdata[(ver, codec)]
            f = q(pqdata["abs"] / os.path.basename(rel))
            for psize in (1, "64MiB"):
                label = f"{ver}/{codec}/partition_size {psize}"
                specs.append(spec(rel, [
                    {"op": "filter", "where": FILTER},
                    {"op": "select", "columns": SELECT}],
                    partition_size=psize))
                checks.append((label + " filter", TYPES, True,
                               f"SELECT {cols_sql(SELECT)} FROM "
                               f"read_parquet({f}) WHERE v IS NOT NULL "
                               f"AND n > 100 AND b ORDER BY id"))
                specs.append(spec(rel, [
                    {"op": "groupby", "by": ["k"], "aggs": GROUP_AGGS}],
                    partition_size=psize))
                checks.append((label + " groupby", GROUP_TYPES, False,
                               GROUP_SQL.format(f=f)))
                specs.append(spec(rel, [
                    {"op": "filter", "where": "not is_null(n)"},
                    {"op": "sort", "by": [{"column": "n", "desc": True},
                                          {"column": "id"}]},
                    {"op": "select", "columns": ["n", "id", "d"]}],
                    partition_size=psize))
                checks.append((label + " sort", TYPES, True,
                               f"SELECT n, id, {AS_SHEAF['d']} FROM "
                               f"read_parquet({f}) WHERE n IS NOT NULL "
                               f"ORDER BY n DESC, id"))
    results = run_all(sheaf, specs)
    # the files have several row groups, read as several partitions
    assert results[0][0]["progress"]["partitions_total"] >= (
        N_ROWS // RG_ROWS), results[0][0]["progress"]
    for (job, body), (label, types, ordered, sql) in zip(results, checks):
        _, got = csv_rows(body, types)
        _, want = duck.sql(sql)
        assert want, label
        check_rows(got, want, label, ordered)
        assert job["progress"]["rows_in"] == N_ROWS, (label, job["progress"])


def test_parquet_glob(sheaf, duck, pqdata):
    """A glob of Parquet files: the rows of all of them."""
    glob = f"{pqdata['dir']}/all_*.parquet"
    s = spec(glob, [{"op": "groupby", "by": ["k"], "aggs": GROUP_AGGS}])
    r = sheaf.api("POST", "/v1/jobs/validate", s)
    assert r.status == 200, r
    assert r.body["input"]["format"] == "parquet"
    assert len(r.body["input"]["files"]) == len(VERSIONS) * len(CODECS)
    [(job, body)] = run_all(sheaf, [s])
    _, got = csv_rows(body, GROUP_TYPES)
    _, want = duck.sql(GROUP_SQL.format(
        f=q(f"{pqdata['abs']}/all_*.parquet")))
    check_rows(got, want, "glob", ordered=False)
    assert job["progress"]["rows_in"] == N_ROWS * len(VERSIONS) * len(CODECS)


def test_parquet_nested_column_is_400(sheaf, pqdata):
    """A nested column the job reads is a 400 naming it; the flat columns
    of the same file read fine."""
    s = spec(pqdata["nested"], [{"op": "select", "columns": ["id", "l"]}])
    r = sheaf.api("POST", "/v1/jobs", s)
    assert r.status == 400, r
    assert "'l'" in r.body["error"]["message"], r.body
    assert "n.parquet" in r.body["error"]["message"], r.body
    r = sheaf.api("POST", "/v1/jobs", spec(pqdata["nested"], []))
    assert r.status == 400 and "'l'" in r.body["error"]["message"], r
    _, body = sheaf.run(spec(pqdata["nested"], [
        {"op": "select", "columns": ["s", "id"]}]))
    _, rows = csv_rows(body, {"s": "string", "id": "int"})
    assert rows == [(f"s{i}", i) for i in range(100)]


def test_parquet_refusals(sheaf, pqdata):
    """What does not apply to Parquet is a 400 naming the field."""
    rel = pqdata[("V1", "zstd")]
    for extra, field in [({"on_error": "skip"}, "input.on_error"),
                         ({"columns": {"n": "string"}}, "input.columns"),
                         ({"compression": "gzip"}, "input.compression")]:
        r = sheaf.api("POST", "/v1/jobs", spec(rel, [], **extra))
        assert r.status == 400, (extra, r)
        assert r.body["error"]["path"] == field, (extra, r.body)
    for out, field in [({"format": "parquet", "compression": "lz4"},
                        "output.compression"),
                       ({"format": "parquet", "row_group_rows": 0},
                        "output.row_group_rows"),
                       ({"format": "csv", "row_group_rows": 10},
                        "output.row_group_rows")]:
        r = sheaf.api("POST", "/v1/jobs", spec(rel, [], out))
        assert r.status == 400, (out, r)
        assert r.body["error"]["path"] == field, (out, r.body)
    # not Parquet at all
    sheaf.write_data(f"{pqdata['dir']}/fake.parquet", "a,b\n1,2\n")
    r = sheaf.api("POST", "/v1/jobs",
                  spec(f"{pqdata['dir']}/fake.parquet", []))
    assert r.status == 400 and "fake.parquet" in r.body["error"]["message"]


def test_parquet_damaged_file_fails_job(sheaf, pqdata):
    """Garbage over the data pages (the footer intact) fails the job with
    a message naming the file, the row group and the column."""
    src = pqdata["abs"] / os.path.basename(pqdata[("V1", "zstd")])
    data = bytearray(src.read_bytes())
    flen = int.from_bytes(data[-8:-4], "little")
    data_end = len(data) - 8 - flen
    lo, hi = data_end // 3, data_end - 16
    data[lo:hi] = bytes((i * 131 + 7) % 256 for i in range(hi - lo))
    rel = f"{pqdata['dir']}/damaged/bad.parquet"
    sheaf.write_data(rel, bytes(data))
    job = sheaf.submit(spec(rel, [{"op": "aggregate", "aggs": [
        {"fn": "count", "as": "c"}, {"fn": "sum", "column": "n"},
        {"fn": "max", "column": "s"}]}]))
    done = sheaf.wait(job["id"], 120)
    assert done["status"] == "failed", done
    msg = done["error"] if isinstance(done["error"], str) else json.dumps(
        done["error"])
    assert "bad.parquet" in msg, msg
    assert "row group" in msg, msg
    assert "column '" in msg, msg


def test_parquet_pruning(sheaf, duck, pqdata):
    """A filter on a sorted column skips the row groups whose statistics
    rule it out: the plan counts them, fewer rows are read, and the answer
    is DuckDB's."""
    rel = pqdata[("V2", "snappy")]
    f = q(pqdata["abs"] / os.path.basename(rel))
    lo = N_ROWS - 3000
    s = spec(rel, [{"op": "filter", "where": f"id >= {lo} and k != 'k1'"},
                   {"op": "select", "columns": ["id", "k", "n"]}],
             partition_size=1)
    r = sheaf.api("POST", "/v1/jobs/validate", s)
    assert r.status == 200, r
    rg = r.body["input"]["row_groups"]
    n_rg = -(-N_ROWS // RG_ROWS)
    assert rg["total"] >= n_rg, rg
    assert rg["skipped"] >= rg["total"] - 3, rg
    assert rg["read"] == rg["total"] - rg["skipped"], rg
    assert r.body["input"]["partitions"] == rg["read"], r.body["input"]
    [(job, body)] = run_all(sheaf, [s])
    _, got = csv_rows(body, TYPES)
    _, want = duck.sql(f"SELECT id, k, n FROM read_parquet({f}) WHERE "
                       f"id >= {lo} AND k != 'k1' ORDER BY id")
    check_rows(got, want, "pruned")
    assert job["progress"]["rows_in"] < N_ROWS // 2, job["progress"]
    assert job["progress"]["rows_in"] >= 3000, job["progress"]
    # a filter after a limit cannot prune: the limit sees every row
    s2 = spec(rel, [{"op": "limit", "n": 5},
                    {"op": "filter", "where": f"id >= {lo}"}])
    r = sheaf.api("POST", "/v1/jobs/validate", s2)
    assert r.status == 200 and r.body["input"]["row_groups"]["skipped"] == 0


def get_ranges(sheaf, jid, size, pieces):
    """The result fetched in 'pieces' byte ranges, joined."""
    out = b""
    step = -(-size // pieces)
    for a in range(0, size, step):
        b = min(size, a + step) - 1
        r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                      headers={"Range": f"bytes={a}-{b}"})
        assert r.status == 206, r
        assert r.headers["Content-Range"] == f"bytes {a}-{b}/{size}", (
            r.headers["Content-Range"])
        out += r.raw
    return out


@pytest.mark.parametrize("codec", ["zstd", "snappy", "gzip", "none"])
def test_parquet_output(sheaf, duck, pqdata, codec, tmp_path):
    """sheaf writes Parquet (one file a part, served merged): downloaded
    whole and by ranges, DuckDB reads it back equal to the CSV result of
    the same job; row groups of at most row_group_rows rows."""
    rel = pqdata[("V1", "snappy")]
    steps = [{"op": "filter", "where": "n > -300"},
             {"op": "derive", "as": "w", "expr": "v * 2"},
             {"op": "select", "columns": ["id", "k", "n", "w", "b", "s",
                                          "dec", "ts"]}]
    out = {"format": "parquet", "compression": codec, "row_group_rows": 700}
    s_pq = spec(rel, steps, out, partition_size=1)
    s_csv = spec(rel, steps, {"format": "csv"}, partition_size=1)
    r = sheaf.api("POST", "/v1/jobs/validate", s_pq)
    assert r.status == 200, r
    assert r.body["output"]["format"] == "parquet"
    assert r.body["output"]["compression"] == codec
    (job, whole), (_, csv_body) = run_all(sheaf, [s_pq, s_csv])
    assert job["progress"]["partitions_total"] > 3
    jid = job["id"]
    head = sheaf.api("GET", f"/v1/jobs/{jid}/result")
    assert head.headers["Content-Type"] == "application/vnd.apache.parquet"
    assert whole[:4] == b"PAR1" and whole[-4:] == b"PAR1"
    assert len(whole) == int(head.headers["Content-Length"])
    # the job says the length the endpoint serves (the parts merged)
    assert sheaf.get(jid)["result"]["bytes"] == len(whole)
    etag = head.headers["ETag"]
    parts = get_ranges(sheaf, jid, len(whole), 5)
    assert parts == whole
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                  headers={"If-None-Match": etag})
    assert r.status == 304, r
    r = sheaf.api("GET", f"/v1/jobs/{jid}/result",
                  headers={"Range": "bytes=-100"})
    assert r.status == 206 and r.raw == whole[-100:], r
    path = tmp_path / f"out_{codec}.parquet"
    path.write_bytes(whole)
    types = dict(TYPES, w="float")
    names = ["id", "k", "n", "w", "b", "s", "dec", "ts"]
    cols, got = duck.sql(f"SELECT * EXCLUDE (ts), epoch_us(ts) AS ts FROM "
                         f"read_parquet({q(path)})")
    assert cols == names
    header, want = csv_rows(csv_body, types)
    assert header == names
    assert len(want) > 1000
    # the result is in task order; the CSV result is the same order
    check_rows([tuple(norm(v) for v in r) for r in got], want,
               f"parquet output {codec}")
    _, meta = duck.sql(
        f"SELECT row_group_id, max(row_group_num_rows), "
        f"max(compression) FROM parquet_metadata({q(path)}) "
        f"GROUP BY row_group_id")
    assert len(meta) >= len(want) // 700, meta
    assert all(m[1] <= 700 for m in meta), meta
    want_codec = {"zstd": "ZSTD", "snappy": "SNAPPY", "gzip": "GZIP",
                  "none": "UNCOMPRESSED"}[codec]
    assert all(m[2] == want_codec for m in meta), meta


def test_parquet_join_side(sheaf, duck, pqdata):
    """A Parquet file as the side of a join (read whole, every column),
    joined to a Parquet input; the answer is DuckDB's join."""
    side = pqdata["abs"] / "side" / "labels.parquet"
    side.parent.mkdir(exist_ok=True)
    duck.sql(f"COPY (SELECT 'k' || range AS k, range * 10 AS weight, "
             f"CASE WHEN range % 4 = 0 THEN NULL ELSE 'L' || range END "
             f"AS label FROM range(20)) TO {q(side)} (FORMAT parquet)",
             "SELECT 1")
    rel = pqdata[("V2", "zstd")]
    f = q(pqdata["abs"] / os.path.basename(rel))
    s = spec(rel, [
        {"op": "join", "with": {"path": f"{pqdata['dir']}/side/"
                                        "labels.parquet"},
         "on": ["k"], "how": "left"},
        {"op": "groupby", "by": ["k", "label"],
         "aggs": [{"fn": "count", "as": "c"},
                  {"fn": "sum", "column": "weight", "as": "w"}]}],
        partition_size=1)
    [(job, body)] = run_all(sheaf, [s])
    _, got = csv_rows(body, {"k": "string", "label": "string", "c": "int",
                             "w": "int"})
    _, want = duck.sql(
        f"SELECT t.k, s.label, count(*), sum(s.weight) FROM "
        f"read_parquet({f}) t LEFT JOIN read_parquet({q(side)}) s "
        f"USING (k) GROUP BY ALL")
    check_rows(got, want, "join", ordered=False)


def test_parquet_step_error_names_row(sheaf, pqdata):
    """A step failing on a Parquet row names the partition's file and row
    groups and the row's number in the partition (there are no lines)."""
    rel = pqdata[("V1", "gzip")]
    job = sheaf.submit(spec(rel, [
        {"op": "filter", "where": "id == 5000"},
        {"op": "derive", "as": "big", "expr": "id * 9223372036854775807"}],
        partition_size=1))
    done = sheaf.wait(job["id"], 120)
    assert done["status"] == "failed", done
    msg = done["error"] if isinstance(done["error"], str) else json.dumps(
        done["error"])
    # 5000 is row 905 (1-based) of row group 2 (rows 4096-6143)
    assert f"(file {rel}, row groups 2-2)" in msg, msg
    assert "step 1 (derive)" in msg and ", row 905" in msg, msg


def test_parquet_output_empty_parts(sheaf, duck, pqdata, tmp_path):
    """Parts without rows (a filter that keeps rows of a few partitions
    only, or of none: every row group pruned) still merge into a Parquet
    file DuckDB reads."""
    rel = pqdata[("V2", "gzip")]
    out = {"format": "parquet", "compression": "zstd"}
    (j1, some), (j2, none) = run_all(sheaf, [
        spec(rel, [{"op": "filter", "where": "id % 7000 == 3"}], out,
             partition_size=1),
        spec(rel, [{"op": "filter", "where": "id < 0"},
                   {"op": "select", "columns": ["id", "s"]}], out,
             partition_size=1)])
    assert j1["progress"]["partitions_total"] >= N_ROWS // RG_ROWS
    for name, body, want in [("some", some, [3, 7003, 14003]),
                             ("none", none, [])]:
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(body)
        _, rows = duck.sql(f"SELECT id FROM read_parquet({q(path)}) "
                           f"ORDER BY id")
        assert [r[0] for r in rows] == want, (name, rows)
    cols, _ = duck.sql(
        f"SELECT * FROM read_parquet({q(tmp_path / 'none.parquet')})")
    assert cols == ["id", "s"], cols


# Dates and timestamps as DuckDB writes them: DATE, TIMESTAMP_MS,
# TIMESTAMP (µs), TIMESTAMP_NS (sub-microsecond parts, before and after
# the epoch), TIMESTAMPTZ; nulls in each; sorted by d, so that a filter on
# d skips row groups.
TIME_TABLE = f"""CREATE TABLE tt AS SELECT
  i::BIGINT AS id,
  CASE WHEN i % 11 = 3 THEN NULL ELSE DATE '1960-01-01' + i * 3 END AS d,
  CASE WHEN i % 13 = 4 THEN NULL
       ELSE (TIMESTAMP '1965-06-01 12:34:56.789'
             + i * INTERVAL 86400123 MILLISECOND)::TIMESTAMP_MS END AS ts_ms,
  CASE WHEN i % 7 = 5 THEN NULL
       ELSE TIMESTAMP '1969-12-31 23:00:00.000001'
            + to_microseconds(i::BIGINT * 98765432101) END AS ts_us,
  CASE WHEN i % 9 = 6 THEN NULL
       ELSE make_timestamp_ns((i - 10000) * 123456789012345 + 987) END
    AS ts_ns,
  CASE WHEN i % 5 = 2 THEN NULL
       ELSE TIMESTAMPTZ '2010-06-01 12:00:00+02' + i * INTERVAL 1 HOUR END
    AS tz
FROM (SELECT range::INTEGER AS i FROM range({N_ROWS}))"""
TIME_COLS = ["id", "d", "ts_ms", "ts_us", "ts_ns", "tz"]
TIME_TYPES = {"id": "int", "d": "date", "ts_ms": "timestamp",
              "ts_us": "timestamp", "ts_ns": "timestamp", "tz": "timestamp",
              "y": "int", "c": "int", "lo": "timestamp", "hi": "timestamp",
              "m": "timestamp", "dd": "date"}
TIME_SQL = ("id, d - DATE '1970-01-01' AS d, epoch_us(ts_ms) AS ts_ms, "
            "epoch_us(ts_us) AS ts_us, epoch_us(ts_ns) AS ts_ns, "
            "epoch_us(tz) AS tz")


@pytest.fixture(scope="module")
def timedata(session_server, duck):
    """{(version, codec): relpath} of the time files, and 'abs'."""
    rel = f"pqt_{uuid.uuid4().hex[:8]}"
    d = session_server.data / rel
    d.mkdir(parents=True)
    stmts, files = [TIME_TABLE], {"abs": d, "dir": rel}
    for ver, codec in (("V1", "snappy"), ("V2", "zstd")):
        name = f"time_{ver.lower()}_{codec}.parquet"
        files[(ver, codec)] = f"{rel}/{name}"
        stmts.append(f"COPY (SELECT * FROM tt ORDER BY id) TO {q(d / name)} "
                     f"(FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE "
                     f"{RG_ROWS}, PARQUET_VERSION {ver})")
    stmts.append(f"SELECT name, type, converted_type, logical_type FROM "
                 f"parquet_schema({q(d / 'time_v1_snappy.parquet')})")
    _, schema = duck.sql(*stmts)
    kinds = {r[0]: (r[2], str(r[3])) for r in schema}
    # the file has what the test means to read
    assert kinds["d"][0] == "DATE", kinds
    assert kinds["ts_ms"][0] == "TIMESTAMP_MILLIS", kinds
    assert "NANOS=NanoSeconds" in kinds["ts_ns"][1], kinds
    assert "isAdjustedToUTC=1" in kinds["tz"][1], kinds
    assert "isAdjustedToUTC=0" in kinds["ts_us"][1], kinds
    return files


def test_parquet_dates_read(sheaf, duck, timedata):
    """DATE and every TIMESTAMP unit read as sheaf's date and timestamp:
    the values, a groupby on year(), a filter on dates (pruning row
    groups) all equal DuckDB's on the same files."""
    specs, checks = [], []
    for key in (("V1", "snappy"), ("V2", "zstd")):
        rel = timedata[key]
        f = q(timedata["abs"] / os.path.basename(rel))
        specs.append(spec(rel, [{"op": "select", "columns": TIME_COLS}],
                          partition_size=1))
        checks.append((f"{key} values", True,
                       f"SELECT {TIME_SQL} FROM read_parquet({f}) "
                       f"ORDER BY id"))
        for col in ("d", "ts_ms", "ts_ns", "tz"):
            specs.append(spec(rel, [
                {"op": "derive", "as": "y", "expr": f"year({col})"},
                {"op": "groupby", "by": ["y"],
                 "aggs": [{"fn": "count", "as": "c"},
                          {"fn": "min", "column": "ts_us", "as": "lo"},
                          {"fn": "max", "column": "tz", "as": "hi"}]}]))
            checks.append((f"{key} year({col})", False,
                           f"SELECT year({col}), count(*), "
                           f"epoch_us(min(ts_us)), epoch_us(max(tz)) "
                           f"FROM read_parquet({f}) GROUP BY ALL"))
        specs.append(spec(rel, [
            {"op": "filter",
             "where": "d >= '2001-01-01' and d < '2003-07-01'"},
            {"op": "derive", "as": "m",
             "expr": "date_trunc('month', ts_ns)"},
            {"op": "derive", "as": "dd", "expr": "date(tz)"},
            {"op": "select", "columns": ["id", "d", "m", "dd"]}],
            partition_size=1))
        checks.append((f"{key} filter", True,
                       f"SELECT id, d - DATE '1970-01-01', "
                       f"epoch_us(date_trunc('month', ts_ns)), "
                       f"date(tz) - DATE '1970-01-01' FROM read_parquet({f}) "
                       f"WHERE d >= DATE '2001-01-01' AND "
                       f"d < DATE '2003-07-01' ORDER BY id"))
    # the date filter skips the row groups outside its range
    r = sheaf.api("POST", "/v1/jobs/validate", specs[-1])
    assert r.status == 200, r
    rg = r.body["input"]["row_groups"]
    assert rg["total"] >= N_ROWS // RG_ROWS and rg["read"] <= 2, rg
    # the types sheaf gives the columns
    r = sheaf.api("POST", "/v1/jobs/validate", specs[0])
    assert r.status == 200, r
    results = run_all(sheaf, specs)
    for (job, body), (label, ordered, sql) in zip(results, checks):
        _, got = csv_rows(body, TIME_TYPES)
        _, want = duck.sql(sql)
        assert len(want) >= 3, label
        check_rows(got, want, label, ordered)


def test_parquet_dates_written(sheaf, duck, timedata, tmp_path):
    """sheaf writes date and timestamp columns as DATE and
    TIMESTAMP(MICROS, UTC) with their converted types; DuckDB reads them
    back as DATE and TIMESTAMP WITH TIME ZONE, equal to its own reading of
    the source (nanoseconds cut to microseconds), and sheaf reads its own
    file back the same."""
    rel = timedata[("V2", "zstd")]
    src = q(timedata["abs"] / os.path.basename(rel))
    steps = [{"op": "derive", "as": "dd", "expr": "date(ts_ms)"}]
    out = {"format": "parquet", "compression": "zstd",
           "row_group_rows": 3000}
    [(job, whole)] = run_all(sheaf, [spec(rel, steps, out,
                                          partition_size=1)])
    assert whole[:4] == b"PAR1"
    path = tmp_path / "times.parquet"
    path.write_bytes(whole)
    _, schema = duck.sql(f"SELECT name, type, converted_type, logical_type "
                         f"FROM parquet_schema({q(path)})")
    kinds = {r[0]: r[1:] for r in schema}
    assert kinds["d"][0] == "INT32" and kinds["d"][1] == "DATE", kinds
    for c in ("ts_ms", "ts_us", "ts_ns", "tz"):
        assert kinds[c][0] == "INT64", kinds
        assert kinds[c][1] == "TIMESTAMP_MICROS", kinds
        assert "isAdjustedToUTC=1" in str(kinds[c][2]), kinds
        assert "MICROS=MicroSeconds" in str(kinds[c][2]), kinds
    _, types = duck.sql(f"SELECT column_name, column_type FROM "
                        f"(DESCRIBE SELECT * FROM read_parquet({q(path)}))")
    types = dict(types)
    assert types["d"] == "DATE" and types["dd"] == "DATE", types
    assert types["ts_ns"] == "TIMESTAMP WITH TIME ZONE", types
    _, got = duck.sql(f"SELECT {TIME_SQL}, dd - DATE '1970-01-01' FROM "
                      f"read_parquet({q(path)}) ORDER BY id")
    _, want = duck.sql(f"SELECT {TIME_SQL}, date(ts_ms) - DATE '1970-01-01' "
                       f"FROM read_parquet({src}) ORDER BY id")
    assert len(got) == N_ROWS
    check_rows([tuple(norm(v) for v in r) for r in got], want,
               "written back")
    # sheaf reads its own file back: the same values
    back = f"{timedata['dir']}/back.parquet"
    (timedata["abs"] / "back.parquet").write_bytes(whole)
    [(_, body)] = run_all(sheaf, [spec(back, [
        {"op": "sort", "by": [{"column": "id"}]}])])
    header, rows = csv_rows(body, dict(TIME_TYPES, dd="date"))
    assert header == TIME_COLS + ["dd"], header
    check_rows(rows, want, "read back by sheaf")
