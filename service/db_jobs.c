/*
 * db_jobs.c - jobs, for the API: submitting one with its first stage's
 * tasks, reading jobs and their tasks into C structs, the parts of a
 * result, cancelling and deleting (see db.h). What clients see of a job is
 * built from these structs in api/.
 */
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "../lib/util.h"

/* Append 'v' to a PostgreSQL array literal being built in 'sb'. */
static void
array_add(strbuf *sb, uint64_t v)
{
    sb_putc(sb, sb->len ? ',' : '{');
    sb_printf(sb, "%" PRIu64, v);
}

static void
array_end(strbuf *sb)
{
    if (sb->len == 0)
        sb_putc(sb, '{');
    sb_putc(sb, '}');
}

/* Look up the job of 'tenant' with 'key'; compare its body hash. */
static int
job_by_key(db *d, const char *tenant, const char *key, const char *sha,
           char id[37], sh_err *err)
{
    const char *p[2] = {tenant, key};
    PGresult   *res = db_exec(d, "find idempotent job",
                              "SELECT id, body_sha256 FROM jobs "
                                "WHERE tenant = $1 AND idempotency_key = $2",
                              2, p, err);
    int         rc;

    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0) {
        rc = sh_err_set(err, SH_EDB, NULL, "idempotent job vanished");
    } else if (strcmp(PQgetvalue(res, 0, 1), sha) != 0) {
        rc = sh_err_set(err, SH_ECONFLICT, "",
                        "Idempotency-Key '%s' was already used with another "
                        "body (job %s)",
                        key, PQgetvalue(res, 0, 0));
    } else {
        snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* The statement parameters of a job's plan, as text. */
typedef struct job_params {
    char   prio[16], attempts[16], timeout[16], retention[24];
    strbuf starts, ends, stages; /* array literals */
} job_params;

/* Fill 'jp' from plan 'p'. Returns 0, or SH_EIO when the plan does not
 * have a task per partition in stage 0. */
static int
job_params_fill(job_params *jp, const plan *p, sh_err *err)
{
    memset(jp, 0, sizeof *jp);
    snprintf(jp->prio, sizeof jp->prio, "%d", p->priority);
    snprintf(jp->attempts, sizeof jp->attempts, "%d", p->max_attempts);
    snprintf(jp->timeout, sizeof jp->timeout, "%d", p->timeout_s);
    snprintf(jp->retention, sizeof jp->retention, "%" PRId64, p->retention_s);
    for (size_t i = 0; i < p->n_parts; i++) {
        array_add(&jp->starts, p->parts[i].start);
        array_add(&jp->ends, p->parts[i].end);
    }
    array_end(&jp->starts);
    array_end(&jp->ends);
    /* The planner always cuts at least one stage; stage 0 has a task per
     * partition, inserted with the job; later stages are queued as the
     * one before ends (db_tasks.c). */
    if (p->n_stages < 1 || p->stage_tasks[0] != p->n_parts)
        return sh_err_set(err, SH_EIO, NULL,
                          "the plan has %zu stage(s) and "
                          "%zu partition(s), not a task per partition in "
                          "stage 0",
                          p->n_stages, p->n_parts);
    for (size_t i = 0; i < p->n_stages; i++)
        array_add(&jp->stages, p->stage_tasks[i]);
    array_end(&jp->stages);
    return 0;
}

static void
job_params_free(job_params *jp)
{
    sb_free(&jp->starts);
    sb_free(&jp->ends);
    sb_free(&jp->stages);
}

int
db_job_submit(db *d, const char *tenant, const plan *p, json_t *resolution,
              const char *idem_key, const char *body_sha256, char id[37],
              int *created, sh_err *err)
{
    char      *spec_s = json_dumps(p->spec, JSON_COMPACT);
    char      *res_s = json_dumps(resolution, JSON_COMPACT);
    job_params x;
    int        rc, n, in_tx = 0;
    uuid_t     uu;

    *created = 0;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, id);
    if ((rc = job_params_fill(&x, p, err)) < 0)
        goto done;
    if ((rc = db_begin(d, err)) < 0)
        goto done;
    in_tx = 1;
    const char *jp[12] = {id,          tenant,   p->name,     spec_s,
                          res_s,       x.prio,   x.attempts,  x.timeout,
                          x.retention, idem_key, body_sha256, x.stages.data};
    n = db_exec_rows(d, "insert job",
                     "INSERT INTO jobs (id, tenant, name, spec, resolution,"
                     " priority, max_attempts, timeout_s, retention_s,"
                     " idempotency_key, body_sha256, stage_tasks)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                     " $12::int[])"
                     " ON CONFLICT (tenant, idempotency_key)"
                     " WHERE idempotency_key IS NOT NULL DO NOTHING"
                     " RETURNING id",
                     12, jp, err);
    if (n < 0) {
        rc = SH_EDB;
        goto done;
    }
    if (n == 0) {
        /* The key was used before: same body, same job. */
        db_rollback(d);
        in_tx = 0;
        rc = job_by_key(d, tenant, idem_key, body_sha256, id, err);
        goto done;
    }
    const char *tp[3] = {id, x.starts.data, x.ends.data};
    if ((rc = db_run(d, "insert tasks",
                     "INSERT INTO tasks (job_id, stage, part, byte_start,"
                     " byte_end)"
                     " SELECT $1, 0, (t.i - 1)::int, t.s, t.e"
                     " FROM unnest($2::bigint[], $3::bigint[])"
                     " WITH ORDINALITY AS t(s, e, i)",
                     3, tp, err))
        < 0)
        goto done;
    if ((rc = db_notify_tasks(d, err)) < 0)
        goto done;
    if ((rc = db_commit(d, err)) < 0)
        goto done;
    in_tx = 0;
    *created = 1;
done:
    if (in_tx && rc < 0)
        db_rollback(d);
    job_params_free(&x);
    free(spec_s);
    free(res_s);
    return rc;
}

/*
 * The columns of a job, in the order job_from_row reads them. The
 * "partitions" of the progress are the tasks of every stage: the total is
 * the sum of the stages' task counts (later stages' rows exist only once
 * queued); the input counters are stage 0's, rows_out the last stage's.
 * 'SPEC' is the spec's column: "j.spec::text" for one job, "NULL" for a
 * list (list items leave the spec out, and a page of specs of up to 1 MiB
 * each is memory a client could make sheafd hold).
 */
#define JOB_SELECT_WITH(SPEC)                                                  \
    "SELECT j.id, j.name, j.status, " DB_TS("j.created_at") ", " DB_TS(        \
        "j.started_at") ", " DB_TS("j.finished_at") ", j.error,"               \
                                                    " j.result_bytes, "        \
                                                    "j.result_rows, " SPEC "," \
                                                    " (SELECT "                \
                                                    "coalesce(sum(n), 0) "     \
                                                    "FROM "                    \
                                                    "unnest(j.stage_tasks) "   \
                                                    "AS n),"                   \
                                                    " p.done, p.running, "     \
                                                    "p.failed, p.rows_in, "    \
                                                    "p.bytes_in, p.rows_out,"  \
                                                    " p.skipped, j.seq, "      \
                                                    "j.priority, "             \
                                                    "j.max_attempts"           \
                                                    " FROM jobs j LEFT JOIN "  \
                                                    "LATERAL (SELECT"          \
                                                    " count(*) FILTER (WHERE " \
                                                    "state = 'done') AS done," \
                                                    " count(*) FILTER (WHERE " \
                                                    "state = 'running') AS "   \
                                                    "running,"                 \
                                                    " count(*) FILTER (WHERE " \
                                                    "state = 'failed') AS "    \
                                                    "failed,"                  \
                                                    " coalesce(sum(rows_in) "  \
                                                    "FILTER (WHERE stage = "   \
                                                    "0), 0) AS rows_in,"       \
                                                    " coalesce(sum(bytes_in) " \
                                                    "FILTER (WHERE stage = "   \
                                                    "0), 0) AS bytes_in,"      \
                                                    " coalesce(sum(rows_out) " \
                                                    "FILTER (WHERE stage ="    \
                                                    " cardinality(j.stage_"    \
                                                    "tasks) - 1), 0) AS "      \
                                                    "rows_out,"                \
                                                    " coalesce(sum(rows_"      \
                                                    "skipped) FILTER (WHERE "  \
                                                    "stage = 0), 0) AS "       \
                                                    "skipped"                  \
                                                    " FROM tasks t WHERE "     \
                                                    "t.job_id = j.id) p ON "   \
                                                    "true "

enum {
    JC_ID,
    JC_NAME,
    JC_STATUS,
    JC_CREATED,
    JC_STARTED,
    JC_FINISHED,
    JC_ERROR,
    JC_RBYTES,
    JC_RROWS,
    JC_SPEC,
    JC_TOTAL,
    JC_DONE,
    JC_RUNNING,
    JC_FAILED,
    JC_ROWS_IN,
    JC_BYTES_IN,
    JC_ROWS_OUT,
    JC_SKIPPED,
    JC_SEQ,
    JC_PRIORITY,
    JC_ATTEMPTS
};

/* Column 'c' of row 'r' as an integer (0 when NULL). */
static int64_t
col_i64(PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? 0
                                  : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* Column 'c' of row 'r' copied into 'out' of 'size' bytes ("" when NULL). */
static void
col_copy(PGresult *res, int r, int c, char *out, size_t size)
{
    snprintf(out, size, "%s",
             PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c));
}

/* Column 'c' of row 'r' as a new string, or NULL when NULL. */
static char *
col_dup(PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? NULL : xstrdup(PQgetvalue(res, r, c));
}

/* Fill 'j' from row 'r' of a JOB_SELECT_WITH. */
static void
job_from_row(PGresult *res, int r, db_job *j)
{
    memset(j, 0, sizeof *j);
    col_copy(res, r, JC_ID, j->id, sizeof j->id);
    j->name = xstrdup(PQgetvalue(res, r, JC_NAME));
    col_copy(res, r, JC_STATUS, j->status, sizeof j->status);
    col_copy(res, r, JC_CREATED, j->created_at, sizeof j->created_at);
    col_copy(res, r, JC_STARTED, j->started_at, sizeof j->started_at);
    col_copy(res, r, JC_FINISHED, j->finished_at, sizeof j->finished_at);
    j->error = col_dup(res, r, JC_ERROR);
    j->spec = col_dup(res, r, JC_SPEC);
    j->seq = col_i64(res, r, JC_SEQ);
    j->priority = (int)col_i64(res, r, JC_PRIORITY);
    j->max_attempts = (int)col_i64(res, r, JC_ATTEMPTS);
    j->has_result = !PQgetisnull(res, r, JC_RBYTES);
    j->result_bytes = col_i64(res, r, JC_RBYTES);
    j->result_rows = col_i64(res, r, JC_RROWS);
    j->partitions_total = col_i64(res, r, JC_TOTAL);
    j->partitions_done = col_i64(res, r, JC_DONE);
    j->partitions_running = col_i64(res, r, JC_RUNNING);
    j->partitions_failed = col_i64(res, r, JC_FAILED);
    j->rows_in = col_i64(res, r, JC_ROWS_IN);
    j->bytes_in = col_i64(res, r, JC_BYTES_IN);
    j->rows_out = col_i64(res, r, JC_ROWS_OUT);
    j->rows_skipped = col_i64(res, r, JC_SKIPPED);
}

void
db_job_clear(db_job *j)
{
    free(j->name);
    free(j->error);
    free(j->spec);
    j->name = j->error = j->spec = NULL;
}

void
db_jobs_free(db_job *jobs, size_t n)
{
    for (size_t i = 0; jobs && i < n; i++)
        db_job_clear(&jobs[i]);
    free(jobs);
}

int
db_job_status_ended(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0
           || strcmp(status, "cancelled") == 0;
}

int
db_job_get(db *d, const char *tenant, const char *id, db_job *job, sh_err *err)
{
    const char *p[2] = {id, tenant};
    PGresult   *res;
    int         rc = 0;

    memset(job, 0, sizeof *job);
    if (!util_is_uuid(id, strlen(id)))
        return sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    res = db_exec(d, "get job",
                  JOB_SELECT_WITH(
                      "j.spec::text") "WHERE j.id = $1 AND j.tenant = $2",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0)
        rc = sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    else
        job_from_row(res, 0, job);
    PQclear(res);
    return rc;
}

int
db_job_list(db *d, const char *tenant, const char *status, const char *name,
            int limit, const char *cursor, db_job **jobs, size_t *n, int *more,
            sh_err *err)
{
    char        lim[16];
    const char *p[5];
    PGresult   *res;
    int         rows;

    *jobs = NULL;
    *n = 0;
    *more = 0;
    if (cursor && *cursor && strspn(cursor, "0123456789") != strlen(cursor))
        return sh_err_set(err, SH_EINVAL, "cursor",
                          "cursor '%s' is not one "
                          "this service gave out",
                          cursor);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    p[0] = tenant;
    p[1] = status;
    p[2] = name;
    p[3] = cursor && *cursor ? cursor : NULL;
    p[4] = lim;
    res = db_exec(d, "list jobs",
                  JOB_SELECT_WITH(
                      "NULL") "WHERE j.tenant = $1"
                              " AND ($2::text IS NULL OR j.status = $2)"
                              " AND ($3::text IS NULL OR j.name = $3)"
                              " AND ($4::bigint IS NULL OR j.seq < $4::bigint)"
                              " ORDER BY j.seq DESC LIMIT $5::int",
                  5, p, err);
    if (res == NULL)
        return SH_EDB;
    rows = PQntuples(res);
    *more = rows > limit;
    *n = (size_t)(rows < limit ? rows : limit);
    *jobs = xcalloc(*n ? *n : 1, sizeof **jobs);
    for (size_t r = 0; r < *n; r++)
        job_from_row(res, (int)r, &(*jobs)[r]);
    PQclear(res);
    return 0;
}

/* 0 when job 'id' of 'tenant' exists, else SH_ENOENT or SH_EDB. Sets
 * 'status' (at least 16 bytes) when non-NULL. */
static int
job_status(db *d, const char *tenant, const char *id, char *status, sh_err *err)
{
    const char *p[2] = {id, tenant};
    PGresult   *res;
    int         rc = 0;

    if (!util_is_uuid(id, strlen(id)))
        return sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    res = db_exec(d, "get job status",
                  "SELECT status FROM jobs"
                  " WHERE id = $1 AND tenant = $2",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0)
        rc = sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    else if (status)
        snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

int
db_job_owned(db *d, const char *tenant, const char *id, sh_err *err)
{
    return job_status(d, tenant, id, NULL, err);
}

/* The columns of a task, in the order task_from_row reads them. */
enum {
    TC_STAGE,
    TC_PART,
    TC_STATE,
    TC_ATTEMPTS,
    TC_BSTART,
    TC_BEND,
    TC_ROWS_IN,
    TC_BYTES_IN,
    TC_ROWS_OUT,
    TC_BYTES_OUT,
    TC_SKIPPED,
    TC_WORKER,
    TC_ERROR,
    TC_STARTED,
    TC_FINISHED,
    TC_SPILL,
    TC_PEAK
};

/* Fill 't' from row 'r' of db_job_tasks' statement. */
static void
task_from_row(PGresult *res, int r, db_task_row *t)
{
    memset(t, 0, sizeof *t);
    t->stage = (int)col_i64(res, r, TC_STAGE);
    t->part = (int)col_i64(res, r, TC_PART);
    col_copy(res, r, TC_STATE, t->state, sizeof t->state);
    t->attempts = (int)col_i64(res, r, TC_ATTEMPTS);
    t->has_bytes = !PQgetisnull(res, r, TC_BSTART);
    t->byte_start = col_i64(res, r, TC_BSTART);
    t->byte_end = col_i64(res, r, TC_BEND);
    t->rows_in = col_i64(res, r, TC_ROWS_IN);
    t->bytes_in = col_i64(res, r, TC_BYTES_IN);
    t->rows_out = col_i64(res, r, TC_ROWS_OUT);
    t->bytes_out = col_i64(res, r, TC_BYTES_OUT);
    t->rows_skipped = col_i64(res, r, TC_SKIPPED);
    t->worker = col_dup(res, r, TC_WORKER);
    t->error = col_dup(res, r, TC_ERROR);
    col_copy(res, r, TC_STARTED, t->started_at, sizeof t->started_at);
    col_copy(res, r, TC_FINISHED, t->finished_at, sizeof t->finished_at);
    t->spill_bytes = col_i64(res, r, TC_SPILL);
    t->peak_bytes = col_i64(res, r, TC_PEAK);
}

/* Parse a tasks cursor "STAGE.PART" into its two numbers: 0, or -1 when
 * 'cursor' is not one db_job_tasks' pages give out. */
static int
tasks_cursor(const char *cursor, char stage[16], char part[16])
{
    long long a, b;
    char      tail;

    if (strlen(cursor) > 24 || strspn(cursor, "0123456789.") != strlen(cursor)
        || sscanf(cursor, "%lld.%lld%c", &a, &b, &tail) != 2 || a > INT32_MAX
        || b > INT32_MAX)
        return -1;
    snprintf(stage, 16, "%d", (int)a);
    snprintf(part, 16, "%d", (int)b);
    return 0;
}

int
db_job_tasks(db *d, const char *tenant, const char *id, int limit,
             const char *cursor, db_task_row **tasks, size_t *n, int *more,
             sh_err *err)
{
    char        lim[16], stage[16], part[16];
    const char *p[4] = {id, NULL, NULL, lim};
    PGresult   *res;
    int         rc, rows;

    *tasks = NULL;
    *n = 0;
    *more = 0;
    if (cursor != NULL && *cursor != '\0') {
        if (tasks_cursor(cursor, stage, part) < 0)
            return sh_err_set(err, SH_EINVAL, "cursor",
                              "cursor '%.40s' is "
                              "not one this service gave out",
                              cursor);
        p[1] = stage;
        p[2] = part;
    }
    if ((rc = job_status(d, tenant, id, NULL, err)) < 0)
        return rc;
    snprintf(lim, sizeof lim, "%d", limit + 1);
    res = db_exec(d, "list tasks",
                  "SELECT stage, part, state, attempts,"
                  " CASE WHEN stage = 0 THEN byte_start END,"
                  " CASE WHEN stage = 0 THEN byte_end END,"
                  " rows_in, bytes_in, rows_out, bytes_out, rows_skipped,"
                  " worker, error, " DB_TS("started_at") ", " DB_TS(
                      "finished_at") ", spill_bytes, peak_bytes"
                                     " FROM tasks WHERE job_id = $1"
                                     " AND ($2::int IS NULL OR (stage, part) > "
                                     "($2::int, $3::int))"
                                     " ORDER BY stage, part LIMIT $4::int",
                  4, p, err);
    if (res == NULL)
        return SH_EDB;
    rows = PQntuples(res);
    *more = rows > limit;
    *n = (size_t)(rows < limit ? rows : limit);
    *tasks = xcalloc(*n ? *n : 1, sizeof **tasks);
    for (size_t r = 0; r < *n; r++)
        task_from_row(res, (int)r, &(*tasks)[r]);
    PQclear(res);
    return 0;
}

void
db_task_rows_free(db_task_row *tasks, size_t n)
{
    for (size_t i = 0; tasks && i < n; i++) {
        free(tasks[i].worker);
        free(tasks[i].error);
    }
    free(tasks);
}

int
db_job_result(db *d, const char *tenant, const char *id, db_part **parts,
              size_t *n, sh_err *err)
{
    const char *p[1] = {id};
    char        status[16];
    PGresult   *res;
    int         rc;

    *parts = NULL;
    *n = 0;
    if ((rc = job_status(d, tenant, id, status, err)) < 0)
        return rc;
    if (strcmp(status, "succeeded") != 0)
        return sh_err_set(err, SH_ESTATE, NULL,
                          "job %s is %s; its result can be fetched once it "
                          "has succeeded",
                          id, status);
    res = db_exec(d, "list result parts",
                  "SELECT t.output, t.bytes_out, t.rows_out FROM tasks t"
                  " JOIN jobs j ON j.id = t.job_id"
                  " WHERE t.job_id = $1"
                  " AND t.stage = cardinality(j.stage_tasks) - 1"
                  " AND t.state = 'done' ORDER BY t.part",
                  1, p, err);
    if (res == NULL)
        return SH_EDB;
    *n = (size_t)PQntuples(res);
    *parts = xcalloc(*n ? *n : 1, sizeof **parts);
    for (size_t i = 0; i < *n; i++) {
        (*parts)[i].path = xstrdup(PQgetvalue(res, (int)i, 0));
        (*parts)[i].size_bytes = strtoull(PQgetvalue(res, (int)i, 1), NULL, 10);
        (*parts)[i].rows = strtoull(PQgetvalue(res, (int)i, 2), NULL, 10);
    }
    PQclear(res);
    return 0;
}

void
db_parts_free(db_part *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        free(parts[i].path);
    free(parts);
}

int
db_job_cancel(db *d, const char *tenant, const char *id, sh_err *err)
{
    const char *p[2] = {id, tenant};
    char        status[16];
    int         rc, n;

    if ((rc = job_status(d, tenant, id, status, err)) < 0)
        return rc;
    n = db_exec_count(d, "cancel job",
                      "WITH j AS (UPDATE jobs SET status = 'cancelled',"
                      " finished_at = now(), error = 'cancelled by request'"
                      " WHERE id = $1 AND tenant = $2"
                      " AND status IN ('queued', 'running') RETURNING id),"
                      " t AS (UPDATE tasks SET state = 'cancelled',"
                      " finished_at = now() FROM j WHERE tasks.job_id = j.id"
                      " AND tasks.state IN ('queued', 'running') RETURNING 1)"
                      " SELECT (SELECT count(*) FROM j)",
                      2, p, err);
    if (n < 0)
        return SH_EDB;
    if (n == 1)
        return 0;
    /* Another end won the race (or came long before): say which. */
    if ((rc = job_status(d, tenant, id, status, err)) < 0)
        return rc;
    return sh_err_set(err, SH_ESTATE, NULL,
                      "job %s has already %s; only a queued or running "
                      "job can be cancelled",
                      id,
                      strcmp(status, "cancelled") == 0 ? "been cancelled"
                                                       : status);
}

int
db_job_delete(db *d, const char *tenant, const char *id, sh_err *err)
{
    const char *p[2] = {id, tenant};
    char        status[16];
    int         rc, n;

    if ((rc = job_status(d, tenant, id, status, err)) < 0)
        return rc;
    n = db_exec_rows(d, "delete job",
                     "DELETE FROM jobs WHERE id = $1 AND tenant = $2"
                     " AND status IN ('succeeded', 'failed', 'cancelled')",
                     2, p, err);
    if (n < 0)
        return SH_EDB;
    if (n != 1)
        return sh_err_set(err, SH_ESTATE, NULL,
                          "job %s is %s; cancel it or wait for it to end "
                          "before deleting it",
                          id, status);
    return 0;
}
