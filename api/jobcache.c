/*
 * jobcache.c - a short-lived cache of the replies of GET /v1/jobs/{id} for
 * jobs that have ended (see api_int.h). An ended job's object does not
 * change, except by DELETE (which forgets it here at once) or by the
 * retention sweep and a DELETE on another node (which the entry's short
 * life, JOBCACHE_TTL_MS, bounds). A job with a callback is never cached:
 * its "callback" part changes as deliveries are tried.
 *
 * The cache is direct-mapped: JOBCACHE_SLOTS slots, a job's slot chosen
 * by a hash of its id, a newer entry replacing an older one. Each entry
 * keeps its tenant, and a lookup by another tenant misses, so a cached
 * reply goes only to whom the database would have given it.
 */
#include "api_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define JOBCACHE_SLOTS     1024        /* a power of two */
#define JOBCACHE_TTL_MS    1000        /* how long an entry is served */
#define JOBCACHE_MAX_BYTES (64 * 1024) /* larger replies are not kept */

/* One cached reply. */
typedef struct jobcache_entry {
    char    id[37]; /* the job; "" for a free slot */
    char   *tenant; /* owned */
    char   *body;   /* the JSON reply with its newline (owned) */
    size_t  len;
    int64_t expires_ms; /* now_ms() past which it is not served */
} jobcache_entry;

struct api_jobcache {
    pthread_mutex_t mu;
    jobcache_entry  slots[JOBCACHE_SLOTS];
};

/* The slot of job 'id' (FNV-1a of its text). */
static jobcache_entry *
jobcache_slot(api_jobcache *c, const char *id)
{
    uint32_t h = 2166136261u;

    for (; *id != '\0'; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return &c->slots[h & (JOBCACHE_SLOTS - 1)];
}

/* Empty slot 'e' (the caller holds the lock). */
static void
jobcache_drop(jobcache_entry *e)
{
    free(e->tenant);
    free(e->body);
    memset(e, 0, sizeof *e);
}

api_jobcache *
api_jobcache_new(void)
{
    api_jobcache *c = xcalloc(1, sizeof *c);

    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void
api_jobcache_free(api_jobcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < JOBCACHE_SLOTS; i++)
        jobcache_drop(&c->slots[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void
api_jobcache_put(api_jobcache *c, const char *tenant, const char *id,
                 const char *body, size_t len)
{
    jobcache_entry *e;

    if (c == NULL || len > JOBCACHE_MAX_BYTES || strlen(id) != 36)
        return;
    char *t = xstrdup(tenant), *b = xmalloc(len);

    memcpy(b, body, len);
    pthread_mutex_lock(&c->mu);
    e = jobcache_slot(c, id);
    jobcache_drop(e);
    memcpy(e->id, id, sizeof e->id);
    e->tenant = t;
    e->body = b;
    e->len = len;
    e->expires_ms = now_ms() + JOBCACHE_TTL_MS;
    pthread_mutex_unlock(&c->mu);
}

char *
api_jobcache_get(api_jobcache *c, const char *tenant, const char *id,
                 size_t *len)
{
    jobcache_entry *e;
    char           *body = NULL;

    *len = 0;
    if (c == NULL)
        return NULL;
    pthread_mutex_lock(&c->mu);
    e = jobcache_slot(c, id);
    if (e->id[0] != '\0' && strcmp(e->id, id) == 0) {
        if (now_ms() >= e->expires_ms) {
            jobcache_drop(e);
        } else if (strcmp(e->tenant, tenant) == 0) {
            body = xmalloc(e->len);
            memcpy(body, e->body, e->len);
            *len = e->len;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return body;
}

void
api_jobcache_forget(api_jobcache *c, const char *id)
{
    jobcache_entry *e;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    e = jobcache_slot(c, id);
    if (strcmp(e->id, id) == 0)
        jobcache_drop(e);
    pthread_mutex_unlock(&c->mu);
}
