/*
 * parquet_col.c - the values of one column chunk of a Parquet file, for
 * the row reader (parquet_read.c): page by page, read the page header and
 * the page with pread, decompress, decode the definition levels and the
 * values of as many rows as the page and the batch have, and scatter them
 * into the column's slot of the batch's rows. Also the page buffers a
 * batch holds (strings point into them) and the dictionary a row group's
 * chunk keeps.
 *
 * A corrupt page is an error naming the file, the row group and the
 * column (pq_col_err), never a read outside the page.
 */
#include "parquet_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* See parquet_int.h. */
int
pq_col_err(pq_reader *r, const colrd *cr, int code, sh_err *err,
           const char *fmt, ...)
{
    char    msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sh_err_set(err, code, NULL,
                      "file %s, row group %zu, column '%s': "
                      "%s",
                      r->f->name, r->rg, cr->c->name, msg);
}

/* See parquet_int.h. */
int
pq_col_kind(const pq_col *c, double *scale, int *width)
{
    int dec = c->logical.kind == PQ_LT_DECIMAL;

    *scale = dec ? pq_pow10(c->logical.scale) : 1;
    *width = 0;
    switch (c->physical) {
    case PQ_T_BOOLEAN:
        return K_BOOL;
    case PQ_T_INT32:
        *width = 4;
        if (dec)
            return K_DEC32;
        if (c->logical.kind == PQ_LT_INTEGER && !c->logical.is_signed)
            return K_UINT32;
        return c->type == SH_DATE ? K_DATE : K_INT32;
    case PQ_T_INT64:
        *width = 8;
        if (c->type == SH_TIMESTAMP)
            return K_TS;
        return dec ? K_DEC64 : K_INT64;
    case PQ_T_INT96:
        *width = 12;
        return K_INT96;
    case PQ_T_FLOAT:
        *width = 4;
        return K_FLOAT;
    case PQ_T_DOUBLE:
        *width = 8;
        return K_DOUBLE;
    case PQ_T_FIXED_LEN_BYTE_ARRAY:
        *width = c->type_length;
        return K_DECBYTES;
    default:
        return dec ? K_DECBYTES : K_STRING;
    }
}

/* ---- page buffers ------------------------------------------------------- */

/* A buffer of at least 'n' bytes, held until the next batch: the
 * smallest spare that fits, else the largest grown (with some slack, as
 * page sizes vary), else a new one. */
static uint8_t *
buf_take(pq_reader *r, size_t n, size_t *cap)
{
    uint8_t *b;
    size_t   c = 0, i, best = SIZE_MAX, big = 0;

    for (i = 0; i < r->nspare; i++) {
        if (r->spare_cap[i] >= n
            && (best == SIZE_MAX || r->spare_cap[i] < r->spare_cap[best]))
            best = i;
        if (r->spare_cap[i] > r->spare_cap[big])
            big = i;
    }
    if (best == SIZE_MAX && r->nspare > 0)
        best = big;
    if (best != SIZE_MAX) {
        b = r->spare[best];
        c = r->spare_cap[best];
        r->nspare--;
        r->spare[best] = r->spare[r->nspare];
        r->spare_cap[best] = r->spare_cap[r->nspare];
        if (c < n) {
            free(b);
            c = n + n / 4;
            b = xmalloc(c ? c : 1);
        }
    } else {
        c = n + n / 4;
        b = xmalloc(c ? c : 1);
    }
    if (r->nheld == r->capheld) {
        r->capheld = r->capheld ? 2 * r->capheld : 8;
        r->held = xrealloc(r->held, r->capheld * sizeof(*r->held));
        r->held_cap = xrealloc(r->held_cap, r->capheld * sizeof(*r->held_cap));
        r->spare = xrealloc(r->spare, r->capheld * sizeof(*r->spare));
        r->spare_cap = xrealloc(r->spare_cap,
                                r->capheld * sizeof(*r->spare_cap));
        r->capspare = r->capheld;
    }
    r->held_cap[r->nheld] = c;
    r->held[r->nheld++] = b;
    *cap = c;
    return b;
}

/* See parquet_int.h. */
void
pq_buf_release(pq_reader *r)
{
    size_t i, k, keep = 0;

    for (i = 0; i < r->nheld; i++) {
        uint8_t *b = r->held[i];
        size_t   cap = r->held_cap[i];
        int      live = 0;

        for (k = 0; k < r->ncr; k++) {
            if (r->crs[k].page == b) {
                live = r->crs[k].page_left > 0;
                if (!live)
                    r->crs[k].page = NULL;
            }
        }
        if (live) {
            r->held_cap[keep] = cap;
            r->held[keep++] = b;
        } else if (r->nspare < 2 * r->ncr + 2 && r->nspare < r->capspare) {
            r->spare[r->nspare] = b;
            r->spare_cap[r->nspare++] = cap;
        } else {
            free(b);
        }
    }
    r->nheld = keep;
}

/* ---- pages -------------------------------------------------------------- */

static int
read_at(pq_reader *r, const colrd *cr, void *buf, size_t n, int64_t off,
        sh_err *err)
{
    size_t done = 0;

    while (done < n) {
        ssize_t k = pread(r->f->fd, (char *)buf + done, n - done,
                          (off_t)(off + (int64_t)done));

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return pq_col_err(r, cr, SH_EIO, err, "read: %s", strerror(errno));
        if (k == 0)
            return pq_col_err(r, cr, SH_EDATA, err, "the file is truncated");
        done += (size_t)k;
    }
    r->nbytes += n;
    return 0;
}

/* Read the page header at cr->pos into *h, advancing cr->pos past it. */
static int
read_header(pq_reader *r, colrd *cr, pq_page_header *h, sh_err *err)
{
    size_t want = 256, used;
    int    rc;

    for (;;) {
        int64_t left = cr->end - cr->pos;
        size_t  n = (int64_t)want < left ? want : (size_t)left;

        if (n == 0)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "the column chunk ends before its %lld values",
                              (long long)cr->values_left);
        sb_reset(&r->hbuf);
        sb_reserve(&r->hbuf, n);
        if ((rc = read_at(r, cr, r->hbuf.data, n, cr->pos, err)) < 0)
            return rc;
        rc = thr_decode_page_header((const uint8_t *)r->hbuf.data, n, h, &used,
                                    err);
        if (rc < 0) {
            char msg[SH_ERR_MSG_MAX];

            snprintf(msg, sizeof(msg), "%s", err->msg);
            return pq_col_err(r, cr, SH_EDATA, err, "%s at byte %lld", msg,
                              (long long)cr->pos);
        }
        if (rc == 0)
            break;
        if ((int64_t)n >= left || want >= (64u << 20))
            return pq_col_err(r, cr, SH_EDATA, err,
                              "truncated page header at byte %lld",
                              (long long)cr->pos);
        want *= 4;
    }
    cr->pos += (int64_t)used;
    if (h->compressed_size > cr->end - cr->pos)
        return pq_col_err(r, cr, SH_EDATA, err,
                          "a page of %d bytes runs past its column chunk",
                          h->compressed_size);
    return 0;
}

/* Read the page body (compressed_size bytes at cr->pos) and decompress
 * its bytes from 'skip' on into dst[skip..usize) (bytes before 'skip' are
 * copied as they are: v2 levels). */
static int
read_body(pq_reader *r, colrd *cr, const pq_page_header *h, uint8_t *dst,
          size_t usize, size_t skip, int compressed, sh_err *err)
{
    size_t      csize = (size_t)h->compressed_size;
    const char *why = NULL;
    int         rc;

    if (skip > csize || skip > usize)
        return pq_col_err(r, cr, SH_EDATA, err,
                          "page levels are longer than the page");
    if (!compressed || cr->codec == PQ_C_UNCOMPRESSED) {
        if (csize != usize)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "page sizes disagree (%zu and %zu bytes)", csize,
                              usize);
        rc = read_at(r, cr, dst, csize, cr->pos, err);
    } else {
        sb_reset(&r->cbuf);
        sb_reserve(&r->cbuf, csize);
        rc = read_at(r, cr, r->cbuf.data, csize, cr->pos, err);
        if (rc == 0) {
            memcpy(dst, r->cbuf.data, skip);
            /* an empty values section (all nulls) may be stored as is */
            if (usize > skip
                && pq_decompress(r->codecs, cr->codec,
                                 (const uint8_t *)r->cbuf.data + skip,
                                 csize - skip, dst + skip, usize - skip, &why)
                       < 0)
                rc = pq_col_err(r, cr, SH_EDATA, err,
                                "%s (%s page at byte %lld)", why,
                                pq_codec_name(cr->codec), (long long)cr->pos);
        }
    }
    cr->pos += (int64_t)csize;
    return rc;
}

/* Decode 'n' plain values of the column from [*pp, end) into out[]. */
static int
plain_values(colrd *cr, const uint8_t **pp, const uint8_t *end, sh_value *out,
             size_t n)
{
    const uint8_t *p = *pp;
    size_t         i;
    int32_t        i32;
    int64_t        i64;
    float          fl;
    double         d;
    uint32_t       len;

    if (cr->kind == K_BOOL)
        return -1; /* handled by the caller (bit offsets) */
    if (cr->kind != K_STRING && !(cr->kind == K_DECBYTES && cr->width == 0)) {
        if ((size_t)(end - p) / (size_t)cr->width < n)
            return -1;
    }
    switch (cr->kind) {
    case K_INT32:
        for (i = 0; i < n; i++, p += 4) {
            memcpy(&i32, p, 4);
            out[i] = sh_int(i32);
        }
        break;
    case K_UINT32:
        for (i = 0; i < n; i++, p += 4) {
            memcpy(&i32, p, 4);
            out[i] = sh_int((uint32_t)i32);
        }
        break;
    case K_DATE:
        for (i = 0; i < n; i++, p += 4) {
            memcpy(&i32, p, 4);
            out[i] = sh_date(i32);
        }
        break;
    case K_TS:
        for (i = 0; i < n; i++, p += 8) {
            memcpy(&i64, p, 8);
            out[i] = pq_ts_value(i64, cr->unit);
        }
        break;
    case K_DEC32:
        for (i = 0; i < n; i++, p += 4) {
            memcpy(&i32, p, 4);
            out[i] = sh_float(i32 / cr->scale);
        }
        break;
    case K_INT64:
        for (i = 0; i < n; i++, p += 8) {
            memcpy(&i64, p, 8);
            out[i] = sh_int(i64);
        }
        break;
    case K_DEC64:
        for (i = 0; i < n; i++, p += 8) {
            memcpy(&i64, p, 8);
            out[i] = sh_float((double)i64 / cr->scale);
        }
        break;
    case K_FLOAT:
        for (i = 0; i < n; i++, p += 4) {
            memcpy(&fl, p, 4);
            out[i] = sh_float(fl);
        }
        break;
    case K_DOUBLE:
        for (i = 0; i < n; i++, p += 8) {
            memcpy(&d, p, 8);
            out[i] = sh_float(d);
        }
        break;
    case K_INT96:
        for (i = 0; i < n; i++, p += 12) {
            uint32_t jd;

            memcpy(&i64, p, 8);
            memcpy(&jd, p + 8, 4);
            out[i] = pq_int96_value(i64, jd);
        }
        break;
    case K_DECBYTES:
        for (i = 0; i < n; i++) {
            if (cr->width == 0) {
                if (end - p < 4)
                    return -1;
                memcpy(&len, p, 4);
                p += 4;
            } else {
                len = (uint32_t)cr->width;
            }
            if (len > (size_t)(end - p) || len > 16)
                return -1;
            out[i] = sh_float(pq_be_to_double(p, len) / cr->scale);
            p += len;
        }
        break;
    case K_STRING:
        for (i = 0; i < n; i++) {
            if (end - p < 4)
                return -1;
            memcpy(&len, p, 4);
            p += 4;
            if (len > (size_t)(end - p))
                return -1;
            out[i] = sh_str((const char *)p, len);
            p += len;
        }
        break;
    default:
        return -1;
    }
    *pp = p;
    return 0;
}

/* A raw integer from DBP as a value of the column. */
static inline sh_value
int_value(const colrd *cr, int64_t v)
{
    switch (cr->kind) {
    case K_INT32:
        return sh_int((int32_t)v);
    case K_UINT32:
        return sh_int((uint32_t)v);
    case K_DATE:
        return sh_date((int32_t)v);
    case K_TS:
        return pq_ts_value(v, cr->unit);
    case K_DEC32:
        return sh_float((int32_t)v / cr->scale);
    case K_DEC64:
        return sh_float((double)v / cr->scale);
    default:
        return sh_int(v);
    }
}

static int
load_dictionary(pq_reader *r, colrd *cr, const pq_page_header *h, sh_err *err)
{
    const uint8_t *p, *end;
    size_t         usize = (size_t)h->uncompressed_size;
    uint32_t       i;

    if (h->encoding != PQ_E_PLAIN && h->encoding != PQ_E_PLAIN_DICTIONARY)
        return pq_col_err(r, cr, SH_EDATA, err,
                          "dictionary page in encoding %d", h->encoding);
    if (cr->dict != NULL)
        return pq_col_err(r, cr, SH_EDATA, err, "a second dictionary page");
    if (usize > PQ_MAX_PAGE_BYTES)
        return pq_col_err(r, cr, SH_EDATA, err,
                          "a dictionary page of %zu bytes (more than 1 GiB)",
                          usize);
    cr->dict_buf = xmalloc(usize ? usize : 1);
    if (read_body(r, cr, h, cr->dict_buf, usize, 0, 1, err) < 0)
        return err->code;
    /* every plain value takes its width (4 bytes of length for strings),
     * booleans a bit */
    if ((size_t)h->num_values
        > (cr->kind == K_BOOL
               ? usize * 8 + 8
               : usize / (size_t)(cr->width > 0 ? cr->width : 4) + 1))
        return pq_col_err(r, cr, SH_EDATA, err,
                          "dictionary of %d values in %zu bytes", h->num_values,
                          usize);
    cr->dict = xmalloc(((size_t)h->num_values + 1) * sizeof(*cr->dict));
    p = cr->dict_buf;
    end = p + usize;
    if (cr->kind == K_BOOL) {
        for (i = 0; i < (uint32_t)h->num_values; i++) {
            if (i / 8 >= usize)
                return pq_col_err(r, cr, SH_EDATA, err, "truncated dictionary");
            cr->dict[i] = sh_bool((p[i / 8] >> (i % 8)) & 1);
        }
    } else if (plain_values(cr, &p, end, cr->dict, (size_t)h->num_values) < 0) {
        return pq_col_err(r, cr, SH_EDATA, err, "corrupt dictionary page");
    }
    cr->ndict = (uint32_t)h->num_values;
    return 0;
}

/* Set up the value decoder of the values section [p, end). */
static int
init_values(pq_reader *r, colrd *cr, const pq_page_header *h, const uint8_t *p,
            const uint8_t *end, sh_err *err)
{
    const uint8_t *q;
    uint32_t       len;

    cr->enc = h->encoding;
    cr->vp = p;
    cr->vend = end;
    cr->bool_bit = 0;
    if (cr->dbp_live)
        pq_dbp_free(&cr->dbp);
    if (cr->dbp2_live)
        pq_dbp_free(&cr->dbp2);
    cr->dbp_live = cr->dbp2_live = 0;
    switch (h->encoding) {
    case PQ_E_PLAIN:
        return 0;
    case PQ_E_PLAIN_DICTIONARY:
    case PQ_E_RLE_DICTIONARY:
        if (cr->dict == NULL)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "dictionary-encoded page without a dictionary");
        if (p >= end) {
            pq_rle_init(&cr->idx, p, end, 0);
            return 0;
        }
        if (*p > 32)
            return pq_col_err(r, cr, SH_EDATA, err, "dictionary index width %d",
                              *p);
        pq_rle_init(&cr->idx, p + 1, end, *p);
        return 0;
    case PQ_E_RLE:
        if (cr->kind != K_BOOL)
            break;
        if (end - p < 4)
            return pq_col_err(r, cr, SH_EDATA, err, "truncated RLE booleans");
        memcpy(&len, p, 4);
        if (len > (size_t)(end - p - 4))
            return pq_col_err(r, cr, SH_EDATA, err, "truncated RLE booleans");
        pq_rle_init(&cr->idx, p + 4, p + 4 + len, 1);
        return 0;
    case PQ_E_DELTA_BINARY_PACKED:
        if (cr->kind == K_BOOL || cr->kind == K_FLOAT || cr->kind == K_DOUBLE
            || cr->kind == K_STRING || cr->kind == K_DECBYTES
            || cr->kind == K_INT96)
            break;
        cr->dbp_live = 1;
        if (pq_dbp_init(&cr->dbp, p, end) < 0)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "corrupt DELTA_BINARY_PACKED header");
        return 0;
    case PQ_E_DELTA_LENGTH_BYTE_ARRAY:
        if (cr->kind != K_STRING)
            break;
        cr->dbp_live = 1;
        if (pq_dbp_init(&cr->dbp, p, end) < 0
            || (q = pq_dbp_end(&cr->dbp)) == NULL)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "corrupt DELTA_LENGTH_BYTE_ARRAY lengths");
        cr->vp = q;
        return 0;
    case PQ_E_DELTA_BYTE_ARRAY:
        if (cr->kind != K_STRING)
            break;
        cr->dbp2_live = cr->dbp_live = 1;
        if (pq_dbp_init(&cr->dbp2, p, end) < 0
            || (q = pq_dbp_end(&cr->dbp2)) == NULL
            || pq_dbp_init(&cr->dbp, q, end) < 0
            || (q = pq_dbp_end(&cr->dbp)) == NULL
            || pq_dbp_total(&cr->dbp) != pq_dbp_total(&cr->dbp2))
            return pq_col_err(r, cr, SH_EDATA, err,
                              "corrupt DELTA_BYTE_ARRAY lengths");
        cr->vp = q;
        sb_reset(&cr->prev);
        return 0;
    case PQ_E_BYTE_STREAM_SPLIT:
        if (cr->width <= 0 || cr->kind == K_INT96)
            break;
        cr->bss_n = (uint64_t)(end - p) / (uint64_t)cr->width;
        cr->bss_i = 0;
        return 0;
    default:
        break;
    }
    return pq_col_err(r, cr, SH_EINVAL, err,
                      "encoding %d is not read for this column's type",
                      h->encoding);
}

/* Read pages until a data page is current. */
static int
next_page(pq_reader *r, colrd *cr, sh_err *err)
{
    pq_page_header h;
    size_t         usize, cap;
    uint8_t       *buf;
    const uint8_t *p, *end;
    uint32_t       len;
    int            rc;

    for (;;) {
        if ((rc = read_header(r, cr, &h, err)) < 0)
            return rc;
        if (h.type == PQ_P_DICTIONARY) {
            if ((rc = load_dictionary(r, cr, &h, err)) < 0)
                return rc;
            continue;
        }
        if (h.type != PQ_P_DATA && h.type != PQ_P_DATA_V2) {
            cr->pos += h.compressed_size; /* index pages, unknown kinds */
            continue;
        }
        break;
    }
    if (h.uncompressed_size > (int32_t)PQ_MAX_PAGE_BYTES)
        return pq_col_err(r, cr, SH_EDATA, err,
                          "a page of %d bytes (more than 1 GiB)",
                          h.uncompressed_size);
    if (h.num_values > cr->values_left)
        return pq_col_err(r, cr, SH_EDATA, err,
                          "pages hold more values than the chunk's %lld",
                          (long long)cr->values_left);
    usize = (size_t)h.uncompressed_size;
    buf = buf_take(r, usize, &cap);
    cr->page = buf;
    cr->page_cap = cap;
    cr->has_def = cr->c->optional;
    p = buf;
    end = buf + usize;
    if (h.type == PQ_P_DATA) {
        if ((rc = read_body(r, cr, &h, buf, usize, 0, 1, err)) < 0)
            return rc;
        if (cr->has_def) {
            if (h.def_encoding != PQ_E_RLE)
                return pq_col_err(r, cr, SH_EINVAL, err,
                                  "definition levels in encoding %d (only RLE "
                                  "is read)",
                                  h.def_encoding);
            if (end - p < 4)
                return pq_col_err(r, cr, SH_EDATA, err,
                                  "truncated definition levels");
            memcpy(&len, p, 4);
            if (len > (size_t)(end - p - 4))
                return pq_col_err(r, cr, SH_EDATA, err,
                                  "truncated definition levels");
            pq_rle_init(&cr->def, p + 4, p + 4 + len, 1);
            p += 4 + len;
        }
    } else {
        size_t lv = (size_t)h.rep_len + (size_t)h.def_len;

        if ((rc = read_body(r, cr, &h, buf, usize, lv, h.is_compressed, err))
            < 0)
            return rc;
        if (h.rep_len != 0)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "repetition levels in a flat column");
        if (cr->has_def)
            pq_rle_init(&cr->def, p, p + h.def_len, 1);
        p += lv;
    }
    cr->values_left -= h.num_values;
    cr->page_left = h.num_values;
    return init_values(r, cr, &h, p, end, err);
}

/* Decode 'n' non-null values of the current page into r->tmp. */
static int
decode_values(pq_reader *r, colrd *cr, size_t n, sh_err *err)
{
    sh_value *out = r->tmp;
    size_t    i;
    uint32_t  len;

    if (n == 0)
        return 0;
    switch (cr->enc) {
    case PQ_E_PLAIN:
        if (cr->kind == K_BOOL) {
            if (((size_t)(cr->vend - cr->vp)) * 8 < cr->bool_bit + n)
                goto corrupt;
            for (i = 0; i < n; i++, cr->bool_bit++)
                out[i] = sh_bool(
                    (cr->vp[cr->bool_bit >> 3] >> (cr->bool_bit & 7)) & 1);
            return 0;
        }
        if (plain_values(cr, &cr->vp, cr->vend, out, n) < 0)
            goto corrupt;
        return 0;
    case PQ_E_PLAIN_DICTIONARY:
    case PQ_E_RLE_DICTIONARY:
        if (pq_rle_get(&cr->idx, r->u32, n) < 0)
            goto corrupt;
        for (i = 0; i < n; i++) {
            if (r->u32[i] >= cr->ndict)
                return pq_col_err(r, cr, SH_EDATA, err,
                                  "dictionary index %u of %u entries",
                                  r->u32[i], cr->ndict);
            out[i] = cr->dict[r->u32[i]];
        }
        return 0;
    case PQ_E_RLE:
        if (pq_rle_get(&cr->idx, r->u32, n) < 0)
            goto corrupt;
        for (i = 0; i < n; i++)
            out[i] = sh_bool(r->u32[i] & 1);
        return 0;
    case PQ_E_DELTA_BINARY_PACKED:
        if (pq_dbp_get(&cr->dbp, r->i64, n) < 0)
            goto corrupt;
        for (i = 0; i < n; i++)
            out[i] = int_value(cr, r->i64[i]);
        return 0;
    case PQ_E_DELTA_LENGTH_BYTE_ARRAY:
        if (pq_dbp_get(&cr->dbp, r->i64, n) < 0)
            goto corrupt;
        for (i = 0; i < n; i++) {
            if (r->i64[i] < 0 || r->i64[i] > cr->vend - cr->vp)
                goto corrupt;
            out[i] = sh_str((const char *)cr->vp, (size_t)r->i64[i]);
            cr->vp += r->i64[i];
        }
        return 0;
    case PQ_E_DELTA_BYTE_ARRAY:
        if (pq_dbp_get(&cr->dbp2, r->i64b, n) < 0
            || pq_dbp_get(&cr->dbp, r->i64, n) < 0)
            goto corrupt;
        for (i = 0; i < n; i++) {
            int64_t pre = r->i64b[i], suf = r->i64[i];
            char   *s;

            if (pre < 0 || (size_t)pre > cr->prev.len || suf < 0
                || suf > cr->vend - cr->vp)
                goto corrupt;
            len = (uint32_t)(pre + suf);
            s = arena_alloc(r->ar, len ? len : 1);
            if (pre > 0)
                memcpy(s, cr->prev.data, (size_t)pre);
            if (suf > 0)
                memcpy(s + pre, cr->vp, (size_t)suf);
            cr->vp += suf;
            cr->prev.len = 0;
            sb_append(&cr->prev, s, len);
            out[i] = sh_str(s, len);
        }
        return 0;
    case PQ_E_BYTE_STREAM_SPLIT: {
        uint8_t        raw[16];
        const uint8_t *b = cr->vp;
        int            w = cr->width, k;

        if (cr->bss_i + n > cr->bss_n || w > 16)
            goto corrupt;
        for (i = 0; i < n; i++, cr->bss_i++) {
            const uint8_t *q;

            for (k = 0; k < w; k++)
                raw[k] = b[(uint64_t)k * cr->bss_n + cr->bss_i];
            q = raw;
            if (plain_values(cr, &q, raw + w, out + i, 1) < 0)
                goto corrupt;
        }
        return 0;
    }
    default:
        break;
    }
corrupt:
    return pq_col_err(r, cr, SH_EDATA, err,
                      "corrupt or truncated values (encoding %d)", cr->enc);
}

/* See parquet_int.h. */
int
pq_col_fill(pq_reader *r, colrd *cr, size_t k, sh_err *err)
{
    size_t    filled = 0, m, nn, i, j, stride = r->ncols;
    sh_value *dst = r->rows + cr->col;
    int       rc;

    while (filled < k) {
        if (cr->page_left == 0) {
            if ((rc = next_page(r, cr, err)) < 0)
                return rc;
            continue;
        }
        m = k - filled;
        if (m > (size_t)cr->page_left)
            m = (size_t)cr->page_left;
        nn = m;
        if (cr->has_def) {
            if (pq_rle_get(&cr->def, r->levels, m) < 0)
                return pq_col_err(r, cr, SH_EDATA, err,
                                  "corrupt or truncated definition levels");
            nn = 0;
            for (i = 0; i < m; i++) {
                if (r->levels[i] > 1)
                    return pq_col_err(r, cr, SH_EDATA, err,
                                      "definition level %u in a flat column",
                                      r->levels[i]);
                nn += r->levels[i];
            }
        }
        if ((rc = decode_values(r, cr, nn, err)) < 0)
            return rc;
        if (nn == m) {
            for (i = 0; i < m; i++)
                dst[(filled + i) * stride] = r->tmp[i];
        } else {
            for (i = 0, j = 0; i < m; i++)
                dst[(filled + i) * stride] = r->levels[i] ? r->tmp[j++]
                                                          : sh_null();
        }
        filled += m;
        cr->page_left -= (int32_t)m;
    }
    return 0;
}
