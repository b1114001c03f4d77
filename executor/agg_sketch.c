/*
 * agg_sketch.c - approx_quantile: a KLL sketch (Karnin, Lang, Liberty,
 * "Optimal Quantile Approximation in Streams", 2016) of a group's values,
 * mergeable, so that it travels in partial rows like any other state.
 *
 * The sketch is a stack of compactors; an item at level h stands for 2^h
 * values. Level h holds up to ceil(k (2/3)^(H-1-h)) + 1 items (H levels,
 * k = AGG_KLL_K = 200). When the sketch holds more than the sum of those,
 * the lowest full level is sorted and every other item (odd or even ones,
 * a coin drawn from a hash of its contents, so the answer depends on the
 * data and the order of merging only) moves up a level. A query sorts
 * every item by value with its weight and returns the first whose
 * cumulative weight reaches q n. With k = 200 the rank of the answer is
 * within about 1.7 % of n of q n with high probability (the normalized
 * rank error DataSketches reports for KLL at k = 200, two-sided, 99 %);
 * tests check 2 %. A sketch holds about 3 k items (5 KiB) however many
 * values it saw; the first values are kept exactly (below k values the
 * answer is exact: the nearest rank, no interpolation).
 *
 * Items live in arrays of the table's arena (grown by doubling; the old
 * array is left to the arena, which a reset frees).
 *
 * Partial state (a string): n (int64), H (uint32), then per level its
 * item count (uint32) and its items (doubles), host byte order.
 */
#include "agg.h"
#include "agg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KLL_MAXL 40

struct agg_kll {
    int64_t  n;              /* values seen */
    uint32_t levels;         /* H, at least 1 */
    uint32_t len[KLL_MAXL];  /* items at each level */
    uint32_t cap[KLL_MAXL];  /* allocated items at each level */
    double  *item[KLL_MAXL]; /* the items of each level */
};

/* The most items level 'h' of an H-level sketch keeps. */
static uint32_t
level_cap(uint32_t h, uint32_t levels)
{
    return (uint32_t)ceil(AGG_KLL_K * pow(2.0 / 3.0, levels - 1 - h)) + 1;
}

/* The most items the sketch keeps before it compacts. */
static uint64_t
max_items(const struct agg_kll *s)
{
    uint64_t m = 0;

    for (uint32_t h = 0; h < s->levels; h++)
        m += level_cap(h, s->levels);
    return m;
}

static uint64_t
n_items(const struct agg_kll *s)
{
    uint64_t m = 0;

    for (uint32_t h = 0; h < s->levels; h++)
        m += s->len[h];
    return m;
}

/* Appends 'x' to level 'h'. */
static void
level_push(hashagg *h, struct agg_kll *s, uint32_t lv, double x)
{
    if (s->len[lv] == s->cap[lv]) {
        uint32_t cap = s->cap[lv] ? s->cap[lv] * 2 : 8;
        double  *p = agg_alloc(h, cap * sizeof *p);

        if (s->len[lv])
            memcpy(p, s->item[lv], s->len[lv] * sizeof *p);
        s->item[lv] = p;
        s->cap[lv] = cap;
    }
    s->item[lv][s->len[lv]++] = x;
}

static int
cmp_double(const void *a, const void *b)
{
    return value_cmp_double(*(const double *)a, *(const double *)b);
}

/* Compacts the lowest level at or over its capacity into the next one. */
static void
compact_once(hashagg *h, struct agg_kll *s)
{
    uint32_t lv, i, m, off;
    uint64_t bits;

    for (lv = 0; lv < s->levels; lv++) {
        if (s->len[lv] >= level_cap(lv, s->levels))
            break;
    }
    if (lv == s->levels)
        lv = 0; /* not reached: over max_items, some level is full */
    if (lv + 1 >= s->levels && s->levels < KLL_MAXL)
        s->levels++;
    if (lv + 1 >= s->levels)
        return; /* KLL_MAXL levels: 2^40 k values; not reached */
    qsort(s->item[lv], s->len[lv], sizeof(double), cmp_double);
    m = s->len[lv] & ~1u;
    memcpy(&bits, &s->item[lv][0], 8);
    off = (uint32_t)(util_mix64(bits ^ ((uint64_t)s->n << 8) ^ lv) & 1);
    for (i = off; i < m; i += 2)
        level_push(h, s, lv + 1, s->item[lv][i]);
    /* An odd item out (the largest) stays. */
    if (s->len[lv] > m)
        s->item[lv][0] = s->item[lv][m];
    s->len[lv] -= m;
}

static void
settle(hashagg *h, struct agg_kll *s)
{
    while (n_items(s) >= max_items(s)) {
        uint32_t before = s->levels;
        uint64_t items = n_items(s);

        compact_once(h, s);
        if (n_items(s) == items && s->levels == before)
            break;
    }
}

static struct agg_kll *
kll_get(hashagg *h, agg_state *st)
{
    if (st->u.kll == NULL) {
        st->u.kll = agg_alloc(h, sizeof *st->u.kll);
        memset(st->u.kll, 0, sizeof *st->u.kll);
        st->u.kll->levels = 1;
    }
    return st->u.kll;
}

/* Adds 'x' to the sketch of 'st'. */
void
agg_kll_add(hashagg *h, agg_state *st, double x)
{
    struct agg_kll *s = kll_get(h, st);

    level_push(h, s, 0, x);
    s->n++;
    if (s->len[0] >= level_cap(0, s->levels))
        settle(h, s);
}

/* Merges the serialized sketch 'p'/'len' into 'st'. Returns 0 or -1 (it
 * does not decode). */
int
agg_kll_merge(hashagg *h, agg_state *st, const char *p, size_t len)
{
    const char     *end = p + len;
    struct agg_kll *s;
    int64_t         n;
    uint32_t        levels, lv, cnt, i;
    double          x;

    if (len < 12)
        return -1;
    memcpy(&n, p, 8);
    memcpy(&levels, p + 8, 4);
    p += 12;
    if (n < 0 || levels == 0 || levels > KLL_MAXL)
        return -1;
    s = kll_get(h, st);
    for (lv = 0; lv < levels; lv++) {
        if (end - p < 4)
            return -1;
        memcpy(&cnt, p, 4);
        p += 4;
        if ((size_t)(end - p) / sizeof(double) < cnt)
            return -1;
        for (i = 0; i < cnt; i++) {
            memcpy(&x, p, 8);
            p += 8;
            level_push(h, s, lv, x);
        }
    }
    if (p != end)
        return -1;
    if (levels > s->levels)
        s->levels = levels;
    s->n += n;
    settle(h, s);
    return 0;
}

/* The serialized sketch of 'st' into 'sb' (empty sketch: 0). */
size_t
agg_kll_serialize(const agg_state *st, strbuf *sb)
{
    const struct agg_kll *s = st->u.kll;

    if (s == NULL || s->n == 0)
        return 0;
    sb_append(sb, &s->n, 8);
    sb_append(sb, &s->levels, 4);
    for (uint32_t lv = 0; lv < s->levels; lv++) {
        sb_append(sb, &s->len[lv], 4);
        sb_append(sb, s->item[lv], s->len[lv] * sizeof(double));
    }
    return sb->len;
}

typedef struct witem {
    double   x;
    uint64_t w;
} witem;

static int
cmp_witem(const void *a, const void *b)
{
    return value_cmp_double(((const witem *)a)->x, ((const witem *)b)->x);
}

/* The approximate 'q' quantile of the sketch of 'st'; 0 when empty (the
 * caller checks agg_kll_count first). */
double
agg_kll_quantile(const agg_state *st, double q)
{
    const struct agg_kll *s = st->u.kll;
    witem                *w;
    uint64_t              m = 0, cum = 0, i;
    double                target, r;

    if (s == NULL || s->n == 0)
        return 0;
    w = xmalloc(n_items(s) * sizeof *w);
    for (uint32_t lv = 0; lv < s->levels; lv++) {
        for (i = 0; i < s->len[lv]; i++) {
            w[m].x = s->item[lv][i];
            w[m].w = (uint64_t)1 << lv;
            m++;
        }
    }
    qsort(w, m, sizeof *w, cmp_witem);
    /* Total weight may differ from n by the odd items out; scale. */
    for (i = 0; i < m; i++)
        cum += w[i].w;
    target = q * (double)cum;
    r = w[m - 1].x;
    cum = 0;
    for (i = 0; i < m; i++) {
        cum += w[i].w;
        if ((double)cum >= target && cum > 0) {
            r = w[i].x;
            break;
        }
    }
    free(w);
    return r;
}

/* Values the sketch of 'st' has seen. */
int64_t
agg_kll_count(const agg_state *st)
{
    return st->u.kll ? st->u.kll->n : 0;
}
