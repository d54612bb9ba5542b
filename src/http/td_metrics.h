/*
 * td_metrics.h - GET /metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * The server fills a snapshot from its counters; this module only formats it, so the
 * output is unit-tested without a server.
 */
#ifndef TD_METRICS_H
#define TD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"

struct td_metrics {
    uint64_t tcp_connections;        /* gauge: open TCP connections (HTTP and WebSocket) */
    uint64_t clients;                /* gauge: WebSocket client sessions */
    uint64_t subscriptions;          /* gauge */
    uint64_t channels;               /* gauge: channels with state in memory */
    uint64_t history_publications;   /* gauge: publications kept in history, all channels */
    uint64_t publications_total;     /* counter */
    uint64_t deliveries_total;       /* counter: publications queued to subscribers */
    uint64_t slow_disconnects_total; /* counter: clients closed with 3008 */
    uint64_t bytes_in_total;         /* counter */
    uint64_t bytes_out_total;        /* counter */
    int64_t uptime_seconds;          /* gauge */
    /* durable store (all zero when no namespace keeps durable history) */
    bool store_enabled;
    uint64_t store_pending;        /* gauge: operations waiting for a commit */
    uint64_t store_commits_failed; /* counter */
    uint64_t store_expired_rows;   /* counter */
    /* histogram of commit latency: cumulative counts per upper bound, then +Inf */
    const double *commit_bounds;
    size_t commit_nbounds;
    const uint64_t *commit_buckets; /* commit_nbounds + 1 entries */
    double commit_sum_seconds;
    uint64_t committed_ops_total; /* counter: operations made durable */
    /* Yjs rooms (written only when yjs_enabled) */
    bool yjs_enabled;
    uint64_t yjs_rooms;          /* gauge: rooms in memory */
    uint64_t yjs_connections;    /* gauge: y-websocket connections joined to a room */
    uint64_t yjs_updates_total;  /* counter: updates applied (clients and API) */
    uint64_t yjs_rejected_total; /* counter: updates refused (malformed, too large, read-only) */
    /* TLS on TCP (written only when tls_enabled) */
    bool tls_enabled;
    uint64_t tls_handshakes_total;       /* counter */
    uint64_t tls_handshake_errors_total; /* counter: includes plaintext requests to the port */
    /* WebTransport (written only when wt_enabled) */
    bool wt_enabled;
    uint64_t wt_sessions;              /* gauge: WebTransport sessions open */
    uint64_t wt_connections;           /* gauge: QUIC connections open */
    uint64_t wt_sessions_total;        /* counter: sessions accepted */
    uint64_t wt_refused_total;         /* counter: CONNECT requests refused */
    uint64_t wt_datagrams_total;       /* counter: publications sent as datagrams */
    uint64_t quic_packets_in_total;    /* counter: UDP datagrams received */
    uint64_t quic_packets_out_total;   /* counter: UDP datagrams sent */
    uint64_t quic_dropped_total;       /* counter: UDP datagrams ignored (malformed, limits) */
    uint64_t quic_conns_refused_total; /* counter: Initials refused by the connection limits */
};

/* td_metrics_write appends the exposition text for m to out. */
void td_metrics_write(struct td_buf *out, const struct td_metrics *m);

#endif
