/*
 * Unit tests for src/quic/td_quic: a full QUIC handshake in memory between td_quic's server
 * and the ngtcp2 0.12 + GnuTLS client of tests/support/td_qclient, with injected time (no sockets,
 * no sleeps). The server certificate comes from td_gencert, which also proves GnuTLS accepts what
 * `tandem gencert` writes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ngtcp2/ngtcp2.h>

#include "cli/td_gencert.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "quic/td_h3.h"
#include "quic/td_quic.h"
#include "td_test.h"
#include "../support/td_qclient.h"

struct srv {
    int ready, handshake, cids, datagrams;
    int64_t echo_stream;
    struct td_buf got;
};

static int srv_ready(struct td_quic_conn *c, void *ud)
{
    struct srv *s = ud;
    s->ready++;
    /* What the HTTP/3 layer will do here: open the control stream and send SETTINGS. */
    int64_t id;
    if (td_quic_stream_open(c, false, &id) != 0)
        return -1;
    struct td_h3_settings set;
    struct td_buf b;
    td_buf_init(&b);
    td_h3_settings_server_default(&set, 1);
    td_h3_control_stream_open_append(&b, &set);
    int rv = td_quic_stream_send(c, id, b.data, b.len, false);
    td_buf_free(&b);
    return rv;
}

static void srv_handshake(struct td_quic_conn *c, void *ud)
{
    (void)c;
    ((struct srv *)ud)->handshake++;
}

static int srv_stream_data(struct td_quic_conn *c, int64_t id, const uint8_t *data, size_t len,
                           bool fin, void *ud)
{
    struct srv *s = ud;
    td_buf_append(&s->got, data, len);
    td_quic_stream_consumed(c, id, len);
    if (fin) {
        s->echo_stream = id;
        return td_quic_stream_send(c, id, s->got.data, s->got.len, true);
    }
    return 0;
}

static int srv_datagram(struct td_quic_conn *c, const uint8_t *data, size_t len, void *ud)
{
    ((struct srv *)ud)->datagrams++;
    return td_quic_datagram_send(c, data, len);
}

static void srv_cid(struct td_quic_conn *c, const struct td_quic_cid *cid, void *ud)
{
    (void)c;
    (void)cid;
    ((struct srv *)ud)->cids++;
}

/* The client: tests/support/td_qclient plus what arrived on stream 0 and in datagrams. */
struct cli {
    struct td_qclient q;
    struct td_buf echo;
    bool echo_fin;
    struct td_buf dgram;
};

static int cli_stream_data(void *ud, int64_t id, const uint8_t *data, size_t len, bool fin)
{
    struct cli *c = ud;
    if (id == 0) {
        td_buf_append(&c->echo, data, len);
        if (fin)
            c->echo_fin = true;
    }
    return 0;
}

static void cli_datagram(void *ud, const uint8_t *data, size_t len)
{
    td_buf_append(&((struct cli *)ud)->dgram, data, len);
}

static const struct td_qclient_handlers cli_handlers = {
    .on_stream_data = cli_stream_data,
    .on_datagram = cli_datagram,
};

static int cli_init(struct cli *c, struct sockaddr_in *local, struct sockaddr_in *remote,
                    uint64_t now)
{
    memset(c, 0, sizeof(*c));
    td_buf_init(&c->echo);
    td_buf_init(&c->dgram);
    struct td_qclient_config cfg;
    td_qclient_config_default(&cfg);
    cfg.local = (const struct sockaddr *)local;
    cfg.local_len = sizeof(*local);
    cfg.remote = (const struct sockaddr *)remote;
    cfg.remote_len = sizeof(*remote);
    cfg.now = now;
    cfg.params.initial_max_streams_uni = 103;
    cfg.params.max_idle_timeout = 0; /* none: time here is injected */
    cfg.handlers = &cli_handlers;
    cfg.user = c;
    char err[128];
    return td_qclient_init(&c->q, &cfg, err, sizeof(err));
}

static void cli_free(struct cli *c)
{
    td_qclient_free(&c->q);
    td_buf_free(&c->echo);
    td_buf_free(&c->dgram);
}

TD_TEST(quic_handshake_stream_and_datagram_echo)
{
    char dir[] = "/tmp/td_quic_test_XXXXXX";
    TD_REQUIRE(mkdtemp(dir) != NULL);
    uint8_t md[32];
    int64_t not_after;
    char err[256];
    TD_REQUIRE(td_gencert_write(dir, 2, md, &not_after, err, sizeof(err)) == 0);
    char cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    struct td_quic_ctx *ctx = NULL;
    TD_REQUIRE(td_quic_ctx_new(&ctx, cert, key, err, sizeof(err)) == 0);
    struct td_quic_ctx *bad = NULL;
    TD_CHECK_EQ_INT(td_quic_ctx_new(&bad, key, cert, err, sizeof(err)), TD_EINVAL);
    unlink(cert);
    unlink(key);
    rmdir(dir);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(4443)};
    struct sockaddr_in ca = {.sin_family = AF_INET, .sin_port = htons(50000)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ca.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    uint64_t now = 1000000000ull;
    struct cli cl;
    TD_REQUIRE(cli_init(&cl, &ca, &sa, now) == 0);
    struct srv sv = {0};
    td_buf_init(&sv.got);
    struct td_quic_callbacks cb = {
        .on_ready = srv_ready,
        .on_handshake_done = srv_handshake,
        .on_stream_data = srv_stream_data,
        .on_datagram = srv_datagram,
        .on_cid_new = srv_cid,
    };
    struct td_quic_conn *conn = NULL;
    static const uint8_t req[] = {0x40, 0x41, 0x00, 'h', 'e', 'l', 'l', 'o'};
    bool sent_req = false, sent_dgram = false;
    uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi = {0};

    for (int round = 0; round < 200 && !(cl.echo_fin && cl.dgram.len > 0); round++) {
        now += 1000000; /* 1 ms per round */
        /* client -> server */
        for (;;) {
            ngtcp2_ssize ndatalen = -1;
            ngtcp2_ssize n;
            ngtcp2_path_storage_zero(&ps);
            if (cl.q.handshakes && !sent_dgram && sv.echo_stream == 0 && sent_req) {
                int accepted = 0;
                ngtcp2_vec v = {.base = (uint8_t *)"\x00ping", .len = 5};
                n = ngtcp2_conn_writev_datagram(cl.q.conn, &ps.path, &pi, buf, 1200, &accepted, 0,
                                                0, &v, 1, now);
                if (accepted)
                    sent_dgram = true;
            } else if (cl.q.handshakes && !sent_req) {
                int64_t sid;
                TD_REQUIRE(ngtcp2_conn_open_bidi_stream(cl.q.conn, &sid, NULL) == 0);
                TD_CHECK_EQ_INT(sid, 0);
                ngtcp2_vec v = {.base = (uint8_t *)req, .len = sizeof(req)};
                n = ngtcp2_conn_writev_stream(cl.q.conn, &ps.path, &pi, buf, 1200, &ndatalen,
                                              NGTCP2_WRITE_STREAM_FLAG_FIN, sid, &v, 1, now);
                if (ndatalen == (ngtcp2_ssize)sizeof(req))
                    sent_req = true;
            } else {
                n = ngtcp2_conn_writev_stream(cl.q.conn, &ps.path, &pi, buf, 1200, &ndatalen, 0, -1,
                                              NULL, 0, now);
            }
            TD_REQUIRE(n >= 0);
            if (n == 0)
                break;
            if (conn == NULL) {
                struct td_quic_route r;
                TD_REQUIRE(td_quic_packet_route(buf, (size_t)n, &r) == 0);
                TD_CHECK(r.long_header && !r.need_version_negotiation);
                TD_REQUIRE(td_quic_conn_accept(&conn, ctx, (struct sockaddr *)&sa, sizeof(sa),
                                               (struct sockaddr *)&ca, sizeof(ca), buf, (size_t)n,
                                               now, &cb, &sv) == 0);
                TD_CHECK(td_quic_conn_user_data(conn) == &sv);
            } else {
                TD_CHECK_EQ_INT(td_quic_conn_read(conn, (struct sockaddr *)&sa, sizeof(sa),
                                                  (struct sockaddr *)&ca, sizeof(ca), buf,
                                                  (size_t)n, now),
                                0);
            }
        }
        if (conn == NULL)
            continue;
        /* server -> client */
        for (;;) {
            struct sockaddr_storage to;
            socklen_t tolen = 0;
            int n = td_quic_conn_write(conn, buf, sizeof(buf), &to, &tolen, now);
            TD_REQUIRE(n >= 0);
            if (n == 0)
                break;
            TD_CHECK(n <= TD_QUIC_MAX_UDP_PAYLOAD);
            TD_CHECK_EQ_INT(tolen, sizeof(struct sockaddr_in));
            TD_CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&to)->sin_port), 50000);
            TD_REQUIRE(td_qclient_read(&cl.q, NULL, buf, (size_t)n, now) == 0);
        }
        TD_CHECK(td_quic_conn_deadline(conn) > now);
    }
    TD_CHECK_EQ_INT(cl.q.handshakes, 1);
    TD_CHECK_EQ_INT(sv.handshake, 1);
    TD_CHECK_EQ_INT(sv.ready, 1);
    TD_CHECK(sv.cids >= 2); /* our first SCID and the client's original DCID, then more */
    TD_REQUIRE(conn != NULL);
    TD_CHECK_EQ_INT(td_quic_conn_state(conn), TD_QUIC_OPEN);
    TD_CHECK(sv.got.len == sizeof(req) && memcmp(sv.got.data, req, sizeof(req)) == 0);
    TD_CHECK(cl.echo_fin);
    TD_CHECK(cl.echo.len == sizeof(req) && memcmp(cl.echo.data, req, sizeof(req)) == 0);
    TD_CHECK_EQ_INT(sv.datagrams, 1);
    TD_CHECK(cl.dgram.len == 5 && memcmp(cl.dgram.data, "\x00ping", 5) == 0);

    /* An application close yields one CONNECTION_CLOSE, then CLOSING until the deadline. */
    td_quic_conn_close(conn, 0x100);
    struct sockaddr_storage to;
    socklen_t tolen;
    int n = td_quic_conn_write(conn, buf, sizeof(buf), &to, &tolen, now);
    TD_CHECK(n > 0);
    TD_CHECK_EQ_INT(td_quic_conn_state(conn), TD_QUIC_CLOSING);
    TD_CHECK_EQ_INT(td_quic_conn_write(conn, buf, sizeof(buf), &to, &tolen, now), 0);
    uint64_t dl = td_quic_conn_deadline(conn);
    TD_CHECK(dl > now && dl != UINT64_MAX);
    td_quic_conn_on_deadline(conn, dl);
    TD_CHECK_EQ_INT(td_quic_conn_state(conn), TD_QUIC_DEAD);

    td_quic_conn_del(conn);
    cli_free(&cl);
    td_buf_free(&sv.got);
    td_quic_ctx_del(ctx);
}

TD_TEST(quic_route_and_reject)
{
    struct td_quic_route r;
    static const uint8_t junk[] = {0x00};
    TD_CHECK_EQ_INT(td_quic_packet_route(junk, 0, &r), TD_EPROTO);
    /* A short header routes by a TD_QUIC_SCID_LEN-byte DCID. */
    uint8_t shortpkt[40] = {0x40};
    for (int i = 1; i < 40; i++)
        shortpkt[i] = (uint8_t)i;
    TD_REQUIRE(td_quic_packet_route(shortpkt, sizeof(shortpkt), &r) == 0);
    TD_CHECK(!r.long_header);
    TD_CHECK_EQ_INT(r.dcid.len, TD_QUIC_SCID_LEN);
    TD_CHECK_EQ_INT(r.dcid.data[0], 1);

    /* A long header with an unknown version needs Version Negotiation. */
    uint8_t lp[1200] = {0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 1, 2, 3, 4, 5, 6, 7, 8, 4, 9, 9, 9, 9};
    TD_REQUIRE(td_quic_packet_route(lp, sizeof(lp), &r) == 0);
    TD_CHECK(r.long_header && r.need_version_negotiation);
    uint8_t out[256];
    int n = td_quic_write_version_negotiation(&r, out, sizeof(out));
    TD_CHECK(n > 0);
    /* A version negotiation packet has version 0. */
    TD_CHECK(n > 5 && out[1] == 0 && out[2] == 0 && out[3] == 0 && out[4] == 0);
}
