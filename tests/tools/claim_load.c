/*
 * claim_load.c - a load test of the claim path (scripts/claim_load.sh,
 * docs/scaling.md): many simulated workers claim and finish tiny tasks
 * against one PostgreSQL through the very functions sheafd's workers call
 * (db_task_claim, which runs CLAIM_SQL of service/db_tasks.c, and
 * db_task_finish), so the SQL measured is the SQL that runs.
 *
 *   claim_load URL MIGRATIONS_DIR TASKS CLAIMERS [JOBS]
 *
 * Empties the database named by URL (it must be called sheaf_claim...:
 * this tool deletes every job), applies the migrations, queues JOBS jobs
 * (default 10) of TASKS tasks in all, then starts CLAIMERS threads, each
 * with its own connection (one simulated worker), released together; each
 * claims and finishes tasks until the queue is empty. Prints one line:
 *
 *   claimers=C tasks=T jobs=J wall_s=W claims_per_s=R
 *   claim_p50_ms=... claim_p99_ms=... finish_p50_ms=... finish_p99_ms=...
 *   empty_claims=E errors=X
 *
 * Exits 0, 1 on a failure (message on stderr), 2 for bad usage.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "../../lib/util.h"
#include "../../service/db.h"

/* One simulated worker. */
typedef struct claimer {
    pthread_t   thread;
    int         index;
    const char *url;
    double     *claim_ms;  /* latency of each claim that got a task */
    double     *finish_ms; /* latency of each finish */
    size_t      n, cap;
    int         empty;  /* claims that found nothing */
    int         errors; /* failed calls */
} claimer;

static pthread_barrier_t g_start;

static double
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Claim and finish until the queue is empty (two empty claims in a row:
 * the first may only have met rows other claimers held locked). */
static void *
claimer_main(void *arg)
{
    claimer *c = arg;
    char     name[64];
    sh_err   err;
    db      *d = db_open(c->url, &err);
    int      empty_run = 0;

    snprintf(name, sizeof name, "claim-load:%d", c->index);
    pthread_barrier_wait(&g_start);
    if (d == NULL) {
        fprintf(stderr, "claimer %d: %s\n", c->index, err.msg);
        c->errors++;
        return NULL;
    }
    while (empty_run < 2 && c->errors < 10) {
        db_task    t;
        json_t    *spec = NULL, *res = NULL;
        exec_stats st;
        int        done = 0, rc;
        double     t0 = mono_ms(), t1;

        memset(&t, 0, sizeof t);
        rc = db_task_claim(d, name, 60, &t, &spec, &res, &err);
        t1 = mono_ms();
        if (rc < 0) {
            fprintf(stderr, "claimer %d: %s\n", c->index, err.msg);
            c->errors++;
            continue;
        }
        if (rc != DB_CLAIM_TASK) {
            c->empty++;
            empty_run++;
            db_task_clear(&t);
            continue;
        }
        empty_run = 0;
        memset(&st, 0, sizeof st);
        rc = db_task_finish(d, &t, "/dev/null", NULL, &st, &done, &err);
        if (rc < 0) {
            fprintf(stderr, "claimer %d: finish: %s\n", c->index, err.msg);
            c->errors++;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 1024;
            c->claim_ms = xrealloc(c->claim_ms, c->cap * sizeof(double));
            c->finish_ms = xrealloc(c->finish_ms, c->cap * sizeof(double));
        }
        c->claim_ms[c->n] = t1 - t0;
        c->finish_ms[c->n] = mono_ms() - t1;
        c->n++;
        db_task_clear(&t);
        json_decref(spec);
        json_decref(res);
    }
    db_close(d);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of the 'n' sorted values of 'v'. */
static double
quantile(const double *v, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Run 'sql' on 'conn'. Returns 0, or 1 with the error on stderr. */
static int
setup_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int       ok = PQresultStatus(res) == PGRES_COMMAND_OK
             || PQresultStatus(res) == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "claim_load: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : 1;
}

/* Apply the migrations, delete every job, queue 'jobs' jobs of 'tasks'
 * stage-0 tasks in all (one stage each), and refresh the planner's
 * statistics. Returns 0 or 1. */
static int
setup(const char *url, const char *migrations, int tasks, int jobs)
{
    sh_err  err;
    db     *d = db_open(url, &err);
    PGconn *conn = NULL;
    char    sql[1024];
    int     rc = 1;

    if (d == NULL || db_migrate(d, migrations, &err) < 0) {
        fprintf(stderr, "claim_load: %s\n", err.msg);
        goto done;
    }
    conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "claim_load: %s", PQerrorMessage(conn));
        goto done;
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO jobs (id, tenant, name, spec, resolution,"
             " stage_tasks) SELECT gen_random_uuid(), 'load',"
             " 'claim-load-' || j, '{}', '{}',"
             " ARRAY[%d + CASE WHEN j < %d THEN 1 ELSE 0 END]"
             " FROM generate_series(0, %d) j",
             tasks / jobs, tasks % jobs, jobs - 1);
    if (setup_exec(conn, "DELETE FROM jobs") || setup_exec(conn, sql)
        || setup_exec(conn, "INSERT INTO tasks (job_id, stage, part)"
                            " SELECT j.id, 0, g FROM jobs j,"
                            " generate_series(0, j.stage_tasks[1] - 1) g")
        || setup_exec(conn, "VACUUM ANALYZE jobs")
        || setup_exec(conn, "VACUUM ANALYZE tasks"))
        goto done;
    rc = 0;
done:
    PQfinish(conn);
    db_close(d);
    return rc;
}

int
main(int argc, char **argv)
{
    int      tasks, n_claimers, jobs = 10, errors = 0, empty = 0;
    claimer *cs;
    size_t   total = 0, k = 0;
    double  *claims, *finishes, t0, wall_s;

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: claim_load URL MIGRATIONS_DIR TASKS "
                        "CLAIMERS [JOBS]\n");
        return 2;
    }
    tasks = atoi(argv[3]);
    n_claimers = atoi(argv[4]);
    if (argc == 6)
        jobs = atoi(argv[5]);
    if (tasks < 1 || n_claimers < 1 || jobs < 1 || jobs > tasks) {
        fprintf(stderr, "claim_load: TASKS, CLAIMERS and JOBS must be "
                        "positive, JOBS at most TASKS\n");
        return 2;
    }
    if (strstr(argv[1], "dbname=sheaf_claim") == NULL) {
        fprintf(stderr, "claim_load: the URL must name a database "
                        "sheaf_claim... (this tool deletes every job)\n");
        return 2;
    }
    json_set_alloc_funcs(xmalloc, free);
    if (setup(argv[1], argv[2], tasks, jobs) != 0)
        return 1;

    cs = xcalloc((size_t)n_claimers, sizeof *cs);
    pthread_barrier_init(&g_start, NULL, (unsigned)n_claimers + 1);
    for (int i = 0; i < n_claimers; i++) {
        pthread_attr_t attr;

        cs[i].index = i;
        cs[i].url = argv[1];
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&cs[i].thread, &attr, claimer_main, &cs[i]) != 0) {
            fprintf(stderr, "claim_load: cannot start thread %d\n", i);
            return 1;
        }
        pthread_attr_destroy(&attr);
    }
    /* Every claimer has connected (or failed to) before the clock starts. */
    pthread_barrier_wait(&g_start);
    t0 = mono_ms();
    for (int i = 0; i < n_claimers; i++) {
        pthread_join(cs[i].thread, NULL);
        total += cs[i].n;
    }
    wall_s = (mono_ms() - t0) / 1e3;
    claims = xcalloc(total ? total : 1, sizeof *claims);
    finishes = xcalloc(total ? total : 1, sizeof *finishes);
    for (int i = 0; i < n_claimers; i++) {
        memcpy(claims + k, cs[i].claim_ms, cs[i].n * sizeof(double));
        memcpy(finishes + k, cs[i].finish_ms, cs[i].n * sizeof(double));
        k += cs[i].n;
        errors += cs[i].errors;
        empty += cs[i].empty;
        free(cs[i].claim_ms);
        free(cs[i].finish_ms);
    }
    qsort(claims, total, sizeof *claims, cmp_double);
    qsort(finishes, total, sizeof *finishes, cmp_double);
    printf("claimers=%d tasks=%zu jobs=%d wall_s=%.2f claims_per_s=%.0f "
           "claim_p50_ms=%.2f claim_p99_ms=%.2f finish_p50_ms=%.2f "
           "finish_p99_ms=%.2f empty_claims=%d errors=%d\n",
           n_claimers, total, jobs, wall_s, (double)total / wall_s,
           quantile(claims, total, 0.5), quantile(claims, total, 0.99),
           quantile(finishes, total, 0.5), quantile(finishes, total, 0.99),
           empty, errors);
    free(claims);
    free(finishes);
    free(cs);
    pthread_barrier_destroy(&g_start);
    return total == (size_t)tasks && errors == 0 ? 0 : 1;
}
