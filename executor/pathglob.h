/*
 * pathglob.h - expanding an input path's glob beneath the data root, by a
 * walker of our own instead of glob(3).
 *
 * glob(3) expands "." and ".." like any name: ".[.]/.[.]/etc/[a-z]"
 * climbed out of the root although the pattern holds no "..", and seven
 * levels of "*" had it hold millions of paths. The walker reads
 * directories through handles opened beneath the root's, never matches "." or
 * "..", refuses to enter a directory whose real path is outside the root (a
 * symlink out of it), and stops at a cap on matches, directories opened and
 * entries read. Matching is fnmatch(3)'s with FNM_PERIOD (a leading dot is
 * matched only by a dot, as the shell does); a backslash quotes the next
 * character.
 */
#ifndef SHEAF_PATHGLOB_H
#define SHEAF_PATHGLOB_H

#include <stddef.h>

#include "../lib/err.h"

/* Caps on one expansion. */
#define PATHGLOB_MAX_DIRS    10000   /* directories opened */
#define PATHGLOB_MAX_ENTRIES 1000000 /* directory entries read */

/*
 * Expand 'pattern' (relative to the root, '/'-separated, no ".."
 * component: the caller checks) beneath the directory 'root_real' (a real
 * path). Returns 0 with *paths holding the matches (relative to the root,
 * byte order; the caller frees each and the array) and *n_paths; 0 with
 * no match is *n_paths = 0. A match of a pattern without metacharacters is
 * returned only when it exists. Errors: SH_EINVAL when more than
 * 'max_matches' names match or a cap is reached, or when the walk would
 * leave the root (the message names the pattern's part, never a name from
 * outside); SH_EIO when the root cannot be read. 'field' is the JSON path
 * for errors.
 */
int pathglob_expand(const char *root_real, const char *pattern,
                    size_t max_matches, const char *field, char ***paths,
                    size_t *n_paths, sh_err *err);

#endif
