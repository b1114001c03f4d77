/*
 * nb_int.h - the private parts of naive Bayes shared by its files:
 * little-endian encoding, the label table, a document's buckets, the
 * model's layout and its per-document terms, files written whole, and the
 * calls between training (nb.c), the model (nb_model.c), the report
 * (nb_report.c) and what all three use: labels and documents (nb_doc.c)
 * and files written whole (nb_file.c). Calls go one way: nb.c -> nb_model.c
 * and nb_report.c -> nb_doc.c and nb_file.c. Nothing outside those files
 * includes it.
 */
#ifndef SHEAF_NB_INT_H
#define SHEAF_NB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "nb.h"

#define NB_COUNTS_MAGIC "nb-counts-1"

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
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

static inline uint64_t
get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- label tables (nb_doc.c) --------------------------------------- */

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

/* The id of label (s, n), interned (copied) if new; *added says which. */
uint32_t nb_ltab_intern(ltab *t, const char *s, size_t n, int *added);

/* Frees what table 't' holds (not 't'). */
void nb_ltab_free(ltab *t);

/* Byte order of two labels: memcmp, a prefix first (<0, 0, >0). */
int nb_label_cmp(const char *a, size_t an, const char *b, size_t bn);

/* A label, for sorting labels. */
typedef struct lref {
    const char *s;  /* its bytes (borrowed) */
    size_t      n;  /* their number */
    size_t      id; /* where it came from, for who sorts them */
} lref;

/* qsort order of two lrefs: their bytes, memcmp order, a prefix first. */
int nb_lref_cmp(const void *a, const void *b);

/* ---- a document's buckets (nb_doc.c) -------------------------------- */

/* A document's buckets and the buffers that hold them, reused. */
typedef struct docbuf {
    uint32_t *bk;  /* the buckets, then the distinct ones ascending */
    uint32_t *cnt; /* the count of each distinct bucket */
    size_t    cap; /* capacity of bk and cnt */
} docbuf;

void nb_docbuf_free(docbuf *d);

/* The buckets of the tokens of text[0..n) (lowercased) in d->bk, unsorted,
 * as they come; returns their number. Allocates only to grow d. */
size_t nb_doc_buckets(docbuf *d, const char *text, size_t n, uint32_t features);

/*
 * The document's buckets, sorted, equal ones folded: afterwards
 * d->bk[0..m) are the distinct buckets ascending and d->cnt[0..m) their
 * counts. Returns m.
 */
size_t nb_doc_pairs(docbuf *d, const char *text, size_t n, uint32_t features);

/* ---- the model (nb_model.c) ----------------------------------------- */

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
static inline uint32_t
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

/* What nb_train_final knows of one partial. */
typedef struct part {
    char     *counts; /* "<prefix>.counts" (owned) */
    char     *test;   /* "<prefix>.test" (owned) */
    char     *names;  /* the header row's labels blob (owned) */
    size_t    n;      /* classes of the partial */
    uint32_t *map;    /* its class index -> the model's class index */
} part;

/*
 * Merges the partials 'parts' (n of them; counts and test paths set) into
 * a model: reads every header row, sorts the classes, adds up the counts,
 * checks them and fits. Sets *out (free with nb_model_free) and adds the
 * training documents to *n_train. Returns 0, or SH_EIO, SH_EDATA (no
 * training rows, a corrupt partial) or SH_ERANGE (too large), *out NULL.
 */
int nb_model_merge(uint32_t features, part *parts, size_t n, nb_model **out,
                   uint64_t *n_train, sh_err *err);

/* Writes model 'm' to 'path' (temporary name, fsync, rename): 0, SH_EIO. */
int nb_model_write(const nb_model *m, const char *path, sh_err *err);

/* ---- files written whole (nb_file.c) -------------------------------- */

/* A file written through a buffer under "<path>.tmp", then renamed. */
typedef struct afile {
    int            fd;   /* the temporary file, or -1 */
    char          *path; /* final path (owned) */
    char          *tmp;  /* temporary path (owned) */
    unsigned char *buf;  /* bytes not yet written */
    size_t         len;
    int            errnum; /* errno of the first failed write, or 0 */
} afile;

/* Opens "<path>.tmp" for 'f'. Returns 0 or SH_EIO. */
int nb_afile_open(afile *f, const char *path, sh_err *err);

/* Appends n bytes (a write error is kept for nb_afile_commit). */
void nb_afile_put(afile *f, const void *p, size_t n);

/* Flushes, fsyncs and renames the file into place, or removes it; frees
 * what 'f' holds either way. Returns 0 or SH_EIO. */
int nb_afile_commit(afile *f, sh_err *err);

/* ---- the report (nb_report.c) --------------------------------------- */

/*
 * Streams the held-out rows of every partial through the model: counts
 * the rows and the correct ones, and fills the confusion rows (*conf,
 * grown as labels unknown to the model appear in 'labels').
 */
int nb_evaluate(const nb_model *m, const part *parts, size_t n, ltab *labels,
                uint64_t **conf, size_t *conf_rows, nb_result *res,
                sh_err *err);

/*
 * Writes the report: 'labels' (the model's classes first, then labels met
 * only in test rows) with their confusion rows conf[t * k + p] (t a label,
 * p a model class).
 */
int nb_write_report(const nb_model *m, const ltab *labels, const uint64_t *conf,
                    const nb_result *res, const char *path, sh_err *err);

#endif
