/*
 * sandbox.h - the limits a worker process puts on itself when it starts:
 * its address space (so that a runaway allocation fails inside the worker,
 * which then fails its task, instead of waking the machine's OOM killer),
 * no core files, no new privileges, and a seccomp filter that refuses the
 * system calls a data engine never needs; and the privilege drop of a sheafd
 * started as root: it becomes SHEAF_USER for good before it starts a
 * worker or a thread.
 */
#ifndef SHEAF_SANDBOX_H
#define SHEAF_SANDBOX_H

#include <stddef.h>
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
 * hard), RLIMIT_CORE to 0, PR_SET_NO_NEW_PRIVS, then the seccomp filter
 * (sandbox_seccomp). Returns 0, or SH_EIO with the step that failed in
 * 'err' (the worker then runs with the limits set so far and says so).
 */
int sandbox_worker(const config *cfg, sh_err *err);

/*
 * Install the workers' seccomp filter in the calling process (after
 * PR_SET_NO_NEW_PRIVS): every system call is allowed but those a worker
 * never makes and an attacker would want (debugging other processes,
 * mounts, namespaces, kernel modules and images, BPF, perf events, the
 * kernel keyring, reboot, swap, clock and host name changes...), which
 * fail with EPERM. Sanitizer builds allow ptrace (LeakSanitizer uses it).
 * For good: inherited by children, never lifted. Returns 0 or SH_EIO.
 */
int sandbox_seccomp(sh_err *err);

/*
 * 1 when this process should give up root: it runs as root (effective uid
 * 0) and cfg->user names a user (SHEAF_USER set, not empty, not "root");
 * else 0.
 */
int sandbox_wants_drop(const config *cfg);

/*
 * The group of cfg->user (its primary group's name) into 'buf' ('n'
 * bytes), for the private PostgreSQL cluster's socket. Returns 0, or
 * SH_EINVAL when there is no such user or group.
 */
int sandbox_user_group(const config *cfg, char *buf, size_t n, sh_err *err);

/*
 * Become cfg->user for good, as root only (sandbox_wants_drop): give the
 * spool (recursively; symbolic links themselves, never their targets) to
 * the user and its group, then set the user's groups (initgroups), gid and
 * uid, and check that root cannot be regained (setuid(0), setgid(0) and
 * setgroups must fail) and that the spool can be written and the data
 * root read. Call it before any thread starts: after the listener is
 * bound, before workers are spawned (they inherit the user). Returns 0,
 * or SH_EINVAL (no such user) or SH_EIO with the step that failed in 'err'
 * (sheafd then stops rather than run as root against the operator's
 * wish).
 */
int sandbox_drop(const config *cfg, sh_err *err);

#endif
