/*
 * test_exec.c - unit tests of executor/exec (a task of a plan: sources,
 * map steps, sinks): whole jobs built with plan_build over small CSV files
 * in a temporary data root, every task of every stage run in order (stage
 * s task i reads the outs of stage s-1), the last stage's outputs
 * concatenated and compared with answers worked out by hand. Out-of-core
 * runs under a tiny memory budget must give the answers of a large one
 * and leave no stray file; a task that fails leaves no file at all.
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../executor/exec.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_job.h"
#include "test_suites.h"

static char g_root[256]; /* the data root of the current test */
static char g_work[256]; /* task outputs: "<work>/s<S>t<T>" */
static char g_scr[256];  /* scratch: "<work>-scratch/s<S>t<T>" */

/* ---- directories ------------------------------------------------------ */

/* Tasks fsync every file they complete; on a memory file system that
 * costs nothing, so the tests use one when there is one. */
static void
fresh_dirs(void)
{
    const char *base = th_tmp_base();

    th_fresh_dir(g_root, sizeof g_root, base, "sheaf-exec-root");
    th_fresh_dir(g_work, sizeof g_work, base, "sheaf-exec-work");
    th_fresh_dir(g_scr, sizeof g_scr, base, "sheaf-exec-scratch");
}

static int
suite_init(void)
{
    g_root[0] = g_work[0] = g_scr[0] = '\0';
    return 0;
}

static int
suite_clean(void)
{
    th_rm_tree(g_root);
    th_rm_tree(g_work);
    th_rm_tree(g_scr);
    g_root[0] = g_work[0] = g_scr[0] = '\0';
    return 0;
}

/* Empty the work and scratch directories (between runs of one test). */
static void
clear_work(void)
{
    th_rm_tree(g_work);
    th_rm_tree(g_scr);
    mkdir(g_work, 0755);
    mkdir(g_scr, 0755);
}

/* Write 'text' to 'rel' under the root (aborts on failure). */
static void
put_file(const char *rel, const char *text)
{
    th_put_file(g_root, rel, text, strlen(text));
}

/* ---- running a job ---------------------------------------------------- */

typedef th_job_run job_run;

/* Cancel after this many ticks (0: never). */
static int g_cancel_after;
static int g_ticks;

static int
count_tick(void *ctx, const exec_stats *st)
{
    (void)ctx;
    (void)st;
    g_ticks++;
    return g_cancel_after > 0 && g_ticks >= g_cancel_after;
}

/* Build 'spec_text' and run every task of every stage with 'mem_bytes',
 * counting ticks (th_run_job). Stops at the first failing task (its error
 * in r->err). */
static void
run_job(const char *spec_text, uint64_t mem_bytes, job_run *r)
{
    th_job_dirs d = {g_root, g_work, g_scr};

    g_ticks = 0;
    th_run_job(&d, spec_text, mem_bytes, count_tick, NULL, r);
}

/* Run and compare the output with 'want'. */
static void
expect_output(const char *spec, uint64_t mem, const char *want, int line)
{
    job_run r;

    run_job(spec, mem, &r);
    CHECK_AT(r.rc == 0, line, "job failed (%d): %s %s", r.rc, r.err.path,
             r.err.msg);
    if (r.rc == 0) {
        CHECK_AT(strcmp(r.out, want) == 0, line,
                 "output differs:\n--- got\n%s--- want\n%s", r.out, want);
    }
    free(r.out);
}
#define EXPECT(spec, want) expect_output(spec, 256u << 20, want, __LINE__)

/* ---- data ------------------------------------------------------------- */

/* Seven people in three files (glob order p1, p2, p3), so there are
 * several partitions and several tasks per stage. */
static void
put_people(void)
{
    put_file("p/p1.csv", "id,name,dept,salary,year\n"
                         "1,Ann,eng,100,2010\n"
                         "2,Bob,eng,80,2012\n"
                         "3,Cid,ops,50,2009\n");
    put_file("p/p2.csv", "id,name,dept,salary,year\n"
                         "4,Dee,ops,,2015\n"
                         "5,Eve,sales,70,2011\n");
    put_file("p/p3.csv", "id,name,dept,salary,year\n"
                         "6,Fay,eng,120,2016\n"
                         "7,Gus,,60,2013\n");
}

#define PEOPLE_IN                                                    \
    "\"input\": {\"path\": \"p/*.csv\", \"partition_size\": 20, "    \
    "\"columns\": {\"salary\": \"int\", \"year\": \"int\", \"id\": " \
    "\"int\"}}"

/* ---- tests: combine steps --------------------------------------------- */

static void
test_filter_derive_groupby_sort_limit(void)
{
    job_run r;

    fresh_dirs();
    put_people();
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"filter\", \"where\": \"year >= 2010\"},"
           "{\"op\": \"derive\", \"as\": \"k\", \"expr\": \"salary * 2\"},"
           "{\"op\": \"groupby\", \"by\": [\"dept\"], \"aggs\": ["
           " {\"as\": \"n\", \"fn\": \"count\"},"
           " {\"as\": \"sum_k\", \"fn\": \"sum\", \"column\": \"k\"},"
           " {\"as\": \"mean_salary\", \"fn\": \"mean\", \"column\": "
           "\"salary\"}]},"
           "{\"op\": \"sort\", \"by\": [{\"column\": \"n\", \"desc\": true},"
           " {\"column\": \"dept\"}]},"
           "{\"op\": \"limit\", \"n\": 2}]}",
           "dept,n,sum_k,mean_salary\n"
           "eng,3,600,100\n"
           "ops,1,,\n");
    /* the same without the limit: every group, nulls last */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"filter\", \"where\": \"year >= 2010\"},"
           "{\"op\": \"derive\", \"as\": \"k\", \"expr\": \"salary * 2\"},"
           "{\"op\": \"groupby\", \"by\": [\"dept\"], \"aggs\": ["
           " {\"as\": \"n\", \"fn\": \"count\"},"
           " {\"as\": \"sum_k\", \"fn\": \"sum\", \"column\": \"k\"}]},"
           "{\"op\": \"sort\", \"by\": [{\"column\": \"n\", \"desc\": true},"
           " {\"column\": \"dept\"}]}]}",
           "dept,n,sum_k\n"
           "eng,3,600\n"
           "ops,1,\n"
           "sales,1,140\n"
           ",1,120\n");
    /* stages: groupby partial, groupby final + sort partial, sort final */
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"groupby\", \"by\": [\"dept\"]},"
            "{\"op\": \"sort\", \"by\": [\"dept\"]}]}",
            256u << 20, &r);
    CHECK(r.rc == 0, "failed: %s", r.err.msg);
    CHECK(r.n_stages == 3, "%zu stages", r.n_stages);
    CHECK(r.tasks[0] >= 3 && r.tasks[1] == r.tasks[0], "tasks %zu %zu",
          r.tasks[0], r.tasks[1]);
    CHECK(strcmp(r.out, "dept\neng\nops\nsales\n\"\"\n") == 0, "got %s", r.out);
    CHECK(r.rows_out0 == 7, "stage 0 sank %llu rows",
          (unsigned long long)r.rows_out0);
    free(r.out);
}

static void
test_aggregate(void)
{
    fresh_dirs();
    put_people();
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"aggregate\", \"aggs\": ["
           " {\"as\": \"n\", \"fn\": \"count\"},"
           " {\"as\": \"s\", \"fn\": \"sum\", \"column\": \"salary\"},"
           " {\"as\": \"lo\", \"fn\": \"min\", \"column\": \"name\"},"
           " {\"as\": \"d\", \"fn\": \"count_distinct\", \"column\": "
           "\"dept\"}]}]}",
           "n,s,lo,d\n7,480,Ann,3\n");
    /* over no rows: still one row, counts 0 and the rest null */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"filter\", \"where\": \"year > 3000\"},"
           "{\"op\": \"aggregate\", \"aggs\": ["
           " {\"as\": \"n\", \"fn\": \"count\"},"
           " {\"as\": \"s\", \"fn\": \"sum\", \"column\": \"salary\"},"
           " {\"as\": \"m\", \"fn\": \"mean\", \"column\": \"salary\"},"
           " {\"as\": \"d\", \"fn\": \"count_distinct\", \"column\": "
           "\"dept\"}]}], \"output\": {\"format\": \"jsonl\"}}",
           "{\"n\":0,\"s\":null,\"m\":null,\"d\":0}\n");
}

static void
test_distinct(void)
{
    fresh_dirs();
    put_people();
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"distinct\", \"columns\": [\"dept\"]},"
           "{\"op\": \"sort\", \"by\": [{\"column\": \"dept\", \"desc\": "
           "true}]}]}",
           "dept\nsales\nops\neng\n\"\"\n");
    /* two columns; a derived one */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"derive\", \"as\": \"old\", \"expr\": \"year < "
           "2012\"},"
           "{\"op\": \"distinct\", \"columns\": [\"old\", \"dept\"]},"
           "{\"op\": \"sort\", \"by\": [\"old\", \"dept\"]}]}",
           "old,dept\nfalse,eng\nfalse,ops\nfalse,\ntrue,eng\ntrue,ops\n"
           "true,sales\n");
}

static void
test_sort(void)
{
    job_run full, top;

    fresh_dirs();
    put_people();
    /* several keys, asc and desc, nulls last in both directions */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"sort\", \"by\": [\"dept\", {\"column\": \"salary\", "
           "\"desc\": true}]},"
           "{\"op\": \"select\", \"columns\": [\"id\"]}]}",
           "id\n6\n1\n2\n3\n4\n5\n7\n");
    /* stable: equal keys keep the input order across partitions */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"derive\", \"as\": \"g\", \"expr\": \"id % 2\"},"
           "{\"op\": \"sort\", \"by\": [{\"column\": \"g\", \"desc\": "
           "true}]},"
           "{\"op\": \"select\", \"columns\": [\"id\"]}]}",
           "id\n1\n3\n5\n7\n2\n4\n6\n");
    /* top-n is the head of the full sort */
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"sort\", \"by\": [{\"column\": \"salary\", \"desc\": "
            "true}, \"name\"]}]}",
            256u << 20, &full);
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"sort\", \"by\": [{\"column\": \"salary\", \"desc\": "
            "true}, \"name\"]}, {\"op\": \"limit\", \"n\": 3}]}",
            256u << 20, &top);
    CHECK(full.rc == 0 && top.rc == 0, "failed: %s %s", full.err.msg,
          top.err.msg);
    CHECK(top.n_stages == 2, "a top-n is two stages, got %zu", top.n_stages);
    CHECK(strcmp(top.out, "id,name,dept,salary,year\n6,Fay,eng,120,2016\n"
                          "1,Ann,eng,100,2010\n2,Bob,eng,80,2012\n")
              == 0,
          "top 3: %s", top.out);
    CHECK(strncmp(full.out, top.out, strlen(top.out)) == 0,
          "full sort does not begin with the top 3:\n%s", full.out);
    CHECK(strstr(full.out, "\n4,Dee,ops,,2015\n") != NULL
              && strcmp(full.out + strlen(full.out) - 16, "4,Dee,ops,,2015\n")
                     == 0,
          "the null salary should come last:\n%s", full.out);
    free(full.out);
    free(top.out);
    /* sort of nothing */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"filter\", \"where\": \"false\"},"
           "{\"op\": \"sort\", \"by\": [\"id\"]}]}",
           "id,name,dept,salary,year\n");
}

static void
test_limit(void)
{
    job_run r;

    fresh_dirs();
    put_people();
    /* without a sort: the first rows in input order */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"limit\", \"n\": 3},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"name\"]}]}",
           "id,name\n1,Ann\n2,Bob\n3,Cid\n");
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"filter\", \"where\": \"salary > 60\"},"
           "{\"op\": \"limit\", \"n\": 100}]}",
           "id,name,dept,salary,year\n1,Ann,eng,100,2010\n"
           "2,Bob,eng,80,2012\n5,Eve,sales,70,2011\n6,Fay,eng,120,2016\n");
    /* a task stops reading once its limit is full */
    run_job("{\"input\": {\"path\": \"p/p1.csv\"}, \"steps\": ["
            "{\"op\": \"limit\", \"n\": 1}]}",
            256u << 20, &r);
    CHECK(r.rc == 0
              && strcmp(r.out, "id,name,dept,salary,year\n"
                               "1,Ann,eng,100,2010\n")
                     == 0,
          "got %s %s", r.out, r.err.msg);
    free(r.out);
}

static void
test_word_count(void)
{
    fresh_dirs();
    put_file("docs.csv", "id,text\n"
                         "1,The cat sat\n"
                         "2,\"the Dog, the cat!\"\n"
                         "3,\n"
                         "4,\"\"\n"
                         "5,--- ...\n");
    EXPECT("{\"input\": {\"path\": \"docs.csv\", \"partition_size\": 10},"
           " \"steps\": ["
           "{\"op\": \"tokenize\", \"column\": \"text\", \"as\": \"word\"},"
           "{\"op\": \"groupby\", \"by\": [\"word\"], \"aggs\": ["
           " {\"as\": \"n\", \"fn\": \"count\"}]},"
           "{\"op\": \"sort\", \"by\": [{\"column\": \"n\", \"desc\": true},"
           " \"word\"]},"
           "{\"op\": \"limit\", \"n\": 3}]}",
           "word,n\nthe,3\ncat,2\ndog,1\n");
    /* tokens keep their case without lowercase; other columns repeat */
    EXPECT("{\"input\": {\"path\": \"docs.csv\"}, \"steps\": ["
           "{\"op\": \"filter\", \"where\": \"id == 2\"},"
           "{\"op\": \"tokenize\", \"column\": \"text\", \"lowercase\": "
           "false}]}",
           "id,text,token\n2,\"the Dog, the cat!\",the\n"
           "2,\"the Dog, the cat!\",Dog\n2,\"the Dog, the cat!\",the\n"
           "2,\"the Dog, the cat!\",cat\n");
}

static void
test_join(void)
{
    fresh_dirs();
    put_people();
    put_file("floors.csv", "dept,floor\neng,3\neng,4\nops,1\n,9\n");
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"floors.csv\"}, "
           "\"on\": [\"dept\"]},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"floor\"]},"
           "{\"op\": \"sort\", \"by\": [\"id\", \"floor\"]}]}",
           "id,floor\n1,3\n1,4\n2,3\n2,4\n3,1\n4,1\n6,3\n6,4\n");
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"floors.csv\"}, "
           "\"on\": [\"dept\"], \"how\": \"left\"},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"dept\", "
           "\"floor\"]}]}",
           "id,dept,floor\n1,eng,3\n1,eng,4\n2,eng,3\n2,eng,4\n3,ops,1\n"
           "4,ops,1\n5,sales,\n6,eng,3\n6,eng,4\n7,,\n");
    /* two keys; the matches come in the side's order */
    put_file("k2.csv", "dept,year,tag\neng,2010,a\neng,2010,b\nops,2015,c\n"
                       "eng,2012,d\n");
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"k2.csv\", "
           "\"columns\": {\"year\": \"int\"}}, \"on\": [\"dept\", "
           "\"year\"]},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"tag\"]}]}",
           "id,tag\n1,a\n1,b\n2,d\n4,c\n");
}

/* The six hows, left_on/right_on, null keys (never match). */
static void
test_join_hows(void)
{
    job_run r;

    fresh_dirs();
    put_people();
    put_file("floors.csv", "dept,floor\neng,3\neng,4\nops,1\n,9\n");
    put_file("f3.csv", "d,floor\neng,3\nhr,7\n,9\n");
    /* semi: a matching row once; a null key drops */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"floors.csv\"}, "
           "\"on\": [\"dept\"], \"how\": \"semi\"},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"dept\"]},"
           "{\"op\": \"sort\", \"by\": [\"id\"]}]}",
           "id,dept\n1,eng\n2,eng\n3,ops\n4,ops\n6,eng\n");
    /* anti: no match, and the null key is kept */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"floors.csv\"}, "
           "\"on\": [\"dept\"], \"how\": \"anti\"},"
           "{\"op\": \"sort\", \"by\": [\"id\"]}]}",
           "id,name,dept,salary,year\n5,Eve,sales,70,2011\n"
           "7,Gus,,60,2013\n");
    /* different names: the side's key column is not appended */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"f3.csv\"}, "
           "\"left_on\": [\"dept\"], \"right_on\": [\"d\"]},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"dept\", "
           "\"floor\"]},"
           "{\"op\": \"sort\", \"by\": [\"id\"]}]}",
           "id,dept,floor\n1,eng,3\n2,eng,3\n6,eng,3\n");
    /* right and full in one task: the unmatched side rows at the end,
     * their keys in the left's key columns */
    EXPECT("{\"input\": {\"path\": \"p/p1.csv\"}, \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"f3.csv\"}, "
           "\"left_on\": [\"dept\"], \"right_on\": [\"d\"], "
           "\"how\": \"right\"},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"dept\", "
           "\"floor\"]}]}",
           "id,dept,floor\n1,eng,3\n2,eng,3\n,hr,7\n,,9\n");
    EXPECT("{\"input\": {\"path\": \"p/p1.csv\"}, \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"f3.csv\"}, "
           "\"left_on\": [\"dept\"], \"right_on\": [\"d\"], "
           "\"how\": \"full\"},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"dept\", "
           "\"floor\"]}]}",
           "id,dept,floor\n1,eng,3\n2,eng,3\n3,ops,\n,hr,7\n,,9\n");
    /* after a one-task stage (a sort) a right join is fine too */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"sort\", \"by\": [\"id\"]},"
           "{\"op\": \"join\", \"with\": {\"path\": \"floors.csv\"}, "
           "\"on\": [\"dept\"], \"how\": \"right\"},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"floor\"]}]}",
           "id,floor\n1,3\n1,4\n2,3\n2,4\n3,1\n4,1\n6,3\n6,4\n,9\n");
    /* full over several partitions: the partitioned join */
    EXPECT("{" PEOPLE_IN ", \"steps\": ["
           "{\"op\": \"join\", \"with\": {\"path\": \"floors.csv\"}, "
           "\"on\": [\"dept\"], \"how\": \"full\"},"
           "{\"op\": \"select\", \"columns\": [\"id\", \"dept\", "
           "\"floor\"]},"
           "{\"op\": \"sort\", \"by\": [\"id\", \"floor\"]}]}",
           "id,dept,floor\n1,eng,3\n1,eng,4\n2,eng,3\n2,eng,4\n3,ops,1\n"
           "4,ops,1\n5,sales,\n6,eng,3\n6,eng,4\n7,,\n,,9\n");
    /* left_on without right_on, and unequal lengths */
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"join\", \"with\": {\"path\": \"f3.csv\"}, "
            "\"left_on\": [\"dept\"]}]}",
            256u << 20, &r);
    CHECK(r.rc == SH_EINVAL && strcmp(r.err.path, "steps[0].right_on") == 0,
          "rc %d at %s: %s", r.rc, r.err.path, r.err.msg);
    free(r.out);
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"join\", \"with\": {\"path\": \"f3.csv\"}, "
            "\"left_on\": [\"dept\", \"id\"], \"right_on\": [\"d\"]}]}",
            256u << 20, &r);
    CHECK(r.rc == SH_EINVAL && strcmp(r.err.path, "steps[0].right_on") == 0,
          "rc %d at %s: %s", r.rc, r.err.path, r.err.msg);
    free(r.out);
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"join\", \"with\": {\"path\": \"f3.csv\"}, "
            "\"left_on\": [\"dept\"], \"right_on\": [\"nope\"]}]}",
            256u << 20, &r);
    CHECK(r.rc == SH_EINVAL && strcmp(r.err.path, "steps[0].right_on[0]") == 0,
          "rc %d at %s: %s", r.rc, r.err.path, r.err.msg);
    free(r.out);
}

/* A 'with' side over the budget: the partitioned join, every how. */
static void
test_join_partitioned(void)
{
    static const char *const hows[] = {"inner", "left", "right",
                                       "full",  "semi", "anti"};
    static const char *const want[] = {
        "id,dept,pad\n1,eng,0\n2,eng,0\n3,ops,1\n4,ops,1\n6,eng,0\n",
        "id,dept,pad\n1,eng,0\n2,eng,0\n3,ops,1\n4,ops,1\n5,sales,\n"
        "6,eng,0\n7,,\n",
        NULL,
        NULL,
        "id,dept\n1,eng\n2,eng\n3,ops\n4,ops\n6,eng\n",
        "id,dept\n5,sales\n7,\n",
    };
    job_run r;
    strbuf  sb = {0}, spec = {0};
    size_t  h;
    int     i;

    fresh_dirs();
    put_people();
    /* over 1 MiB of files; a bucket's table far less (ints) */
    sb_puts(&sb, "dept,pad,p2,p3\neng,0,0,0\nops,1,1,1\n,2,2,2\n");
    for (i = 3; i < 24000; i++)
        sb_printf(&sb, "d%d,%lld,%lld,%lld\n", i, 1000000000000000LL + i,
                  2000000000000000LL + i, 3000000000000000LL + i);
    put_file("big.csv", sb.data);
    sb_free(&sb);
    for (h = 0; h < 6; h++) {
        sb_printf(&spec,
                  "{" PEOPLE_IN ", \"steps\": ["
                  "{\"op\": \"join\", \"with\": {\"path\": \"big.csv\", "
                  "\"columns\": {\"pad\": \"int\"}}, \"on\": [\"dept\"], "
                  "\"how\": \"%s\"},"
                  "{\"op\": \"select\", \"columns\": [\"id\", \"dept\"%s]},"
                  "{\"op\": \"sort\", \"by\": [\"id\"]},"
                  "{\"op\": \"limit\", \"n\": %d}]}",
                  hows[h], h == 4 || h == 5 ? "" : ", \"pad\"",
                  h == 2 || h == 3 ? 100000 : 100);
        run_job(spec.data, 1u << 20, &r);
        if (want[h] != NULL) {
            CHECK(r.rc == 0 && strcmp(r.out, want[h]) == 0,
                  "how %s: rc %d %s / %s", hows[h], r.rc, r.out, r.err.msg);
        } else {
            /* right, full: the matched rows, then every unmatched side
             * row once (ids null, sorted last) */
            size_t      lines = 0;
            const char *q;

            for (q = r.out ? r.out : ""; *q; q++)
                lines += *q == '\n';
            CHECK(r.rc == 0
                      && strncmp(r.out,
                                 h == 2 ? "id,dept,pad\n1,eng,0\n2,eng,0\n"
                                          "3,ops,1\n4,ops,1\n6,eng,0\n,"
                                        : "id,dept,pad\n1,eng,0\n2,eng,0\n"
                                          "3,ops,1\n4,ops,1\n5,sales,\n"
                                          "6,eng,0\n7,,\n,",
                                 h == 2 ? 53 : 66)
                             == 0
                      && lines == 1 + (h == 2 ? 5 : 7) + 23998,
                  "how %s: rc %d, %zu lines: %.200s / %s", hows[h], r.rc, lines,
                  r.out ? r.out : "", r.err.msg);
        }
        free(r.out);
        sb_free(&spec);
        memset(&spec, 0, sizeof spec);
    }
}

/* A bucket over the budget is re-partitioned (spilled) and joined
 * sub-bucket by sub-bucket: the same answer, spill bytes counted. */
static void
test_join_spill(void)
{
    job_run     r;
    strbuf      sb = {0};
    size_t      lines;
    int         i;
    const char *q;

    fresh_dirs();
    put_people();
    sb_puts(&sb, "dept,pad,p2\neng,0,0\nops,1,1\n,2,2\n");
    for (i = 3; i < 150000; i++)
        sb_printf(&sb, "d%d,%lld,%lld\n", i, 1000000000000000LL + i,
                  2000000000000000LL + i);
    put_file("big.csv", sb.data);
    sb_free(&sb);
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"join\", \"with\": {\"path\": \"big.csv\"}, "
            "\"on\": [\"dept\"], \"how\": \"left\"},"
            "{\"op\": \"select\", \"columns\": [\"id\", \"pad\"]},"
            "{\"op\": \"sort\", \"by\": [\"id\"]}]}",
            1u << 20, &r);
    CHECK(r.rc == 0 && r.spill > 0
              && strcmp(r.out, "id,pad\n1,0\n2,0\n3,1\n4,1\n5,\n6,0\n7,\n")
                     == 0,
          "rc %d spill %llu: %s / %s", r.rc, (unsigned long long)r.spill, r.out,
          r.err.msg);
    free(r.out);
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"join\", \"with\": {\"path\": \"big.csv\"}, "
            "\"on\": [\"dept\"], \"how\": \"full\"}]}",
            1u << 20, &r);
    lines = 0;
    for (q = r.out ? r.out : ""; *q; q++)
        lines += *q == '\n';
    CHECK(r.rc == 0 && r.spill > 0 && lines == 1 + 7 + 149998,
          "rc %d spill %llu lines %zu: %s", r.rc, (unsigned long long)r.spill,
          lines, r.err.msg);
    free(r.out);
}

static void
test_join_too_big(void)
{
    job_run r;
    strbuf  sb = {0};
    int     i;

    fresh_dirs();
    put_people();
    sb_puts(&sb, "dept,pad\n");
    for (i = 0; i < 20000; i++)
        sb_printf(&sb, "d%d,%040d\n", i, i);
    put_file("wide.csv", sb.data);
    sb_free(&sb);
    /* the planner checks file sizes against the budget; the executor
     * checks what the table really holds */
    run_job("{" PEOPLE_IN ", \"steps\": ["
            "{\"op\": \"join\", \"with\": {\"path\": \"wide.csv\"}, "
            "\"on\": [\"dept\"]}]}",
            1u << 20, &r);
    CHECK(r.rc != 0 && strstr(r.err.msg, "memory") != NULL
              && strstr(r.err.msg, "step 0 (join)") != NULL,
          "rc %d: %s", r.rc, r.err.msg);
    free(r.out);
}

/* ---- input and output formats ---------------------------------------- */

/* Write 'n' bytes of 'text' gzip-compressed to 'rel' under the root. */
static void
put_gzip(const char *rel, const char *text)
{
    char *path = xasprintf("%s/%s", g_root, rel);

    if (th_write_gzip(path, text, strlen(text), 1) != 0) {
        perror(path);
        abort();
    }
    free(path);
}

/* Inflate 'n' bytes of gzip members (one per task, concatenated). */
static char *
gunzip(const char *data, size_t n)
{
    char  *path = xasprintf("%s/gunzip.gz", g_work);
    strbuf sb = {0};
    char   buf[4096];
    gzFile g;
    int    k;

    if (th_write_file(path, data, n) != 0)
        abort();
    g = gzopen(path, "rb");
    while (g != NULL && (k = gzread(g, buf, sizeof buf)) > 0)
        sb_append(&sb, buf, (size_t)k);
    if (g != NULL)
        gzclose(g);
    unlink(path);
    free(path);
    if (sb.data == NULL)
        sb_puts(&sb, "");
    return sb.data;
}

static void
test_formats(void)
{
    job_run r;
    char   *text;

    fresh_dirs();
    put_file("a.jsonl", "{\"k\": \"x\", \"v\": 1}\n{\"k\": \"y\", \"v\": 2}\n"
                        "{\"k\": \"x\", \"v\": 3}\n{\"v\": 4}\n");
    EXPECT("{\"input\": {\"path\": \"a.jsonl\", \"format\": \"jsonl\", "
           "\"partition_size\": 16}, \"steps\": ["
           "{\"op\": \"groupby\", \"by\": [\"k\"], \"aggs\": ["
           " {\"as\": \"t\", \"fn\": \"sum\", \"column\": \"v\"}]},"
           "{\"op\": \"sort\", \"by\": [\"k\"]}]}",
           "k,t\nx,4\ny,2\n,4\n");
    put_file("l.txt", "one two\nthree\n\nfour five six\n");
    EXPECT("{\"input\": {\"path\": \"l.txt\", \"format\": \"lines\"}, "
           "\"steps\": [{\"op\": \"tokenize\", \"column\": \"line\"},"
           "{\"op\": \"aggregate\", \"aggs\": [{\"as\": \"n\", \"fn\": "
           "\"count\"}]}]}",
           "n\n6\n");
    /* gzip in, gzip JSONL out: one member per task, concatenated */
    put_gzip("z1.csv.gz", "a,b\n1,x\n2,y\n");
    put_gzip("z2.csv.gz", "a,b\n3,z\n");
    run_job("{\"input\": {\"path\": \"z*.csv.gz\"}, \"steps\": ["
            "{\"op\": \"filter\", \"where\": \"a != 2\"}],"
            " \"output\": {\"format\": \"jsonl\", \"compression\": "
            "\"gzip\"}}",
            256u << 20, &r);
    CHECK(r.rc == 0, "gzip: %s", r.err.msg);
    text = gunzip(r.out, r.out_len);
    CHECK(strcmp(text, "{\"a\":1,\"b\":\"x\"}\n{\"a\":3,\"b\":\"z\"}\n") == 0,
          "gzip output: %s", text);
    free(text);
    free(r.out);
}

/* ---- naive Bayes ------------------------------------------------------ */

static void
test_naive_bayes(void)
{
    static const char uuid[] = "0b7e5f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b";
    job_run           r;
    char             *path, *report, *dir;

    fresh_dirs();
    put_file("nb.csv", "id,label,text\n"
                       "1,pets,the cat and the dog\n"
                       "2,cars,a red car on the road\n"
                       "3,pets,my dog chased a cat\n"
                       "4,cars,the bus and the car\n"
                       "5,pets,cat food for a dog\n"
                       "6,cars,road trip by car\n"
                       "7,,an unlabelled cat\n"
                       "8,pets,the dog\n"
                       "9,cars,bus\n");
    run_job("{\"input\": {\"path\": \"nb.csv\", \"partition_size\": 40},"
            " \"steps\": [{\"op\": \"train_naive_bayes\", \"text\": "
            "\"text\", \"label\": \"label\", \"features\": 1024, "
            "\"holdout\": \"id >= 8\"}]}",
            256u << 20, &r);
    CHECK(r.rc == 0 && strcmp(r.out, "n_train,n_test,accuracy\n6,2,1\n") == 0,
          "train: %d %s %s", r.rc, r.err.msg, r.out);
    free(r.out);
    path = xasprintf("%s/artifacts/report", g_work);
    report = fsys_read_file(path, NULL);
    CHECK(report != NULL && strstr(report, "\"n_train\"") != NULL, "report: %s",
          report ? report : "(missing)");
    free(report);
    free(path);

    /* predict with that model, as job 'uuid' */
    dir = xasprintf("%s/jobs/%s", g_work, uuid);
    fsys_mkdir_p(dir, 0755);
    path = xasprintf("%s/artifacts", dir);
    {
        char *to = xasprintf("%s/artifacts", dir);
        char *from = xasprintf("%s/artifacts", g_work);

        CHECK(rename(from, to) == 0, "move artifacts: %s", strerror(errno));
        free(to);
        free(from);
    }
    free(path);
    free(dir);
    put_file("new.csv", "id,text\n1,a cat\n2,CAR\n3,\n");
    {
        char *spec = xasprintf(
            "{\"input\": {\"path\": \"new.csv\"}, \"steps\": ["
            "{\"op\": \"predict_naive_bayes\", \"model\": \"job:%s\", "
            "\"text\": \"text\", \"as\": \"guess\"},"
            "{\"op\": \"select\", \"columns\": [\"id\", \"guess\"]}]}",
            uuid);

        /* an empty text: equal priors, the first class in byte order */
        EXPECT(spec, "id,guess\n1,pets\n2,cars\n3,cars\n");
        free(spec);
    }
}

/* ---- out of core ------------------------------------------------------ */

/* 300k rows: k in 0..199999 (every value), v = i, s a short string. */
static void
put_big(void)
{
    strbuf sb = {0};
    int    i;

    sb_puts(&sb, "k,v,s\n");
    for (i = 0; i < 300000; i++) {
        sb_printf(&sb, "%d,%d,x%d\n", (int)((i * 7919LL) % 200000), i,
                  (i * 31) % 997);
    }
    put_file("big.csv", sb.data);
    sb_free(&sb);
}

/* Every file left in the work directory must be a task's output: no
 * temporary files; the scratch directory must be empty. */
static void
check_clean(const char *what)
{
    char *w = th_list_dir(g_work), *s = th_list_dir(g_scr);

    CHECK(strstr(w, ".tmp") == NULL && strstr(w, ".m") == NULL,
          "%s: stray files in the work dir: %s", what, w);
    CHECK(s[0] == '\0', "%s: scratch not empty: %s", what, s);
    free(w);
    free(s);
}

static void
test_out_of_core(void)
{
    static const char *specs[] = {
        "{\"input\": {\"path\": \"big.csv\", \"partition_size\": "
        "\"1MiB\"}, \"steps\": ["
        "{\"op\": \"groupby\", \"by\": [\"k\"], \"aggs\": ["
        " {\"as\": \"n\", \"fn\": \"count\"},"
        " {\"as\": \"t\", \"fn\": \"sum\", \"column\": \"v\"},"
        " {\"as\": \"hi\", \"fn\": \"max\", \"column\": \"s\"},"
        " {\"as\": \"m\", \"fn\": \"mean\", \"column\": \"v\"}]},"
        "{\"op\": \"sort\", \"by\": [\"k\"]}]}",
        "{\"input\": {\"path\": \"big.csv\", \"partition_size\": "
        "\"1MiB\"}, \"steps\": ["
        "{\"op\": \"sort\", \"by\": [\"s\", {\"column\": \"k\", \"desc\": "
        "true}]}]}",
        "{\"input\": {\"path\": \"big.csv\", \"partition_size\": "
        "\"1MiB\"}, \"steps\": ["
        "{\"op\": \"distinct\", \"columns\": [\"k\"]},"
        "{\"op\": \"aggregate\", \"aggs\": [{\"as\": \"n\", \"fn\": "
        "\"count\"}, {\"as\": \"t\", \"fn\": \"sum\", \"column\": "
        "\"k\"}]}]}",
    };
    size_t i;

    fresh_dirs();
    put_big();
    for (i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        job_run big, small;

        clear_work();
        run_job(specs[i], 256u << 20, &big);
        CHECK(big.rc == 0, "spec %zu, 256 MiB: %s", i, big.err.msg);
        clear_work();
        run_job(specs[i], 1u << 20, &small);
        CHECK(small.rc == 0, "spec %zu, 1 MiB: %s", i, small.err.msg);
        check_clean("1 MiB");
        /* The budget is the process's: what the operators held stays
         * under it less the reserve (half of 1 MiB), and is not nothing
         * (they did hold rows). */
        CHECK(small.peak > 0
                  && small.peak <= (1u << 20) - exec_reserve_bytes(1u << 20),
              "spec %zu, 1 MiB: operators held %llu bytes at most, the "
              "reserve is %llu",
              i, (unsigned long long)small.peak,
              (unsigned long long)exec_reserve_bytes(1u << 20));
        CHECK(big.out && small.out && strcmp(big.out, small.out) == 0,
              "spec %zu: 1 MiB and 256 MiB disagree (%zu vs %zu bytes)", i,
              small.out ? strlen(small.out) : 0, big.out ? strlen(big.out) : 0);
        if (i == 0) {
            CHECK(strncmp(big.out, "k,n,t,hi,m\n0,2,200000,x654,100000\n", 34)
                      == 0,
                  "groupby begins: %.80s", big.out);
        } else if (i == 1) {
            CHECK(strncmp(big.out, "k,v,s\n191928,295112,x0\n", 23) == 0,
                  "sort begins: %.80s", big.out);
        } else {
            CHECK(strcmp(big.out, "n,t\n200000,19999900000\n") == 0,
                  "distinct count: %s", big.out);
        }
        free(big.out);
        free(small.out);
    }
}

/* More runs than a merger takes at once: the final half of the sort first
 * merges groups of them under the scratch prefix. */
static void
test_many_runs(void)
{
    static const char *spec =
        "{\"input\": {\"path\": \"m.csv\", \"partition_size\": %d}, "
        "\"steps\": [{\"op\": \"sort\", \"by\": [\"k\"]}, "
        "{\"op\": \"limit\", \"n\": %d}]}";
    job_run one, many;
    strbuf  sb = {0};
    char   *text;
    int     i;

    fresh_dirs();
    sb_puts(&sb, "k,i\n");
    for (i = 0; i < 40000; i++)
        sb_printf(&sb, "%d,%d\n", (int)((i * 7919LL) % 1000), i);
    put_file("m.csv", sb.data);
    sb_free(&sb);
    for (i = 0; i < 2; i++) {
        int n = i == 0 ? 50000 : 1500;

        clear_work();
        text = xasprintf(spec, 1 << 30, n);
        run_job(text, 256u << 20, &one);
        free(text);
        clear_work();
        text = xasprintf(spec, 1200, n);
        run_job(text, 256u << 20, &many);
        free(text);
        CHECK(one.rc == 0 && many.rc == 0, "%s %s", one.err.msg, many.err.msg);
        CHECK(one.tasks[0] == 1 && many.tasks[0] > 256,
              "partitions: %zu and %zu", one.tasks[0], many.tasks[0]);
        CHECK(many.spill > 0, "no intermediate merge");
        CHECK(one.out && many.out && strcmp(one.out, many.out) == 0,
              "limit %d: one run and %zu runs disagree", n, many.tasks[0]);
        check_clean("many runs");
        free(one.out);
        free(many.out);
    }
}

/* ---- errors ----------------------------------------------------------- */

static void
test_errors_leave_nothing(void)
{
    job_run r;
    char   *w;

    fresh_dirs();
    put_big();
    /* stage 0: overflow on a row deep inside partition 0; the groupby's
     * bucket files of that task must be gone */
    run_job("{\"input\": {\"path\": \"big.csv\", \"partition_size\": "
            "\"1MiB\"}, \"steps\": ["
            "{\"op\": \"derive\", \"as\": \"x\", \"expr\": \"if(v == 20000, "
            "v * 4611686018427387904, v)\"},"
            "{\"op\": \"groupby\", \"by\": [\"k\"]}]}",
            1u << 20, &r);
    CHECK(r.rc == SH_ERANGE, "rc %d: %s", r.rc, r.err.msg);
    CHECK(strncmp(r.err.msg, "partition 0 (file big.csv, bytes ", 33) == 0
              && strstr(r.err.msg, "step 0 (derive)") != NULL,
          "message: %s", r.err.msg);
    w = th_list_dir(g_work);
    CHECK(strcmp(w, "artifacts") == 0, "files left: %s", w);
    free(w);
    check_clean("stage 0 error");
    free(r.out);

    /* a later stage: an int sum that overflows only when partials meet */
    clear_work();
    put_file("ov.csv", "g,v\na,9000000000000000000\nb,1\n"
                       "a,9000000000000000000\n");
    run_job("{\"input\": {\"path\": \"ov.csv\", \"partition_size\": 10}, "
            "\"steps\": ["
            "{\"op\": \"groupby\", \"by\": [\"g\"], \"aggs\": ["
            " {\"as\": \"t\", \"fn\": \"sum\", \"column\": \"v\"}]},"
            "{\"op\": \"sort\", \"by\": [\"g\"]}]}",
            256u << 20, &r);
    CHECK(r.rc == SH_ERANGE, "rc %d: %s", r.rc, r.err.msg);
    CHECK(strncmp(r.err.msg, "stage 1 task ", 13) == 0
              && strstr(r.err.msg, "step 0 (groupby)") != NULL,
          "message: %s", r.err.msg);
    {
        unsigned task = 99;
        char     name[32];

        sscanf(r.err.msg, "stage 1 task %u", &task);
        snprintf(name, sizeof name, "s1t%u.", task);
        w = th_list_dir(g_work);
        CHECK(task != 99 && strstr(w, name) == NULL
                  && strstr(w, ".tmp") == NULL,
              "files of the failed task %u left: %s", task, w);
        free(w);
    }
    check_clean("stage 1 error");
    free(r.out);

    /* cancelled by the tick function: SH_ECANCELED, nothing left */
    clear_work();
    g_cancel_after = 2;
    run_job("{\"input\": {\"path\": \"big.csv\"}, \"steps\": ["
            "{\"op\": \"sort\", \"by\": [\"v\"]}]}",
            256u << 20, &r);
    g_cancel_after = 0;
    CHECK(r.rc == SH_ECANCELED, "rc %d: %s", r.rc, r.err.msg);
    w = th_list_dir(g_work);
    CHECK(strcmp(w, "artifacts") == 0, "files left: %s", w);
    free(w);
    free(r.out);
}

static void
test_stats(void)
{
    job_run r;

    fresh_dirs();
    put_people();
    run_job("{\"input\": {\"path\": \"p/p1.csv\"}, \"steps\": ["
            "{\"op\": \"filter\", \"where\": \"salary > 60\"}]}",
            256u << 20, &r);
    CHECK(r.rc == 0, "%s", r.err.msg);
    CHECK(r.last.rows_in == 3 && r.last.rows_out == 2
              && r.last.bytes_out == strlen(r.out) && r.last.bytes_in > 0,
          "in %llu out %llu bytes %llu", (unsigned long long)r.last.rows_in,
          (unsigned long long)r.last.rows_out,
          (unsigned long long)r.last.bytes_out);
    CHECK(g_ticks >= 1, "no tick");
    free(r.out);
}

void
test_exec_register(void)
{
    CU_pSuite s = CU_add_suite("exec", suite_init, suite_clean);

    CU_add_test(s, "filter derive groupby sort limit",
                test_filter_derive_groupby_sort_limit);
    CU_add_test(s, "aggregate", test_aggregate);
    CU_add_test(s, "distinct", test_distinct);
    CU_add_test(s, "sort", test_sort);
    CU_add_test(s, "limit", test_limit);
    CU_add_test(s, "word count", test_word_count);
    CU_add_test(s, "join", test_join);
    CU_add_test(s, "join side too big", test_join_too_big);
    CU_add_test(s, "join hows", test_join_hows);
    CU_add_test(s, "join partitioned", test_join_partitioned);
    CU_add_test(s, "join spill", test_join_spill);
    CU_add_test(s, "input and output formats", test_formats);
    CU_add_test(s, "naive Bayes", test_naive_bayes);
    CU_add_test(s, "out of core", test_out_of_core);
    CU_add_test(s, "more runs than a merge takes", test_many_runs);
    CU_add_test(s, "errors leave nothing", test_errors_leave_nothing);
    CU_add_test(s, "stats", test_stats);
}
