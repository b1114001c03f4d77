/*
 * supervisor.h - the pool of worker processes on this node: start them by
 * exec (so none inherits a thread, a lock or a database connection),
 * replace any that dies, and stop them gracefully.
 */
#ifndef SHEAF_SUPERVISOR_H
#define SHEAF_SUPERVISOR_H

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
 * partitions, SIGKILL the rest, and hand their tasks back through 'd'.
 */
void supervisor_stop(supervisor *s, int grace_s, db *d);

/*
 * Kill worker 'pid' with SIGKILL if it is one of this supervisor's (it is
 * then replaced like any dead worker). Returns 0, or -1 when it is not
 * ours.
 */
int supervisor_kill(supervisor *s, pid_t pid);

/* This node's name, the "host" of worker names "host:pid". */
const char *supervisor_host(const supervisor *s);

void supervisor_free(supervisor *s);

#endif
