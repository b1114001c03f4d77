/*
 * regex.c - the PCRE2 side of regexp_matches, regexp_extract and
 * regexp_replace (see regex.h): compile with PCRE2_UTF and JIT, one match
 * context with the match and depth limits, one match data per pattern.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rx {
    pcre2_code          *code;
    pcre2_match_context *mctx;
    pcre2_match_data    *md;
    char                *pattern;
    unsigned             ngroups;
    char                 msg[160];
};

/* JIT unless SHEAF_REGEX_JIT=0 (valgrind cannot follow JIT code: the
 * valgrind stage of scripts/test.sh turns it off). */
static int
jit_wanted(void)
{
    const char *v = getenv("SHEAF_REGEX_JIT");

    return v == NULL || strcmp(v, "0") != 0;
}

/* The character offset of byte offset 'off' in UTF-8 'p'. */
static size_t
char_offset(const char *p, size_t len, size_t off)
{
    size_t i, chars = 0;

    for (i = 0; i < off && i < len; i++)
        chars += ((unsigned char)p[i] & 0xC0) != 0x80;
    return chars;
}

/* Compiles a pattern (see regex.h). */
rx *
rx_compile(const char *pat, size_t len, char *msg, size_t size,
           size_t *err_char)
{
    rx         *r;
    int         code;
    PCRE2_SIZE  off;
    uint32_t    ng = 0;
    PCRE2_UCHAR buf[160];

    r = xcalloc(1, sizeof *r);
    r->code = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF, &code, &off, NULL);
    if (r->code == NULL) {
        pcre2_get_error_message(code, buf, sizeof buf);
        snprintf(msg, size, "%s", (char *)buf);
        *err_char = char_offset(pat, len, off);
        free(r);
        return NULL;
    }
    if (jit_wanted())
        (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE); /* optional */
    r->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(r->mctx, RX_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, RX_DEPTH_LIMIT);
    r->md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (r->mctx == NULL || r->md == NULL)
        abort(); /* out of memory, as xmalloc */
    pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &ng);
    r->ngroups = ng;
    r->pattern = xmalloc(len + 1);
    memcpy(r->pattern, pat, len);
    r->pattern[len] = '\0';
    return r;
}

/* Frees 'r'. */
void
rx_free(rx *r)
{
    if (r == NULL)
        return;
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mctx);
    pcre2_code_free(r->code);
    free(r->pattern);
    free(r);
}

/* The number of capture groups. */
unsigned
rx_groups(const rx *r)
{
    return r->ngroups;
}

/* The pattern's text, owned by 'r'. */
const char *
rx_pattern(const rx *r)
{
    return r->pattern;
}

/* The last RX_EFAIL's message, owned by 'r'. */
const char *
rx_error(const rx *r)
{
    return r->msg;
}

/* Maps a negative pcre2 result to RX_ELIMIT or RX_EFAIL. */
static int
fail(rx *r, int rc)
{
    PCRE2_UCHAR buf[120];

    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT
        || rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
        return RX_ELIMIT;
    pcre2_get_error_message(rc, buf, sizeof buf);
    snprintf(r->msg, sizeof r->msg, "%s", (char *)buf);
    return RX_EFAIL;
}

/* Runs one match from byte 'start'. */
static int
run(rx *r, const char *s, size_t n, size_t start)
{
    int rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, start, 0, r->md, r->mctx);

    if (rc == PCRE2_ERROR_NOMATCH)
        return RX_NOMATCH;
    if (rc < 0)
        return fail(r, rc);
    return RX_MATCH;
}

/* Does 'r' match in 's'? */
int
rx_search(rx *r, const char *s, size_t n)
{
    return run(r, s ? s : "", n, 0);
}

/* Group 'group' of the first match. */
int
rx_extract(rx *r, const char *s, size_t n, unsigned group, const char **gp,
           size_t *gn)
{
    PCRE2_SIZE *ov;
    int         rc = run(r, s ? s : "", n, 0);

    if (rc != RX_MATCH)
        return rc;
    ov = pcre2_get_ovector_pointer(r->md);
    if (group > r->ngroups || ov[2 * group] == PCRE2_UNSET) {
        *gp = s;
        *gn = 0;
        return RX_MATCH;
    }
    *gp = s + ov[2 * group];
    *gn = ov[2 * group + 1] - ov[2 * group];
    return RX_MATCH;
}

/* Replaces every match (see regex.h). */
int
rx_replace(rx *r, const char *s, size_t n, const char *repl, size_t rlen,
           arena *a, const char **out, size_t *outn)
{
    PCRE2_SIZE   outlen = n + rlen + 64;
    PCRE2_UCHAR *buf;
    int          rc;
    uint32_t     opts = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED
                    | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH;

    if (s == NULL)
        s = "";
    for (;;) {
        buf = arena_alloc(a, outlen ? outlen : 1);
        rc = pcre2_substitute(r->code, (PCRE2_SPTR)s, n, 0, opts, r->md,
                              r->mctx, (PCRE2_SPTR)(repl ? repl : ""), rlen,
                              buf, &outlen);
        if (rc != PCRE2_ERROR_NOMEMORY)
            break;
        /* outlen now holds the length needed (with the terminator). */
    }
    if (rc < 0)
        return fail(r, rc);
    *out = (const char *)buf;
    *outn = outlen;
    return RX_MATCH;
}

/* Checks that every $n of a replacement names a group of 'r'; returns 0,
 * or -1 with the message in 'msg'. */
int
rx_check_replacement(rx *r, const char *repl, size_t rlen, char *msg,
                     size_t size)
{
    size_t i;

    for (i = 0; i < rlen; i++) {
        unsigned long g;
        char         *end;

        if (repl[i] != '$' && repl[i] != '\\')
            continue;
        if (repl[i] == '\\') {
            i++;
            continue;
        }
        if (i + 1 < rlen && repl[i + 1] >= '0' && repl[i + 1] <= '9') {
            char   num[24];
            size_t k = 0;

            while (i + 1 + k < rlen && k < sizeof num - 1
                   && repl[i + 1 + k] >= '0' && repl[i + 1 + k] <= '9') {
                num[k] = repl[i + 1 + k];
                k++;
            }
            num[k] = '\0';
            g = strtoul(num, &end, 10);
            if (g > r->ngroups) {
                snprintf(msg, size,
                         "the replacement refers to group $%lu "
                         "but the pattern has %u group%s",
                         g, r->ngroups, r->ngroups == 1 ? "" : "s");
                return -1;
            }
            i += k;
        } else if (i + 1 < rlen && repl[i + 1] == '$') {
            i++;
        }
    }
    return 0;
}
