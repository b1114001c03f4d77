/*
 * plan.c - the job spec (SPEC section 2) checked field by field and turned
 * into a plan; the plan's stored resolution, its description, and freeing
 * it. The input objects are read in plan_input.c, the steps are checked
 * and compiled through the operator table (op_table.c, op.h), cut into stages
 * in stages.c; spec.c has the field readers.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "op.h"
#include "parquet_write.h"
#include "plan_int.h"
#include "thrift.h"
#include "../lib/util.h"

static const char *const top_fields[] = {
    "name",      "input",    "steps",       "output",   "max_attempts",
    "timeout_s", "priority", "retention_s", "callback", NULL};
static const char *const output_fields[] = {"format", "compression",
                                            "row_group_rows", NULL};
static const char *const callback_fields[] = {"url", "secret", NULL};

/* ---- the parts of the spec -------------------------------------------- */

/* name, max_attempts, timeout_s, priority, retention_s, callback. */
static int
parse_options(plan *p, json_t *spec, sh_err *err)
{
    const char *name, *url, *secret;
    json_t     *cb;
    long long   n;
    int         rc;

    rc = plan_get_string(spec, "name", "", 0, "a name for people to read",
                         &name, err);
    if (rc != 0)
        return rc;
    if (name != NULL && util_utf8_chars(name) > PLAN_NAME_MAX_CHARS)
        return sh_err_set(err, SH_EINVAL, "name",
                          "'name' has %zu characters; at most %d are "
                          "allowed",
                          util_utf8_chars(name), PLAN_NAME_MAX_CHARS);
    p->name = xstrdup(name ? name : "");
    rc = plan_get_int(spec, "max_attempts", "", 1, PLAN_MAX_ATTEMPTS_MAX, 3, &n,
                      err);
    if (rc != 0)
        return rc;
    p->max_attempts = (int)n;
    rc = plan_get_int(spec, "timeout_s", "", 0, PLAN_TIMEOUT_S_MAX, 0, &n, err);
    if (rc != 0)
        return rc;
    p->timeout_s = (int)n;
    rc = plan_get_int(spec, "priority", "", -1000, 1000, 0, &n, err);
    if (rc != 0)
        return rc;
    p->priority = (int)n;
    rc = plan_get_int(spec, "retention_s", "", 0, PLAN_RETENTION_S_MAX, 604800,
                      &n, err);
    if (rc != 0)
        return rc;
    p->retention_s = n;

    cb = plan_opt(spec, "callback");
    if (cb == NULL)
        return 0;
    if (!json_is_object(cb)) {
        return sh_err_set(err, SH_EINVAL, "callback",
                          "'callback' must be an object: {\"url\": "
                          "\"https://...\", \"secret\": \"...\"}");
    }
    if ((rc = plan_check_keys(cb, "callback", callback_fields, "callback", err))
        != 0)
        return rc;
    rc = plan_get_string(cb, "url", "callback", 1, "an http:// or https:// URL",
                         &url, err);
    if (rc != 0)
        return rc;
    if ((strncmp(url, "http://", 7) != 0 || url[7] == '\0' || url[7] == '/')
        && (strncmp(url, "https://", 8) != 0 || url[8] == '\0'
            || url[8] == '/')) {
        return sh_err_set(err, SH_EINVAL, "callback.url",
                          "callback URL '%s' must start with http:// or "
                          "https:// and name a host",
                          url);
    }
    if (strpbrk(url, " \t\r\n") != NULL) {
        return sh_err_set(err, SH_EINVAL, "callback.url",
                          "callback URL must not contain spaces or line "
                          "ends");
    }
    return plan_get_string(cb, "secret", "callback", 0,
                           "the key that signs the callback", &secret, err);
}

/* The codec name of a parquet output, for the description. */
static const char *
codec_name(int codec)
{
    switch (codec) {
    case PQ_C_ZSTD:
        return "zstd";
    case PQ_C_SNAPPY:
        return "snappy";
    case PQ_C_GZIP:
        return "gzip";
    default:
        return "none";
    }
}

/* output of format parquet: compression (a codec) and row_group_rows. */
static int
parse_parquet_output(plan *p, json_t *o, sh_err *err)
{
    const char *comp;
    long long   n;
    int         rc;

    rc = plan_get_string(o, "compression", "output", 0,
                         "one of zstd, snappy, gzip, none", &comp, err);
    if (rc != 0)
        return rc;
    if (comp != NULL && pq_codec_parse(comp, &p->out_codec) != 0) {
        return sh_err_set(err, SH_EINVAL, "output.compression",
                          "unknown compression '%s' for parquet output; "
                          "use one of: zstd, snappy, gzip, none",
                          comp);
    }
    rc = plan_get_int(o, "row_group_rows", "output", 1, 1LL << 40,
                      PQW_DEFAULT_ROW_GROUP_ROWS, &n, err);
    if (rc != 0)
        return rc;
    p->out_rg_rows = (uint64_t)n;
    return 0;
}

/* output: format and compression (and row_group_rows for parquet). */
static int
parse_output(plan *p, json_t *spec, sh_err *err)
{
    static const char *const formats[] = {"csv", "jsonl", "parquet", NULL};
    static const char *const compressions[] = {"none", "gzip", NULL};
    json_t                  *o = plan_opt(spec, "output");
    int                      fmt, gz, rc;

    p->out_format = FMT_CSV;
    p->out_codec = PQ_C_SNAPPY;
    p->out_rg_rows = PQW_DEFAULT_ROW_GROUP_ROWS;
    if (o == NULL)
        return 0;
    if (!json_is_object(o)) {
        return sh_err_set(err, SH_EINVAL, "output",
                          "'output' must be an object like {\"format\": "
                          "\"csv\", \"compression\": \"gzip\"}");
    }
    if ((rc = plan_check_keys(o, "output", output_fields, "output", err)))
        return rc;
    if ((rc = plan_get_choice(o, "format", "output", formats, 0, &fmt, err)))
        return rc;
    if (fmt == 2) {
        p->out_format = FMT_PARQUET;
        return parse_parquet_output(p, o, err);
    }
    if (plan_opt(o, "row_group_rows") != NULL) {
        return sh_err_set(err, SH_EINVAL, "output.row_group_rows",
                          "'row_group_rows' applies to format 'parquet' "
                          "only; remove it");
    }
    if ((rc = plan_get_choice(o, "compression", "output", compressions, 0, &gz,
                              err)))
        return rc;
    p->out_format = fmt == 0 ? FMT_CSV : FMT_JSONL;
    p->out_gzip = gz == 1;
    return 0;
}

/* ---- building ----------------------------------------------------------- */

/*
 * The one path for plan_build ('resolution' NULL: read the input) and
 * plan_load ('resolution' given: read nothing).
 */
static int
plan_make(json_t *spec, const plan_env *env, json_t *resolution, plan **out,
          sh_err *err)
{
    plan       *p = xcalloc(1, sizeof *p);
    const char *pattern = NULL;
    char       *root = NULL;
    size_t      pattern_len = 0;
    json_t     *in;
    plan_ctx    ctx;
    int         rc;

    *out = NULL;
    sh_err_clear(err);
    p->spec = json_incref(spec);
    p->max_parts = env->max_partitions ? env->max_partitions
                                       : PLAN_MAX_PARTITIONS;
    if (!json_is_object(spec)) {
        rc = sh_err_set(err, SH_EINVAL, "",
                        "the job spec must be a JSON object");
        goto done;
    }
    in = plan_opt(spec, "input");
    if ((rc = plan_check_keys(spec, "", top_fields, "the job spec", err)))
        goto done;
    if ((rc = parse_options(p, spec, err)) != 0)
        goto done;
    if ((rc = plan_input_parse(p, in, "input", &pattern, &pattern_len, err)))
        goto done;
    if ((rc = plan_check_steps(p, spec, err)) != 0)
        goto done;
    if ((rc = parse_output(p, spec, err)) != 0)
        goto done;

    root = plan_root_real(env->data_root, err);
    if (root == NULL) {
        rc = err && err->code ? err->code : SH_EIO;
        goto done;
    }
    ctx.env = env;
    ctx.root = root;
    ctx.resolution = resolution;
    rc = plan_input_read(p, in, "input", pattern, pattern_len, &ctx, resolution,
                         err);
    if (rc != 0)
        goto done;
    if ((rc = plan_compile_steps(p, spec, &ctx, err)) != 0)
        goto done;
    if (resolution == NULL && p->in_format == FMT_PARQUET) {
        unsigned char *need = xcalloc(p->in_schema->n + 1, 1);

        plan_needed_columns(p, need);
        rc = plan_pq_cut(p, need, err);
        free(need);
        if (rc != 0)
            goto done;
    }
    plan_cut_stages(p);
    if ((rc = plan_check_joins(p, err)) != 0) /* may cut again */
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
plan_load(json_t *spec, json_t *resolution, const plan_env *env, plan **out,
          sh_err *err)
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
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", sc->names[i],
                                           "type", sh_type_name(sc->types[i])));
    }
    return a;
}

/*
 * The resolution also holds, under "joins", the resolution of the side of
 * every join step, keyed by the step's index ("3"), so plan_load rebuilds
 * the sides without reading their files either.
 */
json_t *
plan_resolution(const plan *p)
{
    json_t *files = json_array(), *parts = json_array(), *res, *joins;
    size_t  i;
    char    key[32];

    for (i = 0; i < p->n_files; i++) {
        json_t *f = json_pack("{s:s, s:I, s:I}", "path", p->files[i].rel,
                              "size", (json_int_t)p->files[i].size_bytes,
                              "mtime_ns", (json_int_t)p->files[i].mtime_ns);

        if (p->files[i].etag != NULL)
            json_object_set_new(f, "etag", json_string(p->files[i].etag));
        json_array_append_new(files, f);
    }
    for (i = 0; i < p->n_parts; i++) {
        const plan_part *pt = &p->parts[i];

        json_array_append_new(
            parts, json_pack("[I, I, I, I]", (json_int_t)pt->file,
                             (json_int_t)pt->start, (json_int_t)pt->end,
                             (json_int_t)pt->line));
    }
    res = json_pack("{s:i, s:o, s:o, s:o}", "version", 1, "files", files,
                    "schema", schema_json(p->in_schema), "parts", parts);
    joins = json_object();
    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].join == NULL)
            continue;
        snprintf(key, sizeof key, "%zu", i);
        json_object_set_new(joins, key,
                            plan_resolution(p->steps[i].join->side));
    }
    if (p->in_format == FMT_PARQUET)
        json_object_set_new(res, "row_groups", plan_pq_resolution(p));
    if (json_object_size(joins) > 0)
        json_object_set_new(res, "joins", joins);
    else
        json_decref(joins);
    return res;
}

/* The "input" of a description: files, format, compression, schema;
 * for parquet input "row_groups": {total, read, skipped}. */
static json_t *
input_json(const plan *p)
{
    json_t *files = json_array(), *in;
    size_t  i;

    for (i = 0; i < p->n_files; i++) {
        json_array_append_new(
            files, json_pack("{s:s, s:I}", "path", p->files[i].rel, "bytes",
                             (json_int_t)p->files[i].size_bytes));
    }
    in = json_pack("{s:o, s:s, s:s, s:o, s:I}", "files", files, "format",
                   plan_format_name(p->in_format), "compression",
                   p->in_gzip ? "gzip" : "none", "schema",
                   schema_json(p->in_schema), "partitions",
                   (json_int_t)p->n_parts);
    if (p->in_format == FMT_PARQUET) {
        json_object_set_new(in, "row_groups",
                            json_pack("{s:I, s:I, s:I}", "total",
                                      (json_int_t)p->pq_rg_total, "read",
                                      (json_int_t)p->n_pq_rgs, "skipped",
                                      (json_int_t)p->pq_rg_skipped));
    }
    return in;
}

/*
 * {"input": {files, format, compression, schema, partitions},
 *  "output": {format, compression, schema},
 *  "partitions": N,
 *  "steps": [{"op": "filter", "schema": [...]}, ...],
 *  "stages": see plan_stages_json}
 * A join step also has "with", the description of its side's input.
 */
json_t *
plan_describe(const plan *p)
{
    json_t *steps = json_array(), *st;
    size_t  i;

    for (i = 0; i < p->n_steps; i++) {
        st = json_pack("{s:s, s:o}", "op", p->steps[i].def->name, "schema",
                       schema_json(p->steps[i].out));
        if (p->steps[i].join) {
            json_object_set_new(st, "with", input_json(p->steps[i].join->side));
            json_object_set_new(st, "join",
                                json_pack("{s:s, s:s}", "strategy",
                                          p->steps[i].join->strategy
                                                  == JOIN_PARTITIONED
                                              ? "partitioned"
                                              : "broadcast",
                                          "why", p->steps[i].join->why));
        }
        json_array_append_new(steps, st);
    }
    return json_pack("{s:o, s:{s:s, s:s, s:o}, s:I, s:o, s:o}", "input",
                     input_json(p), "output", "format",
                     plan_format_name(p->out_format), "compression",
                     p->out_format == FMT_PARQUET ? codec_name(p->out_codec)
                     : p->out_gzip                ? "gzip"
                                                  : "none",
                     "schema", schema_json(p->out_schema), "partitions",
                     (json_int_t)p->n_parts, "steps", steps, "stages",
                     plan_stages_json(p));
}

/* ---- which input columns are read ------------------------------------- */

/*
 * Which input columns stage 0 must read (see plan.h): the live columns,
 * from the output back through every step, each operator saying what it
 * reads (op_def.reads). The planner uses it too: a Parquet input checks
 * only the columns a job reads.
 */
void
plan_needed_columns(const plan *p, unsigned char *need)
{
    unsigned char *live, *before;
    size_t         i, width = p->in_schema->n;

    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].out->n > width)
            width = p->steps[i].out->n;
    }
    width += 1;
    live = xcalloc(width, 1);
    before = xcalloc(width, 1);

    memset(live, 1, p->out_schema->n);
    for (i = p->n_steps; i-- > 0;) {
        const plan_step *s = &p->steps[i];
        const schema    *in = i ? p->steps[i - 1].out : p->in_schema;

        memset(before, 0, width);
        if (s->def->reads != NULL)
            s->def->reads(s, in->n, live, before);
        else
            memset(before, 1, in->n);
        memcpy(live, before, width);
    }
    memcpy(need, live, p->in_schema->n);
    free(live);
    free(before);
}

/* Free what step 's' owns (its fields; not 's'). */
static void
plan_step_clear(plan_step *s)
{
    if (s->e)
        expr_free(s->e);
    free(s->cols);
    free(s->aggs);
    free(s->keys);
    free(s->model);
    if (s->join) {
        plan_free(s->join->side);
        free(s->join->right_on);
        free(s->join->right_keep);
        free(s->join);
    }
    schema_free(s->out);
    memset(s, 0, sizeof *s);
}

void
plan_free(plan *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->n_steps; i++)
        plan_step_clear(&p->steps[i]);
    free(p->steps);
    for (i = 0; i < p->n_files; i++) {
        free(p->files[i].path);
        free(p->files[i].rel);
        free(p->files[i].etag);
    }
    free(p->files);
    free(p->parts);
    free(p->pq_rgs);
    free(p->stages);
    free(p->stage_tasks);
    schema_free(p->in_schema);
    free(p->name);
    json_decref(p->spec);
    free(p);
}
