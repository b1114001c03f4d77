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
 * The spool's shuffle files go through the store too, so that nodes with
 * spools of their own (separate hosts) can run the tasks of one job: an
 * attempt's files are uploaded under "PREFIX/spool/JOB/NAME" before the
 * attempt is recorded done, with "PREFIX/spool/JOB/BASE@files" (the list
 * of its files and sizes) last; a task of a later stage, or the worker
 * that publishes the result, fetches the committed outputs of other nodes
 * into its own spool (once per node). Node-local scratch (spill files)
 * stays on local disk.
 *
 * A succeeded job's artifacts (artifacts.c: "PREFIX/artifacts/JOB/NAME")
 * are uploaded with its result, each as one multipart upload (aborted
 * when it fails); the artifact routes serve them from there when this
 * node's spool does not hold them, and a model reference "job:ID" on a
 * node without that job's model fetches it into the spool first
 * (SPOOL/jobs/JOB/model.store, beside the artifacts directory so that the
 * node's artifact listing does not take it for the job's: model.c). Deleting a
 * job removes its result and artifacts objects.
 *
 * An uploaded dataset (datasets.c) is uploaded too, once its body is in
 * and verified and before its row is inserted ("PREFIX/datasets/FILE",
 * FILE its spool file's name, "ID" or "ID.gz"); an upload the store
 * refuses keeps nothing. A job reading a dataset reads that object (its
 * input resolves to the s3:// URL: ranged GETs on whatever node runs the
 * task), except a gzip dataset, which is still read from the spool of
 * the node it was uploaded to (gzip input from object storage is not
 * supported yet). DELETE of a dataset removes its object.
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
int store_get(const s3_config **cfg, const char **bucket, const char **prefix);

/* The key of job 'job_id''s result object; the caller frees it. */
char *store_result_key(const char *job_id);

/*
 * Upload the result of job 'job_id': the 'n_parts' files 'parts' (local
 * paths of its committed result parts, in part order: see
 * store_fetch_outputs), concatenated, as one multipart upload in pieces
 * of at least 8 MiB. Returns 0 (also when the store is off), or the
 * upload's error, after aborting it.
 */
int store_publish_result(const char *job_id, const char *const *parts,
                         size_t n_parts, sh_err *err);

/*
 * Upload the files of the attempt whose outputs are named 'prefix' (an
 * absolute path under the spool: the file 'prefix' itself, if any, and
 * every "<prefix>.<suffix>" beside it) to the store, then their list.
 * Returns 0 (also when the store is off), or the store's error.
 */
int store_put_outputs(const char *job_id, const char *prefix, sh_err *err);

/*
 * Remove from the store what store_put_outputs sent for 'prefix' (an
 * attempt whose commit was refused). Errors are logged, not returned.
 */
void store_drop_outputs(const char *job_id, const char *prefix);

/* Called between the files a fetch downloads; non-zero stops it. */
typedef int (*store_tick_fn)(void *ctx);

/*
 * The local paths, under this node's 'spool', of the committed outputs
 * 'paths' (absolute paths, perhaps of another node's spool) of job
 * 'job_id': each is 'spool'/jobs/JOB/BASE; an output written by another
 * node is fetched from the store first (once: a marker "fetched-BASE"
 * says it is complete). *local gets 'n' strings (free with
 * store_paths_free). With the store off, *local is a copy of 'paths'.
 * *fetched_bytes (may be NULL) gets the bytes downloaded. 'tick' (may be
 * NULL) is called with 'ctx' after every file fetched (a worker renews
 * its lease there); non-zero from it stops the fetch with SH_ECANCELED.
 * Returns 0, or the store's error (SH_ENOENT: an output is not in the
 * store).
 */
int store_fetch_outputs(const char *spool, const char *job_id,
                        const char *const *paths, size_t n, char ***local,
                        uint64_t *fetched_bytes, store_tick_fn tick, void *ctx,
                        sh_err *err);

/* Free what store_fetch_outputs returned (NULL-safe). */
void store_paths_free(char **paths, size_t n);

/*
 * Remove every shuffle object of job 'job_id' from the store (its
 * "PREFIX/spool/JOB/" objects). Returns 0 (also when off) or an error.
 */
int store_drop_job(const char *job_id, sh_err *err);

/* The key of artifact 'name' of job 'job_id' ("": the prefix of all of
 * them); the caller frees it. */
char *store_artifact_key(const char *job_id, const char *name);

/*
 * Upload the artifacts of job 'job_id' (the files of its artifacts
 * directory under 'spool' whose names are artifact names), each as one
 * multipart upload. Returns 0 (also when the store is off or the job has
 * none), or the first upload's error (that upload aborted).
 */
int store_publish_artifacts(const char *spool, const char *job_id, sh_err *err);

/*
 * The artifacts of job 'job_id' in the store: *objs (free with
 * s3_objects_free) gets *n objects whose keys are the artifact names, in
 * name order. Returns 0 (none when the store is off) or the store's error.
 */
int store_list_artifacts(const char *job_id, s3_object **objs, size_t *n,
                         sh_err *err);

/*
 * Download artifact 'name' of job 'job_id' from the store to file 'path'
 * (through a temporary name beside it; its directory must exist).
 * Returns 0, SH_ENOENT (not in the store, or the store is off) or an
 * error.
 */
int store_fetch_artifact(const char *job_id, const char *name, const char *path,
                         sh_err *err);

/*
 * Remove job 'job_id''s published objects (result and artifacts) from the
 * store. Returns 0 (also when off) or the first error; the other objects
 * are still removed.
 */
int store_drop_published(const char *job_id, sh_err *err);

/* The key of the dataset whose spool file is named 'file' ("ID" or
 * "ID.gz", datasets.c); the caller frees it. */
char *store_dataset_key(const char *file);

/*
 * Upload the dataset file 'path' (named 'file' in the spool) as one
 * multipart upload. Returns 0 (also when the store is off) or the
 * upload's error (the upload aborted: no object).
 */
int store_put_dataset(const char *path, const char *file, sh_err *err);

/*
 * The s3:// URL of dataset 'file' in the store, for a job to read it
 * there (ranged GETs) whatever node runs it; NULL when the store is off,
 * the object is not there with 'size' bytes (uploaded before the store
 * was on), or the dataset is gzip (not read from object storage yet: it
 * is read from the spool). The caller frees it.
 */
char *store_dataset_url(const char *file, uint64_t size);

/* Remove dataset 'file''s object. Returns 0 (also when off) or an error. */
int store_drop_dataset(const char *file, sh_err *err);

#endif
