/*
 * sort.c - row order, the sorter of the external merge sort (run
 * formation and spill) and the top-n.
 *
 * Sorter, full sort: pushed rows are copied into blocks of row storage
 * (each row's values, then its string bytes, bump-allocated; the blocks are
 * kept and reused from one run to the next). Each row gets a record with
 * its first two keys encoded as order-preserving 64-bit integers
 * ("prefixes", computed when the run is sorted, once the run's key types
 * are known). A stable MSD radix sort orders the records by their prefix
 * bytes; groups too small for it go to a stable merge sort, whose
 * comparisons are two integer compares on the records, so only ties, or
 * keys whose prefix is not exact (strings over 7 bytes, ints mixed with
 * floats), look at the rows. The sorted rows go to a run file. The memory
 * counted against the budget is everything the sorter allocates for rows:
 * the blocks (whole, as allocated) and the record arrays (records and
 * scratch, at capacity: 48 bytes a row). Not counted: the 1 MiB buffer of
 * the run being written, and the merge buffers of sorter_finish.
 *
 * Sorter, top-n (limit > 0): a max-heap of the best 'limit' rows seen so
 * far, the worst on top. A row is copied only when it beats the worst, into
 * the evicted slot's buffer (grown when too small), so replacing rows
 * leaks nothing and allocates nothing once the buffers fit. Ties go to the
 * row pushed first. Should the heap itself outgrow the budget (a huge
 * limit), it is written as the first run and the sorter carries on as a
 * full sort whose runs keep only their first 'limit' rows, merged into one
 * run at the end.
 *
 * Stability: the sort is stable. Runs hold rows in push order among equal
 * keys, runs are numbered in push order, and the merger breaks ties by
 * file index, so merging the runs of a sorter in order (or the sorted
 * outputs of partitions, in partition order) keeps the input order of
 * rows with equal keys.
 *
 * The merger is in sort_merge.c. sorter_finish merges runs in groups
 * (consecutive, so stability holds) while there are more than a merger
 * reads within half the budget.
 */
#include "sort.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rowfile.h"
#include "sort_int.h"
#include "../lib/fsys.h"
#include "../lib/util.h"

#define SORT_BLOCK_MAX   (1u << 20)
#define SORT_BLOCK_MIN   (4u << 10)
#define SORT_INSERTION   16   /* insertion sort at or below this */
#define SORT_RECS_MIN    1024 /* first record capacity */
#define SORT_PREFETCH    16   /* rows fetched ahead when writing */
#define SORT_RADIX_MIN   64   /* radix sort from this many rows */
#define MERGE_FAN_IN_MAX 256  /* files merged at once by sorters */
#define SLOT_ROUND       64   /* top-n slot buffers grow in these */
#define MALLOC_OVERHEAD  16   /* counted per malloc'ed slot */
#define SORT_SAMPLE_MAX  1024 /* rows of a sorter's sample */

/* ------------------------------------------------------------------ */
/* Comparison (rows_cmp: sort_int.h)                                   */
/* ------------------------------------------------------------------ */

/*
 * Keys left to right; nulls after every value in either direction; ints and
 * floats numerically with each other, strings by bytes, false < true.
 */
int
sort_compare(const sh_value *a, const sh_value *b, const sort_key *keys,
             size_t n_keys)
{
    return rows_cmp(a, b, keys, n_keys);
}

/* ------------------------------------------------------------------ */
/* Records and their prefixes                                          */
/* ------------------------------------------------------------------ */

/* A row to sort: the prefixes of its first two keys, and the row. */
typedef struct srec {
    uint64_t  k0;  /* prefix of key 0 */
    uint64_t  k1;  /* prefix of key 1, 0 unless key 0's prefix is exact */
    sh_value *row; /* in the sorter's blocks */
} srec;

/* How records of one run compare beyond their prefixes. */
typedef struct sort_ctx {
    const sort_key *keys;   /* the keys from 'start' on decide ties */
    size_t          n_keys; /* keys left after 'start' */
} sort_ctx;

enum { ENC_INT, ENC_FLOAT, ENC_NUMBER, ENC_STRING, ENC_BOOL, ENC_OTHER };

/*
 * Fill the prefix of key 'key' (0 or 1) of every record from column 'col'
 * whose types in this run are 'kinds' (bit 1 << type). Returns 1 when the
 * prefixes are exact.
 */
static int
encode_prefixes(srec *recs, size_t n, int key, size_t col, int desc,
                unsigned kinds)
{
    unsigned nonnull = kinds & ~(1u << SH_NULL);
    int      enc, exact = 1;

    if (nonnull == 1u << SH_INT || nonnull == 1u << SH_DATE
        || nonnull == 1u << SH_TIMESTAMP)
        enc = ENC_INT; /* dates and timestamps: their int64 payload */
    else if (nonnull == 1u << SH_FLOAT)
        enc = ENC_FLOAT;
    else if (nonnull == ((1u << SH_INT) | (1u << SH_FLOAT)))
        enc = ENC_NUMBER, exact = 0;
    else if (nonnull == 1u << SH_STRING)
        enc = ENC_STRING;
    else if (nonnull == 1u << SH_BOOL)
        enc = ENC_BOOL;
    else
        enc = ENC_OTHER, exact = nonnull == 0;
    for (size_t i = 0; i < n; i++) {
        const sh_value *v = &recs[i].row[col];
        uint64_t        k;

        switch (v->type == SH_NULL ? -1 : enc) {
        case -1:
            k = PREFIX_NULL;
            goto store;
        case ENC_INT:
            k = (uint64_t)v->u.i ^ (1ull << 63);
            break;
        case ENC_FLOAT:
            k = prefix_double(v->u.f);
            break;
        case ENC_NUMBER:
            k = prefix_double(v->type == SH_INT ? (double)v->u.i : v->u.f);
            break;
        case ENC_STRING:
            k = prefix_string(v->u.s.ptr, v->u.s.len);
            if (v->u.s.len > 7)
                exact = 0;
            break;
        case ENC_BOOL:
            k = (uint64_t)v->u.b;
            break;
        default:
            k = 0; /* values of several kinds: the rows decide */
            goto store;
        }
        if (desc)
            k = ~k;
        if (k == PREFIX_NULL)
            exact = 0; /* indistinguishable from a null */
    store:
        if (key == 0)
            recs[i].k0 = k;
        else
            recs[i].k1 = k;
    }
    return exact;
}

static inline int
rec_cmp(const srec *a, const srec *b, const sort_ctx *c)
{
    if (a->k0 != b->k0)
        return a->k0 < b->k0 ? -1 : 1;
    if (a->k1 != b->k1)
        return a->k1 < b->k1 ? -1 : 1;
    if (c->n_keys == 0)
        return 0;
    return rows_cmp(a->row, b->row, c->keys, c->n_keys);
}

static void
insertion_sort(srec *a, size_t n, const sort_ctx *c)
{
    for (size_t i = 1; i < n; i++) {
        srec   x = a[i];
        size_t j = i;

        while (j > 0 && rec_cmp(&a[j - 1], &x, c) > 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/*
 * Stable merge sort of a[0..n) in place; 'tmp' holds n / 2 + 1 records.
 * Depth first, so the small merges run in cache; an already ordered pair
 * of halves costs one comparison.
 */
static void
merge_sort(srec *a, srec *tmp, size_t n, const sort_ctx *c)
{
    size_t h, i, j, k;

    if (n <= SORT_INSERTION) {
        insertion_sort(a, n, c);
        return;
    }
    h = n / 2;
    merge_sort(a, tmp, h, c);
    merge_sort(a + h, tmp, n - h, c);
    if (rec_cmp(&a[h - 1], &a[h], c) <= 0)
        return;
    memcpy(tmp, a, h * sizeof *a);
    i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (rec_cmp(&a[j], &tmp[i], c) < 0)
            a[k++] = a[j++];
        else
            a[k++] = tmp[i++];
    }
    if (i < h)
        memcpy(a + k, tmp + i, (h - i) * sizeof *a);
}

/* Byte 'd' (0 = least significant of k1, 15 = most significant of k0). */
static inline unsigned
rec_digit(const srec *r, unsigned d)
{
    return (unsigned)((d < 8 ? r->k1 >> (8 * d) : r->k0 >> (8 * (d - 8)))
                      & 0xff);
}

/*
 * Stable sort of a[0..n) by rec_cmp, 'tmp' holding n records: an MSD radix
 * sort on the prefix bytes from digit 'd' down (15 is the top byte of k0,
 * 0 the bottom byte of k1). A pass counts one byte, skips it when all the
 * records share it, else scatters the records by it into 'tmp' (stably)
 * and copies them back; each bucket then sorts on the next byte. Buckets
 * soon fit in cache; small ones, and records whose prefixes are all equal,
 * go to the merge sort, which compares the rows when prefixes tie.
 */
static void
msd_sort(srec *a, srec *tmp, size_t n, int d, const sort_ctx *c)
{
    size_t pos[256]; /* counts, then where each bucket ends */

    for (; n >= SORT_RADIX_MIN && d >= 0; d--) {
        size_t sum = 0, lo = 0;
        int    used = 0;

        memset(pos, 0, sizeof pos);
        for (size_t i = 0; i < n; i++)
            pos[rec_digit(&a[i], (unsigned)d)]++;
        for (unsigned v = 0; v < 256; v++) {
            size_t count = pos[v];

            pos[v] = sum; /* where bucket v starts */
            sum += count;
            used += count != 0;
        }
        if (used == 1)
            continue; /* the same byte everywhere */
        for (size_t i = 0; i < n; i++)
            tmp[pos[rec_digit(&a[i], (unsigned)d)]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
        for (unsigned v = 0; v < 256; lo = pos[v], v++)
            if (pos[v] - lo > 1)
                msd_sort(a + lo, tmp + lo, pos[v] - lo, d - 1, c);
        return;
    }
    if (n > 1 && (d >= 0 || c->n_keys > 0))
        merge_sort(a, tmp, n, c);
}

/* ------------------------------------------------------------------ */
/* The sorter                                                          */
/* ------------------------------------------------------------------ */

/* A block of row storage; the payload follows the header. */
typedef struct sblock {
    struct sblock *next; /* the next block of the chain */
    size_t         size; /* payload bytes */
    size_t         used; /* payload bytes handed out in this run */
} sblock;

/* A row of the top-n heap, in a buffer of its own. */
typedef struct hslot {
    sh_value *row; /* n_cols values, then their string bytes; owned */
    size_t    cap; /* bytes allocated at 'row' */
    uint64_t  seq; /* push order: ties go to the earlier row */
} hslot;

struct sorter {
    size_t    n_cols;     /* values per row */
    sort_key *keys;       /* owned copy */
    size_t    n_keys;     /* number of keys */
    size_t    mem_bytes;  /* the budget */
    char     *prefix;     /* run path prefix, owned */
    uint64_t  limit;      /* top-n when > 0 */
    int       n_runs;     /* runs written */
    size_t    peak_bytes; /* most bytes held at once */
    int       failed;     /* a run could not be written */
    int       finished;   /* sorter_finish has run */

    /* Full sort: rows held for the next run. */
    sblock  *blocks;       /* the chain of blocks, oldest first */
    sblock  *last;         /* the chain's last block */
    sblock  *cur;          /* the block being filled */
    size_t   block_bytes;  /* payload size of a normal block */
    size_t   blocks_alloc; /* bytes allocated for blocks */
    size_t   blocks_used;  /* bytes of rows in this run */
    srec    *recs;         /* one record per row held */
    srec    *tmp;          /* sort scratch, cap records */
    size_t   n;            /* rows held */
    size_t   cap;          /* records allocated */
    unsigned kinds[2];     /* types seen in key columns 0 and 1 */

    /* Top-n. */
    int      heap_mode;  /* 1 while the top-n heap is in use */
    hslot   *heap;       /* max-heap: the worst kept row on top */
    size_t   heap_n;     /* rows in the heap */
    size_t   heap_cap;   /* slots allocated */
    size_t   heap_bytes; /* bytes of the slots' buffers */
    uint64_t seq;        /* rows pushed */

    /* Sample (sorter_keep_sample): one row in 'sample_stride' pushed. */
    char      *sample_path;   /* where sorter_finish writes it, or NULL */
    sh_value **samples;       /* key columns of each (sort_row_dup) */
    size_t     n_samples;     /* rows in 'samples' */
    uint64_t   sample_stride; /* rows pushed per sample row */
    uint64_t   sample_seq;    /* rows pushed in full-sort mode */
};

static size_t
row_bytes(const sorter *s, const sh_value *row)
{
    size_t n = s->n_cols * sizeof(sh_value);

    for (size_t i = 0; i < s->n_cols; i++)
        if (row[i].type == SH_STRING)
            n += row[i].u.s.len;
    return (n + 7) & ~(size_t)7;
}

/* Copy 'row' into 'dst' (row_bytes big): values, then string bytes. */
static void
copy_row(const sorter *s, sh_value *dst, const sh_value *row)
{
    char *p = (char *)(dst + s->n_cols);

    memcpy(dst, row, s->n_cols * sizeof *row);
    for (size_t i = 0; i < s->n_cols; i++) {
        if (row[i].type != SH_STRING)
            continue;
        if (row[i].u.s.len > 0)
            memcpy(p, row[i].u.s.ptr, row[i].u.s.len);
        dst[i].u.s.ptr = p;
        p += row[i].u.s.len;
    }
}

static size_t
recs_bytes(size_t cap)
{
    return 2 * cap * sizeof(srec); /* records and scratch */
}

static size_t
held_bytes(const sorter *s)
{
    if (s->heap_mode)
        return s->heap_bytes + s->heap_cap * sizeof(hslot);
    return s->blocks_alloc + recs_bytes(s->cap);
}

static void
note_peak(sorter *s)
{
    size_t held = held_bytes(s);

    if (held > s->peak_bytes)
        s->peak_bytes = held;
}

/*
 * Files a merger may read at once within half of 'mem_bytes' of buffers
 * (at least 2).
 */
static size_t
fan_in(size_t mem_bytes)
{
    for (size_t n = MERGE_FAN_IN_MAX; n > 2; n--)
        if (n * sort_merge_buf_bytes(n) <= mem_bytes / 2)
            return n;
    return 2;
}

/*
 * A sorter of rows of 'n_cols' values by 'keys'; see sort.h. Nothing is
 * allocated for rows until the first push.
 */
sorter *
sorter_new(size_t n_cols, const sort_key *keys, size_t n_keys, size_t mem_bytes,
           const char *run_prefix, uint64_t limit)
{
    sorter *s = xcalloc(1, sizeof *s);

    for (size_t i = 0; i < n_keys; i++)
        assert(keys[i].col < n_cols);
    s->n_cols = n_cols;
    s->keys = xmalloc((n_keys ? n_keys : 1) * sizeof *keys);
    if (n_keys > 0)
        memcpy(s->keys, keys, n_keys * sizeof *keys);
    s->n_keys = n_keys;
    s->mem_bytes = mem_bytes;
    s->prefix = xstrdup(run_prefix);
    s->limit = limit;
    s->heap_mode = limit > 0;
    s->block_bytes = mem_bytes / 16;
    if (s->block_bytes > SORT_BLOCK_MAX)
        s->block_bytes = SORT_BLOCK_MAX;
    if (s->block_bytes < SORT_BLOCK_MIN)
        s->block_bytes = SORT_BLOCK_MIN;
    return s;
}

/* The block from s->cur on with room for 'size' bytes, or NULL. */
static sblock *
find_block(const sorter *s, size_t size)
{
    for (sblock *b = s->cur; b != NULL; b = b->next)
        if (b->size - b->used >= size)
            return b;
    return NULL;
}

static size_t
new_block_bytes(const sorter *s, size_t size)
{
    return sizeof(sblock) + (size > s->block_bytes ? size : s->block_bytes);
}

static sblock *
add_block(sorter *s, size_t size)
{
    size_t  total = new_block_bytes(s, size);
    sblock *b = xmalloc(total);

    b->next = NULL;
    b->size = total - sizeof *b;
    b->used = 0;
    if (s->last)
        s->last->next = b;
    else
        s->blocks = b;
    s->last = b;
    s->blocks_alloc += total;
    return b;
}

/*
 * The record capacity to grow to: double, but not past what the budget
 * can hold at the rows' average size so far, nor past the budget.
 */
static size_t
next_cap(const sorter *s)
{
    size_t want = s->cap ? s->cap * 2 : SORT_RECS_MIN;
    size_t per = recs_bytes(2) / 2; /* record bytes per row, about */

    if (s->n > 0) {
        size_t avg = s->blocks_used / s->n + per;
        size_t est = s->mem_bytes / avg + 1;

        if (want > est)
            want = est > s->cap ? est : s->cap + 1;
    }
    if (s->mem_bytes > s->blocks_alloc) {
        size_t room = (s->mem_bytes - s->blocks_alloc) / per;

        if (want > room && room > s->cap)
            want = room;
    }
    return want;
}

static void
grow_recs(sorter *s)
{
    size_t cap = next_cap(s);

    s->recs = xrealloc(s->recs, cap * sizeof *s->recs);
    free(s->tmp);
    s->tmp = xmalloc(cap * sizeof *s->tmp);
    s->cap = cap;
}

/* Write 'n' rows (already in order) as the next run file. */
static int
write_run_rows(sorter *s, const srec *recs, size_t n, sh_err *err)
{
    char           *path = xasprintf("%s.r%d", s->prefix, s->n_runs);
    rowfile_writer *w = rowfile_create(path, s->n_cols, err);
    int             rc = SH_EIO;

    if (w == NULL)
        goto done;
    if (s->limit > 0 && n > s->limit)
        n = (size_t)s->limit;
    for (size_t i = 0; i < n; i++) {
        /* Sorted rows are all over memory: fetch ahead of the encoder. */
        if (i + SORT_PREFETCH < n) {
            const char *ahead = (const char *)recs[i + SORT_PREFETCH].row;

            __builtin_prefetch(ahead);
            __builtin_prefetch(ahead + 64);
        }
        if (rowfile_write(w, recs[i].row, err) < 0) {
            rowfile_abort(w);
            goto done;
        }
    }
    if (rowfile_close(w, err) < 0)
        goto done;
    s->n_runs++;
    rc = 0;

done:
    free(path);
    if (rc < 0)
        s->failed = 1;
    return rc;
}

/* Sort the rows held and write them as a run; the memory is reused. */
static int
write_run(sorter *s, sh_err *err)
{
    sort_ctx ctx = {s->keys, s->n_keys};
    int      exact0 = 1, exact1 = 1, rc;

    if (s->n_keys > 0)
        exact0 = encode_prefixes(s->recs, s->n, 0, s->keys[0].col,
                                 s->keys[0].desc, s->kinds[0]);
    if (s->n_keys > 1 && exact0)
        exact1 = encode_prefixes(s->recs, s->n, 1, s->keys[1].col,
                                 s->keys[1].desc, s->kinds[1]);
    else
        for (size_t i = 0; i < s->n; i++)
            s->recs[i].k1 = 0;
    if (s->n_keys == 0)
        for (size_t i = 0; i < s->n; i++)
            s->recs[i].k0 = 0;
    /* Keys whose exact prefixes were equal need no second look. */
    if (exact0 && s->n_keys > 0) {
        size_t skip = (exact1 && s->n_keys > 1) ? 2 : 1;

        ctx.keys += skip;
        ctx.n_keys -= skip;
    }
    msd_sort(s->recs, s->tmp, s->n, 15, &ctx);
    rc = write_run_rows(s, s->recs, s->n, err);
    s->n = 0;
    s->blocks_used = 0;
    for (sblock *b = s->blocks; b != NULL; b = b->next)
        b->used = 0;
    s->cur = s->blocks;
    s->kinds[0] = s->kinds[1] = 0;
    return rc;
}

/*
 * Keep the key columns of 'row' in the sample; at SORT_SAMPLE_MAX rows,
 * drop every other one and double the stride, so the sample stays even.
 */
static void
add_sample(sorter *s, const sh_value *row)
{
    if (s->n_samples == SORT_SAMPLE_MAX) {
        size_t i, j = 0;

        for (i = 0; i < s->n_samples; i++) {
            if (i % 2 == 0)
                s->samples[j++] = s->samples[i];
            else
                free(s->samples[i]);
        }
        s->n_samples = j;
        s->sample_stride *= 2;
    }
    s->samples[s->n_samples++] = sort_row_dup(row, s->n_cols, s->keys,
                                              s->n_keys, 1);
}

/* Write the sample: its rows, each with its weight (the stride) as one
 * more column. Returns 0 or SH_EIO. */
static int
write_sample(sorter *s, sh_err *err)
{
    rowfile_writer *w = rowfile_create(s->sample_path, s->n_cols + 1, err);
    int             rc = 0;

    if (w == NULL)
        return SH_EIO;
    for (size_t i = 0; i < s->n_samples && rc == 0; i++) {
        sh_value *row = s->samples[i];

        row[s->n_cols].type = SH_INT;
        row[s->n_cols].u.i = (int64_t)s->sample_stride;
        rc = rowfile_write(w, row, err);
    }
    if (rc != 0) {
        rowfile_abort(w);
        return rc;
    }
    return rowfile_close(w, err);
}

static int
push_full(sorter *s, const sh_value *row, sh_err *err)
{
    size_t  size = row_bytes(s, row);
    sblock *b = find_block(s, size);

    if (b == NULL || s->n == s->cap) {
        size_t extra = 0;

        if (b == NULL)
            extra += new_block_bytes(s, size);
        if (s->n == s->cap)
            extra += recs_bytes(next_cap(s)) - recs_bytes(s->cap);
        if (s->n > 0 && held_bytes(s) + extra > s->mem_bytes) {
            if (write_run(s, err) < 0)
                return SH_EIO;
            b = find_block(s, size);
        }
        /* The block first, so the records are sized for what is left. */
        if (b == NULL)
            b = add_block(s, size);
        if (s->n == s->cap)
            grow_recs(s);
    }
    if (s->sample_path != NULL && s->sample_seq++ % s->sample_stride == 0)
        add_sample(s, row);
    s->cur = b;
    sh_value *dst = (sh_value *)((char *)(b + 1) + b->used);
    b->used += size;
    s->blocks_used += size;
    copy_row(s, dst, row);
    s->recs[s->n].row = dst;
    s->n++;
    for (size_t j = 0; j < 2 && j < s->n_keys; j++)
        s->kinds[j] |= 1u << row[s->keys[j].col].type;
    note_peak(s);
    return 0;
}

/* Heap order: worse rows above better ones; ties by push order. */
static inline int
slot_cmp(const sorter *s, const hslot *a, const hslot *b)
{
    int c = rows_cmp(a->row, b->row, s->keys, s->n_keys);

    if (c != 0)
        return c;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static void
heap_sift_down(sorter *s, size_t i, size_t n)
{
    hslot *h = s->heap;
    hslot  x = h[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= n)
            break;
        if (c + 1 < n && slot_cmp(s, &h[c + 1], &h[c]) > 0)
            c++;
        if (slot_cmp(s, &h[c], &x) <= 0)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void
heap_sift_up(sorter *s, size_t i)
{
    hslot *h = s->heap;
    hslot  x = h[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;

        if (slot_cmp(s, &h[p], &x) >= 0)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

/* Copy 'row' into 'slot', growing its buffer when needed. */
static void
slot_fill(sorter *s, hslot *slot, const sh_value *row, size_t size)
{
    if (size > slot->cap) {
        size_t cap = (size + SLOT_ROUND - 1) / SLOT_ROUND * SLOT_ROUND;

        free(slot->row);
        slot->row = xmalloc(cap);
        s->heap_bytes += cap - slot->cap + (slot->cap ? 0 : MALLOC_OVERHEAD);
        slot->cap = cap;
    }
    copy_row(s, slot->row, row);
    slot->seq = s->seq;
}

/* Sort the heap in place (best first): a heapsort. */
static void
heap_sort(sorter *s)
{
    for (size_t n = s->heap_n; n > 1; n--) {
        hslot t = s->heap[0];

        s->heap[0] = s->heap[n - 1];
        s->heap[n - 1] = t;
        heap_sift_down(s, 0, n - 1);
    }
}

/* Write the heap as a run, in order, and free it. */
static int
heap_write(sorter *s, sh_err *err)
{
    srec *recs;
    int   rc;

    heap_sort(s);
    recs = xmalloc((s->heap_n ? s->heap_n : 1) * sizeof *recs);
    for (size_t i = 0; i < s->heap_n; i++)
        recs[i].row = s->heap[i].row;
    rc = write_run_rows(s, recs, s->heap_n, err);
    free(recs);
    for (size_t i = 0; i < s->heap_n; i++)
        free(s->heap[i].row);
    free(s->heap);
    s->heap = NULL;
    s->heap_n = s->heap_cap = 0;
    s->heap_bytes = 0;
    s->heap_mode = 0;
    return rc;
}

static int
push_heap(sorter *s, const sh_value *row, sh_err *err)
{
    size_t size;

    if (s->heap_n == s->limit) {
        /* Not better than the worst kept row (a tie loses: it came later). */
        if (rows_cmp(row, s->heap[0].row, s->keys, s->n_keys) >= 0) {
            s->seq++;
            return 0;
        }
        size = row_bytes(s, row);
        slot_fill(s, &s->heap[0], row, size);
        heap_sift_down(s, 0, s->heap_n);
    } else {
        if (s->heap_n == s->heap_cap) {
            size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;

            if (cap > s->limit)
                cap = (size_t)s->limit;
            s->heap = xrealloc(s->heap, cap * sizeof *s->heap);
            s->heap_cap = cap;
        }
        size = row_bytes(s, row);
        s->heap[s->heap_n] = (hslot){NULL, 0, 0};
        slot_fill(s, &s->heap[s->heap_n], row, size);
        s->heap_n++;
        heap_sift_up(s, s->heap_n - 1);
    }
    s->seq++;
    note_peak(s);
    /* A limit too large for the budget: carry on as a full sort. */
    if (held_bytes(s) > s->mem_bytes)
        return heap_write(s, err);
    return 0;
}

/* Copy 'row' in; may write a run (full sort). Returns 0 or SH_EIO. */
int
sorter_push(sorter *s, const sh_value *row, sh_err *err)
{
    assert(!s->finished);
    if (s->failed)
        return sh_err_set(err, SH_EIO, "",
                          "sort %s: an earlier run could not be written",
                          s->prefix);
    if (s->heap_mode)
        return push_heap(s, row, err);
    return push_full(s, row, err);
}

static void
release_rows(sorter *s)
{
    sblock *b = s->blocks;

    while (b != NULL) {
        sblock *next = b->next;

        free(b);
        b = next;
    }
    s->blocks = s->last = s->cur = NULL;
    s->blocks_alloc = s->blocks_used = 0;
    free(s->recs);
    free(s->tmp);
    s->recs = s->tmp = NULL;
    s->n = s->cap = 0;
}

/*
 * Merge runs in order, in groups of at most 'group', until at most
 * 'target' remain, renumbering them r0.. in order. With a limit, every
 * merge keeps only the first 'limit' rows.
 */
static int
reduce_runs(sorter *s, size_t group, size_t target, sh_err *err)
{
    while ((size_t)s->n_runs > target) {
        size_t n = (size_t)s->n_runs;
        size_t groups = (n + group - 1) / group;

        for (size_t g = 0; g < groups; g++) {
            size_t lo = g * group, hi = lo + group < n ? lo + group : n;
            char **paths = xmalloc((hi - lo) * sizeof *paths);
            char  *out = xasprintf("%s.m%zu", s->prefix, g);
            int    rc;

            for (size_t i = lo; i < hi; i++)
                paths[i - lo] = xasprintf("%s.r%zu", s->prefix, i);
            rc = sort_merge_files((const char *const *)paths, hi - lo, s->keys,
                                  s->n_keys, s->limit, out, err);
            for (size_t i = lo; i < hi; i++) {
                if (rc == 0)
                    (void)fsys_unlink(paths[i - lo]);
                free(paths[i - lo]);
            }
            free(paths);
            free(out);
            if (rc < 0) {
                s->failed = 1;
                return rc;
            }
        }
        for (size_t g = 0; g < groups; g++) {
            char *from = xasprintf("%s.m%zu", s->prefix, g);
            char *to = xasprintf("%s.r%zu", s->prefix, g);
            int   rc = fsys_rename(from, to);

            if (rc < 0)
                sh_err_set(err, SH_EIO, "", "cannot rename %s to %s: %s", from,
                           to, strerror(errno));
            free(from);
            free(to);
            if (rc < 0) {
                s->failed = 1;
                return SH_EIO;
            }
        }
        s->n_runs = (int)groups;
    }
    return 0;
}

/*
 * Write the rows held as the last run, free the row memory, then reduce
 * the runs: to one with a limit, else to as many as a merger reads within
 * half the budget.
 */
int
sorter_finish(sorter *s, sh_err *err)
{
    size_t group;
    int    rc = 0;

    if (s->finished)
        return s->failed ? SH_EIO : s->n_runs;
    s->finished = 1;
    if (s->failed)
        return sh_err_set(err, SH_EIO, "",
                          "sort %s: an earlier run could not be written",
                          s->prefix);
    if (s->heap_mode) {
        if (s->heap_n > 0)
            rc = heap_write(s, err);
    } else if (s->n > 0) {
        rc = write_run(s, err);
    }
    release_rows(s);
    if (rc == 0 && s->sample_path != NULL && s->n_runs > 0)
        rc = write_sample(s, err);
    if (rc < 0) {
        s->failed = 1;
        return rc;
    }
    group = fan_in(s->mem_bytes);
    rc = reduce_runs(s, group, s->limit > 0 ? 1 : group, err);
    if (rc < 0)
        return rc;
    return s->n_runs;
}

size_t
sorter_peak_bytes(const sorter *s)
{
    return s->peak_bytes;
}

void
sorter_free(sorter *s)
{
    if (s == NULL)
        return;
    release_rows(s);
    for (size_t i = 0; i < s->heap_n; i++)
        free(s->heap[i].row);
    free(s->heap);
    for (size_t i = 0; i < s->n_samples; i++)
        free(s->samples[i]);
    free(s->samples);
    free(s->sample_path);
    free(s->keys);
    free(s->prefix);
    free(s);
}

/* Keep a sample for sorter_finish to write to 'path'; see sort.h. */
void
sorter_keep_sample(sorter *s, const char *path)
{
    if (s->limit > 0 || s->sample_path != NULL)
        return;
    s->sample_path = xstrdup(path);
    s->samples = xcalloc(SORT_SAMPLE_MAX, sizeof *s->samples);
    s->sample_stride = 1;
}
