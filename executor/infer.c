/*
 * infer.c - what the planner learns by reading the input at submission:
 * the columns of every file, their types inferred from a sample, and the
 * partitions of every file.
 *
 * csv: the header of every file (the files must agree on it); the sample
 * is the first PLAN_SAMPLE_RECORDS records (or PLAN_SAMPLE_BYTES) of the
 * first file that has data. A column whose non-empty values all parse as
 * int is int; else, all as float, float; else, all true/false (any case),
 * bool; else, all ISO 8601 dates (YYYY-MM-DD), date; else, all ISO 8601
 * timestamps or dates (datetime.h), timestamp; else string. A column with
 * no non-empty value in the sample is string.
 *
 * jsonl: the sample is the first records (as above) of every file; the
 * columns are the keys seen in the samples, in order of first appearance;
 * a column is int when all its non-null values are JSON integers that fit
 * 64 bits, float when they are all numbers, bool when all true/false,
 * date or timestamp when all are strings of those forms (as for csv), else
 * (strings, objects, arrays, mixed types) string.
 *
 * lines: one string column, "line".
 *
 * Partitions: plain files are cut into byte ranges at record starts (csv)
 * or line starts (jsonl, lines), with the scanner of csv.h, so a boundary
 * never splits a record; a gzip file is one partition (0 to its size),
 * read through input_gz (input_int.h) here and in the workers.
 * input.columns overrides are applied by the caller, so they work the same
 * at submission and in a worker.
 */
#include "plan_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "csv_par.h"
#include "input_int.h"
#include "../lib/fsys.h"
#include "../lib/util.h"
#include "source.h"
#include "value.h"
#include "datetime.h"

#define PATH_FIELD "input.path"

/* More distinct keys than this in the jsonl samples is refused. */
#define JSONL_MAX_COLUMNS 10000

/* What the sample says about one column. */
typedef struct infer_col {
    uint64_t nonempty; /* non-empty values seen */
    int      int_ok;   /* every non-empty value parsed as int */
    int      float_ok; /* ... as float */
    int      bool_ok;  /* ... as true/false */
    int      date_ok;  /* ... as an ISO 8601 date */
    int      ts_ok;    /* ... as an ISO 8601 timestamp (or date) */
} infer_col;

/* The scan's state, freed in one place. */
typedef struct scan {
    char **names; /* column names (owned), from the first header
                     (csv), the samples' keys (jsonl) or "line" */
    size_t      n_names;
    size_t      cap_names; /* jsonl: slots allocated in names and ic */
    input_names index;     /* jsonl: the column of each key */
    int         have_cols; /* 1 once a file gave the columns */
    size_t      cols_file; /* the file that gave them */
    infer_col  *ic;        /* per column */
    int         sampled;   /* 1 once the sample was read */
    plan_part  *parts;     /* growing array (owned until handed to the plan) */
    size_t      n_parts, cap_parts;
} scan;

void
plan_list_columns(const schema *sc, strbuf *sb)
{
    size_t i, start = sb->len;

    if (sc == NULL || sc->n == 0) {
        sb_puts(sb, "(none)");
        return;
    }
    for (i = 0; i < sc->n; i++) {
        if (sb->len - start > 400) {
            sb_printf(sb, ", ... (%zu more)", sc->n - i);
            return;
        }
        if (i > 0)
            sb_puts(sb, ", ");
        sb_puts(sb, sc->names[i]);
    }
}

/* Prefix err's message with the file it is about, and set the path. */
static int
file_err(sh_err *err, const char *rel)
{
    char msg[SH_ERR_MSG_MAX];

    snprintf(msg, sizeof msg, "%s", err->msg);
    return sh_err_set(err, err->code ? err->code : SH_EIO, PATH_FIELD,
                      "in '%s': %s", rel, msg);
}

/* Is the field a true/false word in any case? */
static int
is_bool_word(const char *p, size_t n)
{
    return (n == 4 && strncasecmp(p, "true", 4) == 0)
           || (n == 5 && strncasecmp(p, "false", 5) == 0);
}

/* Let a non-empty text vote on date and timestamp. */
static void
infer_time(infer_col *c, const char *p, size_t n)
{
    int64_t v;

    if (c->date_ok && dt_parse_date(p, n, &v) != 0)
        c->date_ok = 0;
    if (c->ts_ok && !c->date_ok && dt_parse_timestamp(p, n, &v) != 0)
        c->ts_ok = 0;
}

/* Let one sample value vote on its column's type. */
static void
infer_update(infer_col *c, const csv_field *f)
{
    sh_value v;

    if (f->len == 0)
        return;
    c->nonempty++;
    if (c->int_ok && value_parse(SH_INT, f->ptr, f->len, &v) != 0)
        c->int_ok = 0;
    if (c->float_ok && !c->int_ok
        && value_parse(SH_FLOAT, f->ptr, f->len, &v) != 0)
        c->float_ok = 0;
    if (c->bool_ok && !is_bool_word(f->ptr, f->len))
        c->bool_ok = 0;
    infer_time(c, f->ptr, f->len);
}

static sh_type
infer_type(const infer_col *c)
{
    if (c->nonempty == 0)
        return SH_STRING;
    if (c->int_ok)
        return SH_INT;
    if (c->float_ok)
        return SH_FLOAT;
    if (c->bool_ok)
        return SH_BOOL;
    if (c->date_ok)
        return SH_DATE;
    if (c->ts_ok)
        return SH_TIMESTAMP;
    return SH_STRING;
}

static int
cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(**(char **const *)a, **(char **const *)b);
}

/*
 * Take the column names from the first record of file 'fi' ('fields',
 * 'nf'): the header's names, or column_1..column_N without a header.
 */
static int
take_columns(scan *s, const plan *p, size_t fi, const csv_field *fields,
             size_t nf, sh_err *err)
{
    const char *rel = p->files[fi].rel;
    char     ***sorted = NULL;
    size_t      i;
    int         rc = 0;

    s->names = xcalloc(nf, sizeof *s->names);
    s->n_names = nf;
    for (i = 0; i < nf; i++) {
        json_t *check;

        if (!p->dialect.header || fields[i].len == 0) {
            s->names[i] = xasprintf("column_%zu", i + 1);
            continue;
        }
        if (memchr(fields[i].ptr, '\0', fields[i].len)) {
            return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                              "column %zu in the header of '%s' contains "
                              "a NUL byte",
                              i + 1, rel);
        }
        check = json_stringn(fields[i].ptr, fields[i].len);
        if (check == NULL) {
            return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                              "column %zu in the header of '%s' is not "
                              "valid UTF-8",
                              i + 1, rel);
        }
        json_decref(check);
        s->names[i] = xstrndup(fields[i].ptr, fields[i].len);
    }
    s->have_cols = 1;
    s->cols_file = fi;

    /* Duplicates: sort pointers to the names, compare neighbours. */
    sorted = xcalloc(nf ? nf : 1, sizeof *sorted);
    for (i = 0; i < nf; i++)
        sorted[i] = &s->names[i];
    qsort(sorted, nf, sizeof *sorted, cmp_name_ptr);
    for (i = 1; i < nf; i++) {
        if (strcmp(*sorted[i], *sorted[i - 1]) == 0) {
            rc = sh_err_set(err, SH_EINVAL, PATH_FIELD,
                            "duplicate column name '%s' in header of '%s'",
                            *sorted[i], rel);
            break;
        }
    }
    free(sorted);

    s->ic = xcalloc(nf ? nf : 1, sizeof *s->ic);
    for (i = 0; i < nf; i++) {
        s->ic[i].int_ok = 1;
        s->ic[i].float_ok = 1;
        s->ic[i].bool_ok = 1;
        s->ic[i].date_ok = 1;
        s->ic[i].ts_ok = 1;
    }
    return rc;
}

/* Check that file 'fi' begins with the same header as the first file. */
static int
same_columns(const scan *s, const plan *p, size_t fi, const csv_field *fields,
             size_t nf, sh_err *err)
{
    const char *a = p->files[s->cols_file].rel, *b = p->files[fi].rel;
    size_t      i;

    if (!p->dialect.header) {
        if (nf == s->n_names)
            return 0;
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' has %zu fields in its first record but "
                          "'%s' has %zu; all files must have the same "
                          "columns",
                          b, nf, a, s->n_names);
    }
    if (nf != s->n_names) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' has %zu columns in its header but '%s' has "
                          "%zu; all files must have the same header",
                          b, nf, a, s->n_names);
    }
    for (i = 0; i < nf; i++) {
        const char *want = s->names[i];
        int         same;

        if (fields[i].len == 0) {
            char gen[32];

            snprintf(gen, sizeof gen, "column_%zu", i + 1);
            same = strcmp(gen, want) == 0;
        } else {
            same = strlen(want) == fields[i].len
                   && memcmp(want, fields[i].ptr, fields[i].len) == 0;
        }
        if (!same) {
            return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                              "'%s' and '%s' have different headers: "
                              "column %zu is '%s' in '%s' but '%.*s' in "
                              "'%s'",
                              a, b, i + 1, want, a,
                              (int)(fields[i].len > 200 ? 200 : fields[i].len),
                              fields[i].ptr, b);
        }
    }
    return 0;
}

/*
 * Read the sample from reader 'r', whose current record is 'fields'/'nf'.
 */
static int
take_sample(scan *s, const plan *p, size_t fi, csv_reader *r,
            const csv_field *fields, size_t nf, sh_err *err)
{
    uint64_t n_rec = 0;
    size_t   i;
    int      rc;

    for (;;) {
        if (nf == s->n_names) {
            for (i = 0; i < nf; i++)
                infer_update(&s->ic[i], &fields[i]);
        } else if (!p->on_error_skip) { /* else the run skips it too */
            return sh_err_set(err, SH_EDATA, PATH_FIELD,
                              "'%s' line %llu has %zu fields, expected %zu",
                              p->files[fi].rel,
                              (unsigned long long)csv_reader_line(r), nf,
                              s->n_names);
        }
        n_rec++;
        if (n_rec >= PLAN_SAMPLE_RECORDS
            || csv_reader_bytes(r) >= PLAN_SAMPLE_BYTES)
            break;
        rc = csv_reader_next(r, &fields, &nf, err);
        if (rc < 0)
            return file_err(err, p->files[fi].rel);
        if (rc == 0)
            break;
    }
    s->sampled = 1;
    return 0;
}

/*
 * csv: read the header of file 'fi' from 'r' (checking it against the
 * first file's) and, for the first file with data, the sample. Sets
 * *has_data, and *data_start and *line to where the first data record
 * begins. Returns 0 or an error.
 */
static int
scan_csv(scan *s, const plan *p, size_t fi, csv_reader *r, int *has_data,
         uint64_t *data_start, uint64_t *line, sh_err *err)
{
    const char      *rel = p->files[fi].rel;
    const csv_field *fields;
    size_t           nf;
    int              rc;

    rc = csv_reader_next(r, &fields, &nf, err);
    if (rc < 0)
        return file_err(err, rel);
    if (rc == 0)
        return 0; /* no record at all */
    rc = s->have_cols ? same_columns(s, p, fi, fields, nf, err)
                      : take_columns(s, p, fi, fields, nf, err);
    if (rc != 0)
        return rc;
    if (p->dialect.header) {
        rc = csv_reader_next(r, &fields, &nf, err);
        if (rc < 0)
            return file_err(err, rel);
        if (rc == 0)
            return 0; /* a header and no data */
    }
    *has_data = 1;
    *data_start = csv_reader_record_start(r);
    *line = csv_reader_line(r);
    if (s->sampled)
        return 0;
    return take_sample(s, p, fi, r, fields, nf, err);
}

/* Let one JSON value vote on its column's type. */
static void
infer_json(infer_col *c, const input_json_member *m)
{
    sh_value v;

    if (m->kind == IJ_NULL)
        return;
    c->nonempty++;
    switch (m->kind) {
    case IJ_INT:
        c->bool_ok = 0;
        if (c->int_ok && value_parse(SH_INT, m->val, m->val_len, &v) != 0)
            c->int_ok = 0; /* too large: a float */
        break;
    case IJ_NUMBER:
        c->int_ok = 0;
        c->bool_ok = 0;
        break;
    case IJ_TRUE:
    case IJ_FALSE:
        c->int_ok = 0;
        c->float_ok = 0;
        break;
    default: /* strings, objects, arrays */
        c->int_ok = 0;
        c->float_ok = 0;
        c->bool_ok = 0;
        break;
    }
    if (m->kind == IJ_STRING)
        infer_time(c, m->val, m->val_len);
    else
        c->date_ok = c->ts_ok = 0;
}

/*
 * jsonl: the column of key 'm' into *col (a new one at the end for a key
 * not seen before). Returns 0, or SH_EINVAL with 'err' filled (a key that
 * cannot be a column name, or too many keys).
 */
static int
json_column(scan *s, const plan *p, size_t fi, uint64_t line,
            const input_json_member *m, long *col, sh_err *err)
{
    long    c = input_names_find(&s->index, m->key, m->key_len);
    json_t *check;

    *col = c;
    if (c >= 0)
        return 0;
    if (memchr(m->key, '\0', m->key_len) != NULL) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' line %llu has a key with a NUL character",
                          p->files[fi].rel, (unsigned long long)line);
    }
    check = json_stringn(m->key, m->key_len);
    if (check == NULL) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "'%s' line %llu has a key that is not valid UTF-8",
                          p->files[fi].rel, (unsigned long long)line);
    }
    json_decref(check);
    if (s->n_names >= JSONL_MAX_COLUMNS) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "the jsonl sample has more than %d distinct keys "
                          "(at '%s' line %llu); sheaf reads each key as a "
                          "column",
                          JSONL_MAX_COLUMNS, p->files[fi].rel,
                          (unsigned long long)line);
    }
    if (s->n_names == s->cap_names) {
        s->cap_names = s->cap_names ? s->cap_names * 2 : 16;
        s->names = xrealloc(s->names, s->cap_names * sizeof *s->names);
        s->ic = xrealloc(s->ic, s->cap_names * sizeof *s->ic);
    }
    c = (long)s->n_names++;
    s->names[c] = xstrndup(m->key, m->key_len);
    s->ic[c].nonempty = 0;
    s->ic[c].int_ok = 1;
    s->ic[c].float_ok = 1;
    s->ic[c].bool_ok = 1;
    s->ic[c].date_ok = 1;
    s->ic[c].ts_ok = 1;
    input_names_add(&s->index, s->names[c], m->key_len);
    *col = c;
    return 0;
}

/*
 * jsonl: read the sample of file 'fi' from 'r': its keys become columns,
 * its values vote on their types. Sets *has_data when the file has a
 * record (a line that is not blank). Returns 0 or an error.
 */
static int
scan_jsonl(scan *s, const plan *p, size_t fi, csv_reader *r, int *has_data,
           sh_err *err)
{
    const char      *rel = p->files[fi].rel;
    const csv_field *f;
    input_json       jp;
    size_t           nf, i;
    uint64_t         n_rec = 0, line;
    int              rc;

    memset(&jp, 0, sizeof jp);
    for (;;) {
        rc = csv_reader_next(r, &f, &nf, err);
        if (rc < 0) {
            rc = file_err(err, rel);
            goto done;
        }
        if (rc == 0)
            break;
        rc = input_json_parse(&jp, f->ptr, f->len);
        if (rc == 1)
            continue; /* a blank line */
        *has_data = 1;
        line = csv_reader_line(r);
        if (rc < 0 && !p->on_error_skip) { /* else the run skips it too */
            rc = sh_err_set(err, SH_EDATA, PATH_FIELD,
                            "'%s' line %llu is not a JSON object: %s at "
                            "byte %zu",
                            rel, (unsigned long long)line, jp.what, jp.at + 1);
            goto done;
        }
        for (i = 0; rc == 0 && i < jp.n; i++) {
            long c;

            if ((rc = json_column(s, p, fi, line, &jp.m[i], &c, err)) != 0)
                goto done;
            infer_json(&s->ic[c], &jp.m[i]);
        }
        n_rec++;
        if (n_rec >= PLAN_SAMPLE_RECORDS
            || csv_reader_bytes(r) >= PLAN_SAMPLE_BYTES)
            break;
    }
    rc = 0;
    s->sampled = 1;

done:
    input_json_free(&jp);
    return rc;
}

/* Append the ranges of file 'fi' to the scan's partitions. */
static void
add_parts(scan *s, size_t fi, const csv_range *rg, size_t n)
{
    size_t i;

    if (s->n_parts + n > s->cap_parts) {
        size_t cap = s->cap_parts ? s->cap_parts : 16;

        while (cap < s->n_parts + n)
            cap *= 2;
        s->parts = xrealloc(s->parts, cap * sizeof *s->parts);
        s->cap_parts = cap;
    }
    for (i = 0; i < n; i++) {
        plan_part *pt = &s->parts[s->n_parts++];

        pt->file = fi;
        pt->start = rg[i].start;
        pt->end = rg[i].end;
        pt->line = rg[i].line;
    }
}

/*
 * Scan one file: its header (csv) or keys (jsonl), the sample, and its
 * partitions: byte ranges at record starts, or the whole file for gzip.
 */
/* An error of source_open, as an error of input.path. */
static int
rc_field(sh_err *err)
{
    snprintf(err->path, sizeof err->path, "%s", PATH_FIELD);
    return err->code != 0 ? err->code : SH_EINVAL;
}

static int
scan_file(scan *s, plan *p, size_t fi, sh_err *err)
{
    plan_file       *f = &p->files[fi];
    csv_reader      *r = NULL;
    input_gz        *gz = NULL;
    csv_range       *rg = NULL;
    csv_range        whole;
    csv_dialect      d = p->dialect;
    const csv_field *fields;
    size_t           nf, n_rg = 0;
    uint64_t         data_start = 0, line = 1, estimate, max_parts;
    struct stat      st;
    int              fd = -1, rc = 0, has_data = 0;
    source          *src = NULL;

    if (source_is_remote(f)) {
        /* An s3:// object: size and ETag come from the listing. */
        if (p->in_gzip) {
            return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                              "gzip input from object storage is not "
                              "supported yet ('%s')",
                              f->rel);
        }
        if (f->size_bytes == 0)
            return 0;
        if ((src = source_open(f, 0, f->size_bytes, err)) == NULL)
            return rc_field(err);
        goto opened;
    }
    /* f->path is a real path just resolved; O_NONBLOCK so that a FIFO
     * renamed over it since cannot hang the API (S_ISREG below). */
    fd = fsys_open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;

        /* A file the service may not read is the caller's to fix: 400. */
        return sh_err_set(err, e == EACCES || e == EPERM ? SH_EINVAL : SH_EIO,
                          PATH_FIELD, "cannot open '%s': %s", f->rel,
                          strerror(e));
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;

        rc = sh_err_set(err, SH_EIO, PATH_FIELD, "cannot stat '%s': %s", f->rel,
                        strerror(e));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = sh_err_set(err, SH_EINVAL, PATH_FIELD,
                        "'%s' is not a regular file", f->rel);
        goto done;
    }
    f->size_bytes = (uint64_t)st.st_size;
    f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (f->size_bytes == 0)
        goto done;

opened:
    d.lines = p->in_format != FMT_CSV;
    if (src != NULL) {
        r = csv_reader_new_range_fn(source_read, src, 0, f->size_bytes, 1, &d);
    } else if (p->in_gzip) {
        gz = input_gz_new(fd);
        r = csv_reader_new_fn(input_gz_read, gz, 1, &d);
    } else {
        r = csv_reader_new(fd, 0, f->size_bytes, 1, &d);
    }
    switch (p->in_format) {
    case FMT_CSV:
        rc = scan_csv(s, p, fi, r, &has_data, &data_start, &line, err);
        break;
    case FMT_JSONL:
        rc = scan_jsonl(s, p, fi, r, &has_data, err);
        break;
    case FMT_PARQUET: /* plan_parquet.c reads it, not this scan */
        break;
    case FMT_LINES:
        rc = csv_reader_next(r, &fields, &nf, err); /* any line? */
        if (rc < 0) {
            rc = file_err(err, f->rel);
            break;
        }
        has_data = rc;
        rc = 0;
        break;
    }
    if (rc != 0 || !has_data)
        goto done;
    csv_reader_free(r);
    r = NULL;

    if (p->in_gzip) {
        whole.start = 0;
        whole.end = f->size_bytes;
        whole.line = 1;
        add_parts(s, fi, &whole, 1);
        goto done;
    }
    estimate = (f->size_bytes - data_start + p->partition_bytes - 1)
               / p->partition_bytes;
    max_parts = p->max_parts ? p->max_parts : PLAN_MAX_PARTITIONS;
    if (s->n_parts + estimate > max_parts) {
        rc = sh_err_set(err, SH_EINVAL, "input.partition_size",
                        "a partition_size of %llu bytes cuts the input into "
                        "about %llu partitions; at most %llu are allowed "
                        "(SHEAF_MAX_PARTITIONS). A bare number is bytes: "
                        "write \"64MiB\" for 64 MiB",
                        (unsigned long long)p->partition_bytes,
                        (unsigned long long)(s->n_parts + estimate),
                        (unsigned long long)max_parts);
        goto done;
    }
    if (src != NULL) {
        /* A second pass over the object, from the first record on. */
        source_free(src);
        src = source_open(f, data_start, f->size_bytes, err);
        rc = src ? csv_split_fn(source_read, src, data_start, line,
                                f->size_bytes, &d, p->partition_bytes, &rg,
                                &n_rg, err)
                 : SH_EINVAL;
    } else {
        rc = csv_split_par(fd, data_start, line, f->size_bytes, &d,
                           p->partition_bytes, &rg, &n_rg, err);
    }
    if (rc != 0) {
        rc = file_err(err, f->rel);
        goto done;
    }
    add_parts(s, fi, rg, n_rg);

done:
    free(rg);
    csv_reader_free(r);
    input_gz_free(gz);
    source_free(src);
    if (fd >= 0)
        (void)fsys_close(fd);
    return rc;
}

/*
 * Read every file of 'p': columns, types, partitions; see plan_int.h.
 */
int
plan_scan_input(plan *p, sh_err *err)
{
    scan   s;
    size_t i;
    int    rc = 0;

    memset(&s, 0, sizeof s);
    if (p->in_format == FMT_LINES) {
        s.names = xcalloc(1, sizeof *s.names);
        s.names[0] = xstrdup("line");
        s.n_names = 1;
        s.ic = xcalloc(1, sizeof *s.ic); /* no votes: string */
        s.have_cols = 1;
    }
    for (i = 0; i < p->n_files; i++) {
        rc = scan_file(&s, p, i, err);
        if (rc != 0)
            goto done;
    }
    p->in_schema = schema_new();
    for (i = 0; i < s.n_names; i++)
        schema_add(p->in_schema, s.names[i], infer_type(&s.ic[i]));
    if (s.n_parts == 0 && p->n_files > 0) {
        /* No record at all: one empty partition, so that the result is
         * still written (a CSV output is then its header row alone). */
        s.parts = xcalloc(1, sizeof *s.parts);
        s.parts[0].file = 0;
        s.parts[0].start = s.parts[0].end = p->files[0].size_bytes;
        s.parts[0].line = 1;
        s.n_parts = 1;
    }
    p->parts = s.parts;
    p->n_parts = s.n_parts;
    s.parts = NULL;

done:
    for (i = 0; i < s.n_names; i++)
        free(s.names[i]);
    free(s.names);
    free(s.ic);
    free(s.parts);
    input_names_free(&s.index);
    return rc;
}
