/*
 * datasets.c - the datasets command: list, upload, show and remove the
 * files uploaded to the service (POST/GET/DELETE /v1/datasets), and the
 * upload command. Uploads stream the file from disk (nothing is read into
 * memory whole), send its SHA-256 and show a byte bar on a terminal.
 */
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
            cli_print_json(d, JSON_COMPACT);
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

/* What an upload's byte bar shows. */
typedef struct upload_view {
    const char *name;     /* the file */
    int         live;     /* redraw a line on stderr */
    int64_t     start_ms; /* when sending began */
    int64_t     drawn_ms; /* when the line was last drawn, or -1 */
} upload_view;

/* Draw "upload NAME [#####-----] 12.3/45.6 MB, 10.2 MB/s, 3s, ETA 5s". */
static void
upload_draw(upload_view *v, uint64_t sent, uint64_t total)
{
    strbuf  sb = {0};
    int64_t el = now_ms() - v->start_ms;

    sb_printf(&sb, "upload %.40s ", v->name);
    cli_put_bar(&sb, total ? sent : 1, total ? total : 1);
    sb_printf(&sb, "%.1f/%.1f MB", (double)sent / 1e6, (double)total / 1e6);
    if (el > 0)
        sb_printf(&sb, ", %.1f MB/s", (double)sent / 1e3 / (double)el);
    sb_puts(&sb, ", ");
    cli_put_duration(&sb, el);
    if (sent > 0 && sent < total) {
        sb_puts(&sb, ", ETA ");
        cli_put_duration(&sb, (int64_t)((double)el * (double)(total - sent)
                                        / (double)sent));
    }
    fprintf(stderr, "\r\033[K%s", sb.data);
    fflush(stderr);
    sb_free(&sb);
}

/* http_progress_fn: redraw the bar at most ten times a second. */
static int
upload_progress(void *ud, uint64_t sent, uint64_t total)
{
    upload_view *v = ud;

    if (v->drawn_ms >= 0 && now_ms() - v->drawn_ms < 100 && sent < total)
        return 0;
    v->drawn_ms = now_ms();
    upload_draw(v, sent, total);
    return 0;
}

/* Upload FILE (streamed, its SHA-256 sent in Content-Digest and checked
 * against the one the service answers), print the new id, or the
 * dataset with --json. */
static int
datasets_upload(cli *c, const char *file)
{
    const char   *name = c->args.val[OPT_NAME];
    char          msg[HTTP_ERR_MAX], *copy = NULL, *ename = NULL, *path = NULL;
    char          hex[65], b64[48], *digest = NULL;
    unsigned char md[32];
    FILE         *f = NULL;
    struct stat   st;
    http_reply    rep = {0};
    upload_view   v = {.live = cli_live(c), .drawn_ms = -1};
    const char   *got;
    int           rc;

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
    /* Hashed first, so the service can refuse a body damaged on the way. */
    if (cli_sha256(f, (uint64_t)st.st_size, md, hex) != 0
        || fseeko(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "sheaf: cannot read %s: %s\n", file, strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)b64, md, 32);
    digest = xasprintf("Content-Digest: sha-256=:%s:", b64);
    ename = http_escape(name);
    path = xasprintf("/v1/datasets?name=%s", ename);
    v.name = name;
    v.start_ms = now_ms();
    rc = http_upload(c->http, path, f, (uint64_t)st.st_size,
                     "application/octet-stream", digest,
                     v.live ? upload_progress : NULL, &v, &rep, msg);
    if (v.drawn_ms >= 0) {
        upload_draw(&v, (uint64_t)st.st_size, (uint64_t)st.st_size);
        fputc('\n', stderr);
    }
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
    got = cli_json_str(rep.json, "sha256", NULL);
    if (got != NULL && strcasecmp(got, hex) != 0) {
        fprintf(stderr,
                "sheaf: the service stored SHA-256 %.64s, %s has "
                "%s\n",
                got, file, hex);
        rc = CLI_EXIT_UNREACHABLE;
        goto done;
    }
    if (c->args.val[OPT_JSON] != NULL)
        cli_print_json(rep.json, JSON_INDENT(2));
    else
        printf("%s\n", cli_json_str(rep.json, "id", NULL));
    if (cli_live(c))
        fprintf(stderr, "sheaf: uploaded %lld bytes as '%s' (sha256 %s)\n",
                (long long)cli_json_int(rep.json, "bytes"), name, hex);

done:
    if (f != NULL)
        fclose(f);
    http_reply_free(&rep);
    free(digest);
    free(path);
    free(ename);
    free(copy);
    return rc;
}

int
cli_cmd_upload(cli *c)
{
    return datasets_upload(c, c->args.pos[0]);
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
        cli_print_json(rep.json, JSON_INDENT(2));
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

    if (strcmp(sub, "ls") != 0 && strcmp(sub, "upload") != 0
        && strcmp(sub, "show") != 0 && strcmp(sub, "rm") != 0) {
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
