/*
 * plan_input.c - an input object of a job spec ("input", or the 'with' of
 * a join step, "steps[3].with") checked field by field, and its files,
 * schema and partitions: read from the disk at submission (resolve.c,
 * infer.c) or rebuilt from the stored resolution in a worker.
 */
#include "plan_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/s3.h"
#include "../lib/util.h"

#define DEFAULT_PARTITION_BYTES (64ull << 20)
#define MAX_PARTITION_BYTES     (1ull << 50)

static const char *const input_fields[] = {
    "path",    "dataset",        "format",   "compression", "csv",
    "columns", "partition_size", "on_error", NULL};
static const char *const csv_fields[] = {"header", "delimiter", "quote", NULL};
static const char *const type_names[] = {"int",  "float",     "string", "bool",
                                         "date", "timestamp", NULL};
static const char *const format_names[] = {"csv", "jsonl", "lines", "parquet",
                                           NULL};

/* ---- small helpers ---------------------------------------------------- */

/* obj[key] as a one-byte character that is not a line end. */
static int
get_char(json_t *obj, const char *key, const char *base, char def, char *out,
         sh_err *err)
{
    const char *s;
    char        path[SH_ERR_PATH_MAX];
    int         rc;

    *out = def;
    rc = plan_get_string(obj, key, base, 0, "give one character", &s, err);
    if (rc != 0 || s == NULL)
        return rc;
    plan_path_join(path, base, key);
    if (strlen(s) != 1 || (unsigned char)s[0] >= 0x80) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' must be exactly one (ASCII) character, got "
                          "'%s'",
                          key, s);
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
        {"", 1},
        {"b", 1},
        {"k", 1e3},
        {"kb", 1e3},
        {"m", 1e6},
        {"mb", 1e6},
        {"g", 1e9},
        {"gb", 1e9},
        {"t", 1e12},
        {"tb", 1e12},
        {"ki", 1024.0},
        {"kib", 1024.0},
        {"mi", 1048576.0},
        {"mib", 1048576.0},
        {"gi", 1073741824.0},
        {"gib", 1073741824.0},
        {"ti", 1099511627776.0},
        {"tib", 1099511627776.0},
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

/* ---- the fields of an input ------------------------------------------- */

/* 'base.csv': header, delimiter, quote (format csv only). */
static int
parse_csv_dialect(plan *p, json_t *in, const char *base, sh_err *err)
{
    json_t *c = plan_opt(in, "csv");
    char    cbase[SH_ERR_PATH_MAX], path[SH_ERR_PATH_MAX];
    int     rc;

    p->dialect.delim = ',';
    p->dialect.quote = '"';
    p->dialect.header = 1;
    if (c == NULL)
        return 0;
    plan_path_join(cbase, base, "csv");
    if (p->in_format != FMT_CSV) {
        return sh_err_set(err, SH_EINVAL, cbase,
                          "'csv' options apply to format 'csv' only, and "
                          "this input's format is '%s'; remove them",
                          format_names[p->in_format]);
    }
    if (!json_is_object(c)) {
        return sh_err_set(err, SH_EINVAL, cbase,
                          "'csv' must be an object like {\"header\": true, "
                          "\"delimiter\": \",\", \"quote\": \"\\\"\"}");
    }
    if ((rc = plan_check_keys(c, cbase, csv_fields, cbase, err)))
        return rc;
    if ((rc = plan_get_bool(c, "header", cbase, 1, &p->dialect.header, err)))
        return rc;
    if ((rc = get_char(c, "delimiter", cbase, ',', &p->dialect.delim, err)))
        return rc;
    if ((rc = get_char(c, "quote", cbase, '"', &p->dialect.quote, err)))
        return rc;
    if (p->dialect.delim == p->dialect.quote) {
        plan_path_join(path, cbase, "quote");
        return sh_err_set(err, SH_EINVAL, path,
                          "the quote character must differ from the "
                          "delimiter ('%c')",
                          p->dialect.delim);
    }
    return 0;
}

/* 'base.columns': check the types now, the names once the schema is
 * known. */
static int
check_column_types(json_t *in, const char *base, sh_err *err)
{
    json_t     *cols = plan_opt(in, "columns"), *v;
    const char *key;
    char        cbase[SH_ERR_PATH_MAX], path[SH_ERR_PATH_MAX];

    if (cols == NULL)
        return 0;
    plan_path_join(cbase, base, "columns");
    if (!json_is_object(cols)) {
        return sh_err_set(err, SH_EINVAL, cbase,
                          "'columns' must be an object of column types, "
                          "like {\"year\": \"int\"}");
    }
    json_object_foreach(cols, key, v)
    {
        plan_path_join(path, cbase, key);
        if (!json_is_string(v)
            || plan_list_find(type_names, json_string_value(v)) < 0) {
            return sh_err_set(err, SH_EINVAL, path,
                              "bad type %s%s%s for column '%s'; types are: "
                              "int, float, string, bool, date, timestamp",
                              json_is_string(v) ? "'" : "",
                              json_is_string(v) ? json_string_value(v)
                                                : "(not a string)",
                              json_is_string(v) ? "'" : "", key);
        }
    }
    return 0;
}

/* 'base.partition_size': bytes, or a size with a unit. */
static int
parse_partition_size(plan *p, json_t *in, const char *base, sh_err *err)
{
    json_t *ps = plan_opt(in, "partition_size");
    char    path[SH_ERR_PATH_MAX];

    p->partition_bytes = DEFAULT_PARTITION_BYTES;
    if (ps == NULL)
        return 0;
    if (json_is_integer(ps) && json_integer_value(ps) >= 1
        && (uint64_t)json_integer_value(ps) <= MAX_PARTITION_BYTES) {
        p->partition_bytes = (uint64_t)json_integer_value(ps);
        return 0;
    }
    if (json_is_string(ps)
        && parse_size(json_string_value(ps), &p->partition_bytes) == 0)
        return 0;
    plan_path_join(path, base, "partition_size");
    return sh_err_set(err, SH_EINVAL, path,
                      "bad partition_size%s%s%s; give a number of bytes >= "
                      "1 or a size like '64MiB' (units B, KB, MB, GB: "
                      "powers of 1000; KiB, MiB, GiB: powers of 1024)",
                      json_is_string(ps) ? " '" : "",
                      json_is_string(ps) ? json_string_value(ps) : "",
                      json_is_string(ps) ? "'" : "");
}

/* 'base.path' or 'base.dataset': the pattern of the files. */
static int
parse_input_path(json_t *in, const char *base, const char **pattern,
                 size_t *len, sh_err *err)
{
    const char *dataset, *path;
    char        fpath[SH_ERR_PATH_MAX];
    int         rc;

    rc = plan_get_string(in, "path", base, 0,
                         "a file or glob under the data root", &path, err);
    if (rc != 0)
        return rc;
    rc = plan_get_string(in, "dataset", base, 0, "an uploaded dataset's id",
                         &dataset, err);
    if (rc != 0)
        return rc;
    if (path && dataset) {
        return sh_err_set(err, SH_EINVAL, base,
                          "give either path or dataset, not both");
    }
    if (dataset) {
        /* Resolved to a file under the datasets root by plan_input_read. */
        if (dataset[0] == '\0'
            || strlen(dataset)
                   != json_string_length(json_object_get(in, "dataset"))) {
            plan_path_join(fpath, base, "dataset");
            return sh_err_set(err, SH_EINVAL, fpath,
                              "'dataset' must be an uploaded dataset's id "
                              "or name");
        }
        *pattern = dataset;
        *len = strlen(dataset);
        return 0;
    }
    if (path == NULL) {
        /* A path with a NUL was refused above; "" is checked later. */
        plan_path_join(fpath, base, "path");
        return sh_err_set(err, SH_EINVAL, fpath,
                          "'path' is required: a file or glob under the "
                          "data root, like 'logs/*.csv'");
    }
    *pattern = path;
    *len = json_string_length(json_object_get(in, "path"));
    return 0;
}

/* Does 's' end with 'suffix'? */
static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * The input fields that do not apply to Parquet: gzip (Parquet compresses
 * its pages itself), 'columns' (the file gives the types), on_error skip
 * (corrupt data fails the job).
 */
static int
parquet_refusals(const plan *p, json_t *in, const char *base, sh_err *err)
{
    char path[SH_ERR_PATH_MAX];

    if (p->in_gzip) {
        plan_path_join(path, base, "compression");
        return sh_err_set(err, SH_EINVAL, path,
                          "parquet input cannot be gzip-compressed (its "
                          "pages are compressed inside the file); remove "
                          "'compression'");
    }
    if (plan_opt(in, "columns") != NULL) {
        plan_path_join(path, base, "columns");
        return sh_err_set(err, SH_EINVAL, path,
                          "'columns' does not apply to parquet input: the "
                          "types are the file's; remove it");
    }
    if (plan_opt(in, "on_error") != NULL
        && json_is_string(plan_opt(in, "on_error"))
        && strcmp(json_string_value(plan_opt(in, "on_error")), "skip") == 0) {
        plan_path_join(path, base, "on_error");
        return sh_err_set(err, SH_EINVAL, path,
                          "on_error 'skip' does not apply to parquet "
                          "input: corrupt data fails the job");
    }
    return 0;
}

/*
 * An input object at JSON path 'base' ("input", "steps[3].with"):
 * everything that can be checked without reading files. *pattern
 * (borrowed from 'in') and *len are its path.
 */
int
plan_input_parse(plan *p, json_t *in, const char *base, const char **pattern,
                 size_t *len, sh_err *err)
{
    static const char *const compressions[] = {"none", "gzip", NULL};
    static const char *const on_errors[] = {"fail", "skip", NULL};
    int                      fmt, gz, on_error, rc;

    if (in == NULL) {
        return sh_err_set(err, SH_EINVAL, base,
                          "'%s' is required: {\"path\": \"data/*.csv\"}", base);
    }
    if (!json_is_object(in)) {
        return sh_err_set(err, SH_EINVAL, base,
                          "'%s' must be an object like {\"path\": "
                          "\"data/*.csv\"}",
                          base);
    }
    if ((rc = plan_check_keys(in, base, input_fields, base, err)) != 0)
        return rc;
    if ((rc = parse_input_path(in, base, pattern, len, err)) != 0)
        return rc;
    rc = plan_get_choice(in, "format", base, format_names,
                         ends_with(*pattern, ".parquet") ? FMT_PARQUET
                                                         : FMT_CSV,
                         &fmt, err);
    if (rc != 0)
        return rc;
    p->in_format = (plan_format)fmt;
    rc = plan_get_choice(in, "compression", base, compressions,
                         ends_with(*pattern, ".gz"), &gz, err);
    if (rc != 0)
        return rc;
    p->in_gzip = gz == 1;
    if (p->in_format == FMT_PARQUET
        && (rc = parquet_refusals(p, in, base, err)) != 0)
        return rc;
    if ((rc = parse_csv_dialect(p, in, base, err)) != 0)
        return rc;
    if ((rc = check_column_types(in, base, err)) != 0)
        return rc;
    if ((rc = parse_partition_size(p, in, base, err)) != 0)
        return rc;
    rc = plan_get_choice(in, "on_error", base, on_errors, 0, &on_error, err);
    if (rc != 0)
        return rc;
    p->on_error_skip = on_error == 1;
    return 0;
}

/* 'base.columns' over the inferred (or stored) schema. */
static int
apply_overrides(plan *p, json_t *in, const char *base, sh_err *err)
{
    json_t     *cols = plan_opt(in, "columns"), *v;
    const char *key;
    char        cbase[SH_ERR_PATH_MAX], path[SH_ERR_PATH_MAX];
    strbuf      sb = {0};
    sh_type     t;
    long        idx;

    if (cols == NULL)
        return 0;
    plan_path_join(cbase, base, "columns");
    json_object_foreach(cols, key, v)
    {
        plan_path_join(path, cbase, key);
        idx = schema_find(p->in_schema, key);
        if (idx < 0) {
            plan_list_columns(p->in_schema, &sb);
            sh_err_set(err, SH_EINVAL, path,
                       "unknown column '%s' in %s; columns are: %s", key, cbase,
                       sb.data);
            sb_free(&sb);
            return SH_EINVAL;
        }
        if (sh_type_parse(json_string_value(v), &t) != 0)
            return sh_err_set(err, SH_EINVAL, path, "bad column type");
        p->in_schema->types[idx] = t;
    }
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
    json_t     *rgs = json_object_get(res, "row_groups");
    json_t     *v;
    const char *what = NULL;
    size_t      i;

    if (!json_is_array(files) || !json_is_array(sc) || !json_is_array(parts)) {
        what = "files, schema and parts must be arrays";
        goto done;
    }
    p->n_files = json_array_size(files);
    p->files = xcalloc(p->n_files ? p->n_files : 1, sizeof *p->files);
    json_array_foreach(files, i, v)
    {
        const char *rel = json_string_value(json_object_get(v, "path"));
        const char *etag = json_string_value(json_object_get(v, "etag"));
        long long   size = nonneg(json_object_get(v, "size"));
        json_t     *mt = json_object_get(v, "mtime_ns");
        int         remote = s3_is_url(rel);

        if (rel == NULL || rel[0] == '\0' || rel[0] == '/'
            || (!remote && plan_path_has_dotdot(rel)) || size < 0
            || !json_is_integer(mt)) {
            what = "a file entry is not {path, size, mtime_ns}";
            goto done;
        }
        p->files[i].rel = xstrdup(rel);
        if (remote)
            p->files[i].path = xstrdup(rel);
        else
            p->files[i].path = strcmp(root, "/") == 0
                                   ? xasprintf("/%s", rel)
                                   : xasprintf("%s/%s", root, rel);
        p->files[i].etag = remote && etag ? xstrdup(etag) : NULL;
        p->files[i].size_bytes = (uint64_t)size;
        p->files[i].mtime_ns = json_integer_value(mt);
    }
    if (p->in_format == FMT_PARQUET && plan_pq_load(p, rgs) != 0) {
        what = "row_groups is not {list, total, skipped}";
        goto done;
    }
    p->in_schema = schema_new();
    json_array_foreach(sc, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *type = json_string_value(json_object_get(v, "type"));
        sh_type     t = SH_NULL;

        /* A Parquet column sheaf cannot read is typed null (the job does
         * not read it). */
        if (name == NULL
            || ((p->in_format != FMT_PARQUET || type == NULL
                 || strcmp(type, "null") != 0)
                && sh_type_parse(type, &t) != 0)) {
            what = "a schema entry is not {name, type}";
            goto done;
        }
        schema_add(p->in_schema, name, t);
    }
    p->n_parts = json_array_size(parts);
    p->parts = xcalloc(p->n_parts ? p->n_parts : 1, sizeof *p->parts);
    json_array_foreach(parts, i, v)
    {
        long long f = nonneg(json_array_get(v, 0));
        long long start = nonneg(json_array_get(v, 1));
        long long end = nonneg(json_array_get(v, 2));
        long long line = nonneg(json_array_get(v, 3));

        if (!json_is_array(v) || json_array_size(v) != 4 || f < 0
            || (size_t)f >= p->n_files || start < 0 || end < start
            || (uint64_t)end > (p->in_format == FMT_PARQUET
                                    ? p->n_pq_rgs
                                    : p->files[f].size_bytes)
            || line < 1) {
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
                      "the job again",
                      what);
}

/* ---- the input's files ------------------------------------------------- */

const char *
plan_format_name(plan_format f)
{
    return format_names[f];
}

/*
 * The files, schema and partitions of an input parsed by plan_input_parse:
 * from the disk ('resolution' NULL) or from its stored resolution. Errors
 * of resolve.c and infer.c name "input..."; for a join side they are
 * moved under 'base'.
 */
/*
 * The file of an uploaded dataset ('ref' is "base.dataset"): resolved by
 * the caller's env->resolve_dataset to a file under env->datasets_root
 * (or to the s3:// URL of its object in the service's store), then read
 * as a path would be; errors name 'base.dataset'. A file whose
 * name ends in ".gz" is gzip unless 'base.compression' says otherwise.
 */
static int
read_dataset(plan *p, json_t *in, const char *base, const char *ref,
             const plan_ctx *ctx, json_t *resolution, sh_err *err)
{
    const plan_env *env = ctx->env;
    char           *root = NULL, *file = NULL;
    char            field[SH_ERR_PATH_MAX];
    int             explicit_comp = json_object_get(in, "compression") != NULL;
    int             rc;

    plan_path_join(field, base, "dataset");
    if (env->datasets_root == NULL
        || (resolution == NULL && env->resolve_dataset == NULL))
        return sh_err_set(err, SH_EINVAL, field,
                          "uploaded datasets are not available here");
    if (resolution != NULL) {
        json_t *f0 = json_array_get(json_object_get(resolution, "files"), 0);
        const char *rel = json_string_value(json_object_get(f0, "path"));

        /* A dataset in the store: no directory of this node's needed. */
        if (rel != NULL && s3_is_url(rel))
            root = xstrdup("/");
        else if ((root = plan_root_real(env->datasets_root, err)) == NULL)
            return err && err->code ? err->code : SH_EIO;
        rc = load_resolution(p, resolution, root, err);
        if (rc == 0 && !explicit_comp && p->n_files == 1)
            p->in_gzip = ends_with(p->files[0].rel, ".gz");
        goto done;
    }
    /* The dataset first: its directory exists once one was uploaded. */
    rc = env->resolve_dataset(env->dataset_ctx, ref, &file, err);
    if (rc == SH_ENOENT) {
        rc = sh_err_set(err, SH_EINVAL, field,
                        "no dataset '%s': give the id or name of a dataset "
                        "uploaded with POST /v1/datasets",
                        ref);
        goto done;
    }
    if (rc != 0) {
        if (err != NULL && err->path[0] == '\0')
            snprintf(err->path, sizeof err->path, "%s", field);
        goto done;
    }
    if (!explicit_comp)
        p->in_gzip = ends_with(file, ".gz");
    if (s3_is_url(file)) {
        /* The dataset's object in the service's store (its URL). */
        rc = plan_resolve_s3(file, strlen(file), &p->files, &p->n_files, err);
    } else if ((root = plan_root_real(env->datasets_root, err)) == NULL) {
        rc = err && err->code ? err->code : SH_EIO;
        goto done;
    } else {
        rc = plan_resolve_files(root, file, strlen(file), &p->files,
                                &p->n_files, err);
    }
    if (rc == 0)
        rc = plan_scan_input(p, err);
    if (rc != 0) {
        plan_err_rebase(err, "input.path", field);
        if (strcmp(base, "input") != 0)
            plan_err_rebase(err, "input", base);
    }

done:
    free(file);
    free(root);
    return rc;
}

int
plan_input_read(plan *p, json_t *in, const char *base, const char *pattern,
                size_t len, const plan_ctx *ctx, json_t *resolution,
                sh_err *err)
{
    int rc;

    if (json_object_get(in, "dataset") != NULL) {
        rc = read_dataset(p, in, base, pattern, ctx, resolution, err);
    } else if (resolution != NULL) {
        rc = load_resolution(p, resolution, ctx->root, err);
    } else {
        if (s3_is_url(pattern))
            rc = plan_resolve_s3(pattern, len, &p->files, &p->n_files, err);
        else
            rc = plan_resolve_files(ctx->root, pattern, len, &p->files,
                                    &p->n_files, err);
        if (rc == 0)
            rc = p->in_format == FMT_PARQUET ? plan_pq_scan(p, err)
                                             : plan_scan_input(p, err);
        if (rc != 0 && strcmp(base, "input") != 0)
            plan_err_rebase(err, "input", base);
    }
    if (rc == 0)
        rc = apply_overrides(p, in, base, err);
    if (rc == 0)
        p->out_schema = p->in_schema;
    return rc;
}

/* A plan without steps (a join side) has one stage: a task per
 * partition, writing the output. */
static void
one_stage(plan *p)
{
    free(p->stages);
    free(p->stage_tasks);
    p->n_stages = 1;
    p->stages = xcalloc(1, sizeof *p->stages);
    p->stage_tasks = xcalloc(1, sizeof *p->stage_tasks);
    p->stages[0].src = -1;
    p->stages[0].sink = -1;
    p->stages[0].n_tasks = p->stage_tasks[0] = p->n_parts;
}

int
plan_input_make(plan *p, json_t *in, const char *base, const plan_ctx *ctx,
                json_t *resolution, sh_err *err)
{
    const char *pattern = NULL;
    size_t      len = 0;
    int         rc;

    rc = plan_input_parse(p, in, base, &pattern, &len, err);
    if (rc == 0)
        rc = plan_input_read(p, in, base, pattern, len, ctx, resolution, err);
    if (rc == 0 && resolution == NULL && p->in_format == FMT_PARQUET) {
        /* A join side is read whole: every column. */
        rc = plan_pq_cut(p, NULL, err);
        if (rc != 0 && strcmp(base, "input") != 0)
            plan_err_rebase(err, "input", base);
    }
    if (rc == 0)
        one_stage(p);
    return rc;
}
