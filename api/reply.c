/*
 * reply.c - the helpers every handler uses, below the daemon (http.c) and
 * the handlers alike: replies and errors in the JSON shape, reply headers,
 * the request's headers and query, a client's hang-up, the database pool,
 * JSON to text, and log-safe copies of what a client sent.
 */
#include "api_int.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../service/log.h"

int
api_utf8_valid(const char *s)
{
    return util_utf8_valid(s, strlen(s));
}

/* Replace each byte of 's' that is not part of valid UTF-8 with '?'. */
static void
reply_utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t         left = strlen(s), n;

    while (left > 0) {
        if ((n = util_utf8_seq(p, left)) == 0) {
            *p++ = '?';
            left--;
        } else {
            p += n;
            left -= n;
        }
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
    while (n > 0
           && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '\t'))
        msg[--n] = '\0';
    reply_utf8_clean(msg);
    reply_utf8_clean(where);
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

db *
api_db_get(api *a, int wait_ms, sh_err *err)
{
    return db_pool_get(a->pool, wait_ms, err);
}

int
api_db_put(api *a, db *d, int rc)
{
    if (d != NULL)
        db_pool_put(a->pool, d, rc == SH_EDB);
    return rc;
}

/* json_dump_callback sink: append to a strbuf. */
static int
reply_dump_cb(const char *buf, size_t size, void *data)
{
    sb_append(data, buf, size);
    return 0;
}

int
api_json_dump(const json_t *j, size_t flags, strbuf *sb)
{
    return json_dump_callback(j, reply_dump_cb, sb, flags) == 0 ? 0 : -1;
}

void
api_log_copy(char *out, size_t out_size, const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < out_size; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
}
