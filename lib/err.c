/*
 * err.c - filling sh_err records and naming error codes.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
sh_err_set(sh_err *err, int code, const char *path, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    snprintf(err->path, sizeof err->path, "%s", path ? path : "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void
sh_err_clear(sh_err *err)
{
    if (err == NULL)
        return;
    err->code = SH_OK;
    err->path[0] = '\0';
    err->msg[0] = '\0';
}

const char *
sh_err_name(int code)
{
    switch (code) {
    case SH_OK:
        return "ok";
    case SH_EINVAL:
        return "invalid_spec";
    case SH_ENOENT:
        return "not_found";
    case SH_EIO:
        return "io_error";
    case SH_EDATA:
        return "bad_data";
    case SH_ERANGE:
        return "out_of_range";
    case SH_ECANCELED:
        return "cancelled";
    case SH_ESTATE:
        return "wrong_state";
    case SH_ETOOBIG:
        return "too_large";
    case SH_EDB:
        return "unavailable";
    case SH_ECONFLICT:
        return "conflict";
    default:
        return "internal";
    }
}
