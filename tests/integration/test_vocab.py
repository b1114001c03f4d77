"""
test_vocab.py - issue 11's vocabulary through the real service: the date
and timestamp column types (inferred from ISO 8601 text, declared in
input.columns, written as ISO 8601), the date functions, sort, groupby and
min/max on them, the regular expressions (PCRE2: a bad pattern is a 400 at
submit, a pathological one fails the job with the match limit's message)
and the new string functions.

Every answer is checked against values computed here in Python by hand,
and, when DuckDB's node package is installed (../shared/bench/setup.sh),
against DuckDB's answer to the same query on the same data. DuckDB gets the
same rows with the timestamps written in UTC (its TIMESTAMP cast drops an
offset; sheaf converts to UTC), and its regexp_replace gets the 'g' option
(sheaf replaces every match; DuckDB the first by default). Values are
compared, not texts: a date and a timestamp at its midnight are equal,
"2024-01-31T12:00:00Z" (sheaf) and "2024-01-31 12:00:00" (DuckDB) too.
"""

import calendar
import csv
import io
import json
import random
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness import duckdb_missing, duckdb_query_csv, unique_name

UTC = timezone.utc

# ---------------------------------------------------------------------------
# The data: dates across 1970 and leap days, timestamps written with and
# without offsets, strings with UTF-8.

STRINGS = ["  alpha-12  ", "béta-7", "gamma", "δelta-003-x", "zz-99-zz",
           "x", "ümlaut-5-ä", "a-b-c-d", "  ", "42"]


def make_rows(n=60, seed=11):
    rng = random.Random(seed)
    rows = []
    fixed = [date(2024, 2, 29), date(1969, 12, 31), date(1970, 1, 1),
             date(2021, 1, 1), date(2024, 12, 30), date(2023, 1, 31),
             date(1900, 3, 1), date(2000, 2, 29)]
    for i in range(1, n + 1):
        if i <= len(fixed):
            d = fixed[i - 1]
        else:
            d = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 30000))
        us = rng.randrange(-10**15, 2 * 10**15)
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
        if i % 5 == 0:
            ts = ts.replace(microsecond=0)
        rows.append(dict(id=i, d=None if i == 9 else d,
                         ts=None if i == 10 else ts,
                         s=None if i == 11 else STRINGS[i % len(STRINGS)]))
    return rows


ROWS = make_rows()


def ts_text(ts, style):
    """A timestamp written in one of several ISO 8601 styles (same instant)."""
    if style == 0:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if style == 1:
        return ts.strftime("%Y-%m-%d %H:%M:%S.%f")
    if style == 2:  # +05:30
        local = ts.astimezone(timezone(timedelta(hours=5, minutes=30)))
        return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+05:30"
    local = ts.astimezone(timezone(timedelta(hours=-3)))  # -0300
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "-0300"


def q(v):
    if v is None:
        return ""
    if v == "" or any(c in v for c in ',"\n '):
        return '"' + v.replace('"', '""') + '"'
    return v


def sheaf_csv():
    out = ["id,d,ts,s"]
    for r in ROWS:
        out.append(",".join([
            str(r["id"]), "" if r["d"] is None else r["d"].isoformat(),
            "" if r["ts"] is None else ts_text(r["ts"], r["id"] % 4),
            q(r["s"])]))
    return "\n".join(out) + "\n"


def duckdb_csv():
    out = ["id,d,ts,s"]
    for r in ROWS:
        out.append(",".join([
            str(r["id"]), "" if r["d"] is None else r["d"].isoformat(),
            "" if r["ts"] is None else r["ts"].strftime("%Y-%m-%d %H:%M:%S.%f"),
            q(r["s"])]))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Reference semantics in Python (README, "Dates and timestamps")


def nn(f):
    return lambda *a: None if any(x is None for x in a) else f(*a)


def days(d):
    return (d - date(1970, 1, 1)).days


def add_months(t, n):
    is_dt = isinstance(t, datetime)
    m0 = t.year * 12 + t.month - 1 + n
    y, m = divmod(m0, 12)
    day = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=day) if is_dt else \
        date(y, m + 1, day)


def floor_div(a, b):
    return a // b


def us_of(ts):
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def diff_hours(a, b):
    return floor_div(us_of(b), 3600 * 10**6) - floor_div(us_of(a),
                                                          3600 * 10**6)


def trunc_week(ts):
    d = ts.date() - timedelta(days=ts.weekday())
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


Y2K = datetime(2000, 1, 1, tzinfo=UTC)

# (sheaf expression, DuckDB SQL, Python reference on a row)
CASES = [
    ("year(d)", "year(d)", lambda r: nn(lambda d: d.year)(r["d"])),
    ("month(d)", "month(d)", lambda r: nn(lambda d: d.month)(r["d"])),
    ("day(d)", "day(d)", lambda r: nn(lambda d: d.day)(r["d"])),
    ("dow(d)", "dayofweek(d)",
     lambda r: nn(lambda d: d.isoweekday() % 7)(r["d"])),
    ("doy(d)", "dayofyear(d)",
     lambda r: nn(lambda d: d.timetuple().tm_yday)(r["d"])),
    ("week(d)", "week(d)", lambda r: nn(lambda d: d.isocalendar()[1])(r["d"])),
    ("hour(ts)", "hour(ts)", lambda r: nn(lambda t: t.hour)(r["ts"])),
    ("minute(ts)", "minute(ts)", lambda r: nn(lambda t: t.minute)(r["ts"])),
    ("second(ts)", "second(ts)", lambda r: nn(lambda t: t.second)(r["ts"])),
    ("year(ts)", "year(ts)", lambda r: nn(lambda t: t.year)(r["ts"])),
    ("week(ts)", "week(ts)",
     lambda r: nn(lambda t: t.isocalendar()[1])(r["ts"])),
    ("date(ts)", "ts::DATE", lambda r: nn(lambda t: t.date())(r["ts"])),
    ("timestamp(d)", "d::TIMESTAMP", lambda r: r["d"]),
    ("date_trunc('month', d)", "date_trunc('month', d)",
     lambda r: nn(lambda d: d.replace(day=1))(r["d"])),
    ("date_trunc('quarter', d)", "date_trunc('quarter', d)",
     lambda r: nn(lambda d: d.replace(month=(d.month - 1) // 3 * 3 + 1,
                                      day=1))(r["d"])),
    ("date_trunc('year', ts)", "date_trunc('year', ts)",
     lambda r: nn(lambda t: datetime(t.year, 1, 1, tzinfo=UTC))(r["ts"])),
    ("date_trunc('week', ts)", "date_trunc('week', ts)",
     lambda r: nn(trunc_week)(r["ts"])),
    ("date_trunc('hour', ts)", "date_trunc('hour', ts)",
     lambda r: nn(lambda t: t.replace(minute=0, second=0, microsecond=0))(
         r["ts"])),
    ("date_diff('day', d, ts)", "date_diff('day', d, ts)",
     lambda r: nn(lambda d, t: (t.date() - d).days)(r["d"], r["ts"])),
    ("date_diff('month', d, ts)", "date_diff('month', d, ts)",
     lambda r: nn(lambda d, t: (t.year * 12 + t.month)
                  - (d.year * 12 + d.month))(r["d"], r["ts"])),
    ("date_diff('year', d, ts)", "date_diff('year', d, ts)",
     lambda r: nn(lambda d, t: t.year - d.year)(r["d"], r["ts"])),
    ("date_diff('week', d, ts)", "date_diff('week', d, ts)",
     lambda r: nn(lambda d, t: int((t.date() - d).days / 7))(r["d"],
                                                             r["ts"])),
    ("date_diff('hour', ts, '2000-01-01')",
     "date_diff('hour', ts, TIMESTAMP '2000-01-01')",
     lambda r: nn(lambda t: diff_hours(t, Y2K))(r["ts"])),
    ("date_add(d, 1, 'month')", "d + INTERVAL 1 MONTH",
     lambda r: nn(lambda d: add_months(d, 1))(r["d"])),
    ("date_add(d, -13, 'month')", "d - INTERVAL 13 MONTH",
     lambda r: nn(lambda d: add_months(d, -13))(r["d"])),
    ("date_add(d, 1, 'year')", "d + INTERVAL 1 YEAR",
     lambda r: nn(lambda d: add_months(d, 12))(r["d"])),
    ("date_add(ts, 2, 'quarter')", "ts + INTERVAL 6 MONTH",
     lambda r: nn(lambda t: add_months(t, 6))(r["ts"])),
    ("date_add(ts, 90, 'minute')", "ts + INTERVAL 90 MINUTE",
     lambda r: nn(lambda t: t + timedelta(minutes=90))(r["ts"])),
    ("date_add(d, 10, 'day')", "d + INTERVAL 10 DAY",
     lambda r: nn(lambda d: d + timedelta(days=10))(r["d"])),
    ("strftime(ts, '%Y/%m/%d %H:%M:%S')",
     "strftime(ts, '%Y/%m/%d %H:%M:%S')",
     lambda r: nn(lambda t: f"{t.year:04d}/{t.month:02d}/{t.day:02d} "
                  f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}")(r["ts"])),
    ("strptime(strftime(d, '%d.%m.%Y'), '%d.%m.%Y')",
     "strptime(strftime(d, '%d.%m.%Y'), '%d.%m.%Y')", lambda r: r["d"]),
    ("d < '1970-01-01'", "d < DATE '1970-01-01'",
     lambda r: False if r["d"] is None else r["d"] < date(1970, 1, 1)),
    ("ts >= d", "ts >= d",
     lambda r: False if r["d"] is None or r["ts"] is None
     else r["ts"] >= datetime(r["d"].year, r["d"].month, r["d"].day,
                              tzinfo=UTC)),
    ("regexp_matches(s, '[0-9]+')", "regexp_matches(s, '[0-9]+')",
     lambda r: nn(lambda s: re.search("[0-9]+", s) is not None)(r["s"])),
    ("regexp_extract(s, '([^ -]+)-([0-9]+)', 2)",
     "regexp_extract(s, '([^ -]+)-([0-9]+)', 2)",
     lambda r: nn(lambda s: (lambda m: m.group(2) if m else "")(
         re.search("([^ -]+)-([0-9]+)", s)))(r["s"])),
    ("regexp_replace(s, '[aeiouä]', '*')",
     "regexp_replace(s, '[aeiouä]', '*', 'g')",
     lambda r: nn(lambda s: re.sub("[aeiouä]", "*", s))(r["s"])),
    ("regexp_replace(s, '([a-z]+)-([0-9]+)', '$2:$1')",
     "regexp_replace(s, '([a-z]+)-([0-9]+)', '\\2:\\1', 'g')",
     lambda r: nn(lambda s: re.sub("([a-z]+)-([0-9]+)", r"\2:\1", s))(
         r["s"])),
    ("trim(s)", "trim(s)", lambda r: nn(lambda s: s.strip(" "))(r["s"])),
    ("ltrim(s)", "ltrim(s)", lambda r: nn(lambda s: s.lstrip(" "))(r["s"])),
    ("rtrim(s)", "rtrim(s)", lambda r: nn(lambda s: s.rstrip(" "))(r["s"])),
    ("trim(s, ' z')", "trim(s, ' z')",
     lambda r: nn(lambda s: s.strip(" z"))(r["s"])),
    ("replace(s, '-', '--')", "replace(s, '-', '--')",
     lambda r: nn(lambda s: s.replace("-", "--"))(r["s"])),
    ("split_part(s, '-', 2)", "split_part(s, '-', 2)",
     lambda r: nn(lambda s: (s.split("-") + [""])[1]
                  if len(s.split("-")) >= 2 else "")(r["s"])),
    ("split_part(s, '-', -1)", "split_part(s, '-', -1)",
     lambda r: nn(lambda s: s.split("-")[-1])(r["s"])),
    ("strpos(s, '-')", "strpos(s, '-')",
     lambda r: nn(lambda s: s.find("-") + 1)(r["s"])),
    ("lpad(s, 8, '*')", "lpad(s, 8, '*')",
     lambda r: nn(lambda s: s[:8] if len(s) >= 8 else
                  "*" * (8 - len(s)) + s)(r["s"])),
    ("rpad(s, 9, 'ab')", "rpad(s, 9, 'ab')",
     lambda r: nn(lambda s: s[:9] if len(s) >= 9 else
                  s + ("ab" * 9)[:9 - len(s)])(r["s"])),
    ("reverse(s)", "reverse(s)", lambda r: nn(lambda s: s[::-1])(r["s"])),
]

# ---------------------------------------------------------------------------
# Canonical values: dates and timestamps as naive UTC datetimes.

ISO_DATE = re.compile(r"^-?\d{4,}-\d\d-\d\d$")
ISO_TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)"
                    r"(?:\.(\d{1,6}))?Z?$")


def canon(v):
    """A value of sheaf's JSON output, DuckDB's JSON rows or Python."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    if isinstance(v, str):
        if ISO_DATE.match(v):
            y, m, d = v.rsplit("-", 2)
            return datetime(int(y), int(m), int(d))
        mt = ISO_TS.match(v)
        if mt:
            g = mt.groups()
            return datetime(*map(int, g[:6]),
                            int((g[6] or "0").ljust(6, "0")))
    return v


# ---------------------------------------------------------------------------
# DuckDB, when installed

DUCK_COLUMNS = {"id": "BIGINT", "d": "DATE", "ts": "TIMESTAMP",
                "s": "VARCHAR"}


def duckdb(csv_path, sql):
    return duckdb_query_csv(csv_path, DUCK_COLUMNS, sql)


def duck_value(v):
    # getRowsJson: BIGINT as text, bools as bools, dates and timestamps as
    # ISO text
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        return int(v)
    return canon(v)


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def data(session_server, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    rel = f"vocab-{tag}/events.csv"
    session_server.write_data(rel, sheaf_csv())
    duck = tmp_path_factory.mktemp("vocab") / "events-utc.csv"
    duck.write_text(duckdb_csv(), encoding="utf-8")
    return {"rel": rel, "duck": duck}


def jsonl_rows(body):
    return [json.loads(line) for line in body.decode().splitlines() if line]


def run_jsonl(sheaf, spec):
    spec = dict(spec, name=unique_name("vocab"), output={"format": "jsonl"})
    _, body = sheaf.run(spec, timeout=120)
    return jsonl_rows(body)


# ---------------------------------------------------------------------------
# Tests


def test_inferred_types_and_iso_output(sheaf, data):
    """No input.columns: d infers date, ts timestamp (offsets to UTC); CSV
    output writes YYYY-MM-DD and YYYY-MM-DDTHH:MM:SS[.ffffff]Z."""
    spec = {"name": unique_name("vocab-csv"),
            "input": {"path": data["rel"], "format": "csv"},
            "steps": [{"op": "derive", "as": "y", "expr": "year(d)"},
                      {"op": "select", "columns": ["id", "d", "ts", "y"]},
                      {"op": "sort", "by": [{"column": "id"}]}],
            "output": {"format": "csv"}}
    _, body = sheaf.run(spec, timeout=120)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["id", "d", "ts", "y"]
    for r, got in zip(ROWS, rows[1:]):
        want_d = "" if r["d"] is None else r["d"].isoformat()
        assert got[1] == want_d, (r, got)
        if r["ts"] is None:
            assert got[2] == "", (r, got)
        else:
            t = r["ts"]
            text = t.strftime("%Y-%m-%dT%H:%M:%S")
            if t.microsecond:
                text += f".{t.microsecond:06d}"
            assert got[2] == text + "Z", (r, got)
        assert got[3] == ("" if r["d"] is None else str(r["d"].year))
    assert len(rows) == len(ROWS) + 1


def test_functions_against_python_and_duckdb(sheaf, data):
    """Every case of CASES in one job (jsonl output), compared with the
    Python reference; then with DuckDB on the same rows."""
    steps = [{"op": "derive", "as": f"e{i}", "expr": e}
             for i, (e, _, _) in enumerate(CASES)]
    steps.append({"op": "sort", "by": [{"column": "id"}]})
    spec = {"input": {"path": data["rel"], "format": "csv",
                      "columns": {"d": "date", "ts": "timestamp",
                                  "s": "string"}},
            "steps": steps}
    got = run_jsonl(sheaf, spec)
    assert [g["id"] for g in got] == [r["id"] for r in ROWS]
    bad = []
    for i, (e, _, fn) in enumerate(CASES):
        for r, g in zip(ROWS, got):
            want = canon(fn(r))
            if canon(g[f"e{i}"]) != want:
                bad.append(f"{e} on id {r['id']}: sheaf {g[f'e{i}']!r}, "
                           f"expected {want!r}")
    assert not bad, "\n".join(bad[:30])

    why = duckdb_missing()
    if why:
        pytest.skip(f"DuckDB comparison skipped: {why}")
    sql = ("SELECT id, " + ", ".join(f"{d} AS e{i}"
                                     for i, (_, d, _) in enumerate(CASES))
           + " FROM src ORDER BY id")
    cols, drows = duckdb(data["duck"], sql)
    assert len(drows) == len(got)
    for i, (e, d, _) in enumerate(CASES):
        k = cols.index(f"e{i}")
        for g, dr in zip(got, drows):
            dv = duck_value(dr[k])
            sv = canon(g[f"e{i}"])
            ok = (dr[k] == g[f"e{i}"]  # same string, bool or null
                  or (dv == sv and type(dv) is type(sv))
                  # a comparison with null: false in sheaf (SPEC), null
                  # in SQL
                  or (dr[k] is None and g[f"e{i}"] is False))
            if not ok:
                bad.append(f"{e} (duckdb: {d}) on id {g['id']}: sheaf "
                           f"{g[f'e{i}']!r}, duckdb {dr[k]!r}")
    assert not bad, "\n".join(bad[:30])


def test_sort_groupby_min_max(sheaf, data):
    """sort on a timestamp (desc) and a date, groupby a truncated date with
    min/max of timestamps, count_distinct of dates."""
    spec = {"input": {"path": data["rel"], "format": "csv"},
            "steps": [{"op": "select", "columns": ["id", "d", "ts"]},
                      {"op": "sort", "by": [{"column": "ts", "desc": True},
                                            {"column": "id"}]}]}
    got = run_jsonl(sheaf, spec)
    with_ts = sorted((r for r in ROWS if r["ts"] is not None),
                     key=lambda r: (-us_of(r["ts"]), r["id"]))
    want = [r["id"] for r in with_ts] + [r["id"] for r in ROWS
                                         if r["ts"] is None]
    assert [g["id"] for g in got] == want

    spec = {"input": {"path": data["rel"], "format": "csv"},
            "steps": [{"op": "filter", "where": "not is_null(d)"},
                      {"op": "derive", "as": "decade",
                       "expr": "date_trunc('year', date_add(d, "
                               "-(year(d) % 10), 'year'))"},
                      {"op": "groupby", "by": ["decade"],
                       "aggs": [{"as": "n", "fn": "count"},
                                {"as": "first", "fn": "min", "column": "ts"},
                                {"as": "last", "fn": "max", "column": "ts"},
                                {"as": "early", "fn": "min", "column": "d"},
                                {"as": "days", "fn": "count_distinct",
                                 "column": "d"}]},
                      {"op": "sort", "by": [{"column": "decade"}]}]}
    got = run_jsonl(sheaf, spec)
    groups = {}
    for r in ROWS:
        if r["d"] is None:
            continue
        groups.setdefault(date(r["d"].year - r["d"].year % 10, 1, 1),
                          []).append(r)
    expect = []
    for k in sorted(groups):
        g = groups[k]
        tss = [r["ts"] for r in g if r["ts"] is not None]
        expect.append({"decade": canon(k), "n": len(g),
                       "first": canon(min(tss)) if tss else None,
                       "last": canon(max(tss)) if tss else None,
                       "early": canon(min(r["d"] for r in g)),
                       "days": len({r["d"] for r in g})})
    assert [{k: canon(v) for k, v in g.items()} for g in got] == expect

    why = duckdb_missing()
    if why:
        pytest.skip(f"DuckDB comparison skipped: {why}")
    cols, drows = duckdb(
        data["duck"],
        "SELECT make_date(year(d) - year(d) % 10, 1, 1) AS decade, "
        "count(*) AS n, min(ts) AS first, max(ts) AS last, min(d) AS early, "
        "count(DISTINCT d) AS days FROM src WHERE d IS NOT NULL "
        "GROUP BY ALL ORDER BY decade")
    duck = [{c: duck_value(v) for c, v in zip(cols, row)} for row in drows]
    assert duck == expect


def test_distinct_dates_and_truncated_timestamps(sheaf, data):
    spec = {"input": {"path": data["rel"], "format": "csv"},
            "steps": [{"op": "derive", "as": "m",
                       "expr": "date_trunc('month', ts)"},
                      {"op": "distinct", "columns": ["m"]},
                      {"op": "sort", "by": [{"column": "m"}]}]}
    got = [canon(g["m"]) for g in run_jsonl(sheaf, spec)]
    months = sorted({datetime(r["ts"].year, r["ts"].month, 1)
                     for r in ROWS if r["ts"] is not None})
    assert got == months + [None]


def test_declared_types_bad_value_fails_or_skips(sheaf, session_server):
    rel = f"vocab-bad-{uuid.uuid4().hex[:8]}.csv"
    session_server.write_data(rel, "id,d\n1,2024-01-31\n2,2024-02-30\n"
                                   "3,2024-03-01\n")
    spec = {"name": unique_name("vocab-bad"),
            "input": {"path": rel, "format": "csv",
                      "columns": {"d": "date"}},
            "steps": [], "output": {"format": "csv"}}
    job = sheaf.submit(spec)
    done = sheaf.wait(job["id"], 120)
    assert done["status"] == "failed", done
    assert "2024-02-30" in json.dumps(done["error"]), done["error"]
    assert "date" in json.dumps(done["error"]), done["error"]

    spec["name"] = unique_name("vocab-skip")
    spec["input"] = dict(spec["input"], on_error="skip")
    _, body = sheaf.run(spec, timeout=120)
    assert body.decode() == "id,d\n1,2024-01-31\n3,2024-03-01\n"

    # a declared timestamp, jsonl input: strings with offsets
    rel = f"vocab-json-{uuid.uuid4().hex[:8]}.jsonl"
    session_server.write_data(
        rel, '{"t": "2024-01-31T23:30:00-01:00"}\n{"t": null}\n'
             '{"t": "1969-07-20 20:17:40"}\n')
    got = run_jsonl(sheaf, {"input": {"path": rel, "format": "jsonl"},
                            "steps": [{"op": "derive", "as": "h",
                                       "expr": "hour(t)"}]})
    assert got == [{"t": "2024-02-01T00:30:00Z", "h": 0},
                   {"t": None, "h": None},
                   {"t": "1969-07-20T20:17:40Z", "h": 20}]


def test_bad_pattern_is_400_with_position(sheaf, data):
    spec = {"name": unique_name("vocab-re"),
            "input": {"path": data["rel"], "format": "csv"},
            "steps": [{"op": "filter",
                       "where": "regexp_matches(s, 'ab(c')"}],
            "output": {"format": "csv"}}
    r = sheaf.api("POST", "/v1/jobs", spec)
    assert r.status == 400, r
    text = json.dumps(r.body)
    assert "steps[0].where" in text, text
    assert "missing closing parenthesis" in text, text
    assert "character 5 of the pattern" in text, text

    spec["steps"] = [{"op": "filter", "where": "regexp_matches(s, s)"}]
    r = sheaf.api("POST", "/v1/jobs", spec)
    assert r.status == 400, r
    assert "constant pattern" in json.dumps(r.body)

    spec["steps"] = [{"op": "derive", "as": "x",
                      "expr": "date_trunc('fortnight', d)"}]
    r = sheaf.api("POST", "/v1/jobs", spec)
    assert r.status == 400, r
    assert "unknown unit 'fortnight'" in json.dumps(r.body)


def test_pathological_pattern_fails_the_job(sheaf, session_server):
    rel = f"vocab-redos-{uuid.uuid4().hex[:8]}.csv"
    session_server.write_data(rel, "s\n" + "a" * 60 + "b\nok\n")
    spec = {"name": unique_name("vocab-redos"),
            "input": {"path": rel, "format": "csv"},
            "steps": [{"op": "filter", "where": "regexp_matches(s, '^(a+)+$')"}],
            "output": {"format": "csv"}, "max_attempts": 1}
    job = sheaf.submit(spec)
    done = sheaf.wait(job["id"], 120)
    assert done["status"] == "failed", done
    msg = json.dumps(done["error"])
    assert "hit its match limit" in msg, msg
    assert "^(a+)+$" in msg, msg
