/*
 * db_nodes.c - the nodes table (migrations/0006_nodes.sql): every sheafd's
 * heartbeat, its removal when it stops, the retirement of nodes lost long
 * ago, and the listing for GET /v1/nodes (see db.h).
 *
 * Each statement stands alone (no session state, no advisory lock), so
 * all of this works through a transaction-pooling pgbouncer.
 */
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

void
db_node_clear(db_node *n)
{
    free(n->hostname);
    free(n->address);
    free(n->role);
    free(n->build);
    n->hostname = n->address = n->role = n->build = NULL;
}

void
db_nodes_free(db_node *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        db_node_clear(&v[i]);
    free(v);
}

int
db_node_heartbeat(db *d, const db_node *n, sh_err *err)
{
    char        workers[16], pid[16], lease[16];
    const char *p[8] = {n->id,   n->hostname, n->address, n->role,
                        workers, pid,         n->build,   lease};

    snprintf(workers, sizeof workers, "%d", n->workers);
    snprintf(pid, sizeof pid, "%d", n->pid);
    snprintf(lease, sizeof lease, "%d", n->lease_s);
    return db_run(d, "node heartbeat",
                  "INSERT INTO nodes (id, hostname, address, role, workers,"
                  " pid, build, lease_s, lease_until)"
                  " VALUES ($1, $2, $3, $4, $5::int, $6::int, $7, $8::int,"
                  " now() + make_interval(secs => $8::int))"
                  " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(),"
                  " lease_until = EXCLUDED.lease_until,"
                  " workers = EXCLUDED.workers",
                  8, p, err);
}

int
db_node_remove(db *d, const char *id, sh_err *err)
{
    const char *p[1] = {id};

    return db_run(d, "remove node", "DELETE FROM nodes WHERE id = $1", 1, p,
                  err);
}

int
db_nodes_retire(db *d, int retention_s, int max, sh_err *err)
{
    char        secs[16], lim[16];
    const char *p[2] = {secs, lim};

    snprintf(secs, sizeof secs, "%d", retention_s);
    snprintf(lim, sizeof lim, "%d", max);
    return db_exec_rows(d, "retire lost nodes",
                        "DELETE FROM nodes WHERE id IN (SELECT id FROM nodes"
                        " WHERE lease_until < now() - make_interval(secs =>"
                        " $1::int) ORDER BY lease_until LIMIT $2::int)",
                        2, p, err);
}

/* Fill *n from row 'r' of a NODE_SELECT result. */
static void
node_from_row(PGresult *res, int r, db_node *n)
{
    snprintf(n->id, sizeof n->id, "%s", PQgetvalue(res, r, 0));
    n->hostname = xstrdup(PQgetvalue(res, r, 1));
    n->address = PQgetisnull(res, r, 2) ? NULL : xstrdup(PQgetvalue(res, r, 2));
    n->role = xstrdup(PQgetvalue(res, r, 3));
    n->workers = atoi(PQgetvalue(res, r, 4));
    n->pid = atoi(PQgetvalue(res, r, 5));
    n->build = xstrdup(PQgetvalue(res, r, 6));
    n->lease_s = atoi(PQgetvalue(res, r, 7));
    snprintf(n->started_at, sizeof n->started_at, "%s", PQgetvalue(res, r, 8));
    snprintf(n->heartbeat_at, sizeof n->heartbeat_at, "%s",
             PQgetvalue(res, r, 9));
    n->alive = strcmp(PQgetvalue(res, r, 10), "t") == 0;
    n->seq = strtoll(PQgetvalue(res, r, 11), NULL, 10);
}

int
db_node_list(db *d, int limit, const char *cursor, db_node **out, size_t *n,
             int *more, sh_err *err)
{
    char        lim[16];
    const char *p[2];
    PGresult   *res;
    int         rows;

    *out = NULL;
    *n = 0;
    *more = 0;
    if (cursor && *cursor
        && (strspn(cursor, "0123456789") != strlen(cursor)
            || strlen(cursor) > 18))
        return sh_err_set(err, SH_EINVAL, "cursor",
                          "cursor '%s' is not one "
                          "this service gave out",
                          cursor);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    p[0] = cursor && *cursor ? cursor : NULL;
    p[1] = lim;
    res = db_exec(d, "list nodes",
                  "SELECT id, hostname, address, role, workers, pid, build,"
                  " lease_s, " DB_TS("started_at") ", " DB_TS(
                      "heartbeat_at") ", lease_until > now(), seq"
                                      " FROM nodes WHERE ($1::bigint IS NULL "
                                      "OR seq < $1::bigint)"
                                      " ORDER BY seq DESC LIMIT $2::int",
                  2, p, err);
    if (res == NULL)
        return SH_EDB;
    rows = PQntuples(res);
    *more = rows > limit;
    *n = (size_t)(rows < limit ? rows : limit);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t r = 0; r < *n; r++)
        node_from_row(res, (int)r, &(*out)[r]);
    PQclear(res);
    return 0;
}
