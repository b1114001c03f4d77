/*
 * db_events.c - a job's events, read for GET /v1/jobs/{id}/events (they
 * are written by the triggers of migrations/0005_events.sql), the outbox
 * of end-of-job callbacks, and the figures of GET /metrics (see db.h).
 */
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

int
db_job_events(db *d, const char *id, int64_t after, int max, db_event **events,
              size_t *n, sh_err *err)
{
    char        after_s[24], max_s[16];
    const char *p[3] = {id, after_s, max_s};
    PGresult   *res;

    *events = NULL;
    *n = 0;
    snprintf(after_s, sizeof after_s, "%" PRId64, after);
    snprintf(max_s, sizeof max_s, "%d", max);
    res = db_exec(d, "read job events",
                  "SELECT seq, kind, data::text, kind = 'state' AND"
                  " data->>'status' IN ('succeeded', 'failed', 'cancelled')"
                  " FROM job_events WHERE job_id = $1 AND seq >= $2::bigint"
                  " ORDER BY seq LIMIT $3::int",
                  3, p, err);
    if (res == NULL)
        return SH_EDB;
    *n = (size_t)PQntuples(res);
    *events = xcalloc(*n ? *n : 1, sizeof **events);
    for (size_t i = 0; i < *n; i++) {
        db_event *e = &(*events)[i];

        e->seq = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        snprintf(e->kind, sizeof e->kind, "%s", PQgetvalue(res, (int)i, 1));
        e->data = xstrdup(PQgetvalue(res, (int)i, 2));
        e->terminal = PQgetvalue(res, (int)i, 3)[0] == 't';
    }
    PQclear(res);
    return 0;
}

void
db_events_free(db_event *events, size_t n)
{
    for (size_t i = 0; events && i < n; i++)
        free(events[i].data);
    free(events);
}

/* The thresholds of the task duration histogram, seconds. */
const double db_duration_le[DB_DURATION_BUCKETS] = {0.01, 0.05, 0.1, 0.25,
                                                    0.5,  1,    2.5, 5,
                                                    10,   30,   60,  300};

/* The index of 'word' in 'words' of 'n', or -1. */
static int
word_index(const char *const *words, int n, const char *word)
{
    for (int i = 0; i < n; i++)
        if (strcmp(words[i], word) == 0)
            return i;
    return -1;
}

const char *const db_job_statuses[DB_N_STATUSES] = {"queued", "running",
                                                    "succeeded", "failed",
                                                    "cancelled"};
const char *const db_task_states[DB_N_STATUSES] = {"queued", "running", "done",
                                                   "failed", "cancelled"};

int
db_metrics_read(db *d, db_metrics *m, sh_err *err)
{
    PGresult *res;
    int       i, k;

    memset(m, 0, sizeof *m);
    res = db_exec(d, "count jobs",
                  "SELECT status, count(*) FROM jobs"
                  " GROUP BY status",
                  0, NULL, err);
    if (res == NULL)
        return SH_EDB;
    for (i = 0; i < PQntuples(res); i++)
        if ((k = word_index(db_job_statuses, DB_N_STATUSES,
                            PQgetvalue(res, i, 0)))
            >= 0)
            m->jobs[k] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    PQclear(res);

    /* One pass over the tasks for the counts and sums by state. */
    res = db_exec(d, "count tasks",
                  "SELECT state, count(*), coalesce(sum(rows_in), 0),"
                  " coalesce(sum(bytes_in), 0), coalesce(sum(rows_out), 0),"
                  " coalesce(sum(bytes_out), 0),"
                  " coalesce(sum(spill_bytes), 0)"
                  " FROM tasks GROUP BY state",
                  0, NULL, err);
    if (res == NULL)
        return SH_EDB;
    for (i = 0; i < PQntuples(res); i++) {
        if ((k = word_index(db_task_states, DB_N_STATUSES,
                            PQgetvalue(res, i, 0)))
            >= 0)
            m->tasks[k] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        m->rows_in += strtoll(PQgetvalue(res, i, 2), NULL, 10);
        m->bytes_in += strtoll(PQgetvalue(res, i, 3), NULL, 10);
        m->rows_out += strtoll(PQgetvalue(res, i, 4), NULL, 10);
        m->bytes_out += strtoll(PQgetvalue(res, i, 5), NULL, 10);
        m->spill_bytes += strtoll(PQgetvalue(res, i, 6), NULL, 10);
    }
    PQclear(res);

    /* The runnable queue, from the partial index tasks_runnable. */
    res = db_exec(d, "read the queue",
                  "SELECT count(*), coalesce(extract(epoch FROM"
                  " now() - min(not_before)), 0)::float8"
                  " FROM tasks WHERE state = 'queued'"
                  " AND not_before <= now()",
                  0, NULL, err);
    if (res == NULL)
        return SH_EDB;
    m->queue_depth = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    m->oldest_queued_s = strtod(PQgetvalue(res, 0, 1), NULL);
    PQclear(res);

    res = db_exec(d, "task durations",
                  "SELECT width_bucket(s, ARRAY[0.01, 0.05, 0.1, 0.25, 0.5,"
                  " 1, 2.5, 5, 10, 30, 60, 300]::float8[]), count(*),"
                  " sum(s) FROM (SELECT extract(epoch FROM finished_at"
                  " - started_at)::float8 AS s FROM tasks"
                  " WHERE state = 'done' AND started_at IS NOT NULL"
                  " AND finished_at IS NOT NULL) t GROUP BY 1",
                  0, NULL, err);
    if (res == NULL)
        return SH_EDB;
    for (i = 0; i < PQntuples(res); i++) {
        int     b = atoi(PQgetvalue(res, i, 0));
        int64_t c = strtoll(PQgetvalue(res, i, 1), NULL, 10);

        /* Bucket b holds durations at or past threshold b - 1: each
         * cumulative bucket from b on counts them. */
        for (k = b; k < DB_DURATION_BUCKETS; k++)
            m->duration_le[k] += c;
        m->duration_count += c;
        m->duration_sum += strtod(PQgetvalue(res, i, 2), NULL);
    }
    PQclear(res);

    res = db_exec(d, "count callbacks",
                  "SELECT count(*) FILTER (WHERE delivered_at IS NULL"
                  " AND given_up_at IS NULL),"
                  " count(*) FILTER (WHERE delivered_at IS NOT NULL),"
                  " count(*) FILTER (WHERE given_up_at IS NOT NULL)"
                  " FROM callback_outbox",
                  0, NULL, err);
    if (res == NULL)
        return SH_EDB;
    m->callbacks_pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    m->callbacks_delivered = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    m->callbacks_given_up = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    return 0;
}

void
db_callback_clear(db_callback *cb)
{
    free(cb->url);
    free(cb->secret);
    free(cb->last_error);
    memset(cb, 0, sizeof *cb);
}

int
db_callback_claim(db *d, int lease_s, db_callback *cb, sh_err *err)
{
    char        lease[16];
    const char *p[1] = {lease};
    PGresult   *res;

    memset(cb, 0, sizeof *cb);
    snprintf(lease, sizeof lease, "%d", lease_s);
    /* The claimed row's next_at moves past the lease: a node that dies
     * while delivering leaves it due again then (at least once). */
    res = db_exec(d, "claim a callback",
                  "UPDATE callback_outbox o SET attempts = o.attempts + 1,"
                  " next_at = now() + make_interval(secs => $1::int)"
                  " FROM jobs j WHERE j.id = o.job_id AND o.job_id ="
                  " (SELECT job_id FROM callback_outbox"
                  " WHERE delivered_at IS NULL AND given_up_at IS NULL"
                  " AND next_at <= now() ORDER BY next_at LIMIT 1"
                  " FOR UPDATE SKIP LOCKED)"
                  " RETURNING o.job_id, j.tenant, o.url,"
                  " j.spec->'callback'->>'secret', o.attempts,"
                  " extract(epoch FROM now() - o.first_at)::float8",
                  1, p, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    snprintf(cb->job_id, sizeof cb->job_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(cb->tenant, sizeof cb->tenant, "%s", PQgetvalue(res, 0, 1));
    cb->url = xstrdup(PQgetvalue(res, 0, 2));
    cb->secret = PQgetisnull(res, 0, 3) ? NULL : xstrdup(PQgetvalue(res, 0, 3));
    cb->attempts = atoi(PQgetvalue(res, 0, 4));
    cb->age_s = strtod(PQgetvalue(res, 0, 5), NULL);
    PQclear(res);
    return 1;
}

int
db_callback_record(db *d, const char *job_id, int status, const char *error,
                   double retry_s, int give_up, sh_err *err)
{
    char        st[16], delay[32];
    const char *p[5] = {job_id, st, error, delay, give_up ? "t" : "f"};

    snprintf(st, sizeof st, "%d", status);
    snprintf(delay, sizeof delay, "%.3f", retry_s);
    if (status == 0)
        p[1] = NULL;
    return db_run(d, "record a callback attempt",
                  "UPDATE callback_outbox SET last_status = $2::int,"
                  " last_error = $3::text,"
                  " delivered_at = CASE WHEN $3::text IS NULL"
                  " THEN now() END,"
                  " given_up_at = CASE WHEN $3::text IS NOT NULL AND $5::bool"
                  " THEN now() END,"
                  " next_at = now() + make_interval(secs => $4::float8)"
                  " WHERE job_id = $1",
                  5, p, err);
}

int
db_callback_get(db *d, const char *job_id, db_callback *cb, sh_err *err)
{
    const char *p[1] = {job_id};
    PGresult   *res;
    int         found;

    memset(cb, 0, sizeof *cb);
    res = db_exec(d, "read a callback",
                  "SELECT url, attempts, last_status, last_error,"
                  " CASE WHEN delivered_at IS NOT NULL THEN 'delivered'"
                  " WHEN given_up_at IS NOT NULL THEN 'given_up'"
                  " ELSE 'pending' END, " DB_TS(
                      "delivered_at") " FROM callback_outbox WHERE job_id = $1",
                  1, p, err);
    if (res == NULL)
        return SH_EDB;
    found = PQntuples(res) > 0;
    if (found) {
        snprintf(cb->job_id, sizeof cb->job_id, "%s", job_id);
        cb->url = xstrdup(PQgetvalue(res, 0, 0));
        cb->attempts = atoi(PQgetvalue(res, 0, 1));
        cb->last_status = PQgetisnull(res, 0, 2) ? 0
                                                 : atoi(PQgetvalue(res, 0, 2));
        cb->last_error = PQgetisnull(res, 0, 3)
                             ? NULL
                             : xstrdup(PQgetvalue(res, 0, 3));
        snprintf(cb->state, sizeof cb->state, "%s", PQgetvalue(res, 0, 4));
        snprintf(cb->delivered_at, sizeof cb->delivered_at, "%s",
                 PQgetvalue(res, 0, 5));
    }
    PQclear(res);
    return found;
}
