/*
 * s3.c - the S3 client (see s3.h): configuration and URLs, and requests on
 * libcurl signed with its SigV4, retried with backoff (HEAD, PUT, DELETE,
 * listing). The ranged-GET stream is in s3_stream.c, multipart upload in
 * s3_upload.c, XML answers in s3_xml.c, presigned URLs in s3_sign.c; what
 * they share is in s3_int.h.
 */
#include "s3.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "s3_int.h"
#include "util.h"

#define S3_BACKOFF_MAX 5000 /* ms, the longest wait between tries */

/* ---- configuration and URLs ------------------------------------------ */

/* A copy of the environment variable 'name', or NULL when unset or empty. */
static char *
env_dup(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? xstrdup(v) : NULL;
}

int
s3_config_from_env(s3_config *c, sh_err *err)
{
    const char *v;

    memset(c, 0, sizeof *c);
    c->endpoint = env_dup("SHEAF_S3_ENDPOINT");
    if (c->endpoint != NULL) {
        size_t n = strlen(c->endpoint);

        while (n > 0 && c->endpoint[n - 1] == '/')
            c->endpoint[--n] = '\0';
    }
    c->region = env_dup("AWS_REGION");
    if (c->region == NULL)
        c->region = env_dup("AWS_DEFAULT_REGION");
    if (c->region == NULL)
        c->region = xstrdup("us-east-1");
    c->access_key = env_dup("AWS_ACCESS_KEY_ID");
    c->secret_key = env_dup("AWS_SECRET_ACCESS_KEY");
    c->session_token = env_dup("AWS_SESSION_TOKEN");
    c->max_retries = 5;
    if ((v = getenv("SHEAF_S3_RETRIES")) != NULL && v[0] != '\0')
        c->max_retries = atoi(v) < 0 ? 0 : atoi(v);
    c->connect_timeout_ms = 10000;
    c->stall_timeout_ms = 30000;
    c->backoff_ms = 100;
    if (c->access_key == NULL || c->secret_key == NULL) {
        s3_config_free(c);
        return sh_err_set(err, SH_EINVAL, "",
                          "s3:// paths need credentials: set "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    return 0;
}

void
s3_config_free(s3_config *c)
{
    if (c == NULL)
        return;
    free(c->endpoint);
    free(c->region);
    free(c->access_key);
    free(c->secret_key);
    free(c->session_token);
    memset(c, 0, sizeof *c);
}

int
s3_is_url(const char *path)
{
    return path != NULL && strncmp(path, "s3://", 5) == 0;
}

/* Is 'b' a bucket name S3 accepts (3-63 of a-z 0-9 . -, starting and
 * ending with a letter or digit)? */
static int
bucket_ok(const char *b, size_t n)
{
    size_t i;

    if (n < 3 || n > 63)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = b[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.'
              || ch == '-'))
            return 0;
    }
    return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

int
s3_parse_url(const char *url, int allow_empty_key, const char *field,
             char **bucket, char **key, sh_err *err)
{
    const char *b, *slash;
    size_t      i, n;

    *bucket = *key = NULL;
    if (!s3_is_url(url)) {
        return sh_err_set(err, SH_EINVAL, field,
                          "'%s' is not an s3:// URL (s3://bucket/key)", url);
    }
    b = url + 5;
    slash = strchr(b, '/');
    n = slash ? (size_t)(slash - b) : strlen(b);
    if (!bucket_ok(b, n)) {
        return sh_err_set(err, SH_EINVAL, field,
                          "bad bucket name in '%s': 3 to 63 characters of "
                          "a-z, 0-9, '.' and '-'",
                          url);
    }
    if ((slash == NULL || slash[1] == '\0') && !allow_empty_key) {
        return sh_err_set(err, SH_EINVAL, field,
                          "'%s' names a bucket but no object; give "
                          "s3://bucket/key",
                          url);
    }
    if (slash != NULL) {
        if (strlen(slash + 1) > 1024) {
            return sh_err_set(err, SH_EINVAL, field,
                              "the key of '%.64s...' is longer than 1024 "
                              "bytes",
                              url);
        }
        for (i = 1; slash[i]; i++) {
            if ((unsigned char)slash[i] < 0x20 || slash[i] == 0x7f) {
                return sh_err_set(err, SH_EINVAL, field,
                                  "the key of an s3:// URL cannot hold "
                                  "control characters");
            }
        }
    }
    *bucket = xstrndup(b, n);
    *key = xstrdup(slash ? slash + 1 : "");
    return 0;
}

char *
s3_request_url(const s3_config *c, const char *bucket, const char *key,
               const char *query)
{
    char *ekey = s3_uri_encode(key ? key : "", 1);
    char *url;

    if (c->endpoint != NULL) {
        url = xasprintf("%s/%s/%s%s%s", c->endpoint, bucket, ekey,
                        query ? "?" : "", query ? query : "");
    } else {
        url = xasprintf("https://%s.s3.%s.amazonaws.com/%s%s%s", bucket,
                        c->region, ekey, query ? "?" : "", query ? query : "");
    }
    free(ekey);
    return url;
}

/* ---- requests -------------------------------------------------------- */

/* The curl header callback: keeps the ETag and a Content-Range's total in
 * the s3_answer 'ctx'. */
size_t
s3_on_header(char *p, size_t size, size_t n, void *ctx)
{
    s3_answer *a = ctx;
    size_t     len = size * n;

    if (len > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        size_t i = 5, j = len;

        while (i < j && (p[i] == ' ' || p[i] == '\t'))
            i++;
        while (j > i
               && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '))
            j--;
        free(a->etag);
        a->etag = s3_unquote(xstrndup(p + i, j - i));
    } else if (len > 14 && strncasecmp(p, "Content-Range:", 14) == 0) {
        const char *slash = memchr(p, '/', len);

        if (slash != NULL && slash[1] >= '0' && slash[1] <= '9') {
            a->total = strtoull(slash + 1, NULL, 10);
            a->has_total = 1;
        }
    }
    return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ctx)
{
    s3_answer *a = ctx;

    sb_append(&a->body, p, size * n);
    return size * n;
}

/* A new easy handle with the signing, timeouts and 'headers' set. */
CURL *
s3_easy_new(const s3_config *c, const char *url, struct curl_slist **headers,
            const char *payload_sha)
{
    CURL *h = curl_easy_init();
    char  sigv4[96], *hdr;

    if (h == NULL) {
        fprintf(stderr, "s3: curl_easy_init failed\n");
        abort();
    }
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", c->region);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     c->stall_timeout_ms >= 2000 ? c->stall_timeout_ms / 1000
                                                 : 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    hdr = xasprintf("x-amz-content-sha256: %s", payload_sha);
    *headers = curl_slist_append(*headers, hdr);
    free(hdr);
    if (c->session_token != NULL) {
        hdr = xasprintf("x-amz-security-token: %s", c->session_token);
        *headers = curl_slist_append(*headers, hdr);
        free(hdr);
    }
    /* No "Expect: 100-continue" round trip before bodies. */
    *headers = curl_slist_append(*headers, "Expect:");
    return h;
}

/* Is this curl result or HTTP status worth another try? */
int
s3_transient(CURLcode rc, long status)
{
    if (rc != CURLE_OK) {
        return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT
               || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
               || rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE
               || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_HTTP2
               || rc == CURLE_HTTP2_STREAM;
    }
    return status == 429 || status >= 500;
}

/* Sleep before try 'attempt' (1, 2, ...): exponential with jitter. */
void
s3_backoff(const s3_config *c, unsigned attempt, unsigned *seed)
{
    long     ms = c->backoff_ms;
    unsigned i;

    for (i = 1; i < attempt && ms < S3_BACKOFF_MAX; i++)
        ms *= 2;
    if (ms > S3_BACKOFF_MAX)
        ms = S3_BACKOFF_MAX;
    /* Full jitter in [ms/2, ms]. */
    ms = ms / 2 + (long)(rand_r(seed) % (unsigned)(ms / 2 + 1));
    usleep((useconds_t)ms * 1000);
}

/* Fill 'err' from a failed request: S3's <Code> and <Message> if the body
 * has them. Returns the SH_E* code. */
int
s3_request_error(CURLcode rc, long status, const s3_answer *a, const char *what,
                 sh_err *err)
{
    char *code = NULL, *msg = NULL;
    int   sh;

    if (rc != CURLE_OK) {
        return sh_err_set(err, SH_EIO, "", "S3 %s failed: %s", what,
                          curl_easy_strerror(rc));
    }
    if (a->body.data != NULL) {
        code = s3_xml_text(a->body.data, a->body.len, "Code", NULL);
        msg = s3_xml_text(a->body.data, a->body.len, "Message", NULL);
    }
    if (status == 404
        || (code
            && (strcmp(code, "NoSuchKey") == 0
                || strcmp(code, "NoSuchBucket") == 0)))
        sh = SH_ENOENT;
    else if (status == 412)
        sh = SH_EDATA;
    else
        sh = SH_EIO;
    sh_err_set(err, sh, "", "S3 %s failed: HTTP %ld%s%s%s%s", what, status,
               code ? " " : "", code ? code : "", msg ? ": " : "",
               msg ? msg : "");
    free(code);
    free(msg);
    return sh;
}

/*
 * One request with retries: 'method' ("GET", "HEAD", "PUT", "POST",
 * "DELETE"), 'body' of 'len' bytes (NULL: none), 'ctype' its content type.
 * The answer's body, ETag and status land in 'a' and *status. Returns 0
 * for a 2xx, else an error.
 */
int
s3_request(const s3_config *c, const char *method, const char *url,
           const void *body, size_t len, const char *ctype, s3_answer *a,
           long *status, const char *what, sh_err *err)
{
    char     sha[65];
    unsigned attempt = 0, seed = (unsigned)now_ms() ^ (unsigned)getpid();
    CURLcode rc = CURLE_OK;
    int      ret;

    s3_sha256_hex(body ? body : "", body ? len : 0, sha);
    for (;;) {
        struct curl_slist *headers = NULL;
        CURL              *h = s3_easy_new(c, url, &headers, sha);

        sb_reset(&a->body);
        free(a->etag);
        a->etag = NULL;
        *status = 0;
        if (strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        }
        if (body != NULL || strcmp(method, "POST") == 0
            || strcmp(method, "PUT") == 0) {
            char *ct = xasprintf("Content-Type: %s",
                                 ctype ? ctype : "application/octet-stream");

            headers = curl_slist_append(headers, ct);
            free(ct);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)(body ? len : 0));
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                         c->stall_timeout_ms * 4 + (long)(len >> 10));
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        if (rc == CURLE_OK && strcmp(method, "HEAD") == 0) {
            curl_off_t cl = -1;

            curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            a->total = cl >= 0 ? (uint64_t)cl : 0;
            a->has_total = cl >= 0;
        }
        curl_easy_cleanup(h);
        curl_slist_free_all(headers);
        if (rc == CURLE_OK && *status >= 200 && *status < 300)
            return 0;
        if (!s3_transient(rc, *status) || attempt >= (unsigned)c->max_retries)
            break;
        attempt++;
        s3_backoff(c, attempt, &seed);
    }
    ret = s3_request_error(rc, *status, a, what, err);
    return ret;
}

/* Free what 'a' holds (not 'a'). */
void
s3_answer_free(s3_answer *a)
{
    sb_free(&a->body);
    free(a->etag);
}

int
s3_head(const s3_config *c, const char *bucket, const char *key,
        uint64_t *size_bytes, char **etag, sh_err *err)
{
    char     *url = s3_request_url(c, bucket, key, NULL);
    s3_answer a = {0};
    long      status;
    int       rc;

    rc = s3_request(c, "HEAD", url, NULL, 0, NULL, &a, &status, "HEAD", err);
    if (rc == SH_ENOENT || (rc != 0 && status == 404)) {
        rc = sh_err_set(err, SH_ENOENT, "", "s3://%s/%s does not exist", bucket,
                        key);
    } else if (rc == 0 && !a.has_total) {
        rc = sh_err_set(err, SH_EDATA, "", "S3 gave no size for s3://%s/%s",
                        bucket, key);
    }
    if (rc == 0) {
        *size_bytes = a.total;
        if (etag != NULL) {
            *etag = a.etag ? a.etag : xstrdup("");
            a.etag = NULL;
        }
    }
    s3_answer_free(&a);
    free(url);
    return rc;
}

int
s3_put(const s3_config *c, const char *bucket, const char *key,
       const void *data, size_t len, sh_err *err)
{
    char     *url = s3_request_url(c, bucket, key, NULL);
    s3_answer a = {0};
    long      status;
    int       rc;

    rc = s3_request(c, "PUT", url, data ? data : "", len, NULL, &a, &status,
                    "PUT", err);
    s3_answer_free(&a);
    free(url);
    return rc;
}

int
s3_delete(const s3_config *c, const char *bucket, const char *key, sh_err *err)
{
    char     *url = s3_request_url(c, bucket, key, NULL);
    s3_answer a = {0};
    long      status;
    int       rc;

    rc = s3_request(c, "DELETE", url, NULL, 0, NULL, &a, &status, "DELETE",
                    err);
    if (rc != 0 && status == 404)
        rc = 0;
    s3_answer_free(&a);
    free(url);
    return rc;
}

int
s3_list(const s3_config *c, const char *bucket, const char *prefix,
        size_t max_objects, s3_object **objs, size_t *n_objs, sh_err *err)
{
    char     *token = NULL, *eprefix = s3_uri_encode(prefix, 0);
    size_t    cap = 0;
    s3_answer a = {0};
    int       rc = 0;

    *objs = NULL;
    *n_objs = 0;
    do {
        char *etok = token ? s3_uri_encode(token, 0) : NULL;
        /* The query in SigV4's canonical order: sorted by name. */
        char *query = xasprintf("%s%s%slist-type=2&prefix=%s",
                                etok ? "continuation-token=" : "",
                                etok ? etok : "", etok ? "&" : "", eprefix);
        char *url = s3_request_url(c, bucket, NULL, query);
        long  status;

        rc = s3_request(c, "GET", url, NULL, 0, NULL, &a, &status, "list", err);
        free(etok);
        free(query);
        free(url);
        free(token);
        token = NULL;
        if (rc == 0) {
            rc = s3_xml_list_page(a.body.data ? a.body.data : "", a.body.len,
                                  objs, n_objs, &cap, &token, err);
        }
        if (rc == 0 && *n_objs > max_objects) {
            rc = sh_err_set(err, SH_EINVAL, "",
                            "more than %zu objects in s3://%s/%s*", max_objects,
                            bucket, prefix);
        }
    } while (rc == 0 && token != NULL);
    free(token);
    free(eprefix);
    s3_answer_free(&a);
    if (rc != 0) {
        s3_objects_free(*objs, *n_objs);
        *objs = NULL;
        *n_objs = 0;
    }
    return rc;
}
