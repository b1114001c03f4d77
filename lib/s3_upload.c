/*
 * s3_upload.c - S3 multipart upload (see s3.h): begin, one request per
 * part keeping its ETag, complete with the parts' list, or abort.
 */
#include "s3.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"
#include "util.h"

/* ---- multipart upload ------------------------------------------------ */

struct s3_upload {
    const s3_config *c;      /* borrowed */
    char            *bucket; /* owned */
    char            *key;    /* owned */
    char            *id;     /* the upload id (owned) */
    char           **etags;  /* the parts' ETags (owned) */
    size_t           n_parts;
    int              finished; /* completed or aborted */
};

/* The URL of the upload with 'extra' ("partNumber=3&") before uploadId. */
static char *
upload_url(const s3_upload *u, const char *extra)
{
    char *eid = s3_uri_encode(u->id, 0);
    char *q = xasprintf("%suploadId=%s", extra ? extra : "", eid);
    char *url = s3_request_url(u->c, u->bucket, u->key, q);

    free(eid);
    free(q);
    return url;
}

s3_upload *
s3_upload_begin(const s3_config *c, const char *bucket, const char *key,
                sh_err *err)
{
    char      *url = s3_request_url(c, bucket, key, "uploads=");
    s3_answer  a = {0};
    long       status;
    s3_upload *u = NULL;
    char      *id = NULL;

    if (s3_request(c, "POST", url, NULL, 0, NULL, &a, &status,
                   "CreateMultipartUpload", err)
        == 0) {
        id = s3_xml_text(a.body.data ? a.body.data : "", a.body.len, "UploadId",
                         NULL);
        if (id == NULL || id[0] == '\0') {
            sh_err_set(err, SH_EDATA, "", "S3 gave no UploadId for s3://%s/%s",
                       bucket, key);
            free(id);
        } else {
            u = xcalloc(1, sizeof *u);
            u->c = c;
            u->bucket = xstrdup(bucket);
            u->key = xstrdup(key);
            u->id = id;
        }
    }
    s3_answer_free(&a);
    free(url);
    return u;
}

int
s3_upload_part(s3_upload *u, const void *data, size_t len, sh_err *err)
{
    char      extra[48];
    char     *url;
    s3_answer a = {0};
    long      status;
    int       rc;

    snprintf(extra, sizeof extra, "partNumber=%zu&", u->n_parts + 1);
    url = upload_url(u, extra);
    rc = s3_request(u->c, "PUT", url, data ? data : "", len, NULL, &a, &status,
                    "UploadPart", err);
    if (rc == 0 && a.etag == NULL) {
        rc = sh_err_set(err, SH_EDATA, "", "S3 gave no ETag for part %zu",
                        u->n_parts + 1);
    }
    if (rc == 0) {
        u->etags = xrealloc(u->etags, (u->n_parts + 1) * sizeof *u->etags);
        u->etags[u->n_parts++] = a.etag;
        a.etag = NULL;
    }
    s3_answer_free(&a);
    free(url);
    return rc;
}

int
s3_upload_complete(s3_upload *u, sh_err *err)
{
    strbuf    body = {0};
    s3_answer a = {0};
    char     *url = upload_url(u, NULL);
    long      status;
    size_t    i;
    int       rc;

    sb_puts(&body, "<CompleteMultipartUpload>");
    for (i = 0; i < u->n_parts; i++) {
        sb_printf(&body,
                  "<Part><PartNumber>%zu</PartNumber>"
                  "<ETag>\"%s\"</ETag></Part>",
                  i + 1, u->etags[i]);
    }
    sb_puts(&body, "</CompleteMultipartUpload>");
    rc = s3_request(u->c, "POST", url, body.data, body.len, "application/xml",
                    &a, &status, "CompleteMultipartUpload", err);
    /* A 200 may still carry an <Error> (S3 documents it). */
    if (rc == 0 && a.body.data != NULL
        && s3_xml_find(a.body.data, a.body.len, 0, "<Error>") != NULL) {
        rc = s3_request_error(CURLE_OK, status, &a, "CompleteMultipartUpload",
                              err);
    }
    if (rc == 0)
        u->finished = 1;
    s3_answer_free(&a);
    sb_free(&body);
    free(url);
    return rc;
}

int
s3_upload_abort(s3_upload *u, sh_err *err)
{
    char     *url = upload_url(u, NULL);
    s3_answer a = {0};
    long      status;
    int       rc;

    rc = s3_request(u->c, "DELETE", url, NULL, 0, NULL, &a, &status,
                    "AbortMultipartUpload", err);
    if (rc != 0 && status == 404)
        rc = 0; /* gone already */
    if (rc == 0)
        u->finished = 1;
    s3_answer_free(&a);
    free(url);
    return rc;
}

const char *
s3_upload_id(const s3_upload *u)
{
    return u->id;
}

void
s3_upload_free(s3_upload *u)
{
    size_t i;

    if (u == NULL)
        return;
    if (!u->finished)
        s3_upload_abort(u, NULL);
    for (i = 0; i < u->n_parts; i++)
        free(u->etags[i]);
    free(u->etags);
    free(u->bucket);
    free(u->key);
    free(u->id);
    free(u);
}
