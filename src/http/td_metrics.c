#include "http/td_metrics.h"

static void metric(struct td_buf *out, const char *name, const char *type, const char *help,
                   unsigned long long value)
{
    td_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                   value);
}

void td_metrics_write(struct td_buf *out, const struct td_metrics *m)
{
    metric(out, "tandem_tcp_connections", "gauge", "Open TCP connections.", m->tcp_connections);
    metric(out, "tandem_clients", "gauge", "Connected WebSocket client sessions.", m->clients);
    metric(out, "tandem_subscriptions", "gauge", "Client subscriptions to channels.",
           m->subscriptions);
    metric(out, "tandem_channels", "gauge", "Channels with state in memory.", m->channels);
    metric(out, "tandem_history_publications", "gauge",
           "Publications kept in history over all channels.", m->history_publications);
    metric(out, "tandem_publications_total", "counter", "Publications accepted.",
           m->publications_total);
    metric(out, "tandem_deliveries_total", "counter", "Publications queued to subscribers.",
           m->deliveries_total);
    metric(out, "tandem_slow_disconnects_total", "counter",
           "Clients closed with 3008 because their output queue was full.",
           m->slow_disconnects_total);
    metric(out, "tandem_bytes_in_total", "counter", "Bytes read from clients.", m->bytes_in_total);
    metric(out, "tandem_bytes_out_total", "counter", "Bytes written to clients.",
           m->bytes_out_total);
    metric(out, "tandem_uptime_seconds", "gauge", "Seconds since the server started.",
           (unsigned long long)(m->uptime_seconds > 0 ? m->uptime_seconds : 0));
    if (m->yjs_enabled) {
        metric(out, "tandem_yjs_rooms", "gauge", "Yjs rooms in memory.", m->yjs_rooms);
        metric(out, "tandem_yjs_connections", "gauge", "y-websocket connections joined to a room.",
               m->yjs_connections);
        metric(out, "tandem_yjs_updates_total", "counter",
               "Yjs updates applied to a document (from clients and the API).",
               m->yjs_updates_total);
        metric(out, "tandem_yjs_rejected_total", "counter",
               "Yjs updates refused: malformed, too large, or from a read-only connection.",
               m->yjs_rejected_total);
    }
    if (m->tls_enabled) {
        metric(out, "tandem_tls_handshakes_total", "counter", "TLS handshakes completed on TCP.",
               m->tls_handshakes_total);
        metric(out, "tandem_tls_handshake_errors_total", "counter",
               "TLS handshakes failed on TCP (plaintext requests to the TLS port included).",
               m->tls_handshake_errors_total);
    }
    if (m->wt_enabled) {
        metric(out, "tandem_webtransport_sessions", "gauge", "Open WebTransport sessions.",
               m->wt_sessions);
        metric(out, "tandem_quic_connections", "gauge", "Open QUIC connections.",
               m->wt_connections);
        metric(out, "tandem_webtransport_sessions_total", "counter",
               "WebTransport sessions accepted.", m->wt_sessions_total);
        metric(out, "tandem_webtransport_refused_total", "counter",
               "WebTransport CONNECT requests refused (path, origin, shutdown).",
               m->wt_refused_total);
        metric(out, "tandem_webtransport_datagrams_total", "counter",
               "Publications sent as HTTP/3 datagrams.", m->wt_datagrams_total);
        metric(out, "tandem_quic_packets_in_total", "counter", "UDP datagrams received.",
               m->quic_packets_in_total);
        metric(out, "tandem_quic_packets_out_total", "counter", "UDP datagrams sent.",
               m->quic_packets_out_total);
        metric(out, "tandem_quic_dropped_total", "counter",
               "UDP datagrams ignored: empty, truncated, unroutable or rate-limited.",
               m->quic_dropped_total);
        metric(out, "tandem_quic_connections_refused_total", "counter",
               "QUIC Initial packets refused by the connection limits.",
               m->quic_conns_refused_total);
    }
    if (!m->store_enabled)
        return;
    metric(out, "tandem_store_pending", "gauge", "Store operations waiting for their commit.",
           m->store_pending);
    metric(out, "tandem_store_committed_operations_total", "counter",
           "Operations (publications, channel changes) made durable.", m->committed_ops_total);
    metric(out, "tandem_store_failed_commits_total", "counter",
           "Store transactions that failed and were rolled back.", m->store_commits_failed);
    metric(out, "tandem_store_expired_rows_total", "counter",
           "History rows and idempotency keys removed by expiry.", m->store_expired_rows);
    const char *h = "tandem_store_commit_seconds";
    td_buf_appendf(out,
                   "# HELP %s Time to commit one batch of store operations (group commit).\n"
                   "# TYPE %s histogram\n",
                   h, h);
    for (size_t i = 0; i < m->commit_nbounds; i++)
        td_buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", h, m->commit_bounds[i],
                       (unsigned long long)m->commit_buckets[i]);
    unsigned long long count = (unsigned long long)m->commit_buckets[m->commit_nbounds];
    td_buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", h, count, h,
                   m->commit_sum_seconds, h, count);
}
