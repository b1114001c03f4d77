/*
 * value.c - sheaf's column types, schemas, and the text forms of values:
 * parsing input fields into typed values, formatting values for output, and
 * the total order that sort and comparisons use.
 *
 * Text forms do not depend on the locale as long as the process keeps the
 * "C" locale for LC_NUMERIC (sheaf never calls setlocale).
 */
#include "value.h"

#include "datetime.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Field texts up to this many bytes are parsed as floats without malloc. */
#define FLOAT_BUF_BYTES 128

/* The spec's name of type 't' ("null" for SH_NULL); a static string. */
const char *
sh_type_name(sh_type t)
{
    switch (t) {
    case SH_NULL:
        return "null";
    case SH_INT:
        return "int";
    case SH_FLOAT:
        return "float";
    case SH_STRING:
        return "string";
    case SH_BOOL:
        return "bool";
    case SH_DATE:
        return "date";
    case SH_TIMESTAMP:
        return "timestamp";
    }
    return "unknown";
}

/* Parses a column type name of the job spec, exactly as written. */
int
sh_type_parse(const char *name, sh_type *out)
{
    static const struct {
        const char *name;
        sh_type     type;
    } names[] = {
        {"int", SH_INT},   {"float", SH_FLOAT}, {"string", SH_STRING},
        {"bool", SH_BOOL}, {"date", SH_DATE},   {"timestamp", SH_TIMESTAMP},
    };
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].type;
            return 0;
        }
    }
    return -1;
}

/* A new empty schema; free it with schema_free. */
schema *
schema_new(void)
{
    return xcalloc(1, sizeof(schema));
}

/* Appends a column, copying 'name'; returns its index. */
size_t
schema_add(schema *s, const char *name, sh_type t)
{
    s->names = xrealloc(s->names, (s->n + 1) * sizeof s->names[0]);
    s->types = xrealloc(s->types, (s->n + 1) * sizeof s->types[0]);
    s->names[s->n] = xstrdup(name);
    s->types[s->n] = t;
    return s->n++;
}

/* The index of the column named exactly 'name', or -1. */
long
schema_find(const schema *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0)
            return (long)i;
    }
    return -1;
}

/* A deep copy of 's'; the caller frees it with schema_free. */
schema *
schema_copy(const schema *s)
{
    schema *c = schema_new();
    size_t  i;

    for (i = 0; i < s->n; i++)
        schema_add(c, s->names[i], s->types[i]);
    return c;
}

/* Frees 's' and its names (NULL is fine). */
void
schema_free(schema *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->types);
    free(s);
}

/* Is 'c' an ASCII decimal digit? (isdigit depends on the locale.) */
static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses an optionally signed decimal int64 from exactly 'n' bytes. */
static int
parse_int(const char *p, size_t n, int64_t *out)
{
    uint64_t mag = 0;
    uint64_t limit = (uint64_t)INT64_MAX;
    size_t   i = 0;
    int      neg = 0;

    if (n > 0 && (p[0] == '+' || p[0] == '-')) {
        neg = p[0] == '-';
        i = 1;
    }
    if (i == n)
        return -1;
    if (neg)
        limit += 1; /* the magnitude of INT64_MIN */
    for (; i < n; i++) {
        unsigned d;

        if (!is_digit(p[i]))
            return -1;
        d = (unsigned)(p[i] - '0');
        /* 18 digits cannot overflow: test (with a division) past them */
        if (mag >= (uint64_t)100000000000000000 && mag > (limit - d) / 10)
            return -1;
        mag = mag * 10 + d;
    }
    if (neg)
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else
        *out = (int64_t)mag;
    return 0;
}

/*
 * Checks that the 'n' bytes are a float in the accepted syntax: an optional
 * sign, then digits with an optional '.' and fraction (at least one digit in
 * all) and an optional exponent, or inf, infinity, nan in any case. This
 * rejects what strtod would also take: hex floats, spaces, "nan(...)".
 */
static int
float_syntax_ok(const char *p, size_t n)
{
    size_t i = 0, digits = 0, rest;

    if (n > 0 && (p[0] == '+' || p[0] == '-'))
        i = 1;
    rest = n - i;
    if ((rest == 3 && strncasecmp(p + i, "inf", 3) == 0)
        || (rest == 8 && strncasecmp(p + i, "infinity", 8) == 0)
        || (rest == 3 && strncasecmp(p + i, "nan", 3) == 0))
        return 1;
    while (i < n && is_digit(p[i])) {
        i++;
        digits++;
    }
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && is_digit(p[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i == n || !is_digit(p[i]))
            return 0;
        while (i < n && is_digit(p[i]))
            i++;
    }
    return i == n;
}

/* Exact powers of ten: 1e0 .. 1e22 are all doubles. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                       1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                                       1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The common float without strtod: [-]digits[.digits], at most 15 digits
 * in all. Both the digits as an integer (below 2^53) and the power of ten
 * are exact doubles, so one division, rounded as IEEE rounds, gives the
 * nearest double, as strtod would. Returns -1 for anything else.
 */
static int
parse_float_fast(const char *p, size_t n, double *out)
{
    size_t   i = 0, digits = 0, frac = 0;
    uint64_t m = 0;
    int      neg = 0;
    double   d;

    if (n > 0 && p[0] == '-') {
        neg = 1;
        i = 1;
    }
    for (; i < n && is_digit(p[i]); i++, digits++)
        m = m * 10 + (uint64_t)(p[i] - '0');
    if (i < n && p[i] == '.') {
        for (i++; i < n && is_digit(p[i]); i++, digits++, frac++)
            m = m * 10 + (uint64_t)(p[i] - '0');
    }
    if (i != n || digits == 0 || digits > 15)
        return -1;
    d = (double)m / pow10_exact[frac];
    *out = neg ? -d : d;
    return 0;
}

/*
 * Parses a float from exactly 'n' bytes. Magnitudes past DBL_MAX become
 * +-inf, tiny ones 0 or a subnormal (as Python's float() does).
 */
static int
parse_float(const char *p, size_t n, double *out)
{
    char   stack_buf[FLOAT_BUF_BYTES];
    char  *buf = stack_buf, *end;
    int    rc = -1;
    double d;

    if (parse_float_fast(p, n, out) == 0)
        return 0;
    if (!float_syntax_ok(p, n))
        return -1;
    if (n >= sizeof stack_buf)
        buf = xmalloc(n + 1);
    memcpy(buf, p, n);
    buf[n] = '\0';
    d = strtod(buf, &end);
    if (end != buf + n)
        goto done;
    if (isnan(d))
        d = NAN; /* one NaN: "-nan" is not a different value */
    *out = d;
    rc = 0;
done:
    if (buf != stack_buf)
        free(buf);
    return rc;
}

/* Does the 'n' bytes equal 'word' ignoring ASCII case? */
static int
word_eq(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

/*
 * Parses one input field as type 't' (rules in value.h). Strings borrow
 * 'p'. Returns 0, or -1 when the text is not a value of that type.
 */
int
value_parse(sh_type t, const char *p, size_t n, sh_value *out)
{
    int64_t i;
    double  d;

    if (n == 0) {
        *out = sh_null();
        return 0;
    }
    switch (t) {
    case SH_INT:
        if (parse_int(p, n, &i) != 0)
            return -1;
        *out = sh_int(i);
        return 0;
    case SH_FLOAT:
        if (parse_float(p, n, &d) != 0)
            return -1;
        *out = sh_float(d);
        return 0;
    case SH_STRING:
        *out = sh_str(p, n);
        return 0;
    case SH_BOOL:
        if (word_eq(p, n, "true") || word_eq(p, n, "t") || word_eq(p, n, "yes")
            || word_eq(p, n, "1")) {
            *out = sh_bool(1);
            return 0;
        }
        if (word_eq(p, n, "false") || word_eq(p, n, "f") || word_eq(p, n, "no")
            || word_eq(p, n, "0")) {
            *out = sh_bool(0);
            return 0;
        }
        return -1;
    case SH_DATE:
        if (dt_parse_date(p, n, &i) != 0)
            return -1;
        *out = sh_date(i);
        return 0;
    case SH_TIMESTAMP:
        if (dt_parse_timestamp(p, n, &i) != 0)
            return -1;
        *out = sh_timestamp(i);
        return 0;
    case SH_NULL:
        break;
    }
    return -1;
}

/*
 * format_double for a non-integral 'd' with 1e-4 <= |d| < 1e15 that the
 * fewest decimals k of d * 10^k = m (m below 10^15, so 15 digits at most)
 * give exactly: m / 10^k, both exact doubles and the division rounded as
 * IEEE rounds, equal to d means the text reads back as d. %.15g prints it
 * the same: it rounds d, within half an ulp of m / 10^k, to the same 15
 * digits and drops the trailing zeros. Returns the length, or 0 to leave
 * 'd' to the general path.
 */
static size_t
format_double_fast(double d, char *buf)
{
    double   a = fabs(d);
    uint64_t m = 0;
    int      k, len = 0, i;
    char     dig[24];

    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (k = 1; k <= 19; k++) {
        double x = a * pow10_exact[k];

        if (x >= 1e15)
            return 0;
        m = (uint64_t)(x + 0.5); /* a wrong m fails the test below */
        if ((double)m / pow10_exact[k] == a)
            break;
    }
    if (k > 19)
        return 0;
    for (i = 0; m > 0 || i <= k; i++, m /= 10)
        dig[i] = (char)('0' + m % 10); /* reversed, at least k + 1 */
    if (d < 0)
        buf[len++] = '-';
    while (i > 0) {
        if (i == k)
            buf[len++] = '.';
        buf[len++] = dig[--i];
    }
    buf[len] = '\0';
    return (size_t)len;
}

/*
 * format_double for a normal 'd' with 1e-4 <= |d| < 1e15, in integers: as
 * %.15g, %.16g and %.17g print it, the first that reads back as d, with
 * no printf and no strtod. d = M * 2^E exactly (M of 53 bits, -67 < E <
 * 0), so d * 10^k = M * 10^k / 2^-E fits in 128 bits for k <= 20; m, the
 * P significant digits, is that rounded to an integer (ties to even, as
 * printf rounds the exact value). m / 10^k reads back as d when it is
 * within half an ulp of d (a quarter below d when M is 2^52, where the
 * gap below is half as wide; a tie goes to the even M). Returns the
 * length, or 0 to leave 'd' to the general path.
 */
static size_t
format_double_exact(double d, char *buf)
{
    typedef unsigned __int128 u128;
    double                    a = fabs(d);
    int                       e2, x, p, k, sh, len = 0, i, nd;
    uint64_t                  big, bits, m = 0;
    u128                      num, q, rem, half, ten_k, diff, lhs;
    char                      dig[24];

    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    memcpy(&bits, &a, 8);
    e2 = (int)(bits >> 52) - 1022; /* a = f * 2^e2, 0.5 <= f < 1 */
    big = (bits & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1 << 52); /* M */
    sh = 53 - e2;                                                   /* -E */
    if (sh <= 0 || sh > 100)
        return 0;
    /* floor(log10(a)) or one less (2^(e2-1) <= a): fixed below */
    x = (int)floor((e2 - 1) * 0.30102999566398120);
    for (p = 15; p <= 17; p++) {
        int xx = x;

        for (int tries = 0; tries < 3; tries++) {
            k = p - 1 - xx;
            if (k < 0 || k > 22)
                return 0;
            ten_k = 1;
            for (i = 0; i < k; i++)
                ten_k *= 10;
            num = (u128)big * ten_k;
            q = num >> sh; /* a * 10^k rounded down: p digits? */
            if (q >= (u128)pow10_exact[p]) {
                xx++;
                continue;
            }
            if (q < (u128)pow10_exact[p - 1]) {
                xx--;
                continue;
            }
            break;
        }
        if (q >= (u128)pow10_exact[p] || q < (u128)pow10_exact[p - 1])
            return 0;
        rem = num - (q << sh);
        half = (u128)1 << (sh - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        if (q == (u128)pow10_exact[p]) {
            /* rounded up to 10^p: %g's exponent is one more */
            q = (u128)pow10_exact[p - 1];
            xx++;
            k--;
            ten_k /= 10;
            num = (u128)big * ten_k;
        }
        if (xx >= p || xx < -4)
            return 0; /* %g would use an exponent */
        m = (uint64_t)q;
        /* 2 * |m * 2^sh - M * 10^k| against 10^k (or 10^k / 2 below a
         * power of two) */
        lhs = (u128)m << sh;
        diff = lhs > num ? lhs - num : num - lhs;
        if (big == ((uint64_t)1 << 52) && lhs < num) {
            if (diff * 4 < ten_k || (diff * 4 == ten_k))
                break;
        } else if (diff * 2 < ten_k || (diff * 2 == ten_k && !(big & 1))) {
            break;
        }
    }
    if (p > 17)
        return 0;
    /* m has p digits; the point goes k digits from the right */
    for (nd = 0; nd < p; nd++, m /= 10)
        dig[nd] = (char)('0' + m % 10);
    i = 0;
    while (i < k && dig[i] == '0')
        i++; /* trailing zeros of the fraction go */
    if (d < 0)
        buf[len++] = '-';
    if (k >= nd) {
        buf[len++] = '0';
        if (i < k) {
            buf[len++] = '.';
            for (int z = k; z > nd; z--)
                buf[len++] = '0';
        }
        for (int j = nd - 1; j >= i; j--)
            buf[len++] = dig[j];
    } else {
        for (int j = nd - 1; j >= k; j--)
            buf[len++] = dig[j];
        if (i < k) {
            buf[len++] = '.';
            for (int j = k - 1; j >= i; j--)
                buf[len++] = dig[j];
        }
    }
    buf[len] = '\0';
    return (size_t)len;
}

/*
 * Writes the shortest text that strtod reads back as 'd' into 'buf' (32
 * bytes suffice) and returns its length: "0.1", "3", "1e+16", "-0",
 * "nan", "inf", "-inf".
 */
size_t
format_double(double d, char *buf)
{
    int prec, n = 0;

    if (isnan(d)) {
        memcpy(buf, "nan", 4);
        return 3;
    }
    if (isinf(d)) {
        if (d > 0) {
            memcpy(buf, "inf", 4);
            return 3;
        }
        memcpy(buf, "-inf", 5);
        return 4;
    }
    if (d == 0 && signbit(d)) {
        memcpy(buf, "-0", 3);
        return 2;
    }
    /* Integral values below 1e15 print as their digits ("%.15g" would
     * give the same text); this is the common case and needs no check. */
    if (fabs(d) < 1e15 && d == trunc(d))
        return (size_t)snprintf(buf, 32, "%" PRId64, (int64_t)d);
    if ((n = (int)format_double_fast(d, buf)) > 0
        || (n = (int)format_double_exact(d, buf)) > 0)
        return (size_t)n;
    /*
     * For a normal double, if a text of 15 or fewer significant digits
     * reads back to it, %.15g is that text (the double's precision is
     * finer than half a unit in the 15th digit); if not, the shortest has
     * 16 or 17 digits and %.16g or %.17g, the nearest of that length, is
     * it. Zero and subnormals have less precision: try every length.
     */
    for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

/* Appends the output text of 'v' to 'sb' (null appends nothing). */
void
value_format(const sh_value *v, strbuf *sb)
{
    char   buf[32];
    size_t n;

    switch (v->type) {
    case SH_NULL:
        break;
    case SH_INT:
        n = (size_t)snprintf(buf, sizeof buf, "%" PRId64, v->u.i);
        sb_append(sb, buf, n);
        break;
    case SH_FLOAT:
        n = format_double(v->u.f, buf);
        sb_append(sb, buf, n);
        break;
    case SH_STRING:
        sb_append(sb, v->u.s.ptr, v->u.s.len);
        break;
    case SH_BOOL:
        sb_puts(sb, v->u.b ? "true" : "false");
        break;
    case SH_DATE:
        dt_format_date(v->u.i, sb);
        break;
    case SH_TIMESTAMP:
        dt_format_timestamp(v->u.i, sb);
        break;
    }
}

/* Compares an int with a double exactly (no rounding of 'i' to double). */
static int
cmp_int_double(int64_t i, double f)
{
    int64_t t;
    double  frac;

    if (isnan(f) || f >= 9223372036854775808.0)
        return -1;
    if (f < -9223372036854775808.0)
        return 1;
    t = (int64_t)f; /* truncates; fits, since -2^63 <= f < 2^63 */
    if (i != t)
        return i < t ? -1 : 1;
    frac = f - (double)t; /* exact: the fraction of a double is one */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/*
 * The total order of values of one kind: numbers (ints and floats,
 * exactly, NaN last and equal to itself), strings by bytes, bools. Values
 * of different kinds order by type; nulls are the callers' business.
 */
int
value_cmp(const sh_value *a, const sh_value *b)
{
    size_t n;
    int    c;

    if (a->type == SH_INT && b->type == SH_INT)
        return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    if (a->type == SH_FLOAT && b->type == SH_FLOAT)
        return value_cmp_double(a->u.f, b->u.f);
    if (a->type == SH_INT && b->type == SH_FLOAT)
        return cmp_int_double(a->u.i, b->u.f);
    if (a->type == SH_FLOAT && b->type == SH_INT)
        return -cmp_int_double(b->u.i, a->u.f);
    if (a->type == SH_STRING && b->type == SH_STRING) {
        n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        c = n ? memcmp(a->u.s.ptr, b->u.s.ptr, n) : 0;
        if (c != 0)
            return c < 0 ? -1 : 1;
        return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
    }
    if (a->type == SH_BOOL && b->type == SH_BOOL)
        return (a->u.b > b->u.b) - (a->u.b < b->u.b);
    if ((a->type == SH_DATE || a->type == SH_TIMESTAMP)
        && (b->type == SH_DATE || b->type == SH_TIMESTAMP)) {
        int64_t x = a->u.i, y = b->u.i;

        if (a->type != b->type) { /* a date is its midnight */
            if (a->type == SH_DATE)
                x = x > INT64_MAX / DT_US_PER_DAY   ? INT64_MAX
                    : x < INT64_MIN / DT_US_PER_DAY ? INT64_MIN
                                                    : x * DT_US_PER_DAY;
            else
                y = y > INT64_MAX / DT_US_PER_DAY   ? INT64_MAX
                    : y < INT64_MIN / DT_US_PER_DAY ? INT64_MIN
                                                    : y * DT_US_PER_DAY;
        }
        return (x > y) - (x < y);
    }
    /* Different kinds (callers should not ask): order by type. */
    return (a->type > b->type) - (a->type < b->type);
}
