/*
 * csv_par.h - csv_split on several threads: the data cut into pieces at
 * guessed record starts, each piece split on a thread of its own, the
 * guesses checked as the pieces are chained (a guess that falls inside a
 * quoted field costs time, never a wrong cut). For the split of a large
 * file at submit (infer.c), which a single pass makes the slowest part of
 * accepting a job.
 */
#ifndef SHEAF_CSV_PAR_H
#define SHEAF_CSV_PAR_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "csv.h"

/*
 * csv_split (csv.h) with the same arguments and exactly the same result:
 * ranges, lines, errors. Splits data of at least 64 MiB on up to one thread
 * a processor (at most 8; pieces of at least 32 MiB and whole multiples of
 * 'part_bytes'); smaller data in one pass on the calling thread. 'fd' is
 * read with pread from several threads at once. Thread-safe as csv_split.
 */
int csv_split_par(int fd, uint64_t data_start, uint64_t first_line,
                  uint64_t file_size, const csv_dialect *d, uint64_t part_bytes,
                  csv_range **out, size_t *n_out, sh_err *err);

#endif
