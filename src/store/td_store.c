#include "store/td_store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "crdt/td_yupdate.h"

/*
 * Migrations, numbered from 1: entry i brings the schema from version i to i+1. Never edit
 * a released entry; add a new one.
 */
static const char *const store_migrations[] = {
    /* 1: channels, history, idempotency keys */
    "CREATE TABLE channels ("
    "  id INTEGER PRIMARY KEY,"
    "  name BLOB NOT NULL UNIQUE,"
    "  epoch TEXT NOT NULL,"
    "  top INTEGER NOT NULL DEFAULT 0,"
    "  last_pub_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE pubs ("
    "  chan INTEGER NOT NULL,"
    "  off INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  has_info INTEGER NOT NULL,"
    "  user BLOB, client BLOB, conn_info BLOB, chan_info BLOB,"
    "  PRIMARY KEY (chan, off)) WITHOUT ROWID;"
    "CREATE INDEX pubs_expires ON pubs (expires_ms) WHERE expires_ms > 0;"
    "CREATE TABLE idem ("
    "  chan INTEGER NOT NULL,"
    "  key BLOB NOT NULL,"
    "  off INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (chan, key)) WITHOUT ROWID;"
    "CREATE INDEX idem_expires ON idem (expires_ms);",
    /* 2: Yjs documents, a log of v1 updates per room */
    "CREATE TABLE doc_updates ("
    "  id INTEGER PRIMARY KEY,"
    "  room BLOB NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE INDEX doc_updates_room ON doc_updates (room, id);",
    /* 3: history as an append-only log in commit order. A table clustered by channel made
     * every commit rewrite one page per channel it touched; the log writes a few adjacent
     * pages. Each channel's min_off marks the oldest offset still in its history; rows
     * below it, past their expiry or of a dropped channel are garbage for the sweep
     * (store_sweep). */
    "ALTER TABLE channels ADD COLUMN min_off INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE pubs_log ("
    "  seq INTEGER PRIMARY KEY,"
    "  chan INTEGER NOT NULL,"
    "  off INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  has_info INTEGER NOT NULL,"
    "  user BLOB, client BLOB, conn_info BLOB, chan_info BLOB);"
    "INSERT INTO pubs_log (chan, off, time_ms, expires_ms, data, has_info, user, client,"
    "  conn_info, chan_info) SELECT chan, off, time_ms, expires_ms, data, has_info, user,"
    "  client, conn_info, chan_info FROM pubs ORDER BY chan, off;"
    "UPDATE channels SET min_off = coalesce("
    "  (SELECT min(off) FROM pubs_log WHERE pubs_log.chan = channels.id), top + 1);"
    "DROP TABLE pubs;"
    "ALTER TABLE pubs_log RENAME TO pubs;",
};
#define STORE_NMIGRATIONS (sizeof(store_migrations) / sizeof(store_migrations[0]))
_Static_assert(STORE_NMIGRATIONS == TD_STORE_SCHEMA_VERSION, "one migration per version");

enum {
    Q_CHAN_GET,
    Q_CHAN_INSERT,
    Q_CHAN_UPDATE,
    Q_CHAN_DELETE,
    Q_PUB_INSERT,
    Q_CHAN_CLEAR,
    Q_PUB_SWEEP,
    Q_PUB_MAXSEQ,
    Q_IDEM_GET,
    Q_IDEM_PUT,
    Q_IDEM_DELETE_ALL,
    Q_DOC_INSERT,
    Q_DOC_SELECT,
    Q_DOC_DELETE,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_COUNT
};

static const char *const store_sql[Q_COUNT] = {
    [Q_CHAN_GET] = "SELECT id, top FROM channels WHERE name = ?1",
    [Q_CHAN_INSERT] = "INSERT INTO channels (name, epoch) VALUES (?1, ?2)",
    [Q_CHAN_UPDATE] = "UPDATE channels SET top = ?2, last_pub_ms = ?3, "
                      "min_off = max(min_off, ?4) WHERE id = ?1",
    [Q_CHAN_CLEAR] = "UPDATE channels SET min_off = top + 1 WHERE id = ?1",
    [Q_PUB_MAXSEQ] = "SELECT ifnull(max(seq), 0) FROM pubs",
    [Q_PUB_SWEEP] = "DELETE FROM pubs WHERE seq IN (SELECT p.seq FROM pubs p LEFT JOIN channels c "
                    "ON c.id = p.chan WHERE p.seq > ?1 AND p.seq <= ?2 AND (c.id IS NULL OR "
                    "p.off < c.min_off OR (p.expires_ms > 0 AND p.expires_ms <= ?3)))",
    [Q_CHAN_DELETE] = "DELETE FROM channels WHERE id = ?1",
    [Q_PUB_INSERT] =
        "INSERT INTO pubs (chan, off, time_ms, expires_ms, data, has_info, user, "
        "client, conn_info, chan_info) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_IDEM_GET] = "SELECT off FROM idem WHERE chan = ?1 AND key = ?2 AND expires_ms > ?3",
    [Q_IDEM_PUT] =
        "INSERT OR REPLACE INTO idem (chan, key, off, expires_ms) VALUES (?1, ?2, ?3, ?4)",
    [Q_IDEM_DELETE_ALL] = "DELETE FROM idem WHERE chan = ?1",
    [Q_DOC_INSERT] = "INSERT INTO doc_updates (room, data) VALUES (?1, ?2)",
    [Q_DOC_SELECT] = "SELECT data FROM doc_updates "
                     "WHERE room = ?1 ORDER BY id",
    [Q_DOC_DELETE] = "DELETE FROM doc_updates WHERE room = ?1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

struct td_store {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    int64_t sweep_cursor; /* the sweep looks at seq > sweep_cursor next */
};

static int store_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    if (err != NULL)
        snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return TD_ESTORE;
}

static int store_exec(struct td_store *st, const char *sql, const char *what, char *err,
                      size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (err != NULL)
            snprintf(err, errlen, "%s: %s", what, msg ? msg : "unknown error");
        sqlite3_free(msg);
        return TD_ESTORE;
    }
    return 0;
}

static int store_user_version(struct td_store *st, int *v)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return TD_ESTORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : TD_ESTORE;
}

static int store_migrate(struct td_store *st, char *err, size_t errlen)
{
    int v;
    if (store_user_version(st, &v) != 0)
        return store_fail(st->db, "reading the schema version", err, errlen);
    if (v > (int)STORE_NMIGRATIONS) {
        snprintf(err, errlen,
                 "the database has schema version %d but this tandem knows up to %d; "
                 "use a newer tandem or another data directory",
                 v, (int)STORE_NMIGRATIONS);
        return TD_EINVAL;
    }
    if (v == (int)STORE_NMIGRATIONS)
        return 0;
    int rv = store_exec(st, "BEGIN IMMEDIATE", "starting the migration", err, errlen);
    for (int i = v; rv == 0 && i < (int)STORE_NMIGRATIONS; i++) {
        char what[64];
        snprintf(what, sizeof(what), "schema migration %d", i + 1);
        rv = store_exec(st, store_migrations[i], what, err, errlen);
    }
    if (rv == 0) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", (int)STORE_NMIGRATIONS);
        rv = store_exec(st, sql, "recording the schema version", err, errlen);
    }
    if (rv == 0)
        rv = store_exec(st, "COMMIT", "committing the migration", err, errlen);
    if (rv != 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

int td_store_open(const char *dir, enum td_store_sync sync, struct td_store **out, char *err,
                  size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        return -errno;
    }
    size_t n = strlen(dir) + sizeof("/tandem.db");
    char *path = td_xmalloc(n);
    snprintf(path, n, "%s/tandem.db", dir);
    struct td_store *st = td_xcalloc(1, sizeof(*st));
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    int rv = 0;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        rv = TD_ESTORE;
        goto out;
    }
    sqlite3_busy_timeout(st->db, 5000);
    static const char *const sync_sql[] = {
        "PRAGMA synchronous = FULL", "PRAGMA synchronous = NORMAL", "PRAGMA synchronous = OFF"};
    /* journal_mode returns a row, so sqlite3_exec is fine; a locked or read-only file
     * fails here with a message that names the file. */
    char what[300];
    snprintf(what, sizeof(what), "opening %s", path);
    rv = store_exec(st, "PRAGMA journal_mode = WAL", what, err, errlen);
    if (rv == 0)
        rv = store_exec(st, sync_sql[sync], what, err, errlen);
    if (rv == 0)
        rv = store_migrate(st, err, errlen);
    for (int i = 0; rv == 0 && i < Q_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->q[i],
                               NULL) != SQLITE_OK)
            rv = store_fail(st->db, "preparing statements", err, errlen);
    }
out:
    free(path);
    if (rv != 0) {
        td_store_close(st);
        return rv;
    }
    *out = st;
    return 0;
}

void td_store_close(struct td_store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->q[i]);
    sqlite3_close(st->db);
    free(st);
}

/* ---- loading ----------------------------------------------------------------------- */

static struct td_str col_str(sqlite3_stmt *s, int i)
{
    const void *p = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);
    return (struct td_str){p ? (const char *)p : "", (size_t)n};
}

struct load_chan {
    int64_t id;
    uint64_t top, min_off;
    void *handle;
};

static struct load_chan *load_chan_find(struct load_chan *v, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].id == id ? &v[lo] : NULL;
}

int td_store_load(struct td_store *st, int64_t now_wall_ms, uint32_t max_per_channel,
                  const struct td_store_load_cb *cb, char *err, size_t errlen)
{
    sqlite3_stmt *chans = NULL, *pubs = NULL;
    struct load_chan *v = NULL;
    size_t n = 0, cap = 0;
    int rv = 0;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, name, epoch, top, last_pub_ms, min_off FROM channels "
                           "ORDER BY id",
                           -1, &chans, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db,
                           "SELECT chan, off, time_ms, data, has_info, user, client, conn_info, "
                           "chan_info, expires_ms FROM pubs ORDER BY seq",
                           -1, &pubs, NULL) != SQLITE_OK) {
        rv = store_fail(st->db, "loading history", err, errlen);
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(chans)) == SQLITE_ROW) {
        struct td_str name = col_str(chans, 1);
        const char *epoch = (const char *)sqlite3_column_text(chans, 2);
        uint64_t top = (uint64_t)sqlite3_column_int64(chans, 3);
        void *h = cb->channel(cb->ud, name.p, name.n, epoch ? epoch : "", top,
                              sqlite3_column_int64(chans, 4));
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = td_xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = (struct load_chan){sqlite3_column_int64(chans, 0), top,
                                    (uint64_t)sqlite3_column_int64(chans, 5), h};
    }
    if (rc != SQLITE_DONE) {
        rv = store_fail(st->db, "reading channels", err, errlen);
        goto out;
    }
    if (max_per_channel == 0 || n == 0)
        goto out;
    /* The log is in commit order, so each channel's rows come in offset order. */
    while ((rc = sqlite3_step(pubs)) == SQLITE_ROW) {
        struct load_chan *c = load_chan_find(v, n, sqlite3_column_int64(pubs, 0));
        uint64_t off = (uint64_t)sqlite3_column_int64(pubs, 1);
        int64_t expires = sqlite3_column_int64(pubs, 9);
        if (c == NULL || c->handle == NULL || off < c->min_off || off > c->top ||
            off + max_per_channel <= c->top || (expires > 0 && expires <= now_wall_ms))
            continue; /* garbage the sweep has not reached yet, or not wanted */
        struct td_client_info info;
        memset(&info, 0, sizeof(info));
        bool has_info = sqlite3_column_int(pubs, 4) != 0;
        if (has_info) {
            info.user = col_str(pubs, 5);
            info.client = col_str(pubs, 6);
            info.conn_info = col_str(pubs, 7);
            info.chan_info = col_str(pubs, 8);
        }
        cb->pub(cb->ud, c->handle, off, sqlite3_column_int64(pubs, 2), col_str(pubs, 3), has_info,
                &info);
    }
    if (rc != SQLITE_DONE)
        rv = store_fail(st->db, "reading history", err, errlen);
out:
    free(v);
    sqlite3_finalize(chans);
    sqlite3_finalize(pubs);
    return rv;
}

/* ---- committing -------------------------------------------------------------------- */

/* A channel touched by the batch: its row id and top as this transaction sees them. */
struct batch_chan {
    const char *name;
    size_t len;
    int64_t id;
    uint64_t top;
    uint64_t top0;    /* top when the batch started */
    uint64_t min_off; /* set by REMOVE in this batch: history starts above top */
    int64_t last_pub_ms;
    uint32_t history_size;
    bool dirty;
};

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : TD_ESTORE;
}

static void bind_text(sqlite3_stmt *s, int i, const char *p, size_t n)
{
    sqlite3_bind_blob64(s, i, n ? p : "", n, SQLITE_STATIC);
}

/* Finds (or, with `create`, inserts) the channel's row; NULL if absent and not created. */
static struct batch_chan *batch_chan_get(struct td_store *st, struct batch_chan **chans,
                                         size_t *nchans, size_t *cap, const struct td_store_op *op,
                                         bool create, int *rv)
{
    for (size_t i = 0; i < *nchans; i++) {
        struct batch_chan *b = &(*chans)[i];
        if (b->len != op->channel_len || memcmp(b->name, op->channel, b->len) != 0)
            continue;
        if (b->id == 0 && create) {
            /* dropped earlier in this batch and used again: a new row, a new epoch */
            sqlite3_stmt *ins = st->q[Q_CHAN_INSERT];
            bind_text(ins, 1, op->channel, op->channel_len);
            sqlite3_bind_text(ins, 2, op->epoch, -1, SQLITE_STATIC);
            if ((*rv = step_done(ins)) != 0)
                return NULL;
            b->id = sqlite3_last_insert_rowid(st->db);
            b->top = b->top0 = b->min_off = 0;
        }
        return b->id ? b : NULL;
    }
    sqlite3_stmt *q = st->q[Q_CHAN_GET];
    bind_text(q, 1, op->channel, op->channel_len);
    int64_t id = 0;
    uint64_t top = 0;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(q, 0);
        top = (uint64_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        *rv = TD_ESTORE;
        return NULL;
    }
    if (id == 0 && create) {
        q = st->q[Q_CHAN_INSERT];
        bind_text(q, 1, op->channel, op->channel_len);
        sqlite3_bind_text(q, 2, op->epoch, -1, SQLITE_STATIC);
        if ((*rv = step_done(q)) != 0)
            return NULL;
        id = sqlite3_last_insert_rowid(st->db);
    }
    if (*nchans == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *chans = td_xrealloc(*chans, *cap * sizeof(**chans));
    }
    struct batch_chan *b = &(*chans)[(*nchans)++];
    memset(b, 0, sizeof(*b));
    b->name = op->channel;
    b->len = op->channel_len;
    b->id = id;
    b->top = top;
    b->top0 = top;
    return id ? b : NULL;
}

static int store_publish(struct td_store *st, struct batch_chan *b, struct td_store_op *op)
{
    sqlite3_stmt *q;
    bool has_key = op->idem_key != NULL && op->idem_key_len > 0;
    if (has_key) {
        q = st->q[Q_IDEM_GET];
        sqlite3_bind_int64(q, 1, b->id);
        bind_text(q, 2, op->idem_key, op->idem_key_len);
        sqlite3_bind_int64(q, 3, op->wall_ms);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            op->offset = (uint64_t)sqlite3_column_int64(q, 0);
            op->idem_hit = true;
        }
        sqlite3_reset(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return TD_ESTORE;
        if (op->idem_hit)
            return 0;
    }
    const struct td_pub *p = op->pub;
    uint64_t off = b->top + 1;
    int rv = 0;
    if (op->history_size > 0) {
        q = st->q[Q_PUB_INSERT];
        sqlite3_bind_int64(q, 1, b->id);
        sqlite3_bind_int64(q, 2, (int64_t)off);
        sqlite3_bind_int64(q, 3, op->wall_ms);
        sqlite3_bind_int64(q, 4, op->expires_ms);
        bind_text(q, 5, p->wire.data.p, p->wire.data.n);
        sqlite3_bind_int(q, 6, p->has_info);
        if (p->has_info) {
            bind_text(q, 7, p->info.user.p, p->info.user.n);
            bind_text(q, 8, p->info.client.p, p->info.client.n);
            bind_text(q, 9, p->info.conn_info.p, p->info.conn_info.n);
            bind_text(q, 10, p->info.chan_info.p, p->info.chan_info.n);
        } else {
            for (int i = 7; i <= 10; i++)
                sqlite3_bind_null(q, i);
        }
        rv = step_done(q);
        sqlite3_clear_bindings(q);
        if (rv != 0)
            return rv;
    }
    if (has_key) {
        q = st->q[Q_IDEM_PUT];
        sqlite3_bind_int64(q, 1, b->id);
        bind_text(q, 2, op->idem_key, op->idem_key_len);
        sqlite3_bind_int64(q, 3, (int64_t)off);
        sqlite3_bind_int64(q, 4, op->idem_expires_ms);
        if ((rv = step_done(q)) != 0)
            return rv;
    }
    b->top = off;
    b->last_pub_ms = op->wall_ms;
    b->history_size = op->history_size;
    b->dirty = true;
    op->offset = off;
    return 0;
}

static int store_delete_chan_rows(struct td_store *st, int which, int64_t id)
{
    sqlite3_stmt *q = st->q[which];
    sqlite3_bind_int64(q, 1, id);
    return step_done(q);
}

/* ---- documents --------------------------------------------------------------------- */

static int store_doc_insert(struct td_store *st, const struct td_store_op *op)
{
    sqlite3_stmt *q = st->q[Q_DOC_INSERT];
    bind_text(q, 1, op->channel, op->channel_len);
    sqlite3_bind_blob64(q, 2, op->doc_len ? (const void *)op->doc_data : "", op->doc_len,
                        SQLITE_STATIC);
    int rv = step_done(q);
    sqlite3_clear_bindings(q);
    return rv;
}

/*
 * Reads the room's updates and merges them into op->doc_out. A store error aborts the
 * batch (returned); an update that does not merge fails only this op (op->status).
 */
static int store_doc_load(struct td_store *st, struct td_store_op *op)
{
    sqlite3_stmt *q = st->q[Q_DOC_SELECT];
    bind_text(q, 1, op->channel, op->channel_len);
    uint8_t **ups = NULL;
    size_t *lens = NULL, n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            ups = td_xrealloc(ups, cap * sizeof(*ups));
            lens = td_xrealloc(lens, cap * sizeof(*lens));
        }
        const void *p = sqlite3_column_blob(q, 0);
        size_t len = (size_t)sqlite3_column_bytes(q, 0);
        ups[n] = td_xmalloc(len ? len : 1);
        if (len)
            memcpy(ups[n], p, len);
        lens[n++] = len;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    int rv = rc == SQLITE_DONE ? 0 : TD_ESTORE;
    op->doc_rows = n;
    if (rv == 0 && n > 0) {
        int mr = td_yupdate_merge((const uint8_t *const *)ups, lens, n, 1, &op->doc_out);
        if (mr != 0)
            op->status = mr;
    }
    for (size_t i = 0; i < n; i++)
        free(ups[i]);
    free(ups);
    free(lens);
    return rv;
}

static int store_doc_compact(struct td_store *st, struct td_store_op *op)
{
    sqlite3_stmt *q = st->q[Q_DOC_DELETE];
    bind_text(q, 1, op->channel, op->channel_len);
    int rv = step_done(q);
    sqlite3_clear_bindings(q);
    if (rv != 0)
        return rv;
    op->doc_rows = (uint64_t)sqlite3_changes(st->db);
    return store_doc_insert(st, op);
}

static int store_doc_op(struct td_store *st, struct td_store_op *op)
{
    switch (op->kind) {
    case TD_STORE_OP_DOC_APPEND:
        return store_doc_insert(st, op);
    case TD_STORE_OP_DOC_LOAD:
        return store_doc_load(st, op);
    case TD_STORE_OP_DOC_COMPACT:
        return store_doc_compact(st, op);
    default:
        return TD_EINVAL;
    }
}

/*
 * Deletes the garbage among the next `window` log rows (by seq) after the cursor: rows of
 * dropped channels, below their channel's min_off, or expired at now. The cursor wraps to
 * the start once it passes the end of the log. Returns the rows deleted or an error.
 */
static int store_sweep(struct td_store *st, int64_t now, int64_t window)
{
    sqlite3_stmt *q = st->q[Q_PUB_SWEEP];
    int64_t from = st->sweep_cursor;
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, from + window);
    sqlite3_bind_int64(q, 3, now);
    if (step_done(q) != 0)
        return TD_ESTORE;
    int deleted = sqlite3_changes(st->db);
    st->sweep_cursor = from + window;
    /* past the end of the log: start over */
    sqlite3_stmt *m = st->q[Q_PUB_MAXSEQ];
    int rc = sqlite3_step(m);
    if (rc == SQLITE_ROW && sqlite3_column_int64(m, 0) <= st->sweep_cursor)
        st->sweep_cursor = 0;
    sqlite3_reset(m);
    return rc == SQLITE_ROW ? deleted : TD_ESTORE;
}

int td_store_commit(struct td_store *st, struct td_store_op **ops, size_t n, char *err,
                    size_t errlen)
{
    struct batch_chan *chans = NULL;
    size_t nchans = 0, cap = 0;
    uint64_t inserted = 0;
    int64_t now = 0;
    int rv = step_done(st->q[Q_BEGIN]);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        struct td_store_op *op = ops[i];
        op->status = 0;
        op->offset = 0;
        op->idem_hit = false;
        if (td_store_op_is_doc(op->kind)) {
            op->doc_rows = 0;
            rv = store_doc_op(st, op);
            continue;
        }
        bool create = op->kind == TD_STORE_OP_CREATE || op->kind == TD_STORE_OP_PUBLISH;
        struct batch_chan *b = batch_chan_get(st, &chans, &nchans, &cap, op, create, &rv);
        if (rv != 0)
            break;
        switch (op->kind) {
        case TD_STORE_OP_CREATE:
            break;
        case TD_STORE_OP_PUBLISH:
            rv = store_publish(st, b, op);
            break;
        case TD_STORE_OP_REMOVE:
            if (b != NULL && b->dirty)
                b->min_off = b->top + 1; /* written with the channel below */
            else if (b != NULL)
                rv = store_delete_chan_rows(st, Q_CHAN_CLEAR, b->id);
            break;
        case TD_STORE_OP_DOC_APPEND:
        case TD_STORE_OP_DOC_LOAD:
        case TD_STORE_OP_DOC_COMPACT:
            break; /* handled above */
        case TD_STORE_OP_DROP:
            if (b == NULL)
                break;
            /* its history rows become garbage for the sweep */
            rv = store_delete_chan_rows(st, Q_IDEM_DELETE_ALL, b->id);
            if (rv == 0)
                rv = store_delete_chan_rows(st, Q_CHAN_DELETE, b->id);
            b->id = 0; /* a later op in this batch sees it gone */
            b->dirty = false;
            break;
        }
    }
    for (size_t i = 0; rv == 0 && i < nchans; i++) {
        struct batch_chan *b = &chans[i];
        if (!b->dirty)
            continue;
        sqlite3_stmt *q = st->q[Q_CHAN_UPDATE];
        sqlite3_bind_int64(q, 1, b->id);
        sqlite3_bind_int64(q, 2, (int64_t)b->top);
        sqlite3_bind_int64(q, 3, b->last_pub_ms);
        /* history_size is enforced by moving min_off; the sweep deletes what falls below */
        uint64_t keep_from = b->top > b->history_size ? b->top - b->history_size + 1 : 1;
        if (b->min_off > keep_from)
            keep_from = b->min_off;
        sqlite3_bind_int64(q, 4, (int64_t)keep_from);
        rv = step_done(q);
        if (b->history_size > 0)
            inserted += b->top - b->top0;
        if (b->last_pub_ms > now)
            now = b->last_pub_ms;
    }
    /* Sweep about twice as many log rows as were appended, so garbage never piles up. */
    if (rv == 0 && inserted > 0) {
        int swept = store_sweep(st, now, (int64_t)(2 * inserted + 64));
        rv = swept < 0 ? swept : 0;
    }
    if (rv == 0)
        rv = step_done(st->q[Q_COMMIT]);
    if (rv != 0) {
        store_fail(st->db, "committing publications", err, errlen);
        step_done(st->q[Q_ROLLBACK]);
        for (size_t i = 0; i < n; i++) {
            ops[i]->status = rv;
            ops[i]->offset = 0;
            ops[i]->idem_hit = false;
            if (ops[i]->kind == TD_STORE_OP_DOC_LOAD)
                td_buf_reset(&ops[i]->doc_out);
        }
    }
    free(chans);
    return rv;
}

int td_store_expire(struct td_store *st, int64_t now_wall_ms, int max_rows)
{
    char sql[200];
    int deleted = store_sweep(st, now_wall_ms, max_rows);
    if (deleted < 0)
        return deleted;
    snprintf(sql, sizeof(sql),
             "DELETE FROM idem WHERE (chan, key) IN (SELECT chan, key FROM idem WHERE "
             "expires_ms <= %lld LIMIT %d)",
             (long long)now_wall_ms, max_rows);
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return TD_ESTORE;
    return deleted + sqlite3_changes(st->db);
}

void td_store_autocheckpoint(struct td_store *st, int pages)
{
    sqlite3_wal_autocheckpoint(st->db, pages);
}

int td_store_checkpoint(struct td_store *st, bool restart)
{
    int log = 0, done = 0;
    /* never wait for the other connection: a busy checkpoint is simply tried again later */
    sqlite3_busy_timeout(st->db, 0);
    int rc = sqlite3_wal_checkpoint_v2(
        st->db, NULL, restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    sqlite3_busy_timeout(st->db, 5000);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return TD_ESTORE;
    return log > done ? log - done : 0;
}
