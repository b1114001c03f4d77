#!/usr/bin/python3
"""nb_oracle.py - the expected values of tests/unit/test_text.c and
tests/unit/test_nb.c, computed by an independent implementation:
scikit-learn's murmurhash3_32, HashingVectorizer and MultinomialNB (Debian's
python3-sklearn 1.2, numpy 1.24, scipy 1.10), offline.

usage: /usr/bin/python3 tests/unit/data/nb_oracle.py > /tmp/oracle.h
Then compare its blocks with the ones pasted in the two test files (between
the "BEGIN nb_oracle.py" and "END nb_oracle.py" lines): they must be the
same. The corpus generator below must stay identical to corpus_doc() in
test_nb.c (a 64-bit LCG, so both sides make the same bytes).
"""
import re
import sys
import warnings

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.naive_bayes import MultinomialNB
from sklearn.utils import murmurhash3_32

M64 = (1 << 64) - 1
TOKEN_PATTERN = r"[a-z0-9]+"


def c_bytes(b):
    """A C string literal of bytes b: printable ASCII as itself (but for
    the quote, the backslash and '?', which could start a trigraph), other
    bytes as hex escapes closed by "" so no following digit joins them."""
    out = []
    for ch in b:
        c = chr(ch)
        if 0x20 <= ch < 0x7f and c not in '"\\?':
            out.append(c)
        else:
            out.append("\\x%02x\"\"" % ch)
    return '"' + "".join(out) + '"'


def vec(features):
    return HashingVectorizer(n_features=features, token_pattern=TOKEN_PATTERN,
                             lowercase=True, alternate_sign=False, norm=None,
                             dtype=np.float64)


# ---- text.c --------------------------------------------------------------

MURMUR_KEYS = [b"", b"a", b"ab", b"abc", b"abcd", b"abcde", b"abcdef",
               b"abcdefg", b"hello", b"Hello, World!", b"\x00", b"\xff",
               b"\xff\xfe", b"\xff\xfe\xfd", b"\x80\x81\x82\x83\x84",
               "caf\u00e9".encode(), "\u65e5\u672c\u8a9e".encode(),
               bytes(range(0, 256, 17)), b"y3ls1hgv", b"machine learning",
               b"The quick brown fox jumps over the lazy dog"]
MURMUR_SEEDS = [0, 42, 0xDEADBEEF]

BUCKET_TOKENS = [b"a", b"ab", b"abc", b"abcd", b"hello", b"2024", b"x1",
                 b"y3ls1hgv", b"0apq6cn4", b"wy2fswcc", b"machine",
                 b"learning", b"z" * 70]
BUCKET_FEATURES = [2**18, 2**20, 1000, 37, 7, 1]

TOKEN_TEXTS = [b"", b"   ", b"Hello, World!", b"a", b"UPPER lower MiXeD 123abc",
               b"e-mail: x@y.com; tel. +1 (555) 010-9999.",
               "na\u00efve caf\u00e9 \u00c9cole stra\u00dfe".encode(),
               b"tabs\tand\nnewlines\r\nend", b"__under_score__", b"9",
               b"trailing token"]


def text_blocks():
    print("/* BEGIN nb_oracle.py text */")
    print("static const struct mm_case {\n    const char *key;\n    size_t len;\n"
          "    uint32_t seed;\n    uint32_t hash;\n} mm_cases[] = {")
    for key in MURMUR_KEYS:
        for seed in MURMUR_SEEDS:
            h = murmurhash3_32(key, seed=seed, positive=True)
            print("    {%s, %d, 0x%08xu, 0x%08xu}," % (c_bytes(key), len(key), seed, h))
    print("};")
    print("static const struct bucket_case {\n    const char *tok;\n    uint32_t features;\n"
          "    uint32_t bucket;\n} bucket_cases[] = {")
    for tok in BUCKET_TOKENS:
        for f in BUCKET_FEATURES:
            X = vec(f).transform([tok.decode()])
            assert X.nnz == 1
            print("    {%s, %du, %du}," % (c_bytes(tok), f, X.indices[0]))
    print("};")
    print("static const struct token_case {\n    const char *text;\n    const char *tokens; /* space-separated */\n} token_cases[] = {")
    for t in TOKEN_TEXTS:
        toks = re.findall(TOKEN_PATTERN, t.decode().lower())
        print("    {%s, %s}," % (c_bytes(t), c_bytes(" ".join(toks).encode())))
    print("};")
    print("/* END nb_oracle.py text */")


# ---- the corpus of test_nb.c ----------------------------------------------

LABELS = [b"alpha", b"Beta", b"gamma", b"alpha2"]  # byte order: Beta alpha alpha2 gamma
SYL = [b"ka", b"lo", b"mi", b"nu", b"pe", b"ra", b"si", b"to", b"vu", b"xe",
       b"zo", b"qa", b"ban", b"del", b"fir", b"gor"]
SEPS = [b" ", b" ", b" ", b", ", b". ", b"-", b"\t", b" \xc3\xa9 ", b"\xc3\x9f",
        b" (", b") ", b"  "]
N_DOCS = 200


class Rng:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & M64
        return self.s >> 33


def corpus_doc(i):
    """(label or None, text bytes, held_out) of document i."""
    r = Rng(1000 + i)
    cls = r.next() % 4
    label = LABELS[cls]
    held_out = i % 5 == 0
    if i % 25 == 0:
        label = b"zeta"  # a class only held-out rows have
    if i % 40 == 13:
        label = None  # null label: skipped
    nwords = 3 + r.next() % 30
    if i % 37 == 5:
        nwords = 0
    out = bytearray()
    for w in range(nwords):
        if r.next() % 16 == 0:
            word = str(r.next() % 1000).encode()
        else:
            word = bytearray()
            for _ in range(1 + r.next() % 3):
                if r.next() % 2 == 0:
                    word += SYL[4 * cls + r.next() % 4]
                else:
                    word += SYL[r.next() % 16]
            if r.next() % 8 == 0:
                word[0:1] = bytes([word[0] - 32])
            word = bytes(word)
        if w > 0:
            out += SEPS[r.next() % len(SEPS)]
        out += word
    if i % 41 == 9:
        out += b" ... !!! --- "
    if i % 50 == 7:
        out += b" " + b"Long" * 20 + b"token"
    return label, bytes(out), held_out


def corpus_blocks():
    docs = [corpus_doc(i) for i in range(N_DOCS)]
    train = [(l, t) for l, t, h in docs if l is not None and not h]
    test = [(l, t) for l, t, h in docs if l is not None and h]
    all_labels = sorted({l.decode() for l, _ in train + test})
    print("/* BEGIN nb_oracle.py corpus */")
    print("#define NB_N_TRAIN %d" % len(train))
    print("#define NB_N_TEST %d" % len(test))
    print("/* every label, in byte order */")
    print("static const char *const nb_labels[] = {%s};" % ", ".join(c_bytes(l.encode()) for l in all_labels))
    for name, f in (("big", 2**18), ("small", 37)):
        v = vec(f)
        Xtr = v.transform([t.decode() for _, t in train])
        ytr = np.array([l.decode() for l, _ in train], dtype=object)
        Xte = v.transform([t.decode() for _, t in test])
        yte = np.array([l.decode() for l, _ in test], dtype=object)
        nb = MultinomialNB(alpha=1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # log(0) of the test-only class
            nb.partial_fit(Xtr, ytr, classes=all_labels)  # as the W6 peer
        pred = nb.predict(Xte)
        # The model fitted on the training labels alone predicts the same.
        nb2 = MultinomialNB(alpha=1.0).fit(Xtr, ytr)
        assert (nb2.predict(Xte) == pred).all()
        trained = list(nb2.classes_)
        correct = int((pred == yte).sum())
        print("/* features %d: MultinomialNB(alpha=1) */" % f)
        print("#define NB_%s_FEATURES %du" % (name.upper(), f))
        print("#define NB_%s_CORRECT %d" % (name.upper(), correct))
        print("static const char *const nb_%s_pred[NB_N_TEST] = {" % name)
        for p in pred:
            print("    %s," % c_bytes(p.encode()))
        print("};")
        print("/* log priors of the trained classes, in byte order */")
        print("static const double nb_%s_prior[] = {%s};" % (
            name, ", ".join(float(x).hex() for x in nb2.class_log_prior_)))
        print("/* (class, bucket, feature_log_prob_) samples */")
        print("static const struct flp_case nb_%s_flp[] = {" % name)
        fc = nb2.feature_count_
        rows = []
        for c in range(len(trained)):
            nz = np.nonzero(fc[c])[0]
            z = np.nonzero(fc[c] == 0)[0]
            for b in list(nz[:: max(1, len(nz) // 6)][:6]) + list(z[:2]):
                rows.append((c, int(b), nb2.feature_log_prob_[c, b]))
        rows.append((len(trained) - 1, f - 1, nb2.feature_log_prob_[-1, f - 1]))
        for c, b, x in rows:
            print("    {%d, %du, %s}," % (c, b, float(x).hex()))
        print("};")
        labels = all_labels
        rep = classification_report(yte, pred, labels=labels, output_dict=True,
                                    zero_division=0)
        print("/* classification_report(zero_division=0): precision, recall, f1, support */")
        print("static const struct prf_case nb_%s_prf[] = {" % name)
        for l in labels:
            d = rep[l]
            print("    {%s, %r, %r, %r, %d}," % (c_bytes(l.encode()), d["precision"], d["recall"],
                                              d["f1-score"], d["support"]))
        for key in ("macro avg", "weighted avg"):
            d = rep[key]
            print("    {%s, %r, %r, %r, %d}," % (c_bytes(key.encode()), d["precision"], d["recall"],
                                              d["f1-score"], d["support"]))
        print("};")
        cm = confusion_matrix(yte, pred, labels=labels)
        print("static const int nb_%s_confusion[%d][%d] = {" % (name, len(labels), len(labels)))
        for row in cm:
            print("    {%s}," % ", ".join(str(int(x)) for x in row))
        print("};")
    print("/* END nb_oracle.py corpus */")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "text"):
        text_blocks()
    if what in ("all", "corpus"):
        corpus_blocks()
