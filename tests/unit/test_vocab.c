/*
 * test_vocab.c - unit tests of issue 11's vocabulary: the date and
 * timestamp types (executor/datetime.c and value.c: parsing, ISO 8601
 * output, ordering, leap years, month-end clamping, dates before 1970, ISO
 * weeks at year boundaries), the date functions, the regular expressions
 * (executor/regex.c: compile errors with their position, the match limit
 * on a pathological pattern) and the new string functions, through the
 * expression compiler and evaluator.
 *
 * Checks go through V(src, expect): compile 'src' against a small schema,
 * evaluate it on one row, and compare "TYPE TEXT" (TEXT as value_format
 * writes it), "null", "compile error: ..." or "CODE: ..." with 'expect'.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../executor/datetime.h"
#include "../../executor/expr.h"
#include "../../executor/regex.h"
#include "../../executor/value.h"
#include "test_suites.h"

#define PATH "steps[0].where"

static schema  *sc;
static sh_value row[6];
static arena   *ar;
static char     long_a[64];

static int
suite_init(void)
{
    int64_t v;

    sc = schema_new();
    schema_add(sc, "d", SH_DATE);
    schema_add(sc, "ts", SH_TIMESTAMP);
    schema_add(sc, "s", SH_STRING);
    schema_add(sc, "n", SH_INT);
    schema_add(sc, "nd", SH_DATE);
    schema_add(sc, "aa", SH_STRING);
    dt_parse_date("2024-01-31", 10, &v);
    row[0] = sh_date(v);
    dt_parse_timestamp("2024-02-29T13:45:30.250000Z", 27, &v);
    row[1] = sh_timestamp(v);
    row[2] = sh_str("h\xc3\xa9llo world", 12);
    row[3] = sh_int(3);
    row[4] = sh_null();
    memset(long_a, 'a', 40);
    long_a[40] = 'b';
    row[5] = sh_str(long_a, 41);
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

/* Describes the outcome of compiling and evaluating 'src'. */
static void
run(const char *src, char *buf, size_t size)
{
    sh_err   err;
    expr    *e;
    sh_value v;
    strbuf   sb = {0};
    char     msg[sizeof err.msg];
    int      rc;

    sh_err_clear(&err);
    e = expr_compile(src, sc, PATH, &err);
    if (e == NULL) {
        memcpy(msg, err.msg, sizeof msg);
        snprintf(buf, size, "compile error: %.1000s", msg);
        return;
    }
    arena_reset(ar);
    rc = expr_eval(e, row, ar, &v, &err);
    if (rc != 0) {
        memcpy(msg, err.msg, sizeof msg);
        snprintf(buf, size, "%s: %.1000s", sh_err_name(rc), msg);
    } else if (v.type == SH_NULL) {
        snprintf(buf, size, "null");
    } else if (v.type != expr_type(e)) {
        snprintf(buf, size, "static type %s but a %s value",
                 sh_type_name(expr_type(e)), sh_type_name(v.type));
    } else {
        value_format(&v, &sb);
        snprintf(buf, size, "%s %s", sh_type_name(v.type),
                 sb.data ? sb.data : "");
    }
    sb_free(&sb);
    expr_free(e);
}

static void
check(const char *src, const char *expect, unsigned line)
{
    char got[2048];

    run(src, got, sizeof got);
    CU_assertImplementation(strcmp(got, expect) == 0, line, src, __FILE__, "",
                            CU_FALSE);
    if (strcmp(got, expect) != 0)
        fprintf(stderr, "\n  line %u: %s  =>  %s  (expected %s)\n", line, src,
                got, expect);
}
#define V(src, expect) check(src, expect, __LINE__)

/* A substring check for long messages. */
static void
check_has(const char *src, const char *part, unsigned line)
{
    char got[2048];

    run(src, got, sizeof got);
    CU_assertImplementation(strstr(got, part) != NULL, line, src, __FILE__, "",
                            CU_FALSE);
    if (strstr(got, part) == NULL)
        fprintf(stderr, "\n  line %u: %s  =>  %s  (expected to contain %s)\n",
                line, src, got, part);
}
#define VH(src, part) check_has(src, part, __LINE__)

/* Civil dates and day numbers round-trip over a wide range. */
static void
test_calendar(void)
{
    int64_t d, y;
    int     m, dd, bad = 0;

    CU_ASSERT_EQUAL(dt_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(dt_days_from_civil(1969, 12, 31), -1);
    CU_ASSERT_EQUAL(dt_days_from_civil(2000, 3, 1), 11017);
    CU_ASSERT_EQUAL(dt_days_from_civil(1900, 1, 1), -25567);
    for (d = -800000; d <= 800000; d += 7) {
        dt_civil_from_days(d, &y, &m, &dd);
        if (dt_days_from_civil(y, m, dd) != d)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(dt_floordiv(-1, 7), -1);
    CU_ASSERT_EQUAL(dt_floordiv(-7, 7), -1);
    CU_ASSERT_EQUAL(dt_floordiv(6, 7), 0);
}

/* value_parse and value_format of the two types. */
static void
test_parse_format(void)
{
    static const struct {
        sh_type     t;
        const char *in, *out; /* out NULL: must not parse */
    } cases[] = {
        {SH_DATE, "2024-02-29", "2024-02-29"},
        {SH_DATE, "2023-02-29", NULL},
        {SH_DATE, "1900-02-29", NULL},
        {SH_DATE, "2000-02-29", "2000-02-29"},
        {SH_DATE, "1969-12-31", "1969-12-31"},
        {SH_DATE, "0001-01-01", "0001-01-01"},
        {SH_DATE, "2024-1-01", NULL},
        {SH_DATE, "2024-13-01", NULL},
        {SH_DATE, "2024-04-31", NULL},
        {SH_DATE, "2024-01-01T00:00:00", NULL},
        {SH_DATE, " 2024-01-01", NULL},
        {SH_TIMESTAMP, "2024-01-31T12:34:56", "2024-01-31T12:34:56Z"},
        {SH_TIMESTAMP, "2024-01-31 12:34:56.123456",
         "2024-01-31T12:34:56.123456Z"},
        {SH_TIMESTAMP, "2024-01-31T12:34:56.1", "2024-01-31T12:34:56.100000Z"},
        {SH_TIMESTAMP, "2024-01-31T12:34:56.123456789Z",
         "2024-01-31T12:34:56.123456Z"},
        {SH_TIMESTAMP, "2024-01-31T12:34", "2024-01-31T12:34:00Z"},
        {SH_TIMESTAMP, "2024-01-31", "2024-01-31T00:00:00Z"},
        {SH_TIMESTAMP, "2024-01-31T01:00:00+02:00", "2024-01-30T23:00:00Z"},
        {SH_TIMESTAMP, "2024-01-31T23:30:00-0130", "2024-02-01T01:00:00Z"},
        {SH_TIMESTAMP, "2024-01-31T23:30:00-01", "2024-02-01T00:30:00Z"},
        {SH_TIMESTAMP, "1969-12-31T23:59:59.999999Z",
         "1969-12-31T23:59:59.999999Z"},
        {SH_TIMESTAMP, "1960-06-15T06:07:08Z", "1960-06-15T06:07:08Z"},
        {SH_TIMESTAMP, "2024-01-31T24:00:00", NULL},
        {SH_TIMESTAMP, "2024-01-31T12:60:00", NULL},
        {SH_TIMESTAMP, "2024-01-31T12:00:00.", NULL},
        {SH_TIMESTAMP, "2024-01-31T12:00:00+25:00", NULL},
        {SH_TIMESTAMP, "2024-01-31X12:00:00", NULL},
        {SH_TIMESTAMP, "2024-01-31T12:00:00 ", NULL},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_value v;
        strbuf   sb = {0};
        int rc = value_parse(cases[i].t, cases[i].in, strlen(cases[i].in), &v);

        if (cases[i].out == NULL) {
            CU_ASSERT_NOT_EQUAL(rc, 0);
            if (rc == 0)
                fprintf(stderr, "\n  '%s' parsed\n", cases[i].in);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL(v.type, cases[i].t);
        value_format(&v, &sb);
        CU_ASSERT_STRING_EQUAL(sb.data, cases[i].out);
        sb_free(&sb);
    }
}

/* value_cmp: time order, a date as its midnight; type names. */
static void
test_order(void)
{
    sh_value a = sh_date(0), b = sh_date(-1), t0 = sh_timestamp(0),
             t1 = sh_timestamp(1);
    sh_type t;

    CU_ASSERT(value_cmp(&a, &b) > 0);
    CU_ASSERT(value_cmp(&b, &a) < 0);
    CU_ASSERT(value_cmp(&a, &t0) == 0);
    CU_ASSERT(value_cmp(&a, &t1) < 0);
    CU_ASSERT(value_cmp(&t1, &b) > 0);
    CU_ASSERT_STRING_EQUAL(sh_type_name(SH_DATE), "date");
    CU_ASSERT_STRING_EQUAL(sh_type_name(SH_TIMESTAMP), "timestamp");
    CU_ASSERT_EQUAL(sh_type_parse("date", &t), 0);
    CU_ASSERT_EQUAL(t, SH_DATE);
    CU_ASSERT_EQUAL(sh_type_parse("timestamp", &t), 0);
    CU_ASSERT_EQUAL(t, SH_TIMESTAMP);
}

static void
test_conversions(void)
{
    V("d", "date 2024-01-31");
    V("ts", "timestamp 2024-02-29T13:45:30.250000Z");
    V("date('2024-03-01')", "date 2024-03-01");
    V("date(' 2024-03-01 ')", "date 2024-03-01");
    V("date('2024-03-01T23:00:00-02:00')", "date 2024-03-02");
    V("date('nope')", "null");
    V("date(s)", "null");
    V("date(ts)", "date 2024-02-29");
    V("date(nd)", "null");
    V("timestamp(d)", "timestamp 2024-01-31T00:00:00Z");
    V("timestamp('2024-01-01 10:00')", "timestamp 2024-01-01T10:00:00Z");
    V("timestamp('2024-02-30')", "null");
    V("str(d)", "string 2024-01-31");
    V("concat('on ', d)", "string on 2024-01-31");
    VH("date(1)", "compile error: argument 1 of date must be a string");
}

static void
test_comparisons(void)
{
    V("d == '2024-01-31'", "bool true");
    V("d < '2024-02-01'", "bool true");
    V("d > '2024-01-31T00:00:00'", "bool false");
    V("d >= '2024-01-31T00:00:00'", "bool true");
    V("ts > d", "bool true");
    V("d < ts", "bool true");
    V("nd < d", "bool false");
    V("ts == '2024-02-29T14:45:30.25+01:00'", "bool true");
    V("d == 'tomorrow'", "compile error: 'tomorrow' is not an ISO 8601 date "
                         "or timestamp at position 3");
    VH("d == s", "compile error: expected a date or timestamp, got string");
    VH("d == 1", "compile error: expected a date or timestamp, got int");
}

static void
test_fields(void)
{
    V("year(d)", "int 2024");
    V("month(d)", "int 1");
    V("day(d)", "int 31");
    V("hour(ts)", "int 13");
    V("minute(ts)", "int 45");
    V("second(ts)", "int 30");
    V("dow(d)", "int 3");                  /* a Wednesday */
    V("dow(date('2024-01-07'))", "int 0"); /* Sunday */
    V("doy(ts)", "int 60");
    V("doy('2023-12-31')", "int 365");
    V("doy('2024-12-31')", "int 366");
    V("week('2021-01-01')", "int 53"); /* ISO: 2020-W53 */
    V("week('2024-12-30')", "int 1");  /* ISO: 2025-W01 */
    V("week('2026-01-01')", "int 1");
    V("week('2027-01-03')", "int 53");
    V("week('2024-01-01')", "int 1");
    V("year('1969-12-31T23:59:59')", "int 1969");
    V("hour('1969-12-31T23:59:59')", "int 23");
    V("dow('1969-12-31')", "int 3");
    V("day(nd)", "null");
    VH("year(s)", "compile error: argument 1 of year must be a date or "
                  "timestamp, got string");
}

static void
test_trunc_diff_add(void)
{
    V("date_trunc('month', d)", "date 2024-01-01");
    V("date_trunc('year', d)", "date 2024-01-01");
    V("date_trunc('quarter', '2024-08-15')", "timestamp 2024-07-01T00:00:00Z");
    V("date_trunc('week', d)", "date 2024-01-29");
    V("date_trunc('hour', d)", "date 2024-01-31");
    V("date_trunc('hour', ts)", "timestamp 2024-02-29T13:00:00Z");
    V("date_trunc('second', ts)", "timestamp 2024-02-29T13:45:30Z");
    V("date_trunc('DAYS', ts)", "timestamp 2024-02-29T00:00:00Z");
    V("date_trunc('minute', '1969-12-31T23:59:59.5')",
      "timestamp 1969-12-31T23:59:00Z");
    VH("date_trunc('fortnight', d)", "compile error: unknown unit "
                                     "'fortnight' for date_trunc");
    VH("date_trunc(s, d)", "must be a constant unit");

    V("date_diff('day', d, ts)", "int 29");
    V("date_diff('month', '2024-01-31', '2024-02-01')", "int 1");
    V("date_diff('year', '2023-12-31', '2024-01-01')", "int 1");
    V("date_diff('quarter', '2024-03-31', '2024-04-01')", "int 1");
    V("date_diff('week', '2024-01-07', '2024-01-08')", "int 0");
    V("date_diff('week', '2024-01-01', '2024-01-14')", "int 1");
    V("date_diff('week', '2024-01-14', '2024-01-01')", "int -1");
    V("date_diff('hour', '1969-12-31T23:59:00', '1970-01-01T00:01:00')",
      "int 1");
    V("date_diff('second', '2024-01-01T00:00:00.9', "
      "'2024-01-01T00:00:01.1')",
      "int 1");
    V("date_diff('day', '2024-01-01T23:00', '2024-01-02T01:00')", "int 1");
    V("date_diff('day', '1969-12-31', '1970-01-01')", "int 1");
    V("date_diff('minute', ts, ts)", "int 0");

    V("date_add(d, 1, 'month')", "date 2024-02-29");
    V("date_add('2023-01-31', 1, 'month')", "timestamp 2023-02-28T00:00:00Z");
    V("date_add(d, 13, 'month')", "date 2025-02-28");
    V("date_add(d, -2, 'month')", "date 2023-11-30");
    V("date_add(ts, 1, 'year')", "timestamp 2025-02-28T13:45:30.250000Z");
    V("date_add(ts, 4, 'years')", "timestamp 2028-02-29T13:45:30.250000Z");
    V("date_add(d, 1, 'quarter')", "date 2024-04-30");
    V("date_add(d, 1, 'day')", "date 2024-02-01");
    V("date_add(d, 1, 'week')", "date 2024-02-07");
    V("date_add(d, 90, 'minute')", "timestamp 2024-01-31T01:30:00Z");
    V("date_add(d, -1, 'second')", "timestamp 2024-01-30T23:59:59Z");
    V("date_add('1970-01-01', -1, 'day')", "timestamp 1969-12-31T00:00:00Z");
    V("date_add(d, n, 'day')", "date 2024-02-03");
    V("date_add(nd, 1, 'day')", "null");
    VH("date_add(d, 9223372036854775807, 'second')",
       "out_of_range: date_add at position 1");
    VH("date_add(d, -9200000000000, 'second')",
       "out_of_range: date_add at position 1");
    VH("date_add(d, 3480000, 'month')", "out_of_range: date_add");
    V("date_trunc('year', date_add(d, -9000000000000, 'second'))",
      "timestamp -283175-01-01T00:00:00Z");
    VH("date_add(d, 1.5, 'day')", "argument 2 of date_add must be an int");
}

static void
test_strftime_strptime(void)
{
    V("strftime(ts, '%Y-%m-%d %H:%M:%S.%f')",
      "string 2024-02-29 13:45:30.250000");
    V("strftime(ts, '%j %a %A %b %B %u %w %V %G %y %I%p %%')",
      "string 060 Thu Thursday Feb February 4 4 09 2024 24 01PM %");
    V("strftime(d, '%F %T %z %Z')", "string 2024-01-31 00:00:00 +0000 UTC");
    V("strftime('2021-01-01', '%G-W%V')", "string 2020-W53");
    V("strptime('2024-01-02 03:04', '%Y-%m-%d %H:%M')",
      "timestamp 2024-01-02T03:04:00Z");
    V("strptime('31/12/1999 11:59:58 PM', '%d/%m/%Y %I:%M:%S %p')",
      "timestamp 1999-12-31T23:59:58Z");
    V("strptime('Mar 5 2024', '%b %d %Y')", "timestamp 2024-03-05T00:00:00Z");
    V("strptime('2024-060', '%Y-%j')", "timestamp 2024-02-29T00:00:00Z");
    V("strptime('2024-01-02T03:04:05.5+01:00', '%Y-%m-%dT%H:%M:%S.%f%z')",
      "timestamp 2024-01-02T02:04:05.500000Z");
    V("strptime('2024-02-30', '%Y-%m-%d')", "null");
    V("strptime('2024-01-02 junk', '%Y-%m-%d')", "null");
    V("strptime(s, '%Y')", "null");
}

static void
test_regex(void)
{
    V("regexp_matches(s, 'wor')", "bool true");
    V("regexp_matches(s, '^world')", "bool false");
    V("regexp_matches(s, '^h.llo')", "bool true"); /* UTF mode: é is one */
    V("regexp_matches(s, '(?i)WORLD')", "bool true");
    V("regexp_extract(s, '([a-z]+) ([a-z]+)', 2)", "string world");
    V("regexp_extract(s, 'o w')", "string o w");
    V("regexp_extract(s, 'xyz')", "string ");
    V("regexp_extract(s, '(x)?llo', 1)", "string ");
    V("regexp_replace(s, 'o', '0')", "string h\xc3\xa9ll0 w0rld");
    V("regexp_replace(s, '(\\S+) (\\S+)', '$2 $1')",
      "string world h\xc3\xa9llo");
    V("regexp_replace(s, 'q', 'x')", "string h\xc3\xa9llo world");
    V("regexp_replace('aaa', 'a*', 'X')", "string XX"); /* PCRE2, not RE2 */
    V("regexp_replace('abc', '', '-')", "string -a-b-c-");
    V("regexp_replace('a.b', '\\.', '$$')", "string a$b");
    V("regexp_replace(s, 'l+', '${0}!')", "string h\xc3\xa9ll!o worl!d");
    V("regexp_matches(nd, 'x')", "compile error: argument 1 of "
                                 "regexp_matches must be a string, got date "
                                 "at position 16");
    V("regexp_matches(s, null)", "null");
    V("regexp_matches(s, 'a(b')",
      "compile error: invalid regular expression 'a(b' at position 19: "
      "missing closing parenthesis at character 4 of the pattern");
    VH("regexp_matches(s, '[z-a]')", "at character 4 of the pattern");
    VH("regexp_matches(s, s)", "must be a constant pattern");
    VH("regexp_extract(s, '(a)', 2)", "regexp_extract group 2 does not "
                                      "exist at position 26: the pattern "
                                      "has 1 group");
    VH("regexp_extract(s, '(a)', n)", "must be a constant group number");
    VH("regexp_replace(s, '(a)', '$3')", "bad replacement of regexp_replace "
                                         "at position 26: the replacement "
                                         "refers to group $3 but the pattern "
                                         "has 1 group");
    /* catastrophic backtracking fails instead of hanging */
    VH("regexp_matches(aa, '^(a+)+$')",
       "out_of_range: the regular expression '^(a+)+$' at position 1 hit "
       "its match limit");
    VH("regexp_replace(aa, '^(a|aa)+$', 'x')", "hit its match limit");
}

/* rx directly: group counts, and a compile error's character offset. */
static void
test_rx(void)
{
    char   msg[160];
    size_t at = 0;
    rx    *r = rx_compile("(\xc3\xa9)(x)?", 8, msg, sizeof msg, &at);

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(rx_groups(r), 2);
    CU_ASSERT_EQUAL(rx_search(r, "a\xc3\xa9", 3), RX_MATCH);
    CU_ASSERT_EQUAL(rx_search(r, "ae", 2), RX_NOMATCH);
    rx_free(r);
    r = rx_compile("\xc3\xa9\xc3\xa9(", 5, msg, sizeof msg, &at);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL(at, 3); /* characters, not bytes */
}

static void
test_strings(void)
{
    V("trim('  x y  ')", "string x y");
    V("ltrim('  x  ')", "string x  ");
    V("rtrim('  x  ')", "string   x");
    V("trim('xxaxx', 'x')", "string a");
    V("ltrim('xxaxx', 'x')", "string axx");
    V("rtrim('\xc3\xa9\xc3\xa9"
      "a\xc3\xa9', '\xc3\xa9')",
      "string \xc3\xa9\xc3\xa9"
      "a");
    V("trim('   ')", "string ");
    V("replace('aaa', 'a', 'bb')", "string bbbbbb");
    V("replace(s, 'l', '')", "string h\xc3\xa9o word");
    V("replace('abc', '', 'x')", "string abc");
    V("split_part('a,b,c', ',', 2)", "string b");
    V("split_part('a,b,c', ',', -1)", "string c");
    V("split_part('a,b,c', ',', -3)", "string a");
    V("split_part('a,b,c', ',', 5)", "string ");
    V("split_part('a,b,c', ',', 0)", "string ");
    V("split_part('a::b', '::', 2)", "string b");
    V("split_part('', ',', 1)", "string ");
    V("strpos('hello', 'l')", "int 3");
    V("strpos(s, 'l')", "int 3"); /* characters: é counts once */
    V("strpos(s, 'z')", "int 0");
    V("strpos(s, '')", "int 1");
    V("lpad('h\xc3\xa9llo', 7, 'ab')", "string abh\xc3\xa9llo");
    V("lpad('hello', 3, 'x')", "string hel");
    V("rpad('hi', 5, 'xy')", "string hixyx");
    V("rpad('hi', 4)", "string hi  ");
    V("lpad('hi', 4, '\xc3\xa9')", "string \xc3\xa9\xc3\xa9"
                                   "hi");
    V("lpad('hi', -1, 'x')", "string ");
    V("lpad('hi', 5, '')", "string hi");
    V("reverse(s)", "string dlrow oll\xc3\xa9h");
    V("reverse('')", "string ");
    V("reverse(null)", "null");
    V("strpos(null, 'a')", "null");
    VH("lpad('x', 's', 'y')", "argument 2 of lpad must be an int");
}

void
test_vocab_register(void)
{
    CU_pSuite s = CU_add_suite("vocab", suite_init, suite_clean);

    CU_add_test(s, "calendar", test_calendar);
    CU_add_test(s, "parse and format", test_parse_format);
    CU_add_test(s, "order and names", test_order);
    CU_add_test(s, "conversions", test_conversions);
    CU_add_test(s, "comparisons", test_comparisons);
    CU_add_test(s, "fields", test_fields);
    CU_add_test(s, "date_trunc, date_diff, date_add", test_trunc_diff_add);
    CU_add_test(s, "strftime, strptime", test_strftime_strptime);
    CU_add_test(s, "regular expressions", test_regex);
    CU_add_test(s, "rx", test_rx);
    CU_add_test(s, "strings", test_strings);
}
