/*
 * s3_int.h - what the files of the S3 client (lib/s3*.c) share and nothing
 * else may use: one request's gathered answer, the signed curl handle, the
 * retry rules, a request with retries (s3.c), the bounded XML search and
 * ETag unquoting (s3_xml.c) and the SHA-256 helper (s3_sign.c).
 */
#ifndef SHEAF_S3_INT_H
#define SHEAF_S3_INT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "s3.h"
#include "util.h"

/* What one request gathered from the answer. */
typedef struct s3_answer {
    strbuf   body;      /* the body (bounded for errors by the caller) */
    char    *etag;      /* the ETag header, unquoted, or NULL */
    uint64_t total;     /* the object size of a Content-Range, or 0 */
    int      has_total; /* 1 when 'total' was given */
} s3_answer;

/* The curl header callback: keeps the ETag and a Content-Range's total in
 * the s3_answer 'ctx'. Returns the bytes taken (all of them). */
size_t s3_on_header(char *p, size_t size, size_t n, void *ctx);

/* A new easy handle for 'url' with the signing, timeouts and the
 * x-amz-content-sha256 header ('payload_sha') appended to *headers; the
 * caller cleans up both. Aborts if curl cannot make one. */
CURL *s3_easy_new(const s3_config *c, const char *url,
                  struct curl_slist **headers, const char *payload_sha);

/* Is this curl result or HTTP status worth another try? */
int s3_transient(CURLcode rc, long status);

/* Sleep before try 'attempt' (1, 2, ...): exponential with jitter drawn
 * from *seed. */
void s3_backoff(const s3_config *c, unsigned attempt, unsigned *seed);

/* Fill 'err' from a failed request ('what' names it): S3's <Code> and
 * <Message> if the body has them. Returns the SH_E* code. */
int s3_request_error(CURLcode rc, long status, const s3_answer *a,
                     const char *what, sh_err *err);

/* One request with retries (see s3.c): the answer lands in 'a' (freed by
 * the caller with s3_answer_free) and the status in *status. Returns 0 for
 * a 2xx, else an error. */
int s3_request(const s3_config *c, const char *method, const char *url,
               const void *body, size_t len, const char *ctype, s3_answer *a,
               long *status, const char *what, sh_err *err);

/* Free what 'a' holds (not 'a'). */
void s3_answer_free(s3_answer *a);

/* memmem of 'needle' in 'xml' bounded by 'len' from 'from', or NULL. */
const char *s3_xml_find(const char *xml, size_t len, size_t from,
                        const char *needle);

/* 'etag' (owned, may be NULL) without surrounding quotes, in place;
 * returns it. */
char *s3_unquote(char *etag);

/* Hex SHA-256 of 'n' bytes at 'p' into 'out' (65 bytes). */
void s3_sha256_hex(const void *p, size_t n, char *out);

#endif
