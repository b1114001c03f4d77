/*
 * sandbox.c - the limits a worker process puts on itself (sandbox.h).
 */
#include "sandbox.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

/* AddressSanitizer: gcc defines __SANITIZE_ADDRESS__, clang has the
 * feature test. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

uint64_t
sandbox_as_limit(const config *cfg)
{
#ifdef SANDBOX_ASAN
    (void)cfg;
    return 0;
#else
    return ((uint64_t)cfg->memory_mb << 20) + SANDBOX_MARGIN_BYTES;
#endif
}

int
sandbox_worker(const config *cfg, sh_err *err)
{
    struct rlimit rl = {0, 0};
    uint64_t      as = sandbox_as_limit(cfg);

    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return sh_err_set(err, SH_EIO, NULL, "setrlimit(RLIMIT_CORE): %s",
                          strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return sh_err_set(err, SH_EIO, NULL, "prctl(PR_SET_NO_NEW_PRIVS): %s",
                          strerror(errno));
    if (as == 0)
        return 0;
    rl.rlim_cur = rl.rlim_max = (rlim_t)as;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return sh_err_set(err, SH_EIO, NULL, "setrlimit(RLIMIT_AS, %llu "
                          "MiB): %s", (unsigned long long)(as >> 20),
                          strerror(errno));
    return 0;
}
