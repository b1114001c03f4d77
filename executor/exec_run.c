/*
 * exec_run.c - what every part of a running task may call: fail with the
 * task's context, remove a prefix's files, count and tick, and push a row
 * through the stage's map steps into its sink (exec_int.h).
 *
 * A source pushes rows one at a time (exec_push); the map steps work in
 * place on one reused row buffer, and a step that makes several rows of
 * one (tokenize, join) writes each into a buffer of its own before
 * passing it on, so the row it reads stays intact. Strings that
 * expressions and steps make live in an arena reset before every source
 * row: no map step allocates per row.
 */
#include "exec_int.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "expr.h"
#include "input.h"
#include "nb.h"
#include "op.h"
#include "text.h"

/* ---- messages --------------------------------------------------------- */

int
exec_fail(const exec_run *x, sh_err *err, int code, const char *fmt, ...)
{
    char    msg[SH_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sh_err_set(err, code, "", "%s, %s", x->ctx, msg);
}

const char *
exec_step_words(const exec_run *x, size_t i, char buf[64])
{
    snprintf(buf, 64, "step %zu (%s)", i, x->p->steps[i].def->name);
    return buf;
}

int
exec_step_fail(const exec_run *x, size_t step, const sh_err *e, sh_err *err)
{
    char words[64], line[48] = "";

    if (x->in != NULL && !x->at_end) {
        /* Parquet has no lines: the row's number in the partition. */
        snprintf(line, sizeof line, ", %s %llu",
                 x->p->in_format == FMT_PARQUET ? "row" : "line",
                 (unsigned long long)input_line(x->in));
    }
    return exec_fail(x, err, e->code ? e->code : SH_EIO, "%s: %s%s",
                     exec_step_words(x, step, words), e->msg, line);
}

/* ---- files ------------------------------------------------------------ */

void
exec_remove_prefixed(const char *prefix, const char *tag)
{
    const char    *slash = strrchr(prefix, '/');
    char          *dir, *start;
    DIR           *d;
    struct dirent *de;
    size_t         n_start;

    dir = slash == NULL     ? xstrdup(".")
          : slash == prefix ? xstrdup("/")
                            : xstrndup(prefix, (size_t)(slash - prefix));
    start = xasprintf("%s%s", slash ? slash + 1 : prefix, tag);
    n_start = strlen(start);
    d = opendir(dir);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, start, n_start) == 0) {
                char *path = xasprintf("%s/%s", dir, de->d_name);

                (void)fsys_unlink(path);
                free(path);
            }
        }
        closedir(d);
    }
    free(start);
    free(dir);
}

uint64_t
exec_file_bytes(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

void
exec_free_paths(char **paths, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* ---- stats and ticks -------------------------------------------------- */

void
exec_note_peak(exec_run *x, size_t bytes)
{
    if (bytes > x->st->peak_bytes)
        x->st->peak_bytes = bytes;
}

void
exec_refresh_stats(exec_run *x)
{
    exec_stats *st = x->st;

    if (x->in != NULL) {
        st->rows_in = input_rows(x->in);
        st->rows_skipped = input_skipped(x->in);
        st->bytes_in = input_bytes(x->in);
    }
    if (x->sink != NULL) {
        st->bytes_out = x->sink->ops->bytes_out(x->sink);
        exec_note_peak(x, x->sink->ops->held_bytes(x->sink) + x->side_bytes);
    }
}

int
exec_tick_now(exec_run *x, sh_err *err)
{
    exec_refresh_stats(x);
    x->tick_rows = x->rows_seen;
    x->tick_ms = now_ms();
    if (x->tick == NULL || x->tick(x->tick_ctx, x->st) == 0)
        return 0;
    return exec_fail(x, err, SH_ECANCELED, "cancelled");
}

/* Tick when EXEC_TICK_ROWS rows or EXEC_TICK_MS have passed; the clock is
 * read every 1024 rows. */
static inline int
tick_maybe(exec_run *x, sh_err *err)
{
    if ((++x->rows_seen & 1023) != 0)
        return 0;
    if (x->rows_seen - x->tick_rows >= EXEC_TICK_ROWS
        || now_ms() - x->tick_ms >= EXEC_TICK_MS)
        return exec_tick_now(x, err);
    return 0;
}

/* ---- map steps -------------------------------------------------------- */

static int run_steps(exec_run *x, size_t i, sh_value *row, size_t n,
                     sh_err *err);

/*
 * The text of value 'v' for tokenize and naive Bayes: a string's bytes, a
 * null's nothing, any other value formatted (into the arena).
 */
static const char *
value_text(exec_run *x, const sh_value *v, size_t *len)
{
    char *p;

    if (v->type == SH_STRING) {
        *len = v->u.s.len;
        return v->u.s.ptr;
    }
    if (v->type == SH_NULL) {
        *len = 0;
        return "";
    }
    sb_reset(&x->text);
    value_format(v, &x->text);
    p = arena_alloc(x->a, x->text.len + 1);
    memcpy(p, x->text.data, x->text.len);
    *len = x->text.len;
    return p;
}

/*
 * tokenize: one row per token of the text column, at s->col. The text is
 * lowercased once, into the arena, and every token points into that copy.
 * When tokenize is the stage's last map step the sink only reads the row,
 * so the row is copied once and only the token changes; otherwise the
 * steps after it may change the row in place and it is copied per token.
 */
static int
run_tokenize(exec_run *x, size_t i, const sh_value *row, size_t n, sh_err *err)
{
    const plan_step *s = &x->p->steps[i];
    sh_value        *out = x->fan[i];
    size_t           n_out = s->col == n ? n + 1 : n;
    size_t           len, pos = 0, n_sp, k;
    int              last = i + 1 == x->sg->map_end;
    const char      *text;
    text_span        sp[64];
    int              rc;

    if (row[s->src_col].type == SH_NULL)
        return 0;
    text = value_text(x, &row[s->src_col], &len);
    if (s->lowercase && len > 0) {
        char *low = arena_alloc(x->a, len);

        text_lower(low, text, len);
        text = low;
    }
    if (last)
        memcpy(out, row, n * sizeof *row);
    while ((n_sp = text_token_spans(text, len, &pos, sp, 64)) > 0) {
        if (last && x->sink->ops->push_spans != NULL) {
            x->st->rows_out += n_sp;
            rc = x->sink->ops->push_spans(x->sink, out, s->col, text, sp, n_sp,
                                          err);
            if (rc != 0)
                return rc;
            continue;
        }
        for (k = 0; k < n_sp; k++) {
            const char *tok = text + sp[k].start;

            if (last) {
                out[s->col] = sh_str(tok, sp[k].len);
                x->st->rows_out++;
                rc = x->sink->ops->push(x->sink, out, err);
            } else {
                memcpy(out, row, n * sizeof *row);
                out[s->col] = sh_str(tok, sp[k].len);
                rc = run_steps(x, i + 1, out, n_out, err);
            }
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* join: one row per matching side row (inner, left, right, full); a left
 * or full join keeps a row without match with nulls; a semi join passes
 * a row with a match once, an anti join one without. */
static int
run_join(exec_run *x, size_t i, const sh_value *row, size_t n, sh_err *err)
{
    const plan_step *s = &x->p->steps[i];
    const plan_join *jn = s->join;
    exec_join       *j = x->joins[i];
    sh_value        *out = x->fan[i];
    long             it = exec_join_find(j, row, s->cols);
    size_t           k;
    int              rc;

    if (jn->how == JOIN_SEMI || jn->how == JOIN_ANTI) {
        if ((it >= 0) != (jn->how == JOIN_SEMI))
            return 0;
        memcpy(out, row, n * sizeof *row);
        return run_steps(x, i + 1, out, n, err);
    }
    if (it < 0) {
        if (jn->how != JOIN_LEFT && jn->how != JOIN_FULL)
            return 0;
        memcpy(out, row, n * sizeof *row);
        for (k = 0; k < jn->n_keep; k++)
            out[n + k] = sh_null();
        return run_steps(x, i + 1, out, n + jn->n_keep, err);
    }
    for (; it >= 0; it = exec_join_next(j, it)) {
        exec_join_mark(j, it);
        memcpy(out, row, n * sizeof *row);
        if (jn->n_keep > 0) {
            memcpy(out + n, exec_join_keep(j, it), jn->n_keep * sizeof *out);
        }
        rc = run_steps(x, i + 1, out, n + jn->n_keep, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
exec_join_rest(exec_run *x, sh_err *err)
{
    size_t          i, k, n;
    const sh_value *keys;
    long            it;
    int             rc;

    for (i = x->sg->map_begin; i < x->sg->map_end; i++) {
        const plan_step *s = &x->p->steps[i];
        sh_value        *out = x->fan[i];

        if (s->op != OP_JOIN || x->joins[i] == NULL)
            continue;
        n = s->out->n - s->join->n_keep;
        for (it = exec_join_unmatched(x->joins[i], -1, &keys); it >= 0;
             it = exec_join_unmatched(x->joins[i], it, &keys)) {
            arena_reset(x->a);
            for (k = 0; k < n; k++)
                out[k] = sh_null();
            for (k = 0; k < s->n_cols; k++)
                out[s->cols[k]] = keys[k];
            memcpy(out + n, keys + s->n_cols, s->join->n_keep * sizeof *out);
            if ((rc = run_steps(x, i + 1, out, n + s->join->n_keep, err)) != 0)
                return rc;
        }
    }
    return 0;
}

/*
 * Run the map steps from 'i' to the stage's last on 'row' ('n' values;
 * changed in place), then push it into the sink. Returns 0 (also for a
 * row filtered out), EXEC_STOP or an error.
 */
static int
run_steps(exec_run *x, size_t i, sh_value *row, size_t n, sh_err *err)
{
    const plan *p = x->p;
    size_t      end = x->sg->map_end, j, len, cl;
    const char *text, *cls;
    sh_value    v;
    sh_err      e;
    char        words[64];

    for (; i < end; i++) {
        const plan_step *s = &p->steps[i];

        switch (s->op) {
        case OP_FILTER:
            if (expr_eval(s->e, row, x->a, &v, &e) != 0)
                return exec_step_fail(x, i, &e, err);
            if (v.type != SH_BOOL || !v.u.b)
                return 0;
            break;
        case OP_DERIVE:
            if (expr_eval(s->e, row, x->a, &v, &e) != 0)
                return exec_step_fail(x, i, &e, err);
            row[s->col] = v;
            if (s->col == n)
                n++;
            break;
        case OP_SELECT:
            for (j = 0; j < s->n_cols; j++)
                x->tmp[j] = row[s->cols[j]];
            memcpy(row, x->tmp, s->n_cols * sizeof *row);
            n = s->n_cols;
            break;
        case OP_TOKENIZE:
            return run_tokenize(x, i, row, n, err);
        case OP_JOIN:
            return run_join(x, i, row, n, err);
        case OP_PREDICT_NB:
            text = value_text(x, &row[s->src_col], &len);
            cls = nb_model_predict(x->models[i], text, len, &cl);
            row[s->col] = sh_str(cls, cl);
            if (s->col == n)
                n++;
            break;
        default:
            return exec_fail(x, err, SH_EINVAL,
                             "%s: not a map step; the plan is inconsistent",
                             exec_step_words(x, i, words));
        }
    }
    x->st->rows_out++;
    return x->sink->ops->push(x->sink, row, err);
}

int
exec_push(exec_run *x, const sh_value *row, size_t n, sh_err *err)
{
    int rc;

    if (n >= x->width) {
        return exec_fail(x, err, SH_EDATA,
                         "a row of %zu values; the plan's rows have at "
                         "most %zu",
                         n, x->width - 1);
    }
    arena_reset(x->a);
    memcpy(x->row, row, n * sizeof *row);
    rc = run_steps(x, x->sg->map_begin, x->row, n, err);
    if (rc != 0)
        return rc;
    return tick_maybe(x, err);
}
