/*
 * config.c - sheafd's configuration from the environment (SPEC section 1).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

/* The value of 'name', or 'dflt' when unset or empty. */
static const char *
env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v && *v ? v : dflt;
}

/* Parse env 'name' as an int in [lo, hi] into *out ('dflt' when unset). */
static int
env_int(const char *name, int dflt, int lo, int hi, int *out, sh_err *err)
{
    const char *v = getenv(name);
    char       *end;
    long        n;

    if (v == NULL || *v == '\0') {
        *out = dflt;
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end != '\0' || n < lo || n > hi)
        return sh_err_set(err, SH_EINVAL, name,
                          "%s must be an integer from %d to %d, got '%s'", name,
                          lo, hi, v);
    *out = (int)n;
    return 0;
}

/* Parse env 'name' as a 64-bit integer in [lo, hi] into *out ('dflt'
 * when unset). */
static int
env_int64(const char *name, int64_t dflt, int64_t lo, int64_t hi, int64_t *out,
          sh_err *err)
{
    const char *v = getenv(name);
    char       *end;
    long long   n;

    if (v == NULL || *v == '\0') {
        *out = dflt;
        return 0;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || *end != '\0' || n < lo || n > hi)
        return sh_err_set(err, SH_EINVAL, name,
                          "%s must be an integer from %lld to %lld, got "
                          "'%s'",
                          name, (long long)lo, (long long)hi, v);
    *out = n;
    return 0;
}

/* An absolute, existing directory for 'path', created when missing. */
/* SHEAF_USER unset: SPEC's default user "sheaf" when it exists, else
 * NULL (stay as started). Returns a string the caller owns, or NULL. */
static char *
config_user_default(void)
{
    struct passwd  pw;
    struct passwd *found = NULL;
    char           buf[1024];

    if (getpwnam_r("sheaf", &pw, buf, sizeof buf, &found) != 0 || !found)
        return NULL;
    return xstrdup("sheaf");
}

static int
abs_dir(const char *var, const char *path, char **out, sh_err *err)
{
    char buf[PATH_MAX];

    if (fsys_mkdir_p(path, 0755) < 0)
        return sh_err_set(err, SH_EINVAL, var, "%s: cannot create '%s': %s",
                          var, path, strerror(errno));
    if (realpath(path, buf) == NULL)
        return sh_err_set(err, SH_EINVAL, var, "%s: '%s': %s", var, path,
                          strerror(errno));
    *out = xstrdup(buf);
    return 0;
}

/* The directory two levels above the running binary (the source tree). */
static char *
tree_dir(void)
{
    char    buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

    if (n <= 0)
        return xstrdup(".");
    buf[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(buf, '/');
        if (slash == NULL || slash == buf)
            return xstrdup("/");
        *slash = '\0';
    }
    return xstrdup(buf);
}

int
config_load(config *c, sh_err *err)
{
    const char *listen = env_or("SHEAF_LISTEN", "127.0.0.1:8080");
    const char *colon = strrchr(listen, ':');
    char       *tree = tree_dir();
    long        cores = sysconf(_SC_NPROCESSORS_ONLN);
    int         rc;

    memset(c, 0, sizeof *c);
    if (colon == NULL || colon == listen || colon[1] == '\0') {
        rc = sh_err_set(err, SH_EINVAL, "SHEAF_LISTEN",
                        "SHEAF_LISTEN must be HOST:PORT, got '%s'", listen);
        goto done;
    }
    if (listen[0] == '[' && colon[-1] == ']')
        c->listen_host = xstrndup(listen + 1, (size_t)(colon - listen - 2));
    else
        c->listen_host = xstrndup(listen, (size_t)(colon - listen));
    char *end;
    long  port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        rc = sh_err_set(err, SH_EINVAL, "SHEAF_LISTEN",
                        "SHEAF_LISTEN has a bad port in '%s'", listen);
        goto done;
    }
    c->listen_port = (int)port;

    if (getenv("DATABASE_URL") && *getenv("DATABASE_URL"))
        c->database_url = xstrdup(getenv("DATABASE_URL"));
    if (getenv("SHEAF_TOKENS_FILE") && *getenv("SHEAF_TOKENS_FILE"))
        c->tokens_file = xstrdup(getenv("SHEAF_TOKENS_FILE"));
    c->migrations_dir = getenv("SHEAF_MIGRATIONS")
                                && *getenv("SHEAF_MIGRATIONS")
                            ? xstrdup(getenv("SHEAF_MIGRATIONS"))
                            : xasprintf("%s/migrations", tree);
    c->pg_script = xasprintf("%s/scripts/pg.sh", tree);
    /* SPEC's default is "sheaf"; unset, it applies only when that user
     * exists (config_user_default), so a root sheafd on a machine without
     * it keeps running as before. Empty or "root" opt out. */
    if (getenv("SHEAF_USER") == NULL)
        c->user = config_user_default();
    else if (*getenv("SHEAF_USER") && strcmp(getenv("SHEAF_USER"), "root") != 0)
        c->user = xstrdup(getenv("SHEAF_USER"));
    if (getenv("SHEAF_DB_LISTEN_URL") && *getenv("SHEAF_DB_LISTEN_URL")) {
        if (strcmp(getenv("SHEAF_DB_LISTEN_URL"), "off") == 0)
            c->db_listen_off = 1;
        else
            c->db_listen_url = xstrdup(getenv("SHEAF_DB_LISTEN_URL"));
    }
    if (getenv("SHEAF_ADVERTISE") && *getenv("SHEAF_ADVERTISE"))
        c->advertise = xstrdup(getenv("SHEAF_ADVERTISE"));

    if ((rc = abs_dir("SHEAF_DATA_ROOT", env_or("SHEAF_DATA_ROOT", "./data"),
                      &c->data_root, err))
        < 0)
        goto done;
    if ((rc = abs_dir("SHEAF_SPOOL", env_or("SHEAF_SPOOL", "./var/spool"),
                      &c->spool, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_WORKERS", cores > 0 ? (int)cores : 2, 1, 256,
                      &c->workers, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_MEMORY_MB", 256, 16, 1 << 20, &c->memory_mb, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_GRACE_S", 30, 0, 3600, &c->grace_s, err)) < 0)
        goto done;
    if ((rc = env_int("SHEAF_LEASE_S", 30, 2, 3600, &c->lease_s, err)) < 0)
        goto done;
    if ((rc = env_int("SHEAF_SWEEP_S", 60, 1, 86400, &c->sweep_s, err)) < 0)
        goto done;
    if ((rc = env_int("SHEAF_MAX_CONNECTIONS", 512, 4, 100000,
                      &c->max_connections, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_MAX_CONNECTIONS_PER_IP", 64, 1, 100000,
                      &c->max_connections_per_ip, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_REQUEST_TIMEOUT_S", 10, 1, 3600,
                      &c->request_timeout_s, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_KEEPALIVE_S", 30, 1, 3600, &c->keepalive_s, err))
        < 0)
        goto done;
    int record_bytes;
    if ((rc = env_int("SHEAF_MAX_RECORD_BYTES", 16 << 20, 4096, 1 << 30,
                      &record_bytes, err))
        < 0)
        goto done;
    c->max_record_bytes = record_bytes;
    if ((rc = env_int("SHEAF_MAX_COLUMNS", 10000, 1, 1000000, &c->max_columns,
                      err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_MAX_GZIP_RATIO", 1000, 1, 1000000,
                      &c->max_gzip_ratio, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_MAX_PARTITIONS", 100000, 1, 10000000,
                      &c->max_partitions, err))
        < 0)
        goto done;
    if ((rc = env_int("SHEAF_DB_POOL", 16, 1, 1000, &c->db_pool, err)) < 0)
        goto done;
    if ((rc = env_int("SHEAF_NODE_RETENTION_S", 86400, 0, 365 * 86400,
                      &c->node_retention_s, err))
        < 0)
        goto done;
    if ((rc = env_int64("SHEAF_MAX_UPLOAD_BYTES", (int64_t)10 << 30, 1,
                        (int64_t)1 << 50, &c->max_upload_bytes, err))
        < 0)
        goto done;
    rc = 0;
done:
    free(tree);
    return rc;
}

void
config_free(config *c)
{
    free(c->listen_host);
    free(c->database_url);
    free(c->data_root);
    free(c->spool);
    free(c->tokens_file);
    free(c->migrations_dir);
    free(c->pg_script);
    free(c->user);
    free(c->db_listen_url);
    free(c->advertise);
    memset(c, 0, sizeof *c);
}

const char *
config_listen_url(const config *c)
{
    if (c->db_listen_off)
        return NULL;
    return c->db_listen_url != NULL ? c->db_listen_url : c->database_url;
}

int
config_workers_listen(const config *c)
{
    return !c->db_listen_off && c->db_listen_url == NULL;
}
