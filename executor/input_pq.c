/*
 * input_pq.c - one partition of a Parquet input read as typed rows: the
 * row groups plan.pq_rgs[start .. end) of one file, through a pq_reader
 * (parquet.h). input.c opens and checks the file (beneath the data root,
 * the size and mtime the plan saw) and hands its descriptor here; every
 * other call of input.h on a Parquet partition lands here.
 *
 * Values are the reader's (plan_parquet.c's plan_pq_type gives the same
 * types): DATE columns read as dates, TIMESTAMP and INT96 as timestamps
 * in microseconds. Corrupt data is an error naming the file, the row group and
 * the column; on_error skip does not apply (the planner refuses it).
 */
#include "input_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "../lib/util.h"
#include "parquet.h"

struct input_pq {
    pq_file   *f;  /* the file's footer (owned; the fd is the caller's) */
    pq_reader *rd; /* NULL for an empty partition */
};

/* See input_int.h. */
input_pq *
input_pq_open(const plan *p, size_t part, int fd, const unsigned char *need,
              sh_err *err)
{
    const plan_part *pt = &p->parts[part];
    const plan_file *file = &p->files[pt->file];
    input_pq        *q = xcalloc(1, sizeof *q);

    q->f = pq_open(fd, file->rel, err);
    if (q->f == NULL)
        goto fail;
    if (pq_num_cols(q->f) != p->in_schema->n) {
        sh_err_set(err, SH_EDATA, "",
                   "file %s has %zu columns, not the %zu it had when the "
                   "job was submitted",
                   file->rel, pq_num_cols(q->f), p->in_schema->n);
        goto fail;
    }
    if (pt->end > pt->start) {
        q->rd = pq_reader_new(q->f, p->pq_rgs + pt->start,
                              (size_t)(pt->end - pt->start), need, err);
        if (q->rd == NULL)
            goto fail;
    }
    return q;

fail:
    input_pq_free(q);
    return NULL;
}

/* See input_int.h. */
int
input_pq_next(input_pq *q, const sh_value **row, sh_err *err)
{
    if (q->rd == NULL)
        return 0;
    return pq_reader_next(q->rd, row, err);
}

/* Rows returned so far. */
uint64_t
input_pq_rows(const input_pq *q)
{
    return q->rd ? pq_reader_rows(q->rd) : 0;
}

/* Compressed bytes read so far. */
uint64_t
input_pq_bytes(const input_pq *q)
{
    return q->rd ? pq_reader_bytes(q->rd) : 0;
}

/* Free the reader and the footer (not the fd); NULL-safe. */
void
input_pq_free(input_pq *q)
{
    if (q == NULL)
        return;
    pq_reader_free(q->rd);
    pq_close(q->f);
    free(q);
}
