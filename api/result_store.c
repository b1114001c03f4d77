/*
 * result_store.c - GET /v1/jobs/{id}/result from object storage
 * (SHEAF_STORE, service/store.h): a redirect to a presigned URL with
 * SHEAF_S3_PRESIGN=1, else the object streamed (the byte range asked for)
 * through a ranged GET. result.c falls back to the spool when the object
 * is not there (yet).
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/s3.h"
#include "../service/log.h"
#include "../service/store.h"

#define PRESIGN_EXPIRES_S 300

/* The stream of one response, owned by it. */
typedef struct store_reader {
    s3_stream *st;
} store_reader;

static ssize_t
store_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    store_reader *sr = cls;
    sh_err        err;
    ssize_t       n;

    (void)pos; /* libmicrohttpd reads forward, once */
    n = s3_stream_read(sr->st, buf, max, &err);
    if (n > 0)
        return n;
    if (n < 0)
        log_warn("result from the store: %s", err.msg);
    return MHD_CONTENT_READER_END_WITH_ERROR; /* short of the length */
}

static void
store_free(void *cls)
{
    store_reader *sr = cls;

    s3_stream_free(sr->st);
    free(sr);
}

/*
 * Is the result of job 'id' in the store, with 'size' bytes? Sets *etag
 * (the object's, malloc'ed) when it is. Returns 1 or 0 (not there, or the
 * store is off or unreachable: the spool serves it).
 */
int
api_result_store_find(const char *id, uint64_t size, char **etag)
{
    const s3_config *c;
    const char      *bucket;
    char            *key;
    uint64_t         got = 0;
    sh_err           err;
    int              rc;

    *etag = NULL;
    if (!store_get(&c, &bucket, NULL))
        return 0;
    key = store_result_key(id);
    rc = s3_head(c, bucket, key, &got, etag, &err);
    if (rc != 0 && rc != SH_ENOENT)
        log_warn("job %s: result in the store: %s", id, err.msg);
    free(key);
    if (rc == 0 && got == size)
        return 1;
    free(*etag);
    *etag = NULL;
    return 0;
}

/*
 * With SHEAF_S3_PRESIGN=1: make the reply a 302 to a presigned URL of
 * object 'key' of the store and return 302; else return 0.
 */
int
api_store_redirect(api_req *r, const char *key)
{
    const char      *v = getenv("SHEAF_S3_PRESIGN");
    const s3_config *c;
    const char      *bucket;
    char            *url;

    if (v == NULL || strcmp(v, "1") != 0 || !store_get(&c, &bucket, NULL))
        return 0;
    url = s3_presign_get(c, bucket, key, PRESIGN_EXPIRES_S, time(NULL));
    api_header_set(r, MHD_HTTP_HEADER_LOCATION, url);
    free(url);
    return api_reply(r, MHD_HTTP_FOUND, NULL);
}

/*
 * With SHEAF_S3_PRESIGN=1: make the reply a 302 to a presigned URL of
 * job 'id''s result object and return 302; else return 0.
 */
int
api_result_store_redirect(api_req *r, const char *id)
{
    char *key = store_result_key(id);
    int   rc = api_store_redirect(r, key);

    free(key);
    return rc;
}

/*
 * A response streaming bytes ['first', 'last'] of object 'key' of the
 * store ('etag': the object's, so a replaced object fails the stream).
 * NULL when the store is off or libmicrohttpd cannot make one.
 */
struct MHD_Response *
api_store_stream(const char *key, const char *etag, uint64_t first,
                 uint64_t last)
{
    const s3_config     *c;
    const char          *bucket;
    store_reader        *sr;
    struct MHD_Response *resp;

    if (!store_get(&c, &bucket, NULL))
        return NULL;
    sr = xcalloc(1, sizeof *sr);
    sr->st = s3_stream_open(c, bucket, key, first, last + 1, etag);
    resp = MHD_create_response_from_callback(last - first + 1, 64 * 1024,
                                             store_read, sr, store_free);
    if (resp == NULL)
        store_free(sr);
    return resp;
}

/*
 * A response streaming bytes ['first', 'last'] of job 'id''s result
 * object (see api_store_stream).
 */
struct MHD_Response *
api_result_store_stream(const char *id, const char *etag, uint64_t first,
                        uint64_t last)
{
    char                *key = store_result_key(id);
    struct MHD_Response *resp = api_store_stream(key, etag, first, last);

    free(key);
    return resp;
}
