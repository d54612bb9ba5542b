/*
 * td_wtabuse.c - a misbehaving WebTransport client, for the abuse tests of issue #7
 * (tests/interop/test/webtransport_abuse.test.js; tests/wt/README.md).
 *
 * It speaks just enough QUIC (ngtcp2 0.12 + GnuTLS, ALPN h3, the certificate is not
 * verified), HTTP/3 (control stream and SETTINGS, an extended CONNECT) and Centrifugo JSON
 * over the session's bidirectional stream to reach a working session, and then misbehaves
 * in one of these ways (--mode):
 *
 *   streams   opens WebTransport bidi (0x41) and uni (0x54) streams as fast as QUIC allows,
 *             writes a few bytes on each and never ends them, for --seconds; then checks that
 *             the Centrifugo stream still answers a command.
 *   noread    subscribes to --channel and stops reading: --how flow keeps reading packets but
 *             never extends the stream's flow-control window; --how socket stops reading (and
 *             writing) the socket for --stall seconds. Reports how the server ended it.
 *   bigframe  three fresh connections: (a) a HEADERS frame above TD_H3_HEADERS_MAX_LEN on a
 *             request stream, then a valid CONNECT on the same connection; (b) a Centrifugo
 *             line --over bytes above --limit (websocket.message_size_limit) on the session
 *             stream; (c) a CLOSE_WEBTRANSPORT_SESSION capsule above TD_H3_CAPSULE_MAX_LEN on
 *             the CONNECT stream.
 *   conns     --count sessions from --src at once, then one from --other-src: how many were
 *             served (CONNECT answered 2xx) within --timeout.
 *
 * Output: one JSON line on stdout per run with what the server did (stream reset codes,
 * disconnect codes from the push and the CLOSE capsule, the QUIC close code). Progress goes
 * to stderr. The exit status is 0 whenever the run could be carried out (the verdict is the
 * test's), 2 for bad arguments.
 *
 * Design: one thread, poll(2) over one connected UDP socket per connection. Everything we
 * send stays in fixed-size buffers (or static memory) until the connection is freed, since
 * ngtcp2 retransmits from the application's memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "quic/td_h3.h"
#include "../support/td_qclient.h"

#define H3_NO_ERROR UINT64_C(0x100)
#define MS UINT64_C(1000000)

enum {
    AB_MAX_CONNS = 256,
    AB_PKT = 2048,
    AB_SRV_UNI = 8,    /* server uni streams we look at */
    AB_CODES = 8,      /* distinct reset codes reported */
    AB_SMALL = 4096,   /* send buffer of the control stream */
    AB_REQ = 1 << 16,  /* send buffer of a request stream */
    AB_WINDOW = 16384, /* our receive window per stream (small: noread fills it fast) */
};

/* Setup states of a connection. */
enum ab_state {
    ST_HANDSHAKE, /* QUIC + TLS */
    ST_SETTINGS,  /* our SETTINGS sent; waiting for the server's */
    ST_IDLE,      /* SETTINGS exchanged; no CONNECT sent (bigframe headers) */
    ST_CONNECT,   /* CONNECT sent, waiting for :status */
    ST_SESSION,   /* 2xx: the WebTransport stream is open */
};

/* Bytes queued on one of our streams. data never moves (fixed capacity, or static memory)
 * because ngtcp2 keeps pointers into it until the peer acknowledges them. */
struct ab_out {
    int64_t id; /* -1: not open */
    const uint8_t *data;
    uint8_t *own; /* == data when we allocated it */
    size_t len, cap, sent;
    bool fin, fin_sent;
    bool blocked; /* flow control or a shut stream stopped it in this write pass */
    bool gone;    /* closed, or reset by the peer: nothing more is written */
};

struct ab_conn {
    struct ab *g;
    int idx;
    int fd;
    struct td_qclient q; /* the QUIC connection (tests/support/td_qclient.h) */
    uint64_t expiry;
    enum ab_state state;
    bool settings_ok;
    bool frozen;   /* noread socket: neither read nor write nor timers */
    bool hold_wt;  /* noread flow: do not extend the WebTransport stream's window */
    uint64_t held; /* bytes received on it and not credited */
    bool dead;     /* the QUIC connection is over (closed by either side, or failed) */
    /* what ended it */
    const char *closed_by; /* "server", "idle", "stateless_reset", "error" */
    uint64_t close_code;
    bool close_app;
    uint64_t closed_at;
    /* our streams */
    struct ab_out ctl, req, wt;
    struct ab_out *extra; /* streams mode and bad requests */
    size_t nextra, capextra;
    /* the server's streams */
    int64_t srv_uni[AB_SRV_UNI];
    int srv_uni_kind[AB_SRV_UNI]; /* 0 unknown, 1 control, 2 ignored */
    struct td_buf ctl_in, req_in, line;
    /* observations */
    int status; /* :status of the CONNECT, 0 if none */
    bool req_reset, wt_reset, req_fin, wt_fin;
    uint64_t req_reset_code, wt_reset_code;
    bool capsule_seen;
    uint32_t capsule_code;
    uint64_t capsule_at;
    int64_t push_disconnect; /* code of a disconnect push, -1 if none */
    uint32_t replies;        /* bit n: a reply with id n (1..31) arrived without error */
    uint32_t reply_errors;   /* bit n: it carried an error */
    uint64_t wt_bytes;       /* Centrifugo stream bytes received */
    uint64_t extra_reset;    /* RESET_STREAM frames on extra streams */
    uint64_t extra_codes[AB_CODES];
    size_t nextra_codes;
    uint64_t opened_bidi, opened_uni, blocked_opens;
};

struct ab_opts {
    const char *host;
    const char *port;
    const char *mode;
    const char *how;
    const char *channel;
    const char *src;
    const char *other_src;
    const char *path;
    double seconds, stall, timeout;
    uint32_t count;
    uint32_t limit;
    uint32_t over;
};

struct ab {
    struct ab_opts o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char authority[300];
    char origin[320];
    gnutls_certificate_credentials_t cred;
    nghttp3_qpack_decoder *qdec;
    struct ab_conn *conns[AB_MAX_CONNS];
    int nconns;
    uint8_t rbuf[AB_PKT];
};

/* ---- small helpers ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "td_wtabuse: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

__attribute__((format(printf, 2, 3))) static void note(const struct ab_conn *c, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "td_wtabuse[%d]: ", c != NULL ? c->idx : -1);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void out_init(struct ab_out *o, size_t cap)
{
    memset(o, 0, sizeof(*o));
    o->id = -1;
    if (cap > 0) {
        o->own = malloc(cap);
        if (o->own == NULL)
            die("out of memory");
        o->data = o->own;
        o->cap = cap;
    }
}

static void out_append(struct ab_out *o, const void *p, size_t n)
{
    if (o->own == NULL || o->len + n > o->cap)
        die("internal: send buffer of stream %" PRId64 " too small", o->id);
    memcpy(o->own + o->len, p, n);
    o->len += n;
}

static bool out_pending(const struct ab_out *o)
{
    return o->id >= 0 && !o->gone && !o->blocked && (o->sent < o->len || (o->fin && !o->fin_sent));
}

static void record_code(struct ab_conn *c, uint64_t code)
{
    for (size_t i = 0; i < c->nextra_codes; i++)
        if (c->extra_codes[i] == code)
            return;
    if (c->nextra_codes < AB_CODES)
        c->extra_codes[c->nextra_codes++] = code;
}

static struct ab_out *extra_find(struct ab_conn *c, int64_t id)
{
    for (size_t i = 0; i < c->nextra; i++)
        if (c->extra[i].id == id)
            return &c->extra[i];
    return NULL;
}

static struct ab_out *extra_add(struct ab_conn *c, int64_t id)
{
    if (c->nextra == c->capextra) {
        c->capextra = c->capextra ? 2 * c->capextra : 64;
        c->extra = realloc(c->extra, c->capextra * sizeof(*c->extra));
        if (c->extra == NULL)
            die("out of memory");
    }
    struct ab_out *o = &c->extra[c->nextra++];
    out_init(o, 0);
    o->id = id;
    return o;
}

/* Drops the extra streams that are finished (outside ngtcp2 callbacks only). */
static void extra_compact(struct ab_conn *c)
{
    size_t j = 0;
    for (size_t i = 0; i < c->nextra; i++) {
        if (c->extra[i].gone) {
            free(c->extra[i].own);
            continue;
        }
        c->extra[j++] = c->extra[i];
    }
    c->nextra = j;
}

/* ---- the write side ---- */

static void conn_mark_dead(struct ab_conn *c, const char *by, uint64_t code, bool app)
{
    if (c->dead)
        return;
    c->dead = true;
    c->closed_by = by;
    c->close_code = code;
    c->close_app = app;
    c->closed_at = now_ns();
    note(c, "connection over: %s code 0x%" PRIx64, by, code);
}

/* The next stream with something to write, in order: control, request, WT, extras. */
static struct ab_out *next_pending(struct ab_conn *c, size_t *cursor)
{
    struct ab_out *fixed[3] = {&c->ctl, &c->req, &c->wt};
    while (*cursor < 3 + c->nextra) {
        struct ab_out *o = *cursor < 3 ? fixed[*cursor] : &c->extra[*cursor - 3];
        if (out_pending(o))
            return o;
        (*cursor)++;
    }
    return NULL;
}

static void conn_write(struct ab_conn *c)
{
    if (c->dead || c->frozen)
        return;
    uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    uint64_t ts = now_ns();
    c->ctl.blocked = c->req.blocked = c->wt.blocked = false;
    for (size_t i = 0; i < c->nextra; i++)
        c->extra[i].blocked = false;
    size_t cursor = 0;
    for (int iter = 0; iter < 16384; iter++) {
        struct ab_out *o = next_pending(c, &cursor);
        int64_t sid = -1;
        ngtcp2_vec v = {NULL, 0};
        size_t vcnt = 0;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (o != NULL) {
            sid = o->id;
            v.base = (uint8_t *)(uintptr_t)(o->data + o->sent);
            v.len = o->len - o->sent;
            vcnt = v.len > 0 ? 1 : 0;
            if (o->fin)
                flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        ngtcp2_ssize ndatalen = -1;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->q.conn, &ps.path, &pi, buf, sizeof(buf),
                                                   &ndatalen, flags, sid, &v, vcnt, ts);
        if (o != NULL && ndatalen >= 0) {
            o->sent += (size_t)ndatalen;
            if (o->fin && o->sent == o->len)
                o->fin_sent = true;
        }
        if (n < 0) {
            if (n == NGTCP2_ERR_WRITE_MORE)
                continue;
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
                if (o != NULL)
                    o->blocked = true;
                continue;
            }
            if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
                if (o != NULL)
                    o->gone = true;
                continue;
            }
            if (n == NGTCP2_ERR_CLOSING || n == NGTCP2_ERR_DRAINING)
                break;
            note(c, "ngtcp2_conn_writev_stream: %s", ngtcp2_strerror((int)n));
            conn_mark_dead(c, "error", 0, false);
            break;
        }
        if (n == 0)
            break;
        ssize_t w;
        do {
            w = send(c->fd, buf, (size_t)n, 0);
        } while (w < 0 && errno == EINTR);
        /* a failed send is a lost packet: QUIC recovers */
    }
    ngtcp2_conn_update_pkt_tx_time(c->q.conn, ts);
    c->expiry = ngtcp2_conn_get_expiry(c->q.conn);
}

/* Sends CONNECTION_CLOSE (H3_NO_ERROR) if the connection is still up. */
static void conn_close(struct ab_conn *c)
{
    if (c->dead || c->q.conn == NULL || c->q.handshakes == 0)
        return;
    uint8_t buf[1500];
    size_t n = td_qclient_write_close(&c->q, H3_NO_ERROR, buf, sizeof(buf), now_ns());
    if (n > 0 && send(c->fd, buf, n, 0) < 0)
        note(c, "send: %s", strerror(errno));
}

/* ---- HTTP/3 and Centrifugo ---- */

/* Appends the extended CONNECT's HEADERS frame to o. */
static void append_connect(struct ab *g, struct ab_out *o)
{
    struct td_buf b;
    td_buf_init(&b);
    if (td_qclient_h3_connect_append(&b, g->authority, g->o.path, g->origin) != 0)
        die("QPACK encoding failed");
    out_append(o, b.data, b.len);
    td_buf_free(&b);
}

/* Opens the request stream and queues the CONNECT. */
static void send_connect(struct ab_conn *c)
{
    int64_t id;
    int rv = ngtcp2_conn_open_bidi_stream(c->q.conn, &id, NULL);
    if (rv != 0)
        die("cannot open the request stream: %s", ngtcp2_strerror(rv));
    out_init(&c->req, AB_REQ);
    c->req.id = id;
    append_connect(c->g, &c->req);
    c->state = ST_CONNECT;
}

/* The size of the WebTransport stream's send buffer: room for the commands and, in bigframe,
 * one line above the limit. */
static size_t wt_cap(const struct ab *g)
{
    return (size_t)g->o.limit + 65536;
}

static void open_wt_stream(struct ab_conn *c)
{
    int64_t id;
    int rv = ngtcp2_conn_open_bidi_stream(c->q.conn, &id, NULL);
    if (rv != 0)
        die("cannot open the WebTransport stream: %s", ngtcp2_strerror(rv));
    out_init(&c->wt, wt_cap(c->g));
    c->wt.id = id;
    uint8_t pre[2 * TD_H3_VARINT_MAXLEN];
    size_t pl = td_h3_wt_stream_prefix_encode(pre, true, (uint64_t)c->req.id);
    out_append(&c->wt, pre, pl);
    static const char connect[] = "{\"connect\":{},\"id\":1}\n";
    out_append(&c->wt, connect, sizeof(connect) - 1);
    c->state = ST_SESSION;
}

static void wt_send_line(struct ab_conn *c, const char *s)
{
    out_append(&c->wt, s, strlen(s));
}

static void send_control(struct ab_conn *c)
{
    int64_t id;
    int rv = ngtcp2_conn_open_uni_stream(c->q.conn, &id, NULL);
    if (rv != 0)
        die("cannot open the control stream: %s", ngtcp2_strerror(rv));
    out_init(&c->ctl, AB_SMALL);
    c->ctl.id = id;
    struct td_buf b;
    td_buf_init(&b);
    if (td_qclient_h3_control_append(&b) != 0)
        die("cannot encode SETTINGS");
    out_append(&c->ctl, b.data, b.len);
    td_buf_free(&b);
    c->state = ST_SETTINGS;
}

/* advance moves a connection through setup as far as what arrived allows. want_connect is
 * false for connections that send their own first request. */
static void advance(struct ab_conn *c, bool want_connect)
{
    if (c->dead)
        return;
    if (c->state == ST_HANDSHAKE && c->q.handshakes > 0)
        send_control(c);
    if (c->state == ST_SETTINGS && c->settings_ok) {
        c->state = ST_IDLE;
        if (want_connect)
            send_connect(c);
    }
}

static void parse_settings(struct ab_conn *c)
{
    struct td_h3_frame_hdr h;
    int rv = td_h3_frame_hdr_decode(c->ctl_in.data, c->ctl_in.len, &h);
    if (rv == TD_EAGAIN)
        return;
    if (rv != 0 || h.type != TD_H3_FRAME_SETTINGS) {
        note(c, "the server's control stream does not start with SETTINGS");
        return;
    }
    if (c->ctl_in.len - h.hdr_len < h.len)
        return;
    struct td_h3_settings s;
    if (td_h3_settings_decode(c->ctl_in.data + h.hdr_len, (size_t)h.len, &s) != 0) {
        note(c, "malformed SETTINGS");
        return;
    }
    c->settings_ok = true;
    td_buf_free(&c->ctl_in);
}

static void on_uni(struct ab_conn *c, int64_t id, const uint8_t *p, size_t n)
{
    int slot = -1;
    for (int i = 0; i < AB_SRV_UNI; i++) {
        if (c->srv_uni[i] == id) {
            slot = i;
            break;
        }
        if (slot < 0 && c->srv_uni[i] < 0)
            slot = i;
    }
    if (slot < 0 || n == 0)
        return;
    if (c->srv_uni[slot] != id) {
        c->srv_uni[slot] = id;
        uint64_t type;
        size_t used;
        if (td_h3_varint_decode(p, n, &type, &used) != 0 || type != 0x00) {
            c->srv_uni_kind[slot] = 2;
            return;
        }
        c->srv_uni_kind[slot] = 1;
        p += used;
        n -= used;
    }
    if (c->srv_uni_kind[slot] != 1 || c->settings_ok)
        return;
    td_buf_append(&c->ctl_in, p, n);
    if (c->ctl_in.len > 65536)
        return;
    parse_settings(c);
}

/* CLOSE_WEBTRANSPORT_SESSION capsules inside a DATA frame payload. */
static void on_capsules(struct ab_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        struct td_h3_capsule cap;
        if (td_h3_capsule_decode(p, n, &cap) != 0)
            return;
        uint32_t code;
        const uint8_t *reason;
        size_t rl;
        if (cap.type == TD_H3_CAPSULE_CLOSE_WT_SESSION &&
            td_h3_wt_close_decode(cap.value, cap.len, &code, &reason, &rl) == 0 &&
            !c->capsule_seen) {
            c->capsule_seen = true;
            c->capsule_code = code;
            c->capsule_at = now_ns();
            note(c, "CLOSE capsule %" PRIu32 " %.*s", code, (int)(rl > 100 ? 100 : rl),
                 (const char *)reason);
        }
        p += cap.size;
        n -= cap.size;
    }
}

static void on_req(struct ab_conn *c, const uint8_t *p, size_t n, bool fin)
{
    if (fin)
        c->req_fin = true;
    td_buf_append(&c->req_in, p, n);
    size_t off = 0;
    while (off < c->req_in.len) {
        struct td_h3_frame_hdr h;
        if (td_h3_frame_hdr_decode(c->req_in.data + off, c->req_in.len - off, &h) != 0)
            break;
        if (c->req_in.len - off - h.hdr_len < h.len)
            break;
        const uint8_t *pl = c->req_in.data + off + h.hdr_len;
        if (h.type == TD_H3_FRAME_HEADERS && c->status == 0) {
            c->status = td_qclient_h3_status(c->g->qdec, c->req.id, pl, (size_t)h.len);
            note(c, "CONNECT answered %d", c->status);
            if (c->status >= 200 && c->status <= 299 && c->state == ST_CONNECT)
                open_wt_stream(c);
        } else if (h.type == TD_H3_FRAME_DATA) {
            on_capsules(c, pl, (size_t)h.len);
        }
        off += h.hdr_len + (size_t)h.len;
    }
    td_buf_consume(&c->req_in, off);
}

static void on_line(struct ab_conn *c, const uint8_t *p, size_t n)
{
    if (n == 2 && p[0] == '{' && p[1] == '}') { /* ping */
        if (!c->wt.fin)
            wt_send_line(c, "{}\n");
        return;
    }
    const uint8_t *d = memmem(p, n, "\"disconnect\":{", 14);
    if (n > 8 && memcmp(p, "{\"push\":", 8) == 0 && d != NULL) {
        const uint8_t *k = memmem(d, n - (size_t)(d - p), "\"code\":", 7);
        c->push_disconnect = k != NULL ? strtol((const char *)k + 7, NULL, 10) : 0;
        note(c, "disconnect push %.*s", (int)(n > 200 ? 200 : n), (const char *)p);
        return;
    }
    if (n > 6 && memcmp(p, "{\"id\":", 6) == 0) {
        long id = strtol((const char *)p + 6, NULL, 10);
        if (id > 0 && id < 32) {
            c->replies |= 1u << id;
            if (memmem(p, n, "\"error\":", 8) != NULL) {
                c->reply_errors |= 1u << id;
                note(c, "reply %ld is an error: %.*s", id, (int)(n > 200 ? 200 : n),
                     (const char *)p);
            }
        }
    }
}

static void on_wt(struct ab_conn *c, const uint8_t *p, size_t n, bool fin)
{
    c->wt_bytes += n;
    if (fin && !c->wt_fin) {
        c->wt_fin = true;
        note(c, "the server ended the Centrifugo stream");
    }
    td_buf_append(&c->line, p, n);
    size_t off = 0;
    const uint8_t *nl;
    while ((nl = memchr(c->line.data + off, '\n', c->line.len - off)) != NULL) {
        size_t len = (size_t)(nl - (c->line.data + off));
        on_line(c, c->line.data + off, len);
        off += len + 1;
    }
    td_buf_consume(&c->line, off);
    if (c->line.len > (1u << 20))
        td_buf_reset(&c->line);
}

/* ---- what the QUIC connection reports ---- */

static int on_stream_data(void *ud, int64_t id, const uint8_t *data, size_t len, bool fin)
{
    struct ab_conn *c = ud;
    bool hold = false;
    if ((id & 3) == 3)
        on_uni(c, id, data, len);
    else if (id == c->req.id)
        on_req(c, data, len, fin);
    else if (id == c->wt.id) {
        on_wt(c, data, len, fin);
        hold = c->hold_wt;
    }
    /* The connection window always moves on (the CLOSE capsule must get through); the
     * stream window of the Centrifugo stream stays put while we play dead. */
    ngtcp2_conn_extend_max_offset(c->q.conn, len);
    if (hold)
        c->held += len;
    else
        ngtcp2_conn_extend_max_stream_offset(c->q.conn, id, len);
    return 0;
}

static void on_stream_reset(void *ud, int64_t id, uint64_t code)
{
    struct ab_conn *c = ud;
    if (id == c->req.id) {
        c->req_reset = true;
        c->req_reset_code = code;
        note(c, "the server reset the request stream: 0x%" PRIx64, code);
    } else if (id == c->wt.id) {
        c->wt_reset = true;
        c->wt_reset_code = code;
        note(c, "the server reset the Centrifugo stream: 0x%" PRIx64, code);
    } else {
        struct ab_out *o = extra_find(c, id);
        if (o != NULL) {
            o->gone = true;
            c->extra_reset++;
            record_code(c, code);
        }
    }
}

static void on_stream_close(void *ud, int64_t id)
{
    struct ab_out *o = extra_find(ud, id);
    if (o != NULL)
        o->gone = true;
}

static const struct td_qclient_handlers handlers = {
    .on_stream_data = on_stream_data,
    .on_stream_reset = on_stream_reset,
    .on_stream_close = on_stream_close,
};

/* ---- connections ---- */

static struct ab_conn *conn_new(struct ab *g, const char *src)
{
    if (g->nconns >= AB_MAX_CONNS)
        die("more than %d connections", AB_MAX_CONNS);
    struct ab_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        die("out of memory");
    c->g = g;
    c->idx = g->nconns;
    c->push_disconnect = -1;
    out_init(&c->ctl, 0);
    out_init(&c->req, 0);
    out_init(&c->wt, 0);
    for (int i = 0; i < AB_SRV_UNI; i++)
        c->srv_uni[i] = -1;
    td_buf_init(&c->ctl_in);
    td_buf_init(&c->req_in);
    td_buf_init(&c->line);
    g->conns[g->nconns++] = c;

    int fd = socket(g->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (src != NULL && src[0] != '\0') {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &sa.sin_addr) != 1)
            die("bad source address %s", src);
        if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0)
            die("bind to %s: %s", src, strerror(errno));
    }
    if (connect(fd, (const struct sockaddr *)&g->addr, g->addrlen) != 0)
        die("connect: %s", strerror(errno));
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) != 0)
        die("getsockname: %s", strerror(errno));
    c->fd = fd;

    struct td_qclient_config cfg;
    td_qclient_config_default(&cfg);
    cfg.local = (const struct sockaddr *)&local;
    cfg.local_len = locallen;
    cfg.remote = (const struct sockaddr *)&g->addr;
    cfg.remote_len = g->addrlen;
    cfg.now = now_ns();
    cfg.cred = g->cred;
    cfg.no_pmtud = true;
    ngtcp2_transport_params *p = &cfg.params;
    p->initial_max_stream_data_bidi_local = AB_WINDOW;
    p->initial_max_stream_data_bidi_remote = AB_WINDOW;
    p->initial_max_stream_data_uni = AB_WINDOW;
    p->initial_max_data = 1 << 20;
    p->initial_max_streams_bidi = 0;
    p->initial_max_streams_uni = 8;
    p->max_idle_timeout = 60 * NGTCP2_SECONDS;
    p->max_datagram_frame_size = 0; /* no DATAGRAM frames */
    cfg.handlers = &handlers;
    cfg.user = c;
    char err[160];
    if (td_qclient_init(&c->q, &cfg, err, sizeof(err)) != 0)
        die("%s", err);
    c->state = ST_HANDSHAKE;
    conn_write(c);
    return c;
}

static void conn_free(struct ab_conn *c)
{
    conn_close(c);
    td_qclient_free(&c->q);
    close(c->fd);
    free(c->ctl.own);
    free(c->req.own);
    free(c->wt.own);
    for (size_t i = 0; i < c->nextra; i++)
        free(c->extra[i].own);
    free(c->extra);
    td_buf_free(&c->ctl_in);
    td_buf_free(&c->req_in);
    td_buf_free(&c->line);
    free(c);
}

static void conn_read(struct ab_conn *c)
{
    for (int i = 0; i < 256 && !c->dead; i++) {
        ssize_t n = recv(c->fd, c->g->rbuf, sizeof(c->g->rbuf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
                note(c, "recv: %s", strerror(errno));
            break;
        }
        if (n == 0)
            continue;
        int rv = td_qclient_read(&c->q, NULL, c->g->rbuf, (size_t)n, now_ns());
        if (rv == NGTCP2_ERR_DRAINING) {
            bool app;
            uint64_t code;
            td_qclient_close_error(&c->q, &app, &code);
            conn_mark_dead(c, "server", code, app);
        } else if (rv != 0) {
            note(c, "ngtcp2_conn_read_pkt: %s", ngtcp2_strerror(rv));
            conn_mark_dead(c, "error", 0, false);
        }
    }
}

/* One turn of the loop: waits up to max_ms for packets or a QUIC timer, handles them and
 * writes what is due. want_connect as in advance(). */
static void poll_once(struct ab *g, int max_ms, bool want_connect)
{
    struct pollfd pfd[AB_MAX_CONNS];
    struct ab_conn *who[AB_MAX_CONNS];
    int n = 0;
    uint64_t now = now_ns(), earliest = UINT64_MAX;
    for (int i = 0; i < g->nconns; i++) {
        struct ab_conn *c = g->conns[i];
        if (c->dead || c->frozen)
            continue;
        pfd[n].fd = c->fd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        who[n++] = c;
        if (c->expiry < earliest)
            earliest = c->expiry;
    }
    int wait = max_ms;
    if (earliest != UINT64_MAX) {
        uint64_t ms = earliest > now ? (earliest - now) / MS + 1 : 0;
        if (ms < (uint64_t)wait)
            wait = (int)ms;
    }
    if (poll(pfd, (nfds_t)n, wait) < 0 && errno != EINTR)
        die("poll: %s", strerror(errno));
    now = now_ns();
    for (int i = 0; i < n; i++) {
        struct ab_conn *c = who[i];
        if (pfd[i].revents != 0)
            conn_read(c);
        if (!c->dead && c->expiry <= now) {
            int rv = ngtcp2_conn_handle_expiry(c->q.conn, now);
            if (rv == NGTCP2_ERR_IDLE_CLOSE)
                conn_mark_dead(c, "idle", 0, false);
            else if (rv != 0)
                conn_mark_dead(c, "error", 0, false);
        }
        advance(c, want_connect);
        conn_write(c);
        if (!c->dead && c->expiry <= now_ns())
            c->expiry = now_ns() + MS; /* nothing due after all: do not spin */
        if (c->nextra > 256)
            extra_compact(c);
    }
}

/* Runs the loop until done(c) or deadline (ns); returns done(c). */
static bool run_until(struct ab *g, struct ab_conn *c, bool (*done)(const struct ab_conn *),
                      uint64_t deadline, bool want_connect)
{
    while (!done(c) && now_ns() < deadline)
        poll_once(g, 20, want_connect);
    return done(c);
}

static bool is_dead(const struct ab_conn *c)
{
    return c->dead;
}
static bool has_settings(const struct ab_conn *c)
{
    return c->dead || c->settings_ok;
}
static bool has_status(const struct ab_conn *c)
{
    return c->dead || c->status != 0 || c->req_reset;
}
static bool has_connect_reply(const struct ab_conn *c)
{
    return c->dead || c->wt_fin || c->capsule_seen || (c->replies & (1u << 1));
}
static bool has_reply2(const struct ab_conn *c)
{
    return c->dead || c->wt_fin || c->capsule_seen || (c->replies & (1u << 2));
}
static bool has_reply3(const struct ab_conn *c)
{
    return c->dead || c->wt_fin || c->capsule_seen || (c->replies & (1u << 3));
}
static bool has_capsule(const struct ab_conn *c)
{
    return c->dead || c->capsule_seen;
}

static uint64_t deadline_in(double seconds)
{
    return now_ns() + (uint64_t)(seconds * 1e9);
}

/* A session with the Centrifugo connect answered; false (with a note) if it did not come. */
static bool session_up(struct ab *g, struct ab_conn *c)
{
    if (!run_until(g, c, has_connect_reply, deadline_in(g->o.timeout), true) || c->dead ||
        !(c->replies & (1u << 1)) || (c->reply_errors & (1u << 1))) {
        note(c, "no session (status %d)", c->status);
        return false;
    }
    return true;
}

/* ---- reporting ---- */

static void print_close(const struct ab_conn *c)
{
    printf("\"conn_closed\":%s", c->dead ? "true" : "false");
    if (c->dead)
        printf(",\"closed_by\":\"%s\",\"close_code\":%" PRIu64 ",\"close_app\":%s", c->closed_by,
               c->close_code, c->close_app ? "true" : "false");
}

static void print_stream_codes(const struct ab_conn *c)
{
    printf("\"req_reset_code\":");
    if (c->req_reset)
        printf("%" PRIu64, c->req_reset_code);
    else
        printf("null");
    printf(",\"wt_reset_code\":");
    if (c->wt_reset)
        printf("%" PRIu64, c->wt_reset_code);
    else
        printf("null");
    printf(",\"capsule_code\":");
    if (c->capsule_seen)
        printf("%" PRIu32, c->capsule_code);
    else
        printf("null");
    printf(",\"push_disconnect\":");
    if (c->push_disconnect >= 0)
        printf("%" PRId64, c->push_disconnect);
    else
        printf("null");
    printf(",\"wt_fin\":%s,", c->wt_fin ? "true" : "false");
}

/* ---- modes ---- */

/* Static payloads of the abusive streams: the WT prefix (session 0, the first client bidi
 * stream, which is always the CONNECT here) and a few bytes. */
static const uint8_t bidi_junk[] = {0x40, 0x41, 0x00, 'a', 'b', 'u', 's', 'e', '\n'};
static const uint8_t uni_junk[] = {0x40, 0x54, 0x00, 'a', 'b', 'u', 's', 'e', '\n'};

static void open_junk_streams(struct ab_conn *c)
{
    for (int k = 0; k < 64 && !c->dead; k++) {
        bool any = false;
        int64_t id;
        if (ngtcp2_conn_get_streams_bidi_left(c->q.conn) > 0 &&
            ngtcp2_conn_open_bidi_stream(c->q.conn, &id, NULL) == 0) {
            struct ab_out *o = extra_add(c, id);
            o->data = bidi_junk;
            o->len = sizeof(bidi_junk);
            c->opened_bidi++;
            any = true;
        }
        if (ngtcp2_conn_get_streams_uni_left(c->q.conn) > 0 &&
            ngtcp2_conn_open_uni_stream(c->q.conn, &id, NULL) == 0) {
            struct ab_out *o = extra_add(c, id);
            o->data = uni_junk;
            o->len = sizeof(uni_junk);
            c->opened_uni++;
            any = true;
        }
        if (!any) {
            c->blocked_opens++;
            break;
        }
    }
}

static int mode_streams(struct ab *g)
{
    struct ab_conn *c = conn_new(g, g->o.src);
    bool up = session_up(g, c);
    uint64_t t0 = now_ns(), end = deadline_in(g->o.seconds);
    while (up && !c->dead && now_ns() < end) {
        open_junk_streams(c);
        conn_write(c);
        poll_once(g, 5, true);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    size_t open_now = 0;
    for (size_t i = 0; i < c->nextra; i++)
        open_now += c->extra[i].gone ? 0 : 1;
    /* Is the session still served? Any command must get its reply. */
    bool alive = false;
    if (up && !c->dead) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "{\"subscribe\":{\"channel\":\"%s\"},\"id\":3}\n", g->o.channel);
        wt_send_line(c, cmd);
        conn_write(c);
        run_until(g, c, has_reply3, deadline_in(g->o.timeout), true);
        alive = (c->replies & (1u << 3)) && !(c->reply_errors & (1u << 3)) && !c->dead;
    }
    printf("{\"mode\":\"streams\",\"session\":%s,\"seconds\":%.2f,\"bidi_opened\":%" PRIu64
           ",\"uni_opened\":%" PRIu64 ",\"reset_by_server\":%" PRIu64
           ",\"open_at_end\":%zu,\"blocked_opens\":%" PRIu64 ",\"reset_codes\":[",
           up ? "true" : "false", secs, c->opened_bidi, c->opened_uni, c->extra_reset, open_now,
           c->blocked_opens);
    for (size_t i = 0; i < c->nextra_codes; i++)
        printf("%s%" PRIu64, i ? "," : "", c->extra_codes[i]);
    printf("],\"session_alive\":%s,", alive ? "true" : "false");
    print_stream_codes(c);
    print_close(c);
    printf("}\n");
    return 0;
}

static int mode_noread(struct ab *g)
{
    bool socket_mode = strcmp(g->o.how, "socket") == 0;
    struct ab_conn *c = conn_new(g, g->o.src);
    bool up = session_up(g, c);
    bool subscribed = false;
    if (up) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "{\"subscribe\":{\"channel\":\"%s\"},\"id\":2}\n", g->o.channel);
        wt_send_line(c, cmd);
        conn_write(c);
        run_until(g, c, has_reply2, deadline_in(g->o.timeout), true);
        subscribed = (c->replies & (1u << 2)) && !(c->reply_errors & (1u << 2)) && !c->dead;
    }
    if (subscribed)
        note(c, "subscribed to %s; no longer reading (%s)", g->o.channel, g->o.how);
    fprintf(stderr, "td_wtabuse: stalled\n");
    uint64_t before = c->wt_bytes, t0 = now_ns();
    if (subscribed && socket_mode) {
        c->frozen = true;
        uint64_t end = deadline_in(g->o.stall);
        while (now_ns() < end)
            poll_once(g, 50, true); /* frozen: nothing is read, written or timed */
        c->frozen = false;
        /* Wake up: whatever the server sent meanwhile is in the socket buffer. */
        conn_read(c);
        if (!c->dead)
            conn_write(c);
        run_until(g, c, is_dead, deadline_in(3), true);
    } else if (subscribed) {
        c->hold_wt = true;
        run_until(g, c, has_capsule, deadline_in(g->o.stall), true);
        /* Take what is left so the disconnect push can arrive before the connection ends. */
        c->hold_wt = false;
        if (!c->dead && c->held > 0) {
            ngtcp2_conn_extend_max_stream_offset(c->q.conn, c->wt.id, c->held);
            c->held = 0;
            conn_write(c);
        }
        run_until(g, c, is_dead, deadline_in(3), true);
    }
    uint64_t ended = c->capsule_seen ? c->capsule_at : c->dead ? c->closed_at : now_ns();
    printf("{\"mode\":\"noread\",\"how\":\"%s\",\"session\":%s,\"subscribed\":%s,"
           "\"bytes_before_stall\":%" PRIu64 ",\"bytes_total\":%" PRIu64
           ",\"ended_after_ms\":%" PRIu64 ",",
           socket_mode ? "socket" : "flow", up ? "true" : "false", subscribed ? "true" : "false",
           before, c->wt_bytes, ended > t0 ? (ended - t0) / MS : 0);
    print_stream_codes(c);
    print_close(c);
    printf("}\n");
    return 0;
}

/* (a) a HEADERS frame above TD_H3_HEADERS_MAX_LEN as the first request, then a valid
 * CONNECT on the same connection. */
static void bigframe_headers(struct ab *g)
{
    struct ab_conn *c = conn_new(g, g->o.src);
    run_until(g, c, has_settings, deadline_in(g->o.timeout), false);
    int64_t id = -1;
    struct ab_out *bad = NULL;
    if (c->settings_ok && ngtcp2_conn_open_bidi_stream(c->q.conn, &id, NULL) == 0) {
        bad = extra_add(c, id);
        size_t big = TD_H3_HEADERS_MAX_LEN + 4096;
        out_init(bad, big + 16);
        bad->id = id;
        uint8_t hdr[TD_H3_FRAME_HDR_MAXLEN];
        size_t hl = td_h3_frame_hdr_encode(hdr, TD_H3_FRAME_HEADERS, big);
        out_append(bad, hdr, hl);
        memset(bad->own + hl, 0x3f, big); /* QPACK-looking junk; never decoded */
        bad->len = hl + big;
        conn_write(c);
    }
    /* Wait for the reset of that stream. */
    uint64_t end = deadline_in(g->o.timeout);
    bool reset = false;
    uint64_t code = 0;
    while (!c->dead && now_ns() < end && bad != NULL) {
        poll_once(g, 20, false);
        if (c->extra_reset > 0) {
            reset = true;
            code = c->extra_codes[0];
            break;
        }
    }
    /* The connection is still good for a real session. */
    if (!c->dead) {
        send_connect(c);
        conn_write(c);
        run_until(g, c, has_status, deadline_in(g->o.timeout), true);
    }
    printf("\"headers\":{\"frame_len\":%d,\"reset\":%s,\"reset_code\":%" PRIu64
           ",\"then_connect_status\":%d,",
           TD_H3_HEADERS_MAX_LEN + 4096, reset ? "true" : "false", code, c->status);
    print_close(c);
    printf("}");
}

/* (b) a Centrifugo line above the limit on the session stream: a complete, well-formed
 * publish command of limit + --over bytes with its newline. The few bytes over arrive with
 * the newline in the last packet, so the server must count the whole line, not only an
 * unfinished tail. A reply with id 3 means it was
 * served. */
static void bigframe_message(struct ab *g)
{
    struct ab_conn *c = conn_new(g, g->o.src);
    bool up = session_up(g, c);
    static const char head[] = "{\"publish\":{\"channel\":\"abuse-big\",\"data\":\"";
    static const char tail[] = "\"},\"id\":3}\n";
    size_t line = (size_t)g->o.limit + g->o.over;
    size_t fill = line - (sizeof(head) - 1) - (sizeof(tail) - 2); /* line: without '\n' */
    if (up) {
        out_append(&c->wt, head, sizeof(head) - 1);
        if (c->wt.len + fill + sizeof(tail) > c->wt.cap)
            die("internal: line does not fit");
        memset(c->wt.own + c->wt.len, 'a', fill);
        c->wt.len += fill;
        out_append(&c->wt, tail, sizeof(tail) - 1);
        conn_write(c);
        run_until(g, c, has_reply3, deadline_in(g->o.timeout), true);
        if (c->capsule_seen || c->wt_fin)
            run_until(g, c, is_dead, deadline_in(3), true);
    }
    printf("\"message\":{\"session\":%s,\"line_len\":%zu,\"served\":%s,", up ? "true" : "false",
           line, (c->replies & (1u << 3)) ? "true" : "false");
    print_stream_codes(c);
    print_close(c);
    printf("}");
}

/* (c) a CLOSE_WEBTRANSPORT_SESSION capsule above TD_H3_CAPSULE_MAX_LEN. */
static void bigframe_capsule(struct ab *g)
{
    struct ab_conn *c = conn_new(g, g->o.src);
    bool up = session_up(g, c);
    size_t vlen = TD_H3_CAPSULE_MAX_LEN + 1024;
    if (up) {
        uint8_t ch[2 * TD_H3_VARINT_MAXLEN], fh[TD_H3_FRAME_HDR_MAXLEN];
        size_t cl = td_h3_varint_encode(ch, TD_H3_CAPSULE_CLOSE_WT_SESSION);
        cl += td_h3_varint_encode(ch + cl, vlen);
        size_t fl = td_h3_frame_hdr_encode(fh, TD_H3_FRAME_DATA, cl + vlen);
        out_append(&c->req, fh, fl);
        out_append(&c->req, ch, cl);
        if (c->req.len + vlen > c->req.cap)
            die("internal: capsule does not fit");
        memset(c->req.own + c->req.len, 0, 4); /* code 0 */
        memset(c->req.own + c->req.len + 4, 'r', vlen - 4);
        c->req.len += vlen;
        conn_write(c);
        uint64_t end = deadline_in(g->o.timeout);
        while (!c->dead && !c->req_reset && now_ns() < end)
            poll_once(g, 20, true);
        run_until(g, c, is_dead, deadline_in(3), true);
    }
    printf("\"capsule\":{\"session\":%s,\"capsule_len\":%zu,", up ? "true" : "false", vlen);
    print_stream_codes(c);
    print_close(c);
    printf("}");
}

static int mode_bigframe(struct ab *g)
{
    printf("{\"mode\":\"bigframe\",\"limit\":%" PRIu32 ",", g->o.limit);
    bigframe_headers(g);
    printf(",");
    bigframe_message(g);
    printf(",");
    bigframe_capsule(g);
    printf("}\n");
    return 0;
}

static bool all_settled(struct ab *g)
{
    for (int i = 0; i < g->nconns; i++) {
        const struct ab_conn *c = g->conns[i];
        if (!c->dead && c->status == 0 && !c->req_reset)
            return false;
    }
    return true;
}

static int mode_conns(struct ab *g)
{
    if (g->o.count + 1 > AB_MAX_CONNS)
        die("--count above %d", AB_MAX_CONNS - 1);
    for (uint32_t i = 0; i < g->o.count; i++)
        conn_new(g, g->o.src);
    uint64_t end = deadline_in(g->o.timeout);
    while (!all_settled(g) && now_ns() < end)
        poll_once(g, 20, true);
    uint32_t served = 0, handshakes = 0;
    for (int i = 0; i < g->nconns; i++) {
        served += g->conns[i]->status >= 200 && g->conns[i]->status <= 299;
        handshakes += g->conns[i]->q.handshakes > 0;
    }
    /* One more from another address while those are all still open. */
    struct ab_conn *o = conn_new(g, g->o.other_src);
    run_until(g, o, has_status, deadline_in(g->o.timeout), true);
    bool other = o->status >= 200 && o->status <= 299;
    printf("{\"mode\":\"conns\",\"src\":\"%s\",\"count\":%" PRIu32 ",\"served\":%" PRIu32
           ",\"handshakes\":%" PRIu32 ",\"refused\":%" PRIu32
           ",\"other_src\":\"%s\",\"other_served\":%s,\"other_status\":%d}\n",
           g->o.src, g->o.count, served, handshakes, g->o.count - served, g->o.other_src,
           other ? "true" : "false", o->status);
    return 0;
}

/* ---- main ---- */

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr,
            "usage: td_wtabuse --port P --mode streams|noread|bigframe|conns [--host 127.0.0.1]\n"
            "  [--path /connection/webtransport] [--channel abuse] [--seconds 3]\n"
            "  [--how flow|socket] [--stall 10] [--limit 65536] [--over 200] [--count 101]\n"
            "  [--src 127.0.0.1] [--other-src 127.0.0.2] [--timeout 5]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct ab *g = calloc(1, sizeof(*g));
    if (g == NULL)
        die("out of memory");
    g->o = (struct ab_opts){
        .host = "127.0.0.1",
        .mode = "",
        .how = "flow",
        .channel = "abuse",
        .src = "127.0.0.1",
        .other_src = "127.0.0.2",
        .path = "/connection/webtransport",
        .seconds = 3,
        .stall = 10,
        .timeout = 5,
        .count = 101,
        .limit = 65536,
        .over = 200,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            g->o.port = v;
        else if (strcmp(a, "--host") == 0)
            g->o.host = v;
        else if (strcmp(a, "--mode") == 0)
            g->o.mode = v;
        else if (strcmp(a, "--how") == 0)
            g->o.how = v;
        else if (strcmp(a, "--channel") == 0)
            g->o.channel = v;
        else if (strcmp(a, "--src") == 0)
            g->o.src = v;
        else if (strcmp(a, "--other-src") == 0)
            g->o.other_src = v;
        else if (strcmp(a, "--path") == 0)
            g->o.path = v;
        else if (strcmp(a, "--seconds") == 0)
            g->o.seconds = atof(v);
        else if (strcmp(a, "--stall") == 0)
            g->o.stall = atof(v);
        else if (strcmp(a, "--timeout") == 0)
            g->o.timeout = atof(v);
        else if (strcmp(a, "--count") == 0)
            g->o.count = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--limit") == 0)
            g->o.limit = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--over") == 0)
            g->o.over = (uint32_t)strtoul(v, NULL, 10);
        else
            usage();
    }
    if (g->o.port == NULL || strlen(g->o.channel) > 200 ||
        (strcmp(g->o.how, "flow") != 0 && strcmp(g->o.how, "socket") != 0))
        usage();
    struct sockaddr_in *sa = (struct sockaddr_in *)&g->addr;
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(g->o.port));
    if (inet_pton(AF_INET, g->o.host, &sa->sin_addr) != 1)
        die("--host must be an IPv4 address");
    g->addrlen = sizeof(*sa);
    snprintf(g->authority, sizeof(g->authority), "%s:%s", g->o.host, g->o.port);
    snprintf(g->origin, sizeof(g->origin), "https://%s", g->authority);
    if (gnutls_certificate_allocate_credentials(&g->cred) != 0)
        die("gnutls_certificate_allocate_credentials failed");
    if (nghttp3_qpack_decoder_new(&g->qdec, 0, 0, nghttp3_mem_default()) != 0)
        die("nghttp3_qpack_decoder_new failed");

    int rv;
    if (strcmp(g->o.mode, "streams") == 0)
        rv = mode_streams(g);
    else if (strcmp(g->o.mode, "noread") == 0)
        rv = mode_noread(g);
    else if (strcmp(g->o.mode, "bigframe") == 0)
        rv = mode_bigframe(g);
    else if (strcmp(g->o.mode, "conns") == 0)
        rv = mode_conns(g);
    else
        usage();
    fflush(stdout);

    for (int i = 0; i < g->nconns; i++)
        conn_free(g->conns[i]);
    nghttp3_qpack_decoder_del(g->qdec);
    gnutls_certificate_free_credentials(g->cred);
    free(g);
    return rv;
}
