/*
 * steps.c - the map steps of a job spec (SPEC section 2) and what every
 * step compiler shares: filter, select, derive, tokenize, join and
 * predict_naive_bayes, each a row of the operator table (op.h). Each
 * step's fields are read, its columns resolved against the schema the
 * step before made, its expressions compiled, and its output schema
 * computed, so every error in a pipeline is a 400 at submission naming
 * the field ("steps[2].with.path") and the columns there are. The
 * combine steps compile in their own files (op_agg.c, op_sort.c, ...).
 *
 * A join side is an input of its own, made with plan_input_make
 * (plan_input.c): a plan inside the plan.
 */
#include "op.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

static const char *const filter_fields[] = {"op", "where", NULL};
static const char *const select_fields[] = {"op", "columns", NULL};
static const char *const derive_fields[] = {"op", "as", "expr", NULL};
static const char *const tokenize_fields[] = {"op", "column", "as", "lowercase",
                                              NULL};
static const char *const join_fields[] = {"op",       "with", "on", "left_on",
                                          "right_on", "how",  NULL};
static const char *const predict_fields[] = {"op", "model", "text", "as", NULL};

/* ---- helpers of compilation ------------------------------------------- */

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

int
plan_get_string_column(const plan_step_in *c, const char *key, const char *use,
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
                          sh_type_name(c->in->types[*out]), c->in->names[*out]);
    }
    return 0;
}

int
plan_compile_bool_expr(const plan_step_in *c, const char *key, const char *what,
                       expr **out, sh_err *err)
{
    const char *src;
    char        path[SH_ERR_PATH_MAX];
    sh_type     t;
    int         rc;

    rc = plan_get_name(c->st, key, c->s->path, 1,
                       "a bool expression such as \"year >= 2010\"", &src, err);
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

/* ---- shapes, before the input is read --------------------------------- */

/* filter: 'where', a non-empty string. */
static int
check_filter(plan_step *s, json_t *st, sh_err *err)
{
    const char *src;

    return plan_get_name(st, "where", s->path, 1,
                         "a bool expression such as \"year >= 2010\"", &src,
                         err);
}

/* derive: 'as' and 'expr', non-empty strings. */
static int
check_derive(plan_step *s, json_t *st, sh_err *err)
{
    const char *src;
    int         rc;

    rc = plan_get_name(st, "as", s->path, 1,
                       "give the name of the column to write", &src, err);
    if (rc == 0) {
        rc = plan_get_name(st, "expr", s->path, 1,
                           "an expression such as \"price * qty\"", &src, err);
    }
    return rc;
}

/* select: 'columns', a non-empty array of strings. */
static int
check_select(plan_step *s, json_t *st, sh_err *err)
{
    json_t *cols;
    char    path[SH_ERR_PATH_MAX], cpath[SH_ERR_PATH_MAX];
    size_t  j;

    plan_path_join(path, s->path, "columns");
    cols = plan_opt(st, "columns");
    if (cols == NULL || !json_is_array(cols) || json_array_size(cols) == 0) {
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
}

/* ---- map steps -------------------------------------------------------- */

/* filter: 'where', a bool expression. */
static int
compile_filter(const plan_step_in *c, sh_err *err)
{
    int rc = plan_compile_bool_expr(c, "where", "filter", &c->s->e, err);

    if (rc == 0)
        c->s->out = schema_copy(c->in);
    return rc;
}

/* derive: append or replace column 'as' with the value of 'expr'. */
static int
compile_derive(const plan_step_in *c, sh_err *err)
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
compile_select(const plan_step_in *c, sh_err *err)
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
compile_tokenize(const plan_step_in *c, sh_err *err)
{
    plan_step  *s = c->s;
    const char *as;
    int         rc;

    rc = plan_get_string_column(c, "column", "tokenize", &s->src_col, err);
    if (rc == 0) {
        rc = plan_get_name(c->st, "as", s->path, 0,
                           "the name of the token column (default "
                           "\"token\")",
                           &as, err);
    }
    if (rc == 0)
        rc = plan_get_bool(c->st, "lowercase", s->path, 1, &s->lowercase, err);
    if (rc != 0)
        return rc;
    s->out = schema_copy(c->in);
    s->col = put_column(s->out, as ? as : "token", SH_STRING);
    return 0;
}

/* ---- join ------------------------------------------------------------- */

/* Build the join side from 'with' (a plan with no steps) into j->side. */
static int
make_join_side(const plan_step_in *c, plan_join *j, const char *wpath,
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
                              "again",
                              c->s->path);
        }
    }
    side = xcalloc(1, sizeof *side);
    side->spec = json_incref(with);
    side->name = xstrdup("");
    j->side = side;
    return plan_input_make(side, with, wpath, c->ctx, res, err);
}

/* The join side must fit the worker's memory budget (it is broadcast):
 * the strategy and why, into j; an error when it does not fit (the
 * partitioned strategy is not there yet). */
static int
choose_strategy(const plan_step_in *c, plan_join *j, const char *wpath,
                sh_err *err)
{
    uint64_t total = 0, budget = c->ctx->env->mem_bytes;
    size_t   k;

    for (k = 0; k < j->side->n_files; k++)
        total += j->side->files[k].size_bytes;
    j->strategy = JOIN_BROADCAST;
    if (budget == 0) {
        snprintf(j->why, sizeof j->why,
                 "the 'with' side (%.1f MB) is read whole by every task; "
                 "no memory budget is set",
                 (double)total / 1048576.0);
        return 0;
    }
    if (total <= budget) {
        snprintf(j->why, sizeof j->why,
                 "the 'with' side (%.1f MB of files) fits the memory "
                 "budget of %.1f MB (SHEAF_MEMORY_MB)",
                 (double)total / 1048576.0, (double)budget / 1048576.0);
        return 0;
    }
    (void)wpath;
    (void)err;
    j->strategy = JOIN_PARTITIONED;
    c->s->def = &op_join_part;
    snprintf(j->why, sizeof j->why,
             "the 'with' side (%.1f MB of files) is over the memory budget "
             "of %.1f MB (SHEAF_MEMORY_MB): both sides are hashed by key "
             "into %d buckets, joined bucket by bucket",
             (double)total / 1048576.0, (double)budget / 1048576.0,
             PLAN_MAX_BUCKETS);
    return 0;
}

/* Key types that match: the same, or both numbers (not for right and
 * full joins, whose unmatched side rows put the side's keys in the left's
 * key columns). */
static int
types_match(sh_type l, sh_type r, int how)
{
    int ln = l == SH_INT || l == SH_FLOAT, rn = r == SH_INT || r == SH_FLOAT;

    if (l == r)
        return 1;
    return ln && rn && how != JOIN_RIGHT && how != JOIN_FULL;
}

/* 'on' (names on both sides) or 'left_on' and 'right_on' (as many names,
 * left then side), with types that match. */
static int
compile_join_keys(const plan_step_in *c, plan_join *j, sh_err *err)
{
    plan_step    *s = c->s;
    const schema *right = j->side->in_schema;
    char          path[SH_ERR_PATH_MAX];
    json_t       *on = plan_opt(c->st, "on");
    json_t *lo = plan_opt(c->st, "left_on"), *ro = plan_opt(c->st, "right_on");
    size_t  k, l, r, n_right = 0;
    int     rc;

    if (on != NULL && (lo != NULL || ro != NULL)) {
        plan_path_join(path, s->path, lo != NULL ? "left_on" : "right_on");
        return sh_err_set(err, SH_EINVAL, path,
                          "give either 'on' (the same names on both sides) "
                          "or 'left_on' and 'right_on', not both");
    }
    if (on == NULL && (lo != NULL || ro != NULL)) {
        if (lo == NULL || ro == NULL) {
            plan_path_join(path, s->path, lo == NULL ? "left_on" : "right_on");
            return sh_err_set(err, SH_EINVAL, path,
                              "'left_on' and 'right_on' go together: the "
                              "key columns of the left rows and of the "
                              "'with' side, as many of each");
        }
        rc = plan_get_columns(c->st, "left_on", s->path, c->in, &s->cols,
                              &s->n_cols, err);
        if (rc != 0)
            return rc;
        rc = plan_get_columns(c->st, "right_on", s->path, right, &j->right_on,
                              &n_right, err);
        if (rc != 0)
            return rc;
        if (n_right != s->n_cols) {
            plan_path_join(path, s->path, "right_on");
            return sh_err_set(err, SH_EINVAL, path,
                              "'right_on' names %zu columns but 'left_on' "
                              "%zu; give as many of each, in pairs",
                              n_right, s->n_cols);
        }
    } else {
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
                           "columns are: %s",
                           c->in->names[l], sb.data);
                sb_free(&sb);
                return SH_EINVAL;
            }
            j->right_on[k] = (size_t)schema_find(right, c->in->names[l]);
        }
    }
    j->left_on = s->cols;
    for (k = 0; k < s->n_cols; k++) {
        l = s->cols[k];
        r = j->right_on[k];
        if (on != NULL)
            plan_path_fmt(path, "%s.on[%zu]", s->path, k);
        else
            plan_path_fmt(path, "%s.right_on[%zu]", s->path, k);
        if (!types_match(c->in->types[l], right->types[r], j->how)
            && on != NULL) {
            return sh_err_set(err, SH_EINVAL, path,
                              "key '%s' is %s on the left but %s in the "
                              "join side; give both the same type (e.g. "
                              "with 'columns' in the input or in 'with')",
                              c->in->names[l], sh_type_name(c->in->types[l]),
                              sh_type_name(right->types[r]));
        }
        if (!types_match(c->in->types[l], right->types[r], j->how)) {
            return sh_err_set(err, SH_EINVAL, path,
                              "key '%s' is %s on the left but '%s' is %s in "
                              "the join side; give both the same type (e.g. "
                              "with 'columns' in the input or in 'with')",
                              c->in->names[l], sh_type_name(c->in->types[l]),
                              right->names[r], sh_type_name(right->types[r]));
        }
    }
    return 0;
}

/* The side's other columns, appended to each row; no name clashes. A semi
 * or anti join appends none. */
static int
compile_join_keep(const plan_step_in *c, plan_join *j, const char *wpath,
                  sh_err *err)
{
    plan_step    *s = c->s;
    const schema *right = j->side->in_schema;
    size_t        r, k;
    int           is_key;

    j->right_keep = xcalloc(right->n ? right->n : 1, sizeof *j->right_keep);
    s->out = schema_copy(c->in);
    if (j->how == JOIN_SEMI || j->how == JOIN_ANTI)
        return 0;
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

/* join: 'with' (an input), 'on' or 'left_on'/'right_on' (keys), 'how'. */
static int
compile_join(const plan_step_in *c, sh_err *err)
{
    static const char *const hows[] = {"inner", "left", "right", "full",
                                       "semi",  "anti", NULL};
    plan_step               *s = c->s;
    char                     wpath[SH_ERR_PATH_MAX];
    int                      how, rc;

    plan_path_join(wpath, s->path, "with");
    s->join = xcalloc(1, sizeof *s->join);
    rc = plan_get_choice(c->st, "how", s->path, hows, 0, &how, err);
    if (rc != 0)
        return rc;
    s->join->how = how;
    if ((rc = make_join_side(c, s->join, wpath, err)) != 0)
        return rc;
    if ((rc = choose_strategy(c, s->join, wpath, err)) != 0)
        return rc;
    if ((rc = compile_join_keys(c, s->join, err)) != 0)
        return rc;
    return compile_join_keep(c, s->join, wpath, err);
}

int
plan_check_joins(plan *p, sh_err *err)
{
    size_t k, i;
    int    again = 0;

    (void)err;
    for (k = 0; k < p->n_stages; k++) {
        const plan_stage *st = &p->stages[k];

        for (i = st->map_begin; i < st->map_end; i++) {
            plan_join *j = p->steps[i].join;

            if (j == NULL || (j->how != JOIN_RIGHT && j->how != JOIN_FULL)
                || st->n_tasks <= 1)
                continue;
            j->strategy = JOIN_PARTITIONED;
            p->steps[i].def = &op_join_part;
            snprintf(j->why, sizeof j->why,
                     "a %s join emits the 'with' rows no left row matched, "
                     "and its left rows come in %zu tasks: both sides are "
                     "hashed by key into %d buckets, joined bucket by "
                     "bucket",
                     j->how == JOIN_RIGHT ? "right" : "full", st->n_tasks,
                     PLAN_MAX_BUCKETS);
            again = 1;
        }
    }
    if (again)
        plan_cut_stages(p);
    return 0;
}

/* ---- naive Bayes ------------------------------------------------------ */

/*
 * predict_naive_bayes.model: "job:<uuid>", a job whose model the
 * environment's resolver finds (the planner never turns an id into a path
 * itself). *out gets the model file's path (malloc'ed).
 */
static int
find_model(const plan_step_in *c, char **out, sh_err *err)
{
    const plan_env *env = c->ctx->env;
    const char     *model, *id;
    char            path[SH_ERR_PATH_MAX];
    sh_err          e;
    int             rc;

    rc = plan_get_name(c->st, "model", c->s->path, 1,
                       "\"job:ID\", the id of a job that trained a model",
                       &model, err);
    if (rc != 0)
        return rc;
    plan_path_join(path, c->s->path, "model");
    if (strncmp(model, "job:", 4) != 0
        || !util_is_uuid(model + 4, strlen(model + 4))) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'model' must be \"job:ID\" with the id of a job "
                          "that ran train_naive_bayes, got '%s'",
                          model);
    }
    id = model + 4;
    sh_err_clear(&e);
    rc = env->resolve_model != NULL
             ? env->resolve_model(env->model_ctx, id, out, &e)
             : SH_ENOENT;
    if (rc == 0)
        return 0;
    *out = NULL;
    if (rc != SH_ENOENT)
        return sh_err_set(err, rc, path, "%s", e.msg);
    return sh_err_set(err, SH_EINVAL, path,
                      "job %s has no model: it must be a succeeded job "
                      "with a train_naive_bayes step",
                      id);
}

/* predict_naive_bayes: 'model', 'text' (string), 'as' (default
 * "prediction"). */
static int
compile_predict(const plan_step_in *c, sh_err *err)
{
    plan_step  *s = c->s;
    const char *as;
    int         rc;

    rc = plan_get_string_column(c, "text", "predict_naive_bayes", &s->src_col,
                                err);
    if (rc == 0) {
        rc = plan_get_name(c->st, "as", s->path, 0,
                           "the name of the prediction column (default "
                           "\"prediction\")",
                           &as, err);
    }
    if (rc == 0)
        rc = find_model(c, &s->model, err);
    if (rc != 0)
        return rc;
    s->out = schema_copy(c->in);
    s->col = put_column(s->out, as ? as : "prediction", SH_STRING);
    return 0;
}

/* ---- the rows of the table -------------------------------------------- */

/* ---- columns read (op_def.reads) ------------------------------------- */

/* filter: what is read after it, and what its condition reads. */
static void
reads_filter(const plan_step *s, size_t n_in, const unsigned char *live,
             unsigned char *before)
{
    memcpy(before, live, n_in);
    expr_columns(s->e, before, n_in);
}

/* select: the input columns of the output columns read after it. */
static void
reads_select(const plan_step *s, size_t n_in, const unsigned char *live,
             unsigned char *before)
{
    size_t j;

    (void)n_in;
    for (j = 0; j < s->n_cols; j++) {
        if (live[j])
            before[s->cols[j]] = 1;
    }
}

/* The steps that make column s->col (derive, tokenize, predict): what is
 * read after them but that column, which they make. */
static void
reads_but_made(const plan_step *s, size_t n_in, const unsigned char *live,
               unsigned char *before)
{
    size_t k;

    for (k = 0; k < n_in; k++)
        before[k] = k != s->col && live[k];
}

static void
reads_derive(const plan_step *s, size_t n_in, const unsigned char *live,
             unsigned char *before)
{
    reads_but_made(s, n_in, live, before);
    expr_columns(s->e, before, n_in);
}

/* tokenize and predict_naive_bayes: their text column too. */
static void
reads_from_src(const plan_step *s, size_t n_in, const unsigned char *live,
               unsigned char *before)
{
    reads_but_made(s, n_in, live, before);
    before[s->src_col] = 1;
}

/* join: the input's columns read after it, and its keys. */
static void
reads_join(const plan_step *s, size_t n_in, const unsigned char *live,
           unsigned char *before)
{
    memcpy(before, live, n_in);
    op_reads_cols(s->cols, s->n_cols, before);
}

const op_def op_filter = {
    .op = OP_FILTER,
    .name = "filter",
    .fields = filter_fields,
    .check = check_filter,
    .compile = compile_filter,
    .reads = reads_filter,
};

const op_def op_select = {
    .op = OP_SELECT,
    .name = "select",
    .fields = select_fields,
    .check = check_select,
    .compile = compile_select,
    .reads = reads_select,
};

const op_def op_derive = {
    .op = OP_DERIVE,
    .name = "derive",
    .fields = derive_fields,
    .check = check_derive,
    .compile = compile_derive,
    .reads = reads_derive,
};

const op_def op_tokenize = {
    .op = OP_TOKENIZE,
    .name = "tokenize",
    .fields = tokenize_fields,
    .compile = compile_tokenize,
    .reads = reads_from_src,
};

const op_def op_join = {
    .op = OP_JOIN,
    .name = "join",
    .fields = join_fields,
    .compile = compile_join,
    .reads = reads_join,
};

const op_def op_predict_nb = {
    .op = OP_PREDICT_NB,
    .name = "predict_naive_bayes",
    .fields = predict_fields,
    .compile = compile_predict,
    .reads = reads_from_src,
};
