/*
 * s3.c - the S3 client (see s3.h): requests on libcurl signed with its
 * SigV4, a pull stream over the multi interface (the write callback pauses
 * the transfer when the stream's buffer is full), XML answers read by a
 * few bounded string searches, and SigV4 query signing for presigned URLs.
 */
#include "s3.h"

#include <curl/curl.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

#define S3_STREAM_BUF  (256u << 10) /* bytes a stream holds at most */
#define S3_ERRBODY_MAX (64u << 10)  /* bytes of an error answer kept */
#define S3_BACKOFF_MAX 5000         /* ms, the longest wait between tries */
#define S3_EMPTY_SHA \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

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

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
              || ch == '.' || ch == '-'))
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
                          "a-z, 0-9, '.' and '-'", url);
    }
    if ((slash == NULL || slash[1] == '\0') && !allow_empty_key) {
        return sh_err_set(err, SH_EINVAL, field,
                          "'%s' names a bucket but no object; give "
                          "s3://bucket/key", url);
    }
    if (slash != NULL) {
        if (strlen(slash + 1) > 1024) {
            return sh_err_set(err, SH_EINVAL, field,
                              "the key of '%.64s...' is longer than 1024 "
                              "bytes", url);
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
s3_uri_encode(const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    strbuf            sb = {0};
    const unsigned char *p;

    for (p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
            || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'
            || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
            sb_putc(&sb, (char)*p);
        } else {
            sb_putc(&sb, '%');
            sb_putc(&sb, hex[*p >> 4]);
            sb_putc(&sb, hex[*p & 15]);
        }
    }
    return sb.data != NULL ? sb.data : xstrdup("");
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
                        c->region, ekey, query ? "?" : "",
                        query ? query : "");
    }
    free(ekey);
    return url;
}

/* ---- XML --------------------------------------------------------------- */

/* memmem bounded by 'len' from 'from'. */
static const char *
find(const char *xml, size_t len, size_t from, const char *needle)
{
    size_t n = strlen(needle);

    if (from > len)
        return NULL;
    return memmem(xml + from, len - from, needle, n);
}

/* Decode the XML text 's' of 'n' bytes into a new string. */
static char *
xml_decode(const char *s, size_t n)
{
    static const struct {
        const char *ent;
        char        ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'},
                {"&quot;", '"'}, {"&apos;", '\''}};
    strbuf sb = {0};
    size_t i = 0, k;

    while (i < n) {
        if (s[i] != '&') {
            sb_putc(&sb, s[i++]);
            continue;
        }
        for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
            size_t m = strlen(ents[k].ent);

            if (n - i >= m && memcmp(s + i, ents[k].ent, m) == 0) {
                sb_putc(&sb, ents[k].ch);
                i += m;
                break;
            }
        }
        if (k < sizeof ents / sizeof ents[0])
            continue;
        if (n - i >= 4 && s[i + 1] == '#') {
            /* &#NN; or &#xHH; : a code point, written as UTF-8. */
            size_t        j = i + 2;
            int           base = 10;
            unsigned long cp = 0;
            int           digits = 0;

            if (s[j] == 'x' || s[j] == 'X') {
                base = 16;
                j++;
            }
            while (j < n && digits < 8) {
                int d;

                if (s[j] >= '0' && s[j] <= '9')
                    d = s[j] - '0';
                else if (base == 16 && s[j] >= 'a' && s[j] <= 'f')
                    d = s[j] - 'a' + 10;
                else if (base == 16 && s[j] >= 'A' && s[j] <= 'F')
                    d = s[j] - 'A' + 10;
                else
                    break;
                cp = cp * (unsigned long)base + (unsigned long)d;
                digits++;
                j++;
            }
            if (digits > 0 && j < n && s[j] == ';' && cp > 0
                && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
                if (cp < 0x80) {
                    sb_putc(&sb, (char)cp);
                } else if (cp < 0x800) {
                    sb_putc(&sb, (char)(0xC0 | (cp >> 6)));
                    sb_putc(&sb, (char)(0x80 | (cp & 0x3F)));
                } else if (cp < 0x10000) {
                    sb_putc(&sb, (char)(0xE0 | (cp >> 12)));
                    sb_putc(&sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
                    sb_putc(&sb, (char)(0x80 | (cp & 0x3F)));
                } else {
                    sb_putc(&sb, (char)(0xF0 | (cp >> 18)));
                    sb_putc(&sb, (char)(0x80 | ((cp >> 12) & 0x3F)));
                    sb_putc(&sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
                    sb_putc(&sb, (char)(0x80 | (cp & 0x3F)));
                }
                i = j + 1;
                continue;
            }
        }
        sb_putc(&sb, s[i++]); /* a lone '&': kept as it is */
    }
    return sb.data != NULL ? sb.data : xstrdup("");
}

char *
s3_xml_text(const char *xml, size_t len, const char *tag, size_t *pos)
{
    char        open[80], close[80];
    const char *a, *b;
    size_t      from = pos ? *pos : 0;

    if (strlen(tag) > 64)
        return NULL;
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    a = find(xml, len, from, open);
    if (a == NULL)
        return NULL;
    a += strlen(open);
    b = find(xml, len, (size_t)(a - xml), close);
    if (b == NULL)
        return NULL;
    if (pos)
        *pos = (size_t)(b - xml) + strlen(close);
    return xml_decode(a, (size_t)(b - a));
}

/* 'etag' without surrounding quotes, in place; returns it. */
static char *
unquote(char *etag)
{
    size_t n;

    if (etag == NULL)
        return NULL;
    n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        memmove(etag, etag + 1, n - 2);
        etag[n - 2] = '\0';
    }
    return etag;
}

int
s3_xml_list_page(const char *xml, size_t len, s3_object **objs,
                 size_t *n_objs, size_t *cap, char **next_token, sh_err *err)
{
    size_t pos = 0;
    char  *trunc;

    *next_token = NULL;
    if (find(xml, len, 0, "<ListBucketResult") == NULL) {
        return sh_err_set(err, SH_EDATA, "",
                          "S3 answered a listing with something that is "
                          "not a ListBucketResult");
    }
    for (;;) {
        const char *a = find(xml, len, pos, "<Contents>");
        const char *b;
        size_t      blen;
        char       *key, *size, *etag, *end = NULL;
        unsigned long long sz;

        if (a == NULL)
            break;
        b = find(xml, len, (size_t)(a - xml), "</Contents>");
        if (b == NULL)
            return sh_err_set(err, SH_EDATA, "", "a listing is cut short");
        blen = (size_t)(b - a);
        key = s3_xml_text(a, blen, "Key", NULL);
        size = s3_xml_text(a, blen, "Size", NULL);
        etag = unquote(s3_xml_text(a, blen, "ETag", NULL));
        sz = size ? strtoull(size, &end, 10) : 0;
        if (key == NULL || size == NULL || end == size || *end != '\0'
            || size[0] == '-') {
            free(key);
            free(size);
            free(etag);
            return sh_err_set(err, SH_EDATA, "",
                              "an object of a listing lacks Key or Size");
        }
        free(size);
        if (*n_objs == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *objs = xrealloc(*objs, *cap * sizeof **objs);
        }
        (*objs)[*n_objs].key = key;
        (*objs)[*n_objs].size_bytes = sz;
        (*objs)[*n_objs].etag = etag ? etag : xstrdup("");
        (*n_objs)++;
        pos = (size_t)(b - xml) + strlen("</Contents>");
    }
    trunc = s3_xml_text(xml, len, "IsTruncated", NULL);
    if (trunc != NULL && strcmp(trunc, "true") == 0) {
        *next_token = s3_xml_text(xml, len, "NextContinuationToken", NULL);
        if (*next_token == NULL || (*next_token)[0] == '\0') {
            free(trunc);
            free(*next_token);
            *next_token = NULL;
            return sh_err_set(err, SH_EDATA, "",
                              "a truncated listing gave no continuation "
                              "token");
        }
    }
    free(trunc);
    return 0;
}

void
s3_objects_free(s3_object *objs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(objs[i].key);
        free(objs[i].etag);
    }
    free(objs);
}

/* ---- hashing and presigning ------------------------------------------ */

static void
hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t            i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Hex SHA-256 of 'n' bytes into 'out' (65 bytes). */
static void
sha256_hex(const void *p, size_t n, char *out)
{
    unsigned char d[SHA256_DIGEST_LENGTH];

    SHA256(p, n, d);
    hex_of(d, sizeof d, out);
}

static void
hmac(const unsigned char *key, size_t klen, const char *msg,
     unsigned char out[32])
{
    unsigned int olen = 32;

    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
         strlen(msg), out, &olen);
}

char *
s3_presign(const char *method, const char *base_url, const char *host,
           const char *canonical_uri, const char *region,
           const char *access_key, const char *secret_key,
           const char *session_token, const char *amz_date, long expires_s)
{
    char          date[9], hash[65], sig[65];
    unsigned char k1[32], k2[32], k3[32], k4[32], s[32];
    char         *scope, *cred, *query, *canon, *sts, *secret, *url, *tok;

    memcpy(date, amz_date, 8);
    date[8] = '\0';
    scope = xasprintf("%s/%s/s3/aws4_request", date, region);
    {
        char *c = xasprintf("%s/%s", access_key, scope);

        cred = s3_uri_encode(c, 0);
        free(c);
    }
    tok = session_token ? s3_uri_encode(session_token, 0) : NULL;
    query = xasprintf("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s"
                      "&X-Amz-Date=%s&X-Amz-Expires=%ld%s%s"
                      "&X-Amz-SignedHeaders=host",
                      cred, amz_date, expires_s,
                      tok ? "&X-Amz-Security-Token=" : "", tok ? tok : "");
    canon = xasprintf("%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
                      method, canonical_uri, query, host);
    sha256_hex(canon, strlen(canon), hash);
    sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, hash);
    secret = xasprintf("AWS4%s", secret_key);
    hmac((unsigned char *)secret, strlen(secret), date, k1);
    hmac(k1, 32, region, k2);
    hmac(k2, 32, "s3", k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, sts, s);
    hex_of(s, 32, sig);
    url = xasprintf("%s%s?%s&X-Amz-Signature=%s", base_url, canonical_uri,
                    query, sig);
    free(scope);
    free(cred);
    free(tok);
    free(query);
    free(canon);
    free(sts);
    free(secret);
    return url;
}

char *
s3_presign_get(const s3_config *c, const char *bucket, const char *key,
               long expires_s, time_t now)
{
    char      amz_date[17];
    struct tm tm;
    char     *ekey = s3_uri_encode(key, 1), *uri, *base, *host, *url;

    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    if (expires_s < 1)
        expires_s = 1;
    if (expires_s > 604800)
        expires_s = 604800;
    if (c->endpoint != NULL) {
        const char *h = strstr(c->endpoint, "://");

        base = xstrdup(c->endpoint);
        host = xstrdup(h ? h + 3 : c->endpoint);
        uri = xasprintf("/%s/%s", bucket, ekey);
    } else {
        host = xasprintf("%s.s3.%s.amazonaws.com", bucket, c->region);
        base = xasprintf("https://%s", host);
        uri = xasprintf("/%s", ekey);
    }
    url = s3_presign("GET", base, host, uri, c->region, c->access_key,
                     c->secret_key, c->session_token, amz_date, expires_s);
    free(ekey);
    free(uri);
    free(base);
    free(host);
    return url;
}

/* ---- requests -------------------------------------------------------- */

/* What one request gathered from the answer. */
typedef struct answer {
    strbuf   body;      /* the body (bounded for errors by the caller) */
    char    *etag;      /* the ETag header, unquoted, or NULL */
    uint64_t total;     /* the object size of a Content-Range, or 0 */
    int      has_total; /* 1 when 'total' was given */
} answer;

static size_t
on_header(char *p, size_t size, size_t n, void *ctx)
{
    answer *a = ctx;
    size_t  len = size * n;

    if (len > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        size_t i = 5, j = len;

        while (i < j && (p[i] == ' ' || p[i] == '\t'))
            i++;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n'
                         || p[j - 1] == ' '))
            j--;
        free(a->etag);
        a->etag = unquote(xstrndup(p + i, j - i));
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
    answer *a = ctx;

    sb_append(&a->body, p, size * n);
    return size * n;
}

/* A new easy handle with the signing, timeouts and 'headers' set. */
static CURL *
easy_new(const s3_config *c, const char *url, struct curl_slist **headers,
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
                     c->stall_timeout_ms >= 2000
                         ? c->stall_timeout_ms / 1000 : 1L);
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
static int
transient(CURLcode rc, long status)
{
    if (rc != CURLE_OK) {
        return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT
               || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
               || rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE
               || rc == CURLE_COULDNT_RESOLVE_HOST
               || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
    }
    return status == 429 || status >= 500;
}

/* Sleep before try 'attempt' (1, 2, ...): exponential with jitter. */
static void
backoff(const s3_config *c, unsigned attempt, unsigned *seed)
{
    long ms = c->backoff_ms;
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
static int
request_error(CURLcode rc, long status, const answer *a, const char *what,
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
    if (status == 404 || (code && (strcmp(code, "NoSuchKey") == 0
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
static int
request(const s3_config *c, const char *method, const char *url,
        const void *body, size_t len, const char *ctype, answer *a,
        long *status, const char *what, sh_err *err)
{
    char     sha[65];
    unsigned attempt = 0, seed = (unsigned)now_ms() ^ (unsigned)getpid();
    CURLcode rc = CURLE_OK;
    int      ret;

    sha256_hex(body ? body : "", body ? len : 0, sha);
    for (;;) {
        struct curl_slist *headers = NULL;
        CURL              *h = easy_new(c, url, &headers, sha);

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
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
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
        if (!transient(rc, *status) || attempt >= (unsigned)c->max_retries)
            break;
        attempt++;
        backoff(c, attempt, &seed);
    }
    ret = request_error(rc, *status, a, what, err);
    return ret;
}

static void
answer_free(answer *a)
{
    sb_free(&a->body);
    free(a->etag);
}

int
s3_head(const s3_config *c, const char *bucket, const char *key,
        uint64_t *size_bytes, char **etag, sh_err *err)
{
    char  *url = s3_request_url(c, bucket, key, NULL);
    answer a = {0};
    long   status;
    int    rc;

    rc = request(c, "HEAD", url, NULL, 0, NULL, &a, &status, "HEAD", err);
    if (rc == SH_ENOENT || (rc != 0 && status == 404)) {
        rc = sh_err_set(err, SH_ENOENT, "", "s3://%s/%s does not exist",
                        bucket, key);
    } else if (rc == 0 && !a.has_total) {
        rc = sh_err_set(err, SH_EDATA, "",
                        "S3 gave no size for s3://%s/%s", bucket, key);
    }
    if (rc == 0) {
        *size_bytes = a.total;
        if (etag != NULL) {
            *etag = a.etag ? a.etag : xstrdup("");
            a.etag = NULL;
        }
    }
    answer_free(&a);
    free(url);
    return rc;
}

int
s3_put(const s3_config *c, const char *bucket, const char *key,
       const void *data, size_t len, sh_err *err)
{
    char  *url = s3_request_url(c, bucket, key, NULL);
    answer a = {0};
    long   status;
    int    rc;

    rc = request(c, "PUT", url, data ? data : "", len, NULL, &a, &status,
                 "PUT", err);
    answer_free(&a);
    free(url);
    return rc;
}

int
s3_delete(const s3_config *c, const char *bucket, const char *key,
          sh_err *err)
{
    char  *url = s3_request_url(c, bucket, key, NULL);
    answer a = {0};
    long   status;
    int    rc;

    rc = request(c, "DELETE", url, NULL, 0, NULL, &a, &status, "DELETE",
                 err);
    if (rc != 0 && status == 404)
        rc = 0;
    answer_free(&a);
    free(url);
    return rc;
}

int
s3_list(const s3_config *c, const char *bucket, const char *prefix,
        size_t max_objects, s3_object **objs, size_t *n_objs, sh_err *err)
{
    char  *token = NULL, *eprefix = s3_uri_encode(prefix, 0);
    size_t cap = 0;
    answer a = {0};
    int    rc = 0;

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

        rc = request(c, "GET", url, NULL, 0, NULL, &a, &status, "list",
                     err);
        free(etok);
        free(query);
        free(url);
        free(token);
        token = NULL;
        if (rc == 0) {
            rc = s3_xml_list_page(a.body.data ? a.body.data : "",
                                  a.body.len, objs, n_objs, &cap, &token,
                                  err);
        }
        if (rc == 0 && *n_objs > max_objects) {
            rc = sh_err_set(err, SH_EINVAL, "",
                            "more than %zu objects in s3://%s/%s*",
                            max_objects, bucket, prefix);
        }
    } while (rc == 0 && token != NULL);
    free(token);
    free(eprefix);
    answer_free(&a);
    if (rc != 0) {
        s3_objects_free(*objs, *n_objs);
        *objs = NULL;
        *n_objs = 0;
    }
    return rc;
}

/* ---- the stream ------------------------------------------------------ */

struct s3_stream {
    const s3_config    *c;        /* borrowed */
    char               *url;      /* owned */
    char               *if_match; /* owned, or NULL */
    char               *name;     /* "s3://b/k", for messages (owned) */
    uint64_t            pos;      /* next object byte to receive */
    uint64_t            req_start; /* where the request in flight began */
    int                 ignored;  /* the server ignored our Range */
    uint64_t            end;      /* one past the last byte wanted */
    CURLM              *multi;
    CURL               *easy;     /* the request in flight, or NULL */
    struct curl_slist  *headers;
    char               *buf;      /* S3_STREAM_BUF bytes */
    size_t              buf_len;  /* bytes in buf */
    size_t              buf_off;  /* bytes of buf already read */
    answer              ans;      /* Content-Range, error body */
    long                status;   /* HTTP status of the request */
    int                 paused;   /* the write callback paused it */
    int                 eof;      /* every wanted byte was delivered */
    int                 got;      /* the request delivered bytes */
    unsigned            fails;    /* failed requests in a row */
    unsigned            requests; /* requests sent */
    unsigned            seed;     /* for the jitter */
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
    s->easy = easy_new(s->c, s->url, &s->headers, S3_EMPTY_SHA);
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
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, on_header);
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
                          "for (HTTP 200 instead of 206)", s->name);
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
    if (transient(rc, status) && s->fails < (unsigned)s->c->max_retries) {
        stream_drop(s);
        s->fails++;
        backoff(s->c, s->fails, &s->seed);
        return 0;
    }
    ret = request_error(rc, status, &s->ans, "GET", err);
    if (ret == SH_EDATA) {
        ret = sh_err_set(err, SH_EDATA, "",
                         "%s changed while it was being read (its ETag is "
                         "no longer %s)", s->name, s->if_match);
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
        int       running = 0, left;
        CURLMsg  *m;

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
    answer_free(&s->ans);
    free(s->buf);
    free(s->url);
    free(s->name);
    free(s->if_match);
    free(s);
}

/* ---- multipart upload ------------------------------------------------ */

struct s3_upload {
    const s3_config *c;        /* borrowed */
    char            *bucket;   /* owned */
    char            *key;      /* owned */
    char            *id;       /* the upload id (owned) */
    char           **etags;    /* the parts' ETags (owned) */
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
    answer     a = {0};
    long       status;
    s3_upload *u = NULL;
    char      *id = NULL;

    if (request(c, "POST", url, NULL, 0, NULL, &a, &status,
                "CreateMultipartUpload", err) == 0) {
        id = s3_xml_text(a.body.data ? a.body.data : "", a.body.len,
                         "UploadId", NULL);
        if (id == NULL || id[0] == '\0') {
            sh_err_set(err, SH_EDATA, "",
                       "S3 gave no UploadId for s3://%s/%s", bucket, key);
            free(id);
        } else {
            u = xcalloc(1, sizeof *u);
            u->c = c;
            u->bucket = xstrdup(bucket);
            u->key = xstrdup(key);
            u->id = id;
        }
    }
    answer_free(&a);
    free(url);
    return u;
}

int
s3_upload_part(s3_upload *u, const void *data, size_t len, sh_err *err)
{
    char   extra[48];
    char  *url;
    answer a = {0};
    long   status;
    int    rc;

    snprintf(extra, sizeof extra, "partNumber=%zu&", u->n_parts + 1);
    url = upload_url(u, extra);
    rc = request(u->c, "PUT", url, data ? data : "", len, NULL, &a, &status,
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
    answer_free(&a);
    free(url);
    return rc;
}

int
s3_upload_complete(s3_upload *u, sh_err *err)
{
    strbuf body = {0};
    answer a = {0};
    char  *url = upload_url(u, NULL);
    long   status;
    size_t i;
    int    rc;

    sb_puts(&body, "<CompleteMultipartUpload>");
    for (i = 0; i < u->n_parts; i++) {
        sb_printf(&body, "<Part><PartNumber>%zu</PartNumber>"
                  "<ETag>\"%s\"</ETag></Part>", i + 1, u->etags[i]);
    }
    sb_puts(&body, "</CompleteMultipartUpload>");
    rc = request(u->c, "POST", url, body.data, body.len, "application/xml",
                 &a, &status, "CompleteMultipartUpload", err);
    /* A 200 may still carry an <Error> (S3 documents it). */
    if (rc == 0 && a.body.data != NULL
        && find(a.body.data, a.body.len, 0, "<Error>") != NULL) {
        rc = request_error(CURLE_OK, status, &a, "CompleteMultipartUpload",
                           err);
    }
    if (rc == 0)
        u->finished = 1;
    answer_free(&a);
    sb_free(&body);
    free(url);
    return rc;
}

int
s3_upload_abort(s3_upload *u, sh_err *err)
{
    char  *url = upload_url(u, NULL);
    answer a = {0};
    long   status;
    int    rc;

    rc = request(u->c, "DELETE", url, NULL, 0, NULL, &a, &status,
                 "AbortMultipartUpload", err);
    if (rc != 0 && status == 404)
        rc = 0; /* gone already */
    if (rc == 0)
        u->finished = 1;
    answer_free(&a);
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
