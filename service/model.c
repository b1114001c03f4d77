/*
 * model.c - the models of train_naive_bayes jobs, found in the spool for
 * the planner (model.h).
 */
#include "model.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "../lib/util.h"
#include "spool.h"

int
model_resolve(const void *spool, const char *job_id, char **path_out,
              sh_err *err)
{
    char       *dir = spool_job_dir(spool ? spool : ".", job_id);
    char       *file = xasprintf("%s/artifacts/model", dir);
    struct stat sb;

    free(dir);
    *path_out = NULL;
    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(file);
        return sh_err_set(err, SH_ENOENT, "", "job %s has no model", job_id);
    }
    *path_out = file;
    return 0;
}
