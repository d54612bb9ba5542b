/*
 * Tests for td_lib0: varints (including -0), Any <-> JSON with JavaScript semantics, UTF-16
 * helpers and the v2 column coders. Expected bytes were produced with lib0 0.2.x in node.
 */
#include "crdt/td_lib0.h"

#include <math.h>
#include <string.h>

#include "core/td_err.h"
#include "td_test.h"

static bool buf_is(const struct td_buf *b, const uint8_t *p, size_t n)
{
    return b->len == n && memcmp(b->data, p, n) == 0;
}

static void any_json_is(const uint8_t *p, size_t n, unsigned flags, const char *want)
{
    struct td_buf b;
    size_t used = 0;
    td_buf_init(&b);
    int rc = td_lib0_any_to_json_ex(p, n, flags, &b, &used);
    TD_CHECK_EQ_INT(rc, 0);
    TD_CHECK_EQ_INT(used, n);
    TD_CHECK_MEM_STR(b.data, b.len, want);
    td_buf_free(&b);
}

TD_TEST(lib0_varuint)
{
    struct td_buf b;
    struct td_lib0_reader r;
    uint64_t v;
    td_buf_init(&b);
    td_lib0_write_varuint(&b, 0);
    td_lib0_write_varuint(&b, 127);
    td_lib0_write_varuint(&b, 128);
    td_lib0_write_varuint(&b, TD_LIB0_MAX_UINT);
    static const uint8_t want[] = {0x00, 0x7f, 0x80, 0x01, 0x80, 0x80,
                                   0x80, 0x80, 0x80, 0x80, 0x80, 0x10};
    TD_CHECK(buf_is(&b, want, sizeof(want)));
    td_lib0_reader_init(&r, b.data, b.len);
    TD_CHECK(td_lib0_read_varuint(&r, &v) == 0 && v == 0);
    TD_CHECK(td_lib0_read_varuint(&r, &v) == 0 && v == 127);
    TD_CHECK(td_lib0_read_varuint(&r, &v) == 0 && v == 128);
    TD_CHECK(td_lib0_read_varuint(&r, &v) == 0 && v == TD_LIB0_MAX_UINT);
    TD_CHECK_EQ_INT(td_lib0_read_varuint(&r, &v), TD_EPROTO); /* end of input */
    /* 2^53 + 1 is rejected, as is a truncated value */
    static const uint8_t big[] = {0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10};
    td_lib0_reader_init(&r, big, sizeof(big));
    TD_CHECK_EQ_INT(td_lib0_read_varuint(&r, &v), TD_EPROTO);
    td_lib0_reader_init(&r, big, 3);
    TD_CHECK_EQ_INT(td_lib0_read_varuint(&r, &v), TD_EPROTO);
    td_buf_free(&b);
}

TD_TEST(lib0_varint_negative_zero)
{
    struct td_buf b;
    struct td_lib0_reader r;
    uint64_t mag;
    bool neg;
    td_buf_init(&b);
    td_lib0_write_varint(&b, 0, true);
    td_lib0_write_varint_i64(&b, -1);
    td_lib0_write_varint_i64(&b, 2147483647);
    static const uint8_t want[] = {0x40, 0x41, 0xbf, 0xff, 0xff, 0xff, 0x0f};
    TD_CHECK(buf_is(&b, want, sizeof(want)));
    td_lib0_reader_init(&r, b.data, b.len);
    TD_CHECK(td_lib0_read_varint(&r, &mag, &neg) == 0 && mag == 0 && neg);
    TD_CHECK(td_lib0_read_varint(&r, &mag, &neg) == 0 && mag == 1 && neg);
    TD_CHECK(td_lib0_read_varint(&r, &mag, &neg) == 0 && mag == 2147483647 && !neg);
    td_buf_free(&b);
}

TD_TEST(lib0_any_numbers_like_yjs)
{
    /* yjs: Y.Array push [-1, 2147483647, 2147483648, 0.1, -0] */
    struct td_buf b;
    td_buf_init(&b);
    td_lib0_write_any_number(&b, -1);
    td_lib0_write_any_number(&b, 2147483647);
    td_lib0_write_any_number(&b, 2147483648.0);
    td_lib0_write_any_number(&b, 0.1);
    td_lib0_write_any_number(&b, -0.0);
    static const uint8_t want[] = {0x7d, 0x41, 0x7d, 0xbf, 0xff, 0xff, 0xff, 0x0f,
                                   0x7c, 0x4f, 0x00, 0x00, 0x00, 0x7b, 0x3f, 0xb9,
                                   0x99, 0x99, 0x99, 0x99, 0x99, 0x9a, 0x7d, 0x40};
    TD_CHECK(buf_is(&b, want, sizeof(want)));
    td_buf_free(&b);
}

TD_TEST(lib0_json_to_any_key_order)
{
    /* JSON.parse then writeAny: index keys first, ascending; duplicates keep first place,
     * last value (bytes from lib0 in node) */
    static const char j1[] = "{\"b\":1,\"2\":true,\"a\":[null,\"\\u00e9\"],\"1\":{}}";
    static const char j2[] = "{\"b\":1,\"2\":true,\"b\":2}";
    static const uint8_t w1[] = {0x76, 0x04, 0x01, 0x31, 0x76, 0x00, 0x01, 0x32, 0x78, 0x01, 0x62,
                                 0x7d, 0x01, 0x01, 0x61, 0x75, 0x02, 0x7e, 0x77, 0x02, 0xc3, 0xa9};
    static const uint8_t w2[] = {0x76, 0x02, 0x01, 0x32, 0x78, 0x01, 0x62, 0x7d, 0x02};
    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_lib0_json_to_any(j1, strlen(j1), &b), 0);
    TD_CHECK(buf_is(&b, w1, sizeof(w1)));
    b.len = 0;
    TD_CHECK_EQ_INT(td_lib0_json_to_any(j2, strlen(j2), &b), 0);
    TD_CHECK(buf_is(&b, w2, sizeof(w2)));
    b.len = 0;
    TD_CHECK_EQ_INT(td_lib0_json_to_any("[1,", 3, &b), TD_EPROTO);
    TD_CHECK_EQ_INT(b.len, 0);
    td_buf_free(&b);
}

TD_TEST(lib0_any_to_json)
{
    /* {u: undefined, "1": float32(0.1), x: 1e21, y: Uint8Array[1,2]} */
    static const uint8_t obj[] = {0x76, 0x04, 0x01, 0x75, 0x7f, 0x01, 0x31, 0x7c, 0x3d, 0xcc,
                                  0xcc, 0xcd, 0x01, 0x78, 0x7b, 0x44, 0x4b, 0x1a, 0xe4, 0xd6,
                                  0xe2, 0xef, 0x50, 0x01, 0x79, 0x74, 0x02, 0x01, 0x02};
    any_json_is(obj, sizeof(obj), 0, "{\"1\":0.10000000149011612,\"x\":1e+21,\"y\":[1,2]}");
    any_json_is(obj, sizeof(obj), TD_LIB0_JSON_STRICT,
                "{\"1\":0.10000000149011612,\"x\":1e+21,\"y\":{\"0\":1,\"1\":2}}");
    /* [undefined, -0 (int), 1.5e-7, "a\"\n", bigint 5] */
    static const uint8_t arr[] = {0x75, 0x05, 0x7f, 0x7d, 0x40, 0x7b, 0x3e, 0x84, 0x21, 0xf5,
                                  0xf4, 0x0d, 0x83, 0x76, 0x77, 0x03, 0x61, 0x22, 0x0a, 0x7a,
                                  0,    0,    0,    0,    0,    0,    0,    5};
    any_json_is(arr, sizeof(arr), 0, "[null,0,1.5e-7,\"a\\\"\\n\",5]");
    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_lib0_any_to_json_ex(arr, sizeof(arr), TD_LIB0_JSON_STRICT, &b, NULL),
                    TD_EINVAL); /* JSON.stringify throws on bigint */
    b.len = 0;
    static const uint8_t bad_tag[] = {0x73};
    TD_CHECK_EQ_INT(td_lib0_any_to_json(bad_tag, 1, &b, NULL), TD_EPROTO);
    static const uint8_t trunc[] = {0x75, 0x02, 0x7e};
    TD_CHECK_EQ_INT(td_lib0_any_to_json(trunc, sizeof(trunc), &b, NULL), TD_EPROTO);
    td_buf_free(&b);
}

TD_TEST(lib0_any_depth_cap)
{
    uint8_t deep[2 * 70];
    for (size_t i = 0; i < 70; i++) {
        deep[2 * i] = 0x75;
        deep[2 * i + 1] = 0x01;
    }
    deep[sizeof(deep) - 1] = 0x00; /* innermost: empty array */
    struct td_lib0_reader r;
    td_lib0_reader_init(&r, deep, sizeof(deep));
    TD_CHECK_EQ_INT(td_lib0_skip_any(&r, TD_LIB0_MAX_DEPTH), TD_ELIMIT);
    td_lib0_reader_init(&r, deep + 2 * 10, sizeof(deep) - 2 * 10);
    TD_CHECK_EQ_INT(td_lib0_skip_any(&r, TD_LIB0_MAX_DEPTH), 0);
    TD_CHECK_EQ_INT(td_lib0_left(&r), 0);
}

TD_TEST(lib0_utf16)
{
    const uint8_t *s = (const uint8_t *)"a\xf0\x9f\x98\x80\xc3\xa9z"; /* a U+1F600 e-acute z */
    size_t n = 8, off;
    bool mid;
    TD_CHECK_EQ_INT(td_lib0_utf16_len(s, n), 5);
    TD_CHECK(td_lib0_utf16_to_byte(s, n, 1, &off, &mid) == 0 && off == 1 && !mid);
    TD_CHECK(td_lib0_utf16_to_byte(s, n, 2, &off, &mid) == 0 && off == 1 && mid);
    TD_CHECK(td_lib0_utf16_to_byte(s, n, 3, &off, &mid) == 0 && off == 5 && !mid);
    TD_CHECK(td_lib0_utf16_to_byte(s, n, 5, &off, &mid) == 0 && off == 8 && !mid);
    TD_CHECK_EQ_INT(td_lib0_utf16_to_byte(s, n, 6, &off, &mid), TD_EINVAL);
}

TD_TEST(lib0_column_coders)
{
    struct td_buf out;
    td_buf_init(&out);

    struct td_lib0_uintrle_enc ue;
    td_lib0_uintrle_enc_init(&ue);
    static const uint64_t uv[] = {1, 2, 3, 3, 3};
    for (size_t i = 0; i < 5; i++)
        td_lib0_uintrle_enc_write(&ue, uv[i]);
    td_lib0_uintrle_enc_finish(&ue, &out);
    static const uint8_t uw[] = {0x01, 0x02, 0x43, 0x01};
    TD_CHECK(buf_is(&out, uw, sizeof(uw)));
    struct td_lib0_uintrle_dec ud;
    td_lib0_uintrle_dec_init(&ud, out.data, out.len);
    for (size_t i = 0; i < 5; i++) {
        uint64_t v = 99;
        TD_CHECK(td_lib0_uintrle_dec_read(&ud, &v) == 0 && v == uv[i]);
    }
    uint64_t dummy;
    TD_CHECK_EQ_INT(td_lib0_uintrle_dec_read(&ud, &dummy), TD_EPROTO);
    td_lib0_uintrle_enc_free(&ue);

    /* a run of zeros is written as negative zero */
    out.len = 0;
    td_lib0_uintrle_enc_init(&ue);
    td_lib0_uintrle_enc_write(&ue, 0);
    td_lib0_uintrle_enc_write(&ue, 0);
    td_lib0_uintrle_enc_write(&ue, 5);
    td_lib0_uintrle_enc_finish(&ue, &out);
    static const uint8_t zw[] = {0x40, 0x00, 0x05};
    TD_CHECK(buf_is(&out, zw, sizeof(zw)));
    td_lib0_uintrle_enc_free(&ue);

    out.len = 0;
    struct td_lib0_intdiff_enc ie;
    td_lib0_intdiff_enc_init(&ie);
    static const int64_t iv[] = {1, 2, 3, 2};
    for (size_t i = 0; i < 4; i++)
        td_lib0_intdiff_enc_write(&ie, iv[i]);
    td_lib0_intdiff_enc_finish(&ie, &out);
    static const uint8_t iw[] = {0x03, 0x01, 0x42};
    TD_CHECK(buf_is(&out, iw, sizeof(iw)));
    struct td_lib0_intdiff_dec id;
    td_lib0_intdiff_dec_init(&id, out.data, out.len);
    for (size_t i = 0; i < 4; i++) {
        int64_t v = 99;
        TD_CHECK(td_lib0_intdiff_dec_read(&id, &v) == 0 && v == iv[i]);
    }
    td_lib0_intdiff_enc_free(&ie);

    out.len = 0;
    struct td_lib0_rle_enc re;
    td_lib0_rle_enc_init(&re);
    static const uint8_t rv[] = {1, 1, 1, 7};
    for (size_t i = 0; i < 4; i++)
        td_lib0_rle_enc_write(&re, rv[i]);
    td_lib0_rle_enc_finish(&re, &out);
    static const uint8_t rw[] = {0x01, 0x02, 0x07};
    TD_CHECK(buf_is(&out, rw, sizeof(rw)));
    struct td_lib0_rle_dec rd;
    td_lib0_rle_dec_init(&rd, out.data, out.len);
    for (size_t i = 0; i < 6; i++) { /* the last run repeats forever */
        uint8_t v = 0;
        TD_CHECK(td_lib0_rle_dec_read(&rd, &v) == 0 && v == (i < 3 ? 1 : 7));
    }
    td_lib0_rle_enc_free(&re);

    out.len = 0;
    struct td_lib0_str_enc se;
    td_lib0_str_enc_init(&se);
    td_lib0_str_enc_write(&se, (const uint8_t *)"a", 1);
    td_lib0_str_enc_write(&se, (const uint8_t *)"\xf0\x9f\x98\x80", 4);
    td_lib0_str_enc_write(&se, (const uint8_t *)"bc", 2);
    td_lib0_str_enc_finish(&se, &out);
    static const uint8_t sw[] = {0x07, 0x61, 0xf0, 0x9f, 0x98, 0x80, 0x62, 0x63, 0x01, 0x42, 0x00};
    TD_CHECK(buf_is(&out, sw, sizeof(sw)));
    struct td_lib0_str_dec sd;
    struct td_ybytes s;
    uint64_t units;
    TD_REQUIRE(td_lib0_str_dec_init(&sd, out.data, out.len) == 0);
    TD_CHECK(td_lib0_str_dec_read(&sd, &s, &units) == 0 && s.len == 1 && units == 1);
    TD_CHECK(td_lib0_str_dec_read(&sd, &s, &units) == 0 && s.len == 4 && units == 2);
    TD_CHECK(td_lib0_str_dec_read(&sd, &s, &units) == 0 && s.len == 2 && units == 2);
    TD_CHECK_MEM_STR(s.p, s.len, "bc");
    td_lib0_str_enc_free(&se);

    /* a length that cuts the surrogate pair is rejected */
    static const uint8_t cut[] = {0x05, 0x61, 0xf0, 0x9f, 0x98, 0x80, 0x02};
    TD_REQUIRE(td_lib0_str_dec_init(&sd, cut, sizeof(cut)) == 0);
    TD_CHECK_EQ_INT(td_lib0_str_dec_read(&sd, &s, &units), TD_EPROTO);
    td_buf_free(&out);
}
