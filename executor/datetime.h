/*
 * datetime.h - sheaf's calendar: dates (int64 days since 1970-01-01) and
 * timestamps (int64 microseconds since 1970-01-01T00:00:00Z, UTC) in the
 * proleptic Gregorian calendar. Parsing and formatting of ISO 8601 text,
 * strftime/strptime, field extraction, truncation, differences and
 * calendar arithmetic. Pure functions, no locale, no time zone database.
 *
 * Semantics follow DuckDB where engines differ (see the README):
 * - a timestamp text with an offset (Z, +HH:MM, +HHMM, +HH) is converted to
 *   UTC; one without is taken as UTC;
 * - dow is 0 = Sunday .. 6 = Saturday; week is the ISO 8601 week (1..53);
 *   doy is 1..366;
 * - date_diff counts unit boundaries crossed from a to b (second, minute,
 *   hour, day on the UTC clock; month, quarter, year on the calendar), and
 *   for 'week' the whole weeks in the day difference (truncated toward
 *   zero), as DuckDB 1.x does;
 * - date_add of months, quarters or years clamps the day to the month's
 *   last day (2024-01-31 + 1 month = 2024-02-29).
 */
#ifndef SHEAF_DATETIME_H
#define SHEAF_DATETIME_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/util.h"

#define DT_US_PER_SEC INT64_C(1000000)
#define DT_US_PER_DAY INT64_C(86400000000)

/* The units of date_trunc, date_diff and date_add. */
typedef enum dt_unit {
    DT_SECOND = 0,
    DT_MINUTE,
    DT_HOUR,
    DT_DAY,
    DT_WEEK,
    DT_MONTH,
    DT_QUARTER,
    DT_YEAR
} dt_unit;

/* The fields of year()... (dt_field). */
typedef enum dt_part {
    DT_P_YEAR = 0,
    DT_P_MONTH,
    DT_P_DAY,
    DT_P_HOUR,
    DT_P_MINUTE,
    DT_P_SECOND,
    DT_P_DOW,
    DT_P_DOY,
    DT_P_WEEK
} dt_part;

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12, d 1..31). */
int64_t dt_days_from_civil(int64_t y, int m, int d);
/* The civil date of 'days' since 1970-01-01. */
void dt_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Floor division of a by b > 0. */
int64_t dt_floordiv(int64_t a, int64_t b);
/* The date (days) of timestamp 'us'. */
int64_t dt_ts_days(int64_t us);

/*
 * Parses an ISO 8601 date "YYYY-MM-DD" (exactly 4-digit year) from the
 * 'n' bytes at 'p'. Returns 0 and sets *days, or -1.
 */
int dt_parse_date(const char *p, size_t n, int64_t *days);

/*
 * Parses an ISO 8601 timestamp "YYYY-MM-DD[(T| )HH:MM[:SS[.f...]]][offset]"
 * (a bare date is midnight; up to 9 fraction digits, cut to microseconds;
 * offset Z, z, +HH, +HHMM or +HH:MM, converted to UTC). Returns 0 and sets
 * *us, or -1.
 */
int dt_parse_timestamp(const char *p, size_t n, int64_t *us);

/* Appends "YYYY-MM-DD" (years outside 0..9999 with a sign and more
 * digits) to 'sb'. */
void dt_format_date(int64_t days, strbuf *sb);
/* Appends "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (fraction only when not zero). */
void dt_format_timestamp(int64_t us, strbuf *sb);

/* The same into 'buf' (at least 48 bytes); returns the length. */
size_t dt_format_date_buf(int64_t days, char *buf);
size_t dt_format_timestamp_buf(int64_t us, char *buf);

/* Parses a unit name ("second".."year", plural and case ignored);
 * returns 0 or -1. */
int dt_unit_parse(const char *p, size_t n, dt_unit *out);

/* The field 'part' of timestamp 'us'. */
int64_t dt_field(int64_t us, dt_part part);

/* 'us' truncated down to the start of its 'unit' (weeks start Monday). */
int64_t dt_trunc(int64_t us, dt_unit unit);

/* date_diff(unit, a, b) of two timestamps (see the file comment). */
int64_t dt_diff(dt_unit unit, int64_t a_us, int64_t b_us);

/*
 * date_add: 'us' plus 'n' units. Returns 0 and sets *out, or -1 when the
 * result is out of range (more than 290,000 * 365 days from 1970).
 */
int dt_add(int64_t us, int64_t n, dt_unit unit, int64_t *out);

/*
 * strftime: appends 'us' formatted by 'fmt' ('flen' bytes) to 'sb'.
 * Conversions: %Y %y %m %d %e %H %I %M %S %f (microseconds, 6 digits)
 * %p %j %a %A %b %B %u %w %V %G %F %T %D %R %z (+0000) %Z (UTC) %s %%;
 * any other %x is copied as it is.
 */
void dt_strftime(int64_t us, const char *fmt, size_t flen, strbuf *sb);

/*
 * strptime: parses the 'n' bytes at 's' by 'fmt'. Conversions: %Y %y %m
 * %d %e %H %I %M %S %f (1-6 digits) %p %j %b %B %h %a %A (names are
 * checked for spelling only) %F %T %D %R %z (Z, +HH, +HHMM, +HH:MM) %Z
 * (UTC/GMT/Z) %s %% and %n %t and spaces (any white space). The whole
 * text must match. Returns 0 and sets *us, or -1.
 */
int dt_strptime(const char *s, size_t n, const char *fmt, size_t flen,
                int64_t *us);

#endif
