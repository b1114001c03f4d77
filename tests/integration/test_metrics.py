"""
test_metrics.py - GET /metrics (issue 10 point 5): the text passes
Prometheus' own `promtool check metrics`; the figures follow what the test
did (jobs succeeded, requests to a route); a real Prometheus server started
by the test scrapes sheafd once and its HTTP API gives back the value of a
counter, compared with what the test did.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness import free_port, unique_name, wait_until


def metrics(srv):
    r = srv.api("GET", "/metrics")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/plain")
    return r.raw.decode("utf-8")


def value(text, name, **labels):
    """The value of series 'name' with exactly 'labels', or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        if m.group(1) != name:
            continue
        got = ",".join(sorted(re.findall(r'[a-z_]+="[^"]*"', m.group(3)
                                         or "")))
        if got == want:
            return float(m.group(4))
    return None


def small_job(srv, tag):
    rel = f"metrics-{unique_name(tag)}.csv"
    srv.write_data(rel, "a,b\n1,2\n3,4\n")
    return {"name": unique_name(tag),
            "input": {"path": rel, "format": "csv"},
            "steps": [], "output": {"format": "csv"}}


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool (Debian's prometheus) is not installed")
def test_promtool_check(sheaf):
    job = sheaf.submit(small_job(sheaf, "metrics-lint"))
    assert sheaf.wait(job["id"])["status"] == "succeeded"
    text = metrics(sheaf)
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert value(text, "sheaf_database_up") == 1
    assert value(text, "sheaf_workers_alive") >= 1
    assert value(text, "sheaf_jobs", status="succeeded") >= 1
    assert value(text, "sheaf_task_duration_seconds_count") >= 1
    assert re.search(r'^sheaf_build_info\{version="[^"]+",commit="[^"]+"\} '
                     r'1$', text, re.M)


def test_counts_follow(sheaf):
    before = metrics(sheaf)
    route = dict(method="GET", route="/v1/jobs/{id}", code="2xx")
    n0 = value(before, "sheaf_http_requests_total", **route) or 0
    s0 = value(before, "sheaf_jobs", status="succeeded")
    jobs = [sheaf.submit(small_job(sheaf, "metrics-n")) for _ in range(3)]
    for j in jobs:
        assert sheaf.wait(j["id"])["status"] == "succeeded"
    for j in jobs:
        sheaf.get(j["id"])
    after = metrics(sheaf)
    # wait() polls GET /v1/jobs/{id} too: at least the three GETs above.
    assert value(after, "sheaf_http_requests_total", **route) >= n0 + 3
    assert value(after, "sheaf_jobs", status="succeeded") >= s0 + 3
    hist = value(after, "sheaf_http_request_duration_seconds_count",
                 method="GET", route="/v1/jobs/{id}")
    assert hist >= value(after, "sheaf_http_requests_total", **route)


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="prometheus (Debian's package) is not installed")
def test_prometheus_scrape(life_sheaf, tmp_path):
    srv = life_sheaf("metrics-prom")
    # This instance's counter starts at 0: the test knows its value.
    jobs = [srv.submit(small_job(srv, "metrics-prom")) for _ in range(2)]
    for j in jobs:
        assert srv.wait(j["id"])["status"] == "succeeded"
    posts = value(metrics(srv), "sheaf_http_requests_total", method="POST",
                  route="/v1/jobs", code="2xx")
    assert posts == 2

    port = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: sheaf\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{srv.port}']\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={conf}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        query = ('sheaf_http_requests_total{method="POST",'
                 'route="/v1/jobs",code="2xx"}')

        def scraped():
            url = (f"http://127.0.0.1:{port}/api/v1/query?"
                   + urllib.parse.urlencode({"query": query}))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                return None
            assert body["status"] == "success", body
            res = body["data"]["result"]
            return res or None

        res = wait_until(scraped, 60, "Prometheus to scrape sheafd",
                         interval=0.5)
        assert len(res) == 1, res
        assert res[0]["metric"]["job"] == "sheaf"
        assert float(res[0]["value"][1]) == posts
    finally:
        os.killpg(prom.pid, signal.SIGTERM)
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(prom.pid, signal.SIGKILL)
            prom.wait()
        log.close()
