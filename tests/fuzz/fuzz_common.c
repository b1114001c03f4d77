/*
 * fuzz_common.c - the byte source, the temporary data root, plans and rows
 * in words, and failure reports of the fuzz harnesses (fuzz_common.h).
 *
 * The data root is made once per process and reused by every input: a
 * harness overwrites its few files each time, so an execution costs a
 * couple of small writes to a memory file system, not a directory.
 */
#include "fuzz_common.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../executor/input.h"
#include "../unit/test_helpers.h"

static char fz_root_dir[512]; /* "" until fz_root makes it */

/* ---- choices from the input --------------------------------------------- */

uint8_t
fz_byte(fz_src *s)
{
    uint8_t b;

    if (s->n == 0)
        return 0;
    b = s->p[0];
    s->p++;
    s->n--;
    return b;
}

size_t
fz_pick(fz_src *s, size_t n)
{
    size_t v = fz_byte(s);

    if (n <= 1)
        return 0;
    if (n > 256)
        v = v << 8 | fz_byte(s);
    return v % n;
}

/* ---- the temporary data root -------------------------------------------- */

/* atexit: remove the data root. */
static void
fz_root_remove(void)
{
    th_rm_tree(fz_root_dir);
    fz_root_dir[0] = '\0';
}

const char *
fz_root(void)
{
    const char *base = getenv("TMPDIR");
    struct stat st;

    if (fz_root_dir[0] != '\0')
        return fz_root_dir;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
        && access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    else if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (th_temp_dir(fz_root_dir, sizeof fz_root_dir, base, "sheaf-fuzz") != 0)
        fz_fail("cannot make a temporary directory in %s", base);
    atexit(fz_root_remove);
    return fz_root_dir;
}

void
fz_put(const char *rel, const void *data, size_t n)
{
    char *path = xasprintf("%s/%s", fz_root(), rel);

    if (th_write_file(path, data, n) != 0)
        fz_fail("cannot write %s", path);
    free(path);
}

void
fz_put_gzip(const char *rel, const void *data, size_t n, int members)
{
    char *path = xasprintf("%s/%s", fz_root(), rel);

    if (th_write_gzip(path, data, n, members) != 0)
        fz_fail("cannot write %s", path);
    free(path);
}

/* ---- plans and rows ----------------------------------------------------- */

plan *
fz_build(json_t *spec, sh_err *err)
{
    plan_env env = {fz_root(), NULL, NULL, 64u << 20, 0, NULL, NULL, NULL};
    plan    *p = NULL;

    sh_err_clear(err);
    if (plan_build(spec, &env, &p, err) != 0) {
        if (p != NULL)
            fz_fail("plan_build failed (%s) but returned a plan", err->msg);
        if (err->code == 0)
            fz_fail("plan_build failed without an error code");
        return NULL;
    }
    if (p == NULL)
        fz_fail("plan_build succeeded without a plan");
    return p;
}

/*
 * The projection check of fz_outcome: every column read vs. the columns of
 * 'need_bits' read (the others read as null).
 */
static void
check_need(const plan *p, uint32_t need_bits)
{
    size_t         n = p->in_schema->n;
    unsigned char *need = xcalloc(n + 1, 1);
    strbuf         a = {0}, b = {0};

    for (size_t c = 0; c < n; c++)
        need[c] = (need_bits >> (c % 32)) & 1;
    fz_read_all(p, NULL, need, &a, NULL);
    fz_read_all(p, need, NULL, &b, NULL);
    fz_same("reading only the needed columns gives other rows",
            "every column (others shown null)", &a, "needed columns", &b);
    sb_free(&a);
    sb_free(&b);
    free(need);
}

int
fz_outcome(json_t *spec, uint32_t need_bits, strbuf *sb)
{
    sh_err   err;
    plan    *p = fz_build(spec, &err);
    uint64_t skipped = 0;
    int      rc;

    sb_puts(sb, "");
    if (p == NULL) {
        sb_printf(sb, "build error %d\n", err.code);
        return err.code;
    }
    sb_puts(sb, "schema ");
    for (size_t i = 0; i < p->in_schema->n; i++) {
        sb_puts(sb, i ? "," : "");
        fz_bytes_text(sb, p->in_schema->names[i],
                      strlen(p->in_schema->names[i]));
        sb_printf(sb, ":%s", sh_type_name(p->in_schema->types[i]));
    }
    sb_putc(sb, '\n');
    if (p->n_parts == 0)
        fz_fail("a plan without partitions");
    rc = fz_read_all(p, NULL, NULL, sb, &skipped);
    if (need_bits != 0 && rc == 0 && skipped == 0)
        check_need(p, need_bits);
    plan_free(p);
    return 0;
}

int
fz_check_parts(json_t *input, const char *rel, const void *data, size_t n,
               uint64_t part_bytes, uint32_t need_bits)
{
    json_t *one = json_deep_copy(input), *parts = json_deep_copy(input);
    json_t *s_one, *s_parts;
    strbuf  a = {0}, b = {0};
    int     rc;

    fz_put(rel, data, n);
    json_object_set_new(one, "path", json_string(rel));
    json_object_set_new(parts, "path", json_string(rel));
    json_object_set_new(parts, "partition_size",
                        json_integer((json_int_t)part_bytes));
    s_one = json_pack("{s:o}", "input", one);
    s_parts = json_pack("{s:o}", "input", parts);
    rc = fz_outcome(s_one, need_bits, &a);
    fz_outcome(s_parts, 0, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
        char *what = xasprintf("partitions of %llu bytes read other rows "
                               "than one partition",
                               (unsigned long long)part_bytes);

        fz_fail_diff(what, "one partition", a.data, "partitions", b.data);
    }
    json_decref(s_one);
    json_decref(s_parts);
    sb_free(&a);
    sb_free(&b);
    return rc;
}

void
fz_bytes_text(strbuf *sb, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c < 0x20 || c >= 0x7f || c == '\\')
            sb_printf(sb, "\\x%02x", c);
        else
            sb_putc(sb, (char)c);
    }
}

void
fz_row_text(strbuf *sb, uint64_t line, const sh_value *row, size_t n)
{
    char fbuf[32];

    sb_printf(sb, "L%llu:", (unsigned long long)line);
    for (size_t i = 0; i < n; i++) {
        const sh_value *v = &row[i];

        if (i > 0)
            sb_putc(sb, '|');
        switch (v->type) {
        case SH_NULL:
            sb_putc(sb, '-');
            break;
        case SH_INT:
            sb_printf(sb, "i%lld", (long long)v->u.i);
            break;
        case SH_DATE:
            sb_printf(sb, "d%lld", (long long)v->u.i);
            break;
        case SH_TIMESTAMP:
            sb_printf(sb, "t%lld", (long long)v->u.i);
            break;
        case SH_FLOAT:
            format_double(v->u.f, fbuf);
            sb_printf(sb, "f%s", fbuf);
            break;
        case SH_BOOL:
            sb_printf(sb, "b%d", v->u.b);
            break;
        case SH_STRING:
            sb_puts(sb, "s[");
            fz_bytes_text(sb, v->u.s.ptr, v->u.s.len);
            sb_putc(sb, ']');
            break;
        default:
            fz_fail("a value of type %d", (int)v->type);
        }
    }
    sb_putc(sb, '\n');
}

int
fz_read_all(const plan *p, const unsigned char *need, const unsigned char *mask,
            strbuf *sb, uint64_t *skipped)
{
    static const sh_value null_value = {SH_NULL, {0}};
    size_t                n_cols = p->in_schema->n;
    sh_value             *shown = xcalloc(n_cols + 1, sizeof *shown);
    uint64_t              rows = 0, n_skipped = 0;
    int                   rc = 0;

    sb_puts(sb, "");
    for (size_t i = 0; i < p->n_parts && rc == 0; i++) {
        sh_err          err;
        const sh_value *row;
        input_reader   *r = input_open(p, i, need, &err);

        if (r == NULL) {
            rc = err.code ? err.code : -100;
            break;
        }
        while ((rc = input_next(r, &row, &err)) == 1) {
            for (size_t c = 0; c < n_cols; c++)
                shown[c] = mask && !mask[c] ? null_value : row[c];
            fz_row_text(sb, input_line(r), shown, n_cols);
        }
        if (rc < 0
            && strncmp(err.msg, input_context(r), strlen(input_context(r)))
                   != 0)
            fz_fail("input error without the partition's context: %s", err.msg);
        rows += input_rows(r);
        n_skipped += input_skipped(r);
        input_free(r);
    }
    if (rc != 0)
        sb_printf(sb, "error %d\n", rc);
    sb_printf(sb, "rows %llu skipped %llu\n", (unsigned long long)rows,
              (unsigned long long)n_skipped);
    if (skipped != NULL)
        *skipped = n_skipped;
    free(shown);
    return rc;
}

/* ---- failures ----------------------------------------------------------- */

void
fz_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\nFUZZ PROPERTY FAILED: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

void
fz_fail_diff(const char *what, const char *a_name, const char *a,
             const char *b_name, const char *b)
{
    size_t i = 0, line = 1;

    a = a ? a : "";
    b = b ? b : "";
    while (a[i] != '\0' && a[i] == b[i]) {
        if (a[i] == '\n')
            line++;
        i++;
    }
    fprintf(stderr,
            "\nFUZZ PROPERTY FAILED: %s (first difference at line "
            "%zu, byte %zu)\n--- %s\n%s\n--- %s\n%s\n---\n",
            what, line, i, a_name, a, b_name, b);
    abort();
}

void
fz_same(const char *what, const char *a_name, const strbuf *a,
        const char *b_name, const strbuf *b)
{
    const char *as = a->data ? a->data : "", *bs = b->data ? b->data : "";

    if (a->len != b->len || memcmp(as, bs, a->len) != 0)
        fz_fail_diff(what, a_name, as, b_name, bs);
}
