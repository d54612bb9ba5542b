/*
 * Fuzz target for td_wt, the HTTP/3 + WebTransport session engine.
 *
 * The input is a script of events fed to one td_wt with a fake QUIC connection and a fake
 * application. The first byte configures the application (accept or refuse, echo, reset new
 * streams, close the session from a callback, fail a callback); then each event starts with
 * an opcode byte:
 *
 *   0-2  stream data:  sel, flags (bit 0: fin), len, then len bytes (fewer at the end)
 *   3    stream abort: sel, code byte (bit 7: reset, else STOP_SENDING)
 *   4    stream close: sel
 *   5    datagram:     len, then len bytes
 *   6    application:  one byte choosing an API call (open, send, reset, datagram, close, drain)
 *   7    td_wt_on_ready
 *   8    Chromium's control stream (SETTINGS + GREASE) on 2 and QPACK encoder byte on 6
 *   9    Chromium's CONNECT HEADERS and GREASE capsule on stream sel (next byte), split at a
 *        position taken from the following byte
 *
 * sel picks a stream ID: client bidi 0..28, client uni 2..30, server bidi 1..13, server uni
 * 3..15. Invariants checked (abort on violation): conn_close at most once and nothing sent
 * after it; on_session_closed at most once, only for an accepted session, and only when the
 * state is CLOSED; nothing sent on a stream after its FIN or shutdown; stream data only for
 * streams reported open (or opened by us), never after their fin; every byte of a successful
 * td_wt_on_stream_data call credited exactly once; datagrams only while OPEN.
 */
#include <nghttp3/nghttp3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "quic/td_h3.h"
#include "quic/td_wt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAXS 128

struct fst {
    int64_t id;
    bool fin_sent, shut;    /* what td_wt did on it */
    bool app_open, app_fin; /* what the application saw */
    size_t consumed;
};

struct fz {
    struct td_wt *wt;
    struct fst st[MAXS];
    size_t n;
    int64_t next_bidi, next_uni;
    bool failed;
    int closes;
    /* application */
    uint8_t mode;
    int accepted;
    int session_closed;
    int64_t last_stream;
    int calls;
};

static struct fst *fst_get(struct fz *z, int64_t id)
{
    for (size_t i = 0; i < z->n; i++) {
        if (z->st[i].id == id)
            return &z->st[i];
    }
    if (z->n == MAXS)
        return NULL;
    struct fst *s = &z->st[z->n++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    return s;
}

/* ---- fake QUIC ---- */

static int f_open(void *q, bool bidi, int64_t *id)
{
    struct fz *z = q;
    CHECK(!z->failed);
    int64_t *next = bidi ? &z->next_bidi : &z->next_uni;
    if (*next > 60)
        return TD_EAGAIN;
    *id = *next;
    *next += 4;
    return 0;
}

static int f_send(void *q, int64_t id, const void *p, size_t n, bool fin)
{
    struct fz *z = q;
    CHECK(!z->failed);
    CHECK(p != NULL || n == 0);
    struct fst *s = fst_get(z, id);
    if (s != NULL) {
        CHECK(!s->fin_sent && !s->shut);
        s->fin_sent = fin;
    }
    return 0;
}

static int f_shutdown(void *q, int64_t id, uint64_t code)
{
    struct fz *z = q;
    CHECK(!z->failed);
    CHECK(code <= TD_H3_VARINT_MAX);
    struct fst *s = fst_get(z, id);
    if (s != NULL)
        s->shut = true;
    return 0;
}

static void f_consumed(void *q, int64_t id, size_t n)
{
    struct fz *z = q;
    CHECK(!z->failed);
    struct fst *s = fst_get(z, id);
    if (s != NULL)
        s->consumed += n;
}

static int f_dgram(void *q, const void *p, size_t n)
{
    struct fz *z = q;
    CHECK(!z->failed);
    CHECK(p != NULL && n >= 1);
    return n > 1200 ? TD_EINVAL : 0;
}

static void f_close(void *q, uint64_t code)
{
    struct fz *z = q;
    CHECK(!z->failed);
    CHECK(code <= TD_H3_VARINT_MAX);
    z->failed = true;
    z->closes++;
}

static const struct td_wt_ops ops = {f_open, f_send, f_shutdown, f_consumed, f_dgram, f_close};

/* ---- fake application ---- */

static int a_request(void *ud, const struct td_wt_request *req)
{
    struct fz *z = ud;
    CHECK(req->method.p != NULL && req->protocol.p != NULL && req->path.n > 0);
    CHECK(td_wt_state(z->wt) == TD_WT_NONE);
    if (z->mode & 0x40)
        td_wt_session_set_protocol(z->wt, "p", 1);
    if (z->mode & 0x01)
        return 404;
    z->accepted++;
    return 200;
}

static int a_open(void *ud, int64_t id, bool bidi)
{
    struct fz *z = ud;
    (void)bidi;
    CHECK(td_wt_state(z->wt) == TD_WT_OPEN);
    struct fst *s = fst_get(z, id);
    if (s != NULL) {
        CHECK(!s->app_open);
        s->app_open = true;
    }
    z->last_stream = id;
    if (z->mode & 0x04)
        td_wt_stream_reset(z->wt, id, 3);
    return 0;
}

static int a_data(void *ud, int64_t id, const uint8_t *p, size_t n, bool fin)
{
    struct fz *z = ud;
    CHECK(p != NULL);
    CHECK(td_wt_state(z->wt) == TD_WT_OPEN);
    struct fst *s = fst_get(z, id);
    if (s != NULL) {
        CHECK(s->app_open || (id & 1) == 1);
        CHECK(!s->app_fin);
        s->app_fin = fin;
    }
    z->calls++;
    if ((z->mode & 0x02) && (n > 0 || fin))
        td_wt_stream_send(z->wt, id, p, n, fin);
    if ((z->mode & 0x08) && z->calls == 3)
        td_wt_session_close(z->wt, 7, "cb", 2);
    if ((z->mode & 0x10) && z->calls == 5)
        return -1;
    return 0;
}

static void a_reset(void *ud, int64_t id, uint32_t code, bool reset)
{
    struct fz *z = ud;
    (void)id;
    (void)code;
    (void)reset;
    CHECK(td_wt_state(z->wt) == TD_WT_OPEN);
}

static void a_dgram(void *ud, const uint8_t *p, size_t n)
{
    struct fz *z = ud;
    CHECK(p != NULL);
    (void)n;
    CHECK(td_wt_state(z->wt) == TD_WT_OPEN);
    if (z->mode & 0x20)
        td_wt_datagram_send(z->wt, p, n);
}

static void a_closed(void *ud, uint32_t code, const uint8_t *reason, size_t n)
{
    struct fz *z = ud;
    (void)code;
    CHECK(reason != NULL && n <= TD_H3_WT_CLOSE_REASON_MAX);
    CHECK(z->accepted == 1);
    CHECK(td_wt_state(z->wt) == TD_WT_CLOSED);
    z->session_closed++;
    CHECK(z->session_closed == 1);
    CHECK(td_wt_session_close(z->wt, 0, NULL, 0) == TD_EINVAL);
}

static void a_drain(void *ud)
{
    struct fz *z = ud;
    CHECK(td_wt_state(z->wt) == TD_WT_OPEN);
}

static const struct td_wt_handler handler = {a_request, a_open,   a_data, a_reset,
                                             a_dgram,   a_closed, a_drain};

/* ---- canned Chromium bytes ---- */

static const uint8_t chromium_settings[] = {
    0x01, 0x80, 0x01, 0x00, 0x00, 0x06, 0x80, 0x00, 0x40, 0x00, 0x07,
    0x40, 0x64, 0x33, 0x01, 0x80, 0xff, 0xd2, 0x77, 0x01, 0xab, 0x60,
    0x37, 0x42, 0x01, 0x80, 0x0c, 0x50, 0x14, 0x9a, 0x8e, 0x3a, 0xc4,
};

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }

static struct td_buf canned_control, canned_connect;

static void canned_init(void)
{
    if (canned_control.len > 0)
        return;
    td_buf_append_byte(&canned_control, 0x00);
    td_h3_frame_append(&canned_control, TD_H3_FRAME_SETTINGS, chromium_settings,
                       sizeof(chromium_settings));
    td_h3_frame_append(&canned_control, 0x21, "g", 1);

    nghttp3_nv nva[] = {
        NV(":scheme", "https"),          NV(":method", "CONNECT"),
        NV(":authority", "127.0.0.1"),   NV(":path", "/connection/webtransport"),
        NV(":protocol", "webtransport"), NV("origin", "http://127.0.0.1:8000"),
    };
    const nghttp3_mem *mem = nghttp3_mem_default();
    nghttp3_qpack_encoder *enc;
    CHECK(nghttp3_qpack_encoder_new(&enc, 0, mem) == 0);
    nghttp3_buf pb, rb, eb;
    nghttp3_buf_init(&pb);
    nghttp3_buf_init(&rb);
    nghttp3_buf_init(&eb);
    CHECK(nghttp3_qpack_encoder_encode(enc, &pb, &rb, &eb, 0, nva, 6) == 0);
    size_t pl = nghttp3_buf_len(&pb), rl = nghttp3_buf_len(&rb);
    uint8_t hdr[TD_H3_FRAME_HDR_MAXLEN];
    td_buf_append(&canned_connect, hdr, td_h3_frame_hdr_encode(hdr, TD_H3_FRAME_HEADERS, pl + rl));
    td_buf_append(&canned_connect, pb.pos, pl);
    td_buf_append(&canned_connect, rb.pos, rl);
    nghttp3_buf_free(&pb, mem);
    nghttp3_buf_free(&rb, mem);
    nghttp3_buf_free(&eb, mem);
    nghttp3_qpack_encoder_del(enc);
    struct td_buf cap;
    td_buf_init(&cap);
    td_h3_capsule_append(&cap, 41 * 3 + 23, "grease", 6);
    td_h3_frame_append(&canned_connect, TD_H3_FRAME_DATA, cap.data, cap.len);
    td_buf_free(&cap);
}

/* ---- driver ---- */

static int64_t sel_id(uint8_t b)
{
    unsigned s = b % 24u;
    if (s < 8)
        return 4 * (int64_t)s;
    if (s < 16)
        return 4 * (int64_t)(s - 8) + 2;
    if (s < 20)
        return 4 * (int64_t)(s - 16) + 1;
    return 4 * (int64_t)(s - 20) + 3;
}

static void feed(struct fz *z, int64_t id, const uint8_t *p, size_t n, bool fin)
{
    struct fst *s = fst_get(z, id);
    size_t before = s != NULL ? s->consumed : 0;
    bool was_failed = z->failed;
    int rv = td_wt_on_stream_data(z->wt, id, p, n, fin);
    CHECK(rv <= 0);
    CHECK(rv == 0 || z->failed);
    if (s != NULL) {
        if (rv == 0 && !was_failed)
            CHECK(s->consumed == before + n);
        else
            CHECK(s->consumed == before);
    }
}

static const uint64_t codes[] = {
    0x100,
    0x10c,
    TD_WT_H3_CONNECT_ERROR,
    TD_H3_ERR_WT_SESSION_GONE,
    UINT64_C(0x52e4a40fa8db),
    UINT64_C(0x52e4a40fa8e0),
    TD_H3_WT_ERROR_LAST,
    UINT64_C(0x52e4a40fa8fa),
};

static void app_action(struct fz *z, uint8_t b)
{
    int64_t id;
    switch (b % 8) {
    case 0:
    case 1:
        if (td_wt_stream_open(z->wt, b % 2 == 0, &id) == 0) {
            CHECK(td_wt_state(z->wt) == TD_WT_OPEN);
            z->last_stream = id;
        }
        break;
    case 2:
        td_wt_stream_send(z->wt, z->last_stream, "data", 4, (b & 0x80) != 0);
        break;
    case 3:
        td_wt_stream_reset(z->wt, z->last_stream, b);
        break;
    case 4:
        td_wt_datagram_send(z->wt, "dg", 2);
        break;
    case 5: {
        int rv = td_wt_session_close(z->wt, b, "bye", 3);
        CHECK(rv == 0 || rv == TD_EINVAL);
        CHECK(td_wt_state(z->wt) != TD_WT_OPEN);
        break;
    }
    case 6:
        td_wt_session_drain(z->wt);
        break;
    default:
        td_wt_stream_send(z->wt, sel_id(b), "x", 1, false);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    canned_init();
    struct fz *z = calloc(1, sizeof(*z));
    CHECK(z != NULL);
    z->next_bidi = 1;
    z->next_uni = 3;
    z->last_stream = -1;
    z->wt = td_wt_new(&ops, z, &handler, z);
    size_t off = 0;
    if (size > 0)
        z->mode = data[off++];
    while (off < size) {
        uint8_t op = data[off++];
        switch (op % 10) {
        case 0:
        case 1:
        case 2: {
            if (size - off < 3) {
                off = size;
                break;
            }
            int64_t id = sel_id(data[off]);
            bool fin = data[off + 1] & 1;
            size_t len = data[off + 2];
            off += 3;
            if (len > size - off)
                len = size - off;
            feed(z, id, len > 0 ? data + off : NULL, len, fin);
            off += len;
            break;
        }
        case 3:
            if (size - off < 2) {
                off = size;
                break;
            }
            {
                int64_t id = sel_id(data[off]);
                uint8_t c = data[off + 1];
                off += 2;
                int rv = td_wt_on_stream_abort(z->wt, id, codes[c % 8], (c & 0x80) != 0);
                CHECK(rv == 0 || z->failed);
            }
            break;
        case 4:
            if (off < size) {
                int64_t id = sel_id(data[off++]);
                td_wt_on_stream_close(z->wt, id, 0);
                /* QUIC never reuses an ID, but this script may: start that ID afresh. */
                struct fst *s = fst_get(z, id);
                if (s != NULL) {
                    memset(s, 0, sizeof(*s));
                    s->id = id;
                }
            }
            break;
        case 5: {
            if (off >= size)
                break;
            size_t len = data[off++];
            if (len > size - off)
                len = size - off;
            int rv = td_wt_on_datagram(z->wt, data + off, len);
            CHECK(rv == 0 || z->failed);
            off += len;
            break;
        }
        case 6:
            if (off < size)
                app_action(z, data[off++]);
            break;
        case 7: {
            int rv = td_wt_on_ready(z->wt);
            CHECK(rv == 0 || z->failed);
            break;
        }
        case 8:
            feed(z, 2, canned_control.data, canned_control.len, false);
            feed(z, 6, (const uint8_t *)"\x02\x20", 2, false);
            break;
        default: {
            if (size - off < 2) {
                off = size;
                break;
            }
            int64_t id = 4 * (int64_t)(data[off] % 8);
            size_t cut = data[off + 1] % (canned_connect.len + 1);
            off += 2;
            feed(z, id, canned_connect.data, cut, false);
            feed(z, id, canned_connect.data + cut, canned_connect.len - cut, false);
            break;
        }
        }
        CHECK(z->closes <= 1);
        CHECK(z->session_closed <= 1);
        CHECK(z->accepted <= 1);
        enum td_wt_state st = td_wt_state(z->wt);
        CHECK(st != TD_WT_OPEN || (z->accepted == 1 && z->session_closed == 0));
        CHECK(st != TD_WT_CLOSED || z->session_closed == 1);
        struct td_wt_stats stats;
        td_wt_stats(z->wt, &stats);
        CHECK(stats.streams <= TD_WT_MAX_STREAMS);
    }
    td_wt_free(z->wt);
    free(z);
    return 0;
}
