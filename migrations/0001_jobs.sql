-- 0001_jobs.sql - jobs and their per-partition tasks.
--
-- A job and every one of its tasks are rows from the moment POST /v1/jobs
-- returns: nothing about a job lives only in a process's memory.

CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    seq             bigserial UNIQUE,          -- listing order and cursors
    tenant          text NOT NULL,
    name            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded',
                                      'failed', 'cancelled')),
    spec            jsonb NOT NULL,            -- the job spec as submitted
    resolution      jsonb NOT NULL,            -- files, schema, partitions
    stage_tasks     integer[] NOT NULL,        -- tasks of each stage
    priority        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 3,
    timeout_s       integer NOT NULL DEFAULT 0,
    retention_s     bigint NOT NULL DEFAULT 604800,
    idempotency_key text,
    body_sha256     text,
    error           text,
    result_bytes    bigint,
    result_rows     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);

CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq DESC);

CREATE SEQUENCE task_lease_seq;

CREATE TABLE tasks (
    job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage        integer NOT NULL,
    part         integer NOT NULL,
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'failed',
                                  'cancelled')),
    attempts     integer NOT NULL DEFAULT 0,
    lease        bigint,                       -- fencing token of the attempt
    lease_until  timestamptz,
    worker       text,
    not_before   timestamptz NOT NULL DEFAULT now(), -- retry backoff
    byte_start   bigint NOT NULL DEFAULT 0,
    byte_end     bigint NOT NULL DEFAULT 0,
    rows_in      bigint NOT NULL DEFAULT 0,
    bytes_in     bigint NOT NULL DEFAULT 0,
    rows_out     bigint NOT NULL DEFAULT 0,
    bytes_out    bigint NOT NULL DEFAULT 0,
    rows_skipped bigint NOT NULL DEFAULT 0,
    output       text,                         -- committed output file
    error        text,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (job_id, stage, part)
);

CREATE INDEX tasks_runnable ON tasks (not_before) WHERE state = 'queued';
CREATE INDEX tasks_running ON tasks (lease_until) WHERE state = 'running';
