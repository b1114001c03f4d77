"""
datagen.py - deterministic test inputs for the integration tests, written
with explicit control of quoting and line ends, and the Python oracle's view
of them.
"""

import random

WORDS = ["alpha", "beta", "gamma", "délta", "日本語", "naïve", "smörgåsbord",
         "x", "Zeta", "🙂ok", "quote\"d", "comma,sep", "line\nbreak",
         "crlf\r\nbreak", "tab\there", "it's", "  spaced  ", "ÆØÅ", "0042",
         "1e3x", "Straße", "ελληνικά"]


def quote(s):
    return '"' + s.replace('"', '""') + '"'


def cell(value, rnd=None, force_quote=False):
    """CSV text of one field. None -> unquoted empty (null); '' -> "";
    strings that need it are quoted, others sometimes (when rnd says so)."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if (force_quote or s == "" or any(c in s for c in ',"\r\n')
            or (rnd is not None and rnd.random() < 0.15)):
        return quote(s)
    return s


def mixed_lines(records, rnd, bom=False, final_newline=True):
    """Join record texts with LF or CRLF at random; -> bytes."""
    out = []
    for i, rec in enumerate(records):
        out.append(rec)
        if i < len(records) - 1 or final_newline:
            out.append("\r\n" if rnd.random() < 0.4 else "\n")
    data = "".join(out).encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def e2e_table(n_rows, seed):
    """Rows (id, a, x, s, flag) with nulls, quoted empties, odd strings.
    -> (header, rows as Python values, file bytes)."""
    rnd = random.Random(seed)
    header = ["id", "a", "x", "s", "flag"]
    rows = []
    for i in range(n_rows):
        a = None if rnd.random() < 0.1 else rnd.choice(
            [rnd.randint(-50, 50), rnd.randint(-10**12, 10**12), 10**15, 0])
        if 1000 <= i < 1200:
            x = 999.5  # a run of rows the filter drops: empty partitions
        elif rnd.random() < 0.08:
            x = None
        else:
            x = rnd.choice([round(rnd.uniform(-1000, 1000), 3),
                            rnd.uniform(-1, 1), 2.5e-3, 1e16, -0.5, 3.0])
        r = rnd.random()
        if r < 0.05:
            s = None
        elif r < 0.08:
            s = ""
        else:
            s = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 4)))
        flag = rnd.random() < 0.3
        rows.append([i, a, x, s, flag])
    recs = [",".join(header)]
    for i, a, x, s, flag in rows:
        xs = None if x is None else repr(x)
        recs.append(",".join([cell(i), cell(a), cell(xs), cell(s, rnd),
                              "true" if flag else "false"]))
    return header, rows, mixed_lines(recs, rnd)


def py_cmp(a, op, b):
    """A comparison as sheaf's expressions do it: with null it is false."""
    if a is None or b is None:
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
            "==": a == b, "!=": a != b}[op]


def e2e_expected(rows):
    """The oracle of E2E_STEPS over e2e_table rows."""
    out = []
    for i, a, x, s, flag in rows:
        if not ((py_cmp(a, ">=", 10) or flag) and py_cmp(x, "<", 750.0)):
            continue
        a2 = None if a is None else a * 3 + 1
        ratio = None if x is None else x / 4
        slen = None if s is None else len(s)
        head = None if s is None else s[1:4]
        big = py_cmp(x, ">", 500.0)
        out.append([i, s, x, a2, ratio, slen, head, big, flag])
    return out


E2E_STEPS = [
    {"op": "filter", "where": "(a >= 10 or flag) and x < 750.0"},
    {"op": "derive", "as": "a2", "expr": "a * 3 + 1"},
    {"op": "derive", "as": "ratio", "expr": "x / 4"},
    {"op": "derive", "as": "slen", "expr": "length(s)"},
    {"op": "derive", "as": "head", "expr": "substr(s, 2, 3)"},
    {"op": "derive", "as": "big", "expr": "x > 500.0"},
    {"op": "select", "columns": ["id", "s", "x", "a2", "ratio", "slen",
                                 "head", "big", "flag"]},
]
E2E_HEADER = ["id", "s", "x", "a2", "ratio", "slen", "head", "big", "flag"]
E2E_COLUMNS = {"flag": "bool"}


def big_rows(n, start=0):
    """Lines of the big input (id,g,val,pad) for rows start..start+n-1."""
    pads = ["lorem", "ipsum dolor", "sit amet consectetur", "adipiscing",
            "elit sed do eiusmod tempor", "incididunt", "ut labore et"]
    return [f"{i},g{i % 37:02d},{(i * 7919) % 10007},{pads[i % 7]}\n"
            for i in range(start, start + n)]


BIG_HEADER = "id,g,val,pad\n"
BIG_STEPS = [
    {"op": "filter", "where": "val < 100"},
    {"op": "derive", "as": "w", "expr": "val * 3 - id"},
    {"op": "select", "columns": ["id", "g", "w"]},
]


def big_expected(n):
    out = []
    for i in range(n):
        val = (i * 7919) % 10007
        if val < 100:
            out.append([i, f"g{i % 37:02d}", val * 3 - i])
    return out


def write_big(path, target_bytes):
    """Write the big input of about 'target_bytes'; -> its row count."""
    n = 0
    with open(path, "w", newline="") as f:
        f.write(BIG_HEADER)
        size = len(BIG_HEADER)
        while size < target_bytes:
            chunk = big_rows(20000, n)
            text = "".join(chunk)
            f.write(text)
            size += len(text)
            n += len(chunk)
    return n


# ==========================================================================
# Combine steps, formats and bad data (test_steps.py, test_formats.py,
# test_baddata.py): inputs, a Python oracle of every step of SPEC section 2,
# and the comparison of sheaf's output with it.

import csv as _csv
import io as _io
import json as _json
import math as _math
import re as _re
import struct as _struct
from fractions import Fraction as _Fraction

STEP_KEYS = ["alpha", "beta", "Gamma", "délta", "日本", "comma,sep",
             'quo"te', "z", "A", "a b", "0042"]
STEP_SWORDS = ["pear", "Apple", "apple", "äpfel", "zebra", "Zulu", "123",
               "mixed Case", "日本語", "🙂", "tab\there", "x,y", 'say "hi"',
               "two\nlines", "~tilde", " lead"]


def write_csv(header, rows, rnd=None, crlf=0.0):
    """CSV bytes of 'rows' (Python values: None is an unquoted empty field,
    floats are written with repr, bools as true/false); with 'rnd', some
    fields are quoted that need not be and some records end in CRLF."""
    def text(v):
        if v is None:
            return None
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, float):
            return repr(v)
        return str(v)
    recs = [",".join(header)]
    for row in rows:
        # only strings are sometimes quoted when they need not be
        recs.append(",".join(cell(text(v), rnd if isinstance(v, str)
                                  else None) for v in row))
    if rnd is None:
        return ("\n".join(recs) + "\n").encode("utf-8")
    out = []
    for rec in recs:
        out.append(rec)
        out.append("\r\n" if rnd.random() < crlf else "\n")
    return "".join(out).encode("utf-8")


STEP_HEADER = ["id", "k", "g", "i", "f", "m", "s", "b"]
STEP_TYPES = {"id": "int", "k": "string", "g": "int", "i": "int",
              "f": "float", "m": "float", "s": "string", "b": "bool"}


def steps_table(n, seed):
    """The table of the step tests: id (0..n-1, input order), k (string key,
    ~6 % null, with a comma, a quote, non-ASCII), g (int 0..4, ~5 % null),
    i (int, ~10 % null, a few above 2^53 so that a float accumulator loses
    bits), f (float, ~10 % null, mixed signs and magnitudes), m (1e9 plus
    noise: a naive sum-of-squares variance cancels catastrophically),
    s (odd strings, ~5 % null), b (bool). -> (header, rows, bytes)."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        k = None if rnd.random() < 0.06 else rnd.choice(STEP_KEYS)
        g = None if rnd.random() < 0.05 else rnd.randint(0, 4)
        r = rnd.random()
        if r < 0.10:
            iv = None
        elif r < 0.13:
            iv = 2 ** 53 + rnd.randrange(1, 10 ** 6, 2)
        else:
            iv = rnd.randint(-10 ** 6, 10 ** 6)
        r = rnd.random()
        if r < 0.10:
            f = None
        elif r < 0.55:
            f = round(rnd.uniform(-1000, 1000), 3)
        elif r < 0.85:
            f = rnd.uniform(-1, 1)
        else:
            f = rnd.choice([0.5, -2.25, 1e-7, 12345.678, 3.0])
        m = 1e9 + rnd.random()
        s = None if rnd.random() < 0.05 else rnd.choice(STEP_SWORDS)
        rows.append([i, k, g, iv, f, m, s, rnd.random() < 0.4])
    return STEP_HEADER, rows, write_csv(STEP_HEADER, rows, rnd, crlf=0.3)


DOC_WORDS = ["the", "data", "Data", "DATA", "sheaf", "dask", "x2", "42",
             "naïve", "café", "straße", "Merge", "sort", "join", "hash",
             "bucket", "spill", "zz9", "Über", "ok", "a1b2c3"]
DOC_SEPS = [" ", " ", " ", ", ", "-", "_", "!", " ... ", "\t", "é", "'",
            "\n", "日本"]


def docs_table(n, seed):
    """(id, cat, t): t a text of Zipf-like words (so word counts differ) and
    odd separators; ~5 % null texts and some without any token.
    -> (header, rows, bytes)."""
    rnd = random.Random(seed)
    weights = [1.0 / (r + 1) for r in range(len(DOC_WORDS))]
    rows = []
    for i in range(n):
        r = rnd.random()
        if r < 0.05:
            t = None
        elif r < 0.09:
            t = rnd.choice(["!!!", "日本語", "— …", "é", "   ", "_-_"])
        else:
            parts = []
            for _ in range(rnd.randint(1, 9)):
                parts.append(rnd.choices(DOC_WORDS, weights)[0])
                parts.append(rnd.choice(DOC_SEPS))
            t = "".join(parts[:-1] if rnd.random() < 0.5 else parts)
        rows.append([i, rnd.choice(["news", "blog", "paper"]), t])
    header = ["id", "cat", "t"]
    return header, rows, write_csv(header, rows, rnd, crlf=0.2)


# --------------------------------------------------------------------------
# The oracle


class Near:
    """A computed float: equal to 'value' to 'rel' relative (SPEC: floating
    aggregates agree with an exact computation to 1e-9 relative)."""

    def __init__(self, value, rel=1e-9):
        self.value, self.rel = value, rel

    def __repr__(self):
        return f"~{self.value!r}"

    def ok(self, got):
        return (got == self.value
                or abs(got - self.value) <= max(self.rel * abs(self.value),
                                                1e-12))


class Within:
    """An int estimate (approx_count_distinct) within 'rel' of 'value'
    (and within 'slack' absolute, for small counts)."""

    def __init__(self, value, rel=0.02, slack=1):
        self.value, self.rel, self.slack = value, rel, slack

    def __repr__(self):
        return f"~{self.value!r}±{self.rel:.0%}"

    def ok(self, got):
        return abs(got - self.value) <= max(self.rel * self.value, self.slack)


def tokens(s, lowercase=True):
    """tokenize's tokens of 's' (SPEC 2): runs of [a-z0-9] after ASCII
    lowercasing, or of [A-Za-z0-9] with lowercase false; None: none."""
    if s is None:
        return []
    if lowercase:
        s = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)
        return _re.findall(r"[a-z0-9]+", s)
    return _re.findall(r"[A-Za-z0-9]+", s)


def _exact(v):
    return _Fraction(v)


def agg_value(fn, values, with_column=True):
    """The exact result of aggregate 'fn' over 'values' (one group's values
    of its column, nulls included). count without a column counts rows;
    with one, non-null values. sum/mean/min/max/var/std of no values are
    null; var/std of one value are null (sample, n-1)."""
    if fn == "count":
        return len(values) if not with_column else sum(
            v is not None for v in values)
    vals = [v for v in values if v is not None]
    if fn in ("count_distinct", "approx_count_distinct"):
        n = len(set(vals))
        return n if fn == "count_distinct" else Within(n)
    if not vals:
        return None
    if fn == "min":
        return min(vals)
    if fn == "max":
        return max(vals)
    is_int = all(isinstance(v, int) and not isinstance(v, bool)
                 for v in vals)
    total = sum(_exact(v) for v in vals)
    if fn == "sum":
        return int(total) if is_int else Near(float(total))
    mean = total / len(vals)
    if fn == "mean":
        return Near(float(mean))
    if len(vals) < 2:
        return None
    var = sum((_exact(v) - mean) ** 2 for v in vals) / (len(vals) - 1)
    if fn == "var":
        return Near(float(var))
    if fn == "std":
        return Near(_math.sqrt(var))
    raise ValueError(fn)


def groupby_oracle(header, rows, by, aggs):
    """groupby: one row per distinct key tuple (null is a key value of its
    own): the keys, then each aggregate. -> list of rows (order: first
    appearance)."""
    idx = {c: j for j, c in enumerate(header)}
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[idx[c]] for c in by), []).append(r)
    out = []
    for key, grp in groups.items():
        row = list(key)
        for a in aggs:
            col = a.get("column")
            vals = [r[idx[col]] for r in grp] if col else [None] * len(grp)
            row.append(agg_value(a["fn"], vals, col is not None))
        out.append(row)
    return out


def agg_header(by, aggs):
    return list(by) + [a["as"] for a in aggs]


def sort_oracle(header, rows, by):
    """A stable sort by 'by' ([{column, desc?}]), nulls last in both
    directions."""
    idx = {c: j for j, c in enumerate(header)}
    rows = list(rows)
    for key in reversed(by):
        j = idx[key["column"]]
        nonnull = [r for r in rows if r[j] is not None]
        nulls = [r for r in rows if r[j] is None]
        rows = sorted(nonnull, key=lambda r: r[j],
                      reverse=bool(key.get("desc"))) + nulls
    return rows


def project(header, rows, cols):
    idx = [header.index(c) for c in cols]
    return [[r[j] for j in idx] for r in rows]


# --------------------------------------------------------------------------
# sheaf's output, parsed


def parse_csv_result(body):
    """sheaf's CSV output -> (header, rows) with each field a str, or None
    for null (an unquoted empty field). Strict RFC 4180 parsing."""
    from harness import parse_output
    assert isinstance(body, bytes), body
    parsed = parse_output(body.decode("utf-8"))
    assert parsed, "empty output (not even a header)"
    header = [v for v, _ in parsed[0]]
    rows = [[None if (v == "" and not q) else v for v, q in r]
            for r in parsed[1:]]
    return header, rows


def parse_csv_fast(body):
    """As parse_csv_result, with the csv module (for large outputs whose
    fields are never quoted-empty)."""
    text = body.decode("utf-8")
    recs = list(_csv.reader(_io.StringIO(text, newline="")))
    return recs[0], [[None if v == "" else v for v in r] for r in recs[1:]]


def parse_jsonl_result(body):
    """sheaf's JSONL output -> list of (key order, dict)."""
    text = body.decode("utf-8")
    out = []
    for n, line in enumerate(text.split("\n")):
        line = line.rstrip("\r")
        if not line:
            assert n == len(text.split("\n")) - 1, (
                f"empty line {n + 1} inside JSONL output")
            continue
        pairs = _json.loads(line, object_pairs_hook=list)
        out.append(([k for k, _ in pairs], dict(pairs)))
    return out


def match_value(got, want, where):
    """Compare one output value with the oracle's. 'got' is a CSV field
    (str, or None for null) or a JSON value (from parse_jsonl_result);
    'want' is None, bool, int, str, float (exact), Near or Within."""
    is_json = not isinstance(got, str) and got is not None
    if want is None:
        assert got is None, f"{where}: expected null, got {got!r}"
        return
    assert got is not None, f"{where}: expected {want!r}, got null"
    if isinstance(want, bool):
        ok = got is want if is_json else got == ("true" if want else "false")
        assert ok, f"{where}: expected {want}, got {got!r}"
    elif isinstance(want, int):
        if is_json:
            assert type(got) is int and got == want, (
                f"{where}: expected int {want}, got {got!r}")
        else:
            assert got == str(want), (
                f"{where}: expected int {want}, got {got!r}")
    elif isinstance(want, str):
        assert got == want, f"{where}: expected {want!r}, got {got!r}"
    elif isinstance(want, (float, Near, Within)):
        if is_json:
            assert type(got) in (int, float), (
                f"{where}: expected a number {want!r}, got {got!r}")
            val = got
        else:
            try:
                val = int(got) if isinstance(want, Within) else float(got)
            except ValueError:
                raise AssertionError(f"{where}: expected {want!r}, got "
                                     f"{got!r}") from None
        if isinstance(want, float):
            assert val == want, f"{where}: expected float {want!r}, got " \
                                f"{got!r}"
        else:
            assert want.ok(val), f"{where}: expected {want!r}, got {got!r}"
    else:
        raise TypeError(f"{where}: cannot compare with {want!r}")


def check_rows(got_header, got_rows, header, rows, ordered=True, keys=None,
               label="result"):
    """sheaf's rows (from parse_csv_result, or lists of JSON values) against
    the oracle's. ordered: row by row. Otherwise the rows are matched by
    the columns 'keys' (default: all, which must then be exact: strings,
    ints, bools, nulls) as multisets."""
    assert list(got_header) == list(header), (
        f"{label}: header {list(got_header)!r}, expected {list(header)!r}")
    for i, r in enumerate(got_rows):
        assert len(r) == len(header), (
            f"{label}: row {i} has {len(r)} fields: {r!r}")
    if ordered:
        pairs = list(zip(got_rows, rows))
    else:
        kidx = ([header.index(k) for k in keys] if keys is not None
                else list(range(len(header))))

        def canon(v):
            if v is None:
                return None
            if isinstance(v, bool):
                return "true" if v else "false"
            return str(v)

        def gkey(r):
            return tuple(canon(r[j]) for j in kidx)
        want = {}
        for r in rows:
            want.setdefault(gkey(r), []).append(r)
        pairs, extra = [], []
        for r in got_rows:
            lst = want.get(gkey(r))
            if lst:
                pairs.append((r, lst.pop(0)))
            else:
                extra.append(r)
        missing = [r for lst in want.values() for r in lst]
        assert not extra and not missing, (
            f"{label}: {len(got_rows)} rows, expected {len(rows)}; rows "
            f"not expected (first 5): {extra[:5]!r}; expected rows missing "
            f"(first 5): {missing[:5]!r}")
    for i, (g, w) in enumerate(pairs):
        for c, name in enumerate(header):
            match_value(g[c], w[c], f"{label}: row {i} column {name!r} "
                        f"(got row {g!r}, expected {w!r})")
    assert len(got_rows) == len(rows), (
        f"{label}: {len(got_rows)} rows, expected {len(rows)}; first "
        f"extra/missing: "
        f"{(got_rows[len(rows)] if len(got_rows) > len(rows) else rows[len(got_rows)])!r}")


# --------------------------------------------------------------------------
# Naive Bayes: scikit-learn's HashingVectorizer(alternate_sign=False,
# norm=None) and MultinomialNB(alpha=1), in plain Python.


def murmur3_32(data, seed=0):
    """MurmurHash3_x86_32 of 'data' (bytes) as an unsigned int."""
    c1, c2 = 0xcc9e2d51, 0x1b873593
    h = seed & 0xffffffff
    n = len(data)
    nblocks = n // 4
    for (k,) in _struct.iter_unpack("<I", data[:nblocks * 4]):
        k = (k * c1) & 0xffffffff
        k = ((k << 15) | (k >> 17)) & 0xffffffff
        k = (k * c2) & 0xffffffff
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xffffffff
        h = (h * 5 + 0xe6546b64) & 0xffffffff
    tail = data[nblocks * 4:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & 0xffffffff
        k = ((k << 15) | (k >> 17)) & 0xffffffff
        k = (k * c2) & 0xffffffff
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85ebca6b) & 0xffffffff
    h ^= h >> 13
    h = (h * 0xc2b2ae35) & 0xffffffff
    h ^= h >> 16
    return h


def nb_bucket(token, features):
    h = murmur3_32(token.encode("utf-8"))
    if h >= 2 ** 31:
        h -= 2 ** 32
    return abs(h) % features


def nb_vector(text, features):
    vec = {}
    for t in tokens(text):
        b = nb_bucket(t, features)
        vec[b] = vec.get(b, 0) + 1
    return vec


def nb_train(docs, features):
    """docs: (label, text) pairs -> a model for nb_predict."""
    classes = sorted({lab for lab, _ in docs},
                     key=lambda s: s.encode("utf-8"))
    ndocs = {c: 0 for c in classes}
    counts = {c: {} for c in classes}
    totals = {c: 0 for c in classes}
    for lab, text in docs:
        ndocs[lab] += 1
        for b, n in nb_vector(text, features).items():
            counts[lab][b] = counts[lab].get(b, 0) + n
            totals[lab] += n
    return {"features": features, "classes": classes, "ndocs": ndocs,
            "counts": counts, "totals": totals, "n": len(docs)}


def nb_scores(model, text):
    f = model["features"]
    vec = nb_vector(text, f)
    out = []
    for c in model["classes"]:
        s = _math.log(model["ndocs"][c] / model["n"])
        den = model["totals"][c] + f
        for b, n in vec.items():
            s += n * _math.log((model["counts"][c].get(b, 0) + 1) / den)
        out.append(s)
    return out


def nb_predict(model, text):
    """-> (predicted class, margin to the runner-up)."""
    sc = nb_scores(model, text)
    best = max(range(len(sc)), key=lambda j: (sc[j], -j))
    others = [s for j, s in enumerate(sc) if j != best]
    margin = sc[best] - max(others) if others else float("inf")
    return model["classes"][best], margin


NB_VOCAB = {
    "sports": ["match", "goal", "team", "score", "coach", "league", "win",
               "Ball", "season"],
    "tech": ["code", "data", "cloud", "chip", "GPU", "kernel", "sheaf",
             "python", "compile"],
    "food": ["bread", "cheese", "soup", "bake", "spice", "Café", "recipe",
             "salt", "oven"],
}
NB_COMMON = ["the", "a", "and", "of", "new", "today", "big", "42", "x9"]


def nb_table(n, seed):
    """(id, label, text) documents of three classes with shared words and
    some cross-talk (so the accuracy is below 1). -> (header, rows, bytes)."""
    rnd = random.Random(seed)
    labels = sorted(NB_VOCAB)
    rows = []
    for i in range(n):
        lab = rnd.choice(labels)
        words = []
        for _ in range(rnd.randint(3, 12)):
            r = rnd.random()
            if r < 0.45:
                words.append(rnd.choice(NB_VOCAB[lab]))
            elif r < 0.65:
                words.append(rnd.choice(NB_VOCAB[rnd.choice(labels)]))
            else:
                words.append(rnd.choice(NB_COMMON))
        text = "".join(w + rnd.choice([" ", " ", ", ", "! ", "-"])
                       for w in words).strip()
        rows.append([i, lab, text])
    header = ["id", "label", "text"]
    return header, rows, write_csv(header, rows, rnd)
