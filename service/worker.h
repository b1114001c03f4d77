/*
 * worker.h - the loop of one worker process: claim a partition task, run
 * it with the executor, record the outcome; again.
 */
#ifndef SHEAF_WORKER_H
#define SHEAF_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "config.h"

/*
 * The signal that stops a worker in the middle of an attempt whose task
 * was cancelled: sent with sigqueue, its si_value.sival_int the attempt's
 * worker_lease_tag. The worker exits only when that is the tag of the
 * attempt it runs at that moment; idle, or on another attempt, it ignores
 * the signal. So the sender needs no knowledge of what the worker is doing
 * now, and no race can make it stop the wrong attempt.
 */
#define WORKER_CANCEL_SIGNAL SIGUSR1

/*
 * The tag of the attempt with fencing token 'lease': its low 32 bits, never
 * 0 (0 means "no attempt"). Two attempts share a tag only 2^32 leases apart.
 */
int worker_lease_tag(int64_t lease);

/*
 * Run tasks until SIGTERM or SIGINT (the partition in hand is finished
 * first). Opens its own database connection: call it only in a process
 * that was exec'ed for it, never in a fork of a threaded or connected
 * parent. Returns the process exit status.
 */
int worker_main(const config *cfg);

#endif
