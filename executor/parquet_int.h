/*
 * parquet_int.h - the private parts shared by the Parquet reader's files:
 * the open file (parquet_meta.c), the value decoders and codecs
 * (parquet_page.c) that the row reader (parquet_read.c: row groups and
 * batches; parquet_col.c: a column chunk's pages) drives, and the codecs
 * the writer (parquet_write.c) also uses. Nothing outside the
 * Parquet code includes it.
 */
#ifndef SHEAF_PARQUET_INT_H
#define SHEAF_PARQUET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "parquet.h"
#include "thrift.h"

struct pq_file {
    int          fd;     /* borrowed */
    char        *name;   /* owned */
    int64_t      size;   /* bytes of the file */
    uint8_t     *footer; /* owned: the metadata's bytes */
    pq_file_meta meta;   /* borrows from 'footer' */
    pq_col      *cols;   /* owned, 'ncols' */
    size_t       ncols;
    uint32_t     nleaves;  /* column chunks per row group */
    int64_t      data_end; /* where the footer starts */
};

/* The byte range of column chunk 'leaf' of row group 'rg': 0, or SH_EDATA
 * when it lies outside the file's data. */
int pq_chunk_range(const pq_file *f, size_t rg, uint32_t leaf, int64_t *start,
                   int64_t *end);

/* 10^k as a double, k in 0..38. */
double pq_pow10(int k);

/* A big-endian two's complement integer of 'n' bytes (1..16) as a double. */
double pq_be_to_double(const uint8_t *p, size_t n);

/*
 * A TIMESTAMP of unit 'unit' (PQ_UNIT_*) as a sheaf timestamp
 * (microseconds since the epoch, UTC; nanoseconds are cut toward zero,
 * as DuckDB does), or null when it does not fit (milliseconds beyond
 * about 292,000 years).
 */
static inline sh_value
pq_ts_value(int64_t v, int unit)
{
    int64_t us;

    switch (unit) {
    case PQ_UNIT_MILLIS:
        if (__builtin_mul_overflow(v, 1000, &us))
            return sh_null();
        return sh_timestamp(us);
    case PQ_UNIT_NANOS:
        return sh_timestamp(v / 1000);
    default:
        return sh_timestamp(v);
    }
}

/*
 * An INT96 timestamp (nanoseconds of the day 'nanos', Julian day 'jd') as
 * a sheaf timestamp (the nanoseconds cut), or null when it does not fit.
 */
static inline sh_value
pq_int96_value(int64_t nanos, uint32_t jd)
{
    int64_t us;

    if (__builtin_mul_overflow((int64_t)jd - 2440588, INT64_C(86400000000), &us)
        || __builtin_add_overflow(us, nanos / 1000, &us))
        return sh_null();
    return sh_timestamp(us);
}

/* ---- RLE / bit-packed hybrid ------------------------------------------- */

typedef struct pq_rle {
    const uint8_t *p, *end;  /* the runs not yet started */
    int            bw;       /* bit width, 0..32 */
    uint32_t       rle_left; /* values left in the current RLE run */
    uint32_t       rle_val;
    uint32_t       bp_left; /* values left in the current bit-packed run */
    const uint8_t *bp;      /* its bytes */
    const uint8_t *bp_end;
    uint64_t       bp_bit; /* bit offset of the next value in 'bp' */
} pq_rle;

void pq_rle_init(pq_rle *d, const uint8_t *p, const uint8_t *end, int bw);

/* Decode 'n' values into 'out'. Returns 0, or -1 when the runs end early
 * or are malformed. */
int pq_rle_get(pq_rle *d, uint32_t *out, size_t n);

/* ---- DELTA_BINARY_PACKED ------------------------------------------------ */

#define PQ_DBP_MAX_MINI 4096 /* values a miniblock may hold at most */

typedef struct pq_dbp {
    const uint8_t *p, *end;
    uint64_t       block_size, mini_count, mini_size;
    uint64_t       left;  /* values not yet returned */
    int            first; /* the first value is still to return */
    uint64_t       last;  /* the previous value (wrapping arithmetic) */
    uint64_t       min_delta;
    uint8_t        widths[256];
    uint32_t       mini_idx; /* next miniblock of the block */
    uint32_t       buf_pos, buf_len;
    int64_t       *buf; /* the decoded miniblock (owned) */
} pq_dbp;

/* Start decoding the stream at 'p'. Returns 0, or -1 when its header is
 * malformed. Free with pq_dbp_free. */
int pq_dbp_init(pq_dbp *d, const uint8_t *p, const uint8_t *end);
/* Values in the stream (its header's total). */
uint64_t pq_dbp_total(const pq_dbp *d);
/* Decode 'n' values. Returns 0, or -1 (malformed, too few). */
int pq_dbp_get(pq_dbp *d, int64_t *out, size_t n);
/* Where the stream ends (walking its blocks without decoding), or NULL
 * when it is malformed. 'd' must be freshly initialised. */
const uint8_t *pq_dbp_end(const pq_dbp *d);
void           pq_dbp_free(pq_dbp *d);

/* ---- codecs ------------------------------------------------------------- */

typedef struct pq_codecs pq_codecs;

pq_codecs *pq_codecs_new(void);
void       pq_codecs_free(pq_codecs *c);

/* Decompress 'n' bytes at 'src' with 'codec' (PQ_C_*) into exactly 'dn'
 * bytes at 'dst'. Returns 0, or -1 with a static reason in *why. */
int pq_decompress(pq_codecs *c, int codec, const uint8_t *src, size_t n,
                  uint8_t *dst, size_t dn, const char **why);

/* Append the compression of 'n' bytes at 'src' to 'out'. Returns 0 or -1
 * (an unknown codec). 'level' 0 is the codec's default. */
int pq_compress(pq_codecs *c, int codec, const uint8_t *src, size_t n,
                strbuf *out);

/* "snappy", "gzip", ... for messages. */
const char *pq_codec_name(int codec);

/* ---- the row reader (parquet_read.c, parquet_col.c) --------------------- */

#define PQ_BATCH 1024
/* Pages larger than this once decompressed are refused: a corrupt header
 * cannot make a huge allocation. */
#define PQ_MAX_PAGE_BYTES (1u << 30)

/* How a column's raw values become sheaf values (pq_col_kind). */
enum {
    K_BOOL,
    K_INT32,
    K_UINT32,
    K_INT64,
    K_DEC32,
    K_DEC64,
    K_FLOAT,
    K_DOUBLE,
    K_STRING,
    K_DECBYTES,
    K_INT96,
    K_DATE,
    K_TS
};

/* The reading of one needed column: its chunk, its current page. */
typedef struct colrd {
    size_t        col; /* index in the file's columns */
    const pq_col *c;
    int           kind;  /* K_* */
    int           unit;  /* K_TS: PQ_UNIT_* */
    double        scale; /* 10^scale for decimals */
    int           width; /* bytes of a fixed-width plain value */
    /* the column chunk */
    int64_t   pos, end; /* its bytes not yet read */
    int       codec;
    int64_t   values_left;
    sh_value *dict; /* owned, 'ndict' */
    uint32_t  ndict;
    uint8_t  *dict_buf; /* owned: the dictionary page's bytes */
    /* the page */
    uint8_t       *page; /* the decompressed page (held by the batch) */
    size_t         page_cap;
    int32_t        page_left; /* values (rows) left in the page */
    int            enc;       /* the values' encoding */
    int            has_def;
    pq_rle         def;
    const uint8_t *vp, *vend; /* the values section not yet decoded */
    pq_rle         idx;       /* dictionary indices, RLE booleans */
    pq_dbp         dbp;       /* DBP values; DLBA/DBA (suffix) lengths */
    pq_dbp         dbp2;      /* DBA prefix lengths */
    int            dbp_live, dbp2_live;
    strbuf         prev;         /* DBA: the previous value */
    uint32_t       bool_bit;     /* PLAIN booleans: next bit */
    uint64_t       bss_n, bss_i; /* BYTE_STREAM_SPLIT: count, next */
} colrd;

/* The row reader (parquet.h): row groups and batches are
 * parquet_read.c's, the column chunks parquet_col.c's. */
struct pq_reader {
    pq_file   *f;
    size_t     ncols;
    colrd     *crs; /* the needed columns, 'ncr' */
    size_t     ncr;
    size_t    *rgs; /* owned copy */
    size_t     nrg, rg_next;
    size_t     rg;      /* the row group being read */
    int64_t    rg_left; /* its rows not yet in a batch */
    sh_value  *rows;    /* PQ_BATCH * ncols, row-major */
    size_t     bpos, bcount;
    uint8_t  **held;     /* page buffers the batch holds */
    size_t    *held_cap; /* their sizes */
    size_t     nheld, capheld;
    uint8_t  **spare; /* free page buffers */
    size_t    *spare_cap;
    size_t     nspare, capspare;
    strbuf     cbuf; /* compressed page scratch */
    strbuf     hbuf; /* page header scratch */
    arena     *ar;   /* DBA strings of the batch */
    pq_codecs *codecs;
    uint32_t   levels[PQ_BATCH];
    uint32_t   u32[PQ_BATCH];
    int64_t    i64[PQ_BATCH];
    int64_t    i64b[PQ_BATCH];
    sh_value   tmp[PQ_BATCH];
    uint64_t   nrows, nbytes;
    char      *context; /* owned: pq_reader_context's text */
};

/*
 * Set 'err' to 'code' (SH_EDATA, SH_EIO, SH_EINVAL) with a message naming
 * the file, the row group being read and the column. Returns 'code'.
 */
int pq_col_err(pq_reader *r, const colrd *cr, int code, sh_err *err,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The K_* of column 'c'; sets *scale (10^scale of a decimal, else 1) and
 * *width (bytes of a fixed-width plain value, 0 for byte arrays). */
int pq_col_kind(const pq_col *c, double *scale, int *width);

/*
 * Fill column cr's slot of rows [0, k) of the batch (r->rows), reading
 * and decoding the chunk's pages as needed (page buffers held by the
 * batch). Returns 0 or an error from pq_col_err.
 */
int pq_col_fill(pq_reader *r, colrd *cr, size_t k, sh_err *err);

/* Start a batch: the page buffers the last batch held, but for the pages
 * still being read, become spares. */
void pq_buf_release(pq_reader *r);

#endif
