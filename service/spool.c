/*
 * spool.c - job directories under SHEAF_SPOOL (see spool.h).
 */
#define _XOPEN_SOURCE 700
#include "spool.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../executor/util.h"

char *
spool_job_dir(const char *spool, const char *id)
{
    return xasprintf("%s/jobs/%s", spool, id);
}

static int
remove_one(const char *path, const struct stat *st, int flag,
           struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int
spool_remove_job(const char *spool, const char *id)
{
    char *dir;
    int   rc;

    /* Never let a strange id walk out of the spool. */
    if (id[0] == '\0' || strchr(id, '/') || strcmp(id, "..") == 0 ||
        strcmp(id, ".") == 0)
        return -1;
    dir = spool_job_dir(spool, id);
    rc = nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rc < 0 && errno == ENOENT)
        rc = 0;
    free(dir);
    return rc;
}
