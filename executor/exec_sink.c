/*
 * exec_sink.c - where a stage's rows go: the output writer of the last
 * stage, or the partial half of the combine step that ends the stage.
 *
 *   output      "<out>" (CSV or JSONL, maybe gzip; header in task 0),
 *               written as "<out>.tmp", fsync'ed, renamed
 *   groupby, aggregate, distinct
 *               partial aggregates, one row file per bucket of the next
 *               stage: "<out>.b0" ... (all of them, even empty); the table
 *               is drained into them whenever it outgrows half the budget
 *   sort        sorted runs "<out>.r0" ... (none when no row came)
 *   limit       the first n rows, "<out>.l"; asks the source to stop once
 *               it has them
 *   train_naive_bayes
 *               "<out>.counts" and "<out>.test" (nb.h)
 *
 * Every sink removes all its files in 'discard', finished or not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "exec_int.h"
#include "expr.h"
#include "nb.h"
#include "rowfile.h"
#include "sort.h"
#include "writer.h"

/* Size of a file, or 0. */
static uint64_t
file_bytes(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* "step K (op): <msg>" with the run's context. */
static int
step_fail(const exec_run *x, size_t step, sh_err *err, const sh_err *e)
{
    return exec_step_fail(x, step, e, err);
}

/* ---- the output writer ------------------------------------------------ */

typedef struct out_sink {
    exec_sink base;
    char     *tmp_path; /* "<out>.tmp" (owned) */
    int       fd;
    writer   *w;
    int       renamed;  /* the file is in place under its final name */
} out_sink;

static int
out_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    out_sink *o = (out_sink *)k;
    sh_err    e;

    if (writer_row(o->w, row, &e) != 0)
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

    if ((rc = writer_finish(o->w, &e)) != 0)
        return exec_fail(k->x, err, rc, "output: %s", e.msg);
    if (fsync(o->fd) != 0) {
        int en = errno;

        return exec_fail(k->x, err, SH_EIO, "output: cannot sync '%s': %s",
                         o->tmp_path, strerror(en));
    }
    rc = close(o->fd);
    o->fd = -1;
    if (rc != 0) {
        int en = errno;

        return exec_fail(k->x, err, SH_EIO, "output: cannot close '%s': %s",
                         o->tmp_path, strerror(en));
    }
    if (rename(o->tmp_path, path) != 0) {
        int en = errno;

        return exec_fail(k->x, err, SH_EIO,
                         "output: cannot rename '%s' to '%s': %s",
                         o->tmp_path, path, strerror(en));
    }
    o->renamed = 1;
    (void)util_sync_dir(path); /* best effort: some file systems refuse it */
    return 0;
}

static void
out_discard(exec_sink *k)
{
    out_sink *o = (out_sink *)k;

    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
    }
    (void)unlink(o->renamed ? k->x->t->out : o->tmp_path);
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
    return writer_bytes_out(((const out_sink *)k)->w);
}

static void
out_free(exec_sink *k)
{
    out_sink *o = (out_sink *)k;

    writer_free(o->w);
    if (o->fd >= 0)
        close(o->fd);
    free(o->tmp_path);
    free(o);
}

static const exec_sink_ops out_ops = {out_push, out_finish, out_discard,
                                      out_held, out_bytes, out_free};

static exec_sink *
out_new(exec_run *x, sh_err *err)
{
    const plan *p = x->p;
    out_sink   *o = xcalloc(1, sizeof *o);
    sh_err      e;

    o->base.ops = &out_ops;
    o->base.x = x;
    o->tmp_path = xasprintf("%s.tmp", x->t->out);
    o->fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                 0644);
    if (o->fd < 0) {
        int en = errno;

        exec_fail(x, err, SH_EIO, "output: cannot create '%s': %s",
                  o->tmp_path, strerror(en));
        free(o->tmp_path);
        free(o);
        return NULL;
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

/* ---- partial aggregates (groupby, aggregate, distinct) ---------------- */

typedef struct agg_sink {
    exec_sink        base;
    size_t           step;
    hashagg         *h;
    size_t           budget;    /* drain past this many bytes */
    size_t           n_buckets; /* tasks of the next stage */
    rowfile_sections *sf;       /* "<out>.b": a section per bucket; NULL
                                   once closed */
    char            *path;      /* "<out>.b" (owned) */
    uint64_t         closed_bytes; /* bytes of the closed file */
    size_t           peak;
} agg_sink;

/* Write one drained partial row into its bucket (an agg_emit_fn). */
static int
agg_emit(void *ctx, const sh_value *row, sh_err *err)
{
    agg_sink *a = ctx;
    size_t    b = a->n_buckets > 1
                      ? (size_t)(hashagg_key_hash(a->h, row, 0)
                                 % a->n_buckets)
                      : 0;

    return rowfile_write(rowfile_sections_writer(a->sf, b), row, err);
}

/* Drain the table into the buckets. */
static int
agg_drain(agg_sink *a, sh_err *err)
{
    size_t held;
    sh_err e;

    if (hashagg_flush(a->h, &e) != 0)
        return step_fail(a->base.x, a->step, err, &e);
    held = hashagg_bytes(a->h);
    if (held > a->peak)
        a->peak = held;
    if (hashagg_drain_partial(a->h, agg_emit, a, &e) != 0)
        return step_fail(a->base.x, a->step, err, &e);
    return 0;
}

static int
agg_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    agg_sink *a = (agg_sink *)k;
    sh_err    e;

    /* Counts cannot fail: their rows are folded in batches (agg.h), and
     * early when the batch might take the table past the budget, so it
     * passes it by no more than one row's group, as row by row. */
    if (hashagg_can_queue(a->h)) {
        if (hashagg_queue(a->h, row) < HASHAGG_BATCH
            && hashagg_bytes(a->h) + hashagg_queued_bytes(a->h) <= a->budget)
            return 0;
        if (hashagg_flush(a->h, &e) != 0)
            return step_fail(k->x, a->step, err, &e);
    } else if (hashagg_add(a->h, row, &e) != 0) {
        return step_fail(k->x, a->step, err, &e);
    }
    if (hashagg_bytes(a->h) > a->budget)
        return agg_drain(a, err);
    return 0;
}

static int
agg_finish(exec_sink *k, sh_err *err)
{
    agg_sink         *a = (agg_sink *)k;
    rowfile_sections *sf = a->sf;
    sh_err            e;
    int               rc;

    if ((rc = agg_drain(a, err)) != 0)
        return rc;
    a->closed_bytes = rowfile_sections_bytes(sf);
    a->sf = NULL;
    if (rowfile_sections_close(sf, &e) != 0)
        return step_fail(k->x, a->step, err, &e);
    return 0;
}

static void
agg_discard(exec_sink *k)
{
    agg_sink *a = (agg_sink *)k;

    if (a->sf != NULL) {
        rowfile_sections_abort(a->sf);
        a->sf = NULL;
    } else if (a->path != NULL) {
        (void)unlink(a->path);
    }
}

static size_t
agg_held(const exec_sink *k)
{
    const agg_sink *a = (const agg_sink *)k;
    size_t          held = hashagg_bytes(a->h);

    return held > a->peak ? held : a->peak;
}

static uint64_t
agg_bytes(const exec_sink *k)
{
    const agg_sink *a = (const agg_sink *)k;

    return a->sf != NULL ? rowfile_sections_bytes(a->sf) : a->closed_bytes;
}

static void
agg_free(exec_sink *k)
{
    agg_sink *a = (agg_sink *)k;

    rowfile_sections_abort(a->sf);
    free(a->path);
    hashagg_free(a->h);
    free(a);
}

static const exec_sink_ops agg_ops = {agg_push, agg_finish, agg_discard,
                                      agg_held, agg_bytes, agg_free};

static exec_sink *
agg_new(exec_run *x, size_t step, sh_err *err)
{
    const plan_step *s = &x->p->steps[step];
    agg_sink        *a = xcalloc(1, sizeof *a);
    sh_err           e;

    a->base.ops = &agg_ops;
    a->base.x = x;
    a->step = step;
    a->h = hashagg_new(s->cols, s->n_cols, s->aggs, s->n_aggs);
    /* Half of the share: the table's bytes reach it while its slot array
     * doubles (old and new at once); measured, a groupby of 10 million
     * keys took workers near the whole share otherwise. */
    a->budget = x->sink_budget / 2;
    a->n_buckets = x->p->stages[x->t->stage + 1].n_tasks;
    if (a->n_buckets == 0)
        a->n_buckets = 1;
    a->path = xasprintf("%s.b", x->t->out);
    a->sf = rowfile_sections_create(a->path, hashagg_partial_cols(a->h),
                                    a->n_buckets, &e);
    if (a->sf == NULL) {
        step_fail(x, step, err, &e);
        agg_free(&a->base);
        return NULL;
    }
    return &a->base;
}

/* ---- sorted runs ------------------------------------------------------ */

typedef struct sort_sink {
    exec_sink base;
    size_t    step;
    sorter   *so;
    int       n_runs;    /* after finish */
    uint64_t  run_bytes; /* after finish */
} sort_sink;

static int
sort_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    sort_sink *s = (sort_sink *)k;
    sh_err     e;

    if (sorter_push(s->so, row, &e) != 0)
        return step_fail(k->x, s->step, err, &e);
    return 0;
}

static int
sort_finish(exec_sink *k, sh_err *err)
{
    sort_sink *s = (sort_sink *)k;
    sh_err     e;
    int        rc, i;

    rc = sorter_finish(s->so, &e);
    if (rc < 0)
        return step_fail(k->x, s->step, err, &e);
    s->n_runs = rc;
    for (i = 0; i < rc; i++) {
        char *path = xasprintf("%s.r%d", k->x->t->out, i);

        s->run_bytes += file_bytes(path);
        free(path);
    }
    return 0;
}

static void
sort_discard(exec_sink *k)
{
    exec_remove_prefixed(k->x->t->out, ".r");
    exec_remove_prefixed(k->x->t->out, ".m");
}

static size_t
sort_held(const exec_sink *k)
{
    return sorter_peak_bytes(((const sort_sink *)k)->so);
}

static uint64_t
sort_bytes(const exec_sink *k)
{
    return ((const sort_sink *)k)->run_bytes;
}

static void
sort_free(exec_sink *k)
{
    sort_sink *s = (sort_sink *)k;

    sorter_free(s->so);
    free(s);
}

static const exec_sink_ops sort_ops = {sort_push, sort_finish, sort_discard,
                                       sort_held, sort_bytes, sort_free};

static exec_sink *
sort_new(exec_run *x, size_t step)
{
    const plan_step *st = &x->p->steps[step];
    const schema    *in = step ? x->p->steps[step - 1].out : x->p->in_schema;
    sort_sink       *s = xcalloc(1, sizeof *s);

    s->base.ops = &sort_ops;
    s->base.x = x;
    s->step = step;
    /* Runs of an earlier attempt would be read as this one's: the next
     * stage takes every "<out>.r<N>" from N = 0 up. */
    sort_discard(&s->base);
    s->so = sorter_new(in->n, st->keys, st->n_keys, x->sink_budget,
                       x->t->out, st->limit);
    return &s->base;
}

/* ---- the first n rows ------------------------------------------------- */

typedef struct limit_sink {
    exec_sink       base;
    size_t          step;
    uint64_t        limit;
    uint64_t        rows;
    rowfile_writer *w;      /* NULL once closed */
    char           *path;   /* "<out>.l" (owned) */
    uint64_t        bytes;  /* after close */
} limit_sink;

static int
limit_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    limit_sink *l = (limit_sink *)k;
    sh_err      e;

    if (l->rows >= l->limit)
        return EXEC_STOP;
    if (rowfile_write(l->w, row, &e) != 0)
        return step_fail(k->x, l->step, err, &e);
    return ++l->rows >= l->limit ? EXEC_STOP : 0;
}

static int
limit_finish(exec_sink *k, sh_err *err)
{
    limit_sink     *l = (limit_sink *)k;
    rowfile_writer *w = l->w;
    sh_err          e;

    l->bytes = rowfile_bytes(w);
    l->w = NULL;
    if (rowfile_close(w, &e) != 0)
        return step_fail(k->x, l->step, err, &e);
    return 0;
}

static void
limit_discard(exec_sink *k)
{
    limit_sink *l = (limit_sink *)k;

    if (l->w != NULL) {
        rowfile_abort(l->w);
        l->w = NULL;
    } else {
        (void)unlink(l->path);
    }
}

static size_t
limit_held(const exec_sink *k)
{
    (void)k;
    return 0;
}

static uint64_t
limit_bytes(const exec_sink *k)
{
    const limit_sink *l = (const limit_sink *)k;

    return l->w != NULL ? rowfile_bytes(l->w) : l->bytes;
}

static void
limit_free(exec_sink *k)
{
    limit_sink *l = (limit_sink *)k;

    if (l->w != NULL)
        rowfile_abort(l->w);
    free(l->path);
    free(l);
}

static const exec_sink_ops limit_ops = {limit_push,  limit_finish,
                                        limit_discard, limit_held,
                                        limit_bytes, limit_free};

static exec_sink *
limit_new(exec_run *x, size_t step, sh_err *err)
{
    const plan_step *st = &x->p->steps[step];
    const schema    *in = step ? x->p->steps[step - 1].out : x->p->in_schema;
    limit_sink      *l = xcalloc(1, sizeof *l);
    sh_err           e;

    l->base.ops = &limit_ops;
    l->base.x = x;
    l->step = step;
    l->limit = st->limit;
    l->path = xasprintf("%s.l", x->t->out);
    l->w = rowfile_create(l->path, in->n, &e);
    if (l->w == NULL) {
        step_fail(x, step, err, &e);
        free(l->path);
        free(l);
        return NULL;
    }
    return &l->base;
}

/* ---- naive Bayes counts ----------------------------------------------- */

typedef struct nb_sink {
    exec_sink   base;
    size_t      step;
    nb_partial *np;      /* NULL once finished */
    size_t      peak;
    uint64_t    bytes;   /* after finish */
    strbuf      label;   /* a label formatted as text */
} nb_sink;

static int
nb_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    nb_sink         *n = (nb_sink *)k;
    exec_run        *x = k->x;
    const plan_step *s = &x->p->steps[n->step];
    const sh_value  *lv = &row[s->label_col], *tv = &row[s->src_col];
    const char      *label, *text = "";
    size_t           label_len, text_len = 0;
    int              held = 0;
    sh_value         v;
    sh_err           e;

    if (lv->type == SH_NULL)
        return 0;
    if (lv->type == SH_STRING) {
        label = lv->u.s.ptr;
        label_len = lv->u.s.len;
    } else {
        sb_reset(&n->label);
        value_format(lv, &n->label);
        label = n->label.data;
        label_len = n->label.len;
    }
    if (tv->type == SH_STRING) {
        text = tv->u.s.ptr;
        text_len = tv->u.s.len;
    } else if (tv->type != SH_NULL) {
        sb_reset(&x->text);
        value_format(tv, &x->text);
        text = x->text.data;
        text_len = x->text.len;
    }
    if (s->e != NULL) {
        if (expr_eval(s->e, row, x->a, &v, &e) != 0)
            return step_fail(x, n->step, err, &e);
        held = v.type == SH_BOOL && v.u.b;
    }
    if (nb_partial_add(n->np, label, label_len, text, text_len, held, &e)
        != 0)
        return step_fail(x, n->step, err, &e);
    return 0;
}

static int
nb_finish(exec_sink *k, sh_err *err)
{
    nb_sink *n = (nb_sink *)k;
    sh_err   e;
    char    *c, *t;
    int      rc;

    n->peak = nb_partial_bytes(n->np);
    rc = nb_partial_finish(n->np, &e);
    if (rc != 0)
        return step_fail(k->x, n->step, err, &e);
    nb_partial_free(n->np);
    n->np = NULL;
    c = xasprintf("%s.counts", k->x->t->out);
    t = xasprintf("%s.test", k->x->t->out);
    n->bytes = file_bytes(c) + file_bytes(t);
    free(c);
    free(t);
    return 0;
}

static void
nb_discard(exec_sink *k)
{
    nb_sink *n = (nb_sink *)k;

    if (n->np != NULL)
        nb_partial_free(n->np); /* removes the files of an unfinished one */
    n->np = NULL;
    exec_remove_prefixed(k->x->t->out, ".counts");
    exec_remove_prefixed(k->x->t->out, ".test");
}

static size_t
nb_held(const exec_sink *k)
{
    const nb_sink *n = (const nb_sink *)k;

    return n->np != NULL ? nb_partial_bytes(n->np) : n->peak;
}

static uint64_t
nb_bytes(const exec_sink *k)
{
    return ((const nb_sink *)k)->bytes;
}

static void
nb_free(exec_sink *k)
{
    nb_sink *n = (nb_sink *)k;

    if (n->np != NULL)
        nb_partial_free(n->np);
    sb_free(&n->label);
    free(n);
}

static const exec_sink_ops nb_ops = {nb_push, nb_finish, nb_discard,
                                     nb_held, nb_bytes, nb_free};

static exec_sink *
nb_new(exec_run *x, size_t step, sh_err *err)
{
    nb_sink *n = xcalloc(1, sizeof *n);
    sh_err   e;

    n->base.ops = &nb_ops;
    n->base.x = x;
    n->step = step;
    n->np = nb_partial_new(x->p->steps[step].features, x->t->out, &e);
    if (n->np == NULL) {
        step_fail(x, step, err, &e);
        free(n);
        return NULL;
    }
    return &n->base;
}

/* ---- choosing --------------------------------------------------------- */

exec_sink *
exec_sink_new(exec_run *x, sh_err *err)
{
    long   sink = x->sg->sink;
    size_t step;
    char   words[64];

    if (sink < 0) {
        if (x->t->stage + 1 != x->p->n_stages) {
            exec_fail(x, err, SH_EINVAL,
                      "only the last stage writes the output; the plan is "
                      "inconsistent");
            return NULL;
        }
        return out_new(x, err);
    }
    step = (size_t)sink;
    if (step >= x->p->n_steps || x->t->stage + 1 >= x->p->n_stages) {
        exec_fail(x, err, SH_EINVAL,
                  "stage %zu ends with step %ld, which does not exist or "
                  "has no stage after it; the plan is inconsistent",
                  x->t->stage, sink);
        return NULL;
    }
    switch (x->p->steps[step].op) {
    case OP_GROUPBY:
    case OP_AGGREGATE:
    case OP_DISTINCT:
        return agg_new(x, step, err);
    case OP_SORT:
        return sort_new(x, step);
    case OP_LIMIT:
        return limit_new(x, step, err);
    case OP_TRAIN_NB:
        return nb_new(x, step, err);
    default:
        exec_fail(x, err, SH_EINVAL,
                  "%s cannot end a stage; the plan is inconsistent",
                  exec_step_words(x, step, words));
        return NULL;
    }
}
