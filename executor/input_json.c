/*
 * input_json.c - the text-format helpers of the input readers that are no
 * reader themselves (input_int.h): the parser of one jsonl line into its
 * members, and the index of column names by which jsonl members find their
 * columns. input.c (a partition's rows) and infer.c (the planner's sample)
 * share them.
 *
 * The line parser makes one pass over the line and allocates only when a
 * line is longer, or has more members, than any before it: strings without
 * escapes point into the line, others are unescaped into one scratch
 * buffer reused from line to line.
 */
#include "input_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "../lib/util.h"

/* ---- one jsonl line ------------------------------------------------------ */

/* Nesting deeper than this is refused. */
#define JSON_MAX_DEPTH 512

/* The parse of one line: the text, where we are, where unescapes go. */
typedef struct jcur {
    const char *s;   /* the line */
    const char *p;   /* the next byte */
    const char *end; /* one past the line */
    char       *w;   /* the next free byte of the scratch */
    input_json *jp;
} jcur;

/* Record an error at 'at' and return -1. */
static int
jfail(jcur *c, const char *at, const char *what)
{
    c->jp->what = what;
    c->jp->at = (size_t)(at - c->s);
    return -1;
}

static inline void
jws(jcur *c)
{
    while (c->p < c->end
           && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

/* The value of a hex digit, or -1. */
static inline int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The 4 hex digits at 'q' (q + 4 <= end), or -1. */
static long
hex4(const char *q)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);

        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Write code point 'cp' as UTF-8 at 'w'; returns the byte after. */
static char *
put_utf8(char *w, unsigned long cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xC0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (char)(0xF0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    }
    return w;
}

/*
 * The first byte at or after 'q' (before 'end') that ends a run of plain
 * string bytes: a quote, a backslash or a control character; 'end' if
 * none. With SSE2, 16 bytes a step while 16 remain (never past 'end').
 */
static inline const char *
str_plain(const char *q, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1F);

    while (end - q >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
            _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl)); /* x <= 0x1F */
        unsigned m = (unsigned)_mm_movemask_epi8(hit);

        if (m != 0)
            return q + __builtin_ctz(m);
        q += 16;
    }
#endif
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    return q;
}

/*
 * The string whose opening quote is at c->p. With 'out' non-NULL, *out and
 * *len are its unescaped bytes (in the line if it has no escape, else in
 * the scratch); with 'out' NULL it is only checked. Returns 0 or -1.
 */
static int
jstring(jcur *c, const char **out, size_t *len)
{
    const char *open = c->p, *q = c->p + 1, *run;
    char       *w = NULL;

    /* The common case: no escape. */
    q = str_plain(q, c->end);
    if (q < c->end && *q == '"') {
        if (out) {
            *out = open + 1;
            *len = (size_t)(q - open - 1);
        }
        c->p = q + 1;
        return 0;
    }
    if (out) {
        w = c->w;
        memcpy(w, open + 1, (size_t)(q - open - 1));
        w += q - open - 1;
    }
    for (;;) {
        if (q >= c->end)
            return jfail(c, open, "unterminated string");
        if (*q == '"')
            break;
        if ((unsigned char)*q < 0x20)
            return jfail(c, q, "control character in a string");
        if (*q != '\\') {
            run = q;
            q = str_plain(q, c->end);
            if (w) {
                memcpy(w, run, (size_t)(q - run));
                w += q - run;
            }
            continue;
        }
        if (q + 1 >= c->end)
            return jfail(c, q, "unterminated string");
        switch (q[1]) {
        case '"':
        case '\\':
        case '/':
            if (w)
                *w++ = q[1];
            q += 2;
            break;
        case 'b':
            if (w)
                *w++ = '\b';
            q += 2;
            break;
        case 'f':
            if (w)
                *w++ = '\f';
            q += 2;
            break;
        case 'n':
            if (w)
                *w++ = '\n';
            q += 2;
            break;
        case 'r':
            if (w)
                *w++ = '\r';
            q += 2;
            break;
        case 't':
            if (w)
                *w++ = '\t';
            q += 2;
            break;
        case 'u': {
            long cp, lo;

            if (c->end - q < 6 || (cp = hex4(q + 2)) < 0)
                return jfail(c, q, "bad \\u escape in a string");
            q += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF && c->end - q >= 6 && q[0] == '\\'
                && q[1] == 'u' && (lo = hex4(q + 2)) >= 0xDC00
                && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 6;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD; /* a lone surrogate */
            }
            if (w)
                w = put_utf8(w, (unsigned long)cp);
            break;
        }
        default:
            return jfail(c, q, "bad escape in a string");
        }
    }
    if (out) {
        *out = c->w;
        *len = (size_t)(w - c->w);
        c->w = w;
    }
    c->p = q + 1;
    return 0;
}

/* A run of digits at c->p; returns how many. */
static inline size_t
jdigits(jcur *c)
{
    const char *q = c->p;

    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return (size_t)(c->p - q);
}

/* The number at c->p: sets *kind to IJ_INT or IJ_NUMBER. Returns 0, -1. */
static int
jnumber(jcur *c, input_json_kind *kind)
{
    const char *start = c->p;

    *kind = IJ_INT;
    if (*c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (jdigits(c) == 0)
        return jfail(c, start, "bad number");
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        *kind = IJ_NUMBER;
        if (jdigits(c) == 0)
            return jfail(c, start, "bad number");
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        *kind = IJ_NUMBER;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (jdigits(c) == 0)
            return jfail(c, start, "bad number");
    }
    return 0;
}

static int jvalue(jcur *c, input_json_kind *kind, int depth);

/* The object or array at c->p (checked, not kept). Returns 0 or -1. */
static int
jnested(jcur *c, int depth)
{
    char            close = *c->p == '{' ? '}' : ']';
    int             object = close == '}';
    input_json_kind k;

    if (depth >= JSON_MAX_DEPTH)
        return jfail(c, c->p, "nested too deeply");
    c->p++;
    jws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (object) {
            if (c->p >= c->end || *c->p != '"')
                return jfail(c, c->p, "expected a key");
            if (jstring(c, NULL, NULL) != 0)
                return -1;
            jws(c);
            if (c->p >= c->end || *c->p != ':')
                return jfail(c, c->p, "expected ':'");
            c->p++;
            jws(c);
        }
        if (jvalue(c, &k, depth + 1) != 0)
            return -1;
        jws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            jws(c);
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        return jfail(c, c->p,
                     object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* The literal 'word' at c->p. */
static int
jword(jcur *c, const char *word, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return jfail(c, c->p, "bad value");
    c->p += n;
    return 0;
}

/* Any value at c->p, checked; strings are not unescaped. */
static int
jvalue(jcur *c, input_json_kind *kind, int depth)
{
    if (c->p >= c->end)
        return jfail(c, c->p, "expected a value");
    switch (*c->p) {
    case '"':
        *kind = IJ_STRING;
        return jstring(c, NULL, NULL);
    case '{':
    case '[':
        *kind = IJ_NESTED;
        return jnested(c, depth);
    case 't':
        *kind = IJ_TRUE;
        return jword(c, "true", 4);
    case 'f':
        *kind = IJ_FALSE;
        return jword(c, "false", 5);
    case 'n':
        *kind = IJ_NULL;
        return jword(c, "null", 4);
    default:
        if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
            return jnumber(c, kind);
        return jfail(c, c->p, "bad value");
    }
}

/* Parse one jsonl line; see input_int.h. */
int
input_json_parse(input_json *jp, const char *s, size_t n)
{
    jcur c = {s, s, s + n, NULL, jp};

    jp->n = 0;
    jp->what = NULL;
    jp->at = 0;
    jws(&c);
    if (c.p == c.end)
        return 1;
    if (*c.p != '{')
        return jfail(&c, c.p, "expected '{'");
    if (jp->scratch_cap < n) {
        free(jp->scratch);
        jp->scratch_cap = jp->scratch_cap * 2 > n ? jp->scratch_cap * 2 : n;
        if (jp->scratch_cap < 256)
            jp->scratch_cap = 256;
        jp->scratch = xmalloc(jp->scratch_cap);
    }
    c.w = jp->scratch; /* unescaped strings never outgrow their text */
    c.p++;
    jws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto tail;
    }
    for (;;) {
        input_json_member *m;
        const char        *v;

        if (jp->n == jp->cap) {
            jp->cap = jp->cap ? jp->cap * 2 : 16;
            jp->m = xrealloc(jp->m, jp->cap * sizeof *jp->m);
        }
        m = &jp->m[jp->n];
        if (c.p >= c.end || *c.p != '"')
            return jfail(&c, c.p, "expected a key");
        if (jstring(&c, &m->key, &m->key_len) != 0)
            return -1;
        jws(&c);
        if (c.p >= c.end || *c.p != ':')
            return jfail(&c, c.p, "expected ':'");
        c.p++;
        jws(&c);
        v = c.p;
        if (c.p < c.end && *c.p == '"') {
            m->kind = IJ_STRING;
            if (jstring(&c, &m->val, &m->val_len) != 0)
                return -1;
        } else {
            if (jvalue(&c, &m->kind, 1) != 0)
                return -1;
            m->val = v;
            m->val_len = (size_t)(c.p - v);
        }
        jp->n++;
        jws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            jws(&c);
            continue;
        }
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        return jfail(&c, c.p, "expected ',' or '}'");
    }
tail:
    jws(&c);
    if (c.p != c.end)
        return jfail(&c, c.p, "text after the object");
    return 0;
}

/* Free the parser's arrays; NULL-safe fields. */
void
input_json_free(input_json *jp)
{
    free(jp->m);
    free(jp->scratch);
    memset(jp, 0, sizeof *jp);
}

/* ---- column names ------------------------------------------------------- */

/* FNV-1a of 'n' bytes. */
static size_t
name_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29));
}

/* Put number 'i' into the table (which has a free slot). */
static void
names_put(input_names *ix, size_t i)
{
    size_t at = name_hash(ix->names[i], ix->lens[i]) & ix->mask;

    while (ix->slots[at] != 0)
        at = (at + 1) & ix->mask;
    ix->slots[at] = i + 1;
}

/* The number of 'key', or -1; see input_int.h. */
long
input_names_find(const input_names *ix, const char *key, size_t len)
{
    size_t at;

    if (ix->mask == 0)
        return -1;
    at = name_hash(key, len) & ix->mask;
    while (ix->slots[at] != 0) {
        size_t i = ix->slots[at] - 1;

        if (ix->lens[i] == len && memcmp(ix->names[i], key, len) == 0)
            return (long)i;
        at = (at + 1) & ix->mask;
    }
    return -1;
}

/* Add a name; the table stays at most half full. */
size_t
input_names_add(input_names *ix, const char *name, size_t len)
{
    size_t i = ix->n;

    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 16;
        ix->names = xrealloc(ix->names, ix->cap * sizeof *ix->names);
        ix->lens = xrealloc(ix->lens, ix->cap * sizeof *ix->lens);
    }
    ix->names[i] = name;
    ix->lens[i] = len;
    ix->n++;
    if (2 * ix->n > ix->mask) {
        size_t size = ix->mask ? (ix->mask + 1) * 2 : 32;

        free(ix->slots);
        ix->slots = xcalloc(size, sizeof *ix->slots);
        ix->mask = size - 1;
        for (size_t k = 0; k < ix->n; k++)
            names_put(ix, k);
    } else {
        names_put(ix, i);
    }
    return i;
}

/* Free the index's arrays (not the names). */
void
input_names_free(input_names *ix)
{
    free(ix->names);
    free(ix->lens);
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}
