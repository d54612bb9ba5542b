/*
 * td_conn.h - internal to src/io: one TCP connection of the server (struct td_conn) and the
 * functions the server's files share. Not for use outside td_server.c, td_conn.c and the
 * transport files:
 *   td_conn.c      connection core: output queue, flush, TLS glue, deadlines, read path,
 *                  HTTP answers, close and destroy
 *   td_server.c    listener, request routing, server API glue, /metrics, /health, static
 *                  files, the durable store, start/shutdown/free
 *   td_ws_conn.c   Centrifugo WebSocket sessions (upgrade, frames, transport ops)
 *   td_emu_conn.c  HTTP-streaming and SSE sessions, POST /emulation
 *   td_yjs_conn.c  y-websocket sessions (/yjs/<room>)
 *
 * Connection states: HTTP (reading request heads; keep-alive) -> WS (after a 101 upgrade on
 * /connection/websocket or /yjs/<room>) or STREAM (an HTTP-streaming or SSE response, whose
 * client sends further commands in POST /emulation requests on other connections) -> CLOSING
 * (close frame queued or response final; input ignored, the socket is shut down once output
 * drains, and closed on EOF or after 5 s). A WS connection has either a Centrifugo client
 * (client) or a y-websocket room handle (yconn); a STREAM connection has a client.
 *
 * Output: each connection owns a queue of references to immutable buffers (shared
 * publication units plus private replies). Connections with pending output are flushed once
 * per loop iteration, from a uv_check handle (a uv_idle handle keeps the poll from blocking
 * while any is pending), with one writev (uv_try_write); what the kernel does not take goes
 * to a single uv_write. Queued bytes above client.queue_max_size close a client with 3008
 * "slow" (td_conn_slow_client).
 *
 * TLS (docs/tls.md): with tls.cert_file, tls.key_file and tls.tcp, every TCP connection has a
 * td_tls session. Input is decrypted into tls_plain and then takes the plaintext path
 * (including the input held while an API answer pends). At flush time the queued plaintext
 * (at most 64 KiB per round) is encrypted in one td_tls_writev and dropped from the
 * queue; the ciphertext is written like plaintext, the part the kernel refuses copied into one
 * uv_write. The slow-client check counts queued plaintext plus unwritten ciphertext. A
 * closing connection sends close_notify before its FIN. A first read that cannot start a
 * ClientHello gets a plaintext 400 and is closed; the HTTP idle timeout bounds a handshake.
 *
 * Every function here runs on the loop thread. A connection is never freed inside a call
 * that received it: closing marks it, and it is freed once libuv has closed its handle.
 */
#ifndef TD_CONN_H
#define TD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "core/td_buf.h"
#include "core/td_log.h"
#include "core/td_str.h"
#include "core/td_wheel.h"
#include "engine/td_hub.h"
#include "engine/td_yroom.h"
#include "http/td_http1.h"
#include "http/td_ws.h"
#include "io/td_server.h"

/* Size of the loop's shared buffer for decrypted TLS input (td_server.tls_plain). */
#define TD_CONN_TLS_PLAIN 65536

enum td_conn_state { TD_CONN_HTTP, TD_CONN_WS, TD_CONN_STREAM, TD_CONN_CLOSING };

struct td_conn_outq_entry; /* one queued output (td_conn.c) */

struct td_conn {
    uv_tcp_t tcp;
    struct td_wheel_node deadline; /* the one pending deadline; meaning depends on state */
    struct td_server *srv;
    struct td_conn *prev, *next;
    struct td_conn *flush_next;
    enum td_conn_state state;
    bool in_flush;
    bool tick_due; /* the client's timer fired: run td_client_tick after this poll phase */
    bool writing;
    bool shutdown_sent;
    bool destroyed;
    int open_handles;
    struct td_buf in;
    struct td_conn_outq_entry *q;
    uint32_t qhead, qlen, qcap;
    uint64_t out_bytes;
    struct td_ws_decoder ws;
    struct td_client *client;
    uint8_t ws_opcode;
    uint8_t emu_kind;                  /* STREAM: what it sends (td_emu_conn.c) */
    const struct td_emu_session *emu;  /* STREAM: the session, NULL once it is forgotten */
    struct td_conn_api_wait *api_wait; /* HTTP: an API answer still to come; input is held */
    struct td_yconn *yconn;            /* WS of a y-websocket client: its room handle */
    int64_t y_next_ping;               /* yjs: when the next WebSocket ping is due */
    int64_t y_last_out;                /* yjs: when a message was last queued */
    bool y_pong_wait;                  /* yjs: a ping is unanswered */
    struct td_tls *tls;                /* TLS session; NULL on a plaintext connection */
    size_t tls_pending;                /* TLS: ciphertext in the session, counted in out_bytes */
    bool tls_started;                  /* TLS: the first bytes were checked for a ClientHello */
};

/* An API request waiting for the store (td_server.c); conn is NULL once the connection is
 * gone (td_conn.c clears it on destroy). */
struct td_conn_api_wait {
    struct td_conn *conn;
    bool keep_alive;
    bool in_call; /* td_api_call has not returned yet */
    bool answered;
};

/* td_conn_now returns the loop's cached time, ms. */
static inline int64_t td_conn_now(const struct td_conn *c)
{
    return (int64_t)uv_now(c->srv->loop);
}

/* td_conn_str_eq returns whether s equals the NUL-terminated lit. */
static inline bool td_conn_str_eq(struct td_str s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/*
 * td_conn_slow_client returns whether queueing len more bytes would take the connection of a
 * Centrifugo client past client.queue_max_size; if so it logs msg="slow client disconnected"
 * and the caller must close the session with TD_DISC_SLOW and return TD_ELIMIT. Runs per
 * subscriber per message, hence inline.
 */
static inline bool td_conn_slow_client(const struct td_conn *c, size_t len)
{
    if (c->out_bytes + len <= c->srv->cfg->queue_max_size)
        return false;
    td_log_info("slow client disconnected", "client=%s queued=%llu", c->client->id,
                (unsigned long long)c->out_bytes);
    return true;
}

/* ---- td_conn.c: the connection core ---- */

/*
 * td_conn_loop_init creates the server's deadline wheel, its timer and the flush handles
 * (uv_idle + uv_check) on srv->loop. td_server_free closes the handles and frees the wheel.
 */
void td_conn_loop_init(struct td_server *srv);
/* td_conn_accept accepts one connection from listener and starts reading it (or closes it
 * at once when the accept fails or the server is stopping). */
void td_conn_accept(struct td_server *srv, uv_stream_t *listener);
/*
 * td_conn_enqueue queues rb (taking a new reference) behind hdr[0..hlen) (hlen <= 10: a
 * WebSocket frame header, or 0) and schedules a flush. A no-op on a destroyed connection.
 * The fan-out path: no allocation unless the queue array grows.
 */
void td_conn_enqueue(struct td_conn *c, const uint8_t *hdr, size_t hlen, struct td_rbuf *rb);
/* td_conn_enqueue_buf queues a copy of b's bytes. */
void td_conn_enqueue_buf(struct td_conn *c, const struct td_buf *b);
/* td_conn_deadline_at sets the connection's one deadline to `at` (loop ms); what it means
 * depends on the state (see on_conn_deadline in td_conn.c). */
void td_conn_deadline_at(struct td_conn *c, int64_t at);
/* td_conn_begin_close starts a graceful close: whatever is queued is still sent, then FIN.
 * Input is ignored from now on. A no-op when closing already. */
void td_conn_begin_close(struct td_conn *c);
/* td_conn_schedule_client runs the client's tick (WS or STREAM state) and sets the deadline
 * to its next one. */
void td_conn_schedule_client(struct td_conn *c);
/* td_conn_resume restarts reading after a held API answer was sent and processes the input
 * that arrived meanwhile. */
void td_conn_resume(struct td_conn *c);
/*
 * td_conn_respond queues an HTTP/1.1 response with Content-Length n, an optional Content-Type
 * and extra header lines (each ending in CRLF), then body[0..n); without keep_alive the
 * connection starts closing.
 */
void td_conn_respond(struct td_conn *c, int status, const char *ctype, const char *extra,
                     const void *body, size_t n, bool keep_alive);
/* td_conn_respond_text answers with a text/plain body. */
void td_conn_respond_text(struct td_conn *c, int status, const char *text, bool keep_alive);
/* td_conn_origin_allowed returns whether the request's Origin passes the policy: no Origin
 * header (non-browser) is allowed; "*" allows all; otherwise the origin must be listed or be
 * the same host as the Host header. */
bool td_conn_origin_allowed(const struct td_config *cfg, const struct td_http_request *req);

/* ---- td_server.c ---- */

/* td_server_handle_request routes one complete request (body: content_length bytes). */
void td_server_handle_request(struct td_conn *c, const struct td_http_request *req,
                              const uint8_t *body);

/* ---- td_ws_conn.c: Centrifugo WebSocket sessions ---- */

/*
 * td_ws_conn_handshake_check checks a WebSocket handshake request; on failure answers it
 * (400, 426 or 403) and returns NULL, else returns the Sec-WebSocket-Key.
 */
const struct td_str *td_ws_conn_handshake_check(struct td_conn *c,
                                                const struct td_http_request *req);
/* td_ws_conn_upgrade answers GET /connection/websocket and makes the connection a client
 * session (state WS). */
void td_ws_conn_upgrade(struct td_conn *c, const struct td_http_request *req);
/* td_ws_conn_close queues a close frame (code 0: none) and starts closing; a no-op unless
 * the connection is in state WS. Marks a Centrifugo client closed. */
void td_ws_conn_close(struct td_conn *c, uint16_t code, const char *reason);
/* td_ws_conn_pong answers a ping frame with a pong carrying its payload (RFC 6455 5.5.3). */
void td_ws_conn_pong(struct td_conn *c, const struct td_ws_event *ev);
/*
 * td_ws_conn_feed decodes at most one WebSocket event from p[0..n) of a WS connection and
 * handles it (Centrifugo or y-websocket). Sets *consumed. Returns 1 when an event was
 * handled, 0 when more input is needed, or a negative error after starting to close the
 * connection on a protocol error (the rest of the input is then to be dropped).
 */
int td_ws_conn_feed(struct td_conn *c, uint8_t *p, size_t n, size_t *consumed);

/* ---- td_emu_conn.c: HTTP-streaming and SSE sessions ---- */

/* td_emu_conn_handle_stream answers POST /connection/http_stream (sse false) or GET|POST
 * /connection/sse (and their preflights), starting a stream session. */
void td_emu_conn_handle_stream(struct td_conn *c, const struct td_http_request *req,
                               const uint8_t *body, bool sse);
/* td_emu_conn_handle_emulation answers POST /emulation: one batch of commands for an
 * existing stream session. */
void td_emu_conn_handle_emulation(struct td_conn *c, const struct td_http_request *req,
                                  const uint8_t *body);
/* td_emu_conn_close ends a stream with a disconnect push (code 0: none), the end of the
 * response and FIN; a no-op unless the connection is in state STREAM. */
void td_emu_conn_close(struct td_conn *c, uint32_t code, const char *reason);
/* td_emu_conn_forget removes the connection's session from the table (later /emulation
 * requests get 404); a no-op when it has none. */
void td_emu_conn_forget(struct td_conn *c);

/* ---- td_yjs_conn.c: y-websocket sessions ---- */

/* The transport ops the server's rooms use (td_yrooms_new). */
extern const struct td_yconn_ops td_yjs_conn_ops;
/* td_yjs_conn_upgrade answers GET /yjs/<room> and joins the room (state WS, yconn set). */
void td_yjs_conn_upgrade(struct td_conn *c, const struct td_http_request *req);
/* td_yjs_conn_event handles one WebSocket event of a y-websocket session. */
void td_yjs_conn_event(struct td_conn *c, const struct td_ws_event *ev);
/* td_yjs_conn_deadline runs the pings, the pong check and the quiet-output keepalive. */
void td_yjs_conn_deadline(struct td_conn *c);

#endif
