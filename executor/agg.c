/*
 * agg.c - aggregate functions and their states: the names and result
 * types of the functions, folding a value into a group's state, merging
 * partial states, and emitting a group's partial or final row
 * (hashagg_add, hashagg_merge, hashagg_drain_*). The table of groups is
 * agg_table.c, HyperLogLog agg_hll.c, the out-of-core finish agg_spill.c.
 *
 * Partial states (one value per aggregate):
 *   count                 int
 *   sum                   int or float; null while no value was seen
 *   min, max              the value; null while no value was seen
 *   mean, var, std        string of 32 bytes: n (int64), shift, mean of
 *                         x - shift, m2 (doubles)
 *   count_distinct        string: the distinct values, each a tag byte and
 *                         its payload (8 bytes for int and float, 1 for
 *                         bool, a 4-byte length and the bytes for string)
 *   approx_count_distinct string of 2^14 register bytes; null while empty
 * Integers and doubles in blobs are in host byte order: partials never
 * leave the machine that made them.
 *
 * mean/var/std fold with Welford's update and merge with Chan's formula,
 * over values shifted by the group's first value (exact for values close to
 * it), so a large offset in the data does not cost precision.
 */
#include "agg.h"
#include "agg_int.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    agg_fn      fn;
} fn_names[] = {
    {"count", AGG_COUNT},
    {"sum", AGG_SUM},
    {"mean", AGG_MEAN},
    {"min", AGG_MIN},
    {"max", AGG_MAX},
    {"var", AGG_VAR},
    {"std", AGG_STD},
    {"count_distinct", AGG_COUNT_DISTINCT},
    {"approx_count_distinct", AGG_APPROX_COUNT_DISTINCT},
    {"min_by", AGG_MIN_BY},
    {"max_by", AGG_MAX_BY},
    {"median", AGG_MEDIAN},
    {"quantile", AGG_QUANTILE},
    {"approx_quantile", AGG_APPROX_QUANTILE},
};

/* Parses a function name of the job spec, exactly as written. */
int
agg_fn_parse(const char *name, agg_fn *out)
{
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof fn_names / sizeof fn_names[0]; i++) {
        if (strcmp(name, fn_names[i].name) == 0) {
            *out = fn_names[i].fn;
            return 0;
        }
    }
    return -1;
}

/* The spec's name of 'fn'; a static string ("unknown" if out of range). */
const char *
agg_fn_name(agg_fn fn)
{
    size_t i;

    for (i = 0; i < sizeof fn_names / sizeof fn_names[0]; i++) {
        if (fn_names[i].fn == fn)
            return fn_names[i].name;
    }
    return "unknown";
}

/*
 * The result type of 'fn' over 'in_type' (see agg.h). sum, mean, var and
 * std take int or float columns; min and max any typed column; count and
 * the distinct counts any column. Only count goes without a column.
 */
sh_type
agg_result_type(agg_fn fn, sh_type in_type, int has_col)
{
    int numeric = in_type == SH_INT || in_type == SH_FLOAT;

    if (!has_col)
        return fn == AGG_COUNT ? SH_INT : SH_NULL;
    switch (fn) {
    case AGG_COUNT:
    case AGG_COUNT_DISTINCT:
    case AGG_APPROX_COUNT_DISTINCT:
        return SH_INT;
    case AGG_SUM:
        return numeric ? in_type : SH_NULL;
    case AGG_MEAN:
    case AGG_VAR:
    case AGG_STD:
        return numeric ? SH_FLOAT : SH_NULL;
    case AGG_MIN:
    case AGG_MAX:
    case AGG_MIN_BY:
    case AGG_MAX_BY:
        return in_type;
    case AGG_MEDIAN:
    case AGG_QUANTILE:
        return numeric ? SH_FLOAT : SH_NULL;
    case AGG_APPROX_QUANTILE:
        return numeric ? in_type : SH_NULL;
    }
    return SH_NULL;
}

/* A copy of 'v' whose string bytes live in the arena. */
static sh_value
copy_value(hashagg *h, const sh_value *v)
{
    sh_value c = *v;

    if (v->type == SH_STRING) {
        char *p = agg_alloc(h, v->u.s.len ? v->u.s.len : 1);

        if (v->u.s.len)
            memcpy(p, v->u.s.ptr, v->u.s.len);
        c.u.s.ptr = p;
    }
    return c;
}

/* Adds non-null 'v' to the distinct set '*setp' (made on first use). */
static void
dset_add(hashagg *h, dset **setp, const sh_value *v)
{
    dset    *s = *setp;
    uint64_t hash = agg_value_hash(v, SEED_VALUE);
    size_t   j;

    if (s == NULL) {
        s = agg_alloc(h, sizeof *s);
        memset(s, 0, sizeof *s);
        *setp = s;
    }
    if ((s->n + 1) * 10 > s->cap * 7) {
        size_t    cap = s->cap ? s->cap * 2 : 8;
        uint64_t *hashes = xmalloc(cap * sizeof *hashes);
        sh_value *vals = xmalloc(cap * sizeof *vals);
        size_t    i;

        for (i = 0; i < cap; i++)
            vals[i].type = SH_NULL;
        for (i = 0; i < s->cap; i++) {
            if (s->vals[i].type == SH_NULL)
                continue;
            j = s->hashes[i] & (cap - 1);
            while (vals[j].type != SH_NULL)
                j = (j + 1) & (cap - 1);
            vals[j] = s->vals[i];
            hashes[j] = s->hashes[i];
        }
        h->set_bytes += (cap - s->cap) * (sizeof *hashes + sizeof *vals);
        free(s->hashes);
        free(s->vals);
        s->hashes = hashes;
        s->vals = vals;
        s->cap = cap;
    }
    j = hash & (s->cap - 1);
    while (s->vals[j].type != SH_NULL) {
        if (s->hashes[j] == hash && values_equal(&s->vals[j], v))
            return;
        j = (j + 1) & (s->cap - 1);
    }
    s->vals[j] = copy_value(h, v);
    s->hashes[j] = hash;
    s->n++;
}

/* Folds one Welford observation. */
static void
welford_add(agg_state *st, double x)
{
    double d;

    if (st->u.w.n == 0)
        st->u.w.shift = isfinite(x) ? x : 0;
    x -= st->u.w.shift;
    st->u.w.n++;
    d = x - st->u.w.mean;
    st->u.w.mean += d / (double)st->u.w.n;
    st->u.w.m2 += d * (x - st->u.w.mean);
}

/* Merges Welford state (n, shift, mean, m2) into 'st' by Chan's formula. */
static void
welford_merge(agg_state *st, int64_t nb, double kb, double mb, double m2b)
{
    int64_t na = st->u.w.n;
    double  n, d;

    if (nb == 0)
        return;
    if (na == 0) {
        st->u.w.n = nb;
        st->u.w.shift = kb;
        st->u.w.mean = mb;
        st->u.w.m2 = m2b;
        return;
    }
    n = (double)(na + nb);
    mb += kb - st->u.w.shift; /* b's mean under a's shift */
    d = mb - st->u.w.mean;
    st->u.w.mean += d * ((double)nb / n);
    st->u.w.m2 += m2b + d * d * ((double)na * (double)nb / n);
    st->u.w.n = na + nb;
}

/* Sets a min/max state to 'v', copying a string into (reused) arena
 * memory. */
static void
mm_set(hashagg *h, agg_state *st, const sh_value *v)
{
    if (v->type == SH_STRING) {
        char *p = (char *)st->u.mm.v.u.s.ptr;

        if (st->u.mm.v.type != SH_STRING || st->u.mm.cap < v->u.s.len) {
            st->u.mm.cap = v->u.s.len < 16 ? 16 : v->u.s.len;
            p = agg_alloc(h, st->u.mm.cap);
        }
        if (v->u.s.len)
            memcpy(p, v->u.s.ptr, v->u.s.len);
        st->u.mm.v = sh_str(p, v->u.s.len);
    } else {
        size_t cap = st->u.mm.cap;

        /* Keep a string buffer for reuse only while the state is one. */
        st->u.mm.v = *v;
        st->u.mm.cap = v->type == SH_STRING ? cap : 0;
    }
}

/* Folds non-null 'v' into a min (sign -1) or max (sign 1) state. */
static void
mm_fold(hashagg *h, agg_state *st, const sh_value *v, int sign)
{
    if (st->u.mm.v.type == SH_NULL || sign * value_cmp(v, &st->u.mm.v) > 0)
        mm_set(h, st, v);
}

/* A number as a double, for mean/var/std and float sums. Returns -1 for a
 * non-numeric value. */
static int
as_double(const sh_value *v, double *out)
{
    if (v->type == SH_FLOAT)
        *out = v->u.f;
    else if (v->type == SH_INT)
        *out = (double)v->u.i;
    else
        return -1;
    return 0;
}

/* Reports a value of the wrong type in aggregate 'a'. */
static int
bad_type(const agg_def *a, const sh_value *v, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "", "%s of column %ld: a %s value",
                      agg_fn_name(a->fn), a->col, sh_type_name(v->type));
}

/* The 128-bit int sum of 'st'. Partial sums may pass 64 bits (2^62 +
 * 2^62 - 2^62 is fine in any order); only the final one must fit. */
static __int128
sum_get(const agg_state *st)
{
    unsigned __int128 u = (unsigned __int128)(uint64_t)st->u.sum.hi << 64;

    return (__int128)(u | st->u.sum.lo);
}

static void
sum_set(agg_state *st, __int128 v)
{
    unsigned __int128 u = (unsigned __int128)v;

    st->u.sum.hi = (int64_t)(uint64_t)(u >> 64);
    st->u.sum.lo = (uint64_t)u;
    st->u.sum.has = 1;
}

/* Adds 'x' to an int sum state. Partial sums are int64 values, or 16-byte
 * strings (hi, lo) when they pass 64 bits. */
static int
sum_int(const agg_def *a, agg_state *st, const sh_value *x, sh_err *err)
{
    int64_t  hi;
    uint64_t lo;

    (void)a;
    (void)err;
    if (x->type == SH_INT) {
        sum_set(st, sum_get(st) + x->u.i);
        return 0;
    }
    memcpy(&hi, x->u.s.ptr, 8);
    memcpy(&lo, x->u.s.ptr + 8, 8);
    sum_set(st, sum_get(st)
                    + (__int128)(((unsigned __int128)(uint64_t)hi << 64) | lo));
    return 0;
}

/* Does the int sum of 'st' fit 64 bits? */
static int
sum_fits(const agg_state *st)
{
    __int128 v = sum_get(st);

    return v >= INT64_MIN && v <= INT64_MAX;
}

/* Folds input value 'v' (the aggregate's column, or ignored for count of
 * rows) into 'st'. */
static int
fold_value(hashagg *h, const agg_def *a, agg_state *st, const sh_value *v,
           sh_err *err)
{
    double x;

    if (a->fn == AGG_COUNT) {
        if (a->col < 0 || v->type != SH_NULL)
            st->u.n++;
        return 0;
    }
    if (v->type == SH_NULL)
        return 0;
    switch (a->fn) {
    case AGG_COUNT:
        break;
    case AGG_SUM:
        if (a->in_type == SH_INT) {
            if (v->type != SH_INT)
                return bad_type(a, v, err);
            return sum_int(a, st, v, err);
        }
        if (as_double(v, &x) != 0)
            return bad_type(a, v, err);
        st->u.sum.f += x;
        st->u.sum.has = 1;
        break;
    case AGG_MEAN:
    case AGG_VAR:
    case AGG_STD:
        if (as_double(v, &x) != 0)
            return bad_type(a, v, err);
        welford_add(st, x);
        break;
    case AGG_MIN:
        mm_fold(h, st, v, -1);
        break;
    case AGG_MAX:
        mm_fold(h, st, v, 1);
        break;
    case AGG_COUNT_DISTINCT:
        dset_add(h, &st->u.set, v);
        break;
    case AGG_APPROX_COUNT_DISTINCT:
        agg_hll_add(h, st, v);
        break;
    case AGG_MIN_BY:
    case AGG_MAX_BY:
    case AGG_MEDIAN:
    case AGG_QUANTILE:
    case AGG_APPROX_QUANTILE:
        break; /* agg_quant_fold, from hashagg_add */
    }
    return 0;
}

/*
 * Folds one input row into its group. Returns 0, SH_ERANGE on an int sum
 * overflow or SH_EDATA on a value of the wrong type (the group keeps the
 * aggregates folded before the failing one).
 */
int
hashagg_add(hashagg *h, const sh_value *row, sh_err *err)
{
    static const sh_value null_value = {SH_NULL, {0}};
    group                *g;
    size_t                i;
    int                   rc;

    assert(h->n_queued == 0);
    for (i = 0; i < h->n_keys; i++)
        h->keybuf[i] = row[h->key_cols[i]];
    g = agg_find_group(h, h->keybuf);
    for (i = 0; i < h->n_aggs; i++) {
        const agg_def  *a = &h->aggs[i];
        const sh_value *v = a->col >= 0 ? &row[a->col] : &null_value;

        if (agg_is_quant(a->fn))
            rc = agg_quant_fold(h, a, &group_states(h, g)[i], row, err);
        else
            rc = fold_value(h, a, &group_states(h, g)[i], v, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
/* Reports a partial state that does not decode. */
static int
bad_state(const agg_def *a, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "",
                      "corrupt partial state of %s of column %ld",
                      agg_fn_name(a->fn), a->col);
}

/* Merges count_distinct blob 'p'/'n' into 'st'. */
static int
merge_set(hashagg *h, const agg_def *a, agg_state *st, const char *p, size_t n,
          sh_err *err)
{
    const char *end = p + n;

    while (p < end) {
        sh_value v;
        uint32_t len;
        int      tag = (unsigned char)*p++;

        switch (tag) {
        case SH_INT:
        case SH_FLOAT:
        case SH_DATE:
        case SH_TIMESTAMP:
            if (end - p < 8)
                return bad_state(a, err);
            v.type = (sh_type)tag;
            memcpy(&v.u.i, p, 8);
            p += 8;
            break;
        case SH_BOOL:
            if (end - p < 1)
                return bad_state(a, err);
            v = sh_bool(*p++);
            break;
        case SH_STRING:
            if (end - p < 4)
                return bad_state(a, err);
            memcpy(&len, p, 4);
            p += 4;
            if ((size_t)(end - p) < len)
                return bad_state(a, err);
            v = sh_str(p, len);
            p += len;
            break;
        default:
            return bad_state(a, err);
        }
        dset_add(h, &st->u.set, &v);
    }
    return 0;
}

/* Merges partial state 'v' of aggregate 'a' into 'st'. */
static int
merge_state(hashagg *h, const agg_def *a, agg_state *st, const sh_value *v,
            sh_err *err)
{
    int64_t     n;
    double      kb, mb, m2b;
    const char *p;

    if (a->fn == AGG_COUNT) {
        if (v->type != SH_INT)
            return bad_state(a, err);
        st->u.n += v->u.i;
        return 0;
    }
    if (v->type == SH_NULL)
        return 0; /* an empty state */
    switch (a->fn) {
    case AGG_COUNT:
        break;
    case AGG_SUM:
        if (a->in_type == SH_INT) {
            if (v->type != SH_INT && (v->type != SH_STRING || v->u.s.len != 16))
                return bad_state(a, err);
            return sum_int(a, st, v, err);
        }
        if (v->type != SH_FLOAT)
            return bad_state(a, err);
        st->u.sum.f += v->u.f;
        st->u.sum.has = 1;
        break;
    case AGG_MEAN:
    case AGG_VAR:
    case AGG_STD:
        if (v->type != SH_STRING || v->u.s.len != WELFORD_BYTES)
            return bad_state(a, err);
        p = v->u.s.ptr;
        memcpy(&n, p, 8);
        memcpy(&kb, p + 8, 8);
        memcpy(&mb, p + 16, 8);
        memcpy(&m2b, p + 24, 8);
        if (n < 0)
            return bad_state(a, err);
        welford_merge(st, n, kb, mb, m2b);
        break;
    case AGG_MIN:
        mm_fold(h, st, v, -1);
        break;
    case AGG_MAX:
        mm_fold(h, st, v, 1);
        break;
    case AGG_COUNT_DISTINCT:
        if (v->type != SH_STRING)
            return bad_state(a, err);
        return merge_set(h, a, st, v->u.s.ptr, v->u.s.len, err);
    case AGG_APPROX_COUNT_DISTINCT:
        if (v->type != SH_STRING || v->u.s.len != HLL_REGS)
            return bad_state(a, err);
        agg_hll_merge(h, st, (const uint8_t *)v->u.s.ptr);
        break;
    case AGG_MIN_BY:
    case AGG_MAX_BY:
    case AGG_MEDIAN:
    case AGG_QUANTILE:
    case AGG_APPROX_QUANTILE:
        return agg_quant_merge(h, a, st, v, err);
    }
    return 0;
}

/*
 * Folds one partial row (keys, then states) into its group. Returns 0,
 * SH_ERANGE on an int sum overflow or SH_EDATA on a state that does not
 * decode.
 */
int
hashagg_merge(hashagg *h, const sh_value *partial, sh_err *err)
{
    agg_state *st;
    size_t     i;
    int        rc;

    assert(h->n_queued == 0);
    st = group_states(h, agg_find_group(h, partial));
    for (i = 0; i < h->n_aggs; i++) {
        rc = merge_state(h, &h->aggs[i], &st[i], &partial[h->n_keys + i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The partial form of state 'st' of aggregate 'a'; blobs go to 'sb'. */
static sh_value
partial_value(const hashagg *h, const agg_def *a, const agg_state *st,
              strbuf *sb)
{
    size_t i;

    (void)h;
    sb_reset(sb);
    switch (a->fn) {
    case AGG_COUNT:
        return sh_int(st->u.n);
    case AGG_SUM:
        if (!st->u.sum.has)
            return sh_null();
        if (a->in_type != SH_INT)
            return sh_float(st->u.sum.f);
        if (sum_fits(st))
            return sh_int((int64_t)sum_get(st));
        sb_append(sb, &st->u.sum.hi, 8);
        sb_append(sb, &st->u.sum.lo, 8);
        return sh_str(sb->data, sb->len);
    case AGG_MEAN:
    case AGG_VAR:
    case AGG_STD:
        sb_append(sb, &st->u.w.n, 8);
        sb_append(sb, &st->u.w.shift, 8);
        sb_append(sb, &st->u.w.mean, 8);
        sb_append(sb, &st->u.w.m2, 8);
        return sh_str(sb->data, sb->len);
    case AGG_MIN:
    case AGG_MAX:
        return st->u.mm.v;
    case AGG_COUNT_DISTINCT:
        if (st->u.set == NULL)
            return sh_null();
        for (i = 0; i < st->u.set->cap; i++) {
            const sh_value *v = &st->u.set->vals[i];
            char            tag = (char)v->type;
            char            b;
            uint32_t        len;

            if (v->type == SH_NULL)
                continue;
            sb_putc(sb, tag);
            if (v->type == SH_INT || v->type == SH_FLOAT || v->type == SH_DATE
                || v->type == SH_TIMESTAMP) {
                sb_append(sb, &v->u.i, 8);
            } else if (v->type == SH_BOOL) {
                b = (char)v->u.b;
                sb_putc(sb, b);
            } else {
                len = (uint32_t)v->u.s.len;
                sb_append(sb, &len, 4);
                sb_append(sb, v->u.s.ptr, v->u.s.len);
            }
        }
        return sh_str(sb->data, sb->len);
    case AGG_APPROX_COUNT_DISTINCT:
        if (st->u.hll == NULL)
            return sh_null();
        return sh_str((const char *)st->u.hll, HLL_REGS);
    case AGG_MIN_BY:
    case AGG_MAX_BY:
    case AGG_MEDIAN:
    case AGG_QUANTILE:
    case AGG_APPROX_QUANTILE:
        return agg_quant_partial(a, st, sb);
    }
    return sh_null();
}

/* The final result of state 'st' of aggregate 'a'. */
static sh_value
final_value(const agg_def *a, const agg_state *st)
{
    double var;

    switch (a->fn) {
    case AGG_COUNT:
        return sh_int(st->u.n);
    case AGG_SUM:
        if (!st->u.sum.has)
            return sh_null();
        return a->in_type == SH_INT ? sh_int((int64_t)sum_get(st))
                                    : sh_float(st->u.sum.f);
    case AGG_MEAN:
        return st->u.w.n ? sh_float(st->u.w.shift + st->u.w.mean) : sh_null();
    case AGG_VAR:
    case AGG_STD:
        /* Sample variance: null below two values, as DuckDB. */
        if (st->u.w.n < 2)
            return sh_null();
        var = st->u.w.m2 / (double)(st->u.w.n - 1);
        if (var < 0)
            var = 0;
        return sh_float(a->fn == AGG_VAR ? var : sqrt(var));
    case AGG_MIN:
    case AGG_MAX:
        return st->u.mm.v;
    case AGG_COUNT_DISTINCT:
        return sh_int(st->u.set ? (int64_t)st->u.set->n : 0);
    case AGG_APPROX_COUNT_DISTINCT:
        return sh_int(agg_hll_estimate(st->u.hll));
    case AGG_MIN_BY:
    case AGG_MAX_BY:
    case AGG_MEDIAN:
    case AGG_QUANTILE:
    case AGG_APPROX_QUANTILE:
        return agg_quant_final(a, st);
    }
    return sh_null();
}

/* Emits every group, partial (final == 0) or final, then empties the
 * table (also when 'emit' fails). */
static int
drain(hashagg *h, int final, agg_emit_fn emit, void *ctx, sh_err *err)
{
    size_t i, j;
    int    rc = 0;

    for (i = 0; i < h->n_groups && rc == 0; i++) {
        group     *g = h->groups[i];
        agg_state *st = group_states(h, g);

        for (j = 0; j < h->n_keys; j++)
            h->out[j] = group_keys(g)[j];
        for (j = 0; final && rc == 0 && j < h->n_aggs; j++) {
            if (h->aggs[j].fn == AGG_SUM && h->aggs[j].in_type == SH_INT
                && st[j].u.sum.has && !sum_fits(&st[j]))
                rc = sh_err_set(err, SH_ERANGE, "",
                                "sum of column %ld overflows a 64-bit int",
                                h->aggs[j].col);
        }
        if (rc != 0)
            break;
        for (j = 0; j < h->n_aggs; j++) {
            h->out[h->n_keys + j] = final ? final_value(&h->aggs[j], &st[j])
                                          : partial_value(h, &h->aggs[j],
                                                          &st[j], &h->blobs[j]);
        }
        rc = emit(ctx, h->out, err);
    }
    agg_reset_table(h);
    return rc;
}

/*
 * Emits every group as a partial row (borrowed for the call) and empties
 * the table. Returns 0 or the first error of 'emit'.
 */
int
hashagg_drain_partial(hashagg *h, agg_emit_fn emit, void *ctx, sh_err *err)
{
    int rc = hashagg_flush(h, err);

    return rc != 0 ? rc : drain(h, 0, emit, ctx, err);
}

/*
 * Emits every group as a final row (borrowed for the call) and empties
 * the table. An empty table emits nothing, also without keys: a caller
 * that needs the one row of an aggregate over no input makes it.
 */
int
hashagg_drain_final(hashagg *h, agg_emit_fn emit, void *ctx, sh_err *err)
{
    int rc = hashagg_flush(h, err);

    return rc != 0 ? rc : drain(h, 1, emit, ctx, err);
}
