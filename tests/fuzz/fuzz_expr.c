/*
 * fuzz_expr.c - libFuzzer harness of the expression language (expr.h):
 * the lexer, the parser and type checker, and the evaluator.
 *
 * Input: the expression text up to the first NUL byte; the bytes after it
 * make one more row (an int, a float and a string from the raw bytes).
 * The schema is fixed: i int, f float, s string, b bool, n int, "odd name"
 * string, t string. Every expression that compiles is evaluated on five
 * rows: edge values (INT64_MIN and MAX, -0.0, NaN, infinities, empty and
 * multi-byte and invalid UTF-8 strings, nulls) and the row of the input.
 *
 * Properties (besides the sanitizers): a compile error is SH_EINVAL with
 * the path given and a message; an evaluation error is SH_ERANGE with
 * err->code equal to the result and the path; a value's type is the
 * expression's static type or null; a string value has a pointer when it
 * has bytes; evaluating twice gives the same value.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../executor/expr.h"
#include "fuzz_common.h"

#define PATH   "steps[0].where"
#define N_COLS 7
#define N_ROWS 5

static schema  *sc;
static arena   *ar;
static sh_value rows[N_ROWS][N_COLS];

/* The schema and the four fixed rows, once. */
static void
setup(void)
{
    const sh_value fixed[N_ROWS - 1][N_COLS] = {
        {sh_int(7), sh_float(2.5), sh_str("Hello, W\xc3\xb6rld", 13),
         sh_bool(1), sh_null(), sh_str("x y", 3), sh_str("", 0)},
        {sh_int(INT64_MIN), sh_float(-0.0), sh_str("", 0), sh_bool(0),
         sh_int(INT64_MAX), sh_null(),
         sh_str("\xc3\x9f\xe2\x82\xac\xf0\x9d\x84\x9e", 9)},
        {sh_int(INT64_MAX), sh_float(NAN), sh_str("\xff\xfe\xc3", 3), sh_null(),
         sh_int(-1), sh_str("%s%n", 4), sh_str("''", 2)},
        {sh_int(0), sh_float(-INFINITY), sh_null(), sh_bool(1), sh_int(0),
         sh_str("1e308", 5), sh_str("abc", 3)},
    };

    sc = schema_new();
    schema_add(sc, "i", SH_INT);
    schema_add(sc, "f", SH_FLOAT);
    schema_add(sc, "s", SH_STRING);
    schema_add(sc, "b", SH_BOOL);
    schema_add(sc, "n", SH_INT);
    schema_add(sc, "odd name", SH_STRING);
    schema_add(sc, "t", SH_STRING);
    memcpy(rows, fixed, sizeof fixed);
    ar = arena_new(4096);
}

/* Is 'a' the same value as 'b' (NaN equal to NaN, bytes of strings)? */
static int
same_value(const sh_value *a, const sh_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case SH_NULL:
        return 1;
    case SH_INT:
    case SH_DATE:
    case SH_TIMESTAMP:
        return a->u.i == b->u.i;
    case SH_FLOAT:
        return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0
               || (isnan(a->u.f) && isnan(b->u.f));
    case SH_BOOL:
        return a->u.b == b->u.b;
    case SH_STRING:
        return a->u.s.len == b->u.s.len
               && (a->u.s.len == 0
                   || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    }
    return 0;
}

/* Evaluate 'e' on row 'r' twice and check the result. */
static void
eval_row(const expr *e, const char *src, size_t r)
{
    sh_value v, w;
    sh_err   err;
    int      rc, rc2;

    sh_err_clear(&err);
    rc = expr_eval(e, rows[r], ar, &v, &err);
    if (rc != 0) {
        if (rc != SH_ERANGE || err.code != rc || strcmp(err.path, PATH) != 0
            || err.msg[0] == '\0')
            fz_fail("'%s' on row %zu: error %d, code %d, path '%s': %s", src, r,
                    rc, err.code, err.path, err.msg);
    } else {
        if (v.type != SH_NULL && v.type != expr_type(e))
            fz_fail("'%s' on row %zu: static type %s, a %s value", src, r,
                    sh_type_name(expr_type(e)), sh_type_name(v.type));
        if (v.type == SH_BOOL && v.u.b != 0 && v.u.b != 1)
            fz_fail("'%s' on row %zu: a bool of %d", src, r, v.u.b);
        if (v.type == SH_STRING && v.u.s.len > 0 && v.u.s.ptr == NULL)
            fz_fail("'%s' on row %zu: a string of %zu bytes at NULL", src, r,
                    v.u.s.len);
    }
    rc2 = expr_eval(e, rows[r], ar, &w, &err);
    if (rc2 != rc || (rc == 0 && !same_value(&v, &w)))
        fz_fail("'%s' on row %zu: a second evaluation gives another result",
                src, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t         len = nul ? (size_t)(nul - data) : size;
    const uint8_t *tail = nul ? nul + 1 : data + size;
    size_t         tail_n = size - (size_t)(tail - data);
    char          *src;
    expr          *e;
    sh_err         err;
    int64_t        i = 0;
    double         f = 0;

    if (sc == NULL)
        setup();
    src = xstrndup((const char *)data, len);

    /* The row of the input: raw bytes for i and f, the rest a string. */
    if (tail_n >= 8) {
        memcpy(&i, tail, 8);
        tail += 8;
        tail_n -= 8;
    }
    if (tail_n >= 8) {
        memcpy(&f, tail, 8);
        tail += 8;
        tail_n -= 8;
    }
    rows[N_ROWS - 1][0] = sh_int(i);
    rows[N_ROWS - 1][1] = sh_float(f);
    rows[N_ROWS - 1][2] = sh_str((const char *)tail, tail_n);
    rows[N_ROWS - 1][3] = sh_bool(i & 1);
    rows[N_ROWS - 1][4] = tail_n % 2 ? sh_null() : sh_int(i ^ 0x5a5a);
    rows[N_ROWS - 1][5] = sh_str((const char *)tail, tail_n / 2);
    rows[N_ROWS - 1][6] = tail_n % 3 ? sh_null() : sh_str("x", 1);

    sh_err_clear(&err);
    e = expr_compile(src, sc, PATH, &err);
    if (e == NULL) {
        if (err.code != SH_EINVAL || strcmp(err.path, PATH) != 0
            || err.msg[0] == '\0')
            fz_fail("'%s' does not compile with code %d, path '%s': %s", src,
                    err.code, err.path, err.msg);
    } else {
        for (size_t r = 0; r < N_ROWS; r++) {
            arena_reset(ar);
            eval_row(e, src, r);
        }
        expr_free(e);
    }
    arena_reset(ar);
    free(src);
    return 0;
}
