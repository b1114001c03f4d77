/*
 * test_helpers.c - temporary directories, whole files and values in words
 * for the unit-test suites (see test_helpers.h). The checks with words are
 * in test_check.c: they call CUnit, which the fuzz harnesses (that link
 * this file) do not link.
 */
#include "test_helpers.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../lib/fsys.h"
#include "../../lib/util.h"

/* ---- temporary directories ----------------------------------------------- */

const char *
th_tmp_base(void)
{
    struct stat st;

    return stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
                   && access("/dev/shm", W_OK) == 0
               ? "/dev/shm"
               : "/tmp";
}

int
th_temp_file(const void *data, size_t n)
{
    char path[] = "/tmp/sheaf-test-XXXXXX";
    int  fd = mkstemp(path);

    if (fd < 0)
        return -1;
    unlink(path);
    if (write(fd, data, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

int
th_temp_dir(char *dir, size_t size, const char *base, const char *name)
{
    snprintf(dir, size, "%s/%s-XXXXXX", base, name);
    return mkdtemp(dir) == NULL ? -1 : 0;
}

void
th_fresh_dir(char *dir, size_t size, const char *base, const char *name)
{
    th_rm_tree(dir);
    if (th_temp_dir(dir, size, base, name) != 0) {
        perror("mkdtemp");
        abort();
    }
}

/* nftw callback: remove every entry (children come first: FTW_DEPTH). */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* nftw callback: remove every entry but the top directory. */
static int
rm_below(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    return ftw->level == 0 ? 0 : remove(path);
}

int
th_rm_tree(const char *dir)
{
    if (dir[0] == '\0')
        return 0;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void
th_clear_dir(const char *dir)
{
    (void)nftw(dir, rm_below, 16, FTW_DEPTH | FTW_PHYS);
}

int
th_count_files(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    int            n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int
th_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- whole files --------------------------------------------------------- */

int
th_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int   rc = 0, e = 0;

    if (f == NULL)
        return -1;
    if (fwrite(data, 1, n, f) != n) {
        e = errno;
        rc = -1;
    }
    if (fclose(f) != 0 && rc == 0) {
        e = errno;
        rc = -1;
    }
    if (rc != 0)
        errno = e;
    return rc;
}

void
th_put_file(const char *dir, const char *rel, const void *data, size_t n)
{
    char       *path = xasprintf("%s/%s", dir, rel);
    const char *slash = strrchr(rel, '/');

    if (slash != NULL) {
        char *parent = xasprintf("%s/%.*s", dir, (int)(slash - rel), rel);

        (void)fsys_mkdir_p(parent, 0755); /* the write says if it failed */
        free(parent);
    }
    if (th_write_file(path, data, n) != 0) {
        perror(path);
        abort();
    }
    free(path);
}

int
th_write_gzip(const char *path, const void *data, size_t n, int members)
{
    size_t done = 0;

    unlink(path);
    for (int m = 0; m < members; m++) {
        size_t piece = m == members - 1 ? n - done : n / (size_t)members;
        gzFile g = gzopen(path, m == 0 ? "wb" : "ab");
        int    ok;

        if (g == NULL)
            return -1;
        ok = piece == 0
             || gzwrite(g, (const char *)data + done, (unsigned)piece)
                    == (int)piece;
        if (gzclose(g) != Z_OK || !ok)
            return -1;
        done += piece;
    }
    return 0;
}

/* ---- models -------------------------------------------------------------- */

int
th_model_resolve(const void *spool, const char *job_id, char **path_out,
                 sh_err *err)
{
    char       *file = xasprintf("%s/jobs/%s/artifacts/model",
                           spool ? (const char *)spool : ".", job_id);
    struct stat sb;

    *path_out = NULL;
    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(file);
        return sh_err_set(err, SH_ENOENT, "", "job %s has no model", job_id);
    }
    *path_out = file;
    return 0;
}

/* ---- values in words ----------------------------------------------------- */

void
th_describe_value(const sh_value *v, char *buf, size_t size)
{
    char fbuf[32];

    switch (v->type) {
    case SH_NULL:
        snprintf(buf, size, "null");
        break;
    case SH_INT:
        snprintf(buf, size, "int %" PRId64, v->u.i);
        break;
    case SH_FLOAT:
        format_double(v->u.f, fbuf);
        snprintf(buf, size, "float %s", fbuf);
        break;
    case SH_STRING:
        snprintf(buf, size, "string '%.*s'", (int)v->u.s.len, v->u.s.ptr);
        break;
    case SH_BOOL:
        snprintf(buf, size, "bool %s", v->u.b ? "true" : "false");
        break;
    case SH_DATE:
        snprintf(buf, size, "date %" PRId64, v->u.i);
        break;
    case SH_TIMESTAMP:
        snprintf(buf, size, "timestamp %" PRId64, v->u.i);
        break;
    }
}

char *
th_list_dir(const char *dir)
{
    struct dirent **ents;
    strbuf          sb = {0};
    int             n, i;

    n = scandir(dir, &ents, NULL, alphasort);
    for (i = 0; i < n; i++) {
        if (strcmp(ents[i]->d_name, ".") != 0
            && strcmp(ents[i]->d_name, "..") != 0) {
            if (sb.len)
                sb_putc(&sb, ' ');
            sb_puts(&sb, ents[i]->d_name);
        }
        free(ents[i]);
    }
    if (n >= 0)
        free(ents);
    if (sb.data == NULL)
        sb_puts(&sb, "");
    return sb.data;
}
