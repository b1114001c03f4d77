/*
 * dbpool.h - a small pool of database connections shared by the API's
 * request threads. A thread takes a connection for one request and gives
 * it back; connections are opened lazily and reopened after a failure.
 */
#ifndef SHEAF_DBPOOL_H
#define SHEAF_DBPOOL_H

#include "db.h"

typedef struct db_pool db_pool;

/* A pool of at most 'size' connections to 'url' (copied). */
db_pool *db_pool_new(const char *url, int size);
void     db_pool_free(db_pool *p);

/*
 * Take a connection, waiting up to 'wait_ms' for one to be free. One that
 * sat idle for more than 50 ms is pinged first and replaced if dead.
 * Returns NULL with SH_EDB in 'err' when none can be had or the database
 * does not answer (the API answers 503). Give it back with db_pool_put.
 */
db *db_pool_get(db_pool *p, int wait_ms, sh_err *err);
/* Give 'd' back; 'broken' non-zero closes it (the last call saw SH_EDB),
 * and the idle connections with it (a restart of the database kills them
 * all). */
void db_pool_put(db_pool *p, db *d, int broken);

/* The connections in use (or being opened), the threads waiting for one,
 * and the pool's size, for the metrics. */
void db_pool_stats(db_pool *p, int *in_use, int *waiting, int *size);

#endif
