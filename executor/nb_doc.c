/*
 * nb_doc.c - what naive Bayes training, its model and its report share
 * about labels and documents: the label table (labels interned to dense
 * ids), the byte order of labels, and a document's sorted, folded hash
 * buckets. The lowest of the nb files: it calls none of them.
 */
#include "nb.h"
#include "nb_int.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "../lib/util.h"

#define NB_LABEL_SEED 0x5bd1e995u /* seed of the label tables' hash */

/* ---- label tables ---------------------------------------------------- */

/* Frees what table 't' holds (not 't'). */
void
nb_ltab_free(ltab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->labels[i]);
    free(t->labels);
    free(t->lens);
    free(t->hashes);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* The slot of label 's' (hash 'h'): its id + 1 there, or an empty one. */
static size_t
ltab_slot(const ltab *t, const char *s, size_t n, uint32_t h)
{
    size_t mask = t->nslots - 1, i = h & mask;

    for (;;) {
        uint32_t v = t->slots[i];

        if (v == 0)
            return i;
        if (t->hashes[v - 1] == h && t->lens[v - 1] == n
            && (n == 0 || memcmp(t->labels[v - 1], s, n) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

/* The id of label 's', added (copied) when new; *added says which. */
uint32_t
nb_ltab_intern(ltab *t, const char *s, size_t n, int *added)
{
    uint32_t h = text_murmur3_32(s, n, NB_LABEL_SEED);
    size_t   i;

    if ((t->n + 1) * 2 > t->nslots) {
        size_t nslots = t->nslots ? t->nslots * 2 : 16;

        free(t->slots);
        t->slots = xcalloc(nslots, sizeof *t->slots);
        t->nslots = nslots;
        for (size_t id = 0; id < t->n; id++) {
            size_t j = t->hashes[id] & (nslots - 1);

            while (t->slots[j] != 0)
                j = (j + 1) & (nslots - 1);
            t->slots[j] = (uint32_t)id + 1;
        }
    }
    i = ltab_slot(t, s, n, h);
    if (t->slots[i] != 0) {
        *added = 0;
        return t->slots[i] - 1;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->labels = xrealloc(t->labels, t->cap * sizeof *t->labels);
        t->lens = xrealloc(t->lens, t->cap * sizeof *t->lens);
        t->hashes = xrealloc(t->hashes, t->cap * sizeof *t->hashes);
    }
    t->labels[t->n] = xmalloc(n + 1); /* labels may hold NUL bytes */
    if (n > 0)
        memcpy(t->labels[t->n], s, n);
    t->labels[t->n][n] = '\0';
    t->lens[t->n] = n;
    t->hashes[t->n] = h;
    t->slots[i] = (uint32_t)t->n + 1;
    *added = 1;
    return (uint32_t)t->n++;
}

/* Byte order of two labels: memcmp, a prefix first. */
int
nb_label_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

/* qsort order of two lrefs: nb_label_cmp of their bytes. */
int
nb_lref_cmp(const void *a, const void *b)
{
    const lref *x = a, *y = b;

    return nb_label_cmp(x->s, x->n, y->s, y->n);
}

/* ---- sorting a document's buckets ----------------------------------- */

/* Sort a[0..n) ascending: quicksort, median of three, insertion sort
 * below 16 elements; recursion only into the smaller side. */
static void
sort_u32(uint32_t *a, size_t n)
{
    while (n > 16) {
        uint32_t p, t;
        size_t   i, j, m = n / 2;

        if (a[m] < a[0]) {
            t = a[m];
            a[m] = a[0];
            a[0] = t;
        }
        if (a[n - 1] < a[0]) {
            t = a[n - 1];
            a[n - 1] = a[0];
            a[0] = t;
        }
        if (a[n - 1] < a[m]) {
            t = a[n - 1];
            a[n - 1] = a[m];
            a[m] = t;
        }
        p = a[m];
        i = 0;
        j = n - 1;
        for (;;) {
            while (a[i] < p)
                i++;
            while (p < a[j])
                j--;
            if (i >= j)
                break;
            t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
        /* a[0..j] <= p <= a[j+1..n) */
        if (j + 1 < n - j - 1) {
            sort_u32(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            sort_u32(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        size_t   j = i;

        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Frees the buffers of 'd' (not 'd'). */
void
nb_docbuf_free(docbuf *d)
{
    free(d->bk);
    free(d->cnt);
}

/*
 * The buckets of the tokens of text[0..n) (lowercased) in d->bk; returns
 * their number. Allocates only to grow d's buffers.
 */
size_t
nb_doc_buckets(docbuf *d, const char *text, size_t n, uint32_t features)
{
    if (n / 2 + 1 > d->cap) {
        d->cap = n / 2 + 1 > 2 * d->cap ? n / 2 + 1 : 2 * d->cap;
        d->bk = xrealloc(d->bk, d->cap * sizeof *d->bk);
        d->cnt = xrealloc(d->cnt, d->cap * sizeof *d->cnt);
    }
    return text_buckets(text, n, features, d->bk);
}

/*
 * The document's buckets, sorted, equal ones folded: afterwards
 * d->bk[0..m) are the distinct buckets ascending and d->cnt[0..m) their
 * counts. Returns m.
 */
size_t
nb_doc_pairs(docbuf *d, const char *text, size_t n, uint32_t features)
{
    size_t k = nb_doc_buckets(d, text, n, features), m = 0;

    sort_u32(d->bk, k);
    for (size_t i = 0; i < k; i++) {
        if (m > 0 && d->bk[m - 1] == d->bk[i]) {
            d->cnt[m - 1]++;
        } else {
            d->bk[m] = d->bk[i];
            d->cnt[m++] = 1;
        }
    }
    return m;
}
