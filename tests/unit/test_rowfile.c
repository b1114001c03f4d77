/*
 * test_rowfile.c - unit tests of executor/rowfile: round trips of every
 * type (null, the edges of ints and floats, empty, binary and huge
 * strings, bools), rows of zero columns, rows across buffer boundaries with
 * the smallest and the default buffers, the temporary file and the rename,
 * and the detection of truncated, extended and corrupt files.
 *
 * Every check says what it compared and what it got. Files live in a fresh
 * directory made by the suite's init and removed by its cleanup.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../executor/rowfile.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static char g_dir[64];
/* The strings of write_sections' rows, kept until they are compared. */
static char *g_sect_text;

static int
suite_init(void)
{
    return th_temp_dir(g_dir, sizeof g_dir, "/tmp", "sheaf-test-rowfile");
}

static int
suite_cleanup(void)
{
    return th_rm_tree(g_dir);
}

/* A path in the suite's directory; the caller frees it. */
static char *
path_of(const char *name)
{
    return xasprintf("%s/%s", g_dir, name);
}

static long long
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* "type value" of 'v' for messages; strings shown as length and start. */
static const char *
show(const sh_value *v, char buf[128])
{
    switch (v->type) {
    case SH_NULL:
        snprintf(buf, 128, "null");
        break;
    case SH_INT:
        snprintf(buf, 128, "int %" PRId64, v->u.i);
        break;
    case SH_FLOAT:
        snprintf(buf, 128, "float %.17g", v->u.f);
        break;
    case SH_BOOL:
        snprintf(buf, 128, "bool %d", v->u.b);
        break;
    case SH_STRING:
        snprintf(buf, 128, "string of %zu bytes '%.20s'", v->u.s.len,
                 v->u.s.ptr);
        break;
    default:
        snprintf(buf, 128, "type %d", (int)v->type);
    }
    return buf;
}

/* Same type and value; floats bit for bit (NaN, -0), strings by bytes. */
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

/* Check that row 'got' equals 'want' (n values), saying which value not. */
static int
check_row(const sh_value *want, const sh_value *got, size_t n, long row,
          int line)
{
    char wb[128], gb[128];

    for (size_t i = 0; i < n; i++) {
        if (!same_value(&want[i], &got[i])) {
            CHECK_AT(0, line, "row %ld value %zu: expected %s, got %s", row, i,
                     show(&want[i], wb), show(&got[i], gb));
            return 0;
        }
    }
    return 1;
}

/* Write 'n_rows' rows of 'n_cols' values from 'rows' to 'path'. */
static int
write_rows(const char *path, const sh_value *rows, size_t n_rows, size_t n_cols)
{
    sh_err          err = {0};
    rowfile_writer *w = rowfile_create(path, n_cols, &err);

    if (w == NULL) {
        CHECK_AT(0, __LINE__, "rowfile_create(%s): %s", path, err.msg);
        return -1;
    }
    for (size_t i = 0; i < n_rows; i++) {
        if (rowfile_write(w, rows + i * n_cols, &err) != 0) {
            CHECK_AT(0, __LINE__, "rowfile_write row %zu: %s", i, err.msg);
            rowfile_abort(w);
            return -1;
        }
    }
    if (rowfile_close(w, &err) != 0) {
        CHECK_AT(0, __LINE__, "rowfile_close(%s): %s", path, err.msg);
        return -1;
    }
    return 0;
}

/* Read 'path' back (buffer 'buf_bytes', 0 for the default; section
 * 'section' of a sectioned file, or the whole file when < 0) and compare. */
static void
read_stream_and_compare(const char *path, long section, size_t buf_bytes,
                        const sh_value *rows, size_t n_rows, size_t n_cols,
                        int line)
{
    sh_err          err = {0};
    rowfile_reader *r = section >= 0 ? rowfile_open_section(
                            path, (size_t)section,
                            buf_bytes ? buf_bytes : 1u << 20, &err)
                        : buf_bytes ? rowfile_open_buf(path, buf_bytes, &err)
                                    : rowfile_open(path, &err);
    const sh_value *row;
    size_t          got = 0;
    int             rc;

    if (r == NULL) {
        CHECK_AT(0, line, "rowfile_open(%s): %s", path, err.msg);
        return;
    }
    CHECK_AT(rowfile_cols(r) == n_cols, line,
             "rowfile_cols: expected %zu, got %zu", n_cols, rowfile_cols(r));
    while ((rc = rowfile_next(r, &row, &err)) == 1) {
        if (got < n_rows
            && !check_row(rows + got * n_cols, row, n_cols, (long)got, line))
            break;
        got++;
    }
    CHECK_AT(rc >= 0, line, "rowfile_next failed after %zu rows: %s", got,
             err.msg);
    CHECK_AT(got == n_rows || rc == 1, line, "read %zu rows, expected %zu", got,
             n_rows);
    /* The end stays the end. */
    if (rc == 0)
        CHECK_AT(rowfile_next(r, &row, &err) == 0, line,
                 "rowfile_next after the end did not return 0");
    rowfile_free(r);
}

static void
read_and_compare(const char *path, size_t buf_bytes, const sh_value *rows,
                 size_t n_rows, size_t n_cols, int line)
{
    read_stream_and_compare(path, -1, buf_bytes, rows, n_rows, n_cols, line);
}

static void
test_every_type(void)
{
    static const char bin[] = {'a', '\0', 'b', '\0', '\xff', '\x80', '\n'};
    char              s127[127], s128[128], s300[300];
    double            nan_v = nan(""), negz = -0.0;
    char             *path = path_of("types.rf"), *tmp;

    sh_value rows[][4] = {
        {sh_null(), sh_int(0), sh_float(0.0), sh_str("", 0)},
        {sh_int(63), sh_int(64), sh_int(-1), sh_int(-64)},
        {sh_int(INT64_MAX), sh_int(INT64_MIN), sh_int(1000000007),
         sh_int(-4611686018427387904LL)},
        {sh_float(negz), sh_float(nan_v), sh_float(INFINITY),
         sh_float(-INFINITY)},
        {sh_float(4.9e-324), sh_float(1.7976931348623157e308), sh_float(0.1),
         sh_float(-2.5)},
        {sh_bool(1), sh_bool(0), sh_null(), sh_null()},
        {sh_str(bin, sizeof bin), sh_str("\0", 1), sh_str(s127, 127),
         sh_str(s128, 128)},
        {sh_str(s300, 300), sh_str("x", 1), sh_bool(1), sh_int(5)},
        {sh_date(0), sh_date(-719162), sh_timestamp(INT64_MIN),
         sh_timestamp(1706704496123456LL)},
        {sh_timestamp(-1), sh_date(2932896), sh_null(), sh_timestamp(0)},
    };
    size_t n_rows = sizeof rows / sizeof rows[0];
    sh_err err = {0};

    memset(s127, 'q', sizeof s127);
    memset(s128, '\0', sizeof s128);
    for (size_t i = 0; i < sizeof s300; i++)
        s300[i] = (char)(i * 7);
    tmp = xasprintf("%s.tmp", path);

    /* While writing, only the temporary file exists. */
    rowfile_writer *w = rowfile_create(path, 4, &err);
    CHECK(w != NULL, "rowfile_create: %s", err.msg);
    if (w == NULL)
        goto done;
    for (size_t i = 0; i < n_rows; i++)
        CHECK_INT(0, rowfile_write(w, rows[i], &err));
    CHECK_INT(n_rows, rowfile_rows(w));
    CHECK(th_exists(tmp) && !th_exists(path),
          "before close: %s exists %d (want 1), %s exists %d (want 0)", tmp,
          th_exists(tmp), path, th_exists(path));
    uint64_t bytes = rowfile_bytes(w);
    CHECK_INT(0, rowfile_close(w, &err));
    CHECK(!th_exists(tmp) && th_exists(path),
          "after close: %s exists %d (want 0), %s exists %d (want 1)", tmp,
          th_exists(tmp), path, th_exists(path));
    /* rowfile_bytes counts all but the 9-byte trailer. */
    CHECK_INT(bytes + 9, file_size(path));
    read_and_compare(path, 0, &rows[0][0], n_rows, 4, __LINE__);
    read_and_compare(path, 1, &rows[0][0], n_rows, 4, __LINE__);

done:
    free(path);
    free(tmp);
}

static void
test_compact(void)
{
    /* Small ints and short strings take a tag byte and their bytes. */
    char    *path = path_of("compact.rf");
    sh_value rows[1000][2];
    sh_err   err = {0};

    for (int i = 0; i < 1000; i++) {
        rows[i][0] = sh_int(i % 64);
        rows[i][1] = sh_str("abc", 3);
    }
    if (write_rows(path, &rows[0][0], 1000, 2) == 0) {
        /* header 9 + 1000 * (1 + 4) + trailer 9 */
        CHECK_INT(9 + 1000 * 5 + 9, file_size(path));
        read_and_compare(path, 0, &rows[0][0], 1000, 2, __LINE__);
    }
    (void)err;
    free(path);
}

static void
test_zero_columns_and_empty(void)
{
    char    *p0 = path_of("zero.rf"), *p1 = path_of("empty.rf");
    sh_value none[1];

    if (write_rows(p0, none, 5, 0) == 0)
        read_and_compare(p0, 0, none, 5, 0, __LINE__);
    if (write_rows(p1, none, 0, 3) == 0) {
        CHECK_INT(18, file_size(p1));
        read_and_compare(p1, 0, none, 0, 3, __LINE__);
    }
    free(p0);
    free(p1);
}

/* A string of 'n' bytes derived from 'seed', in a new buffer. */
static char *
pattern(size_t n, unsigned seed)
{
    char *p = xmalloc(n ? n : 1);

    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 131 + seed * 17) ^ (i >> 9));
    return p;
}

static void
test_huge_strings(void)
{
    /* Strings longer than the 1 MiB writer buffer, between small ones. */
    size_t big = (3u << 20) + 17, mid = (1u << 20) + (1u << 19);
    char  *a = pattern(big, 1), *b = pattern(mid, 2), *c = pattern(mid, 3);
    char  *path = path_of("huge.rf");

    sh_value rows[5][2] = {
        {sh_int(1), sh_str("small", 5)},
        {sh_int(2), sh_str(a, big)},
        {sh_str(b, mid), sh_str(c, mid)},
        {sh_int(3), sh_str("", 0)},
        {sh_str(c, 1u << 20), sh_str(b, (1u << 20) - 1)},
    };

    if (write_rows(path, &rows[0][0], 5, 2) == 0) {
        read_and_compare(path, 0, &rows[0][0], 5, 2, __LINE__);
        read_and_compare(path, 4096, &rows[0][0], 5, 2, __LINE__);
    }
    free(a);
    free(b);
    free(c);
    free(path);
}

static void
test_many_rows(void)
{
    /* Rows of varying size cross every kind of buffer boundary. */
    size_t    n = 200000, cols = 4;
    sh_value *rows = xmalloc(n * cols * sizeof *rows);
    char     *text = pattern(5000, 9);
    char     *path = path_of("many.rf");
    uint64_t  x = 88172645463325252ull;

    for (size_t i = 0; i < n; i++) {
        sh_value *r = rows + i * cols;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        r[0] = sh_int((int64_t)(x >> (x & 63)) * ((x & 64) ? -1 : 1));
        r[1] = (x & 3) == 0 ? sh_null() : sh_float((double)x / 7.0);
        r[2] = sh_str(text + (x % 1000),
                      (x >> 20) % ((x & 0xf000) == 0 ? 3000 : 40));
        r[3] = sh_bool((int)(x >> 40) & 1);
    }
    if (write_rows(path, rows, n, cols) == 0) {
        read_and_compare(path, 0, rows, n, cols, __LINE__);
        read_and_compare(path, 4096, rows, n, cols, __LINE__);
        read_and_compare(path, 10007, rows, n, cols, __LINE__);
    }
    free(rows);
    free(text);
    free(path);
}

/* Read 'path' to the end; return the first error code (or 0), keeping the
 * message in 'err'. */
static int
read_all(const char *path, sh_err *err, size_t *n_rows)
{
    rowfile_reader *r = rowfile_open_buf(path, 4096, err);
    const sh_value *row;
    int             rc;

    *n_rows = 0;
    if (r == NULL)
        return err->code;
    while ((rc = rowfile_next(r, &row, err)) == 1)
        (*n_rows)++;
    rowfile_free(r);
    return rc;
}

static void
copy_prefix(const char *from, const char *to, long long n)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int   c;

    for (long long i = 0; in && out && i < n && (c = getc(in)) != EOF; i++)
        putc(c, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static void
test_truncated(void)
{
    /* Every cut of a small file is an error naming it, never a short read. */
    char *path = path_of("whole.rf"), *cut = path_of("cut.rf");
    char  big[300];

    sh_value rows[3][3] = {
        {sh_int(1), sh_str("alpha", 5), sh_float(1.5)},
        {sh_int(-100000), sh_str(big, sizeof big), sh_null()},
        {sh_bool(1), sh_float(2.0), sh_int(7)},
    };
    long long size;
    int       wrong = 0;

    memset(big, 'z', sizeof big);
    if (write_rows(path, &rows[0][0], 3, 3) != 0)
        goto done;
    size = file_size(path);
    for (long long n = 0; n < size; n++) {
        sh_err err = {0};
        size_t got;
        int    rc;

        copy_prefix(path, cut, n);
        rc = read_all(cut, &err, &got);
        if (rc != SH_EDATA || strstr(err.msg, cut) == NULL) {
            if (wrong++ < 5)
                CHECK_AT(
                    0, __LINE__,
                    "file cut to %lld of %lld bytes: got code %d after %zu "
                    "rows (%s), expected SH_EDATA naming the file",
                    n, size, rc, got, err.msg);
        }
    }
    CHECK(wrong == 0, "%d of %lld cuts were not detected", wrong, size);

    /* Bytes after the trailer. */
    {
        sh_err err = {0};
        size_t got;
        FILE  *f = fopen(path, "ab");

        if (f) {
            fputc(0x40, f);
            fclose(f);
        }
        CHECK_INT(SH_EDATA, read_all(path, &err, &got));
        CHECK(strstr(err.msg, "after the trailer") != NULL, "message: %s",
              err.msg);
    }
done:
    free(path);
    free(cut);
}

/* Overwrite the byte at 'off' of 'path' with 'byte'. */
static void
poke(const char *path, long off, int byte)
{
    FILE *f = fopen(path, "r+b");

    if (f == NULL)
        return;
    fseek(f, off, SEEK_SET);
    fputc(byte, f);
    fclose(f);
}

static void
test_corrupt(void)
{
    char    *path = path_of("bad.rf");
    sh_value rows[2][2] = {{sh_int(1), sh_int(2)}, {sh_int(3), sh_int(4)}};
    sh_err   err = {0};
    size_t   got;

    /* An unknown tag (0x10) in row 2. Layout: 9 header, 2 per row. */
    write_rows(path, &rows[0][0], 2, 2);
    poke(path, 9 + 2, 0x10);
    CHECK_INT(SH_EDATA, read_all(path, &err, &got));
    CHECK(strstr(err.msg, "corrupt") && strstr(err.msg, path), "message: %s",
          err.msg);
    CHECK_INT(1, got);

    /* A string length beyond the end of the file. */
    write_rows(path, &rows[0][0], 2, 2);
    poke(path, 9, 0x05);
    poke(path, 10, 0x7f);
    CHECK_INT(SH_EDATA, read_all(path, &err, &got));

    /* A trailer that counts another number of rows. */
    write_rows(path, &rows[0][0], 2, 2);
    poke(path, 9 + 4 + 1, 3);
    CHECK_INT(SH_EDATA, read_all(path, &err, &got));
    CHECK(strstr(err.msg, "trailer") != NULL, "message: %s", err.msg);

    /* A varint of more than 64 bits: INT64_MIN is 9 bytes of 0xff and
     * 0x01 after the tag; make the last 0x03. */
    {
        sh_value m[1] = {sh_int(INT64_MIN)};

        write_rows(path, m, 1, 1);
        poke(path, 9 + 10, 0x03);
        CHECK_INT(SH_EDATA, read_all(path, &err, &got));
        CHECK(strstr(err.msg, "varint") != NULL, "message: %s", err.msg);
    }

    /* Not a row file at all; another version. */
    write_rows(path, &rows[0][0], 2, 2);
    poke(path, 0, 'X');
    CHECK(rowfile_open(path, &err) == NULL && err.code == SH_EDATA,
          "bad magic: code %d (%s)", err.code, err.msg);
    write_rows(path, &rows[0][0], 2, 2);
    poke(path, 4, 9);
    CHECK(rowfile_open(path, &err) == NULL && err.code == SH_EDATA
              && strstr(err.msg, "version") != NULL,
          "bad version: code %d (%s)", err.code, err.msg);
    free(path);
}

static void
test_io_errors(void)
{
    char           *path = path_of("aborted.rf"), *tmp;
    sh_err          err = {0};
    rowfile_writer *w;
    sh_value        v = sh_int(1);

    w = rowfile_create("/nonexistent-dir/x.rf", 1, &err);
    CHECK(w == NULL && err.code == SH_EIO
              && strstr(err.msg, "/nonexistent-dir/x.rf.tmp") != NULL,
          "create in a missing directory: %p code %d (%s)", (void *)w, err.code,
          err.msg);
    CHECK(rowfile_open("/nonexistent-dir/x.rf", &err) == NULL
              && err.code == SH_EIO && strstr(err.msg, "x.rf") != NULL,
          "open a missing file: code %d (%s)", err.code, err.msg);

    /* Abort removes the temporary file and leaves no final one. */
    tmp = xasprintf("%s.tmp", path);
    w = rowfile_create(path, 1, &err);
    if (w != NULL) {
        rowfile_write(w, &v, &err);
        rowfile_abort(w);
    }
    CHECK(!th_exists(tmp) && !th_exists(path), "after abort: tmp %d, final %d",
          th_exists(tmp), th_exists(path));
    rowfile_abort(NULL);
    free(tmp);
    free(path);
}

/* ---- sectioned files ------------------------------------------------- */

#define N_SEC 4

/*
 * Rows dealt among N_SEC sections (section 2 stays empty) in an order that
 * interleaves them, with strings past the 1 MiB buffers, written to one
 * sectioned file; each section must read back as its rows in order,
 * whatever the read buffer. Returns 0 when the file was written.
 */
static int
write_sections(const char *path, sh_value **want, size_t *n_want)
{
    size_t            n = 60000, cols = 3, i;
    char             *text = pattern(3u << 20, 5);
    sh_err            err = {0};
    rowfile_sections *s = rowfile_sections_create(path, cols, N_SEC, &err);
    uint64_t          x = 88172645463325252ull;
    int               rc = 0;

    for (i = 0; i < N_SEC; i++) {
        want[i] = xmalloc(n * cols * sizeof *want[i]);
        n_want[i] = 0;
    }
    if (s == NULL) {
        CHECK_AT(0, __LINE__, "rowfile_sections_create(%s): %s", path, err.msg);
        g_sect_text = text;
        return -1;
    }
    for (i = 0; i < n && rc == 0; i++) {
        size_t    sec, len;
        sh_value *r;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sec = (size_t)(x % 3);
        sec = sec == 2 ? 3 : sec;
        len = i % 20000 == 7 ? (3u << 20) - (i % 5) : (size_t)(x >> 50) % 90;
        r = want[sec] + n_want[sec]++ * cols;
        r[0] = sh_int((int64_t)i);
        r[1] = sh_str(text + (len > 1000 ? 0 : x % 1000), len);
        r[2] = (x & 7) == 0 ? sh_null() : sh_float((double)x / 3.0);
        rc = rowfile_write(rowfile_sections_writer(s, sec), r, &err);
    }
    CHECK(rc == 0, "rowfile_write: %s", err.msg);
    /* 'want' points into the pattern: keep it until the rows are read
     * back (test_sections frees it). */
    g_sect_text = text;
    if (rc != 0) {
        rowfile_sections_abort(s);
        return -1;
    }
    rc = rowfile_sections_close(s, &err);
    CHECK(rc == 0, "rowfile_sections_close: %s", err.msg);
    return rc;
}

static void
test_sections(void)
{
    char     *path = path_of("sect.rf"), *tmp = xasprintf("%s.tmp", path);
    sh_value *want[N_SEC];
    size_t    n_want[N_SEC], i;
    sh_err    err = {0};

    if (write_sections(path, want, n_want) == 0) {
        CHECK(n_want[2] == 0 && n_want[0] > 0 && n_want[3] > 0,
              "sections hold %zu %zu %zu %zu rows", n_want[0], n_want[1],
              n_want[2], n_want[3]);
        CHECK(file_size(tmp) < 0, "the temporary file %s is left", tmp);
        for (i = 0; i < N_SEC; i++) {
            read_stream_and_compare(path, (long)i, 0, want[i], n_want[i], 3,
                                    __LINE__);
            read_stream_and_compare(path, (long)i, 4096, want[i], n_want[i], 3,
                                    __LINE__);
        }
        /* The whole file is not a plain row file; no section 4. */
        CHECK(rowfile_open(path, &err) == NULL && err.code == SH_EDATA
                  && strstr(err.msg, "sectioned") != NULL,
              "rowfile_open of a sectioned file: %s", err.msg);
        CHECK(rowfile_open_section(path, N_SEC, 4096, &err) == NULL
                  && err.code == SH_EINVAL,
              "section %d of %d: %s", N_SEC, N_SEC, err.msg);
    }
    for (i = 0; i < N_SEC; i++)
        free(want[i]);
    free(g_sect_text);
    g_sect_text = NULL;
    free(path);
    free(tmp);
}

/* Read section 'sec' of 'path' to the end; the first error code or 0. */
static int
read_section(const char *path, size_t sec, sh_err *err)
{
    rowfile_reader *r = rowfile_open_section(path, sec, 4096, err);
    const sh_value *row;
    int             rc;

    if (r == NULL)
        return err->code;
    while ((rc = rowfile_next(r, &row, err)) == 1)
        ;
    rowfile_free(r);
    return rc;
}

static void
test_sections_damaged(void)
{
    /* Every cut of a small sectioned file, and a section plain files
     * cannot be opened as, is an error naming the file. */
    char             *path = path_of("sect-small.rf"), *cut = path_of("c.rf");
    char             *plain = path_of("plain.rf");
    sh_value          row[2] = {sh_int(5), sh_str("five", 4)};
    sh_err            err = {0};
    rowfile_sections *s = rowfile_sections_create(path, 2, 3, &err);
    long long         size;
    int               wrong = 0;

    if (s == NULL) {
        CHECK_AT(0, __LINE__, "rowfile_sections_create: %s", err.msg);
        goto done;
    }
    for (int i = 0; i < 5; i++)
        (void)rowfile_write(rowfile_sections_writer(s, (size_t)i % 3), row,
                            &err);
    if (rowfile_sections_close(s, &err) != 0) {
        CHECK_AT(0, __LINE__, "rowfile_sections_close: %s", err.msg);
        goto done;
    }
    CHECK_INT(0, read_section(path, 1, &err));
    size = file_size(path);
    for (long long n = 0; n < size; n++) {
        copy_prefix(path, cut, n);
        for (size_t sec = 0; sec < 3; sec++) {
            int rc = read_section(cut, sec, &err);

            if (rc != SH_EDATA || strstr(err.msg, cut) == NULL) {
                if (wrong++ < 5)
                    CHECK_AT(0, __LINE__,
                             "cut to %lld of %lld bytes, section %zu: code %d "
                             "(%s), expected SH_EDATA naming the file",
                             n, size, sec, rc, err.msg);
            }
        }
    }
    CHECK(wrong == 0, "%d cuts were not detected", wrong);
    /* A plain row file has no sections. */
    if (write_rows(plain, row, 1, 2) == 0) {
        CHECK_INT(SH_EDATA, read_section(plain, 0, &err));
    }
    /* An aborted file leaves nothing. */
    s = rowfile_sections_create(cut, 2, 2, &err);
    if (s != NULL) {
        char *tmp = xasprintf("%s.tmp", cut);

        unlink(cut);
        (void)rowfile_write(rowfile_sections_writer(s, 1), row, &err);
        rowfile_sections_abort(s);
        CHECK(file_size(tmp) < 0 && file_size(cut) < 0, "abort left %s or %s",
              tmp, cut);
        free(tmp);
    }
done:
    free(path);
    free(cut);
    free(plain);
}

void
test_rowfile_register(void)
{
    CU_pSuite s = CU_add_suite("rowfile", suite_init, suite_cleanup);

    CU_add_test(s, "round trip of every type", test_every_type);
    CU_add_test(s, "compact encoding", test_compact);
    CU_add_test(s, "zero columns, zero rows", test_zero_columns_and_empty);
    CU_add_test(s, "strings larger than the buffers", test_huge_strings);
    CU_add_test(s, "many rows across buffer boundaries", test_many_rows);
    CU_add_test(s, "every truncation detected", test_truncated);
    CU_add_test(s, "corrupt files detected", test_corrupt);
    CU_add_test(s, "create, open and abort errors", test_io_errors);
    CU_add_test(s, "sectioned files: every section in order", test_sections);
    CU_add_test(s, "sectioned files: cuts and misuse detected",
                test_sections_damaged);
}
