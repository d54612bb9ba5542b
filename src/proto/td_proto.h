/*
 * td_proto.h - the Centrifuge client protocol model shared by the JSON and Protobuf codecs.
 *
 * Decoding: a transport frame holds one or more Commands (JSON: objects joined by '\n';
 * Protobuf: varint-length-delimited messages). A struct td_cmd_iter walks a frame and yields
 * struct td_cmd values whose string/bytes fields are views into the frame (the JSON codec
 * unescapes strings in place, so the frame must be writable and outlive the command).
 *
 * Encoding: each td_codec encode function appends ONE complete message unit to a td_buf:
 * JSON appends the bare object (no newline; the transport joins units of one frame with
 * '\n'); Protobuf appends the varint length prefix followed by the message. Result objects
 * are always emitted, even when empty, because the JS client dereferences them.
 *
 * Field names and numbers: ../shared/research/centrifuge-protocol.md section 2.
 */
#ifndef TD_PROTO_H
#define TD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "core/td_str.h"

enum td_cmd_kind {
    TD_CMD_EMPTY = 0, /* no request field: a pong (id 0) or a bad request (id > 0) */
    TD_CMD_CONNECT,
    TD_CMD_SUBSCRIBE,
    TD_CMD_UNSUBSCRIBE,
    TD_CMD_PUBLISH,
    TD_CMD_PRESENCE,
    TD_CMD_PRESENCE_STATS,
    TD_CMD_HISTORY,
    TD_CMD_PING,
    TD_CMD_SEND,
    TD_CMD_RPC,
    TD_CMD_REFRESH,
    TD_CMD_SUB_REFRESH,
};

/* Most server-side subscription positions a connect command carries that are kept. */
#define TD_PROTO_MAX_CONNECT_SUBS 16

/* ConnectRequest.subs entry: where the client was in a server-side subscription. */
struct td_connect_sub {
    struct td_str channel;
    struct td_str epoch;
    uint64_t offset;
    bool recover;
};

/*
 * One decoded Command. Only the fields of `kind` are meaningful; the rest are zero.
 * When a Command carries several request fields, the first one in field-number order
 * wins (as Centrifuge does).
 *
 * Field use by kind:
 *   connect:       token, data, name, version, subs/nsubs (ConnectRequest.subs: the first
 *                  TD_PROTO_MAX_CONNECT_SUBS entries; further ones are validated, not kept)
 *   subscribe:     channel, token, recover, epoch, offset, data, positioned, recoverable,
 *                  join_leave, delta, flag, type (0 stream), has_tf (a tag filter was sent)
 *   unsubscribe:   channel
 *   publish:       channel, data, type (0 regular, 1 map)
 *   presence, presence_stats: channel
 *   history:       channel, limit, has_since + since_offset + since_epoch, reverse
 *   send:          data
 *   rpc:           data, method
 *   refresh:       token
 *   sub_refresh:   channel, token, type
 * `data` is the raw JSON value text for JSON (validated JSON) and raw bytes for Protobuf.
 * `has_data` tells whether the data field was present at all.
 */
struct td_cmd {
    uint32_t id;
    enum td_cmd_kind kind;
    struct td_str channel;
    struct td_str token;
    struct td_str data;
    struct td_str epoch;
    struct td_str name;
    struct td_str version;
    struct td_str method;
    struct td_str delta;
    struct td_str since_epoch;
    uint64_t offset;
    uint64_t since_offset;
    int64_t flag;
    int32_t limit;
    int32_t type;
    bool has_data;
    bool recover;
    bool positioned;
    bool recoverable;
    bool join_leave;
    bool reverse;
    bool has_since;
    bool has_tf;
    uint32_t nsubs;
    struct td_connect_sub subs[TD_PROTO_MAX_CONNECT_SUBS];
};

/* Iterator over the Commands of one frame. `p` is writable (JSON unescapes in place). */
struct td_cmd_iter {
    uint8_t *p;
    size_t len;
    size_t pos;
    const char *error; /* static reason string after a decode error, for the 3501 close */
};

static inline void td_cmd_iter_init(struct td_cmd_iter *it, uint8_t *p, size_t len)
{
    it->p = p;
    it->len = len;
    it->pos = 0;
    it->error = NULL;
}

/* ClientInfo. conn_info / chan_info are raw JSON (JSON codec) or bytes (Protobuf). */
struct td_client_info {
    struct td_str user;
    struct td_str client;
    struct td_str conn_info;
    struct td_str chan_info;
};

/* Publication as put on the wire. info may be NULL (API publishes carry none). */
struct td_publication {
    uint64_t offset;
    struct td_str data;
    const struct td_client_info *info;
    int64_t time; /* Unix ms; 0 = omitted */
};

struct td_connect_sub_result;

struct td_connect_result {
    struct td_str client;
    struct td_str version;
    bool expires;
    uint32_t ttl;
    struct td_str data;
    uint32_t ping;
    bool pong;
    struct td_str session;
    struct td_str node;
    const struct td_connect_sub_result *subs; /* server-side subscriptions (ConnectResult.subs) */
    size_t nsubs;
};

struct td_subscribe_result {
    bool expires;
    uint32_t ttl;
    bool recoverable;
    bool positioned;
    bool recovered;
    bool was_recovering;
    struct td_str epoch; /* emitted when positioned or recoverable */
    uint64_t offset;     /* emitted when positioned or recoverable and non-zero */
    const struct td_publication *pubs;
    size_t npubs;
    struct td_str data;
};

/* One entry of ConnectResult.subs: a server-side subscription and its SubscribeResult. */
struct td_connect_sub_result {
    struct td_str channel;
    struct td_subscribe_result r;
};

struct td_history_result {
    const struct td_publication *pubs;
    size_t npubs;
    struct td_str epoch;
    uint64_t offset;
};

struct td_refresh_result {
    struct td_str client;
    struct td_str version;
    bool expires;
    uint32_t ttl;
};

/*
 * A codec: decoder plus one encoder per Reply shape. Every encoder appends exactly one
 * message unit (see the file comment). Empty results (unsubscribe, publish, sub_refresh
 * without fields...) go through reply_empty with the command kind they answer.
 */
struct td_codec {
    const char *name; /* "json" or "protobuf" */
    bool binary;      /* WebSocket binary frames (protobuf) vs text frames (json) */

    /*
     * decode_next decodes the next Command of the frame. Returns 1 and fills *cmd, 0 at the
     * end of the frame, or TD_EPROTO (it->error says why) for malformed input. An empty
     * frame is malformed. JSON: one optional trailing '\n' is accepted.
     */
    int (*decode_next)(struct td_cmd_iter *it, struct td_cmd *cmd);

    void (*reply_error)(struct td_buf *out, uint32_t id, uint32_t code, const char *message,
                        bool temporary);
    void (*reply_empty)(struct td_buf *out, uint32_t id, enum td_cmd_kind kind);
    void (*reply_connect)(struct td_buf *out, uint32_t id, const struct td_connect_result *r);
    void (*reply_subscribe)(struct td_buf *out, uint32_t id, const struct td_subscribe_result *r);
    void (*reply_presence)(struct td_buf *out, uint32_t id, const struct td_client_info *infos,
                           size_t n);
    void (*reply_presence_stats)(struct td_buf *out, uint32_t id, uint32_t num_clients,
                                 uint32_t num_users);
    void (*reply_history)(struct td_buf *out, uint32_t id, const struct td_history_result *r);
    void (*reply_rpc)(struct td_buf *out, uint32_t id, struct td_str data);
    void (*reply_refresh)(struct td_buf *out, uint32_t id, const struct td_refresh_result *r);

    void (*push_pub)(struct td_buf *out, struct td_str channel, const struct td_publication *pub);
    void (*push_join)(struct td_buf *out, struct td_str channel, const struct td_client_info *info);
    void (*push_leave)(struct td_buf *out, struct td_str channel,
                       const struct td_client_info *info);
    void (*push_unsubscribe)(struct td_buf *out, struct td_str channel, uint32_t code,
                             const char *reason);
    void (*push_message)(struct td_buf *out, struct td_str data);
    void (*push_disconnect)(struct td_buf *out, uint32_t code, const char *reason);
    /* ping appends the empty Reply: "{}" for JSON, 0x00 for Protobuf. */
    void (*ping)(struct td_buf *out);
};

extern const struct td_codec td_codec_json;
extern const struct td_codec td_codec_protobuf;

#endif
