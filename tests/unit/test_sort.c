/*
 * test_sort.c - unit tests of executor/sort: the order of sort_compare (a
 * table: nulls last in both directions, ints with floats, NaN, strings by
 * bytes, bools, several keys), the sorter and merger against a reference
 * (qsort of all rows by sort_compare, ties by input order: the sort is
 * stable) on random data with tiny budgets (many runs, merged in several
 * passes), prefix edge cases, rows larger than the budget, the top-n with
 * and without overflowing the budget, the merger over many files, empty
 * input, the memory accounting and I/O errors.
 *
 * Every check says what it compared and what it got.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../executor/rowfile.h"
#include "../../executor/sort.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static char g_dir[64];

/*
 * The runs go to /dev/shm when it can be written (a tmpfs: the many small
 * runs of tiny budgets are not each fsynced to a disk), else to /tmp.
 */
static int
suite_init(void)
{
    return th_temp_dir(g_dir, sizeof g_dir, th_tmp_base(), "sheaf-test-sort");
}

static int
suite_cleanup(void)
{
    return th_rm_tree(g_dir);
}

static const char *
show(const sh_value *v, char buf[96])
{
    switch (v->type) {
    case SH_NULL:
        snprintf(buf, 96, "null");
        break;
    case SH_INT:
        snprintf(buf, 96, "%" PRId64, v->u.i);
        break;
    case SH_FLOAT:
        snprintf(buf, 96, "%.17gf", v->u.f);
        break;
    case SH_BOOL:
        snprintf(buf, 96, "%s", v->u.b ? "true" : "false");
        break;
    case SH_STRING:
        snprintf(buf, 96, "'%.*s'(%zu)",
                 (int)(v->u.s.len < 24 ? v->u.s.len : 24), v->u.s.ptr,
                 v->u.s.len);
        break;
    default:
        snprintf(buf, 96, "?");
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* sort_compare                                                        */
/* ------------------------------------------------------------------ */

static int
sign(int c)
{
    return (c > 0) - (c < 0);
}

/* One-key comparison case: a vs b with 'desc' gives 'want' (-1, 0, 1); the
 * swapped comparison must give the opposite. */
static void
cmp_case(sh_value a, sh_value b, int desc, int want, int line)
{
    sort_key k = {0, desc};
    char     ab[96], bb[96];
    int      got = sign(sort_compare(&a, &b, &k, 1));
    int      rev = sign(sort_compare(&b, &a, &k, 1));

    CHECK_AT(got == want && rev == -want, line,
             "sort_compare(%s, %s, %s) = %d and swapped %d, expected %d and %d",
             show(&a, ab), show(&b, bb), desc ? "desc" : "asc", got, rev, want,
             -want);
}
#define CMP(a, b, desc, want) cmp_case(a, b, desc, want, __LINE__)

static void
test_compare_table(void)
{
    double nan_v = nan("");

    /* Nulls last whatever the direction. */
    CMP(sh_null(), sh_null(), 0, 0);
    CMP(sh_null(), sh_null(), 1, 0);
    CMP(sh_int(5), sh_null(), 0, -1);
    CMP(sh_int(5), sh_null(), 1, -1);
    CMP(sh_str("", 0), sh_null(), 0, -1);
    CMP(sh_str("", 0), sh_null(), 1, -1);
    CMP(sh_float(nan_v), sh_null(), 1, -1);
    CMP(sh_bool(0), sh_null(), 1, -1);
    /* Ints, floats and both, exactly. */
    CMP(sh_int(1), sh_int(2), 0, -1);
    CMP(sh_int(1), sh_int(2), 1, 1);
    CMP(sh_int(INT64_MIN), sh_int(INT64_MAX), 0, -1);
    CMP(sh_int(1), sh_float(1.0), 0, 0);
    CMP(sh_int(2), sh_float(2.5), 0, -1);
    CMP(sh_int(3), sh_float(2.5), 1, -1);
    CMP(sh_int(-1), sh_float(-0.5), 0, -1);
    CMP(sh_int(9007199254740993LL), sh_float(9007199254740992.0), 0, 1);
    CMP(sh_int(INT64_MAX), sh_float(9223372036854775808.0), 0, -1);
    CMP(sh_float(-0.0), sh_float(0.0), 0, 0);
    CMP(sh_float(-INFINITY), sh_float(-1e308), 0, -1);
    CMP(sh_float(INFINITY), sh_float(nan_v), 0, -1);
    CMP(sh_float(nan_v), sh_float(nan_v), 0, 0);
    CMP(sh_float(nan_v), sh_float(nan_v), 1, 0);
    /* Strings by unsigned bytes; a prefix first; NUL is a byte. */
    CMP(sh_str("a", 1), sh_str("b", 1), 0, -1);
    CMP(sh_str("a", 1), sh_str("b", 1), 1, 1);
    CMP(sh_str("ab", 2), sh_str("abc", 3), 0, -1);
    CMP(sh_str("", 0), sh_str("\0", 1), 0, -1);
    CMP(sh_str("a\0b", 3), sh_str("a\0c", 3), 0, -1);
    CMP(sh_str("\xff", 1), sh_str("a", 1), 0, 1);
    CMP(sh_str("B", 1), sh_str("a", 1), 0, -1);
    CMP(sh_str("same", 4), sh_str("same", 4), 1, 0);
    /* Bools. */
    CMP(sh_bool(0), sh_bool(1), 0, -1);
    CMP(sh_bool(0), sh_bool(1), 1, 1);
}

static void
test_compare_multi(void)
{
    sort_key k[2] = {{0, 0}, {1, 1}}; /* col 0 asc, col 1 desc */
    sh_value a[2] = {sh_str("x", 1), sh_int(1)};
    sh_value b[2] = {sh_str("x", 1), sh_int(2)};
    sh_value c[2] = {sh_str("y", 1), sh_int(9)};
    sh_value d[2] = {sh_str("x", 1), sh_null()};
    sh_value e[2] = {sh_null(), sh_int(100)};

    CHECK(sort_compare(b, a, k, 2) < 0, "(x,2) before (x,1) with key 1 desc");
    CHECK(sort_compare(a, c, k, 2) < 0, "(x,1) before (y,9): key 0 decides");
    CHECK(sort_compare(a, d, k, 2) < 0, "(x,1) before (x,null): nulls last");
    CHECK(sort_compare(c, e, k, 2) < 0, "(y,9) before (null,100)");
    CHECK(sort_compare(a, a, k, 2) == 0, "a row equals itself");
    CHECK(sort_compare(a, c, k, 0) == 0, "no keys: all rows equal");
    CHECK(sort_compare(a, b, k, 1) == 0, "key 0 only: (x,1) == (x,2)");
}

/* ------------------------------------------------------------------ */
/* Reference sort and data                                             */
/* ------------------------------------------------------------------ */

static const sort_key *g_ref_keys;
static size_t          g_ref_n_keys;
static size_t          g_ref_cols;
static const sh_value *g_ref_rows;

/* Order of row indices: by keys, then by index (stable). */
static int
ref_cmp(const void *pa, const void *pb)
{
    size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
    int    c = sort_compare(g_ref_rows + ia * g_ref_cols,
                            g_ref_rows + ib * g_ref_cols, g_ref_keys,
                            g_ref_n_keys);

    if (c != 0)
        return c;
    return (ia > ib) - (ia < ib);
}

/* The stable order of 'n' rows; the caller frees the index array. */
static size_t *
reference_order(const sh_value *rows, size_t n, size_t cols,
                const sort_key *keys, size_t n_keys)
{
    size_t *idx = xmalloc((n ? n : 1) * sizeof *idx);

    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    g_ref_keys = keys;
    g_ref_n_keys = n_keys;
    g_ref_cols = cols;
    g_ref_rows = rows;
    qsort(idx, n, sizeof *idx, ref_cmp);
    return idx;
}

static int
same_value(const sh_value *a, const sh_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case SH_NULL:
        return 1;
    case SH_INT:
        return a->u.i == b->u.i;
    case SH_FLOAT:
        return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case SH_BOOL:
        return a->u.b == b->u.b;
    case SH_STRING:
        return a->u.s.len == b->u.s.len
               && (a->u.s.len == 0
                   || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    default:
        return 0;
    }
}

static uint64_t g_rng;

static uint64_t
rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/*
 * 'n' random rows of 5 columns in 'a' (strings borrowed from it):
 * 0 id (the row index, unique), 1 a string from a small set (duplicates,
 * long strings sharing a 7-byte prefix, binary bytes, empty, null),
 * 2 a number (int or float, few distinct values, nulls, -0 and 0),
 * 3 a bool or null, 4 a string payload of varying size.
 */
static sh_value *
random_rows(size_t n, arena *a, uint64_t seed)
{
    static const char  *cats[] = {"",           "a",        "ab",
                                  "abcdefg",    "abcdefgh", "abcdefgZZZ",
                                  "abcdefgZZA", "b\0c",     "b",
                                  "\xff\xfe",   "zebra"};
    static const size_t cat_len[] = {0, 1, 2, 7, 8, 10, 10, 3, 1, 2, 5};
    sh_value           *rows = xmalloc(n * 5 * sizeof *rows);

    g_rng = seed;
    for (size_t i = 0; i < n; i++) {
        sh_value *r = rows + i * 5;
        uint64_t  x = rnd();
        size_t    c = x % 12, len;

        r[0] = sh_int((int64_t)i);
        r[1] = c == 11 ? sh_null() : sh_str(cats[c], cat_len[c]);
        switch ((x >> 8) % 6) {
        case 0:
            r[2] = sh_null();
            break;
        case 1:
        case 2:
            r[2] = sh_int((int64_t)((x >> 16) % 21) - 10);
            break;
        case 3:
            r[2] = sh_float((double)((int64_t)((x >> 16) % 21) - 10) / 2);
            break;
        case 4:
            r[2] = sh_float((x >> 16) & 1 ? -0.0 : 0.0);
            break;
        default:
            r[2] = sh_float((double)(x >> 16) / 1e6);
            break;
        }
        r[3] = (x >> 30) % 3 == 0 ? sh_null() : sh_bool((int)(x >> 32) & 1);
        len = (x >> 40) % 50;
        char *p = arena_alloc(a, len + 1);
        for (size_t j = 0; j < len; j++)
            p[j] = (char)('a' + (x >> (j % 40)) % 26);
        r[4] = sh_str(p, len);
    }
    return rows;
}

/* Compare the rows yielded by 'm' with rows[order[0..n)]; returns the
 * number read. */
static size_t
check_merged(merger *m, const sh_value *rows, size_t cols, const size_t *order,
             size_t n, int line)
{
    const sh_value *row;
    sh_err          err = {0};
    size_t          got = 0;
    int             rc;

    while ((rc = merger_next(m, &row, &err)) == 1) {
        if (got < n) {
            const sh_value *want = rows + order[got] * cols;

            for (size_t c = 0; c < cols; c++) {
                if (!same_value(&want[c], &row[c])) {
                    char wb[96], gb[96];

                    CHECK_AT(0, line,
                             "output row %zu, column %zu: expected %s (input "
                             "row %zu), got %s",
                             got, c, show(&want[c], wb), order[got],
                             show(&row[c], gb));
                    return got;
                }
            }
        }
        got++;
    }
    CHECK_AT(rc == 0, line, "merger_next failed after %zu rows: %s", got,
             err.msg);
    CHECK_AT(got == n, line, "merged %zu rows, expected %zu", got, n);
    return got;
}

/* The run paths "<prefix>.r0" ... of 'n' runs; free with free_paths. */
static char **
run_paths(const char *prefix, int n)
{
    char **p = xmalloc((n > 0 ? (size_t)n : 1) * sizeof *p);

    for (int i = 0; i < n; i++)
        p[i] = xasprintf("%s.r%d", prefix, i);
    return p;
}

static void
free_paths(char **p, int n)
{
    for (int i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

/*
 * Sort 'n' rows with a sorter ('mem_bytes', 'limit'), merge its runs and
 * compare with the reference order (its first 'limit' rows with a limit).
 * Returns the number of runs, or -1.
 */
static int
sort_and_check(const sh_value *rows, size_t n, size_t cols,
               const sort_key *keys, size_t n_keys, size_t mem_bytes,
               uint64_t limit, int line)
{
    char   *prefix = xasprintf("%s/s", g_dir);
    sorter *s = sorter_new(cols, keys, n_keys, mem_bytes, prefix, limit);
    size_t *order = reference_order(rows, n, cols, keys, n_keys);
    size_t  want = limit > 0 && limit < n ? (size_t)limit : n;
    sh_err  err = {0};
    merger *m = NULL;
    char  **paths = NULL;
    int     runs = -1;

    for (size_t i = 0; i < n; i++) {
        if (sorter_push(s, rows + i * cols, &err) != 0) {
            CHECK_AT(0, line, "sorter_push row %zu: %s", i, err.msg);
            goto done;
        }
    }
    runs = sorter_finish(s, &err);
    CHECK_AT(runs >= 0, line, "sorter_finish: %d (%s)", runs, err.msg);
    if (runs < 0)
        goto done;
    CHECK_AT(th_count_files(g_dir) == runs, line,
             "%d files in the run directory, expected the %d runs only",
             th_count_files(g_dir), runs);
    if (limit > 0 && n > 0)
        CHECK_AT(runs == 1, line, "top-n wrote %d runs, expected 1", runs);
    if (n == 0)
        CHECK_AT(runs == 0, line, "no rows but %d runs", runs);
    /* (Budgets under 16 KiB are for rows larger than the budget.) */
    if (mem_bytes >= 16384 && limit == 0)
        CHECK_AT(sorter_peak_bytes(s) <= mem_bytes, line,
                 "peak %zu bytes over the budget of %zu", sorter_peak_bytes(s),
                 mem_bytes);
    paths = run_paths(prefix, runs);
    m = merger_new((const char *const *)paths, (size_t)runs, keys, n_keys,
                   &err);
    CHECK_AT(m != NULL, line, "merger_new: %s", err.msg);
    if (m != NULL)
        check_merged(m, rows, cols, order, want, line);

done:
    merger_free(m);
    free_paths(paths, runs);
    sorter_free(s);
    free(order);
    free(prefix);
    th_clear_dir(g_dir);
    return runs;
}

/* ------------------------------------------------------------------ */
/* Sorter and merger                                                   */
/* ------------------------------------------------------------------ */

static void
test_sort_random(void)
{
    arena    *a = arena_new(0);
    size_t    n = 20000;
    sh_value *rows = random_rows(n, a, 12345);
    sort_key  k_cat_num[2] = {{1, 0}, {2, 1}}; /* string asc, number desc */
    sort_key  k_num_cat[2] = {{2, 0}, {1, 1}}; /* number asc, string desc */
    sort_key  k_bool_pay[3] = {{3, 1}, {4, 0}, {1, 0}};
    int       runs;

    /* Tiny budgets: a hundred runs and more, merged down in several
     * passes (two at a time), on the first 6000 rows. */
    runs = sort_and_check(rows, 6000, 5, k_cat_num, 2, 16 * 1024, 0, __LINE__);
    CHECK(runs >= 1 && runs <= 2, "16 KiB budget: %d runs after finish", runs);
    sort_and_check(rows, 6000, 5, k_num_cat, 2, 16 * 1024, 0, __LINE__);
    sort_and_check(rows, n, 5, k_bool_pay, 3, 256 * 1024, 0, __LINE__);
    /* A budget that holds it all: one run. */
    runs = sort_and_check(rows, n, 5, k_num_cat, 2, 64u << 20, 0, __LINE__);
    CHECK_INT(1, runs);
    /* One key; no keys at all keeps the input order. */
    sort_and_check(rows, n, 5, k_num_cat, 1, 32 * 1024, 0, __LINE__);
    sort_and_check(rows, n, 5, NULL, 0, 32 * 1024, 0, __LINE__);
    free(rows);
    arena_free(a);
}

static void
test_sort_prefix_edges(void)
{
    /* Values whose 64-bit prefixes collide or are not exact. */
    static const char long1[] = "abcdefgh-1", long2[] = "abcdefgh-0";
    double            nan_v = nan("");

    sh_value v[][2] = {
        {sh_int(INT64_MAX), sh_str(long1, 10)},
        {sh_null(), sh_str(long2, 10)},
        {sh_int(INT64_MIN), sh_str("ab", 2)},
        {sh_int(INT64_MAX), sh_str("ab\0", 3)},
        {sh_int(-1), sh_str("", 0)},
        {sh_null(), sh_null()},
        {sh_int(INT64_MIN), sh_str("abcdefg", 7)},
        {sh_int(0), sh_str("abcdefgh", 8)},
        {sh_int(INT64_MAX), sh_str("\xff\xff\xff\xff\xff\xff\xff\xff", 8)},
        {sh_int(0), sh_str("\xff\xff\xff\xff\xff\xff\xff", 7)},
    };

    sh_value f[][2] = {
        {sh_float(-0.0), sh_int(0)},      {sh_float(0.0), sh_int(1)},
        {sh_float(nan_v), sh_int(2)},     {sh_float(-nan_v), sh_int(3)},
        {sh_float(INFINITY), sh_int(4)},  {sh_null(), sh_int(5)},
        {sh_float(-INFINITY), sh_int(6)}, {sh_float(-0.0), sh_int(7)},
        {sh_float(1e-310), sh_int(8)},    {sh_float(-1e-310), sh_int(9)},
    };
    /* Ints and floats in one column; values of several kinds in one. */
    sh_value mix[][2] = {
        {sh_int(9007199254740993LL), sh_int(0)},
        {sh_float(9007199254740992.0), sh_int(1)},
        {sh_int(9007199254740992LL), sh_int(2)},
        {sh_float(2.5), sh_int(3)},
        {sh_int(2), sh_int(4)},
        {sh_str("x", 1), sh_int(5)},
        {sh_null(), sh_int(6)},
        {sh_bool(1), sh_int(7)},
        {sh_int(3), sh_int(8)},
        {sh_float(2.0), sh_int(9)},
    };
    /* Strings of up to 8 bytes: the 8th byte is beyond the prefix. */
    sh_value s8[][2] = {
        {sh_str("abcdefgh", 8), sh_int(1)}, {sh_str("abcdefga", 8), sh_int(2)},
        {sh_str("abcdefg", 7), sh_int(3)},  {sh_str("abcdefgz", 8), sh_int(4)},
        {sh_str("abcdefga", 8), sh_int(5)}, {sh_str("abcdefh", 7), sh_int(0)},
    };

    sort_key k[4][2] = {
        {{0, 0}, {1, 0}}, {{0, 1}, {1, 1}}, {{1, 0}, {0, 0}}, {{1, 1}, {0, 1}}};

    for (int i = 0; i < 4; i++) {
        sort_and_check(&v[0][0], 10, 2, k[i], 2, 1u << 20, 0, __LINE__);
        sort_and_check(&v[0][0], 10, 2, k[i], 1, 1u << 20, 0, __LINE__);
    }
    for (int d = 0; d < 2; d++) {
        sort_key kf = {0, d}, k8[2] = {{0, d}, {1, !d}};

        sort_and_check(&s8[0][0], 6, 2, k8, 2, 1u << 20, 0, __LINE__);

        sort_and_check(&f[0][0], 10, 2, &kf, 1, 1u << 20, 0, __LINE__);
        sort_and_check(&mix[0][0], 10, 2, &kf, 1, 1u << 20, 0, __LINE__);
        sort_and_check(&mix[0][0], 10, 2, &kf, 1, 1u << 20, 3, __LINE__);
    }
}

static void
test_sort_prefix_edges_many(void)
{
    /* The edge values again, many rows of them, so runs are large enough
     * for the radix sort: ties, collisions and inexact prefixes in bulk. */
    static const char long1[] = "abcdefgh-1", long2[] = "abcdefgh-0";
    double            nan_v = nan("");

    sh_value pool[] = {
        sh_int(INT64_MAX),
        sh_int(INT64_MIN),
        sh_int(-1),
        sh_int(0),
        sh_int(9007199254740993LL),
        sh_float(9007199254740992.0),
        sh_float(-0.0),
        sh_float(0.0),
        sh_float(nan_v),
        sh_float(-INFINITY),
        sh_float(INFINITY),
        sh_float(2.5),
        sh_null(),
        sh_null(),
        sh_str(long1, 10),
        sh_str(long2, 10),
        sh_str("ab", 2),
        sh_str("ab\0", 3),
        sh_str("", 0),
        sh_str("abcdefgh", 8),
        sh_str("abcdefga", 8),
        sh_str("\xff\xff\xff\xff\xff\xff\xff", 7),
        sh_bool(0),
        sh_bool(1),
    };
    size_t    n = 3000;
    sh_value *rows = xmalloc(n * 3 * sizeof *rows);
    sort_key  k[2] = {{0, 0}, {1, 1}};
    size_t    ranges[][2] = {{0, 4},   {6, 12},  {0, 14},
                             {12, 22}, {14, 22}, {0, 24}};

    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        size_t lo = ranges[r][0], span = ranges[r][1] - lo;

        g_rng = 4242 + r;
        for (size_t i = 0; i < n; i++) {
            rows[3 * i] = pool[lo + rnd() % span];
            rows[3 * i + 1] = pool[lo + rnd() % span];
            rows[3 * i + 2] = sh_int((int64_t)i);
        }
        for (int d = 0; d < 4; d++) {
            k[0].desc = d & 1;
            k[1].desc = d >> 1;
            sort_and_check(rows, n, 3, k, 2, 1u << 20, 0, __LINE__);
            sort_and_check(rows, n, 3, k, 1, 1u << 20, 0, __LINE__);
            sort_and_check(rows, n, 3, k, 2, 1u << 20, 50, __LINE__);
            /* Many runs: the merger compares values of every kind. */
            if (ranges[r][0] == 0 && ranges[r][1] >= 14)
                sort_and_check(rows, n, 3, k, 2, 32 * 1024, 0, __LINE__);
        }
    }
    free(rows);
}

static void
test_sort_big_rows(void)
{
    /* Rows larger than the whole budget still sort (a run each). */
    size_t    n = 12, big = 100000;
    char     *text = xmalloc(big);
    sh_value *rows = xmalloc(n * 2 * sizeof *rows);
    sort_key  k = {0, 1};
    int       runs;

    for (size_t i = 0; i < big; i++)
        text[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < n; i++) {
        rows[2 * i] = sh_int((int64_t)((i * 7) % 5));
        rows[2 * i + 1] = sh_str(text + i, big - i);
    }
    runs = sort_and_check(rows, n, 2, &k, 1, 8192, 0, __LINE__);
    CHECK(runs >= 1, "big rows: %d runs", runs);
    free(rows);
    free(text);
}

static void
test_top_n(void)
{
    arena    *a = arena_new(0);
    size_t    n = 5000;
    sh_value *rows = random_rows(n, a, 777);
    sort_key  k[2] = {{2, 1}, {1, 0}};
    uint64_t  limits[] = {1, 7, 100, 4999, 5000, 100000};

    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        sort_and_check(rows, n, 5, k, 2, 1u << 20, limits[i], __LINE__);
        /* Only ties on one key with few values: stability decides. */
        sort_and_check(rows, n, 5, k + 1, 1, 1u << 20, limits[i], __LINE__);
    }
    /* A heap too big for the budget: spills, still one run of the best. */
    sort_and_check(rows, n, 5, k, 2, 16 * 1024, 1000, __LINE__);
    sort_and_check(rows, n, 5, k, 2, 4096, 3000, __LINE__);
    free(rows);
    arena_free(a);
}

static void
test_top_n_memory(void)
{
    /* Replacing rows with long strings reuses the slots: bounded memory. */
    size_t   n = 20000, len = 1000;
    char    *text = xmalloc(len + n + 5);
    char    *prefix = xasprintf("%s/t", g_dir);
    sort_key k = {0, 0};
    sorter  *s = sorter_new(2, &k, 1, 1u << 20, prefix, 10);
    sh_err   err = {0};

    for (size_t i = 0; i < len + n + 5; i++)
        text[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < n; i++) {
        /* Descending keys: every row beats the worst kept one. */
        sh_value row[2] = {sh_int((int64_t)(n - i)),
                           sh_str(text + i, len + i % 5)};

        sorter_push(s, row, &err);
    }
    CHECK(sorter_peak_bytes(s) < 20 * 1024,
          "top-10 of 20000 rows of 1 KB held %zu bytes at most",
          sorter_peak_bytes(s));
    CHECK_INT(1, sorter_finish(s, &err));
    sorter_free(s);
    free(prefix);
    free(text);
    th_clear_dir(g_dir);
}

static void
test_empty(void)
{
    char           *prefix = xasprintf("%s/e", g_dir);
    sort_key        k = {0, 0};
    sh_err          err = {0};
    sorter         *s;
    merger         *m;
    const sh_value *row;

    for (int limit = 0; limit <= 5; limit += 5) {
        s = sorter_new(1, &k, 1, 1u << 20, prefix, (uint64_t)limit);
        CHECK_INT(0, sorter_finish(s, &err));
        CHECK(th_count_files(g_dir) == 0, "limit %d: no rows, yet %d files",
              limit, th_count_files(g_dir));
        sorter_free(s);
    }
    m = merger_new(NULL, 0, &k, 1, &err);
    CHECK(m != NULL, "merger of no files: %s", err.msg);
    if (m != NULL)
        CHECK_INT(0, merger_next(m, &row, &err));
    merger_free(m);
    free(prefix);
}

static void
test_merger_many_files(void)
{
    /* 300 sorted files (more than a sorter merges at once); ties across
     * files come out in file order. */
    size_t    n_files = 300, per = 40, cols = 3, n = n_files * per;
    sh_value *rows = xmalloc(n * cols * sizeof *rows);
    sort_key  k[2] = {{1, 1}, {2, 0}}; /* col 1 desc, col 2 asc */
    char    **paths = xmalloc(n_files * sizeof *paths);
    size_t   *order;
    sh_err    err = {0};
    merger   *m;

    g_rng = 99;
    for (size_t i = 0; i < n; i++) {
        sh_value *r = rows + i * cols;
        uint64_t  x = rnd();

        r[0] = sh_int((int64_t)i);
        r[1] = x % 10 == 0 ? sh_null() : sh_int((int64_t)(x >> 8) % 7);
        r[2] = x % 13 == 0 ? sh_null() : sh_str(&"pqrs"[(x >> 20) % 4], 1);
    }
    /* File f holds rows f*per.. sorted (stably): the runs of a sorter. */
    for (size_t f = 0; f < n_files; f++) {
        size_t *o = reference_order(rows + f * per * cols, per, cols, k, 2);
        rowfile_writer *w;

        paths[f] = xasprintf("%s/f%zu", g_dir, f);
        w = rowfile_create(paths[f], cols, &err);
        for (size_t i = 0; w != NULL && i < per; i++)
            rowfile_write(w, rows + (f * per + o[i]) * cols, &err);
        if (w == NULL || rowfile_close(w, &err) != 0)
            CHECK_AT(0, __LINE__, "writing %s: %s", paths[f], err.msg);
        free(o);
    }
    order = reference_order(rows, n, cols, k, 2);
    m = merger_new((const char *const *)paths, n_files, k, 2, &err);
    CHECK(m != NULL, "merger_new: %s", err.msg);
    if (m != NULL)
        check_merged(m, rows, cols, order, n, __LINE__);
    merger_free(m);

    /* A missing file fails merger_new, naming it. */
    unlink(paths[7]);
    m = merger_new((const char *const *)paths, n_files, k, 2, &err);
    CHECK(m == NULL && err.code == SH_EIO && strstr(err.msg, paths[7]),
          "merger_new with a missing file: %p, %s", (void *)m, err.msg);
    merger_free(m);
    for (size_t f = 0; f < n_files; f++)
        free(paths[f]);
    free(paths);
    free(order);
    free(rows);
    th_clear_dir(g_dir);
}

/*
 * The ids (column 0) of the rows of every run of 'n_sorters' sorters,
 * merged in 'n_parts' parts by key range (sort_bounds_load over their
 * samples), the parts one after the other, into ids; returns how many, or
 * -1 on an error. sizes[p]: the rows of part p.
 */
static long
merge_in_parts(char **runs, size_t n_runs, char **samples, size_t n_samples,
               const sort_key *keys, size_t n_keys, size_t n_parts,
               int64_t *ids, size_t cap, size_t *sizes, int line)
{
    size_t got = 0;

    for (size_t part = 0; part < n_parts; part++) {
        sort_bounds    *b = NULL;
        merger         *m;
        const sh_value *row;
        sh_err          err = {0};
        int             rc;

        sizes[part] = 0;
        rc = sort_bounds_load((const char *const *)samples, n_samples, keys,
                              n_keys, part, n_parts, &b, &err);
        CHECK_AT(rc == 0, line, "sort_bounds_load: %s", err.msg);
        if (rc != 0)
            return -1;
        m = merger_new((const char *const *)runs, n_runs, keys, n_keys, &err);
        CHECK_AT(m != NULL, line, "merger_new: %s", err.msg);
        if (m == NULL) {
            sort_bounds_free(b);
            return -1;
        }
        merger_set_bounds(m, b);
        while ((rc = merger_next(m, &row, &err)) == 1) {
            if (got < cap)
                ids[got] = row[0].u.i;
            got++;
            sizes[part]++;
        }
        CHECK_AT(rc == 0, line, "merger_next: %s", err.msg);
        merger_free(m);
        sort_bounds_free(b);
    }
    return (long)got;
}

/*
 * Sorters over consecutive slices of the rows (the partial tasks), each
 * keeping a sample; their runs merged in 1, 2, 3 and 7 parts by key range
 * give, part after part, the stable order of all the rows.
 */
static void
check_parts(const sh_value *rows, size_t n, size_t cols, const sort_key *keys,
            size_t n_keys, size_t n_sorters, size_t mem_bytes, int balanced,
            int line)
{
    static const size_t parts[] = {1, 2, 3, 7};
    size_t             *order = reference_order(rows, n, cols, keys, n_keys);
    char   **runs = NULL, **samples = xcalloc(n_sorters, sizeof *samples);
    size_t   n_runs = 0, sizes[7];
    int64_t *ids = xmalloc((n + 1) * sizeof *ids);
    sh_err   err = {0};

    for (size_t t = 0; t < n_sorters; t++) {
        size_t  lo = n * t / n_sorters, hi = n * (t + 1) / n_sorters;
        char   *prefix = xasprintf("%s/t%zu", g_dir, t);
        sorter *s = sorter_new(cols, keys, n_keys, mem_bytes, prefix, 0);
        int     r;

        samples[t] = xasprintf("%s.s", prefix);
        sorter_keep_sample(s, samples[t]);
        for (size_t i = lo; i < hi; i++)
            if (sorter_push(s, rows + i * cols, &err) != 0)
                CHECK_AT(0, line, "sorter_push: %s", err.msg);
        r = sorter_finish(s, &err);
        CHECK_AT(r >= 0, line, "sorter_finish: %s", err.msg);
        CHECK_AT((r > 0) == (th_exists(samples[t]) != 0), line,
                 "%d runs, sample %s", r,
                 th_exists(samples[t]) ? "written" : "missing");
        for (int i = 0; i < r; i++) {
            runs = xrealloc(runs, (n_runs + 1) * sizeof *runs);
            runs[n_runs++] = xasprintf("%s.r%d", prefix, i);
        }
        sorter_free(s);
        free(prefix);
    }
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        long got = merge_in_parts(runs, n_runs, samples, n_sorters, keys,
                                  n_keys, parts[k], ids, n + 1, sizes, line);

        CHECK_AT(got == (long)n, line, "%zu parts: %ld rows, expected %zu",
                 parts[k], got, n);
        for (size_t i = 0; got == (long)n && i < n; i++) {
            if (ids[i] != (int64_t)order[i]) {
                CHECK_AT(0, line,
                         "%zu parts: row %zu is id %lld, expected "
                         "%zu",
                         parts[k], i, (long long)ids[i], order[i]);
                break;
            }
        }
        if (balanced && parts[k] == 2 && n > 1000) {
            CHECK_AT(sizes[0] > n * 2 / 5 && sizes[1] > n * 2 / 5, line,
                     "2 parts of %zu and %zu rows", sizes[0], sizes[1]);
        }
    }
    for (size_t i = 0; i < n_runs; i++)
        free(runs[i]);
    free(runs);
    for (size_t t = 0; t < n_sorters; t++)
        free(samples[t]);
    free(samples);
    free(ids);
    free(order);
    th_clear_dir(g_dir);
}

static void
test_merge_in_parts(void)
{
    arena       *a = arena_new(0);
    size_t       n = 30000;
    sh_value    *rows = random_rows(n, a, 777);
    sort_key     k_id_desc[1] = {{0, 1}};
    sort_key     k_cat_num[2] = {{1, 0}, {2, 1}};
    sort_key     k_num[1] = {{2, 0}};
    sort_key     k_bool[1] = {{3, 0}};
    char        *missing[1];
    sort_bounds *b = NULL;
    sh_err       err = {0};

    /* Unique keys: the parts are even too. */
    check_parts(rows, n, 5, k_id_desc, 1, 5, 64u << 20, 1, __LINE__);
    /* Many ties, nulls, several runs a sorter: stable across parts. */
    check_parts(rows, n, 5, k_cat_num, 2, 4, 64 * 1024, 0, __LINE__);
    check_parts(rows, n, 5, k_num, 1, 3, 256 * 1024, 0, __LINE__);
    /* Three distinct keys (false, true, null): most parts empty. */
    check_parts(rows, n, 5, k_bool, 1, 6, 64u << 20, 0, __LINE__);
    /* Few rows, more sorters than rows, and none at all. */
    check_parts(rows, 5, 5, k_cat_num, 2, 8, 64u << 20, 0, __LINE__);
    check_parts(rows, 0, 5, k_cat_num, 2, 2, 64u << 20, 0, __LINE__);
    /* No sample anywhere: part 0 is everything, the others nothing. */
    missing[0] = xasprintf("%s/none.s", g_dir);
    CHECK_INT(0, sort_bounds_load((const char *const *)missing, 1, k_num, 1, 0,
                                  2, &b, &err));
    sort_bounds_free(b);
    free(missing[0]);
    free(rows);
    arena_free(a);
}

static void
test_merger_corrupt_run(void)
{
    /* A run cut short is an error from merger_next, not a short result. */
    char           *prefix = xasprintf("%s/c", g_dir);
    sort_key        k = {0, 0};
    sorter         *s = sorter_new(1, &k, 1, 4096, prefix, 0);
    sh_err          err = {0};
    char          **paths;
    merger         *m;
    const sh_value *row;
    int             runs, rc;

    for (int i = 0; i < 3000; i++) {
        sh_value v = sh_int((i * 7919) % 3001);

        sorter_push(s, &v, &err);
    }
    runs = sorter_finish(s, &err);
    CHECK(runs >= 1, "runs: %d (%s)", runs, err.msg);
    paths = run_paths(prefix, runs);
    if (runs >= 1 && truncate(paths[0], 100) != 0)
        CHECK_AT(0, __LINE__, "truncate %s failed", paths[0]);
    m = merger_new((const char *const *)paths, (size_t)runs, &k, 1, &err);
    CHECK(m != NULL, "merger_new: %s", err.msg);
    while (m != NULL && (rc = merger_next(m, &row, &err)) == 1)
        ;
    if (m != NULL)
        CHECK(rc == SH_EDATA && strstr(err.msg, paths[0]) != NULL,
              "merging a truncated run: rc %d, %s", rc, err.msg);
    merger_free(m);
    free_paths(paths, runs);
    sorter_free(s);
    free(prefix);
    th_clear_dir(g_dir);
}

static void
test_sorter_io_error(void)
{
    sort_key k = {0, 0};
    sorter  *s = sorter_new(1, &k, 1, 4096, "/nonexistent-dir/run", 0);
    sh_err   err = {0};
    int      rc = 0, i;

    for (i = 0; i < 100000 && rc == 0; i++) {
        sh_value v = sh_int(i);

        rc = sorter_push(s, &v, &err);
    }
    CHECK(rc == SH_EIO && strstr(err.msg, "/nonexistent-dir/run.r0"),
          "push with an unwritable run directory: rc %d after %d rows, %s", rc,
          i, err.msg);
    CHECK_INT(SH_EIO, sorter_finish(s, &err));
    sorter_free(s);
}

void
test_sort_register(void)
{
    CU_pSuite s = CU_add_suite("sort", suite_init, suite_cleanup);

    CU_add_test(s, "sort_compare table", test_compare_table);
    CU_add_test(s, "sort_compare several keys", test_compare_multi);
    CU_add_test(s, "external sort equals a stable qsort", test_sort_random);
    CU_add_test(s, "prefix edge cases", test_sort_prefix_edges);
    CU_add_test(s, "prefix edge cases, many rows", test_sort_prefix_edges_many);
    CU_add_test(s, "rows larger than the budget", test_sort_big_rows);
    CU_add_test(s, "top-n equals the head of the sort", test_top_n);
    CU_add_test(s, "top-n memory stays bounded", test_top_n_memory);
    CU_add_test(s, "empty input writes no run", test_empty);
    CU_add_test(s, "merger of many files, stable", test_merger_many_files);
    CU_add_test(s, "merger reports a truncated run", test_merger_corrupt_run);
    CU_add_test(s, "merge in parts by key range equals the merge",
                test_merge_in_parts);
    CU_add_test(s, "sorter reports I/O errors", test_sorter_io_error);
}
