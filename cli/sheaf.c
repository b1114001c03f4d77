/*
 * sheaf.c - main of the sheaf command line: the table of commands, the
 * help texts (with the exit codes scripts rely on), the global options,
 * and the dispatch to a command.
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One command of the table. */
typedef struct cli_cmd {
    const char *name;
    int (*run)(cli *c);
    unsigned    opts;    /* the options it takes beyond the global ones */
    int         min_pos; /* positional arguments it needs */
    int         max_pos; /* ... and takes at most */
    const char *usage;   /* its synopsis, after "sheaf " */
    const char *help;    /* what it does and its options */
} cli_cmd;

#define B(o) CLI_OPT_BIT(o)

static const cli_cmd cli_cmds[] = {
    {"submit", cli_cmd_submit,
     B(OPT_NAME) | B(OPT_WAIT) | B(OPT_TIMEOUT) | B(OPT_IDEM_KEY)
         | B(OPT_OUTPUT) | B(OPT_QUIET) | B(OPT_JSON),
     1, 1,
     "submit SPEC.json|- [--name N] [--wait] [--timeout DURATION] "
     "[--idempotency-key K] [-o OUT] [--quiet] [--json]",
     "Submit the job spec in SPEC.json ('-': stdin) and print the job's id\n"
     "alone on stdout, so that ID=$(sheaf submit job.json) works.\n"
     "\n"
     "  --name N              use N as the job's name (overrides spec.name)\n"
     "  --wait                wait for the job to end; the exit status tells\n"
     "                        how it ended (see 'sheaf --help')\n"
     "  --timeout DURATION    stop waiting after DURATION (e.g. 90, 30m,\n"
     "                        2h; seconds without a unit) and exit 5; the\n"
     "                        job keeps running\n"
     "  --idempotency-key K   submitting again with the same K and spec gives\n"
     "                        the same job; this also lets sheaf retry the\n"
     "                        request on a connection error\n"
     "  -o, --output OUT      after the job succeeds, download its result to\n"
     "                        OUT (implies --wait; checked as 'sheaf result'\n"
     "                        checks it)\n"
     "  -q, --quiet           plain progress lines, also on a terminal\n"
     "  --json                print the job object instead of its id (the\n"
     "                        final one with --wait)\n"
     "\n"
     "While it waits, a terminal shows a live line: partitions done/total\n"
     "(per stage when known), rows, MB/s, elapsed time, ETA and the state,\n"
     "from the job's event stream (or polls where the service has none).\n"
     "Piped, or with --quiet, plain lines without control characters: one\n"
     "per change of state, and one at most every 30 s while it runs.\n"},
    {"status", cli_cmd_status, B(OPT_JSON), 1, 1, "status ID [--json]",
     "Print one line about the job: its status, partitions done, rows in and\n"
     "out, and its error if it failed. Exits 0 whenever it could ask.\n"
     "\n"
     "  --json   print the whole job object instead\n"},
    {"wait", cli_cmd_wait, B(OPT_TIMEOUT) | B(OPT_QUIET) | B(OPT_JSON), 1, 1,
     "wait ID [--timeout DURATION] [--quiet] [--json]",
     "Wait until the job ends and exit with its outcome: 0 succeeded, 1\n"
     "failed or cancelled (the error goes to stderr), 5 timed out.\n"
     "Progress goes to stderr: on a terminal a live line (partitions\n"
     "done/total, per stage when known, rows, MB/s, elapsed, ETA, the\n"
     "state) from the job's event stream, or from polls where the service\n"
     "has none; piped or with --quiet, plain lines without control\n"
     "characters: one per change of state, one at most every 30 s while it\n"
     "runs.\n"
     "\n"
     "  --timeout DURATION   stop waiting after DURATION (e.g. 90, 30m, 2h;\n"
     "                       seconds without a unit); the job keeps running\n"
     "  -q, --quiet          plain lines, also on a terminal\n"
     "  --json               print the final job object on stdout\n"},
    {"result", cli_cmd_result, B(OPT_OUTPUT), 1, 1, "result ID [-o FILE]",
     "Download the output of a succeeded job, streamed. With -o it is\n"
     "written to FILE.part, checked against the job's manifest (each\n"
     "part's SHA-256; where the service has no manifest, the result's\n"
     "length) and renamed to FILE once complete and right, so FILE is\n"
     "never half-written or wrong: a mismatch exits 6. A broken download\n"
     "is resumed with Range, also by running the same command again (the\n"
     ".part and its ETag in FILE.part.etag are kept). Without -o it goes\n"
     "to stdout. A job that has not succeeded is an error (exit 3).\n"
     "\n"
     "  -o, --output FILE   write to FILE ('-': stdout)\n"},
    {"cancel", cli_cmd_cancel, 0, 1, 1, "cancel ID",
     "Ask the service to stop the job; it ends 'cancelled'.\n"},
    {"tasks", cli_cmd_tasks, B(OPT_JSON), 1, 1, "tasks ID [--json]",
     "Print the job's tasks as a table, one per partition of each stage:\n"
     "stage, partition, state, attempts, rows in and out, bytes in, the\n"
     "worker and the error.\n"
     "\n"
     "  --json   one task object per line instead of the table\n"},
    {"events", cli_cmd_events, B(OPT_JSON) | B(OPT_LAST_ID), 1, 1,
     "events ID [--last-event-id N] [--json]",
     "Print the job's server-sent events (text/event-stream) as they come,\n"
     "until the job ends; a broken connection is resumed with\n"
     "Last-Event-ID.\n"
     "\n"
     "  --last-event-id N   start after event N (resume an earlier run)\n"
     "  --json              one JSON object per event: {id, event, data}\n"},
    {"upload", cli_cmd_upload, B(OPT_NAME) | B(OPT_QUIET) | B(OPT_JSON), 1, 1,
     "upload FILE [--name N] [--quiet] [--json]",
     "Upload FILE as a dataset, streamed, and print its id (a job's\n"
     "input.dataset names it). Its SHA-256 goes with it (Content-Digest)\n"
     "and is checked against the one the service stored. A terminal shows\n"
     "a byte bar: MB sent, MB/s, elapsed, ETA.\n"
     "\n"
     "  --name N     the dataset's name (default: FILE's base name)\n"
     "  -q, --quiet  no bar\n"
     "  --json       print the dataset object instead of its id\n"},
    {"ls", cli_cmd_ls,
     B(OPT_STATUS) | B(OPT_NAME) | B(OPT_LIMIT) | B(OPT_ALL) | B(OPT_JSON), 0,
     0, "ls [--status S] [--name N] [--limit N] [--all] [--json]",
     "List jobs, newest first: id, status, created, progress, name.\n"
     "\n"
     "  --status S   only jobs in status S (queued, running, succeeded,\n"
     "               failed, cancelled)\n"
     "  --name N     only jobs named N\n"
     "  --limit N    jobs per page (the server's default without)\n"
     "  --all        follow the pages to the end of the list\n"
     "  --json       one job object per line instead of the table\n"},
    {"validate", cli_cmd_validate, B(OPT_JSON), 1, 1,
     "validate SPEC.json|- [--json]",
     "Check a job spec without running it and print its plan: the schemas,\n"
     "the partitions and the stages. An invalid spec exits 3 and names the\n"
     "field at fault.\n"
     "\n"
     "  --json   print the plan as the server returned it\n"},
    {"datasets", cli_cmd_datasets, B(OPT_NAME) | B(OPT_JSON) | B(OPT_QUIET), 0,
     2, "datasets [ls | upload FILE [--name N] | show ID | rm ID]",
     "Manage uploaded datasets (a job's input.dataset names one).\n"
     "A service without datasets answers not_implemented (exit 3).\n"
     "\n"
     "  ls                        list them (the default; --json: one per\n"
     "                            line)\n"
     "  upload FILE [--name N]    as 'sheaf upload FILE'\n"
     "  show ID                   print one as JSON\n"
     "  rm ID                     remove one\n"},
};

#define N_CMDS (sizeof cli_cmds / sizeof cli_cmds[0])

static const char cli_exit_help[] =
    "exit status:\n"
    "  0  success; for submit --wait and wait: the job succeeded\n"
    "  1  the job failed or was cancelled (its error is printed on stderr)\n"
    "  2  usage error: bad arguments, or a spec file that cannot be read\n"
    "     or is not JSON\n"
    "  3  the server refused the request: an invalid spec, an unknown job,\n"
    "     a job in the wrong state, a bad token (HTTP 4xx, or 501)\n"
    "  4  the server could not be reached, failed (HTTP 5xx) or did not\n"
    "     answer in time\n"
    "  5  --timeout passed while waiting; the job is left running\n"
    "  6  a local file could not be written, or the downloaded result\n"
    "     does not match the job's manifest\n";

/* Print the general help on 'f'. */
static void
cli_usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: sheaf [--url URL] [--token TOKEN] COMMAND [ARGS...]\n"
               "\n"
               "Submit batch jobs to a sheaf service, follow them, and fetch\n"
               "their results.\n"
               "\n"
               "commands:\n");
    for (i = 0; i < N_CMDS; i++)
        fprintf(f, "  sheaf %s\n", cli_cmds[i].usage);
    fprintf(f,
            "  sheaf help [COMMAND]\n"
            "\n"
            "options (before or after the command):\n"
            "  --url URL       the service (env SHEAF_URL, default %s)\n"
            "  --token TOKEN   bearer token (env SHEAF_TOKEN)\n"
            "  -h, --help      this help; 'sheaf COMMAND --help' for one\n"
            "  -V, --version   print the version\n"
            "\n"
            "%s"
            "\n"
            "in CI, fail the build when the job fails:\n"
            "  ID=$(sheaf submit --wait job.json) && "
            "sheaf result \"$ID\" -o out.csv\n",
            CLI_DEFAULT_URL, cli_exit_help);
}

/* Print the help of 'cmd' on stdout. */
static void
cli_cmd_usage(const cli_cmd *cmd)
{
    printf("usage: sheaf %s\n\n%s\n"
           "  --url URL, --token TOKEN, -h/--help as for every command.\n"
           "\n%s",
           cmd->usage, cmd->help, cli_exit_help);
}

/* The command called 'name', or NULL. */
static const cli_cmd *
cli_find(const char *name)
{
    size_t i;

    for (i = 0; i < N_CMDS; i++)
        if (strcmp(cli_cmds[i].name, name) == 0)
            return &cli_cmds[i];
    return NULL;
}

/* Parse the command line into 'c' and pick the command. Returns -1 to
 * run *out, or an exit code when there is nothing to run. */
static int
cli_setup(int argc, char **argv, cli *c, const cli_cmd **out)
{
    const cli_cmd *cmd;
    const char    *name;
    int            i = 1, rc;

    rc = cli_args_parse(argc, argv, &i,
                        CLI_OPTS_GLOBAL | CLI_OPT_BIT(OPT_VERSION), 1, &c->args,
                        NULL);
    if (rc != 0)
        return rc;
    if (c->args.val[OPT_VERSION] != NULL) {
        printf("sheaf %s (libcurl %s, jansson %s)\n", CLI_VERSION,
               curl_version_info(CURLVERSION_NOW)->version, JANSSON_VERSION);
        return CLI_EXIT_OK;
    }
    if (i >= argc) {
        cli_usage(c->args.val[OPT_HELP] != NULL ? stdout : stderr);
        return c->args.val[OPT_HELP] != NULL ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    name = argv[i++];
    if (strcmp(name, "help") == 0) {
        if (i >= argc) {
            cli_usage(stdout);
            return CLI_EXIT_OK;
        }
        name = argv[i];
        c->args.val[OPT_HELP] = "";
    }
    cmd = cli_find(name);
    if (cmd == NULL) {
        fprintf(stderr, "sheaf: unknown command '%s' (see 'sheaf --help')\n",
                name);
        return CLI_EXIT_USAGE;
    }
    if (c->args.val[OPT_HELP] != NULL) {
        cli_cmd_usage(cmd);
        return CLI_EXIT_OK;
    }
    rc = cli_args_parse(argc, argv, &i, CLI_OPTS_GLOBAL | cmd->opts, 0,
                        &c->args, cmd->name);
    if (rc != 0)
        return rc;
    if (c->args.val[OPT_HELP] != NULL) {
        cli_cmd_usage(cmd);
        return CLI_EXIT_OK;
    }
    if (c->args.n_pos < cmd->min_pos || c->args.n_pos > cmd->max_pos) {
        fprintf(stderr, "sheaf: usage: sheaf %s (see 'sheaf %s --help')\n",
                cmd->usage, cmd->name);
        return CLI_EXIT_USAGE;
    }
    *out = cmd;
    return -1;
}

/*
 * The sheaf command line. Returns the exit codes 'sheaf --help' lists.
 */
int
main(int argc, char **argv)
{
    cli            c;
    const cli_cmd *cmd = NULL;
    const char    *url, *token;
    char           msg[HTTP_ERR_MAX];
    int            rc;

    memset(&c, 0, sizeof c);
    json_set_alloc_funcs(xmalloc, free);
    rc = cli_setup(argc, argv, &c, &cmd);
    if (rc >= 0)
        return rc;

    url = c.args.val[OPT_URL];
    if (url == NULL)
        url = getenv("SHEAF_URL");
    if (url == NULL || url[0] == '\0')
        url = CLI_DEFAULT_URL;
    token = c.args.val[OPT_TOKEN];
    if (token == NULL)
        token = getenv("SHEAF_TOKEN");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "sheaf: libcurl failed to start\n");
        return CLI_EXIT_UNREACHABLE;
    }
    c.http = http_client_new(url, token, msg);
    if (c.http == NULL) {
        fprintf(stderr, "sheaf: %s\n", msg);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    c.err_tty = isatty(STDERR_FILENO);
    rc = cmd->run(&c);

done:
    http_client_free(c.http);
    curl_global_cleanup();
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        perror("sheaf: writing stdout");
        rc = CLI_EXIT_LOCAL;
    }
    return rc;
}
