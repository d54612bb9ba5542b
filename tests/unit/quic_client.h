/*
 * quic_client.h - a minimal QUIC client for unit tests: ngtcp2 0.12 + GnuTLS over a real
 * uv_udp_t on 127.0.0.1, in the caller's libuv loop.
 *
 * It does just enough to drive a server: the handshake (ALPN h3, the certificate is not
 * verified), client bidirectional streams with data and FIN, DATAGRAM frames, and an
 * application close. Everything the server sends is recorded: bytes per stream (client
 * and server streams alike), datagrams, and the CONNECTION_CLOSE it received. The client
 * writes after every read, every send and every expiry of its ngtcp2 timer. The QUIC and
 * TLS setup is tests/support/td_qclient's; this file adds the libuv socket and timer, the
 * send queue and the recording.
 */
#ifndef QUIC_CLIENT_H
#define QUIC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/td_buf.h"
#include "../support/td_qclient.h"

#define QUIC_CLIENT_MAX_STREAMS 16

struct quic_client_stream {
    int64_t id;
    struct td_buf data;
    bool fin;
};

struct quic_client_out; /* queued stream data, kept until the client is freed */

struct quic_client {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    struct td_qclient q; /* q.handshakes counts completed handshakes */
    bool draining;       /* the server closed the connection (or it failed) */
    bool closed_by_us;
    int read_error; /* the ngtcp2 error that ended reading, 0 if none */
    bool peer_close_app;
    uint64_t peer_close_code;
    struct quic_client_out *out;
    struct td_buf dgram_out; /* the datagram waiting to be sent (one at a time) */
    bool dgram_pending;
    struct quic_client_stream streams[QUIC_CLIENT_MAX_STREAMS];
    size_t nstreams;
    struct td_buf dgrams; /* received datagrams, concatenated */
    int ndgrams;
    int packets_in, packets_out;
    int open_handles;
};

/* quic_client_start binds 127.0.0.1:0, creates the connection to server (an IPv4 address)
 * and sends the first flight. Returns 0 or -1. */
int quic_client_start(struct quic_client *c, uv_loop_t *loop, const struct sockaddr *server);

/* quic_client_send opens a bidirectional stream and queues a copy of data (plus FIN if fin).
 * Returns 0 with *id, or -1. */
int quic_client_send(struct quic_client *c, const void *data, size_t len, bool fin, int64_t *id);

/* quic_client_datagram queues one DATAGRAM frame (one at a time). Returns 0 or -1. */
int quic_client_datagram(struct quic_client *c, const void *data, size_t len);

/* quic_client_close sends an application CONNECTION_CLOSE with code. */
void quic_client_close(struct quic_client *c, uint64_t code);

/* quic_client_stream returns what arrived on stream id, or NULL. */
const struct quic_client_stream *quic_client_stream(const struct quic_client *c, int64_t id);

/* quic_client_free closes the handles and frees everything; run the loop afterwards until
 * quic_client_done says the handles are closed. */
void quic_client_free(struct quic_client *c);
bool quic_client_done(const struct quic_client *c);

#endif
