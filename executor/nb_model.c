/*
 * nb_model.c - the naive Bayes model: merging the partials' counts into
 * one matrix and fitting it (the final half's model), writing and loading
 * the model file, and predicting a document's class.
 *
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
#include "nb_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"
#include "rowfile.h"

#define NB_MODEL_MAGIC "SHNBMDL1"
#define NB_MODEL_MAX   (16ull << 30) /* largest model matrix, bytes */

/* ---- the model ------------------------------------------------------- */

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
        nb_docbuf_free(&m->scr->doc);
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
    nd = nb_doc_pairs(&s->doc, text, n, m->features);
    memset(s->jll, 0, m->n_classes * sizeof *s->jll);
    for (size_t i = 0; i < nd; i++)
        model_term(m, s->jll, s->doc.bk[i], (double)s->doc.cnt[i]);
    c = model_argmax(m, s->jll);
    *len = m->lens[c];
    return m->labels[c];
}

/* Append n doubles, little-endian. */
static void
put_doubles(afile *f, const double *d, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    nb_afile_put(f, d, n * sizeof *d);
#else
    for (size_t i = 0; i < n; i++) {
        unsigned char b[8];
        uint64_t      bits;

        memcpy(&bits, &d[i], 8);
        put_le64(b, bits);
        nb_afile_put(f, b, 8);
    }
#endif
}

/* Write 'm' to 'path' in the model format (see the file comment). */
int
nb_model_write(const nb_model *m, const char *path, sh_err *err)
{
    afile         f;
    unsigned char b[8];
    size_t        total = (size_t)m->features * m->n_classes;
    int           rc;

    rc = nb_afile_open(&f, path, err);
    if (rc != 0)
        return rc;
    nb_afile_put(&f, NB_MODEL_MAGIC, 8);
    put_le32(b, m->features);
    put_le32(b + 4, m->n_classes);
    nb_afile_put(&f, b, 8);
    for (uint32_t k = 0; k < m->n_classes; k++) {
        put_le32(b, (uint32_t)m->lens[k]);
        nb_afile_put(&f, b, 4);
        nb_afile_put(&f, m->labels[k], m->lens[k]);
    }
    put_doubles(&f, m->prior, m->n_classes);
    put_doubles(&f, m->flp, total);
    return nb_afile_commit(&f, err);
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
    if (features == 0 || k == 0 || (uint64_t)k * 12 > size
        || (uint64_t)features * k > size / 8) {
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
        if (c > 0
            && nb_label_cmp(m->labels[c - 1], m->lens[c - 1], m->labels[c], len)
                   >= 0) {
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

/* ---- merging the partials into a model ----------------------------- */

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
    if (rc == 0 || rowfile_cols(r) != 4 || row[0].type != SH_STRING
        || row[0].u.s.len != strlen(NB_COUNTS_MAGIC)
        || memcmp(row[0].u.s.ptr, NB_COUNTS_MAGIC, row[0].u.s.len) != 0
        || row[1].type != SH_INT || row[2].type != SH_INT
        || row[3].type != SH_STRING) {
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
        int    c = nb_label_cmp(m->labels[mid], m->lens[mid], s, n);

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

        if (row[0].type != SH_INT || row[1].type != SH_INT
            || row[2].type != SH_INT || row[3].type != SH_STRING
            || row[0].u.i < 0 || (uint64_t)row[0].u.i >= p->n || row[1].u.i < 0
            || row[2].u.i < 0 || row[3].u.s.len % 12 != 0) {
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

/*
 * Reads the header rows of 'parts' and makes the model's classes: every
 * partial's labels, sorted, each once; maps each partial's classes to
 * them. Sets *out, the model without its matrix. Returns 0 or an error.
 */
static int
merge_classes(uint32_t features, part *parts, size_t n, nb_model **out,
              sh_err *err)
{
    lref     *refs = NULL;
    size_t    nrefs = 0, refs_cap = 0, k = 0;
    nb_model *m;
    int       rc = 0;

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        rc = read_header(&parts[i], features, &refs, &nrefs, &refs_cap, err);
        if (rc != 0)
            goto done;
    }

    /* The classes: every partial's labels, sorted, each once. */
    if (nrefs > 0)
        qsort(refs, nrefs, sizeof *refs, nb_lref_cmp);
    for (size_t i = 0; i < nrefs; i++)
        if (k == 0 || nb_lref_cmp(&refs[k - 1], &refs[i]) != 0)
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
    *out = m;

done:
    free(refs);
    return rc;
}

/*
 * Adds the counts of 'parts' into m's matrix, checks them against the
 * classes' totals, adds the training documents to *n_train and fits.
 * Returns 0 or an error.
 */
static int
merge_counts(nb_model *m, const part *parts, size_t n, uint64_t *n_train,
             sh_err *err)
{
    uint32_t  k = m->n_classes;
    uint64_t *docs, *tokens, *sums;
    int       rc = 0;

    m->flp = xcalloc((size_t)m->features * k, sizeof *m->flp);
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
        *n_train += docs[c];
    }
    model_fit(m, docs, tokens);

done:
    free(docs);
    free(tokens);
    free(sums);
    return rc;
}

/*
 * Merges the partials into a fitted model (see nb_int.h). Sets *out, or
 * NULL on error.
 */
int
nb_model_merge(uint32_t features, part *parts, size_t n, nb_model **out,
               uint64_t *n_train, sh_err *err)
{
    nb_model *m = NULL;
    int       rc;

    *out = NULL;
    rc = merge_classes(features, parts, n, &m, err);
    if (rc == 0)
        rc = merge_counts(m, parts, n, n_train, err);
    if (rc != 0) {
        nb_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
