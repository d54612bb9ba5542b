/*
 * td_emu_conn.c - HTTP-streaming and SSE client sessions on the TCP server (see td_conn.h
 * and http/td_emulation.h): POST /connection/http_stream and GET|POST /connection/sse turn
 * their connection into a long-lived response (state STREAM) carrying a Centrifugo client;
 * the client's further commands arrive in POST /emulation requests on other connections,
 * routed to the stream by session id. Emulation has no close frame: a session ends with a
 * disconnect push and the end of the response.
 */
#include "io/td_conn.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "http/td_emulation.h"
#include "http/td_http1.h"

/* What a STREAM connection sends (td_conn.emu_kind). */
enum conn_emu_kind { EMU_STREAM_JSON, EMU_STREAM_PB, EMU_SSE };

/* ---- HTTP-streaming and SSE emulation transport ------------------------------------- */

/*
 * Queues one message unit framed for the stream, without copying it: http_stream puts it in
 * a chunk (header in the queue entry, the shared trailer as the next entry; JSON lines end
 * with '\n'), SSE in an event ("data: " header, shared "\n\n" trailer). Only an SSE unit
 * holding several lines (a batch of replies) is copied, to prefix each line.
 */
static void conn_emu_enqueue(struct td_conn *c, struct td_rbuf *unit)
{
    struct td_emu *e = &c->srv->emu;
    if (c->emu_kind == EMU_SSE) {
        if (td_emu_sse_single_line(unit->data, unit->len)) {
            td_conn_enqueue(c, (const uint8_t *)TD_EMU_SSE_PREFIX, TD_EMU_SSE_PREFIX_LEN, unit);
            td_conn_enqueue(c, NULL, 0, e->sse_end);
        } else {
            struct td_buf b;
            td_buf_init(&b);
            td_emu_sse_append(&b, unit->data, unit->len);
            td_conn_enqueue_buf(c, &b);
            td_buf_free(&b);
        }
        return;
    }
    bool json = c->emu_kind == EMU_STREAM_JSON;
    if (unit->len == 0 && !json)
        return; /* a zero-size chunk would end the response */
    uint8_t hdr[TD_EMU_CHUNK_HDR_MAX];
    size_t hlen = td_emu_chunk_header(hdr, unit->len + (json ? 1u : 0u));
    td_conn_enqueue(c, hdr, hlen, unit);
    td_conn_enqueue(c, NULL, 0, json ? e->nl_crlf : e->crlf);
}

/* Removes the connection's session from the table: later /emulation requests get 404. */
void td_emu_conn_forget(struct td_conn *c)
{
    if (c->emu == NULL)
        return;
    td_emu_session_del(&c->srv->emu, (struct td_str){c->emu->id, TD_EMU_SESSION_LEN});
    c->emu = NULL;
    if (c->client != NULL)
        c->client->session = NULL;
}

/* Ends a stream: the disconnect push (emulation has no close frame), then the end of the
 * response, then FIN. The client reconnects or not according to the push's code. */
void td_emu_conn_close(struct td_conn *c, uint32_t code, const char *reason)
{
    if (c->state != TD_CONN_STREAM)
        return;
    if (c->client != NULL) {
        if (code != 0) {
            struct td_buf b;
            td_buf_init(&b);
            c->client->codec->push_disconnect(&b, code, reason);
            struct td_rbuf *rb = td_rbuf_from(b.data, b.len);
            conn_emu_enqueue(c, rb);
            td_rbuf_unref(rb);
            td_buf_free(&b);
        }
        c->client->state = TD_CLIENT_CLOSED;
    }
    if (c->emu_kind != EMU_SSE)
        td_conn_enqueue(c, NULL, 0, c->srv->emu.last_chunk);
    td_emu_conn_forget(c);
    td_conn_begin_close(c);
}

static int emu_send(void *t, struct td_rbuf *unit)
{
    struct td_conn *c = t;
    if (c->state != TD_CONN_STREAM)
        return 0;
    if (td_conn_slow_client(c, unit->len)) {
        td_emu_conn_close(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    conn_emu_enqueue(c, unit);
    return 0;
}

static void emu_close(void *t, uint32_t code, const char *reason)
{
    td_emu_conn_close(t, code, reason);
}

static const struct td_transport_ops conn_emu_ops = {emu_send, emu_close, NULL};

/* ---- endpoints ------------------------------------------------------------------- */

static bool header_is(const struct td_http_request *req, const char *name, const char *lit)
{
    const struct td_str *v = td_http_header_get(req, name);
    if (v == NULL)
        return false;
    size_t n = strlen(lit);
    /* Parameters such as "; charset=..." do not change the media type. */
    return v->n >= n && strncasecmp(v->p, lit, n) == 0 && (v->n == n || v->p[n] == ';');
}

/* CORS response headers for a browser request (Origin present and already allowed). */
static void emu_cors_headers(struct td_buf *b, const struct td_http_request *req)
{
    const struct td_str *origin = td_http_header_get(req, "Origin");
    if (origin == NULL)
        return;
    td_buf_appendf(b,
                   "Access-Control-Allow-Origin: %.*s\r\nAccess-Control-Allow-Credentials: "
                   "true\r\nVary: Origin\r\n",
                   (int)origin->n, origin->p);
    const struct td_str *rh = td_http_header_get(req, "Access-Control-Request-Headers");
    if (rh != NULL)
        td_buf_appendf(b, "Access-Control-Allow-Headers: %.*s\r\n", (int)rh->n, rh->p);
}

/* Answers 204 without a body (and so without Content-Length): a preflight or a delivered
 * emulation request. */
static void emu_respond_204(struct td_conn *c, const struct td_http_request *req, const char *extra)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "HTTP/1.1 204 No Content\r\n");
    emu_cors_headers(&b, req);
    if (extra)
        td_buf_append_str(&b, extra);
    td_buf_append_str(&b, req->keep_alive ? "Connection: keep-alive\r\n\r\n"
                                          : "Connection: close\r\n\r\n");
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);
    if (!req->keep_alive)
        td_conn_begin_close(c);
}

/* Common checks of the emulation endpoints; returns false after answering. */
static bool emu_request_ok(struct td_conn *c, const struct td_http_request *req,
                           const char *methods, bool allow_get, uint32_t body_limit)
{
    char extra[96];
    if (td_conn_str_eq(req->method, "OPTIONS")) {
        snprintf(extra, sizeof(extra),
                 "Access-Control-Max-Age: 300\r\nAccess-Control-Allow-Methods: %s\r\n", methods);
        if (!td_conn_origin_allowed(c->srv->cfg, req))
            td_conn_respond_text(c, 403, "origin not allowed\n", req->keep_alive);
        else
            emu_respond_204(c, req, extra);
        return false;
    }
    if (!td_conn_str_eq(req->method, "POST") &&
        !(allow_get && td_conn_str_eq(req->method, "GET"))) {
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", methods);
        td_conn_respond(c, 405, "text/plain; charset=utf-8", extra, "method not allowed\n", 19,
                        req->keep_alive);
        return false;
    }
    if (!td_conn_origin_allowed(c->srv->cfg, req)) {
        td_conn_respond_text(c, 403, "origin not allowed\n", req->keep_alive);
        return false;
    }
    if (req->content_length > body_limit) {
        td_conn_respond_text(c, 413, "request body too large\n", false);
        return false;
    }
    return true;
}

/*
 * Turns the connection into a stream for a new client whose connect command is frame[0..n)
 * (writable): response head, session, then the connect handled like a first WebSocket frame.
 */
static void conn_emu_start(struct td_conn *c, const struct td_http_request *req,
                           enum conn_emu_kind kind, uint8_t *frame, size_t n)
{
    struct td_server *srv = c->srv;
    const struct td_codec *codec = kind == EMU_STREAM_PB ? &td_codec_protobuf : &td_codec_json;
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "HTTP/1.1 200 OK\r\n");
    if (kind == EMU_SSE)
        td_buf_append_str(&b, "Content-Type: text/event-stream; charset=utf-8\r\n");
    else
        td_buf_appendf(&b, "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n",
                       kind == EMU_STREAM_PB ? "application/octet-stream" : "application/json");
    td_buf_append_str(&b,
                      "Cache-Control: private, no-cache, no-store, must-revalidate, "
                      "max-age=0\r\nPragma: no-cache\r\nExpires: 0\r\nX-Accel-Buffering: no\r\n");
    emu_cors_headers(&b, req);
    /* SSE's body ends when the connection does; a chunked stream ends with its last chunk,
     * and the connection is not reused after it either. */
    td_buf_append_str(&b, "Connection: close\r\n\r\n");
    if (kind == EMU_SSE)
        td_buf_append_str(&b, "\r\n"); /* a first byte, so that EventSource opens at once */
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);

    c->state = TD_CONN_STREAM;
    c->emu_kind = (uint8_t)kind;
    int64_t now = td_conn_now(c);
    c->client = td_client_new(&srv->hub, codec, &conn_emu_ops, c, now);
    srv->nws++;
    c->emu = td_emu_session_add(&srv->emu, c);
    c->client->session = c->emu->id;
    if (srv->cfg->max_connections > 0 && srv->nws > srv->cfg->max_connections) {
        td_emu_conn_close(c, TD_DISC_CONNECTION_LIMIT, "connection limit");
        return;
    }
    td_client_on_frame(c->client, frame, n, now);
    td_conn_schedule_client(c);
}

/* POST /connection/http_stream, GET|POST /connection/sse (and their preflights). */
void td_emu_conn_handle_stream(struct td_conn *c, const struct td_http_request *req,
                               const uint8_t *body, bool sse)
{
    const struct td_config *cfg = c->srv->cfg;
    if (!(sse ? cfg->sse_enabled : cfg->http_stream_enabled)) {
        td_conn_respond_text(c, 404, "not found\n", req->keep_alive);
        return;
    }
    uint32_t limit = sse ? cfg->sse_max_request_body_size : cfg->http_stream_max_request_body_size;
    if (!emu_request_ok(c, req, sse ? "GET, POST, OPTIONS" : "POST, OPTIONS", sse, limit))
        return;
    if (req->minor_version == 0) { /* a chunked or long-lived response needs HTTP/1.1 */
        td_conn_respond_text(c, 505, "HTTP/1.1 required\n", false);
        return;
    }
    struct td_buf frame;
    td_buf_init(&frame);
    enum conn_emu_kind kind = EMU_STREAM_JSON;
    if (sse && td_conn_str_eq(req->method, "GET")) {
        kind = EMU_SSE;
        size_t cap = req->query.n + 1;
        td_buf_reserve(&frame, cap);
        int rv = td_http_query_get(req->query, "cf_connect", (char *)frame.data, cap);
        if (rv > 0)
            frame.len = (size_t)rv;
    } else {
        if (sse)
            kind = EMU_SSE;
        else if (header_is(req, "Content-Type", "application/octet-stream"))
            kind = EMU_STREAM_PB;
        td_buf_append(&frame, body, (size_t)req->content_length);
    }
    if (frame.len == 0 || frame.len > limit) {
        td_conn_respond_text(c, 400,
                             sse ? "cf_connect or a body with the connect command required\n"
                                 : "connect command required in the body\n",
                             req->keep_alive);
    } else {
        conn_emu_start(c, req, kind, frame.data, frame.len);
    }
    td_buf_free(&frame);
}

/* POST /emulation: one batch of commands for an existing stream session. */
void td_emu_conn_handle_emulation(struct td_conn *c, const struct td_http_request *req,
                                  const uint8_t *body)
{
    struct td_server *srv = c->srv;
    const struct td_config *cfg = srv->cfg;
    if (!cfg->sse_enabled && !cfg->http_stream_enabled) {
        td_conn_respond_text(c, 404, "not found\n", req->keep_alive);
        return;
    }
    if (!emu_request_ok(c, req, "POST, OPTIONS", false, cfg->emulation_max_request_body_size))
        return;
    struct td_buf copy; /* parsed and then decoded in place */
    td_buf_init(&copy);
    td_buf_append(&copy, body, (size_t)req->content_length);
    struct td_emu_request er;
    int rv = header_is(req, "Content-Type", "application/octet-stream")
                 ? td_emu_parse_pb(copy.data, copy.len, &er)
                 : td_emu_parse_json((char *)copy.data, copy.len, &er);
    if (rv < 0) {
        td_conn_respond_text(c, 400, "malformed emulation request\n", req->keep_alive);
        td_buf_free(&copy);
        return;
    }
    struct td_conn *t = NULL;
    if (er.node.n == 0 || (er.node.n == strlen(srv->hub.node_id) &&
                           memcmp(er.node.p, srv->hub.node_id, er.node.n) == 0))
        t = td_emu_session_get(&srv->emu, er.session);
    if (t == NULL || t->state != TD_CONN_STREAM || t->client == NULL) {
        /* No such session (or another node's): the client drops its transport and
         * reconnects. */
        td_conn_respond_text(c, 404, "session not found\n", req->keep_alive);
        td_buf_free(&copy);
        return;
    }
    td_client_on_frame(t->client, er.data, er.len, td_conn_now(c));
    td_conn_schedule_client(t);
    td_buf_free(&copy);
    emu_respond_204(c, req, NULL);
}
