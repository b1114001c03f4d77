/*
 * dbpool.c - a small, thread-safe pool of database connections for the
 * API's request threads (see dbpool.h).
 */
#include "dbpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../executor/util.h"

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t  freed;   /* signalled when a connection is put back */
    char           *url;     /* owned */
    db            **idle;    /* connections not in use */
    int             n_idle;
    int             n_open;  /* in use + idle + being opened */
    int             size;    /* the most connections open at once */
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
        db_close(p->idle[i]);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->idle);
    free(p->url);
    free(p);
}

db *
db_pool_get(db_pool *p, int wait_ms, sh_err *err)
{
    struct timespec deadline;
    db             *d = NULL;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (p->n_idle == 0 && p->n_open >= p->size) {
        if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) ==
            ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            sh_err_set(err, SH_EDB, NULL, "all %d database connections are "
                       "busy; try again", p->size);
            return NULL;
        }
    }
    if (p->n_idle > 0) {
        d = p->idle[--p->n_idle];
        pthread_mutex_unlock(&p->lock);
        return d;
    }
    p->n_open++;
    pthread_mutex_unlock(&p->lock);

    /* Connect outside the lock: it can take a while. */
    d = db_open(p->url, err);
    if (d == NULL) {
        pthread_mutex_lock(&p->lock);
        p->n_open--;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->lock);
    }
    return d;
}

void
db_pool_put(db_pool *p, db *d, int broken)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (broken) {
        db_close(d);
        p->n_open--;
    } else {
        p->idle[p->n_idle++] = d;
    }
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}
