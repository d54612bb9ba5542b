/*
 * Unit tests for src/quic/td_h3: varints, frame headers, stream prefixes, SETTINGS, capsules,
 * datagrams and error-code mapping. The "chromium_" cases use the values Chromium 156 was
 * observed to send (docs/webtransport.md and the research notes), encoded the way quiche
 * encodes them (minimal varints).
 */
#include <stdint.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "quic/td_h3.h"
#include "td_test.h"

TD_TEST(h3_varint_rfc9000_examples)
{
    /* RFC 9000 appendix A.1 sample encodings. */
    static const uint8_t v8[] = {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c};
    static const uint8_t v4[] = {0x9d, 0x7f, 0x3e, 0x7d};
    static const uint8_t v2[] = {0x7b, 0xbd};
    static const uint8_t v1[] = {0x25};
    static const uint8_t v2_nonmin[] = {0x40, 0x25};
    uint64_t v;
    size_t used;
    TD_CHECK_EQ_INT(td_h3_varint_decode(v8, 8, &v, &used), 0);
    TD_CHECK(v == UINT64_C(151288809941952652));
    TD_CHECK_EQ_INT(used, 8);
    TD_CHECK_EQ_INT(td_h3_varint_decode(v4, 4, &v, &used), 0);
    TD_CHECK_EQ_INT(v, 494878333);
    TD_CHECK_EQ_INT(td_h3_varint_decode(v2, 2, &v, &used), 0);
    TD_CHECK_EQ_INT(v, 15293);
    TD_CHECK_EQ_INT(td_h3_varint_decode(v1, 1, &v, &used), 0);
    TD_CHECK_EQ_INT(v, 37);
    TD_CHECK_EQ_INT(td_h3_varint_decode(v2_nonmin, 2, &v, &used), 0);
    TD_CHECK_EQ_INT(v, 37);
    TD_CHECK_EQ_INT(used, 2);

    uint8_t out[8];
    TD_CHECK_EQ_INT(td_h3_varint_encode(out, UINT64_C(151288809941952652)), 8);
    TD_CHECK(memcmp(out, v8, 8) == 0);
    TD_CHECK_EQ_INT(td_h3_varint_encode(out, 494878333), 4);
    TD_CHECK(memcmp(out, v4, 4) == 0);
    TD_CHECK_EQ_INT(td_h3_varint_encode(out, 15293), 2);
    TD_CHECK(memcmp(out, v2, 2) == 0);
    TD_CHECK_EQ_INT(td_h3_varint_encode(out, 37), 1);
    TD_CHECK_EQ_INT(out[0], 0x25);
}

TD_TEST(h3_varint_boundaries)
{
    static const uint64_t edges[] = {0,     63,         64,         16383,
                                     16384, 1073741823, 1073741824, TD_H3_VARINT_MAX};
    static const size_t lens[] = {1, 1, 2, 2, 4, 4, 8, 8};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        uint8_t out[8];
        TD_CHECK_EQ_INT(td_h3_varint_len(edges[i]), lens[i]);
        size_t n = td_h3_varint_encode(out, edges[i]);
        TD_REQUIRE(n == lens[i]);
        uint64_t v;
        size_t used;
        TD_CHECK_EQ_INT(td_h3_varint_decode(out, n, &v, &used), 0);
        TD_CHECK(v == edges[i]);
        TD_CHECK_EQ_INT(used, n);
        /* Every proper prefix is incomplete. */
        for (size_t k = 0; k < n; k++)
            TD_CHECK_EQ_INT(td_h3_varint_decode(out, k, &v, &used), TD_EAGAIN);
    }
    uint8_t out[8] = {0};
    TD_CHECK_EQ_INT(td_h3_varint_len(TD_H3_VARINT_MAX + 1), 0);
    TD_CHECK_EQ_INT(td_h3_varint_encode(out, TD_H3_VARINT_MAX + 1), 0);
    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_h3_varint_append(&b, UINT64_MAX), TD_EINVAL);
    TD_CHECK_EQ_INT(b.len, 0);
    TD_CHECK_EQ_INT(td_h3_varint_append(&b, 0x2b603742), 0);
    TD_CHECK_EQ_INT(b.len, 4);
    td_buf_free(&b);
}

TD_TEST(h3_grease)
{
    TD_CHECK(td_h3_is_grease(0x21));
    TD_CHECK(td_h3_is_grease(0x21 + 0x1f * 7));
    TD_CHECK(!td_h3_is_grease(0x20));
    TD_CHECK(!td_h3_is_grease(0x41));
    TD_CHECK(!td_h3_is_grease(0));
}

TD_TEST(h3_frame_hdr_decode)
{
    struct td_h3_frame_hdr h;
    static const uint8_t data[] = {0x00, 0x05, 'h', 'e'};
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(data, sizeof(data), &h), 0);
    TD_CHECK_EQ_INT(h.type, TD_H3_FRAME_DATA);
    TD_CHECK_EQ_INT(h.len, 5);
    TD_CHECK_EQ_INT(h.hdr_len, 2);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(data, 1, &h), TD_EAGAIN);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(data, 0, &h), TD_EAGAIN);

    /* HTTP/2-only types are errors; so is the WT signal anywhere but a stream start. */
    static const uint8_t h2ping[] = {0x06, 0x00};
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(h2ping, 2, &h), TD_EPROTO);
    static const uint8_t wt[] = {0x40, 0x41, 0x00};
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(wt, 3, &h), TD_EPROTO);

    /* Caps: SETTINGS over 1024, HEADERS over 16384, GOAWAY with 0 or > 8 bytes. */
    uint8_t big[16];
    size_t n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_SETTINGS, TD_H3_SETTINGS_MAX_LEN + 1);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), TD_ELIMIT);
    n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_SETTINGS, TD_H3_SETTINGS_MAX_LEN);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), 0);
    n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_HEADERS, TD_H3_HEADERS_MAX_LEN + 1);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), TD_ELIMIT);
    n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_PUSH_PROMISE, TD_H3_HEADERS_MAX_LEN + 1);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), TD_ELIMIT);
    n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_GOAWAY, 9);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), TD_EPROTO);
    n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_GOAWAY, 0);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), TD_EPROTO);

    /* DATA and unknown/GREASE frames have no cap (they are streamed or skipped). */
    n = td_h3_frame_hdr_encode(big, TD_H3_FRAME_DATA, TD_H3_VARINT_MAX);
    TD_CHECK_EQ_INT(n, 9);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), 0);
    TD_CHECK(h.len == TD_H3_VARINT_MAX);
    n = td_h3_frame_hdr_encode(big, 0x21 + 0x1f * 1000, 100000);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_decode(big, n, &h), 0);
    TD_CHECK_EQ_INT(h.len, 100000);
    TD_CHECK_EQ_INT(td_h3_frame_hdr_encode(big, TD_H3_VARINT_MAX + 1, 0), 0);
}

TD_TEST(h3_frame_append_and_goaway)
{
    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_h3_goaway_append(&b, 4), 0);
    static const uint8_t want[] = {0x07, 0x01, 0x04};
    TD_CHECK(b.len == 3 && memcmp(b.data, want, 3) == 0);
    struct td_h3_frame_hdr h;
    TD_REQUIRE(td_h3_frame_hdr_decode(b.data, b.len, &h) == 0);
    uint64_t id = 0;
    TD_CHECK_EQ_INT(td_h3_goaway_decode(b.data + h.hdr_len, (size_t)h.len, &id), 0);
    TD_CHECK_EQ_INT(id, 4);
    /* Trailing bytes or a truncated varint are malformed. */
    static const uint8_t two[] = {0x04, 0x00};
    TD_CHECK_EQ_INT(td_h3_goaway_decode(two, 2, &id), TD_EPROTO);
    static const uint8_t trunc[] = {0x40};
    TD_CHECK_EQ_INT(td_h3_goaway_decode(trunc, 1, &id), TD_EPROTO);
    TD_CHECK_EQ_INT(td_h3_goaway_append(&b, UINT64_MAX), TD_EINVAL);
    TD_CHECK_EQ_INT(b.len, 3);

    td_buf_reset(&b);
    TD_CHECK_EQ_INT(td_h3_frame_append(&b, TD_H3_FRAME_DATA, "abc", 3), 0);
    static const uint8_t data_abc[] = {0x00, 0x03, 'a', 'b', 'c'};
    TD_CHECK(b.len == 5 && memcmp(b.data, data_abc, 5) == 0);
    td_buf_free(&b);
}

TD_TEST(h3_chromium_stream_prefixes)
{
    struct td_h3_stream_prefix sp;
    /* Client bidi WT stream on session 0: 40 41 00, then data. */
    static const uint8_t bidi[] = {0x40, 0x41, 0x00, 'h', 'i'};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(bidi, sizeof(bidi), true, &sp), 0);
    TD_CHECK_EQ_INT(sp.kind, TD_H3_STREAM_WT_BIDI);
    TD_CHECK_EQ_INT(sp.session_id, 0);
    TD_CHECK_EQ_INT(sp.len, 3);
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(bidi, 2, true, &sp), TD_EAGAIN);
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(bidi, 1, true, &sp), TD_EAGAIN);

    /* Uni WT stream: 40 54 00. */
    static const uint8_t uni[] = {0x40, 0x54, 0x00, 'x'};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(uni, sizeof(uni), false, &sp), 0);
    TD_CHECK_EQ_INT(sp.kind, TD_H3_STREAM_WT_UNI);
    TD_CHECK_EQ_INT(sp.type, 0x54);
    TD_CHECK_EQ_INT(sp.len, 3);

    /* The CONNECT request stream starts with a HEADERS frame: nothing consumed. */
    static const uint8_t req[] = {0x01, 0x20};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(req, 2, true, &sp), 0);
    TD_CHECK_EQ_INT(sp.kind, TD_H3_STREAM_REQUEST);
    TD_CHECK_EQ_INT(sp.len, 0);

    /* Control, QPACK encoder (Chromium opens it and writes one byte), GREASE type. */
    static const uint8_t ctl[] = {0x00, 0x04};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(ctl, 2, false, &sp), 0);
    TD_CHECK_EQ_INT(sp.kind, TD_H3_STREAM_CONTROL);
    TD_CHECK_EQ_INT(sp.len, 1);
    static const uint8_t enc[] = {0x02, 0x3f};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(enc, 2, false, &sp), 0);
    TD_CHECK_EQ_INT(sp.kind, TD_H3_STREAM_QPACK_ENCODER);
    static const uint8_t grease[] = {0x40, 0x7e};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(grease, 2, false, &sp), 0);
    TD_CHECK_EQ_INT(sp.kind, TD_H3_STREAM_UNKNOWN);
    TD_CHECK_EQ_INT(sp.type, 0x7e);

    /* Session 5 is not a client bidi stream. */
    static const uint8_t bad[] = {0x40, 0x41, 0x05};
    TD_CHECK_EQ_INT(td_h3_stream_prefix_decode(bad, 3, true, &sp), TD_EPROTO);

    uint8_t out[16];
    TD_CHECK_EQ_INT(td_h3_wt_stream_prefix_encode(out, true, 0), 3);
    TD_CHECK(memcmp(out, bidi, 3) == 0);
    TD_CHECK_EQ_INT(td_h3_wt_stream_prefix_encode(out, false, 0), 3);
    TD_CHECK(memcmp(out, uni, 3) == 0);
    TD_CHECK_EQ_INT(td_h3_wt_stream_prefix_encode(out, false, 2), 0);
}

/* Chromium 156's client SETTINGS payload: 0x01=65536, 0x06=16384, 0x07=100, 0x33=1,
 * 0xffd277=1, 0x2b603742=1, one GREASE setting; with draft-07 on, 0xc671706a=16 too. */
static const uint8_t chromium_settings[] = {
    0x01, 0x80, 0x01, 0x00, 0x00,       /* QPACK_MAX_TABLE_CAPACITY 65536 */
    0x06, 0x80, 0x00, 0x40, 0x00,       /* MAX_FIELD_SECTION_SIZE 16384 */
    0x07, 0x40, 0x64,                   /* QPACK_BLOCKED_STREAMS 100 */
    0x33, 0x01,                         /* H3_DATAGRAM */
    0x80, 0xff, 0xd2, 0x77, 0x01,       /* H3_DATAGRAM draft-04 */
    0xab, 0x60, 0x37, 0x42, 0x01,       /* ENABLE_WEBTRANSPORT (draft-02) */
    0x80, 0x0c, 0x50, 0x14, 0x9a, 0x8e, /* GREASE 0x1f*26029+0x21 = 0xc5014, 4-byte value */
    0x3a, 0xc4,
};

TD_TEST(h3_chromium_settings_draft02)
{
    struct td_h3_settings s;
    TD_REQUIRE(td_h3_settings_decode(chromium_settings, sizeof(chromium_settings), &s) == 0);
    TD_CHECK_EQ_INT(s.qpack_max_table_capacity, 65536);
    TD_CHECK_EQ_INT(s.max_field_section_size, 16384);
    TD_CHECK_EQ_INT(s.qpack_blocked_streams, 100);
    TD_CHECK_EQ_INT(s.h3_datagram, 1);
    TD_CHECK_EQ_INT(s.h3_datagram_draft04, 1);
    TD_CHECK_EQ_INT(s.enable_webtransport, 1);
    TD_CHECK((s.present & TD_H3_SET_ENABLE_CONNECT_PROTOCOL) == 0);
    TD_CHECK((s.present & TD_H3_SET_WT_MAX_SESSIONS_D07) == 0);
    TD_CHECK_EQ_INT(s.unknown, 1);
    TD_CHECK_EQ_INT(td_h3_settings_wt_version(&s), TD_H3_WT_DRAFT02);
}

TD_TEST(h3_chromium_settings_draft07)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append(&b, chromium_settings, sizeof(chromium_settings));
    /* 0xc671706a needs the 8-byte varint form. */
    static const uint8_t d07[] = {0xc0, 0x00, 0x00, 0x00, 0xc6, 0x71, 0x70, 0x6a, 0x10};
    td_buf_append(&b, d07, sizeof(d07));
    struct td_h3_settings s;
    TD_REQUIRE(td_h3_settings_decode(b.data, b.len, &s) == 0);
    TD_CHECK_EQ_INT(s.wt_max_sessions_d07, 16);
    TD_CHECK_EQ_INT(td_h3_settings_wt_version(&s), TD_H3_WT_DRAFT07);
    /* Without RFC datagrams draft-07 is impossible; draft-02 still works with draft-04. */
    s.h3_datagram = 0;
    TD_CHECK_EQ_INT(td_h3_settings_wt_version(&s), TD_H3_WT_DRAFT02);
    s.present &= ~(uint32_t)TD_H3_SET_H3_DATAGRAM_DRAFT04;
    TD_CHECK_EQ_INT(td_h3_settings_wt_version(&s), TD_H3_WT_NONE);
    td_buf_free(&b);
}

TD_TEST(h3_settings_errors)
{
    struct td_h3_settings s;
    memset(&s, 0x5a, sizeof(s));
    struct td_h3_settings before = s;
    static const uint8_t dup[] = {0x33, 0x01, 0x33, 0x01};
    TD_CHECK_EQ_INT(td_h3_settings_decode(dup, sizeof(dup), &s), TD_EPROTO);
    TD_CHECK(memcmp(&s, &before, sizeof(s)) == 0); /* untouched on failure */
    static const uint8_t h2[] = {0x04, 0x10};
    TD_CHECK_EQ_INT(td_h3_settings_decode(h2, sizeof(h2), &s), TD_EPROTO);
    static const uint8_t notbool[] = {0x08, 0x02};
    TD_CHECK_EQ_INT(td_h3_settings_decode(notbool, sizeof(notbool), &s), TD_EPROTO);
    static const uint8_t wt2[] = {0xab, 0x60, 0x37, 0x42, 0x02};
    TD_CHECK_EQ_INT(td_h3_settings_decode(wt2, sizeof(wt2), &s), TD_EPROTO);
    static const uint8_t d07zero[] = {0xc0, 0x00, 0x00, 0x00, 0xc6, 0x71, 0x70, 0x6a, 0x00};
    TD_CHECK_EQ_INT(td_h3_settings_decode(d07zero, sizeof(d07zero), &s), TD_EPROTO);
    static const uint8_t trunc_value[] = {0x01, 0x80, 0x01};
    TD_CHECK_EQ_INT(td_h3_settings_decode(trunc_value, sizeof(trunc_value), &s), TD_EPROTO);
    static const uint8_t id_only[] = {0x01};
    TD_CHECK_EQ_INT(td_h3_settings_decode(id_only, sizeof(id_only), &s), TD_EPROTO);
    uint8_t big[TD_H3_SETTINGS_MAX_LEN + 1];
    memset(big, 0x21, sizeof(big)); /* GREASE id 0x21 = value 0x21, repeated */
    TD_CHECK_EQ_INT(td_h3_settings_decode(big, sizeof(big), &s), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_h3_settings_decode(big, sizeof(big) - 1, &s), 0);
    TD_CHECK_EQ_INT(s.unknown, TD_H3_SETTINGS_MAX_LEN / 2);
    TD_CHECK_EQ_INT(td_h3_settings_decode(NULL, 0, &s), 0);
    TD_CHECK_EQ_INT(s.present, 0);
}

TD_TEST(h3_server_settings_bytes)
{
    struct td_h3_settings s;
    td_h3_settings_server_default(&s, 1);
    struct td_buf b;
    td_buf_init(&b);
    TD_REQUIRE(td_h3_control_stream_open_append(&b, &s) == 0);
    /* 0x00 control stream; SETTINGS frame: 0x01=0 0x07=0 0x08=1 0x33=1 0x2b603742=1
     * 0xc671706a=1 (8-byte id). */
    static const uint8_t want[] = {0x00, 0x04, 0x16, 0x01, 0x00, 0x07, 0x00, 0x08, 0x01,
                                   0x33, 0x01, 0xab, 0x60, 0x37, 0x42, 0x01, 0xc0, 0x00,
                                   0x00, 0x00, 0xc6, 0x71, 0x70, 0x6a, 0x01};
    TD_CHECK_EQ_INT(b.len, sizeof(want));
    TD_CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);

    /* What we send is what a peer's parser reads back, and it negotiates draft-07 with
     * itself (the highest common version). */
    struct td_h3_settings back;
    TD_REQUIRE(td_h3_settings_decode(b.data + 3, b.len - 3, &back) == 0);
    TD_CHECK_EQ_INT(back.present, s.present);
    TD_CHECK_EQ_INT(back.enable_connect_protocol, 1);
    TD_CHECK_EQ_INT(back.wt_max_sessions_d07, 1);

    /* A boolean out of range is refused by the encoder. */
    s.h3_datagram = 2;
    size_t len = b.len;
    TD_CHECK_EQ_INT(td_h3_settings_append(&b, &s), TD_EINVAL);
    TD_CHECK_EQ_INT(b.len, len);
    td_h3_settings_server_default(&s, 0);
    TD_CHECK_EQ_INT(s.wt_max_sessions_d07, 1);
    td_buf_free(&b);
}

TD_TEST(h3_chromium_close_capsule)
{
    /* JS close({closeCode: 42, reason: 'bye'}) arrives as DATA{CLOSE capsule}. */
    static const uint8_t wire[] = {0x00, 0x09, 0x68, 0x43, 0x07, 0x00,
                                   0x00, 0x00, 0x2a, 'b',  'y',  'e'};
    struct td_h3_frame_hdr h;
    TD_REQUIRE(td_h3_frame_hdr_decode(wire, sizeof(wire), &h) == 0);
    TD_CHECK_EQ_INT(h.type, TD_H3_FRAME_DATA);
    TD_CHECK_EQ_INT(h.len, 9);
    struct td_h3_capsule c;
    TD_REQUIRE(td_h3_capsule_decode(wire + 2, sizeof(wire) - 2, &c) == 0);
    TD_CHECK(c.type == TD_H3_CAPSULE_CLOSE_WT_SESSION);
    TD_CHECK_EQ_INT(c.size, 10);
    uint32_t code;
    const uint8_t *reason;
    size_t rlen;
    TD_REQUIRE(td_h3_wt_close_decode(c.value, c.len, &code, &reason, &rlen) == 0);
    TD_CHECK_EQ_INT(code, 42);
    TD_CHECK_MEM_STR(reason, rlen, "bye");
    /* Every truncation is "need more". */
    for (size_t k = 0; k < sizeof(wire) - 2; k++)
        TD_CHECK_EQ_INT(td_h3_capsule_decode(wire + 2, k, &c), TD_EAGAIN);

    /* The server's CLOSE(1234, "server bye") as the prototype sent it. */
    struct td_buf b;
    td_buf_init(&b);
    TD_REQUIRE(td_h3_wt_close_append(&b, 1234, "server bye", 10) == 0);
    static const uint8_t want[] = {0x68, 0x43, 0x0e, 0x00, 0x00, 0x04, 0xd2, 's', 'e',
                                   'r',  'v',  'e',  'r',  ' ',  'b',  'y',  'e'};
    TD_CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    td_buf_free(&b);
}

TD_TEST(h3_close_capsule_limits)
{
    uint32_t code = 7;
    const uint8_t *reason = NULL;
    size_t rlen = 99;
    static const uint8_t short_v[] = {0, 0, 1};
    TD_CHECK_EQ_INT(td_h3_wt_close_decode(short_v, 3, &code, &reason, &rlen), TD_EPROTO);
    TD_CHECK_EQ_INT(code, 7);
    static uint8_t v[4 + TD_H3_WT_CLOSE_REASON_MAX + 1];
    TD_CHECK_EQ_INT(td_h3_wt_close_decode(v, sizeof(v), &code, &reason, &rlen), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_h3_wt_close_decode(v, sizeof(v) - 1, &code, &reason, &rlen), 0);
    TD_CHECK_EQ_INT(rlen, TD_H3_WT_CLOSE_REASON_MAX);
    TD_CHECK_EQ_INT(td_h3_wt_close_decode(v, 4, &code, &reason, &rlen), 0);
    TD_CHECK_EQ_INT(code, 0);
    TD_CHECK_EQ_INT(rlen, 0);

    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_h3_wt_close_append(&b, 1, v, TD_H3_WT_CLOSE_REASON_MAX + 1), TD_ELIMIT);
    TD_CHECK_EQ_INT(b.len, 0);
    TD_CHECK_EQ_INT(td_h3_wt_close_append(&b, 1, v, TD_H3_WT_CLOSE_REASON_MAX), 0);
    struct td_h3_capsule c;
    TD_REQUIRE(td_h3_capsule_decode(b.data, b.len, &c) == 0);
    TD_CHECK_EQ_INT(c.len, 4 + TD_H3_WT_CLOSE_REASON_MAX);

    /* A capsule value over the cap is refused before its bytes arrive. */
    td_buf_reset(&b);
    td_h3_varint_append(&b, 0x17);
    td_h3_varint_append(&b, TD_H3_CAPSULE_MAX_LEN + 1);
    TD_CHECK_EQ_INT(td_h3_capsule_decode(b.data, b.len, &c), TD_ELIMIT);
    uint64_t type, len;
    size_t hl;
    TD_CHECK_EQ_INT(td_h3_capsule_hdr_decode(b.data, b.len, &type, &len, &hl), 0);
    TD_CHECK_EQ_INT(len, TD_H3_CAPSULE_MAX_LEN + 1);
    TD_CHECK_EQ_INT(hl, b.len);
    td_buf_free(&b);
}

TD_TEST(h3_grease_capsule_then_drain)
{
    /* Chromium opens the CONNECT body with a GREASE capsule (type 41*N+23, < 64 random
     * bytes); a parser must skip it. Then a DRAIN (0x78ae, empty). */
    struct td_buf b;
    td_buf_init(&b);
    TD_REQUIRE(td_h3_capsule_append(&b, 41 * 1000 + 23, "0123456789", 10) == 0);
    td_h3_wt_drain_append(&b);
    static const uint8_t drain[] = {0x80, 0x00, 0x78, 0xae, 0x00};
    TD_CHECK(memcmp(b.data + b.len - 5, drain, 5) == 0);
    struct td_h3_capsule c;
    TD_REQUIRE(td_h3_capsule_decode(b.data, b.len, &c) == 0);
    TD_CHECK_EQ_INT(c.type, 41 * 1000 + 23);
    TD_CHECK_EQ_INT(c.len, 10);
    TD_REQUIRE(td_h3_capsule_decode(b.data + c.size, b.len - c.size, &c) == 0);
    TD_CHECK(c.type == TD_H3_CAPSULE_DRAIN_WT_SESSION);
    TD_CHECK_EQ_INT(td_h3_wt_drain_decode(c.value, c.len), 0);
    TD_CHECK_EQ_INT(td_h3_wt_drain_decode(drain, 1), TD_EPROTO);
    td_buf_free(&b);
}

TD_TEST(h3_datagram)
{
    uint64_t sid = 1;
    const uint8_t *p;
    size_t n;
    static const uint8_t d0[] = {0x00, 'p', 'i', 'n', 'g'};
    TD_REQUIRE(td_h3_datagram_decode(d0, sizeof(d0), &sid, &p, &n) == 0);
    TD_CHECK_EQ_INT(sid, 0);
    TD_CHECK_MEM_STR(p, n, "ping");
    static const uint8_t d8[] = {0x02};
    TD_REQUIRE(td_h3_datagram_decode(d8, 1, &sid, &p, &n) == 0);
    TD_CHECK_EQ_INT(sid, 8);
    TD_CHECK_EQ_INT(n, 0);
    static const uint8_t trunc[] = {0x40};
    TD_CHECK_EQ_INT(td_h3_datagram_decode(trunc, 1, &sid, &p, &n), TD_EPROTO);
    TD_CHECK_EQ_INT(td_h3_datagram_decode(NULL, 0, &sid, &p, &n), TD_EPROTO);
    uint8_t big[8];
    td_h3_varint_encode(big, TD_H3_QUARTER_ID_MAX + 1);
    TD_CHECK_EQ_INT(td_h3_datagram_decode(big, 8, &sid, &p, &n), TD_EPROTO);

    uint8_t out[8];
    TD_CHECK_EQ_INT(td_h3_datagram_hdr_encode(out, 0), 1);
    TD_CHECK_EQ_INT(out[0], 0);
    TD_CHECK_EQ_INT(td_h3_datagram_hdr_encode(out, 400), 2); /* quarter 100 */
    TD_CHECK_EQ_INT(out[0], 0x40);
    TD_CHECK_EQ_INT(out[1], 100);
    TD_CHECK_EQ_INT(td_h3_datagram_hdr_encode(out, 3), 0);
}

TD_TEST(h3_wt_error_codes)
{
    /* Observed: abort() with no code resets with ...a8db; streamErrorCode 5 with ...a8e0. */
    TD_CHECK(td_h3_wt_error_to_h3(0) == UINT64_C(0x52e4a40fa8db));
    TD_CHECK(td_h3_wt_error_to_h3(5) == UINT64_C(0x52e4a40fa8e0));
    TD_CHECK(td_h3_wt_error_to_h3(UINT32_MAX) == TD_H3_WT_ERROR_LAST);
    uint32_t app = 99;
    TD_CHECK_EQ_INT(td_h3_wt_error_from_h3(UINT64_C(0x52e4a40fa8e2), &app), 0);
    TD_CHECK_EQ_INT(app, 7);
    TD_CHECK_EQ_INT(td_h3_wt_error_from_h3(TD_H3_ERR_CONNECT_ERROR, &app), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_h3_wt_error_from_h3(TD_H3_ERR_WT_SESSION_GONE, &app), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_h3_wt_error_from_h3(TD_H3_WT_ERROR_LAST + 1, &app), TD_ENOTFOUND);
    /* first + 0x1e is a GREASE codepoint; 0x1e maps past it. */
    TD_CHECK_EQ_INT(td_h3_wt_error_from_h3(TD_H3_WT_ERROR_FIRST + 0x1e, &app), TD_ENOTFOUND);
    TD_CHECK(td_h3_wt_error_to_h3(0x1e) == TD_H3_WT_ERROR_FIRST + 0x1f);
    static const uint32_t samples[] = {0, 1, 0x1d, 0x1e, 0x1f, 1000, 0x7fffffff, UINT32_MAX};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        uint64_t h3 = td_h3_wt_error_to_h3(samples[i]);
        TD_CHECK(!td_h3_is_grease(h3));
        TD_CHECK_EQ_INT(td_h3_wt_error_from_h3(h3, &app), 0);
        TD_CHECK_EQ_INT(app, samples[i]);
    }
}
