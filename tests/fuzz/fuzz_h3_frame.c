/*
 * Fuzz target for td_h3 stream prefixes, frame headers, GOAWAY payloads and HTTP datagrams.
 *
 * Input layout: byte 0 bit 0 says whether the stream is bidirectional; the rest is what a
 * peer wrote on the stream. The target classifies the stream as a server would, then walks
 * the HTTP/3 frames (request and control streams), checking for every item that the decoder
 * never claims more bytes than it was given, that every shorter input is TD_EAGAIN, and that
 * re-encoding the decoded values decodes to the same values. The whole input is also
 * decoded as a QUIC DATAGRAM payload.
 */
#include <stdbool.h>
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

static void check_varints(const uint8_t *p, size_t n)
{
    uint64_t v;
    size_t used;
    int rv = td_h3_varint_decode(p, n, &v, &used);
    if (rv == TD_EAGAIN)
        return;
    CHECK(rv == 0 && used >= 1 && used <= n && v <= TD_H3_VARINT_MAX);
    uint8_t out[TD_H3_VARINT_MAXLEN];
    size_t m = td_h3_varint_encode(out, v);
    CHECK(m == td_h3_varint_len(v) && m >= 1 && m <= used);
    uint64_t w;
    size_t used2;
    CHECK(td_h3_varint_decode(out, m, &w, &used2) == 0 && w == v && used2 == m);
}

static void walk_frames(const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        struct td_h3_frame_hdr h;
        int rv = td_h3_frame_hdr_decode(p + off, n - off, &h);
        if (rv != 0) {
            CHECK(rv == TD_EAGAIN || rv == TD_EPROTO || rv == TD_ELIMIT);
            return;
        }
        CHECK(h.hdr_len >= 2 && h.hdr_len <= TD_H3_FRAME_HDR_MAXLEN && h.hdr_len <= n - off);
        for (size_t k = 0; k < h.hdr_len; k++) {
            struct td_h3_frame_hdr h2;
            int r2 = td_h3_frame_hdr_decode(p + off, k, &h2);
            CHECK(r2 == TD_EAGAIN || r2 == TD_EPROTO || r2 == TD_ELIMIT);
        }
        uint8_t enc[TD_H3_FRAME_HDR_MAXLEN];
        size_t m = td_h3_frame_hdr_encode(enc, h.type, h.len);
        CHECK(m >= 2 && m <= h.hdr_len);
        struct td_h3_frame_hdr h3;
        CHECK(td_h3_frame_hdr_decode(enc, m, &h3) == 0);
        CHECK(h3.type == h.type && h3.len == h.len && h3.hdr_len == m);
        if (h.type == TD_H3_FRAME_SETTINGS)
            CHECK(h.len <= TD_H3_SETTINGS_MAX_LEN);
        if (h.type == TD_H3_FRAME_HEADERS || h.type == TD_H3_FRAME_PUSH_PROMISE)
            CHECK(h.len <= TD_H3_HEADERS_MAX_LEN);
        off += h.hdr_len;
        if (h.len > n - off)
            return; /* a caller would wait (or stream DATA / skip unknown) */
        const uint8_t *payload = p + off;
        size_t len = (size_t)h.len;
        if (h.type == TD_H3_FRAME_GOAWAY) {
            uint64_t id;
            if (td_h3_goaway_decode(payload, len, &id) == 0) {
                struct td_buf b;
                td_buf_init(&b);
                CHECK(td_h3_goaway_append(&b, id) == 0);
                struct td_h3_frame_hdr g;
                uint64_t id2;
                CHECK(td_h3_frame_hdr_decode(b.data, b.len, &g) == 0);
                CHECK(td_h3_goaway_decode(b.data + g.hdr_len, (size_t)g.len, &id2) == 0);
                CHECK(id2 == id);
                td_buf_free(&b);
            }
        } else if (h.type == TD_H3_FRAME_SETTINGS) {
            struct td_h3_settings s;
            int r = td_h3_settings_decode(payload, len, &s);
            CHECK(r == 0 || r == TD_EPROTO);
        }
        off += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool bidi = (data[0] & 1) != 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    check_varints(p, n);

    struct td_h3_stream_prefix sp;
    int rv = td_h3_stream_prefix_decode(p, n, bidi, &sp);
    if (rv == 0) {
        CHECK(sp.len <= n);
        for (size_t k = 0; k < sp.len; k++) {
            struct td_h3_stream_prefix s2;
            CHECK(td_h3_stream_prefix_decode(p, k, bidi, &s2) == TD_EAGAIN);
        }
        if (sp.kind == TD_H3_STREAM_WT_BIDI || sp.kind == TD_H3_STREAM_WT_UNI) {
            CHECK(sp.kind == (bidi ? TD_H3_STREAM_WT_BIDI : TD_H3_STREAM_WT_UNI));
            CHECK((sp.session_id & 3) == 0);
            uint8_t enc[2 * TD_H3_VARINT_MAXLEN];
            size_t m = td_h3_wt_stream_prefix_encode(enc, bidi, sp.session_id);
            CHECK(m >= 2 && m <= sp.len);
            struct td_h3_stream_prefix s3;
            CHECK(td_h3_stream_prefix_decode(enc, m, bidi, &s3) == 0);
            CHECK(s3.kind == sp.kind && s3.session_id == sp.session_id && s3.len == m);
        } else if (sp.kind == TD_H3_STREAM_REQUEST) {
            CHECK(bidi && sp.len == 0);
            walk_frames(p, n);
        } else {
            CHECK(!bidi && sp.len >= 1);
            if (sp.kind == TD_H3_STREAM_CONTROL)
                walk_frames(p + sp.len, n - sp.len);
        }
    } else {
        CHECK(rv == TD_EAGAIN || rv == TD_EPROTO);
    }
    /* Also treat the frame bytes as a raw frame sequence whatever the stream kind. */
    walk_frames(p, n);

    uint64_t sid;
    const uint8_t *payload;
    size_t plen;
    if (td_h3_datagram_decode(p, n, &sid, &payload, &plen) == 0) {
        CHECK((sid & 3) == 0 && payload >= p && payload + plen == p + n);
        uint8_t enc[TD_H3_VARINT_MAXLEN];
        size_t m = td_h3_datagram_hdr_encode(enc, sid);
        CHECK(m >= 1 && m <= (size_t)(payload - p));
        uint64_t sid2;
        const uint8_t *p2;
        size_t l2;
        CHECK(td_h3_datagram_decode(enc, m, &sid2, &p2, &l2) == 0 && sid2 == sid && l2 == 0);
    }
    return 0;
}
