/*
 * worker.c - the worker process's loop (see worker.h).
 *
 * A worker claims one task at a time under a lease (a partition of stage
 * 0, or a task of a later stage that reads the outputs of the stage
 * before), runs it through the executor into outputs named for this
 * attempt's lease (so a worker presumed dead can never overwrite a
 * committed output), renews the lease from the executor's tick callback,
 * and records the outcome with writes fenced by the lease. Outputs of an
 * attempt that lost its lease are removed at once.
 *
 * A worker whose attempt was cancelled (its job ended: cancelled, failed
 * by another task, timed out) exits once it has stopped, and its
 * supervisor starts another. The node's sweeper stops such an attempt at
 * once with WORKER_CANCEL_SIGNAL carrying the attempt's lease tag (see
 * worker.h): the worker exits only if it still runs that very attempt, so
 * a worker that has meanwhile gone on to another task is never stopped
 * for the one before.
 *
 * Between tasks, a worker also removes the intermediate files of ended
 * jobs (worker_clean_ended): right after it finished a job's last task,
 * and every CLEAN_EVERY_MS otherwise, which covers failed, cancelled and
 * timed-out jobs whichever process or node saw them end.
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../executor/exec.h"
#include "../executor/plan.h"
#include "../lib/fsys.h"
#include "../lib/util.h"
#include "db.h"
#include "log.h"
#include "model.h"
#include "sandbox.h"
#include "spool.h"
#include "store.h"

#define WORKER_CLEAN_BATCH 32 /* jobs cleaned by one pass, at most */

#define CLEAN_EVERY_MS  2000 /* a pass over ended jobs' files, at most */
#define TRIM_FREE_BYTES ((size_t)16 << 20) /* free heap worth a trim */

static volatile sig_atomic_t worker_stop;
/* worker_lease_tag of the attempt running now; 0 between attempts. */
static volatile sig_atomic_t worker_running_tag;
/* The tag of the last cancel that came between attempts: one that lands
 * after a claim commits and before its tag is set names the attempt about
 * to start. */
static volatile sig_atomic_t worker_pending_tag;

static void
on_stop(int sig)
{
    (void)sig;
    worker_stop = 1;
}

int
worker_lease_tag(int64_t lease)
{
    int32_t tag = (int32_t)(uint32_t)((uint64_t)lease & 0xffffffffu);

    return tag != 0 ? tag : 1;
}

/* WORKER_CANCEL_SIGNAL: die at once if it names the attempt in hand (its
 * task was cancelled; the supervisor reaps this process and replaces it);
 * between attempts, keep it for the attempt about to start (worker_begin);
 * otherwise ignore it (a late signal for an attempt already left). */
static void
on_cancel(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)uctx;
    if (si->si_code != SI_QUEUE)
        return;
    if (worker_running_tag == 0)
        worker_pending_tag = si->si_value.sival_int;
    else if (si->si_value.sival_int == worker_running_tag)
        raise(SIGKILL);
}

/* Mark the attempt with 'lease' as the one in hand; die as on_cancel does
 * if its cancel came before this. */
static void
worker_begin(int64_t lease)
{
    worker_running_tag = worker_lease_tag(lease);
    if (worker_pending_tag == worker_running_tag)
        raise(SIGKILL);
    worker_pending_tag = 0;
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
worker_tick(void *ctx, const exec_stats *st)
{
    worker_run *run = ctx;
    int64_t     now = now_ms();
    sh_err      err;

    if (now - run->last_beat_ms < (int64_t)run->cfg->lease_s * 1000 / 3)
        return 0;
    run->last_beat_ms = now;
    switch (
        db_task_heartbeat(run->db, run->task, run->cfg->lease_s, st, &err)) {
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

/* worker_tick while a task fetches its inputs from the store. */
static int
worker_fetch_tick(void *ctx)
{
    exec_stats st = {0};

    return worker_tick(ctx, &st);
}

/* The plan of the job last run, kept while tasks of that job follow. */
typedef struct plan_cache {
    char  job_id[37];
    plan *plan;
} plan_cache;

/* The words for task 't' in a log line or an error: "partition 3" in
 * stage 0, "stage 1 task 4" later. */
static void
task_name(const db_task *t, char *buf, size_t size)
{
    if (t->stage == 0)
        snprintf(buf, size, "partition %d", t->part);
    else
        snprintf(buf, size, "stage %d task %d", t->stage, t->part);
}

/*
 * The exec_task of claimed task 't' of plan 'p', its paths under 'spool'
 * (allocated into *out and *scratch, which the caller frees; the
 * artifacts directory is 'artifacts'). Returns 0, or -1 with 'msg' set
 * when the plan and the database disagree on the task.
 */
static int
task_make(const plan *p, const db_task *t, const char *spool,
          const char *artifacts, uint64_t mem_bytes, exec_task *et, char **out,
          char **scratch, char *msg, size_t msg_size)
{
    size_t stage = (size_t)t->stage;
    char   ext[16];

    *out = *scratch = NULL;
    if (t->stage < 0 || stage >= p->n_stages || t->part < 0
        || (size_t)t->part >= p->stages[stage].n_tasks) {
        snprintf(msg, msg_size,
                 "stage %d task %d: the job's plan has "
                 "%zu stage(s) and no such task",
                 t->stage, t->part, p->n_stages);
        return -1;
    }
    if (stage > 0 && t->n_inputs != p->stages[stage - 1].n_tasks) {
        snprintf(msg, msg_size,
                 "stage %d task %d: %zu committed output(s) "
                 "of stage %d, expected %zu",
                 t->stage, t->part, t->n_inputs, t->stage - 1,
                 p->stages[stage - 1].n_tasks);
        return -1;
    }
    /* The last stage writes the result part itself; a stage before it
     * writes files named "<prefix>.<suffix>", and the prefix is what the
     * database records and the next stage reads. */
    snprintf(ext, sizeof ext, "%s%s",
             p->out_format == FMT_JSONL ? "jsonl" : "csv",
             p->out_gzip ? ".gz" : "");
    *out = spool_task_output(spool, t->job_id, t->stage, t->part, t->lease,
                             stage + 1 == p->n_stages ? ext : NULL);
    *scratch = spool_task_scratch(spool, t->job_id, t->stage, t->part,
                                  t->lease);
    memset(et, 0, sizeof *et);
    et->stage = stage;
    et->index = (size_t)t->part;
    et->inputs = (const char *const *)t->inputs;
    et->n_inputs = t->n_inputs;
    et->out = *out;
    et->scratch = *scratch;
    et->artifacts = artifacts;
    et->mem_bytes = mem_bytes;
    return 0;
}

/*
 * One pass over the ended jobs whose files have not been cleaned yet
 * (db_jobs_to_clean): clean each (spool_clean_job: a succeeded job keeps
 * its result parts, any job its artifacts; a job that did not succeed
 * also loses its shuffle files in the store) and record it cleaned. Safe
 * to run from several processes and nodes at once. Returns the number of
 * jobs cleaned, or SH_EDB with 'err' set.
 */
static int
worker_clean_ended(db *d, const config *cfg, sh_err *err)
{
    db_clean *jobs;
    int       n, done = 0;

    n = db_jobs_to_clean(d, WORKER_CLEAN_BATCH, &jobs, err);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        db_clean *c = &jobs[i];

        /* What could not be removed (logged) is not tried again, lest a
         * stuck directory come back every pass: the job's retention
         * removes the whole directory in the end. */
        spool_clean_job(cfg->spool, c->id, (const char *const *)c->keep,
                        c->n_keep);
        /* SHEAF_STORE: a job that did not succeed leaves its shuffle
         * files in the store (a succeeded one's go once its result is
         * published, store.h). */
        if (!c->succeeded && store_drop_job(c->id, err) != 0)
            log_warn("job %s: its shuffle files stay in the store: %s", c->id,
                     err->msg);
        if (db_job_cleaned(d, c->id, err) < 0) {
            db_clean_free(jobs, n);
            return SH_EDB;
        }
        done++;
    }
    db_clean_free(jobs, n);
    return done;
}

/* Remove the ended jobs' intermediate files (see the file's comment).
 * Returns 0, or SH_EDB when the database failed (logged). */
static int
worker_clean(const config *cfg, db *d)
{
    sh_err err;
    int    n = worker_clean_ended(d, cfg, &err);

    if (n < 0) {
        log_warn("cleaning ended jobs' files: %s", err.msg);
        return n;
    }
    if (n > 0)
        log_info("removed the intermediate files of %d ended job(s)", n);
    return 0;
}

/*
 * This attempt of 't' has stopped without being recorded (its lease was
 * lost or its job ended). When its task was cancelled, the sweeper is
 * about to kill this worker for it: the worker stops taking tasks and
 * exits instead (see the file's comment).
 */
static void
worker_stopped(db *d, const db_task *t)
{
    sh_err err;

    if (db_task_cancelled(d, t, &err) == 1) {
        log_info("job %s ended while this worker ran it; the worker exits "
                 "and is replaced",
                 t->job_id);
        worker_stop = 1;
    }
}

/* Record that this attempt of 't' failed with 'msg' (see db_task_fail). */
static void
worker_fail(db *d, const db_task *t, int retryable, const char *msg)
{
    sh_err err;
    int    rc = db_task_fail(d, t, retryable, msg, &err);

    if (rc == SH_ESTATE) {
        log_info("job %s: %s", t->job_id, err.msg);
        worker_stopped(d, t);
    } else if (rc < 0) {
        log_warn("recording the failure: %s", err.msg);
    }
}

/*
 * SHEAF_STORE: publish the result of job 'job_id', whose last stage is
 * 'stage': its committed parts, fetched from the store where another node
 * wrote them, uploaded as one object, and its artifacts; then the job's
 * shuffle files leave the store. Returns 0 (also when the store is off) or an
 * error.
 */
static int
worker_publish(const config *cfg, db *d, const char *job_id, int stage,
               sh_err *err)
{
    char   **parts = NULL, **local = NULL;
    uint64_t fetched = 0;
    int      n = 0, rc;

    if (!store_get(NULL, NULL, NULL))
        return 0;
    if ((rc = db_task_outputs(d, job_id, stage, &parts, &n, err)) != 0)
        return rc;
    rc = store_fetch_outputs(cfg->spool, job_id, (const char *const *)parts,
                             (size_t)n, &local, &fetched, NULL, NULL, err);
    if (fetched > 0)
        log_info("job %s result: fetched %" PRIu64 " bytes of parts from "
                 "the store",
                 job_id, fetched);
    if (rc == 0)
        rc = store_publish_result(job_id, (const char *const *)local, (size_t)n,
                                  err);
    if (rc == 0)
        rc = store_publish_artifacts(cfg->spool, job_id, err);
    if (rc == 0 && store_drop_job(job_id, err) != 0)
        log_warn("job %s: its shuffle files stay in the store: %s", job_id,
                 err->msg);
    store_paths_free(local, (size_t)n);
    db_strings_free(parts, n);
    return rc;
}

/* The attempt running now, for worker_oom; NULL between attempts. */
static worker_run *worker_in_hand;

/*
 * util_set_oom_handler's hook in a worker: an allocation failed, most
 * likely at the address-space limit (sandbox.h). The attempt in hand
 * fails with a message saying so (not retried: the same input would fail
 * the same way), and the worker exits; its supervisor starts another.
 */
static void
worker_oom(size_t size_bytes)
{
    worker_run *run = worker_in_hand;
    char        msg[256];

    if (run != NULL) {
        snprintf(msg, sizeof msg,
                 "out of memory: an allocation of %zu "
                 "bytes failed; a worker may map %llu MiB (SHEAF_MEMORY_MB "
                 "%d plus a margin)",
                 size_bytes,
                 (unsigned long long)(sandbox_as_limit(run->cfg) >> 20),
                 run->cfg->memory_mb);
        log_error("job %s part %d: %s", run->task->job_id, run->task->part,
                  msg);
        worker_fail(run->db, run->task, 0, msg);
    }
    _exit(70);
}

/* Run claimed task 't' and record its outcome. */
static void
worker_run_task(const config *cfg, db *d, const db_task *t, json_t *spec,
                json_t *resolution, plan_cache *cache)
{
    worker_run run = {d, t, cfg, now_ms(), 0};
    exec_stats st = {0};
    exec_task  et;
    sh_err     err;
    uint64_t   mem_bytes = (uint64_t)cfg->memory_mb << 20;
    char      *artifacts = NULL, *out = NULL, *scratch = NULL;
    char       name[64], msg[SH_ERR_MSG_MAX], sha[65];
    uint64_t   hashed, fetched = 0;
    char     **local_inputs = NULL;
    int        rc, job_done = 0;

    sh_err_clear(&err);
    task_name(t, name, sizeof name);
    if (cache->plan == NULL || strcmp(cache->job_id, t->job_id) != 0) {
        plan_free(cache->plan);
        cache->plan = NULL;
        char    *datasets = spool_datasets_dir(cfg->spool);
        plan_env env = {cfg->data_root,
                        model_resolve,
                        cfg->spool,
                        mem_bytes,
                        (uint64_t)cfg->max_partitions,
                        datasets,
                        NULL,
                        NULL};

        rc = plan_load(spec, resolution, &env, &cache->plan, &err);
        free(datasets);
        if (rc < 0) {
            cache->plan = NULL;
            snprintf(msg, sizeof msg, "%s", err.msg);
            worker_fail(d, t, 0, msg);
            return;
        }
        snprintf(cache->job_id, sizeof cache->job_id, "%s", t->job_id);
    }
    const plan *p = cache->plan;

    artifacts = spool_artifacts_dir(cfg->spool, t->job_id);
    if (task_make(p, t, cfg->spool, artifacts, mem_bytes, &et, &out, &scratch,
                  msg, sizeof msg)
        < 0) {
        log_error("job %s: %s", t->job_id, msg);
        worker_fail(d, t, 0, msg);
        goto done;
    }
    /* SHEAF_STORE: the outputs of the stage before that other nodes
     * wrote come from the store into this node's spool (store.h). */
    if (t->n_inputs > 0) {
        rc = store_fetch_outputs(cfg->spool, t->job_id,
                                 (const char *const *)t->inputs, t->n_inputs,
                                 &local_inputs, &fetched, worker_fetch_tick,
                                 &run, &err);
        if (rc == SH_ECANCELED || run.lost) {
            log_info("job %s %s stopped while fetching its inputs: lease "
                     "lost or job ended",
                     t->job_id, name);
            worker_stopped(d, t);
            goto done;
        }
        if (rc != 0) {
            snprintf(msg, sizeof msg, "%s: fetching its inputs: %.900s", name,
                     err.msg);
            log_warn("job %s %s", t->job_id, msg);
            worker_fail(d, t, rc != SH_ENOENT, msg);
            goto done;
        }
        if (fetched > 0)
            log_info("job %s %s: fetched %" PRIu64 " bytes of inputs from "
                     "the store",
                     t->job_id, name, fetched);
        et.inputs = (const char *const *)local_inputs;
    }
    if (fsys_mkdir_p(artifacts, 0755) < 0) {
        snprintf(msg, sizeof msg,
                 "%s: cannot create spool directory %s: "
                 "%s",
                 name, artifacts, strerror(errno));
        worker_fail(d, t, 1, msg);
        goto done;
    }
    worker_in_hand = &run;
    rc = exec_run_task(p, &et, worker_tick, &run, &st, &err);
    worker_in_hand = NULL;
    if (rc == 0) {
        /* A result part: its SHA-256 for the manifest, from the page
         * cache, recorded with the part's commit (the manifest hashes a
         * part whose hash is missing). */
        sha[0] = '\0';
        if ((size_t)t->stage + 1 == p->n_stages
            && spool_file_sha256(out, &hashed, sha, &err) != 0) {
            log_warn("job %s %s: %s", t->job_id, name, err.msg);
            sha[0] = '\0';
        }
        /* SHEAF_STORE: other nodes read this attempt's files from the
         * store, so they are there before the attempt is recorded. */
        if (store_put_outputs(t->job_id, out, &err) != 0) {
            snprintf(msg, sizeof msg, "%s: storing its output: %.900s", name,
                     err.msg);
            log_warn("job %s %s", t->job_id, msg);
            store_drop_outputs(t->job_id, out);
            spool_remove_prefix(out);
            worker_fail(d, t, 1, msg);
            goto done;
        }
        rc = db_task_finish(d, t, out, sha, &st, &job_done, &err);
        if (rc == SH_ESTATE) {
            /* Another attempt holds the task now, or the job ended: what
             * this one wrote must not stay behind. */
            spool_remove_prefix(out);
            store_drop_outputs(t->job_id, out);
            log_info("job %s %s: %s; its output is discarded", t->job_id, name,
                     err.msg);
            worker_stopped(d, t);
        } else if (rc < 0) {
            /* The database is away: the commit may or may not have
             * happened, so the files stay; if it did not, the lease
             * expires, another attempt runs, and these go with the job's
             * cleanup. */
            log_warn("job %s %s: %s", t->job_id, name, err.msg);
        }
    } else if (rc == SH_ECANCELED || run.lost) {
        log_info("job %s %s stopped: lease lost or job ended", t->job_id, name);
        worker_stopped(d, t);
    } else {
        /* Bad data and bad values fail the same way every time; only I/O
         * trouble is worth another attempt. */
        snprintf(msg, sizeof msg, "%s", err.msg);
        log_warn("job %s %s attempt %d failed: %s", t->job_id, name, t->attempt,
                 msg);
        worker_fail(d, t, rc == SH_EIO, msg);
    }
    if (job_done) {
        (void)worker_clean(cfg, d);
        /* SHEAF_STORE: the result goes to object storage (store.h). */
        if (worker_publish(cfg, d, t->job_id, t->stage, &err) != 0)
            log_warn("job %s: result not stored: %s", t->job_id, err.msg);
    }
done:
    store_paths_free(local_inputs, t->n_inputs);
    free(scratch);
    free(out);
    free(artifacts);
}

int
worker_main(const config *cfg)
{
    char       host[128], name[160];
    db        *d = NULL;
    plan_cache cache = {{0}, NULL};
    sh_err     err;
    int        backoff_ms = 100;
    int64_t    clean_ms = 0; /* when ended jobs' files were last cleaned */

    log_set_role("worker");
    /* A worker must not outlive its supervisor (kill -9 of sheafd): the
     * kernel kills it too, and its lease expires for others to take. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 0;
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_cancel;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(WORKER_CANCEL_SIGNAL, &sa, NULL);
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
    srandom((unsigned)(time(NULL) ^ getpid()));
    if (sandbox_worker(cfg, &err) < 0)
        log_warn("worker limits not set: %s", err.msg);
    util_set_oom_handler(worker_oom);

    while (!worker_stop) {
        db_task t;
        json_t *spec = NULL, *resolution = NULL;
        int     rc;

        if (d == NULL) {
            d = db_open(cfg->database_url, &err);
            /* Behind a transaction pooler (SHEAF_DB_LISTEN_URL set) a
             * LISTEN would land on a pooled session: the worker polls
             * the queue instead (db_wait_notify then just waits). */
            if (d == NULL
                || (config_workers_listen(cfg)
                    && db_listen_tasks(d, &err) < 0)) {
                log_warn("%s; retrying in %d ms", err.msg, backoff_ms);
                db_close(d);
                d = NULL;
                usleep((useconds_t)backoff_ms * 1000);
                backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
                continue;
            }
            backoff_ms = 100;
        }
        if (now_ms() - clean_ms >= CLEAN_EVERY_MS) {
            clean_ms = now_ms();
            if (worker_clean(cfg, d) < 0) {
                /* The database is away: reconnect as after a claim. */
                db_close(d);
                d = NULL;
                continue;
            }
        }
        memset(&t, 0, sizeof t);
        rc = db_task_claim(d, name, cfg->lease_s, &t, &spec, &resolution, &err);
        if (rc < 0) {
            log_warn("claim: %s", err.msg);
            db_close(d);
            d = NULL;
            continue;
        }
        if (rc == DB_CLAIM_NONE) {
            db_wait_notify(d, 500);
            continue;
        }
        if (rc == DB_CLAIM_ENDED) {
            log_info("job %s ended as this worker claimed its %s %d; the "
                     "worker exits and is replaced",
                     t.job_id, t.stage == 0 ? "partition" : "task", t.part);
            worker_stop = 1;
            continue;
        }
        worker_begin(t.lease);
        worker_run_task(cfg, d, &t, spec, resolution, &cache);
        worker_running_tag = 0;
        /* Give back what the task's operators grew (a worker idle after a
         * large groupby would otherwise keep its peak); only then: a trim
         * walks the heap, and small tasks leave nothing worth it. */
        if (mallinfo2().fordblks > TRIM_FREE_BYTES)
            malloc_trim(0);
        db_task_clear(&t);
        json_decref(spec);
        json_decref(resolution);
    }
    plan_free(cache.plan);
    db_close(d);
    return 0;
}
