"""
test_workloads.py - the benchmark workloads W1-W6 of ../shared/bench (the
specs are in workloads.py) run as sheaf jobs over HTTP on a small generated
arXiv-like file (gen_arxiv.py --rows 6000 --seed 42, ~4.8 MB) cut into tiny
partitions, and checked against someone else's engine.

How answers are compared:

* Against the peers (pandas_peer.py for W1-W5, sklearn_peer.py for W6, run
  with /usr/bin/python3; DuckDB's duckdb.js too when ../shared/bench/setup.sh
  has installed it): the peers print the bench's canonical CSV, floats as
  %.6g. Sheaf's result is turned into the same text (its floats formatted
  with %.6g, workloads.canonical) and must equal the peer's line for line:
  integers and strings exactly, and floats exactly as %.6g text, except that
  a float whose value lies within 1e-9 relative of a %.6g rounding boundary
  may round to either neighbour (two correct sums that differ in their last
  bit can print differently there; workloads.compare counts those).
* Against an exact computation of our own (W1-W5): Python's csv module, the
  citations read as exact decimals, sums and means as exact fractions. Ints
  and strings must be equal, computed floats (mean, sum) within 1e-9
  relative of the exact value (SPEC section 2), and floats that are input
  values passed through (W4, W5 citations) exactly equal.
* W6: n_train and n_test equal scikit-learn's, and the accuracy is exactly
  scikit-learn's correct / n_test (same hashing, same model, so the same
  predictions); the 'report' artifact agrees with scikit-learn's per-class
  precision, recall, F1, support and confusion matrix.

Also: the CSV edge-case file of test_csv_edge.py through a groupby gives the
same result at every partition size from 1 byte up to its size.

A peer whose Python package is missing skips its tests, saying which
(scripts/deps.sh installs python3-pandas and python3-sklearn).
"""

import csv
import json
import os
import random
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import workloads as W
from harness import REPO, RUN_ID, Approx, check_output, unique_name
from test_csv_edge import build_file as build_edge_file

PY = "/usr/bin/python3"
BENCH = Path(os.environ.get("SHEAF_BENCH_DIR")
             or REPO.parent / "shared" / "bench")
NODE_MODULES = os.environ.get("BENCH_NODE_MODULES", "/tmp/bench-peers")
ROWS = 6000
SEED = 42
REL = 1e-9
JOB_TIMEOUT = 600

# (workload, partition_size) run as sheaf jobs; all submitted at once.
# 256 KiB: ~19 partitions of the ~4.8 MB file. 4 KiB: ~1170 partitions, a
# boundary every 5 rows or so.
BIG, TINY = "256KiB", "4KiB"
# (Each partition is a task with its own claim, output file and commit:
# ~1170 of them cost about a minute on 2 cores, hence two workloads only.)
CASES = [(w, BIG) for w in W.ALL] + [("w1", TINY), ("w3", TINY)]


# --------------------------------------------------------------------------
# The input file, our exact answers, the peers


@pytest.fixture(scope="session")
def arxiv(session_server):
    """-> (path relative to the data root, absolute path) of the generated
    file, made once per session."""
    gen = BENCH / "gen_arxiv.py"
    if not gen.is_file():
        pytest.skip(f"no {gen}: the bench's generator is needed (set "
                    f"SHEAF_BENCH_DIR to the shared/bench directory)")
    rel = f"workloads-{RUN_ID}/arxiv-{ROWS}.csv"
    path = session_server.data / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([PY, str(gen), "--rows", str(ROWS), "--seed", str(SEED),
                    "--out", str(path)], check=True, timeout=300)
    return rel, path


@pytest.fixture(scope="session")
def rows(arxiv):
    """The file's rows as Python values: id int, year int, n_authors int,
    citations Decimal (exact), the rest str."""
    out = []
    with open(arxiv[1], newline="", encoding="utf-8") as f:
        rd = csv.reader(f)
        assert next(rd) == list(W.COLUMNS)
        for r in rd:
            out.append((int(r[0]), r[1], int(r[2]), int(r[3]), Decimal(r[4]),
                        r[5], r[6]))
    assert len(out) == ROWS
    return out


TOKEN = re.compile(r"[a-z0-9]+")


def exact_w1(rows):
    g = {}
    for _id, cat, year, n_auth, cit, _s, _a in rows:
        if year >= 2010:
            n, tot, mx = g.get(cat, (0, Decimal(0), None))
            g[cat] = (n + 1, tot + cit, n_auth if mx is None else
                      max(mx, n_auth))
    return [[c, n, Fraction(tot) / n, mx]
            for c, (n, tot, mx) in sorted(g.items(),
                                          key=lambda kv: kv[0].encode())]


def exact_w2(rows):
    counts = Counter()
    for r in rows:
        counts.update(TOKEN.findall(r[6].lower()))
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    return [[t, n] for t, n in top[:100]]


def exact_w3(rows):
    g = {}
    for _id, _c, _y, _n, cit, sub, _a in rows:
        n, tot = g.get(sub, (0, Decimal(0)))
        g[sub] = (n + 1, tot + cit)
    return [[s, n, Fraction(tot)]
            for s, (n, tot) in sorted(g.items(),
                                      key=lambda kv: kv[0].encode())]


def by_citations(rows):
    return sorted(rows, key=lambda r: (-r[4], r[0]))


def exact_w4(rows):
    return [[r[0], float(r[4]), r[1]] for r in by_citations(rows)[:1000]]


def exact_w5(rows):
    return [[r[0], r[5], float(r[4])] for r in by_citations(rows)]


EXACT = {"w1": exact_w1, "w2": exact_w2, "w3": exact_w3, "w4": exact_w4,
         "w5": exact_w5}


class Peers:
    """Runs a peer script once per (peer, workload) on the session's file;
    -> its canonical CSV text. Skips when the peer cannot run here."""

    PYTHON = {"pandas": ("pandas_peer.py", ["pandas"]),
              "sklearn": ("sklearn_peer.py", ["pandas", "sklearn", "numpy"])}

    def __init__(self, csv_path, outdir):
        self.csv = csv_path
        self.out = outdir
        self.out.mkdir(parents=True, exist_ok=True)
        self.cache = {}
        self.usable = {}

    def _check(self, peer):
        if peer in self.usable:
            return self.usable[peer]
        why = None
        if peer in self.PYTHON:
            script, mods = self.PYTHON[peer]
            if not (BENCH / "peers" / script).is_file():
                why = f"no {BENCH / 'peers' / script}"
            else:
                for m in mods:
                    r = subprocess.run([PY, "-c", f"import {m}"],
                                       capture_output=True)
                    if r.returncode != 0:
                        pkg = "python3-" + ("sklearn" if m == "sklearn"
                                            else m)
                        why = (f"peer {peer}: {PY} cannot import {m} "
                               f"(install Debian's {pkg}: scripts/deps.sh)")
                        break
        elif peer == "duckdb":
            node = shutil.which("node")
            probe = ("require('module').createRequire(process.argv[1] + "
                     "'/x.js')('@duckdb/node-api')")
            if node is None:
                why = "peer duckdb: no node"
            elif subprocess.run([node, "-e", probe, NODE_MODULES],
                                capture_output=True).returncode != 0:
                why = (f"peer duckdb: @duckdb/node-api is not installed in "
                       f"{NODE_MODULES} (run ../shared/bench/setup.sh)")
        else:
            why = f"unknown peer {peer}"
        self.usable[peer] = why
        return why

    def cmd(self, peer):
        if peer == "duckdb":
            return ["node", str(BENCH / "peers" / "duckdb.js")]
        return [PY, str(BENCH / "peers" / self.PYTHON[peer][0])]

    def output(self, peer, workload):
        why = self._check(peer)
        if why:
            pytest.skip(why)
        key = (peer, workload)
        if key not in self.cache:
            out = self.out / f"{peer}-{workload}.csv"
            env = dict(os.environ, BENCH_PEERS=NODE_MODULES,
                       PYTHONDONTWRITEBYTECODE="1")
            t0 = time.monotonic()
            r = subprocess.run(self.cmd(peer) + [str(self.csv), workload,
                                                 str(out)],
                               capture_output=True, env=env, timeout=900)
            assert r.returncode == 0, (
                f"peer {peer} {workload} exited {r.returncode}: "
                f"{r.stderr.decode(errors='replace')[-2000:]}")
            self.cache[key] = (out.read_text(), time.monotonic() - t0)
        return self.cache[key][0]


@pytest.fixture(scope="session")
def peers(arxiv, tmp_root):
    return Peers(arxiv[1], tmp_root / "peers")


# --------------------------------------------------------------------------
# The sheaf jobs: every case submitted at once, so they run side by side


@pytest.fixture(scope="session")
def jobs(session_server, arxiv):
    out = {}
    for w, size in CASES:
        spec = W.spec(w, arxiv[0], size, unique_name(f"{w}-{size}"))
        out[(w, size)] = (spec, session_server.api("POST", "/v1/jobs", spec))
    return out


def result_of(sheaf, jobs, w, size):
    """The job of (w, size) once it succeeded -> (job, result bytes)."""
    spec, r = jobs[(w, size)]
    assert r.status == 201, (
        f"{w} ({W.NAMES[w]}) at partition_size {size}: POST /v1/jobs "
        f"answered {r.status}: {r.raw[:800]!r}\nspec: {json.dumps(spec)}")
    jid = r.body["id"]
    done = sheaf.wait(jid, timeout=JOB_TIMEOUT)
    assert done["status"] == "succeeded", (
        f"{w} at {size}: job {jid} ended {done['status']}: "
        f"{done.get('error')!r}\nspec: {json.dumps(spec)}")
    return done, sheaf.result(jid)


def fmt_problems(w, size, against, problems, spec):
    return (f"{w} ({W.NAMES[w]}) at partition_size {size} differs from "
            f"{against} in {len(problems)} place(s):\n  "
            + "\n  ".join(problems[:15])
            + f"\nspec: {json.dumps(spec)}")


# --------------------------------------------------------------------------
# Tests against the peers

PEER_CASES = ([(w, BIG, "pandas") for w in W.ALL[:5]]
              + [("w6", BIG, "sklearn")]
              + [(w, TINY, "pandas") for w, s in CASES if s == TINY]
              + [(w, BIG, "duckdb") for w in W.ALL])


@pytest.mark.parametrize("w,size,peer", PEER_CASES,
                         ids=[f"{w}-{s}-{p}" for w, s, p in PEER_CASES])
def test_workload_matches_peer(sheaf, jobs, peers, w, size, peer):
    """Sheaf's canonical text equals the peer's (floats as %.6g; see the
    module's docstring for the rounding-boundary allowance)."""
    ref = peers.output(peer, w)  # while the sheaf jobs run
    done, body = result_of(sheaf, jobs, w, size)
    problems, rounding = W.compare(w, body, ref, REL)
    assert not problems, fmt_problems(w, size, f"peer {peer}", problems,
                                      jobs[(w, size)][0])
    assert done["progress"]["partitions_total"] >= (
        500 if size == TINY else 10), done["progress"]


# --------------------------------------------------------------------------
# Tests against an exact computation

EXACT_CASES = [(w, s) for w, s in CASES if w != "w6"]


@pytest.mark.parametrize("w,size", EXACT_CASES,
                         ids=[f"{w}-{s}" for w, s in EXACT_CASES])
def test_workload_exact(sheaf, jobs, rows, w, size):
    """Ints and strings equal, computed floats within 1e-9 relative of the
    exact rational value, passed-through floats bit for bit."""
    want = EXACT[w](rows)
    _, body = result_of(sheaf, jobs, w, size)
    got = W.read_rows(body)
    assert got and got[0] == W.HEADERS[w], got[:1]
    got = got[1:]
    problems = []
    if len(got) != len(want):
        problems.append(f"{len(got)} rows, expected {len(want)}")
    for i, (g, e) in enumerate(zip(got, want)):
        if len(g) != len(e):
            problems.append(f"row {i}: {g!r}, expected {e!r}")
            continue
        for col, gv, ev in zip(W.HEADERS[w], g, e):
            where = f"row {i + 1} {col}"
            if isinstance(ev, Fraction):
                try:
                    gf = Fraction(float(gv))
                except ValueError:
                    problems.append(f"{where}: {gv!r} is not a float")
                    continue
                if abs(gf - ev) > Fraction(REL) * abs(ev):
                    problems.append(f"{where}: {gv}, exact {float(ev)!r} "
                                    f"(rel. error "
                                    f"{float(abs(gf - ev) / abs(ev)):.3g})")
            elif isinstance(ev, float):
                if gv != "" and float(gv) == ev:
                    continue
                problems.append(f"{where}: {gv!r}, expected {ev!r}")
            elif str(ev) != gv:
                problems.append(f"{where}: {gv!r}, expected {str(ev)!r}")
    assert not problems, fmt_problems(w, size, "the exact computation",
                                      problems, jobs[(w, size)][0])


# --------------------------------------------------------------------------
# W6: scikit-learn's model, evaluated in this process for the report


@pytest.fixture(scope="session")
def sklearn_eval(arxiv):
    """scikit-learn's W6 done as sklearn_peer.py does it, keeping the
    predictions: -> dict(n_train, n_test, correct, y_true, y_pred,
    classes)."""
    try:
        import numpy as np
        import pandas as pd
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.naive_bayes import MultinomialNB
    except ImportError as e:
        pytest.skip(f"scikit-learn peer: {e} (install Debian's "
                    f"python3-sklearn and python3-pandas: scripts/deps.sh)")
    df = pd.read_csv(arxiv[1], usecols=["id", "category", "abstract"],
                     dtype={"id": np.int64, "category": str, "abstract": str})
    vec = HashingVectorizer(n_features=2**18, token_pattern=r"[a-z0-9]+",
                            lowercase=True, alternate_sign=False, norm=None,
                            dtype=np.float64)
    X = vec.transform(df.abstract)
    test = (df.id % 5 == 0).to_numpy()
    nb = MultinomialNB(alpha=1.0).fit(X[~test], df.category[~test])
    y_true = df.category[test].to_numpy()
    y_pred = nb.predict(X[test])
    return {"n_train": int((~test).sum()), "n_test": int(test.sum()),
            "correct": int((y_true == y_pred).sum()), "y_true": y_true,
            "y_pred": y_pred, "classes": list(nb.classes_)}


def test_w6_accuracy_is_sklearns(sheaf, jobs, peers):
    """n_train, n_test equal; accuracy == correct / n_test with scikit-
    learn's number of correct predictions (recovered from its %.6g text,
    which pins it down for n_test < 10^5)."""
    ref = W.read_rows(peers.output("sklearn", "w6"))
    assert ref[0] == W.HEADERS["w6"]
    n_train, n_test, acc = int(ref[1][0]), int(ref[1][1]), float(ref[1][2])
    correct = round(acc * n_test)
    assert W.g6(correct / n_test) == ref[1][2]
    _, body = result_of(sheaf, jobs, "w6", BIG)
    got = W.read_rows(body)
    assert got[0] == W.HEADERS["w6"] and len(got) == 2, got
    assert (got[1][0], got[1][1]) == (str(n_train), str(n_test)), (
        f"sheaf n_train,n_test = {got[1][:2]}, scikit-learn's "
        f"{n_train},{n_test}")
    assert float(got[1][2]) == correct / n_test, (
        f"sheaf's accuracy {got[1][2]} = {float(got[1][2]) * n_test:.3f} / "
        f"{n_test} correct; scikit-learn's {correct} / {n_test} = "
        f"{correct / n_test!r}")


def _class_entries(report, classes):
    """Per-class metrics of the report, whichever of the natural shapes it
    has: {"per_class"|"classes": {label: {...}}} or a list of objects with a
    "label"/"class" key. -> {label: dict}."""
    for key in ("per_class", "classes", "class_metrics", "labels"):
        v = report.get(key)
        if isinstance(v, dict) and set(v) >= set(classes) and all(
                isinstance(x, dict) for x in v.values()):
            return v
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for lk in ("label", "class", "name"):
                if all(lk in x for x in v):
                    return {x[lk]: x for x in v}
    if set(report) >= set(classes):
        return {c: report[c] for c in classes}
    return None


def test_w6_report_artifact(sheaf, jobs, sklearn_eval):
    """GET /v1/jobs/{id}/artifacts/report: accuracy, n_train, n_test, and per
    class precision/recall/f1/support and the confusion matrix, equal to
    scikit-learn's (metrics to 1e-9)."""
    from sklearn.metrics import (confusion_matrix,
                                 precision_recall_fscore_support)
    done, _ = result_of(sheaf, jobs, "w6", BIG)
    r = sheaf.api("GET", f"/v1/jobs/{done['id']}/artifacts/report")
    assert r.status == 200, r
    rep = r.body if isinstance(r.body, dict) else json.loads(r.raw)
    sk = sklearn_eval
    assert rep.get("n_train") == sk["n_train"], rep.get("n_train")
    assert rep.get("n_test") == sk["n_test"], rep.get("n_test")
    assert rep.get("accuracy") == sk["correct"] / sk["n_test"], (
        rep.get("accuracy"), sk["correct"], sk["n_test"])
    labels = sk["classes"]
    p, rc, f1, sup = precision_recall_fscore_support(
        sk["y_true"], sk["y_pred"], labels=labels, zero_division=0)
    per = _class_entries(rep, labels)
    assert per is not None, (
        f"no per-class metrics found in the report (keys: {sorted(rep)})")
    problems = []
    for i, c in enumerate(labels):
        e = per.get(c)
        if e is None:
            problems.append(f"class {c}: missing")
            continue
        for k, v in (("precision", p[i]), ("recall", rc[i]), ("f1", f1[i])):
            if not isinstance(e.get(k), (int, float)) or abs(
                    e[k] - v) > REL * max(1.0, abs(v)):
                problems.append(f"class {c} {k}: {e.get(k)!r}, "
                                f"scikit-learn {float(v)!r}")
        if e.get("support") != int(sup[i]):
            problems.append(f"class {c} support: {e.get('support')!r}, "
                            f"scikit-learn {int(sup[i])}")
    conf = rep.get("confusion")
    assert conf is not None, f"no 'confusion' in the report: {sorted(rep)}"
    cm_labels = conf.get("labels") if isinstance(conf, dict) else labels
    matrix = conf.get("matrix") if isinstance(conf, dict) else conf
    want = confusion_matrix(sk["y_true"], sk["y_pred"],
                            labels=cm_labels).tolist()
    if matrix != want:
        diff = [(cm_labels[i], cm_labels[j], matrix[i][j], want[i][j])
                for i in range(len(want)) for j in range(len(want))
                if matrix[i][j] != want[i][j]][:10]
        problems.append(f"confusion matrix differs (true, predicted, sheaf, "
                        f"scikit-learn): {diff}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# The CSV edge-case file through a groupby, at every partition size

EDGE_COLUMNS = {"k": "int", "v": "string", "w": "string", "z": "string"}
EDGE_STEPS = [
    {"op": "derive", "as": "key", "expr": "coalesce(w, '<null>')"},
    {"op": "groupby", "by": ["key"],
     "aggs": [{"as": "n", "fn": "count"},
              {"as": "sum_k", "fn": "sum", "column": "k"},
              {"as": "min_v", "fn": "min", "column": "v"},
              {"as": "max_z", "fn": "max", "column": "z"},
              {"as": "nd_v", "fn": "count_distinct", "column": "v"},
              {"as": "mean_k", "fn": "mean", "column": "k"}]},
    {"op": "sort", "by": [{"column": "key"}]},
]
EDGE_OUT = ["key", "n", "sum_k", "min_v", "max_z", "nd_v", "mean_k"]


def edge_expected(records):
    """The groupby done in Python (nulls ignored by min, max,
    count_distinct; strings compared in byte order)."""
    groups = defaultdict(list)
    for k, v, w, z in records:
        groups["<null>" if w is None else w].append((int(k), v, z))
    out = []
    for key in sorted(groups, key=lambda s: s.encode()):
        g = groups[key]
        vs = [v for _, v, _ in g if v is not None]
        zs = [z for _, _, z in g if z is not None]
        ks = [k for k, _, _ in g]
        out.append([key, len(g), sum(ks),
                    min(vs, key=str.encode) if vs else None,
                    max(zs, key=str.encode) if zs else None,
                    len(set(vs)), Approx(sum(ks) / len(ks), REL)])
    return out


def record_starts(data):
    """Byte offsets of the records of an RFC 4180 file (BOM skipped, empty
    lines skipped, LF, CRLF or lone CR ends, text after a closing quote
    appended): the header's first, then each data record's."""
    i = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    n, starts = len(data), []
    while i < n:
        if data[i:i + 2] == b"\r\n":
            i += 2
            continue
        if data[i:i + 1] in (b"\n", b"\r"):
            i += 1
            continue
        starts.append(i)
        field_start, inq = True, False
        while i < n:
            c = data[i:i + 1]
            if inq:
                if c == b'"':
                    if data[i + 1:i + 2] == b'"':
                        i += 2
                        continue
                    inq = False
                i += 1
            elif field_start and c == b'"':
                inq, field_start = True, False
                i += 1
            elif c == b",":
                field_start = True
                i += 1
            elif c == b"\n":
                i += 1
                break
            elif c == b"\r":
                i += 2 if data[i + 1:i + 2] == b"\n" else 1
                break
            else:
                field_start = False
                i += 1
    return starts


def predicted_cuts(data_start, recs, size):
    """The partition starts csv_split makes at 'size': a new partition at
    the first record at or past each multiple of 'size' after data_start
    (the first partition starts at data_start)."""
    cuts, last = [data_start], 0
    for a in recs:
        g = (a - data_start) // size
        if g != last:
            cuts.append(a)
            last = g
    return tuple(cuts)


def test_edge_file_groupby_every_partition_size(sheaf):
    """Every partition size from 1 byte to the file's size gives the
    expected groupby. Sizes that cut the file at the same record starts make
    the same partitions, so one job per distinct set of cuts covers every
    size: the cuts are predicted from the file's record starts, checked
    against each job's tasks (their byte ranges) and, for a sample of the
    other sizes, against the partition count of POST /v1/jobs/validate."""
    data, expected_records = build_edge_file()
    starts = record_starts(data)
    assert len(starts) == len(expected_records) + 1
    data_start = starts[1] if data[starts[1] - 1:starts[1]] == b"\n" else None
    # the header line ends right before the first record (no empty lines)
    assert data_start is not None
    recs = starts[1:]
    by_cuts = {}
    for size in range(1, len(data) + 1):
        by_cuts.setdefault(predicted_cuts(data_start, recs, size), size)
    # SHEAF_IT_EDGE_JOBS=N: only N of the partitionings (a quick local run;
    # the default, every one, is the test)
    sample_n = int(os.environ.get("SHEAF_IT_EDGE_JOBS", "0") or 0)
    if 0 < sample_n < len(by_cuts):
        keep = random.Random(5).sample(sorted(by_cuts), sample_n)
        by_cuts = {c: by_cuts[c] for c in keep}
    rel = f"edge-gb-{uuid.uuid4().hex[:8]}/edge.csv"
    sheaf.write_data(rel, data)
    want = edge_expected(expected_records)

    def spec(size):
        return {"name": unique_name(f"edge-gb-{size}"),
                "input": {"path": rel, "format": "csv",
                          "columns": EDGE_COLUMNS, "partition_size": size},
                "steps": EDGE_STEPS, "output": {"format": "csv"}}

    # A sample of all sizes: the plan's partition count is the predicted one.
    rnd = random.Random(11)
    sample = sorted(set(rnd.sample(range(1, len(data) + 1), 60))
                    | {1, 2, len(data) - 1, len(data)})
    for size in sample:
        r = sheaf.api("POST", "/v1/jobs/validate", spec(size))
        assert r.status == 200, f"validate at size {size}: {r!r}"
        assert r.body["partitions"] == len(
            predicted_cuts(data_start, recs, size)), (size, r.body)

    submitted = {}
    for cuts, size in by_cuts.items():
        r = sheaf.api("POST", "/v1/jobs", spec(size))
        assert r.status == 201, (f"partition_size {size}: {r!r}\nspec: "
                                 f"{json.dumps(spec(size))}")
        submitted[size] = (cuts, r.body["id"])
    failures = []
    for size, (cuts, jid) in sorted(submitted.items()):
        job = sheaf.wait(jid, timeout=JOB_TIMEOUT)
        if job["status"] != "succeeded":
            failures.append(f"size {size}: {job['status']}: {job['error']}")
            continue
        tasks = sheaf.api("GET", f"/v1/jobs/{jid}/tasks").body
        tl = tasks.get("tasks", tasks) if isinstance(tasks, dict) else tasks
        got_cuts = tuple(sorted(t["byte_start"] for t in tl
                                if t.get("stage", 0) == 0
                                and t.get("byte_start") is not None))
        if got_cuts != cuts:
            failures.append(f"size {size}: partitions start at {got_cuts}, "
                            f"predicted {cuts}")
            continue
        try:
            check_output(sheaf.result(jid), EDGE_OUT, want,
                         f"partition_size={size}")
        except AssertionError as e:
            failures.append(str(e)[:1500])
    assert not failures, (
        f"{len(failures)} of {len(submitted)} partitionings (of sizes "
        f"1..{len(data)}) failed:\n" + "\n".join(failures[:10]))
