/*
 * test_text.c - unit tests of executor/text: MurmurHash3_x86_32 (empty key,
 * 1-3 byte tails, non-ASCII bytes, seeds, unaligned keys), the
 * HashingVectorizer bucket (2^18, 2^20 and small feature counts, and the
 * tokens whose hash is INT32_MIN), the token scanner and lowercasing, and
 * text_buckets against the token-by-token path.
 *
 * text_token_spans (64-byte windows of bit masks), text_token_next and the
 * word-at-a-time text_lower are checked against plain byte loops: tokens
 * planted at every position near the 16- and 64-byte window edges, and a
 * fuzz of random strings (a fixed xorshift seed, so a failure repeats).
 * Under valgrind the fuzz runs over a tenth of the strings: the same
 * kinds of strings, so the same paths.
 *
 * The expected values come from scikit-learn (murmurhash3_32,
 * HashingVectorizer, re.findall of its token pattern on lowercased text),
 * computed offline by tests/unit/data/nb_oracle.py and pasted below.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "../../executor/text.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */
/* BEGIN nb_oracle.py text */
static const struct mm_case {
    const char *key;
    size_t len;
    uint32_t seed;
    uint32_t hash;
} mm_cases[] = {
    {"", 0, 0x00000000u, 0x00000000u},
    {"", 0, 0x0000002au, 0x087fcd5cu},
    {"", 0, 0xdeadbeefu, 0x0de5c6a9u},
    {"a", 1, 0x00000000u, 0x3c2569b2u},
    {"a", 1, 0x0000002au, 0xb2e5a263u},
    {"a", 1, 0xdeadbeefu, 0x8872dbc8u},
    {"ab", 2, 0x00000000u, 0x9bbfd75fu},
    {"ab", 2, 0x0000002au, 0xd72d0e47u},
    {"ab", 2, 0xdeadbeefu, 0xd2ba8c7du},
    {"abc", 3, 0x00000000u, 0xb3dd93fau},
    {"abc", 3, 0x0000002au, 0x4e4f1e68u},
    {"abc", 3, 0xdeadbeefu, 0xd201576fu},
    {"abcd", 4, 0x00000000u, 0x43ed676au},
    {"abcd", 4, 0x0000002au, 0xe860e5ccu},
    {"abcd", 4, 0xdeadbeefu, 0xf772becdu},
    {"abcde", 5, 0x00000000u, 0xe89b9af6u},
    {"abcde", 5, 0x0000002au, 0xaeda2bf0u},
    {"abcde", 5, 0xdeadbeefu, 0x97643673u},
    {"abcdef", 6, 0x00000000u, 0x6181c085u},
    {"abcdef", 6, 0x0000002au, 0x91fd060bu},
    {"abcdef", 6, 0xdeadbeefu, 0x26291fb3u},
    {"abcdefg", 7, 0x00000000u, 0x883c9b06u},
    {"abcdefg", 7, 0x0000002au, 0x6a2af619u},
    {"abcdefg", 7, 0xdeadbeefu, 0x445d6324u},
    {"hello", 5, 0x00000000u, 0x248bfa47u},
    {"hello", 5, 0x0000002au, 0xe2dbd2e1u},
    {"hello", 5, 0xdeadbeefu, 0xb7748c4eu},
    {"Hello, World!", 13, 0x00000000u, 0x2352d5c7u},
    {"Hello, World!", 13, 0x0000002au, 0x49b10de5u},
    {"Hello, World!", 13, 0xdeadbeefu, 0xddb71747u},
    {"\x00""", 1, 0x00000000u, 0x514e28b7u},
    {"\x00""", 1, 0x0000002au, 0xdd4449c2u},
    {"\x00""", 1, 0xdeadbeefu, 0xdd6a89d7u},
    {"\xff""", 1, 0x00000000u, 0xfd6cf10du},
    {"\xff""", 1, 0x0000002au, 0x10e99a12u},
    {"\xff""", 1, 0xdeadbeefu, 0x780f613eu},
    {"\xff""\xfe""", 2, 0x00000000u, 0x96c86850u},
    {"\xff""\xfe""", 2, 0x0000002au, 0x0c6c3301u},
    {"\xff""\xfe""", 2, 0xdeadbeefu, 0x730ffe74u},
    {"\xff""\xfe""\xfd""", 3, 0x00000000u, 0xd2bef2dcu},
    {"\xff""\xfe""\xfd""", 3, 0x0000002au, 0x9636e3c6u},
    {"\xff""\xfe""\xfd""", 3, 0xdeadbeefu, 0x148f0aa9u},
    {"\x80""\x81""\x82""\x83""\x84""", 5, 0x00000000u, 0xb648cb76u},
    {"\x80""\x81""\x82""\x83""\x84""", 5, 0x0000002au, 0xe37212abu},
    {"\x80""\x81""\x82""\x83""\x84""", 5, 0xdeadbeefu, 0x33068403u},
    {"caf\xc3""\xa9""", 5, 0x00000000u, 0x241c0f08u},
    {"caf\xc3""\xa9""", 5, 0x0000002au, 0x4e3bbdcdu},
    {"caf\xc3""\xa9""", 5, 0xdeadbeefu, 0x3e89f4ddu},
    {"\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", 9, 0x00000000u, 0xa5a47297u},
    {"\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", 9, 0x0000002au, 0xc5c6deb8u},
    {"\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", 9, 0xdeadbeefu, 0x0d023e7bu},
    {"\x00""\x11""\x22""3DUfw\x88""\x99""\xaa""\xbb""\xcc""\xdd""\xee""\xff""", 16, 0x00000000u, 0xf6f13359u},
    {"\x00""\x11""\x22""3DUfw\x88""\x99""\xaa""\xbb""\xcc""\xdd""\xee""\xff""", 16, 0x0000002au, 0x8629d115u},
    {"\x00""\x11""\x22""3DUfw\x88""\x99""\xaa""\xbb""\xcc""\xdd""\xee""\xff""", 16, 0xdeadbeefu, 0x3636d652u},
    {"y3ls1hgv", 8, 0x00000000u, 0x80000000u},
    {"y3ls1hgv", 8, 0x0000002au, 0x223ebb2bu},
    {"y3ls1hgv", 8, 0xdeadbeefu, 0x689aef16u},
    {"machine learning", 16, 0x00000000u, 0x02445a92u},
    {"machine learning", 16, 0x0000002au, 0x41273f55u},
    {"machine learning", 16, 0xdeadbeefu, 0x19e26853u},
    {"The quick brown fox jumps over the lazy dog", 43, 0x00000000u, 0x2e4ff723u},
    {"The quick brown fox jumps over the lazy dog", 43, 0x0000002au, 0x347ca102u},
    {"The quick brown fox jumps over the lazy dog", 43, 0xdeadbeefu, 0x3a7b3f4du},
};
static const struct bucket_case {
    const char *tok;
    uint32_t features;
    uint32_t bucket;
} bucket_cases[] = {
    {"a", 262144u, 92594u},
    {"a", 1048576u, 354738u},
    {"a", 1000u, 850u},
    {"a", 37u, 19u},
    {"a", 7u, 4u},
    {"a", 1u, 0u},
    {"ab", 262144u, 10401u},
    {"ab", 1048576u, 10401u},
    {"ab", 1000u, 305u},
    {"ab", 37u, 26u},
    {"ab", 7u, 3u},
    {"ab", 1u, 0u},
    {"abc", 262144u, 158726u},
    {"abc", 1048576u, 158726u},
    {"abc", 1000u, 294u},
    {"abc", 37u, 8u},
    {"abc", 7u, 1u},
    {"abc", 1u, 0u},
    {"abcd", 262144u, 92010u},
    {"abcd", 1048576u, 878442u},
    {"abcd", 1000u, 978u},
    {"abcd", 37u, 10u},
    {"abcd", 7u, 2u},
    {"abcd", 1u, 0u},
    {"hello", 262144u, 260679u},
    {"hello", 1048576u, 784967u},
    {"hello", 1000u, 351u},
    {"hello", 37u, 7u},
    {"hello", 7u, 6u},
    {"hello", 1u, 0u},
    {"2024", 262144u, 240610u},
    {"2024", 1048576u, 502754u},
    {"2024", 1000u, 962u},
    {"2024", 37u, 23u},
    {"2024", 7u, 3u},
    {"2024", 1u, 0u},
    {"x1", 262144u, 125047u},
    {"x1", 1048576u, 125047u},
    {"x1", 1000u, 591u},
    {"x1", 37u, 23u},
    {"x1", 7u, 0u},
    {"x1", 1u, 0u},
    {"y3ls1hgv", 262144u, 0u},
    {"y3ls1hgv", 1048576u, 0u},
    {"y3ls1hgv", 1000u, 648u},
    {"y3ls1hgv", 37u, 22u},
    {"y3ls1hgv", 7u, 2u},
    {"y3ls1hgv", 1u, 0u},
    {"0apq6cn4", 262144u, 0u},
    {"0apq6cn4", 1048576u, 0u},
    {"0apq6cn4", 1000u, 648u},
    {"0apq6cn4", 37u, 22u},
    {"0apq6cn4", 7u, 2u},
    {"0apq6cn4", 1u, 0u},
    {"wy2fswcc", 262144u, 0u},
    {"wy2fswcc", 1048576u, 0u},
    {"wy2fswcc", 1000u, 648u},
    {"wy2fswcc", 37u, 22u},
    {"wy2fswcc", 7u, 2u},
    {"wy2fswcc", 1u, 0u},
    {"machine", 262144u, 159138u},
    {"machine", 1048576u, 683426u},
    {"machine", 1000u, 122u},
    {"machine", 37u, 33u},
    {"machine", 7u, 3u},
    {"machine", 1u, 0u},
    {"learning", 262144u, 134800u},
    {"learning", 1048576u, 659088u},
    {"learning", 1000u, 664u},
    {"learning", 37u, 18u},
    {"learning", 7u, 0u},
    {"learning", 1u, 0u},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 262144u, 138575u},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 1048576u, 662863u},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 1000u, 807u},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 37u, 23u},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 7u, 6u},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 1u, 0u},
};
static const struct token_case {
    const char *text;
    const char *tokens; /* space-separated */
} token_cases[] = {
    {"", ""},
    {"   ", ""},
    {"Hello, World!", "hello world"},
    {"a", "a"},
    {"UPPER lower MiXeD 123abc", "upper lower mixed 123abc"},
    {"e-mail: x@y.com; tel. +1 (555) 010-9999.", "e mail x y com tel 1 555 010 9999"},
    {"na\xc3""\xaf""ve caf\xc3""\xa9"" \xc3""\x89""cole stra\xc3""\x9f""e", "na ve caf cole stra e"},
    {"tabs\x09""and\x0a""newlines\x0d""\x0a""end", "tabs and newlines end"},
    {"__under_score__", "under score"},
    {"9", "9"},
    {"trailing token", "trailing token"},
};
/* END nb_oracle.py text */
/* clang-format on */

/* Every case, from aligned and from unaligned addresses. */
static void
test_murmur3(void)
{
    static unsigned char buf[128 + 8];

    for (size_t i = 0; i < N_OF(mm_cases); i++) {
        const struct mm_case *c = &mm_cases[i];
        uint32_t              h = text_murmur3_32(c->key, c->len, c->seed);

        CHECK(h == c->hash,
              "murmur3 of case %zu (%zu bytes, seed 0x%08" PRIx32
              "): expected 0x%08" PRIx32 ", got 0x%08" PRIx32,
              i, c->len, c->seed, c->hash, h);
        for (size_t off = 1; off < 4 && c->len <= 128; off++) {
            memcpy(buf + off, c->key, c->len);
            h = text_murmur3_32(buf + off, c->len, c->seed);
            CHECK(h == c->hash,
                  "murmur3 of case %zu at offset %zu: expected "
                  "0x%08" PRIx32 ", got 0x%08" PRIx32,
                  i, off, c->hash, h);
        }
    }
}

/* text_bucket of the lowercase token, of its uppercase (lowered first)
 * and text_buckets of the uppercase token alone. */
static void
test_bucket(void)
{
    char     up[128], low[128];
    uint32_t out[128];

    for (size_t i = 0; i < N_OF(bucket_cases); i++) {
        const struct bucket_case *c = &bucket_cases[i];
        size_t                    n = strlen(c->tok), k;
        uint32_t                  b = text_bucket(c->tok, n, c->features);

        CHECK(b == c->bucket,
              "bucket of '%s' mod %" PRIu32 ": expected %" PRIu32
              ", got %" PRIu32,
              c->tok, c->features, c->bucket, b);
        for (size_t j = 0; j < n; j++)
            up[j] = c->tok[j] >= 'a' && c->tok[j] <= 'z' ? c->tok[j] - 32
                                                         : c->tok[j];
        text_lower(low, up, n);
        b = text_bucket(low, n, c->features);
        CHECK(b == c->bucket,
              "bucket of lowered '%.*s': expected %" PRIu32 ", got %" PRIu32,
              (int)n, up, c->bucket, b);
        k = text_buckets(up, n, c->features, out);
        CHECK(k == 1 && out[0] == c->bucket,
              "text_buckets('%.*s', %" PRIu32 "): expected 1 bucket %" PRIu32
              ", got %zu, first %" PRIu32,
              (int)n, up, c->features, c->bucket, k, k ? out[0] : 0);
    }
}

/* The tokens of each text, lowercased and joined by spaces, for both
 * values of 'lowercase'; and text_buckets against text_bucket of each. */
static void
test_tokens(void)
{
    for (size_t i = 0; i < N_OF(token_cases); i++) {
        const struct token_case *c = &token_cases[i];
        const char              *s = c->text;
        size_t                   n = strlen(s), pos = 0, start, len, k = 0;
        char                     got[512], raw[512];
        size_t                   g = 0, rlen = 0;
        uint32_t                 want_b[256], got_b[256];

        while ((len = text_token_next(s, n, &pos, 1, &start)) > 0) {
            if (g > 0)
                got[g++] = ' ';
            text_lower(got + g, s + start, len);
            want_b[k++] = text_bucket(got + g, len, 1u << 18);
            g += len;
        }
        got[g] = '\0';
        CHECK(strcmp(got, c->tokens) == 0,
              "tokens of case %zu: expected "
              "'%s', got '%s'",
              i, c->tokens, got);
        CHECK(pos == n, "case %zu: at the end pos is %zu, not %zu", i, pos, n);
        len = text_token_next(s, n, &pos, 1, &start);
        CHECK(len == 0, "case %zu: a call after the end gives %zu", i, len);

        pos = 0;
        while ((len = text_token_next(s, n, &pos, 0, &start)) > 0) {
            if (rlen > 0)
                raw[rlen++] = ' ';
            memcpy(raw + rlen, s + start, len);
            rlen += len;
        }
        text_lower(raw, raw, rlen);
        raw[rlen] = '\0';
        CHECK(strcmp(raw, c->tokens) == 0,
              "tokens of case %zu with "
              "lowercase 0, lowered after: expected '%s', got '%s'",
              i, c->tokens, raw);

        len = text_buckets(s, n, 1u << 18, got_b);
        CHECK(len == k, "text_buckets of case %zu: %zu buckets, expected %zu",
              i, len, k);
        for (size_t j = 0; j < k && j < len; j++)
            CHECK(got_b[j] == want_b[j],
                  "case %zu token %zu: text_buckets %" PRIu32
                  ", text_bucket %" PRIu32,
                  i, j, got_b[j], want_b[j]);
    }
}

/* Scanning from a position, a long token, the densest text (one-byte
 * tokens: n / 2 + 1 of them), and text_lower on every byte. */
static void
test_scan_edges(void)
{
    char     s[300], low[256], src[256];
    uint32_t out[160];
    size_t   pos = 5, start = 99, len;

    memcpy(s, "ab cd", 5);
    len = text_token_next(s, 5, &pos, 1, &start);
    CHECK(len == 0 && pos == 5, "from the end: length %zu, pos %zu", len, pos);
    pos = 1;
    len = text_token_next(s, 5, &pos, 1, &start);
    CHECK(len == 1 && start == 1 && pos == 2,
          "from inside a token: length "
          "%zu at %zu, pos %zu (expected 1 at 1, pos 2)",
          len, start, pos);

    for (int i = 0; i < 200; i++)
        s[i] = (char)('A' + i % 26);
    pos = 0;
    len = text_token_next(s, 200, &pos, 1, &start);
    CHECK(len == 200 && start == 0, "a 200-byte token: length %zu", len);
    text_lower(low, s, 200 > sizeof low ? sizeof low : 200);
    CHECK(text_buckets(s, 200, 1000, out) == 1
              && out[0] == text_bucket(low, 200, 1000),
          "a 200-byte token: text_buckets differs from text_bucket");

    for (int i = 0; i < 299; i++)
        s[i] = i % 2 ? ' ' : 'x';
    len = text_buckets(s, 299, 7, out);
    CHECK(len == 150, "299 bytes 'x x x ...': %zu tokens, expected 150", len);

    for (int i = 0; i < 256; i++)
        src[i] = (char)i;
    text_lower(low, src, 256);
    for (int i = 0; i < 256; i++) {
        int want = i >= 'A' && i <= 'Z' ? i + 32 : i;

        CHECK((unsigned char)low[i] == want,
              "text_lower of byte 0x%02x: "
              "0x%02x",
              i, (unsigned char)low[i]);
    }
    text_lower(src, src, 256);
    CHECK(memcmp(src, low, 256) == 0, "text_lower in place differs");
}

/* ---- text_token_spans and text_lower against byte loops ---------------- */

/* The longest string the window and fuzz tests make. */
#define MAX_TEXT 300
/* The most tokens text_token_spans is asked for at once. */
#define MAX_SPANS 64

/* A token byte, tested the plain way: [0-9A-Za-z]. */
static int
ref_is_tok(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
           || (c >= 'a' && c <= 'z');
}

/* The tokens of s[0..n) at or after 'pos' (a token 'pos' is inside
 * counts from 'pos'), one byte at a time, into 'out'. Returns how many. */
static size_t
ref_tokens(const unsigned char *s, size_t n, size_t pos, text_span *out)
{
    size_t k = 0, i = pos;

    while (i < n) {
        if (!ref_is_tok(s[i])) {
            i++;
            continue;
        }
        out[k].start = i;
        while (i < n && ref_is_tok(s[i]))
            i++;
        out[k].len = i - out[k].start;
        k++;
    }
    return k;
}

/* 'n' bytes of 'src' with A-Z lowercased, one byte at a time. */
static void
ref_lower(unsigned char *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i];
}

/*
 * The first difference a loop of checks found, described, and how many
 * there were: a fuzz of 200000 strings is one CUnit assertion, not
 * millions, and the message says what was compared.
 */
typedef struct diffs {
    size_t n;        /* strings with a difference */
    char   msg[900]; /* the first one, in words */
} diffs;

static void note_diff(diffs *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Counts a difference; the words of the first one are kept. */
static void
note_diff(diffs *d, const char *fmt, ...)
{
    va_list ap;

    if (d->n++ > 0)
        return;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

/* Up to 24 bytes of s[0..n) in hex, from 8 before 'at': "@off xx xx...". */
static const char *
hex_near(const unsigned char *s, size_t n, size_t at, char *buf, size_t size)
{
    size_t from = at > 8 ? at - 8 : 0, len = 0;

    len += (size_t)snprintf(buf, size, "@%zu", from);
    for (size_t i = from; i < n && i < from + 24 && len + 4 < size; i++)
        len += (size_t)snprintf(buf + len, size - len, " %02x", s[i]);
    return buf;
}

/*
 * Compares text_token_next and text_token_spans (at most 'max' tokens a
 * call) from 'pos' with ref_tokens, on the 'n' bytes at 's'; 'what' names
 * the string in the message. Each call of text_token_spans must return at
 * most 'max' tokens, the next ones in order, and leave *pos past the last
 * and not past the next; the tokens end with a call that returns 0 and
 * leaves *pos at n. Returns 0, or 1 with the first difference in 'd'.
 */
static int
compare_scanners(const unsigned char *s, size_t n, size_t pos, size_t max,
                 const char *what, diffs *d)
{
    text_span   want[MAX_TEXT / 2 + 2], got[MAX_SPANS + 1];
    const char *cs = (const char *)s;
    char        hex[128];
    size_t      n_want = ref_tokens(s, n, pos, want), k, len, start;
    size_t      p = pos, seen = 0, calls;

    for (k = 0;; k++) {
        len = text_token_next(cs, n, &p, (int)(k & 1), &start);
        if (len == 0)
            break;
        if (k >= n_want || start != want[k].start || len != want[k].len) {
            note_diff(d,
                      "%s from %zu: text_token_next token %zu is [%zu, "
                      "+%zu), the byte loop's %s; bytes %s",
                      what, pos, k, start, len,
                      k >= n_want ? "has ended" : "differs",
                      hex_near(s, n, start, hex, sizeof hex));
            return 1;
        }
    }
    if (k != n_want || p != n) {
        note_diff(d,
                  "%s from %zu: text_token_next found %zu tokens and "
                  "left pos %zu, the byte loop %zu tokens, end %zu",
                  what, pos, k, p, n_want, n);
        return 1;
    }

    p = pos;
    for (calls = 0; calls <= n_want + 1; calls++) {
        size_t last_end, next;

        k = text_token_spans(cs, n, &p, got, max);
        if (k > max) {
            note_diff(d, "%s: text_token_spans returned %zu > max %zu", what, k,
                      max);
            return 1;
        }
        if (k == 0)
            break;
        for (size_t j = 0; j < k; j++, seen++) {
            if (seen >= n_want || got[j].start != want[seen].start
                || got[j].len != want[seen].len) {
                note_diff(d,
                          "%s from %zu, max %zu: text_token_spans token "
                          "%zu is [%zu, +%zu), the byte loop's %s [%zu, "
                          "+%zu); bytes %s",
                          what, pos, max, seen, got[j].start, got[j].len,
                          seen >= n_want ? "has ended, no" : "is",
                          seen < n_want ? want[seen].start : 0,
                          seen < n_want ? want[seen].len : 0,
                          hex_near(s, n, got[j].start, hex, sizeof hex));
                return 1;
            }
        }
        last_end = want[seen - 1].start + want[seen - 1].len;
        next = seen < n_want ? want[seen].start : n;
        if (p < last_end || p > next) {
            note_diff(d,
                      "%s from %zu, max %zu: after token %zu (ends at %zu) "
                      "pos is %zu, not in [%zu, %zu]",
                      what, pos, max, seen - 1, last_end, p, last_end, next);
            return 1;
        }
    }
    if (seen != n_want || p != n) {
        note_diff(d,
                  "%s from %zu, max %zu: text_token_spans found %zu tokens "
                  "in %zu calls and left pos %zu, the byte loop %zu tokens, "
                  "end %zu",
                  what, pos, max, seen, calls, p, n_want, n);
        return 1;
    }
    return 0;
}

/*
 * Compares text_lower of the 'n' bytes at 's' with ref_lower: into
 * another buffer (whose bytes around the n must stay as they were) and in
 * place. Returns 0, or 1 with the first difference in 'd'.
 */
static int
compare_lower(const unsigned char *s, size_t n, const char *what, diffs *d)
{
    unsigned char want[MAX_TEXT], got[MAX_TEXT + 16], copy[MAX_TEXT];
    char          hex[128];
    size_t        off = n % 8, i;

    ref_lower(want, s, n);
    memset(got, 0xa5, sizeof got);
    text_lower((char *)got + off, (const char *)s, n);
    for (i = 0; i < off + n + 8; i++) {
        int inside = i >= off && i < off + n;

        if (inside ? got[i] != want[i - off] : got[i] != 0xa5)
            break;
    }
    if (i < off + n + 8) {
        note_diff(d,
                  "%s: text_lower to another buffer: its byte %zu (the "
                  "%zu bytes start at %zu) is 0x%02x, expected 0x%02x; "
                  "source bytes %s",
                  what, i, n, off, got[i],
                  i >= off && i < off + n ? want[i - off] : 0xa5,
                  hex_near(s, n, i >= off ? i - off : 0, hex, sizeof hex));
        return 1;
    }
    memcpy(copy, s, n);
    text_lower((char *)copy, (const char *)copy, n);
    for (i = 0; i < n && copy[i] == want[i]; i++)
        ;
    if (i < n) {
        note_diff(d,
                  "%s: text_lower in place: byte %zu is 0x%02x, expected "
                  "0x%02x; source bytes %s",
                  what, i, copy[i], want[i],
                  hex_near(s, n, i, hex, sizeof hex));
        return 1;
    }
    return 0;
}

/*
 * Tokens at every position near the window edges: for lengths around 16,
 * 64 and 128 bytes, a token [a, b) for every a and b in a set of positions
 * next to multiples of 16 and 64, and a second token from b + 1 to the
 * end; also all token bytes but one. The string ends where its heap block
 * ends, so a read past it is an error under ASan and valgrind.
 */
static void
test_span_windows(void)
{
    static const size_t lens[] = {1,  2,  15, 16,  17,  31,  32,  63,
                                  64, 65, 66, 127, 128, 129, 130, 193};
    static const size_t at[] = {0,  1,  2,  14,  15,  16,  17,  31, 32,
                                33, 47, 48, 62,  63,  64,  65,  66, 79,
                                80, 95, 96, 127, 128, 129, 191, 192};
    static const char   tok[] = "zZaA09mM";
    static const char   sep[] = {' ',        '\0',       '@',        '[',
                                 '`',        '{',        '/',        ':',
                                 (char)0x80, (char)0xc1, (char)0xe1, (char)0xff};
    unsigned char      *buf = xmalloc(MAX_TEXT);
    diffs               d = {0};
    size_t              strings = 0;
    char                what[96];

    for (size_t li = 0; li < N_OF(lens); li++) {
        size_t         n = lens[li];
        unsigned char *s = buf + MAX_TEXT - n;

        for (size_t ai = 0; ai < N_OF(at) && at[ai] < n; ai++) {
            for (size_t bi = ai; bi <= N_OF(at); bi++) {
                size_t a = at[ai], b = bi < N_OF(at) ? at[bi] : n;

                if (b <= a || b > n || (bi < N_OF(at) && b == n))
                    continue;
                for (size_t i = 0; i < n; i++)
                    s[i] = (unsigned char)sep[(i + a + b) % sizeof sep];
                for (size_t i = a; i < b; i++)
                    s[i] = (unsigned char)tok[(i + b) % (sizeof tok - 1)];
                for (size_t i = b + 1; i < n && (a + b) % 2; i++)
                    s[i] = (unsigned char)tok[i % (sizeof tok - 1)];
                snprintf(what, sizeof what, "%zu bytes, token [%zu, %zu)%s", n,
                         a, b, (a + b) % 2 ? " and to the end" : "");
                compare_scanners(s, n, 0, 1 + (a + b) % 3, what, &d);
                compare_scanners(s, n, a, MAX_SPANS, what, &d);
                compare_scanners(s, n, a + 1 < b ? a + 1 : a, 2, what, &d);
                strings++;
            }
        }
        /* Every byte a token byte but the one at 'a'. */
        for (size_t ai = 0; ai < N_OF(at) && at[ai] < n; ai++) {
            for (size_t i = 0; i < n; i++)
                s[i] = (unsigned char)tok[i % (sizeof tok - 1)];
            s[at[ai]] = (unsigned char)sep[ai % sizeof sep];
            snprintf(what, sizeof what, "%zu bytes, one separator at %zu", n,
                     at[ai]);
            compare_scanners(s, n, 0, 1, what, &d);
            compare_scanners(s, n, 0, MAX_SPANS, what, &d);
            compare_lower(s, n, what, &d);
            strings++;
        }
    }
    CHECK(d.n == 0,
          "%zu of %zu strings with tokens at window edges differ from the "
          "byte loops; the first: %s",
          d.n, strings, d.msg);
    CHECK(strings > 2000, "only %zu window strings were made", strings);
    free(buf);
}

/* ---- fuzz ------------------------------------------------------------- */

/* The state of the fuzz's xorshift64 generator (never 0). */
static uint64_t g_xs;

static uint64_t
xs_next(void)
{
    g_xs ^= g_xs << 13;
    g_xs ^= g_xs >> 7;
    g_xs ^= g_xs << 17;
    return g_xs;
}

/* A number in [0, n). */
static size_t
xs_below(size_t n)
{
    return (size_t)(xs_next() % n);
}

/*
 * Bytes next to the edges of the token classes: '/' ':' '@' '[' '`' '{'
 * just outside them, '0' '9' 'A' 'Z' 'a' 'z' at their ends, and bytes
 * >= 0x80 whose low 7 bits, or whose value | 0x20, are a letter or digit
 * (0xb0, 0xc1, 0xda, 0xe1, 0xfa), which a signed or masked compare could
 * take for one.
 */
static const unsigned char edge_bytes[] = {'/',  '0',  '9',  ':',  '@',  'A',
                                           'Z',  '[',  '`',  'a',  'z',  '{',
                                           ' ',  '\0', '\t', '\n', '_',  '-',
                                           0x7f, 0x80, 0xb0, 0xb9, 0xc1, 0xda,
                                           0xdf, 0xe1, 0xfa, 0xfb, 0xff};

/* Separators: punctuation, spaces, NUL and bytes >= 0x80. */
static const unsigned char sep_bytes[] = {' ',  ' ',  ',',  '.', '-',  '\0',
                                          '@',  '[',  '`',  '{', 0x80, 0xc1,
                                          0xe9, 0xff, '\n', '/', ':'};

/* ASCII punctuation. */
static const char punct[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/* A random token byte: a lower or upper case letter or a digit. */
static unsigned char
rand_tok_byte(void)
{
    size_t r = xs_below(62);

    return (unsigned char)(r < 26   ? 'a' + r
                           : r < 52 ? 'A' + r - 26
                                    : '0' + r - 52);
}

/* Run lengths that end tokens on and next to the window edges. */
static const size_t run_lens[] = {1,  1,  2,  3,  7,  8,  9,  15,  16,
                                  17, 31, 32, 33, 63, 64, 65, 127, 128};

/*
 * Fills s[0..n) in way 'mode': 0 any byte; 1 the edge bytes; 2 a mix of
 * letters (either case), digits, spaces, punctuation, NUL and bytes >=
 * 0x80; 3 runs of token bytes and of separators, with the lengths of
 * run_lens or random ones, starting with either; 4 long words; 5 sparse
 * one- and two-byte tokens.
 */
static void
fill_random(unsigned char *s, size_t n, int mode)
{
    size_t i = 0;
    int    in_tok = (int)(xs_next() & 1);

    while (i < n) {
        size_t r = xs_below(100), run, j;

        switch (mode) {
        case 0:
            s[i++] = (unsigned char)xs_next();
            break;
        case 1:
            s[i++] = edge_bytes[xs_below(sizeof edge_bytes)];
            break;
        case 2:
            s[i++] = r < 30   ? (unsigned char)('a' + xs_below(26))
                     : r < 50 ? (unsigned char)('A' + xs_below(26))
                     : r < 60 ? (unsigned char)('0' + xs_below(10))
                     : r < 75 ? ' '
                     : r < 85 ? punct[xs_below(sizeof punct - 1)]
                     : r < 95 ? (unsigned char)(0x80 + xs_below(128))
                              : '\0';
            break;
        case 3:
            run = r < 60 ? run_lens[xs_below(N_OF(run_lens))]
                         : 1 + xs_below(100);
            for (j = 0; j < run && i < n; j++)
                s[i++] = in_tok ? rand_tok_byte()
                                : sep_bytes[xs_below(sizeof sep_bytes)];
            in_tok = !in_tok;
            break;
        case 4:
            s[i++] = r < 3 ? sep_bytes[xs_below(sizeof sep_bytes)]
                           : rand_tok_byte();
            break;
        default:
            s[i++] = r < 6 ? rand_tok_byte()
                           : sep_bytes[xs_below(sizeof sep_bytes)];
            break;
        }
    }
}

/*
 * Random strings of 0 to 300 bytes, each made in one of fill_random's
 * ways, scanned by text_token_next and text_token_spans (from 0 and from
 * a random position, 1 to 8 or 64 tokens a call) and lowercased by
 * text_lower, all against the byte loops. Each string ends where its heap
 * block ends, at every alignment.
 */
static void
test_spans_fuzz(void)
{
    const size_t   n_strings = RUNNING_ON_VALGRIND ? 20000 : 200000;
    unsigned char *buf = xmalloc(MAX_TEXT);
    diffs          scan = {0}, lower = {0};
    size_t         tokens = 0, long_tokens = 0, mode_n[6] = {0};
    char           what[96];

    g_xs = 0x2545f4914f6cdd1dULL;
    for (size_t it = 0; it < n_strings; it++) {
        size_t         n = xs_below(MAX_TEXT + 1), max, pos;
        int            mode = (int)xs_below(6);
        unsigned char *s = buf + MAX_TEXT - n;
        text_span      all[MAX_TEXT / 2 + 2];
        size_t         k;

        fill_random(s, n, mode);
        mode_n[mode]++;
        k = ref_tokens(s, n, 0, all);
        tokens += k;
        for (size_t j = 0; j < k; j++)
            long_tokens += all[j].len > 64;
        max = xs_below(4) == 0 ? MAX_SPANS : 1 + xs_below(8);
        pos = xs_below(2) ? 0 : xs_below(n + 1);
        snprintf(what, sizeof what, "string %zu (%zu bytes, way %d)", it, n,
                 mode);
        if (compare_scanners(s, n, 0, max, what, &scan) == 0 && pos > 0)
            compare_scanners(s, n, pos, 1 + xs_below(3), what, &scan);
        compare_lower(s, n, what, &lower);
    }
    CHECK(scan.n == 0,
          "%zu of %zu random strings tokenise differently from the byte "
          "loop; the first: %s",
          scan.n, n_strings, scan.msg);
    CHECK(lower.n == 0,
          "%zu of %zu random strings lowercase differently from the byte "
          "loop; the first: %s",
          lower.n, n_strings, lower.msg);
    /* The fuzz reaches what it is for: many tokens, some longer than a
     * window, every way of making strings. */
    CHECK(tokens > n_strings * 10 && long_tokens > n_strings / 100,
          "the fuzz made %zu tokens, %zu of them over 64 bytes, in %zu "
          "strings",
          tokens, long_tokens, n_strings);
    for (int m = 0; m < 6; m++)
        CHECK(mode_n[m] > n_strings / 10, "way %d made %zu of %zu strings", m,
              mode_n[m], n_strings);
    free(buf);
}

void
test_text_register(void)
{
    CU_pSuite s = CU_add_suite("text", NULL, NULL);

    CU_add_test(s, "murmur3", test_murmur3);
    CU_add_test(s, "bucket", test_bucket);
    CU_add_test(s, "tokens", test_tokens);
    CU_add_test(s, "scan edges", test_scan_edges);
    CU_add_test(s, "token spans at window edges", test_span_windows);
    CU_add_test(s, "token spans and lower against byte loops, fuzzed",
                test_spans_fuzz);
}
