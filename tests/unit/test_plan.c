/*
 * test_plan.c - unit tests of executor/plan (spec checking, path safety,
 * type inference, partitions, the stored resolution), one partition of a
 * map-only plan end to end through exec_run_task (stage 0, task = the
 * partition, out = the output file) and executor/writer (CSV, JSONL,
 * gzip).
 *
 * Every test works in a fresh data root made with mkdtemp; outputs go to a
 * second temporary directory outside the root. Checks print what they got
 * when they fail.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../executor/exec.h"
#include "../../executor/input.h"
#include "../../executor/plan.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "../../executor/writer.h"
#include "test_helpers.h"
#include "test_suites.h"

static char     g_root[256]; /* the data root of the current test */
static plan_env g_env = {
    g_root, th_model_resolve, "/tmp", 256u << 20, 0, NULL, NULL, NULL};
static char g_out[256]; /* where outputs go (outside the root) */

/* ---- the temporary data root ------------------------------------------ */

/* Make fresh directories for one test. */
static void
fresh_dirs(void)
{
    th_fresh_dir(g_root, sizeof g_root, "/tmp", "sheaf-plan-root");
    th_fresh_dir(g_out, sizeof g_out, "/tmp", "sheaf-plan-out");
}

static int
suite_init(void)
{
    g_root[0] = g_out[0] = '\0';
    return 0;
}

static int
suite_clean(void)
{
    th_rm_tree(g_root);
    th_rm_tree(g_out);
    g_root[0] = g_out[0] = '\0';
    return 0;
}

/* Write 'n' bytes to 'rel' under the root, making directories on the way. */
static void
put_bytes(const char *rel, const char *data, size_t n)
{
    th_put_file(g_root, rel, data, n);
}

static void
put_file(const char *rel, const char *text)
{
    put_bytes(rel, text, strlen(text));
}

/* Build a plan from spec text; NULL on error (then 'err' says why). */
static plan *
build(const char *spec_text, sh_err *err, int *rc_out)
{
    json_error_t jerr;
    json_t      *spec = json_loads(spec_text, JSON_ALLOW_NUL, &jerr);
    plan        *p = NULL;
    int          rc;

    if (spec == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", jerr.text, spec_text);
        abort();
    }
    rc = plan_build(spec, &g_env, &p, err);
    json_decref(spec);
    if (rc_out)
        *rc_out = rc;
    return p;
}

/* Expect building 'spec' to fail with 'code', 'path' and 'word'. */
static void
expect_err_at(int line, const char *spec, int code, const char *path,
              const char *word)
{
    sh_err err = {0};
    int    rc;
    plan  *p = build(spec, &err, &rc);

    CHECK_AT(p == NULL && rc == code && err.code == code, line,
             "spec %s: want code %d, got %d (%s: %s)", spec, code, rc, err.path,
             err.msg);
    CHECK_AT(strcmp(err.path, path) == 0, line,
             "spec %s: want path '%s', got '%s' (%s)", spec, path, err.path,
             err.msg);
    CHECK_AT(word == NULL || strstr(err.msg, word) != NULL, line,
             "spec %s: message '%s' lacks '%s'", spec, err.msg,
             word ? word : "");
    plan_free(p);
}
#define EXPECT_ERR(spec, code, path, word) \
    expect_err_at(__LINE__, spec, code, path, word)

/* Build 'spec', which must succeed. */
static plan *
must_build_at(int line, const char *spec)
{
    sh_err err = {0};
    int    rc;
    plan  *p = build(spec, &err, &rc);

    CHECK_AT(p != NULL && rc == 0, line, "spec %s: failed with %d at '%s': %s",
             spec, rc, err.path, err.msg);
    return p;
}
#define MUST_BUILD(spec) must_build_at(__LINE__, spec)

/*
 * Run partition 'part' of map-only plan 'p' into 'out_path': stage 0's
 * task 'part' through exec_run_task, spilling under "<out_path>.scratch"
 * with a 256 MiB budget. 'tick' may be NULL; 'st' may be NULL. Returns
 * exec_run_task's result.
 */
static int
run_part(const plan *p, size_t part, const char *out_path, exec_tick_fn tick,
         void *ctx, exec_stats *st, sh_err *err)
{
    exec_task t;
    char     *scratch = xasprintf("%s.scratch", out_path);
    int       rc;

    memset(&t, 0, sizeof t);
    t.stage = 0;
    t.index = part;
    t.out = out_path;
    t.scratch = scratch;
    t.mem_bytes = 256u << 20;
    rc = exec_run_task(p, &t, tick, ctx, st, err);
    free(scratch);
    return rc;
}

/*
 * Run every partition of 'p' into g_out and concatenate the outputs into
 * a new string (the caller frees). 'stats' (may be NULL) sums the stats.
 * Returns NULL when a partition fails (then 'err' says why).
 */
static char *
run_all(const plan *p, exec_stats *stats, size_t *len, sh_err *err)
{
    strbuf     all = {0};
    exec_stats st, sum;
    size_t     i, n;

    memset(&sum, 0, sizeof sum);
    for (i = 0; i < p->n_parts; i++) {
        char *out = xasprintf("%s/part-%zu", g_out, i), *text;

        if (run_part(p, i, out, NULL, NULL, &st, err) != 0) {
            free(out);
            sb_free(&all);
            return NULL;
        }
        text = fsys_read_file(out, &n);
        CHECK(text != NULL, "output %s missing after success", out);
        if (text)
            sb_append(&all, text, n);
        free(text);
        unlink(out);
        free(out);
        sum.rows_in += st.rows_in;
        sum.rows_out += st.rows_out;
        sum.rows_skipped += st.rows_skipped;
        sum.bytes_in += st.bytes_in;
        sum.bytes_out += st.bytes_out;
    }
    if (stats)
        *stats = sum;
    if (len)
        *len = all.len;
    return all.data ? all.data : xstrdup("");
}

/* ---- spec errors ------------------------------------------------------ */

#define DATA_A                  \
    "id,year,name,score,flag\n" \
    "1,2001,ann,1.5,true\n"     \
    "2,1999,bob,2,false\n"

static void
test_spec_errors(void)
{
    fresh_dirs();
    put_file("a.csv", DATA_A);
    put_file("dup.csv", "a,b,a\n1,2,3\n");
    put_file("h/a.csv", "a,b\n1,2\n");
    put_file("h/b.csv", "a,c\n1,2\n");
    put_file("ragged.csv", "x,y\n1,2\n3\n");
    {
        char *dir = xasprintf("%s/dir.csv", g_root);

        mkdir(dir, 0755);
        free(dir);
    }

    /* The body and its top-level fields. */
    EXPECT_ERR("[1]", SH_EINVAL, "", "object");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"stpes\": []}", SH_EINVAL,
               "stpes", "unknown field 'stpes'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"stpes\": []}", SH_EINVAL,
               "stpes", "did you mean 'steps'");
    EXPECT_ERR("{}", SH_EINVAL, "input", "required");
    EXPECT_ERR("{\"input\": \"a.csv\"}", SH_EINVAL, "input", "object");
    EXPECT_ERR("{\"name\": 5, \"input\": {\"path\": \"a.csv\"}}", SH_EINVAL,
               "name", "string");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"max_attempts\": 0}",
               SH_EINVAL, "max_attempts", "1 to 20");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"max_attempts\": 21}",
               SH_EINVAL, "max_attempts", "1 to 20");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"timeout_s\": 2592001}",
               SH_EINVAL, "timeout_s", "0 to 2592000");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"retention_s\": 9223372036854775807}",
               SH_EINVAL, "retention_s", "0 to 315360000");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"max_attempts\": 2.5}",
               SH_EINVAL, "max_attempts", "integer");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"timeout_s\": -1}",
               SH_EINVAL, "timeout_s", "0 to 2592000");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"priority\": 1001}",
               SH_EINVAL, "priority", "-1000 to 1000");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"retention_s\": \"1d\"}",
               SH_EINVAL, "retention_s", "integer");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"callback\": {\"url\": \"ftp://x/\"}}",
               SH_EINVAL, "callback.url", "http");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"callback\": {\"url\": \"http://h/\", \"secrt\": \"s\"}}",
               SH_EINVAL, "callback.secrt", "unknown field 'secrt'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"callback\": {\"secret\": \"s\"}}",
               SH_EINVAL, "callback.url", "required");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"output\": {\"format\": \"avro\"}}",
               SH_EINVAL, "output.format", "parquet");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"output\": {\"format\": \"parquet\", "
               "\"compression\": \"lz4\"}}",
               SH_EINVAL, "output.compression", "zstd");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"output\": {\"format\": \"parquet\", "
               "\"row_group_rows\": 0}}",
               SH_EINVAL, "output.row_group_rows", "");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"output\": {\"row_group_rows\": 10}}",
               SH_EINVAL, "output.row_group_rows", "parquet");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"output\": {\"compression\": \"zip\"}}",
               SH_EINVAL, "output.compression", "gzip");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, "
               "\"output\": {\"fromat\": \"csv\"}}",
               SH_EINVAL, "output.fromat", "unknown field 'fromat'");

    /* input. */
    EXPECT_ERR("{\"input\": {\"pth\": \"a.csv\"}}", SH_EINVAL, "input.pth",
               "unknown field 'pth'");
    EXPECT_ERR("{\"input\": {}}", SH_EINVAL, "input.path", "required");
    EXPECT_ERR("{\"input\": {\"dataset\": \"d1\"}}", SH_EINVAL, "input.dataset",
               "not available");
    EXPECT_ERR("{\"input\": {\"dataset\": \"d1\", \"path\": \"a.csv\"}}",
               SH_EINVAL, "input", "not both");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"format\": \"jsonl\", "
               "\"csv\": {\"header\": false}}}",
               SH_EINVAL, "input.csv", "format 'csv' only");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"compression\": \"zip\"}}",
               SH_EINVAL, "input.compression", "none, gzip");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"format\": \"xml\"}}",
               SH_EINVAL, "input.format", "xml");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"on_error\": \"ignore\"}}",
               SH_EINVAL, "input.on_error", "skip");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"csv\": {\"delimiter\": \";;\"}}}",
               SH_EINVAL, "input.csv.delimiter", "one");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"csv\": {\"delimiter\": \"\"}}}",
               SH_EINVAL, "input.csv.delimiter", "one");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"csv\": {\"quote\": \"\\n\"}}}",
               SH_EINVAL, "input.csv.quote", "line end");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"csv\": {\"delimiter\": \"'\", \"quote\": \"'\"}}}",
               SH_EINVAL, "input.csv.quote", "differ");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"csv\": {\"header\": \"yes\"}}}",
               SH_EINVAL, "input.csv.header", "true or false");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"csv\": {\"heder\": true}}}",
               SH_EINVAL, "input.csv.heder", "did you mean 'header'");

    /* partition_size. */
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"partition_size\": \"64XB\"}}",
               SH_EINVAL, "input.partition_size", "64XB");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"partition_size\": 0}}",
               SH_EINVAL, "input.partition_size", "partition_size");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"partition_size\": -5}}",
               SH_EINVAL, "input.partition_size", "partition_size");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"partition_size\": "
               "\"MiB\"}}",
               SH_EINVAL, "input.partition_size", "MiB");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"partition_size\": "
               "\"0.1B\"}}",
               SH_EINVAL, "input.partition_size", "partition_size");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", \"partition_size\": "
               "true}}",
               SH_EINVAL, "input.partition_size", "partition_size");

    /* input.columns. */
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"columns\": {\"year\": \"integer\"}}}",
               SH_EINVAL, "input.columns.year", "integer");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"columns\": {\"year\": 1}}}",
               SH_EINVAL, "input.columns.year", "types are");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\", "
               "\"columns\": {\"yeer\": \"int\"}}}",
               SH_EINVAL, "input.columns.yeer", "unknown column 'yeer'");

    /* Path safety. */
    EXPECT_ERR("{\"input\": {\"path\": \"\"}}", SH_EINVAL, "input.path",
               "empty");
    EXPECT_ERR("{\"input\": {\"path\": \"/etc/passwd\"}}", SH_EINVAL,
               "input.path", "absolute");
    EXPECT_ERR("{\"input\": {\"path\": \"../a.csv\"}}", SH_EINVAL, "input.path",
               "'..'");
    EXPECT_ERR("{\"input\": {\"path\": \"h/../a.csv\"}}", SH_EINVAL,
               "input.path", "'..'");
    EXPECT_ERR("{\"input\": {\"path\": \"h/..\"}}", SH_EINVAL, "input.path",
               "'..'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\\u0000x\"}}", SH_EINVAL,
               "input.path", "NUL");
    EXPECT_ERR("{\"input\": {\"path\": \"nope.csv\"}}", SH_EINVAL, "input.path",
               "no such file 'nope.csv'");
    EXPECT_ERR("{\"input\": {\"path\": \"nope/*.csv\"}}", SH_EINVAL,
               "input.path", "no file matches 'nope/*.csv'");
    EXPECT_ERR("{\"input\": {\"path\": \"dir.csv\"}}", SH_EINVAL, "input.path",
               "not a regular file");

    /* Headers and the sample. */
    EXPECT_ERR("{\"input\": {\"path\": \"dup.csv\"}}", SH_EINVAL, "input.path",
               "duplicate column name 'a' in header of");
    EXPECT_ERR("{\"input\": {\"path\": \"h/*.csv\"}}", SH_EINVAL, "input.path",
               "'h/a.csv' and 'h/b.csv' have different");
    EXPECT_ERR("{\"input\": {\"path\": \"ragged.csv\"}}", SH_EDATA,
               "input.path", "'ragged.csv' line 3 has 1 fields, expected 2");

    /* Steps. */
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": {}}", SH_EINVAL,
               "steps", "array");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": [1]}", SH_EINVAL,
               "steps[0]", "object");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": [{}]}", SH_EINVAL,
               "steps[0].op", "needs an 'op'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": 3}]}",
               SH_EINVAL, "steps[0].op", "string");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": ["
               "{\"op\": \"filter\", \"where\": \"true\"},"
               "{\"op\": \"filter\", \"where\": \"true\"},"
               "{\"op\": \"foo\"}]}",
               SH_EINVAL, "steps[2].op",
               "unknown op 'foo'; ops are: filter, select, derive, "
               "tokenize, join, predict_naive_bayes, groupby, aggregate, "
               "distinct, sort, limit, train_naive_bayes");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"grupby\"}]}",
               SH_EINVAL, "steps[0].op", "did you mean 'groupby'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": ["
               "{\"op\": \"filter\", \"where\": \"true\"},"
               "{\"op\": \"filter\", \"wher\": \"true\"}]}",
               SH_EINVAL, "steps[1].wher", "unknown field 'wher'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"filter\"}]}",
               SH_EINVAL, "steps[0].where", "required");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"filter\", \"where\": \"yeer > 2000\"}]}",
               SH_EINVAL, "steps[0].where", "yeer");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"filter\", \"where\": \"year + 1\"}]}",
               SH_EINVAL, "steps[0].where",
               "filter needs a bool expression, got int");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"filter\", \"where\": \"year >\"}]}",
               SH_EINVAL, "steps[0].where", NULL);
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"filter\", \"where\": \"(year > 1\"}]}",
               SH_EINVAL, "steps[0].where", NULL);
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"derive\", \"as\": \"x\"}]}",
               SH_EINVAL, "steps[0].expr", "required");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"derive\", \"as\": \"\", \"expr\": \"1\"}]}",
               SH_EINVAL, "steps[0].as", "empty");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"derive\", \"as\": \"x\", \"expr\": \"nme\"}]}",
               SH_EINVAL, "steps[0].expr", "nme");
    /* A derived column is known to later steps, and only to them. */
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": ["
               "{\"op\": \"filter\", \"where\": \"x > 1\"},"
               "{\"op\": \"derive\", \"as\": \"x\", \"expr\": \"1\"}]}",
               SH_EINVAL, "steps[0].where", "'x'");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"select\", \"columns\": []}]}",
               SH_EINVAL, "steps[0].columns", "non-empty");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"select\", \"columns\": [\"id\", 7]}]}",
               SH_EINVAL, "steps[0].columns[1]", "strings");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"select\", \"columns\": [\"id\", \"yr\"]}]}",
               SH_EINVAL, "steps[0].columns[1]",
               "unknown column 'yr'; columns are: id, year, name, score, "
               "flag");
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": "
               "[{\"op\": \"select\", \"columns\": [\"id\", \"id\"]}]}",
               SH_EINVAL, "steps[0].columns[1]", "twice");
    /* After a select, dropped columns are gone. */
    EXPECT_ERR("{\"input\": {\"path\": \"a.csv\"}, \"steps\": ["
               "{\"op\": \"select\", \"columns\": [\"id\"]},"
               "{\"op\": \"filter\", \"where\": \"year > 1\"}]}",
               SH_EINVAL, "steps[1].where", "year");
}

/* Symlinks: inside the root they are fine, out of it they are refused. */
static void
test_symlinks(void)
{
    char *outside, *link;
    plan *p;

    fresh_dirs();
    put_file("a.csv", DATA_A);
    th_put_file(g_out, "secret.csv", "s\n1\n", 4);
    outside = xasprintf("%s/secret.csv", g_out);
    link = xasprintf("%s/evil.csv", g_root);
    CHECK(symlink(outside, link) == 0, "symlink: %s", strerror(errno));
    free(link);
    link = xasprintf("%s/etc", g_root);
    CHECK(symlink("/etc", link) == 0, "symlink: %s", strerror(errno));
    free(link);
    link = xasprintf("%s/alias.csv", g_root);
    CHECK(symlink("a.csv", link) == 0, "symlink: %s", strerror(errno));
    free(link);

    EXPECT_ERR("{\"input\": {\"path\": \"evil.csv\"}}", SH_EINVAL, "input.path",
               "'evil.csv' resolves outside the data root");
    EXPECT_ERR("{\"input\": {\"path\": \"*.csv\"}}", SH_EINVAL, "input.path",
               "resolves outside the data root");
    EXPECT_ERR("{\"input\": {\"path\": \"etc/passwd\"}}", SH_EINVAL,
               "input.path", "resolves outside the data root");

    /* A link inside the root to a file inside it is read as that file. */
    p = MUST_BUILD("{\"input\": {\"path\": \"alias.csv\"}}");
    if (p) {
        CHECK(p->n_files == 1 && strcmp(p->files[0].rel, "a.csv") == 0,
              "alias.csv should resolve to a.csv, got %zu files, '%s'",
              p->n_files, p->n_files ? p->files[0].rel : "");
    }
    plan_free(p);
    free(outside);
}

/* Globs: sorted matches, shared headers, several files. */
static void
test_glob(void)
{
    plan *p;

    fresh_dirs();
    put_file("logs/b.csv", "k,v\n3,c\n");
    put_file("logs/a.csv", "k,v\n1,a\n2,b\n");
    put_file("logs/c.csv", "k,v\n");     /* header only */
    put_file("logs/d.csv", "");          /* empty */
    put_file("logs/e.txt", "not,csv\n"); /* not matched */
    p = MUST_BUILD("{\"input\": {\"path\": \"logs/*.csv\"}}");
    if (p == NULL)
        return;
    CHECK(p->n_files == 4, "want 4 files, got %zu", p->n_files);
    if (p->n_files == 4) {
        CHECK(strcmp(p->files[0].rel, "logs/a.csv") == 0
                  && strcmp(p->files[1].rel, "logs/b.csv") == 0
                  && strcmp(p->files[3].rel, "logs/d.csv") == 0,
              "files not sorted: %s %s %s %s", p->files[0].rel, p->files[1].rel,
              p->files[2].rel, p->files[3].rel);
        CHECK(p->files[0].size_bytes == 12, "size of a.csv: %llu",
              (unsigned long long)p->files[0].size_bytes);
    }
    CHECK(p->n_parts == 2, "want 2 parts (a, b), got %zu", p->n_parts);
    if (p->n_parts == 2) {
        CHECK(p->parts[0].file == 0 && p->parts[0].start == 4
                  && p->parts[0].end == 12 && p->parts[0].line == 2,
              "part 0: file %zu, %llu-%llu line %llu", p->parts[0].file,
              (unsigned long long)p->parts[0].start,
              (unsigned long long)p->parts[0].end,
              (unsigned long long)p->parts[0].line);
        CHECK(p->parts[1].file == 1, "part 1 is of file %zu", p->parts[1].file);
    }
    CHECK(p->in_schema->n == 2 && p->in_schema->types[0] == SH_INT
              && p->in_schema->types[1] == SH_STRING,
          "schema of logs: %zu columns", p->in_schema->n);
    plan_free(p);
}

/* ---- inference -------------------------------------------------------- */

static void
test_infer(void)
{
    static const char   *want_names[] = {"i", "f", "b",        "s",
                                         "e", "m", "column_7", "big"};
    static const sh_type want[] = {SH_INT,    SH_FLOAT, SH_BOOL,   SH_STRING,
                                   SH_STRING, SH_FLOAT, SH_STRING, SH_FLOAT};
    plan                *p;
    size_t               i;

    fresh_dirs();
    put_file("t.csv", "i,f,b,s,e,m,,big\n"
                      "1,1.5,true,x,,1,a,1\n"
                      "-2,3,FALSE,7,,2.5,b,99999999999999999999\n"
                      ",,,,\"\",1e3,c,\n"
                      "+4,-inf,True,y,,3,d,2\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"t.csv\"}}");
    if (p == NULL)
        return;
    CHECK(p->in_schema->n == 8, "want 8 columns, got %zu", p->in_schema->n);
    for (i = 0; i < 8 && i < p->in_schema->n; i++) {
        CHECK(strcmp(p->in_schema->names[i], want_names[i]) == 0,
              "column %zu: want name %s, got %s", i, want_names[i],
              p->in_schema->names[i]);
        CHECK(p->in_schema->types[i] == want[i], "column %s: want %s, got %s",
              want_names[i], sh_type_name(want[i]),
              sh_type_name(p->in_schema->types[i]));
    }
    plan_free(p);

    /* Overrides win. */
    p = MUST_BUILD("{\"input\": {\"path\": \"t.csv\", \"columns\": "
                   "{\"i\": \"string\", \"b\": \"string\", "
                   "\"s\": \"int\", \"e\": \"float\"}}}");
    if (p) {
        CHECK(p->in_schema->types[0] == SH_STRING
                  && p->in_schema->types[2] == SH_STRING
                  && p->in_schema->types[3] == SH_INT
                  && p->in_schema->types[4] == SH_FLOAT,
              "overrides not applied: i %s b %s s %s e %s",
              sh_type_name(p->in_schema->types[0]),
              sh_type_name(p->in_schema->types[2]),
              sh_type_name(p->in_schema->types[3]),
              sh_type_name(p->in_schema->types[4]));
    }
    plan_free(p);

    /* No header: column_1..N, the first record is data. */
    put_file("nh.csv", "1;x\n2;y\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"nh.csv\", \"csv\": "
                   "{\"header\": false, \"delimiter\": \";\"}}}");
    if (p) {
        CHECK(p->in_schema->n == 2
                  && strcmp(p->in_schema->names[0], "column_1") == 0
                  && strcmp(p->in_schema->names[1], "column_2") == 0
                  && p->in_schema->types[0] == SH_INT,
              "no-header schema wrong (%zu columns)", p->in_schema->n);
        CHECK(p->n_parts == 1 && p->parts[0].start == 0
                  && p->parts[0].line == 1,
              "no-header part should start at 0, line 1 (%zu parts)",
              p->n_parts);
    }
    plan_free(p);

    /* Empty and header-only files: valid, one empty partition (which
     * writes the header of the result). */
    put_file("empty.csv", "");
    p = MUST_BUILD("{\"input\": {\"path\": \"empty.csv\"}}");
    if (p) {
        CHECK(p->n_parts == 1 && p->parts[0].start == p->parts[0].end
                  && p->in_schema->n == 0,
              "empty file: %zu parts %zu columns", p->n_parts, p->in_schema->n);
    }
    plan_free(p);
    p = MUST_BUILD("{\"input\": {\"path\": \"empty.csv\", "
                   "\"csv\": {\"header\": false}}, \"steps\": "
                   "[{\"op\": \"derive\", \"as\": \"one\", "
                   "\"expr\": \"1\"}]}");
    if (p) {
        CHECK(p->n_parts == 1 && p->out_schema->n == 1,
              "empty file, no header: %zu parts, %zu out columns", p->n_parts,
              p->out_schema->n);
    }
    plan_free(p);
    put_file("ho.csv", "a,b\r\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"ho.csv\"}}");
    if (p) {
        CHECK(p->n_parts == 1 && p->in_schema->n == 2
                  && p->in_schema->types[0] == SH_STRING,
              "header-only: %zu parts %zu columns", p->n_parts,
              p->in_schema->n);
    }
    plan_free(p);

    /* A BOM is not part of the first name. */
    put_file("bom.csv", "\xEF\xBB\xBFid,v\n1,2\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"bom.csv\"}}");
    if (p) {
        CHECK(strcmp(p->in_schema->names[0], "id") == 0,
              "BOM kept in name: '%s'", p->in_schema->names[0]);
    }
    plan_free(p);
}

/* ---- partitions ------------------------------------------------------- */

/* A file with quoted newlines, delimiters and quotes; records known. */
#define REC_HDR "id,text\n"
#define REC_1   "1,\"a\nb\"\n"
#define REC_2   "2,plain\r\n"
#define REC_3   "3,\"x,\"\"y\"\"\n\nz\"\n"
#define REC_4   "4,last"

static void
test_partitions(void)
{
    const char *recs[] = {REC_1, REC_2, REC_3, REC_4};
    uint64_t    want_start[4], want_line[4] = {2, 4, 5, 8};
    const char *sizes[] = {"1", "7", "64", "1GiB"};
    uint64_t    off = strlen(REC_HDR), size;
    size_t      i, k;
    char        spec[256];

    fresh_dirs();
    put_file("q.csv", REC_HDR REC_1 REC_2 REC_3 REC_4);
    for (i = 0; i < 4; i++) {
        want_start[i] = off;
        off += strlen(recs[i]);
    }
    size = off;

    for (k = 0; k < 4; k++) {
        plan *p;

        snprintf(spec, sizeof spec,
                 "{\"input\": {\"path\": \"q.csv\", "
                 "\"partition_size\": \"%s\"}}",
                 sizes[k]);
        p = MUST_BUILD(spec);
        if (p == NULL)
            continue;
        CHECK(p->n_parts >= 1, "partition_size %s: no parts", sizes[k]);
        if (p->n_parts == 0) {
            plan_free(p);
            continue;
        }
        /* The parts cover the data exactly, in order, with no gap. */
        CHECK(p->parts[0].start == want_start[0],
              "partition_size %s: first part at %llu, want %llu", sizes[k],
              (unsigned long long)p->parts[0].start,
              (unsigned long long)want_start[0]);
        CHECK(p->parts[p->n_parts - 1].end == size,
              "partition_size %s: last part ends at %llu, want %llu", sizes[k],
              (unsigned long long)p->parts[p->n_parts - 1].end,
              (unsigned long long)size);
        for (i = 0; i < p->n_parts; i++) {
            size_t r;
            int    at_record = 0;

            if (i + 1 < p->n_parts) {
                CHECK(p->parts[i].end == p->parts[i + 1].start,
                      "partition_size %s: gap after part %zu", sizes[k], i);
            }
            /* Each part begins at a record, with that record's line. */
            for (r = 0; r < 4; r++) {
                if (p->parts[i].start == want_start[r]) {
                    at_record = 1;
                    CHECK(p->parts[i].line == want_line[r],
                          "partition_size %s: part %zu line %llu, want "
                          "%llu",
                          sizes[k], i, (unsigned long long)p->parts[i].line,
                          (unsigned long long)want_line[r]);
                }
            }
            CHECK(at_record,
                  "partition_size %s: part %zu starts at %llu, "
                  "not at a record",
                  sizes[k], i, (unsigned long long)p->parts[i].start);
        }
        if (k == 0) {
            CHECK(p->n_parts == 4, "partition_size 1: want 4 parts, got %zu",
                  p->n_parts);
        }
        if (k == 3) {
            CHECK(p->n_parts == 1, "one big part: got %zu", p->n_parts);
        }
        plan_free(p);
    }

    /* Sizes as Dask spells them. */
    {
        static const struct {
            const char *text;
            uint64_t    bytes;
        } cases[] = {{"100", 100},         {"1KiB", 1024},
                     {"64MiB", 64u << 20}, {"64MB", 64000000},
                     {"2 kb", 2000},       {"10B", 10},
                     {"1.5KiB", 1536},     {"1GiB", 1u << 30}};
        plan *p;

        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(spec, sizeof spec,
                     "{\"input\": {\"path\": \"q.csv\", "
                     "\"partition_size\": \"%s\"}}",
                     cases[i].text);
            p = MUST_BUILD(spec);
            if (p) {
                CHECK(p->partition_bytes == cases[i].bytes,
                      "'%s' is %llu bytes, want %llu", cases[i].text,
                      (unsigned long long)p->partition_bytes,
                      (unsigned long long)cases[i].bytes);
            }
            plan_free(p);
        }
        p = MUST_BUILD("{\"input\": {\"path\": \"q.csv\"}}");
        if (p) {
            CHECK(p->partition_bytes == 64u << 20,
                  "default partition size %llu",
                  (unsigned long long)p->partition_bytes);
            CHECK(p->max_attempts == 3 && p->timeout_s == 0 && p->priority == 0
                      && p->retention_s == 604800 && p->out_format == FMT_CSV
                      && !p->out_gzip && !p->on_error_skip && p->dialect.header,
                  "defaults wrong");
        }
        plan_free(p);
    }
}

/* ---- resolution round trip and description ---------------------------- */

static void
test_resolution(void)
{
    const char *spec_text =
        "{\"name\": \"rt\", \"input\": {\"path\": \"*.csv\", "
        "\"partition_size\": 8, \"columns\": {\"v\": \"float\"}}, "
        "\"steps\": [{\"op\": \"filter\", \"where\": \"v > 1\"}, "
        "{\"op\": \"derive\", \"as\": \"w\", \"expr\": \"v * 2\"}], "
        "\"output\": {\"format\": \"jsonl\", \"compression\": \"gzip\"}, "
        "\"max_attempts\": 5, \"priority\": -3}";
    json_t *spec, *res, *res2, *d1, *d2;
    plan   *p, *q = NULL;
    sh_err  err = {0};
    char   *text;
    size_t  i;
    int     rc;

    fresh_dirs();
    put_file("a.csv", "k,v\n1,1\n2,2\n3,3\n");
    put_file("b.csv", "k,v\n4,4\n");
    spec = json_loads(spec_text, 0, NULL);
    rc = plan_build(spec, &g_env, &p, &err);
    CHECK(rc == 0, "build: %s: %s", err.path, err.msg);
    if (rc != 0) {
        json_decref(spec);
        return;
    }
    res = plan_resolution(p);
    text = json_dumps(res, JSON_COMPACT);
    res2 = json_loads(text, 0, NULL);
    free(text);

    /* Even with the files gone, the plan comes back the same. */
    put_file("a.csv", "changed,entirely\n");
    rc = plan_load(spec, res2, &g_env, &q, &err);
    CHECK(rc == 0, "load: %s: %s", err.path, err.msg);
    if (rc == 0) {
        CHECK(q->n_parts == p->n_parts, "parts %zu vs %zu", q->n_parts,
              p->n_parts);
        for (i = 0; i < p->n_parts && i < q->n_parts; i++) {
            CHECK(memcmp(&p->parts[i], &q->parts[i], sizeof p->parts[i]) == 0,
                  "part %zu differs", i);
        }
        CHECK(q->n_files == p->n_files, "files %zu vs %zu", q->n_files,
              p->n_files);
        for (i = 0; i < p->n_files && i < q->n_files; i++) {
            CHECK(strcmp(q->files[i].rel, p->files[i].rel) == 0
                      && strcmp(q->files[i].path, p->files[i].path) == 0
                      && q->files[i].size_bytes == p->files[i].size_bytes
                      && q->files[i].mtime_ns == p->files[i].mtime_ns,
                  "file %zu differs: %s vs %s", i, q->files[i].path,
                  p->files[i].path);
        }
        d1 = plan_describe(p);
        d2 = plan_describe(q);
        CHECK(json_equal(d1, d2), "descriptions differ");
        json_decref(d1);
        json_decref(d2);
        CHECK(q->max_attempts == 5 && q->priority == -3
                  && strcmp(q->name, "rt") == 0 && q->out_gzip
                  && q->out_format == FMT_JSONL && q->n_steps == 2,
              "options lost in load");
        CHECK(q->in_schema->types[1] == SH_FLOAT && q->out_schema->n == 3
                  && q->out_schema->types[2] == SH_FLOAT,
              "schema lost in load");
    }
    plan_free(q);
    q = NULL;

    /* plan_load checks the spec exactly as plan_build does. */
    {
        json_t *bad = json_deep_copy(spec);

        json_object_set_new(json_array_get(json_object_get(bad, "steps"), 0),
                            "where", json_string("nope > 1"));
        rc = plan_load(bad, res2, &g_env, &q, &err);
        CHECK(rc == SH_EINVAL && strcmp(err.path, "steps[0].where") == 0,
              "load of a bad spec: %d %s %s", rc, err.path, err.msg);
        plan_free(q);
        q = NULL;
        json_decref(bad);
    }
    /* A damaged resolution is refused, not trusted. */
    json_array_set_new(json_array_get(json_object_get(res2, "parts"), 0), 0,
                       json_integer(9));
    rc = plan_load(spec, res2, &g_env, &q, &err);
    CHECK(rc != 0 && q == NULL, "damaged resolution accepted");
    plan_free(q);
    q = NULL;
    rc = plan_load(spec, NULL, &g_env, &q, &err);
    CHECK(rc != 0 && q == NULL, "missing resolution accepted");

    /* The description. */
    d1 = plan_describe(p);
    {
        json_t *in = json_object_get(d1, "input");
        json_t *out = json_object_get(d1, "output");
        json_t *st = json_array_get(json_object_get(d1, "stages"), 0);
        json_t *ops = json_object_get(st, "steps");

        CHECK(json_array_size(json_object_get(in, "files")) == 2
                  && json_integer_value(json_object_get(
                         json_array_get(json_object_get(in, "files"), 1),
                         "bytes"))
                         == 8,
              "describe: input.files wrong");
        CHECK(strcmp(json_string_value(json_object_get(in, "format")), "csv")
                  == 0,
              "describe: input.format");
        CHECK(strcmp(json_string_value(json_object_get(
                         json_array_get(json_object_get(in, "schema"), 1),
                         "type")),
                     "float")
                  == 0,
              "describe: input schema type of v");
        CHECK(strcmp(json_string_value(json_object_get(out, "format")), "jsonl")
                      == 0
                  && strcmp(json_string_value(
                                json_object_get(out, "compression")),
                            "gzip")
                         == 0
                  && json_array_size(json_object_get(out, "schema")) == 3,
              "describe: output wrong");
        CHECK(json_integer_value(json_object_get(d1, "partitions"))
                  == (json_int_t)p->n_parts,
              "describe: partitions");
        CHECK(json_array_size(json_object_get(d1, "stages")) == 1
                  && json_integer_value(json_object_get(st, "stage")) == 0
                  && json_array_size(ops) == 2
                  && strcmp(json_string_value(json_array_get(ops, 1)), "derive")
                         == 0
                  && json_integer_value(json_object_get(st, "tasks"))
                         == (json_int_t)p->n_parts,
              "describe: stages wrong");
    }
    json_decref(d1);
    json_decref(res);
    json_decref(res2);
    json_decref(spec);
    plan_free(p);
}

/* ---- one partition of a map-only plan (exec_run_task, stage 0) ------- */

#define PIPE_DATA                     \
    "id,year,name,score\n"            \
    "1,1999,ann,3\n"                  \
    "2,2001,\"bob, jr\",4.5\n"        \
    "3,2010,\"say \"\"hi\"\"\",1\r\n" \
    "4,2015,,2\n"                     \
    "5,2020,\"\",7\n"                 \
    "6,2005,\"multi\nline\",10\n"     \
    "7,,x,5\n"                        \
    "8,2023,zed,"

#define PIPE_STEPS                                                       \
    "\"steps\": ["                                                       \
    "{\"op\": \"filter\", \"where\": \"year >= 2000\"},"                 \
    "{\"op\": \"derive\", \"as\": \"decade\", "                          \
    "\"expr\": \"year - year % 10\"},"                                   \
    "{\"op\": \"derive\", \"as\": \"name\", \"expr\": \"upper(name)\"}," \
    "{\"op\": \"derive\", \"as\": \"half\", \"expr\": \"score / 2\"},"   \
    "{\"op\": \"select\", \"columns\": [\"id\", \"name\", \"decade\", "  \
    "\"half\"]}]"

#define PIPE_WANT                     \
    "id,name,decade,half\n"           \
    "2,\"BOB, JR\",2000,2.25\n"       \
    "3,\"SAY \"\"HI\"\"\",2010,0.5\n" \
    "4,,2010,1\n"                     \
    "5,\"\",2020,3.5\n"               \
    "6,\"MULTI\nLINE\",2000,5\n"      \
    "8,ZED,2020,\n"

static void
test_pipeline_csv(void)
{
    const char *sizes[] = {"1", "7", "64", "1GiB"};
    char        spec[2048];
    size_t      k;

    fresh_dirs();
    put_file("p.csv", PIPE_DATA);
    for (k = 0; k < 4; k++) {
        exec_stats st;
        sh_err     err = {0};
        plan      *p;
        char      *got;

        snprintf(spec, sizeof spec,
                 "{\"input\": {\"path\": \"p.csv\", \"partition_size\": "
                 "\"%s\"}, %s}",
                 sizes[k], PIPE_STEPS);
        p = MUST_BUILD(spec);
        if (p == NULL)
            continue;
        got = run_all(p, &st, NULL, &err);
        CHECK(got != NULL, "partition_size %s: run failed: %s", sizes[k],
              err.msg);
        if (got) {
            CHECK(strcmp(got, PIPE_WANT) == 0,
                  "partition_size %s: output\n%s\nwant\n%s", sizes[k], got,
                  PIPE_WANT);
            CHECK(st.rows_in == 8 && st.rows_out == 6 && st.rows_skipped == 0,
                  "partition_size %s: rows in %llu out %llu", sizes[k],
                  (unsigned long long)st.rows_in,
                  (unsigned long long)st.rows_out);
            CHECK(st.bytes_in
                      == strlen(PIPE_DATA)
                             - strlen("id,year,name,"
                                      "score\n"),
                  "partition_size %s: bytes_in %llu", sizes[k],
                  (unsigned long long)st.bytes_in);
            CHECK(st.bytes_out == strlen(PIPE_WANT),
                  "partition_size %s: bytes_out %llu", sizes[k],
                  (unsigned long long)st.bytes_out);
        }
        free(got);
        plan_free(p);
    }
}

/* No steps: the output is the input, re-quoted minimally. */
static void
test_pipeline_identity(void)
{
    sh_err err = {0};
    plan  *p;
    char  *got;

    fresh_dirs();
    put_file("p.csv", PIPE_DATA);
    p = MUST_BUILD("{\"input\": {\"path\": \"p.csv\", "
                   "\"partition_size\": 30}}");
    if (p == NULL)
        return;
    got = run_all(p, NULL, NULL, &err);
    CHECK(got != NULL, "run failed: %s", err.msg);
    if (got) {
        const char *want = "id,year,name,score\n"
                           "1,1999,ann,3\n"
                           "2,2001,\"bob, jr\",4.5\n"
                           "3,2010,\"say \"\"hi\"\"\",1\n"
                           "4,2015,,2\n"
                           "5,2020,\"\",7\n"
                           "6,2005,\"multi\nline\",10\n"
                           "7,,x,5\n"
                           "8,2023,zed,\n";

        CHECK(strcmp(got, want) == 0, "output\n%s\nwant\n%s", got, want);
    }
    free(got);
    plan_free(p);

    /* A header-only input gives just the header, from partition 0. */
    put_file("ho.csv", "a,b\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"ho.csv\"}}");
    if (p) {
        CHECK(p->n_parts == 1, "header-only has %zu parts", p->n_parts);
        got = run_all(p, NULL, NULL, &err);
        CHECK(got && strcmp(got, "a,b\n") == 0, "header-only output '%s'",
              got ? got : "(null)");
        free(got);
    }
    plan_free(p);
}

static void
test_pipeline_bad_data(void)
{
    char   long_val[128], data[512];
    char  *out = NULL, *tmp = NULL;
    sh_err err = {0};
    plan  *p;
    int    rc;

    fresh_dirs();
    put_file("bad.csv", "id,year\n1,2000\n2,abc\n3,2002\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"bad.csv\", "
                   "\"columns\": {\"year\": \"int\"}}}");
    if (p == NULL)
        return;
    out = xasprintf("%s/o.csv", g_out);
    tmp = xasprintf("%s/o.csv.tmp", g_out);
    rc = run_part(p, 0, out, NULL, NULL, NULL, &err);
    CHECK(rc == SH_EDATA, "want SH_EDATA, got %d (%s)", rc, err.msg);
    CHECK(strstr(err.msg, "partition 0") != NULL
              && strstr(err.msg, "file bad.csv") != NULL
              && strstr(err.msg, "bytes 8-28") != NULL
              && strstr(err.msg, "input: cannot parse 'abc' as int in "
                                 "column year, line 3")
                     != NULL,
          "message: %s", err.msg);
    CHECK(access(out, F_OK) != 0 && access(tmp, F_OK) != 0,
          "an output file remains after an error");
    plan_free(p);

    /* Wrong number of fields (past the sample: in the second file). */
    put_file("r/a.csv", "a,b\n1,2\n");
    put_file("r/b.csv", "a,b\n3,4\n5,6,7\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"r/*.csv\"}}");
    if (p) {
        CHECK(p->n_parts == 2, "r/*.csv: %zu parts", p->n_parts);
        rc = run_part(p, 1, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_EDATA
                  && strstr(err.msg, "partition 1 (file r/b.csv, bytes 4-")
                  && strstr(err.msg, "line 3 has 3 fields, expected 2"),
              "ragged: %d %s", rc, err.msg);
    }
    plan_free(p);

    /* A long bad value is cut short in the message. */
    memset(long_val, 'z', 100);
    long_val[100] = '\0';
    snprintf(data, sizeof data, "n\n1\n%s\n", long_val);
    put_file("long.csv", data);
    p = MUST_BUILD("{\"input\": {\"path\": \"long.csv\", "
                   "\"columns\": {\"n\": \"int\"}}}");
    if (p) {
        rc = run_part(p, 0, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_EDATA && strstr(err.msg, "zzzz...' as int") != NULL
                  && strstr(err.msg, long_val) == NULL,
              "long value: %s", err.msg);
    }
    plan_free(p);

    /* An evaluation error names the step and the line. */
    put_file("big.csv", "n\n1\n9223372036854775807\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"big.csv\"}, \"steps\": ["
                   "{\"op\": \"filter\", \"where\": \"true\"},"
                   "{\"op\": \"derive\", \"as\": \"m\", "
                   "\"expr\": \"n + 1\"}]}");
    if (p) {
        rc = run_part(p, 0, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_ERANGE
                  && strstr(err.msg, "partition 0 (file "
                                     "big.csv, bytes 2-")
                  && strstr(err.msg, "step 1 (derive): ")
                  && strstr(err.msg, "overflow") && strstr(err.msg, "line 3"),
              "overflow: %d %s", rc, err.msg);
        CHECK(access(out, F_OK) != 0 && access(tmp, F_OK) != 0,
              "an output file remains after an error");
    }
    plan_free(p);
    free(out);
    free(tmp);
}

static void
test_pipeline_skip(void)
{
    exec_stats st;
    sh_err     err = {0};
    plan      *p;
    char      *got;

    fresh_dirs();
    put_file("s.csv", "id,year\n1,2000\n2,abc\n3\n4,2004\n5,x,y\n6,\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"s.csv\", \"on_error\": "
                   "\"skip\", \"partition_size\": 5, "
                   "\"columns\": {\"year\": \"int\"}}, \"steps\": ["
                   "{\"op\": \"derive\", \"as\": \"next\", "
                   "\"expr\": \"year + 1\"}]}");
    if (p == NULL)
        return;
    got = run_all(p, &st, NULL, &err);
    CHECK(got != NULL, "run failed: %s", err.msg);
    if (got) {
        const char *want = "id,year,next\n1,2000,2001\n4,2004,2005\n6,,\n";

        CHECK(strcmp(got, want) == 0, "output\n%s\nwant\n%s", got, want);
        CHECK(st.rows_skipped == 3 && st.rows_in == 6 && st.rows_out == 3,
              "skipped %llu, in %llu, out %llu",
              (unsigned long long)st.rows_skipped,
              (unsigned long long)st.rows_in, (unsigned long long)st.rows_out);
    }
    free(got);
    plan_free(p);

    /* A column a select drops first is never parsed: no error. */
    put_file("u.csv", "id,junk\n1,abc\n2,3\n");
    p = MUST_BUILD("{\"input\": {\"path\": \"u.csv\", "
                   "\"columns\": {\"junk\": \"int\"}}, \"steps\": ["
                   "{\"op\": \"derive\", \"as\": \"d\", "
                   "\"expr\": \"id * 10\"},"
                   "{\"op\": \"select\", \"columns\": [\"d\", \"id\"]}]}");
    if (p) {
        got = run_all(p, &st, NULL, &err);
        CHECK(got != NULL && strcmp(got, "d,id\n10,1\n20,2\n") == 0,
              "unused column: %s", got ? got : err.msg);
        free(got);
    }
    plan_free(p);

    /* ... but one an expression reads is. */
    p = MUST_BUILD("{\"input\": {\"path\": \"u.csv\", "
                   "\"columns\": {\"junk\": \"int\"}}, \"steps\": ["
                   "{\"op\": \"derive\", \"as\": \"d\", "
                   "\"expr\": \"junk * 10\"},"
                   "{\"op\": \"select\", \"columns\": [\"d\", \"id\"]}]}");
    if (p) {
        got = run_all(p, &st, NULL, &err);
        CHECK(got == NULL && strstr(err.msg, "'abc' as int in column junk"),
              "used column not parsed: %s", got ? got : err.msg);
        free(got);
    }
    plan_free(p);
}

/* Inflate 'n' bytes of concatenated gzip members into a string. */
static char *
gunzip_all(const unsigned char *in, size_t n, int *members)
{
    z_stream      zs;
    strbuf        sb = {0};
    unsigned char buf[4096];
    int           zrc = Z_OK;

    memset(&zs, 0, sizeof zs);
    *members = 0;
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return NULL;
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)n;
    while (zs.avail_in > 0) {
        zs.next_out = buf;
        zs.avail_out = sizeof buf;
        zrc = inflate(&zs, Z_NO_FLUSH);
        sb_append(&sb, buf, sizeof buf - zs.avail_out);
        if (zrc == Z_STREAM_END) {
            (*members)++;
            inflateReset(&zs);
        } else if (zrc != Z_OK) {
            break;
        }
    }
    inflateEnd(&zs);
    if (zrc != Z_STREAM_END) {
        sb_free(&sb);
        return NULL;
    }
    return sb.data ? sb.data : xstrdup("");
}

static void
test_pipeline_gzip(void)
{
    const char *sizes[] = {"1", "64", "1GiB"};
    char        spec[2048];
    size_t      k, len;

    fresh_dirs();
    put_file("p.csv", PIPE_DATA);
    for (k = 0; k < 3; k++) {
        sh_err err = {0};
        plan  *p;
        char  *got, *plain;
        int    members = 0;

        snprintf(spec, sizeof spec,
                 "{\"input\": {\"path\": \"p.csv\", \"partition_size\": "
                 "\"%s\"}, \"output\": {\"compression\": \"gzip\"}, "
                 "%s}",
                 sizes[k], PIPE_STEPS);
        p = MUST_BUILD(spec);
        if (p == NULL)
            continue;
        got = run_all(p, NULL, &len, &err);
        CHECK(got != NULL, "gzip run failed: %s", err.msg);
        if (got) {
            CHECK(len > 2 && (unsigned char)got[0] == 0x1f
                      && (unsigned char)got[1] == 0x8b,
                  "not gzip");
            plain = gunzip_all((unsigned char *)got, len, &members);
            CHECK(plain != NULL && strcmp(plain, PIPE_WANT) == 0,
                  "partition_size %s: gunzip gave\n%s", sizes[k],
                  plain ? plain : "(error)");
            CHECK(members == (int)p->n_parts, "want %zu gzip members, got %d",
                  p->n_parts, members);
            free(plain);
        }
        free(got);
        plan_free(p);
    }
}

static void
test_pipeline_jsonl(void)
{
    sh_err err = {0};
    plan  *p;
    char  *got;
    char   data[512];
    int    members;
    size_t len;

    fresh_dirs();
    snprintf(data, sizeof data, "%s",
             "s,f,b,i\n"
             "\"q\"\"uote\\back\ttab\",1.5,true,1\n"
             "\"caf\xC3\xA9 \x01 \xFF\",nan,false,-2\n"
             ",inf,,\n"
             "\"\",-inf,TRUE,3\n");
    put_file("j.csv", data);
    p = MUST_BUILD("{\"input\": {\"path\": \"j.csv\", \"partition_size\": "
                   "3}, \"output\": {\"format\": \"jsonl\"}, \"steps\": ["
                   "{\"op\": \"derive\", \"as\": \"s\", "
                   "\"expr\": \"concat(s, '!')\"}]}");
    if (p == NULL)
        return;
    CHECK(p->in_schema->types[1] == SH_FLOAT
              && p->in_schema->types[2] == SH_BOOL,
          "j.csv types: f %s b %s", sh_type_name(p->in_schema->types[1]),
          sh_type_name(p->in_schema->types[2]));
    got = run_all(p, NULL, NULL, &err);
    CHECK(got != NULL, "run failed: %s", err.msg);
    if (got) {
        const char *want =
            "{\"s\":\"q\\\"uote\\\\back\\ttab!\",\"f\":1.5,\"b\":true,"
            "\"i\":1}\n"
            "{\"s\":\"caf\xC3\xA9 \\u0001 \xEF\xBF\xBD!\",\"f\":null,"
            "\"b\":false,\"i\":-2}\n"
            "{\"s\":null,\"f\":null,\"b\":null,\"i\":null}\n"
            "{\"s\":\"!\",\"f\":null,\"b\":true,\"i\":3}\n";
        char *line, *save = NULL, *copy = xstrdup(got);

        CHECK(strcmp(got, want) == 0, "output\n%s\nwant\n%s", got, want);
        /* Every line is valid JSON. */
        for (line = strtok_r(copy, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            json_t *j = json_loads(line, 0, NULL);

            CHECK(j != NULL, "not JSON: %s", line);
            json_decref(j);
        }
        free(copy);
    }
    free(got);
    plan_free(p);

    /* JSONL and gzip together. */
    p = MUST_BUILD("{\"input\": {\"path\": \"j.csv\", \"partition_size\": "
                   "3}, \"output\": {\"format\": \"jsonl\", "
                   "\"compression\": \"gzip\"}, \"steps\": ["
                   "{\"op\": \"select\", \"columns\": [\"i\"]}]}");
    if (p) {
        got = run_all(p, NULL, &len, &err);
        CHECK(got != NULL, "run failed: %s", err.msg);
        if (got) {
            char *plain = gunzip_all((unsigned char *)got, len, &members);

            CHECK(plain
                      && strcmp(plain, "{\"i\":1}\n{\"i\":-2}\n"
                                       "{\"i\":null}\n{\"i\":3}\n")
                             == 0,
                  "jsonl gzip gave %s", plain ? plain : "(error)");
            free(plain);
        }
        free(got);
    }
    plan_free(p);
}

static void
test_pipeline_changed(void)
{
    struct timespec ts[2];
    char           *out, *path;
    sh_err          err = {0};
    plan           *p;
    int             rc;

    fresh_dirs();
    put_file("c.csv", "a\n1\n2\n");
    out = xasprintf("%s/o.csv", g_out);
    path = xasprintf("%s/c.csv", g_root);

    /* The mtime alone. */
    p = MUST_BUILD("{\"input\": {\"path\": \"c.csv\"}}");
    if (p) {
        ts[0].tv_sec = ts[1].tv_sec = 1000000000;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0, "utimensat: %s",
              strerror(errno));
        rc = run_part(p, 0, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_EDATA
                  && strstr(err.msg, "input file 'c.csv' changed since the "
                                     "job was submitted"),
              "changed mtime: %d %s", rc, err.msg);
        CHECK(access(out, F_OK) != 0, "output written for a changed file");
    }
    plan_free(p);

    /* The size. */
    p = MUST_BUILD("{\"input\": {\"path\": \"c.csv\"}}");
    if (p) {
        put_file("c.csv", "a\n1\n2\n3\n");
        rc = run_part(p, 0, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_EDATA && strstr(err.msg, "changed since"),
              "changed size: %d %s", rc, err.msg);
    }
    plan_free(p);

    /* Gone. */
    p = MUST_BUILD("{\"input\": {\"path\": \"c.csv\"}}");
    if (p) {
        unlink(path);
        rc = run_part(p, 0, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_EDATA && strstr(err.msg, "c.csv"), "removed file: %d %s",
              rc, err.msg);
    }
    plan_free(p);
    free(out);
    free(path);
}

/* Tick: called at the end at least; non-zero cancels. */
static int
tick_count(void *ctx, const exec_stats *st)
{
    (void)st;
    (*(int *)ctx)++;
    return 0;
}

static int
tick_cancel(void *ctx, const exec_stats *st)
{
    (void)ctx;
    (void)st;
    return 1;
}

static void
test_pipeline_tick(void)
{
    strbuf sb = {0};
    char  *out, *tmp;
    sh_err err = {0};
    plan  *p;
    int    n = 0, rc, i;

    fresh_dirs();
    sb_puts(&sb, "a\n");
    for (i = 0; i < 200000; i++)
        sb_printf(&sb, "%d\n", i);
    put_bytes("t.csv", sb.data, sb.len);
    sb_free(&sb);
    out = xasprintf("%s/o.csv", g_out);
    tmp = xasprintf("%s/o.csv.tmp", g_out);
    /* A million one-byte partitions is refused before the file is cut,
     * saying how many the size gives and that a bare number is bytes. */
    EXPECT_ERR("{\"input\": {\"path\": \"t.csv\", \"partition_size\": 1}}",
               SH_EINVAL, "input.partition_size",
               "about 1288890 partitions; at most 100000");
    EXPECT_ERR("{\"input\": {\"path\": \"t.csv\", \"partition_size\": 1}}",
               SH_EINVAL, "input.partition_size", "A bare number is bytes");
    p = MUST_BUILD("{\"input\": {\"path\": \"t.csv\"}, \"steps\": ["
                   "{\"op\": \"filter\", \"where\": \"a % 2 == 0\"}]}");
    if (p) {
        exec_stats st;

        rc = run_part(p, 0, out, tick_count, &n, &st, &err);
        CHECK(rc == 0, "run: %s", err.msg);
        CHECK(n >= 4, "tick called %d times for 200000 rows", n);
        CHECK(st.rows_in == 200000 && st.rows_out == 100000,
              "rows in %llu out %llu", (unsigned long long)st.rows_in,
              (unsigned long long)st.rows_out);
        unlink(out);
        rc = run_part(p, 0, out, tick_cancel, NULL, NULL, &err);
        CHECK(rc == SH_ECANCELED, "cancel: got %d %s", rc, err.msg);
        CHECK(access(out, F_OK) != 0 && access(tmp, F_OK) != 0,
              "output remains after cancel");
        rc = run_part(p, 5, out, NULL, NULL, NULL, &err);
        CHECK(rc == SH_EINVAL, "partition 5 of %zu: %d", p->n_parts, rc);
    }
    plan_free(p);
    free(out);
    free(tmp);
}

/* ---- the writer ------------------------------------------------------- */

static void
test_writer_fields(void)
{
    strbuf sb = {0};

    writer_csv_field(&sb, "plain", 5);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, "", 0);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, "a,b", 3);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, "say \"x\"", 7);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, "cr\rlf\n", 6);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, " lead", 5);
    CHECK(strcmp(sb.data, "plain|\"\"|\"a,b\"|\"say \"\"x\"\"\"|\"cr\rlf\n\""
                          "| lead")
              == 0,
          "csv fields: %s", sb.data);
    sb_reset(&sb);

    /* CSV output is UTF-8: invalid bytes are U+FFFD, valid ones kept. */
    writer_csv_field(&sb, "caf\xe9", 4);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, "\xff,\"x", 4);
    sb_putc(&sb, '|');
    writer_csv_field(&sb, "caf\xc3\xa9", 5);
    CHECK(strcmp(sb.data, "caf\xEF\xBF\xBD|\"\xEF\xBF\xBD,\"\"x\"|"
                          "caf\xc3\xa9")
              == 0,
          "csv fields, UTF-8: %s", sb.data);
    sb_reset(&sb);

    /* Overlong, surrogate, truncated and past-U+10FFFF bytes are U+FFFD. */
    writer_json_string(&sb,
                       "a\"\\\x1f\x7f\xC0\xAF\xED\xA0\x80\xF4\x90\x80"
                       "\x80\xE2\x82\xAC\xF0\x9F\x98\x80\xE2\x82",
                       23);
    CHECK(strcmp(sb.data, "\"a\\\"\\\\\\u001f\x7f\xEF\xBF\xBD\xEF\xBF\xBD"
                          "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF"
                          "\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xE2"
                          "\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBD\xEF\xBF"
                          "\xBD\"")
              == 0,
          "json string: %s", sb.data);
    {
        json_t *j = json_loads(sb.data, JSON_DECODE_ANY, NULL);

        CHECK(j != NULL, "escaped string is not valid JSON: %s", sb.data);
        json_decref(j);
    }
    sb_free(&sb);
}

/* A one-column null row is not an empty line; floats are shortest. */
static void
test_writer_rows(void)
{
    schema  *sc = schema_new();
    char    *path, *got;
    writer  *w;
    sh_err   err = {0};
    sh_value row[1];
    int      fd;

    fresh_dirs();
    schema_add(sc, "x", SH_FLOAT);
    path = xasprintf("%s/w.csv", g_out);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    w = writer_new(fd, WRITER_CSV, 0, sc);
    CHECK(writer_header(w, &err) == 0, "header: %s", err.msg);
    row[0] = sh_null();
    writer_row(w, row, &err);
    row[0] = sh_float(0.1);
    writer_row(w, row, &err);
    row[0] = sh_float(3.0);
    writer_row(w, row, &err);
    row[0] = sh_float(INFINITY);
    writer_row(w, row, &err);
    row[0] = sh_str("", 0);
    writer_row(w, row, &err);
    CHECK(writer_finish(w, &err) == 0, "finish: %s", err.msg);
    CHECK(writer_bytes_out(w) == 18, "bytes out %llu",
          (unsigned long long)writer_bytes_out(w));
    writer_free(w);
    close(fd);
    got = fsys_read_file(path, NULL);
    CHECK(got && strcmp(got, "x\n\"\"\n0.1\n3\ninf\n\"\"\n") == 0, "rows: %s",
          got ? got : "(none)");
    free(got);
    free(path);
    schema_free(sc);
}

/* ---- steps and stages ------------------------------------------------- */

#define STEPS_INPUT "{\"input\": {\"path\": \"a.csv\"}, \"steps\": "

/* A spec over a.csv (DATA_A) with the steps 'steps' (a JSON array). */
static char *
steps_spec(const char *steps)
{
    return xasprintf("%s%s}", STEPS_INPUT, steps);
}

/* Build a.csv with 'steps'; NULL (and a failed check) when it fails. */
static plan *
build_steps_at(int line, const char *steps)
{
    char *spec = steps_spec(steps);
    plan *p = must_build_at(line, spec);

    free(spec);
    return p;
}
#define BUILD_STEPS(steps) build_steps_at(__LINE__, steps)

/* Expect 'steps' over a.csv to fail with SH_EINVAL at 'path'. */
static void
expect_step_err_at(int line, const char *steps, const char *path,
                   const char *word)
{
    char *spec = steps_spec(steps);

    expect_err_at(line, spec, SH_EINVAL, path, word);
    free(spec);
}
#define EXPECT_STEP_ERR(steps, path, word) \
    expect_step_err_at(__LINE__, steps, path, word)

/* Does 'sc' have exactly the columns "name:type,name:type,..."? */
static void
check_schema_at(int line, const schema *sc, const char *want)
{
    strbuf sb = {0};
    size_t i;

    for (i = 0; sc && i < sc->n; i++) {
        sb_printf(&sb, "%s%s:%s", i ? "," : "", sc->names[i],
                  sh_type_name(sc->types[i]));
    }
    CHECK_AT(strcmp(sb.data ? sb.data : "", want) == 0, line,
             "schema is '%s', want '%s'", sb.data ? sb.data : "", want);
    sb_free(&sb);
}
#define CHECK_SCHEMA(sc, want) check_schema_at(__LINE__, sc, want)

/* The columns of a.csv (DATA_A) as check_schema_at writes them. */
#define A_COLS "id:int,year:int,name:string,score:float,flag:bool"

/* A job directory with a model artifact under 'spool' for job 'id'. */
static void
put_model(const char *spool, const char *id)
{
    char *dir = xasprintf("%s/jobs/%s/artifacts", spool, id);
    char *path = xasprintf("%s/model", dir);

    fsys_mkdir_p(dir, 0755);
    CHECK(th_write_file(path, "model", 5) == 0, "cannot write %s", path);
    free(path);
    free(dir);
}

#define MODEL_ID "0b6c7f0e-7a1d-4c39-9f51-2f9d3c1e8a42"

/* Each map step compiles to the right fields and output schema. */
static void
test_steps_map(void)
{
    const void *spool = g_env.model_ctx;
    plan       *p;

    fresh_dirs();
    put_file("a.csv", DATA_A);
    put_file("users.csv", "id,city,pop\n1,x,10\n2,y,20\n");

    p = BUILD_STEPS("[{\"op\": \"tokenize\", \"column\": \"name\"}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, A_COLS ",token:string");
        CHECK(p->steps[0].src_col == 2 && p->steps[0].col == 5
                  && p->steps[0].lowercase == 1,
              "tokenize: src %zu col %zu lowercase %d", p->steps[0].src_col,
              p->steps[0].col, p->steps[0].lowercase);
    }
    plan_free(p);
    p = BUILD_STEPS("[{\"op\": \"tokenize\", \"column\": \"name\", "
                    "\"as\": \"name\", \"lowercase\": false}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, A_COLS);
        CHECK(p->steps[0].col == 2 && p->steps[0].lowercase == 0,
              "tokenize in place: col %zu lowercase %d", p->steps[0].col,
              p->steps[0].lowercase);
    }
    plan_free(p);

    p = BUILD_STEPS("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\"}, \"on\": [\"id\"]}]");
    if (p) {
        plan_join *j = p->steps[0].join;

        CHECK_SCHEMA(p->out_schema, A_COLS ",city:string,pop:int");
        CHECK(j != NULL && j->side != NULL && j->how == JOIN_INNER
                  && p->steps[0].n_cols == 1 && p->steps[0].cols[0] == 0,
              "join: side or keys missing");
        if (j && j->side) {
            CHECK(j->right_on[0] == 0 && j->n_keep == 2 && j->right_keep[0] == 1
                      && j->right_keep[1] == 2,
                  "join: right_on %zu, %zu kept", j->right_on[0], j->n_keep);
            CHECK(j->side->n_steps == 0 && j->side->n_parts == 1
                      && j->side->n_files == 1
                      && strcmp(j->side->files[0].rel, "users.csv") == 0,
                  "join side: %zu steps %zu parts", j->side->n_steps,
                  j->side->n_parts);
            CHECK_SCHEMA(j->side->in_schema, "id:int,city:string,pop:int");
        }
    }
    plan_free(p);
    p = BUILD_STEPS("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\", \"columns\": {\"pop\": \"float\"}}, "
                    "\"on\": [\"id\"], \"how\": \"left\"}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, A_COLS ",city:string,pop:float");
        CHECK(p->steps[0].join->how == JOIN_LEFT, "how left not set");
    }
    plan_free(p);

    g_env.model_ctx = g_out;
    put_model(g_out, MODEL_ID);
    p = BUILD_STEPS("[{\"op\": \"predict_naive_bayes\", \"model\": "
                    "\"job:" MODEL_ID "\", \"text\": \"name\"}]");
    if (p) {
        char *want = xasprintf("%s/jobs/%s/artifacts/model", g_out, MODEL_ID);

        CHECK_SCHEMA(p->out_schema, A_COLS ",prediction:string");
        CHECK(p->steps[0].model && strcmp(p->steps[0].model, want) == 0
                  && p->steps[0].src_col == 2 && p->steps[0].col == 5,
              "predict: model '%s', want '%s'",
              p->steps[0].model ? p->steps[0].model : "(null)", want);
        free(want);
    }
    plan_free(p);
    p = BUILD_STEPS("[{\"op\": \"predict_naive_bayes\", \"model\": "
                    "\"job:" MODEL_ID "\", \"text\": \"name\", "
                    "\"as\": \"flag\"}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, "id:int,year:int,name:string,"
                                    "score:float,flag:string");
        CHECK(p->steps[0].col == 4, "predict in place: col %zu",
              p->steps[0].col);
    }
    plan_free(p);
    g_env.model_ctx = spool;
}

/* Each combine step compiles to the right fields and output schema. */
static void
test_steps_combine(void)
{
    plan *p;

    fresh_dirs();
    put_file("a.csv", DATA_A);

    p = BUILD_STEPS(
        "[{\"op\": \"groupby\", \"by\": [\"name\", \"flag\"], \"aggs\": ["
        "{\"as\": \"n\", \"fn\": \"count\"},"
        "{\"as\": \"s\", \"fn\": \"sum\", \"column\": \"score\"},"
        "{\"as\": \"m\", \"fn\": \"mean\", \"column\": \"year\"},"
        "{\"as\": \"mx\", \"fn\": \"max\", \"column\": \"name\"},"
        "{\"as\": \"d\", \"fn\": \"count_distinct\", \"column\": \"id\"},"
        "{\"as\": \"sy\", \"fn\": \"sum\", \"column\": \"year\"},"
        "{\"as\": \"sd\", \"fn\": \"std\", \"column\": \"score\"},"
        "{\"as\": \"a\", \"fn\": \"approx_count_distinct\", "
        "\"column\": \"name\"}]}]");
    if (p) {
        const plan_step *s = &p->steps[0];

        CHECK_SCHEMA(p->out_schema,
                     "name:string,flag:bool,n:int,s:float,m:float,"
                     "mx:string,d:int,sy:int,sd:float,a:int");
        CHECK(s->n_cols == 2 && s->cols[0] == 2 && s->cols[1] == 4
                  && s->n_aggs == 8,
              "groupby: %zu keys, %zu aggs", s->n_cols, s->n_aggs);
        if (s->n_aggs == 8) {
            CHECK(s->aggs[0].fn == AGG_COUNT && s->aggs[0].col == -1
                      && s->aggs[1].fn == AGG_SUM && s->aggs[1].col == 3
                      && s->aggs[1].in_type == SH_FLOAT
                      && s->aggs[7].fn == AGG_APPROX_COUNT_DISTINCT
                      && s->aggs[7].in_type == SH_STRING,
                  "groupby: agg defs wrong");
        }
    }
    plan_free(p);
    /* 'as' defaults to fn or fn_column. */
    p = BUILD_STEPS("[{\"op\": \"groupby\", \"by\": [\"flag\"], \"aggs\": ["
                    "{\"fn\": \"count\"}, {\"fn\": \"min\", "
                    "\"column\": \"score\"}]}]");
    if (p)
        CHECK_SCHEMA(p->out_schema, "flag:bool,count:int,min_score:float");
    plan_free(p);

    p = BUILD_STEPS("[{\"op\": \"aggregate\", \"aggs\": ["
                    "{\"as\": \"n\", \"fn\": \"count\", \"column\": "
                    "\"name\"}, {\"as\": \"v\", \"fn\": \"var\", "
                    "\"column\": \"id\"}]}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, "n:int,v:float");
        CHECK(p->steps[0].n_cols == 0 && p->steps[0].n_aggs == 2
                  && p->steps[0].aggs[0].col == 2,
              "aggregate: %zu keys %zu aggs", p->steps[0].n_cols,
              p->steps[0].n_aggs);
    }
    plan_free(p);

    p = BUILD_STEPS("[{\"op\": \"distinct\"}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, A_COLS);
        CHECK(p->steps[0].n_cols == 5 && p->steps[0].cols[4] == 4,
              "distinct: %zu columns", p->steps[0].n_cols);
    }
    plan_free(p);
    p = BUILD_STEPS("[{\"op\": \"distinct\", \"columns\": [\"flag\", "
                    "\"name\"]}]");
    if (p) {
        CHECK_SCHEMA(p->out_schema, "flag:bool,name:string");
        CHECK(p->steps[0].n_cols == 2 && p->steps[0].cols[0] == 4
                  && p->steps[0].cols[1] == 2,
              "distinct columns wrong");
    }
    plan_free(p);

    p = BUILD_STEPS("[{\"op\": \"sort\", \"by\": [{\"column\": \"year\", "
                    "\"desc\": true}, \"name\", {\"column\": \"id\", "
                    "\"desc\": false}]}, {\"op\": \"limit\", \"n\": 7}]");
    if (p) {
        const plan_step *s = &p->steps[0];

        CHECK_SCHEMA(p->out_schema, A_COLS);
        CHECK(s->n_keys == 3 && s->keys[0].col == 1 && s->keys[0].desc == 1
                  && s->keys[1].col == 2 && s->keys[1].desc == 0
                  && s->keys[2].col == 0 && s->keys[2].desc == 0,
              "sort keys wrong (%zu)", s->n_keys);
        CHECK(s->limit == 7 && p->steps[1].limit == 7,
              "top-n: sort.limit %llu limit.limit %llu",
              (unsigned long long)s->limit,
              (unsigned long long)p->steps[1].limit);
    }
    plan_free(p);
    /* A limit that does not follow a sort leaves the sort alone. */
    p = BUILD_STEPS("[{\"op\": \"sort\", \"by\": [\"id\"]}, {\"op\": "
                    "\"filter\", \"where\": \"id > 1\"}, {\"op\": "
                    "\"limit\", \"n\": 1}]");
    if (p) {
        CHECK(p->steps[0].limit == 0 && p->steps[2].limit == 1,
              "sort.limit %llu", (unsigned long long)p->steps[0].limit);
    }
    plan_free(p);

    p = BUILD_STEPS("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"flag\", \"features\": 1024, "
                    "\"holdout\": \"id % 5 == 0\"}]");
    if (p) {
        const plan_step *s = &p->steps[0];

        CHECK_SCHEMA(p->out_schema, "n_train:int,n_test:int,accuracy:float");
        CHECK(s->src_col == 2 && s->label_col == 4 && s->features == 1024
                  && s->e != NULL,
              "train: src %zu label %zu features %u", s->src_col, s->label_col,
              s->features);
    }
    plan_free(p);
    p = BUILD_STEPS("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"year\"}]");
    if (p) {
        CHECK(p->steps[0].features == PLAN_NB_FEATURES_DEFAULT
                  && p->steps[0].e == NULL && p->steps[0].label_col == 1,
              "train defaults: features %u", p->steps[0].features);
    }
    plan_free(p);
}

/* Check stage k of 'p': {src, map_begin, map_end, sink, n_tasks}. */
static void
check_stage_at(int line, const plan *p, size_t k, long src, size_t begin,
               size_t end, long sink, size_t tasks)
{
    const plan_stage *st;

    if (k >= p->n_stages) {
        CHECK_AT(0, line, "no stage %zu (%zu stages)", k, p->n_stages);
        return;
    }
    st = &p->stages[k];
    CHECK_AT(st->src == src && st->map_begin == begin && st->map_end == end
                 && st->sink == sink && st->n_tasks == tasks
                 && p->stage_tasks[k] == tasks,
             line,
             "stage %zu is {src %ld, map %zu..%zu, sink %ld, %zu tasks "
             "(db %zu)}, want {src %ld, map %zu..%zu, sink %ld, %zu tasks}",
             k, st->src, st->map_begin, st->map_end, st->sink, st->n_tasks,
             p->stage_tasks[k], src, begin, end, sink, tasks);
}
#define CHECK_STAGE(p, k, src, begin, end, sink, tasks) \
    check_stage_at(__LINE__, p, k, src, begin, end, sink, tasks)

/* Build 'steps' over big.csv cut into 'psize' partitions. */
static plan *
build_big_at(int line, const char *psize, const char *steps)
{
    char *spec = xasprintf("{\"input\": {\"path\": \"big.csv\", "
                           "\"partition_size\": \"%s\"}, \"steps\": %s}",
                           psize, steps);
    plan *p = must_build_at(line, spec);

    free(spec);
    return p;
}
#define BUILD_BIG(psize, steps) build_big_at(__LINE__, psize, steps)

/* The stages of the pipelines SPEC section 2 allows. */
static void
test_stages(void)
{
    strbuf sb = {0};
    plan  *p;
    int    i;

    fresh_dirs();
    put_file("a.csv", DATA_A);
    put_file("users.csv", "id,city\n1,x\n");
    sb_puts(&sb, "id,year,name,score,flag\n");
    for (i = 0; i < 40; i++)
        sb_printf(&sb, "%d,%d,n%d,%d.5,true\n", i, 1990 + i, i % 7, i);
    put_file("big.csv", sb.data);
    sb_free(&sb);

    /* No step, and map steps only: one stage. */
    p = BUILD_STEPS("[]");
    if (p) {
        CHECK(p->n_stages == 1, "no steps: %zu stages", p->n_stages);
        CHECK_STAGE(p, 0, -1, 0, 0, -1, p->n_parts);
    }
    plan_free(p);
    p = BUILD_BIG("64", "[{\"op\": \"filter\", \"where\": \"id > 1\"}, "
                        "{\"op\": \"derive\", \"as\": \"x\", "
                        "\"expr\": \"1\"}]");
    if (p) {
        CHECK(p->n_stages == 1 && p->n_parts > 1,
              "map only: %zu stages, %zu parts", p->n_stages, p->n_parts);
        CHECK_STAGE(p, 0, -1, 0, 2, -1, p->n_parts);
    }
    plan_free(p);

    /* filter, derive, groupby, sort, limit: parts, buckets, 1. More
     * partitions than buckets, then fewer. */
    {
        static const char *const steps =
            "[{\"op\": \"filter\", \"where\": \"year > 1991\"},"
            "{\"op\": \"derive\", \"as\": \"d\", \"expr\": \"year % 10\"},"
            "{\"op\": \"groupby\", \"by\": [\"d\"], \"aggs\": "
            "[{\"as\": \"n\", \"fn\": \"count\"}]},"
            "{\"op\": \"sort\", \"by\": [{\"column\": \"n\", "
            "\"desc\": true}]},"
            "{\"op\": \"limit\", \"n\": 3}]";

        p = BUILD_BIG("1", steps);
        if (p) {
            CHECK(p->n_parts == 40 && p->n_stages == 3, "%zu parts %zu stages",
                  p->n_parts, p->n_stages);
            CHECK_STAGE(p, 0, -1, 0, 2, 2, 40);
            CHECK_STAGE(p, 1, 2, 3, 3, 3, PLAN_MAX_BUCKETS);
            CHECK_STAGE(p, 2, 3, 5, 5, -1, 1);
            CHECK(p->steps[3].limit == 3, "sort.limit %llu",
                  (unsigned long long)p->steps[3].limit);
            CHECK_SCHEMA(p->out_schema, "d:int,n:int");
        }
        plan_free(p);
        p = BUILD_BIG("200", steps);
        if (p) {
            CHECK(p->n_parts > 1 && p->n_parts < PLAN_MAX_BUCKETS, "%zu parts",
                  p->n_parts);
            CHECK_STAGE(p, 0, -1, 0, 2, 2, p->n_parts);
            CHECK_STAGE(p, 1, 2, 3, 3, 3, p->n_parts);
            CHECK_STAGE(p, 2, 3, 5, 5, -1, 1);
        }
        plan_free(p);
    }

    /* tokenize, groupby, sort, limit: word counts. */
    p = BUILD_BIG("1", "[{\"op\": \"tokenize\", \"column\": \"name\"},"
                       "{\"op\": \"groupby\", \"by\": [\"token\"], "
                       "\"aggs\": [{\"as\": \"n\", \"fn\": \"count\"}]},"
                       "{\"op\": \"sort\", \"by\": [{\"column\": \"n\", "
                       "\"desc\": true}, \"token\"]},"
                       "{\"op\": \"limit\", \"n\": 10}]");
    if (p) {
        CHECK(p->n_stages == 3, "word count: %zu stages", p->n_stages);
        CHECK_STAGE(p, 0, -1, 0, 1, 1, 40);
        CHECK_STAGE(p, 1, 1, 2, 2, 2, PLAN_MAX_BUCKETS);
        CHECK_STAGE(p, 2, 2, 4, 4, -1, 1);
        CHECK_SCHEMA(p->out_schema, "token:string,n:int");
    }
    plan_free(p);

    /* join (a map step), then groupby, then a map step after it. */
    p = BUILD_STEPS("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\"}, \"on\": [\"id\"]},"
                    "{\"op\": \"groupby\", \"by\": [\"city\"]},"
                    "{\"op\": \"derive\", \"as\": \"one\", "
                    "\"expr\": \"1\"}]");
    if (p) {
        CHECK(p->n_stages == 2, "join, groupby: %zu stages", p->n_stages);
        CHECK_STAGE(p, 0, -1, 0, 1, 1, p->n_parts);
        CHECK_STAGE(p, 1, 1, 2, 3, -1, 1);
        CHECK_SCHEMA(p->out_schema, "city:string,one:int");
    }
    plan_free(p);

    /* aggregate, distinct, limit, train_naive_bayes. */
    p = BUILD_BIG("1", "[{\"op\": \"aggregate\", \"aggs\": "
                       "[{\"as\": \"n\", \"fn\": \"count\"}]}]");
    if (p) {
        CHECK(p->n_stages == 2, "aggregate: %zu stages", p->n_stages);
        CHECK_STAGE(p, 0, -1, 0, 0, 0, 40);
        CHECK_STAGE(p, 1, 0, 1, 1, -1, 1);
    }
    plan_free(p);
    p = BUILD_BIG("1", "[{\"op\": \"distinct\", \"columns\": [\"name\"]},"
                       "{\"op\": \"limit\", \"n\": 2}]");
    if (p) {
        CHECK(p->n_stages == 3, "distinct, limit: %zu stages", p->n_stages);
        CHECK_STAGE(p, 1, 0, 1, 1, 1, PLAN_MAX_BUCKETS);
        CHECK_STAGE(p, 2, 1, 2, 2, -1, 1);
    }
    plan_free(p);
    p = BUILD_BIG("1", "[{\"op\": \"train_naive_bayes\", \"text\": "
                       "\"name\", \"label\": \"flag\", \"holdout\": "
                       "\"id % 4 == 0\"}]");
    if (p) {
        CHECK(p->n_stages == 2, "train: %zu stages", p->n_stages);
        CHECK_STAGE(p, 0, -1, 0, 0, 0, 40);
        CHECK_STAGE(p, 1, 0, 1, 1, -1, 1);
    }
    plan_free(p);

    /* sort, limit, limit: the first limit is the sort's top-n, the second
     * a combine step of its own. */
    p = BUILD_BIG("1", "[{\"op\": \"sort\", \"by\": [\"id\"]},"
                       "{\"op\": \"limit\", \"n\": 5},"
                       "{\"op\": \"limit\", \"n\": 2}]");
    if (p) {
        CHECK(p->n_stages == 3, "sort, limit, limit: %zu stages", p->n_stages);
        CHECK_STAGE(p, 0, -1, 0, 0, 0, 40);
        CHECK_STAGE(p, 1, 0, 2, 2, 2, 1);
        CHECK_STAGE(p, 2, 2, 3, 3, -1, 1);
    }
    plan_free(p);

    /* The description lists the stages and the halves they run. */
    p = BUILD_BIG("1", "[{\"op\": \"filter\", \"where\": \"id > 0\"},"
                       "{\"op\": \"groupby\", \"by\": [\"name\"]},"
                       "{\"op\": \"sort\", \"by\": [\"name\"]},"
                       "{\"op\": \"limit\", \"n\": 4}]");
    if (p) {
        json_t *d = plan_describe(p);
        char   *text = json_dumps(json_object_get(d, "stages"), JSON_COMPACT);
        const char *want =
            "[{\"stage\":0,\"tasks\":40,\"steps\":[\"filter\","
            "\"groupby (partial)\"]},{\"stage\":1,\"tasks\":16,\"steps\":"
            "[\"groupby (final)\",\"sort (partial, top 4)\"]},{\"stage\":2,"
            "\"tasks\":1,\"steps\":[\"sort (final, top 4)\"]}]";

        CHECK(text && strcmp(text, want) == 0, "stages described as %s",
              text ? text : "(null)");
        CHECK(json_array_size(json_object_get(d, "steps")) == 4,
              "describe: steps");
        free(text);
        json_decref(d);
    }
    plan_free(p);
}

/* Every error of a step is a 400 at the field at fault. */
static void
test_step_errors(void)
{
    const void *spool = g_env.model_ctx;
    uint64_t    mem = g_env.mem_bytes;

    fresh_dirs();
    put_file("a.csv", DATA_A);
    put_file("users.csv", "id,city,name\n1,x,y\n");
    put_file("codes.csv", "id,code\nA,1\n");

    /* Unknown fields, with a hint. */
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], "
                    "\"agg\": []}]",
                    "steps[0].agg", "did you mean 'aggs'");
    EXPECT_STEP_ERR("[{\"op\": \"sort\", \"by\": [{\"colum\": \"id\"}]}]",
                    "steps[0].by[0].colum", "did you mean 'column'");

    /* tokenize. */
    EXPECT_STEP_ERR("[{\"op\": \"tokenize\"}]", "steps[0].column", "required");
    EXPECT_STEP_ERR("[{\"op\": \"tokenize\", \"column\": \"nam\"}]",
                    "steps[0].column",
                    "unknown column 'nam'; columns are: id, year, name, "
                    "score, flag");
    EXPECT_STEP_ERR("[{\"op\": \"tokenize\", \"column\": \"year\"}]",
                    "steps[0].column", "needs a string column");
    EXPECT_STEP_ERR("[{\"op\": \"tokenize\", \"column\": \"name\", "
                    "\"lowercase\": \"yes\"}]",
                    "steps[0].lowercase", "true or false");
    EXPECT_STEP_ERR("[{\"op\": \"tokenize\", \"column\": \"name\", "
                    "\"as\": \"\"}]",
                    "steps[0].as", "empty");

    /* groupby and aggregate. */
    EXPECT_STEP_ERR("[{\"op\": \"groupby\"}]", "steps[0].by", "non-empty");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": []}]", "steps[0].by",
                    "non-empty");
    EXPECT_STEP_ERR("[{\"op\": \"filter\", \"where\": \"true\"}, "
                    "{\"op\": \"groupby\", \"by\": [\"name\", \"nme\"]}]",
                    "steps[1].by[1]", "unknown column 'nme'; columns are:");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\", 3]}]",
                    "steps[0].by[1]", "strings");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\", \"name\"]}]",
                    "steps[0].by[1]", "twice");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"n\", \"fn\": \"count\"}, {\"as\": \"m\", "
                    "\"fn\": \"mode\", \"column\": \"score\"}]}]",
                    "steps[0].aggs[1].fn",
                    "unknown aggregate function 'mode'; functions are: "
                    "count, sum, mean");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"n\"}]}]",
                    "steps[0].aggs[0].fn", "required");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"m\", \"fn\": \"sum\", \"column\": "
                    "\"scor\"}]}]",
                    "steps[0].aggs[0].column", "unknown column 'scor'");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"flag\"], \"aggs\": "
                    "[{\"as\": \"m\", \"fn\": \"mean\", \"column\": "
                    "\"name\"}]}]",
                    "steps[0].aggs[0].column",
                    "cannot take the mean of string column 'name'");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"m\", \"fn\": \"sum\", \"column\": "
                    "\"flag\"}]}]",
                    "steps[0].aggs[0].column",
                    "cannot take the sum of bool column 'flag'");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"m\", \"fn\": \"max\"}]}]",
                    "steps[0].aggs[0].column", "'max' needs a 'column'");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"n\", \"fn\": \"count\"}, {\"as\": \"n\", "
                    "\"fn\": \"sum\", \"column\": \"id\"}]}]",
                    "steps[0].aggs[1].as", "already a column");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"name\", \"fn\": \"count\"}]}]",
                    "steps[0].aggs[0].as", "already a column");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[\"count\"]}]",
                    "steps[0].aggs[0]", "object");
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "{\"n\": \"count\"}}]",
                    "steps[0].aggs", "array");
    /* After a groupby only its columns are known. */
    EXPECT_STEP_ERR("[{\"op\": \"groupby\", \"by\": [\"name\"], \"aggs\": "
                    "[{\"as\": \"n\", \"fn\": \"count\"}]}, "
                    "{\"op\": \"filter\", \"where\": \"year > 1\"}]",
                    "steps[1].where", "year");
    EXPECT_STEP_ERR("[{\"op\": \"aggregate\"}]", "steps[0].aggs", "non-empty");
    EXPECT_STEP_ERR("[{\"op\": \"aggregate\", \"aggs\": []}]", "steps[0].aggs",
                    "non-empty");
    EXPECT_STEP_ERR("[{\"op\": \"aggregate\", \"aggs\": [{\"as\": \"s\", "
                    "\"fn\": \"std\", \"column\": \"name\"}]}]",
                    "steps[0].aggs[0].column",
                    "cannot take the std of string column 'name'");

    /* distinct. */
    EXPECT_STEP_ERR("[{\"op\": \"distinct\", \"columns\": [\"nope\"]}]",
                    "steps[0].columns[0]", "unknown column 'nope'");
    EXPECT_STEP_ERR("[{\"op\": \"distinct\", \"columns\": []}]",
                    "steps[0].columns", "non-empty");

    /* sort and limit. */
    EXPECT_STEP_ERR("[{\"op\": \"sort\"}]", "steps[0].by", "non-empty");
    EXPECT_STEP_ERR("[{\"op\": \"sort\", \"by\": [{\"column\": \"id\"}, "
                    "{\"column\": \"yeer\", \"desc\": true}]}]",
                    "steps[0].by[1].column",
                    "unknown column 'yeer'; columns are: id, year");
    EXPECT_STEP_ERR("[{\"op\": \"sort\", \"by\": [\"id\", \"yeer\"]}]",
                    "steps[0].by[1]", "unknown column 'yeer'");
    EXPECT_STEP_ERR("[{\"op\": \"sort\", \"by\": [{\"column\": \"id\", "
                    "\"desc\": 1}]}]",
                    "steps[0].by[0].desc", "true or false");
    EXPECT_STEP_ERR("[{\"op\": \"sort\", \"by\": [7]}]", "steps[0].by[0]",
                    "object");
    EXPECT_STEP_ERR("[{\"op\": \"limit\"}]", "steps[0].n", "required");
    EXPECT_STEP_ERR("[{\"op\": \"limit\", \"n\": 0}]", "steps[0].n",
                    "integer >= 1");
    EXPECT_STEP_ERR("[{\"op\": \"limit\", \"n\": \"5\"}]", "steps[0].n",
                    "integer");

    /* join. */
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"on\": [\"id\"]}]", "steps[0].with",
                    "input object");
    EXPECT_STEP_ERR("[{\"op\": \"filter\", \"where\": \"true\"}, "
                    "{\"op\": \"join\", \"with\": {\"path\": \"nope.csv\"}, "
                    "\"on\": [\"id\"]}]",
                    "steps[1].with.path", "no such file 'nope.csv'");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"pth\": \"u.csv\"}, "
                    "\"on\": [\"id\"]}]",
                    "steps[0].with.pth", "did you mean 'path'");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\", \"columns\": {\"idd\": \"int\"}}, "
                    "\"on\": [\"id\"]}]",
                    "steps[0].with.columns.idd", "unknown column 'idd'");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\"}}]",
                    "steps[0].on", "non-empty");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\"}, \"on\": [\"id\", \"year\"]}]",
                    "steps[0].on[1]",
                    "key 'year' is not a column of the join side; its "
                    "columns are: id, city, name");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\"}, \"on\": [\"idd\"]}]",
                    "steps[0].on[0]", "unknown column 'idd'");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"codes.csv\"}, \"on\": [\"id\"]}]",
                    "steps[0].on[0]",
                    "key 'id' is int on the left but string in the join "
                    "side");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"users.csv\"}, \"on\": [\"id\"]}]",
                    "steps[0].with",
                    "column 'name' of the join side is also a column of "
                    "the left rows");
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"codes.csv\"}, \"on\": [\"id\"], \"how\": "
                    "\"outer\"}]",
                    "steps[0].how", "inner, left, right, full, semi, anti");
    /* a side over the budget is joined partitioned (test_exec) */
    g_env.mem_bytes = 8;
    EXPECT_STEP_ERR("[{\"op\": \"join\", \"with\": {\"path\": "
                    "\"codes.csv\"}, \"on\": [\"id\"]}]",
                    "steps[0].on[0]", "is int on the left but string");
    g_env.mem_bytes = mem;

    /* train_naive_bayes. */
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"label\": "
                    "\"flag\"}]",
                    "steps[0].text", "required");
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"text\": \"id\", "
                    "\"label\": \"flag\"}]",
                    "steps[0].text",
                    "needs a string column, but 'id' is "
                    "int");
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"flg\"}]",
                    "steps[0].label", "unknown column 'flg'");
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"flag\", \"features\": 0}]",
                    "steps[0].features", "from 1 to 16777216");
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"flag\", \"features\": 16777217}]",
                    "steps[0].features", "from 1 to 16777216");
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"flag\", \"holdout\": \"id % 5\"}]",
                    "steps[0].holdout",
                    "holdout needs a bool expression, got int");
    EXPECT_STEP_ERR("[{\"op\": \"train_naive_bayes\", \"text\": \"name\", "
                    "\"label\": \"flag\", \"holdout\": \"idd > 1\"}]",
                    "steps[0].holdout", "idd");

    /* predict_naive_bayes. */
    g_env.model_ctx = g_out;
    put_model(g_out, MODEL_ID);
    EXPECT_STEP_ERR("[{\"op\": \"predict_naive_bayes\", \"text\": "
                    "\"name\"}]",
                    "steps[0].model", "required");
    EXPECT_STEP_ERR("[{\"op\": \"predict_naive_bayes\", \"model\": "
                    "\"../../etc\", \"text\": \"name\"}]",
                    "steps[0].model", "must be \"job:ID\"");
    EXPECT_STEP_ERR("[{\"op\": \"predict_naive_bayes\", \"model\": "
                    "\"job:11111111-2222-3333-4444-555555555555\", "
                    "\"text\": \"name\"}]",
                    "steps[0].model",
                    "job 11111111-2222-3333-4444-555555555555 has no "
                    "model: it must be a succeeded job with a "
                    "train_naive_bayes step");
    EXPECT_STEP_ERR("[{\"op\": \"predict_naive_bayes\", \"model\": "
                    "\"job:" MODEL_ID "\", \"text\": \"score\"}]",
                    "steps[0].text", "needs a string column");
    g_env.model_ctx = spool;
}

/* plan_load rebuilds the stages and the join side from the resolution,
 * without reading the files; the input's format and compression come
 * from the spec. */
static void
test_join_resolution(void)
{
    const char *spec_text =
        "{\"input\": {\"path\": \"a.csv\", \"partition_size\": 16}, "
        "\"steps\": [{\"op\": \"filter\", \"where\": \"id > 0\"}, "
        "{\"op\": \"join\", \"with\": {\"path\": \"u/*.csv\", "
        "\"partition_size\": 8}, \"on\": [\"id\"], \"how\": \"left\"}, "
        "{\"op\": \"groupby\", \"by\": [\"city\"], \"aggs\": "
        "[{\"as\": \"n\", \"fn\": \"count\"}]}]}";
    json_t *spec, *res, *side_res, *d1, *d2;
    plan   *p = NULL, *q = NULL;
    sh_err  err = {0};
    size_t  i;
    int     rc;

    fresh_dirs();
    put_file("a.csv", DATA_A);
    put_file("u/1.csv", "id,city\n1,x\n2,y\n");
    put_file("u/2.csv", "id,city\n3,z\n");
    spec = json_loads(spec_text, 0, NULL);
    rc = plan_build(spec, &g_env, &p, &err);
    CHECK(rc == 0, "build: %s: %s", err.path, err.msg);
    if (rc != 0) {
        json_decref(spec);
        return;
    }
    res = plan_resolution(p);
    side_res = json_object_get(json_object_get(res, "joins"), "1");
    CHECK(json_is_object(side_res)
              && json_array_size(json_object_get(side_res, "files")) == 2,
          "resolution lacks joins.1");

    /* The side's files change; the plan does not. */
    put_file("u/1.csv", "other,columns\n");
    rc = plan_load(spec, res, &g_env, &q, &err);
    CHECK(rc == 0, "load: %s: %s", err.path, err.msg);
    if (rc == 0) {
        const plan *ps = p->steps[1].join->side;
        const plan *qs = q->steps[1].join->side;

        CHECK(q->n_stages == p->n_stages && q->n_stages == 2,
              "stages %zu vs %zu", q->n_stages, p->n_stages);
        for (i = 0; i < p->n_stages && i < q->n_stages; i++) {
            CHECK(memcmp(&p->stages[i], &q->stages[i], sizeof p->stages[i]) == 0
                      && p->stage_tasks[i] == q->stage_tasks[i],
                  "stage %zu differs", i);
        }
        CHECK(qs->n_files == 2 && qs->n_parts == ps->n_parts && ps->n_parts >= 2
                  && q->steps[1].join->how == JOIN_LEFT,
              "side: %zu files %zu parts (built %zu)", qs->n_files, qs->n_parts,
              ps->n_parts);
        for (i = 0; i < ps->n_parts && i < qs->n_parts; i++) {
            CHECK(memcmp(&ps->parts[i], &qs->parts[i], sizeof ps->parts[i])
                      == 0,
                  "side part %zu differs", i);
        }
        CHECK_SCHEMA(qs->in_schema, "id:int,city:string");
        CHECK_SCHEMA(q->out_schema, "city:string,n:int");
        d1 = plan_describe(p);
        d2 = plan_describe(q);
        CHECK(json_equal(d1, d2), "descriptions differ");
        json_decref(d1);
        json_decref(d2);
    }
    plan_free(q);
    q = NULL;

    /* Without the side's resolution the stored plan is damaged. */
    json_object_del(json_object_get(res, "joins"), "1");
    rc = plan_load(spec, res, &g_env, &q, &err);
    CHECK(rc == SH_EINVAL && q == NULL && strstr(err.msg, "damaged"),
          "missing join side accepted: %d %s", rc, err.msg);
    plan_free(q);
    q = NULL;

    /* Format and compression are the spec's: a stored resolution is
     * enough to see them, so no file of those formats is needed here. */
    json_decref(res);
    res = plan_resolution(p);
    {
        static const struct {
            const char *input;
            plan_format fmt;
            int         gz;
        } cases[] = {
            {"{\"path\": \"a.csv.gz\"}", FMT_CSV, 1},
            {"{\"path\": \"a.csv.gz\", \"compression\": \"none\"}", FMT_CSV, 0},
            {"{\"path\": \"a.jsonl\", \"format\": \"jsonl\"}", FMT_JSONL, 0},
            {"{\"path\": \"*.txt\", \"format\": \"lines\", \"compression\": "
             "\"gzip\"}",
             FMT_LINES, 1},
        };

        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char   *text = xasprintf("{\"input\": %s}", cases[i].input);
            json_t *s2 = json_loads(text, 0, NULL);

            rc = plan_load(s2, res, &g_env, &q, &err);
            CHECK(rc == 0 && q->in_format == cases[i].fmt
                      && q->in_gzip == cases[i].gz && q->n_stages == 1,
                  "%s: rc %d (%s) format %d gzip %d", text, rc, err.msg,
                  q ? (int)q->in_format : -1, q ? q->in_gzip : -1);
            plan_free(q);
            q = NULL;
            json_decref(s2);
            free(text);
        }
    }
    json_decref(res);
    json_decref(spec);
    plan_free(p);
}

/* ---- parquet input ------------------------------------------------------ */

/* Copy tests/unit/data/parquet/'name' (DuckDB-written, see gen.js) into
 * the root; 0, or -1 when the fixture is not found from here. */
static int
put_parquet(const char *name)
{
    char  *path = xasprintf("tests/unit/data/parquet/%s", name);
    FILE  *f = fopen(path, "rb");
    strbuf sb = {0};
    char   buf[8192];
    size_t n;

    free(path);
    if (f == NULL)
        return -1;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_append(&sb, buf, n);
    fclose(f);
    put_bytes(name, sb.data, sb.len);
    sb_free(&sb);
    return 0;
}

/* Rows of every partition of 'p' read with input_open (the columns the
 * steps need). */
static uint64_t
count_rows(const plan *p)
{
    uint64_t        rows = 0;
    const sh_value *row;
    sh_err          err;
    size_t          i;

    unsigned char *need = xcalloc(p->in_schema->n + 1, 1);

    plan_needed_columns(p, need); /* as the worker reads them */
    for (i = 0; i < p->n_parts; i++) {
        input_reader *r = input_open(p, i, need, &err);
        int           rc;

        CHECK(r != NULL, "input_open %zu: %s", i, err.msg);
        if (r == NULL)
            continue;
        while ((rc = input_next(r, &row, &err)) == 1)
            rows++;
        CHECK(rc == 0, "input_next: %s", err.msg);
        input_free(r);
    }
    free(need);
    return rows;
}

/*
 * Parquet input: the schema from the footer, a partition per row group at
 * a small partition_size, row groups skipped by the first filter's
 * comparisons (not after a limit), the list stored in the resolution and
 * read back by plan_load, nested columns refused when read.
 */
static void
test_parquet_input(void)
{
    const char *pruned = "{\"input\": {\"path\": \"rowgroups.parquet\", "
                         "\"partition_size\": 1}, \"steps\": [{\"op\": "
                         "\"filter\", \"where\": \"id >= 9000 and k != "
                         "'zz'\"}]}";
    json_t     *spec, *res, *d;
    plan       *p, *p2;
    sh_err      err;
    int         rc;

    fresh_dirs();
    if (put_parquet("rowgroups.parquet") != 0
        || put_parquet("nested.parquet") != 0) {
        CHECK(0, "tests/unit/data/parquet not found from the working "
                 "directory");
        return;
    }
    p = build("{\"input\": {\"path\": \"rowgroups.parquet\", "
              "\"partition_size\": 1}}",
              &err, &rc);
    CHECK(p != NULL, "build: %s", err.msg);
    if (p == NULL)
        return;
    CHECK(p->in_format == FMT_PARQUET && p->in_schema->n == 2
              && p->in_schema->types[0] == SH_INT
              && p->in_schema->types[1] == SH_STRING,
          "schema from the footer");
    CHECK(p->pq_rg_total == 5 && p->pq_rg_skipped == 0 && p->n_parts == 5,
          "a partition per row group: %zu parts of %llu", p->n_parts,
          (unsigned long long)p->pq_rg_total);
    CHECK(count_rows(p) == 10000, "every row read");
    plan_free(p);

    p = build(pruned, &err, &rc);
    CHECK(p != NULL, "build: %s", err.msg);
    if (p == NULL)
        return;
    CHECK(p->pq_rg_skipped == 4 && p->n_parts == 1 && p->n_pq_rgs == 1
              && p->pq_rgs[0] == 4,
          "skipped %llu of %llu, %zu parts",
          (unsigned long long)p->pq_rg_skipped,
          (unsigned long long)p->pq_rg_total, p->n_parts);
    d = plan_describe(p);
    CHECK(json_integer_value(json_object_get(
              json_object_get(json_object_get(d, "input"), "row_groups"),
              "skipped"))
              == 4,
          "the description counts the skipped row groups");
    json_decref(d);
    res = plan_resolution(p);
    spec = json_loads(pruned, 0, NULL);
    rc = plan_load(spec, res, &g_env, &p2, &err);
    CHECK(rc == 0, "plan_load: %s", err.msg);
    if (rc == 0) {
        CHECK(p2->n_parts == 1 && p2->n_pq_rgs == 1 && p2->pq_rgs[0] == 4
                  && p2->pq_rg_skipped == 4,
              "the row groups come back from the resolution");
        CHECK(count_rows(p2) == 10000 - 4 * 2048, "the last row group");
        plan_free(p2);
    }
    json_object_del(res, "row_groups");
    rc = plan_load(spec, res, &g_env, &p2, &err);
    CHECK(rc == SH_EINVAL && strstr(err.msg, "row_groups"),
          "a resolution without row_groups is damaged: %s", err.msg);
    json_decref(res);
    json_decref(spec);
    plan_free(p);

    /* a limit before the filter: every row group counts */
    p = build("{\"input\": {\"path\": \"rowgroups.parquet\"}, \"steps\": "
              "[{\"op\": \"limit\", \"n\": 3}, {\"op\": \"filter\", "
              "\"where\": \"id >= 9000\"}]}",
              &err, &rc);
    CHECK(p != NULL && p->pq_rg_skipped == 0, "no pruning after a limit");
    plan_free(p);
    /* a select before the filter maps its columns back */
    p = build("{\"input\": {\"path\": \"rowgroups.parquet\"}, \"steps\": "
              "[{\"op\": \"select\", \"columns\": [\"k\", \"id\"]}, "
              "{\"op\": \"filter\", \"where\": \"2048 > id\"}]}",
              &err, &rc);
    CHECK(p != NULL && p->pq_rg_skipped == 4, "pruning through a select");
    plan_free(p);

    p = build("{\"input\": {\"path\": \"nested.parquet\"}, \"steps\": "
              "[{\"op\": \"select\", \"columns\": [\"id\", \"l\"]}]}",
              &err, &rc);
    CHECK(p == NULL && rc == SH_EINVAL && strcmp(err.path, "input.path") == 0
              && strstr(err.msg, "'l'"),
          "a nested column read: %s: %s", err.path, err.msg);
    plan_free(p);
    p = build("{\"input\": {\"path\": \"nested.parquet\"}, \"steps\": "
              "[{\"op\": \"select\", \"columns\": [\"s\", \"id\"]}]}",
              &err, &rc);
    CHECK(p != NULL, "the flat columns: %s", err.msg);
    if (p != NULL)
        CHECK(count_rows(p) == 100, "100 rows");
    plan_free(p);
}

/* ---- datasets ("input": {"dataset": ...}) -------------------------- */

/* plan_env.resolve_dataset of the tests: "one" and its id are d1.csv,
 * "gz" is d2.gz, "boom" fails, anything else is unknown. */
static int
ds_resolve(void *ctx, const char *ref, char **file_out, sh_err *err)
{
    int *calls = ctx;

    (*calls)++;
    if (strcmp(ref, "one") == 0
        || strcmp(ref, "0b7e0000-0000-4000-8000-000000000001") == 0)
        *file_out = xstrdup("d1.csv");
    else if (strcmp(ref, "gz") == 0)
        *file_out = xstrdup("d2.gz");
    else if (strcmp(ref, "boom") == 0)
        return sh_err_set(err, SH_EDB, NULL, "the database is away");
    else
        return SH_ENOENT;
    return 0;
}

static void
test_datasets(void)
{
    plan_env saved = g_env;
    int      calls = 0;
    char     path[512];
    gzFile   gz;
    plan    *p, *q;
    json_t  *res, *spec;
    sh_err   err = {0};

    fresh_dirs();
    put_file("same.csv", "id,v\n1,a\n2,b\n");
    th_put_file(g_out, "d1.csv", "id,v\n1,a\n2,b\n", 13);
    snprintf(path, sizeof path, "%s/d2.gz", g_out);
    gz = gzopen(path, "wb");
    gzputs(gz, "id,v\n1,a\n");
    gzclose(gz);

    /* Without a resolver (or a datasets root): refused at input.dataset. */
    EXPECT_ERR("{\"input\": {\"dataset\": \"one\"}}", SH_EINVAL,
               "input.dataset", "not available");
    g_env.datasets_root = g_out;
    g_env.resolve_dataset = ds_resolve;
    g_env.dataset_ctx = &calls;

    p = must_build_at(__LINE__, "{\"input\": {\"dataset\": \"one\"}}");
    if (p != NULL) {
        CHECK(p->n_files == 1 && strstr(p->files[0].path, g_out) != NULL
                  && strcmp(p->files[0].rel, "d1.csv") == 0,
              "dataset file: %s", p->n_files ? p->files[0].path : "none");
        CHECK(!p->in_gzip, "d1.csv is not gzip");
        /* The stored resolution loads without the resolver. */
        res = plan_resolution(p);
        spec = json_loads("{\"input\": {\"dataset\": \"one\"}}", 0, NULL);
        g_env.resolve_dataset = NULL;
        q = NULL;
        CHECK(plan_load(spec, res, &g_env, &q, &err) == 0 && q != NULL
                  && q->n_parts == p->n_parts
                  && strcmp(q->files[0].path, p->files[0].path) == 0,
              "plan_load of a dataset job: %s", err.msg);
        g_env.resolve_dataset = ds_resolve;
        plan_free(q);
        json_decref(spec);
        json_decref(res);
        plan_free(p);
    }
    p = must_build_at(__LINE__, "{\"input\": {\"dataset\": "
                                "\"0b7e0000-0000-4000-8000-000000000001\"}}");
    plan_free(p);
    /* gzip by the file's name, unless the spec says otherwise. */
    p = must_build_at(__LINE__, "{\"input\": {\"dataset\": \"gz\"}}");
    CHECK(p != NULL && p->in_gzip, "d2.gz is read as gzip");
    plan_free(p);

    EXPECT_ERR("{\"input\": {\"dataset\": \"nope\"}}", SH_EINVAL,
               "input.dataset", "no dataset 'nope'");
    EXPECT_ERR("{\"input\": {\"dataset\": \"boom\"}}", SH_EDB, "input.dataset",
               "away");
    EXPECT_ERR("{\"input\": {\"dataset\": \"\"}}", SH_EINVAL, "input.dataset",
               NULL);
    EXPECT_ERR("{\"input\": {\"dataset\": 3}}", SH_EINVAL, "input.dataset",
               NULL);
    EXPECT_ERR("{\"input\": {\"dataset\": \"one\", \"path\": "
               "\"same.csv\"}}",
               SH_EINVAL, "input", "either");
    EXPECT_ERR("{\"input\": {\"path\": \"same.csv\"}, \"steps\": [{\"op\": "
               "\"join\", \"with\": {\"dataset\": \"nope\"}, \"on\": "
               "[\"id\"]}]}",
               SH_EINVAL, "steps[0].with.dataset", "no dataset");
    p = must_build_at(__LINE__, "{\"input\": {\"path\": \"same.csv\"}, "
                                "\"steps\": [{\"op\": \"join\", \"with\": "
                                "{\"dataset\": \"one\"}, "
                                "\"on\": [\"id\", \"v\"]}]}");
    plan_free(p);
    CHECK(calls >= 6, "the resolver was called %d times", calls);
    g_env = saved;
}

void
test_plan_register(void)
{
    CU_pSuite s = CU_add_suite("plan", suite_init, suite_clean);

    if (s == NULL)
        return;
    CU_add_test(s, "spec errors", test_spec_errors);
    CU_add_test(s, "parquet input", test_parquet_input);
    CU_add_test(s, "symlinks", test_symlinks);
    CU_add_test(s, "globs", test_glob);
    CU_add_test(s, "type inference", test_infer);
    CU_add_test(s, "partitions", test_partitions);
    CU_add_test(s, "resolution round trip", test_resolution);
    CU_add_test(s, "map steps", test_steps_map);
    CU_add_test(s, "combine steps", test_steps_combine);
    CU_add_test(s, "stages", test_stages);
    CU_add_test(s, "step errors", test_step_errors);
    CU_add_test(s, "join side and formats from the resolution",
                test_join_resolution);
    CU_add_test(s, "pipeline csv", test_pipeline_csv);
    CU_add_test(s, "pipeline identity", test_pipeline_identity);
    CU_add_test(s, "pipeline bad data", test_pipeline_bad_data);
    CU_add_test(s, "pipeline on_error skip", test_pipeline_skip);
    CU_add_test(s, "pipeline gzip", test_pipeline_gzip);
    CU_add_test(s, "pipeline jsonl", test_pipeline_jsonl);
    CU_add_test(s, "pipeline changed file", test_pipeline_changed);
    CU_add_test(s, "pipeline tick", test_pipeline_tick);
    CU_add_test(s, "writer fields", test_writer_fields);
    CU_add_test(s, "writer rows", test_writer_rows);
    CU_add_test(s, "datasets", test_datasets);
}
