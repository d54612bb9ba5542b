/*
 * td_yjs_conn.c - y-websocket sessions on the TCP server (see td_conn.h and
 * engine/td_yroom.h). GET /yjs/<room> upgrades to a WebSocket session of a y-websocket
 * client (binary frames); such a connection is in state WS with a room handle (yconn)
 * instead of a Centrifugo client. It is pinged every 30 s (closed when no pong came since
 * the previous ping) and gets an empty awareness message when nothing was sent to it for
 * 15 s, so that an idle client with no awareness state of its own does not hit
 * y-websocket's 30 s message timeout. Its one deadline (td_conn.deadline) is the earlier of
 * the next ping and the end of the quiet period.
 */
#include "io/td_conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/td_jwt.h"
#include "core/td_alloc.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "http/td_http1.h"
#include "http/td_ws.h"

/* Keepalive cadence: a WebSocket ping every 30 s, an empty awareness update after 15 s of
 * output silence (see the top of this file). */
#define YJS_PING_MS 30000
#define YJS_QUIET_MS 15000

static int yjs_send(void *t, struct td_rbuf *msg)
{
    struct td_conn *c = t;
    if (c->state != TD_CONN_WS)
        return 0;
    const struct td_config *cfg = c->srv->cfg;
    if (c->out_bytes + msg->len > cfg->queue_max_size + cfg->yjs_max_document_size) {
        td_log_info("slow yjs client disconnected", "queued=%llu",
                    (unsigned long long)c->out_bytes);
        td_ws_conn_close(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    uint8_t hdr[10];
    size_t hlen = td_ws_frame_header(hdr, true, TD_WS_OP_BINARY, msg->len);
    td_conn_enqueue(c, hdr, hlen, msg);
    c->y_last_out = td_conn_now(c);
    return 0;
}

static void yjs_close(void *t, uint16_t code, const char *reason)
{
    td_ws_conn_close(t, code, reason);
}

const struct td_yconn_ops td_yjs_conn_ops = {yjs_send, yjs_close};

/* Pings, the pong check and the quiet-output keepalive of a y-websocket session. */
void td_yjs_conn_deadline(struct td_conn *c)
{
    int64_t now = td_conn_now(c);
    if (now >= c->y_next_ping) {
        if (c->y_pong_wait) {
            td_log_debug("yjs client did not answer a ping", "port=%d", c->srv->bound_port);
            td_ws_conn_close(c, TD_WS_CLOSE_GOING_AWAY, "no pong");
            return;
        }
        struct td_buf b;
        td_buf_init(&b);
        td_ws_append_frame(&b, TD_WS_OP_PING, NULL, 0);
        td_conn_enqueue_buf(c, &b);
        td_buf_free(&b);
        c->y_pong_wait = true;
        c->y_next_ping = now + YJS_PING_MS;
    }
    if (now - c->y_last_out >= YJS_QUIET_MS) {
        static const uint8_t keepalive[] = {1, 1, 0}; /* awareness update with 0 entries */
        struct td_rbuf *rb = td_rbuf_from(keepalive, sizeof(keepalive));
        yjs_send(c, rb);
        td_rbuf_unref(rb);
    }
    if (c->state != TD_CONN_WS)
        return;
    int64_t next = c->y_last_out + YJS_QUIET_MS;
    td_conn_deadline_at(c, next < c->y_next_ping ? next : c->y_next_ping);
}

/*
 * Decides what a y-websocket session may do from its ?token= and yjs.require_token /
 * yjs.read_only (docs/yjs.md). Returns 0 with *read_only set, or -1 after starting to close
 * the (upgraded) connection with 4401 or 4403.
 */
static int yjs_access(struct td_conn *c, const struct td_http_request *req, const char *room,
                      size_t room_len, bool *read_only)
{
    struct td_server *srv = c->srv;
    char *tok = td_xmalloc(TD_JWT_MAX_TOKEN + 1);
    int n = td_http_query_get(req->query, "token", tok, TD_JWT_MAX_TOKEN + 1);
    if (n == TD_ENOTFOUND || n == 0) {
        free(tok);
        if (srv->cfg->yjs_require_token) {
            td_ws_conn_close(c, 4401, "token required");
            return -1;
        }
        *read_only = srv->cfg->yjs_read_only;
        return 0;
    }
    const char *why = "malformed token";
    enum td_jwt_status st = TD_JWT_INVALID;
    struct td_jwt_claims claims;
    memset(&claims, 0, sizeof(claims));
    if (n > 0)
        st = td_jwt_verify(srv->hub.keys, tok, (size_t)n, srv->hub.wall_s(), &claims, &why);
    if (st != TD_JWT_OK) {
        td_log_info("yjs token refused", "reason=\"%s\"", why);
        free(tok);
        td_ws_conn_close(c, 4401, st == TD_JWT_EXPIRED ? "token expired" : "invalid token");
        return -1;
    }
    td_jwt_claims_free(&claims);
    enum td_yroom_access acc = td_yrooms_token_access(tok, (size_t)n, room, room_len);
    free(tok);
    if (acc == TD_YROOM_ACCESS_NONE) {
        td_ws_conn_close(c, 4403, "permission denied");
        return -1;
    }
    *read_only = acc == TD_YROOM_ACCESS_READ;
    return 0;
}

/* GET /yjs/<room>: the room is the rest of the path, as sent (not URL-decoded). */
void td_yjs_conn_upgrade(struct td_conn *c, const struct td_http_request *req)
{
    struct td_server *srv = c->srv;
    const char *room = req->path.p + 5;
    size_t room_len = req->path.n - 5;
    if (room_len == 0 || room_len > TD_YROOM_MAX_NAME) {
        td_conn_respond_text(c, 400, "bad room name\n", false);
        return;
    }
    const struct td_str *key = td_ws_conn_handshake_check(c, req);
    if (key == NULL)
        return;
    char accept[29];
    td_ws_accept_key(key->p, key->n, accept);
    struct td_buf b;
    td_buf_init(&b);
    td_buf_appendf(&b,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                   accept);
    /* A client offering subprotocols fails the handshake unless one is chosen: take the
     * first one it offered. */
    const struct td_str *proto = td_http_header_get(req, "Sec-WebSocket-Protocol");
    if (proto != NULL) {
        size_t i = 0;
        while (i < proto->n && (proto->p[i] == ' ' || proto->p[i] == '\t'))
            i++;
        size_t j = i;
        while (j < proto->n && proto->p[j] != ',' && proto->p[j] != ' ' && proto->p[j] != '\t')
            j++;
        if (j > i)
            td_buf_appendf(&b, "Sec-WebSocket-Protocol: %.*s\r\n", (int)(j - i), proto->p + i);
    }
    td_buf_append_str(&b, "\r\n");
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);

    c->state = TD_CONN_WS;
    c->ws_opcode = TD_WS_OP_BINARY;
    /* The room checks the exact cap (0 = its default); the frame cap only has to let it. */
    size_t max_msg = srv->cfg->yjs_max_update_size ? srv->cfg->yjs_max_update_size : 8u << 20;
    td_ws_decoder_init(&c->ws, max_msg + 16);
    if (srv->cfg->max_connections > 0 && srv->nws + srv->nyjs + 1 > srv->cfg->max_connections) {
        td_ws_conn_close(c, TD_DISC_CONNECTION_LIMIT, "connection limit");
        return;
    }
    bool read_only = false;
    if (yjs_access(c, req, room, room_len, &read_only) != 0)
        return;
    int64_t now = td_conn_now(c);
    c->y_next_ping = now + YJS_PING_MS;
    c->y_last_out = now;
    srv->nyjs++;
    c->yconn = td_yrooms_join(srv->yrooms, room, room_len, c, now);
    td_yconn_set_read_only(c->yconn, read_only);
    if (c->state == TD_CONN_WS)
        td_conn_deadline_at(c, now + YJS_QUIET_MS);
}

/* One WebSocket event of a y-websocket session. */
void td_yjs_conn_event(struct td_conn *c, const struct td_ws_event *ev)
{
    c->y_pong_wait = false; /* anything from the peer shows it is alive */
    switch (ev->type) {
    case TD_WS_EV_MESSAGE:
        if (!ev->binary) {
            td_ws_conn_close(c, TD_YROOM_CLOSE_MALFORMED, "binary messages only");
            return;
        }
        td_yconn_message(c->yconn, ev->payload, ev->len, td_conn_now(c));
        break;
    case TD_WS_EV_CLOSE:
        /* Leave now: the others see the awareness removal without waiting for EOF. */
        td_yconn_leave(c->yconn, td_conn_now(c));
        c->yconn = NULL;
        c->srv->nyjs--;
        td_ws_conn_close(c, ev->close_code == TD_WS_CLOSE_NO_STATUS ? 0 : ev->close_code, "");
        break;
    case TD_WS_EV_PING:
        td_ws_conn_pong(c, ev);
        break;
    case TD_WS_EV_PONG:
        break;
    }
}
