/*
 * td_store_worker.h - runs the durable store on its own thread, fed from the loop.
 *
 * Design note. The loop thread submits operations (td_store_worker_submit); the worker takes
 * everything queued so far (up to TD_STORE_WORKER_MAX_BATCH) and commits it as one
 * transaction, so under load many publications share one fsync (group commit) while an
 * idle server commits each one at once. Finished operations go back through a uv_async to
 * the loop thread, which receives them in submission order through `done`. Ownership of an
 * operation passes to the worker at submit and back at `done`; nothing else is shared but
 * the two queues and the statistics, all under one mutex.
 *
 * Between batches (and at least once a second when idle) the worker deletes expired history
 * rows and idempotency keys in small transactions, so trimming never holds up a commit for
 * long.
 */
#ifndef TD_STORE_WORKER_H
#define TD_STORE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "store/td_store.h"

#define TD_STORE_WORKER_MAX_BATCH 4096
/* Upper bounds (seconds) of the commit latency histogram buckets; +Inf is implied. */
#define TD_STORE_WORKER_NBUCKETS 12
extern const double td_store_worker_buckets[TD_STORE_WORKER_NBUCKETS];

struct td_store_stats {
    uint64_t commits;          /* transactions committed or failed */
    uint64_t committed_ops;    /* operations in committed transactions */
    uint64_t failed_commits;   /* transactions rolled back */
    uint64_t expired_rows;     /* history rows and keys removed by expiry */
    double commit_seconds_sum; /* time spent in td_store_commit */
    uint64_t commit_buckets[TD_STORE_WORKER_NBUCKETS + 1]; /* cumulative, Prometheus style */
};

typedef void (*td_store_done_cb)(void *ud, struct td_store_op *op);

struct td_store_worker {
    uv_loop_t *loop;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    uv_cond_t ckpt_cond;
    struct td_store *st;   /* used by the worker thread only while it runs */
    struct td_store *ckpt; /* a second connection for the checkpoint thread, or NULL */
    uv_thread_t ckpt_thread;
    td_store_done_cb done;
    void *ud;
    int64_t (*wall_ms)(void);
    /* under mu */
    struct td_store_op *in_head, *in_tail;
    struct td_store_op *out_head, *out_tail;
    bool stop;
    bool running;
    struct td_store_stats stats;
};

/*
 * td_store_worker_start starts the thread; the worker uses st (which stays owned by the
 * caller and must outlive the worker) and reports finished operations through done on
 * loop's thread. ckpt, if not NULL, is a second connection to the same database that the
 * worker takes over (and closes at stop): a third thread uses it to checkpoint the
 * write-ahead log, so no commit waits for a checkpoint. Returns 0 or a negative libuv error.
 */
int td_store_worker_start(struct td_store_worker *w, uv_loop_t *loop, struct td_store *st,
                          struct td_store *ckpt, int64_t (*wall_ms)(void), td_store_done_cb done,
                          void *ud);
/* td_store_worker_submit queues op (loop thread). After stop, op fails at once (TD_ESTORE). */
void td_store_worker_submit(struct td_store_worker *w, struct td_store_op *op);
/*
 * td_store_worker_stop lets the worker commit everything queued, joins it, delivers the
 * remaining results through done and closes the async handle (loop thread). Blocks for the
 * length of the last commit.
 */
void td_store_worker_stop(struct td_store_worker *w);
/* td_store_worker_stats copies the statistics (loop thread). */
void td_store_worker_stats(struct td_store_worker *w, struct td_store_stats *out);

#endif
