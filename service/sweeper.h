/*
 * sweeper.h - a node's housekeeping, run from sheafd's main loop: return
 * expired leases to the queue, time out jobs, stop this node's workers
 * whose job was cancelled or ended, remove jobs past their retention.
 */
#ifndef SHEAF_SWEEPER_H
#define SHEAF_SWEEPER_H

#include "config.h"
#include "db.h"
#include "supervisor.h"

typedef struct sweeper sweeper;

sweeper *sweeper_new(const config *cfg, supervisor *sup);

/*
 * Do whatever is due; call it every 250 ms or so. Leases are reaped every
 * second, jobs past their retention every cfg->sweep_s seconds. When the
 * database does not answer, the passes back off (up to 4 s) until it does;
 * the loss and the return are logged once each.
 */
void sweeper_run(sweeper *s, db *d);

void sweeper_free(sweeper *s);

#endif
