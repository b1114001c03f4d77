/*
 * spool.c - job directories under SHEAF_SPOOL (see spool.h).
 */
#define _XOPEN_SOURCE 700
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/fsys.h"
#include "../lib/util.h"
#include "log.h"

#define SPOOL_HASH_BLOCK (64 * 1024) /* bytes read at a time to hash */

char *
spool_job_dir(const char *spool, const char *id)
{
    return xasprintf("%s/jobs/%s", spool, id);
}

char *
spool_datasets_dir(const char *spool)
{
    return xasprintf("%s/datasets", spool);
}

char *
spool_dataset_path(const char *spool, const char *file)
{
    return xasprintf("%s/datasets/%s", spool, file);
}

int
spool_file_sha256(const char *path, uint64_t *bytes, char hex[65], sh_err *err)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char     md[32];
    unsigned int      md_len = 0;
    EVP_MD_CTX       *ctx = EVP_MD_CTX_new();
    char             *buf = xmalloc(SPOOL_HASH_BLOCK);
    ssize_t           n;
    int               fd, rc = 0;

    *bytes = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ctx == NULL
        || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = sh_err_set(err, SH_EIO, NULL, "cannot read %s: %s", path,
                        strerror(errno));
        goto done;
    }
    while ((n = read(fd, buf, SPOOL_HASH_BLOCK)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sh_err_set(err, SH_EIO, NULL, "cannot read %s: %s", path,
                            strerror(errno));
            goto done;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        *bytes += (uint64_t)n;
    }
    EVP_DigestFinal_ex(ctx, md, &md_len);
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';

done:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

char *
spool_artifacts_dir(const char *spool, const char *id)
{
    return xasprintf("%s/jobs/%s/artifacts", spool, id);
}

char *
spool_artifact_path(const char *spool, const char *id, const char *name)
{
    return xasprintf("%s/jobs/%s/artifacts/%s", spool, id, name);
}

char *
spool_task_output(const char *spool, const char *id, int stage, int part,
                  int64_t lease, const char *ext)
{
    if (ext == NULL)
        return xasprintf("%s/jobs/%s/s%d-p%05d-l%" PRId64, spool, id, stage,
                         part, lease);
    return xasprintf("%s/jobs/%s/s%d-p%05d-l%" PRId64 ".%s", spool, id, stage,
                     part, lease, ext);
}

char *
spool_task_scratch(const char *spool, const char *id, int stage, int part,
                   int64_t lease)
{
    return xasprintf("%s/jobs/%s/tmp-s%d-p%05d-l%" PRId64, spool, id, stage,
                     part, lease);
}

/* Non-zero when 'id' could name a directory outside the spool's jobs. */
static int
spool_bad_id(const char *id)
{
    return id[0] == '\0' || strchr(id, '/') != NULL || strcmp(id, "..") == 0
           || strcmp(id, ".") == 0;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Remove 'path', a file or a directory tree. Returns 0 or -1 (missing is
 * fine). */
static int
remove_tree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return fsys_unlink(path) < 0 && errno != ENOENT ? -1 : 0;
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return errno == ENOENT ? 0 : -1;
    return 0;
}

int
spool_remove_job(const char *spool, const char *id)
{
    char *dir;
    int   rc;

    /* Never let a strange id walk out of the spool. */
    if (spool_bad_id(id))
        return -1;
    dir = spool_job_dir(spool, id);
    rc = nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rc < 0 && errno == ENOENT)
        rc = 0;
    free(dir);
    return rc;
}

/* The names in directory 'dir' but "." and "..", as a new array of new
 * strings (free with db_strings_free); NULL with errno when it cannot be
 * read. */
static char **
list_dir(const char *dir, int *n)
{
    DIR           *dh = opendir(dir);
    struct dirent *de;
    char         **names = NULL;

    *n = 0;
    if (dh == NULL)
        return NULL;
    while ((de = readdir(dh)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        names = xrealloc(names, (size_t)(*n + 1) * sizeof *names);
        names[(*n)++] = xstrdup(de->d_name);
    }
    closedir(dh);
    if (names == NULL)
        names = xcalloc(1, sizeof *names);
    return names;
}

int
spool_remove_prefix(const char *prefix)
{
    const char *slash = strrchr(prefix, '/');
    char       *dir;
    const char *base;
    size_t      base_len;
    char      **names;
    int         n, rc = 0;

    if (slash == NULL || slash[1] == '\0')
        return -1;
    dir = xasprintf("%.*s", (int)(slash - prefix), prefix);
    base = slash + 1;
    base_len = strlen(base);
    names = list_dir(dir, &n);
    if (names == NULL) {
        rc = errno == ENOENT ? 0 : -1;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        /* "s1-p00002-l7" and "s1-p00002-l7.b3", never "s1-p00002-l77". */
        if (strncmp(names[i], base, base_len) != 0
            || (names[i][base_len] != '\0' && names[i][base_len] != '.'))
            continue;
        char *path = xasprintf("%s/%s", dir, names[i]);
        if (remove_tree(path) < 0) {
            log_warn("removing %s: %s", path, strerror(errno));
            rc = -1;
        }
        free(path);
    }
    db_strings_free(names, n);
done:
    free(dir);
    return rc;
}

/* Non-zero when 'name' is the last component of one of the 'n' paths. */
static int
is_kept(const char *name, const char *const *keep, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(keep[i], '/');
        const char *base = slash ? slash + 1 : keep[i];

        if (strcmp(base, name) == 0)
            return 1;
    }
    return 0;
}

int
spool_clean_job(const char *spool, const char *id, const char *const *keep,
                size_t n_keep)
{
    char *dir, **names;
    int   n, rc = 0;

    if (spool_bad_id(id))
        return -1;
    dir = spool_job_dir(spool, id);
    names = list_dir(dir, &n);
    if (names == NULL) {
        rc = errno == ENOENT ? 0 : -1;
        if (rc < 0)
            log_warn("cleaning job %s: open %s: %s", id, dir, strerror(errno));
        free(dir);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], "artifacts") == 0
            || is_kept(names[i], keep, n_keep))
            continue;
        char *path = xasprintf("%s/%s", dir, names[i]);
        if (remove_tree(path) < 0) {
            log_warn("cleaning job %s: removing %s: %s", id, path,
                     strerror(errno));
            rc = -1;
        }
        free(path);
    }
    db_strings_free(names, n);
    free(dir);
    return rc;
}
