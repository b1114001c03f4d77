/*
 * datasets.c - uploaded datasets: POST /v1/datasets?name=N streams the raw
 * body to a temporary file under SPOOL/datasets while hashing it (SHA-256),
 * never holding it in memory; GET lists and shows them, DELETE removes one
 * (409 while a queued or running job reads it). Also the planner's
 * resolver of "input": {"dataset": ID or NAME}.
 *
 * An upload's life: the route's 'begin' (ds_begin) checks the name, the
 * digest header and Content-Length (413 before a byte of the body is
 * read), then creates "<id>[.gz].tmp"; each piece of the body is written
 * and hashed (ds_piece); once the body is in, api_dataset_upload checks the
 * digest, commits the file (fsync, rename, fsync of the directory) and only
 * then inserts the row. Whatever ends an upload early (a bad digest, a
 * full disk, the client going away) leaves no file and no row: the
 * completion callback aborts the temporary file (ds_free).
 *
 * With SHEAF_STORE (service/store.h) the committed file is also uploaded
 * to the bucket before the row is inserted (a refused upload keeps
 * nothing: 503), jobs read it from there (the resolver answers its
 * s3:// URL; gzip datasets are still read from the spool), and DELETE
 * removes the object too.
 */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <uuid/uuid.h>

#include <openssl/evp.h>

#include "../lib/fsys.h"
#include "../service/log.h"
#include "../service/spool.h"
#include "../service/store.h"

#define DS_NAME_MAX      200 /* bytes of a dataset's name */
#define DS_LIMIT_DEFAULT 100
#define DS_LIMIT_MAX     1000

/* One upload in flight, owned by its api_req (r->stream). */
typedef struct ds_upload {
    fsys_file     f;       /* the temporary file; f.fd < 0 once done */
    int           open;    /* f holds a file to abort */
    EVP_MD_CTX   *md;      /* SHA-256 of what arrived */
    int64_t       bytes;   /* bytes arrived */
    int64_t       max;     /* SHEAF_MAX_UPLOAD_BYTES */
    unsigned char head[2]; /* the first bytes (the gzip magic) */
    char          id[37];
    char         *name; /* owned */
    char         *file; /* "<id>" or "<id>.gz" (owned) */
    int           gzip;
    char          want[65]; /* the SHA-256 the client announced, hex;
                               "" when none */
    const char *want_from;  /* the header it came from */
} ds_upload;

/* Non-zero when 's' ends with 'suffix'. */
static int
ds_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* 'n' bytes at 'md' as lower-case hex into 'hex' (2n + 1 bytes). */
static void
ds_hex(const unsigned char *md, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
}

/* Decode the base64 of a SHA-256 ('s', 'n' bytes: 44 characters) into
 * hex. Returns 0, or -1 when it is not one. */
static int
ds_b64_sha(const char *s, size_t n, char hex[65])
{
    unsigned char out[48];
    char          in[45];

    if (n != 44 || s[43] != '=' || s[42] == '=')
        return -1;
    memcpy(in, s, 44);
    in[44] = '\0';
    if (EVP_DecodeBlock(out, (const unsigned char *)in, 44) != 33)
        return -1;
    ds_hex(out, 32, hex);
    return 0;
}

/*
 * The SHA-256 the client announced, from X-Content-SHA256 (64 hex
 * digits), Content-Digest (RFC 9530: sha-256=:BASE64:) or Digest
 * (RFC 3230: SHA-256=BASE64). Returns 0 (up->want "" when none was sent)
 * or the status of the 400.
 */
static int
ds_want_digest(api_req *r, ds_upload *up)
{
    const char *h, *v;
    size_t      n;

    if ((h = api_header_get(r, "X-Content-SHA256")) != NULL) {
        up->want_from = "X-Content-SHA256";
        n = strlen(h);
        if (n != 64 || strspn(h, "0123456789abcdefABCDEF") != 64)
            goto bad;
        for (size_t i = 0; i < 64; i++)
            up->want[i] = (char)(h[i] | 0x20);
        up->want[64] = '\0';
        return 0;
    }
    if ((h = api_header_get(r, "Content-Digest")) != NULL) {
        up->want_from = "Content-Digest";
        /* A list of algorithm=:value:; we take the sha-256 member. */
        for (v = h; (v = strcasestr(v, "sha-256")) != NULL; v += 7) {
            const char *p = v + 7, *end;

            if (v != h && v[-1] != ' ' && v[-1] != ',')
                continue;
            while (*p == ' ')
                p++;
            if (*p++ != '=')
                continue;
            while (*p == ' ')
                p++;
            if (*p++ != ':' || (end = strchr(p, ':')) == NULL)
                goto bad;
            if (ds_b64_sha(p, (size_t)(end - p), up->want) != 0)
                goto bad;
            return 0;
        }
        goto bad;
    }
    if ((h = api_header_get(r, "Digest")) != NULL) {
        up->want_from = "Digest";
        for (v = h; (v = strcasestr(v, "sha-256=")) != NULL; v += 8) {
            const char *p = v + 8;

            if (v != h && v[-1] != ' ' && v[-1] != ',')
                continue;
            n = strcspn(p, " ,");
            if (ds_b64_sha(p, n, up->want) != 0)
                goto bad;
            return 0;
        }
        goto bad;
    }
    return 0;

bad:
    return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", up->want_from,
                     "%s must hold the body's SHA-256: 'X-Content-SHA256: "
                     "<64 hex digits>', 'Content-Digest: sha-256=:<base64>:' "
                     "or 'Digest: SHA-256=<base64>'; it was '%.100s'",
                     up->want_from, h);
}

/* Abort the temporary file, if any, and free the upload. */
static void
ds_free(api_req *r)
{
    ds_upload *up = r->stream;

    if (up == NULL)
        return;
    if (up->open)
        fsys_file_abort(&up->f);
    EVP_MD_CTX_free(up->md);
    free(up->name);
    free(up->file);
    free(up);
    r->stream = NULL;
}

/* Take a piece of the body: hash it and write it. */
static int
ds_piece(api_req *r, const char *data, size_t n)
{
    ds_upload *up = r->stream;
    sh_err     err;

    if ((int64_t)n > up->max - up->bytes) {
        fsys_file_abort(&up->f);
        up->open = 0;
        return api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "",
                         "the dataset is larger than SHEAF_MAX_UPLOAD_BYTES "
                         "(%lld bytes)",
                         (long long)up->max);
    }
    for (size_t i = 0; i < n && up->bytes + (int64_t)i < 2; i++)
        up->head[up->bytes + (int64_t)i] = (unsigned char)data[i];
    up->bytes += (int64_t)n;
    EVP_DigestUpdate(up->md, data, n);
    sh_err_clear(&err);
    if (fsys_file_write(&up->f, data, n, &err) != 0) {
        log_error("dataset %s: %s", up->id, err.msg);
        fsys_file_abort(&up->f);
        up->open = 0;
        return api_error(r,
                         err.code == SH_EIO && strstr(err.msg, "space")
                             ? 507
                             : MHD_HTTP_INTERNAL_SERVER_ERROR,
                         err.code == SH_EIO && strstr(err.msg, "space")
                             ? "insufficient_storage"
                             : "internal",
                         "", "cannot store the dataset: %s", err.msg);
    }
    return 0;
}

/* Non-zero when the Content-Type value 'ct' is one a web page's form can
 * send cross-origin without asking (application/x-www-form-urlencoded,
 * multipart/form-data, text/plain): refused, as JSON routes refuse any
 * type but JSON, so that a page cannot make a browser upload. */
static int
ds_form_type(const char *ct)
{
    static const char *const forms[] = {"application/x-www-form-urlencoded",
                                        "multipart/form-data", "text/plain"};

    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t n = strlen(forms[i]);

        if (strncasecmp(ct, forms[i], n) == 0
            && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
            return 1;
    }
    return 0;
}

/* The route's 'begin' of POST /v1/datasets: check what the headers say
 * and open the temporary file. */
static int
ds_begin(api_req *r)
{
    const char *name = api_query(r, "name");
    const char *comp = api_query(r, "compression");
    const char *len_s = api_header_get(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t     max = r->a->cfg->max_upload_bytes;
    ds_upload  *up;
    char       *dir, *path;
    uuid_t      uu;
    sh_err      err;
    int         status;

    if (ds_form_type(api_header_get(r, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return api_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                         "unsupported_media_type", "",
                         "send the file with 'Content-Type: "
                         "application/octet-stream' (or its own type); "
                         "form types are refused (curl --data-binary sends "
                         "one unless told)");
    if (name == NULL || name[0] == '\0')
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "name",
                         "the query parameter 'name' is required: POST "
                         "/v1/datasets?name=events.csv");
    if (strlen(name) > DS_NAME_MAX || !api_utf8_valid(name)
        || strpbrk(name, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"
                         "\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
                         "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f")
               != NULL)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "name",
                         "'name' must be 1 to %d bytes of UTF-8 without "
                         "control characters",
                         DS_NAME_MAX);
    if (util_is_uuid(name, strlen(name)))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "name",
                         "'name' must not be a UUID (jobs name a dataset by "
                         "its id or its name)");
    if (comp != NULL && strcmp(comp, "gzip") != 0 && strcmp(comp, "none") != 0)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "compression",
                         "'compression' must be 'gzip' or 'none'");
    if (len_s != NULL) {
        char              *end;
        unsigned long long len;

        errno = 0;
        len = strtoull(len_s, &end, 10);
        if (errno != 0 || end == len_s || len > (unsigned long long)max)
            return api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "",
                             "the dataset is larger than "
                             "SHEAF_MAX_UPLOAD_BYTES (%lld bytes)",
                             (long long)max);
    }
    up = xcalloc(1, sizeof *up);
    if ((status = ds_want_digest(r, up)) != 0) {
        free(up);
        return status;
    }
    up->max = max;
    up->name = xstrdup(name);
    up->gzip = comp != NULL ? strcmp(comp, "gzip") == 0
                            : ds_ends_with(name, ".gz");
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, up->id);
    up->file = xasprintf("%s%s", up->id, up->gzip ? ".gz" : "");
    up->md = EVP_MD_CTX_new();
    r->stream = up;
    r->stream_piece = ds_piece;
    r->stream_free = ds_free;
    if (up->md == NULL || EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot start a SHA-256");
    dir = spool_datasets_dir(r->a->cfg->spool);
    if (fsys_mkdir(dir, 0755) != 0 && errno != EEXIST) {
        status = api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                           "cannot create %s: %s", dir, strerror(errno));
        free(dir);
        return status;
    }
    free(dir);
    path = spool_dataset_path(r->a->cfg->spool, up->file);
    sh_err_clear(&err);
    status = fsys_file_create(&up->f, path, 0, &err);
    free(path);
    if (status != 0)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot store the dataset: %s", err.msg);
    up->open = 1;
    return 0;
}

/* The dataset object of SPEC section 3. New. */
static json_t *
ds_json(const db_dataset *ds)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", ds->id, "name",
                     ds->name, "bytes", (json_int_t)ds->bytes, "sha256",
                     ds->sha256, "compression", ds->compression, "created_at",
                     ds->created_at);
}

int
api_dataset_upload(api_req *r)
{
    ds_upload    *up = r->stream;
    db_dataset    ds = {0};
    unsigned char md[32];
    unsigned int  md_len = 0;
    char          got[65], location[API_URL_MAX], *path = NULL;
    db           *d;
    sh_err        err;
    int           rc, status;

    if (up == NULL || !up->open)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "the upload was not set up");
    EVP_DigestFinal_ex(up->md, md, &md_len);
    ds_hex(md, 32, got);
    if (up->want[0] != '\0' && strcmp(up->want, got) != 0)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", up->want_from,
                         "the body's SHA-256 is %s, %s says %s: the upload "
                         "was damaged, nothing was kept",
                         got, up->want_from, up->want);
    if (up->gzip
        && (up->bytes < 2 || up->head[0] != 0x1f || up->head[1] != 0x8b))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_data", "",
                         "the dataset is named or marked gzip but the body "
                         "is not gzip data");
    sh_err_clear(&err);
    up->open = 0;
    if (fsys_file_commit(&up->f, &err) != 0)
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot store the dataset: %s", err.msg);
    path = spool_dataset_path(r->a->cfg->spool, up->file);
    /* SHEAF_STORE: in the bucket before the row, so that every node can
     * read it once it is listed. */
    if (store_put_dataset(path, up->file, &err) != 0) {
        log_warn("dataset %s: not stored: %s", up->id, err.msg);
        if (fsys_unlink(path) != 0)
            log_error("dataset %s: cannot remove %s: %s", up->id, path,
                      strerror(errno));
        status = api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                           "the object store did not take the dataset, "
                           "nothing was kept: %s",
                           err.msg);
        goto done;
    }
    snprintf(ds.id, sizeof ds.id, "%s", up->id);
    ds.name = up->name;
    ds.file = up->file;
    ds.bytes = up->bytes;
    snprintf(ds.sha256, sizeof ds.sha256, "%s", got);
    snprintf(ds.compression, sizeof ds.compression, "%s",
             up->gzip ? "gzip" : "none");
    d = api_db_get(r->a, API_POOL_WAIT_MS, &err);
    rc = api_db_put(r->a, d,
                    d != NULL ? db_dataset_insert(d, r->tenant, &ds, &err)
                              : err.code);
    if (rc != 0) {
        sh_err e;

        /* No row: the file (and object) must not stay either. */
        if (fsys_unlink(path) != 0)
            log_error("dataset %s: cannot remove %s: %s", up->id, path,
                      strerror(errno));
        if (store_drop_dataset(up->file, &e) != 0)
            log_error("dataset %s: cannot remove its object: %s", up->id,
                      e.msg);
        status = api_error_sh(r, &err, 0);
        goto done;
    }
    snprintf(location, sizeof location, "/v1/datasets/%s", ds.id);
    api_header_set(r, MHD_HTTP_HEADER_LOCATION, location);
    status = api_reply(r, MHD_HTTP_CREATED, ds_json(&ds));

done:
    free(path);
    return status;
}

int
api_dataset_list(api_req *r)
{
    const char *limit_s = api_query(r, "limit");
    const char *cursor = api_query(r, "cursor");
    const char *name = api_query(r, "name");
    db_dataset *v = NULL;
    size_t      n = 0;
    json_t     *arr, *out;
    char        next[32];
    db         *d;
    sh_err      err;
    int         limit = DS_LIMIT_DEFAULT, more = 0, rc;

    if (limit_s != NULL) {
        char *end;
        long  l;

        errno = 0;
        l = strtol(limit_s, &end, 10);
        if (errno != 0 || end == limit_s || *end != '\0' || l < 1
            || l > DS_LIMIT_MAX)
            return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "limit",
                             "limit must be an integer from 1 to %d",
                             DS_LIMIT_MAX);
        limit = (int)l;
    }
    if ((name != NULL && (strlen(name) > DS_NAME_MAX || !api_utf8_valid(name)))
        || (cursor != NULL && !api_utf8_valid(cursor)))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                         name != NULL ? "name" : "cursor",
                         "a bad name or cursor");
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d,
                    db_dataset_list(d, r->tenant, name, limit, cursor, &v, &n,
                                    &more, &err));
    if (rc != 0)
        return api_error_sh(r, &err, 0);
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ds_json(&v[i]));
    out = json_pack("{s:o}", "datasets", arr);
    if (more && n > 0) {
        snprintf(next, sizeof next, "%lld", (long long)v[n - 1].seq);
        json_object_set_new(out, "next_cursor", json_string(next));
    } else {
        json_object_set_new(out, "next_cursor", json_null());
    }
    db_datasets_free(v, n);
    return api_reply(r, MHD_HTTP_OK, out);
}

int
api_dataset_get(api_req *r)
{
    db_dataset ds = {0};
    db        *d;
    sh_err     err;
    int        rc, status;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d, db_dataset_get(d, r->tenant, r->id, &ds, &err));
    if (rc != 0)
        return api_error_sh(r, &err, 0);
    status = api_reply(r, MHD_HTTP_OK, ds_json(&ds));
    db_dataset_clear(&ds);
    return status;
}

int
api_dataset_delete(api_req *r)
{
    char  *file = NULL, *path;
    db    *d;
    sh_err err;
    int    rc;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d,
                    db_dataset_delete(d, r->tenant, r->id, &file, &err));
    if (rc != 0)
        return api_error_sh(r, &err, 0);
    path = spool_dataset_path(r->a->cfg->spool, file);
    if (fsys_unlink(path) != 0 && errno != ENOENT)
        log_error("dataset %s: cannot remove %s: %s", r->id, path,
                  strerror(errno));
    if (store_drop_dataset(file, &err) != 0)
        log_error("dataset %s: cannot remove its object: %s", r->id, err.msg);
    free(path);
    free(file);
    return api_reply(r, MHD_HTTP_NO_CONTENT, NULL);
}

int
api_dataset_resolve(void *ctx, const char *ref, char **file_out, sh_err *err)
{
    api_ds_refs *refs = ctx;
    api_req     *r = refs->r;
    db_dataset   ds = {0};
    db          *d;
    size_t       i;
    int          rc;

    *file_out = NULL;
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, err)) == NULL)
        return err->code;
    rc = api_db_put(r->a, d, db_dataset_get(d, r->tenant, ref, &ds, err));
    if (rc != 0)
        return rc;
    for (i = 0; i < refs->n; i++)
        if (strcmp(refs->ids[i], ds.id) == 0)
            break;
    if (i == refs->n) {
        if (refs->n == API_DS_REFS_MAX) {
            db_dataset_clear(&ds);
            return sh_err_set(err, SH_EINVAL, NULL,
                              "a job may read at most %d datasets",
                              API_DS_REFS_MAX);
        }
        snprintf(refs->ids[refs->n++], 37, "%s", ds.id);
    }
    /* SHEAF_STORE: read from the bucket, whatever node runs the job. */
    if ((*file_out = store_dataset_url(ds.file, (uint64_t)ds.bytes)) == NULL) {
        *file_out = ds.file;
        ds.file = NULL;
    }
    db_dataset_clear(&ds);
    return 0;
}

/* The route's 'begin' of POST /v1/datasets, for routes.c. */
int
api_dataset_begin(api_req *r)
{
    return ds_begin(r);
}
