/*
 * exec_join.c - the broadcast side of a join: every row of the 'with'
 * input, read once per task into a hash table on its key columns, probed
 * with the key values of each row of the stream.
 *
 * Keys match when every key value is equal (value_cmp's equality: ints and
 * floats compare as numbers, strings by bytes); a null key never matches,
 * so side rows with a null key are not kept. Side rows with equal keys are
 * kept in input order in a chain, so a probe yields them in that order.
 * Values are copied into an arena; the table's bytes are counted, and a
 * side larger than the memory budget is refused.
 *
 * For a right or full join the table also keeps the side rows with a
 * null key (in no chain: they never match) and a byte per row, set when a
 * probe matched it, so that the rows no probe matched are emitted at the
 * end of the task (exec_join_unmatched).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "input.h"

/* One side row: its keys then its kept values, in the arena. */
typedef struct jrow {
    sh_value *vals; /* n_keys + n_keep values */
    long      next; /* the next row with the same keys, or -1 */
} jrow;

/* One distinct key: a slot of the open-addressing table. */
typedef struct jslot {
    uint64_t hash;
    long     first; /* first row with these keys, or -1 (empty slot) */
    long     last;  /* last row of the chain */
} jslot;

struct exec_join {
    arena         *mem;         /* values and strings */
    size_t         arena_bytes; /* bytes taken from 'mem' */
    size_t         n_keys;
    size_t         n_keep;
    jrow          *rows;
    size_t         n_rows;
    size_t         rows_cap;
    jslot         *slots;
    size_t         cap;     /* slots, a power of two */
    size_t         n_used;  /* slots in use */
    int            track;   /* right or full: keep null keys, mark matches */
    unsigned char *matched; /* rows_cap bytes when 'track' */
};

/* A hash of 'n' bytes, eight at a time. */
static uint64_t
bytes_hash(const char *p, size_t n, uint64_t h)
{
    uint64_t w;

    h ^= n * 0x9e3779b97f4a7c15ULL;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = util_mix64(h ^ w) + 0x2545f4914f6cdd1dULL;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, n);
        h = util_mix64(h ^ w ^ ((uint64_t)n << 59));
    }
    return h;
}

/* The hash of a non-null key value; numbers hash by their double value so
 * that 1 and 1.0, which compare equal, hash alike. */
static uint64_t
value_hash(const sh_value *v, uint64_t h)
{
    double   d;
    uint64_t bits;

    switch (v->type) {
    case SH_INT:
    case SH_FLOAT:
        d = v->type == SH_INT ? (double)v->u.i : v->u.f;
        if (d == 0)
            d = 0; /* -0 == 0 */
        if (isnan(d))
            bits = 0x7ff8000000000000ULL;
        else
            memcpy(&bits, &d, 8);
        return util_mix64(h ^ bits ^ 0x1111);
    case SH_STRING:
        return bytes_hash(v->u.s.ptr, v->u.s.len, h ^ 0x2222);
    case SH_BOOL:
        return util_mix64(h ^ (uint64_t)(v->u.b + 0x3333));
    case SH_DATE:
    case SH_TIMESTAMP:
        return util_mix64(h ^ util_mix64((uint64_t)v->u.i) ^ v->type);
    default:
        return h;
    }
}

/* Two non-null key values are equal. */
static int
value_eq(const sh_value *a, const sh_value *b)
{
    int an = a->type == SH_INT || a->type == SH_FLOAT;
    int bn = b->type == SH_INT || b->type == SH_FLOAT;

    if (an != bn || (!an && a->type != b->type))
        return 0;
    if (a->type == SH_STRING)
        return a->u.s.len == b->u.s.len
               && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    return value_cmp(a, b) == 0;
}

uint64_t
exec_join_hash(const sh_value *row, const size_t *idx, size_t n_keys, int *null)
{
    uint64_t h = 0x7a3c9d1e5b2f4a68ULL;
    size_t   k;

    *null = 0;
    for (k = 0; k < n_keys; k++) {
        const sh_value *v = &row[idx ? idx[k] : k];

        if (v->type == SH_NULL) {
            *null = 1;
            return 0;
        }
        h = value_hash(v, h);
    }
    return h;
}

size_t
exec_join_bucket(uint64_t h, int null, size_t n_buckets)
{
    if (null || n_buckets <= 1)
        return 0;
    return (size_t)((h >> 40) % n_buckets);
}

/* Hash of the keys (at 'idx' in 'row', or the first n when idx is NULL);
 * returns 0 when a key is null (*null set). */
static uint64_t
keys_hash(const exec_join *j, const sh_value *row, const size_t *idx, int *null)
{
    return exec_join_hash(row, idx, j->n_keys, null);
}

static int
keys_eq(const exec_join *j, const sh_value *stored, const sh_value *row,
        const size_t *idx)
{
    size_t k;

    for (k = 0; k < j->n_keys; k++) {
        if (!value_eq(&stored[k], &row[idx ? idx[k] : k]))
            return 0;
    }
    return 1;
}

/* The slot of the keys, or the empty slot where they would go. */
static jslot *
find_slot(const exec_join *j, uint64_t h, const sh_value *row,
          const size_t *idx)
{
    size_t mask = j->cap - 1, i = (size_t)h & mask;

    for (;; i = (i + 1) & mask) {
        jslot *sl = &j->slots[i];

        if (sl->first < 0)
            return sl;
        if (sl->hash == h && keys_eq(j, j->rows[sl->first].vals, row, idx))
            return sl;
    }
}

static void
grow_slots(exec_join *j)
{
    jslot *old = j->slots;
    size_t old_cap = j->cap, i;

    j->cap = old_cap ? old_cap * 2 : 1024;
    j->slots = xmalloc(j->cap * sizeof *j->slots);
    for (i = 0; i < j->cap; i++)
        j->slots[i].first = -1;
    for (i = 0; i < old_cap; i++) {
        size_t k;

        if (old[i].first < 0)
            continue;
        k = (size_t)old[i].hash & (j->cap - 1);
        while (j->slots[k].first >= 0)
            k = (k + 1) & (j->cap - 1);
        j->slots[k] = old[i];
    }
    free(old);
}

size_t
exec_join_bytes(const exec_join *j)
{
    return j->arena_bytes + j->rows_cap * sizeof *j->rows
           + (j->track ? j->rows_cap : 0) + j->cap * sizeof *j->slots;
}

/* Copy value 'v' (strings into the arena). */
static sh_value
keep_value(exec_join *j, const sh_value *v)
{
    sh_value c = *v;

    if (v->type == SH_STRING) {
        size_t n = v->u.s.len ? v->u.s.len : 1;
        char  *p = arena_alloc(j->mem, n);

        j->arena_bytes += (n + 15) & ~(size_t)15;
        memcpy(p, v->u.s.ptr, v->u.s.len);
        c.u.s.ptr = p;
    }
    return c;
}

/* Add one side row (keys at 'on', kept values at 'keep') when it falls in
 * 'bucket' of 'n_buckets' (0: every row). */
static void
add_row(exec_join *j, const plan_join *jn, const sh_value *row, size_t bucket,
        size_t n_buckets)
{
    size_t    n = j->n_keys + j->n_keep, k;
    sh_value *vals;
    uint64_t  h;
    jslot    *sl;
    int       null;

    h = keys_hash(j, row, jn->right_on, &null);
    if (null && !j->track)
        return;
    if (n_buckets > 1 && exec_join_bucket(h, null, n_buckets) != bucket)
        return;
    vals = arena_alloc(j->mem, n * sizeof *vals);
    j->arena_bytes += (n * sizeof *vals + 15) & ~(size_t)15;
    for (k = 0; k < j->n_keys; k++)
        vals[k] = keep_value(j, &row[jn->right_on[k]]);
    for (k = 0; k < j->n_keep; k++)
        vals[j->n_keys + k] = keep_value(j, &row[jn->right_keep[k]]);
    if (j->n_rows == j->rows_cap) {
        j->rows_cap = j->rows_cap ? j->rows_cap * 2 : 1024;
        j->rows = xrealloc(j->rows, j->rows_cap * sizeof *j->rows);
        if (j->track)
            j->matched = xrealloc(j->matched, j->rows_cap);
    }
    j->rows[j->n_rows].vals = vals;
    j->rows[j->n_rows].next = -1;
    if (j->track)
        j->matched[j->n_rows] = 0;
    if (null) {
        j->n_rows++;
        return;
    }
    if ((j->n_used + 1) * 4 > j->cap * 3)
        grow_slots(j);
    sl = find_slot(j, h, vals, NULL);
    if (sl->first < 0) {
        sl->hash = h;
        sl->first = sl->last = (long)j->n_rows;
        j->n_used++;
    } else {
        j->rows[sl->last].next = (long)j->n_rows;
        sl->last = (long)j->n_rows;
    }
    j->n_rows++;
}

exec_join *
exec_join_new(const plan_step *s)
{
    exec_join *j = xcalloc(1, sizeof *j);

    j->mem = arena_new(256 * 1024);
    j->n_keys = s->n_cols;
    j->n_keep = s->join->n_keep;
    j->track = s->join->how == JOIN_RIGHT || s->join->how == JOIN_FULL;
    grow_slots(j);
    return j;
}

void
exec_join_add(exec_join *j, const plan_step *s, const sh_value *row)
{
    add_row(j, s->join, row, 0, 0);
}

int
exec_join_load(const plan_step *s, uint64_t mem_bytes, exec_join **out,
               sh_err *err)
{
    return exec_join_load_bucket(s, mem_bytes, 0, 0, out, err);
}

int
exec_join_load_bucket(const plan_step *s, uint64_t mem_bytes, size_t bucket,
                      size_t n_buckets, exec_join **out, sh_err *err)
{
    const plan_join *jn = s->join;
    const plan      *side = jn->side;
    exec_join       *j = xcalloc(1, sizeof *j);
    input_reader    *r = NULL;
    const sh_value  *row;
    size_t           part;
    int              rc = 0;

    *out = NULL;
    j->mem = arena_new(256 * 1024);
    j->n_keys = s->n_cols;
    j->n_keep = jn->n_keep;
    j->track = jn->how == JOIN_RIGHT || jn->how == JOIN_FULL;
    grow_slots(j);
    for (part = 0; part < side->n_parts; part++) {
        r = input_open(side, part, NULL, err);
        if (r == NULL) {
            rc = err->code ? err->code : SH_EIO;
            goto done;
        }
        while ((rc = input_next(r, &row, err)) == 1) {
            add_row(j, jn, row, bucket, n_buckets);
            if (exec_join_bytes(j) > mem_bytes) {
                if (n_buckets > 1) {
                    rc = sh_err_set(err, SH_ETOOBIG, "",
                                    "bucket %zu of the 'with' input holds "
                                    "more than the memory budget of %llu "
                                    "MiB (%zu rows read); a bucket of a "
                                    "partitioned join must fit in memory "
                                    "(its re-partitioning is not there "
                                    "yet): raise SHEAF_MEMORY_MB",
                                    bucket,
                                    (unsigned long long)(mem_bytes >> 20),
                                    j->n_rows);
                    goto done;
                }
                rc = sh_err_set(err, SH_ETOOBIG, "",
                                "the 'with' input holds more than the "
                                "memory budget of %llu MiB (%zu rows "
                                "read); a join's 'with' side must fit in "
                                "memory: join with a smaller input or "
                                "raise SHEAF_MEMORY_MB",
                                (unsigned long long)(mem_bytes >> 20),
                                j->n_rows);
                goto done;
            }
        }
        if (rc < 0)
            goto done;
        rc = 0;
        input_free(r);
        r = NULL;
    }

done:
    if (r != NULL)
        input_free(r);
    if (rc != 0) {
        exec_join_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

long
exec_join_find(const exec_join *j, const sh_value *row, const size_t *cols)
{
    const jslot *sl;
    uint64_t     h;
    int          null;

    if (j->n_rows == 0)
        return -1;
    h = keys_hash(j, row, cols, &null);
    if (null)
        return -1;
    sl = find_slot(j, h, row, cols);
    return sl->first;
}

long
exec_join_next(const exec_join *j, long it)
{
    return j->rows[it].next;
}

const sh_value *
exec_join_keep(const exec_join *j, long it)
{
    return j->rows[it].vals + j->n_keys;
}

void
exec_join_mark(exec_join *j, long it)
{
    if (j->track)
        j->matched[it] = 1;
}

long
exec_join_unmatched(const exec_join *j, long it, const sh_value **keys)
{
    size_t r;

    for (r = (size_t)(it + 1); j->track && r < j->n_rows; r++) {
        if (!j->matched[r]) {
            *keys = j->rows[r].vals;
            return (long)r;
        }
    }
    return -1;
}

void
exec_join_free(exec_join *j)
{
    if (j == NULL)
        return;
    arena_free(j->mem);
    free(j->rows);
    free(j->slots);
    free(j->matched);
    free(j);
}
