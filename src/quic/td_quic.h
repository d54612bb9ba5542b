/*
 * td_quic.h - a QUIC server connection on ngtcp2 0.12 + GnuTLS, without I/O.
 *
 * This wraps one ngtcp2 server connection and its TLS session in the shape the rest of
 * tandem expects of a protocol engine: UDP payloads plus a timestamp go in, UDP payloads
 * and "the next deadline" come out; the caller owns the socket, the clock and the timer.
 * It knows nothing of HTTP/3 (that is td_h3 and, later, the WebTransport session layer):
 * it moves stream bytes and datagrams and reports stream events through callbacks.
 *
 * Lifecycle:
 *   ctx = td_quic_ctx_new(cert, key)          once per listener (TLS credentials, secrets)
 *   for each UDP datagram received:
 *     td_quic_packet_route(pkt) -> DCID        look it up in the caller's CID table
 *       found:     td_quic_conn_read(conn, pkt)
 *       not found: td_quic_conn_accept(ctx, pkt) (Initial packets only), or
 *                  td_quic_write_version_negotiation / td_quic_write_stateless_reset
 *   after reads, sends and deadlines: loop td_quic_conn_write until it yields 0 bytes,
 *     sending each payload; then arm a timer at td_quic_conn_deadline
 *   when the timer fires: td_quic_conn_on_deadline, then the write loop
 *   when td_quic_conn_state says TD_QUIC_DEAD: td_quic_conn_del (never inside a callback)
 *
 * Connection IDs: the caller keeps a map from CID bytes to connection. on_cid_new and
 * on_cid_retire keep it current (accept reports the server's first CID and the client's
 * original DCID, which Initial retransmits still carry); td_quic_conn_del does not call
 * them, so the caller removes every CID it holds for a connection before deleting it.
 *
 * Stream data passed to td_quic_stream_send is copied and kept until the peer acknowledges
 * it (ngtcp2 retransmits from the caller's memory); the copy is bounded per connection by
 * TD_QUIC_MAX_UNACKED (TD_ELIMIT beyond). Received data is delivered as it arrives, in
 * order per stream; the caller returns flow-control credit with td_quic_stream_consumed.
 * Datagrams are copied into a bounded queue and never retransmitted.
 *
 * Timestamps are nanoseconds on a monotonic clock, the same clock for every call.
 */
#ifndef TD_QUIC_H
#define TD_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Server connection IDs are this long (a fixed length lets short headers be routed). */
#define TD_QUIC_SCID_LEN 18
#define TD_QUIC_MAX_CIDLEN 20
/* Unacknowledged stream bytes one connection may hold for retransmission. */
#define TD_QUIC_MAX_UNACKED (8u << 20)
/* Datagrams queued for sending per connection; more are refused with TD_ELIMIT. */
#define TD_QUIC_MAX_DGRAM_QUEUE 256
/* What we advertise as max_datagram_frame_size (research: Chromium needs it nonzero). */
#define TD_QUIC_MAX_DATAGRAM_FRAME 65535
/* The largest UDP payload td_quic_conn_write produces; give it a buffer this size. */
#define TD_QUIC_MAX_UDP_PAYLOAD 1452

struct td_quic_ctx;
struct td_quic_conn;

struct td_quic_cid {
    uint8_t data[TD_QUIC_MAX_CIDLEN];
    size_t len;
};

/*
 * td_quic_ctx_new loads the PEM certificate chain and key (GnuTLS; ALPN "h3", TLS 1.3 only)
 * and draws a random stateless-reset secret. Returns 0 with *out set, or a negative code
 * with a one-line reason in err (TD_EINVAL: the files cannot be loaded or do not match).
 */
int td_quic_ctx_new(struct td_quic_ctx **out, const char *cert_file, const char *key_file,
                    char *err, size_t errlen);
void td_quic_ctx_del(struct td_quic_ctx *ctx);

/* What the caller learns about an incoming UDP payload before it has a connection. */
struct td_quic_route {
    struct td_quic_cid dcid;
    bool long_header;
    bool need_version_negotiation; /* long header with a version we do not speak */
    uint32_t version;
    struct td_quic_cid scid; /* long headers only */
};

/* td_quic_packet_route parses the invariant header (short headers use TD_QUIC_SCID_LEN).
 * Returns 0, or TD_EPROTO if the payload is not a QUIC packet (drop it). */
int td_quic_packet_route(const uint8_t *pkt, size_t n, struct td_quic_route *r);

/* td_quic_write_version_negotiation writes a Version Negotiation reply to r (which needed
 * it) into out. Returns the length, or a negative code (TD_EINVAL: out too small). */
int td_quic_write_version_negotiation(const struct td_quic_route *r, uint8_t *out, size_t cap);

/* td_quic_write_stateless_reset writes a Stateless Reset for a short-header packet of
 * length pkt_len to an unknown dcid, smaller than that packet (so resets cannot loop).
 * Returns the length, 0 if the packet is too small to answer, or a negative code. */
int td_quic_write_stateless_reset(struct td_quic_ctx *ctx, const struct td_quic_cid *dcid,
                                  size_t pkt_len, uint8_t *out, size_t cap);

/* td_quic_reset_token computes the stateless reset token for one of our CIDs. */
int td_quic_reset_token(struct td_quic_ctx *ctx, const struct td_quic_cid *cid, uint8_t token[16]);

/* Events. Callbacks run inside td_quic_conn_read / _on_deadline / _write; they may call
 * td_quic_stream_send, _datagram_send, _stream_shutdown and _conn_close, but never
 * td_quic_conn_del. A callback returning nonzero closes the connection with INTERNAL_ERROR. */
struct td_quic_callbacks {
    /* The 1-RTT send keys exist: the place to open the HTTP/3 control stream. */
    int (*on_ready)(struct td_quic_conn *c, void *ud);
    void (*on_handshake_done)(struct td_quic_conn *c, void *ud);
    /* Stream bytes in order; fin on the last call. A peer stream's first call opens it. */
    int (*on_stream_data)(struct td_quic_conn *c, int64_t id, const uint8_t *data, size_t len,
                          bool fin, void *ud);
    /* The peer reset its sending side (reset is then true). ngtcp2 0.12 does not report a
     * peer's STOP_SENDING (it resets the stream itself), so !reset is never passed today;
     * that stream's end shows in on_stream_close. */
    int (*on_stream_abort)(struct td_quic_conn *c, int64_t id, uint64_t app_error, bool reset,
                           void *ud);
    /* The stream is gone in both directions; its ID will not be reported again. */
    void (*on_stream_close)(struct td_quic_conn *c, int64_t id, uint64_t app_error, void *ud);
    int (*on_datagram)(struct td_quic_conn *c, const uint8_t *data, size_t len, void *ud);
    void (*on_cid_new)(struct td_quic_conn *c, const struct td_quic_cid *cid, void *ud);
    void (*on_cid_retire)(struct td_quic_conn *c, const struct td_quic_cid *cid, void *ud);
};

/*
 * td_quic_conn_accept creates a server connection from a client Initial packet (pkt, which
 * it also reads) received on local from remote. Returns 0 with *out set; TD_EPROTO if pkt is
 * not an acceptable Initial (drop it, no connection); or another negative code.
 */
int td_quic_conn_accept(struct td_quic_conn **out, struct td_quic_ctx *ctx,
                        const struct sockaddr *local, socklen_t local_len,
                        const struct sockaddr *remote, socklen_t remote_len, const uint8_t *pkt,
                        size_t n, uint64_t now, const struct td_quic_callbacks *cb, void *ud);

/* td_quic_conn_read feeds one received UDP payload. Returns 0, or a negative code after
 * which td_quic_conn_state tells what to do (a CONNECTION_CLOSE may be pending for write). */
int td_quic_conn_read(struct td_quic_conn *c, const struct sockaddr *local, socklen_t local_len,
                      const struct sockaddr *remote, socklen_t remote_len, const uint8_t *pkt,
                      size_t n, uint64_t now);

/*
 * td_quic_conn_write produces the next UDP payload to send into out (cap at least
 * TD_QUIC_MAX_UDP_PAYLOAD) and its destination into *to. Returns the payload length, 0 when
 * there is nothing to send now (stop looping), or a negative code (the connection is then
 * closing or dead, see td_quic_conn_state).
 */
int td_quic_conn_write(struct td_quic_conn *c, uint8_t *out, size_t cap,
                       struct sockaddr_storage *to, socklen_t *to_len, uint64_t now);

/* td_quic_conn_deadline returns when td_quic_conn_on_deadline must next run (UINT64_MAX:
 * never). */
uint64_t td_quic_conn_deadline(struct td_quic_conn *c);

/* td_quic_conn_on_deadline handles timer expiry (loss detection, idle timeout, the end of
 * the closing or draining period). Returns 0 or a negative code (see td_quic_conn_state). */
int td_quic_conn_on_deadline(struct td_quic_conn *c, uint64_t now);

enum td_quic_state {
    TD_QUIC_HANDSHAKE, /* keys being agreed */
    TD_QUIC_OPEN,      /* handshake complete */
    TD_QUIC_CLOSING,   /* we closed: the CONNECTION_CLOSE is repeated until the deadline */
    TD_QUIC_DRAINING,  /* the peer closed: wait until the deadline, send nothing */
    TD_QUIC_DEAD,      /* nothing more to do: td_quic_conn_del */
};
enum td_quic_state td_quic_conn_state(const struct td_quic_conn *c);

/* td_quic_conn_close starts an application close (HTTP/3 error code app_error, e.g.
 * H3_NO_ERROR 0x100); the next td_quic_conn_write yields the CONNECTION_CLOSE. */
void td_quic_conn_close(struct td_quic_conn *c, uint64_t app_error);

/* td_quic_conn_del frees the connection (no packet is sent). */
void td_quic_conn_del(struct td_quic_conn *c);

/* td_quic_stream_open opens a stream of ours. Returns 0 with *id, or TD_EAGAIN if the
 * peer's stream limit is reached (try again after it grants more). */
int td_quic_stream_open(struct td_quic_conn *c, bool bidi, int64_t *id);

/* td_quic_stream_send queues a copy of data[0..len) (and the end of the stream if fin) on
 * stream id. Returns 0; TD_ELIMIT if the connection's unacknowledged bytes would exceed
 * TD_QUIC_MAX_UNACKED; TD_ENOTFOUND for an unknown or closed stream; TD_EINVAL after fin. */
int td_quic_stream_send(struct td_quic_conn *c, int64_t id, const void *data, size_t len, bool fin);

/* td_quic_stream_shutdown resets our side and asks the peer to stop (RESET_STREAM plus
 * STOP_SENDING with app_error); queued data is dropped. Returns 0 or TD_ENOTFOUND. */
int td_quic_stream_shutdown(struct td_quic_conn *c, int64_t id, uint64_t app_error);

/* td_quic_stream_consumed returns n bytes of flow-control credit for stream id (and the
 * connection) after the application has used what it received. */
void td_quic_stream_consumed(struct td_quic_conn *c, int64_t id, size_t n);

/* td_quic_datagram_send queues one DATAGRAM frame payload (copied). Returns 0; TD_EINVAL if
 * the peer accepts no datagrams or len exceeds its limit; TD_ELIMIT if the queue is full. */
int td_quic_datagram_send(struct td_quic_conn *c, const void *data, size_t len);

/* td_quic_conn_unacked returns the stream bytes queued or sent but not yet acknowledged (the
 * connection's output backlog, at most TD_QUIC_MAX_UNACKED). */
size_t td_quic_conn_unacked(const struct td_quic_conn *c);

/* td_quic_conn_user_data returns the ud given at accept. */
void *td_quic_conn_user_data(const struct td_quic_conn *c);

#endif
