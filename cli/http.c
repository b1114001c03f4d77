/*
 * http.c - the libcurl client of the sheaf command line (see http.h).
 *
 * One easy handle per client, reset before each attempt, so connections
 * are kept alive between the requests of a command (a wait loop makes many).
 * Every exchange goes through http_run: it sets the handle up, performs,
 * and decides whether to try again. Bodies stream through callbacks: a JSON
 * reply into a strbuf, a download into the caller's FILE, an upload from
 * the caller's FILE; nothing is buffered whole except JSON replies.
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HTTP_ATTEMPTS          4    /* tries of a retryable request */
#define HTTP_BACKOFF_MS        500  /* the first pause; doubles */
#define HTTP_BACKOFF_MAX_MS    8000 /* the longest computed pause */
#define HTTP_RETRY_AFTER_MAX_S 30   /* the longest Retry-After obeyed */
#define HTTP_CONNECT_TIMEOUT_S 10
#define HTTP_TIMEOUT_S         120 /* a JSON exchange, by default */
#define HTTP_STALL_S           300 /* a download below 1 B/s this long */
#define HTTP_JSON_MAX          (256u << 20) /* bytes of a JSON reply kept */
#define HTTP_ERROR_MAX         (64u << 10)  /* bytes of an error reply kept */
#define HTTP_USER_AGENT        "sheaf-cli"

struct http_client {
    char        *base_url; /* without a trailing slash */
    char        *auth;     /* "Authorization: Bearer ...", or NULL */
    CURL        *curl;     /* reused, so connections are kept alive */
    unsigned int seed;     /* for the jitter of the backoff */
};

/* One exchange, over all its attempts. */
typedef struct http_xfer {
    http_client     *c;             /* the client */
    const http_req  *rq;            /* the request */
    const char      *body;          /* the request body (JSON), or NULL */
    size_t           body_len;      /* its length in bytes */
    http_reply      *reply;         /* where the reply goes */
    FILE            *src;           /* upload: the body's source, or NULL */
    const char      *src_type;      /* upload: its Content-Type */
    uint64_t         src_bytes;     /* upload: bytes to send */
    int              src_errno;     /* upload: a read failed */
    FILE            *sink;          /* download: where a 200 body goes */
    int              sink_rewind;   /* the sink may be truncated to restart */
    uint64_t         sink_bytes;    /* bytes in the sink, over all attempts */
    int              sink_errno;    /* a write to the sink failed */
    char             etag[128];     /* the ETag of the bytes in the sink */
    uint64_t         range_start;   /* this attempt asks for bytes from here */
    int64_t          cr_start;      /* Content-Range start received, or -1 */
    int              decided;       /* this attempt's body has a destination */
    int              to_sink;       /* ... and it is the sink */
    int              bad_restart;   /* the body cannot continue the sink */
    double           retry_after_s; /* Retry-After of this reply, or 0 */
    int              truncated;     /* the kept body passed its limit */
    const char      *extra_header;  /* one more header line, or NULL */
    http_progress_fn progress;      /* upload: told of the bytes sent */
    void            *progress_ud;   /* ... with this */
    const http_stream_req *stream;  /* a streamed GET, or NULL */
    int                    stopped; /* the stream's reader ended it */
} http_xfer;

http_client *
http_client_new(const char *base_url, const char *token, char err[HTTP_ERR_MAX])
{
    http_client *c;
    size_t       len = strlen(base_url);

    if (strncasecmp(base_url, "http://", 7) != 0
        && strncasecmp(base_url, "https://", 8) != 0) {
        snprintf(err, HTTP_ERR_MAX,
                 "server URL '%s' must start with http:// or https://",
                 base_url);
        return NULL;
    }
    if (token != NULL && strpbrk(token, "\r\n") != NULL) {
        snprintf(err, HTTP_ERR_MAX, "the token holds a line break");
        return NULL;
    }
    c = xcalloc(1, sizeof *c);
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    c->base_url = xstrndup(base_url, len);
    if (token != NULL && token[0] != '\0')
        c->auth = xasprintf("Authorization: Bearer %s", token);
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        snprintf(err, HTTP_ERR_MAX, "libcurl could not make a handle");
        http_client_free(c);
        return NULL;
    }
    c->seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
    return c;
}

void
http_client_free(http_client *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->base_url);
    free(c->auth);
    free(c);
}

const char *
http_client_url(const http_client *c)
{
    return c->base_url;
}

void
http_reply_free(http_reply *r)
{
    json_decref(r->json);
    sb_free(&r->body);
    memset(r, 0, sizeof *r);
}

char *
http_escape(const char *s)
{
    static const char    hex[] = "0123456789ABCDEF";
    strbuf               sb = {0};
    const unsigned char *p;

    sb_reserve(&sb, strlen(s));
    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
            || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'
            || *p == '~') {
            sb_putc(&sb, (char)*p);
        } else {
            sb_putc(&sb, '%');
            sb_putc(&sb, hex[*p >> 4]);
            sb_putc(&sb, hex[*p & 15]);
        }
    }
    return sb.data;
}

/*
 * If the header line 'p' ('len' bytes, CRLF included) is 'name', copy its
 * trimmed value into 'out' (truncated to 'out_size') and return 1.
 */
static int
http_header_value(const char *p, size_t len, const char *name, char *out,
                  size_t out_size)
{
    size_t n_len = strlen(name), i, j;

    if (len <= n_len || strncasecmp(p, name, n_len) != 0 || p[n_len] != ':')
        return 0;
    i = n_len + 1;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    j = len;
    while (j > i
           && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '
               || p[j - 1] == '\t'))
        j--;
    if (j - i >= out_size)
        j = i + out_size - 1;
    memcpy(out, p + i, j - i);
    out[j - i] = '\0';
    return 1;
}

/* libcurl's header callback: keep the headers a caller may need. */
static size_t
http_on_header(char *p, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t     len = size * n;
    char       v[128];

    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response begins (after a 100 Continue, say). */
        x->reply->etag[0] = '\0';
        x->reply->ctype[0] = '\0';
        x->retry_after_s = 0;
        x->cr_start = -1;
    } else if (http_header_value(p, len, "ETag", x->reply->etag,
                                 sizeof x->reply->etag)) {
    } else if (http_header_value(p, len, "Content-Type", x->reply->ctype,
                                 sizeof x->reply->ctype)) {
    } else if (http_header_value(p, len, "Retry-After", v, sizeof v)) {
        x->retry_after_s = strtod(v, NULL); /* an HTTP date reads as 0 */
        if (!(x->retry_after_s >= 0))
            x->retry_after_s = 0;
    } else if (http_header_value(p, len, "Content-Range", v, sizeof v)) {
        if (strncasecmp(v, "bytes ", 6) == 0)
            x->cr_start = strtoll(v + 6, NULL, 10);
    }
    return len;
}

/* Truncate the sink to nothing so a download can start again. */
static int
http_sink_restart(http_xfer *x)
{
    if (!x->sink_rewind || fflush(x->sink) != 0
        || ftruncate(fileno(x->sink), 0) != 0
        || fseeko(x->sink, 0, SEEK_SET) != 0)
        return 0;
    x->sink_bytes = 0;
    return 1;
}

/*
 * Decide, once the status of this attempt is known, whether its body goes
 * to the sink: a 200 (starting the sink again if earlier bytes are there),
 * or a 206 that continues exactly where the sink ends.
 */
static void
http_sink_decide(http_xfer *x)
{
    long status = 0;

    if (x->decided)
        return;
    x->decided = 1;
    if (x->sink == NULL && x->stream == NULL)
        return;
    curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (x->stream != NULL) {
        x->to_sink = status == 200;
        return;
    }
    if (status == 200) {
        if (x->sink_bytes > 0 && !http_sink_restart(x)) {
            x->bad_restart = 1;
            return;
        }
        x->range_start = 0; /* the whole body: keep its ETag */
        x->to_sink = 1;
    } else if (status == 206) {
        if (x->range_start == 0 || x->cr_start < 0
            || (uint64_t)x->cr_start != x->range_start) {
            x->bad_restart = 1;
            return;
        }
        x->to_sink = 1;
    }
}

/* libcurl's write callback: the body goes to the sink or the reply. */
static size_t
http_on_body(char *p, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t     len = size * n, room;
    size_t     limit = x->sink != NULL ? HTTP_ERROR_MAX : HTTP_JSON_MAX;

    http_sink_decide(x);
    if (x->bad_restart)
        return 0; /* aborts the transfer */
    if (x->to_sink && x->stream != NULL) {
        if (x->stream->on_chunk(x->stream->ud, p, len) != 0) {
            x->stopped = 1;
            return 0; /* ends the transfer */
        }
        return len;
    }
    if (x->to_sink) {
        if (fwrite(p, 1, len, x->sink) != len) {
            x->sink_errno = errno != 0 ? errno : EIO;
            return 0;
        }
        x->sink_bytes += len;
        return len;
    }
    room = x->reply->body.len < limit ? limit - x->reply->body.len : 0;
    if (len > room)
        x->truncated = 1;
    sb_append(&x->reply->body, p, len < room ? len : room);
    return len;
}

/* libcurl's read callback: the upload's body, from the source file. */
static size_t
http_on_read(char *p, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t     got = fread(p, 1, size * n, x->src);

    if (got == 0 && ferror(x->src)) {
        x->src_errno = errno != 0 ? errno : EIO;
        return CURL_READFUNC_ABORT;
    }
    return got;
}

/* libcurl's progress callback: tell an upload's caller. */
static int
http_on_progress(void *ud, curl_off_t dl_total, curl_off_t dl_now,
                 curl_off_t ul_total, curl_off_t ul_now)
{
    http_xfer *x = ud;

    (void)dl_total;
    (void)dl_now;
    (void)ul_total;
    return x->progress(x->progress_ud, (uint64_t)ul_now, x->src_bytes);
}

/* Non-zero when an attempt that ended with 'cc' and 'status' may be sent
 * again. A refused connection never reached the server, so it always may. */
static int
http_retryable(const http_xfer *x, CURLcode cc, long status)
{
    if (x->stream != NULL)
        return 0; /* its caller reconnects, resuming the stream */
    switch (cc) {
    case CURLE_OK:
        return x->rq->retry
               && (status == 429 || status == 502 || status == 503
                   || status == 504);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return 1;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return x->rq->retry;
    default:
        return 0;
    }
}

/* Sleep 'ms' milliseconds, resuming after signals. */
static void
http_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The pause before attempt 'attempt' + 1: exponential with +-25% jitter,
 * or the server's Retry-After when that is longer. */
static long
http_backoff_ms(http_xfer *x, int attempt)
{
    long ms = HTTP_BACKOFF_MS << (attempt - 1);
    long ra;

    if (ms > HTTP_BACKOFF_MAX_MS)
        ms = HTTP_BACKOFF_MAX_MS;
    ms = ms * 3 / 4 + (long)(rand_r(&x->c->seed) % (unsigned)(ms / 2 + 1));
    if (x->retry_after_s > 0) {
        ra = x->retry_after_s > HTTP_RETRY_AFTER_MAX_S
                 ? HTTP_RETRY_AFTER_MAX_S * 1000L
                 : (long)(x->retry_after_s * 1000);
        if (ra > ms)
            ms = ra;
    }
    return ms;
}

/* Set the handle up for one attempt. 'hdrs' receives the header list
 * (the caller frees it after the attempt). */
static void
http_setup(http_xfer *x, const char *url, char *errbuf,
           struct curl_slist **hdrs)
{
    CURL           *h = x->c->curl;
    const http_req *rq = x->rq;
    char           *line;

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)HTTP_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_USERAGENT, HTTP_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (x->stream != NULL) {
        if (x->stream->idle_s > 0) {
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, x->stream->idle_s);
        }
        if (x->stream->timeout_ms > 0)
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                             (long)x->stream->timeout_ms);
    } else if (x->sink != NULL || x->src != NULL) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)HTTP_STALL_S);
    } else {
        curl_easy_setopt(h, CURLOPT_TIMEOUT,
                         rq->timeout_s > 0 ? rq->timeout_s : HTTP_TIMEOUT_S);
    }

    /* A download takes whatever the result is (CSV, JSON lines, gzip). */
    if (x->stream != NULL) {
        line = xasprintf("Accept: %s", x->stream->accept);
        *hdrs = curl_slist_append(*hdrs, line);
        free(line);
        if (x->stream->last_event_id != NULL) {
            line = xasprintf("Last-Event-ID: %s", x->stream->last_event_id);
            *hdrs = curl_slist_append(*hdrs, line);
            free(line);
        }
    } else {
        *hdrs = curl_slist_append(*hdrs, x->sink != NULL
                                             ? "Accept: */*"
                                             : "Accept: application/json");
    }
    if (x->extra_header != NULL)
        *hdrs = curl_slist_append(*hdrs, x->extra_header);
    if (x->c->auth != NULL)
        *hdrs = curl_slist_append(*hdrs, x->c->auth);
    if (rq->idem_key != NULL) {
        line = xasprintf("Idempotency-Key: %s", rq->idem_key);
        *hdrs = curl_slist_append(*hdrs, line);
        free(line);
    }
    if (x->src != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, http_on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)x->src_bytes);
        line = xasprintf("Content-Type: %s", x->src_type);
        *hdrs = curl_slist_append(*hdrs, line);
        free(line);
        *hdrs = curl_slist_append(*hdrs, "Expect:");
        if (x->progress != NULL) {
            curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_on_progress);
            curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
        }
    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(x->body ? x->body_len : 0));
        *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
        *hdrs = curl_slist_append(*hdrs, "Expect:");
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    if (x->range_start > 0) {
        line = xasprintf("Range: bytes=%llu-",
                         (unsigned long long)x->range_start);
        *hdrs = curl_slist_append(*hdrs, line);
        free(line);
        line = xasprintf("If-Range: %s", x->etag);
        *hdrs = curl_slist_append(*hdrs, line);
        free(line);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
}

/*
 * Prepare a download's next attempt after bytes already reached the sink:
 * ask for the rest when the server named the bytes with an ETag, else
 * start over when the sink allows. Returns 0 when neither is possible.
 */
static int
http_resume_prepare(http_xfer *x)
{
    x->range_start = 0;
    if (x->sink == NULL || x->sink_bytes == 0)
        return 1;
    if (x->etag[0] != '\0') {
        x->range_start = x->sink_bytes;
        return 1;
    }
    return http_sink_restart(x);
}

/*
 * Perform the exchange 'x' describes, with its retries. Returns 0 when a
 * reply arrived (x->reply->status set), or an HTTP_E* code.
 */
static int
http_run(http_xfer *x, char err[HTTP_ERR_MAX])
{
    http_client       *c = x->c;
    char              *url = xasprintf("%s%s", c->base_url, x->rq->path);
    char               errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    CURLcode           cc = CURLE_OK;
    long               status = 0, pause_ms;
    int                attempt, rc;
    off_t              src_start = x->src ? ftello(x->src) : 0;

    for (attempt = 1;; attempt++) {
        sb_reset(&x->reply->body);
        x->decided = x->to_sink = x->bad_restart = x->truncated = 0;
        x->retry_after_s = 0;
        x->cr_start = -1;
        status = 0;
        errbuf[0] = '\0';
        if (x->src != NULL && ftello(x->src) != src_start
            && fseeko(x->src, src_start, SEEK_SET) != 0) {
            x->src_errno = errno;
            break;
        }
        http_setup(x, url, errbuf, &hdrs);
        cc = curl_easy_perform(c->curl);
        curl_slist_free_all(hdrs);
        hdrs = NULL;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (x->stopped)
            cc = CURLE_OK; /* the stream's reader had what it wanted */
        if (cc == CURLE_OK)
            http_sink_decide(x);
        if (x->to_sink && x->reply->etag[0] != '\0' && x->range_start == 0)
            snprintf(x->etag, sizeof x->etag, "%s", x->reply->etag);
        if (x->sink_errno != 0 || x->src_errno != 0 || x->bad_restart)
            break;
        if (attempt >= HTTP_ATTEMPTS || !http_retryable(x, cc, status))
            break;
        if (!http_resume_prepare(x)) {
            x->bad_restart = 1;
            break;
        }
        pause_ms = http_backoff_ms(x, attempt);
        if (cc != CURLE_OK)
            snprintf(err, HTTP_ERR_MAX, "%s",
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        else
            snprintf(err, HTTP_ERR_MAX, "HTTP %ld", status);
        fprintf(stderr, "sheaf: %s %s: %s; retry %d of %d in %.1f s\n",
                x->rq->method, url, err, attempt, HTTP_ATTEMPTS - 1,
                (double)pause_ms / 1000);
        http_sleep_ms(pause_ms);
    }

    if (x->sink_errno != 0) {
        snprintf(err, HTTP_ERR_MAX, "writing the download: %s",
                 strerror(x->sink_errno));
        rc = HTTP_EWRITE;
    } else if (x->src_errno != 0) {
        snprintf(err, HTTP_ERR_MAX, "reading the upload: %s",
                 strerror(x->src_errno));
        rc = HTTP_EREAD;
    } else if (x->bad_restart) {
        snprintf(err, HTTP_ERR_MAX,
                 "GET %s: the download broke after %llu bytes and cannot "
                 "be resumed",
                 url, (unsigned long long)x->sink_bytes);
        rc = HTTP_ENET;
    } else if (cc != CURLE_OK) {
        if (cc == CURLE_OPERATION_TIMEDOUT)
            snprintf(err, HTTP_ERR_MAX, "%s %s: timed out (%s)", x->rq->method,
                     url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        else
            snprintf(err, HTTP_ERR_MAX, "%s %s: %s", x->rq->method, url,
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = HTTP_ENET;
    } else {
        x->reply->status = status;
        rc = HTTP_OK;
    }
    free(url);
    return rc;
}

/* Parse the kept body of 'r' as JSON when it can be. */
static void
http_parse_json(http_reply *r, int truncated)
{
    json_error_t jerr;

    json_decref(r->json);
    r->json = NULL;
    if (!truncated && r->body.len > 0)
        r->json = json_loadb(r->body.data, r->body.len, 0, &jerr);
}

int
http_request(http_client *c, const http_req *rq, http_reply *out,
             char err[HTTP_ERR_MAX])
{
    http_xfer x;
    char     *body = NULL;
    int       rc;

    memset(&x, 0, sizeof x);
    x.c = c;
    x.rq = rq;
    x.reply = out;
    if (rq->body != NULL) {
        /* Any JSON value goes: the server says why a non-object is bad. */
        body = json_dumps(rq->body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (body == NULL) {
            snprintf(err, HTTP_ERR_MAX, "the body cannot be written as JSON");
            return HTTP_EREAD;
        }
        x.body = body;
        x.body_len = strlen(body);
    }
    rc = http_run(&x, err);
    if (rc == HTTP_OK)
        http_parse_json(out, x.truncated);
    free(body);
    return rc;
}

int
http_download(http_client *c, const char *path, FILE *sink, http_reply *out,
              char err[HTTP_ERR_MAX])
{
    return http_download_at(c, path, sink, 0, NULL, out, err);
}

int
http_download_at(http_client *c, const char *path, FILE *sink, uint64_t start,
                 const char *etag, http_reply *out, char err[HTTP_ERR_MAX])
{
    http_req    rq = {.method = "GET", .path = path, .retry = 1};
    http_xfer   x;
    struct stat st;
    int         rc, flags;

    memset(&x, 0, sizeof x);
    x.c = c;
    x.rq = &rq;
    x.reply = out;
    x.sink = sink;
    /* Restart only a regular file we write from its start, not appending,
     * so starting over can never cut off what was there before. */
    flags = fcntl(fileno(sink), F_GETFL);
    x.sink_rewind = fstat(fileno(sink), &st) == 0 && S_ISREG(st.st_mode)
                    && flags >= 0 && !(flags & O_APPEND)
                    && ftello(sink) == (off_t)start;
    if (start > 0 && etag != NULL && x.sink_rewind) {
        x.sink_bytes = start;
        x.range_start = start;
        snprintf(x.etag, sizeof x.etag, "%s", etag);
    }
    rc = http_run(&x, err);
    if (rc == HTTP_OK) {
        if (out->status == 206 && x.to_sink)
            out->status = 200; /* the resumed rest of the 200 */
        if (!x.to_sink)
            http_parse_json(out, x.truncated);
    }
    return rc;
}

int
http_upload(http_client *c, const char *path, FILE *src, uint64_t size_bytes,
            const char *content_type, const char *header,
            http_progress_fn progress, void *ud, http_reply *out,
            char err[HTTP_ERR_MAX])
{
    http_req  rq = {.method = "POST", .path = path, .retry = 0};
    http_xfer x;
    int       rc;

    memset(&x, 0, sizeof x);
    x.src_type = content_type;
    x.c = c;
    x.rq = &rq;
    x.reply = out;
    x.src = src;
    x.src_bytes = size_bytes;
    x.extra_header = header;
    x.progress = progress;
    x.progress_ud = ud;
    rc = http_run(&x, err);
    if (rc == HTTP_OK)
        http_parse_json(out, x.truncated);
    return rc;
}

int
http_stream(http_client *c, const http_stream_req *sr, http_reply *out,
            char err[HTTP_ERR_MAX])
{
    http_req  rq = {.method = "GET", .path = sr->path, .retry = 0};
    http_xfer x;
    int       rc;

    memset(&x, 0, sizeof x);
    x.c = c;
    x.rq = &rq;
    x.reply = out;
    x.stream = sr;
    rc = http_run(&x, err);
    if (rc == HTTP_OK && !x.to_sink)
        http_parse_json(out, x.truncated);
    if (rc != HTTP_OK && out->status == 0) {
        long status = 0;

        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        out->status = status;
    }
    return rc;
}
