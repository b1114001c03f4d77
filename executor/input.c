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
 * is allocated per row. The gzip source is here too; the jsonl line parser
 * and the column-name index are in input_json.c.
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
    char             ctx[512];    /* "partition 3 (file a.csv, bytes 0-9)" */
    int              fd;          /* the input file, or -1 */
    input_gz        *gz;          /* gzip input: the inflater, else NULL */
    source          *src;         /* an s3:// file's byte stream, else NULL */
    csv_reader      *rd;          /* records (csv) or lines (lines, jsonl) */
    input_pq        *pq;          /* parquet: the row groups (input_pq.c) */
    input_json       json;        /* jsonl: the line parser */
    input_names      cols;        /* jsonl: column numbers by name */
    unsigned char   *need;        /* per input column: 1 to parse it (owned) */
    sh_value        *row;         /* the row returned (owned) */
    size_t           n_cols;      /* p->in_schema->n */
    uint64_t         line;        /* line of the last record returned */
    uint64_t         rows;        /* records read, skipped ones included */
    uint64_t         skipped;     /* records skipped (on_error skip) */
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
    int            fd;         /* borrowed */
    uint64_t       out;        /* inflated bytes given so far */
    uint64_t       out_max;    /* the most it may inflate to */
    z_stream       zs;         /* the inflater (windowBits 15 + 32) */
    unsigned char *in;         /* GZ_IN_BYTES of compressed input */
    uint64_t       off;        /* file offset of the next read */
    int            in_eof;     /* a read returned 0 */
    int            member_end; /* inflate ended a member (Z_STREAM_END) */
    int            members;    /* members ended so far */
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
                k = fsys_pread(gz->fd, gz->in, GZ_IN_BYTES, (off_t)gz->off);
            while (k < 0 && errno == EINTR);
            if (k < 0) {
                int e = errno;

                return sh_err_set(err, SH_EIO, NULL, "read at offset %llu: %s",
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
                              input_gzip_ratio, (unsigned long long)gz->out,
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
                       (unsigned long long)r->line, jp->what, jp->at + 1, snip);
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
        snprintf(r->ctx, sizeof r->ctx, "partition %zu (file %s, no row group)",
                 part, r->file->rel);
        return;
    }
    snprintf(r->ctx, sizeof r->ctx,
             "partition %zu (file %s, row groups %zu-%zu)", part, r->file->rel,
             r->p->pq_rgs[pt->start], r->p->pq_rgs[pt->end - 1]);
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
                 "partition %zu (file %s, bytes %llu-%llu)", part, r->file->rel,
                 (unsigned long long)r->part->start,
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
            rc = in_fail(r, err, SH_EINVAL,
                         "gzip input from object "
                         "storage is not supported yet");
            goto done;
        }
        r->src = source_open(r->file, r->part->start, r->part->end, err);
        if (r->src == NULL) {
            rc = in_fail(r, err, err->code ? err->code : SH_EINVAL, "%s",
                         err->msg);
            goto done;
        }
        r->rd = csv_reader_new_range_fn(source_read, r->src, r->part->start,
                                        r->part->end, r->part->line, &d);
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
