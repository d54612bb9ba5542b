/*
 * td_qclient.c - the QUIC client core of the test and benchmark clients (see td_qclient.h).
 */
#include "td_qclient.h"

#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "core/td_err.h"
#include "quic/td_h3.h"

/* ---- ngtcp2 callbacks: ngtcp2's user_data is the struct td_qclient ---- */

static ngtcp2_conn *qclient_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct td_qclient *)ref->user_data)->conn;
}

static void qclient_rand(uint8_t *p, size_t n, const ngtcp2_rand_ctx *r)
{
    (void)r;
    gnutls_rnd(GNUTLS_RND_RANDOM, p, n);
}

static int qclient_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t len, void *ud)
{
    (void)conn;
    (void)ud;
    uint8_t d[NGTCP2_MAX_CIDLEN];
    gnutls_rnd(GNUTLS_RND_RANDOM, d, len);
    ngtcp2_cid_init(cid, d, len);
    gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

static int qclient_handshake(ngtcp2_conn *conn, void *ud)
{
    (void)conn;
    ((struct td_qclient *)ud)->handshakes++;
    return 0;
}

static int qclient_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t off,
                               const uint8_t *data, size_t len, void *ud, void *sud)
{
    struct td_qclient *q = ud;
    (void)conn;
    (void)off;
    (void)sud;
    bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
    if (q->handlers->on_stream_data(q->user, id, data, len, fin) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int qclient_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size, uint64_t code,
                                void *ud, void *sud)
{
    struct td_qclient *q = ud;
    (void)conn;
    (void)final_size;
    (void)sud;
    if (q->handlers->on_stream_reset != NULL)
        q->handlers->on_stream_reset(q->user, id, code);
    return 0;
}

static int qclient_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t code,
                                void *ud, void *sud)
{
    struct td_qclient *q = ud;
    (void)conn;
    (void)flags;
    (void)code;
    (void)sud;
    if (q->handlers->on_stream_close != NULL)
        q->handlers->on_stream_close(q->user, id);
    return 0;
}

static int qclient_datagram(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                            void *ud)
{
    struct td_qclient *q = ud;
    (void)conn;
    (void)flags;
    if (q->handlers->on_datagram != NULL)
        q->handlers->on_datagram(q->user, data, len);
    return 0;
}

static const ngtcp2_callbacks qclient_callbacks = {
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = qclient_handshake,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = qclient_stream_data,
    .stream_close = qclient_stream_close,
    .stream_reset = qclient_stream_reset,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .rand = qclient_rand,
    .get_new_connection_id = qclient_new_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .recv_datagram = qclient_datagram,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ---- setup ---- */

void td_qclient_config_default(struct td_qclient_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    ngtcp2_transport_params *p = &cfg->params;
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = 1 << 20;
    p->initial_max_stream_data_bidi_remote = 1 << 20;
    p->initial_max_stream_data_uni = 1 << 20;
    p->initial_max_data = 4 << 20;
    p->initial_max_streams_bidi = 100;
    p->initial_max_streams_uni = 100;
    p->max_idle_timeout = 30 * NGTCP2_SECONDS;
    p->max_datagram_frame_size = 65536;
}

/* qclient_tls sets up the GnuTLS client session: TLS 1.3 only, without the middlebox
 * compatibility mode (QUIC forbids it), ALPN h3 mandatory. */
static int qclient_tls(struct td_qclient *q, gnutls_certificate_credentials_t cred)
{
    static const gnutls_datum_t alpn = {(unsigned char *)"h3", 2};
    if (gnutls_init(&q->tls, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) != 0) {
        q->tls = NULL;
        return -1;
    }
    if (gnutls_priority_set_direct(
            q->tls, "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL) != 0 ||
        ngtcp2_crypto_gnutls_configure_client_session(q->tls) != 0 ||
        gnutls_credentials_set(q->tls, GNUTLS_CRD_CERTIFICATE, cred) != 0 ||
        gnutls_alpn_set_protocols(q->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) != 0)
        return -1;
    gnutls_server_name_set(q->tls, GNUTLS_NAME_DNS, "localhost", 9);
    q->ref.get_conn = qclient_get_conn;
    q->ref.user_data = q;
    gnutls_session_set_ptr(q->tls, &q->ref);
    ngtcp2_conn_set_tls_native_handle(q->conn, q->tls);
    return 0;
}

int td_qclient_init(struct td_qclient *q, const struct td_qclient_config *cfg, char *err,
                    size_t errlen)
{
    memset(q, 0, sizeof(*q));
    q->handlers = cfg->handlers;
    q->user = cfg->user;
    if (cfg->local_len > sizeof(q->local) || cfg->remote_len > sizeof(q->remote)) {
        snprintf(err, errlen, "address too long");
        return TD_EINVAL;
    }
    memcpy(&q->local, cfg->local, cfg->local_len);
    memcpy(&q->remote, cfg->remote, cfg->remote_len);
    q->path.local.addr = (ngtcp2_sockaddr *)&q->local;
    q->path.local.addrlen = cfg->local_len;
    q->path.remote.addr = (ngtcp2_sockaddr *)&q->remote;
    q->path.remote.addrlen = cfg->remote_len;

    uint8_t d[18], s[18];
    gnutls_rnd(GNUTLS_RND_RANDOM, d, sizeof(d));
    gnutls_rnd(GNUTLS_RND_RANDOM, s, sizeof(s));
    ngtcp2_cid dcid, scid;
    ngtcp2_cid_init(&dcid, d, sizeof(d));
    ngtcp2_cid_init(&scid, s, sizeof(s));
    ngtcp2_settings st;
    ngtcp2_settings_default(&st);
    st.initial_ts = cfg->now;
    if (cfg->no_pmtud)
        st.no_pmtud = 1;
    int rv = ngtcp2_conn_client_new(&q->conn, &dcid, &scid, &q->path, NGTCP2_PROTO_VER_V1,
                                    &qclient_callbacks, &st, &cfg->params, NULL, q);
    if (rv != 0) {
        q->conn = NULL;
        snprintf(err, errlen, "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
        return TD_EINVAL;
    }
    gnutls_certificate_credentials_t cred = cfg->cred;
    if (cred == NULL) {
        if (gnutls_certificate_allocate_credentials(&q->own_cred) != 0) {
            q->own_cred = NULL;
            snprintf(err, errlen, "gnutls_certificate_allocate_credentials failed");
            return TD_EINVAL;
        }
        cred = q->own_cred;
    }
    if (qclient_tls(q, cred) != 0) {
        snprintf(err, errlen, "GnuTLS client session setup failed");
        return TD_EINVAL;
    }
    return 0;
}

/* ---- packets ---- */

int td_qclient_read(struct td_qclient *q, const struct sockaddr *from, const uint8_t *pkt,
                    size_t len, uint64_t now)
{
    ngtcp2_path path = q->path;
    if (from != NULL)
        path.remote.addr = (ngtcp2_sockaddr *)(uintptr_t)from;
    ngtcp2_pkt_info pi = {0};
    return ngtcp2_conn_read_pkt(q->conn, &path, &pi, pkt, len, now);
}

void td_qclient_close_error(const struct td_qclient *q, bool *app, uint64_t *code)
{
    ngtcp2_connection_close_error ccerr;
    ngtcp2_conn_get_connection_close_error(q->conn, &ccerr);
    *app = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
    *code = ccerr.error_code;
}

size_t td_qclient_write_close(struct td_qclient *q, uint64_t code, uint8_t *buf, size_t buflen,
                              uint64_t now)
{
    if (q->conn == NULL || ngtcp2_conn_is_in_closing_period(q->conn) ||
        ngtcp2_conn_is_in_draining_period(q->conn))
        return 0;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_application_error(&ccerr, code, NULL, 0);
    ngtcp2_ssize n =
        ngtcp2_conn_write_connection_close(q->conn, &ps.path, &pi, buf, buflen, &ccerr, now);
    return n > 0 ? (size_t)n : 0;
}

void td_qclient_free(struct td_qclient *q)
{
    if (q->conn != NULL)
        ngtcp2_conn_del(q->conn);
    q->conn = NULL;
    if (q->tls != NULL)
        gnutls_deinit(q->tls);
    q->tls = NULL;
    if (q->own_cred != NULL)
        gnutls_certificate_free_credentials(q->own_cred);
    q->own_cred = NULL;
}

/* ---- HTTP/3 for WebTransport clients ---- */

int td_qclient_h3_control_append(struct td_buf *b)
{
    struct td_h3_settings s;
    memset(&s, 0, sizeof(s));
    s.present = TD_H3_SET_QPACK_MAX_TABLE_CAPACITY | TD_H3_SET_QPACK_BLOCKED_STREAMS |
                TD_H3_SET_H3_DATAGRAM | TD_H3_SET_ENABLE_WEBTRANSPORT;
    s.h3_datagram = 1;
    s.enable_webtransport = 1;
    return td_h3_control_stream_open_append(b, &s);
}

static void qclient_nv(nghttp3_nv *nv, const char *name, const char *value)
{
    nv->name = (uint8_t *)(uintptr_t)name;
    nv->value = (uint8_t *)(uintptr_t)value;
    nv->namelen = strlen(name);
    nv->valuelen = strlen(value);
    nv->flags = NGHTTP3_NV_FLAG_NONE;
}

int td_qclient_h3_connect_append(struct td_buf *b, const char *authority, const char *path,
                                 const char *origin)
{
    const nghttp3_mem *mem = nghttp3_mem_default();
    nghttp3_qpack_encoder *enc = NULL;
    if (nghttp3_qpack_encoder_new(&enc, 0, mem) != 0)
        return TD_EINVAL;
    nghttp3_nv nva[7];
    qclient_nv(&nva[0], ":scheme", "https");
    qclient_nv(&nva[1], ":method", "CONNECT");
    qclient_nv(&nva[2], ":authority", authority);
    qclient_nv(&nva[3], ":path", path);
    qclient_nv(&nva[4], ":protocol", "webtransport");
    qclient_nv(&nva[5], "sec-webtransport-http3-draft02", "1");
    qclient_nv(&nva[6], "origin", origin);
    nghttp3_buf pbuf, rbuf, ebuf;
    nghttp3_buf_init(&pbuf);
    nghttp3_buf_init(&rbuf);
    nghttp3_buf_init(&ebuf);
    /* With a dynamic table capacity of 0 the encoder never needs its encoder stream. */
    int rv = TD_EINVAL;
    if (nghttp3_qpack_encoder_encode(enc, &pbuf, &rbuf, &ebuf, 0, nva, 7) == 0 &&
        nghttp3_buf_len(&ebuf) == 0) {
        size_t plen = nghttp3_buf_len(&pbuf), rlen = nghttp3_buf_len(&rbuf);
        uint8_t hdr[TD_H3_FRAME_HDR_MAXLEN];
        size_t hl = td_h3_frame_hdr_encode(hdr, TD_H3_FRAME_HEADERS, plen + rlen);
        td_buf_append(b, hdr, hl);
        td_buf_append(b, pbuf.pos, plen);
        td_buf_append(b, rbuf.pos, rlen);
        rv = 0;
    }
    nghttp3_buf_free(&pbuf, mem);
    nghttp3_buf_free(&rbuf, mem);
    nghttp3_buf_free(&ebuf, mem);
    nghttp3_qpack_encoder_del(enc);
    return rv;
}

int td_qclient_h3_status(nghttp3_qpack_decoder *dec, int64_t id, const uint8_t *p, size_t n)
{
    nghttp3_qpack_stream_context *sctx = NULL;
    if (nghttp3_qpack_stream_context_new(&sctx, id, nghttp3_mem_default()) != 0)
        return -1;
    int status = -1;
    for (;;) {
        nghttp3_qpack_nv nv;
        uint8_t flags = 0;
        nghttp3_ssize r = nghttp3_qpack_decoder_read_request(dec, sctx, &nv, &flags, p, n, 1);
        if (r < 0) {
            status = -1;
            break;
        }
        p += r;
        n -= (size_t)r;
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT) {
            nghttp3_vec nm = nghttp3_rcbuf_get_buf(nv.name);
            nghttp3_vec vl = nghttp3_rcbuf_get_buf(nv.value);
            if (nm.len == 7 && memcmp(nm.base, ":status", 7) == 0 && vl.len == 3 &&
                vl.base[0] >= '1' && vl.base[0] <= '9' && vl.base[1] >= '0' && vl.base[1] <= '9' &&
                vl.base[2] >= '0' && vl.base[2] <= '9')
                status = (vl.base[0] - '0') * 100 + (vl.base[1] - '0') * 10 + (vl.base[2] - '0');
            nghttp3_rcbuf_decref(nv.name);
            nghttp3_rcbuf_decref(nv.value);
        }
        if (flags & (NGHTTP3_QPACK_DECODE_FLAG_FINAL | NGHTTP3_QPACK_DECODE_FLAG_BLOCKED))
            break;
        if (r == 0 && !(flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT))
            break;
    }
    nghttp3_qpack_stream_context_del(sctx);
    return status;
}
