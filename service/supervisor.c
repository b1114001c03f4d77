/*
 * supervisor.c - worker processes of this node (see supervisor.h).
 */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/util.h"
#include "log.h"
#include "worker.h"

extern char **environ;

struct supervisor {
    const config *cfg;
    char         *exe;  /* the sheafd binary (owned) */
    pid_t        *pids; /* one slot per worker; 0 = not running */
    int           n;
    int64_t       last_spawn_ms; /* throttles a crash loop */
    char          host[128];     /* for worker names "host:pid" */
};

supervisor *
supervisor_new(const config *cfg, const char *exe)
{
    supervisor *s = xcalloc(1, sizeof *s);

    s->cfg = cfg;
    s->exe = xstrdup(exe);
    s->n = cfg->workers;
    s->pids = xcalloc((size_t)s->n, sizeof *s->pids);
    if (gethostname(s->host, sizeof s->host) < 0)
        snprintf(s->host, sizeof s->host, "localhost");
    s->host[sizeof s->host - 1] = '\0';
    return s;
}

/* Start one worker process; returns its pid or -1. */
static pid_t
spawn_worker(supervisor *s)
{
    posix_spawnattr_t attr;
    sigset_t          none;
    char             *argv[] = {s->exe, "--worker-process", NULL};
    pid_t             pid;
    int               rc;

    /* The parent blocks signals for sigtimedwait; the worker must not. */
    sigemptyset(&none);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawn(&pid, s->exe, NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        log_error("posix_spawn %s: %s", s->exe, strerror(rc));
        return -1;
    }
    return pid;
}

int
supervisor_fill(supervisor *s)
{
    int running = 0;

    for (int i = 0; i < s->n; i++) {
        if (s->pids[i] == 0) {
            pid_t pid = spawn_worker(s);
            if (pid > 0) {
                s->pids[i] = pid;
                log_info("started worker %ld", (long)pid);
            }
        }
        running += s->pids[i] > 0;
    }
    s->last_spawn_ms = now_ms();
    return running;
}

/*
 * Hand the running tasks of worker 'pid' back to the queue: a worker that
 * died has its attempt counted (db_tasks_reap), one the shutdown stopped
 * does not (db_tasks_hand_back).
 */
static void
release_tasks(supervisor *s, pid_t pid, db *d, int died)
{
    char   name[160];
    sh_err err;
    int    n;

    if (d == NULL)
        return;
    snprintf(name, sizeof name, "%s:%ld", s->host, (long)pid);
    n = died ? db_tasks_reap(d, name, &err) : db_tasks_hand_back(d, name, &err);
    if (n < 0)
        log_warn("%s tasks of worker %s: %s", died ? "requeue" : "hand back",
                 name, err.msg);
    else if (n > 0)
        log_info("%s %d task(s) of worker %s",
                 died ? "requeued" : "handed back", n, name);
}

void
supervisor_reap(supervisor *s, db *d)
{
    pid_t pid;
    int   status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s->n; i++) {
            if (s->pids[i] != pid)
                continue;
            s->pids[i] = 0;
            if (WIFSIGNALED(status))
                log_warn("worker %ld killed by signal %d", (long)pid,
                         WTERMSIG(status));
            else
                log_warn("worker %ld exited with status %d", (long)pid,
                         WEXITSTATUS(status));
            release_tasks(s, pid, d, 1);
        }
    }
    /* Replace the dead, but not faster than once every 100 ms, so a worker
     * that dies at start cannot spin the machine. */
    if (now_ms() - s->last_spawn_ms < 100)
        usleep(100 * 1000);
    supervisor_fill(s);
}

void
supervisor_stop(supervisor *s, int grace_s, db *d)
{
    int64_t deadline = now_ms() + (int64_t)grace_s * 1000;
    int     alive;

    for (int i = 0; i < s->n; i++)
        if (s->pids[i] > 0)
            kill(s->pids[i], SIGTERM);
    do {
        alive = 0;
        for (int i = 0; i < s->n; i++) {
            if (s->pids[i] <= 0)
                continue;
            if (waitpid(s->pids[i], NULL, WNOHANG) == s->pids[i]) {
                release_tasks(s, s->pids[i], d, 0);
                s->pids[i] = 0;
            } else {
                alive++;
            }
        }
        if (alive)
            usleep(50 * 1000);
    } while (alive && now_ms() < deadline);
    for (int i = 0; i < s->n; i++) {
        if (s->pids[i] <= 0)
            continue;
        log_warn("worker %ld did not stop within %d s; killing it",
                 (long)s->pids[i], grace_s);
        kill(s->pids[i], SIGKILL);
        waitpid(s->pids[i], NULL, 0);
        release_tasks(s, s->pids[i], d, 0);
        s->pids[i] = 0;
    }
}

int
supervisor_cancel(supervisor *s, pid_t pid, int64_t lease)
{
    union sigval v = {.sival_int = worker_lease_tag(lease)};

    for (int i = 0; i < s->n; i++)
        if (s->pids[i] == pid)
            return sigqueue(pid, WORKER_CANCEL_SIGNAL, v) == 0 ? 0 : -1;
    return -1;
}

int
supervisor_worker_names(const supervisor *s, char ***names)
{
    int n = 0;

    *names = xcalloc((size_t)s->n + 1, sizeof **names);
    for (int i = 0; i < s->n; i++)
        if (s->pids[i] > 0)
            (*names)[n++] = xasprintf("%s:%ld", s->host, (long)s->pids[i]);
    return n;
}

void
supervisor_free(supervisor *s)
{
    if (s == NULL)
        return;
    free(s->pids);
    free(s->exe);
    free(s);
}

int
supervisor_alive(const supervisor *s)
{
    int n = 0;

    for (int i = 0; i < s->n; i++)
        n += s->pids[i] > 0;
    return n;
}
