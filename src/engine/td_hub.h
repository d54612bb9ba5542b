/*
 * td_hub.h - channels, subscriptions, presence and fan-out; the Centrifuge client protocol.
 *
 * Design note. The hub owns every channel and every client session; it does no I/O. A
 * client is attached to a transport through struct td_transport_ops: the hub hands the
 * transport complete message units (td_rbuf) and asks it to close; the transport feeds the
 * hub the frames it received (td_client_on_frame) and tells it when the peer is gone
 * (td_client_free). Time is always passed in (ms, monotonic), so the whole protocol runs in
 * unit tests without sockets or sleeps.
 *
 * Client states: NEW (only connect accepted) -> CONNECTED -> CLOSED (transport asked to
 * close; the client stays allocated until the transport calls td_client_free, so nothing is
 * freed inside a callback that is still using it).
 *
 * Fan-out: a publication is encoded once per codec into a refcounted unit, and every
 * subscriber's transport queues a reference to it. Nothing is allocated per subscriber.
 */
#ifndef TD_HUB_H
#define TD_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/td_config.h"
#include "core/td_buf.h"
#include "core/td_map.h"
#include "engine/td_stream.h"
#include "proto/td_proto.h"
#include "store/td_store.h"

struct td_client;
struct td_client_pending;
struct td_hub;
struct td_jwt_keys;
struct td_yrooms;

struct td_transport_ops {
    /*
     * send queues one frame holding `unit` (one message unit, or several joined as the codec
     * requires) and takes a reference to it. Returns 0, or TD_ELIMIT when the connection's
     * output cap is exceeded: the transport has then already started closing with 3008.
     */
    int (*send)(void *transport, struct td_rbuf *unit);
    /* close ends the session with a disconnect code and reason (may be called repeatedly). */
    void (*close)(void *transport, uint32_t code, const char *reason);
    /*
     * send_datagram (optional, NULL if the transport has none) sends a publication push of
     * a channel whose namespace has "datagrams": true as one unreliable datagram. Returns
     * 0 when it went (or was dropped as datagrams may be), nonzero when the transport cannot
     * carry it as a datagram (too large, no datagram support): the hub then uses send.
     */
    int (*send_datagram)(void *transport, struct td_rbuf *unit);
};

/* Disconnect codes (section 4.3) and error codes (section 4.1) used by the hub. */
enum {
    TD_DISC_SHUTDOWN = 3001,
    TD_DISC_EXPIRED = 3005,
    TD_DISC_SLOW = 3008,
    TD_DISC_INSUFFICIENT_STATE = 3010,
    TD_DISC_FORCE_RECONNECT = 3011,
    TD_DISC_NO_PONG = 3012,
    TD_DISC_INVALID_TOKEN = 3500,
    TD_DISC_BAD_REQUEST = 3501,
    TD_DISC_STALE = 3502,
    TD_DISC_FORCE_DISCONNECT = 3503,
    TD_DISC_CONNECTION_LIMIT = 3504,
    TD_DISC_CHANNEL_LIMIT = 3505,
    TD_DISC_INAPPROPRIATE_PROTOCOL = 3506,
    TD_DISC_NOT_AVAILABLE = 3508,
};
enum {
    TD_ERR_INTERNAL = 100,
    TD_ERR_UNAUTHORIZED = 101,
    TD_ERR_UNKNOWN_CHANNEL = 102,
    TD_ERR_PERMISSION_DENIED = 103,
    TD_ERR_METHOD_NOT_FOUND = 104,
    TD_ERR_ALREADY_SUBSCRIBED = 105,
    TD_ERR_LIMIT_EXCEEDED = 106,
    TD_ERR_BAD_REQUEST = 107,
    TD_ERR_NOT_AVAILABLE = 108,
    TD_ERR_TOKEN_EXPIRED = 109,
    TD_ERR_EXPIRED = 110,
    TD_ERR_TOO_MANY_REQUESTS = 111,
    TD_ERR_UNRECOVERABLE_POSITION = 112,
};
/* td_hub_error_message returns the standard message for an error code. */
const char *td_hub_error_message(uint32_t code);

struct td_channel;

/* One client's subscription to one channel. */
struct td_sub {
    struct td_client *client;
    struct td_channel *ch;
    uint32_t idx; /* position in ch->subs */
    bool push_join_leave;
    char *chan_info; /* raw JSON "info" of the subscription token, NULL if none (owned) */
};

struct td_channel {
    char *name;
    size_t name_len;
    const struct td_ns_opts *ns;
    bool has_history;
    struct td_stream stream;
    struct td_sub **subs;
    uint32_t nsubs;
    uint32_t capsubs;
    uint32_t n_json_subs;
    uint32_t n_pb_subs;
    int64_t idle_since_ms; /* when the last subscriber left (0 while subscribed) */
    struct td_map idem;    /* idempotency key -> remembered publish result (memory mode) */
    bool durable;          /* history lives in the durable store (never for "yjs" namespaces) */
    uint32_t npending;     /* store operations and Yjs publishes in flight; kept while > 0 */
};

enum td_client_state { TD_CLIENT_NEW, TD_CLIENT_CONNECTED, TD_CLIENT_CLOSED };

struct td_client {
    struct td_hub *hub;
    const struct td_codec *codec;
    const struct td_transport_ops *tops;
    void *transport;
    enum td_client_state state;
    char id[37];
    char *user;           /* td_client_anonymous ("") or an owned copy */
    char *conn_info;      /* raw JSON "info" of the connection token, NULL if none (owned) */
    int64_t expires_at_s; /* connection token expiry (Unix s), 0 = never */
    struct td_sub **subs;
    uint32_t nsubs;
    uint32_t capsubs;
    int64_t created_ms;
    int64_t next_ping_ms;              /* 0 = pings off */
    int64_t pong_due_ms;               /* 0 = no pong outstanding */
    int64_t rate_tokens;               /* command budget in thousandths of a command */
    int64_t rate_last_ms;              /* when rate_tokens was last refilled */
    struct td_client_pending *pending; /* publishes waiting for the store (td_client.c) */
    /* Emulation transports (HTTP-streaming, SSE) set this after td_client_new: the connect
     * reply then carries it as ConnectResult.session, with the hub's node id as .node.
     * Borrowed from the transport; NULL for WebSocket. */
    const char *session;
};

struct td_hub_stats {
    uint64_t publications;
    uint64_t deliveries;
    uint64_t slow_disconnects;
    uint64_t subscriptions; /* current, not a total */
    uint64_t store_pending; /* store operations in flight */
    uint64_t store_failures;
};

/*
 * The durable store, seen from the hub: submit hands an operation to the store's worker
 * (ownership passes until the server calls td_hub_store_done with it, on the loop thread, in
 * submission order).
 */
struct td_hub_store {
    void (*submit)(void *ud, struct td_store_op *op);
    void *ud;
};

struct td_hub {
    const struct td_config *cfg;
    struct td_map channels; /* name -> struct td_channel */
    struct td_map clients;  /* client id -> struct td_client (connected ones) */
    uint32_t nclients;      /* all attached clients, connected or not */
    struct td_buf scratch;
    struct td_hub_stats stats;
    char node_id[37];
    struct td_jwt_keys *keys;  /* token verification keys, NULL if none configured (owned) */
    int64_t (*wall_s)(void);   /* wall clock in Unix seconds, for token expiry (tests override) */
    int64_t (*wall_ms)(void);  /* wall clock in Unix ms, for stored publication times */
    struct td_hub_store store; /* submit == NULL: every channel keeps history in memory only */
    struct td_yrooms *yrooms;  /* the documents of "yjs" channels (td_hub_set_yrooms), or NULL */
};

/* td_hub_init prepares an empty hub; cfg is borrowed and must outlive it. */
void td_hub_init(struct td_hub *hub, const struct td_config *cfg);
/*
 * td_hub_set_yrooms makes rs (borrowed; free it before the hub) the home of the documents of
 * the channels of "yjs" namespaces, and installs the hub as rs's hook (td_yrooms_set_hook):
 *   - a publish into such a channel `ns:R` decodes the data (td_ydocchan_decode) and hands
 *     the update to room `ns:R` (td_yrooms_api_update_from); the room validates, stores and
 *     broadcasts it to its y-websocket connections;
 *   - every update a room commits that changed its document (from a y-websocket connection,
 *     doc_update, or a channel publish) is published, once, into the channel of the same
 *     name if its namespace has "yjs" and the channel has state in the hub (no state means
 *     nobody can be following it); the publication data is td_ydocchan_encode of the update,
 *     and a publish that came from the channel answers with that publication's offset.
 * Without rooms (NULL, the default) a publish into a "yjs" channel fails with TD_EINVAL.
 */
void td_hub_set_yrooms(struct td_hub *hub, struct td_yrooms *rs);
/* td_hub_free frees all channels; clients must have been freed by their transports. */
void td_hub_free(struct td_hub *hub);
/* td_hub_tick expires history and forgets idle channels; returns the next deadline (ms). */
int64_t td_hub_tick(struct td_hub *hub, int64_t now_ms);

/* td_client_new attaches a client for a transport; the client starts in NEW. */
struct td_client *td_client_new(struct td_hub *hub, const struct td_codec *codec,
                                const struct td_transport_ops *tops, void *transport,
                                int64_t now_ms);
/* td_client_free unsubscribes everything (leave pushes) and frees; called by the transport. */
void td_client_free(struct td_client *c, int64_t now_ms);
/*
 * td_client_on_frame handles one received transport frame (frame is writable; commands are
 * decoded in place). Replies go out through the transport as one frame. Protocol violations
 * close the client with the matching disconnect code.
 */
void td_client_on_frame(struct td_client *c, uint8_t *frame, size_t len, int64_t now_ms);
/* td_client_tick sends pings, enforces pong and stale timeouts; returns the next deadline. */
int64_t td_client_tick(struct td_client *c, int64_t now_ms);
/* td_client_disconnect closes the client with a code (server side initiative). */
void td_client_disconnect(struct td_client *c, uint32_t code, const char *reason);

/* Results of publish through the server API. */
struct td_publish_result {
    uint64_t offset;
    char epoch[TD_EPOCH_LEN + 1];
};

/*
 * td_hub_publish stores (if the channel keeps history) and fans out a publication. info may
 * be NULL. Returns 0, TD_ENOTFOUND for an unknown namespace.
 */
int td_hub_publish(struct td_hub *hub, struct td_str channel, struct td_str data,
                   const struct td_client_info *info, int64_t now_ms,
                   struct td_publish_result *res);

/* Most idempotency keys remembered per channel at once (a cap on what API callers grow). */
#define TD_HUB_IDEM_MAX_KEYS 100000

/*
 * td_hub_publish_idem is td_hub_publish with an idempotency key (may be empty): a publish
 * with a key seen in this channel within channel.idempotency_window returns the original
 * result and publishes nothing. Returns 0, TD_ENOTFOUND, or TD_ELIMIT when the channel
 * already remembers TD_HUB_IDEM_MAX_KEYS live keys; TD_EAGAIN for a channel that only
 * publishes asynchronously (durable history, or "yjs" with rooms that have a store); the
 * errors of td_hub_publish_async for a "yjs" channel.
 */
int td_hub_publish_idem(struct td_hub *hub, struct td_str channel, struct td_str data,
                        const struct td_client_info *info, struct td_str idem_key, int64_t now_ms,
                        struct td_publish_result *res);

/* Completion of an asynchronous publish: status 0 and res, or a negative error code. */
typedef void (*td_hub_publish_cb)(void *ud, int status, const struct td_publish_result *res);

/*
 * td_hub_publish_async publishes like td_hub_publish_idem, but in a channel whose history is
 * durable the publication gets its offset from the store, and is fanned out and reported
 * only after its commit. Returns 0 when accepted: cb is then called exactly once, possibly
 * before this returns (memory channels, idempotent retries). Returns TD_ENOTFOUND, TD_ELIMIT,
 * TD_EPROTO (a "yjs" channel: the data is not an update, td_ydocchan.h) or TD_EINVAL (a "yjs"
 * channel without rooms) without calling cb. data and info are copied.
 *
 * In a "yjs" channel (td_hub_set_yrooms) the result comes once the room committed the update
 * (it may have to load first): status 0 with the offset of the publication made from it, or
 * offset 0 when the update changed nothing (nothing is published); TD_EPROTO when the room
 * refused it (malformed, too large: nothing stored or published); TD_ESTORE when the room
 * could not load or store it. An idempotency key is ignored there: a repeated update changes
 * nothing, so a retry publishes nothing.
 */
int td_hub_publish_async(struct td_hub *hub, struct td_str channel, struct td_str data,
                         const struct td_client_info *info, struct td_str idem_key, int64_t now_ms,
                         td_hub_publish_cb cb, void *ud);

/* td_hub_channel_publish is td_hub_publish_async into a channel the caller already has. */
int td_hub_channel_publish(struct td_hub *hub, struct td_channel *ch, struct td_str data,
                           const struct td_client_info *info, struct td_str idem_key,
                           int64_t now_ms, td_hub_publish_cb cb, void *ud);

/* td_hub_store_done finishes an operation the store completed (loop thread, FIFO order). */
void td_hub_store_done(struct td_hub *hub, struct td_store_op *op, int64_t now_ms);

/* td_hub_history_remove drops ch's history (and, if durable, its stored history). */
void td_hub_history_remove(struct td_hub *hub, struct td_channel *ch);

/*
 * Restoring from the store at startup: td_hub_restore_channel recreates a durable channel
 * with its stored epoch and top offset (ignored if its namespace is gone or no longer keeps
 * durable history) and returns it, or NULL if it was skipped; td_hub_restore_pub appends
 * one stored publication (in offset order) to such a channel. Times are wall-clock ms.
 */
struct td_channel *td_hub_restore_channel(struct td_hub *hub, struct td_str name, const char *epoch,
                                          uint64_t top, int64_t last_pub_wall_ms, int64_t now_ms);
void td_hub_restore_pub(struct td_hub *hub, struct td_channel *ch, uint64_t offset, int64_t wall_ms,
                        struct td_str data, const struct td_client_info *info, int64_t now_ms);

/* td_hub_channel finds a channel without creating it (NULL if it has no state). */
struct td_channel *td_hub_channel(struct td_hub *hub, struct td_str name);
/* td_hub_channel_get finds or creates channel state; NULL for an unknown namespace. */
struct td_channel *td_hub_channel_get(struct td_hub *hub, struct td_str name, int64_t now_ms);
/* td_channel_num_users counts distinct users among subscribers. */
uint32_t td_channel_num_users(const struct td_channel *ch);
/* td_hub_unsubscribe removes client's subscription to ch with an unsubscribe push. */
void td_hub_unsubscribe(struct td_hub *hub, struct td_client *c, struct td_str channel,
                        uint32_t code, const char *reason, int64_t now_ms);

/* td_client_info_fill describes c (and its subscription s, may be NULL) as a ClientInfo;
 * the views borrow from c and s. */
void td_client_info_fill(const struct td_client *c, const struct td_sub *s,
                         struct td_client_info *info);

/* The user id of anonymous clients; never freed. */
extern const char td_client_anonymous[1];

/* Internal to the engine (td_hub.c <-> td_client.c). */
int td_client_send_buf(struct td_client *c, const struct td_buf *b);
struct td_sub *td_client_find_sub(const struct td_client *c, struct td_str channel);
struct td_sub *td_hub_sub_add(struct td_client *c, struct td_channel *ch, bool push_join_leave,
                              char *chan_info);
void td_hub_sub_leave(struct td_hub *hub, struct td_sub *s, int64_t now_ms);
void td_hub_push_join_leave(struct td_hub *hub, struct td_channel *ch,
                            const struct td_client *about, const struct td_sub *about_sub,
                            bool join);

#endif
