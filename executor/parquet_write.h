/*
 * parquet_write.h - writing rows of typed values as one Parquet file, a
 * writer to sit beside writer.h's CSV and JSONL ones.
 *
 * Every column is OPTIONAL (nulls are definition levels): int as INT64,
 * float as DOUBLE, bool as BOOLEAN, string as BYTE_ARRAY annotated STRING
 * (a column of type null as an all-null STRING), date as INT32 annotated
 * DATE, timestamp as INT64 annotated TIMESTAMP(MICROS, isAdjustedToUTC)
 * (both the logical and the converted type, for older readers). Rows are
 * buffered one row group at a time (row_group_rows rows, or fewer when the
 * buffered values pass 256 MiB) and written column chunk by column chunk: data
 * pages v1 of about 1 MiB, PLAIN values, strings dictionary-encoded
 * (RLE_DICTIONARY, one PLAIN dictionary page per chunk) when that is
 * smaller, min/max/null-count statistics per chunk, the chosen codec.
 *
 * Unlike CSV, Parquet files do not concatenate: each writer makes one
 * whole file (magic, row groups, footer).
 */
#ifndef SHEAF_PARQUET_WRITE_H
#define SHEAF_PARQUET_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "value.h"

#define PQW_DEFAULT_ROW_GROUP_ROWS 122880

typedef struct pq_writer pq_writer;

/*
 * The codec named 'name' in the job spec ("zstd", "snappy", "gzip",
 * "none"): 0 with *codec set to a PQ_C_* value (thrift.h), or -1.
 */
int pq_codec_parse(const char *name, int *codec);

/*
 * A writer of rows of schema 'sc' to 'fd', codec 'codec' (PQ_C_*), row
 * groups of 'row_group_rows' rows (0: PQW_DEFAULT_ROW_GROUP_ROWS). 'sc'
 * and 'fd' are borrowed: 'sc' must outlive the writer, the caller closes
 * 'fd'. Nothing is written before the first flush. Free with
 * pq_writer_free.
 */
pq_writer *pq_writer_new(int fd, const schema *sc, int codec,
                         size_t row_group_rows);

/*
 * Add one row: one value per column of the schema (borrowed; copied
 * before this returns). A null is null in any column; an int goes into a
 * float column as a float, a bool into an int column as 0/1, a date into a
 * timestamp column as its midnight; any other
 * mismatch is SH_EDATA naming the column. Returns 0, SH_EDATA or SH_EIO
 * (when a full row group was written out and the write failed).
 */
int pq_writer_row(pq_writer *w, const sh_value *row, sh_err *err);

/*
 * Write the last row group and the footer. The writer takes no more rows
 * after this. Returns 0 or SH_EIO. Does not fsync or close the fd.
 */
int pq_writer_finish(pq_writer *w, sh_err *err);

/* Bytes written to the fd so far. */
uint64_t pq_writer_bytes_out(const pq_writer *w);

/* Rows added so far. */
uint64_t pq_writer_rows(const pq_writer *w);

void pq_writer_free(pq_writer *w);

/*
 * Several Parquet files of one schema (each made by a pq_writer: the
 * parts of a result) served as one file without copying their data: the
 * whole is "PAR1", then bytes [4, data_end[i]) of each part i in order,
 * then 'tail' (a footer listing every part's row groups at their shifted
 * offsets, its length, "PAR1"). 'fds' (borrowed, read with pread) and
 * 'names' (for messages) have 'n' >= 1 entries; data_end gets n values;
 * 'tail' is appended to. Returns 0, SH_EDATA (a part is not Parquet, or
 * its schema differs from the first's) or SH_EIO, with 'err' naming the
 * part.
 */
int pq_merge(const int *fds, const char *const *names, size_t n,
             int64_t *data_end, strbuf *tail, sh_err *err);

#endif
