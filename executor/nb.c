/*
 * nb.c - multinomial naive Bayes on hashed token counts, trained out of
 * core (train_naive_bayes) and applied row by row (predict_naive_bayes):
 * the training half here (a partial's counts, and nb_train_final, which
 * merges, evaluates and writes); the model (merge, fit, file, predict) is
 * nb_model.c, the report of the held-out rows nb_report.c, the label table
 * and a document's buckets nb_doc.c, the buffered whole-file writer
 * nb_file.c.
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
 */
#include "nb.h"
#include "nb_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "rowfile.h"
#include "text.h"
#include "../lib/util.h"

#define NB_CHUNK_PAIRS 8192 /* pairs in one row of .counts */

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
                    np->extra = xrealloc(np->extra,
                                         np->extra_cap * sizeof *np->extra);
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
    size_t   m = nb_doc_pairs(&np->doc, text, text_len, np->features);

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

    cls = nb_ltab_intern(&np->classes, label, label_len, &added);
    if (added) {
        if (np->classes.n > np->class_cap) {
            np->class_cap = np->classes.cap;
            np->ct = xrealloc(np->ct, np->class_cap * sizeof *np->ct);
        }
        memset(&np->ct[cls], 0, sizeof np->ct[cls]);
        np->ct[cls].bits = 8;
        np->ct[cls].cells = xcalloc(256, sizeof(nb_cell));
    }
    n = nb_doc_buckets(&np->doc, text, text_len, np->features);
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
        fsys_unlink(np->test_path);
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
    nb_ltab_free(&np->classes);
    free(np->ct);
    free(np->extra);
    nb_docbuf_free(&np->doc);
    free(np->blob);
    free(np->counts_path);
    free(np->test_path);
    free(np);
}

/*
 * The final half (see nb.h): merge, fit, evaluate, write the artifacts.
 */
int
nb_train_final(uint32_t features, const char *const *prefixes, size_t n,
               const char *artifacts_dir, nb_result *res, sh_err *err)
{
    part     *parts = xcalloc(n ? n : 1, sizeof *parts);
    size_t    k, conf_rows = 0;
    nb_model *m = NULL;
    uint64_t *conf = NULL;
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
    }
    rc = nb_model_merge(features, parts, n, &m, &res->n_train, err);
    if (rc != 0)
        goto done;
    k = m->n_classes;

    /* Evaluate: labels are the model's classes, then test-only ones. */
    for (size_t c = 0; c < k; c++)
        nb_ltab_intern(&labels, m->labels[c], m->lens[c], &added);
    conf_rows = k * 2;
    conf = xcalloc(conf_rows * k, sizeof *conf);
    rc = nb_evaluate(m, parts, n, &labels, &conf, &conf_rows, res, err);
    if (rc != 0)
        goto done;

    path = xasprintf("%s/model", artifacts_dir);
    rc = nb_model_write(m, path, err);
    if (rc != 0)
        goto done;
    free(path);
    path = xasprintf("%s/report", artifacts_dir);
    rc = nb_write_report(m, &labels, conf, res, path, err);

done:
    for (size_t i = 0; i < n; i++) {
        free(parts[i].counts);
        free(parts[i].test);
        free(parts[i].names);
        free(parts[i].map);
    }
    free(parts);
    free(conf);
    free(path);
    nb_ltab_free(&labels);
    nb_model_free(m);
    if (rc != 0) {
        memset(res, 0, sizeof *res);
        res->accuracy = NAN;
    }
    return rc;
}
