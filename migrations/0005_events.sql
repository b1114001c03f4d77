-- 0005_events.sql - a job's events (GET /v1/jobs/{id}/events) and the
-- outbox of its end-of-job callback.
--
-- Events are written by triggers, in the transaction that changes the
-- job, so that no code path that changes a job's status (submit, claim,
-- finish, fail, cancel, timeout, reap) can forget one:
--
-- - a 'state' event for every change of jobs.status (and the first,
--   'queued', at insert), its data {"status", "progress"};
-- - a 'progress' event when a task is done, at most one every 250 ms per
--   job (the rest are skipped: the next event, or the terminal one,
--   carries the counts), its data {"progress"}.
--
-- An event's seq is the job's own counter (jobs.event_seq), bumped under
-- the job's row lock, so events of a job commit in seq order: a reader
-- that has seen seq n never later finds a smaller one committed
-- (Last-Event-ID resumption loses nothing, across restarts too). Every
-- event is announced with NOTIFY sheaf_jobs, payload the job id, which
-- PostgreSQL delivers on commit.
--
-- When a job with a "callback" in its spec ends, the same transaction
-- queues its delivery in callback_outbox; sheafd's delivery thread claims
-- due rows with FOR UPDATE SKIP LOCKED, so a crash loses nothing and
-- several nodes never deliver the same attempt twice at once.

ALTER TABLE jobs
    ADD COLUMN event_seq   bigint NOT NULL DEFAULT 0,  -- last event's seq
    ADD COLUMN progress_at timestamptz;                -- last progress event

CREATE TABLE job_events (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    bigint NOT NULL,
    kind   text NOT NULL,                 -- 'state' or 'progress'
    data   jsonb NOT NULL,
    at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE callback_outbox (
    job_id       uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    url          text NOT NULL,
    next_at      timestamptz NOT NULL DEFAULT now(), -- next attempt (also
                                                     -- the claim's lease)
    first_at     timestamptz NOT NULL DEFAULT now(), -- queued
    attempts     integer NOT NULL DEFAULT 0,
    last_status  integer,                 -- HTTP status of the last attempt
    last_error   text,                    -- why it failed, when it did
    delivered_at timestamptz,
    given_up_at  timestamptz
);

CREATE INDEX callback_outbox_due ON callback_outbox (next_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- The progress object of job 'j', as the job object shows it, with the
-- per-stage counts ("stages": [{stage, partitions_done,
-- partitions_total}]).
CREATE FUNCTION sheaf_job_progress(j uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH jb AS (SELECT stage_tasks FROM jobs WHERE id = j),
    st AS (SELECT stage,
        count(*) FILTER (WHERE state = 'done') AS done,
        count(*) FILTER (WHERE state = 'running') AS running,
        count(*) FILTER (WHERE state = 'failed') AS failed,
        sum(rows_in) AS rows_in, sum(bytes_in) AS bytes_in,
        sum(rows_out) AS rows_out, sum(rows_skipped) AS skipped
        FROM tasks WHERE job_id = j GROUP BY stage),
    sg AS (SELECT (s.i - 1)::int AS stage, s.n AS total,
                  coalesce(st.done, 0) AS done
           FROM jb, unnest(jb.stage_tasks) WITH ORDINALITY AS s(n, i)
           LEFT JOIN st ON st.stage = s.i - 1)
    SELECT jsonb_build_object(
        'partitions_total', (SELECT coalesce(sum(total), 0) FROM sg),
        'partitions_done', (SELECT coalesce(sum(done), 0) FROM st),
        'partitions_running', (SELECT coalesce(sum(running), 0) FROM st),
        'partitions_failed', (SELECT coalesce(sum(failed), 0) FROM st),
        'rows_in', coalesce((SELECT rows_in FROM st WHERE stage = 0), 0),
        'bytes_in', coalesce((SELECT bytes_in FROM st WHERE stage = 0), 0),
        'rows_out', coalesce((SELECT st.rows_out FROM st, jb WHERE st.stage
                              = cardinality(jb.stage_tasks) - 1), 0),
        'rows_skipped', coalesce((SELECT skipped FROM st
                                  WHERE stage = 0), 0),
        'stages', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'stage', stage, 'partitions_total', total,
                       'partitions_done', done) ORDER BY stage), '[]')
                   FROM sg))
$$;

-- Jobs submitted before this migration: their present state is their
-- first event, so that a stream of an ended one ends.
UPDATE jobs SET event_seq = 1;
INSERT INTO job_events (job_id, seq, kind, data)
SELECT id, 1, 'state', jsonb_build_object('status', status,
                                          'progress', sheaf_job_progress(id))
  FROM jobs;

-- BEFORE INSERT OR UPDATE OF status: the new state's seq.
CREATE FUNCTION sheaf_job_seq() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.event_seq := CASE WHEN TG_OP = 'INSERT' THEN 1
                          ELSE OLD.event_seq + 1 END;
    RETURN NEW;
END
$$;

-- AFTER INSERT OR UPDATE OF status: the state event, its notification,
-- and at the end the callback's delivery.
CREATE FUNCTION sheaf_job_state_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, seq, kind, data)
    VALUES (NEW.id, NEW.event_seq, 'state',
            jsonb_build_object('status', NEW.status,
                               'progress', sheaf_job_progress(NEW.id)));
    PERFORM pg_notify('sheaf_jobs', NEW.id::text);
    IF NEW.status IN ('succeeded', 'failed', 'cancelled')
       AND jsonb_typeof(NEW.spec -> 'callback' -> 'url') = 'string' THEN
        INSERT INTO callback_outbox (job_id, url)
        VALUES (NEW.id, NEW.spec -> 'callback' ->> 'url')
        ON CONFLICT (job_id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_seq_insert BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION sheaf_job_seq();
CREATE TRIGGER jobs_seq_update BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION sheaf_job_seq();
CREATE TRIGGER jobs_event_insert AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION sheaf_job_state_event();
CREATE TRIGGER jobs_event_update AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION sheaf_job_state_event();

-- AFTER UPDATE OF state ON tasks, a task done: a progress event unless the
-- job had one in the last 250 ms. The finisher holds the job's row lock
-- already (db_tasks.c), so taking it here adds no lock order.
CREATE FUNCTION sheaf_task_progress_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    UPDATE jobs SET event_seq = event_seq + 1,
                    progress_at = clock_timestamp()
     WHERE id = NEW.job_id AND status = 'running'
       AND (progress_at IS NULL
            OR progress_at < clock_timestamp() - interval '250 ms')
    RETURNING event_seq INTO s;
    IF s IS NOT NULL THEN
        INSERT INTO job_events (job_id, seq, kind, data)
        VALUES (NEW.job_id, s, 'progress',
                jsonb_build_object('progress',
                                   sheaf_job_progress(NEW.job_id)));
        PERFORM pg_notify('sheaf_jobs', NEW.job_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_progress_event AFTER UPDATE OF state ON tasks
    FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done')
    EXECUTE FUNCTION sheaf_task_progress_event();
