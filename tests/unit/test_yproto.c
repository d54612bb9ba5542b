#include <string.h>

#include "core/td_err.h"
#include "proto/td_yproto.h"
#include "td_test.h"

TD_TEST(yproto_decode_sync)
{
    /* step1 with an empty state vector, as every client sends on a new room */
    static const uint8_t step1[] = {0x00, 0x00, 0x01, 0x00};
    struct td_yproto_msg m;
    TD_REQUIRE(td_yproto_decode(step1, sizeof(step1), 0, &m) == 0);
    TD_CHECK_EQ_INT(m.type, TD_YPROTO_SYNC);
    TD_CHECK_EQ_INT(m.subtype, TD_YPROTO_STEP1);
    TD_CHECK_EQ_INT(m.payload.len, 1);
    TD_CHECK_EQ_INT(m.payload.p[0], 0);
    /* an update of "hi" captured from the reference server */
    static const uint8_t upd[] = {0x00, 0x02, 0x0c, 0x01, 0x01, 0x07, 0x00, 0x04,
                                  0x01, 0x01, 0x74, 0x02, 0x68, 0x69, 0x00};
    TD_REQUIRE(td_yproto_decode(upd, sizeof(upd), 0, &m) == 0);
    TD_CHECK_EQ_INT(m.subtype, TD_YPROTO_UPDATE);
    TD_CHECK_EQ_INT(m.payload.len, 12);
    TD_CHECK(m.payload.p == upd + 3);
}

TD_TEST(yproto_decode_errors)
{
    struct td_yproto_msg m;
    static const uint8_t trunc[] = {0x00, 0x02, 0x05, 0x01};
    TD_CHECK_EQ_INT(td_yproto_decode(trunc, sizeof(trunc), 0, &m), TD_EPROTO);
    static const uint8_t badsub[] = {0x00, 0x03, 0x00};
    TD_CHECK_EQ_INT(td_yproto_decode(badsub, sizeof(badsub), 0, &m), TD_EPROTO);
    static const uint8_t trailing[] = {0x00, 0x00, 0x01, 0x00, 0x00};
    TD_CHECK_EQ_INT(td_yproto_decode(trailing, sizeof(trailing), 0, &m), TD_EPROTO);
    TD_CHECK_EQ_INT(td_yproto_decode(trailing, 0, 0, &m), TD_EPROTO);
    static const uint8_t step1[] = {0x00, 0x00, 0x01, 0x00};
    TD_CHECK_EQ_INT(td_yproto_decode(step1, sizeof(step1), 3, &m), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_yproto_decode(step1, sizeof(step1), 4, &m), 0);
    /* unknown message types decode (and are ignored by the room) */
    static const uint8_t unknown[] = {0x07, 0xff, 0xff};
    TD_CHECK_EQ_INT(td_yproto_decode(unknown, sizeof(unknown), 0, &m), 0);
    TD_CHECK_EQ_INT(m.type, 7);
    /* auth and query-awareness, as a client may send */
    static const uint8_t auth[] = {0x02, 0x00, 0x01, 'x'};
    TD_REQUIRE(td_yproto_decode(auth, sizeof(auth), 0, &m) == 0);
    TD_CHECK_EQ_INT(m.type, TD_YPROTO_AUTH);
    TD_CHECK_MEM_STR(m.reason.p, m.reason.len, "x");
    static const uint8_t badauth[] = {0x02, 0x00, 0x01, 0xff};
    TD_CHECK_EQ_INT(td_yproto_decode(badauth, sizeof(badauth), 0, &m), TD_EPROTO);
    static const uint8_t query[] = {0x03};
    TD_REQUIRE(td_yproto_decode(query, sizeof(query), 0, &m) == 0);
    TD_CHECK_EQ_INT(m.type, TD_YPROTO_QUERY_AWARENESS);
}

TD_TEST(yproto_awareness_parse)
{
    /* captured: 1 client, id 7, clock 1, {"user":{"name":"A"}} */
    static const uint8_t msg[] = {0x01, 0x19, 0x01, 0x07, 0x01, 0x15, '{', '"', 'u',
                                  's',  'e',  'r',  '"',  ':',  '{',  '"', 'n', 'a',
                                  'm',  'e',  '"',  ':',  '"',  'A',  '"', '}', '}'};
    struct td_yproto_msg m;
    TD_REQUIRE(td_yproto_decode(msg, sizeof(msg), 0, &m) == 0);
    TD_CHECK_EQ_INT(m.type, TD_YPROTO_AWARENESS);
    struct td_yaware_iter it;
    uint64_t n = 0;
    TD_REQUIRE(td_yproto_aware_begin(&it, m.payload.p, m.payload.len, &n) == 0);
    TD_CHECK_EQ_INT(n, 1);
    struct td_yaware_entry e;
    TD_REQUIRE(td_yproto_aware_next(&it, &e) == 1);
    TD_CHECK_EQ_INT(e.client_id, 7);
    TD_CHECK_EQ_INT(e.clock, 1);
    TD_CHECK(!e.removed);
    TD_CHECK_MEM_STR(e.state.p, e.state.len, "{\"user\":{\"name\":\"A\"}}");
    TD_CHECK_EQ_INT(td_yproto_aware_next(&it, &e), 0);
    TD_CHECK_EQ_INT(td_yproto_aware_check(m.payload.p, m.payload.len), 0);

    /* the removal the reference server sends: same clock, state null */
    static const uint8_t rm[] = {0x01, 0x08, 0x01, 0x07, 0x01, 0x04, 'n', 'u', 'l', 'l'};
    TD_REQUIRE(td_yproto_decode(rm, sizeof(rm), 0, &m) == 0);
    TD_REQUIRE(td_yproto_aware_begin(&it, m.payload.p, m.payload.len, NULL) == 0);
    TD_REQUIRE(td_yproto_aware_next(&it, &e) == 1);
    TD_CHECK(e.removed);

    /* the keepalive: zero entries */
    static const uint8_t empty[] = {0x00};
    TD_CHECK_EQ_INT(td_yproto_aware_check(empty, 1), 0);
}

TD_TEST(yproto_awareness_errors)
{
    static const uint8_t badjson[] = {0x01, 0x07, 0x01, 0x02, '{', 'x'};
    TD_CHECK_EQ_INT(td_yproto_aware_check(badjson, sizeof(badjson)), TD_EPROTO);
    static const uint8_t toomany[] = {0x05, 0x01, 0x01, 0x00};
    TD_CHECK_EQ_INT(td_yproto_aware_check(toomany, sizeof(toomany)), TD_EPROTO);
    static const uint8_t trailing[] = {0x01, 0x07, 0x01, 0x01, '1', 0x00};
    TD_CHECK_EQ_INT(td_yproto_aware_check(trailing, sizeof(trailing)), TD_EPROTO);
    static const uint8_t ok[] = {0x01, 0x07, 0x01, 0x01, '1'};
    TD_CHECK_EQ_INT(td_yproto_aware_check(ok, sizeof(ok)), 0);
    /* a count above the cap, with enough bytes to be plausible */
    struct td_buf b;
    td_buf_init(&b);
    td_lib0_write_varuint(&b, TD_YPROTO_MAX_AWARENESS_ENTRIES + 1);
    for (int i = 0; i < TD_YPROTO_MAX_AWARENESS_ENTRIES + 1; i++) {
        td_lib0_write_varuint(&b, (uint64_t)i);
        td_lib0_write_varuint(&b, 1);
        td_lib0_write_varstring(&b, "1", 1);
    }
    TD_CHECK_EQ_INT(td_yproto_aware_check(b.data, b.len), TD_ELIMIT);
    td_buf_free(&b);
}

TD_TEST(yproto_encode_round_trip)
{
    struct td_buf b;
    td_buf_init(&b);
    static const uint8_t sv[] = {0x00};
    td_yproto_write_sync(&b, TD_YPROTO_STEP1, sv, 1);
    static const uint8_t want1[] = {0x00, 0x00, 0x01, 0x00};
    TD_CHECK(b.len == sizeof(want1) && memcmp(b.data, want1, b.len) == 0);
    td_buf_reset(&b);
    static const uint8_t empty_update[] = {0x00, 0x00};
    td_yproto_write_sync(&b, TD_YPROTO_STEP2, empty_update, 2);
    static const uint8_t want2[] = {0x00, 0x01, 0x02, 0x00, 0x00};
    TD_CHECK(b.len == sizeof(want2) && memcmp(b.data, want2, b.len) == 0);

    struct td_yaware_entry e[2] = {
        {.client_id = 7, .clock = 1, .state = {(const uint8_t *)"{\"a\":1}", 7}},
        {.client_id = 1ull << 40, .clock = 300, .removed = true},
    };
    struct td_buf u;
    td_buf_init(&u);
    td_yproto_aware_encode(&u, e, 2);
    td_buf_reset(&b);
    td_yproto_write_awareness(&b, u.data, u.len);
    struct td_yproto_msg m;
    TD_REQUIRE(td_yproto_decode(b.data, b.len, 0, &m) == 0);
    struct td_yaware_iter it;
    uint64_t n;
    TD_REQUIRE(td_yproto_aware_begin(&it, m.payload.p, m.payload.len, &n) == 0);
    TD_CHECK_EQ_INT(n, 2);
    struct td_yaware_entry x;
    TD_REQUIRE(td_yproto_aware_next(&it, &x) == 1);
    TD_CHECK_MEM_STR(x.state.p, x.state.len, "{\"a\":1}");
    TD_REQUIRE(td_yproto_aware_next(&it, &x) == 1);
    TD_CHECK_EQ_INT(x.client_id, 1ull << 40);
    TD_CHECK_EQ_INT(x.clock, 300);
    TD_CHECK(x.removed);
    TD_CHECK_MEM_STR(x.state.p, x.state.len, "null");

    td_buf_reset(&b);
    td_yproto_write_auth_denied(&b, "no");
    static const uint8_t want3[] = {0x02, 0x00, 0x02, 'n', 'o'};
    TD_CHECK(b.len == sizeof(want3) && memcmp(b.data, want3, b.len) == 0);
    td_buf_reset(&b);
    td_yproto_write_query_awareness(&b);
    TD_CHECK(b.len == 1 && b.data[0] == 3);
    td_buf_free(&u);
    td_buf_free(&b);
}
