/*
 * datetime.c - sheaf's calendar (see datetime.h): civil dates from day
 * numbers and back (Howard Hinnant's days_from_civil algorithm), ISO 8601
 * text, strftime/strptime without the C library's locale, and the
 * arithmetic behind date_trunc, date_diff and date_add.
 */
#include "datetime.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Years beyond this (either sign) are out of range for arithmetic. */
#define DT_MAX_YEAR 290000
/* Timestamps date_add may make: within 290,000 years of 1970 (so that
 * truncation and field arithmetic on them cannot overflow int64). */
#define DT_LIMIT_US (INT64_C(290000) * 365 * DT_US_PER_DAY)

static const char *const day_names[7] = {"Sunday",    "Monday",   "Tuesday",
                                         "Wednesday", "Thursday", "Friday",
                                         "Saturday"};
static const char *const month_names[12] = {"January", "February", "March",
                                            "April",   "May",      "June",
                                            "July",    "August",   "September",
                                            "October", "November", "December"};

/* Floor division of a by b > 0. */
int64_t
dt_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

/* Days since 1970-01-01 of y-m-d, proleptic Gregorian. */
int64_t
dt_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = dt_floordiv(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The civil date y-m-d of 'days' since 1970-01-01. */
void
dt_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = dt_floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* The date (days) of timestamp 'us'. */
int64_t
dt_ts_days(int64_t us)
{
    return dt_floordiv(us, DT_US_PER_DAY);
}

static int
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

static int
digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly 'k' digits at p[*i]; returns the number or -1. */
static int64_t
digits(const char *p, size_t n, size_t *i, int k)
{
    int64_t v = 0;
    int     j;

    if (*i + (size_t)k > n)
        return -1;
    for (j = 0; j < k; j++) {
        if (!digit(p[*i + (size_t)j]))
            return -1;
        v = v * 10 + (p[*i + (size_t)j] - '0');
    }
    *i += (size_t)k;
    return v;
}

/* "YYYY-MM-DD" at p[*i]; sets *days. */
static int
date_part(const char *p, size_t n, size_t *i, int64_t *days)
{
    int64_t y, m, d;

    if ((y = digits(p, n, i, 4)) < 0 || *i >= n || p[(*i)++] != '-'
        || (m = digits(p, n, i, 2)) < 0 || *i >= n || p[(*i)++] != '-'
        || (d = digits(p, n, i, 2)) < 0)
        return -1;
    if (m < 1 || m > 12 || d < 1 || d > month_days(y, (int)m))
        return -1;
    *days = dt_days_from_civil(y, (int)m, (int)d);
    return 0;
}

/* Parses "YYYY-MM-DD". */
int
dt_parse_date(const char *p, size_t n, int64_t *days)
{
    size_t i = 0;

    if (n != 10 || date_part(p, n, &i, days) != 0)
        return -1;
    return 0;
}

/* An offset Z, +HH, +HHMM or +HH:MM at p[*i] to the end; *sec east. */
static int
offset_part(const char *p, size_t n, size_t *i, int64_t *sec)
{
    int64_t h, m = 0;
    int     neg;

    if (*i < n && (p[*i] == 'Z' || p[*i] == 'z')) {
        (*i)++;
        *sec = 0;
        return 0;
    }
    if (*i >= n || (p[*i] != '+' && p[*i] != '-'))
        return -1;
    neg = p[(*i)++] == '-';
    if ((h = digits(p, n, i, 2)) < 0)
        return -1;
    if (*i < n && p[*i] == ':')
        (*i)++;
    if (*i < n && (m = digits(p, n, i, 2)) < 0)
        return -1;
    if (h > 23 || m > 59)
        return -1;
    *sec = (h * 3600 + m * 60) * (neg ? -1 : 1);
    return 0;
}

/* Parses an ISO 8601 timestamp (see datetime.h). */
int
dt_parse_timestamp(const char *p, size_t n, int64_t *us)
{
    size_t  i = 0;
    int64_t days, h, mi, s = 0, frac = 0, off = 0;
    int     k;

    if (date_part(p, n, &i, &days) != 0)
        return -1;
    if (i == n) {
        *us = days * DT_US_PER_DAY;
        return 0;
    }
    if (p[i] != 'T' && p[i] != 't' && p[i] != ' ')
        return -1;
    i++;
    if ((h = digits(p, n, &i, 2)) < 0 || i >= n || p[i++] != ':'
        || (mi = digits(p, n, &i, 2)) < 0)
        return -1;
    if (i < n && p[i] == ':') {
        i++;
        if ((s = digits(p, n, &i, 2)) < 0)
            return -1;
        if (i < n && p[i] == '.') {
            i++;
            for (k = 0; i < n && digit(p[i]); k++, i++) {
                if (k < 6)
                    frac = frac * 10 + (p[i] - '0');
            }
            if (k == 0 || k > 9)
                return -1;
            for (; k < 6; k++)
                frac *= 10;
        }
    }
    if (h > 23 || mi > 59 || s > 59)
        return -1;
    if (i < n && offset_part(p, n, &i, &off) != 0)
        return -1;
    if (i != n)
        return -1;
    *us = days * DT_US_PER_DAY + ((h * 60 + mi) * 60 + s - off) * DT_US_PER_SEC
          + frac;
    return 0;
}

/* "YYYY-MM-DD" into buf. */
size_t
dt_format_date_buf(int64_t days, char *buf)
{
    int64_t y;
    int     m, d;

    dt_civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999)
        return (size_t)snprintf(buf, 48, "%04d-%02d-%02d", (int)y, m, d);
    return (size_t)snprintf(buf, 48, "%+05" PRId64 "-%02d-%02d", y, m, d);
}

/* "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" into buf. */
size_t
dt_format_timestamp_buf(int64_t us, char *buf)
{
    int64_t days = dt_ts_days(us);
    int64_t rem = us - days * DT_US_PER_DAY;
    int64_t sec = rem / DT_US_PER_SEC, frac = rem % DT_US_PER_SEC;
    size_t  n = dt_format_date_buf(days, buf);

    n += (size_t)snprintf(buf + n, 48 - n, "T%02d:%02d:%02d", (int)(sec / 3600),
                          (int)(sec / 60 % 60), (int)(sec % 60));
    if (frac != 0)
        n += (size_t)snprintf(buf + n, 48 - n, ".%06d", (int)frac);
    buf[n++] = 'Z';
    buf[n] = '\0';
    return n;
}

/* Appends the date text. */
void
dt_format_date(int64_t days, strbuf *sb)
{
    char buf[48];

    sb_append(sb, buf, dt_format_date_buf(days, buf));
}

/* Appends the timestamp text. */
void
dt_format_timestamp(int64_t us, strbuf *sb)
{
    char buf[48];

    sb_append(sb, buf, dt_format_timestamp_buf(us, buf));
}

/* Parses a unit name, singular or plural, any case. */
int
dt_unit_parse(const char *p, size_t n, dt_unit *out)
{
    static const char *const names[] = {"second", "minute", "hour",    "day",
                                        "week",   "month",  "quarter", "year"};
    size_t                   i, len;

    if (n > 0 && (p[n - 1] == 's' || p[n - 1] == 'S'))
        n--;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        len = strlen(names[i]);
        if (len == n && strncasecmp(p, names[i], n) == 0) {
            *out = (dt_unit)i;
            return 0;
        }
    }
    return -1;
}

/* Day of week of 'days', 0 = Sunday. (1970-01-01 was a Thursday.) */
static int
dow_of(int64_t days)
{
    return (int)(dt_floordiv(days + 4, 7) * -7 + days + 4);
}

/* ISO 8601 week number and week-based year of 'days'. */
static void
iso_week(int64_t days, int *week, int64_t *iso_year)
{
    int     isodow = (dow_of(days) + 6) % 7; /* 0 = Monday */
    int64_t thursday = days - isodow + 3, y, jan1;
    int     m, d;

    dt_civil_from_days(thursday, &y, &m, &d);
    jan1 = dt_days_from_civil(y, 1, 1);
    *week = (int)((thursday - jan1) / 7 + 1);
    *iso_year = y;
}

/* A field of timestamp 'us'. */
int64_t
dt_field(int64_t us, dt_part part)
{
    int64_t days = dt_ts_days(us), y, iy;
    int64_t sec = (us - days * DT_US_PER_DAY) / DT_US_PER_SEC;
    int     m, d, w;

    dt_civil_from_days(days, &y, &m, &d);
    switch (part) {
    case DT_P_YEAR:
        return y;
    case DT_P_MONTH:
        return m;
    case DT_P_DAY:
        return d;
    case DT_P_HOUR:
        return sec / 3600;
    case DT_P_MINUTE:
        return sec / 60 % 60;
    case DT_P_SECOND:
        return sec % 60;
    case DT_P_DOW:
        return dow_of(days);
    case DT_P_DOY:
        return days - dt_days_from_civil(y, 1, 1) + 1;
    case DT_P_WEEK:
        iso_week(days, &w, &iy);
        return w;
    }
    return 0;
}

/* Truncates 'us' to the start of its unit. */
int64_t
dt_trunc(int64_t us, dt_unit unit)
{
    int64_t days = dt_ts_days(us), y;
    int     m, d;

    switch (unit) {
    case DT_SECOND:
        return dt_floordiv(us, DT_US_PER_SEC) * DT_US_PER_SEC;
    case DT_MINUTE:
        return dt_floordiv(us, 60 * DT_US_PER_SEC) * 60 * DT_US_PER_SEC;
    case DT_HOUR:
        return dt_floordiv(us, 3600 * DT_US_PER_SEC) * 3600 * DT_US_PER_SEC;
    case DT_DAY:
        return days * DT_US_PER_DAY;
    case DT_WEEK:
        return (days - (dow_of(days) + 6) % 7) * DT_US_PER_DAY;
    case DT_MONTH:
    case DT_QUARTER:
    case DT_YEAR:
        dt_civil_from_days(days, &y, &m, &d);
        if (unit == DT_YEAR)
            m = 1;
        else if (unit == DT_QUARTER)
            m = (m - 1) / 3 * 3 + 1;
        return dt_days_from_civil(y, m, 1) * DT_US_PER_DAY;
    }
    return us;
}

/* date_diff: unit boundaries crossed from a to b. */
int64_t
dt_diff(dt_unit unit, int64_t a, int64_t b)
{
    int64_t ya, yb, step;
    int     ma, mb, d;

    switch (unit) {
    case DT_SECOND:
    case DT_MINUTE:
    case DT_HOUR:
    case DT_DAY:
        step = unit == DT_SECOND   ? DT_US_PER_SEC
               : unit == DT_MINUTE ? 60 * DT_US_PER_SEC
               : unit == DT_HOUR   ? 3600 * DT_US_PER_SEC
                                   : DT_US_PER_DAY;
        return dt_floordiv(b, step) - dt_floordiv(a, step);
    case DT_WEEK:
        return (dt_ts_days(b) - dt_ts_days(a)) / 7;
    case DT_MONTH:
    case DT_QUARTER:
    case DT_YEAR:
        dt_civil_from_days(dt_ts_days(a), &ya, &ma, &d);
        dt_civil_from_days(dt_ts_days(b), &yb, &mb, &d);
        if (unit == DT_YEAR)
            return yb - ya;
        if (unit == DT_MONTH)
            return (yb * 12 + mb - 1) - (ya * 12 + ma - 1);
        return (yb * 4 + (mb - 1) / 3) - (ya * 4 + (ma - 1) / 3);
    }
    return 0;
}

/* date_add: 'us' plus 'n' units, months clamped to the month's end. */
int
dt_add(int64_t us, int64_t n, dt_unit unit, int64_t *out)
{
    int64_t step, days, rem, y, months;
    int     m, d, md;

    switch (unit) {
    case DT_SECOND:
    case DT_MINUTE:
    case DT_HOUR:
    case DT_DAY:
    case DT_WEEK:
        step = unit == DT_SECOND   ? DT_US_PER_SEC
               : unit == DT_MINUTE ? 60 * DT_US_PER_SEC
               : unit == DT_HOUR   ? 3600 * DT_US_PER_SEC
               : unit == DT_DAY    ? DT_US_PER_DAY
                                   : 7 * DT_US_PER_DAY;
        if (__builtin_mul_overflow(n, step, &step)
            || __builtin_add_overflow(us, step, out) || *out > DT_LIMIT_US
            || *out < -DT_LIMIT_US)
            return -1;
        return 0;
    case DT_MONTH:
    case DT_QUARTER:
    case DT_YEAR:
        months = unit == DT_MONTH ? 1 : unit == DT_QUARTER ? 3 : 12;
        if (n > 12 * DT_MAX_YEAR || n < -12 * DT_MAX_YEAR)
            return -1;
        days = dt_ts_days(us);
        rem = us - days * DT_US_PER_DAY;
        dt_civil_from_days(days, &y, &m, &d);
        months = y * 12 + (m - 1) + n * months;
        y = dt_floordiv(months, 12);
        m = (int)(months - y * 12) + 1;
        if (y > DT_MAX_YEAR || y < -DT_MAX_YEAR)
            return -1;
        md = month_days(y, m);
        if (d > md)
            d = md;
        *out = dt_days_from_civil(y, m, d) * DT_US_PER_DAY + rem;
        if (*out > DT_LIMIT_US || *out < -DT_LIMIT_US)
            return -1;
        return 0;
    }
    return -1;
}

/* strftime (see datetime.h). */
void
dt_strftime(int64_t us, const char *fmt, size_t flen, strbuf *sb)
{
    int64_t days = dt_ts_days(us), y, iy;
    int64_t rem = us - days * DT_US_PER_DAY;
    int64_t sec = rem / DT_US_PER_SEC;
    int     m, d, h, w, dow;
    size_t  i;

    dt_civil_from_days(days, &y, &m, &d);
    h = (int)(sec / 3600);
    dow = dow_of(days);
    for (i = 0; i < flen; i++) {
        if (fmt[i] != '%' || i + 1 == flen) {
            sb_putc(sb, fmt[i]);
            continue;
        }
        switch (fmt[++i]) {
        case 'Y':
            sb_printf(sb, y >= 0 && y <= 9999 ? "%04" PRId64 : "%" PRId64, y);
            break;
        case 'y':
            sb_printf(sb, "%02d", (int)(((y % 100) + 100) % 100));
            break;
        case 'm':
            sb_printf(sb, "%02d", m);
            break;
        case 'd':
            sb_printf(sb, "%02d", d);
            break;
        case 'e':
            sb_printf(sb, "%2d", d);
            break;
        case 'H':
            sb_printf(sb, "%02d", h);
            break;
        case 'I':
            sb_printf(sb, "%02d", h % 12 == 0 ? 12 : h % 12);
            break;
        case 'M':
            sb_printf(sb, "%02d", (int)(sec / 60 % 60));
            break;
        case 'S':
            sb_printf(sb, "%02d", (int)(sec % 60));
            break;
        case 'f':
            sb_printf(sb, "%06d", (int)(rem % DT_US_PER_SEC));
            break;
        case 'p':
            sb_puts(sb, h < 12 ? "AM" : "PM");
            break;
        case 'j':
            sb_printf(sb, "%03d",
                      (int)(days - dt_days_from_civil(y, 1, 1) + 1));
            break;
        case 'a':
            sb_append(sb, day_names[dow], 3);
            break;
        case 'A':
            sb_puts(sb, day_names[dow]);
            break;
        case 'b':
        case 'h':
            sb_append(sb, month_names[m - 1], 3);
            break;
        case 'B':
            sb_puts(sb, month_names[m - 1]);
            break;
        case 'u':
            sb_printf(sb, "%d", dow == 0 ? 7 : dow);
            break;
        case 'w':
            sb_printf(sb, "%d", dow);
            break;
        case 'V':
            iso_week(days, &w, &iy);
            sb_printf(sb, "%02d", w);
            break;
        case 'G':
            iso_week(days, &w, &iy);
            sb_printf(sb, "%04" PRId64, iy);
            break;
        case 'F':
            dt_strftime(us, "%Y-%m-%d", 8, sb);
            break;
        case 'T':
            dt_strftime(us, "%H:%M:%S", 8, sb);
            break;
        case 'D':
            dt_strftime(us, "%m/%d/%y", 8, sb);
            break;
        case 'R':
            dt_strftime(us, "%H:%M", 5, sb);
            break;
        case 'z':
            sb_puts(sb, "+0000");
            break;
        case 'Z':
            sb_puts(sb, "UTC");
            break;
        case 's':
            sb_printf(sb, "%" PRId64, dt_floordiv(us, DT_US_PER_SEC));
            break;
        case '%':
            sb_putc(sb, '%');
            break;
        default:
            sb_putc(sb, '%');
            sb_putc(sb, fmt[i]);
            break;
        }
    }
}

/* Reads 1..max digits (an optional sign if 'sign'); returns 0 or -1. */
static int
num(const char *s, size_t n, size_t *i, int max, int sign, int64_t *out)
{
    int64_t v = 0;
    int     k = 0, neg = 0;

    if (sign && *i < n && (s[*i] == '-' || s[*i] == '+'))
        neg = s[(*i)++] == '-';
    while (k < max && *i < n && digit(s[*i])) {
        v = v * 10 + (s[(*i)++] - '0');
        k++;
    }
    if (k == 0)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

/* Matches one of 'names' (full or 3-letter) at s[*i]; sets *idx. */
static int
name_match(const char *s, size_t n, size_t *i, const char *const *names,
           int count, int *idx)
{
    int k;

    for (k = 0; k < count; k++) {
        size_t len = strlen(names[k]);

        if (*i + len <= n && strncasecmp(s + *i, names[k], len) == 0) {
            *i += len;
            *idx = k;
            return 0;
        }
    }
    for (k = 0; k < count; k++) {
        if (*i + 3 <= n && strncasecmp(s + *i, names[k], 3) == 0) {
            *i += 3;
            *idx = k;
            return 0;
        }
    }
    return -1;
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}

/* The fields strptime collects. */
typedef struct ptm {
    int64_t y, m, d, h, mi, s, us, doy, off, epoch;
    int     pm, has_pm, has_doy, has_epoch;
} ptm;

/* One strptime conversion 'c' at s[*i]. */
static int
ptm_conv(ptm *t, char c, const char *s, size_t n, size_t *i)
{
    int64_t v;
    int     idx, k;

    switch (c) {
    case 'Y':
        return num(s, n, i, 4, 1, &t->y);
    case 'y':
        if (num(s, n, i, 2, 0, &v) != 0)
            return -1;
        t->y = v < 69 ? 2000 + v : 1900 + v; /* POSIX's pivot */
        return 0;
    case 'm':
        return num(s, n, i, 2, 0, &t->m);
    case 'd':
    case 'e':
        while (*i < n && s[*i] == ' ' && c == 'e')
            (*i)++;
        return num(s, n, i, 2, 0, &t->d);
    case 'H':
        return num(s, n, i, 2, 0, &t->h);
    case 'I':
        if (num(s, n, i, 2, 0, &t->h) != 0 || t->h < 1 || t->h > 12)
            return -1;
        t->has_pm = t->has_pm ? t->has_pm : 1;
        return 0;
    case 'M':
        return num(s, n, i, 2, 0, &t->mi);
    case 'S':
        return num(s, n, i, 2, 0, &t->s);
    case 'f':
        for (k = 0, t->us = 0; k < 6 && *i < n && digit(s[*i]); k++)
            t->us = t->us * 10 + (s[(*i)++] - '0');
        if (k == 0)
            return -1;
        for (; k < 6; k++)
            t->us *= 10;
        return 0;
    case 'p':
        if (*i + 2 <= n && strncasecmp(s + *i, "AM", 2) == 0)
            t->pm = 0;
        else if (*i + 2 <= n && strncasecmp(s + *i, "PM", 2) == 0)
            t->pm = 1;
        else
            return -1;
        *i += 2;
        t->has_pm = 2;
        return 0;
    case 'j':
        t->has_doy = 1;
        return num(s, n, i, 3, 0, &t->doy);
    case 'b':
    case 'B':
    case 'h':
        if (name_match(s, n, i, month_names, 12, &idx) != 0)
            return -1;
        t->m = idx + 1;
        return 0;
    case 'a':
    case 'A':
        return name_match(s, n, i, day_names, 7, &idx);
    case 'z':
        return offset_part(s, n, i, &t->off);
    case 'Z':
        if (*i + 3 <= n
            && (strncasecmp(s + *i, "UTC", 3) == 0
                || strncasecmp(s + *i, "GMT", 3) == 0)) {
            *i += 3;
            return 0;
        }
        if (*i < n && (s[*i] == 'Z' || s[*i] == 'z')) {
            (*i)++;
            return 0;
        }
        return -1;
    case 's':
        t->has_epoch = 1;
        return num(s, n, i, 18, 1, &t->epoch);
    case '%':
        return *i < n && s[(*i)++] == '%' ? 0 : -1;
    case 'n':
    case 't':
        while (*i < n && is_space(s[*i]))
            (*i)++;
        return 0;
    }
    return -1;
}

/* Runs 'fmt' over 's' into 't'. */
static int
ptm_run(ptm *t, const char *s, size_t n, size_t *i, const char *fmt,
        size_t flen)
{
    size_t j;

    for (j = 0; j < flen; j++) {
        char c = fmt[j];

        if (is_space(c)) {
            while (*i < n && is_space(s[*i]))
                (*i)++;
        } else if (c != '%') {
            if (*i >= n || s[*i] != c)
                return -1;
            (*i)++;
        } else if (++j == flen) {
            return -1;
        } else if (fmt[j] == 'F') {
            if (ptm_run(t, s, n, i, "%Y-%m-%d", 8) != 0)
                return -1;
        } else if (fmt[j] == 'T') {
            if (ptm_run(t, s, n, i, "%H:%M:%S", 8) != 0)
                return -1;
        } else if (fmt[j] == 'D') {
            if (ptm_run(t, s, n, i, "%m/%d/%y", 8) != 0)
                return -1;
        } else if (fmt[j] == 'R') {
            if (ptm_run(t, s, n, i, "%H:%M", 5) != 0)
                return -1;
        } else if (ptm_conv(t, fmt[j], s, n, i) != 0) {
            return -1;
        }
    }
    return 0;
}

/* strptime (see datetime.h). */
int
dt_strptime(const char *s, size_t n, const char *fmt, size_t flen, int64_t *us)
{
    ptm     t;
    size_t  i = 0;
    int64_t days;

    memset(&t, 0, sizeof t);
    t.y = 1900;
    t.m = 1;
    t.d = 1;
    if (ptm_run(&t, s, n, &i, fmt, flen) != 0 || i != n)
        return -1;
    if (t.has_epoch) {
        if (t.epoch > INT64_MAX / DT_US_PER_SEC
            || t.epoch < INT64_MIN / DT_US_PER_SEC)
            return -1;
        *us = t.epoch * DT_US_PER_SEC;
        return 0;
    }
    if (t.has_pm == 2) {
        if (t.h < 1 || t.h > 12)
            return -1;
        t.h = t.h % 12 + (t.pm ? 12 : 0);
    }
    if (t.m < 1 || t.m > 12 || t.h > 23 || t.mi > 59 || t.s > 59)
        return -1;
    if (t.has_doy) {
        if (t.doy < 1 || t.doy > (is_leap(t.y) ? 366 : 365))
            return -1;
        days = dt_days_from_civil(t.y, 1, 1) + t.doy - 1;
    } else {
        if (t.d < 1 || t.d > month_days(t.y, (int)t.m))
            return -1;
        days = dt_days_from_civil(t.y, (int)t.m, (int)t.d);
    }
    *us = days * DT_US_PER_DAY
          + ((t.h * 60 + t.mi) * 60 + t.s - t.off) * DT_US_PER_SEC + t.us;
    return 0;
}
