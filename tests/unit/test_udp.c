/*
 * Unit tests for src/io/td_udp: a real libuv loop, td_udp on 127.0.0.1 with an OS-chosen
 * port, an echo application above it, and the ngtcp2 client of quic_client.c (or a raw UDP
 * socket) in the same loop. Waiting is on loop events with a 5 s guard timer, never sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "cli/td_gencert.h"
#include "core/td_alloc.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "io/td_udp.h"
#include "quic/td_quic.h"
#include "quic_client.h"
#include "td_test.h"

#define H3_NO_ERROR 0x100

/*
 * td_udp's sendmmsg calls land here: the executable's definition takes precedence over
 * libc's. It passes everything to the kernel unless a test asks it to fail calls the way
 * a full socket buffer (EAGAIN) or a device without GSO (EIO on a UDP_SEGMENT message) does.
 */
static int fake_eagain;  /* fail this many calls with EAGAIN */
static int fake_gso_eio; /* fail this many calls starting with a GSO message with EIO */

int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
    if (fake_eagain > 0) {
        fake_eagain--;
        errno = EAGAIN;
        return -1;
    }
    if (fake_gso_eio > 0 && n > 0 && v[0].msg_hdr.msg_controllen > 0) {
        fake_gso_eio--;
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_sendmmsg, fd, v, n, flags);
}

/* ---- the echo application ---- */

struct echo_srv {
    int accepts, readies, closed, datagrams;
    bool refuse;
    struct td_quic_conn *last;
};

struct echo_app {
    struct echo_srv *srv;
    struct td_buf got;
};

static void *echo_accept(void *ud, struct td_quic_conn *c)
{
    struct echo_srv *s = ud;
    s->accepts++;
    if (s->refuse)
        return NULL;
    struct echo_app *a = td_xcalloc(1, sizeof(*a));
    a->srv = s;
    td_buf_init(&a->got);
    s->last = c;
    return a;
}

/* Like the HTTP/3 layer's control stream: a server uni stream (ID 3) carrying "hi". */
static int echo_ready(void *app, struct td_quic_conn *c)
{
    struct echo_app *a = app;
    a->srv->readies++;
    int64_t id;
    if (td_quic_stream_open(c, false, &id) != 0)
        return -1;
    return td_quic_stream_send(c, id, "hi", 2, true);
}

static int echo_stream_data(void *app, struct td_quic_conn *c, int64_t id, const uint8_t *p,
                            size_t n, bool fin)
{
    struct echo_app *a = app;
    td_buf_append(&a->got, p, n);
    td_quic_stream_consumed(c, id, n);
    if (!fin)
        return 0;
    int rv = td_quic_stream_send(c, id, a->got.data, a->got.len, true);
    td_buf_reset(&a->got);
    return rv;
}

static int echo_datagram(void *app, struct td_quic_conn *c, const uint8_t *p, size_t n)
{
    struct echo_app *a = app;
    a->srv->datagrams++;
    return td_quic_datagram_send(c, p, n);
}

static void echo_closed(void *app, struct td_quic_conn *c)
{
    struct echo_app *a = app;
    a->srv->closed++;
    if (a->srv->last == c)
        a->srv->last = NULL;
    td_buf_free(&a->got);
    free(a);
}

static const struct td_udp_handler echo_handler = {
    .on_accept = echo_accept,
    .on_ready = echo_ready,
    .on_stream_data = echo_stream_data,
    .on_datagram = echo_datagram,
    .on_closed = echo_closed,
};

/* ---- fixture ---- */

struct fixture {
    uv_loop_t loop;
    uv_timer_t guard;
    bool timed_out;
    struct td_quic_ctx *ctx;
    struct td_udp *udp;
    struct echo_srv srv;
    struct sockaddr_in addr;
    int stopped;
};

static void on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until cond holds or 5 s pass. */
#define RUN_UNTIL(fx, cond)                                                                        \
    do {                                                                                           \
        (fx)->timed_out = false;                                                                   \
        uv_timer_start(&(fx)->guard, on_guard, 5000, 0);                                           \
        while (!(cond) && !(fx)->timed_out)                                                        \
            uv_run(&(fx)->loop, UV_RUN_ONCE);                                                      \
        uv_timer_stop(&(fx)->guard);                                                               \
    } while (0)

static int fx_init(struct fixture *fx, const struct td_udp_limits *lim)
{
    memset(fx, 0, sizeof(*fx));
    char dir[] = "/tmp/td_udp_test_XXXXXX";
    if (mkdtemp(dir) == NULL)
        return -1;
    uint8_t md[32];
    int64_t not_after;
    char err[256], cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    int rv = td_gencert_write(dir, 2, md, &not_after, err, sizeof(err));
    if (rv == 0)
        rv = td_quic_ctx_new(&fx->ctx, cert, key, err, sizeof(err));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (rv != 0)
        return -1;
    td_log_set_level(TD_LOG_WARN);
    uv_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->guard);
    fx->guard.data = &fx->timed_out;
    if (td_udp_start(&fx->udp, &fx->loop, "127.0.0.1", 0, fx->ctx, &echo_handler, &fx->srv, lim,
                     err, sizeof(err)) != 0) {
        fprintf(stderr, "td_udp_start: %s\n", err);
        return -1;
    }
    uv_ip4_addr("127.0.0.1", td_udp_port(fx->udp), &fx->addr);
    return 0;
}

static void on_stopped(void *ud)
{
    ((struct fixture *)ud)->stopped++;
}

static void fx_stop(struct fixture *fx)
{
    if (fx->udp != NULL) {
        td_udp_stop(fx->udp, on_stopped, fx);
        fx->udp = NULL;
    }
}

/* Stops what is left, runs the loop dry and checks that nothing leaked a handle. */
static void fx_free(struct fixture *fx)
{
    fx_stop(fx);
    uv_close((uv_handle_t *)&fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    TD_CHECK_EQ_INT(fx->stopped, 1);
    TD_CHECK_EQ_INT(uv_loop_close(&fx->loop), 0);
    td_quic_ctx_del(fx->ctx);
}

static struct td_udp_stats fx_stats(const struct fixture *fx)
{
    struct td_udp_stats st;
    td_udp_get_stats(fx->udp, &st);
    return st;
}

static bool stream_done(const struct quic_client *c, int64_t id)
{
    const struct quic_client_stream *s = quic_client_stream(c, id);
    return s != NULL && s->fin;
}

static bool stream_is(const struct quic_client *c, int64_t id, const char *want)
{
    const struct quic_client_stream *s = quic_client_stream(c, id);
    return s != NULL && s->fin && s->data.len == strlen(want) &&
           memcmp(s->data.data, want, s->data.len) == 0;
}

static void on_run_for(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop for ms milliseconds of events. */
static void run_for(struct fixture *fx, uint64_t ms)
{
    bool done = false;
    uv_timer_t t;
    uv_timer_init(&fx->loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_run_for, ms, 0);
    while (!done)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* completes the close */
}

/* An application timer that queues output on the last connection. */
struct push {
    struct fixture *fx;
    bool fired;
    int64_t id;
    uint64_t packets_out_before;
    int backend_timeout;
};

static void on_push_timer(uv_timer_t *t)
{
    struct push *p = t->data;
    struct td_quic_conn *c = p->fx->srv.last;
    p->fired = true;
    p->packets_out_before = fx_stats(p->fx).packets_out;
    if (td_quic_stream_open(c, false, &p->id) != 0 ||
        td_quic_stream_send(c, p->id, "push", 4, true) != 0)
        return;
    td_udp_want_write(c);
    td_udp_want_write(c); /* idempotent */
    p->backend_timeout = uv_backend_timeout(&p->fx->loop);
}

/* ---- a raw UDP peer ---- */

struct raw {
    uv_udp_t udp;
    int n;
    struct td_buf last;
};

static uint8_t raw_rxbuf[65536];

static void on_raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = (char *)raw_rxbuf;
    buf->len = sizeof(raw_rxbuf);
}

static void on_raw_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct raw *r = h->data;
    (void)flags;
    if (nread < 0 || addr == NULL)
        return;
    r->n++;
    td_buf_reset(&r->last);
    td_buf_append(&r->last, buf->base, (size_t)nread);
}

static int raw_init(struct raw *r, uv_loop_t *loop)
{
    memset(r, 0, sizeof(*r));
    td_buf_init(&r->last);
    uv_udp_init(loop, &r->udp);
    r->udp.data = r;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_udp_bind(&r->udp, (const struct sockaddr *)&a, 0) != 0)
        return -1;
    return uv_udp_recv_start(&r->udp, on_raw_alloc, on_raw_recv);
}

static void raw_send(struct raw *r, const struct sockaddr_in *to, const void *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    int rv = uv_udp_try_send(&r->udp, &b, 1, (const struct sockaddr *)to);
    TD_CHECK_EQ_INT(rv, (int)n);
}

static void raw_free(struct raw *r)
{
    td_buf_free(&r->last);
    uv_close((uv_handle_t *)&r->udp, NULL);
}

/* ---- tests ---- */

TD_TEST(udp_echo_want_write_and_app_close)
{
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, NULL) == 0);
    struct quic_client cl;
    TD_REQUIRE(quic_client_start(&cl, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
    RUN_UNTIL(&fx, cl.q.handshakes > 0 && fx.srv.readies > 0);
    TD_CHECK_EQ_INT(cl.q.handshakes, 1);
    TD_CHECK_EQ_INT(fx.srv.accepts, 1);
    TD_CHECK_EQ_INT(fx.srv.readies, 1);
    TD_REQUIRE(fx.srv.last != NULL);

    /* Stream echo, datagram echo, and the stream on_ready opened. */
    int64_t sid = -1;
    TD_REQUIRE(quic_client_send(&cl, "hello", 5, true, &sid) == 0);
    TD_REQUIRE(quic_client_datagram(&cl, "ping", 4) == 0);
    RUN_UNTIL(&fx, stream_done(&cl, sid) && cl.ndgrams > 0 && stream_done(&cl, 3));
    TD_CHECK(stream_is(&cl, sid, "hello"));
    TD_CHECK(stream_is(&cl, 3, "hi"));
    TD_CHECK_EQ_INT(cl.ndgrams, 1);
    TD_CHECK_EQ_INT(fx.srv.datagrams, 1);
    TD_CHECK(cl.dgrams.len == 4 && memcmp(cl.dgrams.data, "ping", 4) == 0);

    /* Let the connection go quiet (everything acknowledged, no timer due for seconds), so
     * nothing but td_udp_want_write can make the server write. */
    for (int i = 0; i < 20; i++) {
        struct td_udp_stats s0 = fx_stats(&fx);
        run_for(&fx, 100);
        struct td_udp_stats s1 = fx_stats(&fx);
        if (s0.packets_in == s1.packets_in && s0.packets_out == s1.packets_out &&
            td_quic_conn_deadline(fx.srv.last) > uv_hrtime() + 2000000000ull)
            break;
    }
    TD_REQUIRE(td_quic_conn_deadline(fx.srv.last) > uv_hrtime() + 2000000000ull);

    /* Output queued outside any callback (here: a timer of the application) goes out at the
     * end of the same loop iteration: the poll phase does not block in between. */
    struct push p = {.fx = &fx};
    uv_timer_t pt;
    uv_timer_init(&fx.loop, &pt);
    pt.data = &p;
    uv_timer_start(&pt, on_push_timer, 1, 0);
    /* NOWAIT: UV_RUN_ONCE would also run timers after the check phase. */
    while (!p.fired)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    TD_CHECK_EQ_INT(p.backend_timeout, 0);
    TD_CHECK(fx_stats(&fx).packets_out > p.packets_out_before);
    uv_close((uv_handle_t *)&pt, NULL);
    RUN_UNTIL(&fx, stream_done(&cl, p.id));
    TD_CHECK(stream_is(&cl, p.id, "push"));

    struct td_udp_stats st = fx_stats(&fx);
    TD_CHECK_EQ_INT(st.accepted, 1);
    TD_CHECK_EQ_INT(st.conns, 1);
    TD_CHECK(st.cids >= 2); /* our SCIDs plus the client's original DCID */
    TD_CHECK_EQ_INT(st.refused, 0);
    TD_CHECK(st.packets_in >= 4 && st.bytes_in > st.packets_in);
    TD_CHECK(st.packets_out >= 4 && st.bytes_out > st.packets_out);
    TD_CHECK_EQ_INT(st.version_negotiations + st.stateless_resets, 0);

    /* An application close: the client gets the code; the connection goes away after its
     * closing period, on_closed exactly once, and the CID map is empty. */
    td_quic_conn_close(fx.srv.last, H3_NO_ERROR);
    td_udp_want_write(fx.srv.last);
    RUN_UNTIL(&fx, cl.draining && fx.srv.closed > 0);
    TD_CHECK(cl.draining);
    TD_CHECK(cl.peer_close_app);
    TD_CHECK_EQ_INT(cl.peer_close_code, H3_NO_ERROR);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
    TD_CHECK(fx.srv.last == NULL);
    st = fx_stats(&fx);
    TD_CHECK_EQ_INT(st.conns, 0);
    TD_CHECK_EQ_INT(st.cids, 0);
    TD_CHECK_EQ_INT(st.closed, 1);
    for (int i = 0; i < 5; i++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);

    quic_client_free(&cl);
    fx_free(&fx);
    TD_CHECK(quic_client_done(&cl));
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
}

TD_TEST(udp_bulk_echo_in_batches)
{
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, NULL) == 0);
    struct quic_client cl;
    TD_REQUIRE(quic_client_start(&cl, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
    RUN_UNTIL(&fx, cl.q.handshakes > 0);
    TD_REQUIRE(cl.q.handshakes == 1);
    /* More than one stream window (256 KiB): the echo returns credit as it goes, and the
     * reply leaves in sendmmsg batches, as GSO messages where the kernel has them. */
    size_t n = 600 * 1000;
    uint8_t *big = td_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 31 + i / 251);
    int64_t sid;
    TD_REQUIRE(quic_client_send(&cl, big, n, true, &sid) == 0);
    RUN_UNTIL(&fx, stream_done(&cl, sid));
    const struct quic_client_stream *s = quic_client_stream(&cl, sid);
    TD_REQUIRE(s != NULL && s->fin);
    TD_CHECK(s->data.len == n && memcmp(s->data.data, big, n) == 0);
    struct td_udp_stats st = fx_stats(&fx);
    TD_CHECK(st.packets_out > n / TD_QUIC_MAX_UDP_PAYLOAD);
    TD_CHECK(st.bytes_out > n);
    if (st.gso)
        TD_CHECK(st.gso_messages > 0);
    TD_CHECK_EQ_INT(st.send_errors, 0);
    free(big);
    quic_client_free(&cl);
    fx_free(&fx);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
}

/* Echoes n bytes on a new stream and checks what comes back. */
static void bulk_echo(struct fixture *fx, struct quic_client *cl, size_t n)
{
    uint8_t *big = td_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 13 + i / 509);
    int64_t sid;
    TD_REQUIRE(quic_client_send(cl, big, n, true, &sid) == 0);
    RUN_UNTIL(fx, stream_done(cl, sid));
    const struct quic_client_stream *s = quic_client_stream(cl, sid);
    TD_CHECK(s != NULL && s->fin && s->data.len == n && memcmp(s->data.data, big, n) == 0);
    free(big);
}

TD_TEST(udp_send_would_block_and_gso_refused)
{
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, NULL) == 0);
    struct quic_client cl;
    TD_REQUIRE(quic_client_start(&cl, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
    RUN_UNTIL(&fx, cl.q.handshakes > 0);
    TD_REQUIRE(cl.q.handshakes == 1);

    /* A device that refuses UDP_SEGMENT: GSO goes off for good, nothing is lost. */
    if (fx_stats(&fx).gso) {
        fake_gso_eio = 1;
        bulk_echo(&fx, &cl, 200 * 1000);
        TD_CHECK_EQ_INT(fake_gso_eio, 0);
        TD_CHECK(!fx_stats(&fx).gso);
        fake_gso_eio = 0;
    }

    /* The socket says EAGAIN three times: the rest of each batch waits in libuv, the
     * connections wait for it to drain, and the transfer completes intact. */
    struct td_udp_stats before = fx_stats(&fx);
    fake_eagain = 3;
    bulk_echo(&fx, &cl, 200 * 1000);
    TD_CHECK_EQ_INT(fake_eagain, 0);
    fake_eagain = 0;
    struct td_udp_stats st = fx_stats(&fx);
    TD_CHECK_EQ_INT(st.send_blocked - before.send_blocked, 3);
    TD_CHECK_EQ_INT(st.send_errors, 0);
    TD_CHECK(st.packets_out > before.packets_out + 100);

    quic_client_free(&cl);
    fx_free(&fx);
}

TD_TEST(udp_client_close_drains_then_closed)
{
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, NULL) == 0);
    struct quic_client cl;
    TD_REQUIRE(quic_client_start(&cl, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
    RUN_UNTIL(&fx, cl.q.handshakes > 0 && stream_done(&cl, 3));
    TD_REQUIRE(cl.q.handshakes == 1);
    quic_client_close(&cl, 7);
    RUN_UNTIL(&fx, fx.srv.closed > 0);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
    struct td_udp_stats st = fx_stats(&fx);
    TD_CHECK_EQ_INT(st.conns, 0);
    TD_CHECK_EQ_INT(st.cids, 0);
    quic_client_free(&cl);
    fx_free(&fx);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
}

TD_TEST(udp_version_negotiation_and_stateless_reset)
{
    struct td_udp_limits lim = {.max_stateless_per_sec = 3};
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, &lim) == 0);
    struct raw r;
    TD_REQUIRE(raw_init(&r, &fx.loop) == 0);

    /* An Initial-sized long header with an unknown version: a VN packet with version 0,
     * our SCID as its DCID and our DCID as its SCID. A shorter one is not answered. */
    uint8_t lp[1200] = {0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 1, 2, 3, 4, 5, 6, 7, 8, 4, 9, 9, 9, 9};
    raw_send(&r, &fx.addr, lp, 1199);
    raw_send(&r, &fx.addr, lp, sizeof(lp));
    RUN_UNTIL(&fx, r.n > 0);
    TD_REQUIRE(r.n == 1);
    const uint8_t *v = r.last.data;
    TD_REQUIRE(r.last.len >= 1 + 4 + 1 + 4 + 1 + 8 + 4);
    TD_CHECK((v[0] & 0x80) != 0);
    TD_CHECK(v[1] == 0 && v[2] == 0 && v[3] == 0 && v[4] == 0);
    TD_CHECK(v[5] == 4 && memcmp(v + 6, "\x09\x09\x09\x09", 4) == 0);
    TD_CHECK(v[10] == 8 && memcmp(v + 11, lp + 6, 8) == 0);
    struct td_udp_stats st = fx_stats(&fx);
    TD_CHECK_EQ_INT(st.version_negotiations, 1);
    TD_CHECK_EQ_INT(st.dropped, 1);

    /* An empty datagram (ngtcp2 would assert), a short header too small to answer, then
     * one a reset answers: shorter than it, with the token for that DCID at the end. */
    uint8_t sp[60];
    for (size_t i = 0; i < sizeof(sp); i++)
        sp[i] = (uint8_t)(i * 7 + 1);
    sp[0] = 0x41;
    raw_send(&r, &fx.addr, sp, 0);
    raw_send(&r, &fx.addr, sp, 21);
    raw_send(&r, &fx.addr, sp, sizeof(sp));
    RUN_UNTIL(&fx, r.n > 1);
    TD_REQUIRE(r.n == 2);
    TD_CHECK(r.last.len < sizeof(sp) && r.last.len >= 21);
    TD_CHECK((r.last.data[0] & 0xc0) == 0x40);
    struct td_quic_cid dcid;
    dcid.len = TD_QUIC_SCID_LEN;
    memcpy(dcid.data, sp + 1, TD_QUIC_SCID_LEN);
    uint8_t token[16];
    TD_REQUIRE(td_quic_reset_token(fx.ctx, &dcid, token) == 0);
    TD_CHECK(memcmp(r.last.data + r.last.len - 16, token, 16) == 0);
    st = fx_stats(&fx);
    TD_CHECK_EQ_INT(st.stateless_resets, 1);
    TD_CHECK_EQ_INT(st.dropped, 3);
    TD_CHECK_EQ_INT(st.packets_in, 5);

    /* Four at once against a budget of three per second: at least one goes unanswered. */
    for (int i = 0; i < 4; i++)
        raw_send(&r, &fx.addr, sp, sizeof(sp));
    RUN_UNTIL(&fx, fx_stats(&fx).packets_in == 9);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    st = fx_stats(&fx);
    TD_CHECK(st.stateless_resets >= 2 && st.stateless_resets <= 4);
    TD_CHECK(st.dropped >= 4);
    TD_CHECK_EQ_INT(st.conns + st.accepted + st.cids, 0);

    raw_free(&r);
    fx_free(&fx);
}

TD_TEST(udp_limits_refuse_connections)
{
    for (int mode = 0; mode < 3; mode++) {
        struct td_udp_limits lim = {0};
        if (mode == 0)
            lim.max_conns = 1;
        else if (mode == 1)
            lim.max_conns_per_ip = 1;
        struct fixture fx;
        TD_REQUIRE(fx_init(&fx, &lim) == 0);
        struct quic_client a, b;
        memset(&b, 0, sizeof(b));
        if (mode == 2) {
            fx.srv.refuse = true; /* on_accept says no */
        } else {
            TD_REQUIRE(quic_client_start(&a, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
            RUN_UNTIL(&fx, a.q.handshakes > 0);
            TD_CHECK_EQ_INT(a.q.handshakes, 1);
        }
        TD_REQUIRE(quic_client_start(&b, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
        RUN_UNTIL(&fx, fx_stats(&fx).refused > 0);
        struct td_udp_stats st = fx_stats(&fx);
        TD_CHECK(st.refused >= 1);
        TD_CHECK_EQ_INT(st.accepted, mode == 2 ? 0 : 1);
        TD_CHECK_EQ_INT(st.conns, mode == 2 ? 0 : 1);
        TD_CHECK_EQ_INT(b.q.handshakes, 0);
        if (mode == 2) {
            TD_CHECK(fx.srv.accepts >= 1);
            TD_CHECK_EQ_INT(st.cids, 0);
        }
        fx_stop(&fx);
        TD_CHECK_EQ_INT(fx.srv.closed, mode == 2 ? 0 : 1);
        if (mode != 2)
            quic_client_free(&a);
        quic_client_free(&b);
        fx_free(&fx);
    }
}

TD_TEST(udp_close_all_then_stop)
{
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, NULL) == 0);
    struct quic_client a, b;
    TD_REQUIRE(quic_client_start(&a, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
    RUN_UNTIL(&fx, a.q.handshakes > 0 && stream_done(&a, 3));
    TD_REQUIRE(a.q.handshakes == 1);
    td_udp_close_all(fx.udp, H3_NO_ERROR);
    RUN_UNTIL(&fx, a.draining);
    TD_CHECK(a.peer_close_app);
    TD_CHECK_EQ_INT(a.peer_close_code, H3_NO_ERROR);
    /* After close_all nothing new is accepted. */
    TD_REQUIRE(quic_client_start(&b, &fx.loop, (const struct sockaddr *)&fx.addr) == 0);
    RUN_UNTIL(&fx, fx_stats(&fx).refused > 0);
    TD_CHECK(fx_stats(&fx).refused >= 1);
    /* Stopping while the connection is still closing ends it with one on_closed. */
    TD_CHECK_EQ_INT(fx.srv.closed, 0);
    fx_stop(&fx);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
    TD_CHECK_EQ_INT(fx.stopped, 0); /* done comes from a close callback */
    quic_client_free(&a);
    quic_client_free(&b);
    fx_free(&fx);
    TD_CHECK_EQ_INT(fx.srv.closed, 1);
}

TD_TEST(udp_start_errors_and_ipv6)
{
    struct fixture fx;
    TD_REQUIRE(fx_init(&fx, NULL) == 0);
    struct td_udp *u = NULL;
    char err[256] = "";
    TD_CHECK_EQ_INT(td_udp_start(&u, &fx.loop, "not-an-address", 0, fx.ctx, &echo_handler, &fx.srv,
                                 NULL, err, sizeof(err)),
                    TD_EINVAL);
    TD_CHECK(err[0] != '\0');
    /* The port is taken (by the fixture's listener). */
    err[0] = '\0';
    TD_CHECK(td_udp_start(&u, &fx.loop, "127.0.0.1", td_udp_port(fx.udp), fx.ctx, &echo_handler,
                          &fx.srv, NULL, err, sizeof(err)) < 0);
    TD_CHECK(err[0] != '\0');
    /* IPv6 loopback, where the machine has it. */
    int rv = td_udp_start(&u, &fx.loop, "::1", 0, fx.ctx, &echo_handler, &fx.srv, NULL, err,
                          sizeof(err));
    if (rv == 0) {
        TD_CHECK(td_udp_port(u) > 0);
        td_udp_stop(u, on_stopped, &fx);
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        TD_CHECK_EQ_INT(fx.stopped, 1);
        fx.stopped = 0;
    }
    fx_free(&fx);
}
