/*
 * parquet_page.c - the pieces of Parquet pages below the row reader: the
 * RLE / bit-packed hybrid (levels, dictionary indices, booleans),
 * DELTA_BINARY_PACKED, the codecs (snappy, gzip, zstd; Debian's
 * libraries), and decimal helpers. Every decoder checks its bounds: a
 * malformed stream is an error return, never a read past its end.
 */
#include "parquet_int.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* ---- helpers ------------------------------------------------------------ */

static const double pow10_tab[39] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                     1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                     1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
                                     1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27,
                                     1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34,
                                     1e35, 1e36, 1e37, 1e38};

/* See parquet_int.h. */
double
pq_pow10(int k)
{
    if (k < 0)
        k = 0;
    if (k > 38)
        k = 38;
    return pow10_tab[k];
}

/* See parquet_int.h. */
double
pq_be_to_double(const uint8_t *p, size_t n)
{
    __int128 v;
    size_t   i;

    if (n == 0)
        return 0;
    v = (int8_t)p[0];
    for (i = 1; i < n && i < 16; i++)
        v = v * 256 + p[i];
    return (double)v;
}

/* Varint from [*pp, end): 0, or -1 when it runs off the end. */
static int
get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t       v = 0;
    int            shift = 0;

    while (p < end) {
        uint8_t b = *p++;

        if (shift > 63)
            return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

/* 'w' (0..64) bits at bit offset 'bit' of 'base' ('avail' bytes, which
 * must hold them). */
static inline uint64_t
bits_at(const uint8_t *base, size_t avail, uint64_t bit, int w)
{
    size_t   byte = (size_t)(bit >> 3);
    int      sh = (int)(bit & 7);
    uint64_t v, hi;

    if (w == 0)
        return 0;
    if (byte + 8 <= avail) {
        memcpy(&v, base + byte, 8);
        v >>= sh;
        if (w + sh > 64 && byte + 8 < avail) {
            hi = base[byte + 8];
            v |= hi << (64 - sh);
        }
    } else {
        size_t i;

        v = 0;
        for (i = 0; byte + i < avail && i < 8; i++)
            v |= (uint64_t)base[byte + i] << (8 * i);
        v >>= sh;
        if (w + sh > 64 && byte + 8 < avail)
            v |= (uint64_t)base[byte + 8] << (64 - sh);
    }
    return w == 64 ? v : v & ((1ULL << w) - 1);
}

/* ---- RLE / bit-packed hybrid ------------------------------------------- */

/* See parquet_int.h. */
void
pq_rle_init(pq_rle *d, const uint8_t *p, const uint8_t *end, int bw)
{
    memset(d, 0, sizeof(*d));
    d->p = p;
    d->end = end;
    d->bw = bw;
}

/* Start the next run: 0, or -1 at the end or on a malformed header. */
static int
rle_next_run(pq_rle *d)
{
    uint64_t h, bytes, groups;
    size_t   vb = (size_t)(d->bw + 7) / 8, i;

    if (get_varint(&d->p, d->end, &h) < 0)
        return -1;
    if (h & 1) {
        groups = h >> 1;
        if (groups > (1u << 26))
            return -1;
        bytes = groups * (uint64_t)d->bw;
        if (bytes > (uint64_t)(d->end - d->p))
            bytes = (uint64_t)(d->end - d->p); /* a short last run */
        d->bp = d->p;
        d->bp_end = d->p + bytes;
        d->bp_bit = 0;
        d->bp_left = d->bw ? (uint32_t)(bytes * 8 / (uint64_t)d->bw)
                           : (uint32_t)(groups * 8);
        if (d->bp_left > groups * 8)
            d->bp_left = (uint32_t)(groups * 8);
        d->p += bytes;
        return d->bp_left ? 0 : -1;
    }
    if ((h >> 1) == 0 || (h >> 1) > UINT32_MAX)
        return -1;
    if (vb > (size_t)(d->end - d->p))
        return -1;
    d->rle_val = 0;
    for (i = 0; i < vb; i++)
        d->rle_val |= (uint32_t)d->p[i] << (8 * i);
    d->p += vb;
    d->rle_left = (uint32_t)(h >> 1);
    return 0;
}

/* See parquet_int.h. */
int
pq_rle_get(pq_rle *d, uint32_t *out, size_t n)
{
    size_t i = 0, k, m;

    while (i < n) {
        if (d->rle_left) {
            m = n - i < d->rle_left ? n - i : d->rle_left;
            for (k = 0; k < m; k++)
                out[i + k] = d->rle_val;
            d->rle_left -= (uint32_t)m;
            i += m;
        } else if (d->bp_left) {
            size_t avail = (size_t)(d->bp_end - d->bp);
            int    bw = d->bw;

            m = n - i < d->bp_left ? n - i : d->bp_left;
            if (bw == 1) {
                for (k = 0; k < m; k++, d->bp_bit++)
                    out[i + k] = (d->bp[d->bp_bit >> 3] >> (d->bp_bit & 7)) & 1;
            } else {
                for (k = 0; k < m; k++, d->bp_bit += (uint64_t)bw)
                    out[i + k] = (uint32_t)bits_at(d->bp, avail, d->bp_bit, bw);
            }
            d->bp_left -= (uint32_t)m;
            i += m;
        } else if (rle_next_run(d) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- DELTA_BINARY_PACKED ------------------------------------------------ */

/* See parquet_int.h. */
int
pq_dbp_init(pq_dbp *d, const uint8_t *p, const uint8_t *end)
{
    uint64_t first;

    memset(d, 0, sizeof(*d));
    d->p = p;
    d->end = end;
    if (get_varint(&d->p, end, &d->block_size) < 0
        || get_varint(&d->p, end, &d->mini_count) < 0
        || get_varint(&d->p, end, &d->left) < 0
        || get_varint(&d->p, end, &first) < 0)
        return -1;
    if (d->mini_count == 0 || d->mini_count > 256 || d->block_size == 0
        || d->block_size % d->mini_count != 0)
        return -1;
    d->mini_size = d->block_size / d->mini_count;
    if (d->mini_size == 0 || d->mini_size > PQ_DBP_MAX_MINI
        || d->mini_size % 8 != 0)
        return -1;
    d->last = (first >> 1) ^ -(first & 1);
    d->first = d->left > 0;
    d->mini_idx = (uint32_t)d->mini_count; /* a block header comes next */
    return 0;
}

/* See parquet_int.h. */
uint64_t
pq_dbp_total(const pq_dbp *d)
{
    return d->left;
}

/* Read a block header: 0 or -1. */
static int
dbp_block(pq_dbp *d)
{
    uint64_t md;

    if (get_varint(&d->p, d->end, &md) < 0)
        return -1;
    d->min_delta = (md >> 1) ^ -(md & 1);
    if (d->mini_count > (uint64_t)(d->end - d->p))
        return -1;
    memcpy(d->widths, d->p, d->mini_count);
    d->p += d->mini_count;
    d->mini_idx = 0;
    return 0;
}

/* Decode the next miniblock into d->buf: 0 or -1. Values past 'left'
 * are not decoded (their bytes may be absent). */
static int
dbp_mini(pq_dbp *d)
{
    uint64_t n, bytes, full, bit = 0, i;
    int      w;

    if (d->mini_idx >= d->mini_count && dbp_block(d) < 0)
        return -1;
    w = d->widths[d->mini_idx++];
    if (w > 64)
        return -1;
    n = d->left < d->mini_size ? d->left : d->mini_size;
    full = d->mini_size * (uint64_t)w / 8;
    bytes = (n * (uint64_t)w + 7) / 8;
    if (bytes > (uint64_t)(d->end - d->p))
        return -1;
    if (d->buf == NULL)
        d->buf = xmalloc(PQ_DBP_MAX_MINI * sizeof(*d->buf));
    for (i = 0; i < n; i++, bit += (uint64_t)w) {
        d->last += d->min_delta
                   + bits_at(d->p, (size_t)(d->end - d->p), bit, w);
        d->buf[i] = (int64_t)d->last;
    }
    d->p += full <= (uint64_t)(d->end - d->p) ? full : bytes;
    d->buf_pos = 0;
    d->buf_len = (uint32_t)n;
    return 0;
}

/* See parquet_int.h. */
int
pq_dbp_get(pq_dbp *d, int64_t *out, size_t n)
{
    size_t i = 0, m;

    if (n > d->left)
        return -1;
    if (n && d->first) {
        out[i++] = (int64_t)d->last;
        d->first = 0;
        d->left--;
    }
    while (i < n) {
        if (d->buf_pos == d->buf_len && dbp_mini(d) < 0)
            return -1;
        m = d->buf_len - d->buf_pos;
        if (m > n - i)
            m = n - i;
        memcpy(out + i, d->buf + d->buf_pos, m * sizeof(*out));
        d->buf_pos += (uint32_t)m;
        d->left -= m;
        i += m;
    }
    return 0;
}

/* See parquet_int.h. */
const uint8_t *
pq_dbp_end(const pq_dbp *d0)
{
    pq_dbp   d = *d0;
    uint64_t left = d.left, n, bytes;
    uint32_t k;

    if (left && d.first)
        left--;
    while (left > 0) {
        if (dbp_block(&d) < 0)
            return NULL;
        for (k = 0; k < d.mini_count && left > 0; k++) {
            if (d.widths[k] > 64)
                return NULL;
            n = left < d.mini_size ? left : d.mini_size;
            bytes = d.mini_size * d.widths[k] / 8;
            if (bytes > (uint64_t)(d.end - d.p)) {
                bytes = (n * d.widths[k] + 7) / 8;
                if (bytes > (uint64_t)(d.end - d.p))
                    return NULL;
            }
            d.p += bytes;
            left -= n;
        }
    }
    return d.p;
}

/* See parquet_int.h. */
void
pq_dbp_free(pq_dbp *d)
{
    free(d->buf);
    d->buf = NULL;
}

/* ---- codecs ------------------------------------------------------------- */

struct pq_codecs {
    ZSTD_DCtx *zd;
    ZSTD_CCtx *zc;
    z_stream   zs;
    int        zs_init;
};

/* See parquet_int.h. */
pq_codecs *
pq_codecs_new(void)
{
    return xcalloc(1, sizeof(pq_codecs));
}

/* See parquet_int.h. */
void
pq_codecs_free(pq_codecs *c)
{
    if (c == NULL)
        return;
    ZSTD_freeDCtx(c->zd);
    ZSTD_freeCCtx(c->zc);
    if (c->zs_init)
        inflateEnd(&c->zs);
    free(c);
}

/* See parquet_int.h. */
const char *
pq_codec_name(int codec)
{
    static const char *names[] = {"uncompressed", "snappy", "gzip", "lzo",
                                  "brotli",       "lz4",    "zstd", "lz4_raw"};

    return codec >= 0 && codec < 8 ? names[codec] : "unknown";
}

static int
inflate_all(pq_codecs *c, const uint8_t *src, size_t n, uint8_t *dst, size_t dn)
{
    int rc;

    if (!c->zs_init) {
        memset(&c->zs, 0, sizeof(c->zs));
        if (inflateInit2(&c->zs, 15 + 32) != Z_OK)
            return -1;
        c->zs_init = 1;
    } else if (inflateReset(&c->zs) != Z_OK) {
        return -1;
    }
    c->zs.next_in = (Bytef *)src;
    c->zs.avail_in = (uInt)n;
    c->zs.next_out = dst;
    c->zs.avail_out = (uInt)dn;
    rc = inflate(&c->zs, Z_FINISH);
    if (rc != Z_STREAM_END || c->zs.avail_out != 0)
        return -1;
    return 0;
}

/* See parquet_int.h. */
int
pq_decompress(pq_codecs *c, int codec, const uint8_t *src, size_t n,
              uint8_t *dst, size_t dn, const char **why)
{
    size_t len;

    switch (codec) {
    case PQ_C_UNCOMPRESSED:
        if (n != dn) {
            *why = "page sizes disagree";
            return -1;
        }
        memcpy(dst, src, n);
        return 0;
    case PQ_C_SNAPPY:
        if (snappy_uncompressed_length((const char *)src, n, &len) != SNAPPY_OK
            || len != dn
            || snappy_uncompress((const char *)src, n, (char *)dst, &len)
                   != SNAPPY_OK
            || len != dn) {
            *why = "corrupt snappy data";
            return -1;
        }
        return 0;
    case PQ_C_GZIP:
        if (n > UINT32_MAX || dn > UINT32_MAX
            || inflate_all(c, src, n, dst, dn) < 0) {
            *why = "corrupt gzip data";
            return -1;
        }
        return 0;
    case PQ_C_ZSTD:
        if (c->zd == NULL)
            c->zd = ZSTD_createDCtx();
        len = ZSTD_decompressDCtx(c->zd, dst, dn, src, n);
        if (ZSTD_isError(len) || len != dn) {
            *why = "corrupt zstd data";
            return -1;
        }
        return 0;
    default:
        *why = "unsupported codec";
        return -1;
    }
}

static int
deflate_gzip(const uint8_t *src, size_t n, strbuf *out)
{
    z_stream zs;
    uLong    bound;
    int      rc;

    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
        return -1;
    bound = deflateBound(&zs, (uLong)n) + 32;
    sb_reserve(out, bound + 1);
    zs.next_in = (Bytef *)src;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out->data + out->len;
    zs.avail_out = (uInt)bound;
    rc = deflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END) {
        deflateEnd(&zs);
        return -1;
    }
    out->len += bound - zs.avail_out;
    out->data[out->len] = 0;
    deflateEnd(&zs);
    return 0;
}

/* See parquet_int.h. */
int
pq_compress(pq_codecs *c, int codec, const uint8_t *src, size_t n, strbuf *out)
{
    size_t len;

    switch (codec) {
    case PQ_C_UNCOMPRESSED:
        sb_append(out, src, n);
        return 0;
    case PQ_C_SNAPPY:
        len = snappy_max_compressed_length(n);
        sb_reserve(out, len + 1);
        if (snappy_compress((const char *)src, n, out->data + out->len, &len)
            != SNAPPY_OK)
            return -1;
        out->len += len;
        out->data[out->len] = 0;
        return 0;
    case PQ_C_GZIP:
        return deflate_gzip(src, n, out);
    case PQ_C_ZSTD:
        if (c->zc == NULL)
            c->zc = ZSTD_createCCtx();
        len = ZSTD_compressBound(n);
        sb_reserve(out, len + 1);
        len = ZSTD_compressCCtx(c->zc, out->data + out->len, len, src, n, 3);
        if (ZSTD_isError(len))
            return -1;
        out->len += len;
        out->data[out->len] = 0;
        return 0;
    default:
        return -1;
    }
}
