/*
 * expr.h - sheaf's expression language: compiled once against a schema,
 * type-checked, then evaluated per row.
 *
 * Grammar (lowest precedence first):
 *   expr    := or
 *   or      := and ('or' and)*
 *   and     := not ('and' not)*
 *   not     := 'not' not | cmp
 *   cmp     := add (('=='|'!='|'<'|'<='|'>'|'>=') add)?
 *   add     := mul (('+'|'-') mul)*
 *   mul     := unary (('*'|'/'|'%') unary)*
 *   unary   := '-' unary | primary
 *   primary := INT | FLOAT | 'string' | true | false | null
 *            | name | "quoted name" | NAME '(' args ')' | '(' expr ')'
 * Keywords (and or not true false null) are case-insensitive. Strings use
 * single quotes with '' for a quote; quoted names use double quotes with ""
 * for a quote.
 *
 * Semantics (SPEC section 2): null propagates through arithmetic and
 * functions; a comparison with null is false; and/or/not use SQL's
 * three-valued logic; '/' divides as floats; x / 0 and x % 0 are null; int
 * '%' takes the sign of the dividend; int + - * overflow is an error;
 * int() truncates toward zero; round() rounds half away from zero;
 * substr()/length() count UTF-8 characters; substr starts at 1.
 * Functions: lower upper length substr(s,start[,len]) contains starts_with
 * ends_with concat(a, ...) abs round(x[,digits]) floor ceil sqrt ln exp int
 * float str coalesce(a, ...) is_null if(cond, then, else) hash; dates and
 * timestamps (datetime.h): date timestamp strptime strftime year month day
 * hour minute second dow doy week date_trunc date_diff date_add; regexes
 * (regex.h, constant patterns): regexp_matches regexp_extract
 * regexp_replace; strings: trim ltrim rtrim replace split_part strpos lpad
 * rpad reverse. The README gives their semantics.
 *
 * Evaluation state lives in the caller's arena, except that a regular
 * expression reuses the match data it was compiled with (once per task):
 * a compiled expression that calls a regexp_ function must not be
 * evaluated by two threads at once (sheaf evaluates in one thread per
 * process).
 */
#ifndef SHEAF_EXPR_H
#define SHEAF_EXPR_H

#include "../lib/err.h"
#include "../lib/util.h"
#include "value.h"

typedef struct expr expr;

/*
 * Compile 'src' against the columns of 'sc' (borrowed; not needed after
 * compile). On error returns NULL and fills 'err' with SH_EINVAL, 'path'
 * (copied into err->path, the spec field the text came from) and a message
 * that quotes the problem and its 1-based character position, e.g.
 * "unknown column 'yeer' at position 1; columns are: id, year, title".
 * The caller frees the result with expr_free.
 */
expr *expr_compile(const char *src, const schema *sc, const char *path,
                   sh_err *err);

/* The static type of the result (SH_NULL when it is always null). */
sh_type expr_type(const expr *e);

/*
 * Evaluate 'e' on 'row' (values in schema order, borrowed). Strings the
 * evaluation makes are allocated in 'a'. Returns 0 and sets *out, or
 * SH_ERANGE (integer overflow, int() of a value out of range) with 'err'.
 */
int expr_eval(const expr *e, const sh_value *row, arena *a, sh_value *out,
              sh_err *err);

/*
 * Mark the input columns that evaluating 'e' reads: for each column index
 * k that a column reference of the compiled tree names, set used[k] to 1.
 * 'used' has 'ncols' entries (the columns of the schema 'e' was compiled
 * against; an index at or past 'ncols' is not marked); other entries are
 * left as they are, so one array can collect the columns of several
 * expressions. The walk sees the tree after constant folding, so a
 * column that folding removed is not read and not marked: in "x + null"
 * (always null) or "if(false, x, y)" only y. A column read several times
 * is marked once; a constant expression marks nothing. Returns the number
 * of entries it changed from 0 to 1. 'e' is only read (thread-safe like
 * expr_eval).
 */
size_t expr_columns(const expr *e, unsigned char *used, size_t ncols);

/* The relation of a predicate expr_and_preds finds. */
typedef enum expr_rel {
    EXPR_EQ = 0,
    EXPR_NE,
    EXPR_LT,
    EXPR_LE,
    EXPR_GT,
    EXPR_GE,
    EXPR_IS_NULL,
    EXPR_NOT_NULL
} expr_rel;

/* "column REL constant" (or a null test of the column). */
typedef struct expr_pred {
    size_t   col; /* column index in the schema 'e' was compiled against */
    expr_rel rel;
    sh_value k; /* the constant, never null (borrowed from 'e'); unset
                   for the null tests */
} expr_pred;

/*
 * The top-level conjuncts of 'e' that compare a column with a constant
 * ("x > 3", "3 < x" turned round, "name == 'a'"), test it for null
 * ("is_null(x)", "not is_null(x)"): a row for which 'e' is true makes
 * every one of them true. Other conjuncts are left out. Writes up to
 * 'max' into 'out' and returns how many it wrote. For pruning input (a
 * Parquet row group whose statistics rule out one of them holds no row
 * the filter keeps). 'e' is only read.
 */
size_t expr_and_preds(const expr *e, expr_pred *out, size_t max);

/* Frees 'e' (NULL is fine). */
void expr_free(expr *e);

#endif
