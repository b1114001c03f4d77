/*
 * fuzz_api.c - libFuzzer harness of what the HTTP API parses from a
 * request line and headers: URL routing (api_route_find, routes.c) and the
 * Range and If-None-Match headers of GET /v1/jobs/{id}/result.
 *
 * Input: byte 0 chooses routing (even) or the headers (odd).
 * - Routing: byte 1 the method (GET, HEAD, POST, DELETE, PUT, or the next
 *   bytes up to a NUL); the rest, up to a NUL, the path. Properties: a
 *   route found has the method asked (GET for HEAD) and the {id} it
 *   captured is a lower-case UUID of the path, its {name} a non-empty
 *   segment; a path with a trailing slash routes as the path without it;
 *   when no route is found 'allow' is a short list of known methods.
 * - Headers: byte 1 chooses the result's size (0, 1, small, huge, or
 *   eight bytes of the input); the rest, up to a NUL, the header value.
 *   Properties: a satisfiable range lies inside the result; a range
 *   parsed for a size is satisfiable for every larger size. The same text
 *   as If-None-Match: no crash, and "*" or the ETag itself always match.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/api_int.h"
#include "fuzz_common.h"

static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PUT"};

/* Check the route found for 'method' and 'path' into 'r'. */
static const api_route *
route(api_req *r, const char *method, const char *path, char allow[80])
{
    const api_route *rt;
    size_t           len;

    memset(r->id, 'X', sizeof r->id);
    memset(r->name, 'X', sizeof r->name);
    r->id[0] = r->name[0] = '\0';
    memset(allow, 'X', 80);
    rt = api_route_find(r, method, path, allow);
    if (memchr(allow, '\0', 80) == NULL)
        fz_fail("allow is not terminated for %s %s", method, path);
    if (rt == NULL) {
        for (const char *a = allow; *a != '\0'; a++)
            if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ, ", *a) == NULL)
                fz_fail("allow '%s' for %s %s", allow, method, path);
        return NULL;
    }
    if (strcmp(rt->method, method) != 0
        && !(strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))
        fz_fail("%s %s routed to %s %s", method, path, rt->method, rt->pattern);
    len = strnlen(r->id, sizeof r->id);
    if (len == sizeof r->id)
        fz_fail("the id of %s is not terminated", path);
    if (len != 0 && len != 36)
        fz_fail("an id of %zu characters from %s", len, path);
    for (size_t i = 0; i < len; i++)
        if (strchr("0123456789abcdef-", r->id[i]) == NULL)
            fz_fail("id '%s' from %s", r->id, path);
    if (len != 0 && strstr(rt->pattern, "{id}") == NULL)
        fz_fail("an id from %s for %s", path, rt->pattern);
    if (len == 0 && strstr(rt->pattern, "{id}") != NULL)
        fz_fail("no id from %s for %s", path, rt->pattern);
    len = strnlen(r->name, sizeof r->name);
    if (len == sizeof r->name)
        fz_fail("the name of %s is not terminated", path);
    if ((len != 0) != (strstr(rt->pattern, "{name}") != NULL))
        fz_fail("name '%s' from %s for %s", r->name, path, rt->pattern);
    if (len != 0 && (strchr(r->name, '/') || strstr(path, r->name) == NULL))
        fz_fail("name '%s' is not a segment of %s", r->name, path);
    return rt;
}

/* Routing: the method and the path. */
static void
fuzz_route(fz_src *s)
{
    uint8_t          m = fz_byte(s);
    char            *method, *path, *slashed;
    const char      *nul;
    const api_route *a, *b;
    api_req          r1, r2;
    char             allow1[80], allow2[80];
    size_t           len;

    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    if (m < 5 * 40) {
        method = xstrdup(methods[m % 5]);
    } else {
        nul = memchr(s->p, 0, s->n);
        len = nul ? (size_t)(nul - (const char *)s->p) : s->n;
        method = xstrndup((const char *)s->p, len);
        s->p += len + (nul != NULL);
        s->n -= len + (nul != NULL);
    }
    nul = memchr(s->p, 0, s->n);
    len = nul ? (size_t)(nul - (const char *)s->p) : s->n;
    path = xstrndup((const char *)s->p, len);
    a = route(&r1, method, path, allow1);
    /* A request's path is never empty (it is "/" at least), so "" and "/"
     * (the dashboard) need not route alike. */
    if (len > 0 && path[len - 1] != '/') {
        slashed = xasprintf("%s/", path);
        b = route(&r2, method, slashed, allow2);
        if (a != b || strcmp(allow1, allow2) != 0
            || (a != NULL
                && (strcmp(r1.id, r2.id) != 0
                    || strcmp(r1.name, r2.name) != 0)))
            fz_fail("%s '%s' and '%s' route differently (%s, %s)", method, path,
                    slashed, a ? a->pattern : "none", b ? b->pattern : "none");
        free(slashed);
    }
    free(method);
    free(path);
}

/* The Range and If-None-Match headers. */
static void
fuzz_headers(fz_src *s)
{
    static const char etag[] = "\"0123456789abcdef\"";
    uint8_t           how = fz_byte(s);
    uint64_t          size = 0, first = 7, last = 7, f2, l2;
    const char       *nul;
    char             *h;
    size_t            len;
    int               rc;

    switch (how % 5) {
    case 0:
        size = 0;
        break;
    case 1:
        size = 1;
        break;
    case 2:
        size = how;
        break;
    case 3:
        size = UINT64_MAX - how;
        break;
    default:
        for (int i = 0; i < 8; i++)
            size = size << 8 | fz_byte(s);
    }
    nul = memchr(s->p, 0, s->n);
    len = nul ? (size_t)(nul - (const char *)s->p) : s->n;
    h = xstrndup((const char *)s->p, len);

    rc = api_range_parse(h, size, &first, &last);
    if (rc != API_RANGE_NONE && rc != API_RANGE_OK
        && rc != API_RANGE_UNSATISFIED)
        fz_fail("api_range_parse('%s', %llu) = %d", h, (unsigned long long)size,
                rc);
    if (rc == API_RANGE_OK && (first > last || last >= size))
        fz_fail("range '%s' of a %llu-byte result: bytes %llu-%llu", h,
                (unsigned long long)size, (unsigned long long)first,
                (unsigned long long)last);
    if (rc == API_RANGE_OK && size < UINT64_MAX
        && api_range_parse(h, size + 1, &f2, &l2) != API_RANGE_OK)
        fz_fail("range '%s' fits %llu bytes but not one more", h,
                (unsigned long long)size);

    api_etag_listed(h, etag);
    if (!api_etag_listed("*", etag) || !api_etag_listed(etag, etag))
        fz_fail("etag_listed misses '*' or the ETag itself");
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_src src = {data, size};

    if (fz_byte(&src) % 2 == 0)
        fuzz_route(&src);
    else
        fuzz_headers(&src);
    return 0;
}
