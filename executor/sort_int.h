/*
 * sort_int.h - what the sorter (sort.c) and the merger (sort_merge.c)
 * share: the comparison of rows by keys, the order-preserving 64-bit
 * prefixes of values, the merger's buffer sizes, and merge_files.
 */
#ifndef SHEAF_SORT_INT_H
#define SHEAF_SORT_INT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sort.h"

#define MERGE_TOTAL_BYTES (16u << 20) /* read buffers of a merger, in all */
#define MERGE_BUF_MIN     (64u << 10) /* per file, at least */
#define MERGE_BUF_MAX     (1u << 20)  /* per file, at most */
#define PREFIX_NULL       UINT64_MAX  /* the prefix of a null: after all */

/* Two non-null values, ascending, as value_cmp orders them. The common
 * same-type cases are inline; the rest (int with float, bools, values of
 * different kinds) go to value_cmp. */
static inline int
cmp_nonnull(const sh_value *x, const sh_value *y)
{
    if (x->type == y->type) {
        switch (x->type) {
        case SH_INT:
            return (x->u.i > y->u.i) - (x->u.i < y->u.i);
        case SH_FLOAT:
            return value_cmp_double(x->u.f, y->u.f);
        case SH_STRING: {
            size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
            int    c = n ? memcmp(x->u.s.ptr, y->u.s.ptr, n) : 0;

            if (c != 0)
                return c < 0 ? -1 : 1;
            return (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
        }
        default:
            break;
        }
    }
    return value_cmp(x, y);
}

static inline int
rows_cmp(const sh_value *a, const sh_value *b, const sort_key *keys,
         size_t n_keys)
{
    for (size_t i = 0; i < n_keys; i++) {
        const sh_value *x = &a[keys[i].col], *y = &b[keys[i].col];
        int             c;

        if (x->type == SH_NULL || y->type == SH_NULL) {
            if (x->type == y->type)
                continue;
            return x->type == SH_NULL ? 1 : -1; /* nulls last, always */
        }
        c = cmp_nonnull(x, y);
        if (c != 0)
            return keys[i].desc ? -c : c;
    }
    return 0;
}

/*
 * Order-preserving 64-bit forms. For a key's values in one run, prefix(a)
 * < prefix(b) implies a < b, and a <= b implies prefix(a) <= prefix(b);
 * a prefix is "exact" when, in addition, equal prefixes mean equal values.
 */
static inline uint64_t
prefix_double(double f)
{
    uint64_t bits;

    if (f == 0)
        f = 0.0; /* -0 == 0 */
    if (isnan(f))
        bits = 0x7ff8000000000000ull; /* one NaN, above +inf */
    else
        memcpy(&bits, &f, 8);
    return (bits >> 63) ? ~bits : bits | (1ull << 63);
}

/* Seven bytes of the string, then its length capped at 8: exact for
 * strings of up to 7 bytes. */
static inline uint64_t
prefix_string(const char *p, size_t len)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t             k = 0;

    for (size_t i = 0; i < 7; i++)
        k = (k << 8) | (i < len ? u[i] : 0);
    return (k << 8) | (len < 8 ? len : 8);
}

/*
 * A copy of the key columns of 'row' ('n_cols' values) in one malloc'ed
 * block the caller frees: 'n_cols' + 'extra' values, null but for the
 * keys, and their string bytes.
 */
sh_value *sort_row_dup(const sh_value *row, size_t n_cols, const sort_key *keys,
                       size_t n_keys, size_t extra);

/*
 * The read buffer of each of 'n_files' files a merger reads:
 * MERGE_TOTAL_BYTES / n, between MERGE_BUF_MIN and MERGE_BUF_MAX.
 */
size_t sort_merge_buf_bytes(size_t n_files);

/*
 * Merge the sorted row files 'paths' (n; in order: ties keep it) by
 * 'keys' into one row file 'out_path', keeping the first 'limit' rows when
 * it is > 0. Returns 0 or an error (SH_EIO, SH_EDATA).
 */
int sort_merge_files(const char *const *paths, size_t n, const sort_key *keys,
                     size_t n_keys, uint64_t limit, const char *out_path,
                     sh_err *err);

#endif
