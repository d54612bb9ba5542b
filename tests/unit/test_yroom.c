/* Yjs rooms with fake connections and a fake store (no sockets, no threads, no sleeps). */
#include <stdlib.h>
#include <string.h>

#include "core/td_err.h"
#include "crdt/td_ydoc.h"
#include "engine/td_yroom.h"
#include "proto/td_yproto.h"
#include "td_test.h"

struct fconn {
    struct td_yconn *h;
    struct td_rbuf *msgs[64];
    int n;
    int close_code;
    char reason[64];
};

static int fconn_send(void *t, struct td_rbuf *m)
{
    struct fconn *c = t;
    if (c->n < 64)
        c->msgs[c->n++] = td_rbuf_ref(m);
    return 0;
}

static void fconn_close(void *t, uint16_t code, const char *reason)
{
    struct fconn *c = t;
    c->close_code = code;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static const struct td_yconn_ops fops = {fconn_send, fconn_close};

static void fconn_clear(struct fconn *c)
{
    for (int i = 0; i < c->n; i++)
        td_rbuf_unref(c->msgs[i]);
    c->n = 0;
}

/* The fake store: operations wait in a list until fstore_run completes them in order. */
struct fstore {
    struct td_store_op *ops[64];
    int n;
    struct td_buf log[16]; /* appended updates of one room */
    int nlog;
    int compactions;
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
        struct td_store_op *op = ops[i];
        op->status = 0;
        if (op->kind == TD_STORE_OP_DOC_APPEND && s->nlog < 16) {
            td_buf_init(&s->log[s->nlog]);
            td_buf_append(&s->log[s->nlog++], op->doc_data, op->doc_len);
        } else if (op->kind == TD_STORE_OP_DOC_LOAD) {
            for (int k = 0; k < s->nlog; k++) {
                if (k == 0)
                    td_buf_append(&op->doc_out, s->log[k].data, s->log[k].len);
            }
            op->doc_rows = (uint64_t)s->nlog;
        } else if (op->kind == TD_STORE_OP_DOC_COMPACT) {
            for (int k = 0; k < s->nlog; k++)
                td_buf_free(&s->log[k]);
            td_buf_init(&s->log[0]);
            td_buf_append(&s->log[0], op->doc_data, op->doc_len);
            s->nlog = 1;
            s->compactions++;
        }
        td_yrooms_store_done(rs, op, 0);
    }
}

static void fstore_free(struct fstore *s)
{
    for (int k = 0; k < s->nlog; k++)
        td_buf_free(&s->log[k]);
}

static void send_msg(struct fconn *c, const struct td_buf *b, int64_t now)
{
    td_yconn_message(c->h, b->data, b->len, now);
}

static void send_sync(struct fconn *c, uint64_t sub, const struct td_buf *payload)
{
    struct td_buf m;
    td_buf_init(&m);
    td_yproto_write_sync(&m, sub, payload->data, payload->len);
    send_msg(c, &m, 0);
    td_buf_free(&m);
}

/* Applies every sync step2/update message c received to d. */
static void apply_received(struct fconn *c, struct td_ydoc *d)
{
    for (int i = 0; i < c->n; i++) {
        struct td_yproto_msg m;
        if (td_yproto_decode(c->msgs[i]->data, c->msgs[i]->len, 0, &m) != 0)
            continue;
        if (m.type == TD_YPROTO_SYNC && m.subtype != TD_YPROTO_STEP1)
            TD_CHECK(td_ydoc_apply(d, m.payload.p, m.payload.len, 1, NULL) == 0);
    }
}

static int count_type(struct fconn *c, uint64_t type, uint64_t sub)
{
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        struct td_yproto_msg m;
        if (td_yproto_decode(c->msgs[i]->data, c->msgs[i]->len, 0, &m) == 0 && m.type == type &&
            (type != TD_YPROTO_SYNC || m.subtype == sub))
            k++;
    }
    return k;
}

static void edit(struct td_ydoc *d, const char *text, struct td_buf *out)
{
    td_buf_reset(out);
    td_ydoc_begin(d);
    TD_CHECK(td_ydoc_text_insert(d, "t", td_ydoc_text_length(d, "t"), text, strlen(text)) == 0);
    TD_CHECK(td_ydoc_commit(d, out, 1) == 0);
}

static void check_text(struct td_ydoc *d, const char *want)
{
    struct td_buf t;
    td_buf_init(&t);
    td_ydoc_text(d, "t", &t);
    TD_CHECK_MEM_STR(t.data ? (const char *)t.data : "", t.len, want);
    td_buf_free(&t);
}

TD_TEST(yroom_sync_broadcast_late_joiner)
{
    struct td_yrooms_config cfg = {0};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fconn a = {0}, b = {0}, late = {0};
    a.h = td_yrooms_join(rs, "r", 1, &a, 0);
    /* the server opens with step1 carrying its (empty) state vector */
    TD_REQUIRE(a.n == 1);
    static const uint8_t step1_empty[] = {0x00, 0x00, 0x01, 0x00};
    TD_CHECK(a.msgs[0]->len == 4 && memcmp(a.msgs[0]->data, step1_empty, 4) == 0);
    /* client step1 is answered with step2, even when empty */
    struct td_buf sv, up;
    td_buf_init(&sv);
    td_buf_init(&up);
    td_buf_append_byte(&sv, 0);
    send_sync(&a, TD_YPROTO_STEP1, &sv);
    TD_REQUIRE(a.n == 2);
    static const uint8_t step2_empty[] = {0x00, 0x01, 0x02, 0x00, 0x00};
    TD_CHECK(a.msgs[1]->len == 5 && memcmp(a.msgs[1]->data, step2_empty, 5) == 0);

    b.h = td_yrooms_join(rs, "r", 1, &b, 0);
    struct td_ydoc *da = td_ydoc_new(11);
    edit(da, "hello", &up);
    send_sync(&a, TD_YPROTO_UPDATE, &up);
    /* everyone, the sender included, gets the update */
    TD_CHECK_EQ_INT(count_type(&a, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    TD_CHECK_EQ_INT(count_type(&b, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    struct td_ydoc *db = td_ydoc_new(12);
    apply_received(&b, db);
    check_text(db, "hello");
    /* a duplicate changes nothing and is not broadcast */
    send_sync(&a, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(count_type(&b, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    /* another room does not see it */
    struct fconn other = {0};
    other.h = td_yrooms_join(rs, "r2", 2, &other, 0);
    TD_CHECK_EQ_INT(count_type(&other, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 0);

    /* everybody leaves; a late joiner gets the whole state through step2 */
    td_yconn_leave(a.h, 0);
    td_yconn_leave(b.h, 0);
    late.h = td_yrooms_join(rs, "r", 1, &late, 0);
    send_sync(&late, TD_YPROTO_STEP1, &sv);
    struct td_ydoc *dl = td_ydoc_new(13);
    apply_received(&late, dl);
    check_text(dl, "hello");
    td_yconn_leave(late.h, 0);
    td_yconn_leave(other.h, 0);

    fconn_clear(&a);
    fconn_clear(&b);
    fconn_clear(&late);
    fconn_clear(&other);
    td_ydoc_del(da);
    td_ydoc_del(db);
    td_ydoc_del(dl);
    td_buf_free(&sv);
    td_buf_free(&up);
    td_yrooms_free(rs);
}

static void send_awareness(struct fconn *c, uint64_t id, uint64_t clock, const char *state,
                           int64_t now)
{
    struct td_yaware_entry e = {.client_id = id,
                                .clock = clock,
                                .state = {(const uint8_t *)state, strlen(state)},
                                .removed = strcmp(state, "null") == 0};
    struct td_buf u, m;
    td_buf_init(&u);
    td_buf_init(&m);
    td_yproto_aware_encode(&u, &e, 1);
    td_yproto_write_awareness(&m, u.data, u.len);
    send_msg(c, &m, now);
    td_buf_free(&u);
    td_buf_free(&m);
}

/* The last awareness message c received: its first entry. */
static int last_awareness(struct fconn *c, struct td_yaware_entry *e)
{
    for (int i = c->n - 1; i >= 0; i--) {
        struct td_yproto_msg m;
        if (td_yproto_decode(c->msgs[i]->data, c->msgs[i]->len, 0, &m) != 0 ||
            m.type != TD_YPROTO_AWARENESS)
            continue;
        struct td_yaware_iter it;
        if (td_yproto_aware_begin(&it, m.payload.p, m.payload.len, NULL) != 0)
            return -1;
        return td_yproto_aware_next(&it, e);
    }
    return 0;
}

TD_TEST(yroom_awareness_relay_leave_timeout)
{
    struct td_yrooms_config cfg = {0};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fconn a = {0}, b = {0}, c = {0};
    a.h = td_yrooms_join(rs, "r", 1, &a, 0);
    b.h = td_yrooms_join(rs, "r", 1, &b, 0);
    send_awareness(&a, 7, 1, "{\"user\":\"A\"}", 100);
    struct td_yaware_entry e;
    /* relayed to the other client and echoed to the sender */
    TD_REQUIRE(last_awareness(&b, &e) == 1);
    TD_CHECK_EQ_INT(e.client_id, 7);
    TD_CHECK_MEM_STR(e.state.p, e.state.len, "{\"user\":\"A\"}");
    TD_REQUIRE(last_awareness(&a, &e) == 1);
    TD_CHECK_EQ_INT(e.clock, 1);
    /* an old clock is ignored */
    int before = b.n;
    send_awareness(&a, 7, 1, "{\"user\":\"old\"}", 200);
    TD_CHECK_EQ_INT(b.n, before);
    /* a new joiner gets the states after step1 */
    c.h = td_yrooms_join(rs, "r", 1, &c, 300);
    TD_REQUIRE(c.n == 2);
    TD_REQUIRE(last_awareness(&c, &e) == 1);
    TD_CHECK_EQ_INT(e.client_id, 7);
    /* a leaves: the others see the removal with the same clock */
    td_yconn_leave(a.h, 400);
    TD_REQUIRE(last_awareness(&b, &e) == 1);
    TD_CHECK_EQ_INT(e.client_id, 7);
    TD_CHECK_EQ_INT(e.clock, 1);
    TD_CHECK(e.removed);
    /* a state not renewed for 30 s is removed by the tick */
    send_awareness(&b, 8, 1, "{}", 1000);
    td_yrooms_tick(rs, 1000 + TD_YROOM_AWARENESS_TIMEOUT_MS - 1);
    TD_REQUIRE(last_awareness(&c, &e) == 1);
    TD_CHECK(!e.removed);
    td_yrooms_tick(rs, 1000 + TD_YROOM_AWARENESS_TIMEOUT_MS);
    TD_REQUIRE(last_awareness(&c, &e) == 1);
    TD_CHECK_EQ_INT(e.client_id, 8);
    TD_CHECK(e.removed);
    td_yconn_leave(b.h, 0);
    td_yconn_leave(c.h, 0);
    fconn_clear(&a);
    fconn_clear(&b);
    fconn_clear(&c);
    td_yrooms_free(rs);
}

TD_TEST(yroom_malformed_closes_only_offender)
{
    struct td_yrooms_config cfg = {.max_message = 1000};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fconn a = {0}, b = {0}, c = {0};
    a.h = td_yrooms_join(rs, "r", 1, &a, 0);
    b.h = td_yrooms_join(rs, "r", 1, &b, 0);
    c.h = td_yrooms_join(rs, "r", 1, &c, 0);
    send_awareness(&a, 7, 1, "{}", 0);
    struct td_buf bad;
    td_buf_init(&bad);
    static const uint8_t junk[] = {0x05, 0xff, 0xff, 0x01};
    td_buf_append(&bad, junk, sizeof(junk));
    send_sync(&a, TD_YPROTO_UPDATE, &bad);
    TD_CHECK_EQ_INT(a.close_code, TD_YROOM_CLOSE_MALFORMED);
    TD_CHECK_EQ_INT(b.close_code, 0);
    /* the offender's awareness is removed at once */
    struct td_yaware_entry e;
    TD_REQUIRE(last_awareness(&b, &e) == 1);
    TD_CHECK(e.removed);
    /* an oversized message */
    td_buf_reset(&bad);
    for (int i = 0; i < 1200; i++)
        td_buf_append_byte(&bad, 0);
    send_sync(&b, TD_YPROTO_UPDATE, &bad);
    TD_CHECK_EQ_INT(b.close_code, TD_YROOM_CLOSE_TOO_LARGE);
    /* c still syncs */
    struct td_ydoc *d = td_ydoc_new(5);
    struct td_buf up;
    td_buf_init(&up);
    edit(d, "ok", &up);
    int an = a.n;
    send_sync(&c, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(c.close_code, 0);
    TD_CHECK_EQ_INT(count_type(&c, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    TD_CHECK_EQ_INT(a.n, an); /* closed connections get nothing more */
    /* garbage framing */
    static const uint8_t trunc[] = {0x00, 0x02, 0x09};
    td_yconn_message(c.h, trunc, sizeof(trunc), 0);
    TD_CHECK_EQ_INT(c.close_code, TD_YROOM_CLOSE_MALFORMED);
    td_yconn_leave(a.h, 0);
    td_yconn_leave(b.h, 0);
    td_yconn_leave(c.h, 0);
    fconn_clear(&a);
    fconn_clear(&b);
    fconn_clear(&c);
    td_ydoc_del(d);
    td_buf_free(&up);
    td_buf_free(&bad);
    td_yrooms_free(rs);
}

TD_TEST(yroom_durable_order_load_compact)
{
    struct td_yrooms_config cfg = {.compact_every = 3, .idle_unload_ms = 1000};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fstore st = {0};
    td_yrooms_set_store(rs, fstore_submit, &st);
    struct fconn a = {0}, b = {0};
    a.h = td_yrooms_join(rs, "r", 1, &a, 0);
    /* loading: nothing sent yet, messages are queued */
    TD_CHECK_EQ_INT(a.n, 0);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_LOAD);
    struct td_buf sv, up;
    td_buf_init(&sv);
    td_buf_init(&up);
    td_buf_append_byte(&sv, 0);
    send_sync(&a, TD_YPROTO_STEP1, &sv);
    TD_CHECK_EQ_INT(a.n, 0);
    fstore_run(&st, rs);
    /* step1 from the server, then the queued step1's answer */
    TD_CHECK_EQ_INT(count_type(&a, TD_YPROTO_SYNC, TD_YPROTO_STEP1), 1);
    TD_CHECK_EQ_INT(count_type(&a, TD_YPROTO_SYNC, TD_YPROTO_STEP2), 1);

    b.h = td_yrooms_join(rs, "r", 1, &b, 0);
    struct td_ydoc *d = td_ydoc_new(21);
    edit(d, "one", &up);
    send_sync(&a, TD_YPROTO_UPDATE, &up);
    /* not broadcast before the append completes */
    TD_CHECK_EQ_INT(count_type(&b, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 0);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_APPEND);
    /* b's step1 answer waits behind the append too */
    send_sync(&b, TD_YPROTO_STEP1, &sv);
    TD_CHECK_EQ_INT(count_type(&b, TD_YPROTO_SYNC, TD_YPROTO_STEP2), 0);
    fstore_run(&st, rs);
    TD_CHECK_EQ_INT(count_type(&b, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    TD_CHECK_EQ_INT(count_type(&b, TD_YPROTO_SYNC, TD_YPROTO_STEP2), 1);
    TD_CHECK_EQ_INT(count_type(&a, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    /* the third append triggers a compaction */
    edit(d, " two", &up);
    send_sync(&a, TD_YPROTO_UPDATE, &up);
    edit(d, " three", &up);
    send_sync(&a, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(st.n, 3);
    fstore_run(&st, rs);
    TD_CHECK_EQ_INT(st.compactions, 1);
    TD_CHECK_EQ_INT(st.nlog, 1);
    struct td_ydoc *db = td_ydoc_new(22);
    apply_received(&b, db);
    check_text(db, "one two three");

    /* a rejected update never reaches the store */
    struct td_buf bad;
    td_buf_init(&bad);
    static const uint8_t junk[] = {0x05, 0xff, 0xff, 0x01};
    td_buf_append(&bad, junk, sizeof(junk));
    struct fconn x = {0};
    x.h = td_yrooms_join(rs, "r", 1, &x, 0);
    send_sync(&x, TD_YPROTO_UPDATE, &bad);
    TD_CHECK_EQ_INT(x.close_code, TD_YROOM_CLOSE_MALFORMED);
    TD_CHECK_EQ_INT(st.n, 0);
    td_yconn_leave(x.h, 0);
    fconn_clear(&x);
    td_buf_free(&bad);

    /* one more append, then the room empties: it is compacted once idle */
    edit(d, "!", &up);
    send_sync(&a, TD_YPROTO_UPDATE, &up);
    fstore_run(&st, rs);
    TD_CHECK_EQ_INT(st.nlog, 2);

    /* everyone leaves: the room is unloaded after idle_unload and loads back from the store */
    td_yconn_leave(a.h, 10);
    td_yconn_leave(b.h, 10);
    td_yrooms_tick(rs, 500);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_COMPACT);
    fstore_run(&st, rs);
    TD_CHECK_EQ_INT(st.compactions, 2);
    TD_CHECK_EQ_INT(st.nlog, 1);
    td_yrooms_tick(rs, 600);
    struct td_yrooms_stats s;
    td_yrooms_stats(rs, &s);
    TD_CHECK_EQ_INT(s.rooms, 1);
    td_yrooms_tick(rs, 1010);
    td_yrooms_stats(rs, &s);
    TD_CHECK_EQ_INT(s.rooms, 0);
    TD_CHECK_EQ_INT(s.unloads, 1);
    struct fconn c = {0};
    c.h = td_yrooms_join(rs, "r", 1, &c, 2000);
    fstore_run(&st, rs);
    send_sync(&c, TD_YPROTO_STEP1, &sv);
    struct td_ydoc *dc = td_ydoc_new(23);
    apply_received(&c, dc);
    check_text(dc, "one two three!");
    td_yconn_leave(c.h, 2000);

    fconn_clear(&a);
    fconn_clear(&b);
    fconn_clear(&c);
    td_ydoc_del(d);
    td_ydoc_del(db);
    td_ydoc_del(dc);
    td_buf_free(&sv);
    td_buf_free(&up);
    fstore_free(&st);
    td_yrooms_free(rs);
}

/* An API answer recorded by api_cb. */
struct fapi {
    int calls;
    int status;
    struct td_buf update;
};

static void api_cb(void *ud, int status, const struct td_buf *update)
{
    struct fapi *a = ud;
    a->calls++;
    a->status = status;
    td_buf_reset(&a->update);
    td_buf_append(&a->update, update->data, update->len);
}

TD_TEST(yroom_api_update_and_state_with_store)
{
    struct td_yrooms_config cfg = {.idle_unload_ms = 1000};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fstore st = {0};
    td_yrooms_set_store(rs, fstore_submit, &st);
    struct fapi a = {0}, s = {0};
    td_buf_init(&a.update);
    td_buf_init(&s.update);
    struct td_ydoc *d = td_ydoc_new(31);
    struct td_buf up;
    td_buf_init(&up);
    edit(d, "api", &up);

    /* the room is not loaded: the update waits for the load, then for its append */
    td_yrooms_api_update(rs, "r", 1, up.data, up.len, api_cb, &a, 0);
    TD_CHECK_EQ_INT(a.calls, 0);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_LOAD);
    fstore_run(&st, rs); /* load done: the append is submitted */
    TD_CHECK_EQ_INT(a.calls, 0);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_APPEND);
    /* a connection that joins now sees the update only once it is durable */
    struct fconn c = {0};
    c.h = td_yrooms_join(rs, "r", 1, &c, 0);
    fstore_run(&st, rs);
    TD_CHECK_EQ_INT(a.calls, 1);
    TD_CHECK_EQ_INT(a.status, 0);
    TD_CHECK_EQ_INT(st.nlog, 1);
    TD_CHECK_EQ_INT(count_type(&c, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);

    /* doc_state: the whole document, and a diff against a state vector */
    td_yrooms_api_state(rs, "r", 1, NULL, 0, false, 1, api_cb, &s, 0);
    TD_REQUIRE(s.calls == 1 && s.status == 0);
    struct td_ydoc *full = td_ydoc_new(32);
    TD_CHECK(td_ydoc_apply(full, s.update.data, s.update.len, 1, NULL) == 0);
    check_text(full, "api");
    edit(d, "+more", &up);
    td_yrooms_api_update(rs, "r", 1, up.data, up.len, api_cb, &a, 0);
    /* the state asked for now waits behind the append in flight */
    struct td_buf sv;
    td_buf_init(&sv);
    td_ydoc_encode_sv(full, &sv);
    td_yrooms_api_state(rs, "r", 1, sv.data, sv.len, true, 1, api_cb, &s, 0);
    TD_CHECK_EQ_INT(s.calls, 1);
    fstore_run(&st, rs);
    TD_CHECK_EQ_INT(a.calls, 2);
    TD_REQUIRE(s.calls == 2 && s.status == 0);
    TD_CHECK(td_ydoc_apply(full, s.update.data, s.update.len, 1, NULL) == 0);
    check_text(full, "api+more");

    /* malformed input: nothing changes, nothing is stored */
    static const uint8_t junk[] = {0x05, 0xff, 0xff, 0x01};
    td_yrooms_api_update(rs, "r", 1, junk, sizeof(junk), api_cb, &a, 0);
    TD_CHECK_EQ_INT(a.calls, 3);
    TD_CHECK_EQ_INT(a.status, TD_EPROTO);
    TD_CHECK_EQ_INT(st.n, 0);
    static const uint8_t badsv[] = {0x05};
    td_yrooms_api_state(rs, "r", 1, badsv, sizeof(badsv), true, 1, api_cb, &s, 0);
    TD_CHECK_EQ_INT(s.status, TD_EPROTO);
    td_yrooms_api_state(rs, "r", 1, NULL, 0, false, 3, api_cb, &s, 0);
    TD_CHECK_EQ_INT(s.status, TD_EINVAL);
    struct td_yrooms_stats ys;
    td_yrooms_stats(rs, &ys);
    TD_CHECK_EQ_INT(ys.updates, 2);
    TD_CHECK_EQ_INT(ys.rejected, 1);

    /* a duplicate update changes nothing and is answered at once */
    td_yrooms_api_update(rs, "r", 1, up.data, up.len, api_cb, &a, 0);
    TD_CHECK_EQ_INT(a.calls, 4);
    TD_CHECK_EQ_INT(a.status, 0);
    TD_CHECK_EQ_INT(st.n, 0);

    /* a room that fails to load answers TD_ESTORE */
    td_yrooms_api_state(rs, "bad", 3, NULL, 0, false, 1, api_cb, &s, 0);
    TD_REQUIRE(st.n == 1);
    st.ops[0]->status = TD_ESTORE;
    st.n = 0;
    td_yrooms_store_done(rs, st.ops[0], 0);
    TD_CHECK_EQ_INT(s.status, TD_ESTORE);

    td_yconn_leave(c.h, 0);
    fconn_clear(&c);
    td_ydoc_del(d);
    td_ydoc_del(full);
    td_buf_free(&up);
    td_buf_free(&sv);
    td_buf_free(&a.update);
    td_buf_free(&s.update);
    fstore_free(&st);
    td_yrooms_free(rs);
}

TD_TEST(yroom_api_without_store_and_read_only)
{
    struct td_yrooms_config cfg = {0};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fapi s = {0}, a = {0};
    td_buf_init(&s.update);
    td_buf_init(&a.update);
    /* no store, unknown room: an empty document's state, no room created */
    td_yrooms_api_state(rs, "x", 1, NULL, 0, false, 1, api_cb, &s, 0);
    TD_REQUIRE(s.calls == 1 && s.status == 0);
    TD_CHECK(s.update.len == 2 && s.update.data[0] == 0 && s.update.data[1] == 0);
    struct td_yrooms_stats ys;
    td_yrooms_stats(rs, &ys);
    TD_CHECK_EQ_INT(ys.rooms, 0);

    struct fconn w = {0}, ro = {0};
    w.h = td_yrooms_join(rs, "r", 1, &w, 0);
    ro.h = td_yrooms_join(rs, "r", 1, &ro, 0);
    td_yconn_set_read_only(ro.h, true);
    struct td_ydoc *d = td_ydoc_new(41);
    struct td_buf up;
    td_buf_init(&up);
    /* the read-only client's empty step2 is ignored silently */
    static const uint8_t empty[] = {0, 0};
    struct td_buf e;
    td_buf_init(&e);
    td_buf_append(&e, empty, sizeof(empty));
    send_sync(&ro, TD_YPROTO_STEP2, &e);
    TD_CHECK_EQ_INT(count_type(&ro, TD_YPROTO_AUTH, 0), 0);
    /* its update is refused with the auth message and not applied */
    edit(d, "nope", &up);
    send_sync(&ro, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(ro.close_code, 0);
    TD_REQUIRE(count_type(&ro, TD_YPROTO_AUTH, 0) == 1);
    struct td_yproto_msg m;
    TD_REQUIRE(td_yproto_decode(ro.msgs[ro.n - 1]->data, ro.msgs[ro.n - 1]->len, 0, &m) == 0);
    TD_CHECK(m.subtype == TD_YPROTO_AUTH_DENIED && m.reason.len > 0);
    TD_CHECK_EQ_INT(count_type(&w, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 0);
    /* it still receives the writer's and the API's updates */
    struct td_ydoc *d2 = td_ydoc_new(42);
    edit(d2, "ok", &up);
    send_sync(&w, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(count_type(&ro, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 1);
    edit(d2, "!", &up);
    td_yrooms_api_update(rs, "r", 1, up.data, up.len, api_cb, &a, 0);
    TD_CHECK(a.calls == 1 && a.status == 0);
    TD_CHECK_EQ_INT(count_type(&ro, TD_YPROTO_SYNC, TD_YPROTO_UPDATE), 2);
    td_yrooms_api_state(rs, "r", 1, NULL, 0, false, 1, api_cb, &s, 0);
    struct td_ydoc *chk = td_ydoc_new(43);
    TD_CHECK(td_ydoc_apply(chk, s.update.data, s.update.len, 1, NULL) == 0);
    check_text(chk, "ok!");
    td_yrooms_stats(rs, &ys);
    TD_CHECK_EQ_INT(ys.updates, 2);
    TD_CHECK_EQ_INT(ys.rejected, 1);
    TD_CHECK_EQ_INT(ys.conns, 2);

    td_yconn_leave(w.h, 0);
    td_yconn_leave(ro.h, 0);
    fconn_clear(&w);
    fconn_clear(&ro);
    td_ydoc_del(d);
    td_ydoc_del(d2);
    td_ydoc_del(chk);
    td_buf_free(&up);
    td_buf_free(&e);
    td_buf_free(&s.update);
    td_buf_free(&a.update);
    td_yrooms_free(rs);
}

/* A token "h.PAYLOAD.s" (the signature is not checked by td_yrooms_token_access). */
static enum td_yroom_access token_access(const char *payload_b64url, const char *room)
{
    char tok[512];
    snprintf(tok, sizeof(tok), "e30.%s.c2ln", payload_b64url);
    return td_yrooms_token_access(tok, strlen(tok), room, strlen(room));
}

TD_TEST(yroom_token_access_claim)
{
    /* {"sub":"u"} */
    TD_CHECK_EQ_INT(token_access("eyJzdWIiOiJ1In0", "r"), TD_YROOM_ACCESS_WRITE);
    /* {"yjs":"r"} */
    TD_CHECK_EQ_INT(token_access("eyJ5anMiOiJyIn0", "any"), TD_YROOM_ACCESS_READ);
    /* {"yjs":{"a":"r","*":"rw"}} */
    const char *obj = "eyJ5anMiOnsiYSI6InIiLCIqIjoicncifX0";
    TD_CHECK_EQ_INT(token_access(obj, "a"), TD_YROOM_ACCESS_READ);
    TD_CHECK_EQ_INT(token_access(obj, "b"), TD_YROOM_ACCESS_WRITE);
    /* {"yjs":{"a":"rw"}} */
    TD_CHECK_EQ_INT(token_access("eyJ5anMiOnsiYSI6InJ3In19", "b"), TD_YROOM_ACCESS_NONE);
    /* {"yjs":true} */
    TD_CHECK_EQ_INT(token_access("eyJ5anMiOnRydWV9", "a"), TD_YROOM_ACCESS_NONE);
    /* not base64 / not JSON / no dots */
    TD_CHECK_EQ_INT(token_access("!!", "a"), TD_YROOM_ACCESS_NONE);
    TD_CHECK_EQ_INT(token_access("bm90IGpzb24", "a"), TD_YROOM_ACCESS_NONE);
    TD_CHECK_EQ_INT(td_yrooms_token_access("abc", 3, "a", 1), TD_YROOM_ACCESS_NONE);
}

/* What the rooms hook saw. */
struct fhook {
    int calls;
    char room[16];
    void *origin;
    struct td_buf update;
    int api_calls_before; /* api_cb calls of `watch` when the hook ran */
    struct fapi *watch;
};

static void hook_cb(void *ud, const char *room, size_t len, const uint8_t *update, size_t n,
                    void *origin, int64_t now)
{
    (void)now;
    struct fhook *h = ud;
    h->calls++;
    snprintf(h->room, sizeof(h->room), "%.*s", (int)len, room);
    h->origin = origin;
    td_buf_reset(&h->update);
    td_buf_append(&h->update, update, n);
    h->api_calls_before = h->watch ? h->watch->calls : -1;
}

TD_TEST(yroom_hook_after_commit_with_origin)
{
    struct td_yrooms_config cfg = {.idle_unload_ms = 1000};
    struct td_yrooms *rs = td_yrooms_new(&cfg, &fops);
    struct fstore st = {0};
    td_yrooms_set_store(rs, fstore_submit, &st);
    TD_CHECK(td_yrooms_has_store(rs));
    struct fapi a = {0};
    td_buf_init(&a.update);
    struct fhook h = {.watch = &a};
    td_buf_init(&h.update);
    td_yrooms_set_hook(rs, hook_cb, &h);
    struct td_ydoc *d = td_ydoc_new(41);
    struct td_buf up;
    td_buf_init(&up);

    /* a y-websocket client's update: reported once its append committed, origin NULL */
    struct fconn c = {0};
    c.h = td_yrooms_join(rs, "ns:r", 4, &c, 0);
    fstore_run(&st, rs); /* load */
    edit(d, "ws", &up);
    send_sync(&c, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(h.calls, 0); /* not durable yet */
    fstore_run(&st, rs);
    TD_REQUIRE(h.calls == 1);
    TD_CHECK_MEM_STR(h.room, strlen(h.room), "ns:r");
    TD_CHECK(h.origin == NULL);
    struct td_ydoc *peer = td_ydoc_new(42);
    TD_CHECK(td_ydoc_apply(peer, h.update.data, h.update.len, 1, NULL) == 0);
    check_text(peer, "ws");

    /* an update with an origin: the hook runs before the API callback, with that origin */
    int tag = 0;
    edit(d, "+api", &up);
    td_yrooms_api_update_from(rs, "ns:r", 4, up.data, up.len, &tag, api_cb, &a, 0);
    TD_CHECK_EQ_INT(h.calls, 1);
    fstore_run(&st, rs);
    TD_REQUIRE(h.calls == 2);
    TD_CHECK(h.origin == &tag);
    TD_CHECK_EQ_INT(h.api_calls_before, 0);
    TD_CHECK_EQ_INT(a.calls, 1);
    TD_CHECK_EQ_INT(a.status, 0);
    TD_CHECK(td_ydoc_apply(peer, h.update.data, h.update.len, 1, NULL) == 0);
    check_text(peer, "ws+api");

    /* a duplicate, a malformed update and a failed append are never reported */
    td_yrooms_api_update_from(rs, "ns:r", 4, up.data, up.len, &tag, api_cb, &a, 0);
    TD_CHECK_EQ_INT(a.calls, 2);
    static const uint8_t junk[] = {0x05, 0xff, 0xff, 0x01};
    td_yrooms_api_update_from(rs, "ns:r", 4, junk, sizeof(junk), &tag, api_cb, &a, 0);
    TD_CHECK_EQ_INT(a.status, TD_EPROTO);
    edit(d, "+lost", &up);
    td_yrooms_api_update(rs, "ns:r", 4, up.data, up.len, api_cb, &a, 0);
    TD_REQUIRE(st.n == 1 && st.ops[0]->kind == TD_STORE_OP_DOC_APPEND);
    st.ops[0]->status = TD_ESTORE;
    st.n = 0;
    td_yrooms_store_done(rs, st.ops[0], 0);
    TD_CHECK_EQ_INT(a.status, TD_ESTORE);
    TD_CHECK_EQ_INT(h.calls, 2);

    td_yconn_leave(c.h, 0);
    fconn_clear(&c);
    td_yrooms_free(rs);
    fstore_free(&st);

    /* without a store the hook runs at once */
    rs = td_yrooms_new(&cfg, &fops);
    TD_CHECK(!td_yrooms_has_store(rs));
    td_yrooms_set_hook(rs, hook_cb, &h);
    h.calls = 0;
    struct fconn c2 = {0};
    c2.h = td_yrooms_join(rs, "x", 1, &c2, 0);
    struct td_ydoc *d2 = td_ydoc_new(43); /* the room is new: an edit that depends on nothing */
    edit(d2, "!", &up);
    td_ydoc_del(d2);
    send_sync(&c2, TD_YPROTO_UPDATE, &up);
    TD_CHECK_EQ_INT(h.calls, 1);
    TD_CHECK(h.origin == NULL);
    td_yrooms_api_update_from(rs, "x", 1, up.data, up.len, &tag, api_cb, &a, 0);
    TD_CHECK_EQ_INT(h.calls, 1); /* duplicate */
    td_yconn_leave(c2.h, 0);
    fconn_clear(&c2);
    td_yrooms_free(rs);

    td_ydoc_del(d);
    td_ydoc_del(peer);
    td_buf_free(&up);
    td_buf_free(&a.update);
    td_buf_free(&h.update);
}
