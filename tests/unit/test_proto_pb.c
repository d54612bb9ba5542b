#include "proto/td_proto.h"

#include <stdlib.h>

#include "core/td_err.h"
#include "td_test.h"

/* ---- test-side helpers: hex frames and an independent Reply reader ---- */

/* Parses hex digits (spaces ignored) into out; returns the byte count. */
static size_t tpb_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *s = hex; *s != '\0'; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = d;
        } else if (n < cap) {
            out[n++] = (uint8_t)(hi * 16 + d);
            hi = -1;
        }
    }
    return n;
}

static int tpb_buf_is_hex(const struct td_buf *b, const char *hex)
{
    uint8_t want[512];
    size_t n = tpb_hex(hex, want, sizeof(want));
    return b->len == n && memcmp(b->data, want, n) == 0;
}

/* A view of a protobuf message, or !ok when the path to it did not exist or was malformed. */
struct tpb_msg {
    const uint8_t *p;
    size_t n;
    bool ok;
};

struct tpb_field {
    uint32_t num;
    unsigned wire;
    uint64_t u;       /* varint / fixed value */
    const uint8_t *p; /* length-delimited payload */
    size_t n;
};

static bool tpb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p == end)
            return false;
        uint8_t c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads the next field at *p; false at the end or on malformed input. */
static bool tpb_next(const uint8_t **p, const uint8_t *end, struct tpb_field *f)
{
    uint64_t tag;
    if (*p == end || !tpb_varint(p, end, &tag))
        return false;
    f->num = (uint32_t)(tag >> 3);
    f->wire = (unsigned)(tag & 7);
    switch (f->wire) {
    case 0:
        return tpb_varint(p, end, &f->u);
    case 2:
        if (!tpb_varint(p, end, &f->u) || f->u > (uint64_t)(end - *p))
            return false;
        f->p = *p;
        f->n = (size_t)f->u;
        *p += f->n;
        return true;
    default:
        return false; /* the encoder never writes other wire types */
    }
}

/* True if the whole message parses as varint/len fields. */
static bool tpb_valid(struct tpb_msg m)
{
    const uint8_t *p = m.p, *end = m.p + m.n;
    struct tpb_field f;
    if (!m.ok)
        return false;
    while (p < end)
        if (!tpb_next(&p, end, &f))
            return false;
    return true;
}

/* The nth (0-based) occurrence of field num. */
static bool tpb_find(struct tpb_msg m, uint32_t num, int nth, struct tpb_field *out)
{
    const uint8_t *p = m.p, *end = m.p + m.n;
    struct tpb_field f;
    if (!m.ok)
        return false;
    while (p < end && tpb_next(&p, end, &f)) {
        if (f.num == num && nth-- == 0) {
            *out = f;
            return true;
        }
    }
    return false;
}

static int tpb_count(struct tpb_msg m, uint32_t num)
{
    struct tpb_field f;
    int n = 0;
    while (tpb_find(m, num, n, &f))
        n++;
    return n;
}

static struct tpb_msg tpb_sub_nth(struct tpb_msg m, uint32_t num, int nth)
{
    struct tpb_field f;
    struct tpb_msg r = {NULL, 0, false};
    if (tpb_find(m, num, nth, &f) && f.wire == 2) {
        r.p = f.p;
        r.n = f.n;
        r.ok = true;
        r.ok = tpb_valid(r);
    }
    return r;
}

static struct tpb_msg tpb_sub(struct tpb_msg m, uint32_t num)
{
    return tpb_sub_nth(m, num, 0);
}

static bool tpb_has(struct tpb_msg m, uint32_t num)
{
    struct tpb_field f;
    return tpb_find(m, num, 0, &f);
}

/* The varint value of the LAST occurrence of num (protobuf semantics), 0 if absent. */
static uint64_t tpb_uint(struct tpb_msg m, uint32_t num)
{
    struct tpb_field f;
    uint64_t v = 0;
    for (int i = 0; tpb_find(m, num, i, &f); i++)
        if (f.wire == 0)
            v = f.u;
    return v;
}

static bool tpb_str_is(struct tpb_msg m, uint32_t num, const char *s)
{
    struct tpb_field f;
    if (!tpb_find(m, num, 0, &f) || f.wire != 2)
        return false;
    return f.n == strlen(s) && memcmp(f.p, s, f.n) == 0;
}

/*
 * Checks that b[at..] is exactly one delimited unit (length prefix spanning the rest) and
 * returns the Reply message inside.
 */
static struct tpb_msg tpb_unit(const struct td_buf *b, size_t at)
{
    struct tpb_msg r = {NULL, 0, false};
    const uint8_t *p = b->data + at, *end = b->data + b->len;
    uint64_t len;
    if (at >= b->len || !tpb_varint(&p, end, &len) || len != (uint64_t)(end - p))
        return r;
    r.p = p;
    r.n = (size_t)len;
    r.ok = true;
    r.ok = tpb_valid(r);
    return r;
}

/* Decodes a frame given in hex into buf; returns the first decode_next result. */
static int tpb_decode1(const char *hex, uint8_t *buf, size_t cap, struct td_cmd *cmd,
                       struct td_cmd_iter *it)
{
    size_t n = tpb_hex(hex, buf, cap);
    td_cmd_iter_init(it, buf, n);
    return td_codec_protobuf.decode_next(it, cmd);
}

static bool tpb_str_eq(struct td_str s, const char *want)
{
    return s.n == strlen(want) && (s.n == 0 || memcmp(s.p, want, s.n) == 0);
}

/* ---- decoding ---- */

TD_TEST(proto_pb_codec_meta)
{
    TD_CHECK(strcmp(td_codec_protobuf.name, "protobuf") == 0);
    TD_CHECK(td_codec_protobuf.binary);
}

TD_TEST(proto_pb_spec_connect)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    TD_REQUIRE(tpb_decode1("0b 08 01 22 07 0a 01 74 22 02 6a 73", buf, sizeof(buf), &cmd, &it) ==
               1);
    TD_CHECK_EQ_INT(cmd.id, 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_CONNECT);
    TD_CHECK(tpb_str_eq(cmd.token, "t"));
    TD_CHECK(tpb_str_eq(cmd.name, "js"));
    TD_CHECK(cmd.token.p == (const char *)buf + 7); /* a view into the frame */
    TD_CHECK(cmd.version.n == 0 && !cmd.has_data && cmd.data.n == 0);
    TD_CHECK(cmd.channel.n == 0 && cmd.flag == 0);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);
}

TD_TEST(proto_pb_spec_subscribe)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    TD_REQUIRE(tpb_decode1("14 08 02 2a 10 0a 04 6e 65 77 73 18 01 32 02 61 62 38 05 70 01", buf,
                           sizeof(buf), &cmd, &it) == 1);
    TD_CHECK_EQ_INT(cmd.id, 2);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    TD_CHECK(tpb_str_eq(cmd.channel, "news"));
    TD_CHECK(cmd.recover);
    TD_CHECK(tpb_str_eq(cmd.epoch, "ab"));
    TD_CHECK(cmd.offset == 5);
    TD_CHECK(cmd.flag == 1);
    TD_CHECK(!cmd.positioned && !cmd.recoverable && !cmd.join_leave && !cmd.has_tf);
    TD_CHECK(cmd.token.n == 0 && cmd.delta.n == 0 && cmd.type == 0 && !cmd.has_data);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);
}

TD_TEST(proto_pb_pong_and_empty_frame)
{
    uint8_t buf[8];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    TD_REQUIRE(tpb_decode1("00", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.id == 0 && cmd.kind == TD_CMD_EMPTY);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);

    td_cmd_iter_init(&it, buf, 0);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), TD_EPROTO);
    TD_CHECK(it.error != NULL);
}

TD_TEST(proto_pb_multiple_commands)
{
    uint8_t buf[128];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /* pong, publish{channel:"c", data:"{}"} id 3, unsubscribe id 4, send{data:"x"}, pong */
    size_t n = tpb_hex("00"
                       "0b 08 03 3a 07 0a 01 63 12 02 7b 7d"
                       "07 08 04 32 03 0a 01 64"
                       "05 62 03 0a 01 78"
                       "00",
                       buf, sizeof(buf));
    td_cmd_iter_init(&it, buf, n);
    TD_REQUIRE(td_codec_protobuf.decode_next(&it, &cmd) == 1);
    TD_CHECK(cmd.kind == TD_CMD_EMPTY && cmd.id == 0);
    TD_REQUIRE(td_codec_protobuf.decode_next(&it, &cmd) == 1);
    TD_CHECK(cmd.kind == TD_CMD_PUBLISH && cmd.id == 3);
    TD_CHECK(tpb_str_eq(cmd.channel, "c") && tpb_str_eq(cmd.data, "{}") && cmd.has_data);
    TD_REQUIRE(td_codec_protobuf.decode_next(&it, &cmd) == 1);
    TD_CHECK(cmd.kind == TD_CMD_UNSUBSCRIBE && cmd.id == 4 && tpb_str_eq(cmd.channel, "d"));
    TD_REQUIRE(td_codec_protobuf.decode_next(&it, &cmd) == 1);
    TD_CHECK(cmd.kind == TD_CMD_SEND && cmd.id == 0 && tpb_str_eq(cmd.data, "x"));
    TD_REQUIRE(td_codec_protobuf.decode_next(&it, &cmd) == 1);
    TD_CHECK(cmd.kind == TD_CMD_EMPTY);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);
}

TD_TEST(proto_pb_truncated_frames)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /* length prefix past the end */
    TD_CHECK_EQ_INT(tpb_decode1("05 08 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK(it.error != NULL && strstr(it.error, "truncated") != NULL);
    /* second command truncated after a good first one */
    TD_CHECK_EQ_INT(tpb_decode1("02 08 01 03 08", buf, sizeof(buf), &cmd, &it), 1);
    TD_CHECK_EQ_INT(cmd.id, 1);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), TD_EPROTO);
    TD_CHECK_EQ_INT(cmd.id, 1); /* out-parameter untouched on error */
    /* length prefix itself truncated / overlong */
    TD_CHECK_EQ_INT(tpb_decode1("80", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK_EQ_INT(tpb_decode1("80 80 80 80 80 80 80 80 80 80 00", buf, sizeof(buf), &cmd, &it),
                    TD_EPROTO);
    /* overlong varint inside a command: id with 11 bytes */
    TD_CHECK_EQ_INT(
        tpb_decode1("0c 08 80 80 80 80 80 80 80 80 80 80 00", buf, sizeof(buf), &cmd, &it),
        TD_EPROTO);
    /* truncated value inside the command: id varint cut by the message length */
    TD_CHECK_EQ_INT(tpb_decode1("02 08 80 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* nested length past the end of the command */
    TD_CHECK_EQ_INT(tpb_decode1("04 2a 05 0a 01 63", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* string length past the end of the request */
    TD_CHECK_EQ_INT(tpb_decode1("05 2a 03 0a 05 63", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
}

TD_TEST(proto_pb_wrong_wire_types)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /* id as bytes */
    TD_CHECK_EQ_INT(tpb_decode1("03 0a 01 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK(strstr(it.error, "wire type") != NULL);
    /* subscribe as varint */
    TD_CHECK_EQ_INT(tpb_decode1("02 28 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* subscribe.channel as varint */
    TD_CHECK_EQ_INT(tpb_decode1("04 2a 02 08 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* subscribe.recover as bytes */
    TD_CHECK_EQ_INT(tpb_decode1("05 2a 03 1a 01 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* subscribe.offset as fixed64 */
    TD_CHECK_EQ_INT(tpb_decode1("0b 2a 09 39 01 00 00 00 00 00 00 00", buf, sizeof(buf), &cmd, &it),
                    TD_EPROTO);
    /* history.since as varint */
    TD_CHECK_EQ_INT(tpb_decode1("04 52 02 40 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* since.offset as bytes */
    TD_CHECK_EQ_INT(tpb_decode1("06 52 04 42 02 0a 00", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* connect.subs (known, skipped) as varint */
    TD_CHECK_EQ_INT(tpb_decode1("04 22 02 18 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* wire types 6 and 7, field 0 */
    TD_CHECK_EQ_INT(tpb_decode1("02 0e 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK_EQ_INT(tpb_decode1("02 0f 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK_EQ_INT(tpb_decode1("02 00 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* groups, at the top level and inside a request */
    TD_CHECK_EQ_INT(tpb_decode1("02 83 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK(strstr(it.error, "group") != NULL);
    TD_CHECK_EQ_INT(tpb_decode1("04 2a 02 a3 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK_EQ_INT(tpb_decode1("02 84 01", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
}

TD_TEST(proto_pb_unknown_fields_skipped)
{
    uint8_t buf[128];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /*
     * Command: id 9, reserved field 2 (varint), field 100 fixed64, field 101 fixed32,
     * field 102 bytes, then rpc{f99 varint, method "m", f98 fixed32, data "d", f97 bytes}.
     */
    const char *hex = "2e"
                      "08 09"
                      "10 05"
                      "a1 06 01 02 03 04 05 06 07 08"
                      "ad 06 01 02 03 04"
                      "b2 06 02 ff fe"
                      "6a 13 98 06 7f 12 01 6d 85 06 01 02 03 04 0a 01 64 8a 06 01 00";
    TD_REQUIRE(tpb_decode1(hex, buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK_EQ_INT(cmd.id, 9);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_RPC);
    TD_CHECK(tpb_str_eq(cmd.method, "m"));
    TD_CHECK(tpb_str_eq(cmd.data, "d") && cmd.has_data);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);

    /* connect with subs, headers, flag, dict: all known and skipped */
    TD_REQUIRE(tpb_decode1("11 22 0f 1a 03 0a 01 78 32 00 38 01 42 01 64 0a 01 74", buf,
                           sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_CONNECT && tpb_str_eq(cmd.token, "t") && cmd.flag == 0);

    /* legacy ping request, with an unknown field inside */
    TD_REQUIRE(tpb_decode1("06 08 07 5a 02 08 01", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_PING && cmd.id == 7);
}

TD_TEST(proto_pb_invalid_utf8)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /* subscribe.channel = C3 28 (bad continuation) */
    TD_CHECK_EQ_INT(tpb_decode1("06 2a 04 0a 02 c3 28", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    TD_CHECK(strstr(it.error, "UTF-8") != NULL);
    /* surrogate in rpc.method */
    TD_CHECK_EQ_INT(tpb_decode1("07 6a 05 12 03 ed a0 80", buf, sizeof(buf), &cmd, &it), TD_EPROTO);
    /* valid multibyte channel is fine */
    TD_REQUIRE(tpb_decode1("06 2a 04 0a 02 c3 a9", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(tpb_str_eq(cmd.channel, "\xc3\xa9"));
    /* bytes fields are not text: publish.data = ff 00 */
    TD_REQUIRE(tpb_decode1("06 3a 04 12 02 ff 00", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_PUBLISH && cmd.data.n == 2 && (uint8_t)cmd.data.p[0] == 0xff);
}

TD_TEST(proto_pb_history_negative_limit_and_since)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /*
     * history{channel:"h", limit:-1, since:{offset:2^63+5, epoch:"E"}, reverse:true}, id 6.
     * 2^63+5 = 85 80 80 80 80 80 80 80 80 01
     */
    const char *hex = "24 08 06 52 20"
                      "0a 01 68"
                      "38 ff ff ff ff ff ff ff ff ff 01"
                      "42 0e 08 85 80 80 80 80 80 80 80 80 01 12 01 45"
                      "48 01";
    TD_REQUIRE(tpb_decode1(hex, buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK_EQ_INT(cmd.id, 6);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_HISTORY);
    TD_CHECK(tpb_str_eq(cmd.channel, "h"));
    TD_CHECK_EQ_INT(cmd.limit, -1);
    TD_CHECK(cmd.has_since);
    TD_CHECK(cmd.since_offset == (1ull << 63) + 5);
    TD_CHECK(tpb_str_eq(cmd.since_epoch, "E"));
    TD_CHECK(cmd.reverse);
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);

    /* an empty since is still "present"; limit 10 */
    TD_REQUIRE(tpb_decode1("06 52 04 38 0a 42 00", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.has_since && cmd.since_offset == 0 && cmd.limit == 10 && !cmd.reverse);
    /* no since */
    TD_REQUIRE(tpb_decode1("04 52 02 38 03", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(!cmd.has_since && cmd.limit == 3);
}

TD_TEST(proto_pb_subscribe_all_fields)
{
    uint8_t buf[128];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /*
     * subscribe{channel "c", token "k", epoch "e", offset 2^63+5, data "{}", positioned,
     * recoverable, join_leave, delta "fossil", tf {op "and"}, flag 3, type 1, phase 1,
     * cursor "x", limit 5, asc true}, id 300
     */
    const char *hex = "43 08 ac 02 2a 3e"
                      "0a 01 63 12 01 6b 32 01 65"
                      "38 85 80 80 80 80 80 80 80 80 01"
                      "42 02 7b 7d 48 01 50 01 58 01"
                      "62 06 66 6f 73 73 69 6c"
                      "6a 05 0a 03 61 6e 64"
                      "70 03 78 01"
                      "80 01 01 8a 01 01 78 90 01 05 98 01 01";
    TD_REQUIRE(tpb_decode1(hex, buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK_EQ_INT(cmd.id, 300);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    TD_CHECK(tpb_str_eq(cmd.channel, "c") && tpb_str_eq(cmd.token, "k"));
    TD_CHECK(tpb_str_eq(cmd.epoch, "e") && cmd.offset == (1ull << 63) + 5);
    TD_CHECK(tpb_str_eq(cmd.data, "{}") && cmd.has_data);
    TD_CHECK(cmd.positioned && cmd.recoverable && cmd.join_leave && !cmd.recover);
    TD_CHECK(tpb_str_eq(cmd.delta, "fossil") && cmd.has_tf);
    TD_CHECK(cmd.flag == 3 && cmd.type == 1);
    TD_CHECK(cmd.limit == 0); /* subscribe's map limit is not history's limit */
    TD_CHECK_EQ_INT(td_codec_protobuf.decode_next(&it, &cmd), 0);
}

TD_TEST(proto_pb_other_requests)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /* presence{channel "p"} id 1 */
    TD_REQUIRE(tpb_decode1("07 08 01 42 03 0a 01 70", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_PRESENCE && tpb_str_eq(cmd.channel, "p"));
    /* presence_stats */
    TD_REQUIRE(tpb_decode1("07 08 01 4a 03 0a 01 70", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_PRESENCE_STATS && tpb_str_eq(cmd.channel, "p"));
    /* refresh{token "r"} */
    TD_REQUIRE(tpb_decode1("07 08 02 72 03 0a 01 72", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_REFRESH && tpb_str_eq(cmd.token, "r"));
    /* sub_refresh{channel "c", token "t", type 2} */
    TD_REQUIRE(tpb_decode1("0c 08 03 7a 08 0a 01 63 12 01 74 18 02", buf, sizeof(buf), &cmd, &it) ==
               1);
    TD_CHECK(cmd.kind == TD_CMD_SUB_REFRESH && tpb_str_eq(cmd.channel, "c"));
    TD_CHECK(tpb_str_eq(cmd.token, "t") && cmd.type == 2);
    /* publish{channel "c", data "", type -1 (10-byte int32)} */
    TD_REQUIRE(tpb_decode1("14 08 04 3a 10 0a 01 63 12 00 18 ff ff ff ff ff ff ff ff ff 01", buf,
                           sizeof(buf), &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_PUBLISH && cmd.has_data && cmd.data.n == 0 && cmd.type == -1);
    /* connect{data "{}", version "1.0"} */
    TD_REQUIRE(tpb_decode1("0b 22 09 12 02 7b 7d 2a 03 31 2e 30", buf, sizeof(buf), &cmd, &it) ==
               1);
    TD_CHECK(cmd.kind == TD_CMD_CONNECT && tpb_str_eq(cmd.data, "{}"));
    TD_CHECK(tpb_str_eq(cmd.version, "1.0") && cmd.token.n == 0);
    /* id wider than 32 bits keeps the low 32 (protobuf uint32 semantics) */
    TD_REQUIRE(tpb_decode1("06 08 81 80 80 80 10", buf, sizeof(buf), &cmd, &it) == 1);
    TD_CHECK_EQ_INT(cmd.id, 1);
}

TD_TEST(proto_pb_lowest_request_field_wins)
{
    uint8_t buf[64];
    struct td_cmd cmd;
    struct td_cmd_iter it;
    /* publish{channel "a", data "x"} then subscribe{channel "b"}, id 5 */
    TD_REQUIRE(tpb_decode1("0f 08 05 3a 06 0a 01 61 12 01 78 2a 03 0a 01 62", buf, sizeof(buf),
                           &cmd, &it) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    TD_CHECK(tpb_str_eq(cmd.channel, "b"));
    TD_CHECK(!cmd.has_data && cmd.data.n == 0); /* nothing of publish leaks */
    TD_CHECK_EQ_INT(cmd.id, 5);
    /* subscribe first, then publish: subscribe still wins */
    TD_REQUIRE(tpb_decode1("0f 2a 03 0a 01 62 3a 06 0a 01 61 12 01 78 08 05", buf, sizeof(buf),
                           &cmd, &it) == 1);
    TD_CHECK(cmd.kind == TD_CMD_SUBSCRIBE && tpb_str_eq(cmd.channel, "b") && !cmd.has_data);
    TD_CHECK_EQ_INT(cmd.id, 5);
    /* the same request field twice merges (last scalar wins) */
    TD_REQUIRE(tpb_decode1("0c 2a 03 0a 01 62 2a 05 0a 01 63 18 01", buf, sizeof(buf), &cmd, &it) ==
               1);
    TD_CHECK(tpb_str_eq(cmd.channel, "c") && cmd.recover);
    /* a malformed losing request still fails the command */
    TD_CHECK_EQ_INT(tpb_decode1("09 2a 03 0a 01 62 3a 02 0a 05", buf, sizeof(buf), &cmd, &it),
                    TD_EPROTO);
}

/* ---- encoding ---- */

TD_TEST(proto_pb_spec_replies)
{
    struct td_buf b;
    td_buf_init(&b);
    td_codec_protobuf.ping(&b);
    TD_CHECK(tpb_buf_is_hex(&b, "00"));

    td_buf_reset(&b);
    td_codec_protobuf.reply_empty(&b, 3, TD_CMD_PUBLISH);
    TD_CHECK(tpb_buf_is_hex(&b, "04 08 03 42 00"));

    td_buf_reset(&b);
    struct td_publication pub = {.offset = 6, .data = {"\"hi\"", 4}};
    td_codec_protobuf.push_pub(&b, (struct td_str){"news", 4}, &pub);
    TD_CHECK(tpb_buf_is_hex(&b, "12 22 10 12 04 6e 65 77 73 22 08 22 04 22 68 69 22 30 06"));

    td_buf_reset(&b);
    td_codec_protobuf.reply_error(&b, 4, 103, "permission denied", false);
    TD_CHECK(tpb_buf_is_hex(&b, "19 08 04 12 15 08 67 12 11"
                                "70 65 72 6d 69 73 73 69 6f 6e 20 64 65 6e 69 65 64"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_reply_empty_every_kind)
{
    static const struct {
        enum td_cmd_kind kind;
        uint32_t field;
    } cases[] = {
        {TD_CMD_CONNECT, 5},  {TD_CMD_SUBSCRIBE, 6},    {TD_CMD_UNSUBSCRIBE, 7},
        {TD_CMD_PUBLISH, 8},  {TD_CMD_PRESENCE, 9},     {TD_CMD_PRESENCE_STATS, 10},
        {TD_CMD_HISTORY, 11}, {TD_CMD_PING, 12},        {TD_CMD_RPC, 13},
        {TD_CMD_REFRESH, 14}, {TD_CMD_SUB_REFRESH, 15},
    };
    struct td_buf b;
    td_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        td_buf_reset(&b);
        td_codec_protobuf.reply_empty(&b, 77, cases[i].kind);
        struct tpb_msg r = tpb_unit(&b, 0);
        TD_CHECK(r.ok && tpb_uint(r, 1) == 77);
        struct tpb_msg res = tpb_sub(r, cases[i].field);
        TD_CHECK(res.ok && res.n == 0);
        TD_CHECK_EQ_INT(b.len, 5);
    }
    /* no result field exists for send: just the id */
    td_buf_reset(&b);
    td_codec_protobuf.reply_empty(&b, 77, TD_CMD_SEND);
    TD_CHECK(tpb_buf_is_hex(&b, "02 08 4d"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_reply_error_fields)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "xy"); /* encoders append */
    td_codec_protobuf.reply_error(&b, 0x12345678, 3501, NULL, true);
    TD_CHECK(memcmp(b.data, "xy", 2) == 0);
    struct tpb_msg r = tpb_unit(&b, 2);
    TD_REQUIRE(r.ok);
    TD_CHECK(tpb_uint(r, 1) == 0x12345678);
    struct tpb_msg e = tpb_sub(r, 2);
    TD_CHECK(e.ok && tpb_uint(e, 1) == 3501 && tpb_uint(e, 3) == 1 && !tpb_has(e, 2));
    td_buf_free(&b);
}

TD_TEST(proto_pb_reply_connect)
{
    struct td_buf b;
    td_buf_init(&b);
    struct td_connect_result cr = {
        .client = {"client-1", 8},
        .version = {"0.1.0", 5},
        .expires = true,
        .ttl = 3600,
        .data = {"{\"a\":1}", 7},
        .ping = 25,
        .pong = true,
        .session = {"s", 1},
        .node = {"n", 1},
    };
    td_codec_protobuf.reply_connect(&b, 1, &cr);
    struct tpb_msg r = tpb_unit(&b, 0);
    TD_REQUIRE(r.ok);
    TD_CHECK(tpb_uint(r, 1) == 1);
    struct tpb_msg c = tpb_sub(r, 5);
    TD_REQUIRE(c.ok);
    TD_CHECK(tpb_str_is(c, 1, "client-1") && tpb_str_is(c, 2, "0.1.0"));
    TD_CHECK(tpb_uint(c, 3) == 1 && tpb_uint(c, 4) == 3600);
    TD_CHECK(tpb_str_is(c, 5, "{\"a\":1}") && !tpb_has(c, 6));
    TD_CHECK(tpb_uint(c, 7) == 25 && tpb_uint(c, 8) == 1);
    TD_CHECK(tpb_str_is(c, 9, "s") && tpb_str_is(c, 10, "n"));

    /* all zero: the result is still there, empty */
    struct td_connect_result zero;
    memset(&zero, 0, sizeof(zero));
    td_buf_reset(&b);
    td_codec_protobuf.reply_connect(&b, 1, &zero);
    TD_CHECK(tpb_buf_is_hex(&b, "04 08 01 2a 00"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_reply_subscribe)
{
    struct td_buf b;
    td_buf_init(&b);
    struct td_client_info info = {
        .user = {"42", 2}, .client = {"c1", 2}, .conn_info = {"{}", 2}, .chan_info = {"[]", 2}};
    struct td_publication pubs[2] = {
        {.offset = 7, .data = {"{\"n\":7}", 7}, .info = &info, .time = 1700000000000},
        {.offset = (1ull << 63) + 5, .data = {"{\"n\":8}", 7}},
    };
    struct td_subscribe_result sr = {
        .expires = true,
        .ttl = 60,
        .recoverable = true,
        .positioned = true,
        .recovered = true,
        .was_recovering = true,
        .epoch = {"EP", 2},
        .offset = (1ull << 63) + 5,
        .pubs = pubs,
        .npubs = 2,
        .data = {"{}", 2},
    };
    td_codec_protobuf.reply_subscribe(&b, 6, &sr);
    struct tpb_msg r = tpb_unit(&b, 0);
    TD_REQUIRE(r.ok);
    TD_CHECK(tpb_uint(r, 1) == 6);
    struct tpb_msg s = tpb_sub(r, 6);
    TD_REQUIRE(s.ok);
    TD_CHECK(tpb_uint(s, 1) == 1 && tpb_uint(s, 2) == 60 && tpb_uint(s, 3) == 1);
    TD_CHECK(tpb_str_is(s, 6, "EP") && tpb_uint(s, 9) == (1ull << 63) + 5);
    TD_CHECK(tpb_uint(s, 8) == 1 && tpb_uint(s, 10) == 1 && tpb_uint(s, 12) == 1);
    TD_CHECK(tpb_str_is(s, 11, "{}"));
    TD_CHECK_EQ_INT(tpb_count(s, 7), 2);
    struct tpb_msg p0 = tpb_sub_nth(s, 7, 0), p1 = tpb_sub_nth(s, 7, 1);
    TD_REQUIRE(p0.ok && p1.ok);
    TD_CHECK(tpb_str_is(p0, 4, "{\"n\":7}") && tpb_uint(p0, 6) == 7);
    TD_CHECK(tpb_uint(p0, 9) == 1700000000000ull);
    struct tpb_msg i0 = tpb_sub(p0, 5);
    TD_CHECK(i0.ok && tpb_str_is(i0, 1, "42") && tpb_str_is(i0, 2, "c1"));
    TD_CHECK(tpb_str_is(i0, 3, "{}") && tpb_str_is(i0, 4, "[]"));
    TD_CHECK(tpb_str_is(p1, 4, "{\"n\":8}") && tpb_uint(p1, 6) == (1ull << 63) + 5);
    TD_CHECK(!tpb_has(p1, 5) && !tpb_has(p1, 9));

    /* neither positioned nor recoverable: epoch/offset are not sent */
    struct td_subscribe_result plain = {.epoch = {"EP", 2}, .offset = 9};
    td_buf_reset(&b);
    td_codec_protobuf.reply_subscribe(&b, 2, &plain);
    TD_CHECK(tpb_buf_is_hex(&b, "04 08 02 32 00"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_reply_presence)
{
    struct td_buf b;
    td_buf_init(&b);
    struct td_client_info infos[2] = {
        {.user = {"", 0}, .client = {"client-1", 8}},
        {.user = {"u", 1}, .client = {"client-2", 8}, .conn_info = {"{\"x\":1}", 7}},
    };
    td_codec_protobuf.reply_presence(&b, 4, infos, 2);
    struct tpb_msg r = tpb_unit(&b, 0);
    TD_REQUIRE(r.ok);
    struct tpb_msg pr = tpb_sub(r, 9);
    TD_REQUIRE(pr.ok);
    TD_CHECK_EQ_INT(tpb_count(pr, 1), 2);
    struct tpb_msg e0 = tpb_sub_nth(pr, 1, 0), e1 = tpb_sub_nth(pr, 1, 1);
    TD_CHECK(tpb_str_is(e0, 1, "client-1") && tpb_str_is(e1, 1, "client-2"));
    struct tpb_msg v0 = tpb_sub(e0, 2), v1 = tpb_sub(e1, 2);
    TD_CHECK(v0.ok && !tpb_has(v0, 1) && tpb_str_is(v0, 2, "client-1"));
    TD_CHECK(v1.ok && tpb_str_is(v1, 1, "u") && tpb_str_is(v1, 3, "{\"x\":1}"));

    /* no one present: an empty result */
    td_buf_reset(&b);
    td_codec_protobuf.reply_presence(&b, 4, NULL, 0);
    TD_CHECK(tpb_buf_is_hex(&b, "04 08 04 4a 00"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_reply_presence_stats_history_rpc_refresh)
{
    struct td_buf b;
    td_buf_init(&b);
    td_codec_protobuf.reply_presence_stats(&b, 5, 3, 1);
    TD_CHECK(tpb_buf_is_hex(&b, "08 08 05 52 04 08 03 10 01"));

    td_buf_reset(&b);
    struct td_publication pubs[1] = {{.offset = 3, .data = {"{}", 2}}};
    struct td_history_result hr = {.pubs = pubs, .npubs = 1, .epoch = {"E", 1}, .offset = 10};
    td_codec_protobuf.reply_history(&b, 6, &hr);
    struct tpb_msg r = tpb_unit(&b, 0);
    struct tpb_msg h = tpb_sub(r, 11);
    TD_REQUIRE(h.ok);
    TD_CHECK(tpb_count(h, 1) == 1 && tpb_str_is(h, 2, "E") && tpb_uint(h, 3) == 10);
    struct tpb_msg p = tpb_sub(h, 1);
    TD_CHECK(tpb_str_is(p, 4, "{}") && tpb_uint(p, 6) == 3);

    td_buf_reset(&b);
    td_codec_protobuf.reply_rpc(&b, 7, (struct td_str){"ok", 2});
    TD_CHECK(tpb_buf_is_hex(&b, "08 08 07 6a 04 0a 02 6f 6b"));

    td_buf_reset(&b);
    struct td_refresh_result rr = {
        .client = {"c", 1}, .version = {"v", 1}, .expires = true, .ttl = 300};
    td_codec_protobuf.reply_refresh(&b, 8, &rr);
    r = tpb_unit(&b, 0);
    struct tpb_msg f = tpb_sub(r, 14);
    TD_REQUIRE(f.ok);
    TD_CHECK(tpb_str_is(f, 1, "c") && tpb_str_is(f, 2, "v"));
    TD_CHECK(tpb_uint(f, 3) == 1 && tpb_uint(f, 4) == 300);
    td_buf_free(&b);
}

TD_TEST(proto_pb_large_bodies)
{
    /* replies whose length prefixes need 2 and 3 bytes at every nesting level */
    const size_t sizes[] = {100, 125, 126, 127, 128, 200, 16380, 16384, 100000};
    char *big = malloc(100000);
    TD_REQUIRE(big != NULL);
    memset(big, 'q', 100000);
    struct td_buf b;
    td_buf_init(&b);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct td_str d = {big, sizes[i]};
        td_buf_reset(&b);
        td_codec_protobuf.reply_rpc(&b, 1, d);
        struct tpb_msg r = tpb_unit(&b, 0);
        struct tpb_msg res = tpb_sub(r, 13);
        struct tpb_field f;
        TD_CHECK(res.ok && tpb_find(res, 1, 0, &f) && f.n == sizes[i]);

        td_buf_reset(&b);
        struct td_client_info info = {.user = {"u", 1}, .client = {big, sizes[i]}};
        struct td_publication pub = {.offset = UINT64_MAX, .data = d, .info = &info, .time = -1};
        td_codec_protobuf.push_pub(&b, (struct td_str){big, sizes[i]}, &pub);
        r = tpb_unit(&b, 0);
        struct tpb_msg push = tpb_sub(r, 4);
        struct tpb_msg p = tpb_sub(push, 4);
        TD_CHECK(p.ok && tpb_find(p, 4, 0, &f) && f.n == sizes[i]);
        TD_CHECK(tpb_uint(p, 6) == UINT64_MAX && tpb_uint(p, 9) == UINT64_MAX);
        TD_CHECK(tpb_find(push, 2, 0, &f) && f.n == sizes[i]);
        struct tpb_msg in = tpb_sub(p, 5);
        TD_CHECK(in.ok && tpb_find(in, 2, 0, &f) && f.n == sizes[i]);

        td_buf_reset(&b);
        td_codec_protobuf.push_join(&b, (struct td_str){"ch", 2}, &info);
        r = tpb_unit(&b, 0);
        in = tpb_sub(tpb_sub(tpb_sub(r, 4), 5), 1);
        TD_CHECK(in.ok && tpb_find(in, 2, 0, &f) && f.n == sizes[i] && tpb_str_is(in, 1, "u"));
    }
    td_buf_free(&b);
    free(big);
}

TD_TEST(proto_pb_push_pub_variants)
{
    struct td_buf b;
    td_buf_init(&b);
    /* no info, no offset, no time, empty data: push{channel, pub{}} */
    struct td_publication pub = {0};
    td_codec_protobuf.push_pub(&b, (struct td_str){"c", 1}, &pub);
    TD_CHECK(tpb_buf_is_hex(&b, "07 22 05 12 01 63 22 00"));
    /* info present but empty is still written */
    struct td_client_info info = {0};
    pub.info = &info;
    pub.time = 1;
    td_buf_reset(&b);
    td_codec_protobuf.push_pub(&b, (struct td_str){"c", 1}, &pub);
    TD_CHECK(tpb_buf_is_hex(&b, "0b 22 09 12 01 63 22 04 2a 00 48 01"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_pushes)
{
    struct td_buf b;
    td_buf_init(&b);
    struct td_client_info info = {.user = {"42", 2}, .client = {"b6d", 3}};
    td_codec_protobuf.push_join(&b, (struct td_str){"chat", 4}, &info);
    struct tpb_msg r = tpb_unit(&b, 0);
    TD_CHECK(r.ok && !tpb_has(r, 1));
    struct tpb_msg p = tpb_sub(r, 4);
    TD_CHECK(tpb_str_is(p, 2, "chat"));
    struct tpb_msg i = tpb_sub(tpb_sub(p, 5), 1);
    TD_CHECK(i.ok && tpb_str_is(i, 1, "42") && tpb_str_is(i, 2, "b6d") && !tpb_has(i, 3));

    td_buf_reset(&b);
    td_codec_protobuf.push_leave(&b, (struct td_str){"chat", 4}, &info);
    p = tpb_sub(tpb_unit(&b, 0), 4);
    TD_CHECK(tpb_str_is(p, 2, "chat") && !tpb_has(p, 5));
    i = tpb_sub(tpb_sub(p, 6), 1);
    TD_CHECK(i.ok && tpb_str_is(i, 2, "b6d"));

    td_buf_reset(&b);
    td_codec_protobuf.push_unsubscribe(&b, (struct td_str){"news", 4}, 2000, "server unsubscribe");
    p = tpb_sub(tpb_unit(&b, 0), 4);
    struct tpb_msg u = tpb_sub(p, 7);
    TD_CHECK(tpb_str_is(p, 2, "news") && u.ok && tpb_uint(u, 2) == 2000);
    TD_CHECK(tpb_str_is(u, 3, "server unsubscribe") && !tpb_has(u, 1));

    td_buf_reset(&b);
    td_codec_protobuf.push_message(&b, (struct td_str){"{\"hi\":1}", 8});
    p = tpb_sub(tpb_unit(&b, 0), 4);
    TD_CHECK(p.ok && !tpb_has(p, 2) && tpb_str_is(tpb_sub(p, 8), 1, "{\"hi\":1}"));

    td_buf_reset(&b);
    td_codec_protobuf.push_disconnect(&b, 3001, "shutdown");
    p = tpb_sub(tpb_unit(&b, 0), 4);
    struct tpb_msg d = tpb_sub(p, 11);
    TD_CHECK(d.ok && tpb_uint(d, 1) == 3001 && tpb_str_is(d, 2, "shutdown"));

    /* several units appended to one buffer stay separately delimited */
    td_buf_reset(&b);
    td_codec_protobuf.ping(&b);
    td_codec_protobuf.push_disconnect(&b, 3001, NULL);
    TD_CHECK(tpb_buf_is_hex(&b, "00 07 22 05 5a 03 08 b9 17"));
    td_buf_free(&b);
}

TD_TEST(proto_pb_encode_then_decode_command_fields)
{
    /* An encoded pub's data round-trips through a decoded publish command. */
    uint8_t frame[64];
    size_t n = tpb_hex("0c 08 03 3a 08 0a 01 63 12 03 61 62 63", frame, sizeof(frame));
    struct td_cmd_iter it;
    struct td_cmd cmd;
    td_cmd_iter_init(&it, frame, n);
    TD_REQUIRE(td_codec_protobuf.decode_next(&it, &cmd) == 1);
    struct td_buf b;
    td_buf_init(&b);
    struct td_publication pub = {.offset = 1, .data = cmd.data};
    td_codec_protobuf.push_pub(&b, cmd.channel, &pub);
    struct tpb_msg p = tpb_sub(tpb_sub(tpb_unit(&b, 0), 4), 4);
    TD_CHECK(tpb_str_is(p, 4, "abc") && tpb_uint(p, 6) == 1);
    td_buf_free(&b);
}
