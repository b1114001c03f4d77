/*
 * agg_hll.c - HyperLogLog for approx_count_distinct: 2^14 one-byte
 * registers per state, the estimate (with linear counting for small
 * ranges) and the merge of two register arrays. Adding a value
 * (hll_add) is static inline in agg_int.h, on the fold's hot path.
 */
#include "agg.h"
#include "agg_int.h"

#include <math.h>

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

/* Merges registers 'src' into 'regs': the larger of each pair. */
void
agg_hll_merge(uint8_t *regs, const uint8_t *src)
{
    size_t i;

    for (i = 0; i < HLL_REGS; i++) {
        if (regs[i] < src[i])
            regs[i] = src[i];
    }
}
