/*
 * nb.h - multinomial naive Bayes on hashed token counts, trained out of
 * core: train_naive_bayes and predict_naive_bayes (SPEC section 2).
 *
 * The model is scikit-learn's MultinomialNB(alpha=1) over
 * HashingVectorizer(n_features=features, alternate_sign=False, norm=None)
 * counts of text.h's tokens (lowercased):
 *   log P(c)     = log(docs_c / docs)
 *   log P(b | c) = log((n_cb + 1) / (n_c + features))
 *   predict(x)   = argmax_c log P(c) + sum_b x_b log P(b | c)
 * with classes in byte order and ties to the first class, as numpy's
 * argmax over sklearn's sorted classes_, so predictions are the same.
 *
 * Partial half (every task of the stage before): training rows fold into
 * counts per class and bucket (sparse); held-out rows are written, as
 * their label and sparse bucket counts, to a row file as they come, so
 * memory holds only counts. Final half (one task): merge every partial's
 * counts, build the model, stream the held-out rows through it, and write
 * the artifacts "report" (JSON: accuracy, n_train, n_test, features,
 * classes (the trained ones), per_class {label: {precision, recall, f1,
 * support}} over every label of the test rows and predictions, macro_avg
 * and weighted_avg, confusion matrix as {"labels": [...], "matrix":
 * [[...]]}, rows true, columns predicted; as scikit-learn's
 * classification_report with zero_division=0; accuracy is null with no
 * test row) and "model" (binary; nb_model_load reads it).
 *
 * Rows with a null label (label NULL) are skipped; a null text (text
 * NULL) is an empty document. Labels are bytes, compared as bytes; in the
 * report, bytes that are not UTF-8 show as U+FFFD.
 *
 * A partial, a final and a model are each used by one thread at a time
 * (a model keeps its prediction buffers).
 */
#ifndef SHEAF_NB_H
#define SHEAF_NB_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

typedef struct nb_partial nb_partial;

/* A partial that writes "<prefix>.counts" and "<prefix>.test". NULL
 * with SH_EINVAL (features 0) or SH_EIO. */
nb_partial *nb_partial_new(uint32_t features, const char *prefix, sh_err *err);

/* Fold one row: a training row, or a held-out one ('held_out' 1), which
 * is written to the test file at once (SH_EIO). 'label' NULL: skipped.
 * Allocates only to grow its buffers and tables. SH_ESTATE after finish. */
int nb_partial_add(nb_partial *np, const char *label, size_t label_len,
                   const char *text, size_t text_len, int held_out,
                   sh_err *err);

/* Bytes held in memory (the counts). */
size_t nb_partial_bytes(const nb_partial *np);

/* Write the counts and complete both files (fsync, rename). 0 or SH_EIO
 * (then neither file is left); SH_ESTATE when called twice. */
int nb_partial_finish(nb_partial *np, sh_err *err);

/* Free; the files of a partial not finished are removed. */
void nb_partial_free(nb_partial *np);

typedef struct nb_result {
    uint64_t n_train;
    uint64_t n_test;
    double   accuracy; /* correct / n_test; NaN when n_test is 0 */
} nb_result;

/*
 * The final half: merge the partials of 'prefixes' (n of them, each the
 * prefix given to nb_partial_new), train, evaluate the held-out rows and
 * write "<artifacts_dir>/report" and "<artifacts_dir>/model" (temporary
 * name, fsync, rename). Memory: classes x features doubles (40 x 2^18:
 * 84 MB), plus one partial's read buffers at a time. Returns 0 with *res,
 * or an error: SH_EDATA when there is no training row ("no training rows:
 * every row was held out or had a null label") or a partial is corrupt or
 * of another feature count, SH_ERANGE when the model would pass 16 GiB,
 * SH_EIO.
 */
int nb_train_final(uint32_t features, const char *const *prefixes, size_t n,
                   const char *artifacts_dir, nb_result *res, sh_err *err);

typedef struct nb_model nb_model;

/* Load a model file written by nb_train_final. SH_EIO / SH_EDATA. */
nb_model *nb_model_load(const char *path, sh_err *err);

/* The predicted class of 'text' (n bytes; NULL is an empty document):
 * *len bytes owned by the model. Allocates nothing once its buffers fit
 * the longest document seen. Not thread-safe: the buffers are the model's,
 * so a thread that predicts needs a model of its own. */
const char *nb_model_predict(const nb_model *m, const char *text, size_t n,
                             size_t *len);

/* The model's bucket count (its 'features'). */
uint32_t nb_model_features(const nb_model *m);

void nb_model_free(nb_model *m);

#endif
