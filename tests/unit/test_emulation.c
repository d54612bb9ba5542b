/* Tests for the emulation transports' I/O-free parts (td_emulation): session table, the
 * /emulation body parsers, chunk headers and SSE framing. */
#include <stdlib.h>
#include <string.h>

#include "core/td_err.h"
#include "http/td_emulation.h"
#include "td_test.h"

static struct td_str S(const char *s) {
    return (struct td_str){s, strlen(s)};
}

/* Parses a JSON body from a literal (copied: the parser writes into it). */
static int
parse_json(const char *lit, struct td_emu_request *r, char *buf, size_t cap)
{
    size_t n = strlen(lit);
    if (n >= cap)
        return TD_ELIMIT;
    memcpy(buf, lit, n + 1);
    return td_emu_parse_json(buf, n, r);
}

TD_TEST(emulation_session_add_get_del)
{
    struct td_emu e;
    td_emu_init(&e);
    int a = 1, b = 2;
    const struct td_emu_session *sa = td_emu_session_add(&e, &a);
    const struct td_emu_session *sb = td_emu_session_add(&e, &b);
    TD_CHECK_EQ_INT((long long)strlen(sa->id), TD_EMU_SESSION_LEN);
    for (size_t i = 0; i < TD_EMU_SESSION_LEN; i++)
        TD_CHECK((sa->id[i] >= '0' && sa->id[i] <= '9') || (sa->id[i] >= 'a' && sa->id[i] <= 'f'));
    TD_CHECK(strcmp(sa->id, sb->id) != 0);
    TD_CHECK(td_emu_session_get(&e, S(sa->id)) == &a);
    TD_CHECK(td_emu_session_get(&e, S(sb->id)) == &b);
    char id[TD_EMU_SESSION_LEN + 1];
    memcpy(id, sa->id, sizeof(id));
    /* A prefix, an extension and a one-character change are all unknown. */
    TD_CHECK(td_emu_session_get(&e, (struct td_str){id, TD_EMU_SESSION_LEN - 1}) == NULL);
    TD_CHECK(td_emu_session_get(&e, S("")) == NULL);
    char longer[TD_EMU_SESSION_LEN + 2];
    memcpy(longer, id, TD_EMU_SESSION_LEN);
    longer[TD_EMU_SESSION_LEN] = '0';
    longer[TD_EMU_SESSION_LEN + 1] = '\0';
    TD_CHECK(td_emu_session_get(&e, S(longer)) == NULL);
    char other[TD_EMU_SESSION_LEN + 1];
    memcpy(other, id, sizeof(other));
    other[0] = other[0] == 'a' ? 'b' : 'a';
    TD_CHECK(td_emu_session_get(&e, S(other)) == NULL);

    TD_CHECK(td_emu_session_del(&e, S(id)) == &a);
    TD_CHECK(td_emu_session_get(&e, S(id)) == NULL);
    TD_CHECK(td_emu_session_del(&e, S(id)) == NULL);
    TD_CHECK(td_emu_session_get(&e, S(sb->id)) == &b);
    td_emu_free(&e); /* frees b's entry too (ASan: no leak) */
}

TD_TEST(emulation_session_many_unique)
{
    struct td_emu e;
    td_emu_init(&e);
    int conns[200];
    char ids[200][TD_EMU_SESSION_LEN + 1];
    for (int i = 0; i < 200; i++)
        memcpy(ids[i], td_emu_session_add(&e, &conns[i])->id, TD_EMU_SESSION_LEN + 1);
    TD_CHECK_EQ_INT((long long)e.sessions.count, 200);
    for (int i = 0; i < 200; i++)
        TD_CHECK(td_emu_session_get(&e, S(ids[i])) == &conns[i]);
    for (int i = 0; i < 200; i += 2)
        TD_CHECK(td_emu_session_del(&e, S(ids[i])) == &conns[i]);
    for (int i = 0; i < 200; i++)
        TD_CHECK(td_emu_session_get(&e, S(ids[i])) == (i % 2 ? &conns[i] : NULL));
    td_emu_free(&e);
}

TD_TEST(emulation_parse_json_client_body)
{
    char buf[256];
    struct td_emu_request r;
    /* As centrifuge-js sends it: data is a JSON string holding the command frame. */
    TD_REQUIRE(parse_json("{\"session\":\"s1\",\"node\":\"n1\",\"data\":\"{\\\"subscribe\\\":"
                          "{\\\"channel\\\":\\\"news\\\"},\\\"id\\\":2}\"}",
                          &r, buf, sizeof(buf)) == 0);
    TD_CHECK_MEM_STR(r.session.p, r.session.n, "s1");
    TD_CHECK_MEM_STR(r.node.p, r.node.n, "n1");
    TD_CHECK_MEM_STR(r.data, r.len, "{\"subscribe\":{\"channel\":\"news\"},\"id\":2}");
    /* The data view lies inside the body buffer, so it can be decoded in place. */
    TD_CHECK((char *)r.data >= buf && (char *)r.data + r.len <= buf + sizeof(buf));

    /* A pong; node omitted; unknown members skipped; key order free; whitespace. */
    TD_REQUIRE(parse_json(" { \"data\" : \"{}\", \"x\":[1,{\"y\":null}], \"session\":\"abc\" } ",
                          &r, buf, sizeof(buf)) == 0);
    TD_CHECK_MEM_STR(r.data, r.len, "{}");
    TD_CHECK_MEM_STR(r.session.p, r.session.n, "abc");
    TD_CHECK_EQ_INT((long long)r.node.n, 0);

    /* Batched commands joined by a newline (escaped in the JSON string). */
    TD_REQUIRE(parse_json("{\"session\":\"s\",\"data\":\"{\\\"id\\\":3}\\n{\\\"id\\\":4}\"}", &r,
                          buf, sizeof(buf)) == 0);
    TD_CHECK_MEM_STR(r.data, r.len, "{\"id\":3}\n{\"id\":4}");

    /* Duplicate keys: the last wins. */
    TD_REQUIRE(parse_json("{\"session\":\"a\",\"data\":\"1\",\"session\":\"b\"}", &r, buf,
                          sizeof(buf)) == 0);
    TD_CHECK_MEM_STR(r.session.p, r.session.n, "b");
}

TD_TEST(emulation_parse_json_rejects)
{
    char buf[512];
    struct td_emu_request r = {S("keep"), TD_STR_NULL, NULL, 7};
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"session\":\"s\"}",                /* no data */
        "{\"data\":\"{}\"}",                  /* no session */
        "{\"session\":\"\",\"data\":\"{}\"}", /* empty session */
        "{\"session\":\"s\",\"data\":\"\"}",  /* empty data */
        "{\"session\":1,\"data\":\"{}\"}",    /* wrong types */
        "{\"session\":\"s\",\"data\":{}}",    /* data must be a string, not an object */
        "{\"session\":\"s\",\"node\":5,\"data\":\"{}\"}",
        "{\"session\":\"s\",\"data\":\"{}\"",       /* truncated */
        "{\"session\":\"s\",\"data\":\"{}\"} x",    /* trailing garbage */
        "{\"session\":\"s\",\"data\":\"\\ud800\"}", /* lone surrogate */
        "{\"session\":\"s\",,\"data\":\"{}\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rv = parse_json(bad[i], &r, buf, sizeof(buf));
        TD_CHECK_EQ_INT(rv, TD_EPROTO);
    }
    /* Out-parameter untouched on failure. */
    TD_CHECK_MEM_STR(r.session.p, r.session.n, "keep");
    TD_CHECK_EQ_INT((long long)r.len, 7);

    /* Session and node are capped. */
    char big[400];
    int n =
        snprintf(big, sizeof(big), "{\"session\":\"%0*d\",\"data\":\"{}\"}", TD_EMU_ID_MAX + 1, 0);
    TD_REQUIRE(n > 0);
    TD_CHECK_EQ_INT(parse_json(big, &r, buf, sizeof(buf)), TD_EPROTO);
    n = snprintf(big, sizeof(big), "{\"session\":\"%0*d\",\"data\":\"{}\"}", TD_EMU_ID_MAX, 0);
    TD_CHECK_EQ_INT(parse_json(big, &r, buf, sizeof(buf)), 0);
    n = snprintf(big, sizeof(big), "{\"session\":\"s\",\"node\":\"%0*d\",\"data\":\"{}\"}",
                 TD_EMU_ID_MAX + 1, 0);
    TD_CHECK_EQ_INT(parse_json(big, &r, buf, sizeof(buf)), TD_EPROTO);
}

/* Appends a length-delimited protobuf field. */
static void pb_field(struct td_buf *b, uint8_t field, const void *p, size_t n)
{
    td_buf_append_byte(b, (uint8_t)(field << 3 | 2));
    td_buf_append_byte(b, (uint8_t)n); /* n < 128 here */
    td_buf_append(b, p, n);
}

TD_TEST(emulation_parse_pb)
{
    struct td_buf b;
    td_buf_init(&b);
    static const uint8_t pong[] = {0x00};
    /* EmulationRequest{node:"n1", session:"s1", data: <one empty delimited Command>} */
    pb_field(&b, 1, "n1", 2);
    pb_field(&b, 2, "s1", 2);
    pb_field(&b, 3, pong, 1);
    struct td_emu_request r;
    TD_REQUIRE(td_emu_parse_pb(b.data, b.len, &r) == 0);
    TD_CHECK_MEM_STR(r.node.p, r.node.n, "n1");
    TD_CHECK_MEM_STR(r.session.p, r.session.n, "s1");
    TD_CHECK_EQ_INT((long long)r.len, 1);
    TD_CHECK(r.data == b.data + b.len - 1 && r.data[0] == 0);

    /* Unknown fields of every wire type are skipped; the order is free. */
    td_buf_reset(&b);
    static const uint8_t unknown[] = {0x20, 0x05,                      /* 4: varint */
                                      0x29, 1,    2, 3, 4, 5, 6, 7, 8, /* 5: i64 */
                                      0x35, 1,    2, 3, 4};            /* 6: i32 */
    td_buf_append(&b, unknown, sizeof(unknown));
    pb_field(&b, 3, "\x0b\x08\x01", 3);
    pb_field(&b, 9, "zz", 2);
    pb_field(&b, 2, "sess", 4);
    TD_REQUIRE(td_emu_parse_pb(b.data, b.len, &r) == 0);
    TD_CHECK_MEM_STR(r.session.p, r.session.n, "sess");
    TD_CHECK_EQ_INT((long long)r.node.n, 0);
    TD_CHECK_EQ_INT((long long)r.len, 3);

    /* Rejections: no data, no session, a known field with the wrong wire type, truncation,
     * a group. */
    td_buf_reset(&b);
    pb_field(&b, 2, "s", 1);
    TD_CHECK_EQ_INT(td_emu_parse_pb(b.data, b.len, &r), TD_EPROTO);
    td_buf_reset(&b);
    pb_field(&b, 3, "x", 1);
    TD_CHECK_EQ_INT(td_emu_parse_pb(b.data, b.len, &r), TD_EPROTO);
    td_buf_reset(&b);
    static const uint8_t wrong_wire[] = {0x10, 0x01, 0x1a, 0x01, 0x00}; /* 2 as varint */
    td_buf_append(&b, wrong_wire, sizeof(wrong_wire));
    TD_CHECK_EQ_INT(td_emu_parse_pb(b.data, b.len, &r), TD_EPROTO);
    td_buf_reset(&b);
    pb_field(&b, 2, "s", 1);
    pb_field(&b, 3, "abc", 3);
    TD_CHECK_EQ_INT(td_emu_parse_pb(b.data, b.len - 1, &r), TD_EPROTO);
    static const uint8_t group[] = {0x12, 0x01, 's', 0x1a, 0x01, 0x00, 0x23, 0x24};
    TD_CHECK_EQ_INT(td_emu_parse_pb((uint8_t *)(uintptr_t)group, sizeof(group), &r), TD_EPROTO);
    TD_CHECK_EQ_INT(td_emu_parse_pb(NULL, 0, &r), TD_EPROTO);
    td_buf_free(&b);
}

TD_TEST(emulation_chunk_header)
{
    uint8_t h[TD_EMU_CHUNK_HDR_MAX];
    size_t n = td_emu_chunk_header(h, 0);
    TD_CHECK_MEM_STR(h, n, "0\r\n");
    n = td_emu_chunk_header(h, 10);
    TD_CHECK_MEM_STR(h, n, "a\r\n");
    n = td_emu_chunk_header(h, 0x1f3);
    TD_CHECK_MEM_STR(h, n, "1f3\r\n");
    n = td_emu_chunk_header(h, 0xffffffffu);
    TD_CHECK_MEM_STR(h, n, "ffffffff\r\n");
    TD_CHECK_EQ_INT((long long)n, TD_EMU_CHUNK_HDR_MAX);
}

TD_TEST(emulation_sse_framing)
{
    struct td_buf b;
    td_buf_init(&b);
    const char *one = "{\"push\":{\"channel\":\"a\"}}";
    TD_CHECK(td_emu_sse_single_line((const uint8_t *)one, strlen(one)));
    td_emu_sse_append(&b, (const uint8_t *)one, strlen(one));
    TD_CHECK_MEM_STR(b.data, b.len, "data: {\"push\":{\"channel\":\"a\"}}\n\n");

    /* A batch of replies: one data line each, joined back with '\n' by EventSource. */
    td_buf_reset(&b);
    const char *two = "{\"id\":1}\n{\"id\":2}";
    TD_CHECK(!td_emu_sse_single_line((const uint8_t *)two, strlen(two)));
    td_emu_sse_append(&b, (const uint8_t *)two, strlen(two));
    TD_CHECK_MEM_STR(b.data, b.len, "data: {\"id\":1}\ndata: {\"id\":2}\n\n");

    /* A final newline adds no empty line; a CR is dropped (it would end a line early). */
    td_buf_reset(&b);
    td_emu_sse_append(&b, (const uint8_t *)"x\r\ny\n", 5);
    TD_CHECK_MEM_STR(b.data, b.len, "data: x\ndata: y\n\n");
    TD_CHECK(!td_emu_sse_single_line((const uint8_t *)"a\rb", 3));

    td_buf_reset(&b);
    td_emu_sse_append(&b, NULL, 0);
    TD_CHECK_MEM_STR(b.data, b.len, "data: \n\n");
    TD_CHECK(td_emu_sse_single_line(NULL, 0));
    td_buf_free(&b);
}

TD_TEST(emulation_shared_trailers)
{
    struct td_emu e;
    td_emu_init(&e);
    TD_CHECK_MEM_STR(e.crlf->data, e.crlf->len, "\r\n");
    TD_CHECK_MEM_STR(e.nl_crlf->data, e.nl_crlf->len, "\n\r\n");
    TD_CHECK_MEM_STR(e.sse_end->data, e.sse_end->len, "\n\n");
    TD_CHECK_MEM_STR(e.last_chunk->data, e.last_chunk->len, "0\r\n\r\n");
    td_emu_free(&e);
}
