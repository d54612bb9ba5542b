/* Client protocol through the hub with a fake transport and injected time. */
#include "config/td_config.h"
#include "core/td_err.h"
#include "engine/td_hub.h"
#include "td_test.h"

#include <stdio.h>
#include <stdlib.h>

struct fake_transport {
    struct td_rbuf *sent[64];
    int nsent;
    uint32_t close_code;
    char close_reason[64];
};

static int fake_send(void *t, struct td_rbuf *unit)
{
    struct fake_transport *f = t;
    if (f->nsent < 64)
        f->sent[f->nsent++] = td_rbuf_ref(unit);
    return 0;
}

static void fake_close(void *t, uint32_t code, const char *reason)
{
    struct fake_transport *f = t;
    f->close_code = code;
    snprintf(f->close_reason, sizeof(f->close_reason), "%s", reason);
}

static const struct td_transport_ops fake_ops = {fake_send, fake_close, NULL};

static void fake_reset(struct fake_transport *f)
{
    for (int i = 0; i < f->nsent; i++)
        td_rbuf_unref(f->sent[i]);
    f->nsent = 0;
}

/* Returns the last sent unit as a NUL-terminated string (static buffer). */
static const char *fake_last(struct fake_transport *f)
{
    static char buf[4096];
    if (f->nsent == 0)
        return "";
    struct td_rbuf *r = f->sent[f->nsent - 1];
    size_t n = r->len < sizeof(buf) - 1 ? r->len : sizeof(buf) - 1;
    memcpy(buf, r->data, n);
    buf[n] = '\0';
    return buf;
}

/* Returns the sent unit that answers command id (static buffer), or "". */
static const char *fake_reply(struct fake_transport *f, int id)
{
    static char buf[4096];
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "{\"id\":%d,", id);
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

static void send_cmd(struct td_client *c, const char *json, int64_t now)
{
    size_t n = strlen(json);
    uint8_t *frame = malloc(n);
    memcpy(frame, json, n);
    td_client_on_frame(c, frame, n, now);
    free(frame);
}

struct env {
    struct td_config cfg;
    struct td_hub hub;
};

static void env_init(struct env *e)
{
    td_config_init(&e->cfg);
    char err[256];
    const char *text =
        "{\"client\":{\"insecure\":true,\"channel_limit\":3,\"ping_interval\":\"10s\","
        "\"pong_timeout\":\"4s\"},\"channel\":{\"max_length\":20,\"without_namespace\":{"
        "\"presence\":true,\"join_leave\":true,\"force_push_join_leave\":true,\"history_size\":"
        "100,\"history_ttl\":\"300s\",\"force_recovery\":true},\"namespaces\":[{\"name\":\"small\","
        "\"history_size\":2,\"history_ttl\":\"300s\",\"force_recovery\":true},{\"name\":"
        "\"plain\"}]}}";
    int rv = td_config_load_text(&e->cfg, "test", text, strlen(text), err, sizeof(err), NULL, NULL);
    if (rv != 0)
        fprintf(stderr, "config: %s\n", err);
    td_hub_init(&e->hub, &e->cfg);
}

static void env_free(struct env *e)
{
    td_hub_free(&e->hub);
    td_config_free(&e->cfg);
}

static struct td_client *connect_client(struct env *e, struct fake_transport *f, int64_t now)
{
    memset(f, 0, sizeof(*f));
    struct td_client *c = td_client_new(&e->hub, &td_codec_json, &fake_ops, f, now);
    send_cmd(c, "{\"id\":1,\"connect\":{\"name\":\"js\"}}", now);
    fake_reset(f);
    return c;
}

static void disconnect_client(struct td_client *c, struct fake_transport *f, int64_t now)
{
    td_client_free(c, now);
    fake_reset(f);
}

TD_TEST(hub_command_before_connect_is_3501)
{
    struct env e;
    env_init(&e);
    struct fake_transport f = {0};
    struct td_client *c = td_client_new(&e.hub, &td_codec_json, &fake_ops, &f, 0);
    send_cmd(c, "{\"id\":1,\"subscribe\":{\"channel\":\"a\"}}", 0);
    TD_CHECK_EQ_INT(f.close_code, 3501);
    TD_CHECK_EQ_INT(f.nsent, 0);
    disconnect_client(c, &f, 0);
    env_free(&e);
}

TD_TEST(hub_garbage_is_3501)
{
    struct env e;
    env_init(&e);
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 0);
    send_cmd(c, "not json", 0);
    TD_CHECK_EQ_INT(f.close_code, 3501);
    disconnect_client(c, &f, 0);
    env_free(&e);
}

TD_TEST(hub_connect_reply)
{
    struct env e;
    env_init(&e);
    struct fake_transport f = {0};
    struct td_client *c = td_client_new(&e.hub, &td_codec_json, &fake_ops, &f, 0);
    send_cmd(c, "{\"id\":1,\"connect\":{}}", 0);
    TD_REQUIRE(f.nsent == 1);
    const char *r = fake_last(&f);
    TD_CHECK(strstr(r, "\"id\":1") != NULL);
    TD_CHECK(strstr(r, "\"ping\":10") != NULL);
    TD_CHECK(strstr(r, "\"pong\":true") != NULL);
    TD_CHECK(strstr(r, c->id) != NULL);
    TD_CHECK(c->state == TD_CLIENT_CONNECTED);
    /* A second connect is a protocol violation. */
    send_cmd(c, "{\"id\":2,\"connect\":{}}", 0);
    TD_CHECK_EQ_INT(f.close_code, 3501);
    disconnect_client(c, &f, 0);
    env_free(&e);
}

TD_TEST(hub_fanout_shares_one_unit)
{
    struct env e;
    env_init(&e);
    struct fake_transport f1, f2, f3;
    struct td_client *a = connect_client(&e, &f1, 0);
    struct td_client *b = connect_client(&e, &f2, 0);
    struct td_client *p = connect_client(&e, &f3, 0);
    send_cmd(a, "{\"id\":2,\"subscribe\":{\"channel\":\"news\"}}", 0);
    send_cmd(b, "{\"id\":2,\"subscribe\":{\"channel\":\"news\"}}", 0);
    fake_reset(&f1);
    fake_reset(&f2);
    send_cmd(p, "{\"id\":3,\"publish\":{\"channel\":\"news\",\"data\":{\"n\":1}}}", 0);
    TD_CHECK_EQ_INT(f3.nsent, 1);
    TD_CHECK(strcmp(fake_last(&f3), "{\"id\":3,\"publish\":{}}") == 0);
    TD_REQUIRE(f1.nsent == 1 && f2.nsent == 1);
    TD_CHECK(f1.sent[0] == f2.sent[0]); /* the same buffer, not a copy */
    TD_CHECK(strstr(fake_last(&f1), "\"pub\":{\"data\":{\"n\":1}") != NULL);
    TD_CHECK(strstr(fake_last(&f1), "\"offset\":1") != NULL);
    TD_CHECK(strstr(fake_last(&f1), p->id) != NULL); /* publisher info attached */
    TD_CHECK_EQ_INT(e.hub.stats.deliveries, 2);
    disconnect_client(a, &f1, 0);
    disconnect_client(b, &f2, 0);
    disconnect_client(p, &f3, 0);
    env_free(&e);
}

TD_TEST(hub_subscribe_errors)
{
    struct env e;
    env_init(&e);
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 0);
    send_cmd(c, "{\"id\":2,\"subscribe\":{\"channel\":\"nope:x\"}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":102") != NULL);
    send_cmd(c, "{\"id\":3,\"subscribe\":{\"channel\":\"a\"}}", 0);
    send_cmd(c, "{\"id\":4,\"subscribe\":{\"channel\":\"a\"}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":105") != NULL);
    send_cmd(c, "{\"id\":5,\"subscribe\":{\"channel\":\"0123456789012345678901\"}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":107") != NULL);
    send_cmd(c, "{\"id\":6,\"subscribe\":{\"channel\":\"b\"}}", 0);
    send_cmd(c, "{\"id\":7,\"subscribe\":{\"channel\":\"c\"}}", 0);
    send_cmd(c, "{\"id\":8,\"subscribe\":{\"channel\":\"d\"}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":106") != NULL); /* channel_limit 3 */
    TD_CHECK_EQ_INT(c->nsubs, 3);
    send_cmd(c, "{\"id\":9,\"rpc\":{\"method\":\"m\"}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":108") != NULL);
    TD_CHECK_EQ_INT(f.close_code, 0);
    send_cmd(c, "{\"id\":10,\"subscribe\":{\"channel\":\"\"}}", 0);
    TD_CHECK_EQ_INT(f.close_code, 3501);
    disconnect_client(c, &f, 0);
    env_free(&e);
}

TD_TEST(hub_recovery_after_reconnect)
{
    struct env e;
    env_init(&e);
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 0);
    send_cmd(c, "{\"id\":2,\"subscribe\":{\"channel\":\"r\"}}", 0);
    TD_CHECK(strstr(fake_reply(&f, 2), "\"recoverable\":true") != NULL);
    struct td_channel *ch = td_hub_channel(&e.hub, (struct td_str){"r", 1});
    TD_REQUIRE(ch != NULL);
    char epoch[16];
    snprintf(epoch, sizeof(epoch), "%s", ch->stream.epoch);
    disconnect_client(c, &f, 0);
    for (int i = 0; i < 3; i++)
        td_hub_publish(&e.hub, (struct td_str){"r", 1}, (struct td_str){"1", 1}, NULL, 10, NULL);
    c = connect_client(&e, &f, 20);
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "{\"id\":2,\"subscribe\":{\"channel\":\"r\",\"recover\":true,\"epoch\":\"%s\"}}",
             epoch);
    send_cmd(c, cmd, 20);
    const char *r = fake_reply(&f, 2);
    TD_CHECK(strstr(r, "\"recovered\":true") != NULL);
    TD_CHECK(strstr(r, "\"was_recovering\":true") != NULL);
    TD_CHECK(strstr(r, "\"offset\":3}]") != NULL);
    TD_CHECK(strstr(r, "\"publications\":[{\"data\":1,\"offset\":1}") != NULL);
    disconnect_client(c, &f, 20);

    /* Small history: 5 missed of which only 2 are kept -> recovered:false. */
    c = connect_client(&e, &f, 30);
    send_cmd(c, "{\"id\":2,\"subscribe\":{\"channel\":\"small:x\"}}", 30);
    ch = td_hub_channel(&e.hub, (struct td_str){"small:x", 7});
    snprintf(epoch, sizeof(epoch), "%s", ch->stream.epoch);
    disconnect_client(c, &f, 30);
    for (int i = 0; i < 5; i++)
        td_hub_publish(&e.hub, (struct td_str){"small:x", 7}, (struct td_str){"2", 1}, NULL, 40,
                       NULL);
    c = connect_client(&e, &f, 50);
    snprintf(cmd, sizeof(cmd),
             "{\"id\":2,\"subscribe\":{\"channel\":\"small:x\",\"recover\":true,\"epoch\":\"%s\"}}",
             epoch);
    send_cmd(c, cmd, 50);
    r = fake_reply(&f, 2);
    TD_CHECK(strstr(r, "\"recovered\":true") == NULL);
    TD_CHECK(strstr(r, "\"was_recovering\":true") != NULL);
    TD_CHECK(strstr(r, "\"offset\":5") != NULL);
    TD_CHECK(strstr(r, "publications") == NULL);
    /* With flag bit 1 (reject unrecovered) the answer is error 112 instead. */
    snprintf(cmd, sizeof(cmd),
             "{\"id\":3,\"subscribe\":{\"channel\":\"small:y\",\"recover\":true,\"offset\":9,"
             "\"flag\":3}}");
    send_cmd(c, cmd, 50);
    TD_CHECK(strstr(fake_last(&f), "\"code\":112") != NULL);
    disconnect_client(c, &f, 50);
    env_free(&e);
}

TD_TEST(hub_ping_pong_and_timeouts)
{
    struct env e;
    env_init(&e);
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 0);
    int64_t next = td_client_tick(c, 0);
    TD_CHECK(next >= 5000 && next <= 10000); /* first ping in [interval/2, interval] */
    TD_CHECK_EQ_INT(f.nsent, 0);
    next = td_client_tick(c, next);
    TD_REQUIRE(f.nsent == 1);
    TD_CHECK(strcmp(fake_last(&f), "{}") == 0);
    int64_t pinged = c->pong_due_ms - 4000;
    send_cmd(c, "{}", pinged + 100); /* pong */
    TD_CHECK_EQ_INT(c->pong_due_ms, 0);
    td_client_tick(c, pinged + 5000);
    TD_CHECK_EQ_INT(f.close_code, 0);
    /* Next ping, no pong: 3012 once the pong timeout passes. */
    td_client_tick(c, pinged + 10000);
    TD_CHECK_EQ_INT(f.nsent, 2);
    td_client_tick(c, pinged + 13999);
    TD_CHECK_EQ_INT(f.close_code, 0);
    td_client_tick(c, pinged + 14000);
    TD_CHECK_EQ_INT(f.close_code, 3012);
    disconnect_client(c, &f, 0);

    /* Never connected: stale after client.stale_close_delay (10 s). */
    struct fake_transport g = {0};
    struct td_client *s = td_client_new(&e.hub, &td_codec_json, &fake_ops, &g, 0);
    TD_CHECK_EQ_INT(td_client_tick(s, 0), 10000);
    td_client_tick(s, 10000);
    TD_CHECK_EQ_INT(g.close_code, 3502);
    disconnect_client(s, &g, 0);
    env_free(&e);
}

TD_TEST(hub_presence_and_join_leave)
{
    struct env e;
    env_init(&e);
    struct fake_transport f1, f2;
    struct td_client *a = connect_client(&e, &f1, 0);
    struct td_client *b = connect_client(&e, &f2, 0);
    send_cmd(a, "{\"id\":2,\"subscribe\":{\"channel\":\"room\"}}", 0);
    fake_reset(&f1);
    send_cmd(b, "{\"id\":2,\"subscribe\":{\"channel\":\"room\"}}", 0);
    TD_REQUIRE(f1.nsent == 1);
    TD_CHECK(strstr(fake_last(&f1), "\"join\":{\"info\":{\"user\":\"\",\"client\":") != NULL);
    TD_CHECK(strstr(fake_last(&f1), b->id) != NULL);
    send_cmd(a, "{\"id\":3,\"presence_stats\":{\"channel\":\"room\"}}", 0);
    TD_CHECK(strstr(fake_last(&f1), "\"num_clients\":2,\"num_users\":1") != NULL);
    send_cmd(a, "{\"id\":4,\"presence\":{\"channel\":\"room\"}}", 0);
    TD_CHECK(strstr(fake_last(&f1), a->id) != NULL && strstr(fake_last(&f1), b->id) != NULL);
    send_cmd(a, "{\"id\":5,\"presence\":{\"channel\":\"plain:x\"}}", 0);
    TD_CHECK(strstr(fake_last(&f1), "\"code\":108") != NULL); /* presence off there */
    send_cmd(a, "{\"id\":6,\"history\":{\"channel\":\"plain:x\"}}", 0);
    TD_CHECK(strstr(fake_last(&f1), "\"code\":108") != NULL); /* no history there */
    fake_reset(&f1);
    disconnect_client(b, &f2, 0);
    TD_REQUIRE(f1.nsent == 1);
    TD_CHECK(strstr(fake_last(&f1), "\"leave\":{\"info\"") != NULL);
    disconnect_client(a, &f1, 0);
    env_free(&e);
}

TD_TEST(hub_history_command)
{
    struct env e;
    env_init(&e);
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 0);
    for (int i = 0; i < 4; i++)
        td_hub_publish(&e.hub, (struct td_str){"h", 1}, (struct td_str){"7", 1}, NULL, 0, NULL);
    send_cmd(c, "{\"id\":2,\"history\":{\"channel\":\"h\",\"limit\":2}}", 0);
    const char *r = fake_last(&f);
    TD_CHECK(strstr(r, "\"publications\":[{\"data\":7,\"offset\":1},{\"data\":7,\"offset\":2}]") !=
             NULL);
    TD_CHECK(strstr(r, "\"offset\":4") != NULL);
    send_cmd(c, "{\"id\":3,\"history\":{\"channel\":\"h\"}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"publications\":[]") != NULL); /* limit 0: position only */
    send_cmd(c,
             "{\"id\":4,\"history\":{\"channel\":\"h\",\"limit\":-1,\"reverse\":true,"
             "\"since\":{\"offset\":3}}}",
             0);
    TD_CHECK(strstr(fake_last(&f), "[{\"data\":7,\"offset\":2},{\"data\":7,\"offset\":1}]") !=
             NULL);
    send_cmd(c,
             "{\"id\":5,\"history\":{\"channel\":\"h\",\"since\":{\"offset\":1,\"epoch\":\"zz\"}}}",
             0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":112") != NULL);
    send_cmd(c, "{\"id\":6,\"history\":{\"channel\":\"h\",\"reverse\":true,\"since\":{}}}", 0);
    TD_CHECK(strstr(fake_last(&f), "\"code\":107") != NULL);
    disconnect_client(c, &f, 0);
    env_free(&e);
}

TD_TEST(hub_batched_replies_one_frame)
{
    struct env e;
    env_init(&e);
    struct fake_transport f = {0};
    struct td_client *c = td_client_new(&e.hub, &td_codec_json, &fake_ops, &f, 0);
    send_cmd(c,
             "{\"connect\":{\"name\":\"js\"},\"id\":1}\n{\"subscribe\":{\"channel\":\"news\"},"
             "\"id\":2}",
             0);
    /* Replies in one frame; then the subscriber's own join push (force_push_join_leave). */
    TD_REQUIRE(f.nsent == 2);
    TD_CHECK(strstr(fake_last(&f), "\"join\"") != NULL);
    const char *r = fake_reply(&f, 1);
    const char *nl = strchr(r, '\n');
    TD_REQUIRE(nl != NULL);
    TD_CHECK(strncmp(r, "{\"id\":1,\"connect\"", 17) == 0);
    TD_CHECK(strncmp(nl + 1, "{\"id\":2,\"subscribe\"", 19) == 0);
    disconnect_client(c, &f, 0);
    env_free(&e);
}

TD_TEST(hub_command_rate_limit_111)
{
    struct env e;
    env_init(&e);
    e.cfg.command_rate_limit = 2; /* 2 commands/s, burst 3 */
    e.cfg.command_rate_burst = 3;
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 1000); /* connect itself is not counted */
    char cmd[128];
    int ok = 0, limited = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof(cmd), "{\"id\":%d,\"presence_stats\":{\"channel\":\"r\"}}", 10 + i);
        send_cmd(c, cmd, 1000);
        const char *r = fake_reply(&f, 10 + i);
        if (strstr(r, "\"code\":111") != NULL) {
            limited++;
            TD_CHECK(strstr(r, "\"temporary\":true") != NULL);
        } else if (strstr(r, "num_clients") != NULL) {
            ok++;
        }
    }
    TD_CHECK_EQ_INT(ok, 3); /* the burst */
    TD_CHECK_EQ_INT(limited, 2);
    send_cmd(c, "{}", 1000); /* pongs are never limited */
    send_cmd(c, "{\"id\":20,\"presence_stats\":{\"channel\":\"r\"}}", 1400);
    TD_CHECK(strstr(fake_reply(&f, 20), "\"code\":111") != NULL); /* only 0.8 refilled */
    send_cmd(c, "{\"id\":21,\"presence_stats\":{\"channel\":\"r\"}}", 2000);
    TD_CHECK(strstr(fake_reply(&f, 21), "num_clients") != NULL); /* refilled by then */
    TD_CHECK_EQ_INT(f.close_code, 0);
    disconnect_client(c, &f, 2000);
    env_free(&e);
}

TD_TEST(hub_idempotent_publish)
{
    struct env e;
    env_init(&e);
    e.cfg.idempotency_window_ms = 60000;
    struct fake_transport f;
    struct td_client *c = connect_client(&e, &f, 0);
    send_cmd(c, "{\"id\":2,\"subscribe\":{\"channel\":\"i\"}}", 0);
    fake_reset(&f);
    struct td_str ch = {"i", 1}, data = {"1", 1}, key = {"k1", 2};
    struct td_publish_result r1, r2, r3, r4;
    TD_REQUIRE(td_hub_publish_idem(&e.hub, ch, data, NULL, key, 10, &r1) == 0);
    TD_REQUIRE(td_hub_publish_idem(&e.hub, ch, data, NULL, key, 20, &r2) == 0);
    TD_CHECK_EQ_INT(r1.offset, 1);
    TD_CHECK_EQ_INT(r2.offset, 1); /* the retry gets the original offset */
    TD_CHECK(strcmp(r1.epoch, r2.epoch) == 0);
    TD_CHECK_EQ_INT(f.nsent, 1); /* and was not delivered again */
    TD_REQUIRE(td_hub_publish_idem(&e.hub, ch, data, NULL, (struct td_str){"k2", 2}, 30, &r3) == 0);
    TD_CHECK_EQ_INT(r3.offset, 2);
    /* After the window the key is forgotten (swept by the tick) and publishes anew. */
    td_hub_tick(&e.hub, 70000);
    struct td_channel *chan = td_hub_channel(&e.hub, ch);
    TD_REQUIRE(chan != NULL);
    TD_CHECK_EQ_INT(chan->idem.count, 0);
    TD_REQUIRE(td_hub_publish_idem(&e.hub, ch, data, NULL, key, 70001, &r4) == 0);
    TD_CHECK_EQ_INT(r4.offset, 3);
    disconnect_client(c, &f, 70001);
    env_free(&e);
}

/* ---- durable channels: a fake store that completes operations when the test says ---- */

struct fake_store {
    struct td_store_op *ops[16];
    int n;
    uint64_t top;
};

static void fake_submit(void *ud, struct td_store_op *op)
{
    struct fake_store *s = ud;
    if (s->n < 16)
        s->ops[s->n++] = op;
}

/* Completes every queued operation in order as the real store would (or fails them). */
static void fake_store_run(struct env *e, struct fake_store *s, int status, int64_t now)
{
    for (int i = 0; i < s->n; i++) {
        struct td_store_op *op = s->ops[i];
        op->status = status;
        if (status == 0 && op->kind == TD_STORE_OP_PUBLISH)
            op->offset = ++s->top;
        td_hub_store_done(&e->hub, op, now);
    }
    s->n = 0;
}

TD_TEST(hub_durable_publish_waits_for_commit)
{
    struct env e;
    env_init(&e);
    struct fake_store st = {0};
    e.hub.store.submit = fake_submit;
    e.hub.store.ud = &st;
    struct fake_transport sub, pub;
    struct td_client *cs = connect_client(&e, &sub, 0);
    struct td_client *cp = connect_client(&e, &pub, 0);
    send_cmd(cs, "{\"id\":2,\"subscribe\":{\"channel\":\"d\"}}", 0);
    TD_CHECK(strstr(fake_reply(&sub, 2), "\"epoch\"") != NULL);
    TD_CHECK_EQ_INT(st.n, 1); /* the channel's epoch is recorded before anyone learns it */
    TD_CHECK_EQ_INT(st.ops[0]->kind, TD_STORE_OP_CREATE);
    fake_store_run(&e, &st, 0, 0);
    fake_reset(&sub);

    send_cmd(cp, "{\"id\":3,\"publish\":{\"channel\":\"d\",\"data\":{\"x\":1}}}", 1);
    TD_CHECK_EQ_INT(st.n, 1);
    TD_CHECK_EQ_INT(pub.nsent, 0); /* no reply before the commit */
    TD_CHECK_EQ_INT(sub.nsent, 0); /* no delivery before the commit */
    fake_store_run(&e, &st, 0, 2);
    TD_CHECK(strstr(fake_reply(&pub, 3), "\"publish\":{}") != NULL);
    TD_CHECK(strstr(fake_last(&sub), "\"offset\":1") != NULL);

    /* a failed commit: error 100 to the publisher, nothing delivered, no offset used */
    fake_reset(&sub);
    send_cmd(cp, "{\"id\":4,\"publish\":{\"channel\":\"d\",\"data\":{\"x\":2}}}", 3);
    fake_store_run(&e, &st, TD_ESTORE, 4);
    TD_CHECK(strstr(fake_reply(&pub, 4), "\"code\":100") != NULL);
    TD_CHECK_EQ_INT(sub.nsent, 0);
    struct td_channel *ch = td_hub_channel(&e.hub, (struct td_str){"d", 1});
    TD_REQUIRE(ch != NULL);
    TD_CHECK(ch->stream.top == 1);

    /* a publisher that disconnects before the commit: the publication still goes out */
    send_cmd(cp, "{\"id\":5,\"publish\":{\"channel\":\"d\",\"data\":{\"x\":3}}}", 5);
    disconnect_client(cp, &pub, 5);
    fake_store_run(&e, &st, 0, 6);
    TD_CHECK(strstr(fake_last(&sub), "\"offset\":2") != NULL);
    TD_CHECK(ch->stream.top == 2);
    disconnect_client(cs, &sub, 7);
    env_free(&e);
}

/* A transport with datagrams: records what went each way; refuses datagrams on demand. */
#define S(lit) ((struct td_str){lit, sizeof(lit) - 1})

struct dgram_transport {
    struct fake_transport f;
    int ndgrams;
    bool refuse;
};

static int dgram_send(void *t, struct td_rbuf *unit)
{
    struct dgram_transport *d = t;
    if (d->refuse)
        return TD_EINVAL;
    (void)unit;
    d->ndgrams++;
    return 0;
}

static const struct td_transport_ops dgram_ops = {fake_send, fake_close, dgram_send};

TD_TEST(hub_datagram_namespace_uses_send_datagram)
{
    struct td_config cfg;
    td_config_init(&cfg);
    char err[256];
    const char *text = "{\"client\":{\"insecure\":true},\"channel\":{\"namespaces\":[{\"name\":"
                       "\"dg\",\"datagrams\":true},{\"name\":\"plain\"}]}}";
    TD_REQUIRE(
        td_config_load_text(&cfg, "test", text, strlen(text), err, sizeof(err), NULL, NULL) == 0);
    struct td_hub hub;
    td_hub_init(&hub, &cfg);
    struct dgram_transport wt;
    struct fake_transport ws;
    memset(&wt, 0, sizeof(wt));
    memset(&ws, 0, sizeof(ws));
    struct td_client *a = td_client_new(&hub, &td_codec_json, &dgram_ops, &wt, 0);
    struct td_client *b = td_client_new(&hub, &td_codec_json, &fake_ops, &ws, 0);
    send_cmd(a, "{\"id\":1,\"connect\":{}}", 0);
    send_cmd(b, "{\"id\":1,\"connect\":{}}", 0);
    send_cmd(a, "{\"id\":2,\"subscribe\":{\"channel\":\"dg:x\"}}", 0);
    send_cmd(b, "{\"id\":2,\"subscribe\":{\"channel\":\"dg:x\"}}", 0);
    send_cmd(a, "{\"id\":3,\"subscribe\":{\"channel\":\"plain:x\"}}", 0);
    fake_reset(&wt.f);
    fake_reset(&ws);

    struct td_publish_result res;
    /* datagram namespace: the datagram transport gets a datagram, the other the stream */
    TD_CHECK(td_hub_publish(&hub, S("dg:x"), S("{\"v\":1}"), NULL, 0, &res) == 0);
    TD_CHECK_EQ_INT(wt.ndgrams, 1);
    TD_CHECK_EQ_INT(wt.f.nsent, 0);
    TD_CHECK_EQ_INT(ws.nsent, 1);
    /* a refused datagram falls back to the stream */
    wt.refuse = true;
    TD_CHECK(td_hub_publish(&hub, S("dg:x"), S("{\"v\":2}"), NULL, 0, &res) == 0);
    TD_CHECK_EQ_INT(wt.ndgrams, 1);
    TD_CHECK_EQ_INT(wt.f.nsent, 1);
    TD_CHECK(strstr(fake_last(&wt.f), "\"v\":2") != NULL);
    /* other namespaces never use datagrams */
    wt.refuse = false;
    TD_CHECK(td_hub_publish(&hub, S("plain:x"), S("{\"v\":3}"), NULL, 0, &res) == 0);
    TD_CHECK_EQ_INT(wt.ndgrams, 1);
    TD_CHECK_EQ_INT(wt.f.nsent, 2);

    td_client_free(a, 0);
    td_client_free(b, 0);
    fake_reset(&wt.f);
    fake_reset(&ws);
    td_hub_free(&hub);
    td_config_free(&cfg);
}

#undef S
