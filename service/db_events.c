/*
 * db_events.c - a job's events, read for GET /v1/jobs/{id}/events (they
 * are written by the triggers of migrations/0005_events.sql), the outbox
 * of end-of-job callbacks, and the figures of GET /metrics (see db.h).
 */
#include "db_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

int
db_job_events(db *d, const char *id, int64_t after, int max,
              db_event **events, size_t *n, sh_err *err)
{
    char        after_s[24], max_s[16];
    const char *p[3] = {id, after_s, max_s};
    PGresult   *res;

    *events = NULL;
    *n = 0;
    snprintf(after_s, sizeof after_s, "%" PRId64, after);
    snprintf(max_s, sizeof max_s, "%d", max);
    res = db_exec(d, "read job events",
                  "SELECT seq, kind, data::text, kind = 'state' AND"
                  " data->>'status' IN ('succeeded', 'failed', 'cancelled')"
                  " FROM job_events WHERE job_id = $1 AND seq >= $2::bigint"
                  " ORDER BY seq LIMIT $3::int", 3, p, err);
    if (res == NULL)
        return SH_EDB;
    *n = (size_t)PQntuples(res);
    *events = xcalloc(*n ? *n : 1, sizeof **events);
    for (size_t i = 0; i < *n; i++) {
        db_event *e = &(*events)[i];

        e->seq = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        snprintf(e->kind, sizeof e->kind, "%s", PQgetvalue(res, (int)i, 1));
        e->data = xstrdup(PQgetvalue(res, (int)i, 2));
        e->terminal = PQgetvalue(res, (int)i, 3)[0] == 't';
    }
    PQclear(res);
    return 0;
}

void
db_events_free(db_event *events, size_t n)
{
    for (size_t i = 0; events && i < n; i++)
        free(events[i].data);
    free(events);
}
