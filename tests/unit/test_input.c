/*
 * test_input.c - unit tests of executor/input (one partition read as typed
 * rows, every format) and of what executor/infer gives it (the columns,
 * their types and the partitions of csv, lines, jsonl, plain and gzip).
 *
 * Plans are made by hand (files, format, dialect, partition size) and
 * finished by plan_scan_input, as plan_build does. The main property: for
 * every partition size from 1 byte up, reading every partition in turn
 * gives exactly the rows and line numbers of one partition over the whole
 * file; and a gzip copy of a file gives the same rows as the file. Rows are
 * compared in a text form, one a line: "L<line>:v|v|...", values written as
 * i<int>, f<float>, b<bool>, s[<bytes>] or - for null.
 */
#include <CUnit/Basic.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../executor/input.h"
#include "../../executor/input_int.h"
#include "../../executor/plan.h"
#include "../../executor/plan_int.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

/* The test hook of csv.c: the block size of the readers made after it. */
void csv_set_block_bytes_for_test(size_t block_bytes);

static char g_dir[256]; /* the current test's temporary directory */

/* ---- files -------------------------------------------------------------- */

/* Remove the last test's directory and make a fresh one. */
static void
fresh_dir(void)
{
    th_fresh_dir(g_dir, sizeof g_dir, "/tmp", "sheaf-input");
}

/* Suite cleanup: remove the last directory. */
static int
suite_clean(void)
{
    th_rm_tree(g_dir);
    g_dir[0] = '\0';
    return 0;
}

/* Write 'n' bytes to 'name' in the test directory. */
static void
put_file(const char *name, const void *data, size_t n)
{
    char *path = xasprintf("%s/%s", g_dir, name);

    CU_ASSERT_FATAL(th_write_file(path, data, n) == 0);
    free(path);
}

/*
 * Write 'n' bytes gzip-compressed to 'name', as 'members' concatenated
 * gzip members (the data cut into that many pieces).
 */
static void
put_gzip(const char *name, const void *data, size_t n, int members)
{
    char *path = xasprintf("%s/%s", g_dir, name);

    CU_ASSERT_FATAL(th_write_gzip(path, data, n, members) == 0);
    free(path);
}

/* ---- plans -------------------------------------------------------------- */

/* How a test plan reads its files. */
typedef struct spec_in {
    plan_format fmt;
    int         gzip;
    int         header; /* csv: the first record names the columns */
    int         skip;   /* on_error skip */
    uint64_t    part_bytes;
} spec_in;

/*
 * A plan over the files 'names' (NULL-terminated, in the test directory),
 * finished by plan_scan_input. Returns NULL with 'err' set on failure.
 */
static plan *
make_plan(const char *const *names, const spec_in *in, sh_err *err)
{
    plan  *p = xcalloc(1, sizeof *p);
    size_t n = 0, i;

    sh_err_clear(err);
    while (names[n] != NULL)
        n++;
    p->in_format = in->fmt;
    p->in_gzip = in->gzip;
    p->dialect.delim = ',';
    p->dialect.quote = '"';
    p->dialect.header = in->header;
    p->on_error_skip = in->skip;
    p->partition_bytes = in->part_bytes ? in->part_bytes : 64u << 20;
    p->files = xcalloc(n ? n : 1, sizeof *p->files);
    p->n_files = n;
    for (i = 0; i < n; i++) {
        p->files[i].path = xasprintf("%s/%s", g_dir, names[i]);
        p->files[i].rel = xstrdup(names[i]);
    }
    if (plan_scan_input(p, err) != 0) {
        plan_free(p);
        return NULL;
    }
    p->out_schema = p->in_schema;
    return p;
}

/* "a:int,b:string" for the plan's input schema. */
static char *
schema_text(const plan *p)
{
    strbuf sb = {0};
    size_t i;

    sb_puts(&sb, "");
    for (i = 0; i < p->in_schema->n; i++)
        sb_printf(&sb, "%s%s:%s", i ? "," : "", p->in_schema->names[i],
                  sh_type_name(p->in_schema->types[i]));
    return sb.data;
}

/* Set column 'name' of the plan's schema to type 't' (an override). */
static void
set_type(plan *p, const char *name, sh_type t)
{
    long c = schema_find(p->in_schema, name);

    CU_ASSERT_FATAL(c >= 0);
    p->in_schema->types[c] = t;
}

/* Append the text form of one row to 'sb'. */
static void
row_text(strbuf *sb, uint64_t line, const sh_value *row, size_t n)
{
    size_t i;

    sb_printf(sb, "L%llu:", (unsigned long long)line);
    for (i = 0; i < n; i++) {
        const sh_value *v = &row[i];

        if (i > 0)
            sb_putc(sb, '|');
        switch (v->type) {
        case SH_NULL:
            sb_putc(sb, '-');
            break;
        case SH_INT:
            sb_printf(sb, "i%lld", (long long)v->u.i);
            break;
        case SH_FLOAT:
            sb_printf(sb, "f%.17g", v->u.f);
            break;
        case SH_BOOL:
            sb_printf(sb, "b%d", v->u.b);
            break;
        case SH_DATE:
        case SH_TIMESTAMP:
            sb_printf(sb, "%c%lld", v->type == SH_DATE ? 'd' : 't',
                      (long long)v->u.i);
            break;
        case SH_STRING:
            sb_puts(sb, "s[");
            for (size_t k = 0; k < v->u.s.len; k++) {
                unsigned char c = (unsigned char)v->u.s.ptr[k];

                if (c < 0x20 || c == '\\' || c == ']' || c >= 0x7F)
                    sb_printf(sb, "\\x%02X", c);
                else
                    sb_putc(sb, (char)c);
            }
            sb_putc(sb, ']');
            break;
        }
    }
    sb_putc(sb, '\n');
}

/*
 * Read partitions [first, last) of 'p' into one text (rows, then, when an
 * error stops a partition, "ERROR <message>"; then "skipped N" if any were
 * skipped). The caller frees it.
 */
static char *
read_parts(const plan *p, size_t first, size_t last)
{
    strbuf   sb = {0};
    uint64_t skipped = 0;
    size_t   k;

    sb_puts(&sb, "");
    for (k = first; k < last; k++) {
        sh_err          err;
        input_reader   *r = input_open(p, k, NULL, &err);
        const sh_value *row;
        int             rc;

        if (r == NULL) {
            sb_printf(&sb, "OPEN ERROR %s\n", err.msg);
            break;
        }
        while ((rc = input_next(r, &row, &err)) == 1)
            row_text(&sb, input_line(r), row, p->in_schema->n);
        skipped += input_skipped(r);
        input_free(r);
        if (rc < 0) {
            sb_printf(&sb, "ERROR %s\n", err.msg);
            break;
        }
    }
    if (skipped)
        sb_printf(&sb, "skipped %llu\n", (unsigned long long)skipped);
    return sb.data;
}

/* All partitions of 'p'. */
static char *
read_all(const plan *p)
{
    return read_parts(p, 0, p->n_parts);
}

/*
 * The property: with every partition size from 1 to the file's size, the
 * partitions' rows are 'expected' (the rows of one partition). Types are
 * forced to 'types' (a NULL-terminated list of name, type pairs as
 * "name=int") after each scan, so the plans agree.
 */
static void
check_every_size(const char *const *names, const spec_in *base,
                 uint64_t max_bytes, const char *expected,
                 const char *const *types)
{
    uint64_t pb;

    /* Small read blocks: cheap to allocate thousands of times (valgrind),
     * and the buffer's end falls inside records. */
    csv_set_block_bytes_for_test(64);
    for (pb = 1; pb <= max_bytes + 1; pb++) {
        spec_in in = *base;
        sh_err  err;
        plan   *p;
        char   *got;

        in.part_bytes = pb;
        p = make_plan(names, &in, &err);
        CHECK(p != NULL, "part size %llu: %s", (unsigned long long)pb, err.msg);
        if (p == NULL)
            break;
        for (size_t i = 0; types && types[i]; i++) {
            const char *eq = strchr(types[i], '=');
            char       *name = xstrndup(types[i], (size_t)(eq - types[i]));
            sh_type     t;

            CU_ASSERT_FATAL(sh_type_parse(eq + 1, &t) == 0);
            set_type(p, name, t);
            free(name);
        }
        got = read_all(p);
        CHECK(strcmp(expected, got) == 0,
              "part size %llu (%zu parts):\n--- expected\n%s--- got\n%s",
              (unsigned long long)pb, p->n_parts, expected, got);
        free(got);
        plan_free(p);
    }
    csv_set_block_bytes_for_test(0);
}

/* ---- csv ---------------------------------------------------------------- */

static const char csv_data[] = "\xEF\xBB\xBFyear,title,score,ok\r\n"
                               "2001,\"a, b\",1.5,true\n"
                               "2002,\"multi\nline\",,false\r\n"
                               "\n"
                               ",\"\",2,\n"
                               "2004,plain,-3e2,TRUE\n"
                               "2005,\"q\"\"uote\",0.25,false";

static const char csv_rows[] = "L2:i2001|s[a, b]|f1.5|b1\n"
                               "L3:i2002|s[multi\\x0Aline]|-|b0\n"
                               "L6:-|s[]|f2|-\n"
                               "L7:i2004|s[plain]|f-300|b1\n"
                               "L8:i2005|s[q\"uote]|f0.25|b0\n";

/* Types and rows of a CSV file, one partition. */
static void
test_csv_basic(void)
{
    const char *names[] = {"a.csv", NULL};
    spec_in     in = {FMT_CSV, 0, 1, 0, 0};
    sh_err      err;
    plan       *p;
    char       *s;

    fresh_dir();
    put_file("a.csv", csv_data, sizeof csv_data - 1);
    p = make_plan(names, &in, &err);
    CHECK(p != NULL, "plan: %s", err.msg);
    if (p == NULL)
        return;
    s = schema_text(p);
    CHECK_STR("year:int,title:string,score:float,ok:bool", s);
    free(s);
    CHECK(p->n_parts == 1, "%zu parts", p->n_parts);
    s = read_all(p);
    CHECK_STR(csv_rows, s);
    free(s);
    plan_free(p);
}

/* CSV cut at every partition size gives the same rows. */
static void
test_csv_every_size(void)
{
    const char *names[] = {"a.csv", NULL};
    spec_in     in = {FMT_CSV, 0, 1, 0, 0};

    fresh_dir();
    put_file("a.csv", csv_data, sizeof csv_data - 1);
    check_every_size(names, &in, sizeof csv_data, csv_rows, NULL);
}

/* Bad values: the exact message; with skip, counted. */
static void
test_csv_errors(void)
{
    static const char data[] = "year,name\n1,a\n2,b\nabc,c\n4\n5,e\n";
    const char       *names[] = {"a.csv", NULL};
    spec_in           in = {FMT_CSV, 0, 1, 0, 0};
    sh_err            err;
    plan             *p;
    char             *s;

    fresh_dir();
    put_file("a.csv", data, sizeof data - 1);
    p = make_plan(names, &in, &err);
    CHECK(p == NULL && err.code == SH_EDATA
              && strstr(err.msg, "'a.csv' line 5 has 1 fields, expected 2"),
          "plan: %s", p ? "(made)" : err.msg);
    plan_free(p);

    in.skip = 1;
    p = make_plan(names, &in, &err);
    CHECK(p != NULL, "plan: %s", err.msg);
    if (p == NULL)
        return;
    set_type(p, "year", SH_INT);
    s = read_all(p);
    CHECK_STR("L2:i1|s[a]\nL3:i2|s[b]\nL6:i5|s[e]\nskipped 2\n", s);
    free(s);

    p->on_error_skip = 0;
    s = read_all(p);
    CHECK_STR("L2:i1|s[a]\nL3:i2|s[b]\n"
              "ERROR partition 0 (file a.csv, bytes 10-30), input: cannot "
              "parse 'abc' as int in column year, line 4\n",
              s);
    free(s);
    plan_free(p);
}

/* A plan of one file, checked to be made; NULL (and a failed check) if not. */
static plan *
plan_of(const char *name, const spec_in *in)
{
    const char *names[] = {name, NULL};
    sh_err      err;
    plan       *p = make_plan(names, in, &err);

    CHECK(p != NULL, "plan of %s: %s", name, err.msg);
    return p;
}

/* The schema and rows of a plan of one file, as one text. */
static char *
schema_and_rows(const char *name, const spec_in *in)
{
    plan *p = plan_of(name, in);
    char *sc, *rows, *all;

    if (p == NULL)
        return xstrdup("(no plan)");
    sc = schema_text(p);
    rows = read_all(p);
    all = xasprintf("%s\n%s", sc, rows);
    free(sc);
    free(rows);
    plan_free(p);
    return all;
}

/* CSV with gzip: the header is skipped, members concatenate, one
 * partition per file, the same rows as the plain file. */
static void
test_csv_gzip(void)
{
    spec_in in = {FMT_CSV, 0, 1, 0, 7};
    char   *plain, *gz;
    plan   *p;

    fresh_dir();
    put_file("a.csv", csv_data, sizeof csv_data - 1);
    plain = schema_and_rows("a.csv", &in);
    in.gzip = 1;
    for (int members = 1; members <= 3; members++) {
        put_gzip("a.csv.gz", csv_data, sizeof csv_data - 1, members);
        gz = schema_and_rows("a.csv.gz", &in);
        CHECK(strcmp(plain, gz) == 0, "%d members:\n--- plain\n%s--- gzip\n%s",
              members, plain, gz);
        free(gz);
    }
    p = plan_of("a.csv.gz", &in);
    if (p != NULL) {
        CHECK(p->n_parts == 1 && p->parts[0].start == 0
                  && p->parts[0].end == p->files[0].size_bytes,
              "%zu parts", p->n_parts);
        plan_free(p);
    }
    /* Small read blocks put the buffer's end everywhere. */
    csv_set_block_bytes_for_test(3);
    gz = schema_and_rows("a.csv.gz", &in);
    csv_set_block_bytes_for_test(0);
    CHECK(strcmp(plain, gz) == 0, "small blocks:\n--- plain\n%s--- gzip\n%s",
          plain, gz);
    free(gz);
    free(plain);
}

/* Several files: partitions in file order, at every size; headers must
 * agree. */
static void
test_csv_files(void)
{
    static const char a[] = "x,y\n1,a\n2,b\n", b[] = "x,y\n3,c\n\n4,d";
    const char       *names[] = {"a.csv", "b.csv", NULL};
    const char       *gz_names[] = {"a.csv.gz", "b.csv.gz", NULL};
    spec_in           in = {FMT_CSV, 0, 1, 0, 0};
    const char       *rows = "L2:i1|s[a]\nL3:i2|s[b]\nL2:i3|s[c]\nL4:i4|s[d]\n";
    sh_err            err;
    plan             *p;
    char             *got;

    fresh_dir();
    put_file("a.csv", a, sizeof a - 1);
    put_file("b.csv", b, sizeof b - 1);
    check_every_size(names, &in, sizeof b, rows, NULL);
    put_gzip("a.csv.gz", a, sizeof a - 1, 1);
    put_gzip("b.csv.gz", b, sizeof b - 1, 2);
    in.gzip = 1;
    p = make_plan(gz_names, &in, &err);
    CHECK(p != NULL, "plan: %s", err.msg);
    if (p != NULL) {
        CHECK(p->n_parts == 2 && p->parts[1].file == 1, "%zu parts",
              p->n_parts);
        got = read_all(p);
        CHECK_STR(rows, got);
        free(got);
        plan_free(p);
    }
    put_gzip("b.csv.gz", "x,z\n1,2\n", 8, 1);
    p = make_plan(gz_names, &in, &err);
    CHECK(p == NULL && err.code == SH_EINVAL
              && strstr(err.msg, "have different headers"),
          "plan: %s", p ? "(made)" : err.msg);
    plan_free(p);
}

/* ---- lines -------------------------------------------------------------- */

static const char lines_data[] = "\xEF\xBB\xBF"
                                 "first line\r\n"
                                 "\n"
                                 "  spaced, \"quoted\"\n"
                                 "\r\n"
                                 "caf\xC3\xA9\tx\n"
                                 "last\n";

static const char lines_rows[] = "L1:s[first line]\n"
                                 "L2:s[]\n"
                                 "L3:s[  spaced, \"quoted\"]\n"
                                 "L4:s[]\n"
                                 "L5:s[caf\\xC3\\xA9\\x09x]\n"
                                 "L6:s[last]\n";

/* Lines: one column, line ends removed, empty lines kept, at every
 * partition size; the same through gzip. */
static void
test_lines(void)
{
    const char *names[] = {"a.txt", NULL};
    spec_in     in = {FMT_LINES, 0, 0, 0, 0};
    char       *got, *exp;

    fresh_dir();
    put_file("a.txt", lines_data, sizeof lines_data - 1);
    exp = xasprintf("line:string\n%s", lines_rows);
    got = schema_and_rows("a.txt", &in);
    CHECK_STR(exp, got);
    free(got);
    check_every_size(names, &in, sizeof lines_data, lines_rows, NULL);

    in.gzip = 1;
    put_gzip("a.txt.gz", lines_data, sizeof lines_data - 1, 2);
    got = schema_and_rows("a.txt.gz", &in);
    CHECK_STR(exp, got);
    free(got);
    free(exp);

    /* No final line end; a CR at the very end is dropped. */
    in.gzip = 0;
    put_file("b.txt", "a\nb\r", 4);
    got = schema_and_rows("b.txt", &in);
    CHECK_STR("line:string\nL1:s[a]\nL2:s[b]\n", got);
    free(got);
    /* Empty files: the schema still, no rows. */
    put_file("c.txt", "", 0);
    got = schema_and_rows("c.txt", &in);
    CHECK_STR("line:string\n", got);
    free(got);
    put_gzip("c.txt.gz", "", 0, 1);
    in.gzip = 1;
    got = schema_and_rows("c.txt.gz", &in);
    CHECK_STR("line:string\n", got);
    free(got);
}

/* ---- jsonl -------------------------------------------------------------- */

static const char jsonl_data[] =
    "{\"id\": 1, \"name\": \"a\\\"b\", \"score\": 1, \"ok\": true}\n"
    "\n"
    "  {\"id\":2,\"score\":2.5,\"tags\":[1,{\"x\":\"]\"}],\"ok\":false}  \r\n"
    "{\"name\":\"caf\\u00e9 \\ud83d\\ude00 \\ud800!\",\"id\":-3,"
    "\"extra\":{\"k\":null},\"score\":-1e2}\n"
    "   \n"
    "{\"id\":null,\"name\":\"\",\"ok\":null,\"score\":0,\"tags\":\"t\\n\"}\n"
    "{}\n";

static const char jsonl_rows[] =
    "L1:i1|s[a\"b]|f1|b1|-|-\n"
    "L3:i2|-|f2.5|b0|s[[1,{\"x\":\"\\x5D\"}\\x5D]|-\n"
    "L4:i-3|s[caf\\xC3\\xA9 \\xF0\\x9F\\x98\\x80 \\xEF\\xBF\\xBD!]|f-100|-|-|"
    "s[{\"k\":null}]\n"
    "L6:-|s[]|f0|-|s[t\\x0A]|-\n"
    "L7:-|-|-|-|-|-\n";

/* jsonl: keys in order of first appearance, types from JSON types, blank
 * lines skipped, escapes, nested values as text; at every partition size;
 * the same through gzip. */
static void
test_jsonl(void)
{
    const char *names[] = {"a.jsonl", NULL};
    spec_in     in = {FMT_JSONL, 0, 0, 0, 0};
    char       *got, *exp;

    fresh_dir();
    put_file("a.jsonl", jsonl_data, sizeof jsonl_data - 1);
    exp = xasprintf("id:int,name:string,score:float,ok:bool,tags:string,"
                    "extra:string\n%s",
                    jsonl_rows);
    got = schema_and_rows("a.jsonl", &in);
    CHECK_STR(exp, got);
    free(got);
    check_every_size(names, &in, sizeof jsonl_data, jsonl_rows, NULL);
    in.gzip = 1;
    for (int members = 1; members <= 4; members += 3) {
        put_gzip("a.jsonl.gz", jsonl_data, sizeof jsonl_data - 1, members);
        got = schema_and_rows("a.jsonl.gz", &in);
        CHECK_STR(exp, got);
        free(got);
    }
    free(exp);
}

/* jsonl over several files: the union of their keys; types over all the
 * samples. */
static void
test_jsonl_files(void)
{
    static const char a[] = "{\"a\":1,\"b\":\"x\"}\n{\"a\":2}\n";
    static const char b[] = "{\"c\":true,\"a\":3.5}\n\n{\"b\":null,\"d\":7}\n";
    const char       *names[] = {"a.jsonl", "b.jsonl", NULL};
    spec_in           in = {FMT_JSONL, 0, 0, 0, 0};
    sh_err            err;
    plan             *p;
    char             *got;
    const char       *rows = "L1:f1|s[x]|-|-\nL2:f2|-|-|-\nL1:f3.5|-|b1|-\n"
                             "L3:-|-|-|i7\n";

    fresh_dir();
    put_file("a.jsonl", a, sizeof a - 1);
    put_file("b.jsonl", b, sizeof b - 1);
    p = make_plan(names, &in, &err);
    CHECK(p != NULL, "plan: %s", err.msg);
    if (p == NULL)
        return;
    got = schema_text(p);
    CHECK_STR("a:float,b:string,c:bool,d:int", got);
    free(got);
    got = read_all(p);
    CHECK_STR(rows, got);
    free(got);
    plan_free(p);
    check_every_size(names, &in, sizeof b, rows, NULL);
}

/* jsonl errors: the exact messages, with line numbers; skip counts. */
static void
test_jsonl_errors(void)
{
    static const char data[] = "{\"year\": 2001, \"t\": 1.5}\n"
                               "{\"year\": 2002, \"t\": 2}\n"
                               "[1, 2]\n"
                               "{\"year\": \"abc\", \"t\": 3}\n"
                               "{\"year\": 2.5, \"t\": 3}\n"
                               "{\"year\": 2005, \"t\": \"4.5\"}\n"
                               "{\"year\": 2006, \"t\": 4} x\n"
                               "{\"year\": 2007, \"t\": true}\n"
                               "{\"year\": 2008 \"t\": 1}\n"
                               "{\"year\": 2009, \"t\": 9}\n";
    spec_in           in = {FMT_JSONL, 0, 0, 0, 0};
    sh_err            err;
    plan             *p;
    char             *got;
    const char       *names[] = {"a.jsonl", NULL};

    fresh_dir();
    put_file("a.jsonl", data, sizeof data - 1);
    p = make_plan(names, &in, &err);
    CHECK(p == NULL && err.code == SH_EDATA
              && strcmp(err.msg, "'a.jsonl' line 3 is not a JSON object: "
                                 "expected '{' at byte 1")
                     == 0,
          "plan: %s", p ? "(made)" : err.msg);
    plan_free(p);

    in.skip = 1;
    p = make_plan(names, &in, &err);
    CHECK(p != NULL, "plan: %s", err.msg);
    if (p == NULL)
        return;
    got = schema_text(p);
    CHECK_STR("year:string,t:string", got); /* "abc", true: strings */
    free(got);
    set_type(p, "year", SH_INT);
    set_type(p, "t", SH_FLOAT);
    got = read_all(p);
    CHECK_STR("L1:i2001|f1.5\nL2:i2002|f2\nL6:i2005|f4.5\nL10:i2009|f9\n"
              "skipped 6\n",
              got);
    free(got);

    p->on_error_skip = 0;
    p->parts[0].start = 48; /* line 3, as a cut would make it */
    p->parts[0].line = 3;
    got = read_parts(p, 0, 1);
    CHECK_STR("ERROR partition 0 (file a.jsonl, bytes 48-224), input: line 3 "
              "is not a JSON object: expected '{' at byte 1 ('[1, 2]')\n",
              got);
    free(got);
    p->parts[0].start = 55;
    p->parts[0].line = 4;
    got = read_parts(p, 0, 1);
    CHECK_STR("ERROR partition 0 (file a.jsonl, bytes 55-224), input: cannot "
              "parse 'abc' as int in column year, line 4\n",
              got);
    free(got);
    p->parts[0].start = 79;
    p->parts[0].line = 5;
    got = read_parts(p, 0, 1);
    CHECK_STR("ERROR partition 0 (file a.jsonl, bytes 79-224), input: cannot "
              "parse '2.5' as int in column year, line 5\n",
              got);
    free(got);
    p->parts[0].start = 101;
    p->parts[0].line = 6;
    got = read_parts(p, 0, 1);
    CHECK_STR("L6:i2005|f4.5\n"
              "ERROR partition 0 (file a.jsonl, bytes 101-224), input: line 7 "
              "is not a JSON object: text after the object at byte 24 "
              "('x')\n",
              got);
    free(got);
    plan_free(p);
}

/* Gzip errors: not gzip at submission, truncated and corrupt at reading. */
static void
test_gzip_errors(void)
{
    static const char data[] = "a,b\n1,2\n3,4\n";
    spec_in           in = {FMT_CSV, 1, 1, 0, 0};
    sh_err            err;
    plan             *p;
    char             *path, *got;
    const char       *names[] = {"a.csv.gz", NULL};
    struct stat       st;
    int               fd;

    fresh_dir();
    put_file("a.csv.gz", data, sizeof data - 1);
    p = make_plan(names, &in, &err);
    CHECK(p == NULL && err.code == SH_EDATA
              && strstr(err.msg, "in 'a.csv.gz': not valid gzip data"),
          "plan: %s", p ? "(made)" : err.msg);
    plan_free(p);

    put_gzip("a.csv.gz", data, sizeof data - 1, 1);
    p = make_plan(names, &in, &err);
    CHECK(p != NULL, "plan: %s", err.msg);
    if (p == NULL)
        return;
    /* Cut the file short: its size changed, so first the check... */
    path = xasprintf("%s/a.csv.gz", g_dir);
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_FATAL(truncate(path, st.st_size - 5) == 0);
    got = read_all(p);
    CHECK(strstr(got, "changed since the job was submitted") != NULL, "%s",
          got);
    free(got);
    /* ... and with the plan's idea of the file updated, the data. */
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    p->files[0].size_bytes = (uint64_t)st.st_size;
    p->files[0].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000
                           + st.st_mtim.tv_nsec;
    got = read_all(p);
    CHECK(strstr(got, "ERROR partition 0 (file a.csv.gz, bytes 0-")
              && strstr(got, "), input: the gzip data ends early"),
          "%s", got);
    free(got);
    /* A flipped byte in the deflate data. */
    put_gzip("a.csv.gz", data, sizeof data - 1, 1);
    fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pwrite(fd, "\xff\xff\xff", 3, 10) == 3);
    close(fd);
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    p->files[0].size_bytes = (uint64_t)st.st_size;
    p->files[0].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000
                           + st.st_mtim.tv_nsec;
    got = read_all(p);
    CHECK(strstr(got, "ERROR partition 0") && strstr(got, "gzip data"), "%s",
          got);
    free(got);
    free(path);
    plan_free(p);
}

/* A longer generated file of each format, plain and gzip, at a few
 * partition sizes and read block sizes: the same rows every way. */
static void
test_generated(void)
{
    strbuf                   csv = {0}, js = {0}, ln = {0};
    static const plan_format fmts[] = {FMT_CSV, FMT_JSONL, FMT_LINES};
    static const char *const files[] = {"g.csv", "g.jsonl", "g.txt"};
    static const uint64_t    sizes[] = {97, 1000, 4096, 1u << 30};
    uint64_t                 st = 7;

    fresh_dir();
    sb_puts(&csv, "n,s,f\n");
    for (int i = 0; i < 800; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        unsigned k = (unsigned)(st >> 33) % 7;

        sb_printf(&csv, "%d,\"v%u%s\",%d.%u\n", i, k, k == 3 ? "\"\"x\ny" : "",
                  i - 1000, k);
        sb_printf(&js, "{\"n\":%d,\"s\":\"v%u%s\",\"f\":%d.%u}\n", i, k,
                  k == 3 ? "\\\"x\\ny" : "", i - 1000, k);
        if (k == 5)
            sb_puts(&js, "\n");
        sb_printf(&ln, "line %d %u%s\n", i, k, k == 2 ? "\r" : "");
    }
    put_file("g.csv", csv.data, csv.len);
    put_file("g.jsonl", js.data, js.len);
    put_file("g.txt", ln.data, ln.len);
    put_gzip("g.csv.gz", csv.data, csv.len, 3);
    put_gzip("g.jsonl.gz", js.data, js.len, 1);
    put_gzip("g.txt.gz", ln.data, ln.len, 2);
    for (size_t f = 0; f < 3; f++) {
        spec_in in = {fmts[f], 0, 1, 0, 1u << 30};
        plan   *p = plan_of(files[f], &in);
        char   *one, *gzname;

        if (p == NULL)
            continue;
        one = read_all(p);
        plan_free(p);
        CHECK(strlen(one) > 8000, "%s: %.200s", files[f], one);
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            for (size_t b = 0; b < 2; b++) {
                char *got;

                csv_set_block_bytes_for_test(b                 ? 13
                                             : sizes[k] > 4096 ? 0
                                                               : 4096);
                in.part_bytes = sizes[k];
                in.gzip = 0;
                p = plan_of(files[f], &in);
                got = p ? read_all(p) : xstrdup("");
                CHECK(strcmp(one, got) == 0, "%s part %llu block %zu", files[f],
                      (unsigned long long)sizes[k], b);
                free(got);
                plan_free(p);
                in.gzip = 1;
                gzname = xasprintf("%s.gz", files[f]);
                p = plan_of(gzname, &in);
                got = p ? read_all(p) : xstrdup("");
                CHECK(strcmp(one, got) == 0, "%s part %llu block %zu", gzname,
                      (unsigned long long)sizes[k], b);
                free(got);
                free(gzname);
                plan_free(p);
            }
        }
        csv_set_block_bytes_for_test(0);
        free(one);
    }
    sb_free(&csv);
    sb_free(&js);
    sb_free(&ln);
}

/* 'need': columns not needed read as null, and a bad value in them is no
 * error. */
static void
test_need(void)
{
    static const char csv[] = "a,b\n1,x\n2,y\n";
    static const char js[] = "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"y\"}\n";
    static const unsigned char need[] = {0, 1};
    spec_in                    in = {FMT_CSV, 0, 1, 0, 0};
    plan                      *p;

    fresh_dir();
    put_file("a.csv", csv, sizeof csv - 1);
    put_file("a.jsonl", js, sizeof js - 1);
    for (int f = 0; f < 2; f++) {
        in.fmt = f ? FMT_JSONL : FMT_CSV;
        p = plan_of(f ? "a.jsonl" : "a.csv", &in);
        if (p == NULL)
            continue;
        set_type(p, "b", SH_STRING);
        set_type(p, "a", SH_STRING);
        set_type(p, "b", SH_STRING);
        {
            sh_err          err;
            input_reader   *r;
            const sh_value *row;
            strbuf          sb = {0};

            p->in_schema->types[0] = SH_BOOL; /* "1", 1: a bad bool */
            r = input_open(p, 0, need, &err);
            CU_ASSERT_FATAL(r != NULL);
            sb_puts(&sb, "");
            while (input_next(r, &row, &err) == 1)
                row_text(&sb, input_line(r), row, 2);
            CHECK(input_rows(r) == 2 && input_skipped(r) == 0
                      && input_bytes(r) == (f ? sizeof js - 1 : sizeof csv - 5),
                  "rows %llu bytes %llu", (unsigned long long)input_rows(r),
                  (unsigned long long)input_bytes(r));
            CHECK_STR(f ? "L1:-|s[x]\nL2:-|s[y]\n" : "L2:-|s[x]\nL3:-|s[y]\n",
                      sb.data);
            sb_free(&sb);
            input_free(r);
        }
        plan_free(p);
    }
}

/* Lines with input.columns giving "line" another type: parsed, or the
 * exact error. */
static void
test_lines_typed(void)
{
    static const char data[] = "1\n\n3\nx\n5\n";
    spec_in           in = {FMT_LINES, 0, 0, 0, 0};
    plan             *p;
    char             *got;

    fresh_dir();
    put_file("a.txt", data, sizeof data - 1);
    p = plan_of("a.txt", &in);
    if (p == NULL)
        return;
    set_type(p, "line", SH_INT);
    got = read_all(p);
    CHECK_STR("L1:i1\nL2:-\nL3:i3\n"
              "ERROR partition 0 (file a.txt, bytes 0-9), input: cannot "
              "parse 'x' as int in column line, line 4\n",
              got);
    free(got);
    p->on_error_skip = 1;
    got = read_all(p);
    CHECK_STR("L1:i1\nL2:-\nL3:i3\nL5:i5\nskipped 1\n", got);
    free(got);
    plan_free(p);
}

/* Through the planner: a job spec of each format, with a glob over gzip
 * files and input.columns; partitions and rows. */
static void
test_plan_build(void)
{
    static const char a[] = "{\"k\":\"x\",\"v\":1}\n{\"k\":\"y\",\"v\":2}\n";
    static const char b[] = "{\"v\":3,\"w\":true}\n";
    static const struct {
        const char *spec, *schema, *rows;
        size_t      n_parts;
    } cases[] = {
        {"{\"input\": {\"path\": \"*.jsonl.gz\", \"format\": \"jsonl\","
         " \"columns\": {\"v\": \"float\"}}}",
         "k:string,v:float,w:bool", "L1:s[x]|f1|-\nL2:s[y]|f2|-\nL1:-|f3|b1\n",
         2},
        {"{\"input\": {\"path\": \"*.jsonl\", \"format\": \"jsonl\","
         " \"partition_size\": 10}}",
         "k:string,v:int,w:bool", "L1:s[x]|i1|-\nL2:s[y]|i2|-\nL1:-|i3|b1\n",
         3},
        {"{\"input\": {\"path\": \"a.jsonl\", \"format\": \"lines\","
         " \"partition_size\": 1}}",
         "line:string",
         "L1:s[{\"k\":\"x\",\"v\":1}]\nL2:s[{\"k\":\"y\",\"v\":2}]\n", 2},
        {"{\"input\": {\"path\": \"c.csv.gz\"}}", "n:int,s:string",
         "L2:i1|s[one]\nL3:i2|-\n", 1},
    };
    plan_env env = {g_dir, th_model_resolve, "/tmp", 64u << 20, 0, NULL, NULL,
                    NULL};

    fresh_dir();
    put_file("a.jsonl", a, sizeof a - 1);
    put_file("b.jsonl", b, sizeof b - 1);
    put_gzip("a.jsonl.gz", a, sizeof a - 1, 2);
    put_gzip("b.jsonl.gz", b, sizeof b - 1, 1);
    put_gzip("c.csv.gz", "n,s\n1,one\n2,\n", 13, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t jerr;
        json_t      *spec = json_loads(cases[i].spec, 0, &jerr);
        plan        *p = NULL;
        sh_err       err;
        char        *got;

        CU_ASSERT_FATAL(spec != NULL);
        sh_err_clear(&err);
        if (plan_build(spec, &env, &p, &err) != 0) {
            CHECK(0, "%s: %s (%s)", cases[i].spec, err.msg, err.path);
            json_decref(spec);
            continue;
        }
        json_decref(spec);
        got = schema_text(p);
        CHECK(strcmp(got, cases[i].schema) == 0, "%s: schema %s", cases[i].spec,
              got);
        free(got);
        CHECK(p->n_parts == cases[i].n_parts, "%s: %zu parts", cases[i].spec,
              p->n_parts);
        got = read_all(p);
        CHECK(strcmp(got, cases[i].rows) == 0,
              "%s:\n--- expected\n%s--- got\n%s", cases[i].spec, cases[i].rows,
              got);
        free(got);
        plan_free(p);
    }
}

/* ---- the jsonl line parser against jansson ----------------------------- */

/* Our members as a jansson object (a repeated key: the last wins, as in
 * jansson); NULL if a nested value does not load. */
static json_t *
members_json(const input_json *jp)
{
    json_t *o = json_object();

    for (size_t i = 0; i < jp->n; i++) {
        const input_json_member *m = &jp->m[i];
        char                    *key = xstrndup(m->key, m->key_len);
        char                    *txt = xstrndup(m->val, m->val_len);
        json_t                  *v = NULL;

        switch (m->kind) {
        case IJ_NULL:
            v = json_null();
            break;
        case IJ_TRUE:
            v = json_true();
            break;
        case IJ_FALSE:
            v = json_false();
            break;
        case IJ_INT:
            v = json_integer(strtoll(txt, NULL, 10));
            break;
        case IJ_NUMBER:
            v = json_real(strtod(txt, NULL));
            break;
        case IJ_STRING:
            v = json_stringn_nocheck(m->val, m->val_len);
            break;
        case IJ_NESTED:
            v = json_loadb(m->val, m->val_len, JSON_ALLOW_NUL, NULL);
            break;
        }
        free(txt);
        if (v == NULL) {
            free(key);
            json_decref(o);
            return NULL;
        }
        json_object_set_new_nocheck(o, key, v);
        free(key);
    }
    return o;
}

/* Lines made of JSON pieces, some broken: we accept what jansson accepts
 * (an object) and read the same members. */
static void
test_json_parser(void)
{
    static const char *const pieces[] = {"{",
                                         "}",
                                         "[",
                                         "]",
                                         ":",
                                         ",",
                                         " ",
                                         "\t",
                                         "\"a\"",
                                         "\"b c\"",
                                         "\"\\n\\\"\\\\\\/\"",
                                         "\"\\u00e9\\u20AC\"",
                                         "\"\\ud83d\\ude00\"",
                                         "\"\\u0000\"",
                                         "1",
                                         "-0",
                                         "23",
                                         "-4.5",
                                         "6e3",
                                         "7.25E-2",
                                         "true",
                                         "false",
                                         "null",
                                         "\"",
                                         "\\",
                                         "x",
                                         "01",
                                         "1.",
                                         ".5",
                                         "-",
                                         "tru",
                                         "\"\x01\"",
                                         "\"caf\xC3\xA9\"",
                                         "[1,[2,{\"z\":[]}]]",
                                         "{\"q\":{}}"};
    static const char *const good[] = {
        "{\"a\":1}", "{ \"a\" : \"x\" , \"b\" : [1, 2] }",
        "{\"k\":{\"n\":[true,false,null,\"s\\\"\"]},\"k\":-1.5e-3}", "{}",
        " {\"\\u0041b\": \"\\t\"} "};
    input_json jp;
    uint64_t   st = 99;
    int        bad = 0, n_ok = 0, n_refused = 0;

    memset(&jp, 0, sizeof jp);
    for (int iter = 0; iter < 20000 && bad < 5; iter++) {
        strbuf       sb = {0};
        json_error_t jerr;
        json_t      *ref, *ours;
        int          rc, ok;

        st = st * 6364136223846793005ull + 1442695040888963407ull;
        if (iter % 3 == 0) {
            /* A good line, mutated: a byte dropped, doubled or changed. */
            const char *g = good[(st >> 33) % (sizeof good / sizeof *good)];
            size_t      n = strlen(g), at = (size_t)(st >> 40) % n;

            sb_append(&sb, g, n);
            switch ((st >> 20) % 4) {
            case 0:
                memmove(sb.data + at, sb.data + at + 1, n - at);
                sb.len--;
                break;
            case 1:
                sb_putc(&sb, g[at]);
                break;
            case 2:
                sb.data[at] = "{}[]:,\"\\ 1a"[(st >> 50) % 11];
                break;
            default:
                break;
            }
        } else {
            int k = 1 + (int)((st >> 33) % 12);

            sb_putc(&sb, '{');
            for (int i = 0; i < k; i++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                sb_puts(&sb,
                        pieces[(st >> 33) % (sizeof pieces / sizeof *pieces)]);
            }
            if ((st >> 20) % 2)
                sb_putc(&sb, '}');
        }
        rc = input_json_parse(&jp, sb.data, sb.len);
        ref = json_loadb(sb.data, sb.len, JSON_ALLOW_NUL, &jerr);
        ok = ref != NULL && json_is_object(ref);
        n_ok += ok;
        n_refused += !ok;
        if ((rc == 0) != ok) {
            CHECK(0, "line '%s': ours %d (%s), jansson %s", sb.data, rc,
                  jp.what ? jp.what : "", ok ? "accepts" : jerr.text);
            bad++;
        } else if (ok) {
            ours = members_json(&jp);
            if (ours == NULL || !json_equal(ours, ref)) {
                CHECK(0, "line '%s': members differ", sb.data);
                bad++;
            }
            json_decref(ours);
        }
        json_decref(ref);
        sb_free(&sb);
    }
    CHECK(n_ok > 2000 && n_refused > 2000, "%d good lines, %d bad", n_ok,
          n_refused);
    /* Blank lines; lone surrogates become U+FFFD; big integers are ints. */
    CHECK(input_json_parse(&jp, " \t ", 3) == 1, "blank");
    CHECK(input_json_parse(&jp, "", 0) == 1, "empty");
    CHECK(input_json_parse(&jp, "{\"s\":\"\\udc00x\"}", 15) == 0 && jp.n == 1
              && jp.m[0].val_len == 4
              && memcmp(jp.m[0].val, "\xEF\xBF\xBDx", 4) == 0,
          "lone surrogate");
    CHECK(input_json_parse(&jp, "{\"n\":123456789012345678901}", 27) == 0
              && jp.m[0].kind == IJ_INT,
          "big int");
    input_json_free(&jp);
}

void
test_input_register(void)
{
    CU_pSuite s = CU_add_suite("input", NULL, suite_clean);

    if (s == NULL)
        return;
    CU_add_test(s, "csv: types and rows", test_csv_basic);
    CU_add_test(s, "csv: every partition size", test_csv_every_size);
    CU_add_test(s, "csv: bad values and skip", test_csv_errors);
    CU_add_test(s, "csv: gzip", test_csv_gzip);
    CU_add_test(s, "csv: several files", test_csv_files);
    CU_add_test(s, "lines", test_lines);
    CU_add_test(s, "jsonl", test_jsonl);
    CU_add_test(s, "jsonl: several files", test_jsonl_files);
    CU_add_test(s, "jsonl: bad lines and values", test_jsonl_errors);
    CU_add_test(s, "gzip: bad data", test_gzip_errors);
    CU_add_test(s, "generated files, every way", test_generated);
    CU_add_test(s, "unneeded columns", test_need);
    CU_add_test(s, "lines with a type", test_lines_typed);
    CU_add_test(s, "through plan_build", test_plan_build);
    CU_add_test(s, "jsonl parser vs jansson", test_json_parser);
}
