"""
test_csv_edge.py - a CSV file full of RFC 4180 corner cases, cut into
partitions of 1 KiB and of a few bytes, must give exactly the records
Python's csv module reads from it: a partition boundary never splits a
record, also inside a quoted field.
"""

import random
import uuid

import pytest

from harness import check_exact, read_csv_rows, unique_name

HEADER = ["k", "v", "w", "z"]
LONG = "".join(random.Random(7).choice("abcdé ,\"\n\r\n日x")
               for _ in range(5000))

# Each record: (list of field texts as written, expected values), where an
# expected value is None (null: unquoted empty) or a str. Written texts are
# raw: we control quoting exactly.
RECORDS = [
    (["1", "hello", "world", "x"], ["1", "hello", "world", "x"]),
    (["2", '"line1\nline2"', "b", "c"], ["2", "line1\nline2", "b", "c"]),
    (["3", '"crlf1\r\ncrlf2"', '"cr\ronly"', "c"],
     ["3", "crlf1\r\ncrlf2", "cr\ronly", "c"]),
    (["4", '"she said ""hi"""', '""""', "x"],
     ["4", 'she said "hi"', '"', "x"]),
    (["5", '"a,b,c"', '","', '",,"'], ["5", "a,b,c", ",", ",,"]),
    (["6", "", "", ""], ["6", None, None, None]),
    (["7", '""', '""', '""'], ["7", "", "", ""]),
    (["8", "héllo wörld", "日本語テキスト", "🙂"],
     ["8", "héllo wörld", "日本語テキスト", "🙂"]),
    (["9", '"' + LONG.replace('"', '""') + '"', "long", "y"],
     ["9", LONG, "long", "y"]),
    # a quote inside an unquoted field is an ordinary character
    (["10", 'ab"cd', ' "x"', "y"], ["10", 'ab"cd', ' "x"', "y"]),
    # text after a closing quote is appended (as Python's csv does)
    (["11", '"ab"cd', "z", "w"], ["11", "abcd", "z", "w"]),
    # quoted content that looks like records: a splitter that looks for the
    # next line end without tracking quotes cuts here
    (["12", '"x\n13,fake,fake,fake\n14,"",""\n"', "y", "z"],
     ["12", 'x\n13,fake,fake,fake\n14,","\n', "y", "z"]),
    (["15", '"\n"', '"\n\n\n"', '"\r\n"'], ["15", "\n", "\n\n\n", "\r\n"]),
    (["16", " lead", "trail ", "  "], ["16", " lead", "trail ", "  "]),
    (["17", '"a""\n""b"', '"""\n"""', "q"],
     ["17", 'a"\n"b', '"\n"', "q"]),
    (["18", "tab\there", "semi;colon", "back\\slash"],
     ["18", "tab\there", "semi;colon", "back\\slash"]),
    (["19", "", '""', ""], ["19", None, "", None]),
]
RECORDS += [([str(20 + i), f"r{i}",
              '"' + "q\n" * (i % 3) + 'v"' if i % 3 else "v", "é" * i],
             [str(20 + i), f"r{i}", "q\n" * (i % 3) + "v",
              "é" * i if i else None])
            for i in range(12)]
# the last record is quoted at its end and has no line end
LAST = (["99", "end", "of", '"file ""q"""'], ["99", "end", "of", 'file "q"'])
RECORDS.append(LAST)


def build_file(seed=4180):
    """-> (file bytes, expected rows, number of records)."""
    rnd = random.Random(seed)
    parts = ["\ufeff", ",".join(HEADER), "\r\n"]
    for i, (texts, _) in enumerate(RECORDS):
        parts.append(",".join(texts))
        if i == len(RECORDS) - 1:
            break  # no final line end
        # LF, CR LF and lone CR (old Mac) line ends, mixed; empty lines
        parts.append(rnd.choice(["\n", "\r\n", "\r"]))
        if rnd.random() < 0.25:
            parts.append(rnd.choice(["\n", "\r\n", "\n\n", "\r\n\r\n",
                                     "\r", "\r\r"]))
    data = "".join(parts).encode("utf-8")
    return data, [exp for _, exp in RECORDS]


SIZES = ["1KiB", 1, 2, 3, 5, 17, "100"]


@pytest.fixture(scope="module")
def edge_jobs(session_server):
    data, expected = build_file()
    # Python's csv module reads the file as we say it does (it cannot tell a
    # null from an empty string: both are '').
    assert read_csv_rows(data) == [HEADER] + [
        ["" if v is None else v for v in row] for row in expected]
    rel = f"edge-{uuid.uuid4().hex[:8]}/edge.csv"
    session_server.write_data(rel, data)
    jobs = {}
    for size in SIZES:  # all at once: they run side by side
        spec = {"name": unique_name(f"edge-{size}"),
                "input": {"path": rel, "format": "csv",
                          "columns": {c: "string" for c in HEADER},
                          "partition_size": size},
                "steps": [], "output": {"format": "csv"}}
        jobs[size] = session_server.submit(spec)["id"]
    return {"jobs": jobs, "expected": expected, "size": len(data)}


@pytest.mark.parametrize("size", SIZES)
def test_edge_file_partitioned(sheaf, edge_jobs, size):
    jid = edge_jobs["jobs"][size]
    job = sheaf.wait(jid, timeout=120)
    assert job["status"] == "succeeded", job
    body = sheaf.result(jid)
    expected = edge_jobs["expected"]
    check_exact(body, HEADER, expected, f"partition_size={size!r}")
    p = job["progress"]
    assert p["rows_in"] == len(expected), p
    if size == 1:
        # every record starts past a 1-byte cut: one partition per record
        assert p["partitions_total"] == len(expected), p
    if size == "1KiB":
        assert p["partitions_total"] >= 2, p


def test_bom_and_header_only_file(sheaf):
    rel = f"edge-{uuid.uuid4().hex[:8]}/header-only.csv"
    sheaf.write_data(rel, b"\xef\xbb\xbfa,b\r\n")
    spec = {"name": unique_name("header-only"),
            "input": {"path": rel, "format": "csv",
                      "columns": {"a": "string", "b": "string"}},
            "steps": [], "output": {"format": "csv"}}
    _, body = sheaf.run(spec, timeout=15)
    check_exact(body, ["a", "b"], [])


def test_unterminated_quote_is_an_error(sheaf):
    """A file ending inside a quoted field is bad data: 400 at submit or a
    failed job naming the line, never a silent truncation."""
    rel = f"edge-{uuid.uuid4().hex[:8]}/open-quote.csv"
    sheaf.write_data(rel, 'a,b\n1,x\n2,"never closed\n3,y\n')
    spec = {"name": unique_name("open-quote"),
            "input": {"path": rel, "format": "csv",
                      "columns": {"a": "string", "b": "string"}},
            "steps": [], "output": {"format": "csv"}}
    r = sheaf.api("POST", "/v1/jobs", spec)
    if r.status == 400:
        assert r.body["error"]["path"].startswith("input"), r
        return
    assert r.status == 201, r
    job = sheaf.wait(r.body["id"])
    assert job["status"] == "failed", job
    assert "line 3" in job["error"], job["error"]


# --------------------------------------------------------------------------
# Lone carriage returns (old Mac line ends): LF, CRLF and CR alone end
# records, mixed in one file, as pandas and DuckDB read them; inside quotes
# a CR is data. The expected rows are written out here and checked against
# pandas and DuckDB where they are installed (python3-pandas; DuckDB through
# node and ../shared/bench's peers in BENCH_PEERS, default /tmp/bench-peers).

MAC_HEADER = ["id", "name", "note"]
MAC = (b"id,name,note\r"
       b"1,plain,x\r"
       b"2,\"cr\rinside\",y\r\n"
       b"3,\"crlf\r\ninside\",z\n"
       b"\r"                       # an empty line (LF then a lone CR)
       b"4,after empty,w\r\r"      # a lone CR, then an empty line
       b"5,\"q\"\"\r\",\"\r\"\r"   # "" and CRs inside quotes
       b"6,crlf end,u\r\n"
       b"\r\n"                     # an empty CRLF line
       b"7,last,\"v\"\r")          # a CR at the very end
MAC_ROWS = [["1", "plain", "x"], ["2", "cr\rinside", "y"],
            ["3", "crlf\r\ninside", "z"], ["4", "after empty", "w"],
            ["5", 'q"\r', "\r"], ["6", "crlf end", "u"], ["7", "last", "v"]]
# the same bytes as lines: every line end ends a line; CRLF is one
MAC_LINES = ["id,name,note", "1,plain,x", '2,"cr', 'inside",y',
             '3,"crlf', 'inside",z', "", "4,after empty,w", "",
             '5,"q""', '","', '"', "6,crlf end,u", "", '7,last,"v"']


def pandas_rows(data, lines=False):
    """The records pandas reads from 'data' (all strings), or None when
    pandas is not installed."""
    try:
        import pandas as pd  # noqa: PLC0415 (optional: only this oracle)
    except ImportError:
        return None
    import io
    if lines:
        df = pd.read_csv(io.BytesIO(data), header=None, sep="\x01",
                         quoting=3, dtype=str, keep_default_na=False,
                         skip_blank_lines=False)
        return df[0].tolist()
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert list(df.columns) == MAC_HEADER
    return df.values.tolist()


DUCKDB_JS = r"""
const path = require("path");
const peers = process.env.BENCH_PEERS || "/tmp/bench-peers";
const { DuckDBInstance } = require("module").createRequire(
    path.join(peers, "x.js"))("@duckdb/node-api");
(async () => {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  const r = await con.runAndReadAll(`SELECT * FROM read_csv('${process.argv[1]}',
      header = true, delim = ',', quote = '"', escape = '"',
      auto_detect = false, strict_mode = false,
      columns = {'id': 'VARCHAR', 'name': 'VARCHAR', 'note': 'VARCHAR'})`);
  console.log(JSON.stringify(r.getRows()));
})().catch((e) => { console.error(e.message); process.exit(1); });
"""


def duckdb_rows(path):
    """The records DuckDB's read_csv gives for the file 'path', or None when
    node or the peers' DuckDB is not installed."""
    import json
    import os
    import shutil
    import subprocess
    peers = os.environ.get("BENCH_PEERS", "/tmp/bench-peers")
    if shutil.which("node") is None or not os.path.isdir(
            os.path.join(peers, "node_modules", "@duckdb", "node-api")):
        return None
    r = subprocess.run(["node", "-e", DUCKDB_JS, path], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_lone_cr_oracles_agree(tmp_path):
    """pandas, DuckDB and Python's csv module read MAC as MAC_ROWS, and
    pandas (and universal newlines) its lines as MAC_LINES."""
    assert read_csv_rows(MAC) == [MAC_HEADER] + MAC_ROWS
    import io
    assert io.TextIOWrapper(io.BytesIO(MAC), newline=None).read().split(
        "\n") == MAC_LINES + [""]
    checked = []
    pd_rows = pandas_rows(MAC)
    if pd_rows is not None:
        assert pd_rows == MAC_ROWS
        assert pandas_rows(MAC, lines=True) == MAC_LINES
        checked.append("pandas")
    f = tmp_path / "mac.csv"
    f.write_bytes(MAC)
    dd = duckdb_rows(str(f))
    if dd is not None:
        assert dd == MAC_ROWS
        checked.append("duckdb")
    if not checked:
        pytest.skip("neither pandas nor DuckDB is installed")


@pytest.mark.parametrize("size", [1, 3, 7, 13, "1KiB"])
def test_lone_cr_csv(sheaf, size):
    """Through the service, cut at every few bytes (a CRLF often straddles
    a partition boundary): the rows pandas and DuckDB read."""
    rel = f"edge-{uuid.uuid4().hex[:8]}/mac.csv"
    sheaf.write_data(rel, MAC)
    spec = {"name": unique_name(f"mac-{size}"),
            "input": {"path": rel, "format": "csv",
                      "columns": {c: "string" for c in MAC_HEADER},
                      "partition_size": size},
            "steps": [], "output": {"format": "csv"}}
    job, body = sheaf.run(spec, timeout=60)
    check_exact(body, MAC_HEADER, MAC_ROWS, f"partition_size={size!r}")
    assert job["progress"]["rows_in"] == len(MAC_ROWS), job["progress"]


@pytest.mark.parametrize("size", [1, 4, "1KiB"])
def test_lone_cr_lines(sheaf, size):
    """The same bytes as lines input: one row a line, as pandas and
    Python's universal newlines split them (an empty line is a row)."""
    rel = f"edge-{uuid.uuid4().hex[:8]}/mac.txt"
    sheaf.write_data(rel, MAC)
    spec = {"name": unique_name(f"mac-lines-{size}"),
            "input": {"path": rel, "format": "lines", "partition_size": size},
            "steps": [], "output": {"format": "csv"}}
    _, body = sheaf.run(spec, timeout=60)
    check_exact(body, ["line"], [[ln] for ln in MAC_LINES],
                f"lines, partition_size={size!r}")


def test_lone_cr_line_numbers(sheaf):
    """A bad value's message counts lone CRs as line ends."""
    rel = f"edge-{uuid.uuid4().hex[:8]}/mac-bad.txt"
    sheaf.write_data(rel, b"1\r2\r\n3\r\rx\r5\r")
    spec = {"name": unique_name("mac-bad"),
            "input": {"path": rel, "format": "lines",
                      "columns": {"line": "int"}},
            "steps": [], "output": {"format": "csv"}}
    r = sheaf.api("POST", "/v1/jobs", spec)
    if r.status == 400:  # the sample at submit sees it
        assert "line 5" in r.body["error"]["message"], r.body
        return
    assert r.status == 201, r
    job = sheaf.wait(r.body["id"], timeout=60)
    assert job["status"] == "failed", job
    assert "line 5" in job["error"], job["error"]
