/*
 * node.h - this sheafd process as a node of the deployment: its row in the
 * nodes table (GET /v1/nodes), written at start, renewed by the sweeper's
 * heartbeat from the main thread (never from a worker process), and
 * deleted when the node stops cleanly.
 */
#ifndef SHEAF_NODE_H
#define SHEAF_NODE_H

#include "config.h"
#include "db.h"

typedef struct node node;

/*
 * This process's node: a new random id, the host name, the address
 * (SHEAF_ADVERTISE; else, when it serves the API, SHEAF_LISTEN, a
 * wildcard host replaced by the host name), 'role' ("all", "api" or
 * "worker", copied), 'workers', the build and cfg->lease_s. 'cfg' is
 * borrowed for the node's life. Free with node_free.
 */
node *node_new(const config *cfg, const char *role, int workers);
void  node_free(node *n);

/* The node's id (a UUID, owned by 'n'). */
const char *node_id(const node *n);

/* How often the heartbeat is due: a third of the lease, at most 5 s. */
int node_heartbeat_ms(const node *n);

/* Write the node's row or renew its lease (db_node_heartbeat). Returns 0
 * or SH_EDB. */
int node_heartbeat(node *n, db *d, sh_err *err);

/* Delete the node's row: it is stopping cleanly. Returns 0 or SH_EDB. */
int node_leave(node *n, db *d, sh_err *err);

#endif
