/*
 * s3_stream.c - the ranged-GET pull stream of s3.h: one request at a time
 * over the curl multi interface; the write callback pauses the transfer
 * when the stream's buffer is full, and a request that ends short or fails
 * transiently is sent again from the next byte wanted.
 */
#include "s3.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3_int.h"
#include "util.h"

#define S3_STREAM_BUF  (256u << 10) /* bytes a stream holds at most */
#define S3_ERRBODY_MAX (64u << 10)  /* bytes of an error answer kept */
#define S3_EMPTY_SHA \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- the stream ------------------------------------------------------ */

struct s3_stream {
    const s3_config   *c;         /* borrowed */
    char              *url;       /* owned */
    char              *if_match;  /* owned, or NULL */
    char              *name;      /* "s3://b/k", for messages (owned) */
    uint64_t           pos;       /* next object byte to receive */
    uint64_t           req_start; /* where the request in flight began */
    int                ignored;   /* the server ignored our Range */
    uint64_t           end;       /* one past the last byte wanted */
    CURLM             *multi;
    CURL              *easy; /* the request in flight, or NULL */
    struct curl_slist *headers;
    char              *buf;      /* S3_STREAM_BUF bytes */
    size_t             buf_len;  /* bytes in buf */
    size_t             buf_off;  /* bytes of buf already read */
    s3_answer          ans;      /* Content-Range, error body */
    long               status;   /* HTTP status of the request */
    int                paused;   /* the write callback paused it */
    int                eof;      /* every wanted byte was delivered */
    int                got;      /* the request delivered bytes */
    unsigned           fails;    /* failed requests in a row */
    unsigned           requests; /* requests sent */
    unsigned           seed;     /* for the jitter */
};

static size_t
stream_on_body(char *p, size_t size, size_t n, void *ctx)
{
    s3_stream *s = ctx;
    size_t     len = size * n;

    if (s->status == 0)
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200 && s->status != 206) {
        if (s->ans.body.len < S3_ERRBODY_MAX)
            sb_append(&s->ans.body, p, len);
        return len;
    }
    if (s->status == 200 && s->req_start > 0) {
        /* The whole object, not the range asked for: stop. */
        s->ignored = 1;
        return 0;
    }
    if (s->buf_off > 0 && S3_STREAM_BUF - s->buf_len < len) {
        memmove(s->buf, s->buf + s->buf_off, s->buf_len - s->buf_off);
        s->buf_len -= s->buf_off;
        s->buf_off = 0;
    }
    if (S3_STREAM_BUF - s->buf_len < len) {
        s->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (len > s->end - s->pos) /* a server sending more than asked */
        len = (size_t)(s->end - s->pos);
    memcpy(s->buf + s->buf_len, p, len);
    s->buf_len += len;
    s->pos += len;
    if (len > 0)
        s->got = 1;
    return size * n;
}

s3_stream *
s3_stream_open(const s3_config *c, const char *bucket, const char *key,
               uint64_t start, uint64_t end, const char *if_match)
{
    s3_stream *s = xcalloc(1, sizeof *s);

    s->c = c;
    s->url = s3_request_url(c, bucket, key, NULL);
    s->name = xasprintf("s3://%s/%s", bucket, key);
    s->if_match = if_match && if_match[0] ? xstrdup(if_match) : NULL;
    s->pos = start;
    s->end = end;
    s->eof = start >= end;
    s->buf = xmalloc(S3_STREAM_BUF);
    s->seed = (unsigned)now_ms() ^ (unsigned)getpid() ^ (unsigned)start;
    return s;
}

/* Drop the request in flight. */
static void
stream_drop(s3_stream *s)
{
    if (s->easy != NULL) {
        curl_multi_remove_handle(s->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    s->paused = 0;
}

/* Send the request for bytes [pos, end). */
static void
stream_start(s3_stream *s)
{
    char *h;

    if (s->multi == NULL) {
        s->multi = curl_multi_init();
        if (s->multi == NULL) {
            fprintf(stderr, "s3: curl_multi_init failed\n");
            abort();
        }
    }
    s->easy = s3_easy_new(s->c, s->url, &s->headers, S3_EMPTY_SHA);
    if (s->end == UINT64_MAX)
        h = xasprintf("Range: bytes=%llu-", (unsigned long long)s->pos);
    else
        h = xasprintf("Range: bytes=%llu-%llu", (unsigned long long)s->pos,
                      (unsigned long long)(s->end - 1));
    s->headers = curl_slist_append(s->headers, h);
    free(h);
    if (s->if_match) {
        h = xasprintf("If-Match: \"%s\"", s->if_match);
        s->headers = curl_slist_append(s->headers, h);
        free(h);
    }
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, s3_on_header);
    curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, &s->ans);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, stream_on_body);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    sb_reset(&s->ans.body);
    s->ans.has_total = 0;
    s->req_start = s->pos;
    s->status = 0;
    s->got = 0;
    s->requests++;
    curl_multi_add_handle(s->multi, s->easy);
}

/*
 * The request in flight ended with 'rc'. Returns 0 when the stream goes
 * on (done, or to be retried), or an error.
 */
static int
stream_ended(s3_stream *s, CURLcode rc, sh_err *err)
{
    long status = 0;
    int  ret;

    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (s->ignored) {
        stream_drop(s);
        return sh_err_set(err, SH_EDATA, "",
                          "%s: the server ignored the byte range asked "
                          "for (HTTP 200 instead of 206)",
                          s->name);
    }
    if (rc == CURLE_OK && (status == 200 || status == 206)) {
        if (s->ans.has_total && s->ans.total < s->end)
            s->end = s->ans.total;
        if (status == 200 && s->end == UINT64_MAX)
            s->end = s->pos; /* the whole object came */
        stream_drop(s);
        s->fails = 0;
        if (s->pos >= s->end) {
            s->eof = 1;
            return 0;
        }
        /* Ended short of the range: ask for the rest. */
        rc = CURLE_PARTIAL_FILE;
    } else if (rc == CURLE_OK && status == 416) {
        stream_drop(s);
        s->eof = 1; /* the range starts at or past the object's end */
        return 0;
    }
    if (s->got)
        s->fails = 0;
    if (s3_transient(rc, status) && s->fails < (unsigned)s->c->max_retries) {
        stream_drop(s);
        s->fails++;
        s3_backoff(s->c, s->fails, &s->seed);
        return 0;
    }
    ret = s3_request_error(rc, status, &s->ans, "GET", err);
    if (ret == SH_EDATA) {
        ret = sh_err_set(err, SH_EDATA, "",
                         "%s changed while it was being read (its ETag is "
                         "no longer %s)",
                         s->name, s->if_match);
    } else {
        char msg[SH_ERR_MSG_MAX];

        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        sh_err_set(err, ret, "", "%s: %s", s->name, msg);
    }
    stream_drop(s);
    return ret;
}

ssize_t
s3_stream_read(s3_stream *s, char *buf, size_t n, sh_err *err)
{
    for (;;) {
        int      running = 0, left;
        CURLMsg *m;

        if (s->buf_off < s->buf_len) {
            size_t k = s->buf_len - s->buf_off;

            if (k > n)
                k = n;
            memcpy(buf, s->buf + s->buf_off, k);
            s->buf_off += k;
            if (s->buf_off == s->buf_len)
                s->buf_off = s->buf_len = 0;
            return (ssize_t)k;
        }
        if (s->eof)
            return 0;
        if (s->easy == NULL)
            stream_start(s);
        if (s->paused) {
            s->paused = 0;
            curl_easy_pause(s->easy, CURLPAUSE_CONT);
            if (s->buf_len > 0)
                continue;
        }
        curl_multi_perform(s->multi, &running);
        while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == s->easy) {
                int rc = stream_ended(s, m->data.result, err);

                if (rc != 0)
                    return rc;
                break;
            }
        }
        if (s->buf_len == 0 && s->easy != NULL && !s->paused)
            curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
    }
}

unsigned
s3_stream_requests(const s3_stream *s)
{
    return s->requests;
}

void
s3_stream_free(s3_stream *s)
{
    if (s == NULL)
        return;
    stream_drop(s);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    s3_answer_free(&s->ans);
    free(s->buf);
    free(s->url);
    free(s->name);
    free(s->if_match);
    free(s);
}
