/*
 * wtload.h - shared state of td_wtload, a single-threaded epoll load generator that
 * subscribes over WebTransport (HTTP/3 over QUIC, ngtcp2 0.12 + GnuTLS, one QUIC connection
 * per session as Chromium does) and publishes over WebSocket, so that a run measures
 * fan-out to WebTransport subscribers with exactly the publish path td_loadgen uses.
 * See bench/wt/README.md.
 *
 * Parts:
 *   td_wtload.c  command line, the modes (rate, rounds), the JSON report
 *   wt_quic.c    subscriber sessions: QUIC client, HTTP/3 SETTINGS, extended CONNECT,
 *                the WebTransport stream carrying Centrifugo JSON lines, delivery detection
 *   wt_pub.c     the publisher: one WebSocket connection speaking Centrifugo JSON
 *   ../loadgen/lg_hist.c  the latency histogram shared with td_loadgen
 *
 * A subscriber goes through these states:
 *   HANDSHAKE  QUIC + TLS handshake in progress
 *   SETTINGS   our control stream (type 0x00, SETTINGS) is out; waiting for the server's
 *              SETTINGS, which must allow extended CONNECT (RFC 9220 forbids sending the
 *              CONNECT before that)
 *   CONNECT    HEADERS :method CONNECT :protocol webtransport sent on stream 0; waiting
 *              for :status
 *   PROTO      2xx received; a bidirectional stream 0x41 + session 0 carries the Centrifugo
 *              connect and subscribe commands; waiting for the reply with id 2
 *   READY      every delivery is counted from here on
 *
 * Any failure ends the process through lg_fail, as in td_loadgen.
 */
#ifndef WT_WTLOAD_H
#define WT_WTLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>

#include "core/td_buf.h"
#include "../loadgen/loadgen.h"             /* struct lg_hist, lg_hist_*, lg_now, lg_fail */
#include "../../tests/support/td_qclient.h" /* the QUIC client core */

enum wl_mode {
    WL_MODE_RATE,
    WL_MODE_ROUNDS,
};

enum wl_state {
    WL_ST_NEW,
    WL_ST_HANDSHAKE,
    WL_ST_SETTINGS,
    WL_ST_CONNECT,
    WL_ST_PROTO,
    WL_ST_READY,
};

enum {
    WL_MAX_INFLIGHT = 128,      /* session setups in progress at once */
    WL_PKT_BUF = 2048,          /* one received UDP datagram (the server sends <= 1452) */
    WL_RECV_BATCH = 32,         /* datagrams per recvmmsg */
    WL_MAX_LINE = 1 << 20,      /* cap on one Centrifugo line on the WebTransport stream */
    WL_MAX_CTRL = 4096,         /* cap on buffered control-stream bytes before SETTINGS */
    WL_MAX_UNI = 4,             /* server unidirectional streams tracked per connection */
    WL_STREAM_WINDOW = 1 << 20, /* initial per-stream receive window (extended as consumed) */
    WL_CONN_WINDOW = 4 << 20,   /* initial per-connection receive window */
};

/* What we send on one stream. ngtcp2 retransmits from our memory, so the bytes stay until
 * the connection ends (a subscriber sends a few hundred bytes in all). */
struct wl_tx {
    int64_t id; /* -1: not open */
    struct td_buf buf;
    size_t sent;
    bool fin;
    bool fin_sent;
    bool blocked; /* flow control said no during this write pass */
};

enum { WL_TX_CONTROL, WL_TX_REQUEST, WL_TX_WT, WL_TX_N };

struct wl_uni {
    int64_t id;
    int kind; /* 0 undecided, 1 control, 2 ignored */
};

struct wl_conn {
    int fd;
    uint32_t id;
    uint32_t channel;
    uint8_t state;    /* enum wl_state */
    bool settings_ok; /* the server's SETTINGS allow extended CONNECT and WebTransport */
    struct td_qclient q;
    uint64_t expiry; /* ngtcp2_conn_get_expiry, cached after every call into qc */
    struct wl_tx tx[WL_TX_N];
    struct wl_uni uni[WL_MAX_UNI];
    struct td_buf ctl;  /* server control stream bytes up to and including SETTINGS */
    struct td_buf req;  /* stream 0: response HEADERS, then capsule DATA */
    struct td_buf line; /* WebTransport stream: the start of a partial line */
    uint64_t measured;  /* measured deliveries received */
};

struct wl_opts {
    const char *host;
    const char *port;    /* WebTransport (UDP) port */
    const char *ws_port; /* publisher WebSocket (TCP) port; default: port */
    const char *path;
    const char *ws_path;
    const char *label;
    enum wl_mode mode;
    uint32_t subs;
    uint32_t channels;
    uint32_t payload;
    uint32_t batch;
    double duration;
    double warmup;
    double rate;
    double timeout;
    uint64_t rounds;
    int server_pid;
    struct sockaddr_in *src;
    size_t nsrc;
};

/* The publisher's WebSocket connection. */
struct wl_pub {
    int fd;
    int state; /* 0 TCP, 1 handshake, 2 connect sent, 3 ready */
    bool want_out;
    char key[25];
    size_t out_off;
    struct td_buf in;
    struct td_buf out;
    uint64_t replies;
    uint64_t next_id;
};

struct wl {
    struct wl_opts o;
    int ep;
    struct sockaddr_storage addr; /* the server's UDP address */
    socklen_t addrlen;
    struct sockaddr_storage ws_addr;
    socklen_t ws_addrlen;
    char authority[300];
    char origin[320];

    struct wl_conn *conns;
    uint32_t started;
    uint32_t inflight;
    uint32_t ready_subs;
    bool closing;
    uint64_t t_first_connect;
    uint64_t t_last_ready;

    gnutls_certificate_credentials_t cred;
    nghttp3_qpack_decoder *qdec;
    struct td_buf connect_hdrs; /* the CONNECT HEADERS frame, the same for every session */

    uint8_t *rbuf; /* WL_RECV_BATCH * WL_PKT_BUF */
    uint64_t now;
    uint64_t last_progress;
    uint64_t t0;

    uint64_t deliveries_all;
    uint64_t deliveries_measured;
    uint64_t measure_seq0;
    struct lg_hist hist;
    uint64_t pkts_in, pkts_out;

    struct wl_pub pub;
    uint64_t seq;
    struct td_buf scratch;
    char *payload_buf;
};

/* ---- wt_quic.c ---- */

/* wl_quic_init prepares TLS credentials, the QPACK codec and the CONNECT header block. */
void wl_quic_init(struct wl *g);
/* wl_quic_free closes every session (CONNECTION_CLOSE, H3_NO_ERROR) and frees them. */
void wl_quic_free(struct wl *g);
/* wl_conn_start creates subscriber c's socket and QUIC connection and sends its Initial. */
void wl_conn_start(struct wl *g, struct wl_conn *c);
/* wl_conn_readable reads every pending datagram of c and answers (ACKs, stream data). */
void wl_conn_readable(struct wl *g, struct wl_conn *c);
/* wl_timers handles the QUIC timers of every connection that expired by g->now; returns the
 * earliest remaining expiry (UINT64_MAX if none). */
uint64_t wl_timers(struct wl *g);

/* ---- wt_pub.c ---- */

/* wl_pub_start connects the publisher (blocking connect, then non-blocking). */
void wl_pub_start(struct wl *g);
/* wl_pub_event handles epoll events on the publisher's socket. */
void wl_pub_event(struct wl *g, uint32_t events);
/* wl_pub_append appends publication g->seq for channel ch to the publisher's output and
 * advances g->seq; wl_pub_flush writes what the socket takes. */
void wl_pub_append(struct wl *g, uint32_t ch);
void wl_pub_flush(struct wl *g);
void wl_pub_free(struct wl *g);

/* ---- td_wtload.c ---- */

/* wl_poll waits up to max_ms (less if a QUIC timer is due sooner) and handles everything. */
void wl_poll(struct wl *g, int max_ms);

#endif
