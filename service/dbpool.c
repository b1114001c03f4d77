/*
 * dbpool.c - a small, thread-safe pool of database connections for the
 * API's request threads (see dbpool.h).
 *
 * Surviving a database restart: a connection that sat idle for longer than
 * POOL_CHECK_IDLE_MS is pinged before it is handed out (a restart leaves
 * every idle connection dead, and libpq only notices on the next query; a
 * connection killed by a restart was idle at least as long as the restart
 * took, which is longer than that), and a connection given back broken
 * takes every idle one with it, since they most likely died of the same
 * cause. So the clients get 503 while the database is away and answers as
 * soon as it is back, not a 503 for each stale connection. Under load a
 * connection rarely sits idle that long, so the pings cost little.
 */
#include "dbpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/util.h"

#define POOL_CHECK_IDLE_MS 50 /* idle longer: pinged before use */

/* An idle connection and since when it is idle. */
typedef struct pool_conn {
    db     *d;
    int64_t idle_since_ms;
} pool_conn;

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t  freed; /* signalled when a connection is put back */
    char           *url;   /* owned */
    pool_conn      *idle;  /* connections not in use, oldest first */
    int             n_idle;
    int             n_open;    /* in use + idle + being opened */
    int             size;      /* the most connections open at once */
    int             n_waiting; /* threads waiting for a connection */
};

db_pool *
db_pool_new(const char *url, int size)
{
    db_pool *p = xcalloc(1, sizeof *p);

    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->url = xstrdup(url);
    p->size = size > 0 ? size : 1;
    p->idle = xcalloc((size_t)p->size, sizeof *p->idle);
    return p;
}

void
db_pool_free(db_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n_idle; i++)
        db_close(p->idle[i].d);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->idle);
    free(p->url);
    free(p);
}

/* The absolute CLOCK_REALTIME time 'wait_ms' from now. */
static struct timespec
deadline_in(int wait_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

db *
db_pool_get(db_pool *p, int wait_ms, sh_err *err)
{
    struct timespec deadline = deadline_in(wait_ms);
    pool_conn       c = {NULL, 0};

    pthread_mutex_lock(&p->lock);
    while (p->n_idle == 0 && p->n_open >= p->size) {
        int timed_out;

        p->n_waiting++;
        timed_out = pthread_cond_timedwait(&p->freed, &p->lock, &deadline)
                    == ETIMEDOUT;
        p->n_waiting--;
        if (timed_out) {
            pthread_mutex_unlock(&p->lock);
            sh_err_set(err, SH_EDB, NULL,
                       "all %d database connections are busy; try again",
                       p->size);
            return NULL;
        }
    }
    if (p->n_idle > 0) {
        /* The most recently used: the likeliest to be alive. */
        c = p->idle[--p->n_idle];
    } else {
        p->n_open++;
    }
    pthread_mutex_unlock(&p->lock);

    /* Check and connect outside the lock: either can take a while. */
    if (c.d != NULL) {
        sh_err ping_err;

        if (now_ms() - c.idle_since_ms < POOL_CHECK_IDLE_MS
            || db_ping(c.d, &ping_err) == 0)
            return c.d;
        db_close(c.d);
    }
    c.d = db_open(p->url, err);
    if (c.d == NULL) {
        pthread_mutex_lock(&p->lock);
        p->n_open--;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->lock);
    }
    return c.d;
}

void
db_pool_put(db_pool *p, db *d, int broken)
{
    db **stale = NULL;
    int  n_stale = 0;

    if (d == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (broken) {
        /* Close them outside the lock; a connection in use by another
         * thread is left to fail (or not) on its own. */
        stale = xcalloc((size_t)p->n_idle + 1, sizeof *stale);
        stale[n_stale++] = d;
        for (int i = 0; i < p->n_idle; i++)
            stale[n_stale++] = p->idle[i].d;
        p->n_open -= n_stale;
        p->n_idle = 0;
        pthread_cond_broadcast(&p->freed);
    } else {
        p->idle[p->n_idle].d = d;
        p->idle[p->n_idle].idle_since_ms = now_ms();
        p->n_idle++;
        pthread_cond_signal(&p->freed);
    }
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n_stale; i++)
        db_close(stale[i]);
    free(stale);
}

void
db_pool_stats(db_pool *p, int *in_use, int *waiting, int *size)
{
    pthread_mutex_lock(&p->lock);
    *in_use = p->n_open - p->n_idle;
    *waiting = p->n_waiting;
    *size = p->size;
    pthread_mutex_unlock(&p->lock);
}
