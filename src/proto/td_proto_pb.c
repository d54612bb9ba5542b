/*
 * td_proto_pb.c - the Protobuf codec of the Centrifuge client protocol (td_codec_protobuf).
 *
 * Hand-written against client.proto's field numbers (see td_proto.h for the model and
 * ../shared/research/centrifuge-protocol.md section 2 for the tables).
 *
 * Decoding is strict: a known field with the wrong wire type, a truncated value, an overlong
 * varint or invalid UTF-8 in a string field fails the whole frame (the caller closes with
 * 3501). Unknown fields are skipped, except groups, which no Centrifuge message uses. Only
 * three levels are ever parsed (Command > request > HistoryRequest.since); deeper messages
 * (tf, subs, headers) are skipped as opaque bytes, so there is no recursion to cap.
 *
 * Encoding writes proto3 style (zero scalars omitted) but always emits result and info
 * sub-messages. push_pub is built once per publication and shared by every subscriber, so it
 * computes sizes first and writes every byte once; the other replies write bodies and patch
 * their length prefixes (td_pb_begin/td_pb_end).
 */
#include "proto/td_proto.h"

#include <string.h>

#include "core/td_err.h"
#include "core/td_utf8.h"
#include "proto/td_pb.h"

/* ---- decoding ---- */

/* Command field numbers 4..15 are the request messages. */
enum { CMD_ID = 1, CMD_FIRST_REQ = 4, CMD_LAST_REQ = 15 };

static const enum td_cmd_kind pb_cmd_kinds[CMD_LAST_REQ + 1] = {
    [4] = TD_CMD_CONNECT,  [5] = TD_CMD_SUBSCRIBE, [6] = TD_CMD_UNSUBSCRIBE,
    [7] = TD_CMD_PUBLISH,  [8] = TD_CMD_PRESENCE,  [9] = TD_CMD_PRESENCE_STATS,
    [10] = TD_CMD_HISTORY, [11] = TD_CMD_PING,     [12] = TD_CMD_SEND,
    [13] = TD_CMD_RPC,     [14] = TD_CMD_REFRESH,  [15] = TD_CMD_SUB_REFRESH,
};

/* Decode helpers return NULL on success or a static reason for the 3501 close. */
static const char *const PB_ERR_TAG = "protobuf: bad field tag";
static const char *const PB_ERR_WIRE = "protobuf: wrong wire type";
static const char *const PB_ERR_VALUE = "protobuf: truncated or overlong value";
static const char *const PB_ERR_UTF8 = "protobuf: invalid UTF-8 in string field";

static const char *pb_get_u64(struct td_pb_cur *c, enum td_pb_wire w, uint64_t *out)
{
    if (w != TD_PB_VARINT)
        return PB_ERR_WIRE;
    return td_pb_read_varint(c, out) == 0 ? NULL : PB_ERR_VALUE;
}

static const char *pb_get_bool(struct td_pb_cur *c, enum td_pb_wire w, bool *out)
{
    uint64_t v;
    const char *e = pb_get_u64(c, w, &v);
    if (e == NULL)
        *out = v != 0;
    return e;
}

/* int32 on the wire is sign-extended to 64 bits; like protobuf, keep the low 32 bits. */
static const char *pb_get_i32(struct td_pb_cur *c, enum td_pb_wire w, int32_t *out)
{
    uint64_t v;
    const char *e = pb_get_u64(c, w, &v);
    if (e == NULL)
        *out = (int32_t)(uint32_t)v;
    return e;
}

static const char *pb_get_bytes(struct td_pb_cur *c, enum td_pb_wire w, struct td_str *out)
{
    const uint8_t *p;
    size_t n;
    if (w != TD_PB_LEN)
        return PB_ERR_WIRE;
    if (td_pb_read_len(c, &p, &n) != 0)
        return PB_ERR_VALUE;
    out->p = (const char *)p;
    out->n = n;
    return NULL;
}

static const char *pb_get_str(struct td_pb_cur *c, enum td_pb_wire w, struct td_str *out)
{
    struct td_str s;
    const char *e = pb_get_bytes(c, w, &s);
    if (e != NULL)
        return e;
    if (!td_utf8_valid((const uint8_t *)s.p, s.n))
        return PB_ERR_UTF8;
    *out = s;
    return NULL;
}

static const char *pb_get_data(struct td_pb_cur *c, enum td_pb_wire w, struct td_cmd *cmd)
{
    const char *e = pb_get_bytes(c, w, &cmd->data);
    if (e == NULL)
        cmd->has_data = true;
    return e;
}

/* A field we know but do not keep: check its wire type, then skip it. */
static const char *pb_skip_as(struct td_pb_cur *c, enum td_pb_wire w, enum td_pb_wire want)
{
    if (w != want)
        return PB_ERR_WIRE;
    return td_pb_skip(c, w) == 0 ? NULL : PB_ERR_VALUE;
}

static const char *pb_skip_str(struct td_pb_cur *c, enum td_pb_wire w)
{
    struct td_str s;
    return pb_get_str(c, w, &s);
}

static const char *pb_skip_unknown(struct td_pb_cur *c, enum td_pb_wire w)
{
    if (w == TD_PB_SGROUP || w == TD_PB_EGROUP)
        return "protobuf: groups are not supported";
    return td_pb_skip(c, w) == 0 ? NULL : PB_ERR_VALUE;
}

/* SubscribeRequest inside a ConnectRequest.subs entry: only the position matters. */
static const char *pb_dec_connect_sub_req(const uint8_t *p, size_t n, struct td_connect_sub *s)
{
    struct td_pb_cur c;
    td_pb_cur_init(&c, p, n);
    while (c.p < c.end) {
        uint32_t f;
        enum td_pb_wire w;
        const char *e;
        if (td_pb_read_tag(&c, &f, &w) != 0)
            return PB_ERR_TAG;
        if (f == 3)
            e = pb_get_bool(&c, w, &s->recover);
        else if (f == 6)
            e = pb_get_str(&c, w, &s->epoch);
        else if (f == 7)
            e = pb_get_u64(&c, w, &s->offset);
        else
            e = pb_skip_unknown(&c, w);
        if (e != NULL)
            return e;
    }
    return NULL;
}

/* One ConnectRequest.subs map entry {key=1 channel, value=2 SubscribeRequest}. */
static const char *pb_dec_connect_sub(struct td_pb_cur *c, enum td_pb_wire w, struct td_cmd *cmd)
{
    struct td_str entry;
    const char *e = pb_get_bytes(c, w, &entry);
    if (e != NULL)
        return e;
    struct td_connect_sub s;
    memset(&s, 0, sizeof(s));
    struct td_pb_cur ec;
    td_pb_cur_init(&ec, (const uint8_t *)entry.p, entry.n);
    while (ec.p < ec.end) {
        uint32_t f;
        enum td_pb_wire fw;
        if (td_pb_read_tag(&ec, &f, &fw) != 0)
            return PB_ERR_TAG;
        if (f == 1) {
            e = pb_get_str(&ec, fw, &s.channel);
        } else if (f == 2) {
            struct td_str v;
            e = pb_get_bytes(&ec, fw, &v);
            if (e == NULL)
                e = pb_dec_connect_sub_req((const uint8_t *)v.p, v.n, &s);
        } else {
            e = pb_skip_unknown(&ec, fw);
        }
        if (e != NULL)
            return e;
    }
    if (cmd->nsubs < TD_PROTO_MAX_CONNECT_SUBS)
        cmd->subs[cmd->nsubs++] = s;
    return NULL;
}

static const char *pb_dec_connect(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                  struct td_cmd *cmd)
{
    switch (f) {
    case 1:
        return pb_get_str(c, w, &cmd->token);
    case 2:
        return pb_get_data(c, w, cmd);
    case 3: /* subs: positions in server-side subscriptions, for their recovery */
        return pb_dec_connect_sub(c, w, cmd);
    case 6: /* headers: emulated headers, used only by proxies */
        return pb_skip_as(c, w, TD_PB_LEN);
    case 4:
        return pb_get_str(c, w, &cmd->name);
    case 5:
        return pb_get_str(c, w, &cmd->version);
    case 7: /* flag: dictionary compression, never enabled */
        return pb_skip_as(c, w, TD_PB_VARINT);
    case 8: /* dict */
    case 9: /* profile */
        return pb_skip_str(c, w);
    default:
        return pb_skip_unknown(c, w);
    }
}

static const char *pb_dec_subscribe(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                    struct td_cmd *cmd)
{
    uint64_t v;
    const char *e;
    switch (f) {
    case 1:
        return pb_get_str(c, w, &cmd->channel);
    case 2:
        return pb_get_str(c, w, &cmd->token);
    case 3:
        return pb_get_bool(c, w, &cmd->recover);
    case 6:
        return pb_get_str(c, w, &cmd->epoch);
    case 7:
        return pb_get_u64(c, w, &cmd->offset);
    case 8:
        return pb_get_data(c, w, cmd);
    case 9:
        return pb_get_bool(c, w, &cmd->positioned);
    case 10:
        return pb_get_bool(c, w, &cmd->recoverable);
    case 11:
        return pb_get_bool(c, w, &cmd->join_leave);
    case 12:
        return pb_get_str(c, w, &cmd->delta);
    case 13: /* tf: tag filter; the caller only needs to know one was sent */
        e = pb_skip_as(c, w, TD_PB_LEN);
        if (e == NULL)
            cmd->has_tf = true;
        return e;
    case 14:
        e = pb_get_u64(c, w, &v);
        if (e == NULL)
            cmd->flag = (int64_t)v;
        return e;
    case 15:
        return pb_get_i32(c, w, &cmd->type);
    case 16: /* phase */
    case 18: /* limit */
    case 19: /* asc */
        return pb_skip_as(c, w, TD_PB_VARINT);
    case 17: /* cursor */
        return pb_skip_str(c, w);
    default:
        return pb_skip_unknown(c, w);
    }
}

static const char *pb_dec_channel_only(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                       struct td_cmd *cmd)
{
    if (f == 1)
        return pb_get_str(c, w, &cmd->channel);
    return pb_skip_unknown(c, w);
}

static const char *pb_dec_publish(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                  struct td_cmd *cmd)
{
    switch (f) {
    case 1:
        return pb_get_str(c, w, &cmd->channel);
    case 2:
        return pb_get_data(c, w, cmd);
    case 3:
        return pb_get_i32(c, w, &cmd->type);
    case 4: /* key (map publish) */
        return pb_skip_str(c, w);
    case 5: /* removed (map publish) */
        return pb_skip_as(c, w, TD_PB_VARINT);
    default:
        return pb_skip_unknown(c, w);
    }
}

/* StreamPosition inside HistoryRequest.since. */
static const char *pb_dec_since(const uint8_t *p, size_t n, struct td_cmd *cmd)
{
    struct td_pb_cur c;
    td_pb_cur_init(&c, p, n);
    while (c.p < c.end) {
        uint32_t f;
        enum td_pb_wire w;
        const char *e;
        if (td_pb_read_tag(&c, &f, &w) != 0)
            return PB_ERR_TAG;
        if (f == 1)
            e = pb_get_u64(&c, w, &cmd->since_offset);
        else if (f == 2)
            e = pb_get_str(&c, w, &cmd->since_epoch);
        else
            e = pb_skip_unknown(&c, w);
        if (e != NULL)
            return e;
    }
    cmd->has_since = true;
    return NULL;
}

static const char *pb_dec_history(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                  struct td_cmd *cmd)
{
    struct td_str since;
    const char *e;
    switch (f) {
    case 1:
        return pb_get_str(c, w, &cmd->channel);
    case 7:
        return pb_get_i32(c, w, &cmd->limit);
    case 8:
        e = pb_get_bytes(c, w, &since);
        if (e != NULL)
            return e;
        return pb_dec_since((const uint8_t *)since.p, since.n, cmd);
    case 9:
        return pb_get_bool(c, w, &cmd->reverse);
    default:
        return pb_skip_unknown(c, w);
    }
}

static const char *pb_dec_send(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                               struct td_cmd *cmd)
{
    if (f == 1)
        return pb_get_data(c, w, cmd);
    return pb_skip_unknown(c, w);
}

static const char *pb_dec_rpc(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                              struct td_cmd *cmd)
{
    if (f == 1)
        return pb_get_data(c, w, cmd);
    if (f == 2)
        return pb_get_str(c, w, &cmd->method);
    return pb_skip_unknown(c, w);
}

static const char *pb_dec_refresh(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                  struct td_cmd *cmd)
{
    if (f == 1)
        return pb_get_str(c, w, &cmd->token);
    return pb_skip_unknown(c, w);
}

static const char *pb_dec_sub_refresh(struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                      struct td_cmd *cmd)
{
    switch (f) {
    case 1:
        return pb_get_str(c, w, &cmd->channel);
    case 2:
        return pb_get_str(c, w, &cmd->token);
    case 3:
        return pb_get_i32(c, w, &cmd->type);
    default: /* track / untrack (shared poll) */
        return pb_skip_unknown(c, w);
    }
}

/* Decodes field f of the request message carried in Command field req. */
static const char *pb_dec_field(uint32_t req, struct td_pb_cur *c, uint32_t f, enum td_pb_wire w,
                                struct td_cmd *cmd)
{
    switch (req) {
    case 4:
        return pb_dec_connect(c, f, w, cmd);
    case 5:
        return pb_dec_subscribe(c, f, w, cmd);
    case 6: /* unsubscribe */
    case 8: /* presence */
    case 9: /* presence_stats */
        return pb_dec_channel_only(c, f, w, cmd);
    case 7:
        return pb_dec_publish(c, f, w, cmd);
    case 10:
        return pb_dec_history(c, f, w, cmd);
    case 12:
        return pb_dec_send(c, f, w, cmd);
    case 13:
        return pb_dec_rpc(c, f, w, cmd);
    case 14:
        return pb_dec_refresh(c, f, w, cmd);
    case 15:
        return pb_dec_sub_refresh(c, f, w, cmd);
    case 11: /* ping: an empty message */
    default:
        return pb_skip_unknown(c, w);
    }
}

/* Decodes one request message (Command field f) into cmd; repeated occurrences merge. */
static const char *pb_dec_request(uint32_t f, const uint8_t *p, size_t n, struct td_cmd *cmd)
{
    struct td_pb_cur c;
    td_pb_cur_init(&c, p, n);
    cmd->kind = pb_cmd_kinds[f];
    while (c.p < c.end) {
        uint32_t field;
        enum td_pb_wire w;
        if (td_pb_read_tag(&c, &field, &w) != 0)
            return PB_ERR_TAG;
        const char *e = pb_dec_field(f, &c, field, w, cmd);
        if (e != NULL)
            return e;
    }
    return NULL;
}

/*
 * Decodes one Command body. The request field with the lowest number wins; the others are
 * still parsed (into a scratch command) so that malformed input anywhere fails the frame.
 */
static const char *pb_dec_command(const uint8_t *p, size_t n, struct td_cmd *cmd)
{
    struct td_pb_cur c;
    struct td_cmd scratch;
    uint32_t id = 0, best = 0;
    td_pb_cur_init(&c, p, n);
    memset(cmd, 0, sizeof(*cmd));
    while (c.p < c.end) {
        uint32_t f;
        enum td_pb_wire w;
        const char *e;
        if (td_pb_read_tag(&c, &f, &w) != 0)
            return PB_ERR_TAG;
        if (f == CMD_ID) {
            uint64_t v;
            e = pb_get_u64(&c, w, &v);
            if (e != NULL)
                return e;
            id = (uint32_t)v; /* uint32 keeps the low 32 bits, as protobuf does */
        } else if (f >= CMD_FIRST_REQ && f <= CMD_LAST_REQ) {
            struct td_str body;
            e = pb_get_bytes(&c, w, &body);
            if (e != NULL)
                return e;
            struct td_cmd *dst = cmd;
            if (best == 0 || f < best) {
                memset(cmd, 0, sizeof(*cmd));
                best = f;
            } else if (f > best) {
                memset(&scratch, 0, sizeof(scratch));
                dst = &scratch;
            }
            e = pb_dec_request(f, (const uint8_t *)body.p, body.n, dst);
            if (e != NULL)
                return e;
        } else {
            e = pb_skip_unknown(&c, w);
            if (e != NULL)
                return e;
        }
    }
    cmd->id = id;
    return NULL;
}

static int pb_decode_next(struct td_cmd_iter *it, struct td_cmd *cmd)
{
    if (it->len == 0) {
        it->error = "protobuf: empty frame";
        return TD_EPROTO;
    }
    if (it->pos >= it->len)
        return 0;
    struct td_pb_cur c;
    uint64_t len;
    td_pb_cur_init(&c, it->p + it->pos, it->len - it->pos);
    if (td_pb_read_varint(&c, &len) != 0) {
        it->error = "protobuf: bad length prefix";
        return TD_EPROTO;
    }
    if (len > td_pb_cur_left(&c)) {
        it->error = "protobuf: truncated command";
        return TD_EPROTO;
    }
    struct td_cmd tmp;
    const char *e = pb_dec_command(c.p, (size_t)len, &tmp);
    if (e != NULL) {
        it->error = e;
        return TD_EPROTO;
    }
    *cmd = tmp;
    it->pos = (size_t)(c.p + len - it->p);
    return 1;
}

/* ---- encoding ---- */

/* Reply field numbers. */
enum {
    REPLY_ID = 1,
    REPLY_ERROR = 2,
    REPLY_PUSH = 4,
};

/* Push field numbers. */
enum {
    PUSH_CHANNEL = 2,
    PUSH_PUB = 4,
    PUSH_JOIN = 5,
    PUSH_LEAVE = 6,
    PUSH_UNSUBSCRIBE = 7,
    PUSH_MESSAGE = 8,
    PUSH_DISCONNECT = 11,
};

/* The Reply field that carries the result of a command kind; 0 when there is none. */
static uint32_t pb_result_field(enum td_cmd_kind kind)
{
    switch (kind) {
    case TD_CMD_CONNECT:
        return 5;
    case TD_CMD_SUBSCRIBE:
        return 6;
    case TD_CMD_UNSUBSCRIBE:
        return 7;
    case TD_CMD_PUBLISH:
        return 8;
    case TD_CMD_PRESENCE:
        return 9;
    case TD_CMD_PRESENCE_STATS:
        return 10;
    case TD_CMD_HISTORY:
        return 11;
    case TD_CMD_PING:
        return 12;
    case TD_CMD_RPC:
        return 13;
    case TD_CMD_REFRESH:
        return 14;
    case TD_CMD_SUB_REFRESH:
        return 15;
    case TD_CMD_EMPTY:
    case TD_CMD_SEND:
    default:
        return 0;
    }
}

static size_t pb_cstr_len(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static void pb_put_str(struct td_buf *b, uint32_t field, struct td_str s)
{
    td_pb_append_bytes(b, field, s.p, s.n);
}

/* ClientInfo{user=1, client=2, conn_info=3, chan_info=4} */
static size_t pb_info_size(const struct td_client_info *i)
{
    return td_pb_size_bytes(1, i->user.n) + td_pb_size_bytes(2, i->client.n) +
           td_pb_size_bytes(3, i->conn_info.n) + td_pb_size_bytes(4, i->chan_info.n);
}

static void pb_put_info_body(struct td_buf *b, const struct td_client_info *i)
{
    pb_put_str(b, 1, i->user);
    pb_put_str(b, 2, i->client);
    pb_put_str(b, 3, i->conn_info);
    pb_put_str(b, 4, i->chan_info);
}

static void pb_put_info(struct td_buf *b, uint32_t field, const struct td_client_info *i)
{
    td_pb_append_len(b, field, pb_info_size(i));
    pb_put_info_body(b, i);
}

/* Publication{data=4, info=5, offset=6, time=9} */
static size_t pb_pub_size(const struct td_publication *pub)
{
    size_t n = td_pb_size_bytes(4, pub->data.n);
    if (pub->info != NULL)
        n += td_pb_size_msg(5, pb_info_size(pub->info));
    n += td_pb_size_uint(6, pub->offset);
    n += td_pb_size_uint(9, (uint64_t)pub->time);
    return n;
}

static void pb_put_pub_body(struct td_buf *b, const struct td_publication *pub)
{
    pb_put_str(b, 4, pub->data);
    if (pub->info != NULL)
        pb_put_info(b, 5, pub->info);
    td_pb_append_uint(b, 6, pub->offset);
    td_pb_append_int(b, 9, pub->time);
}

static void pb_put_pubs(struct td_buf *b, uint32_t field, const struct td_publication *pubs,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        td_pb_append_len(b, field, pb_pub_size(&pubs[i]));
        pb_put_pub_body(b, &pubs[i]);
    }
}

/* Starts a Reply unit: length prefix placeholder, then id. Close with td_pb_end. */
static size_t pb_reply_begin(struct td_buf *b, uint32_t id)
{
    size_t m = td_pb_begin(b);
    td_pb_append_uint(b, REPLY_ID, id);
    return m;
}

/* Starts a nested message field. Close with td_pb_end. */
static size_t pb_msg_begin(struct td_buf *b, uint32_t field)
{
    td_pb_append_tag(b, field, TD_PB_LEN);
    return td_pb_begin(b);
}

static void pb_reply_error(struct td_buf *out, uint32_t id, uint32_t code, const char *message,
                           bool temporary)
{
    size_t r = pb_reply_begin(out, id);
    size_t e = pb_msg_begin(out, REPLY_ERROR);
    td_pb_append_uint(out, 1, code);
    td_pb_append_bytes(out, 2, message, pb_cstr_len(message));
    td_pb_append_bool(out, 3, temporary);
    td_pb_end(out, e);
    td_pb_end(out, r);
}

static void pb_reply_empty(struct td_buf *out, uint32_t id, enum td_cmd_kind kind)
{
    size_t r = pb_reply_begin(out, id);
    uint32_t f = pb_result_field(kind);
    if (f != 0)
        td_pb_append_len(out, f, 0);
    td_pb_end(out, r);
}

static void pb_put_sub_result(struct td_buf *out, uint32_t field,
                              const struct td_subscribe_result *sr);

static void pb_reply_connect(struct td_buf *out, uint32_t id, const struct td_connect_result *cr)
{
    size_t r = pb_reply_begin(out, id);
    size_t m = pb_msg_begin(out, 5);
    pb_put_str(out, 1, cr->client);
    pb_put_str(out, 2, cr->version);
    td_pb_append_bool(out, 3, cr->expires);
    td_pb_append_uint(out, 4, cr->ttl);
    pb_put_str(out, 5, cr->data);
    for (size_t i = 0; i < cr->nsubs; i++) {
        /* map<string, SubscribeResult> entry {key=1, value=2} */
        size_t entry = pb_msg_begin(out, 6);
        td_pb_append_bytes_always(out, 1, cr->subs[i].channel.p, cr->subs[i].channel.n);
        pb_put_sub_result(out, 2, &cr->subs[i].r);
        td_pb_end(out, entry);
    }
    td_pb_append_uint(out, 7, cr->ping);
    td_pb_append_bool(out, 8, cr->pong);
    pb_put_str(out, 9, cr->session);
    pb_put_str(out, 10, cr->node);
    td_pb_end(out, m);
    td_pb_end(out, r);
}

/* A SubscribeResult as nested message `field` (always written, even when empty). */
static void pb_put_sub_result(struct td_buf *out, uint32_t field,
                              const struct td_subscribe_result *sr)
{
    bool position = sr->positioned || sr->recoverable;
    size_t m = pb_msg_begin(out, field);
    td_pb_append_bool(out, 1, sr->expires);
    td_pb_append_uint(out, 2, sr->ttl);
    td_pb_append_bool(out, 3, sr->recoverable);
    if (position)
        pb_put_str(out, 6, sr->epoch);
    pb_put_pubs(out, 7, sr->pubs, sr->npubs);
    td_pb_append_bool(out, 8, sr->recovered);
    if (position)
        td_pb_append_uint(out, 9, sr->offset);
    td_pb_append_bool(out, 10, sr->positioned);
    pb_put_str(out, 11, sr->data);
    td_pb_append_bool(out, 12, sr->was_recovering);
    td_pb_end(out, m);
}

static void pb_reply_subscribe(struct td_buf *out, uint32_t id,
                               const struct td_subscribe_result *sr)
{
    size_t r = pb_reply_begin(out, id);
    pb_put_sub_result(out, 6, sr);
    td_pb_end(out, r);
}

/* PresenceResult{presence=1 map<string, ClientInfo>}: entries {key=1, value=2}, both always
 * written as Go writes map entries. */
static void pb_reply_presence(struct td_buf *out, uint32_t id, const struct td_client_info *infos,
                              size_t n)
{
    size_t r = pb_reply_begin(out, id);
    size_t m = pb_msg_begin(out, 9);
    for (size_t i = 0; i < n; i++) {
        const struct td_client_info *ci = &infos[i];
        size_t entry = td_pb_size_msg(1, ci->client.n) + td_pb_size_msg(2, pb_info_size(ci));
        td_pb_append_len(out, 1, entry);
        td_pb_append_bytes_always(out, 1, ci->client.p, ci->client.n);
        pb_put_info(out, 2, ci);
    }
    td_pb_end(out, m);
    td_pb_end(out, r);
}

static void pb_reply_presence_stats(struct td_buf *out, uint32_t id, uint32_t num_clients,
                                    uint32_t num_users)
{
    size_t r = pb_reply_begin(out, id);
    size_t m = pb_msg_begin(out, 10);
    td_pb_append_uint(out, 1, num_clients);
    td_pb_append_uint(out, 2, num_users);
    td_pb_end(out, m);
    td_pb_end(out, r);
}

static void pb_reply_history(struct td_buf *out, uint32_t id, const struct td_history_result *hr)
{
    size_t r = pb_reply_begin(out, id);
    size_t m = pb_msg_begin(out, 11);
    pb_put_pubs(out, 1, hr->pubs, hr->npubs);
    pb_put_str(out, 2, hr->epoch);
    td_pb_append_uint(out, 3, hr->offset);
    td_pb_end(out, m);
    td_pb_end(out, r);
}

static void pb_reply_rpc(struct td_buf *out, uint32_t id, struct td_str data)
{
    size_t r = pb_reply_begin(out, id);
    size_t m = pb_msg_begin(out, 13);
    pb_put_str(out, 1, data);
    td_pb_end(out, m);
    td_pb_end(out, r);
}

static void pb_reply_refresh(struct td_buf *out, uint32_t id, const struct td_refresh_result *rr)
{
    size_t r = pb_reply_begin(out, id);
    size_t m = pb_msg_begin(out, 14);
    pb_put_str(out, 1, rr->client);
    pb_put_str(out, 2, rr->version);
    td_pb_append_bool(out, 3, rr->expires);
    td_pb_append_uint(out, 4, rr->ttl);
    td_pb_end(out, m);
    td_pb_end(out, r);
}

/*
 * The hot path: Reply{push{channel, pub{...}}} with every size known up front, one reserve
 * (plus slack so the varint writers never grow the buffer) and no byte moved.
 */
static void pb_push_pub(struct td_buf *out, struct td_str channel, const struct td_publication *pub)
{
    size_t pub_n = pb_pub_size(pub);
    size_t push_n = td_pb_size_bytes(PUSH_CHANNEL, channel.n) + td_pb_size_msg(PUSH_PUB, pub_n);
    size_t reply_n = td_pb_size_msg(REPLY_PUSH, push_n);
    td_buf_reserve(out, td_pb_size_varint(reply_n) + reply_n + TD_PB_VARINT_MAX);
    td_pb_append_varint(out, reply_n);
    td_pb_append_len(out, REPLY_PUSH, push_n);
    pb_put_str(out, PUSH_CHANNEL, channel);
    td_pb_append_len(out, PUSH_PUB, pub_n);
    pb_put_pub_body(out, pub);
}

/* Join{info=1} / Leave{info=1}: info is always written. */
static void pb_push_info(struct td_buf *out, uint32_t field, struct td_str channel,
                         const struct td_client_info *info)
{
    size_t r = pb_reply_begin(out, 0);
    size_t p = pb_msg_begin(out, REPLY_PUSH);
    pb_put_str(out, PUSH_CHANNEL, channel);
    size_t m = pb_msg_begin(out, field);
    pb_put_info(out, 1, info);
    td_pb_end(out, m);
    td_pb_end(out, p);
    td_pb_end(out, r);
}

static void pb_push_join(struct td_buf *out, struct td_str channel,
                         const struct td_client_info *info)
{
    pb_push_info(out, PUSH_JOIN, channel, info);
}

static void pb_push_leave(struct td_buf *out, struct td_str channel,
                          const struct td_client_info *info)
{
    pb_push_info(out, PUSH_LEAVE, channel, info);
}

static void pb_push_unsubscribe(struct td_buf *out, struct td_str channel, uint32_t code,
                                const char *reason)
{
    size_t r = pb_reply_begin(out, 0);
    size_t p = pb_msg_begin(out, REPLY_PUSH);
    pb_put_str(out, PUSH_CHANNEL, channel);
    size_t m = pb_msg_begin(out, PUSH_UNSUBSCRIBE);
    td_pb_append_uint(out, 2, code);
    td_pb_append_bytes(out, 3, reason, pb_cstr_len(reason));
    td_pb_end(out, m);
    td_pb_end(out, p);
    td_pb_end(out, r);
}

static void pb_push_message(struct td_buf *out, struct td_str data)
{
    size_t r = pb_reply_begin(out, 0);
    size_t p = pb_msg_begin(out, REPLY_PUSH);
    size_t m = pb_msg_begin(out, PUSH_MESSAGE);
    pb_put_str(out, 1, data);
    td_pb_end(out, m);
    td_pb_end(out, p);
    td_pb_end(out, r);
}

static void pb_push_disconnect(struct td_buf *out, uint32_t code, const char *reason)
{
    size_t r = pb_reply_begin(out, 0);
    size_t p = pb_msg_begin(out, REPLY_PUSH);
    size_t m = pb_msg_begin(out, PUSH_DISCONNECT);
    td_pb_append_uint(out, 1, code);
    td_pb_append_bytes(out, 2, reason, pb_cstr_len(reason));
    td_pb_end(out, m);
    td_pb_end(out, p);
    td_pb_end(out, r);
}

static void pb_ping(struct td_buf *out)
{
    td_buf_append_byte(out, 0x00);
}

const struct td_codec td_codec_protobuf = {
    .name = "protobuf",
    .binary = true,
    .decode_next = pb_decode_next,
    .reply_error = pb_reply_error,
    .reply_empty = pb_reply_empty,
    .reply_connect = pb_reply_connect,
    .reply_subscribe = pb_reply_subscribe,
    .reply_presence = pb_reply_presence,
    .reply_presence_stats = pb_reply_presence_stats,
    .reply_history = pb_reply_history,
    .reply_rpc = pb_reply_rpc,
    .reply_refresh = pb_reply_refresh,
    .push_pub = pb_push_pub,
    .push_join = pb_push_join,
    .push_leave = pb_push_leave,
    .push_unsubscribe = pb_push_unsubscribe,
    .push_message = pb_push_message,
    .push_disconnect = pb_push_disconnect,
    .ping = pb_ping,
};
