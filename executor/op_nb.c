/*
 * op_nb.c - train_naive_bayes (op.h); the model itself is nb.c's.
 *
 * Partial half: naive Bayes counts and held-out rows, "<out>.counts" and
 * "<out>.test" (nb.h nb_partial_*). Final half: the model trained from
 * every input's counts and evaluated on the held-out rows (nb.h
 * nb_train_final); artifacts "report" and "model" written to
 * t->artifacts; one row: n_train, n_test, accuracy.
 */
#include "op.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "expr.h"
#include "nb.h"

static const char *const train_fields[] = {"op",       "text",    "label",
                                           "features", "holdout", NULL};

/* Largest train_naive_bayes.features: 2^24 buckets. */
#define NB_MAX_FEATURES (1 << 24)

/* ---- compiling ---------------------------------------------------------- */

/* train_naive_bayes: 'text' (string), 'label' (any type), 'features',
 * 'holdout' (an optional bool expression). */
static int
compile_train(const plan_step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    long long  features;
    int        rc;

    rc = plan_get_string_column(c, "text", "train_naive_bayes", &s->src_col,
                                err);
    if (rc == 0)
        rc = plan_get_column(c->st, "label", s->path, c->in, &s->label_col,
                             err);
    if (rc == 0) {
        rc = plan_get_int(c->st, "features", s->path, 1, NB_MAX_FEATURES,
                          PLAN_NB_FEATURES_DEFAULT, &features, err);
    }
    if (rc == 0 && plan_opt(c->st, "holdout") != NULL)
        rc = plan_compile_bool_expr(c, "holdout", "holdout", &s->e, err);
    if (rc != 0)
        return rc;
    s->features = (uint32_t)features;
    s->out = schema_new();
    schema_add(s->out, "n_train", SH_INT);
    schema_add(s->out, "n_test", SH_INT);
    schema_add(s->out, "accuracy", SH_FLOAT);
    return 0;
}

/* ---- the partial half: counts and held-out rows ------------------------- */

typedef struct nb_sink {
    exec_sink   base;
    size_t      step;
    nb_partial *np; /* NULL once finished */
    size_t      peak;
    uint64_t    bytes; /* after finish */
    strbuf      label; /* a label formatted as text */
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
            return exec_step_fail(x, n->step, &e, err);
        held = v.type == SH_BOOL && v.u.b;
    }
    if (nb_partial_add(n->np, label, label_len, text, text_len, held, &e) != 0)
        return exec_step_fail(x, n->step, &e, err);
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
        return exec_step_fail(k->x, n->step, &e, err);
    nb_partial_free(n->np);
    n->np = NULL;
    c = xasprintf("%s.counts", k->x->t->out);
    t = xasprintf("%s.test", k->x->t->out);
    n->bytes = exec_file_bytes(c) + exec_file_bytes(t);
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

static const exec_sink_ops nb_ops = {nb_push,  nb_finish, nb_discard, nb_held,
                                     nb_bytes, nb_free,   NULL};

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
        exec_step_fail(x, step, &e, err);
        free(n);
        return NULL;
    }
    return &n->base;
}

/* ---- the final half: the model trained and evaluated -------------------- */

static int
source_nb(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task *t = x->t;
    nb_result        res;
    sh_value         row[3];
    sh_err           e;
    size_t           i;

    if (t->artifacts == NULL) {
        return exec_fail(x, err, SH_EINVAL,
                         "train_naive_bayes needs an artifacts directory");
    }
    for (i = 0; i < t->n_inputs; i++) {
        char *c = xasprintf("%s.counts", t->inputs[i]);
        char *h = xasprintf("%s.test", t->inputs[i]);

        x->st->bytes_in += exec_file_bytes(c) + exec_file_bytes(h);
        free(c);
        free(h);
    }
    x->wrote_artifacts = 1;
    if (nb_train_final(s->features, t->inputs, t->n_inputs, t->artifacts, &res,
                       &e)
        != 0)
        return exec_step_fail(x, (size_t)x->sg->src, &e, err);
    row[0] = sh_int((int64_t)res.n_train);
    row[1] = sh_int((int64_t)res.n_test);
    row[2] = isnan(res.accuracy) ? sh_null() : sh_float(res.accuracy);
    x->st->rows_in = res.n_train + res.n_test;
    return exec_push(x, row, 3, err);
}

/* Remove the artifacts of a failed training. */
static void
source_nb_discard(exec_run *x)
{
    char *path;

    if (!x->wrote_artifacts || x->t->artifacts == NULL)
        return;
    path = xasprintf("%s/report", x->t->artifacts);
    (void)fsys_unlink(path);
    free(path);
    path = xasprintf("%s/model", x->t->artifacts);
    (void)fsys_unlink(path);
    free(path);
}

/* ---- the row of the table ----------------------------------------------- */

/* One task trains the model. */
static size_t
one_task(size_t before)
{
    (void)before;
    return 1;
}

/* op_def.reads: the text, the label and what the holdout reads. */
static void
reads_train(const plan_step *s, size_t n_in, const unsigned char *live,
            unsigned char *before)
{
    (void)live;
    before[s->src_col] = before[s->label_col] = 1;
    if (s->e != NULL)
        expr_columns(s->e, before, n_in);
}

const op_def op_train_nb = {
    .op = OP_TRAIN_NB,
    .name = "train_naive_bayes",
    .fields = train_fields,
    .compile = compile_train,
    .final_tasks = one_task,
    .partial_sink = nb_new,
    .final_source = source_nb,
    .final_discard = source_nb_discard,
    .reads = reads_train,
};
