#include "proto/td_pb.h"

#include <stdlib.h>

#include "core/td_err.h"
#include "td_test.h"

static const uint64_t pb_varint_values[] = {
    0,          1,
    127,        128,
    255,        300,
    16383,      16384,
    2097151,    2097152,
    UINT32_MAX, (uint64_t)UINT32_MAX + 1,
    1ull << 56, (1ull << 63) - 1,
    1ull << 63, (1ull << 63) + 5,
    UINT64_MAX,
};

TD_TEST(pb_varint_round_trip)
{
    for (size_t i = 0; i < sizeof(pb_varint_values) / sizeof(pb_varint_values[0]); i++) {
        uint64_t v = pb_varint_values[i];
        uint8_t buf[TD_PB_VARINT_MAX + 2];
        size_t n = td_pb_put_varint(buf, v);
        TD_CHECK_EQ_INT(n, td_pb_size_varint(v));
        struct td_pb_cur c;
        td_pb_cur_init(&c, buf, n);
        uint64_t got = 0;
        TD_CHECK_EQ_INT(td_pb_read_varint(&c, &got), 0);
        TD_CHECK(got == v);
        TD_CHECK_EQ_INT(td_pb_cur_left(&c), 0);
    }
    TD_CHECK_EQ_INT(td_pb_size_varint(0), 1);
    TD_CHECK_EQ_INT(td_pb_size_varint(127), 1);
    TD_CHECK_EQ_INT(td_pb_size_varint(128), 2);
    TD_CHECK_EQ_INT(td_pb_size_varint(UINT64_MAX), 10);
}

TD_TEST(pb_varint_known_bytes)
{
    uint8_t buf[TD_PB_VARINT_MAX];
    TD_CHECK_EQ_INT(td_pb_put_varint(buf, 300), 2);
    TD_CHECK(buf[0] == 0xac && buf[1] == 0x02);
    /* -1 as int64 is ten bytes: nine 0xff then 0x01. */
    TD_CHECK_EQ_INT(td_pb_put_varint(buf, (uint64_t)(int64_t)-1), 10);
    TD_CHECK(buf[8] == 0xff && buf[9] == 0x01);
}

TD_TEST(pb_varint_malformed)
{
    struct td_pb_cur c;
    uint64_t v = 42;
    /* truncated: continuation bit on the last byte */
    const uint8_t trunc[] = {0x80, 0x80};
    td_pb_cur_init(&c, trunc, sizeof(trunc));
    TD_CHECK_EQ_INT(td_pb_read_varint(&c, &v), TD_EPROTO);
    TD_CHECK(c.p == trunc && v == 42); /* neither cursor nor output touched */
    /* empty input */
    td_pb_cur_init(&c, trunc, 0);
    TD_CHECK_EQ_INT(td_pb_read_varint(&c, &v), TD_EPROTO);
    /* 11 bytes */
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    td_pb_cur_init(&c, eleven, sizeof(eleven));
    TD_CHECK_EQ_INT(td_pb_read_varint(&c, &v), TD_EPROTO);
    /* 10 bytes whose last byte carries bits above 2^64 */
    const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    td_pb_cur_init(&c, big, sizeof(big));
    TD_CHECK_EQ_INT(td_pb_read_varint(&c, &v), TD_EPROTO);
    /* 10 bytes, top bit only: fine */
    const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    td_pb_cur_init(&c, max, sizeof(max));
    TD_CHECK_EQ_INT(td_pb_read_varint(&c, &v), 0);
    TD_CHECK(v == UINT64_MAX);
    /* non-minimal encodings are legal */
    const uint8_t padded[] = {0x81, 0x80, 0x00, 0x07};
    td_pb_cur_init(&c, padded, sizeof(padded));
    TD_CHECK_EQ_INT(td_pb_read_varint(&c, &v), 0);
    TD_CHECK(v == 1);
    TD_CHECK_EQ_INT(td_pb_cur_left(&c), 1);
}

TD_TEST(pb_zigzag)
{
    TD_CHECK(td_pb_zigzag_encode(0) == 0);
    TD_CHECK(td_pb_zigzag_encode(-1) == 1);
    TD_CHECK(td_pb_zigzag_encode(1) == 2);
    TD_CHECK(td_pb_zigzag_encode(-2) == 3);
    TD_CHECK(td_pb_zigzag_encode(INT64_MAX) == UINT64_MAX - 1);
    TD_CHECK(td_pb_zigzag_encode(INT64_MIN) == UINT64_MAX);
    const int64_t vals[] = {0, 1, -1, 63, -64, 64, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        TD_CHECK(td_pb_zigzag_decode(td_pb_zigzag_encode(vals[i])) == vals[i]);
}

TD_TEST(pb_tag)
{
    struct td_pb_cur c;
    uint32_t f = 0;
    enum td_pb_wire w = TD_PB_VARINT;
    const uint8_t ok[] = {0x0a, 0xf8, 0xff, 0xff, 0xff, 0x0f, 0x25};
    td_pb_cur_init(&c, ok, sizeof(ok));
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), 0);
    TD_CHECK(f == 1 && w == TD_PB_LEN);
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), 0);
    TD_CHECK(f == TD_PB_FIELD_MAX && w == TD_PB_VARINT);
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), 0);
    TD_CHECK(f == 4 && w == TD_PB_I32);

    const uint8_t field0[] = {0x02};
    td_pb_cur_init(&c, field0, 1);
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), TD_EPROTO);
    const uint8_t wire6[] = {0x0e};
    td_pb_cur_init(&c, wire6, 1);
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), TD_EPROTO);
    TD_CHECK(c.p == wire6);
    const uint8_t wire7[] = {0x0f};
    td_pb_cur_init(&c, wire7, 1);
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), TD_EPROTO);
    const uint8_t toobig[] = {0x80, 0x80, 0x80, 0x80, 0x10}; /* field 2^29 */
    td_pb_cur_init(&c, toobig, sizeof(toobig));
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), TD_EPROTO);
    /* group tags are returned (td_pb_skip rejects them) */
    const uint8_t group[] = {0x0b};
    td_pb_cur_init(&c, group, 1);
    TD_CHECK_EQ_INT(td_pb_read_tag(&c, &f, &w), 0);
    TD_CHECK(w == TD_PB_SGROUP);
}

TD_TEST(pb_read_len)
{
    struct td_pb_cur c;
    const uint8_t *p = NULL;
    size_t n = 99;
    const uint8_t ok[] = {0x03, 'a', 'b', 'c', 0x00};
    td_pb_cur_init(&c, ok, sizeof(ok));
    TD_CHECK_EQ_INT(td_pb_read_len(&c, &p, &n), 0);
    TD_CHECK(p == ok + 1 && n == 3);
    TD_CHECK_EQ_INT(td_pb_read_len(&c, &p, &n), 0);
    TD_CHECK(n == 0 && td_pb_cur_left(&c) == 0);
    const uint8_t shortb[] = {0x04, 'a', 'b', 'c'};
    td_pb_cur_init(&c, shortb, sizeof(shortb));
    TD_CHECK_EQ_INT(td_pb_read_len(&c, &p, &n), TD_EPROTO);
    TD_CHECK(c.p == shortb && n == 0);
    /* a 2^64-1 length must not wrap the pointer */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'x'};
    td_pb_cur_init(&c, huge, sizeof(huge));
    TD_CHECK_EQ_INT(td_pb_read_len(&c, &p, &n), TD_EPROTO);
}

TD_TEST(pb_skip_every_wire_type)
{
    /* field1 varint, field2 fixed64, field3 bytes, field4 fixed32, then a marker byte */
    const uint8_t msg[] = {0x08, 0x96, 0x01, 0x11, 1,   2,    3, 4, 5, 6, 7,
                           8,    0x1a, 0x02, 'h',  'i', 0x25, 1, 2, 3, 4, 0x7a};
    struct td_pb_cur c;
    td_pb_cur_init(&c, msg, sizeof(msg));
    const enum td_pb_wire expect[] = {TD_PB_VARINT, TD_PB_I64, TD_PB_LEN, TD_PB_I32};
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t f;
        enum td_pb_wire w;
        TD_REQUIRE(td_pb_read_tag(&c, &f, &w) == 0);
        TD_CHECK(f == i + 1 && w == expect[i]);
        TD_REQUIRE(td_pb_skip(&c, w) == 0);
    }
    TD_CHECK(td_pb_cur_left(&c) == 1 && *c.p == 0x7a);

    const uint8_t trunc64[] = {1, 2, 3, 4, 5, 6, 7};
    td_pb_cur_init(&c, trunc64, sizeof(trunc64));
    TD_CHECK_EQ_INT(td_pb_skip(&c, TD_PB_I64), TD_EPROTO);
    TD_CHECK_EQ_INT(td_pb_skip(&c, TD_PB_I32), 0);
    TD_CHECK_EQ_INT(td_pb_skip(&c, TD_PB_I32), TD_EPROTO);
    TD_CHECK_EQ_INT(td_pb_skip(&c, TD_PB_SGROUP), TD_EPROTO);
    TD_CHECK_EQ_INT(td_pb_skip(&c, TD_PB_EGROUP), TD_EPROTO);
    TD_CHECK_EQ_INT(td_pb_skip(&c, (enum td_pb_wire)6), TD_EPROTO);

    uint64_t v64 = 0;
    uint32_t v32 = 0;
    const uint8_t le[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88};
    td_pb_cur_init(&c, le, sizeof(le));
    TD_CHECK_EQ_INT(td_pb_read_fixed64(&c, &v64), 0);
    TD_CHECK(v64 == 0x8807060504030201ull);
    td_pb_cur_init(&c, le, sizeof(le));
    TD_CHECK_EQ_INT(td_pb_read_fixed32(&c, &v32), 0);
    TD_CHECK(v32 == 0x04030201u);
}

TD_TEST(pb_append_fields)
{
    struct td_buf b;
    td_buf_init(&b);
    td_pb_append_uint(&b, 1, 0);
    td_pb_append_bool(&b, 2, false);
    td_pb_append_int(&b, 3, 0);
    td_pb_append_bytes(&b, 4, NULL, 0);
    TD_CHECK_EQ_INT(b.len, 0); /* zero values are omitted */

    td_pb_append_uint(&b, 1, 150);
    td_pb_append_bool(&b, 2, true);
    td_pb_append_bytes(&b, 3, "ab", 2);
    td_pb_append_bytes_always(&b, 4, NULL, 0);
    td_pb_append_len(&b, 16, 1);
    td_buf_append_byte(&b, 0x55);
    const uint8_t want[] = {0x08, 0x96, 0x01, 0x10, 0x01, 0x1a, 0x02, 'a',
                            'b',  0x22, 0x00, 0x82, 0x01, 0x01, 0x55};
    TD_CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    TD_CHECK_EQ_INT(b.len, td_pb_size_uint(1, 150) + td_pb_size_uint(2, 1) +
                               td_pb_size_bytes(3, 2) + td_pb_size_msg(4, 0) +
                               td_pb_size_msg(16, 1));

    td_buf_reset(&b);
    td_pb_append_int(&b, 7, -1);
    TD_CHECK_EQ_INT(b.len, 11);
    TD_CHECK(b.data[0] == 0x38 && b.data[10] == 0x01);
    TD_CHECK_EQ_INT(td_pb_size_uint(7, (uint64_t)(int64_t)-1), 11);
    td_buf_free(&b);
}

/* Reads a varint length at b[at] and checks it covers exactly the rest of the buffer. */
static int pb_check_prefixed(const struct td_buf *b, size_t at, size_t body)
{
    struct td_pb_cur c;
    uint64_t len;
    td_pb_cur_init(&c, b->data + at, b->len - at);
    if (td_pb_read_varint(&c, &len) != 0)
        return 0;
    return len == body && td_pb_cur_left(&c) == body;
}

TD_TEST(pb_begin_end_sizes)
{
    const size_t sizes[] = {0, 1, 127, 128, 300, 16383, 16384, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct td_buf b;
        td_buf_init(&b);
        td_buf_append_str(&b, "pre");
        size_t m = td_pb_begin(&b);
        for (size_t k = 0; k < sizes[i]; k++)
            td_buf_append_byte(&b, (uint8_t)(k * 7));
        td_pb_end(&b, m);
        TD_CHECK(memcmp(b.data, "pre", 3) == 0);
        TD_CHECK(pb_check_prefixed(&b, 3, sizes[i]));
        size_t hdr = td_pb_size_varint(sizes[i]);
        int same = 1;
        for (size_t k = 0; k < sizes[i]; k++)
            same &= b.data[3 + hdr + k] == (uint8_t)(k * 7);
        TD_CHECK(same);
        td_buf_free(&b);
    }
}

TD_TEST(pb_begin_end_nested)
{
    struct td_buf b;
    td_buf_init(&b);
    size_t outer = td_pb_begin(&b);
    td_pb_append_uint(&b, 1, 5);
    td_pb_append_tag(&b, 2, TD_PB_LEN);
    size_t inner = td_pb_begin(&b);
    char big[200];
    memset(big, 'z', sizeof(big));
    td_pb_append_bytes(&b, 3, big, sizeof(big));
    td_pb_end(&b, inner);
    td_pb_append_uint(&b, 4, 9);
    td_pb_end(&b, outer);
    /* outer: 08 05 | 12 <203 as 2 bytes> 1a <200 as 2 bytes> z*200 | 20 09 */
    size_t body = 2 + 1 + 2 + 203 + 2;
    TD_CHECK(pb_check_prefixed(&b, 0, body));
    TD_CHECK(b.data[2] == 0x08 && b.data[3] == 0x05 && b.data[4] == 0x12);
    TD_CHECK(b.data[5] == ((203 & 0x7f) | 0x80) && b.data[6] == 1);
    TD_CHECK(b.data[7] == 0x1a && b.data[8] == ((200 & 0x7f) | 0x80) && b.data[9] == 1);
    TD_CHECK(b.data[10] == 'z' && b.data[209] == 'z');
    TD_CHECK(b.data[210] == 0x20 && b.data[211] == 0x09);
    td_buf_free(&b);
}
