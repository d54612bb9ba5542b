/*
 * Fuzz target for td_h3 capsules (the CONNECT stream body) and the WebTransport error-code
 * mapping.
 *
 * The input is a capsule byte stream, walked as a server would: whole capsules are decoded
 * (CLOSE and DRAIN values parsed, then re-encoded and decoded to the same values), capsules
 * over the cap are skipped by their header. The walk is repeated feeding the bytes one at a
 * time into a growing buffer, and both walks must see the same capsules. The first 8 bytes
 * are also checked as an HTTP/3 error code: mapping it to an application code and back must
 * be the identity.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "quic/td_h3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

static void check_capsule(const struct td_h3_capsule *c)
{
    if (c->type == TD_H3_CAPSULE_CLOSE_WT_SESSION) {
        uint32_t code;
        const uint8_t *reason;
        size_t rlen;
        int rv = td_h3_wt_close_decode(c->value, c->len, &code, &reason, &rlen);
        if (rv != 0) {
            CHECK(rv == TD_EPROTO || rv == TD_ELIMIT);
            return;
        }
        CHECK(rlen == c->len - 4 && rlen <= TD_H3_WT_CLOSE_REASON_MAX);
        struct td_buf b;
        td_buf_init(&b);
        CHECK(td_h3_wt_close_append(&b, code, reason, rlen) == 0);
        struct td_h3_capsule c2;
        CHECK(td_h3_capsule_decode(b.data, b.len, &c2) == 0 && c2.size == b.len);
        uint32_t code2;
        const uint8_t *reason2;
        size_t rlen2;
        CHECK(td_h3_wt_close_decode(c2.value, c2.len, &code2, &reason2, &rlen2) == 0);
        CHECK(code2 == code && rlen2 == rlen && memcmp(reason2, reason, rlen) == 0);
        td_buf_free(&b);
    } else if (c->type == TD_H3_CAPSULE_DRAIN_WT_SESSION) {
        int rv = td_h3_wt_drain_decode(c->value, c->len);
        CHECK(rv == (c->len == 0 ? 0 : TD_EPROTO));
    }
}

/* Walks the capsules in p[0..n); returns how many bytes were consumed and hashes what was
 * seen into *h. skip is the remaining bytes of an oversized capsule being skipped. */
static size_t walk(const uint8_t *p, size_t n, uint64_t *h, uint64_t *skip)
{
    size_t off = 0;
    for (;;) {
        if (*skip > 0) {
            size_t k = *skip < n - off ? (size_t)*skip : n - off;
            off += k;
            *skip -= k;
            if (*skip > 0)
                return off;
        }
        struct td_h3_capsule c;
        int rv = td_h3_capsule_decode(p + off, n - off, &c);
        if (rv == TD_EAGAIN)
            return off;
        if (rv == TD_ELIMIT) {
            uint64_t type, len;
            size_t hl;
            CHECK(td_h3_capsule_hdr_decode(p + off, n - off, &type, &len, &hl) == 0);
            CHECK(len > TD_H3_CAPSULE_MAX_LEN);
            fnv(h, &type, sizeof(type));
            fnv(h, &len, sizeof(len));
            off += hl;
            *skip = len;
            continue;
        }
        CHECK(rv == 0);
        CHECK(c.size <= n - off && c.value == p + off + (c.size - c.len));
        CHECK(c.len <= TD_H3_CAPSULE_MAX_LEN);
        fnv(h, &c.type, sizeof(c.type));
        fnv(h, c.value, c.len);
        check_capsule(&c);
        off += c.size;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = h1, skip1 = 0, skip2 = 0;
    size_t used = walk(data, size, &h1, &skip1);
    CHECK(used <= size);

    /* Byte-at-a-time delivery, as a DATA frame could split a capsule anywhere. */
    struct td_buf buf;
    td_buf_init(&buf);
    for (size_t i = 0; i < size; i++) {
        td_buf_append_byte(&buf, data[i]);
        size_t k = walk(buf.data, buf.len, &h2, &skip2);
        td_buf_consume(&buf, k);
    }
    CHECK(h1 == h2 && skip1 == skip2 && buf.len == size - used);
    td_buf_free(&buf);

    if (size >= 8) {
        uint64_t code = 0;
        for (int i = 0; i < 8; i++)
            code = code << 8 | data[i];
        uint32_t app;
        if (td_h3_wt_error_from_h3(code, &app) == 0)
            CHECK(td_h3_wt_error_to_h3(app) == code);
        uint32_t a = (uint32_t)(code >> 32) ^ (uint32_t)code;
        uint64_t h3 = td_h3_wt_error_to_h3(a);
        CHECK(h3 >= TD_H3_WT_ERROR_FIRST && h3 <= TD_H3_WT_ERROR_LAST && !td_h3_is_grease(h3));
        CHECK(td_h3_wt_error_from_h3(h3, &app) == 0 && app == a);
    }
    return 0;
}
