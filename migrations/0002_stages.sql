-- 0002_stages.sql - multi-stage jobs: what a task's operators spilled and
-- held, and when an ended job's intermediate files were removed.
--
-- A job's tasks are the tasks of all its stages (stage 0: one per input
-- partition; a later stage: the buckets or runs of a combine step). Once a
-- job has ended, a pass over the jobs whose cleaned_at is NULL removes
-- from its spool directory everything but the committed result parts of
-- its last stage (succeeded) and its artifacts, then sets cleaned_at.

ALTER TABLE tasks
    ADD COLUMN spill_bytes bigint NOT NULL DEFAULT 0,  -- written to spill files
    ADD COLUMN peak_bytes  bigint NOT NULL DEFAULT 0;  -- most memory held

ALTER TABLE jobs
    ADD COLUMN cleaned_at timestamptz;  -- intermediate files removed

-- Jobs ended before this migration: their files are swept once too.
CREATE INDEX jobs_to_clean ON jobs (finished_at)
    WHERE cleaned_at IS NULL
      AND status IN ('succeeded', 'failed', 'cancelled');
