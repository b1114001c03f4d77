"""
test_dashboard.py - the dashboard (GET /, /ui/...) served by the session's
sheafd: its files and headers over plain HTTP, then the page itself in
headless Chromium driven by puppeteer-core (dashboard.js beside this file).

The browser test sets up three jobs through the API: a finished naive Bayes
job (its report), a running job of some thousand 1 KiB partitions at a high
priority (to cancel) and, queued behind it, a job of about a hundred
partitions (to watch). The page must list them with their states and
progress; show the watched job waiting, then, once the other is cancelled
from its own page in a second tab, advance to succeeded; link the result
with the right bytes; render the report as tables. Screenshots of each page
are kept under the test's tmp dir; any console error, page error, failed
request or reply >= 400 fails the test (except the event stream's 501 while
the service has none: the page falls back to long polls).

Skipped, with the reason, when chromium, node or puppeteer-core
(tools/browser/node_modules) is missing (scripts/deps.sh installs them; CI
runs it).
"""

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO, TERMINAL, unique_name, wait_until

CHROMIUM = os.environ.get("SHEAF_CHROMIUM", "/usr/bin/chromium")
DRIVER = Path(__file__).with_name("dashboard.js")
CSP = "default-src 'self'"

CLASSES = {
    "astro": "star galaxy orbit telescope redshift cluster",
    "bio": "cell protein gene enzyme tissue mutation",
    "cs": "network algorithm compiler memory cache kernel",
    "math": "theorem lemma manifold prime algebra proof",
}
COMMON = ("we the of a study show results new method data model this "
          "paper using between").split()


def arxiv_like(n_rows, seed):
    """An arXiv-like CSV (id, category, year, abstract) whose abstracts
    lean towards words of their category."""
    rnd = random.Random(seed)
    cats = sorted(CLASSES)
    lines = ["id,category,year,abstract"]
    for i in range(n_rows):
        cat = cats[i % len(cats)]
        own = CLASSES[cat].split()
        words = [rnd.choice(own) if rnd.random() < 0.04
                 else rnd.choice(COMMON) for _ in range(rnd.randint(20, 60))]
        lines.append(f'{i},{cat},{2000 + i % 25},"{" ".join(words)}."')
    return "\n".join(lines) + "\n"


def word_count_spec(name, path, partition_size, priority):
    return {
        "name": name,
        "input": {"path": path, "format": "csv",
                  "partition_size": partition_size},
        "steps": [
            {"op": "tokenize", "column": "abstract", "as": "word"},
            {"op": "groupby", "by": ["word"],
             "aggs": [{"as": "n", "fn": "count"}]},
            {"op": "sort", "by": [{"column": "n", "desc": True},
                                  {"column": "word"}]},
        ],
        "output": {"format": "csv"},
        "priority": priority,
    }


def test_dashboard_files_and_headers(sheaf):
    """The page and its files: types, a strict CSP, no token; 404 for an
    unknown file; HEAD as GET."""
    want = {"/": "text/html", "/ui/index.html": "text/html",
            "/ui/app.js": "text/javascript", "/ui/style.css": "text/css"}
    for path, ctype in want.items():
        r = sheaf.api("GET", path)
        assert r.status == 200, (path, r)
        assert r.headers["Content-Type"].startswith(ctype), (path, r.headers)
        csp = r.headers.get("Content-Security-Policy") or ""
        assert csp.startswith(CSP) and "'unsafe-inline'" not in csp, csp
        assert r.headers.get("X-Content-Type-Options") == "nosniff"
        assert len(r.raw) > 100
    page = sheaf.api("GET", "/").raw.decode()
    assert '<script src="/ui/app.js"' in page
    # Nothing from elsewhere: every src and href is this server's.
    for attr in ("src=", "href="):
        for part in page.split(attr)[1:]:
            target = part[1:].split(part[0])[0]
            assert target.startswith(("/", "#", "data:")), target
    assert sheaf.api("GET", "/ui/app.js").raw == (
        REPO / "api" / "ui" / "app.js").read_bytes()
    r = sheaf.api("GET", "/ui/nope.js")
    assert r.status == 404 and r.body["error"]["code"] == "not_found"
    r = sheaf.api("HEAD", "/ui/style.css")
    assert r.status == 200 and r.raw == b""
    r = sheaf.api("POST", "/", {})
    assert r.status == 405


def browser_missing():
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM} (scripts/deps.sh installs it)"
    if shutil.which("node") is None:
        return "no node (scripts/deps.sh installs nodejs)"
    if not (REPO / "tools" / "browser" / "node_modules" /
            "puppeteer-core").is_dir():
        return ("no tools/browser/node_modules/puppeteer-core (scripts/"
                "deps.sh runs scripts/npm_tools.sh browser, which installs it)")
    return None


def test_dashboard_in_a_browser(sheaf, tmp_path):
    why = browser_missing()
    if why:
        pytest.skip(why)
    tag = unique_name("dash")
    sheaf.write_data(f"{tag}/small.csv", arxiv_like(1500, 1))
    sheaf.write_data(f"{tag}/big.csv", arxiv_like(12000, 2))

    # The finished naive Bayes job, for its report.
    nb = sheaf.submit({
        "name": f"{tag}-nb",
        "input": {"path": f"{tag}/small.csv", "format": "csv",
                  "partition_size": "64KiB"},
        "steps": [{"op": "train_naive_bayes", "text": "abstract",
                   "label": "category", "holdout": "id % 5 == 0"}],
        "output": {"format": "csv"}})
    assert sheaf.wait(nb["id"], 120)["status"] == "succeeded"
    report = sheaf.api("GET", f"/v1/jobs/{nb['id']}/artifacts/report").body

    # The job to cancel, running at a high priority; the job to watch
    # waits behind it until it is cancelled.
    big = sheaf.submit(word_count_spec(f"{tag}-cancel", f"{tag}/big.csv",
                                       "1KiB", 10))
    watch = sheaf.submit(word_count_spec(f"{tag}-watch", f"{tag}/small.csv",
                                         "4KiB", 0))
    try:
        assert big["progress"]["partitions_total"] > 1000, big["progress"]
        wait_until(lambda: sheaf.get(big["id"])["status"] == "running", 120,
                   "the job to cancel to run", interval=0.2)
        assert sheaf.get(watch["id"])["status"] == "queued"

        shots = tmp_path / "screenshots"
        shots.mkdir()
        cfg = tmp_path / "dashboard.json"
        cfg.write_text(json.dumps({
            "url": sheaf.base, "out": str(shots), "chromium": CHROMIUM,
            "filter": tag, "watch": watch["id"], "cancel": big["id"],
            "report": nb["id"]}))
        proc = subprocess.run(["node", str(DRIVER), str(cfg)],
                              capture_output=True, text=True, timeout=900,
                              cwd=str(REPO))
        assert proc.returncode == 0, (
            f"dashboard.js exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout)
        (tmp_path / "dashboard-out.json").write_text(
            json.dumps(out, indent=1))
        print(f"screenshots: {shots}")
        assert "error" not in out, out["error"]
        assert out["problems"] == [], out["problems"]
        for shot in out["shots"]:
            assert Path(shot).stat().st_size > 1000, shot
        assert len(out["shots"]) == 7, out["shots"]
    finally:
        for job in (big, watch):
            if sheaf.get(job["id"])["status"] not in TERMINAL:
                sheaf.api("POST", f"/v1/jobs/{job['id']}/cancel")

    # The page itself: no token needed, the strict policy on it.
    assert out["index"]["status"] == 200
    assert out["index"]["csp"].startswith(CSP)

    # The list, filtered by name: our three jobs, in their states.
    rows = {r["id"]: r for r in out["list"]}
    assert set(rows) == {nb["id"], big["id"], watch["id"]}, out["list"]
    assert rows[nb["id"]]["status"] == "succeeded"
    assert rows[nb["id"]]["name"] == f"{tag}-nb"
    assert rows[big["id"]]["status"] == "running"
    assert rows[watch["id"]]["status"] == "queued"
    total = watch["progress"]["partitions_total"]
    assert rows[watch["id"]]["count"] == f"0/{total}"
    assert out["count"] == "3 jobs"
    # The state filter: only succeeded jobs.
    assert nb["id"] in out["list_succeeded"]
    assert big["id"] not in out["list_succeeded"]
    assert watch["id"] not in out["list_succeeded"]

    # The job to cancel: running, its progress advanced, then cancelled
    # through the button (and so through the API).
    before, after = out["cancel_running"]
    assert before["status"] == after["status"] == "running"
    assert after["value"] > before["value"]
    assert after["bars"] > 0 and after["stages"] >= 1
    assert out["cancel_after"]["settled"] == "cancelled"
    # Its tab read a (made-up) event stream: every event parsed, the last
    # id kept and sent back when the stream was opened again.
    assert out["sse"]["events"] >= 3, out["sse"]
    assert out["sse"]["lastId"] == "e3"
    assert out["sse_requests"][0] is None
    assert set(out["sse_requests"][1:]) == {"e3"}, out["sse_requests"]
    assert sheaf.get(big["id"])["status"] == "cancelled"

    # The watched job: waiting first, then its progress only grows, to
    # succeeded with every partition done.
    assert out["watch_first"]["status"] == "queued"
    seen = [out["watch_first"]] + out["watch_seen"]
    order = ["queued", "running", "succeeded"]
    for a, b in zip(seen, seen[1:]):
        assert order.index(a["status"]) <= order.index(b["status"]), seen
        assert a["value"] <= b["value"], seen
    final = out["watch_final"]
    assert final["status"] == "succeeded" and final["settled"] == "succeeded"
    done = sheaf.get(watch["id"])
    assert done["status"] == "succeeded"
    assert final["value"] == final["max"] == total
    assert final["text"].startswith(f"{total} / {total} partitions done")
    assert final["tasks"] == len(
        sheaf.api("GET", f"/v1/jobs/{watch['id']}/tasks").body["tasks"])
    assert final["bars"] == final["tasks"]

    # The result link: the job's result, byte for byte; a preview table.
    assert out["result_href"] == f"/v1/jobs/{watch['id']}/result"
    want = sheaf.result(watch["id"]).decode()
    assert out["result_text"] == want
    assert want.startswith("word,n\n")
    assert out["preview_rows"] == min(20, done["result"]["rows"])

    # The naive Bayes report as tables.
    rep = out["report"]
    assert float(rep["accuracy"]) == pytest.approx(report["accuracy"],
                                                   abs=5e-5)
    assert 0.4 < report["accuracy"] <= 1.0, report["accuracy"]
    assert sorted(rep["classes"]) == sorted(report["per_class"])
    assert rep["confusion_rows"] == len(report["confusion"]["labels"])
    assert sorted(rep["artifacts"]) == [
        f"/v1/jobs/{nb['id']}/artifacts/model",
        f"/v1/jobs/{nb['id']}/artifacts/report"]

    # The list at the end: the name filter kept, the new states shown.
    assert out["filter_kept"] == tag
    states = {r["id"]: r["status"] for r in out["list_after"]}
    assert states == {nb["id"]: "succeeded", big["id"]: "cancelled",
                      watch["id"]: "succeeded"}, states


@pytest.mark.recovery  # stops the session sheafd: run with the last ones
def test_dashboard_with_a_token(life_sheaf, tmp_path):
    """With tokens on: the page needs none, asks for one when the API
    answers 401, keeps it in the tab's session storage (a reload does not
    ask again), and downloads the result with it."""
    why = browser_missing()
    if why:
        pytest.skip(why)
    tokens = tmp_path / "tokens"
    tokens.write_text("dash-secret-token tenant-dash\n")
    srv = life_sheaf("token", env={"SHEAF_TOKENS_FILE": str(tokens)})
    auth = {"Authorization": "Bearer dash-secret-token"}
    assert srv.api("GET", "/").status == 200
    assert srv.api("GET", "/ui/app.js").status == 200
    assert srv.api("GET", "/v1/jobs").status == 401
    tag = unique_name("dash-token")
    srv.write_data(f"{tag}/small.csv", arxiv_like(300, 3))
    job = srv.submit(word_count_spec(f"{tag}-job", f"{tag}/small.csv",
                                     "16KiB", 0), headers=auth)
    r = srv.api("GET", f"/v1/jobs/{job['id']}?wait=60", headers=auth,
                timeout=90)
    assert r.status == 200 and r.body["status"] == "succeeded", r
    want = srv.api("GET", f"/v1/jobs/{job['id']}/result", headers=auth).raw

    out_dir = tmp_path / "screenshots"
    out_dir.mkdir()
    cfg = tmp_path / "dashboard.json"
    cfg.write_text(json.dumps({
        "url": srv.base, "out": str(out_dir), "chromium": CHROMIUM,
        "token": "dash-secret-token", "watch": job["id"]}))
    proc = subprocess.run(["node", str(DRIVER), str(cfg)],
                          capture_output=True, text=True, timeout=600,
                          cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    print(f"screenshots: {out_dir}")
    assert "error" not in out, out["error"]
    assert out["problems"] == [], out["problems"]
    assert "token" in out["asked"], out["asked"]
    assert out["stored"] == "dash-secret-token"
    assert out["asked_again"] is False
    assert out["status"] == "succeeded"
    assert out["download"], "the result link saved no file"
    assert Path(out["download"]).read_bytes() == want
