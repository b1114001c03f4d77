/*
 * test_parquet.c - unit tests of the Parquet reader and writer
 * (executor/parquet*.c, thrift.c):
 *
 *  - files DuckDB wrote (tests/unit/data/parquet/, made by gen.js): every
 *    codec, data pages v1 and v2, every type sheaf maps, nulls in every
 *    column, PLAIN, dictionaries, DELTA_BINARY_PACKED,
 *    DELTA_LENGTH_BYTE_ARRAY, BYTE_STREAM_SPLIT, RLE booleans, compared
 *    value by value with expected.csv.gz (also written by DuckDB);
 *  - row groups: counts, byte ranges, statistics, reading a subset, and
 *    only some columns;
 *  - round trips: sheaf writes (every type, nulls, every codec, several
 *    row groups, dictionary and plain strings) and reads back;
 *  - corrupt input: every truncation of a small file and byte flips fail
 *    cleanly (an error naming the file; never a crash, which ASan checks).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../executor/parquet.h"
/* WRITER */
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static char g_data[PATH_MAX];
static char g_tmp[PATH_MAX];

/* Record a CUnit result with a formatted explanation (printed on failure). */
static void check(int ok, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
check(int ok, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!ok) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n  test_parquet.c:%d: %s\n", line, msg);
    }
    CU_assertImplementation(ok, line, "check", "test_parquet.c", "", 0);
}

#define CHECK(ok, ...) check((ok) != 0, __LINE__, __VA_ARGS__)

/* Find tests/unit/data/parquet from the working directory or beside the
 * test binary (build/unit_tests). */
static void
find_data(void)
{
    char exe[PATH_MAX];
    ssize_t n;
    char *slash;

    snprintf(g_data, sizeof(g_data), "tests/unit/data/parquet");
    if (access("tests/unit/data/parquet/expected.csv.gz", R_OK) == 0)
        return;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = 0;
    slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(g_data, sizeof(g_data), "%.3000s/../tests/unit/data/parquet",
             exe);
}

static int
suite_init(void)
{
    find_data();
    th_fresh_dir(g_tmp, sizeof(g_tmp), th_tmp_base(), "test_parquet");
    return 0;
}

static int
suite_clean(void)
{
    th_rm_tree(g_tmp);
    return 0;
}

/* ---- expected values ---------------------------------------------------- */

typedef struct expected {
    size_t   ncols, nrows;
    char   **names;       /* ncols */
    char   **cells;       /* nrows * ncols, "" for null */
    char    *text;        /* owned */
} expected;

static void
expected_free(expected *e)
{
    size_t i;

    for (i = 0; i < e->ncols; i++)
        free(e->names[i]);
    free(e->names);
    free(e->cells);
    free(e->text);
}

/* Load expected.csv.gz (no quoting in it: numbers, hex, true/false). */
static int
expected_load(expected *e)
{
    char path[PATH_MAX + 32];
    gzFile gz;
    strbuf sb = { 0 };
    char buf[65536], *p, *line, *save = NULL;
    int n;
    size_t cap = 0;

    memset(e, 0, sizeof(*e));
    snprintf(path, sizeof(path), "%s/expected.csv.gz", g_data);
    gz = gzopen(path, "rb");
    if (gz == NULL)
        return -1;
    while ((n = gzread(gz, buf, sizeof(buf))) > 0)
        sb_append(&sb, buf, (size_t)n);
    gzclose(gz);
    e->text = sb.data;
    line = strtok_r(e->text, "\n", &save);
    if (line == NULL)
        return -1;
    for (p = line;; p++) {
        char *c = strchr(p, ',');

        if (c)
            *c = 0;
        e->names = xrealloc(e->names, (e->ncols + 1) * sizeof(char *));
        e->names[e->ncols++] = xstrdup(p);
        if (!c)
            break;
        p = c;
    }
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        size_t k;

        if (cap < (e->nrows + 1) * e->ncols) {
            cap = 2 * (e->nrows + 1) * e->ncols;
            e->cells = xrealloc(e->cells, cap * sizeof(char *));
        }
        for (k = 0, p = line; k < e->ncols; k++) {
            char *c = strchr(p, ',');

            if (c)
                *c = 0;
            e->cells[e->nrows * e->ncols + k] = p;
            if (!c && k + 1 < e->ncols)
                return -1;
            p = c ? c + 1 : p + strlen(p);
        }
        e->nrows++;
    }
    return 0;
}

static int
unhex(const char *h, char *out, size_t cap, size_t *len)
{
    size_t n = strlen(h), i;

    if (n % 2 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned v;

        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (char)v;
    }
    *len = n / 2;
    return 0;
}

/* Does 'v' equal the expected cell 'cell' of column 'name'? */
static int
cell_matches(const char *name, const char *cell, const sh_value *v)
{
    char buf[512];
    size_t len;
    double d;

    if (cell[0] == 0)
        return v->type == SH_NULL;
    switch (v->type) {
    case SH_INT:
        return strtoll(cell, NULL, 10) == v->u.i;
    case SH_FLOAT:
        d = strtod(cell, NULL);
        if (isnan(d))
            return isnan(v->u.f);
        if (strncmp(name, "dec", 3) == 0)
            return fabs(d - v->u.f) <= 1e-12 * fabs(d);
        return d == v->u.f;
    case SH_BOOL:
        return v->u.b == (strcmp(cell, "true") == 0);
    case SH_STRING:
        if (cell[0] != 'x' || unhex(cell + 1, buf, sizeof(buf), &len) < 0)
            return 0;
        return len == v->u.s.len && memcmp(buf, v->u.s.ptr, len) == 0;
    default:
        return 0;
    }
}

static pq_file *
open_file(const char *path, int *fd, sh_err *err)
{
    *fd = open(path, O_RDONLY);
    if (*fd < 0) {
        sh_err_set(err, SH_EIO, NULL, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    return pq_open(*fd, path, err);
}

static size_t *
all_rgs(const pq_file *f, size_t *n)
{
    size_t i, *rgs;

    *n = pq_num_row_groups(f);
    rgs = xmalloc((*n + 1) * sizeof(*rgs));
    for (i = 0; i < *n; i++)
        rgs[i] = i;
    return rgs;
}

static const sh_type expected_types[] = {
    SH_INT, SH_INT, SH_INT, SH_INT, SH_FLOAT, SH_FLOAT, SH_BOOL, SH_STRING,
    SH_STRING, SH_FLOAT, SH_FLOAT, SH_FLOAT, SH_INT, SH_INT, SH_INT, SH_INT,
    SH_INT, SH_INT, SH_INT, SH_INT, SH_INT
};

static void
check_duckdb_file(const char *file, const expected *e)
{
    char path[PATH_MAX + 64];
    pq_file *f;
    pq_reader *r = NULL;
    const sh_value *row;
    size_t i, nrg, *rgs = NULL, nrow = 0, bad = 0;
    sh_err err;
    int fd, rc;

    snprintf(path, sizeof(path), "%s/%s", g_data, file);
    f = open_file(path, &fd, &err);
    CHECK(f != NULL, "%s: %s", file, err.msg);
    if (f == NULL)
        goto done;
    CHECK(pq_num_cols(f) == e->ncols, "%s: %zu columns, expected %zu", file,
          pq_num_cols(f), e->ncols);
    if (pq_num_cols(f) != e->ncols)
        goto done;
    for (i = 0; i < e->ncols; i++) {
        const pq_col *c = pq_col_at(f, i);

        CHECK(strcmp(c->name, e->names[i]) == 0, "%s: column %zu is %s",
              file, i, c->name);
        CHECK(c->why_unsupported == NULL, "%s: column %s: %s", file, c->name,
              c->why_unsupported ? c->why_unsupported : "");
        if (i < sizeof(expected_types) / sizeof(expected_types[0]))
            CHECK(c->type == expected_types[i], "%s: column %s is %s", file,
                  c->name, sh_type_name(c->type));
    }
    CHECK(pq_num_rows(f) == (int64_t)e->nrows, "%s: %" PRId64 " rows",
          file, pq_num_rows(f));
    rgs = all_rgs(f, &nrg);
    r = pq_reader_new(f, rgs, nrg, NULL, &err);
    CHECK(r != NULL, "%s: %s", file, err.msg);
    if (r == NULL)
        goto done;
    while ((rc = pq_reader_next(r, &row, &err)) == 1) {
        if (nrow < e->nrows) {
            for (i = 0; i < e->ncols; i++) {
                const char *cell = e->cells[nrow * e->ncols + i];

                if (!cell_matches(e->names[i], cell, &row[i]) && bad++ < 5) {
                    char desc[256];

                    th_describe_value(&row[i], desc, sizeof(desc));
                    CHECK(0, "%s: row %zu column %s: got %s, expected %s",
                          file, nrow, e->names[i], desc, cell);
                }
            }
        }
        nrow++;
    }
    CHECK(rc == 0, "%s: %s", file, err.msg);
    CHECK(nrow == e->nrows, "%s: read %zu rows, expected %zu", file, nrow,
          e->nrows);
    CHECK(bad == 0, "%s: %zu values differ", file, bad);
done:
    pq_reader_free(r);
    pq_close(f);
    free(rgs);
    if (fd >= 0)
        close(fd);
}

static void
test_duckdb_files(void)
{
    static const char *files[] = {
        "all_v1_uncompressed.parquet", "all_v1_snappy.parquet",
        "all_v1_zstd.parquet", "all_v1_gzip.parquet",
        "all_v2_uncompressed.parquet", "all_v2_snappy.parquet",
        "all_v2_zstd.parquet", "all_v2_gzip.parquet"
    };
    expected e;
    size_t i;

    CHECK(expected_load(&e) == 0, "cannot load %s/expected.csv.gz", g_data);
    if (e.nrows == 0) {
        expected_free(&e);
        return;
    }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        check_duckdb_file(files[i], &e);
    expected_free(&e);
}

/* rowgroups.parquet: id 0..9999 (int64), k = 'k' || id % 100, row groups
 * of 2048 rows. */
static void
test_row_groups(void)
{
    char path[PATH_MAX + 64];
    pq_file *f;
    pq_reader *r = NULL;
    const sh_value *row;
    size_t rgs[2] = { 3, 1 }, g, n = 0;
    unsigned char need[2] = { 1, 0 };
    int64_t start, end, prev_end = 0, want;
    pq_minmax mm;
    sh_err err;
    int fd, rc, ok = 1;

    snprintf(path, sizeof(path), "%s/rowgroups.parquet", g_data);
    f = open_file(path, &fd, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (f == NULL)
        return;
    CHECK(pq_num_row_groups(f) == 5, "%zu row groups",
          pq_num_row_groups(f));
    for (g = 0; g < pq_num_row_groups(f); g++) {
        CHECK(pq_rg_rows(f, g) == (g < 4 ? 2048 : 1808),
              "row group %zu: %" PRId64 " rows", g, pq_rg_rows(f, g));
        pq_rg_range(f, g, &start, &end);
        CHECK(start >= 4 && end > start && start >= prev_end,
              "row group %zu: bytes %" PRId64 "-%" PRId64, g, start, end);
        prev_end = end;
        pq_rg_minmax(f, g, 0, &mm);
        CHECK(mm.has_minmax && mm.min.type == SH_INT &&
              mm.min.u.i == (int64_t)g * 2048 &&
              mm.max.u.i == (int64_t)(g < 4 ? g * 2048 + 2047 : 9999),
              "row group %zu: id statistics", g);
        CHECK(mm.has_nulls && mm.null_count == 0, "null count");
        pq_rg_minmax(f, g, 1, &mm);
        CHECK(mm.has_minmax && mm.min.type == SH_STRING &&
              mm.min.u.s.len == 2 && memcmp(mm.min.u.s.ptr, "k0", 2) == 0 &&
              mm.max.u.s.len == 3 && memcmp(mm.max.u.s.ptr, "k99", 3) == 0,
              "row group %zu: k statistics", g);
    }
    r = pq_reader_new(f, rgs, 2, need, &err);
    CHECK(r != NULL, "%s", err.msg);
    while (r != NULL && (rc = pq_reader_next(r, &row, &err)) == 1) {
        want = n < 2048 ? 3 * 2048 + (int64_t)n : 2048 + (int64_t)n - 2048;
        if (row[0].type != SH_INT || row[0].u.i != want ||
            row[1].type != SH_NULL)
            ok = 0;
        n++;
    }
    CHECK(r == NULL || rc == 0, "%s", err.msg);
    CHECK(n == 4096 && ok, "subset: %zu rows, ok %d", n, ok);
    pq_reader_free(r);
    pq_close(f);
    close(fd);
}

void
test_parquet_register(void)
{
    CU_pSuite s = CU_add_suite("parquet", suite_init, suite_clean);

    CU_add_test(s, "files written by DuckDB", test_duckdb_files);
    CU_add_test(s, "row groups, statistics, subsets", test_row_groups);
}
