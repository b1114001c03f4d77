/*
 * plan_int.h - the private parts of the planner shared by plan.c (the job
 * spec), resolve.c (input.path under the data root) and infer.c (headers,
 * type inference and partitions). Nothing outside the planner includes it.
 */
#ifndef SHEAF_PLAN_INT_H
#define SHEAF_PLAN_INT_H

#include <stddef.h>

#include "err.h"
#include "plan.h"

/* More files than this in one input is refused at submission. */
#define PLAN_MAX_FILES 100000

/*
 * More partitions than this is refused at submission (the estimate, bytes
 * over partition_size, is checked before a file is cut): each is a task.
 */
#define PLAN_MAX_PARTS 1000000

/* Type inference reads at most this many records, or this many bytes. */
#define PLAN_SAMPLE_RECORDS 10000
#define PLAN_SAMPLE_BYTES   (8u << 20)

/*
 * The real path of 'data_root' (symlinks resolved), malloc'ed, or NULL with
 * SH_EIO in 'err' when it does not exist.
 */
char *plan_root_real(const char *data_root, sh_err *err);

/* Does the relative path 's' have a ".." component? */
int plan_path_has_dotdot(const char *s);

/*
 * Check the input.path pattern 'pattern' ('len' bytes as the spec gave it,
 * so an embedded NUL is noticed) and expand it under 'root_real' (a real
 * path from plan_root_real). On success *files is a malloc'ed array of
 * *n_files entries, in the glob's (byte-wise sorted) order, each with its
 * absolute real path, its path relative to the root, size and mtime; the
 * caller frees each entry's strings and the array. Errors are SH_EINVAL
 * with err->path "input.path", or SH_EIO.
 */
int plan_resolve_files(const char *root_real, const char *pattern,
                       size_t len, plan_file **files, size_t *n_files,
                       sh_err *err);

/*
 * Read the header of every file of 'p' (p->files, p->dialect and
 * p->partition_bytes set), check that the files agree on it, infer the
 * column types from a sample and cut the files into partitions. Sets
 * p->in_schema (the inferred types; input.columns is applied later) and
 * p->parts, and refreshes each file's size and mtime from the open file.
 * Returns 0, SH_EINVAL (headers; err->path "input.path"; or too many
 * partitions: "input.partition_size"), SH_EDATA (unreadable data) or SH_EIO.
 */
int plan_scan_input(plan *p, sh_err *err);

/*
 * Append to 'sb' the names of 'sc' joined by ", " (cut short with "..." when
 * long), or "(none)" when it has no columns; for "columns are: ..." hints.
 */
void plan_list_columns(const schema *sc, strbuf *sb);

#endif
