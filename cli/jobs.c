/*
 * jobs.c - the commands about jobs: submit, status, wait, cancel, ls,
 * tasks and validate (result is in result.c). Each reads its arguments from the
 * cli context, calls the HTTP API (SPEC section 3) and returns the exit code.
 *
 * stdout carries only what a script would capture (a job id, a table, a
 * result, JSON); everything said to a person goes to stderr.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBS_PLAN_ITEMS_MAX 50 /* elements of a plan's list shown */

/* The --timeout of the command line in ms, or -1 when not given. Returns
 * 0 or CLI_EXIT_USAGE. */
static int
jobs_timeout(const cli *c, int64_t *out_ms)
{
    *out_ms = -1;
    if (c->args.val[OPT_TIMEOUT] == NULL)
        return 0;
    return cli_parse_duration("--timeout", c->args.val[OPT_TIMEOUT], out_ms);
}

int
cli_cmd_submit(cli *c)
{
    const char *name = c->args.val[OPT_NAME];
    const char *key = c->args.val[OPT_IDEM_KEY];
    const char *out = c->args.val[OPT_OUTPUT];
    json_t     *spec = NULL;
    http_reply  rep = {0};
    http_req    rq = {.method = "POST", .path = "/v1/jobs"};
    int64_t     timeout_ms;
    const char *id;
    char       *id_copy = NULL;
    int         rc;

    if ((rc = jobs_timeout(c, &timeout_ms)) != 0)
        goto done;
    if (key != NULL && (key[0] == '\0' || strpbrk(key, "\r\n") != NULL)) {
        fprintf(stderr, "sheaf: --idempotency-key must be one non-empty "
                        "line\n");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (timeout_ms >= 0 && c->args.val[OPT_WAIT] == NULL && out == NULL) {
        fprintf(stderr, "sheaf: --timeout goes with --wait or -o\n");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (out != NULL && (out[0] == '\0' || strcmp(out, "-") == 0)) {
        fprintf(stderr, "sheaf: submit -o needs a file name (stdout carries "
                        "the job id; 'sheaf result ID' writes to stdout)\n");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if ((rc = cli_read_spec(c->args.pos[0], &spec)) != 0)
        goto done;
    if (name != NULL) {
        if (!json_is_object(spec)) {
            fprintf(stderr, "sheaf: --name needs a spec that is a JSON "
                            "object\n");
            rc = CLI_EXIT_USAGE;
            goto done;
        }
        if (json_object_set_new(spec, "name", json_string(name)) != 0) {
            fprintf(stderr, "sheaf: --name is not valid UTF-8\n");
            rc = CLI_EXIT_USAGE;
            goto done;
        }
    }
    rq.body = spec;
    rq.idem_key = key;
    rq.retry = key != NULL; /* the key makes a second POST harmless */
    if ((rc = cli_call(c, &rq, &rep)) != 0)
        goto done;
    id = cli_json_str(rep.json, "id", NULL);
    if (id == NULL || id[0] == '\0') {
        fprintf(stderr, "sheaf: the server's reply holds no job id\n");
        rc = CLI_EXIT_UNREACHABLE;
        goto done;
    }
    id_copy = xstrdup(id);
    if (c->args.val[OPT_JSON] == NULL)
        printf("%s\n", id_copy);
    else if (c->args.val[OPT_WAIT] == NULL && out == NULL)
        cli_print_json(rep.json, JSON_INDENT(2));
    fflush(stdout);
    if (rep.status == 200 && key != NULL && c->err_tty)
        fprintf(stderr, "sheaf: the job submitted before with this "
                        "idempotency key\n");
    if (c->args.val[OPT_WAIT] == NULL && out == NULL)
        goto done;
    rc = cli_wait_job(c, id_copy, timeout_ms);
    if (rc == CLI_EXIT_OK && out != NULL)
        rc = cli_fetch_result(c, id_copy, out);

done:
    http_reply_free(&rep);
    json_decref(spec);
    free(id_copy);
    return rc;
}

/* GET the job named by the first argument into 'rep'. Returns an exit
 * code. */
static int
jobs_get(cli *c, http_reply *rep)
{
    char    *eid = cli_job_path_id(c->args.pos[0]), *path;
    http_req rq = {.method = "GET", .retry = 1};
    int      rc;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    path = xasprintf("/v1/jobs/%s", eid);
    rq.path = path;
    rc = cli_call(c, &rq, rep);
    if (rc == 0 && !json_is_object(rep->json)) {
        fprintf(stderr, "sheaf: the server's reply is not a job\n");
        rc = CLI_EXIT_UNREACHABLE;
    }
    free(path);
    free(eid);
    return rc;
}

int
cli_cmd_status(cli *c)
{
    http_reply rep = {0};
    strbuf     sb = {0};
    int        rc;

    if ((rc = jobs_get(c, &rep)) != 0)
        goto done;
    if (c->args.val[OPT_JSON] != NULL) {
        cli_print_json(rep.json, JSON_INDENT(2));
    } else {
        cli_job_summary(rep.json, &sb);
        printf("%s\n", sb.data);
    }

done:
    sb_free(&sb);
    http_reply_free(&rep);
    return rc;
}

int
cli_cmd_wait(cli *c)
{
    int64_t timeout_ms;
    int     rc;

    if ((rc = jobs_timeout(c, &timeout_ms)) != 0)
        return rc;
    return cli_wait_job(c, c->args.pos[0], timeout_ms);
}

int
cli_cmd_cancel(cli *c)
{
    char      *eid = cli_job_path_id(c->args.pos[0]), *path;
    http_req   rq = {.method = "POST"};
    http_reply rep = {0};
    int        rc;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    path = xasprintf("/v1/jobs/%s/cancel", eid);
    rq.path = path;
    rc = cli_call(c, &rq, &rep);
    if (rc == 0)
        fprintf(stderr, "sheaf: job %s: cancel requested%s%s\n", c->args.pos[0],
                json_is_object(rep.json) ? "; status " : "",
                json_is_object(rep.json) ? cli_json_str(rep.json, "status", "?")
                                         : "");
    http_reply_free(&rep);
    free(path);
    free(eid);
    return rc;
}

/* Print one row of the job table. */
static void
jobs_ls_row(const json_t *job)
{
    const json_t *p = json_object_get(job, "progress");
    char          progress[48] = "-";
    strbuf        name = {0};
    const char   *s;

    if (json_is_object(p) && cli_json_int(p, "partitions_total") > 0)
        snprintf(progress, sizeof progress, "%lld/%lld",
                 (long long)cli_json_int(p, "partitions_done"),
                 (long long)cli_json_int(p, "partitions_total"));
    /* Names are the users' words: keep them on one line of the table. */
    for (s = cli_json_str(job, "name", ""); *s != '\0'; s++)
        sb_putc(&name, (unsigned char)*s < 0x20 ? ' ' : *s);
    printf("%-36s  %-9s  %-24s  %-8s  %s\n", cli_json_str(job, "id", "?"),
           cli_json_str(job, "status", "?"),
           cli_json_str(job, "created_at", "-"), progress,
           name.data ? name.data : "");
    sb_free(&name);
}

int
cli_cmd_ls(cli *c)
{
    const char   *status = c->args.val[OPT_STATUS];
    const char   *name = c->args.val[OPT_NAME];
    const char   *limit_s = c->args.val[OPT_LIMIT];
    int           all = c->args.val[OPT_ALL] != NULL;
    int           as_json = c->args.val[OPT_JSON] != NULL;
    long          limit = 0;
    char         *cursor = NULL, *v;
    strbuf        path = {0};
    http_reply    rep = {0};
    http_req      rq = {.method = "GET", .retry = 1};
    const json_t *jobs, *next;
    size_t        i;
    int           rc = 0, header = !as_json;

    if (limit_s != NULL
        && (rc = cli_parse_count("--limit", limit_s, &limit)) != 0)
        return rc;
    for (;;) {
        sb_reset(&path);
        sb_puts(&path, "/v1/jobs?");
        if (status != NULL) {
            v = http_escape(status);
            sb_printf(&path, "status=%s&", v);
            free(v);
        }
        if (name != NULL) {
            v = http_escape(name);
            sb_printf(&path, "name=%s&", v);
            free(v);
        }
        if (limit > 0)
            sb_printf(&path, "limit=%ld&", limit);
        if (cursor != NULL) {
            v = http_escape(cursor);
            sb_printf(&path, "cursor=%s&", v);
            free(v);
        }
        path.data[--path.len] = '\0'; /* the last '&' or the '?' */
        rq.path = path.data;
        http_reply_free(&rep);
        if ((rc = cli_call(c, &rq, &rep)) != 0)
            break;
        jobs = json_object_get(rep.json, "jobs");
        if (!json_is_array(jobs)) {
            fprintf(stderr, "sheaf: the server's job list has no 'jobs'\n");
            rc = CLI_EXIT_UNREACHABLE;
            break;
        }
        if (header)
            printf("%-36s  %-9s  %-24s  %-8s  %s\n", "ID", "STATUS", "CREATED",
                   "PROGRESS", "NAME");
        header = 0;
        for (i = 0; i < json_array_size(jobs); i++) {
            if (as_json)
                cli_print_json(json_array_get(jobs, i), JSON_COMPACT);
            else
                jobs_ls_row(json_array_get(jobs, i));
        }
        next = json_object_get(rep.json, "next_cursor");
        if (!json_is_string(next) || json_string_length(next) == 0)
            break;
        if (!all) {
            if (c->err_tty)
                fprintf(stderr, "sheaf: more jobs: --all lists them all\n");
            break;
        }
        if (cursor != NULL && strcmp(cursor, json_string_value(next)) == 0) {
            fprintf(stderr, "sheaf: the server gave the same cursor twice; "
                            "stopping\n");
            rc = CLI_EXIT_UNREACHABLE;
            break;
        }
        free(cursor);
        cursor = xstrdup(json_string_value(next));
        fflush(stdout);
    }
    http_reply_free(&rep);
    sb_free(&path);
    free(cursor);
    return rc;
}

/* Print one element of a plan's list, indented, as compact JSON. */
static void
jobs_plan_item(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    printf("  - %s\n", text ? text : "?");
    free(text);
}

/* Non-zero when 'v' is a non-empty array of {"name", "type"} objects: a
 * schema. */
static int
jobs_is_schema(const json_t *v)
{
    size_t        i;
    const json_t *col;

    if (!json_is_array(v) || json_array_size(v) == 0)
        return 0;
    for (i = 0; i < json_array_size(v); i++) {
        col = json_array_get(v, i);
        if (!json_is_string(json_object_get(col, "name"))
            || !json_is_string(json_object_get(col, "type")))
            return 0;
    }
    return 1;
}

/*
 * Print the plan 'plan' for a person: scalars as "key: value", a schema
 * as one column a line, other lists one element a line (the first
 * JOBS_PLAN_ITEMS_MAX), objects one member a line.
 */
static void
jobs_print_plan(const json_t *plan)
{
    void         *it, *sub;
    const char   *key;
    const json_t *v, *item;
    size_t        i, n;
    char         *text;

    if (!json_is_object(plan)) {
        cli_print_json(plan, JSON_INDENT(2));
        return;
    }
    for (it = json_object_iter((json_t *)plan); it != NULL;
         it = json_object_iter_next((json_t *)plan, it)) {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        n = json_array_size(v);
        if (jobs_is_schema(v)) {
            printf("%s:\n", key);
            for (i = 0; i < n; i++) {
                item = json_array_get(v, i);
                printf("  %-24s %s\n", cli_json_str(item, "name", ""),
                       cli_json_str(item, "type", ""));
            }
        } else if (json_is_array(v)) {
            printf("%s: %zu\n", key, n);
            for (i = 0; i < n && i < JOBS_PLAN_ITEMS_MAX; i++)
                jobs_plan_item(json_array_get(v, i));
            if (n > JOBS_PLAN_ITEMS_MAX)
                printf("  ... %zu more\n", n - JOBS_PLAN_ITEMS_MAX);
        } else if (json_is_object(v)) {
            printf("%s:\n", key);
            for (sub = json_object_iter((json_t *)v); sub != NULL;
                 sub = json_object_iter_next((json_t *)v, sub)) {
                text = json_dumps(json_object_iter_value(sub),
                                  JSON_COMPACT | JSON_ENCODE_ANY);
                printf("  %s: %s\n", json_object_iter_key(sub),
                       text ? text : "?");
                free(text);
            }
        } else if (json_is_string(v)) {
            printf("%s: %s\n", key, json_string_value(v));
        } else {
            text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%s: %s\n", key, text ? text : "?");
            free(text);
        }
    }
}

int
cli_cmd_validate(cli *c)
{
    json_t    *spec = NULL;
    http_reply rep = {0};
    http_req   rq = {.method = "POST", .path = "/v1/jobs/validate", .retry = 1};
    int        rc;

    if ((rc = cli_read_spec(c->args.pos[0], &spec)) != 0)
        goto done;
    rq.body = spec;
    if ((rc = cli_call(c, &rq, &rep)) != 0)
        goto done;
    if (c->args.val[OPT_JSON] != NULL)
        cli_print_json(rep.json, JSON_INDENT(2));
    else
        jobs_print_plan(rep.json);

done:
    http_reply_free(&rep);
    json_decref(spec);
    return rc;
}

/* Print one row of the task table. */
static void
jobs_tasks_row(const json_t *t)
{
    strbuf      err = {0};
    const char *e = cli_json_str(t, "error", "");
    const char *worker = cli_json_str(t, "worker", "-");

    /* Errors are the engine's words: keep them on one line. */
    for (; *e != '\0' && err.len < 200; e++)
        sb_putc(&err, (unsigned char)*e < 0x20 ? ' ' : *e);
    printf("%5lld %9lld  %-9s %8lld %12lld %12lld %14lld  %-16s %s\n",
           (long long)cli_json_int(t, "stage"),
           (long long)cli_json_int(t, "partition"),
           cli_json_str(t, "state", "?"),
           (long long)cli_json_int(t, "attempts"),
           (long long)cli_json_int(t, "rows_in"),
           (long long)cli_json_int(t, "rows_out"),
           (long long)cli_json_int(t, "bytes_in"), worker ? worker : "-",
           err.data ? err.data : "");
    sb_free(&err);
}

int
cli_cmd_tasks(cli *c)
{
    char         *eid = cli_job_path_id(c->args.pos[0]), *cursor = NULL, *v;
    int           as_json = c->args.val[OPT_JSON] != NULL;
    strbuf        path = {0};
    http_reply    rep = {0};
    http_req      rq = {.method = "GET", .retry = 1};
    const json_t *tasks, *next;
    size_t        i;
    int           rc = 0;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    if (!as_json)
        printf("%5s %9s  %-9s %8s %12s %12s %14s  %-16s %s\n", "STAGE",
               "PARTITION", "STATE", "ATTEMPTS", "ROWS_IN", "ROWS_OUT",
               "BYTES_IN", "WORKER", "ERROR");
    /* Pages, when the service pages the list (limit, cursor). */
    for (;;) {
        sb_reset(&path);
        sb_printf(&path, "/v1/jobs/%s/tasks", eid);
        if (cursor != NULL) {
            v = http_escape(cursor);
            sb_printf(&path, "?cursor=%s", v);
            free(v);
        }
        rq.path = path.data;
        http_reply_free(&rep);
        if ((rc = cli_call(c, &rq, &rep)) != 0)
            break;
        tasks = json_object_get(rep.json, "tasks");
        if (!json_is_array(tasks)) {
            fprintf(stderr, "sheaf: the server's task list has no "
                            "'tasks'\n");
            rc = CLI_EXIT_UNREACHABLE;
            break;
        }
        for (i = 0; i < json_array_size(tasks); i++) {
            if (as_json)
                cli_print_json(json_array_get(tasks, i), JSON_COMPACT);
            else
                jobs_tasks_row(json_array_get(tasks, i));
        }
        next = json_object_get(rep.json, "next_cursor");
        if (!json_is_string(next) || json_string_length(next) == 0
            || (cursor != NULL && strcmp(cursor, json_string_value(next)) == 0))
            break;
        free(cursor);
        cursor = xstrdup(json_string_value(next));
    }
    http_reply_free(&rep);
    sb_free(&path);
    free(cursor);
    free(eid);
    return rc;
}
