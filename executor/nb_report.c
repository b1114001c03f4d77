/*
 * nb_report.c - the report of naive Bayes training: the held-out rows run
 * through the model (accuracy, confusion) and the JSON "report" artifact
 * (per-class precision, recall and F1, macro and weighted averages, as
 * scikit-learn's classification_report with zero_division=0).
 */
#include "nb.h"
#include "nb_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rowfile.h"
#include "../lib/util.h"

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
        if (need == 9 || k <= need || (need == 2 && cp < 0x800)
            || (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp < 0xe000)) {
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
int
nb_write_report(const nb_model *m, const ltab *labels, const uint64_t *conf,
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
        qsort(sorted, nl, sizeof *sorted, nb_lref_cmp);
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
    rc = nb_afile_open(&f, path, err);
    if (rc == 0) {
        nb_afile_put(&f, text, strlen(text));
        nb_afile_put(&f, "\n", 1);
        rc = nb_afile_commit(&f, err);
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
int
nb_evaluate(const nb_model *m, const part *parts, size_t n, ltab *labels,
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

            if (row[0].type != SH_STRING || row[1].type != SH_STRING
                || row[1].u.s.len % 8 != 0) {
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
            t = nb_ltab_intern(labels, row[0].u.s.ptr, row[0].u.s.len, &added);
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
