/*
 * agg_int.h - the private parts of aggregation shared by its files: the
 * group, state and table layout, the hash of a value, and the calls
 * between the aggregate states (agg.c), HyperLogLog (agg_hll.c), the hash
 * table (agg_table.c) and its spill (agg_spill.c). Helpers on the fold's
 * hot path are static inline here, as they were in the one file; they
 * call nothing those files define, so the dependency runs one way: the
 * files on this header. Nothing outside those files includes it.
 */
#ifndef SHEAF_AGG_INT_H
#define SHEAF_AGG_INT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "agg.h"
#include "../lib/util.h"

#define HLL_BITS      14
#define HLL_REGS      (1u << HLL_BITS)
#define WELFORD_BYTES 32
#define ARENA_BLOCK   (64 * 1024)

/* Seeds that keep the table's hash, HyperLogLog's hash and the buckets a
 * caller chooses with hashagg_key_hash independent of each other. */
#define SEED_TABLE 0x2f5a1c9e7b3d4e61ULL
#define SEED_VALUE 0x6a09e667f3bcc909ULL
#define SEED_HLL   0xbb67ae8584caa73bULL
#define SEED_SPILL 0x3c6ef372fe94f82bULL

/* A set of distinct non-null values (count_distinct); open addressing. */
typedef struct dset {
    size_t    cap;    /* slots, a power of two (0 before the first add) */
    size_t    n;      /* values held */
    uint64_t *hashes; /* hash of each slot's value */
    sh_value *vals;   /* the values; type SH_NULL marks an empty slot */
} dset;

/* Values of an exact quantile state, in malloc'ed chunks that never
 * move. */
typedef struct qchunk {
    struct qchunk *next;
    size_t         n, cap;
    double         x[];
} qchunk;

/* The state of median and quantile: every non-null value, in memory or,
 * once the table sorts them out of core (agg_qspill.c), counted only. */
typedef struct agg_qvec {
    size_t  n;    /* values folded or merged */
    size_t  id;   /* its index in hashagg.qvecs */
    double  q;    /* the quantile it answers (0.5 for median) */
    int     done; /* 'result' holds the answer (sorted out of core) */
    double  result;
    qchunk *head; /* values held; NULL once out of core */
    qchunk *tail; /* the chunk being filled */
} agg_qvec;

/* The running state of one aggregate of one group. */
typedef struct agg_state {
    union {
        int64_t n; /* count */
        struct {
            int      has; /* a non-null value was added */
            int64_t  hi;  /* sum of an int column, 128 bits, */
            uint64_t lo;  /* so order never decides an overflow */
            double   f;   /* sum of a float column */
        } sum;
        struct {
            int64_t n;     /* values folded */
            double  shift; /* the first value, subtracted from all */
            double  mean;  /* mean of x - shift */
            double  m2;    /* sum of squared deviations from it */
        } w;
        struct {
            sh_value v;   /* current min or max; SH_NULL when none */
            size_t   cap; /* bytes allocated for a string value */
        } mm;
        dset           *set; /* count_distinct; NULL while empty */
        uint8_t        *hll; /* approx: registers; NULL while empty */
        struct agg_by  *by;  /* min_by, max_by; NULL while empty */
        agg_qvec       *qv;  /* median, quantile; NULL while empty */
        struct agg_kll *kll; /* approx_quantile; NULL while empty */
    } u;
} agg_state;

/*
 * One group, one arena block: its n_keys key values, its n_aggs states,
 * then the bytes of its string keys, so that a lookup of a short string
 * key touches one or two cache lines (group_keys, group_states). Its hash
 * is in its slot.
 */
typedef struct group group;

/* The key values of group 'g'. */
static inline sh_value *
group_keys(group *g)
{
    return (sh_value *)(void *)g;
}

typedef struct slot {
    uint64_t hash; /* the group's hash (valid when g != NULL) */
    group   *g;    /* NULL when empty */
} slot;

struct hashagg {
    size_t   *key_cols; /* input column of each key */
    size_t    n_keys;
    agg_def  *aggs; /* the aggregates */
    size_t    n_aggs;
    arena    *mem;         /* groups, key strings, min/max strings, HLL */
    size_t    arena_bytes; /* bytes taken from 'mem' since the last reset */
    size_t    set_bytes;   /* bytes of count_distinct sets */
    slot     *slots;       /* the table */
    size_t    cap;         /* slots, a power of two */
    group   **groups;      /* groups in insertion order */
    size_t    n_groups;
    size_t    groups_cap;
    sh_value *out;      /* the row being emitted */
    strbuf   *blobs;    /* one buffer per aggregate for state blobs */
    sh_value *keybuf;   /* the keys of the row being folded */
    int       queue_ok; /* every aggregate is count: rows may be
                           queued (hashagg_queue) */
    int queue_rows;     /* ... and counts rows (no column): every
                           queued row counts, qcount is not used */
    size_t    n_queued; /* rows queued, not folded yet */
    sh_value *qkeys;    /* HASHAGG_BATCH rows of n_keys key values;
                           a string's bytes are at qoff in qbytes
                           (its pointer is set by hashagg_flush) */
    size_t  *qoff;      /* offset in qbytes of each queued key */
    uint8_t *qcount;    /* HASHAGG_BATCH rows of n_aggs flags: 1 when
                           the row counts for the aggregate */
    uint64_t  *qhash;   /* table_hash of each queued row's keys */
    strbuf     qbytes;  /* bytes of the queued string keys */
    agg_qvec **qvecs;   /* every median/quantile state, in the order
                           made (a state's id is its index) */
    size_t             n_qvecs;
    size_t             qvecs_cap;
    size_t             quant_bytes; /* bytes of their value chunks */
    struct agg_qspill *qspill;      /* NULL, or the external sort their values
                                       go to (agg_qspill.c) */
    size_t qspill_bytes;            /* the most bytes that sort held */
};

/* The aggregate states of group 'g', after its keys. */
static inline agg_state *
group_states(const hashagg *h, group *g)
{
    return (agg_state *)(void *)((char *)g + h->n_keys * sizeof(sh_value));
}

/*
 * Are n bytes at 'a' and 'b' equal? Keys are mostly short: up to 16 bytes
 * take two overlapping loads from each, never past the n bytes, and no
 * call.
 */
static inline int
bytes_equal(const char *a, const char *b, size_t n)
{
    uint32_t x, y, x2, y2;
    uint64_t u, v, u2, v2;

    if (n > 16)
        return memcmp(a, b, n) == 0;
    if (n >= 8) {
        memcpy(&u, a, 8);
        memcpy(&v, b, 8);
        memcpy(&u2, a + n - 8, 8);
        memcpy(&v2, b + n - 8, 8);
        return ((u ^ v) | (u2 ^ v2)) == 0;
    }
    if (n >= 4) {
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        memcpy(&x2, a + n - 4, 4);
        memcpy(&y2, b + n - 4, 4);
        return ((x ^ y) | (x2 ^ y2)) == 0;
    }
    if (n == 0)
        return 1;
    /* 1 to 3 bytes: the first, middle and last cover them all */
    return a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1];
}

/* Equal as keys: same type and value (floats as value_cmp_double). */
static inline int
values_equal(const sh_value *a, const sh_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case SH_NULL:
        return 1;
    case SH_INT:
    case SH_DATE:
    case SH_TIMESTAMP:
        return a->u.i == b->u.i;
    case SH_FLOAT:
        return value_cmp_double(a->u.f, b->u.f) == 0;
    case SH_BOOL:
        return a->u.b == b->u.b;
    case SH_STRING:
        return a->u.s.len == b->u.s.len
               && bytes_equal(a->u.s.ptr, b->u.s.ptr, a->u.s.len);
    }
    return 0;
}

/* Arena allocation that keeps the byte count. */
static inline void *
agg_alloc(hashagg *h, size_t size_bytes)
{
    h->arena_bytes += (size_bytes + 15) & ~(size_t)15;
    return arena_alloc(h->mem, size_bytes);
}

/* ---- the hash table (agg_table.c) -------------------------------------- */

/* A hash of 'v' by type and value, consistent with values_equal: -0 and 0,
 * and all NaNs, hash alike. */
uint64_t agg_value_hash(const sh_value *v, uint64_t seed);

/* The group with keys 'keys' (borrowed), made if it does not exist. */
group *agg_find_group(hashagg *h, const sh_value *keys);

/* Empties the table, keeping its slot array and arena memory. */
void agg_reset_table(hashagg *h);

/* Gives back the slot array, group vector and quantile state vector of an
 * empty table. */
void agg_shrink_table(hashagg *h);

/* ---- HyperLogLog (agg_hll.c) --------------------------------------------- */

/* The HyperLogLog estimate of registers 'regs' (NULL: 0). */
int64_t agg_hll_estimate(const uint8_t *regs);

/* Merges HLL_REGS registers 'src' into those of 'st' (made, zeroed, on
 * first use): the larger of each pair. */
void agg_hll_merge(hashagg *h, agg_state *st, const uint8_t *src);

/* Adds non-null 'v' to the HyperLogLog of 'st' (made on first use). */
void agg_hll_add(hashagg *h, agg_state *st, const sh_value *v);

/* ---- min_by, max_by, median, quantile (agg_quant.c) -------------------- */

/* 1 when agg_quant.c handles aggregate 'fn'. */
static inline int
agg_is_quant(agg_fn fn)
{
    return fn == AGG_MIN_BY || fn == AGG_MAX_BY || fn == AGG_MEDIAN
           || fn == AGG_QUANTILE || fn == AGG_APPROX_QUANTILE;
}

/*
 * DuckDB's quantile_cont of 'n' (> 0) sorted values at 'q': h = (n - 1) q,
 * d = h - floor h, x[floor h] (1 - d) + x[floor h + 1] d, or x[floor h]
 * when d is 0, in DuckDB's order of operations for doubles, so the bits
 * are its bits. It reads the value at rank agg_cont_rank and, when
 * agg_cont_needs_next, the one after; agg_cont_value then gives the answer
 * from them, the same arithmetic in memory (agg_quantile_cont) and out of
 * core (agg_qspill.c).
 */
static inline size_t
agg_cont_rank(size_t n, double q)
{
    double fl = floor((double)(n - 1) * q);

    return fl >= (double)(n - 1) ? n - 1 : (size_t)fl;
}

static inline int
agg_cont_needs_next(size_t n, double q)
{
    double h = (double)(n - 1) * q;

    return agg_cont_rank(n, q) < n - 1 && h != floor(h);
}

/* 'lo' is the value at agg_cont_rank, 'hi' the next one (read only when
 * agg_cont_needs_next). */
static inline double
agg_cont_value(size_t n, double q, double lo, double hi)
{
    double h = (double)(n - 1) * q, d = h - floor(h);

    if (!agg_cont_needs_next(n, q))
        return lo;
    return lo * (1.0 - d) + hi * d;
}

/* ---- exact quantiles out of core (agg_qspill.c) ------------------------- */

/* Values the sort takes or gives back between two calls of its tick
 * function. */
#define AGG_QSPILL_TICK 65536

/* Called every AGG_QSPILL_TICK values while quantile values are sorted
 * out of core, so that a long sort is noticed (a lease renewed, a cancel
 * seen). Returns 0 to go on, or an error code with 'err' filled. */
typedef int (*agg_qspill_tick_fn)(void *ctx, sh_err *err);

/*
 * From now on, the values of the table's median/quantile states are sorted
 * out of core: those held go to an external sort (runs
 * "<prefix>.r<N>", holding at most 'mem_bytes') as rows (state id,
 * value), and so do those folded or merged after (agg_qspill_push). The
 * states keep their counts. 'tick' (not NULL) gets 'ctx'. Returns 0,
 * SH_EIO or the error of 'tick'.
 */
int agg_qspill_start(hashagg *h, size_t mem_bytes, const char *prefix,
                     agg_qspill_tick_fn tick, void *ctx, sh_err *err);

/* Sorts value 'x' of state 'q' out of core. Returns 0, SH_EIO or the
 * error of the tick function. */
int agg_qspill_push(hashagg *h, agg_qvec *q, double x, sh_err *err);

/*
 * Merges the sorted runs and sets each state's answer (done, result) from
 * its values at the ranks quantile_cont reads; adds the bytes of the runs
 * (the final ones, after sorter_finish) to '*run_bytes'. Returns 0,
 * SH_EIO, SH_EDATA (a state whose count does not match its sorted
 * values) or the error of the tick function.
 */
int agg_qspill_finish(hashagg *h, uint64_t *run_bytes, sh_err *err);

/* Ends sorting out of core: frees the sort and removes its run files
 * (whatever happened before). No-op when none was started. */
void agg_qspill_end(hashagg *h);

/* ---- approx_quantile: a KLL sketch (agg_sketch.c) ------------------------ */

#define AGG_KLL_K 200

/* Adds 'x' to the sketch of 'st' (made on first use). */
void agg_kll_add(hashagg *h, agg_state *st, double x);

/* Merges a serialized sketch into that of 'st'. Returns 0 or -1 (it does
 * not decode). */
int agg_kll_merge(hashagg *h, agg_state *st, const char *p, size_t len);

/* Appends the serialized sketch of 'st' to 'sb'; returns sb->len, 0 for
 * an empty sketch (nothing appended). */
size_t agg_kll_serialize(const agg_state *st, strbuf *sb);

/* The approximate 'q' quantile of the sketch of 'st' (not empty). */
double agg_kll_quantile(const agg_state *st, double q);

/* The number of values the sketch of 'st' has seen. */
int64_t agg_kll_count(const agg_state *st);

/* Folds input row 'row' (borrowed) into state 'st' of aggregate 'a'.
 * Returns 0 or SH_EDATA (a value of the wrong type). */
int agg_quant_fold(hashagg *h, const agg_def *a, agg_state *st,
                   const sh_value *row, sh_err *err);

/* Merges partial state 'v' (from agg_quant_partial). Returns 0 or
 * SH_EDATA (a state that does not decode). */
int agg_quant_merge(hashagg *h, const agg_def *a, agg_state *st,
                    const sh_value *v, sh_err *err);

/* The partial form of 'st', its bytes in 'sb' (borrowed until the next
 * call with 'sb'). */
sh_value agg_quant_partial(const agg_def *a, const agg_state *st, strbuf *sb);

/* The final result of 'st'; a string's bytes are the state's (borrowed
 * until the table is reset). */
sh_value agg_quant_final(const agg_def *a, const agg_state *st);

#endif
