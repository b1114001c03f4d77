/*
 * plan.c - the job spec (SPEC section 2) checked field by field and turned
 * into a plan; the plan's stored resolution and its description.
 *
 * plan_build and plan_load share one function, plan_make: the spec is
 * checked and its steps compiled the same way in both; only where the
 * files, the schema and the partitions come from differs (the disk at
 * submission, the stored resolution in a worker). So a spec means the same
 * thing at submission and at run time.
 *
 * Checking is strict: an unknown field anywhere is an error naming its JSON
 * path, so a typo ("stpes", "wher") is never silently ignored. A JSON null
 * stands for an absent optional field.
 */
#include "plan.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan_int.h"
#include "util.h"

#define DEFAULT_PARTITION_BYTES (64ull << 20)
#define MAX_PARTITION_BYTES     (1ull << 50)

static const char *const top_fields[] = {
    "name", "input", "steps", "output", "max_attempts", "timeout_s",
    "priority", "retention_s", "callback", NULL};
static const char *const input_fields[] = {
    "path", "dataset", "format", "csv", "columns", "partition_size",
    "on_error", NULL};
static const char *const csv_fields[] = {"header", "delimiter", "quote",
                                         NULL};
static const char *const output_fields[] = {"format", "compression", NULL};
static const char *const callback_fields[] = {"url", "secret", NULL};
static const char *const filter_fields[] = {"op", "where", NULL};
static const char *const select_fields[] = {"op", "columns", NULL};
static const char *const derive_fields[] = {"op", "as", "expr", NULL};

/* Every op of SPEC section 2; the first N_OPS_DONE are implemented. */
static const char *const all_ops[] = {
    "filter", "select", "derive", "tokenize", "groupby", "aggregate",
    "distinct", "sort", "limit", "join", "train_naive_bayes",
    "predict_naive_bayes", NULL};
#define N_OPS_DONE 3

static const char *const type_names[] = {"int", "float", "string", "bool",
                                         NULL};

/* ---- small helpers ---------------------------------------------------- */

/* printf a JSON path into 'buf' (cut short if it is too long). */
static void __attribute__((format(printf, 2, 3)))
path_fmt(char buf[SH_ERR_PATH_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, SH_ERR_PATH_MAX, fmt, ap);
    va_end(ap);
}

/* 'base.key' (or 'key' when base is empty) into 'buf'. */
static void
path_join(char buf[SH_ERR_PATH_MAX], const char *base, const char *key)
{
    if (base == NULL || base[0] == '\0')
        path_fmt(buf, "%s", key);
    else
        path_fmt(buf, "%s.%s", base, key);
}

/* Index of 'word' in the NULL-terminated 'list', or -1. */
static int
list_find(const char *const *list, const char *word)
{
    int i;

    for (i = 0; list[i]; i++) {
        if (strcmp(list[i], word) == 0)
            return i;
    }
    return -1;
}

/* 'list' joined by ", " into 'sb'. */
static void
list_join(const char *const *list, strbuf *sb)
{
    int i;

    for (i = 0; list[i]; i++) {
        if (i > 0)
            sb_puts(sb, ", ");
        sb_puts(sb, list[i]);
    }
}

/* Levenshtein distance, capped: long words count as far apart. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The word of 'list' closest to 'word' when it is a likely typo, or NULL. */
static const char *
suggest(const char *word, const char *const *list)
{
    const char *best = NULL;
    size_t      best_d = 3, d;
    int         i;

    for (i = 0; list[i]; i++) {
        d = edit_distance(word, list[i]);
        if (d < best_d && d < strlen(list[i])) {
            best = list[i];
            best_d = d;
        }
    }
    return best;
}

/* obj[key], or NULL when absent or null. */
static json_t *
opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_null(v) ? NULL : v;
}

/* Refuse any key of 'obj' that is not in 'allowed'. */
static int
check_keys(json_t *obj, const char *base, const char *const *allowed,
           const char *what, sh_err *err)
{
    const char *key, *hint;
    json_t     *v;
    char        path[SH_ERR_PATH_MAX];
    strbuf      sb = {0};

    json_object_foreach(obj, key, v) {
        if (list_find(allowed, key) >= 0)
            continue;
        path_join(path, base, key);
        hint = suggest(key, allowed);
        if (hint) {
            sh_err_set(err, SH_EINVAL, path,
                       "unknown field '%s' in %s; did you mean '%s'?", key,
                       what, hint);
        } else {
            list_join(allowed, &sb);
            sh_err_set(err, SH_EINVAL, path,
                       "unknown field '%s' in %s; fields are: %s", key, what,
                       sb.data);
            sb_free(&sb);
        }
        return SH_EINVAL;
    }
    return 0;
}

/*
 * obj[key] as a string: *out is NULL when absent (an error when
 * 'required'). 'hint' ends the message of a missing or mistyped field.
 */
static int
get_string(json_t *obj, const char *key, const char *base, int required,
           const char *hint, const char **out, sh_err *err)
{
    json_t *v = opt(obj, key);
    char    path[SH_ERR_PATH_MAX];

    *out = NULL;
    path_join(path, base, key);
    if (v == NULL) {
        if (!required)
            return 0;
        return sh_err_set(err, SH_EINVAL, path, "'%s' is required: %s", key,
                          hint);
    }
    if (!json_is_string(v)) {
        return sh_err_set(err, SH_EINVAL, path, "'%s' must be a string: %s",
                          key, hint);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' must not contain a NUL character", key);
    }
    *out = json_string_value(v);
    return 0;
}

/* obj[key] as an integer in [lo, hi], or 'def' when absent. */
static int
get_int(json_t *obj, const char *key, const char *base, long long lo,
        long long hi, long long def, long long *out, sh_err *err)
{
    json_t   *v = opt(obj, key);
    char      path[SH_ERR_PATH_MAX];
    char      range[96];
    long long n;

    *out = def;
    if (v == NULL)
        return 0;
    path_join(path, base, key);
    if (hi >= INT_MAX)
        snprintf(range, sizeof range, "an integer >= %lld", lo);
    else
        snprintf(range, sizeof range, "an integer from %lld to %lld", lo, hi);
    if (!json_is_integer(v))
        return sh_err_set(err, SH_EINVAL, path, "'%s' must be %s", key, range);
    n = json_integer_value(v);
    if (n < lo || n > hi) {
        return sh_err_set(err, SH_EINVAL, path, "'%s' must be %s, got %lld",
                          key, range, n);
    }
    *out = n;
    return 0;
}

/* obj[key] as one of the words of 'choices' (index in *out), or 'def'. */
static int
get_choice(json_t *obj, const char *key, const char *base,
           const char *const *choices, int def, int *out, sh_err *err)
{
    const char *s;
    char        path[SH_ERR_PATH_MAX];
    strbuf      sb = {0};
    int         rc;

    *out = def;
    list_join(choices, &sb);
    rc = get_string(obj, key, base, 0, sb.data, &s, err);
    if (rc == 0 && s != NULL) {
        *out = list_find(choices, s);
        if (*out < 0) {
            path_join(path, base, key);
            rc = sh_err_set(err, SH_EINVAL, path,
                            "unknown %s '%s'; choose one of: %s", key, s,
                            sb.data);
        }
    }
    sb_free(&sb);
    return rc;
}

/* obj[key] as a one-byte character that is not a line end. */
static int
get_char(json_t *obj, const char *key, const char *base, char def,
         char *out, sh_err *err)
{
    const char *s;
    char        path[SH_ERR_PATH_MAX];
    int         rc;

    *out = def;
    rc = get_string(obj, key, base, 0, "give one character", &s, err);
    if (rc != 0 || s == NULL)
        return rc;
    path_join(path, base, key);
    if (strlen(s) != 1 || (unsigned char)s[0] >= 0x80) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' must be exactly one (ASCII) character, got "
                          "'%s'", key, s);
    }
    if (s[0] == '\r' || s[0] == '\n') {
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' cannot be a line end (CR or LF)", key);
    }
    *out = s[0];
    return 0;
}

/*
 * Parse a byte size: an integer, or a number with a unit as Dask writes
 * them: B, KB/MB/GB/TB (powers of 1000, also K/M/G/T), KiB/MiB/GiB/TiB
 * (powers of 1024, also Ki/Mi/Gi/Ti), any case. Returns 0 or -1.
 */
static int
parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        double      mult;
    } units[] = {
        {"", 1},     {"b", 1},
        {"k", 1e3},  {"kb", 1e3},  {"m", 1e6},   {"mb", 1e6},
        {"g", 1e9},  {"gb", 1e9},  {"t", 1e12},  {"tb", 1e12},
        {"ki", 1024.0},            {"kib", 1024.0},
        {"mi", 1048576.0},         {"mib", 1048576.0},
        {"gi", 1073741824.0},      {"gib", 1073741824.0},
        {"ti", 1099511627776.0},   {"tib", 1099511627776.0},
    };
    const char *p = s, *num_end;
    double      num, total;
    size_t      i, digits = 0;
    char       *end;

    while (*p == ' ')
        p++;
    num_end = p;
    while (*num_end >= '0' && *num_end <= '9') {
        num_end++;
        digits++;
    }
    if (*num_end == '.') {
        num_end++;
        while (*num_end >= '0' && *num_end <= '9') {
            num_end++;
            digits++;
        }
    }
    if (digits == 0)
        return -1;
    num = strtod(p, &end);
    if (end != num_end)
        return -1;
    while (*end == ' ')
        end++;
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        const char *u = units[i].unit;
        size_t      n = strlen(u);

        if (strlen(end) == n && strncasecmp(end, u, n) == 0)
            break;
    }
    if (i == sizeof units / sizeof units[0])
        return -1;
    total = floor(num * units[i].mult);
    if (!(total >= 1) || total > (double)MAX_PARTITION_BYTES)
        return -1;
    *out = (uint64_t)total;
    return 0;
}

static const char *
op_name(plan_op op)
{
    return all_ops[op];
}

/* ---- the parts of the spec -------------------------------------------- */

/* name, max_attempts, timeout_s, priority, retention_s, callback. */
static int
parse_options(plan *p, json_t *spec, sh_err *err)
{
    const char *name, *url, *secret;
    json_t     *cb;
    long long   n;
    int         rc;

    rc = get_string(spec, "name", "", 0, "a name for people to read", &name,
                    err);
    if (rc != 0)
        return rc;
    p->name = xstrdup(name ? name : "");
    if ((rc = get_int(spec, "max_attempts", "", 1, 100, 3, &n, err)) != 0)
        return rc;
    p->max_attempts = (int)n;
    if ((rc = get_int(spec, "timeout_s", "", 0, INT_MAX, 0, &n, err)) != 0)
        return rc;
    p->timeout_s = (int)n;
    if ((rc = get_int(spec, "priority", "", -1000, 1000, 0, &n, err)) != 0)
        return rc;
    p->priority = (int)n;
    rc = get_int(spec, "retention_s", "", 0, LLONG_MAX, 604800, &n, err);
    if (rc != 0)
        return rc;
    p->retention_s = n;

    cb = opt(spec, "callback");
    if (cb == NULL)
        return 0;
    if (!json_is_object(cb)) {
        return sh_err_set(err, SH_EINVAL, "callback",
                          "'callback' must be an object: {\"url\": "
                          "\"https://...\", \"secret\": \"...\"}");
    }
    if ((rc = check_keys(cb, "callback", callback_fields, "callback",
                         err)) != 0)
        return rc;
    rc = get_string(cb, "url", "callback", 1, "an http:// or https:// URL",
                    &url, err);
    if (rc != 0)
        return rc;
    if ((strncmp(url, "http://", 7) != 0 || url[7] == '\0'
         || url[7] == '/')
        && (strncmp(url, "https://", 8) != 0 || url[8] == '\0'
            || url[8] == '/')) {
        return sh_err_set(err, SH_EINVAL, "callback.url",
                          "callback URL '%s' must start with http:// or "
                          "https:// and name a host", url);
    }
    if (strpbrk(url, " \t\r\n") != NULL) {
        return sh_err_set(err, SH_EINVAL, "callback.url",
                          "callback URL must not contain spaces or line "
                          "ends");
    }
    return get_string(cb, "secret", "callback", 0,
                      "the key that signs the callback", &secret, err);
}

/* output: format and compression. */
static int
parse_output(plan *p, json_t *spec, sh_err *err)
{
    static const char *const formats[] = {"csv", "jsonl", NULL};
    static const char *const compressions[] = {"none", "gzip", NULL};
    json_t *o = opt(spec, "output");
    int     fmt, gz, rc;

    p->out_format = FMT_CSV;
    if (o == NULL)
        return 0;
    if (!json_is_object(o)) {
        return sh_err_set(err, SH_EINVAL, "output",
                          "'output' must be an object like {\"format\": "
                          "\"csv\", \"compression\": \"gzip\"}");
    }
    if ((rc = check_keys(o, "output", output_fields, "output", err)) != 0)
        return rc;
    if ((rc = get_choice(o, "format", "output", formats, 0, &fmt, err)))
        return rc;
    if ((rc = get_choice(o, "compression", "output", compressions, 0, &gz,
                         err)))
        return rc;
    p->out_format = fmt == 0 ? FMT_CSV : FMT_JSONL;
    p->out_gzip = gz == 1;
    return 0;
}

/* input.csv: header, delimiter, quote. */
static int
parse_csv_dialect(plan *p, json_t *in, sh_err *err)
{
    json_t *c = opt(in, "csv"), *h;
    int     rc;

    p->dialect.delim = ',';
    p->dialect.quote = '"';
    p->dialect.header = 1;
    if (c == NULL)
        return 0;
    if (!json_is_object(c)) {
        return sh_err_set(err, SH_EINVAL, "input.csv",
                          "'csv' must be an object like {\"header\": true, "
                          "\"delimiter\": \",\", \"quote\": \"\\\"\"}");
    }
    if ((rc = check_keys(c, "input.csv", csv_fields, "input.csv", err)))
        return rc;
    h = opt(c, "header");
    if (h != NULL) {
        if (!json_is_boolean(h)) {
            return sh_err_set(err, SH_EINVAL, "input.csv.header",
                              "'header' must be true or false");
        }
        p->dialect.header = json_is_true(h);
    }
    if ((rc = get_char(c, "delimiter", "input.csv", ',', &p->dialect.delim,
                       err)))
        return rc;
    if ((rc = get_char(c, "quote", "input.csv", '"', &p->dialect.quote,
                       err)))
        return rc;
    if (p->dialect.delim == p->dialect.quote) {
        return sh_err_set(err, SH_EINVAL, "input.csv.quote",
                          "the quote character must differ from the "
                          "delimiter ('%c')", p->dialect.delim);
    }
    return 0;
}

/* input.columns: check the types now, the names once the schema is known. */
static int
check_column_types(json_t *in, sh_err *err)
{
    json_t     *cols = opt(in, "columns"), *v;
    const char *key;
    char        path[SH_ERR_PATH_MAX];

    if (cols == NULL)
        return 0;
    if (!json_is_object(cols)) {
        return sh_err_set(err, SH_EINVAL, "input.columns",
                          "'columns' must be an object of column types, "
                          "like {\"year\": \"int\"}");
    }
    json_object_foreach(cols, key, v) {
        path_join(path, "input.columns", key);
        if (!json_is_string(v) || list_find(type_names,
                                            json_string_value(v)) < 0) {
            return sh_err_set(err, SH_EINVAL, path,
                              "bad type %s%s%s for column '%s'; types are: "
                              "int, float, string, bool",
                              json_is_string(v) ? "'" : "",
                              json_is_string(v) ? json_string_value(v)
                                                : "(not a string)",
                              json_is_string(v) ? "'" : "", key);
        }
    }
    return 0;
}

/* input: everything that can be checked without reading files. */
static int
parse_input(plan *p, json_t *spec, const char **pattern, size_t *len,
            sh_err *err)
{
    static const char *const formats[] = {"csv", "jsonl", "lines", NULL};
    static const char *const on_errors[] = {"fail", "skip", NULL};
    json_t     *in = opt(spec, "input"), *ps, *path_v;
    const char *dataset, *path;
    int         fmt, on_error, rc;

    if (in == NULL) {
        return sh_err_set(err, SH_EINVAL, "input",
                          "'input' is required: {\"path\": \"data/*.csv\"}");
    }
    if (!json_is_object(in)) {
        return sh_err_set(err, SH_EINVAL, "input",
                          "'input' must be an object like {\"path\": "
                          "\"data/*.csv\"}");
    }
    if ((rc = check_keys(in, "input", input_fields, "input", err)) != 0)
        return rc;

    rc = get_string(in, "path", "input", 0,
                    "a file or glob under the data root", &path, err);
    if (rc != 0)
        return rc;
    rc = get_string(in, "dataset", "input", 0, "an uploaded dataset's id",
                    &dataset, err);
    if (rc != 0)
        return rc;
    if (path && dataset) {
        return sh_err_set(err, SH_EINVAL, "input",
                          "give either input.path or input.dataset, not "
                          "both");
    }
    if (dataset) {
        return sh_err_set(err, SH_EINVAL, "input.dataset",
                          "uploaded datasets are not supported yet; give "
                          "input.path, a file or glob under the data root");
    }
    if (path == NULL) {
        /* A path with a NUL was refused above; "" is checked later. */
        return sh_err_set(err, SH_EINVAL, "input.path",
                          "'path' is required: a file or glob under the "
                          "data root, like 'logs/*.csv'");
    }
    path_v = json_object_get(in, "path");
    *pattern = path;
    *len = json_string_length(path_v);

    if ((rc = get_choice(in, "format", "input", formats, 0, &fmt, err)))
        return rc;
    if (fmt != 0) {
        return sh_err_set(err, SH_EINVAL, "input.format",
                          "input format '%s' is not supported yet; use "
                          "'csv'", formats[fmt]);
    }
    p->in_format = FMT_CSV;
    if ((rc = parse_csv_dialect(p, in, err)) != 0)
        return rc;
    if ((rc = check_column_types(in, err)) != 0)
        return rc;

    p->partition_bytes = DEFAULT_PARTITION_BYTES;
    ps = opt(in, "partition_size");
    if (ps != NULL) {
        if (json_is_integer(ps) && json_integer_value(ps) >= 1
            && (uint64_t)json_integer_value(ps) <= MAX_PARTITION_BYTES) {
            p->partition_bytes = (uint64_t)json_integer_value(ps);
        } else if (!json_is_string(ps)
                   || parse_size(json_string_value(ps),
                                 &p->partition_bytes) != 0) {
            return sh_err_set(err, SH_EINVAL, "input.partition_size",
                              "bad partition_size%s%s%s; give a number of "
                              "bytes >= 1 or a size like '64MiB' (units B, "
                              "KB, MB, GB: powers of 1000; KiB, MiB, GiB: "
                              "powers of 1024)",
                              json_is_string(ps) ? " '" : "",
                              json_is_string(ps) ? json_string_value(ps)
                                                 : "",
                              json_is_string(ps) ? "'" : "");
        }
    }
    if ((rc = get_choice(in, "on_error", "input", on_errors, 0, &on_error,
                         err)))
        return rc;
    p->on_error_skip = on_error == 1;
    return 0;
}

/* steps: the shape of every step, before the input is read. */
static int
check_steps(plan *p, json_t *spec, sh_err *err)
{
    static const char *const *const fields[] = {filter_fields,
                                                select_fields, derive_fields};
    static const char *const what[] = {"a filter step", "a select step",
                                       "a derive step"};
    json_t *steps = opt(spec, "steps"), *st, *op_v, *cols;
    char    path[SH_ERR_PATH_MAX], cpath[SH_ERR_PATH_MAX];
    strbuf  sb = {0};
    size_t  i, j;
    int     op, rc = 0;

    if (steps == NULL)
        return 0;
    if (!json_is_array(steps)) {
        return sh_err_set(err, SH_EINVAL, "steps",
                          "'steps' must be an array of steps like "
                          "{\"op\": \"filter\", \"where\": \"x > 1\"}");
    }
    p->n_steps = json_array_size(steps);
    p->steps = xcalloc(p->n_steps ? p->n_steps : 1, sizeof *p->steps);
    list_join(all_ops, &sb);
    json_array_foreach(steps, i, st) {
        plan_step  *s = &p->steps[i];
        const char *src, *hint;

        snprintf(s->path, sizeof s->path, "steps[%zu]", i);
        if (!json_is_object(st)) {
            rc = sh_err_set(err, SH_EINVAL, s->path,
                            "a step must be an object like {\"op\": "
                            "\"filter\", \"where\": \"x > 1\"}");
            goto done;
        }
        path_join(path, s->path, "op");
        op_v = opt(st, "op");
        if (op_v == NULL || !json_is_string(op_v)) {
            rc = sh_err_set(err, SH_EINVAL, path,
                            "%s; ops are: %s",
                            op_v ? "'op' must be a string"
                                 : "a step needs an 'op'", sb.data);
            goto done;
        }
        op = list_find(all_ops, json_string_value(op_v));
        if (op < 0) {
            hint = suggest(json_string_value(op_v), all_ops);
            rc = sh_err_set(err, SH_EINVAL, path,
                            "unknown op '%s'%s%s%s; ops are: %s",
                            json_string_value(op_v),
                            hint ? " (did you mean '" : "",
                            hint ? hint : "", hint ? "'?)" : "", sb.data);
            goto done;
        }
        if (op >= N_OPS_DONE) {
            rc = sh_err_set(err, SH_EINVAL, path,
                            "'%s' is not supported yet", all_ops[op]);
            goto done;
        }
        s->op = (plan_op)op;
        rc = check_keys(st, s->path, fields[op], what[op], err);
        if (rc != 0)
            goto done;
        switch (s->op) {
        case OP_FILTER:
            rc = get_string(st, "where", s->path, 1,
                            "a bool expression such as \"year >= 2010\"",
                            &src, err);
            if (rc == 0 && src[0] == '\0') {
                path_join(path, s->path, "where");
                rc = sh_err_set(err, SH_EINVAL, path,
                                "'where' is empty; give a bool expression "
                                "such as \"year >= 2010\"");
            }
            break;
        case OP_DERIVE:
            rc = get_string(st, "as", s->path, 1,
                            "the name of the column to write", &src, err);
            if (rc == 0 && src[0] == '\0') {
                path_join(path, s->path, "as");
                rc = sh_err_set(err, SH_EINVAL, path,
                                "'as' is empty; give the name of the "
                                "column to write");
            }
            if (rc == 0) {
                rc = get_string(st, "expr", s->path, 1,
                                "an expression such as \"price * qty\"",
                                &src, err);
            }
            if (rc == 0 && src[0] == '\0') {
                path_join(path, s->path, "expr");
                rc = sh_err_set(err, SH_EINVAL, path,
                                "'expr' is empty; give an expression such "
                                "as \"price * qty\"");
            }
            break;
        case OP_SELECT:
            path_join(path, s->path, "columns");
            cols = opt(st, "columns");
            if (cols == NULL || !json_is_array(cols)
                || json_array_size(cols) == 0) {
                rc = sh_err_set(err, SH_EINVAL, path,
                                "a select step needs 'columns', a "
                                "non-empty array of column names");
                break;
            }
            for (j = 0; j < json_array_size(cols); j++) {
                json_t *c = json_array_get(cols, j);

                if (!json_is_string(c)
                    || strlen(json_string_value(c))
                           != json_string_length(c)) {
                    path_fmt(cpath, "%s[%zu]", path, j);
                    rc = sh_err_set(err, SH_EINVAL, cpath,
                                    "column names must be strings");
                    break;
                }
            }
            break;
        default:
            break;
        }
        if (rc != 0)
            goto done;
    }
done:
    sb_free(&sb);
    return rc;
}

/* input.columns over the inferred (or stored) schema. */
static int
apply_overrides(plan *p, json_t *spec, sh_err *err)
{
    json_t     *cols = opt(opt(spec, "input"), "columns"), *v;
    const char *key;
    char        path[SH_ERR_PATH_MAX];
    strbuf      sb = {0};
    sh_type     t;
    long        idx;

    if (cols == NULL)
        return 0;
    json_object_foreach(cols, key, v) {
        idx = schema_find(p->in_schema, key);
        if (idx < 0) {
            path_join(path, "input.columns", key);
            plan_list_columns(p->in_schema, &sb);
            sh_err_set(err, SH_EINVAL, path,
                       "unknown column '%s' in input.columns; columns are: "
                       "%s", key, sb.data);
            sb_free(&sb);
            return SH_EINVAL;
        }
        if (sh_type_parse(json_string_value(v), &t) != 0) {
            path_join(path, "input.columns", key);
            return sh_err_set(err, SH_EINVAL, path, "bad column type");
        }
        p->in_schema->types[idx] = t;
    }
    return 0;
}

/* Compile a filter step against 'in'. */
static int
compile_filter(plan_step *s, json_t *st, const schema *in, sh_err *err)
{
    char    path[SH_ERR_PATH_MAX];
    sh_type t;

    path_join(path, s->path, "where");
    s->e = expr_compile(json_string_value(json_object_get(st, "where")), in,
                        path, err);
    if (s->e == NULL)
        return err && err->code ? err->code : SH_EINVAL;
    t = expr_type(s->e);
    if (t != SH_BOOL && t != SH_NULL) {
        return sh_err_set(err, SH_EINVAL, path,
                          "filter needs a bool expression, got %s",
                          sh_type_name(t));
    }
    s->out = schema_copy(in);
    return 0;
}

/* Compile a derive step against 'in': append or replace its column. */
static int
compile_derive(plan_step *s, json_t *st, const schema *in, sh_err *err)
{
    const char *as = json_string_value(json_object_get(st, "as"));
    char        path[SH_ERR_PATH_MAX];
    sh_type     t;
    long        idx;

    path_join(path, s->path, "expr");
    s->e = expr_compile(json_string_value(json_object_get(st, "expr")), in,
                        path, err);
    if (s->e == NULL)
        return err && err->code ? err->code : SH_EINVAL;
    t = expr_type(s->e);
    if (t == SH_NULL)
        t = SH_STRING; /* always null: typed string, as an empty column */
    s->out = schema_copy(in);
    idx = schema_find(s->out, as);
    if (idx >= 0) {
        s->out->types[idx] = t;
        s->col = (size_t)idx;
    } else {
        s->col = schema_add(s->out, as, t);
    }
    return 0;
}

/* Compile a select step against 'in'. */
static int
compile_select(plan_step *s, json_t *st, const schema *in, sh_err *err)
{
    json_t *cols = json_object_get(st, "columns");
    char    path[SH_ERR_PATH_MAX];
    strbuf  sb = {0};
    size_t  j, k;
    long    idx;

    s->n_cols = json_array_size(cols);
    s->cols = xcalloc(s->n_cols, sizeof *s->cols);
    s->out = schema_new();
    for (j = 0; j < s->n_cols; j++) {
        const char *name = json_string_value(json_array_get(cols, j));

        path_fmt(path, "%s.columns[%zu]", s->path, j);
        idx = schema_find(in, name);
        if (idx < 0) {
            plan_list_columns(in, &sb);
            sh_err_set(err, SH_EINVAL, path,
                       "unknown column '%s'; columns are: %s", name,
                       sb.data);
            sb_free(&sb);
            return SH_EINVAL;
        }
        for (k = 0; k < j; k++) {
            if (s->cols[k] == (size_t)idx) {
                return sh_err_set(err, SH_EINVAL, path,
                                  "column '%s' is selected twice", name);
            }
        }
        s->cols[j] = (size_t)idx;
        schema_add(s->out, name, in->types[idx]);
    }
    return 0;
}

/* Compile every step, each against the schema the previous one made. */
static int
compile_steps(plan *p, json_t *spec, sh_err *err)
{
    json_t       *steps = opt(spec, "steps");
    const schema *cur = p->in_schema;
    size_t        i;
    int           rc = 0;

    for (i = 0; i < p->n_steps; i++) {
        plan_step *s = &p->steps[i];
        json_t    *st = json_array_get(steps, i);

        switch (s->op) {
        case OP_FILTER:
            rc = compile_filter(s, st, cur, err);
            break;
        case OP_SELECT:
            rc = compile_select(s, st, cur, err);
            break;
        case OP_DERIVE:
            rc = compile_derive(s, st, cur, err);
            break;
        default:
            break;
        }
        if (rc != 0)
            return rc;
        cur = s->out;
    }
    p->out_schema = cur;
    return 0;
}

/* ---- the stored resolution -------------------------------------------- */

/* A non-negative integer of a JSON value, or -1. */
static long long
nonneg(json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return json_integer_value(v);
}

/* Rebuild files, schema and parts from a stored resolution. */
static int
load_resolution(plan *p, json_t *res, const char *root, sh_err *err)
{
    json_t     *files = json_object_get(res, "files");
    json_t     *sc = json_object_get(res, "schema");
    json_t     *parts = json_object_get(res, "parts");
    json_t     *v;
    const char *what = NULL;
    size_t      i;

    if (!json_is_array(files) || !json_is_array(sc)
        || !json_is_array(parts)) {
        what = "files, schema and parts must be arrays";
        goto done;
    }
    p->n_files = json_array_size(files);
    p->files = xcalloc(p->n_files ? p->n_files : 1, sizeof *p->files);
    json_array_foreach(files, i, v) {
        const char *rel = json_string_value(json_object_get(v, "path"));
        long long   size = nonneg(json_object_get(v, "size"));
        json_t     *mt = json_object_get(v, "mtime_ns");

        if (rel == NULL || rel[0] == '\0' || rel[0] == '/'
            || plan_path_has_dotdot(rel) || size < 0
            || !json_is_integer(mt)) {
            what = "a file entry is not {path, size, mtime_ns}";
            goto done;
        }
        p->files[i].rel = xstrdup(rel);
        p->files[i].path = strcmp(root, "/") == 0
                               ? xasprintf("/%s", rel)
                               : xasprintf("%s/%s", root, rel);
        p->files[i].size_bytes = (uint64_t)size;
        p->files[i].mtime_ns = json_integer_value(mt);
    }
    p->in_schema = schema_new();
    json_array_foreach(sc, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        sh_type     t;

        if (name == NULL
            || sh_type_parse(json_string_value(json_object_get(v, "type")),
                             &t) != 0) {
            what = "a schema entry is not {name, type}";
            goto done;
        }
        schema_add(p->in_schema, name, t);
    }
    p->n_parts = json_array_size(parts);
    p->parts = xcalloc(p->n_parts ? p->n_parts : 1, sizeof *p->parts);
    json_array_foreach(parts, i, v) {
        long long f = nonneg(json_array_get(v, 0));
        long long start = nonneg(json_array_get(v, 1));
        long long end = nonneg(json_array_get(v, 2));
        long long line = nonneg(json_array_get(v, 3));

        if (!json_is_array(v) || json_array_size(v) != 4 || f < 0
            || (size_t)f >= p->n_files || start < 0 || end < start
            || (uint64_t)end > p->files[f].size_bytes || line < 1) {
            what = "a part is not [file, start, end, line]";
            goto done;
        }
        p->parts[i].file = (size_t)f;
        p->parts[i].start = (uint64_t)start;
        p->parts[i].end = (uint64_t)end;
        p->parts[i].line = (uint64_t)line;
    }

done:
    if (what == NULL)
        return 0;
    return sh_err_set(err, SH_EINVAL, "",
                      "the stored plan of this job is damaged (%s); submit "
                      "the job again", what);
}

/* ---- building ----------------------------------------------------------- */

const char *
plan_op_name(plan_op op)
{
    static const char *const names[] = {
        "filter", "select", "derive", "tokenize", "join",
        "predict_naive_bayes", "groupby", "aggregate", "distinct", "sort",
        "limit", "train_naive_bayes"};

    return (size_t)op < sizeof names / sizeof names[0] ? names[op] : "?";
}

int
plan_op_is_combine(plan_op op)
{
    return op >= OP_GROUPBY;
}

/*
 * The one path for plan_build ('resolution' NULL: read the input) and
 * plan_load ('resolution' given: read nothing).
 */
static int
plan_make(json_t *spec, const plan_env *env, json_t *resolution,
          plan **out, sh_err *err)
{
    plan       *p = xcalloc(1, sizeof *p);
    const char *pattern = NULL;
    char       *root = NULL;
    size_t      pattern_len = 0;
    int         rc;

    *out = NULL;
    sh_err_clear(err);
    p->spec = json_incref(spec);
    if (!json_is_object(spec)) {
        rc = sh_err_set(err, SH_EINVAL, "",
                        "the job spec must be a JSON object");
        goto done;
    }
    if ((rc = check_keys(spec, "", top_fields, "the job spec", err)) != 0)
        goto done;
    if ((rc = parse_options(p, spec, err)) != 0)
        goto done;
    if ((rc = parse_input(p, spec, &pattern, &pattern_len, err)) != 0)
        goto done;
    if ((rc = check_steps(p, spec, err)) != 0)
        goto done;
    if ((rc = parse_output(p, spec, err)) != 0)
        goto done;

    root = plan_root_real(env->data_root, err);
    if (root == NULL) {
        rc = err && err->code ? err->code : SH_EIO;
        goto done;
    }
    if (resolution != NULL) {
        rc = load_resolution(p, resolution, root, err);
    } else {
        rc = plan_resolve_files(root, pattern, pattern_len, &p->files,
                                &p->n_files, err);
        if (rc == 0)
            rc = plan_scan_input(p, err);
    }
    if (rc != 0)
        goto done;
    if ((rc = apply_overrides(p, spec, err)) != 0)
        goto done;
    if ((rc = compile_steps(p, spec, err)) != 0)
        goto done;
    *out = p;
    p = NULL;

done:
    free(root);
    plan_free(p);
    return rc;
}

int
plan_build(json_t *spec, const plan_env *env, plan **out, sh_err *err)
{
    return plan_make(spec, env, NULL, out, err);
}

int
plan_load(json_t *spec, json_t *resolution, const plan_env *env,
          plan **out, sh_err *err)
{
    if (!json_is_object(resolution)) {
        *out = NULL;
        return sh_err_set(err, SH_EINVAL, "",
                          "the stored plan of this job is missing; submit "
                          "the job again");
    }
    return plan_make(spec, env, resolution, out, err);
}

/* ---- describing ------------------------------------------------------- */

/* [{"name", "type"}, ...] of 'sc'. */
static json_t *
schema_json(const schema *sc)
{
    json_t *a = json_array();
    size_t  i;

    for (i = 0; i < sc->n; i++) {
        json_array_append_new(a, json_pack("{s:s, s:s}", "name",
                                           sc->names[i], "type",
                                           sh_type_name(sc->types[i])));
    }
    return a;
}

json_t *
plan_resolution(const plan *p)
{
    json_t *files = json_array(), *parts = json_array();
    size_t  i;

    for (i = 0; i < p->n_files; i++) {
        json_array_append_new(
            files, json_pack("{s:s, s:I, s:I}", "path", p->files[i].rel,
                             "size", (json_int_t)p->files[i].size_bytes,
                             "mtime_ns", (json_int_t)p->files[i].mtime_ns));
    }
    for (i = 0; i < p->n_parts; i++) {
        const plan_part *pt = &p->parts[i];

        json_array_append_new(
            parts, json_pack("[I, I, I, I]", (json_int_t)pt->file,
                             (json_int_t)pt->start, (json_int_t)pt->end,
                             (json_int_t)pt->line));
    }
    return json_pack("{s:i, s:o, s:o, s:o}", "version", 1, "files", files,
                     "schema", schema_json(p->in_schema), "parts", parts);
}

json_t *
plan_describe(const plan *p)
{
    json_t *files = json_array(), *ops = json_array(), *stages;
    size_t  i;

    for (i = 0; i < p->n_files; i++) {
        json_array_append_new(
            files, json_pack("{s:s, s:I}", "path", p->files[i].rel, "bytes",
                             (json_int_t)p->files[i].size_bytes));
    }
    for (i = 0; i < p->n_steps; i++)
        json_array_append_new(ops, json_string(op_name(p->steps[i].op)));
    stages = json_pack("[{s:i, s:s, s:o, s:I}]", "stage", 0, "kind", "map",
                       "ops", ops, "partitions", (json_int_t)p->n_parts);
    return json_pack(
        "{s:{s:o, s:s, s:o}, s:{s:s, s:s, s:o}, s:I, s:o}", "input",
        "files", files, "format", "csv", "schema",
        schema_json(p->in_schema), "output", "format",
        p->out_format == FMT_JSONL ? "jsonl" : "csv", "compression",
        p->out_gzip ? "gzip" : "none", "schema", schema_json(p->out_schema),
        "partitions", (json_int_t)p->n_parts, "stages", stages);
}

void
plan_free(plan *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].e)
            expr_free(p->steps[i].e);
        free(p->steps[i].cols);
        schema_free(p->steps[i].out);
    }
    free(p->steps);
    for (i = 0; i < p->n_files; i++) {
        free(p->files[i].path);
        free(p->files[i].rel);
    }
    free(p->files);
    free(p->parts);
    free(p->stage_tasks);
    schema_free(p->in_schema);
    free(p->name);
    json_decref(p->spec);
    free(p);
}
