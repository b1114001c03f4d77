/*
 * op_limit.c - the limit operator (op.h): the first n rows. Right after a
 * sort it makes that sort a top-n (op_sort.c) and runs no stage of its
 * own.
 *
 * Partial half: the first n rows of the task in one row file, LIMIT_FILE
 * after the task's 'out' prefix; asks the source to stop once it has
 * them. Final half: the first n rows of those files in task order.
 */
#include "op.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "rowfile.h"

static const char *const limit_fields[] = {"op", "n", NULL};

/* What the partial half writes after the task's prefix, and the final
 * half reads after each input's. */
#define LIMIT_FILE ".l"

/* ---- compiling ---------------------------------------------------------- */

/* limit: 'n' >= 1. Right after a sort it makes that sort a top-n. */
static int
compile_limit(const plan_step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    long long  n;
    char       path[SH_ERR_PATH_MAX];
    int        rc;

    if (plan_opt(c->st, "n") == NULL) {
        plan_path_join(path, s->path, "n");
        return sh_err_set(err, SH_EINVAL, path,
                          "'n' is required: the number of rows to keep, "
                          ">= 1");
    }
    rc = plan_get_int(c->st, "n", s->path, 1, LLONG_MAX, 0, &n, err);
    if (rc != 0)
        return rc;
    s->limit = (uint64_t)n;
    if (c->i > 0 && c->p->steps[c->i - 1].op == OP_SORT)
        c->p->steps[c->i - 1].limit = s->limit;
    s->out = schema_copy(c->in);
    return 0;
}

/* ---- the partial half: the first n rows --------------------------------- */

typedef struct limit_sink {
    exec_sink       base;
    size_t          step;
    uint64_t        limit;
    uint64_t        rows;
    rowfile_writer *w;     /* NULL once closed */
    char           *path;  /* "<out>.l" (owned) */
    uint64_t        bytes; /* after close */
} limit_sink;

static int
limit_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    limit_sink *l = (limit_sink *)k;
    sh_err      e;

    if (l->rows >= l->limit)
        return EXEC_STOP;
    if (rowfile_write(l->w, row, &e) != 0)
        return exec_step_fail(k->x, l->step, &e, err);
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
        return exec_step_fail(k->x, l->step, &e, err);
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
        (void)fsys_unlink(l->path);
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

static const exec_sink_ops limit_ops = {limit_push, limit_finish, limit_discard,
                                        limit_held, limit_bytes,  limit_free,
                                        NULL};

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
    l->path = xasprintf("%s" LIMIT_FILE, x->t->out);
    l->w = rowfile_create(l->path, in->n, &e);
    if (l->w == NULL) {
        exec_step_fail(x, step, &e, err);
        free(l->path);
        free(l);
        return NULL;
    }
    return &l->base;
}

/* ---- the final half: the first n rows of the inputs --------------------- */

static int
source_limit(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task *t = x->t;
    uint64_t         rows = 0;
    size_t           i;
    sh_err           e;
    int              rc = 0;

    for (i = 0; i < t->n_inputs && rows < s->limit; i++) {
        char           *path = xasprintf("%s" LIMIT_FILE, t->inputs[i]);
        rowfile_reader *r = rowfile_open(path, &e);
        const sh_value *row;

        x->st->bytes_in += exec_file_bytes(path);
        free(path);
        if (r == NULL)
            return exec_step_fail(x, (size_t)x->sg->src, &e, err);
        if (rowfile_cols(r) != s->out->n) {
            rc = exec_fail(x, err, SH_EDATA,
                           "%s" LIMIT_FILE " has rows of %zu values, "
                           "expected %zu",
                           t->inputs[i], rowfile_cols(r), s->out->n);
            rowfile_free(r);
            return rc;
        }
        while (rows < s->limit) {
            rc = rowfile_next(r, &row, &e);
            if (rc < 0) {
                rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
                break;
            }
            if (rc == 0)
                break;
            rows++;
            x->st->rows_in++;
            if ((rc = exec_push(x, row, rowfile_cols(r), err)) != 0)
                break;
        }
        rowfile_free(r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the row of the table ----------------------------------------------- */

/* One task reads the inputs in task order. */
static size_t
one_task(size_t before)
{
    (void)before;
    return 1;
}

const op_def op_limit = {
    .op = OP_LIMIT,
    .name = "limit",
    .fields = limit_fields,
    .compile = compile_limit,
    .final_tasks = one_task,
    .partial_sink = limit_new,
    .final_source = source_limit,
    .reads = op_reads_same,
};
