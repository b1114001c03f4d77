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

#include "../lib/err.h"
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

/*
 * A sectioned row file: 'n_sections' streams of rows in one file, so a
 * task that splits its rows among buckets writes (and fsyncs) one file.
 * Each section is written through its own writer (rowfile_sections_writer:
 * rowfile_write only; never close or abort it) and read back, in the order
 * written, with rowfile_open_section.
 */
typedef struct rowfile_sections rowfile_sections;

/* Create "<path>.tmp" for 'n_sections' (>= 1) streams of rows of 'n_cols'
 * values. NULL with SH_EIO on failure. */
rowfile_sections *rowfile_sections_create(const char *path, size_t n_cols,
                                          size_t n_sections, sh_err *err);

/* The writer of section 'i' (< n_sections), owned by 's'. */
rowfile_writer *rowfile_sections_writer(rowfile_sections *s, size_t i);

/* Bytes of the file so far, buffered ones included (not the trailers and
 * the index). */
uint64_t rowfile_sections_bytes(const rowfile_sections *s);

/* As rowfile_close, for every section at once: one fsync, one rename.
 * Frees 's' whatever happens. Returns 0 or SH_EIO. */
int rowfile_sections_close(rowfile_sections *s, sh_err *err);

/* Remove the temporary file and free 's'. NULL-safe. */
void rowfile_sections_abort(rowfile_sections *s);

typedef struct rowfile_reader rowfile_reader;

/* The read buffer of rowfile_open. */
#define ROWFILE_BUF_BYTES ((size_t)1 << 20)

/* Open 'path' for reading. NULL with SH_EIO on failure (SH_EDATA when it
 * is not a row file). Reads through a ROWFILE_BUF_BYTES buffer. */
rowfile_reader *rowfile_open(const char *path, sh_err *err);

/* As rowfile_open, with a read buffer of 'buf_bytes' (at least 4 KiB; it
 * grows for a row larger than it). A merger of many files uses small ones
 * to bound its memory. */
rowfile_reader *rowfile_open_buf(const char *path, size_t buf_bytes,
                                 sh_err *err);

/* Open section 'section' of the sectioned file 'path' for reading, with a
 * read buffer of 'buf_bytes' as rowfile_open_buf. NULL with SH_EIO,
 * SH_EDATA (not a sectioned row file, a corrupt index) or SH_EINVAL (no
 * such section). */
rowfile_reader *rowfile_open_section(const char *path, size_t section,
                                     size_t buf_bytes, sh_err *err);

/* Bytes of section 'section' of 'path' (its header, rows and trailer), or
 * 0 when it cannot be read. */
uint64_t rowfile_section_bytes(const char *path, size_t section);

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
