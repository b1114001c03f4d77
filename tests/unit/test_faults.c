/*
 * test_faults.c - unit tests of lib/fsys (the table of file-system calls,
 * the fault injector, the durable commit) and of what the engine does when
 * a call fails: a row file or a sort's spill that hits ENOSPC, an fsync
 * that returns EIO, a rename that fails. Each must fail with an error that
 * names the call and the file, leave no temporary file, never leave a
 * half-written file under a final name, and leave the process fit for the
 * next task (a whole task through exec_run_task, then the same task again
 * after fsys_reset).
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../executor/rowfile.h"
#include "../../executor/sort.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_job.h"
#include "test_suites.h"

static char g_dir[256];  /* the current test's directory */
static char g_root[256]; /* exec: the data root */
static char g_work[256]; /* exec: task outputs */
static char g_scr[256];  /* exec: scratch */

/* 'msg' holds every one of the NULL-terminated words after it. */
static int
has_all(const char *msg, ...)
{
    va_list     ap;
    const char *w;
    int         ok = 1;

    va_start(ap, msg);
    while ((w = va_arg(ap, const char *)) != NULL)
        if (strstr(msg, w) == NULL)
            ok = 0;
    va_end(ap);
    return ok;
}

static int
suite_init(void)
{
    g_dir[0] = g_root[0] = g_work[0] = g_scr[0] = '\0';
    return 0;
}

static int
suite_clean(void)
{
    fsys_reset();
    th_rm_tree(g_dir);
    th_rm_tree(g_root);
    th_rm_tree(g_work);
    th_rm_tree(g_scr);
    g_dir[0] = g_root[0] = g_work[0] = g_scr[0] = '\0';
    return 0;
}

/* A fresh directory for the test in g_dir; every fault disarmed. */
static void
fresh(void)
{
    fsys_reset();
    th_fresh_dir(g_dir, sizeof g_dir, th_tmp_base(), "sheaf-faults");
}

static void
arm(fsys_call call, unsigned skip, unsigned times, int err_no,
    const char *path_has)
{
    fsys_fault f = {call, skip, times, err_no, path_has};

    CHECK(fsys_fault_add(&f) == 0, "fsys_fault_add");
}

/* ---- the table and the injector --------------------------------------- */

static int g_writes; /* calls of counting_write */

static ssize_t
counting_write(int fd, const void *buf, size_t n)
{
    (void)fd;
    (void)buf;
    (void)n;
    g_writes++;
    errno = ENOSPC;
    return -1;
}

static void
test_table(void)
{
    char *path;
    int   fd;

    fresh();
    path = xasprintf("%s/t", g_dir);
    fd = fsys_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));

    /* A replaced entry is what every caller gets... */
    g_writes = 0;
    fsys_sys.write = counting_write;
    errno = 0;
    CHECK(fsys_write_all(fd, "abc", 3) == -1 && errno == ENOSPC,
          "write_all through the replaced entry: errno %d", errno);
    CHECK(g_writes == 1, "calls of the replacement: %d", g_writes);
    CHECK(util_file_bytes(path) == 0, "bytes written: %llu",
          (unsigned long long)util_file_bytes(path));

    /* ...until fsys_reset puts the real call back. */
    fsys_reset();
    CHECK(fsys_write_all(fd, "abc", 3) == 0, "real write: %s", strerror(errno));
    CHECK(g_writes == 1 && util_file_bytes(path) == 3, "after reset");
    CHECK(fsys_close(fd) == 0, "close");
    CHECK(strcmp(fsys_call_name(FSYS_FSYNC), "fsync") == 0
              && strcmp(fsys_call_name(FSYS_RENAME), "rename") == 0,
          "call names");
    free(path);
}

static void
test_injector(void)
{
    char *a, *b, *d;
    int   fa, fb, i, fails;

    fresh();
    a = xasprintf("%s/a.data", g_dir);
    b = xasprintf("%s/b.other", g_dir);
    d = xasprintf("%s/sub", g_dir);

    /* Writes to paths holding ".data": 2 succeed, then 3 fail, then the
     * rest succeed. Writes to other files are untouched. */
    arm(FSYS_WRITE, 2, 3, ENOSPC, ".data");
    fa = fsys_open(a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    fb = fsys_open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fa >= 0 && fb >= 0, "open");
    fails = 0;
    for (i = 0; i < 7; i++) {
        errno = 0;
        if (fsys_write(fa, "x", 1) < 0) {
            CHECK(errno == ENOSPC, "errno %d", errno);
            CHECK(i >= 2 && i < 5, "write %d failed", i);
            fails++;
        }
        CHECK(fsys_write(fb, "y", 1) == 1, "write %d to b", i);
    }
    CHECK(fails == 3 && fsys_fault_hits() == 3, "fails %d, hits %u", fails,
          fsys_fault_hits());
    CHECK(util_file_bytes(a) == 4 && util_file_bytes(b) == 7, "a %llu b %llu",
          (unsigned long long)util_file_bytes(a),
          (unsigned long long)util_file_bytes(b));

    /* Every fsync from now on fails (times 0); path calls match either
     * name of a rename. */
    arm(FSYS_FSYNC, 0, 0, EIO, NULL);
    arm(FSYS_RENAME, 0, 1, EXDEV, "b.oth");
    arm(FSYS_MKDIR, 0, 1, ENOSPC, "/sub");
    for (i = 0; i < 3; i++)
        CHECK(fsys_fsync(fa) < 0 && errno == EIO, "fsync %d", i);
    CHECK(fsys_rename(a, b) < 0 && errno == EXDEV, "rename to b");
    CHECK(fsys_rename(b, a) == 0, "the second rename (times 1)");
    CHECK(fsys_mkdir_p(d, 0755) < 0 && errno == ENOSPC, "mkdir");
    CHECK(fsys_mkdir_p(d, 0755) == 0, "the second mkdir");
    CHECK(fsys_close(fa) == 0 && fsys_close(fb) == 0, "close");

    /* fsys_reset disarms everything. */
    fsys_reset();
    CHECK(fsys_fault_hits() == 0, "hits after reset");
    fa = fsys_open(a, O_RDONLY | O_CLOEXEC, 0);
    CHECK(fa >= 0 && fsys_fsync(fa) == 0, "fsync after reset");
    if (fa >= 0)
        fsys_close(fa);
    for (i = 0; i < FSYS_FAULTS_MAX; i++)
        arm(FSYS_UNLINK, 0, 1, EIO, "none");
    {
        fsys_fault f = {FSYS_UNLINK, 0, 1, EIO, NULL};

        CHECK(fsys_fault_add(&f) == -1, "more faults than FSYS_FAULTS_MAX");
    }
    fsys_reset();
    free(a);
    free(b);
    free(d);
}

/* ---- the durable commit ------------------------------------------------ */

/* Write "<path>.tmp" with 'text' through fsys_file and commit it with
 * faults armed by the caller; 0 or the error. */
static int
write_durable(const char *path, const char *text, sh_err *err)
{
    fsys_file f;
    int       rc;

    if ((rc = fsys_file_create(&f, path, 0, err)) != 0)
        return rc;
    if ((rc = fsys_file_write(&f, text, strlen(text), err)) != 0) {
        fsys_file_abort(&f);
        return rc;
    }
    return fsys_file_commit(&f, err);
}

static void
test_commit(void)
{
    static const struct {
        fsys_call   call;
        unsigned    skip;
        int         err_no;
        const char *words; /* the call and the file, as the message has */
        const char *file;  /* the name that follows the call */
        int         old_survives; /* the committed v1 is still there */
    } cases[] = {
        {FSYS_OPEN, 0, EACCES, "cannot create", "x.tmp", 1},
        {FSYS_WRITE, 0, ENOSPC, "cannot write", "x.tmp", 1},
        {FSYS_FSYNC, 0, EIO, "cannot fsync", "x.tmp", 1},
        {FSYS_CLOSE, 0, EIO, "cannot close", "x.tmp", 1},
        {FSYS_RENAME, 0, EXDEV, "cannot rename", "x.tmp to ", 1},
        /* the second fsync is the directory's, after the rename */
        {FSYS_FSYNC, 1, EIO, "cannot fsync the directory of", "/x", 0},
    };
    char *path = NULL, *tmp = NULL;

    fresh();
    path = xasprintf("%s/x", g_dir);
    tmp = xasprintf("%s/x.tmp", g_dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_err err;
        char  *text, *files;
        int    rc;

        fsys_reset();
        sh_err_clear(&err);
        CHECK(write_durable(path, "v1\n", &err) == 0, "case %zu: v1: %s", i,
              err.msg);
        arm(cases[i].call, cases[i].skip, 1, cases[i].err_no, NULL);
        rc = write_durable(path, "v2, longer\n", &err);
        CHECK(rc == SH_EIO && err.code == SH_EIO, "case %zu: rc %d", i, rc);
        CHECK(has_all(err.msg, cases[i].words, cases[i].file,
                      strerror(cases[i].err_no), NULL),
              "case %zu: message: %s", i, err.msg);
        CHECK(fsys_fault_hits() == 1, "case %zu: hits %u", i,
              fsys_fault_hits());
        fsys_reset();
        CHECK(!th_exists(tmp), "case %zu: %s left behind", i, tmp);
        /* What is under the final name is v1, whole, or nothing. */
        text = fsys_read_file(path, NULL);
        if (cases[i].old_survives)
            CHECK(text != NULL && strcmp(text, "v1\n") == 0,
                  "case %zu: the committed file now holds %s", i,
                  text ? text : "(nothing)");
        else
            CHECK(text == NULL,
                  "case %zu: a file whose directory was not "
                  "synced is still served: %s",
                  i, text);
        free(text);
        files = th_list_dir(g_dir);
        CHECK(strcmp(files, cases[i].old_survives ? "x" : "") == 0,
              "case %zu: files %s", i, files);
        free(files);
    }
    /* FSYS_NOSYNC: no fsync is made at all. */
    fsys_reset();
    arm(FSYS_FSYNC, 0, 0, EIO, NULL);
    {
        fsys_file f;
        sh_err    err;

        CHECK(fsys_file_create(&f, path, FSYS_NOSYNC, &err) == 0
                  && fsys_file_write(&f, "s\n", 2, &err) == 0
                  && fsys_file_commit(&f, &err) == 0,
              "scratch commit: %s", err.msg);
        CHECK(fsys_fault_hits() == 0, "a scratch commit made an fsync");
        fsys_file_abort(&f); /* a no-op on a released file */
    }
    fsys_reset();
    free(path);
    free(tmp);
}

/* ---- row files ---------------------------------------------------------- */

#define ROWS_V1 10

/* Write 'n' rows (i, "row i padded") to 'path'; 0 or the error. */
static int
write_rows(const char *path, int n, sh_err *err)
{
    rowfile_writer *w = rowfile_create(path, 2, err);
    char            buf[64];

    if (w == NULL)
        return err->code;
    for (int i = 0; i < n; i++) {
        sh_value row[2];
        int      len = snprintf(buf, sizeof buf, "row %d %040d", i, i);

        row[0] = sh_int(i);
        row[1].type = SH_STRING;
        row[1].u.s.ptr = buf;
        row[1].u.s.len = (size_t)len;
        if (rowfile_write(w, row, err) != 0) {
            rowfile_abort(w);
            return err->code;
        }
    }
    return rowfile_close(w, err);
}

/* The rows of 'path' read back: their count, or -1 on error. */
static long
count_rows(const char *path, sh_err *err)
{
    rowfile_reader *r = rowfile_open(path, err);
    const sh_value *row;
    long            n = 0;
    int             rc;

    if (r == NULL)
        return -1;
    while ((rc = rowfile_next(r, &row, err)) == 1)
        n++;
    rowfile_free(r);
    return rc == 0 ? n : -1;
}

static void
test_rowfile(void)
{
    static const struct {
        fsys_call   call;
        unsigned    skip;
        int         err_no;
        const char *path_has;
        const char *words;
        int         old_survives;
    } cases[] = {
        /* the first buffer goes out, then the disk is full */
        {FSYS_WRITE, 1, ENOSPC, "part.r0", "cannot write", 1},
        {FSYS_FSYNC, 0, EIO, "part.r0", "cannot fsync", 1},
        {FSYS_RENAME, 0, EACCES, "part.r0", "cannot rename", 1},
        /* the file's fsync, then the directory's (its path is the
         * directory's, hence no filter) */
        {FSYS_FSYNC, 1, EIO, NULL, "cannot fsync the directory of", 0},
    };
    char *path, *tmp;

    fresh();
    path = xasprintf("%s/part.r0", g_dir);
    tmp = xasprintf("%s.tmp", path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_err err;
        long   n;
        int    rc;

        sh_err_clear(&err);
        fsys_reset();
        CHECK(write_rows(path, ROWS_V1, &err) == 0, "v1: %s", err.msg);
        /* 200000 rows of about 60 bytes: several buffers of 1 MiB */
        arm(cases[i].call, cases[i].skip, 0, cases[i].err_no,
            cases[i].path_has);
        rc = write_rows(path, 200000, &err);
        CHECK(rc == SH_EIO, "case %zu: rc %d (%s)", i, rc, err.msg);
        CHECK(has_all(err.msg, cases[i].words, "part.r0",
                      strerror(cases[i].err_no), NULL),
              "case %zu: message: %s", i, err.msg);
        fsys_reset();
        CHECK(!th_exists(tmp), "case %zu: %s left behind", i, tmp);
        n = count_rows(path, &err);
        if (cases[i].old_survives)
            CHECK(n == ROWS_V1,
                  "case %zu: the committed file reads %ld "
                  "rows (%s)",
                  i, n, err.msg);
        else
            CHECK(n == -1 && !th_exists(path),
                  "case %zu: the file is still served", i);
    }

    /* A sectioned file that hits ENOSPC: nothing is left. */
    fsys_reset();
    th_clear_dir(g_dir);
    {
        rowfile_sections *s;
        sh_err            err;
        int               rc = 0;
        char              buf[80];

        s = rowfile_sections_create(path, 1, 4, &err);
        CHECK(s != NULL, "sections: %s", err.msg);
        arm(FSYS_WRITE, 0, 0, ENOSPC, NULL);
        for (int i = 0; s != NULL && i < 100000 && rc == 0; i++) {
            sh_value v;

            v.type = SH_STRING;
            v.u.s.ptr = buf;
            v.u.s.len = (size_t)snprintf(buf, sizeof buf, "%060d", i);
            rc = rowfile_write(rowfile_sections_writer(s, (size_t)i % 4), &v,
                               &err);
        }
        if (s != NULL && rc == 0)
            rc = rowfile_sections_close(s, &err);
        else if (s != NULL)
            rowfile_sections_abort(s);
        CHECK(rc == SH_EIO
                  && has_all(err.msg, "cannot write", "part.r0.tmp",
                             strerror(ENOSPC), NULL),
              "sections: rc %d: %s", rc, err.msg);
        fsys_reset();
        {
            char *files = th_list_dir(g_dir);

            CHECK(files[0] == '\0', "sections: files left: %s", files);
            free(files);
        }
    }
    free(path);
    free(tmp);
}

/* ---- a sort's spill ----------------------------------------------------- */

static void
test_sort_spill(void)
{
    static const struct {
        fsys_call   call;
        int         err_no;
        const char *file; /* the fault hits files holding this */
        const char *words;
    } cases[] = {
        {FSYS_WRITE, ENOSPC, ".r2", "cannot write"},
        {FSYS_FSYNC, EIO, ".r1", "cannot fsync"},
        {FSYS_RENAME, EACCES, ".r3", "cannot rename"},
    };
    sort_key key = {0, 0};
    char    *prefix;

    fresh();
    prefix = xasprintf("%s/t0", g_dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sorter *s;
        sh_err  err;
        int     rc = 0;
        char   *files;
        char    buf[64];

        fsys_reset();
        th_clear_dir(g_dir);
        arm(cases[i].call, 0, 0, cases[i].err_no, cases[i].file);
        /* 256 KiB of memory: a run every few thousand rows */
        s = sorter_new(2, &key, 1, 256u << 10, prefix, 0);
        for (int r = 0; r < 60000 && rc == 0; r++) {
            sh_value row[2];

            row[0] = sh_int((r * 7919LL) % 60000);
            row[1].type = SH_STRING;
            row[1].u.s.ptr = buf;
            row[1].u.s.len = (size_t)snprintf(buf, sizeof buf, "%030d", r);
            rc = sorter_push(s, row, &err);
        }
        if (rc == 0)
            rc = sorter_finish(s, &err);
        sorter_free(s);
        CHECK(rc == SH_EIO, "case %zu: rc %d", i, rc);
        CHECK(has_all(err.msg, cases[i].words, cases[i].file,
                      strerror(cases[i].err_no), NULL),
              "case %zu: message: %s", i, err.msg);
        fsys_reset();
        /* The sorter leaves the runs it completed to its owner (the
         * task's sink removes them); never a temporary file. */
        files = th_list_dir(g_dir);
        CHECK(strstr(files, ".tmp") == NULL, "case %zu: files %s", i, files);
        free(files);
    }
    fsys_reset();
    free(prefix);
}

/* ---- a whole task, and the next one ------------------------------------- */

/* Build 'spec_text' and run every task of every stage in order with
 * 'mem_bytes' (th_run_job); the last stage's outputs concatenated in *out
 * (malloc'ed). Stops at the first task that fails: its rc, and its error
 * in *err. */
static int
run_job(const char *spec_text, uint64_t mem_bytes, char **out, sh_err *err)
{
    th_job_dirs d = {g_root, g_work, g_scr};
    th_job_run  r;

    th_run_job(&d, spec_text, mem_bytes, NULL, NULL, &r);
    *out = r.out;
    *err = r.err;
    return r.rc;
}

static void
test_exec_task(void)
{
    /* The sort's stage 0 writes runs "<out>.rN" (fsync'ed, renamed) under
     * 1 MiB; a job without a combine step writes only its output. */
    static const char *sort_spec =
        "{\"input\": {\"path\": \"big.csv\"}, \"steps\": ["
        "{\"op\": \"sort\", \"by\": [\"k\", \"v\"]}]}";
    static const char *copy_spec =
        "{\"input\": {\"path\": \"big.csv\"}, \"steps\": ["
        "{\"op\": \"filter\", \"where\": \"v >= 0\"}]}";
    static const struct {
        const char *spec;
        fsys_call   call;
        int         err_no;
        const char *path_has;
        const char *words;
        const char *file;
    } cases[] = {
        {NULL, FSYS_WRITE, ENOSPC, ".r1", "cannot write", "s0t0.r1.tmp"},
        {NULL, FSYS_FSYNC, EIO, ".r0", "cannot fsync", "s0t0.r0.tmp"},
        {NULL, FSYS_RENAME, EXDEV, ".r2", "cannot rename", "s0t0.r2.tmp"},
        /* the output writer: every write fails (its fd is not opened
         * through fsys_open, so no path filter) */
        {"copy", FSYS_WRITE, ENOSPC, NULL, "cannot write the output",
         "out0t0.tmp"},
    };
    char  *want_sort = NULL, *want_copy = NULL, *got = NULL;
    sh_err err;
    strbuf sb = {0};
    int    rc;

    fsys_reset();
    th_fresh_dir(g_root, sizeof g_root, th_tmp_base(), "sheaf-faults-root");
    th_fresh_dir(g_work, sizeof g_work, th_tmp_base(), "sheaf-faults-work");
    th_fresh_dir(g_scr, sizeof g_scr, th_tmp_base(), "sheaf-faults-scr");
    sb_puts(&sb, "k,v,s\n");
    for (int i = 0; i < 40000; i++)
        sb_printf(&sb, "%d,%d,x%d\n", (int)((i * 7919LL) % 40000), i,
                  (i * 31) % 997);
    th_put_file(g_root, "big.csv", sb.data, sb.len);
    sb_free(&sb);

    rc = run_job(sort_spec, 1u << 20, &want_sort, &err);
    CHECK(rc == 0, "sort without faults: %s", err.msg);
    th_clear_dir(g_work);
    rc = run_job(copy_spec, 1u << 20, &want_copy, &err);
    CHECK(rc == 0, "copy without faults: %s", err.msg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *spec = cases[i].spec ? copy_spec : sort_spec;
        const char *want = cases[i].spec ? want_copy : want_sort;
        char       *files;

        th_clear_dir(g_work);
        th_clear_dir(g_scr);
        arm(cases[i].call, 0, 0, cases[i].err_no, cases[i].path_has);
        rc = run_job(spec, 1u << 20, &got, &err);
        free(got);
        CHECK(rc == SH_EIO, "case %zu: rc %d (%s)", i, rc, err.msg);
        CHECK(strncmp(err.msg, "partition 0", 11) == 0
                  && has_all(err.msg, cases[i].words, cases[i].file,
                             strerror(cases[i].err_no), NULL),
              "case %zu: message: %s", i, err.msg);
        CHECK(fsys_fault_hits() >= 1, "case %zu: no fault hit", i);
        fsys_reset();
        /* Nothing of the failed task is left, scratch included. */
        files = th_list_dir(g_work);
        CHECK(strcmp(files, "artifacts") == 0, "case %zu: files left: %s", i,
              files);
        free(files);
        files = th_list_dir(g_scr);
        CHECK(files[0] == '\0', "case %zu: scratch left: %s", i, files);
        free(files);
        /* The process lives on: the same job now succeeds, whole. */
        th_clear_dir(g_work);
        rc = run_job(spec, 1u << 20, &got, &err);
        CHECK(rc == 0, "case %zu: the next run: %s", i, err.msg);
        CHECK(rc != 0 || (got && want && strcmp(got, want) == 0),
              "case %zu: the next run's output differs", i);
        free(got);
        got = NULL;
    }
    free(want_sort);
    free(want_copy);
}

void
test_faults_register(void)
{
    CU_pSuite s = CU_add_suite("faults", suite_init, suite_clean);

    CU_add_test(s, "the table of calls", test_table);
    CU_add_test(s, "the fault injector", test_injector);
    CU_add_test(s, "fsys_commit: every step failing", test_commit);
    CU_add_test(s, "row files: ENOSPC, EIO, rename", test_rowfile);
    CU_add_test(s, "sort spill: ENOSPC, EIO, rename", test_sort_spill);
    CU_add_test(s, "a task fails whole; the next one succeeds", test_exec_task);
}
