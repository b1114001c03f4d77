/*
 * agg.c - aggregate functions and hash aggregation with partial states.
 *
 * The table is open addressing with linear probing over slots that hold a
 * group's full hash (str_hash for a single string key, else keys_hash) and
 * a pointer to it; groups also sit in a vector in insertion order, which is
 * the order they are drained in. A group is one arena block: its keys, one
 * state per aggregate and the bytes of its string keys, so a short key and
 * its count share one or two cache lines. Folding a row allocates nothing
 * unless it makes a new group, a new distinct value, a longer min/max
 * string or a first HyperLogLog register array; draining resets the arena
 * and keeps its memory for the next batch.
 *
 * A table of counts only (W2's word count, distinct) may take its rows in
 * batches (hashagg_queue, hashagg_flush): a batch's keys are hashed as they
 * come and their slots prefetched, and each group is prefetched some rows
 * before it is folded, so that the cache misses of a table larger than the
 * caches overlap. Counts cannot fail, so a batch changes no error.
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

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rowfile.h"
#include "../lib/util.h"

#define HLL_BITS      14
#define HLL_REGS      (1u << HLL_BITS)
#define WELFORD_BYTES 32
#define ARENA_BLOCK   (64 * 1024)
/* Fan-out and depth of re-partitioning in hashagg_finalize_files. */
#define SPILL_FANOUT  16
#define SPILL_LEVELS  6

/* Seeds that keep the table's hash, HyperLogLog's hash and the buckets a
 * caller chooses with hashagg_key_hash independent of each other. */
#define SEED_TABLE    0x2f5a1c9e7b3d4e61ULL
#define SEED_VALUE    0x6a09e667f3bcc909ULL
#define SEED_HLL      0xbb67ae8584caa73bULL
#define SEED_SPILL    0x3c6ef372fe94f82bULL

/* A set of distinct non-null values (count_distinct); open addressing. */
typedef struct dset {
    size_t    cap;    /* slots, a power of two (0 before the first add) */
    size_t    n;      /* values held */
    uint64_t *hashes; /* hash of each slot's value */
    sh_value *vals;   /* the values; type SH_NULL marks an empty slot */
} dset;

/* The running state of one aggregate of one group. */
typedef struct agg_state {
    union {
        int64_t n;               /* count */
        struct {
            int      has;        /* a non-null value was added */
            int64_t  hi;         /* sum of an int column, 128 bits, */
            uint64_t lo;         /* so order never decides an overflow */
            double   f;          /* sum of a float column */
        } sum;
        struct {
            int64_t n;           /* values folded */
            double  shift;       /* the first value, subtracted from all */
            double  mean;        /* mean of x - shift */
            double  m2;          /* sum of squared deviations from it */
        } w;
        struct {
            sh_value v;          /* current min or max; SH_NULL when none */
            size_t   cap;        /* bytes allocated for a string value */
        } mm;
        dset    *set;            /* count_distinct; NULL while empty */
        uint8_t *hll;            /* approx: registers; NULL while empty */
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
    uint64_t hash;    /* the group's hash (valid when g != NULL) */
    group   *g;       /* NULL when empty */
} slot;

struct hashagg {
    size_t   *key_cols;    /* input column of each key */
    size_t    n_keys;
    agg_def  *aggs;        /* the aggregates */
    size_t    n_aggs;
    arena    *mem;         /* groups, key strings, min/max strings, HLL */
    size_t    arena_bytes; /* bytes taken from 'mem' since the last reset */
    size_t    set_bytes;   /* bytes of count_distinct sets */
    slot     *slots;       /* the table */
    size_t    cap;         /* slots, a power of two */
    group   **groups;      /* groups in insertion order */
    size_t    n_groups;
    size_t    groups_cap;
    sh_value *out;         /* the row being emitted */
    strbuf   *blobs;       /* one buffer per aggregate for state blobs */
    sh_value *keybuf;      /* the keys of the row being folded */
    int       queue_ok;    /* every aggregate is count: rows may be
                              queued (hashagg_queue) */
    int       queue_rows;  /* ... and counts rows (no column): every
                              queued row counts, qcount is not used */
    size_t    n_queued;    /* rows queued, not folded yet */
    sh_value *qkeys;       /* HASHAGG_BATCH rows of n_keys key values;
                              a string's bytes are at qoff in qbytes
                              (its pointer is set by hashagg_flush) */
    size_t   *qoff;        /* offset in qbytes of each queued key */
    uint8_t  *qcount;      /* HASHAGG_BATCH rows of n_aggs flags: 1 when
                              the row counts for the aggregate */
    uint64_t *qhash;       /* table_hash of each queued row's keys */
    strbuf    qbytes;      /* bytes of the queued string keys */
};

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
        return in_type;
    }
    return SH_NULL;
}

/* ---- hashing ---------------------------------------------------------- */

/* A 64-bit hash of 'n' bytes under 'seed'. */
static uint64_t
hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    uint64_t w;

    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ util_mix64(w)) * 0x9fb21c651e98df25ULL;
        p += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ util_mix64(w ^ n)) * 0x9fb21c651e98df25ULL;
    return util_mix64(h);
}

/* A hash of 'v' by type and value, consistent with values_equal: -0 and 0,
 * and all NaNs, hash alike. */
static uint64_t
value_hash(const sh_value *v, uint64_t seed)
{
    uint64_t h = util_mix64(seed ^ ((uint64_t)v->type * 0x9e3779b97f4a7c15ULL));
    uint64_t bits;
    double   d;

    switch (v->type) {
    case SH_NULL:
        return h;
    case SH_INT:
        return util_mix64(h ^ util_mix64((uint64_t)v->u.i));
    case SH_FLOAT:
        d = v->u.f;
        if (d == 0)
            d = 0; /* -0 hashes as 0 */
        if (d != d)
            d = NAN;
        memcpy(&bits, &d, 8);
        return util_mix64(h ^ util_mix64(bits));
    case SH_BOOL:
        return util_mix64(h ^ (uint64_t)(v->u.b + 1));
    case SH_STRING:
        return hash_bytes(v->u.s.ptr, v->u.s.len, h);
    }
    return h;
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
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return 0;
    }
    return 1;
}

/* Copies n bytes, up to 16 with two overlapping moves and no call. */
static inline void
copy_bytes(char *dst, const char *src, size_t n)
{
    uint64_t u, u2;
    uint32_t x, x2;

    if (n > 16) {
        memcpy(dst, src, n);
    } else if (n >= 8) {
        memcpy(&u, src, 8);
        memcpy(&u2, src + n - 8, 8);
        memcpy(dst, &u, 8);
        memcpy(dst + n - 8, &u2, 8);
    } else if (n >= 4) {
        memcpy(&x, src, 4);
        memcpy(&x2, src + n - 4, 4);
        memcpy(dst, &x, 4);
        memcpy(dst + n - 4, &x2, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    }
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
        return a->u.i == b->u.i;
    case SH_FLOAT:
        return value_cmp_double(a->u.f, b->u.f) == 0;
    case SH_BOOL:
        return a->u.b == b->u.b;
    case SH_STRING:
        return a->u.s.len == b->u.s.len &&
               bytes_equal(a->u.s.ptr, b->u.s.ptr, a->u.s.len);
    }
    return 0;
}

/* The hash of 'n' key values under 'seed'. */
static uint64_t
keys_hash(const sh_value *keys, size_t n, uint64_t seed)
{
    uint64_t h = util_mix64(seed ^ 0x510e527fade682d1ULL);
    size_t   i;

    for (i = 0; i < n; i++)
        h = value_hash(&keys[i], h);
    return h;
}

/* 64x64 -> 128-bit multiply, folded: wyhash's mixing step. */
static inline uint64_t
mum(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t
load64(const char *p)
{
    uint64_t x;

    memcpy(&x, p, 8);
    return x;
}

static inline uint64_t
load32(const char *p)
{
    uint32_t x;

    memcpy(&x, p, 4);
    return x;
}

/*
 * A fast 64-bit hash of 'n' bytes under 'seed', after wyhash (public
 * domain): short strings, the usual keys, take two multiplies. Only the
 * table's slots use it (table_hash); the byte order of the host changes
 * its values, which never leave the process.
 */
static uint64_t
str_hash(const char *p, size_t n, uint64_t seed)
{
    const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
    uint64_t       a, b;

    seed ^= mum(seed ^ k0, k1);
    if (n <= 16) {
        if (n >= 4) {
            size_t m = (n >> 3) << 2;

            a = (load32(p) << 32) | load32(p + m);
            b = (load32(p + n - 4) << 32) | load32(p + n - 4 - m);
        } else if (n > 0) {
            const unsigned char *u = (const unsigned char *)p;

            a = ((uint64_t)u[0] << 16) | ((uint64_t)u[n >> 1] << 8)
                | u[n - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = n;

        while (i > 16) {
            seed = mum(load64(p) ^ k1, load64(p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = load64(p + i - 16);
        b = load64(p + i - 8);
    }
    return mum(k1 ^ n, mum(a ^ k1, b ^ seed));
}

/*
 * The hash of the slots: str_hash for a single string key (the common
 * case of word counts and string groupbys), keys_hash otherwise. Equal
 * keys hash alike, as values_equal needs.
 */
static inline uint64_t
table_hash(const hashagg *h, const sh_value *keys)
{
    if (h->n_keys == 1 && keys[0].type == SH_STRING)
        return str_hash(keys[0].u.s.ptr, keys[0].u.s.len, SEED_TABLE);
    return keys_hash(keys, h->n_keys, SEED_TABLE);
}

/* Hash of the first n_keys values of 'row' for choosing a bucket. */
uint64_t
hashagg_key_hash(const hashagg *h, const sh_value *row, uint64_t salt)
{
    return keys_hash(row, h->n_keys, salt);
}

/* ---- memory ----------------------------------------------------------- */

/* Arena allocation that keeps the byte count. */
static void *
agg_alloc(hashagg *h, size_t size_bytes)
{
    h->arena_bytes += (size_bytes + 15) & ~(size_t)15;
    return arena_alloc(h->mem, size_bytes);
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

/*
 * A new table of groups keyed by 'key_cols', computing 'aggs' (both
 * copied). Free it with hashagg_free.
 */
hashagg *
hashagg_new(const size_t *key_cols, size_t n_keys, const agg_def *aggs,
            size_t n_aggs)
{
    hashagg *h = xcalloc(1, sizeof *h);
    size_t   n_out = n_keys + n_aggs;

    h->key_cols = xmalloc((n_keys ? n_keys : 1) * sizeof *h->key_cols);
    if (n_keys)
        memcpy(h->key_cols, key_cols, n_keys * sizeof *key_cols);
    h->n_keys = n_keys;
    h->aggs = xmalloc((n_aggs ? n_aggs : 1) * sizeof *h->aggs);
    if (n_aggs)
        memcpy(h->aggs, aggs, n_aggs * sizeof *aggs);
    h->n_aggs = n_aggs;
    h->mem = arena_new(ARENA_BLOCK);
    h->cap = 16;
    h->slots = xcalloc(h->cap, sizeof *h->slots);
    h->out = xcalloc(n_out ? n_out : 1, sizeof *h->out);
    h->blobs = xcalloc(n_aggs ? n_aggs : 1, sizeof *h->blobs);
    h->keybuf = xcalloc(n_keys ? n_keys : 1, sizeof *h->keybuf);
    h->queue_ok = h->queue_rows = 1;
    for (size_t i = 0; i < n_aggs; i++) {
        if (aggs[i].fn != AGG_COUNT)
            h->queue_ok = 0;
        if (aggs[i].col >= 0)
            h->queue_rows = 0;
    }
    if (h->queue_ok) {
        h->qkeys = xcalloc(HASHAGG_BATCH * (n_keys ? n_keys : 1),
                           sizeof *h->qkeys);
        h->qoff = xcalloc(HASHAGG_BATCH * (n_keys ? n_keys : 1),
                          sizeof *h->qoff);
        h->qcount = xcalloc(HASHAGG_BATCH * (n_aggs ? n_aggs : 1), 1);
        h->qhash = xcalloc(HASHAGG_BATCH, sizeof *h->qhash);
    }
    return h;
}

/* Bytes held by the table: arena, slots, group vector, sets and the
 * buffer of queued keys. */
size_t
hashagg_bytes(const hashagg *h)
{
    return h->arena_bytes + h->set_bytes + h->cap * sizeof(slot) +
           h->groups_cap * sizeof(group *) + h->qbytes.cap;
}

/* Number of groups held. */
size_t
hashagg_groups(const hashagg *h)
{
    return h->n_groups;
}

/* Values in a partial row. */
size_t
hashagg_partial_cols(const hashagg *h)
{
    return h->n_keys + h->n_aggs;
}

/* Values in a final row. */
size_t
hashagg_final_cols(const hashagg *h)
{
    return h->n_keys + h->n_aggs;
}

/* Doubles the slot array and re-inserts every group. */
static void
grow_table(hashagg *h)
{
    size_t cap = h->cap * 2;
    slot  *slots = xcalloc(cap, sizeof *slots);
    size_t i;

    for (i = 0; i < h->cap; i++) {
        size_t j;

        if (h->slots[i].g == NULL)
            continue;
        j = h->slots[i].hash & (cap - 1);
        while (slots[j].g != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = h->slots[i];
    }
    free(h->slots);
    h->slots = slots;
    h->cap = cap;
}

/* Are the n_keys values at 'a' and 'b' equal as keys? A string key, the
 * common case, is compared without a call. */
static inline int
keys_equal(const hashagg *h, const sh_value *a, const sh_value *b)
{
    size_t i;

    if (h->n_keys == 1 && a->type == SH_STRING && b->type == SH_STRING)
        return a->u.s.len == b->u.s.len
               && bytes_equal(a->u.s.ptr, b->u.s.ptr, a->u.s.len);
    for (i = 0; i < h->n_keys; i++) {
        if (!values_equal(&a[i], &b[i]))
            return 0;
    }
    return 1;
}

/* The aggregate states of group 'g', after its keys. */
static inline agg_state *
group_states(const hashagg *h, group *g)
{
    return (agg_state *)(void *)((char *)g + h->n_keys * sizeof(sh_value));
}

/* Sets the initial state of every aggregate of 'g'. */
static void
init_states(hashagg *h, group *g)
{
    agg_state *st = group_states(h, g);
    size_t     i;

    memset(st, 0, h->n_aggs * sizeof *st);
    for (i = 0; i < h->n_aggs; i++) {
        if (h->aggs[i].fn == AGG_MIN || h->aggs[i].fn == AGG_MAX)
            st[i].u.mm.v = sh_null();
    }
}

/*
 * Makes the group of 'keys' (borrowed; table_hash 'hash') in empty slot
 * 'j': one block with its keys, states and string bytes. Kept out of line
 * so that the probe of find_group_hashed stays small.
 */
__attribute__((noinline)) static group *
new_group(hashagg *h, const sh_value *keys, uint64_t hash, size_t j)
{
    size_t    head = h->n_keys * sizeof(sh_value)
                  + h->n_aggs * sizeof(agg_state);
    size_t    i, str_bytes = 0;
    group    *g;
    sh_value *gk;
    char     *p;

    for (i = 0; i < h->n_keys; i++) {
        if (keys[i].type == SH_STRING)
            str_bytes += keys[i].u.s.len;
    }
    g = agg_alloc(h, head + (str_bytes ? str_bytes : 1));
    gk = group_keys(g);
    p = (char *)g + head;
    for (i = 0; i < h->n_keys; i++) {
        gk[i] = keys[i];
        if (keys[i].type == SH_STRING) {
            if (keys[i].u.s.len)
                memcpy(p, keys[i].u.s.ptr, keys[i].u.s.len);
            gk[i].u.s.ptr = p;
            p += keys[i].u.s.len;
        }
    }
    init_states(h, g);

    h->slots[j].hash = hash;
    h->slots[j].g = g;
    if (h->n_groups == h->groups_cap) {
        h->groups_cap = h->groups_cap ? h->groups_cap * 2 : 64;
        h->groups = xrealloc(h->groups, h->groups_cap * sizeof *h->groups);
    }
    h->groups[h->n_groups++] = g;
    if (h->n_groups * 10 > h->cap * 7)
        grow_table(h);
    return g;
}

/* The group with keys 'keys' (borrowed) and table_hash 'hash', made if it
 * does not exist. */
static inline group *
find_group_hashed(hashagg *h, const sh_value *keys, uint64_t hash)
{
    size_t j = hash & (h->cap - 1);

    for (;;) {
        const slot *s = &h->slots[j];

        if (s->g == NULL)
            return new_group(h, keys, hash, j);
        if (s->hash == hash && keys_equal(h, group_keys(s->g), keys))
            return s->g;
        j = (j + 1) & (h->cap - 1);
    }
}

/* The group with keys 'keys' (borrowed), made if it does not exist. */
static group *
find_group(hashagg *h, const sh_value *keys)
{
    return find_group_hashed(h, keys, table_hash(h, keys));
}

/* ---- states ----------------------------------------------------------- */

/* Adds non-null 'v' to the distinct set '*setp' (made on first use). */
static void
dset_add(hashagg *h, dset **setp, const sh_value *v)
{
    dset    *s = *setp;
    uint64_t hash = value_hash(v, SEED_VALUE);
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

/* Adds non-null 'v' to a HyperLogLog. */
static void
hll_add(hashagg *h, agg_state *st, const sh_value *v)
{
    uint8_t *regs = hll_regs(h, st);
    uint64_t x = value_hash(v, SEED_HLL);
    size_t   idx = (size_t)(x >> (64 - HLL_BITS));
    uint64_t w = (x << HLL_BITS) | ((uint64_t)1 << (HLL_BITS - 1));
    uint8_t  rank = (uint8_t)(__builtin_clzll(w) + 1);

    if (regs[idx] < rank)
        regs[idx] = rank;
}

/* The HyperLogLog estimate (with linear counting for small ranges). */
static int64_t
hll_estimate(const uint8_t *regs)
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
    if (st->u.mm.v.type == SH_NULL ||
        sign * value_cmp(v, &st->u.mm.v) > 0)
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
    sum_set(st, sum_get(st) +
                    (__int128)(((unsigned __int128)(uint64_t)hi << 64) | lo));
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
        hll_add(h, st, v);
        break;
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
    group *g;
    size_t i;
    int    rc;

    assert(h->n_queued == 0);
    for (i = 0; i < h->n_keys; i++)
        h->keybuf[i] = row[h->key_cols[i]];
    g = find_group(h, h->keybuf);
    for (i = 0; i < h->n_aggs; i++) {
        const agg_def  *a = &h->aggs[i];
        const sh_value *v = a->col >= 0 ? &row[a->col] : &null_value;

        rc = fold_value(h, a, &group_states(h, g)[i], v, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* 1 when rows may be queued: every aggregate is count (or none is). */
int
hashagg_can_queue(const hashagg *h)
{
    return h->queue_ok;
}

/*
 * Queues one input row (borrowed for the call): its keys, string bytes
 * copied, and whether it counts for each aggregate. The keys are hashed
 * now, while their bytes are in the cache, and the slot where their probe
 * starts is prefetched for hashagg_flush. Returns the number of rows
 * queued; the caller flushes at HASHAGG_BATCH.
 */
size_t
hashagg_queue(hashagg *h, const sh_value *row)
{
    size_t    k = h->n_queued, nk = h->n_keys, i;
    sh_value *keys = &h->qkeys[k * nk];
    uint8_t  *cnt = &h->qcount[k * h->n_aggs];
    uint64_t  hash;

    assert(h->queue_ok && k < HASHAGG_BATCH);
    for (i = 0; i < nk; i++)
        keys[i] = row[h->key_cols[i]];
    hash = table_hash(h, keys);
    h->qhash[k] = hash;
    __builtin_prefetch(&h->slots[hash & (h->cap - 1)]);
    for (i = 0; i < nk; i++) {
        size_t len = keys[i].u.s.len;
        char  *dst;

        if (keys[i].type != SH_STRING)
            continue;
        /* room for the bytes and a NUL, as sb_reserve keeps */
        if (h->qbytes.cap - h->qbytes.len <= len)
            sb_reserve(&h->qbytes, len);
        dst = h->qbytes.data + h->qbytes.len;
        copy_bytes(dst, keys[i].u.s.ptr, len);
        h->qoff[k * nk + i] = h->qbytes.len;
        h->qbytes.len += len;
        dst[len] = '\0';
        keys[i].u.s.ptr = NULL; /* set by hashagg_flush */
    }
    for (i = 0; !h->queue_rows && i < h->n_aggs; i++) {
        long col = h->aggs[i].col;

        cnt[i] = col < 0 || row[col].type != SH_NULL;
    }
    return ++h->n_queued;
}

/*
 * At most what folding the queued rows adds to hashagg_bytes, slot and
 * vector doublings aside: a new group per row (its block, rounded up by
 * the arena, and its place in the group vector) with the row's key bytes.
 */
size_t
hashagg_queued_bytes(const hashagg *h)
{
    size_t head = h->n_keys * sizeof(sh_value)
                  + h->n_aggs * sizeof(agg_state);

    return h->n_queued * (head + 16 + sizeof(group *)) + h->qbytes.len;
}

/*
 * Prefetches the group in the slot where 'hv' starts probing in table
 * 'tab': its keys, states and the first bytes of a string key, which
 * take one or two cache lines. A macro: GCC drops a function whose only
 * effect is a prefetch.
 */
#define PREFETCH_GROUP(tab, hv)                                  \
    do {                                                         \
        const slot *s_ = &(tab)->slots[(hv) & ((tab)->cap - 1)]; \
                                                                 \
        if (s_->g != NULL && s_->hash == (hv)) {                 \
            const char *g_ = (const char *)s_->g;                \
                                                                 \
            __builtin_prefetch(g_);                              \
            __builtin_prefetch(g_ + 63);                         \
        }                                                        \
    } while (0)

/* How many rows ahead hashagg_flush prefetches groups. */
#define PREFETCH_AHEAD 32

/*
 * Folds every queued row into its group. The slots were prefetched as the
 * rows were queued; each row's group is prefetched PREFETCH_AHEAD rows
 * before it is folded, so the cache misses of a table larger than the
 * caches overlap instead of following each other. Returns 0: counts
 * cannot fail.
 */
int
hashagg_flush(hashagg *h, sh_err *err)
{
    size_t n = h->n_queued, nk = h->n_keys, r, i;

    (void)err;
    if (n == 0)
        return 0;
    for (r = 0; r < PREFETCH_AHEAD && r < n; r++)
        PREFETCH_GROUP(h, h->qhash[r]);
    for (r = 0; r < n; r++) {
        const uint8_t *cnt = &h->qcount[r * h->n_aggs];
        sh_value      *keys = &h->qkeys[r * nk];
        agg_state     *st;

        if (r + PREFETCH_AHEAD < n)
            PREFETCH_GROUP(h, h->qhash[r + PREFETCH_AHEAD]);
        for (i = 0; i < nk; i++) {
            if (keys[i].type == SH_STRING)
                keys[i].u.s.ptr = h->qbytes.data + h->qoff[r * nk + i];
        }
        st = group_states(h, find_group_hashed(h, keys, h->qhash[r]));
        if (h->queue_rows) {
            for (i = 0; i < h->n_aggs; i++)
                st[i].u.n++;
        } else {
            for (i = 0; i < h->n_aggs; i++)
                st[i].u.n += cnt[i];
        }
    }
    h->n_queued = 0;
    sb_reset(&h->qbytes);
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
merge_set(hashagg *h, const agg_def *a, agg_state *st, const char *p,
          size_t n, sh_err *err)
{
    const char *end = p + n;

    while (p < end) {
        sh_value v;
        uint32_t len;
        int      tag = (unsigned char)*p++;

        switch (tag) {
        case SH_INT:
        case SH_FLOAT:
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
    size_t      i;

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
            if (v->type != SH_INT
                && (v->type != SH_STRING || v->u.s.len != 16))
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
        {
            uint8_t       *regs = hll_regs(h, st);
            const uint8_t *src = (const uint8_t *)v->u.s.ptr;

            for (i = 0; i < HLL_REGS; i++) {
                if (regs[i] < src[i])
                    regs[i] = src[i];
            }
        }
        break;
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
    st = group_states(h, find_group(h, partial));
    for (i = 0; i < h->n_aggs; i++) {
        rc = merge_state(h, &h->aggs[i], &st[i], &partial[h->n_keys + i],
                         err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- draining --------------------------------------------------------- */

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
            if (v->type == SH_INT || v->type == SH_FLOAT) {
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
        return st->u.w.n ? sh_float(st->u.w.shift + st->u.w.mean)
                         : sh_null();
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
        return sh_int(hll_estimate(st->u.hll));
    }
    return sh_null();
}

/* Empties the table, keeping its slot array and arena memory. */
static void
reset_table(hashagg *h)
{
    size_t i, j;

    for (i = 0; i < h->n_groups; i++) {
        for (j = 0; j < h->n_aggs; j++) {
            dset *s;

            if (h->aggs[j].fn != AGG_COUNT_DISTINCT)
                continue;
            s = group_states(h, h->groups[i])[j].u.set;
            if (s != NULL) {
                free(s->hashes);
                free(s->vals);
            }
        }
    }
    memset(h->slots, 0, h->cap * sizeof *h->slots);
    h->n_groups = 0;
    h->set_bytes = 0;
    arena_reset(h->mem);
    h->arena_bytes = 0;
}

/*
 * Gives back the slot array and the group vector of an empty table, so
 * that what it holds (hashagg_bytes) starts again from nearly nothing: a
 * level of re-partitioning must not inherit the size the level before
 * grew to, or every later table would start over its budget and spill
 * down to SPILL_LEVELS.
 */
static void
shrink_table(hashagg *h)
{
    if (h->cap > 16) {
        free(h->slots);
        h->cap = 16;
        h->slots = xcalloc(h->cap, sizeof *h->slots);
    }
    free(h->groups);
    h->groups = NULL;
    h->groups_cap = 0;
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
            h->out[h->n_keys + j] =
                final ? final_value(&h->aggs[j], &st[j])
                      : partial_value(h, &h->aggs[j], &st[j], &h->blobs[j]);
        }
        rc = emit(ctx, h->out, err);
    }
    reset_table(h);
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

/* ---- out of core ------------------------------------------------------ */

/* The state of one hashagg_finalize_files call, shared by its levels. */
typedef struct finalize {
    hashagg               *h;
    size_t                 mem_bytes; /* the table's budget */
    const char            *prefix;    /* of the spill files */
    long                   section;   /* of the level-0 files; -1: whole */
    agg_emit_fn            emit;
    agg_tick_fn            tick;      /* may be NULL */
    void                  *ctx;       /* for emit and tick */
    hashagg_finalize_stats st;        /* spill_bytes: closed files only */
    rowfile_writer *const *open_w;    /* the level's spill writers while
                                         they are open, else NULL */
    uint64_t               since_tick; /* rows read since the last tick */
} finalize;

/* Where partial rows go while a level re-partitions. */
typedef struct spill {
    const hashagg   *h;
    rowfile_writer **w;     /* SPILL_FANOUT writers */
    uint64_t         salt;  /* this level's hash salt */
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

/* Counts one row read; every HASHAGG_TICK_ROWS rows calls the tick
 * function. Returns 0 or its error. */
static int
count_row(finalize *f, sh_err *err)
{
    hashagg_finalize_stats st;
    int                    rc;

    if (++f->since_tick < HASHAGG_TICK_ROWS || f->tick == NULL)
        return 0;
    f->since_tick = 0;
    note_peak(f);
    st = stats_now(f);
    rc = f->tick(f->ctx, &st, err);
    if (rc != 0 && err != NULL && err->code == 0)
        err->code = rc;
    return rc;
}

/* Finishes 'paths' at re-partitioning depth 'level'. */
static int
finalize_level(finalize *f, const char *const *paths, size_t n,
               unsigned level, sh_err *err)
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
    shrink_table(h);
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
                            paths[i], rowfile_cols(r),
                            hashagg_partial_cols(h));
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
            if (hashagg_bytes(h) > f->mem_bytes && level < SPILL_LEVELS &&
                hashagg_groups(h) > 1) {
                size_t k;

                note_peak(f);
                for (k = 0; k < SPILL_FANOUT; k++) {
                    names[k] = xasprintf("%s.%u.%zu", f->prefix, level, k);
                    w[k] = rowfile_create_scratch(
                        names[k], hashagg_partial_cols(h), err);
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
        unlink(names[i]);
        free(names[i]);
        names[i] = NULL;
    }

done:
    rowfile_free(r);
    if (rc != 0)
        reset_table(h);
    for (i = 0; i < SPILL_FANOUT; i++) {
        if (w[i] != NULL) {
            f->st.spill_bytes += rowfile_bytes(w[i]);
            rowfile_abort(w[i]);
        } else if (names[i] != NULL) {
            unlink(names[i]);
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
 * in memory. Returns 0, SH_EIO, SH_EDATA, SH_ERANGE or the first error of
 * 'emit' or 'tick'; 'h' is left empty and '*st' (may be NULL) filled in
 * every case.
 */
int
hashagg_finalize_files(hashagg *h, const char *const *paths, size_t n,
                       long section, size_t mem_bytes,
                       const char *spill_prefix, agg_emit_fn emit,
                       agg_tick_fn tick, void *ctx,
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

/* Frees 'h' and everything it holds (NULL is fine). */
void
hashagg_free(hashagg *h)
{
    size_t i;

    if (h == NULL)
        return;
    reset_table(h);
    for (i = 0; i < h->n_aggs; i++)
        sb_free(&h->blobs[i]);
    arena_free(h->mem);
    free(h->slots);
    free(h->groups);
    free(h->out);
    free(h->blobs);
    free(h->keybuf);
    free(h->qkeys);
    free(h->qoff);
    free(h->qcount);
    free(h->qhash);
    sb_free(&h->qbytes);
    free(h->key_cols);
    free(h->aggs);
    free(h);
}
