/*
 * expr_eval.c - the evaluator of sheaf's expression language: one switch
 * over the typed operations of a compiled tree (eval, the interpreter's
 * dispatch loop) and the run-time helpers of the functions it calls
 * (case mapping, substr, round, number parsing, hash), kept in this file
 * so that the compiler inlines them into the loop.
 *
 * Decisions the language leaves open (documented in the README):
 * - comparisons order floats as value_cmp does: NaN equals NaN and is
 *   greater than every number; ints and floats compare exactly;
 * - int(string) and float(string) trim ASCII white space, then parse;
 *   int() of a string that is not an int takes a float text and truncates
 *   it; a text that is neither, or out of range, gives null;
 * - round(x, d) with d != 0 rounds the shortest decimal text of x (what
 *   str(x) shows) half away from zero, so round(1.005, 2) is 1.01 (by
 *   scaling when that is provably the same, else on the text); d < 0
 *   rounds to tens, hundreds...; round of an int gives an int;
 * - hash(x) is 64-bit FNV-1a over one type byte (1 int, 2 float, 3 string,
 *   4 bool, 5 date, 6 timestamp) and the value's bytes (ints, dates,
 *   timestamps and floats as 8 little-endian
 *   bytes of the int or the IEEE-754 bits, -0.0 as 0.0 and every NaN as
 *   0x7ff8000000000000; a string's UTF-8 bytes; a bool as one byte 0 or 1),
 *   masked with INT64_MAX; so hash(1) != hash(1.0);
 * - a string a function returns may borrow its argument's bytes (substr,
 *   lower of a string with no capitals) or the expression's constants.
 */
#include "expr.h"
#include "expr_int.h"
#include "datetime.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state of one evaluation. */
typedef struct evalctx {
    const sh_value *row;
    arena          *a;
    sh_err         *err;
    const char     *path;
} evalctx;

static int eval(const node *n, evalctx *c, sh_value *out);
static int eval2(const node *n, evalctx *c, sh_value *out);

/*
 * Sets an integer overflow error for node 'n': "in '+' ...: a + b" for an
 * operator ('b' used), "in abs() ...: a" for a function or unary minus.
 */
static int
overflow(const node *n, evalctx *c, const char *what, int64_t a, int64_t b,
         int binary)
{
    if (binary)
        return sh_err_set(c->err, SH_ERANGE, c->path,
                          "integer overflow in '%s' at position %u: %" PRId64
                          " %s %" PRId64,
                          what, n->pos, a, what, b);
    return sh_err_set(c->err, SH_ERANGE, c->path,
                      "integer overflow in %s at position %u: %" PRId64, what,
                      n->pos, a);
}

/* Applies a relation to a three-way comparison result. */
static int
rel_holds(rel r, int c)
{
    switch (r) {
    case REL_EQ:
        return c == 0;
    case REL_NE:
        return c != 0;
    case REL_LT:
        return c < 0;
    case REL_LE:
        return c <= 0;
    case REL_GT:
        return c > 0;
    case REL_GE:
        return c >= 0;
    }
    return 0;
}

/* ASCII lower or upper case of 's'; other bytes are kept as they are. */
static sh_value
case_map(sh_value s, int upper, arena *a)
{
    size_t i, n = s.u.s.len;
    char   lo = upper ? 'a' : 'A', hi = upper ? 'z' : 'Z';
    char  *d;

    for (i = 0; i < n; i++) {
        if (s.u.s.ptr[i] >= lo && s.u.s.ptr[i] <= hi)
            break;
    }
    if (i == n)
        return s; /* nothing to change: borrow */
    d = arena_alloc(a, n);
    memcpy(d, s.u.s.ptr, n);
    for (; i < n; i++) {
        if (d[i] >= lo && d[i] <= hi)
            d[i] = (char)(d[i] ^ 0x20);
    }
    return sh_str(d, n);
}

/* The number of UTF-8 characters (bytes that do not continue one). */
static int64_t
utf8_length(const char *p, size_t n)
{
    int64_t count = 0;
    size_t  i;

    for (i = 0; i < n; i++)
        count += !is_cont((unsigned char)p[i]);
    return count;
}

/*
 * substr: characters [start, start + len) of 's', 1-based, clipped to the
 * string (characters before 1 count toward len, as in SQL). Borrows.
 */
static sh_value
substr_chars(sh_value s, int64_t start, int has_len, int64_t len)
{
    const char *p = s.u.s.ptr;
    size_t      n = s.u.s.len, i = 0, from;
    int64_t     b = start, e = INT64_MAX, ch = 1;

    if (has_len) {
        if (len < 0)
            return sh_str(p, 0);
        if (__builtin_add_overflow(start, len, &e))
            e = INT64_MAX;
    }
    if (b < 1)
        b = 1;
    if (e <= b)
        return sh_str(p, 0);
    while (i < n && ch < b) {
        i++;
        while (i < n && is_cont((unsigned char)p[i]))
            i++;
        ch++;
    }
    from = i;
    while (i < n && ch < e) {
        i++;
        while (i < n && is_cont((unsigned char)p[i]))
            i++;
        ch++;
    }
    return sh_str(p + from, i - from);
}

/* The text of a non-null value, as str() gives it (in 'a' if made). */
static sh_value
to_text(sh_value v, arena *a)
{
    char   buf[32], buf48[48];
    size_t n;

    switch (v.type) {
    case SH_INT:
        n = (size_t)snprintf(buf, sizeof buf, "%" PRId64, v.u.i);
        break;
    case SH_FLOAT:
        n = format_double(v.u.f, buf);
        break;
    case SH_BOOL:
        return v.u.b ? sh_str("true", 4) : sh_str("false", 5);
    case SH_DATE:
        n = dt_format_date_buf(v.u.i, buf48);
        return sh_str(arena_strndup(a, buf48, n), n);
    case SH_TIMESTAMP:
        n = dt_format_timestamp_buf(v.u.i, buf48);
        return sh_str(arena_strndup(a, buf48, n), n);
    default:
        return v;
    }
    return sh_str(arena_strndup(a, buf, n), n);
}

/* concat(a, ...): the texts of the arguments, joined in the arena. */
static int
eval_concat(const node *n, evalctx *c, sh_value *out)
{
    sh_value stack_vals[8], *vals = stack_vals;
    size_t   i, total = 0;
    char    *d;
    int      rc;

    if (n->nkids > 8)
        vals = arena_alloc(c->a, n->nkids * sizeof vals[0]);
    for (i = 0; i < n->nkids; i++) {
        if ((rc = eval(n->kids[i], c, &vals[i])) != 0)
            return rc;
        if (vals[i].type == SH_NULL) {
            *out = sh_null();
            return 0;
        }
        vals[i] = to_text(vals[i], c->a);
        total += vals[i].u.s.len;
    }
    d = arena_alloc(c->a, total ? total : 1);
    *out = sh_str(d, total);
    for (i = 0; i < n->nkids; i++) {
        if (vals[i].u.s.len)
            memcpy(d, vals[i].u.s.ptr, vals[i].u.s.len);
        d += vals[i].u.s.len;
    }
    return 0;
}

/* round(x, digits) of an int: half away from zero at 10^-digits. */
static int
round_int(int64_t x, int64_t digits, int64_t *out)
{
    uint64_t mag, p = 1, q, rem;
    int64_t  i;

    if (digits >= 0) {
        *out = x;
        return 0;
    }
    if (digits < -19) {
        *out = 0;
        return 0;
    }
    for (i = 0; i < -digits; i++)
        p *= 10;
    mag = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    q = mag / p;
    rem = mag % p;
    if (rem >= p - rem)
        q++;
    if (q != 0 && p > UINT64_MAX / q)
        return -1;
    mag = q * p;
    if (x < 0) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)mag;
    }
    return 0;
}

/*
 * round(x, digits) of a float, digits != 0, by scaling: x * 10^digits (or
 * x / 10^-digits) rounded, then scaled back; each step is one correctly
 * rounded operation, so the result is the double nearest the decimal.
 * Returns 0, or -1 when the scaled value is too close to a half for the
 * scaling error to be ruled out (then round_decimal decides).
 */
static int
round_scaled(double x, int64_t digits, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                   1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                                   1e18, 1e19, 1e20, 1e21, 1e22};
    double              p, y, half_dist;

    if (digits > 22 || digits < -22 || !isfinite(x))
        return -1;
    p = pow10[digits < 0 ? -digits : digits];
    y = digits > 0 ? x * p : x / p;
    if (!(fabs(y) < 4503599627370496.0)) /* 2^52: no fraction left */
        return -1;
    half_dist = fabs(fabs(y - trunc(y)) - 0.5);
    if (half_dist <= fabs(y) * 1e-15)
        return -1;
    y = round(y);
    *out = digits > 0 ? y / p : y * p;
    if (*out == 0)
        *out = copysign(0.0, x);
    return 0;
}

/*
 * round(x, digits) of a float, digits != 0: rounds the shortest decimal
 * text of x half away from zero at the digit for 10^-digits, so the result
 * matches what a person reads (round(1.005, 2) is 1.01).
 */
static double
round_decimal(double x, int64_t digits)
{
    char  buf[40], text[48], dig[20];
    int   prec, ndig = 0, exp10, keep, i;
    char *e;

    if (!isfinite(x) || x == 0)
        return x;
    if (digits > 400)
        return x;
    if (digits < -400)
        return copysign(0.0, x);
    /* As format_double: for a normal x, 15 digits suffice unless 16 or
     * 17 are needed; the trailing zeros are stripped below. */
    for (prec = fabs(x) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    /* buf is "[-]D[.DDD]e[+-]XX": gather the digits and the exponent. */
    for (e = buf; *e != 'e'; e++) {
        if (is_digit(*e))
            dig[ndig++] = *e;
    }
    exp10 = atoi(e + 1);
    while (ndig > 1 && dig[ndig - 1] == '0')
        ndig--;
    keep = exp10 + 1 + (int)digits; /* digits at or above 10^-digits */
    if (keep >= ndig)
        return x;
    if (keep < 0)
        return copysign(0.0, x);
    if (keep == 0) {
        if (dig[0] < '5')
            return copysign(0.0, x);
        snprintf(text, sizeof text, "%s1e%d", x < 0 ? "-" : "", -(int)digits);
        return strtod(text, NULL);
    }
    if (dig[keep] >= '5') {
        for (i = keep - 1; i >= 0 && dig[i] == '9'; i--)
            dig[i] = '0';
        if (i >= 0)
            dig[i]++;
        else {
            memmove(dig + 1, dig, (size_t)keep);
            dig[0] = '1';
            keep++;
            exp10++;
        }
    }
    snprintf(text, sizeof text, "%s%.*se%d", x < 0 ? "-" : "", keep, dig,
             exp10 - keep + 1);
    return strtod(text, NULL);
}

/* Trims ASCII white space around a string value. */
static sh_value
trim(sh_value s)
{
    const char *p = s.u.s.ptr;
    size_t      n = s.u.s.len;

    while (n > 0
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f'
               || *p == '\v')) {
        p++;
        n--;
    }
    while (n > 0
           && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n'
               || p[n - 1] == '\r' || p[n - 1] == '\f' || p[n - 1] == '\v'))
        n--;
    return sh_str(p, n);
}

/* Is 'f' inside the int64 range, so that truncating it fits? */
static int
double_fits_int(double f)
{
    return f >= -9223372036854775808.0 && f < 9223372036854775808.0;
}

/* Is 's' an optionally signed run of decimal digits? */
static int
is_int_text(sh_value s)
{
    size_t i = s.u.s.len > 0 && (s.u.s.ptr[0] == '-' || s.u.s.ptr[0] == '+');

    if (i == s.u.s.len)
        return 0;
    for (; i < s.u.s.len; i++)
        if (s.u.s.ptr[i] < '0' || s.u.s.ptr[i] > '9')
            return 0;
    return 1;
}

/* int(s): an int text, or a float text truncated; null otherwise. An int
 * text out of range is null on both sides: read as a float, it would round
 * to -2^63 ('-9223372036854775809' to INT64_MIN) but not to +2^63. */
static sh_value
string_to_int(sh_value s)
{
    sh_value v;

    s = trim(s);
    if (value_parse(SH_INT, s.u.s.ptr, s.u.s.len, &v) == 0)
        return v;
    if (is_int_text(s))
        return sh_null();
    if (value_parse(SH_FLOAT, s.u.s.ptr, s.u.s.len, &v) == 0
        && v.type == SH_FLOAT && double_fits_int(v.u.f))
        return sh_int((int64_t)v.u.f);
    return sh_null();
}

/* float(s): a float text (trimmed), or null. */
static sh_value
string_to_float(sh_value s)
{
    sh_value v;

    s = trim(s);
    if (value_parse(SH_FLOAT, s.u.s.ptr, s.u.s.len, &v) == 0)
        return v;
    return sh_null();
}

/* FNV-1a over 'n' bytes, continuing from 'h'. */
static uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t               i;

    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* hash(x) of a non-null value; see the file comment for the definition. */
static int64_t
hash_value(sh_value v)
{
    uint64_t      h = 0xcbf29ce484222325ULL, bits = 0;
    unsigned char tag = (unsigned char)v.type, b[8];
    int           i;

    h = fnv1a(h, &tag, 1);
    switch (v.type) {
    case SH_INT:
    case SH_DATE:
    case SH_TIMESTAMP:
        bits = (uint64_t)v.u.i;
        break;
    case SH_FLOAT:
        if (isnan(v.u.f))
            bits = 0x7ff8000000000000ULL;
        else if (v.u.f != 0)
            memcpy(&bits, &v.u.f, sizeof bits);
        break;
    case SH_STRING:
        h = fnv1a(h, v.u.s.ptr, v.u.s.len);
        return (int64_t)(h & (uint64_t)INT64_MAX);
    case SH_BOOL:
        b[0] = (unsigned char)(v.u.b != 0);
        h = fnv1a(h, b, 1);
        return (int64_t)(h & (uint64_t)INT64_MAX);
    case SH_NULL:
        break;
    }
    for (i = 0; i < 8; i++)
        b[i] = (unsigned char)(bits >> (8 * i));
    h = fnv1a(h, b, 8);
    return (int64_t)(h & (uint64_t)INT64_MAX);
}

/* Reports a column value whose type is not the column's. */
static int
bad_column(const node *n, evalctx *c, sh_type got)
{
    return sh_err_set(c->err, SH_EDATA, c->path,
                      "column '%s' holds a %s value but its type is %s",
                      n->name, sh_type_name(got), sh_type_name(n->type));
}

/* Evaluates kid 'i' of 'n' into 'v'; returns from eval on error. */
#define EV(i, v)                               \
    do {                                       \
        int rc_ = eval(n->kids[(i)], c, &(v)); \
        if (rc_ != 0)                          \
            return rc_;                        \
    } while (0)

/* Evaluates kid 'i' into 'v'; a null makes the node's result null. */
#define EVN(i, v)                  \
    do {                           \
        EV(i, v);                  \
        if ((v).type == SH_NULL) { \
            *out = sh_null();      \
            return 0;              \
        }                          \
    } while (0)

/* Reports a regular expression that failed on a row. */
static int
regex_failed(const node *n, evalctx *c, int rc)
{
    if (rc == RX_ELIMIT)
        return sh_err_set(c->err, SH_ERANGE, c->path,
                          "the regular expression '%.*s' at position %u hit "
                          "its match limit (%d steps, depth %d): simplify "
                          "the pattern (nested repetition such as (a+)+ "
                          "backtracks exponentially)",
                          expr_quote_len(rx_pattern(n->re),
                                         strlen(rx_pattern(n->re)),
                                         QUOTE_BYTES),
                          rx_pattern(n->re), n->pos, RX_MATCH_LIMIT,
                          RX_DEPTH_LIMIT);
    return sh_err_set(c->err, SH_EDATA, c->path,
                      "the regular expression '%.*s' at position %u failed: "
                      "%s",
                      expr_quote_len(rx_pattern(n->re),
                                     strlen(rx_pattern(n->re)), QUOTE_BYTES),
                      rx_pattern(n->re), n->pos, rx_error(n->re));
}

/* A timestamp result out of range. */
static int
time_range(const node *n, evalctx *c)
{
    return sh_err_set(c->err, SH_ERANGE, c->path,
                      "date_add at position %u: the result is out of range",
                      n->pos);
}

/* The operations added with dates, regexes and more strings: kept out of
 * eval so that its hot cases stay compact. */
static int
eval2(const node *n, evalctx *c, sh_value *out)
{
    sh_value    a, b, d;
    int64_t     r;
    int         rc;
    const char *gp;
    size_t      gn;
    /* strftime's scratch, kept for the thread's life: no malloc per row */
    static __thread strbuf fmt_buf;

    switch (n->op) {
    case EX_DATE_S:
        EVN(0, a);
        a = trim(a);
        if (dt_parse_date(a.u.s.ptr, a.u.s.len, &r) == 0)
            *out = sh_date(r);
        else if (dt_parse_timestamp(a.u.s.ptr, a.u.s.len, &r) == 0)
            *out = sh_date(dt_ts_days(r));
        else
            *out = sh_null();
        return 0;
    case EX_DATE_T:
        EVN(0, a);
        *out = sh_date(dt_ts_days(a.u.i));
        return 0;
    case EX_TS_S:
        EVN(0, a);
        a = trim(a);
        *out = dt_parse_timestamp(a.u.s.ptr, a.u.s.len, &r) == 0
                   ? sh_timestamp(r)
                   : sh_null();
        return 0;
    case EX_TS_D:
        EVN(0, a);
        if (__builtin_mul_overflow(a.u.i, DT_US_PER_DAY, &r))
            return time_range(n, c);
        *out = sh_timestamp(r);
        return 0;
    case EX_DT_PART:
        EVN(0, a);
        *out = sh_int(dt_field(a.u.i, (dt_part)n->arg));
        return 0;
    case EX_DT_TRUNC:
        EVN(0, a);
        r = dt_trunc(a.u.i, (dt_unit)n->arg);
        *out = n->type == SH_DATE ? sh_date(dt_ts_days(r)) : sh_timestamp(r);
        return 0;
    case EX_DT_DIFF:
        EVN(0, a);
        EVN(1, b);
        *out = sh_int(dt_diff((dt_unit)n->arg, a.u.i, b.u.i));
        return 0;
    case EX_DT_ADD:
        EVN(0, a);
        EVN(1, b);
        if (dt_add(a.u.i, b.u.i, (dt_unit)n->arg, &r) != 0)
            return time_range(n, c);
        *out = n->type == SH_DATE ? sh_date(dt_ts_days(r)) : sh_timestamp(r);
        return 0;
    case EX_STRFTIME:
        EVN(0, a);
        EVN(1, b);
        sb_reset(&fmt_buf);
        dt_strftime(a.u.i, b.u.s.ptr, b.u.s.len, &fmt_buf);
        *out = sh_str(arena_strndup(c->a, fmt_buf.data ? fmt_buf.data : "",
                                    fmt_buf.len),
                      fmt_buf.len);
        return 0;
    case EX_STRPTIME:
        EVN(0, a);
        EVN(1, b);
        *out = dt_strptime(a.u.s.ptr, a.u.s.len, b.u.s.ptr, b.u.s.len, &r) == 0
                   ? sh_timestamp(r)
                   : sh_null();
        return 0;
    case EX_RE_MATCH:
        EVN(0, a);
        rc = rx_search(n->re, a.u.s.ptr, a.u.s.len);
        if (rc < 0)
            return regex_failed(n, c, rc);
        *out = sh_bool(rc == RX_MATCH);
        return 0;
    case EX_RE_EXTRACT:
        EVN(0, a);
        rc = rx_extract(n->re, a.u.s.ptr, a.u.s.len, (unsigned)n->arg, &gp,
                        &gn);
        if (rc < 0)
            return regex_failed(n, c, rc);
        *out = rc == RX_MATCH ? sh_str(gp, gn) : sh_str(a.u.s.ptr, 0);
        return 0;
    case EX_RE_REPLACE:
        EVN(0, a);
        EVN(1, b);
        rc = rx_replace(n->re, a.u.s.ptr, a.u.s.len, b.u.s.ptr, b.u.s.len, c->a,
                        &gp, &gn);
        if (rc < 0)
            return regex_failed(n, c, rc);
        *out = sh_str(gp, gn);
        return 0;
    case EX_TRIM:
        EVN(0, a);
        if (n->nkids == 2) {
            EVN(1, b);
            *out = expr_str_trim(a, &b, (int)n->arg);
        } else {
            *out = expr_str_trim(a, NULL, (int)n->arg);
        }
        return 0;
    case EX_REPLACE:
        EVN(0, a);
        EVN(1, b);
        EVN(2, d);
        *out = expr_str_replace(a, b, d, c->a);
        return 0;
    case EX_SPLIT_PART:
        EVN(0, a);
        EVN(1, b);
        EVN(2, d);
        *out = expr_str_split_part(a, b, d.u.i);
        return 0;
    case EX_STRPOS:
        EVN(0, a);
        EVN(1, b);
        *out = sh_int(expr_str_strpos(a, b));
        return 0;
    case EX_LPAD:
    case EX_RPAD:
        EVN(0, a);
        EVN(1, b);
        if (n->nkids == 3) {
            EVN(2, d);
            *out = expr_str_pad(a, b.u.i, &d, n->op == EX_LPAD, c->a);
        } else {
            *out = expr_str_pad(a, b.u.i, NULL, n->op == EX_LPAD, c->a);
        }
        return 0;
    case EX_REVERSE:
        EVN(0, a);
        *out = expr_str_reverse(a, c->a);
        return 0;
    default:
        break;
    }
    return sh_err_set(c->err, SH_ERANGE, c->path,
                      "internal error: unknown expression node %d", n->op);
}

/*
 * Evaluates node 'n' into *out: one switch over the typed operations.
 * Returns 0, or an SH_E* code with c->err filled.
 */
static int
eval(const node *n, evalctx *c, sh_value *out)
{
    sh_value a, b, d;
    int64_t  r;
    double   f;
    size_t   i;

    switch (n->op) {
    case EX_CONST:
        *out = n->k;
        return 0;
    case EX_COL:
        a = c->row[n->col];
        if (a.type != n->type && a.type != SH_NULL) {
            if (a.type == SH_INT && n->type == SH_FLOAT)
                a = sh_float((double)a.u.i);
            else
                return bad_column(n, c, a.type);
        }
        *out = a;
        return 0;
    case EX_I2F:
        EVN(0, a);
        *out = sh_float((double)a.u.i);
        return 0;
    case EX_NEG_I:
        EVN(0, a);
        if (a.u.i == INT64_MIN)
            return overflow(n, c, "'-'", a.u.i, 0, 0);
        *out = sh_int(-a.u.i);
        return 0;
    case EX_NEG_F:
        EVN(0, a);
        *out = sh_float(-a.u.f);
        return 0;
    case EX_ADD_I:
        EVN(0, a);
        EVN(1, b);
        if (__builtin_add_overflow(a.u.i, b.u.i, &r))
            return overflow(n, c, "+", a.u.i, b.u.i, 1);
        *out = sh_int(r);
        return 0;
    case EX_SUB_I:
        EVN(0, a);
        EVN(1, b);
        if (__builtin_sub_overflow(a.u.i, b.u.i, &r))
            return overflow(n, c, "-", a.u.i, b.u.i, 1);
        *out = sh_int(r);
        return 0;
    case EX_MUL_I:
        EVN(0, a);
        EVN(1, b);
        if (__builtin_mul_overflow(a.u.i, b.u.i, &r))
            return overflow(n, c, "*", a.u.i, b.u.i, 1);
        *out = sh_int(r);
        return 0;
    case EX_MOD_I:
        EVN(0, a);
        EVN(1, b);
        if (b.u.i == 0)
            *out = sh_null();
        else if (b.u.i == -1)
            *out = sh_int(0); /* also INT64_MIN % -1, undefined in C */
        else
            *out = sh_int(a.u.i % b.u.i);
        return 0;
    case EX_ADD_F:
        EVN(0, a);
        EVN(1, b);
        *out = sh_float(a.u.f + b.u.f);
        return 0;
    case EX_SUB_F:
        EVN(0, a);
        EVN(1, b);
        *out = sh_float(a.u.f - b.u.f);
        return 0;
    case EX_MUL_F:
        EVN(0, a);
        EVN(1, b);
        *out = sh_float(a.u.f * b.u.f);
        return 0;
    case EX_DIV_F:
        EVN(0, a);
        EVN(1, b);
        *out = b.u.f == 0 ? sh_null() : sh_float(a.u.f / b.u.f);
        return 0;
    case EX_MOD_F:
        EVN(0, a);
        EVN(1, b);
        *out = b.u.f == 0 ? sh_null() : sh_float(fmod(a.u.f, b.u.f));
        return 0;
    case EX_CMP_I:
        EV(0, a);
        EV(1, b);
        if (a.type == SH_NULL || b.type == SH_NULL)
            *out = sh_bool(0);
        else
            *out = sh_bool(
                rel_holds(n->rel, (a.u.i > b.u.i) - (a.u.i < b.u.i)));
        return 0;
    case EX_CMP_F:
    case EX_CMP_N:
    case EX_CMP_S:
    case EX_CMP_B:
        EV(0, a);
        EV(1, b);
        if (a.type == SH_NULL || b.type == SH_NULL)
            *out = sh_bool(0);
        else
            *out = sh_bool(rel_holds(n->rel, value_cmp(&a, &b)));
        return 0;
    case EX_AND:
        EV(0, a);
        if (a.type == SH_BOOL && !a.u.b) {
            *out = sh_bool(0);
            return 0;
        }
        EV(1, b);
        if (b.type == SH_BOOL && !b.u.b)
            *out = sh_bool(0);
        else if (a.type == SH_NULL || b.type == SH_NULL)
            *out = sh_null();
        else
            *out = sh_bool(1);
        return 0;
    case EX_OR:
        EV(0, a);
        if (a.type == SH_BOOL && a.u.b) {
            *out = sh_bool(1);
            return 0;
        }
        EV(1, b);
        if (b.type == SH_BOOL && b.u.b)
            *out = sh_bool(1);
        else if (a.type == SH_NULL || b.type == SH_NULL)
            *out = sh_null();
        else
            *out = sh_bool(0);
        return 0;
    case EX_NOT:
        EVN(0, a);
        *out = sh_bool(!a.u.b);
        return 0;
    case EX_LOWER:
    case EX_UPPER:
        EVN(0, a);
        *out = case_map(a, n->op == EX_UPPER, c->a);
        return 0;
    case EX_LENGTH:
        EVN(0, a);
        *out = sh_int(utf8_length(a.u.s.ptr, a.u.s.len));
        return 0;
    case EX_SUBSTR:
        EVN(0, a);
        EVN(1, b);
        d = sh_int(0);
        if (n->nkids == 3)
            EVN(2, d);
        *out = substr_chars(a, b.u.i, n->nkids == 3, d.u.i);
        return 0;
    case EX_CONTAINS:
        EVN(0, a);
        EVN(1, b);
        *out = sh_bool(b.u.s.len == 0
                       || memmem(a.u.s.ptr, a.u.s.len, b.u.s.ptr, b.u.s.len)
                              != NULL);
        return 0;
    case EX_STARTS_WITH:
        EVN(0, a);
        EVN(1, b);
        *out = sh_bool(b.u.s.len <= a.u.s.len
                       && (b.u.s.len == 0
                           || memcmp(a.u.s.ptr, b.u.s.ptr, b.u.s.len) == 0));
        return 0;
    case EX_ENDS_WITH:
        EVN(0, a);
        EVN(1, b);
        *out = sh_bool(b.u.s.len <= a.u.s.len
                       && (b.u.s.len == 0
                           || memcmp(a.u.s.ptr + a.u.s.len - b.u.s.len,
                                     b.u.s.ptr, b.u.s.len)
                                  == 0));
        return 0;
    case EX_CONCAT:
        return eval_concat(n, c, out);
    case EX_ABS_I:
        EVN(0, a);
        if (a.u.i == INT64_MIN)
            return overflow(n, c, "abs()", a.u.i, 0, 0);
        *out = sh_int(a.u.i < 0 ? -a.u.i : a.u.i);
        return 0;
    case EX_ABS_F:
        EVN(0, a);
        *out = sh_float(fabs(a.u.f));
        return 0;
    case EX_ROUND_I:
        EVN(0, a);
        EVN(1, b);
        if (round_int(a.u.i, b.u.i, &r) != 0)
            return overflow(n, c, "round()", a.u.i, 0, 0);
        *out = sh_int(r);
        return 0;
    case EX_ROUND_F:
        EVN(0, a);
        b = sh_int(0);
        if (n->nkids == 2)
            EVN(1, b);
        if (b.u.i == 0)
            f = round(a.u.f);
        else if (round_scaled(a.u.f, b.u.i, &f) != 0)
            f = round_decimal(a.u.f, b.u.i);
        *out = sh_float(f);
        return 0;
    case EX_FLOOR:
        EVN(0, a);
        *out = sh_float(floor(a.u.f));
        return 0;
    case EX_CEIL:
        EVN(0, a);
        *out = sh_float(ceil(a.u.f));
        return 0;
    case EX_SQRT:
        EVN(0, a);
        *out = a.u.f < 0 ? sh_null() : sh_float(sqrt(a.u.f));
        return 0;
    case EX_LN:
        EVN(0, a);
        *out = a.u.f <= 0 ? sh_null() : sh_float(log(a.u.f));
        return 0;
    case EX_EXP:
        EVN(0, a);
        *out = sh_float(exp(a.u.f));
        return 0;
    case EX_INT_F:
        EVN(0, a);
        if (!double_fits_int(a.u.f)) {
            char text[32];

            format_double(a.u.f, text);
            return sh_err_set(c->err, SH_ERANGE, c->path,
                              "int() of %s is out of range at position %u",
                              text, n->pos);
        }
        *out = sh_int((int64_t)a.u.f);
        return 0;
    case EX_INT_S:
        EVN(0, a);
        *out = string_to_int(a);
        return 0;
    case EX_INT_B:
        EVN(0, a);
        *out = sh_int(a.u.b != 0);
        return 0;
    case EX_FLOAT_S:
        EVN(0, a);
        *out = string_to_float(a);
        return 0;
    case EX_FLOAT_B:
        EVN(0, a);
        *out = sh_float(a.u.b ? 1.0 : 0.0);
        return 0;
    case EX_STR:
        EVN(0, a);
        *out = to_text(a, c->a);
        return 0;
    case EX_COALESCE:
        for (i = 0; i < n->nkids; i++) {
            EV(i, a);
            if (a.type != SH_NULL)
                break;
        }
        *out = a;
        return 0;
    case EX_IS_NULL:
        EV(0, a);
        *out = sh_bool(a.type == SH_NULL);
        return 0;
    case EX_IF:
        EV(0, a);
        return eval(n->kids[a.type == SH_BOOL && a.u.b ? 1 : 2], c, out);
    case EX_HASH:
        EVN(0, a);
        *out = sh_int(hash_value(a));
        return 0;
    default:
        return eval2(n, c, out);
    }
    return sh_err_set(c->err, SH_ERANGE, c->path,
                      "internal error: unknown expression node %d", n->op);
}

/*
 * Evaluates 'e' on 'row'. Strings it makes are allocated in 'a'; a string
 * result may also borrow from 'row' or from 'e'. Returns 0, SH_ERANGE
 * (overflow, int() out of range) or SH_EDATA (a row value whose type is not
 * its column's), with 'err' filled.
 */
int
expr_eval(const expr *e, const sh_value *row, arena *a, sh_value *out,
          sh_err *err)
{
    evalctx c;

    c.row = row;
    c.a = a;
    c.err = err;
    c.path = e->path;
    return eval(e->root, &c, out);
}

/*
 * Evaluates the subtree 'n', which reads no column, for constant folding.
 * Strings it makes are allocated in 'a'. Returns 0 or an SH_E* code with
 * 'err' filled.
 */
int
expr_eval_node(const node *n, arena *a, const char *path, sh_value *out,
               sh_err *err)
{
    evalctx c;

    c.row = NULL;
    c.a = a;
    c.err = err;
    c.path = path;
    return eval(n, &c, out);
}
