/*
 * td_ws_conn.c - Centrifugo client sessions over WebSocket on the TCP server (see
 * td_conn.h): the upgrade of GET /connection/websocket, the frames of a WS connection (those
 * of a y-websocket session go on to td_yjs_conn.c), and the td_transport_ops through which
 * the hub sends to the client and closes it. The handshake check is shared with y-websocket.
 */
#include "io/td_conn.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/td_base64.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "http/td_http1.h"
#include "http/td_ws.h"

void td_ws_conn_pong(struct td_conn *c, const struct td_ws_event *ev)
{
    struct td_buf b;
    td_buf_init(&b);
    td_ws_append_frame(&b, TD_WS_OP_PONG, ev->payload, ev->len);
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);
}

void td_ws_conn_close(struct td_conn *c, uint16_t code, const char *reason)
{
    if (c->state != TD_CONN_WS)
        return;
    struct td_buf b;
    td_buf_init(&b);
    td_ws_append_close(&b, code, reason);
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);
    if (c->client != NULL && c->client->state != TD_CLIENT_CLOSED)
        c->client->state = TD_CLIENT_CLOSED;
    td_conn_begin_close(c);
}

/* ---- transport ops for the hub ------------------------------------------------------ */

static int ws_send(void *t, struct td_rbuf *unit)
{
    struct td_conn *c = t;
    if (c->state != TD_CONN_WS)
        return 0;
    if (td_conn_slow_client(c, unit->len)) {
        td_ws_conn_close(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    uint8_t hdr[10];
    size_t hlen = td_ws_frame_header(hdr, true, c->ws_opcode, unit->len);
    td_conn_enqueue(c, hdr, hlen, unit);
    return 0;
}

static void ws_close(void *t, uint32_t code, const char *reason)
{
    td_ws_conn_close(t, (uint16_t)code, reason);
}

static const struct td_transport_ops conn_ws_ops = {ws_send, ws_close, NULL};

/* ---- upgrade ----------------------------------------------------------------------- */

/*
 * Checks a WebSocket handshake request; on failure answers it (400, 426 or 403) and returns
 * NULL, else returns the Sec-WebSocket-Key.
 */
const struct td_str *td_ws_conn_handshake_check(struct td_conn *c,
                                                const struct td_http_request *req)
{
    const struct td_str *key = td_http_header_get(req, "Sec-WebSocket-Key");
    const struct td_str *ver = td_http_header_get(req, "Sec-WebSocket-Version");
    if (!td_conn_str_eq(req->method, "GET") || !req->upgrade_websocket || key == NULL ||
        ver == NULL) {
        td_conn_respond_text(c, 400, "bad websocket handshake\n", false);
        return NULL;
    }
    if (!td_conn_str_eq(*ver, "13")) {
        td_conn_respond(c, 426, "text/plain; charset=utf-8", "Sec-WebSocket-Version: 13\r\n",
                        "unsupported websocket version\n", 30, false);
        return NULL;
    }
    uint8_t raw[32];
    if (key->n != 24 || td_base64_decode(key->p, key->n, raw, sizeof(raw)) != 16) {
        td_conn_respond_text(c, 400, "bad Sec-WebSocket-Key\n", false);
        return NULL;
    }
    if (!td_conn_origin_allowed(c->srv->cfg, req)) {
        td_conn_respond_text(c, 403, "origin not allowed\n", false);
        return NULL;
    }
    return key;
}

void td_ws_conn_upgrade(struct td_conn *c, const struct td_http_request *req)
{
    struct td_server *srv = c->srv;
    const struct td_str *key = td_ws_conn_handshake_check(c, req);
    if (key == NULL)
        return;
    const struct td_codec *codec = &td_codec_json;
    const char *subproto = NULL;
    const struct td_str *proto = td_http_header_get(req, "Sec-WebSocket-Protocol");
    if (proto != NULL && td_http_has_token(*proto, "centrifuge-protobuf")) {
        codec = &td_codec_protobuf;
        subproto = "centrifuge-protobuf";
    } else if (proto != NULL && td_http_has_token(*proto, "centrifuge-json")) {
        subproto = "centrifuge-json";
    }
    char qv[32];
    if ((td_http_query_get(req->query, "cf_protocol", qv, sizeof(qv)) > 0 ||
         td_http_query_get(req->query, "format", qv, sizeof(qv)) > 0) &&
        strcmp(qv, "protobuf") == 0)
        codec = &td_codec_protobuf;

    char accept[29];
    td_ws_accept_key(key->p, key->n, accept);
    struct td_buf b;
    td_buf_init(&b);
    td_buf_appendf(&b,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                   accept);
    if (subproto)
        td_buf_appendf(&b, "Sec-WebSocket-Protocol: %s\r\n", subproto);
    td_buf_append_str(&b, "\r\n");
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);

    c->state = TD_CONN_WS;
    c->ws_opcode = codec->binary ? TD_WS_OP_BINARY : TD_WS_OP_TEXT;
    td_ws_decoder_init(&c->ws, srv->cfg->message_size_limit);
    c->client = td_client_new(&srv->hub, codec, &conn_ws_ops, c, td_conn_now(c));
    srv->nws++;
    if (srv->cfg->max_connections > 0 && srv->nws > srv->cfg->max_connections) {
        td_ws_conn_close(c, TD_DISC_CONNECTION_LIMIT, "connection limit");
        return;
    }
    td_conn_schedule_client(c);
}

/* ---- input ------------------------------------------------------------------------- */

static void conn_ws_event(struct td_conn *c, const struct td_ws_event *ev)
{
    if (c->yconn != NULL) {
        td_yjs_conn_event(c, ev);
        return;
    }
    switch (ev->type) {
    case TD_WS_EV_MESSAGE:
        td_client_on_frame(c->client, ev->payload, ev->len, td_conn_now(c));
        td_conn_schedule_client(c);
        break;
    case TD_WS_EV_PING:
        td_ws_conn_pong(c, ev);
        break;
    case TD_WS_EV_PONG:
        break;
    case TD_WS_EV_CLOSE:
        /* Echo the peer's code, as RFC 6455 section 5.5.1 asks. */
        td_ws_conn_close(c, ev->close_code == TD_WS_CLOSE_NO_STATUS ? 0 : ev->close_code, "");
        break;
    }
}

int td_ws_conn_feed(struct td_conn *c, uint8_t *p, size_t n, size_t *consumed)
{
    struct td_ws_event ev;
    int rv = td_ws_decoder_feed(&c->ws, p, n, consumed, &ev);
    if (rv < 0) {
        uint16_t code = td_ws_decoder_close_code(&c->ws);
        td_log_debug("websocket protocol error", "code=%u err=\"%s\"", code, td_strerror(rv));
        if (c->yconn != NULL && code == TD_WS_CLOSE_TOO_BIG) {
            /* 4400-4499: y-websocket >= 3.1 does not retry (it would resend the same) */
            td_ws_conn_close(c, TD_YROOM_CLOSE_TOO_LARGE, "message too big");
            return rv;
        }
        td_ws_conn_close(c, code,
                         code == TD_WS_CLOSE_TOO_BIG        ? "message too big"
                         : code == TD_WS_CLOSE_INVALID_DATA ? "invalid utf-8"
                                                            : "protocol error");
        return rv;
    }
    if (rv == 0)
        return 0;
    conn_ws_event(c, &ev);
    return 1;
}
