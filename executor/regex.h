/*
 * regex.h - regular expressions for the expression language
 * (regexp_matches, regexp_extract, regexp_replace), on PCRE2 with UTF
 * mode and JIT. A pattern is compiled once (when the expression compiles)
 * together with its match data, so matching a row allocates nothing but
 * the replaced text. Every match runs under a match limit and a depth
 * limit, so a pathological pattern fails instead of hanging a worker.
 *
 * SHEAF_REGEX_JIT=0 in the environment turns the JIT off (for valgrind,
 * which cannot follow JIT code).
 *
 * A compiled regex is not thread-safe (its match data is reused); sheaf
 * compiles expressions per task, in one thread.
 */
#ifndef SHEAF_REGEX_H
#define SHEAF_REGEX_H

#include <stddef.h>

#include "../lib/util.h"

/* The limits set on every match (pcre2_set_match_limit/depth_limit). */
#define RX_MATCH_LIMIT 1000000
#define RX_DEPTH_LIMIT 10000

typedef struct rx rx;

/* Results of matching. */
enum {
    RX_NOMATCH = 0,
    RX_MATCH = 1,
    RX_ELIMIT = -1, /* the match or depth limit was hit */
    RX_EFAIL = -2   /* another PCRE2 error (message in rx_error) */
};

/*
 * Compiles 'pat' ('len' bytes, UTF-8). Returns the regex (free it with
 * rx_free), or NULL with a message in 'msg' ('size' bytes) and the
 * 0-based character offset of the error in *err_char.
 */
rx *rx_compile(const char *pat, size_t len, char *msg, size_t size,
               size_t *err_char);

/* Frees 'r' (NULL is fine). */
void rx_free(rx *r);

/* The number of capture groups of 'r'. */
unsigned rx_groups(const rx *r);

/* The pattern text of 'r' (NUL-terminated, owned by 'r'). */
const char *rx_pattern(const rx *r);

/* Does 'r' match somewhere in 's'? RX_MATCH, RX_NOMATCH or an error. */
int rx_search(rx *r, const char *s, size_t n);

/*
 * The text of group 'group' (0: the whole match) of the first match of
 * 'r' in 's': RX_MATCH with *gp and *gn set (borrowed from 's'; an unset group
 * is ""), RX_NOMATCH, or an error.
 */
int rx_extract(rx *r, const char *s, size_t n, unsigned group, const char **gp,
               size_t *gn);

/*
 * Replaces every match of 'r' in 's' with 'repl' ($1, ${name}, $$ as in
 * PCRE2's extended substitution). The result goes to 'a' (*out, *outn).
 * Returns RX_MATCH (replaced, or no match: *out is 's'), or an error; a
 * bad replacement text is RX_EFAIL.
 */
int rx_replace(rx *r, const char *s, size_t n, const char *repl, size_t rlen,
               arena *a, const char **out, size_t *outn);

/* The message of the last RX_EFAIL of 'r' (owned by 'r'). */
const char *rx_error(const rx *r);

/* Checks a replacement text against 'r' (group numbers that exist);
 * returns 0, or -1 with a message in 'msg'. */
int rx_check_replacement(rx *r, const char *repl, size_t rlen, char *msg,
                         size_t size);

#endif
