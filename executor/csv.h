/*
 * csv.h - the record scanner of the text formats: cutting a file into byte
 * ranges that never split a record, and reading the records of one range
 * (or of a stream a callback gives) as fields. CSV records, or lines (for
 * the lines and jsonl formats: csv_dialect.lines).
 *
 * Dialect (RFC 4180 as real files are): fields are separated by 'delim'; a
 * field that starts with 'quote' is quoted and may hold the delimiter, line
 * ends, and doubled quotes ("" stands for one quote); a quote inside an
 * unquoted field is an ordinary character; characters after a closing quote
 * and before the next delimiter or line end are appended to the field (as
 * Python's csv module does). A record ends at a line end outside quotes:
 * LF, CR LF or a lone CR (old Mac files), which may be mixed in one file,
 * as pandas reads them; a CR LF is one line end. Inside quotes CR and LF
 * are data. The last record may lack a line end. A UTF-8 byte-order mark at
 * offset 0 is skipped. An empty line (no bytes between two line ends) is no
 * record.
 *
 * Lines (csv_dialect.lines = 1; 'delim' and 'quote' are then unused): every
 * line is a record of one unquoted field, the line without its line end
 * (LF, CR LF or lone CR, as Python's universal newlines).
 * An empty line is a record (of one empty field), except that the end of
 * the data right after a line end is no further record. The byte-order mark
 * is skipped as for CSV.
 *
 * The splitter and the reader run the same state machine, so a range the
 * splitter makes always begins at a record the reader would begin at.
 */
#ifndef SHEAF_CSV_H
#define SHEAF_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/err.h"

/* Limits on what one record may be (SPEC: a record 16 MiB and 10,000
 * columns); a record past them fails with SH_EDATA naming its line, byte
 * offset and the limit, instead of growing the reader's memory. */
#define CSV_MAX_RECORD_BYTES_DEFAULT ((size_t)16 << 20)
#define CSV_MAX_COLUMNS_DEFAULT      10000

/*
 * Set the limits of the readers made from now on in this process (0 keeps
 * a default). sheafd calls it at start from SHEAF_MAX_RECORD_BYTES and
 * SHEAF_MAX_COLUMNS; not thread-safe against readers being made.
 */
void csv_set_limits(size_t max_record_bytes, size_t max_columns);

typedef struct csv_dialect {
    char delim;  /* field separator, default ',' */
    char quote;  /* quote character, default '"' */
    int  header; /* 1 if the first record names the columns */
    int  lines;  /* 1: a record is a line, one field (lines, jsonl) */
} csv_dialect;

/* One field of a record: bytes without quotes, with "" turned into ". */
typedef struct csv_field {
    const char *ptr; /* borrowed from the reader; valid until next call */
    size_t      len;
    int quoted; /* 1 if the field was quoted ("" is then "", not null) */
} csv_field;

/* A byte range of a file that begins at a record start. */
typedef struct csv_range {
    uint64_t start; /* offset of the first record's first byte */
    uint64_t end;   /* offset just past the range (the next range's start) */
    uint64_t line;  /* 1-based line number of the first record */
} csv_range;

/*
 * Cut bytes ['data_start', 'file_size') of the file 'fd' into ranges of
 * about 'part_bytes' each: a cut is made at the first record start at or
 * after each multiple of 'part_bytes' past 'data_start'; ranges holding no
 * record are dropped. 'first_line' is the line number at 'data_start'.
 * 'part_bytes' may be any value >= 1. On success *out is a malloc'ed array
 * the caller frees, *n_out its length (0 for no data). Returns 0, SH_EIO,
 * or SH_EDATA when the file ends inside a quoted field (message names the
 * line where that field starts).
 */
int csv_split(int fd, uint64_t data_start, uint64_t first_line,
              uint64_t file_size, const csv_dialect *d, uint64_t part_bytes,
              csv_range **out, size_t *n_out, sh_err *err);

/*
 * csv_split for a split in pieces (csv_par.h): the cuts are made at the
 * first record start at or after each multiple of 'part_bytes' past 'base'
 * (base <= data_start; csv_split's base is data_start), and when a record
 * starts exactly at offset 'stop' the pass ends there: the last range ends
 * at 'stop' and *stop_line is that record's line. When no record starts at
 * 'stop' (it falls inside a record), the pass goes on to the end as
 * csv_split's and *stop_line is 0. Errors as csv_split's.
 */
int csv_split_at(int fd, uint64_t data_start, uint64_t first_line,
                 uint64_t file_size, const csv_dialect *d, uint64_t part_bytes,
                 uint64_t base, uint64_t stop, uint64_t *stop_line,
                 csv_range **out, size_t *n_out, sh_err *err);

typedef struct csv_reader csv_reader;

/*
 * A reader of the records that start in bytes ['start', 'end') of 'fd'
 * (borrowed; read with pread, so several readers may share it). The last
 * record may run past 'end'. 'line' is the line number at 'start'. At
 * start == 0 a byte-order mark is skipped. Memory stays bounded by the
 * largest record, whatever the range's size. Free with csv_reader_free.
 */
csv_reader *csv_reader_new(int fd, uint64_t start, uint64_t end, uint64_t line,
                           const csv_dialect *d);

/*
 * Where csv_reader_new_fn gets its bytes: read up to 'n' bytes (n >= 1) of
 * the stream into 'buf'. Returns how many (0 only at the end of the
 * stream), or a negative SH_E* code with 'err' filled.
 */
typedef ssize_t (*csv_read_fn)(void *ctx, char *buf, size_t n, sh_err *err);

/*
 * A reader of every record of the stream that 'fn' reads ('ctx' is passed
 * to it, borrowed), as csv_reader_new of a whole file: offsets count bytes
 * of the stream, a byte-order mark at its start is skipped, 'line' is the
 * line number at its start. For inflated (gzip) input. Free with
 * csv_reader_free.
 */
csv_reader *csv_reader_new_fn(csv_read_fn fn, void *ctx, uint64_t line,
                              const csv_dialect *d);

/*
 * csv_reader_new over a stream: the records that start in bytes ['start',
 * 'end') of a file whose bytes from 'start' on 'fn' reads in order ('ctx'
 * borrowed). The last record may run past 'end' (the stream must then go
 * on past it). For byte sources that are not file descriptors (s3://
 * objects, executor/source.h).
 */
csv_reader *csv_reader_new_range_fn(csv_read_fn fn, void *ctx, uint64_t start,
                                    uint64_t end, uint64_t line,
                                    const csv_dialect *d);

/*
 * csv_split over a stream: 'fn' reads the file's bytes from 'data_start'
 * on, in order ('ctx' borrowed); otherwise as csv_split.
 */
int csv_split_fn(csv_read_fn fn, void *ctx, uint64_t data_start,
                 uint64_t first_line, uint64_t file_size, const csv_dialect *d,
                 uint64_t part_bytes, csv_range **out, size_t *n_out,
                 sh_err *err);

/*
 * Read the next record. Returns 1 and sets *fields (an array owned by the
 * reader, valid until the next call) and *n_fields; 0 at the end of the
 * range; SH_EIO or SH_EDATA (unterminated quote) with 'err' filled.
 */
int csv_reader_next(csv_reader *r, const csv_field **fields, size_t *n_fields,
                    sh_err *err);

/* The 1-based line number where the last record returned starts. */
uint64_t csv_reader_line(const csv_reader *r);
/* The offset just past the last record returned (where the next starts). */
uint64_t csv_reader_offset(const csv_reader *r);
/* The offset where the last record returned starts. */
uint64_t csv_reader_record_start(const csv_reader *r);
/* Bytes consumed so far in the range. */
uint64_t csv_reader_bytes(const csv_reader *r);

void csv_reader_free(csv_reader *r);

#endif
