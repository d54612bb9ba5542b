#include "proto/td_proto.h"

#include <stdlib.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "td_test.h"

/* A frame decoded from a copy of a string literal (the codec writes into the frame). */
struct frame {
    uint8_t buf[1024];
    struct td_cmd_iter it;
};

static void frame_init(struct frame *f, const char *s)
{
    size_t n = strlen(s);
    memcpy(f->buf, s, n);
    td_cmd_iter_init(&f->it, f->buf, n);
}

static int next(struct frame *f, struct td_cmd *cmd)
{
    return td_codec_json.decode_next(&f->it, cmd);
}

/* decode_one decodes a single-command frame and checks that nothing follows it. */
static int decode_one(struct frame *f, const char *s, struct td_cmd *cmd)
{
    frame_init(f, s);
    int rc = next(f, cmd);
    if (rc != 1)
        return rc;
    struct td_cmd extra;
    return next(f, &extra) == 0 ? 1 : -1;
}

/* decode_err decodes s and returns the error reason, or "" if it decoded. */
static const char *decode_err(const char *s)
{
    static struct frame f;
    struct td_cmd cmd;
    int rc;
    frame_init(&f, s);
    while ((rc = next(&f, &cmd)) == 1) {
    }
    if (rc == 0)
        return "";
    return f.it.error != NULL ? f.it.error : "(null)";
}

#define CHECK_STR(s, lit) TD_CHECK_MEM_STR((s).p, (s).n, lit)

TD_TEST(proto_json_decode_batch)
{
    struct frame f;
    struct td_cmd cmd;
    frame_init(&f, "{\"connect\":{\"token\":\"OLD\",\"name\":\"js\"},\"id\":1}\n"
                   "{\"subscribe\":{\"channel\":\"news\",\"flag\":1},\"id\":2}");
    TD_REQUIRE(next(&f, &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.id, 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_CONNECT);
    CHECK_STR(cmd.token, "OLD");
    CHECK_STR(cmd.name, "js");
    TD_CHECK(!cmd.has_data);
    TD_CHECK(cmd.channel.p == NULL && cmd.version.n == 0);
    TD_REQUIRE(next(&f, &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.id, 2);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    CHECK_STR(cmd.channel, "news");
    TD_CHECK_EQ_INT(cmd.flag, 1);
    TD_CHECK(!cmd.recover && !cmd.has_data && cmd.token.n == 0);
    TD_CHECK_EQ_INT(next(&f, &cmd), 0);
    TD_CHECK_EQ_INT(next(&f, &cmd), 0);

    /* One trailing newline is accepted. */
    frame_init(&f, "{\"publish\":{\"channel\":\"a\",\"data\":1},\"id\":3}\n{}\n");
    TD_REQUIRE(next(&f, &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_PUBLISH);
    TD_REQUIRE(next(&f, &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
    TD_CHECK_EQ_INT(next(&f, &cmd), 0);
}

TD_TEST(proto_json_decode_connect_full)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"connect\":{\"token\":\"TOKEN\",\"data\":{\"hello\":\"world\"},"
                          "\"name\":\"js\",\"version\":\"1.2.3\",\"headers\":{\"X-Foo\":\"bar\"},"
                          "\"subs\":{\"srvch\":{\"recover\":true,\"offset\":12,\"epoch\":\"SE\"}},"
                          "\"flag\":0,\"dict\":\"d\",\"profile\":\"p\"},\"id\":1}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_CONNECT);
    TD_CHECK_EQ_INT(cmd.id, 1);
    CHECK_STR(cmd.token, "TOKEN");
    TD_CHECK(cmd.has_data);
    CHECK_STR(cmd.data, "{\"hello\":\"world\"}");
    CHECK_STR(cmd.name, "js");
    CHECK_STR(cmd.version, "1.2.3");
    /* Views point into the frame. */
    TD_CHECK(cmd.token.p > (const char *)f.buf && cmd.token.p < (const char *)f.buf + 1024);
}

TD_TEST(proto_json_decode_subscribe_full)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"subscribe\":{\"channel\":\"news\",\"data\":{\"s\":1},\"positioned\":"
                          "true,\"recoverable\":true,\"join_leave\":true,\"flag\":1,\"delta\":"
                          "\"fossil\",\"token\":\"st\",\"type\":0,\"tf\":{\"op\":\"and\"}},"
                          "\"id\":2}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    TD_CHECK_EQ_INT(cmd.id, 2);
    CHECK_STR(cmd.channel, "news");
    CHECK_STR(cmd.data, "{\"s\":1}");
    TD_CHECK(cmd.has_data && cmd.positioned && cmd.recoverable && cmd.join_leave && cmd.has_tf);
    TD_CHECK(!cmd.recover);
    TD_CHECK_EQ_INT(cmd.flag, 1);
    CHECK_STR(cmd.delta, "fossil");
    CHECK_STR(cmd.token, "st");
    TD_CHECK_EQ_INT(cmd.type, 0);
}

TD_TEST(proto_json_decode_recovery_subscribe)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"subscribe\":{\"channel\":\"news\",\"flag\":1,\"recover\":true,"
                          "\"offset\":6,\"epoch\":\"EP\"},\"id\":6}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.id, 6);
    TD_CHECK(cmd.recover);
    TD_CHECK_EQ_INT(cmd.offset, 6);
    CHECK_STR(cmd.epoch, "EP");
    TD_CHECK(!cmd.has_tf && !cmd.positioned);

    TD_REQUIRE(decode_one(&f,
                          "{\"subscribe\":{\"channel\":\"c\",\"offset\":18446744073709551615},"
                          "\"id\":4294967295}",
                          &cmd) == 1);
    TD_CHECK(cmd.offset == UINT64_MAX);
    TD_CHECK(cmd.id == UINT32_MAX);
}

TD_TEST(proto_json_decode_history)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"history\":{\"channel\":\"news\",\"since\":{\"offset\":3,\"epoch\":"
                          "\"EP\"},\"limit\":10,\"reverse\":true},\"id\":6}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_HISTORY);
    CHECK_STR(cmd.channel, "news");
    TD_CHECK(cmd.has_since && cmd.reverse);
    TD_CHECK_EQ_INT(cmd.since_offset, 3);
    CHECK_STR(cmd.since_epoch, "EP");
    TD_CHECK_EQ_INT(cmd.limit, 10);

    TD_REQUIRE(decode_one(&f,
                          "{\"history\":{\"channel\":\"n\",\"limit\":-1,\"since\":{}},\"id\":7}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.limit, -1);
    TD_CHECK(cmd.has_since && !cmd.reverse);
    TD_CHECK_EQ_INT(cmd.since_offset, 0);

    TD_REQUIRE(decode_one(&f, "{\"history\":{\"channel\":\"n\",\"since\":null},\"id\":8}", &cmd) ==
               1);
    TD_CHECK(!cmd.has_since);
}

TD_TEST(proto_json_decode_other_requests)
{
    struct frame f;
    struct td_cmd cmd;

    TD_REQUIRE(decode_one(&f, "{\"unsubscribe\":{\"channel\":\"news\"},\"id\":8}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_UNSUBSCRIBE);
    CHECK_STR(cmd.channel, "news");

    TD_REQUIRE(decode_one(&f,
                          "{\"publish\":{\"channel\":\"news\",\"data\": [1, \"x\"] ,\"type\":1},"
                          "\"id\":3}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_PUBLISH);
    CHECK_STR(cmd.data, "[1, \"x\"]");
    TD_CHECK_EQ_INT(cmd.type, 1);

    TD_REQUIRE(decode_one(&f, "{\"presence\":{\"channel\":\"p\"},\"id\":4}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_PRESENCE);
    CHECK_STR(cmd.channel, "p");

    TD_REQUIRE(decode_one(&f, "{\"presence_stats\":{\"channel\":\"ps\"},\"id\":5}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_PRESENCE_STATS);
    CHECK_STR(cmd.channel, "ps");

    TD_REQUIRE(decode_one(&f, "{\"ping\":{},\"id\":9}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_PING);
    TD_CHECK_EQ_INT(cmd.id, 9);

    TD_REQUIRE(decode_one(&f, "{\"send\":{\"data\":{\"y\":2}}}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SEND);
    TD_CHECK_EQ_INT(cmd.id, 0);
    CHECK_STR(cmd.data, "{\"y\":2}");

    TD_REQUIRE(decode_one(&f, "{\"rpc\":{\"method\":\"m\",\"data\":\"str\"},\"id\":10}", &cmd) ==
               1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_RPC);
    CHECK_STR(cmd.method, "m");
    CHECK_STR(cmd.data, "\"str\"");

    TD_REQUIRE(decode_one(&f, "{\"refresh\":{\"token\":\"NEW\"},\"id\":11}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_REFRESH);
    CHECK_STR(cmd.token, "NEW");

    TD_REQUIRE(decode_one(&f,
                          "{\"sub_refresh\":{\"channel\":\"c\",\"token\":\"T\",\"type\":2},"
                          "\"id\":12}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUB_REFRESH);
    CHECK_STR(cmd.channel, "c");
    CHECK_STR(cmd.token, "T");
    TD_CHECK_EQ_INT(cmd.type, 2);
}

TD_TEST(proto_json_decode_pong_and_empty)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f, "{}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
    TD_CHECK_EQ_INT(cmd.id, 0);
    TD_REQUIRE(decode_one(&f, "{}\n", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
    TD_REQUIRE(decode_one(&f, " {} \r", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
    /* An id without any request is a bad request, for the engine to reject. */
    TD_REQUIRE(decode_one(&f, "{\"id\":5}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
    TD_CHECK_EQ_INT(cmd.id, 5);
}

TD_TEST(proto_json_decode_escaped_strings)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"\\u0073ubscribe\":{\"ch\\u0061nnel\":\"a\\u00e9\\\\b\\\"c\\/d "
                          "\\uD83D\\uDE00\",\"epoch\":\"\\t\"},\"id\":3}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    CHECK_STR(cmd.channel, "a\xC3\xA9\\b\"c/d \xF0\x9F\x98\x80");
    CHECK_STR(cmd.epoch, "\t");
    /* The raw data span is not unescaped. */
    TD_REQUIRE(decode_one(&f, "{\"publish\":{\"channel\":\"x\",\"data\":\"\\u00e9\\n\"},\"id\":1}",
                          &cmd) == 1);
    CHECK_STR(cmd.data, "\"\\u00e9\\n\"");
}

TD_TEST(proto_json_decode_first_request_wins)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"subscribe\":{\"channel\":\"b\"},\"connect\":{\"token\":\"t\"},"
                          "\"id\":1}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_CONNECT);
    CHECK_STR(cmd.token, "t");
    TD_CHECK(cmd.channel.n == 0); /* nothing leaks from the losing request */

    TD_REQUIRE(decode_one(&f, "{\"sub_refresh\":{\"channel\":\"z\"},\"publish\":null,\"rpc\":{}}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_RPC);

    /* A repeated key: the last one wins. */
    TD_REQUIRE(decode_one(&f,
                          "{\"id\":1,\"unsubscribe\":{\"channel\":\"a\"},\"id\":2,"
                          "\"unsubscribe\":{\"channel\":\"b\"}}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.id, 2);
    CHECK_STR(cmd.channel, "b");
}

TD_TEST(proto_json_decode_nulls_and_unknown_keys)
{
    struct frame f;
    struct td_cmd cmd;
    TD_REQUIRE(decode_one(&f,
                          "{\"id\":null,\"subscribe\":{\"channel\":\"x\",\"data\":null,"
                          "\"offset\":null,\"recover\":null,\"tf\":null,\"extra\":[1,{\"a\":[]}]},"
                          "\"connect\":null,\"unknown\":{\"deep\":[null,true]},\"method\":5}",
                          &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_SUBSCRIBE);
    TD_CHECK_EQ_INT(cmd.id, 0);
    CHECK_STR(cmd.channel, "x");
    TD_CHECK(!cmd.has_data && !cmd.recover && !cmd.has_tf);
    TD_CHECK_EQ_INT(cmd.offset, 0);

    TD_REQUIRE(decode_one(&f, "{\"subscribe\":null}", &cmd) == 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
}

TD_TEST(proto_json_decode_errors)
{
    static const struct {
        const char *frame;
        const char *reason; /* NULL: any reason */
    } cases[] = {
        {"", "empty frame"},
        {"\n", "empty line in frame"},
        {"{}\n\n", "empty line in frame"},
        {"{}\n\n{}", "empty line in frame"},
        {"\n{}", "empty line in frame"},
        {"[]", "command is not a JSON object"},
        {"5", "command is not a JSON object"},
        {"\"x\"", "command is not a JSON object"},
        {"null", "command is not a JSON object"},
        {"   ", "command is not a JSON object"},
        {"{\"id\":-1}", "invalid command id"},
        {"{\"id\":4294967296}", "invalid command id"},
        {"{\"id\":1.0}", "invalid command id"},
        {"{\"id\":1e2}", "invalid command id"},
        {"{\"id\":\"1\"}", "invalid command id"},
        {"{\"id\":true}", "invalid command id"},
        {"{\"subscribe\":{\"channel\":5},\"id\":1}", "invalid subscribe.channel"},
        {"{\"subscribe\":{\"channel\":\"a\",\"offset\":1.5},\"id\":1}", "invalid subscribe.offset"},
        {"{\"subscribe\":{\"channel\":\"a\",\"offset\":-1},\"id\":1}", "invalid subscribe.offset"},
        {"{\"subscribe\":{\"channel\":\"a\",\"recover\":1},\"id\":1}", "invalid subscribe.recover"},
        {"{\"subscribe\":{\"channel\":\"a\",\"tf\":[]},\"id\":1}", "invalid subscribe.tf"},
        {"{\"subscribe\":{\"flag\":\"1\"}}", "invalid subscribe.flag"},
        {"{\"subscribe\":{\"type\":2147483648}}", "invalid subscribe.type"},
        {"{\"subscribe\":5,\"id\":1}", "invalid subscribe"},
        {"{\"subscribe\":[],\"id\":1}", "invalid subscribe"},
        {"{\"connect\":{\"token\":1}}", "invalid connect.token"},
        {"{\"connect\":{\"data\":}}", "invalid connect.data"},
        {"{\"connect\":{\"data\":[1,]}}", "invalid connect.data"},
        {"{\"connect\":{},\"subscribe\":{\"channel\":5}}", "invalid subscribe.channel"},
        {"{\"history\":{\"since\":1}}", "invalid history.since"},
        {"{\"history\":{\"since\":{\"offset\":\"3\"}}}", "invalid history.since"},
        {"{\"history\":{\"since\":{\"epoch\":3}}}", "invalid history.since"},
        {"{\"history\":{\"limit\":2147483648}}", "invalid history.limit"},
        {"{\"history\":{\"reverse\":\"yes\"}}", "invalid history.reverse"},
        {"{\"publish\":{\"channel\":\"c\",\"data\":\"\\uD800\"}}", "invalid publish.data"},
        {"{\"rpc\":{\"method\":[]}}", "invalid rpc.method"},
        {"{\"send\":{\"data\":01}}", "invalid send.data"},
        {"{\"refresh\":{\"token\":null,\"token\":false}}", "invalid refresh.token"},
        {"{\"sub_refresh\":{\"type\":\"x\"}}", "invalid sub_refresh.type"},
        {"{\"unsubscribe\":{\"channel\":{}}}", "invalid unsubscribe.channel"},
        {"{\"presence\":{\"channel\":1}}", "invalid presence.channel"},
        {"{\"presence_stats\":{\"channel\":1}}", "invalid presence_stats.channel"},
        {"{\"ping\":1}", "invalid ping"},
        {"{\"id\":1,}", NULL},
        {"{\"id\":1", NULL},
        {"{\"id\" 1}", NULL},
        {"{\"unknown\":[1,}", NULL},
        {"{\"unknown\":\"\xFF\"}", NULL},
        {"{\"connect\":{\"x\":tru}}", NULL},
        {"{} {}", NULL},
        {"{}x", NULL},
        {"{\"id\":1,\n\"connect\":{}}", NULL}, /* a command can not span lines */
        {"{\"subscribe\":{\"channel\":\"a\nb\"}}", NULL},
        {"{}\n{\"id\":-5}", "invalid command id"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *got = decode_err(cases[k].frame);
        bool ok = got[0] != '\0' && (cases[k].reason == NULL || strcmp(got, cases[k].reason) == 0);
        if (!ok)
            fprintf(stderr, "  case %zu (%s): got \"%s\"\n", k, cases[k].frame, got);
        TD_CHECK(ok);
    }

    /* After an error the iterator keeps failing. */
    struct frame f;
    struct td_cmd cmd;
    frame_init(&f, "{\"id\":-1}\n{}");
    TD_CHECK_EQ_INT(next(&f, &cmd), TD_EPROTO);
    TD_CHECK_EQ_INT(next(&f, &cmd), TD_EPROTO);
}

/* ----- encoding ----- */

#define EXPECT(call, expect)                                                                       \
    do {                                                                                           \
        struct td_buf b_;                                                                          \
        td_buf_init(&b_);                                                                          \
        td_codec_json.call;                                                                        \
        TD_CHECK_MEM_STR(b_.data, b_.len, expect);                                                 \
        TD_CHECK(td_json_valid((const char *)b_.data, b_.len));                                    \
        TD_CHECK(memchr(b_.data, '\n', b_.len) == NULL);                                           \
        td_buf_free(&b_);                                                                          \
    } while (0)

#define S(lit) ((struct td_str){lit, sizeof(lit) - 1})

TD_TEST(proto_json_encode_error_and_empty)
{
    EXPECT(reply_error(&b_, 4, 103, "permission denied", false),
           "{\"id\":4,\"error\":{\"code\":103,\"message\":\"permission denied\"}}");
    EXPECT(reply_error(&b_, 7, 100, "internal \"x\"", true),
           "{\"id\":7,\"error\":{\"code\":100,\"message\":\"internal \\\"x\\\"\","
           "\"temporary\":true}}");
    EXPECT(reply_error(&b_, 0, 107, NULL, false), "{\"error\":{\"code\":107,\"message\":\"\"}}");
    EXPECT(reply_empty(&b_, 3, TD_CMD_PUBLISH), "{\"id\":3,\"publish\":{}}");
    EXPECT(reply_empty(&b_, 8, TD_CMD_UNSUBSCRIBE), "{\"id\":8,\"unsubscribe\":{}}");
    EXPECT(reply_empty(&b_, 9, TD_CMD_SUB_REFRESH), "{\"id\":9,\"sub_refresh\":{}}");
    EXPECT(reply_empty(&b_, 10, TD_CMD_PRESENCE_STATS), "{\"id\":10,\"presence_stats\":{}}");
    EXPECT(reply_empty(&b_, 11, TD_CMD_SEND), "{\"id\":11}");
    EXPECT(reply_empty(&b_, 12, TD_CMD_EMPTY), "{\"id\":12}");
    EXPECT(ping(&b_), "{}");
}

TD_TEST(proto_json_encode_connect)
{
    struct td_connect_result r = {
        .client = S("client-1"), .version = S("0.0.1"), .ping = 25, .pong = true};
    EXPECT(reply_connect(&b_, 1, &r),
           "{\"id\":1,\"connect\":{\"client\":\"client-1\",\"version\":\"0.0.1\",\"ping\":25,"
           "\"pong\":true}}");
    struct td_connect_result full = {.client = S("c"),
                                     .version = S("v"),
                                     .expires = true,
                                     .ttl = 3600,
                                     .data = S("{\"a\":\n 1}"),
                                     .ping = 1,
                                     .pong = true,
                                     .session = S("sess"),
                                     .node = S("node-1")};
    EXPECT(reply_connect(&b_, 2, &full),
           "{\"id\":2,\"connect\":{\"client\":\"c\",\"version\":\"v\",\"expires\":true,"
           "\"ttl\":3600,\"data\":{\"a\": 1},\"ping\":1,\"pong\":true,\"session\":\"sess\","
           "\"node\":\"node-1\"}}");
    struct td_connect_result empty = {.client = S("c")};
    EXPECT(reply_connect(&b_, 3, &empty), "{\"id\":3,\"connect\":{\"client\":\"c\"}}");
}

TD_TEST(proto_json_encode_subscribe)
{
    struct td_subscribe_result plain = {0};
    EXPECT(reply_subscribe(&b_, 2, &plain), "{\"id\":2,\"subscribe\":{}}");

    struct td_subscribe_result r = {
        .recoverable = true, .positioned = true, .epoch = S("EP"), .offset = 7};
    EXPECT(reply_subscribe(&b_, 2, &r),
           "{\"id\":2,\"subscribe\":{\"recoverable\":true,\"epoch\":\"EP\",\"offset\":7,"
           "\"positioned\":true}}");

    /* Positioned at offset 0: epoch present, zero offset omitted. */
    struct td_subscribe_result p0 = {.positioned = true, .epoch = S("E")};
    EXPECT(reply_subscribe(&b_, 5, &p0),
           "{\"id\":5,\"subscribe\":{\"epoch\":\"E\",\"positioned\":true}}");

    /* Epoch/offset are not emitted for a channel that is neither positioned nor recoverable. */
    struct td_subscribe_result np = {.epoch = S("E"), .offset = 3};
    EXPECT(reply_subscribe(&b_, 5, &np), "{\"id\":5,\"subscribe\":{}}");

    struct td_publication pubs[] = {{.offset = 7, .data = S("{\"n\":7}")},
                                    {.offset = 8, .data = S("{\"n\":8}")}};
    struct td_subscribe_result rec = {.recoverable = true,
                                      .positioned = true,
                                      .recovered = true,
                                      .was_recovering = true,
                                      .epoch = S("EP"),
                                      .offset = 8,
                                      .pubs = pubs,
                                      .npubs = 2,
                                      .expires = true,
                                      .ttl = 60,
                                      .data = S("\"d\"")};
    EXPECT(reply_subscribe(&b_, 6, &rec),
           "{\"id\":6,\"subscribe\":{\"expires\":true,\"ttl\":60,\"recoverable\":true,"
           "\"epoch\":\"EP\",\"publications\":[{\"data\":{\"n\":7},\"offset\":7},"
           "{\"data\":{\"n\":8},\"offset\":8}],\"recovered\":true,\"offset\":8,"
           "\"positioned\":true,\"data\":\"d\",\"was_recovering\":true}}");
}

TD_TEST(proto_json_encode_presence_history_rpc_refresh)
{
    struct td_client_info infos[] = {
        {.user = S(""), .client = S("client-1")},
        {.user = S("42"),
         .client = S("b6d"),
         .conn_info = S("{\"name\":\r\n\"Ann\"}"),
         .chan_info = S("[1]")},
    };
    EXPECT(reply_presence(&b_, 4, infos, 1),
           "{\"id\":4,\"presence\":{\"presence\":{\"client-1\":{\"user\":\"\","
           "\"client\":\"client-1\"}}}}");
    EXPECT(reply_presence(&b_, 4, infos, 2),
           "{\"id\":4,\"presence\":{\"presence\":{\"client-1\":{\"user\":\"\","
           "\"client\":\"client-1\"},\"b6d\":{\"user\":\"42\",\"client\":\"b6d\","
           "\"conn_info\":{\"name\":\"Ann\"},\"chan_info\":[1]}}}}");
    EXPECT(reply_presence(&b_, 4, NULL, 0), "{\"id\":4,\"presence\":{\"presence\":{}}}");

    EXPECT(reply_presence_stats(&b_, 5, 1, 1),
           "{\"id\":5,\"presence_stats\":{\"num_clients\":1,\"num_users\":1}}");
    EXPECT(reply_presence_stats(&b_, 5, 0, 0),
           "{\"id\":5,\"presence_stats\":{\"num_clients\":0,\"num_users\":0}}");

    struct td_history_result h0 = {.epoch = S("EP")};
    EXPECT(reply_history(&b_, 6, &h0),
           "{\"id\":6,\"history\":{\"publications\":[],\"epoch\":\"EP\",\"offset\":0}}");
    struct td_publication pubs[] = {{.offset = 18446744073709551615u,
                                     .data = S("1"),
                                     .info = &infos[0],
                                     .time = 1700000000000}};
    struct td_history_result h1 = {.pubs = pubs, .npubs = 1, .epoch = S("E"), .offset = 9};
    EXPECT(reply_history(&b_, 6, &h1),
           "{\"id\":6,\"history\":{\"publications\":[{\"data\":1,\"info\":{\"user\":\"\","
           "\"client\":\"client-1\"},\"offset\":18446744073709551615,\"time\":1700000000000}],"
           "\"epoch\":\"E\",\"offset\":9}}");

    EXPECT(reply_rpc(&b_, 10, S("{\"r\":true}")), "{\"id\":10,\"rpc\":{\"data\":{\"r\":true}}}");
    EXPECT(reply_rpc(&b_, 10, TD_STR_NULL), "{\"id\":10,\"rpc\":{}}");

    struct td_refresh_result rr = {.version = S("1.0"), .expires = true, .ttl = 30};
    EXPECT(reply_refresh(&b_, 11, &rr),
           "{\"id\":11,\"refresh\":{\"version\":\"1.0\",\"expires\":true,\"ttl\":30}}");
    struct td_refresh_result r0 = {0};
    EXPECT(reply_refresh(&b_, 11, &r0), "{\"id\":11,\"refresh\":{}}");
}

TD_TEST(proto_json_encode_pushes)
{
    struct td_client_info info = {.user = S(""), .client = S("client-1")};
    struct td_publication pub = {.offset = 8, .data = S("{\"a\":1}"), .info = &info};
    EXPECT(push_pub(&b_, S("news"), &pub),
           "{\"push\":{\"channel\":\"news\",\"pub\":{\"data\":{\"a\":1},\"info\":{\"user\":\"\","
           "\"client\":\"client-1\"},\"offset\":8}}}");
    struct td_publication api = {.data = S("{\n  \"b\": [1,\r\n 2]\n}"), .time = -5};
    EXPECT(push_pub(&b_, S("a\"b\x01"), &api),
           "{\"push\":{\"channel\":\"a\\\"b\\u0001\",\"pub\":{\"data\":{  \"b\": [1, 2]},"
           "\"time\":-5}}}");

    struct td_client_info ann = {
        .user = S("42"), .client = S("b6d"), .conn_info = S("{\"name\":\"Ann\"}")};
    EXPECT(push_join(&b_, S("chat"), &ann),
           "{\"push\":{\"channel\":\"chat\",\"join\":{\"info\":{\"user\":\"42\",\"client\":\"b6d\","
           "\"conn_info\":{\"name\":\"Ann\"}}}}}");
    EXPECT(
        push_leave(&b_, S("chat"), &ann),
        "{\"push\":{\"channel\":\"chat\",\"leave\":{\"info\":{\"user\":\"42\",\"client\":\"b6d\","
        "\"conn_info\":{\"name\":\"Ann\"}}}}}");
    EXPECT(push_unsubscribe(&b_, S("news"), 2000, "server unsubscribe"),
           "{\"push\":{\"channel\":\"news\",\"unsubscribe\":{\"code\":2000,"
           "\"reason\":\"server unsubscribe\"}}}");
    EXPECT(push_message(&b_, S("{\"hi\":1}")), "{\"push\":{\"message\":{\"data\":{\"hi\":1}}}}");
    EXPECT(push_disconnect(&b_, 3001, "shutdown"),
           "{\"push\":{\"disconnect\":{\"code\":3001,\"reason\":\"shutdown\"}}}");
    EXPECT(push_disconnect(&b_, 3000, NULL), "{\"push\":{\"disconnect\":{\"code\":3000}}}");
}

TD_TEST(proto_json_encode_appends)
{
    /* Encoders append: two units can share one buffer, joined by the transport. */
    struct td_buf b;
    td_buf_init(&b);
    td_codec_json.reply_empty(&b, 1, TD_CMD_PUBLISH);
    td_buf_append_byte(&b, '\n');
    td_codec_json.ping(&b);
    TD_CHECK_MEM_STR(b.data, b.len, "{\"id\":1,\"publish\":{}}\n{}");
    TD_CHECK(strcmp(td_codec_json.name, "json") == 0);
    TD_CHECK(!td_codec_json.binary);

    /* And what they produce decodes as a frame (replies have no request keys). */
    struct td_cmd_iter it;
    struct td_cmd cmd;
    td_cmd_iter_init(&it, b.data, b.len);
    TD_CHECK_EQ_INT(td_codec_json.decode_next(&it, &cmd), 1);
    TD_CHECK_EQ_INT(cmd.id, 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_PUBLISH);
    TD_CHECK_EQ_INT(td_codec_json.decode_next(&it, &cmd), 1);
    TD_CHECK_EQ_INT(cmd.kind, TD_CMD_EMPTY);
    TD_CHECK_EQ_INT(td_codec_json.decode_next(&it, &cmd), 0);
    td_buf_free(&b);
}

TD_TEST(proto_json_connect_subs_round_trip)
{
    char frame[] = "{\"id\":1,\"connect\":{\"subs\":{\"a\":{\"recover\":true,\"offset\":5,"
                   "\"epoch\":\"E\"},\"b\":{}}}}";
    struct td_cmd_iter it;
    td_cmd_iter_init(&it, (uint8_t *)frame, strlen(frame));
    struct td_cmd cmd;
    TD_REQUIRE(td_codec_json.decode_next(&it, &cmd) == 1);
    TD_REQUIRE(cmd.kind == TD_CMD_CONNECT);
    TD_REQUIRE(cmd.nsubs == 2);
    TD_CHECK_MEM_STR(cmd.subs[0].channel.p, cmd.subs[0].channel.n, "a");
    TD_CHECK(cmd.subs[0].recover && cmd.subs[0].offset == 5);
    TD_CHECK_MEM_STR(cmd.subs[0].epoch.p, cmd.subs[0].epoch.n, "E");
    TD_CHECK(!cmd.subs[1].recover && cmd.subs[1].offset == 0);

    struct td_connect_sub_result sub = {{"news", 4}, {0}};
    sub.r.recoverable = true;
    sub.r.positioned = true;
    sub.r.epoch = (struct td_str){"EP", 2};
    sub.r.offset = 7;
    struct td_connect_result r = {0};
    r.client = (struct td_str){"c1", 2};
    r.subs = &sub;
    r.nsubs = 1;
    struct td_buf b;
    td_buf_init(&b);
    td_codec_json.reply_connect(&b, 1, &r);
    TD_CHECK_MEM_STR(b.data, b.len,
                     "{\"id\":1,\"connect\":{\"client\":\"c1\",\"subs\":{\"news\":{\"recoverable\":"
                     "true,\"epoch\":\"EP\",\"offset\":7,\"positioned\":true}}}}");
    td_buf_free(&b);
}
