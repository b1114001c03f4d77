/*
 * agg_quant.c - the aggregates that look at more than one value at a time:
 * min_by/max_by (the value of one column where another is smallest or
 * largest), the exact median/quantile (every value kept, sorted at the
 * end) and approx_quantile (its sketch is agg_sketch.c). agg.c calls in
 * here for their fold, merge, partial and final forms; their states live
 * in the table's arena, so a reset frees them, but for the values of
 * median/quantile, in malloc'ed chunks that agg_reset_table frees (and
 * that agg_qspill.c takes out of memory when the final half sorts them
 * out of core).
 *
 * Partial states (one value per aggregate, null while empty):
 *   min_by, max_by    string: the 'by' value then the column's value, each
 *                     a tag byte and its payload (8 bytes for int, float,
 *                     date, timestamp; 1 for bool; a 4-byte length and
 *                     the bytes for string), host byte order
 *   median, quantile  string: the values as doubles, host byte order
 *   approx_quantile   string: the KLL sketch (agg_sketch.c)
 *
 * Ties of min_by/max_by go by the value (the smallest for min_by, the
 * largest for max_by): the pair (by, value) is compared as a whole, so
 * any grouping of partials gives the same answer.
 */
#include "agg.h"
#include "agg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A value with its string bytes in the arena (capacity 'cap'). */
typedef struct by_slot {
    sh_value v;
    size_t   cap;
} by_slot;

struct agg_by {
    by_slot key; /* the 'by' value of the winning row */
    by_slot val; /* its column value */
};

#define QCHUNK_MIN 16
#define QCHUNK_MAX 65536

/* Sets 's' to 'v', copying a string's bytes into (reused) arena memory. */
static void
slot_set(hashagg *h, by_slot *s, const sh_value *v)
{
    if (v->type == SH_STRING) {
        char *p = s->v.type == SH_STRING ? (char *)s->v.u.s.ptr : NULL;

        if (p == NULL || s->cap < v->u.s.len) {
            s->cap = v->u.s.len < 16 ? 16 : v->u.s.len;
            p = agg_alloc(h, s->cap);
        }
        if (v->u.s.len)
            memcpy(p, v->u.s.ptr, v->u.s.len);
        s->v = sh_str(p, v->u.s.len);
    } else {
        /* A string buffer is kept only while the slot holds a string. */
        s->v = *v;
        s->cap = 0;
    }
}

/* Folds the pair (key, val), both non-null, into a min_by (sign -1) or
 * max_by (sign 1) state. */
static void
by_fold(hashagg *h, agg_state *st, const sh_value *key, const sh_value *val,
        int sign)
{
    struct agg_by *b = st->u.by;
    int            c;

    if (b == NULL) {
        b = agg_alloc(h, sizeof *b);
        memset(b, 0, sizeof *b);
        b->key.v = sh_null();
        b->val.v = sh_null();
        st->u.by = b;
    } else {
        c = value_cmp(key, &b->key.v);
        if (c == 0)
            c = value_cmp(val, &b->val.v);
        if (sign * c <= 0)
            return;
    }
    slot_set(h, &b->key, key);
    slot_set(h, &b->val, val);
}

/* Reports a value of the wrong type in aggregate 'a'. */
static int
bad_type(const agg_def *a, const sh_value *v, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "", "%s of column %ld: a %s value",
                      agg_fn_name(a->fn), a->col, sh_type_name(v->type));
}

/* Reports a partial state that does not decode. */
static int
bad_state(const agg_def *a, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "",
                      "corrupt partial state of %s of column %ld",
                      agg_fn_name(a->fn), a->col);
}

/* Appends 'x' to the median/quantile state of 'a' in 'st' (made on first
 * use): in a chunk, or to the external sort once the table sorts out of
 * core. Returns 0 or SH_EIO. */
static int
qvec_add(hashagg *h, const agg_def *a, agg_state *st, double x, sh_err *err)
{
    agg_qvec *q = st->u.qv;
    qchunk   *c;

    if (q == NULL) {
        q = agg_alloc(h, sizeof *q);
        memset(q, 0, sizeof *q);
        q->q = a->fn == AGG_MEDIAN ? 0.5 : a->q;
        if (h->n_qvecs == h->qvecs_cap) {
            h->qvecs_cap = h->qvecs_cap ? h->qvecs_cap * 2 : 64;
            h->qvecs = xrealloc(h->qvecs, h->qvecs_cap * sizeof *h->qvecs);
        }
        q->id = h->n_qvecs;
        h->qvecs[h->n_qvecs++] = q;
        st->u.qv = q;
    }
    q->n++;
    if (h->qspill != NULL)
        return agg_qspill_push(h, q, x, err);
    c = q->tail;
    if (c == NULL || c->n == c->cap) {
        size_t  cap = c == NULL              ? QCHUNK_MIN
                      : c->cap >= QCHUNK_MAX ? QCHUNK_MAX
                                             : c->cap * 2;
        qchunk *nc = xmalloc(sizeof *nc + cap * sizeof(double));

        h->quant_bytes += sizeof *nc + cap * sizeof(double);
        nc->next = NULL;
        nc->n = 0;
        nc->cap = cap;
        if (c == NULL)
            q->head = nc;
        else
            c->next = nc;
        q->tail = nc;
        c = nc;
    }
    c->x[c->n++] = x;
    return 0;
}

/* Folds one input row into a min_by/max_by/median/quantile state. */
int
agg_quant_fold(hashagg *h, const agg_def *a, agg_state *st, const sh_value *row,
               sh_err *err)
{
    const sh_value *v = &row[a->col];

    if (v->type == SH_NULL)
        return 0;
    if (a->fn == AGG_MIN_BY || a->fn == AGG_MAX_BY) {
        const sh_value *k = &row[a->by_col];

        if (k->type != SH_NULL)
            by_fold(h, st, k, v, a->fn == AGG_MIN_BY ? -1 : 1);
        return 0;
    }
    if (a->fn == AGG_APPROX_QUANTILE) {
        if (v->type == SH_FLOAT)
            agg_kll_add(h, st, v->u.f);
        else if (v->type == SH_INT)
            agg_kll_add(h, st, (double)v->u.i);
        else
            return bad_type(a, v, err);
        return 0;
    }
    if (v->type == SH_FLOAT)
        return qvec_add(h, a, st, v->u.f, err);
    if (v->type == SH_INT)
        return qvec_add(h, a, st, (double)v->u.i, err);
    return bad_type(a, v, err);
}

/* Decodes one tagged value at *p (before 'end') into *v (strings point
 * into the bytes). Returns 0 or -1. */
static int
decode_value(const char **p, const char *end, sh_value *v)
{
    const char *s = *p;
    uint32_t    len;
    int         tag;

    if (s >= end)
        return -1;
    tag = (unsigned char)*s++;
    switch (tag) {
    case SH_INT:
    case SH_FLOAT:
    case SH_DATE:
    case SH_TIMESTAMP:
        if (end - s < 8)
            return -1;
        v->type = (sh_type)tag;
        memcpy(&v->u.i, s, 8);
        s += 8;
        break;
    case SH_BOOL:
        if (end - s < 1)
            return -1;
        *v = sh_bool(*s++);
        break;
    case SH_STRING:
        if (end - s < 4)
            return -1;
        memcpy(&len, s, 4);
        s += 4;
        if ((size_t)(end - s) < len)
            return -1;
        *v = sh_str(s, len);
        s += len;
        break;
    default:
        return -1;
    }
    *p = s;
    return 0;
}

/* Appends non-null 'v' tagged to 'sb'. */
static void
encode_value(strbuf *sb, const sh_value *v)
{
    uint32_t len;
    char     b;

    sb_putc(sb, (char)v->type);
    if (v->type == SH_STRING) {
        len = (uint32_t)v->u.s.len;
        sb_append(sb, &len, 4);
        sb_append(sb, v->u.s.ptr, v->u.s.len);
    } else if (v->type == SH_BOOL) {
        b = (char)v->u.b;
        sb_putc(sb, b);
    } else {
        sb_append(sb, &v->u.i, 8);
    }
}

/* Merges a partial state into a min_by/max_by/median/quantile state. */
int
agg_quant_merge(hashagg *h, const agg_def *a, agg_state *st, const sh_value *v,
                sh_err *err)
{
    const char *p, *end;
    sh_value    key, val;
    size_t      i, n;
    double      x;
    int         rc;

    if (v->type == SH_NULL)
        return 0;
    if (v->type != SH_STRING)
        return bad_state(a, err);
    p = v->u.s.ptr;
    end = p + v->u.s.len;
    if (a->fn == AGG_MIN_BY || a->fn == AGG_MAX_BY) {
        if (decode_value(&p, end, &key) != 0 || decode_value(&p, end, &val) != 0
            || p != end)
            return bad_state(a, err);
        by_fold(h, st, &key, &val, a->fn == AGG_MIN_BY ? -1 : 1);
        return 0;
    }
    if (a->fn == AGG_APPROX_QUANTILE)
        return agg_kll_merge(h, st, p, v->u.s.len) == 0 ? 0 : bad_state(a, err);
    if (v->u.s.len % sizeof(double) != 0)
        return bad_state(a, err);
    n = v->u.s.len / sizeof(double);
    for (i = 0; i < n; i++) {
        memcpy(&x, p + i * sizeof(double), sizeof(double));
        if ((rc = qvec_add(h, a, st, x, err)) != 0)
            return rc;
    }
    return 0;
}

/* The partial form of a min_by/max_by/median/quantile state. */
sh_value
agg_quant_partial(const agg_def *a, const agg_state *st, strbuf *sb)
{
    const qchunk *c;

    sb_reset(sb);
    if (a->fn == AGG_MIN_BY || a->fn == AGG_MAX_BY) {
        if (st->u.by == NULL)
            return sh_null();
        encode_value(sb, &st->u.by->key.v);
        encode_value(sb, &st->u.by->val.v);
        return sh_str(sb->data, sb->len);
    }
    if (a->fn == AGG_APPROX_QUANTILE)
        return agg_kll_serialize(st, sb) ? sh_str(sb->data, sb->len)
                                         : sh_null();
    if (st->u.qv == NULL || st->u.qv->n == 0)
        return sh_null();
    for (c = st->u.qv->head; c != NULL; c = c->next)
        sb_append(sb, c->x, c->n * sizeof(double));
    return sh_str(sb->data, sb->len);
}

/* Orders doubles as value_cmp_double (NaN last, as DuckDB). */
static int
cmp_double(const void *a, const void *b)
{
    return value_cmp_double(*(const double *)a, *(const double *)b);
}

/*
 * The 'q' quantile (0 <= q <= 1) of the 'n' (> 0) values of 'x', sorted
 * in place, interpolated as DuckDB's quantile_cont.
 */
double
agg_quantile_cont(double *x, size_t n, double q)
{
    size_t i = agg_cont_rank(n, q);

    qsort(x, n, sizeof *x, cmp_double);
    return agg_cont_value(n, q, x[i], agg_cont_needs_next(n, q) ? x[i + 1] : 0);
}

/* The final result of a min_by/max_by/median/quantile state. */
sh_value
agg_quant_final(const agg_def *a, const agg_state *st)
{
    const qchunk *c;
    double       *x, r;
    size_t        n = 0;

    if (a->fn == AGG_MIN_BY || a->fn == AGG_MAX_BY)
        return st->u.by ? st->u.by->val.v : sh_null();
    if (a->fn == AGG_APPROX_QUANTILE) {
        if (agg_kll_count(st) == 0)
            return sh_null();
        r = agg_kll_quantile(st, a->q);
        return a->in_type == SH_INT ? sh_int((int64_t)r) : sh_float(r);
    }
    if (st->u.qv == NULL || st->u.qv->n == 0)
        return sh_null();
    if (st->u.qv->done)
        return sh_float(st->u.qv->result);
    x = xmalloc(st->u.qv->n * sizeof *x);
    for (c = st->u.qv->head; c != NULL; c = c->next) {
        memcpy(x + n, c->x, c->n * sizeof *x);
        n += c->n;
    }
    r = agg_quantile_cont(x, n, st->u.qv->q);
    free(x);
    return sh_float(r);
}
