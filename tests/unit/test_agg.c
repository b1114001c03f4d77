/*
 * test_agg.c - unit tests of executor/agg: function names and result
 * types, every function against hand-computed values with nulls and empty
 * groups, key identity (1 vs 1.0, null, -0, NaN), int sum overflow in add
 * and merge, partial -> merge in several splits and a tree equal to one
 * pass, var/std stability on 1e6 values with a large offset against a
 * two-pass reference, HyperLogLog error on 1e5 distinct values, and
 * hashagg_finalize_files with a tiny budget equal to the in-memory result
 * (spill files removed), its stats (rows read, spill bytes, peak) and its
 * tick function (called every HASHAGG_TICK_ROWS rows; an error from it,
 * a cancel, stops the merge and leaves nothing behind).
 *
 * Count-only tables fed in batches (hashagg_queue, hashagg_flush) against
 * the same rows through hashagg_add: duplicate, null, empty, long and
 * 16/17-byte keys, keys equal but for one byte, keys of other types; only
 * counts may be queued; the drains fold rows still queued, once;
 * hashagg_queued_bytes bounds what a flush adds. Keys made to collide in
 * the table's hashes stay apart (the only way the key compare sees two
 * different keys).
 *
 * Every check says what it compared and what it got.
 *
 * Under valgrind the two slowest tests (splits, and finalize_files, whose
 * partial rows carry 16 KiB HyperLogLog registers) run over a quarter of
 * the rows; the same groups and the same checks, so the same paths (every
 * split, two levels of re-partitioning) are taken. So does the comparison
 * of queued and added rows, still reaching every key of its pool.
 */
#include <CUnit/CUnit.h>
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
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

/*
 * Loops of many calls: each call is checked, but a loop reports once.
 * OK_ALL(f, call) notes in 'f' a call that did not return 0 (the first
 * one's code, line and message are kept; the message comes from the
 * sh_err named 'err' in scope), and CHECK_NO_FAILS(f) is the one CUnit
 * assertion after the loop. A million checked calls are then one
 * assertion, not a million, which is most of this suite's time under
 * valgrind.
 */
typedef struct fails {
    size_t n;        /* calls that did not return 0 */
    int    rc;       /* the first one's return value */
    int    line;     /* and its line */
    char   msg[160]; /* and the message it left */
} fails;

static void
note_rc(fails *f, int rc, const sh_err *err, int line)
{
    if (rc == 0)
        return;
    if (f->n++ == 0) {
        f->rc = rc;
        f->line = line;
        snprintf(f->msg, sizeof f->msg, "%.150s", err ? err->msg : "");
    }
}

#define OK_ALL(f, call) note_rc(&(f), (call), &err, __LINE__)
#define CHECK_NO_FAILS(f)                                                \
    CHECK_AT((f).n == 0, __LINE__,                                       \
             "%zu calls failed; the first, at line %d, returned %d: %s", \
             (f).n, (f).line, (f).rc, (f).msg)

/* ---- collected rows --------------------------------------------------- */

/* Rows deep-copied from an emit callback. */
typedef struct rows {
    size_t     n; /* rows */
    size_t     cap;
    size_t     cols; /* values per row (set by the first row) */
    sh_value **r;    /* each row malloc'd; strings malloc'd */
} rows;

/* Number of columns of the rows being collected; set before draining. */
static size_t g_cols;

/* An agg_emit_fn that appends a deep copy of 'row' to the rows 'ctx'. */
static int
collect(void *ctx, const sh_value *row, sh_err *err)
{
    rows     *rs = ctx;
    sh_value *c;
    size_t    i;

    (void)err;
    rs->cols = g_cols;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->r = xrealloc(rs->r, rs->cap * sizeof *rs->r);
    }
    c = xmalloc((g_cols ? g_cols : 1) * sizeof *c);
    for (i = 0; i < g_cols; i++) {
        c[i] = row[i];
        if (row[i].type == SH_STRING) {
            char *p = xmalloc(row[i].u.s.len + 1);

            memcpy(p, row[i].u.s.ptr, row[i].u.s.len);
            c[i].u.s.ptr = p;
        }
    }
    rs->r[rs->n++] = c;
    return 0;
}

static void
rows_free(rows *rs)
{
    size_t i, j;

    for (i = 0; i < rs->n; i++) {
        for (j = 0; j < rs->cols; j++) {
            if (rs->r[i][j].type == SH_STRING)
                free((void *)rs->r[i][j].u.s.ptr);
        }
        free(rs->r[i]);
    }
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static void
drain_final(hashagg *h, rows *rs)
{
    sh_err err;

    g_cols = hashagg_final_cols(h);
    CHECK_INT(0, hashagg_drain_final(h, collect, rs, &err));
}

static void
drain_partial(hashagg *h, rows *rs)
{
    sh_err err;

    g_cols = hashagg_partial_cols(h);
    CHECK_INT(0, hashagg_drain_partial(h, collect, rs, &err));
}

/* Null-aware total order of values (nulls first, then by type). */
static int
cmp_value(const sh_value *a, const sh_value *b)
{
    if (a->type != b->type)
        return (int)a->type - (int)b->type;
    if (a->type == SH_NULL)
        return 0;
    return value_cmp(a, b);
}

static size_t g_sort_keys;

static int
cmp_rows(const void *pa, const void *pb)
{
    const sh_value *a = *(sh_value *const *)pa;
    const sh_value *b = *(sh_value *const *)pb;
    size_t          i;
    int             c;

    for (i = 0; i < g_sort_keys; i++) {
        c = cmp_value(&a[i], &b[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Are 'a' and 'b' the same value, floats within 'rel' relative? */
static int
same_value(const sh_value *a, const sh_value *b, double rel)
{
    if (a->type != b->type)
        return 0;
    if (a->type == SH_FLOAT) {
        double x = a->u.f, y = b->u.f;

        if (x == y || (x != x && y != y))
            return 1;
        return fabs(x - y) <= rel * fmax(fabs(x), fabs(y));
    }
    return cmp_value(a, b) == 0;
}

static void
fmt_value(const sh_value *v, char *buf, size_t n)
{
    strbuf sb = {0};

    if (v->type == SH_NULL) {
        snprintf(buf, n, "null");
        return;
    }
    value_format(v, &sb);
    snprintf(buf, n, "%s:%.60s", sh_type_name(v->type), sb.data ? sb.data : "");
    sb_free(&sb);
}

/* Checks that row sets 'a' and 'b' hold the same rows (sorted by their
 * first 'n_keys' values), floats within 'rel'. */
static void
check_same_rows(rows *a, rows *b, size_t n_keys, double rel, int line,
                const char *what)
{
    size_t i, j;
    int    bad = 0;

    CHECK_AT(a->n == b->n, line, "%s: %zu rows vs %zu", what, a->n, b->n);
    if (a->n != b->n)
        return;
    g_sort_keys = n_keys;
    qsort(a->r, a->n, sizeof *a->r, cmp_rows);
    qsort(b->r, b->n, sizeof *b->r, cmp_rows);
    for (i = 0; i < a->n && bad < 5; i++) {
        for (j = 0; j < a->cols && bad < 5; j++) {
            char x[96], y[96];

            if (same_value(&a->r[i][j], &b->r[i][j], rel))
                continue;
            fmt_value(&a->r[i][j], x, sizeof x);
            fmt_value(&b->r[i][j], y, sizeof y);
            CHECK_AT(0, line, "%s: row %zu col %zu: %s vs %s", what, i, j, x,
                     y);
            bad++;
        }
    }
    CHECK_AT(bad == 0, line, "%s: rows equal", what);
}

/* A deterministic pseudo-random generator (splitmix64). */
static uint64_t g_rng;

static uint64_t
rnd(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double
rnd_unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* ---- names and types -------------------------------------------------- */

static void
test_names(void)
{
    static const char *names[] = {"count",
                                  "sum",
                                  "mean",
                                  "min",
                                  "max",
                                  "var",
                                  "std",
                                  "count_distinct",
                                  "approx_count_distinct"};
    agg_fn             fn;
    size_t             i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK(agg_fn_parse(names[i], &fn) == 0, "parse %s", names[i]);
        CHECK(strcmp(agg_fn_name(fn), names[i]) == 0, "name of %s: %s",
              names[i], agg_fn_name(fn));
    }
    CHECK(agg_fn_parse("mode", &fn) == -1, "mode is unknown");
    CHECK(agg_fn_parse("Count", &fn) == -1, "names are case-sensitive");
    CHECK(agg_fn_parse(NULL, &fn) == -1, "NULL name");

    CHECK_INT(SH_INT, agg_result_type(AGG_COUNT, SH_NULL, 0));
    CHECK_INT(SH_NULL, agg_result_type(AGG_SUM, SH_NULL, 0));
    CHECK_INT(SH_INT, agg_result_type(AGG_COUNT, SH_STRING, 1));
    CHECK_INT(SH_INT, agg_result_type(AGG_SUM, SH_INT, 1));
    CHECK_INT(SH_FLOAT, agg_result_type(AGG_SUM, SH_FLOAT, 1));
    CHECK_INT(SH_NULL, agg_result_type(AGG_SUM, SH_STRING, 1));
    CHECK_INT(SH_NULL, agg_result_type(AGG_MEAN, SH_BOOL, 1));
    CHECK_INT(SH_FLOAT, agg_result_type(AGG_MEAN, SH_INT, 1));
    CHECK_INT(SH_FLOAT, agg_result_type(AGG_VAR, SH_INT, 1));
    CHECK_INT(SH_FLOAT, agg_result_type(AGG_STD, SH_FLOAT, 1));
    CHECK_INT(SH_STRING, agg_result_type(AGG_MIN, SH_STRING, 1));
    CHECK_INT(SH_BOOL, agg_result_type(AGG_MAX, SH_BOOL, 1));
    CHECK_INT(SH_INT, agg_result_type(AGG_COUNT_DISTINCT, SH_FLOAT, 1));
    CHECK_INT(SH_INT, agg_result_type(AGG_APPROX_COUNT_DISTINCT, SH_STRING, 1));
}

/* ---- hand-computed values --------------------------------------------- */

#define S(x) sh_str(x, sizeof(x) - 1)

static const agg_def basic_aggs[] = {
    {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
    {AGG_COUNT, 1, SH_INT, -1, SH_NULL, 0},
    {AGG_SUM, 1, SH_INT, -1, SH_NULL, 0},
    {AGG_SUM, 2, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_MEAN, 2, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_MIN, 1, SH_INT, -1, SH_NULL, 0},
    {AGG_MAX, 3, SH_STRING, -1, SH_NULL, 0},
    {AGG_VAR, 1, SH_INT, -1, SH_NULL, 0},
    {AGG_STD, 1, SH_INT, -1, SH_NULL, 0},
    {AGG_COUNT_DISTINCT, 1, SH_INT, -1, SH_NULL, 0},
    {AGG_APPROX_COUNT_DISTINCT, 3, SH_STRING, -1, SH_NULL, 0},
    {AGG_MIN, 2, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_VAR, 2, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_MAX, 4, SH_BOOL, -1, SH_NULL, 0},
    {AGG_MIN, 3, SH_STRING, -1, SH_NULL, 0},
};
#define N_BASIC (sizeof basic_aggs / sizeof basic_aggs[0])

/* Folds the basic rows into 'h' (whole: rows lo..hi-1). */
static void
add_basic(hashagg *h, size_t lo, size_t hi)
{
    sh_value in[6][5] = {
        {S("a"), sh_int(1), sh_float(1.5), S("x"), sh_bool(0)},
        {S("a"), sh_int(3), sh_null(), S("zz"), sh_null()},
        {S("a"), sh_null(), sh_float(2.5), S("y"), sh_bool(1)},
        {S("b"), sh_null(), sh_null(), sh_null(), sh_null()},
        {S("a"), sh_int(1), sh_float(4.0), S("x"), sh_bool(0)},
        {S("c"), sh_int(-7), sh_float(-0.5), S(""), sh_bool(0)},
    };
    sh_err err;
    size_t i;

    for (i = lo; i < hi; i++)
        CHECK_INT(0, hashagg_add(h, in[i], &err));
}

/* Checks the final rows of the basic data (groups a, b, c). */
static void
check_basic(rows *rs, int line)
{
    sh_value  a[1 + N_BASIC], b[1 + N_BASIC], c[1 + N_BASIC];
    sh_value *want[3] = {a, b, c};
    rows      exp = {0};
    size_t    i;

    a[0] = S("a");
    a[1] = sh_int(4);
    a[2] = sh_int(3);
    a[3] = sh_int(5);
    a[4] = sh_float(8.0);
    a[5] = sh_float(8.0 / 3);
    a[6] = sh_int(1);
    a[7] = S("zz");
    a[8] = sh_float(4.0 / 3);
    a[9] = sh_float(sqrt(4.0 / 3));
    a[10] = sh_int(2);
    a[11] = sh_int(3);
    a[12] = sh_float(1.5);
    a[13] = sh_float(19.0 / 12);
    a[14] = sh_bool(1);
    a[15] = S("x");

    b[0] = S("b");
    b[1] = sh_int(1);
    b[2] = sh_int(0);
    for (i = 3; i <= N_BASIC; i++)
        b[i] = sh_null();
    b[10] = sh_int(0);
    b[11] = sh_int(0);

    c[0] = S("c");
    c[1] = sh_int(1);
    c[2] = sh_int(1);
    c[3] = sh_int(-7);
    c[4] = sh_float(-0.5);
    c[5] = sh_float(-0.5);
    c[6] = sh_int(-7);
    c[7] = S("");
    c[8] = sh_null(); /* var of one value */
    c[9] = sh_null();
    c[10] = sh_int(1);
    c[11] = sh_int(1);
    c[12] = sh_float(-0.5);
    c[13] = sh_null();
    c[14] = sh_bool(0);
    c[15] = S("");

    exp.n = 3;
    exp.cols = 1 + N_BASIC;
    exp.r = want;
    check_same_rows(rs, &exp, 1, 1e-15, line, "basic");
}

static void
test_basic(void)
{
    size_t   key = 0;
    hashagg *h = hashagg_new(&key, 1, basic_aggs, N_BASIC);
    rows     rs = {0};

    CHECK_INT(1 + N_BASIC, hashagg_partial_cols(h));
    CHECK_INT(1 + N_BASIC, hashagg_final_cols(h));
    add_basic(h, 0, 6);
    CHECK_INT(3, hashagg_groups(h));
    CHECK(hashagg_bytes(h) > 0, "bytes %zu", hashagg_bytes(h));
    drain_final(h, &rs);
    CHECK_INT(0, hashagg_groups(h));
    CHECK_INT(3, rs.n);
    /* Drained in insertion order. */
    if (rs.n == 3)
        CHECK(rs.r[0][0].u.s.len == 1 && rs.r[0][0].u.s.ptr[0] == 'a'
                  && rs.r[2][0].u.s.ptr[0] == 'c',
              "insertion order");
    check_basic(&rs, __LINE__);
    rows_free(&rs);

    /* The table is reusable after a drain. */
    add_basic(h, 0, 6);
    drain_final(h, &rs);
    check_basic(&rs, __LINE__);
    rows_free(&rs);
    hashagg_free(h);
}

/* Every split point of the basic rows through partials equals one pass. */
static void
test_basic_partial(void)
{
    size_t cut;
    size_t key = 0;

    for (cut = 0; cut <= 6; cut++) {
        hashagg *p1 = hashagg_new(&key, 1, basic_aggs, N_BASIC);
        hashagg *p2 = hashagg_new(&key, 1, basic_aggs, N_BASIC);
        hashagg *f = hashagg_new(&key, 1, basic_aggs, N_BASIC);
        rows     parts = {0}, out = {0};
        sh_err   err;
        size_t   i;

        add_basic(p1, 0, cut);
        add_basic(p2, cut, 6);
        drain_partial(p2, &parts);
        drain_partial(p1, &parts);
        for (i = 0; i < parts.n; i++)
            CHECK_INT(0, hashagg_merge(f, parts.r[i], &err));
        drain_final(f, &out);
        check_basic(&out, __LINE__);
        rows_free(&parts);
        rows_free(&out);
        hashagg_free(p1);
        hashagg_free(p2);
        hashagg_free(f);
    }
}

/* ---- keys ------------------------------------------------------------- */

static void
test_keys(void)
{
    size_t   key = 0;
    agg_def  cnt = {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0};
    hashagg *h = hashagg_new(&key, 1, &cnt, 1);
    sh_value in[] = {sh_int(1),      sh_float(1.0), sh_null(),
                     sh_int(1),      sh_null(),     sh_float(0.0),
                     sh_float(-0.0), sh_float(NAN), sh_float(-NAN),
                     S("1"),         sh_bool(1),    sh_int(0),
                     sh_bool(0),     S(""),         sh_float(1.0)};
    rows     rs = {0};
    fails    adds = {0};
    sh_err   err;
    size_t   i;

    for (i = 0; i < sizeof in / sizeof in[0]; i++)
        CHECK_INT(0, hashagg_add(h, &in[i], &err));
    /* 1, 1.0, null, 0.0/-0.0, NaN, "1", true, 0, false, "" */
    CHECK_INT(10, hashagg_groups(h));
    drain_final(h, &rs);
    CHECK_INT(2, rs.r[0][1].u.i); /* int 1 */
    CHECK_INT(2, rs.r[1][1].u.i); /* float 1.0 */
    CHECK_INT(2, rs.r[2][1].u.i); /* null */
    CHECK_INT(2, rs.r[3][1].u.i); /* 0.0 and -0.0 */
    CHECK_INT(2, rs.r[4][1].u.i); /* NaNs */
    rows_free(&rs);
    hashagg_free(h);

    /* No keys: one group. */
    h = hashagg_new(NULL, 0, &cnt, 1);
    for (i = 0; i < 100; i++)
        CHECK_INT(0, hashagg_add(h, &in[i % 5], &err));
    CHECK_INT(1, hashagg_groups(h));
    drain_final(h, &rs);
    CHECK_INT(1, rs.n);
    CHECK_INT(100, rs.r[0][0].u.i);
    rows_free(&rs);
    /* An empty table drains nothing, also without keys. */
    drain_final(h, &rs);
    CHECK_INT(0, rs.n);
    hashagg_free(h);

    /* Many groups: the table grows and keeps them apart. */
    h = hashagg_new(&key, 1, &cnt, 1);
    for (i = 0; i < 30000; i++) {
        sh_value v = sh_int((int64_t)(i % 10000) * 1000003);

        OK_ALL(adds, hashagg_add(h, &v, &err));
    }
    CHECK_NO_FAILS(adds);
    CHECK_INT(10000, hashagg_groups(h));
    drain_final(h, &rs);
    for (i = 0; i < rs.n; i++) {
        if (rs.r[i][1].u.i != 3) {
            CHECK_INT(3, rs.r[i][1].u.i);
            break;
        }
    }
    rows_free(&rs);
    hashagg_free(h);
}

/* ---- overflow --------------------------------------------------------- */

static void
test_overflow(void)
{
    agg_def  sum = {AGG_SUM, 0, SH_INT, -1, SH_NULL, 0};
    hashagg *h = hashagg_new(NULL, 0, &sum, 1);
    hashagg *f;
    sh_value v;
    rows     parts = {0}, out = {0};
    sh_err   err;
    int64_t  seq[] = {INT64_C(1) << 62, INT64_C(1) << 62, -(INT64_C(1) << 62)};
    size_t   i;

    /* The sum is exact in 128 bits: only a final sum past 64 bits fails,
     * and it fails naming the column, whatever the order of the rows. */
    v = sh_int(INT64_MAX);
    CHECK_INT(0, hashagg_add(h, &v, &err));
    v = sh_int(1);
    CHECK_INT(0, hashagg_add(h, &v, &err));
    g_cols = hashagg_final_cols(h);
    memset(&err, 0, sizeof err);
    CHECK_INT(SH_ERANGE, hashagg_drain_final(h, collect, &out, &err));
    CHECK(strstr(err.msg, "column 0") != NULL, "message names the column: %s",
          err.msg);
    rows_free(&out);

    /* 2^62 + 2^62 - 2^62 fits, as one table and as three partials. */
    for (i = 0; i < 3; i++) {
        v = sh_int(seq[i]);
        CHECK_INT(0, hashagg_add(h, &v, &err));
    }
    drain_final(h, &out);
    CHECK(out.n == 1 && out.r[0][0].type == SH_INT
              && out.r[0][0].u.i == INT64_C(1) << 62,
          "sum of 2^62 + 2^62 - 2^62");
    rows_free(&out);
    for (i = 0; i < 3; i++) {
        v = sh_int(seq[i]);
        CHECK_INT(0, hashagg_add(h, &v, &err));
        if (i == 1)
            drain_partial(h, &parts); /* a partial of 2^63: 16 bytes */
    }
    drain_partial(h, &parts);
    f = hashagg_new(NULL, 0, &sum, 1);
    for (i = 0; i < parts.n; i++)
        CHECK_INT(0, hashagg_merge(f, parts.r[i], &err));
    drain_final(f, &out);
    CHECK(out.n == 1 && out.r[0][0].u.i == INT64_C(1) << 62,
          "merged sum of 2^62 + 2^62 - 2^62");
    rows_free(&out);
    rows_free(&parts);

    /* INT64_MIN - 1 fails too. */
    v = sh_int(INT64_MIN);
    CHECK_INT(0, hashagg_add(h, &v, &err));
    v = sh_int(-1);
    CHECK_INT(0, hashagg_add(h, &v, &err));
    g_cols = hashagg_final_cols(h);
    CHECK_INT(SH_ERANGE, hashagg_drain_final(h, collect, &out, &err));
    rows_free(&out);
    hashagg_free(f);
    hashagg_free(h);
}

/* ---- random data through partials ------------------------------------- */

#define RCOLS 6

static const agg_def rand_aggs[] = {
    {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
    {AGG_COUNT, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_SUM, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_SUM, 3, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_MEAN, 3, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_MEAN, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_MIN, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_MAX, 3, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_MIN, 4, SH_STRING, -1, SH_NULL, 0},
    {AGG_MAX, 4, SH_STRING, -1, SH_NULL, 0},
    {AGG_VAR, 3, SH_FLOAT, -1, SH_NULL, 0},
    {AGG_STD, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_COUNT_DISTINCT, 4, SH_STRING, -1, SH_NULL, 0},
    {AGG_COUNT_DISTINCT, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_APPROX_COUNT_DISTINCT, 2, SH_INT, -1, SH_NULL, 0},
    {AGG_APPROX_COUNT_DISTINCT, 4, SH_STRING, -1, SH_NULL, 0},
    {AGG_MAX, 5, SH_BOOL, -1, SH_NULL, 0},
};
#define N_RAGGS (sizeof rand_aggs / sizeof rand_aggs[0])
static const size_t rand_keys[] = {0, 1};

static char g_strs[64][16];

/* Makes 'n' random rows (strings point into g_strs). */
static sh_value (*make_rows(size_t n, size_t n_groups))[RCOLS]
{
    sh_value(*in)[RCOLS] = xmalloc(n * sizeof *in);
    size_t i;

    for (i = 0; i < 64; i++)
        snprintf(g_strs[i], sizeof g_strs[i], "s%zu-%zx", i, i * 7919);
    for (i = 0; i < n; i++) {
        uint64_t r = rnd();
        size_t   g = (size_t)(r % n_groups);

        in[i][0] = g % 17 == 16 ? sh_null() : sh_int((int64_t)(g / 7));
        in[i][1] = sh_str(g_strs[g % 7], strlen(g_strs[g % 7]));
        in[i][2] = rnd() % 10 == 0
                       ? sh_null()
                       : sh_int((int64_t)(rnd() % 2000001) - 1000000);
        in[i][3] = rnd() % 10 == 0 ? sh_null() : sh_float(rnd_unit() * 1000.0);
        r = rnd() % 70;
        in[i][4] = r >= 64 ? sh_null() : sh_str(g_strs[r], strlen(g_strs[r]));
        in[i][5] = rnd() % 5 == 0 ? sh_null() : sh_bool((int)(rnd() & 1));
    }
    return in;
}

static hashagg *
new_rand(void)
{
    return hashagg_new(rand_keys, 2, rand_aggs, N_RAGGS);
}

/* One pass over 'in' (n rows) into final rows. */
static void
one_pass(sh_value (*in)[RCOLS], size_t n, rows *out)
{
    hashagg *h = new_rand();
    fails    adds = {0};
    sh_err   err;
    size_t   i;

    for (i = 0; i < n; i++)
        OK_ALL(adds, hashagg_add(h, in[i], &err));
    CHECK_NO_FAILS(adds);
    drain_final(h, out);
    hashagg_free(h);
}

/* Partials of 'in' split into 'k' partitions, each drained whenever it
 * holds more than 'max_groups' groups. */
static void
make_partials(sh_value (*in)[RCOLS], size_t n, size_t k, size_t max_groups,
              rows *parts)
{
    size_t p, i;
    fails  adds = {0};
    sh_err err;

    for (p = 0; p < k; p++) {
        hashagg *h = new_rand();

        for (i = p * n / k; i < (p + 1) * n / k; i++) {
            OK_ALL(adds, hashagg_add(h, in[i], &err));
            if (hashagg_groups(h) > max_groups)
                drain_partial(h, parts);
        }
        drain_partial(h, parts);
        hashagg_free(h);
    }
    CHECK_NO_FAILS(adds);
}

static void
test_splits(void)
{
    static const size_t ks[] = {1, 2, 3, 7, 50};
    const size_t        n = RUNNING_ON_VALGRIND ? 1250 : 5000;
    sh_value(*in)[RCOLS];
    rows   ref = {0};
    size_t t;

    g_rng = 42;
    in = make_rows(n, 60);
    one_pass(in, n, &ref);
    CHECK(ref.n > 40, "groups %zu", ref.n);

    for (t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        rows     parts = {0}, mid = {0}, out = {0};
        hashagg *f = new_rand();
        hashagg *m = new_rand();
        fails    merges = {0};
        sh_err   err;
        char     what[64];
        size_t   i;

        make_partials(in, n, ks[t], t % 2 ? 5 : 1000, &parts);
        /* Tree: the first half of the partials through an intermediate
         * table (drained as partials again), in reverse order. */
        for (i = parts.n / 2; i-- > 0;)
            OK_ALL(merges, hashagg_merge(m, parts.r[i], &err));
        drain_partial(m, &mid);
        for (i = parts.n / 2; i < parts.n; i++)
            OK_ALL(merges, hashagg_merge(f, parts.r[i], &err));
        for (i = 0; i < mid.n; i++)
            OK_ALL(merges, hashagg_merge(f, mid.r[i], &err));
        CHECK_NO_FAILS(merges);
        drain_final(f, &out);
        snprintf(what, sizeof what, "%zu partitions", ks[t]);
        check_same_rows(&ref, &out, 2, 1e-12, __LINE__, what);
        rows_free(&parts);
        rows_free(&mid);
        rows_free(&out);
        hashagg_free(f);
        hashagg_free(m);
    }
    rows_free(&ref);
    free(in);
}

/* ---- stability -------------------------------------------------------- */

static void
test_stability(void)
{
    const size_t n = 1000000;
    agg_def      aggs[] = {{AGG_VAR, 0, SH_FLOAT, -1, SH_NULL, 0},
                           {AGG_STD, 0, SH_FLOAT, -1, SH_NULL, 0},
                           {AGG_MEAN, 0, SH_FLOAT, -1, SH_NULL, 0}};
    hashagg     *h = hashagg_new(NULL, 0, aggs, 3);
    hashagg     *f = hashagg_new(NULL, 0, aggs, 3);
    double      *x = xmalloc(n * sizeof *x);
    uint64_t     sk = 0, sk2 = 0;
    __int128     num;
    double       mean, var, rel;
    rows         rs = {0}, parts = {0}, out = {0};
    fails        adds = {0};
    sh_err       err;
    size_t       i;

    /*
     * x = 1e9 + k / 2^20 with k < 2^20 an integer: every x is exact in a
     * double, so the reference variance can be computed exactly in integers
     * (var(x) = var(k) / 2^40) instead of trusting a wider float type, which
     * valgrind emulates as a plain double.
     */
    g_rng = 7;
    for (i = 0; i < n; i++) {
        uint64_t k = rnd() >> 44;

        x[i] = 1e9 + (double)k / 1048576.0;
        sk += k;
        sk2 += k * k;
    }
    num = (__int128)n * sk2 - (__int128)sk * sk;
    var = (double)num / ((double)n * (double)(n - 1)) / 1099511627776.0;
    mean = 1e9 + (double)sk / (double)n / 1048576.0;

    for (i = 0; i < n; i++) {
        sh_value v = sh_float(x[i]);

        OK_ALL(adds, hashagg_add(h, &v, &err));
    }
    CHECK_NO_FAILS(adds);
    drain_final(h, &rs);
    rel = fabs(rs.r[0][0].u.f - var) / var;
    CHECK(rel < 1e-9, "one pass var %.17g vs two-pass %.17g (rel %.3g)",
          rs.r[0][0].u.f, var, rel);
    rel = fabs(rs.r[0][1].u.f - sqrt(var)) / sqrt(var);
    CHECK(rel < 1e-9, "std rel error %.3g", rel);
    rel = fabs(rs.r[0][2].u.f - mean) / mean;
    CHECK(rel < 1e-15, "mean rel error %.3g", rel);

    /* Four uneven partitions merged. */
    for (i = 0; i < n; i++) {
        sh_value v = sh_float(x[i]);

        OK_ALL(adds, hashagg_add(h, &v, &err));
        if (i == 10 || i == 400000 || i == 400001)
            drain_partial(h, &parts);
    }
    CHECK_NO_FAILS(adds);
    drain_partial(h, &parts);
    for (i = 0; i < parts.n; i++)
        CHECK_INT(0, hashagg_merge(f, parts.r[i], &err));
    drain_final(f, &out);
    rel = fabs(out.r[0][0].u.f - var) / var;
    CHECK(rel < 1e-9, "merged var %.17g vs two-pass %.17g (rel %.3g)",
          out.r[0][0].u.f, var, rel);
    rows_free(&rs);
    rows_free(&parts);
    rows_free(&out);
    hashagg_free(h);
    hashagg_free(f);
    free(x);
}

/* ---- distinct counts -------------------------------------------------- */

static void
test_hll(void)
{
    agg_def  aggs[] = {{AGG_APPROX_COUNT_DISTINCT, 0, SH_INT, -1, SH_NULL, 0},
                       {AGG_APPROX_COUNT_DISTINCT, 1, SH_STRING, -1, SH_NULL, 0},
                       {AGG_COUNT_DISTINCT, 0, SH_INT, -1, SH_NULL, 0}};
    hashagg *h = hashagg_new(NULL, 0, aggs, 3);
    hashagg *a = hashagg_new(NULL, 0, aggs, 3);
    hashagg *b = hashagg_new(NULL, 0, aggs, 3);
    hashagg *f = hashagg_new(NULL, 0, aggs, 3);
    rows     one = {0}, parts = {0}, out = {0};
    fails    adds = {0};
    sh_err   err;
    char     buf[32];
    size_t   i;
    double   e;

    for (i = 0; i < 200000; i++) {
        size_t   k = i % 100000; /* every value twice */
        sh_value row[2];

        row[0] = sh_int((int64_t)k);
        row[1] = sh_str(buf, (size_t)snprintf(buf, sizeof buf, "key-%zu", k));
        OK_ALL(adds, hashagg_add(h, row, &err));
        OK_ALL(adds, hashagg_add(i % 3 ? a : b, row, &err));
    }
    CHECK_NO_FAILS(adds);
    drain_final(h, &one);
    e = fabs((double)one.r[0][0].u.i - 1e5) / 1e5;
    CHECK(e < 0.02, "HLL of 1e5 ints: %" PRId64 " (error %.4f)",
          one.r[0][0].u.i, e);
    e = fabs((double)one.r[0][1].u.i - 1e5) / 1e5;
    CHECK(e < 0.02, "HLL of 1e5 strings: %" PRId64 " (error %.4f)",
          one.r[0][1].u.i, e);
    CHECK_INT(100000, one.r[0][2].u.i);

    drain_partial(a, &parts);
    drain_partial(b, &parts);
    for (i = 0; i < parts.n; i++)
        CHECK_INT(0, hashagg_merge(f, parts.r[i], &err));
    drain_final(f, &out);
    CHECK_INT(one.r[0][0].u.i, out.r[0][0].u.i);
    CHECK_INT(one.r[0][1].u.i, out.r[0][1].u.i);
    CHECK_INT(100000, out.r[0][2].u.i);
    rows_free(&one);
    rows_free(&parts);
    rows_free(&out);

    /* Small counts are (nearly) exact; empty is 0. */
    for (i = 0; i < 50; i++) {
        sh_value row[2] = {sh_int((int64_t)(i % 10)), sh_null()};

        CHECK_INT(0, hashagg_add(h, row, &err));
    }
    drain_final(h, &one);
    CHECK_INT(10, one.r[0][0].u.i);
    CHECK_INT(0, one.r[0][1].u.i);
    CHECK_INT(10, one.r[0][2].u.i);
    rows_free(&one);
    hashagg_free(h);
    hashagg_free(a);
    hashagg_free(b);
    hashagg_free(f);
}

static void
test_count_distinct(void)
{
    agg_def  aggs[] = {{AGG_COUNT_DISTINCT, 0, SH_FLOAT, -1, SH_NULL, 0},
                       {AGG_COUNT_DISTINCT, 1, SH_STRING, -1, SH_NULL, 0},
                       {AGG_COUNT_DISTINCT, 2, SH_BOOL, -1, SH_NULL, 0}};
    sh_value in[][3] = {
        {sh_float(0.0), S("a"), sh_bool(0)},
        {sh_float(-0.0), S("a\0b"), sh_bool(1)},
        {sh_float(NAN), S("a\0c"), sh_null()},
        {sh_float(NAN), S(""), sh_bool(0)},
        {sh_null(), S(""), sh_bool(1)},
        {sh_float(2.5), sh_null(), sh_null()},
    };
    size_t cut;

    for (cut = 0; cut <= 6; cut++) {
        hashagg *p = hashagg_new(NULL, 0, aggs, 3);
        hashagg *f = hashagg_new(NULL, 0, aggs, 3);
        rows     parts = {0}, out = {0};
        sh_err   err;
        size_t   i;

        for (i = 0; i < 6; i++) {
            CHECK_INT(0, hashagg_add(p, in[i], &err));
            if (i + 1 == cut)
                drain_partial(p, &parts);
        }
        drain_partial(p, &parts);
        for (i = 0; i < parts.n; i++)
            CHECK_INT(0, hashagg_merge(f, parts.r[i], &err));
        drain_final(f, &out);
        CHECK_INT(1, out.n);
        CHECK_INT(3, out.r[0][0].u.i); /* 0, NaN, 2.5 */
        CHECK_INT(4, out.r[0][1].u.i); /* a, a\0b, a\0c, "" */
        CHECK_INT(2, out.r[0][2].u.i);
        rows_free(&parts);
        rows_free(&out);
        hashagg_free(p);
        hashagg_free(f);
    }
}

/* ---- out of core ------------------------------------------------------ */

static char g_dir[64];

/* An agg_emit_fn writing rows into the rowfile_writer 'ctx'. */
static int
write_row(void *ctx, const sh_value *row, sh_err *err)
{
    return rowfile_write(ctx, row, err);
}

/* Files in g_dir (0 when it cannot be read). */
static size_t
count_dir(void)
{
    int n = th_count_files(g_dir);

    return n < 0 ? 0 : (size_t)n;
}

/* The most files seen in g_dir while collecting (spill files show). */
static size_t g_max_files;

/* collect(), also noting how many files g_dir holds. */
static int
collect_spy(void *ctx, const sh_value *row, sh_err *err)
{
    size_t n = count_dir();

    if (n > g_max_files)
        g_max_files = n;
    return collect(ctx, row, err);
}

static void
test_finalize_files(void)
{
    const size_t n = RUNNING_ON_VALGRIND ? 5000 : 20000, k = 4;
    sh_value(*in)[RCOLS];
    char                  *paths[4];
    char                   prefix[96];
    rows                   ref = {0}, mem = {0}, tiny = {0};
    hashagg               *h = new_rand();
    hashagg_finalize_stats st;
    fails                  adds = {0};
    uint64_t               n_partial = 0;
    sh_err                 err;
    size_t                 p, i;

    snprintf(g_dir, sizeof g_dir, "/tmp/test_agg.XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    snprintf(prefix, sizeof prefix, "%s/spill", g_dir);
    g_rng = 99;
    in = make_rows(n, 600);
    one_pass(in, n, &ref);

    for (p = 0; p < k; p++) {
        rowfile_writer *w;

        paths[p] = xasprintf("%s/part%zu", g_dir, p);
        w = rowfile_create(paths[p], hashagg_partial_cols(h), &err);
        CHECK(w != NULL, "create %s", paths[p]);
        for (i = p * n / k; i < (p + 1) * n / k; i++) {
            OK_ALL(adds, hashagg_add(h, in[i], &err));
            if (hashagg_groups(h) >= 150)
                CHECK_INT(0, hashagg_drain_partial(h, write_row, w, &err));
        }
        CHECK_INT(0, hashagg_drain_partial(h, write_row, w, &err));
        n_partial += rowfile_rows(w);
        CHECK_INT(0, rowfile_close(w, &err));
    }
    CHECK_NO_FAILS(adds);

    /* In memory: every partial row read once, nothing spilled, the peak
     * is the whole table. */
    g_cols = hashagg_final_cols(h);
    memset(&st, 0xff, sizeof st);
    CHECK_INT(0, hashagg_finalize_files(h, (const char *const *)paths, k, -1,
                                        (size_t)1 << 30, prefix, collect, NULL,
                                        &mem, &st, &err));
    CHECK_INT(0, hashagg_groups(h));
    CHECK_INT(k, count_dir());
    check_same_rows(&ref, &mem, 2, 1e-12, __LINE__, "in memory");
    CHECK_INT(n_partial, st.rows_read);
    CHECK_INT(0, st.spill_bytes);
    CHECK(st.peak_bytes > 64 * 1024 && st.peak_bytes < 64u << 20,
          "in-memory peak %" PRIu64 " bytes for %zu groups", st.peak_bytes,
          ref.n);

    /* A 256 KiB budget: two levels of spill files, all removed; rows_read
     * still counts the inputs' rows only; the peak passes the budget by
     * at most the table's last growth. */
    g_cols = hashagg_final_cols(h);
    CHECK_INT(0, hashagg_finalize_files(h, (const char *const *)paths, k, -1,
                                        256 * 1024, prefix, collect_spy, NULL,
                                        &tiny, &st, &err));
    CHECK(g_max_files >= k + 16 + 16, "re-partitioned twice: %zu files",
          g_max_files);
    CHECK_INT(0, hashagg_groups(h));
    CHECK_INT(k, count_dir());
    check_same_rows(&ref, &tiny, 2, 1e-12, __LINE__, "256 KiB budget");
    CHECK_INT(n_partial, st.rows_read);
    CHECK(st.spill_bytes > 0, "spill_bytes %" PRIu64, st.spill_bytes);
    CHECK(st.peak_bytes > 256 * 1024 && st.peak_bytes < 512 * 1024,
          "peak %" PRIu64 " bytes with a 256 KiB budget", st.peak_bytes);

    /* A missing file is an I/O error and leaves no spill behind; the
     * stats of what was done are still given. */
    free(paths[3]);
    paths[3] = xasprintf("%s/missing", g_dir);
    g_cols = hashagg_final_cols(h);
    rows_free(&tiny);
    memset(&st, 0, sizeof st);
    CHECK(hashagg_finalize_files(h, (const char *const *)paths, k, -1,
                                 16 * 1024, prefix, collect, NULL, &tiny, &st,
                                 &err)
              != 0,
          "missing input fails");
    CHECK_INT(0, hashagg_groups(h));
    CHECK_INT(k, count_dir()); /* part3 is still there */
    CHECK(st.rows_read > 0 && st.spill_bytes > 0,
          "stats on error: rows %" PRIu64 " spill %" PRIu64, st.rows_read,
          st.spill_bytes);

    for (p = 0; p < k; p++) {
        unlink(paths[p]);
        free(paths[p]);
    }
    rmdir(g_dir);
    rows_free(&ref);
    rows_free(&mem);
    rows_free(&tiny);
    hashagg_free(h);
    free(in);
}

/* What a tick function saw; it cancels on call 'cancel_at' (0: never). */
typedef struct ticks {
    unsigned               calls;
    unsigned               cancel_at;
    int                    monotone;  /* rows_read never went back */
    hashagg_finalize_stats last;      /* the stats of the last call */
    uint64_t               max_spill; /* most spill_bytes seen */
    rows                   out;       /* rows emitted */
} ticks;

static int
tick_spy(void *ctx, const hashagg_finalize_stats *st, sh_err *err)
{
    ticks *t = ctx;

    t->calls++;
    if (st->rows_read < t->last.rows_read)
        t->monotone = 0;
    t->last = *st;
    if (st->spill_bytes > t->max_spill)
        t->max_spill = st->spill_bytes;
    if (t->cancel_at != 0 && t->calls == t->cancel_at)
        return sh_err_set(err, SH_ECANCELED, "", "cancelled at tick %u",
                          t->calls);
    return 0;
}

static int
tick_collect(void *ctx, const sh_value *row, sh_err *err)
{
    return collect(&((ticks *)ctx)->out, row, err);
}

/*
 * The tick function of hashagg_finalize_files: called every
 * HASHAGG_TICK_ROWS rows read (inputs and spill files) with the stats so
 * far, and an error it returns stops the merge at once (a cancel during a
 * long merge is noticed), leaving no spill file and an empty table.
 */
static void
test_finalize_tick(void)
{
    const size_t           n = 3 * HASHAGG_TICK_ROWS + 1000;
    size_t                 key = 0, i;
    agg_def                cnt = {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0};
    hashagg               *h = hashagg_new(&key, 1, &cnt, 1);
    hashagg_finalize_stats st;
    const char            *path;
    char                   prefix[96], *file;
    rowfile_writer        *w;
    fails                  adds = {0};
    ticks                  t;
    sh_err                 err;
    int                    rc;

    snprintf(g_dir, sizeof g_dir, "/tmp/test_agg.XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    snprintf(prefix, sizeof prefix, "%s/spill", g_dir);
    file = xasprintf("%s/part", g_dir);
    path = file;
    /* n partial rows of 5000 distinct keys each batch: key i % 5000. */
    w = rowfile_create(file, hashagg_partial_cols(h), &err);
    CHECK(w != NULL, "create %s", file);
    for (i = 0; i < n; i++) {
        sh_value v = sh_int((int64_t)(i % 5000));

        OK_ALL(adds, hashagg_add(h, &v, &err));
        if (hashagg_groups(h) == 5000)
            OK_ALL(adds, hashagg_drain_partial(h, write_row, w, &err));
    }
    OK_ALL(adds, hashagg_drain_partial(h, write_row, w, &err));
    CHECK_INT(n, rowfile_rows(w));
    OK_ALL(adds, rowfile_close(w, &err));
    CHECK_NO_FAILS(adds);

    /* In memory: one call per HASHAGG_TICK_ROWS rows, the stats growing. */
    memset(&t, 0, sizeof t);
    t.monotone = 1;
    g_cols = hashagg_final_cols(h);
    CHECK_INT(0,
              hashagg_finalize_files(h, &path, 1, -1, (size_t)1 << 30, prefix,
                                     tick_collect, tick_spy, &t, &st, &err));
    CHECK_INT(3, t.calls);
    CHECK(t.monotone, "rows_read went back");
    CHECK_INT(3 * HASHAGG_TICK_ROWS, t.last.rows_read);
    CHECK_INT(n, st.rows_read);
    CHECK_INT(5000, t.out.n);
    for (i = 0; i < t.out.n; i++) {
        int64_t want = (int64_t)(n / 5000)
                       + ((size_t)t.out.r[i][0].u.i < n % 5000);

        if (t.out.r[i][1].u.i != want) {
            CHECK_INT(want, t.out.r[i][1].u.i);
            break;
        }
    }
    rows_free(&t.out);

    /* Spilling (a 64 KiB budget): spill files are read too, so more calls,
     * and the spill bytes of the open files show while they are written. */
    memset(&t, 0, sizeof t);
    t.monotone = 1;
    g_cols = hashagg_final_cols(h);
    CHECK_INT(0, hashagg_finalize_files(h, &path, 1, -1, 64 * 1024, prefix,
                                        tick_collect, tick_spy, &t, &st, &err));
    CHECK(t.calls > 3, "%u calls while spilling", t.calls);
    /* One level of spill files holds 5000 / 16 groups a file, well under
     * the budget: every row is read twice at most (the input, then one
     * spill file). The table must not carry the 1 GiB run's slot array
     * into the budget, or every level would spill again, 6 deep. */
    CHECK(t.calls <= 2 * n / HASHAGG_TICK_ROWS,
          "%u calls: rows re-read through more than one level", t.calls);
    CHECK(t.max_spill > 0, "no spill bytes in the ticks");
    CHECK(st.spill_bytes >= t.max_spill, "spill %" PRIu64 " < %" PRIu64,
          st.spill_bytes, t.max_spill);
    CHECK_INT(n, st.rows_read);
    CHECK_INT(5000, t.out.n);
    CHECK_INT(1, count_dir());
    rows_free(&t.out);

    /* Cancelled in memory and while spilling: the tick's error comes
     * back, nothing is emitted, no spill file remains, 'h' is empty. */
    for (i = 0; i < 2; i++) {
        memset(&t, 0, sizeof t);
        t.cancel_at = 2;
        memset(&err, 0, sizeof err);
        rc = hashagg_finalize_files(h, &path, 1, -1,
                                    i == 0 ? (size_t)1 << 30 : 16 * 1024,
                                    prefix, tick_collect, tick_spy, &t, &st,
                                    &err);
        CHECK(rc == SH_ECANCELED && err.code == SH_ECANCELED
                  && strstr(err.msg, "cancelled at tick 2") != NULL,
              "budget %s: rc %d code %d: %s", i ? "16 KiB" : "1 GiB", rc,
              err.code, err.msg);
        CHECK_INT(2, t.calls);
        CHECK_INT(0, t.out.n);
        CHECK_INT(0, hashagg_groups(h));
        CHECK_INT(1, count_dir());
        CHECK(st.rows_read <= 2 * HASHAGG_TICK_ROWS && st.rows_read > 0,
              "rows_read %" PRIu64 " when cancelled", st.rows_read);
        rows_free(&t.out);
    }

    /* A NULL tick and NULL stats are fine. */
    g_cols = hashagg_final_cols(h);
    memset(&t, 0, sizeof t);
    CHECK_INT(0, hashagg_finalize_files(h, &path, 1, -1, 64 * 1024, prefix,
                                        tick_collect, NULL, &t, NULL, &err));
    CHECK_INT(5000, t.out.n);
    rows_free(&t.out);

    unlink(file);
    free(file);
    rmdir(g_dir);
    hashagg_free(h);
}

/* ---- queued counts ---------------------------------------------------- */

/* Columns of the queue tests' rows: 0 a key, mostly a string (else null,
 * int, float or bool); 1 an int or null; 2 an int key or null; 3 a
 * string or null. */
#define QCOLS 4

/* The string keys of the queue tests (see make_queue_keys). */
#define MAX_QKEYS 256
static char   g_qkey[MAX_QKEYS][104];
static size_t g_qlen[MAX_QKEYS];
static size_t g_nqkeys;

/* Adds key s[0..n) to the pool. */
static void
add_qkey(const char *s, size_t n)
{
    assert(g_nqkeys < MAX_QKEYS && n <= sizeof g_qkey[0]);
    memcpy(g_qkey[g_nqkeys], s, n);
    g_qlen[g_nqkeys++] = n;
}

/*
 * The pool of string keys: the empty string; prefixes of one text at every
 * length around the branches of the key compare (0-3, 4-7, 8-16 and more
 * than 16 bytes, so 16 and 17 too), each in variants that differ only in
 * their last byte (a letter, another letter, upper case, NUL, 0xff), their
 * first or their middle byte; and for 9, 16 and 17 bytes a variant that
 * differs at each position. Prefixes of each other are different keys.
 */
static void
make_queue_keys(void)
{
    static const size_t lens[] = {1,  2,  3,  4,  5,  7,  8,  9,  12, 15,
                                  16, 17, 18, 24, 31, 32, 33, 64, 100};
    static const char   last[] = {'a', 'b', 'A', '\0', (char)0xff};
    static const char   text[] =
        "the quick brown fox jumps over the lazy dog; THE QUICK BROWN FOX "
        "JUMPS OVER THE LAZY DOG 0123456789 \x80\xfe";
    char   k[104];
    size_t i, j, n;

    g_nqkeys = 0;
    add_qkey("", 0);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        n = lens[i];
        memcpy(k, text, n);
        for (j = 0; j < sizeof last; j++) {
            k[n - 1] = last[j];
            add_qkey(k, n);
        }
        memcpy(k, text, n);
        k[0] = '#';
        if (n > 1)
            add_qkey(k, n);
        memcpy(k, text, n);
        k[n / 2] = '~';
        if (n > 2)
            add_qkey(k, n);
    }
    for (i = 0; i < 3; i++) {
        n = i == 0 ? 9 : i == 1 ? 16 : 17;
        for (j = 0; j < n; j++) {
            memcpy(k, text, n);
            k[j] = '|';
            add_qkey(k, n);
        }
    }
}

/* The bytes of the string values of the row being made: every row
 * overwrites them, so a table that kept a pointer instead of copying
 * would see another row's key. */
static char g_qscratch[2][104];

/*
 * Makes the next row of the queue tests into 'row': many duplicate keys
 * (half of the string keys come from the first 24 of the pool), null keys
 * and keys of other types in column 0, nulls in the counted columns.
 */
static void
make_queue_row(sh_value *row)
{
    uint64_t r = rnd() % 100;
    size_t   k;

    if (r < 4) {
        row[0] = sh_null();
    } else if (r < 7) {
        row[0] = sh_int((int64_t)(rnd() % 5));
    } else if (r < 8) {
        row[0] = sh_float(rnd() % 2 ? 1.0 : -0.0);
    } else if (r < 9) {
        row[0] = sh_bool((int)(rnd() & 1));
    } else {
        k = rnd() % 2 ? (size_t)(rnd() % 24) : (size_t)(rnd() % g_nqkeys);
        memcpy(g_qscratch[0], g_qkey[k], g_qlen[k]);
        row[0] = sh_str(g_qscratch[0], g_qlen[k]);
    }
    row[1] = rnd() % 10 < 3 ? sh_null() : sh_int((int64_t)(rnd() % 1000));
    row[2] = rnd() % 10 == 0 ? sh_null() : sh_int((int64_t)(rnd() % 7));
    r = rnd() % 10;
    memcpy(g_qscratch[1], "value", 5);
    row[3] = r < 4 ? sh_null() : sh_str(g_qscratch[1], r < 6 ? 0 : 5);
}

/* Scribbles over the bytes of the last row's strings. */
static void
clobber_queue_row(void)
{
    memset(g_qscratch, 0x5a, sizeof g_qscratch);
}

/* The tables of the queue tests: every aggregate is count (or there is
 * none: distinct). */
typedef struct queue_case {
    const char *what;
    size_t      keys[2];
    size_t      n_keys;
    agg_def     aggs[3];
    size_t      n_aggs;
} queue_case;

static const queue_case queue_cases[] = {
    {"groupby col 0: count()",
     {0, 0},
     1,
     {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0}},
     1},
    {"groupby col 0: count(), count(col 1), count(col 3)",
     {0, 0},
     1,
     {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
      {AGG_COUNT, 1, SH_INT, -1, SH_NULL, 0},
      {AGG_COUNT, 3, SH_STRING, -1, SH_NULL, 0}},
     3},
    {"distinct col 0",
     {0, 0},
     1,
     {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0}},
     0},
    {"distinct cols 0, 2",
     {0, 2},
     2,
     {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0}},
     0},
    {"groupby col 2 (ints and nulls): count(col 3)",
     {2, 0},
     1,
     {{AGG_COUNT, 3, SH_STRING, -1, SH_NULL, 0}},
     1},
    {"groupby cols 2, 0: count(), count(col 1)",
     {2, 0},
     2,
     {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
      {AGG_COUNT, 1, SH_INT, -1, SH_NULL, 0}},
     2},
    {"no keys: count(), count(col 1)",
     {0, 0},
     0,
     {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
      {AGG_COUNT, 1, SH_INT, -1, SH_NULL, 0}},
     2},
};

static hashagg *
new_queue_case(const queue_case *c)
{
    return hashagg_new(c->keys, c->n_keys, c->aggs, c->n_aggs);
}

/*
 * What feeding rows by hashagg_queue did wrong, counted over a loop and
 * reported once: a queue count that was not the rows queued since the
 * last flush, groups that changed before a flush, a flush that failed.
 */
typedef struct queue_log {
    size_t bad_count;   /* hashagg_queue returned the wrong count */
    size_t want, got;   /* ... the first time */
    size_t early;       /* groups changed while rows were only queued */
    size_t flush_fails; /* hashagg_flush did not return 0 */
} queue_log;

/*
 * Queues row 'row' into 'h', 'nq' rows being queued before it; flushes
 * when hashagg_queue says the batch is full, or when 'flush_now'. Notes
 * what went wrong in 'log'.
 */
static void
queue_row(hashagg *h, const sh_value *row, size_t *nq, int flush_now,
          queue_log *log)
{
    size_t groups = hashagg_groups(h), got = hashagg_queue(h, row);
    sh_err err;

    clobber_queue_row();
    if (got != *nq + 1 && log->bad_count++ == 0) {
        log->want = *nq + 1;
        log->got = got;
    }
    *nq = got;
    if (hashagg_groups(h) != groups)
        log->early++;
    if (got >= HASHAGG_BATCH || flush_now) {
        if (hashagg_flush(h, &err) != 0)
            log->flush_fails++;
        *nq = 0;
    }
}

static void
check_queue_log(const queue_log *log, int line, const char *what)
{
    CHECK_AT(log->bad_count == 0, line,
             "%s: hashagg_queue returned a wrong count %zu times; the first "
             "time %zu, expected %zu",
             what, log->bad_count, log->got, log->want);
    CHECK_AT(log->early == 0, line,
             "%s: hashagg_groups changed %zu times while rows were only "
             "queued",
             what, log->early);
    CHECK_AT(log->flush_fails == 0, line, "%s: hashagg_flush failed %zu times",
             what, log->flush_fails);
}

/*
 * For each count-only table, the same rows fed by hashagg_add and by
 * hashagg_queue (flushed when a batch is full and at the end; and, the
 * second time, also at random points) give the same groups and counts.
 */
static void
test_queue_equals_add(void)
{
    const size_t n = RUNNING_ON_VALGRIND ? 5000 : 20000;
    size_t       c, i;
    int          early;

    make_queue_keys();
    for (c = 0; c < sizeof queue_cases / sizeof queue_cases[0]; c++) {
        for (early = 0; early < 2; early++) {
            const queue_case *qc = &queue_cases[c];
            hashagg          *a = new_queue_case(qc), *q = new_queue_case(qc);
            rows              ra = {0}, rq = {0};
            fails             adds = {0};
            queue_log         log = {0};
            sh_err            err;
            char              what[160];
            size_t            nq = 0, min_groups;

            snprintf(what, sizeof what, "%s, flushed %s", qc->what,
                     early ? "at random too" : "per batch");
            CHECK(hashagg_can_queue(q), "%s: hashagg_can_queue is 0", what);
            g_rng = 1000 + c;
            for (i = 0; i < n; i++) {
                sh_value row[QCOLS];

                make_queue_row(row);
                OK_ALL(adds, hashagg_add(a, row, &err));
                queue_row(q, row, &nq, early && rnd() % 37 == 0, &log);
            }
            CHECK_NO_FAILS(adds);
            CHECK_INT(0, hashagg_flush(q, &err));
            check_queue_log(&log, __LINE__, what);
            CHECK(hashagg_groups(q) == hashagg_groups(a),
                  "%s: %zu groups queued, %zu added", what, hashagg_groups(q),
                  hashagg_groups(a));
            /* Every string key of the pool, or the 8 of column 2. */
            min_groups = qc->n_keys == 0 ? 1 : qc->keys[0] == 0 ? g_nqkeys : 8;
            CHECK(hashagg_groups(a) >= min_groups,
                  "%s: only %zu groups (the rows should make %zu or more)",
                  what, hashagg_groups(a), min_groups);
            drain_final(a, &ra);
            drain_final(q, &rq);
            check_same_rows(&ra, &rq, qc->n_keys, 0, __LINE__, what);
            rows_free(&ra);
            rows_free(&rq);
            hashagg_free(a);
            hashagg_free(q);
        }
    }
}

/*
 * hashagg_count_strs (a tokenize's spans) against the same tokens through
 * hashagg_add: tokens of 1 to 40 bytes from a pool (every branch of
 * bytes_equal), fed in runs of 1 to 64 spans; the limit stops a run just
 * after the new group that passes it, and only then; hashagg_counts_key
 * is 1 only for a single key counted by rows.
 */
static void
test_count_strs_equals_add(void)
{
    const size_t n = RUNNING_ON_VALGRIND ? 5000 : 30000;
    const size_t key = 0;
    agg_def      cnt[2] = {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
                           {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0}};
    agg_def      cnt_col = {AGG_COUNT, 0, SH_NULL, -1, SH_NULL, 0};
    size_t       keys2[2] = {0, 1}, col = 99, i, done, got;
    hashagg     *a = hashagg_new(&key, 1, cnt, 2);
    hashagg     *c = hashagg_new(&key, 1, cnt, 2);
    hashagg     *other;
    rows         ra = {0}, rc = {0};
    fails        adds = {0};
    strbuf       text = {0};
    text_span   *sp = xcalloc(n, sizeof *sp);
    sh_err       err;
    size_t       before;

    CHECK(hashagg_counts_key(c, &col) && col == 0, "counts_key: col %zu", col);
    other = hashagg_new(&key, 1, &cnt_col, 1);
    CHECK(!hashagg_counts_key(other, &col), "count(col) counts by rows");
    hashagg_free(other);
    other = hashagg_new(keys2, 2, cnt, 1);
    CHECK(!hashagg_counts_key(other, &col), "two keys counted by rows");
    hashagg_free(other);

    g_rng = 4242;
    for (i = 0; i < n; i++) {
        size_t pick = rnd() % 500, len = 1 + pick % 40, j;

        sp[i].start = text.len;
        sp[i].len = len;
        for (j = 0; j < len; j++)
            sb_putc(&text, (char)('a' + (pick * 7 + j * (pick % 5 + 1)) % 26));
        sb_putc(&text, ' ');
    }
    for (i = 0; i < n; i++) {
        sh_value v = sh_str(text.data + sp[i].start, sp[i].len);

        OK_ALL(adds, hashagg_add(a, &v, &err));
    }
    CHECK_NO_FAILS(adds);
    for (done = 0; done < n; done += got) {
        size_t run = 1 + rnd() % 64;

        if (run > n - done)
            run = n - done;
        got = hashagg_count_strs(c, text.data, sp + done, run, SIZE_MAX);
        CHECK_INT(run, got);
        if (got != run)
            break;
    }
    CHECK_INT(hashagg_groups(a), hashagg_groups(c));
    drain_final(a, &ra);
    drain_final(c, &rc);
    check_same_rows(&ra, &rc, 1, 0, __LINE__, "count_strs");
    rows_free(&ra);
    rows_free(&rc);

    /* The limit: spans of seen tokens never stop a run; the first new
     * group past it does, and is counted. */
    CHECK_INT(0, hashagg_groups(c));
    CHECK_INT(1, hashagg_count_strs(c, text.data, sp, 10, 0));
    CHECK_INT(1, hashagg_groups(c));
    before = hashagg_bytes(c);
    for (i = 0;
         i < 10 && sp[i].len == sp[0].len
         && memcmp(text.data + sp[i].start, text.data + sp[0].start, sp[0].len)
                == 0;
         i++)
        ;
    CHECK_INT(i, hashagg_count_strs(c, text.data, sp, i, 0));
    CHECK_INT(before, hashagg_bytes(c));
    hashagg_free(a);
    hashagg_free(c);
    sb_free(&text);
    free(sp);
}

/* hashagg_can_queue: 1 for counts (with or without a column) and for no
 * aggregate at all; 0 as soon as one aggregate is not count. */
static void
test_can_queue(void)
{
    static const agg_fn others[] = {AGG_SUM,
                                    AGG_MEAN,
                                    AGG_MIN,
                                    AGG_MAX,
                                    AGG_VAR,
                                    AGG_STD,
                                    AGG_COUNT_DISTINCT,
                                    AGG_APPROX_COUNT_DISTINCT};
    agg_def             aggs[3] = {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
                                   {AGG_COUNT, 1, SH_INT, -1, SH_NULL, 0},
                                   {AGG_COUNT, 0, SH_INT, -1, SH_NULL, 0}};
    size_t              key = 0, i, pos;
    hashagg            *h;

    h = hashagg_new(&key, 1, aggs, 2);
    CHECK(hashagg_can_queue(h) == 1, "count(), count(col 1): can_queue %d",
          hashagg_can_queue(h));
    hashagg_free(h);
    h = hashagg_new(&key, 1, NULL, 0);
    CHECK(hashagg_can_queue(h) == 1, "distinct: can_queue %d",
          hashagg_can_queue(h));
    hashagg_free(h);
    h = hashagg_new(NULL, 0, aggs, 1);
    CHECK(hashagg_can_queue(h) == 1, "count() without keys: can_queue %d",
          hashagg_can_queue(h));
    hashagg_free(h);

    for (i = 0; i < sizeof others / sizeof others[0]; i++) {
        for (pos = 0; pos < 3; pos++) {
            agg_def mix[3] = {{AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0},
                              {AGG_COUNT, 1, SH_INT, -1, SH_NULL, 0},
                              {AGG_COUNT, 0, SH_INT, -1, SH_NULL, 0}};

            mix[pos].fn = others[i];
            mix[pos].col = 1;
            mix[pos].in_type = SH_INT;
            h = hashagg_new(&key, 1, mix, pos == 0 ? 1 : 3);
            CHECK(hashagg_can_queue(h) == 0,
                  "%s as aggregate %zu of %zu (the rest count): "
                  "can_queue %d, expected 0",
                  agg_fn_name(others[i]), pos, pos == 0 ? (size_t)1 : 3,
                  hashagg_can_queue(h));
            hashagg_free(h);
        }
    }
}

/*
 * The drains flush first: rows still queued are in the drained rows, once.
 * Final and partial drains of a table with rows queued since its last
 * flush (fewer than a batch, and a whole batch) equal the same rows
 * added; after the drain the queue is empty, so the next drain holds only
 * the rows queued after it.
 */
static void
test_queue_drain(void)
{
    static const size_t pending[] = {1, 100, HASHAGG_BATCH};
    const queue_case   *qc = &queue_cases[1]; /* three counts */
    size_t              t, i;
    int                 partial;

    make_queue_keys();
    for (t = 0; t < sizeof pending / sizeof pending[0]; t++) {
        for (partial = 0; partial < 2; partial++) {
            hashagg  *a = new_queue_case(qc), *q = new_queue_case(qc);
            hashagg  *f = new_queue_case(qc);
            rows      ra = {0}, rq = {0}, parts = {0};
            fails     adds = {0};
            queue_log log = {0};
            sh_err    err;
            char      what[128];
            size_t    nq = 0, groups, round;

            g_rng = 77 + t;
            for (round = 0; round < 2; round++) {
                /* Round 0: 1000 rows flushed per batch, then 'pending'
                 * more left queued; round 1 (after the drain): only
                 * 'pending' rows queued. */
                size_t flushed = round == 0 ? 1000 : 0;

                snprintf(what, sizeof what,
                         "%s drain with %zu rows queued, round %zu",
                         partial ? "partial" : "final", pending[t], round);
                for (i = 0; i < flushed + pending[t]; i++) {
                    sh_value row[QCOLS];

                    if (i == flushed && flushed > 0) {
                        CHECK_INT(0, hashagg_flush(q, &err));
                        nq = 0;
                    }
                    make_queue_row(row);
                    OK_ALL(adds, hashagg_add(a, row, &err));
                    if (i < flushed) {
                        queue_row(q, row, &nq, 0, &log);
                    } else {
                        CHECK_INT(i - flushed + 1, hashagg_queue(q, row));
                        clobber_queue_row();
                    }
                }
                CHECK_NO_FAILS(adds);
                check_queue_log(&log, __LINE__, what);
                groups = hashagg_groups(q);
                CHECK(hashagg_queued_bytes(q) > 0,
                      "%s: hashagg_queued_bytes is 0", what);
                if (partial) {
                    drain_partial(q, &parts);
                    for (i = 0; i < parts.n; i++)
                        CHECK_INT(0, hashagg_merge(f, parts.r[i], &err));
                    rows_free(&parts);
                    drain_final(f, &rq);
                } else {
                    drain_final(q, &rq);
                }
                drain_final(a, &ra);
                CHECK(rq.n >= groups,
                      "%s: %zu rows drained, fewer than the %zu groups "
                      "before it",
                      what, rq.n, groups);
                check_same_rows(&ra, &rq, qc->n_keys, 0, __LINE__, what);
                CHECK_INT(0, hashagg_groups(q));
                CHECK_INT(0, hashagg_queued_bytes(q));
                rows_free(&ra);
                rows_free(&rq);
                nq = 0;
            }
            hashagg_free(a);
            hashagg_free(q);
            hashagg_free(f);
        }
    }
}

/*
 * hashagg_queued_bytes: 0 with nothing queued; grows with every row
 * queued; and bounds what the flush adds to hashagg_bytes. The table is
 * first grown to 1024 groups and drained, so its slots and group vector
 * (kept for reuse) hold the 200 new groups without doubling, which the
 * bound leaves out; the keys are long, so their bytes count.
 */
/* Key 'i' of test_queued_bytes: "<i>-kkk...", 40 to 100 bytes, in 'buf'
 * (128 bytes). */
static sh_value
long_key(char *buf, size_t i)
{
    size_t len = 40 + i % 61;

    memset(buf, 'k', len);
    buf[snprintf(buf, 128, "%zu", i)] = '-';
    return sh_str(buf, len);
}

static void
test_queued_bytes(void)
{
    size_t   key = 0;
    agg_def  cnt = {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0};
    hashagg *h = hashagg_new(&key, 1, &cnt, 1);
    rows     rs = {0};
    sh_err   err;
    char     buf[128];
    size_t   i, q, prev, before, after, grew = 0;

    CHECK_INT(0, hashagg_queued_bytes(h));
    for (i = 0; i < 1024; i++) {
        sh_value v = sh_str(buf, (size_t)snprintf(buf, sizeof buf,
                                                  "warm-up %zu", i));

        if (hashagg_queue(h, &v) == HASHAGG_BATCH)
            CHECK_INT(0, hashagg_flush(h, &err));
    }
    CHECK_INT(0, hashagg_flush(h, &err));
    CHECK_INT(1024, hashagg_groups(h));
    drain_final(h, &rs);
    rows_free(&rs);

    prev = 0;
    for (i = 0; i < 200; i++) {
        sh_value v = long_key(buf, i);

        CHECK_INT(i + 1, hashagg_queue(h, &v));
        q = hashagg_queued_bytes(h);
        grew += q > prev;
        prev = q;
    }
    CHECK(grew == 200, "hashagg_queued_bytes grew on %zu of 200 rows queued",
          grew);
    CHECK(q >= 200 * 40,
          "200 rows of 40-100 byte keys queued: "
          "hashagg_queued_bytes is %zu",
          q);
    CHECK_INT(0, hashagg_groups(h));
    before = hashagg_bytes(h);
    CHECK_INT(0, hashagg_flush(h, &err));
    after = hashagg_bytes(h);
    CHECK_INT(200, hashagg_groups(h));
    CHECK_INT(0, hashagg_queued_bytes(h));
    CHECK(after > before && after - before <= q,
          "folding 200 new groups took hashagg_bytes from %zu to %zu "
          "(%zu more); hashagg_queued_bytes said at most %zu",
          before, after, after > before ? after - before : 0, q);

    /* The same keys again: they add no group and no byte. */
    for (i = 0; i < 200; i++) {
        sh_value v = long_key(buf, i);

        CHECK_INT(i + 1, hashagg_queue(h, &v));
    }
    before = hashagg_bytes(h);
    CHECK_INT(0, hashagg_flush(h, &err));
    CHECK_INT(200, hashagg_groups(h));
    CHECK(hashagg_bytes(h) == before,
          "folding 200 known keys took hashagg_bytes from %zu to %zu", before,
          hashagg_bytes(h));
    drain_final(h, &rs);
    for (i = 0; i < rs.n && rs.r[i][1].u.i == 2; i++)
        ;
    CHECK(rs.n == 200 && i == rs.n,
          "200 keys queued twice: %zu groups, group %zu counted %" PRId64, rs.n,
          i, i < rs.n ? rs.r[i][1].u.i : (int64_t)0);
    rows_free(&rs);
    hashagg_free(h);
}

/*
 * Keys that differ but have the same table hash. The group lookup compares
 * two keys' values (bytes_equal for strings) only when its slot holds the
 * same 64-bit hash, so different keys reach the compare only through a
 * collision, which these pairs make on purpose from agg_table.c's
 * definitions of its hashes (constants copied below). If those change,
 * the pairs are merely different keys: a correct table still passes, but
 * the test no longer reaches the compare (the byte order of the host
 * matters too: the hashes load bytes little-endian).
 */
#define WY_K0          0xa0761d6478bd642fULL
#define WY_K1          0xe7037ed1a0b428dbULL
#define AGG_SEED_TABLE 0x2f5a1c9e7b3d4e61ULL
#define AGG_GOLDEN     0x9e3779b97f4a7c15ULL
#define AGG_BYTES_MUL  0x9fb21c651e98df25ULL
#define AGG_KEYS_SEED  0x510e527fade682d1ULL

/* Pairs 2i, 2i + 1 of colliding keys; a key is a string and an int. */
#define N_COLL  18
#define N_COLL2 16

typedef struct coll_key {
    char    s[32];
    size_t  len;
    int64_t i; /* the int key of two-key tables */
} coll_key;

/* wyhash's mixing step, as str_hash has it. */
static uint64_t
wy_mum(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Stores the low 32 bits of 'v' little-endian. */
static void
put32(char *p, uint64_t v)
{
    uint32_t x = (uint32_t)v;

    memcpy(p, &x, 4);
}

/*
 * Colliding 16- and 32-byte keys of str_hash, the hash of a single string
 * key. Its last step is wy_mum(x, y) with x and y two 8-byte loads of the
 * key XORed with constants, and x * y = x' * y' gives the same hash. With
 * x = d u, x' = d v, y = c v, y' = c u (u = 2^32 - 2, v = u + 1) the
 * choice of d and c decides which bytes the two keys share: three pairs
 * of 16 bytes equal in their first 8 bytes, three of 16 bytes equal in
 * their last 8, three of 32 bytes equal but for bytes 16-19 and 28-31.
 */
static void
make_str_collisions(coll_key *keys)
{
    static const uint64_t ds[] = {0x12345678, 0x6b8b4567, 0x327b23c6};
    const uint64_t        u = 0xfffffffeULL, v = 0xffffffffULL;
    const uint64_t s0 = AGG_SEED_TABLE ^ wy_mum(AGG_SEED_TABLE ^ WY_K0, WY_K1);
    size_t         i, j, e, k = 0;

    for (i = 0; i < 3; i++) {
        uint64_t d = ds[i];
        uint64_t xy[3][2][2] = {
            {{d * u, v << 32}, {d * v, u << 32}},
            {{u << 32, d * v}, {v << 32, d * u}},
            {{d * u, v << 32}, {d * v, u << 32}},
        };

        for (j = 0; j < 3; j++) {
            for (e = 0; e < 2; e++, k++) {
                uint64_t a = xy[j][e][0] ^ WY_K1, b, seed = s0, f0, f1;
                char    *p = keys[k].s;

                keys[k].i = 0;
                if (j < 2) {
                    /* 16 bytes: a = bytes 0-3 : 8-11, b = 12-15 : 4-7 */
                    b = xy[j][e][1] ^ seed;
                    put32(p, a >> 32);
                    put32(p + 8, a);
                    put32(p + 12, b >> 32);
                    put32(p + 4, b);
                    keys[k].len = 16;
                } else {
                    /* 32 bytes: the first 16 fold into the seed, then
                     * a = bytes 16-23, b = bytes 24-31 */
                    memcpy(p, "sixteen bytes!!!", 16);
                    memcpy(&f0, p, 8);
                    memcpy(&f1, p + 8, 8);
                    seed = wy_mum(f0 ^ WY_K1, f1 ^ seed);
                    b = xy[j][e][1] ^ seed;
                    memcpy(p + 16, &a, 8);
                    memcpy(p + 24, &b, 8);
                    keys[k].len = 32;
                }
            }
        }
    }
}

/* The inverse of odd 'c' modulo 2^64 (Newton's iteration). */
static uint64_t
inverse64(uint64_t c)
{
    uint64_t x = c;

    for (int i = 0; i < 6; i++)
        x *= 2 - c * x;
    return x;
}

/* The inverse of util_mix64 (MurmurHash3's finaliser, as agg_table.c
 * uses it). */
static uint64_t
coll_unmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= inverse64(0xc4ceb9fe1a85ec53ULL);
    x ^= x >> 33;
    x *= inverse64(0xff51afd7ed558ccdULL);
    x ^= x >> 33;
    return x;
}

/*
 * The state of agg_table.c's agg_value_hash of an n-byte string under
 * 'seed' after its first 'blocks' 8-byte blocks (hash_bytes: the type,
 * then the length, then each block mixed in).
 */
static uint64_t
coll_blocks_state(const char *p, size_t n, size_t blocks, uint64_t seed)
{
    uint64_t h = util_mix64(seed ^ ((uint64_t)SH_STRING * AGG_GOLDEN));
    uint64_t w;

    h ^= (uint64_t)n * AGG_GOLDEN;
    for (size_t j = 0; j < blocks; j++) {
        memcpy(&w, p + 8 * j, 8);
        h = (h ^ util_mix64(w)) * AGG_BYTES_MUL;
    }
    return h;
}

/*
 * Colliding (string, int) keys of keys_hash, the hash of other keys, equal
 * but for their strings. A string's hash folds in one 8-byte block after
 * another, h = (h ^ mix64(w)) * m, and mix64 is a bijection: for a string
 * whose block j differs, block j + 1 can be solved to bring h back to
 * the first string's, and the rest is the same. The strings are of 16 to
 * 33 bytes, differ in two neighbouring blocks (so some share their first
 * 8 or 16 bytes), and the ints of a pair are equal.
 */
static void
make_keys_collisions(coll_key *keys)
{
    static const size_t nj[][2] = {{16, 0}, {17, 0}, {20, 0}, {24, 0},
                                   {24, 1}, {32, 1}, {32, 2}, {33, 2}};
    static const char   text[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    const uint64_t      h0 = util_mix64(AGG_SEED_TABLE ^ AGG_KEYS_SEED);
    size_t              k = 0;

    for (size_t i = 0; i < sizeof nj / sizeof nj[0]; i++) {
        size_t    n = nj[i][0], j = nj[i][1];
        coll_key *a = &keys[k++], *b = &keys[k++];
        uint64_t  ha, hb, wa, wb;

        memcpy(a->s, text, n);
        memcpy(b->s, text, n);
        a->len = b->len = n;
        a->i = b->i = (int64_t)i;
        b->s[8 * j + 3] ^= 0x01;
        ha = coll_blocks_state(a->s, n, j + 1, h0);
        hb = coll_blocks_state(b->s, n, j + 1, h0);
        memcpy(&wa, a->s + 8 * (j + 1), 8);
        wb = coll_unmix64(ha ^ hb ^ util_mix64(wa));
        memcpy(b->s + 8 * (j + 1), &wb, 8);
    }
    assert(k == N_COLL2);
}

/*
 * Feeds the 'n' keys (key k k % 5 + 1 times, interleaved) into a count
 * table keyed by their string, or by their string and int, by hashagg_add
 * or by hashagg_queue; checks that each key is its own group with its own
 * count. (The two paths share the lookup, so each is checked against the
 * counts, not against the other.)
 */
static void
check_collisions(const coll_key *keys, size_t n, size_t n_keys, int queue,
                 const char *what, int line)
{
    static const size_t cols[] = {0, 1};
    agg_def             cnt = {AGG_COUNT, -1, SH_NULL, -1, SH_NULL, 0};
    hashagg            *h = hashagg_new(cols, n_keys, &cnt, 1);
    rows                rs = {0};
    sh_err              err;
    int    seen[N_COLL > N_COLL2 ? N_COLL : N_COLL2] = {0}, bad = 0;
    size_t round, k, i;

    assert(n <= sizeof seen / sizeof seen[0]);

    for (k = 0; k + 1 < n; k += 2)
        CHECK_AT(keys[k].len == keys[k + 1].len
                     && (memcmp(keys[k].s, keys[k + 1].s, keys[k].len) != 0
                         || keys[k].i != keys[k + 1].i),
                 line, "%s: colliding pair %zu: the keys should differ", what,
                 k / 2);
    for (round = 0; round < 5; round++) {
        for (k = 0; k < n; k++) {
            sh_value row[2];

            if (round > k % 5)
                continue;
            memcpy(g_qscratch[0], keys[k].s, keys[k].len);
            row[0] = sh_str(g_qscratch[0], keys[k].len);
            row[1] = sh_int(keys[k].i);
            if (!queue)
                CHECK_AT(hashagg_add(h, row, &err) == 0, line, "%s: add", what);
            else if (hashagg_queue(h, row) == HASHAGG_BATCH)
                CHECK_AT(hashagg_flush(h, &err) == 0, line, "%s: flush", what);
            clobber_queue_row();
        }
    }
    drain_final(h, &rs);
    CHECK_AT(rs.n == n, line, "%s: %zu colliding keys made %zu groups", what, n,
             rs.n);
    for (i = 0; i < rs.n && bad < 3; i++) {
        const sh_value *r = rs.r[i];

        for (k = 0; k < n; k++) {
            if (r[0].u.s.len == keys[k].len
                && memcmp(r[0].u.s.ptr, keys[k].s, keys[k].len) == 0
                && (n_keys < 2 || r[1].u.i == keys[k].i))
                break;
        }
        if (k == n) {
            CHECK_AT(0, line,
                     "%s: group %zu (a %zu-byte string) is none of the keys",
                     what, i, r[0].u.s.len);
            bad++;
        } else if (seen[k]++ || r[n_keys].u.i != (int64_t)(k % 5 + 1)) {
            CHECK_AT(0, line,
                     "%s: key %zu (of colliding pair %zu, %zu bytes) is in "
                     "group %zu%s, counted %" PRId64 ", expected %zu",
                     what, k, k / 2, keys[k].len, i,
                     seen[k] > 1 ? " and in another" : "", r[n_keys].u.i,
                     k % 5 + 1);
            bad++;
        }
    }
    rows_free(&rs);
    hashagg_free(h);
}

/*
 * Keys whose table hashes collide stay apart, by hashagg_add and by
 * hashagg_queue: strings of 16 and 32 bytes as the only key (the string
 * compare of the lookup's fast path), and (string, int) keys equal but
 * for strings of 16 to 33 bytes (the compare of values_equal).
 *
 * No pair differs only in bytes that a broken short compare (under 16
 * bytes) would skip: no such pair collides in these hashes, so those
 * branches of bytes_equal cannot change a result through the table.
 */
static void
test_hash_collisions(void)
{
    coll_key one[N_COLL], two[N_COLL2];
    char     what[96];

    make_str_collisions(one);
    make_keys_collisions(two);
    for (int q = 0; q < 2; q++) {
        const char *path = q ? "hashagg_queue" : "hashagg_add";

        snprintf(what, sizeof what, "%s, string keys", path);
        check_collisions(one, N_COLL, 1, q, what, __LINE__);
        snprintf(what, sizeof what, "%s, (string, int) keys", path);
        check_collisions(two, N_COLL2, 2, q, what, __LINE__);
    }
}

/* Registers the agg suite. */
void
test_agg_register(void)
{
    CU_pSuite s = CU_add_suite("agg", NULL, NULL);

    CU_add_test(s, "names and result types", test_names);
    CU_add_test(s, "hand-computed values", test_basic);
    CU_add_test(s, "hand-computed values through partials", test_basic_partial);
    CU_add_test(s, "key identity", test_keys);
    CU_add_test(s, "int sum overflow", test_overflow);
    CU_add_test(s, "partials in several splits equal one pass", test_splits);
    CU_add_test(s, "var/std stability with a large offset", test_stability);
    CU_add_test(s, "HyperLogLog error and merge", test_hll);
    CU_add_test(s, "count_distinct values and merge", test_count_distinct);
    CU_add_test(s, "finalize_files with a tiny budget", test_finalize_files);
    CU_add_test(s, "finalize_files ticks and cancel", test_finalize_tick);
    CU_add_test(s, "queued counts equal added rows", test_queue_equals_add);
    CU_add_test(s, "can_queue only for counts", test_can_queue);
    CU_add_test(s, "count_strs equals added rows", test_count_strs_equals_add);
    CU_add_test(s, "drains include queued rows", test_queue_drain);
    CU_add_test(s, "queued_bytes bounds a flush", test_queued_bytes);
    CU_add_test(s, "keys with colliding hashes stay apart",
                test_hash_collisions);
}
