/*
 * routes.c - the route table of the HTTP API (SPEC section 3) and the
 * matcher that picks a line of it for a method and path.
 *
 * Adding an endpoint is one line here and its handler in the file of its
 * resource. Routes whose feature comes in a later issue have no handler:
 * http.c answers them 501. This file only matches: the replies, errors
 * included, are made by http.c and the handlers.
 */
#include "api_int.h"

#include <ctype.h>
#include <string.h>

/* The handler, flags and feature of a route that comes in a later issue. */
#define LATER(feature) NULL, 0, (feature)

static const api_route api_routes[] = {
    /* method   pattern                   handler           flags  feature */
    {"GET", "/healthz", api_healthz, API_HEALTH, NULL},
    {"GET", "/readyz", api_readyz, API_HEALTH, NULL},
    {"GET", "/", api_ui_index, 0, NULL},
    {"GET", "/ui/{name}", api_ui_asset, 0, NULL},
    {"POST", "/v1/jobs", api_job_submit, API_BODY, NULL},
    {"GET", "/v1/jobs", api_job_list, 0, NULL},
    {"POST", "/v1/jobs/validate", api_job_validate, API_BODY, NULL},
    {"GET", "/v1/jobs/{id}", api_job_get, 0, NULL},
    {"GET", "/v1/jobs/{id}/tasks", api_job_tasks, 0, NULL},
    {"GET", "/v1/jobs/{id}/result", api_job_result, 0, NULL},
    {"GET", "/v1/jobs/{id}/artifacts", api_job_artifacts, 0, NULL},
    {"GET", "/v1/jobs/{id}/artifacts/{name}", api_job_artifact, 0, NULL},

    {"DELETE", "/v1/jobs/{id}", api_job_delete, 0, NULL},
    {"POST", "/v1/jobs/{id}/cancel", api_job_cancel, 0, NULL},
    {"GET", "/v1/jobs/{id}/events", api_job_events, 0, NULL},
    {"GET", "/v1/jobs/{id}/manifest", api_job_manifest, 0, NULL},
    {"POST", "/v1/datasets", api_dataset_upload, API_STREAM, NULL},
    {"GET", "/v1/datasets", api_dataset_list, 0, NULL},
    {"GET", "/v1/datasets/{id}", api_dataset_get, 0, NULL},
    {"DELETE", "/v1/datasets/{id}", api_dataset_delete, 0, NULL},
    {"GET", "/v1/nodes", api_node_list, 0, NULL},
    {"GET", "/metrics", api_metrics_get, API_HEALTH, NULL},
    {"GET", "/openapi.yaml", api_openapi, 0, NULL},
};

#define N_ROUTES (sizeof api_routes / sizeof api_routes[0])

size_t
api_route_count(void)
{
    return N_ROUTES;
}

const api_route *
api_route_at(size_t i)
{
    return i < N_ROUTES ? &api_routes[i] : NULL;
}

size_t
api_route_index(const api_route *rt)
{
    return (size_t)(rt - api_routes);
}

/*
 * Match the 'path_len' bytes of 'path' against 'pattern'. On a match,
 * returns 1 with the {id} (lower case) and {name} segments copied out.
 */
static int
route_match(const char *pattern, const char *path, size_t path_len, char id[37],
            char name[API_NAME_MAX])
{
    const char *p = pattern, *s = path, *s_end = path + path_len;
    const char *pe, *se;
    size_t      p_len, s_len, i;

    while (*p != '\0') {
        if (*p != '/' || s >= s_end || *s != '/')
            return 0;
        p++;
        s++;
        pe = strchr(p, '/');
        if (pe == NULL)
            pe = p + strlen(p);
        se = memchr(s, '/', (size_t)(s_end - s));
        if (se == NULL)
            se = s_end;
        p_len = (size_t)(pe - p);
        s_len = (size_t)(se - s);
        if (p_len == 4 && memcmp(p, "{id}", 4) == 0) {
            if (!util_is_uuid(s, s_len))
                return 0;
            for (i = 0; i < s_len; i++)
                id[i] = (char)tolower((unsigned char)s[i]);
            id[s_len] = '\0';
        } else if (p_len == 6 && memcmp(p, "{name}", 6) == 0) {
            if (s_len == 0 || s_len >= API_NAME_MAX)
                return 0;
            memcpy(name, s, s_len);
            name[s_len] = '\0';
        } else if (p_len != s_len || memcmp(p, s, p_len) != 0) {
            return 0;
        }
        p = pe;
        s = se;
    }
    return s == s_end;
}

/* Append 'method' to the comma-separated list 'allow' unless it is there. */
static void
route_allow_add(char allow[80], const char *method)
{
    size_t      len = strlen(allow), m_len = strlen(method);
    const char *hit = strstr(allow, method);

    /* Methods are whole words of the list: "GET" never hides in "GETX". */
    while (hit != NULL) {
        if ((hit == allow || hit[-1] == ' ')
            && (hit[m_len] == ',' || hit[m_len] == '\0'))
            return;
        hit = strstr(hit + 1, method);
    }
    if (len + m_len + 3 > 80)
        return;
    if (len > 0) {
        memcpy(allow + len, ", ", 2);
        len += 2;
    }
    memcpy(allow + len, method, m_len + 1);
}

/* The 'begin' of each API_STREAM route, by its handler. */
static const struct {
    api_handler handler;
    api_handler begin;
} api_stream_begins[] = {
    {api_dataset_upload, api_dataset_begin},
};

api_handler
api_route_begin(const api_route *route)
{
    size_t i;

    for (i = 0; i < sizeof api_stream_begins / sizeof api_stream_begins[0]; i++)
        if (route->handler == api_stream_begins[i].handler)
            return api_stream_begins[i].begin;
    return NULL;
}

const api_route *
api_route_find(api_req *r, const char *method, const char *path, char allow[80])
{
    char   id[37], name[API_NAME_MAX];
    size_t path_len = strlen(path), i;
    int    is_head = strcmp(method, "HEAD") == 0;

    allow[0] = '\0';
    if (path_len > 1 && path[path_len - 1] == '/')
        path_len--;
    for (i = 0; i < N_ROUTES; i++) {
        const api_route *rt = &api_routes[i];

        id[0] = '\0';
        name[0] = '\0';
        if (!route_match(rt->pattern, path, path_len, id, name))
            continue;
        if (strcmp(rt->method, method) == 0
            || (is_head && strcmp(rt->method, "GET") == 0)) {
            memcpy(r->id, id, strlen(id) + 1);
            memcpy(r->name, name, strlen(name) + 1);
            return rt;
        }
        route_allow_add(allow, rt->method);
        if (strcmp(rt->method, "GET") == 0)
            route_allow_add(allow, "HEAD");
    }
    return NULL;
}
