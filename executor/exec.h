/*
 * exec.h - running one task of a plan: a stage's source, its map steps and
 * its sink (see plan_stage in plan.h).
 *
 * Sources: stage 0 reads one input partition (input.h); a later stage runs
 * the final half of the combine step that ended the stage before over that
 * stage's outputs. Sinks: the output writer (last stage: CSV or JSONL,
 * gzip, header in task 0), or the partial half of the combine step that
 * ends the stage. Each operator's halves are in its own file; op.h lists
 * them and says what each writes and reads (a groupby's partial
 * aggregates, for one, are one sectioned row file per task with a
 * section per task of the next stage: rowfile.h rowfile_sections_*).
 *
 * Files: a task of a stage that is not the last writes files whose names
 * begin with its 'out' prefix ("<out>.b", "<out>.r0", ...); the next stage
 * gets those prefixes as its 'inputs'. Every file is written under a
 * temporary name, fsync'ed and renamed, and all of them are complete when
 * exec_run_task returns 0. On error, nothing the task wrote remains.
 *
 * Memory: 'mem_bytes' is for the whole worker process. No hot path
 * allocates per row. A reserve (exec_reserve_bytes) is kept for the
 * process, the readers, the writers and the buffers no operator counts;
 * the join sides and models take what they need (the planner refuses a
 * side over the budget); the operators that hold rows (the hash tables,
 * the sorter) share the rest and spill past their share. peak_bytes in
 * the stats is what the operators held at most.
 */
#ifndef SHEAF_EXEC_H
#define SHEAF_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "plan.h"

typedef struct exec_stats {
    uint64_t rows_in;      /* stage 0: records read; later: rows read */
    uint64_t bytes_in;     /* input bytes consumed */
    uint64_t rows_out;     /* rows the task emitted (written or sunk) */
    uint64_t bytes_out;    /* bytes written (after compression) */
    uint64_t rows_skipped; /* bad records skipped (on_error: skip) */
    uint64_t spill_bytes;  /* bytes written to spill files */
    uint64_t peak_bytes;   /* most memory its operators held */
} exec_stats;

/*
 * Called every so often (about every 64k rows or 100 ms) with the stats so
 * far. Returning non-zero cancels the run (exec_run_task then returns
 * SH_ECANCELED).
 */
typedef int (*exec_tick_fn)(void *ctx, const exec_stats *st);

typedef struct exec_task {
    size_t             stage;  /* index into plan.stages */
    size_t             index;  /* task of the stage (stage 0: partition) */
    const char *const *inputs; /* stage > 0: the 'out' of every task of the
                                  stage before, in task order */
    size_t      n_inputs;
    const char *out;       /* last stage: the output file; else the
                              prefix of the files the task writes */
    const char *scratch;   /* prefix for spill files, removed before
                              the task returns */
    const char *artifacts; /* directory for the artifacts of
                              train_naive_bayes ("report", "model"),
                              written under a temporary name and
                              renamed */
    uint64_t mem_bytes;    /* SHEAF_MEMORY_MB */
} exec_task;

/*
 * Run task 't' of 'p'. Returns 0 with *st filled, or an error whose
 * message says where: for input "partition 3 (file a.csv, bytes
 * 201326592-268435456), input: cannot parse 'abc' as int in column year,
 * line 1849203"; for a step "partition 3 (...), step 2 (derive): ...";
 * for a later stage "stage 1 task 4, step 3 (groupby): ...".
 */
int exec_run_task(const plan *p, const exec_task *t, exec_tick_fn tick,
                  void *ctx, exec_stats *st, sh_err *err);

/* The reserve of a task's budget 'mem_bytes' that no operator may use: an
 * eighth, at least EXEC_RESERVE_MIN, at most half. */
uint64_t exec_reserve_bytes(uint64_t mem_bytes);

#define EXEC_RESERVE_MIN ((uint64_t)16 << 20)

#endif
