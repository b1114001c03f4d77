/*
 * text.c - tokens and their hashes: the token scanner shared by tokenize and
 * naive Bayes, ASCII lowercasing, MurmurHash3_x86_32 and the bucket of a
 * token as scikit-learn's HashingVectorizer computes it.
 *
 * Token boundaries do not depend on 'lowercase': ASCII lowercasing maps
 * A-Z onto a-z, so the runs of [a-z0-9] of the lowercased text are exactly
 * the runs of [A-Za-z0-9] of the original; 'lowercase' only says whether the
 * caller will lowercase the token's bytes (text_lower).
 *
 * MurmurHash3_x86_32 is Austin Appleby's public-domain algorithm, written
 * here from its definition: 4-byte blocks read little-endian (through
 * memcpy, so any alignment is fine), a 1-3 byte tail, the length mixed in,
 * and the 32-bit finaliser.
 */
#include "text.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* 1 for the bytes of [A-Za-z0-9], 0 for every other byte. */
static const unsigned char tok_char[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,
    ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1,
    ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/*
 * The next run of [A-Za-z0-9] in s[*pos..n): its length (0 when there is
 * none), its offset in *start, and *pos just past it. 'lowercase' does not
 * change the boundaries (see the file comment).
 */
size_t
text_token_next(const char *s, size_t n, size_t *pos, int lowercase,
                size_t *start)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t               i = *pos, b;

    (void)lowercase;
    while (i < n && !tok_char[u[i]])
        i++;
    if (i >= n) {
        *pos = n;
        *start = n;
        return 0;
    }
    b = i;
    while (i < n && tok_char[u[i]])
        i++;
    *start = b;
    *pos = i;
    return i - b;
}

/* Bit j set when byte j of the 64 at 'u' is a token byte. */
static inline uint64_t
token_mask64(const unsigned char *u)
{
#if defined(__SSE2__)
    /* Signed compares: bytes >= 0x80 are negative and match neither. */
    const __m128i d0 = _mm_set1_epi8('0' - 1), d9 = _mm_set1_epi8('9' + 1);
    const __m128i la = _mm_set1_epi8('a' - 1), lz = _mm_set1_epi8('z' + 1);
    const __m128i bit5 = _mm_set1_epi8(0x20);
    uint64_t      m = 0;

    for (int q = 0; q < 4; q++) {
        __m128i v = _mm_loadu_si128(
            (const __m128i *)(const void *)(u + 16 * q));
        __m128i l = _mm_or_si128(v, bit5); /* A-Z to a-z */
        __m128i d = _mm_and_si128(_mm_cmpgt_epi8(v, d0), _mm_cmplt_epi8(v, d9));
        __m128i a = _mm_and_si128(_mm_cmpgt_epi8(l, la), _mm_cmplt_epi8(l, lz));

        m |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_or_si128(d, a))
             << (16 * q);
    }
    return m;
#else
    uint64_t m = 0;

    for (int j = 0; j < 64; j++)
        m |= (uint64_t)tok_char[u[j]] << j;
    return m;
#endif
}

/*
 * Up to 'max' tokens from *pos. Each window of up to 64 bytes becomes a
 * mask (bit j set when byte j is a token byte); a token starts at the
 * lowest set bit and ends at the lowest clear bit above it, and one that
 * reaches the end of the window goes on in the next ('open'). *pos always
 * ends just past a token or at n, so a call needs no state of the last.
 */
size_t
text_token_spans(const char *s, size_t n, size_t *pos, text_span *out,
                 size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t               i = *pos, k = 0, start = 0;
    int                  open = 0; /* a token began at 'start' */

    while (i < n) {
        size_t   w = n - i < 64 ? n - i : 64, j;
        uint64_t valid = w == 64 ? ~(uint64_t)0 : ((uint64_t)1 << w) - 1;
        uint64_t m = 0, rest;

        if (w == 64) {
            m = token_mask64(u + i);
        } else {
            for (j = 0; j < w; j++)
                m |= (uint64_t)tok_char[u[i + j]] << j;
        }
        for (;;) {
            unsigned e;

            if (!open) {
                unsigned z;

                if (m == 0)
                    break;
                z = (unsigned)__builtin_ctzll(m);
                start = i + z;
                open = 1;
                m |= ((uint64_t)1 << z) - 1; /* nothing ends below z */
            }
            rest = ~m & valid;
            if (rest == 0)
                break; /* the token goes on in the next window */
            e = (unsigned)__builtin_ctzll(rest);
            out[k].start = start;
            out[k].len = i + e - start;
            open = 0;
            m &= ~(uint64_t)0 << e;
            if (++k == max) {
                *pos = i + e;
                return k;
            }
        }
        i += w;
    }
    if (open) {
        out[k].start = start;
        out[k].len = n - start;
        k++;
    }
    *pos = n;
    return k;
}

/*
 * Copy 'n' bytes of 'src' to 'dst' with A-Z lowercased; other bytes as
 * they are. 'dst' may equal 'src'. Eight bytes at a time: in each byte
 * of t (the low 7 bits), t + 0x3f carries into bit 7 when t >= 'A' and
 * t + 0x25 when t > 'Z'; bytes with bit 7 set are left alone. The 0x80
 * of an upper-case byte shifted right by 2 is its 0x20.
 */
void
text_lower(char *dst, const char *src, size_t n)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL, high = 0x8080808080808080ULL;
    size_t         i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, t, up;

        memcpy(&x, src + i, 8);
        t = x & low7;
        up = (t + 0x3f3f3f3f3f3f3f3fULL) & ~(t + 0x2525252525252525ULL) & ~x
             & high;
        x |= up >> 2;
        memcpy(dst + i, &x, 8);
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)src[i];

        /* c - 'A' < 26 only for A-Z; the subtraction wraps for the rest. */
        dst[i] = (char)((unsigned char)(c - 'A') < 26 ? c | 0x20 : c);
    }
}

static inline uint32_t
rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* A 4-byte block, little-endian whatever the host and the alignment. */
static inline uint32_t
load_le32(const unsigned char *p)
{
    uint32_t x;

    memcpy(&x, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap32(x);
#endif
    return x;
}

/* One 4-byte block into the hash state. */
static inline uint32_t
mm_block(uint32_t h, uint32_t k)
{
    k *= 0xcc9e2d51u;
    k = rotl32(k, 15);
    k *= 0x1b873593u;
    h ^= k;
    h = rotl32(h, 13);
    return h * 5 + 0xe6546b64u;
}

/* The 0-3 tail bytes (already assembled into 'k'), when there are some. */
static inline uint32_t
mm_tail(uint32_t h, uint32_t k)
{
    k *= 0xcc9e2d51u;
    k = rotl32(k, 15);
    k *= 0x1b873593u;
    return h ^ k;
}

/* The length and the final avalanche. */
static inline uint32_t
mm_final(uint32_t h, size_t n)
{
    h ^= (uint32_t)n;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/*
 * MurmurHash3_x86_32 of 'n' bytes of 'key' with 'seed'. As the reference,
 * which takes an int length, only the low 32 bits of 'n' are mixed in.
 */
uint32_t
text_murmur3_32(const void *key, size_t n, uint32_t seed)
{
    const unsigned char *p = key;
    uint32_t             h = seed, k = 0;

    for (size_t i = 0; i < n / 4; i++, p += 4)
        h = mm_block(h, load_le32(p));
    switch (n & 3) {
    case 3:
        k ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        k ^= (uint32_t)p[0];
        h = mm_tail(h, k);
        break;
    default:
        break;
    }
    return mm_final(h, n);
}

/*
 * |h| mod features for a hash h read as an int32. The magnitude is taken
 * in unsigned arithmetic, so h = INT32_MIN gives 2^31 mod features, with
 * no overflow; scikit-learn special-cases that h to the same value
 * ((2^31 - 1 - (features - 1)) mod features, in _hashing_fast.pyx).
 */
static inline uint32_t
bucket_of(uint32_t h, uint32_t features)
{
    uint32_t mag = (h & 0x80000000u) ? 0u - h : h;

    if ((features & (features - 1)) == 0)
        return mag & (features - 1);
    return mag % features;
}

/* The bucket of a token: bucket_of its hash. 'features' >= 1. */
uint32_t
text_bucket(const char *tok, size_t n, uint32_t features)
{
    return bucket_of(text_murmur3_32(tok, n, 0), features);
}

/*
 * The buckets of every token of s[0..n), lowercased, into 'out' (room for
 * n / 2 + 1): the scan of text_token_next and the hash of text_bucket in
 * one pass. Token bytes are [A-Za-z0-9], and the lowercase of each is the
 * byte | 0x20 (digits already have that bit), so a block is lowercased
 * with one OR and the text is never copied.
 */
size_t
text_buckets(const char *s, size_t n, uint32_t features, uint32_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t               i = 0, k = 0;

    for (;;) {
        const unsigned char *p;
        size_t               b, len;
        uint32_t             h = 0, t = 0;

        while (i < n && !tok_char[u[i]])
            i++;
        if (i >= n)
            return k;
        b = i;
        while (i < n && tok_char[u[i]])
            i++;
        len = i - b;
        p = u + b;
        for (size_t j = 0; j < len / 4; j++, p += 4)
            h = mm_block(h, load_le32(p) | 0x20202020u);
        switch (len & 3) {
        case 3:
            t ^= (uint32_t)(p[2] | 0x20) << 16;
            /* fall through */
        case 2:
            t ^= (uint32_t)(p[1] | 0x20) << 8;
            /* fall through */
        case 1:
            t ^= (uint32_t)(p[0] | 0x20);
            h = mm_tail(h, t);
            break;
        default:
            break;
        }
        out[k++] = bucket_of(mm_final(h, len), features);
    }
}
