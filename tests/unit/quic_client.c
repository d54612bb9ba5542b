/*
 * quic_client.c - a minimal ngtcp2 0.12 + GnuTLS client over a uv_udp_t, for unit tests
 * (see quic_client.h).
 */
#include "quic_client.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

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

/* ---- ngtcp2 callbacks ---- */

static ngtcp2_conn *client_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct quic_client *)ref->user_data)->conn;
}

static void client_rand(uint8_t *p, size_t n, const ngtcp2_rand_ctx *r)
{
    (void)r;
    gnutls_rnd(GNUTLS_RND_RANDOM, p, n);
}

static int client_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t len, void *ud)
{
    (void)conn;
    (void)ud;
    uint8_t d[NGTCP2_MAX_CIDLEN];
    gnutls_rnd(GNUTLS_RND_RANDOM, d, len);
    ngtcp2_cid_init(cid, d, len);
    gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

static int client_handshake(ngtcp2_conn *conn, void *ud)
{
    (void)conn;
    ((struct quic_client *)ud)->handshake++;
    return 0;
}

static int client_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t off,
                              const uint8_t *data, size_t len, void *ud, void *sud)
{
    struct quic_client *c = ud;
    (void)off;
    (void)sud;
    struct quic_client_stream *s = client_stream(c, id);
    if (s == NULL)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    td_buf_append(&s->data, data, len);
    if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
        s->fin = true;
    ngtcp2_conn_extend_max_stream_offset(conn, id, len);
    ngtcp2_conn_extend_max_offset(conn, len);
    return 0;
}

static int client_datagram(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                           void *ud)
{
    struct quic_client *c = ud;
    (void)conn;
    (void)flags;
    td_buf_append(&c->dgrams, data, len);
    c->ndgrams++;
    return 0;
}

static const ngtcp2_callbacks client_callbacks = {
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = client_handshake,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = client_stream_data,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .rand = client_rand,
    .get_new_connection_id = client_new_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .recv_datagram = client_datagram,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ---- I/O ---- */

static void client_write(struct quic_client *c);

static void client_send_pkt(struct quic_client *c, const uint8_t *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    if (uv_udp_try_send(&c->udp, &b, 1, (const struct sockaddr *)&c->remote) >= 0)
        c->packets_out++;
}

static void on_client_timer(uv_timer_t *t)
{
    struct quic_client *c = t->data;
    if (c->draining || c->closed_by_us)
        return;
    int rv = ngtcp2_conn_handle_expiry(c->conn, uv_hrtime());
    if (rv != 0) {
        c->read_error = rv;
        c->draining = true;
        return;
    }
    client_write(c);
}

static void client_arm(struct quic_client *c)
{
    uint64_t exp = ngtcp2_conn_get_expiry(c->conn);
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
            n = ngtcp2_conn_writev_datagram(c->conn, &ps.path, &pi, buf, 1200, &accepted, 0, 0, &v,
                                            1, now);
            if (accepted || n < 0)
                c->dgram_pending = false;
        } else if (o != NULL) {
            ngtcp2_vec v = {.base = o->data + o->sent, .len = o->len - o->sent};
            ngtcp2_ssize ndatalen = -1;
            uint32_t flags = o->fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0;
            n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, 1200, &ndatalen, flags,
                                          o->id, &v, 1, now);
            if (ndatalen >= 0) {
                o->sent += (size_t)ndatalen;
                if (o->fin && o->sent == o->len)
                    o->fin_sent = true;
            }
        } else {
            n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, 1200, NULL, 0, -1, NULL, 0,
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
    ngtcp2_path path = {
        .local = {.addr = (ngtcp2_sockaddr *)&c->local, .addrlen = c->local_len},
        .remote = {.addr = (ngtcp2_sockaddr *)(uintptr_t)addr, .addrlen = c->remote_len},
    };
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, (const uint8_t *)buf->base, (size_t)nread,
                                  uv_hrtime());
    if (rv != 0) {
        c->read_error = rv;
        c->draining = true;
        ngtcp2_connection_close_error ccerr;
        ngtcp2_conn_get_connection_close_error(c->conn, &ccerr);
        c->peer_close_app = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
        c->peer_close_code = ccerr.error_code;
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
    int len = (int)sizeof(c->local);
    if (uv_udp_bind(&c->udp, (const struct sockaddr *)&a, 0) != 0 ||
        uv_udp_getsockname(&c->udp, (struct sockaddr *)&c->local, &len) != 0)
        return -1;
    c->local_len = (socklen_t)len;
    memcpy(&c->remote, server, sizeof(struct sockaddr_in));
    c->remote_len = sizeof(struct sockaddr_in);

    uint8_t d[18], s[18];
    gnutls_rnd(GNUTLS_RND_RANDOM, d, sizeof(d));
    gnutls_rnd(GNUTLS_RND_RANDOM, s, sizeof(s));
    ngtcp2_cid dcid, scid;
    ngtcp2_cid_init(&dcid, d, sizeof(d));
    ngtcp2_cid_init(&scid, s, sizeof(s));
    ngtcp2_path path = {
        .local = {.addr = (ngtcp2_sockaddr *)&c->local, .addrlen = c->local_len},
        .remote = {.addr = (ngtcp2_sockaddr *)&c->remote, .addrlen = c->remote_len},
    };
    ngtcp2_settings st;
    ngtcp2_settings_default(&st);
    st.initial_ts = uv_hrtime();
    ngtcp2_transport_params p;
    ngtcp2_transport_params_default(&p);
    p.initial_max_stream_data_bidi_local = 1 << 20;
    p.initial_max_stream_data_bidi_remote = 1 << 20;
    p.initial_max_stream_data_uni = 1 << 20;
    p.initial_max_data = 4 << 20;
    p.initial_max_streams_bidi = 100;
    p.initial_max_streams_uni = 100;
    p.max_idle_timeout = 30 * NGTCP2_SECONDS;
    p.max_datagram_frame_size = 65536;
    if (ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                               &client_callbacks, &st, &p, NULL, c) != 0)
        return -1;
    static const gnutls_datum_t alpn = {(unsigned char *)"h3", 2};
    if (gnutls_certificate_allocate_credentials(&c->cred) != 0 ||
        gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) != 0 ||
        gnutls_priority_set_direct(
            c->tls, "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL) != 0 ||
        ngtcp2_crypto_gnutls_configure_client_session(c->tls) != 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred) != 0 ||
        gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) != 0)
        return -1;
    gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, "localhost", 9);
    c->ref.get_conn = client_get_conn;
    c->ref.user_data = c;
    gnutls_session_set_ptr(c->tls, &c->ref);
    ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
    if (uv_udp_recv_start(&c->udp, on_client_alloc, on_client_recv) != 0)
        return -1;
    client_write(c);
    return 0;
}

int quic_client_send(struct quic_client *c, const void *data, size_t len, bool fin, int64_t *id)
{
    int64_t sid;
    if (ngtcp2_conn_open_bidi_stream(c->conn, &sid, NULL) != 0)
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
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_application_error(&ccerr, code, NULL, 0);
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, buf, sizeof(buf),
                                                        &ccerr, uv_hrtime());
    if (n > 0)
        client_send_pkt(c, buf, (size_t)n);
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
    ngtcp2_conn_del(c->conn);
    c->conn = NULL;
    if (c->tls != NULL)
        gnutls_deinit(c->tls);
    if (c->cred != NULL)
        gnutls_certificate_free_credentials(c->cred);
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
