/*
 * test_agg_quant.c - unit tests of executor/agg_quant.c: quantile_cont
 * interpolation on known data (odd and even n, q = 0, 0.5, 0.9, 1),
 * median/quantile/min_by/max_by through a hashagg with nulls and an
 * all-null group, the same rows split into partials that are merged in
 * another table (the same answer), ties of min_by/max_by (by the value),
 * a corrupt partial state (an error, not a crash), and the names and
 * result types.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../executor/agg.h"
#include "../../lib/util.h"
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
    {1, 1, 5, "e"},  {1, 1, 1, "a"},   {1, 0, 0, "n"},
    {1, 1, 3, "c"},  {1, 1, 2, NULL},  {2, 1, 10, "x"},
    {2, 1, 10, "w"}, {2, 1, -4, "m"},  {3, 0, 0, "z"},
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
        snprintf(g->minby[k], 8, "%.*s", (int)row[3].u.s.len,
                 row[3].u.s.ptr);
    if (row[4].type == SH_STRING)
        snprintf(g->maxby[k], 8, "%.*s", (int)row[4].u.s.len,
                 row[4].u.s.ptr);
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
            CU_ASSERT_EQUAL(hashagg_drain_partial(p[order], to_table, f,
                                                  &err), 0);
            CU_ASSERT_EQUAL(hashagg_drain_partial(p[!order], to_table, f,
                                                  &err), 0);
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
    agg_def  a[3] = {{AGG_QUANTILE, 1, SH_FLOAT, -1, SH_NULL, 0.9},
                     {AGG_MEDIAN, 1, SH_FLOAT, -1, SH_NULL, 0.5},
                     {AGG_QUANTILE, 1, SH_FLOAT, -1, SH_NULL, 0.001}};
    static double xs[N];
    hashagg *p[PARTS], *f;
    sh_value r[2];
    sh_err   err = {0};
    uint64_t s = 42;
    size_t   i;
    double   want[3], qs[3] = {0.9, 0.5, 0.001};
    double   g[3] = {0};

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
}
