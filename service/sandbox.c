/*
 * sandbox.c - the limits a worker process puts on itself, and the
 * privilege drop of a sheafd started as root (sandbox.h).
 */
#include "sandbox.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* AddressSanitizer: gcc defines __SANITIZE_ADDRESS__, clang has the
 * feature test. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

uint64_t
sandbox_as_limit(const config *cfg)
{
#ifdef SANDBOX_ASAN
    (void)cfg;
    return 0;
#else
    return ((uint64_t)cfg->memory_mb << 20) + SANDBOX_MARGIN_BYTES;
#endif
}

int
sandbox_worker(const config *cfg, sh_err *err)
{
    struct rlimit rl = {0, 0};
    uint64_t      as = sandbox_as_limit(cfg);

    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return sh_err_set(err, SH_EIO, NULL, "setrlimit(RLIMIT_CORE): %s",
                          strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return sh_err_set(err, SH_EIO, NULL, "prctl(PR_SET_NO_NEW_PRIVS): %s",
                          strerror(errno));
    if (as != 0) {
        rl.rlim_cur = rl.rlim_max = (rlim_t)as;
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return sh_err_set(err, SH_EIO, NULL,
                              "setrlimit(RLIMIT_AS, %llu MiB): %s",
                              (unsigned long long)(as >> 20), strerror(errno));
    }
    return sandbox_seccomp(err);
}

/* The system calls a worker is refused (EPERM); names unknown to this
 * libseccomp or architecture are skipped. */
static const char *const seccomp_denied[] = {
#ifndef SANDBOX_ASAN
    "ptrace",
#endif
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "userfaultfd",
    "lookup_dcookie",
    "open_by_handle_at",
    "name_to_handle_at",
    "nfsservctl",
    "vhangup",
    "uselib",
    "_sysctl",
};

int
sandbox_seccomp(sh_err *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int             rc = 0;

    if (ctx == NULL)
        return sh_err_set(err, SH_EIO, NULL, "seccomp_init failed");
    for (size_t i = 0; i < sizeof seccomp_denied / sizeof *seccomp_denied;
         i++) {
        int nr = seccomp_syscall_resolve_name(seccomp_denied[i]);

        if (nr == __NR_SCMP_ERROR)
            continue;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc != 0) {
            rc = sh_err_set(err, SH_EIO, NULL, "seccomp_rule_add(%s): %s",
                            seccomp_denied[i], strerror(-rc));
            goto done;
        }
    }
    rc = seccomp_load(ctx);
    if (rc != 0)
        rc = sh_err_set(err, SH_EIO, NULL, "seccomp_load: %s", strerror(-rc));
done:
    seccomp_release(ctx);
    return rc;
}

int
sandbox_wants_drop(const config *cfg)
{
    return geteuid() == 0 && cfg->user != NULL && cfg->user[0] != '\0'
           && strcmp(cfg->user, "root") != 0;
}

/* Look up 'name' into *pw (strings in 'buf'). Returns 0 or SH_EINVAL. */
static int
user_lookup(const char *name, struct passwd *pw, char *buf, size_t n,
            sh_err *err)
{
    struct passwd *found = NULL;
    int            rc = getpwnam_r(name, pw, buf, n, &found);

    if (found == NULL)
        return sh_err_set(err, SH_EINVAL, "SHEAF_USER",
                          "SHEAF_USER: no user '%s'%s%s (create it with "
                          "useradd --system %s, or unset SHEAF_USER to keep "
                          "running as root)",
                          name, rc != 0 ? ": " : "",
                          rc != 0 ? strerror(rc) : "", name);
    return 0;
}

int
sandbox_user_group(const config *cfg, char *buf, size_t n, sh_err *err)
{
    struct passwd pw;
    struct group  gr, *found = NULL;
    char          pbuf[4096], gbuf[4096];
    int           rc;

    if ((rc = user_lookup(cfg->user, &pw, pbuf, sizeof pbuf, err)) != 0)
        return rc;
    if (getgrgid_r(pw.pw_gid, &gr, gbuf, sizeof gbuf, &found) != 0
        || found == NULL)
        return sh_err_set(err, SH_EINVAL, "SHEAF_USER",
                          "SHEAF_USER: user '%s' has no group %lu", cfg->user,
                          (unsigned long)pw.pw_gid);
    snprintf(buf, n, "%s", gr.gr_name);
    return 0;
}

/* The owner nftw gives the spool's entries to (nftw has no argument). */
static uid_t chown_uid;
static gid_t chown_gid;
static int   chown_errno;

/* nftw callback: give one entry (a link itself) to chown_uid:chown_gid. */
static int
chown_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)type;
    (void)ftw;
    if (st->st_uid == chown_uid && st->st_gid == chown_gid)
        return 0;
    if (lchown(path, chown_uid, chown_gid) != 0) {
        chown_errno = errno;
        return 1; /* stops the walk */
    }
    return 0;
}

int
sandbox_drop(const config *cfg, sh_err *err)
{
    struct passwd pw;
    char          buf[4096];
    int           rc;

    if ((rc = user_lookup(cfg->user, &pw, buf, sizeof buf, err)) != 0)
        return rc;
    if (pw.pw_uid == 0)
        return sh_err_set(err, SH_EINVAL, "SHEAF_USER",
                          "SHEAF_USER: '%s' has uid 0: it is root", cfg->user);
    /* What sheafd writes (the spool) becomes the user's; the data root is
     * only read, and stays its owner's. */
    chown_uid = pw.pw_uid;
    chown_gid = pw.pw_gid;
    chown_errno = 0;
    if (nftw(cfg->spool, chown_entry, 32, FTW_PHYS | FTW_MOUNT) != 0)
        return sh_err_set(err, SH_EIO, NULL,
                          "cannot give the spool %s to %s: %s", cfg->spool,
                          cfg->user,
                          strerror(chown_errno ? chown_errno : errno));
    /* Groups first, then the gid, the uid last (after it, nothing else
     * can be changed). */
    if (initgroups(pw.pw_name, pw.pw_gid) != 0)
        return sh_err_set(err, SH_EIO, NULL, "initgroups(%s): %s", pw.pw_name,
                          strerror(errno));
    if (setgid(pw.pw_gid) != 0)
        return sh_err_set(err, SH_EIO, NULL, "setgid(%lu): %s",
                          (unsigned long)pw.pw_gid, strerror(errno));
    if (setuid(pw.pw_uid) != 0)
        return sh_err_set(err, SH_EIO, NULL, "setuid(%lu): %s",
                          (unsigned long)pw.pw_uid, strerror(errno));
    /* For good: real, effective and saved ids are the user's, and none of
     * the calls that would take root back succeeds. */
    if (getuid() != pw.pw_uid || geteuid() != pw.pw_uid || getgid() != pw.pw_gid
        || getegid() != pw.pw_gid || setuid(0) == 0 || seteuid(0) == 0
        || setgid(0) == 0 || setgroups(0, NULL) == 0)
        return sh_err_set(err, SH_EIO, NULL,
                          "privileges were not dropped for good: root can "
                          "be regained after setuid(%lu)",
                          (unsigned long)pw.pw_uid);
#ifdef SANDBOX_ASAN
    /* setuid made the process undumpable, which LeakSanitizer's exit check
     * (it ptraces the process's own threads) cannot work with. Only in
     * sanitizer builds: it would let a process of the user (a worker)
     * ptrace this one. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
    if (access(cfg->spool, R_OK | W_OK | X_OK) != 0)
        return sh_err_set(err, SH_EIO, "SHEAF_SPOOL",
                          "%s cannot use the spool %s: %s", cfg->user,
                          cfg->spool, strerror(errno));
    if (access(cfg->data_root, R_OK | X_OK) != 0)
        return sh_err_set(err, SH_EIO, "SHEAF_DATA_ROOT",
                          "%s cannot read the data root %s: %s (give it "
                          "read and search permission to that user or "
                          "group)",
                          cfg->user, cfg->data_root, strerror(errno));
    return 0;
}
