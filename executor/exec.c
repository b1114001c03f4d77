/*
 * exec.c - running one task of a plan (exec.h): the driver of
 * exec_run_task, and the source of stage 0 (one input partition).
 *
 * A task is a source, the stage's map steps and a sink. Stage 0's source
 * reads a partition; a later stage's source is the final half of the
 * combine step that ended the stage before, and a stage's sink is the
 * partial half of the combine step that ends it, or the output writer:
 * both come from the step's operator (op.h). Rows go from the source
 * through the map steps into the sink with exec_push (exec_run.c).
 *
 * Stage 0 parses only the input columns that some step or the output
 * reads (a column dropped by a select, or never referenced before a
 * groupby, is not parsed). Which columns an expression reads is found by
 * compiling it once more with each candidate column hidden.
 *
 * Files: the sink writes the task's files; on any error every file the
 * task wrote is removed, and spill files under 'scratch' are removed in
 * every case.
 */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "expr.h"
#include "input.h"
#include "nb.h"
#include "op.h"

/* ---- stage 0's source ------------------------------------------------- */

/* Read partition t->index and push every row. */
static int
source_input(exec_run *x, sh_err *err)
{
    const plan     *p = x->p;
    unsigned char  *need = xcalloc(p->in_schema->n + 1, 1);
    const sh_value *row;
    size_t          n_in = p->in_schema->n;
    int             rc;

    plan_needed_columns(p, need);
    x->in = input_open(p, x->t->index, need, err);
    free(need);
    if (x->in == NULL)
        return err->code ? err->code : SH_EIO;
    while ((rc = input_next(x->in, &row, err)) == 1) {
        rc = exec_push(x, row, n_in, err);
        if (rc != 0)
            break;
    }
    exec_refresh_stats(x);
    return rc;
}

/* ---- the driver ------------------------------------------------------- */

/* Load what the stage's map steps need before the first row: join sides
 * and models; make the row buffers of the steps that fan out. */
static int
prepare_steps(exec_run *x, sh_err *err)
{
    const plan *p = x->p;
    size_t      i;
    sh_err      e;
    char        words[64];

    for (i = x->sg->map_begin; i < x->sg->map_end; i++) {
        const plan_step *s = &p->steps[i];

        if (s->op == OP_TOKENIZE || s->op == OP_JOIN)
            x->fan[i] = xcalloc(x->width, sizeof *x->fan[i]);
        if (s->op == OP_JOIN) {
            if (exec_join_load(s, x->t->mem_bytes, &x->joins[i], &e) != 0) {
                return exec_fail(x, err, e.code ? e.code : SH_EIO, "%s: %s",
                                 exec_step_words(x, i, words), e.msg);
            }
            x->side_bytes += exec_join_bytes(x->joins[i]);
        } else if (s->op == OP_PREDICT_NB) {
            x->models[i] = nb_model_load(s->model, &e);
            if (x->models[i] == NULL) {
                return exec_fail(x, err, e.code ? e.code : SH_EIO, "%s: %s",
                                 exec_step_words(x, i, words), e.msg);
            }
        }
    }
    exec_note_peak(x, x->side_bytes);
    return 0;
}

uint64_t
exec_reserve_bytes(uint64_t mem_bytes)
{
    uint64_t r = mem_bytes / 8;

    if (r < EXEC_RESERVE_MIN)
        r = EXEC_RESERVE_MIN;
    if (r > mem_bytes / 2)
        r = mem_bytes / 2;
    return r;
}

/*
 * Share the task's budget (SHEAF_MEMORY_MB, for the whole worker process)
 * between the operators that hold rows. Off the top come the reserve
 * (exec_reserve_bytes) and the join sides and models as loaded; what is
 * left goes to the source's operator and the sink's, half each when both
 * hold rows (a groupby's final table feeding a sort), else all to the one
 * that does. Never less than a sixteenth of the budget each: the planner
 * refused join sides over the budget, so only a job with several large
 * sides gets there, and it then spills more.
 */
static void
share_budget(exec_run *x)
{
    const plan *p = x->p;
    uint64_t    mem = x->t->mem_bytes, left, floor = mem / 16;
    int         src = x->sg->src >= 0
              && (p->steps[x->sg->src].def->holds & OP_HOLDS_FINAL);
    int sink = x->sg->sink >= 0
               && (p->steps[x->sg->sink].def->holds & OP_HOLDS_PARTIAL);

    left = mem - exec_reserve_bytes(mem);
    left = left > x->side_bytes ? left - x->side_bytes : 0;
    if (src && sink)
        left /= 2;
    if (left < floor)
        left = floor;
    x->src_budget = src ? (size_t)left : 0;
    x->sink_budget = sink ? (size_t)left : 0;
}

/* Check the task against the plan and set the run's context words. */
static int
check_task(exec_run *x, sh_err *err)
{
    const plan      *p = x->p;
    const exec_task *t = x->t;

    if (p->n_stages == 0 || p->stages == NULL) {
        return sh_err_set(err, SH_EINVAL, "",
                          "the plan has no stages; it cannot run");
    }
    if (t->stage >= p->n_stages) {
        return sh_err_set(err, SH_EINVAL, "",
                          "stage %zu does not exist (the plan has %zu)",
                          t->stage, p->n_stages);
    }
    x->sg = &p->stages[t->stage];
    if (t->stage == 0) {
        const plan_part *pt;

        if (t->index >= p->n_parts) {
            return sh_err_set(err, SH_EINVAL, "",
                              "partition %zu does not exist (the plan has "
                              "%zu)",
                              t->index, p->n_parts);
        }
        pt = &p->parts[t->index];
        if (p->in_format == FMT_PARQUET && pt->end > pt->start
            && pt->end <= p->n_pq_rgs) {
            /* Parquet: row groups, not bytes (as input_context says) */
            snprintf(x->ctx, sizeof x->ctx,
                     "partition %zu (file %s, row groups %zu-%zu)", t->index,
                     p->files[pt->file].rel, p->pq_rgs[pt->start],
                     p->pq_rgs[pt->end - 1]);
        } else {
            snprintf(x->ctx, sizeof x->ctx,
                     "partition %zu (file %s, bytes %llu-%llu)", t->index,
                     p->files[pt->file].rel, (unsigned long long)pt->start,
                     (unsigned long long)pt->end);
        }
    } else {
        if (t->index >= x->sg->n_tasks) {
            return sh_err_set(err, SH_EINVAL, "",
                              "stage %zu task %zu does not exist (the stage "
                              "has %zu tasks)",
                              t->stage, t->index, x->sg->n_tasks);
        }
        if (t->n_inputs != p->stages[t->stage - 1].n_tasks) {
            return sh_err_set(err, SH_EINVAL, "",
                              "stage %zu task %zu: %zu inputs given, the "
                              "stage before has %zu tasks",
                              t->stage, t->index, t->n_inputs,
                              p->stages[t->stage - 1].n_tasks);
        }
        snprintf(x->ctx, sizeof x->ctx, "stage %zu task %zu", t->stage,
                 t->index);
    }
    if (t->out == NULL || t->scratch == NULL) {
        return sh_err_set(err, SH_EINVAL, "",
                          "%s: no output or scratch path given", x->ctx);
    }
    return 0;
}

/* The widest row any step of the plan makes (+1 for an appended value). */
static size_t
plan_width(const plan *p)
{
    size_t w = p->in_schema->n, i;

    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].out->n > w)
            w = p->steps[i].out->n;
        if (p->steps[i].join != NULL && p->steps[i].join->side != NULL
            && p->steps[i].join->side->in_schema->n > w)
            w = p->steps[i].join->side->in_schema->n;
    }
    return w + 1;
}

/*
 * The operators of the run's stage: *src the one whose final half is its
 * source (NULL in stage 0: the input), *sink the one whose partial half
 * is its sink (op_output in the last stage). SH_EINVAL when the plan's
 * stages and steps disagree.
 */
static int
stage_ops(exec_run *x, const op_def **src, const op_def **sink, sh_err *err)
{
    const plan *p = x->p;
    long        s = x->sg->src, k = x->sg->sink;
    char        words[64];

    *src = NULL;
    if (x->t->stage > 0) {
        if (s < 0 || (size_t)s >= p->n_steps) {
            return exec_fail(x, err, SH_EINVAL,
                             "stage %zu has no source step; the plan is "
                             "inconsistent",
                             x->t->stage);
        }
        *src = p->steps[s].def;
        if ((*src)->final_source == NULL) {
            return exec_fail(x, err, SH_EINVAL,
                             "%s cannot start a stage; the plan is "
                             "inconsistent",
                             exec_step_words(x, (size_t)s, words));
        }
    }
    if (k < 0) {
        if (x->t->stage + 1 != p->n_stages) {
            return exec_fail(x, err, SH_EINVAL,
                             "only the last stage writes the output; the "
                             "plan is inconsistent");
        }
        *sink = &op_output;
        return 0;
    }
    if ((size_t)k >= p->n_steps || x->t->stage + 1 >= p->n_stages) {
        return exec_fail(x, err, SH_EINVAL,
                         "stage %zu ends with step %ld, which does not "
                         "exist or has no stage after it; the plan is "
                         "inconsistent",
                         x->t->stage, k);
    }
    *sink = p->steps[k].def;
    if ((*sink)->partial_sink == NULL) {
        return exec_fail(x, err, SH_EINVAL,
                         "%s cannot end a stage; the plan is inconsistent",
                         exec_step_words(x, (size_t)k, words));
    }
    return 0;
}

int
exec_run_task(const plan *p, const exec_task *t, exec_tick_fn tick, void *ctx,
              exec_stats *st, sh_err *err)
{
    exec_stats    local;
    exec_run      x;
    const op_def *src = NULL, *sink = NULL;
    size_t        i;
    int           rc;

    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof *st);
    memset(&x, 0, sizeof x);
    sh_err_clear(err);
    x.p = p;
    x.t = t;
    x.tick = tick;
    x.tick_ctx = ctx;
    x.st = st;
    x.tick_ms = now_ms();
    if ((rc = check_task(&x, err)) != 0)
        return rc;

    x.width = plan_width(p);
    x.row = xcalloc(x.width, sizeof *x.row);
    x.tmp = xcalloc(x.width, sizeof *x.tmp);
    x.fan = xcalloc(p->n_steps + 1, sizeof *x.fan);
    x.joins = xcalloc(p->n_steps + 1, sizeof *x.joins);
    x.models = xcalloc(p->n_steps + 1, sizeof *x.models);
    x.a = arena_new(64 * 1024);

    if ((rc = prepare_steps(&x, err)) != 0)
        goto done;
    share_budget(&x);
    if ((rc = stage_ops(&x, &src, &sink, err)) != 0)
        goto done;
    x.sink = sink->partial_sink(&x, sink == &op_output ? 0 : (size_t)x.sg->sink,
                                err);
    if (x.sink == NULL) {
        rc = err->code ? err->code : SH_EIO;
        goto done;
    }
    rc = src == NULL ? source_input(&x, err)
                     : src->final_source(&x, &p->steps[x.sg->src], err);
    if (rc == 0)
        rc = exec_join_rest(&x, err);
    if (rc == EXEC_STOP)
        rc = 0;
    if (rc != 0)
        goto done;
    x.at_end = 1;
    if ((rc = exec_tick_now(&x, err)) != 0)
        goto done;
    rc = x.sink->ops->finish(x.sink, err);
    exec_refresh_stats(&x);

done:
    if (rc != 0) {
        if (x.sink != NULL)
            x.sink->ops->discard(x.sink);
        if (src != NULL && src->final_discard != NULL)
            src->final_discard(&x);
    }
    if (x.sink != NULL)
        x.sink->ops->free(x.sink);
    exec_remove_prefixed(t->scratch, ".");
    input_free(x.in);
    for (i = 0; i <= p->n_steps; i++) {
        free(x.fan[i]);
        exec_join_free(x.joins[i]);
        if (x.models[i] != NULL)
            nb_model_free(x.models[i]);
    }
    free(x.fan);
    free(x.joins);
    free(x.models);
    free(x.row);
    free(x.tmp);
    arena_free(x.a);
    sb_free(&x.text);
    return rc;
}
