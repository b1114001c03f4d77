/*
 * test_util.c - unit tests of lib/util: the x* allocators, strbuf
 * growth and printf, xasprintf, the arena (alignment, blocks, large
 * allocations, reset), now_ms, fsys_mkdir_p, fsys_sync_dir,
 * fsys_read_file, util_file_bytes, the UTF-8 check and the UUID check.
 * Failures print both values.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../lib/fsys.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

static void
test_x_alloc(void)
{
    char *p = xmalloc(0);
    int  *z = xcalloc(100, sizeof *z);
    char *s;
    int   nonzero = 0;

    CHECK_TRUE(p != NULL);
    free(p);
    for (int i = 0; i < 100; i++)
        nonzero += z[i] != 0;
    CHECK_INT(0, nonzero);
    for (int i = 0; i < 100; i++)
        z[i] = i;
    z = xrealloc(z, 100000 * sizeof *z);
    for (int i = 0; i < 100; i++)
        nonzero += z[i] != i;
    CHECK_INT(0, nonzero);
    free(z);

    s = xstrdup("hello");
    CHECK_STR("hello", s);
    free(s);
    s = xstrndup("hello world", 5);
    CHECK_STR("hello", s);
    free(s);
    s = xstrndup("a\0b", 3);
    CHECK_TRUE(s[0] == 'a' && s[1] == '\0' && s[2] == 'b' && s[3] == '\0');
    free(s);
}

static void
test_strbuf_append(void)
{
    strbuf sb = {0};
    size_t total = 0;

    /* Appending nothing still gives a NUL-terminated string. */
    sb_append(&sb, "", 0);
    CHECK_TRUE(sb.data != NULL);
    CHECK_INT(0, sb.len);
    CHECK_STR("", sb.data);

    /* Growth across many doublings keeps every byte and the NUL. */
    for (int i = 0; i < 10000; i++) {
        char chunk[16];
        int  n = snprintf(chunk, sizeof chunk, "%d,", i);

        sb_append(&sb, chunk, (size_t)n);
        total += (size_t)n;
    }
    CHECK_INT(total, sb.len);
    CHECK_TRUE(sb.cap > sb.len);
    CHECK_INT(0, sb.data[sb.len]);
    CHECK_INT(0, strncmp(sb.data, "0,1,2,3,", 8));
    CHECK_STR("9998,9999,", sb.data + sb.len - 10);
    CHECK_INT(sb.len, strlen(sb.data));

    /* Binary bytes, NUL included. */
    sb_reset(&sb);
    sb_append(&sb, "a\0b", 3);
    CHECK_INT(3, sb.len);
    CHECK_TRUE(memcmp(sb.data, "a\0b\0", 4) == 0);
    sb_free(&sb);
    CHECK_TRUE(sb.data == NULL && sb.len == 0 && sb.cap == 0);
}

static void
test_strbuf_putc_puts(void)
{
    strbuf sb = {0};

    sb_putc(&sb, 'x');
    CHECK_STR("x", sb.data);
    sb_puts(&sb, "yz");
    sb_puts(&sb, "");
    CHECK_STR("xyz", sb.data);
    CHECK_INT(3, sb.len);
    for (int i = 0; i < 1000; i++)
        sb_putc(&sb, (char)('a' + i % 26));
    CHECK_INT(1003, sb.len);
    CHECK_INT(1003, strlen(sb.data));
    CHECK_INT('a' + 999 % 26, sb.data[1002]);
    sb_free(&sb);
}

static void
test_strbuf_printf(void)
{
    strbuf sb = {0};
    char   big[1000];

    sb_printf(&sb, "%d-%s", 42, "x");
    CHECK_STR("42-x", sb.data);
    CHECK_INT(4, sb.len);
    /* Longer than the room left: the second vsnprintf path. */
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sb_printf(&sb, "[%s]", big);
    CHECK_INT(4 + 2 + 999, sb.len);
    CHECK_INT(sb.len, strlen(sb.data));
    CHECK_INT('[', sb.data[4]);
    CHECK_INT(']', sb.data[sb.len - 1]);
    CHECK_INT('q', sb.data[500]);
    /* Exactly filling the buffer's room. */
    sb_reset(&sb);
    while (sb.cap - sb.len - 1 > 10)
        sb_putc(&sb, '.');
    {
        size_t room = sb.cap - sb.len - 1, before = sb.len;

        sb_printf(&sb, "%0*d", (int)room, 7);
        CHECK_INT(before + room, sb.len);
        CHECK_INT(sb.len, strlen(sb.data));
        CHECK_INT('7', sb.data[sb.len - 1]);
        sb_printf(&sb, "%s", "");
        CHECK_INT(before + room, sb.len);
    }
    /* Reset keeps the memory. */
    {
        size_t cap = sb.cap;
        char  *data = sb.data;

        sb_reset(&sb);
        CHECK_INT(0, sb.len);
        CHECK_STR("", sb.data);
        CHECK_TRUE(sb.cap == cap && sb.data == data);
    }
    sb_free(&sb);
}

static void
test_xasprintf(void)
{
    char *s = xasprintf("%s=%d", "n", -3);
    char  big[5000];

    CHECK_STR("n=-3", s);
    free(s);
    s = xasprintf("%s", "");
    CHECK_STR("", s);
    free(s);
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s = xasprintf("<%s>", big);
    CHECK_INT(sizeof big + 1, strlen(s));
    CHECK_TRUE(s[0] == '<' && s[1] == 'z' && s[sizeof big] == '>');
    free(s);
    s = xasprintf("%.3f|%5s|%-3d|", 1.5, "ab", 7);
    CHECK_STR("1.500|   ab|7  |", s);
    free(s);
}

/* The arena promises 16-byte alignment for every allocation. */
static void
test_arena_alignment(void)
{
    arena *a = arena_new(256);
    int    misaligned = 0;

    for (size_t n = 1; n < 600; n += 7) {
        void *p = arena_alloc(a, n);

        if ((uintptr_t)p % 16 != 0) {
            if (misaligned == 0)
                fprintf(stderr,
                        "\narena_alloc(%zu) = %p: not aligned to "
                        "16 (util.h promises it)\n",
                        n, p);
            misaligned++;
        }
    }
    CHECK_INT(0, misaligned);
    arena_free(a);
}

/* Allocations do not overlap, within a block and across blocks. */
static void
test_arena_blocks(void)
{
    arena         *a = arena_new(128);
    unsigned char *p[300];
    size_t         size[300];
    int            bad = 0;

    for (int i = 0; i < 300; i++) {
        size[i] = (size_t)(1 + i % 50);
        p[i] = arena_alloc(a, size[i]);
        memset(p[i], i & 0xff, size[i]);
    }
    for (int i = 0; i < 300; i++)
        for (size_t j = 0; j < size[i]; j++)
            bad += p[i][j] != (i & 0xff);
    CHECK_INT(0, bad);
    arena_free(a);
}

/* A request larger than a block gets its own; small ones still work. */
static void
test_arena_large(void)
{
    arena *a = arena_new(64);
    char  *small1 = arena_alloc(a, 10);
    char  *big = arena_alloc(a, 100000);
    char  *small2 = arena_alloc(a, 10);
    int    bad = 0;

    memset(small1, 1, 10);
    memset(big, 2, 100000);
    memset(small2, 3, 10);
    for (int i = 0; i < 10; i++)
        bad += small1[i] != 1 || small2[i] != 3;
    for (int i = 0; i < 100000; i++)
        bad += big[i] != 2;
    CHECK_INT(0, bad);
    CHECK_TRUE(arena_alloc(a, 0) != NULL);
    arena_free(a);

    /* The default block size. */
    a = arena_new(0);
    big = arena_alloc(a, 64 * 1024);
    memset(big, 4, 64 * 1024);
    CHECK_TRUE(arena_alloc(a, 1) != NULL);
    arena_free(a);
    arena_free(NULL);
}

static void
test_arena_strndup_reset(void)
{
    arena *a = arena_new(1024);
    char  *s = arena_strndup(a, "hello world", 5);
    char  *t;

    CHECK_STR("hello", s);
    t = arena_strndup(a, "", 0);
    CHECK_STR("", t);
    /* Many blocks, then a reset: memory is reused, allocations work. */
    for (int i = 0; i < 1000; i++)
        arena_strndup(a, "0123456789abcdef0123456789", 26);
    arena_reset(a);
    s = arena_strndup(a, "again", 5);
    CHECK_STR("again", s);
    for (int round = 0; round < 5; round++) {
        char *first;

        arena_reset(a);
        first = arena_alloc(a, 100);
        memset(first, 'x', 100);
        t = arena_alloc(a, 100);
        memset(t, 'y', 100);
        CHECK_TRUE(first[99] == 'x' && t[0] == 'y');
    }
    /* Reset after a large allocation, then small ones. */
    arena_alloc(a, 1 << 20);
    arena_reset(a);
    s = arena_strndup(a, "small", 5);
    CHECK_STR("small", s);
    arena_reset(a);
    arena_reset(a);
    arena_free(a);

    /* Reset of an arena that never allocated. */
    a = arena_new(16);
    arena_reset(a);
    CHECK_STR("x", arena_strndup(a, "x", 1));
    arena_free(a);
}

static void
test_now_ms(void)
{
    int64_t         t0 = now_ms(), t1;
    struct timespec ts = {0, 30 * 1000 * 1000};

    nanosleep(&ts, NULL);
    t1 = now_ms();
    CHECK_TRUE(t1 - t0 >= 25);
    CHECK_TRUE(t1 - t0 < 5000);
}

/* 1 when 'path' is a directory. */
static int
is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
test_mkdir_p(void)
{
    char  dir[256];
    char *deep, *file, *under_file;

    CHECK_INT(0, th_temp_dir(dir, sizeof dir, "/tmp", "sheaf-test-util"));
    deep = xasprintf("%s/a/b/c", dir);
    file = xasprintf("%s/f", dir);
    under_file = xasprintf("%s/f/x/y", dir);

    CHECK_INT(0, fsys_mkdir_p(deep, 0755));
    CHECK_TRUE(is_dir(deep));
    /* Again: every directory exists, which is a success. */
    CHECK_INT(0, fsys_mkdir_p(deep, 0755));
    CHECK_INT(0, fsys_mkdir_p(dir, 0755));

    /* A component that is a file stops it with that mkdir's errno. */
    CHECK_INT(0, th_write_file(file, "x", 1));
    errno = 0;
    CHECK_INT(-1, fsys_mkdir_p(under_file, 0755));
    CHECK_INT(ENOTDIR, errno);

    errno = 0;
    CHECK_INT(-1, fsys_mkdir_p("", 0755));
    CHECK_INT(ENOENT, errno);

    CHECK_INT(0, th_rm_tree(dir));
    free(deep);
    free(file);
    free(under_file);
}

static void
test_sync_dir(void)
{
    char  dir[256];
    char *in_dir, *missing;

    CHECK_INT(0, th_temp_dir(dir, sizeof dir, "/tmp", "sheaf-test-util"));
    in_dir = xasprintf("%s/not-yet-there", dir);
    missing = xasprintf("%s/gone/x", dir);

    /* Only the directory part counts: the file need not exist. */
    CHECK_INT(0, fsys_sync_dir(in_dir));
    /* A name without '/' is in the working directory. */
    CHECK_INT(0, fsys_sync_dir("plain-name"));
    errno = 0;
    CHECK_INT(-1, fsys_sync_dir(missing));
    CHECK_INT(ENOENT, errno);

    CHECK_INT(0, th_rm_tree(dir));
    free(in_dir);
    free(missing);
}

static void
test_read_file(void)
{
    static const char data[] = "one\0two\nthree";
    char              dir[256];
    char             *full, *empty, *missing, *got;
    size_t            len = 99;

    CHECK_INT(0, th_temp_dir(dir, sizeof dir, "/tmp", "sheaf-test-util"));
    full = xasprintf("%s/full", dir);
    empty = xasprintf("%s/empty", dir);
    missing = xasprintf("%s/missing", dir);

    /* Bytes of any value, with a NUL after them. */
    CHECK_INT(0, th_write_file(full, data, sizeof data - 1));
    got = fsys_read_file(full, &len);
    CHECK_INT(sizeof data - 1, len);
    CHECK_TRUE(got != NULL && memcmp(got, data, sizeof data) == 0);
    free(got);

    CHECK_INT(0, th_write_file(empty, "", 0));
    got = fsys_read_file(empty, &len);
    CHECK_INT(0, len);
    CHECK_STR("", got);
    free(got);
    got = fsys_read_file(empty, NULL);
    CHECK_STR("", got);
    free(got);

    errno = 0;
    CHECK_TRUE(fsys_read_file(missing, &len) == NULL);
    CHECK_INT(ENOENT, errno);

    CHECK_INT(0, th_rm_tree(dir));
    free(full);
    free(empty);
    free(missing);
}

static void
test_file_bytes(void)
{
    char  dir[256];
    char *f, *missing;

    CHECK_INT(0, th_temp_dir(dir, sizeof dir, "/tmp", "sheaf-test-util"));
    f = xasprintf("%s/f", dir);
    missing = xasprintf("%s/missing", dir);
    CHECK_INT(0, th_write_file(f, "12345", 5));
    CHECK_INT(5, util_file_bytes(f));
    CHECK_INT(0, th_write_file(f, "", 0));
    CHECK_INT(0, util_file_bytes(f));
    CHECK_INT(0, util_file_bytes(missing));
    CHECK_INT(0, th_rm_tree(dir));
    free(f);
    free(missing);
}

/* Each case: bytes, their count, and whether they are valid UTF-8. */
static const struct {
    const char *s;
    size_t      n;
    int         valid;
} utf8_cases[] = {
    {"", 0, 1},
    {"plain ascii", 11, 1},
    {"a\0b", 3, 1},             /* U+0000 is valid */
    {"caf\xC3\xA9", 5, 1},      /* U+00E9 */
    {"\xE2\x82\xAC", 3, 1},     /* U+20AC */
    {"\xF0\x9F\x98\x80", 4, 1}, /* U+1F600 */
    {"\xF4\x8F\xBF\xBF", 4, 1}, /* U+10FFFF, the last */
    {"\xED\x9F\xBF", 3, 1},     /* U+D7FF, before surrogates */
    {"\xC3", 1, 0},             /* cut short */
    {"\xE2\x82", 2, 0},         /* cut short */
    {"\x80", 1, 0},             /* a lone continuation */
    {"\xC0\xAF", 2, 0},         /* overlong '/' */
    {"\xC1\xBF", 2, 0},         /* overlong */
    {"\xE0\x9F\xBF", 3, 0},     /* overlong */
    {"\xF0\x8F\xBF\xBF", 4, 0}, /* overlong */
    {"\xED\xA0\x80", 3, 0},     /* U+D800, a surrogate */
    {"\xF4\x90\x80\x80", 4, 0}, /* U+110000 */
    {"\xF5\x80\x80\x80", 4, 0}, /* no such lead byte */
    {"\xFF", 1, 0},
    {"ok\xC3\xA9\xC3", 5, 0}, /* good, then cut short */
    {"\xC3\x28", 2, 0},       /* not a continuation */
};

static void
test_utf8(void)
{
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const char *s = utf8_cases[i].s;
        size_t      n = utf8_cases[i].n;

        CHECK(util_utf8_valid(s, n) == utf8_cases[i].valid,
              "case %zu: util_utf8_valid gave %d", i, util_utf8_valid(s, n));
    }
    /* The length of one sequence, bounded by the bytes left. */
    CHECK_INT(1, util_utf8_seq((const unsigned char *)"a", 1));
    CHECK_INT(2, util_utf8_seq((const unsigned char *)"\xC3\xA9x", 3));
    CHECK_INT(3, util_utf8_seq((const unsigned char *)"\xE2\x82\xAC", 3));
    CHECK_INT(4, util_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 4));
    CHECK_INT(0, util_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 3));
    CHECK_INT(0, util_utf8_seq((const unsigned char *)"\xED\xA0\x80", 3));
}

static void
test_uuid(void)
{
    const char *good = "6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c";
    const char *upper = "6F1C2A3B-0D4E-4F5A-8B6C-7D8E9F0A1B2C";

    CHECK_TRUE(util_is_uuid(good, strlen(good)));
    CHECK_TRUE(util_is_uuid(upper, strlen(upper)));
    /* The length is the caller's: a prefix of a longer string counts. */
    CHECK_TRUE(util_is_uuid("6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c/result", 36));
    CHECK_TRUE(!util_is_uuid(good, 35));
    CHECK_TRUE(!util_is_uuid("", 0));
    CHECK_TRUE(!util_is_uuid("6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2g", 36));
    CHECK_TRUE(!util_is_uuid("6f1c2a3b00d4e-4f5a-8b6c-7d8e9f0a1b2c", 36));
    CHECK_TRUE(!util_is_uuid("6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c0", 37));
    CHECK_TRUE(!util_is_uuid("../../../../../../../../etc/passwd.xx", 36));
}

void
test_util_register(void)
{
    CU_pSuite s = CU_add_suite("util", NULL, NULL);

    if (s == NULL)
        return;
    CU_add_test(s, "xmalloc, xcalloc, xrealloc, xstrdup", test_x_alloc);
    CU_add_test(s, "strbuf append and growth", test_strbuf_append);
    CU_add_test(s, "strbuf putc and puts", test_strbuf_putc_puts);
    CU_add_test(s, "strbuf printf", test_strbuf_printf);
    CU_add_test(s, "xasprintf", test_xasprintf);
    CU_add_test(s, "arena alignment", test_arena_alignment);
    CU_add_test(s, "arena blocks", test_arena_blocks);
    CU_add_test(s, "arena large allocations", test_arena_large);
    CU_add_test(s, "arena strndup and reset", test_arena_strndup_reset);
    CU_add_test(s, "now_ms", test_now_ms);
    CU_add_test(s, "fsys_mkdir_p", test_mkdir_p);
    CU_add_test(s, "fsys_sync_dir", test_sync_dir);
    CU_add_test(s, "fsys_read_file", test_read_file);
    CU_add_test(s, "util_file_bytes", test_file_bytes);
    CU_add_test(s, "UTF-8 check", test_utf8);
    CU_add_test(s, "UUID check", test_uuid);
}
