/*
 * agg_qspill.c - exact median and quantile out of core. The final half of
 * an aggregation (agg_spill.c) shrinks a table over its budget by
 * re-partitioning its groups; when that cannot help (one group left, or the
 * last level) and the table holds median/quantile values, those values go
 * to an external sort of pairs (state id, value), where a state's id is its
 * index in hashagg.qvecs, and so do the values merged after: a state keeps
 * only its count. At the end of the level the sorted pairs stream back,
 * each state's values in order, one state after the other; the count says
 * which ranks quantile_cont reads (agg_cont_rank and the next), and
 * agg_cont_value interpolates them as the in-memory path does, so the
 * answer is the same to the bit.
 *
 * The sort is of fixed-size pairs, 16 bytes each in memory (sort.h's
 * sorter of general rows would take 80 and fsync its runs): a buffer of
 * the budget's size, sorted with qsort and written as a scratch run
 * ("<prefix>.r<N>", a row file of (int, float) rows, never fsync'ed)
 * each time it fills. At the end, when no run was written, the buffer
 * is sorted and read in memory; otherwise it is freed and the runs are
 * merged, QSPILL_READ bytes of read buffer each, at most as many at once
 * as the budget reads (consecutive groups merged into new runs first
 * while there are more; then a 1 MiB writer is open too). The tick
 * function is called every AGG_QSPILL_TICK values pushed, written or
 * merged, so a long sort keeps its task's lease.
 */
#include "agg.h"
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/fsys.h"
#include "rowfile.h"

/* Read buffer of each run while merging. */
#define QSPILL_READ ((size_t)64 << 10)

/* A value of a state. */
typedef struct qpair {
    int64_t id;
    double  x;
} qpair;

/* The external sort of a table's quantile values. */
struct agg_qspill {
    char              *prefix; /* of its run files, "<prefix>.r<N>" */
    size_t             mem;    /* its budget */
    qpair             *buf;    /* pairs not written yet */
    size_t             n, cap; /* pairs in 'buf', room */
    char             **runs;   /* paths of the runs to merge, in order */
    size_t             n_runs, runs_cap;
    size_t             next_run;  /* number of the next run file */
    uint64_t           run_bytes; /* bytes of every run written */
    agg_qspill_tick_fn tick;
    void              *ctx;   /* for 'tick' */
    size_t             since; /* values since the last tick */
};

/* Orders pairs by id, then value (value_cmp_double: NaN last). */
static int
pair_cmp(const qpair *a, const qpair *b)
{
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return value_cmp_double(a->x, b->x);
}

static int
pair_qsort_cmp(const void *a, const void *b)
{
    return pair_cmp(a, b);
}

/* Notes the most bytes of its buffer the sort filled (what it touched)
 * in the table's bytes. */
static void
note_bytes(hashagg *h)
{
    size_t used = h->qspill->n * sizeof(qpair);

    if (used > h->qspill_bytes)
        h->qspill_bytes = used;
}

/* Counts one value; every AGG_QSPILL_TICK calls the tick function. */
static int
count_value(struct agg_qspill *sp, sh_err *err)
{
    if (++sp->since < AGG_QSPILL_TICK)
        return 0;
    sp->since = 0;
    return sp->tick(sp->ctx, err);
}

/* A new run file's path, its place kept in sp->runs at 'at'. */
static char *
new_run(struct agg_qspill *sp, size_t at)
{
    char *path = xasprintf("%s.r%zu", sp->prefix, sp->next_run++);

    if (at == sp->n_runs) {
        if (sp->n_runs == sp->runs_cap) {
            sp->runs_cap = sp->runs_cap ? sp->runs_cap * 2 : 16;
            sp->runs = xrealloc(sp->runs, sp->runs_cap * sizeof *sp->runs);
        }
        sp->n_runs++;
    }
    sp->runs[at] = path;
    return path;
}

/* Writes one pair as a row. */
static int
write_pair(rowfile_writer *w, const qpair *p, sh_err *err)
{
    sh_value row[2];

    row[0] = sh_int(p->id);
    row[1] = sh_float(p->x);
    return rowfile_write(w, row, err);
}

/* Sorts the buffer and writes it as the next run; empties the buffer. */
static int
write_run(struct agg_qspill *sp, sh_err *err)
{
    const char     *path = new_run(sp, sp->n_runs);
    rowfile_writer *w = rowfile_create_scratch(path, 2, err);
    size_t          i;
    int             rc = 0;

    if (w == NULL)
        return err ? err->code : SH_EIO;
    qsort(sp->buf, sp->n, sizeof *sp->buf, pair_qsort_cmp);
    for (i = 0; i < sp->n && rc == 0; i++) {
        rc = write_pair(w, &sp->buf[i], err);
        if (rc == 0)
            rc = count_value(sp, err);
    }
    sp->n = 0;
    if (rc != 0) {
        rowfile_abort(w);
        return rc;
    }
    sp->run_bytes += rowfile_bytes(w);
    return rowfile_close(w, err);
}

/* Adds a pair, writing a run when the buffer is full. */
static int
push(struct agg_qspill *sp, size_t id, double x, sh_err *err)
{
    int rc;

    if (sp->n == sp->cap && (rc = write_run(sp, err)) != 0)
        return rc;
    sp->buf[sp->n].id = (int64_t)id;
    sp->buf[sp->n].x = x;
    sp->n++;
    return count_value(sp, err);
}

/* Sorts value 'x' of state 'q' out of core. */
int
agg_qspill_push(hashagg *h, agg_qvec *q, double x, sh_err *err)
{
    int rc = push(h->qspill, q->id, x, err);

    note_bytes(h);
    return rc;
}

/*
 * Starts sorting the quantile values of 'h' out of core: every value held
 * goes to the sort, its chunk freed as soon as it is pushed, so that the
 * table gives back what the sort takes.
 */
int
agg_qspill_start(hashagg *h, size_t mem_bytes, const char *prefix,
                 agg_qspill_tick_fn tick, void *ctx, sh_err *err)
{
    struct agg_qspill *sp = xcalloc(1, sizeof *sp);
    size_t             i, j;
    int                rc = 0;

    sp->prefix = xstrdup(prefix);
    sp->mem = mem_bytes;
    sp->cap = mem_bytes / sizeof(qpair);
    if (sp->cap < 1024)
        sp->cap = 1024;
    sp->buf = xmalloc(sp->cap * sizeof *sp->buf);
    sp->tick = tick;
    sp->ctx = ctx;
    h->qspill = sp;
    for (i = 0; i < h->n_qvecs; i++) {
        agg_qvec *q = h->qvecs[i];
        qchunk   *c, *next;

        for (c = q->head; c != NULL; c = next) {
            for (j = 0; j < c->n && rc == 0; j++)
                rc = push(sp, q->id, c->x[j], err);
            note_bytes(h);
            next = c->next;
            h->quant_bytes -= sizeof *c + c->cap * sizeof(double);
            free(c);
        }
        q->head = q->tail = NULL;
    }
    return rc;
}

/* ---- reading the pairs back in order ------------------------------------ */

/* Where the sorted pairs go: the states' answers. */
typedef struct qtake {
    hashagg  *h;
    agg_qvec *q;    /* the state being read; NULL before the first */
    size_t    got;  /* its values read */
    size_t    rank; /* agg_cont_rank of it */
    double    lo, hi;
} qtake;

/* Reports a state whose sorted values do not match its count. */
static int
bad_count(const agg_qvec *q, size_t got, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "",
                      "quantile state %zu: %zu values sorted out of core, "
                      "%zu counted",
                      q->id, got, q->n);
}

/* Sets the answer of the state being read, all its values read. */
static int
take_end(qtake *t, sh_err *err)
{
    if (t->q == NULL)
        return 0;
    if (t->got != t->q->n)
        return bad_count(t->q, t->got, err);
    t->q->result = agg_cont_value(t->q->n, t->q->q, t->lo, t->hi);
    t->q->done = 1;
    return 0;
}

/* Takes the next pair in order. */
static int
take(qtake *t, const qpair *p, sh_err *err)
{
    int rc;

    if (p->id < 0 || (size_t)p->id >= t->h->n_qvecs)
        return sh_err_set(err, SH_EDATA, "",
                          "%s: a pair of no quantile state (%lld)",
                          t->h->qspill->prefix, (long long)p->id);
    if (t->q == NULL || (size_t)p->id != t->q->id) {
        if ((rc = take_end(t, err)) != 0)
            return rc;
        t->q = t->h->qvecs[p->id];
        if (t->q->done)
            return bad_count(t->q, t->q->n + 1, err); /* read twice */
        t->got = 0;
        t->rank = agg_cont_rank(t->q->n, t->q->q);
    }
    if (t->got == t->rank)
        t->lo = p->x;
    else if (t->got == t->rank + 1)
        t->hi = p->x;
    t->got++;
    return count_value(t->h->qspill, err);
}

/* One run being merged. */
typedef struct qsrc {
    rowfile_reader *r;
    qpair           cur;
} qsrc;

/* Reads the next pair of 's': 1, 0 at its end, or an error. */
static int
src_next(qsrc *s, const char *path, sh_err *err)
{
    const sh_value *row;
    int             rc = rowfile_next(s->r, &row, err);

    if (rc != 1)
        return rc;
    if (row[0].type != SH_INT || row[1].type != SH_FLOAT)
        return sh_err_set(err, SH_EDATA, "", "%s: a row that is no pair", path);
    s->cur.id = row[0].u.i;
    s->cur.x = row[1].u.f;
    return 1;
}

/* Restores the heap order of 'heap' (n sources) from position i down. */
static void
sift_down(qsrc *src, size_t *heap, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i, tmp;

        if (l < n && pair_cmp(&src[heap[l]].cur, &src[heap[m]].cur) < 0)
            m = l;
        if (l + 1 < n && pair_cmp(&src[heap[l + 1]].cur, &src[heap[m]].cur) < 0)
            m = l + 1;
        if (m == i)
            return;
        tmp = heap[i];
        heap[i] = heap[m];
        heap[m] = tmp;
        i = m;
    }
}

/*
 * Merges the runs 'paths' (n) in order of their pairs into 'w' or, when it
 * is NULL, into 't'. Equal pairs come in any order: they give the same
 * answer.
 */
static int
merge_runs(struct agg_qspill *sp, char *const *paths, size_t n,
           rowfile_writer *w, qtake *t, sh_err *err)
{
    qsrc   *src = xcalloc(n, sizeof *src);
    size_t *heap = xcalloc(n, sizeof *heap);
    size_t  i, hn = 0;
    int     rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        src[i].r = rowfile_open_buf(paths[i], QSPILL_READ, err);
        if (src[i].r == NULL) {
            rc = err ? err->code : SH_EIO;
            break;
        }
        rc = src_next(&src[i], paths[i], err);
        if (rc == 1)
            heap[hn++] = i;
        rc = rc < 0 ? rc : 0;
    }
    for (i = hn; rc == 0 && i-- > 0;)
        sift_down(src, heap, hn, i);
    while (rc == 0 && hn > 0) {
        qsrc *s = &src[heap[0]];

        rc = w != NULL ? write_pair(w, &s->cur, err) : take(t, &s->cur, err);
        if (rc == 0 && w != NULL)
            rc = count_value(sp, err);
        if (rc != 0)
            break;
        rc = src_next(s, paths[heap[0]], err);
        if (rc < 0)
            break;
        if (rc == 0)
            heap[0] = heap[--hn];
        rc = 0;
        sift_down(src, heap, hn, 0);
    }
    for (i = 0; i < n; i++)
        rowfile_free(src[i].r);
    free(src);
    free(heap);
    return rc;
}

/* Runs merged at once: as many read buffers as the budget holds (the
 * buffer of pairs is freed by then). */
static size_t
fan_in(const struct agg_qspill *sp)
{
    size_t f = sp->mem / QSPILL_READ;

    return f < 2 ? 2 : f;
}

/* Merges consecutive groups of runs into new runs until at most 'fan'
 * remain; the merged runs are removed. */
static int
reduce_runs(struct agg_qspill *sp, size_t fan, sh_err *err)
{
    while (sp->n_runs > fan) {
        size_t groups = (sp->n_runs + fan - 1) / fan, g, i;

        for (g = 0; g < groups; g++) {
            size_t          lo = g * fan;
            size_t          hi = lo + fan < sp->n_runs ? lo + fan : sp->n_runs;
            char          **in = xmalloc((hi - lo) * sizeof *in);
            rowfile_writer *w;
            int             rc;

            memcpy(in, sp->runs + lo, (hi - lo) * sizeof *in);
            w = rowfile_create_scratch(new_run(sp, g), 2, err);
            rc = w == NULL ? (err ? err->code : SH_EIO)
                           : merge_runs(sp, in, hi - lo, w, NULL, err);
            if (w != NULL && rc != 0)
                rowfile_abort(w);
            else if (w != NULL) {
                sp->run_bytes += rowfile_bytes(w);
                rc = rowfile_close(w, err);
            }
            for (i = 0; i < hi - lo; i++) {
                (void)fsys_unlink(in[i]);
                free(in[i]);
            }
            free(in);
            if (rc != 0) {
                /* runs g + 1 .. groups - 1 were not made: drop the slots
                 * of the merged inputs that new runs did not take */
                for (i = g + 1; i < sp->n_runs; i++)
                    sp->runs[i] = i >= hi ? sp->runs[i] : NULL;
                return rc;
            }
        }
        sp->n_runs = groups;
    }
    return 0;
}

/* Merges the runs and sets each state's answer (see the top); adds the
 * bytes of the runs to '*run_bytes'. */
int
agg_qspill_finish(hashagg *h, uint64_t *run_bytes, sh_err *err)
{
    struct agg_qspill *sp = h->qspill;
    qtake              t = {h, NULL, 0, 0, 0, 0};
    size_t             i;
    int                rc = 0;

    if (sp->n_runs == 0) {
        /* all in memory after all */
        qsort(sp->buf, sp->n, sizeof *sp->buf, pair_qsort_cmp);
        for (i = 0; i < sp->n && rc == 0; i++)
            rc = take(&t, &sp->buf[i], err);
    } else {
        if (sp->n > 0)
            rc = write_run(sp, err);
        free(sp->buf);
        sp->buf = NULL;
        if (rc == 0)
            rc = reduce_runs(sp, fan_in(sp), err);
        if (rc == 0)
            rc = merge_runs(sp, sp->runs, sp->n_runs, NULL, &t, err);
    }
    *run_bytes += sp->run_bytes;
    if (rc == 0)
        rc = take_end(&t, err);
    for (i = 0; rc == 0 && i < h->n_qvecs; i++) {
        if (h->qvecs[i]->n > 0 && !h->qvecs[i]->done)
            rc = bad_count(h->qvecs[i], 0, err);
    }
    return rc;
}

/* Frees the sort of 'h' and removes its run files. */
void
agg_qspill_end(hashagg *h)
{
    struct agg_qspill *sp = h->qspill;
    size_t             i;

    if (sp == NULL)
        return;
    for (i = 0; i < sp->n_runs; i++) {
        if (sp->runs[i] != NULL)
            (void)fsys_unlink(sp->runs[i]);
        free(sp->runs[i]);
    }
    free(sp->runs);
    free(sp->buf);
    free(sp->prefix);
    free(sp);
    h->qspill = NULL;
    h->qspill_bytes = 0;
}
