/*
 * test_text.c - unit tests of executor/text: MurmurHash3_x86_32 (empty key,
 * 1-3 byte tails, non-ASCII bytes, seeds, unaligned keys), the
 * HashingVectorizer bucket (2^18, 2^20 and small feature counts, and the
 * tokens whose hash is INT32_MIN), the token scanner and lowercasing, and
 * text_buckets against the token-by-token path.
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

#include "../../executor/text.h"
#include "test_suites.h"

/* Record a CUnit result with a formatted explanation (printed on failure). */
static void check(int ok, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
check(int ok, int line, const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ok)
        fprintf(stderr, "\n%s:%d: FAILED: %s\n", __FILE__, line, msg);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg,
                            __FILE__, "", CU_FALSE);
}

#define CHECK(cond, ...) check((cond) ? 1 : 0, __LINE__, __VA_ARGS__)

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
    CHECK(text_buckets(s, 200, 1000, out) == 1 &&
              out[0] == text_bucket(low, 200, 1000),
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

void
test_text_register(void)
{
    CU_pSuite s = CU_add_suite("text", NULL, NULL);

    CU_add_test(s, "murmur3", test_murmur3);
    CU_add_test(s, "bucket", test_bucket);
    CU_add_test(s, "tokens", test_tokens);
    CU_add_test(s, "scan edges", test_scan_edges);
}
