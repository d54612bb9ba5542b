/* Tests for the WebSocket codec (td_ws): handshake key, encoder, decoder rules. */
#include <stdlib.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "http/td_ws.h"
#include "td_test.h"

static const uint8_t test_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends a masked client frame; b0 is the complete first byte (FIN, RSV, opcode). */
static void put_frame_b0(struct td_buf *b, uint8_t b0, const void *payload, size_t len)
{
    uint8_t h[14];
    size_t hl = td_ws_frame_header(h, false, 0, len);
    h[0] = b0;
    h[1] |= 0x80;
    memcpy(h + hl, test_mask, 4);
    td_buf_append(b, h, hl + 4);
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        td_buf_append_byte(b, (uint8_t)(p[i] ^ test_mask[i & 3]));
}

static void put_frame(struct td_buf *b, bool fin, uint8_t op, const void *payload, size_t len)
{
    put_frame_b0(b, (uint8_t)((fin ? 0x80 : 0) | op), payload, len);
}

static void put_str(struct td_buf *b, bool fin, uint8_t op, const char *s)
{
    put_frame(b, fin, op, s, strlen(s));
}

/* What a caller of the decoder observes when feeding a stream in chunks. */
#define RUN_MAX_EVENTS 16
struct run {
    int nev;
    struct {
        enum td_ws_event_type type;
        bool binary;
        struct td_buf data;
        uint16_t code;
        struct td_buf reason;
    } ev[RUN_MAX_EVENTS];
    int err;            /* first error returned, 0 if none */
    uint16_t close;     /* td_ws_decoder_close_code after the error */
    size_t err_at;      /* stream bytes delivered to the caller when the error came */
    size_t max_pending; /* largest partial frame the caller had to keep */
};

static void run_free(struct run *r)
{
    for (int i = 0; i < r->nev; i++) {
        td_buf_free(&r->ev[i].data);
        td_buf_free(&r->ev[i].reason);
    }
}

/*
 * Feeds in[0..n) to a fresh decoder in chunks of `chunk` bytes, acting as a careful caller:
 * keeps the unconsumed tail, calls again until the decoder wants more input, and checks that
 * every payload pointer lies in the input or the decoder's buffer.
 */
static void run_stream(struct run *r, size_t max, const uint8_t *in, size_t n, size_t chunk)
{
    struct td_ws_decoder d;
    struct td_buf pend;
    memset(r, 0, sizeof(*r));
    td_ws_decoder_init(&d, max);
    td_buf_init(&pend);
    for (size_t off = 0; off < n && r->err == 0;) {
        size_t k = n - off < chunk ? n - off : chunk;
        td_buf_append(&pend, in + off, k);
        off += k;
        for (;;) {
            size_t used = 0;
            struct td_ws_event ev;
            int rc = td_ws_decoder_feed(&d, pend.data, pend.len, &used, &ev);
            if (rc < 0) {
                r->err = rc;
                r->close = td_ws_decoder_close_code(&d);
                r->err_at = off;
                break;
            }
            TD_CHECK(used <= pend.len);
            if (rc == 1) {
                bool in_input = ev.payload >= pend.data && ev.payload + ev.len <= pend.data + used;
                bool in_msg = d.msg.data != NULL && ev.payload >= d.msg.data &&
                              ev.payload + ev.len <= d.msg.data + d.msg.len;
                TD_CHECK(ev.payload != NULL && (in_input || in_msg));
                TD_CHECK(ev.len <= d.max_message);
                if (r->nev < RUN_MAX_EVENTS) {
                    struct run *x = r;
                    x->ev[x->nev].type = ev.type;
                    x->ev[x->nev].binary = ev.binary;
                    td_buf_init(&x->ev[x->nev].data);
                    td_buf_init(&x->ev[x->nev].reason);
                    td_buf_append(&x->ev[x->nev].data, ev.payload, ev.len);
                    td_buf_append(&x->ev[x->nev].reason, ev.close_reason.p, ev.close_reason.n);
                    x->ev[x->nev].code = ev.close_code;
                    x->nev++;
                }
            }
            td_buf_consume(&pend, used);
            if (rc == 0)
                break;
        }
        if (pend.len > r->max_pending)
            r->max_pending = pend.len;
    }
    td_buf_free(&pend);
    td_ws_decoder_free(&d);
}

/* Feeds a whole stream at once and expects an error with the given close code. */
static void expect_error(const struct td_buf *b, size_t max, int err, uint16_t code)
{
    struct run r;
    run_stream(&r, max, b->data, b->len, b->len);
    TD_CHECK_EQ_INT(r.err, err);
    TD_CHECK_EQ_INT(r.close, code);
    run_free(&r);
    /* Byte by byte the outcome is the same. */
    run_stream(&r, max, b->data, b->len, 1);
    TD_CHECK_EQ_INT(r.err, err);
    TD_CHECK_EQ_INT(r.close, code);
    run_free(&r);
}

/* ---- handshake and encoder ---- */

TD_TEST(ws_accept_key_rfc_example)
{
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    td_ws_accept_key(key, strlen(key), out);
    TD_CHECK_MEM_STR(out, strlen(out), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TD_TEST(ws_frame_header_lengths)
{
    uint8_t h[10];
    TD_CHECK_EQ_INT(td_ws_frame_header(h, true, TD_WS_OP_TEXT, 0), 2);
    TD_CHECK(h[0] == 0x81 && h[1] == 0);
    TD_CHECK_EQ_INT(td_ws_frame_header(h, true, TD_WS_OP_BINARY, 125), 2);
    TD_CHECK(h[0] == 0x82 && h[1] == 125);
    TD_CHECK_EQ_INT(td_ws_frame_header(h, false, TD_WS_OP_TEXT, 126), 4);
    TD_CHECK(h[0] == 0x01 && h[1] == 126 && h[2] == 0 && h[3] == 126);
    TD_CHECK_EQ_INT(td_ws_frame_header(h, true, TD_WS_OP_CONT, 65535), 4);
    TD_CHECK(h[0] == 0x80 && h[1] == 126 && h[2] == 0xFF && h[3] == 0xFF);
    TD_CHECK_EQ_INT(td_ws_frame_header(h, true, TD_WS_OP_BINARY, 65536), 10);
    static const uint8_t want[10] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    TD_CHECK(memcmp(h, want, 10) == 0);
    TD_CHECK_EQ_INT(td_ws_frame_header(h, true, TD_WS_OP_BINARY, 0x0102030405060708ull), 10);
    TD_CHECK(h[2] == 1 && h[9] == 8);
}

TD_TEST(ws_append_frame_and_close)
{
    struct td_buf b;
    td_buf_init(&b);
    td_ws_append_frame(&b, TD_WS_OP_TEXT, "Hello", 5);
    TD_CHECK_MEM_STR(b.data, b.len, "\x81\x05Hello"); /* RFC 6455 5.7 unmasked example */
    td_buf_reset(&b);
    td_ws_append_close(&b, 0, "ignored");
    TD_CHECK(b.len == 2 && b.data[0] == 0x88 && b.data[1] == 0);
    td_buf_reset(&b);
    td_ws_append_close(&b, TD_WS_CLOSE_NORMAL, "bye");
    TD_CHECK(b.len == 7 && memcmp(b.data,
                                  "\x88\x05\x03\xe8"
                                  "bye",
                                  7) == 0);
    td_buf_reset(&b);
    td_ws_append_close(&b, TD_WS_CLOSE_GOING_AWAY, NULL);
    TD_CHECK(b.len == 4 && memcmp(b.data, "\x88\x02\x03\xe9", 4) == 0);

    /* 122 ASCII bytes then a 2-byte character straddling the 123-byte limit: cut before it. */
    char reason[200];
    memset(reason, 'r', 122);
    strcpy(reason + 122, "\xC3\xA9zz");
    td_buf_reset(&b);
    td_ws_append_close(&b, TD_WS_CLOSE_POLICY, reason);
    TD_CHECK_EQ_INT(b.len, 2 + 2 + 122);
    TD_CHECK_EQ_INT(b.data[1], 124);
    /* 121 ASCII then the character: it ends exactly at 123 and is kept. */
    memset(reason, 'r', 121);
    strcpy(reason + 121, "\xC3\xA9zz");
    td_buf_reset(&b);
    td_ws_append_close(&b, TD_WS_CLOSE_POLICY, reason);
    TD_CHECK_EQ_INT(b.len, 2 + 2 + 123);
    TD_CHECK(b.data[b.len - 1] == 0xA9);
    /* A 4-byte character straddling the limit. */
    memset(reason, 'r', 121);
    strcpy(reason + 121, "\xF0\x9F\x98\x80");
    td_buf_reset(&b);
    td_ws_append_close(&b, TD_WS_CLOSE_POLICY, reason);
    TD_CHECK_EQ_INT(b.len, 2 + 2 + 121);
    td_buf_free(&b);
}

/* Frames produced by our encoder, once masked, decode back to the same thing. */
TD_TEST(ws_encoder_decoder_agree)
{
    struct td_buf b;
    td_buf_init(&b);
    td_ws_append_close(&b, TD_WS_CLOSE_POLICY, "policy \xE2\x82\xAC");
    /* Mask it as a client would: set the bit, insert a key, XOR the payload. */
    struct td_buf m;
    td_buf_init(&m);
    put_frame_b0(&m, b.data[0], b.data + 2, b.len - 2);
    struct run r;
    run_stream(&r, 0, m.data, m.len, m.len);
    TD_REQUIRE(r.err == 0 && r.nev == 1);
    TD_CHECK_EQ_INT(r.ev[0].type, TD_WS_EV_CLOSE);
    TD_CHECK_EQ_INT(r.ev[0].code, TD_WS_CLOSE_POLICY);
    TD_CHECK_MEM_STR(r.ev[0].reason.data, r.ev[0].reason.len, "policy \xE2\x82\xAC");
    run_free(&r);
    td_buf_free(&m);
    td_buf_free(&b);
}

/* ---- decoder: RFC 6455 section 5.7 examples ---- */

TD_TEST(ws_rfc_masked_hello)
{
    uint8_t in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    TD_CHECK_EQ_INT(d.max_message, 65536);
    struct td_ws_event ev;
    size_t used = 99;
    TD_REQUIRE(td_ws_decoder_feed(&d, in, sizeof(in), &used, &ev) == 1);
    TD_CHECK_EQ_INT(used, sizeof(in));
    TD_CHECK_EQ_INT(ev.type, TD_WS_EV_MESSAGE);
    TD_CHECK(!ev.binary);
    TD_CHECK_MEM_STR(ev.payload, ev.len, "Hello");
    TD_CHECK(ev.payload == in + 6); /* delivered in place, no copy */
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, in + used, 0, &used, &ev), 0);
    TD_CHECK_EQ_INT(used, 0);
    TD_CHECK_EQ_INT(td_ws_decoder_close_code(&d), 0);
    td_ws_decoder_free(&d);
}

TD_TEST(ws_rfc_fragmented_hello)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "Hel");
    put_str(&b, true, TD_WS_OP_CONT, "lo");
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    struct td_ws_event ev;
    size_t used;
    TD_REQUIRE(td_ws_decoder_feed(&d, b.data, b.len, &used, &ev) == 1);
    TD_CHECK_EQ_INT(used, b.len);
    TD_CHECK_EQ_INT(ev.type, TD_WS_EV_MESSAGE);
    TD_CHECK(!ev.binary);
    TD_CHECK_MEM_STR(ev.payload, ev.len, "Hello");
    TD_CHECK(ev.payload == d.msg.data);
    /* The reassembly buffer is released on the next call. */
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, b.data, 0, &used, &ev), 0);
    TD_CHECK(d.msg.data == NULL && d.msg.len == 0);
    td_ws_decoder_free(&d);
    td_buf_free(&b);
}

TD_TEST(ws_rfc_ping_and_pong_with_body)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, true, TD_WS_OP_PING, "Hello");
    put_str(&b, true, TD_WS_OP_PONG, "Hello");
    put_str(&b, true, TD_WS_OP_PING, "");
    struct run r;
    run_stream(&r, 0, b.data, b.len, b.len);
    TD_REQUIRE(r.err == 0 && r.nev == 3);
    TD_CHECK_EQ_INT(r.ev[0].type, TD_WS_EV_PING);
    TD_CHECK_MEM_STR(r.ev[0].data.data, r.ev[0].data.len, "Hello");
    TD_CHECK_EQ_INT(r.ev[1].type, TD_WS_EV_PONG);
    TD_CHECK_MEM_STR(r.ev[1].data.data, r.ev[1].data.len, "Hello");
    TD_CHECK_EQ_INT(r.ev[2].type, TD_WS_EV_PING);
    TD_CHECK_EQ_INT(r.ev[2].data.len, 0);
    run_free(&r);
    td_buf_free(&b);
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = td_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + (i >> 8));
    return p;
}

TD_TEST(ws_16_and_64_bit_lengths)
{
    static const size_t sizes[] = {125, 126, 127, 256, 65535, 65536, 70000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint8_t *p = pattern(n);
        struct td_buf b;
        td_buf_init(&b);
        put_frame(&b, true, TD_WS_OP_BINARY, p, n);
        size_t hl = n < 126 ? 6 : n < 65536 ? 8 : 14;
        TD_CHECK_EQ_INT(b.len, hl + n);
        struct run r;
        run_stream(&r, 100000, b.data, b.len, 4096);
        TD_REQUIRE(r.err == 0 && r.nev == 1);
        TD_CHECK(r.ev[0].binary);
        TD_CHECK(r.ev[0].data.len == n && memcmp(r.ev[0].data.data, p, n) == 0);
        TD_CHECK(r.max_pending < hl + n); /* never had to keep more than the one frame */
        run_free(&r);
        td_buf_free(&b);
        free(p);
    }
}

/* A non-minimal length encoding (16-bit length for 5 bytes) is tolerated. */
TD_TEST(ws_non_minimal_length_accepted)
{
    uint8_t in[] = {0x81, 0xFE, 0x00, 0x05, 0, 0, 0, 0, 'H', 'e', 'l', 'l', 'o'};
    struct run r;
    run_stream(&r, 0, in, sizeof(in), sizeof(in));
    TD_REQUIRE(r.err == 0 && r.nev == 1);
    TD_CHECK_MEM_STR(r.ev[0].data.data, r.ev[0].data.len, "Hello");
    run_free(&r);
}

/* A stream mixing every kind of frame decodes identically for every chunk size. */
TD_TEST(ws_any_chunking_same_events)
{
    uint8_t *big = pattern(300);
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, true, TD_WS_OP_TEXT, "first");
    put_str(&b, false, TD_WS_OP_TEXT, "fr\xC3"); /* é split across fragments */
    put_str(&b, true, TD_WS_OP_PING, "p1");      /* control between fragments */
    put_str(&b, false, TD_WS_OP_CONT, "\xA9g-");
    put_str(&b, false, TD_WS_OP_CONT, "");
    put_str(&b, true, TD_WS_OP_CONT, "\xE2\x82\xAC"); /* € */
    put_frame(&b, true, TD_WS_OP_BINARY, big, 300);
    put_frame(&b, false, TD_WS_OP_BINARY, big, 100);
    put_str(&b, true, TD_WS_OP_PONG, "");
    put_frame(&b, true, TD_WS_OP_CONT, big + 100, 200);
    put_str(&b, true, TD_WS_OP_TEXT, "");
    put_frame(&b, true, TD_WS_OP_CLOSE,
              "\x03\xe8"
              "done",
              6);
    put_str(&b, true, TD_WS_OP_TEXT, "after close: ignored");
    for (size_t chunk = 1; chunk <= b.len; chunk++) {
        struct run r;
        run_stream(&r, 1000, b.data, b.len, chunk);
        TD_REQUIRE(r.err == 0);
        TD_REQUIRE(r.nev == 8);
        TD_CHECK(r.ev[0].type == TD_WS_EV_MESSAGE && !r.ev[0].binary);
        TD_CHECK_MEM_STR(r.ev[0].data.data, r.ev[0].data.len, "first");
        TD_CHECK_EQ_INT(r.ev[1].type, TD_WS_EV_PING);
        TD_CHECK_MEM_STR(r.ev[1].data.data, r.ev[1].data.len, "p1");
        TD_CHECK(r.ev[2].type == TD_WS_EV_MESSAGE && !r.ev[2].binary);
        TD_CHECK_MEM_STR(r.ev[2].data.data, r.ev[2].data.len, "fr\xC3\xA9g-\xE2\x82\xAC");
        TD_CHECK(r.ev[3].type == TD_WS_EV_MESSAGE && r.ev[3].binary);
        TD_CHECK(r.ev[3].data.len == 300 && memcmp(r.ev[3].data.data, big, 300) == 0);
        TD_CHECK_EQ_INT(r.ev[4].type, TD_WS_EV_PONG);
        TD_CHECK(r.ev[5].type == TD_WS_EV_MESSAGE && r.ev[5].binary);
        TD_CHECK(r.ev[5].data.len == 300 && memcmp(r.ev[5].data.data, big, 300) == 0);
        TD_CHECK(r.ev[6].type == TD_WS_EV_MESSAGE && !r.ev[6].binary && r.ev[6].data.len == 0);
        TD_CHECK_EQ_INT(r.ev[7].type, TD_WS_EV_CLOSE);
        TD_CHECK_EQ_INT(r.ev[7].code, 1000);
        TD_CHECK_MEM_STR(r.ev[7].reason.data, r.ev[7].reason.len, "done");
        run_free(&r);
    }
    td_buf_free(&b);
    free(big);
}

/* consumed stops at a frame boundary; the partial frame is left to the caller. */
TD_TEST(ws_consumed_stops_at_frame_boundary)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, false, TD_WS_OP_BINARY, "ab");
    size_t first = b.len;
    put_str(&b, true, TD_WS_OP_CONT, "cdef");
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    struct td_ws_event ev;
    size_t used = 99;
    /* First fragment plus half of the second: the first is taken into the buffer. */
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, b.data, b.len - 3, &used, &ev), 0);
    TD_CHECK_EQ_INT(used, first);
    TD_CHECK_EQ_INT(d.msg.len, 2);
    /* Re-presenting the partial frame alone consumes nothing. */
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, b.data + first, b.len - first - 3, &used, &ev), 0);
    TD_CHECK_EQ_INT(used, 0);
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, b.data + first, b.len - first, &used, &ev), 1);
    TD_CHECK_EQ_INT(used, b.len - first);
    TD_CHECK(ev.binary);
    TD_CHECK_MEM_STR(ev.payload, ev.len, "abcdef");
    td_ws_decoder_free(&d);
    td_buf_free(&b);
}

TD_TEST(ws_empty_fragmented_message_has_payload_pointer)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "");
    put_str(&b, true, TD_WS_OP_CONT, "");
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    struct td_ws_event ev;
    size_t used;
    TD_REQUIRE(td_ws_decoder_feed(&d, b.data, b.len, &used, &ev) == 1);
    TD_CHECK(ev.payload != NULL && ev.len == 0 && !ev.binary);
    td_ws_decoder_free(&d);
    td_buf_free(&b);
}

/* ---- decoder: protocol errors and their close codes ---- */

TD_TEST(ws_unmasked_frame_is_1002)
{
    uint8_t in[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}; /* the RFC's unmasked example */
    struct td_buf b = {in, sizeof(in), sizeof(in)};
    expect_error(&b, 0, TD_EPROTO, TD_WS_CLOSE_PROTOCOL);
    /* Detected from the second byte alone. */
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    size_t used;
    struct td_ws_event ev;
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, in, 1, &used, &ev), 0);
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, in, 2, &used, &ev), TD_EPROTO);
    TD_CHECK_EQ_INT(td_ws_decoder_close_code(&d), 1002);
    /* Errors are sticky, even for valid input afterwards. */
    uint8_t ok[] = {0x81, 0x80, 0, 0, 0, 0};
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, ok, sizeof(ok), &used, &ev), TD_EPROTO);
    td_ws_decoder_free(&d);
}

TD_TEST(ws_rsv_bits_are_1002)
{
    static const uint8_t rsv[] = {0x40, 0x20, 0x10};
    for (size_t i = 0; i < 3; i++) {
        struct td_buf b;
        td_buf_init(&b);
        put_frame_b0(&b, (uint8_t)(0x81 | rsv[i]), "x", 1);
        expect_error(&b, 0, TD_EPROTO, 1002);
        td_buf_free(&b);
    }
}

TD_TEST(ws_unknown_opcodes_are_1002)
{
    for (uint8_t op = 3; op < 16; op++) {
        if (op >= 8 && op <= 10)
            continue;
        struct td_buf b;
        td_buf_init(&b);
        put_frame(&b, true, op, "x", 1);
        expect_error(&b, 0, TD_EPROTO, 1002);
        td_buf_free(&b);
    }
}

TD_TEST(ws_control_frame_rules_are_1002)
{
    uint8_t big[126];
    memset(big, 'a', sizeof(big));
    static const uint8_t ops[] = {TD_WS_OP_CLOSE, TD_WS_OP_PING, TD_WS_OP_PONG};
    for (size_t i = 0; i < 3; i++) {
        struct td_buf b;
        td_buf_init(&b);
        /* 125 bytes is the largest allowed (for close: code + 123 bytes of reason). */
        uint8_t ok[125];
        memset(ok, 'a', sizeof(ok));
        ok[0] = 0x03, ok[1] = 0xE8;
        put_frame(&b, true, ops[i], ok, sizeof(ok));
        struct run r;
        run_stream(&r, 0, b.data, b.len, b.len);
        TD_CHECK(r.err == 0 && r.nev == 1);
        run_free(&r);
        td_buf_reset(&b);
        put_frame(&b, true, ops[i], big, sizeof(big)); /* 126 bytes */
        expect_error(&b, 0, TD_EPROTO, 1002);
        td_buf_reset(&b);
        put_frame(&b, false, ops[i], "", 0); /* fragmented control frame */
        expect_error(&b, 0, TD_EPROTO, 1002);
        td_buf_free(&b);
    }
}

TD_TEST(ws_fragmentation_rules_are_1002)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, true, TD_WS_OP_CONT, "x"); /* CONT with no message open */
    expect_error(&b, 0, TD_EPROTO, 1002);
    td_buf_reset(&b);
    put_str(&b, false, TD_WS_OP_CONT, "x");
    expect_error(&b, 0, TD_EPROTO, 1002);
    td_buf_reset(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "a");
    put_str(&b, true, TD_WS_OP_TEXT, "b"); /* new message inside a fragmented one */
    expect_error(&b, 0, TD_EPROTO, 1002);
    td_buf_reset(&b);
    put_str(&b, false, TD_WS_OP_BINARY, "a");
    put_str(&b, true, TD_WS_OP_PING, "");
    put_str(&b, false, TD_WS_OP_BINARY, "b");
    expect_error(&b, 0, TD_EPROTO, 1002);
    td_buf_reset(&b);
    put_str(&b, true, TD_WS_OP_TEXT, "a"); /* complete message, then a stray CONT */
    put_str(&b, true, TD_WS_OP_CONT, "b");
    expect_error(&b, 0, TD_EPROTO, 1002);
    td_buf_free(&b);
}

TD_TEST(ws_64_bit_length_msb_is_1002)
{
    uint8_t in[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    struct td_buf b = {in, sizeof(in), sizeof(in)};
    expect_error(&b, UINT32_MAX, TD_EPROTO, 1002);
    /* Rejected as soon as the first length byte is seen. */
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    size_t used;
    struct td_ws_event ev;
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, in, 3, &used, &ev), TD_EPROTO);
    td_ws_decoder_free(&d);
}

TD_TEST(ws_too_big_detected_from_header)
{
    /* Single frame declaring 1001 bytes with max 1000: fails with only the header. */
    uint8_t hdr[] = {0x82, 0xFE, 0x03, 0xE9};
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 1000);
    size_t used;
    struct td_ws_event ev;
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, hdr, 3, &used, &ev), 0);
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, hdr, 4, &used, &ev), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_ws_decoder_close_code(&d), 1009);
    td_ws_decoder_free(&d);
    /* A 64-bit length of 2^62 fails the same way. */
    uint8_t huge[] = {0x81, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0};
    td_ws_decoder_init(&d, 0);
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, huge, sizeof(huge), &used, &ev), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_ws_decoder_close_code(&d), 1009);
    td_ws_decoder_free(&d);

    /* Exactly max is fine, max + 1 is not. */
    uint8_t *p = pattern(1001);
    struct td_buf b;
    td_buf_init(&b);
    put_frame(&b, true, TD_WS_OP_BINARY, p, 1000);
    struct run r;
    run_stream(&r, 1000, b.data, b.len, 100);
    TD_CHECK(r.err == 0 && r.nev == 1 && r.ev[0].data.len == 1000);
    run_free(&r);
    td_buf_reset(&b);
    put_frame(&b, true, TD_WS_OP_BINARY, p, 1001);
    run_stream(&r, 1000, b.data, b.len, 1);
    TD_CHECK_EQ_INT(r.err, TD_ELIMIT);
    TD_CHECK_EQ_INT(r.close, 1009);
    TD_CHECK_EQ_INT(r.err_at, 4); /* after the 4 header bytes, before mask and payload */
    run_free(&r);
    td_buf_free(&b);
    free(p);
}

TD_TEST(ws_fragments_sum_too_big_is_1009)
{
    uint8_t *p = pattern(600);
    struct td_buf b;
    td_buf_init(&b);
    put_frame(&b, false, TD_WS_OP_BINARY, p, 400);
    put_frame(&b, false, TD_WS_OP_CONT, p, 400);
    put_frame(&b, true, TD_WS_OP_CONT, p, 300);
    struct run r;
    run_stream(&r, 1000, b.data, b.len, 1);
    TD_CHECK_EQ_INT(r.err, TD_ELIMIT);
    TD_CHECK_EQ_INT(r.close, 1009);
    /* Failed at the header of the third fragment, never buffering past max_message. */
    TD_CHECK_EQ_INT(r.err_at, 2 * (8 + 400) + 4);
    TD_CHECK(r.max_pending <= 1000 + TD_WS_MAX_HEADER);
    run_free(&r);
    /* The same fragments summing to exactly max are accepted. */
    td_buf_reset(&b);
    put_frame(&b, false, TD_WS_OP_BINARY, p, 400);
    put_frame(&b, false, TD_WS_OP_CONT, p, 400);
    put_frame(&b, true, TD_WS_OP_CONT, p, 200);
    run_stream(&r, 1000, b.data, b.len, 7);
    TD_CHECK(r.err == 0 && r.nev == 1 && r.ev[0].data.len == 1000);
    run_free(&r);
    td_buf_free(&b);
    free(p);
}

TD_TEST(ws_invalid_utf8_is_1007)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, true, TD_WS_OP_TEXT, "bad \xC0\x80");
    expect_error(&b, 0, TD_EUTF8, 1007);
    td_buf_reset(&b);
    put_str(&b, true, TD_WS_OP_TEXT, "surrogate \xED\xA0\x80");
    expect_error(&b, 0, TD_EUTF8, 1007);
    td_buf_reset(&b);
    put_str(&b, true, TD_WS_OP_TEXT, "big \xF4\x90\x80\x80");
    expect_error(&b, 0, TD_EUTF8, 1007);
    td_buf_reset(&b);
    /* Truncated at the end of a single-frame message. */
    put_str(&b, true, TD_WS_OP_TEXT, "cut \xE2\x82");
    expect_error(&b, 0, TD_EUTF8, 1007);
    td_buf_reset(&b);
    /* Truncated at the end of a fragmented message (the last fragment is empty). */
    put_str(&b, false, TD_WS_OP_TEXT, "cut \xE2\x82");
    put_str(&b, true, TD_WS_OP_CONT, "");
    expect_error(&b, 0, TD_EUTF8, 1007);
    td_buf_reset(&b);
    /* The same bytes as binary are fine. */
    put_str(&b, true, TD_WS_OP_BINARY, "bad \xC0\x80");
    struct run r;
    run_stream(&r, 0, b.data, b.len, 1);
    TD_CHECK(r.err == 0 && r.nev == 1);
    run_free(&r);
    td_buf_free(&b);
}

/* An invalid byte in the first fragment fails before the rest of the message arrives,
 * and within a frame before the rest of the frame arrives. */
TD_TEST(ws_invalid_utf8_fails_fast)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "ok \xED\xA0\x80 rest of fragment");
    size_t first = b.len;
    put_str(&b, true, TD_WS_OP_CONT, "never needed");
    struct run r;
    run_stream(&r, 0, b.data, b.len, first);
    TD_CHECK_EQ_INT(r.err, TD_EUTF8);
    TD_CHECK_EQ_INT(r.err_at, first);
    run_free(&r);
    /* Byte by byte: fails at the A0 byte, the 6 header bytes + "ok " + ED + A0. */
    run_stream(&r, 0, b.data, b.len, 1);
    TD_CHECK_EQ_INT(r.err, TD_EUTF8);
    TD_CHECK_EQ_INT(r.close, 1007);
    TD_CHECK_EQ_INT(r.err_at, 6 + 5);
    run_free(&r);
    /* In a continuation frame too: the message so far is valid, the bad byte is in the
     * middle of a 200-byte CONT frame. */
    td_buf_reset(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "abc\xE2");
    size_t f1 = b.len;
    char mid[200];
    memset(mid, 'x', sizeof(mid));
    mid[0] = (char)0x82, mid[1] = (char)0xAC;
    mid[50] = (char)0xFF;
    put_frame(&b, true, TD_WS_OP_CONT, mid, sizeof(mid));
    run_stream(&r, 0, b.data, b.len, 1);
    TD_CHECK_EQ_INT(r.err, TD_EUTF8);
    TD_CHECK_EQ_INT(r.err_at, f1 + 8 + 51);
    run_free(&r);
    /* A character split across fragments is accepted. */
    td_buf_reset(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "\xF0\x9F");
    put_str(&b, false, TD_WS_OP_CONT, "\x98");
    put_str(&b, true, TD_WS_OP_CONT, "\x80!");
    for (size_t chunk = 1; chunk <= b.len; chunk++) {
        run_stream(&r, 0, b.data, b.len, chunk);
        TD_CHECK(r.err == 0 && r.nev == 1);
        if (r.nev == 1)
            TD_CHECK_MEM_STR(r.ev[0].data.data, r.ev[0].data.len, "\xF0\x9F\x98\x80!");
        run_free(&r);
    }
    td_buf_free(&b);
}

TD_TEST(ws_close_payload_rules)
{
    struct td_buf b;
    td_buf_init(&b);
    /* Empty close: code 1005, no reason. */
    put_str(&b, true, TD_WS_OP_CLOSE, "");
    struct run r;
    run_stream(&r, 0, b.data, b.len, b.len);
    TD_REQUIRE(r.err == 0 && r.nev == 1);
    TD_CHECK_EQ_INT(r.ev[0].type, TD_WS_EV_CLOSE);
    TD_CHECK_EQ_INT(r.ev[0].code, TD_WS_CLOSE_NO_STATUS);
    TD_CHECK_EQ_INT(r.ev[0].reason.len, 0);
    run_free(&r);
    /* One byte of payload is a protocol error. */
    td_buf_reset(&b);
    put_str(&b, true, TD_WS_OP_CLOSE, "\x03");
    expect_error(&b, 0, TD_EPROTO, 1002);

    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint8_t pl[4] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i], 'o', 'k'};
        td_buf_reset(&b);
        put_frame(&b, true, TD_WS_OP_CLOSE, pl, sizeof(pl));
        run_stream(&r, 0, b.data, b.len, 1);
        TD_CHECK(r.err == 0 && r.nev == 1);
        if (r.nev == 1) {
            TD_CHECK_EQ_INT(r.ev[0].code, good[i]);
            TD_CHECK_MEM_STR(r.ev[0].reason.data, r.ev[0].reason.len, "ok");
        }
        run_free(&r);
    }
    static const uint16_t bad[] = {0,    999,  1004, 1005, 1006, 1012, 1013, 1014,
                                   1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t pl[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        td_buf_reset(&b);
        put_frame(&b, true, TD_WS_OP_CLOSE, pl, sizeof(pl));
        expect_error(&b, 0, TD_EPROTO, 1002);
    }
    /* Reason must be valid UTF-8. */
    td_buf_reset(&b);
    put_frame(&b, true, TD_WS_OP_CLOSE, "\x03\xe8\xCE\xBA\xE1\xBD\xB9\xCF\x83\xED\xA0\x80", 12);
    expect_error(&b, 0, TD_EUTF8, 1007);
    td_buf_free(&b);
}

/* After a close frame the decoder ignores whatever follows, even garbage. */
TD_TEST(ws_input_after_close_ignored)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, true, TD_WS_OP_CLOSE, "\x03\xe8");
    size_t first = b.len;
    td_buf_append(&b, "\xFF\xFF\xFF", 3);
    struct td_ws_decoder d;
    td_ws_decoder_init(&d, 0);
    struct td_ws_event ev;
    size_t used;
    TD_REQUIRE(td_ws_decoder_feed(&d, b.data, b.len, &used, &ev) == 1);
    TD_CHECK_EQ_INT(used, first);
    TD_CHECK_EQ_INT(ev.type, TD_WS_EV_CLOSE);
    TD_CHECK_EQ_INT(td_ws_decoder_feed(&d, b.data + used, b.len - used, &used, &ev), 0);
    TD_CHECK_EQ_INT(used, 3);
    TD_CHECK_EQ_INT(td_ws_decoder_close_code(&d), 0);
    td_ws_decoder_free(&d);
    td_buf_free(&b);
}

/* Control frames between fragments don't disturb the message, which is delivered whole. */
TD_TEST(ws_control_between_fragments)
{
    struct td_buf b;
    td_buf_init(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "fragment1 ");
    put_str(&b, true, TD_WS_OP_PING, "ping!");
    put_str(&b, false, TD_WS_OP_CONT, "fragment2 ");
    put_str(&b, true, TD_WS_OP_CLOSE, "\x03\xe8");
    struct run r;
    run_stream(&r, 0, b.data, b.len, b.len);
    /* Close mid-message is delivered (the connection ends), the message never is. */
    TD_REQUIRE(r.err == 0 && r.nev == 2);
    TD_CHECK_EQ_INT(r.ev[0].type, TD_WS_EV_PING);
    TD_CHECK_MEM_STR(r.ev[0].data.data, r.ev[0].data.len, "ping!");
    TD_CHECK_EQ_INT(r.ev[1].type, TD_WS_EV_CLOSE);
    run_free(&r);
    td_buf_reset(&b);
    put_str(&b, false, TD_WS_OP_TEXT, "fragment1 ");
    put_str(&b, true, TD_WS_OP_PING, "ping!");
    put_str(&b, false, TD_WS_OP_CONT, "fragment2 ");
    put_str(&b, true, TD_WS_OP_PONG, "");
    put_str(&b, true, TD_WS_OP_CONT, "end");
    run_stream(&r, 0, b.data, b.len, 3);
    TD_REQUIRE(r.err == 0 && r.nev == 3);
    TD_CHECK_EQ_INT(r.ev[0].type, TD_WS_EV_PING);
    TD_CHECK_EQ_INT(r.ev[1].type, TD_WS_EV_PONG);
    TD_CHECK_EQ_INT(r.ev[2].type, TD_WS_EV_MESSAGE);
    TD_CHECK_MEM_STR(r.ev[2].data.data, r.ev[2].data.len, "fragment1 fragment2 end");
    run_free(&r);
    td_buf_free(&b);
}
