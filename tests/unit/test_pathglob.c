/*
 * test_pathglob.c - unit tests of executor/pathglob: the walker that
 * expands input globs beneath the data root (issue 9: glob characters
 * climbed out of the root with ".[.]", and deep patterns held millions of
 * paths).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../executor/pathglob.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static char g_dir[256];  /* a fresh directory per test */
static char g_root[512]; /* g_dir/root: the data root */
static char g_out[512];  /* g_dir/out: outside the root */

static void
fresh(void)
{
    th_fresh_dir(g_dir, sizeof g_dir, th_tmp_base(), "sheaf-pathglob");
    snprintf(g_root, sizeof g_root, "%s/root", g_dir);
    snprintf(g_out, sizeof g_out, "%s/out", g_dir);
    mkdir(g_root, 0755);
    mkdir(g_out, 0755);
}

/* Expand 'pattern' with at most 'max' matches; the matches joined by
 * spaces into 'got' ("" for none). Returns the code. */
static int
expand(const char *pattern, size_t max, char *got, size_t size, sh_err *e)
{
    char **paths;
    size_t n, i, len = 0;
    int    rc;

    sh_err_clear(e);
    got[0] = '\0';
    rc = pathglob_expand(g_root, pattern, max, "input.path", &paths, &n, e);
    for (i = 0; rc == 0 && i < n; i++) {
        len += (size_t)snprintf(got + len, len < size ? size - len : 0, "%s%s",
                                i ? " " : "", paths[i]);
        free(paths[i]);
    }
    if (rc == 0)
        free(paths);
    return rc;
}

static void
expect(const char *pattern, const char *want)
{
    char   got[4096];
    sh_err e;
    int    rc = expand(pattern, 1000, got, sizeof got, &e);

    if (rc != 0 || strcmp(got, want) != 0)
        fprintf(stderr, "\n'%s': want '%s', got rc %d '%s' (%s)\n", pattern,
                want, rc, got, e.msg);
    CU_ASSERT(rc == 0 && strcmp(got, want) == 0);
}

static void
expect_err(const char *pattern, size_t max, const char *words,
           const char *never)
{
    char   got[4096];
    sh_err e;
    int    rc = expand(pattern, max, got, sizeof got, &e);
    int    ok = rc == SH_EINVAL && strstr(e.msg, words) != NULL
             && strcmp(e.path, "input.path") == 0
             && (never == NULL || strstr(e.msg, never) == NULL);

    if (!ok)
        fprintf(stderr,
                "\n'%s': want an error with '%s', got rc %d '%s' "
                "(%s)\n",
                pattern, words, rc, got, e.msg);
    CU_ASSERT(ok);
}

static void
test_matches(void)
{
    fresh();
    th_put_file(g_root, "logs/b.csv", "x", 1);
    th_put_file(g_root, "logs/a.csv", "x", 1);
    th_put_file(g_root, "logs/.hidden.csv", "x", 1);
    th_put_file(g_root, "logs/sub/c.csv", "x", 1);
    th_put_file(g_root, "a*b", "x", 1);
    expect("logs/*.csv", "logs/a.csv logs/b.csv");
    expect("logs/.*.csv", "logs/.hidden.csv");
    expect("*/*/*.csv", "logs/sub/c.csv");
    expect("./logs//a.csv", "logs/a.csv");
    expect("logs/[ab].csv", "logs/a.csv logs/b.csv");
    expect("a\\*b", "a*b");
    expect("logs/none.csv", "");
    expect("nodir/*.csv", "");
    /* A literal name is returned as it is (the caller stats it). */
    expect("logs", "logs");
}

static void
test_never_dot_or_dotdot(void)
{
    fresh();
    th_put_file(g_out, "secret.csv", "x", 1);
    th_put_file(g_root, "a.csv", "x", 1);
    /* The attack of the issue: bracket expressions that match "..". */
    expect(".[.]/.[.]/.[.]/etc/[q-z]*", "");
    expect(".[.]/out/*", "");
    expect(".?/*", "");
    expect("[.]*", "");
    expect("*/*", "");
}

static void
test_symlinked_dirs_stay_inside(void)
{
    char *link;

    fresh();
    th_put_file(g_out, "secret.csv", "x", 1);
    th_put_file(g_root, "in/a.csv", "x", 1);
    link = xasprintf("%s/evildir", g_root);
    CU_ASSERT(symlink(g_out, link) == 0);
    free(link);
    link = xasprintf("%s/alias", g_root);
    CU_ASSERT(symlink("in", link) == 0);
    free(link);
    /* Never a name from outside in the message. */
    expect_err("evildir/*.csv", 1000, "'evildir' resolves outside", "secret");
    expect_err("*/secret.csv", 1000, "resolves outside", "secret.csv'");
    expect("alias/*.csv", "alias/a.csv");
}

static void
test_caps(void)
{
    char name[600];
    int  i;

    fresh();
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "f%d.csv", i);
        th_put_file(g_root, name, "x", 1);
    }
    expect_err("*.csv", 3, "matches more than 3 files", NULL);
    /* More directories than the walker may open. */
    for (i = 0; i <= PATHGLOB_MAX_DIRS; i++) {
        snprintf(name, sizeof name, "%s/d%05d", g_root, i);
        CU_ASSERT_FATAL(mkdir(name, 0755) == 0);
    }
    expect_err("*/x.csv", 1000, "more than 10000 directories", NULL);
    th_rm_tree(g_dir);
    g_dir[0] = '\0';
}

/* fsys_open_beneath: no symlink on the way, never out of the root. */
static void
test_open_beneath(void)
{
    char *link;
    int   fd;

    fresh();
    th_put_file(g_root, "in/a.csv", "x", 1);
    th_put_file(g_out, "secret.csv", "s", 1);
    link = xasprintf("%s/evil", g_root);
    CU_ASSERT(symlink(g_out, link) == 0);
    free(link);
    link = xasprintf("%s/in/alias.csv", g_root);
    CU_ASSERT(symlink("a.csv", link) == 0);
    free(link);
    fd = fsys_open_beneath(g_root, "in/a.csv", O_RDONLY);
    CU_ASSERT(fd >= 0);
    if (fd >= 0)
        close(fd);
    errno = 0;
    CU_ASSERT(fsys_open_beneath(g_root, "evil/secret.csv", O_RDONLY) < 0);
    CU_ASSERT(errno == ELOOP || errno == EXDEV);
    errno = 0;
    CU_ASSERT(fsys_open_beneath(g_root, "in/alias.csv", O_RDONLY) < 0);
    CU_ASSERT(errno == ELOOP);
    errno = 0;
    CU_ASSERT(fsys_open_beneath(g_root, "../out/secret.csv", O_RDONLY) < 0);
    CU_ASSERT(errno == EXDEV);
    errno = 0;
    CU_ASSERT(fsys_open_beneath(g_root, "in/none.csv", O_RDONLY) < 0);
    CU_ASSERT(errno == ENOENT);
}

void
test_pathglob_register(void)
{
    CU_pSuite s = CU_add_suite("pathglob", NULL, NULL);

    CU_add_test(s, "matches", test_matches);
    CU_add_test(s, "never . or ..", test_never_dot_or_dotdot);
    CU_add_test(s, "symlinked directories", test_symlinked_dirs_stay_inside);
    CU_add_test(s, "caps", test_caps);
    CU_add_test(s, "fsys_open_beneath", test_open_beneath);
}
