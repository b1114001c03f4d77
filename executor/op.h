/*
 * op.h - the operator table: every step a job spec may name is one
 * op_def, the planner and the task runner find everything particular to
 * it there, and nothing else in the planner or the runner knows one
 * operator from another (beyond the map steps that exec_run.c runs
 * inline, on the hot path).
 *
 * A row says, for one op: its name and fields in the spec, how to compile
 * a step of it, and, for a combine operator (one that ends a stage with
 * its partial half and starts the next with its final half): how many
 * tasks its final half runs, whether a half holds rows in memory (and so
 * shares the task's budget), the partial half as the sink of a stage, and
 * the final half as the source of the next. The two halves of one
 * operator talk through the files the partial half writes under the
 * task's 'out' prefix; since both halves live in the operator's file, so
 * do those file names ("<out>.l", ...), in one place.
 *
 * Each operator lives in a file of its own: op_agg.c (groupby, aggregate,
 * distinct), op_sort.c, op_limit.c, op_nb.c (train_naive_bayes),
 * op_output.c (the output writer, the sink of the last stage) and steps.c
 * (the map steps: filter, select, derive, tokenize, join,
 * predict_naive_bayes). op_table.c lists them all. One step changes rows:
 * a join that steps.c (or plan_check_joins) makes partitioned gets
 * op_join_part (op_join.c, a combine operator) as its def; its op stays
 * OP_JOIN and op_table keeps the map step's row.
 *
 * To add an operator:
 *   1. add its value to plan_op (plan.h), before OP_N_OPS;
 *   2. write op_<name>.c: its compile function and, for a combine
 *      operator, its sink (an exec_sink with its exec_sink_ops) and its
 *      source, and one `const op_def op_<name> = {...};` filled in;
 *   3. declare that op_def below and add it to the table in op_table.c,
 *      at its plan_op index.
 * A map step also needs its case in run_steps (exec_run.c), on the hot
 * path.
 */
#ifndef SHEAF_OP_H
#define SHEAF_OP_H

#include <stddef.h>

#include "../lib/err.h"
#include "exec_int.h"
#include "plan.h"
#include "plan_int.h"

/* op_def.holds: which halves hold rows in memory (hash tables, a
 * sorter). The runner shares the task's budget between those. */
#define OP_HOLDS_PARTIAL 1u /* the partial half, the sink */
#define OP_HOLDS_FINAL   2u /* the final half, the source */

struct op_def {
    plan_op            op;     /* its value (its index in op_table) */
    const char        *name;   /* the spec's word: "groupby" */
    const char *const *fields; /* the fields its step may have, NULL
                                  ended; "op" among them */

    /* Check the shape of step 's' from its JSON 'st' before the input is
     * read (beyond its field names); NULL: nothing more to check.
     * Returns 0 or SH_EINVAL. */
    int (*check)(plan_step *s, json_t *st, sh_err *err);

    /*
     * Compile step c->s from its JSON c->st against the rows it reads,
     * c->in: fill the step's fields and its 'out' schema. Returns 0 or
     * SH_EINVAL with err->path naming the field at fault.
     */
    int (*compile)(const plan_step_in *c, sh_err *err);

    /*
     * The input columns step 's' reads, given which of its output
     * columns are read after it: set before[k] for each column k of its
     * input ('n_in' of them) that it needs, when 'live' marks its needed
     * output columns ('before' comes zeroed). Stage 0 parses only what the
     * first step needs this way. NULL: every input column.
     */
    void (*reads)(const plan_step *s, size_t n_in, const unsigned char *live,
                  unsigned char *before);

    /* ---- combine operators only; NULL for the map steps ---------- */

    /* Tasks of the stage its final half starts, after a stage of
     * 'before' tasks (1 for an operator whose final half is one task). */
    size_t (*final_tasks)(size_t before);

    /* As final_tasks, for an operator whose count depends on its step
     * ('i' in 'p'); NULL: final_tasks says. */
    size_t (*final_tasks_at)(const plan *p, size_t i, size_t before);

    /* 1 when its final half also runs step i + 1 (a top-n sort runs the
     * limit right after it); NULL: never. */
    int (*absorbs_next)(const plan *p, size_t i);

    /* Its half named for the stage description, "sort (final, top 10)",
     * into buf; NULL: "<name> (<half>)". */
    void (*half_words)(const plan_step *s, const char *half, char *buf,
                       size_t len);

    unsigned holds; /* OP_HOLDS_PARTIAL | OP_HOLDS_FINAL */

    /*
     * The partial half: the sink of the stage that step 'step' ends (for
     * op_output, the output writer of the last stage; 'step' unused).
     * Owned by the run; NULL with an error worded with the run's context.
     */
    exec_sink *(*partial_sink)(exec_run *x, size_t step, sh_err *err);

    /* The final half: the source of the stage that step 's' starts, over
     * x->t->inputs; pushes every row with exec_push. 0, EXEC_STOP or an
     * error worded with the run's context. */
    int (*final_source)(exec_run *x, const plan_step *s, sh_err *err);

    /* Remove what the final half wrote outside the task's prefixes after
     * a failure (the artifacts of train_naive_bayes); NULL: nothing. */
    void (*final_discard)(exec_run *x);
};

/* For op_def.reads: the output columns are the input's, all read where
 * needed after (filter, sort, limit). */
void op_reads_same(const plan_step *s, size_t n_in, const unsigned char *live,
                   unsigned char *before);

/* For op_def.reads: 'keys' (n) columns of the input. */
void op_reads_cols(const size_t *keys, size_t n, unsigned char *before);

/* The rows, each defined in its operator's file. */
extern const op_def op_filter, op_select, op_derive, op_tokenize, op_join,
    op_predict_nb;                                         /* steps.c */
extern const op_def op_groupby, op_aggregate, op_distinct; /* op_agg.c */
extern const op_def op_sort;                               /* op_sort.c */
extern const op_def op_limit;                              /* op_limit.c */
extern const op_def op_train_nb;                           /* op_nb.c */
extern const op_def op_output;                             /* op_output.c */
/* The partitioned join: a join step's row when steps.c chooses that
 * strategy (its op stays OP_JOIN; not in op_table). */
extern const op_def op_join_part; /* op_join.c */

#endif
