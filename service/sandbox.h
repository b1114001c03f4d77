/*
 * sandbox.h - the limits a worker process puts on itself when it starts:
 * its address space (so that a runaway allocation fails inside the worker,
 * which then fails its task, instead of waking the machine's OOM killer),
 * no core files, and no new privileges.
 */
#ifndef SHEAF_SANDBOX_H
#define SHEAF_SANDBOX_H

#include <stdint.h>

#include "../lib/err.h"
#include "config.h"

/* Address space a worker may map beyond SHEAF_MEMORY_MB: its code, the
 * libraries (libpq, libcurl, OpenSSL), the stack, malloc's arenas, and
 * what the operators hold past their budget (a record buffer of up to
 * SHEAF_MAX_RECORD_BYTES, output buffers). An idle worker maps about 23
 * MiB (VmPeak); the margin is generous so that only a runaway fails. */
#define SANDBOX_MARGIN_BYTES ((uint64_t)768 << 20)

/*
 * The worker's address-space limit for configuration 'cfg', in bytes:
 * SHEAF_MEMORY_MB plus SANDBOX_MARGIN_BYTES; 0 when this build sets none
 * (AddressSanitizer reserves terabytes of shadow address space).
 */
uint64_t sandbox_as_limit(const config *cfg);

/*
 * Limit the calling process: RLIMIT_AS to sandbox_as_limit (soft and
 * hard), RLIMIT_CORE to 0, PR_SET_NO_NEW_PRIVS. Returns 0, or SH_EIO with
 * the step that failed in 'err' (the worker then runs unlimited and says
 * so).
 */
int sandbox_worker(const config *cfg, sh_err *err);

#endif
