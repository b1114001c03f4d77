/*
 * fsys.c - the table of file-system calls, the durable commit and the fault
 * injector (see fsys.h).
 */
#include "fsys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

/* ---- the real calls ---------------------------------------------------- */

static int
real_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int
real_mkdir(const char *path, mode_t mode)
{
    return mkdir(path, mode);
}

static const fsys_table real_calls = {
    real_open, read,   pread,  write,      pwrite, fsync,
    fdatasync, rename, unlink, real_mkdir, close,  ftruncate,
};

fsys_table fsys_sys = {
    real_open, read,   pread,  write,      pwrite, fsync,
    fdatasync, rename, unlink, real_mkdir, close,  ftruncate,
};

static const char *const call_names[FSYS_N_CALLS] = {
    "open",      "read",   "pread",  "write", "pwrite", "fsync",
    "fdatasync", "rename", "unlink", "mkdir", "close",  "ftruncate",
};

const char *
fsys_call_name(fsys_call call)
{
    return (unsigned)call < FSYS_N_CALLS ? call_names[call] : "?";
}

/* ---- helpers ------------------------------------------------------------- */

int
fsys_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t k = fsys_write(fd, p, n);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

char *
fsys_fd_path(int fd, char *buf, size_t size)
{
    char    link[64];
    ssize_t n;

    if (fd < 0 || size == 0)
        return NULL;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, buf, size - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return buf;
}

int
fsys_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char       *dir;
    int         fd, rc = 0, e = 0;

    if (slash == NULL)
        dir = xstrdup(".");
    else if (slash == path)
        dir = xstrdup("/");
    else
        dir = xstrndup(path, (size_t)(slash - path));
    fd = fsys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0 || fsys_fsync(fd) < 0) {
        e = errno;
        rc = -1;
    }
    if (fd >= 0 && fsys_close(fd) < 0 && rc == 0) {
        e = errno;
        rc = -1;
    }
    free(dir);
    if (rc < 0)
        errno = e;
    return rc;
}

char *
fsys_read_file(const char *path, size_t *len_out)
{
    int     fd = fsys_open(path, O_RDONLY | O_CLOEXEC, 0);
    strbuf  sb = {0};
    char    buf[16384];
    ssize_t n;

    if (fd < 0)
        return NULL;
    for (;;) {
        n = fsys_read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sb_append(&sb, buf, (size_t)n);
    }
    if (n < 0) {
        int e = errno;

        (void)fsys_close(fd);
        sb_free(&sb);
        errno = e;
        return NULL;
    }
    (void)fsys_close(fd); /* read only: nothing to lose */
    if (sb.data == NULL)
        sb_puts(&sb, "");
    if (len_out != NULL)
        *len_out = sb.len;
    return sb.data;
}

int
fsys_mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int   rc = 0, e = 0;

    /* Each '/' after the first byte ends a directory to make first. */
    for (char *s = p[0] != '\0' ? p + 1 : p; *s != '\0' && rc == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (fsys_mkdir(p, mode) < 0 && errno != EEXIST) {
            e = errno;
            rc = -1;
        }
        *s = '/';
    }
    if (rc == 0 && fsys_mkdir(p, mode) < 0 && errno != EEXIST) {
        e = errno;
        rc = -1;
    }
    free(p);
    if (rc < 0)
        errno = e;
    return rc;
}

/* ---- durable files ------------------------------------------------------- */

int
fsys_commit(int fd, const char *tmp_path, const char *path, int flags,
            sh_err *err)
{
    const char *call = NULL;
    int         e = 0;

    if (!(flags & FSYS_NOSYNC) && fsys_fsync(fd) < 0) {
        call = "fsync";
        e = errno;
    }
    if (fsys_close(fd) < 0 && call == NULL) {
        call = "close";
        e = errno;
    }
    if (call != NULL) {
        (void)fsys_unlink(tmp_path);
        return sh_err_set(err, SH_EIO, "", "cannot %s %s: %s", call, tmp_path,
                          strerror(e));
    }
    if (fsys_rename(tmp_path, path) < 0) {
        e = errno;
        (void)fsys_unlink(tmp_path);
        return sh_err_set(err, SH_EIO, "", "cannot rename %s to %s: %s",
                          tmp_path, path, strerror(e));
    }
    if (!(flags & FSYS_NOSYNC) && fsys_sync_dir(path) < 0) {
        e = errno;
        (void)fsys_unlink(path);
        return sh_err_set(err, SH_EIO, "",
                          "cannot fsync the directory of %s: %s", path,
                          strerror(e));
    }
    return 0;
}

static void
file_release(fsys_file *f)
{
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    f->fd = -1;
}

int
fsys_file_create(fsys_file *f, const char *path, int flags, sh_err *err)
{
    f->flags = flags;
    f->path = xstrdup(path);
    f->tmp_path = xasprintf("%s.tmp", path);
    f->fd = fsys_open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
    if (f->fd < 0) {
        int e = errno;

        sh_err_set(err, SH_EIO, "", "cannot create %s: %s", f->tmp_path,
                   strerror(e));
        file_release(f);
        return SH_EIO;
    }
    return 0;
}

int
fsys_file_write(fsys_file *f, const void *buf, size_t n, sh_err *err)
{
    if (fsys_write_all(f->fd, buf, n) < 0) {
        int e = errno;

        return sh_err_set(err, SH_EIO, "", "cannot write %s: %s", f->tmp_path,
                          strerror(e));
    }
    return 0;
}

int
fsys_file_commit(fsys_file *f, sh_err *err)
{
    int rc = fsys_commit(f->fd, f->tmp_path, f->path, f->flags, err);

    file_release(f);
    return rc;
}

void
fsys_file_abort(fsys_file *f)
{
    if (f == NULL || f->tmp_path == NULL)
        return;
    if (f->fd >= 0)
        (void)fsys_close(f->fd);
    (void)fsys_unlink(f->tmp_path);
    file_release(f);
}

/* ---- fault injection ----------------------------------------------------- */

/* An armed fault and how many calls it has matched. */
typedef struct fault_slot {
    fsys_fault f;       /* path_has owned */
    unsigned   matched; /* matching calls so far */
} fault_slot;

static fault_slot g_faults[FSYS_FAULTS_MAX];
static size_t     g_n_faults;
static unsigned   g_hits;
static fsys_table g_under;   /* what the injector calls through to */
static char     **g_fd_path; /* path of each fd opened while armed */
static size_t     g_n_fd_path;

/* The path fd 'fd' was opened under while armed, or NULL. */
static const char *
fd_path(int fd)
{
    return fd >= 0 && (size_t)fd < g_n_fd_path ? g_fd_path[fd] : NULL;
}

static void
set_fd_path(int fd, const char *path)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= g_n_fd_path) {
        size_t n = (size_t)fd + 64;

        g_fd_path = xrealloc(g_fd_path, n * sizeof *g_fd_path);
        memset(g_fd_path + g_n_fd_path, 0,
               (n - g_n_fd_path) * sizeof *g_fd_path);
        g_n_fd_path = n;
    }
    free(g_fd_path[fd]);
    g_fd_path[fd] = path ? xstrdup(path) : NULL;
}

/*
 * Non-zero when this call of 'call' on 'p1' (or 'p2') must fail; then
 * errno is set to the fault's.
 */
static int
should_fail(fsys_call call, const char *p1, const char *p2)
{
    for (size_t i = 0; i < g_n_faults; i++) {
        fault_slot *s = &g_faults[i];
        const char *has = s->f.path_has;

        if (s->f.call != call)
            continue;
        if (has != NULL && !(p1 && strstr(p1, has)) && !(p2 && strstr(p2, has)))
            continue;
        s->matched++;
        if (s->matched <= s->f.skip)
            continue;
        if (s->f.times != 0 && s->matched > s->f.skip + s->f.times)
            continue;
        g_hits++;
        errno = s->f.err_no;
        return 1;
    }
    return 0;
}

static int
fault_open(const char *path, int flags, mode_t mode)
{
    int fd;

    if (should_fail(FSYS_OPEN, path, NULL))
        return -1;
    fd = g_under.open(path, flags, mode);
    set_fd_path(fd, path);
    return fd;
}

static ssize_t
fault_read(int fd, void *buf, size_t n)
{
    if (should_fail(FSYS_READ, fd_path(fd), NULL))
        return -1;
    return g_under.read(fd, buf, n);
}

static ssize_t
fault_pread(int fd, void *buf, size_t n, off_t off)
{
    if (should_fail(FSYS_PREAD, fd_path(fd), NULL))
        return -1;
    return g_under.pread(fd, buf, n, off);
}

static ssize_t
fault_write(int fd, const void *buf, size_t n)
{
    if (should_fail(FSYS_WRITE, fd_path(fd), NULL))
        return -1;
    return g_under.write(fd, buf, n);
}

static ssize_t
fault_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (should_fail(FSYS_PWRITE, fd_path(fd), NULL))
        return -1;
    return g_under.pwrite(fd, buf, n, off);
}

static int
fault_fsync(int fd)
{
    if (should_fail(FSYS_FSYNC, fd_path(fd), NULL))
        return -1;
    return g_under.fsync(fd);
}

static int
fault_fdatasync(int fd)
{
    if (should_fail(FSYS_FDATASYNC, fd_path(fd), NULL))
        return -1;
    return g_under.fdatasync(fd);
}

static int
fault_rename(const char *from, const char *to)
{
    if (should_fail(FSYS_RENAME, from, to))
        return -1;
    return g_under.rename(from, to);
}

static int
fault_unlink(const char *path)
{
    if (should_fail(FSYS_UNLINK, path, NULL))
        return -1;
    return g_under.unlink(path);
}

static int
fault_mkdir(const char *path, mode_t mode)
{
    if (should_fail(FSYS_MKDIR, path, NULL))
        return -1;
    return g_under.mkdir(path, mode);
}

/* A close that fails still releases the fd (as close(2) on Linux does). */
static int
fault_close(int fd)
{
    int fail = should_fail(FSYS_CLOSE, fd_path(fd), NULL);
    int e = errno, rc;

    set_fd_path(fd, NULL);
    rc = g_under.close(fd);
    if (fail) {
        errno = e;
        return -1;
    }
    return rc;
}

static int
fault_ftruncate(int fd, off_t len)
{
    if (should_fail(FSYS_FTRUNCATE, fd_path(fd), NULL))
        return -1;
    return g_under.ftruncate(fd, len);
}

static const fsys_table fault_calls = {
    fault_open,   fault_read,  fault_pread,     fault_write,
    fault_pwrite, fault_fsync, fault_fdatasync, fault_rename,
    fault_unlink, fault_mkdir, fault_close,     fault_ftruncate,
};

int
fsys_fault_add(const fsys_fault *f)
{
    fault_slot *s;

    if (g_n_faults == FSYS_FAULTS_MAX)
        return -1;
    if (g_n_faults == 0) {
        g_under = fsys_sys;
        fsys_sys = fault_calls;
    }
    s = &g_faults[g_n_faults++];
    s->f = *f;
    s->f.path_has = f->path_has ? xstrdup(f->path_has) : NULL;
    s->matched = 0;
    return 0;
}

unsigned
fsys_fault_hits(void)
{
    return g_hits;
}

void
fsys_reset(void)
{
    for (size_t i = 0; i < g_n_faults; i++)
        free((char *)g_faults[i].f.path_has);
    g_n_faults = 0;
    g_hits = 0;
    for (size_t i = 0; i < g_n_fd_path; i++)
        free(g_fd_path[i]);
    free(g_fd_path);
    g_fd_path = NULL;
    g_n_fd_path = 0;
    fsys_sys = real_calls;
}

/* The walk of fsys_open_beneath where openat2 is missing: each part opened
 * with O_NOFOLLOW beneath the one before; ".." and "." are refused. */
static int
open_beneath_walk(int dir_fd, const char *rel, int flags)
{
    char *copy = xstrdup(rel), *save = NULL, *part, *next;
    int   fd = dup(dir_fd), e = 0;

    part = strtok_r(copy, "/", &save);
    while (fd >= 0 && part != NULL) {
        int sub;

        next = strtok_r(NULL, "/", &save);
        if (strcmp(part, "..") == 0 || strcmp(part, ".") == 0) {
            e = EXDEV;
            break;
        }
        sub = openat(fd, part,
                     (next != NULL ? O_RDONLY | O_DIRECTORY : flags)
                         | O_NOFOLLOW | O_CLOEXEC);
        e = sub < 0 ? errno : 0;
        /* O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: say what
         * openat2 says, ELOOP. */
        if (e == ENOTDIR) {
            struct stat st;

            if (fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0
                && S_ISLNK(st.st_mode))
                e = ELOOP;
        }
        close(fd);
        fd = sub;
        part = next;
    }
    free(copy);
    if (e != 0 && fd >= 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        errno = e != 0 ? e : ENOENT;
    return fd;
}

int
fsys_open_beneath(const char *root, const char *rel, int flags)
{
    /* Set once openat2 is known missing (an old kernel, or valgrind):
     * the walk from then on. A race only costs one more try. */
    static int      no_openat2;
    struct open_how how;
    int             root_fd, fd = -1, e;

    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return -1;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    if (!no_openat2) {
        fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
        if (fd < 0 && (errno == ENOSYS || errno == EPERM))
            no_openat2 = 1;
    }
    if (no_openat2)
        fd = open_beneath_walk(root_fd, rel, flags);
    e = errno;
    close(root_fd);
    errno = e;
    return fd;
}
