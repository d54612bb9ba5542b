/*
 * td_yroom.h - Yjs rooms for y-websocket clients: one shared document per room, the
 * y-protocols sync and awareness exchange, and durable persistence through the store.
 *
 * Design note. A room (named by the URL path after /yjs/, see docs/yjs.md) holds a td_ydoc,
 * its connections and the awareness states of its clients. It behaves as the reference
 * server (@y/websocket-server, y-websocket 1.x/2.x bin/utils):
 *   - on join the server sends sync step1 (its state vector) and, if any awareness states
 *     exist, one awareness message with all of them;
 *   - step1 from a client is answered with step2 (the diff against the client's SV, always
 *     sent, even when empty: the client counts itself synced on the first step2);
 *   - step2 and update payloads are applied to the document; the document's own update
 *     (what td_ydoc_apply reports, not the raw input) goes to every connection of the room,
 *     the sender included; an update that changes nothing is not sent;
 *   - awareness entries are applied with the y-protocols rule (newer clock, or a removal at
 *     the same clock) and the changed entries, re-encoded from the room's state, go to every
 *     connection including the sender (that echo keeps a lone client's 30 s message timeout
 *     from firing); entries a connection set are removed (state null, same clock) when it
 *     leaves, and any entry not renewed for 30 s is removed (y-protocols outdatedTimeout);
 *   - auth, query-awareness and unknown message types are ignored.
 *
 * Durability. With a store (td_yrooms_set_store) a room is loaded with DOC_LOAD when its
 * first connection arrives; messages that arrive meanwhile are queued per connection
 * (bounded). An update is applied to the in-memory document first (this validates it; a
 * rejected update never reaches the store), then DOC_APPEND is submitted and the update is
 * broadcast only when the append completed. Messages that must follow durable state (step2
 * replies, which may contain updates still being written) wait in the same FIFO, so what
 * clients see is always durable and in submission order. Every `compact_every` appends, and
 * once when a room has no connection left, the room's log is replaced by one snapshot
 * (DOC_COMPACT). A room without connections is unloaded after idle_unload_ms. Without a
 * store rooms live in memory for the life of the process (as the reference server does).
 *
 * Close codes (y-websocket >= 3.1 does not reconnect after 4400-4499):
 *   4400 malformed message/update/awareness, 4413 message or document too large,
 *   1011 the store failed, 1013 too many messages queued while the room loads,
 *   1008 too many awareness clients in the room.
 *
 * No I/O: connections are reached through struct td_yconn_ops, the store through a submit
 * callback, and time is always passed in (monotonic ms). Single-threaded.
 */
#ifndef TD_YROOM_H
#define TD_YROOM_H

#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "store/td_store.h"

struct td_yrooms;
struct td_yconn;

/* y-protocols' awareness outdatedTimeout. */
#define TD_YROOM_AWARENESS_TIMEOUT_MS 30000
/* Most awareness clients one room keeps (live and removed). */
#define TD_YROOM_MAX_AWARENESS 4096
/* Longest room name accepted by td_yrooms_join. */
#define TD_YROOM_MAX_NAME 1024

enum {
    TD_YROOM_CLOSE_MALFORMED = 4400,
    TD_YROOM_CLOSE_TOO_LARGE = 4413,
    TD_YROOM_CLOSE_STORE = 1011,
    TD_YROOM_CLOSE_BUSY = 1013,
    TD_YROOM_CLOSE_POLICY = 1008,
};

struct td_yconn_ops {
    /*
     * send queues one binary WebSocket message holding msg (taking a reference). Returns 0,
     * or a negative error when the connection cannot take it (output cap): the transport has
     * then started closing it. Must not call td_yconn_leave.
     */
    int (*send)(void *transport, struct td_rbuf *msg);
    /* close starts closing the connection with a WebSocket close code and reason. Must not
     * call td_yconn_leave (the transport calls it later, when the connection is gone). */
    void (*close)(void *transport, uint16_t code, const char *reason);
};

struct td_yrooms_config {
    size_t max_message;     /* largest y-protocols message accepted (0 = 8 MiB) */
    size_t max_document;    /* content bytes of one document (0 = 64 MiB) */
    uint32_t compact_every; /* appends between compactions (0 = 500) */
    int64_t idle_unload_ms; /* unload a room this long after its last connection left */
    uint32_t max_queued;    /* messages a connection may queue while its room loads (0 = 256) */
};

/* td_yrooms_new creates an empty set of rooms; cfg and ops are copied. */
struct td_yrooms *td_yrooms_new(const struct td_yrooms_config *cfg, const struct td_yconn_ops *ops);
/*
 * td_yrooms_free frees every room and every connection handle still joined (the transport
 * must not use them afterwards). Call once no store operation is outstanding (after the
 * store worker stopped and delivered everything).
 */
void td_yrooms_free(struct td_yrooms *rs);
/*
 * td_yrooms_set_store makes rooms durable: submit(ud, op) hands an operation to the store,
 * whose completion must come back, in submission order, through td_yrooms_store_done
 * (possibly from inside submit). Set it before the first join.
 */
void td_yrooms_set_store(struct td_yrooms *rs, void (*submit)(void *ud, struct td_store_op *op),
                         void *ud);

/*
 * td_yrooms_join attaches a new connection (transport is passed back to the ops) to room
 * name[0..len), creating or loading the room. Returns the connection handle (never NULL);
 * the transport must call td_yconn_leave exactly once when the connection is gone.
 */
struct td_yconn *td_yrooms_join(struct td_yrooms *rs, const char *name, size_t len, void *transport,
                                int64_t now);
/* td_yconn_message handles one binary message p[0..n) from the connection. */
void td_yconn_message(struct td_yconn *c, const uint8_t *p, size_t n, int64_t now);
/* td_yconn_leave detaches the connection (its awareness states are removed and the removal
 * is broadcast) and frees the handle. */
void td_yconn_leave(struct td_yconn *c, int64_t now);

/* td_yrooms_store_done takes back a finished operation that a room submitted. */
void td_yrooms_store_done(struct td_yrooms *rs, struct td_store_op *op, int64_t now);
/*
 * td_yrooms_tick runs timers: awareness timeouts, compaction of idle rooms, unloading.
 * Call about once a second.
 */
void td_yrooms_tick(struct td_yrooms *rs, int64_t now);

struct td_yrooms_stats {
    uint64_t rooms;       /* rooms in memory */
    uint64_t conns;       /* joined connections */
    uint64_t appends;     /* DOC_APPEND submitted */
    uint64_t compactions; /* DOC_COMPACT submitted */
    uint64_t unloads;     /* rooms unloaded */
};
void td_yrooms_stats(const struct td_yrooms *rs, struct td_yrooms_stats *out);

#endif
