/*
 * Fuzz target for the WebSocket decoder (and, on the payloads it yields, the encoder,
 * base64 and the UTF-8 validator).
 *
 * Input layout: byte 0 picks max_message (1..505, small so the limits are reached), byte 1
 * picks the chunking (0: all at once; otherwise chunk sizes from a PRNG seeded with it), the
 * rest is the client->server byte stream. The stream is decoded twice, in one piece and in
 * chunks, acting as a careful caller, and both runs must yield the same events and the same
 * final error. Every event is checked against the decoder's contract.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_base64.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_utf8.h"
#include "http/td_ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

struct outcome {
    uint64_t hash; /* FNV-1a over every event */
    size_t nev;
    int err;
    uint16_t close;
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

static bool close_code_ok(uint16_t c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/* Decodes a single server frame we encoded, after masking it with a zero key (which leaves
 * the payload unchanged), and returns its event. */
static int decode_own_frame(const struct td_buf *frame, size_t max, struct td_buf *copy,
                            struct td_ws_event *ev, struct td_ws_decoder *d)
{
    size_t hl = (frame->data[1] & 0x7F) == 127 ? 10 : (frame->data[1] & 0x7F) == 126 ? 4 : 2;
    static const uint8_t zero[4] = {0, 0, 0, 0};
    td_buf_reset(copy);
    td_buf_append(copy, frame->data, hl);
    copy->data[1] |= 0x80;
    td_buf_append(copy, zero, 4);
    td_buf_append(copy, frame->data + hl, frame->len - hl);
    td_ws_decoder_init(d, max);
    size_t used = 0;
    int rc = td_ws_decoder_feed(d, copy->data, copy->len, &used, ev);
    if (rc == 1)
        CHECK(used == copy->len);
    return rc;
}

/* Properties of one event's payload that hold independently of the decoder. */
static void check_payload(const struct td_ws_event *ev, size_t max)
{
    struct td_buf frame, copy;
    struct td_ws_decoder d;
    struct td_ws_event e2;
    td_buf_init(&frame);
    td_buf_init(&copy);

    if (ev->type == TD_WS_EV_MESSAGE) {
        /* Text is valid UTF-8, and incremental validation split anywhere agrees. */
        if (!ev->binary) {
            CHECK(td_utf8_valid(ev->payload, ev->len));
            struct td_utf8_state st;
            td_utf8_init(&st);
            size_t cut = ev->len / 3;
            CHECK(td_utf8_feed(&st, ev->payload, cut));
            CHECK(td_utf8_feed(&st, ev->payload + cut, ev->len - cut));
            CHECK(td_utf8_complete(&st));
        }
        /* Encoder round trip: our frame, masked, decodes to the same message. */
        td_ws_append_frame(&frame, ev->binary ? TD_WS_OP_BINARY : TD_WS_OP_TEXT, ev->payload,
                           ev->len);
        CHECK(decode_own_frame(&frame, max, &copy, &e2, &d) == 1);
        CHECK(e2.type == TD_WS_EV_MESSAGE && e2.binary == ev->binary && e2.len == ev->len);
        CHECK(ev->len == 0 || memcmp(e2.payload, ev->payload, ev->len) == 0);
        td_ws_decoder_free(&d);

        /* Text used as a close reason: truncated to <= 123 bytes at a character boundary. */
        if (!ev->binary) {
            char *reason = malloc(ev->len + 1);
            CHECK(reason != NULL);
            if (ev->len > 0)
                memcpy(reason, ev->payload, ev->len);
            reason[ev->len] = '\0';
            size_t rl = strlen(reason);
            td_buf_reset(&frame);
            td_ws_append_close(&frame, TD_WS_CLOSE_NORMAL, reason);
            CHECK(decode_own_frame(&frame, max, &copy, &e2, &d) == 1);
            CHECK(e2.type == TD_WS_EV_CLOSE && e2.close_code == TD_WS_CLOSE_NORMAL);
            CHECK(e2.close_reason.n <= TD_WS_MAX_CLOSE_REASON && e2.close_reason.n <= rl);
            CHECK(rl <= TD_WS_MAX_CLOSE_REASON ? e2.close_reason.n == rl
                                               : e2.close_reason.n >= TD_WS_MAX_CLOSE_REASON - 3);
            CHECK(memcmp(e2.close_reason.p, reason, e2.close_reason.n) == 0);
            td_ws_decoder_free(&d);
            free(reason);
        }

        /* base64 round trip of the payload, in both alphabets. */
        char *enc = malloc(TD_BASE64_ENCODED_LEN(ev->len) + 1);
        uint8_t *dec = malloc(ev->len + 1);
        CHECK(enc != NULL && dec != NULL);
        size_t k = td_base64_encode(ev->payload, ev->len, enc);
        CHECK(k == TD_BASE64_ENCODED_LEN(ev->len) && enc[k] == '\0');
        CHECK(td_base64_decode(enc, k, dec, ev->len) == (int)ev->len);
        CHECK(ev->len == 0 || memcmp(dec, ev->payload, ev->len) == 0);
        for (size_t i = 0; i < k; i++)
            enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
        while (k > 0 && enc[k - 1] == '=')
            k--;
        CHECK(td_base64_decode(enc, k, dec, ev->len) == (int)ev->len);
        CHECK(ev->len == 0 || memcmp(dec, ev->payload, ev->len) == 0);
        /* Arbitrary bytes as base64 text: either an error or a bounded length. */
        int r = td_base64_decode((const char *)ev->payload, ev->len, dec, ev->len + 1);
        CHECK(r == TD_EPROTO || (r >= 0 && (size_t)r <= TD_BASE64_DECODED_MAX(ev->len)));
        free(enc);
        free(dec);
    }
    td_buf_free(&frame);
    td_buf_free(&copy);
}

static void run(const uint8_t *in, size_t n, size_t max, uint8_t chunk_seed, bool deep,
                struct outcome *o)
{
    struct td_ws_decoder d;
    struct td_buf pend;
    uint32_t rng = chunk_seed * 2654435761u + 1u;
    size_t chunk_max = (size_t)(chunk_seed % 37) + 1;
    memset(o, 0, sizeof(*o));
    o->hash = 0xcbf29ce484222325ull;
    td_ws_decoder_init(&d, max);
    td_buf_init(&pend);
    size_t keep_cap =
        TD_WS_MAX_HEADER + (max > TD_WS_MAX_CONTROL_PAYLOAD ? max : TD_WS_MAX_CONTROL_PAYLOAD);
    bool closed = false;
    for (size_t off = 0; off < n && o->err == 0;) {
        size_t k = n - off;
        if (chunk_seed != 0) {
            rng = rng * 1103515245u + 12345u;
            size_t c = (size_t)(rng >> 16) % chunk_max + 1;
            k = k < c ? k : c;
        }
        td_buf_append(&pend, in + off, k);
        off += k;
        for (;;) {
            size_t used = (size_t)-1;
            struct td_ws_event ev;
            int rc = td_ws_decoder_feed(&d, pend.data, pend.len, &used, &ev);
            if (rc < 0) {
                CHECK(rc == TD_EPROTO || rc == TD_ELIMIT || rc == TD_EUTF8);
                uint16_t cc = td_ws_decoder_close_code(&d);
                CHECK((rc == TD_EPROTO && cc == 1002) || (rc == TD_ELIMIT && cc == 1009) ||
                      (rc == TD_EUTF8 && cc == 1007));
                o->err = rc;
                o->close = cc;
                /* Sticky. */
                CHECK(td_ws_decoder_feed(&d, pend.data, pend.len, &used, &ev) == rc);
                break;
            }
            CHECK(rc == 0 || rc == 1);
            CHECK(used <= pend.len);
            if (rc == 1) {
                CHECK(!closed);
                CHECK(ev.payload != NULL);
                bool in_input = ev.payload >= pend.data && ev.payload + ev.len <= pend.data + used;
                bool in_msg = d.msg.data != NULL && ev.payload >= d.msg.data &&
                              ev.payload + ev.len <= d.msg.data + d.msg.len;
                CHECK(in_input || in_msg);
                if (ev.type == TD_WS_EV_MESSAGE) {
                    CHECK(ev.len <= max);
                    CHECK(ev.binary || td_utf8_valid(ev.payload, ev.len));
                    CHECK(ev.close_code == 0);
                } else {
                    CHECK(ev.type == TD_WS_EV_PING || ev.type == TD_WS_EV_PONG ||
                          ev.type == TD_WS_EV_CLOSE);
                    CHECK(ev.len <= TD_WS_MAX_CONTROL_PAYLOAD);
                }
                if (ev.type == TD_WS_EV_CLOSE) {
                    closed = true;
                    if (ev.len == 0) {
                        CHECK(ev.close_code == TD_WS_CLOSE_NO_STATUS && ev.close_reason.n == 0);
                    } else {
                        CHECK(close_code_ok(ev.close_code) && ev.close_reason.n == ev.len - 2);
                        CHECK((const uint8_t *)ev.close_reason.p == ev.payload + 2);
                        CHECK(td_utf8_valid((const uint8_t *)ev.close_reason.p, ev.close_reason.n));
                    }
                }
                uint8_t tag[4] = {(uint8_t)ev.type, ev.binary, (uint8_t)(ev.close_code >> 8),
                                  (uint8_t)ev.close_code};
                fnv(&o->hash, tag, sizeof(tag));
                fnv(&o->hash, &ev.len, sizeof(ev.len));
                fnv(&o->hash, ev.payload, ev.len);
                o->nev++;
                if (deep)
                    check_payload(&ev, max);
            }
            td_buf_consume(&pend, used);
            if (rc == 0) {
                if (closed)
                    CHECK(pend.len == 0);
                /* The caller never has to keep more than one bounded frame. */
                CHECK(pend.len < keep_cap);
                break;
            }
        }
    }
    td_buf_free(&pend);
    td_ws_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = (size_t)(data[0] & 0x3F) * 8 + 1;
    struct outcome whole, chunked;
    run(data + 2, size - 2, max, 0, true, &whole);
    run(data + 2, size - 2, max, data[1], false, &chunked);
    CHECK(whole.nev == chunked.nev && whole.hash == chunked.hash);
    CHECK(whole.err == chunked.err && whole.close == chunked.close);
    return 0;
}
