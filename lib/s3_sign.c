/*
 * s3_sign.c - SigV4's percent-encoding, SHA-256 and HMAC helpers, and
 * SigV4 query signing for presigned URLs (requests themselves are signed
 * by libcurl, see s3.c, which builds on this file).
 */
#include "s3.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"
#include "util.h"

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

/* Percent-encoding as SigV4 wants it (see s3.h); here, below s3.c,
 * because presigning needs it too. */
char *
s3_uri_encode(const char *s, int keep_slash)
{
    static const char    hex[] = "0123456789ABCDEF";
    strbuf               sb = {0};
    const unsigned char *p;

    for (p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
            || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'
            || *p == '~' || (keep_slash && *p == '/')) {
            sb_putc(&sb, (char)*p);
        } else {
            sb_putc(&sb, '%');
            sb_putc(&sb, hex[*p >> 4]);
            sb_putc(&sb, hex[*p & 15]);
        }
    }
    return sb.data != NULL ? sb.data : xstrdup("");
}

/* Hex SHA-256 of 'n' bytes into 'out' (65 bytes). */
void
s3_sha256_hex(const void *p, size_t n, char *out)
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

    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
         out, &olen);
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
    canon = xasprintf("%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", method,
                      canonical_uri, query, host);
    s3_sha256_hex(canon, strlen(canon), hash);
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
