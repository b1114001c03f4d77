/*
 * op_join.c - the partitioned join: a join step whose 'with' side does
 * not fit the memory budget, or a right or full join whose rows come in
 * several tasks, runs as a combine operator (steps.c compiles the step and
 * gives it this op_def instead of the map step's; its plan_op stays
 * OP_JOIN).
 *
 * The partial half (the sink of the stage before) hashes each left row by
 * its keys (exec_join_hash) into "<out>.j", a sectioned row file with a
 * section per bucket of the next stage (PLAN_MAX_BUCKETS of them); a left
 * row with a null key goes to bucket 0 when it is kept (left, full, anti),
 * and nowhere otherwise.
 *
 * The final half, one task per bucket k, reads the 'with' side and keeps
 * the rows of bucket k only (the same hash, on its keys) in a hash table,
 * then probes it with bucket k of every left partial and emits as the
 * broadcast join does; a right or full join then emits the side rows of
 * the bucket no left row matched (its null-key rows are in bucket 0), so
 * every side row is emitted once over all the tasks.
 *
 * Why the side is scanned by each final task rather than partitioned by
 * tasks of its own: the planner's stages are a chain (a stage's tasks are
 * the partitions of one input, or the buckets of the stage before), and a
 * stage of left and right partitions would need a second kind of task.
 * Each bucket's task reads the whole side (I/O: the side's bytes times the
 * buckets) but holds only its bucket. Not done yet: re-partitioning a
 * bucket still over the budget (by another hash seed, spilled): such a
 * bucket fails the task with a clear error.
 */
#include "op.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "input.h"
#include "rowfile.h"

#define JOIN_FILE ".j" /* "<out>.j": the left rows, a section per bucket */

/* ---- the partial half: the left rows into buckets --------------------- */

typedef struct join_sink {
    exec_sink         base;
    const plan_step  *s;
    size_t            n_cols;    /* the join's input width */
    size_t            n_buckets; /* tasks of the next stage */
    int               keep_null; /* left, full, anti: null keys kept */
    char             *path;
    rowfile_sections *sf;
    uint64_t          closed_bytes;
} join_sink;

static int
join_push(exec_sink *k, const sh_value *row, sh_err *err)
{
    join_sink *js = (join_sink *)k;
    uint64_t   h;
    int        null;

    h = exec_join_hash(row, js->s->cols, js->s->n_cols, &null);
    if (null && !js->keep_null)
        return 0;
    return rowfile_write(rowfile_sections_writer(
                             js->sf, exec_join_bucket(h, null, js->n_buckets)),
                         row, err);
}

static int
join_finish(exec_sink *k, sh_err *err)
{
    join_sink        *js = (join_sink *)k;
    rowfile_sections *sf = js->sf;

    js->closed_bytes = rowfile_sections_bytes(sf);
    js->sf = NULL;
    return rowfile_sections_close(sf, err);
}

static void
join_discard(exec_sink *k)
{
    join_sink *js = (join_sink *)k;

    rowfile_sections_abort(js->sf);
    js->sf = NULL;
    if (js->path != NULL)
        remove(js->path);
}

static size_t
join_held(const exec_sink *k)
{
    (void)k;
    return 0;
}

static uint64_t
join_bytes_out(const exec_sink *k)
{
    const join_sink *js = (const join_sink *)k;

    return js->sf != NULL ? rowfile_sections_bytes(js->sf) : js->closed_bytes;
}

static void
join_free(exec_sink *k)
{
    join_sink *js = (join_sink *)k;

    rowfile_sections_abort(js->sf);
    free(js->path);
    free(js);
}

static const exec_sink_ops join_sink_ops = {
    join_push,      join_finish, join_discard, join_held,
    join_bytes_out, join_free,   NULL,
};

static exec_sink *
partial_join(exec_run *x, size_t step, sh_err *err)
{
    const plan_step *s = &x->p->steps[step];
    join_sink       *js = xcalloc(1, sizeof *js);
    int              how = s->join->how;
    sh_err           e;

    js->base.ops = &join_sink_ops;
    js->base.x = x;
    js->s = s;
    js->n_cols = s->out->n - s->join->n_keep;
    js->n_buckets = x->p->stages[x->t->stage + 1].n_tasks;
    if (js->n_buckets == 0)
        js->n_buckets = 1;
    js->keep_null = how == JOIN_LEFT || how == JOIN_FULL || how == JOIN_ANTI;
    js->path = xasprintf("%s" JOIN_FILE, x->t->out);
    js->sf = rowfile_sections_create(js->path, js->n_cols, js->n_buckets, &e);
    if (js->sf == NULL) {
        join_free(&js->base);
        exec_step_fail(x, step, &e, err);
        return NULL;
    }
    return &js->base;
}

/* ---- the final half: one bucket joined -------------------------------- */

/* Emit what left row 'row' (n values) gives, into 'out' (wide enough). */
static int
probe_row(exec_run *x, const plan_step *s, exec_join *j, const sh_value *row,
          size_t n, sh_value *out, sh_err *err)
{
    const plan_join *jn = s->join;
    long             it = exec_join_find(j, row, s->cols);
    size_t           k;
    int              rc;

    if (jn->how == JOIN_SEMI || jn->how == JOIN_ANTI) {
        if ((it >= 0) != (jn->how == JOIN_SEMI))
            return 0;
        return exec_push(x, row, n, err);
    }
    if (it < 0) {
        if (jn->how != JOIN_LEFT && jn->how != JOIN_FULL)
            return 0;
        memcpy(out, row, n * sizeof *row);
        for (k = 0; k < jn->n_keep; k++)
            out[n + k] = sh_null();
        return exec_push(x, out, n + jn->n_keep, err);
    }
    for (; it >= 0; it = exec_join_next(j, it)) {
        exec_join_mark(j, it);
        memcpy(out, row, n * sizeof *row);
        if (jn->n_keep > 0)
            memcpy(out + n, exec_join_keep(j, it), jn->n_keep * sizeof *out);
        if ((rc = exec_push(x, out, n + jn->n_keep, err)) != 0)
            return rc;
    }
    return 0;
}

/* The side rows of the bucket no left row matched (right, full). */
static int
emit_unmatched(exec_run *x, const plan_step *s, exec_join *j, size_t n,
               sh_value *out, sh_err *err)
{
    const sh_value *keys;
    size_t          k;
    long            it;
    int             rc;

    for (it = exec_join_unmatched(j, -1, &keys); it >= 0;
         it = exec_join_unmatched(j, it, &keys)) {
        for (k = 0; k < n; k++)
            out[k] = sh_null();
        for (k = 0; k < s->n_cols; k++)
            out[s->cols[k]] = keys[k];
        memcpy(out + n, keys + s->n_cols, s->join->n_keep * sizeof *out);
        if ((rc = exec_push(x, out, n + s->join->n_keep, err)) != 0)
            return rc;
    }
    return 0;
}

/* ---- rows of a bucket: where they come from ---------------------------- */

/* Levels of re-partitioning of a bucket still over the budget; each uses
 * other bits of the key hash (JOIN_SUB buckets). */
#define JOIN_LEVELS 3
#define JOIN_SUB    16

/* The sub-bucket of level 'level' (>= 1) of key hash 'h'. */
static size_t
sub_bucket(uint64_t h, int null, int level)
{
    if (null)
        return 0;
    return (size_t)((h >> (40 - 8 * level)) % JOIN_SUB);
}

/* An iterator over rows: the 'with' input's rows of bucket 'bucket' (of
 * n_buckets; paths NULL), or section 'sec' of each of n_paths files. */
typedef struct jiter {
    exec_run          *x;
    const plan_step   *s;
    const char *const *paths;
    size_t             n_paths;
    size_t             sec;
    size_t             bucket, n_buckets;
    size_t             i; /* the file or partition being read */
    input_reader      *in;
    rowfile_reader    *rf;
} jiter;

static void
jiter_close(jiter *it)
{
    input_free(it->in);
    it->in = NULL;
    rowfile_free(it->rf);
    it->rf = NULL;
}

/* The next row: 1, 0 at the end, or an error in *e. */
static int
jiter_next(jiter *it, const sh_value **row, sh_err *e)
{
    const plan *side = it->s->join->side;
    uint64_t    h;
    int         rc, null;

    for (;;) {
        if (it->paths == NULL && it->in == NULL) {
            if (it->i >= side->n_parts)
                return 0;
            it->in = input_open(side, it->i, NULL, e);
            if (it->in == NULL)
                return e->code ? e->code : SH_EIO;
        } else if (it->paths != NULL && it->rf == NULL) {
            if (it->i >= it->n_paths)
                return 0;
            it->rf = rowfile_open_section(it->paths[it->i], it->sec,
                                          ROWFILE_BUF_BYTES, e);
            if (it->rf == NULL)
                return e->code ? e->code : SH_EIO;
        }
        rc = it->in != NULL ? input_next(it->in, row, e)
                            : rowfile_next(it->rf, row, e);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            jiter_close(it);
            it->i++;
            continue;
        }
        if (it->paths != NULL || it->n_buckets <= 1)
            return 1;
        h = exec_join_hash(*row, it->s->join->right_on, it->s->n_cols, &null);
        if (null
            && !(it->s->join->how == JOIN_RIGHT
                 || it->s->join->how == JOIN_FULL))
            continue;
        if (exec_join_bucket(h, null, it->n_buckets) == it->bucket)
            return 1;
    }
}

/* Write the rows of 'it' into the JOIN_SUB sections of 'path' by their
 * keys' sub-bucket of 'level' (keys at 'idx'). */
static int
spill(jiter *it, const char *path, size_t n_cols, const size_t *idx, int level,
      sh_err *e)
{
    rowfile_sections *sf = rowfile_sections_create(path, n_cols, JOIN_SUB, e);
    const sh_value   *row;
    uint64_t          h;
    int               rc, null;

    if (sf == NULL)
        return e->code ? e->code : SH_EIO;
    while ((rc = jiter_next(it, &row, e)) == 1) {
        h = exec_join_hash(row, idx, it->s->n_cols, &null);
        rc = rowfile_write(
            rowfile_sections_writer(sf, sub_bucket(h, null, level)), row, e);
        if (rc != 0)
            break;
    }
    jiter_close(it);
    if (rc < 0) {
        rowfile_sections_abort(sf);
        return rc;
    }
    it->x->st->spill_bytes += rowfile_sections_bytes(sf);
    return rowfile_sections_close(sf, e);
}

/*
 * Join the side rows of 'side' with the left rows of 'left' (one bucket
 * at 'level' 0, a sub-bucket after): a hash table of the side rows when
 * they fit the budget; else both re-partitioned into JOIN_SUB spill files
 * by the next level's bits of the key hash, joined sub-bucket by
 * sub-bucket. Errors in *e unless *pushed (worded by exec_push).
 */
static int
join_level(exec_run *x, const plan_step *s, jiter *side, jiter *left, int level,
           int *pushed, sh_err *e)
{
    size_t     n = s->out->n - s->join->n_keep, sub;
    uint64_t   budget = x->t->mem_bytes - exec_reserve_bytes(x->t->mem_bytes);
    sh_value  *out = NULL;
    exec_join *j = exec_join_new(s);
    const sh_value *row;
    char           *sp = NULL, *lp = NULL;
    int             rc, big = 0;

    while ((rc = jiter_next(side, &row, e)) == 1) {
        exec_join_add(j, s, row);
        if (exec_join_bytes(j) > budget) {
            big = 1;
            break;
        }
    }
    jiter_close(side);
    if (rc < 0)
        goto done;
    if (big) {
        jiter       sd = *side, lf = *left;
        const char *spp, *lpp;

        exec_join_free(j);
        j = NULL;
        if (level >= JOIN_LEVELS) {
            rc = sh_err_set(e, SH_ETOOBIG, "",
                            "a bucket of the 'with' input is over the "
                            "memory budget of %llu MiB after %d "
                            "re-partitionings: one key has too many rows; "
                            "raise SHEAF_MEMORY_MB",
                            (unsigned long long)(x->t->mem_bytes >> 20),
                            JOIN_LEVELS);
            goto done;
        }
        sp = xasprintf("%s.js%d", x->t->scratch, level + 1);
        lp = xasprintf("%s.jl%d", x->t->scratch, level + 1);
        sd.i = 0;
        lf.i = 0;
        rc = spill(&sd, sp, s->join->side->in_schema->n, s->join->right_on,
                   level + 1, e);
        if (rc == 0)
            rc = spill(&lf, lp, n, s->cols, level + 1, e);
        spp = sp;
        lpp = lp;
        for (sub = 0; rc == 0 && sub < JOIN_SUB; sub++) {
            jiter ss = {x, s, &spp, 1, sub, 0, 0, 0, NULL, NULL};
            jiter ls = {x, s, &lpp, 1, sub, 0, 0, 0, NULL, NULL};

            rc = join_level(x, s, &ss, &ls, level + 1, pushed, e);
        }
        goto done;
    }
    exec_note_peak(x, exec_join_bytes(j));
    out = xcalloc(s->out->n + 1, sizeof *out);
    while ((rc = jiter_next(left, &row, e)) == 1) {
        if (level == 0)
            x->st->rows_in++;
        rc = probe_row(x, s, j, row, n, out, e);
        if (rc != 0) {
            *pushed = 1;
            goto done;
        }
    }
    jiter_close(left);
    if (rc < 0)
        goto done;
    rc = emit_unmatched(x, s, j, n, out, e);
    if (rc != 0)
        *pushed = 1;

done:
    jiter_close(left);
    jiter_close(side);
    if (sp != NULL) {
        remove(sp);
        free(sp);
    }
    if (lp != NULL) {
        remove(lp);
        free(lp);
    }
    free(out);
    exec_join_free(j);
    return rc;
}

static int
source_join(exec_run *x, const plan_step *s, sh_err *err)
{
    const exec_task *t = x->t;
    size_t           i, n_buckets = x->sg->n_tasks ? x->sg->n_tasks : 1;
    char           **paths = xcalloc(t->n_inputs + 1, sizeof *paths);
    jiter  side = {x, s, NULL, 0, 0, t->index, n_buckets, 0, NULL, NULL};
    jiter  left = {x, s, NULL, 0, t->index, 0, 0, 0, NULL, NULL};
    sh_err e;
    int    rc, pushed = 0;

    for (i = 0; i < t->n_inputs; i++) {
        paths[i] = xasprintf("%s" JOIN_FILE, t->inputs[i]);
        x->st->bytes_in += rowfile_section_bytes(paths[i], t->index);
    }
    left.paths = (const char *const *)paths;
    left.n_paths = t->n_inputs;
    sh_err_clear(&e);
    rc = join_level(x, s, &side, &left, 0, &pushed, &e);
    if (rc < 0 && pushed)
        *err = e;
    else if (rc < 0)
        rc = exec_step_fail(x, (size_t)x->sg->src, &e, err);
    exec_free_paths(paths, t->n_inputs);
    return rc;
}

/* A partitioned join's final half: PLAN_MAX_BUCKETS tasks, whatever the
 * tasks before (the buckets split the 'with' side, whose size does not
 * depend on them). */
static size_t
join_buckets(size_t before)
{
    (void)before;
    return PLAN_MAX_BUCKETS;
}

static const char *const join_fields[] = {"op",       "with", "on", "left_on",
                                          "right_on", "how",  NULL};

/* Only steps.c gives a step this row, after compiling it as a join. */
static int
compile_never(const plan_step_in *c, sh_err *err)
{
    (void)c;
    return sh_err_set(err, SH_EINVAL, "", "the plan is inconsistent");
}

static void
reads_join_part(const plan_step *s, size_t n_in, const unsigned char *live,
                unsigned char *before)
{
    memcpy(before, live, n_in);
    op_reads_cols(s->cols, s->n_cols, before);
}

const op_def op_join_part = {
    .op = OP_JOIN,
    .name = "join",
    .fields = join_fields,
    .compile = compile_never,
    .reads = reads_join_part,
    .final_tasks = join_buckets,
    .holds = OP_HOLDS_FINAL,
    .partial_sink = partial_join,
    .final_source = source_join,
};
