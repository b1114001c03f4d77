/*
 * pathglob.c - the glob walker beneath the data root (see pathglob.h).
 *
 * The pattern is cut into its '/'-separated parts. A part without
 * metacharacters is one name, opened (or looked up, when it is the last)
 * beneath the directory in hand; a part with them is matched against every
 * entry of that directory but "." and "..". Every directory is opened
 * with openat beneath the one before and its real path (from /proc) must
 * lie inside the root, so a symlink cannot lead the walk out of it.
 */
#include "pathglob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"

/* The state of one expansion. */
typedef struct walk {
    const char *root; /* real path of the root */
    size_t      root_len;
    const char *pattern; /* the whole pattern, for messages */
    const char *field;   /* the JSON path, for messages */
    char      **parts;   /* the pattern's parts (owned) */
    size_t      n_parts;
    char      **out; /* matches so far (owned) */
    size_t      n_out, cap_out;
    size_t      max_matches;
    size_t      dirs;    /* directories opened */
    size_t      entries; /* entries read */
    sh_err     *err;
} walk;

/* Does 'part' hold an unquoted glob metacharacter? */
static int
has_meta(const char *part)
{
    for (; *part != '\0'; part++) {
        if (*part == '\\' && part[1] != '\0')
            part++;
        else if (*part == '*' || *part == '?' || *part == '[')
            return 1;
    }
    return 0;
}

/* 'part' with its quoting backslashes removed, in place. */
static void
unquote(char *part)
{
    char *w = part;

    for (; *part != '\0'; part++) {
        if (*part == '\\' && part[1] != '\0')
            part++;
        *w++ = *part;
    }
    *w = '\0';
}

/* Is 'real' the root or inside it? */
static int
inside(const walk *w, const char *real)
{
    if (w->root_len == 1 && w->root[0] == '/')
        return real[0] == '/';
    return strncmp(real, w->root, w->root_len) == 0
           && (real[w->root_len] == '/' || real[w->root_len] == '\0');
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Record the match 'rel'. */
static int
add_match(walk *w, const char *rel)
{
    if (w->n_out == w->max_matches)
        return sh_err_set(w->err, SH_EINVAL, w->field,
                          "'%s' matches more than %zu files; narrow the "
                          "pattern",
                          w->pattern, w->max_matches);
    if (w->n_out == w->cap_out) {
        w->cap_out = w->cap_out ? w->cap_out * 2 : 16;
        w->out = xrealloc(w->out, w->cap_out * sizeof *w->out);
    }
    w->out[w->n_out++] = xstrdup(rel);
    return 0;
}

/*
 * Open the directory 'name' beneath 'dir_fd' ('rel' is its path from the
 * root, for messages) and check that it lies inside the root. Returns 0
 * with the descriptor in *fd_out, or -1 there when it is not a directory
 * or does not exist (not an error: such a name just matches nothing); or
 * an SH_E* error.
 */
static int
open_dir(walk *w, int dir_fd, const char *name, const char *rel, int *fd_out)
{
    char    link[64], real[PATH_MAX];
    ssize_t n;
    int     fd;

    *fd_out = -1;
    if (++w->dirs > PATHGLOB_MAX_DIRS)
        return sh_err_set(w->err, SH_EINVAL, w->field,
                          "expanding '%s' opens more than %d directories; "
                          "narrow the pattern",
                          w->pattern, PATHGLOB_MAX_DIRS);
    fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == EACCES
                       || errno == ELOOP
                   ? 0
                   : sh_err_set(w->err, SH_EIO, w->field,
                                "cannot open '%s' under the data root: %s", rel,
                                strerror(errno));
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, real, sizeof real - 1);
    if (n < 0 || (size_t)n >= sizeof real - 1) {
        close(fd);
        return sh_err_set(w->err, SH_EIO, w->field,
                          "cannot tell where '%s' lies", rel);
    }
    real[n] = '\0';
    if (!inside(w, real)) {
        close(fd);
        return sh_err_set(w->err, SH_EINVAL, w->field,
                          "'%s' resolves outside the data root", rel);
    }
    *fd_out = fd;
    return 0;
}

/* The sorted names of the entries of 'dir_fd' that match 'part' (never
 * "." or ".."); the caller frees them. Returns 0 or an error. */
static int
match_entries(walk *w, int dir_fd, const char *part, const char *rel,
              char ***names, size_t *n_names)
{
    DIR           *d;
    struct dirent *de;
    size_t         cap = 0;
    int            fd = dup(dir_fd), rc = 0;

    *names = NULL;
    *n_names = 0;
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        return sh_err_set(w->err, SH_EIO, w->field,
                          "cannot read '%s' under the data root: %s",
                          rel[0] ? rel : ".", strerror(e));
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (++w->entries > PATHGLOB_MAX_ENTRIES) {
            rc = sh_err_set(w->err, SH_EINVAL, w->field,
                            "expanding '%s' reads more than %d directory "
                            "entries; narrow the pattern",
                            w->pattern, PATHGLOB_MAX_ENTRIES);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fnmatch(part, de->d_name, FNM_PERIOD) != 0)
            continue;
        if (*n_names == cap) {
            cap = cap ? cap * 2 : 16;
            *names = xrealloc(*names, cap * sizeof **names);
        }
        (*names)[(*n_names)++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (*n_names > 1)
        qsort(*names, *n_names, sizeof **names, cmp_str);
    return rc;
}

/* Join 'rel' and 'name' with a '/' (just 'name' when 'rel' is ""). */
static char *
join(const char *rel, const char *name)
{
    return rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
}

/* Walk part 'i' of the pattern beneath 'dir_fd', whose path from the
 * root is 'rel'. Returns 0 or an error. */
static int
walk_part(walk *w, int dir_fd, const char *rel, size_t i)
{
    const char *part = w->parts[i];
    int         last = i + 1 == w->n_parts;
    char      **names = NULL;
    size_t      n_names = 0, k;
    int         rc = 0;

    if (!has_meta(part)) {
        names = xmalloc(sizeof *names);
        names[0] = xstrdup(part);
        unquote(names[0]);
        n_names = 1;
    } else if ((rc = match_entries(w, dir_fd, part, rel, &names, &n_names))
               < 0) {
        goto done;
    }
    for (k = 0; k < n_names && rc == 0; k++) {
        char *path = join(rel, names[k]);

        if (last) {
            struct stat st;

            /* A literal name counts only when it exists. */
            if (has_meta(part)
                || fstatat(dir_fd, names[k], &st, AT_SYMLINK_NOFOLLOW) == 0)
                rc = add_match(w, path);
        } else {
            int fd;

            rc = open_dir(w, dir_fd, names[k], path, &fd);
            if (rc == 0 && fd >= 0) {
                rc = walk_part(w, fd, path, i + 1);
                close(fd);
            }
        }
        free(path);
    }
done:
    for (k = 0; k < n_names; k++)
        free(names[k]);
    free(names);
    return rc;
}

int
pathglob_expand(const char *root_real, const char *pattern, size_t max_matches,
                const char *field, char ***paths, size_t *n_paths, sh_err *err)
{
    walk   w = {0};
    char  *copy = xstrdup(pattern), *save = NULL, *tok;
    size_t i;
    int    root_fd, rc;

    *paths = NULL;
    *n_paths = 0;
    w.root = root_real;
    w.root_len = strlen(root_real);
    w.pattern = pattern;
    w.field = field;
    w.max_matches = max_matches;
    w.err = err;
    /* Empty parts ("a//b") and "." parts ("./a") name nothing new. */
    for (tok = strtok_r(copy, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        w.parts = xrealloc(w.parts, (w.n_parts + 1) * sizeof *w.parts);
        w.parts[w.n_parts++] = xstrdup(tok);
    }
    free(copy);
    if (w.n_parts == 0) {
        rc = 0;
        goto done;
    }
    root_fd = open(root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        rc = sh_err_set(err, SH_EIO, field, "the data root is not usable: %s",
                        strerror(errno));
        goto done;
    }
    rc = walk_part(&w, root_fd, "", 0);
    close(root_fd);
    if (rc == 0) {
        if (w.n_out > 1)
            qsort(w.out, w.n_out, sizeof *w.out, cmp_str);
        *paths = w.out;
        *n_paths = w.n_out;
        w.out = NULL;
        w.n_out = 0;
    }
done:
    for (i = 0; i < w.n_out; i++)
        free(w.out[i]);
    free(w.out);
    for (i = 0; i < w.n_parts; i++)
        free(w.parts[i]);
    free(w.parts);
    return rc;
}
