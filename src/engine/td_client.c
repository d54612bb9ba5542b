/*
 * td_client.c - the Centrifuge client protocol for one connection: command dispatch,
 * permissions, subscribe with recovery, presence, history, ping/pong.
 *
 * Replies to the commands of one received frame are batched into one outgoing frame.
 */
#include "engine/td_hub.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_log.h"
#include "core/td_rand.h"
#include "auth/td_jwt.h"
#include "crdt/td_lib0.h"
#include "engine/td_yroom.h"

struct client_ctx {
    struct td_client *c;
    struct td_buf *out; /* replies of the current frame */
    int64_t now_ms;
};

/*
 * A client publish or rpc waiting for its result (durable and "yjs" channels answer after
 * the commit, doc_state after its room loaded). x is set while the call that may answer at
 * once runs, so a synchronous result joins this frame's replies.
 */
struct td_client_pending {
    struct td_client_pending *next, *prev;
    struct td_client *c; /* NULL once the client is gone */
    struct client_ctx *x;
    uint32_t id;
    enum td_cmd_kind kind;
};

const char td_client_anonymous[1] = "";

struct td_client *td_client_new(struct td_hub *hub, const struct td_codec *codec,
                                const struct td_transport_ops *tops, void *transport,
                                int64_t now_ms)
{
    struct td_client *c = td_xcalloc(1, sizeof(*c));
    c->hub = hub;
    c->codec = codec;
    c->tops = tops;
    c->transport = transport;
    c->state = TD_CLIENT_NEW;
    c->user = (char *)td_client_anonymous; /* shared: anonymous clients allocate no name */
    c->created_ms = now_ms;
    td_rand_uuid(c->id);
    hub->nclients++;
    return c;
}

void td_client_free(struct td_client *c, int64_t now_ms)
{
    struct td_hub *hub = c->hub;
    c->state = TD_CLIENT_CLOSED;
    /* Publishes still waiting for the store complete later with nobody to tell. */
    for (struct td_client_pending *p = c->pending; p != NULL; p = p->next)
        p->c = NULL;
    while (c->nsubs > 0)
        td_hub_sub_leave(hub, c->subs[c->nsubs - 1], now_ms);
    if (td_map_get(&hub->clients, c->id, strlen(c->id)) == c)
        td_map_del(&hub->clients, c->id, strlen(c->id));
    hub->nclients--;
    free(c->subs);
    if (c->user != td_client_anonymous)
        free(c->user);
    free(c->conn_info);
    free(c);
}

void td_client_disconnect(struct td_client *c, uint32_t code, const char *reason)
{
    if (c->state == TD_CLIENT_CLOSED)
        return;
    c->state = TD_CLIENT_CLOSED;
    c->tops->close(c->transport, code, reason);
}

/* ---- reply helpers ----------------------------------------------------------------- */

static void reply_begin(struct client_ctx *x)
{
    if (x->out->len > 0 && !x->c->codec->binary)
        td_buf_append_byte(x->out, '\n');
}

static void reply_error(struct client_ctx *x, uint32_t id, uint32_t code)
{
    reply_begin(x);
    x->c->codec->reply_error(x->out, id, code, td_hub_error_message(code),
                             code == TD_ERR_INTERNAL || code == TD_ERR_TOO_MANY_REQUESTS);
}

static void reply_empty(struct client_ctx *x, const struct td_cmd *cmd)
{
    reply_begin(x);
    x->c->codec->reply_empty(x->out, cmd->id, cmd->kind);
}

/* ---- permissions ------------------------------------------------------------------- */

enum perm { PERM_SUBSCRIBE, PERM_PUBLISH, PERM_PRESENCE, PERM_HISTORY };

static bool client_allowed(const struct td_client *c, const struct td_ns_opts *ns, enum perm p,
                           bool subscribed)
{
    const struct td_config *cfg = c->hub->cfg;
    if (cfg->client_insecure)
        return true;
    bool anon = c->user[0] == '\0';
    switch (p) {
    case PERM_SUBSCRIBE:
        return ns->allow_subscribe_for_client && (!anon || ns->allow_subscribe_for_anonymous);
    case PERM_PUBLISH:
        return (ns->allow_publish_for_client || (subscribed && ns->allow_publish_for_subscriber)) &&
               (!anon || ns->allow_publish_for_anonymous);
    case PERM_PRESENCE:
        return (ns->allow_presence_for_client ||
                (subscribed && ns->allow_presence_for_subscriber)) &&
               (!anon || ns->allow_presence_for_anonymous);
    case PERM_HISTORY:
        return (ns->allow_history_for_client || (subscribed && ns->allow_history_for_subscriber)) &&
               (!anon || ns->allow_history_for_anonymous);
    }
    return false;
}

static bool channel_subscribed(const struct td_client *c, struct td_str channel)
{
    return td_client_find_sub(c, channel) != NULL;
}

/*
 * Common checks for commands that name a channel. Returns the namespace options, or NULL
 * after replying with an error (or closing for an empty channel).
 */
static const struct td_ns_opts *client_channel_check(struct client_ctx *x, const struct td_cmd *cmd)
{
    const struct td_config *cfg = x->c->hub->cfg;
    if (cmd->channel.n == 0) {
        td_client_disconnect(x->c, TD_DISC_BAD_REQUEST, "bad request");
        return NULL;
    }
    if (cmd->channel.n > cfg->channel_max_length) {
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST);
        return NULL;
    }
    const struct td_ns_opts *ns = td_config_ns_for(cfg, cmd->channel.p, cmd->channel.n);
    if (ns == NULL)
        reply_error(x, cmd->id, TD_ERR_UNKNOWN_CHANNEL);
    return ns;
}

/* ---- tokens ------------------------------------------------------------------------ */

/* Expiry of a verified token: expire_at overrides exp; 0 means it never expires. */
static int64_t token_expiry(const struct td_jwt_claims *cl)
{
    return cl->has_expire_at ? cl->expire_at : cl->exp;
}

static bool str_is(struct td_str a, const char *b)
{
    return a.n == strlen(b) && memcmp(a.p, b, a.n) == 0;
}

/*
 * Verifies a token against the configured keys. Returns the status; on TD_JWT_OK the caller
 * owns *cl. Without keys every token is invalid.
 */
static enum td_jwt_status client_verify(const struct td_client *c, struct td_str token,
                                        struct td_jwt_claims *cl)
{
    const char *reason = "no token keys configured";
    enum td_jwt_status st = TD_JWT_INVALID;
    if (c->hub->keys != NULL)
        st = td_jwt_verify(c->hub->keys, token.p, token.n, c->hub->wall_s(), cl, &reason);
    if (st != TD_JWT_OK)
        td_log_debug("token refused", "client=%s reason=\"%s\"", c->id,
                     st == TD_JWT_EXPIRED ? "expired" : reason);
    return st;
}

/*
 * Checks the subscription token of a subscribe or sub_refresh command for cmd->channel.
 * Returns true with *cl filled (caller frees) if it is valid and names this channel, user and
 * client; otherwise answers the command itself (103 invalid, 109 expired, close 3500 on a
 * mismatch) and returns false.
 */
static bool client_sub_token(struct client_ctx *x, const struct td_cmd *cmd,
                             struct td_jwt_claims *cl)
{
    struct td_client *c = x->c;
    enum td_jwt_status st = client_verify(c, cmd->token, cl);
    if (st != TD_JWT_OK) {
        reply_error(x, cmd->id,
                    st == TD_JWT_EXPIRED ? TD_ERR_TOKEN_EXPIRED : TD_ERR_PERMISSION_DENIED);
        return false;
    }
    bool matches = cl->channel != NULL && str_is(cmd->channel, cl->channel) &&
                   strcmp(cl->sub, c->user) == 0 &&
                   (cl->client == NULL || strcmp(cl->client, c->id) == 0);
    if (!matches) {
        td_jwt_claims_free(cl);
        td_client_disconnect(c, TD_DISC_INVALID_TOKEN, "invalid token");
        return false;
    }
    return true;
}

/* ---- commands ---------------------------------------------------------------------- */

/*
 * Fills the stream position part of a SubscribeResult for a subscription to ch: epoch and
 * top offset when positioned, and the recovery outcome when the client asked to recover
 * from (epoch, offset). Recovered publications go into *wire (caller frees).
 */
static void client_position(struct client_ctx *x, struct td_channel *ch, bool recoverable,
                            bool positioned, bool recover, struct td_str epoch, uint64_t offset,
                            struct td_subscribe_result *r, struct td_publication **wire)
{
    *wire = NULL;
    r->recoverable = recoverable;
    r->positioned = positioned;
    if (positioned) {
        r->epoch.p = ch->stream.epoch;
        r->epoch.n = strlen(ch->stream.epoch);
        r->offset = ch->stream.top;
    }
    if (!recoverable || !recover)
        return;
    struct td_recovery rec;
    r->was_recovering = true;
    td_stream_recover(&ch->stream, epoch, offset, x->c->hub->cfg->recovery_max_publication_limit,
                      x->now_ms, &rec);
    if (!rec.recovered)
        return;
    r->recovered = true;
    r->offset = offset; /* the client advances it while applying the publications */
    if (rec.npubs > 0) {
        *wire = td_xmalloc(rec.npubs * sizeof(**wire));
        for (size_t i = 0; i < rec.npubs; i++)
            (*wire)[i] = rec.pubs[i]->wire;
        r->pubs = *wire;
        r->npubs = rec.npubs;
    }
    free(rec.pubs);
}

/*
 * Server-side subscriptions from the connection token's `channels` claim, made during
 * connect. Positions the client sent in ConnectRequest.subs are used for recovery. Fills
 * res/wires (n entries each, caller frees every wire and both arrays). Returns false after
 * closing the client when the channel limit is exceeded (3505, as Centrifugo).
 */
static bool client_server_subs(struct client_ctx *x, const struct td_cmd *cmd, char **channels,
                               char **infos, size_t n, struct td_connect_sub_result *res,
                               struct td_publication **wires, size_t *nres)
{
    struct td_client *c = x->c;
    const struct td_config *cfg = c->hub->cfg;
    *nres = 0;
    for (size_t i = 0; i < n; i++) {
        struct td_str name = {channels[i], strlen(channels[i])};
        const struct td_ns_opts *ns = td_config_ns_for(cfg, name.p, name.n);
        if (name.n == 0 || name.n > cfg->channel_max_length || ns == NULL ||
            td_client_find_sub(c, name) != NULL) {
            td_log_warn("server-side subscription skipped", "client=%s channel=\"%.*s\"", c->id,
                        (int)(name.n > 200 ? 200 : name.n), name.p);
            continue;
        }
        if (c->nsubs >= cfg->channel_limit) {
            td_client_disconnect(c, TD_DISC_CHANNEL_LIMIT, "channel limit");
            return false;
        }
        struct td_channel *ch = td_hub_channel_get(c->hub, name, x->now_ms);
        const struct td_connect_sub *pos = NULL;
        for (uint32_t k = 0; k < cmd->nsubs; k++) {
            if (cmd->subs[k].channel.n == name.n &&
                memcmp(cmd->subs[k].channel.p, name.p, name.n) == 0)
                pos = &cmd->subs[k];
        }
        bool recoverable = ch->has_history && ns->force_recovery;
        bool positioned = ch->has_history && (recoverable || ns->force_positioning);
        struct td_connect_sub_result *sr = &res[*nres];
        memset(sr, 0, sizeof(*sr));
        sr->channel.p = ch->name;
        sr->channel.n = ch->name_len;
        client_position(x, ch, recoverable, positioned, pos != NULL && pos->recover,
                        pos ? pos->epoch : TD_STR_NULL, pos ? pos->offset : 0, &sr->r,
                        &wires[*nres]);
        char *info = NULL; /* the subs claim's info for this channel; the subscription owns it */
        if (infos != NULL) {
            info = infos[i];
            infos[i] = NULL;
        }
        td_hub_sub_add(c, ch, ns->join_leave && ns->force_push_join_leave, info);
        (*nres)++;
    }
    return true;
}

static void cmd_connect(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    const struct td_config *cfg = c->hub->cfg;
    if (c->state != TD_CLIENT_NEW) {
        td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
        return;
    }
    struct td_connect_result r = {0};
    char **server_channels = NULL, **server_infos = NULL;
    size_t n_server_channels = 0;
    bool use_token = cmd->token.n > 0 && (c->hub->keys != NULL || !cfg->client_insecure);
    if (use_token) {
        struct td_jwt_claims cl;
        enum td_jwt_status st = client_verify(c, cmd->token, &cl);
        if (st == TD_JWT_EXPIRED) {
            reply_error(x, cmd->id, TD_ERR_TOKEN_EXPIRED); /* the SDK fetches a new token */
            return;
        }
        if (st != TD_JWT_OK || cl.channel != NULL) { /* a subscription token is no login */
            if (st == TD_JWT_OK)
                td_jwt_claims_free(&cl);
            td_client_disconnect(c, TD_DISC_INVALID_TOKEN, "invalid token");
            return;
        }
        if (cl.sub[0] != '\0') {
            c->user = cl.sub;
            cl.sub = NULL;
        }
        c->conn_info = cl.info;
        cl.info = NULL;
        c->expires_at_s = token_expiry(&cl);
        if (c->expires_at_s > 0) {
            int64_t ttl = c->expires_at_s - c->hub->wall_s();
            r.expires = true;
            r.ttl = ttl > 0 ? (uint32_t)ttl : 1;
        }
        server_channels = cl.channels; /* kept until the subscriptions are made */
        server_infos = cl.channel_infos;
        n_server_channels = cl.n_channels;
        cl.channels = NULL;
        cl.channel_infos = NULL;
        cl.n_channels = 0;
        td_jwt_claims_free(&cl);
    } else if (!cfg->client_insecure && !cfg->client_allow_anonymous_connect_without_token) {
        td_client_disconnect(c, TD_DISC_INVALID_TOKEN, "invalid token");
        return;
    }
    c->state = TD_CLIENT_CONNECTED;
    td_map_put(&c->hub->clients, c->id, strlen(c->id), c);
    uint32_t ping_s = (uint32_t)(cfg->ping_interval_ms / 1000);
    if (cfg->ping_interval_ms > 0) {
        if (ping_s == 0)
            ping_s = 1;
        /* First ping at a random point in [interval/2, interval) to spread reconnect storms. */
        int64_t half = cfg->ping_interval_ms / 2;
        c->next_ping_ms = x->now_ms + half + (int64_t)(td_rand_u64() % (uint64_t)(half + 1));
    }
    r.client.p = c->id;
    r.client.n = strlen(c->id);
    r.version.p = TD_VERSION;
    r.version.n = strlen(TD_VERSION);
    r.ping = cfg->ping_interval_ms > 0 ? ping_s : 0;
    r.pong = cfg->ping_interval_ms > 0 && cfg->pong_timeout_ms > 0;
    if (c->session != NULL) { /* an emulation client posts its commands naming these */
        r.session.p = c->session;
        r.session.n = strlen(c->session);
        r.node.p = c->hub->node_id;
        r.node.n = strlen(c->hub->node_id);
    }
    struct td_connect_sub_result *subs = NULL;
    struct td_publication **wires = NULL;
    size_t nsubs = 0;
    bool ok = true;
    if (n_server_channels > 0) {
        subs = td_xcalloc(n_server_channels, sizeof(*subs));
        wires = td_xcalloc(n_server_channels, sizeof(*wires));
        ok = client_server_subs(x, cmd, server_channels, server_infos, n_server_channels, subs,
                                wires, &nsubs);
        r.subs = subs;
        r.nsubs = nsubs;
    }
    if (ok) {
        reply_begin(x);
        c->codec->reply_connect(x->out, cmd->id, &r);
    }
    for (size_t i = 0; i < nsubs; i++)
        free(wires[i]);
    free(wires);
    free(subs);
    for (size_t i = 0; i < n_server_channels; i++) {
        free(server_channels[i]);
        if (server_infos != NULL)
            free(server_infos[i]);
    }
    free(server_channels);
    free(server_infos);
    if (!ok || nsubs == 0)
        return;
    /* Join pushes follow the connect reply. */
    td_client_send_buf(c, x->out);
    td_buf_reset(x->out);
    for (uint32_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i]->ch->ns->join_leave)
            td_hub_push_join_leave(c->hub, c->subs[i]->ch, c, c->subs[i], true);
    }
}

static void cmd_subscribe(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    struct td_hub *hub = c->hub;
    const struct td_config *cfg = hub->cfg;
    if (cmd->delta.n > 0 && !(cmd->delta.n == 6 && memcmp(cmd->delta.p, "fossil", 6) == 0)) {
        td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
        return;
    }
    const struct td_ns_opts *ns = client_channel_check(x, cmd);
    if (ns == NULL)
        return;
    if (cmd->type != 0) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE); /* map / shared poll subscriptions */
        return;
    }
    if (cmd->has_tf) {
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST); /* tag filters not supported */
        return;
    }
    if (channel_subscribed(c, cmd->channel)) {
        reply_error(x, cmd->id, TD_ERR_ALREADY_SUBSCRIBED);
        return;
    }
    if (c->nsubs >= cfg->channel_limit) {
        reply_error(x, cmd->id, TD_ERR_LIMIT_EXCEEDED);
        return;
    }
    /* A valid subscription token grants the subscription; private ($) channels need one. */
    bool private_channel = cmd->channel.p[0] == '$';
    char *chan_info = NULL;
    struct td_subscribe_result r = {0};
    if (cmd->token.n > 0 && (hub->keys != NULL || !cfg->client_insecure)) {
        struct td_jwt_claims cl;
        if (!client_sub_token(x, cmd, &cl))
            return;
        int64_t exp = token_expiry(&cl);
        if (exp > 0) {
            int64_t ttl = exp - hub->wall_s();
            r.expires = true;
            r.ttl = ttl > 0 ? (uint32_t)ttl : 1;
        }
        chan_info = cl.info;
        cl.info = NULL;
        td_jwt_claims_free(&cl);
    } else if (!cfg->client_insecure &&
               (private_channel || !client_allowed(c, ns, PERM_SUBSCRIBE, false))) {
        reply_error(x, cmd->id, TD_ERR_PERMISSION_DENIED);
        return;
    }
    struct td_channel *ch = td_hub_channel_get(hub, cmd->channel, x->now_ms);
    if (ch == NULL) {
        free(chan_info);
        reply_error(x, cmd->id, TD_ERR_UNKNOWN_CHANNEL);
        return;
    }
    bool history_perm = cfg->client_insecure || client_allowed(c, ns, PERM_HISTORY, true);
    bool recoverable =
        ch->has_history &&
        (ns->force_recovery || (cmd->recoverable && (ns->allow_recovery || history_perm)));
    bool positioned =
        ch->has_history && (recoverable || ns->force_positioning ||
                            (cmd->positioned && (ns->allow_positioning || history_perm)));

    struct td_publication *wire;
    client_position(x, ch, recoverable, positioned, cmd->recover, cmd->epoch, cmd->offset, &r,
                    &wire);
    if (r.was_recovering && !r.recovered && (cmd->flag & 2)) {
        free(chan_info);
        reply_error(x, cmd->id, TD_ERR_UNRECOVERABLE_POSITION);
        return;
    }
    bool push_jl =
        ns->join_leave && (ns->force_push_join_leave ||
                           (cmd->join_leave && client_allowed(c, ns, PERM_PRESENCE, true)));
    struct td_sub *sub = td_hub_sub_add(c, ch, push_jl, chan_info);
    reply_begin(x);
    c->codec->reply_subscribe(x->out, cmd->id, &r);
    free(wire);
    if (ns->join_leave) {
        /* The join push must follow the subscribe reply: flush the batch first. */
        td_client_send_buf(c, x->out);
        td_buf_reset(x->out);
        td_hub_push_join_leave(hub, ch, c, sub, true);
    }
}

static void cmd_unsubscribe(struct client_ctx *x, const struct td_cmd *cmd)
{
    if (cmd->channel.n == 0) {
        td_client_disconnect(x->c, TD_DISC_BAD_REQUEST, "bad request");
        return;
    }
    struct td_sub *s = td_client_find_sub(x->c, cmd->channel);
    if (s != NULL)
        td_hub_sub_leave(x->c->hub, s, x->now_ms);
    reply_empty(x, cmd);
}

static void pending_unlink(struct td_client_pending *p)
{
    if (p->c == NULL)
        return;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        p->c->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
}

/* Registers a pending reply for cmd (p is zeroed here). */
static void pending_add(struct client_ctx *x, const struct td_cmd *cmd, struct td_client_pending *p)
{
    struct td_client *c = x->c;
    memset(p, 0, sizeof(*p));
    p->c = c;
    p->x = x;
    p->id = cmd->id;
    p->kind = cmd->kind;
    p->next = c->pending;
    if (c->pending != NULL)
        c->pending->prev = p;
    c->pending = p;
}

/*
 * Answers the pending command p with an error code, or (code 0) with an empty reply or, for
 * an rpc, with rpc_data. Frees p when it completed after its call returned.
 */
static void pending_finish(struct td_client_pending *p, uint32_t code, struct td_str rpc_data)
{
    struct td_client *c = p->c;
    struct client_ctx *x = p->x;
    struct td_cmd cmd = {.id = p->id, .kind = p->kind};
    pending_unlink(p);
    p->c = NULL;
    if (x == NULL)
        free(p); /* completed later: nobody else holds p */
    if (c == NULL || c->state != TD_CLIENT_CONNECTED)
        return;
    struct td_buf *b = x != NULL ? x->out : &c->hub->scratch;
    if (x != NULL) {
        /* completed inside the call: join this frame's replies */
        reply_begin(x);
    } else {
        td_buf_reset(b);
    }
    if (code)
        c->codec->reply_error(b, cmd.id, code, td_hub_error_message(code), code == TD_ERR_INTERNAL);
    else if (cmd.kind == TD_CMD_RPC)
        c->codec->reply_rpc(b, cmd.id, rpc_data);
    else
        c->codec->reply_empty(b, cmd.id, cmd.kind);
    if (x == NULL)
        td_client_send_buf(c, b);
}

static void on_publish_done(void *ud, int status, const struct td_publish_result *res)
{
    (void)res; /* the client protocol's PublishResult is empty */
    /* TD_EPROTO: a "yjs" channel's room refused the update (not stored, not published) */
    uint32_t code = status == 0 ? 0 : status == TD_EPROTO ? TD_ERR_BAD_REQUEST : TD_ERR_INTERNAL;
    pending_finish(ud, code, TD_STR_NULL);
}

static void cmd_publish(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    const struct td_ns_opts *ns = client_channel_check(x, cmd);
    if (ns == NULL)
        return;
    if (cmd->type != 0) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    if (!cmd->has_data) {
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST);
        return;
    }
    if (!client_allowed(c, ns, PERM_PUBLISH, channel_subscribed(c, cmd->channel))) {
        reply_error(x, cmd->id, TD_ERR_PERMISSION_DENIED);
        return;
    }
    struct td_client_info info;
    td_client_info_fill(c, td_client_find_sub(c, cmd->channel), &info);
    /* Memory channels answer inside the call, so only a durable one needs p on the heap. */
    struct td_channel *ch = td_hub_channel_get(c->hub, cmd->channel, x->now_ms);
    if (ch == NULL) {
        reply_error(x, cmd->id, TD_ERR_UNKNOWN_CHANNEL);
        return;
    }
    struct td_client_pending local;
    struct td_client_pending *p = &local;
    if (ch->durable || ch->ns->yjs)
        p = td_xmalloc(sizeof(*p));
    pending_add(x, cmd, p);
    int rv = td_hub_channel_publish(c->hub, ch, cmd->data, &info, TD_STR_NULL, x->now_ms,
                                    on_publish_done, p);
    if (rv != 0) {
        pending_unlink(p);
        if (p != &local)
            free(p);
        /* TD_EPROTO: not a Yjs update (td_ydocchan.h); TD_EINVAL: "yjs" without rooms */
        reply_error(x, cmd->id,
                    rv == TD_ELIMIT   ? TD_ERR_LIMIT_EXCEEDED
                    : rv == TD_EPROTO ? TD_ERR_BAD_REQUEST
                    : rv == TD_EINVAL ? TD_ERR_NOT_AVAILABLE
                                      : TD_ERR_UNKNOWN_CHANNEL);
        return;
    }
    if (p->c == NULL) { /* completed during the call: on_publish_done freed nothing */
        if (p != &local)
            free(p);
        return;
    }
    assert(p != &local); /* only durable and "yjs" channels complete later */
    p->x = NULL;
}

/* ---- rpc: doc_state (tandem's own, docs/protocol.md) ------------------------------- */

static void on_rpc_doc_state(void *ud, int status, const struct td_buf *update)
{
    if (status != 0) {
        /* TD_EPROTO: a malformed state vector; otherwise the room could not load */
        pending_finish(ud, status == TD_EPROTO ? TD_ERR_BAD_REQUEST : TD_ERR_INTERNAL, TD_STR_NULL);
        return;
    }
    /* The answer is varUint8Array(state vector) + varUint8Array(update) (td_yroom.h). */
    struct td_lib0_reader r = {update->data, update->data + update->len};
    uint64_t n;
    struct td_ybytes sv, up;
    if (td_lib0_read_varuint(&r, &n) != 0 || td_lib0_read_bytes(&r, (size_t)n, &sv) != 0 ||
        td_lib0_read_varuint(&r, &n) != 0 || td_lib0_read_bytes(&r, (size_t)n, &up) != 0) {
        pending_finish(ud, TD_ERR_INTERNAL, TD_STR_NULL);
        return;
    }
    struct td_buf d;
    td_buf_init(&d);
    td_buf_append_str(&d, "{\"update\":\"");
    td_buf_reserve(&d, TD_BASE64_ENCODED_LEN(up.len) + TD_BASE64_ENCODED_LEN(sv.len) + 16);
    d.len += td_base64_encode(up.p, up.len, (char *)d.data + d.len);
    td_buf_append_str(&d, "\",\"sv\":\"");
    d.len += td_base64_encode(sv.p, sv.len, (char *)d.data + d.len);
    td_buf_append_str(&d, "\"}");
    pending_finish(ud, 0, (struct td_str){(const char *)d.data, d.len});
    td_buf_free(&d);
}

/*
 * rpc doc_state, data {"channel": C, "sv": SV}: the document of a "yjs" channel the client is
 * subscribed to, as {"update": U, "sv": S} (base64 v1: what SV lacks, or the whole state; and
 * the server document's state vector, so the caller can publish only what it lacks). Any other
 * method: 108, as Centrifugo without an rpc proxy.
 */
static void cmd_rpc(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    if (!str_is(cmd->method, "doc_state")) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    struct td_json_doc jd;
    if (!cmd->has_data || td_json_parse(&jd, cmd->data.p, cmd->data.n, NULL) != 0) {
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST);
        return;
    }
    const struct td_json *root = td_json_root(&jd);
    const struct td_json *chv = root->type == TD_JSON_OBJECT ? td_json_get(root, "channel") : NULL;
    const struct td_json *svv = root->type == TD_JSON_OBJECT ? td_json_get(root, "sv") : NULL;
    if (chv == NULL || chv->type != TD_JSON_STRING || chv->len == 0 ||
        (svv != NULL && svv->type != TD_JSON_STRING && svv->type != TD_JSON_NULL)) {
        td_json_doc_free(&jd);
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST);
        return;
    }
    struct td_sub *s = td_client_find_sub(c, (struct td_str){chv->str, chv->len});
    if (s == NULL) {
        td_json_doc_free(&jd);
        reply_error(x, cmd->id, TD_ERR_PERMISSION_DENIED);
        return;
    }
    if (!s->ch->ns->yjs || c->hub->yrooms == NULL) {
        td_json_doc_free(&jd);
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    bool has_sv = svv != NULL && svv->type == TD_JSON_STRING;
    uint8_t *sv = NULL;
    int sv_len = 0;
    if (has_sv) {
        size_t cap = TD_BASE64_DECODED_MAX(svv->len) + 1;
        sv = td_xmalloc(cap);
        sv_len = td_base64_decode(svv->str, svv->len, sv, cap);
    }
    td_json_doc_free(&jd);
    if (sv_len < 0) {
        free(sv);
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST);
        return;
    }
    struct td_client_pending *p = td_xmalloc(sizeof(*p));
    pending_add(x, cmd, p);
    td_yrooms_api_state(c->hub->yrooms, s->ch->name, s->ch->name_len, sv, (size_t)sv_len, has_sv,
                        1 | TD_YROOM_STATE_WITH_SV, on_rpc_doc_state, p, x->now_ms);
    free(sv);
    if (p->c == NULL) { /* answered during the call */
        free(p);
        return;
    }
    p->x = NULL;
}

static void cmd_presence(struct client_ctx *x, const struct td_cmd *cmd, bool stats)
{
    struct td_client *c = x->c;
    const struct td_ns_opts *ns = client_channel_check(x, cmd);
    if (ns == NULL)
        return;
    if (!ns->presence) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    if (!client_allowed(c, ns, PERM_PRESENCE, channel_subscribed(c, cmd->channel))) {
        reply_error(x, cmd->id, TD_ERR_PERMISSION_DENIED);
        return;
    }
    struct td_channel *ch = td_hub_channel(c->hub, cmd->channel);
    uint32_t n = ch != NULL ? ch->nsubs : 0;
    reply_begin(x);
    if (stats) {
        c->codec->reply_presence_stats(x->out, cmd->id, n,
                                       ch != NULL ? td_channel_num_users(ch) : 0);
        return;
    }
    struct td_client_info *infos = td_xcalloc(n ? n : 1, sizeof(*infos));
    for (uint32_t i = 0; i < n; i++)
        td_client_info_fill(ch->subs[i]->client, ch->subs[i], &infos[i]);
    c->codec->reply_presence(x->out, cmd->id, infos, n);
    free(infos);
}

static void cmd_history(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    const struct td_config *cfg = c->hub->cfg;
    const struct td_ns_opts *ns = client_channel_check(x, cmd);
    if (ns == NULL)
        return;
    if (ns->history_size == 0 || ns->history_ttl_ms == 0) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    if (!client_allowed(c, ns, PERM_HISTORY, channel_subscribed(c, cmd->channel))) {
        reply_error(x, cmd->id, TD_ERR_PERMISSION_DENIED);
        return;
    }
    if (cmd->has_since && cmd->reverse && cmd->since_offset == 0) {
        reply_error(x, cmd->id, TD_ERR_BAD_REQUEST);
        return;
    }
    struct td_channel *ch = td_hub_channel_get(c->hub, cmd->channel, x->now_ms);
    if (ch == NULL) {
        reply_error(x, cmd->id, TD_ERR_UNKNOWN_CHANNEL);
        return;
    }
    struct td_str epoch = {ch->stream.epoch, strlen(ch->stream.epoch)};
    if (cmd->has_since && cmd->since_epoch.n > 0 &&
        (cmd->since_epoch.n != epoch.n || memcmp(cmd->since_epoch.p, epoch.p, epoch.n) != 0)) {
        reply_error(x, cmd->id, TD_ERR_UNRECOVERABLE_POSITION);
        return;
    }
    size_t limit = 0;
    if (cmd->limit < 0 || (uint32_t)cmd->limit > cfg->history_max_publication_limit)
        limit = cfg->history_max_publication_limit;
    else
        limit = (size_t)cmd->limit;
    struct td_pub **pubs = td_xmalloc((limit ? limit : 1) * sizeof(*pubs));
    size_t n = td_stream_read(&ch->stream, cmd->has_since, cmd->since_offset, cmd->reverse, limit,
                              x->now_ms, pubs, limit);
    struct td_publication *wire = td_xmalloc((n ? n : 1) * sizeof(*wire));
    for (size_t i = 0; i < n; i++)
        wire[i] = pubs[i]->wire;
    struct td_history_result r = {wire, n, epoch, ch->stream.top};
    reply_begin(x);
    c->codec->reply_history(x->out, cmd->id, &r);
    free(wire);
    free(pubs);
}

/* refresh: a new connection token extends the connection's life. */
static void cmd_refresh(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    if (cmd->token.n == 0) {
        td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
        return;
    }
    if (c->hub->keys == NULL) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    struct td_jwt_claims cl;
    enum td_jwt_status st = client_verify(c, cmd->token, &cl);
    if (st == TD_JWT_EXPIRED) {
        td_client_disconnect(c, TD_DISC_EXPIRED, "connection expired");
        return;
    }
    if (st != TD_JWT_OK || cl.channel != NULL || strcmp(cl.sub, c->user) != 0) {
        if (st == TD_JWT_OK)
            td_jwt_claims_free(&cl);
        td_client_disconnect(c, TD_DISC_INVALID_TOKEN, "invalid token");
        return;
    }
    c->expires_at_s = token_expiry(&cl);
    td_jwt_claims_free(&cl);
    struct td_refresh_result r = {0};
    r.version.p = TD_VERSION;
    r.version.n = strlen(TD_VERSION);
    if (c->expires_at_s > 0) {
        int64_t ttl = c->expires_at_s - c->hub->wall_s();
        r.expires = true;
        r.ttl = ttl > 0 ? (uint32_t)ttl : 1;
    }
    reply_begin(x);
    c->codec->reply_refresh(x->out, cmd->id, &r);
}

/*
 * sub_refresh: a new subscription token for a channel the client is in. tandem does not
 * yet end subscriptions whose token expired, so the reply carries no new expiry.
 */
static void cmd_sub_refresh(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    if (cmd->channel.n == 0 || cmd->token.n == 0) {
        td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
        return;
    }
    if (c->hub->keys == NULL || cmd->type != 0) {
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        return;
    }
    if (td_client_find_sub(c, cmd->channel) == NULL) {
        reply_error(x, cmd->id, TD_ERR_PERMISSION_DENIED);
        return;
    }
    struct td_jwt_claims cl;
    if (!client_sub_token(x, cmd, &cl))
        return;
    td_jwt_claims_free(&cl);
    reply_empty(x, cmd);
}

/*
 * Token bucket for client.command_rate_limit: refills `limit` commands per second up to the
 * burst. Returns false when this command is over budget.
 */
static bool client_rate_ok(struct td_client *c, int64_t now_ms)
{
    const struct td_config *cfg = c->hub->cfg;
    if (cfg->command_rate_limit == 0)
        return true;
    uint32_t burst = cfg->command_rate_burst ? cfg->command_rate_burst : cfg->command_rate_limit;
    int64_t cap = (int64_t)burst * 1000;
    if (c->rate_last_ms == 0) {
        c->rate_tokens = cap;
    } else {
        c->rate_tokens += (now_ms - c->rate_last_ms) * (int64_t)cfg->command_rate_limit;
        if (c->rate_tokens > cap)
            c->rate_tokens = cap;
    }
    c->rate_last_ms = now_ms;
    if (c->rate_tokens < 1000)
        return false;
    c->rate_tokens -= 1000;
    return true;
}

/* Dispatches one command; returns false when the client was closed. */
static bool client_dispatch(struct client_ctx *x, const struct td_cmd *cmd)
{
    struct td_client *c = x->c;
    if (c->state == TD_CLIENT_NEW && cmd->kind != TD_CMD_CONNECT) {
        td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
        return false;
    }
    if (cmd->id == 0 && cmd->kind != TD_CMD_EMPTY && cmd->kind != TD_CMD_SEND) {
        td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
        return false;
    }
    /* Pongs and the connect itself are never limited; over budget is a temporary error. */
    if (cmd->kind != TD_CMD_EMPTY && cmd->kind != TD_CMD_CONNECT && !client_rate_ok(c, x->now_ms)) {
        if (cmd->id != 0)
            reply_error(x, cmd->id, TD_ERR_TOO_MANY_REQUESTS);
        return true;
    }
    switch (cmd->kind) {
    case TD_CMD_EMPTY:
        if (cmd->id != 0) {
            td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
            return false;
        }
        c->pong_due_ms = 0; /* a pong; an unsolicited one is harmless, so accept it */
        break;
    case TD_CMD_CONNECT:
        cmd_connect(x, cmd);
        break;
    case TD_CMD_SUBSCRIBE:
        cmd_subscribe(x, cmd);
        break;
    case TD_CMD_UNSUBSCRIBE:
        cmd_unsubscribe(x, cmd);
        break;
    case TD_CMD_PUBLISH:
        cmd_publish(x, cmd);
        break;
    case TD_CMD_PRESENCE:
        cmd_presence(x, cmd, false);
        break;
    case TD_CMD_PRESENCE_STATS:
        cmd_presence(x, cmd, true);
        break;
    case TD_CMD_HISTORY:
        cmd_history(x, cmd);
        break;
    case TD_CMD_SEND:
        /* No message handler is configured: centrifuge closes with "not available". */
        td_client_disconnect(c, TD_DISC_NOT_AVAILABLE, "not available");
        break;
    case TD_CMD_SUB_REFRESH:
        cmd_sub_refresh(x, cmd);
        break;
    case TD_CMD_REFRESH:
        cmd_refresh(x, cmd);
        break;
    case TD_CMD_RPC:
        cmd_rpc(x, cmd);
        break;
    case TD_CMD_PING:
        reply_error(x, cmd->id, TD_ERR_NOT_AVAILABLE);
        break;
    }
    return c->state != TD_CLIENT_CLOSED;
}

void td_client_on_frame(struct td_client *c, uint8_t *frame, size_t len, int64_t now_ms)
{
    if (c->state == TD_CLIENT_CLOSED)
        return;
    struct td_buf out;
    td_buf_init(&out);
    struct client_ctx x = {c, &out, now_ms};
    struct td_cmd_iter it;
    td_cmd_iter_init(&it, frame, len);
    struct td_cmd cmd;
    for (;;) {
        int rv = c->codec->decode_next(&it, &cmd);
        if (rv == 0)
            break;
        if (rv < 0) {
            td_log_debug("bad command", "client=%s reason=\"%s\"", c->id,
                         it.error ? it.error : "malformed");
            td_client_disconnect(c, TD_DISC_BAD_REQUEST, "bad request");
            break;
        }
        if (!client_dispatch(&x, &cmd))
            break;
    }
    /* After a close the transport has queued its close frame: nothing may follow it. */
    if (out.len > 0 && c->state != TD_CLIENT_CLOSED)
        td_client_send_buf(c, &out);
    td_buf_free(&out);
}

int64_t td_client_tick(struct td_client *c, int64_t now_ms)
{
    const struct td_config *cfg = c->hub->cfg;
    if (c->state == TD_CLIENT_CLOSED)
        return 0;
    if (c->state == TD_CLIENT_NEW) {
        int64_t stale_at = c->created_ms + cfg->stale_close_delay_ms;
        if (now_ms >= stale_at) {
            td_client_disconnect(c, TD_DISC_STALE, "stale");
            return 0;
        }
        return stale_at;
    }
    if (c->pong_due_ms != 0 && now_ms >= c->pong_due_ms) {
        td_client_disconnect(c, TD_DISC_NO_PONG, "no pong");
        return 0;
    }
    /* A connection whose token expired gets client.expired_close_delay to send refresh. */
    int64_t expire_ms = 0;
    if (c->expires_at_s > 0) {
        int64_t left_ms = (c->expires_at_s - c->hub->wall_s()) * 1000 + cfg->expired_close_delay_ms;
        if (left_ms <= 0) {
            td_client_disconnect(c, TD_DISC_EXPIRED, "connection expired");
            return 0;
        }
        expire_ms = now_ms + left_ms;
    }
    if (c->next_ping_ms != 0 && now_ms >= c->next_ping_ms) {
        struct td_buf b;
        td_buf_init(&b);
        c->codec->ping(&b);
        td_client_send_buf(c, &b);
        td_buf_free(&b);
        c->next_ping_ms = now_ms + cfg->ping_interval_ms;
        if (cfg->pong_timeout_ms > 0 && c->pong_due_ms == 0)
            c->pong_due_ms = now_ms + cfg->pong_timeout_ms;
    }
    if (c->state == TD_CLIENT_CLOSED)
        return 0;
    int64_t next = c->next_ping_ms;
    if (c->pong_due_ms != 0 && (next == 0 || c->pong_due_ms < next))
        next = c->pong_due_ms;
    if (expire_ms != 0 && (next == 0 || expire_ms < next))
        next = expire_ms;
    return next;
}
