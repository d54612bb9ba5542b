#include "http/td_metrics.h"
#include "td_test.h"

TD_TEST(metrics_exposition_format)
{
    struct td_metrics m = {0};
    m.clients = 3;
    m.publications_total = 12345678901ULL;
    m.uptime_seconds = -5; /* clamps */
    struct td_buf b;
    td_buf_init(&b);
    td_metrics_write(&b, &m);
    td_buf_append_byte(&b, 0);
    const char *t = (const char *)b.data;
    TD_CHECK(strstr(t, "# TYPE tandem_clients gauge\ntandem_clients 3\n") != NULL);
    TD_CHECK(strstr(t, "# TYPE tandem_publications_total counter\n"
                       "tandem_publications_total 12345678901\n") != NULL);
    TD_CHECK(strstr(t, "\ntandem_uptime_seconds 0\n") != NULL);
    TD_CHECK(strstr(t, "# HELP tandem_slow_disconnects_total ") != NULL);
    td_buf_free(&b);
}

TD_TEST(metrics_yjs_only_when_enabled)
{
    struct td_metrics m = {0};
    m.yjs_rooms = 2;
    m.yjs_connections = 5;
    m.yjs_updates_total = 7;
    m.yjs_rejected_total = 1;
    struct td_buf b;
    td_buf_init(&b);
    td_metrics_write(&b, &m);
    td_buf_append_byte(&b, 0);
    TD_CHECK(strstr((const char *)b.data, "tandem_yjs_") == NULL);
    td_buf_reset(&b);
    m.yjs_enabled = true;
    td_metrics_write(&b, &m);
    td_buf_append_byte(&b, 0);
    const char *t = (const char *)b.data;
    TD_CHECK(strstr(t, "# TYPE tandem_yjs_rooms gauge\ntandem_yjs_rooms 2\n") != NULL);
    TD_CHECK(strstr(t, "# TYPE tandem_yjs_connections gauge\ntandem_yjs_connections 5\n") != NULL);
    TD_CHECK(strstr(t, "# TYPE tandem_yjs_updates_total counter\ntandem_yjs_updates_total 7\n") !=
             NULL);
    TD_CHECK(strstr(t, "# TYPE tandem_yjs_rejected_total counter\ntandem_yjs_rejected_total 1\n") !=
             NULL);
    td_buf_free(&b);
}

TD_TEST(metrics_tls_and_webtransport_only_when_enabled)
{
    struct td_metrics m = {0};
    m.tls_handshakes_total = 3;
    m.wt_sessions = 4;
    m.wt_datagrams_total = 9;
    m.quic_conns_refused_total = 2;
    struct td_buf b;
    td_buf_init(&b);
    td_metrics_write(&b, &m);
    td_buf_append_byte(&b, 0);
    TD_CHECK(strstr((const char *)b.data, "tandem_tls_") == NULL);
    TD_CHECK(strstr((const char *)b.data, "tandem_webtransport_") == NULL);
    TD_CHECK(strstr((const char *)b.data, "tandem_quic_") == NULL);
    td_buf_reset(&b);
    m.tls_enabled = true;
    m.wt_enabled = true;
    td_metrics_write(&b, &m);
    td_buf_append_byte(&b, 0);
    const char *t = (const char *)b.data;
    TD_CHECK(strstr(t, "tandem_tls_handshakes_total 3\n") != NULL);
    TD_CHECK(
        strstr(t, "# TYPE tandem_webtransport_sessions gauge\ntandem_webtransport_sessions 4\n") !=
        NULL);
    TD_CHECK(strstr(t, "tandem_webtransport_datagrams_total 9\n") != NULL);
    TD_CHECK(strstr(t, "tandem_quic_connections_refused_total 2\n") != NULL);
    td_buf_free(&b);
}
