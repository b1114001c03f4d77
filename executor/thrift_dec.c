/*
 * thrift_dec.c - the Thrift compact protocol decoder for Parquet's footer
 * and page headers: a bounds-checked reader (every read checks the end,
 * errors are sticky, so a decoder runs to its end on garbage and then
 * reports) and the decoders of the structs in thrift.h. The encoders are
 * in thrift_enc.c.
 */
#include "thrift.h"

#include <stdlib.h>
#include <string.h>

#include "thrift_int.h"

/* ---- reading --------------------------------------------------------------
 */

typedef struct rd {
    const uint8_t *p, *end;
    int            depth;
    int            trunc; /* the bytes ended early */
    int            bad;   /* the bytes are malformed */
    const char    *why;
} rd;

static int
rd_ok(const rd *r)
{
    return !r->trunc && !r->bad;
}

static void
rd_bad(rd *r, const char *why)
{
    if (!r->bad && !r->trunc) {
        r->bad = 1;
        r->why = why;
    }
}

static uint8_t
rd_byte(rd *r)
{
    if (!rd_ok(r))
        return 0;
    if (r->p >= r->end) {
        r->trunc = 1;
        return 0;
    }
    return *r->p++;
}

static uint64_t
rd_varint(rd *r)
{
    uint64_t v = 0;
    int      shift = 0;

    for (;;) {
        uint8_t b = rd_byte(r);

        if (!rd_ok(r))
            return 0;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
        shift += 7;
        if (shift > 63) {
            rd_bad(r, "varint too long");
            return 0;
        }
    }
}

static int64_t
rd_zigzag(rd *r)
{
    uint64_t u = rd_varint(r);

    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static const uint8_t *
rd_binary(rd *r, uint32_t *len)
{
    uint64_t       n = rd_varint(r);
    const uint8_t *s;

    *len = 0;
    if (!rd_ok(r))
        return NULL;
    if (n > (uint64_t)(r->end - r->p)) {
        r->trunc = 1;
        return NULL;
    }
    s = r->p;
    r->p += n;
    *len = (uint32_t)n;
    return s;
}

/* A list header: element type in *etype, count returned (0 on error). The
 * count is checked against the bytes left: every element takes one byte
 * at least, so a corrupt count cannot make a huge allocation. */
static uint32_t
rd_list(rd *r, int *etype)
{
    uint8_t  b = rd_byte(r);
    uint64_t n = b >> 4;

    *etype = b & 0x0f;
    if (n == 15)
        n = rd_varint(r);
    if (!rd_ok(r))
        return 0;
    if (n > (uint64_t)(r->end - r->p)) {
        r->trunc = 1;
        return 0;
    }
    return (uint32_t)n;
}

static void rd_skip(rd *r, int type);

/* Make room for element 'i' of an array of 'cap' elements of 'size'
 * bytes, zeroing new ones. Arrays grow as elements are decoded, so memory
 * follows the bytes actually read, not a count the bytes claim. */
static void *
rd_grow(void *p, uint32_t i, uint32_t *cap, size_t size)
{
    uint32_t n;

    if (i < *cap)
        return p;
    n = *cap ? 2 * *cap : 16;
    p = xrealloc(p, (size_t)n * size);
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
    *cap = n;
    return p;
}

/* Enter a struct: 0 when nesting is too deep. */
static int
rd_enter(rd *r)
{
    if (++r->depth > THR_MAX_DEPTH) {
        rd_bad(r, "structs nested too deep");
        return 0;
    }
    return 1;
}

/* The next field header of the struct being read: 1 with *id and *type,
 * 0 at its STOP (or on an error). '*last' is the previous field's id. */
static int
rd_field(rd *r, int *last, int *id, int *type)
{
    uint8_t b = rd_byte(r);
    int     delta;

    if (!rd_ok(r) || b == CT_STOP)
        return 0;
    *type = b & 0x0f;
    delta = b >> 4;
    if (delta)
        *id = *last + delta;
    else
        *id = (int)(int16_t)rd_zigzag(r);
    *last = *id;
    return rd_ok(r);
}

/* The bool of a field header's type (true and false are types). */
static int
rd_bool_field(rd *r, int type)
{
    if (type == CT_TRUE)
        return 1;
    if (type != CT_FALSE)
        rd_skip(r, type);
    return 0;
}

static void
rd_skip_struct(rd *r)
{
    int last = 0, id, type;

    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type))
        rd_skip(r, type);
    r->depth--;
}

static void
rd_skip(rd *r, int type)
{
    uint32_t i, n, len;
    int      et, kt;

    if (!rd_ok(r))
        return;
    switch (type) {
    case CT_TRUE:
    case CT_FALSE:
        return;
    case CT_BYTE:
        rd_byte(r);
        return;
    case CT_I16:
    case CT_I32:
    case CT_I64:
        rd_varint(r);
        return;
    case CT_DOUBLE:
        if (r->end - r->p < 8)
            r->trunc = 1;
        else
            r->p += 8;
        return;
    case CT_BINARY:
        rd_binary(r, &len);
        return;
    case CT_LIST:
    case CT_SET:
        n = rd_list(r, &et);
        if (!rd_enter(r))
            return;
        for (i = 0; i < n && rd_ok(r); i++) {
            if (et == CT_TRUE || et == CT_FALSE)
                rd_byte(r);
            else
                rd_skip(r, et);
        }
        r->depth--;
        return;
    case CT_MAP:
        n = (uint32_t)rd_varint(r);
        if (n == 0 || !rd_ok(r))
            return;
        if (n > (uint64_t)(r->end - r->p)) {
            r->trunc = 1;
            return;
        }
        kt = rd_byte(r);
        et = kt & 0x0f;
        kt >>= 4;
        if (!rd_enter(r))
            return;
        for (i = 0; i < n && rd_ok(r); i++) {
            rd_skip(r, kt);
            rd_skip(r, et);
        }
        r->depth--;
        return;
    case CT_STRUCT:
        rd_skip_struct(r);
        return;
    default:
        rd_bad(r, "unknown field type");
    }
}

/* Read an integer field of any integer type as int64; skip other types
 * (a mismatch is taken as a field of another meaning). */
static int64_t
rd_int_field(rd *r, int type)
{
    if (type == CT_I16 || type == CT_I32 || type == CT_I64)
        return rd_zigzag(r);
    if (type == CT_BYTE)
        return (int8_t)rd_byte(r);
    rd_skip(r, type);
    return 0;
}

static int32_t
rd_i32_field(rd *r, int type)
{
    int64_t v = rd_int_field(r, type);

    if (v < INT32_MIN || v > INT32_MAX) {
        rd_bad(r, "i32 out of range");
        return 0;
    }
    return (int32_t)v;
}

static void
rd_stats(rd *r, pq_stats *s)
{
    int            last = 0, id, type;
    const uint8_t *lmin = NULL, *lmax = NULL;
    uint32_t       lmin_len = 0, lmax_len = 0;

    memset(s, 0, sizeof(*s));
    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        if (type != CT_BINARY && (id == 1 || id == 2 || id == 5 || id == 6)) {
            rd_skip(r, type);
            continue;
        }
        switch (id) {
        case 1:
            lmax = rd_binary(r, &lmax_len);
            break;
        case 2:
            lmin = rd_binary(r, &lmin_len);
            break;
        case 3:
            s->null_count = rd_int_field(r, type);
            s->has_null_count = 1;
            break;
        case 5:
            s->max = rd_binary(r, &s->max_len);
            s->has_max = 1;
            break;
        case 6:
            s->min = rd_binary(r, &s->min_len);
            s->has_min = 1;
            break;
        default:
            rd_skip(r, type);
        }
    }
    r->depth--;
    if (!s->has_min && !s->has_max && (lmin || lmax)) {
        s->legacy = 1;
        s->min = lmin;
        s->min_len = lmin_len;
        s->has_min = lmin != NULL;
        s->max = lmax;
        s->max_len = lmax_len;
        s->has_max = lmax != NULL;
    }
}

/* TimeUnit: a union of empty structs. */
static int
rd_time_unit(rd *r)
{
    int last = 0, id, type, unit = PQ_UNIT_NONE;

    if (!rd_enter(r))
        return 0;
    while (rd_field(r, &last, &id, &type)) {
        if (type == CT_STRUCT && id >= 1 && id <= 3)
            unit = id;
        rd_skip(r, type);
    }
    r->depth--;
    return unit;
}

/* The members of one LogicalType union member's struct. */
static void
rd_logical_member(rd *r, pq_logical *lt)
{
    int last = 0, id, type;

    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        switch (lt->kind) {
        case PQ_LT_DECIMAL:
            if (id == 1)
                lt->scale = rd_i32_field(r, type);
            else if (id == 2)
                lt->precision = rd_i32_field(r, type);
            else
                rd_skip(r, type);
            break;
        case PQ_LT_TIME:
        case PQ_LT_TIMESTAMP:
            if (id == 1)
                lt->utc = rd_bool_field(r, type);
            else if (id == 2 && type == CT_STRUCT)
                lt->unit = rd_time_unit(r);
            else
                rd_skip(r, type);
            break;
        case PQ_LT_INTEGER:
            if (id == 1)
                lt->bit_width = (int)rd_int_field(r, type);
            else if (id == 2)
                lt->is_signed = rd_bool_field(r, type);
            else
                rd_skip(r, type);
            break;
        default:
            rd_skip(r, type);
        }
    }
    r->depth--;
}

static void
rd_logical(rd *r, pq_logical *lt)
{
    int last = 0, id, type;

    memset(lt, 0, sizeof(*lt));
    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        if (type != CT_STRUCT) {
            rd_skip(r, type);
            continue;
        }
        if ((id >= 1 && id <= 8) || (id >= 10 && id <= 15))
            lt->kind = id;
        else
            lt->kind = PQ_LT_OTHER;
        rd_logical_member(r, lt);
    }
    r->depth--;
}

static void
rd_schema_elem(rd *r, pq_schema_elem *e)
{
    int last = 0, id, type;

    memset(e, 0, sizeof(*e));
    e->type = -1;
    e->repetition = -1;
    e->converted = -1;
    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        switch (id) {
        case 1:
            e->type = rd_i32_field(r, type);
            break;
        case 2:
            e->type_length = rd_i32_field(r, type);
            break;
        case 3:
            e->repetition = rd_i32_field(r, type);
            break;
        case 4:
            if (type == CT_BINARY)
                e->name = (const char *)rd_binary(r, &e->name_len);
            else
                rd_skip(r, type);
            break;
        case 5:
            e->num_children = rd_i32_field(r, type);
            break;
        case 6:
            e->converted = rd_i32_field(r, type);
            break;
        case 7:
            e->scale = rd_i32_field(r, type);
            break;
        case 8:
            e->precision = rd_i32_field(r, type);
            break;
        case 10:
            if (type == CT_STRUCT)
                rd_logical(r, &e->logical);
            else
                rd_skip(r, type);
            break;
        default:
            rd_skip(r, type);
        }
    }
    r->depth--;
    if (rd_ok(r) && e->name == NULL)
        rd_bad(r, "schema element without a name");
}

static void
rd_col_meta(rd *r, pq_col_meta *m)
{
    int      last = 0, id, type, et;
    uint32_t i, n;

    memset(m, 0, sizeof(*m));
    m->dictionary_page_offset = -1;
    m->data_page_offset = -1;
    m->type = -1;
    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        switch (id) {
        case 1:
            m->type = rd_i32_field(r, type);
            break;
        case 2:
            if (type != CT_LIST) {
                rd_skip(r, type);
                break;
            }
            n = rd_list(r, &et);
            for (i = 0; i < n && rd_ok(r); i++) {
                int64_t e = rd_int_field(r, et);

                if (e >= 0 && e < 32)
                    m->encodings |= 1u << e;
            }
            break;
        case 3:
            if (type != CT_LIST) {
                rd_skip(r, type);
                break;
            }
            n = rd_list(r, &et);
            m->path_len = n;
            for (i = 0; i < n && rd_ok(r); i++)
                rd_skip(r, et);
            break;
        case 4:
            m->codec = rd_i32_field(r, type);
            break;
        case 5:
            m->num_values = rd_int_field(r, type);
            break;
        case 6:
            m->total_uncompressed_size = rd_int_field(r, type);
            break;
        case 7:
            m->total_compressed_size = rd_int_field(r, type);
            break;
        case 9:
            m->data_page_offset = rd_int_field(r, type);
            break;
        case 11:
            m->dictionary_page_offset = rd_int_field(r, type);
            break;
        case 12:
            if (type == CT_STRUCT)
                rd_stats(r, &m->stats);
            else
                rd_skip(r, type);
            break;
        default:
            rd_skip(r, type);
        }
    }
    r->depth--;
}

static void
rd_chunk(rd *r, pq_chunk *c)
{
    int last = 0, id, type;

    memset(c, 0, sizeof(*c));
    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        if (id == 1) {
            c->has_file_path = 1;
            rd_skip(r, type);
        } else if (id == 2) {
            c->file_offset = rd_int_field(r, type);
        } else if (id == 3 && type == CT_STRUCT) {
            c->has_meta = 1;
            rd_col_meta(r, &c->meta);
        } else {
            rd_skip(r, type);
        }
    }
    r->depth--;
}

static void
rd_row_group(rd *r, pq_row_group *g)
{
    int      last = 0, id, type, et;
    uint32_t i, n, cap = 0;

    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        if (id == 1 && type == CT_LIST && g->cols == NULL) {
            n = rd_list(r, &et);
            if (et != CT_STRUCT && n > 0) {
                rd_bad(r, "row group columns are not structs");
                break;
            }
            g->cols = rd_grow(NULL, 0, &cap, sizeof(*g->cols));
            for (i = 0; i < n && rd_ok(r); i++) {
                g->cols = rd_grow(g->cols, i, &cap, sizeof(*g->cols));
                g->ncols = i + 1;
                rd_chunk(r, &g->cols[i]);
                if (rd_ok(r)
                    && (!g->cols[i].has_meta || g->cols[i].meta.type < 0
                        || g->cols[i].meta.data_page_offset < 0))
                    rd_bad(r, "a column chunk without its metadata "
                              "(encrypted or in another file)");
            }
        } else if (id == 2) {
            g->total_byte_size = rd_int_field(r, type);
        } else if (id == 3) {
            g->num_rows = rd_int_field(r, type);
        } else {
            rd_skip(r, type);
        }
    }
    r->depth--;
}

/* See thrift.h. */
int
thr_decode_file_meta(const uint8_t *p, size_t n, pq_file_meta *out, sh_err *err)
{
    rd       r = {p, p + n, 0, 0, 0, NULL};
    int      last = 0, id, type, et;
    uint32_t i, cnt, cap = 0;

    memset(out, 0, sizeof(*out));
    while (rd_field(&r, &last, &id, &type)) {
        if (id == 1) {
            out->version = rd_i32_field(&r, type);
        } else if (id == 2 && type == CT_LIST && out->schema == NULL) {
            cnt = rd_list(&r, &et);
            if (et != CT_STRUCT && cnt > 0) {
                rd_bad(&r, "schema elements are not structs");
                break;
            }
            cap = 0;
            out->schema = rd_grow(NULL, 0, &cap, sizeof(*out->schema));
            for (i = 0; i < cnt && rd_ok(&r); i++) {
                out->schema = rd_grow(out->schema, i, &cap,
                                      sizeof(*out->schema));
                rd_schema_elem(&r, &out->schema[i]);
            }
            out->nschema = i;
        } else if (id == 3) {
            out->num_rows = rd_int_field(&r, type);
        } else if (id == 4 && type == CT_LIST && out->rgs == NULL) {
            cnt = rd_list(&r, &et);
            if (et != CT_STRUCT && cnt > 0) {
                rd_bad(&r, "row groups are not structs");
                break;
            }
            cap = 0;
            out->rgs = rd_grow(NULL, 0, &cap, sizeof(*out->rgs));
            for (i = 0; i < cnt && rd_ok(&r); i++) {
                out->rgs = rd_grow(out->rgs, i, &cap, sizeof(*out->rgs));
                out->nrgs = i + 1;
                rd_row_group(&r, &out->rgs[i]);
            }
        } else if (id == 6 && type == CT_BINARY) {
            out->created_by = (const char *)rd_binary(&r, &out->created_by_len);
        } else {
            rd_skip(&r, type);
        }
    }
    if (r.trunc)
        return sh_err_set(err, SH_EDATA, NULL,
                          "the footer metadata is truncated");
    if (r.bad)
        return sh_err_set(err, SH_EDATA, NULL,
                          "the footer metadata is corrupt (%s)", r.why);
    if (out->schema == NULL || out->nschema == 0)
        return sh_err_set(err, SH_EDATA, NULL,
                          "the footer metadata has no schema");
    return 0;
}

/* See thrift.h. */
void
thr_file_meta_free(pq_file_meta *m)
{
    uint32_t i;

    if (m == NULL)
        return;
    for (i = 0; m->rgs != NULL && i < m->nrgs; i++)
        free(m->rgs[i].cols);
    free(m->rgs);
    free(m->schema);
    memset(m, 0, sizeof(*m));
}

/* The members of DataPageHeader, DataPageHeaderV2, DictionaryPageHeader. */
static void
rd_page_sub(rd *r, pq_page_header *h, int which)
{
    int last = 0, id, type;

    if (!rd_enter(r))
        return;
    while (rd_field(r, &last, &id, &type)) {
        if (id == 1) {
            h->num_values = rd_i32_field(r, type);
        } else if (which == 5 || which == 7) {
            /* v1 data page and dictionary page */
            if (id == 2)
                h->encoding = rd_i32_field(r, type);
            else if (id == 3 && which == 5)
                h->def_encoding = rd_i32_field(r, type);
            else if (id == 4 && which == 5)
                h->rep_encoding = rd_i32_field(r, type);
            else
                rd_skip(r, type);
        } else {
            switch (id) {
            case 2:
                h->num_nulls = rd_i32_field(r, type);
                break;
            case 3:
                h->num_rows = rd_i32_field(r, type);
                break;
            case 4:
                h->encoding = rd_i32_field(r, type);
                break;
            case 5:
                h->def_len = rd_i32_field(r, type);
                break;
            case 6:
                h->rep_len = rd_i32_field(r, type);
                break;
            case 7:
                h->is_compressed = rd_bool_field(r, type);
                break;
            default:
                rd_skip(r, type);
            }
        }
    }
    r->depth--;
}

/* See thrift.h. */
int
thr_decode_page_header(const uint8_t *p, size_t n, pq_page_header *out,
                       size_t *used, sh_err *err)
{
    rd  r = {p, p + n, 0, 0, 0, NULL};
    int last = 0, id, type, seen = 0;

    memset(out, 0, sizeof(*out));
    out->type = -1;
    out->is_compressed = 1;
    *used = 0;
    while (rd_field(&r, &last, &id, &type)) {
        switch (id) {
        case 1:
            out->type = rd_i32_field(&r, type);
            break;
        case 2:
            out->uncompressed_size = rd_i32_field(&r, type);
            break;
        case 3:
            out->compressed_size = rd_i32_field(&r, type);
            break;
        case 5:
        case 7:
        case 8:
            if (type == CT_STRUCT) {
                rd_page_sub(&r, out, id);
                seen |= 1 << (id - 5);
            } else {
                rd_skip(&r, type);
            }
            break;
        default:
            rd_skip(&r, type);
        }
    }
    if (r.trunc)
        return 1;
    if (r.bad)
        return sh_err_set(err, SH_EDATA, NULL, "corrupt page header (%s)",
                          r.why);
    if (out->uncompressed_size < 0 || out->compressed_size < 0
        || out->num_values < 0 || out->def_len < 0 || out->rep_len < 0)
        return sh_err_set(err, SH_EDATA, NULL,
                          "corrupt page header (negative size)");
    if ((out->type == PQ_P_DATA && !(seen & 1))
        || (out->type == PQ_P_DICTIONARY && !(seen & 4))
        || (out->type == PQ_P_DATA_V2 && !(seen & 8)))
        return sh_err_set(err, SH_EDATA, NULL,
                          "corrupt page header (type %d without its "
                          "header)",
                          out->type);
    *used = (size_t)(r.p - p);
    return 0;
}
