/*
 * worker.h - the loop of one worker process: claim a partition task, run
 * it with the executor, record the outcome; again.
 */
#ifndef SHEAF_WORKER_H
#define SHEAF_WORKER_H

#include "config.h"

/*
 * Run tasks until SIGTERM or SIGINT (the partition in hand is finished
 * first). Opens its own database connection: call it only in a process
 * that was exec'ed for it, never in a fork of a threaded or connected
 * parent. Returns the process exit status.
 */
int worker_main(const config *cfg);

#endif
