/*
 * wait.c - waiting for a job to end: its event stream when the service
 * has one, else long polls of GET /v1/jobs/ID?wait=S, until the job is
 * terminal or the caller's timeout passes; progress on stderr (a live
 * line on a terminal: partitions done/total, per stage when known, rows,
 * MB/s, elapsed, ETA and the state; in a log or with --quiet, plain lines
 * without control characters), and the job's end turned into an exit code.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Polls: long polls of 30 s when stderr is a log, of 1 s with a live line
 * so that it moves; at most one a second whatever the server does. Once
 * the server has answered, an outage of up to a minute is ridden out. */
#define WAIT_POLL_LOG_S    30
#define WAIT_POLL_TTY_S    1
#define WAIT_MIN_GAP_MS    1000
#define WAIT_OUTAGE_MS     60000
#define WAIT_OUTAGE_GAP_MS 2000
#define WAIT_LOG_EVERY_MS  30000 /* a log line while running, at most */
#define WAIT_STAGES_MAX                          \
    1000 /* tasks counted per stage at each poll \
            of a live line, for jobs this small */
#define WAIT_STAGES_SHOWN 4

/* What the progress line shows, and what it showed last. */
typedef struct wait_view {
    cli    *c;
    int     live;        /* a live line on a terminal */
    json_t *job;         /* the job as last heard of (owned) */
    char    last[32];    /* the state last shown */
    int64_t start_ms;    /* when waiting began */
    int64_t first_ms;    /* when bytes_in was first seen, or -1 */
    int64_t first_bytes; /* ... and its value then */
    int64_t line_ms;     /* when a log line was last written */
    int64_t line_done;   /* partitions done then */
    strbuf  stages;      /* "stage 0 16/16, stage 1 3/16", or empty */
    int     drawn;       /* the live line is on the screen */
} wait_view;

/* Append 'n' as 1234, 12.3k, 4.5M. */
static void
wait_put_count(strbuf *sb, int64_t n)
{
    if (n >= 10000000000LL)
        sb_printf(sb, "%.1fG", (double)n / 1e9);
    else if (n >= 10000000)
        sb_printf(sb, "%.1fM", (double)n / 1e6);
    else if (n >= 10000)
        sb_printf(sb, "%.1fk", (double)n / 1e3);
    else
        sb_printf(sb, "%lld", (long long)n);
}

/* Per-stage counts from a "stages" array of the progress (events may
 * carry one): [{"stage", "partitions_done", "partitions_total"}]. */
static void
wait_stages_from(strbuf *sb, const json_t *stages)
{
    size_t i;

    sb_reset(sb);
    for (i = 0; i < json_array_size(stages) && i < WAIT_STAGES_SHOWN; i++) {
        const json_t *s = json_array_get(stages, i);

        sb_printf(sb, "%sstage %lld %lld/%lld", i ? ", " : "",
                  (long long)cli_json_int(s, "stage"),
                  (long long)cli_json_int(s, "partitions_done"),
                  (long long)cli_json_int(s, "partitions_total"));
    }
}

/* Count the job's tasks per stage (a live line, small jobs): the job
 * object has only the totals over all stages. */
static void
wait_count_stages(wait_view *v, const char *eid)
{
    const json_t *p = json_object_get(v->job, "progress");
    int64_t       total = cli_json_int(p, "partitions_total");
    int64_t       done[WAIT_STAGES_SHOWN] = {0}, all[WAIT_STAGES_SHOWN] = {0};
    int64_t       done_rest = 0;
    http_req      rq = {.method = "GET", .retry = 0, .timeout_s = 10};
    http_reply    rep = {0};
    char          msg[HTTP_ERR_MAX], *path;
    const json_t *tasks, *t;
    size_t        i;
    int           n_stages = 0;
    json_int_t    st;

    if (!v->live || json_is_array(json_object_get(p, "stages")) || total <= 0
        || total > WAIT_STAGES_MAX)
        return;
    path = xasprintf("/v1/jobs/%s/tasks", eid);
    rq.path = path;
    if (http_request(v->c->http, &rq, &rep, msg) == HTTP_OK && rep.status == 200
        && json_is_array(tasks = json_object_get(rep.json, "tasks"))) {
        for (i = 0; i < json_array_size(tasks); i++) {
            t = json_array_get(tasks, i);
            st = json_integer_value(json_object_get(t, "stage"));
            if (st < 0 || st >= WAIT_STAGES_SHOWN) {
                done_rest += strcmp(cli_json_str(t, "state", ""), "done") == 0;
                continue;
            }
            all[st]++;
            done[st] += strcmp(cli_json_str(t, "state", ""), "done") == 0;
            if (st + 1 > n_stages)
                n_stages = (int)st + 1;
        }
        sb_reset(&v->stages);
        for (st = 0; st < n_stages; st++) {
            sb_printf(&v->stages, "%sstage %lld %lld/%lld", st ? ", " : "",
                      (long long)st, (long long)done[st], (long long)all[st]);
            total -= all[st];
        }
        /* The tasks of later stages (past those shown, or not made yet:
         * the total counts them) together. */
        if (n_stages > 0 && total > 0)
            sb_printf(&v->stages, ", stage %d+ %lld/%lld", n_stages,
                      (long long)done_rest, (long long)total);
        if (n_stages == 1 && total <= 0)
            sb_reset(&v->stages); /* one stage: the totals say it all */
    }
    http_reply_free(&rep);
    free(path);
}

/*
 * Append the progress of v->job to 'sb': "[#####---] 9/16 partitions
 * (stage 0 16/16, stage 1 3/16), 1.2M rows in, 35.2 MB/s, 12s, ETA 8s";
 * the stage counts only with 'stages'.
 */
static void
wait_put_progress(wait_view *v, strbuf *sb, int bar, int stages)
{
    const json_t *p = json_object_get(v->job, "progress");
    const char   *status = cli_json_str(v->job, "status", "?");
    int64_t       done = cli_json_int(p, "partitions_done");
    int64_t       total = cli_json_int(p, "partitions_total");
    int64_t       bytes = cli_json_int(p, "bytes_in");
    int64_t       now = now_ms(), el = now - v->start_ms;

    if (v->first_ms < 0) {
        /* The rate counts from the first look: from 0 bytes when the job
         * had read none yet, else from what it had read by then. */
        v->first_ms = now;
        v->first_bytes = bytes;
    }
    if (bar)
        cli_put_bar(sb, (uint64_t)done, (uint64_t)total);
    sb_printf(sb, "%lld/%lld partitions", (long long)done, (long long)total);
    if (stages && v->stages.len > 0)
        sb_printf(sb, " (%s)", v->stages.data);
    sb_puts(sb, ", ");
    wait_put_count(sb, cli_json_int(p, "rows_in"));
    sb_puts(sb, " rows in");
    if (cli_json_int(p, "rows_out") > 0) {
        sb_puts(sb, ", ");
        wait_put_count(sb, cli_json_int(p, "rows_out"));
        sb_puts(sb, " out");
    }
    if (v->first_ms >= 0 && now - v->first_ms >= 500 && bytes > v->first_bytes)
        sb_printf(sb, ", %.1f MB/s",
                  (double)(bytes - v->first_bytes) / 1e3
                      / (double)(now - v->first_ms));
    if (cli_json_int(p, "partitions_failed") > 0)
        sb_printf(sb, ", %lld partition failures",
                  (long long)cli_json_int(p, "partitions_failed"));
    sb_puts(sb, ", ");
    cli_put_duration(sb, el);
    if (done > 0 && done < total && strcmp(status, "running") == 0) {
        sb_puts(sb, ", ETA ");
        cli_put_duration(sb, el * (total - done) / done);
    }
}

/* Show where v->job is: redraw the live line on a terminal; in a log, a
 * line when the state changes, and while running when partitions moved
 * and WAIT_LOG_EVERY_MS passed. */
static void
wait_show(wait_view *v)
{
    const char *status = cli_json_str(v->job, "status", "?");
    const char *id = cli_json_str(v->job, "id", "?");
    int64_t     done = cli_json_int(json_object_get(v->job, "progress"),
                                    "partitions_done");
    strbuf      sb = {0}, head = {0};
    int         cols, changed = strcmp(status, v->last) != 0;
    size_t      tail;

    if (v->live) {
        cols = cli_term_cols();
        sb_printf(&head, "%.8s ", id);
        tail = strlen(status) + 1;
        /* The widest of: bar and stages, stages, bar, neither that fits. */
        for (int variant = 0; variant < 4; variant++) {
            sb_reset(&sb);
            sb_append(&sb, head.data, head.len);
            wait_put_progress(v, &sb, variant != 1, variant < 2);
            if (cols <= 0 || sb.len + tail < (size_t)cols)
                break;
        }
        if (cols > 0 && sb.len + tail >= (size_t)cols)
            sb.len = (size_t)cols > tail + 1 ? (size_t)cols - tail - 1 : 0;
        sb.data[sb.len] = '\0';
        fprintf(stderr, "\r\033[K%s %s", sb.data, status);
        v->drawn = 1;
    } else {
        if (!changed
            && !(strcmp(status, "running") == 0 && done != v->line_done
                 && now_ms() - v->line_ms >= WAIT_LOG_EVERY_MS))
            goto done;
        sb_printf(&sb, "job %.64s %.32s: ", id, status);
        wait_put_progress(v, &sb, 0, 0);
        fprintf(stderr, "sheaf: %s\n", sb.data);
        v->line_ms = now_ms();
        v->line_done = done;
    }
    fflush(stderr);
    snprintf(v->last, sizeof v->last, "%s", status);

done:
    sb_free(&sb);
    sb_free(&head);
}

/* End the live line, if one is drawn. */
static void
wait_end_line(wait_view *v)
{
    if (v->drawn)
        fputc('\n', stderr);
    v->drawn = 0;
}

/* Take a job object as the latest state. */
static void
wait_take_job(wait_view *v, const json_t *job)
{
    json_decref(v->job);
    v->job = json_deep_copy(job);
}

/* cli_follow_events' callback: merge an event's data into v->job (a whole
 * job object replaces it; else its status and progress are taken) and
 * show it. */
static void
wait_on_event(void *ud, const json_t *data)
{
    wait_view    *v = ud;
    const json_t *p = json_object_get(data, "progress");
    const char   *status = cli_json_str(data, "status", NULL);
    const char   *id = cli_json_str(data, "id", NULL);

    if (id != NULL && status != NULL && json_is_object(p)
        && strcmp(id, cli_json_str(v->job, "id", "")) == 0) {
        wait_take_job(v, data);
    } else {
        if (status != NULL)
            json_object_set_new(v->job, "status", json_string(status));
        if (json_is_object(p))
            json_object_set(v->job, "progress", (json_t *)p);
    }
    wait_stages_from(&v->stages,
                     json_object_get(json_object_get(v->job, "progress"),
                                     "stages"));
    wait_show(v);
}

/* The exit code of the terminal 'job', with its error printed. */
static int
wait_outcome(const json_t *job, const char *id)
{
    const char *status = cli_json_str(job, "status", "?");
    strbuf      sb = {0};

    if (strcmp(status, "succeeded") == 0)
        return CLI_EXIT_OK;
    cli_job_error(job, &sb);
    if (strcmp(status, "cancelled") == 0)
        fprintf(stderr, "sheaf: job %s was cancelled%s%s\n", id,
                sb.len > 0 ? ": " : "", sb.len > 0 ? sb.data : "");
    else
        fprintf(stderr, "sheaf: job %s failed: %s\n", id,
                sb.len > 0 ? sb.data : "(the server gave no reason)");
    sb_free(&sb);
    return CLI_EXIT_JOB_FAILED;
}

/* Long polls until the job ends, the timeout passes or a request fails
 * for good. Returns the exit code. */
static int
wait_poll(wait_view *v, const char *id, const char *eid, int64_t timeout_ms)
{
    cli        *c = v->c;
    char       *path = NULL, msg[HTTP_ERR_MAX];
    http_reply  rep = {0};
    http_req    rq = {.method = "GET", .retry = 1};
    int64_t     t0, left_ms, outage_since = -1;
    long        wait_s;
    int         rc = -1, hrc, answered = 0;
    const char *status;

    while (rc < 0) {
        /* The first at once, so the state shows from the start. */
        wait_s = !answered ? 0 : v->live ? WAIT_POLL_TTY_S : WAIT_POLL_LOG_S;
        if (timeout_ms >= 0) {
            left_ms = v->start_ms + timeout_ms - now_ms();
            if (left_ms <= 0 && answered) {
                rc = CLI_EXIT_TIMEOUT;
                break;
            }
            if (left_ms < wait_s * 1000)
                wait_s = left_ms > 0 ? (long)((left_ms + 999) / 1000) : 0;
        }
        free(path);
        path = xasprintf("/v1/jobs/%s?wait=%ld", eid, wait_s);
        rq.path = path;
        rq.timeout_s = wait_s + 30;
        http_reply_free(&rep);
        t0 = now_ms();
        hrc = http_request(c->http, &rq, &rep, msg);
        status = cli_json_str(rep.json, "status", NULL);
        if (hrc == HTTP_OK && rep.status == 200 && status != NULL) {
            answered = 1;
            outage_since = -1;
            wait_take_job(v, rep.json);
            if (!cli_is_terminal(status))
                wait_count_stages(v, eid);
            else
                sb_reset(&v->stages); /* the totals say it all */
            wait_show(v);
            if (cli_is_terminal(status)) {
                wait_end_line(v);
                rc = wait_outcome(rep.json, id);
            } else {
                cli_sleep_ms(WAIT_MIN_GAP_MS - (now_ms() - t0));
            }
            continue;
        }
        wait_end_line(v);
        /* A 4xx is final. So is any failure before the server has ever
         * answered; after that, ride out a restart for a while. */
        if (outage_since < 0)
            outage_since = now_ms();
        if (hrc == HTTP_OK && rep.status >= 400 && rep.status < 500) {
            rc = cli_fail_reply(&rep);
        } else if (!answered || now_ms() - outage_since >= WAIT_OUTAGE_MS
                   || (timeout_ms >= 0
                       && now_ms() - v->start_ms >= timeout_ms)) {
            if (hrc != HTTP_OK) {
                rc = cli_fail_transport(hrc, msg);
            } else if (rep.status >= 200 && rep.status < 300) {
                fprintf(stderr,
                        "sheaf: the server's reply (HTTP %ld) is "
                        "not a job\n",
                        rep.status);
                rc = CLI_EXIT_UNREACHABLE;
            } else {
                rc = cli_fail_reply(&rep);
            }
        } else {
            fprintf(stderr, "sheaf: %s; still waiting for job %s\n",
                    hrc != HTTP_OK ? msg : "the server is unavailable", id);
            cli_sleep_ms(WAIT_OUTAGE_GAP_MS);
        }
    }
    http_reply_free(&rep);
    free(path);
    return rc;
}

int
cli_wait_job(cli *c, const char *id, int64_t timeout_ms)
{
    char     *eid = cli_job_path_id(id);
    wait_view v;
    int       rc;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    memset(&v, 0, sizeof v);
    v.c = c;
    v.live = cli_live(c);
    v.start_ms = now_ms();
    v.first_ms = -1;
    v.job = json_pack("{s:s, s:s}", "id", id, "status", "queued");
    /* The event stream when there is one; then (or else) the long polls,
     * which also fetch the final job object for its error. */
    rc = cli_follow_events(c, id,
                           timeout_ms >= 0 ? v.start_ms + timeout_ms : -1,
                           wait_on_event, &v);
    if (rc != CLI_EXIT_TIMEOUT)
        rc = wait_poll(&v, id, eid, timeout_ms);
    wait_end_line(&v);
    if (rc == CLI_EXIT_TIMEOUT) {
        strbuf sb = {0};

        cli_put_duration(&sb, timeout_ms);
        fprintf(stderr,
                "sheaf: timed out after %s waiting for job %s "
                "(%s); it keeps running: 'sheaf wait %s' waits "
                "again, 'sheaf cancel %s' stops it\n",
                sb.data, id, v.last[0] ? v.last : "not terminal", id, id);
        sb_free(&sb);
    }
    if (c->args.val[OPT_JSON] != NULL && rc != CLI_EXIT_USAGE
        && json_object_get(v.job, "created_at") != NULL)
        cli_print_json(v.job, JSON_INDENT(2));
    json_decref(v.job);
    sb_free(&v.stages);
    free(eid);
    return rc;
}
