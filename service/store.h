/*
 * store.h - results in object storage: with SHEAF_STORE=s3://bucket/prefix
 * the result of a succeeded job is uploaded, once the job has succeeded,
 * as one object (multipart upload of its parts, in order), and the result
 * route serves it from there (streamed, or a redirect to a presigned URL
 * with SHEAF_S3_PRESIGN=1). A job that fails or is cancelled uploads
 * nothing; an upload that fails is aborted (no partial object, no parts
 * left) and the result is still served from the spool. Local disk (the
 * spool) stays the default and the fallback.
 *
 * Not yet in the store: datasets, artifacts, the spool's shuffle files.
 */
#ifndef SHEAF_STORE_H
#define SHEAF_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../lib/s3.h"

/*
 * The store of this process: 1 with *cfg (the S3 settings), *bucket and
 * *prefix (without a trailing '/'; may be "") when SHEAF_STORE is an
 * s3:// URL and the credentials are set, else 0. Borrowed, process-wide,
 * read once from the environment; thread-safe.
 */
int store_get(const s3_config **cfg, const char **bucket,
              const char **prefix);

/* The key of job 'job_id''s result object; the caller frees it. */
char *store_result_key(const char *job_id);

/*
 * Upload the result of job 'job_id' from its directory in 'spool': the
 * files "s<stage>-pNNNNN-*" of its last stage 'stage', which must be
 * exactly one per part for parts 0 to n_parts - 1 (the job's files already
 * cleaned to its committed outputs), concatenated in part order, as one
 * multipart upload in pieces of at least 8 MiB. Returns 0 (also when the
 * store is off); SH_ESTATE when the files are not one per part (nothing
 * sent); or the upload's error, after aborting it.
 */
int store_publish_result(const char *spool, const char *job_id, int stage,
                         size_t n_parts, sh_err *err);

#endif
