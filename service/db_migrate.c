/*
 * db_migrate.c - the schema: applying the files of migrations/ that the
 * database has not recorded yet (see db_migrate in db.h).
 *
 * Each step is one transaction that first takes a transaction-level
 * advisory lock (released by its COMMIT or ROLLBACK), then looks and
 * acts: two instances starting together apply each migration once. Not a
 * session-level lock: through a transaction-pooling pgbouncer the unlock
 * may reach another server session than the lock, which would then hold
 * it for ever.
 */
#include "db_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

/* The advisory lock that serialises migrations: 0x73686561, "shea". */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(1936221281)"

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Apply one migration file in a transaction under the lock, recording
 * 'version', unless it is recorded already. */
static int
migrate_apply(db *d, const char *dir, const char *version, sh_err *err)
{
    char       *path = xasprintf("%s/%s", dir, version);
    char       *sql = fsys_read_file(path, NULL);
    const char *p[1] = {version};
    PGresult   *res;
    int         rc = 0, applied;

    if (sql == NULL) {
        rc = sh_err_set(err, SH_EIO, NULL, "read %s: %s", path,
                        strerror(errno));
        goto done;
    }
    if ((rc = db_begin(d, err)) < 0)
        goto done;
    if ((rc = db_run(d, "lock migrations", MIGRATE_LOCK_SQL, 0, NULL, err))
        < 0) {
        db_rollback(d);
        goto done;
    }
    applied = db_exec_rows(d, "read migrations",
                           "SELECT 1 FROM "
                           "schema_migrations WHERE version = $1",
                           1, p, err);
    if (applied != 0) {
        /* Recorded (by another instance, maybe), or SH_EDB. */
        db_rollback(d);
        rc = applied < 0 ? SH_EDB : 0;
        goto done;
    }
    /* A file holds several statements: PQexec, not db_exec (which sends
     * one statement with parameters). */
    res = PQexec(d->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = sh_err_set(err, SH_EDB, NULL, "migration %s: %s", version,
                        PQresultErrorMessage(res));
        PQclear(res);
        db_rollback(d);
        goto done;
    }
    PQclear(res);
    if ((rc = db_run(d, "record migration",
                     "INSERT INTO schema_migrations (version) VALUES ($1)", 1,
                     p, err))
        < 0) {
        db_rollback(d);
        goto done;
    }
    rc = db_commit(d, err);
done:
    free(sql);
    free(path);
    return rc;
}

/* The names of the *.sql files of 'dir', sorted, into *names (free with
 * db_strings_free). Returns the count, or SH_EIO. */
static int
migrate_list(const char *dir, char ***names, sh_err *err)
{
    DIR           *dh = opendir(dir);
    struct dirent *de;
    int            n = 0;

    *names = NULL;
    if (dh == NULL)
        return sh_err_set(err, SH_EIO, NULL, "migrations directory %s: %s", dir,
                          strerror(errno));
    while ((de = readdir(dh)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0) {
            *names = xrealloc(*names, (size_t)(n + 1) * sizeof **names);
            (*names)[n++] = xstrdup(de->d_name);
        }
    }
    closedir(dh);
    if (n > 0)
        qsort(*names, (size_t)n, sizeof **names, cmp_names);
    return n;
}

int
db_migrate(db *d, const char *dir, sh_err *err)
{
    char **names = NULL;
    int    n, rc = 0;

    if ((n = migrate_list(dir, &names, err)) < 0)
        return n;
    /* Two instances starting together: the second waits on the lock, then
     * finds the table, and each migration, there. */
    if ((rc = db_begin(d, err)) < 0)
        goto done;
    if ((rc = db_run(d, "lock migrations", MIGRATE_LOCK_SQL, 0, NULL, err)) < 0
        || (rc = db_run(d, "create schema_migrations",
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version text PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())",
                        0, NULL, err))
               < 0) {
        db_rollback(d);
        goto done;
    }
    if ((rc = db_commit(d, err)) < 0)
        goto done;
    for (int i = 0; i < n; i++)
        if ((rc = migrate_apply(d, dir, names[i], err)) < 0)
            goto done;
done:
    db_strings_free(names, n);
    return rc;
}
