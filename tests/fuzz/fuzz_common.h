/*
 * fuzz_common.h - what the libFuzzer harnesses of tests/fuzz share: a
 * byte source that cuts the fuzzer's input into choices and data, a
 * temporary data root made once per process (removed at exit), plans built
 * from spec text, every row of a plan read in a text form that two readings
 * can be compared by, and the abort that reports a broken property.
 *
 * A harness finds crashes and sanitizer errors by itself; the properties it
 * checks on top (two ways of reading the same data give the same rows) end
 * in fz_fail, which prints both sides and aborts, so libFuzzer saves the
 * input as a crash file.
 */
#ifndef SHEAF_FUZZ_COMMON_H
#define SHEAF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../../executor/plan.h"
#include "../../lib/err.h"
#include "../../lib/util.h"

/* ---- choices from the input --------------------------------------------- */

/* The fuzzer's input, read from the front (choices) as a harness likes. */
typedef struct fz_src {
    const uint8_t *p;
    size_t         n;
} fz_src;

/* The next byte of 's', or 0 when it is used up. */
uint8_t fz_byte(fz_src *s);

/* A number in [0, 'n') from the next bytes (two when n > 256), or 0. */
size_t fz_pick(fz_src *s, size_t n);

/* ---- the temporary data root -------------------------------------------- */

/*
 * The data root of this process: "<base>/sheaf-fuzz-XXXXXX" made on the
 * first call (base is /dev/shm when writable, else $TMPDIR or /tmp) and
 * removed at exit. A static string. Aborts when it cannot be made.
 */
const char *fz_root(void);

/* Write 'n' bytes to "<root>/<rel>" (created or truncated). Aborts on
 * failure. */
void fz_put(const char *rel, const void *data, size_t n);

/* Write 'n' bytes to "<root>/<rel>" gzip-compressed as 'members' (>= 1)
 * concatenated gzip members. Aborts on failure. */
void fz_put_gzip(const char *rel, const void *data, size_t n, int members);

/* ---- plans and rows ----------------------------------------------------- */

/*
 * Build the plan of 'spec' (borrowed) against fz_root(). Returns the plan
 * (the caller frees it with plan_free), or NULL with 'err' filled. Aborts
 * when plan_build breaks its contract (a plan and an error, an error
 * without a code).
 */
plan *fz_build(json_t *spec, sh_err *err);

/*
 * Build 'spec' and read every row of its plan: appends to 'sb' either
 * "build error <code>\n", or the input schema ("schema a:int,b:string\n")
 * and then what fz_read_all appends. Returns the build's code (0: built).
 *
 * With 'need_bits' not 0, also the column projection: when every row
 * reads without an error or a skipped record, reading again with the
 * input_open 'need' of those bits (column c is needed when bit c % 32 is
 * set) must give the same rows with the other columns null. Aborts when
 * not.
 */
int fz_outcome(json_t *spec, uint32_t need_bits, strbuf *sb);

/*
 * The partition property of a plain (not gzip) input: write the 'n' bytes
 * of 'data' to 'rel' under the root and build {"input": 'input'} ('input'
 * borrowed: an input object; its "path" is set to 'rel') twice: with one
 * partition, and with partition_size 'part_bytes'. Both must give the same
 * outcome (fz_outcome): the same build error, or the same schema and rows
 * (reading the partitions in turn). Aborts with both texts when not. The
 * plan of one partition is also checked with 'need_bits' (fz_outcome).
 * Returns the code of the build with one partition.
 */
int fz_check_parts(json_t *input, const char *rel, const void *data, size_t n,
                   uint64_t part_bytes, uint32_t need_bits);

/* Append 'n' bytes to 'sb' with '\\', control bytes and bytes >= 0x7f as
 * \xHH, so that texts print and compare as C strings. */
void fz_bytes_text(strbuf *sb, const char *p, size_t n);

/*
 * Append the text form of one row to 'sb': "L<line>:v|v|...\n", values as
 * i<int>, f<float>, b<0|1>, s[<bytes>] (fz_bytes_text) or - for null.
 */
void fz_row_text(strbuf *sb, uint64_t line, const sh_value *row, size_t n);

/*
 * Read every partition of 'p' in turn with input_open ('need' passed on:
 * NULL parses every column) and input_next, and append each row's text to
 * 'sb', columns whose 'mask' entry is 0 written as null ('mask' NULL:
 * none); stop at the first error, which appends "error <code>\n". At the
 * end appends "rows <n> skipped <n>\n" (the sums of input_rows and
 * input_skipped over the partitions read) and sets *skipped (may be NULL)
 * to the second. Returns 0 or the error's code.
 */
int fz_read_all(const plan *p, const unsigned char *need,
                const unsigned char *mask, strbuf *sb, uint64_t *skipped);

/* ---- failures ----------------------------------------------------------- */

/*
 * Report a broken property: print 'what', then the two texts 'a' and 'b'
 * (named 'a_name', 'b_name') with the first line where they differ, and
 * abort (libFuzzer saves the input).
 */
void fz_fail_diff(const char *what, const char *a_name, const char *a,
                  const char *b_name, const char *b) __attribute__((noreturn));

/* Print the printf-style message and abort. */
void fz_fail(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/* fz_fail_diff unless the texts are equal. */
void fz_same(const char *what, const char *a_name, const strbuf *a,
             const char *b_name, const strbuf *b);

#endif
