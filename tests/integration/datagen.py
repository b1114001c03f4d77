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
