/*
 * op_agg.c - the hash aggregation operators: groupby, aggregate and
 * distinct (op.h). One hashagg (agg.h) does all three.
 *
 * Partial half (the sink of the stage the step ends): partial aggregates
 * folded into a table and drained into one sectioned row file,
 * "<out>.b", with a section per bucket of the next stage (all of them,
 * even empty; rowfile.h rowfile_sections_*); the table is drained
 * whenever it outgrows half the sink's budget.
 *
 * Final half (the source of the next stage): section t->index of
 * "<input>.b" of every input (section 0 for aggregate) merged
 * (hashagg_finalize_files, spilling under t->scratch past the budget),
 * one row per group; an aggregate over no rows at all makes the one row
 * of an empty aggregate.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "agg.h"
#include "rowfile.h"

static const char *const groupby_fields[] = {"op", "by", "aggs", NULL};
static const char *const aggregate_fields[] = {"op", "aggs", NULL};
static const char *const distinct_fields[] = {"op", "columns", NULL};
static const char *const agg_fields[] = {"as", "fn", "column", "by", "q", NULL};
/* What the partial half writes after the task's prefix, a section per
 * bucket, and the final half reads after each input's. */
#define AGG_FILE ".b"

static const char *const agg_fns[] = {"count",
                                      "sum",
                                      "mean",
                                      "min",
                                      "max",
                                      "var",
                                      "std",
                                      "count_distinct",
                                      "approx_count_distinct",
                                      "min_by",
                                      "max_by",
                                      "median",
                                      "quantile",
                                      "approx_quantile",
                                      NULL};

/* ---- compiling ---------------------------------------------------------- */

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
agg_parse_column(const plan_step_in *c, json_t *a, const char *base,
                 const char *fn_name, agg_def *d, const char **col_name,
                 sh_type *type, sh_err *err)
{
    char   path[SH_ERR_PATH_MAX];
    size_t col = 0;
    int    rc;

    rc = plan_get_name(a, "column", base, 0, "the name of a column", col_name,
                       err);
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
                          "without one, to count rows)",
                          fn_name);
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

/*
 * 'by' (min_by, max_by: required, any column) and 'q' (quantile,
 * approx_quantile: required, a number in [0, 1]) of the aggregate at 'base'
 * into d; either given to another function is a 400.
 */
static int
agg_parse_extra(const plan_step_in *c, json_t *a, const char *base,
                const char *fn_name, agg_def *d, sh_err *err)
{
    char        path[SH_ERR_PATH_MAX];
    const char *by = NULL;
    json_t     *q = plan_opt(a, "q");
    size_t      col = 0;
    int         is_by = d->fn == AGG_MIN_BY || d->fn == AGG_MAX_BY;
    int         rc;

    d->by_col = -1;
    d->by_type = SH_NULL;
    d->q = 0.5;
    plan_path_join(path, base, "by");
    if (!is_by && plan_opt(a, "by") != NULL)
        return sh_err_set(err, SH_EINVAL, path,
                          "'by' applies to min_by and max_by only, not %s",
                          fn_name);
    if (is_by) {
        rc = plan_get_name(a, "by", base, 1, "the name of a column", &by, err);
        if (rc == 0)
            rc = plan_find_column(c->in, by, path, &col, err);
        if (rc != 0)
            return rc;
        d->by_col = (long)col;
        d->by_type = c->in->types[col];
    }
    plan_path_join(path, base, "q");
    if (d->fn != AGG_QUANTILE && d->fn != AGG_APPROX_QUANTILE && q != NULL)
        return sh_err_set(err, SH_EINVAL, path,
                          "'q' applies to quantile and approx_quantile "
                          "only, not %s",
                          fn_name);
    if (d->fn == AGG_QUANTILE || d->fn == AGG_APPROX_QUANTILE) {
        if (q == NULL || !json_is_number(q) || !(json_number_value(q) >= 0)
            || !(json_number_value(q) <= 1))
            return sh_err_set(err, SH_EINVAL, path,
                              "%s needs 'q', a number from 0 to 1 "
                              "(0.5 is the median)",
                              fn_name);
        d->q = json_number_value(q);
    }
    return 0;
}

/* One entry of 'aggs': {as, fn, column?} into s->aggs[j] and s->out.
 * 'as' defaults to "fn" (count of rows) or "fn_column". */
static int
compile_agg(const plan_step_in *c, json_t *a, size_t j, sh_err *err)
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
    rc = agg_parse_column(c, a, base, fn_name, &s->aggs[j], &col_name, &t, err);
    if (rc == 0)
        rc = agg_parse_extra(c, a, base, fn_name, &s->aggs[j], err);
    if (rc == 0)
        rc = plan_get_name(a, "as", base, 0, "the name of the result column",
                           &as, err);
    if (rc != 0)
        return rc;
    if (as == NULL) {
        snprintf(def_as, sizeof def_as, "%s%s%s", fn_name, col_name ? "_" : "",
                 col_name ? col_name : "");
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
compile_aggs(const plan_step_in *c, int required, sh_err *err)
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
    json_array_foreach(aggs, j, a)
    {
        if ((rc = compile_agg(c, a, j, err)) != 0)
            return rc;
    }
    return 0;
}

/* groupby: 'by' (keys), 'aggs'. Out: keys, then one column per agg. */
static int
compile_groupby(const plan_step_in *c, sh_err *err)
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
compile_aggregate(const plan_step_in *c, sh_err *err)
{
    c->s->out = schema_new();
    return compile_aggs(c, 1, err);
}

/* distinct: 'columns' (default: all of them). */
static int
compile_distinct(const plan_step_in *c, sh_err *err)
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

/* ---- the partial half: partial aggregates into buckets ------------------ */

typedef struct agg_sink {
    exec_sink         base;
    size_t            step;
    hashagg          *h;
    size_t            budget;    /* drain past this many bytes */
    size_t            n_buckets; /* tasks of the next stage */
    rowfile_sections *sf;        /* "<out>.b": a section per bucket; NULL
                                    once closed */
    char    *path;               /* "<out>.b" (owned) */
    uint64_t closed_bytes;       /* bytes of the closed file */
    size_t   peak;
} agg_sink;

/* Write one drained partial row into its bucket (an agg_emit_fn). */
static int
agg_emit(void *ctx, const sh_value *row, sh_err *err)
{
    agg_sink *a = ctx;
    size_t    b = a->n_buckets > 1
                      ? (size_t)(hashagg_key_hash(a->h, row, 0) % a->n_buckets)
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
        return exec_step_fail(a->base.x, a->step, &e, err);
    held = hashagg_bytes(a->h);
    if (held > a->peak)
        a->peak = held;
    if (hashagg_drain_partial(a->h, agg_emit, a, &e) != 0)
        return exec_step_fail(a->base.x, a->step, &e, err);
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
            return exec_step_fail(k->x, a->step, &e, err);
    } else if (hashagg_add(a->h, row, &e) != 0) {
        return exec_step_fail(k->x, a->step, &e, err);
    }
    if (hashagg_bytes(a->h) > a->budget)
        return agg_drain(a, err);
    return 0;
}

/*
 * Take the rows of a tokenize (exec_sink_ops.push_spans): a table that
 * counts rows by the token alone folds the spans as they are
 * (hashagg_count_strs), with no row and no copy of a token it has seen;
 * any other goes row by row.
 */
static int
agg_push_spans(exec_sink *k, sh_value *row, size_t col, const char *base,
               const text_span *sp, size_t n, sh_err *err)
{
    agg_sink *a = (agg_sink *)k;
    size_t    kc, i = 0;
    int       rc;

    if (!hashagg_counts_key(a->h, &kc) || kc != col) {
        for (; i < n; i++) {
            row[col] = sh_str(base + sp[i].start, sp[i].len);
            if ((rc = agg_push(k, row, err)) != 0)
                return rc;
        }
        return 0;
    }
    while (i < n) {
        i += hashagg_count_strs(a->h, base, sp + i, n - i, a->budget);
        if (hashagg_bytes(a->h) > a->budget && (rc = agg_drain(a, err)) != 0)
            return rc;
    }
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
        return exec_step_fail(k->x, a->step, &e, err);
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
        (void)fsys_unlink(a->path);
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

static const exec_sink_ops agg_ops = {agg_push,      agg_finish, agg_discard,
                                      agg_held,      agg_bytes,  agg_free,
                                      agg_push_spans};

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
    a->path = xasprintf("%s" AGG_FILE, x->t->out);
    a->sf = rowfile_sections_create(a->path, hashagg_partial_cols(a->h),
                                    a->n_buckets, &e);
    if (a->sf == NULL) {
        exec_step_fail(x, step, &e, err);
        agg_free(&a->base);
        return NULL;
    }
    return &a->base;
}

/* ---- the final half: a bucket merged ------------------------------------ */

typedef struct agg_src {
    exec_run *x;
    hashagg  *h;
    size_t    n_cols;       /* values in a final row */
    uint64_t  emitted;      /* final rows pushed */
    int       pushed_error; /* the error came from exec_push or the tick
                               (worded) */
} agg_src;

/* Bring the finalize's counters into the task's stats: rows_in counts
 * the partial rows read. */
static void
agg_src_stats(agg_src *a, const hashagg_finalize_stats *fs)
{
    a->x->st->rows_in = fs->rows_read;
    a->x->st->spill_bytes = fs->spill_bytes;
    exec_note_peak(a->x, fs->peak_bytes);
}

/* Push one final row (an agg_emit_fn). */
static int
agg_src_emit(void *ctx, const sh_value *row, sh_err *err)
{
    agg_src *a = ctx;
    int      rc;

    if (a->emitted == 0)
        exec_note_peak(a->x, hashagg_bytes(a->h));
    a->emitted++;
    rc = exec_push(a->x, row, a->n_cols, err);
    if (rc < 0)
        a->pushed_error = 1;
    return rc;
}

/* While partial rows are merged (an agg_tick_fn): the stats so far, and
 * the run's tick function at most every EXEC_TICK_MS, so a cancel or a
 * lost lease is noticed during a long merge too. */
static int
agg_src_tick(void *ctx, const hashagg_finalize_stats *fs, sh_err *err)
{
    agg_src *a = ctx;
    int      rc;

    agg_src_stats(a, fs);
    if (now_ms() - a->x->tick_ms < EXEC_TICK_MS)
        return 0;
    rc = exec_tick_now(a->x, err);
    if (rc != 0)
        a->pushed_error = 1;
    return rc;
}

/* The row of an aggregate over no rows: counts 0, the rest null. */
static void
empty_aggregate(const plan_step *s, sh_value *row)
{
    size_t i;

    for (i = 0; i < s->n_aggs; i++) {
        agg_fn fn = s->aggs[i].fn;

        row[i] = fn == AGG_COUNT || fn == AGG_COUNT_DISTINCT
                         || fn == AGG_APPROX_COUNT_DISTINCT
                     ? sh_int(0)
                     : sh_null();
    }
}

/*
 * The budget of the table that merges a bucket: half of the source's share
 * (exec_run.src_budget), as the partial half's table gets half of the
 * sink's. The table's bytes do not count its slot array while it doubles
 * (old and new at once) nor the finalize's buffers (a 1 MiB reader and up
 * to 16 spill writers of 1 MiB while it re-partitions); with the whole
 * budget for the table, a groupby of 10 million keys took workers to
 * 285 MiB of RSS under a 256 MiB budget.
 */
static size_t
agg_table_budget(const exec_run *x)
{
    return x->src_budget / 2;
}

static int
source_agg(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task       *t = x->t;
    size_t                 n = t->n_inputs, i, bucket;
    char                 **paths = xcalloc(n ? n : 1, sizeof *paths);
    agg_src                a;
    hashagg_finalize_stats fs;
    sh_err                 e;
    int                    rc;

    bucket = s->op == OP_AGGREGATE ? 0 : t->index;
    for (i = 0; i < n; i++) {
        paths[i] = xasprintf("%s" AGG_FILE, t->inputs[i]);
        x->st->bytes_in += rowfile_section_bytes(paths[i], bucket);
    }
    memset(&a, 0, sizeof a);
    a.x = x;
    a.h = hashagg_new(s->cols, s->n_cols, s->aggs, s->n_aggs);
    a.n_cols = hashagg_final_cols(a.h);
    rc = hashagg_finalize_files(a.h, (const char *const *)paths, n,
                                (long)bucket, agg_table_budget(x), t->scratch,
                                agg_src_emit, agg_src_tick, &a, &fs, &e);
    agg_src_stats(&a, &fs);
    if (rc < 0 && a.pushed_error)
        *err = e; /* worded by exec_push */
    else if (rc < 0)
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
    if (rc == 0 && a.emitted == 0 && s->op == OP_AGGREGATE) {
        sh_value *row = xcalloc(s->n_aggs + 1, sizeof *row);

        empty_aggregate(s, row);
        rc = exec_push(x, row, s->n_aggs, err);
        free(row);
    }
    hashagg_free(a.h);
    exec_free_paths(paths, n);
    return rc;
}

/* ---- the rows of the table ---------------------------------------------- */

/* A stage after a groupby or distinct has a task per hash bucket: as many
 * as the tasks of the stage before, 1 to PLAN_MAX_BUCKETS. */
static size_t
bucket_tasks(size_t before)
{
    if (before < 1)
        before = 1;
    return before < PLAN_MAX_BUCKETS ? before : PLAN_MAX_BUCKETS;
}

/* An aggregate's final half is one task. */
static size_t
one_task(size_t before)
{
    (void)before;
    return 1;
}

/* op_def.reads: the keys and the aggregated columns, whatever is read
 * after (the output is made of them). */
static void
reads_agg(const plan_step *s, size_t n_in, const unsigned char *live,
          unsigned char *before)
{
    size_t j;

    (void)n_in;
    (void)live;
    op_reads_cols(s->cols, s->n_cols, before);
    for (j = 0; j < s->n_aggs; j++) {
        if (s->aggs[j].col >= 0)
            before[s->aggs[j].col] = 1;
    }
}

const op_def op_groupby = {
    .op = OP_GROUPBY,
    .name = "groupby",
    .fields = groupby_fields,
    .compile = compile_groupby,
    .final_tasks = bucket_tasks,
    .holds = OP_HOLDS_PARTIAL | OP_HOLDS_FINAL,
    .partial_sink = agg_new,
    .final_source = source_agg,
    .reads = reads_agg,
};

const op_def op_aggregate = {
    .op = OP_AGGREGATE,
    .name = "aggregate",
    .fields = aggregate_fields,
    .compile = compile_aggregate,
    .final_tasks = one_task,
    .holds = OP_HOLDS_PARTIAL | OP_HOLDS_FINAL,
    .partial_sink = agg_new,
    .final_source = source_agg,
    .reads = reads_agg,
};

const op_def op_distinct = {
    .op = OP_DISTINCT,
    .name = "distinct",
    .fields = distinct_fields,
    .compile = compile_distinct,
    .final_tasks = bucket_tasks,
    .holds = OP_HOLDS_PARTIAL | OP_HOLDS_FINAL,
    .partial_sink = agg_new,
    .final_source = source_agg,
    .reads = reads_agg,
};
