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
}
