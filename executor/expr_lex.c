/*
 * expr_lex.c - the lexer of sheaf's expression language: splits the source
 * text into tokens (numbers, 'strings', names, "quoted names", operators),
 * and the compile errors that quote the source (expr_perr, expr_describe,
 * expr_unexpected) with 1-based character positions.
 */
#include "expr_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
int
expr_quote_len(const char *p, size_t n, size_t max)
{
    if (n <= max)
        return (int)n;
    n = max;
    while (n > 0 && is_cont((unsigned char)p[n]))
        n--;
    return (int)n;
}

/* Sets the first compile error: SH_EINVAL, the parser's path, a message. */
void *
expr_perr(parser *p, const char *fmt, ...)
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
        p->toks = xrealloc(p->toks,
                           (p->ntoks ? p->ntoks * 2 : 1) * sizeof p->toks[0]);
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
        expr_perr(p, "invalid number '%.*s' at position %u",
                  expr_quote_len(s + i, j - i, QUOTE_BYTES), s + i, t->pos);
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
        expr_perr(p, "number %.*s is out of range at position %u",
                  expr_quote_len(s + i, j - i, QUOTE_BYTES), s + i, t->pos);
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
            expr_perr(p, "unterminated %s starting at position %u",
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
    t->text = arena_strndup(p->e->mem, p->sb.data ? p->sb.data : "", p->sb.len);
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
int
expr_lex(parser *p)
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
        case '(':
            t.kind = T_LP;
            break;
        case ')':
            t.kind = T_RP;
            break;
        case ',':
            t.kind = T_COMMA;
            break;
        case '+':
            t.kind = T_PLUS;
            break;
        case '-':
            t.kind = T_MINUS;
            break;
        case '*':
            t.kind = T_STAR;
            break;
        case '/':
            t.kind = T_SLASH;
            break;
        case '%':
            t.kind = T_PCT;
            break;
        case '<':
            t.kind = s[i + 1] == '=' ? T_LE : T_LT;
            break;
        case '>':
            t.kind = s[i + 1] == '=' ? T_GE : T_GT;
            break;
        case '=':
            if (s[i + 1] != '=') {
                expr_perr(p,
                          "unexpected '=' at position %u; use '==' to "
                          "compare",
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
            expr_perr(p, "unexpected character '%.*s' at position %u", (int)n,
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
void
expr_describe(const parser *p, const tok *t, char *buf, size_t size)
{
    const char *s = p->src + t->off;
    int         n = expr_quote_len(s, t->len, QUOTE_BYTES);
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
void *
expr_unexpected(parser *p, const tok *t)
{
    char what[QUOTE_BYTES + 32];

    if (t->kind == T_EOF)
        return expr_perr(p, "expected expression at end of input");
    expr_describe(p, t, what, sizeof what);
    return expr_perr(p, "unexpected %s at position %u", what, t->pos);
}
