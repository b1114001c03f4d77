/*
 * agg_table.c - the hash table of aggregation's groups: hashing keys,
 * finding or making a group, folding queued batches of count-only rows
 * with prefetching, emptying and freeing the table.
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
 * caches overlap. Counts cannot fail, so a batch changes no error. A
 * table that counts rows by one string key takes a tokenize's tokens as
 * spans of its text (hashagg_count_strs): hashed 64 at a time, slots
 * prefetched, and no bytes copied but a new group's.
 */
#include "agg.h"
#include "agg_int.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
uint64_t
agg_value_hash(const sh_value *v, uint64_t seed)
{
    uint64_t h = util_mix64(seed ^ ((uint64_t)v->type * 0x9e3779b97f4a7c15ULL));
    uint64_t bits;
    double   d;

    switch (v->type) {
    case SH_NULL:
        return h;
    case SH_INT:
        return util_mix64(h ^ util_mix64((uint64_t)v->u.i));
    case SH_DATE:
    case SH_TIMESTAMP:
        return util_mix64(h ^ util_mix64((uint64_t)v->u.i ^ v->type));
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

/* The hash of 'n' key values under 'seed'. */
static uint64_t
keys_hash(const sh_value *keys, size_t n, uint64_t seed)
{
    uint64_t h = util_mix64(seed ^ 0x510e527fade682d1ULL);
    size_t   i;

    for (i = 0; i < n; i++)
        h = agg_value_hash(&keys[i], h);
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

            a = ((uint64_t)u[0] << 16) | ((uint64_t)u[n >> 1] << 8) | u[n - 1];
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

/* Bytes held by the table: arena, slots, group vector, sets, quantile
 * values (and the most their external sort held), and the buffer of
 * queued keys. */
size_t
hashagg_bytes(const hashagg *h)
{
    return h->arena_bytes + h->set_bytes + h->cap * sizeof(slot)
           + h->groups_cap * sizeof(group *) + h->qbytes.cap + h->quant_bytes
           + h->qvecs_cap * sizeof(agg_qvec *) + h->qspill_bytes;
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
    size_t head = h->n_keys * sizeof(sh_value) + h->n_aggs * sizeof(agg_state);
    size_t i, str_bytes = 0;
    group *g;
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
group *
agg_find_group(hashagg *h, const sh_value *keys)
{
    return find_group_hashed(h, keys, table_hash(h, keys));
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
    size_t head = h->n_keys * sizeof(sh_value) + h->n_aggs * sizeof(agg_state);

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

/* 1 when the table counts rows by one key and nothing else. */
int
hashagg_counts_key(const hashagg *h, size_t *col)
{
    if (h->n_keys != 1 || !h->queue_ok || !h->queue_rows)
        return 0;
    *col = h->key_cols[0];
    return 1;
}

/* How many spans hashagg_count_strs hashes ahead of its probes. */
#define COUNT_AHEAD 64

/*
 * Folds the spans 'sp' of 'base' as string keys of a table of counts (see
 * agg.h). Up to COUNT_AHEAD spans are hashed at a time and their slots
 * prefetched, then each is looked up with no copy of its bytes: a new
 * group copies them (new_group). Stops after a new group that takes the
 * table past 'limit'.
 */
size_t
hashagg_count_strs(hashagg *h, const char *base, const text_span *sp, size_t n,
                   size_t limit)
{
    uint64_t hv[COUNT_AHEAD];
    size_t   done = 0, m, r, i;

    assert(h->n_queued == 0 && h->n_keys == 1 && h->queue_rows);
    while (done < n) {
        m = n - done < COUNT_AHEAD ? n - done : COUNT_AHEAD;
        for (r = 0; r < m; r++) {
            const text_span *t = &sp[done + r];

            hv[r] = str_hash(base + t->start, t->len, SEED_TABLE);
            __builtin_prefetch(&h->slots[hv[r] & (h->cap - 1)]);
        }
        for (r = 0; r < m; r++) {
            const char *p = base + sp[done + r].start;
            size_t      len = sp[done + r].len, j = hv[r] & (h->cap - 1);
            agg_state  *st;
            group      *g;

            for (;;) {
                const slot     *s = &h->slots[j];
                const sh_value *k;

                if (s->g == NULL) {
                    sh_value key = sh_str(p, len);

                    g = new_group(h, &key, hv[r], j);
                    if (hashagg_bytes(h) > limit) {
                        for (i = 0; i < h->n_aggs; i++)
                            group_states(h, g)[i].u.n++;
                        return done + r + 1;
                    }
                    break;
                }
                k = group_keys(s->g);
                if (s->hash == hv[r] && k->type == SH_STRING
                    && k->u.s.len == len && bytes_equal(k->u.s.ptr, p, len)) {
                    g = s->g;
                    break;
                }
                j = (j + 1) & (h->cap - 1);
            }
            st = group_states(h, g);
            for (i = 0; i < h->n_aggs; i++)
                st[i].u.n++;
        }
        done += m;
    }
    return n;
}

/* Empties the table, keeping its slot array and arena memory. */
void
agg_reset_table(hashagg *h)
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
    for (i = 0; i < h->n_qvecs; i++) {
        qchunk *c = h->qvecs[i]->head, *next;

        for (; c != NULL; c = next) {
            next = c->next;
            free(c);
        }
    }
    h->n_qvecs = 0;
    h->quant_bytes = 0;
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
void
agg_shrink_table(hashagg *h)
{
    if (h->cap > 16) {
        free(h->slots);
        h->cap = 16;
        h->slots = xcalloc(h->cap, sizeof *h->slots);
    }
    free(h->groups);
    h->groups = NULL;
    h->groups_cap = 0;
    free(h->qvecs);
    h->qvecs = NULL;
    h->qvecs_cap = 0;
}

/* Frees 'h' and everything it holds (NULL is fine). */
void
hashagg_free(hashagg *h)
{
    size_t i;

    if (h == NULL)
        return;
    agg_reset_table(h);
    for (i = 0; i < h->n_aggs; i++)
        sb_free(&h->blobs[i]);
    arena_free(h->mem);
    free(h->slots);
    free(h->groups);
    free(h->qvecs);
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
