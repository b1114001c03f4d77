/*
 * rowfile_read.c - reading sheaf's intermediate row files (rowfile.h):
 * a plain file, or one section of a sectioned file, decoded row by row in
 * place. The format is rowfile_int.h's; writing is rowfile.c.
 *
 * A section reader reads the header and then its section's chunks in
 * order, as one stream: everything else about reading is the same.
 *
 * The reader refills a 1 MiB buffer (or the size given to rowfile_open_buf;
 * never more than the file needs) and decodes a row in place: string values
 * point into the buffer. A row cut by the end of the buffer is moved to the
 * front and the rest read in; a row larger than the buffer grows it.
 * Nothing is allocated per row.
 */
#include "rowfile.h"
#include "rowfile_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

struct rowfile_reader {
    int            fd;        /* the file */
    char          *path;      /* owned, for messages */
    size_t         n_cols;    /* values per row */
    unsigned char *buf;       /* bytes read and not yet consumed */
    size_t         pos;       /* next byte to decode */
    size_t         end;       /* bytes valid in 'buf' */
    size_t         cap;       /* size of 'buf' */
    uint64_t       base;      /* file offset of buf[0] */
    uint64_t       file_size; /* bytes of the stream (the file, or the
                                 header and a section's chunks), to bound
                                 lengths */
    rf_chunk *ranges;         /* a section's stream: the header, then its
                                 chunks; NULL for a plain file */
    size_t    n_ranges;
    size_t    range_i;   /* the range being read */
    uint64_t  range_pos; /* bytes of it read */
    uint64_t  rows;      /* rows returned */
    sh_value *row;       /* the current row (n_cols values) */
    int       eof;       /* read(2) returned 0 */
    int       done;      /* the trailer has been read */
};

static int
read_failed(rowfile_reader *r, sh_err *err)
{
    return sh_err_set(err, SH_EIO, "", "cannot read %s: %s", r->path,
                      strerror(errno));
}

static int
truncated(rowfile_reader *r, sh_err *err)
{
    return sh_err_set(
        err, SH_EDATA, "",
        "row file %s is truncated: it ends in or after row %" PRIu64
        " without its trailer",
        r->path, r->rows + 1);
}

static int
corrupt(rowfile_reader *r, const unsigned char *at, const char *what,
        sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "",
                      "row file %s is corrupt at byte %" PRIu64 " (row %" PRIu64
                      "): %s",
                      r->path, r->base + (uint64_t)(at - r->buf), r->rows + 1,
                      what);
}

/*
 * Read up to 'n' bytes of the stream: the file itself, or for a section
 * the header and then its chunks one after the other. 0 at the end.
 */
static ssize_t
stream_read(rowfile_reader *r, void *p, size_t n)
{
    const rf_chunk *g;
    ssize_t         k;

    if (r->ranges == NULL)
        return fsys_read(r->fd, p, n);
    while (r->range_i < r->n_ranges
           && r->range_pos == r->ranges[r->range_i].len) {
        r->range_i++;
        r->range_pos = 0;
    }
    if (r->range_i == r->n_ranges)
        return 0;
    g = &r->ranges[r->range_i];
    if (n > g->len - r->range_pos)
        n = (size_t)(g->len - r->range_pos);
    k = fsys_pread(r->fd, p, n, (off_t)(g->off + r->range_pos));
    if (k > 0)
        r->range_pos += (uint64_t)k;
    return k;
}

/*
 * Make at least 'need' bytes from r->pos available in the buffer, or as
 * many as the file has: moves the unread bytes to the front, grows the
 * buffer when 'need' exceeds it, then reads until it holds 'need' bytes
 * (filling the buffer when it can). Returns 0 or SH_EIO.
 */
static int
refill(rowfile_reader *r, size_t need, sh_err *err)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->base += r->pos;
        r->end -= r->pos;
        r->pos = 0;
    }
    if (need > r->cap) {
        size_t cap = r->cap * 2 > need ? r->cap * 2 : need;

        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
    while (r->end < need && !r->eof) {
        ssize_t k = stream_read(r, r->buf + r->end, r->cap - r->end);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return read_failed(r, err);
        }
        if (k == 0)
            r->eof = 1;
        r->end += (size_t)k;
    }
    return 0;
}

rowfile_reader *
rowfile_open(const char *path, sh_err *err)
{
    return rowfile_open_buf(path, RF_BUF_BYTES, err);
}

static int
index_bad(rowfile_reader *r, const char *what, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "", "sectioned row file %s is corrupt: %s",
                      r->path, what);
}

/* Read exactly 'n' bytes at 'off'. 0, SH_EIO, or SH_EDATA when short. */
static int
pread_all(rowfile_reader *r, void *p, size_t n, uint64_t off, sh_err *err)
{
    char *c = p;

    while (n > 0) {
        ssize_t k = fsys_pread(r->fd, c, n, (off_t)off);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return read_failed(r, err);
        if (k == 0)
            return index_bad(r, "it ends inside its index", err);
        c += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/*
 * Read the footer and index of a sectioned file and keep section 'sec's
 * stream: the header, then the section's chunks in order. Sets
 * r->file_size to the stream's length.
 */
static int
load_section(rowfile_reader *r, size_t sec, uint64_t size, sh_err *err)
{
    unsigned char foot[RF_FOOTER_BYTES], *idx = NULL;
    uint64_t      at, n, i, total = RF_HEADER_BYTES;
    uint32_t      n_sec = 0;
    int           rc;

    if (size < RF_HEADER_BYTES + RF_FOOTER_BYTES)
        return index_bad(r, "too short for its footer", err);
    if ((rc = pread_all(r, foot, sizeof foot, size - sizeof foot, err)) != 0)
        return rc;
    if (memcmp(foot + 20, RF_FOOTER_MAGIC, 4) != 0)
        return index_bad(r, "no footer (cut short?)", err);
    at = get_le64(foot);
    n = get_le64(foot + 8);
    for (int k = 0; k < 4; k++)
        n_sec |= (uint32_t)foot[16 + k] << (8 * k);
    if (at < RF_HEADER_BYTES || n > (size - at) / RF_INDEX_ENTRY
        || at + n * RF_INDEX_ENTRY + RF_FOOTER_BYTES != size)
        return index_bad(r, "its footer does not match its size", err);
    if (sec >= n_sec)
        return sh_err_set(err, SH_EINVAL, "",
                          "row file %s has %u sections, not %zu", r->path,
                          n_sec, sec + 1);
    idx = xmalloc(n * RF_INDEX_ENTRY + 1);
    if ((rc = pread_all(r, idx, (size_t)(n * RF_INDEX_ENTRY), at, err)) != 0)
        goto done;
    r->ranges = xcalloc((size_t)n + 1, sizeof *r->ranges);
    r->ranges[0].off = 0;
    r->ranges[0].len = RF_HEADER_BYTES;
    r->n_ranges = 1;
    for (i = 0; i < n; i++) {
        const unsigned char *e = idx + i * RF_INDEX_ENTRY;
        uint32_t             s = 0;
        rf_chunk             c;

        for (int k = 0; k < 4; k++)
            s |= (uint32_t)e[k] << (8 * k);
        c.section = s;
        c.off = get_le64(e + 4);
        c.len = get_le64(e + 12);
        if (c.off < RF_HEADER_BYTES || c.off > at || c.len > at - c.off) {
            rc = index_bad(r, "a chunk outside the file", err);
            goto done;
        }
        if (s == sec) {
            r->ranges[r->n_ranges++] = c;
            total += c.len;
        }
    }
    r->file_size = total;
done:
    free(idx);
    return rc;
}

/*
 * Open 'path' reading through a buffer of 'buf_bytes' (at least 4 KiB; it
 * grows for a row that does not fit): the whole file (section < 0), or
 * section 'section' of a sectioned file. Reads and checks the header.
 */
static rowfile_reader *
open_stream(const char *path, long section, size_t buf_bytes, sh_err *err)
{
    rowfile_reader *r = xcalloc(1, sizeof *r);
    struct stat     st;
    uint32_t        n_cols = 0;
    unsigned        version = section < 0 ? RF_VERSION : RF_VERSION_SECT;

    r->path = xstrdup(path);
    r->fd = fsys_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (r->fd < 0 || fstat(r->fd, &st) < 0) {
        sh_err_set(err, SH_EIO, "", "cannot open %s: %s", path,
                   strerror(errno));
        goto fail;
    }
    r->file_size = (uint64_t)st.st_size;
    if (section >= 0
        && load_section(r, (size_t)section, r->file_size, err) != 0)
        goto fail;
    /* No bigger than the stream (plus one byte, to see its end at once). */
    if (buf_bytes > r->file_size + 1)
        buf_bytes = (size_t)r->file_size + 1;
    r->cap = buf_bytes < RF_MIN_BUF ? RF_MIN_BUF : buf_bytes;
    r->buf = xmalloc(r->cap);
    if (refill(r, RF_HEADER_BYTES, err) < 0)
        goto fail;
    if (r->end < RF_HEADER_BYTES || memcmp(r->buf, RF_MAGIC, 4) != 0) {
        sh_err_set(err, SH_EDATA, "", "%s is not a sheaf row file", path);
        goto fail;
    }
    if (r->buf[4] != version) {
        sh_err_set(err, SH_EDATA, "",
                   r->buf[4] == RF_VERSION_SECT
                       ? "row file %s is sectioned (version %u): open one "
                         "of its sections, not the whole file (version %u)"
                       : "row file %s has version %u, not %u",
                   path, r->buf[4], version);
        goto fail;
    }
    for (int i = 0; i < 4; i++)
        n_cols |= (uint32_t)r->buf[5 + i] << (8 * i);
    r->n_cols = n_cols;
    r->pos = RF_HEADER_BYTES;
    r->row = xcalloc(n_cols ? n_cols : 1, sizeof *r->row);
    return r;

fail:
    rowfile_free(r);
    return NULL;
}

rowfile_reader *
rowfile_open_buf(const char *path, size_t buf_bytes, sh_err *err)
{
    return open_stream(path, -1, buf_bytes, err);
}

rowfile_reader *
rowfile_open_section(const char *path, size_t section, size_t buf_bytes,
                     sh_err *err)
{
    if (section > LONG_MAX) {
        sh_err_set(err, SH_EINVAL, "", "row file %s: no section %zu", path,
                   section);
        return NULL;
    }
    return open_stream(path, (long)section, buf_bytes, err);
}

uint64_t
rowfile_section_bytes(const char *path, size_t section)
{
    sh_err          err;
    rowfile_reader *r = rowfile_open_section(path, section, RF_MIN_BUF, &err);
    uint64_t        n = r != NULL ? r->file_size : 0;

    rowfile_free(r);
    return n;
}

/* What decode_row found. */
enum { DEC_ROW, DEC_MORE, DEC_END, DEC_BAD };

/* A row being decoded, and why decode_row stopped short of its end. */
typedef struct rf_dec {
    const unsigned char *start;  /* the row's first byte in the buffer */
    const unsigned char *end;    /* the end of the bytes in the buffer */
    size_t               need;   /* DEC_MORE: a lower bound of its size */
    const unsigned char *bad_at; /* DEC_BAD: where it is corrupt */
    const char          *what;   /* DEC_BAD: how */
} rf_dec;

/* DEC_MORE: the row needs more than the buffer holds. */
static inline int
dec_more(rf_dec *d)
{
    d->need = (size_t)(d->end - d->start) + 1;
    return DEC_MORE;
}

/* DEC_BAD: the row is corrupt at 'at' ('what' says how). */
static inline int
dec_bad(rf_dec *d, const unsigned char *at, const char *what)
{
    d->bad_at = at;
    d->what = what;
    return DEC_BAD;
}

/*
 * Decode the payload of value 'i' of the row, whose tag (one below
 * TAG_SMALL_INT) is at 'at' and whose payload starts at *pp, into 'v',
 * and move *pp past it. Returns DEC_ROW when the value is decoded, else
 * DEC_MORE, DEC_END or DEC_BAD as decode_row.
 */
static inline int
decode_tagged(const rowfile_reader *r, rf_dec *d, size_t i,
              const unsigned char *at, const unsigned char **pp, sh_value *v)
{
    const unsigned char *p = *pp, *end = d->end;
    unsigned             tag = *at;
    uint64_t             x;
    int                  bad = 0;

    switch (tag) {
    case TAG_NULL:
        v->type = SH_NULL;
        v->u.i = 0;
        break;
    case TAG_FALSE:
    case TAG_TRUE:
        v->type = SH_BOOL;
        v->u.b = tag == TAG_TRUE;
        break;
    case TAG_INT:
    case TAG_DATE:
    case TAG_TS:
        p = get_varint(p, end, &x, &bad);
        if (p == NULL)
            break;
        v->type = tag == TAG_INT    ? SH_INT
                  : tag == TAG_DATE ? SH_DATE
                                    : SH_TIMESTAMP;
        v->u.i = unzigzag(x);
        break;
    case TAG_FLOAT:
        if (end - p < 8) {
            d->need = (size_t)(p - d->start) + 8;
            return DEC_MORE;
        }
        x = get_le64(p);
        p += 8;
        v->type = SH_FLOAT;
        memcpy(&v->u.f, &x, 8);
        break;
    case TAG_STR:
        p = get_varint(p, end, &x, &bad);
        if (p == NULL)
            break;
        if (x > r->file_size)
            return dec_bad(d, at, "a string longer than the file");
        if ((uint64_t)(end - p) < x) {
            d->need = (size_t)(p - d->start) + (size_t)x;
            return DEC_MORE;
        }
        v->type = SH_STRING;
        v->u.s.ptr = (const char *)p;
        v->u.s.len = (size_t)x;
        p += x;
        break;
    case TAG_END:
        if (i == 0)
            return DEC_END;
        return dec_bad(d, at, "the trailer inside a row");
    default:
        return dec_bad(d, at, "an unknown value tag");
    }
    if (p == NULL) /* a varint that did not decode */
        return bad ? dec_bad(d, at, "a varint longer than 64 bits")
                   : dec_more(d);
    *pp = p;
    return DEC_ROW;
}

/*
 * Decode the row at r->pos into r->row. DEC_ROW: done, r->pos moved past
 * it. DEC_MORE: the buffer ends first; d->need is a lower bound of the
 * row's size. DEC_END: the trailer tag is next. DEC_BAD: corrupt;
 * d->bad_at and d->what say where and why.
 */
static int
decode_row(rowfile_reader *r, rf_dec *d)
{
    const unsigned char *p = r->buf + r->pos, *end = r->buf + r->end;

    d->start = p;
    d->end = end;
    if (r->n_cols == 0) {
        if (p >= end)
            return dec_more(d);
        if (*p == TAG_END)
            return DEC_END;
        if (*p != TAG_ROW)
            return dec_bad(d, p, "not a row tag");
        r->pos++;
        return DEC_ROW;
    }
    for (size_t i = 0; i < r->n_cols; i++) {
        sh_value            *v = &r->row[i];
        const unsigned char *at = p;
        unsigned             tag;
        int                  rc;

        if (p >= end)
            return dec_more(d);
        tag = *p++;
        /* The two most common forms first: a short string, a small int. */
        if (tag >= TAG_SHORT_STR) {
            size_t n = tag - TAG_SHORT_STR;

            if ((size_t)(end - p) < n) {
                d->need = (size_t)(p - d->start) + n;
                return DEC_MORE;
            }
            v->type = SH_STRING;
            v->u.s.ptr = (const char *)p;
            v->u.s.len = n;
            p += n;
            continue;
        }
        if (tag >= TAG_SMALL_INT) {
            v->type = SH_INT;
            v->u.i = (int64_t)(tag - TAG_SMALL_INT);
            continue;
        }
        rc = decode_tagged(r, d, i, at, &p, v);
        if (rc != DEC_ROW)
            return rc;
    }
    r->pos = (size_t)(p - r->buf);
    return DEC_ROW;
}

/* Check the trailer at r->pos and that nothing follows it. */
static int
read_trailer(rowfile_reader *r, sh_err *err)
{
    uint64_t n;

    if (r->end - r->pos < 9) {
        if (refill(r, 9, err) < 0)
            return SH_EIO;
        if (r->end - r->pos < 9)
            return truncated(r, err);
    }
    n = get_le64(r->buf + r->pos + 1);
    if (n != r->rows)
        return sh_err_set(err, SH_EDATA, "",
                          "row file %s is corrupt: its trailer counts %" PRIu64
                          " rows, it holds %" PRIu64,
                          r->path, n, r->rows);
    r->pos += 9;
    if (r->pos == r->end && refill(r, 1, err) < 0)
        return SH_EIO;
    if (r->pos != r->end)
        return corrupt(r, r->buf + r->pos, "bytes after the trailer", err);
    r->done = 1;
    return 0;
}

/*
 * Decode the next row; refill (and grow) the buffer when the row is cut
 * by its end. String values point into the buffer until the next call.
 */
int
rowfile_next(rowfile_reader *r, const sh_value **row, sh_err *err)
{
    if (r->done)
        return 0;
    for (;;) {
        rf_dec d = {0};
        int    rc;

        switch (decode_row(r, &d)) {
        case DEC_ROW:
            r->rows++;
            *row = r->row;
            return 1;
        case DEC_END:
            rc = read_trailer(r, err);
            return rc < 0 ? rc : 0;
        case DEC_BAD:
            return corrupt(r, d.bad_at, d.what, err);
        default:
            break;
        }
        /* DEC_MORE: the row needs at least d.need bytes from r->pos. */
        if (r->eof || r->base + r->pos + d.need > r->file_size)
            return truncated(r, err);
        if (refill(r, d.need, err) < 0)
            return SH_EIO;
    }
}

size_t
rowfile_cols(const rowfile_reader *r)
{
    return r->n_cols;
}

void
rowfile_free(rowfile_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        (void)fsys_close(r->fd);
    free(r->buf);
    free(r->row);
    free(r->ranges);
    free(r->path);
    free(r);
}
