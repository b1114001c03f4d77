/*
 * stages.c - the compiled pipeline cut into stages (plan_stage in plan.h)
 * and their description, from what each step's operator says (op.h).
 *
 * Stage 0 reads the input partitions (a task per partition) and runs the
 * map steps up to the first combine step, whose partial half is its sink.
 * Each combine step C then starts a stage whose source is C's final half,
 * with as many tasks as C's final_tasks says; when C absorbs the step
 * after it (a sort followed by a limit is one top-n), that stage also
 * consumes that step. The last stage ends with the output writer.
 */
#include "op.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "../lib/util.h"

/* Is step i a combine step (one with a partial and a final half)? */
static int
is_combine(const plan *p, size_t i)
{
    return p->steps[i].def->final_source != NULL;
}

/* Does combine step i consume the step right after it? */
static int
takes_next(const plan *p, size_t i)
{
    const op_def *d = p->steps[i].def;

    return d->absorbs_next != NULL && d->absorbs_next(p, i);
}

/* How many stages the steps of 'p' make. */
static size_t
count_stages(const plan *p)
{
    size_t i, n = 1;

    for (i = 0; i < p->n_steps; i++) {
        if (!is_combine(p, i))
            continue;
        n++;
        if (takes_next(p, i))
            i++;
    }
    return n;
}

void
plan_cut_stages(plan *p)
{
    plan_stage *st;
    size_t      i, k = 0;

    free(p->stages);
    free(p->stage_tasks);
    p->n_stages = count_stages(p);
    p->stages = xcalloc(p->n_stages, sizeof *p->stages);
    p->stage_tasks = xcalloc(p->n_stages, sizeof *p->stage_tasks);
    st = &p->stages[0];
    st->src = -1;
    st->map_begin = 0;
    st->n_tasks = p->n_parts;
    for (i = 0; i < p->n_steps; i++) {
        if (!is_combine(p, i))
            continue;
        st->map_end = i;
        st->sink = (long)i;
        st = &p->stages[++k];
        st->src = (long)i;
        if (p->steps[i].def->final_tasks_at != NULL) {
            st->n_tasks = p->steps[i].def->final_tasks_at(
                p, i, p->stages[k - 1].n_tasks);
        } else {
            st->n_tasks = p->steps[i].def->final_tasks(
                p->stages[k - 1].n_tasks);
        }
        if (takes_next(p, i))
            i++;
        st->map_begin = i + 1;
    }
    assert(k + 1 == p->n_stages);
    st->map_end = p->n_steps;
    st->sink = -1;
    for (k = 0; k < p->n_stages; k++)
        p->stage_tasks[k] = p->stages[k].n_tasks;
}

/* "sort (final, top 10)", "groupby (partial)", ... for combine step i. */
static json_t *
half_name(const plan *p, size_t i, const char *half)
{
    const plan_step *s = &p->steps[i];
    char             buf[96];

    if (s->def->half_words != NULL)
        s->def->half_words(s, half, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%s (%s)", s->def->name, half);
    return json_string(buf);
}

/*
 * [{"stage": 0, "tasks": 8, "steps": ["filter", "groupby (partial)"]},
 *  {"stage": 1, "tasks": 8, "steps": ["groupby (final)",
 *                                      "sort (partial, top 10)"]},
 *  {"stage": 2, "tasks": 1, "steps": ["sort (final, top 10)"]}]
 * The steps of a stage are, in order: the final half of its source (not in
 * stage 0), its map steps, the partial half of its sink (not in the last
 * stage, which writes the output).
 */
json_t *
plan_stages_json(const plan *p)
{
    json_t *stages = json_array(), *names;
    size_t  k, i;

    for (k = 0; k < p->n_stages; k++) {
        const plan_stage *st = &p->stages[k];

        names = json_array();
        if (st->src >= 0)
            json_array_append_new(names,
                                  half_name(p, (size_t)st->src, "final"));
        for (i = st->map_begin; i < st->map_end; i++) {
            json_array_append_new(names, json_string(p->steps[i].def->name));
        }
        if (st->sink >= 0)
            json_array_append_new(names,
                                  half_name(p, (size_t)st->sink, "partial"));
        json_array_append_new(stages, json_pack("{s:I, s:I, s:o}", "stage",
                                                (json_int_t)k, "tasks",
                                                (json_int_t)st->n_tasks,
                                                "steps", names));
    }
    return stages;
}
