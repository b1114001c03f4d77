/*
 * input.h - reading one partition of a plan's input as typed rows, for
 * every input format: csv (a byte range, cut at record starts), jsonl (one
 * object a line: keys are column names, missing keys are null), lines (one
 * string column "line", line ends removed), each possibly gzip-compressed
 * (then a partition is a whole file).
 *
 * A value that cannot be read as its column's type is an SH_EDATA error
 * naming the partition, the byte range, the line, the column and the value
 * -- or, with input.on_error "skip", the record is skipped and counted.
 * Memory is bounded by the longest record, not by the partition.
 */
#ifndef SHEAF_INPUT_H
#define SHEAF_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "plan.h"
#include "value.h"

typedef struct input_reader input_reader;

/* The most a gzip input may inflate to, as a multiple of its compressed
 * size (SPEC: 1000); past it the read fails with SH_EDATA. */
#define INPUT_GZIP_RATIO_DEFAULT 1000

/*
 * Set the limits of the readers made from now on in this process: the
 * inflation ratio of gzip input (0 keeps the default). sheafd calls it at
 * start from SHEAF_MAX_GZIP_RATIO. The record limits are csv.h's
 * (csv_set_limits).
 */
void input_set_limits(unsigned gzip_ratio);

/*
 * Open partition 'part' of 'p' (p->parts[part]), checking that its file is
 * the one the plan saw (size and mtime). 'need' has one entry per column of
 * p->in_schema: columns with 0 are not parsed (they read as null, and a bad
 * value in them is no error); NULL parses every column. Returns NULL with
 * 'err' set (the message begins with the partition's context).
 */
input_reader *input_open(const plan *p, size_t part, const unsigned char *need,
                         sh_err *err);

/*
 * The next row: 1 with *row (p->in_schema->n values; strings stay valid
 * until the next call), 0 at the end, or an error (SH_EDATA for bad data,
 * SH_EIO) with a message that begins with the partition's context.
 */
int input_next(input_reader *r, const sh_value **row, sh_err *err);

/* "partition 3 (file a.csv, bytes 0-9)", for messages. */
const char *input_context(const input_reader *r);

/* 1-based line number of the record input_next returned last (Parquet:
 * the row's number in the partition). */
uint64_t input_line(const input_reader *r);

/* Records read (skipped ones included), records skipped, bytes consumed
 * (compressed bytes for gzip). */
uint64_t input_rows(const input_reader *r);
uint64_t input_skipped(const input_reader *r);
uint64_t input_bytes(const input_reader *r);

void input_free(input_reader *r);

#endif
