/*
 * thrift.h - the Thrift compact protocol, just as much as Parquet needs: the
 * footer (FileMetaData with its SchemaElements, RowGroups, ColumnChunks,
 * ColumnMetaData, Statistics and LogicalTypes) and page headers, decoded
 * into the plain structs below and encoded back from them.
 *
 * Decoding is bounds-checked on every read and nesting is bounded
 * (THR_MAX_DEPTH): a corrupt or truncated footer is an SH_EDATA error,
 * never a read past the buffer. Byte strings in decoded structs (names,
 * statistics) are borrowed from the decoded buffer, which must outlive
 * them. Fields Parquet defines but sheaf does not use are skipped.
 */
#ifndef SHEAF_THRIFT_H
#define SHEAF_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../lib/util.h"

#define THR_MAX_DEPTH 32

/* Parquet's physical types (parquet.thrift Type). */
enum {
    PQ_T_BOOLEAN = 0,
    PQ_T_INT32,
    PQ_T_INT64,
    PQ_T_INT96,
    PQ_T_FLOAT,
    PQ_T_DOUBLE,
    PQ_T_BYTE_ARRAY,
    PQ_T_FIXED_LEN_BYTE_ARRAY
};

/* Encodings (Encoding). */
enum {
    PQ_E_PLAIN = 0,
    PQ_E_PLAIN_DICTIONARY = 2,
    PQ_E_RLE = 3,
    PQ_E_BIT_PACKED = 4,
    PQ_E_DELTA_BINARY_PACKED = 5,
    PQ_E_DELTA_LENGTH_BYTE_ARRAY = 6,
    PQ_E_DELTA_BYTE_ARRAY = 7,
    PQ_E_RLE_DICTIONARY = 8,
    PQ_E_BYTE_STREAM_SPLIT = 9
};

/* Compression codecs (CompressionCodec). */
enum {
    PQ_C_UNCOMPRESSED = 0,
    PQ_C_SNAPPY = 1,
    PQ_C_GZIP = 2,
    PQ_C_LZO = 3,
    PQ_C_BROTLI = 4,
    PQ_C_LZ4 = 5,
    PQ_C_ZSTD = 6,
    PQ_C_LZ4_RAW = 7
};

/* Page types (PageType). */
enum { PQ_P_DATA = 0, PQ_P_INDEX = 1, PQ_P_DICTIONARY = 2, PQ_P_DATA_V2 = 3 };

/* Repetition (FieldRepetitionType). */
enum { PQ_R_REQUIRED = 0, PQ_R_OPTIONAL = 1, PQ_R_REPEATED = 2 };

/* Converted types (ConvertedType), those sheaf looks at. */
enum {
    PQ_CT_UTF8 = 0,
    PQ_CT_MAP = 1,
    PQ_CT_MAP_KEY_VALUE = 2,
    PQ_CT_LIST = 3,
    PQ_CT_ENUM = 4,
    PQ_CT_DECIMAL = 5,
    PQ_CT_DATE = 6,
    PQ_CT_TIME_MILLIS = 7,
    PQ_CT_TIME_MICROS = 8,
    PQ_CT_TIMESTAMP_MILLIS = 9,
    PQ_CT_TIMESTAMP_MICROS = 10,
    PQ_CT_UINT_8 = 11,
    PQ_CT_UINT_16 = 12,
    PQ_CT_UINT_32 = 13,
    PQ_CT_UINT_64 = 14,
    PQ_CT_INT_8 = 15,
    PQ_CT_INT_16 = 16,
    PQ_CT_INT_32 = 17,
    PQ_CT_INT_64 = 18,
    PQ_CT_JSON = 19,
    PQ_CT_BSON = 20,
    PQ_CT_INTERVAL = 21
};

/* Logical types: the member of the LogicalType union that is set (its
 * Thrift field id), or PQ_LT_NONE. */
enum {
    PQ_LT_NONE = 0,
    PQ_LT_STRING = 1,
    PQ_LT_MAP = 2,
    PQ_LT_LIST = 3,
    PQ_LT_ENUM = 4,
    PQ_LT_DECIMAL = 5,
    PQ_LT_DATE = 6,
    PQ_LT_TIME = 7,
    PQ_LT_TIMESTAMP = 8,
    PQ_LT_INTEGER = 10,
    PQ_LT_UNKNOWN = 11,
    PQ_LT_JSON = 12,
    PQ_LT_BSON = 13,
    PQ_LT_UUID = 14,
    PQ_LT_FLOAT16 = 15,
    PQ_LT_OTHER = 99
};

/* Time units of TIME and TIMESTAMP. */
enum {
    PQ_UNIT_NONE = 0,
    PQ_UNIT_MILLIS = 1,
    PQ_UNIT_MICROS = 2,
    PQ_UNIT_NANOS = 3
};

typedef struct pq_logical {
    int kind;      /* PQ_LT_* */
    int unit;      /* PQ_UNIT_* for TIME and TIMESTAMP */
    int utc;       /* isAdjustedToUTC for TIME and TIMESTAMP */
    int scale;     /* DECIMAL */
    int precision; /* DECIMAL */
    int bit_width; /* INTEGER: 8, 16, 32, 64 */
    int is_signed; /* INTEGER */
} pq_logical;

/* Statistics: min and max as plain-encoded bytes (borrowed). 'legacy' is
 * set when they came from the deprecated min/max fields (whose order for
 * byte arrays is unreliable) rather than min_value/max_value. */
typedef struct pq_stats {
    const uint8_t *min, *max;
    uint32_t       min_len, max_len;
    int            has_min, has_max, legacy;
    int64_t        null_count;
    int            has_null_count;
} pq_stats;

typedef struct pq_schema_elem {
    int         type;        /* PQ_T_*, or -1 for a group */
    int32_t     type_length; /* FIXED_LEN_BYTE_ARRAY width */
    int         repetition;  /* PQ_R_*, -1 when absent (the root) */
    const char *name;        /* borrowed, not NUL-terminated */
    uint32_t    name_len;
    int32_t     num_children; /* 0 for a leaf */
    int         converted;    /* PQ_CT_*, or -1 */
    int32_t     scale, precision;
    pq_logical  logical;
} pq_schema_elem;

typedef struct pq_col_meta {
    int      type;      /* PQ_T_* */
    uint32_t encodings; /* bit (1 << PQ_E_*) for each listed */
    uint32_t path_len;  /* elements of path_in_schema */
    int      codec;     /* PQ_C_* */
    int64_t  num_values;
    int64_t  total_uncompressed_size;
    int64_t  total_compressed_size;
    int64_t  data_page_offset;
    int64_t  dictionary_page_offset; /* -1 when absent */
    pq_stats stats;
} pq_col_meta;

typedef struct pq_chunk {
    int64_t     file_offset;
    int         has_file_path; /* data in another file: unsupported */
    int         has_meta;
    pq_col_meta meta;
} pq_chunk;

typedef struct pq_row_group {
    pq_chunk *cols; /* owned */
    uint32_t  ncols;
    int64_t   total_byte_size;
    int64_t   num_rows;
} pq_row_group;

typedef struct pq_file_meta {
    int32_t         version;
    pq_schema_elem *schema; /* owned; schema[0] is the root */
    uint32_t        nschema;
    int64_t         num_rows;
    pq_row_group   *rgs; /* owned */
    uint32_t        nrgs;
    const char     *created_by; /* borrowed, or NULL */
    uint32_t        created_by_len;
    int             column_orders; /* writer: emit TypeDefinedOrder each */
} pq_file_meta;

typedef struct pq_page_header {
    int      type; /* PQ_P_* */
    int32_t  uncompressed_size;
    int32_t  compressed_size;
    int32_t  num_values;    /* data, v2 and dictionary pages */
    int      encoding;      /* of the values */
    int      def_encoding;  /* v1 data pages */
    int      rep_encoding;  /* v1 data pages */
    int32_t  num_nulls;     /* v2 */
    int32_t  num_rows;      /* v2 */
    int32_t  def_len;       /* v2: definition levels' bytes */
    int32_t  rep_len;       /* v2: repetition levels' bytes */
    int      is_compressed; /* v2 (default 1) */
    int      has_stats;     /* writer: emit 'stats' in the header */
    pq_stats stats;
} pq_page_header;

/*
 * Decode a FileMetaData from 'n' bytes at 'p' into 'out' (which owns the
 * arrays it allocates, and borrows strings from 'p'). Returns 0, or
 * SH_EDATA with a message in 'err' when the bytes are not a well-formed
 * FileMetaData. Free with thr_file_meta_free (also after a failure).
 */
int thr_decode_file_meta(const uint8_t *p, size_t n, pq_file_meta *out,
                         sh_err *err);

void thr_file_meta_free(pq_file_meta *m);

/*
 * Decode a PageHeader from at most 'n' bytes at 'p'; *used gets its size.
 * Returns 0, 1 when the bytes end before the header does (read more and
 * call again), or SH_EDATA (message in 'err') when it is malformed.
 */
int thr_decode_page_header(const uint8_t *p, size_t n, pq_page_header *out,
                           size_t *used, sh_err *err);

/* Append the compact encoding of 'h' / 'm' to 'sb'. */
void thr_encode_page_header(strbuf *sb, const pq_page_header *h);
void thr_encode_file_meta(strbuf *sb, const pq_file_meta *m);

#endif
