"""
openapi_check.py - check a reply of sheafd against api/openapi.yaml, the
OpenAPI description it serves: harness.http() calls check() on every reply,
so each request of the integration suite also tests the document (and a
field added to the code but not to the document fails the test that saw
it).

For the request's method and path, check() finds the operation (path
templates matched as OpenAPI says: concrete paths before templated ones;
HEAD is served by GET; a request no operation describes gets the document's
x-unmatched-requests), then checks that the status is one the operation
documents, that the required headers of that response are there, that the
Content-Type is one it documents (or that there is no body when it
documents none) and that a JSON body validates against its schema
(JSON Schema 2020-12, $refs resolved into the document).

Set SHEAF_OPENAPI_CHECK=0 to turn the checks off (while editing the
document, say).
"""

import json
import os
import re
import urllib.parse
from pathlib import Path

import jsonschema
import pytest
import yaml

DOC_PATH = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")

_doc = None
_routes = None      # [(compiled regex, template)], concrete paths first
_validators = {}    # id(schema) -> (schema, validator)


def _load():
    global _doc, _routes
    if _doc is not None:
        return _doc
    with open(DOC_PATH, encoding="utf-8") as f:
        _doc = yaml.safe_load(f)
    routes = []
    for tmpl in _doc.get("paths", {}):
        parts = re.split(r"(\{[^/{}]+\})", tmpl)
        rx = "".join("[^/]+" if p.startswith("{") else re.escape(p)
                     for p in parts)
        routes.append((tmpl.count("{"), tmpl, re.compile(rx + r"\Z")))
    routes.sort(key=lambda r: (r[0], r[1]))
    _routes = [(rx, tmpl) for _, tmpl, rx in routes]
    return _doc


def _resolve(obj):
    """Follow local $refs ('#/components/...') until 'obj' has none."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        if not ref.startswith("#/") or seen > 20:
            raise ValueError(f"unsupported $ref {ref!r} in {DOC_PATH}")
        obj = _doc
        for key in ref[2:].split("/"):
            obj = obj[key.replace("~1", "/").replace("~0", "~")]
        seen += 1
    return obj


def _validator(schema):
    """A Draft 2020-12 validator of 'schema', whose $refs resolve into the
    document: the root schema holds the document's components."""
    hit = _validators.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": _doc.get("components", {}),
            "$defs": {"reply": schema},
            "$ref": "#/$defs/reply"}
    v = jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.FormatChecker())
    _validators[id(schema)] = (schema, v)
    return v


def _find(method, path):
    """(responses, what) for a request: the operation's responses, or those
    of x-unmatched-requests."""
    doc = _load()
    rel = urllib.parse.unquote(path.split("?", 1)[0])
    if len(rel) > 1 and rel.endswith("/"):
        rel = rel[:-1]
    unmatched = doc.get("x-unmatched-requests", {})
    for rx, tmpl in _routes:
        if not rx.match(rel):
            continue
        item = doc["paths"][tmpl]
        op = item.get(method.lower())
        if op is None and method == "HEAD":
            op = item.get("get")
        if op is None:
            return (unmatched.get("no-such-method", {}),
                    f"{tmpl} (no {method} operation: x-unmatched-requests "
                    f"no-such-method)")
        return op.get("responses", {}), f"{method.lower()} {tmpl}"
    return (unmatched.get("no-such-path", {}),
            "no path of the document (x-unmatched-requests no-such-path)")


def problems(method, path, status, headers, raw):
    """What is wrong with a reply, in words; [] when it matches."""
    method = method.upper()
    responses, what = _find(method, path)
    code = str(status)
    resp = (responses.get(code) or responses.get(code[0] + "XX")
            or responses.get("default"))
    if resp is None:
        return [f"status {code} is not documented for {what}; it documents "
                f"{', '.join(sorted(responses)) or 'nothing'}"]
    resp = _resolve(resp)
    out = []
    for name, h in (resp.get("headers") or {}).items():
        h = _resolve(h)
        if h.get("required") and headers.get(name) is None:
            out.append(f"header {name} is required by {what} {code}")
    content = resp.get("content") or {}
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not content:
        if raw:
            out.append(f"{what} {code} documents no body, got {len(raw)} "
                       f"bytes of {ctype or 'no Content-Type'}")
        return out
    if method == "HEAD" and not ctype:
        return out
    if ctype not in content:
        out.append(f"Content-Type {ctype or '(none)'} is not documented for "
                   f"{what} {code}; it documents {', '.join(content)}")
        return out
    schema = (content[ctype] or {}).get("schema")
    if method == "HEAD" or schema is None or not (
            ctype == "application/json" or ctype.endswith("+json")):
        return out
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return out + [f"the body is not JSON ({e}): {raw[:200]!r}"]
    err = jsonschema.exceptions.best_match(_validator(schema).iter_errors(body))
    if err is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                        for p in err.absolute_path) or "(the body)"
        out.append(f"the body does not match the schema of {what} {code}: "
                   f"at {where}: {err.message} (schema "
                   f"{'/'.join(str(p) for p in err.schema_path)})")
    return out


def check(method, path, status, headers, raw):
    """Fail the running test when the reply does not match the document."""
    if os.environ.get("SHEAF_OPENAPI_CHECK", "1") == "0":
        return
    bad = problems(method, path, status, headers, raw)
    if bad:
        pytest.fail(f"reply not as api/openapi.yaml describes it: {method} "
                    f"{path} -> {status}\n  " + "\n  ".join(bad)
                    + f"\n  body: {raw[:600]!r}", pytrace=False)
