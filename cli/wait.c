/*
 * wait.c - waiting for a job to end: long polls of GET /v1/jobs/ID?wait=S
 * until the job is terminal or the caller's timeout passes, with progress
 * on stderr (a live line on a terminal, one line per state change in a
 * log), and the job's end turned into an exit code.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Polls: long polls of 30 s when stderr is a log, of 2 s on a terminal so
 * the live line moves; at most one a second whatever the server does. Once
 * the server has answered, an outage of up to a minute is ridden out. */
#define WAIT_POLL_LOG_S    30
#define WAIT_POLL_TTY_S    2
#define WAIT_MIN_GAP_MS    1000
#define WAIT_OUTAGE_MS     60000
#define WAIT_OUTAGE_GAP_MS 2000

/* Sleep 'ms' milliseconds, resuming after signals. */
static void
wait_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Append 'ms' as "42s", "3m05s" or "1h02m". */
static void
wait_put_elapsed(strbuf *sb, int64_t ms)
{
    long long s = (long long)(ms / 1000);

    if (s < 60)
        sb_printf(sb, "%llds", s);
    else if (s < 3600)
        sb_printf(sb, "%lldm%02llds", s / 60, s % 60);
    else
        sb_printf(sb, "%lldh%02lldm", s / 3600, (s / 60) % 60);
}

/* Non-zero when 'status' is a final state. */
static int
wait_is_terminal(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0;
}

/* Show where 'job' is: rewrite the live line on a terminal, or print a
 * line when its status differs from 'last' (updated) in a log. */
static void
wait_show(cli *c, const json_t *job, char last[32], int64_t elapsed_ms)
{
    const char   *status = cli_json_str(job, "status", "?");
    const json_t *p = json_object_get(job, "progress");
    strbuf        sb = {0};

    if (!c->err_tty && strcmp(status, last) == 0)
        return;
    sb_printf(&sb, "job %.64s %.32s", cli_json_str(job, "id", "?"), status);
    if (json_is_object(p) && cli_json_int(p, "partitions_total") > 0)
        sb_printf(&sb, ": %lld/%lld partitions",
                  (long long)cli_json_int(p, "partitions_done"),
                  (long long)cli_json_int(p, "partitions_total"));
    if (json_is_object(p) && strcmp(status, "queued") != 0)
        sb_printf(&sb, ", %lld rows in, %lld rows out",
                  (long long)cli_json_int(p, "rows_in"),
                  (long long)cli_json_int(p, "rows_out"));
    if (json_is_object(p) && cli_json_int(p, "partitions_failed") > 0)
        sb_printf(&sb, ", %lld partition failures",
                  (long long)cli_json_int(p, "partitions_failed"));
    sb_puts(&sb, " (");
    wait_put_elapsed(&sb, elapsed_ms);
    sb_puts(&sb, ")");
    if (c->err_tty)
        fprintf(stderr, "\r\033[K%s", sb.data);
    else
        fprintf(stderr, "sheaf: %s\n", sb.data);
    fflush(stderr);
    snprintf(last, 32, "%s", status);
    sb_free(&sb);
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

int
cli_wait_job(cli *c, const char *id, int64_t timeout_ms)
{
    char       *eid = cli_job_path_id(id), *path = NULL;
    char        msg[HTTP_ERR_MAX], last[32] = "";
    http_reply  rep = {0};
    http_req    rq = {.method = "GET", .retry = 1};
    int64_t     start = now_ms(), t0, left_ms, outage_since = -1;
    long        wait_s;
    int         rc = -1, hrc, answered = 0, live = 0;
    const char *status;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    while (rc < 0) {
        wait_s = c->err_tty ? WAIT_POLL_TTY_S : WAIT_POLL_LOG_S;
        if (timeout_ms >= 0) {
            left_ms = start + timeout_ms - now_ms();
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
            wait_show(c, rep.json, last, now_ms() - start);
            live = c->err_tty;
            if (wait_is_terminal(status)) {
                if (live)
                    fputc('\n', stderr);
                live = 0;
                rc = wait_outcome(rep.json, id);
            } else {
                wait_sleep_ms(WAIT_MIN_GAP_MS - (now_ms() - t0));
            }
            continue;
        }
        if (live)
            fputc('\n', stderr);
        live = 0;
        /* A 4xx is final. So is any failure before the server has ever
         * answered; after that, ride out a restart for a while. */
        if (outage_since < 0)
            outage_since = now_ms();
        if (hrc == HTTP_OK && rep.status >= 400 && rep.status < 500) {
            rc = cli_fail_reply(&rep);
        } else if (!answered || now_ms() - outage_since >= WAIT_OUTAGE_MS ||
                   (timeout_ms >= 0 && now_ms() - start >= timeout_ms)) {
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
            wait_sleep_ms(WAIT_OUTAGE_GAP_MS);
        }
    }
    if (live)
        fputc('\n', stderr);
    if (rc == CLI_EXIT_TIMEOUT) {
        strbuf sb = {0};

        wait_put_elapsed(&sb, timeout_ms);
        fprintf(stderr,
                "sheaf: timed out after %s waiting for job %s "
                "(%s); it keeps running: 'sheaf wait %s' waits "
                "again, 'sheaf cancel %s' stops it\n",
                sb.data, id, last[0] ? last : "not terminal", id, id);
        sb_free(&sb);
    }
    http_reply_free(&rep);
    free(path);
    free(eid);
    return rc;
}
