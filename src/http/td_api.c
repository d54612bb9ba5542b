#include "http/td_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/td_alloc.h"
#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_json.h"

/* Compares without an early exit, so response time does not reveal how much matched. */
static bool api_key_equal(const char *a, size_t an, const char *key, size_t kn)
{
    unsigned diff = an != kn;
    for (size_t i = 0; i < an && i < kn; i++)
        diff |= (unsigned)(a[i] ^ key[i]);
    return diff == 0;
}

bool td_api_authorized(const struct td_config *cfg, const struct td_http_request *req)
{
    if (cfg->api_insecure)
        return true;
    size_t klen = strlen(cfg->api_key);
    if (klen == 0)
        return false; /* no key configured: the API is closed */
    const struct td_str *h = td_http_header_get(req, "X-API-Key");
    if (h != NULL && api_key_equal(h->p, h->n, cfg->api_key, klen))
        return true;
    h = td_http_header_get(req, "Authorization");
    if (h != NULL && h->n > 7 && strncasecmp(h->p, "apikey ", 7) == 0 &&
        api_key_equal(h->p + 7, h->n - 7, cfg->api_key, klen))
        return true;
    return false;
}

static void api_error(struct td_buf *out, uint32_t code, const char *message)
{
    td_buf_reset(out);
    td_buf_appendf(out, "{\"error\":{\"code\":%u,\"message\":", code);
    td_json_write_string(out, message, strlen(message));
    td_buf_append_str(out, "}}");
}

static void api_write_str(struct td_buf *out, struct td_str s)
{
    td_json_write_string(out, s.p, s.n);
}

/* Raw JSON from storage, minus raw newlines (insignificant whitespace in valid JSON). */
static void api_write_raw(struct td_buf *out, struct td_str s)
{
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] != '\n' && s.p[i] != '\r')
            td_buf_append_byte(out, (uint8_t)s.p[i]);
    }
}

static void api_write_info(struct td_buf *out, const struct td_client_info *info)
{
    td_buf_append_str(out, "{\"user\":");
    api_write_str(out, info->user);
    td_buf_append_str(out, ",\"client\":");
    api_write_str(out, info->client);
    if (info->conn_info.n) {
        td_buf_append_str(out, ",\"conn_info\":");
        api_write_raw(out, info->conn_info);
    }
    if (info->chan_info.n) {
        td_buf_append_str(out, ",\"chan_info\":");
        api_write_raw(out, info->chan_info);
    }
    td_buf_append_byte(out, '}');
}

static void api_write_pub(struct td_buf *out, struct td_pub *pub)
{
    if (pub->data_json < 0)
        pub->data_json = td_json_valid(pub->wire.data.p, pub->wire.data.n) ? 1 : 0;
    td_buf_append_str(out, "{\"data\":");
    if (pub->data_json)
        api_write_raw(out, pub->wire.data);
    else
        td_buf_append_str(out, "null"); /* binary payload: not representable in JSON */
    if (pub->has_info) {
        td_buf_append_str(out, ",\"info\":");
        api_write_info(out, &pub->info);
    }
    if (pub->offset)
        td_buf_appendf(out, ",\"offset\":%llu", (unsigned long long)pub->offset);
    td_buf_append_byte(out, '}');
}

/* Reads a required non-empty string member; NULL if absent or wrong. */
static const struct td_json *api_string(const struct td_json *req, const char *key)
{
    const struct td_json *v = td_json_get(req, key);
    if (v == NULL || v->type != TD_JSON_STRING || v->len == 0)
        return NULL;
    return v;
}

static struct td_str api_str(const struct td_json *v)
{
    return (struct td_str){v->str, v->len};
}

/* Validates a channel argument: 0, or writes an error and returns -1. */
static int api_channel(struct td_hub *hub, const struct td_json *req, const char *key,
                       struct td_buf *out, const struct td_ns_opts **ns, struct td_str *name)
{
    const struct td_json *ch = api_string(req, key);
    if (ch == NULL) {
        api_error(out, TD_ERR_BAD_REQUEST, "channel required");
        return -1;
    }
    if (ch->len > hub->cfg->channel_max_length) {
        api_error(out, TD_ERR_BAD_REQUEST, "channel name too long");
        return -1;
    }
    *ns = td_config_ns_for(hub->cfg, ch->str, ch->len);
    if (*ns == NULL) {
        api_error(out, TD_ERR_UNKNOWN_CHANNEL, "unknown channel");
        return -1;
    }
    *name = api_str(ch);
    return 0;
}

/*
 * Publishes finish asynchronously in durable channels, so publish and broadcast build their
 * answer in an api_req: one response fragment per channel, filled as results arrive, and
 * the whole body handed to the caller's callback once the last one is in.
 */
struct api_req {
    td_api_done_cb done;
    void *ud;
    bool broadcast;
    size_t n;
    size_t remaining; /* fragments still missing, +1 while publishes are being started */
    struct api_slot *slots;
};

struct api_slot {
    struct api_req *r;
    struct td_buf frag;
};

static void api_req_settle(struct api_req *r)
{
    if (--r->remaining > 0)
        return;
    struct td_buf body;
    td_buf_init(&body);
    if (r->broadcast)
        td_buf_append_str(&body, "{\"result\":{\"responses\":[");
    for (size_t i = 0; i < r->n; i++) {
        if (i)
            td_buf_append_byte(&body, ',');
        td_buf_append(&body, r->slots[i].frag.data, r->slots[i].frag.len);
        td_buf_free(&r->slots[i].frag);
    }
    if (r->broadcast)
        td_buf_append_str(&body, "]}}");
    r->done(r->ud, 200, &body);
    td_buf_free(&body);
    free(r->slots);
    free(r);
}

static void on_api_publish(void *ud, int status, const struct td_publish_result *res)
{
    struct api_slot *slot = ud;
    struct td_buf *out = &slot->frag;
    if (status == TD_EPROTO) {
        /* a "yjs" channel's room refused the update: nothing stored or published */
        td_buf_append_str(out, "{\"error\":{\"code\":107,\"message\":\"bad request: "
                               "not a valid Yjs update for this channel\"}}");
    } else if (status != 0) {
        td_buf_append_str(out, "{\"error\":{\"code\":100,\"message\":\"internal server error: "
                               "the publication could not be stored\",\"temporary\":true}}");
    } else {
        td_buf_append_str(out, "{\"result\":{");
        if (res->offset) {
            td_buf_appendf(out, "\"offset\":%llu,\"epoch\":", (unsigned long long)res->offset);
            td_json_write_string(out, res->epoch, strlen(res->epoch));
        }
        td_buf_append_str(out, "}}");
    }
    api_req_settle(slot->r);
}

static void api_publish_one(struct td_hub *hub, struct api_slot *slot, struct td_str channel,
                            struct td_str data, struct td_str idem_key, int64_t now_ms)
{
    int rv = td_hub_publish_async(hub, channel, data, NULL, idem_key, now_ms, on_api_publish, slot);
    if (rv == 0)
        return;
    if (rv == TD_ELIMIT)
        td_buf_append_str(&slot->frag, "{\"error\":{\"code\":111,\"message\":\"too many "
                                       "idempotency keys in this channel\",\"temporary\":true}}");
    else if (rv == TD_EPROTO) /* not a Yjs update for a "yjs" channel (td_ydocchan.h) */
        td_buf_append_str(&slot->frag, "{\"error\":{\"code\":107,\"message\":\"bad request: "
                                       "not a valid Yjs update for this channel\"}}");
    else if (rv == TD_EINVAL) /* a "yjs" channel while yjs.enabled is false */
        td_buf_append_str(&slot->frag, "{\"error\":{\"code\":108,\"message\":\"not "
                                       "available: yjs.enabled is false\"}}");
    else
        td_buf_append_str(&slot->frag,
                          "{\"error\":{\"code\":102,\"message\":\"unknown channel\"}}");
    api_req_settle(slot->r);
}

static struct api_req *api_req_new(size_t n, bool broadcast, td_api_done_cb done, void *ud)
{
    struct api_req *r = td_xcalloc(1, sizeof(*r));
    r->done = done;
    r->ud = ud;
    r->broadcast = broadcast;
    r->n = n;
    r->remaining = n + 1;
    r->slots = td_xcalloc(n, sizeof(*r->slots));
    for (size_t i = 0; i < n; i++) {
        r->slots[i].r = r;
        td_buf_init(&r->slots[i].frag);
    }
    return r;
}

/* Reads the optional idempotency_key; returns -1 after writing an error if it is not a
 * string. */
static int api_idem_key(const struct td_json *req, struct td_buf *out, struct td_str *key)
{
    const struct td_json *k = td_json_get(req, "idempotency_key");
    *key = TD_STR_NULL;
    if (k == NULL || k->type == TD_JSON_NULL)
        return 0;
    if (k->type != TD_JSON_STRING || k->len > 256) {
        api_error(out, TD_ERR_BAD_REQUEST, "idempotency_key must be a string of at most 256 bytes");
        return -1;
    }
    *key = api_str(k);
    return 0;
}

/* publish and broadcast answer through `done` (returns 0), or return a status when they
 * answer at once with an error in out. */
static int api_publish(struct td_hub *hub, const struct td_json *req, int64_t now_ms,
                       struct td_buf *out, td_api_done_cb done, void *ud)
{
    const struct td_ns_opts *ns;
    struct td_str channel;
    if (api_channel(hub, req, "channel", out, &ns, &channel) != 0)
        return 200;
    const struct td_json *data = td_json_get(req, "data");
    if (data == NULL) {
        api_error(out, TD_ERR_BAD_REQUEST, "data required");
        return 200;
    }
    struct td_str idem;
    if (api_idem_key(req, out, &idem) != 0)
        return 200;
    struct api_req *r = api_req_new(1, false, done, ud);
    api_publish_one(hub, &r->slots[0], channel, (struct td_str){data->raw, data->raw_len}, idem,
                    now_ms);
    api_req_settle(r);
    return 0;
}

static int api_broadcast(struct td_hub *hub, const struct td_json *req, int64_t now_ms,
                         struct td_buf *out, td_api_done_cb done, void *ud)
{
    const struct td_json *chans = td_json_get(req, "channels");
    const struct td_json *data = td_json_get(req, "data");
    if (chans == NULL || chans->type != TD_JSON_ARRAY || chans->n == 0) {
        api_error(out, TD_ERR_BAD_REQUEST, "channels required");
        return 200;
    }
    if (data == NULL) {
        api_error(out, TD_ERR_BAD_REQUEST, "data required");
        return 200;
    }
    for (size_t i = 0; i < chans->n; i++) {
        const struct td_json *c = &chans->child[i];
        if (c->type != TD_JSON_STRING || c->len == 0 || c->len > hub->cfg->channel_max_length) {
            api_error(out, TD_ERR_BAD_REQUEST, "channels must be non-empty strings");
            return 200;
        }
    }
    struct td_str idem;
    if (api_idem_key(req, out, &idem) != 0)
        return 200;
    struct api_req *r = api_req_new(chans->n, true, done, ud);
    for (size_t i = 0; i < chans->n; i++)
        api_publish_one(hub, &r->slots[i], api_str(&chans->child[i]),
                        (struct td_str){data->raw, data->raw_len}, idem, now_ms);
    api_req_settle(r);
    return 0;
}

static int api_history(struct td_hub *hub, const struct td_json *req, int64_t now_ms,
                       struct td_buf *out)
{
    const struct td_ns_opts *ns;
    struct td_str name;
    if (api_channel(hub, req, "channel", out, &ns, &name) != 0)
        return 200;
    if (ns->history_size == 0 || ns->history_ttl_ms == 0) {
        api_error(out, TD_ERR_NOT_AVAILABLE, "not available");
        return 200;
    }
    const struct td_json *lim = td_json_get(req, "limit");
    const struct td_json *since = td_json_get(req, "since");
    const struct td_json *rev = td_json_get(req, "reverse");
    int64_t limit = 0;
    if (lim != NULL && lim->type != TD_JSON_NULL) {
        if (lim->type != TD_JSON_NUMBER || !lim->is_int) {
            api_error(out, TD_ERR_BAD_REQUEST, "limit must be an integer");
            return 200;
        }
        limit = lim->i;
    }
    uint32_t cap = hub->cfg->history_max_publication_limit;
    size_t n_limit = (limit < 0 || limit > (int64_t)cap) ? cap : (size_t)limit;
    bool reverse = rev != NULL && rev->type == TD_JSON_TRUE;
    bool has_since = since != NULL && since->type == TD_JSON_OBJECT;
    uint64_t since_offset = 0;
    struct td_channel *ch = td_hub_channel_get(hub, name, now_ms);
    if (has_since) {
        const struct td_json *o = td_json_get(since, "offset");
        const struct td_json *e = td_json_get(since, "epoch");
        if (o != NULL && o->type == TD_JSON_NUMBER && o->is_int && o->i >= 0)
            since_offset = (uint64_t)o->i;
        if (e != NULL && e->type == TD_JSON_STRING && e->len > 0 &&
            strcmp(e->str, ch->stream.epoch) != 0) {
            api_error(out, TD_ERR_UNRECOVERABLE_POSITION, "unrecoverable position");
            return 200;
        }
        if (reverse && since_offset == 0) {
            api_error(out, TD_ERR_BAD_REQUEST, "bad request");
            return 200;
        }
    }
    struct td_pub **pubs = td_xmalloc((n_limit ? n_limit : 1) * sizeof(*pubs));
    size_t n = td_stream_read(&ch->stream, has_since, since_offset, reverse, n_limit, now_ms, pubs,
                              n_limit);
    td_buf_append_str(out, "{\"result\":{\"publications\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            td_buf_append_byte(out, ',');
        api_write_pub(out, pubs[i]);
    }
    td_buf_appendf(out, "],\"offset\":%llu,\"epoch\":", (unsigned long long)ch->stream.top);
    td_json_write_string(out, ch->stream.epoch, strlen(ch->stream.epoch));
    td_buf_append_str(out, "}}");
    free(pubs);
    return 200;
}

static int api_history_remove(struct td_hub *hub, const struct td_json *req, struct td_buf *out)
{
    const struct td_ns_opts *ns;
    struct td_str name;
    if (api_channel(hub, req, "channel", out, &ns, &name) != 0)
        return 200;
    struct td_channel *ch = td_hub_channel(hub, name);
    if (ch != NULL)
        td_hub_history_remove(hub, ch);
    td_buf_append_str(out, "{\"result\":{}}");
    return 200;
}

static int api_presence(struct td_hub *hub, const struct td_json *req, bool stats,
                        struct td_buf *out)
{
    const struct td_ns_opts *ns;
    struct td_str name;
    if (api_channel(hub, req, "channel", out, &ns, &name) != 0)
        return 200;
    if (!ns->presence) {
        api_error(out, TD_ERR_NOT_AVAILABLE, "not available");
        return 200;
    }
    struct td_channel *ch = td_hub_channel(hub, name);
    uint32_t n = ch ? ch->nsubs : 0;
    if (stats) {
        td_buf_appendf(out, "{\"result\":{\"num_clients\":%u,\"num_users\":%u}}", n,
                       ch ? td_channel_num_users(ch) : 0);
        return 200;
    }
    td_buf_append_str(out, "{\"result\":{\"presence\":{");
    for (uint32_t i = 0; i < n; i++) {
        struct td_client_info info;
        td_client_info_fill(ch->subs[i]->client, ch->subs[i], &info);
        if (i)
            td_buf_append_byte(out, ',');
        api_write_str(out, info.client);
        td_buf_append_byte(out, ':');
        api_write_info(out, &info);
    }
    td_buf_append_str(out, "}}}");
    return 200;
}

static int api_info(struct td_hub *hub, int64_t uptime_s, struct td_buf *out)
{
    struct td_map users;
    td_map_init(&users);
    uint64_t subs = 0;
    for (size_t i = 0; i < hub->clients.cap; i++) {
        const struct td_client *c = hub->clients.slots[i].value;
        if (hub->clients.slots[i].key == NULL)
            continue;
        td_map_put(&users, c->user, strlen(c->user), (void *)c);
        subs += c->nsubs;
    }
    td_buf_append_str(out, "{\"result\":{\"nodes\":[{\"uid\":");
    td_json_write_string(out, hub->node_id, strlen(hub->node_id));
    td_buf_appendf(out,
                   ",\"name\":\"tandem\",\"version\":\"%s\",\"num_clients\":%zu,\"num_users\":%zu,"
                   "\"num_channels\":%zu,\"num_subs\":%llu,\"uptime\":%lld}]}}",
                   TD_VERSION, hub->clients.count, users.count, hub->channels.count,
                   (unsigned long long)subs, (long long)uptime_s);
    td_map_free(&users);
    return 200;
}

/* Collects the connected clients matching user (and client id if given). */
static size_t api_find_clients(struct td_hub *hub, const struct td_json *req,
                               struct td_client ***out_list)
{
    const struct td_json *user = td_json_get(req, "user");
    const struct td_json *client = td_json_get(req, "client");
    size_t n = 0;
    struct td_client **list = td_xmalloc((hub->clients.count + 1) * sizeof(*list));
    for (size_t i = 0; i < hub->clients.cap; i++) {
        struct td_client *c = hub->clients.slots[i].value;
        if (hub->clients.slots[i].key == NULL || c->state != TD_CLIENT_CONNECTED)
            continue;
        if (user != NULL && user->type == TD_JSON_STRING && strcmp(c->user, user->str) != 0)
            continue;
        if (client != NULL && client->type == TD_JSON_STRING && client->len > 0 &&
            strcmp(c->id, client->str) != 0)
            continue;
        list[n++] = c;
    }
    *out_list = list;
    return n;
}

static bool api_has_target(const struct td_json *req)
{
    const struct td_json *user = td_json_get(req, "user");
    const struct td_json *client = td_json_get(req, "client");
    return (user != NULL && user->type == TD_JSON_STRING) ||
           (client != NULL && client->type == TD_JSON_STRING && client->len > 0);
}

static int api_disconnect(struct td_hub *hub, const struct td_json *req, struct td_buf *out)
{
    if (!api_has_target(req)) {
        api_error(out, TD_ERR_BAD_REQUEST, "user or client required");
        return 200;
    }
    uint32_t code = TD_DISC_FORCE_DISCONNECT;
    char reason[124] = "force disconnect";
    const struct td_json *d = td_json_get(req, "disconnect");
    if (d != NULL && d->type == TD_JSON_OBJECT) {
        const struct td_json *c = td_json_get(d, "code");
        const struct td_json *r = td_json_get(d, "reason");
        if (c != NULL && (c->type != TD_JSON_NUMBER || !c->is_int || c->i < 3000 || c->i > 4999)) {
            api_error(out, TD_ERR_BAD_REQUEST, "disconnect.code must be in 3000-4999");
            return 200;
        }
        if (c != NULL)
            code = (uint32_t)c->i;
        if (r != NULL && r->type == TD_JSON_STRING)
            snprintf(reason, sizeof(reason), "%s", r->str);
    }
    struct td_client **list;
    size_t n = api_find_clients(hub, req, &list);
    for (size_t i = 0; i < n; i++)
        td_client_disconnect(list[i], code, reason);
    free(list);
    td_buf_append_str(out, "{\"result\":{}}");
    return 200;
}

static int api_unsubscribe(struct td_hub *hub, const struct td_json *req, int64_t now_ms,
                           struct td_buf *out)
{
    const struct td_ns_opts *ns;
    struct td_str name;
    if (api_channel(hub, req, "channel", out, &ns, &name) != 0)
        return 200;
    if (!api_has_target(req)) {
        api_error(out, TD_ERR_BAD_REQUEST, "user or client required");
        return 200;
    }
    struct td_client **list;
    size_t n = api_find_clients(hub, req, &list);
    for (size_t i = 0; i < n; i++)
        td_hub_unsubscribe(hub, list[i], name, 2000, "server unsubscribe", now_ms);
    free(list);
    td_buf_append_str(out, "{\"result\":{}}");
    return 200;
}

static bool api_glob(const char *pat, const char *s)
{
    /* '*' matches any run of bytes; everything else matches itself. */
    if (*pat == '\0')
        return *s == '\0';
    if (*pat == '*')
        return api_glob(pat + 1, s) || (*s != '\0' && api_glob(pat, s + 1));
    return *s == *pat && api_glob(pat + 1, s + 1);
}

static int api_channels(struct td_hub *hub, const struct td_json *req, struct td_buf *out)
{
    const struct td_json *pat = td_json_get(req, "pattern");
    td_buf_append_str(out, "{\"result\":{\"channels\":{");
    bool first = true;
    for (size_t i = 0; i < hub->channels.cap; i++) {
        const struct td_channel *ch = hub->channels.slots[i].value;
        if (hub->channels.slots[i].key == NULL || ch->nsubs == 0)
            continue;
        if (pat != NULL && pat->type == TD_JSON_STRING && pat->len > 0 &&
            !api_glob(pat->str, ch->name))
            continue;
        if (!first)
            td_buf_append_byte(out, ',');
        first = false;
        td_json_write_string(out, ch->name, ch->name_len);
        td_buf_appendf(out, ":{\"num_clients\":%u}", ch->nsubs);
    }
    td_buf_append_str(out, "}}}");
    return 200;
}

/* ---- Yjs documents (doc_state, doc_update; docs/yjs.md) ------------------------------ */

struct api_ywait {
    td_api_done_cb done;
    void *ud;
    bool is_state; /* doc_state: the answer carries the update */
};

static void on_api_doc(void *ud, int status, const struct td_buf *update)
{
    struct api_ywait *w = ud;
    struct td_buf out;
    td_buf_init(&out);
    switch (status) {
    case 0:
        if (w->is_state) {
            size_t cap = TD_BASE64_ENCODED_LEN(update->len) + 1;
            char *b64 = td_xmalloc(cap);
            size_t bn = td_base64_encode(update->data, update->len, b64);
            td_buf_append_str(&out, "{\"result\":{\"update\":\"");
            td_buf_append(&out, b64, bn);
            td_buf_append_str(&out, "\"}}");
            free(b64);
        } else {
            td_buf_append_str(&out, "{\"result\":{}}");
        }
        break;
    case TD_EPROTO:
        api_error(&out, TD_ERR_BAD_REQUEST,
                  w->is_state ? "malformed state_vector" : "malformed update: not applied");
        break;
    case TD_ELIMIT:
        api_error(&out, TD_ERR_BAD_REQUEST,
                  "update too large (yjs.max_update_size or yjs.max_document_size): not applied");
        break;
    case TD_EINVAL:
        api_error(&out, TD_ERR_BAD_REQUEST, "bad room name");
        break;
    default:
        td_buf_append_str(&out,
                          "{\"error\":{\"code\":100,\"message\":\"internal server error: "
                          "the document could not be loaded or stored\",\"temporary\":true}}");
        break;
    }
    w->done(w->ud, 200, &out);
    td_buf_free(&out);
    free(w);
}

/* Decodes the base64 string v into *bytes (owned); -1 after writing an error. */
static int api_base64(const struct td_json *v, const char *what, struct td_buf *out,
                      uint8_t **bytes, size_t *len)
{
    size_t cap = TD_BASE64_DECODED_MAX(v->len) + 1;
    uint8_t *b = td_xmalloc(cap);
    int n = td_base64_decode(v->str, v->len, b, cap);
    if (n < 0) {
        free(b);
        char msg[96];
        snprintf(msg, sizeof(msg), "%s is not valid base64", what);
        api_error(out, TD_ERR_BAD_REQUEST, msg);
        return -1;
    }
    *bytes = b;
    *len = (size_t)n;
    return 0;
}

/* Validates the room member; -1 after writing an error. */
static int api_room(struct td_yrooms *yrooms, const struct td_json *req, struct td_buf *out,
                    const struct td_json **room)
{
    if (yrooms == NULL) {
        api_error(out, TD_ERR_NOT_AVAILABLE, "not available: yjs.enabled is false");
        return -1;
    }
    *room = api_string(req, "room");
    if (*room == NULL) {
        api_error(out, TD_ERR_BAD_REQUEST, "room required");
        return -1;
    }
    if ((*room)->len > TD_YROOM_MAX_NAME) {
        api_error(out, TD_ERR_BAD_REQUEST, "room name too long");
        return -1;
    }
    return 0;
}

static int api_doc_state(struct td_yrooms *yrooms, const struct td_json *req, int64_t now_ms,
                         struct td_buf *out, td_api_done_cb done, void *ud)
{
    const struct td_json *room;
    if (api_room(yrooms, req, out, &room) != 0)
        return 200;
    int version = 1;
    const struct td_json *enc = td_json_get(req, "encoding");
    if (enc != NULL && enc->type != TD_JSON_NULL) {
        if (enc->type == TD_JSON_STRING && strcmp(enc->str, "v1") == 0) {
            version = 1;
        } else if (enc->type == TD_JSON_STRING && strcmp(enc->str, "v2") == 0) {
            version = 2;
        } else {
            api_error(out, TD_ERR_BAD_REQUEST, "encoding must be \"v1\" or \"v2\"");
            return 200;
        }
    }
    uint8_t *sv = NULL;
    size_t sv_len = 0;
    const struct td_json *svj = td_json_get(req, "state_vector");
    bool has_sv = svj != NULL && svj->type != TD_JSON_NULL;
    if (has_sv) {
        if (svj->type != TD_JSON_STRING) {
            api_error(out, TD_ERR_BAD_REQUEST, "state_vector must be a base64 string");
            return 200;
        }
        if (api_base64(svj, "state_vector", out, &sv, &sv_len) != 0)
            return 200;
    }
    struct api_ywait *w = td_xcalloc(1, sizeof(*w));
    w->done = done;
    w->ud = ud;
    w->is_state = true;
    td_yrooms_api_state(yrooms, room->str, room->len, sv, sv_len, has_sv, version, on_api_doc, w,
                        now_ms);
    free(sv);
    return 0;
}

static int api_doc_update(struct td_yrooms *yrooms, const struct td_json *req, int64_t now_ms,
                          struct td_buf *out, td_api_done_cb done, void *ud)
{
    const struct td_json *room;
    if (api_room(yrooms, req, out, &room) != 0)
        return 200;
    const struct td_json *u = td_json_get(req, "update");
    if (u == NULL || u->type != TD_JSON_STRING) {
        api_error(out, TD_ERR_BAD_REQUEST, "update required (a base64 string)");
        return 200;
    }
    uint8_t *up;
    size_t up_len;
    if (api_base64(u, "update", out, &up, &up_len) != 0)
        return 200;
    struct api_ywait *w = td_xcalloc(1, sizeof(*w));
    w->done = done;
    w->ud = ud;
    td_yrooms_api_update(yrooms, room->str, room->len, up, up_len, on_api_doc, w, now_ms);
    free(up);
    return 0;
}

void td_api_call(struct td_hub *hub, struct td_yrooms *yrooms, struct td_str method,
                 const char *body, size_t n, int64_t now_ms, int64_t uptime_s, td_api_done_cb done,
                 void *ud)
{
    struct td_buf outbuf;
    struct td_buf *out = &outbuf;
    td_buf_init(out);
    struct td_json_doc doc;
    struct td_json_error jerr;
    td_buf_reset(out);
    if (td_json_parse(&doc, n ? body : "{}", n ? n : 2, &jerr) != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "invalid JSON at %u:%u: %s", jerr.line, jerr.col, jerr.msg);
        api_error(out, TD_ERR_BAD_REQUEST, msg);
        td_json_doc_free(&doc);
        done(ud, 400, out);
        td_buf_free(out);
        return;
    }
    const struct td_json *req = td_json_root(&doc);
    int status;
#define IS(name) (method.n == strlen(name) && memcmp(method.p, name, method.n) == 0)
    if (req->type != TD_JSON_OBJECT) {
        api_error(out, TD_ERR_BAD_REQUEST, "request body must be a JSON object");
        status = 400;
    } else if (IS("publish")) {
        status = api_publish(hub, req, now_ms, out, done, ud);
    } else if (IS("broadcast")) {
        status = api_broadcast(hub, req, now_ms, out, done, ud);
    } else if (IS("history")) {
        status = api_history(hub, req, now_ms, out);
    } else if (IS("history_remove")) {
        status = api_history_remove(hub, req, out);
    } else if (IS("presence")) {
        status = api_presence(hub, req, false, out);
    } else if (IS("presence_stats")) {
        status = api_presence(hub, req, true, out);
    } else if (IS("info")) {
        status = api_info(hub, uptime_s, out);
    } else if (IS("disconnect")) {
        status = api_disconnect(hub, req, out);
    } else if (IS("unsubscribe")) {
        status = api_unsubscribe(hub, req, now_ms, out);
    } else if (IS("channels")) {
        status = api_channels(hub, req, out);
    } else if (IS("doc_state")) {
        status = api_doc_state(yrooms, req, now_ms, out, done, ud);
    } else if (IS("doc_update")) {
        status = api_doc_update(yrooms, req, now_ms, out, done, ud);
    } else {
        api_error(out, TD_ERR_METHOD_NOT_FOUND, "method not found");
        status = 404;
    }
#undef IS
    td_json_doc_free(&doc);
    if (status != 0)
        done(ud, status, out);
    td_buf_free(out);
}
