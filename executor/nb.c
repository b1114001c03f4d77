/*
 * nb.c - multinomial naive Bayes on hashed token counts, trained out of
 * core (train_naive_bayes) and applied row by row (predict_naive_bayes).
 *
 * Partial half. A partial interns the labels of its training rows (in the
 * order they come) and counts tokens per (class, bucket): each class has
 * an open-addressing table (linear probing, load at most 1/2) of 8-byte
 * cells, bucket + 1 (0 marks an empty cell) and a 32-bit count; a count
 * that would pass 2^32 - 1 moves that much to a side list. A table per
 * class keeps a document's counting in a small, cached table. Texts are
 * cut and hashed by text_buckets (text.h). A held-out row is written at
 * once to "<prefix>.test", so memory holds only the counts. Both files
 * are row files (rowfile.h):
 *
 *   <prefix>.test    2 values a row: the label (string) and the document's
 *                    bucket counts (string: pairs of u32 bucket, u32 count,
 *                    little-endian, buckets ascending, each once)
 *   <prefix>.counts  4 values a row. First a header row: "nb-counts-1",
 *                    features (int), number of classes (int), the labels
 *                    (string: for each class, a u32 length and the bytes).
 *                    Then rows: class index (int), documents (int), tokens
 *                    (int), counts (string: pairs of u32 bucket, u64
 *                    count), at most NB_CHUNK_PAIRS pairs a row; a class's
 *                    documents and tokens are on its first row, 0 on the
 *                    others, and every class has at least one row.
 *
 * Final half. nb_train_final reads the header rows first, so it knows every
 * class before it reads a count: the classes are sorted in byte order and
 * the counts of every partial added into one dense matrix of doubles,
 * bucket-major (features x classes: the row of a bucket holds the classes
 * side by side, as the transposed matrix scikit-learn multiplies by), which
 * then becomes the model in place. The model is MultinomialNB's, computed
 * with the same operations in the same order, so its doubles are the same
 * bits (when numpy's log is the C library's, as on x86-64 without
 * AVX-512), and so are the predictions:
 *
 *   class_log_prior[c]  = log(docs_c) - log(docs)
 *   feature_log_prob[c][b] = log(n_cb + 1) - log(n_c + features)
 *   jll[c] = (sum over the document's buckets b, ascending, of
 *             x_b * feature_log_prob[c][b], starting from 0) + prior[c]
 *
 * (scipy's CSR times dense product adds a row's terms in index order, and
 * HashingVectorizer's rows are sorted) and the prediction is the first
 * class of the largest jll, as numpy's argmax. Counts are integers held in
 * doubles, exact below 2^53. A class that scikit-learn knows only from
 * test rows gets the prior log(0) = -inf there and is never predicted, so
 * leaving it out of the model changes no prediction.
 *
 * The model file ("model" artifact), integers and doubles little-endian:
 *   "SHNBMDL1", u32 features, u32 classes, for each class u32 length and
 *   label bytes (byte order), classes doubles of log priors, features x
 *   classes doubles of feature log probabilities (bucket-major).
 * The loader checks the magic and that the size is exactly right.
 */
#include "nb.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rowfile.h"
#include "text.h"
#include "../lib/util.h"

#define NB_COUNTS_MAGIC "nb-counts-1"
#define NB_MODEL_MAGIC  "SHNBMDL1"
#define NB_CHUNK_PAIRS  8192          /* pairs in one row of .counts */
#define NB_IO_BYTES     (1u << 16)    /* buffer of model and report I/O */
#define NB_MODEL_MAX    (16ull << 30) /* largest model matrix, bytes */
#define NB_LABEL_SEED   0x5bd1e995u   /* seed of the label tables' hash */

/* ---- little-endian encoding ---------------------------------------- */

static inline void
put_le32(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

static inline void
put_le64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

static inline uint32_t
get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t
get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- label tables ---------------------------------------------------- */

/*
 * Labels interned to dense ids 0, 1, ... in the order they are added: an
 * open-addressing table of id + 1 (0 is an empty slot) over a vector of
 * owned copies. Used for a partial's classes and for the labels met while
 * evaluating.
 */
typedef struct ltab {
    char    **labels; /* owned copies (NUL-terminated for convenience) */
    size_t   *lens;   /* their lengths in bytes */
    uint32_t *hashes; /* their hashes */
    size_t    n;      /* labels held */
    size_t    cap;    /* capacity of the vectors */
    uint32_t *slots;  /* id + 1, or 0; 'nslots' of them, a power of two */
    size_t    nslots;
} ltab;

static void
ltab_free(ltab *t)
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
        if (t->hashes[v - 1] == h && t->lens[v - 1] == n &&
            (n == 0 || memcmp(t->labels[v - 1], s, n) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

/* The id of label 's', added (copied) when new; *added says which. */
static uint32_t
ltab_intern(ltab *t, const char *s, size_t n, int *added)
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
static int
label_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
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

/* A document's buckets and the buffers that hold them, reused. */
typedef struct docbuf {
    uint32_t *bk;  /* the buckets, then the distinct ones ascending */
    uint32_t *cnt; /* the count of each distinct bucket */
    size_t    cap; /* capacity of bk and cnt */
} docbuf;

static void
docbuf_free(docbuf *d)
{
    free(d->bk);
    free(d->cnt);
}

/*
 * The buckets of the tokens of text[0..n) (lowercased) in d->bk; returns
 * their number. Allocates only to grow d's buffers.
 */
static size_t
doc_buckets(docbuf *d, const char *text, size_t n, uint32_t features)
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
static size_t
doc_pairs(docbuf *d, const char *text, size_t n, uint32_t features)
{
    size_t k = doc_buckets(d, text, n, features), m = 0;

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

/* ---- partials -------------------------------------------------------- */

/* One bucket's count in a class's table. */
typedef struct nb_cell {
    uint32_t key;   /* bucket + 1; 0: an empty cell */
    uint32_t count; /* tokens of the class in the bucket (see nb_extra) */
} nb_cell;

/* A class of a partial: its documents, tokens and counts table. */
typedef struct nb_ctab {
    nb_cell *cells;  /* open addressing, linear probing; 1 << bits cells */
    unsigned bits;   /* log2 of the number of cells */
    size_t   used;   /* cells in use */
    uint64_t docs;   /* training documents of the class */
    uint64_t tokens; /* their tokens */
} nb_ctab;

/* 2^32 - 1 tokens of a (class, bucket) moved out of a full 32-bit cell. */
typedef struct nb_extra {
    uint32_t cls;
    uint32_t bucket;
} nb_extra;

struct nb_partial {
    uint32_t        features;    /* hash buckets */
    char           *counts_path; /* "<prefix>.counts" (owned) */
    char           *test_path;   /* "<prefix>.test" (owned) */
    rowfile_writer *test;        /* held-out rows; NULL once closed */
    ltab            classes;     /* labels of the training rows */
    nb_ctab        *ct;          /* one per class (class_cap of them) */
    size_t          class_cap;   /* capacity of ct */
    nb_extra       *extra;       /* overflowed cells, each 2^32 - 1 */
    size_t          n_extra, extra_cap;
    docbuf          doc;  /* a document's buckets */
    unsigned char  *blob; /* encoded pairs of a held-out row */
    size_t          blob_cap;
    int             finished; /* nb_partial_finish was called */
};

static inline size_t
cell_slot(uint32_t key, unsigned bits)
{
    return (size_t)((key * 0x9e3779b1u) >> (32 - bits));
}

/* Double a class's table. */
static void
ctab_grow(nb_ctab *t)
{
    unsigned bits = t->bits + 1;
    size_t   n = (size_t)1 << bits, mask = n - 1;
    nb_cell *c = xcalloc(n, sizeof *c);

    for (size_t i = 0; i < ((size_t)1 << t->bits); i++) {
        size_t j;

        if (t->cells[i].key == 0)
            continue;
        j = cell_slot(t->cells[i].key, bits);
        while (c[j].key != 0)
            j = (j + 1) & mask;
        c[j] = t->cells[i];
    }
    free(t->cells);
    t->cells = c;
    t->bits = bits;
}

/*
 * Add 1 to the count of 'bucket' in class 'cls'. A class's table is small
 * (a few cells per distinct token of the class), so a document's counting
 * stays in cache. A count that would pass 2^32 - 1 is moved to np->extra.
 */
static inline void
cells_add(nb_partial *np, uint32_t cls, uint32_t bucket)
{
    nb_ctab *t = &np->ct[cls];
    uint32_t key = bucket + 1;
    size_t   mask = ((size_t)1 << t->bits) - 1;
    size_t   i = cell_slot(key, t->bits);

    for (;;) {
        nb_cell *c = &t->cells[i];

        if (c->key == key) {
            if (c->count == UINT32_MAX) {
                if (np->n_extra == np->extra_cap) {
                    np->extra_cap = np->extra_cap ? np->extra_cap * 2 : 16;
                    np->extra =
                        xrealloc(np->extra, np->extra_cap * sizeof *np->extra);
                }
                np->extra[np->n_extra].cls = cls;
                np->extra[np->n_extra++].bucket = bucket;
                c->count = 0;
            }
            c->count++;
            return;
        }
        if (c->key == 0)
            break;
        i = (i + 1) & mask;
    }
    /* A new cell: keep the load at most 1/2, growing first if needed. */
    if ((t->used + 1) * 2 > ((size_t)1 << t->bits)) {
        ctab_grow(t);
        mask = ((size_t)1 << t->bits) - 1;
        i = cell_slot(key, t->bits);
        while (t->cells[i].key != 0)
            i = (i + 1) & mask;
    }
    t->cells[i].key = key;
    t->cells[i].count = 1;
    t->used++;
}

/*
 * A partial writing "<prefix>.counts" and "<prefix>.test" ('prefix' is
 * copied). 'features' must be at least 1 (SH_EINVAL). NULL with SH_EIO when
 * the test file cannot be created. Free with nb_partial_free.
 */
nb_partial *
nb_partial_new(uint32_t features, const char *prefix, sh_err *err)
{
    nb_partial *np;

    if (features == 0) {
        sh_err_set(err, SH_EINVAL, "",
                   "naive Bayes needs at least 1 "
                   "feature bucket");
        return NULL;
    }
    np = xcalloc(1, sizeof *np);
    np->features = features;
    np->counts_path = xasprintf("%s.counts", prefix);
    np->test_path = xasprintf("%s.test", prefix);
    np->test = rowfile_create(np->test_path, 2, err);
    if (np->test == NULL) {
        nb_partial_free(np);
        return NULL;
    }
    return np;
}

/* Write a held-out row: the label and the document's sorted pairs. */
static int
partial_held_out(nb_partial *np, const char *label, size_t label_len,
                 const char *text, size_t text_len, sh_err *err)
{
    sh_value row[2];
    size_t   m = doc_pairs(&np->doc, text, text_len, np->features);

    if (m * 8 > np->blob_cap) {
        np->blob_cap = m * 16;
        np->blob = xrealloc(np->blob, np->blob_cap);
    }
    for (size_t i = 0; i < m; i++) {
        put_le32(np->blob + 8 * i, np->doc.bk[i]);
        put_le32(np->blob + 8 * i + 4, np->doc.cnt[i]);
    }
    row[0] = sh_str(label, label_len);
    row[1] = sh_str((const char *)np->blob, m * 8);
    return rowfile_write(np->test, row, err);
}

/*
 * Fold one row. A NULL 'label' is a null label: the row is skipped. A NULL
 * 'text' is an empty document. Held-out rows go to the test file (SH_EIO
 * when that fails); training rows only touch memory. SH_ESTATE after
 * nb_partial_finish.
 */
int
nb_partial_add(nb_partial *np, const char *label, size_t label_len,
               const char *text, size_t text_len, int held_out, sh_err *err)
{
    size_t   n;
    uint32_t cls;
    int      added;

    if (np->finished)
        return sh_err_set(err, SH_ESTATE, "",
                          "naive Bayes partial already finished");
    if (label == NULL)
        return 0;
    if (text == NULL)
        text_len = 0;
    if (held_out)
        return partial_held_out(np, label, label_len, text, text_len, err);

    cls = ltab_intern(&np->classes, label, label_len, &added);
    if (added) {
        if (np->classes.n > np->class_cap) {
            np->class_cap = np->classes.cap;
            np->ct = xrealloc(np->ct, np->class_cap * sizeof *np->ct);
        }
        memset(&np->ct[cls], 0, sizeof np->ct[cls]);
        np->ct[cls].bits = 8;
        np->ct[cls].cells = xcalloc(256, sizeof(nb_cell));
    }
    n = doc_buckets(&np->doc, text, text_len, np->features);
    np->ct[cls].docs++;
    np->ct[cls].tokens += n;
    for (size_t i = 0; i < n; i++)
        cells_add(np, cls, np->doc.bk[i]);
    return 0;
}

/* Bytes held in memory: the tables, the labels, the scratch buffers. */
size_t
nb_partial_bytes(const nb_partial *np)
{
    size_t b = sizeof *np + np->class_cap * sizeof *np->ct;

    for (size_t c = 0; c < np->classes.n; c++)
        b += ((size_t)1 << np->ct[c].bits) * sizeof(nb_cell);
    b += np->extra_cap * sizeof *np->extra;
    b += np->classes.cap * (sizeof(char *) + sizeof(size_t) + 4);
    b += np->classes.nslots * 4;
    for (size_t i = 0; i < np->classes.n; i++)
        b += np->classes.lens[i] + 1;
    b += np->doc.cap * 8 + np->blob_cap;
    return b;
}

/* Write the counts file: the header row, then each class's rows. */
static int
partial_write_counts(nb_partial *np, sh_err *err)
{
    rowfile_writer *w = NULL;
    strbuf          names = {0};
    size_t          k = np->classes.n;
    unsigned char  *pairs = NULL, hdr[4];
    sh_value        row[4];
    int             rc = 0;

    w = rowfile_create(np->counts_path, 4, err);
    if (w == NULL)
        return SH_EIO;
    for (size_t c = 0; c < k; c++) {
        put_le32(hdr, (uint32_t)np->classes.lens[c]);
        sb_append(&names, hdr, 4);
        sb_append(&names, np->classes.labels[c], np->classes.lens[c]);
    }
    row[0] = sh_str(NB_COUNTS_MAGIC, strlen(NB_COUNTS_MAGIC));
    row[1] = sh_int(np->features);
    row[2] = sh_int((int64_t)k);
    row[3] = sh_str(names.data ? names.data : "", names.len);
    rc = rowfile_write(w, row, err);
    if (rc != 0)
        goto done;

    /* Each class: its cells, then its overflowed counts, in chunks. */
    pairs = xmalloc(NB_CHUNK_PAIRS * 12);
    for (size_t c = 0; c < k && rc == 0; c++) {
        const nb_ctab *t = &np->ct[c];
        size_t         ncells = (size_t)1 << t->bits, i = 0, e = 0, m;
        int            first = 1;

        do {
            for (m = 0; m < NB_CHUNK_PAIRS && i < ncells; i++) {
                if (t->cells[i].key == 0)
                    continue;
                put_le32(pairs + 12 * m, t->cells[i].key - 1);
                put_le64(pairs + 12 * m + 4, t->cells[i].count);
                m++;
            }
            for (; m < NB_CHUNK_PAIRS && e < np->n_extra; e++) {
                if (np->extra[e].cls != c)
                    continue;
                put_le32(pairs + 12 * m, np->extra[e].bucket);
                put_le64(pairs + 12 * m + 4, UINT32_MAX);
                m++;
            }
            row[0] = sh_int((int64_t)c);
            row[1] = sh_int(first ? (int64_t)t->docs : 0);
            row[2] = sh_int(first ? (int64_t)t->tokens : 0);
            row[3] = sh_str((const char *)pairs, m * 12);
            rc = rowfile_write(w, row, err);
            first = 0;
        } while ((i < ncells || e < np->n_extra) && rc == 0);
    }
    if (rc == 0) {
        rc = rowfile_close(w, err);
        w = NULL;
    }

done:
    rowfile_abort(w);
    sb_free(&names);
    free(pairs);
    return rc;
}

/*
 * Complete the test file, then write the counts file; each is fsynced and
 * renamed into place. On failure neither file is left. Returns 0 or
 * SH_EIO; SH_ESTATE when called twice.
 */
int
nb_partial_finish(nb_partial *np, sh_err *err)
{
    int rc;

    if (np->finished)
        return sh_err_set(err, SH_ESTATE, "",
                          "naive Bayes partial already finished");
    np->finished = 1;
    rc = rowfile_close(np->test, err);
    np->test = NULL;
    if (rc != 0)
        return rc;
    rc = partial_write_counts(np, err);
    if (rc != 0)
        unlink(np->test_path);
    return rc;
}

/* Free 'np' (NULL-safe); an unfinished partial's files are removed. */
void
nb_partial_free(nb_partial *np)
{
    if (np == NULL)
        return;
    rowfile_abort(np->test); /* NULL-safe; removes the temporary file */
    for (size_t c = 0; c < np->classes.n; c++)
        free(np->ct[c].cells);
    ltab_free(&np->classes);
    free(np->ct);
    free(np->extra);
    docbuf_free(&np->doc);
    free(np->blob);
    free(np->counts_path);
    free(np->test_path);
    free(np);
}

/* ---- the model ------------------------------------------------------- */

/* Per-call buffers of nb_model_predict (the model is const to callers). */
typedef struct nb_scratch {
    docbuf  doc; /* the document's buckets */
    double *jll; /* one per class */
} nb_scratch;

struct nb_model {
    uint32_t    features;  /* hash buckets */
    uint32_t    n_classes; /* classes, in byte order */
    char      **labels;    /* n_classes labels (owned, NUL-terminated) */
    size_t     *lens;      /* their lengths */
    double     *prior;     /* n_classes log priors */
    double     *flp;       /* features x n_classes log probs, bucket-major */
    nb_scratch *scr;       /* owned; makes the model single-threaded */
};

/* A model over 'k' classes with empty arrays except flp (set by caller). */
static nb_model *
model_new(uint32_t features, uint32_t k)
{
    nb_model *m = xcalloc(1, sizeof *m);

    m->features = features;
    m->n_classes = k;
    m->labels = xcalloc(k ? k : 1, sizeof *m->labels);
    m->lens = xcalloc(k ? k : 1, sizeof *m->lens);
    m->prior = xcalloc(k ? k : 1, sizeof *m->prior);
    m->scr = xcalloc(1, sizeof *m->scr);
    m->scr->jll = xcalloc(k ? k : 1, sizeof *m->scr->jll);
    return m;
}

void
nb_model_free(nb_model *m)
{
    if (m == NULL)
        return;
    for (uint32_t k = 0; k < m->n_classes; k++)
        free(m->labels[k]);
    free(m->labels);
    free(m->lens);
    free(m->prior);
    free(m->flp);
    if (m->scr != NULL) {
        docbuf_free(&m->scr->doc);
        free(m->scr->jll);
        free(m->scr);
    }
    free(m);
}

uint32_t
nb_model_features(const nb_model *m)
{
    return m->features;
}

/*
 * jll[k] += x * flp[b][k] for every class: one term of the product, a
 * multiply then an add, as scipy's loop. A fused multiply-add would round
 * once instead of twice; -std=c11 keeps GCC from contracting (it implies
 * -ffp-contract=off), so do not build this file in a GNU mode with FMA
 * enabled (-march=native) if predictions must match scikit-learn's.
 */
static inline void
model_term(const nb_model *m, double *jll, uint32_t b, double x)
{
    const double *row = m->flp + (size_t)b * m->n_classes;

    for (uint32_t k = 0; k < m->n_classes; k++)
        jll[k] += x * row[k];
}

/* The first class of the largest jll[k] + prior[k]. */
static uint32_t
model_argmax(const nb_model *m, const double *jll)
{
    uint32_t best = 0;
    double   bv = jll[0] + m->prior[0];

    for (uint32_t k = 1; k < m->n_classes; k++) {
        double v = jll[k] + m->prior[k];

        if (v > bv) {
            bv = v;
            best = k;
        }
    }
    return best;
}

/*
 * The predicted class of 'text' (n bytes; NULL is an empty document): its
 * label, *len bytes, owned by the model. Allocates only when a document
 * has more tokens or a longer token than any before. Not thread-safe: the
 * model holds the scratch buffers.
 */
const char *
nb_model_predict(const nb_model *m, const char *text, size_t n, size_t *len)
{
    nb_scratch *s = m->scr;
    size_t      nd;
    uint32_t    c;

    if (text == NULL)
        n = 0;
    nd = doc_pairs(&s->doc, text, n, m->features);
    memset(s->jll, 0, m->n_classes * sizeof *s->jll);
    for (size_t i = 0; i < nd; i++)
        model_term(m, s->jll, s->doc.bk[i], (double)s->doc.cnt[i]);
    c = model_argmax(m, s->jll);
    *len = m->lens[c];
    return m->labels[c];
}

/* ---- files written whole: temporary name, fsync, rename ------------- */

/* A file written through a buffer under "<path>.tmp", then renamed. */
typedef struct afile {
    int            fd;   /* the temporary file, or -1 */
    char          *path; /* final path (owned) */
    char          *tmp;  /* temporary path (owned) */
    unsigned char *buf;  /* bytes not yet written */
    size_t         len;
    int            errnum; /* errno of the first failed write, or 0 */
} afile;

static int
afile_open(afile *f, const char *path, sh_err *err)
{
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    f->tmp = xasprintf("%s.tmp", path);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;

        free(f->path);
        free(f->tmp);
        return sh_err_set(err, SH_EIO, "", "cannot create %s: %s", path,
                          strerror(e));
    }
    f->buf = xmalloc(NB_IO_BYTES);
    return 0;
}

static void
afile_flush(afile *f)
{
    size_t off = 0;

    while (off < f->len && f->errnum == 0) {
        ssize_t k = write(f->fd, f->buf + off, f->len - off);

        if (k < 0) {
            if (errno != EINTR)
                f->errnum = errno;
            continue;
        }
        off += (size_t)k;
    }
    f->len = 0;
}

/* Append bytes; a write error is remembered for afile_commit. */
static void
afile_put(afile *f, const void *p, size_t n)
{
    const unsigned char *c = p;

    while (n > 0) {
        size_t k = NB_IO_BYTES - f->len < n ? NB_IO_BYTES - f->len : n;

        memcpy(f->buf + f->len, c, k);
        f->len += k;
        c += k;
        n -= k;
        if (f->len == NB_IO_BYTES)
            afile_flush(f);
    }
}

static void
afile_release(afile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->tmp);
    free(f->buf);
    f->fd = -1;
    f->path = f->tmp = NULL;
    f->buf = NULL;
}

/* Remove the temporary file and free. */
static void
afile_abort(afile *f)
{
    if (f->tmp != NULL)
        unlink(f->tmp);
    afile_release(f);
}

/*
 * Flush, fsync, close, rename into place and fsync the directory. Frees
 * 'f' whatever happens; on failure the temporary file is removed. Returns
 * 0 or SH_EIO naming the call that failed.
 */
static int
afile_commit(afile *f, sh_err *err)
{
    const char *call = NULL;
    int         e = 0;

    afile_flush(f);
    if (f->errnum != 0) {
        call = "write";
        e = f->errnum;
    } else if (fsync(f->fd) != 0) {
        call = "fsync";
        e = errno;
    }
    if (close(f->fd) != 0 && call == NULL) {
        call = "close";
        e = errno;
    }
    f->fd = -1;
    if (call == NULL && rename(f->tmp, f->path) != 0) {
        call = "rename";
        e = errno;
    }
    if (call != NULL) {
        sh_err_set(err, SH_EIO, "", "cannot %s %s: %s", call, f->tmp,
                   strerror(e));
        afile_abort(f);
        return SH_EIO;
    }
    (void)util_sync_dir(f->path); /* best effort: some file systems refuse it */
    afile_release(f);
    return 0;
}

/* Append n doubles, little-endian. */
static void
put_doubles(afile *f, const double *d, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    afile_put(f, d, n * sizeof *d);
#else
    for (size_t i = 0; i < n; i++) {
        unsigned char b[8];
        uint64_t      bits;

        memcpy(&bits, &d[i], 8);
        put_le64(b, bits);
        afile_put(f, b, 8);
    }
#endif
}

/* Write 'm' to 'path' in the model format (see the file comment). */
static int
model_write(const nb_model *m, const char *path, sh_err *err)
{
    afile         f;
    unsigned char b[8];
    size_t        total = (size_t)m->features * m->n_classes;
    int           rc;

    rc = afile_open(&f, path, err);
    if (rc != 0)
        return rc;
    afile_put(&f, NB_MODEL_MAGIC, 8);
    put_le32(b, m->features);
    put_le32(b + 4, m->n_classes);
    afile_put(&f, b, 8);
    for (uint32_t k = 0; k < m->n_classes; k++) {
        put_le32(b, (uint32_t)m->lens[k]);
        afile_put(&f, b, 4);
        afile_put(&f, m->labels[k], m->lens[k]);
    }
    put_doubles(&f, m->prior, m->n_classes);
    put_doubles(&f, m->flp, total);
    return afile_commit(&f, err);
}

/* Read exactly 'n' bytes; 0, 1 at a premature end, -1 (errno) on error. */
static int
read_full(int fd, void *p, size_t n)
{
    unsigned char *c = p;

    while (n > 0) {
        ssize_t k = read(fd, c, n);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            return 1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Doubles read as little-endian bytes into host order, in place. */
static void
from_le(double *d, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)d;
    (void)n;
#else
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = get_le64((const unsigned char *)&d[i]);

        memcpy(&d[i], &bits, 8);
    }
#endif
}

/*
 * Load a model file written by nb_train_final. NULL with SH_EIO (cannot
 * open or read) or SH_EDATA (not a model, or cut short or extended).
 * Free with nb_model_free.
 */
nb_model *
nb_model_load(const char *path, sh_err *err)
{
    nb_model     *m = NULL;
    unsigned char hdr[16];
    struct stat   st;
    uint64_t      size, need;
    uint32_t      features, k;
    size_t        total;
    int           fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        sh_err_set(err, SH_EIO, "", "cannot open model %s: %s", path,
                   strerror(errno));
        goto fail;
    }
    size = (uint64_t)st.st_size;
    r = read_full(fd, hdr, 16);
    if (r < 0)
        goto read_error;
    if (r > 0 || memcmp(hdr, NB_MODEL_MAGIC, 8) != 0) {
        sh_err_set(err, SH_EDATA, "", "%s is not a naive Bayes model", path);
        goto fail;
    }
    features = get_le32(hdr + 8);
    k = get_le32(hdr + 12);
    /* The labels take at least 4 bytes each, the doubles 8: bound k and
     * features by the size before allocating anything. */
    if (features == 0 || k == 0 || (uint64_t)k * 12 > size ||
        (uint64_t)features * k > size / 8) {
        sh_err_set(err, SH_EDATA, "",
                   "model %s is corrupt: %" PRIu32 " features, %" PRIu32
                   " classes in %" PRIu64 " bytes",
                   path, features, k, size);
        goto fail;
    }
    m = model_new(features, k);
    need = 16;
    for (uint32_t c = 0; c < k; c++) {
        unsigned char lb[4];
        uint32_t      len;

        r = read_full(fd, lb, 4);
        if (r < 0)
            goto read_error;
        len = get_le32(lb);
        need += 4 + (uint64_t)len;
        if (r > 0 || need > size)
            goto truncated;
        m->labels[c] = xmalloc((size_t)len + 1);
        m->lens[c] = len;
        r = read_full(fd, m->labels[c], len);
        if (r < 0)
            goto read_error;
        if (r > 0)
            goto truncated;
        m->labels[c][len] = '\0';
        if (c > 0 && label_cmp(m->labels[c - 1], m->lens[c - 1], m->labels[c],
                               len) >= 0) {
            sh_err_set(err, SH_EDATA, "",
                       "model %s is corrupt: its "
                       "classes are not in byte order",
                       path);
            goto fail;
        }
    }
    total = (size_t)features * k;
    need += 8 * ((uint64_t)k + total);
    if (need != size)
        goto truncated;
    m->flp = xmalloc(total * sizeof *m->flp);
    r = read_full(fd, m->prior, k * sizeof *m->prior);
    if (r == 0)
        r = read_full(fd, m->flp, total * sizeof *m->flp);
    if (r < 0)
        goto read_error;
    if (r > 0)
        goto truncated;
    from_le(m->prior, k);
    from_le(m->flp, total);
    close(fd);
    return m;

read_error:
    sh_err_set(err, SH_EIO, "", "cannot read model %s: %s", path,
               strerror(errno));
    goto fail;
truncated:
    sh_err_set(err, SH_EDATA, "",
               "model %s is truncated or corrupt (%" PRIu64 " bytes)", path,
               size);
fail:
    if (fd >= 0)
        close(fd);
    nb_model_free(m);
    return NULL;
}

/* ---- the final half -------------------------------------------------- */

/* What nb_train_final knows of one partial. */
typedef struct part {
    char     *counts; /* "<prefix>.counts" (owned) */
    char     *test;   /* "<prefix>.test" (owned) */
    char     *names;  /* the header row's labels blob (owned) */
    size_t    n;      /* classes of the partial */
    uint32_t *map;    /* its class index -> the model's class index */
} part;

/* A label, for sorting labels. */
typedef struct lref {
    const char *s;  /* its bytes (borrowed) */
    size_t      n;  /* their number */
    size_t      id; /* where it came from, for who sorts them */
} lref;

static int
lref_cmp(const void *a, const void *b)
{
    const lref *x = a, *y = b;

    return label_cmp(x->s, x->n, y->s, y->n);
}

static int
counts_corrupt(const char *path, const char *what, sh_err *err)
{
    return sh_err_set(err, SH_EDATA, "",
                      "naive Bayes partial %s is corrupt: %s", path, what);
}

/*
 * Read the header row of a partial's counts file: check it, copy its
 * labels into p->names and append a reference to each to *refs.
 */
static int
read_header(part *p, uint32_t features, lref **refs, size_t *nrefs, size_t *cap,
            sh_err *err)
{
    rowfile_reader      *r;
    const sh_value      *row;
    const unsigned char *q, *end;
    size_t               len;
    int                  rc;

    r = rowfile_open_buf(p->counts, 4096, err);
    if (r == NULL)
        return err ? err->code : SH_EIO;
    rc = rowfile_next(r, &row, err);
    if (rc < 0)
        goto done;
    if (rc == 0 || rowfile_cols(r) != 4 || row[0].type != SH_STRING ||
        row[0].u.s.len != strlen(NB_COUNTS_MAGIC) ||
        memcmp(row[0].u.s.ptr, NB_COUNTS_MAGIC, row[0].u.s.len) != 0 ||
        row[1].type != SH_INT || row[2].type != SH_INT ||
        row[3].type != SH_STRING) {
        rc = counts_corrupt(p->counts, "no header row", err);
        goto done;
    }
    if (row[1].u.i != (int64_t)features) {
        rc = sh_err_set(err, SH_EDATA, "",
                        "naive Bayes partial %s has %" PRId64
                        " features, not %" PRIu32,
                        p->counts, row[1].u.i, features);
        goto done;
    }
    if (row[2].u.i < 0 || (uint64_t)row[2].u.i > row[3].u.s.len / 4) {
        rc = counts_corrupt(p->counts, "bad class count", err);
        goto done;
    }
    p->n = (size_t)row[2].u.i;
    len = row[3].u.s.len;
    p->names = xmalloc(len + 1);
    memcpy(p->names, row[3].u.s.ptr, len);
    p->map = xcalloc(p->n ? p->n : 1, sizeof *p->map);
    q = (const unsigned char *)p->names;
    end = q + len;
    for (size_t c = 0; c < p->n; c++) {
        uint32_t l;

        if (end - q < 4 || (l = get_le32(q), (size_t)(end - q - 4) < l)) {
            rc = counts_corrupt(p->counts, "labels cut short", err);
            goto done;
        }
        if (*nrefs == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *refs = xrealloc(*refs, *cap * sizeof **refs);
        }
        (*refs)[*nrefs].s = (const char *)q + 4;
        (*refs)[(*nrefs)++].n = l;
        q += 4 + l;
    }
    rc = 0;

done:
    rowfile_free(r);
    return rc;
}

/* The index of label (s, n) among the model's sorted classes, or -1. */
static long
model_find(const nb_model *m, const char *s, size_t n)
{
    size_t lo = 0, hi = m->n_classes;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int    c = label_cmp(m->labels[mid], m->lens[mid], s, n);

        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/*
 * Add the counts of partial 'p' into m->flp (still counts) and the
 * documents and tokens per class into docs[] and tokens[], summing the
 * pairs into sums[] to check the file against itself.
 */
static int
read_counts(const part *p, nb_model *m, uint64_t *docs, uint64_t *tokens,
            uint64_t *sums, sh_err *err)
{
    rowfile_reader *r;
    const sh_value *row;
    uint32_t        k = m->n_classes;
    int             rc;

    r = rowfile_open(p->counts, err);
    if (r == NULL)
        return err ? err->code : SH_EIO;
    rc = rowfile_next(r, &row, err); /* the header, read before */
    while (rc > 0 && (rc = rowfile_next(r, &row, err)) > 0) {
        const unsigned char *q;
        size_t               npairs;
        uint32_t             g;

        if (row[0].type != SH_INT || row[1].type != SH_INT ||
            row[2].type != SH_INT || row[3].type != SH_STRING ||
            row[0].u.i < 0 || (uint64_t)row[0].u.i >= p->n || row[1].u.i < 0 ||
            row[2].u.i < 0 || row[3].u.s.len % 12 != 0) {
            rc = counts_corrupt(p->counts, "bad count row", err);
            break;
        }
        g = p->map[row[0].u.i];
        docs[g] += (uint64_t)row[1].u.i;
        tokens[g] += (uint64_t)row[2].u.i;
        q = (const unsigned char *)row[3].u.s.ptr;
        npairs = row[3].u.s.len / 12;
        for (size_t i = 0; i < npairs; i++, q += 12) {
            uint32_t b = get_le32(q);
            uint64_t c = get_le64(q + 4);

            if (b >= m->features) {
                rc = counts_corrupt(p->counts, "bucket out of range", err);
                break;
            }
            m->flp[(size_t)b * k + g] += (double)c;
            sums[g] += c;
        }
        if (rc < 0)
            break;
    }
    rowfile_free(r);
    return rc < 0 ? rc : 0;
}

/*
 * Turn the merged counts in m->flp into log probabilities and set the
 * priors, with MultinomialNB's operations (see the file comment).
 */
static void
model_fit(nb_model *m, const uint64_t *docs, const uint64_t *tokens)
{
    uint32_t k = m->n_classes;
    uint64_t all = 0;
    double   log_all, *log_cc = xmalloc(k * sizeof *log_cc);

    for (uint32_t c = 0; c < k; c++)
        all += docs[c];
    log_all = log((double)all);
    for (uint32_t c = 0; c < k; c++) {
        m->prior[c] = log((double)docs[c]) - log_all;
        log_cc[c] = log((double)(tokens[c] + m->features));
    }
    for (size_t b = 0; b < m->features; b++) {
        double *row = m->flp + b * k;

        for (uint32_t c = 0; c < k; c++) {
            double n = row[c];

            /* log(0 + 1) is exactly 0: skip the call for empty cells. */
            row[c] = (n == 0 ? 0.0 : log(n + 1.0)) - log_cc[c];
        }
    }
    free(log_cc);
}

/* A JSON string of a label; bytes that are not UTF-8 become U+FFFD. */
static json_t *
json_label(const char *s, size_t n, strbuf *tmp)
{
    json_t              *j = json_stringn(s, n);
    const unsigned char *u = (const unsigned char *)s;

    if (j != NULL)
        return j;
    sb_reset(tmp);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i], need, cp;
        size_t   k;

        need = c < 0x80                ? 0
               : c >= 0xc2 && c < 0xe0 ? 1
               : c >= 0xe0 && c < 0xf0 ? 2
               : c >= 0xf0 && c < 0xf5 ? 3
                                       : 9;
        cp = need == 1 ? c & 0x1f : need == 2 ? c & 0x0f : c & 0x07;
        for (k = 1; need != 9 && k <= need; k++) {
            if (i + k >= n || (u[i + k] & 0xc0) != 0x80)
                break;
            cp = cp << 6 | (u[i + k] & 0x3f);
        }
        if (need == 9 || k <= need || (need == 2 && cp < 0x800) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp < 0xe000)) {
            sb_append(tmp, "\xef\xbf\xbd", 3);
            i++;
            continue;
        }
        sb_append(tmp, s + i, need + 1);
        i += need + 1;
    }
    j = json_stringn(tmp->data ? tmp->data : "", tmp->len);
    return j != NULL ? j : json_string("\xef\xbf\xbd");
}

/* A JSON real, or null for NaN and infinities (JSON has none). */
static json_t *
json_num(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

/* Precision, recall, F1 and support of one label, as scikit-learn with
 * zero_division=0. */
static json_t *
json_prf(uint64_t tp, uint64_t predicted, uint64_t support, double *p,
         double *r, double *f)
{
    json_t *o = json_object();

    *p = predicted ? (double)tp / (double)predicted : 0.0;
    *r = support ? (double)tp / (double)support : 0.0;
    *f = *p + *r == 0.0 ? 0.0 : 2.0 * *p * *r / (*p + *r);
    json_object_set_new(o, "precision", json_real(*p));
    json_object_set_new(o, "recall", json_real(*r));
    json_object_set_new(o, "f1", json_real(*f));
    json_object_set_new(o, "support", json_integer((json_int_t)support));
    return o;
}

/*
 * Write the report: 'labels' (nl of them, the model's classes first, then
 * labels met only in test rows) with their confusion rows conf[t * k + p]
 * (t a label, p a model class).
 */
static int
write_report(const nb_model *m, const ltab *labels, const uint64_t *conf,
             const nb_result *res, const char *path, sh_err *err)
{
    size_t    nl = labels->n, k = m->n_classes;
    size_t   *order = xmalloc((nl ? nl : 1) * sizeof *order);
    lref     *sorted = xmalloc((nl ? nl : 1) * sizeof *sorted);
    uint64_t *pred = xcalloc(k ? k : 1, sizeof *pred);
    json_t   *root = json_object(), *classes = json_array();
    json_t   *per = json_object(), *cl = json_array(), *mat = json_array();
    json_t   *conf_o = json_object(), *o;
    strbuf    tmp = {0};
    char     *text = NULL;
    double    sp = 0, sr = 0, sf = 0, wp = 0, wr = 0, wf = 0;
    uint64_t  total = 0;
    afile     f;
    int       rc;

    for (size_t i = 0; i < nl; i++) {
        sorted[i].s = labels->labels[i];
        sorted[i].n = labels->lens[i];
        sorted[i].id = i;
    }
    if (nl > 0)
        qsort(sorted, nl, sizeof *sorted, lref_cmp);
    for (size_t i = 0; i < nl; i++)
        order[i] = sorted[i].id;
    for (size_t t = 0; t < nl; t++)
        for (size_t p = 0; p < k; p++)
            pred[p] += conf[t * k + p];

    json_object_set_new(root, "accuracy", json_num(res->accuracy));
    json_object_set_new(root, "n_train",
                        json_integer((json_int_t)res->n_train));
    json_object_set_new(root, "n_test", json_integer((json_int_t)res->n_test));
    json_object_set_new(root, "features", json_integer(m->features));
    for (size_t c = 0; c < k; c++)
        json_array_append_new(classes,
                              json_label(m->labels[c], m->lens[c], &tmp));
    json_object_set_new(root, "classes", classes);

    for (size_t i = 0; i < nl; i++) {
        size_t   t = order[i];
        uint64_t support = 0, tp = 0, predicted = t < k ? pred[t] : 0;
        json_t  *row = json_array(), *key;
        double   p, r, f1;

        for (size_t j = 0; j < nl; j++) {
            size_t   u = order[j];
            uint64_t v = u < k ? conf[t * k + u] : 0;

            json_array_append_new(row, json_integer((json_int_t)v));
            support += v;
        }
        if (t < k)
            tp = conf[t * k + t];
        key = json_label(labels->labels[t], labels->lens[t], &tmp);
        json_array_append_new(cl, key);
        json_array_append_new(mat, row);
        json_object_setn_new_nocheck(
            per, json_string_value(key), json_string_length(key),
            json_prf(tp, predicted, support, &p, &r, &f1));
        sp += p;
        sr += r;
        sf += f1;
        wp += p * (double)support;
        wr += r * (double)support;
        wf += f1 * (double)support;
        total += support;
    }
    json_object_set_new(root, "per_class", per);
    o = json_object();
    json_object_set_new(o, "precision", json_num(nl ? sp / (double)nl : NAN));
    json_object_set_new(o, "recall", json_num(nl ? sr / (double)nl : NAN));
    json_object_set_new(o, "f1", json_num(nl ? sf / (double)nl : NAN));
    json_object_set_new(o, "support", json_integer((json_int_t)total));
    json_object_set_new(root, "macro_avg", o);
    o = json_object();
    json_object_set_new(o, "precision", json_num(wp / (double)total));
    json_object_set_new(o, "recall", json_num(wr / (double)total));
    json_object_set_new(o, "f1", json_num(wf / (double)total));
    json_object_set_new(o, "support", json_integer((json_int_t)total));
    json_object_set_new(root, "weighted_avg", o);
    json_object_set_new(conf_o, "labels", cl);
    json_object_set_new(conf_o, "matrix", mat);
    json_object_set_new(root, "confusion", conf_o);

    text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    rc = afile_open(&f, path, err);
    if (rc == 0) {
        afile_put(&f, text, strlen(text));
        afile_put(&f, "\n", 1);
        rc = afile_commit(&f, err);
    }
    free(text);
    json_decref(root);
    sb_free(&tmp);
    free(order);
    free(sorted);
    free(pred);
    return rc;
}

/*
 * Stream the held-out rows of every partial through the model: count the
 * rows and the correct ones, and fill the confusion rows (*conf, grown as
 * labels unknown to the model appear in 'labels').
 */
static int
evaluate(const nb_model *m, const part *parts, size_t n, ltab *labels,
         uint64_t **conf, size_t *conf_rows, nb_result *res, sh_err *err)
{
    double  *jll = m->scr->jll;
    uint32_t k = m->n_classes;
    uint64_t correct = 0;
    int      rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        rowfile_reader *r = rowfile_open(parts[i].test, err);
        const sh_value *row;

        if (r == NULL)
            return err ? err->code : SH_EIO;
        if (rowfile_cols(r) != 2) {
            rowfile_free(r);
            return sh_err_set(err, SH_EDATA, "",
                              "naive Bayes partial %s "
                              "is corrupt: not 2 columns",
                              parts[i].test);
        }
        while ((rc = rowfile_next(r, &row, err)) > 0) {
            const unsigned char *q;
            uint32_t             t, p, prev = 0;
            int                  added;

            if (row[0].type != SH_STRING || row[1].type != SH_STRING ||
                row[1].u.s.len % 8 != 0) {
                rc = sh_err_set(err, SH_EDATA, "",
                                "naive Bayes partial %s "
                                "is corrupt: bad row",
                                parts[i].test);
                break;
            }
            memset(jll, 0, k * sizeof *jll);
            q = (const unsigned char *)row[1].u.s.ptr;
            for (size_t j = 0; j < row[1].u.s.len / 8; j++, q += 8) {
                uint32_t b = get_le32(q);

                if (b >= m->features || (j > 0 && b <= prev)) {
                    rc = sh_err_set(err, SH_EDATA, "",
                                    "naive Bayes partial "
                                    "%s is corrupt: bad bucket",
                                    parts[i].test);
                    break;
                }
                prev = b;
                model_term(m, jll, b, (double)get_le32(q + 4));
            }
            if (rc < 0)
                break;
            p = model_argmax(m, jll);
            t = ltab_intern(labels, row[0].u.s.ptr, row[0].u.s.len, &added);
            if (t >= *conf_rows) {
                size_t old = *conf_rows;

                *conf_rows = old * 2;
                *conf = xrealloc(*conf, *conf_rows * k * sizeof **conf);
                memset(*conf + old * k, 0,
                       (*conf_rows - old) * k * sizeof **conf);
            }
            (*conf)[(size_t)t * k + p]++;
            correct += t == p;
            res->n_test++;
        }
        rowfile_free(r);
    }
    if (rc < 0)
        return rc;
    res->accuracy = res->n_test ? (double)correct / (double)res->n_test : NAN;
    return 0;
}

/*
 * The final half (see nb.h): merge, fit, evaluate, write the artifacts.
 */
int
nb_train_final(uint32_t features, const char *const *prefixes, size_t n,
               const char *artifacts_dir, nb_result *res, sh_err *err)
{
    part     *parts = xcalloc(n ? n : 1, sizeof *parts);
    lref     *refs = NULL;
    size_t    nrefs = 0, refs_cap = 0, k = 0, conf_rows = 0;
    nb_model *m = NULL;
    uint64_t *docs = NULL, *tokens = NULL, *sums = NULL, *conf = NULL;
    ltab      labels = {0};
    char     *path = NULL;
    int       rc = 0, added;

    memset(res, 0, sizeof *res);
    if (features == 0) {
        rc = sh_err_set(err, SH_EINVAL, "",
                        "naive Bayes needs at least 1 "
                        "feature bucket");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        parts[i].counts = xasprintf("%s.counts", prefixes[i]);
        parts[i].test = xasprintf("%s.test", prefixes[i]);
        rc = read_header(&parts[i], features, &refs, &nrefs, &refs_cap, err);
        if (rc != 0)
            goto done;
    }

    /* The classes: every partial's labels, sorted, each once. */
    if (nrefs > 0)
        qsort(refs, nrefs, sizeof *refs, lref_cmp);
    for (size_t i = 0; i < nrefs; i++)
        if (k == 0 || lref_cmp(&refs[k - 1], &refs[i]) != 0)
            refs[k++] = refs[i];
    if (k == 0) {
        rc = sh_err_set(err, SH_EDATA, "",
                        "no training rows: every row was "
                        "held out or had a null label");
        goto done;
    }
    if (k > UINT32_MAX - 1 || (uint64_t)k * features > NB_MODEL_MAX / 8) {
        rc = sh_err_set(err, SH_ERANGE, "",
                        "the naive Bayes model would "
                        "take %zu classes x %" PRIu32 " features x 8 bytes: "
                        "more than %llu GiB; use fewer features",
                        k, features, NB_MODEL_MAX >> 30);
        goto done;
    }
    m = model_new(features, (uint32_t)k);
    for (size_t c = 0; c < k; c++) {
        m->labels[c] = xmalloc(refs[c].n + 1);
        if (refs[c].n > 0)
            memcpy(m->labels[c], refs[c].s, refs[c].n);
        m->labels[c][refs[c].n] = '\0';
        m->lens[c] = refs[c].n;
    }
    for (size_t i = 0; i < n; i++) {
        const char *q = parts[i].names;

        for (size_t c = 0; c < parts[i].n; c++) {
            uint32_t l = get_le32((const unsigned char *)q);

            parts[i].map[c] = (uint32_t)model_find(m, q + 4, l);
            q += 4 + l;
        }
    }

    /* Merge the counts, check them, fit. */
    m->flp = xcalloc((size_t)features * k, sizeof *m->flp);
    docs = xcalloc(k, sizeof *docs);
    tokens = xcalloc(k, sizeof *tokens);
    sums = xcalloc(k, sizeof *sums);
    for (size_t i = 0; i < n; i++) {
        rc = read_counts(&parts[i], m, docs, tokens, sums, err);
        if (rc != 0)
            goto done;
    }
    for (size_t c = 0; c < k; c++) {
        if (sums[c] != tokens[c] || docs[c] == 0) {
            rc = sh_err_set(err, SH_EDATA, "",
                            "naive Bayes partials are "
                            "corrupt: class '%s' has %" PRIu64 " tokens in its "
                            "counts, %" PRIu64 " in its total, %" PRIu64
                            " documents",
                            m->labels[c], sums[c], tokens[c], docs[c]);
            goto done;
        }
        res->n_train += docs[c];
    }
    model_fit(m, docs, tokens);

    /* Evaluate: labels are the model's classes, then test-only ones. */
    for (size_t c = 0; c < k; c++)
        ltab_intern(&labels, m->labels[c], m->lens[c], &added);
    conf_rows = k * 2;
    conf = xcalloc(conf_rows * k, sizeof *conf);
    rc = evaluate(m, parts, n, &labels, &conf, &conf_rows, res, err);
    if (rc != 0)
        goto done;

    path = xasprintf("%s/model", artifacts_dir);
    rc = model_write(m, path, err);
    if (rc != 0)
        goto done;
    free(path);
    path = xasprintf("%s/report", artifacts_dir);
    rc = write_report(m, &labels, conf, res, path, err);

done:
    for (size_t i = 0; i < n; i++) {
        free(parts[i].counts);
        free(parts[i].test);
        free(parts[i].names);
        free(parts[i].map);
    }
    free(parts);
    free(refs);
    free(docs);
    free(tokens);
    free(sums);
    free(conf);
    free(path);
    ltab_free(&labels);
    nb_model_free(m);
    if (rc != 0) {
        memset(res, 0, sizeof *res);
        res->accuracy = NAN;
    }
    return rc;
}
