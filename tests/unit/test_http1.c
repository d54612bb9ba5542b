#include "core/td_err.h"
#include "http/td_http1.h"
#include "td_test.h"

static int parse_lim(const char *s, size_t max_head, size_t max_headers,
                     struct td_http_request *req)
{
    struct td_http_limits lim = {max_head, max_headers};
    return td_http1_parse_request((const uint8_t *)s, strlen(s), &lim, req);
}

static int parse(const char *s, struct td_http_request *req)
{
    return td_http1_parse_request((const uint8_t *)s, strlen(s), NULL, req);
}

/* Parse result only, for the many rejection cases. */
static int parse_rc(const char *s)
{
    struct td_http_request req;
    return parse(s, &req);
}

TD_TEST(http1_simple_get)
{
    const char *s = "GET /connection/websocket?x=1&y=2 HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "User-Agent:   test/1.0  \r\n"
                    "Accept:\t*/*\t\r\n"
                    "\r\n";
    struct td_http_request req;
    int rc = parse(s, &req);
    TD_REQUIRE(rc > 0);
    TD_CHECK_EQ_INT(rc, strlen(s));
    TD_CHECK_EQ_INT(req.head_len, strlen(s));
    TD_CHECK_MEM_STR(req.method.p, req.method.n, "GET");
    TD_CHECK_MEM_STR(req.target.p, req.target.n, "/connection/websocket?x=1&y=2");
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/connection/websocket");
    TD_CHECK_MEM_STR(req.query.p, req.query.n, "x=1&y=2");
    TD_CHECK_EQ_INT(req.minor_version, 1);
    TD_REQUIRE(req.nheaders == 3);
    TD_CHECK_MEM_STR(req.headers[0].name.p, req.headers[0].name.n, "Host");
    TD_CHECK_MEM_STR(req.headers[0].value.p, req.headers[0].value.n, "example.com");
    TD_CHECK_MEM_STR(req.headers[1].value.p, req.headers[1].value.n, "test/1.0");
    TD_CHECK_MEM_STR(req.headers[2].value.p, req.headers[2].value.n, "*/*");
    TD_CHECK(!req.has_content_length);
    TD_CHECK_EQ_INT(req.content_length, 0);
    TD_CHECK(req.keep_alive);
    TD_CHECK(!req.upgrade_websocket);
    /* Views point into the input. */
    TD_CHECK(req.method.p == s);
    TD_CHECK(req.headers[0].name.p == s + strlen("GET /connection/websocket?x=1&y=2 HTTP/1.1\r\n"));
}

TD_TEST(http1_no_query_and_empty_query)
{
    struct td_http_request req;
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/");
    TD_CHECK_EQ_INT(req.query.n, 0);
    TD_REQUIRE(parse("GET /a?? HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/a");
    TD_CHECK_MEM_STR(req.query.p, req.query.n, "?");
    TD_REQUIRE(parse("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/a");
    TD_CHECK_EQ_INT(req.query.n, 0);
}

TD_TEST(http1_null_limits_are_defaults)
{
    struct td_http_limits lim;
    td_http_limits_default(&lim);
    TD_CHECK_EQ_INT(lim.max_head, 8192);
    TD_CHECK_EQ_INT(lim.max_headers, TD_HTTP_MAX_HEADERS);
    struct td_http_request req;
    const char *s = "GET / HTTP/1.0\r\n\r\n";
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)s, strlen(s), &lim, &req), strlen(s));
    TD_CHECK_EQ_INT(parse(s, &req), strlen(s));
}

TD_TEST(http1_keep_alive_rules)
{
    struct td_http_request req;
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    TD_CHECK(req.keep_alive);
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &req) > 0);
    TD_CHECK(!req.keep_alive);
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", &req) >
               0);
    TD_CHECK(!req.keep_alive);
    /* "close" in a second Connection field still counts. */
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nconnection: close\r\n\r\n",
                     &req) > 0);
    TD_CHECK(!req.keep_alive);
    /* "closed" is not "close". */
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", &req) > 0);
    TD_CHECK(req.keep_alive);

    TD_REQUIRE(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    TD_CHECK_EQ_INT(req.minor_version, 0);
    TD_CHECK(!req.keep_alive);
    TD_REQUIRE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &req) > 0);
    TD_CHECK(req.keep_alive);
    TD_REQUIRE(parse("GET / HTTP/1.0\r\nConnection:  Keep-Alive \r\n\r\n", &req) > 0);
    TD_CHECK(req.keep_alive);
    TD_REQUIRE(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &req) > 0);
    TD_CHECK(!req.keep_alive);
}

TD_TEST(http1_websocket_upgrade)
{
    struct td_http_request req;
    TD_REQUIRE(parse("GET /connection/websocket HTTP/1.1\r\n"
                     "Host: localhost:8000\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     &req) > 0);
    TD_CHECK(req.upgrade_websocket);
    TD_CHECK(req.keep_alive);
    const struct td_str *key = td_http_header_get(&req, "sec-websocket-key");
    TD_REQUIRE(key != NULL);
    TD_CHECK_MEM_STR(key->p, key->n, "dGhlIHNhbXBsZSBub25jZQ==");

    /* Firefox sends "keep-alive, Upgrade". */
    TD_REQUIRE(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                     "Upgrade: WebSocket\r\n\r\n",
                     &req) > 0);
    TD_CHECK(req.upgrade_websocket);

    TD_REQUIRE(parse("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &req) > 0);
    TD_CHECK(!req.upgrade_websocket);
    TD_REQUIRE(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", &req) > 0);
    TD_CHECK(!req.upgrade_websocket);
    TD_REQUIRE(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
                     &req) > 0);
    TD_CHECK(!req.upgrade_websocket);
    TD_REQUIRE(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgraded\r\n"
                     "Upgrade: websocket\r\n\r\n",
                     &req) > 0);
    TD_CHECK(!req.upgrade_websocket);
}

TD_TEST(http1_incremental_byte_by_byte)
{
    const char *s = "POST /api?a=b HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "Content-Length: 5\r\n"
                    "Connection: keep-alive, Upgrade\r\n"
                    "Upgrade: websocket\r\n"
                    "\r\n"
                    "hello";
    size_t head = strlen(s) - 5;
    struct td_http_request whole;
    TD_REQUIRE(parse(s, &whole) == (int)head);

    struct td_http_request req;
    memset(&req, 0xAB, sizeof(req));
    for (size_t n = 0; n < head; n++) {
        int rc = td_http1_parse_request((const uint8_t *)s, n, NULL, &req);
        if (rc != TD_EAGAIN) {
            TD_CHECK_EQ_INT(rc, TD_EAGAIN);
            return;
        }
        TD_CHECK_EQ_INT(req.nheaders, 0xABABABABABABABABull); /* untouched */
    }
    for (size_t n = head; n <= strlen(s); n++) {
        TD_REQUIRE(td_http1_parse_request((const uint8_t *)s, n, NULL, &req) == (int)head);
        TD_CHECK_EQ_INT(req.head_len, head);
        TD_CHECK_EQ_INT(req.nheaders, whole.nheaders);
        TD_CHECK_EQ_INT(req.content_length, 5);
        TD_CHECK(req.has_content_length);
        TD_CHECK(req.keep_alive);
        TD_CHECK(req.upgrade_websocket);
        TD_CHECK_MEM_STR(req.query.p, req.query.n, "a=b");
    }
}

TD_TEST(http1_incremental_error_is_stable)
{
    /* Every prefix is EAGAIN or the same error as the whole input. */
    const char *cases[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\nX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rz\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const char *s = cases[c];
        struct td_http_request req;
        TD_CHECK_EQ_INT(parse(s, &req), TD_EPROTO);
        for (size_t n = 0; n < strlen(s); n++) {
            int rc = td_http1_parse_request((const uint8_t *)s, n, NULL, &req);
            TD_CHECK(rc == TD_EAGAIN || rc == TD_EPROTO);
        }
    }
}

TD_TEST(http1_early_reject_binary)
{
    /* A TLS ClientHello on the plain port fails on the first bytes. */
    const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    struct td_http_request req;
    TD_CHECK_EQ_INT(td_http1_parse_request(tls, sizeof(tls), NULL, &req), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)"GET /\0", 6, NULL, &req), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)"GET /\rx", 7, NULL, &req), TD_EPROTO);
    /* A CR at the very end may be followed by LF: wait. */
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)"GET / HTTP/1.1\r", 15, NULL, &req),
                    TD_EAGAIN);
    TD_CHECK_EQ_INT(td_http1_parse_request(NULL, 0, NULL, &req), TD_EAGAIN);
}

TD_TEST(http1_pipelined)
{
    const char *s = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                    "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    "GET /d HT";
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    struct td_http_request req;

    int rc = td_http1_parse_request(p, n, NULL, &req);
    TD_REQUIRE(rc > 0);
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/a");
    TD_REQUIRE(req.content_length == 3);
    size_t used = (size_t)rc + (size_t)req.content_length;
    TD_CHECK_MEM_STR(s + rc, 3, "abc");
    p += used;
    n -= used;

    rc = td_http1_parse_request(p, n, NULL, &req);
    TD_REQUIRE(rc > 0);
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/b");
    TD_CHECK(req.keep_alive);
    p += rc;
    n -= (size_t)rc;

    rc = td_http1_parse_request(p, n, NULL, &req);
    TD_REQUIRE(rc > 0);
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "/c");
    TD_CHECK(!req.keep_alive);
    p += rc;
    n -= (size_t)rc;

    TD_CHECK_EQ_INT(td_http1_parse_request(p, n, NULL, &req), TD_EAGAIN);
}

TD_TEST(http1_reject_request_line)
{
    TD_CHECK_EQ_INT(parse_rc("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / \r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    /* Target: origin-form or "*" for OPTIONS only. */
    TD_CHECK_EQ_INT(parse_rc("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /a\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    /* Version. */
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / http/1.1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/0.9\r\n\r\n"), TD_EPROTO);

    struct td_http_request req;
    TD_REQUIRE(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    TD_CHECK_MEM_STR(req.target.p, req.target.n, "*");
    TD_CHECK_MEM_STR(req.path.p, req.path.n, "*");
    TD_CHECK_EQ_INT(req.query.n, 0);
    /* Unknown but well-formed methods are the caller's business. */
    TD_REQUIRE(parse("M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    TD_CHECK_MEM_STR(req.method.p, req.method.n, "M-SEARCH");
}

TD_TEST(http1_reject_line_endings)
{
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\n\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("\n"), TD_EPROTO);
}

TD_TEST(http1_reject_header_syntax)
{
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX y: b\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
                             "b\r\n\r\n"),
                    TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(
        td_http1_parse_request((const uint8_t *)"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35,
                               NULL, &(struct td_http_request){0}),
        TD_EPROTO);

    /* Accepted: HTAB inside a value, obs-text, empty value, colon in value. */
    struct td_http_request req;
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\nY: caf\xc3\xa9\r\nZ:\r\n"
                     "W: \t \r\nV: a:b\r\n\r\n",
                     &req) > 0);
    TD_REQUIRE(req.nheaders == 6);
    TD_CHECK_MEM_STR(req.headers[1].value.p, req.headers[1].value.n, "a\tb");
    TD_CHECK_MEM_STR(req.headers[2].value.p, req.headers[2].value.n, "caf\xc3\xa9");
    TD_CHECK_EQ_INT(req.headers[3].value.n, 0);
    TD_CHECK_EQ_INT(req.headers[4].value.n, 0);
    TD_CHECK_MEM_STR(req.headers[5].value.p, req.headers[5].value.n, "a:b");
}

TD_TEST(http1_content_length)
{
    struct td_http_request req;
    TD_REQUIRE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", &req) > 0);
    TD_CHECK(req.has_content_length);
    TD_CHECK_EQ_INT(req.content_length, 42);
    TD_REQUIRE(parse("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n", &req) > 0);
    TD_CHECK(req.has_content_length);
    TD_CHECK_EQ_INT(req.content_length, 0);
    TD_REQUIRE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
                     &req) > 0);
    TD_CHECK(req.content_length == UINT64_MAX);
    TD_REQUIRE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n"
                     "CONTENT-LENGTH: 7\r\n\r\n",
                     &req) > 0);
    TD_CHECK_EQ_INT(req.content_length, 7);

    const char *bad[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&req, 0, sizeof(req));
        TD_CHECK_EQ_INT(parse(bad[i], &req), TD_EPROTO);
        TD_CHECK(!req.has_content_length && req.head_len == 0); /* untouched */
    }
}

TD_TEST(http1_transfer_encoding_unsupported)
{
    TD_CHECK_EQ_INT(parse_rc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
                    TD_EINVAL);
    TD_CHECK_EQ_INT(parse_rc("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n"),
                    TD_EINVAL);
    TD_CHECK_EQ_INT(parse_rc("POST / HTTP/1.0\r\nTransfer-Encoding:\r\n\r\n"), TD_EINVAL);
    TD_CHECK_EQ_INT(parse_rc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
                    TD_EINVAL);
    /* Malformed input wins over the unsupported feature. */
    TD_CHECK_EQ_INT(parse_rc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                             "Bad Header: x\r\n\r\n"),
                    TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), TD_EPROTO);
    /* A similar-looking name is just a header. */
    TD_CHECK(parse_rc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encodings: chunked\r\n\r\n") > 0);
}

TD_TEST(http1_host_rules)
{
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_rc("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), TD_EPROTO);
    TD_CHECK(parse_rc("GET / HTTP/1.1\r\nHOST: a\r\n\r\n") > 0);
    TD_CHECK(parse_rc("GET / HTTP/1.1\r\nHost:\r\n\r\n") > 0);
    TD_CHECK(parse_rc("GET / HTTP/1.0\r\n\r\n") > 0);
}

TD_TEST(http1_header_count_limit)
{
    char buf[8192];
    struct td_http_request req;
    for (size_t count = 1; count <= TD_HTTP_MAX_HEADERS + 1; count++) {
        size_t len = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
        for (size_t i = 0; i < count; i++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                    i == 0 ? "Host: h\r\n" : "X-%zu: v\r\n", i);
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
        int rc = parse(buf, &req);
        if (count <= TD_HTTP_MAX_HEADERS) {
            TD_CHECK_EQ_INT(rc, len);
            TD_CHECK_EQ_INT(req.nheaders, count);
        } else {
            TD_CHECK_EQ_INT(rc, TD_ELIMIT);
            /* max_headers above the array capacity is clamped. */
            TD_CHECK_EQ_INT(parse_lim(buf, 8192, 1000, &req), TD_ELIMIT);
        }
    }
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    TD_CHECK_EQ_INT(parse_lim(s, 8192, 3, &req), strlen(s));
    TD_CHECK_EQ_INT(parse_lim(s, 8192, 2, &req), TD_ELIMIT);
    /* The cap applies while incomplete too. */
    TD_CHECK_EQ_INT(parse_lim("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n", 8192, 2, &req),
                    TD_ELIMIT);
    TD_CHECK_EQ_INT(parse_lim("GET / HTTP/1.0\r\n\r\n", 8192, 0, &req), 18);
    TD_CHECK_EQ_INT(parse_lim("GET / HTTP/1.0\r\nA: 1\r\n\r\n", 8192, 0, &req), TD_ELIMIT);
}

TD_TEST(http1_head_size_limit)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; /* 27 bytes */
    size_t len = strlen(s);
    struct td_http_request req;
    TD_CHECK_EQ_INT(parse_lim(s, len, 64, &req), len);
    TD_CHECK_EQ_INT(parse_lim(s, len - 1, 64, &req), TD_ELIMIT);
    /* Incomplete: EAGAIN below the cap, ELIMIT once n reaches it. */
    TD_CHECK_EQ_INT(
        td_http1_parse_request((const uint8_t *)s, 10, &(struct td_http_limits){11, 64}, &req),
        TD_EAGAIN);
    TD_CHECK_EQ_INT(
        td_http1_parse_request((const uint8_t *)s, 11, &(struct td_http_limits){11, 64}, &req),
        TD_ELIMIT);
    /* Bytes after the head do not count against the cap. */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s%0100d", s, 0);
    TD_CHECK_EQ_INT(parse_lim(buf, len, 64, &req), len);

    /* A header line of 9000 bytes against the default cap. */
    char big[10000];
    size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + n, 'x', 9000);
    n += 9000;
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)big, 8191, NULL, &req), TD_EAGAIN);
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)big, 8192, NULL, &req), TD_ELIMIT);
    memcpy(big + n, "\r\n\r\n", 4);
    TD_CHECK_EQ_INT(td_http1_parse_request((const uint8_t *)big, n + 4, NULL, &req), TD_ELIMIT);
    /* A malformed line inside the window is still a protocol error. */
    TD_CHECK_EQ_INT(parse_lim("GET / HTTP/1.1\nHost: a\r\n\r\n", 20, 64, &req), TD_EPROTO);
    TD_CHECK_EQ_INT(parse_lim("GET / HTTP/1.1\r\n", 0, 64, &req), TD_ELIMIT);
}

TD_TEST(http1_header_get_case_insensitive)
{
    struct td_http_request req;
    TD_REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nX-Token: one\r\nx-token: two\r\n"
                     "Sec-WebSocket-Protocol: centrifuge-protobuf\r\n\r\n",
                     &req) > 0);
    const struct td_str *v = td_http_header_get(&req, "x-TOKEN");
    TD_REQUIRE(v != NULL);
    TD_CHECK_MEM_STR(v->p, v->n, "one");
    v = td_http_header_get(&req, "SEC-WEBSOCKET-PROTOCOL");
    TD_REQUIRE(v != NULL);
    TD_CHECK_MEM_STR(v->p, v->n, "centrifuge-protobuf");
    TD_CHECK(td_http_header_get(&req, "X-Tok") == NULL);
    TD_CHECK(td_http_header_get(&req, "X-Token2") == NULL);
    TD_CHECK(td_http_header_get(&req, "") == NULL);
    TD_CHECK(td_http_header_get(&req, "Cookie") == NULL);
}

static struct td_str str_of(const char *s)
{
    return (struct td_str){s, strlen(s)};
}

TD_TEST(http1_has_token)
{
    TD_CHECK(td_http_has_token(str_of("Upgrade"), "upgrade"));
    TD_CHECK(td_http_has_token(str_of("keep-alive, Upgrade"), "upgrade"));
    TD_CHECK(td_http_has_token(str_of(" a ,\tUPGRADE\t, b"), "upgrade"));
    TD_CHECK(td_http_has_token(str_of(",,upgrade,"), "upgrade"));
    TD_CHECK(!td_http_has_token(str_of("upgrades"), "upgrade"));
    TD_CHECK(!td_http_has_token(str_of("up grade"), "upgrade"));
    TD_CHECK(!td_http_has_token(str_of("upgrad"), "upgrade"));
    TD_CHECK(!td_http_has_token(str_of(""), "upgrade"));
    TD_CHECK(!td_http_has_token(str_of("a,,b"), ""));
    TD_CHECK(!td_http_has_token(TD_STR_NULL, "x"));
}

TD_TEST(http1_query_get)
{
    char out[64];
    struct td_str q = str_of("a=1&b=x%20y&c=1+2%2B3&d&e=&f=%41%6a%6A&a=second&k%65y=v&&g=h");
    TD_CHECK_EQ_INT(td_http_query_get(q, "a", out, sizeof(out)), 1);
    TD_CHECK(strcmp(out, "1") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "b", out, sizeof(out)), 3);
    TD_CHECK(strcmp(out, "x y") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "c", out, sizeof(out)), 5);
    TD_CHECK(strcmp(out, "1 2+3") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "d", out, sizeof(out)), 0);
    TD_CHECK(out[0] == '\0');
    TD_CHECK_EQ_INT(td_http_query_get(q, "e", out, sizeof(out)), 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "f", out, sizeof(out)), 3);
    TD_CHECK(strcmp(out, "Ajj") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "key", out, sizeof(out)), 1);
    TD_CHECK(strcmp(out, "v") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "g", out, sizeof(out)), 1);
    TD_CHECK(strcmp(out, "h") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(q, "z", out, sizeof(out)), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_http_query_get(q, "A", out, sizeof(out)), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_http_query_get(q, "", out, sizeof(out)), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_http_query_get(TD_STR_NULL, "a", out, sizeof(out)), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("=x"), "", out, sizeof(out)), 1);
}

TD_TEST(http1_query_get_errors)
{
    char out[8];
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=%2"), "a", out, sizeof(out)), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=%"), "a", out, sizeof(out)), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=%G1"), "a", out, sizeof(out)), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=x%1g"), "a", out, sizeof(out)), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=x%00y"), "a", out, sizeof(out)), TD_EPROTO);
    TD_CHECK_EQ_INT(td_http_query_get((struct td_str){"a=x\0y", 5}, "a", out, sizeof(out)),
                    TD_EPROTO);
    /* A bad escape elsewhere does not matter. */
    TD_CHECK_EQ_INT(td_http_query_get(str_of("b=%zz&a=ok&%zz=1"), "a", out, sizeof(out)), 2);

    /* Truncation: 7 bytes + NUL fit in 8, 8 do not; out untouched on failure. */
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=1234567"), "a", out, sizeof(out)), 7);
    TD_CHECK(strcmp(out, "1234567") == 0);
    memset(out, 'Z', sizeof(out));
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=12345678"), "a", out, sizeof(out)), TD_ELIMIT);
    TD_CHECK(out[0] == 'Z' && out[7] == 'Z');
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a=%41%41%41%41%41%41%41"), "a", out, sizeof(out)), 7);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a="), "a", out, 0), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_http_query_get(str_of("a="), "a", out, 1), 0);
}

TD_TEST(http1_query_from_request)
{
    struct td_http_request req;
    TD_REQUIRE(parse("GET /connection/websocket?cf_protocol=protobuf&token=a%2Eb+c HTTP/1.1\r\n"
                     "Host: a\r\n\r\n",
                     &req) > 0);
    char out[32];
    TD_CHECK_EQ_INT(td_http_query_get(req.query, "cf_protocol", out, sizeof(out)), 8);
    TD_CHECK(strcmp(out, "protobuf") == 0);
    TD_CHECK_EQ_INT(td_http_query_get(req.query, "token", out, sizeof(out)), 5);
    TD_CHECK(strcmp(out, "a.b c") == 0);
}

TD_TEST(http1_reason)
{
    TD_CHECK(strcmp(td_http_reason(200), "OK") == 0);
    TD_CHECK(strcmp(td_http_reason(101), "Switching Protocols") == 0);
    TD_CHECK(strcmp(td_http_reason(400), "Bad Request") == 0);
    TD_CHECK(strcmp(td_http_reason(404), "Not Found") == 0);
    TD_CHECK(strcmp(td_http_reason(431), "Request Header Fields Too Large") == 0);
    TD_CHECK(strcmp(td_http_reason(501), "Not Implemented") == 0);
    TD_CHECK(strcmp(td_http_reason(999), "Unknown") == 0);
    TD_CHECK(strcmp(td_http_reason(-1), "Unknown") == 0);
}
