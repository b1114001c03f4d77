/*
 * sort.h - ordering rows by keys, the external merge sort and the top-n.
 *
 * A sorter takes rows (copying them into its own memory) up to a memory
 * budget; past it, it sorts what it holds and writes a sorted run (a row
 * file). At the end it writes its last run. With a limit it keeps only the
 * best 'limit' rows in a bounded heap and never spills (top-n). A merger
 * reads any number of sorted runs and yields all their rows in order
 * (k-way merge with a heap), so a sort of any size needs memory for one
 * buffer per run, not for the data.
 *
 * Order: keys compared left to right; within a key, values of the column's
 * type in ascending order (or descending with 'desc'); nulls always last,
 * whatever the direction (SPEC section 2). The sort is stable: rows with
 * equal keys come out in the order they were pushed (runs are numbered in
 * push order and the merger breaks ties by file index, so merging any
 * sorted files in a given order is stable in that order too).
 */
#ifndef SHEAF_SORT_H
#define SHEAF_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "value.h"

typedef struct sort_key {
    size_t col;  /* column index in the rows */
    int    desc; /* 1 for descending */
} sort_key;

/* Compare rows 'a' and 'b' by 'keys'. Returns <0, 0, >0. */
int sort_compare(const sh_value *a, const sh_value *b, const sort_key *keys,
                 size_t n_keys);

typedef struct sorter sorter;

/*
 * A sorter of rows of 'n_cols' values by 'keys' (copied). Runs are written
 * to "<run_prefix>.r<N>" (N from 0). 'mem_bytes' bounds the rows held in
 * memory. 'limit' > 0 keeps only the first 'limit' rows of the order
 * (top-n, bounded heap, no spill); 0 sorts everything.
 */
sorter *sorter_new(size_t n_cols, const sort_key *keys, size_t n_keys,
                   size_t mem_bytes, const char *run_prefix, uint64_t limit);

/* Add a row (borrowed; copied). May write a run. Returns 0 or SH_EIO. */
int sorter_push(sorter *s, const sh_value *row, sh_err *err);

/*
 * Write what is held as the last run. Returns the number of runs written
 * (0 when no row was pushed: then no file is written) or SH_EIO. The run
 * files are named "<run_prefix>.r0" ... in order. When there are more runs
 * than a merger reads within half of 'mem_bytes', consecutive runs are
 * first merged together (so at most 256 remain, fewer for budgets under
 * 32 MiB); with a limit, exactly one run of at most 'limit' rows remains.
 */
int sorter_finish(sorter *s, sh_err *err);

/*
 * Also keep a sample of the rows pushed (a full sort only: nothing with a
 * limit), about one row in every n evenly, at most 1024 rows (their key
 * columns; the others null), for sort_bounds_load to choose where the
 * ranges of a partitioned merge begin. sorter_finish writes it to 'path'
 * (copied), a row file of rows of n_cols + 1 values (the last: how many
 * rows pushed the row stands for), when it writes any run. Call before
 * the first push.
 */
void sorter_keep_sample(sorter *s, const char *path);

/* Peak bytes the sorter held in memory for rows (copies, records). */
size_t sorter_peak_bytes(const sorter *s);

void sorter_free(sorter *s);

typedef struct merger merger;

/*
 * A k-way merge of the sorted row files 'paths' (n of them; copied) by
 * 'keys'. Returns NULL with SH_EIO when a file cannot be opened. Reads
 * each file through a buffer of 16 MiB / n (64 KiB to 1 MiB), so its
 * memory is at most 16 MiB up to 256 files and n * 64 KiB beyond: merge
 * more files than that in groups.
 */
merger *merger_new(const char *const *paths, size_t n, const sort_key *keys,
                   size_t n_keys, sh_err *err);

/* The next row in order: 1 with *row (valid until the next call), 0 at
 * the end, or an error. */
int merger_next(merger *m, const sh_value **row, sh_err *err);

void merger_free(merger *m);

/*
 * The key range of part 'part' of 'n_parts' of a merge cut by ranges, so
 * that several tasks merge the same sorted files, each its own part, and
 * their outputs in part order are the whole merge: the parts' bounds are
 * weighted quantiles of the rows of the samples (sorter_keep_sample), so
 * the parts hold about as many rows each. Every row falls in exactly one
 * part; rows with equal keys in the same one (so the merge stays stable).
 */
typedef struct sort_bounds sort_bounds;

/*
 * Read the samples 'paths' (n of them, in a fixed order: each task reads
 * the same; a missing file is an empty sample) and make the bounds of
 * part 'part' (< n_parts) by 'keys'. Every task computes the same cuts
 * from the same samples. Returns 0 with *out (free with
 * sort_bounds_free), or SH_EIO / SH_EDATA.
 */
int sort_bounds_load(const char *const *paths, size_t n, const sort_key *keys,
                     size_t n_keys, size_t part, size_t n_parts,
                     sort_bounds **out, sh_err *err);

void sort_bounds_free(sort_bounds *b);

/*
 * Make 'm' yield only the rows within 'b' (borrowed: it must outlive 'm'),
 * skipping the rows before the range as each file is first read and
 * ending at the first row past it. Call before the first merger_next.
 */
void merger_set_bounds(merger *m, const sort_bounds *b);

#endif
