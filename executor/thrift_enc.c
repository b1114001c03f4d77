/*
 * thrift_enc.c - the Thrift compact protocol encoder of the structs in
 * thrift.h (Parquet's footer and page headers) that the Parquet writer
 * uses. The decoders are in thrift_dec.c.
 */
#include "thrift.h"

#include "thrift_int.h"

/* ---- writing --------------------------------------------------------------
 */

static void
wr_varint(strbuf *sb, uint64_t v)
{
    uint8_t buf[10];
    size_t  n = 0;

    while (v >= 0x80) {
        buf[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    buf[n++] = (uint8_t)v;
    sb_append(sb, buf, n);
}

static void
wr_zigzag(strbuf *sb, int64_t v)
{
    wr_varint(sb, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void
wr_field(strbuf *sb, int *last, int id, int type)
{
    int delta = id - *last;

    if (delta > 0 && delta <= 15) {
        sb_putc(sb, (char)(delta << 4 | type));
    } else {
        sb_putc(sb, (char)type);
        wr_zigzag(sb, id);
    }
    *last = id;
}

static void
wr_int(strbuf *sb, int *last, int id, int type, int64_t v)
{
    wr_field(sb, last, id, type);
    wr_zigzag(sb, v);
}

static void
wr_bin(strbuf *sb, int *last, int id, const void *p, size_t n)
{
    wr_field(sb, last, id, CT_BINARY);
    wr_varint(sb, n);
    sb_append(sb, p, n);
}

static void
wr_list(strbuf *sb, uint32_t n, int etype)
{
    if (n < 15) {
        sb_putc(sb, (char)(n << 4 | etype));
    } else {
        sb_putc(sb, (char)(0xf0 | etype));
        wr_varint(sb, n);
    }
}

static void
wr_stop(strbuf *sb)
{
    sb_putc(sb, 0);
}

static void
wr_stats(strbuf *sb, const pq_stats *s)
{
    int last = 0;

    if (s->has_null_count)
        wr_int(sb, &last, 3, CT_I64, s->null_count);
    if (s->has_max)
        wr_bin(sb, &last, 5, s->max, s->max_len);
    if (s->has_min)
        wr_bin(sb, &last, 6, s->min, s->min_len);
    wr_stop(sb);
}

/* See thrift.h. */
void
thr_encode_page_header(strbuf *sb, const pq_page_header *h)
{
    int last = 0, sl = 0;

    wr_int(sb, &last, 1, CT_I32, h->type);
    wr_int(sb, &last, 2, CT_I32, h->uncompressed_size);
    wr_int(sb, &last, 3, CT_I32, h->compressed_size);
    if (h->type == PQ_P_DATA) {
        wr_field(sb, &last, 5, CT_STRUCT);
        wr_int(sb, &sl, 1, CT_I32, h->num_values);
        wr_int(sb, &sl, 2, CT_I32, h->encoding);
        wr_int(sb, &sl, 3, CT_I32, h->def_encoding);
        wr_int(sb, &sl, 4, CT_I32, h->rep_encoding);
        if (h->has_stats) {
            wr_field(sb, &sl, 5, CT_STRUCT);
            wr_stats(sb, &h->stats);
        }
        wr_stop(sb);
    } else if (h->type == PQ_P_DICTIONARY) {
        wr_field(sb, &last, 7, CT_STRUCT);
        wr_int(sb, &sl, 1, CT_I32, h->num_values);
        wr_int(sb, &sl, 2, CT_I32, h->encoding);
        wr_stop(sb);
    } else if (h->type == PQ_P_DATA_V2) {
        wr_field(sb, &last, 8, CT_STRUCT);
        wr_int(sb, &sl, 1, CT_I32, h->num_values);
        wr_int(sb, &sl, 2, CT_I32, h->num_nulls);
        wr_int(sb, &sl, 3, CT_I32, h->num_rows);
        wr_int(sb, &sl, 4, CT_I32, h->encoding);
        wr_int(sb, &sl, 5, CT_I32, h->def_len);
        wr_int(sb, &sl, 6, CT_I32, h->rep_len);
        wr_field(sb, &sl, 7, h->is_compressed ? CT_TRUE : CT_FALSE);
        wr_stop(sb);
    }
    wr_stop(sb);
}

static void
wr_logical(strbuf *sb, const pq_logical *lt)
{
    int last = 0, sl = 0, ul = 0;

    wr_field(sb, &last, lt->kind, CT_STRUCT);
    switch (lt->kind) {
    case PQ_LT_DECIMAL:
        wr_int(sb, &sl, 1, CT_I32, lt->scale);
        wr_int(sb, &sl, 2, CT_I32, lt->precision);
        break;
    case PQ_LT_TIME:
    case PQ_LT_TIMESTAMP:
        wr_field(sb, &sl, 1, lt->utc ? CT_TRUE : CT_FALSE);
        wr_field(sb, &sl, 2, CT_STRUCT);
        wr_field(sb, &ul, lt->unit, CT_STRUCT);
        wr_stop(sb);
        wr_stop(sb);
        break;
    case PQ_LT_INTEGER:
        wr_int(sb, &sl, 1, CT_BYTE, 0);
        sb->data[sb->len - 1] = (char)lt->bit_width;
        wr_field(sb, &sl, 2, lt->is_signed ? CT_TRUE : CT_FALSE);
        break;
    default:
        break;
    }
    wr_stop(sb);
    wr_stop(sb);
}

static void
wr_schema_elem(strbuf *sb, const pq_schema_elem *e)
{
    int last = 0;

    if (e->type >= 0)
        wr_int(sb, &last, 1, CT_I32, e->type);
    if (e->type == PQ_T_FIXED_LEN_BYTE_ARRAY)
        wr_int(sb, &last, 2, CT_I32, e->type_length);
    if (e->repetition >= 0)
        wr_int(sb, &last, 3, CT_I32, e->repetition);
    wr_bin(sb, &last, 4, e->name, e->name_len);
    if (e->num_children > 0)
        wr_int(sb, &last, 5, CT_I32, e->num_children);
    if (e->converted >= 0)
        wr_int(sb, &last, 6, CT_I32, e->converted);
    if (e->converted == PQ_CT_DECIMAL) {
        wr_int(sb, &last, 7, CT_I32, e->scale);
        wr_int(sb, &last, 8, CT_I32, e->precision);
    }
    if (e->logical.kind != PQ_LT_NONE) {
        wr_field(sb, &last, 10, CT_STRUCT);
        wr_logical(sb, &e->logical);
    }
    wr_stop(sb);
}

static void
wr_col_meta(strbuf *sb, const pq_col_meta *m, const pq_schema_elem *leaf)
{
    int last = 0, e, n = 0;

    wr_int(sb, &last, 1, CT_I32, m->type);
    for (e = 0; e < 32; e++)
        n += (m->encodings >> e) & 1;
    wr_field(sb, &last, 2, CT_LIST);
    wr_list(sb, (uint32_t)n, CT_I32);
    for (e = 0; e < 32; e++)
        if ((m->encodings >> e) & 1)
            wr_zigzag(sb, e);
    wr_field(sb, &last, 3, CT_LIST);
    wr_list(sb, 1, CT_BINARY);
    wr_varint(sb, leaf->name_len);
    sb_append(sb, leaf->name, leaf->name_len);
    wr_int(sb, &last, 4, CT_I32, m->codec);
    wr_int(sb, &last, 5, CT_I64, m->num_values);
    wr_int(sb, &last, 6, CT_I64, m->total_uncompressed_size);
    wr_int(sb, &last, 7, CT_I64, m->total_compressed_size);
    wr_int(sb, &last, 9, CT_I64, m->data_page_offset);
    if (m->dictionary_page_offset >= 0)
        wr_int(sb, &last, 11, CT_I64, m->dictionary_page_offset);
    wr_field(sb, &last, 12, CT_STRUCT);
    wr_stats(sb, &m->stats);
    wr_stop(sb);
}

/* See thrift.h. Flat schemas only: column i of a row group is the leaf
 * schema[1 + i] (its name is the path in schema). */
void
thr_encode_file_meta(strbuf *sb, const pq_file_meta *m)
{
    int      last = 0, gl, cl;
    uint32_t i, j;

    wr_int(sb, &last, 1, CT_I32, m->version);
    wr_field(sb, &last, 2, CT_LIST);
    wr_list(sb, m->nschema, CT_STRUCT);
    for (i = 0; i < m->nschema; i++)
        wr_schema_elem(sb, &m->schema[i]);
    wr_int(sb, &last, 3, CT_I64, m->num_rows);
    wr_field(sb, &last, 4, CT_LIST);
    wr_list(sb, m->nrgs, CT_STRUCT);
    for (i = 0; i < m->nrgs; i++) {
        const pq_row_group *g = &m->rgs[i];

        gl = 0;
        wr_field(sb, &gl, 1, CT_LIST);
        wr_list(sb, g->ncols, CT_STRUCT);
        for (j = 0; j < g->ncols; j++) {
            cl = 0;
            wr_int(sb, &cl, 2, CT_I64, g->cols[j].file_offset);
            wr_field(sb, &cl, 3, CT_STRUCT);
            wr_col_meta(sb, &g->cols[j].meta, &m->schema[1 + j]);
            wr_stop(sb);
        }
        wr_int(sb, &gl, 2, CT_I64, g->total_byte_size);
        wr_int(sb, &gl, 3, CT_I64, g->num_rows);
        wr_stop(sb);
    }
    if (m->created_by != NULL)
        wr_bin(sb, &last, 6, m->created_by, m->created_by_len);
    if (m->column_orders) {
        wr_field(sb, &last, 7, CT_LIST);
        wr_list(sb, m->nschema - 1, CT_STRUCT);
        for (i = 1; i < m->nschema; i++) {
            sb_putc(sb, (char)(1 << 4 | CT_STRUCT)); /* TYPE_ORDER */
            wr_stop(sb);
            wr_stop(sb);
        }
    }
    wr_stop(sb);
}
