/*
 * agg_spill.c - aggregation out of core: hashagg_finalize_files merges the
 * partial rows of row files into the table and, while the groups outgrow
 * the memory budget, re-partitions them by key hash into SPILL_FANOUT
 * spill files per level (at most SPILL_LEVELS deep), finishing each in
 * turn. A level that cannot re-partition (one group, or the last level)
 * and is still over its budget sorts its median/quantile values out of
 * core (agg_qspill.c) and goes on without re-partitioning.
 */
#include "agg.h"
#include "agg_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "rowfile.h"

/* Fan-out and depth of re-partitioning in hashagg_finalize_files. */
#define SPILL_FANOUT 16
#define SPILL_LEVELS 6

/* The state of one hashagg_finalize_files call, shared by its levels. */
typedef struct finalize {
    hashagg               *h;
    size_t                 mem_bytes; /* the table's budget */
    const char            *prefix;    /* of the spill files */
    long                   section;   /* of the level-0 files; -1: whole */
    agg_emit_fn            emit;
    agg_tick_fn            tick;   /* may be NULL */
    void                  *ctx;    /* for emit and tick */
    hashagg_finalize_stats st;     /* spill_bytes: closed files only */
    rowfile_writer *const *open_w; /* the level's spill writers while
                                      they are open, else NULL */
    uint64_t since_tick;           /* rows read since the last tick */
} finalize;

/* Where partial rows go while a level re-partitions. */
typedef struct spill {
    const hashagg   *h;
    rowfile_writer **w;    /* SPILL_FANOUT writers */
    uint64_t         salt; /* this level's hash salt */
} spill;

/* Writes a partial row into its spill file (an agg_emit_fn). */
static int
spill_emit(void *ctx, const sh_value *row, sh_err *err)
{
    spill   *sp = ctx;
    uint64_t x = hashagg_key_hash(sp->h, row, sp->salt);

    return rowfile_write(sp->w[x % SPILL_FANOUT], row, err);
}

/* Notes the table's size in the peak. */
static void
note_peak(finalize *f)
{
    size_t held = hashagg_bytes(f->h);

    if (held > f->st.peak_bytes)
        f->st.peak_bytes = held;
}

/* The stats so far: the closed spill files and the open ones. */
static hashagg_finalize_stats
stats_now(const finalize *f)
{
    hashagg_finalize_stats st = f->st;
    size_t                 k;

    if (f->open_w != NULL) {
        for (k = 0; k < SPILL_FANOUT; k++) {
            if (f->open_w[k] != NULL)
                st.spill_bytes += rowfile_bytes(f->open_w[k]);
        }
    }
    return st;
}

/* Calls the tick function (if any) with the stats so far. Returns 0 or
 * its error. */
static int
tick_now(finalize *f, sh_err *err)
{
    hashagg_finalize_stats st;
    int                    rc;

    if (f->tick == NULL)
        return 0;
    note_peak(f);
    st = stats_now(f);
    rc = f->tick(f->ctx, &st, err);
    if (rc != 0 && err != NULL && err->code == 0)
        err->code = rc;
    return rc;
}

/* Counts one row read; every HASHAGG_TICK_ROWS rows calls the tick
 * function. Returns 0 or its error. */
static int
count_row(finalize *f, sh_err *err)
{
    if (++f->since_tick < HASHAGG_TICK_ROWS)
        return 0;
    f->since_tick = 0;
    return tick_now(f, err);
}

/* The tick of the sort of quantile values (an agg_qspill_tick_fn). */
static int
qspill_tick(void *ctx, sh_err *err)
{
    return tick_now(ctx, err);
}

/*
 * Sorts the quantile values of the table out of core from now on, under
 * "<prefix>.q<level>", with half of the table's budget: the table keeps
 * the rest for its groups' keys and other states (next to nothing in the
 * usual case, one group left), and while the values it held move to the
 * sort, both hold some.
 */
static int
qspill_start(finalize *f, unsigned level, sh_err *err)
{
    char *prefix = xasprintf("%s.q%u", f->prefix, level);
    int   rc;

    note_peak(f);
    rc = agg_qspill_start(f->h, f->mem_bytes / 2, prefix, qspill_tick, f, err);
    free(prefix);
    return rc;
}

/* Finishes 'paths' at re-partitioning depth 'level'. */
static int
finalize_level(finalize *f, const char *const *paths, size_t n, unsigned level,
               sh_err *err)
{
    hashagg        *h = f->h;
    rowfile_writer *w[SPILL_FANOUT] = {0};
    char           *names[SPILL_FANOUT] = {0};
    spill           sp = {h, w, SEED_SPILL ^ util_mix64(level + 1)};
    rowfile_reader *r = NULL;
    const sh_value *row;
    int             spilling = 0;
    int             rc = 0;
    size_t          i;

    assert(hashagg_groups(h) == 0);
    agg_shrink_table(h);
    for (i = 0; i < n && rc == 0; i++) {
        r = level == 0 && f->section >= 0
                ? rowfile_open_section(paths[i], (size_t)f->section,
                                       ROWFILE_BUF_BYTES, err)
                : rowfile_open(paths[i], err);
        if (r == NULL) {
            rc = err ? err->code : SH_EIO;
            goto done;
        }
        if (rowfile_cols(r) != hashagg_partial_cols(h)) {
            rc = sh_err_set(err, SH_EDATA, "",
                            "%s has %zu columns, partial rows have %zu",
                            paths[i], rowfile_cols(r), hashagg_partial_cols(h));
            goto done;
        }
        while ((rc = rowfile_next(r, &row, err)) == 1) {
            if (level == 0)
                f->st.rows_read++;
            if ((rc = count_row(f, err)) != 0)
                goto done;
            if (spilling) {
                rc = spill_emit(&sp, row, err);
                if (rc != 0)
                    goto done;
                continue;
            }
            rc = hashagg_merge(h, row, err);
            if (rc != 0)
                goto done;
            if (hashagg_bytes(h) <= f->mem_bytes || h->qspill != NULL)
                continue;
            if (level >= SPILL_LEVELS || hashagg_groups(h) <= 1) {
                if (h->quant_bytes > 0
                    && (rc = qspill_start(f, level, err)) != 0)
                    goto done;
            } else {
                size_t k;

                note_peak(f);
                for (k = 0; k < SPILL_FANOUT; k++) {
                    names[k] = xasprintf("%s.%u.%zu", f->prefix, level, k);
                    w[k] = rowfile_create_scratch(names[k],
                                                  hashagg_partial_cols(h), err);
                    if (w[k] == NULL) {
                        rc = err ? err->code : SH_EIO;
                        goto done;
                    }
                }
                spilling = 1;
                f->open_w = w;
                rc = hashagg_drain_partial(h, spill_emit, &sp, err);
                if (rc != 0)
                    goto done;
            }
        }
        if (rc < 0)
            goto done;
        rc = 0;
        rowfile_free(r);
        r = NULL;
    }

    if (!spilling) {
        note_peak(f);
        if (h->qspill != NULL
            && (rc = agg_qspill_finish(h, &f->st.spill_bytes, err)) != 0)
            goto done;
        note_peak(f);
        rc = hashagg_drain_final(h, f->emit, f->ctx, err);
        goto done;
    }
    for (i = 0; i < SPILL_FANOUT; i++) {
        rowfile_writer *wi = w[i];

        w[i] = NULL;
        f->st.spill_bytes += rowfile_bytes(wi);
        rc = rowfile_close(wi, err);
        if (rc != 0)
            goto done;
    }
    f->open_w = NULL;
    for (i = 0; i < SPILL_FANOUT; i++) {
        const char *one = names[i];

        rc = finalize_level(f, &one, 1, level + 1, err);
        if (rc != 0)
            goto done;
        fsys_unlink(names[i]);
        free(names[i]);
        names[i] = NULL;
    }

done:
    rowfile_free(r);
    if (h->qspill != NULL) {
        note_peak(f);
        agg_qspill_end(h);
    }
    if (rc != 0)
        agg_reset_table(h);
    for (i = 0; i < SPILL_FANOUT; i++) {
        if (w[i] != NULL) {
            f->st.spill_bytes += rowfile_bytes(w[i]);
            rowfile_abort(w[i]);
        } else if (names[i] != NULL) {
            fsys_unlink(names[i]);
        }
        free(names[i]);
    }
    if (f->open_w == w)
        f->open_w = NULL;
    return rc;
}

/*
 * Merges the partial rows of the row files 'paths' (section 'section' of
 * each, or the whole files when it is < 0) and emits each group's
 * final row, re-partitioning into "<spill_prefix>.<level>.<i>" (removed
 * afterwards) while the groups outgrow 'mem_bytes'. After SPILL_LEVELS
 * levels, or when a single group is over the budget, the rest is finished
 * without re-partitioning, its median/quantile values sorted out of core
 * (agg_qspill.c). Returns 0, SH_EIO, SH_EDATA, SH_ERANGE or the first
 * error of 'emit' or 'tick'; 'h' is left empty and '*st' (may be NULL)
 * filled in every case.
 */
int
hashagg_finalize_files(hashagg *h, const char *const *paths, size_t n,
                       long section, size_t mem_bytes, const char *spill_prefix,
                       agg_emit_fn emit, agg_tick_fn tick, void *ctx,
                       hashagg_finalize_stats *st, sh_err *err)
{
    finalize f;
    int      rc;

    memset(&f, 0, sizeof f);
    f.h = h;
    f.mem_bytes = mem_bytes;
    f.prefix = spill_prefix;
    f.section = section;
    f.emit = emit;
    f.tick = tick;
    f.ctx = ctx;
    rc = finalize_level(&f, paths, n, 0, err);
    if (st != NULL)
        *st = f.st;
    return rc;
}
