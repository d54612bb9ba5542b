/*
 * wt_pub.c - td_wtload's publisher: one WebSocket connection to tandem speaking Centrifugo
 * JSON, sending exactly what td_loadgen's centrifuge-json publisher sends
 * ({"id":N,"publish":{"channel":"bench<c>","data":<payload>}} in one masked text frame per
 * publication), so a WebTransport run and a WebSocket run differ only in the subscribers'
 * transport. The server must allow client-side publishing (client.insecure, as in
 * bench/peers/tandem.json).
 */
#include "wtload.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/td_base64.h"
#include "http/td_ws.h"

static uint32_t mask_state = 0x9e3779b9u;

static void pub_epoll(struct wl *g, bool want_out)
{
    struct wl_pub *p = &g->pub;
    if (want_out == p->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.u32 = g->o.subs};
    if (epoll_ctl(g->ep, EPOLL_CTL_MOD, p->fd, &ev) != 0)
        lg_fail("epoll_ctl: %s", strerror(errno));
    p->want_out = want_out;
}

void wl_pub_flush(struct wl *g)
{
    struct wl_pub *p = &g->pub;
    while (p->out_off < p->out.len) {
        ssize_t w = send(p->fd, p->out.data + p->out_off, p->out.len - p->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            if (g->closing) {
                p->out_off = p->out.len;
                break;
            }
            lg_fail("publisher: write: %s", strerror(errno));
        }
        p->out_off += (size_t)w;
    }
    if (p->out_off == p->out.len) {
        p->out.len = 0;
        p->out_off = 0;
    }
    pub_epoll(g, p->out_off < p->out.len);
}

void wl_pub_start(struct wl *g)
{
    struct wl_pub *p = &g->pub;
    int fd = socket(g->ws_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        lg_fail("socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)&g->ws_addr, g->ws_addrlen) != 0)
        lg_fail("publisher: connect to TCP port %s: %s", g->o.ws_port, strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        lg_fail("publisher: non-blocking: %s", strerror(errno));
    p->fd = fd;
    td_buf_init(&p->in);
    td_buf_init(&p->out);
    uint8_t raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        lg_fail("getrandom: %s", strerror(errno));
    memcpy(&mask_state, raw, 4);
    mask_state |= 1u;
    td_base64_encode(raw, 16, p->key);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = g->o.subs};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        lg_fail("epoll_ctl: %s", strerror(errno));
    td_buf_appendf(&p->out,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   g->o.ws_path, g->authority, p->key);
    p->state = 1;
    p->next_id = 3;
    wl_pub_flush(g);
}

static void pub_line(struct wl *g, const uint8_t *p, size_t n)
{
    struct wl_pub *pb = &g->pub;
    if (n == 0)
        return;
    if (n == 2 && p[0] == '{' && p[1] == '}') {
        lg_ws_append(&pb->out, &mask_state, TD_WS_OP_TEXT, "{}", 2);
        return;
    }
    if (n > 6 && memcmp(p, "{\"id\":", 6) == 0) {
        uint64_t id = 0;
        lg_parse_u64(p + 6, p + n, &id);
        const uint8_t *e = memmem(p, n, "\"error\":", 8);
        if (e != NULL)
            lg_fail("publisher: %s rejected: %.*s", id == 1 ? "connect" : "publish",
                    (int)(p + n - e > 200 ? 200 : p + n - e), e);
        if (id == 1 && pb->state == 2) {
            pb->state = 3;
            g->last_progress = g->now;
        } else {
            pb->replies++;
        }
        return;
    }
    if (!g->closing && memmem(p, n, "\"disconnect\":", 13) != NULL)
        lg_fail("publisher: server sent %.*s", (int)(n > 200 ? 200 : n), p);
}

/* ws_parse handles every complete server frame in p[0..n); returns the bytes consumed. */
static size_t ws_parse(struct wl *g, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 2) {
        uint8_t b0 = p[off];
        size_t hl;
        uint64_t len;
        int h = lg_ws_frame_head(p + off, n - off, &hl, &len);
        if (h < 0)
            lg_fail("publisher: server frame is masked");
        if (h == 0)
            break;
        if (len > (64u << 20))
            lg_fail("publisher: frame of %" PRIu64 " bytes", len);
        if (n - off - hl < len)
            break;
        const uint8_t *m = p + off + hl;
        uint8_t op = b0 & 0x0Fu;
        if (op == TD_WS_OP_TEXT || op == TD_WS_OP_CONT || op == TD_WS_OP_BINARY) {
            const uint8_t *s = m, *end = m + len;
            while (s < end) {
                const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));
                const uint8_t *e = nl != NULL ? nl : end;
                pub_line(g, s, (size_t)(e - s));
                s = e + 1;
            }
        } else if (op == TD_WS_OP_PING) {
            lg_ws_append(&g->pub.out, &mask_state, TD_WS_OP_PONG, m, (size_t)len);
        } else if (op == TD_WS_OP_CLOSE && !g->closing) {
            lg_fail("publisher: the server closed the WebSocket");
        }
        off += hl + (size_t)len;
    }
    return off;
}

static void handshake_input(struct wl *g)
{
    struct wl_pub *p = &g->pub;
    const uint8_t *end = memmem(p->in.data, p->in.len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (p->in.len > 16384)
            lg_fail("publisher: handshake response head above 16 KiB");
        return;
    }
    if (p->in.len < 12 || memcmp(p->in.data, "HTTP/1.1 101", 12) != 0)
        lg_fail("publisher: handshake rejected: %.*s",
                (int)(end - p->in.data > 200 ? 200 : end - p->in.data), (const char *)p->in.data);
    td_buf_consume(&p->in, (size_t)(end - p->in.data) + 4);
    p->state = 2;
    static const char hello[] = "{\"id\":1,\"connect\":{}}";
    lg_ws_append(&p->out, &mask_state, TD_WS_OP_TEXT, hello, sizeof(hello) - 1);
}

void wl_pub_event(struct wl *g, uint32_t events)
{
    struct wl_pub *p = &g->pub;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (;;) {
            ssize_t r = recv(p->fd, g->rbuf, (size_t)WL_RECV_BATCH * WL_PKT_BUF, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                if (errno == EINTR)
                    continue;
                if (g->closing)
                    return;
                lg_fail("publisher: read: %s", strerror(errno));
            }
            if (r == 0) {
                if (g->closing)
                    return;
                lg_fail("publisher: connection closed by the server");
            }
            td_buf_append(&p->in, g->rbuf, (size_t)r);
            if (p->state == 1)
                handshake_input(g);
            if (p->state >= 2) {
                size_t used = ws_parse(g, p->in.data, p->in.len);
                td_buf_consume(&p->in, used);
            }
        }
    }
    wl_pub_flush(g);
}

void wl_pub_append(struct wl *g, uint32_t ch)
{
    size_t size = g->o.payload;
    char *pl = g->payload_buf;
    int k = snprintf(pl, size + 64, "{\"t\":%" PRIu64 ",\"s\":%" PRIu64, lg_now() - g->t0, g->seq);
    size_t len = (size_t)k;
    if (len + 8 <= size) { /* {"t":T,"s":S,"p":"xxx"} */
        memcpy(pl + len, ",\"p\":\"", 6);
        memset(pl + len + 6, 'x', size - len - 8);
        memcpy(pl + size - 2, "\"}", 2);
    } else if (len + 1 <= size) {
        memset(pl + len, ' ', size - len - 1);
        pl[size - 1] = '}';
    } else {
        lg_fail("--payload %zu is too small for the timestamp and sequence (needs %zu)", size,
                len + 1);
    }
    struct td_buf *s = &g->scratch;
    td_buf_reset(s);
    td_buf_appendf(s, "{\"id\":%" PRIu64 ",\"publish\":{\"channel\":\"bench%" PRIu32 "\",\"data\":",
                   g->pub.next_id++, ch);
    td_buf_append(s, pl, size);
    td_buf_append(s, "}}", 2);
    lg_ws_append(&g->pub.out, &mask_state, TD_WS_OP_TEXT, s->data, s->len);
    g->seq++;
}

void wl_pub_free(struct wl *g)
{
    struct wl_pub *p = &g->pub;
    if (p->fd >= 0) {
        struct linger lin = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
        close(p->fd);
    }
    p->fd = -1;
    td_buf_free(&p->in);
    td_buf_free(&p->out);
}
