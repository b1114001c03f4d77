/*
 * fuzz_parquet.c - libFuzzer harness of the Parquet reader (parquet.h):
 * the whole input is the file.
 *
 * pq_fuzz_one opens it and reads every row of every supported column: any
 * input must end in rows or a clean error (the sanitizers watch). When
 * that read succeeds, the file is opened again and
 * - the statistics of every column chunk, the pruning test of each
 *   comparison with a value from those statistics, and the cut into
 *   partitions are exercised (they must not crash);
 * - property: reading only the odd-numbered supported columns succeeds
 *   too and gives, row by row, the same values in those columns as the
 *   read of every column (columns are decoded independently). At most
 *   MAX_ROWS rows are compared (a few bytes of RLE can claim millions).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../executor/parquet.h"
#include "fuzz_common.h"

#define MAX_ROWS 20000

/* The text of the columns of each row with keep[i] (at most MAX_ROWS
 * rows) appended to 'sb'. Returns pq_reader_next's last answer (0 at the
 * end, <0 an error) or 1 when it stopped at MAX_ROWS. */
static int
read_cols(pq_file *f, const unsigned char *need, const unsigned char *keep,
          strbuf *sb)
{
    size_t          i, nrg = pq_num_row_groups(f), ncols = pq_num_cols(f);
    size_t         *rgs = xmalloc((nrg + 1) * sizeof *rgs);
    const sh_value *row;
    pq_reader      *r;
    uint64_t        n = 0;
    sh_err          err;
    int             rc;

    for (i = 0; i < nrg; i++)
        rgs[i] = i;
    r = pq_reader_new(f, rgs, nrg, need, &err);
    free(rgs);
    if (r == NULL)
        return err.code ? err.code : SH_EINVAL;
    while ((rc = pq_reader_next(r, &row, &err)) == 1 && n < MAX_ROWS) {
        for (i = 0; i < ncols; i++)
            if (keep[i])
                fz_row_text(sb, n, &row[i], 1);
        n++;
    }
    pq_reader_free(r);
    return rc;
}

/* Statistics, pruning and partitions of every row group and column. */
static void
poke_stats(pq_file *f)
{
    size_t    rg, c, nrg = pq_num_row_groups(f), *starts = NULL, *all;
    pq_minmax mm;
    int       op;
    int64_t   s, e;

    all = xmalloc((nrg + 1) * sizeof *all);
    for (rg = 0; rg < nrg; rg++) {
        all[rg] = rg;
        pq_rg_range(f, rg, &s, &e);
        for (c = 0; c < pq_num_cols(f); c++) {
            pq_rg_minmax(f, rg, c, &mm);
            for (op = PQ_CMP_EQ; op <= PQ_CMP_NOT_NULL; op++) {
                (void)pq_rg_may_match(f, rg, c, (pq_cmp)op,
                                      mm.has_minmax ? &mm.max : &mm.min);
            }
        }
    }
    (void)pq_partition(f, all, nrg, 1, &starts);
    free(starts);
    starts = NULL;
    (void)pq_partition(f, all, nrg, 1 << 20, &starts);
    free(starts);
    free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *need = NULL, *odd = NULL;
    strbuf         a = {0}, b = {0};
    pq_file       *f = NULL;
    size_t         i, n;
    sh_err         err;
    int            fd, ra, rb;

    if (pq_fuzz_one(data, size) != 0)
        return 0;
    fd = memfd_create("fuzz_parquet", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        fz_fail("cannot make a memfd of %zu bytes", size);
    f = pq_open(fd, "fuzz", &err);
    if (f == NULL)
        fz_fail("pq_fuzz_one read the file but pq_open fails: %s", err.msg);
    poke_stats(f);
    n = pq_num_cols(f);
    need = xcalloc(n + 1, 1);
    odd = xcalloc(n + 1, 1);
    for (i = 0; i < n; i++) {
        need[i] = pq_col_at(f, i)->why_unsupported == NULL;
        odd[i] = need[i] && i % 2 == 1;
    }
    ra = read_cols(f, need, odd, &a);
    rb = read_cols(f, odd, odd, &b);
    if (ra < 0)
        fz_fail("pq_fuzz_one read the file but a second read fails (%d)", ra);
    if (rb < 0 || ra != rb)
        fz_fail("reading the odd columns alone fails (%d) where reading "
                "every column gives %d",
                rb, ra);
    fz_same("the odd columns read alone differ from the same columns read "
            "with the others",
            "every column", &a, "odd columns", &b);
    sb_free(&a);
    sb_free(&b);
    free(need);
    free(odd);
    pq_close(f);
    close(fd);
    return 0;
}
