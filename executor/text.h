/*
 * text.h - tokens and their hashes, as tokenize and naive Bayes cut them.
 *
 * A token is a maximal run of [a-z0-9] after ASCII lowercasing (or, with
 * lowercase 0, of [A-Za-z0-9]); every other byte separates tokens, so UTF-8
 * letters outside ASCII separate too, as in the benchmark's definition and
 * scikit-learn's token_pattern "[a-z0-9]+" on lowercased text.
 *
 * Hashing is scikit-learn's HashingVectorizer(alternate_sign=False): the
 * bucket of a token is |MurmurHash3_x86_32(token bytes, seed 0) read as a
 * signed int32| mod features (|INT32_MIN| is 2^31, as scikit-learn has it).
 *
 * Lowercasing is ASCII only. Python's str.lower(), which scikit-learn
 * applies, also maps two non-ASCII letters to ASCII ones: U+212A KELVIN
 * SIGN to "k" and U+0130 (I with a dot) to "i" and a combining dot; in a
 * text holding those, tokens differ. No other character does so.
 */
#ifndef SHEAF_TEXT_H
#define SHEAF_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * The next token of s[0..n) at or after *pos: returns its length (0 when
 * there is none left) and sets *start to its offset in 's'; *pos moves past
 * it. The token's bytes are not lowercased: see text_lower.
 */
size_t text_token_next(const char *s, size_t n, size_t *pos, int lowercase,
                       size_t *start);

/* A token of a text: its offset and its length, in bytes. */
typedef struct text_span {
    size_t start;
    size_t len;
} text_span;

/*
 * Up to 'max' (>= 1) next tokens of s[0..n) at or after *pos, into 'out':
 * returns how many (0 when none is left) and moves *pos past the last.
 * The tokens of text_token_next, found 64 bytes at a time from a bit mask
 * of the token bytes, without a branch per byte.
 */
size_t text_token_spans(const char *s, size_t n, size_t *pos, text_span *out,
                        size_t max);

/* Copy 'n' bytes of 'src' to 'dst' with A-Z lowercased. */
void text_lower(char *dst, const char *src, size_t n);

/* MurmurHash3_x86_32 of 'n' bytes of 'key' with 'seed'. */
uint32_t text_murmur3_32(const void *key, size_t n, uint32_t seed);

/* The HashingVectorizer bucket of a (lowercased) token. */
uint32_t text_bucket(const char *tok, size_t n, uint32_t features);

/*
 * The buckets of all the tokens of s[0..n), lowercased, in order, written
 * to 'out', which must have room for n / 2 + 1 of them; returns their
 * number. The same as text_token_next, text_lower and text_bucket for each
 * token, in one pass without copying (naive Bayes uses it).
 */
size_t text_buckets(const char *s, size_t n, uint32_t features, uint32_t *out);

#endif
