/*
 * expr_str.c - the run-time string functions of the expression language
 * added with issue 11: trim/ltrim/rtrim, replace, split_part, strpos,
 * lpad/rpad and reverse, all counting UTF-8 characters (not bytes) where
 * SQL counts positions or lengths, as DuckDB does. Results borrow their
 * argument when they can and are otherwise made in the caller's arena.
 */
#include "expr_int.h"

#include <string.h>

/* Bytes of the UTF-8 character starting at p[i] (1 for a stray byte). */
static size_t
char_len(const char *p, size_t n, size_t i)
{
    size_t j = i + 1;

    while (j < n && is_cont((unsigned char)p[j]))
        j++;
    return j - i;
}

/* Is the character p[i..i+len) one of the characters of 'set'? */
static int
in_set(const char *c, size_t len, sh_value set)
{
    const char *s = set.u.s.ptr;
    size_t      n = set.u.s.len, i, k;

    for (i = 0; i < n; i += k) {
        k = char_len(s, n, i);
        if (k == len && memcmp(s + i, c, len) == 0)
            return 1;
    }
    return 0;
}

/* trim: 'which' 1 left, 2 right, 3 both; 'set' the characters (NULL:
 * spaces, as DuckDB's trim). Borrows. */
sh_value
expr_str_trim(sh_value s, const sh_value *set, int which)
{
    static const sh_value space = {SH_STRING, {.s = {" ", 1}}};
    const char           *p = s.u.s.ptr;
    size_t                b = 0, e = s.u.s.len, k;

    if (set == NULL)
        set = &space;
    if (which & 1) {
        while (b < e && in_set(p + b, k = char_len(p, e, b), *set))
            b += k;
    }
    if (which & 2) {
        while (e > b) {
            size_t st = e - 1;

            while (st > b && is_cont((unsigned char)p[st]))
                st--;
            if (!in_set(p + st, e - st, *set))
                break;
            e = st;
        }
    }
    return sh_str(p + b, e - b);
}

/* replace(s, from, to): every occurrence, left to right; an empty 'from'
 * changes nothing. */
sh_value
expr_str_replace(sh_value s, sh_value from, sh_value to, arena *a)
{
    const char *p = s.u.s.ptr, *hit;
    size_t      n = s.u.s.len, i = 0, count = 0, out_len;
    char       *d, *w;

    if (from.u.s.len == 0 || n == 0)
        return s;
    while (i < n
           && (hit = memmem(p + i, n - i, from.u.s.ptr, from.u.s.len))
                  != NULL) {
        count++;
        i = (size_t)(hit - p) + from.u.s.len;
    }
    if (count == 0)
        return s;
    out_len = n - count * from.u.s.len + count * to.u.s.len;
    d = w = arena_alloc(a, out_len ? out_len : 1);
    i = 0;
    while (i < n
           && (hit = memmem(p + i, n - i, from.u.s.ptr, from.u.s.len))
                  != NULL) {
        memcpy(w, p + i, (size_t)(hit - p) - i);
        w += (size_t)(hit - p) - i;
        if (to.u.s.len)
            memcpy(w, to.u.s.ptr, to.u.s.len);
        w += to.u.s.len;
        i = (size_t)(hit - p) + from.u.s.len;
    }
    memcpy(w, p + i, n - i);
    return sh_str(d, out_len);
}

/* split_part(s, sep, k): the k-th field (1-based; negative from the end;
 * 0 or past the end: ""); an empty 'sep' splits into characters.
 * Borrows. */
sh_value
expr_str_split_part(sh_value s, sh_value sep, int64_t k)
{
    const char *p = s.u.s.ptr, *hit;
    size_t      n = s.u.s.len, i, nf = 0, start[2] = {0, 0};
    size_t      m = sep.u.s.len;
    int64_t     fields, want;

    if (k == 0)
        return sh_str(p, 0);
    /* count the fields */
    if (m == 0) {
        for (i = 0, fields = 0; i < n; i += char_len(p, n, i))
            fields++;
        if (n == 0)
            fields = 1;
    } else {
        fields = 1;
        for (i = 0; (hit = memmem(p + i, n - i, sep.u.s.ptr, m)) != NULL;) {
            fields++;
            i = (size_t)(hit - p) + m;
        }
    }
    want = k > 0 ? k : fields + k + 1;
    if (want < 1 || want > fields)
        return sh_str(p, 0);
    if (m == 0) {
        for (i = 0; i < n; i += char_len(p, n, i)) {
            if (++nf == (size_t)want)
                return sh_str(p + i, char_len(p, n, i));
        }
        return sh_str(p, 0);
    }
    i = 0;
    for (nf = 1; nf < (size_t)want; nf++) {
        hit = memmem(p + i, n - i, sep.u.s.ptr, m);
        i = (size_t)(hit - p) + m;
    }
    start[0] = i;
    hit = memmem(p + i, n - i, sep.u.s.ptr, m);
    start[1] = hit ? (size_t)(hit - p) : n;
    return sh_str(p + start[0], start[1] - start[0]);
}

/* strpos(s, sub): the 1-based character position of the first 'sub', 0
 * when absent, 1 for an empty 'sub'. */
int64_t
expr_str_strpos(sh_value s, sh_value sub)
{
    const char *hit;
    int64_t     pos = 1;
    size_t      i;

    if (sub.u.s.len == 0)
        return 1;
    if (s.u.s.len == 0)
        return 0;
    hit = memmem(s.u.s.ptr, s.u.s.len, sub.u.s.ptr, sub.u.s.len);
    if (hit == NULL)
        return 0;
    for (i = 0; i < (size_t)(hit - s.u.s.ptr); i++)
        pos += !is_cont((unsigned char)s.u.s.ptr[i]);
    return pos;
}

/* lpad/rpad(s, width, fill): 's' cut or padded with repeats of 'fill' to
 * 'width' characters ('fill' NULL: a space; empty fill: 's' unchanged). */
sh_value
expr_str_pad(sh_value s, int64_t width, const sh_value *fill, int left,
             arena *a)
{
    static const sh_value space = {SH_STRING, {.s = {" ", 1}}};
    const char           *p = s.u.s.ptr;
    size_t n = s.u.s.len, i, chars = 0, need, fb, k, out_len, pad_b;
    char  *d, *w;

    if (fill == NULL)
        fill = &space;
    if (width <= 0)
        return sh_str(p, 0);
    for (i = 0; i < n && chars < (uint64_t)width; i += char_len(p, n, i))
        chars++;
    if (chars == (uint64_t)width)
        return sh_str(p, i); /* cut (or exact) */
    if (fill->u.s.len == 0)
        return s;
    need = (size_t)width - chars;
    /* the bytes of 'need' characters of the repeated fill */
    pad_b = 0;
    for (k = 0, fb = 0; k < need; k++) {
        size_t cl = char_len(fill->u.s.ptr, fill->u.s.len, fb);

        pad_b += cl;
        fb += cl;
        if (fb >= fill->u.s.len)
            fb = 0;
    }
    out_len = n + pad_b;
    d = w = arena_alloc(a, out_len);
    if (!left) {
        memcpy(w, p, n);
        w += n;
    }
    for (k = 0, fb = 0; k < need; k++) {
        size_t cl = char_len(fill->u.s.ptr, fill->u.s.len, fb);

        memcpy(w, fill->u.s.ptr + fb, cl);
        w += cl;
        fb += cl;
        if (fb >= fill->u.s.len)
            fb = 0;
    }
    if (left)
        memcpy(w, p, n);
    return sh_str(d, out_len);
}

/* reverse(s): the UTF-8 characters in reverse order. */
sh_value
expr_str_reverse(sh_value s, arena *a)
{
    const char *p = s.u.s.ptr;
    size_t      n = s.u.s.len, i, k;
    char       *d;

    if (n <= 1)
        return s;
    d = arena_alloc(a, n);
    for (i = 0; i < n; i += k) {
        k = char_len(p, n, i);
        memcpy(d + n - i - k, p + i, k);
    }
    return sh_str(d, n);
}
