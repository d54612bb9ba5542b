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
