/*
 * fuzz_jsonl.c - libFuzzer harness of JSON-lines input (plan_build's key
 * and type inference, input.c's line parser and typed rows).
 *
 * Input: byte 0 chooses on_error fail or skip, a type forced on column "a"
 * (input.columns; the seeds use "a" as a key) and the reader's block size
 * (the test hook of csv.c); bytes 1-2 the partition size; byte 3 the
 * columns read (the need of input_open: column c < 8 when bit c is set).
 * The rest is the file.
 *
 * Property: the plan of the file cut into partitions of that size reads
 * the same rows (values, lines, skipped records) as the plan of one
 * partition, or both fail the same way; reading only some columns gives
 * the same rows with the others null (fz_check_parts). Sanitizers check
 * the parser on every line.
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
    uint8_t need;
    size_t  part_choice, n;
    json_t *in;

    part_choice = (size_t)fz_byte(&src) << 8;
    part_choice |= fz_byte(&src);
    need = fz_byte(&src);
    n = src.n;
    csv_set_block_bytes_for_test(blocks[flags & 7]);
    in = json_pack("{s:s, s:s}", "format", "jsonl", "on_error",
                   (flags >> 3) & 1 ? "skip" : "fail");
    if (types[(flags >> 4) % 5] != NULL)
        json_object_set_new(in, "columns",
                            json_pack("{s:s}", "a", types[(flags >> 4) % 5]));
    fz_check_parts(in, "in.jsonl", src.p, n, n > 0 ? 1 + part_choice % n : 1,
                   need);
    json_decref(in);
    csv_set_block_bytes_for_test(0);
    return 0;
}
