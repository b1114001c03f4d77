/*
 * test_check.c - the checks with words of the unit-test suites: th_check
 * and th_check_str, behind CHECK, CHECK_AT, CHECK_TRUE, CHECK_INT and
 * CHECK_STR (see test_helpers.h). Apart from test_helpers.c because they
 * call CUnit and the fuzz harnesses link test_helpers.c without CUnit.
 */
#include "test_helpers.h"

#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/util.h"

/* ---- checking with words ------------------------------------------------- */

void
th_check(int ok, const char *file, int line, const char *func, const char *fmt,
         ...)
{
    strbuf  sb = {0};
    va_list ap;

    if (ok) {
        /* Passing checks are counted without formatting their words. */
        CU_assertImplementation(CU_TRUE, (unsigned)line, "ok", file, func,
                                CU_FALSE);
        return;
    }
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s:%d: FAILED: %s\n", file, line,
            sb.data ? sb.data : "");
    /* CUnit copies the message. */
    CU_assertImplementation(CU_FALSE, (unsigned)line, sb.data ? sb.data : "",
                            file, func, CU_FALSE);
    sb_free(&sb);
}

void
th_check_str(const char *exp, const char *act, const char *what,
             const char *file, int line, const char *func)
{
    int ok = exp != NULL && act != NULL && strcmp(exp, act) == 0;

    if (ok || exp == NULL || act == NULL
        || (strchr(exp, '\n') == NULL && strchr(act, '\n') == NULL))
        th_check(ok, file, line, func, "%s: expected \"%s\", got \"%s\"", what,
                 exp ? exp : "(null)", act ? act : "(null)");
    else
        th_check(ok, file, line, func, "%s:\n--- expected\n%s\n--- got\n%s",
                 what, exp, act);
}
