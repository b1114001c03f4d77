/*
 * nb_file.c - the files naive Bayes writes whole (the model and the
 * report): bytes gathered in a buffer, written under "<path>.tmp" and made
 * durable with fsys_commit; on any failure nothing is left on disk.
 */
#include "nb.h"
#include "nb_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fsys.h"
#include "../lib/util.h"

#define NB_IO_BYTES (1u << 16) /* buffer of model and report I/O */

/* Opens "<path>.tmp" for 'f' ('path' copied). Returns 0 or SH_EIO. */
int
nb_afile_open(afile *f, const char *path, sh_err *err)
{
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    f->tmp = xasprintf("%s.tmp", path);
    f->fd = fsys_open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;

        free(f->path);
        free(f->tmp);
        return sh_err_set(err, SH_EIO, "", "cannot create %s: %s", path,
                          strerror(e));
    }
    f->buf = xmalloc(NB_IO_BYTES);
    return 0;
}

static void
afile_flush(afile *f)
{
    size_t off = 0;

    while (off < f->len && f->errnum == 0) {
        ssize_t k = fsys_write(f->fd, f->buf + off, f->len - off);

        if (k < 0) {
            if (errno != EINTR)
                f->errnum = errno;
            continue;
        }
        off += (size_t)k;
    }
    f->len = 0;
}

/* Append bytes; a write error is remembered for nb_afile_commit. */
void
nb_afile_put(afile *f, const void *p, size_t n)
{
    const unsigned char *c = p;

    while (n > 0) {
        size_t k = NB_IO_BYTES - f->len < n ? NB_IO_BYTES - f->len : n;

        memcpy(f->buf + f->len, c, k);
        f->len += k;
        c += k;
        n -= k;
        if (f->len == NB_IO_BYTES)
            afile_flush(f);
    }
}

static void
afile_release(afile *f)
{
    if (f->fd >= 0)
        fsys_close(f->fd);
    free(f->path);
    free(f->tmp);
    free(f->buf);
    f->fd = -1;
    f->path = f->tmp = NULL;
    f->buf = NULL;
}

/* Remove the temporary file and free. */
static void
afile_abort(afile *f)
{
    if (f->tmp != NULL)
        fsys_unlink(f->tmp);
    afile_release(f);
}

/*
 * Flush, then commit with fsys_commit (fsync, close, rename, fsync of the
 * directory: any failure is an error). Frees 'f' whatever happens; on
 * failure nothing is left on disk. Returns 0 or SH_EIO naming the call
 * that failed.
 */
int
nb_afile_commit(afile *f, sh_err *err)
{
    int rc;

    afile_flush(f);
    if (f->errnum != 0) {
        sh_err_set(err, SH_EIO, "", "cannot write %s: %s", f->tmp,
                   strerror(f->errnum));
        afile_abort(f);
        return SH_EIO;
    }
    rc = fsys_commit(f->fd, f->tmp, f->path, 0, err);
    f->fd = -1;
    afile_release(f);
    return rc;
}
