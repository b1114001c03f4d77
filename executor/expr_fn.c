/*
 * expr_fn.c - the function library of sheaf's expression language, as the
 * compiler sees it: the table of functions and their argument counts, the
 * "unknown function" message with its suggestions, and the type checking
 * of a call that picks the typed operation (EX_*) it compiles to. The
 * operations themselves run in the evaluator (expr_eval.c), whose dispatch
 * loop keeps them inline.
 */
#include "expr_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum fn_id {
    FN_LOWER, FN_UPPER, FN_LENGTH, FN_SUBSTR, FN_CONTAINS, FN_STARTS_WITH,
    FN_ENDS_WITH, FN_CONCAT, FN_ABS, FN_ROUND, FN_FLOOR, FN_CEIL, FN_SQRT,
    FN_LN, FN_EXP, FN_INT, FN_FLOAT, FN_STR, FN_COALESCE, FN_IS_NULL, FN_IF,
    FN_HASH
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
    if (ln >= 3 && lf >= 3
        && strncasecmp(name, fn, ln < lf ? ln : lf) == 0)
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
    WANT_INT    = 1 << SH_INT,
    WANT_BOOL   = 1 << SH_BOOL
};

/*
 * Checks that argument 'i' (0-based) of 'f' has a type in 'want' (null is
 * always allowed); returns 0 or sets the error at the argument's position.
 */
static int
want(parser *p, const fn_def *f, size_t i, node **args,
     const unsigned *argpos, unsigned want)
{
    const char *what = want == WANT_STRING ? "a string"
                       : want == WANT_NUMBER ? "a number"
                       : want == WANT_INT ? "an int" : "a bool";

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
            return expr_perr(p, "arguments of coalesce must have the same "
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
        return expr_perr(p, "arguments 2 and 3 of if must have the same type, "
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
        return expr_make(p, t0 == SH_FLOAT    ? EX_INT_F
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
        return expr_make(p, f->id == FN_LOWER ? EX_LOWER : f->id == FN_UPPER
                                                               ? EX_UPPER
                                                               : EX_LENGTH,
                         any_null ? SH_NULL
                         : f->id == FN_LENGTH ? SH_INT : SH_STRING,
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
        return expr_make(p, f->id == FN_CONTAINS ? EX_CONTAINS
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
        return expr_make(p, f->id == FN_SQRT ? EX_SQRT
                            : f->id == FN_LN ? EX_LN
                                             : EX_EXP,
                         any_null ? SH_NULL : SH_FLOAT, t->pos, 1, args);
    }
    return expr_perr(p, "internal error: function %s not built", f->name);
}

