/*
 * test_expr.c - unit tests of executor/expr: every operator and function
 * on normal values and on nulls, division and modulo by zero, overflow,
 * rounding, UTF-8 strings, three-valued logic, static types, and the exact
 * words and positions of compile errors.
 *
 * Most checks go through X(src, expect): compile 'src' against the fixture
 * schema, evaluate it on the fixture row, and compare a description of the
 * outcome ("int 3", "float 0.5", "string 'x'", "bool true", "null",
 * "compile error: ...", "out_of_range: ...") with 'expect'. A failure shows
 * the source, what it gave and what was expected. Columns hold the values
 * most tests use, so the evaluator is exercised; the same operations on
 * literals exercise constant folding.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../executor/expr.h"
#include "test_helpers.h"
#include "test_suites.h"

#define PATH "steps[1].where"

/* The fixture: column names, types and the row's values. */
static const struct {
    const char *name;
    sh_type     type;
} cols[] = {
    {"i", SH_INT},                            /* 7 */
    {"j", SH_INT},                            /* 2 */
    {"k", SH_INT},                            /* -7 */
    {"z", SH_INT},                            /* 0 */
    {"n", SH_INT},                            /* null */
    {"big", SH_INT},                          /* INT64_MAX */
    {"minc", SH_INT},                         /* INT64_MIN */
    {"f", SH_FLOAT},                          /* 2.5 */
    {"g", SH_FLOAT},                          /* -2.5 */
    {"fz", SH_FLOAT},                         /* 0.0 */
    {"nf", SH_FLOAT},                         /* null */
    {"s", SH_STRING},                         /* 'héllo' */
    {"ns", SH_STRING},                        /* null */
    {"e", SH_STRING},                         /* '' */
    {"t", SH_BOOL},                           /* true */
    {"fl", SH_BOOL},                          /* false */
    {"nb", SH_BOOL},                          /* null */
    {"odd name", SH_STRING},                  /* 'odd' */
    {"quote\"d", SH_INT},                     /* 42 */
    {"h\xc3\xa9llo w\xc3\xb6rld", SH_STRING}, /* 'unicode' */
    {"nullcol", SH_NULL},                     /* null */
    {"and", SH_INT},                          /* 1 */
    {"x53", SH_INT},                          /* 2^53 + 1 */
    {"num", SH_STRING},                       /* ' 42 ' */
};
#define N_COLS (sizeof cols / sizeof cols[0])

static schema  *sc;
static sh_value row[N_COLS];
static arena   *ar;

static int
suite_init(void)
{
    size_t i;

    sc = schema_new();
    for (i = 0; i < N_COLS; i++)
        schema_add(sc, cols[i].name, cols[i].type);
    row[0] = sh_int(7);
    row[1] = sh_int(2);
    row[2] = sh_int(-7);
    row[3] = sh_int(0);
    row[4] = sh_null();
    row[5] = sh_int(INT64_MAX);
    row[6] = sh_int(INT64_MIN);
    row[7] = sh_float(2.5);
    row[8] = sh_float(-2.5);
    row[9] = sh_float(0.0);
    row[10] = sh_null();
    row[11] = sh_str("h\xc3\xa9llo", 6);
    row[12] = sh_null();
    row[13] = sh_str("", 0);
    row[14] = sh_bool(1);
    row[15] = sh_bool(0);
    row[16] = sh_null();
    row[17] = sh_str("odd", 3);
    row[18] = sh_int(42);
    row[19] = sh_str("unicode", 7);
    row[20] = sh_null();
    row[21] = sh_int(1);
    row[22] = sh_int(9007199254740993);
    row[23] = sh_str(" 42 ", 4);
    ar = arena_new(4096);
    return 0;
}

static int
suite_clean(void)
{
    schema_free(sc);
    arena_free(ar);
    return 0;
}

/*
 * Compiles and evaluates 'src' on the fixture row against schema 's' and
 * describes the outcome in 'buf'. Also checks the invariants every outcome
 * must keep: an error record has the right code and path, and a value's
 * type is the static type (or null).
 */
static void
run_on(const schema *s, const sh_value *r, const char *src, char *buf,
       size_t size)
{
    sh_err   err;
    expr    *e;
    sh_value v;
    int      rc;

    sh_err_clear(&err);
    e = expr_compile(src, s, PATH, &err);
    if (e == NULL) {
        if (err.code != SH_EINVAL || strcmp(err.path, PATH) != 0)
            snprintf(buf, size, "bad error record: code %d, path '%s': %s",
                     err.code, err.path, err.msg);
        else
            snprintf(buf, size, "compile error: %s", err.msg);
        return;
    }
    arena_reset(ar);
    rc = expr_eval(e, r, ar, &v, &err);
    if (rc != 0) {
        if (rc != err.code || strcmp(err.path, PATH) != 0)
            snprintf(buf, size,
                     "bad error record: rc %d, code %d, path "
                     "'%s': %s",
                     rc, err.code, err.path, err.msg);
        else
            snprintf(buf, size, "%s: %s", sh_err_name(rc), err.msg);
    } else if (v.type != SH_NULL && v.type != expr_type(e)) {
        snprintf(buf, size, "static type %s but a %s value",
                 sh_type_name(expr_type(e)), sh_type_name(v.type));
    } else {
        th_describe_value(&v, buf, size);
    }
    expr_free(e);
}

static void
check(const char *src, const char *expect, unsigned line)
{
    char got[1400];

    run_on(sc, row, src, got, sizeof got);
    CHECK_AT(strcmp(got, expect) == 0, line, "%s  =>  %s  (expected %s)", src,
             got, expect);
}
#define X(src, expect) check(src, expect, __LINE__)

/* The static type of 'src' must be 'expect'. */
static void
check_type(const char *src, sh_type expect, unsigned line)
{
    sh_err err;
    expr  *e = expr_compile(src, sc, PATH, &err);

    if (e == NULL) {
        CHECK_AT(0, line, "%s did not compile: %s", src, err.msg);
        return;
    }
    CHECK_AT(expr_type(e) == expect, line, "expr_type(%s) is %s, expected %s",
             src, sh_type_name(expr_type(e)), sh_type_name(expect));
    expr_free(e);
}
#define TYPE(src, expect) check_type(src, expect, __LINE__)

static void
test_literals(void)
{
    X("12", "int 12");
    X("0", "int 0");
    X("9223372036854775807", "int 9223372036854775807");
    X("-9223372036854775808", "int -9223372036854775808");
    X("1.5", "float 1.5");
    X("1e3", "float 1000");
    X("1E-2", "float 0.01");
    X(".5", "float 0.5");
    X("5.", "float 5");
    X("2.5e+1", "float 25");
    X("'text'", "string 'text'");
    X("'it''s'", "string 'it's'");
    X("''", "string ''");
    X("'h\xc3\xa9llo'", "string 'h\xc3\xa9llo'");
    X("true", "bool true");
    X("FALSE", "bool false");
    X("True", "bool true");
    X("null", "null");
    X("NULL", "null");
    X("  \t\n 42 \r\n", "int 42");
    X("(((1)))", "int 1");
}

static void
test_columns(void)
{
    X("i", "int 7");
    X("f", "float 2.5");
    X("s", "string 'h\xc3\xa9llo'");
    X("t", "bool true");
    X("n", "null");
    X("nullcol", "null");
    X("\"odd name\"", "string 'odd'");
    X("\"quote\"\"d\" + 1", "int 43");
    X("\"h\xc3\xa9llo w\xc3\xb6rld\"", "string 'unicode'");
    X("\"and\" + 1", "int 2");
    X("\"i\"", "int 7");
    X("I", "compile error: unknown column 'I' at position 1; columns are: "
           "i, j, k, z, n, big, minc, f, g, fz, nf, s, ns, e, t, fl, nb, "
           "odd name, quote\"d, h\xc3\xa9llo w\xc3\xb6rld, nullcol, and, "
           "x53, num");
}

static void
test_arithmetic(void)
{
    X("i + j", "int 9");
    X("i - j", "int 5");
    X("i * k", "int -49");
    X("i / j", "float 3.5");
    X("7 / 2", "float 3.5");
    X("i / 7", "float 1");
    X("i % j", "int 1");
    X("i + f", "float 9.5");
    X("f + i", "float 9.5");
    X("f - g", "float 5");
    X("f * g", "float -6.25");
    X("f / j", "float 1.25");
    X("1 + 2 * 3", "int 7");
    X("(1 + 2) * 3", "int 9");
    X("10 - 4 - 3", "int 3");
    X("100 / 10 / 5", "float 2");
    X("2 * 3 % 4", "int 2");
    X("-i", "int -7");
    X("--i", "int 7");
    X("-f", "float -2.5");
    X("- -2.5", "float 2.5");
    X("-(i + 1)", "int -8");
    X("1 - -1", "int 2");
    X("0.1 + 0.2", "float 0.30000000000000004");
}

static void
test_division_modulo(void)
{
    X("i / z", "null");
    X("i / 0", "null");
    X("f / fz", "null");
    X("f / 0.0", "null");
    X("f / -0.0", "null");
    X("i / 0.0", "null");
    X("0 / 0", "null");
    X("i % z", "null");
    X("i % 0", "null");
    X("f % fz", "null");
    X("7.5 % 0", "null");
    /* Int '%' takes the sign of the dividend. */
    X("7 % 3", "int 1");
    X("-7 % 3", "int -1");
    X("k % 3", "int -1");
    X("7 % -3", "int 1");
    X("i % -3", "int 1");
    X("-7 % -3", "int -1");
    X("k % -3", "int -1");
    X("minc % -1", "int 0");
    X("-9223372036854775808 % -1", "int 0");
    X("minc % 10", "int -8");
    X("big % 10", "int 7");
    /* Float '%' is fmod: the sign of the dividend too. */
    X("7.5 % 2", "float 1.5");
    X("-7.5 % 2", "float -1.5");
    X("f % 1", "float 0.5");
    X("g % 1", "float -0.5");
    X("i % f", "float 2");
}

static void
test_overflow(void)
{
    X("big + 1", "out_of_range: integer overflow in '+' at position 5: "
                 "9223372036854775807 + 1");
    X("9223372036854775807 + 1",
      "out_of_range: integer overflow in '+' at position 21: "
      "9223372036854775807 + 1");
    X("minc - 1", "out_of_range: integer overflow in '-' at position 6: "
                  "-9223372036854775808 - 1");
    X("big * 2", "out_of_range: integer overflow in '*' at position 5: "
                 "9223372036854775807 * 2");
    X("minc * -1", "out_of_range: integer overflow in '*' at position 6: "
                   "-9223372036854775808 * -1");
    X("-minc", "out_of_range: integer overflow in '-' at position 1: "
               "-9223372036854775808");
    X("abs(minc)", "out_of_range: integer overflow in abs() at position 1: "
                   "-9223372036854775808");
    X("big + 0", "int 9223372036854775807");
    X("minc + big", "int -1");
    X("big + 1.0", "float 9.223372036854776e+18");
    /* An error in a branch not taken is not raised. */
    X("if(fl, big + 1, 0)", "int 0");
    X("fl and big + 1 > 0", "bool false");
    X("t or big + 1 > 0", "bool true");
    X("coalesce(i, big + 1)", "int 7");
}

static void
test_comparisons(void)
{
    X("i == 7", "bool true");
    X("i != 7", "bool false");
    X("i < j", "bool false");
    X("i <= 7", "bool true");
    X("i > j", "bool true");
    X("i >= 8", "bool false");
    X("i == 7.0", "bool true");
    X("f > i", "bool false");
    X("f < 2.6", "bool true");
    X("2.5 == f", "bool true");
    /* ints and floats compare exactly, not through a rounding. */
    X("x53 == 9007199254740992.0", "bool false");
    X("x53 > 9007199254740992.0", "bool true");
    X("x53 - 1 == 9007199254740992.0", "bool true");
    X("big < 9223372036854775808.0", "bool true");
    X("big == 9.223372036854775807e18", "bool false");
    X("s == 'h\xc3\xa9llo'", "bool true");
    X("'a' < 'b'", "bool true");
    X("'ab' > 'a'", "bool true");
    X("e < 'a'", "bool true");
    X("'B' < 'a'", "bool true");
    X("'\xc3\xa9' > 'z'", "bool true");
    X("s != 'hello'", "bool true");
    X("t == true", "bool true");
    X("fl < t", "bool true");
    X("t != fl", "bool true");
    X("float('nan') == float('nan')", "bool true");
    X("float('nan') > float('inf')", "bool true");
    X("1 + 1 == 2 and 3 > 2", "bool true");
}

static void
test_null_comparisons(void)
{
    X("n == 1", "bool false");
    X("n != 1", "bool false");
    X("n < 1", "bool false");
    X("n >= 1", "bool false");
    X("1 == n", "bool false");
    X("n == n", "bool false");
    X("n == null", "bool false");
    X("null == null", "bool false");
    X("null != null", "bool false");
    X("i == null", "bool false");
    X("i != null", "bool false");
    X("not (n == null)", "bool true");
    X("not (i == null)", "bool true");
    X("ns == 'a'", "bool false");
    X("ns != 'a'", "bool false");
    X("nf < 1.5", "bool false");
    X("nb == true", "bool false");
    X("s == null", "bool false");
    X("nullcol == 1", "bool false");
    X("nullcol == 'x'", "bool false");
}

/* The truth tables of and, or, not over true, false and null (unknown). */
static void
test_three_valued_logic(void)
{
    static const char *v[3] = {"t", "fl", "nb"};
    static const char *lit[3] = {"true", "false", "null"};
    /* [a][b] for a, b in true, false, null. */
    static const char *and_tab[3][3] = {
        {"bool true", "bool false", "null"},
        {"bool false", "bool false", "bool false"},
        {"null", "bool false", "null"},
    };
    static const char *or_tab[3][3] = {
        {"bool true", "bool true", "bool true"},
        {"bool true", "bool false", "null"},
        {"bool true", "null", "null"},
    };
    static const char *not_tab[3] = {"bool false", "bool true", "null"};
    char               src[64];
    int                a, b;

    for (a = 0; a < 3; a++) {
        for (b = 0; b < 3; b++) {
            snprintf(src, sizeof src, "%s and %s", v[a], v[b]);
            check(src, and_tab[a][b], __LINE__);
            snprintf(src, sizeof src, "%s or %s", v[a], v[b]);
            check(src, or_tab[a][b], __LINE__);
            snprintf(src, sizeof src, "%s AND %s", lit[a], lit[b]);
            check(src, and_tab[a][b], __LINE__);
            snprintf(src, sizeof src, "%s Or %s", lit[a], lit[b]);
            check(src, or_tab[a][b], __LINE__);
        }
        snprintf(src, sizeof src, "not %s", v[a]);
        check(src, not_tab[a], __LINE__);
        snprintf(src, sizeof src, "NOT %s", lit[a]);
        check(src, not_tab[a], __LINE__);
    }
    X("not not t", "bool true");
    X("t and fl or t", "bool true");  /* (t and fl) or t */
    X("t or fl and fl", "bool true"); /* t or (fl and fl) */
    X("not i > 7", "bool true");      /* not (i > 7) */
}

static void
test_null_propagation(void)
{
    static const char *nulls[] = {
        "n + 1",
        "1 + n",
        "n - 1",
        "n * 2",
        "n / 2",
        "2 / n",
        "n % 2",
        "7 % n",
        "f + nf",
        "nf * 2",
        "nf / 2.0",
        "nf % 2",
        "-n",
        "-nf",
        "null + 1",
        "1.5 * null",
        "-null",
        "nullcol + 1",
        "not nb",
        "lower(ns)",
        "upper(ns)",
        "length(ns)",
        "substr(ns, 1)",
        "substr(s, n)",
        "substr(s, 1, n)",
        "contains(ns, 'a')",
        "contains(s, ns)",
        "starts_with(ns, 'a')",
        "starts_with(s, ns)",
        "ends_with(ns, 'a')",
        "ends_with(s, ns)",
        "concat(s, ns)",
        "concat(ns)",
        "concat('a', n, 'b')",
        "abs(n)",
        "abs(nf)",
        "round(n)",
        "round(nf)",
        "round(f, n)",
        "round(i, n)",
        "floor(nf)",
        "ceil(nf)",
        "floor(n)",
        "sqrt(nf)",
        "sqrt(n)",
        "ln(nf)",
        "exp(n)",
        "int(nf)",
        "int(ns)",
        "int(nb)",
        "float(n)",
        "float(ns)",
        "float(nb)",
        "str(n)",
        "str(ns)",
        "str(nb)",
        "coalesce(n, nf)",
        "coalesce(null, null)",
        "hash(n)",
        "hash(ns)",
        "hash(null)",
        "lower(null)",
        "substr('abc', null)",
        "round(1.5, null)",
        "if(t, n, 1)",
        "if(fl, 1, null)",
    };
    size_t i;

    for (i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        check(nulls[i], "null", __LINE__);
}

static void
test_string_functions(void)
{
    X("lower('HeLLo W\xc3\x89')", "string 'hello w\xc3\x89'");
    X("upper(s)", "string 'H\xc3\xa9LLO'");
    X("upper('abc-xyz_09')", "string 'ABC-XYZ_09'");
    X("lower(e)", "string ''");
    X("LOWER('A')", "string 'a'");
    X("length(s)", "int 5");
    X("length('h\xc3\xa9llo')", "int 5");
    X("length(e)", "int 0");
    X("length('\xe2\x82\xac\xf0\x9f\x98\x80')", "int 2");
    X("substr(s, 2, 3)", "string '\xc3\xa9ll'");
    X("substr(s, 1, 1)", "string 'h'");
    X("substr(s, 2)", "string '\xc3\xa9llo'");
    X("substr(s, 5)", "string 'o'");
    X("substr(s, 6)", "string ''");
    X("substr(s, 100)", "string ''");
    X("substr(s, 5, 100)", "string 'o'");
    X("substr(s, 0, 2)", "string 'h'");
    X("substr(s, -1, 3)", "string 'h'");
    X("substr(s, -5, 3)", "string ''");
    X("substr(s, 0)", "string 'h\xc3\xa9llo'");
    X("substr(s, 1, 0)", "string ''");
    X("substr(s, 2, -1)", "string ''");
    X("substr(s, 2, 9223372036854775807)", "string '\xc3\xa9llo'");
    X("substr(s, -9223372036854775808, 9223372036854775807)", "string ''");
    X("substr(e, 1, 3)", "string ''");
    X("contains(s, '\xc3\xa9l')", "bool true");
    X("contains(s, 'x')", "bool false");
    X("contains(s, '')", "bool true");
    X("contains('ab', 'abc')", "bool false");
    X("starts_with(s, 'h\xc3\xa9')", "bool true");
    X("starts_with(s, 'e')", "bool false");
    X("starts_with(s, '')", "bool true");
    X("starts_with('a', 'ab')", "bool false");
    X("ends_with(s, 'llo')", "bool true");
    X("ends_with(s, 'h')", "bool false");
    X("ends_with(e, '')", "bool true");
    X("ends_with('o', 'lo')", "bool false");
    X("concat('a', 1, 2.5, true, 'b')", "string 'a12.5trueb'");
    X("concat(s, '-', i, '-', f, '-', fl)",
      "string 'h\xc3\xa9llo-7-2.5-false'");
    X("concat(i)", "string '7'");
    X("concat(s)", "string 'h\xc3\xa9llo'");
    X("concat(e, e)", "string ''");
    X("concat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, i)", "string '123456789107'");
    X("str(i)", "string '7'");
    X("str(minc)", "string '-9223372036854775808'");
    X("str(3.0)", "string '3'");
    X("str(0.1)", "string '0.1'");
    X("str(1e16)", "string '1e+16'");
    X("str(1 / 3)", "string '0.3333333333333333'");
    X("str(t)", "string 'true'");
    X("str(s)", "string 'h\xc3\xa9llo'");
}

static void
test_numeric_functions(void)
{
    X("abs(k)", "int 7");
    X("abs(i)", "int 7");
    X("abs(g)", "float 2.5");
    X("abs(-0.0)", "float 0");
    X("abs(big)", "int 9223372036854775807");
    X("floor(f)", "float 2");
    X("floor(g)", "float -3");
    X("ceil(f)", "float 3");
    X("ceil(g)", "float -2");
    X("floor(i)", "int 7");
    X("ceil(k)", "int -7");
    X("sqrt(16)", "float 4");
    X("sqrt(2.25)", "float 1.5");
    X("sqrt(-1)", "null");
    X("sqrt(g)", "null");
    X("sqrt(0)", "float 0");
    X("ln(1)", "float 0");
    X("ln(exp(2.0))", "float 2");
    X("ln(0)", "null");
    X("ln(fz)", "null");
    X("ln(k)", "null");
    X("exp(0)", "float 1");
    X("exp(z)", "float 1");
    X("exp(1000)", "float inf");
    X("float(i)", "float 7");
    X("float(f)", "float 2.5");
    X("float('1.5')", "float 1.5");
    X("float(' 1e3 ')", "float 1000");
    X("float('-inf')", "float -inf");
    X("float('x')", "null");
    X("float('0x10')", "null");
    X("float(e)", "null");
    X("float(t)", "float 1");
    X("float(fl)", "float 0");
}

static void
test_int_and_round(void)
{
    X("int(2.9)", "int 2");
    X("int(-2.9)", "int -2");
    X("int(f)", "int 2");
    X("int(g)", "int -2");
    X("int(i)", "int 7");
    X("int(-0.5)", "int 0");
    X("int(-9223372036854775808.0)", "int -9223372036854775808");
    X("int(9223372036854774784.0)", "int 9223372036854774784");
    X("int(9223372036854775808.0)",
      "out_of_range: int() of 9.223372036854776e+18 is out of range at "
      "position 1");
    X("int(1e300 * f)",
      "out_of_range: int() of 2.5e+300 is out of range at position 1");
    X("int(float('nan'))",
      "out_of_range: int() of nan is out of range at position 1");
    X("int(-float('inf'))",
      "out_of_range: int() of -inf is out of range at position 1");
    X("int('42')", "int 42");
    X("int(num)", "int 42");
    X("int('-17')", "int -17");
    X("int('4.7')", "int 4");
    X("int('-4.7')", "int -4");
    X("int('1e3')", "int 1000");
    X("int('9223372036854775807')", "int 9223372036854775807");
    X("int('9223372036854775808')", "null");
    X("int('-9223372036854775808')", "int -9223372036854775808");
    X("int('-9223372036854775809')", "null");
    X("int(' -99999999999999999999 ')", "null");
    X("int('+9223372036854775807')", "int 9223372036854775807");
    X("int('1e300')", "null");
    X("int('nan')", "null");
    X("int('abc')", "null");
    X("int('')", "null");
    X("int(e)", "null");
    X("int(t)", "int 1");
    X("int(fl)", "int 0");

    X("round(2.5)", "float 3");
    X("round(-2.5)", "float -3");
    X("round(f)", "float 3");
    X("round(g)", "float -3");
    X("round(0.5)", "float 1");
    X("round(1.4999999999999998)", "float 1");
    X("round(2.4)", "float 2");
    X("round(i)", "int 7");
    X("round(1.005, 2)", "float 1.01");
    X("round(2.675, 2)", "float 2.68");
    X("round(-2.675, 2)", "float -2.68");
    X("round(0.125, 2)", "float 0.13");
    X("round(1.2345, 10)", "float 1.2345");
    X("round(9.995, 2)", "float 10");
    X("round(0.05, 1)", "float 0.1");
    X("round(0.04, 1)", "float 0");
    X("round(1234.5678, -2)", "float 1200");
    X("round(1250.0, -2)", "float 1300");
    X("round(-1250.0, -2)", "float -1300");
    X("round(499.0, -3)", "float 0");
    X("round(500.0, -3)", "float 1000");
    X("round(0.285, 2)", "float 0.29");
    X("round(1.0049999, 2)", "float 1");
    X("round(-0.004, 2)", "float -0");
    X("round(123.456, 1)", "float 123.5");
    X("round(-123.456, -1)", "float -120");
    X("round(1e300, 2)", "float 1e+300");
    X("round(5e-324, 2)", "float 0");
    X("round(float('inf'), 2)", "float inf");
    X("round(1.5, 400)", "float 1.5");
    X("round(1.5, -400)", "float 0");
    X("round(f, j)", "float 2.5");
    X("round(1234, -2)", "int 1200");
    X("round(1250, -2)", "int 1300");
    X("round(-1250, -2)", "int -1300");
    X("round(1249, -2)", "int 1200");
    X("round(i, 2)", "int 7");
    X("round(i, -1)", "int 10");
    X("round(k, -1)", "int -10");
    X("round(big, -20)", "int 0");
    X("round(4000000000000000000, -19)", "int 0");
    X("round(-4000000000000000000, -19)", "int 0");
    X("round(5000000000000000000, -19)",
      "out_of_range: integer overflow in round() at position 1: "
      "5000000000000000000");
    X("round(big, -19)", "out_of_range: integer overflow in round() at "
                         "position 1: 9223372036854775807");
    X("round(big, -1)", "out_of_range: integer overflow in round() at "
                        "position 1: 9223372036854775807");
    X("round(minc, -1)", "out_of_range: integer overflow in round() at "
                         "position 1: -9223372036854775808");
    X("round(minc, -2)", "int -9223372036854775800");
}

static void
test_other_functions(void)
{
    X("coalesce(n, 5)", "int 5");
    X("coalesce(n, null, i)", "int 7");
    X("coalesce(i, n)", "int 7");
    X("coalesce(n, 2.5)", "float 2.5");
    X("coalesce(i, 2.5)", "float 7");
    X("coalesce(ns, 'x')", "string 'x'");
    X("coalesce(ns, s)", "string 'h\xc3\xa9llo'");
    X("coalesce(nb, fl)", "bool false");
    X("coalesce(i)", "int 7");
    X("coalesce(null, 3)", "int 3");
    X("is_null(n)", "bool true");
    X("is_null(i)", "bool false");
    X("is_null(null)", "bool true");
    X("is_null(nullcol)", "bool true");
    X("is_null(i / z)", "bool true");
    X("is_null(ns)", "bool true");
    X("is_null(e)", "bool false");
    X("if(t, 'y', 'n')", "string 'y'");
    X("if(fl, 'y', 'n')", "string 'n'");
    X("if(nb, 'y', 'n')", "string 'n'");
    X("if(null, 1, 2)", "int 2");
    X("if(true, 1, 2)", "int 1");
    X("if(t, 1, 2.5)", "float 1");
    X("if(fl, 1, 2.5)", "float 2.5");
    X("if(i > 5, i, null)", "int 7");
    X("if(i > 50, i, null)", "null");
    X("IF(t, 1, 2)", "int 1");
}

/* 64-bit FNV-1a over a type byte and the value's bytes, masked: the
 * definition of hash() stated independently of the implementation. */
static int64_t
ref_hash(unsigned char tag, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t             h = 0xcbf29ce484222325ULL;
    size_t               i;

    h = (h ^ tag) * 0x100000001b3ULL;
    for (i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return (int64_t)(h & 0x7fffffffffffffffULL);
}

static void
test_hash(void)
{
    static const unsigned char one_le[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char minus_one[8] = {0xff, 0xff, 0xff, 0xff,
                                               0xff, 0xff, 0xff, 0xff};
    static const unsigned char one_f[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    static const unsigned char zero8[8] = {0};
    static const unsigned char nan_f[8] = {0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
    static const unsigned char tru = 1;
    char                       expect[64];

    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(1, one_le, 8));
    X("hash(1)", expect);
    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(1, minus_one, 8));
    X("hash(-1)", expect);
    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(2, one_f, 8));
    X("hash(1.0)", expect);
    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(2, zero8, 8));
    X("hash(0.0)", expect);
    X("hash(-0.0)", expect);
    X("hash(fz)", expect);
    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(2, nan_f, 8));
    X("hash(float('nan'))", expect);
    X("hash(-float('nan'))", expect);
    snprintf(expect, sizeof expect, "int %" PRId64,
             ref_hash(3, "h\xc3\xa9llo", 6));
    X("hash(s)", expect);
    X("hash('h\xc3\xa9llo')", expect);
    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(3, "", 0));
    X("hash(e)", expect);
    snprintf(expect, sizeof expect, "int %" PRId64, ref_hash(4, &tru, 1));
    X("hash(t)", expect);
    X("hash(1) == hash(1.0)", "bool false");
    X("hash(i) == hash(7)", "bool true");
    X("hash(minc) >= 0 and hash(big) >= 0 and hash(g) >= 0", "bool true");
}

static void
test_static_types(void)
{
    TYPE("null", SH_NULL);
    TYPE("null + 1", SH_NULL);
    TYPE("n + 1", SH_INT);
    TYPE("nullcol", SH_NULL);
    TYPE("lower(null)", SH_NULL);
    TYPE("1 + 2", SH_INT);
    TYPE("i / 2", SH_FLOAT);
    TYPE("i + f", SH_FLOAT);
    TYPE("i % j", SH_INT);
    TYPE("i == 1", SH_BOOL);
    TYPE("i == null", SH_BOOL);
    TYPE("null and null", SH_NULL);
    TYPE("null and t", SH_BOOL);
    TYPE("not null", SH_NULL);
    TYPE("concat(i, f)", SH_STRING);
    TYPE("length(s)", SH_INT);
    TYPE("round(i)", SH_INT);
    TYPE("round(f, 1)", SH_FLOAT);
    TYPE("floor(i)", SH_INT);
    TYPE("sqrt(i)", SH_FLOAT);
    TYPE("int(s)", SH_INT);
    TYPE("float(s)", SH_FLOAT);
    TYPE("str(i)", SH_STRING);
    TYPE("coalesce(n, f)", SH_FLOAT);
    TYPE("coalesce(null, null)", SH_NULL);
    TYPE("is_null(null)", SH_BOOL);
    TYPE("if(t, 1, 2.5)", SH_FLOAT);
    TYPE("if(t, null, 's')", SH_STRING);
    TYPE("hash(s)", SH_INT);
    TYPE("hash(null)", SH_NULL);
}

static void
test_syntax_errors(void)
{
    X("", "compile error: empty expression");
    X("   ", "compile error: empty expression");
    X("i +", "compile error: expected expression at end of input");
    X("(", "compile error: expected expression at end of input");
    X("lower(", "compile error: expected expression at end of input");
    X("not", "compile error: expected expression at end of input");
    X("(i + j))", "compile error: unexpected ')' at position 8");
    X("i + )", "compile error: unexpected ')' at position 5");
    X("i j", "compile error: unexpected 'j' at position 3");
    X("i 'x'", "compile error: unexpected string 'x' at position 3");
    X("i 12", "compile error: unexpected number 12 at position 3");
    X("* 2", "compile error: unexpected '*' at position 1");
    X("i == ,", "compile error: unexpected ',' at position 6");
    X("s == 'abc", "compile error: unterminated string starting at "
                   "position 6");
    X("'it''s", "compile error: unterminated string starting at position 1");
    X("\"odd name", "compile error: unterminated quoted name starting at "
                    "position 1");
    X("(i + 1", "compile error: missing ')' for '(' at position 1");
    X("(i + 1 j)", "compile error: expected ')' at position 8, found 'j'");
    X("lower(s", "compile error: missing ')' for '(' at position 6");
    X("substr(s 1)", "compile error: expected ',' or ')' at position 10, "
                     "found number 1");
    X("i = 7", "compile error: unexpected '=' at position 3; use '==' to "
               "compare");
    X("i # 7", "compile error: unexpected character '#' at position 3");
    X("!t", "compile error: unexpected character '!' at position 1");
    X("'\xc3\xa9' + \xc3\xa9", "compile error: unexpected character "
                               "'\xc3\xa9' at position 7");
    X("12abc", "compile error: invalid number '12abc' at position 1");
    X("1.2.3", "compile error: invalid number '1.2.3' at position 1");
    X("1e", "compile error: invalid number '1e' at position 1");
    X("9223372036854775808", "compile error: integer literal "
                             "9223372036854775808 is out of range at "
                             "position 1");
    X("i + 99999999999999999999999", "compile error: integer literal "
                                     "99999999999999999999999 is out of "
                                     "range at position 5");
    X("1e999", "compile error: number 1e999 is out of range at position 1");
    X("1 < i < 3", "compile error: unexpected '<' at position 7; "
                   "comparisons cannot be chained, join them with 'and'");
    X("true(1)", "compile error: unexpected '(' at position 5");
    X("i.x", "compile error: unexpected character '.' at position 2");
}

static void
test_type_errors(void)
{
    X("yeer", "compile error: unknown column 'yeer' at position 1; "
              "columns are: i, j, k, z, n, big, minc, f, g, fz, nf, s, ns, "
              "e, t, fl, nb, odd name, quote\"d, h\xc3\xa9llo w\xc3\xb6rld, "
              "nullcol, and, x53, num");
    X("lenght(s)", "compile error: unknown function 'lenght' at position 1; "
                   "did you mean length?");
    X("len(s)", "compile error: unknown function 'len' at position 1; "
                "did you mean length or ln?");
    X("substring(s, 1)", "compile error: unknown function 'substring' at "
                         "position 1; did you mean substr?");
    X("frobnicate(i)", "compile error: unknown function 'frobnicate' at "
                       "position 1; functions are: lower, upper, length, "
                       "substr, contains, starts_with, ends_with, concat, "
                       "abs, round, floor, ceil, sqrt, ln, exp, int, float, "
                       "str, coalesce, is_null, if, hash, date, timestamp, "
                       "strptime, strftime, year, month, day, hour, minute, "
                       "second, dow, doy, week, date_trunc, date_diff, "
                       "date_add, regexp_matches, regexp_extract, "
                       "regexp_replace, trim, ltrim, rtrim, replace, "
                       "split_part, strpos, lpad, rpad, reverse");
    X("substr(s)", "compile error: substr takes 2 or 3 arguments, got 1 at "
                   "position 1");
    X("lower(s, s)", "compile error: lower takes 1 argument, got 2 at "
                     "position 1");
    X("concat()", "compile error: concat takes at least 1 argument, got 0 "
                  "at position 1");
    X("if(t, 1)", "compile error: if takes 3 arguments, got 2 at position 1");
    X("i + contains(s)", "compile error: contains takes 2 arguments, got 1 "
                         "at position 5");
    X("s == 7", "compile error: cannot compare string with int at "
                "position 3");
    X("i < 'x'", "compile error: cannot compare int with string at "
                 "position 3");
    X("t == 1", "compile error: cannot compare bool with int at position 3");
    X("s + 1", "compile error: '+' needs numbers, got string at position 3; "
               "use concat() to join strings");
    X("i * t", "compile error: '*' needs numbers, got bool at position 3");
    X("s / 2", "compile error: '/' needs numbers, got string at position 3");
    X("i % 's'", "compile error: '%' needs numbers, got string at "
                 "position 3");
    X("-s", "compile error: '-' needs a number, got string at position 1");
    X("i and t", "compile error: 'and' needs bools, got int at position 3");
    X("t or s", "compile error: 'or' needs bools, got string at position 3");
    X("not i", "compile error: 'not' needs a bool, got int at position 1");
    X("lower(i)", "compile error: argument 1 of lower must be a string, got "
                  "int at position 7");
    X("length( t )", "compile error: argument 1 of length must be a string, "
                     "got bool at position 9");
    X("substr(s, 1.5)", "compile error: argument 2 of substr must be an int, "
                        "got float at position 11");
    X("contains(s, 1)", "compile error: argument 2 of contains must be a "
                        "string, got int at position 13");
    X("abs(s)", "compile error: argument 1 of abs must be a number, got "
                "string at position 5");
    X("round(f, 1.5)", "compile error: argument 2 of round must be an int, "
                       "got float at position 10");
    X("sqrt(t)", "compile error: argument 1 of sqrt must be a number, got "
                 "bool at position 6");
    X("if(i, 1, 2)", "compile error: argument 1 of if must be a bool, got "
                     "int at position 4");
    X("if(t, 1, 'x')", "compile error: arguments 2 and 3 of if must have "
                       "the same type, got int and string at position 10");
    X("coalesce(n, f, 'x')", "compile error: arguments of coalesce must "
                             "have the same type, got float and string at "
                             "position 16");
    /* The position counts characters, not bytes. */
    X("'h\xc3\xa9llo' + zz", "compile error: unknown column 'zz' at "
                             "position 11; columns are: i, j, k, z, n, big, "
                             "minc, f, g, fz, nf, s, ns, e, t, fl, nb, "
                             "odd name, quote\"d, h\xc3\xa9llo w\xc3\xb6rld, "
                             "nullcol, and, x53, num");
    X("\"\xc3\xa9\xc3\xa9\" == 1", "compile error: unknown column "
                                   "'\xc3\xa9\xc3\xa9' at position 1; "
                                   "columns are: i, j, k, z, n, big, minc, "
                                   "f, g, fz, nf, s, ns, e, t, fl, nb, "
                                   "odd name, quote\"d, "
                                   "h\xc3\xa9llo w\xc3\xb6rld, nullcol, and, "
                                   "x53, num");
    X("'\xc3\xa9\xc3\xa9' == s and 1", "compile error: 'and' needs bools, "
                                       "got int at position 11");
    /* The first error found is the one reported. */
    X("nope + lower(1)", "compile error: unknown column 'nope' at position "
                         "1; columns are: i, j, k, z, n, big, minc, f, g, "
                         "fz, nf, s, ns, e, t, fl, nb, odd name, quote\"d, "
                         "h\xc3\xa9llo w\xc3\xb6rld, nullcol, and, x53, num");
}

/* Messages for a small schema, as the header documents them. */
static void
test_small_schema_messages(void)
{
    schema  *small = schema_new(), *none = schema_new(), *wide = schema_new();
    sh_value r[3] = {sh_int(1), sh_int(2020), sh_str("t", 1)};
    char     got[1400], name[32];
    size_t   i;

    schema_add(small, "id", SH_INT);
    schema_add(small, "year", SH_INT);
    schema_add(small, "title", SH_STRING);
    run_on(small, r, "yeer >= 2010", got, sizeof got);
    CHECK_AT(strcmp(got, "compile error: unknown column 'yeer' at position "
                         "1; columns are: id, year, title")
                 == 0,
             __LINE__, "got %s", got);
    run_on(small, r, "year >= 2010", got, sizeof got);
    CHECK_AT(strcmp(got, "bool true") == 0, __LINE__, "got %s", got);
    run_on(none, r, "x", got, sizeof got);
    CHECK_AT(strcmp(got, "compile error: unknown column 'x' at position 1; "
                         "the input has no columns")
                 == 0,
             __LINE__, "got %s", got);
    run_on(none, r, "1 + 1", got, sizeof got);
    CHECK_AT(strcmp(got, "int 2") == 0, __LINE__, "got %s", got);
    /* A long column list is cut, and says how many it left out. */
    for (i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "column_number_%03zu", i);
        schema_add(wide, name, SH_INT);
    }
    run_on(wide, NULL, "x", got, sizeof got);
    CHECK_AT(strstr(got, "columns are: column_number_000, ") != NULL
                 && strstr(got, " more)") != NULL && strlen(got) < 800,
             __LINE__, "got %s", got);
    schema_free(small);
    schema_free(none);
    schema_free(wide);
}

/* Nesting and depth limits: an error, never a stack overflow. */
static void
test_limits(void)
{
    strbuf sb = {0};
    char   got[1400];
    int    i;

    for (i = 0; i < 100; i++)
        sb_putc(&sb, '(');
    sb_putc(&sb, '1');
    for (i = 0; i < 100; i++)
        sb_putc(&sb, ')');
    run_on(sc, row, sb.data, got, sizeof got);
    CHECK_AT(strcmp(got, "int 1") == 0, __LINE__, "100 parentheses: %s", got);
    sb_reset(&sb);
    for (i = 0; i < 100000; i++)
        sb_putc(&sb, '(');
    run_on(sc, row, sb.data, got, sizeof got);
    CHECK_AT(strcmp(got, "compile error: expression is nested too deeply "
                         "(more than 200 levels) at position 201")
                 == 0,
             __LINE__, "100000 parentheses: %s", got);
    sb_reset(&sb);
    for (i = 0; i < 100000; i++)
        sb_puts(&sb, "-");
    sb_puts(&sb, "i");
    run_on(sc, row, sb.data, got, sizeof got);
    CHECK_AT(strncmp(got, "compile error: expression is nested too deeply", 46)
                 == 0,
             __LINE__, "100000 minus signs: %s", got);
    sb_reset(&sb);
    sb_puts(&sb, "i");
    for (i = 0; i < 999; i++)
        sb_puts(&sb, " + i");
    run_on(sc, row, sb.data, got, sizeof got);
    CHECK_AT(strcmp(got, "int 7000") == 0, __LINE__, "999 additions: %s", got);
    sb_puts(&sb, " + i");
    run_on(sc, row, sb.data, got, sizeof got);
    CHECK_AT(strcmp(got, "compile error: expression is too deep (more than "
                         "1000 levels) at position 3999")
                 == 0,
             __LINE__, "1000 additions: %s", got);
    /* Constants fold, so a long constant chain is not deep. */
    sb_reset(&sb);
    sb_puts(&sb, "1");
    for (i = 0; i < 5000; i++)
        sb_puts(&sb, " + 1");
    run_on(sc, row, sb.data, got, sizeof got);
    CHECK_AT(strcmp(got, "int 5001") == 0, __LINE__, "5000 constants: %s", got);
    sb_free(&sb);
}

/* Evaluation details: arena use, borrowing, reuse of one compiled expr. */
static void
test_evaluation(void)
{
    sh_err   err;
    sh_value v, r[N_COLS];
    expr    *e;
    arena   *a = arena_new(1024);
    int      rc;

    memcpy(r, row, sizeof r);
    /* substr borrows the row's bytes; upper makes new ones in the arena. */
    e = expr_compile("substr(s, 2)", sc, PATH, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(expr_eval(e, r, a, &v, &err), 0);
    CU_ASSERT_PTR_EQUAL(v.u.s.ptr, r[11].u.s.ptr + 1);
    expr_free(e);
    e = expr_compile("upper(s)", sc, PATH, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(expr_eval(e, r, a, &v, &err), 0);
    CU_ASSERT_PTR_NOT_EQUAL(v.u.s.ptr, r[11].u.s.ptr);
    expr_free(e);

    /* One compiled expression, many rows. */
    e = expr_compile("i * 2 + coalesce(n, 0)", sc, PATH, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    for (rc = -5; rc <= 5; rc++) {
        r[0] = sh_int(rc);
        r[4] = rc % 2 ? sh_int(100) : sh_null();
        CU_ASSERT_EQUAL(expr_eval(e, r, a, &v, &err), 0);
        CU_ASSERT_EQUAL(v.type, SH_INT);
        CU_ASSERT_EQUAL(v.u.i, rc * 2 + (rc % 2 ? 100 : 0));
    }
    /* A null in a column of any type. */
    r[0] = sh_null();
    CU_ASSERT_EQUAL(expr_eval(e, r, a, &v, &err), 0);
    CU_ASSERT_EQUAL(v.type, SH_NULL);
    expr_free(e);

    /* An int value in a float column is taken as a float. */
    memcpy(r, row, sizeof r);
    r[7] = sh_int(3);
    e = expr_compile("f / 2", sc, PATH, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(expr_eval(e, r, a, &v, &err), 0);
    CU_ASSERT(v.type == SH_FLOAT && v.u.f == 1.5);
    expr_free(e);

    /* A value of the wrong type in a column is reported, not misread. */
    r[0] = sh_str("7", 1);
    e = expr_compile("i + 1", sc, PATH, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    rc = expr_eval(e, r, a, &v, &err);
    CU_ASSERT_EQUAL(rc, SH_EDATA);
    CU_ASSERT_STRING_EQUAL(err.msg, "column 'i' holds a string value but "
                                    "its type is int");
    expr_free(e);

    /* Compile errors with a NULL err record do not crash. */
    CU_ASSERT_PTR_NULL(expr_compile("1 +", sc, PATH, NULL));
    /* The path is copied into the error record, also at evaluation. */
    e = expr_compile("big + i", sc, "steps[3].expr", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(expr_eval(e, row, a, &v, &err), SH_ERANGE);
    CU_ASSERT_EQUAL(err.code, SH_ERANGE);
    CU_ASSERT_STRING_EQUAL(err.path, "steps[3].expr");
    expr_free(e);
    CU_ASSERT_PTR_NULL(expr_compile("zz", sc, "steps[4].where", &err));
    CU_ASSERT_EQUAL(err.code, SH_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.path, "steps[4].where");
    expr_free(NULL);
    arena_free(a);
}

/*
 * Random token soup: whatever the text, compiling gives an expression or
 * an SH_EINVAL error with a message, and evaluating gives a value of the
 * static type, null, or an SH_ERANGE error. (Run under ASan and valgrind,
 * this also checks memory safety.)
 */
static void
test_random_input(void)
{
    static const char *pieces[] = {
        "i",
        "f",
        "s",
        "t",
        "n",
        "nf",
        "ns",
        "nb",
        "big",
        "minc",
        "(",
        ")",
        ",",
        "+",
        "-",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        ">=",
        "and",
        "or",
        "not",
        "lower(",
        "substr(",
        "concat(",
        "round(",
        "if(",
        "coalesce(",
        "hash(",
        "int(",
        "str(",
        "float(",
        "is_null(",
        "length(",
        "1",
        "0",
        "2.5",
        "'x'",
        "'h\xc3\xa9'",
        "null",
        "true",
        "\"odd name\"",
        " ",
        "#",
        "'",
        "\"",
        "9223372036854775807",
        "=",
        "1e",
        ".5",
        "\xc3\xa9",
    };
    uint64_t x = 0x2545F4914F6CDD1DULL;
    char     src[256], got[1400];
    size_t   len, np = sizeof pieces / sizeof pieces[0];
    int      iter, bad = 0, compiled = 0;

    for (iter = 0; iter < 20000 && bad < 5; iter++) {
        src[0] = '\0';
        len = 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (int k = (int)(x % 12) + 1; k > 0; k--) {
            const char *piece;

            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            piece = pieces[x % np];
            if (len + strlen(piece) + 1 >= sizeof src)
                break;
            memcpy(src + len, piece, strlen(piece) + 1);
            len += strlen(piece);
        }
        run_on(sc, row, src, got, sizeof got);
        if (strncmp(got, "compile error: ", 15) == 0 && strlen(got) > 15)
            continue;
        compiled++;
        if (strncmp(got, "bad error record", 16) == 0
            || strncmp(got, "static type", 11) == 0
            || (strchr(got, ':') && strncmp(got, "out_of_range: ", 14) != 0
                && strncmp(got, "string", 6) != 0)) {
            CHECK_AT(0, __LINE__, "%s  =>  %s", src, got);
            bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CHECK_AT(compiled > 100, __LINE__,
             "only %d of the random texts "
             "compiled: the generator tests too little",
             compiled);
}

/* A NULL schema is a schema without columns. */
static void
test_no_schema(void)
{
    sh_err   err;
    sh_value v;
    expr    *e = expr_compile("length('abc') + 1", NULL, PATH, &err);

    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(expr_eval(e, NULL, ar, &v, &err), 0);
    CU_ASSERT(v.type == SH_INT && v.u.i == 4);
    expr_free(e);
    CU_ASSERT_PTR_NULL(expr_compile("x", NULL, PATH, &err));
    CU_ASSERT_STRING_EQUAL(err.msg, "unknown column 'x' at position 1; the "
                                    "input has no columns");
}

/*
 * The names of the columns expr_columns marks for 'src' (in schema order,
 * joined by ','), which must be 'expect'; it must also return 'n_new'.
 */
static void
check_columns(unsigned line, const char *src, const char *expect, size_t n_new)
{
    unsigned char used[N_COLS];
    char          got[512] = "";
    size_t        i, n;
    sh_err        err;
    expr         *e = expr_compile(src, sc, PATH, &err);

    if (e == NULL) {
        CHECK_AT(0, line, "%s: does not compile: %s", src, err.msg);
        return;
    }
    memset(used, 0, sizeof used);
    n = expr_columns(e, used, N_COLS);
    for (i = 0; i < N_COLS; i++) {
        if (used[i] == 1) {
            strcat(got, *got ? "," : "");
            strcat(got, cols[i].name);
        } else if (used[i] != 0) {
            CHECK_AT(0, line, "%s: used[%zu] is %d", src, i, used[i]);
        }
    }
    CHECK_AT(strcmp(got, expect) == 0, line,
             "%s: columns \"%s\", expected \"%s\"", src, got, expect);
    CHECK_AT(n == n_new, line, "%s: returned %zu, expected %zu", src, n, n_new);
    expr_free(e);
}

/* expr_columns walks the compiled tree to the columns it reads. */
static void
test_columns_used(void)
{
    check_columns(__LINE__, "i + j", "i,j", 2);
    check_columns(__LINE__, "i * i + i - i", "i", 1);
    check_columns(__LINE__, "length(upper(concat(s, str(abs(k))))) > z",
                  "k,z,s", 3);
    check_columns(__LINE__, "round(sqrt(float(j)), int(num))", "j,num", 2);
    check_columns(__LINE__, "if(t, i, f)", "i,f,t", 3);
    check_columns(__LINE__, "if(i > 0, s, if(fl, e, ns))", "i,s,ns,e,fl", 5);
    check_columns(__LINE__, "coalesce(n, j, 3)", "j,n", 2);
    check_columns(__LINE__, "coalesce(nf, f, i, 1.5)", "i,f,nf", 3);
    check_columns(__LINE__, "not (t and fl) or is_null(nb)", "t,fl,nb", 3);
    check_columns(__LINE__, "\"odd name\" == 'x' or \"quote\"\"d\" > 1",
                  "odd name,quote\"d", 2);
    check_columns(__LINE__, "hash(i) % 10 == hash(i) % 10", "i", 1);
    check_columns(__LINE__, "substr(s, j, length(s))", "j,s", 2);
    /* constants read no column */
    check_columns(__LINE__, "1 + 2 * 3", "", 0);
    check_columns(__LINE__, "'abc'", "", 0);
    check_columns(__LINE__, "null", "", 0);
    check_columns(__LINE__, "upper('x') == 'X'", "", 0);
    /* what constant folding removes is not read */
    check_columns(__LINE__, "i + null", "", 0);
    check_columns(__LINE__, "if(false, i, j)", "j", 1);
    check_columns(__LINE__, "if(true, i, j)", "i", 1);
    check_columns(__LINE__, "coalesce(null, null)", "", 0);
    check_columns(__LINE__, "nullcol", "", 0);
}

/*
 * expr_columns adds to the marks already set and returns only the new
 * ones; it marks no index at or past 'ncols'.
 */
static void
test_columns_used_marks(void)
{
    unsigned char used[N_COLS];
    sh_err        err;
    expr         *e = expr_compile("i + z + j", sc, PATH, &err);
    expr         *c = expr_compile("3", sc, PATH, &err);
    size_t        i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memset(used, 0, sizeof used);
    used[0] = 1;
    used[5] = 1;
    CU_ASSERT_EQUAL(expr_columns(e, used, N_COLS), 2);
    for (i = 0; i < N_COLS; i++)
        CU_ASSERT_EQUAL(used[i], i == 0 || i == 1 || i == 3 || i == 5);
    CU_ASSERT_EQUAL(expr_columns(e, used, N_COLS), 0);
    CU_ASSERT_EQUAL(expr_columns(c, used, N_COLS), 0);

    memset(used, 0, sizeof used);
    CU_ASSERT_EQUAL(expr_columns(e, used, 2), 2); /* i and j; z is 3 */
    for (i = 0; i < N_COLS; i++)
        CU_ASSERT_EQUAL(used[i], i < 2);
    expr_free(e);
    expr_free(c);
}

/*
 * Where folding removes nothing, expr_columns marks exactly the columns
 * without which the text no longer compiles (what the executor found by
 * recompiling with each column hidden).
 */
static void
test_columns_used_as_hiding(void)
{
    static const char *srcs[] = {
        "i + j * k > z",
        "contains(lower(s), 'x') and not fl",
        "if(t, coalesce(n, i), j) + abs(k)",
        "coalesce(ns, e, concat(s, \"odd name\"))",
        "round(f * g, 2) >= float(num) or is_null(nb)",
        "\"h\xc3\xa9llo w\xc3\xb6rld\" == str(\"and\" + x53)",
    };
    size_t i, k;

    for (i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        unsigned char used[N_COLS] = {0};
        sh_err        err;
        schema       *copy = schema_copy(sc);
        expr         *e = expr_compile(srcs[i], sc, PATH, &err);

        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        expr_columns(e, used, N_COLS);
        expr_free(e);
        for (k = 0; k < N_COLS; k++) {
            char *saved = copy->names[k];
            char  hidden[] = "\x01 hidden";
            expr *h;
            int   needed;

            copy->names[k] = hidden;
            h = expr_compile(srcs[i], copy, PATH, &err);
            copy->names[k] = saved;
            needed = h == NULL;
            expr_free(h);
            CHECK_AT(used[k] == needed, __LINE__,
                     "%s: column %s marked %d, needed %d", srcs[i],
                     cols[k].name, used[k], needed);
        }
        schema_free(copy);
    }
}

void
test_expr_register(void)
{
    CU_pSuite s = CU_add_suite("expr", suite_init, suite_clean);

    CU_add_test(s, "literals", test_literals);
    CU_add_test(s, "columns and quoted names", test_columns);
    CU_add_test(s, "arithmetic", test_arithmetic);
    CU_add_test(s, "division and modulo", test_division_modulo);
    CU_add_test(s, "integer overflow", test_overflow);
    CU_add_test(s, "comparisons", test_comparisons);
    CU_add_test(s, "comparisons with null", test_null_comparisons);
    CU_add_test(s, "three-valued logic", test_three_valued_logic);
    CU_add_test(s, "null propagation", test_null_propagation);
    CU_add_test(s, "string functions", test_string_functions);
    CU_add_test(s, "numeric functions", test_numeric_functions);
    CU_add_test(s, "int() and round()", test_int_and_round);
    CU_add_test(s, "coalesce, is_null, if", test_other_functions);
    CU_add_test(s, "hash", test_hash);
    CU_add_test(s, "static types", test_static_types);
    CU_add_test(s, "syntax errors", test_syntax_errors);
    CU_add_test(s, "type errors", test_type_errors);
    CU_add_test(s, "messages on other schemas", test_small_schema_messages);
    CU_add_test(s, "nesting limits", test_limits);
    CU_add_test(s, "evaluation", test_evaluation);
    CU_add_test(s, "no schema", test_no_schema);
    CU_add_test(s, "random input", test_random_input);
    CU_add_test(s, "columns used", test_columns_used);
    CU_add_test(s, "columns used: marks", test_columns_used_marks);
    CU_add_test(s, "columns used: as hiding them", test_columns_used_as_hiding);
}
