-- 0004_datasets.sql - uploaded datasets, the datasets a job reads, and the
-- SHA-256 of each committed result part (for GET /v1/jobs/{id}/manifest).
--
-- A dataset's file is SPOOL/datasets/FILE (spool_dataset_path); a row is
-- inserted only once the file is complete and fsynced, and deleted before
-- the file is removed. A job that reads datasets lists their ids in
-- dataset_ids, so that deleting one is refused while such a job is queued
-- or running.

CREATE TABLE datasets (
    id          uuid PRIMARY KEY,
    seq         bigserial UNIQUE,          -- listing order and cursors
    tenant      text NOT NULL,
    name        text NOT NULL,
    file        text NOT NULL,             -- name under SPOOL/datasets
    bytes       bigint NOT NULL,
    sha256      text NOT NULL,             -- 64 lower-case hex digits
    compression text NOT NULL DEFAULT 'none',  -- 'none' or 'gzip'
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX datasets_tenant_seq ON datasets (tenant, seq DESC);
CREATE INDEX datasets_tenant_name ON datasets (tenant, name);

ALTER TABLE jobs
    ADD COLUMN dataset_ids uuid[];             -- the datasets it reads

CREATE INDEX jobs_dataset_ids ON jobs USING gin (dataset_ids)
    WHERE status IN ('queued', 'running');

ALTER TABLE tasks
    ADD COLUMN sha256 text;                    -- of a committed result part:
                                               -- set by its worker after
                                               -- the commit (or by the
                                               -- first manifest request)
