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
