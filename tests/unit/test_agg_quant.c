/*
 * test_agg_quant.c - unit tests of executor/agg_quant.c: quantile_cont
 * interpolation on known data (odd and even n, q = 0, 0.5, 0.9, 1),
 * median/quantile/min_by/max_by through a hashagg with nulls and an
 * all-null group, the same rows split into partials that are merged in
 * another table (the same answer), ties of min_by/max_by (by the value),
 * a corrupt partial state (an error, not a crash), and the names and
 * result types. approx_quantile (KLL) on random and sorted data, merged
 * from many partials: the rank of each answer within 2 % of n of q n.
 * A group over the final half's budget: its values sorted out of core,
 * the answers equal to a sort-based oracle's and to the in-memory ones.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "../../executor/agg.h"
#include "../../executor/rowfile.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static void
test_cont(void)
{
    double a[] = {4, 1, 3, 2};
    double b[] = {3, 1, 2};
    double c[10];
    double one[] = {7};
    int    i;

    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(a, 4, 0.5), 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(a, 4, 0), 1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(a, 4, 1), 4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(a, 4, 0.25), 1.75, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(b, 3, 0.5), 2, 1e-12);
    for (i = 0; i < 10; i++)
        c[i] = 10 - i;
    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(c, 10, 0.9), 9.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(agg_quantile_cont(one, 1, 0.3), 7, 1e-12);
}

static void
test_types(void)
{
    agg_fn f;

    CU_ASSERT_EQUAL(agg_fn_parse("min_by", &f), 0);
    CU_ASSERT_EQUAL(f, AGG_MIN_BY);
    CU_ASSERT_EQUAL(agg_fn_parse("max_by", &f), 0);
    CU_ASSERT_EQUAL(f, AGG_MAX_BY);
    CU_ASSERT_EQUAL(agg_fn_parse("median", &f), 0);
    CU_ASSERT_EQUAL(f, AGG_MEDIAN);
    CU_ASSERT_EQUAL(agg_fn_parse("quantile", &f), 0);
    CU_ASSERT_EQUAL(f, AGG_QUANTILE);
    CU_ASSERT_STRING_EQUAL(agg_fn_name(AGG_QUANTILE), "quantile");
    CU_ASSERT_EQUAL(agg_result_type(AGG_MEDIAN, SH_INT, 1), SH_FLOAT);
    CU_ASSERT_EQUAL(agg_result_type(AGG_QUANTILE, SH_FLOAT, 1), SH_FLOAT);
    CU_ASSERT_EQUAL(agg_result_type(AGG_QUANTILE, SH_STRING, 1), SH_NULL);
    CU_ASSERT_EQUAL(agg_result_type(AGG_MEDIAN, SH_DATE, 1), SH_NULL);
    CU_ASSERT_EQUAL(agg_result_type(AGG_MIN_BY, SH_STRING, 1), SH_STRING);
    CU_ASSERT_EQUAL(agg_result_type(AGG_MAX_BY, SH_DATE, 1), SH_DATE);
    CU_ASSERT_EQUAL(agg_result_type(AGG_MEDIAN, SH_NULL, 0), SH_NULL);
}

/* Rows: key (int), x (int or null), label (string or null). */
#define NROWS 9
static const struct {
    int         key;
    int         has_x;
    int         x;
    const char *label;
} rows[NROWS] = {
    {1, 1, 5, "e"},  {1, 1, 1, "a"},  {1, 0, 0, "n"},
    {1, 1, 3, "c"},  {1, 1, 2, NULL}, {2, 1, 10, "x"},
    {2, 1, 10, "w"}, {2, 1, -4, "m"}, {3, 0, 0, "z"},
};

static const size_t keys[] = {0};
static agg_def      aggs[5];

static void
make_aggs(void)
{
    memset(aggs, 0, sizeof aggs);
    aggs[0] = (agg_def){AGG_MEDIAN, 1, SH_INT, -1, SH_NULL, 0.5};
    aggs[1] = (agg_def){AGG_QUANTILE, 1, SH_INT, -1, SH_NULL, 0.25};
    aggs[2] = (agg_def){AGG_MIN_BY, 2, SH_STRING, 1, SH_INT, 0};
    aggs[3] = (agg_def){AGG_MAX_BY, 2, SH_STRING, 1, SH_INT, 0};
    aggs[4] = (agg_def){AGG_QUANTILE, 1, SH_INT, -1, SH_NULL, 1};
}

static void
make_row(size_t i, sh_value *r)
{
    r[0] = sh_int(rows[i].key);
    r[1] = rows[i].has_x ? sh_int(rows[i].x) : sh_null();
    r[2] = rows[i].label ? sh_str(rows[i].label, strlen(rows[i].label))
                         : sh_null();
}

typedef struct got {
    int    seen[4];
    double med[4], q25[4], q1[4];
    int    med_null[4];
    char   minby[4][8], maxby[4][8];
} got;

static int
collect(void *ctx, const sh_value *row, sh_err *err)
{
    got *g = ctx;
    int  k = (int)row[0].u.i;

    (void)err;
    g->seen[k]++;
    g->med_null[k] = row[1].type == SH_NULL;
    if (row[1].type == SH_FLOAT) {
        g->med[k] = row[1].u.f;
        g->q25[k] = row[2].u.f;
        g->q1[k] = row[5].u.f;
    }
    if (row[3].type == SH_STRING)
        snprintf(g->minby[k], 8, "%.*s", (int)row[3].u.s.len, row[3].u.s.ptr);
    if (row[4].type == SH_STRING)
        snprintf(g->maxby[k], 8, "%.*s", (int)row[4].u.s.len, row[4].u.s.ptr);
    return 0;
}

static int
to_table(void *ctx, const sh_value *row, sh_err *err)
{
    return hashagg_merge(ctx, row, err);
}

static void
check_got(const got *g)
{
    /* key 1: x = 5 1 3 2 (null skipped): sorted 1 2 3 5 */
    CU_ASSERT_EQUAL(g->seen[1], 1);
    CU_ASSERT_DOUBLE_EQUAL(g->med[1], 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g->q25[1], 1.75, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g->q1[1], 5, 1e-12);
    /* min_by(label, x): x=1 -> "a"; max_by: x=5 -> "e" (x=2 has a null
     * label and is skipped) */
    CU_ASSERT_STRING_EQUAL(g->minby[1], "a");
    CU_ASSERT_STRING_EQUAL(g->maxby[1], "e");
    /* key 2: -4 10 10; median 10; tie at x=10: max_by takes "x" (the
     * larger value), min_by is "m" */
    CU_ASSERT_DOUBLE_EQUAL(g->med[2], 10, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g->q25[2], 3, 1e-12);
    CU_ASSERT_STRING_EQUAL(g->minby[2], "m");
    CU_ASSERT_STRING_EQUAL(g->maxby[2], "x");
    /* key 3: all null */
    CU_ASSERT_EQUAL(g->seen[3], 1);
    CU_ASSERT(g->med_null[3]);
    CU_ASSERT_STRING_EQUAL(g->minby[3], "");
}

static void
test_direct(void)
{
    hashagg *h;
    sh_value r[3];
    sh_err   err = {0};
    got      g;
    size_t   i;

    make_aggs();
    memset(&g, 0, sizeof g);
    h = hashagg_new(keys, 1, aggs, 5);
    for (i = 0; i < NROWS; i++) {
        make_row(i, r);
        CU_ASSERT_EQUAL(hashagg_add(h, r, &err), 0);
    }
    CU_ASSERT_EQUAL(hashagg_drain_final(h, collect, &g, &err), 0);
    check_got(&g);
    hashagg_free(h);
}

static void
test_partials(void)
{
    size_t split;

    make_aggs();
    /* every split of the rows into two partitions, both orders of merge */
    for (split = 0; split <= NROWS; split++) {
        for (int order = 0; order < 2; order++) {
            hashagg *p[2], *f;
            sh_value r[3];
            sh_err   err = {0};
            got      g;
            size_t   i;

            memset(&g, 0, sizeof g);
            p[0] = hashagg_new(keys, 1, aggs, 5);
            p[1] = hashagg_new(keys, 1, aggs, 5);
            f = hashagg_new(keys, 1, aggs, 5);
            for (i = 0; i < NROWS; i++) {
                make_row(i, r);
                CU_ASSERT_EQUAL(hashagg_add(p[i >= split], r, &err), 0);
            }
            CU_ASSERT_EQUAL(hashagg_drain_partial(p[order], to_table, f, &err),
                            0);
            CU_ASSERT_EQUAL(hashagg_drain_partial(p[!order], to_table, f, &err),
                            0);
            CU_ASSERT_EQUAL(hashagg_drain_final(f, collect, &g, &err), 0);
            check_got(&g);
            hashagg_free(p[0]);
            hashagg_free(p[1]);
            hashagg_free(f);
        }
    }
}

static void
test_corrupt(void)
{
    hashagg *h;
    sh_value r[6];
    sh_err   err = {0};

    make_aggs();
    h = hashagg_new(keys, 1, aggs, 5);
    r[0] = sh_int(1);
    r[1] = sh_str("abc", 3); /* not a multiple of 8 bytes */
    r[2] = sh_null();
    r[3] = sh_null();
    r[4] = sh_null();
    r[5] = sh_null();
    CU_ASSERT_EQUAL(hashagg_merge(h, r, &err), SH_EDATA);
    r[1] = sh_null();
    r[3] = sh_str("\x01", 1); /* a tag without its payload */
    CU_ASSERT_EQUAL(hashagg_merge(h, r, &err), SH_EDATA);
    hashagg_free(h);
}

/* Keeps the 3 float results of a keyless table's one row. */
static int
collect_all(void *ctx, const sh_value *row, sh_err *err)
{
    double *v = ctx;

    (void)err;
    for (int i = 0; i < 3; i++)
        v[i] = row[i].type == SH_FLOAT ? row[i].u.f : NAN;
    return 0;
}

/* Many random values, merged from many partials, against a sort. */
static void
test_random(void)
{
    enum { N = 20000, PARTS = 7 };
    agg_def       a[3] = {{AGG_QUANTILE, 1, SH_FLOAT, -1, SH_NULL, 0.9},
                          {AGG_MEDIAN, 1, SH_FLOAT, -1, SH_NULL, 0.5},
                          {AGG_QUANTILE, 1, SH_FLOAT, -1, SH_NULL, 0.001}};
    static double xs[N];
    hashagg      *p[PARTS], *f;
    sh_value      r[2];
    sh_err        err = {0};
    uint64_t      s = 42;
    size_t        i;
    double        want[3], qs[3] = {0.9, 0.5, 0.001};
    double        g[3] = {0};

    for (i = 0; i < PARTS; i++)
        p[i] = hashagg_new(NULL, 0, a, 3);
    f = hashagg_new(NULL, 0, a, 3);
    for (i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        xs[i] = (double)(s >> 11) / 9007199254740992.0 * 1000 - 300;
        r[0] = sh_int(0);
        r[1] = sh_float(xs[i]);
        CU_ASSERT_EQUAL(hashagg_add(p[i % PARTS], r, &err), 0);
    }
    for (i = 0; i < PARTS; i++) {
        CU_ASSERT_EQUAL(hashagg_drain_partial(p[i], to_table, f, &err), 0);
        hashagg_free(p[i]);
    }
    for (i = 0; i < 3; i++)
        want[i] = agg_quantile_cont(xs, N, qs[i]);
    CU_ASSERT_EQUAL(hashagg_groups(f), 1);
    CU_ASSERT_EQUAL(hashagg_drain_final(f, collect_all, g, &err), 0);
    for (i = 0; i < 3; i++)
        CU_ASSERT_DOUBLE_EQUAL(g[i], want[i], 1e-9);
    hashagg_free(f);
}

/* The rank of 'v' in xs[0..n): values below it, and at or below it. */
static void
rank_of(const double *xs, size_t n, double v, size_t *lo, size_t *hi)
{
    *lo = *hi = 0;
    for (size_t i = 0; i < n; i++) {
        *lo += xs[i] < v;
        *hi += xs[i] <= v;
    }
}

static int
keep_float(void *ctx, const sh_value *row, sh_err *err)
{
    double *v = ctx;

    (void)err;
    *v = row[0].type == SH_FLOAT ? row[0].u.f
         : row[0].type == SH_INT ? (double)row[0].u.i
                                 : NAN;
    return 0;
}

static size_t g_max_partial;

static int
merge_and_measure(void *ctx, const sh_value *row, sh_err *err)
{
    if (row[0].type == SH_STRING && row[0].u.s.len > g_max_partial)
        g_max_partial = row[0].u.s.len;
    return hashagg_merge(ctx, row, err);
}

/*
 * approx_quantile on n values (random, or sorted: the order a naive
 * sample gets wrong) split round-robin into 'parts' partials: the rank of
 * each answer is within 2 % of n of q n, every answer is a value seen, a
 * partial state stays small.
 */
static void
kll_case(size_t n, size_t parts, int sorted, uint64_t seed)
{
    static const double qs[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1};
    double             *xs = xmalloc(n * sizeof *xs);
    uint64_t            s = seed;
    size_t              i, k;

    for (i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        xs[i] = sorted ? (double)i : (double)(s >> 11) / 9007199254740992.0;
    }
    for (k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        agg_def   a = {AGG_APPROX_QUANTILE, 0, SH_FLOAT, -1, SH_NULL, qs[k]};
        hashagg **p = xmalloc(parts * sizeof *p);
        hashagg  *f = hashagg_new(NULL, 0, &a, 1);
        sh_err    err = {0};
        sh_value  r;
        double    got = NAN;
        size_t    lo, hi;
        double    want = qs[k] * (double)n, tol = 0.02 * (double)n;

        for (i = 0; i < parts; i++)
            p[i] = hashagg_new(NULL, 0, &a, 1);
        for (i = 0; i < n; i++) {
            r = sh_float(xs[i]);
            CU_ASSERT_EQUAL_FATAL(hashagg_add(p[i % parts], &r, &err), 0);
        }
        g_max_partial = 0;
        for (i = 0; i < parts; i++) {
            CU_ASSERT_EQUAL(
                hashagg_drain_partial(p[i], merge_and_measure, f, &err), 0);
            hashagg_free(p[i]);
        }
        CU_ASSERT_EQUAL(hashagg_drain_final(f, keep_float, &got, &err), 0);
        rank_of(xs, n, got, &lo, &hi);
        if (!(hi >= 1 && (double)lo <= want + tol && (double)hi >= want - tol))
            fprintf(stderr,
                    "\nkll n=%zu parts=%zu q=%g: got %g rank "
                    "[%zu, %zu], want %g +- %g\n",
                    n, parts, qs[k], got, lo, hi, want, tol);
        CU_ASSERT(hi >= 1); /* a value seen */
        CU_ASSERT((double)lo <= want + tol);
        CU_ASSERT((double)hi >= want - tol);
        /* 12 + 40 levels of 4 bytes + about 3 k items */
        CU_ASSERT(g_max_partial <= 12 + 40 * 4 + 8 * 3 * 200 + 8 * 40);
        hashagg_free(f);
        free(p);
    }
    free(xs);
}

static void
test_kll(void)
{
    kll_case(100000, 13, 0, 1);
    kll_case(100000, 1, 0, 2);
    kll_case(50000, 5, 1, 3);
    kll_case(1000, 3, 0, 4);
    kll_case(150, 1, 0, 5); /* below k: exact nearest rank */
}

static void
test_kll_small(void)
{
    agg_def  a = {AGG_APPROX_QUANTILE, 0, SH_INT, -1, SH_NULL, 0.5};
    hashagg *h = hashagg_new(NULL, 0, &a, 1);
    sh_value r;
    sh_err   err = {0};
    double   got = NAN;
    int      i;

    for (i = 1; i <= 9; i++) {
        r = sh_int(i * 10);
        CU_ASSERT_EQUAL(hashagg_add(h, &r, &err), 0);
    }
    r = sh_null();
    CU_ASSERT_EQUAL(hashagg_add(h, &r, &err), 0);
    CU_ASSERT_EQUAL(hashagg_drain_final(h, keep_float, &got, &err), 0);
    CU_ASSERT_DOUBLE_EQUAL(got, 50, 0);
    r = sh_str("\1\0\0", 3);
    CU_ASSERT_EQUAL(hashagg_merge(h, &r, &err), SH_EDATA);
    CU_ASSERT_EQUAL(agg_result_type(AGG_APPROX_QUANTILE, SH_INT, 1), SH_INT);
    CU_ASSERT_EQUAL(agg_result_type(AGG_APPROX_QUANTILE, SH_STRING, 1),
                    SH_NULL);
    hashagg_free(h);
}

/* ---- out of core ------------------------------------------------------ */

/* Groups of the out-of-core test: key k has sizes[k] values (key 0 is
 * over the budget; key 5 has only nulls). */
#define OOC_GROUPS 6
#define OOC_AGGS   4

static const double ooc_q[OOC_AGGS] = {0.5, 0.9, 0.1, 1};

/* The x of row i of key k: many ties, negatives, ints and fractions. */
static double
ooc_x(size_t k, size_t i)
{
    uint64_t r = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL + k * 1000003;

    r ^= r >> 29;
    if (i % 3 == 0)
        return (double)(int64_t)(r % 20001) - 10000; /* an int, tied */
    return (double)(r % 1000003) / 7.0 - 70000.0;
}

/* The oracle: DuckDB's quantile_cont of sorted 'x' (n > 0), written out
 * plainly. */
static double
oracle_cont(const double *x, size_t n, double q)
{
    double h = (double)(n - 1) * q, d = h - floor(h);
    size_t lo = (size_t)floor(h);

    if (lo >= n - 1 || d == 0)
        return x[lo < n ? lo : n - 1];
    return x[lo] * (1.0 - d) + x[lo + 1] * d;
}

static int
cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

typedef struct ooc_got {
    int         seen[OOC_GROUPS];
    int         null[OOC_GROUPS][OOC_AGGS];
    double      r[OOC_GROUPS][OOC_AGGS];
    int         bad;       /* a row with an unexpected shape */
    const char *dir;       /* where the sort's runs go */
    int         max_files; /* the most files seen there while emitting */
    int         ticks;     /* calls of the tick function */
} ooc_got;

/* Keeps the answers of a final row (key, count, then OOC_AGGS floats). */
static int
ooc_collect(void *ctx, const sh_value *row, sh_err *err)
{
    ooc_got *g = ctx;
    int64_t  k = row[0].u.i;
    size_t   j;

    (void)err;
    if (th_count_files(g->dir) > g->max_files)
        g->max_files = th_count_files(g->dir);
    if (row[0].type != SH_INT || k < 0 || k >= OOC_GROUPS) {
        g->bad++;
        return 0;
    }
    g->seen[k]++;
    for (j = 0; j < OOC_AGGS; j++) {
        g->null[k][j] = row[2 + j].type == SH_NULL;
        g->r[k][j] = row[2 + j].type == SH_FLOAT ? row[2 + j].u.f : NAN;
    }
    return 0;
}

/* Counts the ticks of a finalize (an agg_tick_fn; ctx is an ooc_got). */
static int
ooc_tick(void *ctx, const hashagg_finalize_stats *st, sh_err *err)
{
    (void)st;
    (void)err;
    ((ooc_got *)ctx)->ticks++;
    return 0;
}

static int
ooc_write(void *ctx, const sh_value *row, sh_err *err)
{
    return rowfile_write(ctx, row, err);
}

/*
 * Median and quantiles of a group over the budget: one group of 2.5
 * million values (150,000 under valgrind) finalized under a 16 MiB
 * budget (1 MiB), its values sorted out of core, with five other groups
 * of 1 to 100,000 values and one of nulls only; and again under a
 * sixteenth of it, where the sort's runs are merged in passes. Each
 * answer equals, to the bit, the oracle's over the sorted values and the
 * answer in memory;
 * the sort's run files are gone afterwards; the peak passes the budget by
 * no more than a partial row. A sort that cannot write its runs fails with
 * SH_EIO and leaves the table empty.
 */
static void
test_out_of_core(void)
{
    const size_t big = RUNNING_ON_VALGRIND ? 150000 : 2500000;
    const size_t budget = RUNNING_ON_VALGRIND ? (1u << 20) : (16u << 20);
    const size_t sizes[OOC_GROUPS] = {big, 1, 2, 1000, 100000, 40};
    const size_t kc[] = {0};
    agg_def      a[1 + OOC_AGGS];
    hashagg     *p, *f;
    char         dir[256], prefix[300], bad_prefix[300], *paths[2];
    double      *vals[OOC_GROUPS];
    ooc_got     *mem = calloc(1, sizeof *mem), *ooc = calloc(1, sizeof *ooc);
    ooc_got     *fail = calloc(1, sizeof *fail);
    ooc_got     *tiny = calloc(1, sizeof *tiny);
    hashagg_finalize_stats st;
    sh_err                 err = {0};
    size_t                 k, i, j, file;

    memset(a, 0, sizeof a);
    a[0] = (agg_def){AGG_COUNT, 1, SH_FLOAT, -1, SH_NULL, 0};
    a[1] = (agg_def){AGG_MEDIAN, 1, SH_FLOAT, -1, SH_NULL, 0.5};
    for (j = 1; j < OOC_AGGS; j++)
        a[1 + j] = (agg_def){AGG_QUANTILE, 1, SH_FLOAT, -1, SH_NULL, ooc_q[j]};
    CU_ASSERT_FATAL(th_temp_dir(dir, sizeof dir, th_tmp_base(), "aggq") == 0);
    mem->dir = ooc->dir = fail->dir = tiny->dir = dir;
    snprintf(prefix, sizeof prefix, "%s/spill", dir);
    snprintf(bad_prefix, sizeof bad_prefix, "%s/none/spill", dir);

    /* The partial half: two files of partial rows, the table drained at a
     * quarter of the budget, the groups' rows interleaved. */
    p = hashagg_new(kc, 1, a, 1 + OOC_AGGS);
    f = hashagg_new(kc, 1, a, 1 + OOC_AGGS);
    for (k = 0; k < OOC_GROUPS; k++)
        vals[k] = xmalloc((sizes[k] ? sizes[k] : 1) * sizeof(double));
    for (file = 0; file < 2; file++) {
        rowfile_writer *w;

        paths[file] = xasprintf("%s/part%zu", dir, file);
        w = rowfile_create(paths[file], hashagg_partial_cols(p), &err);
        CU_ASSERT_FATAL(w != NULL);
        for (i = file; i < big; i += 2) {
            for (k = 0; k < OOC_GROUPS; k++) {
                sh_value r[2];

                if (i >= sizes[k])
                    continue;
                vals[k][i] = ooc_x(k, i);
                r[0] = sh_int((int64_t)k);
                r[1] = k == 5 ? sh_null() : sh_float(vals[k][i]);
                CU_ASSERT_EQUAL_FATAL(hashagg_add(p, r, &err), 0);
            }
            if (hashagg_bytes(p) > budget / 4)
                CU_ASSERT_EQUAL_FATAL(
                    hashagg_drain_partial(p, ooc_write, w, &err), 0);
        }
        CU_ASSERT_EQUAL_FATAL(hashagg_drain_partial(p, ooc_write, w, &err), 0);
        CU_ASSERT_EQUAL_FATAL(rowfile_close(w, &err), 0);
    }

    /* In memory, then out of core. */
    CU_ASSERT_EQUAL(hashagg_finalize_files(f, (const char *const *)paths, 2, -1,
                                           (size_t)1 << 32, prefix, ooc_collect,
                                           ooc_tick, mem, &st, &err),
                    0);
    CU_ASSERT(st.peak_bytes > big * sizeof(double));
    CU_ASSERT_EQUAL(st.spill_bytes, 0);
    CU_ASSERT_EQUAL(hashagg_finalize_files(f, (const char *const *)paths, 2, -1,
                                           budget, prefix, ooc_collect,
                                           ooc_tick, ooc, &st, &err),
                    0);
    CU_ASSERT(st.peak_bytes > budget);
    CU_ASSERT(st.peak_bytes < budget + budget / 2);
    CU_ASSERT(st.spill_bytes > big * sizeof(double));
    CU_ASSERT_EQUAL(mem->max_files, 2);
    CU_ASSERT(ooc->max_files > 2); /* the sorted runs */
    /* few partial rows: no tick in memory; the sort ticks (its values
     * pushed, then streamed back) */
    CU_ASSERT_EQUAL(mem->ticks, 0);
    CU_ASSERT(ooc->ticks >= (int)(big / 65536));
    CU_ASSERT_EQUAL(hashagg_groups(f), 0);
    CU_ASSERT_EQUAL(th_count_files(dir), 2); /* the inputs alone */

    /* A sixteenth of the budget: many more runs than a merge reads at
     * once, merged in passes first. */
    CU_ASSERT_EQUAL(hashagg_finalize_files(f, (const char *const *)paths, 2, -1,
                                           budget / 16, prefix, ooc_collect,
                                           ooc_tick, tiny, &st, &err),
                    0);
    CU_ASSERT(st.spill_bytes > 2 * big * sizeof(double)); /* passes */
    CU_ASSERT_EQUAL(th_count_files(dir), 2);

    CU_ASSERT_EQUAL(mem->bad + ooc->bad + tiny->bad, 0);
    for (k = 0; k < OOC_GROUPS; k++) {
        CU_ASSERT_EQUAL(mem->seen[k], 1);
        CU_ASSERT_EQUAL(ooc->seen[k], 1);
        CU_ASSERT_EQUAL(tiny->seen[k], 1);
        if (k == 5) {
            for (j = 0; j < OOC_AGGS; j++)
                CU_ASSERT(mem->null[k][j] && ooc->null[k][j]
                          && tiny->null[k][j]);
            continue;
        }
        qsort(vals[k], sizes[k], sizeof(double), cmp_dbl);
        for (j = 0; j < OOC_AGGS; j++) {
            double want = oracle_cont(vals[k], sizes[k], ooc_q[j]);

            CU_ASSERT(ooc->r[k][j] == want);
            CU_ASSERT(mem->r[k][j] == want);
            CU_ASSERT(tiny->r[k][j] == want);
            if (ooc->r[k][j] != want)
                fprintf(stderr,
                        "\nkey %zu q %g: out of core %.17g, "
                        "oracle %.17g\n",
                        k, ooc_q[j], ooc->r[k][j], want);
        }
    }

    /* Runs that cannot be written: SH_EIO, the table left empty. */
    CU_ASSERT_EQUAL(hashagg_finalize_files(f, (const char *const *)paths, 2, -1,
                                           budget, bad_prefix, ooc_collect,
                                           NULL, fail, &st, &err),
                    SH_EIO);
    CU_ASSERT_EQUAL(hashagg_groups(f), 0);
    CU_ASSERT_EQUAL(th_count_files(dir), 2);

    for (k = 0; k < OOC_GROUPS; k++)
        free(vals[k]);
    for (file = 0; file < 2; file++) {
        unlink(paths[file]);
        free(paths[file]);
    }
    rmdir(dir);
    hashagg_free(p);
    hashagg_free(f);
    free(mem);
    free(ooc);
    free(fail);
    free(tiny);
}

void
test_agg_quant_register(void)
{
    CU_pSuite s = CU_add_suite("agg_quant", NULL, NULL);

    CU_add_test(s, "quantile_cont on known data", test_cont);
    CU_add_test(s, "names and result types", test_types);
    CU_add_test(s, "median, quantile, min_by, max_by", test_direct);
    CU_add_test(s, "the same through partials", test_partials);
    CU_add_test(s, "corrupt partial states", test_corrupt);
    CU_add_test(s, "random values from many partials", test_random);
    CU_add_test(s, "approx_quantile rank error within 2 %", test_kll);
    CU_add_test(s, "approx_quantile small, int, corrupt", test_kll_small);
    CU_add_test(s, "median, quantile of a group over the budget",
                test_out_of_core);
}
