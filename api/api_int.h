/*
 * api_int.h - what the files of api/ share and nothing outside api/ may use:
 * the server, one request's state, the route table's shape, the reply
 * helpers and the handlers.
 *
 * A request's state is one api_req, made in the first libmicrohttpd
 * callback and freed in the completion callback. A handler runs once the
 * whole request (and its body, for routes that take one) has been read; it
 * fills the reply of its api_req and returns the HTTP status, as nginx
 * handlers do. Handlers run on the connection's own thread and may block.
 */
#ifndef SHEAF_API_INT_H
#define SHEAF_API_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "../service/db.h"
#include "../service/jobwatch.h"
#include "../lib/util.h"

#define API_BODY_MAX     (1024 * 1024) /* bytes of a JSON request body */
#define API_HEADERS_MAX  8             /* reply headers a handler may add */
#define API_NAME_MAX     129           /* a {name} path segment, with NUL */
#define API_POOL_WAIT_MS 5000          /* wait for a database connection */
#define API_LOG_PATH_MAX 200           /* bytes of a path in the access log */
#define API_RESERVE_CONNS                                 \
    16                 /* connections past the limit kept \
                          for /healthz and /readyz */
#define API_URL_MAX 96 /* bytes of a job's URL, with NUL */
#define API_STREAM_MIN_RATE                       \
    (16 * 1024) /* bytes a second a streamed body \
                   (an upload) must keep up */

typedef struct api_tokens    api_tokens;
typedef struct api_req       api_req;
typedef struct api_guard     api_guard;
typedef struct api_conn      api_conn;
typedef struct api_metrics   api_metrics;
typedef struct api_callbacks api_callbacks;
typedef struct api_jobcache  api_jobcache;

/* The server: what api_start made. */
struct api {
    const config      *cfg;      /* borrowed from the caller */
    db_pool           *pool;     /* borrowed from the caller */
    api_tokens        *tokens;   /* bearer tokens, NULL: no authentication */
    struct MHD_Daemon *mhd;      /* the daemon, NULL until started */
    api_guard         *guard;    /* deadlines of arriving requests */
    atomic_int         stopping; /* set by api_stop: long polls end early */
    atomic_int         polling;  /* long polls and event streams in
                                    flight */
    jobwatch *watch;             /* wakes long polls and event streams
                                    when a job changes (may be NULL) */
    api_metrics   *metrics;      /* this process's HTTP figures */
    api_callbacks *callbacks;    /* the callback delivery thread */
    api_jobcache  *jobcache;     /* replies of ended jobs (jobcache.c) */
};

/* A handler: fills the reply of 'r' and returns its HTTP status. */
typedef int (*api_handler)(api_req *r);

/* Route flags. */
enum {
    API_BODY = 1,   /* the request has a JSON body, read up to API_BODY_MAX */
    API_HEALTH = 2, /* served also to connections in the reserve */
    API_STREAM = 4  /* the request has a raw body of any size, passed in
                       pieces to the sink the route's 'begin' set up; the
                       guard's arrival deadline becomes a minimum rate */
};

/* One line of the route table. */
typedef struct api_route {
    const char *method;  /* "GET", "POST", "DELETE"; GET also serves HEAD */
    const char *pattern; /* "/v1/jobs/{id}/result": literal segments, {id}
                            a UUID, {name} any non-empty segment */
    api_handler handler; /* NULL: the feature comes later (501) */
    int         flags;   /* API_BODY, API_HEALTH, API_STREAM or 0 */
    const char *feature; /* handler NULL: what is missing, for the 501 */
} api_route;

/* One reply header. */
typedef struct api_header {
    const char *name;  /* borrowed, a string literal */
    char       *value; /* owned */
} api_header;

/* The state of one request. */
struct api_req {
    api                   *a;       /* the server */
    struct MHD_Connection *conn;    /* the connection (MHD's) */
    api_conn              *guarded; /* the guard's record of it */
    const char            *method;  /* MHD's, valid for the request */
    const char            *url;     /* the path, unescaped, MHD's */
    const api_route       *route;   /* the matched route, or NULL */
    char                   id[37];  /* {id} of the path, lower case */
    char                   name[API_NAME_MAX]; /* {name} of the path */
    const char            *tenant;             /* borrowed from the tokens, or
                                                  "default" */
    int64_t started_ms; /* now_ms() at the first callback */

    strbuf body;      /* the request body (API_BODY) */
    int    too_large; /* the body passed API_BODY_MAX; the
                         rest is read and dropped */
    int early_status; /* a status decided from the
                         headers alone, or 0 */
    int queued;       /* a reply has been queued */

    /* API_STREAM: the sink of the body, set up by the route's 'begin'. */
    void *stream; /* the handler's state, or NULL */
    /* Take 'n' bytes of the body; 0, or the status of a reply to send
     * once the body has been read (the rest is dropped). */
    int (*stream_piece)(api_req *r, const char *data, size_t n);
    /* Release r->stream, undoing what an unfinished upload left (called
     * in the completion callback when r->stream is not NULL). */
    void (*stream_free)(api_req *r);
    int stream_status; /* stream_piece's refusal, or 0 */
    int status;        /* the status queued, for the log */

    json_t              *reply_json;     /* the reply body (owned), or NULL */
    struct MHD_Response *reply;          /* a ready response (owned), used
                                            instead of reply_json */
    api_header headers[API_HEADERS_MAX]; /* reply headers */
    size_t     n_headers;
};

/* ---- routes.c ---------------------------------------------------------- */

/*
 * Find the route of 'method' and 'path' (one trailing slash is ignored) and
 * store the {id} and {name} it captured in 'r'. Returns the route; or NULL
 * with 'allow' holding the methods the path accepts, in table order
 * ("POST, GET, HEAD"), which is "" when no route has that path.
 */
const api_route *api_route_find(api_req *r, const char *method,
                                const char *path, char allow[80]);

/*
 * The 'begin' of an API_STREAM route: called once the headers are in, to
 * set up the sink of the body (api_req.stream*); it returns 0 to read the
 * body, or a status to answer at once (without reading it). NULL for
 * other routes.
 */
api_handler api_route_begin(const api_route *route);

/* The number of routes of the table, the route at index 'i', and the index
 * of route 'rt' (a pointer api_route_find returned). */
size_t           api_route_count(void);
const api_route *api_route_at(size_t i);
size_t           api_route_index(const api_route *rt);

/* ---- callback.c ---------------------------------------------------------- */

/* Check the callback URL of 'spec', if any: http(s), resolving to public
 * addresses only (unless SHEAF_CALLBACK_ALLOW_PRIVATE=1). Returns 0, or
 * the status of the 400 reply. */
int api_callback_check(api_req *r, const json_t *spec);

/* Add "callback": {url, state, attempts, last_status, last_error,
 * delivered_at} to the job object 'job' when its spec has a callback. */
void api_callback_annotate(api_req *r, json_t *job);

/* Start and stop the delivery thread (after the workers were forked). */
api_callbacks *api_callbacks_start(api *a);
void           api_callbacks_stop(api_callbacks *cs);

/* ---- jobcache.c: replies of GET /v1/jobs/{id} for ended jobs --------- */

/* A new, empty cache (free with api_jobcache_free; NULL is ignored). */
api_jobcache *api_jobcache_new(void);
void          api_jobcache_free(api_jobcache *c);

/* Keep the reply 'body' ('len' bytes, copied) of ended job 'id' of
 * 'tenant' for a short while. The caller checked the job has ended and
 * has no callback. */
void api_jobcache_put(api_jobcache *c, const char *tenant, const char *id,
                      const char *body, size_t len);

/* A new copy of the cached reply of job 'id' (*len bytes, the caller
 * frees it), or NULL when there is none, it expired, or it is another
 * tenant's. */
char *api_jobcache_get(api_jobcache *c, const char *tenant, const char *id,
                       size_t *len);

/* Forget job 'id' (it was deleted). */
void api_jobcache_forget(api_jobcache *c, const char *id);

/* ---- metrics.c ----------------------------------------------------------- */

/* The HTTP figures of this process (free with api_metrics_free). */
api_metrics *api_metrics_new(void);
void         api_metrics_free(api_metrics *m);
/* Count a reply of 'status' to a request of route 'rt' (NULL: none
 * matched) that took 'ms' milliseconds. */
void api_metrics_record(api_metrics *m, const api_route *rt, int status,
                        int64_t ms);
/* GET /metrics. */
int api_metrics_get(api_req *r);

/* ---- http.c: replies and request helpers --------------------------------- */

/*
 * Make 'body' (ownership taken; NULL gives an empty body) the JSON reply
 * of 'r'. Returns 'status', so a handler can 'return api_reply(r, 200, j)'.
 */
int api_reply(api_req *r, int status, json_t *body);

/*
 * Make the error {"error": {"code", "message", "path"}} the reply of 'r'
 * (invalid UTF-8 in the message or path is replaced). A 503 also gets
 * Retry-After: 1. 'path' may be NULL for "". Returns 'status'.
 */
int api_error(api_req *r, int status, const char *code, const char *path,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Reply with the HTTP status and code for 'e': 400 invalid_spec (or
 * bad_request outside a spec), bad_data, 404 not_found (400 invalid_spec
 * when 'in_spec': a missing file is a fault of the spec), 409 wrong_state
 * or conflict, 413 too_large, 503 unavailable, else 500 internal.
 * Returns the status.
 */
int api_error_sh(api_req *r, const sh_err *e, int in_spec);

/*
 * Take a pooled database connection, waiting up to 'wait_ms' (usually
 * API_POOL_WAIT_MS). Returns it, or NULL with SH_EDB in 'err' (a 503).
 * Give it back with api_db_put.
 */
db *api_db_get(api *a, int wait_ms, sh_err *err);

/*
 * Give back 'd' (NULL is ignored) after the calls made on it ended with
 * 'rc': SH_EDB closes it (db_pool_put's 'broken'). Returns 'rc', so that
 *     rc = api_db_put(a, d, db_job_get(d, ..., &err));
 * makes the call and gives the connection back in one statement.
 */
int api_db_put(api *a, db *d, int rc);

/* Append the JSON text of 'j' (json_dump 'flags') to 'sb'. Returns 0, or
 * -1 when 'j' cannot be encoded. */
int api_json_dump(const json_t *j, size_t flags, strbuf *sb);

/* Add or replace the reply header 'name' (a string literal); 'value' is
 * copied. */
void api_header_set(api_req *r, const char *name, const char *value);

/* The request header 'name', or NULL. Valid for the request. */
const char *api_header_get(api_req *r, const char *name);

/* The query parameter 'key', unescaped, or NULL. Valid for the request. */
const char *api_query(api_req *r, const char *key);

/* Copy at most 'out_size' - 1 bytes of 's' into 'out' with control bytes
 * replaced by '?', so that a request cannot forge log records. */
void api_log_copy(char *out, size_t out_size, const char *s);

/* Non-zero when 's' is valid UTF-8. */
int api_utf8_valid(const char *s);

/*
 * Non-zero when the client has closed its side of the connection. Waits up
 * to 'wait_ms' for that to happen, so it doubles as a polling sleep.
 */
int api_client_gone(api_req *r, int wait_ms);

/* ---- guard.c: deadlines for arriving requests --------------------------- */

/*
 * Start the watchdog. Connections opened while 'soft_limit' are open go to
 * the reserve. A connection's first request must arrive (head and body)
 * within 'request_timeout_s', a later one within 'keepalive_s' of the
 * reply before it. Call before the daemon starts, after the workers were
 * forked (it starts a thread). Returns NULL with 'err' set on failure.
 */
api_guard *api_guard_new(unsigned soft_limit, int request_timeout_s,
                         int keepalive_s, sh_err *err);

/* Stop the watchdog and free the guard (after the daemon stopped). */
void api_guard_free(api_guard *g);

/* A connection on socket 'fd' was accepted: its record (owned by the
 * guard until api_guard_close). */
api_conn *api_guard_open(api_guard *g, int fd);

/* The connection closed: forget and free its record ('c' may be NULL). */
void api_guard_close(api_guard *g, api_conn *c);

/* The current request of 'c' has fully arrived: no deadline until the
 * reply is sent. */
void api_guard_arrived(api_guard *g, api_conn *c);

/* The reply of 'c' was sent: the next request has the keep-alive
 * deadline. */
void api_guard_replied(api_guard *g, api_conn *c);

/*
 * The current request of 'c' streams a large body (API_STREAM): instead
 * of one deadline for the whole request, the body must keep arriving at
 * 'min_bytes_per_s' or more, measured over windows of the request
 * deadline; api_guard_progress counts what arrived.
 */
void api_guard_streaming(api_guard *g, api_conn *c, int64_t min_bytes_per_s);

/* 'n' more bytes of a streamed body arrived on 'c'. */
void api_guard_progress(api_guard *g, api_conn *c, size_t n);

/* Non-zero when 'c' was accepted past the soft limit. */
int api_guard_in_reserve(const api_conn *c);

/* Note the request line's 'uri' (as received) on 'c': its path for the
 * access log and whether it holds a control character. */
void api_guard_request_line(api_conn *c, const char *uri);

/* Non-zero when the path of the current request of 'c' holds a control
 * character (raw or escaped). */
int api_guard_bad_path(const api_conn *c);

/* The path of the current request of 'c' as received (control bytes as
 * '?', at most API_LOG_PATH_MAX bytes), or NULL when unknown. */
const char *api_guard_raw_path(const api_conn *c);
/* ---- result.c ------------------------------------------------------------ */

/* What a Range header asks of a result. */
enum {
    API_RANGE_NONE = 0,   /* absent, invalid or several ranges: send all */
    API_RANGE_OK,         /* one satisfiable range */
    API_RANGE_UNSATISFIED /* 416 */
};

/*
 * Parse the Range header 'h' for a result of 'size' bytes: one of
 * "bytes=a-b", "bytes=a-", "bytes=-n". Returns API_RANGE_OK with the first
 * and last byte in *first and *last, API_RANGE_UNSATISFIED, or
 * API_RANGE_NONE when the header is to be ignored (invalid, or several
 * ranges).
 */
int api_range_parse(const char *h, uint64_t size, uint64_t *first,
                    uint64_t *last);

/* Non-zero when the If-None-Match value 'h' lists 'etag' or is "*"
 * (weak comparison: a W/ prefix is ignored). */
int api_etag_listed(const char *h, const char *etag);

/*
 * For DELETE of job 'id', once its row is gone: non-zero when a download
 * of its result is in progress in this process; its files are then kept
 * and removed (spool_remove_job) when the last such download ends. Zero:
 * the caller removes them now.
 */
int api_result_hold_files(const char *id);

/* ---- auth.c -------------------------------------------------------------- */

/*
 * Read the 'token tenant' lines of 'path' (blank lines and lines starting
 * with # are skipped). Returns the table (free with api_tokens_free), or
 * NULL with SH_EINVAL / SH_EIO in 'err' naming the file and line.
 */
api_tokens *api_tokens_load(const char *path, sh_err *err);
void        api_tokens_free(api_tokens *t);

/*
 * The tenant of the bearer token in the Authorization header value
 * 'authorization' (may be NULL), or NULL when it names no known token.
 * Tokens are compared in constant time. The result is borrowed from 't'.
 */
const char *api_tokens_tenant(const api_tokens *t, const char *authorization);

/* SHA-256 of 'n' bytes at 'p' as 64 lower-case hex digits and a NUL. */
void api_sha256_hex(const void *p, size_t n, char hex[65]);

/* ---- job_json.c: what clients see of jobs ------------------------------ */

/* The path of job 'id' followed by 'suffix' ("" or "/result", say):
 * "/v1/jobs/ID/result". */
void api_job_url(char url[API_URL_MAX], const char *id, const char *suffix);

/* The job object of SPEC section 3 for 'j', new (the caller owns it): with
 * its spec (callback secret masked) when 'j' has one, as db_job_get reads
 * it; without, as a list item (db_job_list). */
json_t *api_job_json(const db_job *j);

/* {"jobs": [...], "next_cursor": "..."|null} for the 'n' jobs of a page
 * of db_job_list; 'more' as it set it. New. */
json_t *api_job_list_json(const db_job *jobs, size_t n, int more);

/* {"tasks": [...], "next_cursor": "STAGE.PART"|null} for the 'n' tasks of
 * a page of db_job_tasks ('more' as it set it): stage, partition, state,
 * attempts, byte range (stage 0; null later), counters, worker, error and
 * times. New. */
json_t *api_tasks_json(const db_task_row *tasks, size_t n, int more);

/* ---- datasets.c ---------------------------------------------------------- */

#define API_DS_REFS_MAX 16 /* datasets one job may read */

/* The datasets a spec named, as api_dataset_resolve found them. */
typedef struct api_ds_refs {
    api_req *r;                        /* the request (its tenant, pool) */
    char     ids[API_DS_REFS_MAX][37]; /* their ids, each once */
    size_t   n;
} api_ds_refs;

/*
 * plan_env.resolve_dataset of the API: the dataset 'ref' (id or name) of
 * the tenant of ((api_ds_refs *)ctx)->r, read with a pooled connection;
 * *file_out gets its file name under SPOOL/datasets and its id is added
 * to the refs. Returns 0, SH_ENOENT, or SH_EDB / SH_EINVAL with 'err'.
 */
int api_dataset_resolve(void *ctx, const char *ref, char **file_out,
                        sh_err *err);

/* ---- handlers ------------------------------------------------------------ */

int api_healthz(api_req *r); /* health.c */
int api_readyz(api_req *r);
int api_openapi(api_req *r); /* openapi.c: GET /openapi.yaml */

int api_job_submit(api_req *r); /* jobs.c */
int api_job_validate(api_req *r);
int api_job_list(api_req *r);
int api_job_get(api_req *r);
int api_job_tasks(api_req *r);
/* POST /v1/jobs/{id}/cancel: 202 with the cancelled job; 409 if ended. */
int api_job_cancel(api_req *r);
/* DELETE /v1/jobs/{id}: 204; the job's rows and files are removed; 409
 * while it is queued or running. */
int api_job_delete(api_req *r);

int api_job_result(api_req *r); /* result.c */
/* A succeeded job with Parquet output: set its "result.bytes" to the
 * length the result endpoint serves (the parts merged), not the parts'
 * total. Leaves 'job' as it is otherwise, or when the parts cannot be
 * read (result.c). */
void api_result_fix_bytes(api_req *r, json_t *job);
/* GET /v1/jobs/{id}/manifest: the result's parts with bytes, rows and
 * SHA-256 each (computed once, then cached in the tasks table). */
int api_job_manifest(api_req *r);

/* datasets.c: POST /v1/datasets?name=N (a streamed body: API_STREAM),
 * GET /v1/datasets, GET and DELETE /v1/datasets/{id}. */
int api_dataset_begin(api_req *r);
int api_dataset_upload(api_req *r);
int api_dataset_list(api_req *r);
int api_dataset_get(api_req *r);
int api_dataset_delete(api_req *r);

/* nodes.c: GET /v1/nodes, the sheafd processes sharing the database. */
int api_node_list(api_req *r);

/* events.c: GET /v1/jobs/{id}/events, the job's server-sent events. */
int api_job_events(api_req *r);

/* ui.c: GET / serves the dashboard page, GET /ui/{name} its files (404
 * for another name); no token needed. */
int api_ui_index(api_req *r);
int api_ui_asset(api_req *r);

/* artifacts.c: GET /v1/jobs/{id}/artifacts lists them, GET
 * /v1/jobs/{id}/artifacts/{name} serves one; 404 for an unknown job or
 * artifact, 409 until the job has succeeded. */
int api_job_artifacts(api_req *r);
int api_job_artifact(api_req *r);

/*
 * The names of the artifacts of job 'id' as a new JSON array, sorted, or
 * NULL when it has none. Reads the spool only: the caller has checked the
 * job is its tenant's.
 */
json_t *api_artifact_names(const config *cfg, const char *id);

/* ---- result_store.c: results in object storage (SHEAF_STORE) ----------- */

int api_result_store_find(const char *id, uint64_t size, char **etag);
int api_result_store_redirect(api_req *r, const char *id);
struct MHD_Response *api_result_store_stream(const char *id, const char *etag,
                                             uint64_t first, uint64_t last);
/* The same for any object 'key' of the store (artifacts.c). */
int                  api_store_redirect(api_req *r, const char *key);
struct MHD_Response *api_store_stream(const char *key, const char *etag,
                                      uint64_t first, uint64_t last);

#endif
