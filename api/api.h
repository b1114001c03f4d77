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

/*
 * Bind and listen on cfg->listen_host:listen_port now, before the server
 * starts (so that a sheafd started as root can bind a port below 1024,
 * then give up root before any thread exists). Returns the listening
 * socket (close-on-exec), or SH_EINVAL / SH_EIO with 'err' filled.
 */
int api_listen(const config *cfg, sh_err *err);

/*
 * api_start on the socket 'listen_fd' that api_listen made (takes
 * ownership: the server closes it when it stops, or at once on failure);
 * -1 binds as api_start does.
 */
api *api_start_on(const config *cfg, db_pool *pool, int listen_fd, sh_err *err);

/* Note the worker processes alive on this node, for GET /metrics. */
void api_set_workers_alive(api *a, int n);

/* Stop accepting, finish or abort requests in flight, free. */
void api_stop(api *a);

#endif
