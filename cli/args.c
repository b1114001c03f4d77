/*
 * args.c - the command line of sheaf: options in GNU style ("--name N",
 * "--name=N", "-o FILE", "-oFILE", "--" ends the options, "-" is a word)
 * mixed freely with positional arguments, and the values options take.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One option of the table. */
typedef struct cli_opt_def {
    cli_opt     id;
    const char *name;    /* the long name, without "--" */
    char        letter;  /* the short name, or 0 */
    int         has_arg; /* it takes a value */
} cli_opt_def;

static const cli_opt_def cli_opt_defs[] = {
    {OPT_URL, "url", 0, 1},                  /* every command */
    {OPT_TOKEN, "token", 0, 1},              /* every command */
    {OPT_HELP, "help", 'h', 0},              /* every command */
    {OPT_VERSION, "version", 'V', 0},        /* before the command */
    {OPT_NAME, "name", 0, 1},                /* submit, ls, datasets */
    {OPT_WAIT, "wait", 0, 0},                /* submit */
    {OPT_TIMEOUT, "timeout", 0, 1},          /* submit, wait */
    {OPT_IDEM_KEY, "idempotency-key", 0, 1}, /* submit */
    {OPT_OUTPUT, "output", 'o', 1},          /* submit, result */
    {OPT_JSON, "json", 0, 0},                /* the commands that read */
    {OPT_STATUS, "status", 0, 1},            /* ls */
    {OPT_LIMIT, "limit", 0, 1},              /* ls */
    {OPT_ALL, "all", 0, 0},                  /* ls */
    {OPT_QUIET, "quiet", 'q', 0},            /* submit, wait, upload */
    {OPT_LAST_ID, "last-event-id", 0, 1},    /* events */
};

#define N_OPT_DEFS (sizeof cli_opt_defs / sizeof cli_opt_defs[0])

/* Print a usage error about 'cmd' and return CLI_EXIT_USAGE. */
static int
args_fail(const char *cmd, const char *fmt, const char *what)
{
    fprintf(stderr, "sheaf: ");
    fprintf(stderr, fmt, what);
    if (cmd != NULL)
        fprintf(stderr, " (see 'sheaf %s --help')\n", cmd);
    else
        fprintf(stderr, " (see 'sheaf --help')\n");
    return CLI_EXIT_USAGE;
}

/* The option called 'name' ('name_len' bytes) or with letter 'letter'. */
static const cli_opt_def *
args_find(const char *name, size_t name_len, char letter)
{
    size_t i;

    for (i = 0; i < N_OPT_DEFS; i++) {
        const cli_opt_def *d = &cli_opt_defs[i];

        if (name != NULL && strlen(d->name) == name_len
            && strncmp(d->name, name, name_len) == 0)
            return d;
        if (name == NULL && letter != 0 && d->letter == letter)
            return d;
    }
    return NULL;
}

int
cli_args_parse(int argc, char **argv, int *i, unsigned allowed,
               int stop_at_word, cli_args *a, const char *cmd)
{
    int only_words = 0;

    for (; *i < argc; (*i)++) {
        const char        *arg = argv[*i], *value = NULL, *eq;
        const cli_opt_def *d;

        if (only_words || arg[0] != '-' || arg[1] == '\0') {
            if (stop_at_word)
                return 0;
            if (a->n_pos >= CLI_POS_MAX)
                return args_fail(cmd, "too many arguments at '%s'", arg);
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_words = 1;
            continue;
        }
        if (arg[1] == '-') {
            eq = strchr(arg + 2, '=');
            d = args_find(arg + 2,
                          eq ? (size_t)(eq - arg - 2) : strlen(arg + 2), 0);
            if (d != NULL && eq != NULL) {
                if (!d->has_arg)
                    return args_fail(cmd, "option '%s' takes no value", arg);
                value = eq + 1;
            }
        } else {
            d = args_find(NULL, 0, arg[1]);
            if (d != NULL && arg[2] != '\0') {
                if (!d->has_arg)
                    return args_fail(cmd, "unknown option '%s'", arg);
                value = arg + 2;
            }
        }
        if (d == NULL || !(allowed & CLI_OPT_BIT(d->id)))
            return args_fail(cmd, "unknown option '%s'", arg);
        if (d->has_arg && value == NULL) {
            if (*i + 1 >= argc)
                return args_fail(cmd, "option '%s' needs a value", arg);
            value = argv[++*i];
        }
        a->val[d->id] = d->has_arg ? value : "";
    }
    return 0;
}

int
cli_parse_duration(const char *opt, const char *s, int64_t *out_ms)
{
    char  *end;
    double v, unit_ms = 1000;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0)
        goto bad;
    if (strcmp(end, "ms") == 0)
        unit_ms = 1;
    else if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        unit_ms = 1000;
    else if (strcmp(end, "m") == 0)
        unit_ms = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        unit_ms = 3600 * 1000;
    else
        goto bad;
    v *= unit_ms;
    if (!isfinite(v) || v < 0 || v > 1e15)
        goto bad;
    *out_ms = (int64_t)ceil(v);
    return 0;

bad:
    fprintf(stderr,
            "sheaf: %s wants a duration such as 90, 90s, 15m or "
            "2h, not '%s'\n",
            opt, s);
    return CLI_EXIT_USAGE;
}

int
cli_parse_count(const char *opt, const char *s, long *out)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v <= 0) {
        fprintf(stderr,
                "sheaf: %s wants a positive whole number, not "
                "'%s'\n",
                opt, s);
        return CLI_EXIT_USAGE;
    }
    *out = v;
    return 0;
}
