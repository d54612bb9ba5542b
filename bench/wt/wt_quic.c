/*
 * wt_quic.c - td_wtload's subscriber sessions: a QUIC client per session (ngtcp2 0.12 with
 * GnuTLS, ALPN h3, certificate NOT verified: this is a benchmark tool for loopback), the
 * HTTP/3 control stream and SETTINGS, the extended CONNECT for /connection/webtransport, and
 * the WebTransport bidirectional stream carrying newline-delimited Centrifugo JSON. The QUIC
 * and TLS setup is tests/support/td_qclient's.
 *
 * Each session has its own connected UDP socket (and so its own source port), as Chromium
 * opens one QUIC connection per WebTransport session. Datagrams are read with recvmmsg and
 * fed to ngtcp2 one by one; the connection's write loop runs once after each batch, so the
 * ACKs a batch needs go out together. ngtcp2's timers are kept as a cached expiry per
 * connection and scanned by wl_timers.
 *
 * Wire format (docs/webtransport.md, research section 1):
 *   client control stream   0x00, SETTINGS {0x01=0, 0x33=1, 0x2b603742=1}
 *   stream 0                HEADERS (QPACK, static table and literals only):
 *                           :scheme https, :method CONNECT, :authority, :path,
 *                           :protocol webtransport, sec-webtransport-http3-draft02: 1, origin
 *   stream 4                0x41, session id 0, then `{"connect":{},"id":1}\n`
 *                           `{"subscribe":{"channel":"bench<i%C>"},"id":2}\n`
 * The server's data on stream 4 is Centrifugo JSON, one message per '\n'-terminated line.
 */
#include "wtload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/td_err.h"
#include "quic/td_h3.h"

#define H3_NO_ERROR UINT64_C(0x100)

static struct wl *G_; /* ngtcp2 callbacks get the connection only */

static const char *conn_name(const struct wl_conn *c)
{
    static char name[48];
    snprintf(name, sizeof(name), "session %" PRIu32, c->id);
    return name;
}

/* ---- sending ---- */

/* Bytes one stream may ever queue. ngtcp2 0.12 retransmits from the caller's memory, so a
 * stream's buffer must never move while bytes are unacknowledged: it is allocated once at
 * this size and never grown (the streams carry a few hundred bytes plus a 3-byte pong per
 * server ping). */
#define WL_TX_CAP 8192

static void tx_queue(struct wl_conn *c, int which, const void *p, size_t n, bool fin)
{
    struct wl_tx *t = &c->tx[which];
    if (t->buf.cap == 0)
        td_buf_reserve(&t->buf, WL_TX_CAP);
    if (n > t->buf.cap - t->buf.len)
        lg_fail("%s: stream %d would exceed %d queued bytes", conn_name(c), which, WL_TX_CAP);
    td_buf_append(&t->buf, p, n);
    if (fin)
        t->fin = true;
}

static bool tx_pending(const struct wl_tx *t)
{
    return t->id >= 0 && !t->blocked && (t->sent < t->buf.len || (t->fin && !t->fin_sent));
}

static void send_pkt(struct wl *g, struct wl_conn *c, const uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t w = send(c->fd, p, n, 0);
        if (w >= 0) {
            g->pkts_out++;
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || g->closing)
            return; /* dropped: QUIC loss recovery resends */
        if (errno == ECONNREFUSED)
            lg_fail("%s: nothing listens on UDP %s (is webtransport.enabled set?)", conn_name(c),
                    g->authority);
        lg_fail("%s: send: %s", conn_name(c), strerror(errno));
    }
}

/* conn_write runs the QUIC write loop: pending stream data first, then whatever ngtcp2
 * owes (ACKs, retransmissions, flow-control updates). */
static void conn_write(struct wl *g, struct wl_conn *c)
{
    uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    uint64_t ts = lg_now();
    for (int i = 0; i < WL_TX_N; i++)
        c->tx[i].blocked = false;
    for (int iter = 0; iter < 4096; iter++) {
        struct wl_tx *t = NULL;
        for (int i = 0; i < WL_TX_N; i++)
            if (tx_pending(&c->tx[i])) {
                t = &c->tx[i];
                break;
            }
        int64_t sid = -1;
        ngtcp2_vec v = {NULL, 0};
        size_t vcnt = 0;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (t != NULL) {
            sid = t->id;
            v.base = t->buf.data + t->sent;
            v.len = t->buf.len - t->sent;
            vcnt = v.len > 0 ? 1 : 0;
            if (t->fin)
                flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        ngtcp2_ssize ndatalen = -1;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->q.conn, &ps.path, &pi, buf, sizeof(buf),
                                                   &ndatalen, flags, sid, &v, vcnt, ts);
        if (t != NULL && ndatalen >= 0) {
            t->sent += (size_t)ndatalen;
            if (t->fin && t->sent == t->buf.len)
                t->fin_sent = true;
        }
        if (n < 0) {
            if (n == NGTCP2_ERR_WRITE_MORE)
                continue;
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
                n == NGTCP2_ERR_STREAM_NOT_FOUND) {
                if (t != NULL)
                    t->blocked = true;
                continue;
            }
            if (g->closing)
                break;
            lg_fail("%s: ngtcp2_conn_writev_stream: %s", conn_name(c), ngtcp2_strerror((int)n));
        }
        if (n == 0)
            break;
        send_pkt(g, c, buf, (size_t)n);
    }
    ngtcp2_conn_update_pkt_tx_time(c->q.conn, ts);
    c->expiry = ngtcp2_conn_get_expiry(c->q.conn);
}

/* ---- deliveries ---- */

/* scan_deliveries counts the publication payloads in p[0..n) (lg_scan_deliveries, as in
 * td_loadgen) and credits them to g and c. */
static uint32_t scan_deliveries(struct wl *g, struct wl_conn *c, const uint8_t *p, size_t n)
{
    uint32_t measured = 0;
    uint32_t found =
        lg_scan_deliveries(p, n, g->o.payload, g->measure_seq0, g->t0, g->now, &g->hist, &measured);
    g->deliveries_all += found;
    g->deliveries_measured += measured;
    c->measured += measured;
    if (found)
        g->last_progress = g->now;
    return found;
}

/* ---- the Centrifugo stream ---- */

static void conn_ready(struct wl *g, struct wl_conn *c)
{
    if (c->state == WL_ST_READY)
        return;
    c->state = WL_ST_READY;
    g->inflight--;
    g->ready_subs++;
    g->last_progress = g->now;
    g->t_last_ready = g->now;
}

static void json_line(struct wl *g, struct wl_conn *c, const uint8_t *p, size_t n)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n == 0)
        return;
    if (n >= 7 && memcmp(p, "{\"push\"", 7) == 0) {
        if (scan_deliveries(g, c, p, n) == 0 && memmem(p, n, "\"disconnect\":", 13) != NULL &&
            !g->closing)
            lg_fail("%s: server sent %.*s", conn_name(c), (int)(n > 200 ? 200 : n), p);
        return;
    }
    if (n == 2 && p[0] == '{' && p[1] == '}') { /* server ping */
        tx_queue(c, WL_TX_WT, "{}\n", 3, false);
        return;
    }
    if (n > 6 && memcmp(p, "{\"id\":", 6) == 0) {
        uint64_t id = 0;
        if (lg_parse_u64(p + 6, p + n, &id) == NULL)
            lg_fail("%s: malformed reply %.*s", conn_name(c), (int)(n > 200 ? 200 : n), p);
        const uint8_t *e = memmem(p, n, "\"error\":", 8);
        if (e != NULL)
            lg_fail("%s: %s rejected: %.*s", conn_name(c), id == 1 ? "connect" : "subscribe",
                    (int)(p + n - e > 200 ? 200 : p + n - e), e);
        if (id == 2 && c->state == WL_ST_PROTO)
            conn_ready(g, c);
        return;
    }
    scan_deliveries(g, c, p, n);
}

static void wt_data(struct wl *g, struct wl_conn *c, const uint8_t *p, size_t n, bool fin)
{
    if (c->line.len > 0) {
        td_buf_append(&c->line, p, n);
        const uint8_t *s = c->line.data, *end = s + c->line.len, *nl;
        while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
            json_line(g, c, s, (size_t)(nl - s));
            s = nl + 1;
        }
        td_buf_consume(&c->line, (size_t)(s - c->line.data));
        if (c->line.len == 0)
            td_buf_free(&c->line);
    } else {
        const uint8_t *s = p, *end = p + n, *nl;
        while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
            json_line(g, c, s, (size_t)(nl - s));
            s = nl + 1;
        }
        if (s < end)
            td_buf_append(&c->line, s, (size_t)(end - s));
    }
    if (c->line.len > WL_MAX_LINE)
        lg_fail("%s: a line above %d bytes on the WebTransport stream", conn_name(c), WL_MAX_LINE);
    if (fin && !g->closing)
        lg_fail("%s: the server ended the WebTransport stream", conn_name(c));
}

/* ---- HTTP/3 ---- */

static void send_control(struct wl_conn *c)
{
    struct td_buf b;
    td_buf_init(&b);
    if (td_qclient_h3_control_append(&b) != 0)
        lg_fail("cannot encode SETTINGS");
    tx_queue(c, WL_TX_CONTROL, b.data, b.len, false);
    td_buf_free(&b);
}

/* advance moves c through the setup states as far as what arrived allows. */
static void advance(struct wl *g, struct wl_conn *c)
{
    if (c->state == WL_ST_HANDSHAKE && c->q.handshakes > 0) {
        int64_t id;
        int rv = ngtcp2_conn_open_uni_stream(c->q.conn, &id, NULL);
        if (rv != 0)
            lg_fail("%s: cannot open the control stream: %s", conn_name(c), ngtcp2_strerror(rv));
        c->tx[WL_TX_CONTROL].id = id;
        send_control(c);
        c->state = WL_ST_SETTINGS;
    }
    if (c->state == WL_ST_SETTINGS && c->settings_ok) {
        int64_t id;
        int rv = ngtcp2_conn_open_bidi_stream(c->q.conn, &id, NULL);
        if (rv != 0)
            lg_fail("%s: cannot open the request stream: %s", conn_name(c), ngtcp2_strerror(rv));
        c->tx[WL_TX_REQUEST].id = id;
        tx_queue(c, WL_TX_REQUEST, g->connect_hdrs.data, g->connect_hdrs.len, false);
        c->state = WL_ST_CONNECT;
    }
}

/* ctl_parse looks for the server's SETTINGS at the start of its control stream. */
static void ctl_parse(struct wl *g, struct wl_conn *c)
{
    (void)g;
    struct td_h3_frame_hdr h;
    int rv = td_h3_frame_hdr_decode(c->ctl.data, c->ctl.len, &h);
    if (rv == TD_EAGAIN) {
        if (c->ctl.len > WL_MAX_CTRL)
            lg_fail("%s: control stream: no frame in %d bytes", conn_name(c), WL_MAX_CTRL);
        return;
    }
    if (rv != 0 || h.type != TD_H3_FRAME_SETTINGS)
        lg_fail("%s: the server's control stream does not start with SETTINGS", conn_name(c));
    if (c->ctl.len - h.hdr_len < h.len)
        return;
    struct td_h3_settings s;
    if (td_h3_settings_decode(c->ctl.data + h.hdr_len, (size_t)h.len, &s) != 0)
        lg_fail("%s: malformed server SETTINGS", conn_name(c));
    bool connect_ok =
        ((s.present & TD_H3_SET_ENABLE_CONNECT_PROTOCOL) && s.enable_connect_protocol == 1) ||
        ((s.present & TD_H3_SET_ENABLE_WEBTRANSPORT) && s.enable_webtransport == 1);
    bool wt_ok = ((s.present & TD_H3_SET_ENABLE_WEBTRANSPORT) && s.enable_webtransport == 1) ||
                 ((s.present & TD_H3_SET_WT_MAX_SESSIONS_D07) && s.wt_max_sessions_d07 > 0);
    if (!connect_ok || !wt_ok)
        lg_fail("%s: the server's SETTINGS do not offer WebTransport", conn_name(c));
    td_buf_free(&c->ctl);
    c->settings_ok = true;
}

static void uni_data(struct wl *g, struct wl_conn *c, int64_t id, const uint8_t *p, size_t n)
{
    struct wl_uni *u = NULL;
    for (int i = 0; i < WL_MAX_UNI; i++)
        if (c->uni[i].id == id) {
            u = &c->uni[i];
            break;
        }
    if (u == NULL) {
        for (int i = 0; i < WL_MAX_UNI; i++)
            if (c->uni[i].id < 0) {
                u = &c->uni[i];
                u->id = id;
                u->kind = 0;
                break;
            }
        if (u == NULL)
            return; /* more server streams than we track: ignored */
    }
    if (u->kind == 2 || n == 0)
        return;
    if (u->kind == 0) {
        uint64_t type;
        size_t used;
        if (td_h3_varint_decode(p, n, &type, &used) != 0 || type != TD_H3_UNI_CONTROL) {
            u->kind = 2; /* QPACK, GREASE, anything else: read and dropped */
            return;
        }
        u->kind = 1;
        p += used;
        n -= used;
    }
    if (c->settings_ok)
        return; /* later control frames (GOAWAY, GREASE) are ignored */
    td_buf_append(&c->ctl, p, n);
    ctl_parse(g, c);
}

static void open_wt_stream(struct wl *g, struct wl_conn *c)
{
    int64_t id;
    int rv = ngtcp2_conn_open_bidi_stream(c->q.conn, &id, NULL);
    if (rv != 0)
        lg_fail("%s: cannot open the WebTransport stream: %s", conn_name(c), ngtcp2_strerror(rv));
    c->tx[WL_TX_WT].id = id;
    uint8_t pre[2 * TD_H3_VARINT_MAXLEN];
    size_t pl = td_h3_wt_stream_prefix_encode(pre, true, (uint64_t)c->tx[WL_TX_REQUEST].id);
    if (pl == 0)
        lg_fail("%s: cannot encode the stream prefix", conn_name(c));
    struct td_buf *s = &g->scratch;
    td_buf_reset(s);
    td_buf_append(s, pre, pl);
    td_buf_appendf(s,
                   "{\"connect\":{},\"id\":1}\n{\"subscribe\":{\"channel\":\"bench%" PRIu32
                   "\"},\"id\":2}\n",
                   c->channel);
    tx_queue(c, WL_TX_WT, s->data, s->len, false);
    c->state = WL_ST_PROTO;
}

/* capsule_close reports a CLOSE_WEBTRANSPORT_SESSION found in a DATA payload, if any. */
static void capsule_close(struct wl *g, struct wl_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        struct td_h3_capsule cap;
        if (td_h3_capsule_decode(p, n, &cap) != 0)
            return;
        if (cap.type == TD_H3_CAPSULE_CLOSE_WT_SESSION && !g->closing) {
            uint32_t code = 0;
            const uint8_t *reason = NULL;
            size_t rl = 0;
            if (td_h3_wt_close_decode(cap.value, cap.len, &code, &reason, &rl) == 0)
                lg_fail("%s: the server closed the session: %" PRIu32 " %.*s", conn_name(c), code,
                        (int)(rl > 200 ? 200 : rl), (const char *)reason);
            lg_fail("%s: the server closed the session", conn_name(c));
        }
        p += cap.size;
        n -= cap.size;
    }
}

static void req_data(struct wl *g, struct wl_conn *c, const uint8_t *p, size_t n, bool fin)
{
    td_buf_append(&c->req, p, n);
    size_t off = 0;
    while (off < c->req.len) {
        struct td_h3_frame_hdr h;
        int rv = td_h3_frame_hdr_decode(c->req.data + off, c->req.len - off, &h);
        if (rv == TD_EAGAIN)
            break;
        if (rv != 0)
            lg_fail("%s: malformed frame on the CONNECT stream (%d)", conn_name(c), rv);
        if (c->req.len - off - h.hdr_len < h.len)
            break;
        const uint8_t *pl = c->req.data + off + h.hdr_len;
        if (h.type == TD_H3_FRAME_HEADERS && c->state == WL_ST_CONNECT) {
            int status = td_qclient_h3_status(g->qdec, c->tx[WL_TX_REQUEST].id, pl, (size_t)h.len);
            if (status < 200 || status > 299)
                lg_fail("%s: CONNECT %s answered with :status %d", conn_name(c), g->o.path, status);
            open_wt_stream(g, c);
        } else if (h.type == TD_H3_FRAME_DATA) {
            capsule_close(g, c, pl, (size_t)h.len);
        }
        off += h.hdr_len + (size_t)h.len;
    }
    td_buf_consume(&c->req, off);
    if (c->req.len > 65536)
        lg_fail("%s: more than 64 KiB of unparsed bytes on the CONNECT stream", conn_name(c));
    if (fin && !g->closing)
        lg_fail("%s: the server ended the session (FIN on the CONNECT stream)%s", conn_name(c),
                c->state == WL_ST_CONNECT ? " before answering" : "");
}

/* ---- what the QUIC connection reports ---- */

static int on_stream_data(void *ud, int64_t id, const uint8_t *data, size_t len, bool fin)
{
    struct wl_conn *c = ud;
    struct wl *g = G_;
    if ((id & 3) == 3)
        uni_data(g, c, id, data, len);
    else if (id == c->tx[WL_TX_REQUEST].id)
        req_data(g, c, data, len, fin);
    else if (id == c->tx[WL_TX_WT].id)
        wt_data(g, c, data, len, fin);
    ngtcp2_conn_extend_max_stream_offset(c->q.conn, id, len);
    ngtcp2_conn_extend_max_offset(c->q.conn, len);
    return 0;
}

static void on_stream_reset(void *ud, int64_t id, uint64_t code)
{
    struct wl_conn *c = ud;
    if (!G_->closing && (id == c->tx[WL_TX_REQUEST].id || id == c->tx[WL_TX_WT].id))
        lg_fail("%s: the server reset stream %" PRId64 " (code 0x%" PRIx64 ")", conn_name(c), id,
                code);
}

static void on_datagram(void *ud, const uint8_t *data, size_t len)
{
    scan_deliveries(G_, ud, data, len); /* tandem sends none today; count them if it does */
}

static const struct td_qclient_handlers handlers = {
    .on_stream_data = on_stream_data,
    .on_stream_reset = on_stream_reset,
    .on_datagram = on_datagram,
};

/* ---- connections ---- */

void wl_conn_start(struct wl *g, struct wl_conn *c)
{
    int fd = socket(g->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        lg_fail("socket: %s", strerror(errno));
    if (g->o.nsrc > 0) {
        const struct sockaddr_in *src = &g->o.src[c->id % g->o.nsrc];
        if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0)
            lg_fail("bind to a source address: %s", strerror(errno));
    }
    if (connect(fd, (const struct sockaddr *)&g->addr, g->addrlen) != 0)
        lg_fail("%s: connect: %s", conn_name(c), strerror(errno));
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) != 0)
        lg_fail("getsockname: %s", strerror(errno));
    c->fd = fd;

    uint64_t now = lg_now();
    struct td_qclient_config cfg;
    td_qclient_config_default(&cfg);
    cfg.local = (const struct sockaddr *)&local;
    cfg.local_len = locallen;
    cfg.remote = (const struct sockaddr *)&g->addr;
    cfg.remote_len = g->addrlen;
    cfg.now = now;
    cfg.cred = g->cred;
    cfg.no_pmtud = true; /* loopback: no probes in the measurements */
    ngtcp2_transport_params *p = &cfg.params;
    p->initial_max_stream_data_bidi_local = WL_STREAM_WINDOW;
    p->initial_max_stream_data_bidi_remote = 65536;
    p->initial_max_stream_data_uni = 65536;
    p->initial_max_data = WL_CONN_WINDOW;
    p->initial_max_streams_bidi = 4;
    p->initial_max_streams_uni = 8;
    p->max_idle_timeout = 60 * NGTCP2_SECONDS;
    p->max_datagram_frame_size = 65535;
    cfg.handlers = &handlers;
    cfg.user = c;
    char err[160];
    if (td_qclient_init(&c->q, &cfg, err, sizeof(err)) != 0)
        lg_fail("%s", err);

    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c->id};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        lg_fail("epoll_ctl: %s", strerror(errno));
    c->state = WL_ST_HANDSHAKE;
    g->inflight++;
    if (g->t_first_connect == 0)
        g->t_first_connect = now;
    conn_write(g, c);
}

void wl_conn_readable(struct wl *g, struct wl_conn *c)
{
    struct mmsghdr msgs[WL_RECV_BATCH];
    struct iovec iov[WL_RECV_BATCH];
    for (int i = 0; i < WL_RECV_BATCH; i++) {
        iov[i].iov_base = g->rbuf + (size_t)i * WL_PKT_BUF;
        iov[i].iov_len = WL_PKT_BUF;
        memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    bool got = false;
    for (int rounds = 0; rounds < 16; rounds++) {
        int n = recvmmsg(c->fd, msgs, WL_RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || g->closing)
                break;
            if (errno == ECONNREFUSED)
                lg_fail("%s: nothing listens on UDP %s (is webtransport.enabled set?)",
                        conn_name(c), g->authority);
            lg_fail("%s: recvmmsg: %s", conn_name(c), strerror(errno));
        }
        g->now = lg_now();
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_len == 0)
                continue;
            g->pkts_in++;
            got = true;
            int rv = td_qclient_read(&c->q, NULL, iov[i].iov_base, msgs[i].msg_len, g->now);
            if (rv != 0) {
                if (g->closing)
                    return;
                if (rv == NGTCP2_ERR_DRAINING)
                    lg_fail("%s: the server closed the QUIC connection", conn_name(c));
                lg_fail("%s: ngtcp2_conn_read_pkt: %s", conn_name(c), ngtcp2_strerror(rv));
            }
        }
        if (n < WL_RECV_BATCH)
            break;
    }
    if (!got)
        return;
    advance(g, c);
    conn_write(g, c);
}

uint64_t wl_timers(struct wl *g)
{
    uint64_t earliest = UINT64_MAX;
    for (uint32_t i = 0; i < g->started; i++) {
        struct wl_conn *c = &g->conns[i];
        if (c->q.conn == NULL)
            continue;
        if (c->expiry <= g->now) {
            int rv = ngtcp2_conn_handle_expiry(c->q.conn, g->now);
            if (rv != 0 && !g->closing)
                lg_fail("%s: %s", conn_name(c),
                        rv == NGTCP2_ERR_IDLE_CLOSE ? "idle timeout" : ngtcp2_strerror(rv));
            conn_write(g, c);
            if (c->expiry <= g->now) /* nothing more due now: do not spin on it */
                c->expiry = g->now + 1000000u;
        }
        if (c->expiry < earliest)
            earliest = c->expiry;
    }
    return earliest;
}

/* ---- setup and teardown ---- */

void wl_quic_init(struct wl *g)
{
    G_ = g;
    if (gnutls_certificate_allocate_credentials(&g->cred) != 0)
        lg_fail("gnutls_certificate_allocate_credentials failed");
    if (nghttp3_qpack_decoder_new(&g->qdec, 0, 0, nghttp3_mem_default()) != 0)
        lg_fail("nghttp3_qpack_decoder_new failed");
    /* The CONNECT header block is the same for every session: encode it once. */
    td_buf_init(&g->connect_hdrs);
    if (td_qclient_h3_connect_append(&g->connect_hdrs, g->authority, g->o.path, g->origin) != 0)
        lg_fail("QPACK encoding of the CONNECT request failed");
}

void wl_quic_free(struct wl *g)
{
    g->closing = true;
    uint8_t buf[1500];
    for (uint32_t i = 0; g->conns != NULL && i < g->o.subs; i++) {
        struct wl_conn *c = &g->conns[i];
        if (c->q.conn != NULL && c->q.handshakes > 0) {
            size_t n = td_qclient_write_close(&c->q, H3_NO_ERROR, buf, sizeof(buf), lg_now());
            if (n > 0)
                send_pkt(g, c, buf, n);
        }
        td_qclient_free(&c->q);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        for (int k = 0; k < WL_TX_N; k++)
            td_buf_free(&c->tx[k].buf);
        td_buf_free(&c->ctl);
        td_buf_free(&c->req);
        td_buf_free(&c->line);
    }
    if (g->qdec != NULL)
        nghttp3_qpack_decoder_del(g->qdec);
    g->qdec = NULL;
    if (g->cred != NULL)
        gnutls_certificate_free_credentials(g->cred);
    g->cred = NULL;
    td_buf_free(&g->connect_hdrs);
}
