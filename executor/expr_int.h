/*
 * expr_int.h - the private parts of the expression language shared by its
 * files: the typed tree (node), the tokens and the parser's state, and the
 * calls between the lexer (expr_lex.c), the parser (expr.c), the tree
 * builder (expr_node.c), the function library (expr_fn.c) and the
 * evaluator (expr_eval.c). Nothing outside those files includes it.
 */
#ifndef SHEAF_EXPR_INT_H
#define SHEAF_EXPR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "expr.h"
#include "regex.h"

/* Parentheses, calls and unary operators nest at most this deep. */
#define MAX_NEST 200
/* The typed tree is at most this deep (evaluation recurses on it). */
#define MAX_TREE_DEPTH 1000
/* Source text quoted in a message is cut to this many bytes. */
#define QUOTE_BYTES 40

/* The operations of the typed tree. _I: int operands, _F: float. */
typedef enum ex_op {
    EX_CONST = 0, /* the constant 'k' */
    EX_COL,       /* the row's column 'col' */
    EX_I2F,       /* int to float */
    EX_NEG_I,
    EX_NEG_F,
    EX_ADD_I,
    EX_SUB_I,
    EX_MUL_I,
    EX_MOD_I,
    EX_ADD_F,
    EX_SUB_F,
    EX_MUL_F,
    EX_DIV_F,
    EX_MOD_F,
    EX_CMP_I, /* comparisons; 'rel' says which */
    EX_CMP_F,
    EX_CMP_N, /* an int with a float, exactly */
    EX_CMP_S,
    EX_CMP_B,
    EX_AND,
    EX_OR,
    EX_NOT,
    EX_LOWER,
    EX_UPPER,
    EX_LENGTH,
    EX_SUBSTR,
    EX_CONTAINS,
    EX_STARTS_WITH,
    EX_ENDS_WITH,
    EX_CONCAT,
    EX_ABS_I,
    EX_ABS_F,
    EX_ROUND_I,
    EX_ROUND_F,
    EX_FLOOR,
    EX_CEIL,
    EX_SQRT,
    EX_LN,
    EX_EXP,
    EX_INT_F,
    EX_INT_S,
    EX_INT_B,
    EX_FLOAT_S,
    EX_FLOAT_B,
    EX_STR,
    EX_COALESCE,
    EX_IS_NULL,
    EX_IF,
    EX_HASH,
    /* dates and timestamps (datetime.h); 'arg' holds a dt_part/dt_unit */
    EX_DATE_S,   /* date(string) */
    EX_DATE_T,   /* date(timestamp) */
    EX_TS_S,     /* timestamp(string) */
    EX_TS_D,     /* timestamp(date): midnight */
    EX_DT_PART,  /* year()...week() of a timestamp */
    EX_DT_TRUNC, /* date_trunc(unit, ts); a date result if type is date */
    EX_DT_DIFF,  /* date_diff(unit, ts, ts) */
    EX_DT_ADD,   /* date_add(ts, n, unit); a date result if type is date */
    EX_STRFTIME,
    EX_STRPTIME,
    /* regular expressions: 're' holds the compiled pattern */
    EX_RE_MATCH,
    EX_RE_EXTRACT,
    EX_RE_REPLACE,
    /* more strings; 'arg' of EX_TRIM: 1 left, 2 right, 3 both */
    EX_TRIM,
    EX_REPLACE,
    EX_SPLIT_PART,
    EX_STRPOS,
    EX_LPAD,
    EX_RPAD,
    EX_REVERSE
} ex_op;

/* The relation of a comparison node. */
typedef enum rel { REL_EQ = 0, REL_NE, REL_LT, REL_LE, REL_GT, REL_GE } rel;

/* A node of the typed tree. */
typedef struct node {
    ex_op        op;
    rel          rel;    /* comparisons only */
    sh_type      type;   /* static type of the result; SH_NULL: always null */
    unsigned     pos;    /* 1-based character position, for messages */
    unsigned     depth;  /* 1 + the depth of the deepest child */
    size_t       col;    /* EX_COL: column index */
    const char  *name;   /* EX_COL: column name (in the expr arena) */
    sh_value     k;      /* EX_CONST: the value (strings in the arena) */
    int64_t      arg;    /* a parameter of some operations (see ex_op) */
    rx          *re;     /* EX_RE_*: the pattern (owned by the expr) */
    size_t       nkids;  /* number of operands */
    struct node *kids[]; /* the operands, in order */
} node;

struct expr {
    node  *root; /* the typed tree */
    arena *mem;  /* nodes and constant strings */
    rx   **rxs;  /* owned: the compiled patterns of the tree */
    size_t nrx;
    char   path[SH_ERR_PATH_MAX]; /* spec field of the text, for errors */
};

/* Token kinds. */
typedef enum tok_kind {
    T_EOF = 0,
    T_INT,
    T_FLOAT,
    T_STR,
    T_NAME,
    T_QNAME,
    T_LP,
    T_RP,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PCT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_NOT,
    T_TRUE,
    T_FALSE,
    T_NULL
} tok_kind;

/* A token of the source text. */
typedef struct tok {
    tok_kind    kind;
    size_t      off;  /* byte offset of its text in the source */
    size_t      len;  /* bytes of its text */
    unsigned    pos;  /* 1-based character position */
    uint64_t    mag;  /* T_INT: the value, if 'big' is 0 */
    int         big;  /* T_INT: the digits do not fit in 64 bits */
    double      f;    /* T_FLOAT: the value */
    const char *text; /* T_STR, T_QNAME, T_NAME: unescaped, NUL-terminated,
                         in the expr arena */
    size_t tlen;      /* bytes of 'text' */
} tok;

/* The state of one compilation. */
typedef struct parser {
    const char   *src;
    const schema *sc;
    expr         *e;
    const char   *path;
    sh_err       *err;
    int           failed; /* an error has been set */
    tok          *toks;   /* owned */
    size_t        ntoks;
    size_t        i;       /* the next token */
    int           nest;    /* current nesting of the parser */
    size_t        pos_off; /* char_pos cache: a byte offset ... */
    unsigned      pos_at;  /* ... and its character position */
    arena        *tmp;     /* scratch for constant folding */
    strbuf        sb;      /* scratch for unescaping */
} parser;

/* A function of the language (expr_fn.c). */
typedef struct fn_def fn_def;

static inline int
is_num(sh_type t)
{
    return t == SH_INT || t == SH_FLOAT;
}

static inline int
is_time(sh_type t)
{
    return t == SH_DATE || t == SH_TIMESTAMP;
}

/* Is 'c' a UTF-8 continuation byte? */
static inline int
is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static inline int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- the lexer (expr_lex.c) ---------------------------------------------- */

/* Bytes of 'p'/'n' cut to at most 'max' at a character boundary. */
int expr_quote_len(const char *p, size_t n, size_t max);

/* Sets the first compile error: SH_EINVAL, the parser's path, a message.
 * Returns NULL, so that a builder can 'return expr_perr(...)'. */
void *expr_perr(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Splits the source into p->toks (owned by 'p'), ending with T_EOF.
 * Returns 0 or -1 (error set). */
int expr_lex(parser *p);

/* Describes token 't' for a message: "')'", "string 'x'", "end of input". */
void expr_describe(const parser *p, const tok *t, char *buf, size_t size);

/* Sets "unexpected X at position N" (or the end-of-input form); NULL. */
void *expr_unexpected(parser *p, const tok *t);

/* ---- building the typed tree (expr_node.c) ------------------------------- */

/* A node of 'op' with room for 'nkids' operands (unset), in the
 * expression's arena; finish it with expr_node_finish once they are set. */
node *expr_node_new(parser *p, ex_op op, sh_type type, unsigned pos,
                    size_t nkids);

/* Completes a node whose kids are set: checks the tree's depth, turns an
 * always-null node into the null constant and folds a node of constants.
 * Returns the node to use, or NULL on error. */
node *expr_node_finish(parser *p, node *n);

/* A constant node; a string value is copied into the expression's arena. */
node *expr_const_node(parser *p, sh_value v, unsigned pos);

/* Builds a node of 'op' over 'nkids' kids (copied), checks its depth and
 * folds it if it is constant. Returns the node to use, or NULL on error. */
node *expr_make(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids,
                node **kids);

/* As expr_make, with the parameter 'arg' and pattern 're' set on the node
 * before it is folded. */
node *expr_make_x(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids,
                  node **kids, int64_t arg, rx *re);

/* 'n' as a float: itself, or an int-to-float cast of it (NULL: error). */
node *expr_to_float(parser *p, node *n);

/* ---- the function library (expr_fn.c) ------------------------------------ */

/* Looks up a function by name, ignoring case; NULL if there is none. */
const fn_def *expr_find_fn(const char *name);

/* Sets the "unknown function" error with suggestions or the list; NULL. */
void *expr_unknown_function(parser *p, const tok *t);

/* Checks a function's argument count; returns 0 or sets the error (-1). */
int expr_check_arity(parser *p, const fn_def *f, const tok *t, size_t nargs);

/*
 * Type-checks a call of 'f' (name token 't') on 'nargs' >= 1 arguments
 * ('args' may be rewritten) and builds its node. 'argpos' holds each
 * argument's position. Returns NULL on error.
 */
node *expr_make_call(parser *p, const fn_def *f, const tok *t, node **args,
                     size_t nargs, const unsigned *argpos);

/* The dates, regex and string functions' part of expr_make_call. */
node *expr_make_call2(parser *p, const fn_def *f, const tok *t, node **args,
                      size_t nargs, const unsigned *argpos);

/* 'n' as type 'to' (SH_DATE or SH_TIMESTAMP): a date as its midnight, a
 * constant string parsed now. NULL (error set) otherwise. */
node *expr_as_time(parser *p, node *n, sh_type to, unsigned pos);

/* ---- the string functions (expr_str.c) ---------------------------------- */

sh_value expr_str_trim(sh_value s, const sh_value *set, int which);
sh_value expr_str_replace(sh_value s, sh_value from, sh_value to, arena *a);
sh_value expr_str_split_part(sh_value s, sh_value sep, int64_t k);
int64_t  expr_str_strpos(sh_value s, sh_value sub);
sh_value expr_str_pad(sh_value s, int64_t width, const sh_value *fill, int left,
                      arena *a);
sh_value expr_str_reverse(sh_value s, arena *a);

/* ---- the evaluator (expr_eval.c) ----------------------------------------- */

/*
 * Evaluates the subtree 'n' with no row (constant folding: 'n' reads no
 * column). Strings go to 'a'; 'path' names the text in errors. Returns 0
 * or an SH_E* code with 'err' filled.
 */
int expr_eval_node(const node *n, arena *a, const char *path, sh_value *out,
                   sh_err *err);

#endif
