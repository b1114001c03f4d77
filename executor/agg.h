/*
 * agg.h - aggregate functions and hash aggregation with partial states.
 *
 * groupby, aggregate and distinct run in two halves. The partial half runs
 * in every partition: it folds input rows into a hash table of groups and,
 * when the table outgrows its budget or the input ends, drains it as
 * partial rows (the group's keys, then one state value per aggregate) that
 * the caller writes into hash buckets. The final half merges the partial
 * rows of one bucket from every partition and drains each group's final
 * row (keys, then one result per aggregate). A group may appear in many
 * partial rows; merging is associative and commutative, so any grouping of
 * partials (tree reduction, spills) gives the same answer (floats to the
 * last bits). distinct is a groupby with no aggregates.
 *
 * Result types (SPEC section 2): count, count_distinct,
 * approx_count_distinct are int; sum of int is int (overflow is an error,
 * never a wrap), sum of float is float; mean, var, std are float (sample
 * var/std, n - 1, computed with Welford/Chan); min and max keep the
 * column's type. Nulls are skipped by every function except count()
 * without a column, which counts rows; an empty or all-null group gives
 * null (count gives 0). approx_count_distinct is a HyperLogLog with 2^14
 * registers: standard error about 0.8 %.
 *
 * min_by(column, by) and max_by (agg_quant.c) keep the column's type: the
 * value of 'column' in the row whose 'by' is smallest (largest); rows
 * where either is null are skipped; among rows tied on 'by' the smallest
 * (for max_by the largest) value wins, so the answer never depends on the
 * order of the input or of the partials. median and quantile (exact,
 * DuckDB's quantile_cont: h = (n - 1) q, d = h - floor h, x[floor h]
 * (1 - d) + x[ceil h] d over the sorted non-null values, computed in
 * DuckDB's order, so the doubles are its doubles) take an int or float
 * column and give float. Their states hold every value (8 bytes
 * each); the final half sorts them out of core when its table is over the
 * budget and re-partitioning cannot shrink it (hashagg_finalize_files), so
 * a group of any size is exact. approx_quantile (agg_sketch.c) keeps a
 * KLL sketch of about 3 k items (k = 200) per group: the rank of its
 * answer, one of the values seen (an int column gives int, float float),
 * is within about 1.7 % of n of q n.
 */
#ifndef SHEAF_AGG_H
#define SHEAF_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "text.h"
#include "value.h"

typedef enum agg_fn {
    AGG_COUNT = 0,
    AGG_SUM,
    AGG_MEAN,
    AGG_MIN,
    AGG_MAX,
    AGG_VAR,
    AGG_STD,
    AGG_COUNT_DISTINCT,
    AGG_APPROX_COUNT_DISTINCT,
    AGG_MIN_BY,         /* agg_quant.c: the value where 'by' is smallest */
    AGG_MAX_BY,         /* ... largest */
    AGG_MEDIAN,         /* agg_quant.c: exact, quantile_cont at 0.5 */
    AGG_QUANTILE,       /* exact, quantile_cont at 'q' */
    AGG_APPROX_QUANTILE /* agg_sketch.c: a KLL sketch, at 'q' */
} agg_fn;

typedef struct agg_def {
    agg_fn  fn;
    long    col;     /* input column index, or -1 (count of rows) */
    sh_type in_type; /* the input column's type (SH_NULL when col < 0) */
    long    by_col;  /* min_by, max_by: the column compared; else -1 */
    sh_type by_type; /* its type */
    double  q;       /* quantile, approx_quantile: in [0, 1] */
} agg_def;

/* Parse "count", "sum", ... Returns 0 and sets *out, or -1. */
int         agg_fn_parse(const char *name, agg_fn *out);
const char *agg_fn_name(agg_fn fn);

/*
 * The result type of 'fn' over a column of 'in_type' ('has_col' 0 for
 * count without a column), or SH_NULL when it does not apply (sum of a
 * string, mean of a bool, a function other than count without a column),
 * which planners report as a 400.
 */
sh_type agg_result_type(agg_fn fn, sh_type in_type, int has_col);

/* Receives one drained row (borrowed for the call). Returns 0 or an
 * error, which stops the drain. */
typedef int (*agg_emit_fn)(void *ctx, const sh_value *row, sh_err *err);

typedef struct hashagg hashagg;

/*
 * A hash table of groups keyed by the values of 'key_cols' of the input
 * rows (n_keys may be 0: one group), computing 'aggs'. Arguments are
 * copied. Keys compare by type and value (1 and 1.0 are different keys;
 * null is a key like any other).
 */
hashagg *hashagg_new(const size_t *key_cols, size_t n_keys, const agg_def *aggs,
                     size_t n_aggs);

/* Fold one input row (borrowed; strings copied as needed). Returns 0 or
 * SH_ERANGE (int sum overflow; the message names the column). */
int hashagg_add(hashagg *h, const sh_value *row, sh_err *err);

/* Rows hashagg_queue holds before the caller must call hashagg_flush. */
#define HASHAGG_BATCH 256

/* 1 when every aggregate is count (or there is none): folding cannot fail,
 * so rows may be queued with hashagg_queue and folded in batches. */
int hashagg_can_queue(const hashagg *h);

/*
 * Queue one input row (borrowed for the call: its keys are copied) of a
 * table where hashagg_can_queue. Returns the number of rows queued; when
 * it reaches HASHAGG_BATCH the caller must call hashagg_flush before
 * queueing more. Queued rows are not in the table yet: hashagg_bytes and
 * hashagg_groups count them once flushed. Do not mix with hashagg_add or
 * hashagg_merge without a flush between.
 */
size_t hashagg_queue(hashagg *h, const sh_value *row);

/* At most the bytes that folding the queued rows adds to hashagg_bytes
 * (besides the doubling of the slot array or the group vector, which a
 * single row may cause too). */
size_t hashagg_queued_bytes(const hashagg *h);

/*
 * Fold every queued row, all hashed first and their slots and groups
 * prefetched, which hides most of the memory latency of a table larger
 * than the caches. Returns 0 (counts cannot fail). The drains flush
 * first.
 */
int hashagg_flush(hashagg *h, sh_err *err);

/*
 * 1 when the table counts rows by one key and nothing else (every
 * aggregate is a count of rows, no column): hashagg_count_strs may fold
 * its rows. *col is then the key's input column.
 */
int hashagg_counts_key(const hashagg *h, size_t *col);

/*
 * Fold rows whose key (where hashagg_counts_key) is the string of each of
 * the n spans 'sp' of 'base' (borrowed for the call), in order, as many
 * hashagg_add calls would; nothing may be queued (hashagg_flush first).
 * The spans are hashed first and their slots prefetched. Stops after the
 * span whose new group takes hashagg_bytes past 'limit', so that the
 * caller may drain; returns the number of spans folded.
 */
size_t hashagg_count_strs(hashagg *h, const char *base, const text_span *sp,
                          size_t n, size_t limit);

/* Fold one partial row (keys, then states) made by a hashagg_drain_partial
 * of a table with the same keys and aggs. */
int hashagg_merge(hashagg *h, const sh_value *partial, sh_err *err);

/* Bytes the table holds (to compare with a memory budget). */
size_t hashagg_bytes(const hashagg *h);
/* Number of groups held. */
size_t hashagg_groups(const hashagg *h);

/* Values in a partial row: n_keys + n_aggs. */
size_t hashagg_partial_cols(const hashagg *h);
/* Values in a final row: n_keys + n_aggs. */
size_t hashagg_final_cols(const hashagg *h);

/*
 * Emit every group as a partial row and empty the table (its memory is
 * reused). States that are not a plain value (mean, var, distinct sets,
 * HyperLogLog registers) travel as string values holding bytes.
 */
int hashagg_drain_partial(hashagg *h, agg_emit_fn emit, void *ctx, sh_err *err);

/* Emit every group as a final row and empty the table. */
int hashagg_drain_final(hashagg *h, agg_emit_fn emit, void *ctx, sh_err *err);

/* The hash of the key values of partial or final row 'row' (its first
 * n_keys values), for choosing a bucket; 'salt' varies it per level of
 * re-partitioning. */
uint64_t hashagg_key_hash(const hashagg *h, const sh_value *row, uint64_t salt);

/* What hashagg_finalize_files did (for a task's statistics). */
typedef struct hashagg_finalize_stats {
    uint64_t rows_read;   /* partial rows read from the input files (not
                             counting re-reads of spill files) */
    uint64_t spill_bytes; /* bytes written to spill files, every level,
                             and the runs of quantile values sorted */
    uint64_t peak_bytes;  /* most bytes the table held (hashagg_bytes) */
} hashagg_finalize_stats;

/*
 * Called by hashagg_finalize_files every HASHAGG_TICK_ROWS partial rows it
 * reads (from the inputs and from spill files), with the stats so far
 * (borrowed for the call). Returns 0 to go on, or an error code with 'err'
 * filled (SH_ECANCELED to cancel), which stops the finalize: it cleans up
 * and returns that code.
 */
typedef int (*agg_tick_fn)(void *ctx, const hashagg_finalize_stats *st,
                           sh_err *err);

#define HASHAGG_TICK_ROWS 65536

/*
 * The final half for one bucket, out of core: merge the partial rows of
 * the row files 'paths' (n of them; section 'section' of each sectioned
 * file, or the whole plain files when 'section' < 0) and emit each group's
 * final row. When the groups outgrow 'mem_bytes', the partial rows are
 * re-partitioned by another hash into row files "<spill_prefix>.<level>.<i>"
 * (scratch files, never fsync'ed) that are finished one by one (recursively),
 * and removed afterwards. Each level starts with an empty table and its slot
 * array given back, so what a level holds never includes what the level
 * before grew to. Besides the table, it holds a 1 MiB read buffer and,
 * while re-partitioning, 16 writers of up to 1 MiB each: 'mem_bytes'
 * bounds the table only. A level that cannot re-partition (one group
 * left, or the last level) and is still over 'mem_bytes' sorts its
 * median/quantile values out of core ("<spill_prefix>.q<level>.r<N>",
 * half of 'mem_bytes' for the sort; removed afterwards) and reads each
 * group's quantile off the sorted values; 'tick' is called every 65536
 * values sorted too. 'h' must be empty; it is left empty. 'emit' and
 * 'tick' get 'ctx'; 'tick' may be NULL. '*st' (may be NULL) is filled in
 * every case, also on error.
 */
int hashagg_finalize_files(hashagg *h, const char *const *paths, size_t n,
                           long section, size_t mem_bytes,
                           const char *spill_prefix, agg_emit_fn emit,
                           agg_tick_fn tick, void *ctx,
                           hashagg_finalize_stats *st, sh_err *err);

void hashagg_free(hashagg *h);

/*
 * The 'q' quantile (0 <= q <= 1) of the n (> 0) values of 'x', which it
 * sorts in place (NaN last), interpolated as DuckDB's quantile_cont:
 * h = (n - 1) q, d = h - floor h, x[floor h] (1 - d) + x[ceil h] d.
 */
double agg_quantile_cont(double *x, size_t n, double q);

#endif
