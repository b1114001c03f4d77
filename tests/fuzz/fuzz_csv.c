/*
 * fuzz_csv.c - libFuzzer harness of the CSV scanner (csv.h) and of CSV
 * input read as typed rows (plan_build, input.h).
 *
 * Input: byte 0 chooses the delimiter, the quote, header or not, on_error
 * fail or skip, and the reader's block size (the test hook of csv.c);
 * byte 1 how a stream hands out its bytes (the sizes of its reads),
 * whether the scanner reads lines instead of CSV records, and the columns
 * read (the need of input_open: column c < 6 when bit c is set, none
 * checked when no bit is); bytes 2-3 the
 * partition size; byte 4 a type forced on a column (input.columns, when
 * there is no header: the columns are then column_1, column_2, ...). The
 * rest is the file.
 *
 * Properties:
 * - the scanner reading the file with pread (csv_reader_new) and reading it
 *   as a stream handed out in reads of odd sizes (csv_reader_new_fn, as
 *   gzip input is read) give the same records, offsets, lines and fields,
 *   or the same error;
 * - the plan of the file cut into partitions of that size reads the same
 *   rows (values, lines, skipped records) as the plan of one partition, or
 *   both fail the same way; reading only some columns gives the same rows
 *   with the others null (fz_check_parts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../executor/csv.h"
#include "fuzz_common.h"

/* The test hook of csv.c: the block size of the readers made after it. */
void csv_set_block_bytes_for_test(size_t block_bytes);

static const char        delims[] = {',', ';', '\t', '|'};
static const char        quotes[] = {'"', '\''};
static const size_t      blocks[] = {0, 1, 2, 3, 5, 16, 64, 4096};
static const char *const types[] = {"int", "float", "bool", "string"};

/* A stream over bytes in memory, read in pieces of varying sizes. */
typedef struct stream {
    const uint8_t *p;
    size_t         n;
    size_t         at;
    uint32_t       rng; /* chooses the size of each read */
} stream;

/* csv_read_fn of a stream: 1 to 'n' bytes, often fewer than asked. */
static ssize_t
stream_read(void *ctx, char *buf, size_t n, sh_err *err)
{
    stream *s = ctx;
    size_t  k;

    (void)err;
    if (n == 0)
        fz_fail("csv_read_fn asked for 0 bytes");
    s->rng = s->rng * 1103515245u + 12345u;
    k = 1 + (s->rng >> 16) % 9;
    if ((s->rng >> 8) % 4 == 0)
        k = n; /* sometimes all it asks for */
    if (k > n)
        k = n;
    if (k > s->n - s->at)
        k = s->n - s->at;
    memcpy(buf, s->p + s->at, k);
    s->at += k;
    return (ssize_t)k;
}

/* Append every record of 'r' (and its error, if any) to 'sb'. */
static void
records_text(csv_reader *r, strbuf *sb)
{
    const csv_field *f;
    size_t           nf;
    sh_err           err = {0};
    int              rc;

    sb_puts(sb, "");
    while ((rc = csv_reader_next(r, &f, &nf, &err)) == 1) {
        sb_printf(sb,
                  "L%llu@%llu-%llu:", (unsigned long long)csv_reader_line(r),
                  (unsigned long long)csv_reader_record_start(r),
                  (unsigned long long)csv_reader_offset(r));
        for (size_t i = 0; i < nf; i++) {
            sb_printf(sb, "%s%c%zu:", i ? "," : "", f[i].quoted ? 'Q' : 'U',
                      f[i].len);
            fz_bytes_text(sb, f[i].ptr, f[i].len);
        }
        sb_putc(sb, '\n');
    }
    if (rc < 0)
        sb_printf(sb, "error %d\n", rc);
    /* After the end or an error, the reader says the same again. */
    if (csv_reader_next(r, &f, &nf, &err) != rc)
        fz_fail("csv_reader_next returned %d, then something else", rc);
    sb_printf(sb, "bytes %llu\n", (unsigned long long)csv_reader_bytes(r));
}

/* The scanner by pread and as a stream: the same records. */
static void
check_stream(int fd, const uint8_t *data, size_t n, const csv_dialect *d,
             uint8_t how)
{
    stream      s = {data, n, 0, how};
    csv_reader *r;
    strbuf      a = {0}, b = {0};

    r = csv_reader_new(fd, 0, n, 1, d);
    records_text(r, &a);
    csv_reader_free(r);
    r = csv_reader_new_fn(stream_read, &s, 1, d);
    records_text(r, &b);
    csv_reader_free(r);
    fz_same("a stream read in pieces gives other records than pread", "pread",
            &a, "stream", &b);
    sb_free(&a);
    sb_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int  fd = -1;
    fz_src      src = {data, size};
    uint8_t     flags = fz_byte(&src), how = fz_byte(&src), force;
    csv_dialect d = {0};
    size_t      part_choice, n;
    json_t     *in;

    if (fd < 0 && (fd = memfd_create("fuzz_csv", 0)) < 0)
        fz_fail("memfd_create failed");
    d.delim = delims[flags & 3];
    d.quote = quotes[(flags >> 2) & 1];
    d.header = (flags >> 3) & 1;
    part_choice = (size_t)fz_byte(&src) << 8;
    part_choice |= fz_byte(&src);
    force = fz_byte(&src);
    n = src.n;

    /* The scanner. */
    if (ftruncate(fd, 0) != 0
        || (n > 0 && pwrite(fd, src.p, n, 0) != (ssize_t)n))
        fz_fail("cannot write the memfd");
    csv_set_block_bytes_for_test(blocks[(flags >> 5) & 7]);
    d.lines = how >> 7;
    check_stream(fd, src.p, n, &d, how);
    d.lines = 0;

    /* Typed rows, one partition and many. */
    in = json_pack("{s:s, s:{s:b, s:s#, s:s#}, s:s}", "format", "csv", "csv",
                   "header", d.header, "delimiter", &d.delim, 1, "quote",
                   &d.quote, 1, "on_error", (flags >> 4) & 1 ? "skip" : "fail");
    if (in == NULL)
        fz_fail("json_pack failed");
    if (force != 0 && !d.header) {
        char name[32];

        snprintf(name, sizeof name, "column_%d", 1 + (force >> 2) % 4);
        json_object_set_new(in, "columns",
                            json_pack("{s:s}", name, types[force & 3]));
    }
    fz_check_parts(in, "in.csv", src.p, n, n > 0 ? 1 + part_choice % n : 1,
                   how & 0x3f);
    json_decref(in);
    csv_set_block_bytes_for_test(0);
    return 0;
}
