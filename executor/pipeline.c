/*
 * pipeline.c - the old entry point for one partition of a map-only plan,
 * kept only while tests/unit/test_plan.c still calls it: it runs stage 0's
 * task 'part' through exec_run_task (exec.h), the one engine. Remove it
 * with pipeline.h once nothing includes pipeline.h.
 */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "util.h"

/* Carries the caller's tick function through exec's. */
typedef struct shim {
    pipeline_tick_fn tick;
    void            *ctx;
} shim;

static void
copy_stats(pipeline_stats *dst, const exec_stats *src)
{
    dst->rows_in = src->rows_in;
    dst->bytes_in = src->bytes_in;
    dst->rows_out = src->rows_out;
    dst->bytes_out = src->bytes_out;
    dst->rows_skipped = src->rows_skipped;
}

static int
shim_tick(void *ctx, const exec_stats *st)
{
    shim          *s = ctx;
    pipeline_stats ps;

    copy_stats(&ps, st);
    return s->tick(s->ctx, &ps);
}

int
pipeline_run_part(const plan *p, size_t part, const char *out_path,
                  pipeline_tick_fn tick, void *ctx, pipeline_stats *st,
                  sh_err *err)
{
    exec_task  t;
    exec_stats es;
    shim       sh = {tick, ctx};
    char      *scratch = xasprintf("%s.scratch", out_path);
    int        rc;

    memset(&t, 0, sizeof t);
    t.stage = 0;
    t.index = part;
    t.out = out_path;
    t.scratch = scratch;
    t.mem_bytes = 256u << 20;
    rc = exec_run_task(p, &t, tick ? shim_tick : NULL, &sh, &es, err);
    if (st != NULL)
        copy_stats(st, &es);
    free(scratch);
    return rc;
}
