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
};

/* td_metrics_write appends the exposition text for m to out. */
void td_metrics_write(struct td_buf *out, const struct td_metrics *m);

#endif
