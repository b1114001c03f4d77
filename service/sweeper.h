/*
 * sweeper.h - a node's housekeeping, run from sheafd's main loop: renew
 * the node's heartbeat (node.h), return expired leases to the queue, time
 * out jobs, stop this node's workers whose job was cancelled or ended,
 * remove jobs past their retention and nodes lost for longer than
 * SHEAF_NODE_RETENTION_S.
 */
#ifndef SHEAF_SWEEPER_H
#define SHEAF_SWEEPER_H

#include "config.h"
#include "db.h"
#include "node.h"
#include "supervisor.h"

typedef struct sweeper sweeper;

sweeper *sweeper_new(const config *cfg, supervisor *sup);

/* Renew the heartbeat of node 'n' (borrowed; NULL: none) when due. */
void sweeper_set_node(sweeper *s, node *n);

/*
 * Do whatever is due; call it every 250 ms or so. The node's heartbeat is
 * renewed every node_heartbeat_ms, leases are reaped every second, jobs
 * past their retention and long-lost nodes removed every cfg->sweep_s
 * seconds. When the
 * database does not answer, the passes back off (up to 4 s) until it does;
 * the loss and the return are logged once each.
 */
void sweeper_run(sweeper *s, db *d);

void sweeper_free(sweeper *s);

#endif
