/*
 * Fuzz target for the /emulation body parsers (td_emulation) and the stream framing.
 *
 * Input layout: byte 0 picks the parser (even: JSON, odd: protobuf), the rest is the body.
 * On success the request is checked against the contract (non-empty session and data, caps,
 * views inside the body), re-encoded and parsed again (the result must be identical), and
 * its data is framed as an SSE event and a chunk, which are decoded back and compared.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "http/td_emulation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return n == 0 || (q >= buf && q + n <= buf + len);
}

static bool same(struct td_str a, const void *p, size_t n)
{
    return a.n == n && (n == 0 || memcmp(a.p, p, n) == 0);
}

static void put_varint(struct td_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        td_buf_append_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    td_buf_append_byte(b, (uint8_t)v);
}

static void put_pb(struct td_buf *b, uint8_t field, const void *p, size_t n)
{
    td_buf_append_byte(b, (uint8_t)(field << 3 | 2));
    put_varint(b, n);
    td_buf_append(b, p, n);
}

/* Checks SSE framing of p[0..n): strip "data: " per line, join with '\n'. */
static void check_sse(const uint8_t *p, size_t n)
{
    struct td_buf ev, want, got;
    td_buf_init(&ev);
    td_buf_init(&want);
    td_buf_init(&got);
    td_emu_sse_append(&ev, p, n);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\r')
            td_buf_append_byte(&want, p[i]);
    }
    if (n > 0 && p[n - 1] == '\n')
        want.len--; /* one final newline is dropped; CRs are dropped everywhere */
    CHECK(ev.len >= 2 && ev.data[ev.len - 1] == '\n' && ev.data[ev.len - 2] == '\n');
    size_t i = 0, end = ev.len - 1; /* the last '\n' is the empty line ending the event */
    bool first = true;
    while (i < end) {
        CHECK(end - i >= TD_EMU_SSE_PREFIX_LEN &&
              memcmp(ev.data + i, TD_EMU_SSE_PREFIX, TD_EMU_SSE_PREFIX_LEN) == 0);
        i += TD_EMU_SSE_PREFIX_LEN;
        const uint8_t *nl = memchr(ev.data + i, '\n', end - i);
        CHECK(nl != NULL);
        size_t e = (size_t)(nl - ev.data);
        CHECK(memchr(ev.data + i, '\r', e - i) == NULL);
        if (!first)
            td_buf_append_byte(&got, '\n');
        td_buf_append(&got, ev.data + i, e - i);
        first = false;
        i = e + 1;
    }
    CHECK(got.len == want.len && (got.len == 0 || memcmp(got.data, want.data, got.len) == 0));
    if (td_emu_sse_single_line(p, n))
        CHECK(ev.len == n + TD_EMU_SSE_PREFIX_LEN + 2);
    td_buf_free(&ev);
    td_buf_free(&want);
    td_buf_free(&got);
}

static void check_chunk(uint32_t n)
{
    uint8_t h[TD_EMU_CHUNK_HDR_MAX];
    size_t len = td_emu_chunk_header(h, n);
    CHECK(len >= 3 && len <= TD_EMU_CHUNK_HDR_MAX && h[len - 2] == '\r' && h[len - 1] == '\n');
    uint64_t v = 0;
    for (size_t i = 0; i + 2 < len; i++) {
        uint8_t c = h[i];
        CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        v = v * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    CHECK(v == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool pb = data[0] & 1;
    size_t n = size - 1;
    uint8_t *body = malloc(n + 1);
    if (n > 0)
        memcpy(body, data + 1, n);
    struct td_emu_request r;
    int rv = pb ? td_emu_parse_pb(body, n, &r) : td_emu_parse_json((char *)body, n, &r);
    CHECK(rv == 0 || rv == TD_EPROTO);
    if (rv == 0) {
        CHECK(r.session.n > 0 && r.session.n <= TD_EMU_ID_MAX && r.node.n <= TD_EMU_ID_MAX);
        CHECK(r.len > 0 && r.data != NULL);
        CHECK(inside(r.session.p, r.session.n, body, n) && inside(r.node.p, r.node.n, body, n) &&
              inside(r.data, r.len, body, n));

        /* Re-encode and parse again: the same request must come back. */
        struct td_buf b;
        td_buf_init(&b);
        if (pb) {
            if (r.node.n > 0)
                put_pb(&b, 1, r.node.p, r.node.n);
            put_pb(&b, 2, r.session.p, r.session.n);
            put_pb(&b, 3, r.data, r.len);
        } else {
            td_buf_append_str(&b, "{\"session\":");
            td_json_write_string(&b, r.session.p, r.session.n);
            if (r.node.n > 0) {
                td_buf_append_str(&b, ",\"node\":");
                td_json_write_string(&b, r.node.p, r.node.n);
            }
            td_buf_append_str(&b, ",\"data\":");
            td_json_write_string(&b, (const char *)r.data, r.len);
            td_buf_append_byte(&b, '}');
        }
        struct td_emu_request r2;
        int rv2 = pb ? td_emu_parse_pb(b.data, b.len, &r2)
                     : td_emu_parse_json((char *)b.data, b.len, &r2);
        CHECK(rv2 == 0);
        CHECK(same(r2.session, r.session.p, r.session.n) && same(r2.node, r.node.p, r.node.n));
        CHECK(r2.len == r.len && memcmp(r2.data, r.data, r.len) == 0);
        td_buf_free(&b);

        /* The session table never matches a session it did not issue. */
        struct td_emu e;
        td_emu_init(&e);
        int conn;
        const struct td_emu_session *s = td_emu_session_add(&e, &conn);
        void *found = td_emu_session_get(&e, r.session);
        CHECK(found == NULL || same(r.session, s->id, TD_EMU_SESSION_LEN));
        CHECK(td_emu_session_get(&e, (struct td_str){s->id, TD_EMU_SESSION_LEN}) == &conn);
        td_emu_free(&e);

        check_sse(r.data, r.len);
        check_chunk((uint32_t)r.len);
    }
    check_sse(data, size);
    check_chunk((uint32_t)size * 2654435761u);
    free(body);
    return 0;
}
