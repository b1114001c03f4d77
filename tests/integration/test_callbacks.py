"""
test_callbacks.py - end-of-job callbacks (issue 10 point 4): a receiver on
127.0.0.1 (SHEAF_CALLBACK_ALLOW_PRIVATE=1) gets the job object, signed with
Sheaf-Signature, which it verifies in constant time; a receiver that fails
twice then succeeds shows 3 attempts on the job; a receiver that hangs
slows no job; a private URL is refused without the setting; the secret is
in neither the job, the list nor the log.
"""

import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid

import pytest

from harness import unique_name, wait_until

SECRET = "s3cret-" + uuid.uuid4().hex


def verify(secret, header, body):
    """The README's verifier: True when 'header' signs 'body'."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body,
                   hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


class Receiver:
    """An HTTP server on 127.0.0.1 answering POSTs per 'plan': each path's
    list of statuses, one per attempt (the last repeats); a path in 'hold'
    waits on its event before answering."""

    def __init__(self):
        self.got = []          # (path, headers, body)
        self.plan = {}
        self.hold = {}
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.got.append((self.path, dict(self.headers), body))
                    seen = sum(1 for g in outer.got if g[0] == self.path)
                    statuses = outer.plan.get(self.path, [200])
                ev = outer.hold.get(self.path)
                if ev is not None:
                    ev.wait(60)
                status = statuses[min(seen, len(statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def posts(self, path):
        with self.lock:
            return [g for g in self.got if g[0] == path]

    def close(self):
        for ev in self.hold.values():
            ev.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def small_spec(srv, tag, callback=None):
    rel = f"callbacks/{unique_name(tag)}.csv"
    srv.write_data(rel, "a,b\n1,2\n3,4\n")
    spec = {"name": unique_name(tag), "input": {"path": rel,
                                                "format": "csv"},
            "steps": [], "output": {"format": "csv"}}
    if callback is not None:
        spec["callback"] = callback
    return spec


def callback_state(srv, jid, state):
    def ok():
        job = srv.get(jid)
        return job if job["callback"]["state"] == state else None
    return wait_until(ok, 60, f"callback of {jid} {state}", 0.1)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://localhost/hook",
    "http://10.1.2.3/hook", "http://192.168.0.1/", "http://172.16.5.4/",
    "http://169.254.169.254/latest", "http://[::1]:8080/",
    "http://[fd00::1]/", "http://0.0.0.0/", "ftp://example.com/x"])
def test_private_refused(sheaf, url):
    r = sheaf.api("POST", "/v1/jobs",
                  small_spec(sheaf, "cb-private", {"url": url}))
    assert r.status == 400, r
    assert r.body["error"]["path"] == "callback.url", r.body
    assert r.body["error"]["code"] == "invalid_spec"


def test_callbacks(life_sheaf, receiver):
    srv = life_sheaf("callbacks",
                     env={"SHEAF_CALLBACK_ALLOW_PRIVATE": "1"})

    # Delivered at once, signed, the job object without the secret.
    job = srv.submit(small_spec(srv, "cb-ok", {"url": receiver.url("/ok"),
                                                "secret": SECRET}))
    assert "secret" not in job["spec"]["callback"]
    assert job["status"] in ("queued", "running", "succeeded")
    final = callback_state(srv, job["id"], "delivered")
    assert final["callback"]["attempts"] == 1
    assert final["callback"]["last_status"] == 200
    assert final["callback"]["url"] == receiver.url("/ok")
    (path, headers, body), = receiver.posts("/ok")
    assert headers["Content-Type"] == "application/json"
    assert verify(SECRET, headers["Sheaf-Signature"], body)
    assert not verify("wrong", headers["Sheaf-Signature"], body)
    assert not verify(SECRET, headers["Sheaf-Signature"], body + b" ")
    sent = json.loads(body)
    assert sent["id"] == job["id"] and sent["status"] == "succeeded"
    assert SECRET.encode() not in body

    # Fails twice, then succeeds: three attempts on the job.
    receiver.plan["/flaky"] = [500, 503, 200]
    job2 = srv.submit(small_spec(srv, "cb-flaky",
                                 {"url": receiver.url("/flaky"),
                                  "secret": SECRET}))
    final2 = callback_state(srv, job2["id"], "delivered")
    assert final2["callback"]["attempts"] == 3
    assert final2["callback"]["last_status"] == 200
    assert len(receiver.posts("/flaky")) == 3
    for _, h, b in receiver.posts("/flaky"):
        assert verify(SECRET, h["Sheaf-Signature"], b)

    # A receiver that hangs slows no job: the next job succeeds while the
    # callback of the one before is still waiting for its answer.
    release = threading.Event()
    receiver.hold["/slow"] = release
    job3 = srv.submit(small_spec(srv, "cb-slow",
                                 {"url": receiver.url("/slow")}))
    wait_until(lambda: receiver.posts("/slow"), 60,
               "the slow receiver to be called", 0.05)
    job4 = srv.submit(small_spec(srv, "cb-after"))
    assert srv.wait(job4["id"])["status"] == "succeeded"
    assert not release.is_set()
    assert srv.get(job3["id"])["callback"]["state"] == "pending"
    release.set()
    callback_state(srv, job3["id"], "delivered")

    # A dead receiver: retried, the job itself long succeeded.
    dead = small_spec(srv, "cb-dead", {"url": "http://127.0.0.1:9/dead"})
    job5 = srv.submit(dead)
    assert srv.wait(job5["id"])["status"] == "succeeded"
    def tried():
        cb = srv.get(job5["id"])["callback"]
        return cb if cb["attempts"] >= 1 and cb["last_error"] else None
    cb = wait_until(tried, 60, "an attempt on the dead receiver", 0.1)
    assert cb["state"] == "pending" and cb["last_status"] is None

    # The secret is in no job object, listing or log line.
    for j in (job, job2):
        got = srv.api("GET", f"/v1/jobs/{j['id']}")
        assert SECRET.encode() not in got.raw
    listing = srv.api("GET", "/v1/jobs?limit=1000")
    assert listing.status == 200
    assert SECRET.encode() not in listing.raw
    assert SECRET not in srv.log_path.read_text(errors="replace")


def test_delivery_survives_a_crash(life_sheaf, receiver):
    """sheafd is killed (SIGKILL) while the receiver holds the first
    attempt: the restarted sheafd delivers it from the outbox."""
    srv = life_sheaf("callbacks-crash",
                     env={"SHEAF_CALLBACK_ALLOW_PRIVATE": "1"})
    hold = threading.Event()
    receiver.hold["/crash"] = hold
    job = srv.submit(small_spec(srv, "cb-crash",
                                {"url": receiver.url("/crash"),
                                 "secret": SECRET}))
    wait_until(lambda: receiver.posts("/crash"), 60,
               "the first attempt", 0.05)
    orphans = srv.kill9()
    del receiver.hold["/crash"]
    hold.set()
    srv.start()
    # The killed attempt's claim lapses (CALLBACK_LEASE_S, 20 s), then
    # the new sheafd delivers it.
    final = wait_until(
        lambda: (lambda j: j if j["callback"]["state"] == "delivered"
                 else None)(srv.get(job["id"])),
        90, "the callback delivered after the restart", 0.2)
    assert final["callback"]["attempts"] == 2
    posts = receiver.posts("/crash")
    assert len(posts) == 2
    for _, h, b in posts:
        assert verify(SECRET, h["Sheaf-Signature"], b)
        assert json.loads(b)["id"] == job["id"]
    assert orphans is not None
