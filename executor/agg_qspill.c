/*
 * agg_qspill.c - exact median and quantile out of core. The final half of
 * an aggregation (agg_spill.c) shrinks a table over its budget by
 * re-partitioning its groups; when that cannot help (one group left, or the
 * last level) and the table holds median/quantile values, those values go
 * to an external sort (sort.h) as rows (state id, value), where a state's
 * id is its index in hashagg.qvecs, and so do the values merged after: a
 * state keeps only its count. At the end of the level the sorted runs are
 * merged, which gives each state's values in order, one state after the
 * other; the count says which ranks quantile_cont reads (agg_cont_rank and
 * the next), and agg_cont_value interpolates them as the in-memory path
 * does, so the answer is the same to the bit. The sort holds at most the
 * budget it is given, its merge reads the runs through buffers within half
 * of it (sorter_finish merges runs first when there are more).
 */
#include "agg.h"
#include "agg_int.h"

#include <stdlib.h>

#include "../lib/fsys.h"
#include "sort.h"

/* The external sort of a table's quantile values. */
struct agg_qspill {
    sorter *so;
    char   *prefix; /* of its run files, "<prefix>.r<N>" */
    int     n_runs; /* after sorter_finish; -1 before */
};

/* Rows (id, value), ordered by id, then value (NaN last, as in memory). */
static const sort_key qkeys[] = {{0, 0}, {1, 0}};

/* Notes what the sort holds in the table's bytes. */
static void
note_bytes(hashagg *h)
{
    h->qspill_bytes = sorter_peak_bytes(h->qspill->so);
}

/* Sorts value 'x' of state 'q' out of core. */
int
agg_qspill_push(hashagg *h, agg_qvec *q, double x, sh_err *err)
{
    sh_value row[2];
    int      rc;

    row[0] = sh_int((int64_t)q->id);
    row[1] = sh_float(x);
    rc = sorter_push(h->qspill->so, row, err);
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
                 sh_err *err)
{
    struct agg_qspill *sp = xcalloc(1, sizeof *sp);
    size_t             i, j;
    int                rc = 0;

    sp->so = sorter_new(2, qkeys, 2, mem_bytes, prefix, 0);
    sp->prefix = xstrdup(prefix);
    sp->n_runs = -1;
    h->qspill = sp;
    for (i = 0; i < h->n_qvecs; i++) {
        agg_qvec *q = h->qvecs[i];
        qchunk   *c, *next;

        for (c = q->head; c != NULL; c = next) {
            for (j = 0; j < c->n && rc == 0; j++) {
                sh_value row[2] = {sh_int((int64_t)q->id), sh_float(c->x[j])};

                rc = sorter_push(sp->so, row, err);
            }
            next = c->next;
            h->quant_bytes -= sizeof *c + c->cap * sizeof(double);
            free(c);
        }
        q->head = q->tail = NULL;
    }
    note_bytes(h);
    return rc;
}

/* Reports a state whose sorted values do not match its count. */
static int
bad_count(const agg_qvec *q, size_t got, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "",
                      "quantile state %zu: %zu values sorted out of core, "
                      "%zu counted", q->id, got, q->n);
}

/* Sets the answer of state 'q' from its sorted values at the ranks of
 * quantile_cont ('lo', 'hi'), once all 'got' of them were read. */
static int
finish_state(agg_qvec *q, size_t got, double lo, double hi, sh_err *err)
{
    if (got != q->n)
        return bad_count(q, got, err);
    q->result = agg_cont_value(q->n, q->q, lo, hi);
    q->done = 1;
    return 0;
}

/* Merges the runs and sets each state's answer (see the top); adds the
 * bytes of the runs to '*run_bytes'. */
int
agg_qspill_finish(hashagg *h, uint64_t *run_bytes, sh_err *err)
{
    struct agg_qspill *sp = h->qspill;
    char             **paths = NULL;
    merger            *m = NULL;
    const sh_value    *row;
    agg_qvec          *q = NULL;
    size_t             got = 0, rank = 0, i;
    double             lo = 0, hi = 0;
    int                rc;

    rc = sorter_finish(sp->so, err);
    note_bytes(h);
    if (rc < 0)
        return rc;
    sp->n_runs = rc;
    if (sp->n_runs == 0)
        return 0;
    paths = xcalloc((size_t)sp->n_runs, sizeof *paths);
    for (i = 0; i < (size_t)sp->n_runs; i++) {
        paths[i] = xasprintf("%s.r%zu", sp->prefix, i);
        *run_bytes += util_file_bytes(paths[i]);
    }
    m = merger_new((const char *const *)paths, (size_t)sp->n_runs, qkeys, 2,
                   err);
    if (m == NULL) {
        rc = err ? err->code : SH_EIO;
        goto done;
    }
    while ((rc = merger_next(m, &row, err)) == 1) {
        size_t id = (size_t)row[0].u.i;

        if (row[0].type != SH_INT || row[1].type != SH_FLOAT
            || row[0].u.i < 0 || id >= h->n_qvecs) {
            rc = sh_err_set(err, SH_EDATA, "",
                            "%s: a row that is no sorted quantile value",
                            sp->prefix);
            goto done;
        }
        if (q == NULL || id != q->id) {
            if (q != NULL && (rc = finish_state(q, got, lo, hi, err)) != 0)
                goto done;
            q = h->qvecs[id];
            if (q->done) {
                rc = bad_count(q, q->n + 1, err); /* its values, twice */
                goto done;
            }
            got = 0;
            rank = agg_cont_rank(q->n, q->q);
        }
        if (got == rank)
            lo = row[1].u.f;
        else if (got == rank + 1)
            hi = row[1].u.f;
        got++;
    }
    if (rc < 0)
        goto done;
    rc = q != NULL ? finish_state(q, got, lo, hi, err) : 0;
    for (i = 0; rc == 0 && i < h->n_qvecs; i++) {
        if (h->qvecs[i]->n > 0 && !h->qvecs[i]->done)
            rc = bad_count(h->qvecs[i], 0, err);
    }

done:
    merger_free(m);
    for (i = 0; paths != NULL && i < (size_t)sp->n_runs; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

/*
 * Frees the sort of 'h' and removes its run files: "<prefix>.r0" on while
 * they exist (runs are numbered from 0 with no gap), and the "<prefix>.m0"
 * on that a failed merge of runs may leave.
 */
void
agg_qspill_end(hashagg *h)
{
    struct agg_qspill *sp = h->qspill;
    const char        *kinds = "rm";
    size_t             i;

    if (sp == NULL)
        return;
    sorter_free(sp->so);
    for (; *kinds != '\0'; kinds++) {
        for (i = 0;; i++) {
            char *path = xasprintf("%s.%c%zu", sp->prefix, *kinds, i);
            int   gone = fsys_unlink(path) != 0;

            free(path);
            if (gone)
                break;
        }
    }
    free(sp->prefix);
    free(sp);
    h->qspill = NULL;
    h->qspill_bytes = 0;
}
