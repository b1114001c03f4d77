/*
 * util.c - allocation that aborts on exhaustion, strbuf and arena, the
 * monotonic clock, a file's size, and the shared text checks (UTF-8,
 * UUIDs). Reading and making files through the fault table is fsys.c's,
 * which builds on this file (never the other way round).
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void (*oom_handler)(size_t size_bytes);

void
util_set_oom_handler(void (*fn)(size_t size_bytes))
{
    oom_handler = fn;
}

static void
oom(size_t size_bytes)
{
    static int in_oom; /* an allocation failing inside the handler */

    fprintf(stderr, "sheaf: out of memory allocating %zu bytes\n", size_bytes);
    if (oom_handler != NULL && !in_oom) {
        in_oom = 1;
        oom_handler(size_bytes);
    }
    abort();
}

void *
xmalloc(size_t size_bytes)
{
    void *p = malloc(size_bytes ? size_bytes : 1);

    if (p == NULL)
        oom(size_bytes);
    return p;
}

void *
xcalloc(size_t n, size_t size_bytes)
{
    void *p = calloc(n ? n : 1, size_bytes ? size_bytes : 1);

    if (p == NULL)
        oom(n * size_bytes);
    return p;
}

void *
xrealloc(void *ptr, size_t size_bytes)
{
    void *p = realloc(ptr, size_bytes ? size_bytes : 1);

    if (p == NULL)
        oom(size_bytes);
    return p;
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xasprintf(const char *fmt, ...)
{
    strbuf  sb = {0};
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    if (sb.data == NULL)
        return xstrdup("");
    return sb.data;
}

void
sb_reserve(strbuf *sb, size_t extra_bytes)
{
    size_t need = sb->len + extra_bytes + 1;

    if (need <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

void
sb_append(strbuf *sb, const void *p, size_t n)
{
    sb_reserve(sb, n);
    if (n)
        memcpy(sb->data + sb->len, p, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void
sb_puts(strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void
sb_putc(strbuf *sb, char c)
{
    sb_reserve(sb, 1);
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void
sb_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int     n;

    va_copy(ap2, ap);
    sb_reserve(sb, 64);
    n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
    if (n >= 0 && (size_t)n >= sb->cap - sb->len) {
        sb_reserve(sb, (size_t)n);
        vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
    }
    va_end(ap2);
    if (n > 0)
        sb->len += (size_t)n;
}

void
sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

void
sb_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

void
sb_free(strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

/* An arena block; the payload follows the header. */
typedef struct arena_block {
    struct arena_block *next; /* the block allocated before this one */
    size_t              size; /* payload bytes */
    size_t              used; /* payload bytes handed out */
} arena_block;

/* The block header rounded up so that payloads stay 16-byte aligned. */
#define ARENA_HEADER_BYTES ((sizeof(arena_block) + 15) & ~(size_t)15)

struct arena {
    arena_block *head;        /* the current block (the newest) */
    size_t       block_bytes; /* payload size of a normal block */
};

arena *
arena_new(size_t block_bytes)
{
    arena *a = xcalloc(1, sizeof *a);

    a->block_bytes = block_bytes ? block_bytes : 64 * 1024;
    return a;
}

static arena_block *
arena_block_new(size_t size)
{
    arena_block *b = xmalloc(ARENA_HEADER_BYTES + size);

    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *
arena_alloc(arena *a, size_t size_bytes)
{
    size_t       n = (size_bytes + 15) & ~(size_t)15;
    arena_block *b = a->head;

    if (b == NULL || b->size - b->used < n) {
        size_t size = n > a->block_bytes ? n : a->block_bytes;

        b = arena_block_new(size);
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b + ARENA_HEADER_BYTES + b->used;
    b->used += n;
    return p;
}

char *
arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
arena_reset(arena *a)
{
    /* Keep the newest block (usually the only one), free the rest. */
    arena_block *b = a->head;

    if (b == NULL)
        return;
    arena_block *rest = b->next;
    while (rest) {
        arena_block *next = rest->next;
        free(rest);
        rest = next;
    }
    b->next = NULL;
    b->used = 0;
}

void
arena_free(arena *a)
{
    if (a == NULL)
        return;
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
util_file_bytes(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

size_t
util_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t        len, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    /* The second byte's range rules out overlong forms, surrogates and
     * code points past U+10FFFF. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

int
util_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0, k;

    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if ((k = util_utf8_seq(p + i, n - i)) == 0)
            return 0;
        i += k;
    }
    return 1;
}

int
util_is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

size_t
util_utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}
