/*
 * td_server.h - the TCP server: libuv listener, HTTP/1.1 connections, WebSocket sessions,
 * the server API and /health, all on one loop thread.
 *
 * Connection states: HTTP (reading request heads; keep-alive) -> WS (after a 101 upgrade on
 * /connection/websocket) or STREAM (an HTTP-streaming or SSE response, whose client sends
 * further commands in POST /emulation requests on other connections) -> CLOSING (close frame queued
 * or response final; input ignored, the socket is shut down once output drains, and closed on EOF
 * or after 5 s).
 *
 * Yjs: /yjs/<room> upgrades to a WebSocket session of a y-websocket client (binary frames,
 * engine/td_yroom.h); such a connection is in state WS with a room handle instead of a
 * Centrifugo client, is pinged every 30 s (closed when no pong came since the previous ping)
 * and gets an empty awareness message when nothing was sent to it for 15 s, so that an idle
 * client with no awareness state of its own does not hit y-websocket's 30 s message timeout.
 *
 * Output: each connection owns a queue of references to immutable buffers (shared
 * publication units plus private replies). Connections with pending output are flushed once
 * per loop iteration, from a uv_check handle (a uv_idle handle keeps the poll from blocking
 * while any is pending), with one writev (uv_try_write); what the
 * kernel does not take goes to a single uv_write. Queued bytes above client.queue_max_size
 * close a WebSocket client with 3008 "slow".
 *
 * TLS (docs/tls.md): with tls.cert_file, tls.key_file and tls.tcp, every TCP connection has a
 * td_tls session. Input is decrypted into tls_plain and then takes the plaintext path
 * (including the input held while an API answer pends). At flush time the queued plaintext
 * (at most 64 KiB per round) is encrypted in one td_tls_writev and dropped from the
 * queue; the ciphertext is written like plaintext, the part the kernel refuses copied into one
 * uv_write. The slow-client check counts queued plaintext plus unwritten ciphertext. A
 * closing connection sends close_notify before its FIN. A first read that cannot start a
 * ClientHello gets a plaintext 400 and is closed; the HTTP idle timeout bounds a handshake.
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
