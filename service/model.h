/*
 * model.h - where the service keeps the models that train_naive_bayes
 * jobs made, for the planner's plan_env.resolve_model (plan.h): the
 * executor is handed a model's path, never a job id to turn into one.
 */
#ifndef SHEAF_MODEL_H
#define SHEAF_MODEL_H

#include "../lib/err.h"

/*
 * A plan_model_fn: the model file of job 'job_id' under the spool
 * directory 'spool' (a const char *), SPOOL/jobs/JOB_ID/artifacts/model
 * (spool.h), or, with SHEAF_STORE, SPOOL/jobs/JOB_ID/model.store fetched
 * from the store once when another node made it (store.h). Returns 0 and
 * *path_out (malloc'ed; the caller frees it), or
 * SH_ENOENT when that job has no model file.
 */
int model_resolve(const void *spool, const char *job_id, char **path_out,
                  sh_err *err);

#endif
