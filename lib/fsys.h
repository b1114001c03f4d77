/*
 * fsys.h - the file-system calls that can fail under load, called through
 * one table that tests can replace (as SQLite's aSyscall[] does), a fault
 * injector built on it, and the one way sheaf makes a file durable.
 *
 * The table: every open, read, pread, write, pwrite, fsync, fdatasync,
 * rename, unlink, mkdir, close and ftruncate of the engine and the service
 * goes through fsys_sys (fsys_open() and friends below are inline calls
 * through it: one indirect call per system call, none per row). A test
 * replaces an entry ("fsys_sys.write = full_disk_write;") and puts the real
 * calls back with fsys_reset(). The table is process-global and not locked:
 * change it only while no other thread does file I/O (tests do it between
 * tasks; a worker process has one thread).
 *
 * The fault injector (fsys_fault_add) replaces the entries with wrappers
 * that fail chosen calls with a chosen errno: "let 2 writes to paths
 * holding '.r1' succeed, then fail every one with ENOSPC".
 *
 * Whole files: fsys_read_file reads one, fsys_mkdir_p makes a directory
 * and its parents, both through the table.
 *
 * Durable files: a file that must survive a crash is written under a
 * temporary name ("<path>.tmp"), fsync'ed, renamed to its final name, and
 * its directory fsync'ed (fsys_commit, or the fsys_file writer around it).
 * A failed fsync of the file or of the directory is an error, like any
 * other failed step; on any error the temporary file is removed, and so is
 * the final one when only the directory's fsync failed, so a file under
 * its final name is always complete. Messages name the call and the file:
 * "cannot fsync /spool/jobs/J/s0-p00003-l7.csv.tmp: Input/output error".
 */
#ifndef SHEAF_FSYS_H
#define SHEAF_FSYS_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* The calls of the table, to name one in a fault. */
typedef enum fsys_call {
    FSYS_OPEN = 0,
    FSYS_READ,
    FSYS_PREAD,
    FSYS_WRITE,
    FSYS_PWRITE,
    FSYS_FSYNC,
    FSYS_FDATASYNC,
    FSYS_RENAME,
    FSYS_UNLINK,
    FSYS_MKDIR,
    FSYS_CLOSE,
    FSYS_FTRUNCATE,
    FSYS_N_CALLS
} fsys_call;

/* The system calls, with the signatures (and errno rules) of POSIX's. */
typedef struct fsys_table {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*read)(int fd, void *buf, size_t n);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*write)(int fd, const void *buf, size_t n);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fsync)(int fd);
    int (*fdatasync)(int fd);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    int (*close)(int fd);
    int (*ftruncate)(int fd, off_t len);
} fsys_table;

/* The table in use; starts as the real calls. Tests may assign entries. */
extern fsys_table fsys_sys;

/* Put the real calls back in every entry and disarm every fault. */
void fsys_reset(void);

/* The name of a call: "open", "write", ... */
const char *fsys_call_name(fsys_call call);

static inline int
fsys_open(const char *path, int flags, mode_t mode)
{
    return fsys_sys.open(path, flags, mode);
}

static inline ssize_t
fsys_read(int fd, void *buf, size_t n)
{
    return fsys_sys.read(fd, buf, n);
}

static inline ssize_t
fsys_pread(int fd, void *buf, size_t n, off_t off)
{
    return fsys_sys.pread(fd, buf, n, off);
}

static inline ssize_t
fsys_write(int fd, const void *buf, size_t n)
{
    return fsys_sys.write(fd, buf, n);
}

static inline ssize_t
fsys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return fsys_sys.pwrite(fd, buf, n, off);
}

static inline int
fsys_fsync(int fd)
{
    return fsys_sys.fsync(fd);
}

static inline int
fsys_fdatasync(int fd)
{
    return fsys_sys.fdatasync(fd);
}

static inline int
fsys_rename(const char *from, const char *to)
{
    return fsys_sys.rename(from, to);
}

static inline int
fsys_unlink(const char *path)
{
    return fsys_sys.unlink(path);
}

static inline int
fsys_mkdir(const char *path, mode_t mode)
{
    return fsys_sys.mkdir(path, mode);
}

static inline int
fsys_close(int fd)
{
    return fsys_sys.close(fd);
}

static inline int
fsys_ftruncate(int fd, off_t len)
{
    return fsys_sys.ftruncate(fd, len);
}

/*
 * Write all 'n' bytes at 'buf' to 'fd' (write(2) again after a short
 * write or EINTR). Returns 0, or -1 with errno set by the write that
 * failed (ENOSPC for a write that made no progress).
 */
int fsys_write_all(int fd, const void *buf, size_t n);

/*
 * The path 'fd' was opened under, into 'buf' ('size' bytes), from
 * /proc/self/fd; for messages on error paths of code that was handed only
 * the fd. Returns 'buf', or NULL when it cannot be told.
 */
char *fsys_fd_path(int fd, char *buf, size_t size);

/*
 * fsync the directory holding 'path' (the part before its last '/'; "."
 * when there is none). 'path' is borrowed. Returns 0, or -1 with errno set
 * by the open, fsync or close that failed.
 */
int fsys_sync_dir(const char *path);

/*
 * Open 'rel' (a relative path) beneath the directory 'root' without
 * following a symbolic link in any of its parts and without leaving
 * 'root': openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the
 * kernel has it (Linux 5.6), else a walk part by part with O_NOFOLLOW.
 * 'flags' are open(2)'s (O_CLOEXEC is added). Returns the descriptor, or
 * -1 with errno: ELOOP for a symlink on the way, EXDEV for a path that
 * would leave 'root', ENOENT and the others as open(2).
 */
int fsys_open_beneath(const char *root, const char *rel, int flags);

/*
 * The whole content of the file 'path' with a NUL after it (so text can be
 * used as a C string; an empty file gives ""), and its length in *len_out
 * when 'len_out' is not NULL. The caller frees the result. NULL with errno
 * set when the file cannot be opened or read.
 */
char *fsys_read_file(const char *path, size_t *len_out);

/*
 * mkdir -p: create 'path' and every missing directory above it with
 * 'mode' (less the umask). A component that already exists is taken as it
 * is, so an existing 'path' is a success. Stops at the first mkdir(2) that
 * fails otherwise and returns -1 with its errno; returns 0 on success.
 */
int fsys_mkdir_p(const char *path, mode_t mode);

/* ---- durable files ------------------------------------------------------- */

/* Flags of fsys_commit and fsys_file_create. */
enum {
    /*
     * A scratch file, which dies with its task: committed by the rename
     * alone, without either fsync (a crash loses it, and nobody would read
     * it after one).
     */
    FSYS_NOSYNC = 1
};

/*
 * Make the file open as 'fd' and named 'tmp_path' durable as 'path': fsync
 * 'fd', close it, rename 'tmp_path' to 'path', fsync the directory (no
 * fsyncs with FSYS_NOSYNC). 'fd' is closed whatever happens; the strings
 * are borrowed. Returns 0, or SH_EIO with 'err' naming the call and the
 * file ("cannot fsync /a/b.tmp: Input/output error"); then 'tmp_path' has
 * been removed, and 'path' too when only the directory's fsync failed.
 */
int fsys_commit(int fd, const char *tmp_path, const char *path, int flags,
                sh_err *err);

/* A file written under "<path>.tmp" and committed as 'path'. */
typedef struct fsys_file {
    int   fd;       /* the temporary file, or -1 once closed */
    char *path;     /* the final name (owned) */
    char *tmp_path; /* "<path>.tmp" (owned) */
    int   flags;    /* FSYS_NOSYNC or 0 */
} fsys_file;

/*
 * Create (or truncate) "<path>.tmp" for writing, mode 0644, into 'f'.
 * 'flags' is FSYS_NOSYNC or 0. Returns 0, or SH_EIO with 'err' filled
 * ("cannot create /a/b.tmp: ...") and 'f' holding nothing to release.
 */
int fsys_file_create(fsys_file *f, const char *path, int flags, sh_err *err);

/*
 * Append 'n' bytes at 'buf'. Returns 0, or SH_EIO with 'err' filled
 * ("cannot write /a/b.tmp: No space left on device"); the file is then
 * left for fsys_file_abort.
 */
int fsys_file_write(fsys_file *f, const void *buf, size_t n, sh_err *err);

/*
 * fsys_commit the file and release 'f'. Returns 0, or SH_EIO with 'err'
 * filled and nothing left on disk.
 */
int fsys_file_commit(fsys_file *f, sh_err *err);

/* Close and remove the temporary file and release 'f'; NULL-safe, and a
 * no-op on a released 'f'. */
void fsys_file_abort(fsys_file *f);

/* ---- fault injection (tests) --------------------------------------------- */

/* One fault: which calls fail, when, and how. */
typedef struct fsys_fault {
    fsys_call   call;     /* the kind of call that fails */
    unsigned    skip;     /* matching calls that succeed first */
    unsigned    times;    /* matching calls that fail after those; 0: all */
    int         err_no;   /* the errno of a failure (ENOSPC, EIO...) */
    const char *path_has; /* only calls on a path holding this substring
                             (copied), or NULL for every call; a call on an
                             fd matches by the path the fd was opened under
                             through fsys_open after the first fault was
                             armed */
} fsys_fault;

#define FSYS_FAULTS_MAX 8

/*
 * Arm fault 'f' (at most FSYS_FAULTS_MAX at once): from now on the
 * matching calls fail as it says, whatever entry the table had (the
 * injector calls through to it otherwise). Returns 0, or -1 when too many
 * faults are armed. fsys_reset disarms them all.
 */
int fsys_fault_add(const fsys_fault *f);

/* The number of calls the armed faults have failed since fsys_reset. */
unsigned fsys_fault_hits(void);

#endif
