/*
 * csv_par.c - csv_split in pieces on several threads, with csv_split's
 * exact result (csv_par.h).
 *
 * The data is cut at byte offsets into pieces; piece k > 0 starts at a
 * guess p_k: the first non-empty line start at or after a multiple of the
 * partition size (so that, were it a record start, csv_split would cut
 * there too). Every piece is split on its own thread from its guess on
 * (lines counted from 1 there), and stops at the next piece's guess when a
 * record starts exactly there (csv_split_at). A line start may fall inside
 * a quoted field, so a guess is only taken once the piece before has
 * reached it as a record start: then that piece's ranges end there, the
 * next piece's are appended, its lines shifted by the line the piece
 * before found at the guess. When a piece does not stop at the next guess
 * (a quoted line end there), it has gone on to the end of the data by
 * itself and the pieces after it are dropped: the result is then that of
 * a plain csv_split, only not faster. An error in a piece past the first
 * (its lines relative) is found again from the piece's start with the
 * right line, so that the message names the right line.
 */
#include "csv_par.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

/* Pieces at most, and the bytes of a piece at least. */
#define PAR_MAX_PIECES        8
#define PAR_MIN_PIECE_DEFAULT ((uint64_t)32 << 20)
/* How far past a multiple of the partition size a line start is looked
 * for (a piece starts there only if one is found). */
#define PAR_SEEK_BYTES ((size_t)1 << 20)

static uint64_t par_min_piece = PAR_MIN_PIECE_DEFAULT;
static size_t   par_threads; /* 0: the online processors */

/*
 * Test hook: pieces of at least 'min_piece' bytes (0: the default) on
 * 'threads' threads (0: one per online processor), so that tests split
 * small files in pieces. Not in csv_par.h on purpose: tests declare it.
 */
void csv_par_set_for_test(uint64_t min_piece, size_t threads);

void
csv_par_set_for_test(uint64_t min_piece, size_t threads)
{
    par_min_piece = min_piece ? min_piece : PAR_MIN_PIECE_DEFAULT;
    par_threads = threads;
}

/* One piece: its bounds, and what its split found. */
typedef struct piece {
    int                fd;
    const csv_dialect *d;
    uint64_t           start;     /* p_k (data_start for the first) */
    uint64_t           line;      /* line at 'start': 1 past the first */
    uint64_t           stop;      /* the next piece's start (or none) */
    uint64_t           size;      /* the file's size */
    uint64_t           part;      /* partition size */
    uint64_t           base;      /* data_start: the cuts' base */
    uint64_t           stop_line; /* line at 'stop' when it stopped there */
    csv_range         *v;         /* its ranges (malloc'ed) */
    size_t             n;
    int                rc;
    sh_err             err;
} piece;

static void *
piece_run(void *arg)
{
    piece *pc = arg;

    pc->rc = csv_split_at(pc->fd, pc->start, pc->line, pc->size, pc->d,
                          pc->part, pc->base, pc->stop, &pc->stop_line, &pc->v,
                          &pc->n, &pc->err);
    return NULL;
}

/*
 * The first line start at or after 'at' (right after an LF or a lone CR),
 * within
 * PAR_SEEK_BYTES and before 'size', that would be a record start outside
 * quotes: for CSV a non-empty line's (empty lines are no records), for
 * lines any line's. 0 when none.
 */
static uint64_t
line_start_after(int fd, uint64_t at, uint64_t size, const csv_dialect *d)
{
    char    *buf = xmalloc(PAR_SEEK_BYTES);
    uint64_t found = 0;
    size_t   i, len;
    ssize_t  n;

    do
        n = fsys_pread(fd, buf, PAR_SEEK_BYTES, (off_t)(at - 1));
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        goto done;
    len = (size_t)n;
    for (i = 0; i + 1 < len; i++) {
        /* A line ends at an LF or at a lone CR (a CR of a CRLF is not
         * an end: its LF is), so that no record start is passed over. */
        bool eol = buf[i] == '\n' || (buf[i] == '\r' && buf[i + 1] != '\n');

        if (eol && (d->lines || (buf[i + 1] != '\n' && buf[i + 1] != '\r'))) {
            found = at + i; /* offset of buf[i + 1] */
            break;
        }
    }
    if (found >= size)
        found = 0;

done:
    free(buf);
    return found;
}

/* Threads to use: par_threads, else the online processors (1 to max). */
static size_t
threads_to_use(void)
{
    long n = par_threads ? (long)par_threads : sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > PAR_MAX_PIECES ? PAR_MAX_PIECES : (size_t)n;
}

/* Append 'n' ranges of 'src' to *v (*n, *cap), lines shifted by 'shift'. */
static void
append_ranges(csv_range **v, size_t *n, size_t *cap, const csv_range *src,
              size_t n_src, uint64_t shift)
{
    size_t i;

    if (*n + n_src > *cap) {
        *cap = *n + n_src;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    for (i = 0; i < n_src; i++) {
        (*v)[*n] = src[i];
        (*v)[*n].line += shift;
        (*n)++;
    }
}

/*
 * csv_split of bytes ['data_start', 'file_size') of 'fd' on several
 * threads; see csv_par.h.
 */
int
csv_split_par(int fd, uint64_t data_start, uint64_t first_line,
              uint64_t file_size, const csv_dialect *d, uint64_t part_bytes,
              csv_range **out, size_t *n_out, sh_err *err)
{
    piece      pcs[PAR_MAX_PIECES];
    pthread_t  th[PAR_MAX_PIECES];
    bool       started[PAR_MAX_PIECES];
    csv_range *v = NULL;
    size_t     n_pc = 1, k, want, n = 0, cap = 0;
    uint64_t   span, parts, per, shift;
    int        rc = 0;

    *out = NULL;
    *n_out = 0;
    if (part_bytes == 0 || data_start >= file_size)
        goto serial;
    span = file_size - data_start;
    parts = (span + part_bytes - 1) / part_bytes;
    want = threads_to_use();
    if (span / par_min_piece < want)
        want = (size_t)(span / par_min_piece);
    if (parts < want)
        want = (size_t)parts;
    if (want < 2)
        goto serial;
    memset(pcs, 0, sizeof pcs);
    memset(started, 0, sizeof started);
    per = parts / want; /* partitions a piece */
    pcs[0].start = data_start;
    pcs[0].line = first_line;
    for (k = 1; k < want; k++) {
        uint64_t at = line_start_after(fd, data_start + per * k * part_bytes,
                                       file_size, d);

        if (at == 0 || at <= pcs[n_pc - 1].start)
            break;
        pcs[n_pc].start = at;
        pcs[n_pc].line = 1;
        n_pc++;
    }
    if (n_pc < 2)
        goto serial;
    for (k = 0; k < n_pc; k++) {
        pcs[k].fd = fd;
        pcs[k].d = d;
        pcs[k].stop = k + 1 < n_pc ? pcs[k + 1].start : UINT64_MAX;
        pcs[k].size = file_size;
        pcs[k].part = part_bytes;
        pcs[k].base = data_start;
        if (k > 0)
            started[k] = pthread_create(&th[k], NULL, piece_run, &pcs[k]) == 0;
    }
    piece_run(&pcs[0]);
    for (k = 1; k < n_pc; k++) {
        if (started[k])
            (void)pthread_join(th[k], NULL);
        else
            piece_run(&pcs[k]); /* no thread: run it here */
    }

    /* Chain the pieces while each stopped where the next one starts. */
    shift = 0;
    for (k = 0; k < n_pc; k++) {
        piece *pc = &pcs[k];

        if (pc->rc != 0 && k == 0) {
            *err = pc->err;
            rc = pc->rc;
            goto done;
        }
        if (pc->rc != 0) {
            /* Its lines are relative: split it again from its start, at
             * its line, for the error's right words. */
            free(pc->v);
            pc->v = NULL;
            pc->n = 0;
            rc = csv_split_at(fd, pc->start, shift + 1, file_size, d,
                              part_bytes, data_start, UINT64_MAX, NULL, &pc->v,
                              &pc->n, err);
            if (rc != 0)
                goto done;
            append_ranges(&v, &n, &cap, pc->v, pc->n, 0);
            break;
        }
        append_ranges(&v, &n, &cap, pc->v, pc->n, shift);
        if (pc->stop_line == 0)
            break; /* it went on to the end by itself */
        shift += pc->stop_line - 1;
    }
    goto done;

serial:
    return csv_split(fd, data_start, first_line, file_size, d, part_bytes, out,
                     n_out, err);

done:
    for (k = 0; k < n_pc; k++)
        free(pcs[k].v);
    if (rc == 0) {
        *out = v;
        *n_out = n;
    } else {
        free(v);
    }
    return rc;
}
