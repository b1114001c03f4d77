/*
 * expr_node.c - the nodes of the expression language's typed tree: making
 * one in the expression's arena, checking the tree's depth, folding a node
 * whose operands are constants (or whose type is always null) into a
 * constant, and the int-to-float cast. The parser (expr.c) and the
 * function library (expr_fn.c) build their nodes here; this file calls
 * neither of them.
 */
#include "expr.h"
#include "expr_int.h"

#include <string.h>

/* A node with room for 'nkids' operands, in the expression's arena. */
node *
expr_node_new(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids)
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
node *
expr_const_node(parser *p, sh_value v, unsigned pos)
{
    node *n = expr_node_new(p, EX_CONST, v.type, pos, 0);

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
node *
expr_node_finish(parser *p, node *n)
{
    size_t   i;
    int      all_const = n->op != EX_COL && n->op != EX_CONST;
    sh_value v;
    sh_err   ferr;

    for (i = 0; i < n->nkids; i++) {
        if (n->kids[i]->depth + 1 > n->depth)
            n->depth = n->kids[i]->depth + 1;
        if (n->kids[i]->op != EX_CONST)
            all_const = 0;
    }
    if (n->depth > MAX_TREE_DEPTH)
        return expr_perr(p,
                         "expression is too deep (more than %d levels) at "
                         "position %u",
                         MAX_TREE_DEPTH, n->pos);
    if (n->type == SH_NULL && n->op != EX_CONST)
        return expr_const_node(p, sh_null(), n->pos);
    if (!all_const)
        return n;
    arena_reset(p->tmp);
    if (expr_eval_node(n, p->tmp, p->path, &v, &ferr) != 0)
        return n; /* e.g. an overflow: left to fail at evaluation */
    return expr_const_node(p, v, n->pos);
}

/* Builds a node of 'op' over 'nkids' kids, then finishes it. */
node *
expr_make(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids,
          node **kids)
{
    node *n = expr_node_new(p, op, type, pos, nkids);

    if (nkids)
        memcpy(n->kids, kids, nkids * sizeof kids[0]);
    return expr_node_finish(p, n);
}

/* Builds a node with a parameter and a pattern, then finishes it. */
node *
expr_make_x(parser *p, ex_op op, sh_type type, unsigned pos, size_t nkids,
            node **kids, int64_t arg, rx *re)
{
    node *n = expr_node_new(p, op, type, pos, nkids);

    if (nkids)
        memcpy(n->kids, kids, nkids * sizeof kids[0]);
    n->arg = arg;
    n->re = re;
    return expr_node_finish(p, n);
}

/* 'n' as a float: itself, or an int-to-float cast of it. */
node *
expr_to_float(parser *p, node *n)
{
    if (n->type != SH_INT)
        return n;
    return expr_make(p, EX_I2F, SH_FLOAT, n->pos, 1, &n);
}
