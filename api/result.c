/*
 * result.c - GET /v1/jobs/{id}/result: the output of a succeeded job,
 * streamed as the concatenation of its part files, with a strong ETag
 * (If-None-Match gives 304) and a single byte range (Range, If-Range).
 *
 * The parts are opened one at a time, as the stream reaches them, and read
 * with pread at the offset libmicrohttpd asks for; nothing of the result is
 * held in memory. Concatenated gzip members are a valid gzip stream, so
 * compressed results are served the same way. Parquet parts do not
 * concatenate: a Parquet result is served as "PAR1", then bytes
 * [4, data_end) of each part, then the footer pq_merge makes (every
 * part's row groups at their shifted offsets), its length known up front.
 *
 * Also GET /v1/jobs/{id}/manifest: the parts with the bytes, rows and
 * SHA-256 of each (recorded by the worker that committed the part; one
 * missing is hashed here and recorded), whose concatenation is exactly
 * what /result serves (CSV and JSON lines results).
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

#include "../executor/parquet_write.h"
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
        snprintf((*p)->id, sizeof(*p)->id, "%s", id);
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
    char        id[37]; /* the job, registered with reading_add */
    const char *spool;  /* the configuration's, for reading_done */
    db_part    *parts;  /* owned, freed with db_parts_free */
    size_t      n_parts;
    uint64_t    start; /* offset in the whole result of the first byte sent */
    size_t      cur;   /* index of the part being read */
    uint64_t    cur_base; /* offset in the whole result of parts[cur] */
    int         fd;       /* parts[cur] open for reading, or -1 */
    uint64_t    skip;     /* parquet: bytes of each part not sent (its
                             magic), else 0 */
    strbuf tail;          /* parquet: the bytes after the parts (the merged
                             footer); "PAR1" goes before them */
} result_reader;

/* What a Parquet result sends before its parts. */
#define PQ_HEAD     "PAR1"
#define PQ_HEAD_LEN 4

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

    if (rd->skip > 0) {
        /* Parquet: the magic first; then offsets within the parts. */
        if (at < PQ_HEAD_LEN) {
            want = PQ_HEAD_LEN - at < max ? (size_t)(PQ_HEAD_LEN - at) : max;
            memcpy(buf, &PQ_HEAD[at], want);
            return (ssize_t)want;
        }
        at -= PQ_HEAD_LEN;
    }

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
    if (rd->cur == rd->n_parts && at - rd->cur_base < rd->tail.len) {
        at -= rd->cur_base;
        want = rd->tail.len - at < max ? (size_t)(rd->tail.len - at) : max;
        memcpy(buf, rd->tail.data + at, want);
        return (ssize_t)want;
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
        n = pread(rd->fd, buf, want, (off_t)(at - rd->cur_base + rd->skip));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        saved = errno;
        log_error("result: read %s at %" PRIu64 ": %s", rd->parts[rd->cur].path,
                  at - rd->cur_base,
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
    sb_free(&rd->tail);
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

/* Is the job spec's output.format "parquet"? */
static int
result_is_parquet(const json_t *spec)
{
    const json_t *out = json_object_get(spec, "output");
    const char   *format = json_string_value(json_object_get(out, "format"));

    return format != NULL && strcmp(format, "parquet") == 0;
}

/*
 * A Parquet result: the merged footer of the parts into *tail, and each
 * part's size set to the bytes it sends, [4, data_end). Returns 0, or an
 * error (a part is missing, not Parquet, of another schema) with 'err'.
 */
static int
result_parquet(db_part *parts, size_t n, strbuf *tail, sh_err *err)
{
    int         *fds = xcalloc(n, sizeof *fds);
    const char **names = xcalloc(n, sizeof *names);
    int64_t     *data_end = xcalloc(n, sizeof *data_end);
    size_t       i;
    int          rc = 0;

    for (i = 0; i < n; i++)
        fds[i] = -1;
    for (i = 0; i < n && rc == 0; i++) {
        names[i] = parts[i].path;
        fds[i] = open(parts[i].path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int e = errno;

            rc = sh_err_set(err, SH_EIO, "",
                            "cannot open result part "
                            "'%s': %s",
                            parts[i].path, strerror(e));
        }
    }
    if (rc == 0)
        rc = pq_merge(fds, names, n, data_end, tail, err);
    for (i = 0; rc == 0 && i < n; i++)
        parts[i].size_bytes = (uint64_t)data_end[i] - PQ_HEAD_LEN;
    for (i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    free(fds);
    free(names);
    free(data_end);
    return rc;
}

/* The merged length of a Parquet result as its result.bytes; see
 * api_int.h. */
void
api_result_fix_bytes(api_req *r, json_t *job)
{
    const char *st = json_string_value(json_object_get(job, "status"));
    json_t     *res = json_object_get(job, "result");
    db_part    *parts = NULL;
    size_t      n_parts = 0, i;
    uint64_t    size = PQ_HEAD_LEN;
    strbuf      tail = {0};
    db         *d;
    sh_err      err;
    int         rc;

    if (st == NULL || strcmp(st, "succeeded") != 0 || !json_is_object(res)
        || !result_is_parquet(json_object_get(job, "spec")))
        return;
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return;
    rc = api_db_put(r->a, d,
                    db_job_result(d, r->tenant, r->id, &parts, &n_parts, &err));
    if (rc == 0 && n_parts > 0
        && result_parquet(parts, n_parts, &tail, &err) == 0) {
        for (i = 0; i < n_parts; i++)
            size += parts[i].size_bytes;
        json_object_set_new(res, "bytes",
                            json_integer((json_int_t)(size + tail.len)));
    }
    if (parts != NULL)
        db_parts_free(parts, n_parts);
    sb_free(&tail);
}

/* What a result is served as. */
typedef struct result_type {
    const char *ctype;     /* the Content-Type of the stored bytes */
    int         gzip;      /* the parts are gzip members */
    char        file[160]; /* the file name of Content-Disposition */
} result_type;

/*
 * The type of job 'job's result from its spec.output (CSV or JSON lines,
 * gzip or not, or Parquet) and its file name: the job's name (else its
 * id) with the bytes a file name should not hold replaced by '_', and
 * ".csv", ".jsonl" (".gz" after either for gzip) or ".parquet".
 */
static void
result_type_of(const db_job *job, const json_t *spec, result_type *t)
{
    const json_t *out = json_object_get(spec, "output");
    const char   *format = json_string_value(json_object_get(out, "format"));
    const char   *comp = json_string_value(json_object_get(out, "compression"));
    const char   *base = job->name != NULL && job->name[0] != '\0' ? job->name
                                                                   : job->id;
    int           jsonl = format != NULL && strcmp(format, "jsonl") == 0;
    int           parquet = format != NULL && strcmp(format, "parquet") == 0;
    size_t        i, n = 0;

    /* Parquet compresses inside the file: its "compression" is a codec. */
    t->gzip = !parquet && comp != NULL && strcmp(comp, "gzip") == 0;
    t->ctype = parquet   ? "application/vnd.apache.parquet"
               : t->gzip ? "application/gzip"
               : jsonl   ? "application/x-ndjson"
                         : "text/csv; charset=utf-8";
    for (i = 0; base[i] != '\0' && n < 100; i++) {
        char c = base[i];
        int  ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                 || (c >= '0' && c <= '9') || c == '-' || c == '_'
                 || (c == '.' && n > 0);

        t->file[n++] = ok ? c : '_';
    }
    snprintf(t->file + n, sizeof t->file - n, ".%s%s",
             parquet ? "parquet"
             : jsonl ? "jsonl"
                     : "csv",
             t->gzip ? ".gz" : "");
}

/* Non-zero when the Accept-Encoding value 'h' accepts gzip (listed, or
 * "*", without q=0). */
static int
result_accepts_gzip(const char *h)
{
    const char *s = h;

    while (s != NULL && *s != '\0') {
        const char *end = strchr(s, ',');
        size_t      n = end != NULL ? (size_t)(end - s) : strlen(s);
        char        item[64];
        char       *q;

        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        snprintf(item, sizeof item, "%.*s", (int)(n < 63 ? n : 63), s);
        q = strchr(item, ';');
        if (q != NULL)
            *q++ = '\0';
        item[strcspn(item, " \t")] = '\0';
        if (strcasecmp(item, "gzip") == 0 || strcmp(item, "*") == 0) {
            while (q != NULL && (*q == ' ' || *q == '\t'))
                q++;
            if (q == NULL || strncasecmp(q, "q=", 2) != 0
                || strtod(q + 2, NULL) > 0)
                return 1;
        }
        s = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

/*
 * Set Content-Type, Content-Disposition and, for a gzip result, the
 * coding. A gzip result is stored as gzip; it is served as what it is
 * (Content-Type application/gzip, a ".csv.gz" file) unless the client
 * accepts gzip as a content coding (Accept-Encoding: gzip: browsers,
 * requests, curl --compressed, pandas with that header), which gets the
 * same bytes as "Content-Encoding: gzip" of text/csv (or NDJSON), to be
 * decoded transparently, named ".csv". Either way the bytes, and so Range
 * and the manifest, are those of the stored gzip: nothing is recoded. The
 * coded variant has its own ETag ('etag' gets "-gzip" inside the quotes).
 */
static void
result_set_type(api_req *r, const db_job *job, const json_t *spec,
                char etag[64])
{
    result_type t;
    const char *ae = api_header_get(r, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    char        disp[224];
    size_t      n;

    result_type_of(job, spec, &t);
    if (t.gzip) {
        api_header_set(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
        if (ae != NULL && result_accepts_gzip(ae)) {
            const json_t *out = json_object_get(spec, "output");
            const char   *format = json_string_value(
                  json_object_get(out, "format"));

            t.ctype = format != NULL && strcmp(format, "jsonl") == 0
                          ? "application/x-ndjson"
                          : "text/csv; charset=utf-8";
            n = strlen(t.file);
            t.file[n - 3] = '\0'; /* drop ".gz": the client decodes */
            api_header_set(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
            n = strlen(etag);
            if (n > 1 && n + 5 < 64)
                snprintf(etag + n - 1, 64 - (n - 1), "-gzip\"");
        }
    }
    api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE, t.ctype);
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", t.file);
    api_header_set(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
}

int
api_job_result(api_req *r)
{
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
    int                  rc, range = API_RANGE_NONE, status, parquet, held;
    strbuf               tail = {0};
    sh_err               err;
    char                *store_etag = NULL; /* SHEAF_STORE: the object's */
    int                  in_store;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
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
    rc = api_db_put(r->a, d, rc);
    if (rc != 0) {
        status = api_error_sh(r, &err, 0);
        goto done;
    }

    spec = json_loads(job.spec, 0, NULL);
    parquet = result_is_parquet(spec) && n_parts > 0;
    if (parquet && result_parquet(parts, n_parts, &tail, &err) != 0) {
        log_error("result: job %s: %s", r->id, err.msg);
        status = api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                           "cannot read the result's parts: %s", err.msg);
        goto done;
    }
    for (i = 0; i < n_parts; i++)
        size += parts[i].size_bytes;
    if (parquet)
        size += PQ_HEAD_LEN + tail.len;
    snprintf(etag, sizeof etag, "\"%s-%" PRIu64 "\"", r->id, size);
    result_set_type(r, &job, spec, etag);
    api_header_set(r, MHD_HTTP_HEADER_ETAG, etag);
    api_header_set(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");

    inm = api_header_get(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm != NULL && api_etag_listed(inm, etag)) {
        status = api_reply(r, MHD_HTTP_NOT_MODIFIED, NULL);
        goto done;
    }
    /* SHEAF_STORE: served from object storage once it is there. */
    in_store = size > 0 && api_result_store_find(r->id, size, &store_etag);
    if (in_store && (status = api_result_store_redirect(r, r->id)) != 0)
        goto done;
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
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else if (in_store) {
        resp = api_result_store_stream(r->id, store_etag, first, last);
    } else {
        rd = xcalloc(1, sizeof *rd);
        snprintf(rd->id, sizeof rd->id, "%s", r->id);
        rd->spool = r->a->cfg->spool;
        held = 0; /* the reader's now, even if freed just below */
        rd->parts = parts;
        rd->n_parts = n_parts;
        rd->start = first;
        rd->fd = -1;
        rd->skip = parquet ? PQ_HEAD_LEN : 0;
        rd->tail = tail;
        memset(&tail, 0, sizeof tail);
        parts = NULL; /* the reader owns them now */
        resp = MHD_create_response_from_callback(last - first + 1,
                                                 RESULT_BLOCK_BYTES,
                                                 reader_read, rd, reader_free);
        if (resp == NULL)
            reader_free(rd);
    }
    if (resp == NULL) {
        status = api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                           "cannot make the response");
        goto done;
    }
    api_reply(r, status, NULL);
    r->reply = resp;

done:
    free(store_etag);
    if (parts != NULL)
        db_parts_free(parts, n_parts);
    sb_free(&tail);
    if (held)
        reading_done(r->id, r->a->cfg->spool);
    json_decref(spec);
    db_job_clear(&job);
    return status;
}

int
api_job_manifest(api_req *r)
{
    db      *d;
    db_job   job = {0};
    db_part *parts = NULL;
    size_t   n_parts = 0, i;
    char(*shas)[65] = NULL;
    json_t     *arr = NULL, *spec = NULL;
    uint64_t    size = 0, rows = 0, got;
    result_type t;
    char        etag[64], url[API_URL_MAX];
    int         rc, status;
    sh_err      err;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = db_job_get(d, r->tenant, r->id, &job, &err);
    if (rc == 0)
        rc = db_job_result(d, r->tenant, r->id, &parts, &n_parts, &err);
    if (rc == 0) {
        shas = xcalloc(n_parts ? n_parts : 1, sizeof *shas);
        rc = db_parts_sha256(d, r->id, parts, n_parts, shas, &err);
    }
    rc = api_db_put(r->a, d, rc);
    if (rc != 0) {
        status = api_error_sh(r, &err, 0);
        goto done;
    }
    spec = json_loads(job.spec, 0, NULL);
    if (result_is_parquet(spec)) {
        status = api_error(r, MHD_HTTP_CONFLICT, "wrong_state", "",
                           "a Parquet result is one merged file, not its "
                           "parts: check a download against its ETag and "
                           "its footer (the manifest lists the parts of "
                           "CSV and JSON lines results)");
        goto done;
    }
    /* Hash the parts not hashed yet (no connection held meanwhile). */
    for (i = 0; i < n_parts; i++) {
        if (shas[i][0] != '\0')
            continue;
        if (spool_file_sha256(parts[i].path, &got, shas[i], &err) != 0
            || (got != parts[i].size_bytes
                && sh_err_set(&err, SH_EIO, NULL,
                              "result part %s has %" PRIu64 " bytes, %" PRIu64
                              " recorded",
                              parts[i].path, got, parts[i].size_bytes))) {
            status = api_error_sh(r, &err, 0);
            goto done;
        }
        /* A cache: a failure only costs hashing again next time. */
        if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) != NULL)
            api_db_put(r->a, d,
                       db_part_set_sha256(d, r->id, parts[i].path, shas[i],
                                          &err));
    }
    arr = json_array();
    for (i = 0; i < n_parts; i++) {
        json_array_append_new(
            arr, json_pack("{s:I, s:I, s:I, s:s}", "offset", (json_int_t)size,
                           "bytes", (json_int_t)parts[i].size_bytes, "rows",
                           (json_int_t)parts[i].rows, "sha256", shas[i]));
        size += parts[i].size_bytes;
        rows += parts[i].rows;
    }
    snprintf(etag, sizeof etag, "\"%s-%" PRIu64 "\"", r->id, size);
    result_type_of(&job, spec, &t);
    api_job_url(url, r->id, "/result");
    status = api_reply(r, MHD_HTTP_OK,
                       json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o}",
                                 "job_id", r->id, "url", url, "bytes",
                                 (json_int_t)size, "rows", (json_int_t)rows,
                                 "content_type", t.ctype, "filename", t.file,
                                 "etag", etag, "parts", arr));
    arr = NULL;

done:
    json_decref(arr);
    json_decref(spec);
    free(shas);
    if (parts != NULL)
        db_parts_free(parts, n_parts);
    db_job_clear(&job);
    return status;
}
