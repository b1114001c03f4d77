/*
 * db.h - the database layer: every SQL statement sheaf runs, by concern.
 * db.c holds the connection, db_migrate.c the schema, db_jobs.c jobs (for
 * the API), db_tasks.c claiming and recording tasks under fenced leases
 * (for workers), db_sweep.c the housekeeping of ended jobs (for every
 * node's sweeper). No statement, PGresult or JSON that clients see leaves
 * this layer: jobs come back as C structs, and api/ builds what clients
 * see.
 *
 * A job runs in stages (plan.h): stage 0 has one task per input partition,
 * each later stage the tasks its combine step asks for (hash buckets, one
 * merge). A stage's tasks are queued when the stage before has finished;
 * the job's "partitions" counters in its progress count the tasks of all
 * stages (partitions_total is the sum of the stages' task counts).
 *
 * A db handle wraps one PostgreSQL connection and is used by one thread at a
 * time. Forked processes never inherit one: each worker process and each
 * API thread (through db_pool) opens its own. When the connection is lost a
 * call fails with SH_EDB and the next call reconnects.
 */
#ifndef SHEAF_DB_H
#define SHEAF_DB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../executor/exec.h"
#include "../executor/plan.h"

typedef struct db db;

/* Connect to 'url'. Returns NULL with SH_EDB in 'err' on failure. */
db  *db_open(const char *url, sh_err *err);
void db_close(db *d);
/* 0 if the database answers (reconnecting if needed), else SH_EDB. */
int db_ping(db *d, sh_err *err);

/*
 * Apply each migrations/NNNN_name.sql of 'dir' not yet recorded in
 * schema_migrations, in name order, each in its own transaction, under an
 * advisory lock so that two instances starting together apply each once.
 */
int db_migrate(db *d, const char *dir, sh_err *err);

/* ---- jobs, for the API ------------------------------------------------ */

/*
 * Insert a job and one queued task per partition of 'p', in one
 * transaction. 'resolution' is plan_resolution(p). With an 'idem_key'
 * (may be NULL), a job already submitted by 'tenant' with that key is
 * returned instead when 'body_sha256' matches (*created = 0), and
 * SH_ECONFLICT when it does not. 'id' receives the job id.
 */
int db_job_submit(db *d, const char *tenant, const plan *p, json_t *resolution,
                  const char *idem_key, const char *body_sha256, char id[37],
                  int *created, sh_err *err);

/* Job statuses are "queued", "running", "succeeded", "failed" and
 * "cancelled"; task states "queued", "running", "done", "failed" and
 * "cancelled". Timestamps are RFC 3339 UTC text with milliseconds
 * ("2026-01-02T03:04:05.678Z"), "" when NULL. */
#define DB_TS_MAX 32

/*
 * A job as the API shows it (SPEC section 3). Its progress: partitions_total
 * is the number of tasks of all stages, partitions_done/running/failed
 * count tasks of any stage; rows_in, bytes_in and rows_skipped are those
 * of stage 0 (the input), rows_out that of the last stage (the result).
 */
typedef struct db_job {
    char  id[37];
    char *name; /* owned */
    char  status[16];
    char  created_at[DB_TS_MAX];
    char  started_at[DB_TS_MAX];  /* "" until it starts */
    char  finished_at[DB_TS_MAX]; /* "" until it ends */
    char *error;                  /* owned; NULL when none */
    char *spec;                   /* the spec as submitted, JSON text (owned);
                                   * NULL in the items of db_job_list */
    int64_t seq;                  /* listing order: a cursor is one */
    int     priority;
    int     max_attempts;
    int     has_result; /* result_bytes and result_rows are set */
    int64_t result_bytes;
    int64_t result_rows;
    int64_t partitions_total;
    int64_t partitions_done;
    int64_t partitions_running;
    int64_t partitions_failed;
    int64_t rows_in;
    int64_t bytes_in;
    int64_t rows_out;
    int64_t rows_skipped;
} db_job;

/* Free what 'j' owns; it may then be filled again. */
void db_job_clear(db_job *j);
/* Clear each of the 'n' jobs of 'jobs' and free the array. */
void db_jobs_free(db_job *jobs, size_t n);

/* Non-zero when 'status' is an end: succeeded, failed or cancelled. */
int db_job_status_ended(const char *status);

/*
 * Read job 'id' of 'tenant' into *job (db_job_clear it). Returns 0,
 * SH_ENOENT or SH_EDB.
 */
int db_job_get(db *d, const char *tenant, const char *id, db_job *job,
               sh_err *err);

/*
 * The jobs of 'tenant', newest first, at most 'limit': *jobs (free with
 * db_jobs_free) and *n; *more is set when more follow, the next page then
 * starting after (*jobs)[*n - 1].seq. 'status' and 'name' may be NULL;
 * 'cursor' is the decimal seq of the last job of the page before, or NULL
 * (anything else is SH_EINVAL). Returns 0 or SH_EINVAL / SH_EDB.
 */
int db_job_list(db *d, const char *tenant, const char *status, const char *name,
                int limit, const char *cursor, db_job **jobs, size_t *n,
                int *more, sh_err *err);

/*
 * 0 when job 'id' exists and is 'tenant''s; SH_ENOENT when it does not
 * exist or is another tenant's (the caller must not tell them apart), or
 * SH_EDB.
 */
int db_job_owned(db *d, const char *tenant, const char *id, sh_err *err);

/* One task of a job, as the API shows it. */
typedef struct db_task_row {
    int     stage;
    int     part; /* the index in its stage */
    char    state[16];
    int     attempts;
    int     has_bytes; /* stage 0: byte_start and byte_end are set */
    int64_t byte_start;
    int64_t byte_end;
    int64_t rows_in;
    int64_t bytes_in;
    int64_t rows_out;
    int64_t bytes_out;
    int64_t rows_skipped;
    int64_t spill_bytes;
    int64_t peak_bytes;
    char   *worker;                 /* owned; NULL when none */
    char   *error;                  /* owned; NULL when none */
    char    started_at[DB_TS_MAX];  /* "" when NULL */
    char    finished_at[DB_TS_MAX]; /* "" when NULL */
} db_task_row;

/*
 * The tasks of job 'id' of every stage queued so far, by stage then index,
 * at most 'limit', into *tasks (free with db_task_rows_free) and *n; *more
 * is set when more follow, the next page then starting after the last
 * one's "STAGE.PART" (its cursor). 'cursor' is such a text or NULL
 * (anything else is SH_EINVAL). Returns 0, SH_EINVAL, SH_ENOENT or SH_EDB.
 */
int  db_job_tasks(db *d, const char *tenant, const char *id, int limit,
                  const char *cursor, db_task_row **tasks, size_t *n, int *more,
                  sh_err *err);
void db_task_rows_free(db_task_row *tasks, size_t n);

/* One committed output part of a job's result, in order. */
typedef struct db_part {
    char    *path; /* absolute path of the part file (owned) */
    uint64_t size_bytes;
    uint64_t rows;
} db_part;

/*
 * The result parts of a succeeded job: the committed outputs of the tasks
 * of its last stage, in task order. Returns 0 with *parts (free with
 * db_parts_free) and *n; SH_ENOENT for no such job; SH_ESTATE when the job
 * has not succeeded (err says its status).
 */
int  db_job_result(db *d, const char *tenant, const char *id, db_part **parts,
                   size_t *n, sh_err *err);
void db_parts_free(db_part *parts, size_t n);

/*
 * Cancel job 'id': a queued or running job ends 'cancelled' at once; its
 * running partitions are stopped by their nodes' sweepers (db_tasks_to_kill).
 * Returns 0, SH_ENOENT, SH_ESTATE (already ended; err says how), SH_EDB.
 */
int db_job_cancel(db *d, const char *tenant, const char *id, sh_err *err);

/*
 * Delete ended job 'id' and its tasks. The caller removes its files.
 * Returns 0, SH_ENOENT, SH_ESTATE (still queued or running), SH_EDB.
 */
int db_job_delete(db *d, const char *tenant, const char *id, sh_err *err);

/* ---- events, for GET /v1/jobs/{id}/events (db_events.c) --------------- */

/* One event of a job (written by the triggers of 0005_events.sql). */
typedef struct db_event {
    int64_t seq;      /* the job's event counter: 1, 2, ... */
    char    kind[16]; /* "state" or "progress" */
    char   *data;     /* JSON text: {"status", "progress"} or
                         {"progress"} (owned) */
    int terminal;     /* a state event of an end: the stream's last */
} db_event;

/*
 * Up to 'max' events of job 'id' from seq 'after' on (that one
 * included, so that a reader resuming after the last event learns it was
 * the last), in order, into
 * *events (free with db_events_free) and *n. The caller has checked that
 * the job is its tenant's. Returns 0 or SH_EDB.
 */
int  db_job_events(db *d, const char *id, int64_t after, int max,
                   db_event **events, size_t *n, sh_err *err);
void db_events_free(db_event *events, size_t n);

/* ---- the callback outbox (db_events.c) --------------------------------- */

/* A job's end-of-job callback (its outbox row, queued by the trigger that
 * ends the job: 0005_events.sql). */
typedef struct db_callback {
    char  job_id[37];
    char  tenant[256];
    char *url;          /* owned */
    char *secret;       /* owned; NULL when the spec has none. Only the
                           delivery reads it: never shown or logged */
    int    attempts;    /* made so far (a claim counts one) */
    double age_s;       /* since the job ended */
    int    last_status; /* HTTP status of the last attempt; 0: none */
    char  *last_error;  /* owned; NULL when none */
    char   state[16];   /* "pending", "delivered", "given_up" */
    char   delivered_at[DB_TS_MAX];
} db_callback;

/* Free what 'cb' owns. */
void db_callback_clear(db_callback *cb);

/*
 * Claim one due callback for delivery (FOR UPDATE SKIP LOCKED: several
 * nodes never take the same one), counting the attempt; it becomes due
 * again after 'lease_s' unless recorded before. Returns 1 with *cb, 0
 * when none is due, SH_EDB.
 */
int db_callback_claim(db *d, int lease_s, db_callback *cb, sh_err *err);

/*
 * Record the attempt just made on the callback of 'job_id': delivered when
 * 'error' is NULL; else failed ('status' the HTTP status, 0 for none),
 * due again in 'retry_s' seconds, or given up when 'give_up'. 0 or SH_EDB.
 */
int db_callback_record(db *d, const char *job_id, int status, const char *error,
                       double retry_s, int give_up, sh_err *err);

/* Read the callback state of job 'job_id' (not its secret) into *cb.
 * Returns 1, 0 when it has none (yet), or SH_EDB. */
int db_callback_get(db *d, const char *job_id, db_callback *cb, sh_err *err);

/* ---- figures for GET /metrics (db_events.c) ----------------------------- */

#define DB_N_STATUSES       5
#define DB_DURATION_BUCKETS 12

/* The statuses of jobs and states of tasks, in the order of db_metrics. */
extern const char *const db_job_statuses[DB_N_STATUSES];
extern const char *const db_task_states[DB_N_STATUSES];
/* The upper bounds (seconds) of the task duration histogram's buckets. */
extern const double db_duration_le[DB_DURATION_BUCKETS];

/* What PostgreSQL knows of all nodes' work, read at a scrape. The sums
 * and the histogram cover the tasks of the jobs still retained. */
typedef struct db_metrics {
    int64_t jobs[DB_N_STATUSES];  /* by db_job_statuses */
    int64_t tasks[DB_N_STATUSES]; /* by db_task_states */
    int64_t queue_depth;          /* runnable queued tasks */
    double  oldest_queued_s;      /* how long the oldest has waited */
    int64_t rows_in, bytes_in, rows_out, bytes_out, spill_bytes;
    int64_t duration_le[DB_DURATION_BUCKETS]; /* cumulative, done tasks */
    int64_t duration_count;
    double  duration_sum;
    int64_t callbacks_pending, callbacks_delivered, callbacks_given_up;
} db_metrics;

/* Read *m: five aggregate statements (one pass over the tasks for the
 * counts and sums, one for durations; the queue from the partial index
 * of queued tasks). Returns 0 or SH_EDB. */
int db_metrics_read(db *d, db_metrics *m, sh_err *err);

/* ---- housekeeping, for every node's sweeper ---------------------------- */

/*
 * End the jobs that ran past their timeout_s (failed, with an error that
 * says so), and mark every open task of an ended job cancelled, in one
 * statement. Returns the number of jobs timed out, or SH_EDB.
 */
int db_jobs_expire(db *d, sh_err *err);

/* A cancelled attempt still running on one of a node's workers. */
typedef struct db_kill {
    char   *worker; /* its worker, "host:pid" (owned) */
    int64_t lease;  /* its fencing token: the worker stops only if it
                       still runs this attempt (see worker.h) */
} db_kill;

/*
 * The attempts of cancelled tasks still running on one of the 'n_workers'
 * 'workers' (the "host:pid" names of this node's worker processes): each
 * is returned once, in *kills (free with db_kills_free), so the node can
 * signal its worker with the attempt's lease. Returns the count or SH_EDB.
 */
int  db_tasks_to_kill(db *d, const char *const *workers, int n_workers,
                      db_kill **kills, sh_err *err);
void db_kills_free(db_kill *kills, int n);

/* Free the 'n' strings of 'v' and 'v' (either may be NULL). */
void db_strings_free(char **v, int n);

/*
 * Delete up to 'max' ended jobs whose retention_s has passed. Returns how
 * many, with their ids in *ids (free with db_strings_free) so the caller
 * removes their files; or SH_EDB.
 */
int db_jobs_retire(db *d, int max, char ***ids, sh_err *err);

/* An ended job whose intermediate files have not been removed yet. */
typedef struct db_clean {
    char   id[37];
    int    succeeded; /* the job succeeded: its result parts are kept */
    char **keep;      /* succeeded: the committed outputs of the last
                         stage (absolute paths, owned) */
    size_t n_keep;
} db_clean;

/*
 * Up to 'max' ended jobs whose files are to be cleaned (cleaned_at NULL),
 * oldest end first: succeeded ones at once, failed and cancelled ones once
 * they have been over for 2 s; in either case only once no task of the job
 * holds a live lease (an attempt that may still write). Returns the count
 * with *jobs (free with db_clean_free), or SH_EDB.
 */
int  db_jobs_to_clean(db *d, int max, db_clean **jobs, sh_err *err);
void db_clean_free(db_clean *jobs, int n);

/* Record that the files of ended job 'id' have been cleaned. 0 or SH_EDB. */
int db_job_cleaned(db *d, const char *id, sh_err *err);

/* ---- tasks, for workers ------------------------------------------------ */

/* A claimed task: what a worker needs to run it and to fence its writes. */
typedef struct db_task {
    char    job_id[37];
    int     stage;
    int     part;
    int64_t lease;   /* fencing token of this attempt */
    int     attempt; /* 1-based */
    int     max_attempts;
    char  **inputs; /* stage > 0: the outputs of the stage before,
                       in task order (owned) */
    size_t n_inputs;
} db_task;

/* Free what a claimed task owns (its inputs). */
void db_task_clear(db_task *t);

/* What db_task_claim did (a negative SH_E* code is a failure). */
typedef enum db_claim_result {
    DB_CLAIM_NONE = 0, /* nothing is runnable now */
    DB_CLAIM_TASK = 1, /* a task was claimed: run it */
    DB_CLAIM_ENDED = 2 /* the task claimed belongs to a job that ended
                          at that moment: the task is cancelled and this
                          attempt is over before it began (the worker
                          acts as after any cancelled attempt) */
} db_claim_result;

/*
 * Claim the next runnable task (highest job priority, then oldest job,
 * then earliest stage and lowest index) for 'worker', under a lease of
 * 'lease_s' seconds (the claim query is documented in db_tasks.c).
 * Returns DB_CLAIM_TASK with *t, *spec and *resolution (the caller owns
 * both), DB_CLAIM_NONE, DB_CLAIM_ENDED with *t, or SH_EDB.
 */
int db_task_claim(db *d, const char *worker, int lease_s, db_task *t,
                  json_t **spec, json_t **resolution, sh_err *err);

/*
 * Extend the lease and record progress. Returns 0; SH_ESTATE when the lease
 * was lost or the job is no longer running (the worker must stop); SH_EDB.
 */
int db_task_heartbeat(db *d, const db_task *t, int lease_s,
                      const exec_stats *st, sh_err *err);

/*
 * Record the task done with output 'out_path', if this attempt still holds
 * its lease, with the output's SHA-256 'sha256' (64 hex digits, for the
 * manifest; NULL or "" when not known). When it is the last task of its
 * stage, the same transaction queues the next stage's tasks or, after the
 * last stage, marks the job succeeded (*job_done = 1). Returns 0,
 * SH_ESTATE (lease lost: the output must be discarded), or SH_EDB.
 */
int db_task_finish(db *d, const db_task *t, const char *out_path,
                   const char *sha256, const exec_stats *st, int *job_done,
                   sh_err *err);

/*
 * Record that the attempt failed with 'message'. When 'retryable' and
 * attempts remain, the task is queued again after a backoff with jitter;
 * otherwise the job fails with 'message' and its other open tasks are
 * cancelled in the same transaction. Fenced like db_task_finish.
 */
int db_task_fail(db *d, const db_task *t, int retryable, const char *message,
                 sh_err *err);

/*
 * 1 when this attempt's task was cancelled (its job ended while it ran):
 * the node's sweeper is then about to kill the worker (db_tasks_to_kill).
 * 0 when not (another attempt holds the task, say), or SH_EDB.
 */
int db_task_cancelled(db *d, const db_task *t, sh_err *err);

/*
 * The committed outputs of the done tasks of stage 'stage' of job
 * 'job_id', in task order: *paths (free with db_strings_free) and *n.
 * Returns 0 or SH_EDB.
 */
int db_task_outputs(db *d, const char *job_id, int stage, char ***paths, int *n,
                    sh_err *err);

/*
 * Return to the queue the running tasks of 'worker' (a worker process that
 * died) and every task whose lease expired. Returns the number requeued, or
 * SH_EDB.
 */
int db_tasks_reap(db *d, const char *worker, sh_err *err);

/*
 * Return to the queue the running tasks of 'worker', stopped by this
 * node's shutdown (not by any fault of the task): the attempt is not
 * counted, so a task handed back on its last attempt runs again. Returns
 * the number handed back, or SH_EDB.
 */
int db_tasks_hand_back(db *d, const char *worker, sh_err *err);

/* LISTEN on the channel that announces new tasks. */
int db_listen_tasks(db *d, sh_err *err);
/* Wait up to 'timeout_ms' for a notification; 1 if one came, 0 if not. */
int db_wait_notify(db *d, int timeout_ms);

/* LISTEN on 'channel' (a name, not quoted: a constant of the caller).
 * Returns 0 or SH_EDB. */
int db_listen(db *d, const char *channel, sh_err *err);

/*
 * Wait up to 'timeout_ms' for the next notification of a LISTEN and copy
 * its payload into 'payload' of 'size' bytes. Returns 1 when one came, 0
 * when none did, SH_EDB when the connection is broken (db_ping
 * reconnects; LISTEN again then: a new connection listens to nothing).
 */
int db_notify_next(db *d, int timeout_ms, char *payload, size_t size);

/* ---- nodes: the sheafd processes sharing the database (db_nodes.c) ---- */

/* A node as it registers itself (service/node.c) and as GET /v1/nodes
 * shows it. */
typedef struct db_node {
    char    id[37];
    char   *hostname; /* owned */
    char   *address;  /* owned; NULL when the node gave none */
    char   *role;     /* owned: "all", "api" or "worker" */
    char   *build;    /* owned: version and git commit */
    int     workers;  /* its worker processes */
    int     pid;      /* its main process */
    int     lease_s;  /* its SHEAF_LEASE_S */
    int     alive;    /* read back: its lease has not passed */
    int64_t seq;      /* read back: listing order, a cursor is one */
    char    started_at[DB_TS_MAX];   /* read back */
    char    heartbeat_at[DB_TS_MAX]; /* read back */
} db_node;

/* Free what 'n' owns; it may then be filled again. */
void db_node_clear(db_node *n);
/* Clear each of the 'n' nodes of 'v' and free the array. */
void db_nodes_free(db_node *v, size_t n);

/*
 * Write node 'n' (its id, hostname, address, role, build, workers, pid and
 * lease_s set by the caller) or, when its row exists, renew its heartbeat:
 * heartbeat_at = now(), lease_until = now() + lease_s. One statement, an
 * upsert, so a node whose row was removed while it was cut off comes back.
 * Returns 0 or SH_EDB.
 */
int db_node_heartbeat(db *d, const db_node *n, sh_err *err);

/* Delete the row of node 'id' (a node stopping cleanly). 0 or SH_EDB. */
int db_node_remove(db *d, const char *id, sh_err *err);

/*
 * Delete up to 'max' nodes lost (lease passed) for more than
 * 'retention_s' seconds. Returns how many, or SH_EDB.
 */
int db_nodes_retire(db *d, int retention_s, int max, sh_err *err);

/*
 * The nodes, newest start first, at most 'limit', paged like db_job_list
 * ('cursor' the decimal seq of the last node of the page before, or NULL;
 * anything else is SH_EINVAL). *out (free with db_nodes_free), *n, *more.
 * Returns 0, SH_EINVAL or SH_EDB.
 */
int db_node_list(db *d, int limit, const char *cursor, db_node **out, size_t *n,
                 int *more, sh_err *err);

/* ---- datasets and manifests, for the API (db_datasets.c) -------------- */

/* An uploaded dataset as the API shows it. */
typedef struct db_dataset {
    char    id[37];
    char   *name; /* owned */
    char   *file; /* its file's name under SPOOL/datasets (owned) */
    int64_t bytes;
    char    sha256[65];     /* lower-case hex */
    char    compression[8]; /* "none" or "gzip" */
    char    created_at[DB_TS_MAX];
    int64_t seq; /* listing order: a cursor is one */
} db_dataset;

/* Free what 'ds' owns; it may then be filled again. */
void db_dataset_clear(db_dataset *ds);
/* Clear each of the 'n' datasets of 'v' and free the array. */
void db_datasets_free(db_dataset *v, size_t n);

/*
 * Record dataset 'ds' (its id, name, file, bytes, sha256 and compression
 * set by the caller, whose file is complete) for 'tenant'; fills its
 * created_at and seq. Returns 0 or SH_EDB.
 */
int db_dataset_insert(db *d, const char *tenant, db_dataset *ds, sh_err *err);

/*
 * Read the dataset of 'tenant' named by 'ref' into *ds (db_dataset_clear
 * it): its id when 'ref' is a UUID, else the newest with that name.
 * Returns 0, SH_ENOENT or SH_EDB.
 */
int db_dataset_get(db *d, const char *tenant, const char *ref, db_dataset *ds,
                   sh_err *err);

/*
 * The datasets of 'tenant', newest first, paged like db_job_list ('name'
 * may be NULL). Returns 0 or SH_EINVAL / SH_EDB.
 */
int db_dataset_list(db *d, const char *tenant, const char *name, int limit,
                    const char *cursor, db_dataset **out, size_t *n, int *more,
                    sh_err *err);

/*
 * Delete dataset 'id' of 'tenant'; *file gets the name of its file (the
 * caller frees it and removes the file). Returns 0, SH_ENOENT, SH_ESTATE
 * (a queued or running job reads it; err names the job) or SH_EDB.
 */
int db_dataset_delete(db *d, const char *tenant, const char *id, char **file,
                      sh_err *err);

/*
 * Record that job 'job_id' reads the 'n' datasets 'ids' (locking them
 * against a concurrent delete). Returns how many of them still exist
 * (fewer than 'n': one was deleted since the job's plan was made), or
 * SH_EDB.
 */
int db_job_set_datasets(db *d, const char *job_id, char (*ids)[37], size_t n,
                        sh_err *err);

/*
 * The cached SHA-256 of each of the 'n' result parts of job 'job_id'
 * (db_job_result's, by path) into shas[i], "" when not computed yet.
 * Returns 0 or SH_EDB.
 */
int db_parts_sha256(db *d, const char *job_id, const db_part *parts, size_t n,
                    char (*shas)[65], sh_err *err);

/* Cache 'sha' as the SHA-256 of the result part 'path' of job 'job_id'.
 * Returns 0 or SH_EDB. */
int db_part_set_sha256(db *d, const char *job_id, const char *path,
                       const char *sha, sh_err *err);

#endif
