/*
 * jobs.c - the job resource: submit (POST /v1/jobs), validate, list, show
 * with an optional long poll, and the tasks of a job. The result download
 * is in result.c.
 *
 * A database connection is taken from the pool only for the database
 * calls, never while a spec is checked against its files (a model's job is
 * looked up on a connection of its own, given back at once), and given
 * back (closed after SH_EDB) before the reply is sent.
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

#include "../service/log.h"
#include "../service/model.h"
#include "../service/spool.h"
#include "../service/store.h"

#define JOBS_KEY_MAX       200  /* bytes of an Idempotency-Key */
#define JOBS_PARAM_MAX     1024 /* bytes of a name or cursor parameter */
#define JOBS_LIMIT_DEFAULT 100
#define JOBS_LIMIT_MAX     1000
#define JOBS_WAIT_MAX_S    300
#define JOBS_POLL_MS                                              \
    1000                       /* re-read without a notification: \
                                  what a lost one costs at most */
#define JOBS_POLL_WAIT_MS 1000 /* pool wait inside a long poll */

static const char *const jobs_statuses[] = {"queued", "running", "succeeded",
                                            "failed", "cancelled"};

/* Non-zero when 's' is one of the status words. */
static int
jobs_is_status(const char *s)
{
    size_t i;

    for (i = 0; i < sizeof jobs_statuses / sizeof jobs_statuses[0]; i++)
        if (strcmp(s, jobs_statuses[i]) == 0)
            return 1;
    return 0;
}

/* Parse the decimal integer 's' in [lo, hi]. Returns 0, or -1. */
static int
jobs_parse_int(const char *s, int lo, int hi, int *out)
{
    long v = 0;
    int  n;

    for (n = 0; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 9)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0 || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parse 's', seconds as digits with an optional fraction ("2", "0.5"),
 * up to JOBS_WAIT_MAX_S, into milliseconds. Returns 0, or -1. */
static int
jobs_parse_wait(const char *s, int64_t *ms)
{
    size_t i, digits = 0, dots = 0;
    double v;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (s[i] == '.' && dots == 0 && digits > 0)
            dots++;
        else
            return -1;
        if (i >= 16)
            return -1;
    }
    if (digits == 0 || s[i - 1] == '.')
        return -1;
    v = strtod(s, NULL);
    if (v < 0 || v > JOBS_WAIT_MAX_S)
        return -1;
    *ms = (int64_t)(v * 1000.0);
    return 0;
}

/* Non-zero when 's' is a usable opaque parameter: valid UTF-8, not too
 * long (the database would refuse bad text and drop the connection). */
static int
jobs_param_ok(const char *s)
{
    return strlen(s) <= JOBS_PARAM_MAX && api_utf8_valid(s);
}

/*
 * Check the Idempotency-Key header 'key': 1 to JOBS_KEY_MAX printable
 * ASCII characters. Returns 0, or the status of the error reply.
 */
static int
jobs_check_key(api_req *r, const char *key)
{
    size_t i, n = strlen(key);

    for (i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            break;
    if (n == 0 || n > JOBS_KEY_MAX || i < n)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                         "Idempotency-Key",
                         "Idempotency-Key must be 1 to %d printable ASCII "
                         "characters",
                         JOBS_KEY_MAX);
    return 0;
}

/*
 * The API's plan_model_fn ('ctx' is the api_req): the model of job
 * 'job_id' only when that job is the caller's tenant's. Another tenant's
 * job is SH_ENOENT as an unknown one is, so the planner's 400 is the same
 * for both and tells nothing of other tenants' ids. A connection is taken
 * for the look-up alone.
 */
static int
jobs_resolve_model(const void *ctx, const char *job_id, char **path_out,
                   sh_err *err)
{
    const api_req *r = ctx;
    db            *d;
    int            rc;

    *path_out = NULL;
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, err)) == NULL)
        return err->code;
    rc = api_db_put(r->a, d, db_job_owned(d, r->tenant, job_id, err));
    if (rc < 0)
        return rc;
    return model_resolve(r->a->cfg->spool, job_id, path_out, err);
}

/*
 * Parse the body of 'r' as a job spec and build its plan. With 'sha', also
 * store the SHA-256 of the spec's canonical form (compact, sorted keys), so
 * that a retry with the same spec, however it is spaced or ordered, matches
 * its Idempotency-Key. Returns 0 with *spec and *p (the caller frees both),
 * or the status of the error reply.
 */
static int
jobs_plan(api_req *r, json_t **spec, plan **p, char sha[65], api_ds_refs *refs)
{
    const char  *data = r->body.data != NULL ? r->body.data : "";
    json_error_t jerr;
    strbuf       canon = {0};
    sh_err       err;
    int          status = 0, rc;

    *p = NULL;
    *spec = json_loadb(data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (*spec == NULL)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "invalid_json", "",
                         "malformed JSON: %s (line %d, column %d)", jerr.text,
                         jerr.line, jerr.column);
    if (!json_is_object(*spec)) {
        status = api_error(r, MHD_HTTP_BAD_REQUEST, "invalid_spec", "",
                           "the job spec must be a JSON object");
        goto done;
    }
    if (sha != NULL) {
        if (api_json_dump(*spec, JSON_COMPACT | JSON_SORT_KEYS, &canon) != 0) {
            status = api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                               "", "cannot encode the spec");
            goto done;
        }
        api_sha256_hex(canon.data, canon.len, sha);
    }
    sh_err_clear(&err);
    char    *datasets = spool_datasets_dir(r->a->cfg->spool);
    plan_env env = {r->a->cfg->data_root,
                    jobs_resolve_model,
                    r,
                    (uint64_t)r->a->cfg->memory_mb << 20,
                    (uint64_t)r->a->cfg->max_partitions,
                    datasets,
                    api_dataset_resolve,
                    refs};

    refs->r = r;
    refs->n = 0;
    rc = plan_build(*spec, &env, p, &err);
    free(datasets);
    if (rc != 0) {
        *p = NULL;
        status = api_error_sh(r, &err, 1);
    }

done:
    sb_free(&canon);
    if (status != 0) {
        json_decref(*spec);
        *spec = NULL;
    }
    return status;
}

/* The job object of 'job', with "artifacts": ["model", "report"] when it
 * has succeeded and has any. New. */
static json_t *
jobs_json_with_artifacts(api_req *r, const db_job *job)
{
    json_t *out = api_job_json(job), *names;

    if (out == NULL || strcmp(job->status, "succeeded") != 0)
        return out;
    names = api_artifact_names(r->a->cfg, job->id);
    if (names != NULL)
        json_object_set_new(out, "artifacts", names);
    return out;
}

/* Reply with 'status' and the job object 'job' (ownership taken); a job
 * that cannot be encoded (text that is not UTF-8) is a 500. */
static int
jobs_reply(api_req *r, int status, json_t *job)
{
    if (job == NULL)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot encode the job");
    return api_reply(r, status, job);
}

/* Keep the reply 'job' of an ended job in the cache, unless it has a
 * callback (whose state still changes). */
static void
jobs_cache(api_req *r, const json_t *job)
{
    strbuf sb = {0};

    if (json_object_get(job, "callback") != NULL)
        return;
    if (api_json_dump(job, JSON_COMPACT, &sb) == 0) {
        sb_putc(&sb, '\n');
        api_jobcache_put(r->a->jobcache, r->tenant, r->id, sb.data, sb.len);
    }
    sb_free(&sb);
}

/*
 * Read job r->id into *job (db_job_clear it) with a connection taken
 * within 'wait_ms'. Returns 0, or an SH_E* code with 'err' set.
 */
static int
jobs_fetch(api_req *r, int wait_ms, db_job *job, sh_err *err)
{
    db *d;
    int rc;

    memset(job, 0, sizeof *job);
    if ((d = api_db_get(r->a, wait_ms, err)) == NULL)
        return err->code;
    rc = api_db_put(r->a, d, db_job_get(d, r->tenant, r->id, job, err));
    return rc;
}

int
api_job_submit(api_req *r)
{
    const char *key = api_header_get(r, "Idempotency-Key");
    json_t     *spec = NULL, *resolution = NULL;
    plan       *p = NULL;
    db         *d = NULL;
    db_job      job = {0};
    char        sha[65], id[37], location[API_URL_MAX];
    int         created = 0, broken = 0, status, rc;
    sh_err      err;
    api_ds_refs refs;

    if (key != NULL && (status = jobs_check_key(r, key)) != 0)
        return status;
    if ((status = jobs_plan(r, &spec, &p, sha, &refs)) != 0)
        return status;
    if ((status = api_callback_check(r, spec)) != 0)
        goto done;
    resolution = plan_resolution(p);
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL) {
        status = api_error_sh(r, &err, 0);
        goto done;
    }
    rc = db_job_submit(d, r->tenant, p, resolution, key, sha, id, &created,
                       &err);
    if (rc == 0 && created && refs.n > 0) {
        rc = db_job_set_datasets(d, id, refs.ids, refs.n, &err);
        if (rc >= 0 && (size_t)rc < refs.n) {
            /* A dataset went between the plan and now: the job could not
             * run; it ends cancelled and the client is told. */
            (void)db_job_cancel(d, r->tenant, id, &err);
            rc = sh_err_set(&err, SH_ECONFLICT, "input.dataset",
                            "a dataset of the job was deleted while it was "
                            "submitted; job %s was cancelled",
                            id);
        } else if (rc > 0) {
            rc = 0;
        }
    }
    if (rc == 0)
        rc = db_job_get(d, r->tenant, id, &job, &err);
    if (rc < 0) {
        broken = err.code == SH_EDB;
        status = api_error_sh(r, &err, 1);
        goto done;
    }
    if (created) {
        api_job_url(location, id, "");
        api_header_set(r, MHD_HTTP_HEADER_LOCATION, location);
    }
    status = jobs_reply(r, created ? MHD_HTTP_CREATED : MHD_HTTP_OK,
                        api_job_json(&job));

done:
    db_job_clear(&job);
    api_db_put(r->a, d, broken ? SH_EDB : 0);
    json_decref(resolution);
    plan_free(p);
    json_decref(spec);
    return status;
}

int
api_job_validate(api_req *r)
{
    json_t     *spec = NULL;
    plan       *p = NULL;
    int         status;
    api_ds_refs refs;

    if ((status = jobs_plan(r, &spec, &p, NULL, &refs)) != 0)
        return status;
    status = api_reply(r, MHD_HTTP_OK, plan_describe(p));
    plan_free(p);
    json_decref(spec);
    return status;
}

int
api_job_list(api_req *r)
{
    const char *status = api_query(r, "status");
    const char *name = api_query(r, "name");
    const char *limit_s = api_query(r, "limit");
    const char *cursor = api_query(r, "cursor");
    db_job     *jobs = NULL;
    size_t      n = 0;
    db         *d;
    sh_err      err;
    int         limit = JOBS_LIMIT_DEFAULT, more = 0, rc;

    if (status != NULL && !jobs_is_status(status))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "status",
                         "status must be one of queued, running, succeeded, "
                         "failed, cancelled");
    if (limit_s != NULL
        && jobs_parse_int(limit_s, 1, JOBS_LIMIT_MAX, &limit) != 0)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "limit",
                         "limit must be an integer from 1 to %d",
                         JOBS_LIMIT_MAX);
    if (name != NULL && !jobs_param_ok(name))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "name",
                         "name must be UTF-8 text of at most %d bytes",
                         JOBS_PARAM_MAX);
    if (cursor != NULL && !jobs_param_ok(cursor))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "cursor",
                         "cursor is not one this service returned");
    if (name != NULL && name[0] == '\0')
        name = NULL;
    if (cursor != NULL && cursor[0] == '\0')
        cursor = NULL;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d,
                    db_job_list(d, r->tenant, status, name, limit, cursor,
                                &jobs, &n, &more, &err));
    if (rc < 0)
        return api_error_sh(r, &err, 0);
    rc = api_reply(r, MHD_HTTP_OK, api_job_list_json(jobs, n, more));
    db_jobs_free(jobs, n);
    return rc;
}

int
api_job_get(api_req *r)
{
    const char     *wait_s = api_query(r, "wait");
    db_job          job, next;
    jobwatch_waiter wt;
    int64_t         wait_ms = 0, deadline_ms, left_ms;
    sh_err          err;
    char           *cached;
    size_t          len;
    int             rc;

    if (wait_s != NULL && jobs_parse_wait(wait_s, &wait_ms) != 0)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "wait",
                         "wait must be a number of seconds from 0 to %d",
                         JOBS_WAIT_MAX_S);
    /* An ended job answers from the cache, wait or not. */
    if ((cached = api_jobcache_get(r->a->jobcache, r->tenant, r->id, &len))
        != NULL) {
        r->reply = MHD_create_response_from_buffer(len, cached,
                                                   MHD_RESPMEM_MUST_FREE);
        if (r->reply == NULL) {
            free(cached);
            return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                             "cannot make the reply");
        }
        MHD_add_response_header(r->reply, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json");
        return MHD_HTTP_OK;
    }
    deadline_ms = now_ms() + wait_ms;
    sh_err_clear(&err);
    /* Registered before the first read, so that a change committed after
     * it wakes the long poll below (jobwatch.h). */
    jobwatch_add(r->a->watch, &wt, r->id);
    if (jobs_fetch(r, API_POOL_WAIT_MS, &job, &err) < 0) {
        jobwatch_remove(r->a->watch, &wt);
        return api_error_sh(r, &err, 0);
    }

    /* The long poll: no connection is held while it sleeps. It wakes
     * when the job's change is announced, re-reads at least every
     * JOBS_POLL_MS, and ends early when the client hangs up or the server
     * stops; a database outage in the middle only delays the next look. */
    atomic_fetch_add(&r->a->polling, 1);
    rc = 0;
    while (!db_job_status_ended(job.status) && !atomic_load(&r->a->stopping)) {
        left_ms = deadline_ms - now_ms();
        if (left_ms <= 0)
            break;
        jobwatch_wait(r->a->watch, &wt,
                      (int)(left_ms < JOBS_POLL_MS ? left_ms : JOBS_POLL_MS));
        if (api_client_gone(r, 0))
            break;
        rc = jobs_fetch(r, JOBS_POLL_WAIT_MS, &next, &err);
        if (rc == 0) {
            db_job_clear(&job);
            job = next;
        } else if (rc != SH_EDB) {
            break;
        }
    }
    jobwatch_remove(r->a->watch, &wt);
    atomic_fetch_sub(&r->a->polling, 1);
    if (rc < 0 && rc != SH_EDB) {
        rc = api_error_sh(r, &err, 0);
    } else {
        json_t *out = jobs_json_with_artifacts(r, &job);

        if (out != NULL) {
            api_result_fix_bytes(r, out);
            api_callback_annotate(r, out);
            if (db_job_status_ended(job.status))
                jobs_cache(r, out);
        }
        rc = jobs_reply(r, MHD_HTTP_OK, out);
    }
    db_job_clear(&job);
    return rc;
}

int
api_job_tasks(api_req *r)
{
    const char  *limit_s = api_query(r, "limit");
    const char  *cursor = api_query(r, "cursor");
    db_task_row *tasks;
    size_t       n;
    db          *d;
    sh_err       err;
    int          rc, more, limit = JOBS_LIMIT_MAX;

    if (limit_s != NULL
        && jobs_parse_int(limit_s, 1, JOBS_LIMIT_MAX, &limit) != 0)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "limit",
                         "limit must be an integer from 1 to %d",
                         JOBS_LIMIT_MAX);
    if (cursor != NULL && !jobs_param_ok(cursor))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "cursor",
                         "cursor is not one this service returned");
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d,
                    db_job_tasks(d, r->tenant, r->id, limit, cursor, &tasks, &n,
                                 &more, &err));
    if (rc < 0)
        return api_error_sh(r, &err, 0);
    rc = api_reply(r, MHD_HTTP_OK, api_tasks_json(tasks, n, more));
    db_task_rows_free(tasks, n);
    return rc;
}

int
api_job_cancel(api_req *r)
{
    db_job job = {0};
    db    *d;
    sh_err err;
    int    rc;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = db_job_cancel(d, r->tenant, r->id, &err);
    if (rc == 0)
        rc = db_job_get(d, r->tenant, r->id, &job, &err);
    rc = api_db_put(r->a, d, rc);
    if (rc < 0)
        return api_error_sh(r, &err, 0);
    /* The job is cancelled now; its running partitions are stopped by
     * their nodes' sweepers within a fraction of a second. */
    rc = jobs_reply(r, MHD_HTTP_ACCEPTED, api_job_json(&job));
    db_job_clear(&job);
    return rc;
}

int
api_job_delete(api_req *r)
{
    db    *d;
    sh_err err;
    int    rc;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d, db_job_delete(d, r->tenant, r->id, &err));
    if (rc < 0)
        return api_error_sh(r, &err, 0);
    api_jobcache_forget(r->a->jobcache, r->id);
    /* A download in progress keeps the files until it ends (result.c). */
    if (!api_result_hold_files(r->id)
        && spool_remove_job(r->a->cfg->spool, r->id) < 0)
        log_warn("job %s deleted, but removing its files failed", r->id);
    /* SHEAF_STORE: its result and artifacts leave the store too. */
    if (store_drop_published(r->id, &err) != 0)
        log_warn("job %s deleted, but its objects stay in the store: %s", r->id,
                 err.msg);
    return api_reply(r, MHD_HTTP_NO_CONTENT, NULL);
}
