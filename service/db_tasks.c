/*
 * db_tasks.c - tasks, for workers: claiming one under a fenced lease,
 * renewing the lease, recording the task done (and with it the end of its
 * stage or job) or failed, and giving back the tasks of a worker that died
 * or stopped (see db.h).
 *
 * Every write of an attempt names its lease: a worker presumed dead whose
 * lease went to another attempt changes nothing (the fencing token). The
 * transaction that records a job's last task also ends the job, under a
 * row lock on the job so two finishers cannot both miss each other.
 */
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

/* Text forms of a task's key and lease, for statement parameters. */
typedef struct task_keys {
    char stage[16];
    char part[16];
    char lease[24];
} task_keys;

/* Text forms of a task's counters, for statement parameters. */
typedef struct stats_text {
    char rows_in[24];
    char bytes_in[24];
    char rows_out[24];
    char bytes_out[24];
    char rows_skipped[24];
    char spill_bytes[24];
    char peak_bytes[24];
} stats_text;

static void
stats_text_fill(stats_text *x, const exec_stats *st)
{
    snprintf(x->spill_bytes, sizeof x->spill_bytes, "%" PRIu64,
             st->spill_bytes);
    snprintf(x->peak_bytes, sizeof x->peak_bytes, "%" PRIu64, st->peak_bytes);
    snprintf(x->rows_in, sizeof x->rows_in, "%" PRIu64, st->rows_in);
    snprintf(x->bytes_in, sizeof x->bytes_in, "%" PRIu64, st->bytes_in);
    snprintf(x->rows_out, sizeof x->rows_out, "%" PRIu64, st->rows_out);
    snprintf(x->bytes_out, sizeof x->bytes_out, "%" PRIu64, st->bytes_out);
    snprintf(x->rows_skipped, sizeof x->rows_skipped, "%" PRIu64,
             st->rows_skipped);
}

static void
task_keys_fill(task_keys *k, const db_task *t)
{
    snprintf(k->stage, sizeof k->stage, "%d", t->stage);
    snprintf(k->part, sizeof k->part, "%d", t->part);
    snprintf(k->lease, sizeof k->lease, "%" PRId64, t->lease);
}

/* 'n' rows changed by a write fenced by t's lease: 0 when it was one,
 * SH_ESTATE (the lease was lost) when none, SH_EDB when 'n' is. */
static int
task_fenced(int n, const db_task *t, sh_err *err)
{
    if (n < 0)
        return SH_EDB;
    if (n != 1)
        return sh_err_set(err, SH_ESTATE, NULL,
                          "lease of job %s part %d "
                          "lost",
                          t->job_id, t->part);
    return 0;
}

void
db_task_clear(db_task *t)
{
    for (size_t i = 0; i < t->n_inputs; i++)
        free(t->inputs[i]);
    free(t->inputs);
    t->inputs = NULL;
    t->n_inputs = 0;
}

/* The committed outputs of the stage before t's, in task order. */
static int
task_inputs(db *d, db_task *t, sh_err *err)
{
    char        stage[16];
    const char *p[2] = {t->job_id, stage};
    PGresult   *res;

    snprintf(stage, sizeof stage, "%d", t->stage - 1);
    res = db_exec(d, "read stage inputs",
                  "SELECT output FROM tasks WHERE job_id = $1"
                  " AND stage = $2 AND state = 'done' ORDER BY part",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    t->n_inputs = (size_t)db_strings_of(res, &t->inputs);
    PQclear(res);
    return 0;
}

/*
 * The claim, one statement in its own (implicit) transaction:
 *
 * - The CTE picks one runnable task: queued, past its retry backoff
 *   (not_before), of a job still queued or running. The order is the
 *   scheduling policy: the job's priority (highest first), then, among the
 *   jobs of one priority, the one whose task was claimed longest ago
 *   (claimed_at, stamped by claim_start_job; never claimed first, then the
 *   oldest): the jobs take turns, so a small job submitted after a huge
 *   one gets workers without waiting for it to drain. Within the job, the
 *   earliest stage and the lowest index, so a job's input partitions go
 *   out in file order.
 *
 * - Its cost does not grow with the queue (migration 0003): the open jobs
 *   come in order first (the index jobs_claim: priority DESC, claimed_at
 *   NULLS FIRST, seq; or a sort of the open jobs, a few rows, when the
 *   planner finds that cheaper); for each, the LATERAL subquery takes the
 *   first task of the index tasks_queued (job_id, stage, part, of queued
 *   tasks only); the nested loop keeps the jobs' order, so the outer
 *   ORDER BY costs nothing and the LIMIT stops at the first job that has
 *   a task. The jobs are ordered in a subquery of their own (its ORDER BY
 *   keeps it from being merged into the join): ordered after the join,
 *   the planner may run the LATERAL for every open job, locking the first
 *   task of each. No sort of the queued tasks, ever
 *   (tests/integration/test_hostile.py checks the plan).
 *
 * - FOR UPDATE OF t SKIP LOCKED, inside the subquery: many workers claim
 *   at once; each locks the task row it picks, and a worker that meets a
 *   row another has locked passes over it (to the job's next task, or the
 *   next job) instead of waiting on it (and then finding it running).
 *   Without SKIP LOCKED every worker would queue behind the first; without
 *   the lock two could claim the same task. Only the task row is locked,
 *   never the job's: finishers lock the job (task_lock_job).
 *
 * - The UPDATE marks the task running for 'worker', counts the attempt,
 *   and gives it a new lease from task_lease_seq: the fencing token that
 *   every later write of this attempt must name (heartbeat, finish, fail),
 *   so that once the lease passes to another attempt (it expired and was
 *   reaped) nothing this one writes counts. lease_until, renewed by
 *   heartbeats, is when the reaper may take the task back.
 *
 * The job is then marked running (and its claimed_at stamped) by a second
 * statement in the same transaction, so that one commit (one WAL flush)
 * records both, but only when its row can be locked without waiting (SKIP
 * LOCKED): waiting for the job's lock while holding the task's could
 * deadlock with a cancel or a failure, which lock the job and then its
 * queued tasks. When the row is busy, the claim is committed alone and the
 * job is marked in a statement of its own, which may wait. When the job
 * has ended in between (cancelled, failed, timed out), the task is let go
 * at once.
 */
#define CLAIM_SQL                                                \
    "WITH c AS (SELECT q.job_id, q.stage, q.part"                \
    " FROM (SELECT id, priority, claimed_at, seq FROM jobs"      \
    " WHERE status IN ('queued', 'running')"                     \
    " ORDER BY priority DESC, claimed_at NULLS FIRST, seq) j"    \
    " CROSS JOIN LATERAL (SELECT t.job_id, t.stage, t.part"      \
    " FROM tasks t WHERE t.job_id = j.id AND t.state = 'queued'" \
    " AND t.not_before <= now() ORDER BY t.stage, t.part"        \
    " LIMIT 1 FOR UPDATE OF t SKIP LOCKED) q"                    \
    " ORDER BY j.priority DESC, j.claimed_at NULLS FIRST, j.seq" \
    " LIMIT 1)"                                                  \
    " UPDATE tasks t SET state = 'running',"                     \
    " attempts = t.attempts + 1,"                                \
    " lease = nextval('task_lease_seq'),"                        \
    " lease_until = now() + make_interval(secs => $2::int),"     \
    " worker = $1, started_at = now(), finished_at = NULL"       \
    " FROM c WHERE t.job_id = c.job_id AND t.stage = c.stage"    \
    " AND t.part = c.part"                                       \
    " RETURNING t.job_id, t.stage, t.part, t.lease, t.attempts"

/*
 * The job of claimed task 't' ended between the claim and now: the task
 * ends with it, and its lease is let go at once, lest the sweeper kill
 * this worker for it (db_tasks_to_kill) while it runs another task.
 */
static int
claim_let_go(db *d, const db_task *t, sh_err *err)
{
    task_keys   k;
    const char *kp[4] = {t->job_id, k.stage, k.part, k.lease};

    task_keys_fill(&k, t);
    if (db_run(d, "let go of a task of an ended job",
               "UPDATE tasks SET state = 'cancelled', lease_until = NULL,"
               " finished_at = now() WHERE job_id = $1 AND stage = $2"
               " AND part = $3 AND lease = $4"
               " AND state IN ('running', 'cancelled')",
               4, kp, err)
        < 0)
        return SH_EDB;
    return DB_CLAIM_ENDED;
}

#define START_JOB_SQL(LOCKED)                                   \
    "UPDATE jobs SET status = 'running',"                       \
    " started_at = coalesce(started_at, now()),"                \
    " claimed_at = clock_timestamp()"                           \
    " WHERE id = $1 AND status IN ('queued', 'running')" LOCKED \
    " RETURNING max_attempts, spec::text, resolution::text"

/*
 * Mark the job of claimed task 't' running and read what the worker
 * needs of it. With 'nowait' (inside the claim's transaction), only when
 * the job's row is not locked: DB_CLAIM_NONE when it is, or when the job
 * has ended (the caller commits and calls again without 'nowait').
 * Returns DB_CLAIM_TASK, DB_CLAIM_ENDED, DB_CLAIM_NONE or SH_EDB.
 */
static int
claim_start_job(db *d, db_task *t, int nowait, json_t **spec,
                json_t **resolution, sh_err *err)
{
    const char  *jp[1] = {t->job_id};
    PGresult    *res;
    json_error_t jerr;

    res = nowait ? db_exec(d, "start job",
                           START_JOB_SQL(" AND id IN (SELECT id FROM jobs"
                                         " WHERE id = $1"
                                         " FOR NO KEY UPDATE SKIP LOCKED)"),
                           1, jp, err)
                 : db_exec(d, "start job", START_JOB_SQL(""), 1, jp, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return nowait ? DB_CLAIM_NONE : claim_let_go(d, t, err);
    }
    t->max_attempts = atoi(PQgetvalue(res, 0, 0));
    *spec = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
    *resolution = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    PQclear(res);
    if (t->stage > 0 && task_inputs(d, t, err) < 0)
        return SH_EDB;
    if (*spec == NULL || *resolution == NULL)
        return sh_err_set(err, SH_EDB, NULL,
                          "job %s: stored spec is not "
                          "JSON: %s",
                          t->job_id, jerr.text);
    return DB_CLAIM_TASK;
}

int
db_task_claim(db *d, const char *worker, int lease_s, db_task *t, json_t **spec,
              json_t **resolution, sh_err *err)
{
    char        secs[16];
    const char *p[2] = {worker, secs};
    PGresult   *res;
    int         rc;

    *spec = *resolution = NULL;
    snprintf(secs, sizeof secs, "%d", lease_s);
    if (db_begin(d, err) < 0)
        return SH_EDB;
    res = db_exec(d, "claim task", CLAIM_SQL, 2, p, err);
    if (res == NULL) {
        db_rollback(d);
        return SH_EDB;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        db_rollback(d);
        return DB_CLAIM_NONE;
    }
    snprintf(t->job_id, sizeof t->job_id, "%s", PQgetvalue(res, 0, 0));
    t->stage = atoi(PQgetvalue(res, 0, 1));
    t->part = atoi(PQgetvalue(res, 0, 2));
    t->lease = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    t->attempt = atoi(PQgetvalue(res, 0, 4));
    PQclear(res);
    /* Committed whatever came of it: after a failed statement COMMIT
     * rolls back, and a claim whose job's spec cannot be read must stand
     * (counted, its lease expires), not come back at the next claim. */
    rc = claim_start_job(d, t, 1, spec, resolution, err);
    if (db_commit(d, err) < 0)
        rc = SH_EDB;
    else if (rc == DB_CLAIM_NONE)
        /* The job's row was busy (or the job ended): the claim stands on
         * its own; mark the job in a statement that may wait. */
        rc = claim_start_job(d, t, 0, spec, resolution, err);
    if (rc != DB_CLAIM_TASK) {
        json_decref(*spec);
        json_decref(*resolution);
        *spec = *resolution = NULL;
    }
    return rc;
}

int
db_task_heartbeat(db *d, const db_task *t, int lease_s, const exec_stats *st,
                  sh_err *err)
{
    task_keys   k;
    stats_text  x;
    char        secs[16];
    const char *p[11] = {t->job_id,      k.stage,       k.part,      k.lease,
                         secs,           x.rows_in,     x.bytes_in,  x.rows_out,
                         x.rows_skipped, x.spill_bytes, x.peak_bytes};
    int         n;

    task_keys_fill(&k, t);
    stats_text_fill(&x, st);
    snprintf(secs, sizeof secs, "%d", lease_s);
    n = db_exec_rows(d, "heartbeat",
                     "UPDATE tasks t SET"
                     " lease_until = now() + make_interval(secs => $5::int),"
                     " rows_in = $6, bytes_in = $7, rows_out = $8,"
                     " rows_skipped = $9, spill_bytes = $10,"
                     " peak_bytes = $11"
                     " FROM jobs j WHERE t.job_id = $1 AND t.stage = $2"
                     " AND t.part = $3 AND t.lease = $4"
                     " AND t.state = 'running'"
                     " AND j.id = t.job_id AND j.status = 'running'",
                     11, p, err);
    if (n < 0)
        return SH_EDB;
    if (n != 1)
        return sh_err_set(err, SH_ESTATE, NULL, "lease lost or job ended");
    return 0;
}

/* Lock job 'id' for the rest of the transaction: the job's row lock orders
 * the finishers of one job, so exactly one of them sees every task done.
 * Returns 0, SH_ESTATE (the job was deleted) or SH_EDB. */
static int
task_lock_job(db *d, const char *id, sh_err *err)
{
    const char *p[1] = {id};
    int         n = db_exec_rows(d, "lock job",
                                 "SELECT status FROM jobs WHERE id = $1"
                                         " FOR UPDATE",
                                 1, p, err);

    if (n < 0)
        return SH_EDB;
    if (n == 0)
        return sh_err_set(err, SH_ESTATE, NULL, "job %s was deleted", id);
    return 0;
}

/*
 * Inside db_task_finish's transaction: when every task of t's stage is
 * done, queue the next stage's tasks, or end the job after the last stage.
 */
static int
task_stage_done(db *d, const db_task *t, int *job_done, sh_err *err)
{
    task_keys   k;
    const char *p[2] = {t->job_id, k.stage};
    PGresult   *res;
    int         pending, n_next;

    task_keys_fill(&k, t);
    res = db_exec(d, "check stage",
                  "SELECT (SELECT count(*) FROM tasks WHERE job_id = $1"
                  " AND stage = $2::int AND state <> 'done'),"
                  " coalesce((SELECT stage_tasks[$2::int + 2] FROM jobs"
                  " WHERE id = $1), -1)",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    pending = atoi(PQgetvalue(res, 0, 0));
    n_next = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (pending > 0)
        return 0;
    if (n_next > 0) {
        char        n_s[16];
        const char *np[3] = {t->job_id, k.stage, n_s};

        snprintf(n_s, sizeof n_s, "%d", n_next);
        if (db_run(d, "queue next stage",
                   "INSERT INTO tasks (job_id, stage, part)"
                   " SELECT $1, $2::int + 1, g FROM"
                   " generate_series(0, $3::int - 1) AS g",
                   3, np, err)
                < 0
            || db_notify_tasks(d, err) < 0)
            return SH_EDB;
        return 0;
    }
    if (db_run(d, "complete job",
               "UPDATE jobs j SET status = 'succeeded',"
               " finished_at = now(), result_bytes = s.b,"
               " result_rows = s.r"
               " FROM (SELECT coalesce(sum(bytes_out), 0) AS b,"
               " coalesce(sum(rows_out), 0) AS r FROM tasks"
               " WHERE job_id = $1 AND stage = $2::int) s"
               " WHERE j.id = $1 AND j.status = 'running'",
               2, p, err)
        < 0)
        return SH_EDB;
    *job_done = 1;
    return 0;
}

int
db_task_finish(db *d, const db_task *t, const char *out_path,
               const char *sha256, const exec_stats *st, int *job_done,
               sh_err *err)
{
    task_keys   k;
    stats_text  x;
    const char *p[13] = {t->job_id,
                         k.stage,
                         k.part,
                         k.lease,
                         out_path,
                         x.rows_in,
                         x.bytes_in,
                         x.rows_out,
                         x.bytes_out,
                         x.rows_skipped,
                         x.spill_bytes,
                         x.peak_bytes,
                         sha256 != NULL && sha256[0] != '\0' ? sha256 : NULL};
    int         rc;

    *job_done = 0;
    task_keys_fill(&k, t);
    stats_text_fill(&x, st);
    if ((rc = db_begin(d, err)) < 0)
        return rc;
    if ((rc = task_lock_job(d, t->job_id, err)) < 0)
        goto fail;
    rc = task_fenced(db_exec_rows(d, "finish task",
                                  "UPDATE tasks SET state = 'done',"
                                  " output = $5, rows_in = $6,"
                                  " bytes_in = $7, rows_out = $8,"
                                  " bytes_out = $9, rows_skipped = $10,"
                                  " spill_bytes = $11, peak_bytes = $12,"
                                  " finished_at = now(), lease_until = NULL,"
                                  " error = NULL, sha256 = $13"
                                  " WHERE job_id = $1 AND stage = $2"
                                  " AND part = $3 AND lease = $4"
                                  " AND state = 'running'",
                                  13, p, err),
                     t, err);
    if (rc < 0)
        goto fail;
    if ((rc = task_stage_done(d, t, job_done, err)) < 0)
        goto fail;
    return db_commit(d, err);
fail:
    db_rollback(d);
    return rc;
}

/* Seconds to wait before attempt 'attempt' + 1: 1 s doubling per attempt,
 * at most 60 s, with +-50 % jitter so retries of many tasks spread out. */
static double
retry_backoff_s(int attempt)
{
    double base = 1.0;

    for (int i = 1; i < attempt && base < 60.0; i++)
        base *= 2.0;
    if (base > 60.0)
        base = 60.0;
    return base * (0.5 + (double)random() / RAND_MAX);
}

/* Inside db_task_fail's transaction, a failure that is not retried: the
 * job fails with 'message' and its other open tasks are cancelled. */
static int
task_fail_job(db *d, const db_task *t, const char *message, sh_err *err)
{
    const char *jp[2] = {t->job_id, message};

    if (db_run(d, "fail job",
               "UPDATE jobs SET status = 'failed', error = $2,"
               " finished_at = now() WHERE id = $1"
               " AND status IN ('queued', 'running')",
               2, jp, err)
        < 0)
        return SH_EDB;
    /* The failed job's other tasks end with it: queued ones are never
     * claimed, running ones are stopped by their nodes' sweepers
     * (db_tasks_to_kill). */
    return db_run(d, "cancel the failed job's tasks",
                  "UPDATE tasks SET state = 'cancelled',"
                  " finished_at = now() WHERE job_id = $1"
                  " AND state IN ('queued', 'running')",
                  1, jp, err);
}

int
db_task_fail(db *d, const db_task *t, int retryable, const char *message,
             sh_err *err)
{
    task_keys   k;
    char        delay[32];
    const char *p[6] = {t->job_id, k.stage, k.part, k.lease, message, delay};
    int         n, rc, retry = retryable && t->attempt < t->max_attempts;

    task_keys_fill(&k, t);
    snprintf(delay, sizeof delay, "%.3f", retry_backoff_s(t->attempt));
    if ((rc = db_begin(d, err)) < 0)
        return rc;
    if ((rc = task_lock_job(d, t->job_id, err)) < 0)
        goto fail;
    n = retry ? db_exec_rows(d, "requeue task",
                             "UPDATE tasks SET state = 'queued', error = $5,"
                             " lease = NULL, lease_until = NULL, worker = NULL,"
                             " not_before = now()"
                             " + make_interval(secs => $6::float8)"
                             " WHERE job_id = $1 AND stage = $2 AND part = $3"
                             " AND lease = $4 AND state = 'running'",
                             6, p, err)
              : db_exec_rows(d, "fail task",
                             "UPDATE tasks SET state = 'failed', error = $5,"
                             " lease_until = NULL, finished_at = now()"
                             " WHERE job_id = $1 AND stage = $2 AND part = $3"
                             " AND lease = $4 AND state = 'running'",
                             5, p, err);
    if ((rc = task_fenced(n, t, err)) < 0)
        goto fail;
    rc = retry ? db_notify_tasks(d, err) : task_fail_job(d, t, message, err);
    if (rc < 0)
        goto fail;
    return db_commit(d, err);
fail:
    db_rollback(d);
    return rc;
}

int
db_task_cancelled(db *d, const db_task *t, sh_err *err)
{
    task_keys   k;
    const char *p[4] = {t->job_id, k.stage, k.part, k.lease};
    int         n;

    task_keys_fill(&k, t);
    n = db_exec_rows(d, "check cancelled attempt",
                     "SELECT 1 FROM tasks WHERE job_id = $1 AND stage = $2"
                     " AND part = $3 AND lease = $4 AND state = 'cancelled'",
                     4, p, err);
    if (n < 0)
        return SH_EDB;
    return n > 0;
}

int
db_task_outputs(db *d, const char *job_id, int stage, char ***paths, int *n,
                sh_err *err)
{
    char        st[16];
    const char *p[2] = {job_id, st};
    PGresult   *res;

    *paths = NULL;
    *n = 0;
    snprintf(st, sizeof st, "%d", stage);
    res = db_exec(d, "list committed outputs",
                  "SELECT output FROM tasks WHERE job_id = $1"
                  " AND stage = $2 AND state = 'done' ORDER BY part",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    *n = PQntuples(res);
    *paths = xcalloc(*n > 0 ? (size_t)*n : 1, sizeof **paths);
    for (int i = 0; i < *n; i++)
        (*paths)[i] = xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    return 0;
}

/* Wake the workers after tasks were requeued; a failure only delays them
 * until their next look (they poll every 500 ms too). */
static void
task_wake_workers(db *d)
{
    sh_err ignored;

    (void)db_notify_tasks(d, &ignored);
}

int
db_tasks_reap(db *d, const char *worker, sh_err *err)
{
    const char *p[1] = {worker};
    int         n;

    /* A lost attempt is requeued while attempts remain; past that the
     * partition is poison (it kills its worker every time) and its job
     * fails saying so. */
    n = db_exec_count(d, "reap tasks",
                      "WITH lost AS (UPDATE tasks t SET"
                      " state = CASE WHEN t.attempts >= j.max_attempts"
                      " THEN 'failed' ELSE 'queued' END,"
                      " error = 'the worker running this partition was lost"
                      " (it died or stopped renewing its lease) on attempt '"
                      " || t.attempts,"
                      " lease = NULL, lease_until = NULL, worker = NULL,"
                      " not_before = now()"
                      " FROM jobs j WHERE j.id = t.job_id"
                      " AND t.state = 'running'"
                      " AND (t.worker = $1 OR t.lease_until < now())"
                      " RETURNING t.job_id, t.part, t.state, t.attempts,"
                      " t.byte_start, t.byte_end),"
                      " failed AS (UPDATE jobs SET status = 'failed',"
                      " finished_at = now(), error = 'partition '"
                      " || lost.part || ' (bytes ' || lost.byte_start"
                      " || '-' || lost.byte_end"
                      " || '): its worker process died on each of '"
                      " || lost.attempts || ' attempts (killed, crashed or"
                      " out of memory); the partition may be poison'"
                      " FROM lost WHERE jobs.id = lost.job_id"
                      " AND lost.state = 'failed'"
                      " AND jobs.status IN ('queued', 'running') RETURNING 1)"
                      " SELECT (SELECT count(*) FROM lost),"
                      " (SELECT count(*) FROM failed)",
                      1, p, err);
    if (n > 0)
        task_wake_workers(d);
    return n;
}

int
db_tasks_hand_back(db *d, const char *worker, sh_err *err)
{
    const char *p[1] = {worker};
    int         n;

    /* The attempt the claim counted is given back with the task. */
    n = db_exec_rows(d, "hand back tasks",
                     "UPDATE tasks SET state = 'queued',"
                     " attempts = greatest(attempts - 1, 0),"
                     " lease = NULL, lease_until = NULL, worker = NULL,"
                     " error = NULL, not_before = now()"
                     " WHERE worker = $1 AND state = 'running'",
                     1, p, err);
    if (n > 0)
        task_wake_workers(d);
    return n;
}
