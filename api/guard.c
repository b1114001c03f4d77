/*
 * guard.c - the connection guard: no client can hold the server by
 * connecting and sending slowly.
 *
 * libmicrohttpd refuses a connection past the total limit and past the
 * limit of one client address (its own options). What it cannot do is tell
 * a slow request from a long reply: its idle timeout is reset by every
 * byte, so a client that sends one byte now and then ("slowloris") keeps
 * its connection forever. The guard keeps every connection on a list with
 * the time its current request began to arrive; a watchdog thread shuts
 * down the socket of a connection whose request (request line, headers
 * and body) has not fully arrived within its deadline. Once a request has
 * arrived the connection has no deadline: long polls, event streams and
 * downloads may stay open as long as they need.
 *
 * A request with a streamed body (a dataset upload: gigabytes) cannot be
 * held to one deadline; api_guard_streaming turns its deadline into a
 * minimum rate: from then on, each window of request_timeout_s must bring
 * at least min_bytes_per_s times its length, else the connection is cut
 * like a slow one.
 *
 * Deadlines: the first request of a connection must arrive within
 * request_timeout_s of the accept; a later request on a kept-alive
 * connection within keepalive_s of the reply before it. A connection
 * accepted while the soft limit is reached is in the reserve: it may only
 * ask for /healthz or /readyz (others get 503), and its deadline is
 * GUARD_RESERVE_MS, so that health checks stay answerable while slow
 * clients fill the rest.
 *
 * Thread rules: the notify callback runs on libmicrohttpd's threads, the
 * watchdog on its own; one mutex guards the list. An entry is removed in
 * libmicrohttpd's "closed" notification, which comes before it closes the
 * socket, so the watchdog never shuts down a descriptor that was reused.
 */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../service/log.h"

#define GUARD_TICK_MS    200  /* how often the watchdog looks */
#define GUARD_RESERVE_MS 2000 /* deadline of a connection in the reserve */

/* One connection. */
struct api_conn {
    api_conn *prev, *next;
    int       fd;          /* its socket */
    int64_t   deadline_ms; /* shut down when now passes it; 0: none */
    int       reserve;     /* accepted past the soft limit */
    int       cut;         /* the watchdog shut it down */
    int64_t   rate;        /* streaming: bytes a second at least; 0: not */
    int64_t   win_ms;      /* streaming: start of the current window */
    int64_t   win_bytes;   /* streaming: bytes arrived in it */
    /* Of the request being read (the connection's own thread only): */
    int  bad_path; /* its path holds a control character */
    char raw_path[API_LOG_PATH_MAX + 1]; /* its path as received,
                                            control bytes as '?' */
};

struct api_guard {
    pthread_mutex_t mu;
    api_conn        head;       /* sentinel of the circular list */
    unsigned        n;          /* connections on the list */
    unsigned        soft_limit; /* past it, connections go to the reserve */
    int64_t         first_ms;   /* deadline of a connection's first
                                   request */
    int64_t   keepalive_ms;     /* deadline of a later one */
    uint64_t  cut_total;        /* connections shut down, for the log */
    pthread_t thread;
    int       started;    /* the thread runs */
    int       stop_fd[2]; /* a pipe: written to stop the thread */
};

/* Shut down the sockets whose deadline has passed. Returns how many. */
static unsigned
guard_sweep(api_guard *g, int64_t now)
{
    api_conn *c;
    unsigned  n = 0;

    pthread_mutex_lock(&g->mu);
    for (c = g->head.next; c != &g->head; c = c->next) {
        if (c->cut || c->deadline_ms == 0 || now < c->deadline_ms)
            continue;
        /* The thread of the connection sees the end of its stream and
         * closes it the usual way (and notifies us). */
        (void)shutdown(c->fd, SHUT_RDWR);
        c->cut = 1;
        n++;
    }
    g->cut_total += n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* The watchdog: sweeps every GUARD_TICK_MS until stopped, and logs what it
 * closed at most once every 10 s. */
static void *
guard_main(void *arg)
{
    api_guard    *g = arg;
    struct pollfd pfd = {.fd = g->stop_fd[0], .events = POLLIN};
    int64_t       logged_ms = 0;
    unsigned      unlogged = 0;

    for (;;) {
        int     rc = poll(&pfd, 1, GUARD_TICK_MS);
        int64_t now = now_ms();

        if (rc > 0)
            break;
        unlogged += guard_sweep(g, now);
        if (unlogged > 0 && now - logged_ms >= 10000) {
            log_warn("http: closed %u connection(s) whose request did not "
                     "arrive in time",
                     unlogged);
            unlogged = 0;
            logged_ms = now;
        }
    }
    return NULL;
}

api_guard *
api_guard_new(unsigned soft_limit, int request_timeout_s, int keepalive_s,
              sh_err *err)
{
    api_guard *g = xcalloc(1, sizeof *g);
    int        rc;

    pthread_mutex_init(&g->mu, NULL);
    g->head.next = g->head.prev = &g->head;
    g->soft_limit = soft_limit;
    g->first_ms = (int64_t)request_timeout_s * 1000;
    g->keepalive_ms = (int64_t)keepalive_s * 1000;
    if (pipe2(g->stop_fd, O_CLOEXEC) != 0) {
        sh_err_set(err, SH_EIO, NULL, "connection guard: pipe: %s",
                   strerror(errno));
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    rc = pthread_create(&g->thread, NULL, guard_main, g);
    if (rc != 0) {
        sh_err_set(err, SH_EIO, NULL, "connection guard: thread: %s",
                   strerror(rc));
        api_guard_free(g);
        return NULL;
    }
    g->started = 1;
    return g;
}

void
api_guard_free(api_guard *g)
{
    api_conn *c, *next;

    if (g == NULL)
        return;
    if (g->started) {
        (void)!write(g->stop_fd[1], "x", 1);
        pthread_join(g->thread, NULL);
    }
    close(g->stop_fd[0]);
    close(g->stop_fd[1]);
    for (c = g->head.next; c != &g->head; c = next) {
        next = c->next;
        free(c);
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

api_conn *
api_guard_open(api_guard *g, int fd)
{
    api_conn *c = xcalloc(1, sizeof *c);

    c->fd = fd;
    pthread_mutex_lock(&g->mu);
    c->reserve = g->n >= g->soft_limit;
    c->deadline_ms = now_ms() + (c->reserve ? GUARD_RESERVE_MS : g->first_ms);
    c->next = &g->head;
    c->prev = g->head.prev;
    c->prev->next = c;
    g->head.prev = c;
    g->n++;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void
api_guard_close(api_guard *g, api_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    g->n--;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void
api_guard_streaming(api_guard *g, api_conn *c, int64_t min_bytes_per_s)
{
    int64_t now = now_ms();

    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    c->rate = min_bytes_per_s;
    c->win_ms = now;
    c->win_bytes = 0;
    c->deadline_ms = now + g->first_ms;
    pthread_mutex_unlock(&g->mu);
}

void
api_guard_progress(api_guard *g, api_conn *c, size_t n)
{
    int64_t now;

    if (c == NULL || c->rate == 0)
        return;
    now = now_ms();
    pthread_mutex_lock(&g->mu);
    c->win_bytes += (int64_t)n;
    /* The window brought its due: a new window, with a new deadline. */
    if (c->win_bytes >= c->rate * (g->first_ms / 1000)) {
        c->win_ms = now;
        c->win_bytes = 0;
        c->deadline_ms = now + g->first_ms;
    }
    pthread_mutex_unlock(&g->mu);
}

void
api_guard_arrived(api_guard *g, api_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    c->rate = 0;
    c->deadline_ms = 0;
    pthread_mutex_unlock(&g->mu);
}

void
api_guard_replied(api_guard *g, api_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    c->deadline_ms = now_ms()
                     + (c->reserve ? GUARD_RESERVE_MS : g->keepalive_ms);
    pthread_mutex_unlock(&g->mu);
}

int
api_guard_in_reserve(const api_conn *c)
{
    return c != NULL && c->reserve;
}

/* Non-zero when 'uri' (as received, before unescaping) holds a control
 * character in its path, raw or escaped ("%00" .. "%1F", "%7F"). */
static int
guard_path_has_control(const char *uri)
{
    const unsigned char *p = (const unsigned char *)uri;

    for (; *p != '\0' && *p != '?'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 1;
        if (p[0] == '%' && p[1] != '\0' && p[2] != '\0') {
            int hi = p[1] >= '0' && p[1] <= '9' ? p[1] - '0'
                     : (p[1] | 0x20) >= 'a' && (p[1] | 0x20) <= 'f'
                         ? (p[1] | 0x20) - 'a' + 10
                         : -1;
            int lo = p[2] >= '0' && p[2] <= '9' ? p[2] - '0'
                     : (p[2] | 0x20) >= 'a' && (p[2] | 0x20) <= 'f'
                         ? (p[2] | 0x20) - 'a' + 10
                         : -1;

            if (hi >= 0 && lo >= 0
                && (hi * 16 + lo < 0x20 || hi * 16 + lo == 0x7f))
                return 1;
        }
    }
    return 0;
}

void
api_guard_request_line(api_conn *c, const char *uri)
{
    const char *q;
    char        path[API_LOG_PATH_MAX + 1];
    size_t      n;

    if (c == NULL)
        return;
    q = strchr(uri, '?');
    n = q != NULL ? (size_t)(q - uri) : strlen(uri);
    if (n > API_LOG_PATH_MAX)
        n = API_LOG_PATH_MAX;
    memcpy(path, uri, n);
    path[n] = '\0';
    api_log_copy(c->raw_path, sizeof c->raw_path, path);
    c->bad_path = guard_path_has_control(uri);
}

int
api_guard_bad_path(const api_conn *c)
{
    return c != NULL && c->bad_path;
}

const char *
api_guard_raw_path(const api_conn *c)
{
    return c != NULL && c->raw_path[0] != '\0' ? c->raw_path : NULL;
}
