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
 * A sectioned file (version 2) holds several streams of rows in one file,
 * so a task that hashes its rows into 16 buckets makes one file, fsynced
 * once, not 16 (one fsync of a small file costs a journal commit: 16 of
 * them took 30-55 ms per task here, one 2-9 ms). Each section is written
 * through its own buffer; whenever a buffer is written out, its bytes go
 * at the end of the file as a chunk of that section's stream. A
 * section's stream is a row file's body: its rows, then its trailer.
 *
 *   header   "SHRF", 2, n_cols (4 bytes)
 *   chunks   byte runs of the sections' streams, in the order written
 *   index    per chunk: section (4 bytes), offset (8), length (8)
 *   footer   offset of the index (8), chunks (8), sections (4), "SHRX"
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

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

#define RF_MAGIC        "SHRF"
#define RF_VERSION      1
#define RF_VERSION_SECT 2  /* a sectioned file */
#define RF_FOOTER_MAGIC "SHRX"
#define RF_FOOTER_BYTES 24 /* index offset, chunks, sections, magic */
#define RF_INDEX_ENTRY  20 /* section, offset, length */
#define RF_HEADER_BYTES 9
#define RF_BUF_BYTES    ROWFILE_BUF_BYTES
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
    TAG_DATE = 0x06,      /* zigzag varint days */
    TAG_TS = 0x07,        /* zigzag varint microseconds */
    TAG_ROW = 0x3e,       /* a row of zero columns */
    TAG_END = 0x3f,       /* the trailer */
    TAG_SMALL_INT = 0x40, /* 0x40 + v for an int v in 0..63 */
    TAG_SHORT_STR = 0x80  /* 0x80 + n for a string of n < 128 bytes */
};

/* A byte run of one section's stream in a sectioned file. */
typedef struct rf_chunk {
    uint32_t section;
    uint64_t off;
    uint64_t len;
} rf_chunk;

/* The file under a writer: its own for a plain file, shared by the
 * sections' writers of a sectioned one. */
typedef struct rf_file {
    int       fd;          /* the temporary file, or -1 */
    char     *path;        /* final path (owned) */
    char     *tmp_path;    /* "<path>.tmp" (owned) */
    uint64_t  size;        /* bytes handed to write(2) */
    int       saved_errno; /* errno of a failed write, 0 if none */
    int       scratch;     /* 1: no fsync at close (dies with its task) */
    int       sectioned;   /* 1: writes are recorded as chunks */
    rf_chunk *chunks;      /* sectioned: every chunk, in file order */
    size_t    n_chunks;
    size_t    cap_chunks;
} rf_file;

struct rowfile_writer {
    rf_file       *f;           /* owned when plain */
    uint32_t       section;     /* sectioned: the stream this writes */
    size_t         n_cols;      /* values per row */
    unsigned char *buf;         /* encoded bytes not yet written */
    size_t         len;         /* bytes in 'buf' */
    size_t         cap;         /* size of 'buf' */
    uint64_t       rows;        /* rows written */
    uint64_t       flushed;     /* bytes of this stream already written */
};

struct rowfile_sections {
    rf_file          f;
    rowfile_writer **w;         /* one per section */
    size_t           n;
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
    uint64_t       file_size; /* bytes of the stream (the file, or the
                                 header and a section's chunks), to bound
                                 lengths */
    rf_chunk      *ranges;    /* a section's stream: the header, then its
                                 chunks; NULL for a plain file */
    size_t         n_ranges;
    size_t         range_i;   /* the range being read */
    uint64_t       range_pos; /* bytes of it read */
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

/* Write all 'n' bytes at 'p' at the end of 'f'; returns 0, or -1 with
 * f->saved_errno set. */
static int
file_write(rf_file *f, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = fsys_write(f->fd, c, n);

        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            f->saved_errno = k < 0 ? errno : ENOSPC;
            return -1;
        }
        c += k;
        n -= (size_t)k;
        f->size += (uint64_t)k;
    }
    return 0;
}

/* Note that 'n' bytes of section 'sec' were written at 'off'. */
static void
add_chunk(rf_file *f, uint32_t sec, uint64_t off, uint64_t n)
{
    rf_chunk *last = f->n_chunks ? &f->chunks[f->n_chunks - 1] : NULL;

    if (last != NULL && last->section == sec && last->off + last->len == off) {
        last->len += n;
        return;
    }
    if (f->n_chunks == f->cap_chunks) {
        f->cap_chunks = f->cap_chunks ? f->cap_chunks * 2 : 64;
        f->chunks = xrealloc(f->chunks, f->cap_chunks * sizeof *f->chunks);
    }
    f->chunks[f->n_chunks].section = sec;
    f->chunks[f->n_chunks].off = off;
    f->chunks[f->n_chunks].len = n;
    f->n_chunks++;
}

/* Write 'n' bytes of w's stream; returns 0, or -1 with saved_errno set. */
static int
write_all(rowfile_writer *w, const void *p, size_t n)
{
    rf_file *f = w->f;
    uint64_t off = f->size;

    if (n == 0)
        return 0;
    if (file_write(f, p, n) < 0)
        return -1;
    w->flushed += (uint64_t)n;
    if (f->sectioned)
        add_chunk(f, w->section, off, (uint64_t)n);
    return 0;
}

static int
file_write_failed(const rf_file *f, sh_err *err)
{
    return sh_err_set(err, SH_EIO, "", "cannot write %s: %s", f->tmp_path,
                      strerror(f->saved_errno));
}

static int
write_failed(rowfile_writer *w, sh_err *err)
{
    return file_write_failed(w->f, err);
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

/* Create "<path>.tmp" into 'f'. 0, or SH_EIO with 'err' filled. */
static int
file_create(rf_file *f, const char *path, size_t n_cols, sh_err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (n_cols > UINT32_MAX)
        return sh_err_set(err, SH_EIO, "", "cannot create %s: %zu columns",
                          path, n_cols);
    f->path = xstrdup(path);
    f->tmp_path = xasprintf("%s.tmp", path);
    f->fd = fsys_open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
    if (f->fd < 0) {
        sh_err_set(err, SH_EIO, "", "cannot create %s: %s", f->tmp_path,
                   strerror(errno));
        free(f->path);
        free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        return SH_EIO;
    }
    return 0;
}

/* The header of a file of 'n_cols' columns, version 'version'. */
static void
put_header(unsigned char *p, unsigned version, size_t n_cols)
{
    memcpy(p, RF_MAGIC, 4);
    p[4] = (unsigned char)version;
    for (int i = 0; i < 4; i++)
        p[5 + i] = (unsigned char)(n_cols >> (8 * i));
}

static void
file_release(rf_file *f)
{
    if (f->fd >= 0)
        (void)fsys_close(f->fd);
    f->fd = -1;
    free(f->chunks);
    free(f->path);
    free(f->tmp_path);
}

static rowfile_writer *
writer_new(rf_file *f, size_t n_cols)
{
    rowfile_writer *w = xcalloc(1, sizeof *w);

    w->f = f;
    w->n_cols = n_cols;
    w->cap = RF_WRITE_START;
    w->buf = xmalloc(w->cap);
    return w;
}

/*
 * Create "<path>.tmp" and a writer for it. The header goes to the buffer.
 */
rowfile_writer *
rowfile_create(const char *path, size_t n_cols, sh_err *err)
{
    rf_file        *f = xcalloc(1, sizeof *f);
    rowfile_writer *w;

    if (file_create(f, path, n_cols, err) != 0) {
        free(f);
        return NULL;
    }
    w = writer_new(f, n_cols);
    put_header(w->buf, RF_VERSION, n_cols);
    w->len = RF_HEADER_BYTES;
    return w;
}

/* As rowfile_create, for a file no crash needs to survive. */
rowfile_writer *
rowfile_create_scratch(const char *path, size_t n_cols, sh_err *err)
{
    rowfile_writer *w = rowfile_create(path, n_cols, err);

    if (w != NULL)
        w->f->scratch = 1;
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
    if (w->f->saved_errno != 0)
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
        case SH_DATE:
        case SH_TIMESTAMP:
            *p++ = v->type == SH_DATE ? TAG_DATE : TAG_TS;
            p = put_varint(p, zigzag(v->u.i));
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

/* Bytes of the stream so far, buffered ones included (not the trailer). */
uint64_t
rowfile_bytes(const rowfile_writer *w)
{
    return w->flushed + w->len;
}

/* Free 'w' and, for a plain file, its file. */
static void
writer_free(rowfile_writer *w)
{
    if (!w->f->sectioned) {
        file_release(w->f);
        free(w->f);
    }
    free(w->buf);
    free(w);
}

/*
 * Commit 'f' (fsys_commit: fsync unless scratch, close, rename to its
 * final path, fsync the directory unless scratch). On failure nothing of
 * it is left on disk and SH_EIO returned; 'f' is left to release.
 */
static int
file_commit(rf_file *f, sh_err *err)
{
    int fd = f->fd;

    f->fd = -1;
    return fsys_commit(fd, f->tmp_path, f->path,
                       f->scratch ? FSYS_NOSYNC : 0, err);
}

/* Append w's trailer to its stream and write out its buffer. */
static int
finish_stream(rowfile_writer *w, sh_err *err)
{
    unsigned char trailer[9];

    if (w->f->saved_errno != 0)
        return write_failed(w, err);
    trailer[0] = TAG_END;
    put_le64(trailer + 1, w->rows);
    if (append_bytes(w, trailer, sizeof trailer, err) < 0 ||
        flush(w, err) < 0)
        return SH_EIO;
    return 0;
}

/*
 * Write the trailer, flush, fsync, rename to the final path and fsync the
 * directory. Frees 'w' whatever happens; on failure the temporary file is
 * removed and SH_EIO returned.
 */
int
rowfile_close(rowfile_writer *w, sh_err *err)
{
    int rc = finish_stream(w, err);

    if (rc == 0)
        rc = file_commit(w->f, err);
    else
        (void)fsys_unlink(w->f->tmp_path);
    writer_free(w);
    return rc;
}

void
rowfile_abort(rowfile_writer *w)
{
    if (w == NULL)
        return;
    (void)fsys_unlink(w->f->tmp_path);
    writer_free(w);
}

/* ---- sectioned files ---------------------------------------------------- */

rowfile_sections *
rowfile_sections_create(const char *path, size_t n_cols, size_t n_sections,
                        sh_err *err)
{
    rowfile_sections *s;
    unsigned char     head[RF_HEADER_BYTES];

    if (n_sections == 0 || n_sections > UINT32_MAX) {
        sh_err_set(err, SH_EIO, "", "cannot create %s: %zu sections", path,
                   n_sections);
        return NULL;
    }
    s = xcalloc(1, sizeof *s);
    if (file_create(&s->f, path, n_cols, err) != 0) {
        free(s);
        return NULL;
    }
    s->f.sectioned = 1;
    put_header(head, RF_VERSION_SECT, n_cols);
    if (file_write(&s->f, head, sizeof head) < 0) {
        file_write_failed(&s->f, err);
        (void)fsys_unlink(s->f.tmp_path);
        file_release(&s->f);
        free(s);
        return NULL;
    }
    s->n = n_sections;
    s->w = xcalloc(n_sections, sizeof *s->w);
    for (size_t i = 0; i < n_sections; i++) {
        s->w[i] = writer_new(&s->f, n_cols);
        s->w[i]->section = (uint32_t)i;
    }
    return s;
}

rowfile_writer *
rowfile_sections_writer(rowfile_sections *s, size_t i)
{
    assert(i < s->n);
    return s->w[i];
}

uint64_t
rowfile_sections_bytes(const rowfile_sections *s)
{
    uint64_t n = RF_HEADER_BYTES;

    for (size_t i = 0; i < s->n; i++)
        n += rowfile_bytes(s->w[i]);
    return n;
}

static void
sections_free(rowfile_sections *s)
{
    for (size_t i = 0; i < s->n; i++)
        writer_free(s->w[i]);
    free(s->w);
    file_release(&s->f);
    free(s);
}

/* Write the index of every chunk and the footer after the chunks. */
static int
write_index(rowfile_sections *s, sh_err *err)
{
    rf_file       *f = &s->f;
    uint64_t       at = f->size;
    unsigned char *buf = xmalloc(f->n_chunks * RF_INDEX_ENTRY +
                                 RF_FOOTER_BYTES);
    unsigned char *p = buf;
    int            rc = 0;

    for (size_t i = 0; i < f->n_chunks; i++) {
        for (int k = 0; k < 4; k++)
            p[k] = (unsigned char)(f->chunks[i].section >> (8 * k));
        p = put_le64(p + 4, f->chunks[i].off);
        p = put_le64(p, f->chunks[i].len);
    }
    p = put_le64(p, at);
    p = put_le64(p, (uint64_t)f->n_chunks);
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)((uint64_t)s->n >> (8 * k));
    memcpy(p + 4, RF_FOOTER_MAGIC, 4);
    p += 8;
    if (file_write(f, buf, (size_t)(p - buf)) < 0)
        rc = file_write_failed(f, err);
    free(buf);
    return rc;
}

int
rowfile_sections_close(rowfile_sections *s, sh_err *err)
{
    int rc = 0;

    for (size_t i = 0; i < s->n && rc == 0; i++)
        rc = finish_stream(s->w[i], err);
    if (rc == 0)
        rc = write_index(s, err);
    if (rc == 0)
        rc = file_commit(&s->f, err);
    else
        (void)fsys_unlink(s->f.tmp_path);
    sections_free(s);
    return rc;
}

void
rowfile_sections_abort(rowfile_sections *s)
{
    if (s == NULL)
        return;
    (void)fsys_unlink(s->f.tmp_path);
    sections_free(s);
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
    while (r->range_i < r->n_ranges &&
           r->range_pos == r->ranges[r->range_i].len) {
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
    return sh_err_set(err, SH_EDATA, "",
                      "sectioned row file %s is corrupt: %s", r->path, what);
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
    unsigned char  foot[RF_FOOTER_BYTES], *idx = NULL;
    uint64_t       at, n, i, total = RF_HEADER_BYTES;
    uint32_t       n_sec = 0;
    int            rc;

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
    if (at < RF_HEADER_BYTES || n > (size - at) / RF_INDEX_ENTRY ||
        at + n * RF_INDEX_ENTRY + RF_FOOTER_BYTES != size)
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
    if (section >= 0 &&
        load_section(r, (size_t)section, r->file_size, err) != 0)
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
        case TAG_DATE:
        case TAG_TS:
            p = get_varint(p, end, &x, &bad);
            if (p == NULL)
                goto varint;
            v->type = tag == TAG_DATE ? SH_DATE : SH_TIMESTAMP;
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
        (void)fsys_close(r->fd);
    free(r->buf);
    free(r->row);
    free(r->ranges);
    free(r->path);
    free(r);
}
