/*
 * main.c - sheafd: the HTTP API, the scheduler's housekeeping and the
 * supervisor of this node's worker processes.
 *
 *   sheafd                  API + workers (the default, --role all)
 *   sheafd --role worker    workers only (more machines, same database)
 *   sheafd --role api       the API only, no workers
 *   sheafd --worker-process one worker; started by the supervisor
 *
 * Process model: the main process applies migrations, then (started as
 * root with SHEAF_USER set) binds its listener and becomes that user for
 * good, then starts its workers with posix_spawn (fork + exec: they are
 * born unprivileged), then starts the API's threads. No worker ever
 * inherits a thread or a database connection (libpq's sockets are
 * close-on-exec); each opens its own. The main thread waits for signals:
 * SIGCHLD (a worker died: requeue its task, replace it), SIGTERM/SIGINT (shut
 * down gracefully).
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../api/api.h"
#include "../executor/csv.h"
#include "../executor/input.h"
#include "../lib/util.h"
#include "config.h"
#include "db.h"
#include "dbpool.h"
#include "log.h"
#include "node.h"
#include "sandbox.h"
#include "supervisor.h"
#include "sweeper.h"
#include "worker.h"

#define CONNECT_WAIT_S       30  /* how long start-up waits for the database */
#define DB_CONNECT_TIMEOUT_S "5" /* PGCONNECT_TIMEOUT unless set */

static void
usage(FILE *f)
{
    fputs("usage: sheafd [--role all|api|worker]\n"
          "  Configuration comes from the environment: SHEAF_LISTEN,\n"
          "  DATABASE_URL, SHEAF_DATA_ROOT, SHEAF_SPOOL, SHEAF_WORKERS,\n"
          "  SHEAF_MEMORY_MB, SHEAF_TOKENS_FILE, SHEAF_GRACE_S,\n"
          "  SHEAF_LEASE_S, SHEAF_SWEEP_S, SHEAF_DB_POOL,\n"
          "  SHEAF_DB_LISTEN_URL, SHEAF_ADVERTISE, SHEAF_USER (see README).\n",
          f);
}

/*
 * Without DATABASE_URL, start the private cluster under ./var/pg with
 * scripts/pg.sh and use the connection string it prints. Returns 0 or -1.
 */
static int
start_private_pg(config *cfg)
{
    char  *cmd = xasprintf("'%s' start", cfg->pg_script);
    FILE  *f;
    char   line[1024] = "";
    int    status;
    sh_err err;

    /* sheafd will run as SHEAF_USER: the cluster's socket must let that
     * user's group in (pg.sh: unix_socket_group). */
    if (sandbox_wants_drop(cfg) && getenv("SHEAF_PG_SOCKET_GROUP") == NULL) {
        if (sandbox_user_group(cfg, line, sizeof line, &err) != 0) {
            log_error("%s", err.msg);
            free(cmd);
            return -1;
        }
        setenv("SHEAF_PG_SOCKET_GROUP", line, 1);
        line[0] = '\0';
    }
    f = popen(cmd, "r");
    free(cmd);
    if (f == NULL) {
        log_error("cannot run %s: %s", cfg->pg_script, strerror(errno));
        return -1;
    }
    if (fgets(line, sizeof line, f) == NULL)
        line[0] = '\0';
    status = pclose(f);
    line[strcspn(line, "\n")] = '\0';
    if (status != 0 || line[0] == '\0') {
        log_error("%s start failed (status %d); set DATABASE_URL or see its "
                  "messages above",
                  cfg->pg_script, status);
        return -1;
    }
    cfg->database_url = xstrdup(line);
    /* Workers read their configuration from the environment too. */
    setenv("DATABASE_URL", line, 1);
    log_info("using the private PostgreSQL cluster: %s", line);
    return 0;
}

/*
 * Defaults for every libpq connection of this process and of the workers
 * it starts (they inherit the environment); a setting in DATABASE_URL
 * still wins. A connect that cannot complete gives up after
 * DB_CONNECT_TIMEOUT_S, so an API call answers 503 rather than hang while
 * the database is away. A session that stays inside a transaction longer
 * than a lease - a worker stopped or cut off between taking a row lock
 * and committing - is ended by the server, so that its locks cannot stall
 * the other workers of the job and the reaper for longer than that.
 */
static void
db_session_defaults(const config *cfg)
{
    const char *old = getenv("PGOPTIONS");
    char       *opts;

    setenv("PGCONNECT_TIMEOUT", DB_CONNECT_TIMEOUT_S, 0);
    /* Ours first: a later -c of the same setting overrides it. */
    opts = xasprintf("-c idle_in_transaction_session_timeout=%d%s%s",
                     cfg->lease_s * 1000, old != NULL ? " " : "",
                     old != NULL ? old : "");
    setenv("PGOPTIONS", opts, 1);
    free(opts);
}

/* Connect, retrying for a while: the database may still be starting. */
static db *
connect_retry(const char *url)
{
    int64_t deadline = now_ms() + CONNECT_WAIT_S * 1000;
    sh_err  err;
    db     *d;

    while ((d = db_open(url, &err)) == NULL) {
        if (now_ms() > deadline) {
            log_error("%s", err.msg);
            return NULL;
        }
        usleep(500 * 1000);
    }
    return d;
}

int
main(int argc, char **argv)
{
    config      cfg;
    sh_err      err;
    const char *role = "all";
    char        exe[PATH_MAX];
    db         *d = NULL;
    db_pool    *pool = NULL;
    api        *a = NULL;
    supervisor *sup = NULL;
    sweeper    *sw = NULL;
    node       *self = NULL;
    sigset_t    sigs;
    int         rc = 1, worker_process = 0, listen_fd = -1;

    json_set_alloc_funcs(xmalloc, free);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker-process") == 0) {
            worker_process = 1;
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0
                   || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(role, "all") != 0 && strcmp(role, "worker") != 0
        && strcmp(role, "api") != 0) {
        fprintf(stderr, "sheafd: --role must be 'all', 'api' or 'worker'\n");
        return 2;
    }
    if (config_load(&cfg, &err) < 0) {
        fprintf(stderr, "sheafd: %s\n", err.msg);
        return 2;
    }
    /* The input limits hold in this process and in the workers alike (the
     * API samples inputs at submit). */
    csv_set_limits((size_t)cfg.max_record_bytes, (size_t)cfg.max_columns);
    input_set_limits((unsigned)cfg.max_gzip_ratio);
    if (worker_process) {
        /* The supervisor gave up root before it spawned us. */
        if (sandbox_wants_drop(&cfg)) {
            fprintf(stderr, "sheafd: a worker does not run as root when "
                            "SHEAF_USER is set\n");
            config_free(&cfg);
            return 2;
        }
        rc = cfg.database_url ? worker_main(&cfg) : 2;
        config_free(&cfg);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg.database_url == NULL && start_private_pg(&cfg) < 0)
        goto done;
    db_session_defaults(&cfg);

    /* Signals are taken by sigtimedwait in the main thread only: block
     * them before any thread starts, so every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGCHLD);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);

    if ((d = connect_retry(cfg.database_url)) == NULL)
        goto done;
    if (db_migrate(d, cfg.migrations_dir, &err) < 0) {
        log_error("%s", err.msg);
        goto done;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        log_error("readlink /proc/self/exe: %s", strerror(errno));
        goto done;
    }
    exe[n] = '\0';
    if (strcmp(role, "api") == 0)
        cfg.workers = 0; /* the supervisor then starts none */
    /* Started as root with SHEAF_USER: bind while root (a port below
     * 1024), then become the user for good, before any worker or thread
     * exists. */
    if (sandbox_wants_drop(&cfg)) {
        if (strcmp(role, "worker") != 0
            && (listen_fd = api_listen(&cfg, &err)) < 0) {
            log_error("%s", err.msg);
            goto done;
        }
        if (sandbox_drop(&cfg, &err) != 0) {
            log_error("%s", err.msg);
            goto done;
        }
        log_info("running as %s (uid %lu, gid %lu)", cfg.user,
                 (unsigned long)getuid(), (unsigned long)getgid());
    } else if (cfg.user != NULL && geteuid() != 0) {
        log_info("SHEAF_USER=%s: not started as root, running as uid %lu",
                 cfg.user, (unsigned long)geteuid());
    }
    /* This node's row (GET /v1/nodes), renewed by the sweeper's heartbeat;
     * a failure here is not fatal: the next heartbeat writes it. */
    self = node_new(&cfg, role, cfg.workers);
    if (node_heartbeat(self, d, &err) < 0)
        log_warn("%s", err.msg);
    sup = supervisor_new(&cfg, exe);
    supervisor_fill(sup);

    if (strcmp(role, "worker") != 0) {
        pool = db_pool_new(cfg.database_url, cfg.db_pool);
        a = api_start_on(&cfg, pool, listen_fd, &err);
        listen_fd = -1; /* the server's now, or closed */
        if (a == NULL) {
            log_error("%s", err.msg);
            supervisor_stop(sup, 0, d);
            goto done;
        }
        log_info("listening on http://%s:%d/ (data root %s, %d workers, "
                 "node %s)",
                 cfg.listen_host, cfg.listen_port, cfg.data_root, cfg.workers,
                 node_id(self));
    } else {
        log_info("worker node: %d workers (node %s)", cfg.workers,
                 node_id(self));
    }

    sw = sweeper_new(&cfg, sup);
    sweeper_set_node(sw, self);
    for (;;) {
        struct timespec tick = {0, 250 * 1000 * 1000};
        int             sig = sigtimedwait(&sigs, NULL, &tick);

        if (sig == SIGTERM || sig == SIGINT) {
            log_info("signal %d: shutting down (grace %d s)", sig, cfg.grace_s);
            break;
        }
        if (sig == SIGCHLD)
            supervisor_reap(sup, d);
        sweeper_run(sw, d);
        if (a != NULL)
            api_set_workers_alive(a, supervisor_alive(sup));
    }
    /* Stop taking requests first, then let the workers finish. A second
     * SIGTERM meanwhile stays blocked and changes nothing. */
    api_stop(a);
    a = NULL;
    supervisor_stop(sup, cfg.grace_s, d);
    rc = 0;
done:
    if (listen_fd >= 0)
        close(listen_fd);
    api_stop(a);
    /* Gone, not lost: the row goes with the node. */
    if (self != NULL && node_leave(self, d, &err) < 0)
        log_warn("%s", err.msg);
    db_pool_free(pool);
    sweeper_free(sw);
    node_free(self);
    supervisor_free(sup);
    db_close(d);
    config_free(&cfg);
    return rc;
}
