/*
 * expr.c - sheaf's expression language: a lexer, a recursive-descent parser
 * that type-checks as it builds a typed tree, constant folding, and the
 * evaluator.
 *
 * Compilation resolves every column to its index and every operator to a
 * node whose operand types are fixed (an int '+' is EX_ADD_I, a mixed one
 * casts its int side with EX_I2F and is EX_ADD_F), so evaluation is one
 * switch per node with no type dispatch beyond null checks. A node whose
 * static type is null, or whose operands are all constants, is folded into
 * a constant at compile time. Nodes and literal strings live in the
 * expression's own arena; evaluation allocates only in the caller's arena.
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
 *   4 bool) and the value's bytes (ints and floats as 8 little-endian
 *   bytes of the int or the IEEE-754 bits, -0.0 as 0.0 and every NaN as
 *   0x7ff8000000000000; a string's UTF-8 bytes; a bool as one byte 0 or 1),
 *   masked with INT64_MAX; so hash(1) != hash(1.0);
 * - a string a function returns may borrow its argument's bytes (substr,
 *   lower of a string with no capitals) or the expression's constants.
 */
#include "expr.h"

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parentheses, calls and unary operators nest at most this deep. */
#define MAX_NEST       200
/* The typed tree is at most this deep (evaluation recurses on it). */
#define MAX_TREE_DEPTH 1000
/* Source text quoted in a message is cut to this many bytes. */
#define QUOTE_BYTES    40

/* The operations of the typed tree. _I: int operands, _F: float. */
typedef enum ex_op {
    EX_CONST = 0, /* the constant 'k' */
    EX_COL,       /* the row's column 'col' */
    EX_I2F,       /* int to float */
    EX_NEG_I, EX_NEG_F,
    EX_ADD_I, EX_SUB_I, EX_MUL_I, EX_MOD_I,
    EX_ADD_F, EX_SUB_F, EX_MUL_F, EX_DIV_F, EX_MOD_F,
    EX_CMP_I,     /* comparisons; 'rel' says which */
    EX_CMP_F,
    EX_CMP_N,     /* an int with a float, exactly */
    EX_CMP_S,
    EX_CMP_B,
    EX_AND, EX_OR, EX_NOT,
    EX_LOWER, EX_UPPER, EX_LENGTH, EX_SUBSTR,
    EX_CONTAINS, EX_STARTS_WITH, EX_ENDS_WITH, EX_CONCAT,
    EX_ABS_I, EX_ABS_F, EX_ROUND_I, EX_ROUND_F, EX_FLOOR, EX_CEIL,
    EX_SQRT, EX_LN, EX_EXP,
    EX_INT_F, EX_INT_S, EX_INT_B, EX_FLOAT_S, EX_FLOAT_B, EX_STR,
    EX_COALESCE, EX_IS_NULL, EX_IF, EX_HASH
} ex_op;

/* The relation of a comparison node. */
typedef enum rel {
    REL_EQ = 0, REL_NE, REL_LT, REL_LE, REL_GT, REL_GE
} rel;

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
    size_t       nkids;  /* number of operands */
    struct node *kids[]; /* the operands, in order */
} node;

struct expr {
    node  *root; /* the typed tree */
    arena *mem;  /* nodes and constant strings */
    char   path[SH_ERR_PATH_MAX]; /* spec field of the text, for errors */
};

/* Token kinds. */
typedef enum tok_kind {
    T_EOF = 0, T_INT, T_FLOAT, T_STR, T_NAME, T_QNAME,
    T_LP, T_RP, T_COMMA, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PCT,
    T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE,
    T_AND, T_OR, T_NOT, T_TRUE, T_FALSE, T_NULL
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
    size_t      tlen; /* bytes of 'text' */
} tok;

/* The state of one compilation. */
typedef struct parser {
    const char   *src;
    const schema *sc;
    expr         *e;
    const char   *path;
    sh_err       *err;
    int           failed;   /* an error has been set */
    tok          *toks;     /* owned */
    size_t        ntoks;
    size_t        i;        /* the next token */
    int           nest;     /* current nesting of the parser */
    size_t        pos_off;  /* char_pos cache: a byte offset ... */
    unsigned      pos_at;   /* ... and its character position */
    arena        *tmp;      /* scratch for constant folding */
    strbuf        sb;       /* scratch for unescaping */
} parser;

/* The state of one evaluation. */
typedef struct evalctx {
    const sh_value *row;
    arena          *a;
    sh_err         *err;
    const char     *path;
} evalctx;

static int eval(const node *n, evalctx *c, sh_value *out);

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static int
is_num(sh_type t)
{
    return t == SH_INT || t == SH_FLOAT;
}

static int
is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_name_char(char c)
{
    return is_name_start(c) || is_digit(c);
}

/* Bytes of 'p'/'n' cut to at most 'max' at a character boundary. */
static int
quote_len(const char *p, size_t n, size_t max)
{
    if (n <= max)
        return (int)n;
    n = max;
    while (n > 0 && is_cont((unsigned char)p[n]))
        n--;
    return (int)n;
}

/* Sets the first compile error: SH_EINVAL, the parser's path, a message. */
static void *
perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void *
perr(parser *p, const char *fmt, ...)
{
    va_list ap;
    char    msg[SH_ERR_MSG_MAX];

    if (p->failed)
        return NULL;
    p->failed = 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sh_err_set(p->err, SH_EINVAL, p->path, "%s", msg);
    return NULL;
}

/* The 1-based character position of byte 'off'; calls must not go back. */
static unsigned
char_pos(parser *p, size_t off)
{
    while (p->pos_off < off) {
        if (!is_cont((unsigned char)p->src[p->pos_off]))
            p->pos_at++;
        p->pos_off++;
    }
    return p->pos_at + 1;
}

/* ------------------------------------------------------------------ */
/* Lexer                                                                */
/* ------------------------------------------------------------------ */

static void
push_tok(parser *p, const tok *t)
{
    if ((p->ntoks & (p->ntoks - 1)) == 0) /* 0, 1, 2, 4, ...: grow */
        p->toks = xrealloc(p->toks, (p->ntoks ? p->ntoks * 2 : 1)
                                        * sizeof p->toks[0]);
    p->toks[p->ntoks++] = *t;
}

/* Lexes a number at 'i'; sets t and returns the offset after it, or 0. */
static size_t
lex_number(parser *p, size_t i, tok *t)
{
    const char *s = p->src;
    size_t      j = i, k;
    int         is_float = 0;
    char       *copy;

    while (is_digit(s[j]))
        j++;
    if (s[j] == '.') {
        is_float = 1;
        j++;
        while (is_digit(s[j]))
            j++;
    }
    if (s[j] == 'e' || s[j] == 'E') {
        k = j + 1;
        if (s[k] == '+' || s[k] == '-')
            k++;
        if (is_digit(s[k])) {
            is_float = 1;
            j = k;
            while (is_digit(s[j]))
                j++;
        }
    }
    if (is_name_char(s[j]) || s[j] == '.') {
        while (is_name_char(s[j]) || s[j] == '.')
            j++;
        perr(p, "invalid number '%.*s' at position %u",
             quote_len(s + i, j - i, QUOTE_BYTES), s + i, t->pos);
        return 0;
    }
    t->len = j - i;
    if (!is_float) {
        t->kind = T_INT;
        for (k = i; k < j; k++) {
            unsigned d = (unsigned)(s[k] - '0');

            if (t->mag > (UINT64_MAX - d) / 10)
                t->big = 1;
            else
                t->mag = t->mag * 10 + d;
        }
        return j;
    }
    t->kind = T_FLOAT;
    copy = xstrndup(s + i, j - i);
    t->f = strtod(copy, NULL);
    free(copy);
    if (isinf(t->f)) {
        perr(p, "number %.*s is out of range at position %u",
             quote_len(s + i, j - i, QUOTE_BYTES), s + i, t->pos);
        return 0;
    }
    return j;
}

/*
 * Lexes a quoted text at 'i' (a 'string' or a "name"; the quote is doubled
 * inside); sets t and returns the offset after it, or 0.
 */
static size_t
lex_quoted(parser *p, size_t i, tok *t)
{
    const char *s = p->src;
    char        q = s[i];
    size_t      j = i + 1;

    sb_reset(&p->sb);
    for (;;) {
        if (s[j] == '\0') {
            perr(p, "unterminated %s starting at position %u",
                 q == '\'' ? "string" : "quoted name", t->pos);
            return 0;
        }
        if (s[j] == q) {
            if (s[j + 1] != q)
                break;
            j++;
        }
        sb_putc(&p->sb, s[j]);
        j++;
    }
    j++;
    t->kind = q == '\'' ? T_STR : T_QNAME;
    t->len = j - i;
    t->tlen = p->sb.len;
    t->text = arena_strndup(p->e->mem, p->sb.data ? p->sb.data : "",
                            p->sb.len);
    return j;
}

/* The keyword kind of a name, or T_NAME. */
static tok_kind
keyword(const char *s, size_t n)
{
    static const struct {
        const char *word;
        tok_kind    kind;
    } words[] = {
        {"and", T_AND},   {"or", T_OR},       {"not", T_NOT},
        {"true", T_TRUE}, {"false", T_FALSE}, {"null", T_NULL},
    };
    size_t i;

    for (i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strlen(words[i].word) == n && strncasecmp(s, words[i].word, n) == 0)
            return words[i].kind;
    }
    return T_NAME;
}

/* Splits the source into p->toks, ending with T_EOF. Returns 0 or -1. */
static int
lex(parser *p)
{
    const char *s = p->src;
    size_t      i = 0, n;
    tok         t;

    for (;;) {
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'
               || s[i] == '\f' || s[i] == '\v')
            i++;
        memset(&t, 0, sizeof t);
        t.off = i;
        t.pos = char_pos(p, i);
        t.len = 1;
        if (s[i] == '\0') {
            t.kind = T_EOF;
            t.len = 0;
            push_tok(p, &t);
            return 0;
        }
        if (is_digit(s[i]) || (s[i] == '.' && is_digit(s[i + 1]))) {
            if ((i = lex_number(p, i, &t)) == 0)
                return -1;
            push_tok(p, &t);
            continue;
        }
        if (is_name_start(s[i])) {
            n = 1;
            while (is_name_char(s[i + n]))
                n++;
            t.kind = keyword(s + i, n);
            t.len = n;
            t.text = arena_strndup(p->e->mem, s + i, n);
            t.tlen = n;
            push_tok(p, &t);
            i += n;
            continue;
        }
        if (s[i] == '\'' || s[i] == '"') {
            if ((i = lex_quoted(p, i, &t)) == 0)
                return -1;
            push_tok(p, &t);
            continue;
        }
        switch (s[i]) {
        case '(': t.kind = T_LP; break;
        case ')': t.kind = T_RP; break;
        case ',': t.kind = T_COMMA; break;
        case '+': t.kind = T_PLUS; break;
        case '-': t.kind = T_MINUS; break;
        case '*': t.kind = T_STAR; break;
        case '/': t.kind = T_SLASH; break;
        case '%': t.kind = T_PCT; break;
        case '<':
            t.kind = s[i + 1] == '=' ? T_LE : T_LT;
            break;
        case '>':
            t.kind = s[i + 1] == '=' ? T_GE : T_GT;
            break;
        case '=':
            if (s[i + 1] != '=') {
                perr(p, "unexpected '=' at position %u; use '==' to compare",
                     t.pos);
                return -1;
            }
            t.kind = T_EQ;
            break;
        case '!':
            if (s[i + 1] == '=') {
                t.kind = T_NE;
                break;
            }
            /* fall through */
        default:
            n = 1;
            while (is_cont((unsigned char)s[i + n]))
                n++;
            perr(p, "unexpected character '%.*s' at position %u", (int)n,
                 s + i, t.pos);
            return -1;
        }
        if (t.kind == T_LE || t.kind == T_GE || t.kind == T_EQ
            || t.kind == T_NE)
            t.len = 2;
        push_tok(p, &t);
        i += t.len;
    }
}

/* Describes token 't' for a message: "')'", "string 'x'", "end of input". */
static void
describe(const parser *p, const tok *t, char *buf, size_t size)
{
    const char *s = p->src + t->off;
    int         n = quote_len(s, t->len, QUOTE_BYTES);
    const char *more = (size_t)n < t->len ? "..." : "";

    switch (t->kind) {
    case T_EOF:
        snprintf(buf, size, "end of input");
        break;
    case T_STR:
        snprintf(buf, size, "string %.*s%s", n, s, more);
        break;
    case T_QNAME:
        snprintf(buf, size, "name %.*s%s", n, s, more);
        break;
    case T_INT:
    case T_FLOAT:
        snprintf(buf, size, "number %.*s%s", n, s, more);
        break;
    default:
        snprintf(buf, size, "'%.*s%s'", n, s, more);
        break;
    }
}

/* Sets "unexpected X at position N" (or the end-of-input form). */
static void *
unexpected(parser *p, const tok *t)
{
    char what[QUOTE_BYTES + 32];

    if (t->kind == T_EOF)
        return perr(p, "expected expression at end of input");
    describe(p, t, what, sizeof what);
    return perr(p, "unexpected %s at position %u", what, t->pos);
}

/* ------------------------------------------------------------------ */
/* Tree building, type checking and folding                             */
/* ------------------------------------------------------------------ */

/* A node with room for 'nkids' operands, in the expression's arena. */
static node *
node_new(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids)
{
    node *n = arena_alloc(p->e->mem, sizeof *n + nkids * sizeof(node *));

    memset(n, 0, sizeof *n);
    n->op = op;
    n->type = type;
    n->pos = pos;
    n->depth = 1;
    n->nkids = nkids;
    return n;
}

/* A constant node; a string value is copied into the arena. */
static node *
const_node(parser *p, sh_value v, unsigned pos)
{
    node *n = node_new(p, EX_CONST, v.type, pos, 0);

    if (v.type == SH_STRING) {
        char *copy = arena_alloc(p->e->mem, v.u.s.len + 1);

        if (v.u.s.len)
            memcpy(copy, v.u.s.ptr, v.u.s.len);
        copy[v.u.s.len] = '\0';
        v.u.s.ptr = copy;
    }
    n->k = v;
    return n;
}

/*
 * Completes a node whose kids are set: checks the tree depth, turns an
 * always-null node into the null constant and folds a node of constants.
 * Returns the node to use, or NULL on error.
 */
static node *
finish(parser *p, node *n)
{
    size_t   i;
    int      all_const = n->op != EX_COL && n->op != EX_CONST;
    sh_value v;
    sh_err   ferr;
    evalctx  c;

    for (i = 0; i < n->nkids; i++) {
        if (n->kids[i]->depth + 1 > n->depth)
            n->depth = n->kids[i]->depth + 1;
        if (n->kids[i]->op != EX_CONST)
            all_const = 0;
    }
    if (n->depth > MAX_TREE_DEPTH)
        return perr(p, "expression is too deep (more than %d levels) at "
                       "position %u", MAX_TREE_DEPTH, n->pos);
    if (n->type == SH_NULL && n->op != EX_CONST)
        return const_node(p, sh_null(), n->pos);
    if (!all_const)
        return n;
    c.row = NULL;
    c.a = p->tmp;
    c.err = &ferr;
    c.path = p->path;
    arena_reset(p->tmp);
    if (eval(n, &c, &v) != 0)
        return n; /* e.g. an overflow: left to fail at evaluation */
    return const_node(p, v, n->pos);
}

/* Builds a node of 'op' over 'nkids' kids, then finishes it. */
static node *
make(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids,
     node **kids)
{
    node *n = node_new(p, op, type, pos, nkids);

    if (nkids)
        memcpy(n->kids, kids, nkids * sizeof kids[0]);
    return finish(p, n);
}

/* 'n' as a float: itself, or an int-to-float cast of it. */
static node *
to_float(parser *p, node *n)
{
    if (n->type != SH_INT)
        return n;
    return make(p, EX_I2F, SH_FLOAT, n->pos, 1, &n);
}

/* The symbol of an operator token, for messages. */
static const char *
tok_sym(tok_kind k)
{
    switch (k) {
    case T_PLUS:  return "+";
    case T_MINUS: return "-";
    case T_STAR:  return "*";
    case T_SLASH: return "/";
    case T_PCT:   return "%";
    case T_EQ:    return "==";
    case T_NE:    return "!=";
    case T_LT:    return "<";
    case T_LE:    return "<=";
    case T_GT:    return ">";
    case T_GE:    return ">=";
    case T_AND:   return "and";
    case T_OR:    return "or";
    case T_NOT:   return "not";
    default:      return "?";
    }
}

/* Builds l op r for + - * / %. */
static node *
make_arith(parser *p, const tok *t, node *l, node *r)
{
    static const ex_op int_ops[] = {EX_ADD_I, EX_SUB_I, EX_MUL_I, EX_MOD_I};
    static const ex_op flt_ops[] = {EX_ADD_F, EX_SUB_F, EX_MUL_F, EX_MOD_F};
    node              *kids[2];
    int                which;

    if (!(is_num(l->type) || l->type == SH_NULL)
        || !(is_num(r->type) || r->type == SH_NULL)) {
        sh_type bad = is_num(l->type) || l->type == SH_NULL ? r->type
                                                            : l->type;

        if (t->kind == T_PLUS && bad == SH_STRING)
            return perr(p, "'+' needs numbers, got string at position %u; "
                           "use concat() to join strings", t->pos);
        return perr(p, "'%s' needs numbers, got %s at position %u",
                    tok_sym(t->kind), sh_type_name(bad), t->pos);
    }
    if (l->type == SH_NULL || r->type == SH_NULL)
        return const_node(p, sh_null(), t->pos);
    if (t->kind == T_SLASH) {
        kids[0] = to_float(p, l);
        kids[1] = to_float(p, r);
        if (kids[0] == NULL || kids[1] == NULL)
            return NULL;
        return make(p, EX_DIV_F, SH_FLOAT, t->pos, 2, kids);
    }
    which = t->kind == T_PLUS ? 0 : t->kind == T_MINUS ? 1
            : t->kind == T_STAR ? 2 : 3;
    if (l->type == SH_INT && r->type == SH_INT) {
        kids[0] = l;
        kids[1] = r;
        return make(p, int_ops[which], SH_INT, t->pos, 2, kids);
    }
    kids[0] = to_float(p, l);
    kids[1] = to_float(p, r);
    if (kids[0] == NULL || kids[1] == NULL)
        return NULL;
    return make(p, flt_ops[which], SH_FLOAT, t->pos, 2, kids);
}

/* Builds a comparison l op r. */
static node *
make_cmp(parser *p, const tok *t, node *l, node *r)
{
    node  *kids[2] = {l, r};
    node  *n;
    ex_op  op;

    if (l->type == SH_NULL || r->type == SH_NULL)
        return const_node(p, sh_bool(0), t->pos);
    if (l->type == SH_INT && r->type == SH_INT)
        op = EX_CMP_I;
    else if (l->type == SH_FLOAT && r->type == SH_FLOAT)
        op = EX_CMP_F;
    else if (is_num(l->type) && is_num(r->type))
        op = EX_CMP_N;
    else if (l->type == SH_STRING && r->type == SH_STRING)
        op = EX_CMP_S;
    else if (l->type == SH_BOOL && r->type == SH_BOOL)
        op = EX_CMP_B;
    else
        return perr(p, "cannot compare %s with %s at position %u",
                    sh_type_name(l->type), sh_type_name(r->type), t->pos);
    n = node_new(p, op, SH_BOOL, t->pos, 2);
    memcpy(n->kids, kids, sizeof kids);
    n->rel = t->kind == T_EQ ? REL_EQ : t->kind == T_NE ? REL_NE
             : t->kind == T_LT ? REL_LT : t->kind == T_LE ? REL_LE
             : t->kind == T_GT ? REL_GT : REL_GE;
    return finish(p, n);
}

/* Builds l and r, l or r. */
static node *
make_logic(parser *p, const tok *t, node *l, node *r)
{
    node   *kids[2] = {l, r};
    sh_type bad;

    if ((l->type != SH_BOOL && l->type != SH_NULL)
        || (r->type != SH_BOOL && r->type != SH_NULL)) {
        bad = l->type != SH_BOOL && l->type != SH_NULL ? l->type : r->type;
        return perr(p, "'%s' needs bools, got %s at position %u",
                    tok_sym(t->kind), sh_type_name(bad), t->pos);
    }
    return make(p, t->kind == T_AND ? EX_AND : EX_OR,
                l->type == SH_NULL && r->type == SH_NULL ? SH_NULL : SH_BOOL,
                t->pos, 2, kids);
}

/* ------------------------------------------------------------------ */
/* Functions                                                            */
/* ------------------------------------------------------------------ */

typedef enum fn_id {
    FN_LOWER, FN_UPPER, FN_LENGTH, FN_SUBSTR, FN_CONTAINS, FN_STARTS_WITH,
    FN_ENDS_WITH, FN_CONCAT, FN_ABS, FN_ROUND, FN_FLOOR, FN_CEIL, FN_SQRT,
    FN_LN, FN_EXP, FN_INT, FN_FLOAT, FN_STR, FN_COALESCE, FN_IS_NULL, FN_IF,
    FN_HASH
} fn_id;

/* A function of the language: its name and how many arguments it takes. */
typedef struct fn_def {
    const char *name;
    fn_id       id;
    int         min_args;
    int         max_args; /* -1: any number */
} fn_def;

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
static void *
unknown_function(parser *p, const tok *t)
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
    perr(p, "unknown function '%.*s' at position %u%s",
         quote_len(t->text, t->tlen, QUOTE_BYTES), t->text, t->pos, sb.data);
    sb_free(&sb);
    return NULL;
}

/* Checks a function's argument count; returns 0 or sets the error. */
static int
check_arity(parser *p, const fn_def *f, const tok *t, size_t nargs)
{
    int n = (int)nargs;

    if (n >= f->min_args && (f->max_args < 0 || n <= f->max_args))
        return 0;
    if (f->max_args < 0)
        perr(p, "%s takes at least %d argument%s, got %d at position %u",
             f->name, f->min_args, f->min_args == 1 ? "" : "s", n, t->pos);
    else if (f->min_args == f->max_args)
        perr(p, "%s takes %d argument%s, got %d at position %u", f->name,
             f->min_args, f->min_args == 1 ? "" : "s", n, t->pos);
    else
        perr(p, "%s takes %d or %d arguments, got %d at position %u",
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
    perr(p, "argument %zu of %s must be %s, got %s at position %u", i + 1,
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
            return perr(p, "arguments of coalesce must have the same type, "
                           "got %s and %s at position %u",
                        sh_type_name(type), sh_type_name(args[i]->type),
                        argpos[i]);
    }
    for (i = 0; i < nargs && type == SH_FLOAT; i++) {
        if ((args[i] = to_float(p, args[i])) == NULL)
            return NULL;
    }
    if (nargs == 1 || type == SH_NULL)
        return args[0];
    return make(p, EX_COALESCE, type, t->pos, nargs, args);
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
        return perr(p, "arguments 2 and 3 of if must have the same type, "
                       "got %s and %s at position %u",
                    sh_type_name(args[1]->type), sh_type_name(args[2]->type),
                    argpos[2]);
    if (type == SH_FLOAT) {
        if ((args[1] = to_float(p, args[1])) == NULL
            || (args[2] = to_float(p, args[2])) == NULL)
            return NULL;
    }
    if (args[0]->op == EX_CONST)
        return args[0]->type == SH_BOOL && args[0]->k.u.b ? args[1] : args[2];
    return make(p, EX_IF, type, t->pos, 3, args);
}

/*
 * Type-checks a call of 'f' (name token 't') on 'nargs' arguments and
 * builds its node. 'argpos' holds each argument's position.
 */
static node *
make_call(parser *p, const fn_def *f, const tok *t, node **args,
          size_t nargs, const unsigned *argpos)
{
    sh_type t0;
    size_t  i;
    int     any_null = 0;

    if (check_arity(p, f, t, nargs) != 0)
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
        return make(p, EX_IS_NULL, SH_BOOL, t->pos, 1, args);
    case FN_CONCAT:
        if (any_null)
            return const_node(p, sh_null(), t->pos);
        if (nargs == 1 && t0 == SH_STRING)
            return args[0];
        return make(p, EX_CONCAT, SH_STRING, t->pos, nargs, args);
    case FN_STR:
        if (t0 == SH_STRING || t0 == SH_NULL)
            return args[0];
        return make(p, EX_STR, SH_STRING, t->pos, 1, args);
    case FN_HASH:
        return make(p, EX_HASH, any_null ? SH_NULL : SH_INT, t->pos, 1, args);
    case FN_INT:
        if (t0 == SH_INT || t0 == SH_NULL)
            return args[0];
        return make(p, t0 == SH_FLOAT ? EX_INT_F : t0 == SH_STRING ? EX_INT_S
                                                                   : EX_INT_B,
                    SH_INT, t->pos, 1, args);
    case FN_FLOAT:
        if (t0 == SH_FLOAT || t0 == SH_NULL)
            return args[0];
        if (t0 == SH_INT)
            return to_float(p, args[0]);
        return make(p, t0 == SH_STRING ? EX_FLOAT_S : EX_FLOAT_B, SH_FLOAT,
                    t->pos, 1, args);
    case FN_LOWER:
    case FN_UPPER:
    case FN_LENGTH:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0)
            return NULL;
        return make(p, f->id == FN_LOWER ? EX_LOWER : f->id == FN_UPPER
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
        return make(p, EX_SUBSTR, any_null ? SH_NULL : SH_STRING, t->pos,
                    nargs, args);
    case FN_CONTAINS:
    case FN_STARTS_WITH:
    case FN_ENDS_WITH:
        if (want(p, f, 0, args, argpos, WANT_STRING) != 0
            || want(p, f, 1, args, argpos, WANT_STRING) != 0)
            return NULL;
        return make(p, f->id == FN_CONTAINS ? EX_CONTAINS
                       : f->id == FN_STARTS_WITH ? EX_STARTS_WITH
                                                 : EX_ENDS_WITH,
                    any_null ? SH_NULL : SH_BOOL, t->pos, 2, args);
    case FN_ABS:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0)
            return NULL;
        return make(p, t0 == SH_INT ? EX_ABS_I : EX_ABS_F, t0, t->pos, 1,
                    args);
    case FN_ROUND:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0
            || (nargs == 2 && want(p, f, 1, args, argpos, WANT_INT) != 0))
            return NULL;
        if (any_null)
            return const_node(p, sh_null(), t->pos);
        if (t0 == SH_INT && nargs == 1)
            return args[0];
        return make(p, t0 == SH_INT ? EX_ROUND_I : EX_ROUND_F, t0, t->pos,
                    nargs, args);
    case FN_FLOOR:
    case FN_CEIL:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0)
            return NULL;
        if (t0 != SH_FLOAT)
            return args[0];
        return make(p, f->id == FN_FLOOR ? EX_FLOOR : EX_CEIL, SH_FLOAT,
                    t->pos, 1, args);
    case FN_SQRT:
    case FN_LN:
    case FN_EXP:
        if (want(p, f, 0, args, argpos, WANT_NUMBER) != 0)
            return NULL;
        if ((args[0] = to_float(p, args[0])) == NULL)
            return NULL;
        return make(p, f->id == FN_SQRT ? EX_SQRT : f->id == FN_LN ? EX_LN
                                                                   : EX_EXP,
                    any_null ? SH_NULL : SH_FLOAT, t->pos, 1, args);
    }
    return perr(p, "internal error: function %s not built", f->name);
}

/* ------------------------------------------------------------------ */
/* Parser                                                               */
/* ------------------------------------------------------------------ */

static node *parse_or(parser *p);

static const tok *
peek(const parser *p)
{
    return &p->toks[p->i];
}

static const tok *
take(parser *p)
{
    const tok *t = &p->toks[p->i];

    if (t->kind != T_EOF)
        p->i++;
    return t;
}

/* Enters one level of nesting; returns 0 or sets the error. */
static int
nest_in(parser *p, const tok *t)
{
    if (++p->nest > MAX_NEST) {
        perr(p, "expression is nested too deeply (more than %d levels) at "
                "position %u", MAX_NEST, t->pos);
        return -1;
    }
    return 0;
}

/* Looks up a function by name, ignoring case; NULL if there is none. */
static const fn_def *
find_fn(const char *name)
{
    size_t i;

    for (i = 0; i < N_FNS; i++) {
        if (strcasecmp(name, fns[i].name) == 0)
            return &fns[i];
    }
    return NULL;
}

/* Parses NAME '(' args ')' with 'name' already taken. */
static node *
parse_call(parser *p, const tok *name)
{
    const fn_def *f = find_fn(name->text);
    const tok    *lp, *t;
    node        **args = NULL, *a, *result = NULL;
    unsigned     *argpos = NULL;
    size_t        nargs = 0, cap = 0;
    char          what[QUOTE_BYTES + 32];

    if (f == NULL)
        return unknown_function(p, name);
    lp = take(p);
    if (nest_in(p, lp) != 0)
        goto done;
    if (peek(p)->kind == T_RP)
        take(p);
    else {
        for (;;) {
            if (nargs == cap) {
                cap = cap ? cap * 2 : 4;
                args = xrealloc(args, cap * sizeof args[0]);
                argpos = xrealloc(argpos, cap * sizeof argpos[0]);
            }
            argpos[nargs] = peek(p)->pos;
            if ((a = parse_or(p)) == NULL)
                goto done;
            args[nargs++] = a;
            t = take(p);
            if (t->kind == T_RP)
                break;
            if (t->kind == T_COMMA)
                continue;
            if (t->kind == T_EOF) {
                perr(p, "missing ')' for '(' at position %u", lp->pos);
                goto done;
            }
            describe(p, t, what, sizeof what);
            perr(p, "expected ',' or ')' at position %u, found %s", t->pos,
                 what);
            goto done;
        }
    }
    p->nest--;
    if (nargs == 0) {
        check_arity(p, f, name, 0);
        goto done;
    }
    result = make_call(p, f, name, args, nargs, argpos);
done:
    free(args);
    free(argpos);
    return result;
}

/* Resolves a column name token to a column node. */
static node *
parse_column(parser *p, const tok *t)
{
    long   idx = schema_find(p->sc, t->text);
    strbuf sb = {0};
    size_t i;
    node  *n;

    if (idx >= 0) {
        n = node_new(p, EX_COL, p->sc->types[idx], t->pos, 0);
        n->col = (size_t)idx;
        n->name = t->text;
        return finish(p, n);
    }
    if (p->sc->n == 0)
        sb_puts(&sb, "; the input has no columns");
    for (i = 0; i < p->sc->n; i++) {
        if (sb.len > 600) {
            sb_printf(&sb, ", ... (%zu more)", p->sc->n - i);
            break;
        }
        sb_puts(&sb, i ? ", " : "; columns are: ");
        sb_puts(&sb, p->sc->names[i]);
    }
    perr(p, "unknown column '%.*s' at position %u%s",
         quote_len(t->text, t->tlen, QUOTE_BYTES), t->text, t->pos, sb.data);
    sb_free(&sb);
    return NULL;
}

/* primary := literal | name | "quoted name" | NAME ( args ) | ( expr ) */
static node *
parse_primary(parser *p)
{
    const tok *t = peek(p), *rp;
    node      *n;
    char       what[QUOTE_BYTES + 32];

    switch (t->kind) {
    case T_INT:
        take(p);
        if (t->big || t->mag > (uint64_t)INT64_MAX)
            return perr(p, "integer literal %.*s is out of range at "
                           "position %u",
                        quote_len(p->src + t->off, t->len, QUOTE_BYTES),
                        p->src + t->off, t->pos);
        return const_node(p, sh_int((int64_t)t->mag), t->pos);
    case T_FLOAT:
        take(p);
        return const_node(p, sh_float(t->f), t->pos);
    case T_STR:
        take(p);
        return const_node(p, sh_str(t->text, t->tlen), t->pos);
    case T_TRUE:
    case T_FALSE:
        take(p);
        return const_node(p, sh_bool(t->kind == T_TRUE), t->pos);
    case T_NULL:
        take(p);
        return const_node(p, sh_null(), t->pos);
    case T_NAME:
        take(p);
        if (peek(p)->kind == T_LP)
            return parse_call(p, t);
        return parse_column(p, t);
    case T_QNAME:
        take(p);
        return parse_column(p, t);
    case T_LP:
        take(p);
        if (nest_in(p, t) != 0)
            return NULL;
        if ((n = parse_or(p)) == NULL)
            return NULL;
        rp = take(p);
        if (rp->kind == T_EOF)
            return perr(p, "missing ')' for '(' at position %u", t->pos);
        if (rp->kind != T_RP) {
            describe(p, rp, what, sizeof what);
            return perr(p, "expected ')' at position %u, found %s", rp->pos,
                        what);
        }
        p->nest--;
        return n;
    default:
        return unexpected(p, t);
    }
}

/* unary := '-' unary | primary */
static node *
parse_unary(parser *p)
{
    const tok *t = peek(p), *lit;
    node      *k;

    if (t->kind != T_MINUS)
        return parse_primary(p);
    take(p);
    lit = peek(p);
    if (lit->kind == T_INT && !lit->big
        && lit->mag == (uint64_t)INT64_MAX + 1) {
        take(p); /* -9223372036854775808 is a literal, not an overflow */
        return const_node(p, sh_int(INT64_MIN), t->pos);
    }
    if (nest_in(p, t) != 0 || (k = parse_unary(p)) == NULL)
        return NULL;
    p->nest--;
    if (k->type == SH_NULL)
        return const_node(p, sh_null(), t->pos);
    if (!is_num(k->type))
        return perr(p, "'-' needs a number, got %s at position %u",
                    sh_type_name(k->type), t->pos);
    return make(p, k->type == SH_INT ? EX_NEG_I : EX_NEG_F, k->type, t->pos,
                1, &k);
}

/* mul := unary (('*' | '/' | '%') unary)* */
static node *
parse_mul(parser *p)
{
    node      *l = parse_unary(p), *r;
    const tok *t;

    while (l != NULL && (peek(p)->kind == T_STAR || peek(p)->kind == T_SLASH
                         || peek(p)->kind == T_PCT)) {
        t = take(p);
        if ((r = parse_unary(p)) == NULL)
            return NULL;
        l = make_arith(p, t, l, r);
    }
    return l;
}

/* add := mul (('+' | '-') mul)* */
static node *
parse_add(parser *p)
{
    node      *l = parse_mul(p), *r;
    const tok *t;

    while (l != NULL
           && (peek(p)->kind == T_PLUS || peek(p)->kind == T_MINUS)) {
        t = take(p);
        if ((r = parse_mul(p)) == NULL)
            return NULL;
        l = make_arith(p, t, l, r);
    }
    return l;
}

static int
is_cmp(tok_kind k)
{
    return k == T_EQ || k == T_NE || k == T_LT || k == T_LE || k == T_GT
           || k == T_GE;
}

/* cmp := add (('==' | '!=' | '<' | '<=' | '>' | '>=') add)? */
static node *
parse_cmp(parser *p)
{
    node      *l = parse_add(p), *r;
    const tok *t;

    if (l == NULL || !is_cmp(peek(p)->kind))
        return l;
    t = take(p);
    if ((r = parse_add(p)) == NULL)
        return NULL;
    if (is_cmp(peek(p)->kind))
        return perr(p, "unexpected '%s' at position %u; comparisons cannot "
                       "be chained, join them with 'and'",
                    tok_sym(peek(p)->kind), peek(p)->pos);
    return make_cmp(p, t, l, r);
}

/* not := 'not' not | cmp */
static node *
parse_not(parser *p)
{
    const tok *t = peek(p);
    node      *k;

    if (t->kind != T_NOT)
        return parse_cmp(p);
    take(p);
    if (nest_in(p, t) != 0 || (k = parse_not(p)) == NULL)
        return NULL;
    p->nest--;
    if (k->type != SH_BOOL && k->type != SH_NULL)
        return perr(p, "'not' needs a bool, got %s at position %u",
                    sh_type_name(k->type), t->pos);
    return make(p, EX_NOT, k->type, t->pos, 1, &k);
}

/* and := not ('and' not)* */
static node *
parse_and(parser *p)
{
    node      *l = parse_not(p), *r;
    const tok *t;

    while (l != NULL && peek(p)->kind == T_AND) {
        t = take(p);
        if ((r = parse_not(p)) == NULL)
            return NULL;
        l = make_logic(p, t, l, r);
    }
    return l;
}

/* or := and ('or' and)*; the whole expression. */
static node *
parse_or(parser *p)
{
    node      *l = parse_and(p), *r;
    const tok *t;

    while (l != NULL && peek(p)->kind == T_OR) {
        t = take(p);
        if ((r = parse_and(p)) == NULL)
            return NULL;
        l = make_logic(p, t, l, r);
    }
    return l;
}

/*
 * Compiles 'src' against 'sc': lexes, parses, type-checks and folds. See
 * expr.h for the contract; the result is freed with expr_free.
 */
expr *
expr_compile(const char *src, const schema *sc, const char *path,
             sh_err *err)
{
    static const schema no_columns = {0, NULL, NULL};
    parser              p;
    expr               *e = xcalloc(1, sizeof *e);
    expr               *result = NULL;
    node               *root;

    memset(&p, 0, sizeof p);
    p.src = src ? src : "";
    p.sc = sc ? sc : &no_columns;
    p.e = e;
    p.path = path ? path : "";
    p.err = err;
    p.tmp = arena_new(4096);
    e->mem = arena_new(4096);
    snprintf(e->path, sizeof e->path, "%s", p.path);
    if (lex(&p) != 0)
        goto done;
    if (p.toks[0].kind == T_EOF) {
        perr(&p, "empty expression");
        goto done;
    }
    if ((root = parse_or(&p)) == NULL)
        goto done;
    if (peek(&p)->kind != T_EOF) {
        unexpected(&p, peek(&p));
        goto done;
    }
    e->root = root;
    result = e;
    e = NULL;
done:
    expr_free(e);
    free(p.toks);
    arena_free(p.tmp);
    sb_free(&p.sb);
    return result;
}

/* The static type of 'e''s result; SH_NULL when it is always null. */
sh_type
expr_type(const expr *e)
{
    return e->root->type;
}

/* Frees 'e' and its constants (NULL is fine). */
void
expr_free(expr *e)
{
    if (e == NULL)
        return;
    arena_free(e->mem);
    free(e);
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                           */
/* ------------------------------------------------------------------ */

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
                      "integer overflow in %s at position %u: %" PRId64,
                      what, n->pos, a);
}

/* Applies a relation to a three-way comparison result. */
static int
rel_holds(rel r, int c)
{
    switch (r) {
    case REL_EQ: return c == 0;
    case REL_NE: return c != 0;
    case REL_LT: return c < 0;
    case REL_LE: return c <= 0;
    case REL_GT: return c > 0;
    case REL_GE: return c >= 0;
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
    char   buf[32];
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
    default:
        return v;
    }
    return sh_str(arena_strndup(a, buf, n), n);
}

/* concat(a, ...): the texts of the arguments, joined in the arena. */
static int
eval_concat(const node *n, evalctx *c, sh_value *out)
{
    sh_value  stack_vals[8], *vals = stack_vals;
    size_t    i, total = 0;
    char     *d;
    int       rc;

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
    static const double pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
    };
    double p, y, half_dist;

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
    char buf[40], text[48], dig[20];
    int  prec, ndig = 0, exp10, keep, i;
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

    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'
                     || *p == '\f' || *p == '\v')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n'
                     || p[n - 1] == '\r' || p[n - 1] == '\f'
                     || p[n - 1] == '\v'))
        n--;
    return sh_str(p, n);
}

/* Is 'f' inside the int64 range, so that truncating it fits? */
static int
double_fits_int(double f)
{
    return f >= -9223372036854775808.0 && f < 9223372036854775808.0;
}

/* int(s): an int text, or a float text truncated; null otherwise. */
static sh_value
string_to_int(sh_value s)
{
    sh_value v;

    s = trim(s);
    if (value_parse(SH_INT, s.u.s.ptr, s.u.s.len, &v) == 0)
        return v;
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
#define EV(i, v)                                                           \
    do {                                                                   \
        int rc_ = eval(n->kids[(i)], c, &(v));                             \
        if (rc_ != 0)                                                      \
            return rc_;                                                    \
    } while (0)

/* Evaluates kid 'i' into 'v'; a null makes the node's result null. */
#define EVN(i, v)                                                          \
    do {                                                                   \
        EV(i, v);                                                          \
        if ((v).type == SH_NULL) {                                         \
            *out = sh_null();                                              \
            return 0;                                                      \
        }                                                                  \
    } while (0)

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
            *out = sh_bool(rel_holds(n->rel, (a.u.i > b.u.i)
                                                 - (a.u.i < b.u.i)));
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
                                     b.u.s.ptr, b.u.s.len) == 0));
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
