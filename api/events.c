/*
 * events.c - GET /v1/jobs/{id}/events: the job's server-sent events
 * (text/event-stream), read from the job_events table that the triggers
 * of migrations/0005_events.sql fill in the transactions that change the
 * job.
 *
 * Each event is "id: <seq>", "event: state|progress" and "data: <JSON>"
 * ({"status", "progress"} or {"progress"}); a ": heartbeat" comment goes
 * out after EVENTS_HEARTBEAT_MS of silence; the stream ends after the
 * state event of the job's end. Last-Event-ID resumes after that seq: the
 * sequence is the job's own, kept by PostgreSQL, so a resumption loses and
 * repeats nothing, across a restart of sheafd too.
 *
 * The reply is made by a content reader that runs on the connection's own
 * thread (a thread per connection) and blocks until it has bytes: it
 * waits on the job's notifications (jobwatch.h), re-reading at least
 * every EVENTS_RECHECK_MS, and takes a database connection only to read.
 */
#include "api_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../service/log.h"

#define EVENTS_HEARTBEAT_MS 15000
#define EVENTS_RECHECK_MS   1000
#define EVENTS_BATCH        200 /* events read at once */
#define EVENTS_POOL_WAIT_MS 1000
#define EVENTS_BLOCK        4096 /* bytes libmicrohttpd asks for */

/* One stream. */
typedef struct events_stream {
    api            *a;
    char            id[37];
    int             fd;       /* the client's socket, -1 when unknown */
    int64_t         after;    /* seq of the last event queued */
    strbuf          out;      /* bytes to send */
    size_t          off;      /* of 'out', already sent */
    int             ended;    /* the terminal event is queued */
    int64_t         wrote_ms; /* when bytes were last queued */
    jobwatch_waiter wt;
} events_stream;

/* Non-zero when the client has hung up. */
static int
events_gone(const events_stream *s)
{
    struct pollfd pfd = {s->fd, POLLRDHUP, 0};

    if (s->fd < 0 || poll(&pfd, 1, 0) <= 0)
        return 0;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Queue the events after s->after. Returns 0, or SH_EDB (try later). */
static int
events_read(events_stream *s)
{
    db_event *ev = NULL;
    size_t    n = 0;
    sh_err    err;
    db       *d;
    int       rc;

    sh_err_clear(&err);
    if ((d = api_db_get(s->a, EVENTS_POOL_WAIT_MS, &err)) == NULL)
        return SH_EDB;
    rc = api_db_put(s->a, d,
                    db_job_events(d, s->id, s->after, EVENTS_BATCH, &ev, &n,
                                  &err));
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && !s->ended; i++) {
        if (ev[i].seq <= s->after) {
            /* The event the client had last: ends the stream when it was
             * the terminal one. */
            s->ended = ev[i].terminal;
            continue;
        }
        sb_printf(&s->out, "id: %lld\nevent: %s\ndata: %s\n\n",
                  (long long)ev[i].seq, ev[i].kind, ev[i].data);
        s->after = ev[i].seq;
        s->ended = ev[i].terminal;
    }
    db_events_free(ev, n);
    return 0;
}

/* libmicrohttpd's content reader: block until there are bytes to send. */
static ssize_t
events_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    events_stream *s = cls;
    size_t         n;
    int64_t        idle;

    (void)pos;
    for (;;) {
        if (s->off < s->out.len) {
            n = s->out.len - s->off;
            if (n > max)
                n = max;
            memcpy(buf, s->out.data + s->off, n);
            s->off += n;
            return (ssize_t)n;
        }
        sb_reset(&s->out);
        s->off = 0;
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&s->a->stopping) || events_gone(s))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (events_read(s) == 0 && s->out.len > 0) {
            s->wrote_ms = now_ms();
            continue;
        }
        idle = now_ms() - s->wrote_ms;
        if (idle >= EVENTS_HEARTBEAT_MS) {
            sb_puts(&s->out, ": heartbeat\n\n");
            s->wrote_ms = now_ms();
            continue;
        }
        idle = EVENTS_HEARTBEAT_MS - idle;
        jobwatch_wait(s->a->watch, &s->wt,
                      (int)(idle < EVENTS_RECHECK_MS ? idle
                                                     : EVENTS_RECHECK_MS));
    }
}

/* libmicrohttpd is done with the reply: free the stream. */
static void
events_free(void *cls)
{
    events_stream *s = cls;

    jobwatch_remove(s->a->watch, &s->wt);
    atomic_fetch_sub(&s->a->polling, 1);
    sb_free(&s->out);
    free(s);
}

/* Parse Last-Event-ID 'h': 0 to 18 digits. Returns 0, or -1. */
static int
events_last_id(const char *h, int64_t *after)
{
    size_t n;

    *after = 0;
    if (h == NULL)
        return 0;
    while (*h == ' ')
        h++;
    n = strspn(h, "0123456789");
    if (n > 18 || h[n + strspn(h + n, " ")] != '\0')
        return -1;
    *after = n > 0 ? strtoll(h, NULL, 10) : 0;
    return 0;
}

int
api_job_events(api_req *r)
{
    const union MHD_ConnectionInfo *ci;
    struct MHD_Response            *resp;
    events_stream                  *s;
    db_job                          job;
    int64_t                         after;
    sh_err                          err;
    db                             *d;
    int                             rc;

    if (events_last_id(api_header_get(r, "Last-Event-ID"), &after) != 0)
        return api_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                         "Last-Event-ID",
                         "Last-Event-ID must be the id of "
                         "an event of this stream (a number)");
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d, db_job_get(d, r->tenant, r->id, &job, &err));
    if (rc < 0)
        return api_error_sh(r, &err, 0);
    db_job_clear(&job);

    s = xcalloc(1, sizeof *s);
    s->a = r->a;
    memcpy(s->id, r->id, sizeof s->id);
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci != NULL ? ci->connect_fd : -1;
    s->after = after;
    s->wrote_ms = now_ms();
    /* Registered before the first read: nothing committed after it is
     * missed. */
    jobwatch_add(r->a->watch, &s->wt, r->id);
    atomic_fetch_add(&r->a->polling, 1);
    /* Tell the client how soon to reconnect after a break. */
    sb_puts(&s->out, "retry: 1000\n\n");
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EVENTS_BLOCK,
                                             events_reader, s, events_free);
    if (resp == NULL) {
        events_free(s);
        return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                         "cannot make the event stream");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    api_reply(r, MHD_HTTP_OK, NULL);
    r->reply = resp;
    return MHD_HTTP_OK;
}
