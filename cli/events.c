/*
 * events.c - a job's server-sent events (GET /v1/jobs/ID/events): the
 * text/event-stream parser, the follower that wait uses for its progress
 * line (reconnecting with Last-Event-ID), and the events command, which
 * copies the raw stream to stdout (or one JSON object per event).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_IDLE_S   60 /* a stream silent this long is reopened */
#define EVENTS_TRIES    5  /* connections in a row that may fail */
#define EVENTS_RETRY_MS 1000
#define EVENTS_ACCEPT   "text/event-stream"

/*
 * Called for each complete server-sent event: its type ("message" when
 * the stream named none), its data (data lines joined by newlines), and
 * the last id the stream set ("" when none). Return non-zero to stop.
 */
typedef int (*sse_event_fn)(void *ud, const char *event, const char *data,
                            const char *id);

/* A parser of text/event-stream (the WHATWG HTML standard's format). */
typedef struct sse_parser {
    strbuf line;         /* the line being read */
    strbuf data;         /* the data lines of the event being read */
    char   event[64];    /* its type, "" for the default */
    char   id_buf[256];  /* the id the event being read set */
    char   last_id[256]; /* the id as of the last event dispatched
                            (a blank line): what resumes */
    int    has_data;     /* a data line came */
    int    after_cr;     /* the last byte was a CR ending a line */
    int    started;      /* past a leading byte-order mark */
    int    after_blank;  /* the last line ended was blank */
    size_t blank_end;    /* in the last sse_feed: the offset just
                            past its last blank line, or 0 */
    sse_event_fn fn;     /* receives the events */
    void        *ud;     /* ... with this */
} sse_parser;

/* Take one complete line (without its end) of the stream. */
static int
sse_line(sse_parser *p, const char *s, size_t len)
{
    const char *colon, *value;
    size_t      name_len, value_len;
    int         rc = 0;

    if (len == 0) {
        memcpy(p->last_id, p->id_buf, sizeof p->last_id);
        if (p->has_data)
            rc = p->fn(p->ud, p->event[0] ? p->event : "message",
                       p->data.data ? p->data.data : "", p->last_id);
        sb_reset(&p->data);
        p->event[0] = '\0';
        p->has_data = 0;
        return rc;
    }
    if (s[0] == ':')
        return 0; /* a comment: a keep-alive */
    colon = memchr(s, ':', len);
    name_len = colon ? (size_t)(colon - s) : len;
    value = colon ? colon + 1 : s + len;
    value_len = len - (size_t)(value - s);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        if (p->has_data)
            sb_putc(&p->data, '\n');
        sb_append(&p->data, value, value_len);
        p->has_data = 1;
    } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        snprintf(p->event, sizeof p->event, "%.*s", (int)value_len, value);
    } else if (name_len == 2 && memcmp(s, "id", 2) == 0
               && memchr(value, '\0', value_len) == NULL) {
        snprintf(p->id_buf, sizeof p->id_buf, "%.*s", (int)value_len, value);
    }
    return 0; /* "retry" and unknown fields are ignored */
}

/* Feed 'len' bytes of the stream; calls p->fn per event. Returns what a
 * non-zero fn returned (the rest of the bytes unread), else 0. */
static int
sse_feed(sse_parser *p, const char *buf, size_t len)
{
    size_t i;
    int    rc;

    p->blank_end = 0;
    for (i = 0; i < len; i++) {
        char ch = buf[i];

        if (!p->started) {
            /* Skip a UTF-8 byte-order mark at the very start. */
            if (p->line.len < 3
                && (unsigned char)ch == "\xEF\xBB\xBF"[p->line.len]) {
                sb_putc(&p->line, ch);
                if (p->line.len == 3) {
                    sb_reset(&p->line);
                    p->started = 1;
                }
                continue;
            }
            p->started = 1;
        }
        if (ch == '\n' && p->after_cr) {
            p->after_cr = 0; /* the LF of a CRLF */
            if (p->after_blank)
                p->blank_end = i + 1;
            continue;
        }
        p->after_cr = ch == '\r';
        if (ch == '\n' || ch == '\r') {
            p->after_blank = p->line.len == 0;
            if (p->after_blank)
                p->blank_end = i + 1;
            rc = sse_line(p, p->line.data ? p->line.data : "", p->line.len);
            sb_reset(&p->line);
            if (rc != 0)
                return rc;
            continue;
        }
        sb_putc(&p->line, ch);
    }
    return 0;
}

/* Free what 'p' holds (not p). */
static void
sse_free(sse_parser *p)
{
    sb_free(&p->line);
    sb_free(&p->data);
}

/* Non-zero when the event (type, data parsed or NULL) says the job has
 * ended: a terminal "status", or the type "end" or "done". */
static int
cli_event_terminal(const char *event, const json_t *data)
{
    const char *status = cli_json_str(data, "status", NULL);

    return strcmp(event, "end") == 0 || strcmp(event, "done") == 0
           || (status != NULL && cli_is_terminal(status));
}

/* One following of the stream, over its connections. */
typedef struct events_run {
    sse_parser sse;     /* the parser; its last_id resumes */
    int        ended;   /* a terminal event came */
    FILE      *raw;     /* the events command: copy the bytes here */
    strbuf     pending; /* ... those past the last blank line, held
                           until their event is complete */
    int as_json;        /* ... or one JSON object per event */
    void (*fn)(void *ud, const json_t *data); /* wait: each event's data */
    void *ud;                                 /* ... with this */
} events_run;

/* sse_event_fn: note the end, hand the data on. */
static int
events_on_event(void *ud, const char *event, const char *data, const char *id)
{
    events_run  *r = ud;
    json_error_t jerr;
    json_t      *j = json_loads(data, JSON_DECODE_ANY, &jerr);

    if (r->as_json) {
        json_t *line = json_pack("{s:s, s:s, s:o}", "id", id, "event", event,
                                 "data",
                                 j ? json_incref(j) : json_string(data));

        cli_print_json(line, JSON_COMPACT);
        fflush(stdout);
        json_decref(line);
    }
    if (json_is_object(j) && r->fn != NULL)
        r->fn(r->ud, j);
    if (cli_event_terminal(event, j))
        r->ended = 1;
    json_decref(j);
    return 0;
}

/* http_chunk_fn: copy raw bytes when asked, parse; stop after the end. */
static int
events_on_chunk(void *ud, const char *p, size_t len)
{
    events_run *r = ud;
    size_t      upto;

    sse_feed(&r->sse, p, len);
    if (r->raw != NULL) {
        /* Copy whole events only: a connection that breaks inside one
         * is resumed from the event before, so the copy stays valid. */
        sb_append(&r->pending, p, len);
        if (r->sse.blank_end > 0) {
            upto = r->pending.len - len + r->sse.blank_end;
            if (fwrite(r->pending.data, 1, upto, r->raw) != upto)
                return 1;
            fflush(r->raw);
            memmove(r->pending.data, r->pending.data + upto,
                    r->pending.len - upto);
            r->pending.len -= upto;
        }
    }
    return r->ended;
}

/*
 * Follow the stream of job 'eid' (escaped) with 'r' until the job ends.
 * Returns 0 when it ended, CLI_EXIT_TIMEOUT past 'deadline_ms', -1 when
 * the service has no stream (*rep holds its reply), or an exit code after
 * printing why (when 'loud').
 */
static int
events_follow(cli *c, const char *eid, events_run *r, int64_t deadline_ms,
              int loud, http_reply *rep)
{
    char           *path = xasprintf("/v1/jobs/%s/events", eid);
    char            msg[HTTP_ERR_MAX];
    http_stream_req sr = {.path = path,
                          .accept = EVENTS_ACCEPT,
                          .idle_s = EVENTS_IDLE_S,
                          .on_chunk = events_on_chunk,
                          .ud = r};
    int             rc = -2, hrc, failures = 0, opened = 0;

    r->sse.fn = events_on_event;
    r->sse.ud = r;
    while (rc == -2) {
        if (deadline_ms >= 0) {
            sr.timeout_ms = deadline_ms - now_ms();
            if (sr.timeout_ms <= 0) {
                rc = CLI_EXIT_TIMEOUT;
                break;
            }
        }
        sr.last_event_id = r->sse.last_id[0] ? r->sse.last_id : NULL;
        /* A new connection starts a new event: drop a broken one. */
        sb_reset(&r->pending);
        sb_reset(&r->sse.line);
        sb_reset(&r->sse.data);
        r->sse.has_data = 0;
        r->sse.event[0] = '\0';
        r->sse.after_cr = 0;
        memcpy(r->sse.id_buf, r->sse.last_id, sizeof r->sse.id_buf);
        http_reply_free(rep);
        hrc = http_stream(c->http, &sr, rep, msg);
        if (rep->status == 200)
            opened = 1;
        if (r->ended) {
            rc = 0;
        } else if (rep->status != 0 && rep->status != 200) {
            if (rep->status == 501 || rep->status == 404 || rep->status == 405
                || rep->status == 406)
                rc = opened ? cli_fail_reply(rep) : -1;
            else if (rep->status >= 400 && rep->status < 500)
                rc = cli_fail_reply(rep);
            else if (!opened || ++failures >= EVENTS_TRIES)
                rc = loud ? cli_fail_reply(rep) : -1;
        } else if (hrc != HTTP_OK
                   && (deadline_ms >= 0 && now_ms() >= deadline_ms)) {
            rc = CLI_EXIT_TIMEOUT;
        } else if (hrc != HTTP_OK && (!opened || ++failures >= EVENTS_TRIES)) {
            /* Never reached (http.c retried a refused connection), or
             * broken too often: say so, or let the caller poll. */
            rc = loud ? cli_fail_transport(hrc, msg) : -1;
        } else if (hrc == HTTP_OK) {
            failures = 0;
            /* The stream ended before the job: reopen it. A service that
             * ends it at once every time gets a pause between. */
        }
        if (rc == -2) {
            if (loud && hrc != HTTP_OK)
                fprintf(stderr, "sheaf: %s; reconnecting%s%s\n", msg,
                        r->sse.last_id[0] ? " after event " : "",
                        r->sse.last_id);
            if (hrc != HTTP_OK || rep->status != 200 || failures > 0)
                cli_sleep_ms(EVENTS_RETRY_MS);
            else
                cli_sleep_ms(EVENTS_RETRY_MS / 4);
            /* In between, the job may have ended without a last event. */
            if (opened && hrc == HTTP_OK) {
                http_req   rq = {.method = "GET", .retry = 1};
                http_reply jr = {0};
                char      *jp = xasprintf("/v1/jobs/%s", eid);

                rq.path = jp;
                if (http_request(c->http, &rq, &jr, msg) == HTTP_OK
                    && jr.status == 200
                    && cli_is_terminal(cli_json_str(jr.json, "status", "")))
                    rc = 0;
                http_reply_free(&jr);
                free(jp);
            }
        }
    }
    free(path);
    return rc;
}

int
cli_follow_events(cli *c, const char *id, int64_t deadline_ms,
                  void (*fn)(void *ud, const json_t *data), void *ud)
{
    char      *eid = cli_job_path_id(id);
    events_run r;
    http_reply rep = {0};
    int        rc;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    memset(&r, 0, sizeof r);
    r.fn = fn;
    r.ud = ud;
    rc = events_follow(c, eid, &r, deadline_ms, 0, &rep);
    if (rc != 0 && rc != CLI_EXIT_TIMEOUT)
        rc = -1; /* whatever went wrong, polling will say it */
    http_reply_free(&rep);
    sse_free(&r.sse);
    sb_free(&r.pending);
    free(eid);
    return rc;
}

int
cli_cmd_events(cli *c)
{
    char       *eid = cli_job_path_id(c->args.pos[0]);
    const char *from = c->args.val[OPT_LAST_ID];
    events_run  r;
    http_reply  rep = {0};
    int         rc;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    if (from != NULL
        && (from[0] == '\0' || strpbrk(from, "\r\n") != NULL
            || strlen(from) >= sizeof r.sse.last_id)) {
        fprintf(stderr, "sheaf: --last-event-id wants the id of an event\n");
        free(eid);
        return CLI_EXIT_USAGE;
    }
    memset(&r, 0, sizeof r);
    if (from != NULL) {
        snprintf(r.sse.last_id, sizeof r.sse.last_id, "%s", from);
        memcpy(r.sse.id_buf, r.sse.last_id, sizeof r.sse.id_buf);
    }
    r.as_json = c->args.val[OPT_JSON] != NULL;
    r.raw = r.as_json ? NULL : stdout;
    rc = events_follow(c, eid, &r, -1, 1, &rep);
    if (rc == -1)
        rc = cli_fail_reply(&rep);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        perror("sheaf: writing stdout");
        rc = CLI_EXIT_LOCAL;
    }
    http_reply_free(&rep);
    sse_free(&r.sse);
    sb_free(&r.pending);
    free(eid);
    return rc;
}
