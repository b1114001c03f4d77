/*
 * job_json.c - what clients see of a job and of its tasks (SPEC section
 * 3), built from the database layer's structs, and the URLs of a job.
 */
#include "api_int.h"

#include <stdio.h>

/* 's' as a JSON string, or null when it is NULL (a NULL column). */
static json_t *
job_json_str(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* The timestamp 'ts' as a JSON string, or null when "" (a NULL column). */
static json_t *
job_json_ts(const char *ts)
{
    return ts[0] != '\0' ? json_string(ts) : json_null();
}

/* 'v' as a JSON integer, or null when not 'set'. */
static json_t *
job_json_int(int set, int64_t v)
{
    return set ? json_integer((json_int_t)v) : json_null();
}

void
api_job_url(char url[API_URL_MAX], const char *id, const char *suffix)
{
    snprintf(url, API_URL_MAX, "/v1/jobs/%s%s", id, suffix);
}

/*
 * The spec of 'j' as a job's own GET shows it, new, or NULL when 'j' has
 * none (a list item). A callback's secret is never shown (SPEC section 3:
 * "without the callback's secret"): it is the client's and the
 * delivery's alone.
 */
static json_t *
job_json_spec(const db_job *j)
{
    json_t *spec, *cb;

    if (j->spec == NULL)
        return NULL;
    spec = json_loads(j->spec, 0, NULL);
    if (spec == NULL)
        return json_null();
    cb = json_object_get(spec, "callback");
    if (json_is_object(cb))
        json_object_del(cb, "secret");
    return spec;
}

json_t *
api_job_json(const db_job *j)
{
    json_t *spec = job_json_spec(j), *out;
    char    url[API_URL_MAX];

    api_job_url(url, j->id, "/result");
    out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o,"
                    " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
                    " s:o, s:{s:s, s:o, s:o}, s:i, s:i}",
                    "id", j->id, "name", j->name, "status", j->status,
                    "created_at", job_json_ts(j->created_at), "started_at",
                    job_json_ts(j->started_at), "finished_at",
                    job_json_ts(j->finished_at), "progress", "partitions_total",
                    (json_int_t)j->partitions_total, "partitions_done",
                    (json_int_t)j->partitions_done, "partitions_running",
                    (json_int_t)j->partitions_running, "partitions_failed",
                    (json_int_t)j->partitions_failed, "rows_in",
                    (json_int_t)j->rows_in, "bytes_in", (json_int_t)j->bytes_in,
                    "rows_out", (json_int_t)j->rows_out, "rows_skipped",
                    (json_int_t)j->rows_skipped, "error",
                    job_json_str(j->error), "result", "url", url, "bytes",
                    job_json_int(j->has_result, j->result_bytes), "rows",
                    job_json_int(j->has_result, j->result_rows), "priority",
                    j->priority, "max_attempts", j->max_attempts);
    if (spec != NULL)
        json_object_set_new(out, "spec", spec);
    return out;
}

json_t *
api_job_list_json(const db_job *jobs, size_t n, int more)
{
    json_t *arr = json_array();
    char    cursor[24];

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, api_job_json(&jobs[i]));
    if (more && n > 0)
        snprintf(cursor, sizeof cursor, "%lld", (long long)jobs[n - 1].seq);
    return json_pack("{s:o, s:o}", "jobs", arr, "next_cursor",
                     more && n > 0 ? json_string(cursor) : json_null());
}

/* One task as the tasks list shows it. */
static json_t *
job_task_json(const db_task_row *t)
{
    return json_pack(
        "{s:i, s:i, s:s, s:i, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o,"
        " s:o, s:o, s:o, s:I, s:I}",
        "stage", t->stage, "partition", t->part, "state", t->state, "attempts",
        t->attempts, "byte_start", job_json_int(t->has_bytes, t->byte_start),
        "byte_end", job_json_int(t->has_bytes, t->byte_end), "rows_in",
        (json_int_t)t->rows_in, "bytes_in", (json_int_t)t->bytes_in, "rows_out",
        (json_int_t)t->rows_out, "bytes_out", (json_int_t)t->bytes_out,
        "rows_skipped", (json_int_t)t->rows_skipped, "worker",
        job_json_str(t->worker), "error", job_json_str(t->error), "started_at",
        job_json_ts(t->started_at), "finished_at", job_json_ts(t->finished_at),
        "spill_bytes", (json_int_t)t->spill_bytes, "peak_bytes",
        (json_int_t)t->peak_bytes);
}

json_t *
api_tasks_json(const db_task_row *tasks, size_t n, int more)
{
    json_t *arr = json_array();
    char    cursor[32];

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, job_task_json(&tasks[i]));
    if (more && n > 0)
        snprintf(cursor, sizeof cursor, "%d.%d", tasks[n - 1].stage,
                 tasks[n - 1].part);
    return json_pack("{s:o, s:o}", "tasks", arr, "next_cursor",
                     more && n > 0 ? json_string(cursor) : json_null());
}
