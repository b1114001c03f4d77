/*
 * pipeline.h - DEPRECATED: running one partition of a map-only plan (now a
 * shim over exec_run_task, stage 0, in pipeline.c). Use exec.h; this goes
 * away once tests/unit/test_plan.c no longer calls it.
 *
 * Memory does not grow with the partition's size: rows are processed one
 * at a time with per-row temporaries in an arena that is reset per row.
 */
#ifndef SHEAF_PIPELINE_H
#define SHEAF_PIPELINE_H

#include <stdint.h>

#include "err.h"
#include "plan.h"

typedef struct pipeline_stats {
    uint64_t rows_in;      /* records read */
    uint64_t bytes_in;     /* input bytes consumed */
    uint64_t rows_out;     /* rows written */
    uint64_t bytes_out;    /* bytes written (after compression) */
    uint64_t rows_skipped; /* bad records skipped (on_error: skip) */
} pipeline_stats;

/*
 * Called every so often (about every 64k rows or 100 ms) with the stats so
 * far. Returning non-zero cancels the run (pipeline_run_part then returns
 * SH_ECANCELED).
 */
typedef int (*pipeline_tick_fn)(void *ctx, const pipeline_stats *st);

/*
 * Run partition 'part' of 'p' and write its rows to 'out_path': written to
 * "<out_path>.tmp", fsync'ed, then renamed, so a reader never sees half a
 * file. Partition 0 of a CSV output carries the header row. 'tick' may be
 * NULL. Returns 0 with *st filled, or an error whose message names the
 * partition, its byte range, the step, the line, the column and the value
 * ("partition 3 (bytes 201326592-268435456), input: cannot parse 'abc' as
 * int in column year, line 1849203"). On error no output file remains.
 */
int pipeline_run_part(const plan *p, size_t part, const char *out_path,
                      pipeline_tick_fn tick, void *ctx, pipeline_stats *st,
                      sh_err *err);

#endif
