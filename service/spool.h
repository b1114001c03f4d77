/*
 * spool.h - the layout of SHEAF_SPOOL: where a job's partition outputs,
 * partials and spill files live, and their removal.
 *
 *   SPOOL/jobs/JOB_ID/   every file of one job
 */
#ifndef SHEAF_SPOOL_H
#define SHEAF_SPOOL_H

/* The directory of job 'id' under 'spool'; the caller frees it. */
char *spool_job_dir(const char *spool, const char *id);

/* Remove the directory of job 'id' and everything in it. Returns 0 or -1
 * (a missing directory is not an error). */
int spool_remove_job(const char *spool, const char *id);

#endif
