/*
 * rowfile.h - sheaf's intermediate files: rows of typed values in a compact
 * binary form, written and read sequentially with large buffers. Partials,
 * hash buckets, sorted runs and spill files are all row files.
 *
 * A row file is written under "<path>.tmp" and renamed to 'path' by
 * rowfile_close, so a reader never sees half a file. Rows carry their own
 * types (a tag byte per value), so any row of 'n_cols' values can be stored.
 */
#ifndef SHEAF_ROWFILE_H
#define SHEAF_ROWFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "value.h"

typedef struct rowfile_writer rowfile_writer;

/* Create a writer of rows of 'n_cols' values to 'path'. NULL with SH_EIO
 * (message names the path and the system error) on failure. */
rowfile_writer *rowfile_create(const char *path, size_t n_cols, sh_err *err);

/* As rowfile_create, for a scratch file that dies with its task (spill
 * files, intermediate merges): rowfile_close renames it but neither
 * fsyncs it nor its directory, which is most of the cost of many small
 * files. Files another task reads must come from rowfile_create. */
rowfile_writer *rowfile_create_scratch(const char *path, size_t n_cols,
                                       sh_err *err);

/* Append one row (n_cols values, borrowed). Returns 0 or SH_EIO. */
int rowfile_write(rowfile_writer *w, const sh_value *row, sh_err *err);

/* Rows and bytes written so far (bytes: all but the 9-byte trailer that
 * rowfile_close adds). */
uint64_t rowfile_rows(const rowfile_writer *w);
uint64_t rowfile_bytes(const rowfile_writer *w);

/* Flush, fsync, rename to the final path (and fsync its directory, so the
 * file is durable when this returns) and free 'w' (also on error, when the
 * temporary file is removed). Returns 0 or SH_EIO. */
int rowfile_close(rowfile_writer *w, sh_err *err);

/* Remove the temporary file and free 'w'. NULL-safe. */
void rowfile_abort(rowfile_writer *w);

typedef struct rowfile_reader rowfile_reader;

/* Open 'path' for reading. NULL with SH_EIO on failure (SH_EDATA when it
 * is not a row file). Reads through a 1 MiB buffer. */
rowfile_reader *rowfile_open(const char *path, sh_err *err);

/* As rowfile_open, with a read buffer of 'buf_bytes' (at least 4 KiB; it
 * grows for a row larger than it). A merger of many files uses small ones
 * to bound its memory. */
rowfile_reader *rowfile_open_buf(const char *path, size_t buf_bytes,
                                 sh_err *err);

/*
 * Read the next row. Returns 1 with *row (n_cols values; strings point into
 * the reader's buffer and stay valid until the next call), 0 at the end, or
 * SH_EIO / SH_EDATA (a truncated or corrupt file).
 */
int rowfile_next(rowfile_reader *r, const sh_value **row, sh_err *err);

/* Number of values in each row of the file. */
size_t rowfile_cols(const rowfile_reader *r);

void rowfile_free(rowfile_reader *r);

#endif
