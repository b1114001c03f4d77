"""
test_expr.py - expression semantics (SPEC section 2), each case one small
job: derive a column, compare it with the value Python computes under the
rules the SPEC fixes (null propagates; a comparison with null is false;
'/' divides as floats; x / 0 is null; '%' takes the dividend's sign; int()
truncates; round() rounds half away from zero; substr and length count
characters).
"""

import math
import uuid

import pytest

from harness import Approx, check_output, unique_name

HEADER = ["id", "a", "b", "x", "s", "n", "odd name"]
COLUMNS = {"id": "int", "a": "int", "b": "int", "x": "float", "s": "string",
           "n": "int", "odd name": "int"}
# s: None is null (an unquoted empty field), '' the quoted empty string
ROWS = [
    dict(id=1, a=7, b=2, x=2.5, s="héllo wörld", n=None, odd=10),
    dict(id=2, a=-7, b=3, x=-2.5, s="abc", n=None, odd=20),
    dict(id=3, a=7, b=-3, x=0.5, s="", n=None, odd=30),
    dict(id=4, a=6, b=0, x=-0.5, s="日本語テキスト", n=None, odd=40),
    dict(id=5, a=0, b=4, x=1.5, s=None, n=None, odd=50),
]


def file_text():
    lines = [",".join(HEADER)]
    for r in ROWS:
        s = "" if r["s"] is None else (r["s"] or '""')
        lines.append(f"{r['id']},{r['a']},{r['b']},{r['x']!r},{s},,"
                     f"{r['odd']}")
    return "\n".join(lines) + "\n"


def div(a, b):
    return None if a is None or b is None or b == 0 else a / b


def cmod(a, b):  # C's %: the sign of the dividend
    if a is None or b is None or b == 0:
        return None
    q = abs(a) // abs(b)
    return a - b * (q if (a >= 0) == (b >= 0) else -q)


def round_away(x):
    return math.copysign(math.floor(abs(x) + 0.5), x)


def cmp(a, op, b):
    if a is None or b is None:
        return False
    return {"<": a < b, ">": a > b, "==": a == b, "!=": a != b}[op]


def nn(f):
    """f applied unless an argument is null (null propagates)."""
    return lambda *args: None if any(v is None for v in args) else f(*args)


DERIVE = [
    ("a / b", lambda r: div(r["a"], r["b"])),
    ("7 / 2", lambda r: 3.5),
    ("a / 0", lambda r: None),
    ("x / 0", lambda r: None),
    ("a % b", lambda r: cmod(r["a"], r["b"])),
    ("int(x)", lambda r: int(r["x"])),
    ("round(x)", lambda r: round_away(r["x"])),
    ("floor(x)", lambda r: float(math.floor(r["x"]))),
    ("ceil(x)", lambda r: float(math.ceil(r["x"]))),
    ("abs(a - 10)", lambda r: abs(r["a"] - 10)),
    ("-a + 1", lambda r: -r["a"] + 1),
    ("a + b * 2", lambda r: r["a"] + r["b"] * 2),
    ("(a + b) * 2", lambda r: (r["a"] + r["b"]) * 2),
    ("a - b - 1", lambda r: r["a"] - r["b"] - 1),
    ("x * 2 + 1", lambda r: r["x"] * 2 + 1),
    ("float(a) / 4", lambda r: r["a"] / 4),
    ("ln(exp(x))", lambda r: Approx(r["x"])),
    ("sqrt(abs(x))", lambda r: Approx(math.sqrt(abs(r["x"])))),
    ('"odd name" + 1', lambda r: r["odd"] + 1),
    ("length(s)", lambda r: nn(len)(r["s"])),
    ("substr(s, 2, 3)", lambda r: nn(lambda s: s[1:4])(r["s"])),
    ("concat(s, '-', str(a))", lambda r: nn(lambda s: f"{s}-{r['a']}")(
        r["s"])),
    ("str(x)", lambda r: repr(r["x"])),
    ("lower(concat('AbC', str(a)))", lambda r: f"abc{r['a']}"),
    ("upper('abc')", lambda r: "ABC"),
    ("a + n", lambda r: None),
    ("n > 0", lambda r: False),
    ("not (n > 0)", lambda r: True),
    ("n != 1", lambda r: False),
    ("n == n", lambda r: False),
    ("coalesce(n, a)", lambda r: r["a"]),
    ("coalesce(null, a)", lambda r: r["a"]),
    ("coalesce(s, 'none')", lambda r: "none" if r["s"] is None else r["s"]),
    ("is_null(s)", lambda r: r["s"] is None),
    ("is_null(n)", lambda r: True),
    ("if(a > 0, 'pos', 'nonpos')", lambda r: "pos" if r["a"] > 0
     else "nonpos"),
    ("if(n > 0, 1, 2)", lambda r: 2),
    ("contains(s, 'll')", lambda r: nn(lambda s: "ll" in s)(r["s"])),
    ("starts_with(s, 'a')", lambda r: nn(lambda s: s.startswith("a"))(
        r["s"])),
    ("ends_with(s, 'ト')", lambda r: nn(lambda s: s.endswith("ト"))(r["s"])),
    ("s < 'b'", lambda r: cmp(r["s"], "<", "b")),
    ("s == ''", lambda r: cmp(r["s"], "==", "")),
    ("a > 0 and b > 0", lambda r: r["a"] > 0 and r["b"] > 0),
    ("a > 0 or b > 0", lambda r: r["a"] > 0 or r["b"] > 0),
    ("a == 7 and not (b < 0)", lambda r: r["a"] == 7 and not r["b"] < 0),
    ("true and false", lambda r: False),
]

FILTER = [
    ("n > 0", []),
    ("not (n > 0)", [1, 2, 3, 4, 5]),
    ("is_null(s)", [5]),
    ("s == ''", [3]),
    ("a % b == 1", [1, 3]),
    ("x / 0 == 1 or id == 2", [2]),
    ("a / b > 2", [1]),
    ("starts_with(s, 'a') or contains(s, '本')", [2, 4]),
]


@pytest.fixture(scope="module")
def expr_jobs(session_server):
    rel = f"expr-{uuid.uuid4().hex[:8]}.csv"
    session_server.write_data(rel, file_text())
    inp = {"path": rel, "format": "csv", "columns": COLUMNS}
    out = {}
    for expr, _ in DERIVE:
        spec = {"name": unique_name("expr"), "input": inp,
                "steps": [{"op": "derive", "as": "v", "expr": expr},
                          {"op": "select", "columns": ["id", "v"]}],
                "output": {"format": "csv"}}
        out[("derive", expr)] = session_server.api("POST", "/v1/jobs", spec)
    for where, _ in FILTER:
        spec = {"name": unique_name("filter"), "input": inp,
                "steps": [{"op": "filter", "where": where},
                          {"op": "select", "columns": ["id"]}],
                "output": {"format": "csv"}}
        out[("filter", where)] = session_server.api("POST", "/v1/jobs", spec)
    return out


def finish(sheaf, r, what):
    assert r.status == 201, f"{what}: submit answered {r!r}"
    job = sheaf.wait(r.body["id"])
    assert job["status"] == "succeeded", f"{what}: {job['error']!r}"
    return sheaf.result(r.body["id"])


@pytest.mark.parametrize("case", DERIVE, ids=[c[0] for c in DERIVE])
def test_derive(sheaf, expr_jobs, case):
    expr, fn = case
    body = finish(sheaf, expr_jobs[("derive", expr)], expr)
    check_output(body, ["id", "v"], [[r["id"], fn(r)] for r in ROWS], expr)


@pytest.mark.parametrize("case", FILTER, ids=[c[0] for c in FILTER])
def test_filter(sheaf, expr_jobs, case):
    where, ids = case
    body = finish(sheaf, expr_jobs[("filter", where)], where)
    check_output(body, ["id"], [[i] for i in ids], where)
