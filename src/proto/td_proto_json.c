/*
 * td_proto_json.c - the JSON codec of the Centrifuge client protocol (td_proto.h).
 *
 * Decoding splits the frame on '\n' (as centrifuge's Go decoder does: a message can not
 * span lines) and reads each line with a td_json_cursor, unescaping strings in place and
 * taking `data` fields as raw spans. Every request object present is type-checked, as Go's
 * unmarshalling would; the one with the lowest field number becomes the command. A null
 * value counts as an absent key; with duplicate keys the last one wins.
 *
 * Encoding appends literal key text and values straight into the td_buf, omitting zero
 * values except the fields the spec lists as always present (ClientInfo user/client,
 * presence.presence, presence_stats counts, history publications/epoch/offset) and the
 * error code/message.
 */
#include "proto/td_proto.h"

#include <stddef.h>
#include <string.h>

#include "core/td_err.h"
#include "core/td_json.h"

/* ---------------------------------------------------------------------------------------
 * Decoding
 */

enum fld_kind { F_STR, F_RAW, F_BOOL, F_U64, F_I64, F_I32, F_SINCE, F_TF, F_SUBS };

struct fld {
    const char *name;
    enum fld_kind kind;
    size_t off;      /* offset of the target member in struct td_cmd */
    const char *err; /* reason when the value has the wrong type or is malformed */
};

#define FLD(name, kind, member, err)                                                               \
    {                                                                                              \
        name, kind, offsetof(struct td_cmd, member), err                                           \
    }

static const struct fld connect_f[] = {
    FLD("token", F_STR, token, "invalid connect.token"),
    FLD("data", F_RAW, data, "invalid connect.data"),
    FLD("name", F_STR, name, "invalid connect.name"),
    FLD("version", F_STR, version, "invalid connect.version"),
    FLD("subs", F_SUBS, nsubs, "invalid connect.subs"),
};

static const struct fld subscribe_f[] = {
    FLD("channel", F_STR, channel, "invalid subscribe.channel"),
    FLD("token", F_STR, token, "invalid subscribe.token"),
    FLD("recover", F_BOOL, recover, "invalid subscribe.recover"),
    FLD("epoch", F_STR, epoch, "invalid subscribe.epoch"),
    FLD("offset", F_U64, offset, "invalid subscribe.offset"),
    FLD("data", F_RAW, data, "invalid subscribe.data"),
    FLD("positioned", F_BOOL, positioned, "invalid subscribe.positioned"),
    FLD("recoverable", F_BOOL, recoverable, "invalid subscribe.recoverable"),
    FLD("join_leave", F_BOOL, join_leave, "invalid subscribe.join_leave"),
    FLD("delta", F_STR, delta, "invalid subscribe.delta"),
    FLD("tf", F_TF, has_tf, "invalid subscribe.tf"),
    FLD("flag", F_I64, flag, "invalid subscribe.flag"),
    FLD("type", F_I32, type, "invalid subscribe.type"),
};

static const struct fld unsubscribe_f[] = {
    FLD("channel", F_STR, channel, "invalid unsubscribe.channel"),
};

static const struct fld publish_f[] = {
    FLD("channel", F_STR, channel, "invalid publish.channel"),
    FLD("data", F_RAW, data, "invalid publish.data"),
    FLD("type", F_I32, type, "invalid publish.type"),
};

static const struct fld presence_f[] = {
    FLD("channel", F_STR, channel, "invalid presence.channel"),
};

static const struct fld presence_stats_f[] = {
    FLD("channel", F_STR, channel, "invalid presence_stats.channel"),
};

static const struct fld history_f[] = {
    FLD("channel", F_STR, channel, "invalid history.channel"),
    FLD("limit", F_I32, limit, "invalid history.limit"),
    FLD("since", F_SINCE, has_since, "invalid history.since"),
    FLD("reverse", F_BOOL, reverse, "invalid history.reverse"),
};

static const struct fld send_f[] = {
    FLD("data", F_RAW, data, "invalid send.data"),
};

static const struct fld rpc_f[] = {
    FLD("data", F_RAW, data, "invalid rpc.data"),
    FLD("method", F_STR, method, "invalid rpc.method"),
};

static const struct fld refresh_f[] = {
    FLD("token", F_STR, token, "invalid refresh.token"),
};

static const struct fld sub_refresh_f[] = {
    FLD("channel", F_STR, channel, "invalid sub_refresh.channel"),
    FLD("token", F_STR, token, "invalid sub_refresh.token"),
    FLD("type", F_I32, type, "invalid sub_refresh.type"),
};

struct req {
    const char *name; /* Command key, also the Reply key of the result */
    const struct fld *f;
    size_t n;
    const char *err; /* reason when the request value is not an object */
};

#define REQ(name, f)                                                                               \
    {                                                                                              \
        name, f, sizeof(f) / sizeof(f[0]), "invalid " name                                         \
    }

/* Indexed by enum td_cmd_kind, which follows the Command field numbers (connect = 4). */
static const struct req reqs[] = {
    [TD_CMD_EMPTY] = {NULL, NULL, 0, NULL},
    [TD_CMD_CONNECT] = REQ("connect", connect_f),
    [TD_CMD_SUBSCRIBE] = REQ("subscribe", subscribe_f),
    [TD_CMD_UNSUBSCRIBE] = REQ("unsubscribe", unsubscribe_f),
    [TD_CMD_PUBLISH] = REQ("publish", publish_f),
    [TD_CMD_PRESENCE] = REQ("presence", presence_f),
    [TD_CMD_PRESENCE_STATS] = REQ("presence_stats", presence_stats_f),
    [TD_CMD_HISTORY] = REQ("history", history_f),
    [TD_CMD_PING] = {"ping", NULL, 0, "invalid ping"},
    [TD_CMD_SEND] = REQ("send", send_f),
    [TD_CMD_RPC] = REQ("rpc", rpc_f),
    [TD_CMD_REFRESH] = REQ("refresh", refresh_f),
    [TD_CMD_SUB_REFRESH] = REQ("sub_refresh", sub_refresh_f),
};

#define NREQS (sizeof(reqs) / sizeof(reqs[0]))

static bool key_is(const char *k, size_t kn, const char *name)
{
    size_t n = strlen(name);
    return kn == n && memcmp(k, name, n) == 0;
}

static enum td_cmd_kind req_kind(const char *k, size_t kn)
{
    for (size_t i = 1; i < NREQS; i++) {
        if (key_is(k, kn, reqs[i].name))
            return (enum td_cmd_kind)i;
    }
    return TD_CMD_EMPTY;
}

static int read_since(struct td_json_cursor *c, struct td_cmd *cmd)
{
    const char *k;
    size_t kn;
    int rc;
    if (td_json_cursor_object_begin(c) < 0)
        return TD_EPROTO;
    while ((rc = td_json_cursor_object_next(c, &k, &kn)) == 1) {
        if (td_json_cursor_null(c))
            continue;
        if (key_is(k, kn, "offset"))
            rc = td_json_cursor_uint64(c, UINT64_MAX, &cmd->since_offset);
        else if (key_is(k, kn, "epoch"))
            rc = td_json_cursor_string(c, &cmd->since_epoch.p, &cmd->since_epoch.n);
        else
            rc = td_json_cursor_skip(c, NULL, NULL);
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    cmd->has_since = true;
    return 0;
}

/* connect.subs: {"<channel>": {"recover":true,"offset":N,"epoch":"E"}, ...} */
static int read_subs(struct td_json_cursor *c, struct td_cmd *cmd)
{
    const char *ch, *k;
    size_t chn, kn;
    int rc, rc2;
    if (td_json_cursor_object_begin(c) < 0)
        return TD_EPROTO;
    while ((rc = td_json_cursor_object_next(c, &ch, &chn)) == 1) {
        struct td_connect_sub tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.channel.p = ch;
        tmp.channel.n = chn;
        if (td_json_cursor_null(c))
            continue;
        if (td_json_cursor_object_begin(c) < 0)
            return TD_EPROTO;
        while ((rc2 = td_json_cursor_object_next(c, &k, &kn)) == 1) {
            if (td_json_cursor_null(c))
                continue;
            if (key_is(k, kn, "recover"))
                rc2 = td_json_cursor_bool(c, &tmp.recover);
            else if (key_is(k, kn, "offset"))
                rc2 = td_json_cursor_uint64(c, UINT64_MAX, &tmp.offset);
            else if (key_is(k, kn, "epoch"))
                rc2 = td_json_cursor_string(c, &tmp.epoch.p, &tmp.epoch.n);
            else
                rc2 = td_json_cursor_skip(c, NULL, NULL);
            if (rc2 < 0)
                return rc2;
        }
        if (rc2 < 0)
            return rc2;
        if (cmd->nsubs < TD_PROTO_MAX_CONNECT_SUBS)
            cmd->subs[cmd->nsubs++] = tmp;
    }
    return rc < 0 ? rc : 0;
}

static int read_field(struct td_json_cursor *c, const struct fld *f, struct td_cmd *cmd)
{
    char *dst = (char *)cmd + f->off;
    switch (f->kind) {
    case F_STR: {
        struct td_str *s = (struct td_str *)(void *)dst;
        return td_json_cursor_string(c, &s->p, &s->n);
    }
    case F_RAW: {
        struct td_str *s = (struct td_str *)(void *)dst;
        if (td_json_cursor_skip(c, &s->p, &s->n) < 0)
            return TD_EPROTO;
        cmd->has_data = true;
        return 0;
    }
    case F_BOOL:
        return td_json_cursor_bool(c, (bool *)(void *)dst);
    case F_U64:
        return td_json_cursor_uint64(c, UINT64_MAX, (uint64_t *)(void *)dst);
    case F_I64:
        return td_json_cursor_int64(c, INT64_MIN, INT64_MAX, (int64_t *)(void *)dst);
    case F_I32: {
        int64_t v;
        if (td_json_cursor_int64(c, INT32_MIN, INT32_MAX, &v) < 0)
            return TD_EPROTO;
        *(int32_t *)(void *)dst = (int32_t)v;
        return 0;
    }
    case F_SINCE:
        return read_since(c, cmd);
    case F_SUBS:
        cmd->nsubs = 0; /* a duplicate key replaces the earlier map */
        return read_subs(c, cmd);
    case F_TF:
        /* Tag filters are not evaluated; the engine only needs to know one was sent. */
        if (td_json_cursor_peek(c) != TD_JSON_OBJECT || td_json_cursor_skip(c, NULL, NULL) < 0)
            return TD_EPROTO;
        cmd->has_tf = true;
        return 0;
    }
    return TD_EPROTO;
}

/* decode_request reads the request object of `kind` into cmd (zeroed by the caller). */
static int decode_request(struct td_json_cursor *c, enum td_cmd_kind kind, struct td_cmd *cmd,
                          const char **why)
{
    const struct req *r = &reqs[kind];
    const char *k;
    size_t kn;
    int rc;
    if (td_json_cursor_object_begin(c) < 0) {
        *why = r->err;
        return TD_EPROTO;
    }
    while ((rc = td_json_cursor_object_next(c, &k, &kn)) == 1) {
        const struct fld *f = NULL;
        for (size_t i = 0; i < r->n; i++) {
            if (key_is(k, kn, r->f[i].name)) {
                f = &r->f[i];
                break;
            }
        }
        if (f == NULL) {
            if (td_json_cursor_skip(c, NULL, NULL) < 0) {
                *why = c->error;
                return TD_EPROTO;
            }
            continue;
        }
        if (td_json_cursor_null(c))
            continue;
        if (read_field(c, f, cmd) < 0) {
            *why = f->err;
            return TD_EPROTO;
        }
    }
    if (rc < 0) {
        *why = c->error;
        return TD_EPROTO;
    }
    cmd->kind = kind;
    return 0;
}

/* decode_line decodes one Command object filling p[0..n) (whitespace allowed around it). */
static int decode_line(char *p, size_t n, struct td_cmd *out, const char **why)
{
    struct td_json_cursor c;
    struct td_cmd best, tmp;
    uint32_t id = 0;
    const char *k;
    size_t kn;
    int rc;
    memset(&best, 0, sizeof(best));
    td_json_cursor_init(&c, p, n);
    if (td_json_cursor_peek(&c) != TD_JSON_OBJECT || td_json_cursor_object_begin(&c) < 0) {
        *why = "command is not a JSON object";
        return TD_EPROTO;
    }
    while ((rc = td_json_cursor_object_next(&c, &k, &kn)) == 1) {
        if (key_is(k, kn, "id")) {
            uint64_t v;
            if (td_json_cursor_null(&c))
                continue;
            if (td_json_cursor_uint64(&c, UINT32_MAX, &v) < 0) {
                *why = "invalid command id";
                return TD_EPROTO;
            }
            id = (uint32_t)v;
            continue;
        }
        enum td_cmd_kind kind = req_kind(k, kn);
        if (kind == TD_CMD_EMPTY) {
            if (td_json_cursor_skip(&c, NULL, NULL) < 0) {
                *why = c.error;
                return TD_EPROTO;
            }
            continue;
        }
        if (td_json_cursor_null(&c))
            continue;
        memset(&tmp, 0, sizeof(tmp));
        if (decode_request(&c, kind, &tmp, why) < 0)
            return TD_EPROTO;
        /* Lowest field number wins; a repeated key replaces the earlier one. */
        if (best.kind == TD_CMD_EMPTY || kind <= best.kind)
            best = tmp;
    }
    if (rc < 0 || td_json_cursor_end(&c) < 0) {
        *why = c.error;
        return TD_EPROTO;
    }
    best.id = id;
    *out = best;
    return 0;
}

static int json_decode_next(struct td_cmd_iter *it, struct td_cmd *cmd)
{
    if (it->error != NULL)
        return TD_EPROTO;
    if (it->len == 0) {
        it->error = "empty frame";
        return TD_EPROTO;
    }
    if (it->pos >= it->len)
        return 0;
    char *line = (char *)it->p + it->pos;
    size_t avail = it->len - it->pos;
    const char *nl = memchr(line, '\n', avail);
    size_t n = nl != NULL ? (size_t)(nl - line) : avail;
    if (n == 0) {
        it->error = "empty line in frame";
        return TD_EPROTO;
    }
    const char *why = NULL;
    if (decode_line(line, n, cmd, &why) < 0) {
        it->error = why != NULL ? why : "malformed command";
        return TD_EPROTO;
    }
    it->pos += n + (nl != NULL);
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 */

#define PUT(b, lit) td_buf_append((b), (lit), sizeof(lit) - 1)

static void put_u64(struct td_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    td_buf_append(b, tmp + i, sizeof(tmp) - i);
}

static void put_i64(struct td_buf *b, int64_t v)
{
    if (v < 0) {
        td_buf_append_byte(b, '-');
        put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(b, (uint64_t)v);
    }
}

static void put_str(struct td_buf *b, struct td_str s)
{
    td_json_write_string(b, s.p, s.n);
}

static void put_cstr(struct td_buf *b, const char *s)
{
    td_json_write_string(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* put_raw embeds raw JSON verbatim minus its '\n'/'\r' bytes, which in valid JSON can only
 * be insignificant whitespace, so that '\n' keeps separating messages of a frame. */
static void put_raw(struct td_buf *b, struct td_str raw)
{
    td_buf_reserve(b, raw.n);
    uint8_t *w = b->data + b->len;
    size_t n = raw.n;
    memcpy(w, raw.p, n);
    if (memchr(w, '\n', n) != NULL || memchr(w, '\r', n) != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (w[i] != '\n' && w[i] != '\r')
                w[k++] = w[i];
        }
        n = k;
    }
    b->len += n;
}

/* key appends `"name":`, preceded by a comma unless it is the first member. */
static void key(struct td_buf *b, bool *first, const char *k, size_t kn)
{
    if (!*first)
        td_buf_append_byte(b, ',');
    *first = false;
    td_buf_append(b, k, kn);
}

#define KEY(b, first, name) key((b), (first), "\"" name "\":", sizeof("\"" name "\":") - 1)

/* reply_open appends `{"id":N,"<name>":` (no id when 0). */
static void reply_open(struct td_buf *b, uint32_t id, const char *name)
{
    td_buf_append_byte(b, '{');
    if (id != 0) {
        PUT(b, "\"id\":");
        put_u64(b, id);
        td_buf_append_byte(b, ',');
    }
    td_buf_append_byte(b, '"');
    td_buf_append_str(b, name);
    PUT(b, "\":");
}

static void put_info(struct td_buf *b, const struct td_client_info *ci)
{
    PUT(b, "{\"user\":");
    put_str(b, ci->user);
    PUT(b, ",\"client\":");
    put_str(b, ci->client);
    if (ci->conn_info.n != 0) {
        PUT(b, ",\"conn_info\":");
        put_raw(b, ci->conn_info);
    }
    if (ci->chan_info.n != 0) {
        PUT(b, ",\"chan_info\":");
        put_raw(b, ci->chan_info);
    }
    td_buf_append_byte(b, '}');
}

static void put_pub(struct td_buf *b, const struct td_publication *pub)
{
    bool first = true;
    td_buf_append_byte(b, '{');
    if (pub->data.n != 0) {
        KEY(b, &first, "data");
        put_raw(b, pub->data);
    }
    if (pub->info != NULL) {
        KEY(b, &first, "info");
        put_info(b, pub->info);
    }
    if (pub->offset != 0) {
        KEY(b, &first, "offset");
        put_u64(b, pub->offset);
    }
    if (pub->time != 0) {
        KEY(b, &first, "time");
        put_i64(b, pub->time);
    }
    td_buf_append_byte(b, '}');
}

static void put_pubs(struct td_buf *b, const struct td_publication *pubs, size_t n)
{
    td_buf_append_byte(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i != 0)
            td_buf_append_byte(b, ',');
        put_pub(b, &pubs[i]);
    }
    td_buf_append_byte(b, ']');
}

static void json_reply_error(struct td_buf *out, uint32_t id, uint32_t code, const char *message,
                             bool temporary)
{
    reply_open(out, id, "error");
    PUT(out, "{\"code\":");
    put_u64(out, code);
    PUT(out, ",\"message\":");
    put_cstr(out, message);
    if (temporary)
        PUT(out, ",\"temporary\":true");
    PUT(out, "}}");
}

static void json_reply_empty(struct td_buf *out, uint32_t id, enum td_cmd_kind kind)
{
    /* send (and the empty command) have no result field in Reply: emit just the id. */
    const char *name = (size_t)kind < NREQS && kind != TD_CMD_SEND ? reqs[kind].name : NULL;
    if (name == NULL) {
        td_buf_append_byte(out, '{');
        if (id != 0) {
            PUT(out, "\"id\":");
            put_u64(out, id);
        }
        td_buf_append_byte(out, '}');
        return;
    }
    reply_open(out, id, name);
    PUT(out, "{}}");
}

static void put_sub_result(struct td_buf *out, const struct td_subscribe_result *r);

static void json_reply_connect(struct td_buf *out, uint32_t id, const struct td_connect_result *r)
{
    bool first = true;
    reply_open(out, id, "connect");
    td_buf_append_byte(out, '{');
    if (r->client.n != 0) {
        KEY(out, &first, "client");
        put_str(out, r->client);
    }
    if (r->version.n != 0) {
        KEY(out, &first, "version");
        put_str(out, r->version);
    }
    if (r->expires) {
        KEY(out, &first, "expires");
        PUT(out, "true");
    }
    if (r->ttl != 0) {
        KEY(out, &first, "ttl");
        put_u64(out, r->ttl);
    }
    if (r->data.n != 0) {
        KEY(out, &first, "data");
        put_raw(out, r->data);
    }
    if (r->ping != 0) {
        KEY(out, &first, "ping");
        put_u64(out, r->ping);
    }
    if (r->pong) {
        KEY(out, &first, "pong");
        PUT(out, "true");
    }
    if (r->session.n != 0) {
        KEY(out, &first, "session");
        put_str(out, r->session);
    }
    if (r->node.n != 0) {
        KEY(out, &first, "node");
        put_str(out, r->node);
    }
    if (r->nsubs != 0) {
        KEY(out, &first, "subs");
        td_buf_append_byte(out, '{');
        for (size_t i = 0; i < r->nsubs; i++) {
            if (i != 0)
                td_buf_append_byte(out, ',');
            put_str(out, r->subs[i].channel);
            td_buf_append_byte(out, ':');
            put_sub_result(out, &r->subs[i].r);
        }
        td_buf_append_byte(out, '}');
    }
    PUT(out, "}}");
}

/* put_sub_result appends a SubscribeResult object. */
static void put_sub_result(struct td_buf *out, const struct td_subscribe_result *r)
{
    bool first = true;
    bool pos = r->positioned || r->recoverable;
    td_buf_append_byte(out, '{');
    if (r->expires) {
        KEY(out, &first, "expires");
        PUT(out, "true");
    }
    if (r->ttl != 0) {
        KEY(out, &first, "ttl");
        put_u64(out, r->ttl);
    }
    if (r->recoverable) {
        KEY(out, &first, "recoverable");
        PUT(out, "true");
    }
    if (pos) {
        KEY(out, &first, "epoch");
        put_str(out, r->epoch);
    }
    if (r->npubs != 0) {
        KEY(out, &first, "publications");
        put_pubs(out, r->pubs, r->npubs);
    }
    if (r->recovered) {
        KEY(out, &first, "recovered");
        PUT(out, "true");
    }
    if (pos && r->offset != 0) {
        KEY(out, &first, "offset");
        put_u64(out, r->offset);
    }
    if (r->positioned) {
        KEY(out, &first, "positioned");
        PUT(out, "true");
    }
    if (r->data.n != 0) {
        KEY(out, &first, "data");
        put_raw(out, r->data);
    }
    if (r->was_recovering) {
        KEY(out, &first, "was_recovering");
        PUT(out, "true");
    }
    td_buf_append_byte(out, '}');
}

static void json_reply_subscribe(struct td_buf *out, uint32_t id,
                                 const struct td_subscribe_result *r)
{
    reply_open(out, id, "subscribe");
    put_sub_result(out, r);
    td_buf_append_byte(out, '}');
}

static void json_reply_presence(struct td_buf *out, uint32_t id, const struct td_client_info *infos,
                                size_t n)
{
    reply_open(out, id, "presence");
    PUT(out, "{\"presence\":{");
    for (size_t i = 0; i < n; i++) {
        if (i != 0)
            td_buf_append_byte(out, ',');
        put_str(out, infos[i].client);
        td_buf_append_byte(out, ':');
        put_info(out, &infos[i]);
    }
    PUT(out, "}}}");
}

static void json_reply_presence_stats(struct td_buf *out, uint32_t id, uint32_t num_clients,
                                      uint32_t num_users)
{
    reply_open(out, id, "presence_stats");
    PUT(out, "{\"num_clients\":");
    put_u64(out, num_clients);
    PUT(out, ",\"num_users\":");
    put_u64(out, num_users);
    PUT(out, "}}");
}

static void json_reply_history(struct td_buf *out, uint32_t id, const struct td_history_result *r)
{
    reply_open(out, id, "history");
    PUT(out, "{\"publications\":");
    put_pubs(out, r->pubs, r->npubs);
    PUT(out, ",\"epoch\":");
    put_str(out, r->epoch);
    PUT(out, ",\"offset\":");
    put_u64(out, r->offset);
    PUT(out, "}}");
}

static void json_reply_rpc(struct td_buf *out, uint32_t id, struct td_str data)
{
    reply_open(out, id, "rpc");
    td_buf_append_byte(out, '{');
    if (data.n != 0) {
        PUT(out, "\"data\":");
        put_raw(out, data);
    }
    PUT(out, "}}");
}

static void json_reply_refresh(struct td_buf *out, uint32_t id, const struct td_refresh_result *r)
{
    bool first = true;
    reply_open(out, id, "refresh");
    td_buf_append_byte(out, '{');
    if (r->client.n != 0) {
        KEY(out, &first, "client");
        put_str(out, r->client);
    }
    if (r->version.n != 0) {
        KEY(out, &first, "version");
        put_str(out, r->version);
    }
    if (r->expires) {
        KEY(out, &first, "expires");
        PUT(out, "true");
    }
    if (r->ttl != 0) {
        KEY(out, &first, "ttl");
        put_u64(out, r->ttl);
    }
    PUT(out, "}}");
}

/* push_open appends `{"push":{"channel":"c",` (channel omitted when empty). */
static void push_open(struct td_buf *out, struct td_str channel)
{
    PUT(out, "{\"push\":{");
    if (channel.n != 0) {
        PUT(out, "\"channel\":");
        put_str(out, channel);
        td_buf_append_byte(out, ',');
    }
}

static void json_push_pub(struct td_buf *out, struct td_str channel,
                          const struct td_publication *pub)
{
    /* One reservation for the common case so the appends below do not regrow. */
    td_buf_reserve(out, channel.n + pub->data.n + 96);
    push_open(out, channel);
    PUT(out, "\"pub\":");
    put_pub(out, pub);
    PUT(out, "}}");
}

static void push_info(struct td_buf *out, struct td_str channel, const char *name,
                      const struct td_client_info *info)
{
    push_open(out, channel);
    td_buf_append_byte(out, '"');
    td_buf_append_str(out, name);
    PUT(out, "\":{");
    if (info != NULL) {
        PUT(out, "\"info\":");
        put_info(out, info);
    }
    PUT(out, "}}}");
}

static void json_push_join(struct td_buf *out, struct td_str channel,
                           const struct td_client_info *info)
{
    push_info(out, channel, "join", info);
}

static void json_push_leave(struct td_buf *out, struct td_str channel,
                            const struct td_client_info *info)
{
    push_info(out, channel, "leave", info);
}

static void json_push_unsubscribe(struct td_buf *out, struct td_str channel, uint32_t code,
                                  const char *reason)
{
    bool first = true;
    push_open(out, channel);
    PUT(out, "\"unsubscribe\":{");
    if (code != 0) {
        KEY(out, &first, "code");
        put_u64(out, code);
    }
    if (reason != NULL && reason[0] != '\0') {
        KEY(out, &first, "reason");
        put_cstr(out, reason);
    }
    PUT(out, "}}}");
}

static void json_push_message(struct td_buf *out, struct td_str data)
{
    PUT(out, "{\"push\":{\"message\":{");
    if (data.n != 0) {
        PUT(out, "\"data\":");
        put_raw(out, data);
    }
    PUT(out, "}}}");
}

static void json_push_disconnect(struct td_buf *out, uint32_t code, const char *reason)
{
    bool first = true;
    PUT(out, "{\"push\":{\"disconnect\":{");
    if (code != 0) {
        KEY(out, &first, "code");
        put_u64(out, code);
    }
    if (reason != NULL && reason[0] != '\0') {
        KEY(out, &first, "reason");
        put_cstr(out, reason);
    }
    PUT(out, "}}}");
}

static void json_ping(struct td_buf *out)
{
    PUT(out, "{}");
}

const struct td_codec td_codec_json = {
    .name = "json",
    .binary = false,
    .decode_next = json_decode_next,
    .reply_error = json_reply_error,
    .reply_empty = json_reply_empty,
    .reply_connect = json_reply_connect,
    .reply_subscribe = json_reply_subscribe,
    .reply_presence = json_reply_presence,
    .reply_presence_stats = json_reply_presence_stats,
    .reply_history = json_reply_history,
    .reply_rpc = json_reply_rpc,
    .reply_refresh = json_reply_refresh,
    .push_pub = json_push_pub,
    .push_join = json_push_join,
    .push_leave = json_push_leave,
    .push_unsubscribe = json_push_unsubscribe,
    .push_message = json_push_message,
    .push_disconnect = json_push_disconnect,
    .ping = json_ping,
};
