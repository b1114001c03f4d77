/*
 * auth.c - bearer tokens: the SHEAF_TOKENS_FILE table of 'token tenant'
 * lines, and the lookup of the tenant an Authorization header names.
 *
 * Only the SHA-256 of each token is kept, and a presented token is compared
 * with every entry in constant time, so that neither the memory nor the
 * timing of a lookup gives a token away.
 */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* One token of the table. */
typedef struct api_token {
    unsigned char digest[32]; /* SHA-256 of the token */
    char         *tenant;     /* owned */
} api_token;

struct api_tokens {
    api_token *v; /* owned array */
    size_t     n;
};

/* SHA-256 of 'n' bytes at 'p'. */
static void
auth_sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;

    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
        abort(); /* only on allocation failure, like xmalloc */
}

void
api_sha256_hex(const void *p, size_t n, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char     md[32];
    size_t            i;

    auth_sha256(p, n, md);
    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

void
api_tokens_free(api_tokens *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++)
        free(t->v[i].tenant);
    free(t->v);
    free(t);
}

api_tokens *
api_tokens_load(const char *path, sh_err *err)
{
    api_tokens *t = xcalloc(1, sizeof *t);
    FILE       *f;
    char       *line = NULL, *save, *token, *tenant;
    size_t      cap = 0, lineno = 0;
    int         saved;

    f = fopen(path, "r");
    if (f == NULL) {
        saved = errno;
        sh_err_set(err, SH_EIO, NULL, "SHEAF_TOKENS_FILE %s: %s", path,
                   strerror(saved));
        goto fail;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        token = strtok_r(line, " \t\r\n", &save);
        if (token == NULL || token[0] == '#')
            continue;
        tenant = strtok_r(NULL, " \t\r\n", &save);
        if (tenant == NULL || strtok_r(NULL, " \t\r\n", &save) != NULL) {
            sh_err_set(err, SH_EINVAL, NULL,
                       "SHEAF_TOKENS_FILE %s line %zu: expected 'token "
                       "tenant'",
                       path, lineno);
            goto fail;
        }
        t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
        auth_sha256(token, strlen(token), t->v[t->n].digest);
        t->v[t->n].tenant = xstrdup(tenant);
        t->n++;
    }
    if (ferror(f)) {
        sh_err_set(err, SH_EIO, NULL, "SHEAF_TOKENS_FILE %s: read error", path);
        goto fail;
    }
    free(line);
    fclose(f);
    return t;

fail:
    free(line);
    if (f != NULL)
        fclose(f);
    api_tokens_free(t);
    return NULL;
}

const char *
api_tokens_tenant(const api_tokens *t, const char *authorization)
{
    const char   *p = authorization, *end;
    const char   *tenant = NULL;
    unsigned char md[32];
    size_t        i;

    if (p == NULL)
        return NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return NULL;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == p)
        return NULL;
    auth_sha256(p, (size_t)(end - p), md);
    /* Look at every entry, whatever matches, so that the time taken does
     * not tell which entry matched. */
    for (i = 0; i < t->n; i++)
        if (CRYPTO_memcmp(md, t->v[i].digest, sizeof md) == 0 && tenant == NULL)
            tenant = t->v[i].tenant;
    return tenant;
}
