/*
 * td_udp.h - the QUIC UDP listener on libuv: the loop-side owner of td_quic connections.
 *
 * td_quic is an engine without I/O; this module gives it a socket, a clock and timers. It
 * owns one UDP socket (IPv4 or IPv6), a map from connection ID to connection, one uv_timer
 * per connection at td_quic_conn_deadline, and the connections themselves. Stream events go
 * up to a struct td_udp_handler (the HTTP/3 + WebTransport layer in the server).
 *
 * Receiving: datagrams are read in batches (recvmmsg through UV_UDP_RECVMMSG) into one
 * listener-wide buffer. Empty and truncated datagrams are dropped before td_quic sees them.
 * Each datagram is routed by its destination CID:
 *   known CID           -> td_quic_conn_read on that connection
 *   unknown, Initial    -> a new connection, if the limits allow (else dropped, "refused")
 *   unknown version     -> a Version Negotiation reply      } both rate-limited together
 *   unknown, short hdr  -> a Stateless Reset                } (max_stateless_per_sec)
 *   anything else       -> dropped
 *
 * Sending: a connection with something to send is marked dirty (by a read, its timer, or
 * td_udp_want_write). Dirty connections are written once per loop iteration, from a
 * uv_check handle (a uv_idle handle keeps the poll phase from blocking while any are
 * pending): td_quic_conn_write until it yields nothing, the packets gathered into one
 * batch sent with sendmmsg(2), consecutive equal-size packets to one destination merged
 * into one UDP_SEGMENT (GSO) message when the kernel supports it. When the socket would
 * block, the rest of the batch is handed to uv_udp_send (libuv waits for POLLOUT) and no
 * connection is written again until that drains: dirty connections wait, nothing spins.
 * Then each connection's timer is re-armed at td_quic_conn_deadline.
 *
 * Lifetime of a connection: accepted -> (handler events) -> td_quic says TD_QUIC_DEAD (idle
 * timeout, end of the closing or draining period) or the listener stops -> its CIDs leave
 * the map, handler->on_closed runs exactly once, td_quic_conn_del. This never happens inside
 * a td_quic or handler callback; it happens in the uv_check pass (or in td_udp_stop).
 *
 * Time: td_quic gets uv_hrtime() nanoseconds; timers are libuv milliseconds, rounded up.
 * Everything runs on the loop thread.
 */
#ifndef TD_UDP_H
#define TD_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "quic/td_quic.h"

#define TD_UDP_DEFAULT_MAX_CONNS 10000
#define TD_UDP_DEFAULT_MAX_CONNS_PER_IP 100
#define TD_UDP_DEFAULT_MAX_STATELESS_PER_SEC 200

struct td_udp;

/*
 * The application above QUIC. `app` is what on_accept returned for the connection; `c` is
 * the td_quic connection, on which the callbacks may call td_quic_stream_send and friends
 * (output they queue inside a callback is written without td_udp_want_write). A callback
 * returning nonzero closes the connection with INTERNAL_ERROR (td_quic's rule). Callbacks
 * run on the loop thread and must not call td_udp_stop or td_udp_close_all. NULL members
 * are allowed (the event is then ignored), except on_accept.
 */
struct td_udp_handler {
    /* A client Initial created connection c: return the per-connection state (non-NULL), or
     * NULL to refuse it (the connection is dropped silently and counted as refused; no other
     * callback runs for it). Runs once per connection, outside any td_quic callback (right
     * after td_quic_conn_accept returned) and before any other callback for it. */
    void *(*on_accept)(void *ud, struct td_quic_conn *c);
    /* The 1-RTT keys exist: open the HTTP/3 control stream here. td_quic reports this from
     * inside td_quic_conn_accept; td_udp replays it right after on_accept, and a nonzero
     * return there closes the connection with H3_INTERNAL_ERROR (0x102). */
    int (*on_ready)(void *app, struct td_quic_conn *c);
    /* Stream bytes in order, fin on the last call. The application returns flow-control
     * credit with td_quic_stream_consumed once it has used the bytes. */
    int (*on_stream_data)(void *app, struct td_quic_conn *c, int64_t id, const uint8_t *p, size_t n,
                          bool fin);
    /* The peer reset the stream (reset) or sent STOP_SENDING (!reset). */
    int (*on_stream_abort)(void *app, struct td_quic_conn *c, int64_t id, uint64_t code,
                           bool reset);
    /* The stream is gone in both directions. */
    void (*on_stream_close)(void *app, struct td_quic_conn *c, int64_t id, uint64_t code);
    int (*on_datagram)(void *app, struct td_quic_conn *c, const uint8_t *p, size_t n);
    /* The connection is finished (dead, or the listener is stopping): free app. c is still
     * valid during the call (nothing can be sent any more) and is deleted right after; do
     * not use it, nor call td_udp_want_write on it, afterwards. Called exactly once for
     * every connection on_accept accepted. */
    void (*on_closed)(void *app, struct td_quic_conn *c);
};

/* Zero members take the defaults. */
struct td_udp_limits {
    uint32_t max_conns;             /* connections at once (TD_UDP_DEFAULT_MAX_CONNS) */
    uint32_t max_conns_per_ip;      /* per remote address (TD_UDP_DEFAULT_MAX_CONNS_PER_IP) */
    uint32_t max_stateless_per_sec; /* Version Negotiation + Stateless Reset replies */
};

struct td_udp_stats {
    uint64_t conns;    /* open now (accepted, on_closed not yet called) */
    uint64_t cids;     /* entries in the CID map now */
    uint64_t accepted; /* connections created */
    uint64_t refused;  /* Initials turned away by a limit, by td_udp_close_all or on_accept */
    uint64_t closed;   /* on_closed calls */
    uint64_t packets_in, bytes_in;
    uint64_t packets_out, bytes_out;
    uint64_t version_negotiations; /* replies sent */
    uint64_t stateless_resets;     /* replies sent */
    uint64_t dropped;      /* datagrams ignored: empty, truncated, unroutable, rate-limited */
    uint64_t send_errors;  /* datagrams the kernel refused (other than "would block") */
    uint64_t send_blocked; /* times the socket said EAGAIN */
    uint64_t gso_messages; /* sendmmsg messages that carried more than one segment */
    bool gso;              /* UDP_SEGMENT is in use (the kernel has it and did not refuse it) */
};

/*
 * td_udp_start binds a UDP socket to address:port (an IPv4 or IPv6 literal; port 0 lets the
 * OS choose) and starts serving QUIC with ctx (borrowed: it must outlive the listener), the
 * handler h (copied) with its ud, and the limits lim (copied; NULL for all defaults).
 * Returns 0 with *out set, or a negative code (TD_EINVAL for a bad address, -errno from the
 * bind) with a one-line reason in err.
 */
int td_udp_start(struct td_udp **out, uv_loop_t *loop, const char *address, int port,
                 struct td_quic_ctx *ctx, const struct td_udp_handler *h, void *ud,
                 const struct td_udp_limits *lim, char *err, size_t errlen);

/* td_udp_port returns the bound port. */
int td_udp_port(const struct td_udp *u);

/*
 * td_udp_want_write says the application queued output on c (stream data, a datagram, a
 * close) outside a handler callback, e.g. in a fan-out or from its own timer: c is written
 * at the end of this loop iteration. Cheap and idempotent; also fine inside callbacks. c must
 * be a connection of a running listener whose on_closed has not run.
 */
void td_udp_want_write(struct td_quic_conn *c);

/*
 * td_udp_close_all starts an application close (h3_code, e.g. H3_NO_ERROR 0x100) on every
 * connection and writes the CONNECTION_CLOSE packets now; afterwards new connections are
 * refused. Connections then finish their closing period (on_closed follows) unless
 * td_udp_stop ends them first. Not from inside a handler callback.
 */
void td_udp_close_all(struct td_udp *u, uint64_t h3_code);

/*
 * td_udp_stop stops reading, ends every connection (on_closed for each, without sending
 * anything more), closes the handles and frees the listener; done(done_ud) runs (if not NULL)
 * from a libuv close callback once all of that is finished. u is invalid after the call.
 * Not from inside a handler callback.
 */
void td_udp_stop(struct td_udp *u, void (*done)(void *ud), void *done_ud);

/* td_udp_get_stats copies the counters into *out. */
void td_udp_get_stats(const struct td_udp *u, struct td_udp_stats *out);

#endif
