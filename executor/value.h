/*
 * value.h - sheaf's column types, typed values, schemas, and the text forms
 * of values (parsing input fields, formatting output fields).
 *
 * A value is small and passed by value. A string value borrows its bytes
 * (from a reader's buffer or an arena); whoever produced it says how long
 * they live.
 */
#ifndef SHEAF_VALUE_H
#define SHEAF_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/util.h"

/* Column and value types. A value of type SH_NULL is the null value. */
typedef enum sh_type {
    SH_NULL =
        0,     /* as a value: null; as a column type: "unknown, always null" */
    SH_INT,    /* int64_t */
    SH_FLOAT,  /* double */
    SH_STRING, /* bytes, UTF-8, not NUL-terminated */
    SH_BOOL,   /* 0 or 1 */
    SH_DATE,   /* int64_t in u.i: days since 1970-01-01 (datetime.h) */
    SH_TIMESTAMP /* int64_t in u.i: microseconds since 1970-01-01, UTC */
} sh_type;

typedef struct sh_value {
    sh_type type; /* SH_NULL for null */
    union {
        int64_t i;
        double  f;
        int     b;
        struct {
            const char *ptr; /* borrowed */
            size_t      len;
        } s;
    } u;
} sh_value;

/* Constructors. */
static inline sh_value
sh_null(void)
{
    sh_value v;
    v.type = SH_NULL;
    v.u.i = 0;
    return v;
}
static inline sh_value
sh_int(int64_t i)
{
    sh_value v;
    v.type = SH_INT;
    v.u.i = i;
    return v;
}
static inline sh_value
sh_float(double f)
{
    sh_value v;
    v.type = SH_FLOAT;
    v.u.f = f;
    return v;
}
static inline sh_value
sh_bool(int b)
{
    sh_value v;
    v.type = SH_BOOL;
    v.u.b = b != 0;
    return v;
}
static inline sh_value
sh_date(int64_t d)
{
    sh_value v;
    v.type = SH_DATE;
    v.u.i = d;
    return v;
}
static inline sh_value
sh_timestamp(int64_t us)
{
    sh_value v;
    v.type = SH_TIMESTAMP;
    v.u.i = us;
    return v;
}
static inline sh_value
sh_str(const char *p, size_t n)
{
    sh_value v;
    v.type = SH_STRING;
    v.u.s.ptr = p;
    v.u.s.len = n;
    return v;
}

/* "int", "float", "string", "bool", "date", "timestamp" ("null" for
 * SH_NULL). */
const char *sh_type_name(sh_type t);
/* Parses a type name of the job spec; returns 0 and sets *out, or -1. */
int sh_type_parse(const char *name, sh_type *out);

/*
 * A schema: the ordered, named, typed columns of a row. Owns its names.
 */
typedef struct schema {
    size_t   n;     /* number of columns */
    char   **names; /* owned, NUL-terminated */
    sh_type *types;
} schema;

schema *schema_new(void);
/* Appends a column (copies 'name'); returns its index. */
size_t schema_add(schema *s, const char *name, sh_type t);
/* Index of column 'name', or -1. */
long    schema_find(const schema *s, const char *name);
schema *schema_copy(const schema *s);
void    schema_free(schema *s);

/*
 * Parse the text of an input field as type 't'. 'p'/'n' is the field
 * without quotes. An empty field (n == 0) is null for every type.
 * int: optional sign and decimal digits, 64-bit, no overflow;
 * float: a decimal or scientific number, "inf", "-inf", "nan" (any case);
 * bool: true/false, t/f, yes/no, 1/0 (any case);
 * string: the bytes themselves (borrowed: *out points into 'p');
 * date: YYYY-MM-DD; timestamp: YYYY-MM-DD[T| ]HH:MM[:SS[.f]][Z|+-HH:MM]
 * or a bare date (midnight), converted to UTC (datetime.h).
 * Surrounding spaces are not allowed for numbers.
 * Returns 0, or -1 when the text is not a value of that type.
 */
int value_parse(sh_type t, const char *p, size_t n, sh_value *out);

/*
 * Append the text form of 'v' to 'sb': ints in decimal, floats as the
 * shortest text that reads back to the same double ("0.1", "3", "1e+16",
 * "inf", "-inf", "nan"), bools as "true"/"false", strings as their bytes,
 * dates as YYYY-MM-DD, timestamps as YYYY-MM-DDTHH:MM:SS[.ffffff]Z,
 * null as nothing. No quoting: writers quote as their format needs.
 */
void value_format(const sh_value *v, strbuf *sb);

/* Shortest round-trip text of 'd' into 'buf' (at least 32 bytes); returns
 * the length. */
size_t format_double(double d, char *buf);

/*
 * Total order used by sort and comparisons of same-typed values: ints and
 * floats compare numerically with each other, strings by bytes, false <
 * true, dates and timestamps in time order (a date is its midnight). Nulls are
 * not handled here (callers place them). Returns <0, 0, >0.
 */
int value_cmp(const sh_value *a, const sh_value *b);

/* Doubles in value_cmp's order: NaN after every number and equal to
 * itself, -0 == 0. Returns <0, 0, >0. */
static inline int
value_cmp_double(double a, double b)
{
    if (a < b)
        return -1;
    if (a > b)
        return 1;
    if (a == b)
        return 0;
    if (a != a)
        return b != b ? 0 : 1;
    return -1;
}

#endif
