/*
 * jobwatch.c - the LISTEN thread of sheafd and its waiters (see
 * jobwatch.h). The waiters are a list under one mutex; a notification
 * marks those of its job (and those of any job) and broadcasts one
 * condition variable, on which each waiter checks its own mark.
 */
#include "jobwatch.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "../lib/util.h"

#define JOBWATCH_CHANNEL  "sheaf_jobs"
#define JOBWATCH_TICK_MS  500  /* how often the thread looks at 'stop' */
#define JOBWATCH_RETRY_MS 1000 /* between reconnection attempts */

struct jobwatch {
    char           *url;
    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    jobwatch_waiter head; /* sentinel of the waiter list */
    atomic_int      stop;
    atomic_long     received;
};

/* Mark the waiters of job 'id' (NULL: every waiter) and wake them. */
static void
jobwatch_wake(jobwatch *w, const char *id)
{
    pthread_mutex_lock(&w->mu);
    for (jobwatch_waiter *wt = w->head.next; wt != &w->head; wt = wt->next)
        if (id == NULL || wt->id[0] == '\0' || strcmp(wt->id, id) == 0)
            wt->woken = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The listener: (re)connect and LISTEN, then hand each notification on. */
static void *
jobwatch_main(void *arg)
{
    jobwatch *w = arg;
    db       *d = NULL;
    sh_err    err;
    char      payload[64];
    int       listening = 0, warned = 0, rc;

    while (!atomic_load(&w->stop)) {
        if (!listening) {
            if (d == NULL)
                d = db_open(w->url, &err);
            else if (db_ping(d, &err) < 0) {
                db_close(d);
                d = NULL;
            }
            if (d != NULL && db_listen(d, JOBWATCH_CHANNEL, &err) == 0) {
                listening = 1;
                warned = 0;
                /* Whatever was announced while we did not listen. */
                jobwatch_wake(w, NULL);
                continue;
            }
            if (!warned++)
                log_warn("jobwatch: cannot listen for job changes (%s); "
                         "waiters fall back to polling",
                         err.msg);
            poll(NULL, 0, JOBWATCH_RETRY_MS);
            continue;
        }
        rc = db_notify_next(d, JOBWATCH_TICK_MS, payload, sizeof payload);
        if (rc == 1) {
            atomic_fetch_add(&w->received, 1);
            jobwatch_wake(w, payload);
        } else if (rc < 0) {
            listening = 0;
        }
    }
    db_close(d);
    return NULL;
}

jobwatch *
jobwatch_start(const char *url)
{
    jobwatch          *w = xcalloc(1, sizeof *w);
    pthread_condattr_t ca;

    w->url = xstrdup(url);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->head.next = w->head.prev = &w->head;
    atomic_init(&w->stop, 0);
    atomic_init(&w->received, 0);
    if (pthread_create(&w->thread, NULL, jobwatch_main, w) != 0) {
        log_error("jobwatch: cannot start the listener thread");
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->url);
        free(w);
        return NULL;
    }
    return w;
}

void
jobwatch_stop(jobwatch *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->url);
    free(w);
}

void
jobwatch_add(jobwatch *w, jobwatch_waiter *wt, const char *id)
{
    snprintf(wt->id, sizeof wt->id, "%s", id != NULL ? id : "");
    wt->woken = 0;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    wt->next = &w->head;
    wt->prev = w->head.prev;
    w->head.prev->next = wt;
    w->head.prev = wt;
    pthread_mutex_unlock(&w->mu);
}

void
jobwatch_remove(jobwatch *w, jobwatch_waiter *wt)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    wt->prev->next = wt->next;
    wt->next->prev = wt->prev;
    wt->next = wt->prev = NULL;
    pthread_mutex_unlock(&w->mu);
}

int
jobwatch_wait(jobwatch *w, jobwatch_waiter *wt, int timeout_ms)
{
    struct timespec until;
    int             got;

    if (w == NULL) {
        poll(NULL, 0, timeout_ms);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!wt->woken && !atomic_load(&w->stop))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0)
            break;
    got = wt->woken;
    wt->woken = 0;
    pthread_mutex_unlock(&w->mu);
    return got;
}

long
jobwatch_received(jobwatch *w)
{
    return w != NULL ? atomic_load(&w->received) : 0;
}

void
jobwatch_wake_all(jobwatch *w)
{
    if (w != NULL)
        jobwatch_wake(w, NULL);
}
