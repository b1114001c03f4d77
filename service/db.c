/*
 * db.c - every SQL statement sheaf runs (see db.h).
 *
 * Jobs and tasks live in PostgreSQL (migrations/). Workers claim tasks with
 * FOR UPDATE SKIP LOCKED under a lease whose token fences every later write
 * of that attempt; the transaction that records a job's last task also
 * ends the job, under a row lock on the job so two finishers cannot both
 * miss each other.
 */
#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <uuid/uuid.h>

#include "../lib/util.h"

#define MIGRATION_LOCK 0x73686561 /* "shea": advisory lock of migrations */

struct db {
    PGconn *conn; /* the connection; reset when it breaks */
};

/* Server notices ("relation ... already exists, skipping" from the
 * migrations) are not errors; libpq would print them to stderr. A NULL
 * processor does not silence them: libpq keeps its default then. */
static void
quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

db *
db_open(const char *url, sh_err *err)
{
    PGconn *conn = PQconnectdb(url);

    if (PQstatus(conn) != CONNECTION_OK) {
        sh_err_set(err, SH_EDB, NULL, "cannot connect to the database: %s",
                   PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    db *d = xcalloc(1, sizeof *d);
    d->conn = conn;
    return d;
}

void
db_close(db *d)
{
    if (d == NULL)
        return;
    PQfinish(d->conn);
    free(d);
}

/* Reconnect when the connection broke. Returns 0 or SH_EDB. */
static int
db_ensure(db *d, sh_err *err)
{
    if (PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    PQreset(d->conn);
    if (PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    return sh_err_set(err, SH_EDB, NULL, "the database is unreachable: %s",
                      PQerrorMessage(d->conn));
}

/*
 * Run 'sql' with 'n' text parameters. Returns the result when its status
 * is PGRES_COMMAND_OK or PGRES_TUPLES_OK (the caller PQclears it), else
 * NULL with SH_EDB in 'err' naming 'what'.
 */
static PGresult *
db_exec(db *d, const char *what, const char *sql, int n,
        const char *const *params, sh_err *err)
{
    PGresult *res;

    if (db_ensure(d, err) < 0)
        return NULL;
    res = PQexecParams(d->conn, sql, n, NULL, params, NULL, NULL, 0);
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return res;
    default:
        sh_err_set(err, SH_EDB, NULL, "%s: %s", what,
                   PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
}

/* Run a statement whose result is not needed. Returns 0 or SH_EDB. */
static int
db_run(db *d, const char *what, const char *sql, int n,
       const char *const *params, sh_err *err)
{
    PGresult *res = db_exec(d, what, sql, n, params, err);

    if (res == NULL)
        return SH_EDB;
    PQclear(res);
    return 0;
}

/* Roll back after a failure inside a transaction (errors ignored). */
static void
db_rollback(db *d)
{
    PQclear(PQexec(d->conn, "ROLLBACK"));
}

int
db_ping(db *d, sh_err *err)
{
    return db_run(d, "ping", "SELECT 1", 0, NULL, err);
}

/* ---- migrations -------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Apply one migration file in a transaction, recording 'version'. */
static int
db_apply(db *d, const char *dir, const char *version, sh_err *err)
{
    char       *path = xasprintf("%s/%s", dir, version);
    char       *sql = util_read_file(path, NULL);
    const char *p[1] = {version};
    PGresult   *res;
    int         rc = 0;

    if (sql == NULL) {
        rc = sh_err_set(err, SH_EIO, NULL, "read %s: %s", path,
                        strerror(errno));
        goto done;
    }
    if ((rc = db_run(d, "begin", "BEGIN", 0, NULL, err)) < 0)
        goto done;
    res = PQexec(d->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = sh_err_set(err, SH_EDB, NULL, "migration %s: %s", version,
                        PQresultErrorMessage(res));
        PQclear(res);
        db_rollback(d);
        goto done;
    }
    PQclear(res);
    if ((rc = db_run(d, "record migration",
                     "INSERT INTO schema_migrations (version) VALUES ($1)",
                     1, p, err)) < 0) {
        db_rollback(d);
        goto done;
    }
    rc = db_run(d, "commit", "COMMIT", 0, NULL, err);
done:
    free(sql);
    free(path);
    return rc;
}

int
db_migrate(db *d, const char *dir, sh_err *err)
{
    DIR           *dh = opendir(dir);
    char         **names = NULL;
    size_t         n = 0;
    struct dirent *de;
    int            rc = 0, locked = 0;

    if (dh == NULL)
        return sh_err_set(err, SH_EIO, NULL, "migrations directory %s: %s",
                          dir, strerror(errno));
    while ((de = readdir(dh)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xstrdup(de->d_name);
        }
    }
    closedir(dh);
    qsort(names, n, sizeof *names, cmp_names);

    /* Two instances starting together: the second waits here, then finds
     * every migration recorded. */
    if ((rc = db_run(d, "lock migrations", "SELECT pg_advisory_lock("
                     "1936221281)", 0, NULL, err)) < 0)
        goto done;
    locked = 1;
    if ((rc = db_run(d, "create schema_migrations",
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version text PRIMARY KEY,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     0, NULL, err)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const char *p[1] = {names[i]};
        PGresult   *res = db_exec(d, "read migrations",
                                  "SELECT 1 FROM schema_migrations "
                                  "WHERE version = $1", 1, p, err);
        if (res == NULL) {
            rc = SH_EDB;
            goto done;
        }
        int applied = PQntuples(res) > 0;
        PQclear(res);
        if (!applied && (rc = db_apply(d, dir, names[i], err)) < 0)
            goto done;
    }
done:
    if (locked)
        PQclear(PQexec(d->conn, "SELECT pg_advisory_unlock(1936221281)"));
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- jobs ---------------------------------------------------------------- */

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
db_job_by_key(db *d, const char *tenant, const char *key, const char *sha,
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
                        "body (job %s)", key, PQgetvalue(res, 0, 0));
    } else {
        snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int
db_job_submit(db *d, const char *tenant, const plan *p, json_t *resolution,
              const char *idem_key, const char *body_sha256, char id[37],
              int *created, sh_err *err)
{
    char     *spec_s = json_dumps(p->spec, JSON_COMPACT);
    char     *res_s = json_dumps(resolution, JSON_COMPACT);
    char      prio[16], attempts[16], timeout[16], retention[24];
    strbuf    starts = {0}, ends = {0}, stages = {0};
    PGresult *res = NULL;
    int       rc, in_tx = 0;
    uuid_t    uu;

    *created = 0;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, id);
    snprintf(prio, sizeof prio, "%d", p->priority);
    snprintf(attempts, sizeof attempts, "%d", p->max_attempts);
    snprintf(timeout, sizeof timeout, "%d", p->timeout_s);
    snprintf(retention, sizeof retention, "%" PRId64, p->retention_s);
    for (size_t i = 0; i < p->n_parts; i++) {
        array_add(&starts, p->parts[i].start);
        array_add(&ends, p->parts[i].end);
    }
    array_end(&starts);
    array_end(&ends);
    /* The planner always cuts at least one stage; stage 0 has a task per
     * partition, inserted here; later stages are queued as the one before
     * ends (db_stage_done). */
    if (p->n_stages < 1 || p->stage_tasks[0] != p->n_parts) {
        rc = sh_err_set(err, SH_EIO, NULL, "the plan has %zu stage(s) and "
                        "%zu partition(s), not a task per partition in "
                        "stage 0", p->n_stages, p->n_parts);
        goto done;
    }
    for (size_t i = 0; i < p->n_stages; i++)
        array_add(&stages, p->stage_tasks[i]);
    array_end(&stages);

    if ((rc = db_run(d, "begin", "BEGIN", 0, NULL, err)) < 0)
        goto done;
    in_tx = 1;
    const char *jp[12] = {id, tenant, p->name, spec_s, res_s, prio, attempts,
                          timeout, retention, idem_key, body_sha256,
                          stages.data};
    res = db_exec(d, "insert job",
                  "INSERT INTO jobs (id, tenant, name, spec, resolution,"
                  " priority, max_attempts, timeout_s, retention_s,"
                  " idempotency_key, body_sha256, stage_tasks)"
                  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                  " $12::int[])"
                  " ON CONFLICT (tenant, idempotency_key)"
                  " WHERE idempotency_key IS NOT NULL DO NOTHING"
                  " RETURNING id",
                  12, jp, err);
    if (res == NULL) {
        rc = SH_EDB;
        goto done;
    }
    if (PQntuples(res) == 0) {
        /* The key was used before: same body, same job. */
        db_rollback(d);
        in_tx = 0;
        rc = db_job_by_key(d, tenant, idem_key, body_sha256, id, err);
        goto done;
    }
    const char *tp[3] = {id, starts.data, ends.data};
    if ((rc = db_run(d, "insert tasks",
                     "INSERT INTO tasks (job_id, stage, part, byte_start,"
                     " byte_end)"
                     " SELECT $1, 0, (t.i - 1)::int, t.s, t.e"
                     " FROM unnest($2::bigint[], $3::bigint[])"
                     " WITH ORDINALITY AS t(s, e, i)",
                     3, tp, err)) < 0)
        goto done;
    if ((rc = db_run(d, "notify", "NOTIFY sheaf_tasks", 0, NULL, err)) < 0)
        goto done;
    if ((rc = db_run(d, "commit", "COMMIT", 0, NULL, err)) < 0)
        goto done;
    in_tx = 0;
    *created = 1;
done:
    if (in_tx && rc < 0)
        db_rollback(d);
    PQclear(res);
    sb_free(&starts);
    sb_free(&ends);
    sb_free(&stages);
    free(spec_s);
    free(res_s);
    return rc;
}

/* A timestamp column as RFC 3339 UTC text with milliseconds. */
#define TS(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*
 * The columns of a job object, in the order job_from_row reads them. The
 * "partitions" of the progress are the tasks of every stage: the total is
 * the sum of the stages' task counts (later stages' rows exist only once
 * queued); the input counters are stage 0's, rows_out the last stage's.
 */
#define JOB_SELECT                                                          \
    "SELECT j.id, j.name, j.status, " TS("j.created_at") ", "               \
    TS("j.started_at") ", " TS("j.finished_at") ", j.error,"                \
    " j.result_bytes, j.result_rows, j.spec::text,"                         \
    " (SELECT coalesce(sum(n), 0) FROM unnest(j.stage_tasks) AS n),"        \
    " p.done, p.running, p.failed, p.rows_in, p.bytes_in, p.rows_out,"      \
    " p.skipped, j.seq, j.priority, j.max_attempts"                         \
    " FROM jobs j LEFT JOIN LATERAL (SELECT"                                \
    " count(*) FILTER (WHERE state = 'done') AS done,"                      \
    " count(*) FILTER (WHERE state = 'running') AS running,"                \
    " count(*) FILTER (WHERE state = 'failed') AS failed,"                  \
    " coalesce(sum(rows_in) FILTER (WHERE stage = 0), 0) AS rows_in,"       \
    " coalesce(sum(bytes_in) FILTER (WHERE stage = 0), 0) AS bytes_in,"     \
    " coalesce(sum(rows_out) FILTER (WHERE stage ="                         \
    " cardinality(j.stage_tasks) - 1), 0) AS rows_out,"                     \
    " coalesce(sum(rows_skipped) FILTER (WHERE stage = 0), 0) AS skipped"   \
    " FROM tasks t WHERE t.job_id = j.id) p ON true "

enum {
    JC_ID, JC_NAME, JC_STATUS, JC_CREATED, JC_STARTED, JC_FINISHED, JC_ERROR,
    JC_RBYTES, JC_RROWS, JC_SPEC, JC_TOTAL, JC_DONE, JC_RUNNING, JC_FAILED,
    JC_ROWS_IN, JC_BYTES_IN, JC_ROWS_OUT, JC_SKIPPED, JC_SEQ, JC_PRIORITY,
    JC_ATTEMPTS
};

/* Column 'c' of row 'r' as a JSON string, or null when NULL. */
static json_t *
col_str(PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? json_null()
                                  : json_string(PQgetvalue(res, r, c));
}

/* Column 'c' of row 'r' as a JSON integer, or null when NULL. */
static json_t *
col_int(PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c)
               ? json_null()
               : json_integer(strtoll(PQgetvalue(res, r, c), NULL, 10));
}

/* The job object of SPEC section 3 from row 'r' of a JOB_SELECT. */
static json_t *
job_from_row(PGresult *res, int r)
{
    const char *id = PQgetvalue(res, r, JC_ID);
    json_t     *spec = json_loads(PQgetvalue(res, r, JC_SPEC), 0, NULL);
    char       *url = xasprintf("/v1/jobs/%s/result", id);
    json_t     *job;

    job = json_pack(
        "{s:s, s:o, s:s, s:o, s:o, s:o,"
        " s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o},"
        " s:o, s:{s:s, s:o, s:o}, s:o, s:o, s:o}",
        "id", id, "name", col_str(res, r, JC_NAME),
        "status", PQgetvalue(res, r, JC_STATUS),
        "created_at", col_str(res, r, JC_CREATED),
        "started_at", col_str(res, r, JC_STARTED),
        "finished_at", col_str(res, r, JC_FINISHED),
        "progress",
        "partitions_total", col_int(res, r, JC_TOTAL),
        "partitions_done", col_int(res, r, JC_DONE),
        "partitions_running", col_int(res, r, JC_RUNNING),
        "partitions_failed", col_int(res, r, JC_FAILED),
        "rows_in", col_int(res, r, JC_ROWS_IN),
        "bytes_in", col_int(res, r, JC_BYTES_IN),
        "rows_out", col_int(res, r, JC_ROWS_OUT),
        "rows_skipped", col_int(res, r, JC_SKIPPED),
        "error", col_str(res, r, JC_ERROR),
        "result", "url", url,
        "bytes", col_int(res, r, JC_RBYTES),
        "rows", col_int(res, r, JC_RROWS),
        "priority", col_int(res, r, JC_PRIORITY),
        "max_attempts", col_int(res, r, JC_ATTEMPTS),
        "spec", spec ? spec : json_null());
    free(url);
    return job;
}

/* An id that is not a UUID cannot name a job: answer "not found" rather
 * than let PostgreSQL reject the cast. */
static int
is_uuid(const char *s)
{
    uuid_t uu;

    return strlen(s) == 36 && uuid_parse(s, uu) == 0;
}

json_t *
db_job_get(db *d, const char *tenant, const char *id, sh_err *err)
{
    const char *p[2] = {id, tenant};
    PGresult   *res;
    json_t     *job = NULL;

    if (!is_uuid(id)) {
        sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
        return NULL;
    }
    res = db_exec(d, "get job", JOB_SELECT
                  "WHERE j.id = $1 AND j.tenant = $2", 2, p, err);
    if (res == NULL)
        return NULL;
    if (PQntuples(res) == 0)
        sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    else
        job = job_from_row(res, 0);
    PQclear(res);
    return job;
}

json_t *
db_job_list(db *d, const char *tenant, const char *status, const char *name,
            int limit, const char *cursor, sh_err *err)
{
    char        lim[16];
    const char *p[5];
    PGresult   *res;
    json_t     *jobs, *out;
    int         n;

    if (cursor && *cursor && strspn(cursor, "0123456789") != strlen(cursor)) {
        sh_err_set(err, SH_EINVAL, "cursor", "cursor '%s' is not one this "
                   "service gave out", cursor);
        return NULL;
    }
    snprintf(lim, sizeof lim, "%d", limit + 1);
    p[0] = tenant;
    p[1] = status;
    p[2] = name;
    p[3] = cursor && *cursor ? cursor : NULL;
    p[4] = lim;
    res = db_exec(d, "list jobs", JOB_SELECT
                  "WHERE j.tenant = $1"
                  " AND ($2::text IS NULL OR j.status = $2)"
                  " AND ($3::text IS NULL OR j.name = $3)"
                  " AND ($4::bigint IS NULL OR j.seq < $4::bigint)"
                  " ORDER BY j.seq DESC LIMIT $5::int", 5, p, err);
    if (res == NULL)
        return NULL;
    n = PQntuples(res);
    jobs = json_array();
    for (int r = 0; r < n && r < limit; r++)
        json_array_append_new(jobs, job_from_row(res, r));
    out = json_pack("{s:o, s:o}", "jobs", jobs, "next_cursor",
                    n > limit ? json_string(PQgetvalue(res, limit - 1,
                                                       JC_SEQ))
                              : json_null());
    PQclear(res);
    return out;
}

/* 0 when job 'id' of 'tenant' exists, else SH_ENOENT or SH_EDB. Sets
 * 'status' (at least 16 bytes) when non-NULL. */
static int
db_job_status(db *d, const char *tenant, const char *id, char *status,
              sh_err *err)
{
    const char *p[2] = {id, tenant};
    PGresult   *res;
    int         rc = 0;

    if (!is_uuid(id))
        return sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    res = db_exec(d, "get job status", "SELECT status FROM jobs"
                  " WHERE id = $1 AND tenant = $2", 2, p, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0)
        rc = sh_err_set(err, SH_ENOENT, NULL, "no job %s", id);
    else if (status)
        snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

json_t *
db_job_tasks(db *d, const char *tenant, const char *id, sh_err *err)
{
    const char *p[1] = {id};
    PGresult   *res;
    json_t     *tasks;

    if (db_job_status(d, tenant, id, NULL, err) < 0)
        return NULL;
    res = db_exec(d, "list tasks",
                  "SELECT stage, part, state, attempts,"
                  " CASE WHEN stage = 0 THEN byte_start END,"
                  " CASE WHEN stage = 0 THEN byte_end END,"
                  " rows_in, bytes_in, rows_out, bytes_out, rows_skipped,"
                  " worker, error, " TS("started_at") ", "
                  TS("finished_at") ", spill_bytes, peak_bytes"
                  " FROM tasks WHERE job_id = $1 ORDER BY stage, part",
                  1, p, err);
    if (res == NULL)
        return NULL;
    tasks = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_array_append_new(tasks, json_pack(
            "{s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
            " s:o, s:o, s:o, s:o, s:o}",
            "stage", col_int(res, r, 0), "partition", col_int(res, r, 1),
            "state", PQgetvalue(res, r, 2), "attempts", col_int(res, r, 3),
            "byte_start", col_int(res, r, 4), "byte_end", col_int(res, r, 5),
            "rows_in", col_int(res, r, 6), "bytes_in", col_int(res, r, 7),
            "rows_out", col_int(res, r, 8), "bytes_out", col_int(res, r, 9),
            "rows_skipped", col_int(res, r, 10),
            "worker", col_str(res, r, 11), "error", col_str(res, r, 12),
            "started_at", col_str(res, r, 13),
            "finished_at", col_str(res, r, 14),
            "spill_bytes", col_int(res, r, 15),
            "peak_bytes", col_int(res, r, 16)));
    }
    PQclear(res);
    return json_pack("{s:o}", "tasks", tasks);
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
    if ((rc = db_job_status(d, tenant, id, status, err)) < 0)
        return rc;
    if (strcmp(status, "succeeded") != 0)
        return sh_err_set(err, SH_ESTATE, NULL,
                          "job %s is %s; its result can be fetched once it "
                          "has succeeded", id, status);
    res = db_exec(d, "list result parts",
                  "SELECT t.output, t.bytes_out, t.rows_out FROM tasks t"
                  " JOIN jobs j ON j.id = t.job_id"
                  " WHERE t.job_id = $1"
                  " AND t.stage = cardinality(j.stage_tasks) - 1"
                  " AND t.state = 'done' ORDER BY t.part", 1, p, err);
    if (res == NULL)
        return SH_EDB;
    *n = (size_t)PQntuples(res);
    *parts = xcalloc(*n ? *n : 1, sizeof **parts);
    for (size_t i = 0; i < *n; i++) {
        (*parts)[i].path = xstrdup(PQgetvalue(res, (int)i, 0));
        (*parts)[i].size_bytes = strtoull(PQgetvalue(res, (int)i, 1), NULL,
                                          10);
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

/* ---- tasks ------------------------------------------------------------- */

static int strings_of(PGresult *res, char ***out);

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
    snprintf(x->peak_bytes, sizeof x->peak_bytes, "%" PRIu64,
             st->peak_bytes);
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
db_task_inputs(db *d, db_task *t, sh_err *err)
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
    t->n_inputs = (size_t)strings_of(res, &t->inputs);
    PQclear(res);
    return 0;
}

int
db_task_claim(db *d, const char *worker, int lease_s, db_task *t,
              json_t **spec, json_t **resolution, sh_err *err)
{
    char        secs[16];
    const char *p[2] = {worker, secs};
    PGresult   *res;
    json_error_t jerr;

    *spec = *resolution = NULL;
    snprintf(secs, sizeof secs, "%d", lease_s);
    res = db_exec(d, "claim task",
                  "WITH c AS (SELECT t.job_id, t.stage, t.part"
                  " FROM tasks t JOIN jobs j ON j.id = t.job_id"
                  " WHERE t.state = 'queued' AND t.not_before <= now()"
                  " AND j.status IN ('queued', 'running')"
                  " ORDER BY j.priority DESC, j.seq, t.stage, t.part"
                  " LIMIT 1 FOR UPDATE OF t SKIP LOCKED)"
                  " UPDATE tasks t SET state = 'running',"
                  " attempts = t.attempts + 1,"
                  " lease = nextval('task_lease_seq'),"
                  " lease_until = now() + make_interval(secs => $2::int),"
                  " worker = $1, started_at = now(), finished_at = NULL"
                  " FROM c WHERE t.job_id = c.job_id AND t.stage = c.stage"
                  " AND t.part = c.part"
                  " RETURNING t.job_id, t.stage, t.part, t.lease, t.attempts",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    snprintf(t->job_id, sizeof t->job_id, "%s", PQgetvalue(res, 0, 0));
    t->stage = atoi(PQgetvalue(res, 0, 1));
    t->part = atoi(PQgetvalue(res, 0, 2));
    t->lease = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    t->attempt = atoi(PQgetvalue(res, 0, 4));
    PQclear(res);

    const char *jp[1] = {t->job_id};
    res = db_exec(d, "start job",
                  "UPDATE jobs SET status = 'running',"
                  " started_at = coalesce(started_at, now())"
                  " WHERE id = $1 AND status IN ('queued', 'running')"
                  " RETURNING max_attempts, spec::text, resolution::text",
                  1, jp, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0) {
        /* The job ended between the claim and now: the task ends with it,
         * and its lease is let go at once, lest the sweeper kill this
         * worker for it (db_tasks_to_kill) while it runs another task. */
        task_keys   k;
        const char *kp[4] = {t->job_id, k.stage, k.part, k.lease};

        PQclear(res);
        task_keys_fill(&k, t);
        if (db_run(d, "let go of a task of an ended job",
                   "UPDATE tasks SET state = 'cancelled', lease_until = NULL,"
                   " finished_at = now() WHERE job_id = $1 AND stage = $2"
                   " AND part = $3 AND lease = $4"
                   " AND state IN ('running', 'cancelled')", 4, kp,
                   err) < 0)
            return SH_EDB;
        return 2;
    }
    t->max_attempts = atoi(PQgetvalue(res, 0, 0));
    *spec = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
    *resolution = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    PQclear(res);
    if (t->stage > 0 && db_task_inputs(d, t, err) < 0) {
        json_decref(*spec);
        json_decref(*resolution);
        *spec = *resolution = NULL;
        return SH_EDB;
    }
    if (*spec == NULL || *resolution == NULL) {
        json_decref(*spec);
        json_decref(*resolution);
        *spec = *resolution = NULL;
        return sh_err_set(err, SH_EDB, NULL, "job %s: stored spec is not "
                          "JSON: %s", t->job_id, jerr.text);
    }
    return 1;
}

int
db_task_heartbeat(db *d, const db_task *t, int lease_s,
                  const exec_stats *st, sh_err *err)
{
    task_keys   k;
    stats_text  x;
    char        secs[16];
    const char *p[11] = {t->job_id, k.stage, k.part, k.lease, secs,
                         x.rows_in, x.bytes_in, x.rows_out, x.rows_skipped,
                         x.spill_bytes, x.peak_bytes};
    PGresult   *res;
    int         rc;

    task_keys_fill(&k, t);
    stats_text_fill(&x, st);
    snprintf(secs, sizeof secs, "%d", lease_s);
    res = db_exec(d, "heartbeat",
                  "UPDATE tasks t SET"
                  " lease_until = now() + make_interval(secs => $5::int),"
                  " rows_in = $6, bytes_in = $7, rows_out = $8,"
                  " rows_skipped = $9, spill_bytes = $10, peak_bytes = $11"
                  " FROM jobs j WHERE t.job_id = $1 AND t.stage = $2"
                  " AND t.part = $3 AND t.lease = $4 AND t.state = 'running'"
                  " AND j.id = t.job_id AND j.status = 'running'",
                  11, p, err);
    if (res == NULL)
        return SH_EDB;
    rc = strcmp(PQcmdTuples(res), "1") == 0
             ? 0
             : sh_err_set(err, SH_ESTATE, NULL, "lease lost or job ended");
    PQclear(res);
    return rc;
}

/* Lock job 'id' for the rest of the transaction; sets 'status'. */
static int
db_job_lock(db *d, const char *id, char status[16], sh_err *err)
{
    const char *p[1] = {id};
    PGresult   *res = db_exec(d, "lock job",
                              "SELECT status FROM jobs WHERE id = $1"
                              " FOR UPDATE", 1, p, err);
    int         rc = 0;

    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0)
        rc = sh_err_set(err, SH_ESTATE, NULL, "job %s was deleted", id);
    else
        snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/*
 * Inside db_task_finish's transaction: when every task of t's stage is
 * done, queue the next stage's tasks, or end the job after the last stage.
 */
static int
db_stage_done(db *d, const db_task *t, int *job_done, sh_err *err)
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
                  " WHERE id = $1), -1)", 2, p, err);
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
                   " generate_series(0, $3::int - 1) AS g", 3, np,
                   err) < 0 ||
            db_run(d, "notify", "NOTIFY sheaf_tasks", 0, NULL, err) < 0)
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
               " WHERE j.id = $1 AND j.status = 'running'", 2, p, err) < 0)
        return SH_EDB;
    *job_done = 1;
    return 0;
}

int
db_task_finish(db *d, const db_task *t, const char *out_path,
               const exec_stats *st, int *job_done, sh_err *err)
{
    task_keys   k;
    stats_text  x;
    char        status[16];
    const char *p[12] = {t->job_id, k.stage, k.part, k.lease, out_path,
                         x.rows_in, x.bytes_in, x.rows_out, x.bytes_out,
                         x.rows_skipped, x.spill_bytes, x.peak_bytes};
    PGresult   *res;
    int         rc;

    *job_done = 0;
    task_keys_fill(&k, t);
    stats_text_fill(&x, st);
    if ((rc = db_run(d, "begin", "BEGIN", 0, NULL, err)) < 0)
        return rc;
    /* The job's row lock orders the finishers of one job, so exactly one
     * of them sees every task done. */
    if ((rc = db_job_lock(d, t->job_id, status, err)) < 0)
        goto fail;
    res = db_exec(d, "finish task",
                  "UPDATE tasks SET state = 'done', output = $5,"
                  " rows_in = $6, bytes_in = $7, rows_out = $8,"
                  " bytes_out = $9, rows_skipped = $10, spill_bytes = $11,"
                  " peak_bytes = $12,"
                  " finished_at = now(), lease_until = NULL, error = NULL"
                  " WHERE job_id = $1 AND stage = $2 AND part = $3"
                  " AND lease = $4 AND state = 'running'",
                  12, p, err);
    if (res == NULL) {
        rc = SH_EDB;
        goto fail;
    }
    rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : SH_ESTATE;
    PQclear(res);
    if (rc < 0) {
        sh_err_set(err, SH_ESTATE, NULL, "lease of job %s part %d lost",
                   t->job_id, t->part);
        goto fail;
    }
    if ((rc = db_stage_done(d, t, job_done, err)) < 0)
        goto fail;
    return db_run(d, "commit", "COMMIT", 0, NULL, err);
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

int
db_task_fail(db *d, const db_task *t, int retryable, const char *message,
             sh_err *err)
{
    task_keys   k;
    char        status[16], delay[32];
    const char *p[6] = {t->job_id, k.stage, k.part, k.lease, message, delay};
    PGresult   *res;
    int         rc, retry = retryable && t->attempt < t->max_attempts;

    task_keys_fill(&k, t);
    snprintf(delay, sizeof delay, "%.3f", retry_backoff_s(t->attempt));
    if ((rc = db_run(d, "begin", "BEGIN", 0, NULL, err)) < 0)
        return rc;
    if ((rc = db_job_lock(d, t->job_id, status, err)) < 0)
        goto fail;
    res = retry
        ? db_exec(d, "requeue task",
                  "UPDATE tasks SET state = 'queued', error = $5,"
                  " lease = NULL, lease_until = NULL, worker = NULL,"
                  " not_before = now() + make_interval(secs => $6::float8)"
                  " WHERE job_id = $1 AND stage = $2 AND part = $3"
                  " AND lease = $4 AND state = 'running'", 6, p, err)
        : db_exec(d, "fail task",
                  "UPDATE tasks SET state = 'failed', error = $5,"
                  " lease_until = NULL, finished_at = now()"
                  " WHERE job_id = $1 AND stage = $2 AND part = $3"
                  " AND lease = $4 AND state = 'running'", 5, p, err);
    if (res == NULL) {
        rc = SH_EDB;
        goto fail;
    }
    rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : SH_ESTATE;
    PQclear(res);
    if (rc < 0) {
        sh_err_set(err, SH_ESTATE, NULL, "lease of job %s part %d lost",
                   t->job_id, t->part);
        goto fail;
    }
    const char *jp[2] = {t->job_id, message};
    if (!retry && (rc = db_run(d, "fail job",
                               "UPDATE jobs SET status = 'failed', error = $2,"
                               " finished_at = now() WHERE id = $1"
                               " AND status IN ('queued', 'running')",
                               2, jp, err)) < 0)
        goto fail;
    /* The failed job's other tasks end with it: queued ones are never
     * claimed, running ones are stopped by their nodes' sweepers
     * (db_tasks_to_kill). */
    if (!retry && (rc = db_run(d, "cancel the failed job's tasks",
                               "UPDATE tasks SET state = 'cancelled',"
                               " finished_at = now() WHERE job_id = $1"
                               " AND state IN ('queued', 'running')",
                               1, jp, err)) < 0)
        goto fail;
    if (retry && (rc = db_run(d, "notify", "NOTIFY sheaf_tasks", 0, NULL,
                              err)) < 0)
        goto fail;
    return db_run(d, "commit", "COMMIT", 0, NULL, err);
fail:
    db_rollback(d);
    return rc;
}

int
db_task_cancelled(db *d, const db_task *t, sh_err *err)
{
    task_keys   k;
    const char *p[4] = {t->job_id, k.stage, k.part, k.lease};
    PGresult   *res;
    int         n;

    task_keys_fill(&k, t);
    res = db_exec(d, "check cancelled attempt",
                  "SELECT 1 FROM tasks WHERE job_id = $1 AND stage = $2"
                  " AND part = $3 AND lease = $4 AND state = 'cancelled'",
                  4, p, err);
    if (res == NULL)
        return SH_EDB;
    n = PQntuples(res);
    PQclear(res);
    return n > 0;
}

int
db_tasks_reap(db *d, const char *worker, sh_err *err)
{
    const char *p[1] = {worker};
    PGresult   *res;
    int         n;

    /* A lost attempt is requeued while attempts remain; past that the
     * partition is poison (it kills its worker every time) and its job
     * fails saying so. */
    res = db_exec(d, "reap tasks",
                  "WITH lost AS (UPDATE tasks t SET"
                  " state = CASE WHEN t.attempts >= j.max_attempts"
                  " THEN 'failed' ELSE 'queued' END,"
                  " error = 'the worker running this partition was lost"
                  " (it died or stopped renewing its lease) on attempt '"
                  " || t.attempts,"
                  " lease = NULL, lease_until = NULL, worker = NULL,"
                  " not_before = now()"
                  " FROM jobs j WHERE j.id = t.job_id AND t.state = 'running'"
                  " AND (t.worker = $1 OR t.lease_until < now())"
                  " RETURNING t.job_id, t.part, t.state, t.attempts,"
                  " t.byte_start, t.byte_end),"
                  " failed AS (UPDATE jobs SET status = 'failed',"
                  " finished_at = now(), error = 'partition ' || lost.part"
                  " || ' (bytes ' || lost.byte_start || '-' || lost.byte_end"
                  " || '): its worker process died on each of '"
                  " || lost.attempts || ' attempts (killed, crashed or out"
                  " of memory); the partition may be poison'"
                  " FROM lost WHERE jobs.id = lost.job_id"
                  " AND lost.state = 'failed'"
                  " AND jobs.status IN ('queued', 'running') RETURNING 1)"
                  " SELECT (SELECT count(*) FROM lost),"
                  " (SELECT count(*) FROM failed)", 1, p, err);
    if (res == NULL)
        return SH_EDB;
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (n > 0)
        PQclear(PQexec(d->conn, "NOTIFY sheaf_tasks"));
    return n;
}

int
db_tasks_hand_back(db *d, const char *worker, sh_err *err)
{
    const char *p[1] = {worker};
    PGresult   *res;
    int         n;

    /* The attempt the claim counted is given back with the task. */
    res = db_exec(d, "hand back tasks",
                  "UPDATE tasks SET state = 'queued',"
                  " attempts = greatest(attempts - 1, 0),"
                  " lease = NULL, lease_until = NULL, worker = NULL,"
                  " error = NULL, not_before = now()"
                  " WHERE worker = $1 AND state = 'running'", 1, p, err);
    if (res == NULL)
        return SH_EDB;
    n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n > 0)
        PQclear(PQexec(d->conn, "NOTIFY sheaf_tasks"));
    return n;
}

int
db_listen_tasks(db *d, sh_err *err)
{
    return db_run(d, "listen", "LISTEN sheaf_tasks", 0, NULL, err);
}

int
db_wait_notify(db *d, int timeout_ms)
{
    PGnotify      *note;
    int            fd, got = 0;
    fd_set         rfds;
    struct timeval tv;

    if (PQstatus(d->conn) != CONNECTION_OK)
        return 0;
    PQconsumeInput(d->conn);
    while ((note = PQnotifies(d->conn)) != NULL) {
        got = 1;
        PQfreemem(note);
    }
    if (got)
        return 1;
    fd = PQsocket(d->conn);
    if (fd < 0)
        return 0;
    FD_ZERO(&rfds);
    FD_SET(fd, &rfds);
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (select(fd + 1, &rfds, NULL, NULL, &tv) <= 0)
        return 0;
    PQconsumeInput(d->conn);
    while ((note = PQnotifies(d->conn)) != NULL) {
        got = 1;
        PQfreemem(note);
    }
    return got;
}

/* ---- cancel, delete, housekeeping -------------------------------------- */

int
db_job_cancel(db *d, const char *tenant, const char *id, sh_err *err)
{
    const char *p[2] = {id, tenant};
    char        status[16];
    PGresult   *res;
    int         rc;

    if ((rc = db_job_status(d, tenant, id, status, err)) < 0)
        return rc;
    res = db_exec(d, "cancel job",
                  "WITH j AS (UPDATE jobs SET status = 'cancelled',"
                  " finished_at = now(), error = 'cancelled by request'"
                  " WHERE id = $1 AND tenant = $2"
                  " AND status IN ('queued', 'running') RETURNING id),"
                  " t AS (UPDATE tasks SET state = 'cancelled',"
                  " finished_at = now() FROM j WHERE tasks.job_id = j.id"
                  " AND tasks.state IN ('queued', 'running') RETURNING 1)"
                  " SELECT (SELECT count(*) FROM j)", 2, p, err);
    if (res == NULL)
        return SH_EDB;
    rc = strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? 0 : SH_ESTATE;
    PQclear(res);
    if (rc == 0)
        return 0;
    /* Another end won the race (or came long before): say which. */
    if ((rc = db_job_status(d, tenant, id, status, err)) < 0)
        return rc;
    return sh_err_set(err, SH_ESTATE, NULL,
                      "job %s has already %s; only a queued or running "
                      "job can be cancelled", id,
                      strcmp(status, "cancelled") == 0 ? "been cancelled"
                                                       : status);
}

int
db_job_delete(db *d, const char *tenant, const char *id, sh_err *err)
{
    const char *p[2] = {id, tenant};
    char        status[16];
    PGresult   *res;
    int         rc;

    if ((rc = db_job_status(d, tenant, id, status, err)) < 0)
        return rc;
    res = db_exec(d, "delete job",
                  "DELETE FROM jobs WHERE id = $1 AND tenant = $2"
                  " AND status IN ('succeeded', 'failed', 'cancelled')",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    rc = strcmp(PQcmdTuples(res), "1") == 0
             ? 0
             : sh_err_set(err, SH_ESTATE, NULL,
                          "job %s is %s; cancel it or wait for it to end "
                          "before deleting it", id, status);
    PQclear(res);
    return rc;
}

int
db_jobs_expire(db *d, sh_err *err)
{
    PGresult *res;
    int       n;

    /* One statement, so that no one sees a timed-out job with tasks
     * still queued or running. Its tasks' update sees the jobs as they
     * were before the statement: the jobs it times out are named. */
    res = db_exec(d, "time out jobs",
                  "WITH expired AS (UPDATE jobs SET status = 'failed',"
                  " finished_at = now(),"
                  " error = 'timed out: the job ran longer than its timeout_s"
                  " of ' || timeout_s || ' s'"
                  " WHERE status IN ('queued', 'running') AND timeout_s > 0"
                  " AND coalesce(started_at, created_at)"
                  " + make_interval(secs => timeout_s) < now()"
                  " RETURNING id),"
                  " cancelled AS (UPDATE tasks t SET state = 'cancelled',"
                  " finished_at = now() FROM jobs j"
                  " WHERE j.id = t.job_id AND t.state IN ('queued', 'running')"
                  " AND (j.status IN ('succeeded', 'failed', 'cancelled')"
                  " OR j.id IN (SELECT id FROM expired)) RETURNING 1)"
                  " SELECT (SELECT count(*) FROM expired),"
                  " (SELECT count(*) FROM cancelled)", 0, NULL, err);
    if (res == NULL)
        return SH_EDB;
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* Column 0 of every row of 'res' as a new array of strings. */
static int
strings_of(PGresult *res, char ***out)
{
    int n = PQntuples(res);

    *out = xcalloc((size_t)(n ? n : 1), sizeof **out);
    for (int r = 0; r < n; r++)
        (*out)[r] = xstrdup(PQgetvalue(res, r, 0));
    return n;
}

/* The PostgreSQL array literal of the 'n' strings 'v', every element
 * quoted. The caller frees it. */
static char *
text_array_literal(const char *const *v, int n)
{
    size_t len = 3;
    char  *out, *o;

    for (int i = 0; i < n; i++)
        len += 2 * strlen(v[i]) + 3;
    o = out = xmalloc(len);
    *o++ = '{';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            *o++ = ',';
        *o++ = '"';
        for (const char *c = v[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *o++ = '\\';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

int
db_tasks_to_kill(db *d, const char *const *workers, int n_workers,
                 db_kill **kills, sh_err *err)
{
    char       *names;
    const char *p[1];
    PGresult   *res;
    int         n;

    *kills = NULL;
    if (n_workers <= 0)
        return 0;
    names = text_array_literal(workers, n_workers);
    p[0] = names;
    /* lease_until still set marks an attempt nobody has stopped yet; the
     * worker is told which attempt to stop, and ignores it when it has
     * left that attempt behind (worker.h). Only this node's own workers
     * are matched: another node on the same host signals its own. */
    res = db_exec(d, "find cancelled attempts",
                  "UPDATE tasks c SET lease_until = NULL"
                  " WHERE c.state = 'cancelled' AND c.lease_until IS NOT NULL"
                  " AND c.worker = ANY ($1::text[])"
                  " RETURNING c.worker, c.lease",
                  1, p, err);
    free(names);
    if (res == NULL)
        return SH_EDB;
    n = PQntuples(res);
    *kills = xcalloc((size_t)n + 1, sizeof **kills);
    for (int r = 0; r < n; r++) {
        (*kills)[r].worker = xstrdup(PQgetvalue(res, r, 0));
        (*kills)[r].lease = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    }
    PQclear(res);
    return n;
}

void
db_kills_free(db_kill *kills, int n)
{
    for (int i = 0; kills && i < n; i++)
        free(kills[i].worker);
    free(kills);
}

void
db_strings_free(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int
db_jobs_retire(db *d, int max, char ***ids, sh_err *err)
{
    char        lim[16];
    const char *p[1] = {lim};
    PGresult   *res;
    int         n;

    *ids = NULL;
    snprintf(lim, sizeof lim, "%d", max);
    res = db_exec(d, "retire jobs",
                  "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
                  " WHERE status IN ('succeeded', 'failed', 'cancelled')"
                  " AND finished_at + make_interval(secs => retention_s)"
                  " < now() LIMIT $1::int) RETURNING id", 1, p, err);
    if (res == NULL)
        return SH_EDB;
    n = strings_of(res, ids);
    PQclear(res);
    return n;
}

/* ---- cleaning ended jobs' files ----------------------------------------- */

int
db_jobs_to_clean(db *d, int max, db_clean **jobs, sh_err *err)
{
    char        lim[16];
    const char *p[1] = {lim};
    PGresult   *res;
    int         n;

    *jobs = NULL;
    snprintf(lim, sizeof lim, "%d", max);
    /* A live lease is an attempt that may still write into the job's
     * directory: a running task of a failed job, or a cancelled one whose
     * worker has not been stopped yet (db_tasks_to_kill clears the lease
     * when it hands the worker out; a dead node's lease just expires). */
    res = db_exec(d, "find jobs to clean",
                  "SELECT j.id, j.status = 'succeeded' FROM jobs j"
                  " WHERE j.cleaned_at IS NULL"
                  " AND j.status IN ('succeeded', 'failed', 'cancelled')"
                  " AND (j.status = 'succeeded'"
                  " OR j.finished_at < now() - interval '2 seconds')"
                  " AND NOT EXISTS (SELECT 1 FROM tasks t"
                  " WHERE t.job_id = j.id AND t.lease_until > now())"
                  " ORDER BY j.finished_at LIMIT $1::int", 1, p, err);
    if (res == NULL)
        return SH_EDB;
    n = PQntuples(res);
    *jobs = xcalloc((size_t)(n ? n : 1), sizeof **jobs);
    for (int r = 0; r < n; r++) {
        snprintf((*jobs)[r].id, sizeof (*jobs)[r].id, "%s",
                 PQgetvalue(res, r, 0));
        (*jobs)[r].succeeded = PQgetvalue(res, r, 1)[0] == 't';
    }
    PQclear(res);
    for (int r = 0; r < n; r++) {
        db_clean   *c = &(*jobs)[r];
        const char *jp[1] = {c->id};

        if (!c->succeeded)
            continue;
        res = db_exec(d, "list result parts to keep",
                      "SELECT t.output FROM tasks t"
                      " JOIN jobs j ON j.id = t.job_id"
                      " WHERE t.job_id = $1"
                      " AND t.stage = cardinality(j.stage_tasks) - 1"
                      " AND t.state = 'done' AND t.output IS NOT NULL"
                      " ORDER BY t.part", 1, jp, err);
        if (res == NULL) {
            db_clean_free(*jobs, n);
            *jobs = NULL;
            return SH_EDB;
        }
        c->n_keep = (size_t)strings_of(res, &c->keep);
        PQclear(res);
    }
    return n;
}

void
db_clean_free(db_clean *jobs, int n)
{
    for (int i = 0; jobs && i < n; i++)
        db_strings_free(jobs[i].keep, (int)jobs[i].n_keep);
    free(jobs);
}

int
db_job_cleaned(db *d, const char *id, sh_err *err)
{
    const char *p[1] = {id};

    return db_run(d, "record job cleaned",
                  "UPDATE jobs SET cleaned_at = now() WHERE id = $1",
                  1, p, err);
}
