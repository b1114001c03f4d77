/*
 * source.c - s3:// input files as streams (see source.h).
 */
#include "source.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

struct source {
    const s3_config *c;         /* borrowed: the process's */
    char            *bucket;    /* owned */
    char            *key;       /* owned */
    char            *etag;      /* owned, or NULL */
    uint64_t         pos;       /* next byte to read */
    uint64_t         size;      /* the object's size (the plan's) */
    uint64_t         first_end; /* the first request's end */
    int              rest;      /* the first request is done: to the end */
    s3_stream       *st;        /* the request in flight */
    unsigned         requests;  /* of the streams freed */
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static s3_config      g_cfg;
static sh_err         g_cfg_err;
static int            g_cfg_rc;

static void
config_init(void)
{
    g_cfg_rc = s3_config_from_env(&g_cfg, &g_cfg_err);
}

const s3_config *
source_s3_config(sh_err *err)
{
    pthread_once(&g_once, config_init);
    if (g_cfg_rc != 0) {
        if (err != NULL)
            *err = g_cfg_err;
        return NULL;
    }
    return &g_cfg;
}

int
source_is_remote(const plan_file *f)
{
    return s3_is_url(f->path);
}

source *
source_open(const plan_file *f, uint64_t start, uint64_t end, sh_err *err)
{
    const s3_config *c = source_s3_config(err);
    source          *s;
    char            *bucket, *key;

    if (c == NULL)
        return NULL;
    if (s3_parse_url(f->path, 0, "input.path", &bucket, &key, err) != 0)
        return NULL;
    s = xcalloc(1, sizeof *s);
    s->c = c;
    s->bucket = bucket;
    s->key = key;
    s->etag = f->etag && f->etag[0] ? xstrdup(f->etag) : NULL;
    s->pos = start;
    s->size = f->size_bytes;
    s->first_end = end >= s->size || s->size - end <= SOURCE_SLACK_BYTES
                       ? s->size
                       : end + SOURCE_SLACK_BYTES;
    return s;
}

ssize_t
source_read(void *ctx, char *buf, size_t n, sh_err *err)
{
    source *s = ctx;
    ssize_t k;

    for (;;) {
        if (s->pos >= s->size)
            return 0;
        if (s->st == NULL) {
            /* First up to a little past the range; a reader that wants
             * more gets the rest of the object. */
            uint64_t end = s->rest ? s->size : s->first_end;

            if (s->pos >= end) {
                s->rest = 1;
                end = s->size;
            }
            s->st = s3_stream_open(s->c, s->bucket, s->key, s->pos, end,
                                   s->etag);
        }
        k = s3_stream_read(s->st, buf, n, err);
        if (k > 0) {
            s->pos += (uint64_t)k;
            return k;
        }
        if (k < 0)
            return k;
        s->requests += s3_stream_requests(s->st);
        s3_stream_free(s->st);
        s->st = NULL;
        if (s->rest || s->pos < s->first_end) {
            /* The stream ended before the size the plan saw. */
            return sh_err_set(err, SH_EDATA, "",
                              "s3://%s/%s is shorter than when the job was "
                              "submitted (%llu bytes); submit the job again",
                              s->bucket, s->key, (unsigned long long)s->size);
        }
        s->rest = 1;
    }
}

unsigned
source_requests(const source *s)
{
    return s->requests + (s->st ? s3_stream_requests(s->st) : 0);
}

void
source_free(source *s)
{
    if (s == NULL)
        return;
    s3_stream_free(s->st);
    free(s->bucket);
    free(s->key);
    free(s->etag);
    free(s);
}
