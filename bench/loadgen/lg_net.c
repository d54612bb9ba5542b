/*
 * lg_net.c - td_loadgen's connections: connect, HTTP upgrade, WebSocket client framing, the
 * four pub/sub protocols and delivery detection. See loadgen.h for the connection states.
 *
 * Reads go into one shared 1 MiB buffer and every complete frame in it is handled in place;
 * only the tail of a frame cut by the read is copied into the connection's own buffer (in),
 * and the next read is appended there. Replies a connection owes (pongs) are appended to its
 * output and written once after the read is handled, so a read that carried several server
 * pings still costs one write. A read that did not fill the buffer drained the socket
 * (epoll is level-triggered), which saves the extra read that would return EAGAIN.
 *
 * With --tls the same bytes go through a GnuTLS client session on the same non-blocking
 * socket (gnutls_transport_set_int). A read takes records until GNUTLS_E_AGAIN, gathering
 * their plaintext in the shared buffer, then handles it as above: GnuTLS returns at most one
 * record per call, so "the read did not fill the buffer" does not mean "drained" there. A
 * write that returns GNUTLS_E_AGAIN is repeated with the same length (GnuTLS has already
 * encrypted that record and only resumes sending it). The plaintext path does not change.
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/td_alloc.h"
#include "core/td_base64.h"
#include "http/td_ws.h"

static const char nats_connect[] =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n";

/* conn_name describes c for error messages (static buffer: used right before exiting). */
static const char *conn_name(const struct lg_conn *c)
{
    static char name[48];
    if (c->is_pub)
        return "publisher";
    snprintf(name, sizeof(name), "subscriber %" PRIu32, c->id);
    return name;
}

/* ---- WebSocket client frames ---- */

static void ws_send(struct lg *g, struct lg_conn *c, uint8_t opcode, const void *p, size_t n)
{
    lg_ws_append(&c->out, &g->mask_state, opcode, p, n);
}

/* ---- connection state ---- */

static void conn_ready(struct lg *g, struct lg_conn *c)
{
    if (c->state == LG_ST_READY)
        return;
    c->state = LG_ST_READY;
    g->inflight--;
    g->last_progress = g->now;
    g->t_last_ready = g->now;
    if (c->is_pub)
        g->pub_ready = true;
    else
        g->ready_subs++;
}

/* on_reply handles a centrifuge reply (JSON or protobuf) with the given id; err is the
 * error's text, NULL when the reply carries none. */
static void on_reply(struct lg *g, struct lg_conn *c, uint64_t id, const char *err, int errlen)
{
    if (c->is_pub) {
        if (id == 1) {
            if (err != NULL)
                lg_fail("publisher: connect rejected: %.*s", errlen, err);
            conn_ready(g, c);
            return;
        }
        g->pub_replies++;
        if (err != NULL)
            lg_fail("publisher: publish rejected: %.*s", errlen, err);
        return;
    }
    if (err != NULL)
        lg_fail("%s: %s rejected: %.*s", conn_name(c), id == 1 ? "connect" : "subscribe", errlen,
                err);
    if (id == 2 && c->state == LG_ST_PROTO)
        conn_ready(g, c);
}

/* ---- deliveries ---- */

/* scan_deliveries counts the publication payloads in p[0..n) (lg_scan_deliveries) and
 * credits them to g and c. */
static uint32_t scan_deliveries(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
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

/* ---- centrifuge JSON ---- */

static void json_line(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (n >= 7 && memcmp(p, "{\"push\"", 7) == 0) {
        if (c->is_pub)
            return;
        if (scan_deliveries(g, c, p, n) == 0 && memmem(p, n, "\"disconnect\":", 13) != NULL)
            lg_fail("%s: server sent %.*s", conn_name(c), (int)(n > 200 ? 200 : n), p);
        return;
    }
    if (n == 2 && p[0] == '{' && p[1] == '}') { /* server ping */
        ws_send(g, c, TD_WS_OP_TEXT, "{}", 2);
        return;
    }
    if (n > 6 && memcmp(p, "{\"id\":", 6) == 0) {
        uint64_t id = 0;
        if (lg_parse_u64(p + 6, p + n, &id) == NULL)
            lg_fail("%s: malformed reply %.*s", conn_name(c), (int)(n > 200 ? 200 : n), p);
        const uint8_t *e = memmem(p, n, "\"error\":", 8);
        if (e != NULL)
            on_reply(g, c, id, (const char *)e, (int)(p + n - e > 200 ? 200 : p + n - e));
        else
            on_reply(g, c, id, NULL, 0);
        return;
    }
    if (!c->is_pub)
        scan_deliveries(g, c, p, n);
}

static void json_message(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *e = nl != NULL ? nl : end;
        json_line(g, c, p, (size_t)(e - p));
        p = e + 1;
    }
}

/* ---- centrifuge protobuf ---- */

static bool pb_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *i < n && shift < 64; shift += 7) {
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7Fu) << shift;
        if ((b & 0x80u) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

static void pb_put_varint(struct td_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        td_buf_append_byte(b, (uint8_t)(v | 0x80u));
        v >>= 7;
    }
    td_buf_append_byte(b, (uint8_t)v);
}

static size_t pb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* pb_fields walks the fields of message p[0..n) and reports each length-delimited field
 * number (1..15) in ld[f] and each varint in vi[f]. Returns false if malformed. */
static bool pb_fields(const uint8_t *p, size_t n, const uint8_t *ld[16], size_t ldn[16],
                      uint64_t vi[16])
{
    size_t i = 0;
    while (i < n) {
        uint64_t key, v;
        if (!pb_varint(p, n, &i, &key))
            return false;
        uint64_t f = key >> 3;
        switch (key & 7u) {
        case 0:
            if (!pb_varint(p, n, &i, &v))
                return false;
            if (f < 16)
                vi[f] = v;
            break;
        case 1:
            if (n - i < 8)
                return false;
            i += 8;
            break;
        case 5:
            if (n - i < 4)
                return false;
            i += 4;
            break;
        case 2:
            if (!pb_varint(p, n, &i, &v) || v > n - i)
                return false;
            if (f < 16) {
                ld[f] = p + i;
                ldn[f] = (size_t)v;
            }
            i += (size_t)v;
            break;
        default:
            return false;
        }
    }
    return true;
}

static void pb_reply(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    const uint8_t *ld[16] = {0};
    size_t ldn[16] = {0};
    uint64_t vi[16] = {0};
    if (!pb_fields(p, n, ld, ldn, vi))
        lg_fail("%s: malformed protobuf Reply", conn_name(c));
    if (ld[4] != NULL) { /* push */
        if (!c->is_pub)
            scan_deliveries(g, c, ld[4], ldn[4]);
        return;
    }
    if (ld[2] == NULL) {
        on_reply(g, c, vi[1], NULL, 0);
        return;
    }
    const uint8_t *eld[16] = {0};
    size_t eldn[16] = {0};
    uint64_t evi[16] = {0};
    char text[256];
    if (!pb_fields(ld[2], ldn[2], eld, eldn, evi))
        snprintf(text, sizeof(text), "malformed error");
    else
        snprintf(text, sizeof(text), "code %" PRIu64 " %.*s", evi[1],
                 (int)(eldn[2] > 200 ? 200 : eldn[2]), eld[2] != NULL ? (const char *)eld[2] : "");
    on_reply(g, c, vi[1], text, (int)strlen(text));
}

static void pb_message(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t len;
        if (!pb_varint(p, n, &i, &len) || len > n - i)
            lg_fail("%s: malformed protobuf frame", conn_name(c));
        if (len == 0) { /* server ping: answer with an empty Command */
            static const uint8_t empty = 0;
            ws_send(g, c, TD_WS_OP_BINARY, &empty, 1);
            continue;
        }
        pb_reply(g, c, p + i, (size_t)len);
        i += (size_t)len;
    }
}

/* pb_append_command appends one length-delimited Command {id, <field> {channel, data}} to b;
 * field 4 (connect) carries an empty message, data may be NULL. */
static void pb_append_command(struct td_buf *b, uint64_t id, unsigned field, const char *channel,
                              const void *data, size_t dlen)
{
    size_t chl = channel != NULL ? strlen(channel) : 0;
    size_t inner = 0;
    if (channel != NULL)
        inner += 1 + pb_varint_len(chl) + chl;
    if (data != NULL)
        inner += 1 + pb_varint_len(dlen) + dlen;
    size_t total = 1 + pb_varint_len(id) + 1 + pb_varint_len(inner) + inner;
    pb_put_varint(b, total);
    td_buf_append_byte(b, 0x08);
    pb_put_varint(b, id);
    td_buf_append_byte(b, (uint8_t)(field << 3 | 2u));
    pb_put_varint(b, inner);
    if (channel != NULL) {
        td_buf_append_byte(b, 0x0A);
        pb_put_varint(b, chl);
        td_buf_append(b, channel, chl);
    }
    if (data != NULL) {
        td_buf_append_byte(b, 0x12);
        pb_put_varint(b, dlen);
        td_buf_append(b, data, dlen);
    }
}

/* ---- NATS ---- */

static void nats_send_setup(struct lg *g, struct lg_conn *c)
{
    struct td_buf *s = &g->scratch;
    td_buf_reset(s);
    td_buf_append_str(s, nats_connect);
    if (!c->is_pub)
        td_buf_appendf(s, "SUB bench%" PRIu32 " 1\r\n", c->channel);
    td_buf_append_str(s, "PING\r\n");
    ws_send(g, c, TD_WS_OP_BINARY, s->data, s->len);
    c->nats_connect_sent = true;
}

/* last_number parses the last space-separated token of line[0..n) as a length. */
static bool last_number(const uint8_t *line, size_t n, uint64_t *out)
{
    size_t i = n;
    while (i > 0 && line[i - 1] != ' ')
        i--;
    const uint8_t *e = lg_parse_u64(line + i, line + n, out);
    return e == line + n;
}

/* nats_parse handles every complete protocol line or message in p[0..n) and returns how
 * many bytes it consumed; the rest is an incomplete line or message. */
static size_t nats_parse(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        const uint8_t *lf = memchr(p + off, '\n', n - off);
        if (lf == NULL) {
            if (n - off > 65536)
                lg_fail("%s: NATS protocol line longer than 64 KiB", conn_name(c));
            break;
        }
        const uint8_t *line = p + off;
        size_t next = (size_t)(lf - p) + 1;
        size_t len = (size_t)(lf - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len >= 4 && (memcmp(line, "MSG ", 4) == 0 || memcmp(line, "HMSG", 4) == 0)) {
            uint64_t size;
            if (!last_number(line, len, &size) || size > LG_MAX_MESSAGE)
                lg_fail("%s: malformed NATS line %.*s", conn_name(c), (int)(len > 200 ? 200 : len),
                        line);
            if (n - next < size + 2)
                break; /* the payload has not fully arrived */
            if (!c->is_pub)
                scan_deliveries(g, c, p + next, (size_t)size);
            off = next + (size_t)size + 2;
            continue;
        }
        if (len == 4 && memcmp(line, "PING", 4) == 0) {
            ws_send(g, c, TD_WS_OP_BINARY, "PONG\r\n", 6);
        } else if (len == 4 && memcmp(line, "PONG", 4) == 0) {
            if (c->state == LG_ST_PROTO)
                conn_ready(g, c);
        } else if (len >= 4 && memcmp(line, "INFO", 4) == 0) {
            if (!c->nats_connect_sent)
                nats_send_setup(g, c);
        } else if (len >= 4 && memcmp(line, "-ERR", 4) == 0) {
            lg_fail("%s: server said %.*s", conn_name(c), (int)(len > 200 ? 200 : len), line);
        } /* +OK and anything else: ignored */
        off = next;
    }
    return off;
}

static void nats_message(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    if (c->nats.len == 0) {
        size_t used = nats_parse(g, c, p, n);
        if (used < n)
            td_buf_append(&c->nats, p + used, n - used);
    } else {
        td_buf_append(&c->nats, p, n);
        size_t used = nats_parse(g, c, c->nats.data, c->nats.len);
        td_buf_consume(&c->nats, used);
        if (c->nats.len == 0 && c->nats.cap > 65536)
            td_buf_free(&c->nats);
    }
    if (c->nats.len > LG_MAX_MESSAGE)
        lg_fail("%s: NATS backlog above %d bytes", conn_name(c), LG_MAX_MESSAGE);
}

/* ---- messages and frames ---- */

static void on_message(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    switch (g->o.proto) {
    case LG_PROTO_JSON:
        json_message(g, c, p, n);
        break;
    case LG_PROTO_PB:
        pb_message(g, c, p, n);
        break;
    case LG_PROTO_RAW:
        if (!c->is_pub)
            scan_deliveries(g, c, p, n);
        break;
    case LG_PROTO_NATS:
        nats_message(g, c, p, n);
        break;
    }
}

static void ws_frame(struct lg *g, struct lg_conn *c, uint8_t b0, const uint8_t *p, size_t n)
{
    uint8_t op = b0 & 0x0Fu;
    bool fin = (b0 & 0x80u) != 0;
    if (b0 & 0x70u)
        lg_fail("%s: frame with reserved bits set (no extension was negotiated)", conn_name(c));
    switch (op) {
    case TD_WS_OP_PING:
        if (n > TD_WS_MAX_CONTROL_PAYLOAD || !fin)
            lg_fail("%s: malformed ping frame", conn_name(c));
        ws_send(g, c, TD_WS_OP_PONG, p, n);
        return;
    case TD_WS_OP_PONG:
        return;
    case TD_WS_OP_CLOSE:
        if (g->closing)
            return;
        if (n >= 2)
            lg_fail("%s: server closed the WebSocket: code %u %.*s", conn_name(c),
                    (unsigned)(p[0] << 8 | p[1]), (int)(n - 2), (const char *)p + 2);
        lg_fail("%s: server closed the WebSocket", conn_name(c));
    case TD_WS_OP_TEXT:
    case TD_WS_OP_BINARY:
        if (c->frag_op != 0)
            lg_fail("%s: data frame inside a fragmented message", conn_name(c));
        if (fin) {
            on_message(g, c, p, n);
            return;
        }
        c->frag_op = op;
        td_buf_append(&c->frag, p, n);
        return;
    case TD_WS_OP_CONT:
        if (c->frag_op == 0)
            lg_fail("%s: continuation frame without a message", conn_name(c));
        if (c->frag.len + n > LG_MAX_MESSAGE)
            lg_fail("%s: message above %d bytes", conn_name(c), LG_MAX_MESSAGE);
        td_buf_append(&c->frag, p, n);
        if (fin) {
            on_message(g, c, c->frag.data, c->frag.len);
            c->frag_op = 0;
            td_buf_free(&c->frag);
        }
        return;
    default:
        lg_fail("%s: frame with unknown opcode %u", conn_name(c), (unsigned)op);
    }
}

/* ws_parse handles every complete server frame in p[0..n) and returns the bytes consumed. */
static size_t ws_parse(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 2) {
        uint8_t b0 = p[off];
        size_t hl;
        uint64_t len;
        int h = lg_ws_frame_head(p + off, n - off, &hl, &len);
        if (h < 0)
            lg_fail("%s: server frame is masked", conn_name(c));
        if (h == 0)
            break;
        if (len > LG_MAX_MESSAGE)
            lg_fail("%s: frame of %" PRIu64 " bytes is above the %d cap", conn_name(c), len,
                    LG_MAX_MESSAGE);
        if (n - off - hl < len)
            break;
        ws_frame(g, c, b0, p + off + hl, (size_t)len);
        off += hl + (size_t)len;
    }
    return off;
}

/* ---- connect and handshake ---- */

static void conn_key(const struct lg *g, const struct lg_conn *c, char out[25])
{
    uint8_t raw[16];
    memcpy(raw, g->key_salt, 12);
    memcpy(raw + 12, &c->id, 4);
    td_base64_encode(raw, 16, out);
}

static void conn_epoll(struct lg *g, struct lg_conn *c, uint8_t events)
{
    if (events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.u32 = c->id};
    if (epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        lg_fail("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

/* tls_flush is lg_conn_flush's writing loop for a TLS connection. */
static void tls_flush(struct lg *g, struct lg_conn *c)
{
    while (c->out_off < c->out.len) {
        size_t len = c->tls_retry != 0 ? c->tls_retry : c->out.len - c->out_off;
        ssize_t w = gnutls_record_send(c->tls, c->out.data + c->out_off, len);
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
            c->tls_retry = len; /* the record is encrypted: resume it with the same length */
            if (w == GNUTLS_E_AGAIN)
                break;
            continue;
        }
        c->tls_retry = 0;
        if (w < 0) {
            if (g->closing) {
                c->out_off = c->out.len;
                break;
            }
            lg_fail("%s: TLS write: %s", conn_name(c), gnutls_strerror((int)w));
        }
        c->out_off += (size_t)w;
    }
}

/* plain_flush is lg_conn_flush's writing loop for a plaintext connection. */
static void plain_flush(struct lg *g, struct lg_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            if (g->closing) {
                c->out_off = c->out.len;
                break;
            }
            lg_fail("%s: write: %s", conn_name(c), strerror(errno));
        }
        c->out_off += (size_t)w;
    }
}

void lg_conn_flush(struct lg *g, struct lg_conn *c)
{
    if (c->tls != NULL)
        tls_flush(g, c);
    else
        plain_flush(g, c);
    if (c->out_off == c->out.len) {
        c->out.len = 0;
        c->out_off = 0;
        if (c->out.cap > (1u << 20) || (!c->is_pub && c->state == LG_ST_READY))
            td_buf_free(&c->out); /* idle subscribers keep no output memory */
    }
    conn_epoll(g, c, (uint8_t)(EPOLLIN | (c->out_off < c->out.len ? EPOLLOUT : 0)));
}

static void request_path(const struct lg *g, const struct lg_conn *c, char *out, size_t cap)
{
    const char *path = g->o.path;
    switch (g->o.proto) {
    case LG_PROTO_JSON:
    case LG_PROTO_PB:
        snprintf(out, cap, "%s", path != NULL ? path : "/connection/websocket");
        return;
    case LG_PROTO_NATS:
        snprintf(out, cap, "%s", path != NULL ? path : "/");
        return;
    case LG_PROTO_RAW: {
        size_t pl = path != NULL ? strlen(path) : 0;
        if (pl > 0 && path[pl - 1] == '/')
            pl--;
        if (c->is_pub)
            snprintf(out, cap, "%.*s/pub", (int)pl, path != NULL ? path : "");
        else
            snprintf(out, cap, "%.*s/sub?ch=bench%" PRIu32, (int)pl, path != NULL ? path : "",
                     c->channel);
        return;
    }
    }
}

/* send_upgrade queues the HTTP upgrade request on an open TCP (or TLS) connection. */
static void send_upgrade(struct lg *g, struct lg_conn *c)
{
    char path[600], key[25];
    request_path(g, c, path, sizeof(path));
    conn_key(g, c, key);
    td_buf_appendf(&c->out,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                   path, g->hostport, key,
                   g->o.proto == LG_PROTO_PB ? "Sec-WebSocket-Protocol: centrifuge-protobuf\r\n"
                                             : "");
    c->state = LG_ST_HANDSHAKE;
    lg_conn_flush(g, c);
}

/* tls_handshake advances c's TLS handshake; once it completes, the upgrade request goes out. */
static void tls_handshake(struct lg *g, struct lg_conn *c)
{
    int rv;
    do
        rv = gnutls_handshake(c->tls);
    while (rv < 0 && rv != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rv));
    if (rv == GNUTLS_E_AGAIN) {
        conn_epoll(g, c, (uint8_t)(gnutls_record_get_direction(c->tls) == 1 ? EPOLLOUT : EPOLLIN));
        return;
    }
    if (rv < 0)
        lg_fail("%s: TLS handshake with %s: %s (does the server speak TLS on TCP?)", conn_name(c),
                g->hostport, gnutls_strerror(rv));
    if (c->is_pub) { /* once per run: what the sessions negotiated */
        char *desc = gnutls_session_get_desc(c->tls);
        fprintf(stderr, "td_loadgen: TLS %s\n", desc != NULL ? desc : "?");
        gnutls_free(desc);
    }
    send_upgrade(g, c);
}

/* tls_start creates c's GnuTLS client session (no certificate verification, ALPN
 * http/1.1, SNI when the host is a name) and starts the handshake. */
static void tls_start(struct lg *g, struct lg_conn *c)
{
    int rv = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (rv < 0)
        lg_fail("gnutls_init: %s", gnutls_strerror(rv));
    if ((rv = gnutls_priority_set(c->tls, g->tls_prio)) < 0 ||
        (rv = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, g->tls_cred)) < 0)
        lg_fail("TLS session setup: %s", gnutls_strerror(rv));
    static const char alpn_h1[] = "http/1.1";
    gnutls_datum_t alpn = {.data = (unsigned char *)(uintptr_t)alpn_h1,
                           .size = (unsigned)(sizeof(alpn_h1) - 1)};
    if ((rv = gnutls_alpn_set_protocols(c->tls, &alpn, 1, 0)) < 0)
        lg_fail("gnutls_alpn_set_protocols: %s", gnutls_strerror(rv));
    struct in6_addr ip;
    if (inet_pton(AF_INET, g->o.host, &ip) != 1 && inet_pton(AF_INET6, g->o.host, &ip) != 1 &&
        (rv = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, g->o.host, strlen(g->o.host))) < 0)
        lg_fail("gnutls_server_name_set: %s", gnutls_strerror(rv));
    gnutls_transport_set_int(c->tls, c->fd);
    gnutls_handshake_set_timeout(c->tls, 0); /* --timeout's stall check bounds it instead */
    c->state = LG_ST_TLS;
    tls_handshake(g, c);
}

static void tcp_connected(struct lg *g, struct lg_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0)
        lg_fail("%s: connect to %s: %s", conn_name(c), g->hostport, strerror(err));
    if (g->o.tls)
        tls_start(g, c);
    else
        send_upgrade(g, c);
}

/* ws_open sends the protocol's setup on a freshly opened WebSocket. */
static void ws_open(struct lg *g, struct lg_conn *c)
{
    struct td_buf *s = &g->scratch;
    char ch[32];
    snprintf(ch, sizeof(ch), "bench%" PRIu32, c->channel);
    c->state = LG_ST_PROTO;
    td_buf_reset(s);
    switch (g->o.proto) {
    case LG_PROTO_JSON:
        td_buf_append_str(s, "{\"id\":1,\"connect\":{}}");
        if (!c->is_pub)
            td_buf_appendf(s, "\n{\"id\":2,\"subscribe\":{\"channel\":\"%s\"}}", ch);
        ws_send(g, c, TD_WS_OP_TEXT, s->data, s->len);
        break;
    case LG_PROTO_PB:
        pb_append_command(s, 1, 4, NULL, NULL, 0);
        if (!c->is_pub)
            pb_append_command(s, 2, 5, ch, NULL, 0);
        ws_send(g, c, TD_WS_OP_BINARY, s->data, s->len);
        break;
    case LG_PROTO_RAW:
        conn_ready(g, c);
        break;
    case LG_PROTO_NATS:
        break; /* CONNECT goes out when the server's INFO arrives */
    }
}

static bool header_is(const uint8_t *name, size_t nlen, const char *want)
{
    return nlen == strlen(want) && strncasecmp((const char *)name, want, nlen) == 0;
}

static void handshake_input(struct lg *g, struct lg_conn *c)
{
    const uint8_t *p = c->in.data;
    const uint8_t *end = memmem(p, c->in.len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->in.len > LG_MAX_HANDSHAKE)
            lg_fail("%s: handshake response head above %d bytes", conn_name(c), LG_MAX_HANDSHAKE);
        return;
    }
    size_t head = (size_t)(end - p) + 4;
    const uint8_t *eol = memmem(p, head, "\r\n", 2);
    size_t sl = (size_t)(eol - p);
    if (sl < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0)
        lg_fail("%s: handshake rejected: %.*s", conn_name(c), (int)(sl > 200 ? 200 : sl), p);
    char key[25], want[29];
    conn_key(g, c, key);
    td_ws_accept_key(key, 24, want);
    bool accept_ok = false, proto_ok = false;
    const uint8_t *line = eol + 2;
    while (line < end) {
        const uint8_t *le = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        const uint8_t *colon = memchr(line, ':', (size_t)(le - line));
        if (colon != NULL) {
            const uint8_t *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
            if (header_is(line, nl, "sec-websocket-accept"))
                accept_ok = vl == 28 && memcmp(v, want, 28) == 0;
            else if (header_is(line, nl, "sec-websocket-protocol"))
                proto_ok = vl == 19 && memcmp(v, "centrifuge-protobuf", 19) == 0;
        }
        line = le + 2;
    }
    if (!accept_ok)
        lg_fail("%s: handshake: missing or wrong Sec-WebSocket-Accept", conn_name(c));
    if (g->o.proto == LG_PROTO_PB && !proto_ok)
        lg_fail("%s: handshake: server did not select subprotocol centrifuge-protobuf",
                conn_name(c));
    td_buf_consume(&c->in, head);
    ws_open(g, c);
    if (c->in.len > 0) {
        size_t used = ws_parse(g, c, c->in.data, c->in.len);
        td_buf_consume(&c->in, used);
    }
    if (c->in.len == 0)
        td_buf_free(&c->in);
}

/* conn_input handles n bytes just read into g->rbuf. */
static void conn_input(struct lg *g, struct lg_conn *c, size_t n)
{
    if (c->state == LG_ST_HANDSHAKE) {
        td_buf_append(&c->in, g->rbuf, n);
        handshake_input(g, c);
    } else if (c->in.len > 0) {
        td_buf_append(&c->in, g->rbuf, n);
        size_t used = ws_parse(g, c, c->in.data, c->in.len);
        td_buf_consume(&c->in, used);
        if (c->in.len == 0)
            td_buf_free(&c->in);
    } else {
        size_t used = ws_parse(g, c, g->rbuf, n);
        if (used < n)
            td_buf_append(&c->in, g->rbuf + used, n - used);
    }
}

/* tls_readable reads records until GnuTLS needs more from the socket (or the shared buffer
 * is full, then handles it and goes on). What arrived before a close or an error is handled
 * first, so a close frame's reason is reported. */
static void tls_readable(struct lg *g, struct lg_conn *c)
{
    for (;;) {
        size_t n = 0;
        ssize_t r = 0;
        while (n < LG_READ_BUF) {
            r = gnutls_record_recv(c->tls, g->rbuf + n, LG_READ_BUF - n);
            if (r > 0)
                n += (size_t)r;
            else if (r != GNUTLS_E_INTERRUPTED && r != GNUTLS_E_WARNING_ALERT_RECEIVED)
                break;
        }
        g->now = lg_now();
        if (n > 0)
            conn_input(g, c, n);
        if (r == GNUTLS_E_AGAIN)
            break;
        if (r <= 0) {
            if (g->closing)
                return;
            if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION)
                lg_fail("%s: connection closed by the server%s", conn_name(c),
                        c->state == LG_ST_HANDSHAKE ? " during the handshake" : "");
            lg_fail("%s: TLS read: %s", conn_name(c), gnutls_strerror((int)r));
        }
    }
    if (c->out_off < c->out.len)
        lg_conn_flush(g, c);
}

static void conn_readable(struct lg *g, struct lg_conn *c)
{
    if (c->tls != NULL) {
        tls_readable(g, c);
        return;
    }
    for (;;) {
        ssize_t r = recv(c->fd, g->rbuf, LG_READ_BUF, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            if (g->closing)
                return;
            lg_fail("%s: read: %s", conn_name(c), strerror(errno));
        }
        if (r == 0) {
            if (g->closing)
                return;
            lg_fail("%s: connection closed by the server%s", conn_name(c),
                    c->state == LG_ST_HANDSHAKE ? " during the handshake" : "");
        }
        g->now = lg_now();
        size_t n = (size_t)r;
        conn_input(g, c, n);
        if (n < LG_READ_BUF)
            break;
    }
    if (c->out_off < c->out.len)
        lg_conn_flush(g, c);
}

void lg_conn_start(struct lg *g, struct lg_conn *c)
{
    int fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        lg_fail("socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (g->o.nsrc > 0) {
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        const struct sockaddr_in *src = &g->o.src[c->id % g->o.nsrc];
        if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &src->sin_addr, a, sizeof(a));
            lg_fail("bind to source address %s: %s", a, strerror(errno));
        }
    }
    c->fd = fd;
    c->state = LG_ST_TCP;
    if (g->t_first_connect == 0)
        g->t_first_connect = lg_now();
    if (connect(fd, (const struct sockaddr *)&g->addr, g->addrlen) != 0 && errno != EINPROGRESS)
        lg_fail("%s: connect to %s: %s%s", conn_name(c), g->hostport, strerror(errno),
                errno == EADDRNOTAVAIL ? " (out of ephemeral ports: add --src-ips)" : "");
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = c->id};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        lg_fail("epoll_ctl: %s", strerror(errno));
    c->events = EPOLLOUT;
    g->inflight++;
}

void lg_poll(struct lg *g, int timeout_ms)
{
    struct epoll_event evs[1024];
    int n = epoll_wait(g->ep, evs, 1024, timeout_ms);
    if (n < 0 && errno != EINTR)
        lg_fail("epoll_wait: %s", strerror(errno));
    g->now = lg_now();
    for (int i = 0; i < n; i++) {
        struct lg_conn *c = &g->conns[evs[i].data.u32];
        uint32_t e = evs[i].events;
        if (c->state == LG_ST_TCP) {
            tcp_connected(g, c);
            continue;
        }
        if (c->state == LG_ST_TLS) {
            tls_handshake(g, c);
            continue;
        }
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
            conn_readable(g, c);
        if ((e & EPOLLOUT) && c->out_off < c->out.len)
            lg_conn_flush(g, c);
    }
}

/* ---- publications ---- */

void lg_pub_append(struct lg *g, uint32_t ch)
{
    struct lg_conn *c = &g->conns[g->o.subs];
    size_t size = g->o.payload;
    char *pl = g->payload_buf;
    int k = snprintf(pl, size + 64, "{\"t\":%" PRIu64 ",\"s\":%" PRIu64, lg_now() - g->t0, g->seq);
    size_t len = (size_t)k;
    if (len + 8 <= size) { /* {"t":T,"s":S,"p":"xxx"} */
        memcpy(pl + len, ",\"p\":\"", 6);
        memset(pl + len + 6, 'x', size - len - 8);
        memcpy(pl + size - 2, "\"}", 2);
    } else if (len + 1 <= size) { /* too small for padding field: pad with spaces */
        memset(pl + len, ' ', size - len - 1);
        pl[size - 1] = '}';
    } else {
        lg_fail("--payload %zu is too small for the timestamp and sequence (needs %zu)", size,
                len + 1);
    }
    struct td_buf *s = &g->scratch;
    td_buf_reset(s);
    switch (g->o.proto) {
    case LG_PROTO_JSON:
        td_buf_appendf(
            s, "{\"id\":%" PRIu64 ",\"publish\":{\"channel\":\"bench%" PRIu32 "\",\"data\":",
            g->next_id++, ch);
        td_buf_append(s, pl, size);
        td_buf_append(s, "}}", 2);
        ws_send(g, c, TD_WS_OP_TEXT, s->data, s->len);
        break;
    case LG_PROTO_PB: {
        char name[32];
        snprintf(name, sizeof(name), "bench%" PRIu32, ch);
        pb_append_command(s, g->next_id++, 7, name, pl, size);
        ws_send(g, c, TD_WS_OP_BINARY, s->data, s->len);
        break;
    }
    case LG_PROTO_RAW:
        td_buf_appendf(s, "bench%" PRIu32 "\n", ch);
        td_buf_append(s, pl, size);
        ws_send(g, c, TD_WS_OP_TEXT, s->data, s->len);
        break;
    case LG_PROTO_NATS:
        td_buf_appendf(s, "PUB bench%" PRIu32 " %zu\r\n", ch, size);
        td_buf_append(s, pl, size);
        td_buf_append(s, "\r\n", 2);
        ws_send(g, c, TD_WS_OP_BINARY, s->data, s->len);
        break;
    }
    g->seq++;
}

/* ---- setup and teardown ---- */

void lg_net_init(struct lg *g)
{
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    if (g->ep < 0)
        lg_fail("epoll_create1: %s", strerror(errno));
    g->rbuf = td_xmalloc(LG_READ_BUF);
    g->payload_buf = td_xmalloc((size_t)g->o.payload + 64);
    td_buf_init(&g->scratch);
    if (getrandom(g->key_salt, sizeof(g->key_salt), 0) != (ssize_t)sizeof(g->key_salt))
        lg_fail("getrandom: %s", strerror(errno));
    memcpy(&g->mask_state, g->key_salt, 4);
    g->mask_state |= 1u; /* xorshift needs a non-zero state */
    g->next_id = 3;      /* 1 is connect, 2 subscribe */
    if (g->o.tls) {
        int rv = gnutls_certificate_allocate_credentials(&g->tls_cred);
        if (rv < 0 || (rv = gnutls_priority_init(&g->tls_prio, NULL, NULL)) < 0)
            lg_fail("GnuTLS setup: %s", gnutls_strerror(rv));
        /* no trust store and no gnutls_session_set_verify_cert: the certificate is not
         * checked (a loopback benchmark against a self-signed tandem gencert) */
    }
    uint32_t n = g->o.subs + 1;
    g->conns = td_xcalloc(n, sizeof(*g->conns));
    for (uint32_t i = 0; i < n; i++) {
        struct lg_conn *c = &g->conns[i];
        c->fd = -1;
        c->id = i;
        c->is_pub = i == g->o.subs;
        c->channel = c->is_pub ? 0 : i % g->o.channels;
        td_buf_init(&c->in);
        td_buf_init(&c->out);
        td_buf_init(&c->frag);
        td_buf_init(&c->nats);
    }
}

void lg_net_free(struct lg *g)
{
    g->closing = true;
    for (uint32_t i = 0; g->conns != NULL && i <= g->o.subs; i++) {
        struct lg_conn *c = &g->conns[i];
        if (c->fd >= 0) {
            /* reset rather than close: back-to-back runs must not leave tens of thousands of
             * client ports in TIME_WAIT, which slows connect()'s port search or exhausts it */
            struct linger lin = {.l_onoff = 1, .l_linger = 0};
            (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
            close(c->fd);
        }
        if (c->tls != NULL)
            gnutls_deinit(c->tls);
        c->tls = NULL;
        td_buf_free(&c->in);
        td_buf_free(&c->out);
        td_buf_free(&c->frag);
        td_buf_free(&c->nats);
    }
    free(g->conns);
    g->conns = NULL;
    free(g->rbuf);
    free(g->payload_buf);
    td_buf_free(&g->scratch);
    if (g->tls_cred != NULL)
        gnutls_certificate_free_credentials(g->tls_cred);
    if (g->tls_prio != NULL)
        gnutls_priority_deinit(g->tls_prio);
    g->tls_cred = NULL;
    g->tls_prio = NULL;
    if (g->ep >= 0)
        close(g->ep);
    g->ep = -1;
}
