/*
 * util.h - allocation that never fails, growable byte buffers and arenas,
 * the monotonic clock, a file's size, and the text checks several layers
 * share (UTF-8, UUIDs). Reading a whole file and mkdir -p are fsys.h's
 * (through its table of system calls).
 *
 * Allocation failure aborts the process in one place (xmalloc and friends),
 * so the rest of the code has no untestable NULL branches. Every module of
 * sheaf allocates through these functions; jansson is given them too.
 */
#ifndef SHEAF_UTIL_H
#define SHEAF_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* malloc/calloc/realloc/strdup that abort with a message on exhaustion. */
void *xmalloc(size_t size_bytes);
void *xcalloc(size_t n, size_t size_bytes);
void *xrealloc(void *ptr, size_t size_bytes);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/*
 * Call 'fn' with the size asked for when an allocation of x* fails, before
 * the process aborts; fn may end the process itself (a worker fails its
 * task first). NULL: none. One per process, set at its start.
 */
void util_set_oom_handler(void (*fn)(size_t size_bytes));
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A growable byte buffer. 'data' is always NUL-terminated after any append
 * (when non-NULL), so it can be used as a C string. Zero-initialise to start;
 * sb_free releases the memory.
 */
typedef struct strbuf {
    char  *data; /* the bytes, NUL-terminated; NULL until the first append */
    size_t len;  /* bytes in use, without the terminating NUL */
    size_t cap;  /* bytes allocated */
} strbuf;

void sb_reserve(strbuf *sb, size_t extra_bytes);
void sb_append(strbuf *sb, const void *p, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_putc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
void sb_reset(strbuf *sb); /* len = 0, keeps the memory */
void sb_free(strbuf *sb);

/*
 * An arena: bump allocation from large blocks, all freed at once. Used for
 * per-row and per-batch temporaries (strings made by expressions), reset
 * between rows or batches so hot paths never call malloc per value.
 */
typedef struct arena arena;

arena *arena_new(size_t block_bytes);
/* Returns 'size_bytes' bytes aligned to 16; valid until reset or free. */
void *arena_alloc(arena *a, size_t size_bytes);
char *arena_strndup(arena *a, const char *s, size_t n);
void  arena_reset(arena *a);
void  arena_free(arena *a);

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);

/* The size in bytes of the file at 'path', or 0 when it cannot be stat'ed
 * (for statistics, where a missing file counts nothing). */
uint64_t util_file_bytes(const char *path);

/*
 * The length (1 to 4) of the valid UTF-8 sequence at 'p', which has 'n'
 * bytes left (n > 0), or 0 when it is not valid: overlong forms,
 * surrogates, code points past U+10FFFF and sequences cut by the end are
 * all invalid (RFC 3629).
 */
size_t util_utf8_seq(const unsigned char *p, size_t n);

/* Non-zero when the 'n' bytes at 's' are valid UTF-8 (NUL bytes are
 * valid: U+0000). */
int util_utf8_valid(const char *s, size_t n);

/* The characters of the UTF-8 string 's' (bytes that do not continue a
 * sequence). */
size_t util_utf8_chars(const char *s);

/* Non-zero when the 'n' bytes at 's' are a UUID in text form: 8-4-4-4-12
 * hex digits, either case. */
int util_is_uuid(const char *s, size_t n);

/* MurmurHash3's 64-bit finaliser: a bijection with full avalanche. The
 * hash tables (agg_table.c, exec_join.c) build on it. */
static inline uint64_t
util_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif
