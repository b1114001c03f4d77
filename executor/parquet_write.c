/*
 * parquet_write.c - a Parquet file from rows of typed values (see
 * parquet_write.h for the layout). Values are buffered per column, dense
 * (nulls only in the definition levels), and a row group is encoded
 * column by column: the dictionary decision for strings, pages of about
 * PQW_PAGE_BYTES, levels and dictionary indices RLE/bit-packed,
 * compression, page headers and statistics; then the footer.
 */
#include "parquet_write.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datetime.h"
#include "parquet_int.h"
#include "thrift.h"

#define PQW_PAGE_BYTES  (1u << 20)
#define PQW_GROUP_BYTES (256u << 20)
#define PQW_OUT_FLUSH   (1u << 20)
#define PQW_DICT_MAX    65536 /* distinct strings a dictionary holds */
#define PQW_STAT_MAX    4096  /* longest string kept as a statistic */

typedef struct wcol {
    sh_type  type;     /* the schema's */
    int      physical; /* PQ_T_* */
    uint8_t *defs;     /* 1 per row: present */
    size_t   nrows;
    int64_t *ints; /* dense values, by type */
    double  *dbls;
    uint8_t *bools;
    size_t  *soff; /* strings: start in sdata; nvals + 1 */
    strbuf   sdata;
    size_t   nvals, cap; /* values held, capacity of the arrays */
} wcol;

struct pq_writer {
    int           fd;
    const schema *sc;
    int           codec;
    size_t        rg_rows;
    wcol         *cols;
    size_t        nrows;    /* rows in the row group being built */
    size_t        buffered; /* its value bytes, roughly */
    uint64_t      total_rows;
    int64_t       off; /* file offset of the next byte */
    uint64_t      bytes_out;
    strbuf        out;  /* bytes not yet written to fd */
    strbuf        page; /* a page's uncompressed body */
    strbuf        comp; /* its compressed body */
    strbuf        hdr;  /* its header */
    pq_codecs    *codecs;
    pq_row_group *rgs; /* written so far (for the footer) */
    size_t        nrgs, caprgs;
    strbuf        statbuf; /* min/max bytes of every chunk, for the
                              footer: offsets kept in the stats */
    int       finished;
    uint32_t *u32; /* scratch: levels or indices */
    size_t    u32_cap;
};

/* See parquet_write.h. */
int
pq_codec_parse(const char *name, int *codec)
{
    if (strcmp(name, "zstd") == 0)
        *codec = PQ_C_ZSTD;
    else if (strcmp(name, "snappy") == 0)
        *codec = PQ_C_SNAPPY;
    else if (strcmp(name, "gzip") == 0)
        *codec = PQ_C_GZIP;
    else if (strcmp(name, "none") == 0 || strcmp(name, "uncompressed") == 0)
        *codec = PQ_C_UNCOMPRESSED;
    else
        return -1;
    return 0;
}

/* See parquet_write.h. */
pq_writer *
pq_writer_new(int fd, const schema *sc, int codec, size_t row_group_rows)
{
    pq_writer *w = xcalloc(1, sizeof(*w));
    size_t     i;

    w->fd = fd;
    w->sc = sc;
    w->codec = codec;
    w->rg_rows = row_group_rows ? row_group_rows : PQW_DEFAULT_ROW_GROUP_ROWS;
    w->cols = xcalloc(sc->n ? sc->n : 1, sizeof(*w->cols));
    for (i = 0; i < sc->n; i++) {
        wcol *c = &w->cols[i];

        c->type = sc->types[i];
        switch (c->type) {
        case SH_INT:
        case SH_TIMESTAMP:
            c->physical = PQ_T_INT64;
            break;
        case SH_DATE:
            c->physical = PQ_T_INT32;
            break;
        case SH_FLOAT:
            c->physical = PQ_T_DOUBLE;
            break;
        case SH_BOOL:
            c->physical = PQ_T_BOOLEAN;
            break;
        default:
            c->physical = PQ_T_BYTE_ARRAY;
        }
    }
    w->codecs = pq_codecs_new();
    sb_append(&w->out, "PAR1", 4);
    w->off = 4;
    return w;
}

/* ---- output ------------------------------------------------------------- */

static int
out_flush(pq_writer *w, sh_err *err)
{
    size_t done = 0;

    while (done < w->out.len) {
        ssize_t k = write(w->fd, w->out.data + done, w->out.len - done);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;

            sb_reset(&w->out);
            return sh_err_set(err, SH_EIO, NULL, "write: %s", strerror(e));
        }
        done += (size_t)k;
        w->bytes_out += (uint64_t)k;
    }
    sb_reset(&w->out);
    return 0;
}

static void
out_put(pq_writer *w, const void *p, size_t n)
{
    sb_append(&w->out, p, n);
    w->off += (int64_t)n;
}

/* ---- buffering rows ----------------------------------------------------- */

static void
col_grow(wcol *c)
{
    size_t cap = c->cap ? 2 * c->cap : 1024;

    c->defs = xrealloc(c->defs, cap);
    switch (c->type) {
    case SH_INT:
    case SH_DATE:
    case SH_TIMESTAMP:
        c->ints = xrealloc(c->ints, cap * sizeof(*c->ints));
        break;
    case SH_FLOAT:
        c->dbls = xrealloc(c->dbls, cap * sizeof(*c->dbls));
        break;
    case SH_BOOL:
        c->bools = xrealloc(c->bools, cap);
        break;
    default:
        c->soff = xrealloc(c->soff, (cap + 1) * sizeof(*c->soff));
        if (c->cap == 0)
            c->soff[0] = 0;
    }
    c->cap = cap;
}

static int flush_row_group(pq_writer *w, sh_err *err);

/* See parquet_write.h. */
int
pq_writer_row(pq_writer *w, const sh_value *row, sh_err *err)
{
    size_t i;
    int    rc;

    for (i = 0; i < w->sc->n; i++) {
        wcol           *c = &w->cols[i];
        const sh_value *v = &row[i];

        if (c->nrows == c->cap)
            col_grow(c);
        if (v->type == SH_NULL) {
            c->defs[c->nrows++] = 0;
            continue;
        }
        switch (c->type) {
        case SH_INT:
            if (v->type == SH_INT)
                c->ints[c->nvals] = v->u.i;
            else if (v->type == SH_BOOL)
                c->ints[c->nvals] = v->u.b;
            else
                goto mismatch;
            w->buffered += 8;
            break;
        case SH_DATE:
            /* DATE is an INT32 of days: +-5.8 million years */
            if (v->type != SH_DATE || v->u.i < INT32_MIN || v->u.i > INT32_MAX)
                goto mismatch;
            c->ints[c->nvals] = v->u.i;
            w->buffered += 4;
            break;
        case SH_TIMESTAMP:
            if (v->type == SH_TIMESTAMP)
                c->ints[c->nvals] = v->u.i;
            else if (v->type == SH_DATE
                     && !__builtin_mul_overflow(v->u.i, DT_US_PER_DAY,
                                                &c->ints[c->nvals]))
                ; /* a date is its midnight */
            else
                goto mismatch;
            w->buffered += 8;
            break;
        case SH_FLOAT:
            if (v->type == SH_FLOAT)
                c->dbls[c->nvals] = v->u.f;
            else if (v->type == SH_INT)
                c->dbls[c->nvals] = (double)v->u.i;
            else
                goto mismatch;
            w->buffered += 8;
            break;
        case SH_BOOL:
            if (v->type != SH_BOOL)
                goto mismatch;
            c->bools[c->nvals] = (uint8_t)v->u.b;
            w->buffered += 1;
            break;
        case SH_STRING:
            if (v->type != SH_STRING)
                goto mismatch;
            sb_append(&c->sdata, v->u.s.ptr, v->u.s.len);
            c->soff[c->nvals + 1] = c->sdata.len;
            w->buffered += v->u.s.len + 8;
            break;
        default:
            goto mismatch;
        }
        c->defs[c->nrows++] = 1;
        c->nvals++;
        continue;
    mismatch:
        rc = sh_err_set(err, SH_EDATA, NULL,
                        "column '%s': a %s value in a %s column",
                        w->sc->names[i], sh_type_name(v->type),
                        sh_type_name(c->type));
        /* undo the columns before this one: the row is not added */
        while (i-- > 0) {
            wcol *p = &w->cols[i];

            p->nrows--;
            if (p->defs[p->nrows]) {
                p->nvals--;
                if (p->type == SH_STRING)
                    p->sdata.len = p->soff[p->nvals];
            }
        }
        return rc;
    }
    w->nrows++;
    w->total_rows++;
    if (w->nrows >= w->rg_rows || w->buffered >= PQW_GROUP_BYTES)
        return flush_row_group(w, err);
    return 0;
}

/* ---- encoding ----------------------------------------------------------- */

static void
put_varint(strbuf *sb, uint64_t v)
{
    uint8_t b[10];
    size_t  n = 0;

    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    sb_append(sb, b, n);
}

static void
put_u32(strbuf *sb, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};

    sb_append(sb, b, 4);
}

/* Append the RLE/bit-packed hybrid encoding of v[0..n) at bit width 'bw'
 * (1..32): runs of 8 or more equal values as RLE runs, the rest in
 * bit-packed groups of 8 (the last group padded with zeros). */
static void
rle_encode(strbuf *sb, const uint32_t *v, size_t n, int bw)
{
    size_t i = 0, vb = (size_t)(bw + 7) / 8;

    while (i < n) {
        size_t r = 1, start, groups, k;

        while (i + r < n && v[i + r] == v[i])
            r++;
        if (r >= 8) {
            uint8_t b[4];

            put_varint(sb, (uint64_t)r << 1);
            for (k = 0; k < vb; k++)
                b[k] = (uint8_t)(v[i] >> (8 * k));
            sb_append(sb, b, vb);
            i += r;
            continue;
        }
        /* bit-packed: groups of 8 until a run of 8 starts a group */
        start = i;
        groups = 0;
        for (;;) {
            groups++;
            i += 8;
            if (i >= n || groups >= 63)
                break;
            for (r = 1; i + r < n && r < 8 && v[i + r] == v[i]; r++)
                ;
            if (r >= 8)
                break;
        }
        put_varint(sb, (uint64_t)groups << 1 | 1);
        {
            size_t   nbytes = groups * (size_t)bw, bit = 0;
            uint8_t *dst;

            sb_reserve(sb, nbytes + 1);
            dst = (uint8_t *)sb->data + sb->len;
            memset(dst, 0, nbytes);
            for (k = start; k < start + groups * 8; k++, bit += (size_t)bw) {
                uint64_t val = k < n ? v[k] : 0;
                size_t   byte = bit >> 3, sh = bit & 7, j;

                val <<= sh;
                for (j = 0; j < (size_t)(bw + (int)sh + 7) / 8; j++)
                    dst[byte + j] |= (uint8_t)(val >> (8 * j));
            }
            sb->len += nbytes;
            sb->data[sb->len] = 0;
        }
        if (i > n)
            i = n;
    }
}

static int
bit_width(uint32_t max)
{
    int bw = 0;

    while (max) {
        bw++;
        max >>= 1;
    }
    return bw;
}

static uint32_t *
scratch(pq_writer *w, size_t n)
{
    if (w->u32_cap < n) {
        w->u32_cap = n;
        w->u32 = xrealloc(w->u32, n * sizeof(*w->u32));
    }
    return w->u32;
}

/* Compress w->page and append header + body to the output, adding to the
 * chunk's sizes. */
static int
emit_page(pq_writer *w, pq_page_header *h, int64_t *usize, int64_t *csize,
          sh_err *err)
{
    sb_reset(&w->comp);
    if (pq_compress(w->codecs, w->codec, (const uint8_t *)w->page.data,
                    w->page.len, &w->comp)
        < 0)
        return sh_err_set(err, SH_EIO, NULL, "cannot compress with %s",
                          pq_codec_name(w->codec));
    if (w->page.len > INT32_MAX || w->comp.len > INT32_MAX)
        return sh_err_set(err, SH_EDATA, NULL, "a page over 2 GiB");
    h->uncompressed_size = (int32_t)w->page.len;
    h->compressed_size = (int32_t)w->comp.len;
    sb_reset(&w->hdr);
    thr_encode_page_header(&w->hdr, h);
    out_put(w, w->hdr.data, w->hdr.len);
    out_put(w, w->comp.data, w->comp.len);
    *usize += (int64_t)(w->hdr.len + w->page.len);
    *csize += (int64_t)(w->hdr.len + w->comp.len);
    if (w->out.len >= PQW_OUT_FLUSH)
        return out_flush(w, err);
    return 0;
}

/* Plain bytes of dense value j of column c. */
static void
put_plain(strbuf *sb, const wcol *c, size_t j)
{
    int32_t d;

    switch (c->type) {
    case SH_INT:
    case SH_TIMESTAMP:
        sb_append(sb, &c->ints[j], 8);
        break;
    case SH_DATE:
        d = (int32_t)c->ints[j];
        sb_append(sb, &d, 4);
        break;
    case SH_FLOAT:
        sb_append(sb, &c->dbls[j], 8);
        break;
    default:
        put_u32(sb, (uint32_t)(c->soff[j + 1] - c->soff[j]));
        sb_append(sb, c->sdata.data + c->soff[j], c->soff[j + 1] - c->soff[j]);
    }
}

/* Statistics of column c into st (bytes kept in w->statbuf: their
 * offsets are fixed up when the footer is written). */
static void
col_stats(pq_writer *w, const wcol *c, pq_stats *st)
{
    size_t j, mi = 0, ma = 0, n = 0;

    memset(st, 0, sizeof(*st));
    st->has_null_count = 1;
    st->null_count = (int64_t)(c->nrows - c->nvals);
    if (c->nvals == 0 || c->type == SH_NULL)
        return;
    switch (c->type) {
    case SH_INT:
    case SH_DATE:
    case SH_TIMESTAMP:
        for (j = 1; j < c->nvals; j++) {
            if (c->ints[j] < c->ints[mi])
                mi = j;
            if (c->ints[j] > c->ints[ma])
                ma = j;
        }
        n = 8;
        if (c->type == SH_DATE) {
            int32_t lo = (int32_t)c->ints[mi], hi = (int32_t)c->ints[ma];

            st->min = (const uint8_t *)(uintptr_t)w->statbuf.len;
            sb_append(&w->statbuf, &lo, 4);
            st->max = (const uint8_t *)(uintptr_t)w->statbuf.len;
            sb_append(&w->statbuf, &hi, 4);
            st->min_len = st->max_len = 4;
            st->has_min = st->has_max = 1;
            return;
        }
        break;
    case SH_FLOAT: {
        double lo = INFINITY, hi = -INFINITY;
        int    any = 0;

        for (j = 0; j < c->nvals; j++) {
            double d = c->dbls[j];

            if (d != d)
                continue;
            any = 1;
            if (d < lo)
                lo = d;
            if (d > hi)
                hi = d;
        }
        if (!any)
            return;
        if (lo == 0)
            lo = -0.0;
        if (hi == 0)
            hi = 0.0;
        st->min = (const uint8_t *)(uintptr_t)w->statbuf.len;
        sb_append(&w->statbuf, &lo, 8);
        st->max = (const uint8_t *)(uintptr_t)w->statbuf.len;
        sb_append(&w->statbuf, &hi, 8);
        st->min_len = st->max_len = 8;
        st->has_min = st->has_max = 1;
        return;
    }
    case SH_BOOL: {
        uint8_t lo = 1, hi = 0;

        for (j = 0; j < c->nvals; j++) {
            lo &= c->bools[j];
            hi |= c->bools[j];
        }
        st->min = (const uint8_t *)(uintptr_t)w->statbuf.len;
        sb_append(&w->statbuf, &lo, 1);
        st->max = (const uint8_t *)(uintptr_t)w->statbuf.len;
        sb_append(&w->statbuf, &hi, 1);
        st->min_len = st->max_len = 1;
        st->has_min = st->has_max = 1;
        return;
    }
    default: {
        for (j = 1; j < c->nvals; j++) {
            size_t      lj = c->soff[j + 1] - c->soff[j];
            const char *sj = c->sdata.data + c->soff[j];
            size_t      lm = c->soff[mi + 1] - c->soff[mi];
            size_t      lx = c->soff[ma + 1] - c->soff[ma];
            int cm = memcmp(sj, c->sdata.data + c->soff[mi], lj < lm ? lj : lm);
            int cx = memcmp(sj, c->sdata.data + c->soff[ma], lj < lx ? lj : lx);

            if (cm < 0 || (cm == 0 && lj < lm))
                mi = j;
            if (cx > 0 || (cx == 0 && lj > lx))
                ma = j;
        }
        if (c->soff[mi + 1] - c->soff[mi] > PQW_STAT_MAX
            || c->soff[ma + 1] - c->soff[ma] > PQW_STAT_MAX)
            return;
        st->min = (const uint8_t *)(uintptr_t)w->statbuf.len;
        st->min_len = (uint32_t)(c->soff[mi + 1] - c->soff[mi]);
        sb_append(&w->statbuf, c->sdata.data + c->soff[mi], st->min_len);
        st->max = (const uint8_t *)(uintptr_t)w->statbuf.len;
        st->max_len = (uint32_t)(c->soff[ma + 1] - c->soff[ma]);
        sb_append(&w->statbuf, c->sdata.data + c->soff[ma], st->max_len);
        st->has_min = st->has_max = 1;
        return;
    }
    }
    st->min = (const uint8_t *)(uintptr_t)w->statbuf.len;
    sb_append(&w->statbuf, &c->ints[mi], n);
    st->max = (const uint8_t *)(uintptr_t)w->statbuf.len;
    sb_append(&w->statbuf, &c->ints[ma], n);
    st->min_len = st->max_len = (uint32_t)n;
    st->has_min = st->has_max = 1;
}

/* Build a dictionary of the column's strings: *ids gets each dense
 * value's index, *first the first occurrence of each entry. Returns the
 * entry count, or 0 when a dictionary would not pay. */
static size_t
build_dict(const wcol *c, uint32_t *ids, size_t **first_out)
{
    size_t    cap = 1024, mask, n = 0, j, dict_bytes = 0, plain_bytes;
    uint32_t *table;
    size_t   *first = NULL;

    *first_out = NULL;
    if (c->nvals == 0)
        return 0;
    plain_bytes = c->sdata.len + 4 * c->nvals;
    while (cap < 2 * c->nvals && cap < 4 * PQW_DICT_MAX)
        cap *= 2;
    mask = cap - 1;
    table = xmalloc(cap * sizeof(*table));
    memset(table, 0xff, cap * sizeof(*table));
    first = xmalloc(PQW_DICT_MAX * sizeof(*first));
    for (j = 0; j < c->nvals; j++) {
        const char *s = c->sdata.data + c->soff[j];
        size_t      len = c->soff[j + 1] - c->soff[j], k;
        uint64_t    h = 1469598103934665603ULL;

        for (k = 0; k < len; k++)
            h = (h ^ (uint8_t)s[k]) * 1099511628211ULL;
        h = util_mix64(h + len);
        for (k = h & mask;; k = (k + 1) & mask) {
            uint32_t e = table[k];

            if (e == UINT32_MAX) {
                if (n == PQW_DICT_MAX || 2 * (n + 1) > cap) {
                    n = 0;
                    goto done;
                }
                table[k] = (uint32_t)n;
                first[n] = j;
                dict_bytes += len + 4;
                ids[j] = (uint32_t)n++;
                break;
            }
            if (c->soff[first[e] + 1] - c->soff[first[e]] == len
                && memcmp(c->sdata.data + c->soff[first[e]], s, len) == 0) {
                ids[j] = e;
                break;
            }
        }
    }
    /* pays when dictionary + indices are under 3/4 of the plain bytes */
    if (dict_bytes + c->nvals * (size_t)(bit_width((uint32_t)n) + 1) / 8
        > plain_bytes / 4 * 3)
        n = 0;
done:
    free(table);
    if (n == 0)
        free(first);
    else
        *first_out = first;
    return n;
}

/* Write column c of the row group as a column chunk; fill *cc. */
static int
write_chunk(pq_writer *w, wcol *c, pq_chunk *cc, sh_err *err)
{
    pq_col_meta   *m = &cc->meta;
    pq_page_header h;
    uint32_t      *ids = NULL, *lv;
    size_t        *first = NULL, ndict = 0, row = 0, val = 0, j;
    size_t         avg, page_rows;
    int            rc = 0, bw = 0;

    memset(cc, 0, sizeof(*cc));
    cc->has_meta = 1;
    m->type = c->physical;
    m->codec = w->codec;
    m->num_values = (int64_t)c->nrows;
    m->dictionary_page_offset = -1;
    m->encodings = 1u << PQ_E_PLAIN | 1u << PQ_E_RLE;
    cc->file_offset = w->off;
    col_stats(w, c, &m->stats);

    if (c->type == SH_STRING && c->nvals > 0) {
        ids = xmalloc(c->nvals * sizeof(*ids));
        ndict = build_dict(c, ids, &first);
    }
    if (ndict > 0) {
        m->dictionary_page_offset = w->off;
        m->encodings |= 1u << PQ_E_RLE_DICTIONARY;
        sb_reset(&w->page);
        for (j = 0; j < ndict; j++)
            put_plain(&w->page, c, first[j]);
        memset(&h, 0, sizeof(h));
        h.type = PQ_P_DICTIONARY;
        h.num_values = (int32_t)ndict;
        h.encoding = PQ_E_PLAIN;
        if ((rc = emit_page(w, &h, &m->total_uncompressed_size,
                            &m->total_compressed_size, err))
            < 0)
            goto done;
        bw = bit_width((uint32_t)(ndict - 1));
        if (bw == 0)
            bw = 1;
    }
    m->data_page_offset = w->off;
    /* rows a page: about PQW_PAGE_BYTES of plain values */
    avg = c->nrows ? (c->type == SH_STRING ? (c->sdata.len + 4 * c->nvals)
                                           : 8 * c->nvals)
                             / c->nrows
                         + 1
                   : 1;
    page_rows = PQW_PAGE_BYTES / avg;
    if (page_rows < 64)
        page_rows = 64;
    while (row < c->nrows) {
        size_t n = c->nrows - row < page_rows ? c->nrows - row : page_rows;
        size_t nn = 0, lvstart;

        sb_reset(&w->page);
        /* definition levels, with their 4-byte length */
        lv = scratch(w, n);
        for (j = 0; j < n; j++) {
            lv[j] = c->defs[row + j];
            nn += lv[j];
        }
        put_u32(&w->page, 0);
        lvstart = w->page.len;
        rle_encode(&w->page, lv, n, 1);
        {
            uint32_t len = (uint32_t)(w->page.len - lvstart);

            memcpy(w->page.data + lvstart - 4, &len, 4);
        }
        memset(&h, 0, sizeof(h));
        h.type = PQ_P_DATA;
        h.num_values = (int32_t)n;
        h.def_encoding = PQ_E_RLE;
        h.rep_encoding = PQ_E_RLE;
        if (ndict > 0) {
            h.encoding = PQ_E_RLE_DICTIONARY;
            sb_putc(&w->page, (char)bw);
            rle_encode(&w->page, ids + val, nn, bw);
        } else if (c->type == SH_BOOL) {
            size_t   nb = (nn + 7) / 8;
            uint8_t *dst;

            h.encoding = PQ_E_PLAIN;
            sb_reserve(&w->page, nb + 1);
            dst = (uint8_t *)w->page.data + w->page.len;
            memset(dst, 0, nb);
            for (j = 0; j < nn; j++)
                dst[j >> 3] |= (uint8_t)(c->bools[val + j] << (j & 7));
            w->page.len += nb;
        } else {
            h.encoding = PQ_E_PLAIN;
            if (c->type == SH_INT || c->type == SH_TIMESTAMP)
                sb_append(&w->page, c->ints + val, 8 * nn);
            else if (c->type == SH_DATE)
                for (j = 0; j < nn; j++)
                    put_plain(&w->page, c, val + j);
            else if (c->type == SH_FLOAT)
                sb_append(&w->page, c->dbls + val, 8 * nn);
            else
                for (j = 0; j < nn; j++)
                    put_plain(&w->page, c, val + j);
        }
        if ((rc = emit_page(w, &h, &m->total_uncompressed_size,
                            &m->total_compressed_size, err))
            < 0)
            goto done;
        row += n;
        val += nn;
    }
done:
    free(ids);
    free(first);
    return rc;
}

static int
flush_row_group(pq_writer *w, sh_err *err)
{
    pq_row_group *g;
    size_t        i;
    int           rc;

    if (w->nrows == 0)
        return 0;
    if (w->nrgs == w->caprgs) {
        w->caprgs = w->caprgs ? 2 * w->caprgs : 8;
        w->rgs = xrealloc(w->rgs, w->caprgs * sizeof(*w->rgs));
    }
    g = &w->rgs[w->nrgs++];
    memset(g, 0, sizeof(*g));
    g->num_rows = (int64_t)w->nrows;
    g->ncols = (uint32_t)w->sc->n;
    g->cols = xcalloc(w->sc->n ? w->sc->n : 1, sizeof(*g->cols));
    for (i = 0; i < w->sc->n; i++) {
        wcol *c = &w->cols[i];

        if ((rc = write_chunk(w, c, &g->cols[i], err)) < 0)
            return rc;
        g->total_byte_size += g->cols[i].meta.total_uncompressed_size;
        c->nrows = c->nvals = 0;
        sb_reset(&c->sdata);
    }
    w->nrows = 0;
    w->buffered = 0;
    return out_flush(w, err);
}

/* Make stats offsets into pointers into w->statbuf. */
static void
fix_stats(const pq_writer *w, pq_stats *s)
{
    const uint8_t *base = (const uint8_t *)w->statbuf.data;

    if (s->has_min)
        s->min = base + (uintptr_t)s->min;
    if (s->has_max)
        s->max = base + (uintptr_t)s->max;
}

/* See parquet_write.h. */
int
pq_writer_finish(pq_writer *w, sh_err *err)
{
    pq_file_meta    m;
    pq_schema_elem *se;
    strbuf          footer = {0};
    size_t          i, j;
    uint8_t         len[4];
    int             rc;

    if (w->finished)
        return 0;
    w->finished = 1;
    if ((rc = flush_row_group(w, err)) < 0)
        return rc;
    se = xcalloc(w->sc->n + 1, sizeof(*se));
    se[0].type = -1;
    se[0].repetition = -1;
    se[0].converted = -1;
    se[0].name = "schema";
    se[0].name_len = 6;
    se[0].num_children = (int32_t)w->sc->n;
    for (i = 0; i < w->sc->n; i++) {
        pq_schema_elem *e = &se[i + 1];

        e->type = w->cols[i].physical;
        e->repetition = PQ_R_OPTIONAL;
        e->name = w->sc->names[i];
        e->name_len = (uint32_t)strlen(w->sc->names[i]);
        e->converted = -1;
        if (e->type == PQ_T_BYTE_ARRAY) {
            e->converted = PQ_CT_UTF8;
            e->logical.kind = PQ_LT_STRING;
        } else if (w->cols[i].type == SH_DATE) {
            e->converted = PQ_CT_DATE;
            e->logical.kind = PQ_LT_DATE;
        } else if (w->cols[i].type == SH_TIMESTAMP) {
            e->converted = PQ_CT_TIMESTAMP_MICROS;
            e->logical.kind = PQ_LT_TIMESTAMP;
            e->logical.unit = PQ_UNIT_MICROS;
            e->logical.utc = 1;
        }
    }
    for (i = 0; i < w->nrgs; i++)
        for (j = 0; j < w->rgs[i].ncols; j++)
            fix_stats(w, &w->rgs[i].cols[j].meta.stats);
    memset(&m, 0, sizeof(m));
    m.version = 1;
    m.schema = se;
    m.nschema = (uint32_t)w->sc->n + 1;
    m.num_rows = (int64_t)w->total_rows;
    m.rgs = w->rgs;
    m.nrgs = (uint32_t)w->nrgs;
    m.created_by = "sheaf";
    m.created_by_len = 5;
    m.column_orders = 1;
    thr_encode_file_meta(&footer, &m);
    out_put(w, footer.data, footer.len);
    len[0] = (uint8_t)footer.len;
    len[1] = (uint8_t)(footer.len >> 8);
    len[2] = (uint8_t)(footer.len >> 16);
    len[3] = (uint8_t)(footer.len >> 24);
    out_put(w, len, 4);
    out_put(w, "PAR1", 4);
    sb_free(&footer);
    free(se);
    return out_flush(w, err);
}

/* See parquet_write.h. */
uint64_t
pq_writer_bytes_out(const pq_writer *w)
{
    return w->bytes_out;
}

/* See parquet_write.h. */
uint64_t
pq_writer_rows(const pq_writer *w)
{
    return w->total_rows;
}

/* See parquet_write.h. */
void
pq_writer_free(pq_writer *w)
{
    size_t i;

    if (w == NULL)
        return;
    for (i = 0; i < w->sc->n; i++) {
        wcol *c = &w->cols[i];

        free(c->defs);
        free(c->ints);
        free(c->dbls);
        free(c->bools);
        free(c->soff);
        sb_free(&c->sdata);
    }
    for (i = 0; i < w->nrgs; i++)
        free(w->rgs[i].cols);
    free(w->rgs);
    free(w->cols);
    free(w->u32);
    sb_free(&w->out);
    sb_free(&w->page);
    sb_free(&w->comp);
    sb_free(&w->hdr);
    sb_free(&w->statbuf);
    pq_codecs_free(w->codecs);
    free(w);
}

/* The same columns: names, physical types, repetition. */
static int
same_schema(const pq_file_meta *a, const pq_file_meta *b)
{
    uint32_t i;

    if (a->nschema != b->nschema)
        return 0;
    for (i = 0; i < a->nschema; i++) {
        const pq_schema_elem *x = &a->schema[i], *y = &b->schema[i];

        if (x->type != y->type || x->repetition != y->repetition
            || x->num_children != y->num_children || x->name_len != y->name_len
            || memcmp(x->name, y->name, x->name_len) != 0)
            return 0;
    }
    return 1;
}

/* See parquet_write.h. */
int
pq_merge(const int *fds, const char *const *names, size_t n, int64_t *data_end,
         strbuf *tail, sh_err *err)
{
    pq_file     **fs = xcalloc(n ? n : 1, sizeof(*fs));
    pq_row_group *rgs = NULL;
    pq_file_meta  m;
    size_t        i, nrgs = 0, k = 0;
    int64_t       pos = 4, shift, rows = 0;
    uint32_t      g, c, len;
    strbuf        foot = {0};
    int           rc = 0;

    if (n == 0) {
        rc = sh_err_set(err, SH_EDATA, NULL, "no parts to merge");
        goto done;
    }
    for (i = 0; i < n; i++) {
        if ((fs[i] = pq_open(fds[i], names[i], err)) == NULL) {
            rc = err->code;
            goto done;
        }
        if (!same_schema(&fs[0]->meta, &fs[i]->meta)) {
            rc = sh_err_set(err, SH_EDATA, NULL,
                            "file %s: its schema differs from %s's", names[i],
                            names[0]);
            goto done;
        }
        nrgs += fs[i]->meta.nrgs;
        rows += fs[i]->meta.num_rows;
    }
    rgs = xcalloc(nrgs ? nrgs : 1, sizeof(*rgs));
    for (i = 0; i < n; i++) {
        const pq_file_meta *pm = &fs[i]->meta;

        data_end[i] = fs[i]->data_end;
        shift = pos - 4;
        for (g = 0; g < pm->nrgs; g++, k++) {
            rgs[k] = pm->rgs[g];
            rgs[k].cols = xmalloc((pm->rgs[g].ncols ? pm->rgs[g].ncols : 1)
                                  * sizeof(pq_chunk));
            memcpy(rgs[k].cols, pm->rgs[g].cols,
                   pm->rgs[g].ncols * sizeof(pq_chunk));
            for (c = 0; c < rgs[k].ncols; c++) {
                pq_chunk *ch = &rgs[k].cols[c];

                ch->file_offset += shift;
                ch->meta.data_page_offset += shift;
                if (ch->meta.dictionary_page_offset >= 0)
                    ch->meta.dictionary_page_offset += shift;
            }
        }
        pos += fs[i]->data_end - 4;
    }
    memset(&m, 0, sizeof(m));
    m.version = 1;
    m.schema = fs[0]->meta.schema;
    m.nschema = fs[0]->meta.nschema;
    m.num_rows = rows;
    m.rgs = rgs;
    m.nrgs = (uint32_t)nrgs;
    m.created_by = "sheaf";
    m.created_by_len = 5;
    m.column_orders = 1;
    thr_encode_file_meta(&foot, &m);
    sb_append(tail, foot.data, foot.len);
    len = (uint32_t)foot.len;
    {
        uint8_t b[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                        (uint8_t)(len >> 24)};

        sb_append(tail, b, 4);
    }
    sb_append(tail, "PAR1", 4);
done:
    for (i = 0; rgs != NULL && i < nrgs; i++)
        free(rgs[i].cols);
    free(rgs);
    for (i = 0; i < n; i++)
        pq_close(fs[i]);
    free(fs);
    sb_free(&foot);
    return rc;
}
