/*
 * test_job.c - a whole job run stage by stage in one process, for the
 * engine's unit suites (see test_job.h).
 */
#include "test_job.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../executor/plan.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"

/* The output paths of the 'n' tasks of stage 's' (a vector of 'n'
 * malloc'ed strings; the caller frees them with free_paths). */
static char **
task_outs(const th_job_dirs *d, size_t s, int last, size_t n)
{
    char **out = xcalloc(n ? n : 1, sizeof *out);

    for (size_t i = 0; i < n; i++)
        out[i] = xasprintf("%s/%s%zut%zu", d->work, last ? "out" : "s", s, i);
    return out;
}

static void
free_paths(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

void
th_run_job(const th_job_dirs *d, const char *spec_text, uint64_t mem_bytes,
           exec_tick_fn tick, void *tick_ctx, th_job_run *r)
{
    plan_env env = {
        d->root, th_model_resolve, d->work, mem_bytes, 0, NULL, NULL, NULL};
    json_error_t jerr;
    json_t      *spec = json_loads(spec_text, 0, &jerr);
    plan        *p = NULL;
    char       **prev = NULL, **cur;
    size_t       n_prev = 0;
    char        *art = xasprintf("%s/artifacts", d->work);
    strbuf       out = {0};

    memset(r, 0, sizeof *r);
    if (spec == NULL) {
        fprintf(stderr, "bad test spec: %s\n%s\n", jerr.text, spec_text);
        abort();
    }
    mkdir(art, 0755);
    r->rc = plan_build(spec, &env, &p, &r->err);
    json_decref(spec);
    if (r->rc == 0)
        r->n_stages = p->n_stages;
    for (size_t s = 0; r->rc == 0 && s < p->n_stages; s++) {
        size_t n = p->stages[s].n_tasks;
        int    last = s + 1 == p->n_stages;

        if (s < 8)
            r->tasks[s] = n;
        cur = task_outs(d, s, last, n);
        for (size_t i = 0; i < n && r->rc == 0; i++) {
            exec_task t;
            char     *scratch = xasprintf("%s/s%zut%zu", d->scratch, s, i);

            memset(&t, 0, sizeof t);
            t.stage = s;
            t.index = i;
            t.inputs = (const char *const *)prev;
            t.n_inputs = n_prev;
            t.out = cur[i];
            t.scratch = scratch;
            t.artifacts = art;
            t.mem_bytes = mem_bytes;
            r->rc = exec_run_task(p, &t, tick, tick_ctx, &r->last, &r->err);
            free(scratch);
            if (s == 0)
                r->rows_out0 += r->last.rows_out;
            r->spill += r->last.spill_bytes;
            if (r->last.peak_bytes > r->peak)
                r->peak = r->last.peak_bytes;
            if (r->rc == 0 && last) {
                size_t len = 0;
                char  *text = fsys_read_file(cur[i], &len);

                CHECK(text != NULL, "output %s is missing", cur[i]);
                if (text)
                    sb_append(&out, text, len);
                free(text);
            }
        }
        free_paths(prev, n_prev);
        prev = cur;
        n_prev = n;
    }
    free_paths(prev, n_prev);
    free(art);
    plan_free(p);
    if (out.data == NULL)
        sb_puts(&out, "");
    r->out = out.data;
    r->out_len = out.len;
}
