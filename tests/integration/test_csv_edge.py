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
        parts.append(rnd.choice(["\n", "\r\n"]))
        if rnd.random() < 0.25:
            parts.append(rnd.choice(["\n", "\r\n", "\n\n", "\r\n\r\n"]))
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
