/*
 * resolve.c - turning input.path into files under the data root, safely.
 *
 * The pattern must be relative and free of "..". It is expanded beneath
 * the real path of the data root by our own walker (pathglob.h: it never
 * matches "." or "..", never leaves the root and stops at caps), and every
 * match is resolved with realpath(3) and must stay inside the root: a
 * symlink that leads out of it is refused, not followed. Matches that
 * resolve to the same file are read once.
 */
#include "plan_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/util.h"
#include "pathglob.h"

#define PATH_FIELD "input.path"

/* One glob match on its way to becoming a plan_file. */
typedef struct match {
    char  *real;  /* realpath of the match (owned) */
    size_t order; /* position in the glob's sorted output */
    int    dup;   /* 1 when an earlier match is the same file */
} match;

char *
plan_root_real(const char *data_root, sh_err *err)
{
    char *root = realpath(data_root, NULL);

    if (root == NULL) {
        int e = errno;

        sh_err_set(err, SH_EIO, "", "the data root '%s' is not usable: %s",
                   data_root, strerror(e));
        return NULL;
    }
    return root;
}

/* Does 's' hold a pattern metacharacter (pathglob.h)? */
static int
has_glob_meta(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

int
plan_path_has_dotdot(const char *s)
{
    const char *p = s;

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t      n = slash ? (size_t)(slash - p) : strlen(p);

        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    return 0;
}

static int
cmp_match_real(const void *a, const void *b)
{
    const match *x = a, *y = b;
    int          c = strcmp(x->real, y->real);

    if (c != 0)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

static int
cmp_match_order(const void *a, const void *b)
{
    const match *x = a, *y = b;

    return (x->order > y->order) - (x->order < y->order);
}

/*
 * Is 'real' inside 'root' (both real paths)? The root "/" holds everything.
 */
static int
inside_root(const char *root, size_t root_len, const char *real)
{
    if (root_len == 1 && root[0] == '/')
        return real[0] == '/' && real[1] != '\0';
    return strncmp(real, root, root_len) == 0 && real[root_len] == '/';
}

/* Is 'pattern' of 'len' bytes a pattern we expand: not empty, no NUL, not
 * absolute, no ".."? Returns 0 or SH_EINVAL (message in 'err'). */
static int
check_pattern(const char *pattern, size_t len, sh_err *err)
{
    if (len == 0) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "input.path is empty; give a file or a glob "
                          "relative to the data root, like 'logs/*.csv'");
    }
    if (strlen(pattern) != len) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "input.path contains a NUL character");
    }
    if (pattern[0] == '/') {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "input.path '%s' is absolute; give a path relative "
                          "to the data root",
                          pattern);
    }
    if (plan_path_has_dotdot(pattern)) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "input.path '%s' contains '..'; input must stay "
                          "under the data root",
                          pattern);
    }
    return 0;
}

/*
 * Resolve the match 'shown' (relative to 'root_real', 'root_len' bytes;
 * 'skip' bytes of a real path are the root and its slash) into 'mt': its
 * real path, which must be a regular file inside the root with a UTF-8
 * name. mt->real is set (owned by the caller) even when this fails, unless
 * realpath itself failed. Returns 0, SH_EINVAL or SH_EIO (message in
 * 'err').
 */
static int
resolve_match(const char *root_real, size_t root_len, size_t skip,
              const char *shown, match *mt, sh_err *err)
{
    char       *full = root_len == 1 ? xasprintf("/%s", shown)
                                     : xasprintf("%s/%s", root_real, shown);
    struct stat st;

    mt->real = realpath(full, NULL);
    free(full);
    if (mt->real == NULL) {
        int e = errno;

        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "cannot resolve '%s' under the data root: %s", shown,
                          strerror(e));
    }
    if (strcmp(mt->real, root_real) == 0) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' is the data root itself, not a file", shown);
    }
    if (!inside_root(root_real, root_len, mt->real)) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' resolves outside the data root", shown);
    }
    if (stat(mt->real, &st) != 0) {
        int e = errno;

        return sh_err_set(err, SH_EIO, PATH_FIELD, "cannot stat '%s': %s",
                          shown, strerror(e));
    }
    if (!util_utf8_valid(mt->real + skip, strlen(mt->real + skip))) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "the name of '%s' is not valid UTF-8; rename "
                          "the file",
                          shown);
    }
    if (!S_ISREG(st.st_mode)) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' is not a regular file%s", shown,
                          S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
    }
    return 0;
}

/* Mark every match but the first (in match order) that leads to a file
 * already matched, so that a file is read once; 'm' keeps its order. */
static void
mark_duplicates(match *m, size_t n)
{
    size_t i;

    qsort(m, n, sizeof *m, cmp_match_real);
    for (i = 1; i < n; i++)
        m[i].dup = strcmp(m[i].real, m[i - 1].real) == 0;
    qsort(m, n, sizeof *m, cmp_match_order);
}

/* The plan files (a new array, owned by the caller) of the 'n' matches
 * 'm' that are not duplicates, with their sizes and mtimes; their count in
 * *n_files. 'skip' bytes of a real path are the root and its slash. */
static plan_file *
make_files(const match *m, size_t n, size_t skip, size_t *n_files)
{
    plan_file *out = xcalloc(n, sizeof *out);
    size_t     i;

    *n_files = 0;
    for (i = 0; i < n; i++) {
        plan_file  *f;
        struct stat st;

        if (m[i].dup)
            continue;
        f = &out[(*n_files)++];
        f->path = xstrdup(m[i].real);
        f->rel = xstrdup(m[i].real + skip);
        if (stat(f->path, &st) == 0) {
            f->size_bytes = (uint64_t)st.st_size;
            f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000
                          + st.st_mtim.tv_nsec;
        }
    }
    return out;
}

int
plan_resolve_files(const char *root_real, const char *pattern, size_t len,
                   plan_file **files, size_t *n_files, sh_err *err)
{
    char **found = NULL;
    size_t n_found = 0;
    int    rc = 0;
    size_t root_len = strlen(root_real), skip, i, n = 0;
    match *m = NULL;

    *files = NULL;
    *n_files = 0;
    rc = check_pattern(pattern, len, err);
    if (rc != 0)
        return rc;

    skip = root_len == 1 ? 1 : root_len + 1;
    rc = pathglob_expand(root_real, pattern, PLAN_MAX_FILES, PATH_FIELD, &found,
                         &n_found, err);
    if (rc != 0)
        goto done;
    if (n_found == 0) {
        if (has_glob_meta(pattern)) {
            rc = sh_err_set(err, SH_EINVAL, PATH_FIELD,
                            "no file matches '%s' under the data root",
                            pattern);
        } else {
            rc = sh_err_set(err, SH_EINVAL, PATH_FIELD,
                            "no such file '%s' under the data root", pattern);
        }
        goto done;
    }

    m = xcalloc(n_found, sizeof *m);
    for (i = 0; i < n_found; i++) {
        rc = resolve_match(root_real, root_len, skip, found[i], &m[n], err);
        if (m[n].real != NULL)
            n++;
        if (rc != 0)
            goto done;
        m[n - 1].order = i;
    }

    /* Read a file once, however many matches lead to it. */
    mark_duplicates(m, n);
    *files = make_files(m, n, skip, n_files);

done:
    if (m) {
        for (i = 0; i < n; i++)
            free(m[i].real);
        free(m);
    }
    for (i = 0; i < n_found; i++)
        free(found[i]);
    free(found);
    return rc;
}
