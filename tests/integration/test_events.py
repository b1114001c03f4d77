"""
test_events.py - GET /v1/jobs/{id}/events (issue 10 point 2): a real
server-sent event stream read as it comes (http.client, line by line):
every state change present and in order, ids monotonic, progress events
with the job's progress object, the stream ending after the terminal
event; a reconnection in the middle with Last-Event-ID loses and repeats
nothing, also across a restart of sheafd; 400 and 404.
"""

import http.client
import json
import signal
import uuid

import pytest

import datagen
import openapi_check
from harness import TERMINAL, signal_all, sql, unique_name

PART = "128KiB"


@pytest.fixture(scope="module")
def ev_input(session_server):
    rel = f"events-{uuid.uuid4().hex[:8]}/big.csv"
    path = session_server.data / rel
    path.parent.mkdir(parents=True)
    datagen.write_big(path, 4 * 1024 * 1024)
    return rel


def spec_of(rel, tag="events"):
    return {"name": unique_name(tag),
            "input": {"path": rel, "format": "csv", "partition_size": PART},
            "steps": datagen.BIG_STEPS, "output": {"format": "csv"}}


class Stream:
    """One connection to a job's event stream, parsed as the WHATWG
    standard says (comments skipped, events ended by a blank line)."""

    def __init__(self, srv, job_id, last_id=None, timeout=20):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                               timeout=timeout)
        self.path = f"/v1/jobs/{job_id}/events"
        hdrs = {"Accept": "text/event-stream"}
        if last_id is not None:
            hdrs["Last-Event-ID"] = str(last_id)
        self.conn.request("GET", self.path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.comments = 0
        if self.resp.status != 200:
            body = self.resp.read()
            openapi_check.check("GET", self.path, self.resp.status,
                                self.resp.headers, body)
        else:
            # The body is a stream: its headers are what the document
            # describes (text/event-stream).
            openapi_check.check("GET", self.path, self.resp.status,
                                self.resp.headers, b"")

    def events(self):
        """Yield (id, event, data as JSON) until the stream ends."""
        eid, kind, data = None, "message", []
        while True:
            raw = self.resp.readline()
            if not raw:
                return
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    yield eid, kind, json.loads("\n".join(data))
                kind, data = "message", []
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                eid = int(value)
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)

    def close(self):
        self.conn.close()


def read_all(srv, job_id, last_id=None, stop_after=None):
    """The events of one connection: all until the stream ends, or the
    first 'stop_after' (the connection is then closed)."""
    s = Stream(srv, job_id, last_id)
    assert s.resp.status == 200, s.resp.status
    assert s.resp.headers["Content-Type"].startswith("text/event-stream")
    got = []
    for ev in s.events():
        got.append(ev)
        if stop_after is not None and len(got) >= stop_after:
            break
    s.close()
    return got


def table_events(job_id):
    rows = sql(f"SELECT seq, kind FROM job_events WHERE job_id = "
               f"'{job_id}' ORDER BY seq")
    return [(int(r[0]), r[1]) for r in rows]


def check_whole(events, job_id):
    """A whole stream: ids 1, 2, ... with no gap, the states in order,
    the terminal one last, matching the job_events table."""
    ids = [e[0] for e in events]
    assert ids == list(range(1, len(ids) + 1)), ids
    states = [e[2]["status"] for e in events if e[1] == "state"]
    assert states == ["queued", "running", "succeeded"], states
    assert events[-1][1] == "state" and events[-1][2]["status"] in TERMINAL
    for _, kind, data in events:
        assert kind in ("state", "progress")
        p = data["progress"]
        assert p["partitions_done"] <= p["partitions_total"]
        assert sum(s["partitions_total"] for s in p["stages"]) \
            == p["partitions_total"]
    done = [e[2]["progress"]["partitions_done"] for e in events]
    assert done == sorted(done), done
    last = events[-1][2]["progress"]
    assert last["partitions_done"] == last["partitions_total"] > 1
    assert [(e[0], e[1]) for e in events] == table_events(job_id)


def test_stream_whole(sheaf, ev_input):
    job = sheaf.submit(spec_of(ev_input))
    events = read_all(sheaf, job["id"])
    check_whole(events, job["id"])
    final = sheaf.get(job["id"])
    assert final["status"] == "succeeded"
    assert events[-1][2]["progress"]["rows_out"] \
        == final["progress"]["rows_out"]
    # Read again after the end: the same stream, then the end at once.
    assert read_all(sheaf, job["id"]) == events
    assert read_all(sheaf, job["id"], last_id=events[-1][0]) == []


def test_reconnect_in_the_middle(sheaf, ev_input):
    job = sheaf.submit(spec_of(ev_input, "events-resume"))
    first = read_all(sheaf, job["id"], stop_after=2)
    assert [e[0] for e in first] == [1, 2]
    rest = read_all(sheaf, job["id"], last_id=first[-1][0])
    events = first + rest
    check_whole(events, job["id"])
    assert read_all(sheaf, job["id"]) == events


def test_resume_across_restart(life_sheaf, ev_input):
    srv = life_sheaf("events-restart")
    job = srv.submit(spec_of(ev_input, "events-restart"))
    first = read_all(srv, job["id"], stop_after=1)
    assert first[0][:2] == (1, "state")
    srv.stop()
    srv.start()
    rest = read_all(srv, job["id"], last_id=first[-1][0])
    events = first + rest
    ids = [e[0] for e in events]
    assert ids == list(range(1, len(ids) + 1)), ids
    states = [e[2]["status"] for e in events if e[1] == "state"]
    # Stopped while it ran, the job goes on after the restart; it may
    # have been queued again in between (no state change is lost).
    assert states[0] == "queued" and states[-1] == "succeeded", states
    assert [(e[0], e[1]) for e in events] == table_events(job["id"])


def test_cancelled_ends_the_stream(sheaf, ev_input):
    job = sheaf.submit(spec_of(ev_input, "events-cancel"))
    s = Stream(sheaf, job["id"])
    it = s.events()
    assert next(it)[2]["status"] == "queued"
    r = sheaf.api("POST", f"/v1/jobs/{job['id']}/cancel")
    if r.status == 409:
        pytest.skip("the job ended before it could be cancelled")
    assert r.status == 202, r
    rest = list(it)
    s.close()
    states = [e[2]["status"] for e in rest if e[1] == "state"]
    assert states[-1] == "cancelled" and "succeeded" not in states, states
    assert rest[-1][1] == "state"


def test_heartbeat(life_sheaf, ev_input):
    """A job that cannot start (its one worker is stopped): after its first
    event the stream only sends a heartbeat comment (15 s), then goes on
    once the worker does."""
    srv = life_sheaf("events-heartbeat", env={"SHEAF_WORKERS": "1"})
    workers = list(srv.children())
    assert len(workers) == 1
    signal_all(workers, signal.SIGSTOP)
    try:
        job = srv.submit(spec_of(ev_input, "events-heartbeat"))
        s = Stream(srv, job["id"])
        it = s.events()
        first = next(it)
        assert first[:2] == (1, "state") and first[2]["status"] == "queued"
        # Read raw lines until the first comment: nothing else may come.
        while True:
            line = s.resp.readline().decode().rstrip("\r\n")
            if line.startswith(":"):
                assert line == ": heartbeat"
                break
            assert line == "", f"an event while the job cannot run: {line}"
    finally:
        signal_all(workers, signal.SIGCONT)
    rest = list(Stream(srv, job["id"], last_id=1).events())
    assert rest[-1][2]["status"] == "succeeded"
    s.close()


def test_errors(sheaf, ev_input):
    s = Stream(sheaf, str(uuid.uuid4()))
    assert s.resp.status == 404
    s.close()
    job = sheaf.submit(spec_of(ev_input, "events-bad"))
    for bad in ("abc", "-1", "1 2", "9" * 19):
        s = Stream(sheaf, job["id"], last_id=bad)
        assert s.resp.status == 400, bad
        s.close()
    assert sheaf.wait(job["id"], timeout=60)["status"] == "succeeded"


def test_jobs_before_the_migration(sheaf):
    """Jobs that existed before 0005_events.sql get their present state as
    event 1 (so a stream of an ended one ends); later changes follow."""
    from harness import REPO, database_url
    import subprocess
    base = database_url()
    name = "sheaf_ev_" + uuid.uuid4().hex[:12]

    def psql(url, q=None, f=None):
        args = ["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1"]
        args += ["-c", q] if q else ["-f", str(f)]
        return subprocess.run(args, check=True, capture_output=True,
                              text=True).stdout.strip()

    psql(base, f"CREATE DATABASE {name}")
    url = f"{base} dbname={name}"
    try:
        for m in ("0001_jobs.sql", "0002_stages.sql"):
            psql(url, f=REPO / "migrations" / m)
        jid = str(uuid.uuid4())
        psql(url, "INSERT INTO jobs (id, tenant, spec, resolution, "
                  "stage_tasks, status) VALUES "
                  f"('{jid}', 't', '{{}}', '{{}}', '{{2}}', 'succeeded');"
                  "INSERT INTO tasks (job_id, stage, part, state) VALUES "
                  f"('{jid}', 0, 0, 'done'), ('{jid}', 0, 1, 'done')")
        psql(url, f=REPO / "migrations" / "0005_events.sql")
        row = psql(url, "SELECT seq, kind, data->>'status', "
                        "data->'progress'->>'partitions_done' "
                        f"FROM job_events WHERE job_id = '{jid}'")
        assert row == "1|state|succeeded|2", row
        assert psql(url, "SELECT event_seq FROM jobs") == "1"
    finally:
        psql(base, f"DROP DATABASE {name}")
