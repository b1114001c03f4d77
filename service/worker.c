/*
 * worker.c - the worker process's loop (see worker.h).
 *
 * A worker claims one partition task at a time under a lease, streams the
 * partition through the executor into an output file named for this
 * attempt's lease (so a worker presumed dead can never overwrite a
 * committed output), renews the lease from the executor's tick callback,
 * and records the outcome with writes fenced by the lease.
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../executor/pipeline.h"
#include "../executor/plan.h"
#include "../executor/util.h"
#include "db.h"
#include "log.h"

static volatile sig_atomic_t worker_stop;

static void
on_stop(int sig)
{
    (void)sig;
    worker_stop = 1;
}

/* State of the task in hand, seen by the executor's tick callback. */
typedef struct worker_run {
    db            *db;
    const db_task *task;
    const config  *cfg;
    int64_t        last_beat_ms; /* when the lease was last renewed */
    int            lost;         /* the lease was lost or the job ended */
} worker_run;

/* Renew the lease every third of its length; stop when it is lost. */
static int
worker_tick(void *ctx, const pipeline_stats *st)
{
    worker_run *run = ctx;
    int64_t     now = now_ms();
    sh_err      err;

    if (now - run->last_beat_ms < (int64_t)run->cfg->lease_s * 1000 / 3)
        return 0;
    run->last_beat_ms = now;
    switch (db_task_heartbeat(run->db, run->task, run->cfg->lease_s, st,
                              &err)) {
    case 0:
        return 0;
    case SH_ESTATE:
        run->lost = 1;
        return 1;
    default:
        /* The database is away: keep working; the finish will tell. */
        log_warn("heartbeat of job %s part %d: %s", run->task->job_id,
                 run->task->part, err.msg);
        return 0;
    }
}

/* mkdir -p for the spool directory of a job. */
static int
make_dirs(const char *path)
{
    char *p = xstrdup(path);
    int   rc = 0;

    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                rc = -1;
            *s = '/';
        }
    }
    if (rc == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
        rc = -1;
    free(p);
    return rc;
}

/* The plan of the job last run, kept while tasks of that job follow. */
typedef struct plan_cache {
    char  job_id[37];
    plan *plan;
} plan_cache;

/* Run claimed task 't' and record its outcome. */
static void
worker_run_task(const config *cfg, db *d, const db_task *t, json_t *spec,
                json_t *resolution, plan_cache *cache)
{
    worker_run     run = {d, t, cfg, now_ms(), 0};
    pipeline_stats st = {0};
    sh_err         err;
    char          *dir = NULL, *out = NULL;
    int            rc;

    sh_err_clear(&err);
    if (cache->plan == NULL || strcmp(cache->job_id, t->job_id) != 0) {
        plan_free(cache->plan);
        cache->plan = NULL;
        plan_env env = {cfg->data_root, cfg->spool,
                        (uint64_t)cfg->memory_mb << 20};

        if ((rc = plan_load(spec, resolution, &env, &cache->plan,
                            &err)) < 0) {
            db_task_fail(d, t, 0, err.msg, &err);
            return;
        }
        snprintf(cache->job_id, sizeof cache->job_id, "%s", t->job_id);
    }
    const plan *p = cache->plan;

    dir = xasprintf("%s/jobs/%s", cfg->spool, t->job_id);
    out = xasprintf("%s/s%d-p%05d-l%" PRId64 ".%s%s", dir, t->stage, t->part,
                    t->lease, p->out_format == FMT_JSONL ? "jsonl" : "csv",
                    p->out_gzip ? ".gz" : "");
    if (make_dirs(dir) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "partition %d: cannot create spool "
                 "directory %s: %s", t->part, dir, strerror(errno));
        db_task_fail(d, t, 1, msg, &err);
        goto done;
    }
    rc = pipeline_run_part(p, (size_t)t->part, out, worker_tick, &run, &st,
                           &err);
    if (rc == 0) {
        int job_done = 0;

        rc = db_task_finish(d, t, out, &st, &job_done, &err);
        if (rc < 0) {
            /* Not committed: the output must not stay behind. */
            unlink(out);
            log_warn("job %s part %d: %s", t->job_id, t->part, err.msg);
        }
    } else if (rc == SH_ECANCELED || run.lost) {
        log_info("job %s part %d stopped: lease lost or job ended",
                 t->job_id, t->part);
    } else {
        /* Bad data and bad values fail the same way every time; only I/O
         * trouble is worth another attempt. */
        char msg[SH_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err.msg);
        log_warn("job %s part %d attempt %d failed: %s", t->job_id, t->part,
                 t->attempt, msg);
        if (db_task_fail(d, t, rc == SH_EIO, msg, &err) < 0)
            log_warn("recording the failure: %s", err.msg);
    }
done:
    free(out);
    free(dir);
}

int
worker_main(const config *cfg)
{
    char       host[128], name[160];
    db        *d = NULL;
    plan_cache cache = {{0}, NULL};
    sh_err     err;
    int        backoff_ms = 100;

    log_set_role("worker");
    /* A worker must not outlive its supervisor (kill -9 of sheafd): the
     * kernel kills it too, and its lease expires for others to take. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 0;
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
    srandom((unsigned)(time(NULL) ^ getpid()));

    while (!worker_stop) {
        db_task t;
        json_t *spec = NULL, *resolution = NULL;
        int     rc;

        if (d == NULL) {
            d = db_open(cfg->database_url, &err);
            if (d == NULL || db_listen_tasks(d, &err) < 0) {
                log_warn("%s; retrying in %d ms", err.msg, backoff_ms);
                db_close(d);
                d = NULL;
                usleep((useconds_t)backoff_ms * 1000);
                backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
                continue;
            }
            backoff_ms = 100;
        }
        memset(&t, 0, sizeof t);
        rc = db_task_claim(d, name, cfg->lease_s, &t, &spec, &resolution,
                           &err);
        if (rc < 0) {
            log_warn("claim: %s", err.msg);
            db_close(d);
            d = NULL;
            continue;
        }
        if (rc == 0) {
            db_wait_notify(d, 500);
            continue;
        }
        worker_run_task(cfg, d, &t, spec, resolution, &cache);
        db_task_clear(&t);
        json_decref(spec);
        json_decref(resolution);
    }
    plan_free(cache.plan);
    db_close(d);
    return 0;
}
