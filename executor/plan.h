/*
 * plan.h - a job spec (SPEC section 2), validated and turned into a plan:
 * the resolved input files, their schema, the byte-range partitions, and the
 * compiled steps with the schema after each.
 *
 * plan_build does everything a submission needs (it reads the input's header
 * and a sample, and scans the files to cut partitions), so every error in a
 * spec is found at the door. plan_load rebuilds the same plan in a worker
 * from the spec and the stored resolution, without touching the files.
 * The executor knows nothing of HTTP or PostgreSQL; plans are plain data.
 */
#ifndef SHEAF_PLAN_H
#define SHEAF_PLAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "csv.h"
#include "err.h"
#include "expr.h"
#include "value.h"

typedef enum plan_format {
    FMT_CSV = 0,
    FMT_JSONL,
    FMT_LINES
} plan_format;

typedef enum plan_op {
    OP_FILTER = 0,
    OP_SELECT,
    OP_DERIVE
} plan_op;

/* One input file, as resolved at submission. */
typedef struct plan_file {
    char    *path;     /* absolute path, owned */
    char    *rel;      /* path relative to the data root, owned */
    uint64_t size_bytes;
    int64_t  mtime_ns; /* modification time, to notice a changed file */
} plan_file;

/* One partition: a byte range of one file that begins at a record start. */
typedef struct plan_part {
    size_t   file;     /* index into plan.files */
    uint64_t start;    /* first byte */
    uint64_t end;      /* one past the last byte */
    uint64_t line;     /* 1-based line number of the first record */
} plan_part;

/* One compiled step. */
typedef struct plan_step {
    plan_op  op;
    char     path[32];  /* "steps[2]", for error messages */
    expr    *e;         /* filter: 'where'; derive: 'expr' (owned) */
    size_t  *cols;      /* select: input column indexes (owned) */
    size_t   n_cols;
    size_t   col;       /* derive: index in 'out' of the column it writes
                           (== the input's width when it appends one) */
    schema  *out;       /* the row schema after this step (owned) */
} plan_step;

typedef struct plan {
    json_t     *spec;        /* the job spec (a reference is held) */
    char       *name;        /* spec.name or "" (owned) */

    plan_format in_format;
    csv_dialect dialect;
    schema     *in_schema;   /* columns of the input, typed (owned) */
    int         on_error_skip; /* input.on_error == "skip" */
    uint64_t    partition_bytes;

    plan_file  *files;       /* owned array */
    size_t      n_files;
    plan_part  *parts;       /* owned array, in input order */
    size_t      n_parts;

    /* Stages: the pipeline cut at combine steps. Stage 0 has a task per
     * partition; each later stage reads the outputs of the one before.
     * 0 stages means one stage of n_parts tasks (a map-only job). */
    size_t      n_stages;
    size_t     *stage_tasks; /* tasks of each stage (owned) */

    plan_step  *steps;       /* owned array */
    size_t      n_steps;
    const schema *out_schema; /* the result's schema (borrowed from the
                                 last step, or in_schema) */

    plan_format out_format;  /* FMT_CSV or FMT_JSONL */
    int         out_gzip;    /* output.compression == "gzip" */

    int         max_attempts; /* per partition, 1..100, default 3 */
    int         timeout_s;    /* 0 = none */
    int         priority;     /* higher runs first, default 0 */
    int64_t     retention_s;  /* default 604800 */
} plan;

/*
 * Validate 'spec' (borrowed; a reference is taken) and build its plan:
 * resolve input.path under 'data_root' (refusing absolute paths, "..", and
 * symlinks that leave the root), read the header and a sample to type the
 * columns (input.columns override), cut the files into partitions, compile
 * every step. Returns 0 and sets *out (free with plan_free), or SH_EINVAL /
 * SH_ENOENT / SH_EDATA / SH_EIO with err->path naming the field at fault.
 */
int plan_build(json_t *spec, const char *data_root, plan **out, sh_err *err);

/*
 * The resolution plan_build made, as JSON to store beside the spec:
 * {"files": [{"path", "size", "mtime_ns"}], "schema": [{"name","type"}],
 *  "parts": [[file, start, end, line], ...]}. The caller owns the result.
 */
json_t *plan_resolution(const plan *p);

/*
 * Rebuild a plan from 'spec' and a stored 'resolution' (both borrowed)
 * without reading the input. Returns 0 and sets *out, or an error.
 */
int plan_load(json_t *spec, json_t *resolution, const char *data_root,
              plan **out, sh_err *err);

/*
 * What POST /v1/jobs/validate returns: the input schema, the output schema,
 * the partitions and the stages. The caller owns the result.
 */
json_t *plan_describe(const plan *p);

void plan_free(plan *p);

#endif
