/*
 * nodes.c - GET /v1/nodes: the sheafd processes sharing this database
 * (migrations/0006_nodes.sql, service/node.h), newest start first, paged
 * like GET /v1/jobs.
 *
 * Nodes belong to the deployment, not to a tenant: with SHEAF_TOKENS_FILE
 * set the route needs a token as every /v1 route does, and any tenant's
 * token sees every node (as /metrics shows every tenant's queue to whoever
 * reaches it).
 */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NODES_LIMIT_DEFAULT 100
#define NODES_LIMIT_MAX     1000

/* A node as clients see it (a new reference). */
static json_t *
node_json(const db_node *n)
{
    return json_pack("{s:s, s:s, s:s?, s:s, s:i, s:i, s:s, s:s, s:s, s:s, "
                     "s:i}",
                     "id", n->id, "hostname", n->hostname, "address",
                     n->address, "role", n->role, "workers", n->workers, "pid",
                     n->pid, "build", n->build, "state",
                     n->alive ? "alive" : "lost", "started_at", n->started_at,
                     "heartbeat_at", n->heartbeat_at, "lease_s", n->lease_s);
}

int
api_node_list(api_req *r)
{
    const char *limit_s = api_query(r, "limit");
    const char *cursor = api_query(r, "cursor");
    db_node    *v = NULL;
    size_t      n = 0;
    json_t     *arr, *out;
    char        next[32];
    db         *d;
    sh_err      err;
    int         limit = NODES_LIMIT_DEFAULT, more = 0, rc;

    if (limit_s != NULL) {
        char *end;
        long  l;

        errno = 0;
        l = strtol(limit_s, &end, 10);
        if (errno != 0 || end == limit_s || *end != '\0' || l < 1
            || l > NODES_LIMIT_MAX)
            return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "limit",
                             "limit must be an integer from 1 to %d",
                             NODES_LIMIT_MAX);
        limit = (int)l;
    }
    if (cursor != NULL && !api_utf8_valid(cursor))
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "cursor",
                         "a bad cursor");
    sh_err_clear(&err);
    d = db_pool_get(r->a->pool, API_POOL_WAIT_MS, &err);
    if (d == NULL)
        return api_error_sh(r, &err, 0);
    rc = db_node_list(d, limit, cursor, &v, &n, &more, &err);
    db_pool_put(r->a->pool, d, rc == SH_EDB);
    if (rc != 0)
        return api_error_sh(r, &err, 0);
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, node_json(&v[i]));
    out = json_pack("{s:o}", "nodes", arr);
    if (more && n > 0) {
        snprintf(next, sizeof next, "%lld", (long long)v[n - 1].seq);
        json_object_set_new(out, "next_cursor", json_string(next));
    } else {
        json_object_set_new(out, "next_cursor", json_null());
    }
    db_nodes_free(v, n);
    return api_reply(r, MHD_HTTP_OK, out);
}
