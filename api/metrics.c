/*
 * metrics.c - GET /metrics in the Prometheus text format (version 0.0.4),
 * and the HTTP figures of this process that it reports.
 *
 * Two kinds of series:
 *
 * - Of this sheafd process, reset when it restarts: HTTP requests by
 *   route template and status class, their latency histogram (a long
 *   poll or an event stream counts its whole duration), the workers
 *   alive on this node, the database pool, notifications received, the
 *   start time (sheaf_start_time_seconds, to see a reset).
 * - Of the whole service, read from PostgreSQL at each scrape (so every
 *   node reports the same and nothing resets with a process): jobs by
 *   status, tasks by state, the runnable queue and the age of its oldest
 *   task, rows and bytes read and written and bytes spilled by the tasks
 *   of retained jobs, the duration histogram of their done tasks,
 *   callbacks by state. These drop when ended jobs are retired
 *   (SHEAF retention), so they are gauges.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../service/log.h"

#ifndef SHEAF_VERSION
#define SHEAF_VERSION "0.1.0"
#endif
#ifndef SHEAF_COMMIT
#define SHEAF_COMMIT "unknown"
#endif

#define METRICS_POOL_WAIT_MS 2000
#define METRICS_CLASSES      5 /* 1xx .. 5xx */
#define METRICS_BUCKETS      12

static const double metrics_http_le[METRICS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30};

/* The figures of one route (the last slot: requests no route matched). */
typedef struct metrics_route {
    atomic_long by_class[METRICS_CLASSES];
    atomic_long le[METRICS_BUCKETS]; /* not cumulative: by first bucket */
    atomic_long count;
    atomic_long sum_us;
} metrics_route;

struct api_metrics {
    size_t         n_routes;
    metrics_route *routes; /* n_routes + 1 */
    atomic_int     workers;
    int64_t        start_s;
};

api_metrics *
api_metrics_new(void)
{
    api_metrics *m = xcalloc(1, sizeof *m);

    m->n_routes = api_route_count();
    m->routes = xcalloc(m->n_routes + 1, sizeof *m->routes);
    m->start_s = (int64_t)time(NULL);
    return m;
}

void
api_metrics_free(api_metrics *m)
{
    if (m == NULL)
        return;
    free(m->routes);
    free(m);
}

void
api_metrics_record(api_metrics *m, const api_route *rt, int status, int64_t ms)
{
    size_t         i = rt != NULL ? api_route_index(rt) : m->n_routes;
    metrics_route *r;
    int            b, cls = status / 100 - 1;
    double         s = (double)ms / 1000.0;

    if (m == NULL)
        return;
    if (i > m->n_routes)
        i = m->n_routes;
    r = &m->routes[i];
    if (cls >= 0 && cls < METRICS_CLASSES)
        atomic_fetch_add(&r->by_class[cls], 1);
    for (b = 0; b < METRICS_BUCKETS && s > metrics_http_le[b]; b++)
        ;
    if (b < METRICS_BUCKETS)
        atomic_fetch_add(&r->le[b], 1);
    atomic_fetch_add(&r->count, 1);
    atomic_fetch_add(&r->sum_us, (long)(ms * 1000));
}

void
api_set_workers_alive(api *a, int n)
{
    if (a != NULL && a->metrics != NULL)
        atomic_store(&a->metrics->workers, n);
}

/* "# HELP" and "# TYPE" of a series. */
static void
metrics_head(strbuf *sb, const char *name, const char *type, const char *help)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The labels of route 'i' (method and template), or of the unmatched. */
static void
metrics_route_labels(const api_metrics *m, size_t i, char *out, size_t n)
{
    const api_route *rt = i < m->n_routes ? api_route_at(i) : NULL;

    snprintf(out, n, "method=\"%s\",route=\"%s\"", rt != NULL ? rt->method : "",
             rt != NULL ? rt->pattern : "unmatched");
}

static void
metrics_http(const api_metrics *m, strbuf *sb)
{
    char labels[160];

    metrics_head(sb, "sheaf_http_requests_total", "counter",
                 "HTTP requests answered by this process, by route "
                 "template and status class (reset on restart).");
    for (size_t i = 0; i <= m->n_routes; i++) {
        metrics_route_labels(m, i, labels, sizeof labels);
        for (int c = 0; c < METRICS_CLASSES; c++) {
            long v = atomic_load(&m->routes[i].by_class[c]);

            if (v > 0)
                sb_printf(sb,
                          "sheaf_http_requests_total{%s,code=\"%dxx\"}"
                          " %ld\n",
                          labels, c + 1, v);
        }
    }
    metrics_head(sb, "sheaf_http_request_duration_seconds", "histogram",
                 "Time from a request's arrival to the end of its reply "
                 "(long polls and event streams included; reset on "
                 "restart).");
    for (size_t i = 0; i <= m->n_routes; i++) {
        const metrics_route *r = &m->routes[i];
        long                 count = atomic_load(&r->count), cum = 0;

        if (count == 0)
            continue;
        metrics_route_labels(m, i, labels, sizeof labels);
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += atomic_load(&r->le[b]);
            sb_printf(sb,
                      "sheaf_http_request_duration_seconds_bucket{%s,"
                      "le=\"%g\"} %ld\n",
                      labels, metrics_http_le[b], cum);
        }
        sb_printf(sb,
                  "sheaf_http_request_duration_seconds_bucket{%s,"
                  "le=\"+Inf\"} %ld\n",
                  labels, count);
        sb_printf(sb, "sheaf_http_request_duration_seconds_sum{%s} %.6f\n",
                  labels, (double)atomic_load(&r->sum_us) / 1e6);
        sb_printf(sb, "sheaf_http_request_duration_seconds_count{%s} %ld\n",
                  labels, count);
    }
}

/* One gauge without labels. */
static void
metrics_gauge(strbuf *sb, const char *name, const char *help, double v)
{
    metrics_head(sb, name, "gauge", help);
    sb_printf(sb, "%s %.17g\n", name, v);
}

static void
metrics_db(const db_metrics *dm, strbuf *sb)
{
    metrics_head(sb, "sheaf_jobs", "gauge", "Jobs by status (all nodes).");
    for (int i = 0; i < DB_N_STATUSES; i++)
        sb_printf(sb, "sheaf_jobs{status=\"%s\"} %lld\n", db_job_statuses[i],
                  (long long)dm->jobs[i]);
    metrics_head(sb, "sheaf_tasks", "gauge",
                 "Tasks (partitions of every stage) by state (all nodes).");
    for (int i = 0; i < DB_N_STATUSES; i++)
        sb_printf(sb, "sheaf_tasks{state=\"%s\"} %lld\n", db_task_states[i],
                  (long long)dm->tasks[i]);
    metrics_gauge(sb, "sheaf_queue_depth",
                  "Queued tasks past their retry backoff (runnable).",
                  (double)dm->queue_depth);
    metrics_gauge(sb, "sheaf_queue_oldest_age_seconds",
                  "How long the oldest runnable queued task has waited.",
                  dm->oldest_queued_s);
    metrics_gauge(sb, "sheaf_task_rows_read",
                  "Rows read by the tasks of retained jobs.",
                  (double)dm->rows_in);
    metrics_gauge(sb, "sheaf_task_read_bytes",
                  "Input bytes read by the tasks of retained jobs.",
                  (double)dm->bytes_in);
    metrics_gauge(sb, "sheaf_task_rows_written",
                  "Rows written by the tasks of retained jobs.",
                  (double)dm->rows_out);
    metrics_gauge(sb, "sheaf_task_written_bytes",
                  "Bytes written by the tasks of retained jobs.",
                  (double)dm->bytes_out);
    metrics_gauge(sb, "sheaf_task_spill_bytes",
                  "Bytes spilled to disk by the tasks of retained jobs.",
                  (double)dm->spill_bytes);
    metrics_head(sb, "sheaf_task_duration_seconds", "histogram",
                 "Run time of the done tasks of retained jobs.");
    for (int b = 0; b < DB_DURATION_BUCKETS; b++)
        sb_printf(sb, "sheaf_task_duration_seconds_bucket{le=\"%g\"} %lld\n",
                  db_duration_le[b], (long long)dm->duration_le[b]);
    sb_printf(sb, "sheaf_task_duration_seconds_bucket{le=\"+Inf\"} %lld\n",
              (long long)dm->duration_count);
    sb_printf(sb, "sheaf_task_duration_seconds_sum %.6f\n", dm->duration_sum);
    sb_printf(sb, "sheaf_task_duration_seconds_count %lld\n",
              (long long)dm->duration_count);
    metrics_head(sb, "sheaf_callbacks", "gauge",
                 "End-of-job callbacks of retained jobs by state.");
    sb_printf(sb,
              "sheaf_callbacks{state=\"pending\"} %lld\n"
              "sheaf_callbacks{state=\"delivered\"} %lld\n"
              "sheaf_callbacks{state=\"given_up\"} %lld\n",
              (long long)dm->callbacks_pending,
              (long long)dm->callbacks_delivered,
              (long long)dm->callbacks_given_up);
}

int
api_metrics_get(api_req *r)
{
    api_metrics         *m = r->a->metrics;
    struct MHD_Response *resp;
    db_metrics           dm;
    strbuf               sb = {0};
    sh_err               err;
    db                  *d;
    int                  rc = SH_EDB, in_use, waiting, size;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, METRICS_POOL_WAIT_MS, &err)) != NULL)
        rc = api_db_put(r->a, d, db_metrics_read(d, &dm, &err));
    if (rc < 0)
        log_warn("metrics: %s", err.msg);
    metrics_head(&sb, "sheaf_build_info", "gauge",
                 "The version and git commit of this sheafd.");
    sb_printf(&sb, "sheaf_build_info{version=\"%s\",commit=\"%s\"} 1\n",
              SHEAF_VERSION, SHEAF_COMMIT);
    metrics_gauge(&sb, "sheaf_start_time_seconds",
                  "When this sheafd started (Unix time): the process "
                  "figures reset then.",
                  (double)m->start_s);
    metrics_gauge(&sb, "sheaf_database_up",
                  "1 when this scrape could read PostgreSQL's figures.",
                  rc == 0);
    if (rc == 0)
        metrics_db(&dm, &sb);
    metrics_http(m, &sb);
    metrics_gauge(&sb, "sheaf_workers_alive",
                  "Worker processes running on this node.",
                  atomic_load(&m->workers));
    db_pool_stats(r->a->pool, &in_use, &waiting, &size);
    metrics_gauge(&sb, "sheaf_db_pool_in_use",
                  "Database connections of the API in use.", in_use);
    metrics_gauge(&sb, "sheaf_db_pool_waiting",
                  "Requests waiting for a database connection.", waiting);
    metrics_gauge(&sb, "sheaf_db_pool_size",
                  "The most database connections the API opens.", size);
    metrics_head(&sb, "sheaf_job_notifications_total", "counter",
                 "Job change notifications received by this process "
                 "(reset on restart).");
    sb_printf(&sb, "sheaf_job_notifications_total %ld\n",
              jobwatch_received(r->a->watch));

    resp = MHD_create_response_from_buffer(sb.len, sb.data,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        sb_free(&sb);
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot make the reply");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    api_reply(r, MHD_HTTP_OK, NULL);
    r->reply = resp;
    return MHD_HTTP_OK;
}
