/*
 * test_parquet.c - unit tests of the Parquet reader and writer
 * (executor/parquet*.c, thrift_dec.c, thrift_enc.c):
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
#include "../../executor/parquet_write.h"
#include "../../executor/thrift.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static char g_data[PATH_MAX];
static char g_tmp[PATH_MAX];

/* Find tests/unit/data/parquet from the working directory or beside the
 * test binary (build/unit_tests). */
static void
find_data(void)
{
    char    exe[PATH_MAX];
    ssize_t n;
    char   *slash;

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
    snprintf(g_data, sizeof(g_data), "%.3000s/../tests/unit/data/parquet", exe);
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
    size_t ncols, nrows;
    char **names; /* ncols */
    char **cells; /* nrows * ncols, "" for null */
    char  *text;  /* owned */
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
    char   path[PATH_MAX + 32];
    gzFile gz;
    strbuf sb = {0};
    char   buf[65536], *p, *line, *save = NULL;
    int    n;
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
    char   buf[512];
    size_t len;
    double d;

    if (cell[0] == 0)
        return v->type == SH_NULL;
    switch (v->type) {
    case SH_INT:
    case SH_DATE:
        return strtoll(cell, NULL, 10) == v->u.i;
    case SH_TIMESTAMP:
        /* expected.csv.gz has the file's unit: ms, ns or us */
        if (strcmp(name, "ts_ms") == 0)
            return strtoll(cell, NULL, 10) * 1000 == v->u.i;
        if (strcmp(name, "ts_ns") == 0)
            return strtoll(cell, NULL, 10) / 1000 == v->u.i;
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
    SH_INT,  SH_INT,       SH_INT,       SH_INT,       SH_FLOAT,     SH_FLOAT,
    SH_BOOL, SH_STRING,    SH_STRING,    SH_FLOAT,     SH_FLOAT,     SH_FLOAT,
    SH_DATE, SH_TIMESTAMP, SH_TIMESTAMP, SH_TIMESTAMP, SH_TIMESTAMP, SH_INT,
    SH_INT,  SH_INT,       SH_INT};

static void
check_duckdb_file(const char *file, const expected *e)
{
    char            path[PATH_MAX + 64];
    pq_file        *f;
    pq_reader      *r = NULL;
    const sh_value *row;
    size_t          i, nrg, *rgs = NULL, nrow = 0, bad = 0;
    sh_err          err;
    int             fd, rc;

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

        CHECK(strcmp(c->name, e->names[i]) == 0, "%s: column %zu is %s", file,
              i, c->name);
        CHECK(c->why_unsupported == NULL, "%s: column %s: %s", file, c->name,
              c->why_unsupported ? c->why_unsupported : "");
        if (i < sizeof(expected_types) / sizeof(expected_types[0]))
            CHECK(c->type == expected_types[i], "%s: column %s is %s", file,
                  c->name, sh_type_name(c->type));
    }
    CHECK(pq_num_rows(f) == (int64_t)e->nrows, "%s: %" PRId64 " rows", file,
          pq_num_rows(f));
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
                    CHECK(0, "%s: row %zu column %s: got %s, expected %s", file,
                          nrow, e->names[i], desc, cell);
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
        "all_v1_zstd.parquet",         "all_v1_gzip.parquet",
        "all_v2_uncompressed.parquet", "all_v2_snappy.parquet",
        "all_v2_zstd.parquet",         "all_v2_gzip.parquet"};
    expected e;
    size_t   i;

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
    char            path[PATH_MAX + 64];
    pq_file        *f;
    pq_reader      *r = NULL;
    const sh_value *row;
    size_t          rgs[2] = {3, 1}, g, n = 0;
    unsigned char   need[2] = {1, 0};
    int64_t         start, end, prev_end = 0, want;
    pq_minmax       mm;
    sh_err          err;
    int             fd, rc = 0, ok = 1;

    snprintf(path, sizeof(path), "%s/rowgroups.parquet", g_data);
    f = open_file(path, &fd, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (f == NULL)
        return;
    CHECK(pq_num_row_groups(f) == 5, "%zu row groups", pq_num_row_groups(f));
    for (g = 0; g < pq_num_row_groups(f); g++) {
        CHECK(pq_rg_rows(f, g) == (g < 4 ? 2048 : 1808),
              "row group %zu: %" PRId64 " rows", g, pq_rg_rows(f, g));
        pq_rg_range(f, g, &start, &end);
        CHECK(start >= 4 && end > start && start >= prev_end,
              "row group %zu: bytes %" PRId64 "-%" PRId64, g, start, end);
        prev_end = end;
        pq_rg_minmax(f, g, 0, &mm);
        CHECK(mm.has_minmax && mm.min.type == SH_INT
                  && mm.min.u.i == (int64_t)g * 2048
                  && mm.max.u.i == (int64_t)(g < 4 ? g * 2048 + 2047 : 9999),
              "row group %zu: id statistics", g);
        CHECK(mm.has_nulls && mm.null_count == 0, "null count");
        pq_rg_minmax(f, g, 1, &mm);
        CHECK(mm.has_minmax && mm.min.type == SH_STRING && mm.min.u.s.len == 2
                  && memcmp(mm.min.u.s.ptr, "k0", 2) == 0 && mm.max.u.s.len == 3
                  && memcmp(mm.max.u.s.ptr, "k99", 3) == 0,
              "row group %zu: k statistics", g);
    }
    /* pruning by statistics: id in [2048g, 2048g + 2047] */
    {
        sh_value v5000 = sh_int(5000), vf = sh_float(4095.5),
                 vk = sh_str("k5", 2), vz = sh_str("zz", 2), vnull = sh_null();
        size_t all[5] = {0, 1, 2, 3, 4}, *starts = NULL, np;

        CHECK(pq_rg_may_match(f, 2, 0, PQ_CMP_EQ, &v5000) == 1
                  && pq_rg_may_match(f, 1, 0, PQ_CMP_EQ, &v5000) == 0
                  && pq_rg_may_match(f, 0, 0, PQ_CMP_GT, &v5000) == 0
                  && pq_rg_may_match(f, 3, 0, PQ_CMP_GT, &v5000) == 1
                  && pq_rg_may_match(f, 3, 0, PQ_CMP_LT, &v5000) == 0
                  && pq_rg_may_match(f, 2, 0, PQ_CMP_LE, &v5000) == 1
                  && pq_rg_may_match(f, 1, 0, PQ_CMP_GE, &vf) == 0
                  && pq_rg_may_match(f, 2, 0, PQ_CMP_GE, &vf) == 1
                  && pq_rg_may_match(f, 2, 0, PQ_CMP_NE, &v5000) == 1
                  && pq_rg_may_match(f, 2, 0, PQ_CMP_EQ, &vnull) == 0
                  && pq_rg_may_match(f, 2, 0, PQ_CMP_IS_NULL, NULL) == 0
                  && pq_rg_may_match(f, 2, 0, PQ_CMP_NOT_NULL, NULL) == 1
                  && pq_rg_may_match(f, 2, 1, PQ_CMP_EQ, &vk) == 1
                  && pq_rg_may_match(f, 2, 1, PQ_CMP_EQ, &vz) == 0
                  && pq_rg_may_match(f, 2, 1, PQ_CMP_EQ, &v5000) == 1,
              "pruning by statistics");
        np = pq_partition(f, all, 5, INT64_MAX, &starts);
        CHECK(np == 1 && starts[0] == 0, "one partition");
        free(starts);
        np = pq_partition(f, all, 5, 1, &starts);
        CHECK(np == 5 && starts[4] == 4, "a partition a row group");
        free(starts);
    }
    r = pq_reader_new(f, rgs, 2, need, &err);
    CHECK(r != NULL, "%s", err.msg);
    CHECK(r != NULL && strstr(pq_reader_context(r), "row groups 3-1"),
          "context %s", r ? pq_reader_context(r) : "");
    while (r != NULL && (rc = pq_reader_next(r, &row, &err)) == 1) {
        want = n < 2048 ? 3 * 2048 + (int64_t)n : 2048 + (int64_t)n - 2048;
        if (row[0].type != SH_INT || row[0].u.i != want
            || row[1].type != SH_NULL)
            ok = 0;
        n++;
    }
    CHECK(r == NULL || rc == 0, "%s", err.msg);
    CHECK(n == 4096 && ok, "subset: %zu rows, ok %d", n, ok);
    CHECK(r != NULL && pq_reader_rows(r) == 4096 && pq_reader_bytes(r) > 0,
          "rows and bytes");
    pq_reader_free(r);
    pq_close(f);
    close(fd);
}

/* nested.parquet: id, l INTEGER[], st STRUCT(a, b), s = 's' || id. */
static void
test_nested(void)
{
    char            path[PATH_MAX + 64];
    pq_file        *f;
    pq_reader      *r;
    const sh_value *row;
    unsigned char   need[4] = {1, 0, 0, 1}, need_l[4] = {0, 1, 0, 0};
    size_t          rg = 0, n = 0;
    sh_err          err;
    int             fd, rc = 0, ok = 1;

    snprintf(path, sizeof(path), "%s/nested.parquet", g_data);
    f = open_file(path, &fd, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (f == NULL)
        return;
    CHECK(pq_num_cols(f) == 4, "%zu columns", pq_num_cols(f));
    CHECK(pq_col_at(f, 1)->why_unsupported != NULL
              && pq_col_at(f, 2)->why_unsupported != NULL
              && pq_col_at(f, 3)->why_unsupported == NULL,
          "unsupported columns");
    CHECK(pq_check_columns(f, need, &err) == 0, "%s", err.msg);
    CHECK(pq_check_columns(f, need_l, &err) == SH_EINVAL
              && strstr(err.msg, "column 'l'") != NULL
              && strstr(err.msg, "nested") != NULL,
          "%s", err.msg);
    CHECK(pq_reader_new(f, &rg, 1, NULL, &err) == NULL && err.code == SH_EINVAL,
          "reading every column must fail");
    r = pq_reader_new(f, &rg, 1, need, &err);
    CHECK(r != NULL, "%s", err.msg);
    while (r != NULL && (rc = pq_reader_next(r, &row, &err)) == 1) {
        char want[32];

        snprintf(want, sizeof(want), "s%zu", n);
        if (row[0].type != SH_INT || row[0].u.i != (int64_t)n
            || row[3].type != SH_STRING || row[3].u.s.len != strlen(want)
            || memcmp(row[3].u.s.ptr, want, strlen(want)) != 0)
            ok = 0;
        n++;
    }
    CHECK(n == 100 && ok, "%zu rows, ok %d", n, ok);
    pq_reader_free(r);
    pq_close(f);
    close(fd);
}

/* ---- round trips ----------------------------------------------------------
 */

#define RT_ROWS 5000
#define RT_COLS 9

static char g_long[300000];

/* Row i of the round-trip table (strings borrow static or 'buf'). */
static void
rt_row(size_t i, sh_value *row, char *buf, size_t size)
{
    static const char  *words[] = {"alpha", "beta", "", "gamma, \"q\"",
                                   "\xc3\xbc\xe2\x82\xac"};
    static const double specials[] = {0.0, -0.0,   INFINITY, -INFINITY,
                                      NAN, 1e-300, -1.5e300};

    row[0] = i % 7 == 3 ? sh_null()
             : i == 1   ? sh_int(INT64_MIN)
             : i == 2   ? sh_int(INT64_MAX)
                        : sh_int((int64_t)i * 1000003 - 77777);
    row[1] = i % 5 == 1 ? sh_null()
             : i < 7    ? sh_float(specials[i])
                        : sh_float((double)i / 3.0 - 100);
    row[2] = i % 3 == 0 ? sh_null() : sh_bool(i % 4 < 2);
    row[3] = i % 6 == 5 ? sh_null()
                        : sh_str(words[i % 5], strlen(words[i % 5]));
    if (i % 8 == 1) {
        row[4] = sh_null();
    } else if (i == 4000) {
        row[4] = sh_str(g_long, sizeof(g_long)); /* spans a page */
    } else {
        int n = snprintf(buf, size, "row %zu %.*s", i, (int)(i % 23),
                         "zzzzzzzzzzzzzzzzzzzzzzzzzzzz");
        row[4] = sh_str(buf, (size_t)n);
    }
    row[5] = sh_null();
    row[6] = i >= 4000 ? sh_null() : sh_int((int64_t)(i % 3)); /* RLE runs */
    /* days from 1900 on (before the epoch too), microseconds either side
     * of it */
    row[7] = i % 9 == 4 ? sh_null() : sh_date((int64_t)i * 7 - 25567);
    row[8] = i % 10 == 6 ? sh_null()
             : i == 3    ? sh_timestamp(-1)
                      : sh_timestamp((int64_t)i * 1234567891 - 2000000000000LL);
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
    case SH_DATE:
    case SH_TIMESTAMP:
        return a->u.i == b->u.i;
    case SH_FLOAT:
        return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0
               || (isnan(a->u.f) && isnan(b->u.f));
    case SH_BOOL:
        return a->u.b == b->u.b;
    case SH_STRING:
        return a->u.s.len == b->u.s.len
               && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    }
    return 0;
}

static schema *
rt_schema(void)
{
    schema *sc = schema_new();

    schema_add(sc, "i", SH_INT);
    schema_add(sc, "f", SH_FLOAT);
    schema_add(sc, "b", SH_BOOL);
    schema_add(sc, "s_dict", SH_STRING);
    schema_add(sc, "s_plain", SH_STRING);
    schema_add(sc, "nothing", SH_NULL);
    schema_add(sc, "small", SH_INT);
    schema_add(sc, "day", SH_DATE);
    schema_add(sc, "at", SH_TIMESTAMP);
    return sc;
}

/* Write the round-trip table to 'path' with 'codec'; 0 or an error. */
static int
rt_write(const char *path, const schema *sc, int codec, size_t rg_rows,
         sh_err *err)
{
    int        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), rc = 0;
    pq_writer *w;
    sh_value   row[RT_COLS];
    char       buf[128];
    size_t     i;

    if (fd < 0)
        return sh_err_set(err, SH_EIO, NULL, "open %s", path);
    w = pq_writer_new(fd, sc, codec, rg_rows);
    for (i = 0; i < RT_ROWS && rc == 0; i++) {
        rt_row(i, row, buf, sizeof(buf));
        rc = pq_writer_row(w, row, err);
    }
    if (rc == 0)
        rc = pq_writer_finish(w, err);
    pq_writer_free(w);
    close(fd);
    return rc;
}

static void
test_round_trip(void)
{
    static const char *codecs[] = {"none", "snappy", "gzip", "zstd"};
    schema            *sc = rt_schema();
    size_t             k, i;

    memset(g_long, 'L', sizeof(g_long));
    for (k = 0; k < 4; k++) {
        char            path[PATH_MAX + 64], buf[128];
        int             codec = -1, fd, rc = 0;
        pq_file        *f = NULL;
        pq_reader      *r = NULL;
        size_t          nrg, *rgs = NULL, n = 0, bad = 0;
        const sh_value *row;
        sh_value        want[RT_COLS];
        pq_minmax       mm;
        sh_err          err;

        CHECK(pq_codec_parse(codecs[k], &codec) == 0, "codec %s", codecs[k]);
        snprintf(path, sizeof(path), "%s/rt_%s.parquet", g_tmp, codecs[k]);
        rc = rt_write(path, sc, codec, 1000, &err);
        CHECK(rc == 0, "%s: write: %s", codecs[k], err.msg);
        f = open_file(path, &fd, &err);
        CHECK(f != NULL, "%s: %s", codecs[k], err.msg);
        if (f == NULL)
            continue;
        CHECK(pq_num_rows(f) == RT_ROWS && pq_num_row_groups(f) == 5,
              "%s: %" PRId64 " rows, %zu row groups", codecs[k], pq_num_rows(f),
              pq_num_row_groups(f));
        for (i = 0; i < sc->n; i++)
            CHECK(strcmp(pq_col_at(f, i)->name, sc->names[i]) == 0
                      && pq_col_at(f, i)->type
                             == (sc->types[i] == SH_NULL ? SH_STRING
                                                         : sc->types[i]),
                  "%s: column %zu", codecs[k], i);
        pq_rg_minmax(f, 1, 0, &mm);
        CHECK(mm.has_minmax && mm.min.u.i == 1000 * 1000003LL - 77777
                  && mm.max.u.i == 1999 * 1000003LL - 77777 && mm.has_nulls
                  && mm.null_count == 143,
              "%s: int statistics", codecs[k]);
        pq_rg_minmax(f, 0, 1, &mm);
        CHECK(mm.has_minmax && mm.min.u.f == -INFINITY
                  && mm.max.u.f == INFINITY,
              "%s: float statistics", codecs[k]);
        pq_rg_minmax(f, 0, 3, &mm);
        CHECK(mm.has_minmax && mm.min.u.s.len == 0 && mm.max.u.s.len == 5,
              "%s: string statistics", codecs[k]);
        /* rows 1000..1999: days 7000 - 25567 .. 13993 - 25567 */
        pq_rg_minmax(f, 1, 7, &mm);
        CHECK(mm.has_minmax && mm.min.type == SH_DATE
                  && mm.min.u.i == 7000 - 25567 && mm.max.type == SH_DATE
                  && mm.max.u.i == 13993 - 25567,
              "%s: date statistics", codecs[k]);
        pq_rg_minmax(f, 1, 8, &mm);
        CHECK(mm.has_minmax && mm.min.type == SH_TIMESTAMP
                  && mm.min.u.i == 1000 * 1234567891LL - 2000000000000LL,
              "%s: timestamp statistics", codecs[k]);
        {
            sh_value d = sh_date(13993 - 25567 + 1), ts = sh_timestamp(0);

            CHECK(pq_rg_may_match(f, 1, 7, PQ_CMP_GE, &d) == 0
                      && pq_rg_may_match(f, 2, 7, PQ_CMP_GE, &d) == 1
                      && pq_rg_may_match(f, 1, 7, PQ_CMP_GE, &ts) == 1,
                  "%s: pruning on dates", codecs[k]);
        }
        rgs = all_rgs(f, &nrg);
        r = pq_reader_new(f, rgs, nrg, NULL, &err);
        CHECK(r != NULL, "%s: %s", codecs[k], err.msg);
        while (r != NULL && (rc = pq_reader_next(r, &row, &err)) == 1) {
            rt_row(n, want, buf, sizeof(buf));
            for (i = 0; i < sc->n; i++) {
                if (!same_value(&row[i], &want[i]) && bad++ < 5) {
                    char d1[128], d2[128];

                    th_describe_value(&row[i], d1, sizeof(d1));
                    th_describe_value(&want[i], d2, sizeof(d2));
                    CHECK(0, "%s: row %zu column %s: got %s, wrote %s",
                          codecs[k], n, sc->names[i], d1, d2);
                }
            }
            n++;
        }
        CHECK(r == NULL || rc == 0, "%s: %s", codecs[k], err.msg);
        CHECK(n == RT_ROWS && bad == 0, "%s: %zu rows, %zu bad", codecs[k], n,
              bad);
        pq_reader_free(r);
        pq_close(f);
        free(rgs);
        close(fd);
    }
    schema_free(sc);
}

static void
test_write_errors(void)
{
    schema    *sc = schema_new();
    char       path[PATH_MAX + 64];
    sh_value   row[2];
    pq_writer *w;
    sh_err     err;
    int        fd;

    schema_add(sc, "x", SH_FLOAT);
    schema_add(sc, "y", SH_INT);
    snprintf(path, sizeof(path), "%s/err.parquet", g_tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    w = pq_writer_new(fd, sc, PQ_C_ZSTD, 0);
    row[0] = sh_int(3); /* an int into a float column: 3.0 */
    row[1] = sh_int(4);
    CHECK(pq_writer_row(w, row, &err) == 0, "%s", err.msg);
    row[1] = sh_str("no", 2);
    CHECK(pq_writer_row(w, row, &err) == SH_EDATA
              && strstr(err.msg, "column 'y'") != NULL,
          "mismatch: %s", err.msg);
    row[1] = sh_date(3);
    CHECK(pq_writer_row(w, row, &err) == SH_EDATA
              && strstr(err.msg, "a date value in a int column") != NULL,
          "mismatch: %s", err.msg);
    CHECK(pq_writer_rows(w) == 1, "the bad row is not added");
    CHECK(pq_writer_finish(w, &err) == 0, "%s", err.msg);
    CHECK(pq_writer_bytes_out(w) > 12, "bytes out");
    pq_writer_free(w);
    close(fd);
    CHECK(pq_codec_parse("lz4", &fd) < 0, "lz4 is not a codec here");
    schema_free(sc);
}

/* ---- corrupt input --------------------------------------------------------
 */

static uint8_t *
slurp(const char *path, size_t *n)
{
    return (uint8_t *)fsys_read_file(path, n);
}

static void
test_truncated(void)
{
    schema  *sc = rt_schema();
    char     path[PATH_MAX + 64];
    uint8_t *data, *copy;
    size_t   n, len, fails = 0, flips_ok = 0, i;
    sh_err   err;

    snprintf(path, sizeof(path), "%s/small.parquet", g_tmp);
    /* a small file: the first rows, two row groups */
    {
        int        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pq_writer *w = pq_writer_new(fd, sc, PQ_C_SNAPPY, 20);
        sh_value   row[RT_COLS];
        char       buf[128];

        for (i = 0; i < 30; i++) {
            rt_row(i, row, buf, sizeof(buf));
            pq_writer_row(w, row, &err);
        }
        CHECK(pq_writer_finish(w, &err) == 0, "%s", err.msg);
        pq_writer_free(w);
        close(fd);
    }
    data = slurp(path, &n);
    CHECK(data != NULL && n > 100, "small file");
    if (data == NULL)
        goto done;
    CHECK(pq_fuzz_one(data, n) == 0, "the whole file reads");
    /* every truncation is an error */
    for (len = 0; len < n; len++)
        if (pq_fuzz_one(data, len) >= 0)
            fails++;
    CHECK(fails == 0, "%zu truncations read without an error", fails);
    /* the data cut short under an intact footer, and every byte flipped:
     * an error or rows, never a crash */
    copy = xmalloc(n);
    for (i = 4; i < n - 8; i++) {
        memcpy(copy, data, n);
        copy[i] ^= 0xff;
        if (pq_fuzz_one(copy, n) == 0)
            flips_ok++;
        copy[i] ^= 0x5a;
        pq_fuzz_one(copy, n);
    }
    free(copy);
    CHECK(flips_ok < n, "flips");
    free(data);
done:
    schema_free(sc);
}

/* Random mutations of DuckDB's files (every encoding): a fixed xorshift
 * seed, so a failure repeats. */
static void
test_mutations(void)
{
    static const char *files[] = {"all_v1_uncompressed.parquet",
                                  "all_v2_uncompressed.parquet",
                                  "all_v2_snappy.parquet"};
    uint64_t           x = 0x9e3779b97f4a7c15ULL;
    size_t             k, it, n, j;

    for (k = 0; k < 3; k++) {
        char     path[PATH_MAX + 64];
        uint8_t *data, *copy;

        snprintf(path, sizeof(path), "%s/%s", g_data, files[k]);
        data = slurp(path, &n);
        CHECK(data != NULL, "%s", path);
        if (data == NULL)
            continue;
        CHECK(pq_fuzz_one(data, n) == 0, "%s reads", files[k]);
        copy = xmalloc(n);
        for (it = 0; it < 300; it++) {
            memcpy(copy, data, n);
            for (j = 0; j < 1 + it % 4; j++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                copy[x % n] = (uint8_t)(x >> 32);
            }
            pq_fuzz_one(copy, n);
        }
        free(copy);
        free(data);
    }
}

/* ---- a file built by hand: DELTA_BYTE_ARRAY, REQUIRED columns ------------ */

static void
put_uvarint(strbuf *sb, uint64_t v)
{
    while (v >= 0x80) {
        sb_putc(sb, (char)(v | 0x80));
        v >>= 7;
    }
    sb_putc(sb, (char)v);
}

/* DELTA_BINARY_PACKED of v[0..n): blocks of 128, 4 miniblocks of 32. */
static void
dbp_encode(strbuf *sb, const int64_t *v, size_t n)
{
    size_t b, m, k;

    put_uvarint(sb, 128);
    put_uvarint(sb, 4);
    put_uvarint(sb, n);
    put_uvarint(sb, ((uint64_t)v[0] << 1) ^ (uint64_t)(v[0] >> 63));
    for (b = 1; b < n; b += 128) {
        size_t   nb = n - b < 128 ? n - b : 128;
        int64_t  min = INT64_MAX;
        uint64_t d[128] = {0};
        int      widths[4] = {0};

        for (k = 0; k < nb; k++) {
            int64_t dl = (int64_t)((uint64_t)v[b + k] - (uint64_t)v[b + k - 1]);

            d[k] = (uint64_t)dl;
            if (dl < min)
                min = dl;
        }
        for (k = 0; k < nb; k++)
            d[k] -= (uint64_t)min;
        put_uvarint(sb, ((uint64_t)min << 1) ^ (uint64_t)(min >> 63));
        for (m = 0; m < 4; m++) {
            for (k = m * 32; k < m * 32 + 32 && k < nb; k++)
                while (widths[m] < 64 && (d[k] >> widths[m]) != 0)
                    widths[m]++;
            sb_putc(sb, (char)widths[m]);
        }
        for (m = 0; m < 4 && m * 32 < nb; m++) {
            uint8_t buf[32 * 8] = {0};
            size_t  bit = 0, j;

            for (k = m * 32; k < m * 32 + 32; k++, bit += (size_t)widths[m])
                for (j = 0; j < (size_t)widths[m]; j++)
                    if ((d[k] >> j) & 1)
                        buf[(bit + j) >> 3] |= (uint8_t)(1u << ((bit + j) & 7));
            sb_append(sb, buf, (size_t)widths[m] * 4);
        }
    }
}

static void
test_hand_built(void)
{
    enum { N = 1000 };
    strbuf          file = {0}, page = {0}, hdr = {0}, foot = {0};
    int64_t         pre[N], suf[N], big[N];
    char            strs[N][40], path[PATH_MAX + 64];
    pq_schema_elem  se[5];
    pq_row_group    rg;
    pq_chunk        ch[4];
    pq_file_meta    m;
    pq_page_header  h;
    pq_file        *f;
    pq_reader      *r;
    const sh_value *row;
    size_t          i, rg0 = 0, n = 0, bad = 0;
    uint32_t        flen;
    sh_err          err;
    int             fd, rc = 0;

    for (i = 0; i < N; i++) {
        size_t p = 0;

        snprintf(strs[i], sizeof(strs[i]), "key/%04zu/%s", i / 7,
                 i % 3 ? "tail" : "");
        if (i > 0)
            while (strs[i][p] && strs[i][p] == strs[i - 1][p])
                p++;
        pre[i] = (int64_t)p;
        suf[i] = (int64_t)(strlen(strs[i]) - p);
        big[i] = i % 5 == 0   ? INT64_MIN + (int64_t)i
                 : i % 5 == 1 ? INT64_MAX - (int64_t)i
                              : (int64_t)(i * i) - 4000;
    }
    sb_append(&file, "PAR1", 4);
    memset(ch, 0, sizeof(ch));
    /* column s: DELTA_BYTE_ARRAY */
    dbp_encode(&page, pre, N);
    dbp_encode(&page, suf, N);
    for (i = 0; i < N; i++)
        sb_append(&page, strs[i] + pre[i], (size_t)suf[i]);
    memset(&h, 0, sizeof(h));
    h.type = PQ_P_DATA;
    h.num_values = N;
    h.encoding = PQ_E_DELTA_BYTE_ARRAY;
    h.def_encoding = h.rep_encoding = PQ_E_RLE;
    h.uncompressed_size = h.compressed_size = (int32_t)page.len;
    thr_encode_page_header(&hdr, &h);
    ch[0].meta.type = PQ_T_BYTE_ARRAY;
    ch[0].meta.data_page_offset = (int64_t)file.len;
    ch[0].meta.dictionary_page_offset = -1;
    ch[0].meta.num_values = N;
    ch[0].meta.total_compressed_size = ch[0].meta.total_uncompressed_size =
        (int64_t)(hdr.len + page.len);
    ch[0].meta.encodings = 1u << PQ_E_DELTA_BYTE_ARRAY;
    sb_append(&file, hdr.data, hdr.len);
    sb_append(&file, page.data, page.len);
    /* column big: DELTA_BINARY_PACKED with wrapping deltas */
    sb_reset(&page);
    sb_reset(&hdr);
    dbp_encode(&page, big, N);
    h.encoding = PQ_E_DELTA_BINARY_PACKED;
    h.uncompressed_size = h.compressed_size = (int32_t)page.len;
    thr_encode_page_header(&hdr, &h);
    ch[1].meta = ch[0].meta;
    ch[1].meta.type = PQ_T_INT64;
    ch[1].meta.data_page_offset = (int64_t)file.len;
    ch[1].meta.total_compressed_size = ch[1].meta.total_uncompressed_size =
        (int64_t)(hdr.len + page.len);
    ch[1].meta.encodings = 1u << PQ_E_DELTA_BINARY_PACKED;
    sb_append(&file, hdr.data, hdr.len);
    sb_append(&file, page.data, page.len);
    /* column ts: INT96 (days since the Julian epoch, nanoseconds), PLAIN */
    sb_reset(&page);
    sb_reset(&hdr);
    for (i = 0; i < N; i++) {
        uint64_t ns = (uint64_t)i * 3600000000123ULL;
        uint32_t jd = 2440588 + (uint32_t)i;

        sb_append(&page, &ns, 8);
        sb_append(&page, &jd, 4);
    }
    h.encoding = PQ_E_PLAIN;
    h.uncompressed_size = h.compressed_size = (int32_t)page.len;
    thr_encode_page_header(&hdr, &h);
    ch[2].meta = ch[1].meta;
    ch[2].meta.type = PQ_T_INT96;
    ch[2].meta.data_page_offset = (int64_t)file.len;
    ch[2].meta.total_compressed_size = ch[2].meta.total_uncompressed_size =
        (int64_t)(hdr.len + page.len);
    ch[2].meta.encodings = 1u << PQ_E_PLAIN;
    sb_append(&file, hdr.data, hdr.len);
    sb_append(&file, page.data, page.len);
    /* column u: INT32 annotated UINT_32, PLAIN */
    sb_reset(&page);
    sb_reset(&hdr);
    for (i = 0; i < N; i++) {
        uint32_t u = 4294967295u - (uint32_t)i;

        sb_append(&page, &u, 4);
    }
    h.uncompressed_size = h.compressed_size = (int32_t)page.len;
    thr_encode_page_header(&hdr, &h);
    ch[3].meta = ch[2].meta;
    ch[3].meta.type = PQ_T_INT32;
    ch[3].meta.data_page_offset = (int64_t)file.len;
    ch[3].meta.total_compressed_size = ch[3].meta.total_uncompressed_size =
        (int64_t)(hdr.len + page.len);
    sb_append(&file, hdr.data, hdr.len);
    sb_append(&file, page.data, page.len);
    /* footer */
    memset(se, 0, sizeof(se));
    se[0] = (pq_schema_elem){.type = -1,
                             .repetition = -1,
                             .name = "schema",
                             .name_len = 6,
                             .num_children = 4,
                             .converted = -1};
    se[1] = (pq_schema_elem){.type = PQ_T_BYTE_ARRAY,
                             .repetition = PQ_R_REQUIRED,
                             .name = "s",
                             .name_len = 1,
                             .converted = PQ_CT_UTF8};
    se[2] = (pq_schema_elem){.type = PQ_T_INT64,
                             .repetition = PQ_R_REQUIRED,
                             .name = "big",
                             .name_len = 3,
                             .converted = -1};
    se[3] = (pq_schema_elem){.type = PQ_T_INT96,
                             .repetition = PQ_R_REQUIRED,
                             .name = "ts",
                             .name_len = 2,
                             .converted = -1};
    se[4] = (pq_schema_elem){.type = PQ_T_INT32,
                             .repetition = PQ_R_REQUIRED,
                             .name = "u",
                             .name_len = 1,
                             .converted = PQ_CT_UINT_32};
    memset(&rg, 0, sizeof(rg));
    rg.cols = ch;
    rg.ncols = 4;
    rg.num_rows = N;
    memset(&m, 0, sizeof(m));
    m.version = 1;
    m.schema = se;
    m.nschema = 5;
    m.num_rows = N;
    m.rgs = &rg;
    m.nrgs = 1;
    thr_encode_file_meta(&foot, &m);
    sb_append(&file, foot.data, foot.len);
    flen = (uint32_t)foot.len;
    sb_append(&file, &flen, 4);
    sb_append(&file, "PAR1", 4);
    snprintf(path, sizeof(path), "%s/hand.parquet", g_tmp);
    CHECK(th_write_file(path, file.data, file.len) == 0, "write %s", path);
    f = open_file(path, &fd, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (f == NULL)
        goto done;
    CHECK(!pq_col_at(f, 0)->optional && pq_col_at(f, 0)->type == SH_STRING,
          "column s");
    r = pq_reader_new(f, &rg0, 1, NULL, &err);
    CHECK(r != NULL, "%s", err.msg);
    while (r != NULL && (rc = pq_reader_next(r, &row, &err)) == 1) {
        if (row[0].type != SH_STRING || row[0].u.s.len != strlen(strs[n])
            || memcmp(row[0].u.s.ptr, strs[n], row[0].u.s.len) != 0
            || row[1].type != SH_INT || row[1].u.i != big[n]
            || row[2].type != SH_TIMESTAMP
            || row[2].u.i
                   != (int64_t)n * 86400000000LL
                          + (int64_t)n * 3600000000123LL / 1000
            || row[3].type != SH_INT
            || row[3].u.i != (int64_t)(4294967295u - (uint32_t)n))
            if (bad++ < 3)
                CHECK(0, "row %zu differs", n);
        n++;
    }
    CHECK(rc == 0, "%s", err.msg);
    CHECK(n == N && bad == 0, "%zu rows, %zu bad", n, bad);
    pq_reader_free(r);
    pq_close(f);
    close(fd);
    /* the same file, its second column said to be LZ4: a clear refusal */
    {
        strbuf         f2 = {0}, foot2 = {0};
        unsigned char *need_s;
        uint32_t       len2;

        ch[1].meta.codec = PQ_C_LZ4;
        thr_encode_file_meta(&foot2, &m);
        ch[1].meta.codec = PQ_C_UNCOMPRESSED;
        sb_append(&f2, file.data, file.len - 8 - foot.len);
        sb_append(&f2, foot2.data, foot2.len);
        len2 = (uint32_t)foot2.len;
        sb_append(&f2, &len2, 4);
        sb_append(&f2, "PAR1", 4);
        snprintf(path, sizeof(path), "%s/lz4.parquet", g_tmp);
        CHECK(th_write_file(path, f2.data, f2.len) == 0, "write %s", path);
        f = open_file(path, &fd, &err);
        CHECK(f != NULL, "%s", err.msg);
        if (f != NULL) {
            CHECK(pq_check_columns(f, NULL, &err) == SH_EINVAL
                      && strstr(err.msg, "column 'big'")
                      && strstr(err.msg, "codec"),
                  "lz4: %s", err.msg);
            /* Only the first column: the LZ4 one is not read. */
            need_s = xcalloc(pq_num_cols(f), 1);
            need_s[0] = 1;
            CHECK(pq_check_columns(f, need_s, &err) == 0, "%s", err.msg);
            free(need_s);
            pq_close(f);
            close(fd);
        }
        sb_free(&f2);
        sb_free(&foot2);
    }
    /* pages overwritten under an intact footer: the error names them */
    {
        char *copy = xmalloc(file.len);

        memcpy(copy, file.data, file.len);
        memset(copy + 4, 0xee, file.len - 8 - foot.len - 4);
        snprintf(path, sizeof(path), "%s/bad.parquet", g_tmp);
        CHECK(th_write_file(path, copy, file.len) == 0, "write %s", path);
        free(copy);
        f = open_file(path, &fd, &err);
        CHECK(f != NULL, "%s", err.msg);
        r = f ? pq_reader_new(f, &rg0, 1, NULL, &err) : NULL;
        CHECK(r != NULL, "%s", err.msg);
        if (r != NULL) {
            rc = pq_reader_next(r, &row, &err);
            CHECK(rc == SH_EDATA && strstr(err.msg, "bad.parquet")
                      && strstr(err.msg, "row group 0, column 's'"),
                  "corrupt page: %d %s", rc, err.msg);
        }
        pq_reader_free(r);
        pq_close(f);
        if (f != NULL)
            close(fd);
    }
    /* and every truncation of its data pages, under the same footer */
    for (i = 4; i < file.len - 8 - foot.len; i += 3) {
        char *copy = xmalloc(file.len);

        memcpy(copy, file.data, file.len);
        memset(copy + i, 0xee, (file.len - 8 - foot.len) - i);
        pq_fuzz_one((const uint8_t *)copy, file.len);
        free(copy);
    }
done:
    sb_free(&file);
    sb_free(&page);
    sb_free(&hdr);
    sb_free(&foot);
}

/* Parts written apart (codecs and row groups differ, one is empty),
 * merged without copying their data, read back as one file. */
static void
test_merge(void)
{
    static const size_t from[3] = {0, 2000, 2100}, to[3] = {2000, 2100, 2100};
    static const char  *codecs[3] = {"zstd", "snappy", "none"};
    schema             *sc = rt_schema();
    char                paths[3][PATH_MAX + 64], path[PATH_MAX + 64], buf[128];
    const char         *names[3];
    int                 fds[3], codec, fd, rc = 0;
    int64_t             data_end[3];
    strbuf              whole = {0}, tail = {0};
    size_t              i, j, n = 0, bad = 0, nrg, *rgs = NULL;
    sh_value            row[RT_COLS];
    const sh_value     *got;
    pq_file            *f;
    pq_reader          *r = NULL;
    sh_err              err;

    for (i = 0; i < 3; i++) {
        pq_writer *w;

        snprintf(paths[i], sizeof(paths[i]), "%s/part%zu.parquet", g_tmp, i);
        names[i] = paths[i];
        fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pq_codec_parse(codecs[i], &codec);
        w = pq_writer_new(fd, sc, codec, 700);
        for (j = from[i]; j < to[i]; j++) {
            rt_row(j, row, buf, sizeof(buf));
            pq_writer_row(w, row, &err);
        }
        CHECK(pq_writer_finish(w, &err) == 0, "%s", err.msg);
        pq_writer_free(w);
        close(fd);
        fds[i] = open(paths[i], O_RDONLY);
    }
    rc = pq_merge(fds, names, 3, data_end, &tail, &err);
    CHECK(rc == 0, "merge: %s", err.msg);
    sb_append(&whole, "PAR1", 4);
    for (i = 0; i < 3; i++) {
        size_t len;
        char  *part = fsys_read_file(paths[i], &len);

        if (rc == 0 && part != NULL)
            sb_append(&whole, part + 4, (size_t)data_end[i] - 4);
        free(part);
        close(fds[i]);
    }
    sb_append(&whole, tail.data, tail.len);
    snprintf(path, sizeof(path), "%s/merged.parquet", g_tmp);
    CHECK(th_write_file(path, whole.data, whole.len) == 0, "write");
    f = open_file(path, &fd, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (f == NULL)
        goto done;
    CHECK(pq_num_rows(f) == 2100 && pq_num_row_groups(f) == 4,
          "%" PRId64 " rows, %zu row groups", pq_num_rows(f),
          pq_num_row_groups(f));
    rgs = all_rgs(f, &nrg);
    r = pq_reader_new(f, rgs, nrg, NULL, &err);
    CHECK(r != NULL, "%s", err.msg);
    while (r != NULL && (rc = pq_reader_next(r, &got, &err)) == 1) {
        rt_row(n, row, buf, sizeof(buf));
        for (i = 0; i < sc->n; i++)
            if (!same_value(&got[i], &row[i]))
                bad++;
        n++;
    }
    CHECK(rc == 0, "%s", err.msg);
    CHECK(n == 2100 && bad == 0, "%zu rows, %zu bad values", n, bad);
    pq_reader_free(r);
    pq_close(f);
    close(fd);
    /* a part of another schema is refused */
    {
        schema    *other = schema_new();
        pq_writer *w;

        schema_add(other, "zz", SH_INT);
        fd = open(paths[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        w = pq_writer_new(fd, other, PQ_C_UNCOMPRESSED, 0);
        CHECK(pq_writer_finish(w, &err) == 0, "%s", err.msg);
        pq_writer_free(w);
        close(fd);
        schema_free(other);
        for (i = 0; i < 3; i++)
            fds[i] = open(paths[i], O_RDONLY);
        sb_reset(&tail);
        CHECK(pq_merge(fds, names, 3, data_end, &tail, &err) == SH_EDATA
                  && strstr(err.msg, "part2.parquet"),
              "%s", err.msg);
        for (i = 0; i < 3; i++)
            close(fds[i]);
    }
done:
    free(rgs);
    sb_free(&whole);
    sb_free(&tail);
    schema_free(sc);
}

void
test_parquet_register(void)
{
    CU_pSuite s = CU_add_suite("parquet", suite_init, suite_clean);

    CU_add_test(s, "files written by DuckDB", test_duckdb_files);
    CU_add_test(s, "row groups, statistics, subsets", test_row_groups);
    CU_add_test(s, "nested columns are named, flat ones read", test_nested);
    CU_add_test(s, "round trips: every type and codec", test_round_trip);
    CU_add_test(s, "writer: type mismatches", test_write_errors);
    CU_add_test(s, "parts merged into one file", test_merge);
    CU_add_test(s, "DELTA_BYTE_ARRAY, wrapping deltas, REQUIRED",
                test_hand_built);
    CU_add_test(s, "truncated and flipped files", test_truncated);
    CU_add_test(s, "mutated DuckDB files", test_mutations);
}
