/*
 * sort_merge.c - the merger of sorted row files (sort.h): a k-way merge
 * with a binary min-heap of the files by their current rows (a 64-bit
 * prefix of key 0 first, then the rows, then the file index, so ties keep
 * the files' order). Each file is read through a buffer of
 * MERGE_TOTAL_BYTES / n, between MERGE_BUF_MIN and MERGE_BUF_MAX, so up to
 * 256 files take 16 MiB at most, and n files past that n * 64 KiB. Also
 * sort_merge_files, with which the sorter merges its runs in groups.
 */
#include "sort.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rowfile.h"
#include "sort_int.h"
#include "../lib/util.h"

struct merger {
    rowfile_reader   **rd;      /* one reader per file */
    const sh_value   **cur;     /* each reader's current row */
    uint64_t          *pfx;     /* prefix of key 0 of each current row */
    size_t             n;       /* files */
    size_t            *heap;    /* min-heap of reader indices with a row */
    size_t             heap_n;  /* readers in the heap */
    sort_key          *keys;    /* owned copy */
    size_t             n_keys;  /* number of keys */
    int                started; /* the first row of each file was read */
    int                advance; /* the top's row was returned: move it on */
    int                failed;  /* the error code of a failed read, or 0 */
    const sort_bounds *bounds;  /* merger_set_bounds, or NULL: every row */
};

struct sort_bounds {
    sh_value *lo;    /* the first row of the part, or NULL: from the start */
    sh_value *hi;    /* the first row past it, or NULL: to the end */
    int       empty; /* 1: no row falls in the part */
};

/* What sample_cmp compares by. */
typedef struct sort_bounds_ctx {
    const sort_key *keys;
    size_t          n_keys;
} sort_bounds_ctx;

/* One row of the samples: its keys, its weight, its place in the files. */
typedef struct sample_row {
    sh_value *row;
    int64_t   weight;
    size_t    ord;
} sample_row;

/* See sort_int.h. */
size_t
sort_merge_buf_bytes(size_t n_files)
{
    size_t b = n_files ? MERGE_TOTAL_BYTES / n_files : MERGE_BUF_MAX;

    if (b > MERGE_BUF_MAX)
        b = MERGE_BUF_MAX;
    if (b < MERGE_BUF_MIN)
        b = MERGE_BUF_MIN;
    return b;
}

/*
 * A prefix of key 0 that needs no knowledge of the column's types:
 * monotone across kinds in value_cmp's order (numbers, then strings, then
 * bools; the top two bits), never exact, so equal prefixes compare rows.
 */
static inline uint64_t
merge_prefix(const merger *m, const sh_value *row)
{
    const sh_value *v;
    uint64_t        k;

    if (m->n_keys == 0)
        return 0;
    v = &row[m->keys[0].col];
    switch (v->type) {
    case SH_NULL:
        return PREFIX_NULL;
    case SH_INT:
        k = prefix_double((double)v->u.i) >> 2;
        break;
    case SH_FLOAT:
        k = prefix_double(v->u.f) >> 2;
        break;
    case SH_STRING:
        k = (1ull << 62) | prefix_string(v->u.s.ptr, v->u.s.len) >> 2;
        break;
    case SH_BOOL:
        k = (2ull << 62) | (uint64_t)v->u.b;
        break;
    default:
        k = 3ull << 62;
        break;
    }
    return m->keys[0].desc ? ~k : k;
}

/* Reader 'a' comes before reader 'b': by row, then by file index. */
static inline int
merger_before(const merger *m, size_t a, size_t b)
{
    int c;

    if (m->pfx[a] != m->pfx[b])
        return m->pfx[a] < m->pfx[b];
    c = rows_cmp(m->cur[a], m->cur[b], m->keys, m->n_keys);

    return c != 0 ? c < 0 : a < b;
}

static void
merger_sift_down(merger *m, size_t i)
{
    size_t *h = m->heap, n = m->heap_n, x = h[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= n)
            break;
        if (c + 1 < n && merger_before(m, h[c + 1], h[c]))
            c++;
        if (!merger_before(m, h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* See sort_int.h. */
sh_value *
sort_row_dup(const sh_value *row, size_t n_cols, const sort_key *keys,
             size_t n_keys, size_t extra)
{
    size_t    size = (n_cols + extra) * sizeof(sh_value), i;
    sh_value *dst;
    char     *p;

    for (i = 0; i < n_keys; i++)
        if (row[keys[i].col].type == SH_STRING)
            size += row[keys[i].col].u.s.len;
    dst = xcalloc(1, size); /* all SH_NULL */
    p = (char *)(dst + n_cols + extra);
    for (i = 0; i < n_keys; i++) {
        const sh_value *v = &row[keys[i].col];

        dst[keys[i].col] = *v;
        if (v->type != SH_STRING)
            continue;
        if (v->u.s.len > 0)
            memcpy(p, v->u.s.ptr, v->u.s.len);
        dst[keys[i].col].u.s.ptr = p;
        p += v->u.s.len;
    }
    return dst;
}

/* qsort_r's order of sample rows: by keys, then by place (a total order,
 * so every task sorts the samples alike). */
static int
sample_cmp(const void *a, const void *b, void *ctx)
{
    const sample_row      *x = a, *y = b;
    const sort_bounds_ctx *c = ctx;
    int                    r = rows_cmp(x->row, y->row, c->keys, c->n_keys);

    if (r != 0)
        return r;
    return (x->ord > y->ord) - (x->ord < y->ord);
}

/*
 * Append the rows of the sample file 'path' to *v (*n, *cap); a missing
 * file is an empty sample. *n_cols: the rows' columns (without the
 * weight), the same in every file. Returns 0, SH_EIO or SH_EDATA.
 */
static int
read_sample(const char *path, const sort_key *keys, size_t n_keys,
            sample_row **v, size_t *n, size_t *cap, size_t *n_cols, sh_err *err)
{
    rowfile_reader *r;
    const sh_value *row;
    struct stat     sb;
    size_t          cols, i;
    int             rc;

    if (stat(path, &sb) != 0 && errno == ENOENT)
        return 0;
    if ((r = rowfile_open_buf(path, MERGE_BUF_MIN, err)) == NULL)
        return SH_EIO;
    cols = rowfile_cols(r);
    rc = cols < 1 || (*n_cols != SIZE_MAX && *n_cols != cols - 1);
    for (i = 0; i < n_keys && rc == 0; i++)
        rc = keys[i].col >= cols - 1;
    if (rc != 0) {
        rowfile_free(r);
        return sh_err_set(err, SH_EDATA, "", "%s: not a sort sample", path);
    }
    *n_cols = cols - 1;
    while ((rc = rowfile_next(r, &row, err)) == 1) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 1024;
            *v = xrealloc(*v, *cap * sizeof **v);
        }
        (*v)[*n].row = sort_row_dup(row, cols - 1, keys, n_keys, 0);
        (*v)[*n].weight = row[cols - 1].type == SH_INT ? row[cols - 1].u.i : 1;
        (*v)[*n].ord = *n;
        (*n)++;
    }
    rowfile_free(r);
    return rc;
}

/*
 * The first sample row from which the rows of part 'j' (1 <= j < k) on
 * begin: the first whose weight before it reaches j / k of 'total'; -1
 * when none does (the part and those after it are empty).
 */
static long
cut_index(const sample_row *v, size_t n, int64_t total, size_t j, size_t k)
{
    int64_t before = 0;
    size_t  i;

    for (i = 0; i < n; i++) {
        if ((__int128)before * (int64_t)k >= (__int128)total * (int64_t)j)
            return (long)i;
        before += v[i].weight;
    }
    return -1;
}

/* Read the samples and bound part 'part' of 'n_parts'; see sort.h. */
int
sort_bounds_load(const char *const *paths, size_t n, const sort_key *keys,
                 size_t n_keys, size_t part, size_t n_parts, sort_bounds **out,
                 sh_err *err)
{
    sort_bounds_ctx ctx = {keys, n_keys};
    sort_bounds    *b = xcalloc(1, sizeof *b);
    sample_row     *v = NULL;
    size_t          n_rows = 0, cap = 0, n_cols = SIZE_MAX, i;
    int64_t         total = 0;
    long            lo, hi;
    int             rc = 0;

    *out = NULL;
    for (i = 0; i < n && rc == 0; i++)
        rc = read_sample(paths[i], keys, n_keys, &v, &n_rows, &cap, &n_cols,
                         err);
    if (rc != 0)
        goto done;
    if (n_rows > 1)
        qsort_r(v, n_rows, sizeof *v, sample_cmp, &ctx);
    for (i = 0; i < n_rows; i++)
        total += v[i].weight;
    lo = part > 0 ? cut_index(v, n_rows, total, part, n_parts) : 0;
    hi = part + 1 < n_parts ? cut_index(v, n_rows, total, part + 1, n_parts)
                            : -1;
    if (lo < 0)
        b->empty = 1;
    else if (part > 0)
        b->lo = sort_row_dup(v[lo].row, n_cols, keys, n_keys, 0);
    if (!b->empty && hi >= 0)
        b->hi = sort_row_dup(v[hi].row, n_cols, keys, n_keys, 0);
    *out = b;
    b = NULL;

done:
    for (i = 0; i < n_rows; i++)
        free(v[i].row);
    free(v);
    sort_bounds_free(b);
    return rc;
}

void
sort_bounds_free(sort_bounds *b)
{
    if (b == NULL)
        return;
    free(b->lo);
    free(b->hi);
    free(b);
}

/* Yield only the rows within 'b'; see sort.h. */
void
merger_set_bounds(merger *m, const sort_bounds *b)
{
    m->bounds = b;
}

/*
 * Read the first row of file 'i' at or after the bounds' start. Returns 1,
 * 0 (no such row) or an error.
 */
static int
first_row(merger *m, size_t i, sh_err *err)
{
    int rc;

    do
        rc = rowfile_next(m->rd[i], &m->cur[i], err);
    while (rc == 1 && m->bounds != NULL && m->bounds->lo != NULL
           && rows_cmp(m->cur[i], m->bounds->lo, m->keys, m->n_keys) < 0);
    return rc;
}

/*
 * Open every file (each through a buffer sized so that all take about
 * MERGE_TOTAL_BYTES); rows are read from the first merger_next on.
 */
merger *
merger_new(const char *const *paths, size_t n, const sort_key *keys,
           size_t n_keys, sh_err *err)
{
    merger *m = xcalloc(1, sizeof *m);
    size_t  buf = sort_merge_buf_bytes(n);

    m->rd = xcalloc(n ? n : 1, sizeof *m->rd);
    m->cur = xcalloc(n ? n : 1, sizeof *m->cur);
    m->pfx = xcalloc(n ? n : 1, sizeof *m->pfx);
    m->heap = xcalloc(n ? n : 1, sizeof *m->heap);
    m->n = n;
    m->keys = xmalloc((n_keys ? n_keys : 1) * sizeof *keys);
    if (n_keys > 0)
        memcpy(m->keys, keys, n_keys * sizeof *keys);
    m->n_keys = n_keys;
    for (size_t i = 0; i < n; i++) {
        m->rd[i] = rowfile_open_buf(paths[i], buf, err);
        if (m->rd[i] == NULL) {
            merger_free(m);
            return NULL;
        }
    }
    return m;
}

/*
 * The smallest current row; the file it came from is read on at the next
 * call, so the row stays valid until then.
 */
int
merger_next(merger *m, const sh_value **row, sh_err *err)
{
    int rc;

    if (m->failed)
        return sh_err_set(err, m->failed, "", "merge: an earlier read failed");
    if (!m->started) {
        m->started = 1;
        for (size_t i = 0; i < m->n; i++) {
            if (m->bounds != NULL && m->bounds->empty)
                break;
            rc = first_row(m, i, err);
            if (rc < 0)
                return m->failed = rc;
            if (rc == 1) {
                m->pfx[i] = merge_prefix(m, m->cur[i]);
                m->heap[m->heap_n++] = i;
            }
        }
        for (size_t i = m->heap_n / 2; i-- > 0;)
            merger_sift_down(m, i);
    } else if (m->advance) {
        size_t top = m->heap[0];

        rc = rowfile_next(m->rd[top], &m->cur[top], err);
        if (rc < 0)
            return m->failed = rc;
        if (rc == 1)
            m->pfx[top] = merge_prefix(m, m->cur[top]);
        else
            m->heap[0] = m->heap[--m->heap_n];
        if (m->heap_n > 0)
            merger_sift_down(m, 0);
    }
    m->advance = 0;
    if (m->heap_n > 0 && m->bounds != NULL && m->bounds->hi != NULL
        && rows_cmp(m->cur[m->heap[0]], m->bounds->hi, m->keys, m->n_keys) >= 0)
        m->heap_n = 0; /* past the part: the end */
    if (m->heap_n == 0)
        return 0;
    m->advance = 1;
    *row = m->cur[m->heap[0]];
    return 1;
}

void
merger_free(merger *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        rowfile_free(m->rd[i]);
    free(m->rd);
    free(m->cur);
    free(m->pfx);
    free(m->heap);
    free(m->keys);
    free(m);
}

/* Merge 'paths' into one row file 'out_path'; see sort_int.h. */
int
sort_merge_files(const char *const *paths, size_t n, const sort_key *keys,
                 size_t n_keys, uint64_t limit, const char *out_path,
                 sh_err *err)
{
    merger         *m = merger_new(paths, n, keys, n_keys, err);
    rowfile_writer *w = NULL;
    const sh_value *row;
    uint64_t        rows = 0;
    int             rc = SH_EIO;

    if (m == NULL)
        return SH_EIO;
    w = rowfile_create(out_path, n > 0 ? rowfile_cols(m->rd[0]) : 0, err);
    if (w == NULL)
        goto done;
    while (limit == 0 || rows < limit) {
        rc = merger_next(m, &row, err);
        if (rc <= 0)
            break;
        rc = rowfile_write(w, row, err);
        if (rc < 0)
            break;
        rows++;
    }
    if (rc < 0) {
        rowfile_abort(w);
        goto done;
    }
    rc = rowfile_close(w, err);

done:
    merger_free(m);
    return rc;
}
