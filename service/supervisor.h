/*
 * supervisor.h - the pool of worker processes on this node: start them by
 * exec (so none inherits a thread, a lock or a database connection),
 * replace any that dies, and stop them gracefully.
 */
#ifndef SHEAF_SUPERVISOR_H
#define SHEAF_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "db.h"

typedef struct supervisor supervisor;

/* A supervisor of cfg->workers processes running 'exe --worker-process'. */
supervisor *supervisor_new(const config *cfg, const char *exe);

/* Start every worker not running. Returns the number running. */
int supervisor_fill(supervisor *s);

/*
 * Collect exited workers (after SIGCHLD), hand their running tasks back to
 * the queue through 'd' (may be NULL when the database is away: leases
 * then expire instead), and start replacements.
 */
void supervisor_reap(supervisor *s, db *d);

/*
 * SIGTERM every worker, wait up to 'grace_s' for them to finish their
 * partitions, SIGKILL the rest, and hand their tasks back through 'd'
 * (db_tasks_hand_back: a shutdown does not count as an attempt).
 */
void supervisor_stop(supervisor *s, int grace_s, db *d);

/*
 * Tell worker 'pid', if it is one of this supervisor's, that the attempt
 * with fencing token 'lease' was cancelled: WORKER_CANCEL_SIGNAL (worker.h)
 * with the attempt's tag. The worker dies if it still runs that attempt
 * (it is then replaced like any dead worker) and ignores it otherwise.
 * Returns 0, or -1 when it is not ours or cannot be signalled.
 */
int supervisor_cancel(supervisor *s, pid_t pid, int64_t lease);

/*
 * The names ("host:pid") of this supervisor's running workers, as a
 * malloc'ed array of malloc'ed strings (free with db_strings_free).
 * Returns their count.
 */
int supervisor_worker_names(const supervisor *s, char ***names);

void supervisor_free(supervisor *s);

/* The worker processes running now (call from the supervising thread). */
int supervisor_alive(const supervisor *s);

#endif
