/*
 * parquet_read.c - the rows of chosen row groups and columns of a Parquet
 * file. Rows come in batches of PQ_BATCH: each needed column fills its
 * slot of every row of the batch (row-major, so a row is handed out
 * without a copy) from its column chunk (parquet_col.c: pages read,
 * decompressed and decoded); this file walks the row groups, starts each
 * column chunk, and hands the batch out row by row.
 *
 * Strings are not copied: they point into the page's buffer or the
 * dictionary's, which are kept until the batch that uses them is done
 * (a page's buffer is "held" by the batch; the dictionary by the row
 * group). Only DELTA_BYTE_ARRAY strings, which are made from a prefix of
 * the previous one, are built, in an arena reset each batch.
 */
#include "parquet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Start row group r->rgs[r->rg_next]. */
static int
start_row_group(pq_reader *r, sh_err *err)
{
    size_t k;

    r->rg = r->rgs[r->rg_next++];
    r->rg_left = r->f->meta.rgs[r->rg].num_rows;
    for (k = 0; k < r->ncr; k++) {
        colrd             *cr = &r->crs[k];
        const pq_col_meta *m = &r->f->meta.rgs[r->rg].cols[cr->c->leaf].meta;

        if (pq_chunk_range(r->f, r->rg, cr->c->leaf, &cr->pos, &cr->end) < 0)
            return pq_col_err(r, cr, SH_EDATA, err,
                              "the column chunk lies outside the file");
        cr->codec = m->codec;
        cr->values_left = m->num_values;
        if (m->num_values != r->rg_left)
            return pq_col_err(r, cr, SH_EDATA, err, "%lld values for %lld rows",
                              (long long)m->num_values, (long long)r->rg_left);
        free(cr->dict);
        free(cr->dict_buf);
        cr->dict = NULL;
        cr->dict_buf = NULL;
        cr->ndict = 0;
        cr->page_left = 0;
    }
    return 0;
}

/* See parquet.h. */
pq_reader *
pq_reader_new(pq_file *f, const size_t *rgs, size_t nrg,
              const unsigned char *need, sh_err *err)
{
    pq_reader *r;
    size_t     i, k;

    if (pq_check_columns(f, need, err) < 0)
        return NULL;
    for (i = 0; i < nrg; i++)
        if (rgs[i] >= f->meta.nrgs) {
            sh_err_set(err, SH_EINVAL, NULL, "file %s: no row group %zu",
                       f->name, rgs[i]);
            return NULL;
        }
    r = xcalloc(1, sizeof(*r));
    r->f = f;
    r->ncols = f->ncols;
    r->rgs = xmalloc((nrg ? nrg : 1) * sizeof(*r->rgs));
    memcpy(r->rgs, rgs, nrg * sizeof(*rgs));
    r->nrg = nrg;
    r->crs = xcalloc(f->ncols ? f->ncols : 1, sizeof(*r->crs));
    for (i = 0; i < f->ncols; i++) {
        colrd *cr;

        if (need != NULL && !need[i])
            continue;
        cr = &r->crs[r->ncr++];
        cr->col = i;
        cr->c = &f->cols[i];
        cr->kind = pq_col_kind(cr->c, &cr->scale, &cr->width);
        cr->unit = cr->c->logical.unit;
    }
    r->rows = xmalloc(PQ_BATCH * (r->ncols ? r->ncols : 1) * sizeof(*r->rows));
    for (k = 0; k < PQ_BATCH * r->ncols; k++)
        r->rows[k] = sh_null();
    r->ar = arena_new(64 * 1024);
    r->codecs = pq_codecs_new();
    if (nrg == 0)
        r->context = xasprintf("file %s, no row groups", f->name);
    else if (nrg == 1)
        r->context = xasprintf("file %s, row group %zu", f->name, rgs[0]);
    else
        r->context = xasprintf("file %s, row groups %zu-%zu", f->name, rgs[0],
                               rgs[nrg - 1]);
    return r;
}

/* See parquet.h. */
int
pq_reader_next(pq_reader *r, const sh_value **row, sh_err *err)
{
    size_t k, n;
    int    rc;

    if (r->bpos < r->bcount) {
        *row = r->rows + r->bpos++ * r->ncols;
        r->nrows++;
        return 1;
    }
    while (r->rg_left == 0) {
        if (r->rg_next >= r->nrg)
            return 0;
        if ((rc = start_row_group(r, err)) < 0)
            return rc;
    }
    n = r->rg_left < PQ_BATCH ? (size_t)r->rg_left : PQ_BATCH;
    pq_buf_release(r);
    arena_reset(r->ar);
    r->bpos = r->bcount = 0;
    for (k = 0; k < r->ncr; k++)
        if ((rc = pq_col_fill(r, &r->crs[k], n, err)) < 0)
            return rc;
    r->rg_left -= (int64_t)n;
    r->bcount = n;
    *row = r->rows;
    r->bpos = 1;
    r->nrows++;
    return 1;
}

/* See parquet.h. */
const char *
pq_reader_context(const pq_reader *r)
{
    return r->context;
}

/* See parquet.h. */
uint64_t
pq_reader_rows(const pq_reader *r)
{
    return r->nrows;
}

/* See parquet.h. */
uint64_t
pq_reader_bytes(const pq_reader *r)
{
    return r->nbytes;
}

/* See parquet.h. */
void
pq_reader_free(pq_reader *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->ncr; i++) {
        colrd *cr = &r->crs[i];

        free(cr->dict);
        free(cr->dict_buf);
        if (cr->dbp_live)
            pq_dbp_free(&cr->dbp);
        if (cr->dbp2_live)
            pq_dbp_free(&cr->dbp2);
        sb_free(&cr->prev);
    }
    for (i = 0; i < r->nheld; i++)
        free(r->held[i]);
    for (i = 0; i < r->nspare; i++)
        free(r->spare[i]);
    free(r->held);
    free(r->held_cap);
    free(r->spare);
    free(r->spare_cap);
    free(r->crs);
    free(r->rgs);
    free(r->rows);
    sb_free(&r->cbuf);
    sb_free(&r->hbuf);
    free(r->context);
    arena_free(r->ar);
    pq_codecs_free(r->codecs);
    free(r);
}

/* See parquet.h. */
int
pq_fuzz_one(const uint8_t *data, size_t n)
{
    int             fd = memfd_create("pq_fuzz", 0), rc;
    pq_file        *f = NULL;
    pq_reader      *r = NULL;
    unsigned char  *need = NULL;
    size_t         *rgs = NULL, i;
    const sh_value *row;
    sh_err          err;

    if (fd < 0)
        return SH_EIO;
    if (write(fd, data, n) != (ssize_t)n) {
        rc = SH_EIO;
        goto done;
    }
    if ((f = pq_open(fd, "fuzz", &err)) == NULL) {
        rc = err.code;
        goto done;
    }
    need = xcalloc(f->ncols + 1, 1);
    for (i = 0; i < f->ncols; i++)
        need[i] = f->cols[i].why_unsupported == NULL;
    rgs = xmalloc((f->meta.nrgs + 1) * sizeof(*rgs));
    for (i = 0; i < f->meta.nrgs; i++)
        rgs[i] = i;
    if ((r = pq_reader_new(f, rgs, f->meta.nrgs, need, &err)) == NULL) {
        rc = err.code;
        goto done;
    }
    while ((rc = pq_reader_next(r, &row, &err)) == 1)
        ;
done:
    pq_reader_free(r);
    pq_close(f);
    free(need);
    free(rgs);
    close(fd);
    return rc;
}
