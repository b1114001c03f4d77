/*
 * callback.c - end-of-job callbacks (SPEC section 2, "callback"): the
 * check of a callback URL at submit, the delivery thread of sheafd, and
 * the callback's state in the job object.
 *
 * When a job ends, the transaction that ends it queues a row in
 * callback_outbox (migrations/0005_events.sql). The delivery thread (one
 * per sheafd serving the API, never a worker) claims due rows with FOR
 * UPDATE SKIP LOCKED, POSTs the job object with libcurl under short
 * timeouts, and records the attempt: delivered on a 2xx, else due again
 * after an exponential backoff with jitter (1 s doubling, at most
 * CALLBACK_BACKOFF_MAX_S) until SHEAF_CALLBACK_MAX_S (default a day) has
 * passed since the job ended; then it is given up. A crash of sheafd
 * loses nothing (the row stays due: delivery is at least once).
 *
 * The body is signed: Sheaf-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>"> under the spec's secret. The secret never leaves the
 * database but for this: the job object omits it, and nothing logs it.
 *
 * Only http and https URLs; a host that resolves to a loopback,
 * link-local, private, unique-local, multicast or unspecified address is
 * refused at submit and again at each delivery (the address checked is
 * the one connected to: CURLOPT_RESOLVE pins it, against DNS rebinding),
 * unless SHEAF_CALLBACK_ALLOW_PRIVATE=1.
 */
#include "api_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "../service/log.h"

#define CALLBACK_IDLE_MS                      \
    250 /* look for due callbacks this often  \
           (retries falling due); a job's end \
           wakes the thread at once */
#define CALLBACK_BACKOFF_MAX_MS                 \
    5000 /* the longest wait while the database \
            is away */
#define CALLBACK_CONNECT_S 5
#define CALLBACK_TIMEOUT_S 15
/* A claim's hold on its row: past any attempt's end, so that the row of a
 * node that died while delivering is due again soon after. */
#define CALLBACK_LEASE_S       (CALLBACK_TIMEOUT_S + 5)
#define CALLBACK_BACKOFF_MAX_S 3600.0
#define CALLBACK_MAX_S_DEFAULT 86400

struct api_callbacks {
    api       *a;
    pthread_t  thread;
    atomic_int stop;
    int        allow_private;
    double     max_s;
};

/* ---- addresses ----------------------------------------------------------- */

/* Non-zero when IPv4 address 'a' (host order) is not public. */
static int
callback_v4_private(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127
           || (a >> 16) == 0xa9fe        /* 169.254/16 */
           || (a >> 20) == 0xac1         /* 172.16/12 */
           || (a >> 16) == 0xc0a8        /* 192.168/16 */
           || (a >> 22) == (0x6440 >> 6) /* 100.64/10 */
           || (a >> 28) >= 0xe;          /* multicast, reserved */
}

/* Non-zero when 'sa' is a loopback, link-local, private, unique-local,
 * multicast or unspecified address. */
static int
callback_addr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return callback_v4_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;
        const uint8_t *b = a->s6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a))
            return callback_v4_private((uint32_t)b[12] << 24
                                       | (uint32_t)b[13] << 16
                                       | (uint32_t)b[14] << 8 | b[15]);
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a)
               || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_SITELOCAL(a)
               || IN6_IS_ADDR_MULTICAST(a) || (b[0] & 0xfe) == 0xfc;
    }
    return 1;
}

/* Non-zero when SHEAF_CALLBACK_ALLOW_PRIVATE=1. */
static int
callback_allow_private(void)
{
    const char *v = getenv("SHEAF_CALLBACK_ALLOW_PRIVATE");

    return v != NULL && strcmp(v, "1") == 0;
}

/*
 * Resolve the host of http(s) URL 'url' and check its addresses. With
 * 'pin' (at least 300 bytes), store "host:port:address" of the first
 * address for CURLOPT_RESOLVE. Returns 0, or SH_EINVAL with 'err' saying
 * why.
 */
static int
callback_check_url(const char *url, int allow_private, char *pin, sh_err *err)
{
    CURLU          *u = curl_url();
    char           *scheme = NULL, *host = NULL, *port = NULL;
    struct addrinfo hints, *res = NULL, *ai;
    char            addr[INET6_ADDRSTRLEN], name[256];
    int             rc = 0, gai;

    if (u == NULL)
        return sh_err_set(err, SH_EINVAL, "callback.url", "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
               != CURLUE_OK) {
        rc = sh_err_set(err, SH_EINVAL, "callback.url",
                        "callback URL '%s' is not a valid URL", url);
        goto done;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        rc = sh_err_set(err, SH_EINVAL, "callback.url",
                        "callback URL "
                        "'%s' must be http or https",
                        url);
        goto done;
    }
    /* IPv6 literals come bracketed. */
    snprintf(name, sizeof name, "%s", host);
    if (name[0] == '[') {
        size_t n = strlen(name);

        memmove(name, name + 1, n);
        if (n >= 2 && name[n - 2] == ']')
            name[n - 2] = '\0';
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((gai = getaddrinfo(name, port, &hints, &res)) != 0) {
        rc = sh_err_set(err, SH_EINVAL, "callback.url",
                        "callback host "
                        "'%s' does not resolve: %s",
                        name, gai_strerror(gai));
        goto done;
    }
    for (ai = res; ai != NULL && !allow_private; ai = ai->ai_next) {
        if (callback_addr_private(ai->ai_addr)) {
            rc = sh_err_set(err, SH_EINVAL, "callback.url",
                            "callback host "
                            "'%s' resolves to a loopback, link-local or "
                            "private address; such callbacks are refused "
                            "unless SHEAF_CALLBACK_ALLOW_PRIVATE=1",
                            name);
            goto done;
        }
    }
    if (pin != NULL) {
        const struct sockaddr_in  *v4 = (void *)res->ai_addr;
        const struct sockaddr_in6 *v6 = (void *)res->ai_addr;
        const void                *src = res->ai_family == AF_INET
                                             ? (const void *)&v4->sin_addr
                                             : (const void *)&v6->sin6_addr;

        inet_ntop(res->ai_family, src, addr, sizeof addr);
        if (res->ai_family == AF_INET6)
            snprintf(pin, 300, "%s:%s:[%s]", host, port, addr);
        else
            snprintf(pin, 300, "%s:%s:%s", host, port, addr);
    }
done:
    if (res != NULL)
        freeaddrinfo(res);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int
api_callback_check(api_req *r, const json_t *spec)
{
    const json_t *cb = json_object_get(spec, "callback");
    const char   *url = json_string_value(json_object_get(cb, "url"));
    sh_err        err;

    (void)r;
    if (url == NULL)
        return 0;
    sh_err_clear(&err);
    if (callback_check_url(url, callback_allow_private(), NULL, &err) < 0)
        return api_error_sh(r, &err, 1);
    return 0;
}

/* ---- the job object ---------------------------------------------------- */

void
api_callback_annotate(api_req *r, json_t *job)
{
    json_t     *spec = json_object_get(job, "spec");
    json_t     *cb = json_object_get(spec, "callback");
    const char *url = json_string_value(json_object_get(cb, "url"));
    const char *id = json_string_value(json_object_get(job, "id"));
    db_callback c;
    sh_err      err;
    db         *d;
    int         rc;

    if (url == NULL || id == NULL)
        return;
    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return;
    rc = api_db_put(r->a, d, db_callback_get(d, id, &c, &err));
    if (rc < 0)
        return;
    if (rc == 0) {
        /* The job has not ended: nothing is queued yet. */
        json_object_set_new(job, "callback",
                            json_pack("{s:s, s:s, s:i, s:n, s:n, s:n}", "url",
                                      url, "state", "waiting", "attempts", 0,
                                      "last_status", "last_error",
                                      "delivered_at"));
        return;
    }
    json_object_set_new(
        job, "callback",
        json_pack("{s:s, s:s, s:i, s:o, s:o, s:o}", "url", c.url, "state",
                  c.state, "attempts", c.attempts, "last_status",
                  c.last_status ? json_integer(c.last_status) : json_null(),
                  "last_error",
                  c.last_error ? json_string(c.last_error) : json_null(),
                  "delivered_at",
                  c.delivered_at[0] ? json_string(c.delivered_at)
                                    : json_null()));
    db_callback_clear(&c);
}

/* ---- delivery ------------------------------------------------------------ */

/* "t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">" under 'secret'. */
static void
callback_sign(const char *secret, const char *body, size_t len, time_t t,
              char *out, size_t size)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int  mac_len = 0;
    strbuf        msg = {0};
    char          hex[2 * EVP_MAX_MD_SIZE + 1];

    sb_printf(&msg, "%lld.", (long long)t);
    sb_append(&msg, body, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret),
         (const unsigned char *)msg.data, msg.len, mac, &mac_len);
    for (unsigned int i = 0; i < mac_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    hex[2 * mac_len] = '\0';
    snprintf(out, size, "t=%lld,v1=%s", (long long)t, hex);
    sb_free(&msg);
}

/* curl: stop a transfer when sheafd stops. */
static int
callback_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c,
                  curl_off_t d)
{
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return atomic_load(&((struct api_callbacks *)cls)->stop) ? 1 : 0;
}

/* curl: the receiver's reply body is not kept. */
static size_t
callback_discard(char *p, size_t size, size_t n, void *cls)
{
    (void)p;
    (void)cls;
    return size * n;
}

/*
 * POST 'body' to the callback of 'cb'. Returns 0 when the receiver
 * answered 2xx; else -1 with *status (0: no reply) and 'why' filled.
 */
static int
callback_post(struct api_callbacks *cs, const db_callback *cb, const char *body,
              long *status, char *why, size_t why_size)
{
    char               pin[300], sig[200], hdr[240];
    struct curl_slist *hdrs = NULL, *resolve = NULL;
    CURL              *c;
    CURLcode           cc;
    sh_err             err;
    int                rc = -1;

    *status = 0;
    sh_err_clear(&err);
    if (callback_check_url(cb->url, cs->allow_private, pin, &err) < 0) {
        snprintf(why, why_size, "%s", err.msg);
        return -1;
    }
    if ((c = curl_easy_init()) == NULL) {
        snprintf(why, why_size, "cannot start libcurl");
        return -1;
    }
    resolve = curl_slist_append(resolve, pin);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "User-Agent: sheafd");
    if (cb->secret != NULL) {
        callback_sign(cb->secret, body, strlen(body), time(NULL), sig,
                      sizeof sig);
        snprintf(hdr, sizeof hdr, "Sheaf-Signature: %s", sig);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, cb->url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CALLBACK_CONNECT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)CALLBACK_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, callback_discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, callback_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, cs);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(why, why_size, "%s", curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (*status >= 200 && *status < 300)
            rc = 0;
        else
            snprintf(why, why_size, "the receiver answered %ld", *status);
    }
    curl_slist_free_all(hdrs);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(c);
    return rc;
}

/* Seconds before attempt 'attempts' + 1: 1 s doubling, at most
 * CALLBACK_BACKOFF_MAX_S, times a jitter in [0.5, 1.5). */
static double
callback_backoff_s(int attempts)
{
    double base = 1.0;

    for (int i = 1; i < attempts && base < CALLBACK_BACKOFF_MAX_S; i++)
        base *= 2.0;
    if (base > CALLBACK_BACKOFF_MAX_S)
        base = CALLBACK_BACKOFF_MAX_S;
    return base * (0.5 + (double)random() / ((double)RAND_MAX + 1.0));
}

/* Deliver one claimed callback and record the attempt. */
static int
callback_deliver(struct api_callbacks *cs, db *d, db_callback *cb, sh_err *err)
{
    db_job  job;
    json_t *obj = NULL;
    char   *body = NULL, why[SH_ERR_MSG_MAX];
    long    status = 0;
    double  retry_s;
    int     rc, ok, give_up;

    rc = db_job_get(d, cb->tenant, cb->job_id, &job, err);
    if (rc == SH_ENOENT)
        return 0; /* deleted: the row went with it */
    if (rc < 0)
        return rc;
    obj = api_job_json(&job);
    db_job_clear(&job);
    body = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (body == NULL) {
        snprintf(why, sizeof why, "cannot encode the job");
        ok = -1;
    } else {
        ok = callback_post(cs, cb, body, &status, why, sizeof why);
    }
    free(body);
    retry_s = callback_backoff_s(cb->attempts);
    give_up = ok != 0 && cb->age_s + retry_s > cs->max_s;
    if (ok == 0)
        log_info("callback of job %s delivered (attempt %d, status %ld)",
                 cb->job_id, cb->attempts, status);
    else
        log_warn("callback of job %s: attempt %d failed: %s; %s", cb->job_id,
                 cb->attempts, why, give_up ? "given up" : "will retry");
    return db_callback_record(d, cb->job_id, (int)status, ok == 0 ? NULL : why,
                              retry_s, give_up, err);
}

static void *
callback_main(void *arg)
{
    struct api_callbacks *cs = arg;
    db                   *d = NULL;
    db_callback           cb;
    jobwatch_waiter       wt;
    sh_err                err;
    int                   rc;
    int                   wait_ms = 0; /* backoff while the database is
                                          away; 0 while it answers */

    /* Any job's change wakes the thread: the outbox row of a job that
     * ended is written in the transaction that announces it. */
    jobwatch_add(cs->a->watch, &wt, NULL);
    while (!atomic_load(&cs->stop)) {
        sh_err_clear(&err);
        if (d == NULL)
            d = db_open(cs->a->cfg->database_url, &err);
        rc = d != NULL ? db_callback_claim(d, CALLBACK_LEASE_S, &cb, &err)
                       : SH_EDB;
        if (rc < 0) {
            /* Said once an outage, not at every try; tries back off. */
            if (wait_ms == 0)
                log_warn("callbacks: %s; retrying quietly", err.msg);
            wait_ms = wait_ms == 0                        ? CALLBACK_IDLE_MS
                      : wait_ms < CALLBACK_BACKOFF_MAX_MS ? wait_ms * 2
                                                          : wait_ms;
            poll(NULL, 0, wait_ms);
            continue;
        }
        if (wait_ms != 0) {
            log_info("callbacks: the database answers again");
            wait_ms = 0;
        }
        if (rc == 1) {
            if (callback_deliver(cs, d, &cb, &err) < 0)
                log_warn("callbacks: %s", err.msg);
            db_callback_clear(&cb);
            continue;
        }
        jobwatch_wait(cs->a->watch, &wt, CALLBACK_IDLE_MS);
    }
    jobwatch_remove(cs->a->watch, &wt);
    db_close(d);
    return NULL;
}

api_callbacks *
api_callbacks_start(api *a)
{
    api_callbacks *cs = xcalloc(1, sizeof *cs);
    const char    *max = getenv("SHEAF_CALLBACK_MAX_S");

    cs->a = a;
    cs->allow_private = callback_allow_private();
    cs->max_s = max != NULL && atof(max) > 0 ? atof(max)
                                             : CALLBACK_MAX_S_DEFAULT;
    atomic_init(&cs->stop, 0);
    if (pthread_create(&cs->thread, NULL, callback_main, cs) != 0) {
        log_error("callbacks: cannot start the delivery thread");
        free(cs);
        return NULL;
    }
    return cs;
}

void
api_callbacks_stop(api_callbacks *cs)
{
    if (cs == NULL)
        return;
    atomic_store(&cs->stop, 1);
    pthread_join(cs->thread, NULL);
    free(cs);
}
