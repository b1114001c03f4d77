/*
 * agg_hll.c - HyperLogLog for approx_count_distinct: 2^14 one-byte
 * registers per state, the estimate (with linear counting for small
 * ranges), adding a value and the merge of two register arrays.
 */
#include "agg.h"
#include "agg_int.h"

#include <math.h>
#include <string.h>

/* The HyperLogLog estimate (with linear counting for small ranges). */
int64_t
agg_hll_estimate(const uint8_t *regs)
{
    double m = HLL_REGS;
    double alpha = 0.7213 / (1.0 + 1.079 / m);
    double sum = 0;
    size_t zeros = 0;
    size_t i;
    double e;

    if (regs == NULL)
        return 0;
    for (i = 0; i < HLL_REGS; i++) {
        sum += ldexp(1.0, -(int)regs[i]);
        zeros += regs[i] == 0;
    }
    e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros > 0)
        e = m * log(m / (double)zeros);
    return (int64_t)llround(e);
}

/* The HyperLogLog registers of a state, made (zeroed) on first use. */
static uint8_t *
hll_regs(hashagg *h, agg_state *st)
{
    if (st->u.hll == NULL) {
        st->u.hll = agg_alloc(h, HLL_REGS);
        memset(st->u.hll, 0, HLL_REGS);
    }
    return st->u.hll;
}

/* Adds non-null 'v' to the HyperLogLog of 'st'. */
void
agg_hll_add(hashagg *h, agg_state *st, const sh_value *v)
{
    uint8_t *regs = hll_regs(h, st);
    uint64_t x = agg_value_hash(v, SEED_HLL);
    size_t   idx = (size_t)(x >> (64 - HLL_BITS));
    uint64_t w = (x << HLL_BITS) | ((uint64_t)1 << (HLL_BITS - 1));
    uint8_t  rank = (uint8_t)(__builtin_clzll(w) + 1);

    if (regs[idx] < rank)
        regs[idx] = rank;
}

/* Merges registers 'src' into those of 'st': the larger of each pair. */
void
agg_hll_merge(hashagg *h, agg_state *st, const uint8_t *src)
{
    uint8_t *regs = hll_regs(h, st);
    size_t   i;

    for (i = 0; i < HLL_REGS; i++) {
        if (regs[i] < src[i])
            regs[i] = src[i];
    }
}
