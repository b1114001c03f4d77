/*
 * spool.h - the layout of SHEAF_SPOOL: where a job's task outputs, partials,
 * spill files, results and artifacts live, and their removal. Every path
 * under the spool is built here, and nowhere else.
 *
 *   SPOOL/jobs/JOB_ID/                          every file of one job
 *   SPOOL/jobs/JOB_ID/sS-pNNNNN-lL.csv[.gz]      a result part: task N of
 *                    (or .jsonl[.gz])           the last stage S, attempt
 *                                               with lease L
 *   SPOOL/jobs/JOB_ID/sS-pNNNNN-lL.*            what task N of a stage S
 *                                               before the last passes on
 *                                               (the executor's suffixes)
 *   SPOOL/jobs/JOB_ID/tmp-sS-pNNNNN-lL*         an attempt's spill files
 *   SPOOL/jobs/JOB_ID/artifacts/NAME            train_naive_bayes' report
 *                                               and model
 *   SPOOL/datasets/ID[.gz]                      an uploaded dataset
 *   SPOOL/datasets/ID[.gz].tmp                  one being uploaded
 *
 * Once a job has ended, everything but its committed result parts (when it
 * succeeded) and its artifacts goes (worker.c cleans ended jobs); deleting the
 * job or its retention passing removes the whole directory.
 */
#ifndef SHEAF_SPOOL_H
#define SHEAF_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "config.h"
#include "db.h"

/* The directory of job 'id' under 'spool'; the caller frees it. */
char *spool_job_dir(const char *spool, const char *id);

/* The directory of uploaded datasets (the "datasets root" jobs read them
 * under); the caller frees it. */
char *spool_datasets_dir(const char *spool);

/* The path of dataset file 'file' (one path segment, from the database);
 * the caller frees it. */
char *spool_dataset_path(const char *spool, const char *file);

/*
 * The SHA-256 of the file 'path' as 64 lower-case hex digits, read in
 * blocks; *bytes gets its size as read. Returns 0, or SH_EIO with 'err'
 * naming the file.
 */
int spool_file_sha256(const char *path, uint64_t *bytes, char hex[65],
                      sh_err *err);

/* The artifacts directory of job 'id'; the caller frees it. */
char *spool_artifacts_dir(const char *spool, const char *id);

/* The path of artifact 'name' of job 'id' ('name' is one path segment,
 * checked by the caller); the caller frees it. */
char *spool_artifact_path(const char *spool, const char *id, const char *name);

/*
 * What the attempt with lease 'lease' of task 'part' of stage 'stage' of
 * job 'id' writes: with 'ext' ("csv", "jsonl.gz"...), the result part
 * "sS-pNNNNN-lL.EXT" of the last stage; with 'ext' NULL, the prefix
 * "sS-pNNNNN-lL" of the files an earlier stage passes on. The caller
 * frees it.
 */
char *spool_task_output(const char *spool, const char *id, int stage, int part,
                        int64_t lease, const char *ext);

/* The prefix "tmp-sS-pNNNNN-lL" of that attempt's spill files; the caller
 * frees it. */
char *spool_task_scratch(const char *spool, const char *id, int stage, int part,
                         int64_t lease);

/* Remove the directory of job 'id' and everything in it. Returns 0 or -1
 * (a missing directory is not an error). */
int spool_remove_job(const char *spool, const char *id);

/*
 * Remove the files an attempt wrote under 'prefix' (a path): the file
 * 'prefix' itself and every "<prefix>.<suffix>" beside it (a stage's
 * outputs, their temporary names). Returns 0, or -1 when one could not be
 * removed (a missing file is not an error).
 */
int spool_remove_prefix(const char *prefix);

/*
 * Remove everything in the directory of job 'id' except its "artifacts"
 * directory and the files whose names are those of the 'n_keep' paths of
 * 'keep' (the committed result parts; may be NULL). Returns 0 or -1 (a
 * missing directory is not an error).
 */
int spool_clean_job(const char *spool, const char *id, const char *const *keep,
                    size_t n_keep);

#endif
