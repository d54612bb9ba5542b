/*
 * td_quic.c - QUIC server connections on ngtcp2 0.12 + GnuTLS (see td_quic.h).
 *
 * Design note. A connection moves through HANDSHAKE -> OPEN -> (CLOSING | DRAINING) -> DEAD.
 *   HANDSHAKE/OPEN: packets are read and written through ngtcp2; the deadline is ngtcp2's
 *     expiry. Any fatal ngtcp2 error sets close_pending with a CONNECTION_CLOSE reason.
 *   close_pending: the next write produces the CONNECTION_CLOSE packet, keeps a copy and
 *     enters CLOSING for three PTOs; each packet read while CLOSING re-arms one resend of
 *     that copy (RFC 9000 10.2.1).
 *   DRAINING: the peer closed; nothing is sent until three PTOs pass.
 *   DEAD: the caller deletes the connection.
 * Invariants: every stream ngtcp2 knows and we track has a struct qstream on c->streams
 * and as ngtcp2's stream user data; c->unacked is the sum of the unacknowledged chunk
 * bytes of all streams; chunks of a stream cover [acked, queued) contiguously.
 *
 * These are the only 0.12-specific spellings to revisit when moving to ngtcp2 1.x:
 * ngtcp2_crypto_level, ngtcp2_connection_close_error, ngtcp2_conn_shutdown_stream without
 * flags (docs/webtransport.md).
 */
#include "quic/td_quic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "core/td_alloc.h"
#include "core/td_err.h"

/* %DISABLE_TLS13_COMPAT_MODE is mandatory for QUIC; TLS 1.3 only. */
#define QUIC_PRIORITY                                                                              \
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"           \
    "+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"      \
    "+GROUP-SECP384R1:+GROUP-SECP521R1"

/* Larger datagrams may never fit a packet before path MTU discovery and would stall the
 * queue; Chromium itself reported maxDatagramSize 1201 on loopback. */
#define QUIC_MAX_DGRAM_PAYLOAD 1150
#define QUIC_MAX_VEC 16

struct td_quic_ctx {
    gnutls_certificate_credentials_t cred;
    uint8_t reset_secret[32];
};

struct qchunk {
    struct qchunk *next;
    size_t len;
    uint8_t data[];
};

struct qstream {
    struct qstream *next;
    int64_t id;
    struct qchunk *head, *tail; /* unacknowledged data, from offset `acked` */
    uint64_t acked;             /* stream offset acknowledged (contiguous) */
    uint64_t sent;              /* stream offset handed to ngtcp2 */
    uint64_t queued;            /* stream offset at the end of the queued data */
    bool fin_queued, fin_sent;
    uint64_t blocked_round;
};

struct qdgram {
    struct qdgram *next;
    size_t len;
    uint8_t data[];
};

struct td_quic_conn {
    struct td_quic_ctx *ctx;
    ngtcp2_conn *conn;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref; /* what the GnuTLS session pointer must be */
    struct td_quic_callbacks cb;
    void *ud;
    ngtcp2_path_storage ps;
    struct td_quic_cid orig_dcid;

    struct qstream *streams;
    size_t unacked;
    struct qdgram *dg_head, *dg_tail;
    size_t ndg;
    uint64_t round;

    enum td_quic_state state;
    bool close_pending, resend_close;
    ngtcp2_connection_close_error ccerr;
    uint8_t *close_pkt;
    size_t close_len;
    uint64_t close_deadline;
};

static void quic_rand(uint8_t *p, size_t n)
{
    if (gnutls_rnd(GNUTLS_RND_RANDOM, p, n) != 0)
        abort(); /* no randomness: nothing safe to do */
}

/* ---- context ---- */

int td_quic_ctx_new(struct td_quic_ctx **out, const char *cert_file, const char *key_file,
                    char *err, size_t errlen)
{
    struct td_quic_ctx *ctx = td_xcalloc(1, sizeof(*ctx));
    int rv = gnutls_certificate_allocate_credentials(&ctx->cred);
    if (rv == 0)
        rv = gnutls_certificate_set_x509_key_file(ctx->cred, cert_file, key_file,
                                                  GNUTLS_X509_FMT_PEM);
    if (rv < 0) {
        snprintf(err, errlen, "cannot load TLS certificate %s / key %s: %s", cert_file, key_file,
                 gnutls_strerror(rv));
        if (ctx->cred != NULL)
            gnutls_certificate_free_credentials(ctx->cred);
        free(ctx);
        return TD_EINVAL;
    }
    quic_rand(ctx->reset_secret, sizeof(ctx->reset_secret));
    *out = ctx;
    return 0;
}

void td_quic_ctx_del(struct td_quic_ctx *ctx)
{
    if (ctx == NULL)
        return;
    gnutls_certificate_free_credentials(ctx->cred);
    free(ctx);
}

/* ---- routing, version negotiation, stateless reset ---- */

static void cid_set(struct td_quic_cid *dst, const uint8_t *p, size_t n)
{
    dst->len = n;
    if (n > 0)
        memcpy(dst->data, p, n);
}

int td_quic_packet_route(const uint8_t *pkt, size_t n, struct td_quic_route *r)
{
    ngtcp2_version_cid vc;
    if (n == 0) /* ngtcp2 asserts on an empty payload, which a peer can send */
        return TD_EPROTO;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, n, TD_QUIC_SCID_LEN);
    if (rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION)
        return TD_EPROTO;
    if (vc.dcidlen > TD_QUIC_MAX_CIDLEN || vc.scidlen > TD_QUIC_MAX_CIDLEN)
        return TD_EPROTO;
    struct td_quic_route out;
    memset(&out, 0, sizeof(out));
    cid_set(&out.dcid, vc.dcid, vc.dcidlen);
    cid_set(&out.scid, vc.scid, vc.scidlen);
    out.long_header = (pkt[0] & 0x80) != 0;
    out.version = vc.version;
    out.need_version_negotiation = rv == NGTCP2_ERR_VERSION_NEGOTIATION;
    *r = out;
    return 0;
}

int td_quic_write_version_negotiation(const struct td_quic_route *r, uint8_t *out, size_t cap)
{
    static const uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    uint8_t unused;
    quic_rand(&unused, 1);
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
        out, cap, unused, r->scid.data, r->scid.len, r->dcid.data, r->dcid.len, versions, 1);
    return n < 0 ? TD_EINVAL : (int)n;
}

int td_quic_reset_token(struct td_quic_ctx *ctx, const struct td_quic_cid *cid, uint8_t token[16])
{
    ngtcp2_cid c;
    ngtcp2_cid_init(&c, cid->data, cid->len);
    return ngtcp2_crypto_generate_stateless_reset_token(token, ctx->reset_secret,
                                                        sizeof(ctx->reset_secret), &c) == 0
               ? 0
               : TD_EINVAL;
}

int td_quic_write_stateless_reset(struct td_quic_ctx *ctx, const struct td_quic_cid *dcid,
                                  size_t pkt_len, uint8_t *out, size_t cap)
{
    /* 1 first byte + random + 16-byte token, strictly shorter than the trigger. */
    if (pkt_len < 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN + 1)
        return 0;
    size_t randlen = pkt_len - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
    if (randlen > 40)
        randlen = 40;
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[40];
    if (td_quic_reset_token(ctx, dcid, token) != 0)
        return TD_EINVAL;
    quic_rand(rnd, randlen);
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(out, cap, token, rnd, randlen);
    return n < 0 ? TD_EINVAL : (int)n;
}

/* ---- streams ---- */

static struct qstream *stream_find(struct td_quic_conn *c, int64_t id)
{
    for (struct qstream *s = c->streams; s != NULL; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static struct qstream *stream_new(struct td_quic_conn *c, int64_t id)
{
    struct qstream *s = td_xcalloc(1, sizeof(*s));
    s->id = id;
    s->next = c->streams;
    c->streams = s;
    ngtcp2_conn_set_stream_user_data(c->conn, id, s);
    return s;
}

static void stream_drop_data(struct td_quic_conn *c, struct qstream *s)
{
    struct qchunk *k = s->head;
    while (k != NULL) {
        struct qchunk *next = k->next;
        c->unacked -= k->len;
        free(k);
        k = next;
    }
    s->head = s->tail = NULL;
    s->acked = s->sent = s->queued;
}

/* Nothing more of s goes out. The chunks stay until they are acknowledged or the stream
 * closes: ngtcp2 0.12 may still write a retransmission it had queued for the stream after
 * the RESET_STREAM, and it reads it from these chunks (freeing them here was a
 * use-after-free that any client could trigger by not reading, tests/wt/README.md). */
static void stream_stop_output(struct qstream *s)
{
    s->queued = s->sent;
    s->fin_queued = s->fin_sent = true;
}

static void stream_free(struct td_quic_conn *c, struct qstream *s)
{
    for (struct qstream **pp = &c->streams; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    stream_drop_data(c, s);
    free(s);
}

static bool stream_has_output(const struct qstream *s)
{
    return s->sent < s->queued || (s->fin_queued && !s->fin_sent);
}

/* Builds iovecs for the unsent bytes of s; *all says whether they reach the end. */
static size_t stream_vec(const struct qstream *s, ngtcp2_vec *vec, bool *all)
{
    size_t n = 0;
    uint64_t off = s->acked;
    *all = true;
    for (const struct qchunk *k = s->head; k != NULL; k = k->next) {
        uint64_t end = off + k->len;
        if (end > s->sent) {
            if (n == QUIC_MAX_VEC) {
                *all = false;
                break;
            }
            size_t skip = s->sent > off ? (size_t)(s->sent - off) : 0;
            vec[n].base = (uint8_t *)(uintptr_t)(k->data + skip);
            vec[n].len = k->len - skip;
            n++;
        }
        off = end;
    }
    return n;
}

/* ---- ngtcp2 callbacks ---- */

static int on_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                               const uint8_t *data, size_t len, void *user_data, void *sud)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    (void)offset;
    (void)sud;
    if (c->cb.on_stream_data == NULL)
        return 0;
    bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
    return c->cb.on_stream_data(c, id, data, len, fin, c->ud) == 0 ? 0
                                                                   : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_stream_open(ngtcp2_conn *conn, int64_t id, void *user_data)
{
    (void)conn;
    stream_new(user_data, id);
    return 0;
}

static int on_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t app_error,
                           void *user_data, void *sud)
{
    struct td_quic_conn *c = user_data;
    if ((flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) == 0)
        app_error = 0;
    if (c->cb.on_stream_close != NULL)
        c->cb.on_stream_close(c, id, app_error, c->ud);
    if (sud != NULL)
        stream_free(c, sud);
    /* ngtcp2 does not raise MAX_STREAMS by itself: one closed peer stream, one more. */
    if (!ngtcp2_conn_is_local_stream(conn, id)) {
        if ((id & 2) == 0)
            ngtcp2_conn_extend_max_streams_bidi(conn, 1);
        else
            ngtcp2_conn_extend_max_streams_uni(conn, 1);
    }
    return 0;
}

static int on_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size, uint64_t app_error,
                           void *user_data, void *sud)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    (void)final_size;
    (void)sud;
    if (c->cb.on_stream_abort == NULL)
        return 0;
    return c->cb.on_stream_abort(c, id, app_error, true, c->ud) == 0 ? 0
                                                                     : NGTCP2_ERR_CALLBACK_FAILURE;
}

/*
 * ngtcp2 0.12 calls this when *we* stop reading a stream before its end (our STOP_SENDING,
 * from td_quic_stream_shutdown), not when the peer sends STOP_SENDING: ngtcp2 answers a
 * peer's STOP_SENDING with RESET_STREAM by itself and reports nothing until the stream
 * closes. So it is not an event for the application; only our own output stops here.
 */
static int on_stream_stop_sending(ngtcp2_conn *conn, int64_t id, uint64_t app_error,
                                  void *user_data, void *sud)
{
    (void)conn;
    (void)id;
    (void)app_error;
    (void)user_data;
    if (sud != NULL)
        stream_stop_output(sud);
    return 0;
}

static int on_acked_stream_data_offset(ngtcp2_conn *conn, int64_t id, uint64_t offset, uint64_t len,
                                       void *user_data, void *sud)
{
    struct td_quic_conn *c = user_data;
    struct qstream *s = sud;
    (void)conn;
    (void)id;
    if (s == NULL)
        return 0;
    uint64_t acked = offset + len;
    while (s->head != NULL && s->acked + s->head->len <= acked) {
        struct qchunk *k = s->head;
        s->head = k->next;
        s->acked += k->len;
        c->unacked -= k->len;
        free(k);
    }
    if (s->head == NULL)
        s->tail = NULL;
    return 0;
}

static int on_recv_datagram(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                            void *user_data)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    (void)flags;
    if (c->cb.on_datagram == NULL)
        return 0;
    return c->cb.on_datagram(c, data, len, c->ud) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_recv_tx_key(ngtcp2_conn *conn, ngtcp2_crypto_level level, void *user_data)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    if (level != NGTCP2_CRYPTO_LEVEL_APPLICATION || c->cb.on_ready == NULL)
        return 0;
    return c->cb.on_ready(c, c->ud) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    if (c->state == TD_QUIC_HANDSHAKE)
        c->state = TD_QUIC_OPEN;
    if (c->cb.on_handshake_done != NULL)
        c->cb.on_handshake_done(c, c->ud);
    return 0;
}

static void on_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *rctx)
{
    (void)rctx;
    quic_rand(dest, len);
}

static int on_get_new_connection_id(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                                    size_t cidlen, void *user_data)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    uint8_t data[NGTCP2_MAX_CIDLEN];
    if (cidlen > sizeof(data))
        return NGTCP2_ERR_CALLBACK_FAILURE;
    quic_rand(data, cidlen);
    ngtcp2_cid_init(cid, data, cidlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, c->ctx->reset_secret,
                                                     sizeof(c->ctx->reset_secret), cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (c->cb.on_cid_new != NULL) {
        struct td_quic_cid k;
        cid_set(&k, cid->data, cid->datalen);
        c->cb.on_cid_new(c, &k, c->ud);
    }
    return 0;
}

static int on_remove_connection_id(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
    struct td_quic_conn *c = user_data;
    (void)conn;
    if (c->cb.on_cid_retire != NULL) {
        struct td_quic_cid k;
        cid_set(&k, cid->data, cid->datalen);
        c->cb.on_cid_retire(c, &k, c->ud);
    }
    return 0;
}

static ngtcp2_conn *quic_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct td_quic_conn *c = ref->user_data;
    return c->conn;
}

static const ngtcp2_callbacks quic_callbacks = {
    .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = on_handshake_completed,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = on_recv_stream_data,
    .acked_stream_data_offset = on_acked_stream_data_offset,
    .stream_open = on_stream_open,
    .stream_close = on_stream_close,
    .rand = on_rand,
    .get_new_connection_id = on_get_new_connection_id,
    .remove_connection_id = on_remove_connection_id,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = on_stream_reset,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .recv_datagram = on_recv_datagram,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .stream_stop_sending = on_stream_stop_sending,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    .recv_tx_key = on_recv_tx_key,
};

/* ---- connection ---- */

static int quic_tls_new(struct td_quic_conn *c)
{
    static const gnutls_datum_t alpn = {(unsigned char *)(uintptr_t) "h3", 2};
    if (gnutls_init(&c->tls,
                    GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA) != 0)
        return TD_EINVAL;
    if (gnutls_priority_set_direct(c->tls, QUIC_PRIORITY, NULL) != 0 ||
        ngtcp2_crypto_gnutls_configure_server_session(c->tls) != 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->ctx->cred) != 0 ||
        gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) != 0)
        return TD_EINVAL;
    c->ref.get_conn = quic_get_conn;
    c->ref.user_data = c;
    gnutls_session_set_ptr(c->tls, &c->ref);
    ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
    return 0;
}

static uint64_t quic_close_period(struct td_quic_conn *c, uint64_t now)
{
    return now + 3 * ngtcp2_conn_get_pto(c->conn);
}

/* Turns an ngtcp2 error into a state change. Always returns TD_EPROTO. */
static int quic_fail(struct td_quic_conn *c, int liberr, uint64_t now)
{
    switch (liberr) {
    case NGTCP2_ERR_DRAINING:
        c->state = TD_QUIC_DRAINING;
        c->close_deadline = quic_close_period(c, now);
        return TD_EPROTO;
    case NGTCP2_ERR_DROP_CONN:
    case NGTCP2_ERR_IDLE_CLOSE:
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
        c->state = TD_QUIC_DEAD;
        return TD_EPROTO;
    case NGTCP2_ERR_CRYPTO:
        ngtcp2_connection_close_error_set_transport_error_tls_alert(
            &c->ccerr, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
        break;
    default:
        ngtcp2_connection_close_error_set_transport_error_liberr(&c->ccerr, liberr, NULL, 0);
        break;
    }
    if (c->state == TD_QUIC_HANDSHAKE || c->state == TD_QUIC_OPEN)
        c->close_pending = true;
    return TD_EPROTO;
}

static void quic_report_cids(struct td_quic_conn *c, bool retire)
{
    void (*fn)(struct td_quic_conn *, const struct td_quic_cid *, void *) =
        retire ? c->cb.on_cid_retire : c->cb.on_cid_new;
    if (fn == NULL)
        return;
    ngtcp2_cid scids[16];
    size_t n = ngtcp2_conn_get_num_scid(c->conn);
    if (n <= sizeof(scids) / sizeof(scids[0])) {
        n = ngtcp2_conn_get_scid(c->conn, scids);
        for (size_t i = 0; i < n; i++) {
            struct td_quic_cid k;
            cid_set(&k, scids[i].data, scids[i].datalen);
            fn(c, &k, c->ud);
        }
    }
    fn(c, &c->orig_dcid, c->ud);
}

int td_quic_conn_accept(struct td_quic_conn **out, struct td_quic_ctx *ctx,
                        const struct sockaddr *local, socklen_t local_len,
                        const struct sockaddr *remote, socklen_t remote_len, const uint8_t *pkt,
                        size_t n, uint64_t now, const struct td_quic_callbacks *cb, void *ud)
{
    ngtcp2_pkt_hd hd;
    if (n == 0 || ngtcp2_accept(&hd, pkt, n) != 0 || hd.dcid.datalen > TD_QUIC_MAX_CIDLEN)
        return TD_EPROTO;
    struct td_quic_conn *c = td_xcalloc(1, sizeof(*c));
    c->ctx = ctx;
    c->cb = *cb;
    c->ud = ud;
    c->state = TD_QUIC_HANDSHAKE;
    cid_set(&c->orig_dcid, hd.dcid.data, hd.dcid.datalen);

    uint8_t scid_data[TD_QUIC_SCID_LEN];
    quic_rand(scid_data, sizeof(scid_data));
    ngtcp2_cid scid;
    ngtcp2_cid_init(&scid, scid_data, sizeof(scid_data));

    ngtcp2_settings settings;
    ngtcp2_settings_default(&settings);
    settings.initial_ts = now;
    settings.max_tx_udp_payload_size = TD_QUIC_MAX_UDP_PAYLOAD;

    /* Transport parameters: the research notes (docs/webtransport.md) list what Chromium
     * needs; max_datagram_frame_size must be nonzero for WebTransport datagrams. */
    ngtcp2_transport_params params;
    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = 256 * 1024;
    params.initial_max_stream_data_bidi_remote = 256 * 1024;
    params.initial_max_stream_data_uni = 256 * 1024;
    params.initial_max_data = 1024 * 1024;
    params.initial_max_streams_bidi = 100;
    params.initial_max_streams_uni = 100;
    params.max_idle_timeout = 30 * NGTCP2_SECONDS;
    params.max_datagram_frame_size = TD_QUIC_MAX_DATAGRAM_FRAME;
    params.active_connection_id_limit = 7;
    params.original_dcid = hd.dcid;
    params.stateless_reset_token_present = 1;
    if (ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token,
                                                     ctx->reset_secret, sizeof(ctx->reset_secret),
                                                     &scid) != 0) {
        free(c);
        return TD_EINVAL;
    }

    ngtcp2_path_storage_init(&c->ps, local, (ngtcp2_socklen)local_len, remote,
                             (ngtcp2_socklen)remote_len, NULL);
    int rv = ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &c->ps.path, hd.version,
                                    &quic_callbacks, &settings, &params, NULL, c);
    if (rv != 0) {
        free(c);
        return TD_EINVAL;
    }
    if (quic_tls_new(c) != 0) {
        td_quic_conn_del(c);
        return TD_EINVAL;
    }
    quic_report_cids(c, false);
    rv = td_quic_conn_read(c, local, local_len, remote, remote_len, pkt, n, now);
    if (rv != 0 && c->state != TD_QUIC_HANDSHAKE) {
        quic_report_cids(c, true);
        td_quic_conn_del(c);
        return TD_EPROTO;
    }
    *out = c;
    return 0;
}

int td_quic_conn_read(struct td_quic_conn *c, const struct sockaddr *local, socklen_t local_len,
                      const struct sockaddr *remote, socklen_t remote_len, const uint8_t *pkt,
                      size_t n, uint64_t now)
{
    if (n == 0 || c->state == TD_QUIC_DEAD || c->state == TD_QUIC_DRAINING)
        return 0;
    if (c->state == TD_QUIC_CLOSING) {
        c->resend_close = true;
        return 0;
    }
    ngtcp2_path path = {
        .local = {.addr = (ngtcp2_sockaddr *)(uintptr_t)local,
                  .addrlen = (ngtcp2_socklen)local_len},
        .remote = {.addr = (ngtcp2_sockaddr *)(uintptr_t)remote,
                   .addrlen = (ngtcp2_socklen)remote_len},
    };
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, pkt, n, now);
    if (rv != 0)
        return quic_fail(c, rv, now);
    return 0;
}

static void path_out(const ngtcp2_path *p, struct sockaddr_storage *to, socklen_t *to_len)
{
    size_t len = p->remote.addrlen;
    if (len > sizeof(*to))
        len = sizeof(*to);
    memcpy(to, p->remote.addr, len);
    *to_len = (socklen_t)len;
}

static int quic_write_close(struct td_quic_conn *c, uint8_t *out, size_t cap,
                            struct sockaddr_storage *to, socklen_t *to_len, uint64_t now)
{
    if (c->close_pkt == NULL) {
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_pkt_info pi;
        ngtcp2_ssize n =
            ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, out, cap, &c->ccerr, now);
        c->close_pending = false;
        c->state = TD_QUIC_CLOSING;
        c->close_deadline = quic_close_period(c, now);
        if (n <= 0) {
            c->state = TD_QUIC_DEAD; /* nothing to say (e.g. before any key) */
            return 0;
        }
        c->close_pkt = td_xmalloc((size_t)n);
        c->close_len = (size_t)n;
        memcpy(c->close_pkt, out, (size_t)n);
        path_out(&ps.path, to, to_len);
        return (int)n;
    }
    if (!c->resend_close || cap < c->close_len)
        return 0;
    c->resend_close = false;
    memcpy(out, c->close_pkt, c->close_len);
    path_out(ngtcp2_conn_get_path(c->conn), to, to_len);
    return (int)c->close_len;
}

static void stream_advance(struct qstream *s, ngtcp2_ssize ndatalen, bool fin)
{
    if (ndatalen < 0)
        return;
    s->sent += (uint64_t)ndatalen;
    if (fin && s->sent == s->queued)
        s->fin_sent = true;
}

int td_quic_conn_write(struct td_quic_conn *c, uint8_t *out, size_t cap,
                       struct sockaddr_storage *to, socklen_t *to_len, uint64_t now)
{
    if (c->state == TD_QUIC_DEAD || c->state == TD_QUIC_DRAINING)
        return 0;
    if (c->close_pending || c->state == TD_QUIC_CLOSING)
        return quic_write_close(c, out, cap, to, to_len, now);
    if (cap > TD_QUIC_MAX_UDP_PAYLOAD)
        cap = TD_QUIC_MAX_UDP_PAYLOAD;
    c->round++;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    for (;;) {
        ngtcp2_ssize nwrite;
        if (c->dg_head != NULL) {
            struct qdgram *d = c->dg_head;
            ngtcp2_vec v = {.base = d->data, .len = d->len};
            int accepted = 0;
            nwrite = ngtcp2_conn_writev_datagram(c->conn, &ps.path, &pi, out, cap, &accepted,
                                                 NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, now);
            if (accepted || nwrite == NGTCP2_ERR_INVALID_ARGUMENT ||
                nwrite == NGTCP2_ERR_INVALID_STATE) {
                /* Sent, or can never be sent (too large, peer takes none): drop it. */
                c->dg_head = d->next;
                if (c->dg_head == NULL)
                    c->dg_tail = NULL;
                c->ndg--;
                free(d);
                if (nwrite == NGTCP2_ERR_INVALID_ARGUMENT || nwrite == NGTCP2_ERR_INVALID_STATE)
                    continue;
            }
            if (nwrite == NGTCP2_ERR_WRITE_MORE)
                continue;
            if (nwrite < 0)
                return quic_fail(c, (int)nwrite, now);
            if (nwrite > 0) {
                path_out(&ps.path, to, to_len);
                return (int)nwrite;
            }
            /* 0: congestion-limited or the packet is full; streams may still fit. */
        }

        struct qstream *s = NULL;
        for (struct qstream *it = c->streams; it != NULL; it = it->next) {
            if (stream_has_output(it) && it->blocked_round != c->round) {
                s = it;
                break;
            }
        }
        ngtcp2_vec vec[QUIC_MAX_VEC];
        size_t nvec = 0;
        bool all = true;
        uint32_t flags = 0;
        int64_t id = -1;
        if (s != NULL) {
            nvec = stream_vec(s, vec, &all);
            id = s->id;
            flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
            if (all && s->fin_queued)
                flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        ngtcp2_ssize ndatalen = -1;
        nwrite = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, out, cap, &ndatalen, flags, id,
                                           vec, nvec, now);
        if (nwrite < 0) {
            switch (nwrite) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
            case NGTCP2_ERR_STREAM_SHUT_WR:
            case NGTCP2_ERR_STREAM_NOT_FOUND:
                if (s != NULL)
                    s->blocked_round = c->round;
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                stream_advance(s, ndatalen, (flags & NGTCP2_WRITE_STREAM_FLAG_FIN) != 0);
                continue;
            default:
                return quic_fail(c, (int)nwrite, now);
            }
        }
        if (s != NULL)
            stream_advance(s, ndatalen, (flags & NGTCP2_WRITE_STREAM_FLAG_FIN) != 0);
        if (nwrite == 0) {
            ngtcp2_conn_update_pkt_tx_time(c->conn, now);
            return 0;
        }
        path_out(&ps.path, to, to_len);
        return (int)nwrite;
    }
}

uint64_t td_quic_conn_deadline(struct td_quic_conn *c)
{
    switch (c->state) {
    case TD_QUIC_DEAD:
        return UINT64_MAX;
    case TD_QUIC_CLOSING:
    case TD_QUIC_DRAINING:
        return c->close_deadline;
    default:
        return c->close_pending ? 0 : ngtcp2_conn_get_expiry(c->conn);
    }
}

int td_quic_conn_on_deadline(struct td_quic_conn *c, uint64_t now)
{
    if (c->state == TD_QUIC_CLOSING || c->state == TD_QUIC_DRAINING) {
        if (now >= c->close_deadline)
            c->state = TD_QUIC_DEAD;
        return 0;
    }
    if (c->state == TD_QUIC_DEAD || c->close_pending)
        return 0;
    int rv = ngtcp2_conn_handle_expiry(c->conn, now);
    return rv == 0 ? 0 : quic_fail(c, rv, now);
}

enum td_quic_state td_quic_conn_state(const struct td_quic_conn *c)
{
    return c->state;
}

void td_quic_conn_close(struct td_quic_conn *c, uint64_t app_error)
{
    if (c->state != TD_QUIC_HANDSHAKE && c->state != TD_QUIC_OPEN)
        return;
    ngtcp2_connection_close_error_set_application_error(&c->ccerr, app_error, NULL, 0);
    c->close_pending = true;
}

void td_quic_conn_del(struct td_quic_conn *c)
{
    if (c == NULL)
        return;
    while (c->streams != NULL)
        stream_free(c, c->streams);
    while (c->dg_head != NULL) {
        struct qdgram *d = c->dg_head;
        c->dg_head = d->next;
        free(d);
    }
    ngtcp2_conn_del(c->conn);
    if (c->tls != NULL)
        gnutls_deinit(c->tls);
    free(c->close_pkt);
    free(c);
}

int td_quic_stream_open(struct td_quic_conn *c, bool bidi, int64_t *id)
{
    int64_t sid;
    int rv = bidi ? ngtcp2_conn_open_bidi_stream(c->conn, &sid, NULL)
                  : ngtcp2_conn_open_uni_stream(c->conn, &sid, NULL);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
        return TD_EAGAIN;
    if (rv != 0)
        return TD_EINVAL;
    stream_new(c, sid);
    *id = sid;
    return 0;
}

int td_quic_stream_send(struct td_quic_conn *c, int64_t id, const void *data, size_t len, bool fin)
{
    struct qstream *s = stream_find(c, id);
    if (s == NULL)
        return TD_ENOTFOUND;
    if (s->fin_queued)
        return TD_EINVAL;
    if (len > TD_QUIC_MAX_UNACKED - c->unacked)
        return TD_ELIMIT;
    if (len > 0) {
        struct qchunk *k = td_xmalloc(sizeof(*k) + len);
        k->next = NULL;
        k->len = len;
        memcpy(k->data, data, len);
        if (s->tail != NULL)
            s->tail->next = k;
        else
            s->head = k;
        s->tail = k;
        s->queued += len;
        c->unacked += len;
    }
    if (fin)
        s->fin_queued = true;
    return 0;
}

int td_quic_stream_shutdown(struct td_quic_conn *c, int64_t id, uint64_t app_error)
{
    struct qstream *s = stream_find(c, id);
    if (s == NULL)
        return TD_ENOTFOUND;
    stream_stop_output(s);
    return ngtcp2_conn_shutdown_stream(c->conn, id, app_error) == 0 ? 0 : TD_ENOTFOUND;
}

void td_quic_stream_consumed(struct td_quic_conn *c, int64_t id, size_t n)
{
    ngtcp2_conn_extend_max_stream_offset(c->conn, id, n);
    ngtcp2_conn_extend_max_offset(c->conn, n);
}

int td_quic_datagram_send(struct td_quic_conn *c, const void *data, size_t len)
{
    const ngtcp2_transport_params *rp = ngtcp2_conn_get_remote_transport_params(c->conn);
    if (rp == NULL || rp->max_datagram_frame_size == 0 || len > QUIC_MAX_DGRAM_PAYLOAD ||
        len + 8 > rp->max_datagram_frame_size)
        return TD_EINVAL;
    if (c->ndg >= TD_QUIC_MAX_DGRAM_QUEUE)
        return TD_ELIMIT;
    struct qdgram *d = td_xmalloc(sizeof(*d) + len);
    d->next = NULL;
    d->len = len;
    if (len > 0)
        memcpy(d->data, data, len);
    if (c->dg_tail != NULL)
        c->dg_tail->next = d;
    else
        c->dg_head = d;
    c->dg_tail = d;
    c->ndg++;
    return 0;
}

void *td_quic_conn_user_data(const struct td_quic_conn *c)
{
    return c->ud;
}

size_t td_quic_conn_unacked(const struct td_quic_conn *c)
{
    return c->unacked;
}
