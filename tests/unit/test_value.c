/*
 * test_value.c - unit tests of executor/value: type names, schemas, parsing
 * input fields (accept and reject tables per type), the shortest round-trip
 * formatting of floats, value_format and value_cmp.
 *
 * Every check states what it ran and what it got, so a failure says why.
 */
#include <CUnit/CUnit.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../executor/value.h"
#include "test_helpers.h"
#include "test_suites.h"

/* Parses 'text' as 't' and compares the outcome with 'expect' ("reject"
 * when value_parse must fail). */
static void
parse_case(sh_type t, const char *text, const char *expect, unsigned line)
{
    sh_value v;
    char     got[256];

    if (value_parse(t, text, strlen(text), &v) != 0)
        snprintf(got, sizeof got, "reject");
    else
        th_describe_value(&v, got, sizeof got);
    CHECK_AT(strcmp(got, expect) == 0, line,
             "value_parse(%s, \"%s\") gave %s, expected %s", sh_type_name(t),
             text, got, expect);
}
#define PARSE(t, text, expect) parse_case(t, text, expect, __LINE__)

static void
test_type_names(void)
{
    static const char   *names[] = {"int", "float", "string", "bool"};
    static const sh_type types[] = {SH_INT, SH_FLOAT, SH_STRING, SH_BOOL};
    sh_type              t;
    size_t               i;

    for (i = 0; i < 4; i++) {
        t = SH_NULL;
        CHECK_AT(sh_type_parse(names[i], &t) == 0 && t == types[i], __LINE__,
                 "sh_type_parse(\"%s\") gave %d", names[i], (int)t);
        CHECK_AT(strcmp(sh_type_name(types[i]), names[i]) == 0, __LINE__,
                 "sh_type_name(%d) is \"%s\", expected \"%s\"", (int)types[i],
                 sh_type_name(types[i]), names[i]);
    }
    CU_ASSERT_STRING_EQUAL(sh_type_name(SH_NULL), "null");
    CU_ASSERT_EQUAL(sh_type_parse("integer", &t), -1);
    CU_ASSERT_EQUAL(sh_type_parse("INT", &t), -1);
    CU_ASSERT_EQUAL(sh_type_parse("", &t), -1);
    CU_ASSERT_EQUAL(sh_type_parse("null", &t), -1);
}

static void
test_schema(void)
{
    schema *s = schema_new(), *c;
    char    name[] = "year";

    CU_ASSERT_EQUAL(s->n, 0);
    CU_ASSERT_EQUAL(schema_add(s, "id", SH_INT), 0);
    CU_ASSERT_EQUAL(schema_add(s, name, SH_FLOAT), 1);
    CU_ASSERT_EQUAL(schema_add(s, "odd \"name\"", SH_STRING), 2);
    name[0] = 'X'; /* the schema copied it */
    CU_ASSERT_EQUAL(schema_find(s, "year"), 1);
    CU_ASSERT_EQUAL(schema_find(s, "Year"), -1);
    CU_ASSERT_EQUAL(schema_find(s, "odd \"name\""), 2);
    CU_ASSERT_EQUAL(schema_find(s, "nope"), -1);
    c = schema_copy(s);
    schema_free(s);
    CU_ASSERT_EQUAL(c->n, 3);
    CU_ASSERT_STRING_EQUAL(c->names[1], "year");
    CU_ASSERT_EQUAL(c->types[1], SH_FLOAT);
    CU_ASSERT_EQUAL(schema_find(c, "id"), 0);
    schema_free(c);
    schema_free(NULL);
}

static void
test_parse_int(void)
{
    PARSE(SH_INT, "0", "int 0");
    PARSE(SH_INT, "-0", "int 0");
    PARSE(SH_INT, "+5", "int 5");
    PARSE(SH_INT, "-17", "int -17");
    PARSE(SH_INT, "007", "int 7");
    PARSE(SH_INT, "9223372036854775807", "int 9223372036854775807");
    PARSE(SH_INT, "-9223372036854775808", "int -9223372036854775808");
    PARSE(SH_INT, "", "null");
    PARSE(SH_INT, "9223372036854775808", "reject");
    PARSE(SH_INT, "-9223372036854775809", "reject");
    PARSE(SH_INT, "99999999999999999999999", "reject");
    PARSE(SH_INT, " 1", "reject");
    PARSE(SH_INT, "1 ", "reject");
    PARSE(SH_INT, "1.0", "reject");
    PARSE(SH_INT, "1e3", "reject");
    PARSE(SH_INT, "0x10", "reject");
    PARSE(SH_INT, "+", "reject");
    PARSE(SH_INT, "-", "reject");
    PARSE(SH_INT, "--1", "reject");
    PARSE(SH_INT, "abc", "reject");
    PARSE(SH_INT, "1,000", "reject");
}

static void
test_parse_float(void)
{
    char     longtext[300];
    sh_value v;

    PARSE(SH_FLOAT, "1.5", "float 1.5");
    PARSE(SH_FLOAT, "-1.5", "float -1.5");
    PARSE(SH_FLOAT, "+2", "float 2");
    PARSE(SH_FLOAT, ".5", "float 0.5");
    PARSE(SH_FLOAT, "5.", "float 5");
    PARSE(SH_FLOAT, "1e3", "float 1000");
    PARSE(SH_FLOAT, "1E-3", "float 0.001");
    PARSE(SH_FLOAT, "2.5e+2", "float 250");
    PARSE(SH_FLOAT, "inf", "float inf");
    PARSE(SH_FLOAT, "-INF", "float -inf");
    PARSE(SH_FLOAT, "Infinity", "float inf");
    PARSE(SH_FLOAT, "NaN", "float nan");
    PARSE(SH_FLOAT, "-nan", "float nan");
    PARSE(SH_FLOAT, "1e400", "float inf");
    PARSE(SH_FLOAT, "-0", "float -0");
    PARSE(SH_FLOAT, "", "null");
    PARSE(SH_FLOAT, "0x1p3", "reject");
    PARSE(SH_FLOAT, "0x10", "reject");
    PARSE(SH_FLOAT, " 1.5", "reject");
    PARSE(SH_FLOAT, "1.5 ", "reject");
    PARSE(SH_FLOAT, ".", "reject");
    PARSE(SH_FLOAT, "e5", "reject");
    PARSE(SH_FLOAT, "1e", "reject");
    PARSE(SH_FLOAT, "1e+", "reject");
    PARSE(SH_FLOAT, "1.5.5", "reject");
    PARSE(SH_FLOAT, "1,5", "reject");
    PARSE(SH_FLOAT, "--1", "reject");
    PARSE(SH_FLOAT, "nan(1)", "reject");
    PARSE(SH_FLOAT, "infx", "reject");
    PARSE(SH_FLOAT, "in", "reject");
    PARSE(SH_FLOAT, "abc", "reject");

    /* Longer than the stack buffer: still parsed, exactly. */
    memset(longtext, '0', sizeof longtext);
    longtext[0] = '0';
    longtext[1] = '.';
    longtext[250] = '5';
    CU_ASSERT_EQUAL_FATAL(value_parse(SH_FLOAT, longtext, 251, &v), 0);
    CU_ASSERT_EQUAL(v.type, SH_FLOAT);
    CU_ASSERT(v.u.f == 5e-249);
    /* Only 'n' bytes are read: what follows does not matter. */
    CU_ASSERT_EQUAL_FATAL(value_parse(SH_FLOAT, "1.25e1x", 4, &v), 0);
    CU_ASSERT(v.u.f == 1.25);
}

static void
test_parse_bool_string(void)
{
    static const char *yes[] = {"true", "TRUE", "True", "t",
                                "T",    "yes",  "YES",  "1"};
    static const char *no[] = {"false", "FALSE", "f", "F", "no", "No", "0"};
    static const char *bad[] = {"tru", "truee", " true", "true ", "2", "y",
                                "n",   "on",    "off",   "-1",    "01"};
    const char        *text = "hello, world";
    sh_value           v;
    size_t             i;

    for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
        PARSE(SH_BOOL, yes[i], "bool true");
    for (i = 0; i < sizeof no / sizeof no[0]; i++)
        PARSE(SH_BOOL, no[i], "bool false");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        PARSE(SH_BOOL, bad[i], "reject");
    PARSE(SH_BOOL, "", "null");

    PARSE(SH_STRING, "héllo", "string 'héllo'");
    PARSE(SH_STRING, " spaced ", "string ' spaced '");
    PARSE(SH_STRING, "", "null");
    /* A string borrows the field's bytes. */
    CU_ASSERT_EQUAL_FATAL(value_parse(SH_STRING, text, 5, &v), 0);
    CU_ASSERT_PTR_EQUAL(v.u.s.ptr, text);
    CU_ASSERT_EQUAL(v.u.s.len, 5);
    /* SH_NULL is not a type a field can be parsed as, except empty. */
    CU_ASSERT_EQUAL(value_parse(SH_NULL, "x", 1, &v), -1);
}

/* format_double(d) must give 'expect' and read back to d. */
static void
format_case(double d, const char *expect, unsigned line)
{
    char   buf[32];
    size_t n = format_double(d, buf);
    double back = strtod(buf, NULL);
    int    same = isnan(d) ? isnan(back)
                           : back == d && signbit(back) == signbit(d);

    CHECK_AT(strcmp(buf, expect) == 0 && n == strlen(buf) && same, line,
             "format_double(%.17g) gave \"%s\" (length %zu), expected "
             "\"%s\"; strtod gives %.17g",
             d, buf, n, expect, back);
}
#define FORMAT(d, expect) format_case(d, expect, __LINE__)

static void
test_format_double(void)
{
    volatile double zero = 0.0;

    FORMAT(0.1, "0.1");
    FORMAT(1 / 3., "0.3333333333333333");
    FORMAT(2 / 3., "0.6666666666666666");
    FORMAT(0.1 + 0.2, "0.30000000000000004");
    FORMAT(1e300, "1e+300");
    FORMAT(5e-324, "5e-324");
    FORMAT(-5e-324, "-5e-324");
    FORMAT(2.2250738585072014e-308, "2.2250738585072014e-308");
    FORMAT(DBL_MAX, "1.7976931348623157e+308");
    FORMAT(-0.0, "-0");
    FORMAT(0.0, "0");
    FORMAT(3.0, "3");
    FORMAT(-2.5, "-2.5");
    FORMAT(1e16, "1e+16");
    FORMAT(123456789.0, "123456789");
    FORMAT(-42.0, "-42");
    FORMAT(999999999999999.0, "999999999999999");
    FORMAT(1e15, "1e+15");
    FORMAT(1234567890123456.0, "1234567890123456");
    FORMAT(0.5, "0.5");
    FORMAT(100.25, "100.25");
    FORMAT(1e-5, "1e-05");
    FORMAT(0.0001, "0.0001");
    FORMAT(9007199254740993.0, "9007199254740992");
    FORMAT(9223372036854775808.0, "9.223372036854776e+18");
    FORMAT(zero / zero, "nan");
    FORMAT(1 / zero, "inf");
    FORMAT(-1 / zero, "-inf");
}

/* Significant digits of a %g text ("1.25e-05" has 3). */
static int
sig_digits(const char *s)
{
    int n = 0, seen = 0, trailing = 0;

    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (*s != '0')
            seen = 1;
        if (!seen)
            continue;
        n++;
        trailing = *s == '0' ? trailing + 1 : 0;
    }
    return n - trailing;
}

/*
 * For many random doubles (random bit patterns: all magnitudes,
 * subnormals included), the text reads back to the same double and no
 * text with one digit fewer does: it is the shortest.
 */
static void
test_format_double_random(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL, bits;
    double   d, back;
    char     buf[32], shorter[400];
    int      i, k, bad = 0;

    for (i = 0; i < 20000 && bad < 5; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bits = i % 4 == 0 ? x >> 12 : x; /* a quarter are subnormals */
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            continue;
        format_double(d, buf);
        back = strtod(buf, NULL);
        k = sig_digits(buf);
        if (back != d) {
            CHECK_AT(0, __LINE__,
                     "format_double(%a) gave \"%s\" which "
                     "reads back as %a",
                     d, buf, back);
            bad++;
            continue;
        }
        if (k > 1) {
            snprintf(shorter, sizeof shorter, "%.*g", k - 1, d);
            if (strtod(shorter, NULL) == d) {
                CHECK_AT(0, __LINE__,
                         "format_double(%a) gave \"%s\" but "
                         "\"%s\" is shorter and reads back",
                         d, buf, shorter);
                bad++;
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* value_format(v) must append 'expect'. */
static void
value_format_case(sh_value v, const char *expect, unsigned line)
{
    strbuf sb = {0};

    sb_puts(&sb, "<");
    value_format(&v, &sb);
    sb_puts(&sb, ">");
    CHECK_AT(strlen(sb.data) == strlen(expect) + 2
                 && strncmp(sb.data + 1, expect, strlen(expect)) == 0,
             line, "value_format gave %s, expected <%s>", sb.data, expect);
    sb_free(&sb);
}
#define VFORMAT(v, expect) value_format_case(v, expect, __LINE__)

static void
test_value_format(void)
{
    VFORMAT(sh_int(0), "0");
    VFORMAT(sh_int(-42), "-42");
    VFORMAT(sh_int(INT64_MAX), "9223372036854775807");
    VFORMAT(sh_int(INT64_MIN), "-9223372036854775808");
    VFORMAT(sh_float(0.1), "0.1");
    VFORMAT(sh_float(3.0), "3");
    VFORMAT(sh_float(-INFINITY), "-inf");
    VFORMAT(sh_bool(1), "true");
    VFORMAT(sh_bool(0), "false");
    VFORMAT(sh_str("a,\"b\"\n", 6), "a,\"b\"\n");
    VFORMAT(sh_str("xyz", 0), "");
    VFORMAT(sh_null(), "");
}

/* value_cmp(a, b) must have the sign of 'expect', and value_cmp(b, a)
 * the opposite one. */
static void
cmp_case(sh_value a, sh_value b, int expect, unsigned line)
{
    char da[64], db[64];
    int  c = value_cmp(&a, &b), r = value_cmp(&b, &a);
    int  sc = (c > 0) - (c < 0), sr = (r > 0) - (r < 0);

    th_describe_value(&a, da, sizeof da);
    th_describe_value(&b, db, sizeof db);
    CHECK_AT(sc == expect && sr == -expect, line,
             "value_cmp(%s, %s) = %d and reversed %d, expected sign %d", da, db,
             c, r, expect);
}
#define CMP(a, b, expect) cmp_case(a, b, expect, __LINE__)

static void
test_value_cmp(void)
{
    CMP(sh_int(1), sh_int(2), -1);
    CMP(sh_int(5), sh_int(5), 0);
    CMP(sh_int(INT64_MIN), sh_int(INT64_MAX), -1);
    CMP(sh_float(1.5), sh_float(-1.5), 1);
    CMP(sh_float(0.0), sh_float(-0.0), 0);
    CMP(sh_int(1), sh_float(1.0), 0);
    CMP(sh_int(1), sh_float(1.5), -1);
    CMP(sh_int(-1), sh_float(-1.5), 1);
    CMP(sh_int(2), sh_float(1.5), 1);
    /* Exact, not through a rounding to double: 2^53 + 1 > 2^53. */
    CMP(sh_int(9007199254740993), sh_float(9007199254740992.0), 1);
    CMP(sh_int(9007199254740992), sh_float(9007199254740992.0), 0);
    CMP(sh_int(INT64_MAX), sh_float(9223372036854775808.0), -1);
    CMP(sh_int(INT64_MIN), sh_float(-9223372036854775808.0), 0);
    CMP(sh_int(INT64_MIN), sh_float(-1e19), 1);
    CMP(sh_int(0), sh_float(INFINITY), -1);
    CMP(sh_int(0), sh_float(-INFINITY), 1);
    /* NaN: greater than every number, equal to itself. */
    CMP(sh_float(NAN), sh_float(INFINITY), 1);
    CMP(sh_float(NAN), sh_float(NAN), 0);
    CMP(sh_int(INT64_MAX), sh_float(NAN), -1);
    CMP(sh_str("a", 1), sh_str("b", 1), -1);
    CMP(sh_str("ab", 2), sh_str("a", 1), 1);
    CMP(sh_str("", 0), sh_str("a", 1), -1);
    CMP(sh_str("abc", 3), sh_str("abc", 3), 0);
    CMP(sh_str("a\0b", 3), sh_str("a\0c", 3), -1);
    /* Bytes compare unsigned: UTF-8 'é' (0xC3 0xA9) is after 'z'. */
    CMP(sh_str("\xc3\xa9", 2), sh_str("z", 1), 1);
    CMP(sh_bool(0), sh_bool(1), -1);
    CMP(sh_bool(1), sh_bool(1), 0);
}

void
test_value_register(void)
{
    CU_pSuite s = CU_add_suite("value", NULL, NULL);

    CU_add_test(s, "type names", test_type_names);
    CU_add_test(s, "schema", test_schema);
    CU_add_test(s, "parse int", test_parse_int);
    CU_add_test(s, "parse float", test_parse_float);
    CU_add_test(s, "parse bool and string", test_parse_bool_string);
    CU_add_test(s, "format_double", test_format_double);
    CU_add_test(s, "format_double random round trips",
                test_format_double_random);
    CU_add_test(s, "value_format", test_value_format);
    CU_add_test(s, "value_cmp", test_value_cmp);
}
