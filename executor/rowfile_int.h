/*
 * rowfile_int.h - the row file format, shared by the writer (rowfile.c)
 * and the reader (rowfile_read.c): its constants and value tags, the
 * chunks of a sectioned file, and the little-endian, varint and zigzag
 * codecs. Nothing outside those two files includes it.
 *
 * Layout (all integers little-endian):
 *
 *   header   "SHRF", version (1 byte), n_cols (4 bytes)
 *   rows     n_cols values each, one after the other; a value is a tag
 *            byte, then its payload:
 *              0x00        null
 *              0x01 0x02   false, true
 *              0x03        int: zigzag LEB128 varint (1 to 10 bytes)
 *              0x04        float: the 8 bytes of the IEEE double
 *              0x05        string: LEB128 length, then the bytes
 *              0x06 0x07   date, timestamp: zigzag LEB128 varint of
 *                          days, of microseconds
 *              0x40-0x7f   int 0..63, no payload
 *              0x80-0xff   string of 0..127 bytes, then the bytes
 *            a row of zero columns is the single byte 0x3e
 *   trailer  0x3f, then the number of rows (8 bytes); nothing after it
 *
 * Strings are bytes of any value (NUL included): partial aggregate states
 * travel as strings. The trailer lets a reader tell a complete file from
 * one cut short at a row boundary; a tag that is not listed, a varint too
 * long, a length beyond the end of the file or bytes after the trailer are
 * reported as a corrupt file (SH_EDATA, naming the path).
 *
 * A sectioned file (version 2) holds several streams of rows in one file,
 * so a task that hashes its rows into 16 buckets makes one file, fsynced
 * once, not 16 (one fsync of a small file costs a journal commit: 16 of
 * them took 30-55 ms per task here, one 2-9 ms). Each section is written
 * through its own buffer; whenever a buffer is written out, its bytes go
 * at the end of the file as a chunk of that section's stream. A
 * section's stream is a row file's body: its rows, then its trailer.
 *
 *   header   "SHRF", 2, n_cols (4 bytes)
 *   chunks   byte runs of the sections' streams, in the order written
 *   index    per chunk: section (4 bytes), offset (8), length (8)
 *   footer   offset of the index (8), chunks (8), sections (4), "SHRX"
 */
#ifndef SHEAF_ROWFILE_INT_H
#define SHEAF_ROWFILE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rowfile.h"

#define RF_MAGIC        "SHRF"
#define RF_VERSION      1
#define RF_VERSION_SECT 2 /* a sectioned file */
#define RF_FOOTER_MAGIC "SHRX"
#define RF_FOOTER_BYTES 24 /* index offset, chunks, sections, magic */
#define RF_INDEX_ENTRY  20 /* section, offset, length */
#define RF_HEADER_BYTES 9
#define RF_BUF_BYTES    ROWFILE_BUF_BYTES
#define RF_MIN_BUF      4096u
#define RF_WRITE_START  (64u << 10) /* first size of a writer's buffer */
/* The most bytes a value takes besides a string's bytes: tag + varint. */
#define RF_MAX_VALUE 11

enum {
    TAG_NULL = 0x00,
    TAG_FALSE = 0x01,
    TAG_TRUE = 0x02,
    TAG_INT = 0x03,
    TAG_FLOAT = 0x04,
    TAG_STR = 0x05,
    TAG_DATE = 0x06,      /* zigzag varint days */
    TAG_TS = 0x07,        /* zigzag varint microseconds */
    TAG_ROW = 0x3e,       /* a row of zero columns */
    TAG_END = 0x3f,       /* the trailer */
    TAG_SMALL_INT = 0x40, /* 0x40 + v for an int v in 0..63 */
    TAG_SHORT_STR = 0x80  /* 0x80 + n for a string of n < 128 bytes */
};

/* A byte run of one section's stream in a sectioned file. */
typedef struct rf_chunk {
    uint32_t section;
    uint64_t off;
    uint64_t len;
} rf_chunk;

static inline unsigned char *
put_le64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
    return p + 8;
}

static inline uint64_t
get_le64(const unsigned char *p)
{
    uint64_t x = 0;

    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static inline unsigned char *
put_varint(unsigned char *p, uint64_t x)
{
    while (x >= 0x80) {
        *p++ = (unsigned char)(x | 0x80);
        x >>= 7;
    }
    *p++ = (unsigned char)x;
    return p;
}

/*
 * Decode a varint at 'p' (not past 'end') into *out. Returns the byte after
 * it, NULL when the bytes end first (*bad = 0) or the varint is longer than
 * 64 bits (*bad = 1).
 */
static inline const unsigned char *
get_varint(const unsigned char *p, const unsigned char *end, uint64_t *out,
           int *bad)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end) {
            *bad = 0;
            return NULL;
        }
        unsigned char c = *p++;

        if (shift == 63 && c > 1) {
            *bad = 1;
            return NULL;
        }
        x |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = x;
            return p;
        }
    }
    *bad = 1;
    return NULL;
}

static inline uint64_t
zigzag(int64_t i)
{
    return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
}

static inline int64_t
unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

#endif
