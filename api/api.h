/*
 * api.h - the HTTP API of sheafd (SPEC section 3), served by
 * libmicrohttpd with a thread per connection.
 */
#ifndef SHEAF_API_H
#define SHEAF_API_H

#include "../lib/err.h"
#include "../service/config.h"
#include "../service/dbpool.h"

typedef struct api api;

/*
 * Start serving on cfg->listen_host:listen_port. 'cfg' and 'pool' are
 * borrowed and must outlive the server. Must be called after every worker
 * process has been started by exec (the server starts threads). Returns
 * NULL with 'err' filled when the address cannot be bound.
 */
api *api_start(const config *cfg, db_pool *pool, sh_err *err);

/* Note the worker processes alive on this node, for GET /metrics. */
void api_set_workers_alive(api *a, int n);

/* Stop accepting, finish or abort requests in flight, free. */
void api_stop(api *a);

#endif
