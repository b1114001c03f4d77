/*
 * op_sort.c - the sort operator (op.h), also a top-n when a limit follows
 * it (the limit's n is in the sort step's 'limit').
 *
 * Partial half: sorted runs "<out>.r0", "<out>.r1", ... (none when no row
 * came; sort.h), keeping the first n rows of a top-n.
 *
 * Final half: a k-way merge of the runs of every input in task order
 * (stable); with more than MERGE_FAN_IN runs, groups are first merged
 * into runs under t->scratch; a top-n stops after n rows. A full sort's
 * final half is SORT_FINAL_TASKS tasks cut by key ranges, each merging
 * the rows of its range from every run: the partial half also writes a
 * sample of its rows ("<out>.s", sorter_keep_sample), from which every
 * final task computes the same range bounds (sort_bounds_load); the
 * tasks' outputs in task order are the whole sort.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "rowfile.h"
#include "sort.h"

static const char *const sort_fields[] = {"op", "by", NULL};
static const char *const sort_key_fields[] = {"column", "desc", NULL};

/* Runs merged at once: merger_new reads this many files well. */
#define MERGE_FAN_IN 256

/* Tasks of a full sort's final half (key ranges), at most: the cores of
 * one host; each reads past the rows before its range. */
#define SORT_FINAL_TASKS 2

/* The sample a full sort's partial half writes after its 'out'. */
#define SAMPLE_FILE ".s"

/* ---- compiling ---------------------------------------------------------- */

/* One sort key: {column, desc?}, or a bare column name. */
static int
compile_sort_key(const plan_step_in *c, json_t *k, size_t j, sh_err *err)
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
compile_sort(const plan_step_in *c, sh_err *err)
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
    json_array_foreach(by, j, k)
    {
        if ((rc = compile_sort_key(c, k, j, err)) != 0)
            return rc;
    }
    s->out = schema_copy(c->in);
    return 0;
}

/* ---- the partial half: sorted runs -------------------------------------- */

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
        return exec_step_fail(k->x, s->step, &e, err);
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
        return exec_step_fail(k->x, s->step, &e, err);
    s->n_runs = rc;
    for (i = 0; i < rc; i++) {
        char *path = xasprintf("%s.r%d", k->x->t->out, i);

        s->run_bytes += exec_file_bytes(path);
        free(path);
    }
    return 0;
}

static void
sort_discard(exec_sink *k)
{
    exec_remove_prefixed(k->x->t->out, ".r");
    exec_remove_prefixed(k->x->t->out, ".m");
    exec_remove_prefixed(k->x->t->out, SAMPLE_FILE);
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
                                       sort_held, sort_bytes,  sort_free,
                                       NULL};

static exec_sink *
sort_new(exec_run *x, size_t step, sh_err *err)
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
    (void)err; /* making a sorter cannot fail */
    s->so = sorter_new(in->n, st->keys, st->n_keys, x->sink_budget, x->t->out,
                       st->limit);
    if (st->limit == 0) {
        char *path = xasprintf("%s%s", x->t->out, SAMPLE_FILE);

        sorter_keep_sample(s->so, path);
        free(path);
    }
    return &s->base;
}

/* ---- the final half: the runs merged ------------------------------------ */

/*
 * Merge 'paths' (in order) into one row file 'out', keeping the first
 * 'limit' rows when it is > 0. Counts the bytes as spilled.
 */
static int
merge_into(exec_run *x, const plan_step *s, char *const *paths, size_t n,
           const sort_bounds *b, const char *out, sh_err *err)
{
    merger         *m;
    rowfile_writer *w = NULL;
    const sh_value *row;
    uint64_t        rows = 0;
    sh_err          e;
    int             rc = 0;

    m = merger_new((const char *const *)paths, n, s->keys, s->n_keys, &e);
    if (m == NULL)
        return exec_step_fail(x, (size_t)x->sg->src, &e, err);
    if (b != NULL)
        merger_set_bounds(m, b);
    w = rowfile_create_scratch(out, s->out->n, &e);
    if (w == NULL) {
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
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
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
        goto done;
    }
    x->st->spill_bytes += rowfile_bytes(w);
    if (rowfile_close(w, &e) != 0)
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);

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
reduce_runs(exec_run *x, const plan_step *s, const sort_bounds *b,
            char ***paths, size_t *n, sh_err *err)
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
            rc = merge_into(x, s, *paths + lo, hi - lo, b, next[g], err);
            if (rc == 0)
                rc = exec_tick_now(x, err);
            if (rc != 0) {
                exec_free_paths(next, g + 1);
                return rc;
            }
        }
        if (round > 0) {
            for (g = 0; g < *n; g++)
                (void)fsys_unlink((*paths)[g]);
        }
        exec_free_paths(*paths, *n);
        *paths = next;
        *n = groups;
        round++;
    }
    return 0;
}

/*
 * The key range of this task of the final half's 'n_tasks', from the
 * samples of every input (the same for every task). 0 with *out, or an
 * error worded with the run's context.
 */
static int
load_bounds(exec_run *x, const plan_step *s, size_t n_tasks, sort_bounds **out,
            sh_err *err)
{
    const exec_task *t = x->t;
    char           **paths = xcalloc(t->n_inputs + 1, sizeof *paths);
    sh_err           e;
    size_t           i;
    int              rc = 0;

    for (i = 0; i < t->n_inputs; i++)
        paths[i] = xasprintf("%s%s", t->inputs[i], SAMPLE_FILE);
    if (sort_bounds_load((const char *const *)paths, t->n_inputs, s->keys,
                         s->n_keys, t->index, n_tasks, out, &e)
        != 0)
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
    exec_free_paths(paths, t->n_inputs);
    return rc;
}

static int
source_sort(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task *t = x->t;
    char           **paths = NULL;
    size_t           n = 0, cap = 0, i;
    merger          *m = NULL;
    sort_bounds     *b = NULL;
    const sh_value  *row;
    uint64_t         rows = 0;
    size_t           n_tasks = x->p->stages[t->stage].n_tasks;
    sh_err           e;
    int              rc = 0;

    if (n_tasks > 1 && (rc = load_bounds(x, s, n_tasks, &b, err)) != 0)
        return rc;
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
    if ((rc = reduce_runs(x, s, b, &paths, &n, err)) != 0)
        goto done;
    m = merger_new((const char *const *)paths, n, s->keys, s->n_keys, &e);
    if (m == NULL) {
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
        goto done;
    }
    if (b != NULL)
        merger_set_bounds(m, b);
    while (s->limit == 0 || rows < s->limit) {
        rc = merger_next(m, &row, &e);
        if (rc < 0) {
            rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
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
    sort_bounds_free(b);
    exec_free_paths(paths, n);
    return rc;
}

/* ---- the row of the table ----------------------------------------------- */

/* One task merges every run (a top-n; see sort_tasks). */
static size_t
one_task(size_t before)
{
    (void)before;
    return 1;
}

/*
 * A full sort's final half is SORT_FINAL_TASKS tasks (key ranges), at
 * most one a task before; a top-n's is one task, and so is one whose
 * stage then runs a right or full join (in one task it keeps the sorted
 * order and emits the unmatched 'with' rows last; in several the planner
 * would hash-partition it).
 */
static size_t
sort_tasks(const plan *p, size_t i, size_t before)
{
    size_t j;

    if (p->steps[i].limit > 0 || before < 2)
        return 1;
    for (j = i + 1; j < p->n_steps; j++) {
        const plan_join *jn = p->steps[j].join;

        if (jn != NULL && (jn->how == JOIN_RIGHT || jn->how == JOIN_FULL))
            return 1;
        if (jn == NULL && p->steps[j].def->final_source != NULL
            && p->steps[j].op != OP_LIMIT)
            break; /* the next combine step: another stage */
    }
    return before < SORT_FINAL_TASKS ? before : SORT_FINAL_TASKS;
}

/* A sort with a limit right after it is a top-n: its final half keeps
 * the first n rows, so it runs that limit too. */
static int
takes_limit(const plan *p, size_t i)
{
    return p->steps[i].limit > 0 && i + 1 < p->n_steps
           && p->steps[i + 1].op == OP_LIMIT;
}

/* "sort (final, top 10)" for a top-n. */
static void
half_words(const plan_step *s, const char *half, char *buf, size_t len)
{
    if (s->limit > 0) {
        snprintf(buf, len, "sort (%s, top %llu)", half,
                 (unsigned long long)s->limit);
    } else {
        snprintf(buf, len, "sort (%s)", half);
    }
}

/* op_def.reads: what is read after, and the keys. */
static void
reads_sort(const plan_step *s, size_t n_in, const unsigned char *live,
           unsigned char *before)
{
    size_t j;

    op_reads_same(s, n_in, live, before);
    for (j = 0; j < s->n_keys; j++)
        before[s->keys[j].col] = 1;
}

const op_def op_sort = {
    .op = OP_SORT,
    .name = "sort",
    .fields = sort_fields,
    .compile = compile_sort,
    .final_tasks = one_task,
    .final_tasks_at = sort_tasks,
    .absorbs_next = takes_limit,
    .half_words = half_words,
    .holds = OP_HOLDS_PARTIAL,
    .partial_sink = sort_new,
    .final_source = source_sort,
    .reads = reads_sort,
};
