/*
 * rowfile.c - writing sheaf's intermediate row files (rowfile.h): typed
 * rows encoded compactly into large buffers, in plain files and in
 * sectioned ones. The format is rowfile_int.h's; reading is
 * rowfile_read.c.
 *
 * The writer encodes into a buffer that starts at 64 KiB and doubles up to
 * 1 MiB as the file grows (many small files, such as hash buckets, keep
 * small buffers), and write(2)s it whole; a string longer than the buffer
 * goes straight to the file. rowfile_close writes the trailer, fsyncs the
 * file, renames "<path>.tmp" to 'path' and fsyncs the directory, so a file
 * that exists under its final name is complete and durable (a task commits
 * its outputs only after closing them).
 */
#include "rowfile.h"
#include "rowfile_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

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
    rf_file       *f;       /* owned when plain */
    uint32_t       section; /* sectioned: the stream this writes */
    size_t         n_cols;  /* values per row */
    unsigned char *buf;     /* encoded bytes not yet written */
    size_t         len;     /* bytes in 'buf' */
    size_t         cap;     /* size of 'buf' */
    uint64_t       rows;    /* rows written */
    uint64_t       flushed; /* bytes of this stream already written */
};

struct rowfile_sections {
    rf_file          f;
    rowfile_writer **w; /* one per section */
    size_t           n;
};

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

        if (w->cap - w->len < RF_MAX_VALUE
            && make_room(w, RF_MAX_VALUE, err) < 0)
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
    return fsys_commit(fd, f->tmp_path, f->path, f->scratch ? FSYS_NOSYNC : 0,
                       err);
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
    if (append_bytes(w, trailer, sizeof trailer, err) < 0 || flush(w, err) < 0)
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
    unsigned char *buf = xmalloc(f->n_chunks * RF_INDEX_ENTRY
                                 + RF_FOOTER_BYTES);
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
