/*
 * td_wtsrv.h - Centrifugo client sessions over WebTransport (HTTP/3 on UDP).
 *
 * With webtransport.enabled, the server listens on UDP at the HTTP address and port
 * (io/td_udp.h drives QUIC connections, quic/td_wt.h the HTTP/3 and WebTransport layer).
 * A WebTransport session at /connection/webtransport carries the Centrifugo protocol on
 * the first bidirectional stream the client opens (docs/webtransport.md):
 *   - JSON (default): commands and replies are lines ending with '\n';
 *   - Protobuf (?cf_protocol=protobuf): varint-delimited messages, as on WebSocket.
 * The stream feeds td_client_on_frame with whole messages only; a message above
 * websocket.message_size_limit closes the client (3501). A disconnect writes the
 * disconnect push and ends the stream; the session is closed (CLOSE capsule with the
 * disconnect code) when the client ends its side or one second later, so the push is read
 * before the session goes away (the centrifuge client takes its code from the push).
 *
 * Everything runs on the loop thread. Time is uv_now (ms).
 */
#ifndef TD_WTSRV_H
#define TD_WTSRV_H

#include <stdint.h>
#include <uv.h>

#include "config/td_config.h"
#include "engine/td_hub.h"

struct td_wtsrv;

/* How long a session may stay without its Centrifugo stream, ms. */
#define TD_WTSRV_STREAM_WAIT_MS 10000
/* How long a disconnected session waits for the client to end its stream, ms. */
#define TD_WTSRV_LINGER_MS 1000

struct td_wtsrv_stats {
    uint64_t sessions;  /* sessions now open */
    uint64_t accepted;  /* sessions accepted since start */
    uint64_t refused;   /* CONNECT requests refused (path, origin, limits) */
    uint64_t conns;     /* QUIC connections now open */
    uint64_t datagrams; /* publications sent as datagrams */
    /* from the UDP listener (io/td_udp.h) */
    uint64_t packets_in, packets_out, dropped, conns_refused;
};

/*
 * td_wtsrv_start loads tls.cert_file/tls.key_file and listens on UDP at address:port (the
 * port the TCP listener bound). Returns 0 with *out set, or a negative code with a one-line
 * reason in err (TD_EINVAL: no or unusable certificate; a libuv error: the bind failed).
 */
int td_wtsrv_start(struct td_wtsrv **out, uv_loop_t *loop, const struct td_config *cfg,
                   struct td_hub *hub, const char *address, int port, char *err, size_t errlen);
/* td_wtsrv_port returns the bound UDP port. */
int td_wtsrv_port(const struct td_wtsrv *w);
/*
 * td_wtsrv_shutdown disconnects every client with 3001 "shutdown", closes every connection
 * and the socket; done(ud) runs once all handles are closed (the server then frees it).
 */
void td_wtsrv_shutdown(struct td_wtsrv *w, void (*done)(void *ud), void *ud);
/* td_wtsrv_free releases what is left after the loop ended. */
void td_wtsrv_free(struct td_wtsrv *w);
void td_wtsrv_stats(const struct td_wtsrv *w, struct td_wtsrv_stats *out);

#endif
