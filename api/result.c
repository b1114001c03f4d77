/*
 * result.c - GET /v1/jobs/{id}/result: the output of a succeeded job,
 * streamed as the concatenation of its part files, with a strong ETag
 * (If-None-Match gives 304) and a single byte range (Range, If-Range).
 *
 * The parts are opened one at a time, as the stream reaches them, and read
 * with pread at the offset libmicrohttpd asks for; nothing of the result is
 * held in memory. Concatenated gzip members are a valid gzip stream, so
 * compressed results are served the same way.
 *
 * A DELETE of the job while its result is downloaded does not cut the
 * download short after a 200 that announced the full length: every
 * download is registered (result_reading) from before it reads the
 * job's parts until its response is freed, and a DELETE that finds one
 * leaves the files to the last download to remove. This holds within one
 * process: a DELETE on another node sharing the spool removes the files at
 * once.
 */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../service/log.h"
#include "../service/spool.h"

#define RESULT_BLOCK_BYTES (64 * 1024)

/* A job whose result is being downloaded: how many downloads, and whether
 * the job was deleted meanwhile (its files then go with the last one). */
typedef struct result_reading {
    char                   id[37];
    int                    n;
    int                    deleted;
    struct result_reading *next;
} result_reading;

/* The downloads in progress in this process, under reading_mu. */
static pthread_mutex_t reading_mu = PTHREAD_MUTEX_INITIALIZER;
static result_reading *reading_list;

/* The entry of job 'id', or NULL. Under reading_mu. */
static result_reading **
reading_find(const char *id)
{
    result_reading **p = &reading_list;

    while (*p != NULL && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

/* A download of job 'id''s result begins. */
static void
reading_add(const char *id)
{
    result_reading **p;

    pthread_mutex_lock(&reading_mu);
    p = reading_find(id);
    if (*p == NULL) {
        *p = xcalloc(1, sizeof **p);
        snprintf((*p)->id, sizeof (*p)->id, "%s", id);
    }
    (*p)->n++;
    pthread_mutex_unlock(&reading_mu);
}

/* A download of job 'id''s result ended; the last one after a DELETE
 * removes the job's files. */
static void
reading_done(const char *id, const char *spool)
{
    result_reading **p, *e;
    int              remove = 0;

    pthread_mutex_lock(&reading_mu);
    p = reading_find(id);
    e = *p;
    if (e != NULL && --e->n == 0) {
        remove = e->deleted;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&reading_mu);
    if (remove && spool_remove_job(spool, id) < 0)
        log_warn("job %s deleted, but removing its files failed", id);
}

int
api_result_hold_files(const char *id)
{
    result_reading **p;
    int              held = 0;

    pthread_mutex_lock(&reading_mu);
    p = reading_find(id);
    if (*p != NULL) {
        (*p)->deleted = 1;
        held = 1;
    }
    pthread_mutex_unlock(&reading_mu);
    return held;
}

/* The state of one result stream, owned by its MHD response. */
typedef struct result_reader {
    char        id[37];   /* the job, registered with reading_add */
    const char *spool;    /* the configuration's, for reading_done */
    db_part *parts;    /* owned, freed with db_parts_free */
    size_t   n_parts;
    uint64_t start;    /* offset in the whole result of the first byte sent */
    size_t   cur;      /* index of the part being read */
    uint64_t cur_base; /* offset in the whole result of parts[cur] */
    int      fd;       /* parts[cur] open for reading, or -1 */
} result_reader;

/* Close the open part, if any. */
static void
reader_close(result_reader *rd)
{
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
}

/* MHD content reader: copy up to 'max' bytes from offset 'pos' of the
 * response (start + pos of the result) into 'buf'. */
static ssize_t
reader_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    result_reader *rd = cls;
    uint64_t       at = rd->start + pos, part_end;
    size_t         want;
    ssize_t        n;
    int            saved;

    if (at < rd->cur_base) {
        /* libmicrohttpd reads forward; start over if it ever does not. */
        reader_close(rd);
        rd->cur = 0;
        rd->cur_base = 0;
    }
    while (rd->cur < rd->n_parts
           && at >= rd->cur_base + rd->parts[rd->cur].size_bytes) {
        reader_close(rd);
        rd->cur_base += rd->parts[rd->cur].size_bytes;
        rd->cur++;
    }
    if (rd->cur == rd->n_parts)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (rd->fd < 0) {
        rd->fd = open(rd->parts[rd->cur].path, O_RDONLY | O_CLOEXEC);
        if (rd->fd < 0) {
            saved = errno;
            log_error("result: open %s: %s", rd->parts[rd->cur].path,
                      strerror(saved));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    part_end = rd->cur_base + rd->parts[rd->cur].size_bytes;
    want = part_end - at < max ? (size_t)(part_end - at) : max;
    do {
        n = pread(rd->fd, buf, want, (off_t)(at - rd->cur_base));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        saved = errno;
        log_error("result: read %s at %" PRIu64 ": %s",
                  rd->parts[rd->cur].path, at - rd->cur_base,
                  n == 0 ? "file shorter than recorded" : strerror(saved));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n;
}

/* MHD free callback of the response. */
static void
reader_free(void *cls)
{
    result_reader *rd = cls;

    reader_close(rd);
    db_parts_free(rd->parts, rd->n_parts);
    reading_done(rd->id, rd->spool);
    free(rd);
}

/* Parse a run of digits at *s into *v, saturating. Returns the number of
 * digits. */
static size_t
range_digits(const char **s, uint64_t *v)
{
    size_t n = 0;

    *v = 0;
    while (**s >= '0' && **s <= '9') {
        uint64_t d = (uint64_t)(**s - '0');

        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
        (*s)++;
        n++;
    }
    return n;
}

int
api_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *s = h;
    uint64_t    a = 0, b = 0;
    size_t      na, nb;

    while (*s == ' ' || *s == '\t')
        s++;
    if (strncasecmp(s, "bytes", 5) != 0)
        return API_RANGE_NONE;
    s += 5;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s++ != '=' || strchr(s, ',') != NULL)
        return API_RANGE_NONE;
    while (*s == ' ' || *s == '\t')
        s++;
    na = range_digits(&s, &a);
    if (*s++ != '-')
        return API_RANGE_NONE;
    nb = range_digits(&s, &b);
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0' || (na == 0 && nb == 0) || (na > 0 && nb > 0 && b < a))
        return API_RANGE_NONE;
    if (na == 0) {
        /* The last b bytes. */
        if (b == 0 || size == 0)
            return API_RANGE_UNSATISFIED;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return API_RANGE_OK;
    }
    if (a >= size)
        return API_RANGE_UNSATISFIED;
    *first = a;
    *last = nb == 0 || b >= size ? size - 1 : b;
    return API_RANGE_OK;
}

int
api_etag_listed(const char *h, const char *etag)
{
    size_t      len = strlen(etag), n;
    const char *s = h, *end;

    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        end = strchr(s, ',');
        if (end == NULL)
            end = s + strlen(s);
        n = (size_t)(end - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 1 && s[0] == '*')
            return 1;
        if (n > 2 && strncmp(s, "W/", 2) == 0) {
            s += 2;
            n -= 2;
        }
        if (n == len && memcmp(s, etag, len) == 0)
            return 1;
        s = end;
    }
    return 0;
}

/*
 * Set Content-Type and Content-Disposition from the job's spec.output:
 * CSV or JSON lines, gzip-compressed or not.
 */
static void
result_set_type(api_req *r, const json_t *spec)
{
    const json_t *out = json_object_get(spec, "output");
    const char   *format = json_string_value(json_object_get(out, "format"));
    const char   *comp = json_string_value(json_object_get(out,
                                                           "compression"));
    int           jsonl = format != NULL && strcmp(format, "jsonl") == 0;
    int           gzip = comp != NULL && strcmp(comp, "gzip") == 0;
    char          disp[64];

    if (gzip)
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/gzip");
    else if (jsonl)
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                       "application/x-ndjson");
    else
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                       "text/csv; charset=utf-8");
    snprintf(disp, sizeof disp, "attachment; filename=\"result.%s%s\"",
             jsonl ? "jsonl" : "csv", gzip ? ".gz" : "");
    api_header_set(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
}

int
api_job_result(api_req *r)
{
    db_pool             *pool = r->a->pool;
    const char          *range_h, *if_range, *inm;
    db                  *d;
    db_job               job = {0};
    json_t              *spec = NULL;
    db_part             *parts = NULL;
    size_t               n_parts = 0, i;
    uint64_t             size = 0, first = 0, last = 0;
    result_reader       *rd;
    struct MHD_Response *resp = NULL;
    char                 etag[64], buf[96];
    int                  rc, range = API_RANGE_NONE, status, held;
    sh_err               err;

    sh_err_clear(&err);
    d = db_pool_get(pool, API_POOL_WAIT_MS, &err);
    if (d == NULL)
        return api_error_sh(r, &err, 0);
    /* Registered before the parts are read: a DELETE that commits after
     * this sees the download and leaves the files; one that committed
     * before it leaves no job to read. The stream's reader_free, or the
     * end of this function, ends the registration. */
    reading_add(r->id);
    held = 1;
    rc = db_job_get(d, r->tenant, r->id, &job, &err);
    if (rc == 0)
        rc = db_job_result(d, r->tenant, r->id, &parts, &n_parts, &err);
    db_pool_put(pool, d, rc == SH_EDB);
    if (rc != 0) {
        status = api_error_sh(r, &err, 0);
        goto done;
    }

    for (i = 0; i < n_parts; i++)
        size += parts[i].size_bytes;
    snprintf(etag, sizeof etag, "\"%s-%" PRIu64 "\"", r->id, size);
    api_header_set(r, MHD_HTTP_HEADER_ETAG, etag);
    api_header_set(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");

    inm = api_header_get(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm != NULL && api_etag_listed(inm, etag)) {
        status = api_reply(r, MHD_HTTP_NOT_MODIFIED, NULL);
        goto done;
    }
    range_h = api_header_get(r, MHD_HTTP_HEADER_RANGE);
    if_range = api_header_get(r, MHD_HTTP_HEADER_IF_RANGE);
    /* If-Range with another tag (or a date: we give no Last-Modified)
     * means the client's copy is stale: send the whole result. */
    if (range_h != NULL && (if_range == NULL || strcmp(if_range, etag) == 0))
        range = api_range_parse(range_h, size, &first, &last);
    if (range == API_RANGE_UNSATISFIED) {
        snprintf(buf, sizeof buf, "bytes */%" PRIu64, size);
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_RANGE, buf);
        status = api_error(r, MHD_HTTP_RANGE_NOT_SATISFIABLE,
                           "range_not_satisfiable", "",
                           "the result has %" PRIu64 " bytes", size);
        goto done;
    }
    if (range == API_RANGE_OK) {
        snprintf(buf, sizeof buf, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 first, last, size);
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_RANGE, buf);
        status = MHD_HTTP_PARTIAL_CONTENT;
    } else {
        first = 0;
        last = size - 1; /* wraps for an empty result, unused then */
        status = MHD_HTTP_OK;
    }

    if (size == 0) {
        resp = MHD_create_response_from_buffer(0, NULL,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        rd = xcalloc(1, sizeof *rd);
        snprintf(rd->id, sizeof rd->id, "%s", r->id);
        rd->spool = r->a->cfg->spool;
        held = 0; /* the reader's now, even if freed just below */
        rd->parts = parts;
        rd->n_parts = n_parts;
        rd->start = first;
        rd->fd = -1;
        parts = NULL; /* the reader owns them now */
        resp = MHD_create_response_from_callback(last - first + 1,
                                                 RESULT_BLOCK_BYTES,
                                                 reader_read, rd,
                                                 reader_free);
        if (resp == NULL)
            reader_free(rd);
    }
    if (resp == NULL) {
        status = api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                           "cannot make the response");
        goto done;
    }
    spec = json_loads(job.spec, 0, NULL);
    result_set_type(r, spec);
    api_reply(r, status, NULL);
    r->reply = resp;

done:
    if (parts != NULL)
        db_parts_free(parts, n_parts);
    if (held)
        reading_done(r->id, r->a->cfg->spool);
    json_decref(spec);
    db_job_clear(&job);
    return status;
}
