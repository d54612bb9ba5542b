/*
 * td_metrics.h - GET /metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * The server fills a snapshot from its counters; this module only formats it, so the
 * output is unit-tested without a server.
 */
#ifndef TD_METRICS_H
#define TD_METRICS_H

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
};

/* td_metrics_write appends the exposition text for m to out. */
void td_metrics_write(struct td_buf *out, const struct td_metrics *m);

#endif
