/*
 * loadgen.h - shared state of td_loadgen, a single-threaded epoll load generator for
 * WebSocket pub/sub servers (see bench/loadgen/README.md).
 *
 * Three parts:
 *   lg_hist.c   latency histogram (log buckets, < 1% error)
 *   lg_net.c    connections: non-blocking connect, optional TLS (--tls), HTTP upgrade,
 *               RFC 6455 client framing, the four pub/sub protocols, delivery detection,
 *               the epoll step
 *   loadgen.c   command line, the four modes, the JSON report
 *
 * Every connection, subscriber or publisher, goes through the same states:
 *
 *   TCP        connect() in progress; registered for EPOLLOUT only
 *   TLS        --tls only: GnuTLS client handshake in progress on the non-blocking socket;
 *              registered for the direction GnuTLS is waiting on
 *   HANDSHAKE  upgrade request sent; the response accumulates in in until "\r\n\r\n"
 *   PROTO      WebSocket open, protocol setup sent (connect/subscribe, CONNECT/SUB/PING);
 *              waiting for the acknowledgement (centrifuge reply id 2, or id 1 for the
 *              publisher; NATS PONG). Raw connections skip this state
 *   READY      counted as set up; every delivery is counted from here on
 *
 * With --tls every connection (subscribers and publisher) runs GnuTLS over its socket
 * (gnutls_record_send/recv; on GNUTLS_E_AGAIN, gnutls_record_get_direction says which
 * readiness to wait for). The server's certificate is NOT verified: this is a loopback
 * benchmark tool, not a client anyone should trust with a network. Without --tls, c->tls is
 * NULL and the plaintext send/recv path is the one it always was.
 *
 * Any failure (refused, rejected, closed by the server, protocol error) ends the process
 * through lg_fail: a benchmark that lost a connection has no result worth reporting.
 *
 * Deliveries are found by scanning message bytes for the payload's `{"t":` prefix, parsing
 * the send timestamp t (ns on lg_now's clock) and the publication sequence number s. A
 * delivery counts as measured when s >= measure_seq0, so publications still in flight when
 * the warm-up ends are attributed to the phase they were sent in.
 */
#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <gnutls/gnutls.h>

#include "core/td_buf.h"
#include "lg_util.h" /* lg_now, lg_fail and the rest of the shared scaffolding */

enum lg_proto {
    LG_PROTO_JSON,
    LG_PROTO_PB,
    LG_PROTO_RAW,
    LG_PROTO_NATS,
};

enum lg_mode {
    LG_MODE_ROUNDS,
    LG_MODE_RATE,
    LG_MODE_IDLE,
    LG_MODE_CONNECT,
};

enum lg_state {
    LG_ST_NEW,
    LG_ST_TCP,
    LG_ST_TLS,
    LG_ST_HANDSHAKE,
    LG_ST_PROTO,
    LG_ST_READY,
};

enum {
    LG_MAX_INFLIGHT = 256,            /* connection setups in progress at once */
    LG_READ_BUF = 1 << 20,            /* the shared read buffer */
    LG_MAX_MESSAGE = 64 << 20,        /* cap on one server message or NATS stream backlog */
    LG_MAX_HANDSHAKE = 16384,         /* cap on the HTTP upgrade response head */
    LG_HIST_BUCKETS = 256 + 24 * 128, /* values up to 2^32 us, 128 sub-buckets per octave */
};

/* Latency histogram in microseconds: exact below 256, then 128 buckets per power of two. */
struct lg_hist {
    uint64_t count;
    uint64_t max;
    uint64_t b[LG_HIST_BUCKETS];
};

/* lg_hist_add records one value (microseconds; values >= 2^32 land in the top bucket). */
void lg_hist_add(struct lg_hist *h, uint64_t us);

/* lg_hist_quantile returns the value at quantile q (0..1], never above the recorded maximum;
 * 0 when the histogram is empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

struct lg_conn {
    int fd;
    uint32_t id;      /* index in lg.conns; the publisher has id == subs */
    uint32_t channel; /* subscriber: channel index; publisher: unused */
    uint8_t state;    /* enum lg_state */
    uint8_t events;   /* epoll events currently registered (EPOLLIN/EPOLLOUT bits) */
    uint8_t frag_op;  /* opcode of a fragmented message in progress, else 0 */
    bool is_pub;
    bool nats_connect_sent;
    size_t out_off;       /* bytes of out already written */
    size_t tls_retry;     /* --tls: length of a gnutls_record_send that returned EAGAIN (it must
                           * be repeated with the same length), else 0 */
    gnutls_session_t tls; /* --tls: the client session; NULL on plaintext */
    uint64_t measured;    /* measured deliveries received */
    struct td_buf in;     /* handshake head, or the start of a partial frame */
    struct td_buf out;    /* bytes waiting to be written */
    struct td_buf frag;   /* reassembly of a fragmented message */
    struct td_buf nats;   /* NATS: protocol bytes not yet parsed (partial line or MSG) */
};

struct lg_opts {
    const char *host;
    const char *port;
    const char *path; /* NULL: protocol default */
    const char *label;
    enum lg_proto proto;
    enum lg_mode mode;
    uint32_t subs;
    uint32_t channels;
    uint32_t payload;
    uint32_t batch;
    double duration;
    double warmup;
    double rate;
    double timeout;
    uint64_t rounds; /* 0: no cap */
    int server_pid;  /* 0: none */
    bool tls;        /* wss: TLS on every connection, certificate not verified */
    struct sockaddr_in *src;
    size_t nsrc;
};

struct lg {
    struct lg_opts o;
    int ep;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char hostport[300]; /* Host header value */
    uint8_t key_salt[12];
    uint32_t mask_state;                       /* xorshift state for frame masking keys */
    gnutls_certificate_credentials_t tls_cred; /* --tls: empty client credentials */
    gnutls_priority_t tls_prio;                /* --tls: GnuTLS's default priorities */

    struct lg_conn *conns; /* subs + 1 entries; the last is the publisher */
    uint32_t started;      /* subscriber connections started */
    uint32_t inflight;     /* setups in progress */
    uint32_t ready_subs;
    bool pub_ready;
    bool closing; /* end of run: server closes are no longer failures */
    uint64_t t_first_connect;
    uint64_t t_last_ready;

    uint8_t *rbuf;
    uint64_t now; /* lg_now() taken after the last read */
    uint64_t last_progress;
    uint64_t t0; /* epoch for payload timestamps */

    /* deliveries */
    uint64_t deliveries_all;
    uint64_t deliveries_measured;
    uint64_t measure_seq0; /* UINT64_MAX until measuring starts */
    struct lg_hist hist;

    /* publisher */
    uint64_t seq;     /* next publication sequence number */
    uint64_t next_id; /* next centrifuge command id */
    uint64_t pub_replies;
    struct td_buf scratch; /* message being built */
    char *payload_buf;
};

/* lg_net_init prepares g's sockets side (epoll, read buffer, salt); call once after the
 * options are parsed and g->addr is set. */
void lg_net_init(struct lg *g);

/* lg_net_free closes every connection and releases what lg_net_init and the connections
 * allocated. Sets g->closing first. */
void lg_net_free(struct lg *g);

/* lg_conn_start starts connection c (a subscriber when c->id < subs, else the publisher):
 * socket, optional bind to a source address, non-blocking connect. Fails the process if the
 * connect is refused outright. */
void lg_conn_start(struct lg *g, struct lg_conn *c);

/* lg_poll waits up to timeout_ms for events and handles them all (reads, protocol replies,
 * deliveries, writes). */
void lg_poll(struct lg *g, int timeout_ms);

/* lg_pub_append appends publication number g->seq for channel ch to the publisher's output
 * (not yet written) and advances g->seq. */
void lg_pub_append(struct lg *g, uint32_t ch);

/* lg_conn_flush writes as much of c's pending output as the socket takes and keeps the
 * EPOLLOUT registration in line with what is left. */
void lg_conn_flush(struct lg *g, struct lg_conn *c);

#endif
