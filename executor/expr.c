/*
 * expr.c - sheaf's expression language: the recursive-descent parser that
 * type-checks as it builds a typed tree, the public compile/free calls, and
 * the walk that lists the columns a compiled tree reads (expr_columns). The
 * lexer is expr_lex.c, the node builder and constant folding expr_node.c,
 * the function library expr_fn.c, the evaluator expr_eval.c; expr_int.h
 * holds what they share. Calls go one way: parser -> functions -> nodes.
 *
 * Compilation resolves every column to its index and every operator to a
 * node whose operand types are fixed (an int '+' is EX_ADD_I, a mixed one
 * casts its int side with EX_I2F and is EX_ADD_F), so evaluation is one
 * switch per node with no type dispatch beyond null checks. A node whose
 * static type is null, or whose operands are all constants, is folded into
 * a constant at compile time. Nodes and literal strings live in the
 * expression's own arena; evaluation allocates only in the caller's arena.
 */
#include "expr.h"
#include "expr_int.h"
#include "datetime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Operators: type checking                                             */
/* ------------------------------------------------------------------ */

/* The symbol of an operator token, for messages. */
static const char *
tok_sym(tok_kind k)
{
    switch (k) {
    case T_PLUS:
        return "+";
    case T_MINUS:
        return "-";
    case T_STAR:
        return "*";
    case T_SLASH:
        return "/";
    case T_PCT:
        return "%";
    case T_EQ:
        return "==";
    case T_NE:
        return "!=";
    case T_LT:
        return "<";
    case T_LE:
        return "<=";
    case T_GT:
        return ">";
    case T_GE:
        return ">=";
    case T_AND:
        return "and";
    case T_OR:
        return "or";
    case T_NOT:
        return "not";
    default:
        return "?";
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
        sh_type bad = is_num(l->type) || l->type == SH_NULL ? r->type : l->type;

        if (t->kind == T_PLUS && bad == SH_STRING)
            return expr_perr(p,
                             "'+' needs numbers, got string at position %u; "
                             "use concat() to join strings",
                             t->pos);
        return expr_perr(p, "'%s' needs numbers, got %s at position %u",
                         tok_sym(t->kind), sh_type_name(bad), t->pos);
    }
    if (l->type == SH_NULL || r->type == SH_NULL)
        return expr_const_node(p, sh_null(), t->pos);
    if (t->kind == T_SLASH) {
        kids[0] = expr_to_float(p, l);
        kids[1] = expr_to_float(p, r);
        if (kids[0] == NULL || kids[1] == NULL)
            return NULL;
        return expr_make(p, EX_DIV_F, SH_FLOAT, t->pos, 2, kids);
    }
    which = t->kind == T_PLUS    ? 0
            : t->kind == T_MINUS ? 1
            : t->kind == T_STAR  ? 2
                                 : 3;
    if (l->type == SH_INT && r->type == SH_INT) {
        kids[0] = l;
        kids[1] = r;
        return expr_make(p, int_ops[which], SH_INT, t->pos, 2, kids);
    }
    kids[0] = expr_to_float(p, l);
    kids[1] = expr_to_float(p, r);
    if (kids[0] == NULL || kids[1] == NULL)
        return NULL;
    return expr_make(p, flt_ops[which], SH_FLOAT, t->pos, 2, kids);
}

/* Builds a comparison l op r. */
static node *
make_cmp(parser *p, const tok *t, node *l, node *r)
{
    node *kids[2] = {l, r};
    node *n;
    ex_op op;

    if (l->type == SH_NULL || r->type == SH_NULL)
        return expr_const_node(p, sh_bool(0), t->pos);
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
    else if (is_time(l->type) || is_time(r->type)) {
        /* dates and timestamps: a date meets a timestamp as its midnight,
         * a string constant is read as the other side's type */
        sh_type to = l->type == SH_TIMESTAMP || r->type == SH_TIMESTAMP
                         ? SH_TIMESTAMP
                         : SH_DATE;

        if (to == SH_DATE && (l->type == SH_STRING || r->type == SH_STRING)) {
            const node *s = l->type == SH_STRING ? l : r;
            int64_t     v;

            if (s->op == EX_CONST
                && dt_parse_date(s->k.u.s.ptr, s->k.u.s.len, &v) != 0)
                to = SH_TIMESTAMP;
        }
        if ((kids[0] = expr_as_time(p, l, to, t->pos)) == NULL
            || (kids[1] = expr_as_time(p, r, to, t->pos)) == NULL)
            return NULL;
        op = EX_CMP_I;
    } else
        return expr_perr(p, "cannot compare %s with %s at position %u",
                         sh_type_name(l->type), sh_type_name(r->type), t->pos);
    n = expr_node_new(p, op, SH_BOOL, t->pos, 2);
    memcpy(n->kids, kids, sizeof kids);
    n->rel = t->kind == T_EQ   ? REL_EQ
             : t->kind == T_NE ? REL_NE
             : t->kind == T_LT ? REL_LT
             : t->kind == T_LE ? REL_LE
             : t->kind == T_GT ? REL_GT
                               : REL_GE;
    return expr_node_finish(p, n);
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
        return expr_perr(p, "'%s' needs bools, got %s at position %u",
                         tok_sym(t->kind), sh_type_name(bad), t->pos);
    }
    return expr_make(p, t->kind == T_AND ? EX_AND : EX_OR,
                     l->type == SH_NULL && r->type == SH_NULL ? SH_NULL
                                                              : SH_BOOL,
                     t->pos, 2, kids);
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
        expr_perr(p,
                  "expression is nested too deeply (more than %d levels) at "
                  "position %u",
                  MAX_NEST, t->pos);
        return -1;
    }
    return 0;
}

/* Parses NAME '(' args ')' with 'name' already taken. */
static node *
parse_call(parser *p, const tok *name)
{
    const fn_def *f = expr_find_fn(name->text);
    const tok    *lp, *t;
    node        **args = NULL, *a, *result = NULL;
    unsigned     *argpos = NULL;
    size_t        nargs = 0, cap = 0;
    char          what[QUOTE_BYTES + 32];

    if (f == NULL)
        return expr_unknown_function(p, name);
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
                expr_perr(p, "missing ')' for '(' at position %u", lp->pos);
                goto done;
            }
            expr_describe(p, t, what, sizeof what);
            expr_perr(p, "expected ',' or ')' at position %u, found %s", t->pos,
                      what);
            goto done;
        }
    }
    p->nest--;
    if (nargs == 0) {
        expr_check_arity(p, f, name, 0);
        goto done;
    }
    result = expr_make_call(p, f, name, args, nargs, argpos);
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
        n = expr_node_new(p, EX_COL, p->sc->types[idx], t->pos, 0);
        n->col = (size_t)idx;
        n->name = t->text;
        return expr_node_finish(p, n);
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
    expr_perr(p, "unknown column '%.*s' at position %u%s",
              expr_quote_len(t->text, t->tlen, QUOTE_BYTES), t->text, t->pos,
              sb.data);
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
            return expr_perr(p,
                             "integer literal %.*s is out of range at "
                             "position %u",
                             expr_quote_len(p->src + t->off, t->len,
                                            QUOTE_BYTES),
                             p->src + t->off, t->pos);
        return expr_const_node(p, sh_int((int64_t)t->mag), t->pos);
    case T_FLOAT:
        take(p);
        return expr_const_node(p, sh_float(t->f), t->pos);
    case T_STR:
        take(p);
        return expr_const_node(p, sh_str(t->text, t->tlen), t->pos);
    case T_TRUE:
    case T_FALSE:
        take(p);
        return expr_const_node(p, sh_bool(t->kind == T_TRUE), t->pos);
    case T_NULL:
        take(p);
        return expr_const_node(p, sh_null(), t->pos);
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
            return expr_perr(p, "missing ')' for '(' at position %u", t->pos);
        if (rp->kind != T_RP) {
            expr_describe(p, rp, what, sizeof what);
            return expr_perr(p, "expected ')' at position %u, found %s",
                             rp->pos, what);
        }
        p->nest--;
        return n;
    default:
        return expr_unexpected(p, t);
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
        return expr_const_node(p, sh_int(INT64_MIN), t->pos);
    }
    if (nest_in(p, t) != 0 || (k = parse_unary(p)) == NULL)
        return NULL;
    p->nest--;
    if (k->type == SH_NULL)
        return expr_const_node(p, sh_null(), t->pos);
    if (!is_num(k->type))
        return expr_perr(p, "'-' needs a number, got %s at position %u",
                         sh_type_name(k->type), t->pos);
    return expr_make(p, k->type == SH_INT ? EX_NEG_I : EX_NEG_F, k->type,
                     t->pos, 1, &k);
}

/* mul := unary (('*' | '/' | '%') unary)* */
static node *
parse_mul(parser *p)
{
    node      *l = parse_unary(p), *r;
    const tok *t;

    while (l != NULL
           && (peek(p)->kind == T_STAR || peek(p)->kind == T_SLASH
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

    while (l != NULL && (peek(p)->kind == T_PLUS || peek(p)->kind == T_MINUS)) {
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
        return expr_perr(p,
                         "unexpected '%s' at position %u; comparisons "
                         "cannot be chained, join them with 'and'",
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
        return expr_perr(p, "'not' needs a bool, got %s at position %u",
                         sh_type_name(k->type), t->pos);
    return expr_make(p, EX_NOT, k->type, t->pos, 1, &k);
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
expr_compile(const char *src, const schema *sc, const char *path, sh_err *err)
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
    if (expr_lex(&p) != 0)
        goto done;
    if (p.toks[0].kind == T_EOF) {
        expr_perr(&p, "empty expression");
        goto done;
    }
    if ((root = parse_or(&p)) == NULL)
        goto done;
    if (peek(&p)->kind != T_EOF) {
        expr_unexpected(&p, peek(&p));
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
    size_t i;

    if (e == NULL)
        return;
    for (i = 0; i < e->nrx; i++)
        rx_free(e->rxs[i]);
    free(e->rxs);
    arena_free(e->mem);
    free(e);
}

/* Marks in 'used' the columns subtree 'n' reads; see expr_columns. */
static size_t
mark_columns(const node *n, unsigned char *used, size_t ncols)
{
    size_t i, marked = 0;

    if (n->op == EX_COL) {
        if (n->col < ncols && !used[n->col]) {
            used[n->col] = 1;
            return 1;
        }
        return 0;
    }
    for (i = 0; i < n->nkids; i++)
        marked += mark_columns(n->kids[i], used, ncols);
    return marked;
}

/*
 * Sets used[k] to 1 for each column k < ncols that 'e''s compiled tree
 * reads (see expr.h). Returns how many entries went from 0 to 1.
 */
size_t
expr_columns(const expr *e, unsigned char *used, size_t ncols)
{
    return mark_columns(e->root, used, ncols);
}

/* The column index of 'n' when it is a bare column reference, or -1. */
static long
pred_col(const node *n)
{
    return n->op == EX_COL ? (long)n->col : -1;
}

/* Adds the predicates of conjunct 'n' to out[*got..max); see
 * expr_and_preds. */
static void
and_preds(const node *n, expr_pred *out, size_t max, size_t *got)
{
    /* "k < x" is "x > k": the relation seen from the other side. */
    static const expr_rel flip[] = {EXPR_EQ, EXPR_NE, EXPR_GT,
                                    EXPR_GE, EXPR_LT, EXPR_LE};
    const node           *a, *b;
    size_t                i;

    if (*got >= max)
        return;
    switch (n->op) {
    case EX_AND:
        for (i = 0; i < n->nkids; i++)
            and_preds(n->kids[i], out, max, got);
        return;
    case EX_IS_NULL:
        if (pred_col(n->kids[0]) >= 0) {
            out[*got].col = n->kids[0]->col;
            out[*got].rel = EXPR_IS_NULL;
            out[*got].k = sh_null();
            (*got)++;
        }
        return;
    case EX_NOT:
        a = n->kids[0];
        if (a->op == EX_IS_NULL && pred_col(a->kids[0]) >= 0) {
            out[*got].col = a->kids[0]->col;
            out[*got].rel = EXPR_NOT_NULL;
            out[*got].k = sh_null();
            (*got)++;
        }
        return;
    case EX_CMP_I:
    case EX_CMP_F:
    case EX_CMP_N:
    case EX_CMP_S:
    case EX_CMP_B:
        a = n->kids[0];
        b = n->kids[1];
        if (a->op == EX_COL && b->op == EX_CONST && b->k.type != SH_NULL) {
            out[*got].col = a->col;
            out[*got].rel = (expr_rel)n->rel;
            out[*got].k = b->k;
            (*got)++;
        } else if (b->op == EX_COL && a->op == EX_CONST
                   && a->k.type != SH_NULL) {
            out[*got].col = b->col;
            out[*got].rel = flip[n->rel];
            out[*got].k = a->k;
            (*got)++;
        }
        return;
    default:
        return;
    }
}

/* The top-level AND comparisons of 'e' with constants; see expr.h. */
size_t
expr_and_preds(const expr *e, expr_pred *out, size_t max)
{
    size_t got = 0;

    and_preds(e->root, out, max, &got);
    return got;
}
