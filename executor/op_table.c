/*
 * op_table.c - the operator table (op.h): every op_def in plan_op order, and
 * the two passes over a spec's steps that look an op up by its name:
 * checking their shape and compiling them. Nothing here is particular to
 * one operator.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

/* Every operator, at its plan_op index: one row per operator. */
static const op_def *const op_table[PLAN_N_OPS] = {
    [OP_FILTER] = &op_filter,     [OP_SELECT] = &op_select,
    [OP_DERIVE] = &op_derive,     [OP_TOKENIZE] = &op_tokenize,
    [OP_JOIN] = &op_join,         [OP_PREDICT_NB] = &op_predict_nb,
    [OP_GROUPBY] = &op_groupby,   [OP_AGGREGATE] = &op_aggregate,
    [OP_DISTINCT] = &op_distinct, [OP_SORT] = &op_sort,
    [OP_LIMIT] = &op_limit,       [OP_TRAIN_NB] = &op_train_nb,
};

/* ---- shapes, before the input is read --------------------------------- */

/* The op names in plan_op order into 'names', NULL-terminated. */
static void
op_names(const char *names[PLAN_N_OPS + 1])
{
    int i;

    for (i = 0; i < PLAN_N_OPS; i++)
        names[i] = op_table[i]->name;
    names[PLAN_N_OPS] = NULL;
}

/* steps[i]: an object with a known op and only that op's fields. */
static int
check_step(plan_step *s, json_t *st, sh_err *err)
{
    const char *ops[PLAN_N_OPS + 1];
    const char *hint;
    char        path[SH_ERR_PATH_MAX], what[64];
    json_t     *op_v;
    strbuf      sb = {0};
    int         op, rc;

    op_names(ops);

    if (!json_is_object(st)) {
        return sh_err_set(err, SH_EINVAL, s->path,
                          "a step must be an object like {\"op\": "
                          "\"filter\", \"where\": \"x > 1\"}");
    }
    plan_path_join(path, s->path, "op");
    op_v = plan_opt(st, "op");
    op = op_v && json_is_string(op_v)
             ? plan_list_find(ops, json_string_value(op_v))
             : -1;
    if (op < 0) {
        plan_list_join(ops, &sb);
        if (op_v == NULL || !json_is_string(op_v)) {
            rc = sh_err_set(err, SH_EINVAL, path, "%s; ops are: %s",
                            op_v ? "'op' must be a string"
                                 : "a step needs an 'op'",
                            sb.data);
        } else {
            hint = plan_suggest(json_string_value(op_v), ops);
            rc = sh_err_set(err, SH_EINVAL, path,
                            "unknown op '%s'%s%s%s; ops are: %s",
                            json_string_value(op_v),
                            hint ? " (did you mean '" : "", hint ? hint : "",
                            hint ? "'?)" : "", sb.data);
        }
        sb_free(&sb);
        return rc;
    }
    s->op = (plan_op)op;
    s->def = op_table[op];
    snprintf(what, sizeof what, "a %s step", ops[op]);
    rc = plan_check_keys(st, s->path, s->def->fields, what, err);
    if (rc == 0 && s->def->check != NULL)
        rc = s->def->check(s, st, err);
    return rc;
}

int
plan_check_steps(plan *p, json_t *spec, sh_err *err)
{
    json_t *steps = plan_opt(spec, "steps"), *st;
    size_t  i;
    int     rc;

    if (steps == NULL)
        return 0;
    if (!json_is_array(steps)) {
        return sh_err_set(err, SH_EINVAL, "steps",
                          "'steps' must be an array of steps like "
                          "{\"op\": \"filter\", \"where\": \"x > 1\"}");
    }
    p->n_steps = json_array_size(steps);
    p->steps = xcalloc(p->n_steps ? p->n_steps : 1, sizeof *p->steps);
    json_array_foreach(steps, i, st)
    {
        plan_step *s = &p->steps[i];

        snprintf(s->path, sizeof s->path, "steps[%zu]", i);
        if ((rc = check_step(s, st, err)) != 0)
            return rc;
    }
    return 0;
}

/* ---- compiling, once the input's schema is known ---------------------- */

int
plan_compile_steps(plan *p, json_t *spec, const plan_ctx *ctx, sh_err *err)
{
    json_t      *steps = plan_opt(spec, "steps");
    plan_step_in c;
    size_t       i;
    int          rc;

    c.p = p;
    c.ctx = ctx;
    c.in = p->in_schema;
    for (i = 0; i < p->n_steps; i++) {
        c.i = i;
        c.s = &p->steps[i];
        c.st = json_array_get(steps, i);
        if ((rc = c.s->def->compile(&c, err)) != 0)
            return rc;
        c.in = c.s->out;
    }
    p->out_schema = c.in;
    return 0;
}

/* ---- columns read ------------------------------------------------------ */

void
op_reads_same(const plan_step *s, size_t n_in, const unsigned char *live,
              unsigned char *before)
{
    (void)s;
    memcpy(before, live, n_in);
}

void
op_reads_cols(const size_t *keys, size_t n, unsigned char *before)
{
    size_t i;

    for (i = 0; i < n; i++)
        before[keys[i]] = 1;
}
