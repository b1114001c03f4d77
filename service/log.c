/*
 * log.c - one-line log records on stderr.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "sheafd";

void
log_set_role(const char *role)
{
    snprintf(log_role, sizeof log_role, "%s", role);
}

static void
log_write(const char *level, const char *fmt, va_list ap)
{
    char           line[2048];
    struct timeval tv;
    struct tm      tm;
    size_t         n;
    int            r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof line - n,
                 ".%03ldZ %s[%ld] %s: ", (long)(tv.tv_usec / 1000), log_role,
                 (long)getpid(), level);
    if (r > 0)
        n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
    r = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per record, so records of several processes interleave
     * whole lines. */
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

#define LOG_FN(fn, level)          \
    void fn(const char *fmt, ...)  \
    {                              \
        va_list ap;                \
        va_start(ap, fmt);         \
        log_write(level, fmt, ap); \
        va_end(ap);                \
    }

LOG_FN(log_info, "info")
LOG_FN(log_warn, "warn")
LOG_FN(log_error, "error")
