/*
 * s3.h - a small S3 client on libcurl: objects named s3://bucket/key read
 * with ranged GETs streamed through a pull interface (retried with backoff
 * and jitter on 5xx, throttling and timeouts, resuming at the last byte
 * received), HEAD, ListObjectsV2 by prefix, PUT, multipart upload, DELETE,
 * and presigned GET URLs.
 *
 * Requests are signed with libcurl's AWS Signature V4
 * (CURLOPT_AWS_SIGV4, "aws:amz:REGION:s3"); presigned URLs are signed
 * here (SigV4 query signing, HMAC-SHA256 from libcrypto). Credentials come
 * from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
 * AWS_REGION (or AWS_DEFAULT_REGION; default us-east-1); SHEAF_S3_ENDPOINT
 * ("http://127.0.0.1:9000") sends path-style requests to an S3-compatible
 * server (MinIO, Ceph, s3rver), else AWS's virtual-hosted endpoint is used.
 *
 * Errors are SH_EIO (the network, a 5xx after the retries: retryable),
 * SH_ENOENT (NoSuchKey, NoSuchBucket), SH_EINVAL (a bad s3:// URL or a
 * missing credential) or SH_EDATA (an answer that cannot be read), with
 * S3's error code and message in the sh_err. Every call is blocking and
 * uses its own curl handle: a config may be shared by threads that only
 * read it.
 */
#ifndef SHEAF_S3_H
#define SHEAF_S3_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "err.h"

/* Where and as whom requests go. */
typedef struct s3_config {
    char *endpoint;      /* "http://host:port" (path-style), or NULL: AWS */
    char *region;        /* "us-east-1" */
    char *access_key;    /* AWS_ACCESS_KEY_ID */
    char *secret_key;    /* AWS_SECRET_ACCESS_KEY */
    char *session_token; /* AWS_SESSION_TOKEN, or NULL */
    int   max_retries;   /* retries of a failed request (default 5) */
    long  connect_timeout_ms; /* default 10 s */
    long  stall_timeout_ms;   /* no byte received for this long: retry
                                 (default 30 s) */
    long backoff_ms;          /* first retry's delay, doubled each time (100) */
} s3_config;

/*
 * Fill 'c' from the environment (see the file comment). Returns 0, or
 * SH_EINVAL when a credential is missing. Free with s3_config_free.
 */
int s3_config_from_env(s3_config *c, sh_err *err);

/* Free the strings of 'c' (NULL-safe) and zero it. */
void s3_config_free(s3_config *c);

/* Does 'path' start with "s3://"? */
int s3_is_url(const char *path);

/*
 * Split "s3://bucket/key" into *bucket and *key (malloc'ed; the caller
 * frees both). The key may be empty ("s3://bucket" or "s3://bucket/") only
 * when 'allow_empty_key'. Returns 0 or SH_EINVAL (message names the URL's
 * fault; 'field' is the JSON path for errors).
 */
int s3_parse_url(const char *url, int allow_empty_key, const char *field,
                 char **bucket, char **key, sh_err *err);

/*
 * The request URL of 'key' in 'bucket' (key NULL: the bucket), with the
 * key percent-encoded (every byte but A-Z a-z 0-9 - _ . ~ /) and 'query'
 * (already canonical: sorted, encoded; NULL for none) appended after '?'.
 * The caller frees it.
 */
char *s3_request_url(const s3_config *c, const char *bucket, const char *key,
                     const char *query);

/* Percent-encode 's' as SigV4 wants (uppercase hex); '/' is kept when
 * 'keep_slash'. Appends to a new string the caller frees. */
char *s3_uri_encode(const char *s, int keep_slash);

/* ---- objects -------------------------------------------------------- */

/*
 * HEAD of an object: its size and (when 'etag' is not NULL) its ETag with
 * the quotes removed (malloc'ed; the caller frees it). Returns 0, SH_ENOENT
 * or SH_EIO.
 */
int s3_head(const s3_config *c, const char *bucket, const char *key,
            uint64_t *size_bytes, char **etag, sh_err *err);

typedef struct s3_stream s3_stream;

/*
 * A stream of bytes ['start', 'end') of an object ('end' UINT64_MAX: to
 * the object's end). Nothing is sent until the first read. 'if_match'
 * (an ETag, or NULL) makes the reads fail when the object changed.
 * Strings are copied; 'c' is borrowed and must outlive the stream.
 */
s3_stream *s3_stream_open(const s3_config *c, const char *bucket,
                          const char *key, uint64_t start, uint64_t end,
                          const char *if_match);

/*
 * Read up to 'n' bytes of the stream into 'buf'. Returns how many (0 at
 * the end of the range or of the object), or SH_EIO / SH_ENOENT /
 * SH_EDATA with 'err' filled. A connection that breaks, stalls or answers
 * 5xx is retried with backoff, asking for the bytes from the last one
 * received, up to max_retries times in a row. At most 256 KiB are held in
 * memory whatever the range's size.
 */
ssize_t s3_stream_read(s3_stream *s, char *buf, size_t n, sh_err *err);

/* The requests the stream has sent (the first and its retries). */
unsigned s3_stream_requests(const s3_stream *s);

/* NULL-safe; a transfer in progress is dropped. */
void s3_stream_free(s3_stream *s);

/* Upload 'len' bytes of 'data' as the object (a single PUT). */
int s3_put(const s3_config *c, const char *bucket, const char *key,
           const void *data, size_t len, sh_err *err);

/* DELETE an object (a missing one is no error). */
int s3_delete(const s3_config *c, const char *bucket, const char *key,
              sh_err *err);

/* One object of a listing. */
typedef struct s3_object {
    char    *key; /* owned */
    uint64_t size_bytes;
    char    *etag; /* owned, without quotes */
} s3_object;

/*
 * Every object whose key starts with 'prefix' (ListObjectsV2, following
 * continuation tokens), in key order, at most 'max_objects' (more is
 * SH_EINVAL). *objs is malloc'ed (free with s3_objects_free).
 */
int s3_list(const s3_config *c, const char *bucket, const char *prefix,
            size_t max_objects, s3_object **objs, size_t *n_objs, sh_err *err);

void s3_objects_free(s3_object *objs, size_t n);

/* ---- multipart upload ------------------------------------------------ */

/*
 * A multipart upload: parts of at least 5 MiB (the last may be smaller)
 * sent as they fill, then completed, or aborted (no object, no parts left
 * on the server). Strings copied; 'c' borrowed.
 */
typedef struct s3_upload s3_upload;

/* CreateMultipartUpload. NULL with 'err' set on failure. */
s3_upload *s3_upload_begin(const s3_config *c, const char *bucket,
                           const char *key, sh_err *err);

/* Upload the next part (numbered from 1). Returns 0 or an error. */
int s3_upload_part(s3_upload *u, const void *data, size_t len, sh_err *err);

/* CompleteMultipartUpload: the object appears. Returns 0 or an error (the
 * upload then remains and must still be aborted or freed). */
int s3_upload_complete(s3_upload *u, sh_err *err);

/* AbortMultipartUpload. Returns 0 or an error. */
int s3_upload_abort(s3_upload *u, sh_err *err);

/* The upload id S3 gave (borrowed). */
const char *s3_upload_id(const s3_upload *u);

/* Free 'u' (NULL-safe); an upload neither completed nor aborted is
 * aborted first (errors ignored). */
void s3_upload_free(s3_upload *u);

/* ---- presigning -------------------------------------------------------- */

/*
 * A presigned GET URL of the object, valid 'expires_s' seconds (1 to
 * 604800) from 'now'. The caller frees it.
 */
char *s3_presign_get(const s3_config *c, const char *bucket, const char *key,
                     long expires_s, time_t now);

/*
 * SigV4 query signing of any request, for s3_presign_get and the tests
 * (AWS's documented example): 'base_url' is scheme://host, 'host' the
 * Host header's value, 'canonical_uri' the encoded path, 'amz_date'
 * "YYYYMMDDTHHMMSSZ". Returns the full URL; the caller frees it.
 */
char *s3_presign(const char *method, const char *base_url, const char *host,
                 const char *canonical_uri, const char *region,
                 const char *access_key, const char *secret_key,
                 const char *session_token, const char *amz_date,
                 long expires_s);

/* ---- XML answers (exposed for the tests) ------------------------------- */

/*
 * The text of the first <tag>...</tag> in 'xml' from '*pos' on, with the
 * five XML entities and numeric references decoded (malloc'ed); *pos moves
 * past the closing tag. NULL when there is none.
 */
char *s3_xml_text(const char *xml, size_t len, const char *tag, size_t *pos);

/*
 * The objects of one ListObjectsV2 answer page appended to *objs (grown
 * as needed; *n_objs and *cap updated), and its continuation token
 * (malloc'ed, or NULL when the listing is complete). Returns 0 or
 * SH_EDATA.
 */
int s3_xml_list_page(const char *xml, size_t len, s3_object **objs,
                     size_t *n_objs, size_t *cap, char **next_token,
                     sh_err *err);

#endif
