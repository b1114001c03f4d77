/*
 * test_csv_par.c - unit tests of executor/csv_par: the split in pieces on
 * several threads gives exactly csv_split's ranges, lines and errors, over
 * random files whose guessed piece starts fall on record starts, inside
 * quoted fields (quoted line ends, many of them), on empty lines and CRLF
 * ends, for CSV and lines, with 2 to 8 threads and many partition sizes.
 */
#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../executor/csv.h"
#include "../../executor/csv_par.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

/* The test hook of csv_par.c. */
void csv_par_set_for_test(uint64_t min_piece, size_t threads);

static const csv_dialect comma = {',', '"', 0, 0};
static const csv_dialect lines = {',', '"', 0, 1};

static uint64_t rng_state;

static unsigned
rng(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % n);
}

/*
 * Random CSV text of about 'size' bytes: records of 1-4 fields, plain or
 * quoted; quoted fields hold commas, doubled quotes and, 'nl_pct' percent
 * of the time, line ends (so that many line starts are inside a field);
 * empty lines, CRLF and lone CR ends here and there.
 */
static const char *
random_eol(void)
{
    static const char *const eol[] = {"\n", "\r\n", "\r"};

    return rng(4) ? "\n" : eol[rng(3)];
}

static char *
random_csv(size_t size, unsigned nl_pct, size_t *len)
{
    strbuf b = {0};

    while (b.len < size) {
        unsigned nf = 1 + rng(4), f;

        if (rng(20) == 0)
            sb_puts(&b, random_eol()); /* an empty line */
        for (f = 0; f < nf; f++) {
            unsigned w = rng(12), i;

            if (f > 0)
                sb_putc(&b, ',');
            if (rng(3) == 0) {
                sb_putc(&b, '"');
                for (i = 0; i < w; i++) {
                    unsigned c = rng(100);

                    if (c < nl_pct)
                        sb_puts(&b, random_eol());
                    else if (c < nl_pct + 5)
                        sb_append(&b, "\"\"", 2);
                    else if (c < nl_pct + 10)
                        sb_putc(&b, ',');
                    else
                        sb_putc(&b, (char)('a' + rng(26)));
                }
                sb_putc(&b, '"');
            } else {
                for (i = 0; i < w; i++)
                    sb_putc(&b, (char)('a' + rng(26)));
            }
        }
        sb_puts(&b, random_eol());
    }
    *len = b.len;
    return b.data; /* the caller frees it */
}

/* csv_split and csv_split_par of 'data' agree: ranges, lines, errors. */
static void
check_same(const char *data, size_t len, const csv_dialect *d,
           uint64_t data_start, uint64_t part)
{
    csv_range *a = NULL, *b = NULL;
    size_t     na = 0, nb = 0, i;
    sh_err     ea, eb;
    int        fd = th_temp_file(data, len), ra, rb;

    CU_ASSERT_FATAL(fd >= 0);
    sh_err_clear(&ea);
    sh_err_clear(&eb);
    ra = csv_split(fd, data_start, 1, len, d, part, &a, &na, &ea);
    rb = csv_split_par(fd, data_start, 1, len, d, part, &b, &nb, &eb);
    CHECK_INT(ra, rb);
    if (ra != 0) {
        CHECK(strcmp(ea.msg, eb.msg) == 0, "errors: '%s' and '%s'", ea.msg,
              eb.msg);
    }
    CHECK(na == nb, "ranges: %zu and %zu (part %llu, len %zu)", na, nb,
          (unsigned long long)part, len);
    for (i = 0; i < na && i < nb; i++) {
        if (a[i].start != b[i].start || a[i].end != b[i].end
            || a[i].line != b[i].line) {
            CHECK(false,
                  "range %zu: [%llu, %llu) line %llu and [%llu, %llu) "
                  "line %llu (part %llu)",
                  i, (unsigned long long)a[i].start,
                  (unsigned long long)a[i].end, (unsigned long long)a[i].line,
                  (unsigned long long)b[i].start, (unsigned long long)b[i].end,
                  (unsigned long long)b[i].line, (unsigned long long)part);
            break;
        }
    }
    free(a);
    free(b);
    close(fd);
}

/* Random files, quoted line ends from none to most, 2 to 8 threads. */
static void
test_random_files(void)
{
    static const unsigned nl[] = {0, 2, 10, 40};
    static const size_t   threads[] = {2, 3, 8};
    size_t                t, j;
    unsigned              round;

    for (t = 0; t < sizeof threads / sizeof *threads; t++) {
        csv_par_set_for_test(1, threads[t]);
        for (j = 0; j < sizeof nl / sizeof *nl; j++) {
            for (round = 0; round < 8; round++) {
                size_t   len;
                char    *data;
                uint64_t part;

                rng_state = 1000 * j + round + 77 * t;
                data = random_csv(20000 + rng(20000), nl[j], &len);
                for (part = 1; part < len; part = part * 3 + rng(50))
                    check_same(data, len, &comma, 0, part);
                check_same(data, len, &comma, 7, 997);
                check_same(data, len, &lines, 0, 1500);
                free(data);
            }
        }
    }
    csv_par_set_for_test(0, 0);
}

/* An unterminated quote: the same error, at the same line, whichever
 * piece finds it. */
static void
test_errors_same(void)
{
    unsigned round;

    csv_par_set_for_test(1, 4);
    for (round = 0; round < 12; round++) {
        size_t len, cut;
        char  *data;

        rng_state = 5000 + round;
        data = random_csv(30000, 5, &len);
        /* A quote opened at a line start late in the file, never closed. */
        cut = len - 1 - rng((unsigned)(len / (round % 3 + 1)));
        while (cut > 0 && data[cut - 1] != '\n')
            cut--;
        data[cut] = '"';
        memset(data + cut + 1, 'x', len - cut - 1);
        check_same(data, len, &comma, 0, 1000);
        check_same(data, len, &comma, 0, 7001);
        free(data);
    }
    csv_par_set_for_test(0, 0);
}

/* Small data, default limits: one pass, csv_split's result. */
static void
test_small_serial(void)
{
    static const char data[] = "a,b\n1,\"x\ny\"\n2,z\n";

    check_same(data, sizeof data - 1, &comma, 4, 3);
    check_same(data, sizeof data - 1, &comma, 0, 1);
}

void
test_csv_par_register(void)
{
    CU_pSuite s = CU_add_suite("csv_par", NULL, NULL);

    CU_add_test(s, "random files: as csv_split", test_random_files);
    CU_add_test(s, "errors: as csv_split", test_errors_same);
    CU_add_test(s, "small data: one pass", test_small_serial);
}
