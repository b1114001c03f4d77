/*
 * input_int.h - the private parts of the input readers shared by input.c
 * (reading a partition) and infer.c (the planner's header and sample): the
 * gzip source, the parser of one jsonl line, and an index of column names.
 * Nothing outside the executor's input code includes it.
 */
#ifndef SHEAF_INPUT_INT_H
#define SHEAF_INPUT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/err.h"
#include "plan.h"
#include "value.h"

/* ---- gzip ---------------------------------------------------------------- */

typedef struct input_gz input_gz;

/*
 * A source of the inflated bytes of the whole file 'fd' (borrowed; read
 * with pread from offset 0, so the fd's position does not matter). gzip or
 * zlib data; concatenated gzip members are read one after the other. Memory
 * is fixed (one input block and zlib's window), whatever the file's size.
 * Free with input_gz_free.
 */
input_gz *input_gz_new(int fd);

/*
 * A csv_read_fn (csv.h) over an input_gz ('gz'): up to 'n' inflated bytes
 * into 'buf', fewer only at the end. Returns the count (0 at the end), or
 * SH_EDATA (not gzip, corrupt, truncated) or SH_EIO, with 'err' filled.
 * A file of 0 bytes reads as empty.
 */
ssize_t input_gz_read(void *gz, char *buf, size_t n, sh_err *err);

void input_gz_free(input_gz *gz);

/* ---- one jsonl line ------------------------------------------------------ */

/* The JSON type of a member's value. */
typedef enum input_json_kind {
    IJ_NULL = 0,
    IJ_FALSE,
    IJ_TRUE,
    IJ_INT,    /* a number without fraction or exponent (any size) */
    IJ_NUMBER, /* a number with a fraction or an exponent */
    IJ_STRING,
    IJ_NESTED /* an object or an array */
} input_json_kind;

/* One member of the object: key and value. */
typedef struct input_json_member {
    const char *key; /* unescaped bytes (borrowed: the line or the
                        parser's scratch) */
    size_t          key_len;
    input_json_kind kind;
    const char     *val; /* IJ_STRING: the unescaped bytes; else the
                            value's JSON text (a number as written, an
                            object or array verbatim) */
    size_t val_len;
} input_json_member;

/* A parser of jsonl lines, reused from line to line. Zero-initialise. */
typedef struct input_json {
    input_json_member *m;       /* the members of the last line (owned) */
    size_t             n;       /* members in 'm' */
    size_t             cap;     /* slots allocated in 'm' */
    char              *scratch; /* unescaped strings of the last line */
    size_t             scratch_cap;
    const char        *what; /* after an error: what was wrong */
    size_t             at;   /* after an error: its byte offset (0-based)
                                in the line */
} input_json;

/*
 * Parse one line ('n' bytes at 's', without its line end) as a JSON
 * object. Returns 0 with the members in jp->m (in the order written; a key
 * may repeat), 1 for a blank line (nothing but JSON whitespace), or -1 when
 * the line is not one JSON object (jp->what, jp->at say why). Strings
 * without escapes point into 's'; others are unescaped into jp->scratch,
 * valid until the next call (\u escapes of lone surrogates become U+FFFD).
 * Allocates only when a line is longer, or has more members, than any
 * before.
 */
int input_json_parse(input_json *jp, const char *s, size_t n);

/* Free the parser's arrays (not 'jp'); it may be used again after. */
void input_json_free(input_json *jp);

/* ---- parquet (input_pq.c) ----------------------------------------------- */

typedef struct input_pq input_pq;

/*
 * The rows of Parquet partition 'part' of 'p' from the file open on 'fd'
 * (borrowed: close it after input_pq_free), columns with need[i] == 0 (or
 * all when 'need' is NULL) read as null. Returns NULL with 'err' set
 * (not Parquet, a column that cannot be read).
 */
input_pq *input_pq_open(const plan *p, size_t part, int fd,
                        const unsigned char *need, sh_err *err);

/* The next row: 1 with *row, 0 at the end, or SH_EDATA / SH_EIO with a
 * message naming file, row group and column. */
int input_pq_next(input_pq *q, const sh_value **row, sh_err *err);

uint64_t input_pq_rows(const input_pq *q);
uint64_t input_pq_bytes(const input_pq *q);
void     input_pq_free(input_pq *q);

/* ---- column names ------------------------------------------------------- */

/*
 * An index of names (borrowed: the strings must outlive it and not move),
 * each given the number of its insertion. Zero-initialise.
 */
typedef struct input_names {
    const char **names; /* by number */
    size_t      *lens;
    size_t       n;     /* names added */
    size_t       cap;   /* slots allocated in names/lens */
    size_t      *slots; /* hash table: number + 1, 0 for empty */
    size_t       mask;  /* table size - 1 (a power of two), 0 if none */
} input_names;

/* The number of name 'key' ('len' bytes), or -1. */
long input_names_find(const input_names *ix, const char *key, size_t len);

/* Add 'name' ('len' bytes, borrowed) and return its number; it must not be
 * in the index yet. */
size_t input_names_add(input_names *ix, const char *name, size_t len);

void input_names_free(input_names *ix);

#endif
