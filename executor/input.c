/*
 * input.c - one partition of a plan's input, read as typed rows (input.h).
 *
 * Every format is read by a csv_reader (csv.h): CSV records as they are,
 * lines and jsonl as one field a line (csv_dialect.lines). The reader gets
 * its bytes either with pread from a byte range of the file, or, for gzip
 * input, from input_gz, which inflates the whole file through one fixed
 * buffer. The fields of a record are parsed into one row array reused for
 * every record; strings point into the reader's buffer (CSV, lines) or into
 * one scratch buffer that holds a jsonl line's unescaped strings. Nothing
 * is allocated per row.
 */
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "csv.h"
#include "input_int.h"
#include "../lib/fsys.h"
#include "../lib/util.h"
#include "source.h"
#include "value.h"

/* Bad values are quoted in messages up to this many bytes. */
#define SNIPPET_BYTES 40

struct input_reader {
    const plan      *p;
    const plan_part *part;
    const plan_file *file;
    char             ctx[512]; /* "partition 3 (file a.csv, bytes 0-9)" */
    int              fd;       /* the input file, or -1 */
    input_gz        *gz;       /* gzip input: the inflater, else NULL */
    source          *src;      /* an s3:// file's byte stream, else NULL */
    csv_reader      *rd;       /* records (csv) or lines (lines, jsonl) */
    input_pq        *pq;       /* parquet: the row groups (input_pq.c) */
    input_json       json;     /* jsonl: the line parser */
    input_names      cols;     /* jsonl: column numbers by name */
    unsigned char   *need;     /* per input column: 1 to parse it (owned) */
    sh_value        *row;      /* the row returned (owned) */
    size_t           n_cols;   /* p->in_schema->n */
    uint64_t         line;     /* line of the last record returned */
    uint64_t         rows;     /* records read, skipped ones included */
    uint64_t         skipped;  /* records skipped (on_error skip) */
    int              skip_header; /* the next record is a CSV header (gzip
                                     input: the partition is the file) */
};

/* Fill 'err' with 'code' and the reader's context before the message. */
static int __attribute__((format(printf, 4, 5)))
in_fail(const input_reader *r, sh_err *err, int code, const char *fmt, ...)
{
    char    msg[SH_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sh_err_set(err, code, "", "%s, %s", r->ctx, msg);
}

/*
 * Up to SNIPPET_BYTES of a value, cut at a character boundary, with control
 * characters and invalid bytes shown as '?', into 'buf' (>= 64 bytes).
 */
static void
snippet(const char *s, size_t n, char *buf)
{
    size_t i = 0, o = 0;

    while (i < n && o < SNIPPET_BYTES) {
        unsigned char c = (unsigned char)s[i];
        size_t        k = 1, j;

        if (c >= 0xC2 && c <= 0xF4)
            k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        for (j = 1; j < k; j++) {
            if (i + j >= n || ((unsigned char)s[i + j] & 0xC0) != 0x80)
                break;
        }
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && (k == 1 || j < k))) {
            buf[o++] = '?';
            i++;
            continue;
        }
        if (o + k > SNIPPET_BYTES)
            break;
        memcpy(buf + o, s + i, k);
        o += k;
        i += k;
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

/* ---- gzip ---------------------------------------------------------------- */

/* Compressed bytes read at a time. */
#define GZ_IN_BYTES ((size_t)256 << 10)

static unsigned input_gzip_ratio = INPUT_GZIP_RATIO_DEFAULT;

void
input_set_limits(unsigned gzip_ratio)
{
    input_gzip_ratio = gzip_ratio ? gzip_ratio : INPUT_GZIP_RATIO_DEFAULT;
}

struct input_gz {
    int            fd;        /* borrowed */
    uint64_t       out;       /* inflated bytes given so far */
    uint64_t       out_max;   /* the most it may inflate to */
    z_stream       zs;        /* the inflater (windowBits 15 + 32) */
    unsigned char *in;        /* GZ_IN_BYTES of compressed input */
    uint64_t       off;       /* file offset of the next read */
    int            in_eof;    /* a read returned 0 */
    int            member_end; /* inflate ended a member (Z_STREAM_END) */
    int            members;   /* members ended so far */
};

/* A gzip source over 'fd'; see input_int.h. */
input_gz *
input_gz_new(int fd)
{
    input_gz *gz = xcalloc(1, sizeof *gz);

    struct stat st;

    gz->fd = fd;
    gz->in = xmalloc(GZ_IN_BYTES);
    /* A zip bomb stops at the ratio, not at the memory or disk it fills;
     * a tiny file may still inflate to a block of a few MiB. */
    gz->out_max = (uint64_t)input_gzip_ratio
                  * (fstat(fd, &st) == 0 && st.st_size > 4096
                         ? (uint64_t)st.st_size
                         : 4096);
    if (inflateInit2(&gz->zs, 15 + 32) != Z_OK) {
        fprintf(stderr, "sheaf: inflateInit2 failed: out of memory\n");
        abort();
    }
    return gz;
}

/* Compressed bytes consumed: read, less what inflate has not taken yet. */
static uint64_t
input_gz_bytes_in(const input_gz *gz)
{
    return gz->off - gz->zs.avail_in;
}

/*
 * Fill 'buf' with up to 'n' inflated bytes; see input_int.h. Reads the
 * file in GZ_IN_BYTES blocks; after a member ends, any further input must
 * be another member.
 */
ssize_t
input_gz_read(void *ctx, char *buf, size_t n, sh_err *err)
{
    input_gz *gz = ctx;
    size_t    got = 0;
    int       zrc;

    while (got < n) {
        if (gz->zs.avail_in == 0 && !gz->in_eof) {
            ssize_t k;

            do
                k = fsys_pread(gz->fd, gz->in, GZ_IN_BYTES,
                                (off_t)gz->off);
            while (k < 0 && errno == EINTR);
            if (k < 0) {
                int e = errno;

                return sh_err_set(err, SH_EIO, NULL,
                                  "read at offset %llu: %s",
                                  (unsigned long long)gz->off, strerror(e));
            }
            gz->in_eof = k == 0;
            gz->off += (uint64_t)k;
            gz->zs.next_in = gz->in;
            gz->zs.avail_in = (uInt)k;
        }
        if (gz->member_end) {
            if (gz->zs.avail_in == 0)
                break; /* in_eof: the end of the last member */
            if (inflateReset(&gz->zs) != Z_OK)
                return sh_err_set(err, SH_EIO, NULL, "inflateReset failed");
            gz->member_end = 0;
        }
        if (gz->zs.avail_in == 0) {
            if (gz->off == 0)
                break; /* an empty file */
            return sh_err_set(err, SH_EDATA, NULL,
                              "the gzip data ends early (the file is "
                              "truncated at byte %llu)",
                              (unsigned long long)gz->off);
        }
        gz->zs.next_out = (unsigned char *)buf + got;
        gz->zs.avail_out = (uInt)(n - got > UINT_MAX ? UINT_MAX : n - got);
        zrc = inflate(&gz->zs, Z_NO_FLUSH);
        gz->out += (uint64_t)((char *)gz->zs.next_out - (buf + got));
        got = (size_t)((char *)gz->zs.next_out - buf);
        if (gz->out > gz->out_max)
            return sh_err_set(err, SH_EDATA, NULL,
                              "the gzip data inflates to more than %u times "
                              "its compressed size (%llu bytes from %llu "
                              "compressed bytes), the limit "
                              "(SHEAF_MAX_GZIP_RATIO)",
                              input_gzip_ratio,
                              (unsigned long long)gz->out,
                              (unsigned long long)input_gz_bytes_in(gz));
        if (zrc == Z_STREAM_END) {
            gz->member_end = 1;
            gz->members++;
        } else if (zrc == Z_NEED_DICT || zrc == Z_DATA_ERROR) {
            return sh_err_set(err, SH_EDATA, NULL,
                              "%s at compressed byte %llu (%s)",
                              gz->members ? "bad gzip data after a member"
                                          : "not valid gzip data",
                              (unsigned long long)input_gz_bytes_in(gz),
                              gz->zs.msg ? gz->zs.msg : "need dictionary");
        } else if (zrc == Z_MEM_ERROR) {
            fprintf(stderr, "sheaf: inflate: out of memory\n");
            abort();
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            return sh_err_set(err, SH_EIO, NULL, "inflate failed (%d)", zrc);
        }
    }
    return (ssize_t)got;
}

/* Free the inflater and its buffer; NULL-safe. */
void
input_gz_free(input_gz *gz)
{
    if (gz == NULL)
        return;
    inflateEnd(&gz->zs);
    free(gz->in);
    free(gz);
}

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
           && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r'
               || *c->p == '\n'))
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
        __m128i  x = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i  hit = _mm_or_si128(
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
        case '"': case '\\': case '/':
            if (w)
                *w++ = q[1];
            q += 2;
            break;
        case 'b': if (w) *w++ = '\b'; q += 2; break;
        case 'f': if (w) *w++ = '\f'; q += 2; break;
        case 'n': if (w) *w++ = '\n'; q += 2; break;
        case 'r': if (w) *w++ = '\r'; q += 2; break;
        case 't': if (w) *w++ = '\t'; q += 2; break;
        case 'u': {
            long cp, lo;

            if (c->end - q < 6 || (cp = hex4(q + 2)) < 0)
                return jfail(c, q, "bad \\u escape in a string");
            q += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF && c->end - q >= 6
                && q[0] == '\\' && q[1] == 'u'
                && (lo = hex4(q + 2)) >= 0xDC00 && lo <= 0xDFFF) {
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
        return jfail(c, c->p, object ? "expected ',' or '}'"
                                     : "expected ',' or ']'");
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

/* ---- the reader ---------------------------------------------------------- */

/*
 * Open plan file 'f' with 'flags': its relative path beneath the data
 * root (f->path is the root's real path, a '/', then f->rel). Returns the
 * descriptor or -1 with errno (fsys_open_beneath).
 */
static int
open_input(const plan_file *f, int flags)
{
    size_t path_len = strlen(f->path), rel_len = strlen(f->rel);
    char  *root;
    int    fd, e;

    if (rel_len + 1 > path_len || f->path[path_len - rel_len - 1] != '/'
        || strcmp(f->path + path_len - rel_len, f->rel) != 0)
        return fsys_open(f->path, flags | O_CLOEXEC | O_NOFOLLOW, 0);
    root = path_len - rel_len - 1 == 0
               ? xstrdup("/")
               : xstrndup(f->path, path_len - rel_len - 1);
    fd = fsys_open_beneath(root, f->rel, flags);
    e = errno;
    free(root);
    errno = e;
    return fd;
}

/* Open the partition's file and check it is the one the plan saw. */
static int
open_file(input_reader *r, sh_err *err)
{
    struct stat st;
    int64_t     mtime_ns;

    /* Beneath the data root, no symlink on the way (a directory swapped
     * for a link since submit is refused), not blocking (a FIFO swapped in
     * does not hang the worker: fstat below refuses it). */
    r->fd = open_input(r->file, O_RDONLY | O_NONBLOCK);
    if (r->fd < 0) {
        int e = errno;

        if (e == ENOENT) {
            return in_fail(r, err, SH_EDATA,
                           "input file '%s' no longer exists; it was "
                           "there when the job was submitted",
                           r->file->rel);
        }
        if (e == ELOOP || e == EXDEV) {
            return in_fail(r, err, SH_EDATA,
                           "input file '%s' is now reached through a "
                           "symbolic link; it was not when the job was "
                           "submitted",
                           r->file->rel);
        }
        return in_fail(r, err, SH_EIO, "cannot open input file '%s': %s",
                       r->file->rel, strerror(e));
    }
    if (fstat(r->fd, &st) != 0) {
        int e = errno;

        return in_fail(r, err, SH_EIO, "cannot stat input file '%s': %s",
                       r->file->rel, strerror(e));
    }
    mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != r->file->size_bytes
        || mtime_ns != r->file->mtime_ns) {
        return in_fail(r, err, SH_EDATA,
                       "input file '%s' changed since the job was "
                       "submitted; submit the job again",
                       r->file->rel);
    }
    return 0;
}

/*
 * Parse a CSV record's fields into the row. Returns 0, or SH_EDATA with
 * 'err' saying which value failed.
 */
static int
parse_csv(input_reader *r, const csv_field *f, sh_err *err)
{
    const schema *sc = r->p->in_schema;
    size_t        c;
    char          snip[64];

    for (c = 0; c < r->n_cols; c++) {
        sh_type t = sc->types[c];

        if (!r->need[c]) {
            r->row[c] = sh_null();
        } else if (f[c].len == 0) {
            r->row[c] = t == SH_STRING && f[c].quoted ? sh_str("", 0)
                                                      : sh_null();
        } else if (value_parse(t, f[c].ptr, f[c].len, &r->row[c]) != 0) {
            snippet(f[c].ptr, f[c].len, snip);
            return in_fail(r, err, SH_EDATA,
                           "input: cannot parse '%s' as %s in column %s, "
                           "line %llu",
                           snip, sh_type_name(t), sc->names[c],
                           (unsigned long long)r->line);
        }
    }
    return 0;
}

/*
 * A line (the lines format) into the row's one column: the line itself
 * ("" for an empty line), or, when input.columns gave the column another
 * type, the line parsed as that type (an empty line is then null).
 * Returns 0, or SH_EDATA with 'err' filled.
 */
static int
parse_line(input_reader *r, const csv_field *f, sh_err *err)
{
    sh_type t = r->p->in_schema->types[0];
    char    snip[64];

    if (!r->need[0]) {
        r->row[0] = sh_null();
    } else if (t == SH_STRING) {
        r->row[0] = sh_str(f->ptr, f->len);
    } else if (value_parse(t, f->ptr, f->len, &r->row[0]) != 0) {
        snippet(f->ptr, f->len, snip);
        return in_fail(r, err, SH_EDATA,
                       "input: cannot parse '%s' as %s in column %s, "
                       "line %llu",
                       snip, sh_type_name(t), r->p->in_schema->names[0],
                       (unsigned long long)r->line);
    }
    return 0;
}

/*
 * Read the jsonl member 'm' of type 't' into 'out'. Returns 0, or -1 when
 * the value is not of the column's type. A JSON string is read as a CSV
 * field would be ("" is then null, except for a string column); a number,
 * a bool or a nested value read as a string is its JSON text.
 */
static int
json_value(sh_type t, const input_json_member *m, sh_value *out)
{
    switch (m->kind) {
    case IJ_NULL:
        *out = sh_null();
        return 0;
    case IJ_STRING:
        if (t == SH_STRING) {
            *out = sh_str(m->val, m->val_len);
            return 0;
        }
        return value_parse(t, m->val, m->val_len, out);
    case IJ_TRUE:
    case IJ_FALSE:
        if (t == SH_BOOL) {
            *out = sh_bool(m->kind == IJ_TRUE);
            return 0;
        }
        break;
    case IJ_INT:
        if (t == SH_INT || t == SH_FLOAT)
            return value_parse(t, m->val, m->val_len, out);
        break;
    case IJ_NUMBER:
        if (t == SH_FLOAT)
            return value_parse(t, m->val, m->val_len, out);
        break;
    case IJ_NESTED:
        break;
    }
    if (t == SH_STRING) {
        *out = sh_str(m->val, m->val_len);
        return 0;
    }
    return -1;
}

/*
 * Parse a jsonl line into the row. Returns 0, 1 for a blank line (no
 * record), or SH_EDATA with 'err' saying what is wrong.
 */
static int
parse_jsonl(input_reader *r, const csv_field *f, sh_err *err)
{
    const schema *sc = r->p->in_schema;
    input_json   *jp = &r->json;
    size_t        i, guess = 0;
    char          snip[64];
    int           rc;

    rc = input_json_parse(jp, f->ptr, f->len);
    if (rc == 1)
        return 1;
    r->line = csv_reader_line(r->rd);
    if (rc < 0) {
        snippet(f->ptr + jp->at, f->len - jp->at, snip);
        return in_fail(r, err, SH_EDATA,
                       "input: line %llu is not a JSON object: %s at "
                       "byte %zu ('%s')",
                       (unsigned long long)r->line, jp->what, jp->at + 1,
                       snip);
    }
    for (i = 0; i < r->n_cols; i++)
        r->row[i] = sh_null();
    for (i = 0; i < jp->n; i++) {
        const input_json_member *m = &jp->m[i];
        long                     c = -1;

        /* Lines mostly repeat their keys in the same order: try the
         * column after the last one first, then the index. */
        if (guess < r->n_cols && r->cols.lens[guess] == m->key_len
            && memcmp(r->cols.names[guess], m->key, m->key_len) == 0)
            c = (long)guess;
        else
            c = input_names_find(&r->cols, m->key, m->key_len);
        if (c >= 0)
            guess = (size_t)c + 1;

        if (c < 0 || !r->need[c])
            continue; /* a key the sample did not have, or not needed */
        if (json_value(sc->types[c], m, &r->row[c]) != 0) {
            snippet(m->val, m->val_len, snip);
            return in_fail(r, err, SH_EDATA,
                           "input: cannot parse '%s' as %s in column %s, "
                           "line %llu",
                           snip, sh_type_name(sc->types[c]), sc->names[c],
                           (unsigned long long)r->line);
        }
    }
    return 0;
}

/* The context of parquet partition 'part': "partition 3 (file
 * a.parquet, row groups 2-4)" (the first and last of its list). */
static void
input_pq_context(input_reader *r, size_t part)
{
    const plan_part *pt = r->part;

    if (pt->end <= pt->start || pt->end > r->p->n_pq_rgs) {
        snprintf(r->ctx, sizeof r->ctx,
                 "partition %zu (file %s, no row group)", part,
                 r->file->rel);
        return;
    }
    snprintf(r->ctx, sizeof r->ctx,
             "partition %zu (file %s, row groups %zu-%zu)", part,
             r->file->rel, r->p->pq_rgs[pt->start],
             r->p->pq_rgs[pt->end - 1]);
}

/*
 * Open partition 'part' of 'p'; see input.h. The file is opened and
 * checked here; nothing is read until the first input_next.
 */
input_reader *
input_open(const plan *p, size_t part, const unsigned char *need, sh_err *err)
{
    input_reader *r;
    csv_dialect   d = p->dialect;
    size_t        i;
    int           rc = 0;

    sh_err_clear(err);
    if (part >= p->n_parts) {
        sh_err_set(err, SH_EINVAL, "",
                   "partition %zu does not exist (the plan has %zu)", part,
                   p->n_parts);
        return NULL;
    }
    r = xcalloc(1, sizeof *r);
    r->p = p;
    r->part = &p->parts[part];
    r->file = &p->files[r->part->file];
    r->fd = -1;
    r->n_cols = p->in_schema->n;
    r->line = r->part->line;
    if (p->in_format == FMT_PARQUET)
        input_pq_context(r, part);
    else
        snprintf(r->ctx, sizeof r->ctx,
                 "partition %zu (file %s, bytes %llu-%llu)", part,
                 r->file->rel, (unsigned long long)r->part->start,
                 (unsigned long long)r->part->end);
    r->need = xmalloc(r->n_cols + 1);
    if (need != NULL)
        memcpy(r->need, need, r->n_cols);
    else
        memset(r->need, 1, r->n_cols);
    r->row = xcalloc(r->n_cols + 1, sizeof *r->row);
    if (p->in_format == FMT_LINES && r->n_cols != 1) {
        rc = in_fail(r, err, SH_EINVAL,
                     "input: the lines format has one column, not %zu",
                     r->n_cols);
        goto done;
    }
    for (i = 0; p->in_format == FMT_JSONL && i < r->n_cols; i++) {
        const char *name = p->in_schema->names[i];
        size_t      len = strlen(name);

        if (input_names_find(&r->cols, name, len) >= 0) {
            rc = in_fail(r, err, SH_EINVAL,
                         "input: the column name '%s' appears twice", name);
            goto done;
        }
        input_names_add(&r->cols, name, len); /* gets number i */
    }
    d.lines = p->in_format != FMT_CSV;
    if (source_is_remote(r->file)) {
        /* Ranged GETs; If-Match on the plan's ETag notices a change. */
        if (p->in_gzip) {
            rc = in_fail(r, err, SH_EINVAL, "gzip input from object "
                         "storage is not supported yet");
            goto done;
        }
        r->src = source_open(r->file, r->part->start, r->part->end, err);
        if (r->src == NULL) {
            rc = in_fail(r, err, err->code ? err->code : SH_EINVAL, "%s",
                         err->msg);
            goto done;
        }
        r->rd = csv_reader_new_range_fn(source_read, r->src,
                                        r->part->start, r->part->end,
                                        r->part->line, &d);
        goto done;
    }
    if ((rc = open_file(r, err)) != 0)
        goto done;
    if (p->in_format == FMT_PARQUET) {
        sh_err e;

        r->pq = input_pq_open(p, part, r->fd, r->need, &e);
        if (r->pq == NULL)
            rc = in_fail(r, err, e.code ? e.code : SH_EDATA, "input: %s",
                         e.msg);
        goto done;
    }
    if (p->in_gzip && r->part->start >= r->part->end) {
        /* The empty partition of an input without records: no reader. */
    } else if (p->in_gzip) {
        r->gz = input_gz_new(r->fd);
        r->skip_header = p->in_format == FMT_CSV && p->dialect.header;
        r->rd = csv_reader_new_fn(input_gz_read, r->gz, 1, &d);
    } else {
        r->rd = csv_reader_new(r->fd, r->part->start, r->part->end,
                               r->part->line, &d);
    }

done:
    if (rc != 0) {
        input_free(r);
        r = NULL;
    }
    return r;
}

/*
 * The next record of the reader, as a row. Returns 0 or an error code;
 * 1 when the record is no row (a blank jsonl line). 'f' and 'nf' are the
 * record's fields.
 */
static int
parse_record(input_reader *r, const csv_field *f, size_t nf, sh_err *err)
{
    switch (r->p->in_format) {
    case FMT_LINES:
        r->line = csv_reader_line(r->rd);
        return parse_line(r, f, err);
    case FMT_JSONL:
        return parse_jsonl(r, f, err);
    case FMT_CSV:
    case FMT_PARQUET: /* input_pq.c */
        break;
    }
    r->line = csv_reader_line(r->rd);
    if (nf != r->n_cols) {
        return in_fail(r, err, SH_EDATA,
                       "input: line %llu has %zu fields, expected %zu",
                       (unsigned long long)r->line, nf, r->n_cols);
    }
    return parse_csv(r, f, err);
}

/*
 * The next row; see input.h. Bad records are errors, or skipped and
 * counted with on_error skip. Gzip CSV with a header skips it first (the
 * partition is the whole file).
 */
int
input_next(input_reader *r, const sh_value **row, sh_err *err)
{
    const csv_field *f;
    size_t           nf;
    sh_err           e;
    int              rc;

    if (r->pq != NULL) {
        rc = input_pq_next(r->pq, row, &e);
        if (rc < 0)
            return in_fail(r, err, rc, "input: %s", e.msg);
        r->rows += (uint64_t)rc;
        r->line = r->rows;
        return rc;
    }
    if (r->rd == NULL)
        return 0;
    for (;;) {
        rc = csv_reader_next(r->rd, &f, &nf, &e);
        if (rc < 0)
            return in_fail(r, err, e.code ? e.code : SH_EIO, "input: %s",
                           e.msg);
        if (rc == 0)
            return 0;
        if (r->skip_header) {
            r->skip_header = 0;
            continue;
        }
        rc = parse_record(r, f, nf, err);
        if (rc == 1)
            continue; /* a blank jsonl line */
        r->rows++;
        if (rc == 0) {
            *row = r->row;
            return 1;
        }
        if (!r->p->on_error_skip)
            return rc;
        sh_err_clear(err);
        r->skipped++;
    }
}

/* The partition's context, for messages; owned by 'r'. */
const char *
input_context(const input_reader *r)
{
    return r->ctx;
}

/* 1-based line of the record input_next returned last. */
uint64_t
input_line(const input_reader *r)
{
    return r->line;
}

/* Records read, skipped ones included. */
uint64_t
input_rows(const input_reader *r)
{
    return r->rows;
}

/* Records skipped (on_error skip). */
uint64_t
input_skipped(const input_reader *r)
{
    return r->skipped;
}

/* Bytes of the partition consumed so far (compressed bytes for gzip). */
uint64_t
input_bytes(const input_reader *r)
{
    if (r->pq != NULL)
        return input_pq_bytes(r->pq);
    if (r->gz != NULL)
        return input_gz_bytes_in(r->gz);
    return r->rd ? csv_reader_bytes(r->rd) : 0;
}

/* Close the file and free the reader; NULL-safe. */
void
input_free(input_reader *r)
{
    if (r == NULL)
        return;
    csv_reader_free(r->rd);
    input_gz_free(r->gz);
    source_free(r->src);
    input_pq_free(r->pq); /* before its fd is closed */
    input_json_free(&r->json);
    input_names_free(&r->cols);
    if (r->fd >= 0)
        (void)fsys_close(r->fd);
    free(r->need);
    free(r->row);
    free(r);
}
