/*
 * test_nb.c - unit tests of executor/nb: naive Bayes trained from partials
 * and checked against scikit-learn.
 *
 * A deterministic corpus of 200 documents over 4 classes (mixed case,
 * digits, punctuation, non-ASCII separators, empty documents, a long
 * token, null labels, and a class that only held-out rows have) is made
 * by corpus_doc() here and by the same generator in
 * tests/unit/data/nb_oracle.py, which computed offline with
 * HashingVectorizer + MultinomialNB(alpha=1) the values pasted below:
 * n_train, n_test, correct predictions, each prediction, log priors and
 * samples of feature log probabilities, classification_report
 * (zero_division=0) and the confusion matrix, for 2^18 and 37 features.
 * Training is split over 1, 2 and 7 partials; every split must give the
 * same model (to 1e-12) and predictions.
 *
 * Also: ties go to the first class in byte order, empty documents, labels
 * with NUL and non-UTF-8 bytes in the report, and the errors (no training
 * rows, a bad feature count, mismatched partials, corrupt models, finishing
 * twice). Files live in a fresh directory removed by the suite's cleanup.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../executor/nb.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static char g_dir[64];

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A sample of feature_log_prob_: class (index among the trained classes,
 * byte order), bucket, value. */
struct flp_case {
    int      cls;
    uint32_t bucket;
    double   value;
};

/* A row of classification_report: label (or "macro avg", "weighted avg"),
 * precision, recall, f1, support. */
struct prf_case {
    const char *label;
    double      precision, recall, f1;
    int         support;
};

/* clang-format off */
/* BEGIN nb_oracle.py corpus */
#define NB_N_TRAIN 155
#define NB_N_TEST 40
/* every label, in byte order */
static const char *const nb_labels[] = {"Beta", "alpha", "alpha2", "gamma", "zeta"};
/* features 262144: MultinomialNB(alpha=1) */
#define NB_BIG_FEATURES 262144u
#define NB_BIG_CORRECT 28
static const char *const nb_big_pred[NB_N_TEST] = {
    "Beta",
    "alpha",
    "alpha2",
    "alpha",
    "gamma",
    "alpha2",
    "alpha",
    "Beta",
    "alpha2",
    "alpha",
    "Beta",
    "gamma",
    "alpha",
    "Beta",
    "gamma",
    "alpha2",
    "Beta",
    "Beta",
    "alpha2",
    "alpha",
    "gamma",
    "alpha2",
    "alpha",
    "Beta",
    "alpha2",
    "alpha",
    "alpha2",
    "gamma",
    "alpha",
    "gamma",
    "gamma",
    "alpha2",
    "alpha",
    "gamma",
    "alpha2",
    "alpha",
    "Beta",
    "alpha2",
    "alpha",
    "Beta",
};
/* log priors of the trained classes, in byte order */
static const double nb_big_prior[] = {-0x1.7cf29e2effc5ep+0, -0x1.4e45fe0b3698ep+0, -0x1.5ac3812aaffcep+0, -0x1.67e50fd896098p+0};
/* (class, bucket, feature_log_prob_) samples */
static const struct flp_case nb_big_flp[] = {
    {0, 2613u, -0x1.7925655194a10p+3},
    {0, 42834u, -0x1.7925655194a10p+3},
    {0, 87456u, -0x1.7925655194a10p+3},
    {0, 140121u, -0x1.7925655194a10p+3},
    {0, 173365u, -0x1.7925655194a10p+3},
    {0, 216680u, -0x1.7925655194a10p+3},
    {0, 0u, -0x1.8f53a8508edafp+3},
    {0, 1u, -0x1.8f53a8508edafp+3},
    {1, 1302u, -0x1.792893468d630p+3},
    {1, 39451u, -0x1.5bd65255ac829p+3},
    {1, 75843u, -0x1.792893468d630p+3},
    {1, 134562u, -0x1.792893468d630p+3},
    {1, 173912u, -0x1.5600be51335cfp+3},
    {1, 211548u, -0x1.792893468d630p+3},
    {1, 0u, -0x1.8f56d645879cfp+3},
    {1, 1u, -0x1.8f56d645879cfp+3},
    {2, 838u, -0x1.79275c1815439p+3},
    {2, 38234u, -0x1.79275c1815439p+3},
    {2, 79381u, -0x1.6c2dca21b5777p+3},
    {2, 136024u, -0x1.55ff8722bb3d8p+3},
    {2, 178252u, -0x1.5bd51b2734632p+3},
    {2, 219795u, -0x1.79275c1815439p+3},
    {2, 0u, -0x1.8f559f170f7d8p+3},
    {2, 1u, -0x1.8f559f170f7d8p+3},
    {3, 1070u, -0x1.6c2d725aab809p+3},
    {3, 45033u, -0x1.792704510b4cbp+3},
    {3, 80894u, -0x1.792704510b4cbp+3},
    {3, 126652u, -0x1.792704510b4cbp+3},
    {3, 162837u, -0x1.792704510b4cbp+3},
    {3, 216134u, -0x1.792704510b4cbp+3},
    {3, 0u, -0x1.8f5547500586ap+3},
    {3, 1u, -0x1.8f5547500586ap+3},
    {3, 262143u, -0x1.8f5547500586ap+3},
};
/* classification_report(zero_division=0): precision, recall, f1, support */
static const struct prf_case nb_big_prf[] = {
    {"Beta", 0.6666666666666666, 0.75, 0.7058823529411765, 8},
    {"alpha", 0.75, 1.0, 0.8571428571428571, 9},
    {"alpha2", 0.7272727272727273, 1.0, 0.8421052631578948, 8},
    {"gamma", 0.625, 0.7142857142857143, 0.6666666666666666, 7},
    {"zeta", 0.0, 0.0, 0.0, 8},
    {"macro avg", 0.5537878787878787, 0.6928571428571428, 0.614359427981719, 40},
    {"weighted avg", 0.5569128787878788, 0.7, 0.6191213327436238, 40},
};
static const int nb_big_confusion[5][5] = {
    {6, 0, 1, 1, 0},
    {0, 9, 0, 0, 0},
    {0, 0, 8, 0, 0},
    {1, 1, 0, 5, 0},
    {2, 2, 2, 2, 0},
};
/* features 37: MultinomialNB(alpha=1) */
#define NB_SMALL_FEATURES 37u
#define NB_SMALL_CORRECT 20
static const char *const nb_small_pred[NB_N_TEST] = {
    "Beta",
    "alpha",
    "alpha2",
    "alpha",
    "gamma",
    "alpha2",
    "Beta",
    "gamma",
    "alpha",
    "alpha",
    "Beta",
    "gamma",
    "alpha",
    "Beta",
    "alpha2",
    "alpha2",
    "Beta",
    "Beta",
    "alpha2",
    "alpha",
    "gamma",
    "alpha",
    "alpha",
    "Beta",
    "alpha2",
    "alpha2",
    "alpha",
    "gamma",
    "alpha",
    "alpha2",
    "gamma",
    "alpha2",
    "alpha",
    "gamma",
    "gamma",
    "gamma",
    "Beta",
    "alpha",
    "alpha",
    "gamma",
};
/* log priors of the trained classes, in byte order */
static const double nb_small_prior[] = {-0x1.7cf29e2effc5ep+0, -0x1.4e45fe0b3698ep+0, -0x1.5ac3812aaffcep+0, -0x1.67e50fd896098p+0};
/* (class, bucket, feature_log_prob_) samples */
static const struct flp_case nb_small_flp[] = {
    {0, 0u, -0x1.5d7198039c0e7p+1},
    {0, 6u, -0x1.fdcc217945f97p+1},
    {0, 12u, -0x1.0477a8e746364p+2},
    {0, 18u, -0x1.114f72cdd7d84p+2},
    {0, 24u, -0x1.472061cbbe265p+1},
    {0, 30u, -0x1.e13c29b1ab5f5p+1},
    {1, 0u, -0x1.3668b8cd2d5a0p+1},
    {1, 6u, -0x1.2acddf526f7e0p+2},
    {1, 12u, -0x1.084ef4249bf38p+2},
    {1, 18u, -0x1.a8d158963985cp+1},
    {1, 24u, -0x1.fce2b2a8f6145p+1},
    {1, 30u, -0x1.dcb7a06fb8b66p+1},
    {2, 0u, -0x1.6c7985fc1f540p+1},
    {2, 6u, -0x1.f60338e78e5e7p+1},
    {2, 12u, -0x1.ff7f97a1f153dp+1},
    {2, 18u, -0x1.1ed25b30a7b0ep+2},
    {2, 24u, -0x1.ceec79f4bee62p+1},
    {2, 30u, -0x1.d5d826ae51008p+1},
    {3, 0u, -0x1.7eb85f5503753p+1},
    {3, 6u, -0x1.c659dccec4787p+1},
    {3, 12u, -0x1.eb2ca0f12e2f9p+1},
    {3, 18u, -0x1.096fe487079e6p+2},
    {3, 24u, -0x1.db2748665ab9ep+1},
    {3, 30u, -0x1.645f0324b3f07p+1},
    {3, 36u, -0x1.1647ae6d99406p+2},
};
/* classification_report(zero_division=0): precision, recall, f1, support */
static const struct prf_case nb_small_prf[] = {
    {"Beta", 0.5, 0.5, 0.5, 8},
    {"alpha", 0.6153846153846154, 0.8888888888888888, 0.7272727272727274, 9},
    {"alpha2", 0.4444444444444444, 0.5, 0.47058823529411764, 8},
    {"gamma", 0.4, 0.5714285714285714, 0.47058823529411764, 7},
    {"zeta", 0.0, 0.0, 0.0, 8},
    {"macro avg", 0.391965811965812, 0.4920634920634921, 0.4336898395721926, 40},
    {"weighted avg", 0.39735042735042736, 0.5, 0.44010695187165777, 40},
};
static const int nb_small_confusion[5][5] = {
    {4, 1, 1, 2, 0},
    {1, 8, 0, 0, 0},
    {0, 3, 4, 1, 0},
    {1, 1, 1, 4, 0},
    {2, 0, 3, 3, 0},
};
/* END nb_oracle.py corpus */
/* clang-format on */

#define N_CLASSES 4 /* trained classes: every label but "zeta" */
#define N_LABELS  5

/* ---- the corpus (the same generator as nb_oracle.py) ------------------ */

static const char *const LABELS[4] = {"alpha", "Beta", "gamma", "alpha2"};
static const char *const SYL[16] = {"ka",  "lo",  "mi",  "nu", "pe", "ra",
                                    "si",  "to",  "vu",  "xe", "zo", "qa",
                                    "ban", "del", "fir", "gor"};
static const char *const SEPS[12] = {" ",        " ",  " ",  ", ",
                                     ". ",       "-",  "\t", " \xc3\xa9 ",
                                     "\xc3\x9f", " (", ") ", "  "};
#define N_DOCS 200

/* A 64-bit LCG; the high 31 bits of the state. */
static uint64_t
rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/*
 * Document i: its text in 'sb', whether it is held out in *held_out, and
 * its label (NULL for a null label) as the return value.
 */
static const char *
corpus_doc(int i, strbuf *sb, int *held_out)
{
    uint64_t    r = 1000 + (uint64_t)i, cls, nwords;
    const char *label;

    cls = rng_next(&r) % 4;
    label = LABELS[cls];
    *held_out = i % 5 == 0;
    if (i % 25 == 0)
        label = "zeta";
    if (i % 40 == 13)
        label = NULL;
    nwords = 3 + rng_next(&r) % 30;
    if (i % 37 == 5)
        nwords = 0;
    sb_reset(sb);
    sb_puts(sb, "");
    for (uint64_t w = 0; w < nwords; w++) {
        char   word[64];
        size_t wl = 0;

        if (rng_next(&r) % 16 == 0) {
            wl = (size_t)snprintf(word, sizeof word, "%" PRIu64,
                                  rng_next(&r) % 1000);
        } else {
            uint64_t ns = 1 + rng_next(&r) % 3;

            for (uint64_t k = 0; k < ns; k++) {
                const char *y;

                if (rng_next(&r) % 2 == 0)
                    y = SYL[4 * cls + rng_next(&r) % 4];
                else
                    y = SYL[rng_next(&r) % 16];
                memcpy(word + wl, y, strlen(y));
                wl += strlen(y);
            }
            if (rng_next(&r) % 8 == 0)
                word[0] = (char)(word[0] - 32);
        }
        if (w > 0)
            sb_puts(sb, SEPS[rng_next(&r) % 12]);
        sb_append(sb, word, wl);
    }
    if (i % 41 == 9)
        sb_puts(sb, " ... !!! --- ");
    if (i % 50 == 7) {
        sb_puts(sb, " ");
        for (int k = 0; k < 20; k++)
            sb_puts(sb, "Long");
        sb_puts(sb, "token");
    }
    return label;
}

/* ---- helpers ----------------------------------------------------------- */

static int
suite_init(void)
{
    json_set_alloc_funcs(xmalloc, free);
    return th_temp_dir(g_dir, sizeof g_dir, "/tmp", "sheaf-test-nb");
}

static int
suite_cleanup(void)
{
    return th_rm_tree(g_dir);
}

/* A new directory "<g_dir>/<name>"; the caller frees the path. */
static char *
make_dir(const char *name)
{
    char *p = xasprintf("%s/%s", g_dir, name);

    mkdir(p, 0755);
    return p;
}

/*
 * Train on the corpus with 'features' buckets, document i going to partial
 * i % nparts, into the directory 'name' (created). Returns the final's
 * code; *res its result; the directory's path in *dir (caller frees).
 */
static int
train_corpus(uint32_t features, int nparts, const char *name, nb_result *res,
             char **dir)
{
    nb_partial *parts[8];
    char       *prefixes[8];
    strbuf      sb = {0};
    sh_err      err = {0};
    int         rc = 0;

    *dir = make_dir(name);
    for (int p = 0; p < nparts; p++) {
        prefixes[p] = xasprintf("%s/part%d", *dir, p);
        parts[p] = nb_partial_new(features, prefixes[p], &err);
        CHECK(parts[p] != NULL, "nb_partial_new: %s", err.msg);
        if (parts[p] == NULL)
            return -1;
    }
    for (int i = 0; i < N_DOCS; i++) {
        int         held;
        const char *label = corpus_doc(i, &sb, &held);

        rc = nb_partial_add(parts[i % nparts], label, label ? strlen(label) : 0,
                            sb.data, sb.len, held, &err);
        CHECK(rc == 0, "nb_partial_add doc %d: %s", i, err.msg);
    }
    for (int p = 0; p < nparts; p++) {
        CHECK(nb_partial_bytes(parts[p]) > 0, "partial %d holds 0 bytes", p);
        rc = nb_partial_finish(parts[p], &err);
        CHECK(rc == 0, "nb_partial_finish %d: %s", p, err.msg);
        nb_partial_free(parts[p]);
    }
    rc = nb_train_final(features, (const char *const *)prefixes, (size_t)nparts,
                        *dir, res, &err);
    CHECK(rc == 0, "nb_train_final(%s): %s", name, err.msg);
    for (int p = 0; p < nparts; p++)
        free(prefixes[p]);
    sb_free(&sb);
    return rc;
}

/* The raw contents of a model file, as nb_model.c documents its format. */
typedef struct raw_model {
    uint32_t features, k;
    char     labels[N_CLASSES][16];
    double  *prior; /* k */
    double  *flp;   /* features x k, bucket-major */
    void    *data;
} raw_model;

static uint32_t
le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

/* Read "<dir>/model" into *m (4 classes of short labels). 0 or -1. */
static int
read_raw_model(const char *dir, raw_model *m)
{
    char          *path = xasprintf("%s/model", dir);
    size_t         size;
    unsigned char *d = (unsigned char *)fsys_read_file(path, &size), *p;

    free(path);
    memset(m, 0, sizeof *m);
    if (d == NULL)
        return -1;
    m->data = d;
    CHECK(memcmp(d, "SHNBMDL1", 8) == 0, "model magic");
    m->features = le32(d + 8);
    m->k = le32(d + 12);
    CHECK_INT(N_CLASSES, m->k);
    if (m->k != N_CLASSES)
        return -1;
    p = d + 16;
    for (uint32_t c = 0; c < m->k; c++) {
        uint32_t len = le32(p);

        memcpy(m->labels[c], p + 4, len < 15 ? len : 15);
        p += 4 + len;
    }
    CHECK_INT(size, (p - d) + 8 * (long)m->k * (1 + (long)m->features));
    m->prior = xmalloc(8 * m->k);
    m->flp = xmalloc(8 * (size_t)m->k * m->features);
    memcpy(m->prior, p, 8 * m->k); /* the tests run on little-endian hosts */
    memcpy(m->flp, p + 8 * m->k, 8 * (size_t)m->k * m->features);
    return 0;
}

static void
free_raw_model(raw_model *m)
{
    free(m->prior);
    free(m->flp);
    free(m->data);
}

/* |a - b| within 'rel' of |b| (the same C library and numpy's log give the
 * same bits here; a few ulps of slack for another libm). */
static int
close_to(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fabs(b);
}

/* The expected values of one feature count, from the oracle. */
typedef struct expect {
    uint32_t               features;
    int                    correct;
    const char *const     *pred;
    const double          *prior;
    const struct flp_case *flp;
    size_t                 n_flp;
    const struct prf_case *prf;
    const int (*confusion)[N_LABELS];
} expect;

/* Check the report file against the oracle's classification_report. */
static void
check_report(const char *dir, const expect *e)
{
    char        *path = xasprintf("%s/report", dir);
    json_error_t jerr;
    json_t      *r = json_load_file(path, 0, &jerr), *per, *conf, *labels, *mat;

    free(path);
    CHECK(r != NULL, "report does not parse: %s", r ? "" : jerr.text);
    if (r == NULL)
        return;
    CHECK(json_real_value(json_object_get(r, "accuracy"))
              == (double)e->correct / NB_N_TEST,
          "report accuracy %.17g, expected %d/%d",
          json_real_value(json_object_get(r, "accuracy")), e->correct,
          NB_N_TEST);
    CHECK_INT(NB_N_TRAIN, json_integer_value(json_object_get(r, "n_train")));
    CHECK_INT(NB_N_TEST, json_integer_value(json_object_get(r, "n_test")));
    CHECK_INT(N_CLASSES, json_array_size(json_object_get(r, "classes")));
    for (size_t c = 0; c < N_CLASSES; c++) {
        const char *got = json_string_value(
            json_array_get(json_object_get(r, "classes"), c));

        CHECK(got && strcmp(got, nb_labels[c]) == 0,
              "classes[%zu] is '%s', "
              "expected '%s'",
              c, got ? got : "(none)", nb_labels[c]);
    }
    per = json_object_get(r, "per_class");
    for (size_t i = 0; i < N_LABELS + 2; i++) {
        const struct prf_case *x = &e->prf[i];
        json_t                *o = i < N_LABELS ? json_object_get(per, x->label)
                                   : i == N_LABELS ? json_object_get(r, "macro_avg")
                                                   : json_object_get(r, "weighted_avg");
        double p = json_real_value(json_object_get(o, "precision"));
        double rc = json_real_value(json_object_get(o, "recall"));
        double f = json_real_value(json_object_get(o, "f1"));
        long   s = (long)json_integer_value(json_object_get(o, "support"));

        CHECK(o != NULL, "report has no entry for '%s'", x->label);
        CHECK(fabs(p - x->precision) <= 1e-12 && fabs(rc - x->recall) <= 1e-12
                  && fabs(f - x->f1) <= 1e-12 && s == x->support,
              "'%s': precision %.17g recall %.17g f1 %.17g support %ld; "
              "expected %.17g %.17g %.17g %d",
              x->label, p, rc, f, s, x->precision, x->recall, x->f1,
              x->support);
    }
    conf = json_object_get(r, "confusion");
    labels = json_object_get(conf, "labels");
    mat = json_object_get(conf, "matrix");
    CHECK_INT(N_LABELS, json_array_size(labels));
    CHECK_INT(N_LABELS, json_array_size(mat));
    for (size_t i = 0; i < N_LABELS; i++) {
        const char *l = json_string_value(json_array_get(labels, i));

        CHECK(l && strcmp(l, nb_labels[i]) == 0,
              "confusion label %zu: '%s', "
              "expected '%s'",
              i, l ? l : "(none)", nb_labels[i]);
        for (size_t j = 0; j < N_LABELS; j++) {
            long v = (long)json_integer_value(
                json_array_get(json_array_get(mat, i), j));

            CHECK(v == e->confusion[i][j],
                  "confusion[%zu][%zu] = %ld, "
                  "expected %d",
                  i, j, v, e->confusion[i][j]);
        }
    }
    json_decref(r);
}

/* Predict every held-out document with a loaded model; compare. */
static void
check_predictions(const char *dir, const expect *e)
{
    char     *path = xasprintf("%s/model", dir);
    sh_err    err = {0};
    nb_model *m = nb_model_load(path, &err);
    strbuf    sb = {0};
    int       t = 0;

    free(path);
    CHECK(m != NULL, "nb_model_load: %s", err.msg);
    if (m == NULL)
        return;
    CHECK_INT(e->features, nb_model_features(m));
    for (int i = 0; i < N_DOCS; i++) {
        int         held;
        const char *label = corpus_doc(i, &sb, &held);
        const char *p;
        size_t      len;

        if (label == NULL || !held)
            continue;
        p = nb_model_predict(m, sb.data, sb.len, &len);
        CHECK(len == strlen(e->pred[t]) && memcmp(p, e->pred[t], len) == 0,
              "held-out doc %d (test row %d): predicted '%.*s', sklearn '%s'",
              i, t, (int)len, p, e->pred[t]);
        t++;
    }
    CHECK_INT(NB_N_TEST, t);
    sb_free(&sb);
    nb_model_free(m);
}

/* Train with 1, 2 and 7 partials; check each against the oracle and the
 * models against each other. */
static void
check_corpus(const expect *e, const char *tag)
{
    static const int splits[3] = {1, 2, 7};
    raw_model        models[3];
    int              loaded[3] = {0, 0, 0};

    for (int s = 0; s < 3; s++) {
        nb_result res;
        char      name[64], *dir = NULL;

        snprintf(name, sizeof name, "%s-%d", tag, splits[s]);
        if (train_corpus(e->features, splits[s], name, &res, &dir) != 0) {
            free(dir);
            continue;
        }
        CHECK_INT(NB_N_TRAIN, res.n_train);
        CHECK_INT(NB_N_TEST, res.n_test);
        CHECK(res.accuracy == (double)e->correct / NB_N_TEST,
              "%s: accuracy "
              "%.17g, sklearn %d/%d",
              name, res.accuracy, e->correct, NB_N_TEST);
        check_report(dir, e);
        check_predictions(dir, e);
        loaded[s] = read_raw_model(dir, &models[s]) == 0;
        free(dir);
        if (!loaded[s])
            continue;
        for (int c = 0; c < N_CLASSES; c++) {
            CHECK(strcmp(models[s].labels[c], nb_labels[c]) == 0,
                  "%s: class "
                  "%d is '%s', expected '%s'",
                  name, c, models[s].labels[c], nb_labels[c]);
            CHECK(close_to(models[s].prior[c], e->prior[c], 1e-15),
                  "%s: log prior of class %d %a, sklearn %a", name, c,
                  models[s].prior[c], e->prior[c]);
        }
        for (size_t i = 0; i < e->n_flp; i++) {
            const struct flp_case *x = &e->flp[i];
            double v = models[s].flp[(size_t)x->bucket * N_CLASSES + x->cls];

            CHECK(close_to(v, x->value, 1e-15),
                  "%s: feature log prob of "
                  "class %d bucket %" PRIu32 " %a, sklearn %a",
                  name, x->cls, x->bucket, v, x->value);
        }
    }
    for (int s = 1; s < 3; s++) {
        double worst = 0;
        size_t n = (size_t)N_CLASSES * e->features;

        if (!loaded[0] || !loaded[s])
            continue;
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs(models[s].flp[i] - models[0].flp[i]));
        for (int c = 0; c < N_CLASSES; c++)
            worst = fmax(worst, fabs(models[s].prior[c] - models[0].prior[c]));
        CHECK(worst <= 1e-12, "%s: %d partials vs 1: largest difference %g",
              tag, splits[s], worst);
    }
    for (int s = 0; s < 3; s++)
        if (loaded[s])
            free_raw_model(&models[s]);
}

static void
test_corpus_big(void)
{
    expect e = {NB_BIG_FEATURES, NB_BIG_CORRECT,  nb_big_pred,
                nb_big_prior,    nb_big_flp,      N_OF(nb_big_flp),
                nb_big_prf,      nb_big_confusion};

    check_corpus(&e, "big");
}

static void
test_corpus_small(void)
{
    expect e = {NB_SMALL_FEATURES, NB_SMALL_CORRECT,  nb_small_pred,
                nb_small_prior,    nb_small_flp,      N_OF(nb_small_flp),
                nb_small_prf,      nb_small_confusion};

    check_corpus(&e, "small");
}

/* Train one partial on (label, text) pairs (held out when the label starts
 * with '?', which is dropped) into directory 'name'. */
static int
train_rows(const char *name, uint32_t features, const char *const *rows,
           size_t n, nb_result *res, sh_err *err)
{
    char       *dir = make_dir(name), *prefix = xasprintf("%s/p", dir);
    nb_partial *p = nb_partial_new(features, prefix, err);
    int         rc = p == NULL ? -1 : 0;

    for (size_t i = 0; i + 1 < n && rc == 0; i += 2) {
        const char *l = rows[i];
        int         held = l[0] == '?';

        rc = nb_partial_add(p, l + held, strlen(l + held), rows[i + 1],
                            strlen(rows[i + 1]), held, err);
    }
    if (rc == 0)
        rc = nb_partial_finish(p, err);
    nb_partial_free(p);
    if (rc == 0)
        rc = nb_train_final(features, (const char *const *)&prefix, 1, dir, res,
                            err);
    free(prefix);
    free(dir);
    return rc;
}

/* Equal classes tie: the first in byte order wins; an empty document
 * goes to the largest prior; null labels are skipped. */
static void
test_ties(void)
{
    static const char *const rows[] = {"b", "x y", "a",  "x y", "c",  "z",
                                       "c", "w",   "?a", "x",   "?b", "y y"};
    nb_result                res;
    sh_err                   err = {0};
    char                    *path;
    nb_model                *m;
    size_t                   len;
    const char              *p;
    nb_partial              *np;

    CHECK(train_rows("ties", 1000, rows, N_OF(rows), &res, &err) == 0,
          "train: %s", err.msg);
    CHECK_INT(4, res.n_train);
    CHECK_INT(2, res.n_test);
    CHECK(res.accuracy == 0.5,
          "accuracy %g, expected 0.5 (both test rows "
          "tie between a and b: a wins)",
          res.accuracy);
    path = xasprintf("%s/ties/model", g_dir);
    m = nb_model_load(path, &err);
    free(path);
    CHECK(m != NULL, "load: %s", err.msg);
    if (m == NULL)
        return;
    p = nb_model_predict(m, "X Y", 3, &len);
    CHECK(len == 1 && *p == 'a', "'X Y' tie: '%.*s', expected 'a'", (int)len,
          p);
    p = nb_model_predict(m, "", 0, &len);
    CHECK(len == 1 && *p == 'c', "empty: '%.*s', expected 'c'", (int)len, p);
    p = nb_model_predict(m, NULL, 0, &len);
    CHECK(len == 1 && *p == 'c', "NULL: '%.*s', expected 'c'", (int)len, p);
    p = nb_model_predict(m, "w w w", 5, &len);
    CHECK(len == 1 && *p == 'c', "'w w w': '%.*s', expected 'c'", (int)len, p);
    nb_model_free(m);

    /* A null label is skipped; a null text is an empty document. */
    path = xasprintf("%s/nulls", g_dir);
    np = nb_partial_new(16, path, &err);
    CHECK(np != NULL, "new: %s", err.msg);
    CHECK(nb_partial_add(np, NULL, 0, "x", 1, 0, &err) == 0, "null label");
    CHECK(nb_partial_add(np, "a", 1, NULL, 5, 0, &err) == 0, "null text");
    CHECK(nb_partial_finish(np, &err) == 0, "finish: %s", err.msg);
    CHECK(nb_partial_finish(np, &err) == SH_ESTATE, "second finish: %d",
          err.code);
    CHECK(nb_partial_add(np, "a", 1, "x", 1, 0, &err) == SH_ESTATE,
          "add after finish");
    nb_partial_free(np);
    {
        const char *pre = path;
        char       *dir = make_dir("nulls-final");

        CHECK(nb_train_final(16, &pre, 1, dir, &res, &err) == 0, "final: %s",
              err.msg);
        CHECK_INT(1, res.n_train);
        CHECK_INT(0, res.n_test);
        CHECK(isnan(res.accuracy), "accuracy with no test rows: %g",
              res.accuracy);
        free(dir);
    }
    free(path);
}

/* Labels with a NUL byte and bytes that are not UTF-8 still make a report
 * that parses, and a model that returns the label's exact bytes. */
static void
test_odd_labels(void)
{
    nb_result    res;
    sh_err       err = {0};
    char        *dir = make_dir("odd"), *prefix = xasprintf("%s/p", dir);
    char        *path;
    nb_partial  *p = nb_partial_new(64, prefix, &err);
    nb_model    *m;
    json_t      *r;
    json_error_t jerr;
    const char  *got;
    char        *text;
    size_t       len;

    CHECK(p != NULL, "new: %s", err.msg);
    if (p == NULL)
        return;
    CHECK(nb_partial_add(p, "a\0b", 3, "one two", 7, 0, &err) == 0, "add");
    CHECK(nb_partial_add(p, "\xff\xfe", 2, "three four", 10, 0, &err) == 0,
          "add");
    CHECK(nb_partial_add(p, "\xff\xfe", 2, "three", 5, 1, &err) == 0, "add");
    CHECK(nb_partial_finish(p, &err) == 0, "finish: %s", err.msg);
    nb_partial_free(p);
    CHECK(nb_train_final(64, (const char *const *)&prefix, 1, dir, &res, &err)
              == 0,
          "final: %s", err.msg);
    CHECK(res.accuracy == 1.0, "accuracy %g", res.accuracy);
    /* jansson's loader refuses NUL in object keys (other parsers take
     * it), so the test turns \u0000 into \u0001 before parsing. */
    path = xasprintf("%s/report", dir);
    text = fsys_read_file(path, NULL);
    for (char *q = text; q && (q = strstr(q, "\\u0000")) != NULL; q += 6)
        q[5] = '1';
    r = text ? json_loads(text, 0, &jerr) : NULL;
    CHECK(r != NULL, "a report with odd labels does not parse: %s",
          r || !text ? "" : jerr.text);
    CHECK_INT(2, json_array_size(json_object_get(r, "classes")));
    got = json_string_value(json_array_get(json_object_get(r, "classes"), 0));
    CHECK(got
              && strcmp(got, "a\x01"
                             "b")
                     == 0,
          "classes[0] '%s'", got);
    got = json_string_value(json_array_get(json_object_get(r, "classes"), 1));
    CHECK(got && strcmp(got, "\xef\xbf\xbd\xef\xbf\xbd") == 0,
          "classes[1] '%s': expected two U+FFFD", got);
    json_decref(r);
    free(text);
    free(path);
    path = xasprintf("%s/model", dir);
    m = nb_model_load(path, &err);
    CHECK(m != NULL, "load: %s", err.msg);
    if (m != NULL) {
        got = nb_model_predict(m, "ONE", 3, &len);
        CHECK(len == 3 && memcmp(got, "a\0b", 3) == 0, "'ONE' -> %zu bytes",
              len);
        got = nb_model_predict(m, "four", 4, &len);
        CHECK(len == 2 && memcmp(got, "\xff\xfe", 2) == 0,
              "'four' -> %zu "
              "bytes",
              len);
        nb_model_free(m);
    }
    free(path);
    free(prefix);
    free(dir);
}

/* Errors: no training rows, 0 features, partials of another feature count,
 * a missing, a foreign, a truncated model; an unfinished partial leaves no
 * file. */
static void
test_errors(void)
{
    static const char *const held[] = {"?a", "x", "?b", "y"};
    static const char        foreign[] = "not a model at all, but long enough";
    nb_result                res;
    sh_err                   err = {0};
    nb_partial              *p;
    char                    *path, *pre, *tmp;
    const char              *cp;
    int                      rc;

    rc = train_rows("notrain", 32, held, N_OF(held), &res, &err);
    CHECK(rc == SH_EDATA && strstr(err.msg, "no training rows") != NULL,
          "all held out: %d '%s'", rc, err.msg);
    rc = nb_train_final(32, NULL, 0, g_dir, &res, &err);
    CHECK(rc == SH_EDATA, "no partials: %d '%s'", rc, err.msg);

    pre = xasprintf("%s/zero", g_dir);
    CHECK(nb_partial_new(0, pre, &err) == NULL && err.code == SH_EINVAL,
          "0 features: code %d", err.code);

    /* An unfinished partial removes its files. */
    p = nb_partial_new(8, pre, &err);
    CHECK(p != NULL, "new: %s", err.msg);
    nb_partial_add(p, "a", 1, "x", 1, 1, &err);
    tmp = xasprintf("%s.test.tmp", pre);
    CHECK(th_exists(tmp), "the test file is written under %s", tmp);
    nb_partial_free(p);
    CHECK(!th_exists(tmp), "%s left by an unfinished partial", tmp);
    free(tmp);

    /* Partials of 8 features, final of 16. */
    p = nb_partial_new(8, pre, &err);
    nb_partial_add(p, "a", 1, "x", 1, 0, &err);
    CHECK(nb_partial_finish(p, &err) == 0, "finish: %s", err.msg);
    nb_partial_free(p);
    cp = pre;
    rc = nb_train_final(16, &cp, 1, g_dir, &res, &err);
    CHECK(rc == SH_EDATA && strstr(err.msg, "features") != NULL,
          "mismatched features: %d '%s'", rc, err.msg);
    path = xasprintf("%s/nothere", g_dir);
    cp = path;
    rc = nb_train_final(16, &cp, 1, g_dir, &res, &err);
    CHECK(rc == SH_EIO, "missing partial: %d '%s'", rc, err.msg);
    free(path);

    /* Models: missing, not a model, truncated. */
    path = xasprintf("%s/nomodel", g_dir);
    CHECK(nb_model_load(path, &err) == NULL && err.code == SH_EIO,
          "missing model: code %d", err.code);
    (void)th_write_file(path, foreign, sizeof foreign - 1);
    CHECK(nb_model_load(path, &err) == NULL && err.code == SH_EDATA,
          "foreign file: code %d", err.code);
    free(path);
    path = xasprintf("%s/ties/model", g_dir); /* made by test_ties */
    if (th_exists(path)) {
        struct stat st;

        stat(path, &st);
        CHECK(truncate(path, st.st_size - 1) == 0, "truncate");
        CHECK(nb_model_load(path, &err) == NULL && err.code == SH_EDATA,
              "truncated model: code %d", err.code);
    }
    free(path);
    free(pre);
}

void
test_nb_register(void)
{
    CU_pSuite s = CU_add_suite("nb", suite_init, suite_cleanup);

    CU_add_test(s, "corpus, 2^18 features, vs sklearn", test_corpus_big);
    CU_add_test(s, "corpus, 37 features, vs sklearn", test_corpus_small);
    CU_add_test(s, "ties, empty and null", test_ties);
    CU_add_test(s, "odd labels", test_odd_labels);
    CU_add_test(s, "errors", test_errors);
}
