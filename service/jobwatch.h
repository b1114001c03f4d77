/*
 * jobwatch.h - the one LISTEN connection of a sheafd process: a thread
 * waits for NOTIFY sheaf_jobs (sent, with the job id as payload, in the
 * transaction that records a job's event: migrations/0005_events.sql) and
 * wakes the threads waiting on that job: long polls (GET /v1/jobs/{id}
 * ?wait=), event streams and the callback delivery thread.
 *
 * A waiter registers before it reads PostgreSQL, then waits: a change
 * committed in between still wakes it. Waiters always re-read PostgreSQL
 * when woken and after a timeout, so a notification lost to a broken
 * connection costs at most that timeout (every waiter is woken after the
 * listener reconnects, too).
 */
#ifndef SHEAF_JOBWATCH_H
#define SHEAF_JOBWATCH_H

#include "../lib/err.h"

typedef struct jobwatch jobwatch;

/* One waiting thread's registration (owned by the waiter, on its stack). */
typedef struct jobwatch_waiter {
    char id[37]; /* the job, or "" for any job */
    int  woken;  /* a notification came since the last
                    wait */
    struct jobwatch_waiter *prev, *next;
} jobwatch_waiter;

/* Start the listener thread on its own connection to 'url' (copied).
 * Never fails for want of the database: the thread keeps reconnecting.
 * Call after the workers have been forked (it starts a thread). */
jobwatch *jobwatch_start(const char *url);
/* Stop the thread and free 'w' (NULL is ignored); no waiter may remain. */
void jobwatch_stop(jobwatch *w);

/* Register 'wt' for job 'id' ("" or NULL: any job). */
void jobwatch_add(jobwatch *w, jobwatch_waiter *wt, const char *id);
/* Unregister 'wt'. */
void jobwatch_remove(jobwatch *w, jobwatch_waiter *wt);
/*
 * Wait up to 'timeout_ms' for a notification of the job of 'wt' (one that
 * came since the last wait returns at once). Returns 1 when one came, 0
 * on timeout. 'w' NULL: sleeps 'timeout_ms' and returns 1.
 */
int jobwatch_wait(jobwatch *w, jobwatch_waiter *wt, int timeout_ms);

/* Wake every waiter (the server is stopping, say). */
void jobwatch_wake_all(jobwatch *w);

/* Notifications received since start (for metrics). */
long jobwatch_received(jobwatch *w);

#endif
