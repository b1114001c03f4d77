/*
 * exec_int.h - the private parts of the task runner shared by exec.c (the
 * driver and stage 0's source), exec_run.c (what every part of a run
 * calls, and the map steps), the operators' files (their sinks and
 * sources; op.h) and exec_join.c (the broadcast join's hash table).
 * Nothing outside the runner includes it.
 *
 * Rows are pushed: a source calls exec_push for each row it makes; the map
 * steps run in place on the row (fanning out for tokenize and join) and
 * hand the survivors to the stage's sink. Every function here returns 0,
 * EXEC_STOP (the sink has all the rows it wants: the source may stop) or
 * an SH_E* error whose message already carries the task's context, so
 * callers pass errors up unchanged.
 */
#ifndef SHEAF_EXEC_INT_H
#define SHEAF_EXEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "exec.h"
#include "input.h"
#include "nb.h"
#include "plan.h"
#include "text.h"
#include "../lib/util.h"
#include "value.h"

/* A sink wants no more rows (a limit is full); not an error. */
#define EXEC_STOP 1

/* Tick at least this often, in rows and in milliseconds. */
#define EXEC_TICK_ROWS 65536
#define EXEC_TICK_MS   100

typedef struct exec_run  exec_run;
typedef struct exec_sink exec_sink;
typedef struct exec_join exec_join;

/* What a sink does. Every sink is made by an operator's partial_sink
 * (op.h) and owned by the run. */
typedef struct exec_sink_ops {
    /* Take one row (borrowed for the call; width: the sink step's input,
     * or the output schema). Returns 0, EXEC_STOP or an error. */
    int (*push)(exec_sink *k, const sh_value *row, sh_err *err);
    /* Complete every file (fsync, rename). Returns 0 or an error. */
    int (*finish)(exec_sink *k, sh_err *err);
    /* Remove every file the sink wrote, finished or not. */
    void (*discard)(exec_sink *k);
    /* Bytes the sink holds in memory now (for peak_bytes). */
    size_t (*held_bytes)(const exec_sink *k);
    /* Bytes the sink has written so far (for bytes_out). */
    uint64_t (*bytes_out)(const exec_sink *k);
    /* Free the sink (its files stay: call discard first to drop them). */
    void (*free)(exec_sink *k);
    /* Optional (NULL: push each row): take n rows that are 'row' with
     * value 'col' set in turn to the string of each span 'sp' of 'base'
     * (all borrowed for the call), as n calls of push would. For
     * tokenize, the stage's last map step. */
    int (*push_spans)(exec_sink *k, sh_value *row, size_t col, const char *base,
                      const text_span *sp, size_t n, sh_err *err);
} exec_sink_ops;

/* The common head of every sink. */
struct exec_sink {
    const exec_sink_ops *ops;
    exec_run            *x; /* the run it belongs to (borrowed) */
};

/* The state of one task, released in one place (exec_run_task). */
struct exec_run {
    const plan       *p;
    const exec_task  *t;
    const plan_stage *sg;   /* p->stages[t->stage] */
    exec_tick_fn      tick; /* may be NULL */
    void             *tick_ctx;
    exec_stats       *st;
    char              ctx[512]; /* "partition 3 (file a.csv, bytes 0-9)"
                                   or "stage 1 task 4" */
    size_t     width;           /* values in every row buffer */
    sh_value  *row;             /* the row a source fills */
    sh_value  *tmp;             /* scratch for select */
    sh_value **fan;             /* per step: the row buffer of a step that
                                   makes several rows of one (tokenize,
                                   join); NULL for the others */
    exec_join   **joins;        /* per step: the loaded side of a join */
    nb_model    **models;       /* per step: the model of a prediction */
    arena        *a;            /* per-row temporaries, reset per row */
    strbuf        text;         /* scratch for values formatted as text */
    exec_sink    *sink;
    input_reader *in;              /* stage 0: the partition being read */
    uint64_t      rows_seen;       /* rows the source made (for ticks) */
    uint64_t      tick_rows;       /* rows_seen at the last tick */
    int64_t       tick_ms;         /* time of the last tick */
    int           at_end;          /* the source is done: no current line */
    int           wrote_artifacts; /* train_naive_bayes began
                                      writing t->artifacts */
    size_t side_bytes;             /* memory of the loaded join sides and
                                      models */
    size_t src_budget;             /* bytes the source's operator may hold
                                      (a groupby's final table); see
                                      exec_share_budget */
    size_t sink_budget;            /* bytes the sink's operator may hold (a
                                      partial table, a sorter, a top n) */
};

/* ---- exec_run.c ------------------------------------------------------- */

/* Fill 'err' with 'code' and "<x->ctx>, <message>". Returns 'code'. */
int exec_fail(const exec_run *x, sh_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The "step K (op)" words of step 'i', for messages, into 'buf'. */
const char *exec_step_words(const exec_run *x, size_t i, char buf[64]);

/*
 * Fill 'err' with "<ctx>, step K (op): <e->msg>" and, in stage 0, the line
 * of the record being run (", line N"). Returns e's code (SH_EIO if none).
 */
int exec_step_fail(const exec_run *x, size_t step, const sh_err *e,
                   sh_err *err);

/*
 * Push one row made by the source (borrowed; 'n' values) through the map
 * steps into the sink. The row is copied into the run's buffer; per-row
 * temporaries are released first. Counts the row and ticks when due.
 * Returns 0, EXEC_STOP or an error.
 */
int exec_push(exec_run *x, const sh_value *row, size_t n, sh_err *err);

/* Call the tick function now (stats refreshed). 0 or SH_ECANCELED. */
int exec_tick_now(exec_run *x, sh_err *err);

/* Note 'bytes' of operator memory in st->peak_bytes. */
void exec_note_peak(exec_run *x, size_t bytes);

/* Bring the counters the reader and the sink keep into the stats. */
void exec_refresh_stats(exec_run *x);

/* Size of the file at 'path', or 0 when it cannot be read. */
uint64_t exec_file_bytes(const char *path);

/* Free 'n' malloc'ed paths and the array that holds them. */
void exec_free_paths(char **paths, size_t n);

/* Remove every file in the directory of 'prefix' whose name is the base of
 * 'prefix' followed by 'tag' and then anything ('tag' "." removes every
 * "<prefix>.*"). Errors are ignored (best effort cleanup). */
void exec_remove_prefixed(const char *prefix, const char *tag);

/* ---- join (exec_join.c) ----------------------------------------------- */

/*
 * Read every partition of the 'with' side of join step 's' into a hash
 * table on its keys, refusing a side that needs more than 'mem_bytes'.
 * Returns 0 and *out, or an error with a message without context.
 */
int exec_join_load(const plan_step *s, uint64_t mem_bytes, exec_join **out,
                   sh_err *err);

/* Bytes the table holds. */
size_t exec_join_bytes(const exec_join *j);

/* As exec_join_load, keeping only the side rows in bucket 'bucket' of
 * 'n_buckets' (exec_join_bucket; n_buckets <= 1: every row): the table
 * of one bucket of a partitioned join (op_join.c). */
int exec_join_load_bucket(const plan_step *s, uint64_t mem_bytes, size_t bucket,
                          size_t n_buckets, exec_join **out, sh_err *err);

/* An empty table for the side of join step 's', and one side row (of the
 * side's schema, borrowed) added to it: for a partitioned join that feeds
 * it from a spill file (op_join.c). */
exec_join *exec_join_new(const plan_step *s);
void       exec_join_add(exec_join *j, const plan_step *s, const sh_value *row);

/* The hash of the 'n_keys' key values at 'idx' in 'row' (the first ones
 * when idx is NULL); *null set (and 0 returned) when one is null. */
uint64_t exec_join_hash(const sh_value *row, const size_t *idx, size_t n_keys,
                        int *null);

/* The bucket of 'n_buckets' of a key hash (a null key: bucket 0). */
size_t exec_join_bucket(uint64_t h, int null, size_t n_buckets);

/*
 * The first side row whose keys equal the values of 'cols' (n_cols of
 * them) of 'row', or -1 (always -1 when a key is null). Follow with
 * exec_join_next; exec_join_keep gives the kept values (n_keep) of one.
 */
long            exec_join_find(const exec_join *j, const sh_value *row,
                               const size_t *cols);
long            exec_join_next(const exec_join *j, long it);
const sh_value *exec_join_keep(const exec_join *j, long it);

/* Note that side row 'it' matched a probe (right and full joins only;
 * otherwise nothing). */
void exec_join_mark(exec_join *j, long it);

/* The side row after 'it' (-1: from the first) that no probe matched,
 * with *keys its key values (then its kept values); -1 at the end, and
 * always -1 but for a right or full join. */
long exec_join_unmatched(const exec_join *j, long it, const sh_value **keys);

/* After the stage's source: push the side rows no row matched of each
 * right or full join of the stage through the steps after it (exec_run.c).
 * 0, EXEC_STOP or an error. */
int exec_join_rest(exec_run *x, sh_err *err);

void exec_join_free(exec_join *j);

#endif
