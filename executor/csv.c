/*
 * csv.c - the record scanner: one state machine that both cuts a file into
 * record-aligned byte ranges (csv_split) and reads the records of a range
 * (csv_reader_next); CSV records, or lines (csv_dialect.lines).
 *
 * The reader reads the file with pread in blocks of csv_block_bytes (or
 * pulls them from a csv_read_fn, for inflated input) into one buffer,
 * which grows (doubling) only when a single record does not fit, so
 * memory is bounded by the largest record whatever the range's size. Fields
 * are slices of that buffer; a quoted field that holds "" or characters after
 * its closing quote is rewritten in place once its record is complete. The
 * fields array is reused from record to record.
 *
 * A record is scanned in one pass that never modifies the buffer: if the
 * buffer ends before the record does, the partial record is moved to the
 * front, more is read, and the record is scanned again from its start. Only
 * a complete record is unquoted in place, so a rescan never sees rewritten
 * bytes.
 *
 * The byte after the last valid byte of the buffer is always a sentinel LF,
 * followed by zeros up to CSV_PAD_BYTES, so the inner loops look for
 * "delimiter, CR or LF" (unquoted data) and "quote, CR or LF" (quoted data)
 * with no bounds check, 16 then 64 bytes at a time with SSE2, and compare
 * the stop position with the buffer's end only when they stop at a line
 * end. Quoted data with no line end costs one pass; each CR or LF inside
 * quotes stops the scan once, to be counted for line numbers.
 *
 * Line ends are LF, CR LF and a lone CR (as pandas and Python's universal
 * newlines read them): a CR LF is always one line end, never a CR's line
 * then an empty one, so a CR that is the buffer's last byte is not taken
 * for a line end until the next byte is known (or the file has ended). The
 * splitter runs this same reader, so its cuts never fall between the two.
 *
 * Decisions the header leaves open:
 * - The end of the file is a line end too.
 * - An empty line is no bytes between two line ends, the start of the
 *   range, or the end of the file (so "\r\r\n" is a line end and an
 *   empty line). A line of one blank or one delimiter is a record (of one
 *   blank field, or of two empty fields).
 * - Line numbers count line ends, those inside quoted fields included.
 * - csv_split's first range starts at 'data_start' even when a byte-order
 *   mark or empty lines come before its first record, so the ranges always
 *   cover ['data_start', 'file_size') with no gap. Every later range starts
 *   at a record's first byte.
 * - The delimiter and the quote must differ, and neither may be LF or CR;
 *   otherwise csv_split and csv_reader_next fail with SH_EINVAL.
 * - 'header' in csv_dialect is not used here: skipping the header record is
 *   the caller's business.
 * - Lines: a CR just before the end of the data is dropped as for CSV; the
 *   line of a lone CR is a record of one empty field.
 */
#include "csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "../lib/fsys.h"
#include "../lib/util.h"

/* The default size of a read, and of the buffer until a record outgrows it. */
#define CSV_BLOCK_BYTES_DEFAULT ((size_t)1 << 20)
/* Bytes allocated past the buffer's capacity: the sentinel and SIMD reads. */
#define CSV_PAD_BYTES 128

/* What scan_record found. */
enum {
    SCAN_RECORD = 1, /* a complete record */
    SCAN_MORE = 0    /* the buffer ended inside the record: read more */
};

/* csv_field.quoted while a record is scanned: quoted, needs unquoting. */
#define FIELD_FIXUP 2

static size_t csv_block_bytes = CSV_BLOCK_BYTES_DEFAULT;
static size_t csv_max_record = CSV_MAX_RECORD_BYTES_DEFAULT;
static size_t csv_max_columns = CSV_MAX_COLUMNS_DEFAULT;

void
csv_set_limits(size_t max_record_bytes, size_t max_columns)
{
    csv_max_record = max_record_bytes ? max_record_bytes
                                      : CSV_MAX_RECORD_BYTES_DEFAULT;
    csv_max_columns = max_columns ? max_columns : CSV_MAX_COLUMNS_DEFAULT;
}

struct csv_reader {
    int         fd;         /* borrowed; -1 when 'read_fn' gives the bytes */
    csv_read_fn read_fn;    /* the stream's source, or NULL for 'fd' */
    void       *read_ctx;   /* its argument (borrowed) */
    csv_dialect d;          /* a copy of the caller's dialect */
    uint64_t    start;      /* first byte of the range */
    uint64_t    end;        /* records must start before this offset */
    uint64_t    limit;      /* never read at or past this offset (EOF) */
    bool        split_mode; /* csv_split's reader: fields are not unquoted */
    bool        started;    /* the first call's checks are done */
    bool        eof;        /* a read returned 0 or 'limit' was reached */
    bool        done;       /* next returns 0 (or 'fail.code') from now on */
    sh_err      fail;       /* the error that stopped the reader, if any */

    char    *buf;     /* cap + CSV_PAD_BYTES bytes */
    size_t   cap;     /* bytes the buffer can hold before it grows */
    size_t   len;     /* bytes of the file in buf; buf[len] is LF */
    size_t   pos;     /* index in buf of the next unscanned byte */
    uint64_t buf_off; /* file offset of buf[0] */
    uint64_t line;    /* line number at buf[pos] */

    uint64_t rec_start; /* offset of the last record returned */
    uint64_t rec_end;   /* offset just past the last record returned */
    uint64_t rec_line;  /* line where the last record returned starts */

    csv_field *fields;     /* the last record's fields */
    size_t     fields_cap; /* slots allocated in 'fields' */
};

/*
 * Test hook: make the readers created from now on read in blocks of
 * 'block_bytes' (0 restores the default), so tests can put the buffer's end
 * at every position of a record. Not in csv.h on purpose: tests declare it.
 */
void csv_set_block_bytes_for_test(size_t block_bytes);

void
csv_set_block_bytes_for_test(size_t block_bytes)
{
    csv_block_bytes = block_bytes ? block_bytes : CSV_BLOCK_BYTES_DEFAULT;
}

/* 0 when the dialect can be scanned, else SH_EINVAL with 'err' filled. */
static int
dialect_check(const csv_dialect *d, sh_err *err)
{
    if (d->lines)
        return 0;
    if (d->delim == '\n' || d->delim == '\r')
        return sh_err_set(err, SH_EINVAL, NULL,
                          "the CSV delimiter cannot be a line end");
    if (d->quote == '\n' || d->quote == '\r')
        return sh_err_set(err, SH_EINVAL, NULL,
                          "the CSV quote cannot be a line end");
    if (d->delim == d->quote)
        return sh_err_set(err, SH_EINVAL, NULL,
                          "the CSV delimiter and quote must differ");
    return 0;
}

/*
 * The first byte at or after 'p' that is 'a', 'b' or LF (the callers pass
 * CR as 'b': every line end begins with CR or LF). The buffer's sentinel LF
 * ends the search. With SSE2 it looks at 16 bytes, then at 64 bytes a step
 * (short fields stop in the first 16; long ones go at a few bytes a cycle);
 * it may load up to 63 bytes past the sentinel, never use them.
 */
static inline const char *
find_stop(const char *p, char a, char b)
{
#ifdef __SSE2__
    const __m128i va = _mm_set1_epi8(a);
    const __m128i vb = _mm_set1_epi8(b);
    const __m128i vlf = _mm_set1_epi8('\n');
    __m128i       h0, h1, h2, h3, any;
    uint64_t      m;

#define CSV_LOAD(q) _mm_loadu_si128((const __m128i *)(const void *)(q))
#define CSV_HITS(x)                                     \
    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8((x), va),  \
                              _mm_cmpeq_epi8((x), vb)), \
                 _mm_cmpeq_epi8((x), vlf))
#define CSV_MASK(x) ((uint64_t)(unsigned)_mm_movemask_epi8(x))
    h0 = CSV_HITS(CSV_LOAD(p));
    if ((m = CSV_MASK(h0)) != 0)
        return p + __builtin_ctzll(m);
    for (p += 16;; p += 64) {
        h0 = CSV_HITS(CSV_LOAD(p));
        h1 = CSV_HITS(CSV_LOAD(p + 16));
        h2 = CSV_HITS(CSV_LOAD(p + 32));
        h3 = CSV_HITS(CSV_LOAD(p + 48));
        any = _mm_or_si128(_mm_or_si128(h0, h1), _mm_or_si128(h2, h3));
        if (CSV_MASK(any) == 0)
            continue;
        m = CSV_MASK(h0) | CSV_MASK(h1) << 16 | CSV_MASK(h2) << 32
            | CSV_MASK(h3) << 48;
        return p + __builtin_ctzll(m);
    }
#undef CSV_LOAD
#undef CSV_HITS
#undef CSV_MASK
#else
    while (*p != a && *p != b && *p != '\n')
        p++;
    return p;
#endif
}

/*
 * How many bytes the line end at 't' takes: 2 for CR LF, 1 for a lone CR
 * or an LF, 0 at 'lim' (the end of the data). A CR just before 'lim' is
 * lone: callers ask for more data first when more may follow.
 */
static inline size_t
line_end_len(const char *t, const char *lim)
{
    if (t == lim)
        return 0;
    return *t == '\r' && t + 1 < lim && t[1] == '\n' ? 2 : 1;
}

/* The errors of a record past the limits; the record starts at
 * buf[pos]. Return SH_EDATA. */
static int
too_long(const csv_reader *r, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, NULL,
                      "the record on line %llu (byte offset %llu) is longer "
                      "than %zu bytes, the limit (SHEAF_MAX_RECORD_BYTES)",
                      (unsigned long long)r->line,
                      (unsigned long long)(r->buf_off + r->pos),
                      csv_max_record);
}

static int
too_wide(const csv_reader *r, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, NULL,
                      "the record on line %llu (byte offset %llu) has more "
                      "than %zu columns, the limit (SHEAF_MAX_COLUMNS)",
                      (unsigned long long)r->line,
                      (unsigned long long)(r->buf_off + r->pos),
                      csv_max_columns);
}

/* Make room for at least one more field; returns the (moved) array. */
static csv_field *
fields_grow(csv_reader *r)
{
    r->fields_cap = r->fields_cap ? r->fields_cap * 2 : 16;
    r->fields = xrealloc(r->fields, r->fields_cap * sizeof *r->fields);
    return r->fields;
}

/*
 * Rewrite in place the 'n' bytes at 's' that follow a field's opening quote
 * (up to the field's end, a dropped CR excluded): "" becomes ", the closing
 * quote goes, what follows it is kept as is. Returns the new length.
 */
static size_t
unquote(char *s, size_t n, char quote)
{
    char *src = s, *w = s, *end = s + n;

    for (;;) {
        char  *q = memchr(src, quote, (size_t)(end - src));
        size_t k = (size_t)((q ? q : end) - src);

        if (w != src)
            memmove(w, src, k);
        w += k;
        if (q == NULL)
            break; /* not reached: a scanned field has its closing quote */
        if (q + 1 < end && q[1] == quote) {
            *w++ = quote;
            src = q + 2;
            continue;
        }
        k = (size_t)(end - (q + 1)); /* closing quote: keep what follows */
        memmove(w, q + 1, k);
        w += k;
        break;
    }
    return (size_t)(w - s);
}

/*
 * Describe in 'f' the field whose first byte is 'p' and whose end is 't' (a
 * delimiter, an LF, a dropped CR or the end of the file). 'close' is its
 * closing quote (NULL if it is unquoted); 'doubled' says whether it holds "".
 * Returns 1 when the field must still be unquoted in place, else 0.
 */
static inline int
field_set(csv_field *f, const char *p, const char *close, bool doubled,
          const char *t)
{
    if (close == NULL) {
        f->ptr = p;
        f->len = (size_t)(t - p);
        f->quoted = 0;
        return 0;
    }
    f->ptr = p + 1;
    if (!doubled && t == close + 1) {
        f->len = (size_t)(close - (p + 1));
        f->quoted = 1;
        return 0;
    }
    f->len = (size_t)(t - (p + 1));
    f->quoted = FIELD_FIXUP;
    return 1;
}

/*
 * Scan the record that starts at buf[pos] (not an empty line). Returns
 * SCAN_RECORD with the fields in r->fields, *n_fields, *n_fixup (how many
 * must be unquoted), *next (the index just past the record and its line
 * end) and *lines (the line ends the record holds and ends with); SCAN_MORE
 * when the buffer ends first and more of the file may follow (a CR as the
 * buffer's last byte may be the first half of a CR LF: more is read before
 * it is taken for a line end); or SH_EDATA when the file ends inside a
 * quoted field. Does not modify the buffer.
 */
static int
scan_record(csv_reader *r, size_t *n_fields, size_t *n_fixup, size_t *next,
            uint64_t *lines, sh_err *err)
{
    const char  delim = r->d.delim, quote = r->d.quote;
    const char *lim = r->buf + r->len;
    const char *p = r->buf + r->pos;
    csv_field  *fv = r->fields;
    size_t      nf = 0, nfix = 0;
    uint64_t    ends = 0; /* line ends inside quoted fields so far */

    for (;;) {
        const char *t, *close = NULL;
        bool        doubled = false;

        if (*p == quote) { /* never true at lim: *lim is LF */
            const char *q = p + 1;

            for (;;) {
                q = find_stop(q, quote, '\r');
                if (*q == '\n') {
                    if (q == lim)
                        goto unterminated;
                    ends++;
                    q++;
                    continue;
                }
                if (*q == '\r') {
                    /* Data; a lone CR counts as a line (CR LF: its LF). At
                     * lim - 1 the sentinel makes it look like CR LF, and
                     * the field is then unterminated in this buffer. */
                    ends += q[1] != '\n';
                    q++;
                    continue;
                }
                if (q[1] != quote)
                    break; /* at lim - 1 the tail's scan asks for more */
                doubled = true;
                q += 2;
            }
            close = q;
            t = find_stop(q + 1, delim, '\r');
        } else {
            t = find_stop(p, delim, '\r');
        }
        if (*t == delim) { /* never true at lim: *lim is LF */
            if (nf == r->fields_cap) {
                if (nf >= csv_max_columns)
                    return too_wide(r, err);
                fv = fields_grow(r);
            }
            nfix += field_set(&fv[nf++], p, close, doubled, t);
            p = t + 1;
            continue;
        }
        /* The record ends at t: LF, CR LF, a lone CR, or the end of the
         * file (t == lim). */
        if (!r->eof && (t == lim || (*t == '\r' && t + 1 == lim)))
            return SCAN_MORE;
        if (nf == r->fields_cap) {
            if (nf >= csv_max_columns)
                return too_wide(r, err);
            fv = fields_grow(r);
        }
        *next = (size_t)(t - r->buf) + line_end_len(t, lim);
        *lines = ends + (t != lim);
        nfix += field_set(&fv[nf++], p, close, doubled, t);
        *n_fields = nf;
        *n_fixup = nfix;
        return SCAN_RECORD;
    }

unterminated:
    if (!r->eof)
        return SCAN_MORE;
    /* The field opened on the record's line plus the line ends (in quoted
     * fields) before it. */
    {
        uint64_t open_ends = 0;

        for (const char *c = r->buf + r->pos; c < p; c++)
            open_ends += *c == '\n' || (*c == '\r' && c[1] != '\n');
        return sh_err_set(err, SH_EDATA, NULL,
                          "unterminated quoted field starting on line %llu",
                          (unsigned long long)(r->line + open_ends));
    }
}

/*
 * Scan the line that starts at buf[pos] (lines mode) into r->fields[0].
 * Returns SCAN_RECORD with *next (the index just past the line and its
 * LF, CR LF or lone CR) and *lines (1, or 0 when the data ends without a
 * line end), or SCAN_MORE when the buffer ends first (or with a CR) and
 * more may follow. Does not modify the buffer.
 */
static int
scan_line(csv_reader *r, size_t *next, uint64_t *lines)
{
    const char *lim = r->buf + r->len;
    const char *p = r->buf + r->pos;
    const char *t = find_stop(p, '\r', '\r'); /* the sentinel stops it */

    if (!r->eof && (t == lim || (*t == '\r' && t + 1 == lim)))
        return SCAN_MORE;
    if (r->fields_cap == 0)
        fields_grow(r);
    *next = (size_t)(t - r->buf) + line_end_len(t, lim);
    *lines = t != lim;
    r->fields[0].ptr = p;
    r->fields[0].len = (size_t)(t - p);
    r->fields[0].quoted = 0;
    return SCAN_RECORD;
}

/*
 * Keep the bytes from buf[keep] on, moved to the front of the buffer
 * (doubling it if they fill it), and read more after them. Sets r->eof when
 * the file has no more. Returns 0 or SH_EIO.
 */
static int
reader_fill(csv_reader *r, size_t keep, sh_err *err)
{
    uint64_t at;
    size_t   want;
    ssize_t  n;

    if (keep > 0) {
        memmove(r->buf, r->buf + keep, r->len - keep);
        r->len -= keep;
        r->pos -= keep;
        r->buf_off += keep;
    }
    if (r->len == r->cap) {
        /* One record fills the buffer (it starts at buf[0] now). */
        if (r->cap >= csv_max_record)
            return too_long(r, err);
        r->cap = r->cap * 2 < csv_max_record ? r->cap * 2 : csv_max_record;
        r->buf = xrealloc(r->buf, r->cap + CSV_PAD_BYTES);
    }
    at = r->buf_off + r->len;
    want = r->cap - r->len;
    if (at >= r->limit)
        want = 0;
    else if (r->limit - at < want)
        want = (size_t)(r->limit - at);
    if (r->read_fn != NULL) {
        n = want ? r->read_fn(r->read_ctx, r->buf + r->len, want, err) : 0;
        if (n < 0)
            return (int)n;
    } else {
        do
            n = want ? fsys_pread(r->fd, r->buf + r->len, want, (off_t)at) : 0;
        while (n < 0 && errno == EINTR);
    }
    if (n < 0)
        return sh_err_set(err, SH_EIO, NULL, "read at offset %llu: %s",
                          (unsigned long long)at, strerror(errno));
    if (n == 0)
        r->eof = true;
    r->len += (size_t)n;
    r->buf[r->len] = '\n';
    memset(r->buf + r->len + 1, 0, CSV_PAD_BYTES - 1);
    return 0;
}

/* Make a reader; csv_split's has a 'limit' and does not unquote fields. */
static csv_reader *
reader_new(int fd, uint64_t start, uint64_t end, uint64_t limit, uint64_t line,
           const csv_dialect *d, bool split_mode)
{
    csv_reader *r = xcalloc(1, sizeof *r);

    r->fd = fd;
    r->read_fn = NULL;
    r->d = *d;
    r->start = start;
    r->end = end;
    r->limit = limit;
    r->split_mode = split_mode;
    r->cap = csv_block_bytes;
    r->buf = xmalloc(r->cap + CSV_PAD_BYTES);
    r->buf[0] = '\n';
    memset(r->buf + 1, 0, CSV_PAD_BYTES - 1);
    r->buf_off = start;
    r->line = line;
    r->rec_start = r->rec_end = start;
    r->rec_line = line;
    return r;
}

/* Skip a byte-order mark at offset 0. Returns 0 or SH_EIO. */
static int
reader_skip_bom(csv_reader *r, sh_err *err)
{
    int rc;

    if (r->start != 0)
        return 0;
    while (r->len < 3 && !r->eof)
        if ((rc = reader_fill(r, 0, err)) != 0)
            return rc;
    if (r->len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0)
        r->pos = 3;
    return 0;
}

/*
 * Read the next record into r->fields. Returns 1, 0 at the end of the range,
 * or an error (also kept in r->fail and returned by later calls).
 */
static int
reader_next(csv_reader *r, size_t *n_fields, sh_err *err)
{
    int      rc = 0;
    size_t   next = 0, n_fixup = 0;
    uint64_t lines = 0;

    if (r->done) {
        if (err != NULL && r->fail.code != 0)
            *err = r->fail;
        return r->fail.code;
    }
    if (!r->started) {
        r->started = true;
        if ((rc = dialect_check(&r->d, err)) != 0
            || (rc = reader_skip_bom(r, err)) != 0)
            goto done;
    }
    for (;;) {
        if (r->buf_off + r->pos >= r->end)
            goto done; /* rc is 0: the range has no more records */
        if (r->pos + 1 >= r->len && !r->eof) {
            /* Deciding whether CR begins an empty line takes two bytes. */
            if ((rc = reader_fill(r, r->pos, err)) != 0)
                goto done;
            continue;
        }
        if (r->pos == r->len)
            goto done; /* the end of the file */
        if (r->d.lines) {
            if (scan_line(r, &next, &lines) == SCAN_MORE) {
                if ((rc = reader_fill(r, r->pos, err)) != 0)
                    goto done;
                continue;
            }
            *n_fields = 1;
            break;
        }
        if (r->buf[r->pos] == '\n' || r->buf[r->pos] == '\r') {
            /* An empty line: its end is LF, CR LF or a lone CR (the
             * check above put the byte after a CR in the buffer). */
            r->pos += line_end_len(r->buf + r->pos, r->buf + r->len);
            r->line++;
            continue;
        }
        rc = scan_record(r, n_fields, &n_fixup, &next, &lines, err);
        if (rc == SCAN_MORE) {
            if ((rc = reader_fill(r, r->pos, err)) != 0)
                goto done;
            continue;
        }
        if (rc < 0)
            goto done;
        break;
    }
    /* The limits hold exactly, not just when the buffer must grow. */
    if (next - r->pos > csv_max_record) {
        rc = too_long(r, err);
        goto done;
    }
    if (*n_fields > csv_max_columns) {
        rc = too_wide(r, err);
        goto done;
    }
    r->rec_start = r->buf_off + r->pos;
    r->rec_end = r->buf_off + next;
    r->rec_line = r->line;
    r->line += lines;
    r->pos = next;
    /* The record is complete: rewrite its fields with "" or a tail. */
    for (size_t i = 0; n_fixup > 0 && !r->split_mode; i++) {
        csv_field *f = &r->fields[i];

        if (f->quoted == FIELD_FIXUP) {
            f->len = unquote((char *)f->ptr, f->len, r->d.quote);
            f->quoted = 1;
            n_fixup--;
        }
    }
    return 1;

done:
    r->done = true;
    if (rc != 0) {
        if (err != NULL)
            r->fail = *err;
        else
            sh_err_set(&r->fail, rc, NULL, "CSV reader failed");
    }
    return rc;
}

/*
 * A reader of the records starting in ['start', 'end') of 'fd'; see csv.h.
 * Allocates one block; reads nothing until the first csv_reader_next.
 */
csv_reader *
csv_reader_new(int fd, uint64_t start, uint64_t end, uint64_t line,
               const csv_dialect *d)
{
    return reader_new(fd, start, end, UINT64_MAX, line, d, false);
}

/*
 * A reader of the whole stream 'fn' reads; see csv.h. Allocates one block;
 * calls 'fn' from the first csv_reader_next on.
 */
csv_reader *
csv_reader_new_fn(csv_read_fn fn, void *ctx, uint64_t line,
                  const csv_dialect *d)
{
    csv_reader *r = reader_new(-1, 0, UINT64_MAX, UINT64_MAX, line, d, false);

    r->read_fn = fn;
    r->read_ctx = ctx;
    return r;
}

/*
 * A reader of the records starting in ['start', 'end') of the stream 'fn'
 * reads from 'start' on; see csv.h.
 */
csv_reader *
csv_reader_new_range_fn(csv_read_fn fn, void *ctx, uint64_t start, uint64_t end,
                        uint64_t line, const csv_dialect *d)
{
    csv_reader *r = reader_new(-1, start, end, UINT64_MAX, line, d, false);

    r->read_fn = fn;
    r->read_ctx = ctx;
    return r;
}

/*
 * The next record of the range: 1 with *fields (owned by the reader, valid
 * until the next call) and *n_fields, 0 at the end, or SH_EIO, SH_EDATA or
 * SH_EINVAL (a bad dialect) with 'err' filled. After an error, later calls
 * return the same error.
 */
int
csv_reader_next(csv_reader *r, const csv_field **fields, size_t *n_fields,
                sh_err *err)
{
    int rc = reader_next(r, n_fields, err);

    if (rc == 1)
        *fields = r->fields;
    return rc;
}

/* The line where the last record returned starts ('line' before any). */
uint64_t
csv_reader_line(const csv_reader *r)
{
    return r->rec_line;
}

/* The offset just past the last record returned ('start' before any). */
uint64_t
csv_reader_offset(const csv_reader *r)
{
    return r->rec_end;
}

/* The offset of the last record returned ('start' before any). */
uint64_t
csv_reader_record_start(const csv_reader *r)
{
    return r->rec_start;
}

/*
 * Bytes of the range consumed: up to the end of the last record returned,
 * plus the byte-order mark and empty lines skipped after it.
 */
uint64_t
csv_reader_bytes(const csv_reader *r)
{
    return r->buf_off + r->pos - r->start;
}

/* Free 'r' and its buffer (the fields it returned die with it); NULL-safe. */
void
csv_reader_free(csv_reader *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r->fields);
    free(r);
}

/*
 * The smallest multiple of 'part_bytes' past 'base' that is greater than
 * 'off' (UINT64_MAX if it does not fit).
 */
static uint64_t
next_cut(uint64_t base, uint64_t part_bytes, uint64_t off)
{
    uint64_t k = (off - base) / part_bytes + 1;

    if (k > (UINT64_MAX - base) / part_bytes)
        return UINT64_MAX;
    return base + k * part_bytes;
}

/*
 * Cut ['data_start', 'file_size') into ranges; see csv.h. One pass of
 * csv_split's own reader over the data: every record it returns is a record
 * start, so the cuts are exactly where readers of the ranges begin. Cuts
 * are at the multiples of 'part_bytes' past 'base' (<= data_start). When a
 * record starts exactly at 'stop' the pass ends there (*stop_line: its
 * line; else 0). Also fails with SH_EINVAL for a bad dialect or
 * 'part_bytes' 0.
 */
static int
split(int fd, csv_read_fn fn, void *ctx, uint64_t data_start,
      uint64_t first_line, uint64_t file_size, const csv_dialect *d,
      uint64_t part_bytes, uint64_t base, uint64_t stop, uint64_t *stop_line,
      csv_range **out, size_t *n_out, sh_err *err)
{
    csv_reader *r = NULL;
    csv_range  *v = NULL;
    csv_range   cur = {data_start, file_size, first_line};
    size_t      n = 0, cap = 0, n_fields;
    uint64_t    cut = 0;
    bool        have_record = false;
    int         rc;

    *out = NULL;
    *n_out = 0;
    if (stop_line != NULL)
        *stop_line = 0;
    if ((rc = dialect_check(d, err)) != 0)
        goto done;
    if (part_bytes == 0) {
        rc = sh_err_set(err, SH_EINVAL, NULL, "partition size must be >= 1");
        goto done;
    }
    if (data_start >= file_size)
        goto done;
    r = reader_new(fd, data_start, file_size, file_size, first_line, d, true);
    r->read_fn = fn;
    r->read_ctx = ctx;
    while ((rc = reader_next(r, &n_fields, err)) == 1) {
        uint64_t at = r->rec_start;

        if (at >= stop) {
            if (at == stop && have_record) {
                *stop_line = r->rec_line;
                cur.end = at;
                break;
            }
            stop = UINT64_MAX; /* no record starts there: to the end */
        }
        if (!have_record) {
            /* The first range keeps 'data_start' as its start. */
            have_record = true;
            cut = next_cut(base, part_bytes, at);
            continue;
        }
        if (at < cut)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        cur.end = at;
        v[n++] = cur;
        cur.start = at;
        cur.line = r->rec_line;
        cut = next_cut(base, part_bytes, at);
    }
    if (rc < 0)
        goto done;
    rc = 0;
    if (have_record) {
        if (n == cap)
            v = xrealloc(v, (cap + 1) * sizeof *v);
        if (stop_line == NULL || *stop_line == 0)
            cur.end = file_size;
        v[n++] = cur;
    }
    *out = v;
    *n_out = n;
    v = NULL;

done:
    csv_reader_free(r);
    free(v);
    return rc;
}

int
csv_split(int fd, uint64_t data_start, uint64_t first_line, uint64_t file_size,
          const csv_dialect *d, uint64_t part_bytes, csv_range **out,
          size_t *n_out, sh_err *err)
{
    return split(fd, NULL, NULL, data_start, first_line, file_size, d,
                 part_bytes, data_start, UINT64_MAX, NULL, out, n_out, err);
}

/* csv_split with a cut base and a stop offset; see csv.h. */
int
csv_split_at(int fd, uint64_t data_start, uint64_t first_line,
             uint64_t file_size, const csv_dialect *d, uint64_t part_bytes,
             uint64_t base, uint64_t stop, uint64_t *stop_line, csv_range **out,
             size_t *n_out, sh_err *err)
{
    if (base > data_start) {
        return sh_err_set(err, SH_EINVAL, NULL,
                          "the cut base is past the data's start");
    }
    return split(fd, NULL, NULL, data_start, first_line, file_size, d,
                 part_bytes, base, stop, stop_line, out, n_out, err);
}

/* csv_split over a stream read from 'data_start' on; see csv.h. */
int
csv_split_fn(csv_read_fn fn, void *ctx, uint64_t data_start,
             uint64_t first_line, uint64_t file_size, const csv_dialect *d,
             uint64_t part_bytes, csv_range **out, size_t *n_out, sh_err *err)
{
    return split(-1, fn, ctx, data_start, first_line, file_size, d, part_bytes,
                 data_start, UINT64_MAX, NULL, out, n_out, err);
}
