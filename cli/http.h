/*
 * http.h - the small libcurl client the sheaf command line speaks to sheafd
 * with: JSON requests and replies, streamed downloads and uploads, and
 * retries with backoff for the requests that are safe to repeat.
 *
 * The client handles transport only. Any HTTP status is a successful
 * exchange here; the caller decides what a 404 or a 503 means to its user.
 * Redirects are never followed. Functions return 0 or a negative HTTP_E*
 * code and fill the caller's message buffer with the human words.
 */
#ifndef SHEAF_CLI_HTTP_H
#define SHEAF_CLI_HTTP_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "../lib/util.h"

#define HTTP_ERR_MAX 512 /* bytes of an error message, with the NUL */

enum {
    HTTP_OK = 0,
    HTTP_ENET = -1,   /* no reply: connect failed, reset, or timed out */
    HTTP_EWRITE = -2, /* the download could not be written locally */
    HTTP_EREAD = -3   /* the upload could not be read locally */
};

typedef struct http_client http_client;

/* What came back for one request. Zero-initialise; http_reply_free. */
typedef struct http_reply {
    long    status;     /* the HTTP status; 0 until a reply arrived */
    json_t *json;       /* the body parsed as JSON (owned), or NULL */
    strbuf  body;       /* the body, unless it went to a download's sink */
    char    etag[128];  /* the ETag header, or "" */
    char    ctype[128]; /* the Content-Type header, or "" */
} http_reply;

/* One request. Zero-initialise, then fill what applies. */
typedef struct http_req {
    const char   *method;    /* "GET", "POST", "DELETE" */
    const char   *path;      /* appended to the base URL: "/v1/jobs?x=1" */
    const json_t *body;      /* a JSON body to send, or NULL */
    const char   *idem_key;  /* the Idempotency-Key header, or NULL */
    int           retry;     /* resend after a broken connection, 429, 503 */
    long          timeout_s; /* limit of the whole exchange; 0: 120 s */
} http_req;

/*
 * Make a client for 'base_url' ("http://host:port", a trailing slash is
 * dropped) that sends 'token' (NULL: none) as a bearer token. Both are
 * copied. Returns NULL with a message in 'err' when the URL is not http://
 * or https://, or the token cannot go in a header. Free with
 * http_client_free.
 */
http_client *http_client_new(const char *base_url, const char *token,
                             char err[HTTP_ERR_MAX]);
void         http_client_free(http_client *c);

/* The base URL, without a trailing slash. Borrowed from 'c'. */
const char *http_client_url(const http_client *c);

/*
 * Send 'rq' and read the whole reply into 'out' (which must be zeroed or
 * freed before). Requests that are safe to repeat are sent up to four
 * times with exponential backoff and jitter (Retry-After is honoured); a
 * connection that was refused is retried for any request, since nothing
 * reached the server. A notice goes to stderr before each retry. Returns 0
 * when a reply arrived, whatever its status, or HTTP_ENET.
 */
int http_request(http_client *c, const http_req *rq, http_reply *out,
                 char err[HTTP_ERR_MAX]);

/*
 * GET 'path' and stream a 200 body into 'sink' as it arrives; any other
 * status's body goes to out->body instead, and out->status tells which.
 * When the connection breaks mid-way the download is retried: resumed with
 * Range and If-Range when the server gave an ETag, else restarted when
 * 'sink' is a regular file (it is truncated first), else it fails.
 * Returns 0 when a reply arrived and its body was read completely,
 * HTTP_ENET, or HTTP_EWRITE when writing to 'sink' failed.
 */
int http_download(http_client *c, const char *path, FILE *sink, http_reply *out,
                  char err[HTTP_ERR_MAX]);

/*
 * http_download for a sink that already holds the first 'start' bytes of
 * the body, which came with the ETag 'etag': asks for the rest with Range
 * and If-Range. When the server sends the whole body instead (200: the
 * ETag changed), the sink is started again from its beginning. With
 * 'start' 0 and 'etag' NULL it is http_download. A 416 reply (nothing
 * past 'start') comes back as out->status 416 with the sink untouched.
 */
int http_download_at(http_client *c, const char *path, FILE *sink,
                     uint64_t start, const char *etag, http_reply *out,
                     char err[HTTP_ERR_MAX]);

/*
 * Called with the bytes sent so far and the total while an upload runs;
 * 'ud' is the caller's. Return 0 to go on.
 */
typedef int (*http_progress_fn)(void *ud, uint64_t sent_bytes,
                                uint64_t total_bytes);

/*
 * POST the 'size_bytes' bytes of 'src' (borrowed, read from its current
 * position) to 'path' as the raw body, streamed, with 'content_type' and,
 * when not NULL, the extra header line 'header' ("Name: value"). Calls
 * 'progress' (NULL: none) as bytes go out. Only a refused connection is
 * retried. Returns 0 when a reply arrived, HTTP_ENET, or HTTP_EREAD when
 * 'src' could not be read.
 */
int http_upload(http_client *c, const char *path, FILE *src,
                uint64_t size_bytes, const char *content_type,
                const char *header, http_progress_fn progress, void *ud,
                http_reply *out, char err[HTTP_ERR_MAX]);

/*
 * Called with each piece of a streamed 200 body, in order; 'ud' is the
 * caller's. Return 0 to go on, non-zero to end the exchange there (which
 * is not a failure).
 */
typedef int (*http_chunk_fn)(void *ud, const char *p, size_t len);

/* A streamed GET (an event stream). Zero-initialise, then fill. */
typedef struct http_stream_req {
    const char   *path;          /* appended to the base URL */
    const char   *accept;        /* the Accept header */
    const char   *last_event_id; /* the Last-Event-ID header, or NULL */
    long          idle_s;        /* give up when nothing arrives this long */
    int64_t       timeout_ms;    /* limit of the whole exchange; <= 0: none */
    http_chunk_fn on_chunk;      /* receives a 200 body */
    void         *ud;            /* passed to on_chunk */
} http_stream_req;

/*
 * GET sr->path and hand a 200 body to sr->on_chunk as it arrives; another
 * status's body goes to out->body (and out->json). Never retried (the
 * caller reconnects, with Last-Event-ID). Returns 0 when a reply arrived and
 * ended (or on_chunk ended it), HTTP_ENET when the connection failed, broke,
 * went idle or passed its time limit (out->status is set when a reply had
 * begun).
 */
int http_stream(http_client *c, const http_stream_req *sr, http_reply *out,
                char err[HTTP_ERR_MAX]);

/* Free what 'r' holds and zero it, so it can be used again. */
void http_reply_free(http_reply *r);

/*
 * Percent-encode 's' for a path segment or a query value (everything but
 * A-Z a-z 0-9 - . _ ~). The caller frees the result.
 */
char *http_escape(const char *s);

#endif
