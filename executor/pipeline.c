/*
 * pipeline.c - one partition of a plan, streamed: the CSV reader gives
 * records, each field is parsed into a typed value (into one reused row),
 * the map steps run in order, and the writer formats the surviving rows.
 *
 * Per-row temporaries (strings that expressions make) live in an arena
 * reset before every row; the row arrays and the writer's buffers are
 * allocated once. So memory is bounded by the widest row, never by the
 * size of the partition.
 *
 * Input columns that no step and not the output read (dropped by a select
 * before anything looks at them) are not parsed: they stay null, and a bad
 * value in them is no error. Which columns an expression reads is found by
 * compiling it once more without each candidate column.
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "util.h"
#include "value.h"
#include "writer.h"

/* Tick at least this often, in rows and in milliseconds. */
#define TICK_ROWS 65536
#define TICK_MS   100
/* Bad values are quoted in messages up to this many bytes. */
#define SNIPPET_BYTES 40

/* The state of one run, released in one place. */
typedef struct run {
    const plan      *p;
    const plan_part *part;
    const plan_file *file;
    char             ctx[512];  /* "partition 3 (file a.csv, bytes 0-9)" */
    int              in_fd;
    int              out_fd;
    char            *tmp_path;  /* "<out_path>.tmp" (owned) */
    csv_reader      *rd;
    writer          *w;
    arena           *a;         /* per-row temporaries */
    sh_value        *row;       /* the row, as wide as the widest schema */
    sh_value        *tmp;       /* scratch for select */
    unsigned char   *need;      /* per input column: 1 to parse it */
} run;

/* Fill 'err' with 'code' and the run's context before the message. */
static int __attribute__((format(printf, 4, 5)))
run_fail(const run *rn, sh_err *err, int code, const char *fmt, ...)
{
    char    msg[SH_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sh_err_set(err, code, "", "%s, %s", rn->ctx, msg);
}

/*
 * Up to SNIPPET_BYTES of a value, cut at a character boundary, with control
 * characters and invalid bytes shown as '?', into 'buf' (>= 64 bytes).
 */
static void
snippet(const char *s, size_t n, char *buf)
{
    size_t i = 0, o = 0;

    while (i < n && o < SNIPPET_BYTES) {
        unsigned char c = (unsigned char)s[i];
        size_t        k = 1, j;

        if (c >= 0xC2 && c <= 0xF4)
            k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        for (j = 1; j < k; j++) {
            if (i + j >= n || ((unsigned char)s[i + j] & 0xC0) != 0x80)
                break;
        }
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && (k == 1 || j < k))) {
            buf[o++] = '?';
            i++;
            continue;
        }
        if (o + k > SNIPPET_BYTES)
            break;
        memcpy(buf + o, s + i, k);
        o += k;
        i += k;
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

/* The expression text of step 'i', from the spec. */
static const char *
step_source(const plan *p, size_t i)
{
    json_t *st = json_array_get(json_object_get(p->spec, "steps"), i);

    return json_string_value(json_object_get(
        st, p->steps[i].op == OP_FILTER ? "where" : "expr"));
}

/*
 * Mark in 'live' (one entry per column of 'sc') the columns the expression
 * of step 'i' reads: it no longer compiles without them.
 */
static void
mark_refs(const plan *p, size_t i, const schema *sc, unsigned char *live)
{
    const char *src = step_source(p, i);
    schema     *copy;
    size_t      k;

    if (src == NULL) {
        memset(live, 1, sc->n);
        return;
    }
    copy = schema_copy(sc);
    for (k = 0; k < sc->n; k++) {
        char   *saved = copy->names[k];
        char    hidden[] = "\x01\x02 hidden column";
        sh_err  e;
        expr   *x;

        if (live[k])
            continue;
        copy->names[k] = hidden;
        x = expr_compile(src, copy, "", &e);
        copy->names[k] = saved;
        if (x == NULL)
            live[k] = 1;
        else
            expr_free(x);
    }
    schema_free(copy);
}

/*
 * Which input columns must be parsed: those live at the input, going back
 * from the output (all of whose columns are live) through the steps.
 */
static void
needed_columns(const plan *p, size_t width, unsigned char *need)
{
    unsigned char *live = xcalloc(width, 1), *before = xcalloc(width, 1);
    size_t         i, j, k;
    int            has_select = 0;

    for (i = 0; i < p->n_steps; i++)
        has_select |= p->steps[i].op == OP_SELECT;
    if (!has_select) {
        memset(need, 1, p->in_schema->n);
        goto done;
    }
    memset(live, 1, p->out_schema->n);
    for (i = p->n_steps; i-- > 0;) {
        const plan_step *s = &p->steps[i];
        const schema    *in = i ? p->steps[i - 1].out : p->in_schema;

        memset(before, 0, width);
        switch (s->op) {
        case OP_SELECT:
            for (j = 0; j < s->n_cols; j++) {
                if (live[j])
                    before[s->cols[j]] = 1;
            }
            break;
        case OP_FILTER:
            memcpy(before, live, in->n);
            mark_refs(p, i, in, before);
            break;
        case OP_DERIVE:
            for (k = 0; k < in->n; k++)
                before[k] = k == s->col ? 0 : live[k];
            mark_refs(p, i, in, before);
            break;
        default:
            break;
        }
        memcpy(live, before, width);
    }
    memcpy(need, live, p->in_schema->n);
done:
    free(live);
    free(before);
}

/*
 * Run the steps over the row ('*n' values, updated). Returns 1 to keep the
 * row, 0 to drop it, or an error naming the step.
 */
static int
apply_steps(run *rn, size_t *n, sh_err *err)
{
    const plan *p = rn->p;
    size_t      i, j;
    sh_value    v;
    sh_err      e;

    for (i = 0; i < p->n_steps; i++) {
        const plan_step *s = &p->steps[i];

        switch (s->op) {
        case OP_FILTER:
        case OP_DERIVE:
            if (expr_eval(s->e, rn->row, rn->a, &v, &e) != 0) {
                return run_fail(rn, err, e.code ? e.code : SH_ERANGE,
                                "step %zu (%s): %s, line %llu", i,
                                s->op == OP_FILTER ? "filter" : "derive",
                                e.msg,
                                (unsigned long long)csv_reader_line(rn->rd));
            }
            if (s->op == OP_FILTER) {
                if (v.type != SH_BOOL || !v.u.b)
                    return 0;
            } else {
                rn->row[s->col] = v;
                if (s->col == *n)
                    (*n)++;
            }
            break;
        case OP_SELECT:
            for (j = 0; j < s->n_cols; j++)
                rn->tmp[j] = rn->row[s->cols[j]];
            memcpy(rn->row, rn->tmp, s->n_cols * sizeof *rn->row);
            *n = s->n_cols;
            break;
        default:
            break;
        }
    }
    return 1;
}

/*
 * Parse the record's fields into the row. Returns 0, or -1 with 'err'
 * saying which value failed (an SH_EDATA the caller may skip).
 */
static int
parse_row(run *rn, const csv_field *f, sh_err *err)
{
    const schema *sc = rn->p->in_schema;
    size_t        c;
    char          snip[64];

    for (c = 0; c < sc->n; c++) {
        sh_type t = sc->types[c];

        if (!rn->need[c]) {
            rn->row[c] = sh_null();
        } else if (f[c].len == 0) {
            rn->row[c] = t == SH_STRING && f[c].quoted ? sh_str("", 0)
                                                       : sh_null();
        } else if (value_parse(t, f[c].ptr, f[c].len, &rn->row[c]) != 0) {
            snippet(f[c].ptr, f[c].len, snip);
            run_fail(rn, err, SH_EDATA,
                     "input: cannot parse '%s' as %s in column %s, line %llu",
                     snip, sh_type_name(t), sc->names[c],
                     (unsigned long long)csv_reader_line(rn->rd));
            return -1;
        }
    }
    return 0;
}

/* Open the partition's file and check it is the one the plan saw. */
static int
open_input(run *rn, sh_err *err)
{
    struct stat st;
    int64_t     mtime_ns;

    rn->in_fd = open(rn->file->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rn->in_fd < 0) {
        int e = errno;

        if (e == ENOENT) {
            return run_fail(rn, err, SH_EDATA,
                            "input file '%s' no longer exists; it was "
                            "there when the job was submitted",
                            rn->file->rel);
        }
        return run_fail(rn, err, SH_EIO, "cannot open input file '%s': %s",
                        rn->file->rel, strerror(e));
    }
    if (fstat(rn->in_fd, &st) != 0) {
        int e = errno;

        return run_fail(rn, err, SH_EIO, "cannot stat input file '%s': %s",
                        rn->file->rel, strerror(e));
    }
    mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != rn->file->size_bytes
        || mtime_ns != rn->file->mtime_ns) {
        return run_fail(rn, err, SH_EDATA,
                        "input file '%s' changed since the job was "
                        "submitted; submit the job again",
                        rn->file->rel);
    }
    return 0;
}

/* fsync the directory holding 'path', so a rename in it is durable. */
static void
sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char       *dir;
    int         fd;

    dir = slash == NULL    ? xstrdup(".")
          : slash == path ? xstrdup("/")
                          : xstrndup(path, (size_t)(slash - path));
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse it */
        close(fd);
    }
    free(dir);
}

/* Call the tick function; non-zero from it cancels the run. */
static int
do_tick(run *rn, pipeline_tick_fn tick, void *ctx, pipeline_stats *st,
        sh_err *err)
{
    if (tick == NULL || tick(ctx, st) == 0)
        return 0;
    return run_fail(rn, err, SH_ECANCELED, "cancelled");
}

/* The record loop. */
static int
stream(run *rn, pipeline_tick_fn tick, void *ctx, pipeline_stats *st,
       sh_err *err)
{
    const plan      *p = rn->p;
    const csv_field *f;
    size_t           nf, n_in = p->in_schema->n, n;
    uint64_t         last_rows = 0;
    int64_t          last_ms = now_ms();
    sh_err           e;
    int              rc;

    for (;;) {
        rc = csv_reader_next(rn->rd, &f, &nf, &e);
        if (rc < 0) {
            return run_fail(rn, err, e.code ? e.code : SH_EIO, "input: %s",
                            e.msg);
        }
        if (rc == 0)
            break;
        st->rows_in++;
        arena_reset(rn->a);
        if (nf != n_in) {
            if (p->on_error_skip) {
                st->rows_skipped++;
                continue;
            }
            return run_fail(rn, err, SH_EDATA,
                            "input: line %llu has %zu fields, expected %zu",
                            (unsigned long long)csv_reader_line(rn->rd), nf,
                            n_in);
        }
        if (parse_row(rn, f, err) != 0) {
            if (p->on_error_skip) {
                sh_err_clear(err);
                st->rows_skipped++;
                continue;
            }
            return SH_EDATA;
        }
        n = n_in;
        rc = apply_steps(rn, &n, err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if ((rc = writer_row(rn->w, rn->row, err)) != 0)
                return run_fail(rn, err, rc, "output: %s", err->msg);
            st->rows_out++;
        }
        if ((st->rows_in & 1023) == 0) {
            int64_t t = now_ms();

            if (st->rows_in - last_rows >= TICK_ROWS
                || t - last_ms >= TICK_MS) {
                st->bytes_in = csv_reader_bytes(rn->rd);
                st->bytes_out = writer_bytes_out(rn->w);
                if ((rc = do_tick(rn, tick, ctx, st, err)) != 0)
                    return rc;
                last_rows = st->rows_in;
                last_ms = t;
            }
        }
    }
    st->bytes_in = csv_reader_bytes(rn->rd);
    return 0;
}

int
pipeline_run_part(const plan *p, size_t part, const char *out_path,
                  pipeline_tick_fn tick, void *ctx, pipeline_stats *st,
                  sh_err *err)
{
    pipeline_stats local;
    run            rn;
    size_t         width, i;
    int            rc = 0, renamed = 0;

    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof *st);
    memset(&rn, 0, sizeof rn);
    rn.in_fd = rn.out_fd = -1;
    sh_err_clear(err);
    if (part >= p->n_parts) {
        return sh_err_set(err, SH_EINVAL, "",
                          "partition %zu does not exist (the plan has %zu)",
                          part, p->n_parts);
    }
    if (p->in_format != FMT_CSV) {
        return sh_err_set(err, SH_EINVAL, "input.format",
                          "only csv input is supported");
    }
    rn.p = p;
    rn.part = &p->parts[part];
    rn.file = &p->files[rn.part->file];
    snprintf(rn.ctx, sizeof rn.ctx, "partition %zu (file %s, bytes %llu-%llu)",
             part, rn.file->rel, (unsigned long long)rn.part->start,
             (unsigned long long)rn.part->end);

    if ((rc = open_input(&rn, err)) != 0)
        goto done;
    rn.tmp_path = xasprintf("%s.tmp", out_path);
    rn.out_fd = open(rn.tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                     0644);
    if (rn.out_fd < 0) {
        int e = errno;

        rc = run_fail(&rn, err, SH_EIO, "cannot create output '%s': %s",
                      rn.tmp_path, strerror(e));
        free(rn.tmp_path);
        rn.tmp_path = NULL; /* not ours to unlink */
        goto done;
    }

    width = p->in_schema->n;
    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].out->n > width)
            width = p->steps[i].out->n;
    }
    rn.row = xcalloc(width + 1, sizeof *rn.row);
    rn.tmp = xcalloc(width + 1, sizeof *rn.tmp);
    rn.need = xcalloc(width + 1, 1);
    needed_columns(p, width + 1, rn.need);
    rn.a = arena_new(64 * 1024);
    rn.w = writer_new(rn.out_fd,
                      p->out_format == FMT_JSONL ? WRITER_JSONL : WRITER_CSV,
                      p->out_gzip, p->out_schema);
    rn.rd = csv_reader_new(rn.in_fd, rn.part->start, rn.part->end,
                           rn.part->line, &p->dialect);

    if (part == 0 && (rc = writer_header(rn.w, err)) != 0) {
        rc = run_fail(&rn, err, rc, "output: %s", err->msg);
        goto done;
    }
    if ((rc = stream(&rn, tick, ctx, st, err)) != 0)
        goto done;
    if ((rc = do_tick(&rn, tick, ctx, st, err)) != 0)
        goto done;
    if ((rc = writer_finish(rn.w, err)) != 0) {
        rc = run_fail(&rn, err, rc, "output: %s", err->msg);
        goto done;
    }
    st->bytes_out = writer_bytes_out(rn.w);
    if (fsync(rn.out_fd) != 0) {
        int e = errno;

        rc = run_fail(&rn, err, SH_EIO, "cannot sync output: %s",
                      strerror(e));
        goto done;
    }
    if (close(rn.out_fd) != 0) {
        int e = errno;

        rn.out_fd = -1;
        rc = run_fail(&rn, err, SH_EIO, "cannot close output: %s",
                      strerror(e));
        goto done;
    }
    rn.out_fd = -1;
    if (rename(rn.tmp_path, out_path) != 0) {
        int e = errno;

        rc = run_fail(&rn, err, SH_EIO, "cannot rename output to '%s': %s",
                      out_path, strerror(e));
        goto done;
    }
    renamed = 1;
    sync_dir(out_path);

done:
    csv_reader_free(rn.rd);
    writer_free(rn.w);
    arena_free(rn.a);
    free(rn.row);
    free(rn.tmp);
    free(rn.need);
    if (rn.in_fd >= 0)
        close(rn.in_fd);
    if (rn.out_fd >= 0)
        close(rn.out_fd);
    if (rn.tmp_path && !renamed)
        unlink(rn.tmp_path);
    free(rn.tmp_path);
    return rc;
}
