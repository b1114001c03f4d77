/*
 * fuzz_lines.c - libFuzzer harness of lines input (one string column
 * "line"; plan_build and input.h).
 *
 * Input: byte 0 chooses the reader's block size (the test hook of csv.c)
 * and the type forced on "line" (input.columns: a line that is no such
 * value is bad data), on_error fail or skip, and whether "line" is read
 * at all (the need of input_open); bytes 1-2 the partition size. The rest is
 * the file.
 *
 * Property: the plan of the file cut into partitions of that size reads
 * the same rows (lines and their numbers, skipped records) as the plan of
 * one partition, or both fail the same way (fz_check_parts).
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"

/* The test hook of csv.c: the block size of the readers made after it. */
void csv_set_block_bytes_for_test(size_t block_bytes);

static const size_t      blocks[] = {0, 1, 2, 3, 5, 16, 64, 4096};
static const char *const types[] = {NULL, "int", "float", "bool", "string"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_src  src = {data, size};
    uint8_t flags = fz_byte(&src);
    size_t  part_choice, n;
    json_t *in;

    part_choice = (size_t)fz_byte(&src) << 8;
    part_choice |= fz_byte(&src);
    n = src.n;
    csv_set_block_bytes_for_test(blocks[flags & 7]);
    in = json_pack("{s:s, s:s}", "format", "lines", "on_error",
                   (flags >> 3) & 1 ? "skip" : "fail");
    if (types[(flags >> 4) % 5] != NULL)
        json_object_set_new(
            in, "columns", json_pack("{s:s}", "line", types[(flags >> 4) % 5]));
    fz_check_parts(in, "in.txt", src.p, n, n > 0 ? 1 + part_choice % n : 1,
                   flags >> 7 ? 2 : 0);
    json_decref(in);
    csv_set_block_bytes_for_test(0);
    return 0;
}
