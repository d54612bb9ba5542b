#include "engine/td_hub.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_log.h"
#include "core/td_rand.h"
#include "auth/td_jwt.h"
#include "engine/td_ydocchan.h"
#include "engine/td_yroom.h"

#include <time.h>

static int64_t hub_wall_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t hub_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long an idle channel's epoch and offset survive without history (ms). */
#define HUB_IDLE_FORGET_MS 60000

const char *td_hub_error_message(uint32_t code)
{
    switch (code) {
    case TD_ERR_INTERNAL:
        return "internal server error";
    case TD_ERR_UNAUTHORIZED:
        return "unauthorized";
    case TD_ERR_UNKNOWN_CHANNEL:
        return "unknown channel";
    case TD_ERR_PERMISSION_DENIED:
        return "permission denied";
    case TD_ERR_METHOD_NOT_FOUND:
        return "method not found";
    case TD_ERR_ALREADY_SUBSCRIBED:
        return "already subscribed";
    case TD_ERR_LIMIT_EXCEEDED:
        return "limit exceeded";
    case TD_ERR_BAD_REQUEST:
        return "bad request";
    case TD_ERR_NOT_AVAILABLE:
        return "not available";
    case TD_ERR_TOKEN_EXPIRED:
        return "token expired";
    case TD_ERR_EXPIRED:
        return "expired";
    case TD_ERR_TOO_MANY_REQUESTS:
        return "too many requests";
    case TD_ERR_UNRECOVERABLE_POSITION:
        return "unrecoverable position";
    default:
        return "error";
    }
}

void td_hub_init(struct td_hub *hub, const struct td_config *cfg)
{
    memset(hub, 0, sizeof(*hub));
    hub->cfg = cfg;
    td_map_init(&hub->channels);
    td_map_init(&hub->clients);
    td_buf_init(&hub->scratch);
    td_rand_uuid(hub->node_id);
    hub->wall_s = hub_wall_s;
    hub->wall_ms = hub_wall_ms;
}

static void idem_free_all(struct td_channel *ch);
static void idem_sweep(struct td_channel *ch, int64_t now_ms);

static void channel_free(struct td_channel *ch)
{
    idem_free_all(ch);
    td_stream_free(&ch->stream);
    free(ch->subs);
    free(ch);
}

void td_hub_free(struct td_hub *hub)
{
    for (size_t i = 0; i < hub->channels.cap; i++) {
        if (hub->channels.slots[i].key != NULL)
            channel_free(hub->channels.slots[i].value);
    }
    td_map_free(&hub->channels);
    td_map_free(&hub->clients);
    td_buf_free(&hub->scratch);
    td_jwt_keys_del(hub->keys);
}

/* ---- channels ---------------------------------------------------------------------- */

struct td_channel *td_hub_channel(struct td_hub *hub, struct td_str name)
{
    return td_map_get(&hub->channels, name.p, name.n);
}

static void hub_store_submit(struct td_hub *hub, struct td_channel *ch, enum td_store_op_kind kind);

static struct td_channel *hub_channel_new(struct td_hub *hub, struct td_str name,
                                          const struct td_ns_opts *ns, int64_t now_ms)
{
    struct td_channel *ch;
    ch = td_xcalloc(1, sizeof(*ch) + name.n + 1); /* the name lives after the struct */
    ch->name = (char *)(ch + 1);
    memcpy(ch->name, name.p, name.n);
    ch->name_len = name.n;
    ch->ns = ns;
    ch->has_history = ns->history_size > 0 && ns->history_ttl_ms > 0;
    /* A "yjs" channel's durable copy is its room's log: its history stays in memory. */
    ch->durable = ch->has_history && ns->history_durable && !ns->yjs && hub->store.submit != NULL;
    td_stream_init(&ch->stream, ch->has_history ? ns->history_size : 0, ns->history_ttl_ms);
    ch->idle_since_ms = now_ms;
    td_map_put(&hub->channels, ch->name, ch->name_len, ch);
    return ch;
}

struct td_channel *td_hub_channel_get(struct td_hub *hub, struct td_str name, int64_t now_ms)
{
    struct td_channel *ch = td_map_get(&hub->channels, name.p, name.n);
    if (ch != NULL)
        return ch;
    const struct td_ns_opts *ns = td_config_ns_for(hub->cfg, name.p, name.n);
    if (ns == NULL)
        return NULL;
    ch = hub_channel_new(hub, name, ns, now_ms);
    /* Record the epoch before anyone can learn it, so it survives a restart. */
    if (ch->durable)
        hub_store_submit(hub, ch, TD_STORE_OP_CREATE);
    return ch;
}

/* A channel with no subscribers is forgotten once nothing in it can be recovered. */
static bool channel_forgettable(const struct td_channel *ch, int64_t now_ms)
{
    if (ch->nsubs > 0 || ch->idem.count > 0 || ch->npending > 0)
        return false;
    if (ch->has_history) {
        int64_t meta = ch->ns->history_meta_ttl_ms;
        return ch->stream.count == 0 && now_ms - ch->stream.last_pub_ms >= meta &&
               now_ms - ch->idle_since_ms >= meta;
    }
    return now_ms - ch->idle_since_ms >= HUB_IDLE_FORGET_MS;
}

int64_t td_hub_tick(struct td_hub *hub, int64_t now_ms)
{
    for (size_t i = 0; i < hub->channels.cap; i++) {
        struct td_channel *ch = hub->channels.slots[i].value;
        if (hub->channels.slots[i].key == NULL)
            continue;
        td_stream_trim(&ch->stream, now_ms);
        if (ch->idem.count > 0)
            idem_sweep(ch, now_ms);
        if (channel_forgettable(ch, now_ms)) {
            if (ch->durable)
                hub_store_submit(hub, ch, TD_STORE_OP_DROP);
            td_map_del(&hub->channels, ch->name, ch->name_len);
            channel_free(ch);
            i--; /* backward-shift deletion may have moved an entry into slot i */
        }
    }
    return now_ms + 1000;
}

uint32_t td_channel_num_users(const struct td_channel *ch)
{
    /* Distinct users; presence sets are small enough for a temporary map. */
    struct td_map seen;
    td_map_init(&seen);
    for (uint32_t i = 0; i < ch->nsubs; i++) {
        const char *u = ch->subs[i]->client->user;
        td_map_put(&seen, u, strlen(u), (void *)u);
    }
    uint32_t n = (uint32_t)seen.count;
    td_map_free(&seen);
    return n;
}

/* ---- sending ----------------------------------------------------------------------- */

int td_client_send_buf(struct td_client *c, const struct td_buf *b)
{
    if (c->state == TD_CLIENT_CLOSED || b->len == 0)
        return 0;
    struct td_rbuf *r = td_rbuf_from(b->data, b->len);
    int rv = c->tops->send(c->transport, r);
    td_rbuf_unref(r);
    return rv;
}

void td_client_info_fill(const struct td_client *c, const struct td_sub *s,
                         struct td_client_info *info)
{
    memset(info, 0, sizeof(*info));
    info->user.p = c->user;
    info->user.n = strlen(c->user);
    info->client.p = c->id;
    info->client.n = strlen(c->id);
    if (c->conn_info != NULL) {
        info->conn_info.p = c->conn_info;
        info->conn_info.n = strlen(c->conn_info);
    }
    if (s != NULL && s->chan_info != NULL) {
        info->chan_info.p = s->chan_info;
        info->chan_info.n = strlen(s->chan_info);
    }
}

static bool codec_is_json(const struct td_codec *codec)
{
    return codec == &td_codec_json;
}

/* Sends a join or leave push about `about` to every subscriber of ch that wants them. */
void td_hub_push_join_leave(struct td_hub *hub, struct td_channel *ch,
                            const struct td_client *about, const struct td_sub *about_sub,
                            bool join)
{
    struct td_client_info info;
    td_client_info_fill(about, about_sub, &info);
    struct td_str chname = {ch->name, ch->name_len};
    struct td_rbuf *units[2] = {NULL, NULL};
    for (uint32_t i = 0; i < ch->nsubs; i++) {
        struct td_sub *s = ch->subs[i];
        if (!s->push_join_leave || s->client->state != TD_CLIENT_CONNECTED)
            continue;
        int k = codec_is_json(s->client->codec) ? 0 : 1;
        if (units[k] == NULL) {
            td_buf_reset(&hub->scratch);
            if (join)
                s->client->codec->push_join(&hub->scratch, chname, &info);
            else
                s->client->codec->push_leave(&hub->scratch, chname, &info);
            units[k] = td_rbuf_from(hub->scratch.data, hub->scratch.len);
        }
        s->client->tops->send(s->client->transport, units[k]);
    }
    td_rbuf_unref(units[0]);
    td_rbuf_unref(units[1]);
}

/* ---- subscriptions ----------------------------------------------------------------- */

struct td_sub *td_client_find_sub(const struct td_client *c, struct td_str channel)
{
    for (uint32_t i = 0; i < c->nsubs; i++) {
        const struct td_channel *ch = c->subs[i]->ch;
        if (ch->name_len == channel.n && memcmp(ch->name, channel.p, channel.n) == 0)
            return c->subs[i];
    }
    return NULL;
}

struct td_sub *td_hub_sub_add(struct td_client *c, struct td_channel *ch, bool push_join_leave,
                              char *chan_info)
{
    struct td_sub *s = td_xcalloc(1, sizeof(*s));
    s->chan_info = chan_info;
    s->client = c;
    s->ch = ch;
    s->push_join_leave = push_join_leave;
    if (ch->nsubs == ch->capsubs) {
        ch->capsubs = ch->capsubs ? ch->capsubs * 2 : 1;
        ch->subs = td_xrealloc(ch->subs, ch->capsubs * sizeof(*ch->subs));
    }
    s->idx = ch->nsubs;
    ch->subs[ch->nsubs++] = s;
    c->hub->stats.subscriptions++;
    if (codec_is_json(c->codec))
        ch->n_json_subs++;
    else
        ch->n_pb_subs++;
    ch->idle_since_ms = 0;
    if (c->nsubs == c->capsubs) {
        c->capsubs = c->capsubs ? c->capsubs * 2 : 1;
        c->subs = td_xrealloc(c->subs, c->capsubs * sizeof(*c->subs));
    }
    c->subs[c->nsubs++] = s;
    return s;
}

/* Removes s from its channel and client (swap-remove in both) and frees it. */
static void sub_remove(struct td_sub *s, int64_t now_ms)
{
    struct td_channel *ch = s->ch;
    struct td_client *c = s->client;
    uint32_t last = ch->nsubs - 1;
    ch->subs[s->idx] = ch->subs[last];
    ch->subs[s->idx]->idx = s->idx;
    ch->nsubs--;
    c->hub->stats.subscriptions--;
    if (codec_is_json(c->codec))
        ch->n_json_subs--;
    else
        ch->n_pb_subs--;
    if (ch->nsubs == 0)
        ch->idle_since_ms = now_ms > 0 ? now_ms : 1;
    for (uint32_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i] == s) {
            c->subs[i] = c->subs[--c->nsubs];
            break;
        }
    }
    free(s->chan_info);
    free(s);
}

void td_hub_sub_leave(struct td_hub *hub, struct td_sub *s, int64_t now_ms)
{
    struct td_channel *ch = s->ch;
    struct td_client *c = s->client;
    if (!ch->ns->join_leave) {
        sub_remove(s, now_ms);
        return;
    }
    /* The leave push describes the subscription, so build it before freeing it; the
     * leaving client is no longer in the channel when the push goes out. */
    char *chan_info = s->chan_info;
    s->chan_info = NULL;
    sub_remove(s, now_ms);
    struct td_sub about = {.client = c, .ch = ch, .chan_info = chan_info};
    td_hub_push_join_leave(hub, ch, c, &about, false);
    free(chan_info);
}

void td_hub_unsubscribe(struct td_hub *hub, struct td_client *c, struct td_str channel,
                        uint32_t code, const char *reason, int64_t now_ms)
{
    struct td_sub *s = td_client_find_sub(c, channel);
    if (s == NULL)
        return;
    td_hub_sub_leave(hub, s, now_ms);
    td_buf_reset(&hub->scratch);
    c->codec->push_unsubscribe(&hub->scratch, channel, code, reason);
    td_client_send_buf(c, &hub->scratch);
}

/* ---- publish and fan-out ----------------------------------------------------------- */

static void hub_fanout(struct td_hub *hub, struct td_channel *ch, struct td_pub *pub)
{
    struct td_str chname = {ch->name, ch->name_len};
    struct td_rbuf *json_unit = NULL, *pb_unit = NULL;
    if (ch->n_json_subs > 0) {
        if (pub->data_json < 0)
            pub->data_json = td_json_valid(pub->wire.data.p, pub->wire.data.n) ? 1 : 0;
        if (pub->data_json) {
            td_buf_reset(&hub->scratch);
            td_codec_json.push_pub(&hub->scratch, chname, &pub->wire);
            json_unit = td_rbuf_from(hub->scratch.data, hub->scratch.len);
        }
    }
    if (ch->n_pb_subs > 0) {
        td_buf_reset(&hub->scratch);
        td_codec_protobuf.push_pub(&hub->scratch, chname, &pub->wire);
        pb_unit = td_rbuf_from(hub->scratch.data, hub->scratch.len);
    }
    /* A subscriber closed during this loop (slow, wrong protocol) keeps its subscription
     * until its transport frees it, so ch->subs does not change under us. */
    for (uint32_t i = 0; i < ch->nsubs; i++) {
        struct td_client *c = ch->subs[i]->client;
        if (c->state != TD_CLIENT_CONNECTED)
            continue;
        struct td_rbuf *unit = codec_is_json(c->codec) ? json_unit : pb_unit;
        if (unit == NULL) {
            /* Binary data cannot be carried by the JSON protocol. */
            td_client_disconnect(c, TD_DISC_INAPPROPRIATE_PROTOCOL, "inappropriate protocol");
            continue;
        }
        if (ch->ns->datagrams && c->tops->send_datagram != NULL &&
            c->tops->send_datagram(c->transport, unit) == 0)
            hub->stats.deliveries++;
        else if (c->tops->send(c->transport, unit) == TD_ELIMIT)
            hub->stats.slow_disconnects++;
        else
            hub->stats.deliveries++;
    }
    td_rbuf_unref(json_unit);
    td_rbuf_unref(pb_unit);
}

/* A remembered result of an idempotent publish (API idempotency_key). */
struct idem_entry {
    int64_t expires_ms;
    struct td_publish_result res;
    size_t key_len;
    char key[];
};

static void idem_sweep(struct td_channel *ch, int64_t now_ms)
{
    for (size_t i = 0; i < ch->idem.cap; i++) {
        struct idem_entry *e = ch->idem.slots[i].value;
        if (ch->idem.slots[i].key == NULL || e->expires_ms > now_ms)
            continue;
        td_map_del(&ch->idem, e->key, e->key_len);
        free(e);
        i--; /* backward-shift deletion may have moved an entry into slot i */
    }
}

static void idem_free_all(struct td_channel *ch)
{
    for (size_t i = 0; i < ch->idem.cap; i++) {
        if (ch->idem.slots[i].key != NULL)
            free(ch->idem.slots[i].value);
    }
    td_map_free(&ch->idem);
}

/*
 * A store operation in flight. The channel name and idempotency key are copied after the
 * struct because the channel may be forgotten (DROP) before the store is done.
 */
struct hub_op {
    struct td_store_op op;
    struct td_pub *pub;
    td_hub_publish_cb cb;
    void *cb_ud;
    char bytes[];
};

static struct hub_op *hub_op_new(struct td_channel *ch, enum td_store_op_kind kind,
                                 struct td_str idem_key)
{
    struct hub_op *o = td_xcalloc(1, sizeof(*o) + ch->name_len + idem_key.n + 1);
    memcpy(o->bytes, ch->name, ch->name_len);
    if (idem_key.n > 0)
        memcpy(o->bytes + ch->name_len, idem_key.p, idem_key.n);
    o->op.kind = kind;
    o->op.channel = o->bytes;
    o->op.channel_len = ch->name_len;
    o->op.idem_key = o->bytes + ch->name_len;
    o->op.idem_key_len = idem_key.n;
    memcpy(o->op.epoch, ch->stream.epoch, sizeof(o->op.epoch));
    return o;
}

static void hub_op_submit(struct td_hub *hub, struct td_channel *ch, struct hub_op *o)
{
    if (o->op.kind != TD_STORE_OP_DROP) {
        o->op.ud = ch;
        ch->npending++;
    }
    hub->stats.store_pending++;
    hub->store.submit(hub->store.ud, &o->op);
}

static void hub_store_submit(struct td_hub *hub, struct td_channel *ch, enum td_store_op_kind kind)
{
    hub_op_submit(hub, ch, hub_op_new(ch, kind, TD_STR_NULL));
}

void td_hub_history_remove(struct td_hub *hub, struct td_channel *ch)
{
    td_stream_clear(&ch->stream);
    if (ch->durable)
        hub_store_submit(hub, ch, TD_STORE_OP_REMOVE);
}

static void hub_result(const struct td_channel *ch, uint64_t offset, struct td_publish_result *r)
{
    memset(r, 0, sizeof(*r));
    r->offset = offset;
    if (ch->has_history)
        memcpy(r->epoch, ch->stream.epoch, sizeof(r->epoch));
}

void td_hub_store_done(struct td_hub *hub, struct td_store_op *op, int64_t now_ms)
{
    struct hub_op *o = (struct hub_op *)op;
    struct td_channel *ch = op->ud; /* NULL for DROP: the channel is gone */
    hub->stats.store_pending--;
    if (ch != NULL)
        ch->npending--;
    if (op->status != 0)
        hub->stats.store_failures++;
    if (op->kind == TD_STORE_OP_PUBLISH) {
        struct td_publish_result r;
        if (op->status != 0) {
            o->cb(o->cb_ud, op->status, NULL);
        } else if (op->idem_hit) {
            hub_result(ch, op->offset, &r);
            o->cb(o->cb_ud, 0, &r);
        } else {
            struct td_pub *pub = o->pub;
            /* The store assigns offsets in submission order, so this is top + 1. */
            if (op->offset != ch->stream.top + 1)
                td_stream_clear(&ch->stream);
            ch->stream.top = op->offset - 1;
            td_stream_append(&ch->stream, pub, now_ms);
            hub->stats.publications++;
            hub_fanout(hub, ch, pub);
            hub_result(ch, pub->offset, &r);
            o->cb(o->cb_ud, 0, &r);
        }
        td_pub_unref(o->pub);
    }
    free(o);
}

static int hub_publish_ch(struct td_hub *hub, struct td_channel *ch, struct td_str data,
                          const struct td_client_info *info, struct td_str idem_key, int64_t now_ms,
                          td_hub_publish_cb cb, void *ud)
{
    if (ch->durable) {
        /* Idempotency keys live in the store too, so a retry after a restart is caught. */
        struct hub_op *o = hub_op_new(ch, TD_STORE_OP_PUBLISH, idem_key);
        o->pub = td_pub_new(data, info, now_ms);
        o->cb = cb;
        o->cb_ud = ud;
        int64_t wall = hub->wall_ms();
        o->op.pub = o->pub;
        o->op.wall_ms = wall;
        o->op.expires_ms = wall + ch->ns->history_ttl_ms;
        o->op.history_size = ch->ns->history_size;
        o->op.idem_expires_ms = wall + hub->cfg->idempotency_window_ms;
        hub_op_submit(hub, ch, o);
        return 0;
    }
    if (idem_key.n > 0) {
        struct idem_entry *e = td_map_get(&ch->idem, idem_key.p, idem_key.n);
        if (e != NULL && e->expires_ms > now_ms) {
            cb(ud, 0, &e->res); /* a retry: the original result, no second publication */
            return 0;
        }
        if (ch->idem.count >= TD_HUB_IDEM_MAX_KEYS) {
            idem_sweep(ch, now_ms);
            if (ch->idem.count >= TD_HUB_IDEM_MAX_KEYS)
                return TD_ELIMIT;
        }
    }
    struct td_pub *pub = td_pub_new(data, info, now_ms);
    if (ch->has_history)
        td_stream_append(&ch->stream, pub, now_ms);
    hub->stats.publications++;
    hub_fanout(hub, ch, pub);
    struct td_publish_result r;
    hub_result(ch, pub->offset, &r);
    td_pub_unref(pub);
    if (idem_key.n > 0) {
        struct idem_entry *e = td_map_get(&ch->idem, idem_key.p, idem_key.n);
        if (e == NULL) {
            e = td_xmalloc(sizeof(*e) + idem_key.n);
            memcpy(e->key, idem_key.p, idem_key.n);
            e->key_len = idem_key.n;
            td_map_put(&ch->idem, e->key, e->key_len, e);
        }
        e->expires_ms = now_ms + hub->cfg->idempotency_window_ms;
        e->res = r;
    }
    cb(ud, 0, &r);
    return 0;
}

/* ---- "yjs" channels: documents owned by the rooms (td_yroom.h) --------------------- */

/* A publish into a "yjs" channel waiting for its room. The publisher's info is copied into
 * bytes; ch is kept by ch->npending until the room answers. */
struct ypub {
    struct td_hub *hub;
    struct td_channel *ch;
    td_hub_publish_cb cb;
    void *ud;
    bool has_info;
    bool published;
    struct td_client_info info;
    struct td_publish_result res;
    char bytes[];
};

static void on_hook_published(void *ud, int status, const struct td_publish_result *res)
{
    struct ypub *yp = ud;
    if (yp == NULL || status != 0)
        return;
    yp->published = true;
    yp->res = *res;
}

static void hub_yroom_hook(void *ud, const char *room, size_t len, const uint8_t *update, size_t n,
                           void *origin, int64_t now)
{
    struct td_hub *hub = ud;
    struct ypub *yp = origin;
    struct td_channel *ch;
    if (yp != NULL) {
        ch = yp->ch; /* a publish from the channel itself: published here, once */
    } else {
        /* A y-websocket or doc_update edit. A channel without state has no subscriber and
         * no history anyone could recover: a later subscriber catches up with doc_state. */
        ch = td_hub_channel(hub, (struct td_str){room, len});
        if (ch == NULL || !ch->ns->yjs)
            return;
    }
    struct td_buf data;
    td_buf_init(&data);
    td_ydocchan_encode(update, n, &data);
    /* Not durable (hub_channel_new): this completes inside the call. */
    (void)hub_publish_ch(hub, ch, (struct td_str){(const char *)data.data, data.len},
                         yp != NULL && yp->has_info ? &yp->info : NULL, TD_STR_NULL, now,
                         on_hook_published, yp);
    td_buf_free(&data);
}

void td_hub_set_yrooms(struct td_hub *hub, struct td_yrooms *rs)
{
    hub->yrooms = rs;
    if (rs != NULL)
        td_yrooms_set_hook(rs, hub_yroom_hook, hub);
}

static void on_ypub_done(void *ud, int status, const struct td_buf *update)
{
    (void)update;
    struct ypub *yp = ud;
    yp->ch->npending--;
    if (status == 0) {
        struct td_publish_result r;
        memset(&r, 0, sizeof(r));
        yp->cb(yp->ud, 0, yp->published ? &yp->res : &r);
    } else {
        /* refused by the document (malformed, too large), or the store failed */
        yp->cb(yp->ud, status == TD_ESTORE ? TD_ESTORE : TD_EPROTO, NULL);
    }
    free(yp);
}

static struct td_str ypub_copy(char **at, struct td_str s)
{
    struct td_str r = {*at, s.n};
    if (s.n > 0)
        memcpy(*at, s.p, s.n);
    *at += s.n;
    return r;
}

static int hub_publish_yjs(struct td_hub *hub, struct td_channel *ch, struct td_str data,
                           const struct td_client_info *info, int64_t now_ms, td_hub_publish_cb cb,
                           void *ud)
{
    if (hub->yrooms == NULL)
        return TD_EINVAL;
    struct td_buf update;
    td_buf_init(&update);
    if (td_ydocchan_decode(data, &update) != 0) {
        td_buf_free(&update);
        return TD_EPROTO;
    }
    size_t extra =
        info != NULL ? info->user.n + info->client.n + info->conn_info.n + info->chan_info.n : 0;
    struct ypub *yp = td_xcalloc(1, sizeof(*yp) + extra + 1);
    yp->hub = hub;
    yp->ch = ch;
    yp->cb = cb;
    yp->ud = ud;
    if (info != NULL) {
        char *at = yp->bytes;
        yp->has_info = true;
        yp->info.user = ypub_copy(&at, info->user);
        yp->info.client = ypub_copy(&at, info->client);
        yp->info.conn_info = ypub_copy(&at, info->conn_info);
        yp->info.chan_info = ypub_copy(&at, info->chan_info);
    }
    ch->npending++;
    /* The answer may come at once (a room in memory, no store) or after load and commit. */
    td_yrooms_api_update_from(hub->yrooms, ch->name, ch->name_len, update.data, update.len, yp,
                              on_ypub_done, yp, now_ms);
    td_buf_free(&update);
    return 0;
}

int td_hub_publish_async(struct td_hub *hub, struct td_str channel, struct td_str data,
                         const struct td_client_info *info, struct td_str idem_key, int64_t now_ms,
                         td_hub_publish_cb cb, void *ud)
{
    struct td_channel *ch = td_hub_channel_get(hub, channel, now_ms);
    if (ch == NULL)
        return TD_ENOTFOUND;
    return td_hub_channel_publish(hub, ch, data, info, idem_key, now_ms, cb, ud);
}

int td_hub_channel_publish(struct td_hub *hub, struct td_channel *ch, struct td_str data,
                           const struct td_client_info *info, struct td_str idem_key,
                           int64_t now_ms, td_hub_publish_cb cb, void *ud)
{
    if (!ch->ns->yjs)
        return hub_publish_ch(hub, ch, data, info, idem_key, now_ms, cb, ud);
    return hub_publish_yjs(hub, ch, data, info, now_ms, cb, ud);
}

/* Captures the result of a publish that completes synchronously. */
struct sync_result {
    bool done;
    int status;
    struct td_publish_result res;
};

static void on_sync_publish(void *ud, int status, const struct td_publish_result *res)
{
    struct sync_result *sr = ud;
    sr->done = true;
    sr->status = status;
    if (res != NULL)
        sr->res = *res;
}

int td_hub_publish_idem(struct td_hub *hub, struct td_str channel, struct td_str data,
                        const struct td_client_info *info, struct td_str idem_key, int64_t now_ms,
                        struct td_publish_result *res)
{
    struct td_channel *ch = td_hub_channel_get(hub, channel, now_ms);
    if (ch != NULL &&
        (ch->durable || (ch->ns->yjs && hub->yrooms != NULL && td_yrooms_has_store(hub->yrooms))))
        return TD_EAGAIN; /* these channels only publish asynchronously */
    struct sync_result sr = {0};
    int rv = td_hub_publish_async(hub, channel, data, info, idem_key, now_ms, on_sync_publish, &sr);
    if (rv != 0)
        return rv;
    if (sr.status == 0 && res != NULL)
        *res = sr.res;
    return sr.status;
}

int td_hub_publish(struct td_hub *hub, struct td_str channel, struct td_str data,
                   const struct td_client_info *info, int64_t now_ms, struct td_publish_result *res)
{
    return td_hub_publish_idem(hub, channel, data, info, TD_STR_NULL, now_ms, res);
}

/* ---- restoring from the store ------------------------------------------------------ */

struct td_channel *td_hub_restore_channel(struct td_hub *hub, struct td_str name, const char *epoch,
                                          uint64_t top, int64_t last_pub_wall_ms, int64_t now_ms)
{
    const struct td_ns_opts *ns = td_config_ns_for(hub->cfg, name.p, name.n);
    if (ns == NULL || td_map_get(&hub->channels, name.p, name.n) != NULL)
        return NULL;
    struct td_channel *ch = hub_channel_new(hub, name, ns, now_ms);
    if (!ch->durable || strlen(epoch) != TD_EPOCH_LEN) {
        td_map_del(&hub->channels, ch->name, ch->name_len);
        channel_free(ch);
        return NULL;
    }
    memcpy(ch->stream.epoch, epoch, TD_EPOCH_LEN + 1);
    ch->stream.top = top;
    int64_t age = hub->wall_ms() - last_pub_wall_ms;
    ch->stream.last_pub_ms = last_pub_wall_ms > 0 ? now_ms - (age > 0 ? age : 0) : 0;
    return ch;
}

void td_hub_restore_pub(struct td_hub *hub, struct td_channel *ch, uint64_t offset, int64_t wall_ms,
                        struct td_str data, const struct td_client_info *info, int64_t now_ms)
{
    if (offset == 0 || offset > ch->stream.top)
        return;
    int64_t age = hub->wall_ms() - wall_ms;
    struct td_pub *pub = td_pub_new(data, info, now_ms - (age > 0 ? age : 0));
    /* History rows are contiguous; if one is missing, keep only what follows the gap. */
    uint64_t top = ch->stream.top, last_pub = (uint64_t)ch->stream.last_pub_ms;
    uint64_t prev =
        ch->stream.count
            ? ch->stream.ring[(ch->stream.head + ch->stream.count - 1) % ch->stream.size]->offset
            : 0;
    if (prev != 0 && offset != prev + 1)
        td_stream_clear(&ch->stream);
    ch->stream.top = offset - 1;
    td_stream_append(&ch->stream, pub, pub->time_ms);
    ch->stream.top = top;
    ch->stream.last_pub_ms = (int64_t)last_pub;
    td_pub_unref(pub);
}
