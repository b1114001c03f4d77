/*
 * exec.c - running one task of a plan: the driver of exec_run_task, the
 * source of stage 0 (one input partition), and the map steps.
 *
 * A task is a source, the stage's map steps and a sink (exec.h). Sources
 * push rows one at a time (exec_push); the map steps work in place on one
 * reused row buffer, and a step that makes several rows of one (tokenize,
 * join) writes each into a buffer of its own before passing it on, so the
 * row it reads stays intact. Strings that expressions and steps make live
 * in an arena reset before every source row: no map step allocates per
 * row.
 *
 * Stage 0 parses only the input columns that some step or the output
 * reads (a column dropped by a select, or never referenced before a
 * groupby, is not parsed). Which columns an expression reads is found by
 * compiling it once more with each candidate column hidden.
 *
 * Files: the sink writes the task's files; on any error every file the
 * task wrote is removed, and spill files under 'scratch' are removed in
 * every case.
 */
#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_int.h"
#include "expr.h"
#include "input.h"
#include "nb.h"
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
    snprintf(buf, 64, "step %zu (%s)", i, plan_op_name(x->p->steps[i].op));
    return buf;
}

int
exec_step_fail(const exec_run *x, size_t step, const sh_err *e, sh_err *err)
{
    char words[64], line[40] = "";

    if (x->in != NULL && !x->at_end) {
        snprintf(line, sizeof line, ", line %llu",
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

    dir = slash == NULL    ? xstrdup(".")
          : slash == prefix ? xstrdup("/")
                            : xstrndup(prefix, (size_t)(slash - prefix));
    start = xasprintf("%s%s", slash ? slash + 1 : prefix, tag);
    n_start = strlen(start);
    d = opendir(dir);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, start, n_start) == 0) {
                char *path = xasprintf("%s/%s", dir, de->d_name);

                (void)unlink(path);
                free(path);
            }
        }
        closedir(d);
    }
    free(start);
    free(dir);
}

/* ---- stats and ticks -------------------------------------------------- */

void
exec_note_peak(exec_run *x, size_t bytes)
{
    if (bytes > x->st->peak_bytes)
        x->st->peak_bytes = bytes;
}

/* Bring the counters the readers and the sink keep into the stats. */
static void
refresh_stats(exec_run *x)
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
    refresh_stats(x);
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
run_tokenize(exec_run *x, size_t i, const sh_value *row, size_t n,
             sh_err *err)
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

/* join: one row per matching side row; a left join keeps a row without
 * match with nulls. */
static int
run_join(exec_run *x, size_t i, const sh_value *row, size_t n, sh_err *err)
{
    const plan_step *s = &x->p->steps[i];
    const plan_join *jn = s->join;
    const exec_join *j = x->joins[i];
    sh_value        *out = x->fan[i];
    long             it = exec_join_find(j, row, s->cols);
    size_t           k;
    int              rc;

    if (it < 0) {
        if (!jn->left)
            return 0;
        memcpy(out, row, n * sizeof *row);
        for (k = 0; k < jn->n_keep; k++)
            out[n + k] = sh_null();
        return run_steps(x, i + 1, out, n + jn->n_keep, err);
    }
    for (; it >= 0; it = exec_join_next(j, it)) {
        memcpy(out, row, n * sizeof *row);
        if (jn->n_keep > 0) {
            memcpy(out + n, exec_join_keep(j, it),
                   jn->n_keep * sizeof *out);
        }
        rc = run_steps(x, i + 1, out, n + jn->n_keep, err);
        if (rc != 0)
            return rc;
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

/* ---- which input columns are read ------------------------------------- */

/* The expression text of step 'i' (filter, derive, train_naive_bayes's
 * holdout) from the spec, or NULL. */
static const char *
step_source(const plan *p, size_t i)
{
    const plan_step *s = &p->steps[i];
    json_t          *st;
    size_t           k = i;

    if (sscanf(s->path, "steps[%zu]", &k) != 1)
        k = i;
    st = json_array_get(json_object_get(p->spec, "steps"), k);
    return json_string_value(json_object_get(
        st, s->op == OP_FILTER   ? "where"
            : s->op == OP_DERIVE ? "expr"
                                 : "holdout"));
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
        if (p->steps[i].e != NULL)
            memset(live, 1, sc->n);
        return;
    }
    copy = schema_copy(sc);
    for (k = 0; k < sc->n; k++) {
        char   *saved = copy->names[k];
        char    hidden[] = "\x01\x02 hidden column";
        sh_err  e;
        expr   *ex;

        if (live[k])
            continue;
        copy->names[k] = hidden;
        ex = expr_compile(src, copy, "", &e);
        copy->names[k] = saved;
        if (ex == NULL)
            live[k] = 1;
        else
            expr_free(ex);
    }
    schema_free(copy);
}

/*
 * Which input columns stage 0 must parse: those live at the input, going
 * back from the output (all of whose columns are live) through every
 * step of the plan. 'need' has p->in_schema->n entries; 'width' is the
 * widest schema.
 */
static void
needed_columns(const plan *p, size_t width, unsigned char *need)
{
    unsigned char *live = xcalloc(width, 1), *before = xcalloc(width, 1);
    size_t         i, j, k;

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
        case OP_SORT:
        case OP_LIMIT:
            memcpy(before, live, in->n);
            for (j = 0; s->op == OP_SORT && j < s->n_keys; j++)
                before[s->keys[j].col] = 1;
            if (s->op == OP_FILTER)
                mark_refs(p, i, in, before);
            break;
        case OP_DERIVE:
        case OP_TOKENIZE:
        case OP_PREDICT_NB:
        case OP_JOIN:
            for (k = 0; k < in->n; k++)
                before[k] = (k == s->col && s->op != OP_JOIN) ? 0 : live[k];
            if (s->op == OP_DERIVE)
                mark_refs(p, i, in, before);
            else if (s->op == OP_JOIN)
                for (j = 0; j < s->n_cols; j++)
                    before[s->cols[j]] = 1;
            else
                before[s->src_col] = 1;
            break;
        case OP_GROUPBY:
        case OP_AGGREGATE:
        case OP_DISTINCT:
            for (j = 0; j < s->n_cols; j++)
                before[s->cols[j]] = 1;
            for (j = 0; j < s->n_aggs; j++) {
                if (s->aggs[j].col >= 0)
                    before[s->aggs[j].col] = 1;
            }
            break;
        case OP_TRAIN_NB:
            before[s->src_col] = before[s->label_col] = 1;
            if (s->e != NULL)
                mark_refs(p, i, in, before);
            break;
        default:
            memset(before, 1, in->n);
            break;
        }
        memcpy(live, before, width);
    }
    memcpy(need, live, p->in_schema->n);
    free(live);
    free(before);
}

/* ---- stage 0's source ------------------------------------------------- */

/* Read partition t->index and push every row. */
static int
source_input(exec_run *x, sh_err *err)
{
    const plan     *p = x->p;
    unsigned char  *need = xcalloc(x->width, 1);
    const sh_value *row;
    size_t          n_in = p->in_schema->n;
    int             rc;

    needed_columns(p, x->width, need);
    x->in = input_open(p, x->t->index, need, err);
    free(need);
    if (x->in == NULL)
        return err->code ? err->code : SH_EIO;
    while ((rc = input_next(x->in, &row, err)) == 1) {
        rc = exec_push(x, row, n_in, err);
        if (rc != 0)
            break;
    }
    refresh_stats(x);
    return rc;
}

/* ---- the driver ------------------------------------------------------- */

/* Load what the stage's map steps need before the first row: join sides
 * and models; make the row buffers of the steps that fan out. */
static int
prepare_steps(exec_run *x, sh_err *err)
{
    const plan *p = x->p;
    size_t      i;
    sh_err      e;
    char        words[64];

    for (i = x->sg->map_begin; i < x->sg->map_end; i++) {
        const plan_step *s = &p->steps[i];

        if (s->op == OP_TOKENIZE || s->op == OP_JOIN)
            x->fan[i] = xcalloc(x->width, sizeof *x->fan[i]);
        if (s->op == OP_JOIN) {
            if (exec_join_load(s, x->t->mem_bytes, &x->joins[i], &e) != 0) {
                return exec_fail(x, err, e.code ? e.code : SH_EIO,
                                 "%s: %s", exec_step_words(x, i, words),
                                 e.msg);
            }
            x->side_bytes += exec_join_bytes(x->joins[i]);
        } else if (s->op == OP_PREDICT_NB) {
            x->models[i] = nb_model_load(s->model, &e);
            if (x->models[i] == NULL) {
                return exec_fail(x, err, e.code ? e.code : SH_EIO,
                                 "%s: %s", exec_step_words(x, i, words),
                                 e.msg);
            }
        }
    }
    exec_note_peak(x, x->side_bytes);
    return 0;
}

uint64_t
exec_reserve_bytes(uint64_t mem_bytes)
{
    uint64_t r = mem_bytes / 8;

    if (r < EXEC_RESERVE_MIN)
        r = EXEC_RESERVE_MIN;
    if (r > mem_bytes / 2)
        r = mem_bytes / 2;
    return r;
}

/* Does the final half of combine step 'op' hold rows in memory? */
static int
source_holds_rows(plan_op op)
{
    return op == OP_GROUPBY || op == OP_AGGREGATE || op == OP_DISTINCT;
}

/* Does the partial half of combine step 'op' hold rows in memory? */
static int
sink_holds_rows(plan_op op)
{
    return op == OP_GROUPBY || op == OP_AGGREGATE || op == OP_DISTINCT
        || op == OP_SORT;
}

/*
 * Share the task's budget (SHEAF_MEMORY_MB, for the whole worker process)
 * between the operators that hold rows. Off the top come the reserve
 * (exec_reserve_bytes) and the join sides and models as loaded; what is
 * left goes to the source's operator and the sink's, half each when both
 * hold rows (a groupby's final table feeding a sort), else all to the one
 * that does. Never less than a sixteenth of the budget each: the planner
 * refused join sides over the budget, so only a job with several large
 * sides gets there, and it then spills more.
 */
static void
share_budget(exec_run *x)
{
    const plan *p = x->p;
    uint64_t    mem = x->t->mem_bytes, left, floor = mem / 16;
    int         src = x->sg->src >= 0
              && source_holds_rows(p->steps[x->sg->src].op);
    int         sink = x->sg->sink >= 0
               && sink_holds_rows(p->steps[x->sg->sink].op);

    left = mem - exec_reserve_bytes(mem);
    left = left > x->side_bytes ? left - x->side_bytes : 0;
    if (src && sink)
        left /= 2;
    if (left < floor)
        left = floor;
    x->src_budget = src ? (size_t)left : 0;
    x->sink_budget = sink ? (size_t)left : 0;
}

/* Check the task against the plan and set the run's context words. */
static int
check_task(exec_run *x, sh_err *err)
{
    const plan      *p = x->p;
    const exec_task *t = x->t;

    if (p->n_stages == 0 || p->stages == NULL) {
        return sh_err_set(err, SH_EINVAL, "",
                          "the plan has no stages; it cannot run");
    }
    if (t->stage >= p->n_stages) {
        return sh_err_set(err, SH_EINVAL, "",
                          "stage %zu does not exist (the plan has %zu)",
                          t->stage, p->n_stages);
    }
    x->sg = &p->stages[t->stage];
    if (t->stage == 0) {
        const plan_part *pt;

        if (t->index >= p->n_parts) {
            return sh_err_set(err, SH_EINVAL, "",
                              "partition %zu does not exist (the plan has "
                              "%zu)",
                              t->index, p->n_parts);
        }
        pt = &p->parts[t->index];
        snprintf(x->ctx, sizeof x->ctx,
                 "partition %zu (file %s, bytes %llu-%llu)", t->index,
                 p->files[pt->file].rel, (unsigned long long)pt->start,
                 (unsigned long long)pt->end);
    } else {
        if (t->index >= x->sg->n_tasks) {
            return sh_err_set(err, SH_EINVAL, "",
                              "stage %zu task %zu does not exist (the stage "
                              "has %zu tasks)",
                              t->stage, t->index, x->sg->n_tasks);
        }
        if (t->n_inputs != p->stages[t->stage - 1].n_tasks) {
            return sh_err_set(err, SH_EINVAL, "",
                              "stage %zu task %zu: %zu inputs given, the "
                              "stage before has %zu tasks",
                              t->stage, t->index, t->n_inputs,
                              p->stages[t->stage - 1].n_tasks);
        }
        snprintf(x->ctx, sizeof x->ctx, "stage %zu task %zu", t->stage,
                 t->index);
    }
    if (t->out == NULL || t->scratch == NULL) {
        return sh_err_set(err, SH_EINVAL, "",
                          "%s: no output or scratch path given", x->ctx);
    }
    return 0;
}

/* The widest row any step of the plan makes (+1 for an appended value). */
static size_t
plan_width(const plan *p)
{
    size_t w = p->in_schema->n, i;

    for (i = 0; i < p->n_steps; i++) {
        if (p->steps[i].out->n > w)
            w = p->steps[i].out->n;
        if (p->steps[i].op == OP_JOIN && p->steps[i].join != NULL
            && p->steps[i].join->side != NULL
            && p->steps[i].join->side->in_schema->n > w)
            w = p->steps[i].join->side->in_schema->n;
    }
    return w + 1;
}

int
exec_run_task(const plan *p, const exec_task *t, exec_tick_fn tick,
              void *ctx, exec_stats *st, sh_err *err)
{
    exec_stats local;
    exec_run   x;
    size_t     i;
    int        rc;

    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof *st);
    memset(&x, 0, sizeof x);
    sh_err_clear(err);
    x.p = p;
    x.t = t;
    x.tick = tick;
    x.tick_ctx = ctx;
    x.st = st;
    x.tick_ms = now_ms();
    if ((rc = check_task(&x, err)) != 0)
        return rc;

    x.width = plan_width(p);
    x.row = xcalloc(x.width, sizeof *x.row);
    x.tmp = xcalloc(x.width, sizeof *x.tmp);
    x.fan = xcalloc(p->n_steps + 1, sizeof *x.fan);
    x.joins = xcalloc(p->n_steps + 1, sizeof *x.joins);
    x.models = xcalloc(p->n_steps + 1, sizeof *x.models);
    x.a = arena_new(64 * 1024);

    if ((rc = prepare_steps(&x, err)) != 0)
        goto done;
    share_budget(&x);
    x.sink = exec_sink_new(&x, err);
    if (x.sink == NULL) {
        rc = err->code ? err->code : SH_EIO;
        goto done;
    }
    rc = t->stage == 0 ? source_input(&x, err)
                       : exec_source_combine(&x, err);
    if (rc == EXEC_STOP)
        rc = 0;
    if (rc != 0)
        goto done;
    x.at_end = 1;
    if ((rc = exec_tick_now(&x, err)) != 0)
        goto done;
    rc = x.sink->ops->finish(x.sink, err);
    refresh_stats(&x);

done:
    if (rc != 0) {
        if (x.sink != NULL)
            x.sink->ops->discard(x.sink);
        if (t->stage > 0)
            exec_source_discard(&x);
    }
    if (x.sink != NULL)
        x.sink->ops->free(x.sink);
    exec_remove_prefixed(t->scratch, ".");
    input_free(x.in);
    for (i = 0; i <= p->n_steps; i++) {
        free(x.fan[i]);
        exec_join_free(x.joins[i]);
        if (x.models[i] != NULL)
            nb_model_free(x.models[i]);
    }
    free(x.fan);
    free(x.joins);
    free(x.models);
    free(x.row);
    free(x.tmp);
    arena_free(x.a);
    sb_free(&x.text);
    return rc;
}
