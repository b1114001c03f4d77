/*
 * parquet_meta.c - opening a Parquet file: the magic bytes, the footer,
 * the schema mapped to sheaf's column types (parquet.h says how), the
 * row groups' byte ranges and statistics, and the check that the columns
 * a job needs can be read.
 */
#include "parquet_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PQ_MAX_FOOTER (64u << 20)

/* Encodings the reader decodes (BIT_PACKED only as a listed level
 * encoding, which flat columns do not use). */
#define PQ_ENCODINGS_OK                                                     \
    ((1u << PQ_E_PLAIN) | (1u << PQ_E_PLAIN_DICTIONARY) | (1u << PQ_E_RLE)  \
     | (1u << PQ_E_BIT_PACKED) | (1u << PQ_E_DELTA_BINARY_PACKED)           \
     | (1u << PQ_E_DELTA_LENGTH_BYTE_ARRAY) | (1u << PQ_E_DELTA_BYTE_ARRAY) \
     | (1u << PQ_E_RLE_DICTIONARY) | (1u << PQ_E_BYTE_STREAM_SPLIT))

static int
pread_all(int fd, void *buf, size_t n, int64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t k = pread(fd, (char *)buf + done, n - done,
                          (off_t)(off + (int64_t)done));

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -1 : -2;
        done += (size_t)k;
    }
    return 0;
}

/* The logical type of 'e', from LogicalType or else its ConvertedType. */
static pq_logical
logical_of(const pq_schema_elem *e)
{
    pq_logical lt = e->logical;

    if (lt.kind != PQ_LT_NONE)
        return lt;
    switch (e->converted) {
    case PQ_CT_UTF8:
        lt.kind = PQ_LT_STRING;
        break;
    case PQ_CT_ENUM:
        lt.kind = PQ_LT_ENUM;
        break;
    case PQ_CT_JSON:
        lt.kind = PQ_LT_JSON;
        break;
    case PQ_CT_BSON:
        lt.kind = PQ_LT_BSON;
        break;
    case PQ_CT_DECIMAL:
        lt.kind = PQ_LT_DECIMAL;
        lt.scale = e->scale;
        lt.precision = e->precision;
        break;
    case PQ_CT_DATE:
        lt.kind = PQ_LT_DATE;
        break;
    case PQ_CT_TIME_MILLIS:
    case PQ_CT_TIME_MICROS:
        lt.kind = PQ_LT_TIME;
        lt.unit = e->converted == PQ_CT_TIME_MILLIS ? PQ_UNIT_MILLIS
                                                    : PQ_UNIT_MICROS;
        lt.utc = 1;
        break;
    case PQ_CT_TIMESTAMP_MILLIS:
    case PQ_CT_TIMESTAMP_MICROS:
        lt.kind = PQ_LT_TIMESTAMP;
        lt.unit = e->converted == PQ_CT_TIMESTAMP_MILLIS ? PQ_UNIT_MILLIS
                                                         : PQ_UNIT_MICROS;
        lt.utc = 1;
        break;
    case PQ_CT_UINT_8:
    case PQ_CT_UINT_16:
    case PQ_CT_UINT_32:
    case PQ_CT_UINT_64:
    case PQ_CT_INT_8:
    case PQ_CT_INT_16:
    case PQ_CT_INT_32:
    case PQ_CT_INT_64:
        lt.kind = PQ_LT_INTEGER;
        lt.is_signed = e->converted >= PQ_CT_INT_8;
        lt.bit_width = 8 << ((e->converted
                              - (lt.is_signed ? PQ_CT_INT_8 : PQ_CT_UINT_8)));
        break;
    case PQ_CT_INTERVAL:
    case PQ_CT_MAP:
    case PQ_CT_LIST:
    case PQ_CT_MAP_KEY_VALUE:
        lt.kind = PQ_LT_OTHER;
        break;
    default:
        break;
    }
    return lt;
}

/* Fill c->type and c->why_unsupported from the physical and logical
 * types. */
static void
map_type(pq_col *c)
{
    int lk = c->logical.kind;

    c->type = SH_NULL;
    if (lk == PQ_LT_DECIMAL) {
        if (c->logical.scale < 0 || c->logical.scale > 38)
            c->why_unsupported = "a DECIMAL of scale outside 0..38";
        else if (c->physical == PQ_T_INT32 || c->physical == PQ_T_INT64)
            c->type = SH_FLOAT;
        else if (c->physical == PQ_T_FIXED_LEN_BYTE_ARRAY && c->type_length >= 1
                 && c->type_length <= 16)
            c->type = SH_FLOAT;
        else if (c->physical == PQ_T_BYTE_ARRAY)
            c->type = SH_FLOAT;
        else
            c->why_unsupported = "a DECIMAL wider than 16 bytes";
        return;
    }
    switch (c->physical) {
    case PQ_T_BOOLEAN:
        c->type = SH_BOOL;
        break;
    case PQ_T_INT32:
    case PQ_T_INT64:
        if (lk == PQ_LT_NONE || lk == PQ_LT_INTEGER || lk == PQ_LT_TIME)
            c->type = SH_INT;
        else if (lk == PQ_LT_DATE && c->physical == PQ_T_INT32)
            c->type = SH_DATE;
        else if (lk == PQ_LT_TIMESTAMP && c->physical == PQ_T_INT64
                 && c->logical.unit >= PQ_UNIT_MILLIS
                 && c->logical.unit <= PQ_UNIT_NANOS)
            c->type = SH_TIMESTAMP;
        else if (lk == PQ_LT_DATE || lk == PQ_LT_TIMESTAMP)
            c->why_unsupported = "a DATE or TIMESTAMP of an unexpected "
                                 "physical type or unit";
        else
            c->why_unsupported = "an integer of an unsupported logical type";
        break;
    case PQ_T_INT96:
        c->type = SH_TIMESTAMP;
        break;
    case PQ_T_FLOAT:
    case PQ_T_DOUBLE:
        c->type = SH_FLOAT;
        break;
    case PQ_T_BYTE_ARRAY:
        if (lk == PQ_LT_NONE || lk == PQ_LT_STRING || lk == PQ_LT_ENUM
            || lk == PQ_LT_JSON || lk == PQ_LT_BSON)
            c->type = SH_STRING;
        else
            c->why_unsupported = "a byte array of an unsupported logical "
                                 "type";
        break;
    case PQ_T_FIXED_LEN_BYTE_ARRAY:
        c->why_unsupported = "a FIXED_LEN_BYTE_ARRAY that is not a DECIMAL";
        break;
    default:
        c->why_unsupported = "an unknown physical type";
    }
}

/* Count the schema elements of the subtree at *i (advancing *i past it)
 * and its leaves. -1 when the tree is malformed. */
static int
walk_subtree(const pq_file_meta *m, uint32_t *i, uint32_t *leaves, int depth)
{
    const pq_schema_elem *e;
    int32_t               k;

    if (*i >= m->nschema || depth > THR_MAX_DEPTH)
        return -1;
    e = &m->schema[(*i)++];
    if (e->num_children <= 0) {
        if (e->type < 0)
            return -1;
        (*leaves)++;
        return 0;
    }
    for (k = 0; k < e->num_children; k++)
        if (walk_subtree(m, i, leaves, depth + 1) < 0)
            return -1;
    return 0;
}

static int
build_columns(pq_file *f, sh_err *err)
{
    const pq_file_meta   *m = &f->meta;
    const pq_schema_elem *root = &m->schema[0];
    uint32_t              i = 1, leaves = 0, g, l;
    int32_t               k;

    if (root->num_children <= 0 || (uint32_t)root->num_children >= m->nschema)
        return sh_err_set(err, SH_EDATA, NULL,
                          "file %s: the schema has no columns", f->name);
    f->cols = xcalloc((size_t)root->num_children, sizeof(*f->cols));
    for (k = 0; k < root->num_children; k++) {
        const pq_schema_elem *e;
        pq_col               *c = &f->cols[f->ncols];
        uint32_t              first_leaf = leaves;

        if (i >= m->nschema)
            return sh_err_set(err, SH_EDATA, NULL,
                              "file %s: the schema is malformed", f->name);
        e = &m->schema[i];
        c->name = xstrndup(e->name, e->name_len);
        f->ncols++;
        c->physical = e->num_children > 0 ? -1 : e->type;
        c->type_length = e->type_length;
        c->converted = e->converted;
        c->logical = logical_of(e);
        c->optional = e->repetition != PQ_R_REQUIRED;
        c->leaf = first_leaf;
        if (walk_subtree(m, &i, &leaves, 1) < 0)
            return sh_err_set(err, SH_EDATA, NULL,
                              "file %s: the schema is malformed", f->name);
        if (e->num_children > 0 || e->repetition == PQ_R_REPEATED)
            c->why_unsupported = "a nested column";
        else
            map_type(c);
    }
    if (i != m->nschema)
        return sh_err_set(err, SH_EDATA, NULL,
                          "file %s: the schema is malformed", f->name);
    f->nleaves = leaves;
    for (g = 0; g < m->nrgs; g++) {
        const pq_row_group *rg = &m->rgs[g];

        if (rg->ncols != leaves || rg->num_rows < 0)
            return sh_err_set(err, SH_EDATA, NULL,
                              "file %s, row group %u: %u column chunks for "
                              "%u columns",
                              f->name, g, rg->ncols, leaves);
        for (l = 0; l < leaves; l++) {
            const pq_chunk *ch = &rg->cols[l];

            if (!ch->has_meta || ch->has_file_path)
                return sh_err_set(err, SH_EDATA, NULL,
                                  "file %s, row group %u: column chunk %u "
                                  "has no metadata in this file",
                                  f->name, g, l);
        }
    }
    /* a column's chunks must agree with its schema and be decodable */
    for (i = 0; i < f->ncols; i++) {
        pq_col *c = &f->cols[i];

        if (c->why_unsupported != NULL)
            continue;
        for (g = 0; g < m->nrgs; g++) {
            const pq_col_meta *cm = &m->rgs[g].cols[c->leaf].meta;

            if (cm->type != c->physical)
                return sh_err_set(err, SH_EDATA, NULL,
                                  "file %s, row group %u, column '%s': the "
                                  "chunk's type disagrees with the schema",
                                  f->name, g, c->name);
            if (cm->codec != PQ_C_UNCOMPRESSED && cm->codec != PQ_C_SNAPPY
                && cm->codec != PQ_C_GZIP && cm->codec != PQ_C_ZSTD) {
                c->why_unsupported = "compressed with a codec sheaf does not "
                                     "read (lzo, brotli or lz4)";
                break;
            }
            if (cm->encodings & ~PQ_ENCODINGS_OK) {
                c->why_unsupported = "in an encoding sheaf does not read";
                break;
            }
        }
    }
    return 0;
}

/* See parquet.h. */
pq_file *
pq_open(int fd, const char *name, sh_err *err)
{
    pq_file    *f = xcalloc(1, sizeof(*f));
    struct stat st;
    uint8_t     tail[8], head[4];
    uint32_t    flen;
    int         rc;

    f->fd = fd;
    f->name = xstrdup(name);
    if (fstat(fd, &st) < 0) {
        sh_err_set(err, SH_EIO, NULL, "file %s: fstat: %s", name,
                   strerror(errno));
        goto fail;
    }
    f->size = st.st_size;
    if (f->size < 12) {
        sh_err_set(err, SH_EDATA, NULL,
                   "file %s: not a Parquet file (%lld bytes)", name,
                   (long long)f->size);
        goto fail;
    }
    if ((rc = pread_all(fd, head, 4, 0)) < 0
        || (rc = pread_all(fd, tail, 8, f->size - 8)) < 0) {
        sh_err_set(err, rc == -1 ? SH_EIO : SH_EDATA, NULL, "file %s: read: %s",
                   name, rc == -1 ? strerror(errno) : "file shrank");
        goto fail;
    }
    if (memcmp(tail + 4, "PARE", 4) == 0) {
        sh_err_set(err, SH_EDATA, NULL, "file %s: an encrypted Parquet file",
                   name);
        goto fail;
    }
    if (memcmp(head, "PAR1", 4) != 0 || memcmp(tail + 4, "PAR1", 4) != 0) {
        sh_err_set(err, SH_EDATA, NULL,
                   "file %s: not a Parquet file (no PAR1 magic at %s)", name,
                   memcmp(head, "PAR1", 4) ? "its start" : "its end");
        goto fail;
    }
    flen = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16
           | (uint32_t)tail[3] << 24;
    if (flen == 0 || (int64_t)flen > f->size - 12 || flen > PQ_MAX_FOOTER) {
        sh_err_set(err, SH_EDATA, NULL,
                   "file %s: truncated or corrupt (footer of %u bytes in "
                   "a file of %lld)",
                   name, flen, (long long)f->size);
        goto fail;
    }
    f->data_end = f->size - 8 - flen;
    f->footer = xmalloc(flen);
    if ((rc = pread_all(fd, f->footer, flen, f->data_end)) < 0) {
        sh_err_set(err, rc == -1 ? SH_EIO : SH_EDATA, NULL, "file %s: read: %s",
                   name, rc == -1 ? strerror(errno) : "file shrank");
        goto fail;
    }
    if (thr_decode_file_meta(f->footer, flen, &f->meta, err) < 0) {
        char msg[SH_ERR_MSG_MAX];

        snprintf(msg, sizeof(msg), "%s", err->msg);
        sh_err_set(err, SH_EDATA, NULL, "file %s: %s", name, msg);
        goto fail;
    }
    if (build_columns(f, err) < 0)
        goto fail;
    return f;
fail:
    pq_close(f);
    return NULL;
}

/* See parquet.h. */
void
pq_close(pq_file *f)
{
    size_t i;

    if (f == NULL)
        return;
    for (i = 0; i < f->ncols; i++)
        free(f->cols[i].name);
    free(f->cols);
    thr_file_meta_free(&f->meta);
    free(f->footer);
    free(f->name);
    free(f);
}

/* See parquet.h. */
int64_t
pq_num_rows(const pq_file *f)
{
    return f->meta.num_rows;
}

/* See parquet.h. */
size_t
pq_num_cols(const pq_file *f)
{
    return f->ncols;
}

/* See parquet.h. */
const pq_col *
pq_col_at(const pq_file *f, size_t i)
{
    return i < f->ncols ? &f->cols[i] : NULL;
}

/* See parquet.h. */
size_t
pq_num_row_groups(const pq_file *f)
{
    return f->meta.nrgs;
}

/* See parquet.h. */
int64_t
pq_rg_rows(const pq_file *f, size_t rg)
{
    return rg < f->meta.nrgs ? f->meta.rgs[rg].num_rows : 0;
}

/* See parquet_int.h. */
int
pq_chunk_range(const pq_file *f, size_t rg, uint32_t leaf, int64_t *start,
               int64_t *end)
{
    const pq_col_meta *m = &f->meta.rgs[rg].cols[leaf].meta;
    int64_t            s = m->data_page_offset;

    if (m->dictionary_page_offset > 0 && m->dictionary_page_offset < s)
        s = m->dictionary_page_offset;
    *start = s;
    *end = s + m->total_compressed_size;
    if (s < 4 || m->total_compressed_size < 0
        || m->total_compressed_size > f->data_end || *end > f->data_end)
        return SH_EDATA;
    return 0;
}

/* See parquet.h. */
void
pq_rg_range(const pq_file *f, size_t rg, int64_t *start, int64_t *end)
{
    int64_t  lo = INT64_MAX, hi = 0, s, e;
    uint32_t l;

    for (l = 0; rg < f->meta.nrgs && l < f->nleaves; l++) {
        if (pq_chunk_range(f, rg, l, &s, &e) < 0)
            continue;
        if (s < lo)
            lo = s;
        if (e > hi)
            hi = e;
    }
    *start = lo == INT64_MAX ? 0 : lo;
    *end = hi;
}

/* A plain-encoded statistic as a value of column 'c': 0, or -1. */
static int
stat_value(const pq_col *c, const uint8_t *p, uint32_t n, sh_value *out)
{
    int32_t i32;
    int64_t i64;
    float   fl;
    double  d;

    switch (c->physical) {
    case PQ_T_BOOLEAN:
        if (n < 1)
            return -1;
        *out = sh_bool(p[0] & 1);
        return 0;
    case PQ_T_INT32:
        if (n != 4)
            return -1;
        memcpy(&i32, p, 4);
        if (c->logical.kind == PQ_LT_DECIMAL)
            *out = sh_float(i32 / pq_pow10(c->logical.scale));
        else if (c->logical.kind == PQ_LT_INTEGER && !c->logical.is_signed)
            *out = sh_int((uint32_t)i32);
        else if (c->type == SH_DATE)
            *out = sh_date(i32);
        else
            *out = sh_int(i32);
        return 0;
    case PQ_T_INT64:
        if (n != 8)
            return -1;
        memcpy(&i64, p, 8);
        if (c->logical.kind == PQ_LT_DECIMAL)
            *out = sh_float((double)i64 / pq_pow10(c->logical.scale));
        else if (c->logical.kind == PQ_LT_INTEGER && !c->logical.is_signed)
            return -1; /* unsigned order differs from int64's */
        else if (c->type == SH_TIMESTAMP)
            *out = pq_ts_value(i64, c->logical.unit);
        else
            *out = sh_int(i64);
        return out->type == SH_NULL ? -1 : 0;
    case PQ_T_FLOAT:
        if (n != 4)
            return -1;
        memcpy(&fl, p, 4);
        *out = sh_float(fl);
        return fl != fl ? -1 : 0;
    case PQ_T_DOUBLE:
        if (n != 8)
            return -1;
        memcpy(&d, p, 8);
        *out = sh_float(d);
        return d != d ? -1 : 0;
    case PQ_T_BYTE_ARRAY:
    case PQ_T_FIXED_LEN_BYTE_ARRAY:
        if (c->logical.kind == PQ_LT_DECIMAL) {
            if (n < 1 || n > 16)
                return -1;
            *out = sh_float(pq_be_to_double(p, n) / pq_pow10(c->logical.scale));
            return 0;
        }
        *out = sh_str((const char *)p, n);
        return 0;
    default:
        return -1;
    }
}

/* See parquet.h. */
void
pq_rg_minmax(const pq_file *f, size_t rg, size_t col, pq_minmax *out)
{
    const pq_col   *c;
    const pq_stats *s;

    memset(out, 0, sizeof(*out));
    if (rg >= f->meta.nrgs || col >= f->ncols)
        return;
    c = &f->cols[col];
    if (c->why_unsupported != NULL || c->type == SH_NULL)
        return;
    s = &f->meta.rgs[rg].cols[c->leaf].meta.stats;
    out->has_nulls = s->has_null_count;
    out->null_count = s->null_count;
    if (!s->has_min || !s->has_max)
        return;
    /* the deprecated min/max of byte arrays used a signed byte order */
    if (s->legacy
        && (c->physical == PQ_T_BYTE_ARRAY
            || c->physical == PQ_T_FIXED_LEN_BYTE_ARRAY
            || c->logical.kind == PQ_LT_INTEGER))
        return;
    if (stat_value(c, s->min, s->min_len, &out->min) < 0
        || stat_value(c, s->max, s->max_len, &out->max) < 0)
        return;
    out->has_minmax = 1;
}

/* See parquet.h. */
int
pq_check_columns(const pq_file *f, const unsigned char *need, sh_err *err)
{
    size_t i;

    for (i = 0; i < f->ncols; i++) {
        const pq_col *c = &f->cols[i];

        if (need != NULL && !need[i])
            continue;
        if (c->why_unsupported != NULL)
            return sh_err_set(err, SH_EINVAL, NULL,
                              "file %s, column '%s': sheaf cannot read it "
                              "(%s)",
                              f->name, c->name, c->why_unsupported);
    }
    return 0;
}

/* See parquet.h. */
int
pq_rg_may_match(const pq_file *f, size_t rg, size_t col, pq_cmp op,
                const sh_value *v)
{
    pq_minmax mm;
    int64_t   rows;
    int       lo, hi, numeric;

    if (rg >= f->meta.nrgs || col >= f->ncols)
        return 1;
    rows = f->meta.rgs[rg].num_rows;
    if (rows == 0)
        return 0;
    pq_rg_minmax(f, rg, col, &mm);
    if (op == PQ_CMP_IS_NULL)
        return !(mm.has_nulls && mm.null_count == 0);
    if (op == PQ_CMP_NOT_NULL)
        return !(mm.has_nulls && mm.null_count >= rows);
    if (v->type == SH_NULL)
        return 0; /* a comparison with null is false */
    if (mm.has_nulls && mm.null_count >= rows)
        return 0; /* every value is null */
    if (!mm.has_minmax)
        return 1;
    numeric = (v->type == SH_INT || v->type == SH_FLOAT)
              && (mm.min.type == SH_INT || mm.min.type == SH_FLOAT);
    if (!numeric && v->type != mm.min.type)
        return 1;
    if (v->type == SH_FLOAT && v->u.f != v->u.f)
        return 1;
    if (mm.min.type == SH_FLOAT
        && (op == PQ_CMP_NE || op == PQ_CMP_GT || op == PQ_CMP_GE))
        return 1;
    lo = value_cmp(&mm.min, v); /* min ? v */
    hi = value_cmp(&mm.max, v); /* max ? v */
    switch (op) {
    case PQ_CMP_EQ:
        return lo <= 0 && hi >= 0;
    case PQ_CMP_NE:
        return !(lo == 0 && hi == 0);
    case PQ_CMP_LT:
        return lo < 0;
    case PQ_CMP_LE:
        return lo <= 0;
    case PQ_CMP_GT:
        return hi > 0;
    case PQ_CMP_GE:
        return hi >= 0;
    default:
        return 1;
    }
}

/* See parquet.h. */
size_t
pq_partition(const pq_file *f, const size_t *rgs, size_t nrg,
             int64_t target_bytes, size_t **starts)
{
    size_t *st = xmalloc((nrg ? nrg : 1) * sizeof(*st)), n = 0, i;
    int64_t acc = 0, s, e;

    for (i = 0; i < nrg; i++) {
        pq_rg_range(f, rgs[i], &s, &e);
        if (n == 0 || acc + (e - s) > target_bytes) {
            st[n++] = i;
            acc = 0;
        }
        acc += e - s;
    }
    *starts = st;
    return n;
}
