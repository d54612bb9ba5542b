#include "io/td_store_worker.h"

#include <string.h>

#include "core/td_err.h"
#include "core/td_log.h"

const double td_store_worker_buckets[TD_STORE_WORKER_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

/* How many expired rows one expiry pass may delete (a short transaction). */
#define WORKER_EXPIRE_ROWS 2000

static void worker_record(struct td_store_stats *s, double secs, size_t n, bool ok)
{
    s->commits++;
    if (ok)
        s->committed_ops += n;
    else
        s->failed_commits++;
    s->commit_seconds_sum += secs;
    for (int i = 0; i < TD_STORE_WORKER_NBUCKETS; i++) {
        if (secs <= td_store_worker_buckets[i])
            s->commit_buckets[i]++;
    }
    s->commit_buckets[TD_STORE_WORKER_NBUCKETS]++;
}

static void worker_main(void *arg)
{
    struct td_store_worker *w = arg;
    struct td_store_op *batch[TD_STORE_WORKER_MAX_BATCH];
    uint64_t last_expire = uv_hrtime();
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (w->in_head == NULL && !w->stop) {
            if (uv_cond_timedwait(&w->cond, &w->mu, 1000000000ull) == UV_ETIMEDOUT)
                break;
        }
        size_t n = 0;
        while (w->in_head != NULL && n < TD_STORE_WORKER_MAX_BATCH) {
            batch[n++] = w->in_head;
            w->in_head = w->in_head->next;
        }
        if (w->in_head == NULL)
            w->in_tail = NULL;
        bool stopping = w->stop && n == 0;
        uv_mutex_unlock(&w->mu);
        if (stopping)
            return;
        if (n > 0) {
            char err[256];
            uint64_t t0 = uv_hrtime();
            int rv = td_store_commit(w->st, batch, n, err, sizeof(err));
            double secs = (double)(uv_hrtime() - t0) / 1e9;
            if (rv != 0)
                td_log_error("store commit failed", "ops=%zu err=\"%s\"", n, err);
            uv_mutex_lock(&w->mu);
            worker_record(&w->stats, secs, n, rv == 0);
            for (size_t i = 0; i < n; i++) {
                batch[i]->next = NULL;
                if (w->out_tail != NULL)
                    w->out_tail->next = batch[i];
                else
                    w->out_head = batch[i];
                w->out_tail = batch[i];
            }
            uv_mutex_unlock(&w->mu);
            uv_async_send(&w->async);
        }
        if (uv_hrtime() - last_expire >= 1000000000ull) {
            last_expire = uv_hrtime();
            int del = td_store_expire(w->st, w->wall_ms(), WORKER_EXPIRE_ROWS);
            if (del < 0)
                td_log_warn("store expiry failed", "err=\"%s\"", td_strerror(del));
            uv_mutex_lock(&w->mu);
            if (del > 0)
                w->stats.expired_rows += (uint64_t)del;
            uv_mutex_unlock(&w->mu);
        }
        uv_mutex_lock(&w->mu);
    }
}

/* Checkpoints the log every 100 ms, from its own connection, until stop. */
static void ckpt_main(void *arg)
{
    struct td_store_worker *w = arg;
    uv_mutex_lock(&w->mu);
    while (!w->stop) {
        uv_mutex_unlock(&w->mu);
        int left = td_store_checkpoint(w->ckpt, false);
        if (left < 0)
            td_log_warn("store checkpoint failed", "err=\"%s\"", td_strerror(left));
        uv_mutex_lock(&w->mu);
        if (!w->stop)
            (void)uv_cond_timedwait(&w->ckpt_cond, &w->mu, 100000000ull);
    }
    uv_mutex_unlock(&w->mu);
}

/* Hands finished operations to the loop thread's callback, in order. */
static void worker_deliver(struct td_store_worker *w)
{
    uv_mutex_lock(&w->mu);
    struct td_store_op *op = w->out_head;
    w->out_head = w->out_tail = NULL;
    uv_mutex_unlock(&w->mu);
    while (op != NULL) {
        struct td_store_op *next = op->next;
        w->done(w->ud, op);
        op = next;
    }
}

static void on_async(uv_async_t *a)
{
    worker_deliver(a->data);
}

int td_store_worker_start(struct td_store_worker *w, uv_loop_t *loop, struct td_store *st,
                          struct td_store *ckpt, int64_t (*wall_ms)(void), td_store_done_cb done,
                          void *ud)
{
    memset(w, 0, sizeof(*w));
    w->loop = loop;
    w->st = st;
    w->done = done;
    w->ud = ud;
    w->wall_ms = wall_ms;
    int rv = uv_mutex_init(&w->mu);
    if (rv != 0)
        return rv;
    if ((rv = uv_cond_init(&w->cond)) != 0) {
        uv_mutex_destroy(&w->mu);
        return rv;
    }
    if ((rv = uv_cond_init(&w->ckpt_cond)) != 0) {
        uv_cond_destroy(&w->cond);
        uv_mutex_destroy(&w->mu);
        return rv;
    }
    if ((rv = uv_async_init(loop, &w->async, on_async)) != 0) {
        uv_cond_destroy(&w->cond);
        uv_mutex_destroy(&w->mu);
        return rv;
    }
    w->async.data = w;
    if ((rv = uv_thread_create(&w->thread, worker_main, w)) != 0) {
        uv_close((uv_handle_t *)&w->async, NULL);
        uv_cond_destroy(&w->cond);
        uv_mutex_destroy(&w->mu);
        return rv;
    }
    w->running = true;
    if (ckpt != NULL) {
        w->ckpt = ckpt;
        /* The background thread keeps up with the log; a commit checkpoints (and the log
         * rewinds) only once it passes ~16 MB, with little left to copy by then. */
        if (uv_thread_create(&w->ckpt_thread, ckpt_main, w) == 0) {
            td_store_autocheckpoint(st, 4000);
        } else {
            td_log_warn("no checkpoint thread; commits will checkpoint", "%s", "");
            td_store_close(ckpt);
            w->ckpt = NULL;
        }
    }
    return 0;
}

void td_store_worker_submit(struct td_store_worker *w, struct td_store_op *op)
{
    op->next = NULL;
    if (!w->running) {
        op->status = TD_ESTORE;
        w->done(w->ud, op);
        return;
    }
    uv_mutex_lock(&w->mu);
    if (w->in_tail != NULL)
        w->in_tail->next = op;
    else
        w->in_head = op;
    w->in_tail = op;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
}

void td_store_worker_stop(struct td_store_worker *w)
{
    if (!w->running)
        return;
    uv_mutex_lock(&w->mu);
    w->stop = true;
    uv_cond_signal(&w->cond);
    uv_cond_signal(&w->ckpt_cond);
    uv_mutex_unlock(&w->mu);
    uv_thread_join(&w->thread);
    if (w->ckpt != NULL) {
        uv_thread_join(&w->ckpt_thread);
        td_store_close(w->ckpt);
        w->ckpt = NULL;
    }
    w->running = false;
    worker_deliver(w);
    uv_close((uv_handle_t *)&w->async, NULL);
    uv_cond_destroy(&w->ckpt_cond);
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mu);
}

void td_store_worker_stats(struct td_store_worker *w, struct td_store_stats *out)
{
    if (!w->running && w->stats.commits == 0) {
        memset(out, 0, sizeof(*out));
        return;
    }
    if (w->running)
        uv_mutex_lock(&w->mu);
    *out = w->stats;
    if (w->running)
        uv_mutex_unlock(&w->mu);
}
