/*
 * writer.h - output writers: rows of typed values written as CSV or JSON
 * lines, optionally gzip-compressed, through a buffer to a file descriptor.
 *
 * CSV: comma-separated, LF line ends, minimal quoting (a field holding a
 * comma, a quote, CR or LF is quoted, inner quotes doubled); null is an
 * empty field and the empty string is "" so the two read back apart; a row
 * of one null column is written as "" so it is not an empty line (which
 * readers skip). Floats are the shortest text that reads back to the same
 * double; ints decimal; bools true/false.
 *
 * JSONL: one object a line, keys in column order; strings JSON-escaped
 * (valid UTF-8 passes through, invalid bytes become U+FFFD, control
 * characters are escaped); nan and infinities are null (JSON has no such
 * numbers); null is null.
 *
 * gzip: everything written between writer_new and writer_finish is one
 * complete gzip member, so the outputs of several writers concatenated
 * form one valid gzip file (RFC 1952), as gzip -c a b > ab does.
 */
#ifndef SHEAF_WRITER_H
#define SHEAF_WRITER_H

#include <stdint.h>

#include "../lib/err.h"
#include "../lib/util.h"
#include "value.h"

typedef enum writer_format { WRITER_CSV = 0, WRITER_JSONL } writer_format;

typedef struct writer writer;

/*
 * A writer of rows of schema 'sc' to 'fd'. Both are borrowed: 'sc' must
 * outlive the writer, and the caller closes 'fd'. 'gzip' non-zero
 * compresses the output (zlib, gzip wrapper). Free with writer_free.
 */
writer *writer_new(int fd, writer_format fmt, int gzip, const schema *sc);

/*
 * Write the header row (the column names; CSV only, a no-op for JSONL).
 * Returns 0 or SH_EIO with 'err' filled.
 */
int writer_header(writer *w, sh_err *err);

/*
 * Write one row: 'row' holds one value per column of the schema, in order
 * (borrowed; copied into the buffer before this returns). A value's own
 * type decides its text, so a null in an int column is written as null.
 * Returns 0 or SH_EIO.
 */
int writer_row(writer *w, const sh_value *row, sh_err *err);

/*
 * Flush everything buffered and, with gzip, end the gzip member. The
 * writer takes no more rows after this. Returns 0 or SH_EIO. Does not
 * fsync or close the fd.
 */
int writer_finish(writer *w, sh_err *err);

/* Bytes written to the fd so far (after compression). */
uint64_t writer_bytes_out(const writer *w);

/* Free the writer (without flushing: call writer_finish first). */
void writer_free(writer *w);

/*
 * Append 'n' bytes of 's' to 'sb' as a JSON string, quotes included:
 * valid UTF-8 passes through, invalid bytes become U+FFFD, '"', '\\' and
 * control characters are escaped. For anyone who writes JSON by hand.
 */
void writer_json_string(strbuf *sb, const char *s, size_t n);

/* Append 'n' bytes of 's' to 'sb' as one CSV field, quoted if needed. */
void writer_csv_field(strbuf *sb, const char *s, size_t n);

#endif
