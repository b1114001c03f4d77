/*
 * steps.c - the steps of a job spec (SPEC section 2) checked and compiled:
 * each step's fields are read, its columns resolved against the schema
 * the step before made, its expressions compiled, and its output schema
 * computed, so every error in a pipeline is a 400 at submission naming
 * the field ("steps[2].aggs[1].column") and the columns there are.
 *
 * Checking happens twice: plan_check_steps looks at the shape of the
 * steps before the input is read (ops and field names), and
 * plan_compile_steps does the rest once the input schema is known. Both
 * run in plan_build and in plan_load alike.
 */
#include "plan_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/util.h"

/* The fields of each op, in plan_op order. */
static const char *const filter_fields[] = {"op", "where", NULL};
static const char *const select_fields[] = {"op", "columns", NULL};
static const char *const derive_fields[] = {"op", "as", "expr", NULL};
static const char *const tokenize_fields[] = {"op", "column", "as",
                                              "lowercase", NULL};
static const char *const join_fields[] = {"op", "with", "on", "how", NULL};
static const char *const predict_fields[] = {"op", "model", "text", "as",
                                             NULL};
static const char *const groupby_fields[] = {"op", "by", "aggs", NULL};
static const char *const aggregate_fields[] = {"op", "aggs", NULL};
static const char *const distinct_fields[] = {"op", "columns", NULL};
static const char *const sort_fields[] = {"op", "by", NULL};
static const char *const limit_fields[] = {"op", "n", NULL};
static const char *const train_fields[] = {"op", "text", "label",
                                           "features", "holdout", NULL};
static const char *const *const op_fields[PLAN_N_OPS] = {
    filter_fields,  select_fields,    derive_fields,   tokenize_fields,
    join_fields,    predict_fields,   groupby_fields,  aggregate_fields,
    distinct_fields, sort_fields,     limit_fields,    train_fields};

static const char *const agg_fields[] = {"as", "fn", "column", NULL};
static const char *const sort_key_fields[] = {"column", "desc", NULL};
static const char *const agg_fns[] = {
    "count", "sum", "mean", "min", "max", "var", "std", "count_distinct",
    "approx_count_distinct", NULL};

/* Largest train_naive_bayes.features: 2^24 buckets. */
#define NB_MAX_FEATURES (1 << 24)

/* ---- shapes, before the input is read --------------------------------- */

/* The op names in plan_op order into 'names', NULL-terminated. */
static void
op_names(const char *names[PLAN_N_OPS + 1])
{
    int i;

    for (i = 0; i < PLAN_N_OPS; i++)
        names[i] = plan_op_name((plan_op)i);
    names[PLAN_N_OPS] = NULL;
}

/* The fields of filter, derive and select: non-empty strings. */
static int
check_map_fields(plan_step *s, json_t *st, sh_err *err)
{
    json_t     *cols;
    const char *src;
    char        path[SH_ERR_PATH_MAX], cpath[SH_ERR_PATH_MAX];
    size_t      j;
    int         rc = 0;

    switch (s->op) {
    case OP_FILTER:
        return plan_get_name(st, "where", s->path, 1,
                             "a bool expression such as \"year >= 2010\"",
                             &src, err);
    case OP_DERIVE:
        rc = plan_get_name(st, "as", s->path, 1,
                           "give the name of the column to write", &src,
                           err);
        if (rc == 0) {
            rc = plan_get_name(st, "expr", s->path, 1,
                               "an expression such as \"price * qty\"",
                               &src, err);
        }
        return rc;
    case OP_SELECT:
        plan_path_join(path, s->path, "columns");
        cols = plan_opt(st, "columns");
        if (cols == NULL || !json_is_array(cols)
            || json_array_size(cols) == 0) {
            return sh_err_set(err, SH_EINVAL, path,
                              "a select step needs 'columns', a non-empty "
                              "array of column names");
        }
        for (j = 0; j < json_array_size(cols); j++) {
            json_t *c = json_array_get(cols, j);

            if (!json_is_string(c)
                || strlen(json_string_value(c)) != json_string_length(c)) {
                plan_path_fmt(cpath, "%s[%zu]", path, j);
                return sh_err_set(err, SH_EINVAL, cpath,
                                  "column names must be strings");
            }
        }
        return 0;
    default:
        return 0;
    }
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
                                 : "a step needs an 'op'", sb.data);
        } else {
            hint = plan_suggest(json_string_value(op_v), ops);
            rc = sh_err_set(err, SH_EINVAL, path,
                            "unknown op '%s'%s%s%s; ops are: %s",
                            json_string_value(op_v),
                            hint ? " (did you mean '" : "",
                            hint ? hint : "", hint ? "'?)" : "", sb.data);
        }
        sb_free(&sb);
        return rc;
    }
    s->op = (plan_op)op;
    snprintf(what, sizeof what, "a %s step", ops[op]);
    rc = plan_check_keys(st, s->path, op_fields[op], what, err);
    if (rc == 0)
        rc = check_map_fields(s, st, err);
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
    json_array_foreach(steps, i, st) {
        plan_step *s = &p->steps[i];

        snprintf(s->path, sizeof s->path, "steps[%zu]", i);
        if ((rc = check_step(s, st, err)) != 0)
            return rc;
    }
    return 0;
}

/* ---- helpers of compilation ------------------------------------------- */

/* Everything a step compiler gets: the plan, which step, its JSON and the
 * schema of its input rows. */
typedef struct step_in {
    plan           *p;
    size_t          i;   /* index of the step */
    plan_step      *s;   /* &p->steps[i] */
    json_t         *st;  /* the step's JSON (borrowed) */
    const schema   *in;  /* the rows the step reads (borrowed) */
    const plan_ctx *ctx;
} step_in;

/*
 * Write column 'name' of type 't' into 'out': replace the column of that
 * name in place (keeping its position) or append it. Returns its index.
 */
static size_t
put_column(schema *out, const char *name, sh_type t)
{
    long idx = schema_find(out, name);

    if (idx >= 0) {
        out->types[idx] = t;
        return (size_t)idx;
    }
    return schema_add(out, name, t);
}

/* st[key], a column of 'in' that must hold strings: its index. 'use' says
 * what the step does with it, for the message. */
static int
get_string_column(const step_in *c, const char *key, const char *use,
                  size_t *out, sh_err *err)
{
    char path[SH_ERR_PATH_MAX];
    int  rc;

    rc = plan_get_column(c->st, key, c->s->path, c->in, out, err);
    if (rc != 0)
        return rc;
    if (c->in->types[*out] != SH_STRING) {
        plan_path_join(path, c->s->path, key);
        return sh_err_set(err, SH_EINVAL, path,
                          "%s needs a string column, but '%s' is %s; "
                          "convert it first with a derive step, e.g. "
                          "\"expr\": \"str(%s)\"",
                          use, c->in->names[*out],
                          sh_type_name(c->in->types[*out]),
                          c->in->names[*out]);
    }
    return 0;
}

/* Compile the expression text st[key] against 'in'; it must be bool. */
static int
compile_bool_expr(const step_in *c, const char *key, const char *what,
                  expr **out, sh_err *err)
{
    const char *src;
    char        path[SH_ERR_PATH_MAX];
    sh_type     t;
    int         rc;

    rc = plan_get_name(c->st, key, c->s->path, 1,
                       "a bool expression such as \"year >= 2010\"", &src,
                       err);
    if (rc != 0)
        return rc;
    plan_path_join(path, c->s->path, key);
    *out = expr_compile(src, c->in, path, err);
    if (*out == NULL)
        return err && err->code ? err->code : SH_EINVAL;
    t = expr_type(*out);
    if (t != SH_BOOL && t != SH_NULL) {
        return sh_err_set(err, SH_EINVAL, path,
                          "%s needs a bool expression, got %s", what,
                          sh_type_name(t));
    }
    return 0;
}

/* ---- map steps -------------------------------------------------------- */

/* filter: 'where', a bool expression. */
static int
compile_filter(const step_in *c, sh_err *err)
{
    int rc = compile_bool_expr(c, "where", "filter", &c->s->e, err);

    if (rc == 0)
        c->s->out = schema_copy(c->in);
    return rc;
}

/* derive: append or replace column 'as' with the value of 'expr'. */
static int
compile_derive(const step_in *c, sh_err *err)
{
    plan_step  *s = c->s;
    const char *as = json_string_value(json_object_get(c->st, "as"));
    char        path[SH_ERR_PATH_MAX];
    sh_type     t;

    plan_path_join(path, s->path, "expr");
    s->e = expr_compile(json_string_value(json_object_get(c->st, "expr")),
                        c->in, path, err);
    if (s->e == NULL)
        return err && err->code ? err->code : SH_EINVAL;
    t = expr_type(s->e);
    if (t == SH_NULL)
        t = SH_STRING; /* always null: typed string, as an empty column */
    s->out = schema_copy(c->in);
    s->col = put_column(s->out, as, t);
    return 0;
}

/* select: 'columns', kept in the order given. */
static int
compile_select(const step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    size_t     j;
    int        rc;

    rc = plan_get_columns(c->st, "columns", s->path, c->in, &s->cols,
                          &s->n_cols, err);
    if (rc != 0)
        return rc;
    s->out = schema_new();
    for (j = 0; j < s->n_cols; j++)
        schema_add(s->out, c->in->names[s->cols[j]], c->in->types[s->cols[j]]);
    return 0;
}

/* tokenize: 'column' (string), 'as' (default "token"), 'lowercase'. */
static int
compile_tokenize(const step_in *c, sh_err *err)
{
    plan_step  *s = c->s;
    const char *as;
    int         rc;

    rc = get_string_column(c, "column", "tokenize", &s->src_col, err);
    if (rc == 0) {
        rc = plan_get_name(c->st, "as", s->path, 0,
                           "the name of the token column (default "
                           "\"token\")", &as, err);
    }
    if (rc == 0)
        rc = plan_get_bool(c->st, "lowercase", s->path, 1, &s->lowercase,
                           err);
    if (rc != 0)
        return rc;
    s->out = schema_copy(c->in);
    s->col = put_column(s->out, as ? as : "token", SH_STRING);
    return 0;
}

/* ---- join ------------------------------------------------------------- */

/* Build the join side from 'with' (a plan with no steps) into j->side. */
static int
make_join_side(const step_in *c, plan_join *j, const char *wpath,
               sh_err *err)
{
    json_t *with = plan_opt(c->st, "with"), *res = NULL;
    char    key[32];
    plan   *side;

    if (with == NULL || !json_is_object(with)) {
        return sh_err_set(err, SH_EINVAL, wpath,
                          "a join step needs 'with', an input object like "
                          "the job's input: {\"path\": \"users.csv\"}");
    }
    if (c->ctx->resolution != NULL) {
        snprintf(key, sizeof key, "%zu", c->i);
        res = json_object_get(json_object_get(c->ctx->resolution, "joins"),
                              key);
        if (!json_is_object(res)) {
            return sh_err_set(err, SH_EINVAL, "",
                              "the stored plan of this job is damaged (the "
                              "join side of %s is missing); submit the job "
                              "again", c->s->path);
        }
    }
    side = xcalloc(1, sizeof *side);
    side->spec = json_incref(with);
    side->name = xstrdup("");
    j->side = side;
    return plan_input_make(side, with, wpath, c->ctx, res, err);
}

/* The join side must fit the worker's memory budget (it is broadcast). */
static int
check_side_size(const step_in *c, const plan *side, const char *wpath,
                sh_err *err)
{
    uint64_t total = 0, budget = c->ctx->env->mem_bytes;
    size_t   k;

    for (k = 0; k < side->n_files; k++)
        total += side->files[k].size_bytes;
    if (budget == 0 || total <= budget)
        return 0;
    return sh_err_set(err, SH_EINVAL, wpath,
                      "the join side is %.1f MB, over the worker memory "
                      "budget of %.1f MB (SHEAF_MEMORY_MB); put the large "
                      "table on the left",
                      (double)total / 1048576.0, (double)budget / 1048576.0);
}

/* 'on': names present on both sides with the same type. */
static int
compile_join_keys(const step_in *c, plan_join *j, sh_err *err)
{
    plan_step    *s = c->s;
    const schema *right = j->side->in_schema;
    char          path[SH_ERR_PATH_MAX];
    size_t        k, l, r;
    int           rc;

    rc = plan_get_columns(c->st, "on", s->path, c->in, &s->cols, &s->n_cols,
                          err);
    if (rc != 0)
        return rc;
    j->right_on = xcalloc(s->n_cols, sizeof *j->right_on);
    for (k = 0; k < s->n_cols; k++) {
        l = s->cols[k];
        plan_path_fmt(path, "%s.on[%zu]", s->path, k);
        if (schema_find(right, c->in->names[l]) < 0) {
            strbuf sb = {0};

            plan_list_columns(right, &sb);
            sh_err_set(err, SH_EINVAL, path,
                       "key '%s' is not a column of the join side; its "
                       "columns are: %s", c->in->names[l], sb.data);
            sb_free(&sb);
            return SH_EINVAL;
        }
        r = (size_t)schema_find(right, c->in->names[l]);
        if (right->types[r] != c->in->types[l]) {
            return sh_err_set(err, SH_EINVAL, path,
                              "key '%s' is %s on the left but %s in the "
                              "join side; give both the same type (e.g. "
                              "with 'columns' in the input or in 'with')",
                              c->in->names[l],
                              sh_type_name(c->in->types[l]),
                              sh_type_name(right->types[r]));
        }
        j->right_on[k] = r;
    }
    return 0;
}

/* The side's other columns, appended to each row; no name clashes. */
static int
compile_join_keep(const step_in *c, plan_join *j, const char *wpath,
                  sh_err *err)
{
    plan_step    *s = c->s;
    const schema *right = j->side->in_schema;
    size_t        r, k;
    int           is_key;

    j->right_keep = xcalloc(right->n ? right->n : 1, sizeof *j->right_keep);
    s->out = schema_copy(c->in);
    for (r = 0; r < right->n; r++) {
        is_key = 0;
        for (k = 0; k < s->n_cols; k++)
            is_key |= j->right_on[k] == r;
        if (is_key)
            continue;
        if (schema_find(c->in, right->names[r]) >= 0) {
            return sh_err_set(err, SH_EINVAL, wpath,
                              "column '%s' of the join side is also a "
                              "column of the left rows and is not a key; "
                              "add it to 'on', or drop or rename it on the "
                              "left (select, derive) before the join",
                              right->names[r]);
        }
        j->right_keep[j->n_keep++] = r;
        schema_add(s->out, right->names[r], right->types[r]);
    }
    return 0;
}

/* join: 'with' (an input), 'on' (keys), 'how' (inner or left). */
static int
compile_join(const step_in *c, sh_err *err)
{
    static const char *const hows[] = {"inner", "left", NULL};
    plan_step *s = c->s;
    char       wpath[SH_ERR_PATH_MAX];
    int        how, rc;

    plan_path_join(wpath, s->path, "with");
    s->join = xcalloc(1, sizeof *s->join);
    rc = plan_get_choice(c->st, "how", s->path, hows, 0, &how, err);
    if (rc != 0)
        return rc;
    s->join->left = how == 1;
    if ((rc = make_join_side(c, s->join, wpath, err)) != 0)
        return rc;
    if ((rc = check_side_size(c, s->join->side, wpath, err)) != 0)
        return rc;
    if ((rc = compile_join_keys(c, s->join, err)) != 0)
        return rc;
    return compile_join_keep(c, s->join, wpath, err);
}

/* ---- naive Bayes ------------------------------------------------------ */

/* Is 's' a UUID in text form (8-4-4-4-12 hex digits)? */
static int
is_uuid(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

/* predict_naive_bayes.model: "job:<uuid>" whose model artifact exists. */
static int
find_model(const step_in *c, char **out, sh_err *err)
{
    const char *model, *id;
    const char *spool = c->ctx->env->spool;
    char        path[SH_ERR_PATH_MAX];
    struct stat sb;
    char       *file;
    int         rc;

    rc = plan_get_name(c->st, "model", c->s->path, 1,
                       "\"job:ID\", the id of a job that trained a model",
                       &model, err);
    if (rc != 0)
        return rc;
    plan_path_join(path, c->s->path, "model");
    if (strncmp(model, "job:", 4) != 0 || !is_uuid(model + 4)) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'model' must be \"job:ID\" with the id of a job "
                          "that ran train_naive_bayes, got '%s'", model);
    }
    id = model + 4;
    file = xasprintf("%s/jobs/%s/artifacts/model", spool ? spool : ".", id);
    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(file);
        return sh_err_set(err, SH_EINVAL, path,
                          "job %s has no model: it must be a succeeded job "
                          "with a train_naive_bayes step", id);
    }
    *out = file;
    return 0;
}

/* predict_naive_bayes: 'model', 'text' (string), 'as' (default
 * "prediction"). */
static int
compile_predict(const step_in *c, sh_err *err)
{
    plan_step  *s = c->s;
    const char *as;
    int         rc;

    rc = get_string_column(c, "text", "predict_naive_bayes", &s->src_col,
                           err);
    if (rc == 0) {
        rc = plan_get_name(c->st, "as", s->path, 0,
                           "the name of the prediction column (default "
                           "\"prediction\")", &as, err);
    }
    if (rc == 0)
        rc = find_model(c, &s->model, err);
    if (rc != 0)
        return rc;
    s->out = schema_copy(c->in);
    s->col = put_column(s->out, as ? as : "prediction", SH_STRING);
    return 0;
}

/* train_naive_bayes: 'text' (string), 'label' (any type), 'features',
 * 'holdout' (an optional bool expression). */
static int
compile_train(const step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    long long  features;
    int        rc;

    rc = get_string_column(c, "text", "train_naive_bayes", &s->src_col,
                           err);
    if (rc == 0)
        rc = plan_get_column(c->st, "label", s->path, c->in, &s->label_col,
                             err);
    if (rc == 0) {
        rc = plan_get_int(c->st, "features", s->path, 1, NB_MAX_FEATURES,
                          PLAN_NB_FEATURES_DEFAULT, &features, err);
    }
    if (rc == 0 && plan_opt(c->st, "holdout") != NULL)
        rc = compile_bool_expr(c, "holdout", "holdout", &s->e, err);
    if (rc != 0)
        return rc;
    s->features = (uint32_t)features;
    s->out = schema_new();
    schema_add(s->out, "n_train", SH_INT);
    schema_add(s->out, "n_test", SH_INT);
    schema_add(s->out, "accuracy", SH_FLOAT);
    return 0;
}

/* ---- combine steps ---------------------------------------------------- */

/* 'fn' of the aggregate at 'base': one of agg_fns into d->fn. */
static int
agg_parse_fn(json_t *a, const char *base, agg_def *d, const char **name,
             sh_err *err)
{
    char   path[SH_ERR_PATH_MAX];
    strbuf sb = {0};
    int    rc;

    plan_list_join(agg_fns, &sb);
    rc = plan_get_name(a, "fn", base, 1, sb.data, name, err);
    if (rc == 0 && agg_fn_parse(*name, &d->fn) != 0) {
        plan_path_join(path, base, "fn");
        rc = sh_err_set(err, SH_EINVAL, path,
                        "unknown aggregate function '%s'; functions are: %s",
                        *name, sb.data);
    }
    sb_free(&sb);
    return rc;
}

/*
 * 'column' of the aggregate at 'base' (optional) into d->col and
 * d->in_type, and the result type into *type: SH_EINVAL when the function
 * does not apply to the column (or needs one).
 */
static int
agg_parse_column(const step_in *c, json_t *a, const char *base,
                 const char *fn_name, agg_def *d, const char **col_name,
                 sh_type *type, sh_err *err)
{
    char   path[SH_ERR_PATH_MAX];
    size_t col = 0;
    int    rc;

    rc = plan_get_name(a, "column", base, 0, "the name of a column",
                       col_name, err);
    if (rc != 0)
        return rc;
    plan_path_join(path, base, "column");
    if (*col_name != NULL
        && (rc = plan_find_column(c->in, *col_name, path, &col, err)) != 0)
        return rc;
    d->col = *col_name ? (long)col : -1;
    d->in_type = *col_name ? c->in->types[col] : SH_NULL;
    *type = agg_result_type(d->fn, d->in_type, *col_name != NULL);
    if (*type == SH_NULL && *col_name == NULL) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' needs a 'column' (only count may go "
                          "without one, to count rows)", fn_name);
    }
    if (*type == SH_NULL) {
        return sh_err_set(err, SH_EINVAL, path,
                          "cannot take the %s of %s column '%s'%s", fn_name,
                          sh_type_name(d->in_type), *col_name,
                          d->fn == AGG_MIN || d->fn == AGG_MAX
                              ? ""
                              : "; it needs an int or float column");
    }
    return 0;
}

/* One entry of 'aggs': {as, fn, column?} into s->aggs[j] and s->out.
 * 'as' defaults to "fn" (count of rows) or "fn_column". */
static int
compile_agg(const step_in *c, json_t *a, size_t j, sh_err *err)
{
    plan_step  *s = c->s;
    const char *fn_name, *col_name, *as;
    char        base[SH_ERR_PATH_MAX], path[SH_ERR_PATH_MAX];
    char        def_as[SH_ERR_MSG_MAX];
    sh_type     t;
    int         rc;

    plan_path_fmt(base, "%s.aggs[%zu]", s->path, j);
    if (!json_is_object(a)) {
        return sh_err_set(err, SH_EINVAL, base,
                          "an aggregate must be an object like {\"as\": "
                          "\"n\", \"fn\": \"count\"}");
    }
    if ((rc = plan_check_keys(a, base, agg_fields, "an aggregate", err)))
        return rc;
    if ((rc = agg_parse_fn(a, base, &s->aggs[j], &fn_name, err)))
        return rc;
    rc = agg_parse_column(c, a, base, fn_name, &s->aggs[j], &col_name, &t,
                          err);
    if (rc == 0)
        rc = plan_get_name(a, "as", base, 0,
                           "the name of the result column", &as, err);
    if (rc != 0)
        return rc;
    if (as == NULL) {
        snprintf(def_as, sizeof def_as, "%s%s%s", fn_name,
                 col_name ? "_" : "", col_name ? col_name : "");
        as = def_as;
    }
    if (schema_find(s->out, as) >= 0) {
        plan_path_join(path, base, "as");
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' is already a column of the result (a key "
                          "or an earlier aggregate); give another 'as'",
                          as);
    }
    schema_add(s->out, as, t);
    return 0;
}

/* 'aggs' of groupby (may be absent: keys only) or aggregate (required). */
static int
compile_aggs(const step_in *c, int required, sh_err *err)
{
    plan_step *s = c->s;
    json_t    *aggs = plan_opt(c->st, "aggs"), *a;
    char       path[SH_ERR_PATH_MAX];
    size_t     j;
    int        rc;

    plan_path_join(path, s->path, "aggs");
    if (aggs == NULL && !required)
        return 0;
    if (aggs == NULL || !json_is_array(aggs)
        || (required && json_array_size(aggs) == 0)) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'aggs' must be a%s array of aggregates like "
                          "[{\"as\": \"n\", \"fn\": \"count\"}, {\"as\": "
                          "\"total\", \"fn\": \"sum\", \"column\": \"x\"}]",
                          required ? " non-empty" : "n");
    }
    s->n_aggs = json_array_size(aggs);
    s->aggs = xcalloc(s->n_aggs ? s->n_aggs : 1, sizeof *s->aggs);
    json_array_foreach(aggs, j, a) {
        if ((rc = compile_agg(c, a, j, err)) != 0)
            return rc;
    }
    return 0;
}

/* groupby: 'by' (keys), 'aggs'. Out: keys, then one column per agg. */
static int
compile_groupby(const step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    size_t     k;
    int        rc;

    rc = plan_get_columns(c->st, "by", s->path, c->in, &s->cols, &s->n_cols,
                          err);
    if (rc != 0)
        return rc;
    s->out = schema_new();
    for (k = 0; k < s->n_cols; k++)
        schema_add(s->out, c->in->names[s->cols[k]], c->in->types[s->cols[k]]);
    return compile_aggs(c, 0, err);
}

/* aggregate: 'aggs' over all rows. Out: one column per agg. */
static int
compile_aggregate(const step_in *c, sh_err *err)
{
    c->s->out = schema_new();
    return compile_aggs(c, 1, err);
}

/* distinct: 'columns' (default: all of them). */
static int
compile_distinct(const step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    size_t     k;
    int        rc;

    if (plan_opt(c->st, "columns") != NULL) {
        rc = plan_get_columns(c->st, "columns", s->path, c->in, &s->cols,
                              &s->n_cols, err);
        if (rc != 0)
            return rc;
    } else {
        s->n_cols = c->in->n;
        s->cols = xcalloc(s->n_cols ? s->n_cols : 1, sizeof *s->cols);
        for (k = 0; k < s->n_cols; k++)
            s->cols[k] = k;
    }
    s->out = schema_new();
    for (k = 0; k < s->n_cols; k++)
        schema_add(s->out, c->in->names[s->cols[k]], c->in->types[s->cols[k]]);
    return 0;
}

/* One sort key: {column, desc?}, or a bare column name. */
static int
compile_sort_key(const step_in *c, json_t *k, size_t j, sh_err *err)
{
    sort_key *key = &c->s->keys[j];
    char      base[SH_ERR_PATH_MAX];
    int       rc;

    plan_path_fmt(base, "%s.by[%zu]", c->s->path, j);
    if (json_is_string(k)) {
        return plan_find_column(c->in, json_string_value(k), base, &key->col,
                                err);
    }
    if (!json_is_object(k)) {
        return sh_err_set(err, SH_EINVAL, base,
                          "a sort key must be an object like {\"column\": "
                          "\"year\", \"desc\": true}");
    }
    if ((rc = plan_check_keys(k, base, sort_key_fields, "a sort key", err)))
        return rc;
    rc = plan_get_column(k, "column", base, c->in, &key->col, err);
    if (rc == 0)
        rc = plan_get_bool(k, "desc", base, 0, &key->desc, err);
    return rc;
}

/* sort: 'by', a non-empty array of keys. Out: the input's schema. */
static int
compile_sort(const step_in *c, sh_err *err)
{
    plan_step *s = c->s;
    json_t    *by = plan_opt(c->st, "by"), *k;
    char       path[SH_ERR_PATH_MAX];
    size_t     j;
    int        rc;

    if (by == NULL || !json_is_array(by) || json_array_size(by) == 0) {
        plan_path_join(path, s->path, "by");
        return sh_err_set(err, SH_EINVAL, path,
                          "a sort step needs 'by', a non-empty array of "
                          "keys like [{\"column\": \"year\", \"desc\": "
                          "true}]");
    }
    s->n_keys = json_array_size(by);
    s->keys = xcalloc(s->n_keys, sizeof *s->keys);
    json_array_foreach(by, j, k) {
        if ((rc = compile_sort_key(c, k, j, err)) != 0)
            return rc;
    }
    s->out = schema_copy(c->in);
    return 0;
}

/* limit: 'n' >= 1. Right after a sort it makes that sort a top-n. */
static int
compile_limit(const step_in *c, sh_err *err)
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

/* ---- all steps -------------------------------------------------------- */

typedef int (*step_compiler)(const step_in *c, sh_err *err);

/* The compiler of each op, in plan_op order. */
static const step_compiler compilers[PLAN_N_OPS] = {
    compile_filter,  compile_select,    compile_derive,   compile_tokenize,
    compile_join,    compile_predict,   compile_groupby,  compile_aggregate,
    compile_distinct, compile_sort,     compile_limit,    compile_train};

int
plan_compile_steps(plan *p, json_t *spec, const plan_ctx *ctx, sh_err *err)
{
    json_t *steps = plan_opt(spec, "steps");
    step_in c;
    size_t  i;
    int     rc;

    c.p = p;
    c.ctx = ctx;
    c.in = p->in_schema;
    for (i = 0; i < p->n_steps; i++) {
        c.i = i;
        c.s = &p->steps[i];
        c.st = json_array_get(steps, i);
        if ((rc = compilers[c.s->op](&c, err)) != 0)
            return rc;
        c.in = c.s->out;
    }
    p->out_schema = c.in;
    return 0;
}

void
plan_step_clear(plan_step *s)
{
    if (s->e)
        expr_free(s->e);
    free(s->cols);
    free(s->aggs);
    free(s->keys);
    free(s->model);
    if (s->join) {
        plan_free(s->join->side);
        free(s->join->right_on);
        free(s->join->right_keep);
        free(s->join);
    }
    schema_free(s->out);
    memset(s, 0, sizeof *s);
}
