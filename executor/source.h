/*
 * source.h - the byte source of an input file that is not on the local
 * disk: an s3:// object (lib/s3.h) read as a stream from an offset, for
 * csv.h's readers and splitter (csv_reader_new_range_fn, csv_split_fn).
 * The engine sees only source_read, a csv_read_fn; HTTP stays in lib/s3.
 *
 * A stream asks first for the bytes up to a little past the range's end
 * (SOURCE_SLACK_BYTES: enough to finish its last record, as the local
 * reader reads past the end), and only if the reader wants more, for the
 * rest of the object. Every request carries If-Match with the ETag the plan
 * saw, so an object replaced since submission fails the read (SH_EDATA)
 * instead of mixing two versions.
 *
 * The S3 settings are read from the environment once per process (s3.h:
 * s3_config_from_env), at the first s3:// path.
 */
#ifndef SHEAF_SOURCE_H
#define SHEAF_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/err.h"
#include "../lib/s3.h"
#include "plan.h"

/* Bytes read past a range's end before asking for the rest. */
#define SOURCE_SLACK_BYTES (1u << 20)

/* Does the plan file live in object storage (its path is s3://...)? */
int source_is_remote(const plan_file *f);

/*
 * The process's S3 settings (from the environment at the first call), or
 * NULL with 'err' set when they are incomplete. Borrowed; lives as long as
 * the process. Thread-safe.
 */
const s3_config *source_s3_config(sh_err *err);

typedef struct source source;

/*
 * A stream of the bytes of 'f' (an s3:// plan file with size and ETag)
 * from 'start' on, for a reader that needs the records starting before
 * 'end'. NULL with 'err' set (bad URL, no credentials). Nothing is sent
 * until the first read.
 */
source *source_open(const plan_file *f, uint64_t start, uint64_t end,
                    sh_err *err);

/* csv_read_fn: read up to 'n' bytes ('ctx' is a source). */
ssize_t source_read(void *ctx, char *buf, size_t n, sh_err *err);

/* Requests sent so far (the first, its retries, the continuation). */
unsigned source_requests(const source *s);

/* NULL-safe. */
void source_free(source *s);

#endif
