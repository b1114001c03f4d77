/*
 * writer.c - CSV and JSON-lines output, optionally gzip'ed, buffered.
 *
 * Rows are formatted into one text buffer; when it holds WRITER_FLUSH_BYTES
 * it goes to the fd, through deflate when compressing. Nothing is
 * allocated per row once the buffers have grown to fit the widest row.
 */
#include "writer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../lib/fsys.h"

#define WRITER_FLUSH_BYTES (64u * 1024)
#define WRITER_ZOUT_BYTES  (64u * 1024)
/*
 * zlib level 1: on CSV it is about 4x faster than the default level 6 for
 * output a few percent larger; the pipeline should not wait on deflate.
 */
#define WRITER_GZIP_LEVEL 1

struct writer {
    int            fd; /* borrowed */
    writer_format  fmt;
    const schema  *sc;        /* borrowed */
    strbuf         buf;       /* formatted text not yet written */
    strbuf         keys;      /* JSONL: every '"name":' back to back */
    size_t        *key_off;   /* JSONL: offset of each key in 'keys' */
    int            gzip;      /* 1 when compressing */
    z_stream       zs;        /* deflate state (gzip only) */
    unsigned char *zout;      /* deflate output buffer (gzip only) */
    uint64_t       bytes_out; /* bytes written to fd */
    int            finished;  /* writer_finish was called */
};

/* Write all 'n' bytes of 'p' to the fd; an error names the file. */
static int
write_all(writer *w, const void *p, size_t n, sh_err *err)
{
    char name[512];

    if (fsys_write_all(w->fd, p, n) < 0) {
        int e = errno;

        return sh_err_set(err, SH_EIO, "", "cannot write the output %s: %s",
                          fsys_fd_path(w->fd, name, sizeof name) ? name
                                                                 : "file",
                          strerror(e));
    }
    w->bytes_out += (uint64_t)n;
    return 0;
}

/* Send the buffered text on; 'finish' ends the gzip member. */
static int
flush_buf(writer *w, int finish, sh_err *err)
{
    int rc = 0, zrc;

    if (!w->gzip) {
        if (w->buf.len > 0)
            rc = write_all(w, w->buf.data, w->buf.len, err);
        sb_reset(&w->buf);
        return rc;
    }
    w->zs.next_in = (unsigned char *)w->buf.data;
    w->zs.avail_in = (uInt)w->buf.len;
    do {
        w->zs.next_out = w->zout;
        w->zs.avail_out = WRITER_ZOUT_BYTES;
        zrc = deflate(&w->zs, finish ? Z_FINISH : Z_NO_FLUSH);
        if (zrc == Z_STREAM_ERROR) {
            return sh_err_set(err, SH_EIO, "", "cannot compress the output: %s",
                              w->zs.msg ? w->zs.msg : "zlib stream error");
        }
        rc = write_all(w, w->zout, WRITER_ZOUT_BYTES - w->zs.avail_out, err);
        if (rc != 0)
            return rc;
    } while (w->zs.avail_out == 0);
    sb_reset(&w->buf);
    return 0;
}

writer *
writer_new(int fd, writer_format fmt, int gzip, const schema *sc)
{
    writer *w = xcalloc(1, sizeof *w);
    size_t  i;

    w->fd = fd;
    w->fmt = fmt;
    w->sc = sc;
    sb_reserve(&w->buf, WRITER_FLUSH_BYTES + 4096);
    if (fmt == WRITER_JSONL) {
        w->key_off = xcalloc(sc->n + 1, sizeof *w->key_off);
        for (i = 0; i < sc->n; i++) {
            w->key_off[i] = w->keys.len;
            writer_json_string(&w->keys, sc->names[i], strlen(sc->names[i]));
            sb_putc(&w->keys, ':');
        }
        w->key_off[sc->n] = w->keys.len;
    }
    if (gzip) {
        w->gzip = 1;
        w->zout = xmalloc(WRITER_ZOUT_BYTES);
        /* windowBits 15 + 16: a gzip header and trailer, not zlib's. */
        if (deflateInit2(&w->zs, WRITER_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY)
            != Z_OK) {
            fprintf(stderr, "sheaf: deflateInit2 failed\n");
            abort(); /* only on exhaustion or a zlib version mismatch */
        }
    }
    return w;
}

/* 's' of 'n' bytes, not valid UTF-8, into 'out' with every byte that
 * starts no valid sequence replaced by U+FFFD (as writer_json_string
 * does). */
static void
csv_utf8_fix(strbuf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0, k;

    while (i < n) {
        k = p[i] < 0x80 ? 1 : util_utf8_seq(p + i, n - i);
        if (k == 0) {
            sb_append(out, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            sb_append(out, s + i, k);
            i += k;
        }
    }
}

void
writer_csv_field(strbuf *sb, const char *s, size_t n)
{
    size_t i;
    int    quote = n == 0; /* "" is the empty string; nothing is null */
    int    high = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];

        if (c == ',' || c == '"' || c == '\n' || c == '\r')
            quote = 1;
        high |= (unsigned char)c >= 0x80;
    }
    /* The result is served as UTF-8: invalid bytes of the input (a Latin-1
     * file, say) become U+FFFD, as in JSON lines. */
    if (high && !util_utf8_valid(s, n)) {
        strbuf fixed = {0};

        csv_utf8_fix(&fixed, s, n);
        writer_csv_field(sb, fixed.data, fixed.len);
        sb_free(&fixed);
        return;
    }
    if (!quote) {
        sb_append(sb, s, n);
        return;
    }
    sb_reserve(sb, n + 2);
    sb_putc(sb, '"');
    i = 0;
    while (i < n) {
        const char *q = memchr(s + i, '"', n - i);
        size_t      run = q ? (size_t)(q - (s + i)) : n - i;

        sb_append(sb, s + i, run);
        i += run;
        if (q) {
            sb_append(sb, "\"\"", 2); /* an inner quote is doubled */
            i++;
        }
    }
    sb_putc(sb, '"');
}

void
writer_json_string(strbuf *sb, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0, run;

    sb_reserve(sb, n + 2);
    sb_putc(sb, '"');
    while (i < n) {
        /* The plain ASCII run goes in one piece. */
        for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80
                      && p[run] != '"' && p[run] != '\\';
             run++)
            ;
        sb_append(sb, s + i, run - i);
        i = run;
        if (i == n)
            break;
        if (p[i] >= 0x80) {
            size_t k = util_utf8_seq(p + i, n - i);

            if (k == 0) {
                sb_append(sb, "\xEF\xBF\xBD", 3); /* U+FFFD */
                i++;
            } else {
                sb_append(sb, s + i, k);
                i += k;
            }
            continue;
        }
        switch (p[i]) {
        case '"':
            sb_append(sb, "\\\"", 2);
            break;
        case '\\':
            sb_append(sb, "\\\\", 2);
            break;
        case '\n':
            sb_append(sb, "\\n", 2);
            break;
        case '\r':
            sb_append(sb, "\\r", 2);
            break;
        case '\t':
            sb_append(sb, "\\t", 2);
            break;
        case '\b':
            sb_append(sb, "\\b", 2);
            break;
        case '\f':
            sb_append(sb, "\\f", 2);
            break;
        default:
            sb_printf(sb, "\\u%04x", p[i]);
            break;
        }
        i++;
    }
    sb_putc(sb, '"');
}

int
writer_header(writer *w, sh_err *err)
{
    size_t i;

    if (w->fmt != WRITER_CSV)
        return 0;
    for (i = 0; i < w->sc->n; i++) {
        const char *name = w->sc->names[i];

        if (i > 0)
            sb_putc(&w->buf, ',');
        writer_csv_field(&w->buf, name, strlen(name));
    }
    sb_putc(&w->buf, '\n');
    if (w->buf.len >= WRITER_FLUSH_BYTES)
        return flush_buf(w, 0, err);
    return 0;
}

/*
 * The text of a non-string value: ints and bools without printf (the hot
 * path of most outputs), floats as format_double gives them.
 */
static void
put_scalar(strbuf *sb, const sh_value *v)
{
    char     buf[32], *p = buf + sizeof buf;
    uint64_t u;

    switch (v->type) {
    case SH_INT:
        u = v->u.i < 0 ? -(uint64_t)v->u.i : (uint64_t)v->u.i;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v->u.i < 0)
            *--p = '-';
        sb_append(sb, p, (size_t)(buf + sizeof buf - p));
        break;
    case SH_BOOL:
        if (v->u.b)
            sb_append(sb, "true", 4);
        else
            sb_append(sb, "false", 5);
        break;
    case SH_FLOAT:
        sb_append(sb, buf, format_double(v->u.f, buf));
        break;
    case SH_NULL:
    case SH_STRING:
    case SH_DATE:
    case SH_TIMESTAMP:
        value_format(v, sb);
        break;
    }
}

/* One CSV row into the buffer. */
static void
csv_row(writer *w, const sh_value *row)
{
    size_t i, n = w->sc->n;

    if (n == 1 && row[0].type == SH_NULL) {
        sb_append(&w->buf, "\"\"\n", 3); /* not an empty line */
        return;
    }
    for (i = 0; i < n; i++) {
        if (i > 0)
            sb_putc(&w->buf, ',');
        if (row[i].type == SH_STRING)
            writer_csv_field(&w->buf, row[i].u.s.ptr, row[i].u.s.len);
        else
            put_scalar(&w->buf, &row[i]);
    }
    sb_putc(&w->buf, '\n');
}

/* One JSON object into the buffer. */
static void
jsonl_row(writer *w, const sh_value *row)
{
    size_t i, n = w->sc->n;

    sb_putc(&w->buf, '{');
    for (i = 0; i < n; i++) {
        const sh_value *v = &row[i];

        if (i > 0)
            sb_putc(&w->buf, ',');
        sb_append(&w->buf, w->keys.data + w->key_off[i],
                  w->key_off[i + 1] - w->key_off[i]);
        switch (v->type) {
        case SH_NULL:
            sb_append(&w->buf, "null", 4);
            break;
        case SH_FLOAT:
            if (!isfinite(v->u.f))
                sb_append(&w->buf, "null", 4);
            else
                put_scalar(&w->buf, v);
            break;
        case SH_STRING:
            writer_json_string(&w->buf, v->u.s.ptr, v->u.s.len);
            break;
        case SH_DATE:
        case SH_TIMESTAMP:
            sb_putc(&w->buf, '"');
            put_scalar(&w->buf, v);
            sb_putc(&w->buf, '"');
            break;
        case SH_INT:
        case SH_BOOL:
            put_scalar(&w->buf, v);
            break;
        }
    }
    sb_append(&w->buf, "}\n", 2);
}

int
writer_row(writer *w, const sh_value *row, sh_err *err)
{
    if (w->fmt == WRITER_CSV)
        csv_row(w, row);
    else
        jsonl_row(w, row);
    if (w->buf.len >= WRITER_FLUSH_BYTES)
        return flush_buf(w, 0, err);
    return 0;
}

int
writer_finish(writer *w, sh_err *err)
{
    int rc;

    if (w->finished)
        return 0;
    rc = flush_buf(w, 1, err);
    if (rc == 0)
        w->finished = 1;
    return rc;
}

uint64_t
writer_bytes_out(const writer *w)
{
    return w->bytes_out;
}

void
writer_free(writer *w)
{
    if (w == NULL)
        return;
    if (w->gzip)
        deflateEnd(&w->zs);
    free(w->zout);
    free(w->key_off);
    sb_free(&w->keys);
    sb_free(&w->buf);
    free(w);
}
