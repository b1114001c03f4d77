-- 0003_claim.sql - a claim whose cost does not grow with the queue, and a
-- fair share of the workers between the jobs of one priority.
--
-- The claim (CLAIM_SQL in service/db_tasks.c) walks the jobs that are
-- queued or running in jobs_claim's order: priority (highest first), then
-- the job claimed from longest ago (never first), then age; for each it
-- takes the first runnable task in tasks_queued's order (stage, index),
-- skipping locked ones, and stops at the first job that has one. Both are
-- index scans cut short by a LIMIT: no sort of the queued tasks, however
-- many there are. Every claim stamps its job's claimed_at, so the jobs of
-- one priority take turns (round robin) instead of the oldest draining
-- first.

ALTER TABLE jobs
    ADD COLUMN claimed_at timestamptz;  -- when a task of it was last claimed

CREATE INDEX jobs_claim ON jobs (priority DESC, claimed_at NULLS FIRST, seq)
    WHERE status IN ('queued', 'running');

CREATE INDEX tasks_queued ON tasks (job_id, stage, part)
    WHERE state = 'queued';
