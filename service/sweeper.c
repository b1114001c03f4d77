/*
 * sweeper.c - a node's housekeeping (see sweeper.h).
 *
 * While the database is unreachable the sweeper backs off (doubling from
 * SWEEP_BACKOFF_MIN_MS to SWEEP_BACKOFF_MAX_MS) instead of trying, and
 * logging, four times a second; it says once when the database is lost
 * and once when it answers again.
 */
#include "sweeper.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "log.h"
#include "spool.h"
#include "store.h"

#define LEASES_EVERY_MS      1000 /* expired leases back to the queue */
#define RETIRE_BATCH         100
#define NODES_RETIRE_BATCH   100
#define SWEEP_BACKOFF_MIN_MS 500
#define SWEEP_BACKOFF_MAX_MS 4000

struct sweeper {
    const config *cfg;
    supervisor   *sup;
    node         *node;       /* this node, or NULL (borrowed) */
    int64_t       beat_ms;    /* when the node's heartbeat was renewed */
    int64_t       leases_ms;  /* when leases were last reaped */
    int64_t       retire_ms;  /* when jobs were last retired */
    int64_t       resume_ms;  /* database lost: no pass before this */
    int           backoff_ms; /* the wait after the next failure; 0 while
                                 the database answers */
};

sweeper *
sweeper_new(const config *cfg, supervisor *sup)
{
    sweeper *s = xcalloc(1, sizeof *s);

    s->cfg = cfg;
    s->sup = sup;
    return s;
}

void
sweeper_set_node(sweeper *s, node *n)
{
    s->node = n;
}

/*
 * Note the outcome 'rc' of a database call made by the pass: SH_EDB
 * starts (or lengthens) the back-off. Returns non-zero when the pass must
 * stop here.
 */
static int
sweep_failed(sweeper *s, int rc, const char *what, const sh_err *err)
{
    if (rc != SH_EDB)
        return 0;
    if (s->backoff_ms == 0) {
        log_warn("%s: %s; housekeeping pauses until the database answers", what,
                 err->msg);
        s->backoff_ms = SWEEP_BACKOFF_MIN_MS;
    } else if (s->backoff_ms < SWEEP_BACKOFF_MAX_MS) {
        s->backoff_ms *= 2;
    }
    s->resume_ms = now_ms() + s->backoff_ms;
    return 1;
}

/* Stop this node's workers that still run an attempt of an ended job:
 * each is signalled with the attempt's lease and, if it still runs that
 * attempt, dies (the supervisor replaces it), so a cancel takes effect at
 * once rather than at the worker's next heartbeat; a worker since on to
 * another task ignores the signal. Returns 0 or SH_EDB. */
static int
kill_cancelled(sweeper *s, db *d, sh_err *err)
{
    char   **names;
    db_kill *kills;
    int      n_names = supervisor_worker_names(s->sup, &names);
    int n = db_tasks_to_kill(d, (const char *const *)names, n_names, &kills,
                             err);

    db_strings_free(names, n_names);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const char *colon = strrchr(kills[i].worker, ':');
        pid_t       pid = colon ? (pid_t)atol(colon + 1) : 0;

        if (pid > 0 && supervisor_cancel(s->sup, pid, kills[i].lease) == 0)
            log_info("signalled worker %ld to stop attempt %lld: its job "
                     "ended",
                     (long)pid, (long long)kills[i].lease);
    }
    db_kills_free(kills, n);
    return 0;
}

/* Remove the jobs past their retention and their files (in the spool
 * and, with SHEAF_STORE, in the store). Returns the number removed or
 * SH_EDB. */
static int
retire(sweeper *s, db *d, sh_err *err)
{
    char **ids;
    int    n = db_jobs_retire(d, RETIRE_BATCH, &ids, err);

    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        if (spool_remove_job(s->cfg->spool, ids[i]) < 0)
            log_warn("removing files of job %s failed", ids[i]);
        /* SHEAF_STORE: its result and artifacts objects too. */
        if (store_drop_published(ids[i], err) != 0)
            log_warn("job %s: its objects stay in the store: %s", ids[i],
                     err->msg);
    }
    if (n > 0)
        log_info("removed %d job(s) past their retention", n);
    db_strings_free(ids, n);
    return n;
}

void
sweeper_run(sweeper *s, db *d)
{
    int64_t now = now_ms();
    sh_err  err;
    int     n;

    if (s->backoff_ms > 0 && now < s->resume_ms)
        return;
    sh_err_clear(&err);
    if (s->node != NULL && now - s->beat_ms >= node_heartbeat_ms(s->node)) {
        if ((n = node_heartbeat(s->node, d, &err)) < 0) {
            if (sweep_failed(s, n, "node heartbeat", &err))
                return;
            log_warn("node heartbeat: %s", err.msg);
        } else {
            s->beat_ms = now;
        }
    }
    if ((n = db_jobs_expire(d, &err)) < 0) {
        if (sweep_failed(s, n, "timing out jobs", &err))
            return;
        log_warn("timing out jobs: %s", err.msg);
    } else if (n > 0) {
        log_info("%d job(s) timed out", n);
    }
    if (s->backoff_ms > 0) {
        log_info("the database answers again; housekeeping resumes");
        s->backoff_ms = 0;
    }
    if ((n = kill_cancelled(s, d, &err)) < 0) {
        if (sweep_failed(s, n, "finding cancelled attempts", &err))
            return;
        log_warn("finding cancelled attempts: %s", err.msg);
    }
    if (now - s->leases_ms >= LEASES_EVERY_MS) {
        s->leases_ms = now;
        if ((n = db_tasks_reap(d, NULL, &err)) < 0) {
            if (sweep_failed(s, n, "reaping expired leases", &err))
                return;
            log_warn("reaping expired leases: %s", err.msg);
        } else if (n > 0) {
            log_info("requeued %d task(s) whose lease expired", n);
        }
    }
    if (now - s->retire_ms >= (int64_t)s->cfg->sweep_s * 1000) {
        s->retire_ms = now;
        if ((n = retire(s, d, &err)) < 0
            && !sweep_failed(s, n, "retiring jobs", &err))
            log_warn("retiring jobs: %s", err.msg);
        if (s->backoff_ms > 0)
            return;
        n = db_nodes_retire(d, s->cfg->node_retention_s, NODES_RETIRE_BATCH,
                            &err);
        if (n < 0) {
            if (!sweep_failed(s, n, "removing lost nodes", &err))
                log_warn("removing lost nodes: %s", err.msg);
        } else if (n > 0) {
            log_info("removed %d node(s) lost for more than %d s", n,
                     s->cfg->node_retention_s);
        }
    }
}

void
sweeper_free(sweeper *s)
{
    free(s);
}
