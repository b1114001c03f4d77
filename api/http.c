/*
 * http.c - the libmicrohttpd daemon of the API and the life of a request:
 * the api_req made in the first callback, authentication, routing, reading
 * the body, running the handler, queueing its reply, and freeing it all in
 * the completion callback. The helpers every handler uses to read the
 * request and make its reply are in reply.c.
 *
 * The daemon runs a thread per connection, so handlers may block (a long
 * poll sleeps on its own thread).
 */
#include "api_int.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../service/log.h"

#define HTTP_TIMEOUT_S                                 \
    330 /* idle time of a reply: long polls wait up to \
           300 s (arriving requests have the guard's   \
           much shorter deadlines) */
#define HTTP_STACK_BYTES (256 * 1024) /* a connection thread's stack */
/* libmicrohttpd's buffer of one connection (its default is 32 KiB): the
 * request line and the header fields must fit in it, or libmicrohttpd
 * answers 414 or 431 itself, with an HTML body. Raised so that requests a
 * good deal larger than the limits below still reach http_check_sizes,
 * which answers them in the JSON error shape. */
#define HTTP_POOL_BYTES  (96 * 1024)
#define HTTP_URI_MAX     8192  /* bytes of a request target: 414 past it */
#define HTTP_HEADERS_MAX 16384 /* bytes of the header fields: 431 past it */

/*
 * Queue the reply of 'r' with 'status': its ready response, else its JSON
 * body, else an empty body, with the headers the handler set. Returns what
 * the access handler must return.
 */
static enum MHD_Result
http_send(api_req *r, int status)
{
    struct MHD_Response *resp = r->reply;
    enum MHD_Result      ret;
    strbuf               sb = {0};
    size_t               i;

    r->reply = NULL;
    if (resp == NULL && r->reply_json != NULL) {
        if (api_json_dump(r->reply_json, JSON_COMPACT, &sb) != 0) {
            sb_free(&sb);
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            sb_puts(&sb, "{\"error\":{\"code\":\"internal\",\"message\":"
                         "\"cannot encode the reply\",\"path\":\"\"}}");
        }
        sb_putc(&sb, '\n');
        resp = MHD_create_response_from_buffer(sb.len, sb.data,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp == NULL) {
            sb_free(&sb);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json");
    } else if (resp == NULL) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
    }
    for (i = 0; i < r->n_headers; i++) {
        /* A JSON reply (an error, say) keeps its own Content-Type and
         * is not coded nor a download. */
        if (r->reply_json != NULL
            && (strcasecmp(r->headers[i].name, "Content-Type") == 0
                || strcasecmp(r->headers[i].name, "Content-Encoding") == 0
                || strcasecmp(r->headers[i].name, "Content-Disposition") == 0))
            continue;
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    }
    ret = MHD_queue_response(r->conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->queued = 1;
        r->status = status;
    }
    return ret;
}

/* ---- a request's life ---------------------------------------------------- */

/* Non-zero when 'path' is under /v1, where a token is needed. */
static int
http_needs_auth(const char *path)
{
    return strncmp(path, "/v1", 3) == 0 && (path[3] == '/' || path[3] == '\0');
}

/* Non-zero when the request announces a body. */
static int
http_has_body(api_req *r)
{
    const char *len_s = api_header_get(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (api_header_get(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
        return 1;
    return len_s != NULL && strspn(len_s, " 0") != strlen(len_s);
}

/* Count the request headers named 'cls' (a header name). */
static enum MHD_Result
http_count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                  const char *value)
{
    struct {
        const char *name;
        int         n;
    } *c = cls;

    (void)kind;
    (void)value;
    if (strcasecmp(key, c->name) == 0)
        c->n++;
    return MHD_YES;
}

/*
 * Refuse a request whose framing is ambiguous: two Content-Length headers
 * (a proxy and sheafd could disagree on where the body ends), or one with
 * Transfer-Encoding beside it. Returns 0 or the status of the reply.
 */
static int
http_check_framing(api_req *r)
{
    struct {
        const char *name;
        int         n;
    } cl = {MHD_HTTP_HEADER_CONTENT_LENGTH, 0};

    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, http_count_header, &cl);
    if (cl.n > 1)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "",
                         "the request has %d Content-Length headers; send "
                         "one",
                         cl.n);
    if (cl.n == 1
        && api_header_get(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "",
                         "the request has both Content-Length and "
                         "Transfer-Encoding; send one");
    return 0;
}

/* Non-zero when the Content-Type value 'ct' is application/json (any
 * parameters, such as a charset, allowed). */
static int
http_is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/*
 * A request that changes something (POST, PUT, PATCH, DELETE) must not
 * carry a body of another type than JSON: a web page can make a browser
 * send a form or text cross-origin without asking, but not JSON. So a
 * Content-Type other than application/json is 415, and so is a body with
 * no Content-Type on a route that reads one. Returns 0 or the status.
 */
static int
http_check_body_type(api_req *r)
{
    const char *ct = api_header_get(r, MHD_HTTP_HEADER_CONTENT_TYPE);

    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0
        || strcmp(r->method, "OPTIONS") == 0)
        return 0;
    if (ct != NULL ? http_is_json_type(ct)
                   : !(r->route->flags & API_BODY) || !http_has_body(r))
        return 0;
    return api_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                     "unsupported_media_type", "",
                     "send the body as JSON with 'Content-Type: "
                     "application/json'%s%s%s",
                     ct != NULL ? " (it was '" : "", ct != NULL ? ct : "",
                     ct != NULL ? "')" : "");
}

/* MHD_KeyValueIterator: add the bytes of one field (with ": " and CRLF,
 * or "=" and "&") to the size_t at 'cls'. */
static enum MHD_Result
http_count_field(void *cls, enum MHD_ValueKind kind, const char *key,
                 const char *value)
{
    size_t *n = cls;

    *n += strlen(key) + (value != NULL ? strlen(value) : 0)
          + (kind == MHD_HEADER_KIND ? 4 : 2);
    return MHD_YES;
}

/* A request target longer than HTTP_URI_MAX is a 414, header fields past
 * HTTP_HEADERS_MAX a 431, in the JSON error shape. Returns 0 or that
 * status. (The target is counted decoded: path and query arguments.) */
static int
http_check_sizes(api_req *r)
{
    size_t uri = strlen(r->url), headers = 0;

    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, http_count_field,
                              &uri);
    if (uri > HTTP_URI_MAX) {
        api_header_set(r, MHD_HTTP_HEADER_CONNECTION, "close");
        return api_error(r, MHD_HTTP_URI_TOO_LONG, "too_large", "",
                         "the request target is longer than %d bytes",
                         HTTP_URI_MAX);
    }
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, http_count_field,
                              &headers);
    if (headers > HTTP_HEADERS_MAX) {
        api_header_set(r, MHD_HTTP_HEADER_CONNECTION, "close");
        return api_error(r, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                         "too_large", "",
                         "the header fields are larger than %d bytes",
                         HTTP_HEADERS_MAX);
    }
    return 0;
}

/*
 * What the first callback decides from the headers alone: the tenant, the
 * route, a body announced too large. Returns 0 to go on reading the
 * request, or the status of a reply to send now.
 */
static int
http_begin(api_req *r)
{
    const char        *len_s;
    char               allow[80];
    char              *end;
    unsigned long long len;
    int                status;

    r->tenant = "default";
    if ((status = http_check_sizes(r)) != 0)
        return status;
    if (api_guard_bad_path(r->guarded))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "",
                         "the path holds a control character (such as "
                         "%%00); it was: %s",
                         api_guard_raw_path(r->guarded));
    if ((status = http_check_framing(r)) != 0)
        return status;
    if (r->a->tokens != NULL && http_needs_auth(r->url)) {
        r->tenant = api_tokens_tenant(r->a->tokens,
                                      api_header_get(r, "Authorization"));
        if (r->tenant == NULL) {
            api_header_set(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                           "Bearer realm=\"sheaf\"");
            return api_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized", "",
                             "a valid 'Authorization: Bearer TOKEN' header "
                             "is required");
        }
    }
    r->route = api_route_find(r, r->method, r->url, allow);
    if (r->route == NULL) {
        if (allow[0] == '\0')
            return api_error(r, MHD_HTTP_NOT_FOUND, "not_found", "",
                             "no such resource: %s", r->url);
        api_header_set(r, MHD_HTTP_HEADER_ALLOW, allow);
        if (strcmp(r->method, "OPTIONS") == 0)
            return MHD_HTTP_NO_CONTENT;
        return api_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                         "", "%s is not allowed on %s; allowed: %s", r->method,
                         r->url, allow);
    }
    if (api_guard_in_reserve(r->guarded) && !(r->route->flags & API_HEALTH)) {
        api_header_set(r, MHD_HTTP_HEADER_CONNECTION, "close");
        return api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                         "the server is at its connection limit (%d); only "
                         "/healthz and /readyz are served to connections "
                         "past it",
                         r->a->cfg->max_connections);
    }
    if (r->route->flags & API_STREAM) {
        api_handler begin = api_route_begin(r->route);

        if (r->route->handler == NULL || begin == NULL)
            return 0; /* answered 501 once the request is in */
        if ((status = begin(r)) != 0)
            return status;
        api_guard_streaming(r->a->guard, r->guarded, API_STREAM_MIN_RATE);
        return 0;
    }
    if ((status = http_check_body_type(r)) != 0)
        return status;
    if (r->route->flags & API_BODY) {
        len_s = api_header_get(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (len_s != NULL) {
            errno = 0;
            len = strtoull(len_s, &end, 10);
            if (errno == 0 && end != len_s && len > API_BODY_MAX)
                r->too_large = 1;
        }
    }
    if (r->too_large)
        return api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "",
                         "the request body is larger than %d bytes",
                         API_BODY_MAX);
    return 0;
}

/* Take 'n' bytes of the body: keep them if the route reads a body and
 * the limit allows, else drop them. */
static void
http_take_body(api_req *r, const char *data, size_t n)
{
    if (r->route != NULL && (r->route->flags & API_STREAM)) {
        api_guard_progress(r->a->guard, r->guarded, n);
        if (r->stream_piece != NULL && r->stream_status == 0)
            r->stream_status = r->stream_piece(r, data, n);
        return;
    }
    if (r->route == NULL || !(r->route->flags & API_BODY) || r->too_large)
        return;
    if (n > API_BODY_MAX - r->body.len) {
        r->too_large = 1;
        sb_free(&r->body);
        return;
    }
    sb_append(&r->body, data, n);
}

/* The access handler: called for the headers, for each piece of the body,
 * and once more when the request is complete. */
static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url,
            const char *method, const char *version, const char *upload_data,
            size_t *upload_data_size, void **con_cls)
{
    api     *a = cls;
    api_req *r = *con_cls;
    int      status;

    (void)version;
    if (r == NULL) {
        const union MHD_ConnectionInfo *ci;

        r = xcalloc(1, sizeof *r);
        r->a = a;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started_ms = now_ms();
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->guarded = ci != NULL ? ci->socket_context : NULL;
        *con_cls = r;
        r->early_status = http_begin(r);
        /* A request with a body is answered at once (libmicrohttpd then
         * closes the connection instead of reading the body); one without
         * is answered on the last call, keeping the connection alive. */
        if (r->early_status != 0 && http_has_body(r))
            return http_send(r, r->early_status);
        return MHD_YES;
    }
    if (r->queued) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        http_take_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The whole request has arrived: from here on the connection may
     * stay open as long as its reply needs. */
    api_guard_arrived(a->guard, r->guarded);
    if (r->early_status != 0)
        status = r->early_status;
    else if (r->stream_status != 0)
        status = r->stream_status;
    else if (r->too_large)
        status = api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "",
                           "the request body is larger than %d bytes",
                           API_BODY_MAX);
    else if (r->route->handler == NULL)
        status = api_error(r, MHD_HTTP_NOT_IMPLEMENTED, "not_implemented", "",
                           "not implemented yet: %s", r->route->feature);
    else
        status = r->route->handler(r);
    return http_send(r, status);
}

/* The completion callback: log the request and free its state. */
static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
               enum MHD_RequestTerminationCode toe)
{
    api        *a = cls;
    api_req    *r = *con_cls;
    char        path[API_LOG_PATH_MAX + 1], method[16];
    const char *raw;
    size_t      i;

    (void)conn;
    if (r == NULL)
        return;
    api_guard_replied(a->guard, r->guarded);
    /* The path as the client sent it, escapes and all. */
    raw = api_guard_raw_path(r->guarded);
    api_log_copy(path, sizeof path, raw != NULL ? raw : r->url);
    api_log_copy(method, sizeof method, r->method);
    api_metrics_record(a->metrics, r->route, r->status,
                       now_ms() - r->started_ms);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_info("%s %s %d %lldms", method, path, r->status,
                 (long long)(now_ms() - r->started_ms));
    else
        log_info("%s %s %d %lldms, connection ended early (%d)", method, path,
                 r->status, (long long)(now_ms() - r->started_ms), (int)toe);
    if (r->stream != NULL && r->stream_free != NULL)
        r->stream_free(r);
    json_decref(r->reply_json);
    if (r->reply != NULL)
        MHD_destroy_response(r->reply);
    for (i = 0; i < r->n_headers; i++)
        free(r->headers[i].value);
    sb_free(&r->body);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's error log, to ours, at most HTTP_LOG_BURST records of
 * one kind (its format) every HTTP_LOG_WINDOW_MS: a flood of refused
 * connections must not flood the log. How many were dropped is said with
 * the first record of the next window. */
#define HTTP_LOG_KINDS     16
#define HTTP_LOG_BURST     5
#define HTTP_LOG_WINDOW_MS 10000

static struct {
    const char *fmt;       /* the kind; NULL: a free slot */
    int64_t     window_ms; /* start of its window */
    unsigned    n;         /* records in the window */
} http_log_kinds[HTTP_LOG_KINDS];
static pthread_mutex_t http_log_mu = PTHREAD_MUTEX_INITIALIZER;

/* Whether a record of kind 'fmt' may be written now; *dropped gets how
 * many of its kind the last window dropped. */
static int
http_log_allow(const char *fmt, unsigned *dropped)
{
    int64_t now = now_ms();
    size_t  i, pick = 0;
    int     ok;

    pthread_mutex_lock(&http_log_mu);
    for (i = 0; i < HTTP_LOG_KINDS; i++) {
        if (http_log_kinds[i].fmt == fmt)
            break;
        if (http_log_kinds[i].window_ms < http_log_kinds[pick].window_ms)
            pick = i;
    }
    if (i == HTTP_LOG_KINDS) {
        i = pick;
        http_log_kinds[i].fmt = fmt;
        http_log_kinds[i].window_ms = now;
        http_log_kinds[i].n = 0;
    }
    *dropped = 0;
    if (now - http_log_kinds[i].window_ms >= HTTP_LOG_WINDOW_MS) {
        if (http_log_kinds[i].n > HTTP_LOG_BURST)
            *dropped = http_log_kinds[i].n - HTTP_LOG_BURST;
        http_log_kinds[i].window_ms = now;
        http_log_kinds[i].n = 0;
    }
    ok = ++http_log_kinds[i].n <= HTTP_LOG_BURST;
    pthread_mutex_unlock(&http_log_mu);
    return ok;
}

static void
http_log(void *cls, const char *fmt, va_list ap)
{
    char     line[1024];
    size_t   n;
    unsigned dropped;

    (void)cls;
    if (!http_log_allow(fmt, &dropped))
        return;
    if (dropped > 0)
        log_warn("http: (%u more like the next were not logged)", dropped);
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("http: %s", line);
}

/* A connection opened or closed: the guard's record of it. */
static void
http_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
            enum MHD_ConnectionNotificationCode toe)
{
    api                            *a = cls;
    const union MHD_ConnectionInfo *ci;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci != NULL ? api_guard_open(a->guard, ci->connect_fd)
                                     : NULL;
    } else {
        api_guard_close(a->guard, *socket_context);
        *socket_context = NULL;
    }
}

/* The request line has arrived: note its path as received (before
 * libmicrohttpd unescapes it). Returns NULL: the access handler makes the
 * request's state. */
static void *
http_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;

    (void)cls;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci != NULL)
        api_guard_request_line(ci->socket_context, uri);
    return NULL;
}

/* ---- the daemon ---------------------------------------------------------- */

/*
 * Resolve 'host' ("127.0.0.1", "::1", "[::1]", a name; "" or "*" for every
 * address) and 'port' into the first address getaddrinfo gives. Returns 0
 * and *res (freeaddrinfo), or SH_EINVAL.
 */
static int
http_resolve(const char *host, int port, struct addrinfo **res, sh_err *err)
{
    struct addrinfo hints;
    char            name[256], port_s[16];
    size_t          len = strlen(host);
    int             rc;

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
        snprintf(name, sizeof name, "%.*s", (int)(len - 2), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);
    snprintf(port_s, sizeof port_s, "%d", port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (name[0] == '\0' || strcmp(name, "*") == 0) {
        hints.ai_family = AF_INET;
        rc = getaddrinfo(NULL, port_s, &hints, res);
    } else {
        rc = getaddrinfo(name, port_s, &hints, res);
    }
    if (rc != 0)
        return sh_err_set(err, SH_EINVAL, NULL,
                          "SHEAF_LISTEN: cannot resolve '%s': %s", host,
                          gai_strerror(rc));
    return 0;
}

int
api_listen(const config *cfg, sh_err *err)
{
    struct addrinfo *ai = NULL;
    int              fd = -1, one = 1, rc;

    if ((rc = http_resolve(cfg->listen_host, cfg->listen_port, &ai, err)) != 0)
        return rc;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
        || listen(fd, SOMAXCONN) != 0) {
        rc = sh_err_set(err, SH_EIO, NULL, "cannot listen on %s:%d: %s",
                        cfg->listen_host, cfg->listen_port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = rc;
    }
    freeaddrinfo(ai);
    return fd;
}

api *
api_start(const config *cfg, db_pool *pool, sh_err *err)
{
    return api_start_on(cfg, pool, -1, err);
}

api *
api_start_on(const config *cfg, db_pool *pool, int listen_fd, sh_err *err)
{
    api                  *a = xcalloc(1, sizeof *a);
    struct addrinfo      *ai = NULL;
    struct MHD_OptionItem where[2] = {{MHD_OPTION_END, 0, NULL},
                                      {MHD_OPTION_END, 0, NULL}};
    unsigned int          flags;
    int                   saved;

    a->cfg = cfg;
    a->pool = pool;
    atomic_init(&a->stopping, 0);
    atomic_init(&a->polling, 0);
    if (cfg->tokens_file != NULL) {
        a->tokens = api_tokens_load(cfg->tokens_file, err);
        if (a->tokens == NULL)
            goto fail;
    }
    if (http_resolve(cfg->listen_host, cfg->listen_port, &ai, err) != 0)
        goto fail;
    /* A socket bound already (api_listen), or the resolved address. */
    if (listen_fd >= 0)
        where[0] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                           NULL};
    else
        where[0] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0,
                                           ai->ai_addr};
    a->metrics = api_metrics_new();
    a->jobcache = api_jobcache_new();
    /* The listener thread that wakes long polls and event streams. */
    a->watch = config_listen_url(cfg) != NULL
                   ? jobwatch_start(config_listen_url(cfg))
                   : NULL; /* SHEAF_DB_LISTEN_URL=off: waiters poll */
    a->guard = api_guard_new((unsigned)cfg->max_connections,
                             cfg->request_timeout_s, cfg->keepalive_s, err);
    if (a->guard == NULL)
        goto fail;
    /* poll(), not select(): a busy daemon can hold descriptors past
     * FD_SETSIZE (workers, database connections, result files). */
    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
            | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    a->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->listen_port, NULL, NULL, http_access, a,
        MHD_OPTION_EXTERNAL_LOGGER, http_log, a, /* first, to log the rest */
        MHD_OPTION_ARRAY, where, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)(cfg->max_connections + API_RESERVE_CONNS),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTP_STACK_BYTES,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_POOL_BYTES,
        MHD_OPTION_NOTIFY_CONNECTION, http_notify, a,
        MHD_OPTION_URI_LOG_CALLBACK, http_request_line, a,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, a, MHD_OPTION_END);
    saved = errno;
    if (a->mhd == NULL) {
        sh_err_set(err, SH_EIO, NULL, "cannot listen on %s:%d: %s",
                   cfg->listen_host, cfg->listen_port,
                   saved != 0 ? strerror(saved) : "libmicrohttpd failed");
        goto fail;
    }
    freeaddrinfo(ai);
    a->callbacks = api_callbacks_start(a);
    return a;

fail:
    if (ai != NULL)
        freeaddrinfo(ai);
    if (listen_fd >= 0 && a->mhd == NULL)
        close(listen_fd);
    jobwatch_stop(a->watch);
    api_metrics_free(a->metrics);
    api_jobcache_free(a->jobcache);
    api_guard_free(a->guard);
    api_tokens_free(a->tokens);
    free(a);
    return NULL;
}

void
api_stop(api *a)
{
    int i;

    if (a == NULL)
        return;
    atomic_store(&a->stopping, 1);
    jobwatch_wake_all(a->watch);
    /* Long polls notice 'stopping' within JOBS_POLL_MS: give them a moment
     * to answer with the job as it is, rather than cutting them off. */
    for (i = 0; i < 20 && atomic_load(&a->polling) > 0; i++)
        poll(NULL, 0, 50);
    if (i > 0)
        poll(NULL, 0, 50);
    api_callbacks_stop(a->callbacks);
    if (a->mhd != NULL)
        MHD_stop_daemon(a->mhd);
    jobwatch_stop(a->watch);
    api_metrics_free(a->metrics);
    api_jobcache_free(a->jobcache);
    api_guard_free(a->guard);
    api_tokens_free(a->tokens);
    free(a);
}
