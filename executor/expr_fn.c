/*
 * expr_fn.c - the function library of sheaf's expression language, as the
 * compiler sees it: the table of functions and their argument counts, the
 * "unknown function" message with its suggestions, and the type checking
 * of a call that picks the typed operation (EX_*) it compiles to. The
 * operations themselves run in the evaluator (expr_eval.c), whose dispatch
 * loop keeps them inline.
 */
#include "expr_int.h"

#include "datetime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum fn_id {
    FN_LOWER,
    FN_UPPER,
    FN_LENGTH,
    FN_SUBSTR,
    FN_CONTAINS,
    FN_STARTS_WITH,
    FN_ENDS_WITH,
    FN_CONCAT,
    FN_ABS,
    FN_ROUND,
    FN_FLOOR,
    FN_CEIL,
    FN_SQRT,
    FN_LN,
    FN_EXP,
    FN_INT,
    FN_FLOAT,
    FN_STR,
    FN_COALESCE,
    FN_IS_NULL,
    FN_IF,
    FN_HASH,
    FN_DATE,
    FN_TIMESTAMP,
    FN_STRPTIME,
    FN_STRFTIME,
    FN_YEAR,
    FN_MONTH,
    FN_DAY,
    FN_HOUR,
    FN_MINUTE,
    FN_SECOND,
    FN_DOW,
    FN_DOY,
    FN_WEEK,
    FN_DATE_TRUNC,
    FN_DATE_DIFF,
    FN_DATE_ADD,
    FN_RE_MATCHES,
    FN_RE_EXTRACT,
    FN_RE_REPLACE,
    FN_TRIM,
    FN_LTRIM,
    FN_RTRIM,
    FN_REPLACE,
    FN_SPLIT_PART,
    FN_STRPOS,
    FN_LPAD,
    FN_RPAD,
    FN_REVERSE
} fn_id;

/* A function of the language: its name and how many arguments it takes. */
struct fn_def {
    const char *name;
    fn_id       id;
    int         min_args;
    int         max_args; /* -1: any number */
};

static const fn_def fns[] = {
    {"lower", FN_LOWER, 1, 1},
    {"upper", FN_UPPER, 1, 1},
    {"length", FN_LENGTH, 1, 1},
    {"substr", FN_SUBSTR, 2, 3},
    {"contains", FN_CONTAINS, 2, 2},
    {"starts_with", FN_STARTS_WITH, 2, 2},
    {"ends_with", FN_ENDS_WITH, 2, 2},
    {"concat", FN_CONCAT, 1, -1},
    {"abs", FN_ABS, 1, 1},
    {"round", FN_ROUND, 1, 2},
    {"floor", FN_FLOOR, 1, 1},
    {"ceil", FN_CEIL, 1, 1},
    {"sqrt", FN_SQRT, 1, 1},
    {"ln", FN_LN, 1, 1},
    {"exp", FN_EXP, 1, 1},
    {"int", FN_INT, 1, 1},
    {"float", FN_FLOAT, 1, 1},
    {"str", FN_STR, 1, 1},
    {"coalesce", FN_COALESCE, 1, -1},
    {"is_null", FN_IS_NULL, 1, 1},
    {"if", FN_IF, 3, 3},
    {"hash", FN_HASH, 1, 1},
    {"date", FN_DATE, 1, 1},
    {"timestamp", FN_TIMESTAMP, 1, 1},
    {"strptime", FN_STRPTIME, 2, 2},
    {"strftime", FN_STRFTIME, 2, 2},
    {"year", FN_YEAR, 1, 1},
    {"month", FN_MONTH, 1, 1},
    {"day", FN_DAY, 1, 1},
    {"hour", FN_HOUR, 1, 1},
    {"minute", FN_MINUTE, 1, 1},
    {"second", FN_SECOND, 1, 1},
    {"dow", FN_DOW, 1, 1},
    {"doy", FN_DOY, 1, 1},
    {"week", FN_WEEK, 1, 1},
    {"date_trunc", FN_DATE_TRUNC, 2, 2},
    {"date_diff", FN_DATE_DIFF, 3, 3},
    {"date_add", FN_DATE_ADD, 3, 3},
    {"regexp_matches", FN_RE_MATCHES, 2, 2},
    {"regexp_extract", FN_RE_EXTRACT, 2, 3},
    {"regexp_replace", FN_RE_REPLACE, 3, 3},
    {"trim", FN_TRIM, 1, 2},
    {"ltrim", FN_LTRIM, 1, 2},
    {"rtrim", FN_RTRIM, 1, 2},
    {"replace", FN_REPLACE, 3, 3},
    {"split_part", FN_SPLIT_PART, 3, 3},
    {"strpos", FN_STRPOS, 2, 2},
    {"lpad", FN_LPAD, 2, 3},
    {"rpad", FN_RPAD, 2, 3},
    {"reverse", FN_REVERSE, 1, 1},
};
#define N_FNS (sizeof fns / sizeof fns[0])

/* Looks up a function by name, ignoring case; NULL if there is none. */
const fn_def *
expr_find_fn(const char *name)
{
    size_t i;

    for (i = 0; i < N_FNS; i++) {
        if (strcasecmp(name, fns[i].name) == 0)
            return &fns[i];
    }
    return NULL;
}

/* Optimal-string-alignment distance of two short names, ignoring case. */
static size_t
name_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, best;
    size_t d[33][33];

    if (la > 32 || lb > 32)
        return 99;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1])
                          != tolower((unsigned char)b[j - 1]);

            best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1
                && tolower((unsigned char)a[i - 1])
                       == tolower((unsigned char)b[j - 2])
                && tolower((unsigned char)a[i - 2])
                       == tolower((unsigned char)b[j - 1])
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* Is function name 'fn' a likely meaning of the unknown name 'name'? */
static int
name_close(const char *name, const char *fn)
{
    size_t ln = strlen(name), lf = strlen(fn);
    size_t limit = ln <= 4 ? 1 : 2;

    if (name_distance(name, fn) <= limit)
        return 1;
    /* One a prefix of the other: "len" for length, "substring" for substr */
    if (ln >= 3 && lf >= 3 && strncasecmp(name, fn, ln < lf ? ln : lf) == 0)
        return 1;
    return 0;
}

/* Sets the "unknown function" error with suggestions or the list. */
void *
expr_unknown_function(parser *p, const tok *t)
{
    strbuf sb = {0};
    size_t i, nclose = 0;

    for (i = 0; i < N_FNS; i++) {
        if (name_close(t->text, fns[i].name)) {
            sb_puts(&sb, nclose ? " or " : "; did you mean ");
            sb_puts(&sb, fns[i].name);
            nclose++;
        }
    }
    if (nclose)
        sb_putc(&sb, '?');
    else {
        sb_puts(&sb, "; functions are: ");
        for (i = 0; i < N_FNS; i++)
            sb_printf(&sb, "%s%s", i ? ", " : "", fns[i].name);
    }
    expr_perr(p, "unknown function '%.*s' at position %u%s",
              expr_quote_len(t->text, t->tlen, QUOTE_BYTES), t->text, t->pos,
              sb.data);
    sb_free(&sb);
    return NULL;
}

/* Checks a function's argument count; returns 0 or sets the error. */
int
expr_check_arity(parser *p, const fn_def *f, const tok *t, size_t nargs)
{
    int n = (int)nargs;

    if (n >= f->min_args && (f->max_args < 0 || n <= f->max_args))
        return 0;
    if (f->max_args < 0)
        expr_perr(p, "%s takes at least %d argument%s, got %d at position %u",
                  f->name, f->min_args, f->min_args == 1 ? "" : "s", n, t->pos);
    else if (f->min_args == f->max_args)
        expr_perr(p, "%s takes %d argument%s, got %d at position %u", f->name,
                  f->min_args, f->min_args == 1 ? "" : "s", n, t->pos);
    else
        expr_perr(p, "%s takes %d or %d arguments, got %d at position %u",
                  f->name, f->min_args, f->max_args, n, t->pos);
    return -1;
}

/* Type classes an argument may be required to have. */
enum {
    WANT_STRING = 1 << SH_STRING,
    WANT_NUMBER = 1 << SH_INT | 1 << SH_FLOAT,
    WANT_INT = 1 << SH_INT,
    WANT_BOOL = 1 << SH_BOOL,
    WANT_TIME = 1 << SH_DATE | 1 << SH_TIMESTAMP
};

/*
 * Checks that argument 'i' (0-based) of 'f' has a type in 'want' (null is
 * always allowed); returns 0 or sets the error at the argument's position.
 */
static int
want(parser *p, const fn_def *f, size_t i, node **args, const unsigned *argpos,
     unsigned want)
{
    const char *what = want == WANT_STRING   ? "a string"
                       : want == WANT_NUMBER ? "a number"
                       : want == WANT_INT    ? "an int"
                       : want == WANT_TIME   ? "a date or timestamp"
                                             : "a bool";

    if (args[i]->type == SH_NULL || (want & (1u << args[i]->type)))
        return 0;
    expr_perr(p, "argument %zu of %s must be %s, got %s at position %u", i + 1,
              f->name, what, sh_type_name(args[i]->type), argpos[i]);
    return -1;
}

/*
 * The common type of values of types 'a' and 'b' (either may be SH_NULL):
 * the same type, or float for an int and a float. Returns -1 if none.
 */
static int
common_type(sh_type a, sh_type b, sh_type *out)
{
    if (a == SH_NULL || a == b)
        *out = b;
    else if (b == SH_NULL)
        *out = a;
    else if (is_num(a) && is_num(b))
        *out = SH_FLOAT;
    else
        return -1;
    return 0;
}

/* coalesce(a, ...): the arguments share a type; ints meet floats as float */
static node *
make_coalesce(parser *p, const tok *t, node **args, size_t nargs,
              const unsigned *argpos)
{
    sh_type type = SH_NULL;
    size_t  i;

    for (i = 0; i < nargs; i++) {
        if (common_type(type, args[i]->type, &type) != 0)
            return expr_perr(p,
                             "arguments of coalesce must have the same "
                             "type, got %s and %s at position %u",
                             sh_type_name(type), sh_type_name(args[i]->type),
                             argpos[i]);
    }
    for (i = 0; i < nargs && type == SH_FLOAT; i++) {
        if ((args[i] = expr_to_float(p, args[i])) == NULL)
            return NULL;
    }
    if (nargs == 1 || type == SH_NULL)
        return args[0];
    return expr_make(p, EX_COALESCE, type, t->pos, nargs, args);
}

/* if(cond, a, b): 'b' when cond is false or null. */
static node *
make_if(parser *p, const fn_def *f, const tok *t, node **args,
        const unsigned *argpos)
{
    sh_type type;

    if (want(p, f, 0, args, argpos, WANT_BOOL) != 0)
        return NULL;
    if (common_type(args[1]->type, args[2]->type, &type) != 0)
        return expr_perr(p,
                         "arguments 2 and 3 of if must have the same type, "
                         "got %s and %s at position %u",
                         sh_type_name(args[1]->type),
                         sh_type_name(args[2]->type), argpos[2]);
    if (type == SH_FLOAT) {
        if ((args[1] = expr_to_float(p, args[1])) == NULL
            || (args[2] = expr_to_float(p, args[2])) == NULL)
            return NULL;
    }
    if (args[0]->op == EX_CONST)
        return args[0]->type == SH_BOOL && args[0]->k.u.b ? args[1] : args[2];
    return expr_make(p, EX_IF, type, t->pos, 3, args);
}

/*
 * Type-checks a call of 'f' (name token 't') on 'nargs' arguments and
 * builds its node. 'argpos' holds each argument's position.
 */
node *
expr_make_call(parser *p, const fn_def *f, const tok *t, node **args,
               size_t nargs, const unsigned *argpos)
{
    sh_type t0;
    size_t  i;
    int     any_null = 0;

    if (expr_check_arity(p, f, t, nargs) != 0)
        return NULL;
    for (i = 0; i < nargs; i++)
        any_null |= args[i]->type == SH_NULL;
    t0 = args[0]->type;
    switch (f->id) {
    case FN_COALESCE:
        return make_coalesce(p, t, args, nargs, argpos);
    case FN_IF:
        return make_if(p, f, t, args, argpos);
    case FN_IS_NULL:
        return expr_make(p, EX_IS_NULL, SH_BOOL, t->pos, 1, args);
    case FN_CONCAT:
        if (any_null)
            return expr_const_node(p, sh_null(), t->pos);
        if (nargs == 1 && t0 == SH_STRING)
            return args[0];
        return expr_make(p, EX_CONCAT, SH_STRING, t->pos, nargs, args);
    case FN_STR:
        if (t0 == SH_STRING || t0 == SH_NULL)
            return args[0];
        return expr_make(p, EX_STR, SH_STRING, t->pos, 1, args);
    case FN_HASH:
        return expr_make(p, EX_HASH, any_null ? SH_NULL : SH_INT, t->pos, 1,
                         args);
    case FN_INT:
        if (t0 == SH_INT || t0 == SH_NULL)
            return args[0];
        return expr_make(p,
                         t0 == SH_FLOAT    ? EX_INT_F
                         : t0 == SH_STRING ? EX_INT_S
                                           : EX_INT_B,
                         SH_INT, t->pos, 1, args);
    case FN_FLOAT:
        if (t0 == SH_FLOAT || t0 == SH_NULL)
            return args[0];
        if (t0 == SH_INT)
            return expr_to_float(p, args[0]);
        return expr_make(p, t0 == SH_STRING ? EX_FLOAT_S : EX_FLOAT_B, SH_FLOAT,
                         t->pos, 1, args);
    case FN_LOWER:
    case FN_UPPER:
    case FN_LENGTH:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0)
            return NULL;
        return expr_make(p,
                         f->id == FN_LOWER   ? EX_LOWER
                         : f->id == FN_UPPER ? EX_UPPER
                                             : EX_LENGTH,
                         any_null             ? SH_NULL
                         : f->id == FN_LENGTH ? SH_INT
                                              : SH_STRING,
                         t->pos, 1, args);
    case FN_SUBSTR:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_INT) != 0
            || (nargs == 3 && want(p, f, 2, args, argpos, WANT_INT) != 0))
            return NULL;
        return expr_make(p, EX_SUBSTR, any_null ? SH_NULL : SH_STRING, t->pos,
                         nargs, args);
    case FN_CONTAINS:
    case FN_STARTS_WITH:
    case FN_ENDS_WITH:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_STRING) != 0)
            return NULL;
        return expr_make(p,
                         f->id == FN_CONTAINS      ? EX_CONTAINS
                         : f->id == FN_STARTS_WITH ? EX_STARTS_WITH
                                                   : EX_ENDS_WITH,
                         any_null ? SH_NULL : SH_BOOL, t->pos, 2, args);
    case FN_ABS:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0)
            return NULL;
        return expr_make(p, t0 == SH_INT ? EX_ABS_I : EX_ABS_F, t0, t->pos, 1,
                         args);
    case FN_ROUND:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0
            || (nargs == 2 && want(p, f, 1, args, argpos, WANT_INT) != 0))
            return NULL;
        if (any_null)
            return expr_const_node(p, sh_null(), t->pos);
        if (t0 == SH_INT && nargs == 1)
            return args[0];
        return expr_make(p, t0 == SH_INT ? EX_ROUND_I : EX_ROUND_F, t0, t->pos,
                         nargs, args);
    case FN_FLOOR:
    case FN_CEIL:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0)
            return NULL;
        if (t0 != SH_FLOAT)
            return args[0];
        return expr_make(p, f->id == FN_FLOOR ? EX_FLOOR : EX_CEIL, SH_FLOAT,
                         t->pos, 1, args);
    case FN_SQRT:
    case FN_LN:
    case FN_EXP:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0)
            return NULL;
        if ((args[0] = expr_to_float(p, args[0])) == NULL)
            return NULL;
        return expr_make(p,
                         f->id == FN_SQRT ? EX_SQRT
                         : f->id == FN_LN ? EX_LN
                                          : EX_EXP,
                         any_null ? SH_NULL : SH_FLOAT, t->pos, 1, args);
    default:
        return expr_make_call2(p, f, t, args, nargs, argpos);
    }
    return expr_perr(p, "internal error: function %s not built", f->name);
}

/* ---- dates, timestamps, regular expressions, more strings ------------- */

/*
 * 'n' as a value of time type 'to' (SH_TIMESTAMP, or SH_DATE when 'n' is
 * a date or a date text): a date becomes its midnight, a constant string
 * is parsed now. Anything else is an error at 'pos'. NULL on error.
 */
node *
expr_as_time(parser *p, node *n, sh_type to, unsigned pos)
{
    int64_t v;

    if (n->type == to || n->type == SH_NULL)
        return n;
    if (n->type == SH_DATE && to == SH_TIMESTAMP)
        return expr_make(p, EX_TS_D, SH_TIMESTAMP, n->pos, 1, &n);
    if (n->type == SH_STRING && n->op == EX_CONST) {
        const char *s = n->k.u.s.ptr;
        size_t      len = n->k.u.s.len;

        if (to == SH_DATE && dt_parse_date(s, len, &v) == 0)
            return expr_const_node(p, sh_date(v), n->pos);
        if (to == SH_TIMESTAMP && dt_parse_timestamp(s, len, &v) == 0)
            return expr_const_node(p, sh_timestamp(v), n->pos);
        return expr_perr(p,
                         "'%.*s' is not an ISO 8601 date or timestamp "
                         "at position %u",
                         expr_quote_len(s, len, QUOTE_BYTES), s, pos);
    }
    return expr_perr(p, "expected a date or timestamp, got %s at position %u",
                     sh_type_name(n->type), pos);
}

/* Argument 'i' as a timestamp (a date, a timestamp or a constant text). */
static node *
time_arg(parser *p, const fn_def *f, node **args, const unsigned *argpos,
         size_t i)
{
    if (args[i]->type == SH_STRING && args[i]->op == EX_CONST)
        return args[i] = expr_as_time(p, args[i], SH_TIMESTAMP, argpos[i]);
    if (want(p, f, i, args, argpos, WANT_TIME) != 0)
        return NULL;
    return args[i] = expr_as_time(p, args[i], SH_TIMESTAMP, argpos[i]);
}

/* A constant unit argument 'i'; returns 0 or sets the error. */
static int
unit_arg(parser *p, const fn_def *f, node **args, const unsigned *argpos,
         size_t i, dt_unit *unit)
{
    const node *n = args[i];

    if (n->op != EX_CONST || n->type != SH_STRING) {
        expr_perr(p,
                  "argument %zu of %s must be a constant unit ('second', "
                  "'minute', 'hour', 'day', 'week', 'month', 'quarter' or "
                  "'year') at position %u",
                  i + 1, f->name, argpos[i]);
        return -1;
    }
    if (dt_unit_parse(n->k.u.s.ptr, n->k.u.s.len, unit) != 0) {
        expr_perr(p,
                  "unknown unit '%.*s' for %s at position %u; units are "
                  "second, minute, hour, day, week, month, quarter, year",
                  expr_quote_len(n->k.u.s.ptr, n->k.u.s.len, QUOTE_BYTES),
                  n->k.u.s.ptr, f->name, argpos[i]);
        return -1;
    }
    return 0;
}

/* Compiles the constant pattern argument 'i' into *re (owned by the
 * expression). Sets *re NULL when the pattern is the null constant. */
static int
pattern_arg(parser *p, const fn_def *f, node **args, const unsigned *argpos,
            size_t i, rx **re)
{
    const node *n = args[i];
    char        msg[160];
    size_t      at;

    *re = NULL;
    if (n->type == SH_NULL)
        return 0;
    if (n->op != EX_CONST || n->type != SH_STRING) {
        expr_perr(p,
                  "argument %zu of %s must be a constant pattern (a string "
                  "literal) at position %u",
                  i + 1, f->name, argpos[i]);
        return -1;
    }
    *re = rx_compile(n->k.u.s.ptr, n->k.u.s.len, msg, sizeof msg, &at);
    if (*re == NULL) {
        expr_perr(p,
                  "invalid regular expression '%.*s' at position %u: %s "
                  "at character %zu of the pattern",
                  expr_quote_len(n->k.u.s.ptr, n->k.u.s.len, QUOTE_BYTES),
                  n->k.u.s.ptr, argpos[i], msg, at + 1);
        return -1;
    }
    p->e->rxs = xrealloc(p->e->rxs, (p->e->nrx + 1) * sizeof p->e->rxs[0]);
    p->e->rxs[p->e->nrx++] = *re;
    return 0;
}

/* The type checks of the date and time functions (date, timestamp,
 * strptime, strftime, the parts, date_trunc, date_diff, date_add). */
static node *
make_date_call(parser *p, const fn_def *f, const tok *t, node **args,
               const unsigned *argpos, int any_null)
{
    static const dt_part parts[] = {DT_P_YEAR, DT_P_MONTH,  DT_P_DAY,
                                    DT_P_HOUR, DT_P_MINUTE, DT_P_SECOND,
                                    DT_P_DOW,  DT_P_DOY,    DT_P_WEEK};
    sh_type              t0 = args[0]->type, rt;
    dt_unit              unit;

    switch (f->id) {
    case FN_DATE:
        if (t0 == SH_DATE || t0 == SH_NULL)
            return args[0];
        if (t0 == SH_STRING)
            return expr_make(p, EX_DATE_S, SH_DATE, t->pos, 1, args);
        if (t0 == SH_TIMESTAMP)
            return expr_make(p, EX_DATE_T, SH_DATE, t->pos, 1, args);
        return expr_perr(p,
                         "argument 1 of date must be a string, date or "
                         "timestamp, got %s at position %u",
                         sh_type_name(t0), argpos[0]);
    case FN_TIMESTAMP:
        if (t0 == SH_TIMESTAMP || t0 == SH_NULL)
            return args[0];
        if (t0 == SH_STRING)
            return expr_make(p, EX_TS_S, SH_TIMESTAMP, t->pos, 1, args);
        if (t0 == SH_DATE)
            return expr_make(p, EX_TS_D, SH_TIMESTAMP, t->pos, 1, args);
        return expr_perr(p,
                         "argument 1 of timestamp must be a string, date "
                         "or timestamp, got %s at position %u",
                         sh_type_name(t0), argpos[0]);
    case FN_STRPTIME:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_STRING) != 0)
            return NULL;
        return expr_make(p, EX_STRPTIME, any_null ? SH_NULL : SH_TIMESTAMP,
                         t->pos, 2, args);
    case FN_STRFTIME:
        if (time_arg(p, f, args, argpos, 0) == NULL
            || want(p, f, 1, args, argpos, WANT_STRING) != 0)
            return NULL;
        return expr_make(p, EX_STRFTIME, any_null ? SH_NULL : SH_STRING, t->pos,
                         2, args);
    case FN_YEAR:
    case FN_MONTH:
    case FN_DAY:
    case FN_HOUR:
    case FN_MINUTE:
    case FN_SECOND:
    case FN_DOW:
    case FN_DOY:
    case FN_WEEK:
        if (time_arg(p, f, args, argpos, 0) == NULL)
            return NULL;
        return expr_make_x(p, EX_DT_PART, any_null ? SH_NULL : SH_INT, t->pos,
                           1, args, parts[f->id - FN_YEAR], NULL);
    case FN_DATE_TRUNC:
        if (unit_arg(p, f, args, argpos, 0, &unit) != 0)
            return NULL;
        rt = args[1]->type;
        if (rt == SH_DATE && unit < DT_DAY)
            return args[1];
        if (time_arg(p, f, args, argpos, 1) == NULL)
            return NULL;
        rt = rt == SH_DATE ? SH_DATE : SH_TIMESTAMP;
        return expr_make_x(p, EX_DT_TRUNC,
                           args[1]->type == SH_NULL ? SH_NULL : rt, t->pos, 1,
                           args + 1, unit, NULL);
    case FN_DATE_DIFF:
        if (unit_arg(p, f, args, argpos, 0, &unit) != 0
            || time_arg(p, f, args, argpos, 1) == NULL
            || time_arg(p, f, args, argpos, 2) == NULL)
            return NULL;
        return expr_make_x(p, EX_DT_DIFF, any_null ? SH_NULL : SH_INT, t->pos,
                           2, args + 1, unit, NULL);
    case FN_DATE_ADD:
        if (unit_arg(p, f, args, argpos, 2, &unit) != 0
            || want(p, f, 1, args, argpos, WANT_INT) != 0)
            return NULL;
        rt = t0 == SH_DATE && unit >= DT_DAY ? SH_DATE : SH_TIMESTAMP;
        if (time_arg(p, f, args, argpos, 0) == NULL)
            return NULL;
        return expr_make_x(p, EX_DT_ADD, any_null ? SH_NULL : rt, t->pos, 2,
                           args, unit, NULL);
    default:
        break;
    }
    return expr_perr(p, "internal error: function %s not built", f->name);
}

/* The rest of regexp_extract's checks, once its pattern 're' (NULL for a
 * NULL pattern) is compiled: a constant group the pattern has. */
static node *
make_re_extract(parser *p, const tok *t, node **args, size_t nargs,
                const unsigned *argpos, int any_null, rx *re)
{
    int64_t group = 0;

    if (nargs == 3) {
        if (args[2]->op != EX_CONST)
            return expr_perr(p,
                             "argument 3 of regexp_extract must be "
                             "a constant group number at "
                             "position %u",
                             argpos[2]);
        group = args[2]->type == SH_INT ? args[2]->k.u.i : 0;
    }
    if (re != NULL && (group < 0 || group > (int64_t)rx_groups(re)))
        return expr_perr(p,
                         "regexp_extract group %lld does not exist "
                         "at position %u: the pattern has %u "
                         "group%s",
                         (long long)group, argpos[2], rx_groups(re),
                         rx_groups(re) == 1 ? "" : "s");
    return expr_make_x(p, EX_RE_EXTRACT, any_null ? SH_NULL : SH_STRING, t->pos,
                       1, args, group, re);
}

/* The type checks of regexp_matches, regexp_extract and regexp_replace;
 * their pattern is compiled here, once. */
static node *
make_regex_call(parser *p, const fn_def *f, const tok *t, node **args,
                size_t nargs, const unsigned *argpos, int any_null)
{
    rx  *re;
    char msg[160];

    if (want(p, f, 0, args, argpos, WANT_STRING) != 0
        || want(p, f, 1, args, argpos, WANT_STRING) != 0
        || (f->id == FN_RE_REPLACE
            && want(p, f, 2, args, argpos, WANT_STRING) != 0)
        || (f->id == FN_RE_EXTRACT && nargs == 3
            && want(p, f, 2, args, argpos, WANT_INT) != 0))
        return NULL;
    if (pattern_arg(p, f, args, argpos, 1, &re) != 0)
        return NULL;
    if (f->id == FN_RE_MATCHES)
        return expr_make_x(p, EX_RE_MATCH, any_null ? SH_NULL : SH_BOOL, t->pos,
                           1, args, 0, re);
    if (f->id == FN_RE_EXTRACT)
        return make_re_extract(p, t, args, nargs, argpos, any_null, re);
    if (re != NULL && args[2]->op == EX_CONST && args[2]->type == SH_STRING
        && rx_check_replacement(re, args[2]->k.u.s.ptr, args[2]->k.u.s.len, msg,
                                sizeof msg)
               != 0)
        return expr_perr(p,
                         "bad replacement of regexp_replace at position "
                         "%u: %s",
                         argpos[2], msg);
    args[1] = args[2];
    return expr_make_x(p, EX_RE_REPLACE, any_null ? SH_NULL : SH_STRING, t->pos,
                       2, args, 0, re);
}

/* The type checks of the string functions (trim, ltrim, rtrim, replace,
 * split_part, strpos, lpad, rpad, reverse). */
static node *
make_string_call(parser *p, const fn_def *f, const tok *t, node **args,
                 size_t nargs, const unsigned *argpos, int any_null)
{
    size_t i;

    switch (f->id) {
    case FN_TRIM:
    case FN_LTRIM:
    case FN_RTRIM:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || (nargs == 2 && want(p, f, 1, args, argpos, WANT_STRING) != 0))
            return NULL;
        return expr_make_x(p, EX_TRIM, any_null ? SH_NULL : SH_STRING, t->pos,
                           nargs, args,
                           f->id == FN_LTRIM   ? 1
                           : f->id == FN_RTRIM ? 2
                                               : 3,
                           NULL);
    case FN_REPLACE:
        for (i = 0; i < 3; i++) {
            if (want(p, f, i, args, argpos, WANT_STRING) != 0)
                return NULL;
        }
        return expr_make(p, EX_REPLACE, any_null ? SH_NULL : SH_STRING, t->pos,
                         3, args);
    case FN_SPLIT_PART:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_STRING) != 0
            || want(p, f, 2, args, argpos, WANT_INT) != 0)
            return NULL;
        return expr_make(p, EX_SPLIT_PART, any_null ? SH_NULL : SH_STRING,
                         t->pos, 3, args);
    case FN_STRPOS:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_STRING) != 0)
            return NULL;
        return expr_make(p, EX_STRPOS, any_null ? SH_NULL : SH_INT, t->pos, 2,
                         args);
    case FN_LPAD:
    case FN_RPAD:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_INT) != 0
            || (nargs == 3 && want(p, f, 2, args, argpos, WANT_STRING) != 0))
            return NULL;
        return expr_make(p, f->id == FN_LPAD ? EX_LPAD : EX_RPAD,
                         any_null ? SH_NULL : SH_STRING, t->pos, nargs, args);
    case FN_REVERSE:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0)
            return NULL;
        return expr_make(p, EX_REVERSE, any_null ? SH_NULL : SH_STRING, t->pos,
                         1, args);
    default:
        break;
    }
    return expr_perr(p, "internal error: function %s not built", f->name);
}

/* The type checks of the date, regex and string functions. */
node *
expr_make_call2(parser *p, const fn_def *f, const tok *t, node **args,
                size_t nargs, const unsigned *argpos)
{
    size_t i;
    int    any_null = 0;

    for (i = 0; i < nargs; i++)
        any_null |= args[i]->type == SH_NULL;
    switch (f->id) {
    case FN_DATE:
    case FN_TIMESTAMP:
    case FN_STRPTIME:
    case FN_STRFTIME:
    case FN_YEAR:
    case FN_MONTH:
    case FN_DAY:
    case FN_HOUR:
    case FN_MINUTE:
    case FN_SECOND:
    case FN_DOW:
    case FN_DOY:
    case FN_WEEK:
    case FN_DATE_TRUNC:
    case FN_DATE_DIFF:
    case FN_DATE_ADD:
        return make_date_call(p, f, t, args, argpos, any_null);
    case FN_RE_MATCHES:
    case FN_RE_EXTRACT:
    case FN_RE_REPLACE:
        return make_regex_call(p, f, t, args, nargs, argpos, any_null);
    case FN_TRIM:
    case FN_LTRIM:
    case FN_RTRIM:
    case FN_REPLACE:
    case FN_SPLIT_PART:
    case FN_STRPOS:
    case FN_LPAD:
    case FN_RPAD:
    case FN_REVERSE:
        return make_string_call(p, f, t, args, nargs, argpos, any_null);
    default:
        break;
    }
    return expr_perr(p, "internal error: function %s not built", f->name);
}
