/*
 * rowfile.c - sheaf's intermediate row files: a compact binary encoding of
 * typed rows, written and read sequentially through large buffers.
 *
 * Layout (all integers little-endian):
 *
 *   header   "SHRF", version (1 byte), n_cols (4 bytes)
 *   rows     n_cols values each, one after the other; a value is a tag
 *            byte, then its payload:
 *              0x00        null
 *              0x01 0x02   false, true
 *              0x03        int: zigzag LEB128 varint (1 to 10 bytes)
 *              0x04        float: the 8 bytes of the IEEE double
 *              0x05        string: LEB128 length, then the bytes
 *              0x40-0x7f   int 0..63, no payload
 *              0x80-0xff   string of 0..127 bytes, then the bytes
 *            a row of zero columns is the single byte 0x3e
 *   trailer  0x3f, then the number of rows (8 bytes); nothing after it
 *
 * Strings are bytes of any value (NUL included): partial aggregate states
 * travel as strings. The trailer lets a reader tell a complete file from
 * one cut short at a row boundary; a tag that is not listed, a varint too
 * long, a length beyond the end of the file or bytes after the trailer are
 * reported as a corrupt file (SH_EDATA, naming the path).
 *
 * The writer encodes into a buffer that starts at 64 KiB and doubles up to
 * 1 MiB as the file grows (many small files, such as hash buckets, keep
 * small buffers), and write(2)s it whole; a string longer than the buffer
 * goes straight to the file. rowfile_close writes the trailer, fsyncs the
 * file, renames "<path>.tmp" to 'path' and fsyncs the directory, so a file
 * that exists under its final name is complete and durable (a task commits
 * its outputs only after closing them).
 *
 * The reader refills a 1 MiB buffer (or the size given to rowfile_open_buf;
 * never more than the file needs) and decodes a row in place: string values
 * point into the buffer. A row cut by the end of the buffer is moved to the
 * front and the rest read in; a row larger than the buffer grows it.
 * Nothing is allocated per row.
 */
#include "rowfile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define RF_MAGIC        "SHRF"
#define RF_VERSION      1
#define RF_HEADER_BYTES 9
#define RF_BUF_BYTES    (1u << 20)
#define RF_MIN_BUF      4096u
#define RF_WRITE_START  (64u << 10) /* first size of a writer's buffer */
/* The most bytes a value takes besides a string's bytes: tag + varint. */
#define RF_MAX_VALUE 11

enum {
    TAG_NULL = 0x00,
    TAG_FALSE = 0x01,
    TAG_TRUE = 0x02,
    TAG_INT = 0x03,
    TAG_FLOAT = 0x04,
    TAG_STR = 0x05,
    TAG_ROW = 0x3e,       /* a row of zero columns */
    TAG_END = 0x3f,       /* the trailer */
    TAG_SMALL_INT = 0x40, /* 0x40 + v for an int v in 0..63 */
    TAG_SHORT_STR = 0x80  /* 0x80 + n for a string of n < 128 bytes */
};

struct rowfile_writer {
    int            fd;          /* the temporary file, or -1 */
    char          *path;        /* final path (owned) */
    char          *tmp_path;    /* "<path>.tmp" (owned) */
    size_t         n_cols;      /* values per row */
    unsigned char *buf;         /* encoded bytes not yet written */
    size_t         len;         /* bytes in 'buf' */
    size_t         cap;         /* size of 'buf' */
    uint64_t       rows;        /* rows written */
    uint64_t       flushed;     /* bytes already handed to write(2) */
    int            saved_errno; /* errno of a failed write, 0 if none */
    int            scratch;     /* 1: no fsync at close (dies with its task) */
};

struct rowfile_reader {
    int            fd;        /* the file */
    char          *path;      /* owned, for messages */
    size_t         n_cols;    /* values per row */
    unsigned char *buf;       /* bytes read and not yet consumed */
    size_t         pos;       /* next byte to decode */
    size_t         end;       /* bytes valid in 'buf' */
    size_t         cap;       /* size of 'buf' */
    uint64_t       base;      /* file offset of buf[0] */
    uint64_t       file_size; /* size at open, to bound lengths */
    uint64_t       rows;      /* rows returned */
    sh_value      *row;       /* the current row (n_cols values) */
    int            eof;       /* read(2) returned 0 */
    int            done;      /* the trailer has been read */
};

static inline unsigned char *
put_le64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
    return p + 8;
}

static inline uint64_t
get_le64(const unsigned char *p)
{
    uint64_t x = 0;

    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static inline unsigned char *
put_varint(unsigned char *p, uint64_t x)
{
    while (x >= 0x80) {
        *p++ = (unsigned char)(x | 0x80);
        x >>= 7;
    }
    *p++ = (unsigned char)x;
    return p;
}

/*
 * Decode a varint at 'p' (not past 'end') into *out. Returns the byte after
 * it, NULL when the bytes end first (*bad = 0) or the varint is longer than
 * 64 bits (*bad = 1).
 */
static inline const unsigned char *
get_varint(const unsigned char *p, const unsigned char *end, uint64_t *out,
           int *bad)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end) {
            *bad = 0;
            return NULL;
        }
        unsigned char c = *p++;

        if (shift == 63 && c > 1) {
            *bad = 1;
            return NULL;
        }
        x |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = x;
            return p;
        }
    }
    *bad = 1;
    return NULL;
}

static inline uint64_t
zigzag(int64_t i)
{
    return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
}

static inline int64_t
unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Write all 'n' bytes at 'p'; returns 0, or -1 with w->saved_errno set. */
static int
write_all(rowfile_writer *w, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = write(w->fd, c, n);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            w->saved_errno = errno;
            return -1;
        }
        c += k;
        n -= (size_t)k;
        w->flushed += (uint64_t)k;
    }
    return 0;
}

static int
write_failed(rowfile_writer *w, sh_err *err)
{
    return sh_err_set(err, SH_EIO, "", "cannot write %s: %s", w->tmp_path,
                      strerror(w->saved_errno));
}

static int
flush(rowfile_writer *w, sh_err *err)
{
    if (w->len > 0 && write_all(w, w->buf, w->len) < 0)
        return write_failed(w, err);
    w->len = 0;
    return 0;
}

/*
 * Make room for 'n' more bytes (n <= RF_BUF_BYTES): grow the buffer while
 * it is under RF_BUF_BYTES (so small files keep small buffers), else
 * flush it.
 */
static int
make_room(rowfile_writer *w, size_t n, sh_err *err)
{
    if (w->cap < RF_BUF_BYTES) {
        size_t cap = w->cap;

        while (cap < RF_BUF_BYTES && cap - w->len < n)
            cap *= 2;
        if (cap != w->cap) {
            w->buf = xrealloc(w->buf, cap);
            w->cap = cap;
        }
        if (w->cap - w->len >= n)
            return 0;
    }
    return flush(w, err);
}

/* Append 'n' raw bytes; a run longer than the buffer bypasses it. */
static int
append_bytes(rowfile_writer *w, const void *p, size_t n, sh_err *err)
{
    if (n > w->cap - w->len && n <= RF_BUF_BYTES && make_room(w, n, err) < 0)
        return SH_EIO;
    if (n <= w->cap - w->len) {
        if (n > 0)
            memcpy(w->buf + w->len, p, n);
        w->len += n;
        return 0;
    }
    if (flush(w, err) < 0)
        return SH_EIO;
    if (n >= w->cap)
        return write_all(w, p, n) < 0 ? write_failed(w, err) : 0;
    memcpy(w->buf, p, n);
    w->len = n;
    return 0;
}

/*
 * Create "<path>.tmp" and a writer for it. The header goes to the buffer.
 */
rowfile_writer *
rowfile_create(const char *path, size_t n_cols, sh_err *err)
{
    rowfile_writer *w;
    unsigned char  *p;

    if (n_cols > UINT32_MAX) {
        sh_err_set(err, SH_EIO, "", "cannot create %s: %zu columns", path,
                   n_cols);
        return NULL;
    }
    w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    w->tmp_path = xasprintf("%s.tmp", path);
    w->n_cols = n_cols;
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        sh_err_set(err, SH_EIO, "", "cannot create %s: %s", w->tmp_path,
                   strerror(errno));
        free(w->path);
        free(w->tmp_path);
        free(w);
        return NULL;
    }
    w->cap = RF_WRITE_START;
    w->buf = xmalloc(w->cap);
    p = w->buf;
    memcpy(p, RF_MAGIC, 4);
    p[4] = RF_VERSION;
    for (int i = 0; i < 4; i++)
        p[5 + i] = (unsigned char)(n_cols >> (8 * i));
    w->len = RF_HEADER_BYTES;
    return w;
}

/* As rowfile_create, for a file no crash needs to survive. */
rowfile_writer *
rowfile_create_scratch(const char *path, size_t n_cols, sh_err *err)
{
    rowfile_writer *w = rowfile_create(path, n_cols, err);

    if (w != NULL)
        w->scratch = 1;
    return w;
}

/*
 * Append one row. The fixed part of every value (at most RF_MAX_VALUE
 * bytes) is encoded straight into the buffer; string bytes are copied,
 * or written directly when they do not fit.
 */
int
rowfile_write(rowfile_writer *w, const sh_value *row, sh_err *err)
{
    if (w->saved_errno != 0)
        return write_failed(w, err);
    if (w->n_cols == 0) {
        w->rows++;
        return append_bytes(w, "\x3e", 1, err);
    }
    for (size_t i = 0; i < w->n_cols; i++) {
        const sh_value *v = &row[i];
        unsigned char  *p;

        if (w->cap - w->len < RF_MAX_VALUE &&
            make_room(w, RF_MAX_VALUE, err) < 0)
            return SH_EIO;
        p = w->buf + w->len;
        switch (v->type) {
        case SH_NULL:
            *p++ = TAG_NULL;
            break;
        case SH_BOOL:
            *p++ = v->u.b ? TAG_TRUE : TAG_FALSE;
            break;
        case SH_INT:
            if (v->u.i >= 0 && v->u.i < 64) {
                *p++ = (unsigned char)(TAG_SMALL_INT + v->u.i);
            } else {
                *p++ = TAG_INT;
                p = put_varint(p, zigzag(v->u.i));
            }
            break;
        case SH_FLOAT: {
            uint64_t bits;

            memcpy(&bits, &v->u.f, 8);
            *p++ = TAG_FLOAT;
            p = put_le64(p, bits);
            break;
        }
        case SH_STRING:
            if (v->u.s.len < 128) {
                *p++ = (unsigned char)(TAG_SHORT_STR + v->u.s.len);
            } else {
                *p++ = TAG_STR;
                p = put_varint(p, v->u.s.len);
            }
            w->len = (size_t)(p - w->buf);
            if (append_bytes(w, v->u.s.ptr, v->u.s.len, err) < 0)
                return SH_EIO;
            continue;
        default:
            assert(!"rowfile_write: value of unknown type");
            *p++ = TAG_NULL;
            break;
        }
        w->len = (size_t)(p - w->buf);
    }
    w->rows++;
    return 0;
}

uint64_t
rowfile_rows(const rowfile_writer *w)
{
    return w->rows;
}

/* Bytes of the file so far, buffered ones included (not the trailer). */
uint64_t
rowfile_bytes(const rowfile_writer *w)
{
    return w->flushed + w->len;
}

static void
writer_free(rowfile_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

/*
 * Write the trailer, flush, fsync, rename to the final path and fsync the
 * directory. Frees 'w' whatever happens; on failure the temporary file is
 * removed and SH_EIO returned.
 */
int
rowfile_close(rowfile_writer *w, sh_err *err)
{
    unsigned char trailer[9];
    const char   *call = NULL;
    int           rc = 0, e = 0;

    if (w->saved_errno != 0) {
        rc = write_failed(w, err);
        goto done;
    }
    trailer[0] = TAG_END;
    put_le64(trailer + 1, w->rows);
    if (append_bytes(w, trailer, sizeof trailer, err) < 0 ||
        flush(w, err) < 0) {
        rc = SH_EIO;
        goto done;
    }
    if (!w->scratch && fsync(w->fd) < 0) {
        call = "fsync";
        e = errno;
    }
    if (close(w->fd) < 0 && call == NULL) {
        call = "close";
        e = errno;
    }
    w->fd = -1;
    if (call == NULL && rename(w->tmp_path, w->path) < 0) {
        call = "rename";
        e = errno;
    }
    if (call != NULL) {
        rc = sh_err_set(err, SH_EIO, "", "cannot %s %s: %s", call, w->tmp_path,
                        strerror(e));
        goto done;
    }
    if (!w->scratch && util_sync_dir(w->path) < 0) {
        rc = sh_err_set(err, SH_EIO, "", "cannot fsync the directory of %s: %s",
                        w->path, strerror(errno));
        unlink(w->path);
        goto done;
    }
    writer_free(w);
    return 0;

done:
    unlink(w->tmp_path);
    writer_free(w);
    return rc;
}

void
rowfile_abort(rowfile_writer *w)
{
    if (w == NULL)
        return;
    unlink(w->tmp_path);
    writer_free(w);
}

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
    return sh_err_set(
        err, SH_EDATA, "",
        "row file %s is corrupt at byte %" PRIu64 " (row %" PRIu64 "): %s",
        r->path, r->base + (uint64_t)(at - r->buf), r->rows + 1, what);
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
        ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);

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

/*
 * Open 'path' reading through a buffer of 'buf_bytes' (at least 4 KiB; it
 * grows for a row that does not fit). Reads and checks the header.
 */
rowfile_reader *
rowfile_open_buf(const char *path, size_t buf_bytes, sh_err *err)
{
    rowfile_reader *r = xcalloc(1, sizeof *r);
    struct stat     st;
    uint32_t        n_cols = 0;

    r->path = xstrdup(path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) < 0) {
        sh_err_set(err, SH_EIO, "", "cannot open %s: %s", path,
                   strerror(errno));
        goto fail;
    }
    r->file_size = (uint64_t)st.st_size;
    /* No bigger than the file (plus one byte, to see its end at once). */
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
    if (r->buf[4] != RF_VERSION) {
        sh_err_set(err, SH_EDATA, "", "row file %s has version %u, not %u",
                   path, r->buf[4], RF_VERSION);
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

/* What decode_row found. */
enum {
    DEC_ROW,
    DEC_MORE,
    DEC_END,
    DEC_BAD
};

/*
 * Decode the row at r->pos into r->row. DEC_ROW: done, r->pos moved past
 * it. DEC_MORE: the buffer ends first; *need is a lower bound of the row's
 * size. DEC_END: the trailer tag is next. DEC_BAD: corrupt; *bad_at and
 * *what say where and why.
 */
static int
decode_row(rowfile_reader *r, size_t *need, const unsigned char **bad_at,
           const char **what)
{
    const unsigned char *start = r->buf + r->pos, *p = start;
    const unsigned char *end = r->buf + r->end;
    uint64_t             x;
    int                  bad = 0;

    if (r->n_cols == 0) {
        if (p >= end)
            goto more;
        if (*p == TAG_END)
            return DEC_END;
        if (*p != TAG_ROW) {
            *bad_at = p;
            *what = "not a row tag";
            return DEC_BAD;
        }
        r->pos++;
        return DEC_ROW;
    }
    for (size_t i = 0; i < r->n_cols; i++) {
        sh_value            *v = &r->row[i];
        const unsigned char *at = p;
        unsigned             tag;

        if (p >= end)
            goto more;
        tag = *p++;
        if (tag >= TAG_SHORT_STR) {
            size_t n = tag - TAG_SHORT_STR;

            if ((size_t)(end - p) < n) {
                *need = (size_t)(p - start) + n;
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
            p = get_varint(p, end, &x, &bad);
            if (p == NULL)
                goto varint;
            v->type = SH_INT;
            v->u.i = unzigzag(x);
            break;
        case TAG_FLOAT:
            if (end - p < 8) {
                *need = (size_t)(p - start) + 8;
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
                goto varint;
            if (x > r->file_size) {
                *bad_at = at;
                *what = "a string longer than the file";
                return DEC_BAD;
            }
            if ((uint64_t)(end - p) < x) {
                *need = (size_t)(p - start) + (size_t)x;
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
            *bad_at = at;
            *what = "the trailer inside a row";
            return DEC_BAD;
        default:
            *bad_at = at;
            *what = "an unknown value tag";
            return DEC_BAD;
        }
        continue;
    varint:
        if (bad) {
            *bad_at = at;
            *what = "a varint longer than 64 bits";
            return DEC_BAD;
        }
        goto more;
    }
    r->pos = (size_t)(p - r->buf);
    return DEC_ROW;

more:
    *need = (size_t)(end - start) + 1;
    return DEC_MORE;
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
        const unsigned char *bad_at = NULL;
        const char          *what = NULL;
        size_t               need = 0;
        int                  rc;

        switch (decode_row(r, &need, &bad_at, &what)) {
        case DEC_ROW:
            r->rows++;
            *row = r->row;
            return 1;
        case DEC_END:
            rc = read_trailer(r, err);
            return rc < 0 ? rc : 0;
        case DEC_BAD:
            return corrupt(r, bad_at, what, err);
        default:
            break;
        }
        /* DEC_MORE: the row needs at least 'need' bytes from r->pos. */
        if (r->eof || r->base + r->pos + need > r->file_size)
            return truncated(r, err);
        if (refill(r, need, err) < 0)
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
        close(r->fd);
    free(r->buf);
    free(r->row);
    free(r->path);
    free(r);
}
