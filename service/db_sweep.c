/*
 * db_sweep.c - housekeeping, for every node's sweeper and the workers'
 * cleaning: timing out jobs, finding the cancelled attempts a node must
 * stop, retiring jobs past their retention, and the ended jobs whose
 * intermediate files are to be removed (see db.h).
 */
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "../executor/plan.h"
#include "log.h"

/*
 * SQL that is true when more than SECS seconds have passed since the
 * timestamp TS, and never fails: a row whose values no timestamp can hold
 * (a retention_s of 2^63 - 1 seconds, an infinite time written by hand)
 * is not past, instead of an "out of range" error that would stop the
 * whole statement, and with it the sweeper, at every pass. The difference
 * of two finite timestamps always fits an interval.
 */
#define SWEEP_PAST(TS, SECS)                \
    "(isfinite(" TS ") AND " TS " <= now()" \
    " AND extract(epoch FROM now() - " TS ") > " SECS ")"

int
db_jobs_expire(db *d, sh_err *err)
{
    /* One statement, so that no one sees a timed-out job with tasks
     * still queued or running. Its tasks' update sees the jobs as they
     * were before the statement: the jobs it times out are named. */
    return db_exec_count(
        d, "time out jobs",
        "WITH expired AS (UPDATE jobs SET status = 'failed',"
        " finished_at = now(),"
        " error = 'timed out: the job ran longer than its"
        " timeout_s of ' || timeout_s || ' s'"
        " WHERE status IN ('queued', 'running')"
        " AND timeout_s > 0"
        " AND " SWEEP_PAST(
            "coalesce(started_at,"
            " created_at)",
            "timeout_s") " RETURNING id),"
                         " cancelled AS (UPDATE tasks t"
                         " SET state = 'cancelled',"
                         " finished_at = now() FROM jobs j"
                         " WHERE j.id = t.job_id"
                         " AND t.state IN ('queued', 'running')"
                         " AND (j.status IN ('succeeded', 'failed',"
                         " 'cancelled')"
                         " OR j.id IN (SELECT id FROM expired)) RETURNING 1)"
                         " SELECT (SELECT count(*) FROM expired),"
                         " (SELECT count(*) FROM cancelled)",
        0, NULL, err);
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

/* Log the ended jobs (a few) that the retirement passes over because
 * their values are outside what the API lets in (retention_s from 0 to
 * PLAN_RETENTION_S_MAX, a finite finish): written behind the API's back,
 * they stay until deleted by hand, and the other jobs are retired. */
static void
retire_log_skipped(db *d)
{
    char        max[24];
    const char *p[1] = {max};
    PGresult   *res;
    sh_err      err;

    snprintf(max, sizeof max, "%lld", (long long)PLAN_RETENTION_S_MAX);
    res = db_exec(d, "find jobs that cannot be retired",
                  "SELECT id, retention_s, finished_at FROM jobs"
                  " WHERE status IN ('succeeded', 'failed', 'cancelled')"
                  " AND (NOT isfinite(finished_at) OR retention_s < 0"
                  " OR retention_s > $1::bigint) LIMIT 5",
                  1, p, &err);
    if (res == NULL) {
        log_warn("finding jobs that cannot be retired: %s", err.msg);
        return;
    }
    for (int r = 0; r < PQntuples(res); r++)
        log_warn("job %s: retention_s %s after finishing at %s is out of "
                 "range; the sweeper skips it (delete it by hand)",
                 PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                 PQgetvalue(res, r, 2));
    PQclear(res);
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
    res = db_exec(
        d, "retire jobs",
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
        " WHERE status IN ('succeeded', 'failed', 'cancelled')"
        " AND " SWEEP_PAST("finished_at",
                           "retention_s") " LIMIT $1::int) RETURNING id",
        1, p, err);
    if (res == NULL)
        return SH_EDB;
    n = db_strings_of(res, ids);
    PQclear(res);
    if (n < max)
        retire_log_skipped(d);
    return n;
}

/* The committed outputs of the last stage of succeeded job 'c', which its
 * cleaning keeps, into c->keep. Returns 0 or SH_EDB. */
static int
sweep_keep_parts(db *d, db_clean *c, sh_err *err)
{
    const char *jp[1] = {c->id};
    PGresult   *res;

    res = db_exec(d, "list result parts to keep",
                  "SELECT t.output FROM tasks t"
                  " JOIN jobs j ON j.id = t.job_id"
                  " WHERE t.job_id = $1"
                  " AND t.stage = cardinality(j.stage_tasks) - 1"
                  " AND t.state = 'done' AND t.output IS NOT NULL"
                  " ORDER BY t.part",
                  1, jp, err);
    if (res == NULL)
        return SH_EDB;
    c->n_keep = (size_t)db_strings_of(res, &c->keep);
    PQclear(res);
    return 0;
}

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
                  " ORDER BY j.finished_at LIMIT $1::int",
                  1, p, err);
    if (res == NULL)
        return SH_EDB;
    n = PQntuples(res);
    *jobs = xcalloc((size_t)(n ? n : 1), sizeof **jobs);
    for (int r = 0; r < n; r++) {
        snprintf((*jobs)[r].id, sizeof(*jobs)[r].id, "%s",
                 PQgetvalue(res, r, 0));
        (*jobs)[r].succeeded = PQgetvalue(res, r, 1)[0] == 't';
    }
    PQclear(res);
    for (int r = 0; r < n; r++) {
        if ((*jobs)[r].succeeded && sweep_keep_parts(d, &(*jobs)[r], err) < 0) {
            db_clean_free(*jobs, n);
            *jobs = NULL;
            return SH_EDB;
        }
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

    /* Lost in a crash of the database, the stamp only makes the job be
     * cleaned again: no need to wait for the disk. */
    return db_run_lazy(d, "record job cleaned",
                       "UPDATE jobs SET cleaned_at = now() WHERE id = $1", 1, p,
                       err);
}
