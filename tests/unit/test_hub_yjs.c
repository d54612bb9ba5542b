/*
 * "yjs" channels through the hub and the Yjs rooms (td_hub_set_yrooms): publishes go to the
 * room, committed room updates come back as publications, and the doc_state rpc. Fake
 * transports, a fake store, injected time.
 */
#include "config/td_config.h"
#include "core/td_base64.h"
#include "core/td_err.h"
#include "crdt/td_ydoc.h"
#include "engine/td_hub.h"
#include "engine/td_ydocchan.h"
#include "engine/td_yroom.h"
#include "proto/td_yproto.h"
#include "td_test.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- fakes --------------------------------------------------------------------------- */

struct ftrans {
    struct td_rbuf *sent[64];
    int nsent;
    uint32_t close_code;
};

static int ftrans_send(void *t, struct td_rbuf *unit)
{
    struct ftrans *f = t;
    if (f->nsent < 64)
        f->sent[f->nsent++] = td_rbuf_ref(unit);
    return 0;
}

static void ftrans_close(void *t, uint32_t code, const char *reason)
{
    (void)reason;
    ((struct ftrans *)t)->close_code = code;
}

static const struct td_transport_ops ftrans_ops = {ftrans_send, ftrans_close, NULL};

static void ftrans_reset(struct ftrans *f)
{
    for (int i = 0; i < f->nsent; i++)
        td_rbuf_unref(f->sent[i]);
    f->nsent = 0;
}

/* The sent unit starting with prefix (static buffer), or "". */
static const char *ftrans_find(struct ftrans *f, const char *prefix)
{
    static char buf[8192];
    for (int i = f->nsent - 1; i >= 0; i--) {
        struct td_rbuf *r = f->sent[i];
        size_t n = r->len < sizeof(buf) - 1 ? r->len : sizeof(buf) - 1;
        memcpy(buf, r->data, n);
        buf[n] = '\0';
        if (strncmp(buf, prefix, strlen(prefix)) == 0)
            return buf;
    }
    return "";
}

static const char *ftrans_reply(struct ftrans *f, int id)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "{\"id\":%d,", id);
    return ftrans_find(f, prefix);
}

/* Counts sent units holding s. */
static int ftrans_count(struct ftrans *f, const char *s)
{
    int k = 0;
    for (int i = 0; i < f->nsent; i++) {
        struct td_rbuf *r = f->sent[i];
        char *t = malloc(r->len + 1);
        memcpy(t, r->data, r->len);
        t[r->len] = '\0';
        k += strstr(t, s) != NULL;
        free(t);
    }
    return k;
}

struct fyconn {
    struct td_yconn *h;
    int nmsgs;
    struct td_rbuf *msgs[64];
};

static int fyconn_send(void *t, struct td_rbuf *m)
{
    struct fyconn *c = t;
    if (c->nmsgs < 64)
        c->msgs[c->nmsgs++] = td_rbuf_ref(m);
    return 0;
}

static void fyconn_close(void *t, uint16_t code, const char *reason)
{
    (void)t;
    (void)code;
    (void)reason;
}

static const struct td_yconn_ops fyconn_ops = {fyconn_send, fyconn_close};

static void fyconn_clear(struct fyconn *c)
{
    for (int i = 0; i < c->nmsgs; i++)
        td_rbuf_unref(c->msgs[i]);
    c->nmsgs = 0;
}

/* Sync update messages c received. */
static int fyconn_updates(struct fyconn *c)
{
    int k = 0;
    for (int i = 0; i < c->nmsgs; i++) {
        struct td_yproto_msg m;
        if (td_yproto_decode(c->msgs[i]->data, c->msgs[i]->len, 0, &m) == 0 &&
            m.type == TD_YPROTO_SYNC && m.subtype == TD_YPROTO_UPDATE)
            k++;
    }
    return k;
}

/* A store that completes operations when told to, keeping one room's log in memory. */
struct fstore {
    struct td_store_op *ops[64];
    int n;
    struct td_ydoc *kept; /* what was appended, merged */
};

static void fstore_submit(void *ud, struct td_store_op *op)
{
    struct fstore *s = ud;
    if (s->n < 64)
        s->ops[s->n++] = op;
}

static void fstore_run(struct fstore *s, struct td_yrooms *rs)
{
    int n = s->n;
    struct td_store_op *ops[64];
    memcpy(ops, s->ops, sizeof(ops));
    s->n = 0;
    for (int i = 0; i < n; i++) {
        ops[i]->status = 0;
        if (ops[i]->kind == TD_STORE_OP_DOC_APPEND)
            td_ydoc_apply(s->kept, ops[i]->doc_data, ops[i]->doc_len, 1, NULL);
        td_yrooms_store_done(rs, ops[i], 0);
    }
}

struct env {
    struct td_config cfg;
    struct td_hub hub;
    struct td_yrooms *rs;
};

static void env_init(struct env *e, struct fstore *st)
{
    td_config_init(&e->cfg);
    char err[256];
    const char *text = "{\"client\":{\"insecure\":true},\"channel\":{\"namespaces\":[{\"name\":"
                       "\"doc\",\"yjs\":true,\"history_size\":10,\"history_ttl\":\"60s\","
                       "\"force_recovery\":true},{\"name\":\"plain\",\"history_size\":10,"
                       "\"history_ttl\":\"60s\"}]}}";
    if (td_config_load_text(&e->cfg, "test", text, strlen(text), err, sizeof(err), NULL, NULL))
        fprintf(stderr, "config: %s\n", err);
    td_hub_init(&e->hub, &e->cfg);
    struct td_yrooms_config yc = {.idle_unload_ms = 1000};
    e->rs = td_yrooms_new(&yc, &fyconn_ops);
    if (st != NULL)
        td_yrooms_set_store(e->rs, fstore_submit, st);
    td_hub_set_yrooms(&e->hub, e->rs);
}

static void env_free(struct env *e)
{
    td_yrooms_free(e->rs); /* before the hub: waiting publishes still name their channel */
    td_hub_free(&e->hub);
    td_config_free(&e->cfg);
}

static void send_cmd(struct td_client *c, const char *json, int64_t now)
{
    size_t n = strlen(json);
    uint8_t *frame = malloc(n);
    memcpy(frame, json, n);
    td_client_on_frame(c, frame, n, now);
    free(frame);
}

static struct td_client *connect_client(struct env *e, struct ftrans *f)
{
    memset(f, 0, sizeof(*f));
    struct td_client *c = td_client_new(&e->hub, &td_codec_json, &ftrans_ops, f, 0);
    send_cmd(c, "{\"id\":1,\"connect\":{}}", 0);
    ftrans_reset(f);
    return c;
}

/* An update appending text to root "t" of d (a client's document). */
static void edit(struct td_ydoc *d, const char *text, struct td_buf *out)
{
    td_buf_reset(out);
    td_ydoc_begin(d);
    TD_CHECK(td_ydoc_text_insert(d, "t", td_ydoc_text_length(d, "t"), text, strlen(text)) == 0);
    TD_CHECK(td_ydoc_commit(d, out, 1) == 0);
}

static void b64(const struct td_buf *in, struct td_buf *out)
{
    td_buf_reset(out);
    td_buf_reserve(out, TD_BASE64_ENCODED_LEN(in->len) + 1);
    out->len = td_base64_encode(in->data, in->len, (char *)out->data);
    out->data[out->len] = 0;
}

static void check_text(const struct td_ydoc *d, const char *want)
{
    struct td_buf t;
    td_buf_init(&t);
    td_ydoc_text(d, "t", &t);
    TD_CHECK_MEM_STR(t.data ? (const char *)t.data : "", t.len, want);
    td_buf_free(&t);
}

/* Applies the base64 that follows key (e.g. "\"update\":\"") in s to d. */
static int apply_b64_after(const char *s, const char *key, struct td_ydoc *d)
{
    const char *p = strstr(s, key);
    if (p == NULL)
        return -1;
    p += strlen(key);
    const char *q = strchr(p, '"');
    if (q == NULL)
        return -1;
    uint8_t *bytes = malloc((size_t)(q - p) + 4);
    int n = td_base64_decode(p, (size_t)(q - p), bytes, (size_t)(q - p) + 4);
    int rv = n < 0 ? -1 : td_ydoc_apply(d, bytes, (size_t)n, 1, NULL);
    free(bytes);
    return rv;
}

static void noop_cb(void *ud, int status, const struct td_buf *update)
{
    (void)ud;
    (void)update;
    TD_CHECK_EQ_INT(status, 0);
}

/* ---- tests --------------------------------------------------------------------------- */

/* Through td_hub_publish (no store: everything completes inside the call). */
TD_TEST(hub_yjs_publish_goes_through_the_room)
{
    struct env e;
    env_init(&e, NULL);
    struct td_ydoc *d = td_ydoc_new(21);
    struct td_buf up, data, text;
    td_buf_init(&up);
    td_buf_init(&data);
    td_buf_init(&text);
    struct td_str chan = {"doc:1", 5};
    struct td_publish_result res;
    /* not an update (JSON but not base64), a malformed one: refused, nothing published */
    TD_CHECK(td_hub_publish(&e.hub, chan, (struct td_str){"\"!!\"", 4}, NULL, 1, &res) ==
             TD_EPROTO);
    TD_CHECK(td_hub_publish(&e.hub, chan, (struct td_str){"\"AQL/\"", 6}, NULL, 1, &res) ==
             TD_EPROTO);
    struct td_channel *ch = td_hub_channel(&e.hub, chan);
    TD_REQUIRE(ch != NULL);
    TD_CHECK_EQ_INT(ch->stream.top, 0);
    TD_CHECK(!ch->durable);

    /* a y-websocket client in the room of the same name */
    struct fyconn yc = {0};
    yc.h = td_yrooms_join(e.rs, "doc:1", 5, &yc, 0);
    fyconn_clear(&yc);

    edit(d, "hi", &up);
    b64(&up, &text);
    td_buf_append_byte(&data, '"');
    td_buf_append(&data, text.data, text.len);
    td_buf_append_byte(&data, '"');
    TD_REQUIRE(td_hub_publish(&e.hub, chan, (struct td_str){(const char *)data.data, data.len},
                              NULL, 2, &res) == 0);
    TD_CHECK_EQ_INT(res.offset, 1); /* published once, by the hook */
    TD_CHECK_EQ_INT(ch->stream.top, 1);
    TD_CHECK_EQ_INT(fyconn_updates(&yc), 1); /* and broadcast to the room */
    /* a duplicate publishes nothing, broadcasts nothing */
    TD_REQUIRE(td_hub_publish(&e.hub, chan, (struct td_str){(const char *)data.data, data.len},
                              NULL, 3, &res) == 0);
    TD_CHECK_EQ_INT(res.offset, 0);
    TD_CHECK_EQ_INT(ch->stream.top, 1);
    TD_CHECK_EQ_INT(fyconn_updates(&yc), 1);

    /* the y-websocket client's edit becomes one publication in the channel */
    edit(d, "+ws", &up);
    struct td_buf m;
    td_buf_init(&m);
    td_yproto_write_sync(&m, TD_YPROTO_UPDATE, up.data, up.len);
    td_yconn_message(yc.h, m.data, m.len, 4);
    TD_CHECK_EQ_INT(ch->stream.top, 2);
    TD_CHECK_EQ_INT(fyconn_updates(&yc), 2); /* the echo to the room */
    struct td_pub *last =
        ch->stream.ring[(ch->stream.head + ch->stream.count - 1) % ch->stream.size];
    struct td_ydoc *sub = td_ydoc_new(22);
    struct td_buf dec;
    td_buf_init(&dec);
    for (uint32_t i = 0; i < ch->stream.count; i++) {
        struct td_pub *p = ch->stream.ring[(ch->stream.head + i) % ch->stream.size];
        td_buf_reset(&dec);
        TD_REQUIRE(td_ydocchan_decode(p->wire.data, &dec) == 0);
        TD_CHECK(td_ydoc_apply(sub, dec.data, dec.len, 1, NULL) == 0);
    }
    TD_CHECK(last->wire.data.n > 2 && last->wire.data.p[0] == '"');
    check_text(sub, "hi+ws");

    /* a room of a "yjs" channel nobody follows creates no channel state */
    struct fyconn y2 = {0};
    y2.h = td_yrooms_join(e.rs, "doc:2", 5, &y2, 0);
    td_yconn_message(y2.h, m.data, m.len, 5);
    TD_CHECK(td_hub_channel(&e.hub, (struct td_str){"doc:2", 5}) == NULL);
    /* nor does a room whose name is a channel of another namespace publish there */
    td_hub_channel_get(&e.hub, (struct td_str){"plain:1", 7}, 5);
    struct fyconn y3 = {0};
    y3.h = td_yrooms_join(e.rs, "plain:1", 7, &y3, 0);
    td_yconn_message(y3.h, m.data, m.len, 5);
    TD_CHECK_EQ_INT(td_hub_channel(&e.hub, (struct td_str){"plain:1", 7})->stream.top, 0);

    td_yconn_leave(yc.h, 6);
    td_yconn_leave(y2.h, 6);
    td_yconn_leave(y3.h, 6);
    fyconn_clear(&yc);
    fyconn_clear(&y2);
    fyconn_clear(&y3);
    td_buf_free(&m);
    td_buf_free(&dec);
    td_ydoc_del(sub);
    td_ydoc_del(d);
    td_buf_free(&up);
    td_buf_free(&data);
    td_buf_free(&text);
    env_free(&e);

    /* a hub without rooms refuses "yjs" publishes */
    struct td_config cfg;
    td_config_init(&cfg);
    const char *conf = "{\"channel\":{\"namespaces\":[{\"name\":\"doc\",\"yjs\":true}]}}";
    char err[256];
    TD_REQUIRE(td_config_load_text(&cfg, "t", conf, strlen(conf), err, sizeof(err), NULL, NULL) ==
               0);
    struct td_hub hub;
    td_hub_init(&hub, &cfg);
    TD_CHECK(td_hub_publish(&hub, chan, (struct td_str){"\"AAA=\"", 6}, NULL, 1, &res) ==
             TD_EINVAL);
    td_hub_free(&hub);
    td_config_free(&cfg);
}

/* A client publish with a store: answered after the room loaded and the append committed. */
TD_TEST(hub_yjs_client_publish_after_commit)
{
    struct fstore st = {.kept = td_ydoc_new(0)};
    struct env e;
    env_init(&e, &st);
    struct ftrans f, g;
    struct td_client *c = connect_client(&e, &f);
    struct td_client *other = connect_client(&e, &g);
    send_cmd(other, "{\"id\":2,\"subscribe\":{\"channel\":\"doc:a\"}}", 0);
    ftrans_reset(&g);
    TD_CHECK(td_hub_publish(&e.hub, (struct td_str){"doc:a", 5}, (struct td_str){"\"AAA=\"", 6},
                            NULL, 0, NULL) == TD_EAGAIN); /* only asynchronously */

    struct td_ydoc *d = td_ydoc_new(31);
    struct td_buf up, text, cmd;
    td_buf_init(&up);
    td_buf_init(&text);
    td_buf_init(&cmd);
    edit(d, "abc", &up);
    b64(&up, &text);
    td_buf_appendf(&cmd, "{\"id\":5,\"publish\":{\"channel\":\"doc:a\",\"data\":\"%s\"}}",
                   (const char *)text.data);
    td_buf_append_byte(&cmd, 0);
    send_cmd(c, (const char *)cmd.data, 1);
    TD_CHECK_EQ_INT(f.nsent, 0); /* the room loads */
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_LOAD);
    fstore_run(&st, e.rs);
    TD_CHECK_EQ_INT(f.nsent, 0); /* the append is in flight */
    TD_CHECK_EQ_INT(g.nsent, 0);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_APPEND);
    fstore_run(&st, e.rs);
    TD_CHECK(strstr(ftrans_reply(&f, 5), "\"publish\":{}") != NULL);
    check_text(st.kept, "abc"); /* durable before the answer */
    /* the subscriber got exactly one publication, with the publisher's info */
    TD_CHECK_EQ_INT(ftrans_count(&g, "\"pub\""), 1);
    TD_CHECK(strstr(ftrans_find(&g, "{\"push\""), c->id) != NULL);

    /* a malformed update: 107 from the room, nothing stored or published */
    ftrans_reset(&g);
    send_cmd(c, "{\"id\":6,\"publish\":{\"channel\":\"doc:a\",\"data\":\"AQL/\"}}", 2);
    TD_CHECK(strstr(ftrans_reply(&f, 6), "\"code\":107") != NULL);
    TD_CHECK_EQ_INT(st.n, 0);
    /* not a string: refused before the room */
    send_cmd(c, "{\"id\":7,\"publish\":{\"channel\":\"doc:a\",\"data\":{\"x\":1}}}", 2);
    TD_CHECK(strstr(ftrans_reply(&f, 7), "\"code\":107") != NULL);
    TD_CHECK_EQ_INT(g.nsent, 0);

    /* the publisher leaves while its publish waits for the store: nothing breaks */
    edit(d, "d", &up);
    b64(&up, &text);
    td_buf_reset(&cmd);
    td_buf_appendf(&cmd, "{\"id\":8,\"publish\":{\"channel\":\"doc:a\",\"data\":\"%s\"}}",
                   (const char *)text.data);
    td_buf_append_byte(&cmd, 0);
    send_cmd(c, (const char *)cmd.data, 3);
    td_client_free(c, 3);
    ftrans_reset(&f);
    fstore_run(&st, e.rs);
    TD_CHECK_EQ_INT(ftrans_count(&g, "\"pub\""), 1);
    check_text(st.kept, "abcd");

    td_client_free(other, 4);
    ftrans_reset(&g);
    td_ydoc_del(d);
    td_buf_free(&up);
    td_buf_free(&text);
    td_buf_free(&cmd);
    env_free(&e);
    td_ydoc_del(st.kept);
}

TD_TEST(hub_yjs_rpc_doc_state)
{
    struct fstore st = {.kept = td_ydoc_new(0)};
    struct env e;
    env_init(&e, &st);
    struct ftrans f;
    struct td_client *c = connect_client(&e, &f);
    /* a room holding "xyz", written through the API */
    struct td_ydoc *d = td_ydoc_new(41);
    struct td_buf up, sv, cmd;
    td_buf_init(&up);
    td_buf_init(&sv);
    td_buf_init(&cmd);
    edit(d, "xyz", &up);

    /* not subscribed: 103; unknown method: 108; bad data: 107 */
    send_cmd(c, "{\"id\":2,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:r\"}}}",
             0);
    TD_CHECK(strstr(ftrans_reply(&f, 2), "\"code\":103") != NULL);
    send_cmd(c, "{\"id\":3,\"subscribe\":{\"channel\":\"doc:r\"}}", 0);
    send_cmd(c, "{\"id\":4,\"rpc\":{\"method\":\"other\",\"data\":{\"channel\":\"doc:r\"}}}", 0);
    TD_CHECK(strstr(ftrans_reply(&f, 4), "\"code\":108") != NULL);
    send_cmd(c, "{\"id\":5,\"rpc\":{\"method\":\"doc_state\",\"data\":[1]}}", 0);
    TD_CHECK(strstr(ftrans_reply(&f, 5), "\"code\":107") != NULL);
    send_cmd(c, "{\"id\":6,\"rpc\":{\"method\":\"doc_state\"}}", 0);
    TD_CHECK(strstr(ftrans_reply(&f, 6), "\"code\":107") != NULL);
    send_cmd(c,
             "{\"id\":7,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:r\","
             "\"sv\":\"!!\"}}}",
             0);
    TD_CHECK(strstr(ftrans_reply(&f, 7), "\"code\":107") != NULL);
    /* a channel of a namespace without "yjs": 108 */
    send_cmd(c, "{\"id\":8,\"subscribe\":{\"channel\":\"plain:p\"}}", 0);
    send_cmd(c, "{\"id\":9,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"plain:p\"}}}",
             0);
    TD_CHECK(strstr(ftrans_reply(&f, 9), "\"code\":108") != NULL);
    TD_CHECK_EQ_INT(f.close_code, 0);

    /* the room loads first: the answer comes after the load */
    send_cmd(c, "{\"id\":10,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:r\"}}}",
             0);
    TD_CHECK(ftrans_reply(&f, 10)[0] == '\0');
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_LOAD);
    fstore_run(&st, e.rs);
    const char *r = ftrans_reply(&f, 10);
    /* empty doc: an empty update and an empty state vector */
    TD_CHECK(strstr(r, "\"rpc\":{\"data\":{\"update\":\"AAA=\",\"sv\":\"AA==\"}}") != NULL);

    /* an update through the API, then the state: the subscriber also got it published */
    td_yrooms_api_update(e.rs, "doc:r", 5, up.data, up.len, noop_cb, NULL, 0);
    fstore_run(&st, e.rs);
    TD_CHECK_EQ_INT(ftrans_count(&f, "\"pub\""), 1);
    send_cmd(c, "{\"id\":11,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:r\"}}}",
             0);
    struct td_ydoc *late = td_ydoc_new(42);
    TD_REQUIRE(apply_b64_after(ftrans_reply(&f, 11), "\"update\":\"", late) == 0);
    check_text(late, "xyz");

    /* with a state vector: only what it lacks */
    edit(d, "!", &up);
    td_yrooms_api_update(e.rs, "doc:r", 5, up.data, up.len, noop_cb, NULL, 0);
    fstore_run(&st, e.rs);
    td_ydoc_encode_sv(late, &sv);
    struct td_buf svb;
    td_buf_init(&svb);
    b64(&sv, &svb);
    td_buf_appendf(&cmd,
                   "{\"id\":12,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:r\","
                   "\"sv\":\"%s\"}}}",
                   (const char *)svb.data);
    td_buf_append_byte(&cmd, 0);
    send_cmd(c, (const char *)cmd.data, 0);
    r = ftrans_reply(&f, 12);
    TD_REQUIRE(apply_b64_after(r, "\"update\":\"", late) == 0);
    check_text(late, "xyz!");
    TD_CHECK(strlen(r) < 110); /* a diff, not the whole document */
    /* the server's state vector: the late joiner now has exactly that */
    td_buf_reset(&sv);
    td_ydoc_encode_sv(late, &sv);
    td_buf_reset(&svb);
    b64(&sv, &svb);
    td_buf_append_byte(&svb, 0);
    char want[128];
    snprintf(want, sizeof(want), "\"sv\":\"%s\"", (const char *)svb.data);
    TD_CHECK(strstr(r, want) != NULL);

    /* a malformed state vector: 107 */
    send_cmd(c,
             "{\"id\":13,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:r\","
             "\"sv\":\"BQ==\"}}}",
             0);
    TD_CHECK(strstr(ftrans_reply(&f, 13), "\"code\":107") != NULL);

    /* the client leaves while its rpc waits for a load */
    send_cmd(c, "{\"id\":14,\"subscribe\":{\"channel\":\"doc:s\"}}", 0);
    send_cmd(c, "{\"id\":15,\"rpc\":{\"method\":\"doc_state\",\"data\":{\"channel\":\"doc:s\"}}}",
             0);
    TD_REQUIRE(st.n == 1);
    td_client_free(c, 1);
    ftrans_reset(&f);
    fstore_run(&st, e.rs);
    TD_CHECK_EQ_INT(f.nsent, 0);

    td_ydoc_del(late);
    td_ydoc_del(d);
    td_buf_free(&up);
    td_buf_free(&sv);
    td_buf_free(&svb);
    td_buf_free(&cmd);
    env_free(&e);
    td_ydoc_del(st.kept);
}
