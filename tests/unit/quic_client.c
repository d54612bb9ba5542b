/*
 * quic_client.c - a minimal ngtcp2 0.12 + GnuTLS client over a uv_udp_t, for unit tests
 * (see quic_client.h).
 */
#include "quic_client.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"

struct quic_client_out {
    struct quic_client_out *next;
    int64_t id;
    size_t len, sent;
    bool fin, fin_sent;
    uint8_t data[];
};

/* Callbacks run one at a time on the loop thread, so every client can share this. */
static uint8_t client_rxbuf[65536];

static struct quic_client_stream *client_stream(struct quic_client *c, int64_t id)
{
    for (size_t i = 0; i < c->nstreams; i++)
        if (c->streams[i].id == id)
            return &c->streams[i];
    if (c->nstreams == QUIC_CLIENT_MAX_STREAMS)
        return NULL;
    struct quic_client_stream *s = &c->streams[c->nstreams++];
    s->id = id;
    td_buf_init(&s->data);
    s->fin = false;
    return s;
}

const struct quic_client_stream *quic_client_stream(const struct quic_client *c, int64_t id)
{
    for (size_t i = 0; i < c->nstreams; i++)
        if (c->streams[i].id == id)
            return &c->streams[i];
    return NULL;
}

/* ---- what the connection reports ---- */

static int on_client_stream_data(void *ud, int64_t id, const uint8_t *data, size_t len, bool fin)
{
    struct quic_client *c = ud;
    struct quic_client_stream *s = client_stream(c, id);
    if (s == NULL)
        return -1;
    td_buf_append(&s->data, data, len);
    if (fin)
        s->fin = true;
    ngtcp2_conn_extend_max_stream_offset(c->q.conn, id, len);
    ngtcp2_conn_extend_max_offset(c->q.conn, len);
    return 0;
}

static void on_client_datagram(void *ud, const uint8_t *data, size_t len)
{
    struct quic_client *c = ud;
    td_buf_append(&c->dgrams, data, len);
    c->ndgrams++;
}

static const struct td_qclient_handlers client_handlers = {
    .on_stream_data = on_client_stream_data,
    .on_datagram = on_client_datagram,
};

/* ---- I/O ---- */

static void client_write(struct quic_client *c);

static void client_send_pkt(struct quic_client *c, const uint8_t *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    if (uv_udp_try_send(&c->udp, &b, 1, (const struct sockaddr *)&c->q.remote) >= 0)
        c->packets_out++;
}

static void on_client_timer(uv_timer_t *t)
{
    struct quic_client *c = t->data;
    if (c->draining || c->closed_by_us)
        return;
    int rv = ngtcp2_conn_handle_expiry(c->q.conn, uv_hrtime());
    if (rv != 0) {
        c->read_error = rv;
        c->draining = true;
        return;
    }
    client_write(c);
}

static void client_arm(struct quic_client *c)
{
    uint64_t exp = ngtcp2_conn_get_expiry(c->q.conn);
    if (exp == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_hrtime();
    uint64_t ms = exp <= now ? 0 : (exp - now + 999999) / 1000000;
    uv_timer_start(&c->timer, on_client_timer, ms, 0);
}

static void client_write(struct quic_client *c)
{
    if (c->draining || c->closed_by_us)
        return;
    uint8_t buf[1500];
    uint64_t now = uv_hrtime();
    for (int guard = 0; guard < 1000; guard++) {
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_pkt_info pi;
        ngtcp2_ssize n;
        struct quic_client_out *o = NULL;
        for (struct quic_client_out *it = c->out; it != NULL; it = it->next) {
            if (it->sent < it->len || (it->fin && !it->fin_sent)) {
                o = it;
                break;
            }
        }
        if (c->dgram_pending) {
            int accepted = 0;
            ngtcp2_vec v = {.base = c->dgram_out.data, .len = c->dgram_out.len};
            n = ngtcp2_conn_writev_datagram(c->q.conn, &ps.path, &pi, buf, 1200, &accepted, 0, 0,
                                            &v, 1, now);
            if (accepted || n < 0)
                c->dgram_pending = false;
        } else if (o != NULL) {
            ngtcp2_vec v = {.base = o->data + o->sent, .len = o->len - o->sent};
            ngtcp2_ssize ndatalen = -1;
            uint32_t flags = o->fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0;
            n = ngtcp2_conn_writev_stream(c->q.conn, &ps.path, &pi, buf, 1200, &ndatalen, flags,
                                          o->id, &v, 1, now);
            if (ndatalen >= 0) {
                o->sent += (size_t)ndatalen;
                if (o->fin && o->sent == o->len)
                    o->fin_sent = true;
            }
        } else {
            n = ngtcp2_conn_writev_stream(c->q.conn, &ps.path, &pi, buf, 1200, NULL, 0, -1, NULL, 0,
                                          now);
        }
        if (n <= 0)
            break;
        client_send_pkt(c, buf, (size_t)n);
    }
    client_arm(c);
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = (char *)client_rxbuf;
    buf->len = sizeof(client_rxbuf);
}

static void on_client_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                           const struct sockaddr *addr, unsigned flags)
{
    struct quic_client *c = h->data;
    (void)flags;
    if (nread <= 0 || addr == NULL)
        return;
    c->packets_in++;
    if (c->draining || c->closed_by_us)
        return;
    int rv = td_qclient_read(&c->q, addr, (const uint8_t *)buf->base, (size_t)nread, uv_hrtime());
    if (rv != 0) {
        c->read_error = rv;
        c->draining = true;
        td_qclient_close_error(&c->q, &c->peer_close_app, &c->peer_close_code);
        uv_timer_stop(&c->timer);
        return;
    }
    client_write(c);
}

int quic_client_start(struct quic_client *c, uv_loop_t *loop, const struct sockaddr *server)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    td_buf_init(&c->dgrams);
    td_buf_init(&c->dgram_out);
    uv_udp_init(loop, &c->udp);
    c->udp.data = c;
    c->open_handles++;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles++;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    struct sockaddr_storage local;
    int len = (int)sizeof(local);
    if (uv_udp_bind(&c->udp, (const struct sockaddr *)&a, 0) != 0 ||
        uv_udp_getsockname(&c->udp, (struct sockaddr *)&local, &len) != 0)
        return -1;
    struct td_qclient_config cfg;
    td_qclient_config_default(&cfg);
    cfg.local = (const struct sockaddr *)&local;
    cfg.local_len = (socklen_t)len;
    cfg.remote = server;
    cfg.remote_len = sizeof(struct sockaddr_in);
    cfg.now = uv_hrtime();
    cfg.handlers = &client_handlers;
    cfg.user = c;
    char err[128];
    if (td_qclient_init(&c->q, &cfg, err, sizeof(err)) != 0)
        return -1;
    if (uv_udp_recv_start(&c->udp, on_client_alloc, on_client_recv) != 0)
        return -1;
    client_write(c);
    return 0;
}

int quic_client_send(struct quic_client *c, const void *data, size_t len, bool fin, int64_t *id)
{
    int64_t sid;
    if (ngtcp2_conn_open_bidi_stream(c->q.conn, &sid, NULL) != 0)
        return -1;
    struct quic_client_out *o = td_xmalloc(sizeof(*o) + len);
    memset(o, 0, sizeof(*o));
    o->id = sid;
    o->len = len;
    o->fin = fin;
    if (len > 0)
        memcpy(o->data, data, len);
    struct quic_client_out **pp = &c->out;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = o;
    *id = sid;
    client_write(c);
    return 0;
}

int quic_client_datagram(struct quic_client *c, const void *data, size_t len)
{
    if (c->dgram_pending)
        return -1;
    td_buf_reset(&c->dgram_out);
    td_buf_append(&c->dgram_out, data, len);
    c->dgram_pending = true;
    client_write(c);
    return 0;
}

void quic_client_close(struct quic_client *c, uint64_t code)
{
    if (c->draining || c->closed_by_us)
        return;
    uint8_t buf[1500];
    size_t n = td_qclient_write_close(&c->q, code, buf, sizeof(buf), uv_hrtime());
    if (n > 0)
        client_send_pkt(c, buf, n);
    c->closed_by_us = true;
    uv_timer_stop(&c->timer);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    struct quic_client *c = h->data;
    c->open_handles--;
}

void quic_client_free(struct quic_client *c)
{
    uv_udp_recv_stop(&c->udp);
    uv_timer_stop(&c->timer);
    td_qclient_free(&c->q);
    while (c->out != NULL) {
        struct quic_client_out *o = c->out;
        c->out = o->next;
        free(o);
    }
    for (size_t i = 0; i < c->nstreams; i++)
        td_buf_free(&c->streams[i].data);
    td_buf_free(&c->dgrams);
    td_buf_free(&c->dgram_out);
    uv_close((uv_handle_t *)&c->udp, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

bool quic_client_done(const struct quic_client *c)
{
    return c->open_handles == 0;
}
