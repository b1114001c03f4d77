/*
 * store.c - results uploaded to object storage (see store.h).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/util.h"
#include "spool.h"

#define STORE_PIECE_BYTES (8u << 20) /* S3 wants parts of >= 5 MiB */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int            g_on;
static s3_config      g_cfg;
static char          *g_bucket;
static char          *g_prefix;

static void
store_init(void)
{
    const char *url = getenv("SHEAF_STORE");
    sh_err      err;
    size_t      n;

    if (url == NULL || !s3_is_url(url))
        return;
    if (s3_parse_url(url, 1, "", &g_bucket, &g_prefix, &err) != 0) {
        fprintf(stderr, "sheafd: SHEAF_STORE: %s; results stay in the "
                "spool\n", err.msg);
        return;
    }
    if (s3_config_from_env(&g_cfg, &err) != 0) {
        fprintf(stderr, "sheafd: SHEAF_STORE: %s; results stay in the "
                "spool\n", err.msg);
        return;
    }
    n = strlen(g_prefix);
    while (n > 0 && g_prefix[n - 1] == '/')
        g_prefix[--n] = '\0';
    g_on = 1;
}

int
store_get(const s3_config **cfg, const char **bucket, const char **prefix)
{
    pthread_once(&g_once, store_init);
    if (!g_on)
        return 0;
    if (cfg)
        *cfg = &g_cfg;
    if (bucket)
        *bucket = g_bucket;
    if (prefix)
        *prefix = g_prefix;
    return 1;
}

char *
store_result_key(const char *job_id)
{
    const char *prefix = "";

    store_get(NULL, NULL, &prefix);
    return xasprintf("%s%sresults/%s/result", prefix, prefix[0] ? "/" : "",
                     job_id);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The part files of stage 'stage' in 'dir', sorted (so in part order).
 * Returns how many, or -1 with errno. */
static long
list_parts(const char *dir, int stage, char ***out)
{
    DIR           *dh = opendir(dir);
    struct dirent *de;
    char           pre[32];
    char         **v = NULL;
    size_t         n = 0, cap = 0;

    *out = NULL;
    if (dh == NULL)
        return -1;
    snprintf(pre, sizeof pre, "s%d-p", stage);
    while ((de = readdir(dh)) != NULL) {
        if (strncmp(de->d_name, pre, strlen(pre)) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n++] = xstrdup(de->d_name);
    }
    closedir(dh);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return (long)n;
}

int
store_publish_result(const char *spool, const char *job_id, int stage,
                     size_t n_parts, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char           **names = NULL, *key = NULL, *buf = NULL, *dir;
    s3_upload       *u = NULL;
    size_t           i, fill = 0, sent = 0;
    long             n;
    int              rc = 0, fd = -1;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    dir = spool_job_dir(spool, job_id);
    n = list_parts(dir, stage, &names);
    if (n < 0) {
        rc = sh_err_set(err, SH_EIO, "", "cannot list %s: %s", dir,
                        strerror(errno));
        free(dir);
        return rc;
    }
    /* Exactly one file per part, numbered 0 to n_parts - 1. */
    if ((size_t)n != n_parts)
        rc = SH_ESTATE;
    for (i = 0; rc == 0 && i < n_parts; i++) {
        char want[32];

        snprintf(want, sizeof want, "s%d-p%05zu-", stage, i);
        if (strncmp(names[i], want, strlen(want)) != 0)
            rc = SH_ESTATE;
    }
    if (rc != 0) {
        sh_err_set(err, SH_ESTATE, "",
                   "job %s: %ld result files for %zu parts; the result "
                   "stays in the spool", job_id, n, n_parts);
        goto done;
    }
    key = store_result_key(job_id);
    if ((u = s3_upload_begin(c, bucket, key, err)) == NULL) {
        rc = err->code ? err->code : SH_EIO;
        goto done;
    }
    buf = xmalloc(STORE_PIECE_BYTES);
    for (i = 0; rc == 0 && i < n_parts; i++) {
        char   *path = xasprintf("%s/%s", dir, names[i]);
        ssize_t k;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = sh_err_set(err, SH_EIO, "", "cannot open %s: %s", path,
                            strerror(errno));
        }
        free(path);
        while (rc == 0 && (k = read(fd, buf + fill,
                                    STORE_PIECE_BYTES - fill)) != 0) {
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                rc = sh_err_set(err, SH_EIO, "", "cannot read %s: %s",
                                names[i], strerror(errno));
                break;
            }
            fill += (size_t)k;
            if (fill == STORE_PIECE_BYTES) {
                rc = s3_upload_part(u, buf, fill, err);
                fill = 0;
                sent++;
            }
        }
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    /* The last piece (the only one of an empty result: one empty part). */
    if (rc == 0 && (fill > 0 || sent == 0))
        rc = s3_upload_part(u, buf, fill, err);
    if (rc == 0)
        rc = s3_upload_complete(u, err);

done:
    if (u != NULL && rc != 0) {
        sh_err keep = *err;

        s3_upload_abort(u, NULL);
        *err = keep;
    }
    s3_upload_free(u);
    for (i = 0; names && i < (size_t)(n > 0 ? n : 0); i++)
        free(names[i]);
    free(names);
    free(buf);
    free(key);
    free(dir);
    return rc;
}
