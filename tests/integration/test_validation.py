"""
test_validation.py - bad requests: each bad spec is a 400 at submit whose
error names the field at fault (path) and the culprit (message), and creates
no job; unknown ids are 404, wrong methods 405, big bodies 413.
"""

import json
import os
import uuid

import pytest

from harness import raw_request, unique_name

SPEC_ERR = {"invalid_spec"}


@pytest.fixture(scope="module")
def vdata(session_server, tmp_root):
    d = f"val-{uuid.uuid4().hex[:8]}"
    session_server.write_data(f"{d}/v.csv", "id,name,score\n1,ann,1.5\n"
                                            "2,bob,2.5\n")
    # things outside the data root, reachable by symlinks inside it
    outside = tmp_root / f"outside-{uuid.uuid4().hex[:6]}"
    outside.mkdir()
    (outside / "secret.csv").write_text("id,name,score\n1,x,1.0\n")
    os.symlink(outside / "secret.csv", session_server.data / d / "evil.csv")
    os.symlink(outside, session_server.data / d / "evildir")
    # a symlink that stays inside the data root is fine
    os.symlink(session_server.data / d / "v.csv",
               session_server.data / d / "good-link.csv")
    return d


def base(d):
    return {"name": unique_name("val"),
            "input": {"path": f"{d}/v.csv", "format": "csv"},
            "steps": [{"op": "filter", "where": "id > 0"},
                      {"op": "derive", "as": "d", "expr": "score * 2"},
                      {"op": "select", "columns": ["id", "d"]}],
            "output": {"format": "csv"}}


def steps(*s):
    return lambda sp: sp.__setitem__("steps", list(s))


def where(expr):
    return steps({"op": "filter", "where": expr})


def derive(expr):
    return steps({"op": "filter", "where": "id > 0"},
                 {"op": "derive", "as": "d", "expr": expr})


def inp(**kv):
    return lambda sp: sp["input"].update(kv)


def path(p):
    return lambda sp: sp["input"].__setitem__(
        "path", p.format(d=sp["input"]["path"].split("/")[0]))


def setk(k, v):
    return lambda sp: sp.__setitem__(k, v)


def delk(k):
    return lambda sp: sp.pop(k)


# (id, mutation, path (or prefix ending in '*'), words the message must hold,
#  allowed codes)
CASES = [
    ("unknown-op", steps({"op": "filter", "where": "id > 0"},
                         {"op": "frobnicate"}),
     "steps[1].op", ["frobnicate"], SPEC_ERR),
    ("op-not-string", steps({"op": 5}), "steps[0].op", [], SPEC_ERR),
    ("op-missing", steps({"where": "id > 0"}), "steps[0].op", [], SPEC_ERR),
    ("where-missing", steps({"op": "filter"}), "steps[0].where", [],
     SPEC_ERR),
    ("unknown-column-where", where("nosuchcol > 1"), "steps[0].where",
     ["nosuchcol"], SPEC_ERR),
    ("unknown-column-derive", derive("missing_col * 2"), "steps[1].expr",
     ["missing_col"], SPEC_ERR),
    ("unknown-function", where("nosuchfn(id) > 1"), "steps[0].where",
     ["nosuchfn"], SPEC_ERR),
    ("type-error-where", where("name + 1 > 2"), "steps[0].where", [],
     SPEC_ERR),
    ("where-not-bool", where("id + 1"), "steps[0].where", [], SPEC_ERR),
    ("type-error-derive", derive("name * 2"), "steps[1].expr", [], SPEC_ERR),
    ("syntax-error-where", where("id >= "), "steps[0].where", [], SPEC_ERR),
    ("syntax-paren", where("(id > 1"), "steps[0].where", [], SPEC_ERR),
    ("syntax-error-derive", derive("id +* 2"), "steps[1].expr", [],
     SPEC_ERR),
    ("unknown-column-select",
     steps({"op": "derive", "as": "d", "expr": "id + 1"},
           {"op": "filter", "where": "d > 0"},
           {"op": "select", "columns": ["id", "nope"]}),
     "steps[2].columns[1]", ["nope"], SPEC_ERR),
    ("column-dropped-by-select",
     steps({"op": "select", "columns": ["id"]},
           {"op": "filter", "where": "score > 1"}),
     "steps[1].where", ["score"], SPEC_ERR),
    ("path-parent", path("../x.csv"), "input.path", [], SPEC_ERR),
    ("path-absolute", path("/etc/passwd"), "input.path", [], SPEC_ERR),
    ("path-dotdot-inside", path("{d}/../../x.csv"), "input.path", [],
     SPEC_ERR),
    ("symlink-outside", path("{d}/evil.csv"), "input.path", [], SPEC_ERR),
    ("symlink-dir-outside", path("{d}/evildir/secret.csv"), "input.path", [],
     SPEC_ERR),
    ("glob-through-symlink-dir", path("{d}/evildir/*.csv"), "input.path", [],
     SPEC_ERR | {"not_found"}),
    ("missing-file", path("{d}/nope.csv"), "input.path", ["nope.csv"],
     SPEC_ERR | {"not_found"}),
    ("glob-no-match", path("{d}/zz*.csv"), "input.path", [],
     SPEC_ERR | {"not_found"}),
    ("unknown-top-field", setk("stpes", []), "stpes", ["stpes"], SPEC_ERR),
    ("unknown-input-field", inp(formt="csv"), "input.formt", ["formt"],
     SPEC_ERR),
    ("unknown-step-field",
     steps({"op": "filter", "where": "id > 0", "wehre": "id > 1"}),
     "steps[0].wehre", ["wehre"], SPEC_ERR),
    ("input-missing", delk("input"), "input", [], SPEC_ERR),
    ("steps-not-array", setk("steps", "filter"), "steps", [], SPEC_ERR),
    ("name-not-string", setk("name", 5), "name", [], SPEC_ERR),
    ("bad-format", inp(format="xml"), "input.format", ["xml"], SPEC_ERR),
    ("bad-partition-size", inp(partition_size="12 parsecs"),
     "input.partition_size", [], SPEC_ERR),
    ("zero-partition-size", inp(partition_size=0), "input.partition_size",
     [], SPEC_ERR),
    ("negative-partition-size", inp(partition_size=-5),
     "input.partition_size", [], SPEC_ERR),
    ("bad-column-type", inp(columns={"id": "integer"}), "input.columns*",
     ["integer"], SPEC_ERR),
]


def check_error(r, status, path, words=(), codes=None):
    assert r.status == status, f"expected {status}, got {r!r}"
    assert r.headers.get("Content-Type", "").startswith("application/json"),\
        r.headers
    assert isinstance(r.body, dict) and isinstance(r.body.get("error"),
                                                   dict), r
    err = r.body["error"]
    if codes is not None:
        assert err.get("code") in codes, f"code {err.get('code')!r}: {err}"
    if path is not None:
        if path.endswith("*"):
            assert str(err.get("path", "")).startswith(path[:-1]), err
        else:
            assert err.get("path") == path, (
                f"path {err.get('path')!r}, expected {path!r}: {err}")
    msg = err.get("message")
    assert isinstance(msg, str) and msg, err
    for w in words:
        assert w in msg, f"message does not mention {w!r}: {msg!r}"
    assert "Traceback" not in msg, msg


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_spec(sheaf, vdata, case):
    _, mutate, path, words, codes = case
    spec = base(vdata)
    mutate(spec)
    r = sheaf.api("POST", "/v1/jobs", spec)
    check_error(r, 400, path, words, codes)
    # and no job was made
    if isinstance(spec.get("name"), str):
        listed = sheaf.api("GET", f"/v1/jobs?name={spec['name']}")
        assert listed.status == 200 and listed.body["jobs"] == [], listed


def test_valid_specs_accepted(sheaf, vdata):
    """The base spec, a symlink inside the root and the partition size forms
    are fine: the bad cases above fail for the reason they test."""
    for mutate in (lambda sp: None, path("{d}/good-link.csv"),
                   inp(partition_size=1024), inp(partition_size="1KiB"),
                   inp(partition_size="100"), inp(partition_size="64MiB"),
                   inp(columns={"id": "int", "score": "float"}),
                   where("name == 'ann' or score >= 2.0")):
        spec = base(vdata)
        mutate(spec)
        job, body = sheaf.run(spec)
        assert body.decode().replace("\r\n", "\n").splitlines()[0] in (
            "id,d", "id,name,score"), body


@pytest.mark.parametrize("body", [b'{"name": ', b"", b"{'a': 1}",
                                  b'{"a": 1,}', b"\xff\xfe{}"],
                         ids=["truncated", "empty", "single-quotes",
                              "trailing-comma", "not-utf8"])
def test_malformed_json(sheaf, body):
    r = sheaf.api("POST", "/v1/jobs", body)
    check_error(r, 400, "", codes={"invalid_json"})


@pytest.mark.parametrize("body", [b"[1, 2]", b'"spec"', b"42", b"null"],
                         ids=["array", "string", "number", "null"])
def test_body_not_an_object(sheaf, body):
    r = sheaf.api("POST", "/v1/jobs", body)
    check_error(r, 400, "", codes={"invalid_spec", "invalid_json"})


def test_unknown_job_is_404(sheaf):
    jid = str(uuid.uuid4())
    for sub in ("", "/result", "/tasks"):
        r = sheaf.api("GET", f"/v1/jobs/{jid}{sub}")
        check_error(r, 404, None, codes={"not_found"})
    r = sheaf.api("GET", "/v1/jobs/not-a-job-id")
    assert r.status in (400, 404), r
    check_error(r, r.status, None)
    r = sheaf.api("GET", "/v1/no-such-resource")
    check_error(r, 404, None, codes={"not_found"})


@pytest.fixture(scope="module")
def some_job(session_server, vdata):
    return session_server.submit(base(vdata))["id"]


def test_wrong_method_is_405(sheaf, some_job):
    for method, p in (("PUT", "/v1/jobs"), ("PATCH", f"/v1/jobs/{some_job}"),
                      ("POST", f"/v1/jobs/{some_job}/result"),
                      ("DELETE", "/healthz")):
        r = sheaf.api(method, p, b"{}" if method != "DELETE" else None)
        check_error(r, 405, None)


def test_405_names_allowed_methods(sheaf):
    r = sheaf.api("PUT", "/v1/jobs", b"{}")
    assert r.status == 405, r
    allow = {m.strip() for m in (r.headers.get("Allow") or "").split(",")}
    assert {"GET", "POST"} <= allow, f"Allow: {r.headers.get('Allow')!r}"


def test_body_over_1mib_is_413(sheaf, vdata):
    spec = base(vdata)
    spec["name"] = "x" * (2 * 1024 * 1024)
    body = json.dumps(spec).encode()
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{sheaf.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}"
            f"\r\nConnection: close\r\n\r\n").encode()
    status, reply = raw_request(sheaf.port, head, body)
    assert status == 413, reply[:500]
    assert b'"error"' in reply, reply[:500]
    # the server lives on
    assert sheaf.api("GET", "/healthz").status == 200


def test_sheafd_survives_bad_requests(sheaf):
    """Garbage on the wire never crashes sheafd."""
    for head in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n",
                 b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10"
                 b"\r\n\r\n{\"a\"", b"GET /v1/jobs/%00%ff HTTP/1.1\r\n"
                 b"Host: x\r\nConnection: close\r\n\r\n"):
        try:
            raw_request(sheaf.port, head, timeout=1)
        except OSError:
            pass
    assert sheaf.running(), "sheafd died"
    assert sheaf.api("GET", "/healthz").status == 200
    r = sheaf.api("GET", "/v1/jobs?limit=abc")
    assert r.status in (200, 400), r
    r = sheaf.api("GET", "/v1/jobs?cursor=%22nonsense")
    assert r.status in (200, 400), r
    r = sheaf.api("GET", "/v1/jobs?status=bogus")
    assert r.status in (200, 400), r
    assert sheaf.running(), "sheafd died"
