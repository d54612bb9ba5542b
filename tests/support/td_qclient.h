/*
 * td_qclient.h - the QUIC client core shared by tandem's own test and benchmark clients:
 * ngtcp2 0.12 + GnuTLS, ALPN h3, TLS 1.3 only, SNI "localhost". The server certificate is
 * NOT verified: these are loopback tools for a server we start ourselves.
 *
 * Users (each keeps its own I/O, clock, stream bookkeeping and protocol on top):
 *   tests/unit/quic_client.c  a libuv UDP client for tests/unit/test_udp.c
 *   tests/unit/test_quic.c    an in-memory client against td_quic with injected time
 *   tests/wt/td_wtabuse.c     the misbehaving WebTransport client of the abuse tests
 *   bench/wt/wt_quic.c        td_wtload's WebTransport subscribers
 *
 * What the core does: creates the ngtcp2 client connection and its GnuTLS session (random
 * connection IDs, settings, transport parameters, the ngtcp2_crypto callbacks and the
 * conn_ref GnuTLS needs), counts completed handshakes, passes stream data, stream resets and
 * closes and DATAGRAM frames to the user's handlers, feeds received packets to ngtcp2 on the
 * connection's path and writes an application CONNECTION_CLOSE. It does no I/O and reads
 * no clock: every timestamp comes from the caller (ns, the same clock for every call).
 *
 * For the two WebTransport clients it also has the HTTP/3 pieces they share, as pure
 * functions: our control stream opening (SETTINGS), the extended CONNECT's HEADERS frame and
 * the :status of the answer. Stream prefixes, capsules and Centrifugo stay with each client.
 *
 * A struct td_qclient must not move between td_qclient_init and td_qclient_free (ngtcp2 and
 * GnuTLS keep pointers to it); embed it in the user's connection object.
 */
#ifndef TD_QCLIENT_H
#define TD_QCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <nghttp3/nghttp3.h>

#include "core/td_buf.h"

/* What the connection tells its user. Handlers run inside ngtcp2 calls (td_qclient_read,
 * the write functions, ngtcp2_conn_handle_expiry) and get the config's user pointer. */
struct td_qclient_handlers {
    /* Bytes arrived on stream id (ours or the server's); fin is set with the last ones.
     * Flow-control credit is the handler's business (ngtcp2_conn_extend_max_stream_offset
     * and ngtcp2_conn_extend_max_offset on q->conn). Returns 0, or -1 to fail the
     * connection. Required. */
    int (*on_stream_data)(void *user, int64_t id, const uint8_t *data, size_t len, bool fin);
    /* The server reset stream id with an application error code. Optional. */
    void (*on_stream_reset)(void *user, int64_t id, uint64_t code);
    /* Stream id is closed in both directions. Optional. */
    void (*on_stream_close)(void *user, int64_t id);
    /* A DATAGRAM frame arrived (only if params.max_datagram_frame_size allows them).
     * Optional. */
    void (*on_datagram)(void *user, const uint8_t *data, size_t len);
};

struct td_qclient_config {
    const struct sockaddr *local; /* our address, as the socket is bound */
    socklen_t local_len;
    const struct sockaddr *remote; /* the server */
    socklen_t remote_len;
    uint64_t now; /* ns: the connection's initial timestamp */
    /* Shared credentials (the caller keeps them alive until td_qclient_free), or NULL: the
     * client allocates its own. */
    gnutls_certificate_credentials_t cred;
    /* Our transport parameters; td_qclient_config_default sets generous test values. */
    ngtcp2_transport_params params;
    bool no_pmtud; /* no path MTU probes (loopback benchmarks) */
    const struct td_qclient_handlers *handlers;
    void *user; /* passed to every handler */
};

struct td_qclient {
    ngtcp2_conn *conn; /* use it directly for streams, writes and timers */
    gnutls_session_t tls;
    gnutls_certificate_credentials_t own_cred; /* NULL when the config's are used */
    ngtcp2_crypto_conn_ref ref;
    struct sockaddr_storage local, remote;
    ngtcp2_path path; /* points at local and remote */
    const struct td_qclient_handlers *handlers;
    void *user;
    int handshakes; /* completed handshakes: 0, then 1 */
};

/* td_qclient_config_default zeroes cfg and sets the transport parameters most tests want:
 * 1 MiB per stream and 4 MiB per connection of receive window, 100 bidirectional and 100
 * unidirectional streams, a 30 s idle timeout and DATAGRAM frames up to 65536 bytes. */
void td_qclient_config_default(struct td_qclient_config *cfg);

/* td_qclient_init creates the connection described by cfg (borrowed for the call) with
 * random 18-byte connection IDs, QUIC v1 and a GnuTLS client session. Nothing is sent: the
 * first write (ngtcp2_conn_writev_stream) produces the Initial. Returns 0, or TD_EINVAL
 * with a one-line reason in err (ngtcp2 or GnuTLS refused the setup); either way the caller
 * ends with td_qclient_free. */
int td_qclient_init(struct td_qclient *q, const struct td_qclient_config *cfg, char *err,
                    size_t errlen);

/* td_qclient_read feeds one received UDP payload to ngtcp2. from is the sender, or NULL for
 * the server's address (a connected socket). Returns 0 or ngtcp2_conn_read_pkt's error
 * (NGTCP2_ERR_DRAINING: the server closed the connection; td_qclient_close_error says how). */
int td_qclient_read(struct td_qclient *q, const struct sockaddr *from, const uint8_t *pkt,
                    size_t len, uint64_t now);

/* td_qclient_close_error reports the CONNECTION_CLOSE the server sent: *app is true for an
 * application error code, *code is the code. */
void td_qclient_close_error(const struct td_qclient *q, bool *app, uint64_t *code);

/* td_qclient_write_close writes a CONNECTION_CLOSE with application error code into buf
 * (the caller sends it) and puts the connection in its closing period. Returns the packet's
 * length, or 0 when there is nothing to send (already closing or draining, or an error). */
size_t td_qclient_write_close(struct td_qclient *q, uint64_t code, uint8_t *buf, size_t buflen,
                              uint64_t now);

/* td_qclient_free frees the connection, the TLS session and its own credentials; q may have
 * failed td_qclient_init. Sends nothing (see td_qclient_write_close). */
void td_qclient_free(struct td_qclient *q);

/* ---- HTTP/3 for WebTransport clients ---- */

/* td_qclient_h3_control_append appends what a WebTransport client writes first on its
 * control stream: the stream type and SETTINGS with no QPACK dynamic table, H3_DATAGRAM=1
 * and ENABLE_WEBTRANSPORT=1 (draft-02), as Chromium sends. Returns 0, or TD_EINVAL as
 * td_h3_control_stream_open_append. */
int td_qclient_h3_control_append(struct td_buf *b);

/* td_qclient_h3_connect_append appends a HEADERS frame with the extended CONNECT of a
 * WebTransport session (RFC 9220; QPACK with the static table and literals only):
 * :scheme https, :method CONNECT, :authority, :path, :protocol webtransport,
 * sec-webtransport-http3-draft02: 1, origin. Returns 0, or TD_EINVAL with b unchanged if
 * QPACK encoding failed. */
int td_qclient_h3_connect_append(struct td_buf *b, const char *authority, const char *path,
                                 const char *origin);

/* td_qclient_h3_status returns the :status of the QPACK header block p[0..n) received on
 * stream id, decoded with dec (created with a dynamic table capacity of 0), or -1 if the
 * block is malformed or has no three-digit :status. */
int td_qclient_h3_status(nghttp3_qpack_decoder *dec, int64_t id, const uint8_t *p, size_t n);

#endif
