/*
 * td_store.h - the durable history store: SQLite in the data directory.
 *
 * Design note. The store keeps, per channel, its epoch, its top offset and its history
 * (publications with their offsets), plus the idempotency keys of recent publishes. It is a
 * synchronous library: every call may block on disk. The server runs it on one worker thread
 * (src/io/td_store_worker.c) and feeds it batches of operations; each batch is one
 * transaction, so many publications share one commit (group commit) and either all of a
 * batch is durable or none of it is.
 *
 * Offsets are assigned here, inside the transaction, from the channel's stored top offset:
 * a failed commit leaves no gap, and after a crash the next offset continues from what was
 * committed. The caller acknowledges a publication only after td_store_commit returned 0 for
 * its batch.
 *
 * History is trimmed inside the same transaction to the channel's history_size, and by
 * td_store_expire (TTL and idempotency-key expiry), which deletes a bounded number of rows
 * per call so it never holds the writer for long.
 *
 * Documents (Yjs rooms, see engine/td_yroom.h) are kept as a log of v1 updates per room in
 * table doc_updates (migration 2): DOC_APPEND adds one row, DOC_LOAD reads a room's rows
 * back merged into one update (td_yupdate_merge, on the worker thread), DOC_COMPACT replaces
 * a room's rows with one snapshot. Document operations never touch channel rows, and a
 * document error (a stored update that does not decode) fails only that operation.
 *
 * Schema: PRAGMA user_version holds the schema version; migrations are numbered and run in
 * order inside one transaction when the store opens. A database written by a newer tandem
 * (a higher version) is refused with a clear error rather than guessed at.
 */
#ifndef TD_STORE_H
#define TD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "engine/td_stream.h"

struct td_store;

/* The current schema version (the number of migrations). */
#define TD_STORE_SCHEMA_VERSION 3

enum td_store_sync {
    TD_STORE_SYNC_FULL = 0,   /* fsync at every commit: survives power loss */
    TD_STORE_SYNC_NORMAL = 1, /* WAL without fsync per commit: survives a process crash */
    TD_STORE_SYNC_OFF = 2,    /* no fsync at all (tests and benchmarks only) */
};

enum td_store_op_kind {
    TD_STORE_OP_CREATE,  /* make sure the channel exists with `epoch` */
    TD_STORE_OP_PUBLISH, /* append pub; dedupe by idem_key */
    TD_STORE_OP_REMOVE,  /* history_remove: drop the channel's history, keep epoch and top */
    TD_STORE_OP_DROP,    /* forget the channel entirely (its meta TTL passed) */
    /*
     * Documents: `channel` holds the room name. DOC_APPEND appends doc_data[0..doc_len) (a
     * v1 update) to the room's log. DOC_LOAD fills doc_out with every stored update of the
     * room merged into one v1 update (nothing appended if the room has none) and doc_rows
     * with the number of rows read; a stored update that does not decode fails the op with
     * TD_EPROTO. DOC_COMPACT replaces all of the room's rows with doc_data[0..doc_len) (a
     * snapshot of the whole document, one row) in the batch's transaction.
     */
    TD_STORE_OP_DOC_APPEND,
    TD_STORE_OP_DOC_LOAD,
    TD_STORE_OP_DOC_COMPACT,
};

/* td_store_op_is_doc tells document operations from channel operations. */
static inline bool td_store_op_is_doc(enum td_store_op_kind k)
{
    return k == TD_STORE_OP_DOC_APPEND || k == TD_STORE_OP_DOC_LOAD || k == TD_STORE_OP_DOC_COMPACT;
}

/*
 * One operation, owned by the caller. The caller fills the inputs, the store fills the
 * results. Strings are borrowed and must stay valid and unchanged until the operation
 * completes; the store never touches pub's reference count.
 */
struct td_store_op {
    struct td_store_op *next; /* queue link, for the caller's use */
    enum td_store_op_kind kind;
    const char *channel;
    size_t channel_len;
    char epoch[TD_EPOCH_LEN + 1];
    /* PUBLISH inputs */
    const struct td_pub *pub;
    int64_t wall_ms;       /* publication time (Unix ms) */
    int64_t expires_ms;    /* wall time after which the history row may go, 0 = never */
    uint32_t history_size; /* rows to keep for the channel (0 = none) */
    const char *idem_key;  /* NULL or empty = no key */
    size_t idem_key_len;
    int64_t idem_expires_ms; /* wall time the key stops deduplicating */
    /* DOC_* inputs: the update (APPEND) or snapshot (COMPACT), borrowed like the strings */
    const uint8_t *doc_data;
    size_t doc_len;
    /* DOC_LOAD result: the caller initialises doc_out (td_buf_init) and frees it */
    struct td_buf doc_out;
    uint64_t doc_rows; /* DOC_LOAD: rows read; DOC_COMPACT: rows replaced */
    /* results */
    int status;      /* 0, or a negative error: the operation did not happen */
    uint64_t offset; /* PUBLISH: the assigned offset (or the original one on an idem hit) */
    bool idem_hit;   /* PUBLISH: a retry; nothing was appended */
    void *ud;        /* for the caller */
};

/*
 * td_store_open opens (creating if needed) `dir`/tandem.db, sets WAL mode and the sync
 * level and migrates the schema. Returns 0 with *out set, or a negative error with a
 * one-line explanation in err.
 */
int td_store_open(const char *dir, enum td_store_sync sync, struct td_store **out, char *err,
                  size_t errlen);
void td_store_close(struct td_store *st);

/*
 * Callbacks for td_store_load: first every channel (channel returns a handle for it, or
 * NULL to skip its publications), then the publications of all channels, each channel's in
 * offset order, with the handle of their channel.
 */
struct td_store_load_cb {
    void *(*channel)(void *ud, const char *name, size_t len, const char *epoch, uint64_t top,
                     int64_t last_pub_wall_ms);
    /* pub: data and info as stored; info fields have length 0 when absent (has_info=false) */
    void (*pub)(void *ud, void *channel, uint64_t offset, int64_t wall_ms, struct td_str data,
                bool has_info, const struct td_client_info *info);
    void *ud;
};

/*
 * td_store_load reports every channel and, for each, its kept publications that have not
 * expired at now_wall_ms (at most `max_per_channel`, the newest ones). Returns 0 or a
 * negative error with err filled.
 */
int td_store_load(struct td_store *st, int64_t now_wall_ms, uint32_t max_per_channel,
                  const struct td_store_load_cb *cb, char *err, size_t errlen);

/*
 * td_store_commit runs ops[0..n) in order in one transaction. On success every op's status
 * is 0 (or a per-op error that did not abort the batch) and results are set; returns 0. If
 * the transaction fails, it is rolled back, every op gets the error as status, and the
 * error is returned (err filled).
 */
int td_store_commit(struct td_store *st, struct td_store_op **ops, size_t n, char *err,
                    size_t errlen);

/*
 * td_store_expire sweeps the next `max_rows` rows of the history log (deleting those expired
 * at now_wall_ms, trimmed away by history_size or of dropped channels) and deletes up to
 * max_rows expired idempotency keys. Returns the number of rows deleted (>= 0), or a negative
 * error.
 */
int td_store_expire(struct td_store *st, int64_t now_wall_ms, int max_rows);

/*
 * Checkpoints. SQLite copies the write-ahead log into the database inside a commit once the
 * log passes 1000 pages, which stalls that commit and grows with the log. A server also
 * calls td_store_checkpoint from another thread on a second connection: a passive
 * checkpoint copies what it can without blocking the writer, so the writer's own
 * checkpoints find little left to copy. (restart: wait for nothing, then rewind the log if
 * everything was copied.) Returns the number of log pages not yet copied (>= 0), or a
 * negative error.
 */
int td_store_checkpoint(struct td_store *st, bool restart);
/* td_store_autocheckpoint sets the log size (pages) at which a commit checkpoints. */
void td_store_autocheckpoint(struct td_store *st, int pages);

#endif
