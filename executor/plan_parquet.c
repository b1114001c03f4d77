/*
 * plan_parquet.c - the planner's side of Parquet input (format "parquet"):
 * the schema of the files from their footers (which must agree), then,
 * once the steps are compiled, the columns the job reads checked
 * (pq_check_columns), the row groups the first filter's comparisons rule
 * out skipped (pq_rg_may_match), and the rest cut into partitions of row
 * groups (pq_partition). A partition is plan.pq_rgs[start .. end): row
 * groups of one file, which the stored resolution keeps ("row_groups") so
 * that plan_load rebuilds it without reading the files.
 */
#include "plan_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/fsys.h"
#include "../lib/util.h"
#include "parquet.h"

#define PATH_FIELD "input.path"

/* At most this many comparisons of a filter are used for pruning. */
#define MAX_PREDS 64

/*
 * The sheaf type of a Parquet column: exactly what the reader gives
 * (pq_col.type, parquet.h's table): DATE is date, TIMESTAMP of any unit
 * and INT96 are timestamp (microseconds, UTC), TIME is int. The reader's
 * values follow the same mapping, so the two cannot differ.
 */
static sh_type
plan_pq_type(const pq_col *c)
{
    return c->type;
}

/*
 * Open plan file 'f' (a real path just resolved) and its footer; refresh
 * its size and mtime. Returns the pq_file with *fd open (the caller closes
 * both), or NULL with 'err' set at input.path.
 */
static pq_file *
open_file(plan_file *f, int *fd, sh_err *err)
{
    struct stat st;
    pq_file    *pf;
    sh_err      e;

    *fd = fsys_open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
    if (*fd < 0) {
        int en = errno;

        sh_err_set(err, SH_EIO, PATH_FIELD, "cannot open '%s': %s", f->rel,
                   strerror(en));
        return NULL;
    }
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        sh_err_set(err, SH_EINVAL, PATH_FIELD, "'%s' is not a regular file",
                   f->rel);
        goto fail;
    }
    f->size_bytes = (uint64_t)st.st_size;
    f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    sh_err_clear(&e);
    pf = pq_open(*fd, f->rel, &e);
    if (pf == NULL) {
        sh_err_set(err, e.code ? e.code : SH_EDATA, PATH_FIELD,
                   "'%s' cannot be read as Parquet: %s", f->rel, e.msg);
        goto fail;
    }
    return pf;

fail:
    (void)fsys_close(*fd);
    *fd = -1;
    return NULL;
}

/* The columns of 'pf' as a schema; SH_EINVAL for a name that repeats. */
static int
file_schema(const pq_file *pf, const char *rel, schema **out, sh_err *err)
{
    schema *sc = schema_new();
    size_t  i;

    for (i = 0; i < pq_num_cols(pf); i++) {
        const pq_col *c = pq_col_at(pf, i);

        if (schema_find(sc, c->name) >= 0) {
            schema_free(sc);
            return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                              "'%s' has two columns named '%s'", rel, c->name);
        }
        schema_add(sc, c->name, plan_pq_type(c));
    }
    *out = sc;
    return 0;
}

/* 0 when 'b' (of file 'rel') has the columns and types of 'a' (of the
 * first file, 'first'); else SH_EINVAL naming the difference. */
static int
same_schema(const schema *a, const char *first, const schema *b,
            const char *rel, sh_err *err)
{
    size_t i;

    for (i = 0; i < a->n && i < b->n; i++) {
        if (strcmp(a->names[i], b->names[i]) != 0
            || a->types[i] != b->types[i]) {
            return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                              "the Parquet files differ: column %zu is "
                              "'%s' (%s) in '%s' but '%s' (%s) in '%s'; "
                              "every file of an input must have the same "
                              "columns",
                              i + 1, a->names[i], sh_type_name(a->types[i]),
                              first, b->names[i], sh_type_name(b->types[i]),
                              rel);
        }
    }
    if (a->n != b->n) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "the Parquet files differ: '%s' has %zu columns "
                          "but '%s' has %zu; every file of an input must "
                          "have the same columns",
                          first, a->n, rel, b->n);
    }
    return 0;
}

/* The schema of the files; see plan_int.h. */
int
plan_pq_scan(plan *p, sh_err *err)
{
    schema  *sc = NULL;
    pq_file *pf;
    size_t   i;
    int      fd, rc = 0;

    for (i = 0; i < p->n_files && rc == 0; i++) {
        pf = open_file(&p->files[i], &fd, err);
        if (pf == NULL)
            return err->code ? err->code : SH_EIO;
        rc = file_schema(pf, p->files[i].rel, &sc, err);
        if (rc == 0 && i == 0) {
            p->in_schema = sc;
        } else if (rc == 0) {
            rc = same_schema(p->in_schema, p->files[0].rel, sc, p->files[i].rel,
                             err);
            schema_free(sc);
        }
        pq_close(pf);
        (void)fsys_close(fd);
    }
    return rc;
}

/* pq_cmp of an expr_rel (the same order). */
static pq_cmp
pq_rel(expr_rel r)
{
    static const pq_cmp map[] = {PQ_CMP_EQ,      PQ_CMP_NE,      PQ_CMP_LT,
                                 PQ_CMP_LE,      PQ_CMP_GT,      PQ_CMP_GE,
                                 PQ_CMP_IS_NULL, PQ_CMP_NOT_NULL};

    return map[r];
}

/*
 * The comparisons that every row the job keeps satisfies, in input
 * columns: those of the filters met before any step that is not a
 * filter, select or derive (a limit, a sort or a groupby before a filter
 * makes row groups matter as a whole). Returns how many are in 'out'.
 */
static size_t
job_preds(const plan *p, expr_pred *out, size_t max)
{
    long  *map, *next;
    size_t i, j, k, n = 0, width = p->in_schema->n;

    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].out->n > width)
            width = p->steps[i].out->n;
    }
    map = xmalloc((width + 1) * sizeof *map);
    next = xmalloc((width + 1) * sizeof *next);
    for (k = 0; k < p->in_schema->n; k++)
        map[k] = (long)k;
    for (i = 0; i < p->n_steps && n < max; i++) {
        const plan_step *s = &p->steps[i];
        size_t           got;

        if (s->op == OP_FILTER) {
            size_t base = n;

            got = expr_and_preds(s->e, out + base, max - base);
            for (j = 0; j < got; j++) {
                expr_pred pr = out[base + j]; /* n <= base + j */

                if (map[pr.col] >= 0) {
                    pr.col = (size_t)map[pr.col];
                    out[n++] = pr;
                }
            }
        } else if (s->op == OP_SELECT) {
            for (j = 0; j < s->n_cols; j++)
                next[j] = map[s->cols[j]];
            memcpy(map, next, s->n_cols * sizeof *map);
        } else if (s->op == OP_DERIVE) {
            map[s->col] = -1; /* replaced (s->col < in->n) or appended */
        } else {
            break;
        }
    }
    free(map);
    free(next);
    return n;
}

/* Append 'v' to the array *a of *n entries (*cap slots). */
static void
push_size(size_t **a, size_t *n, size_t *cap, size_t v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *a = xrealloc(*a, *cap * sizeof **a);
    }
    (*a)[(*n)++] = v;
}

/* Append part [file, start, end) to p->parts (*cap slots). */
static void
push_part(plan *p, size_t *cap, size_t file, size_t start, size_t end)
{
    plan_part *pt;

    if (p->n_parts == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        p->parts = xrealloc(p->parts, *cap * sizeof *p->parts);
    }
    pt = &p->parts[p->n_parts++];
    pt->file = file;
    pt->start = start;
    pt->end = end;
    pt->line = 1;
}

/* Check, prune and cut the row groups; see plan_int.h. */
int
plan_pq_cut(plan *p, const unsigned char *need, sh_err *err)
{
    expr_pred preds[MAX_PREDS];
    size_t    n_preds = job_preds(p, preds, MAX_PREDS);
    size_t    i, rg, j, cap_rgs = 0, cap_parts = 0, nkept, nparts;
    size_t   *kept = NULL, *starts = NULL;
    pq_file  *pf = NULL;
    int       fd = -1, rc = 0;

    free(p->parts);
    free(p->pq_rgs);
    p->parts = NULL;
    p->pq_rgs = NULL;
    p->n_parts = p->n_pq_rgs = 0;
    p->pq_rg_total = p->pq_rg_skipped = 0;
    for (i = 0; i < p->n_files; i++) {
        pf = open_file(&p->files[i], &fd, err);
        if (pf == NULL) {
            rc = err->code ? err->code : SH_EIO;
            goto done;
        }
        if ((rc = pq_check_columns(pf, need, err)) != 0) {
            snprintf(err->path, sizeof err->path, "%s", PATH_FIELD);
            goto done;
        }
        nkept = 0;
        kept = xmalloc((pq_num_row_groups(pf) + 1) * sizeof *kept);
        for (rg = 0; rg < pq_num_row_groups(pf); rg++) {
            int may = pq_rg_rows(pf, rg) > 0;

            for (j = 0; may && j < n_preds; j++)
                may = pq_rg_may_match(pf, rg, preds[j].col,
                                      pq_rel(preds[j].rel), &preds[j].k);
            p->pq_rg_total++;
            if (may)
                kept[nkept++] = rg;
            else
                p->pq_rg_skipped++;
        }
        nparts = pq_partition(pf, kept, nkept, (int64_t)p->partition_bytes,
                              &starts);
        if (p->n_parts + nparts
            > (p->max_parts ? p->max_parts : PLAN_MAX_PARTITIONS)) {
            rc = sh_err_set(err, SH_EINVAL, "input.partition_size",
                            "a partition_size of %llu bytes cuts the input "
                            "into %llu partitions or more; at most %llu are "
                            "allowed (SHEAF_MAX_PARTITIONS)",
                            (unsigned long long)p->partition_bytes,
                            (unsigned long long)(p->n_parts + nparts),
                            (unsigned long long)(p->max_parts
                                                     ? p->max_parts
                                                     : PLAN_MAX_PARTITIONS));
            goto done;
        }
        for (j = 0; j < nparts; j++) {
            size_t end = j + 1 < nparts ? starts[j + 1] : nkept;

            push_part(p, &cap_parts, i, p->n_pq_rgs + starts[j],
                      p->n_pq_rgs + end);
        }
        for (j = 0; j < nkept; j++)
            push_size(&p->pq_rgs, &p->n_pq_rgs, &cap_rgs, kept[j]);
        free(kept);
        free(starts);
        kept = starts = NULL;
        pq_close(pf);
        pf = NULL;
        (void)fsys_close(fd);
        fd = -1;
    }
    if (p->n_parts == 0 && p->n_files > 0) {
        /* No row group to read: one empty partition, so that the result
         * is still written. */
        push_part(p, &cap_parts, 0, p->n_pq_rgs, p->n_pq_rgs);
    }

done:
    free(kept);
    free(starts);
    pq_close(pf);
    if (fd >= 0)
        (void)fsys_close(fd);
    return rc;
}

/* The row groups for the resolution (the caller owns it); see
 * plan_int.h. */
json_t *
plan_pq_resolution(const plan *p)
{
    json_t *a = json_array();
    size_t  i;

    for (i = 0; i < p->n_pq_rgs; i++)
        json_array_append_new(a, json_integer((json_int_t)p->pq_rgs[i]));
    return json_pack("{s:o, s:I, s:I}", "list", a, "total",
                     (json_int_t)p->pq_rg_total, "skipped",
                     (json_int_t)p->pq_rg_skipped);
}

/* The row groups from the resolution; see plan_int.h. */
int
plan_pq_load(plan *p, json_t *rgs)
{
    json_t *list = json_object_get(rgs, "list"), *v;
    size_t  i;

    if (!json_is_array(list) || !json_is_integer(json_object_get(rgs, "total"))
        || !json_is_integer(json_object_get(rgs, "skipped")))
        return -1;
    p->n_pq_rgs = json_array_size(list);
    p->pq_rgs = xcalloc(p->n_pq_rgs + 1, sizeof *p->pq_rgs);
    json_array_foreach(list, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return -1;
        p->pq_rgs[i] = (size_t)json_integer_value(v);
    }
    p->pq_rg_total = (uint64_t)json_integer_value(
        json_object_get(rgs, "total"));
    p->pq_rg_skipped = (uint64_t)json_integer_value(
        json_object_get(rgs, "skipped"));
    return 0;
}
