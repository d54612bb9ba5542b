/*
 * td_wtsrv.c - Centrifugo client sessions over WebTransport (see td_wtsrv.h).
 *
 * Layers per QUIC connection: td_udp owns the socket, the CID table and the QUIC timers and
 * hands stream events to this file; td_wt (HTTP/3 + WebTransport) turns them into a session
 * and its streams; a struct wt_conn binds the session's Centrifugo stream to a td_client.
 */
#include "io/td_wtsrv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/td_alloc.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "http/td_http1.h"
#include "io/td_udp.h"
#include "quic/td_h3.h"
#include "quic/td_quic.h"
#include "quic/td_wt.h"

#define WT_PATH "/connection/webtransport"
#define H3_NO_ERROR UINT64_C(0x100)

struct td_wtsrv {
    uv_loop_t *loop;
    const struct td_config *cfg;
    struct td_hub *hub;
    struct td_quic_ctx *qctx;
    struct td_udp *udp;
    struct td_wtsrv_stats stats;
    int port;
    bool stopping;
    void (*done)(void *ud);
    void *done_ud;
    struct td_buf scratch; /* one framed message on its way to td_wt_stream_send */
    struct wt_conn *conns; /* every QUIC connection (doubly linked) */
    uv_timer_t stop_timer; /* shutdown: the end of the grace period */
};

struct wt_conn {
    struct td_wtsrv *srv;
    struct td_quic_conn *qc;
    struct td_wt *wt;
    struct td_client *client;
    const struct td_codec *codec;
    int64_t stream;     /* the Centrifugo stream, -1 until the client opens it */
    struct td_buf in;   /* received bytes not yet forming a whole message */
    uv_timer_t timer;   /* client pings, the wait for the stream, the disconnect linger */
    int64_t session_at; /* when the session was accepted (ms) */
    int64_t linger_until;
    uint32_t close_code;
    char close_reason[64];
    bool session_open;
    bool stream_ended; /* we sent FIN on the Centrifugo stream */
    bool closed;       /* the session is closed: nothing more goes out */
    struct wt_conn *prev, *next;
};

static int64_t now_ms(const struct td_wtsrv *w)
{
    return (int64_t)uv_now(w->loop);
}

/* ---- td_wt output: the QUIC connection ---------------------------------------------- */

static int q_stream_open(void *q, bool bidi, int64_t *id)
{
    return td_quic_stream_open(q, bidi, id);
}

static int q_stream_send(void *q, int64_t id, const void *p, size_t n, bool fin)
{
    int rv = td_quic_stream_send(q, id, p, n, fin);
    if (rv == 0)
        td_udp_want_write(q);
    return rv;
}

static int q_stream_shutdown(void *q, int64_t id, uint64_t code)
{
    int rv = td_quic_stream_shutdown(q, id, code);
    td_udp_want_write(q);
    return rv;
}

static void q_stream_consumed(void *q, int64_t id, size_t n)
{
    td_quic_stream_consumed(q, id, n);
}

static int q_datagram_send(void *q, const void *p, size_t n)
{
    int rv = td_quic_datagram_send(q, p, n);
    if (rv == 0)
        td_udp_want_write(q);
    return rv;
}

static void q_conn_close(void *q, uint64_t code)
{
    td_quic_conn_close(q, code);
    td_udp_want_write(q);
}

static const struct td_wt_ops wt_quic_ops = {
    q_stream_open,     q_stream_send,   q_stream_shutdown,
    q_stream_consumed, q_datagram_send, q_conn_close,
};

/* ---- the timer ----------------------------------------------------------------------- */

static void conn_arm(struct wt_conn *c);

static void conn_end_session(struct wt_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    if (c->client != NULL && c->client->state != TD_CLIENT_CLOSED)
        c->client->state = TD_CLIENT_CLOSED;
    if (c->session_open)
        td_wt_session_close(c->wt, c->close_code, c->close_reason, strlen(c->close_reason));
    /* One session per connection (Chromium opens a connection per session): the
     * connection ends with it once the peer had a moment to read the capsule. */
    c->linger_until = now_ms(c->srv) + TD_WTSRV_LINGER_MS;
    conn_arm(c);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct wt_conn *c = t->data;
    int64_t now = now_ms(c->srv);
    if (c->closed) {
        if (now >= c->linger_until)
            td_quic_conn_close(c->qc, H3_NO_ERROR);
        td_udp_want_write(c->qc);
        return;
    }
    if (c->linger_until > 0 && now >= c->linger_until) {
        conn_end_session(c);
        return;
    }
    if (c->session_open && c->client == NULL && now - c->session_at >= TD_WTSRV_STREAM_WAIT_MS) {
        snprintf(c->close_reason, sizeof(c->close_reason), "no stream");
        c->close_code = TD_DISC_BAD_REQUEST;
        conn_end_session(c);
        return;
    }
    conn_arm(c);
}

/* Arms the timer at the earliest of: the client's next tick, the stream wait, the linger. */
static void conn_arm(struct wt_conn *c)
{
    int64_t now = now_ms(c->srv);
    int64_t at = INT64_MAX;
    if (c->linger_until > 0)
        at = c->linger_until;
    if (!c->closed) {
        if (c->client != NULL) {
            int64_t next = td_client_tick(c->client, now);
            if (next > 0 && next < at)
                at = next;
        } else if (c->session_open) {
            int64_t wait = c->session_at + TD_WTSRV_STREAM_WAIT_MS;
            if (wait < at)
                at = wait;
        }
    }
    if (at == INT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_conn_timer, at > now ? (uint64_t)(at - now) : 0, 0);
}

/* ---- transport ops for the hub ------------------------------------------------------ */

/* Sends one message unit framed for the stream (JSON: a line; Protobuf: as encoded). */
static int conn_send_framed(struct wt_conn *c, const uint8_t *p, size_t n)
{
    struct td_buf *b = &c->srv->scratch;
    b->len = 0;
    td_buf_append(b, p, n);
    if (!c->codec->binary)
        td_buf_append(b, "\n", 1);
    return td_wt_stream_send(c->wt, c->stream, b->data, b->len, false);
}

/* The server ends the client: disconnect push, end of stream, then the session (linger). */
static void conn_disconnect(struct wt_conn *c, uint32_t code, const char *reason)
{
    if (c->closed || c->linger_until > 0)
        return;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
    if (c->client != NULL) {
        if (c->stream >= 0 && !c->stream_ended) {
            if (code != 0) {
                struct td_buf b;
                td_buf_init(&b);
                c->codec->push_disconnect(&b, code, reason);
                conn_send_framed(c, b.data, b.len);
                td_buf_free(&b);
            }
            td_wt_stream_send(c->wt, c->stream, NULL, 0, true);
            c->stream_ended = true;
        }
        c->client->state = TD_CLIENT_CLOSED;
    }
    c->linger_until = now_ms(c->srv) + TD_WTSRV_LINGER_MS;
    conn_arm(c);
}

static int wt_send(void *t, struct td_rbuf *unit)
{
    struct wt_conn *c = t;
    if (c->closed || c->stream_ended || c->stream < 0)
        return 0;
    int rv = TD_ELIMIT;
    if (td_quic_conn_unacked(c->qc) + unit->len <= c->srv->cfg->queue_max_size)
        rv = conn_send_framed(c, unit->data, unit->len);
    if (rv == TD_ELIMIT) {
        td_log_info("slow client disconnected", "client=%s transport=webtransport",
                    c->client != NULL ? c->client->id : "");
        conn_disconnect(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    return 0;
}

static void wt_close(void *t, uint32_t code, const char *reason)
{
    conn_disconnect(t, code, reason);
}

/* A publication of a "datagrams" namespace: the same push the stream would carry (it names
 * the channel and the offset), as one datagram; refused (the hub then uses the stream) when
 * it does not fit or the peer takes no datagrams. */
static int wt_send_datagram(void *t, struct td_rbuf *unit)
{
    struct wt_conn *c = t;
    if (c->closed || c->stream_ended || c->stream < 0)
        return 0;
    int rv = td_wt_datagram_send(c->wt, unit->data, unit->len);
    if (rv == TD_ELIMIT)
        return 0; /* queue full: datagrams may be lost, the next one carries newer state */
    if (rv == 0)
        c->srv->stats.datagrams++;
    return rv;
}

static const struct td_transport_ops wt_transport_ops = {wt_send, wt_close, wt_send_datagram};

/* ---- td_wt events: the session -------------------------------------------------------- */

static bool origin_ok(const struct td_config *cfg, const struct td_wt_request *req)
{
    return td_http_origin_allowed((const char *const *)cfg->allowed_origins, cfg->n_allowed_origins,
                                  req->origin, req->authority);
}

static int on_session_request(void *ud, const struct td_wt_request *req)
{
    struct wt_conn *c = ud;
    struct td_wtsrv *w = c->srv;
    size_t plen = sizeof(WT_PATH) - 1;
    struct td_str path = req->path, query = {"", 0};
    const char *q = memchr(path.p, '?', path.n);
    if (q != NULL) {
        query = (struct td_str){q + 1, path.n - (size_t)(q + 1 - path.p)};
        path.n = (size_t)(q - path.p);
    }
    if (path.n != plen || memcmp(path.p, WT_PATH, plen) != 0) {
        w->stats.refused++;
        return 404;
    }
    if (w->stopping) {
        w->stats.refused++;
        return 503;
    }
    if (!origin_ok(w->cfg, req)) {
        w->stats.refused++;
        return 403;
    }
    char qv[32];
    c->codec = &td_codec_json;
    if (td_http_query_get(query, "cf_protocol", qv, sizeof(qv)) > 0 && strcmp(qv, "protobuf") == 0)
        c->codec = &td_codec_protobuf;
    c->session_open = true;
    c->session_at = now_ms(w);
    w->stats.accepted++;
    w->stats.sessions++;
    conn_arm(c);
    return 200;
}

static int on_stream_open(void *ud, int64_t id, bool bidi)
{
    struct wt_conn *c = ud;
    if (!bidi || c->client != NULL || c->closed || c->linger_until > 0) {
        /* Centrifugo uses one bidirectional stream; anything else is refused. */
        td_wt_stream_reset(c->wt, id, 0);
        return 0;
    }
    c->stream = id;
    c->client = td_client_new(c->srv->hub, c->codec, &wt_transport_ops, c, now_ms(c->srv));
    conn_arm(c);
    return 0;
}

/* Length of the longest prefix of in holding whole messages (0 if none); sets *too_big when
 * a message exceeds the limit. */
static size_t whole_messages(const struct wt_conn *c, bool *too_big)
{
    const uint8_t *p = c->in.data;
    size_t n = c->in.len, limit = c->srv->cfg->message_size_limit;
    *too_big = false;
    if (!c->codec->binary) {
        /* Every line counts, not only an unfinished tail: a chunk may end a line that is
         * already over the limit. The lines before it are still served. */
        size_t end = 0;
        const uint8_t *nl;
        while (end < n && (nl = memchr(p + end, '\n', n - end)) != NULL) {
            if ((size_t)(nl - (p + end)) > limit) {
                *too_big = true;
                return end;
            }
            end = (size_t)(nl - p) + 1;
        }
        if (n - end > limit)
            *too_big = true;
        return end;
    }
    size_t pos = 0;
    while (pos < n) {
        uint64_t len = 0;
        size_t used = 0;
        int shift = 0;
        bool ok = false;
        while (pos + used < n && used < 10) {
            uint8_t b = p[pos + used++];
            len |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80)) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            if (used >= 10)
                *too_big = true;
            break;
        }
        if (len > limit) {
            *too_big = true;
            break;
        }
        if (pos + used + len > n)
            break;
        pos += used + (size_t)len;
    }
    return pos;
}

static int on_stream_data(void *ud, int64_t id, const uint8_t *p, size_t n, bool fin)
{
    struct wt_conn *c = ud;
    if (id != c->stream || c->client == NULL)
        return 0;
    if (c->linger_until > 0 || c->closed) {
        if (fin)
            conn_end_session(c); /* the client read the disconnect and ended its side */
        return 0;
    }
    td_buf_append(&c->in, p, n);
    bool too_big = false;
    size_t whole = whole_messages(c, &too_big);
    if (whole > 0) {
        td_client_on_frame(c->client, c->in.data, whole, now_ms(c->srv));
        memmove(c->in.data, c->in.data + whole, c->in.len - whole);
        c->in.len -= whole;
    }
    if (too_big) {
        conn_disconnect(c, TD_DISC_BAD_REQUEST, "message too large");
        return 0;
    }
    if (fin) {
        /* The client ended its stream: it is gone (centrifuge closes the writer first). */
        c->close_code = 0;
        c->close_reason[0] = '\0';
        if (!c->stream_ended) {
            td_wt_stream_send(c->wt, c->stream, NULL, 0, true);
            c->stream_ended = true;
        }
        conn_end_session(c);
        return 0;
    }
    conn_arm(c);
    return 0;
}

static void on_stream_reset(void *ud, int64_t id, uint32_t code, bool reset)
{
    struct wt_conn *c = ud;
    (void)code;
    (void)reset;
    if (id == c->stream && !c->closed) {
        c->close_code = 0;
        c->close_reason[0] = '\0';
        c->stream_ended = true;
        conn_end_session(c);
    }
}

static void on_datagram(void *ud, const uint8_t *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n; /* clients send nothing over datagrams */
}

static void on_session_closed(void *ud, uint32_t code, const uint8_t *reason, size_t n)
{
    struct wt_conn *c = ud;
    (void)code;
    (void)reason;
    (void)n;
    if (c->session_open) {
        c->session_open = false;
        c->srv->stats.sessions--;
    }
    if (c->client != NULL && c->client->state != TD_CLIENT_CLOSED)
        c->client->state = TD_CLIENT_CLOSED;
    c->stream_ended = true;
    c->closed = true;
    c->linger_until = now_ms(c->srv) + TD_WTSRV_LINGER_MS;
    conn_arm(c);
}

static const struct td_wt_handler wt_handler = {
    on_session_request, on_stream_open,    on_stream_data, on_stream_reset,
    on_datagram,        on_session_closed, NULL,
};

/* ---- td_udp events: QUIC connections -------------------------------------------------- */

static void *u_accept(void *ud, struct td_quic_conn *qc)
{
    struct td_wtsrv *w = ud;
    if (w->stopping)
        return NULL;
    struct wt_conn *c = td_xcalloc(1, sizeof(*c));
    c->srv = w;
    c->qc = qc;
    c->stream = -1;
    c->codec = &td_codec_json;
    td_buf_init(&c->in);
    c->wt = td_wt_new(&wt_quic_ops, qc, &wt_handler, c);
    uv_timer_init(w->loop, &c->timer);
    c->timer.data = c;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->stats.conns++;
    return c;
}

static int u_ready(void *app, struct td_quic_conn *qc)
{
    (void)qc;
    struct wt_conn *c = app;
    return td_wt_on_ready(c->wt) < 0 ? -1 : 0;
}

static int u_stream_data(void *app, struct td_quic_conn *qc, int64_t id, const uint8_t *p, size_t n,
                         bool fin)
{
    (void)qc;
    struct wt_conn *c = app;
    return td_wt_on_stream_data(c->wt, id, p, n, fin) < 0 ? -1 : 0;
}

static int u_stream_abort(void *app, struct td_quic_conn *qc, int64_t id, uint64_t code, bool reset)
{
    (void)qc;
    struct wt_conn *c = app;
    return td_wt_on_stream_abort(c->wt, id, code, reset) < 0 ? -1 : 0;
}

static void u_stream_close(void *app, struct td_quic_conn *qc, int64_t id, uint64_t code)
{
    (void)qc;
    struct wt_conn *c = app;
    td_wt_on_stream_close(c->wt, id, code);
}

static int u_datagram(void *app, struct td_quic_conn *qc, const uint8_t *p, size_t n)
{
    (void)qc;
    struct wt_conn *c = app;
    return td_wt_on_datagram(c->wt, p, n) < 0 ? -1 : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_stop_timer(uv_timer_t *t);

static void u_closed(void *app, struct td_quic_conn *qc)
{
    (void)qc;
    struct wt_conn *c = app;
    struct td_wtsrv *w = c->srv;
    if (c->session_open) {
        c->session_open = false;
        w->stats.sessions--;
    }
    if (c->client != NULL) {
        c->client->state = TD_CLIENT_CLOSED;
        td_client_free(c->client, now_ms(w));
        c->client = NULL;
    }
    td_wt_free(c->wt);
    td_buf_free(&c->in);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->stats.conns--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (w->stopping && w->conns == NULL)
        uv_timer_start(&w->stop_timer, on_stop_timer, 0, 0);
}

static const struct td_udp_handler udp_handler = {
    u_accept, u_ready, u_stream_data, u_stream_abort, u_stream_close, u_datagram, u_closed,
};

/* ---- lifecycle ----------------------------------------------------------------------- */

int td_wtsrv_start(struct td_wtsrv **out, uv_loop_t *loop, const struct td_config *cfg,
                   struct td_hub *hub, const char *address, int port, char *err, size_t errlen)
{
    if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL || cfg->tls_cert_file[0] == '\0' ||
        cfg->tls_key_file[0] == '\0') {
        snprintf(err, errlen,
                 "webtransport.enabled needs tls.cert_file and tls.key_file (tandem gencert "
                 "makes a development certificate)");
        return TD_EINVAL;
    }
    struct td_wtsrv *w = td_xcalloc(1, sizeof(*w));
    w->loop = loop;
    w->cfg = cfg;
    w->hub = hub;
    td_buf_init(&w->scratch);
    int rv = td_quic_ctx_new(&w->qctx, cfg->tls_cert_file, cfg->tls_key_file, err, errlen);
    if (rv != 0) {
        td_buf_free(&w->scratch);
        free(w);
        return rv;
    }
    struct td_udp_limits lim;
    memset(&lim, 0, sizeof(lim));
    rv = td_udp_start(&w->udp, loop, address, port, w->qctx, &udp_handler, w, &lim, err, errlen);
    if (rv != 0) {
        td_quic_ctx_del(w->qctx);
        td_buf_free(&w->scratch);
        free(w);
        return rv;
    }
    w->port = td_udp_port(w->udp);
    uv_timer_init(loop, &w->stop_timer);
    w->stop_timer.data = w;
    *out = w;
    return 0;
}

int td_wtsrv_port(const struct td_wtsrv *w)
{
    return w->port;
}

static void on_stop_timer_closed(uv_handle_t *h)
{
    struct td_wtsrv *w = h->data;
    if (w->done != NULL)
        w->done(w->done_ud);
}

static void on_udp_stopped(void *ud)
{
    struct td_wtsrv *w = ud;
    uv_close((uv_handle_t *)&w->stop_timer, on_stop_timer_closed);
}

/* Shutdown: every session got its disconnect push and a moment to read it; what is left
 * after the grace period (or nothing) is closed with the socket. */
static void on_stop_timer(uv_timer_t *t)
{
    struct td_wtsrv *w = t->data;
    if (w->udp == NULL)
        return;
    struct td_udp *u = w->udp;
    w->udp = NULL;
    td_udp_close_all(u, H3_NO_ERROR);
    td_udp_stop(u, on_udp_stopped, w);
}

void td_wtsrv_shutdown(struct td_wtsrv *w, void (*done)(void *ud), void *ud)
{
    if (w->stopping)
        return;
    w->stopping = true;
    w->done = done;
    w->done_ud = ud;
    for (struct wt_conn *c = w->conns; c != NULL; c = c->next)
        conn_disconnect(c, TD_DISC_SHUTDOWN, "shutdown");
    uv_timer_start(&w->stop_timer, on_stop_timer, w->conns == NULL ? 0 : 2 * TD_WTSRV_LINGER_MS, 0);
}

void td_wtsrv_free(struct td_wtsrv *w)
{
    if (w == NULL)
        return;
    td_quic_ctx_del(w->qctx);
    td_buf_free(&w->scratch);
    free(w);
}

void td_wtsrv_stats(const struct td_wtsrv *w, struct td_wtsrv_stats *out)
{
    *out = w->stats;
    if (w->udp != NULL) {
        struct td_udp_stats us;
        td_udp_get_stats(w->udp, &us);
        out->packets_in = us.packets_in;
        out->packets_out = us.packets_out;
        out->dropped = us.dropped;
        out->conns_refused = us.refused;
    }
}
