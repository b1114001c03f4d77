/*
 * exec_src.c - the sources of the stages after the first: the final half
 * of the combine step that ended the stage before, over the files its
 * tasks wrote (t->inputs, their prefixes, in task order).
 *
 *   groupby, distinct  bucket t->index: that section of "<input>.b" of
 *                      every input
 *                      merged (hashagg_finalize_files, spilling under
 *                      t->scratch past the budget), one row per group
 *   aggregate          the same over section 0; with no rows at all,
 *                      the one row of an empty aggregate
 *   sort               a k-way merge of the runs "<input>.r0", ".r1", ...
 *                      of every input in task order (stable); with more
 *                      than MERGE_FAN_IN runs, groups are first merged
 *                      into runs under t->scratch; a top-n stops after n
 *   limit              the first n rows of "<input>.l" in task order
 *   train_naive_bayes  the model trained from every input's counts and
 *                      evaluated on the held-out rows; artifacts written
 *                      to t->artifacts; one row n_train, n_test, accuracy
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "exec_int.h"
#include "nb.h"
#include "rowfile.h"
#include "sort.h"

/* Runs merged at once: merger_new reads this many files well. */
#define MERGE_FAN_IN 256

/* Size of a file, or 0. */
static uint64_t
file_bytes(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* "step K (op): <msg>" with the run's context, for the source's step. */
static int
src_fail(const exec_run *x, sh_err *err, const sh_err *e)
{
    char words[64];

    return exec_fail(x, err, e->code ? e->code : SH_EIO, "%s: %s",
                     exec_step_words(x, (size_t)x->sg->src, words), e->msg);
}

static void
free_paths(char **paths, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* ---- groupby, distinct, aggregate ------------------------------------- */

typedef struct agg_src {
    exec_run *x;
    hashagg  *h;
    size_t    n_cols;  /* values in a final row */
    uint64_t  emitted; /* final rows pushed */
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
        paths[i] = xasprintf("%s.b", t->inputs[i]);
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
        rc = src_fail(x, err, &e);
    if (rc == 0 && a.emitted == 0 && s->op == OP_AGGREGATE) {
        sh_value *row = xcalloc(s->n_aggs + 1, sizeof *row);

        empty_aggregate(s, row);
        rc = exec_push(x, row, s->n_aggs, err);
        free(row);
    }
    hashagg_free(a.h);
    free_paths(paths, n);
    return rc;
}

/* ---- sort ------------------------------------------------------------- */

/*
 * Merge 'paths' (in order) into one row file 'out', keeping the first
 * 'limit' rows when it is > 0. Counts the bytes as spilled.
 */
static int
merge_into(exec_run *x, const plan_step *s, char *const *paths, size_t n,
           const char *out, sh_err *err)
{
    merger         *m;
    rowfile_writer *w = NULL;
    const sh_value *row;
    uint64_t        rows = 0;
    sh_err          e;
    int             rc = 0;

    m = merger_new((const char *const *)paths, n, s->keys, s->n_keys, &e);
    if (m == NULL)
        return src_fail(x, err, &e);
    w = rowfile_create_scratch(out, s->out->n, &e);
    if (w == NULL) {
        rc = src_fail(x, err, &e);
        goto done;
    }
    while (s->limit == 0 || rows < s->limit) {
        rc = merger_next(m, &row, &e);
        if (rc <= 0)
            break;
        if ((rc = rowfile_write(w, row, &e)) != 0)
            break;
        rows++;
    }
    if (rc < 0) {
        rowfile_abort(w);
        rc = src_fail(x, err, &e);
        goto done;
    }
    x->st->spill_bytes += rowfile_bytes(w);
    if (rowfile_close(w, &e) != 0)
        rc = src_fail(x, err, &e);

done:
    merger_free(m);
    return rc;
}

/*
 * While there are more than MERGE_FAN_IN runs, merge consecutive groups
 * of them into runs "<scratch>.m<round>.<g>" (removing the scratch runs
 * of the round before, never the inputs). *paths and *n are replaced.
 */
static int
reduce_runs(exec_run *x, const plan_step *s, char ***paths, size_t *n,
            sh_err *err)
{
    unsigned round = 0;
    int      rc;

    while (*n > MERGE_FAN_IN) {
        size_t groups = (*n + MERGE_FAN_IN - 1) / MERGE_FAN_IN, g;
        char **next = xcalloc(groups, sizeof *next);

        for (g = 0; g < groups; g++) {
            size_t lo = g * MERGE_FAN_IN;
            size_t hi = lo + MERGE_FAN_IN < *n ? lo + MERGE_FAN_IN : *n;

            next[g] = xasprintf("%s.m%u.%zu", x->t->scratch, round, g);
            rc = merge_into(x, s, *paths + lo, hi - lo, next[g], err);
            if (rc == 0)
                rc = exec_tick_now(x, err);
            if (rc != 0) {
                free_paths(next, g + 1);
                return rc;
            }
        }
        if (round > 0) {
            for (g = 0; g < *n; g++)
                (void)unlink((*paths)[g]);
        }
        free_paths(*paths, *n);
        *paths = next;
        *n = groups;
        round++;
    }
    return 0;
}

static int
source_sort(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task *t = x->t;
    char           **paths = NULL;
    size_t           n = 0, cap = 0, i;
    merger          *m = NULL;
    const sh_value  *row;
    uint64_t         rows = 0;
    sh_err           e;
    int              rc = 0;

    for (i = 0; i < t->n_inputs; i++) {
        size_t r;

        for (r = 0;; r++) {
            char       *path = xasprintf("%s.r%zu", t->inputs[i], r);
            struct stat sb;

            if (stat(path, &sb) != 0) {
                free(path);
                break;
            }
            x->st->bytes_in += (uint64_t)sb.st_size;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                paths = xrealloc(paths, cap * sizeof *paths);
            }
            paths[n++] = path;
        }
    }
    if (n == 0)
        goto done;
    if ((rc = reduce_runs(x, s, &paths, &n, err)) != 0)
        goto done;
    m = merger_new((const char *const *)paths, n, s->keys, s->n_keys, &e);
    if (m == NULL) {
        rc = src_fail(x, err, &e);
        goto done;
    }
    while (s->limit == 0 || rows < s->limit) {
        rc = merger_next(m, &row, &e);
        if (rc < 0) {
            rc = src_fail(x, err, &e);
            break;
        }
        if (rc == 0)
            break;
        rows++;
        x->st->rows_in++;
        if ((rc = exec_push(x, row, s->out->n, err)) != 0)
            break;
    }

done:
    merger_free(m);
    free_paths(paths, n);
    return rc;
}

/* ---- limit ------------------------------------------------------------ */

static int
source_limit(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task *t = x->t;
    uint64_t         rows = 0;
    size_t           i;
    sh_err           e;
    int              rc = 0;

    for (i = 0; i < t->n_inputs && rows < s->limit; i++) {
        char           *path = xasprintf("%s.l", t->inputs[i]);
        rowfile_reader *r = rowfile_open(path, &e);
        const sh_value *row;

        x->st->bytes_in += file_bytes(path);
        free(path);
        if (r == NULL)
            return src_fail(x, err, &e);
        if (rowfile_cols(r) != s->out->n) {
            rc = exec_fail(x, err, SH_EDATA,
                           "%s.l has rows of %zu values, expected %zu",
                           t->inputs[i], rowfile_cols(r), s->out->n);
            rowfile_free(r);
            return rc;
        }
        while (rows < s->limit) {
            rc = rowfile_next(r, &row, &e);
            if (rc < 0) {
                rc = src_fail(x, err, &e);
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

/* ---- train_naive_bayes ------------------------------------------------ */

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

        x->st->bytes_in += file_bytes(c) + file_bytes(h);
        free(c);
        free(h);
    }
    x->wrote_artifacts = 1;
    if (nb_train_final(s->features, t->inputs, t->n_inputs, t->artifacts,
                       &res, &e) != 0)
        return src_fail(x, err, &e);
    row[0] = sh_int((int64_t)res.n_train);
    row[1] = sh_int((int64_t)res.n_test);
    row[2] = isnan(res.accuracy) ? sh_null() : sh_float(res.accuracy);
    x->st->rows_in = res.n_train + res.n_test;
    return exec_push(x, row, 3, err);
}

/* ---- choosing --------------------------------------------------------- */

int
exec_source_combine(exec_run *x, sh_err *err)
{
    const plan_step *s;
    char             words[64];

    if (x->sg->src < 0 || (size_t)x->sg->src >= x->p->n_steps) {
        return exec_fail(x, err, SH_EINVAL,
                         "stage %zu has no source step; the plan is "
                         "inconsistent",
                         x->t->stage);
    }
    s = &x->p->steps[x->sg->src];
    switch (s->op) {
    case OP_GROUPBY:
    case OP_AGGREGATE:
    case OP_DISTINCT:
        return source_agg(x, s, err);
    case OP_SORT:
        return source_sort(x, s, err);
    case OP_LIMIT:
        return source_limit(x, s, err);
    case OP_TRAIN_NB:
        return source_nb(x, s, err);
    default:
        return exec_fail(x, err, SH_EINVAL,
                         "%s cannot start a stage; the plan is "
                         "inconsistent",
                         exec_step_words(x, (size_t)x->sg->src, words));
    }
}

void
exec_source_discard(exec_run *x)
{
    char *path;

    if (!x->wrote_artifacts || x->t->artifacts == NULL)
        return;
    path = xasprintf("%s/report", x->t->artifacts);
    (void)unlink(path);
    free(path);
    path = xasprintf("%s/model", x->t->artifacts);
    (void)unlink(path);
    free(path);
}
