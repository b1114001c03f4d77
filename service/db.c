/*
 * db.c - the database connection and the checked ways of running a
 * statement that every file of the database layer uses (see db.h and
 * db_int.h), and the LISTEN/NOTIFY channel that announces new tasks.
 *
 * The statements themselves live by concern: db_migrate.c (the schema),
 * db_jobs.c (jobs, for the API), db_tasks.c (claiming and recording tasks
 * under fenced leases, for workers) and db_sweep.c (housekeeping, for
 * every node's sweeper and the workers' cleaning).
 */
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "../lib/util.h"

/* Server notices ("relation ... already exists, skipping" from the
 * migrations) are not errors; libpq would print them to stderr. A NULL
 * processor does not silence them: libpq keeps its default then. */
static void
quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

db *
db_open(const char *url, sh_err *err)
{
    PGconn *conn = PQconnectdb(url);

    if (PQstatus(conn) != CONNECTION_OK) {
        sh_err_set(err, SH_EDB, NULL, "cannot connect to the database: %s",
                   PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    db *d = xcalloc(1, sizeof *d);
    d->conn = conn;
    return d;
}

void
db_close(db *d)
{
    if (d == NULL)
        return;
    PQfinish(d->conn);
    free(d);
}

/* Reconnect when the connection broke. Returns 0 or SH_EDB. */
static int
db_ensure(db *d, sh_err *err)
{
    if (PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    PQreset(d->conn);
    if (PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    return sh_err_set(err, SH_EDB, NULL, "the database is unreachable: %s",
                      PQerrorMessage(d->conn));
}

PGresult *
db_exec(db *d, const char *what, const char *sql, int n,
        const char *const *params, sh_err *err)
{
    PGresult *res;

    if (db_ensure(d, err) < 0)
        return NULL;
    res = PQexecParams(d->conn, sql, n, NULL, params, NULL, NULL, 0);
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return res;
    default:
        sh_err_set(err, SH_EDB, NULL, "%s: %s", what,
                   PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
}

int
db_exec_rows(db *d, const char *what, const char *sql, int n,
             const char *const *params, sh_err *err)
{
    PGresult *res = db_exec(d, what, sql, n, params, err);
    int       rows;

    if (res == NULL)
        return SH_EDB;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        rows = PQntuples(res);
    else
        rows = atoi(PQcmdTuples(res)); /* "" for a statement without rows */
    PQclear(res);
    return rows;
}

int
db_exec_count(db *d, const char *what, const char *sql, int n,
              const char *const *params, sh_err *err)
{
    PGresult *res = db_exec(d, what, sql, n, params, err);
    int       count;

    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) < 1 || PQnfields(res) < 1) {
        PQclear(res);
        return sh_err_set(err, SH_EDB, NULL, "%s: no count returned", what);
    }
    count = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return count;
}

int
db_run(db *d, const char *what, const char *sql, int n,
       const char *const *params, sh_err *err)
{
    return db_exec_rows(d, what, sql, n, params, err) < 0 ? SH_EDB : 0;
}

int
db_run_lazy(db *d, const char *what, const char *sql, int n,
            const char *const *params, sh_err *err)
{
    if (db_begin(d, err) < 0)
        return SH_EDB;
    if (db_run(d, "lazy commit", "SET LOCAL synchronous_commit TO off", 0, NULL,
               err)
            < 0
        || db_run(d, what, sql, n, params, err) < 0) {
        db_rollback(d);
        return SH_EDB;
    }
    return db_commit(d, err);
}

int
db_begin(db *d, sh_err *err)
{
    return db_run(d, "begin", "BEGIN", 0, NULL, err);
}

int
db_commit(db *d, sh_err *err)
{
    return db_run(d, "commit", "COMMIT", 0, NULL, err);
}

void
db_rollback(db *d)
{
    PQclear(PQexec(d->conn, "ROLLBACK"));
}

int
db_notify_tasks(db *d, sh_err *err)
{
    return db_run(d, "notify", "NOTIFY sheaf_tasks", 0, NULL, err);
}

int
db_ping(db *d, sh_err *err)
{
    return db_run(d, "ping", "SELECT 1", 0, NULL, err);
}

int
db_strings_of(PGresult *res, char ***out)
{
    int n = PQntuples(res);

    *out = xcalloc((size_t)(n ? n : 1), sizeof **out);
    for (int r = 0; r < n; r++)
        (*out)[r] = xstrdup(PQgetvalue(res, r, 0));
    return n;
}

void
db_strings_free(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int
db_listen_tasks(db *d, sh_err *err)
{
    return db_run(d, "listen", "LISTEN sheaf_tasks", 0, NULL, err);
}

/* Consume the notifications that have arrived. Returns 1 if any had. */
static int
db_drain_notify(db *d)
{
    PGnotify *note;
    int       got = 0;

    PQconsumeInput(d->conn);
    while ((note = PQnotifies(d->conn)) != NULL) {
        got = 1;
        PQfreemem(note);
    }
    return got;
}

int
db_wait_notify(db *d, int timeout_ms)
{
    int            fd;
    fd_set         rfds;
    struct timeval tv;

    if (PQstatus(d->conn) != CONNECTION_OK)
        return 0;
    if (db_drain_notify(d))
        return 1;
    fd = PQsocket(d->conn);
    if (fd < 0)
        return 0;
    FD_ZERO(&rfds);
    FD_SET(fd, &rfds);
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (select(fd + 1, &rfds, NULL, NULL, &tv) <= 0)
        return 0;
    return db_drain_notify(d);
}

int
db_listen(db *d, const char *channel, sh_err *err)
{
    char sql[80];

    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    return db_run(d, "listen", sql, 0, NULL, err);
}

int
db_notify_next(db *d, int timeout_ms, char *payload, size_t size)
{
    PGnotify      *note;
    int            fd;
    fd_set         rfds;
    struct timeval tv;

    if (PQstatus(d->conn) != CONNECTION_OK)
        return SH_EDB;
    for (int round = 0; round < 2; round++) {
        if (PQconsumeInput(d->conn) == 0)
            return SH_EDB;
        if ((note = PQnotifies(d->conn)) != NULL) {
            snprintf(payload, size, "%s", note->extra);
            PQfreemem(note);
            return 1;
        }
        if (round == 1)
            break;
        fd = PQsocket(d->conn);
        if (fd < 0)
            return SH_EDB;
        FD_ZERO(&rfds);
        FD_SET(fd, &rfds);
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        if (select(fd + 1, &rfds, NULL, NULL, &tv) <= 0)
            return 0;
    }
    return 0;
}
