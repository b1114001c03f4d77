/*
 * http.c - the libmicrohttpd daemon of the API and the life of a request:
 * the api_req made in the first callback, authentication, routing, reading
 * the body, running the handler, queueing its reply, and freeing it all in
 * the completion callback. Also the reply helpers every handler uses.
 *
 * The daemon runs a thread per connection, so handlers may block (a long
 * poll sleeps on its own thread).
 */
#include "api_int.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../service/log.h"

#define HTTP_CONNECTION_LIMIT 256
#define HTTP_TIMEOUT_S        330  /* long polls wait up to 300 s */
#define HTTP_LOG_PATH_MAX     200  /* bytes of a path in the access log */

/* ---- replies ------------------------------------------------------------- */

/* The length of the UTF-8 sequence at 's', or 0 if it is not valid. */
static size_t
utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t        n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    /* The second byte's range rules out overlong forms, surrogates and
     * code points past U+10FFFF. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

int
api_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               n;

    while (*p != '\0') {
        if ((n = utf8_seq_len(p)) == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* Replace each byte of 's' that is not part of valid UTF-8 with '?'. */
static void
http_utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t         n;

    while (*p != '\0') {
        if ((n = utf8_seq_len(p)) == 0)
            *p++ = '?';
        else
            p += n;
    }
}

int
api_reply(api_req *r, int status, json_t *body)
{
    json_decref(r->reply_json);
    r->reply_json = body;
    if (r->reply != NULL) {
        MHD_destroy_response(r->reply);
        r->reply = NULL;
    }
    return status;
}

int
api_error(api_req *r, int status, const char *code, const char *path,
          const char *fmt, ...)
{
    char    msg[SH_ERR_MSG_MAX], where[SH_ERR_PATH_MAX];
    size_t  n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(where, sizeof where, "%s", path != NULL ? path : "");
    /* libpq ends its messages with a newline. */
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '
                     || msg[n - 1] == '\t'))
        msg[--n] = '\0';
    http_utf8_clean(msg);
    http_utf8_clean(where);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        api_header_set(r, "Retry-After", "1");
    return api_reply(r, status,
                     json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code,
                               "message", msg, "path", where));
}

int
api_error_sh(api_req *r, const sh_err *e, int in_spec)
{
    const char *code;
    const char *msg = e->msg[0] != '\0' ? e->msg : sh_err_name(e->code);
    int         status;

    switch (e->code) {
    case SH_EINVAL:
    case SH_ERANGE:
        status = MHD_HTTP_BAD_REQUEST;
        code = in_spec ? "invalid_spec" : "bad_request";
        break;
    case SH_ENOENT:
        status = in_spec ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_NOT_FOUND;
        code = in_spec ? "invalid_spec" : "not_found";
        break;
    case SH_EDATA:
        status = MHD_HTTP_BAD_REQUEST;
        code = "bad_data";
        break;
    case SH_ESTATE:
        status = MHD_HTTP_CONFLICT;
        code = "wrong_state";
        break;
    case SH_ECONFLICT:
        status = MHD_HTTP_CONFLICT;
        code = "conflict";
        break;
    case SH_ETOOBIG:
        status = MHD_HTTP_CONTENT_TOO_LARGE;
        code = "too_large";
        break;
    case SH_EDB:
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        code = "unavailable";
        break;
    default:
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        code = "internal";
        log_error("%s %s: %s (%s)", r->method, r->url, msg,
                  sh_err_name(e->code));
        break;
    }
    return api_error(r, status, code, e->path, "%s", msg);
}

void
api_header_set(api_req *r, const char *name, const char *value)
{
    size_t i;

    for (i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0) {
            free(r->headers[i].value);
            r->headers[i].value = xstrdup(value);
            return;
        }
    }
    if (r->n_headers == API_HEADERS_MAX) {
        log_error("api: reply header %s dropped: no room", name);
        return;
    }
    r->headers[r->n_headers].name = name;
    r->headers[r->n_headers].value = xstrdup(value);
    r->n_headers++;
}

const char *
api_header_get(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
api_query(api_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int
api_client_gone(api_req *r, int wait_ms)
{
    const union MHD_ConnectionInfo *ci;
    struct pollfd                   pfd;

    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL) {
        poll(NULL, 0, wait_ms);
        return 0;
    }
    /* Only a hang-up wakes us: a pipelined request (POLLIN) must not turn
     * the wait into a busy loop. */
    pfd.fd = ci->connect_fd;
    pfd.events = POLLRDHUP;
    pfd.revents = 0;
    if (poll(&pfd, 1, wait_ms) <= 0)
        return 0;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* json_dump_callback sink: append to a strbuf. */
static int
http_dump_cb(const char *buf, size_t size, void *data)
{
    sb_append(data, buf, size);
    return 0;
}

int
api_json_dump(const json_t *j, size_t flags, strbuf *sb)
{
    return json_dump_callback(j, http_dump_cb, sb, flags) == 0 ? 0 : -1;
}

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
        resp = MHD_create_response_from_buffer(0, NULL,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
    }
    for (i = 0; i < r->n_headers; i++) {
        /* A JSON reply (an error, say) keeps its own Content-Type. */
        if (r->reply_json != NULL
            && strcasecmp(r->headers[i].name, "Content-Type") == 0)
            continue;
        MHD_add_response_header(resp, r->headers[i].name,
                                r->headers[i].value);
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

/*
 * What the first callback decides from the headers alone: the tenant, the
 * route, a body announced too large. Returns 0 to go on reading the
 * request, or the status of a reply to send now.
 */
static int
http_begin(api_req *r)
{
    const char *len_s;
    char        allow[80];
    char       *end;
    unsigned long long len;

    r->tenant = "default";
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
        return api_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "method_not_allowed", "",
                         "%s is not allowed on %s; allowed: %s", r->method,
                         r->url, allow);
    }
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

/* Non-zero when the request announces a body. */
static int
http_has_body(api_req *r)
{
    const char *len_s = api_header_get(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (api_header_get(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
        return 1;
    return len_s != NULL && strspn(len_s, " 0") != strlen(len_s);
}

/* Take 'n' bytes of the body: keep them if the route reads a body and
 * the limit allows, else drop them. */
static void
http_take_body(api_req *r, const char *data, size_t n)
{
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
        r = xcalloc(1, sizeof *r);
        r->a = a;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started_ms = now_ms();
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
    if (r->early_status != 0)
        status = r->early_status;
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

/* Copy at most HTTP_LOG_PATH_MAX bytes of 'path' with control bytes
 * replaced, so that a request cannot forge log records. */
static void
http_log_path(char *out, size_t out_size, const char *path)
{
    size_t i;

    for (i = 0; path[i] != '\0' && i + 1 < out_size; i++) {
        unsigned char c = (unsigned char)path[i];

        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
}

/* The completion callback: log the request and free its state. */
static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
               enum MHD_RequestTerminationCode toe)
{
    api_req *r = *con_cls;
    char     path[HTTP_LOG_PATH_MAX + 1], method[16];
    size_t   i;

    (void)cls;
    (void)conn;
    if (r == NULL)
        return;
    http_log_path(path, sizeof path, r->url);
    http_log_path(method, sizeof method, r->method);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_info("%s %s %d %lldms", method, path, r->status,
                 (long long)(now_ms() - r->started_ms));
    else
        log_info("%s %s %d %lldms, connection ended early (%d)", method,
                 path, r->status, (long long)(now_ms() - r->started_ms),
                 (int)toe);
    json_decref(r->reply_json);
    if (r->reply != NULL)
        MHD_destroy_response(r->reply);
    for (i = 0; i < r->n_headers; i++)
        free(r->headers[i].value);
    sb_free(&r->body);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's error log, to ours. */
static void
http_log(void *cls, const char *fmt, va_list ap)
{
    char   line[1024];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("http: %s", line);
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

api *
api_start(const config *cfg, db_pool *pool, sh_err *err)
{
    api             *a = xcalloc(1, sizeof *a);
    struct addrinfo *ai = NULL;
    unsigned int     flags;
    int              saved;

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
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, a,
        MHD_OPTION_END);
    saved = errno;
    if (a->mhd == NULL) {
        sh_err_set(err, SH_EIO, NULL, "cannot listen on %s:%d: %s",
                   cfg->listen_host, cfg->listen_port,
                   saved != 0 ? strerror(saved) : "libmicrohttpd failed");
        goto fail;
    }
    freeaddrinfo(ai);
    return a;

fail:
    if (ai != NULL)
        freeaddrinfo(ai);
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
    /* Long polls notice 'stopping' within JOBS_POLL_MS: give them a moment
     * to answer with the job as it is, rather than cutting them off. */
    for (i = 0; i < 20 && atomic_load(&a->polling) > 0; i++)
        poll(NULL, 0, 50);
    if (i > 0)
        poll(NULL, 0, 50);
    if (a->mhd != NULL)
        MHD_stop_daemon(a->mhd);
    api_tokens_free(a->tokens);
    free(a);
}
