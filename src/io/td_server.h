/*
 * td_server.h - the TCP server: libuv listener, HTTP/1.1 connections, Centrifugo client
 * sessions over WebSocket and HTTP-streaming/SSE, y-websocket sessions, the server API,
 * /metrics and /health, all on one loop thread (WebTransport runs beside it on UDP,
 * td_wtsrv.h).
 *
 * The implementation is split by concern; td_conn.h (internal) describes the connection
 * states, the output queue and the TLS glue, and names the functions the files share:
 *   td_server.c    listener, request routing, server API glue, /metrics, /health, static
 *                  files, the durable store, start/shutdown/free (this header)
 *   td_conn.c      connection core: output queue and flush, TLS, deadlines, read path, close
 *   td_ws_conn.c   WebSocket client sessions (/connection/websocket)
 *   td_emu_conn.c  HTTP-streaming and SSE sessions, POST /emulation
 *   td_yjs_conn.c  y-websocket sessions (/yjs/<room>)
 */
#ifndef TD_SERVER_H
#define TD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/td_config.h"
#include "engine/td_hub.h"
#include "engine/td_yroom.h"
#include "io/td_store_worker.h"
#include "http/td_emulation.h"

struct td_conn;
struct td_tls_ctx;
struct td_wheel;
struct td_wtsrv;

/* Resolution of connection deadlines (pings, pong and idle timeouts), ms. */
#define TD_SERVER_WHEEL_MS 10

struct td_server {
    uv_loop_t *loop;
    const struct td_config *cfg;
    struct td_hub hub;
    uv_tcp_t listener;
    uv_check_t flush_check;
    uv_idle_t flush_idle;
    uv_timer_t hub_timer;
    uv_timer_t wheel_timer;     /* drives `wheel` while any connection has a deadline */
    struct td_wheel *wheel;     /* one node per connection instead of a uv_timer each */
    struct td_conn *conns;      /* all open connections (doubly linked) */
    struct td_conn *flush_head; /* connections with output to write this iteration */
    uint32_t nconns;
    uint32_t nws;      /* client sessions (WebSocket and emulation) */
    struct td_emu emu; /* HTTP-streaming / SSE sessions, by session id */
    int64_t started_ms;
    int bound_port;
    bool stopping;
    struct td_store *store; /* NULL when no channel keeps durable history */
    struct td_store_worker store_worker;
    struct td_yrooms *yrooms; /* NULL when yjs.enabled is false */
    struct td_wtsrv *wt;      /* WebTransport on UDP; NULL when webtransport.enabled is false */
    uint32_t nyjs;            /* y-websocket sessions */
    uint64_t bytes_in;
    uint64_t bytes_out;
    struct td_tls_ctx *tls;        /* TLS on TCP (tls.* set, tls.tcp true); NULL: plaintext */
    uint8_t *tls_plain;            /* TLS only: decrypted input, shared like readbuf */
    uint64_t tls_handshakes;       /* TLS handshakes completed */
    uint64_t tls_handshake_errors; /* TLS handshakes failed (and plaintext requests refused) */
    uint8_t readbuf[65536];        /* shared by all reads: libuv calls read_cb synchronously */
    uint8_t cork[16384];           /* shared by all flushes: small frames are gathered here */
};

/*
 * td_server_start binds cfg->address:cfg->port (port 0 = OS-chosen), starts accepting and
 * logs msg="listening" with the bound port. cfg must outlive the server. Returns 0 or a
 * negative libuv error.
 */
int td_server_start(struct td_server *srv, uv_loop_t *loop, const struct td_config *cfg);
/*
 * td_server_shutdown stops accepting, tells every WebSocket client 3001 "shutdown" and
 * closes all connections; the loop ends once they are gone.
 */
void td_server_shutdown(struct td_server *srv);
/* td_server_free releases the hub; call after the loop has ended. */
void td_server_free(struct td_server *srv);

#endif
