/*
 * db_int.h - what the files of the database layer (db.c, db_migrate.c,
 * db_jobs.c, db_tasks.c, db_sweep.c) share and nothing outside them may
 * use: the connection and the checked ways of running a statement.
 *
 * Every statement goes through db_exec, which reconnects a broken
 * connection first and turns any status but PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK into SH_EDB with the server's message; db_exec_rows and
 * db_exec_count are the two shapes most callers want, so that no caller
 * checks a PGresult by hand.
 */
#ifndef SHEAF_DB_INT_H
#define SHEAF_DB_INT_H

#include <libpq-fe.h>

#include "db.h"

struct db {
    PGconn *conn; /* the connection; reset when it breaks */
};

/* A timestamp column as RFC 3339 UTC text with milliseconds. */
#define DB_TS(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*
 * Run 'sql' with 'n' text parameters (NULL elements are SQL NULLs).
 * Returns the result when its status is PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK (the caller PQclears it), else NULL with SH_EDB in 'err'
 * naming 'what'.
 */
PGresult *db_exec(db *d, const char *what, const char *sql, int n,
                  const char *const *params, sh_err *err);

/*
 * Run 'sql' like db_exec when only how many rows it touched matters.
 * Returns the rows it returned (a SELECT or a RETURNING clause) or else
 * affected (an UPDATE, DELETE or INSERT without RETURNING), or SH_EDB.
 */
int db_exec_rows(db *d, const char *what, const char *sql, int n,
                 const char *const *params, sh_err *err);

/*
 * Run 'sql', a statement that returns one row whose first column is a
 * count. Returns that count, or SH_EDB (also when there is no row).
 */
int db_exec_count(db *d, const char *what, const char *sql, int n,
                  const char *const *params, sh_err *err);

/* Run a statement whose result is not needed. Returns 0 or SH_EDB. */
int db_run(db *d, const char *what, const char *sql, int n,
           const char *const *params, sh_err *err);

/*
 * db_run in a transaction of its own whose commit does not wait for the
 * WAL to reach the disk (synchronous_commit off): only for a write that a
 * crash of the database may lose without harm, because it is redone (a
 * job's cleaning stamp, say). Not inside a transaction. Returns 0 or
 * SH_EDB.
 */
int db_run_lazy(db *d, const char *what, const char *sql, int n,
                const char *const *params, sh_err *err);

/* BEGIN a transaction. Returns 0 or SH_EDB. */
int db_begin(db *d, sh_err *err);

/* COMMIT the transaction. Returns 0 or SH_EDB. */
int db_commit(db *d, sh_err *err);

/* Roll back after a failure inside a transaction (errors ignored). */
void db_rollback(db *d);

/* NOTIFY the workers that tasks were queued. Returns 0 or SH_EDB. */
int db_notify_tasks(db *d, sh_err *err);

/* Column 0 of every row of 'res' as a new array of new strings (free with
 * db_strings_free; never NULL). Returns the count. */
int db_strings_of(PGresult *res, char ***out);

#endif
