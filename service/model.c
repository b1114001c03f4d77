/*
 * model.c - the models of train_naive_bayes jobs, found in the spool for
 * the planner (model.h), or fetched from the store (store.h) when another
 * node ran the training job.
 */
#include "model.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "../lib/fsys.h"
#include "../lib/util.h"
#include "log.h"
#include "spool.h"
#include "store.h"

/* Non-zero when 'path' is a regular file. */
static int
is_file(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int
model_resolve(const void *spool, const char *job_id, char **path_out,
              sh_err *err)
{
    char  *dir = spool_job_dir(spool ? spool : ".", job_id);
    char  *file = xasprintf("%s/artifacts/model", dir);
    sh_err e;
    int    rc = 0;

    *path_out = NULL;
    if (is_file(file))
        goto done;
    /* SHEAF_STORE: a model another node made, fetched once. */
    free(file);
    file = xasprintf("%s/model.store", dir);
    if (is_file(file) || !store_get(NULL, NULL, NULL))
        goto done;
    if (fsys_mkdir_p(dir, 0755) < 0)
        log_warn("job %s: cannot create %s for its model", job_id, dir);
    else if (store_fetch_artifact(job_id, "model", file, &e) != 0
             && e.code != SH_ENOENT)
        log_warn("job %s: its model from the store: %s", job_id, e.msg);
done:
    if (!is_file(file)) {
        free(file);
        file = NULL;
        rc = sh_err_set(err, SH_ENOENT, "", "job %s has no model", job_id);
    }
    *path_out = file;
    free(dir);
    return rc;
}
