"""
workloads.py - the benchmark workloads W1-W6 of ../shared/bench/README.md
(and sheaf's own W7: W1 read from a Parquet copy of the file; W8: a join
of the file with a second table of about 200 MB under a 64 MiB budget)
as sheaf job specs, and sheaf's output turned into the bench's canonical
text, so that it can be diffed with the peers' files.

Shared by tests/integration/test_workloads.py (small file, tiny partitions,
answers checked against pandas / scikit-learn / DuckDB and an exact Python
computation) and scripts/bench.sh (the 1 GB file, timed through the service).

  python3 tests/integration/workloads.py spec W PATH [PARTITION_SIZE]
      print the job spec of workload W over PATH (relative to the data root)
  python3 tests/integration/workloads.py canon W SHEAF_OUTPUT.csv
      print sheaf's CSV result of W in the canonical form (stdout)

Canonical form (bench README): CSV with the workload's header, no quoting,
'\\n' line ends, integers as integers, every float as C printf("%.6g").
"""

import copy
import csv
import io
import json
import sys

# The file's columns, typed as every peer reads them (DuckDB: BIGINT,
# VARCHAR, INTEGER, INTEGER, DOUBLE, VARCHAR, VARCHAR). Given in full so that
# no inference from a sample can differ from the peers: citations is '%.2f'
# text, which a sample could hold only whole values of; ids past 2^31.
COLUMNS = {
    "id": "int",
    "category": "string",
    "year": "int",
    "n_authors": "int",
    "citations": "float",
    "submitter": "string",
    "abstract": "string",
}

BY_CITATIONS = [{"column": "citations", "desc": True},
                {"column": "id", "desc": False}]

STEPS = {
    # W1 groupby: rows with year >= 2010, by category: count,
    # mean(citations), max(n_authors); by category.
    "w1": [
        {"op": "filter", "where": "year >= 2010"},
        {"op": "groupby", "by": ["category"],
         "aggs": [{"as": "count", "fn": "count"},
                  {"as": "mean_citations", "fn": "mean",
                   "column": "citations"},
                  {"as": "max_n_authors", "fn": "max",
                   "column": "n_authors"}]},
        {"op": "sort", "by": [{"column": "category"}]},
    ],
    # W2 wordcount: tokens of the lowercased abstract (runs of [a-z0-9]),
    # counted; top 100 by count desc, token asc.
    "w2": [
        {"op": "select", "columns": ["abstract"]},
        {"op": "tokenize", "column": "abstract", "as": "token",
         "lowercase": True},
        {"op": "groupby", "by": ["token"],
         "aggs": [{"as": "count", "fn": "count"}]},
        {"op": "sort", "by": [{"column": "count", "desc": True},
                              {"column": "token", "desc": False}]},
        {"op": "limit", "n": 100},
        {"op": "select", "columns": ["token", "count"]},
    ],
    # W3 highcard: by submitter: count, sum(citations); every group, by
    # submitter.
    "w3": [
        {"op": "groupby", "by": ["submitter"],
         "aggs": [{"as": "count", "fn": "count"},
                  {"as": "sum_citations", "fn": "sum",
                   "column": "citations"}]},
        {"op": "sort", "by": [{"column": "submitter"}]},
    ],
    # W4 topk: the 1000 rows with the highest citations (ties by id).
    "w4": [
        {"op": "select", "columns": ["id", "citations", "category"]},
        {"op": "sort", "by": BY_CITATIONS},
        {"op": "limit", "n": 1000},
    ],
    # W5 sort: every row's (id, submitter, citations), by citations desc,
    # id asc (the out-of-core sort).
    "w5": [
        {"op": "select", "columns": ["id", "submitter", "citations"]},
        {"op": "sort", "by": BY_CITATIONS},
    ],
    # W6 naive Bayes: multinomial, alpha 1, on abstract tokens hashed into
    # 2^18 buckets as scikit-learn's HashingVectorizer; label category;
    # test rows id % 5 == 0. One row: n_train, n_test, accuracy.
    "w6": [
        {"op": "train_naive_bayes", "text": "abstract", "label": "category",
         "features": 262144, "holdout": "id % 5 == 0"},
    ],
}

# W7 groupby (parquet): W1 over the Parquet copy of the file that DuckDB
# makes (scripts/bench_parquet.js); not one of the shared bench's, so not
# in ALL: scripts/bench.sh times DuckDB's read of the same Parquet file.
STEPS["w7"] = copy.deepcopy(STEPS["w1"])
PARQUET = {"w7"}

# W8 join: the file joined (inner, on id) with the second table that
# scripts/bench_join.js generates beside it (side_path: reviews of papers,
# id, venue, score, reviewer, note; about 200 MB for the 1 GiB file, some
# ids twice, some never in the file, some null), then by category and
# venue: count, sum(score), max(citations). Run with SHEAF_MEMORY_MB=64
# (ENV), so the 'with' side is far over the budget and the join is
# partitioned; the peer is DuckDB with memory_limit 64MiB.
SIDE_COLUMNS = {"id": "int", "venue": "string", "score": "float",
                "reviewer": "string", "note": "string"}
STEPS["w8"] = [
    {"op": "select", "columns": ["id", "category", "citations"]},
    {"op": "join", "with": None, "on": ["id"], "how": "inner"},
    {"op": "groupby", "by": ["category", "venue"],
     "aggs": [{"as": "count", "fn": "count"},
              {"as": "sum_score", "fn": "sum", "column": "score"},
              {"as": "max_citations", "fn": "max", "column": "citations"}]},
    {"op": "sort", "by": [{"column": "category"}, {"column": "venue"}]},
]
# Environment of sheafd for a workload (bench_sheaf.py restarts it so).
ENV = {"w8": {"SHEAF_MEMORY_MB": "64"}}
W8_MEMORY_MB = 64

HEADERS = {
    "w1": ["category", "count", "mean_citations", "max_n_authors"],
    "w2": ["token", "count"],
    "w3": ["submitter", "count", "sum_citations"],
    "w4": ["id", "citations", "category"],
    "w5": ["id", "submitter", "citations"],
    "w6": ["n_train", "n_test", "accuracy"],
    "w8": ["category", "venue", "count", "sum_score", "max_citations"],
}

# Columns of each result that are floats (the rest are ints and strings).
FLOATS = {
    "w1": {"mean_citations"},
    "w2": set(),
    "w3": {"sum_citations"},
    "w4": {"citations"},
    "w5": {"citations"},
    "w6": {"accuracy"},
    "w8": {"sum_score", "max_citations"},
}

INTS = {
    "w1": {"count", "max_n_authors"},
    "w2": {"count"},
    "w3": {"count"},
    "w4": {"id"},
    "w5": {"id"},
    "w6": {"n_train", "n_test"},
    "w8": {"count"},
}

NAMES = {
    "w1": "groupby", "w2": "wordcount", "w3": "highcard", "w4": "topk",
    "w5": "sort", "w6": "naive bayes", "w8": "join (64 MiB)",
}

ALL = ["w1", "w2", "w3", "w4", "w5", "w6"]
BENCH_ALL = ALL + ["w7", "w8"]

for _t in (HEADERS, FLOATS, INTS):
    _t["w7"] = _t["w1"]
NAMES["w7"] = "groupby (parquet)"


def parquet_path(path):
    """The Parquet copy of the bench file 'path' (x.csv -> x.parquet)."""
    return (path[:-4] if path.endswith(".csv") else path) + ".parquet"


def side_path(path):
    """W8's second table beside the bench file 'path' (x.csv ->
    x-w8side.csv)."""
    return (path[:-4] if path.endswith(".csv") else path) + "-w8side.csv"


def spec(workload, path, partition_size="64MiB", name=None,
         output_format="csv"):
    """The sheaf job spec of 'workload' ("w1".."w6") over 'path' (relative
    to the data root). W7 reads the Parquet copy of 'path'."""
    if workload in PARQUET:
        return {
            "name": name or f"bench-{workload}",
            "input": {"path": parquet_path(path), "format": "parquet",
                      "partition_size": partition_size},
            "steps": copy.deepcopy(STEPS[workload]),
            "output": {"format": output_format},
        }
    steps = copy.deepcopy(STEPS[workload])
    if workload == "w8":
        steps[1]["with"] = {
            "path": side_path(path), "format": "csv",
            "csv": {"header": True, "delimiter": ",", "quote": '"'},
            "columns": dict(SIDE_COLUMNS)}
    return {
        "name": name or f"bench-{workload}",
        "input": {
            "path": path,
            "format": "csv",
            "csv": {"header": True, "delimiter": ",", "quote": '"'},
            "columns": dict(COLUMNS),
            "partition_size": partition_size,
        },
        "steps": steps,
        "output": {"format": output_format},
    }


def g6(x):
    """C printf("%.6g") of a float (Python's % is C's)."""
    return "%.6g" % x


def read_rows(body):
    """sheaf's CSV result (bytes or str) -> list of records (lists of str)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return [r for r in csv.reader(io.StringIO(body, newline="")) if r]


def canonical(workload, body):
    """sheaf's CSV result -> the bench's canonical text: the header checked,
    float columns as %.6g, everything else as written (ints are written as
    ints; the strings of these workloads never need quotes). An empty field
    (null) stays empty."""
    rows = read_rows(body)
    if not rows:
        raise ValueError(f"{workload}: empty result (no header)")
    header = rows[0]
    if header != HEADERS[workload]:
        raise ValueError(f"{workload}: header {header!r}, expected "
                         f"{HEADERS[workload]!r}")
    floats = [i for i, h in enumerate(header) if h in FLOATS[workload]]
    out = [",".join(header)]
    for r in rows[1:]:
        r = list(r)
        for i in floats:
            if i < len(r) and r[i] != "":
                r[i] = g6(float(r[i]))
        out.append(",".join(r))
    return "\n".join(out) + "\n"


def _g6_neighbours(x, rel):
    """The %.6g texts of the values within 'rel' relative of x."""
    lo, hi = x * (1 - rel), x * (1 + rel)
    return {g6(lo), g6(x), g6(hi)}


def compare(workload, body, ref_text, rel=1e-9):
    """Compare sheaf's CSV result 'body' of 'workload' with a peer's
    canonical text 'ref_text'. Ints and strings must be equal; a float must
    print as the peer's %.6g text, or be within 'rel' relative of a value
    that does (a half-way value whose last bit differs between two correct
    computations can round either way). -> (problems, n_rounding): a list
    of 'row R column C: sheaf X, peer Y' lines (empty when equal) and how
    many floats needed the allowance."""
    got = read_rows(body)
    ref = read_rows(ref_text)
    problems, n_rounding = [], 0
    if not got or got[0] != HEADERS[workload]:
        problems.append(f"sheaf's header {got[:1]!r}, expected "
                        f"{HEADERS[workload]!r}")
        return problems, 0
    if not ref or ref[0] != HEADERS[workload]:
        problems.append(f"the peer's header {ref[:1]!r}, expected "
                        f"{HEADERS[workload]!r}")
        return problems, 0
    header = got[0]
    if len(got) != len(ref):
        problems.append(f"{len(got) - 1} rows, the peer has {len(ref) - 1}")
    for i, (g, r) in enumerate(zip(got[1:], ref[1:]), 1):
        if len(g) != len(r):
            problems.append(f"row {i}: sheaf {g!r}, peer {r!r}")
            continue
        for col, gv, rv in zip(header, g, r):
            if gv == rv:
                continue
            if col in FLOATS[workload] and gv != "" and rv != "":
                try:
                    x = float(gv)
                except ValueError:
                    x = None
                if x is not None and g6(x) == rv:
                    continue
                if x is not None and rv in _g6_neighbours(x, rel):
                    n_rounding += 1
                    continue
            problems.append(f"row {i} {col}: sheaf {gv!r}, peer {rv!r} "
                            f"(sheaf row {g!r}, peer row {r!r})")
    return problems, n_rounding


def _main(argv):
    if len(argv) >= 3 and argv[0] == "spec":
        w, path = argv[1], argv[2]
        size = argv[3] if len(argv) > 3 else "64MiB"
        json.dump(spec(w, path, size), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if len(argv) == 3 and argv[0] == "canon":
        with open(argv[2], "rb") as f:
            sys.stdout.write(canonical(argv[1], f.read()))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
