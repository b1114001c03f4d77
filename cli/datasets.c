/*
 * datasets.c - the datasets command: list, upload, show and remove the
 * files uploaded to the service (POST/GET/DELETE /v1/datasets). Uploads
 * stream the file from disk; nothing is read into memory whole.
 */
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Print 'j' as JSON on stdout with 'flags'. */
static void
datasets_print_json(const json_t *j, size_t flags)
{
    char *text = json_dumps(j, flags | JSON_ENCODE_ANY);

    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

/* datasets ls: a table, or one JSON object a line with --json. */
static int
datasets_ls(cli *c)
{
    http_req      rq = {.method = "GET", .path = "/v1/datasets", .retry = 1};
    http_reply    rep = {0};
    const json_t *list, *d;
    size_t        i;
    int           rc;

    if ((rc = cli_call(c, &rq, &rep)) != 0)
        goto done;
    list = json_is_array(rep.json) ? rep.json
                                   : json_object_get(rep.json, "datasets");
    if (!json_is_array(list)) {
        fprintf(stderr, "sheaf: the server's dataset list has no "
                        "'datasets'\n");
        rc = CLI_EXIT_UNREACHABLE;
        goto done;
    }
    if (c->args.val[OPT_JSON] == NULL)
        printf("%-36s  %12s  %-24s  %s\n", "ID", "BYTES", "CREATED", "NAME");
    for (i = 0; i < json_array_size(list); i++) {
        d = json_array_get(list, i);
        if (c->args.val[OPT_JSON] != NULL)
            datasets_print_json(d, JSON_COMPACT);
        else
            printf("%-36s  %12lld  %-24s  %s\n", cli_json_str(d, "id", "?"),
                   (long long)cli_json_int(d, "bytes"),
                   cli_json_str(d, "created_at", "-"),
                   cli_json_str(d, "name", ""));
    }

done:
    http_reply_free(&rep);
    return rc;
}

/* datasets upload FILE [--name N]: stream FILE, print the new id. */
static int
datasets_upload(cli *c, const char *file)
{
    const char *name = c->args.val[OPT_NAME];
    char        msg[HTTP_ERR_MAX], *copy = NULL, *ename = NULL, *path = NULL;
    FILE       *f = NULL;
    struct stat st;
    http_reply  rep = {0};
    int         rc;

    f = fopen(file, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "sheaf: cannot read %s: %s\n", file, strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "sheaf: %s is not a regular file\n", file);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (name == NULL) {
        copy = xstrdup(file);
        name = basename(copy);
    }
    ename = http_escape(name);
    path = xasprintf("/v1/datasets?name=%s", ename);
    rc = http_upload(c->http, path, f, (uint64_t)st.st_size,
                     "application/octet-stream", &rep, msg);
    if (rc != HTTP_OK) {
        rc = cli_fail_transport(rc, msg);
        goto done;
    }
    if (rep.status < 200 || rep.status >= 300) {
        rc = cli_fail_reply(&rep);
        goto done;
    }
    if (cli_json_str(rep.json, "id", NULL) == NULL) {
        fprintf(stderr, "sheaf: the server's reply holds no dataset id\n");
        rc = CLI_EXIT_UNREACHABLE;
        goto done;
    }
    printf("%s\n", cli_json_str(rep.json, "id", NULL));
    if (c->err_tty)
        fprintf(stderr, "sheaf: uploaded %lld bytes as '%s' (sha256 %s)\n",
                (long long)cli_json_int(rep.json, "bytes"), name,
                cli_json_str(rep.json, "sha256", "?"));

done:
    if (f != NULL)
        fclose(f);
    http_reply_free(&rep);
    free(path);
    free(ename);
    free(copy);
    return rc;
}

/* datasets show ID / rm ID: GET or DELETE /v1/datasets/ID. */
static int
datasets_one(cli *c, const char *method, const char *id)
{
    char      *eid, *path;
    http_req   rq = {.method = method, .retry = strcmp(method, "GET") == 0};
    http_reply rep = {0};
    int        rc;

    if (id[0] == '\0') {
        fprintf(stderr, "sheaf: the dataset id is empty\n");
        return CLI_EXIT_USAGE;
    }
    eid = http_escape(id);
    path = xasprintf("/v1/datasets/%s", eid);
    rq.path = path;
    rc = cli_call(c, &rq, &rep);
    if (rc == 0 && strcmp(method, "GET") == 0)
        datasets_print_json(rep.json, JSON_INDENT(2));
    else if (rc == 0)
        fprintf(stderr, "sheaf: dataset %s removed\n", id);
    http_reply_free(&rep);
    free(path);
    free(eid);
    return rc;
}

int
cli_cmd_datasets(cli *c)
{
    const char *sub = c->args.n_pos > 0 ? c->args.pos[0] : "ls";
    int         n_args = c->args.n_pos > 0 ? c->args.n_pos - 1 : 0;
    int         want = strcmp(sub, "ls") == 0 ? 0 : 1;

    if (strcmp(sub, "ls") != 0 && strcmp(sub, "upload") != 0 &&
        strcmp(sub, "show") != 0 && strcmp(sub, "rm") != 0) {
        fprintf(stderr,
                "sheaf: unknown datasets command '%s' (see 'sheaf "
                "datasets --help')\n",
                sub);
        return CLI_EXIT_USAGE;
    }
    if (n_args != want) {
        fprintf(stderr,
                "sheaf: datasets %s takes %s (see 'sheaf datasets "
                "--help')\n",
                sub,
                want ? (strcmp(sub, "upload") == 0 ? "a FILE" : "an ID")
                     : "no arguments");
        return CLI_EXIT_USAGE;
    }
    if (c->args.val[OPT_NAME] != NULL && strcmp(sub, "upload") != 0) {
        fprintf(stderr, "sheaf: --name goes with 'datasets upload'\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(sub, "ls") == 0)
        return datasets_ls(c);
    if (strcmp(sub, "upload") == 0)
        return datasets_upload(c, c->args.pos[1]);
    if (strcmp(sub, "show") == 0)
        return datasets_one(c, "GET", c->args.pos[1]);
    return datasets_one(c, "DELETE", c->args.pos[1]);
}
