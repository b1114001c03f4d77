/*
 * sweeper.c - a node's housekeeping (see sweeper.h).
 */
#include "sweeper.h"

#include <stdlib.h>
#include <string.h>

#include "../executor/util.h"
#include "log.h"
#include "spool.h"

#define LEASES_EVERY_MS  1000  /* expired leases back to the queue */
#define RETIRE_EVERY_MS  60000 /* jobs past their retention */
#define RETIRE_BATCH     100

struct sweeper {
    const config *cfg;
    supervisor   *sup;
    int64_t       leases_ms;  /* when leases were last reaped */
    int64_t       retire_ms;  /* when jobs were last retired */
};

sweeper *
sweeper_new(const config *cfg, supervisor *sup)
{
    sweeper *s = xcalloc(1, sizeof *s);

    s->cfg = cfg;
    s->sup = sup;
    return s;
}

/* Stop this node's workers that still run an attempt of an ended job:
 * the process is killed (the supervisor replaces it), so a cancel takes
 * effect at once rather than at the worker's next heartbeat. */
static void
kill_cancelled(sweeper *s, db *d)
{
    char **workers;
    sh_err err;
    int    n = db_tasks_to_kill(d, supervisor_host(s->sup), &workers, &err);

    if (n < 0) {
        log_warn("finding cancelled attempts: %s", err.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *colon = strrchr(workers[i], ':');
        pid_t       pid = colon ? (pid_t)atol(colon + 1) : 0;

        if (pid > 0 && supervisor_kill(s->sup, pid) == 0)
            log_info("stopped worker %ld: its job ended", (long)pid);
    }
    db_strings_free(workers, n);
}

void
sweeper_run(sweeper *s, db *d)
{
    int64_t now = now_ms();
    sh_err  err;
    int     n;

    if ((n = db_jobs_expire(d, &err)) < 0)
        log_warn("timing out jobs: %s", err.msg);
    else if (n > 0)
        log_info("%d job(s) timed out", n);
    kill_cancelled(s, d);
    if (now - s->leases_ms >= LEASES_EVERY_MS) {
        s->leases_ms = now;
        if ((n = db_tasks_reap(d, NULL, &err)) < 0)
            log_warn("reaping expired leases: %s", err.msg);
        else if (n > 0)
            log_info("requeued %d task(s) whose lease expired", n);
    }
    if (now - s->retire_ms >= RETIRE_EVERY_MS) {
        char **ids;

        s->retire_ms = now;
        n = db_jobs_retire(d, RETIRE_BATCH, &ids, &err);
        if (n < 0)
            log_warn("retiring jobs: %s", err.msg);
        for (int i = 0; i < n; i++) {
            if (spool_remove_job(s->cfg->spool, ids[i]) < 0)
                log_warn("removing files of job %s failed", ids[i]);
        }
        if (n > 0)
            log_info("removed %d job(s) past their retention", n);
        db_strings_free(ids, n > 0 ? n : 0);
    }
}

void
sweeper_free(sweeper *s)
{
    free(s);
}
