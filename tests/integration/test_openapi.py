"""
test_openapi.py - GET /openapi.yaml and the document itself: the server
serves the repository's file, byte for byte, without a token; every route
of api/routes.c is an operation of the document; the routes that are not
served yet answer as the document says. (Every reply of every test is
checked against the document by harness.http(): see openapi_check.py.)
"""

import re
import uuid

import yaml

from harness import REPO

DOC = REPO / "api" / "openapi.yaml"


def test_openapi_yaml_is_the_file(sheaf):
    r = sheaf.api("GET", "/openapi.yaml")
    assert r.status == 200, r
    assert r.headers.get("Content-Type") == "application/yaml", r
    assert r.raw == DOC.read_bytes(), "the served document is not the file"
    doc = yaml.safe_load(r.raw)
    assert doc["openapi"].startswith("3.1"), doc["openapi"]
    head = sheaf.api("HEAD", "/openapi.yaml")
    assert head.status == 200 and head.raw == b"", head


def test_every_route_is_documented():
    doc = yaml.safe_load(DOC.read_bytes())
    src = (REPO / "api" / "routes.c").read_text()
    routes = re.findall(r'\{"(GET|POST|DELETE|PUT|PATCH)",\s*"([^"]+)"', src)
    assert len(routes) > 10, routes
    missing = [f"{m} {p}" for m, p in routes
               if m.lower() not in doc["paths"].get(p, {})]
    assert not missing, f"routes of api/routes.c not in api/openapi.yaml: " \
                        f"{missing}"


def test_openapi_needs_no_token(life_sheaf, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-openapi-1 tenant-a\n")
    srv = life_sheaf("openapi-auth", env={"SHEAF_TOKENS_FILE": str(tokens)})
    r = srv.api("GET", "/openapi.yaml")
    assert r.status == 200 and r.raw == DOC.read_bytes(), r
    # /v1 needs the token: a 401 as the document describes it
    assert srv.api("GET", "/v1/jobs").status == 401
    assert srv.api("GET", "/v1/no-such-thing").status == 401
    r = srv.api("GET", "/v1/jobs?limit=1",
                headers={"Authorization": "Bearer tok-openapi-1"})
    assert r.status == 200, r


def test_routes_not_served_yet_answer_as_documented(sheaf):
    """Each reply is checked against the document by the harness; these
    routes answer 501 today (404 for /), and their documented
    replies once served."""
    jid = str(uuid.uuid4())
    did = str(uuid.uuid4())
    for method, path, body in (
            ("GET", f"/v1/jobs/{jid}/events", None),
            ("GET", f"/v1/jobs/{jid}/manifest", None),
            ("GET", "/v1/datasets", None),
            ("GET", f"/v1/datasets/{did}", None),
            ("DELETE", f"/v1/datasets/{did}", None),
            ("GET", "/metrics", None),
            ("GET", "/v1/nodes", None),
            ("GET", "/", None)):
        r = sheaf.api(method, path, body)
        assert r.status < 500 or r.status == 501, r
