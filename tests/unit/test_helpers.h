/*
 * test_helpers.h - what several unit-test suites need besides CUnit:
 * checks that say why they failed (CHECK and friends, test_check.c),
 * temporary directories (made, emptied, removed), whole files written
 * (plain and gzip), and values described in words for messages. Reading a
 * whole file back is fsys_read_file (lib/fsys.h).
 *
 * These are test code: they allocate through xmalloc and friends, and a
 * failure is either returned (for the suite to report as it likes) or, where
 * the comment says so, ends the run with a message (a test cannot go on
 * without its input files).
 */
#ifndef SHEAF_TEST_HELPERS_H
#define SHEAF_TEST_HELPERS_H

#include <stddef.h>

#include "../../executor/value.h"
#include "../../lib/err.h"

/* ---- checking with words ------------------------------------------------- */

/*
 * Record one CUnit assertion at 'file':'line' in function 'func', passed
 * when 'ok' is not 0. A failure's message is 'fmt' formatted (printf) and is
 * printed to stderr too; a passing check formats nothing.
 */
void th_check(int ok, const char *file, int line, const char *func,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Assert 'cond'; on failure the printf-style message says why. */
#define CHECK(cond, ...) \
    th_check((cond) ? 1 : 0, __FILE__, __LINE__, __func__, __VA_ARGS__)

/* As CHECK, reported at 'line' (a helper's caller's line). */
#define CHECK_AT(cond, line, ...) \
    th_check((cond) ? 1 : 0, __FILE__, (int)(line), __func__, __VA_ARGS__)

/* Assert 'cond'; the message is the condition's text. */
#define CHECK_TRUE(cond) CHECK((cond), "%s", #cond)

/* Two integers are equal; on failure both are shown. */
#define CHECK_INT(exp, act)                                                  \
    do {                                                                     \
        long long e_ = (long long)(exp), a_ = (long long)(act);              \
        CHECK(e_ == a_, "%s == %s: expected %lld, got %lld", #exp, #act, e_, \
              a_);                                                           \
    } while (0)

/* Two strings are equal (neither NULL); on failure both are shown. */
#define CHECK_STR(exp, act) \
    th_check_str((exp), (act), #act, __FILE__, __LINE__, __func__)

/* CHECK_STR's work: 'what' is the text of the actual value's expression. */
void th_check_str(const char *exp, const char *act, const char *what,
                  const char *file, int line, const char *func);

/* ---- temporary directories ----------------------------------------------- */

/*
 * The directory to make test directories in: "/dev/shm" when it is a
 * writable directory (a memory file system, where the fsyncs of executor
 * files cost nothing), else "/tmp". A static string.
 */
const char *th_tmp_base(void);

/*
 * Make a new directory "<base>/<name>-XXXXXX" (mkdtemp) and leave its path
 * in 'dir' ('size' bytes). Returns 0, or -1 with errno set.
 */
int th_temp_dir(char *dir, size_t size, const char *base, const char *name);

/*
 * A file in /tmp holding the 'n' bytes of 'data', already unlinked. Returns
 * its descriptor (the caller closes it), or -1 on failure.
 */
int th_temp_file(const void *data, size_t n);

/*
 * Remove the tree at 'dir' when 'dir' is not empty (a test's last
 * directory), then make a new one as th_temp_dir does. A failure to make
 * it prints "mkdtemp" and the reason and aborts.
 */
void th_fresh_dir(char *dir, size_t size, const char *base, const char *name);

/*
 * Remove 'dir' and everything below it (symbolic links are removed, not
 * followed). An empty 'dir' names nothing: returns 0. Otherwise returns 0,
 * or -1 when 'dir' could not be walked or an entry not removed.
 */
int th_rm_tree(const char *dir);

/* Remove everything below 'dir', keeping 'dir' itself. */
void th_clear_dir(const char *dir);

/* The entries of 'dir' whose names do not start with '.', or -1 when
 * 'dir' cannot be opened. */
int th_count_files(const char *dir);

/* The names in 'dir' but "." and "..", sorted, joined by spaces; ""
 * when it is empty or cannot be read. The caller frees it. */
char *th_list_dir(const char *dir);

/* 1 when 'path' exists (whatever it is), else 0. */
int th_exists(const char *path);

/* ---- whole files --------------------------------------------------------- */

/*
 * Write 'n' bytes of 'data' to 'path', created or truncated. Returns 0, or
 * -1 with errno set when it cannot be opened, written or closed.
 */
int th_write_file(const char *path, const void *data, size_t n);

/*
 * Write 'n' bytes of 'data' to "<dir>/<rel>", making the directories 'rel'
 * names on the way (mode 0755). A failure prints the path and the reason
 * and aborts.
 */
void th_put_file(const char *dir, const char *rel, const void *data, size_t n);

/*
 * Write 'n' bytes of 'data' gzip-compressed to 'path' as 'members' (at least
 * 1) concatenated gzip members: the data cut into that many pieces, the
 * last taking what is left. Returns 0 or -1.
 */
int th_write_gzip(const char *path, const void *data, size_t n, int members);

/* ---- models -------------------------------------------------------------- */

/*
 * A plan_model_fn (plan.h) as the service's: the model of job 'job_id' is
 * the file <spool>/jobs/<job_id>/artifacts/model, 'spool' a const char *.
 * Returns 0 and *path_out (malloc'ed), or SH_ENOENT.
 */
int th_model_resolve(const void *spool, const char *job_id, char **path_out,
                     sh_err *err);

/* ---- values in words ----------------------------------------------------- */

/*
 * Describe 'v' as "type text" into 'buf' ('size' bytes): "null", "int 5",
 * "float 0.5" (shortest round-trip form, format_double), "string 'x'",
 * "bool true".
 */
void th_describe_value(const sh_value *v, char *buf, size_t size);

#endif
