/*
 * health.c - GET /healthz (the process lives) and GET /readyz (the database
 * answers and the service is not shutting down), for load balancers and
 * orchestrators. Neither needs a token. /healthz never touches the
 * database: an outage makes the service unready, not dead.
 */
#include "api_int.h"

#define HEALTH_POOL_WAIT_MS 1000

int
api_healthz(api_req *r)
{
    return api_reply(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

int
api_readyz(api_req *r)
{
    db    *d;
    sh_err err;
    int    rc;

    /* Shutting down: send new work elsewhere. */
    if (atomic_load(&r->a->stopping))
        return api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                         "the service is shutting down");
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, HEALTH_POOL_WAIT_MS, &err)) == NULL)
        return api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                         "no database connection: %s", err.msg);
    rc = api_db_put(r->a, d, db_ping(d, &err));
    if (rc != 0)
        return api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                         "the database does not answer: %s", err.msg);
    return api_reply(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ready"));
}
