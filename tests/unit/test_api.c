/*
 * test_api.c - unit tests of api/ without a server: the route matcher
 * (methods, {id} and {name}, trailing slash, HEAD, Allow lists, routes
 * that come later), Range header parsing, the mapping of sh_err codes to
 * HTTP statuses and error bodies, and the job and task objects built from
 * the database layer's structs, and the cache of ended jobs' replies.
 * Failures print both values.
 */
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/api_int.h"
#include "test_helpers.h"
#include "test_suites.h"

#define UUID_LOWER "0b7c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21"
#define UUID_UPPER "0B7C6A5E-1F2D-4C3B-9A8E-7D6C5B4A3F21"

/* Free what a test request holds and zero it for the next use. */
static void
req_reset(api_req *r)
{
    json_decref(r->reply_json);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i].value);
    memset(r, 0, sizeof *r);
    r->method = "GET";
    r->url = "/test";
}

/* The value of reply header 'name' of 'r', or NULL. */
static const char *
req_header(const api_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ---- routing ------------------------------------------------------------- */

/* Match 'method' 'path'; the route's pattern, or NULL with 'allow'. */
static const char *
route_of(api_req *r, const char *method, const char *path, char allow[80])
{
    const api_route *rt = api_route_find(r, method, path, allow);

    return rt != NULL ? rt->pattern : NULL;
}

static void
test_route_match(void)
{
    api_req r = {0};
    char    allow[80];

    req_reset(&r);
    CHECK_STR("/v1/jobs", route_of(&r, "GET", "/v1/jobs", allow));
    CHECK_TRUE(api_route_find(&r, "GET", "/v1/jobs", allow)->handler
               == api_job_list);
    CHECK_TRUE(api_route_find(&r, "POST", "/v1/jobs", allow)->handler
               == api_job_submit);
    CHECK_TRUE(api_route_find(&r, "POST", "/v1/jobs", allow)->flags & API_BODY);
    /* One trailing slash is ignored. */
    CHECK_STR("/v1/jobs", route_of(&r, "GET", "/v1/jobs/", allow));
    CHECK_STR("/healthz", route_of(&r, "GET", "/healthz", allow));
    /* A literal segment wins over {id} only by being a literal: the
     * validate route is POST, and "validate" is no UUID. */
    CHECK_STR("/v1/jobs/validate",
              route_of(&r, "POST", "/v1/jobs/validate", allow));
    CHECK_TRUE(route_of(&r, "GET", "/v1/jobs/validate", allow) == NULL);
    CHECK_STR("POST", allow);
}

static void
test_route_captures(void)
{
    api_req          r = {0};
    char             allow[80];
    const api_route *rt;

    req_reset(&r);
    /* {id} is a UUID, stored lower case. */
    rt = api_route_find(&r, "GET", "/v1/jobs/" UUID_UPPER, allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_get);
    CHECK_STR(UUID_LOWER, r.id);
    rt = api_route_find(&r, "GET", "/v1/jobs/" UUID_LOWER "/result", allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_result);
    rt = api_route_find(&r, "DELETE", "/v1/jobs/" UUID_LOWER, allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_delete);
    rt = api_route_find(&r, "POST", "/v1/jobs/" UUID_LOWER "/cancel", allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_cancel);
    /* {name} is any non-empty segment. */
    rt = api_route_find(&r, "GET", "/v1/jobs/" UUID_LOWER "/artifacts/model",
                        allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_artifact);
    CHECK_STR("model", r.name);
    CHECK_STR(UUID_LOWER, r.id);
    /* Not a UUID: no route has that path. */
    CHECK_TRUE(route_of(&r, "GET", "/v1/jobs/0b7c6a5e-1f2d", allow) == NULL);
    CHECK_STR("", allow);
    CHECK_TRUE(route_of(&r, "GET", "/v1/jobs/" UUID_LOWER "x", allow) == NULL);
    CHECK_STR("", allow);
}

static void
test_route_methods(void)
{
    api_req          r = {0};
    char             allow[80];
    const api_route *rt;

    req_reset(&r);
    /* HEAD is served by the GET route. */
    rt = api_route_find(&r, "HEAD", "/v1/jobs/" UUID_LOWER "/result", allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_result);
    /* A known path with another method: the methods it takes, each once,
     * in table order, HEAD after GET. */
    CHECK_TRUE(route_of(&r, "PUT", "/v1/jobs", allow) == NULL);
    CHECK_STR("POST, GET, HEAD", allow);
    CHECK_TRUE(route_of(&r, "PATCH", "/v1/jobs/" UUID_LOWER, allow) == NULL);
    CHECK_STR("GET, HEAD, DELETE", allow);
    CHECK_TRUE(route_of(&r, "POST", "/healthz", allow) == NULL);
    CHECK_STR("GET, HEAD", allow);
    /* An unknown path: no Allow. */
    CHECK_TRUE(route_of(&r, "GET", "/nope", allow) == NULL);
    CHECK_STR("", allow);
    CHECK_TRUE(route_of(&r, "GET", "/v1/jobsx", allow) == NULL);
    CHECK_STR("", allow);
}

static void
test_route_later(void)
{
    api_req          r = {0};
    char             allow[80];
    const api_route *rt;

    req_reset(&r);
    /* The event stream and the metrics are served now. */
    rt = api_route_find(&r, "GET", "/v1/jobs/" UUID_LOWER "/events", allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_job_events
               && rt->feature == NULL);
    rt = api_route_find(&r, "GET", "/metrics", allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_metrics_get);
    CHECK_TRUE(rt != NULL && api_route_at(api_route_index(rt)) == rt);
    /* Every route with a handler has no feature note, and the reverse. */
    rt = api_route_find(&r, "GET", "/readyz", allow);
    CHECK_TRUE(rt != NULL && rt->handler == api_readyz && rt->feature == NULL);
}

/* ---- Range -----------------------------------------------------------------
 */

/* One Range case: header, size, expected outcome and bytes. */
typedef struct range_case {
    const char *h;
    uint64_t    size;
    int         want;
    uint64_t    first, last;
} range_case;

static void
test_range_parse(void)
{
    static const range_case cases[] = {
        {"bytes=0-9", 100, API_RANGE_OK, 0, 9},
        {"bytes=10-", 100, API_RANGE_OK, 10, 99},
        {"bytes=-10", 100, API_RANGE_OK, 90, 99},
        {"bytes=-1000", 100, API_RANGE_OK, 0, 99},
        {"bytes=50-1000", 100, API_RANGE_OK, 50, 99},
        {"bytes=99-99", 100, API_RANGE_OK, 99, 99},
        {" bytes = 5 - 6 ", 100, API_RANGE_NONE, 0, 0},
        {" bytes =5-6 ", 100, API_RANGE_OK, 5, 6},
        {"BYTES=1-2", 100, API_RANGE_OK, 1, 2},
        {"bytes=100-", 100, API_RANGE_UNSATISFIED, 0, 0},
        {"bytes=100-200", 100, API_RANGE_UNSATISFIED, 0, 0},
        {"bytes=-0", 100, API_RANGE_UNSATISFIED, 0, 0},
        {"bytes=0-", 0, API_RANGE_UNSATISFIED, 0, 0},
        {"bytes=-5", 0, API_RANGE_UNSATISFIED, 0, 0},
        {"bytes=9-5", 100, API_RANGE_NONE, 0, 0},
        {"bytes=-", 100, API_RANGE_NONE, 0, 0},
        {"bytes=0-1,5-6", 100, API_RANGE_NONE, 0, 0},
        {"items=0-1", 100, API_RANGE_NONE, 0, 0},
        {"bytes 0-1", 100, API_RANGE_NONE, 0, 0},
        {"bytes=a-b", 100, API_RANGE_NONE, 0, 0},
        {"bytes=1-2x", 100, API_RANGE_NONE, 0, 0},
        {"bytes=99999999999999999999999-", 100, API_RANGE_UNSATISFIED, 0, 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const range_case *c = &cases[i];
        uint64_t          first = 7777, last = 7777;
        int               got = api_range_parse(c->h, c->size, &first, &last);

        CHECK(got == c->want,
              "Range '%s' of %llu bytes: expected outcome %d, got %d", c->h,
              (unsigned long long)c->size, c->want, got);
        if (got == API_RANGE_OK && c->want == API_RANGE_OK)
            CHECK(first == c->first && last == c->last,
                  "Range '%s': expected %llu-%llu, got %llu-%llu", c->h,
                  (unsigned long long)c->first, (unsigned long long)c->last,
                  (unsigned long long)first, (unsigned long long)last);
    }
}

/* ---- errors ----------------------------------------------------------------
 */

/* The "code" of the error body of 'r'. */
static const char *
reply_code(const api_req *r)
{
    return json_string_value(
        json_object_get(json_object_get(r->reply_json, "error"), "code"));
}

/* One mapping: sh_err code, in_spec, expected status and code. */
typedef struct map_case {
    int         code;
    int         in_spec;
    int         status;
    const char *name;
} map_case;

static void
test_error_mapping(void)
{
    static const map_case cases[] = {
        {SH_EINVAL, 0, 400, "bad_request"},
        {SH_EINVAL, 1, 400, "invalid_spec"},
        {SH_ERANGE, 1, 400, "invalid_spec"},
        {SH_ENOENT, 0, 404, "not_found"},
        {SH_ENOENT, 1, 400, "invalid_spec"},
        {SH_EDATA, 0, 400, "bad_data"},
        {SH_ESTATE, 0, 409, "wrong_state"},
        {SH_ECONFLICT, 1, 409, "conflict"},
        {SH_ETOOBIG, 0, 413, "too_large"},
        {SH_EDB, 0, 503, "unavailable"},
        {SH_EIO, 0, 500, "internal"},
    };
    api_req r = {0};
    sh_err  e;

    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const map_case *c = &cases[i];
        int             status;

        req_reset(&r);
        sh_err_set(&e, c->code, "input.path", "message %zu", i);
        status = api_error_sh(&r, &e, c->in_spec);
        CHECK(status == c->status,
              "%s (in_spec %d): expected status %d, got %d",
              sh_err_name(c->code), c->in_spec, c->status, status);
        CHECK_STR(c->name, reply_code(&r));
        CHECK_STR("input.path",
                  json_string_value(json_object_get(
                      json_object_get(r.reply_json, "error"), "path")));
        /* Only a 503 asks the client to come back. */
        CHECK_INT(c->status == 503, req_header(&r, "Retry-After") != NULL);
    }
    req_reset(&r);
}

static void
test_error_body(void)
{
    api_req     r = {0};
    sh_err      e;
    const char *msg;

    memset(&r, 0, sizeof r);
    req_reset(&r);
    /* libpq's trailing newline goes; invalid UTF-8 is replaced. */
    CHECK_INT(409, api_error(&r, 409, "conflict", NULL, "it broke: %s\n \t",
                             "here"));
    msg = json_string_value(
        json_object_get(json_object_get(r.reply_json, "error"), "message"));
    CHECK_STR("it broke: here", msg);
    CHECK_STR("", json_string_value(json_object_get(
                      json_object_get(r.reply_json, "error"), "path")));
    req_reset(&r);
    api_error(&r, 400, "bad_request", "a\xff", "bad \xc3(");
    CHECK_STR("bad ?(",
              json_string_value(json_object_get(
                  json_object_get(r.reply_json, "error"), "message")));
    CHECK_STR("a?", json_string_value(json_object_get(
                        json_object_get(r.reply_json, "error"), "path")));
    /* An error without a message says its name. */
    req_reset(&r);
    sh_err_clear(&e);
    e.code = SH_ESTATE;
    api_error_sh(&r, &e, 0);
    CHECK_STR(sh_err_name(SH_ESTATE),
              json_string_value(json_object_get(
                  json_object_get(r.reply_json, "error"), "message")));
    req_reset(&r);
}

static void
test_utf8(void)
{
    CHECK_TRUE(api_utf8_valid("plain"));
    CHECK_TRUE(api_utf8_valid("\xe2\x82\xac\xf0\x9f\x98\x80"));
    CHECK_TRUE(!api_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
    CHECK_TRUE(!api_utf8_valid("\xc0\xaf"));         /* overlong */
    CHECK_TRUE(!api_utf8_valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
    CHECK_TRUE(!api_utf8_valid("\xe2\x82"));         /* cut short */
}

/* ---- job objects -----------------------------------------------------------
 */

/* A running job with no result yet. */
static void
job_fill(db_job *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", UUID_LOWER);
    j->name = xstrdup("wc");
    snprintf(j->status, sizeof j->status, "running");
    snprintf(j->created_at, sizeof j->created_at, "2026-01-02T03:04:05.678Z");
    snprintf(j->started_at, sizeof j->started_at, "2026-01-02T03:04:06.000Z");
    j->spec = xstrdup("{\"input\": {\"path\": \"a.csv\"}}");
    j->seq = 41;
    j->priority = 5;
    j->max_attempts = 3;
    j->partitions_total = 4;
    j->partitions_done = 1;
    j->partitions_running = 2;
    j->rows_in = 1000;
    j->bytes_in = 123456789012LL;
}

static void
test_job_json(void)
{
    db_job  j;
    json_t *o, *prog, *res;
    char    url[API_URL_MAX];

    job_fill(&j);
    o = api_job_json(&j);
    CHECK_TRUE(o != NULL);
    CHECK_STR(UUID_LOWER, json_string_value(json_object_get(o, "id")));
    CHECK_STR("wc", json_string_value(json_object_get(o, "name")));
    CHECK_STR("running", json_string_value(json_object_get(o, "status")));
    CHECK_TRUE(json_is_null(json_object_get(o, "finished_at")));
    CHECK_TRUE(json_is_null(json_object_get(o, "error")));
    CHECK_STR("2026-01-02T03:04:05.678Z",
              json_string_value(json_object_get(o, "created_at")));
    prog = json_object_get(o, "progress");
    CHECK_INT(4, json_integer_value(json_object_get(prog, "partitions_total")));
    CHECK_INT(2,
              json_integer_value(json_object_get(prog, "partitions_running")));
    CHECK_INT(123456789012LL,
              json_integer_value(json_object_get(prog, "bytes_in")));
    CHECK_INT(8, json_object_size(prog));
    res = json_object_get(o, "result");
    CHECK_STR("/v1/jobs/" UUID_LOWER "/result",
              json_string_value(json_object_get(res, "url")));
    CHECK_TRUE(json_is_null(json_object_get(res, "bytes")));
    CHECK_TRUE(json_is_null(json_object_get(res, "rows")));
    CHECK_INT(5, json_integer_value(json_object_get(o, "priority")));
    CHECK_STR("a.csv", json_string_value(json_object_get(
                           json_object_get(json_object_get(o, "spec"), "input"),
                           "path")));
    CHECK_INT(12, json_object_size(o));
    json_decref(o);

    /* An ended job: its error and result show. */
    snprintf(j.status, sizeof j.status, "succeeded");
    snprintf(j.finished_at, sizeof j.finished_at, "2026-01-02T03:05:00.000Z");
    j.error = xstrdup("");
    j.has_result = 1;
    j.result_bytes = 0;
    j.result_rows = 7;
    o = api_job_json(&j);
    CHECK_STR("", json_string_value(json_object_get(o, "error")));
    res = json_object_get(o, "result");
    CHECK_TRUE(json_is_integer(json_object_get(res, "bytes")));
    CHECK_INT(7, json_integer_value(json_object_get(res, "rows")));
    json_decref(o);

    /* A callback's secret is left out (its url stays); a list item (no
     * spec) has none. */
    free(j.spec);
    j.spec = xstrdup("{\"callback\": {\"url\": \"http://h/\","
                     " \"secret\": \"s3cret\"}}");
    o = api_job_json(&j);
    CHECK_TRUE(
        json_object_get(json_object_get(json_object_get(o, "spec"), "callback"),
                        "secret")
        == NULL);
    CHECK_STR("http://h/",
              json_string_value(json_object_get(
                  json_object_get(json_object_get(o, "spec"), "callback"),
                  "url")));
    json_decref(o);
    free(j.spec);
    j.spec = NULL;
    o = api_job_json(&j);
    CHECK_TRUE(json_object_get(o, "spec") == NULL);
    CHECK_INT(11, json_object_size(o));
    json_decref(o);

    api_job_url(url, UUID_LOWER, "");
    CHECK_STR("/v1/jobs/" UUID_LOWER, url);
    db_job_clear(&j);
    CHECK_TRUE(j.name == NULL && j.spec == NULL && j.error == NULL);
}

static void
test_job_list_json(void)
{
    db_job *jobs = xcalloc(2, sizeof *jobs);
    json_t *o;

    job_fill(&jobs[0]);
    job_fill(&jobs[1]);
    jobs[1].seq = 7;
    o = api_job_list_json(jobs, 2, 1);
    CHECK_INT(2, json_array_size(json_object_get(o, "jobs")));
    CHECK_STR("7", json_string_value(json_object_get(o, "next_cursor")));
    json_decref(o);
    o = api_job_list_json(jobs, 2, 0);
    CHECK_TRUE(json_is_null(json_object_get(o, "next_cursor")));
    json_decref(o);
    o = api_job_list_json(NULL, 0, 0);
    CHECK_INT(0, json_array_size(json_object_get(o, "jobs")));
    CHECK_TRUE(json_is_null(json_object_get(o, "next_cursor")));
    json_decref(o);
    db_jobs_free(jobs, 2);
}

static void
test_tasks_json(void)
{
    db_task_row *t = xcalloc(2, sizeof *t);
    json_t      *o, *a, *b;

    snprintf(t[0].state, sizeof t[0].state, "done");
    t[0].has_bytes = 1;
    t[0].byte_end = 4096;
    t[0].worker = xstrdup("host:12");
    snprintf(t[0].started_at, sizeof t[0].started_at,
             "2026-01-02T03:04:05.678Z");
    t[1].stage = 1;
    t[1].part = 3;
    snprintf(t[1].state, sizeof t[1].state, "queued");
    t[1].error = xstrdup("boom");
    o = api_tasks_json(t, 2, 1);
    a = json_array_get(json_object_get(o, "tasks"), 0);
    b = json_array_get(json_object_get(o, "tasks"), 1);
    CHECK_INT(17, json_object_size(a));
    CHECK_INT(4096, json_integer_value(json_object_get(a, "byte_end")));
    CHECK_STR("host:12", json_string_value(json_object_get(a, "worker")));
    CHECK_TRUE(json_is_null(json_object_get(a, "error")));
    CHECK_TRUE(json_is_null(json_object_get(a, "finished_at")));
    CHECK_INT(3, json_integer_value(json_object_get(b, "partition")));
    CHECK_STR("1.3", json_string_value(json_object_get(o, "next_cursor")));
    CHECK_TRUE(json_is_null(json_object_get(b, "byte_start")));
    CHECK_TRUE(json_is_null(json_object_get(b, "worker")));
    CHECK_STR("boom", json_string_value(json_object_get(b, "error")));
    json_decref(o);
    db_task_rows_free(t, 2);
}

/* The cache of ended jobs' replies: a hit gives the bytes put, only to
 * the tenant that put them; DELETE forgets; a newer reply replaces. */
static void
test_jobcache(void)
{
    api_jobcache *c = api_jobcache_new();
    const char   *body = "{\"id\":\"" UUID_LOWER "\"}\n";
    const char   *other = "9f1e2d3c-4b5a-4968-8776-655443322110";
    char         *got;
    size_t        len;

    CU_ASSERT_PTR_NULL(api_jobcache_get(c, "default", UUID_LOWER, &len));
    api_jobcache_put(c, "default", UUID_LOWER, body, strlen(body));
    got = api_jobcache_get(c, "default", UUID_LOWER, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(len, strlen(body));
    CU_ASSERT(memcmp(got, body, len) == 0);
    free(got);
    /* Another tenant, another job: misses. */
    CU_ASSERT_PTR_NULL(api_jobcache_get(c, "acme", UUID_LOWER, &len));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NULL(api_jobcache_get(c, "default", other, &len));
    /* A newer reply of the same job replaces the older. */
    api_jobcache_put(c, "default", UUID_LOWER, "{}\n", 3);
    got = api_jobcache_get(c, "default", UUID_LOWER, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(len, 3);
    free(got);
    /* Forgetting another job leaves it; forgetting it removes it. */
    api_jobcache_forget(c, other);
    got = api_jobcache_get(c, "default", UUID_LOWER, &len);
    CU_ASSERT_PTR_NOT_NULL(got);
    free(got);
    api_jobcache_forget(c, UUID_LOWER);
    CU_ASSERT_PTR_NULL(api_jobcache_get(c, "default", UUID_LOWER, &len));
    /* Not a job id: not kept. */
    api_jobcache_put(c, "default", "x", "{}\n", 3);
    CU_ASSERT_PTR_NULL(api_jobcache_get(c, "default", "x", &len));
    api_jobcache_free(c);
    /* No cache: nothing kept, nothing found. */
    api_jobcache_put(NULL, "default", UUID_LOWER, "{}\n", 3);
    CU_ASSERT_PTR_NULL(api_jobcache_get(NULL, "default", UUID_LOWER, &len));
}

void
test_api_register(void)
{
    CU_pSuite s = CU_add_suite("api", NULL, NULL);

    if (s == NULL)
        return;
    CU_add_test(s, "routes: literal paths and handlers", test_route_match);
    CU_add_test(s, "routes: {id} and {name}", test_route_captures);
    CU_add_test(s, "routes: HEAD and Allow", test_route_methods);
    CU_add_test(s, "routes: features that come later", test_route_later);
    CU_add_test(s, "Range header", test_range_parse);
    CU_add_test(s, "sh_err to HTTP status and code", test_error_mapping);
    CU_add_test(s, "error bodies", test_error_body);
    CU_add_test(s, "UTF-8 checks", test_utf8);
    CU_add_test(s, "job object", test_job_json);
    CU_add_test(s, "job list and cursor", test_job_list_json);
    CU_add_test(s, "task objects", test_tasks_json);
    CU_add_test(s, "cache of ended jobs' replies", test_jobcache);
}
