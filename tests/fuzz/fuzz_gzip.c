/*
 * fuzz_gzip.c - libFuzzer harness of gzip input (input_gz through
 * plan_build and input.h), in the three formats.
 *
 * Input: byte 0 chooses the mode, the format (csv with a header, jsonl,
 * lines), the number of gzip members and on_error; byte 1 the reader's
 * block size (the test hook of csv.c) and the columns read (the need of
 * input_open, fz_outcome) or, for a truncated file, where it is cut (with
 * byte 2). The rest is the data. Modes:
 * - raw: the data is the .gz file itself (mostly not gzip, or corrupt):
 *   plan_build and the reading must fail cleanly or read rows; the
 *   sanitizers watch;
 * - same: the data is compressed as 1-4 concatenated gzip members; the
 *   compressed file gives exactly the outcome (schema and rows, or the
 *   same error) of the plain file;
 * - truncated: the data compressed as one member and cut short (at least
 *   one byte left): building or reading must fail; a truncated file is
 *   never read as a shorter one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

/* The test hook of csv.c: the block size of the readers made after it. */
void csv_set_block_bytes_for_test(size_t block_bytes);

enum { MODE_RAW = 0, MODE_SAME, MODE_TRUNCATED, MODE_SAME2 };

static const size_t      blocks[] = {0, 1, 3, 64};
static const char *const formats[] = {"csv", "jsonl", "lines", "csv"};
static const char *const exts[] = {"csv", "jsonl", "txt", "csv"};

/* {"input": {"path": <rel>, "format", "compression", "on_error"}}. */
static json_t *
spec_of(const char *rel, int fmt, int gzip, int skip)
{
    json_t *s = json_pack("{s:{s:s, s:s, s:s, s:s}}", "input", "path", rel,
                          "format", formats[fmt], "compression",
                          gzip ? "gzip" : "none", "on_error",
                          skip ? "skip" : "fail");

    if (s == NULL)
        fz_fail("json_pack failed");
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_src      src = {data, size};
    uint8_t     flags = fz_byte(&src), b1 = fz_byte(&src), b2 = fz_byte(&src);
    int         mode = flags & 3, fmt = (flags >> 2) & 3;
    int         members = 1 + ((flags >> 4) & 3), skip = (flags >> 6) & 1;
    char        plain[32], gz[32], *path;
    json_t     *s_plain = NULL, *s_gz = NULL;
    strbuf      a = {0}, b = {0};
    struct stat st;

    csv_set_block_bytes_for_test(blocks[b1 & 3]);
    snprintf(plain, sizeof plain, "in.%s", exts[fmt]);
    snprintf(gz, sizeof gz, "in.%s.gz", exts[fmt]);
    s_gz = spec_of(gz, fmt, 1, skip);
    if (mode == MODE_RAW) {
        fz_put(gz, src.p, src.n);
        fz_outcome(s_gz, 0, &b);
        goto done;
    }
    if (mode == MODE_TRUNCATED) {
        fz_put_gzip(gz, src.p, src.n, 1);
        path = xasprintf("%s/%s", fz_root(), gz);
        if (stat(path, &st) != 0 || st.st_size < 2)
            fz_fail("cannot stat %s, or it is too short", path);
        /* Keep 1 .. size-1 bytes. */
        if (truncate(path, 1
                               + (off_t)(((size_t)b1 << 6 | b2)
                                         % (size_t)(st.st_size - 1)))
            != 0)
            fz_fail("cannot truncate %s", path);
        free(path);
        fz_outcome(s_gz, 0, &b);
        if (strncmp(b.data, "build error ", 12) != 0
            && strstr(b.data, "\nerror ") == NULL)
            fz_fail_diff("a truncated gzip file read without an error",
                         "plain data", "(not read)", "truncated gzip", b.data);
        goto done;
    }
    fz_put(plain, src.p, src.n);
    fz_put_gzip(gz, src.p, src.n, members);
    s_plain = spec_of(plain, fmt, 0, skip);
    fz_outcome(s_plain, 0, &a);
    fz_outcome(s_gz, b1 >> 2, &b);
    fz_same("the gzip file reads other rows than the plain file", "plain", &a,
            "gzip", &b);

done:
    csv_set_block_bytes_for_test(0);
    json_decref(s_plain);
    json_decref(s_gz);
    sb_free(&a);
    sb_free(&b);
    return 0;
}
