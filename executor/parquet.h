/*
 * parquet.h - reading Parquet files: the footer (schema, row groups, their
 * byte ranges, row counts and min/max statistics) and the rows of chosen
 * row groups and columns, decoded page by page in batches.
 *
 * What is read: flat schemas (every top-level field a leaf; a nested field
 * is listed with a 'why_unsupported' and cannot be read); data pages v1
 * and v2; PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY, RLE (booleans),
 * DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and
 * BYTE_STREAM_SPLIT values; RLE/bit-packed definition levels; codecs
 * uncompressed, snappy, gzip and zstd.
 *
 * How Parquet types map to sheaf's (pq_col.type), the Parquet logical type
 * kept beside it (pq_col.logical) for later mappings:
 *   BOOLEAN                          -> bool
 *   INT32, INT64 (INT8/16/32/64,
 *     UINT8/16/32, no annotation)    -> int
 *   UINT64                           -> int (the bits: values over
 *                                       INT64_MAX read negative)
 *   DATE (INT32)                     -> date (days since 1970-01-01)
 *   TIMESTAMP (INT64), millis/micros/
 *     nanos, UTC-adjusted or not     -> timestamp (microseconds, UTC: a
 *                                       local one is taken as UTC;
 *                                       nanoseconds cut toward zero,
 *                                       millis out of range are null)
 *   TIME (INT32/INT64)               -> int: units since midnight
 *   INT96 (legacy timestamps)        -> timestamp (as TIMESTAMP NANOS)
 *   DECIMAL (INT32, INT64,
 *     FIXED_LEN_BYTE_ARRAY up to 16
 *     bytes, BYTE_ARRAY up to 16)    -> float: unscaled / 10^scale, the
 *                                       nearest double (exact for up to
 *                                       15 significant digits)
 *   FLOAT, DOUBLE                    -> float
 *   BYTE_ARRAY (STRING/UTF8, ENUM,
 *     JSON, no annotation)           -> string (bytes as they are)
 * Anything else (other FIXED_LEN_BYTE_ARRAYs, nested fields, INTERVAL,
 * unknown encodings or codecs) is an unsupported column: it is listed,
 * with the reason, and reading it is an error naming it.
 *
 * Errors name the file, and where it applies the row group and the column
 * ("file a.parquet, row group 2, column 'x': corrupt page header"). A
 * corrupt or truncated file is an SH_EDATA error, never a crash.
 */
#ifndef SHEAF_PARQUET_H
#define SHEAF_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "thrift.h"
#include "value.h"

typedef struct pq_file   pq_file;
typedef struct pq_reader pq_reader;

/* One top-level column of the file. */
typedef struct pq_col {
    char       *name;            /* NUL-terminated, owned by the pq_file */
    sh_type     type;            /* what its values read as */
    int         physical;        /* PQ_T_*, -1 for a nested group */
    int32_t     type_length;     /* FIXED_LEN_BYTE_ARRAY width */
    int         converted;       /* PQ_CT_* or -1 */
    pq_logical  logical;         /* from LogicalType or ConvertedType */
    int         optional;        /* may hold nulls (max definition 1) */
    uint32_t    leaf;            /* index of its column chunk in a row group */
    const char *why_unsupported; /* NULL, or a static reason */
} pq_col;

/* Min/max statistics of one column chunk, as sheaf values. */
typedef struct pq_minmax {
    int      has_minmax; /* min and max are set (and trustworthy) */
    sh_value min, max;   /* strings borrow from the pq_file */
    int      has_nulls;  /* null_count is known */
    int64_t  null_count;
} pq_minmax;

/*
 * Read and check the footer of the Parquet file open on 'fd' (borrowed:
 * the caller closes it after pq_close; read with pread). 'name' is the
 * file's name for messages (copied). Returns NULL with 'err' set
 * (SH_EDATA: not Parquet, truncated, corrupt, encrypted; SH_EIO).
 */
pq_file *pq_open(int fd, const char *name, sh_err *err);

void pq_close(pq_file *f);

int64_t       pq_num_rows(const pq_file *f);
size_t        pq_num_cols(const pq_file *f);
const pq_col *pq_col_at(const pq_file *f, size_t i);

size_t  pq_num_row_groups(const pq_file *f);
int64_t pq_rg_rows(const pq_file *f, size_t rg);
/* The byte range the row group's column chunks cover: [*start, *end). */
void pq_rg_range(const pq_file *f, size_t rg, int64_t *start, int64_t *end);
/* Statistics of column 'col' in row group 'rg' (zeroed when absent). */
void pq_rg_minmax(const pq_file *f, size_t rg, size_t col, pq_minmax *out);

/* A comparison of a column with a constant, for pruning row groups. */
typedef enum pq_cmp {
    PQ_CMP_EQ = 0,
    PQ_CMP_NE,
    PQ_CMP_LT,
    PQ_CMP_LE,
    PQ_CMP_GT,
    PQ_CMP_GE,
    PQ_CMP_IS_NULL,
    PQ_CMP_NOT_NULL
} pq_cmp;

/*
 * 0 when the statistics of row group 'rg' prove that no row of it has
 * "column 'col' OP 'v'" true, 1 when some row may ('v' is ignored for the
 * null tests). Follows the SPEC: a comparison with null is false, ints and
 * floats compare numerically, strings by bytes. Conservative: without
 * statistics, for mixed types, for NaN, and for the comparisons a float
 * column's NaN could satisfy (NE, GT, GE: statistics leave NaN out), it
 * answers 1. A filter that is an AND of such comparisons lets the planner
 * skip a row group when any of them answers 0.
 */
int pq_rg_may_match(const pq_file *f, size_t rg, size_t col, pq_cmp op,
                    const sh_value *v);

/*
 * Cut row groups rgs[0..nrg) into partitions of about 'target_bytes'
 * (compressed bytes of the row groups' column chunks): consecutive small
 * row groups share a partition, a large one has its own (it is read page
 * by page, so its size does not bound memory). Returns the partition
 * count; *starts (the caller frees it) gets, for each partition, the
 * index in 'rgs' where it begins (it ends where the next begins).
 */
size_t pq_partition(const pq_file *f, const size_t *rgs, size_t nrg,
                    int64_t target_bytes, size_t **starts);

/*
 * Check that the columns with need[i] != 0 (every column when 'need' is
 * NULL) can be read: 0, or SH_EINVAL naming the first that cannot (nested,
 * unsupported type, an encoding or codec not read, in any row group).
 * For a 400 at submit.
 */
int pq_check_columns(const pq_file *f, const unsigned char *need, sh_err *err);

/*
 * A reader of row groups rgs[0..nrg) (in that order) of 'f' (borrowed: it
 * must outlive the reader). 'need' has one entry per column: columns with
 * 0 are not read and read as null; NULL reads every column. Returns NULL
 * with 'err' set when a needed column is unsupported (SH_EINVAL).
 */
pq_reader *pq_reader_new(pq_file *f, const size_t *rgs, size_t nrg,
                         const unsigned char *need, sh_err *err);

/*
 * The next row: 1 with *row (pq_num_cols values; strings stay valid
 * until the next call), 0 at the end, or SH_EDATA / SH_EIO with a
 * message naming file, row group and column.
 */
int pq_reader_next(pq_reader *r, const sh_value **row, sh_err *err);

/* "file a.parquet, row groups 2-4" (the first and last of the reader's
 * list), for messages; valid until pq_reader_free. */
const char *pq_reader_context(const pq_reader *r);

/* Rows returned so far, compressed bytes read so far. */
uint64_t pq_reader_rows(const pq_reader *r);
uint64_t pq_reader_bytes(const pq_reader *r);

void pq_reader_free(pq_reader *r);

/*
 * Parse 'n' bytes as a whole Parquet file and read every row of every
 * supported column; for fuzzing (any input must return, never crash).
 * Returns 0 or a negative SH_E* code.
 */
int pq_fuzz_one(const uint8_t *data, size_t n);

#endif
