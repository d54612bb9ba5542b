#include "engine/td_yroom.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_log.h"
#include "core/td_map.h"
#include "crdt/td_lib0.h"
#include "crdt/td_ydoc.h"
#include "proto/td_yproto.h"

#define YROOM_DEFAULT_MAX_MESSAGE (8u << 20)
#define YROOM_DEFAULT_MAX_DOCUMENT (64u << 20)
#define YROOM_DEFAULT_COMPACT_EVERY 500
#define YROOM_DEFAULT_MAX_QUEUED 256
/* The server's own client ID: it never edits, so any fixed value does. */
#define YROOM_SERVER_CLIENT_ID 0

enum room_state { ROOM_LOADING, ROOM_READY };

struct aware {
    uint64_t client_id;
    uint64_t clock;
    uint8_t *state; /* JSON text (owned), NULL once removed */
    size_t len;
    int64_t updated_ms;
    struct td_yconn *owner; /* the connection that set the live state, NULL if none */
};

/*
 * A store operation, or an entry of a room's output FIFO, or both: APPEND ops carry the
 * framed update message to broadcast once durable; replies (no op) carry a message for one
 * connection that must not overtake earlier appends.
 */
struct yop {
    struct td_store_op op;
    struct yroom *room;
    struct td_rbuf *msg;     /* message to send when this entry leaves the FIFO, or NULL */
    struct td_yconn *target; /* reply: the receiver; APPEND: the sender (NULL once gone) */
    struct td_buf snap;      /* COMPACT: the snapshot */
    struct yop *fifo_next;
    td_yrooms_api_cb api_cb; /* an API request answered when this entry leaves the FIFO */
    void *api_ud;
    void *origin;          /* APPEND: passed to the rooms hook (td_yrooms_api_update_from) */
    struct td_buf api_out; /* what api_cb receives */
    bool in_fifo;
    bool broadcast; /* msg goes to every connection */
    bool done;
};

/* An API request waiting for its room to load. */
struct yapi {
    struct yapi *next;
    bool is_update;
    bool has_sv;
    int version;      /* doc_state: the encoding of the answer */
    bool with_sv;     /* doc_state: prefix the answer with the document's state vector */
    struct td_ysv sv; /* doc_state: the caller's state vector (if has_sv) */
    uint8_t *data;    /* doc_update: the update (owned) */
    size_t len;
    td_yrooms_api_cb cb;
    void *ud;
    void *origin; /* doc_update: passed to the rooms hook */
};

struct yroom {
    struct td_yrooms *rs;
    char *name;
    size_t len;
    struct td_ydoc *doc;
    enum room_state state;
    struct td_yconn *head, *tail; /* joined connections, in join order */
    uint32_t nconns;
    struct aware *aw;
    size_t naw, capaw;
    struct yop *fifo_head, *fifo_tail;
    uint32_t pending_ops; /* at the store */
    uint32_t appends_since_compact;
    int64_t idle_since;               /* when the last connection left */
    bool need_sweep;                  /* some joined connection is closed */
    struct yapi *api_head, *api_tail; /* API requests waiting for the load */
};

struct td_yconn {
    struct td_yrooms *rs;
    struct yroom *room; /* NULL once detached */
    void *transport;
    struct td_yconn *prev, *next;
    bool closed;
    bool read_only;
    struct td_rbuf **queue; /* messages received while the room loads */
    uint32_t nqueue, capqueue;
    size_t queued_bytes;
};

struct td_yrooms {
    struct td_yrooms_config cfg;
    struct td_yconn_ops ops;
    void (*submit)(void *ud, struct td_store_op *op);
    void *submit_ud;
    struct td_map rooms; /* name -> struct yroom */
    struct td_yrooms_stats stats;
    td_yrooms_hook hook; /* committed updates (td_yrooms_set_hook), NULL if none */
    void *hook_ud;
};

/* ---- helpers ----------------------------------------------------------------------- */

static void conn_fail(struct td_yconn *c, uint16_t code, const char *reason)
{
    if (c->closed)
        return;
    c->closed = true;
    if (c->room != NULL)
        c->room->need_sweep = true;
    c->rs->ops.close(c->transport, code, reason);
}

static void conn_send(struct td_yconn *c, struct td_rbuf *msg)
{
    if (c->closed)
        return;
    if (c->rs->ops.send(c->transport, msg) != 0) {
        /* The transport is already closing it. */
        c->closed = true;
        if (c->room != NULL)
            c->room->need_sweep = true;
    }
}

static void conn_send_buf(struct td_yconn *c, const struct td_buf *b)
{
    struct td_rbuf *rb = td_rbuf_from(b->data, b->len);
    conn_send(c, rb);
    td_rbuf_unref(rb);
}

static void room_broadcast(struct yroom *r, struct td_rbuf *msg)
{
    for (struct td_yconn *c = r->head; c != NULL; c = c->next)
        conn_send(c, msg);
}

static void conn_queue_free(struct td_yconn *c)
{
    for (uint32_t i = 0; i < c->nqueue; i++)
        td_rbuf_unref(c->queue[i]);
    free(c->queue);
    c->queue = NULL;
    c->nqueue = c->capqueue = 0;
    c->queued_bytes = 0;
}

static void submit_op(struct yroom *r, struct yop *o)
{
    r->pending_ops++;
    r->rs->submit(r->rs->submit_ud, &o->op);
}

static struct yop *yop_new(struct yroom *r, enum td_store_op_kind kind)
{
    struct yop *o = td_xcalloc(1, sizeof(*o));
    o->room = r;
    o->op.kind = kind;
    o->op.channel = r->name;
    o->op.channel_len = r->len;
    o->op.ud = o;
    td_buf_init(&o->op.doc_out);
    td_buf_init(&o->snap);
    td_buf_init(&o->api_out);
    return o;
}

static void yop_free(struct yop *o)
{
    if (o->msg != NULL)
        td_rbuf_unref(o->msg);
    td_buf_free(&o->op.doc_out);
    td_buf_free(&o->snap);
    td_buf_free(&o->api_out);
    free(o);
}

static void fifo_push(struct yroom *r, struct yop *o)
{
    o->in_fifo = true;
    if (r->fifo_tail != NULL)
        r->fifo_tail->fifo_next = o;
    else
        r->fifo_head = o;
    r->fifo_tail = o;
}

/* Tells the rooms hook about a committed update of r. */
static void room_hook(struct yroom *r, const uint8_t *update, size_t n, void *origin, int64_t now)
{
    if (r->rs->hook != NULL)
        r->rs->hook(r->rs->hook_ud, r->name, r->len, update, n, origin, now);
}

/* Sends what leads the FIFO and is done, in order. */
static void fifo_drain(struct yroom *r, int64_t now)
{
    while (r->fifo_head != NULL && r->fifo_head->done) {
        struct yop *o = r->fifo_head;
        r->fifo_head = o->fifo_next;
        if (r->fifo_head == NULL)
            r->fifo_tail = NULL;
        if (o->msg != NULL) {
            if (o->broadcast)
                room_broadcast(r, o->msg);
            else if (o->target != NULL)
                conn_send(o->target, o->msg);
            /* A committed update (a failed append dropped its msg): tell the hook. */
            if (o->op.kind == TD_STORE_OP_DOC_APPEND)
                room_hook(r, o->op.doc_data, o->op.doc_len, o->origin, now);
        }
        /* The callback may come back into this room: the FIFO is consistent here. */
        if (o->api_cb != NULL)
            o->api_cb(o->api_ud, o->op.status, &o->api_out);
        yop_free(o);
    }
}

/* Sends msg to c now, or after the appends already in flight (see the design note). */
static void room_reply(struct yroom *r, struct td_yconn *c, const struct td_buf *b)
{
    if (r->fifo_head == NULL) {
        conn_send_buf(c, b);
        return;
    }
    struct yop *o = td_xcalloc(1, sizeof(*o));
    td_buf_init(&o->op.doc_out);
    td_buf_init(&o->snap);
    td_buf_init(&o->api_out);
    o->room = r;
    o->msg = td_rbuf_from(b->data, b->len);
    o->target = c;
    o->done = true;
    fifo_push(r, o);
}

/* ---- awareness --------------------------------------------------------------------- */

static struct aware *aware_find(struct yroom *r, uint64_t id)
{
    for (size_t i = 0; i < r->naw; i++) {
        if (r->aw[i].client_id == id)
            return &r->aw[i];
    }
    return NULL;
}

/* Drops entries of removed clients (their clocks are forgotten) to make room. */
static void aware_purge_removed(struct yroom *r)
{
    size_t j = 0;
    for (size_t i = 0; i < r->naw; i++) {
        if (r->aw[i].state != NULL)
            r->aw[j++] = r->aw[i];
    }
    r->naw = j;
}

/* Broadcasts the current state of the clients ids[0..n) (their entries must exist). */
static void aware_broadcast(struct yroom *r, const uint64_t *ids, size_t n)
{
    if (n == 0)
        return;
    struct td_yaware_entry *e = td_xmalloc(n * sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        const struct aware *a = aware_find(r, ids[i]);
        e[i].client_id = ids[i];
        e[i].clock = a ? a->clock : 0;
        e[i].removed = a == NULL || a->state == NULL;
        e[i].state = (struct td_ybytes){a && a->state ? a->state : NULL, a ? a->len : 0};
    }
    struct td_buf u, m;
    td_buf_init(&u);
    td_buf_init(&m);
    td_yproto_aware_encode(&u, e, n);
    td_yproto_write_awareness(&m, u.data, u.len);
    struct td_rbuf *rb = td_rbuf_from(m.data, m.len);
    room_broadcast(r, rb);
    td_rbuf_unref(rb);
    td_buf_free(&u);
    td_buf_free(&m);
    free(e);
}

/* Sends c every live awareness state of the room (on join), if there are any. */
static void aware_send_all(struct yroom *r, struct td_yconn *c)
{
    size_t n = 0;
    for (size_t i = 0; i < r->naw; i++)
        n += r->aw[i].state != NULL;
    if (n == 0)
        return;
    struct td_yaware_entry *e = td_xmalloc(n * sizeof(*e));
    size_t k = 0;
    for (size_t i = 0; i < r->naw; i++) {
        const struct aware *a = &r->aw[i];
        if (a->state == NULL)
            continue;
        e[k].client_id = a->client_id;
        e[k].clock = a->clock;
        e[k].removed = false;
        e[k].state = (struct td_ybytes){a->state, a->len};
        k++;
    }
    struct td_buf u, m;
    td_buf_init(&u);
    td_buf_init(&m);
    td_yproto_aware_encode(&u, e, n);
    td_yproto_write_awareness(&m, u.data, u.len);
    conn_send_buf(c, &m);
    td_buf_free(&u);
    td_buf_free(&m);
    free(e);
}

/* Applies an awareness update from c (already validated) and broadcasts the changes. */
static void aware_apply(struct yroom *r, struct td_yconn *c, const uint8_t *p, size_t n,
                        int64_t now)
{
    struct td_yaware_iter it;
    uint64_t count = 0;
    if (td_yproto_aware_begin(&it, p, n, &count) != 0 || count == 0)
        return;
    uint64_t *changed = td_xmalloc((size_t)count * sizeof(*changed));
    size_t nchanged = 0;
    struct td_yaware_entry e;
    while (td_yproto_aware_next(&it, &e) == 1) {
        struct aware *a = aware_find(r, e.client_id);
        uint64_t cur = a ? a->clock : 0;
        bool live = a != NULL && a->state != NULL;
        if (!(cur < e.clock || (cur == e.clock && e.removed && live)))
            continue;
        if (a == NULL) {
            if (e.removed)
                continue; /* nothing to remove; y-protocols only records the clock */
            if (r->naw >= TD_YROOM_MAX_AWARENESS)
                aware_purge_removed(r);
            if (r->naw >= TD_YROOM_MAX_AWARENESS) {
                conn_fail(c, TD_YROOM_CLOSE_POLICY, "too many awareness clients");
                break;
            }
            if (r->naw == r->capaw) {
                r->capaw = r->capaw ? r->capaw * 2 : 8;
                r->aw = td_xrealloc(r->aw, r->capaw * sizeof(*r->aw));
            }
            a = &r->aw[r->naw++];
            memset(a, 0, sizeof(*a));
            a->client_id = e.client_id;
        }
        free(a->state);
        a->state = NULL;
        a->len = 0;
        if (!e.removed) {
            a->state = td_xmalloc(e.state.len ? e.state.len : 1);
            memcpy(a->state, e.state.p, e.state.len);
            a->len = e.state.len;
            a->owner = c;
        } else {
            a->owner = NULL;
        }
        a->clock = e.clock;
        a->updated_ms = now;
        bool dup = false;
        for (size_t i = 0; i < nchanged; i++)
            dup = dup || changed[i] == e.client_id;
        if (!dup)
            changed[nchanged++] = e.client_id;
    }
    aware_broadcast(r, changed, nchanged);
    free(changed);
}

/* Removes the live states c set (same clock, state null) and broadcasts the removal. */
static void aware_remove_owned(struct yroom *r, struct td_yconn *c)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    for (size_t i = 0; i < r->naw; i++) {
        struct aware *a = &r->aw[i];
        if (a->owner != c)
            continue;
        a->owner = NULL;
        if (a->state == NULL)
            continue;
        free(a->state);
        a->state = NULL;
        a->len = 0;
        ids = td_xrealloc(ids, (n + 1) * sizeof(*ids));
        ids[n++] = a->client_id;
    }
    aware_broadcast(r, ids, n);
    free(ids);
}

/* ---- connections ------------------------------------------------------------------- */

/* Takes c out of its room: FIFO targets, awareness, the list. c stays allocated. */
static void conn_detach(struct td_yconn *c, int64_t now)
{
    struct yroom *r = c->room;
    if (r == NULL)
        return;
    for (struct yop *o = r->fifo_head; o != NULL; o = o->fifo_next) {
        if (o->target == c)
            o->target = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        r->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        r->tail = c->prev;
    c->prev = c->next = NULL;
    c->room = NULL;
    r->nconns--;
    r->rs->stats.conns--;
    if (r->nconns == 0)
        r->idle_since = now;
    conn_queue_free(c);
    aware_remove_owned(r, c);
}

/* Detaches every closed connection (detaching may close others: repeat until none). */
static void room_sweep(struct yroom *r, int64_t now)
{
    while (r->need_sweep) {
        r->need_sweep = false;
        struct td_yconn *c = r->head;
        while (c != NULL) {
            struct td_yconn *next = c->next;
            if (c->closed) {
                conn_detach(c, now);
                break; /* the list may have changed: start over */
            }
            c = next;
        }
        if (c != NULL)
            r->need_sweep = true;
    }
}

/* The server's opening: step1 with its state vector, then the awareness states. */
static void conn_start(struct yroom *r, struct td_yconn *c)
{
    struct td_buf sv, m;
    td_buf_init(&sv);
    td_buf_init(&m);
    td_ydoc_encode_sv(r->doc, &sv);
    td_yproto_write_sync(&m, TD_YPROTO_STEP1, sv.data, sv.len);
    conn_send_buf(c, &m);
    td_buf_free(&sv);
    td_buf_free(&m);
    aware_send_all(r, c);
}

static void room_store_append(struct yroom *r, struct td_yconn *c, const struct td_buf *update,
                              td_yrooms_api_cb cb, void *ud, void *origin, int64_t now);

/* Applies a step2/update payload from c. */
static void room_apply(struct yroom *r, struct td_yconn *c, const uint8_t *p, size_t n, int64_t now)
{
    if (c->read_only) {
        /* An empty update (no structs, empty delete set) is what a client with nothing new
         * sends in its step2: it changes nothing, so it is not refused. */
        if (n == 2 && p[0] == 0 && p[1] == 0)
            return;
        r->rs->stats.rejected++;
        struct td_buf m;
        td_buf_init(&m);
        td_yproto_write_auth_denied(&m, "read-only connection: updates are not accepted");
        conn_send_buf(c, &m);
        td_buf_free(&m);
        return;
    }
    struct td_buf out;
    td_buf_init(&out);
    int rv = td_ydoc_apply(r->doc, p, n, 1, &out);
    if (rv != 0) {
        r->rs->stats.rejected++;
        td_log_info("yjs update rejected", "room=\"%.*s\" err=\"%s\"",
                    (int)(r->len < 200 ? r->len : 200), r->name, td_strerror(rv));
        if (rv == TD_ELIMIT)
            conn_fail(c, TD_YROOM_CLOSE_TOO_LARGE, "document too large");
        else
            conn_fail(c, TD_YROOM_CLOSE_MALFORMED, "malformed update");
    } else if (out.len > 0) {
        r->rs->stats.updates++;
        room_store_append(r, c, &out, NULL, NULL, NULL, now);
    }
    td_buf_free(&out);
}

static void room_handle(struct yroom *r, struct td_yconn *c, const uint8_t *p, size_t n,
                        int64_t now)
{
    struct td_yrooms *rs = r->rs;
    struct td_yproto_msg m;
    int rv = td_yproto_decode(p, n, rs->cfg.max_message, &m);
    if (rv == TD_ELIMIT) {
        conn_fail(c, TD_YROOM_CLOSE_TOO_LARGE, "message too big");
        return;
    }
    if (rv != 0) {
        conn_fail(c, TD_YROOM_CLOSE_MALFORMED, "malformed message");
        return;
    }
    switch (m.type) {
    case TD_YPROTO_SYNC:
        if (m.subtype == TD_YPROTO_STEP1) {
            struct td_ysv sv;
            td_ysv_init(&sv);
            if (td_ysv_decode(&sv, m.payload.p, m.payload.len) != 0) {
                td_ysv_free(&sv);
                conn_fail(c, TD_YROOM_CLOSE_MALFORMED, "malformed state vector");
                return;
            }
            struct td_buf up, msg;
            td_buf_init(&up);
            td_buf_init(&msg);
            td_ydoc_encode_state(r->doc, &sv, 1, &up);
            td_yproto_write_sync(&msg, TD_YPROTO_STEP2, up.data, up.len);
            room_reply(r, c, &msg);
            td_buf_free(&up);
            td_buf_free(&msg);
            td_ysv_free(&sv);
        } else {
            room_apply(r, c, m.payload.p, m.payload.len, now);
        }
        break;
    case TD_YPROTO_AWARENESS:
        if (td_yproto_aware_check(m.payload.p, m.payload.len) != 0) {
            conn_fail(c, TD_YROOM_CLOSE_MALFORMED, "malformed awareness update");
            return;
        }
        aware_apply(r, c, m.payload.p, m.payload.len, now);
        break;
    default:
        break; /* auth, query-awareness, unknown: ignored, as the reference server does */
    }
}

/* ---- the store --------------------------------------------------------------------- */

static void room_compact(struct yroom *r)
{
    struct yop *o = yop_new(r, TD_STORE_OP_DOC_COMPACT);
    td_ydoc_encode_state(r->doc, NULL, 1, &o->snap);
    o->op.doc_data = o->snap.data;
    o->op.doc_len = o->snap.len;
    r->appends_since_compact = 0;
    r->rs->stats.compactions++;
    submit_op(r, o);
}

/* Broadcasts update (the document's own) once it is durable; at once without a store. The
 * sender c may be NULL (an API request); the rooms hook gets it with origin right after the
 * broadcast; cb, if not NULL, is called after that with the append's status. */
static void room_store_append(struct yroom *r, struct td_yconn *c, const struct td_buf *update,
                              td_yrooms_api_cb cb, void *ud, void *origin, int64_t now)
{
    struct td_yrooms *rs = r->rs;
    struct td_buf m;
    td_buf_init(&m);
    td_yproto_sync_header(&m, TD_YPROTO_UPDATE, update->len);
    size_t hlen = m.len;
    td_buf_append(&m, update->data, update->len);
    struct td_rbuf *rb = td_rbuf_from(m.data, m.len);
    td_buf_free(&m);
    if (rs->submit == NULL && r->fifo_head == NULL && cb == NULL) {
        room_broadcast(r, rb);
        room_hook(r, rb->data + hlen, update->len, origin, now);
        td_rbuf_unref(rb);
        return;
    }
    struct yop *o = yop_new(r, TD_STORE_OP_DOC_APPEND);
    o->msg = rb;
    o->broadcast = true;
    o->target = c;
    o->api_cb = cb;
    o->api_ud = ud;
    o->origin = origin;
    o->op.doc_data = rb->data + hlen;
    o->op.doc_len = update->len;
    fifo_push(r, o);
    if (rs->submit == NULL) {
        o->done = true;
        fifo_drain(r, now);
        return;
    }
    rs->stats.appends++;
    r->appends_since_compact++;
    submit_op(r, o);
    if (r->appends_since_compact >= rs->cfg.compact_every)
        room_compact(r);
}

static void yapi_free(struct yapi *a)
{
    if (a->has_sv)
        td_ysv_free(&a->sv);
    free(a->data);
    free(a);
}

/* Answers every request of the list a with status (their room is gone) and frees them. */
static void yapi_fail_all(struct yapi *a, int status)
{
    struct td_buf empty;
    td_buf_init(&empty);
    while (a != NULL) {
        struct yapi *next = a->next;
        a->cb(a->ud, status, &empty);
        yapi_free(a);
        a = next;
    }
}

static void room_free(struct yroom *r)
{
    struct yapi *pending = r->api_head;
    r->api_head = r->api_tail = NULL;
    yapi_fail_all(pending, TD_ESTORE);
    struct td_yconn *c = r->head;
    while (c != NULL) {
        struct td_yconn *next = c->next;
        conn_queue_free(c);
        free(c);
        c = next;
    }
    while (r->fifo_head != NULL) {
        struct yop *o = r->fifo_head;
        r->fifo_head = o->fifo_next;
        if (o->api_cb != NULL) {
            td_buf_reset(&o->api_out);
            o->api_cb(o->api_ud, TD_ESTORE, &o->api_out);
        }
        yop_free(o);
    }
    for (size_t i = 0; i < r->naw; i++)
        free(r->aw[i].state);
    free(r->aw);
    td_ydoc_del(r->doc);
    free(r->name);
    free(r);
}

static void room_unload(struct yroom *r)
{
    td_map_del(&r->rs->rooms, r->name, r->len);
    r->rs->stats.rooms--;
    room_free(r);
}

/* Replays what c sent while the room loaded. */
static void conn_replay(struct yroom *r, struct td_yconn *c, int64_t now)
{
    struct td_rbuf **q = c->queue;
    uint32_t n = c->nqueue;
    c->queue = NULL;
    c->nqueue = c->capqueue = 0;
    c->queued_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!c->closed && c->room == r)
            room_handle(r, c, q[i]->data, q[i]->len, now);
        td_rbuf_unref(q[i]);
    }
    free(q);
}

static void room_api_run(struct yroom *r, struct yapi *a, int64_t now);

static void room_loaded(struct yroom *r, struct yop *o, int64_t now)
{
    int rv = o->op.status;
    if (rv == 0 && o->op.doc_out.len > 0)
        rv = td_ydoc_apply(r->doc, o->op.doc_out.data, o->op.doc_out.len, 1, NULL);
    if (rv != 0) {
        td_log_error("cannot load yjs document", "room=\"%.*s\" err=\"%s\"",
                     (int)(r->len < 200 ? r->len : 200), r->name, td_strerror(rv));
        /* Close everyone and forget the room; the next connection tries again. */
        for (struct td_yconn *c = r->head; c != NULL; c = c->next) {
            if (!c->closed) {
                c->closed = true;
                r->rs->ops.close(c->transport, TD_YROOM_CLOSE_STORE, "document unavailable");
            }
        }
        while (r->head != NULL) {
            struct td_yconn *c = r->head;
            r->head = c->next;
            c->room = NULL;
            c->prev = c->next = NULL;
            conn_queue_free(c);
            r->rs->stats.conns--;
        }
        r->tail = NULL;
        r->nconns = 0;
        struct yapi *pending = r->api_head;
        r->api_head = r->api_tail = NULL;
        room_unload(r);
        yapi_fail_all(pending, TD_ESTORE);
        return;
    }
    td_log_debug("yjs document loaded", "room=\"%.*s\" rows=%llu bytes=%zu",
                 (int)(r->len < 200 ? r->len : 200), r->name, (unsigned long long)o->op.doc_rows,
                 o->op.doc_out.len);
    r->state = ROOM_READY;
    /* Many rows: compact at once so the next load is one row. */
    if (o->op.doc_rows > 1)
        r->appends_since_compact = r->rs->cfg.compact_every;
    for (struct td_yconn *c = r->head; c != NULL; c = c->next) {
        if (!c->closed)
            conn_start(r, c);
    }
    for (struct td_yconn *c = r->head; c != NULL; c = c->next)
        conn_replay(r, c, now);
    /* The API requests that waited; any made meanwhile (from a callback) run at once. */
    struct yapi *a = r->api_head;
    r->api_head = r->api_tail = NULL;
    while (a != NULL) {
        struct yapi *next = a->next;
        room_api_run(r, a, now);
        yapi_free(a);
        a = next;
    }
    if (r->appends_since_compact >= r->rs->cfg.compact_every && r->rs->submit != NULL)
        room_compact(r);
    room_sweep(r, now);
}

void td_yrooms_store_done(struct td_yrooms *rs, struct td_store_op *op, int64_t now)
{
    (void)rs;
    struct yop *o = op->ud;
    struct yroom *r = o->room;
    r->pending_ops--;
    switch (op->kind) {
    case TD_STORE_OP_DOC_LOAD:
        room_loaded(r, o, now);
        yop_free(o);
        return;
    case TD_STORE_OP_DOC_APPEND:
        o->done = true;
        if (op->status != 0) {
            /* Not durable: do not broadcast; the sender will resend it on reconnect. */
            td_log_error("cannot store yjs update", "room=\"%.*s\" err=\"%s\"",
                         (int)(r->len < 200 ? r->len : 200), r->name, td_strerror(op->status));
            if (o->target != NULL)
                conn_fail(o->target, TD_YROOM_CLOSE_STORE, "store failure");
            td_rbuf_unref(o->msg);
            o->msg = NULL;
            /* The document holds it: make the next compaction persist it. */
            r->appends_since_compact++;
        }
        fifo_drain(r, now);
        break;
    case TD_STORE_OP_DOC_COMPACT:
        if (op->status != 0)
            td_log_error("cannot compact yjs document", "room=\"%.*s\" err=\"%s\"",
                         (int)(r->len < 200 ? r->len : 200), r->name, td_strerror(op->status));
        yop_free(o);
        break;
    default:
        break;
    }
    room_sweep(r, now);
}

/* ---- public API -------------------------------------------------------------------- */

struct td_yrooms *td_yrooms_new(const struct td_yrooms_config *cfg, const struct td_yconn_ops *ops)
{
    struct td_yrooms *rs = td_xcalloc(1, sizeof(*rs));
    rs->cfg = *cfg;
    if (rs->cfg.max_message == 0)
        rs->cfg.max_message = YROOM_DEFAULT_MAX_MESSAGE;
    if (rs->cfg.max_document == 0)
        rs->cfg.max_document = YROOM_DEFAULT_MAX_DOCUMENT;
    if (rs->cfg.compact_every == 0)
        rs->cfg.compact_every = YROOM_DEFAULT_COMPACT_EVERY;
    if (rs->cfg.max_queued == 0)
        rs->cfg.max_queued = YROOM_DEFAULT_MAX_QUEUED;
    rs->ops = *ops;
    td_map_init(&rs->rooms);
    return rs;
}

void td_yrooms_free(struct td_yrooms *rs)
{
    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->rooms.cap; i++) {
        if (rs->rooms.slots[i].key != NULL)
            room_free(rs->rooms.slots[i].value);
    }
    td_map_free(&rs->rooms);
    free(rs);
}

void td_yrooms_set_store(struct td_yrooms *rs, void (*submit)(void *ud, struct td_store_op *op),
                         void *ud)
{
    rs->submit = submit;
    rs->submit_ud = ud;
}

bool td_yrooms_has_store(const struct td_yrooms *rs)
{
    return rs->submit != NULL;
}

void td_yrooms_set_hook(struct td_yrooms *rs, td_yrooms_hook hook, void *ud)
{
    rs->hook = hook;
    rs->hook_ud = ud;
}

/* Creates room name[0..len) (loading: the caller submits the load once it attached what
 * waits for it). */
static struct yroom *room_create(struct td_yrooms *rs, const char *name, size_t len)
{
    struct yroom *r = td_xcalloc(1, sizeof(*r));
    r->rs = rs;
    r->name = td_xmalloc(len + 1);
    memcpy(r->name, name, len);
    r->name[len] = 0;
    r->len = len;
    r->doc = td_ydoc_new(YROOM_SERVER_CLIENT_ID);
    struct td_ydoc_limits lim = {.max_update_bytes = rs->cfg.max_message,
                                 .max_content_bytes = rs->cfg.max_document};
    td_ydoc_set_limits(r->doc, &lim);
    r->state = rs->submit != NULL ? ROOM_LOADING : ROOM_READY;
    td_map_put(&rs->rooms, r->name, r->len, r);
    rs->stats.rooms++;
    return r;
}

struct td_yconn *td_yrooms_join(struct td_yrooms *rs, const char *name, size_t len, void *transport,
                                int64_t now)
{
    struct td_yconn *c = td_xcalloc(1, sizeof(*c));
    c->rs = rs;
    c->transport = transport;
    struct yroom *r = td_map_get(&rs->rooms, name, len);
    bool created = r == NULL;
    if (created)
        r = room_create(rs, name, len);
    c->room = r;
    c->prev = r->tail;
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    r->nconns++;
    rs->stats.conns++;
    r->idle_since = 0;
    if (created && r->state == ROOM_LOADING) {
        struct yop *o = yop_new(r, TD_STORE_OP_DOC_LOAD);
        submit_op(r, o); /* may complete at once (a stopped store) */
        return c;
    }
    if (r->state == ROOM_READY) {
        conn_start(r, c);
        room_sweep(r, now);
    }
    return c;
}

void td_yconn_message(struct td_yconn *c, const uint8_t *p, size_t n, int64_t now)
{
    struct yroom *r = c->room;
    if (r == NULL || c->closed)
        return;
    if (r->state == ROOM_LOADING) {
        size_t cap_bytes = c->rs->cfg.max_message * 2 + 65536;
        if (c->nqueue >= c->rs->cfg.max_queued || c->queued_bytes + n > cap_bytes) {
            conn_fail(c, TD_YROOM_CLOSE_BUSY, "too many messages while the document loads");
            room_sweep(r, now);
            return;
        }
        if (c->nqueue == c->capqueue) {
            c->capqueue = c->capqueue ? c->capqueue * 2 : 4;
            c->queue = td_xrealloc(c->queue, c->capqueue * sizeof(*c->queue));
        }
        c->queue[c->nqueue++] = td_rbuf_from(p, n);
        c->queued_bytes += n;
        return;
    }
    room_handle(r, c, p, n, now);
    room_sweep(r, now);
}

void td_yconn_leave(struct td_yconn *c, int64_t now)
{
    struct yroom *r = c->room;
    if (r != NULL) {
        c->closed = true;
        r->need_sweep = true;
        room_sweep(r, now);
    }
    conn_queue_free(c);
    free(c);
}

void td_yrooms_tick(struct td_yrooms *rs, int64_t now)
{
    /* Rooms to unload are collected first: the map must not change while iterated. */
    struct yroom **gone = NULL;
    size_t ngone = 0;
    for (size_t i = 0; i < rs->rooms.cap; i++) {
        if (rs->rooms.slots[i].key == NULL)
            continue;
        struct yroom *r = rs->rooms.slots[i].value;
        if (r->state != ROOM_READY)
            continue;
        /* awareness timeouts */
        uint64_t *ids = NULL;
        size_t n = 0;
        for (size_t k = 0; k < r->naw; k++) {
            struct aware *a = &r->aw[k];
            if (a->state == NULL || now - a->updated_ms < TD_YROOM_AWARENESS_TIMEOUT_MS)
                continue;
            free(a->state);
            a->state = NULL;
            a->len = 0;
            a->owner = NULL;
            ids = td_xrealloc(ids, (n + 1) * sizeof(*ids));
            ids[n++] = a->client_id;
        }
        aware_broadcast(r, ids, n);
        free(ids);
        room_sweep(r, now);
        if (r->nconns > 0 || rs->submit == NULL)
            continue;
        if (r->appends_since_compact > 0 && r->pending_ops == 0) {
            room_compact(r); /* idle: one snapshot row */
            continue;
        }
        if (r->pending_ops == 0 && r->fifo_head == NULL && r->appends_since_compact == 0 &&
            now - r->idle_since >= rs->cfg.idle_unload_ms) {
            gone = td_xrealloc(gone, (ngone + 1) * sizeof(*gone));
            gone[ngone++] = r;
        }
    }
    for (size_t i = 0; i < ngone; i++) {
        rs->stats.unloads++;
        room_unload(gone[i]);
    }
    free(gone);
}

void td_yrooms_stats(const struct td_yrooms *rs, struct td_yrooms_stats *out)
{
    *out = rs->stats;
}

void td_yconn_set_read_only(struct td_yconn *c, bool read_only)
{
    c->read_only = read_only;
}

/* ---- the server API ---------------------------------------------------------------- */

/* Encodes doc_state's answer for a into out: the update, or with TD_YROOM_STATE_WITH_SV the
 * document's state vector and the update, each as a lib0 varUint8Array. */
static void api_encode_state(const struct td_ydoc *d, const struct yapi *a, struct td_buf *out)
{
    if (!a->with_sv) {
        td_ydoc_encode_state(d, a->has_sv ? &a->sv : NULL, a->version, out);
        return;
    }
    struct td_ysv sv;
    td_ysv_init(&sv);
    td_ydoc_state_vector(d, &sv);
    struct td_buf part;
    td_buf_init(&part);
    td_ysv_encode(&sv, &part);
    td_lib0_write_varuint(out, part.len);
    td_buf_append(out, part.data, part.len);
    td_buf_reset(&part);
    td_ydoc_encode_state(d, a->has_sv ? &a->sv : NULL, a->version, &part);
    td_lib0_write_varuint(out, part.len);
    td_buf_append(out, part.data, part.len);
    td_buf_free(&part);
    td_ysv_free(&sv);
}

/* Answers an API request with out now, or after the appends already in flight. */
static void room_api_answer(struct yroom *r, td_yrooms_api_cb cb, void *ud, struct td_buf *out)
{
    if (r->fifo_head == NULL) {
        cb(ud, 0, out);
        return;
    }
    struct yop *o = td_xcalloc(1, sizeof(*o));
    td_buf_init(&o->op.doc_out);
    td_buf_init(&o->snap);
    o->api_out = *out;
    td_buf_init(out);
    o->room = r;
    o->api_cb = cb;
    o->api_ud = ud;
    o->done = true;
    fifo_push(r, o);
}

static void room_api_run(struct yroom *r, struct yapi *a, int64_t now)
{
    struct td_buf out;
    td_buf_init(&out);
    if (r->nconns == 0)
        r->idle_since = now;
    if (!a->is_update) {
        api_encode_state(r->doc, a, &out);
        room_api_answer(r, a->cb, a->ud, &out);
    } else {
        int rv = td_ydoc_apply(r->doc, a->data, a->len, 1, &out);
        if (rv != 0) {
            r->rs->stats.rejected++;
            td_log_info("yjs API update rejected", "room=\"%.*s\" err=\"%s\"",
                        (int)(r->len < 200 ? r->len : 200), r->name, td_strerror(rv));
            td_buf_reset(&out);
            a->cb(a->ud, rv, &out);
        } else if (out.len == 0) {
            room_api_answer(r, a->cb, a->ud, &out);
        } else {
            r->rs->stats.updates++;
            room_store_append(r, NULL, &out, a->cb, a->ud, a->origin, now);
        }
    }
    td_buf_free(&out);
    room_sweep(r, now);
}

/* Runs a (owned, freed here) in its room, loading the room first if needed. */
static void api_dispatch(struct td_yrooms *rs, const char *name, size_t len, struct yapi *a,
                         int64_t now)
{
    struct yroom *r = td_map_get(&rs->rooms, name, len);
    if (r == NULL && rs->submit == NULL && !a->is_update) {
        /* No store and no room: the state of an empty document, without creating one. */
        struct td_ydoc *d = td_ydoc_new(YROOM_SERVER_CLIENT_ID);
        struct td_buf out;
        td_buf_init(&out);
        api_encode_state(d, a, &out);
        a->cb(a->ud, 0, &out);
        td_buf_free(&out);
        td_ydoc_del(d);
        yapi_free(a);
        return;
    }
    bool created = r == NULL;
    if (created) {
        r = room_create(rs, name, len);
        r->idle_since = now;
    }
    if (r->state == ROOM_READY) {
        room_api_run(r, a, now);
        yapi_free(a);
        return;
    }
    if (r->api_tail != NULL)
        r->api_tail->next = a;
    else
        r->api_head = a;
    r->api_tail = a;
    if (created)
        submit_op(r, yop_new(r, TD_STORE_OP_DOC_LOAD)); /* may complete at once */
}

static void api_fail(td_yrooms_api_cb cb, void *ud, int status)
{
    struct td_buf empty;
    td_buf_init(&empty);
    cb(ud, status, &empty);
}

void td_yrooms_api_state(struct td_yrooms *rs, const char *name, size_t len, const uint8_t *sv,
                         size_t sv_len, bool has_sv, int version, td_yrooms_api_cb cb, void *ud,
                         int64_t now)
{
    bool with_sv = (version & TD_YROOM_STATE_WITH_SV) != 0;
    version &= ~TD_YROOM_STATE_WITH_SV;
    if (len == 0 || len > TD_YROOM_MAX_NAME || (version != 1 && version != 2)) {
        api_fail(cb, ud, TD_EINVAL);
        return;
    }
    struct yapi *a = td_xcalloc(1, sizeof(*a));
    a->version = version;
    a->with_sv = with_sv;
    a->cb = cb;
    a->ud = ud;
    if (has_sv) {
        td_ysv_init(&a->sv);
        a->has_sv = true;
        if (td_ysv_decode(&a->sv, sv, sv_len) != 0) {
            yapi_free(a);
            api_fail(cb, ud, TD_EPROTO);
            return;
        }
    }
    api_dispatch(rs, name, len, a, now);
}

void td_yrooms_api_update(struct td_yrooms *rs, const char *name, size_t len, const uint8_t *update,
                          size_t n, td_yrooms_api_cb cb, void *ud, int64_t now)
{
    td_yrooms_api_update_from(rs, name, len, update, n, NULL, cb, ud, now);
}

void td_yrooms_api_update_from(struct td_yrooms *rs, const char *name, size_t len,
                               const uint8_t *update, size_t n, void *origin, td_yrooms_api_cb cb,
                               void *ud, int64_t now)
{
    if (len == 0 || len > TD_YROOM_MAX_NAME) {
        api_fail(cb, ud, TD_EINVAL);
        return;
    }
    if (n > rs->cfg.max_message) {
        rs->stats.rejected++;
        api_fail(cb, ud, TD_ELIMIT);
        return;
    }
    struct yapi *a = td_xcalloc(1, sizeof(*a));
    a->is_update = true;
    a->data = td_xmalloc(n ? n : 1);
    if (n > 0)
        memcpy(a->data, update, n);
    a->len = n;
    a->cb = cb;
    a->ud = ud;
    a->origin = origin;
    api_dispatch(rs, name, len, a, now);
}

/* ---- tokens ------------------------------------------------------------------------ */

static enum td_yroom_access access_of(const struct td_json *v)
{
    if (v->type != TD_JSON_STRING)
        return TD_YROOM_ACCESS_NONE;
    if (v->len == 2 && memcmp(v->str, "rw", 2) == 0)
        return TD_YROOM_ACCESS_WRITE;
    if (v->len == 1 && v->str[0] == 'r')
        return TD_YROOM_ACCESS_READ;
    return TD_YROOM_ACCESS_NONE;
}

enum td_yroom_access td_yrooms_token_access(const char *token, size_t n, const char *room,
                                            size_t len)
{
    const char *dot1 = memchr(token, '.', n);
    if (dot1 == NULL)
        return TD_YROOM_ACCESS_NONE;
    const char *p = dot1 + 1;
    const char *dot2 = memchr(p, '.', n - (size_t)(p - token));
    if (dot2 == NULL)
        return TD_YROOM_ACCESS_NONE;
    size_t plen = (size_t)(dot2 - p);
    size_t cap = TD_BASE64_DECODED_MAX(plen) + 1;
    uint8_t *json = td_xmalloc(cap);
    int dl = td_base64_decode(p, plen, json, cap);
    enum td_yroom_access acc = TD_YROOM_ACCESS_NONE;
    struct td_json_doc doc;
    if (dl < 0 || td_json_parse(&doc, (const char *)json, (size_t)dl, NULL) != 0) {
        free(json);
        return TD_YROOM_ACCESS_NONE;
    }
    const struct td_json *y = td_json_get(td_json_root(&doc), "yjs");
    if (y == NULL || y->type == TD_JSON_NULL) {
        acc = TD_YROOM_ACCESS_WRITE; /* no claim: the token limits nothing */
    } else if (y->type == TD_JSON_OBJECT) {
        const struct td_json *exact = NULL, *any = NULL;
        for (size_t i = 0; i < y->n; i++) {
            const struct td_json *m = &y->child[i];
            if (m->key_len == len && memcmp(m->key, room, len) == 0)
                exact = m; /* the last duplicate wins, as td_json_get does */
            else if (m->key_len == 1 && m->key[0] == '*')
                any = m;
        }
        if (exact != NULL)
            acc = access_of(exact);
        else if (any != NULL)
            acc = access_of(any);
    } else {
        acc = access_of(y);
    }
    td_json_doc_free(&doc);
    free(json);
    return acc;
}
