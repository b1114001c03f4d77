/*
 * op_output.c - the output writer (op.h), the sink of the last stage:
 * "<out>", CSV or JSONL, maybe gzip (writer.h), the header in task 0; or
 * a whole Parquet file per task (parquet_write.h: the result endpoint
 * merges the parts); written as "<out>.tmp" and committed with
 * fsys_commit (fsync, rename, fsync of the directory).
 */
#include "op.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "parquet_write.h"
#include "writer.h"

typedef struct out_sink {
    exec_sink  base;
    char      *tmp_path; /* "<out>.tmp" (owned) */
    int        fd;
    writer    *w;       /* csv, jsonl; or NULL and ... */
    pq_writer *pw;      /* ... parquet */
    int        renamed; /* the file is in place under its final name */
} out_sink;

static int
out_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    out_sink *o = (out_sink *)k;
    sh_err    e;

    if (o->pw != NULL ? pq_writer_row(o->pw, row, &e) != 0
                      : writer_row(o->w, row, &e) != 0)
        return exec_fail(k->x, err, e.code ? e.code : SH_EIO, "output: %s",
                         e.msg);
    return 0;
}

static int
out_finish(exec_sink *k, sh_err *err)
{
    out_sink   *o = (out_sink *)k;
    const char *path = k->x->t->out;
    sh_err      e;
    int         rc;

    rc = o->pw != NULL ? pq_writer_finish(o->pw, &e) : writer_finish(o->w, &e);
    if (rc != 0)
        return exec_fail(k->x, err, rc, "output: %s", e.msg);
    /* The one durable commit (lib/fsys.h): a failed fsync of the file or
     * of its directory fails the task, and leaves nothing behind. */
    rc = fsys_commit(o->fd, o->tmp_path, path, 0, &e);
    o->fd = -1;
    if (rc != 0)
        return exec_fail(k->x, err, rc, "output: %s", e.msg);
    o->renamed = 1;
    return 0;
}

static void
out_discard(exec_sink *k)
{
    out_sink *o = (out_sink *)k;

    if (o->fd >= 0) {
        fsys_close(o->fd);
        o->fd = -1;
    }
    (void)fsys_unlink(o->renamed ? k->x->t->out : o->tmp_path);
    o->renamed = 0;
}

static size_t
out_held(const exec_sink *k)
{
    (void)k;
    return 0;
}

static uint64_t
out_bytes(const exec_sink *k)
{
    const out_sink *o = (const out_sink *)k;

    return o->pw != NULL ? pq_writer_bytes_out(o->pw) : writer_bytes_out(o->w);
}

static void
out_free(exec_sink *k)
{
    out_sink *o = (out_sink *)k;

    writer_free(o->w);
    pq_writer_free(o->pw);
    if (o->fd >= 0)
        fsys_close(o->fd);
    free(o->tmp_path);
    free(o);
}

static const exec_sink_ops out_ops = {out_push, out_finish, out_discard,
                                      out_held, out_bytes,  out_free,
                                      NULL};

static exec_sink *
out_new(exec_run *x, size_t step, sh_err *err)
{
    const plan *p = x->p;
    out_sink   *o = xcalloc(1, sizeof *o);
    sh_err      e;

    (void)step; /* no step: the output follows the last one */
    o->base.ops = &out_ops;
    o->base.x = x;
    o->tmp_path = xasprintf("%s.tmp", x->t->out);
    o->fd = fsys_open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
    if (o->fd < 0) {
        int en = errno;

        exec_fail(x, err, SH_EIO, "output: cannot create '%s': %s", o->tmp_path,
                  strerror(en));
        free(o->tmp_path);
        free(o);
        return NULL;
    }
    if (p->out_format == FMT_PARQUET) {
        /* A whole file per part: no header, nothing written yet. */
        o->pw = pq_writer_new(o->fd, p->out_schema, p->out_codec,
                              (size_t)p->out_rg_rows);
        return &o->base;
    }
    o->w = writer_new(o->fd,
                      p->out_format == FMT_JSONL ? WRITER_JSONL : WRITER_CSV,
                      p->out_gzip, p->out_schema);
    if (x->t->index == 0 && writer_header(o->w, &e) != 0) {
        exec_fail(x, err, e.code ? e.code : SH_EIO, "output: %s", e.msg);
        out_discard(&o->base);
        out_free(&o->base);
        return NULL;
    }
    return &o->base;
}

/* The output writer is a sink only; no step names it. */
const op_def op_output = {
    .name = "output",
    .partial_sink = out_new,
};
