/*
 * config.h - sheafd's configuration, read from the environment (SPEC 1).
 */
#ifndef SHEAF_CONFIG_H
#define SHEAF_CONFIG_H

#include <stdint.h>
#include "../lib/err.h"

typedef struct config {
    char *listen_host;          /* SHEAF_LISTEN host part, default 127.0.0.1 */
    int   listen_port;          /* SHEAF_LISTEN port part, default 8080 */
    char *database_url;         /* DATABASE_URL; unset: the private cluster */
    char *data_root;            /* SHEAF_DATA_ROOT, absolute, default ./data */
    char *spool;                /* SHEAF_SPOOL, absolute, default ./var/spool */
    int   workers;              /* SHEAF_WORKERS, default: number of cores */
    int   memory_mb;            /* SHEAF_MEMORY_MB, default 256 */
    char *tokens_file;          /* SHEAF_TOKENS_FILE or NULL */
    int   grace_s;              /* SHEAF_GRACE_S, default 30 */
    int   lease_s;              /* SHEAF_LEASE_S, task lease, default 30 */
    int   sweep_s;              /* SHEAF_SWEEP_S, how often jobs past their
                                   retention_s are removed, default 60 */
    int max_connections;        /* SHEAF_MAX_CONNECTIONS, default 512: past it
                                   only /healthz and /readyz are served */
    int max_connections_per_ip; /* SHEAF_MAX_CONNECTIONS_PER_IP, default
                                   64 */
    int request_timeout_s;      /* SHEAF_REQUEST_TIMEOUT_S, default 10: a
                                   request's head and body must arrive in it */
    int keepalive_s;            /* SHEAF_KEEPALIVE_S, default 30: an idle kept-
                                   alive connection is closed after it */
    long    max_record_bytes;   /* SHEAF_MAX_RECORD_BYTES, default 16 MiB */
    int     max_columns;        /* SHEAF_MAX_COLUMNS, default 10,000 */
    int     max_gzip_ratio;     /* SHEAF_MAX_GZIP_RATIO, default 1000 */
    int     max_partitions;     /* SHEAF_MAX_PARTITIONS, default 100,000 */
    int64_t max_upload_bytes;   /* SHEAF_MAX_UPLOAD_BYTES, default 10 GiB:
                                   a larger dataset upload is a 413 */
    int db_pool;                /* SHEAF_DB_POOL, default 16: the API's database
                                   connections (request threads) */
    char *db_listen_url;        /* SHEAF_DB_LISTEN_URL: a direct (session)
                                   connection for LISTEN when DATABASE_URL goes
                                   through a transaction pooler; NULL: unset */
    int db_listen_off;          /* SHEAF_DB_LISTEN_URL=off: no LISTEN at all,
                                   every waiter polls */
    char *advertise;            /* SHEAF_ADVERTISE: the address other nodes and
                                   operators reach this node at, or NULL */
    int node_retention_s;       /* SHEAF_NODE_RETENTION_S, default 86400: a
                                   lost node's row is removed after it */
    char *migrations_dir; /* SHEAF_MIGRATIONS, default <exe>/../migrations */
    char *pg_script;      /* scripts/pg.sh beside the binary's tree */
    char *user;           /* SHEAF_USER: started as root, become this user
                             (sandbox_drop). Unset: "sheaf" if that user
                             exists, else NULL; empty or "root": NULL,
                             stay as started */
} config;

/*
 * Read the configuration from the environment into 'c'. Directories are
 * made absolute (data_root and spool are created when missing). Returns 0,
 * or SH_EINVAL with a message naming the variable at fault.
 */
int  config_load(config *c, sh_err *err);
void config_free(config *c);

/*
 * The URL of the session connection a LISTEN opens: SHEAF_DB_LISTEN_URL,
 * else DATABASE_URL; NULL with SHEAF_DB_LISTEN_URL=off (then nothing
 * listens and waiters poll). Borrowed from 'c'.
 */
const char *config_listen_url(const config *c);

/*
 * Non-zero when workers LISTEN for new tasks on their own connection:
 * only when SHEAF_DB_LISTEN_URL is unset (DATABASE_URL is then taken to
 * be a direct session, not a transaction pooler); otherwise an idle
 * worker polls the queue every half second.
 */
int config_workers_listen(const config *c);

#endif
