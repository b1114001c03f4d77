/*
 * cli.h - what the files of the sheaf command line share: its exit codes,
 * the parsed command line, the context a command runs in, the helpers that
 * turn a server's reply into words and an exit code, and the commands.
 *
 * Nothing outside cli/ includes this file.
 */
#ifndef SHEAF_CLI_H
#define SHEAF_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "http.h"

#define CLI_VERSION     "0.1.0"
#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* Exit codes; 'sheaf --help' documents them and scripts rely on them. */
enum {
    CLI_EXIT_OK = 0,          /* success; the job succeeded */
    CLI_EXIT_JOB_FAILED = 1,  /* the job failed or was cancelled */
    CLI_EXIT_USAGE = 2,       /* bad arguments or an unreadable spec file */
    CLI_EXIT_REFUSED = 3,     /* the server refused the request (4xx, 501) */
    CLI_EXIT_UNREACHABLE = 4, /* no connection, a 5xx, or no reply in time */
    CLI_EXIT_TIMEOUT = 5,     /* --timeout passed; the job keeps running */
    CLI_EXIT_LOCAL = 6        /* a local file could not be written, or a
                                 download does not match its manifest */
};

/* The options, as indexes of cli_args.val. */
typedef enum cli_opt {
    OPT_URL,
    OPT_TOKEN,
    OPT_HELP,
    OPT_VERSION,
    OPT_NAME,
    OPT_WAIT,
    OPT_TIMEOUT,
    OPT_IDEM_KEY,
    OPT_OUTPUT,
    OPT_JSON,
    OPT_STATUS,
    OPT_LIMIT,
    OPT_ALL,
    OPT_QUIET,
    OPT_LAST_ID,
    OPT_COUNT
} cli_opt;

#define CLI_OPT_BIT(o) (1u << (o))
/* The options every command accepts. */
#define CLI_OPTS_GLOBAL \
    (CLI_OPT_BIT(OPT_URL) | CLI_OPT_BIT(OPT_TOKEN) | CLI_OPT_BIT(OPT_HELP))

#define CLI_POS_MAX 8 /* positional arguments kept */

/* A parsed command line; strings are borrowed from argv. An option not
 * given has a NULL value. */
typedef struct cli_args {
    const char *val[OPT_COUNT];   /* an option's value ("" for a flag) */
    const char *pos[CLI_POS_MAX]; /* the positional arguments */
    int         n_pos;            /* how many there are */
} cli_args;

/* What a command runs with. */
typedef struct cli {
    http_client *http;    /* talks to the server */
    cli_args     args;    /* the command line */
    int          err_tty; /* stderr is a terminal: show live progress */
} cli;

/* ---- args.c -------------------------------------------------------------- */

/*
 * Parse argv[*i...] into 'a', accepting the options in the bit mask
 * 'allowed'. With 'stop_at_word' set, stop at the first positional argument
 * (the command's name) and leave *i on it. Values are borrowed from argv.
 * Returns 0, or CLI_EXIT_USAGE after printing what is wrong; 'cmd' names
 * the command in that message (NULL: none yet).
 */
int cli_args_parse(int argc, char **argv, int *i, unsigned allowed,
                   int stop_at_word, cli_args *a, const char *cmd);

/*
 * Read a duration, "90", "1.5m", "2h", "500ms" (no unit: seconds), into
 * *out_ms. Returns 0, or CLI_EXIT_USAGE after printing what is wrong.
 */
int cli_parse_duration(const char *opt, const char *s, int64_t *out_ms);

/* Read a positive integer into *out. Returns 0 or CLI_EXIT_USAGE. */
int cli_parse_count(const char *opt, const char *s, long *out);

/* ---- report.c ------------------------------------------------------------ */

/*
 * Send 'rq' and expect a 2xx reply whose body, if any, is JSON. Returns 0
 * with the reply in 'rep' (the caller frees it with http_reply_free, also
 * on failure; rep->json is NULL for an empty body), or prints the
 * server's error, or why it could not be reached, and returns the exit
 * code that fits: CLI_EXIT_REFUSED or CLI_EXIT_UNREACHABLE.
 */
int cli_call(cli *c, const http_req *rq, http_reply *rep);

/*
 * Print the error of the non-2xx reply 'rep' ("sheaf: invalid_spec at
 * steps[1].where: unknown column 'x'") and return its exit code.
 */
int cli_fail_reply(const http_reply *rep);

/* Print a transport failure (HTTP_E* 'rc', message 'msg'); return its
 * exit code: CLI_EXIT_UNREACHABLE, CLI_EXIT_LOCAL when a download could not
 * be written, CLI_EXIT_USAGE when an upload could not be read. */
int cli_fail_transport(int rc, const char *msg);

/*
 * Read a job spec from 'path' ("-": stdin) and parse it. Returns 0 and
 * sets *out (the caller owns it), or CLI_EXIT_USAGE after printing where
 * the file is wrong.
 */
int cli_read_spec(const char *path, json_t **out);

/* The value of 'key' in 'obj' as an integer (0 when absent or null). */
int64_t cli_json_int(const json_t *obj, const char *key);

/* The value of 'key' in 'obj' as a string, or 'dflt'. Borrowed. */
const char *cli_json_str(const json_t *obj, const char *key, const char *dflt);

/*
 * Append the error of a job object to 'sb': its text when a string, its
 * message (and what else it names) when an object.
 */
void cli_job_error(const json_t *job, strbuf *sb);

/*
 * Append 'job's one-line summary to 'sb': "ID STATUS 9/16 partitions,
 * N rows in, M rows out" and the error, if any.
 */
void cli_job_summary(const json_t *job, strbuf *sb);

/* A job id, checked and escaped for a path. Returns NULL after printing
 * why when 'id' is empty or too long. The caller frees the result. */
char *cli_job_path_id(const char *id);

/* Non-zero when 'status' ends a job: succeeded, failed, cancelled. */
int cli_is_terminal(const char *status);

/* Append 'ms' as "42s", "3m05s" or "1h02m". */
void cli_put_duration(strbuf *sb, int64_t ms);

/* Print 'j' as JSON on stdout with the jansson 'flags', and a newline. */
void cli_print_json(const json_t *j, size_t flags);

/* Sleep 'ms' milliseconds (nothing when not positive), resuming after
 * signals. */
void cli_sleep_ms(int64_t ms);

#define CLI_BAR_WIDTH 20 /* characters between the brackets of a bar */

/* Append a bar "[#####---------------] " of 'done' out of 'total'. */
void cli_put_bar(strbuf *sb, uint64_t done, uint64_t total);

/* Non-zero when live progress goes to stderr: a terminal, no --quiet. */
int cli_live(const cli *c);

/* The width of the terminal on stderr in columns, or 0 when unknown. */
int cli_term_cols(void);

/* ---- events.c ------------------------------------------------------------ */

/*
 * Follow job 'id' on its event stream until it ends or 'deadline_ms'
 * (now_ms() clock; negative: none) passes, calling 'fn' with each
 * event's data that is a JSON object (borrowed) and 'ud'. Reconnects with
 * Last-Event-ID after a broken connection. Returns 0 when the job ended,
 * CLI_EXIT_TIMEOUT, or -1 when there is no event stream to follow (the
 * service answers 501, 404 or 405, or it broke too often): poll instead.
 */
int cli_follow_events(cli *c, const char *id, int64_t deadline_ms,
                      void (*fn)(void *ud, const json_t *data), void *ud);

/* ---- result.c ------------------------------------------------------------ */

/* The SHA-256 of the next 'len' bytes of 'f' into 'md', and as 64
 * lower-case hex digits into 'hex' unless NULL. Returns 0, or -1 when the
 * file ends first or cannot be read. */
int cli_sha256(FILE *f, uint64_t len, unsigned char md[32], char hex[65]);

/* ---- wait.c -------------------------------------------------------------- */

/*
 * Wait until the job 'id' is terminal or 'timeout_ms' passes (negative:
 * no limit), showing progress on stderr. Returns CLI_EXIT_OK when it
 * succeeded, CLI_EXIT_JOB_FAILED when it failed or was cancelled (the
 * error printed), CLI_EXIT_TIMEOUT, or the exit code of a request that
 * failed.
 */
int cli_wait_job(cli *c, const char *id, int64_t timeout_ms);

/*
 * Download the result of job 'id' to 'out' (written as 'out'.part, then
 * checked and renamed; an 'out'.part left by a broken download is resumed)
 * or, when 'out' is NULL or "-", to stdout. Returns an exit code. In
 * result.c.
 */
int cli_fetch_result(cli *c, const char *id, const char *out);

/* ---- jobs.c: the commands ------------------------------------------------ */

/* Each command returns its exit code. */
int cli_cmd_submit(cli *c);
int cli_cmd_status(cli *c);
int cli_cmd_wait(cli *c);
int cli_cmd_result(cli *c);
int cli_cmd_cancel(cli *c);
int cli_cmd_ls(cli *c);
int cli_cmd_validate(cli *c);
int cli_cmd_tasks(cli *c);
int cli_cmd_datasets(cli *c); /* datasets.c */
int cli_cmd_upload(cli *c);   /* datasets.c */
int cli_cmd_events(cli *c);   /* events.c */

#endif
