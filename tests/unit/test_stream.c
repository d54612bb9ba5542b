#include "core/td_rand.h"
#include "engine/td_stream.h"
#include "td_test.h"

#include <stdlib.h>

static struct td_str S(const char *s) {
    return (struct td_str){s, strlen(s)};
}

static void
stream_publish(struct td_stream *s, int count, int64_t now)
{
    for (int i = 0; i < count; i++) {
        struct td_pub *p = td_pub_new(S("{}"), NULL, now);
        td_stream_append(s, p, now);
        td_pub_unref(p);
    }
}

TD_TEST(stream_offsets_start_at_one_and_ring_evicts)
{
    struct td_stream s;
    td_stream_init(&s, 3, 60000);
    TD_CHECK_EQ_INT(s.top, 0);
    TD_CHECK_EQ_INT(strlen(s.epoch), TD_EPOCH_LEN);
    stream_publish(&s, 5, 1000);
    TD_CHECK_EQ_INT(s.top, 5);
    TD_CHECK_EQ_INT(s.count, 3);
    TD_CHECK_EQ_INT(td_stream_oldest(&s), 3);
    td_stream_free(&s);
}

TD_TEST(stream_read_forward_reverse_since)
{
    struct td_stream s;
    td_stream_init(&s, 10, 60000);
    stream_publish(&s, 6, 1000);
    struct td_pub *out[10];
    size_t n = td_stream_read(&s, false, 0, false, 3, 1000, out, 10);
    TD_REQUIRE(n == 3);
    TD_CHECK_EQ_INT(out[0]->offset, 1);
    TD_CHECK_EQ_INT(out[2]->offset, 3);
    n = td_stream_read(&s, false, 0, true, 2, 1000, out, 10);
    TD_REQUIRE(n == 2);
    TD_CHECK_EQ_INT(out[0]->offset, 6);
    TD_CHECK_EQ_INT(out[1]->offset, 5);
    n = td_stream_read(&s, true, 4, false, 10, 1000, out, 10);
    TD_REQUIRE(n == 2);
    TD_CHECK_EQ_INT(out[0]->offset, 5);
    n = td_stream_read(&s, true, 4, true, 10, 1000, out, 10);
    TD_REQUIRE(n == 3);
    TD_CHECK_EQ_INT(out[0]->offset, 3);
    TD_CHECK_EQ_INT(out[2]->offset, 1);
    n = td_stream_read(&s, true, 6, false, 10, 1000, out, 10);
    TD_CHECK_EQ_INT(n, 0);
    n = td_stream_read(&s, false, 0, false, 0, 1000, out, 10);
    TD_CHECK_EQ_INT(n, 0);
    td_stream_free(&s);
}

TD_TEST(stream_ttl_trims_old_publications)
{
    struct td_stream s;
    td_stream_init(&s, 10, 5000);
    stream_publish(&s, 2, 1000);
    stream_publish(&s, 2, 4000);
    td_stream_trim(&s, 6000);
    TD_CHECK_EQ_INT(s.count, 2);
    TD_CHECK_EQ_INT(td_stream_oldest(&s), 3);
    td_stream_trim(&s, 9000);
    TD_CHECK_EQ_INT(s.count, 0);
    TD_CHECK_EQ_INT(s.top, 4); /* the position survives the history */
    td_stream_free(&s);
}

TD_TEST(stream_recover_exactly_the_missed)
{
    struct td_stream s;
    td_stream_init(&s, 100, 60000);
    stream_publish(&s, 5, 1000);
    struct td_recovery r;
    td_stream_recover(&s, S(s.epoch), 2, 300, 1000, &r);
    TD_REQUIRE(r.recovered);
    TD_REQUIRE(r.npubs == 3);
    TD_CHECK_EQ_INT(r.pubs[0]->offset, 3);
    TD_CHECK_EQ_INT(r.pubs[2]->offset, 5);
    free(r.pubs);
    /* At the top already: recovered with nothing to send. */
    td_stream_recover(&s, S(s.epoch), 5, 300, 1000, &r);
    TD_CHECK(r.recovered && r.npubs == 0);
    /* An empty epoch matches any epoch. */
    td_stream_recover(&s, S(""), 4, 300, 1000, &r);
    TD_CHECK(r.recovered && r.npubs == 1);
    free(r.pubs);
    td_stream_free(&s);
}

TD_TEST(stream_recover_fails_on_gap_epoch_limit_future)
{
    struct td_stream s;
    td_stream_init(&s, 2, 60000);
    stream_publish(&s, 6, 1000); /* keeps 5 and 6 */
    struct td_recovery r;
    td_stream_recover(&s, S(s.epoch), 1, 300, 1000, &r);
    TD_CHECK(!r.recovered && r.npubs == 0 && r.pubs == NULL);
    td_stream_recover(&s, S(s.epoch), 4, 300, 1000, &r);
    TD_CHECK(r.recovered && r.npubs == 2);
    free(r.pubs);
    td_stream_recover(&s, S("other"), 4, 300, 1000, &r);
    TD_CHECK(!r.recovered);
    td_stream_recover(&s, S(s.epoch), 4, 1, 1000, &r); /* more missed than the cap */
    TD_CHECK(!r.recovered);
    td_stream_recover(&s, S(s.epoch), 9, 300, 1000, &r); /* ahead of the stream */
    TD_CHECK(!r.recovered);
    /* History expired by TTL: the gap is gone. */
    td_stream_recover(&s, S(s.epoch), 4, 300, 70000, &r);
    TD_CHECK(!r.recovered);
    td_stream_free(&s);
}

TD_TEST(stream_pub_copies_data_and_info)
{
    struct td_client_info info = {S("u1"), S("c1"), S("{\"a\":1}"), S("")};
    char data[] = "\"payload\"";
    struct td_pub *p = td_pub_new(S(data), &info, 42);
    data[1] = 'X';
    TD_CHECK_MEM_STR(p->wire.data.p, p->wire.data.n, "\"payload\"");
    TD_REQUIRE(p->wire.info != NULL);
    TD_CHECK_MEM_STR(p->wire.info->user.p, p->wire.info->user.n, "u1");
    TD_CHECK_MEM_STR(p->wire.info->conn_info.p, p->wire.info->conn_info.n, "{\"a\":1}");
    TD_CHECK_EQ_INT(p->time_ms, 42);
    td_pub_unref(p);
}
