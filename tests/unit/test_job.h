/*
 * test_job.h - a whole job run in one process for the unit suites that
 * test the engine (test_exec.c, test_faults.c): the spec built into a plan
 * with plan_build, then every task of every stage run in order with
 * exec_run_task, as the service's workers would run them one after the
 * other. Stage s task i writes "<work>/s<s>t<i>" ("<work>/out<s>t<i>" for
 * the last stage) and reads the outputs of every task of stage s - 1; its
 * scratch prefix is "<scratch>/s<s>t<i>"; artifacts go to
 * "<work>/artifacts".
 */
#ifndef SHEAF_TEST_JOB_H
#define SHEAF_TEST_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "../../executor/exec.h"
#include "../../lib/err.h"

/* The directories of a job run (borrowed strings). */
typedef struct th_job_dirs {
    const char *root;    /* the data root the spec's paths are under */
    const char *work;    /* task outputs and artifacts/; also the spool
                            th_model_resolve finds models in */
    const char *scratch; /* the tasks' scratch files */
} th_job_dirs;

/* What a job run did. */
typedef struct th_job_run {
    int    rc;            /* 0, or the first failing task's SH_E* code */
    sh_err err;           /* that task's (or plan_build's) error */
    char  *out;           /* the last stage's outputs concatenated, in task
                             order (malloc'ed, "" when none) */
    size_t     out_len;   /* bytes of 'out' */
    size_t     n_stages;  /* stages of the plan */
    exec_stats last;      /* stats of the last task run */
    uint64_t   rows_out0; /* rows_out summed over stage 0 */
    uint64_t   spill;     /* spill_bytes summed over every task */
    uint64_t   peak;      /* peak_bytes, the largest of any task */
    size_t     tasks[8];  /* tasks of each of the first 8 stages */
} th_job_run;

/*
 * Build 'spec_text' (JSON; a spec that does not parse aborts the run with
 * a message, as a test's own text) and run every task of every stage with
 * 'mem_bytes', passing 'tick' and 'tick_ctx' (may be NULL) to each task.
 * Stops at the first failing task. Fills *r; the caller frees r->out. A
 * successful task of the last stage whose output is missing fails a CHECK.
 */
void th_run_job(const th_job_dirs *d, const char *spec_text, uint64_t mem_bytes,
                exec_tick_fn tick, void *tick_ctx, th_job_run *r);

#endif
