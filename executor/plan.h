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

#include "agg.h"
#include "csv.h"
#include "../lib/err.h"
#include "expr.h"
#include "sort.h"
#include "value.h"

typedef enum plan_format {
    FMT_CSV = 0,
    FMT_JSONL,
    FMT_LINES,
    FMT_PARQUET /* input: row groups of Parquet files (plan_parquet.c);
                   output: one Parquet file per part, merged when served */
} plan_format;

/* Map steps stream row by row inside a stage; combine steps end a stage
 * (their partial half) and start the next (their final half). Each op is
 * a row of the operator table (op.h), in this order. */
typedef enum plan_op {
    OP_FILTER = 0,
    OP_SELECT,
    OP_DERIVE,
    OP_TOKENIZE,
    OP_JOIN,
    OP_PREDICT_NB,
    OP_GROUPBY,
    OP_AGGREGATE,
    OP_DISTINCT,
    OP_SORT,
    OP_LIMIT,
    OP_TRAIN_NB,
    OP_N_OPS /* not an op: the number of ops */
} plan_op;

/* An operator's row of the operator table (op.h; opaque here). */
typedef struct op_def op_def;

/* Default of train_naive_bayes.features: 2^18, as scikit-learn's. */
#define PLAN_NB_FEATURES_DEFAULT 262144u

/* One input file, as resolved at submission. */
typedef struct plan_file {
    char *path; /* absolute path, owned; or "s3://bucket/key" */
    char *rel;  /* path relative to the data root, owned; or the
                   s3:// URL again */
    uint64_t size_bytes;
    int64_t  mtime_ns; /* modification time, to notice a changed file */
    char    *etag;     /* an s3:// object's ETag (owned), else NULL */
} plan_file;

/*
 * One partition: a byte range of one file that begins at a record start.
 * Parquet input: row groups of one file, plan.pq_rgs[start .. end) (then
 * 'line' is 1).
 */
typedef struct plan_part {
    size_t   file;  /* index into plan.files */
    uint64_t start; /* first byte (parquet: first index in pq_rgs) */
    uint64_t end;   /* one past the last byte (parquet: index) */
    uint64_t line;  /* 1-based line number of the first record */
} plan_part;

struct plan;

/* join: the broadcast side and how rows meet. */
typedef struct plan_join {
    struct plan *side;  /* the 'with' input: files, schema, partitions
                           (a plan with no steps; owned). Its 'spec'
                           is the 'with' object, its one stage has a
                           task per partition, and its resolution is
                           stored under "joins" in the plan's */
    size_t *right_on;   /* key columns in side->in_schema (owned) */
    size_t *right_keep; /* side columns appended to each row: all but
                           the keys, in order (owned) */
    size_t  n_keep;
    int     how;     /* JOIN_INNER, ... ('how') */
    size_t *left_on; /* key columns in the step's input (== the
                        step's cols; not owned) */
    int  strategy;   /* JOIN_BROADCAST or JOIN_PARTITIONED */
    char why[256];   /* why that strategy, for the plan */
} plan_join;

/* plan_join.how */
enum { JOIN_INNER, JOIN_LEFT, JOIN_RIGHT, JOIN_FULL, JOIN_SEMI, JOIN_ANTI };

/* plan_join.strategy */
enum { JOIN_BROADCAST, JOIN_PARTITIONED };

/* One compiled step. The input schema of step i is steps[i-1].out (or the
 * plan's in_schema); every step has its 'out'. */
typedef struct plan_step {
    plan_op       op;
    const op_def *def;      /* its operator (op.h): name, halves, ... */
    char          path[32]; /* "steps[2]", for error messages */
    expr         *e;        /* filter: 'where'; derive: 'expr';
                               train_naive_bayes: 'holdout' (NULL: none)
                               (owned) */
    size_t *cols;           /* select: the columns kept; groupby: the keys;
                               distinct: the columns; join: 'on' in the
                               input (owned) */
    size_t n_cols;
    size_t col;         /* derive, tokenize, predict_naive_bayes: index in
                           'out' of the column it writes (== the input's
                           width when it appends one) */
    size_t src_col;     /* tokenize: the text column; train/predict
                           naive Bayes: 'text' */
    size_t   label_col; /* train_naive_bayes: 'label' */
    int      lowercase; /* tokenize: 'lowercase' (default 1) */
    agg_def *aggs;      /* groupby, aggregate: the functions, in the
                           order of the output columns after the keys
                           (owned) */
    size_t    n_aggs;
    sort_key *keys; /* sort: 'by' (owned) */
    size_t    n_keys;
    uint64_t  limit;   /* limit: 'n'; sort: the n of a limit right after
                          it (a top-n), 0 for none */
    uint32_t features; /* train_naive_bayes: hash buckets */
    char    *model;    /* predict_naive_bayes: path of the model file
                          (plan_env.resolve_model's answer for the job
                          'model' names) */
    plan_join *join;   /* join (owned) */
    schema    *out;    /* the row schema after this step (owned) */
} plan_step;

/*
 * A stage: a source, map steps, a sink. Stage 0 reads the input
 * partitions; a later stage starts with the final half of the combine step
 * that ended the stage before ('src'), reading that stage's outputs.
 * A stage ends with the partial half of the next combine step ('sink') or,
 * in the last stage, with the output writer (sink -1).
 */
typedef struct plan_stage {
    long src;         /* combine step whose final half feeds the stage;
                         -1 for stage 0 */
    size_t map_begin; /* map steps run: steps[map_begin .. map_end) */
    size_t map_end;
    long   sink;    /* combine step whose partial half ends the stage;
                       -1 for the output writer */
    size_t n_tasks; /* stage 0: n_parts; after a groupby or distinct:
                       the hash buckets (1..PLAN_MAX_BUCKETS); after
                       aggregate, sort, limit, train_naive_bayes: 1 */
} plan_stage;

/* Hash buckets of a groupby or distinct, at most; so as many tasks finish
 * it in parallel. */
#define PLAN_MAX_BUCKETS 16

/* The default cap on the partitions of one job (SPEC: 100,000;
 * SHEAF_MAX_PARTITIONS), and on a job's name (SPEC: 256 characters). */
#define PLAN_MAX_PARTITIONS 100000
#define PLAN_NAME_MAX_CHARS 256
/* The ranges of the job options (SPEC section 1): at most 20 attempts,
 * 30 days of run time, 10 years of retention. */
#define PLAN_MAX_ATTEMPTS_MAX 20
#define PLAN_TIMEOUT_S_MAX    (30LL * 86400)
#define PLAN_RETENTION_S_MAX  (3650LL * 86400)

typedef struct plan {
    json_t *spec; /* the job spec (a reference is held) */
    char   *name; /* spec.name or "" (owned) */

    plan_format in_format;
    int         in_gzip; /* input compressed with gzip (input.compression
                            "gzip", or a path ending ".gz"): one
                            partition per file */
    csv_dialect dialect;
    schema     *in_schema;     /* columns of the input, typed (owned) */
    int         on_error_skip; /* input.on_error == "skip" */
    uint64_t    partition_bytes;
    uint64_t    max_parts; /* refuse an input cut into more partitions
                              (env->max_partitions; 0: the default) */

    plan_file *files; /* owned array */
    size_t     n_files;
    plan_part *parts; /* owned array, in input order */
    size_t     n_parts;
    size_t    *pq_rgs; /* parquet: the row groups read, file by file
                          (indices in their file), that the parts
                          cut into ranges (owned) */
    size_t   n_pq_rgs;
    uint64_t pq_rg_total;   /* parquet: row groups in the files */
    uint64_t pq_rg_skipped; /* parquet: row groups the first filter's
                               comparisons ruled out by statistics */

    /* Stages: the pipeline cut at combine steps; at least one. Stage 0
     * has a task per partition; each later stage reads the outputs of the
     * one before. */
    plan_stage *stages; /* owned array */
    size_t      n_stages;
    size_t     *stage_tasks; /* stages[i].n_tasks, for the database
                                (owned) */

    plan_step    *steps; /* owned array */
    size_t        n_steps;
    const schema *out_schema; /* the result's schema (borrowed from the
                                 last step, or in_schema) */

    plan_format out_format;  /* FMT_CSV, FMT_JSONL or FMT_PARQUET */
    int         out_gzip;    /* output.compression == "gzip" (csv, jsonl) */
    int         out_codec;   /* parquet: PQ_C_* of output.compression */
    uint64_t    out_rg_rows; /* parquet: output.row_group_rows */

    int     max_attempts; /* per partition, 1..100, default 3 */
    int     timeout_s;    /* 0 = none */
    int     priority;     /* higher runs first, default 0 */
    int64_t retention_s;  /* default 604800 */
} plan;

/*
 * Find the model file that job 'job_id' trained (predict_naive_bayes's
 * "model": "job:<job_id>"), for the caller's 'ctx'. Returns 0 and
 * *path_out (malloc'ed; the planner owns it), SH_ENOENT when that job has
 * no model (the planner words the 400), or another error with its message
 * in 'err'.
 */
typedef int (*plan_model_fn)(const void *ctx, const char *job_id,
                             char **path_out, sh_err *err);

/*
 * Find the uploaded dataset 'ref' (its id or name: "input": {"dataset":
 * ref}) for the caller's 'ctx'. Returns 0 and *file_out (malloc'ed; the
 * planner owns it), the dataset's file name relative to
 * plan_env.datasets_root, or an s3:// URL (the dataset's object in the
 * service's store, read as an s3:// input); SH_ENOENT when there is no
 * such dataset (the
 * planner words the 400), or another error with its message in 'err'.
 * The executor knows nothing of where datasets are recorded.
 */
typedef int (*plan_dataset_fn)(void *ctx, const char *ref, char **file_out,
                               sh_err *err);

/* What a plan is built against: the service's configuration. */
typedef struct plan_env {
    const char   *data_root;         /* SHEAF_DATA_ROOT */
    plan_model_fn resolve_model;     /* NULL: no job has a model */
    const void   *model_ctx;         /* passed to resolve_model */
    uint64_t      mem_bytes;         /* SHEAF_MEMORY_MB: a join side larger
                                        than this is refused */
    uint64_t max_partitions;         /* SHEAF_MAX_PARTITIONS; 0: the
                                        default, PLAN_MAX_PARTITIONS */
    const char *datasets_root;       /* where dataset files are (an input
                                        with "dataset" reads a file under it);
                                        NULL: no datasets */
    plan_dataset_fn resolve_dataset; /* plan_build only; NULL: none */
    void           *dataset_ctx;     /* passed to resolve_dataset */
} plan_env;

/*
 * Validate 'spec' (borrowed; a reference is taken) and build its plan:
 * resolve input.path under env->data_root (refusing absolute paths, "..",
 * and symlinks that leave the root), read the header and a sample to type
 * the columns (input.columns override), cut the files into partitions,
 * compile every step, cut the stages. Returns 0 and sets *out (free with
 * plan_free), or SH_EINVAL / SH_ENOENT / SH_EDATA / SH_EIO with err->path
 * naming the field at fault.
 */
int plan_build(json_t *spec, const plan_env *env, plan **out, sh_err *err);

/*
 * The resolution plan_build made, as JSON to store beside the spec:
 * {"files": [{"path", "size", "mtime_ns"}], "schema": [{"name","type"}],
 *  "parts": [[file, start, end, line], ...]}, and when there are join
 * steps "joins": {"<step index>": <the side's resolution>}. The caller
 * owns the result.
 */
json_t *plan_resolution(const plan *p);

/*
 * Rebuild a plan from 'spec' and a stored 'resolution' (both borrowed)
 * without reading the input. Returns 0 and sets *out, or an error.
 */
int plan_load(json_t *spec, json_t *resolution, const plan_env *env, plan **out,
              sh_err *err);

/*
 * What POST /v1/jobs/validate returns: the input schema, the output schema,
 * the partitions, each step's op and output schema, and the stages with
 * their tasks and the steps (and halves of combine steps) they run; see
 * plan.c and stages.c for the exact shape. The caller owns the result.
 */
json_t *plan_describe(const plan *p);

/*
 * Which input columns stage 0 must read: those live at the input, going
 * back from the output (all of whose columns are live) through every step.
 * 'need' gets p->in_schema->n entries (1: read it).
 */
void plan_needed_columns(const plan *p, unsigned char *need);

void plan_free(plan *p);

#endif
