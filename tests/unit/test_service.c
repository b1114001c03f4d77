/*
 * test_service.c - unit tests of service/ without a database: the
 * configuration read from the environment (defaults, HOST:PORT forms,
 * ranges, the variable named at fault) and the layout of the spool (every
 * path built by spool.h, and the removals of spool_clean_job and
 * spool_remove_prefix). Failures print both values.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "../../service/config.h"
#include "../../service/sandbox.h"
#include "../../service/spool.h"
#include "test_helpers.h"
#include "test_suites.h"

/* The variables config_load reads. */
static const char *const svc_vars[] = {
    "SHEAF_LISTEN",      "DATABASE_URL",
    "SHEAF_DATA_ROOT",   "SHEAF_SPOOL",
    "SHEAF_WORKERS",     "SHEAF_MEMORY_MB",
    "SHEAF_TOKENS_FILE", "SHEAF_GRACE_S",
    "SHEAF_LEASE_S",     "SHEAF_SWEEP_S",
    "SHEAF_MIGRATIONS",  "SHEAF_USER",
    "SHEAF_DB_POOL",     "SHEAF_DB_LISTEN_URL",
    "SHEAF_ADVERTISE",   "SHEAF_NODE_RETENTION_S",
};
#define N_VARS (sizeof svc_vars / sizeof svc_vars[0])

static char  svc_dir[PATH_MAX]; /* this suite's temporary directory */
static char *svc_saved[N_VARS]; /* the variables as the run had them */

static int
svc_init(void)
{
    for (size_t i = 0; i < N_VARS; i++) {
        const char *v = getenv(svc_vars[i]);

        svc_saved[i] = v != NULL ? xstrdup(v) : NULL;
    }
    return th_temp_dir(svc_dir, sizeof svc_dir, th_tmp_base(), "svc") < 0;
}

static int
svc_clean(void)
{
    for (size_t i = 0; i < N_VARS; i++) {
        if (svc_saved[i] != NULL)
            setenv(svc_vars[i], svc_saved[i], 1);
        else
            unsetenv(svc_vars[i]);
        free(svc_saved[i]);
        svc_saved[i] = NULL;
    }
    th_rm_tree(svc_dir);
    return 0;
}

/* Unset every variable, then point the directories into svc_dir. */
static void
env_reset(void)
{
    char path[PATH_MAX + 16];

    for (size_t i = 0; i < N_VARS; i++)
        unsetenv(svc_vars[i]);
    snprintf(path, sizeof path, "%s/data", svc_dir);
    setenv("SHEAF_DATA_ROOT", path, 1);
    snprintf(path, sizeof path, "%s/spool/", svc_dir);
    setenv("SHEAF_SPOOL", path, 1);
}

static void
test_config_defaults(void)
{
    config c;
    sh_err err;
    char   want[PATH_MAX + 16], real[PATH_MAX];

    env_reset();
    CHECK_INT(0, config_load(&c, &err));
    CHECK_STR("127.0.0.1", c.listen_host);
    CHECK_INT(8080, c.listen_port);
    CHECK_TRUE(c.database_url == NULL);
    CHECK_TRUE(c.tokens_file == NULL);
    CHECK_INT(256, c.memory_mb);
    CHECK_INT(30, c.grace_s);
    CHECK_INT(30, c.lease_s);
    CHECK_INT(60, c.sweep_s);
    CHECK_TRUE(c.workers >= 1);
    /* The directories are made, and made absolute without a trailing
     * slash. */
    CHECK_TRUE(realpath(svc_dir, real) != NULL);
    snprintf(want, sizeof want, "%s/spool", real);
    CHECK_STR(want, c.spool);
    snprintf(want, sizeof want, "%s/data", real);
    CHECK_STR(want, c.data_root);
    CHECK_TRUE(th_exists(c.spool));
    CHECK_TRUE(c.migrations_dir != NULL && c.pg_script != NULL);
    CHECK_INT(16, c.db_pool);
    CHECK_INT(86400, c.node_retention_s);
    CHECK_TRUE(c.advertise == NULL);
    config_free(&c);
    CHECK_TRUE(c.spool == NULL);
}

/* SHEAF_USER: unset is "sheaf" when that user exists, else stay; empty and
 * "root" keep sheafd as started; a name is the user to become, and only a
 * process running as root gives up root. */
static void
test_config_user(void)
{
    static const char *const stay[] = {"", "root"};
    config                   c;
    sh_err                   err;
    char                     group[64];

    env_reset();
    CHECK_INT(0, config_load(&c, &err));
    if (getpwnam("sheaf") != NULL)
        CHECK_STR("sheaf", c.user);
    else
        CHECK_TRUE(c.user == NULL);
    config_free(&c);
    for (size_t i = 0; i < sizeof stay / sizeof stay[0]; i++) {
        env_reset();
        if (stay[i] != NULL)
            setenv("SHEAF_USER", stay[i], 1);
        CHECK_INT(0, config_load(&c, &err));
        CHECK_TRUE(c.user == NULL);
        CHECK_INT(0, sandbox_wants_drop(&c));
        config_free(&c);
    }
    env_reset();
    setenv("SHEAF_USER", "no-such-user-sheaf-test", 1);
    CHECK_INT(0, config_load(&c, &err));
    CHECK_STR("no-such-user-sheaf-test", c.user);
    CHECK_INT(geteuid() == 0, sandbox_wants_drop(&c));
    sh_err_clear(&err);
    CHECK_INT(SH_EINVAL, sandbox_user_group(&c, group, sizeof group, &err));
    CHECK_TRUE(strstr(err.msg, "no user 'no-such-user-sheaf-test'") != NULL);
    CHECK_INT(SH_EINVAL, sandbox_drop(&c, &err)); /* changes nothing */
    CHECK_INT(0, getuid() == 0 ? (int)geteuid() : 0);
    config_free(&c);
}

/*
 * The workers' seccomp filter, in a child (a filter is for good): calls it
 * lists fail with EPERM (unshare(0), a no-op that succeeds without the
 * filter; keyctl reading the session keyring's id, which succeeds too
 * unless a container refuses it already; both passed to the kernel as
 * they are under valgrind), and ordinary calls still work. The child's
 * exit status says which check failed.
 */
static void
test_seccomp(void)
{
    int   status = -1;
    pid_t pid = fork();

    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        sh_err err;
        long   un = syscall(SYS_unshare, 0);
        int    un_e = errno;
        int    fd;

        if (!(un == 0 || un_e == EPERM))
            _exit(10); /* not the baseline this test expects */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || sandbox_seccomp(&err) != 0)
            _exit(11);
        errno = 0;
        if (syscall(SYS_unshare, 0) != -1 || errno != EPERM)
            _exit(12);
        errno = 0;
        if (syscall(SYS_keyctl, 0, -3, 0, 0, 0) != -1 || errno != EPERM)
            _exit(14);
        fd = open("/dev/null", O_RDONLY);
        if (getpid() <= 0 || fd < 0 || close(fd) != 0)
            _exit(15); /* what is not listed stays allowed */
        _exit(0);
    }
    CHECK_INT(pid, waitpid(pid, &status, 0));
    CHECK_TRUE(WIFEXITED(status));
    CHECK_INT(0, WEXITSTATUS(status));
}

/* SHEAF_DB_LISTEN_URL: unset, the database's URL and workers listen;
 * set, that URL and workers poll; off, no listener at all. */
static void
test_config_listen_url(void)
{
    config c;
    sh_err err;

    env_reset();
    setenv("DATABASE_URL", "host=pgbouncer", 1);
    CHECK_INT(0, config_load(&c, &err));
    CHECK_STR("host=pgbouncer", config_listen_url(&c));
    CHECK_TRUE(config_workers_listen(&c));
    config_free(&c);

    setenv("SHEAF_DB_LISTEN_URL", "host=direct", 1);
    setenv("SHEAF_DB_POOL", "4", 1);
    setenv("SHEAF_ADVERTISE", "10.0.0.7:8080", 1);
    setenv("SHEAF_NODE_RETENTION_S", "0", 1);
    CHECK_INT(0, config_load(&c, &err));
    CHECK_STR("host=direct", config_listen_url(&c));
    CHECK_TRUE(!config_workers_listen(&c));
    CHECK_INT(4, c.db_pool);
    CHECK_STR("10.0.0.7:8080", c.advertise);
    CHECK_INT(0, c.node_retention_s);
    config_free(&c);

    setenv("SHEAF_DB_LISTEN_URL", "off", 1);
    CHECK_INT(0, config_load(&c, &err));
    CHECK_TRUE(config_listen_url(&c) == NULL);
    CHECK_TRUE(!config_workers_listen(&c));
    config_free(&c);
}

static void
test_config_values(void)
{
    config c;
    sh_err err;

    env_reset();
    setenv("SHEAF_LISTEN", "[::1]:9000", 1);
    setenv("DATABASE_URL", "postgresql:///x", 1);
    setenv("SHEAF_WORKERS", "3", 1);
    setenv("SHEAF_MEMORY_MB", "16", 1);
    setenv("SHEAF_LEASE_S", "2", 1);
    setenv("SHEAF_MIGRATIONS", "/m", 1);
    setenv("SHEAF_TOKENS_FILE", "", 1); /* empty is unset */
    CHECK_INT(0, config_load(&c, &err));
    CHECK_STR("::1", c.listen_host);
    CHECK_INT(9000, c.listen_port);
    CHECK_STR("postgresql:///x", c.database_url);
    CHECK_INT(3, c.workers);
    CHECK_INT(16, c.memory_mb);
    CHECK_INT(2, c.lease_s);
    CHECK_STR("/m", c.migrations_dir);
    CHECK_TRUE(c.tokens_file == NULL);
    config_free(&c);

    env_reset();
    setenv("SHEAF_LISTEN", "0.0.0.0:0", 1);
    CHECK_INT(0, config_load(&c, &err));
    CHECK_STR("0.0.0.0", c.listen_host);
    CHECK_INT(0, c.listen_port);
    config_free(&c);
}

/* One bad setting and the variable the error must name. */
typedef struct bad_case {
    const char *var;
    const char *value;
} bad_case;

static void
test_config_errors(void)
{
    static const bad_case cases[] = {
        {"SHEAF_LISTEN", "8080"},
        {"SHEAF_LISTEN", ":8080"},
        {"SHEAF_LISTEN", "host:"},
        {"SHEAF_LISTEN", "host:65536"},
        {"SHEAF_LISTEN", "host:80x"},
        {"SHEAF_WORKERS", "0"},
        {"SHEAF_WORKERS", "257"},
        {"SHEAF_WORKERS", "two"},
        {"SHEAF_MEMORY_MB", "15"},
        {"SHEAF_GRACE_S", "-1"},
        {"SHEAF_LEASE_S", "1"},
        {"SHEAF_SWEEP_S", "86401"},
        {"SHEAF_SPOOL", "/proc/no/such/dir"},
        {"SHEAF_DB_POOL", "0"},
        {"SHEAF_DB_POOL", "1001"},
        {"SHEAF_NODE_RETENTION_S", "-1"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        sh_err err;
        int    rc;

        env_reset();
        setenv(cases[i].var, cases[i].value, 1);
        sh_err_clear(&err);
        rc = config_load(&c, &err);
        CHECK(rc == SH_EINVAL, "%s=%s: expected SH_EINVAL, got %d",
              cases[i].var, cases[i].value, rc);
        CHECK_STR(cases[i].var, err.path);
        CHECK(strstr(err.msg, cases[i].var) != NULL,
              "%s=%s: the message names the variable: %s", cases[i].var,
              cases[i].value, err.msg);
        config_free(&c);
    }
}

#define JOB "0b7c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21"

/* Check that 'got' (freed here) is 'want'. */
static void
check_path(const char *want, char *got, int line)
{
    CHECK_AT(got != NULL && strcmp(want, got) == 0, line,
             "expected \"%s\", got \"%s\"", want, got ? got : "(null)");
    free(got);
}

static void
test_spool_paths(void)
{
    check_path("/s/jobs/" JOB, spool_job_dir("/s", JOB), __LINE__);
    check_path("/s/jobs/" JOB "/artifacts", spool_artifacts_dir("/s", JOB),
               __LINE__);
    check_path("/s/jobs/" JOB "/artifacts/model",
               spool_artifact_path("/s", JOB, "model"), __LINE__);
    check_path("/s/jobs/" JOB "/s2-p00007-l123456789012.csv.gz",
               spool_task_output("/s", JOB, 2, 7, 123456789012LL, "csv.gz"),
               __LINE__);
    check_path("/s/jobs/" JOB "/s0-p123456-l1.jsonl",
               spool_task_output("/s", JOB, 0, 123456, 1, "jsonl"), __LINE__);
    check_path("/s/jobs/" JOB "/s1-p00000-l9",
               spool_task_output("/s", JOB, 1, 0, 9, NULL), __LINE__);
    check_path("/s/jobs/" JOB "/tmp-s1-p00003-l9",
               spool_task_scratch("/s", JOB, 1, 3, 9), __LINE__);
}

/* Write an empty file at 'dir'/'name'. */
static void
touch(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");

    if (f != NULL)
        fclose(f);
    free(path);
}

/* Non-zero when 'dir'/'name' exists. */
static int
present(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    int   yes = th_exists(path);

    free(path);
    return yes;
}

static void
test_spool_clean(void)
{
    char       *spool = xasprintf("%s/cleanspool", svc_dir);
    char       *dir = spool_job_dir(spool, JOB);
    char       *arts = spool_artifacts_dir(spool, JOB);
    char       *part = spool_task_output(spool, JOB, 1, 0, 5, "csv");
    char       *prefix = spool_task_output(spool, JOB, 0, 0, 4, NULL);
    const char *keep[1] = {part};

    CHECK_INT(0, fsys_mkdir_p(arts, 0755));
    touch(dir, "s1-p00000-l5.csv");
    touch(dir, "s0-p00000-l4");
    touch(dir, "s0-p00000-l4.b0");
    touch(dir, "s0-p00000-l4.b1");
    touch(dir, "s0-p00000-l40.b0");
    touch(dir, "tmp-s0-p00000-l4.spill");
    touch(arts, "model");

    /* An attempt's files go: the prefix itself and "<prefix>.<suffix>",
     * not a longer lease that shares its digits. */
    CHECK_INT(0, spool_remove_prefix(prefix));
    CHECK_TRUE(!present(dir, "s0-p00000-l4"));
    CHECK_TRUE(!present(dir, "s0-p00000-l4.b0"));
    CHECK_TRUE(!present(dir, "s0-p00000-l4.b1"));
    CHECK_TRUE(present(dir, "s0-p00000-l40.b0"));

    /* Cleaning keeps the result parts and the artifacts. */
    CHECK_INT(0, spool_clean_job(spool, JOB, keep, 1));
    CHECK_TRUE(present(dir, "s1-p00000-l5.csv"));
    CHECK_TRUE(present(arts, "model"));
    CHECK_TRUE(!present(dir, "s0-p00000-l40.b0"));
    CHECK_TRUE(!present(dir, "tmp-s0-p00000-l4.spill"));

    /* A strange id never walks out of the spool. */
    CHECK_INT(-1, spool_remove_job(spool, ".."));
    CHECK_INT(-1, spool_remove_job(spool, "a/b"));
    CHECK_INT(0, spool_remove_job(spool, JOB));
    CHECK_TRUE(!th_exists(dir));
    /* A missing directory is not an error. */
    CHECK_INT(0, spool_remove_job(spool, JOB));
    CHECK_INT(0, spool_clean_job(spool, JOB, NULL, 0));

    free(prefix);
    free(part);
    free(arts);
    free(dir);
    free(spool);
}

void
test_service_register(void)
{
    CU_pSuite s = CU_add_suite("service", svc_init, svc_clean);

    if (s == NULL)
        return;
    CU_add_test(s, "config defaults", test_config_defaults);
    CU_add_test(s, "config values", test_config_values);
    CU_add_test(s, "SHEAF_USER", test_config_user);
    CU_add_test(s, "workers' seccomp filter", test_seccomp);
    CU_add_test(s, "config errors name the variable", test_config_errors);
    CU_add_test(s, "config: the LISTEN URL", test_config_listen_url);
    CU_add_test(s, "spool paths", test_spool_paths);
    CU_add_test(s, "spool removals", test_spool_clean);
}
