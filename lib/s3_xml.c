/*
 * s3_xml.c - S3's XML answers read by a few bounded string searches: one
 * element's text, a page of a bucket listing, and the quoted ETag.
 */
#include "s3.h"

#include <stdlib.h>
#include <string.h>

#include "s3_int.h"
#include "util.h"

/* ---- XML --------------------------------------------------------------- */

/* memmem bounded by 'len' from 'from'. */
const char *
s3_xml_find(const char *xml, size_t len, size_t from, const char *needle)
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
    } ents[] = {{"&amp;", '&'},
                {"&lt;", '<'},
                {"&gt;", '>'},
                {"&quot;", '"'},
                {"&apos;", '\''}};
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
            if (digits > 0 && j < n && s[j] == ';' && cp > 0 && cp <= 0x10FFFF
                && !(cp >= 0xD800 && cp <= 0xDFFF)) {
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
    a = s3_xml_find(xml, len, from, open);
    if (a == NULL)
        return NULL;
    a += strlen(open);
    b = s3_xml_find(xml, len, (size_t)(a - xml), close);
    if (b == NULL)
        return NULL;
    if (pos)
        *pos = (size_t)(b - xml) + strlen(close);
    return xml_decode(a, (size_t)(b - a));
}

/* 'etag' without surrounding quotes, in place; returns it. */
char *
s3_unquote(char *etag)
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
s3_xml_list_page(const char *xml, size_t len, s3_object **objs, size_t *n_objs,
                 size_t *cap, char **next_token, sh_err *err)
{
    size_t pos = 0;
    char  *trunc;

    *next_token = NULL;
    if (s3_xml_find(xml, len, 0, "<ListBucketResult") == NULL) {
        return sh_err_set(err, SH_EDATA, "",
                          "S3 answered a listing with something that is "
                          "not a ListBucketResult");
    }
    for (;;) {
        const char        *a = s3_xml_find(xml, len, pos, "<Contents>");
        const char        *b;
        size_t             blen;
        char              *key, *size, *etag, *end = NULL;
        unsigned long long sz;

        if (a == NULL)
            break;
        b = s3_xml_find(xml, len, (size_t)(a - xml), "</Contents>");
        if (b == NULL)
            return sh_err_set(err, SH_EDATA, "", "a listing is cut short");
        blen = (size_t)(b - a);
        key = s3_xml_text(a, blen, "Key", NULL);
        size = s3_xml_text(a, blen, "Size", NULL);
        etag = s3_unquote(s3_xml_text(a, blen, "ETag", NULL));
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
