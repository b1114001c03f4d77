/*
 * plan_int.h - the private parts of the planner shared by plan.c (the job
 * spec, the stored resolution, the description), plan_input.c (an input
 * object), spec.c (reading JSON fields with errors that name them), op_table.c
 * and the operators' files (checking and compiling the steps; op.h),
 * stages.c (cutting the pipeline into stages), resolve.c (input.path under
 * the data root) and infer.c (headers, type inference and partitions).
 * Nothing outside the planner and the operators includes it.
 */
#ifndef SHEAF_PLAN_INT_H
#define SHEAF_PLAN_INT_H

#include <jansson.h>
#include <stddef.h>

#include "../lib/err.h"
#include "plan.h"
#include "../lib/util.h"

/* More files than this in one input is refused at submission. */
#define PLAN_MAX_FILES 100000

/* Type inference reads at most this many records, or this many bytes. */
#define PLAN_SAMPLE_RECORDS 10000
#define PLAN_SAMPLE_BYTES   (8u << 20)

/*
 * The real path of 'data_root' (symlinks resolved), malloc'ed, or NULL with
 * SH_EIO in 'err' when it does not exist.
 */
char *plan_root_real(const char *data_root, sh_err *err);

/* Does the relative path 's' have a ".." component? */
int plan_path_has_dotdot(const char *s);

/*
 * Check the input.path pattern 'pattern' ('len' bytes as the spec gave it,
 * so an embedded NUL is noticed) and expand it under 'root_real' (a real
 * path from plan_root_real). On success *files is a malloc'ed array of
 * *n_files entries, in the glob's (byte-wise sorted) order, each with its
 * absolute real path, its path relative to the root, size and mtime; the
 * caller frees each entry's strings and the array. Errors are SH_EINVAL
 * with err->path "input.path", or SH_EIO.
 */
int plan_resolve_files(const char *root_real, const char *pattern, size_t len,
                       plan_file **files, size_t *n_files, sh_err *err);

/*
 * plan_resolve_files for an s3:// pattern (resolve_s3.c): "s3://b/key", or
 * a glob in the key ("s3://b/logs/2024-*.csv": '*', '?' and '[...]' match
 * within one '/'-separated part, as fnmatch(3) with FNM_PATHNAME and
 * FNM_PERIOD), listed with ListObjectsV2 by the key's prefix before its
 * first metacharacter. Each file's path and rel are the object's URL, with
 * its size and ETag (mtime_ns 0). Errors as plan_resolve_files (SH_EIO for
 * S3 failures, message from S3).
 */
int plan_resolve_s3(const char *pattern, size_t len, plan_file **files,
                    size_t *n_files, sh_err *err);

/*
 * Read the header of every file of 'p' (p->files, p->dialect and
 * p->partition_bytes set), check that the files agree on it, infer the
 * column types from a sample and cut the files into partitions. Sets
 * p->in_schema (the inferred types; input.columns is applied later) and
 * p->parts, and refreshes each file's size and mtime from the open file.
 * Returns 0, SH_EINVAL (headers; err->path "input.path"; or too many
 * partitions: "input.partition_size"), SH_EDATA (unreadable data) or SH_EIO.
 */
int plan_scan_input(plan *p, sh_err *err);

/*
 * Append to 'sb' the names of 'sc' joined by ", " (cut short with "..." when
 * long), or "(none)" when it has no columns; for "columns are: ..." hints.
 */
void plan_list_columns(const schema *sc, strbuf *sb);

/* ---- spec.c: reading the spec's JSON -------------------------------- */

/* Number of ops: plan_op values are 0 .. PLAN_N_OPS - 1. */
#define PLAN_N_OPS ((int)OP_N_OPS)

/* printf a JSON path into 'buf' (cut short if it is too long). */
void plan_path_fmt(char buf[SH_ERR_PATH_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 'base.key' (or 'key' when base is empty) into 'buf'. */
void plan_path_join(char buf[SH_ERR_PATH_MAX], const char *base,
                    const char *key);

/* Index of 'word' in the NULL-terminated 'list', or -1. */
int plan_list_find(const char *const *list, const char *word);

/* 'list' joined by ", " appended to 'sb'. */
void plan_list_join(const char *const *list, strbuf *sb);

/* The word of 'list' closest to 'word' when it is a likely typo, or
 * NULL. */
const char *plan_suggest(const char *word, const char *const *list);

/* obj[key] (borrowed), or NULL when absent or null. */
json_t *plan_opt(json_t *obj, const char *key);

/* Refuse any key of 'obj' (at JSON path 'base', described to people as
 * 'what') that is not in 'allowed'. Returns 0 or SH_EINVAL. */
int plan_check_keys(json_t *obj, const char *base, const char *const *allowed,
                    const char *what, sh_err *err);

/*
 * obj[key] as a string without NUL: *out (borrowed from 'obj') is NULL
 * when absent, which is an error when 'required'. 'hint' ends the message
 * of a missing or mistyped field. Returns 0 or SH_EINVAL at 'base.key'.
 */
int plan_get_string(json_t *obj, const char *key, const char *base,
                    int required, const char *hint, const char **out,
                    sh_err *err);

/* plan_get_string that also refuses an empty string (a name). */
int plan_get_name(json_t *obj, const char *key, const char *base, int required,
                  const char *hint, const char **out, sh_err *err);

/* obj[key] as an integer in [lo, hi], or 'def' when absent. */
int plan_get_int(json_t *obj, const char *key, const char *base, long long lo,
                 long long hi, long long def, long long *out, sh_err *err);

/* obj[key] as true or false (1 or 0), or 'def' when absent. */
int plan_get_bool(json_t *obj, const char *key, const char *base, int def,
                  int *out, sh_err *err);

/* obj[key] as one of the words of 'choices' (index in *out), or 'def'. */
int plan_get_choice(json_t *obj, const char *key, const char *base,
                    const char *const *choices, int def, int *out, sh_err *err);

/* The index of column 'name' of 'sc' in *out, or SH_EINVAL at 'path'
 * with a message listing the columns. */
int plan_find_column(const schema *sc, const char *name, const char *path,
                     size_t *out, sh_err *err);

/* obj[key], a required column name of 'sc': its index in *out. */
int plan_get_column(json_t *obj, const char *key, const char *base,
                    const schema *sc, size_t *out, sh_err *err);

/*
 * obj[key], a required non-empty array of distinct column names of 'sc':
 * *cols (malloc'ed; the caller frees it) gets their indexes, *n_cols their
 * number. On error *cols is NULL and err->path names the element at fault
 * ("steps[1].by[2]").
 */
int plan_get_columns(json_t *obj, const char *key, const char *base,
                     const schema *sc, size_t **cols, size_t *n_cols,
                     sh_err *err);

/* When err->path is 'from' or begins with 'from.', put 'to' in place of
 * that prefix ("input.path" -> "steps[3].with.path"). */
void plan_err_rebase(sh_err *err, const char *from, const char *to);

/* ---- building a plan ------------------------------------------------ */

/* What building a plan needs besides the spec. */
typedef struct plan_ctx {
    const plan_env *env;
    const char     *root;       /* real path of the data root */
    json_t         *resolution; /* plan_load: the stored resolution
                                   (borrowed); plan_build: NULL */
} plan_ctx;

/* plan_input.c: an input object. */

/*
 * Check the input object 'in' (borrowed) at JSON path 'base' ("input", or
 * "steps[3].with" for a join side) as far as it can be without reading
 * files; fill p's format, compression, dialect, partition size and
 * on_error. *pattern (borrowed from 'in') and *len are its path.
 */
int plan_input_parse(plan *p, json_t *in, const char *base,
                     const char **pattern, size_t *len, sh_err *err);

/*
 * The files, schema and partitions of the input that plan_input_parse
 * checked: from the disk, or from 'resolution' (that input's stored
 * resolution) when it is not NULL; then 'base.columns' applied. Sets
 * p->out_schema to p->in_schema. Errors name fields under 'base'.
 */
int plan_input_read(plan *p, json_t *in, const char *base, const char *pattern,
                    size_t len, const plan_ctx *ctx, json_t *resolution,
                    sh_err *err);

/* plan_input_parse and plan_input_read of a join side's 'with' into the
 * step-less plan 'p', which gets one stage (a task per partition). */
int plan_input_make(plan *p, json_t *in, const char *base, const plan_ctx *ctx,
                    json_t *resolution, sh_err *err);

/* The spec's word for format 'f' ("csv", "jsonl", "lines"). */
const char *plan_format_name(plan_format f);

/* plan_parquet.c: Parquet input. */

/*
 * The schema of the Parquet files of 'p' (p->files resolved) from their
 * footers, which must agree; refreshes each file's size and mtime. Sets
 * p->in_schema. Errors (not Parquet, the files differ) name input.path.
 */
int plan_pq_scan(plan *p, sh_err *err);

/*
 * Cut the Parquet files of 'p' (after plan_pq_scan and, for the main
 * input, the compiled steps): check that the columns with need[i] != 0
 * (every one when 'need' is NULL) can be read (SH_EINVAL at input.path
 * naming the column), skip the row groups the job's first filters rule
 * out by statistics (p->pq_rg_skipped), and cut the rest into partitions
 * of about p->partition_bytes (p->parts, p->pq_rgs).
 */
int plan_pq_cut(plan *p, const unsigned char *need, sh_err *err);

/* The row groups of a parquet plan for its stored resolution:
 * {"list": [...], "total": N, "skipped": N}. The caller owns it. */
json_t *plan_pq_resolution(const plan *p);

/* Read back what plan_pq_resolution stored. Returns 0 or -1 (damaged). */
int plan_pq_load(plan *p, json_t *rgs);

/* op_table.c: the steps, through the operator table. */

/*
 * steps: check the shape of every step before the input is read (each is
 * an object with a known op and only that op's fields, and what its
 * operator's check adds). Allocates p->steps and sets each step's op, def
 * and path.
 */
int plan_check_steps(plan *p, json_t *spec, sh_err *err);

/*
 * Compile every step of 'spec' (checked by plan_check_steps) with its
 * operator's compile, against the schema the step before made
 * (p->in_schema for the first); sets p->out_schema. Returns 0 or
 * SH_EINVAL with err->path naming the field.
 */
int plan_compile_steps(plan *p, json_t *spec, const plan_ctx *ctx, sh_err *err);

/* Everything a step's compile gets: the plan, which step, its JSON and
 * the schema of its input rows. */
typedef struct plan_step_in {
    plan           *p;
    size_t          i;  /* index of the step */
    plan_step      *s;  /* &p->steps[i] */
    json_t         *st; /* the step's JSON (borrowed) */
    const schema   *in; /* the rows the step reads (borrowed) */
    const plan_ctx *ctx;
} plan_step_in;

/* steps.c: what the compilers of every operator share. */

/* st[key], a column of c->in that must hold strings: its index. 'use'
 * says what the step does with it, for the message. */
int plan_get_string_column(const plan_step_in *c, const char *key,
                           const char *use, size_t *out, sh_err *err);

/* Compile the expression text st[key] against c->in into *out (owned by
 * the step); it must be bool. 'what' names the step for the message. */
int plan_compile_bool_expr(const plan_step_in *c, const char *key,
                           const char *what, expr **out, sh_err *err);

/* stages.c */

/* Cut the compiled steps of 'p' into stages: p->stages, p->n_stages,
 * p->stage_tasks (see plan_stage in plan.h). */
void plan_cut_stages(plan *p);

/* After plan_cut_stages: a right or full broadcast join (whose unmatched
 * side rows are emitted at the end of a task) in a stage of several tasks
 * becomes a partitioned join, and the stages are cut again. Returns 0
 * (steps.c). */
int plan_check_joins(plan *p, sh_err *err);

/* The stages of 'p' as JSON for plan_describe (the caller owns it). */
json_t *plan_stages_json(const plan *p);

#endif
