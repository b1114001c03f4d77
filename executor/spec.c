/*
 * spec.c - reading the job spec's JSON field by field, for the planner
 * (plan.c, plan_input.c, steps.c and the operators' compilers): typed
 * getters whose errors name the field's JSON path
 * ("steps[2].by[1].column") and say what to write instead, a strict check
 * of an object's keys that suggests the closest field for a typo, and
 * column look-ups that list the columns there are.
 *
 * A JSON null stands for an absent optional field everywhere.
 */
#include "plan_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

void
plan_path_fmt(char buf[SH_ERR_PATH_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, SH_ERR_PATH_MAX, fmt, ap);
    va_end(ap);
}

void
plan_path_join(char buf[SH_ERR_PATH_MAX], const char *base, const char *key)
{
    if (base == NULL || base[0] == '\0')
        plan_path_fmt(buf, "%s", key);
    else
        plan_path_fmt(buf, "%s.%s", base, key);
}

int
plan_list_find(const char *const *list, const char *word)
{
    int i;

    for (i = 0; list[i]; i++) {
        if (strcmp(list[i], word) == 0)
            return i;
    }
    return -1;
}

void
plan_list_join(const char *const *list, strbuf *sb)
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

const char *
plan_suggest(const char *word, const char *const *list)
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

json_t *
plan_opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_null(v) ? NULL : v;
}

int
plan_check_keys(json_t *obj, const char *base, const char *const *allowed,
                const char *what, sh_err *err)
{
    const char *key, *hint;
    json_t     *v;
    char        path[SH_ERR_PATH_MAX];
    strbuf      sb = {0};

    json_object_foreach(obj, key, v)
    {
        if (plan_list_find(allowed, key) >= 0)
            continue;
        plan_path_join(path, base, key);
        hint = plan_suggest(key, allowed);
        if (hint) {
            sh_err_set(err, SH_EINVAL, path,
                       "unknown field '%s' in %s; did you mean '%s'?", key,
                       what, hint);
        } else {
            plan_list_join(allowed, &sb);
            sh_err_set(err, SH_EINVAL, path,
                       "unknown field '%s' in %s; fields are: %s", key, what,
                       sb.data);
            sb_free(&sb);
        }
        return SH_EINVAL;
    }
    return 0;
}

int
plan_get_string(json_t *obj, const char *key, const char *base, int required,
                const char *hint, const char **out, sh_err *err)
{
    json_t *v = plan_opt(obj, key);
    char    path[SH_ERR_PATH_MAX];

    *out = NULL;
    plan_path_join(path, base, key);
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

int
plan_get_name(json_t *obj, const char *key, const char *base, int required,
              const char *hint, const char **out, sh_err *err)
{
    char path[SH_ERR_PATH_MAX];
    int  rc;

    rc = plan_get_string(obj, key, base, required, hint, out, err);
    if (rc == 0 && *out != NULL && (*out)[0] == '\0') {
        plan_path_join(path, base, key);
        *out = NULL;
        return sh_err_set(err, SH_EINVAL, path, "'%s' is empty: %s", key, hint);
    }
    return rc;
}

int
plan_get_int(json_t *obj, const char *key, const char *base, long long lo,
             long long hi, long long def, long long *out, sh_err *err)
{
    json_t   *v = plan_opt(obj, key);
    char      path[SH_ERR_PATH_MAX];
    char      range[96];
    long long n;

    *out = def;
    if (v == NULL)
        return 0;
    plan_path_join(path, base, key);
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

int
plan_get_bool(json_t *obj, const char *key, const char *base, int def, int *out,
              sh_err *err)
{
    json_t *v = plan_opt(obj, key);
    char    path[SH_ERR_PATH_MAX];

    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        plan_path_join(path, base, key);
        return sh_err_set(err, SH_EINVAL, path, "'%s' must be true or false",
                          key);
    }
    *out = json_is_true(v);
    return 0;
}

int
plan_get_choice(json_t *obj, const char *key, const char *base,
                const char *const *choices, int def, int *out, sh_err *err)
{
    const char *s;
    char        path[SH_ERR_PATH_MAX];
    strbuf      sb = {0};
    int         rc;

    *out = def;
    plan_list_join(choices, &sb);
    rc = plan_get_string(obj, key, base, 0, sb.data, &s, err);
    if (rc == 0 && s != NULL) {
        *out = plan_list_find(choices, s);
        if (*out < 0) {
            plan_path_join(path, base, key);
            rc = sh_err_set(err, SH_EINVAL, path,
                            "unknown %s '%s'; choose one of: %s", key, s,
                            sb.data);
        }
    }
    sb_free(&sb);
    return rc;
}

int
plan_find_column(const schema *sc, const char *name, const char *path,
                 size_t *out, sh_err *err)
{
    strbuf sb = {0};
    long   idx = schema_find(sc, name);

    if (idx >= 0) {
        *out = (size_t)idx;
        return 0;
    }
    plan_list_columns(sc, &sb);
    sh_err_set(err, SH_EINVAL, path, "unknown column '%s'; columns are: %s",
               name, sb.data);
    sb_free(&sb);
    return SH_EINVAL;
}

int
plan_get_column(json_t *obj, const char *key, const char *base,
                const schema *sc, size_t *out, sh_err *err)
{
    const char *name;
    char        path[SH_ERR_PATH_MAX];
    int         rc;

    rc = plan_get_name(obj, key, base, 1, "the name of a column", &name, err);
    if (rc != 0)
        return rc;
    plan_path_join(path, base, key);
    return plan_find_column(sc, name, path, out, err);
}

int
plan_get_columns(json_t *obj, const char *key, const char *base,
                 const schema *sc, size_t **cols, size_t *n_cols, sh_err *err)
{
    json_t *a = plan_opt(obj, key), *c;
    char    path[SH_ERR_PATH_MAX], cpath[SH_ERR_PATH_MAX];
    size_t  j, k, n;
    int     rc = 0;

    *cols = NULL;
    *n_cols = 0;
    plan_path_join(path, base, key);
    if (a == NULL || !json_is_array(a) || json_array_size(a) == 0) {
        return sh_err_set(err, SH_EINVAL, path,
                          "'%s' must be a non-empty array of column names, "
                          "like [\"a\", \"b\"]",
                          key);
    }
    n = json_array_size(a);
    *cols = xcalloc(n, sizeof **cols);
    json_array_foreach(a, j, c)
    {
        plan_path_fmt(cpath, "%s[%zu]", path, j);
        if (!json_is_string(c)
            || strlen(json_string_value(c)) != json_string_length(c)) {
            rc = sh_err_set(err, SH_EINVAL, cpath,
                            "column names must be strings");
            goto done;
        }
        rc = plan_find_column(sc, json_string_value(c), cpath, &(*cols)[j],
                              err);
        if (rc != 0)
            goto done;
        for (k = 0; k < j; k++) {
            if ((*cols)[k] == (*cols)[j]) {
                rc = sh_err_set(err, SH_EINVAL, cpath,
                                "column '%s' is named twice",
                                json_string_value(c));
                goto done;
            }
        }
    }
    *n_cols = n;

done:
    if (rc != 0) {
        free(*cols);
        *cols = NULL;
    }
    return rc;
}

void
plan_err_rebase(sh_err *err, const char *from, const char *to)
{
    size_t n = strlen(from);
    char   rest[SH_ERR_PATH_MAX];

    if (err == NULL || strncmp(err->path, from, n) != 0
        || (err->path[n] != '\0' && err->path[n] != '.'))
        return;
    snprintf(rest, sizeof rest, "%s", err->path + n);
    plan_path_fmt(err->path, "%s%s", to, rest);
}
