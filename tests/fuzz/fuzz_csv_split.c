/*
 * fuzz_csv_split.c - libFuzzer harness of csv_split (csv.h): cutting a file
 * into ranges at any byte gives, range after range, exactly the records of
 * one pass over the file.
 *
 * Input: byte 0 chooses the dialect (delimiter, quote, csv or lines) and
 * the reader's block size (the test hook of csv.c, so that refills fall at
 * every position of a record); bytes 1-2 the partition size (1 up to the
 * data's length, so the cuts fall at every byte); byte 3 how many records
 * come before the data (0-2: a header, as the planner gives csv_split the
 * offset and line of the first data record). The rest is the file.
 *
 * One pass: a csv_reader over [0, size). Split: csv_split from the first
 * data record, then a csv_reader per range (as input.c reads a partition:
 * records that start in the range, the last one read past its end).
 * Records are compared with their offsets, line numbers and fields (bytes
 * and the quoted flag); the ranges must tile [data_start, size). An error
 * (an unterminated quote) must be the same error both ways.
 *
 * Oracle: the one pass's record boundaries (start, end, line) are those of
 * a byte-at-a-time reference of the line-end rule of csv.h: LF, CR LF or a
 * lone CR ends a record outside quotes, CR LF is one line end, a CR or LF
 * inside quotes is data (a lone CR counting a line, as an LF does).
 *
 * Parallel: csv_split_par (csv_par.h) with pieces as small as one byte on
 * 2 to 4 threads gives the same ranges, lines and error as csv_split.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../executor/csv.h"
#include "../../executor/csv_par.h"
#include "fuzz_common.h"

/* The test hook of csv.c: the block size of the readers made after it. */
void csv_set_block_bytes_for_test(size_t block_bytes);
/* The test hook of csv_par.c: the smallest piece and the threads. */
void csv_par_set_for_test(uint64_t min_piece, size_t threads);

/* csv_split_par of the same arguments gives what csv_split gave: 'rc',
 * the error's message, the ranges 'rg' ('n_rg'). */
static void
check_par(int fd, uint64_t data_start, uint64_t line, size_t n,
          const csv_dialect *d, uint64_t part_bytes, size_t threads, int rc,
          const sh_err *err, const csv_range *rg, size_t n_rg)
{
    csv_range *pr = NULL;
    size_t     n_pr = 0;
    sh_err     perr = {0};
    int        prc;

    csv_par_set_for_test(1, threads);
    prc = csv_split_par(fd, data_start, line, n, d, part_bytes, &pr, &n_pr,
                        &perr);
    csv_par_set_for_test(0, 0);
    if (prc != rc)
        fz_fail("csv_split_par returned %d, csv_split %d", prc, rc);
    if (rc != 0 && strcmp(perr.msg, err->msg) != 0)
        fz_fail("csv_split_par's error '%s', csv_split's '%s'", perr.msg,
                err->msg);
    if (rc == 0 && n_pr != n_rg)
        fz_fail("csv_split_par gave %zu ranges, csv_split %zu", n_pr, n_rg);
    for (size_t i = 0; rc == 0 && i < n_rg; i++)
        if (pr[i].start != rg[i].start || pr[i].end != rg[i].end
            || pr[i].line != rg[i].line)
            fz_fail("range %zu: csv_split_par %llu-%llu line %llu, csv_split "
                    "%llu-%llu line %llu",
                    i, (unsigned long long)pr[i].start,
                    (unsigned long long)pr[i].end,
                    (unsigned long long)pr[i].line,
                    (unsigned long long)rg[i].start,
                    (unsigned long long)rg[i].end,
                    (unsigned long long)rg[i].line);
    free(pr);
}

static const char   delims[] = {',', ';', '\t', '|'};
static const char   quotes[] = {'"', '\''};
static const size_t blocks[] = {0, 1, 2, 3, 5, 7, 16, 64};

/* Append the text of the record 'r' just returned ('f', 'nf'). */
static void
record_text(strbuf *sb, const csv_reader *r, const csv_field *f, size_t nf)
{
    sb_printf(sb, "L%llu@%llu-%llu:", (unsigned long long)csv_reader_line(r),
              (unsigned long long)csv_reader_record_start(r),
              (unsigned long long)csv_reader_offset(r));
    for (size_t i = 0; i < nf; i++) {
        sb_printf(sb, "%s%c%zu:", i ? "," : "", f[i].quoted ? 'Q' : 'U',
                  f[i].len);
        fz_bytes_text(sb, f[i].ptr, f[i].len);
    }
    sb_putc(sb, '\n');
}

/* 2 at a CR LF at s[i], else 1 (LF or a lone CR); 'n' bytes in all. */
static size_t
eol_len(const uint8_t *s, size_t n, size_t i)
{
    return s[i] == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
}

/*
 * The reference: "L<line>@<start>-<end>" of every record of the 'n' bytes
 * at 's' read whole, one byte at a time, then "error" when the data ends
 * inside quotes.
 */
static void
ref_bounds(const uint8_t *s, size_t n, const csv_dialect *d, strbuf *sb)
{
    size_t   i = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    uint64_t line = 1;

    while (i < n) {
        size_t   start = i;
        uint64_t rec_line = line;
        bool     field_start = true, inq = false;

        if (!d->lines && (s[i] == '\n' || s[i] == '\r')) {
            i += eol_len(s, n, i); /* an empty line: no record */
            line++;
            continue;
        }
        for (;;) {
            if (i == n) {
                if (inq) {
                    sb_puts(sb, "error\n");
                    return;
                }
                break;
            }
            if (inq) {
                if (s[i] == (uint8_t)d->quote) {
                    if (i + 1 < n && s[i + 1] == (uint8_t)d->quote)
                        i++;
                    else
                        inq = false;
                } else if (s[i] == '\n'
                           || (s[i] == '\r' && eol_len(s, n, i) == 1)) {
                    line++;
                }
                i++;
                continue;
            }
            if (s[i] == '\n' || s[i] == '\r') {
                i += eol_len(s, n, i);
                line++;
                break;
            }
            if (!d->lines && field_start && s[i] == (uint8_t)d->quote)
                inq = true;
            field_start = !d->lines && s[i] == (uint8_t)d->delim;
            i++;
        }
        sb_printf(sb, "L%llu@%zu-%zu\n", (unsigned long long)rec_line, start,
                  i);
    }
}

/*
 * Read the records of [start, end) of 'fd' into 'sb', skipping the first
 * 'skip', and the boundaries of all into 'bounds' (if not NULL) as
 * ref_bounds writes them. Checks that the offsets move forward. Returns 0,
 * or the error code (also appended).
 */
static int
read_range(int fd, uint64_t start, uint64_t end, uint64_t line,
           const csv_dialect *d, size_t skip, strbuf *sb, strbuf *bounds)
{
    csv_reader      *r = csv_reader_new(fd, start, end, line, d);
    const csv_field *f;
    size_t           nf;
    uint64_t         prev_end = start, prev_line = line;
    sh_err           err = {0};
    int              rc;

    while ((rc = csv_reader_next(r, &f, &nf, &err)) == 1) {
        uint64_t rs = csv_reader_record_start(r), re = csv_reader_offset(r);

        if (rs < prev_end || re <= rs || rs >= end)
            fz_fail("record at %llu-%llu after %llu (range %llu-%llu)",
                    (unsigned long long)rs, (unsigned long long)re,
                    (unsigned long long)prev_end, (unsigned long long)start,
                    (unsigned long long)end);
        if (csv_reader_line(r) < prev_line)
            fz_fail("line %llu after line %llu",
                    (unsigned long long)csv_reader_line(r),
                    (unsigned long long)prev_line);
        if (nf == 0)
            fz_fail("a record of no fields at %llu", (unsigned long long)rs);
        prev_end = re;
        prev_line = csv_reader_line(r);
        if (bounds != NULL)
            sb_printf(bounds, "L%llu@%llu-%llu\n",
                      (unsigned long long)prev_line, (unsigned long long)rs,
                      (unsigned long long)re);
        if (skip > 0) {
            skip--;
            continue;
        }
        record_text(sb, r, f, nf);
    }
    if (rc < 0) {
        if (err.code != rc || err.msg[0] == '\0')
            fz_fail("reader error %d with err.code %d, message '%s'", rc,
                    err.code, err.msg);
        sb_printf(sb, "error %d\n", rc);
        if (bounds != NULL)
            sb_puts(bounds, "error\n");
    }
    csv_reader_free(r);
    return rc;
}

/*
 * The offset and line of the record after the first 'k' records of the
 * file, as the planner takes them after a header. Returns 0 when there is
 * no such record (nothing to split), else 1.
 */
static int
data_start_after(int fd, uint64_t size, const csv_dialect *d, size_t k,
                 uint64_t *start, uint64_t *line)
{
    csv_reader      *r = csv_reader_new(fd, 0, size, 1, d);
    const csv_field *f;
    size_t           nf, i;
    sh_err           err;
    int              rc = 1;

    for (i = 0; i <= k && rc == 1; i++)
        rc = csv_reader_next(r, &f, &nf, &err);
    if (rc == 1) {
        *start = csv_reader_record_start(r);
        *line = csv_reader_line(r);
    }
    csv_reader_free(r);
    return rc == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int  fd = -1;
    fz_src      src = {data, size};
    csv_dialect d = {0};
    uint8_t     flags = fz_byte(&src);
    size_t      part_choice, skip, n;
    uint64_t    part_bytes, data_start = 0, line = 1;
    csv_range  *rg = NULL;
    size_t      n_rg = 0;
    strbuf      one = {0}, split = {0}, got_b = {0}, ref_b = {0};
    sh_err      err = {0};
    int         rc_one, rc_split = 0;

    if (fd < 0 && (fd = memfd_create("fuzz_csv_split", 0)) < 0)
        fz_fail("memfd_create failed");
    d.delim = delims[flags & 3];
    d.quote = quotes[(flags >> 2) & 1];
    d.lines = (flags >> 3) & 1;
    csv_set_block_bytes_for_test(blocks[(flags >> 4) & 7]);
    part_choice = (size_t)fz_byte(&src) << 8;
    part_choice |= fz_byte(&src);
    skip = fz_byte(&src) % 3;
    n = src.n;
    part_bytes = n > 0 ? 1 + part_choice % n : 1;

    if (ftruncate(fd, 0) != 0
        || (n > 0 && pwrite(fd, src.p, n, 0) != (ssize_t)n))
        fz_fail("cannot write the memfd");

    /* One pass over the whole file. */
    sb_puts(&one, "");
    sb_puts(&split, "");
    sb_puts(&got_b, "");
    sb_puts(&ref_b, "");
    rc_one = read_range(fd, 0, n, 1, &d, skip, &one, &got_b);
    ref_bounds(src.p, n, &d, &ref_b);
    fz_same("one pass's records are not the reference's", "reference", &ref_b,
            "one pass", &got_b);

    /* The split, then a reader per range. */
    if (!data_start_after(fd, n, &d, skip, &data_start, &line))
        goto done; /* no data record: the planner does not split */
    rc_split = csv_split(fd, data_start, line, n, &d, part_bytes, &rg, &n_rg,
                         &err);
    check_par(fd, data_start, line, n, &d, part_bytes, 2 + skip, rc_split, &err,
              rg, n_rg);
    if (rc_split != 0) {
        if (rc_split != err.code || err.msg[0] == '\0')
            fz_fail("csv_split error %d with err.code %d, message '%s'",
                    rc_split, err.code, err.msg);
        if (rc_one == 0)
            fz_fail("csv_split failed (%s) where one pass reads the file",
                    err.msg);
        /* The one pass's error, its last line, is the split's. */
        sb_printf(&split, "error %d\n", rc_split);
        if (one.len < split.len
            || memcmp(one.data + one.len - split.len, split.data, split.len)
            || (one.len > split.len
                && one.data[one.len - split.len - 1] != '\n'))
            fz_fail_diff("csv_split and one pass fail differently", "one pass",
                         one.data, "split", split.data);
        goto done;
    }
    if (rc_one != 0)
        fz_fail("one pass fails (%s) where csv_split cuts the file",
                one.data + one.len - (one.len > 40 ? 40 : one.len));
    if (n_rg == 0)
        fz_fail("csv_split gave no range for a file with a record at %llu",
                (unsigned long long)data_start);
    for (size_t i = 0; i < n_rg; i++) {
        uint64_t want = i == 0 ? data_start : rg[i - 1].end;

        if (rg[i].start != want || rg[i].end <= rg[i].start
            || (i == n_rg - 1 && rg[i].end != n))
            fz_fail("range %zu of %zu is %llu-%llu (want start %llu, file "
                    "size %zu)",
                    i, n_rg, (unsigned long long)rg[i].start,
                    (unsigned long long)rg[i].end, (unsigned long long)want, n);
        if (i > 0 && rg[i].line < rg[i - 1].line)
            fz_fail("range %zu starts at line %llu, before range %zu", i,
                    (unsigned long long)rg[i].line, i - 1);
        if (read_range(fd, rg[i].start, rg[i].end, rg[i].line, &d, 0, &split,
                       NULL)
            != 0)
            break;
    }
    fz_same("the ranges of csv_split read other records than one pass",
            "one pass", &one, "ranges", &split);

done:
    csv_set_block_bytes_for_test(0);
    free(rg);
    sb_free(&one);
    sb_free(&split);
    sb_free(&got_b);
    sb_free(&ref_b);
    return 0;
}
