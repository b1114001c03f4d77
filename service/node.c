/*
 * node.c - this sheafd process as a node of the deployment (see node.h).
 */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../lib/util.h"

#ifndef SHEAF_VERSION
#define SHEAF_VERSION "0.1.0"
#endif
#ifndef SHEAF_COMMIT
#define SHEAF_COMMIT "unknown"
#endif

#define NODE_HEARTBEAT_MAX_MS 5000

struct node {
    const config *cfg;
    db_node       row; /* what its row holds (owns its strings) */
};

/* Non-zero when 'host' is a wildcard address: no one can reach it. */
static int
node_wildcard(const char *host)
{
    return host[0] == '\0' || strcmp(host, "*") == 0
           || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

node *
node_new(const config *cfg, const char *role, int workers)
{
    node  *n = xcalloc(1, sizeof *n);
    char   host[256];
    uuid_t uu;

    n->cfg = cfg;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, n->row.id);
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    n->row.hostname = xstrdup(host);
    if (cfg->advertise != NULL)
        n->row.address = xstrdup(cfg->advertise);
    else if (strcmp(role, "worker") != 0)
        n->row.address = xasprintf(
            strchr(cfg->listen_host, ':') != NULL ? "[%s]:%d" : "%s:%d",
            node_wildcard(cfg->listen_host) ? host : cfg->listen_host,
            cfg->listen_port);
    n->row.role = xstrdup(role);
    n->row.build = xstrdup(SHEAF_VERSION " (" SHEAF_COMMIT ")");
    n->row.workers = workers;
    n->row.pid = (int)getpid();
    n->row.lease_s = cfg->lease_s;
    return n;
}

void
node_free(node *n)
{
    if (n == NULL)
        return;
    db_node_clear(&n->row);
    free(n);
}

const char *
node_id(const node *n)
{
    return n->row.id;
}

int
node_heartbeat_ms(const node *n)
{
    int ms = n->row.lease_s * 1000 / 3;

    return ms < NODE_HEARTBEAT_MAX_MS ? ms : NODE_HEARTBEAT_MAX_MS;
}

int
node_heartbeat(node *n, db *d, sh_err *err)
{
    return db_node_heartbeat(d, &n->row, err);
}

int
node_leave(node *n, db *d, sh_err *err)
{
    return db_node_remove(d, n->row.id, err);
}
