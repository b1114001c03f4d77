/*
 * report.c - how sheaf talks to its user about the server: a request that
 * must succeed (cli_call), a server's error turned into one line and an
 * exit code, spec files read and checked, and a job shown in one line.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REPORT_SNIPPET_MAX 200 /* bytes of a non-JSON error body shown */
#define REPORT_ID_MAX      128 /* bytes of a job id we send */

/* Append 's' to 'sb' with control characters made visible as '?', so a
 * server's words cannot move the cursor or break a line. */
static void
report_put_clean(strbuf *sb, const char *s, size_t max_bytes)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < max_bytes; i++) {
        unsigned char ch = (unsigned char)s[i];

        sb_putc(sb, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
    }
    if (s[i] != '\0')
        sb_puts(sb, "...");
}

int
cli_fail_reply(const http_reply *rep)
{
    const json_t *e = json_object_get(rep->json, "error");
    const char   *code = cli_json_str(e, "code", NULL);
    const char   *path = cli_json_str(e, "path", "");
    const char   *msg = cli_json_str(e, "message", "");
    strbuf        sb = {0};
    int           refused = (rep->status >= 400 && rep->status < 500)
                  || rep->status == 501;

    sb_puts(&sb, "sheaf: ");
    if (code != NULL) {
        report_put_clean(&sb, code, 64);
        if (path[0] != '\0') {
            sb_puts(&sb, " at ");
            report_put_clean(&sb, path, 256);
        }
        sb_puts(&sb, ": ");
        report_put_clean(&sb, msg, 4096);
        if (!refused)
            sb_printf(&sb, " (HTTP %ld)", rep->status);
    } else if (rep->status >= 300 && rep->status < 400) {
        sb_printf(&sb,
                  "the server answered HTTP %ld (a redirect, which "
                  "sheaf does not follow); is the URL right?",
                  rep->status);
    } else {
        sb_printf(&sb, "HTTP %ld", rep->status);
        if (rep->body.len > 0) {
            sb_puts(&sb, ": ");
            report_put_clean(&sb, rep->body.data, REPORT_SNIPPET_MAX);
        }
    }
    if (rep->status == 401)
        sb_puts(&sb, " (set SHEAF_TOKEN or pass --token)");
    fprintf(stderr, "%s\n", sb.data);
    sb_free(&sb);
    return refused ? CLI_EXIT_REFUSED : CLI_EXIT_UNREACHABLE;
}

int
cli_fail_transport(int rc, const char *msg)
{
    fprintf(stderr, "sheaf: %s\n", msg);
    return rc == HTTP_EWRITE  ? CLI_EXIT_LOCAL
           : rc == HTTP_EREAD ? CLI_EXIT_USAGE
                              : CLI_EXIT_UNREACHABLE;
}

int
cli_call(cli *c, const http_req *rq, http_reply *rep)
{
    char msg[HTTP_ERR_MAX];
    int  rc;

    rc = http_request(c->http, rq, rep, msg);
    if (rc != HTTP_OK)
        return cli_fail_transport(rc, msg);
    if (rep->status < 200 || rep->status >= 300)
        return cli_fail_reply(rep);
    if (rep->body.len > 0 && rep->json == NULL) {
        fprintf(stderr,
                "sheaf: %s %s: the server's reply (HTTP %ld) is "
                "not JSON; is %s a sheaf service?\n",
                rq->method, rq->path, rep->status, http_client_url(c->http));
        return CLI_EXIT_UNREACHABLE;
    }
    return 0;
}

int
cli_read_spec(const char *path, json_t **out)
{
    FILE        *f = NULL;
    strbuf       sb = {0};
    char         buf[65536];
    size_t       n;
    json_error_t jerr;
    int          rc = 0, from_stdin = strcmp(path, "-") == 0;
    const char  *label = from_stdin ? "<stdin>" : path;

    *out = NULL;
    f = from_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "sheaf: cannot read %s: %s\n", path, strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_append(&sb, buf, n);
    if (ferror(f)) {
        fprintf(stderr, "sheaf: cannot read %s: %s\n", label, strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    *out = json_loadb(sb.data ? sb.data : "", sb.len, 0, &jerr);
    if (*out == NULL) {
        fprintf(stderr, "sheaf: %s:%d:%d: not valid JSON: %s\n", label,
                jerr.line, jerr.column, jerr.text);
        rc = CLI_EXIT_USAGE;
    }

done:
    if (f != NULL && !from_stdin)
        fclose(f);
    sb_free(&sb);
    return rc;
}

int64_t
cli_json_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

const char *
cli_json_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : dflt;
}

void
cli_job_error(const json_t *job, strbuf *sb)
{
    const json_t *e = json_object_get(job, "error");
    const char   *key;
    const json_t *v;
    void         *it;
    char         *text;
    size_t        start = sb->len;

    if (json_is_string(e)) {
        report_put_clean(sb, json_string_value(e), 4096);
    } else if (json_is_object(e)) {
        if (json_is_string(json_object_get(e, "message")))
            report_put_clean(sb, cli_json_str(e, "message", ""), 4096);
        /* Whatever else the error names (code, partition, step...). */
        for (it = json_object_iter((json_t *)e); it != NULL;
             it = json_object_iter_next((json_t *)e, it)) {
            key = json_object_iter_key(it);
            v = json_object_iter_value(it);
            if (strcmp(key, "message") == 0 || json_is_null(v))
                continue;
            sb_printf(sb, "%s%s=", sb->len > start ? "; " : "", key);
            if (json_is_string(v)) {
                report_put_clean(sb, json_string_value(v), 512);
                continue;
            }
            text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            report_put_clean(sb, text ? text : "?", 512);
            free(text);
        }
    } else if (e != NULL && !json_is_null(e)) {
        text = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
        report_put_clean(sb, text ? text : "?", 4096);
        free(text);
    }
}

void
cli_job_summary(const json_t *job, strbuf *sb)
{
    const json_t *p = json_object_get(job, "progress");
    size_t        before;

    report_put_clean(sb, cli_json_str(job, "id", "?"), REPORT_ID_MAX);
    sb_putc(sb, ' ');
    report_put_clean(sb, cli_json_str(job, "status", "?"), 32);
    if (json_is_object(p))
        sb_printf(sb, " %lld/%lld partitions, %lld rows in, %lld rows out",
                  (long long)cli_json_int(p, "partitions_done"),
                  (long long)cli_json_int(p, "partitions_total"),
                  (long long)cli_json_int(p, "rows_in"),
                  (long long)cli_json_int(p, "rows_out"));
    sb_puts(sb, "; error: ");
    before = sb->len;
    cli_job_error(job, sb);
    if (sb->len == before) {
        sb->len -= strlen("; error: ");
        sb->data[sb->len] = '\0';
    }
}

char *
cli_job_path_id(const char *id)
{
    if (id[0] == '\0') {
        fprintf(stderr, "sheaf: the job id is empty (did the submit "
                        "fail?)\n");
        return NULL;
    }
    if (strlen(id) > REPORT_ID_MAX) {
        fprintf(stderr, "sheaf: '%.40s...' is too long for a job id\n", id);
        return NULL;
    }
    return http_escape(id);
}

int
cli_is_terminal(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0
           || strcmp(status, "cancelled") == 0;
}

void
cli_put_duration(strbuf *sb, int64_t ms)
{
    long long s = (long long)(ms / 1000);

    if (s < 60)
        sb_printf(sb, "%llds", s);
    else if (s < 3600)
        sb_printf(sb, "%lldm%02llds", s / 60, s % 60);
    else
        sb_printf(sb, "%lldh%02lldm", s / 3600, (s / 60) % 60);
}

void
cli_print_json(const json_t *j, size_t flags)
{
    char *text = json_dumps(j, flags | JSON_ENCODE_ANY);

    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

int
cli_live(const cli *c)
{
    return c->err_tty && c->args.val[OPT_QUIET] == NULL;
}

int
cli_term_cols(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0)
        return 0;
    return ws.ws_col;
}

void
cli_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void
cli_put_bar(strbuf *sb, uint64_t done, uint64_t total)
{
    int i, fill = total > 0
                      ? (int)((double)done * CLI_BAR_WIDTH / (double)total)
                      : 0;

    sb_putc(sb, '[');
    for (i = 0; i < CLI_BAR_WIDTH; i++)
        sb_putc(sb, i < fill ? '#' : '-');
    sb_puts(sb, "] ");
}
