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
 * Channels. A room named like a channel of a namespace with "yjs": true is that channel's
 * document (docs/yjs.md): the hub publishes into the rooms with td_yrooms_api_update_from
 * and republishes, through the rooms hook (td_yrooms_set_hook), every committed update to
 * the channel, so y-websocket connections and channel subscribers share one document.
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

#include <stdbool.h>
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
 * The rooms hook: called once for every update that changed a room's document, whatever its
 * source (a y-websocket connection, td_yrooms_api_update, td_yrooms_api_update_from), once it
 * is committed: with a store after its append committed, right after it was broadcast to the
 * room's connections and before an API callback waiting for it; without a store at once.
 * update[0..n) is the document's own (normalized) v1 update, valid during the call only.
 * origin is what td_yrooms_api_update_from was given (NULL for the other sources), so that a
 * caller can recognise its own updates. An update the document refused, one that changed
 * nothing, or one whose append failed is never reported. The hook must not call back into
 * these rooms.
 */
typedef void (*td_yrooms_hook)(void *ud, const char *room, size_t len, const uint8_t *update,
                               size_t n, void *origin, int64_t now);
/* td_yrooms_has_store tells whether td_yrooms_set_store was called (answers may then come
 * after the call that asked). */
bool td_yrooms_has_store(const struct td_yrooms *rs);
/* td_yrooms_set_hook installs hook (NULL removes it); ud is passed back to it. */
void td_yrooms_set_hook(struct td_yrooms *rs, td_yrooms_hook hook, void *ud);

/*
 * td_yrooms_join attaches a new connection (transport is passed back to the ops) to room
 * name[0..len), creating or loading the room. Returns the connection handle (never NULL);
 * the transport must call td_yconn_leave exactly once when the connection is gone.
 */
struct td_yconn *td_yrooms_join(struct td_yrooms *rs, const char *name, size_t len, void *transport,
                                int64_t now);
/* td_yconn_message handles one binary message p[0..n) from the connection. */
void td_yconn_message(struct td_yconn *c, const uint8_t *p, size_t n, int64_t now);
/*
 * td_yconn_set_read_only makes c read-only (or writable again): its sync step2 and update
 * payloads are not applied; each non-empty one is answered with a y-protocols auth message
 * "permission denied" (reason "read-only connection: ...") and counted in stats.rejected.
 * An empty update (00 00, what a client with nothing new sends as step2) is ignored
 * silently. It still receives updates and awareness, and may send awareness.
 */
void td_yconn_set_read_only(struct td_yconn *c, bool read_only);
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

/*
 * The server API (POST /api/doc_state and /api/doc_update, docs/yjs.md). A request on a
 * room that is not in memory loads it from the store first, so the answer may come later;
 * the room then stays loaded until idle_unload (it has no connections). The callback is
 * called exactly once, possibly before the call returns, with status:
 *   0           success: update holds doc_state's answer (empty for doc_update);
 *   TD_EINVAL   empty or too long room name, or an unknown version;
 *   TD_EPROTO   malformed state vector or update (nothing changed);
 *   TD_ELIMIT   the update is above max_message or would take the document past
 *               max_document (nothing changed);
 *   TD_ESTORE   the room could not be loaded, the append failed (the document holds the
 *               update, as for a client), or the rooms were freed while it waited.
 * update is valid during the call only. The callback may call back into these functions.
 */
typedef void (*td_yrooms_api_cb)(void *ud, int status, const struct td_buf *update);

/*
 * td_yrooms_api_state answers the room's document as one update in `version` (1 or 2): all
 * of it, or, when has_sv, what the holder of the v1 state vector sv[0..sv_len) lacks. With
 * TD_YROOM_STATE_WITH_SV or'ed into version, the answer is the document's v1 state vector
 * then that update, each as a lib0 varUint8Array (length-prefixed), so a caller can also
 * send back only what the server lacks. Like
 * a step2 reply, the answer waits behind appends in flight (it holds only durable state).
 * Without a store, a room not in memory answers an empty document's state and is not
 * created; with a store an unknown room loads as an empty document.
 */
#define TD_YROOM_STATE_WITH_SV 0x100
void td_yrooms_api_state(struct td_yrooms *rs, const char *name, size_t len, const uint8_t *sv,
                         size_t sv_len, bool has_sv, int version, td_yrooms_api_cb cb, void *ud,
                         int64_t now);
/*
 * td_yrooms_api_update applies the v1 update[0..n) to the room's document as a client
 * update would be: validated by applying it, appended to the store, broadcast to the room's
 * connections once committed; the callback comes after that broadcast (or at once, status
 * 0, when the update changes nothing and no append is in flight).
 */
void td_yrooms_api_update(struct td_yrooms *rs, const char *name, size_t len, const uint8_t *update,
                          size_t n, td_yrooms_api_cb cb, void *ud, int64_t now);
/*
 * td_yrooms_api_update_from is td_yrooms_api_update whose committed update reaches the rooms
 * hook with `origin` (channels of "yjs" namespaces publish through this, td_hub.c).
 */
void td_yrooms_api_update_from(struct td_yrooms *rs, const char *name, size_t len,
                               const uint8_t *update, size_t n, void *origin, td_yrooms_api_cb cb,
                               void *ud, int64_t now);

/* What a connection token allows in one room (td_yrooms_token_access). */
enum td_yroom_access {
    TD_YROOM_ACCESS_NONE = 0,
    TD_YROOM_ACCESS_READ,
    TD_YROOM_ACCESS_WRITE,
};
/*
 * td_yrooms_token_access reads tandem's "yjs" claim from the payload of token[0..n), a
 * compact JWS that td_jwt_verify has already accepted (the signature is not checked here),
 * and returns the access it grants to room[0..len):
 *   - no "yjs" claim (or null): WRITE (the token limits nothing);
 *   - "yjs": "r" or "rw": READ or WRITE in every room;
 *   - "yjs": {"ROOM": "r"|"rw", "*": "r"|"rw"}: the entry named exactly as the room, else
 *     the "*" entry; a room in neither: NONE;
 *   - any other value (or an unreadable payload): NONE.
 */
enum td_yroom_access td_yrooms_token_access(const char *token, size_t n, const char *room,
                                            size_t len);

struct td_yrooms_stats {
    uint64_t rooms;       /* rooms in memory */
    uint64_t conns;       /* joined connections */
    uint64_t updates;     /* updates applied that changed a document (clients and API) */
    uint64_t rejected;    /* updates refused: malformed, too large, or from a read-only
                           * connection (clients and API) */
    uint64_t appends;     /* DOC_APPEND submitted */
    uint64_t compactions; /* DOC_COMPACT submitted */
    uint64_t unloads;     /* rooms unloaded */
};
void td_yrooms_stats(const struct td_yrooms *rs, struct td_yrooms_stats *out);

#endif
