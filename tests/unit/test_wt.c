/*
 * Unit tests for td_wt, the HTTP/3 + WebTransport session engine.
 *
 * A fake QUIC connection records what td_wt sends (bytes per stream, FINs, shutdowns,
 * datagrams, credit, connection closes) and a fake application records the handler calls.
 * The client side is built here the way Chromium 156 sends it (docs/webtransport.md): its
 * SETTINGS and a GREASE frame on the control stream, one byte on its QPACK encoder stream,
 * the CONNECT HEADERS (encoded with nghttp3's QPACK encoder, fields in Chromium's order) and
 * a GREASE capsule in a DATA frame. Responses are decoded with nghttp3's QPACK decoder.
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
#include "td_test.h"

/* ---- fake QUIC connection ---- */

struct fstream {
    int64_t id;
    struct td_buf out;
    bool fin;
    int shutdowns;
    uint64_t shut_code;
    size_t consumed;
};

struct fake {
    struct fstream st[64];
    size_t n;
    int64_t next_bidi, next_uni;
    int closes;
    uint64_t close_code;
    struct td_buf dgram; /* the last datagram sent */
    int dgrams;
    int open_fail; /* stream_open returns this when nonzero */
};

static struct fstream *fs(struct fake *f, int64_t id)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->st[i].id == id)
            return &f->st[i];
    }
    if (f->n == sizeof(f->st) / sizeof(f->st[0]) - 1) {
        /* full: the last slot is a sink shared by every further stream */
        f->st[f->n].id = -1;
        return &f->st[f->n];
    }
    struct fstream *s = &f->st[f->n++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    td_buf_init(&s->out);
    return s;
}

static int f_open(void *q, bool bidi, int64_t *id)
{
    struct fake *f = q;
    if (f->open_fail)
        return f->open_fail;
    if (bidi) {
        *id = f->next_bidi;
        f->next_bidi += 4;
    } else {
        *id = f->next_uni;
        f->next_uni += 4;
    }
    fs(f, *id);
    return 0;
}

static int f_send(void *q, int64_t id, const void *p, size_t n, bool fin)
{
    struct fstream *s = fs(q, id);
    if (s->fin)
        return TD_EINVAL;
    td_buf_append(&s->out, p, n);
    s->fin = fin;
    return 0;
}

static int f_shutdown(void *q, int64_t id, uint64_t code)
{
    struct fstream *s = fs(q, id);
    s->shutdowns++;
    s->shut_code = code;
    return 0;
}

static void f_consumed(void *q, int64_t id, size_t n)
{
    fs(q, id)->consumed += n;
}

static int f_dgram(void *q, const void *p, size_t n)
{
    struct fake *f = q;
    td_buf_reset(&f->dgram);
    td_buf_append(&f->dgram, p, n);
    f->dgrams++;
    return 0;
}

static void f_close(void *q, uint64_t code)
{
    struct fake *f = q;
    f->closes++;
    f->close_code = code;
}

static const struct td_wt_ops fake_ops = {f_open, f_send, f_shutdown, f_consumed, f_dgram, f_close};

/* ---- fake application ---- */

struct app {
    struct td_wt *wt;
    int status; /* what on_session_request answers */
    const char *protocol;
    int requests;
    char path[64], origin[64], proto[32], authority[64], avail[64];
    int opens;
    int64_t open_id;
    bool open_bidi;
    int64_t data_id;
    struct td_buf data;
    bool data_fin;
    int data_calls;
    bool echo;      /* send the payload back on the same stream */
    bool reset_new; /* reset every stream in on_stream_open */
    int fail_data;  /* on_stream_data returns this */
    int resets;
    int64_t reset_id;
    uint32_t reset_code;
    bool reset_reset;
    struct td_buf dgram;
    int dgrams;
    int closed;
    uint32_t close_code;
    char close_reason[64];
    int drains;
};

static void copy_str(char *dst, size_t cap, struct td_str s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    if (n > 0)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static int a_request(void *ud, const struct td_wt_request *req)
{
    struct app *a = ud;
    a->requests++;
    copy_str(a->path, sizeof(a->path), req->path);
    copy_str(a->origin, sizeof(a->origin), req->origin);
    copy_str(a->proto, sizeof(a->proto), req->protocol);
    copy_str(a->authority, sizeof(a->authority), req->authority);
    copy_str(a->avail, sizeof(a->avail), req->available_protocols);
    if (a->protocol != NULL)
        TD_CHECK(td_wt_session_set_protocol(a->wt, a->protocol, strlen(a->protocol)) == 0);
    return a->status;
}

static int a_open(void *ud, int64_t id, bool bidi)
{
    struct app *a = ud;
    a->opens++;
    a->open_id = id;
    a->open_bidi = bidi;
    if (a->reset_new)
        TD_CHECK(td_wt_stream_reset(a->wt, id, 9) == 0);
    return 0;
}

static int a_data(void *ud, int64_t id, const uint8_t *p, size_t n, bool fin)
{
    struct app *a = ud;
    a->data_calls++;
    a->data_id = id;
    td_buf_append(&a->data, p, n);
    a->data_fin = fin;
    if (a->echo && (n > 0 || fin))
        TD_CHECK(td_wt_stream_send(a->wt, id, p, n, fin) == 0);
    return a->fail_data;
}

static void a_reset(void *ud, int64_t id, uint32_t code, bool reset)
{
    struct app *a = ud;
    a->resets++;
    a->reset_id = id;
    a->reset_code = code;
    a->reset_reset = reset;
}

static void a_dgram(void *ud, const uint8_t *p, size_t n)
{
    struct app *a = ud;
    a->dgrams++;
    td_buf_reset(&a->dgram);
    td_buf_append(&a->dgram, p, n);
}

static void a_closed(void *ud, uint32_t code, const uint8_t *reason, size_t n)
{
    struct app *a = ud;
    a->closed++;
    a->close_code = code;
    copy_str(a->close_reason, sizeof(a->close_reason), (struct td_str){(const char *)reason, n});
    /* The session is already closed for the application API. */
    TD_CHECK(td_wt_state(a->wt) == TD_WT_CLOSED);
    TD_CHECK_EQ_INT(td_wt_session_close(a->wt, 1, "x", 1), TD_EINVAL);
}

static void a_drain(void *ud)
{
    struct app *a = ud;
    a->drains++;
}

static const struct td_wt_handler app_handler = {a_request, a_open,   a_data, a_reset,
                                                 a_dgram,   a_closed, a_drain};

/* ---- harness ---- */

struct t {
    struct fake f;
    struct app a;
    struct td_wt *wt;
    bool bytewise; /* feed every stream one byte per call */
};

static void t_init(struct t *t, bool bytewise)
{
    memset(t, 0, sizeof(*t));
    t->f.next_bidi = 1;
    t->f.next_uni = 3;
    td_buf_init(&t->f.dgram);
    td_buf_init(&t->a.data);
    td_buf_init(&t->a.dgram);
    t->a.status = 200;
    t->bytewise = bytewise;
    t->wt = td_wt_new(&fake_ops, &t->f, &app_handler, &t->a);
    t->a.wt = t->wt;
}

static void t_free(struct t *t)
{
    td_wt_free(t->wt);
    for (size_t i = 0; i <= t->f.n && i < sizeof(t->f.st) / sizeof(t->f.st[0]); i++)
        td_buf_free(&t->f.st[i].out);
    td_buf_free(&t->f.dgram);
    td_buf_free(&t->a.data);
    td_buf_free(&t->a.dgram);
}

/* Feeds bytes to stream id (whole or byte by byte); returns the last td_wt result. */
static int feed(struct t *t, int64_t id, const void *p, size_t n, bool fin)
{
    const uint8_t *b = p;
    if (!t->bytewise || n <= 1)
        return td_wt_on_stream_data(t->wt, id, b, n, fin);
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = td_wt_on_stream_data(t->wt, id, b + i, 1, fin && i == n - 1);
    return rv;
}

static int feed_buf(struct t *t, int64_t id, const struct td_buf *b, bool fin)
{
    return feed(t, id, b->data, b->len, fin);
}

/* Chromium 156's client SETTINGS payload (as in test_h3.c). */
static const uint8_t chromium_settings[] = {
    0x01, 0x80, 0x01, 0x00, 0x00, 0x06, 0x80, 0x00, 0x40, 0x00, 0x07,
    0x40, 0x64, 0x33, 0x01, 0x80, 0xff, 0xd2, 0x77, 0x01, 0xab, 0x60,
    0x37, 0x42, 0x01, 0x80, 0x0c, 0x50, 0x14, 0x9a, 0x8e, 0x3a, 0xc4,
};

/* The client's control stream: type 0x00, SETTINGS, then a GREASE frame. */
static void client_control(struct td_buf *b)
{
    td_buf_append_byte(b, 0x00);
    td_h3_frame_append(b, TD_H3_FRAME_SETTINGS, chromium_settings, sizeof(chromium_settings));
    td_h3_frame_append(b, 0x1f * 7 + 0x21, "grease", 6);
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }

/* Appends a HEADERS frame carrying nva, QPACK-encoded with nghttp3 (capacity 0). */
static void headers_frame(struct td_buf *b, int64_t id, const nghttp3_nv *nva, size_t n)
{
    const nghttp3_mem *mem = nghttp3_mem_default();
    nghttp3_qpack_encoder *enc;
    TD_CHECK(nghttp3_qpack_encoder_new(&enc, 0, mem) == 0);
    nghttp3_buf pb, rb, eb;
    nghttp3_buf_init(&pb);
    nghttp3_buf_init(&rb);
    nghttp3_buf_init(&eb);
    TD_CHECK(nghttp3_qpack_encoder_encode(enc, &pb, &rb, &eb, id, nva, n) == 0);
    TD_CHECK(nghttp3_buf_len(&eb) == 0);
    struct td_buf payload;
    td_buf_init(&payload);
    td_buf_append(&payload, pb.pos, nghttp3_buf_len(&pb));
    td_buf_append(&payload, rb.pos, nghttp3_buf_len(&rb));
    td_h3_frame_append(b, TD_H3_FRAME_HEADERS, payload.data, payload.len);
    td_buf_free(&payload);
    nghttp3_buf_free(&pb, mem);
    nghttp3_buf_free(&rb, mem);
    nghttp3_buf_free(&eb, mem);
    nghttp3_qpack_encoder_del(enc);
}

/* Chromium's CONNECT, fields in its order (research 1.3). */
static void connect_headers(struct td_buf *b, int64_t id, const char *path)
{
    nghttp3_nv nva[] = {
        NV(":scheme", "https"),
        NV(":method", "CONNECT"),
        NV(":authority", "127.0.0.1:4443"),
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        NV(":protocol", "webtransport"),
        NV("sec-webtransport-http3-draft02", "1"),
        NV("origin", "http://127.0.0.1:8000"),
        NV("wt-available-protocols", "\"chat-v2\", \"chat-v1\""),
    };
    headers_frame(b, id, nva, sizeof(nva) / sizeof(nva[0]));
}

/* A DATA frame holding Chromium's first capsule: GREASE type 41*N+23, short payload. */
static void grease_capsule(struct td_buf *b)
{
    struct td_buf c;
    td_buf_init(&c);
    td_h3_capsule_append(&c, 41 * 1000 + 23, "\x11\x22\x33\x44\x55\x66\x77", 7);
    td_h3_frame_append(b, TD_H3_FRAME_DATA, c.data, c.len);
    td_buf_free(&c);
}

struct response {
    int status;
    bool draft02;
    char wt_protocol[64];
    size_t len; /* bytes of the HEADERS frame */
};

/* Decodes the HEADERS frame at the start of stream bytes p[0..n). Returns 0 or -1. */
static int response_decode(const uint8_t *p, size_t n, int64_t id, struct response *r)
{
    memset(r, 0, sizeof(*r));
    struct td_h3_frame_hdr h;
    if (td_h3_frame_hdr_decode(p, n, &h) != 0 || h.type != TD_H3_FRAME_HEADERS ||
        h.hdr_len + h.len > n)
        return -1;
    r->len = h.hdr_len + (size_t)h.len;
    const nghttp3_mem *mem = nghttp3_mem_default();
    nghttp3_qpack_decoder *dec;
    nghttp3_qpack_stream_context *sctx;
    nghttp3_qpack_decoder_new(&dec, 0, 0, mem);
    nghttp3_qpack_stream_context_new(&sctx, id, mem);
    const uint8_t *q = p + h.hdr_len;
    size_t left = (size_t)h.len;
    int rv = -1;
    for (;;) {
        nghttp3_qpack_nv nv;
        uint8_t flags = 0;
        nghttp3_ssize k = nghttp3_qpack_decoder_read_request(dec, sctx, &nv, &flags, q, left, 1);
        if (k < 0)
            break;
        q += k;
        left -= (size_t)k;
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT) {
            nghttp3_vec nm = nghttp3_rcbuf_get_buf(nv.name), vl = nghttp3_rcbuf_get_buf(nv.value);
            if (nm.len == 7 && memcmp(nm.base, ":status", 7) == 0)
                r->status = atoi((const char *)vl.base);
            if (nm.len == 28 && memcmp(nm.base, "sec-webtransport-http3-draft", 28) == 0)
                r->draft02 = vl.len == 7 && memcmp(vl.base, "draft02", 7) == 0;
            if (nm.len == 11 && memcmp(nm.base, "wt-protocol", 11) == 0)
                copy_str(r->wt_protocol, sizeof(r->wt_protocol),
                         (struct td_str){(const char *)vl.base, vl.len});
            nghttp3_rcbuf_decref(nv.name);
            nghttp3_rcbuf_decref(nv.value);
        }
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_FINAL) {
            rv = 0;
            break;
        }
        if (k == 0 && !(flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT))
            break;
    }
    nghttp3_qpack_stream_context_del(sctx);
    nghttp3_qpack_decoder_del(dec);
    return rv;
}

/* The client's control + QPACK encoder streams, then CONNECT on stream 0 with the GREASE
 * capsule. Leaves the session established (checked). */
static void t_establish(struct t *t)
{
    TD_CHECK_EQ_INT(td_wt_on_ready(t->wt), 0);
    struct td_buf b;
    td_buf_init(&b);
    client_control(&b);
    TD_CHECK_EQ_INT(feed_buf(t, 2, &b, false), 0);
    static const uint8_t qenc[] = {0x02, 0x20}; /* encoder stream: Set Capacity 0 */
    TD_CHECK_EQ_INT(feed(t, 6, qenc, sizeof(qenc), false), 0);
    td_buf_reset(&b);
    connect_headers(&b, 0, "/echo");
    grease_capsule(&b);
    TD_CHECK_EQ_INT(feed_buf(t, 0, &b, false), 0);
    td_buf_free(&b);
    TD_CHECK_EQ_INT(td_wt_state(t->wt), TD_WT_OPEN);
    TD_CHECK_EQ_INT(td_wt_session_id(t->wt), 0);
}

static void close_capsule_frame(struct td_buf *b, uint32_t code, const char *reason)
{
    struct td_buf c;
    td_buf_init(&c);
    td_h3_wt_close_append(&c, code, reason, strlen(reason));
    td_h3_frame_append(b, TD_H3_FRAME_DATA, c.data, c.len);
    td_buf_free(&c);
}

/* ---- the full Chromium-like session ---- */

static void full_session(bool bytewise)
{
    struct t t;
    t_init(&t, bytewise);
    t_establish(&t);

    /* Our control stream: type 0x00 + the default SETTINGS, nothing else. */
    struct td_h3_settings set;
    td_h3_settings_server_default(&set, 1);
    struct td_buf want;
    td_buf_init(&want);
    td_h3_control_stream_open_append(&want, &set);
    struct fstream *ctl = fs(&t.f, 3);
    TD_CHECK(ctl->out.len == want.len && memcmp(ctl->out.data, want.data, want.len) == 0);
    TD_CHECK(!ctl->fin);
    TD_CHECK_EQ_INT(td_wt_peer_version(t.wt), TD_H3_WT_DRAFT02);

    /* The request as the application saw it. */
    TD_CHECK_EQ_INT(t.a.requests, 1);
    TD_CHECK_MEM_STR(t.a.path, strlen(t.a.path), "/echo");
    TD_CHECK_MEM_STR(t.a.origin, strlen(t.a.origin), "http://127.0.0.1:8000");
    TD_CHECK_MEM_STR(t.a.proto, strlen(t.a.proto), "webtransport");
    TD_CHECK_MEM_STR(t.a.authority, strlen(t.a.authority), "127.0.0.1:4443");
    TD_CHECK_MEM_STR(t.a.avail, strlen(t.a.avail), "\"chat-v2\", \"chat-v1\"");

    /* The answer: :status 200 + draft02, and no FIN on the CONNECT stream. */
    struct fstream *cs = fs(&t.f, 0);
    struct response r;
    TD_REQUIRE(response_decode(cs->out.data, cs->out.len, 0, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 200);
    TD_CHECK(r.draft02);
    TD_CHECK_EQ_INT(r.wt_protocol[0], 0);
    TD_CHECK_EQ_INT(cs->out.len, r.len);
    TD_CHECK(!cs->fin);
    TD_CHECK_EQ_INT(cs->shutdowns, 0);

    /* A client bidi stream (40 41 00 + payload) delivers the payload; the app echoes. */
    t.a.echo = true;
    static const uint8_t bidi[] = {0x40, 0x41, 0x00, 'h', 'e', 'l', 'l', 'o'};
    TD_CHECK_EQ_INT(feed(&t, 4, bidi, sizeof(bidi), false), 0);
    TD_CHECK_EQ_INT(t.a.opens, 1);
    TD_CHECK_EQ_INT(t.a.open_id, 4);
    TD_CHECK(t.a.open_bidi);
    TD_CHECK_MEM_STR(t.a.data.data, t.a.data.len, "hello");
    TD_CHECK(!t.a.data_fin);
    TD_CHECK_MEM_STR(fs(&t.f, 4)->out.data, fs(&t.f, 4)->out.len, "hello");
    TD_CHECK_EQ_INT(fs(&t.f, 4)->consumed, sizeof(bidi));
    /* FIN from the client: the app sees fin and ends its side too. */
    TD_CHECK_EQ_INT(feed(&t, 4, NULL, 0, true), 0);
    TD_CHECK(t.a.data_fin);
    TD_CHECK(fs(&t.f, 4)->fin);
    t.a.echo = false;

    /* A client uni stream (40 54 00). */
    td_buf_reset(&t.a.data);
    static const uint8_t uni[] = {0x40, 0x54, 0x00, 'u', 'n', 'i'};
    TD_CHECK_EQ_INT(feed(&t, 10, uni, sizeof(uni), true), 0);
    TD_CHECK_EQ_INT(t.a.opens, 2);
    TD_CHECK_EQ_INT(t.a.open_id, 10);
    TD_CHECK(!t.a.open_bidi);
    TD_CHECK_MEM_STR(t.a.data.data, t.a.data.len, "uni");
    TD_CHECK(t.a.data_fin);
    TD_CHECK_EQ_INT(td_wt_stream_send(t.wt, 10, "no", 2, false), TD_EINVAL);

    /* Streams we open carry the prefix. */
    int64_t sb, su;
    TD_REQUIRE(td_wt_stream_open(t.wt, true, &sb) == 0);
    TD_REQUIRE(td_wt_stream_open(t.wt, false, &su) == 0);
    TD_CHECK_EQ_INT(sb, 1);
    TD_CHECK_EQ_INT(su, 7);
    TD_CHECK_EQ_INT(td_wt_stream_send(t.wt, sb, "S", 1, false), 0);
    TD_CHECK(fs(&t.f, sb)->out.len == 4 && memcmp(fs(&t.f, sb)->out.data, "\x40\x41\x00S", 4) == 0);
    TD_CHECK(fs(&t.f, su)->out.len == 3 && memcmp(fs(&t.f, su)->out.data, "\x40\x54\x00", 3) == 0);
    /* The client answers on our bidi stream: no prefix on that direction. */
    td_buf_reset(&t.a.data);
    TD_CHECK_EQ_INT(feed(&t, sb, "back", 4, false), 0);
    TD_CHECK_EQ_INT(t.a.data_id, sb);
    TD_CHECK_MEM_STR(t.a.data.data, t.a.data.len, "back");

    /* Datagrams in and out, with the quarter stream ID. */
    static const uint8_t dg[] = {0x00, 'd', 'g'};
    TD_CHECK_EQ_INT(td_wt_on_datagram(t.wt, dg, sizeof(dg)), 0);
    TD_CHECK_EQ_INT(t.a.dgrams, 1);
    TD_CHECK_MEM_STR(t.a.dgram.data, t.a.dgram.len, "dg");
    static const uint8_t dg_other[] = {0x01, 'x'}; /* session 4: not ours, dropped */
    TD_CHECK_EQ_INT(td_wt_on_datagram(t.wt, dg_other, sizeof(dg_other)), 0);
    TD_CHECK_EQ_INT(t.a.dgrams, 1);
    TD_CHECK_EQ_INT(td_wt_datagram_send(t.wt, "xy", 2), 0);
    TD_CHECK(t.f.dgram.len == 3 && memcmp(t.f.dgram.data, "\x00xy", 3) == 0);

    /* The client closes: close({closeCode: 42, reason: 'bye'}). */
    size_t before = cs->out.len;
    struct td_buf b;
    td_buf_init(&b);
    close_capsule_frame(&b, 42, "bye");
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(t.a.close_code, 42);
    TD_CHECK_MEM_STR(t.a.close_reason, strlen(t.a.close_reason), "bye");
    TD_CHECK(cs->fin);                           /* answered with FIN */
    TD_CHECK_EQ_INT(cs->out.len, before);        /* and nothing else */
    TD_CHECK_EQ_INT(cs->shutdowns, 0);           /* no STOP_SENDING / RESET */
    TD_CHECK_EQ_INT(fs(&t.f, sb)->shutdowns, 1); /* the session's live streams go */
    TD_CHECK_EQ_INT(fs(&t.f, sb)->shut_code, TD_WT_H3_CONNECT_ERROR);
    TD_CHECK_EQ_INT(fs(&t.f, su)->shutdowns, 1);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shutdowns, 0);  /* finished both ways already */
    TD_CHECK_EQ_INT(fs(&t.f, 10)->shutdowns, 0); /* peer uni, finished */
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_CLOSED);

    /* Afterwards: the API refuses, the FIN from the client is quiet, close is not repeated. */
    TD_CHECK_EQ_INT(td_wt_stream_send(t.wt, sb, "x", 1, false), TD_EINVAL);
    TD_CHECK_EQ_INT(td_wt_datagram_send(t.wt, "x", 1), TD_EINVAL);
    TD_CHECK_EQ_INT(td_wt_stream_open(t.wt, true, &sb), TD_EINVAL);
    TD_CHECK_EQ_INT(feed(&t, 0, NULL, 0, true), 0);
    td_wt_on_stream_close(t.wt, 0, 0);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(t.f.closes, 0);

    /* Every byte fed to the CONNECT stream was credited. */
    td_buf_reset(&b);
    connect_headers(&b, 0, "/echo");
    grease_capsule(&b);
    close_capsule_frame(&b, 42, "bye");
    TD_CHECK_EQ_INT(cs->consumed, b.len);
    td_buf_free(&b);
    td_buf_free(&want);
    t_free(&t);
}

TD_TEST(wt_full_session)
{
    full_session(false);
}

TD_TEST(wt_full_session_bytewise)
{
    full_session(true);
}

TD_TEST(wt_server_close)
{
    struct t t;
    t_init(&t, false);
    t_establish(&t);
    static const uint8_t bidi[] = {0x40, 0x41, 0x00, 'h'};
    TD_CHECK_EQ_INT(feed(&t, 4, bidi, sizeof(bidi), false), 0);
    struct fstream *cs = fs(&t.f, 0);
    size_t before = cs->out.len;
    TD_CHECK_EQ_INT(td_wt_session_close(t.wt, 1234, "server bye", 10), 0);
    /* DATA frame with the CLOSE capsule, then FIN; never a shutdown of the CONNECT stream. */
    struct td_buf want;
    td_buf_init(&want);
    close_capsule_frame(&want, 1234, "server bye");
    TD_CHECK_EQ_INT(cs->out.len - before, want.len);
    TD_CHECK(memcmp(cs->out.data + before, want.data, want.len) == 0);
    TD_CHECK(cs->fin);
    TD_CHECK_EQ_INT(cs->shutdowns, 0);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shutdowns, 1);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shut_code, TD_WT_H3_CONNECT_ERROR);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(t.a.close_code, 1234);
    TD_CHECK_MEM_STR(t.a.close_reason, strlen(t.a.close_reason), "server bye");
    /* The client's answer (its own FIN) and late data on the old stream change nothing. */
    td_buf_reset(&t.a.data);
    TD_CHECK_EQ_INT(feed(&t, 4, "late", 4, false), 0);
    TD_CHECK_EQ_INT(feed(&t, 0, NULL, 0, true), 0);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(t.a.data.len, 0);
    TD_CHECK_EQ_INT(td_wt_session_close(t.wt, 1, "", 0), TD_EINVAL);
    /* A reason over the cap is refused before anything happens. */
    td_buf_free(&want);
    t_free(&t);

    t_init(&t, false);
    t_establish(&t);
    static char big[TD_H3_WT_CLOSE_REASON_MAX + 1];
    memset(big, 'r', sizeof(big));
    TD_CHECK_EQ_INT(td_wt_session_close(t.wt, 1, big, sizeof(big)), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_OPEN);
    TD_CHECK_EQ_INT(td_wt_session_drain(t.wt), 0);
    TD_CHECK(!fs(&t.f, 0)->fin);
    t_free(&t);
}

TD_TEST(wt_peer_fin_and_drain)
{
    struct t t;
    t_init(&t, true);
    t_establish(&t);
    struct td_buf b;
    td_buf_init(&b);
    struct td_buf c;
    td_buf_init(&c);
    td_h3_wt_drain_append(&c);
    td_h3_frame_append(&b, TD_H3_FRAME_DATA, c.data, c.len);
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(t.a.drains, 1);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_OPEN);
    /* A bare FIN is close(0, ""), answered with FIN. */
    TD_CHECK_EQ_INT(feed(&t, 0, NULL, 0, true), 0);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(t.a.close_code, 0);
    TD_CHECK_EQ_INT(t.a.close_reason[0], 0);
    TD_CHECK(fs(&t.f, 0)->fin);
    td_buf_free(&b);
    td_buf_free(&c);
    t_free(&t);

    /* A reset of the CONNECT stream ends the session too. */
    t_init(&t, false);
    t_establish(&t);
    TD_CHECK_EQ_INT(td_wt_on_stream_abort(t.wt, 0, 0x10c, true), 0);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_CLOSED);
    TD_CHECK_EQ_INT(t.f.closes, 0);
    t_free(&t);
}

TD_TEST(wt_other_requests)
{
    struct t t;
    t_init(&t, false);
    TD_CHECK_EQ_INT(td_wt_on_ready(t.wt), 0);
    /* GET -> 404 + FIN, no session. */
    nghttp3_nv get[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "localhost"),
                        NV(":path", "/")};
    struct td_buf b;
    td_buf_init(&b);
    headers_frame(&b, 0, get, 4);
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, true), 0);
    struct response r;
    TD_REQUIRE(response_decode(fs(&t.f, 0)->out.data, fs(&t.f, 0)->out.len, 0, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 404);
    TD_CHECK(!r.draft02);
    TD_CHECK(fs(&t.f, 0)->fin);
    TD_CHECK_EQ_INT(t.a.requests, 0);
    /* Plain CONNECT -> 405; other :protocol -> 501. */
    nghttp3_nv conn[] = {NV(":method", "CONNECT"), NV(":authority", "example:443")};
    td_buf_reset(&b);
    headers_frame(&b, 4, conn, 2);
    TD_CHECK_EQ_INT(feed_buf(&t, 4, &b, false), 0);
    TD_REQUIRE(response_decode(fs(&t.f, 4)->out.data, fs(&t.f, 4)->out.len, 4, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 405);
    nghttp3_nv ws[] = {NV(":method", "CONNECT"), NV(":protocol", "websocket"),
                       NV(":scheme", "https"), NV(":authority", "a"), NV(":path", "/ws")};
    td_buf_reset(&b);
    headers_frame(&b, 8, ws, 5);
    TD_CHECK_EQ_INT(feed_buf(&t, 8, &b, false), 0);
    TD_REQUIRE(response_decode(fs(&t.f, 8)->out.data, fs(&t.f, 8)->out.len, 8, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 501);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_NONE);
    /* The application refuses (403): status + FIN, still no session. */
    t.a.status = 403;
    td_buf_reset(&b);
    connect_headers(&b, 12, "/nope");
    TD_CHECK_EQ_INT(feed_buf(&t, 12, &b, false), 0);
    TD_REQUIRE(response_decode(fs(&t.f, 12)->out.data, fs(&t.f, 12)->out.len, 12, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 403);
    TD_CHECK(fs(&t.f, 12)->fin);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_NONE);
    /* Then one is accepted, with a wt-protocol; a second CONNECT gets 429 + FIN. */
    t.a.status = 200;
    t.a.protocol = "chat-v2";
    td_buf_reset(&b);
    connect_headers(&b, 16, "/echo");
    TD_CHECK_EQ_INT(feed_buf(&t, 16, &b, false), 0);
    TD_REQUIRE(response_decode(fs(&t.f, 16)->out.data, fs(&t.f, 16)->out.len, 16, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 200);
    TD_CHECK_MEM_STR(r.wt_protocol, strlen(r.wt_protocol), "\"chat-v2\"");
    TD_CHECK_EQ_INT(td_wt_session_id(t.wt), 16);
    td_buf_reset(&b);
    connect_headers(&b, 20, "/echo");
    TD_CHECK_EQ_INT(feed_buf(&t, 20, &b, false), 0);
    TD_REQUIRE(response_decode(fs(&t.f, 20)->out.data, fs(&t.f, 20)->out.len, 20, &r) == 0);
    TD_CHECK_EQ_INT(r.status, 429);
    TD_CHECK(fs(&t.f, 20)->fin);
    TD_CHECK_EQ_INT(t.a.requests, 2);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_OPEN);
    /* session_set_protocol outside on_session_request is refused. */
    TD_CHECK_EQ_INT(td_wt_session_set_protocol(t.wt, "x", 1), TD_EINVAL);
    struct td_wt_stats st;
    td_wt_stats(t.wt, &st);
    TD_CHECK_EQ_INT(st.requests, 6);
    TD_CHECK_EQ_INT(st.refused, 5);
    TD_CHECK_EQ_INT(t.f.closes, 0);
    td_buf_free(&b);
    t_free(&t);
}

TD_TEST(wt_malformed_requests)
{
    struct t t;
    t_init(&t, false);
    struct td_buf b;
    td_buf_init(&b);
    /* Extended CONNECT without :path: H3_MESSAGE_ERROR on that stream only. */
    nghttp3_nv nopath[] = {NV(":method", "CONNECT"), NV(":protocol", "webtransport"),
                           NV(":scheme", "https"), NV(":authority", "a")};
    headers_frame(&b, 0, nopath, 4);
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 0)->shutdowns, 1);
    TD_CHECK_EQ_INT(fs(&t.f, 0)->shut_code, TD_WT_H3_MESSAGE_ERROR);
    /* Pseudo-header after a regular one; uppercase name; a repeated pseudo-header. */
    nghttp3_nv late[] = {NV(":method", "GET"), NV("x", "1"), NV(":path", "/"),
                         NV(":scheme", "https")};
    nghttp3_nv upper[] = {NV(":method", "GET"), NV(":path", "/"), NV(":scheme", "https"),
                          NV("X-Up", "1")};
    nghttp3_nv dup[] = {NV(":method", "GET"), NV(":method", "GET"), NV(":path", "/"),
                        NV(":scheme", "https")};
    nghttp3_nv *cases[] = {late, upper, dup};
    for (int i = 0; i < 3; i++) {
        int64_t id = 4 + 4 * i;
        td_buf_reset(&b);
        headers_frame(&b, id, cases[i], 4);
        TD_CHECK_EQ_INT(feed_buf(&t, id, &b, false), 0);
        TD_CHECK_EQ_INT(fs(&t.f, id)->shut_code, TD_WT_H3_MESSAGE_ERROR);
    }
    /* Bytes that are not QPACK: also a stream error. */
    static const uint8_t junk[] = {0x01, 0x03, 0xff, 0xff, 0xff};
    TD_CHECK_EQ_INT(feed(&t, 16, junk, sizeof(junk), false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 16)->shut_code, TD_WT_H3_MESSAGE_ERROR);
    /* A request stream that ends before its HEADERS: H3_REQUEST_INCOMPLETE. */
    TD_CHECK_EQ_INT(feed(&t, 20, NULL, 0, true), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 20)->shut_code, TD_WT_H3_REQUEST_INCOMPLETE);
    /* ... and one that ends inside a frame is a connection error (H3_FRAME_ERROR). */
    TD_CHECK_EQ_INT(t.f.closes, 0);
    /* The connection is fine: a good CONNECT still works. */
    td_buf_reset(&b);
    connect_headers(&b, 24, "/echo");
    TD_CHECK_EQ_INT(feed_buf(&t, 24, &b, false), 0);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_OPEN);
    static const uint8_t cut[] = {0x01, 0x05, 0x00};
    TD_CHECK(feed(&t, 28, cut, sizeof(cut), true) < 0);
    TD_CHECK_EQ_INT(t.f.closes, 1);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_FRAME_ERROR);
    TD_CHECK_EQ_INT(t.a.closed, 1); /* the open session ended with the connection */
    td_buf_free(&b);
    t_free(&t);
}

TD_TEST(wt_control_stream_errors)
{
    /* No SETTINGS first: H3_MISSING_SETTINGS, then everything is refused. */
    struct t t;
    t_init(&t, false);
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_byte(&b, 0x00);
    td_h3_goaway_append(&b, 0);
    TD_CHECK(feed_buf(&t, 2, &b, false) < 0);
    TD_CHECK_EQ_INT(t.f.closes, 1);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_MISSING_SETTINGS);
    TD_CHECK(td_wt_on_datagram(t.wt, (const uint8_t *)"\x00x", 2) < 0);
    TD_CHECK(feed(&t, 6, "\x02", 1, false) < 0);
    TD_CHECK_EQ_INT(t.f.closes, 1);
    t_free(&t);

    /* The same with a GREASE frame first (byte by byte). */
    t_init(&t, true);
    td_buf_reset(&b);
    td_buf_append_byte(&b, 0x00);
    td_h3_frame_append(&b, 0x21, "", 0);
    TD_CHECK(feed_buf(&t, 2, &b, false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_MISSING_SETTINGS);
    t_free(&t);

    /* DATA on the control stream: H3_FRAME_UNEXPECTED. */
    t_init(&t, false);
    td_buf_reset(&b);
    client_control(&b);
    td_h3_frame_append(&b, TD_H3_FRAME_DATA, "x", 1);
    TD_CHECK(feed_buf(&t, 2, &b, false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_FRAME_UNEXPECTED);
    t_free(&t);

    /* A second control stream: H3_STREAM_CREATION_ERROR. */
    t_init(&t, false);
    td_buf_reset(&b);
    client_control(&b);
    TD_CHECK_EQ_INT(feed_buf(&t, 2, &b, false), 0);
    TD_CHECK(feed(&t, 14, "\x00", 1, false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_STREAM_CREATION_ERROR);
    t_free(&t);

    /* Closing the control stream: H3_CLOSED_CRITICAL_STREAM. */
    t_init(&t, false);
    td_buf_reset(&b);
    client_control(&b);
    TD_CHECK(feed_buf(&t, 2, &b, true) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_CLOSED_CRITICAL_STREAM);
    t_free(&t);

    /* A bad SETTINGS payload (repeated id): H3_SETTINGS_ERROR. */
    t_init(&t, false);
    td_buf_reset(&b);
    td_buf_append_byte(&b, 0x00);
    td_h3_frame_append(&b, TD_H3_FRAME_SETTINGS, "\x33\x01\x33\x01", 4);
    TD_CHECK(feed_buf(&t, 2, &b, false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_SETTINGS_ERROR);
    t_free(&t);

    /* A dynamic-table insert on the QPACK encoder stream (we said capacity 0). */
    t_init(&t, false);
    static const uint8_t insert[] = {0x02, 0xc0 | 17, 0x01, 'x'}; /* insert :method=x */
    TD_CHECK(feed(&t, 6, insert, sizeof(insert), false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_QPACK_ENCODER_STREAM_ERROR);
    t_free(&t);

    /* A push stream from the client; an unknown uni stream type is just read. */
    t_init(&t, false);
    TD_CHECK_EQ_INT(feed(&t, 6, "\x21garbage", 8, true), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 6)->consumed, 8);
    TD_CHECK(feed(&t, 10, "\x01", 1, false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_STREAM_CREATION_ERROR);
    t_free(&t);
    td_buf_free(&b);
}

TD_TEST(wt_caps)
{
    /* A HEADERS frame over TD_H3_HEADERS_MAX_LEN: the stream is reset, the connection stays. */
    struct t t;
    t_init(&t, false);
    uint8_t hdr[TD_H3_FRAME_HDR_MAXLEN];
    size_t hl = td_h3_frame_hdr_encode(hdr, TD_H3_FRAME_HEADERS, TD_H3_HEADERS_MAX_LEN + 1);
    TD_CHECK_EQ_INT(feed(&t, 0, hdr, hl, false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 0)->shut_code, TD_WT_H3_EXCESSIVE_LOAD);
    TD_CHECK_EQ_INT(feed(&t, 0, "more", 4, false), 0);
    TD_CHECK_EQ_INT(t.f.closes, 0);
    /* A header list over TD_WT_MAX_HEADER_LIST (but a HEADERS frame under its cap). */
    static char longv[6000];
    memset(longv, 'v', sizeof(longv));
    nghttp3_nv fat[] = {NV(":method", "GET"),
                        NV(":path", "/"),
                        NV(":scheme", "https"),
                        {(uint8_t *)"a", (uint8_t *)longv, 1, sizeof(longv), 0},
                        {(uint8_t *)"b", (uint8_t *)longv, 1, sizeof(longv), 0},
                        {(uint8_t *)"c", (uint8_t *)longv, 1, sizeof(longv), 0}};
    struct td_buf b;
    td_buf_init(&b);
    headers_frame(&b, 4, fat, 6);
    TD_CHECK_EQ_INT(feed_buf(&t, 4, &b, false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shut_code, TD_WT_H3_EXCESSIVE_LOAD);
    t_free(&t);

    /* A SETTINGS frame over its cap: connection error. */
    t_init(&t, false);
    td_buf_reset(&b);
    td_buf_append_byte(&b, 0x00);
    hl = td_h3_frame_hdr_encode(hdr, TD_H3_FRAME_SETTINGS, TD_H3_SETTINGS_MAX_LEN + 1);
    td_buf_append(&b, hdr, hl);
    TD_CHECK(feed_buf(&t, 2, &b, false) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_EXCESSIVE_LOAD);
    t_free(&t);

    /* A CLOSE capsule over TD_H3_CAPSULE_MAX_LEN ends the session with a reset; a huge
     * unknown capsule before it is skipped without buffering. */
    t_init(&t, true);
    t_establish(&t);
    t.bytewise = false;
    td_buf_reset(&b);
    struct td_buf cap;
    td_buf_init(&cap);
    td_h3_varint_append(&cap, 41 * 7 + 23);
    td_h3_varint_append(&cap, 100000);
    static uint8_t zeros[100000];
    td_buf_append(&cap, zeros, sizeof(zeros));
    td_h3_frame_append(&b, TD_H3_FRAME_DATA, cap.data, 50000); /* capsule spans frames */
    td_h3_frame_append(&b, TD_H3_FRAME_DATA, cap.data + 50000, cap.len - 50000);
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_OPEN);
    td_buf_reset(&b);
    td_buf_reset(&cap);
    td_h3_varint_append(&cap, TD_H3_CAPSULE_CLOSE_WT_SESSION);
    td_h3_varint_append(&cap, TD_H3_CAPSULE_MAX_LEN + 1);
    td_h3_frame_append(&b, TD_H3_FRAME_DATA, cap.data, cap.len);
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_CLOSED);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK_EQ_INT(fs(&t.f, 0)->shutdowns, 1);
    TD_CHECK_EQ_INT(fs(&t.f, 0)->shut_code, TD_WT_H3_EXCESSIVE_LOAD);
    TD_CHECK_EQ_INT(t.f.closes, 0);
    td_buf_free(&cap);
    td_buf_free(&b);
    t_free(&t);
}

TD_TEST(wt_buffered_streams)
{
    /* WT streams that arrive before their CONNECT are held, then delivered in order. */
    struct t t;
    t_init(&t, false);
    static const uint8_t s4[] = {0x40, 0x41, 0x00, 'a'};
    static const uint8_t s10[] = {0x40, 0x54, 0x00, 'b'};
    TD_CHECK_EQ_INT(feed(&t, 4, s4, sizeof(s4), false), 0);
    TD_CHECK_EQ_INT(feed(&t, 10, s10, sizeof(s10), true), 0);
    TD_CHECK_EQ_INT(t.a.opens, 0);
    TD_CHECK_EQ_INT(feed(&t, 4, "c", 1, false), 0);
    struct td_buf b;
    td_buf_init(&b);
    connect_headers(&b, 0, "/echo");
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(t.a.opens, 2);
    TD_CHECK_EQ_INT(t.a.open_id, 10); /* 4 first, then 10 */
    TD_CHECK_MEM_STR(t.a.data.data, t.a.data.len, "acb");
    TD_CHECK(t.a.data_fin);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->consumed, sizeof(s4) + 1);
    t_free(&t);

    /* More than TD_WT_MAX_BUFFERED_STREAMS: the extra one is rejected; a refusal rejects
     * the rest; too many buffered bytes reject that stream. */
    t_init(&t, false);
    for (int i = 0; i <= TD_WT_MAX_BUFFERED_STREAMS; i++)
        TD_CHECK_EQ_INT(feed(&t, 4 + 4 * i, s4, sizeof(s4), false), 0);
    int64_t last = 4 + 4 * TD_WT_MAX_BUFFERED_STREAMS;
    TD_CHECK_EQ_INT(fs(&t.f, last)->shut_code, TD_WT_BUFFERED_STREAM_REJECTED);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shutdowns, 0);
    static uint8_t big[TD_WT_MAX_BUFFERED_BYTES];
    TD_CHECK_EQ_INT(feed(&t, 8, big, sizeof(big), false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 8)->shut_code, TD_WT_BUFFERED_STREAM_REJECTED);
    t.a.status = 404;
    td_buf_reset(&b);
    connect_headers(&b, 0, "/nope");
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shut_code, TD_WT_BUFFERED_STREAM_REJECTED);
    TD_CHECK_EQ_INT(fs(&t.f, 12)->shut_code, TD_WT_BUFFERED_STREAM_REJECTED);
    TD_CHECK_EQ_INT(t.a.opens, 0);
    struct td_wt_stats st;
    td_wt_stats(t.wt, &st);
    TD_CHECK_EQ_INT(st.streams_rejected, TD_WT_MAX_BUFFERED_STREAMS + 1);
    t_free(&t);

    /* After the session is up, a stream naming another session is reset. */
    t_init(&t, false);
    t_establish(&t);
    static const uint8_t other[] = {0x40, 0x41, 0x08, 'z'};
    TD_CHECK_EQ_INT(feed(&t, 4, other, sizeof(other), false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 4)->shut_code, TD_WT_H3_ID_ERROR);
    /* And a session ID that is not a client bidi ID. */
    static const uint8_t bad[] = {0x40, 0x54, 0x02};
    TD_CHECK_EQ_INT(feed(&t, 14, bad, sizeof(bad), false), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 14)->shut_code, TD_WT_H3_ID_ERROR);
    TD_CHECK_EQ_INT(t.a.opens, 0);
    TD_CHECK_EQ_INT(t.f.closes, 0);
    td_buf_free(&b);
    t_free(&t);
}

TD_TEST(wt_resets)
{
    struct t t;
    t_init(&t, false);
    t_establish(&t);
    static const uint8_t s4[] = {0x40, 0x41, 0x00};
    TD_CHECK_EQ_INT(feed(&t, 4, s4, sizeof(s4), false), 0);
    /* writer.abort(new WebTransportError({streamErrorCode: 5})) */
    TD_CHECK_EQ_INT(td_wt_on_stream_abort(t.wt, 4, UINT64_C(0x52e4a40fa8e0), true), 0);
    TD_CHECK_EQ_INT(t.a.resets, 1);
    TD_CHECK_EQ_INT(t.a.reset_code, 5);
    TD_CHECK(t.a.reset_reset);
    /* STOP_SENDING with a code outside the range (page reload): code 0. */
    TD_CHECK_EQ_INT(td_wt_on_stream_abort(t.wt, 4, TD_WT_H3_CONNECT_ERROR, false), 0);
    TD_CHECK_EQ_INT(t.a.resets, 2);
    TD_CHECK_EQ_INT(t.a.reset_code, 0);
    TD_CHECK(!t.a.reset_reset);
    TD_CHECK_EQ_INT(td_wt_stream_send(t.wt, 4, "x", 1, false), TD_EINVAL);
    /* Our reset with application code 7. */
    static const uint8_t s8[] = {0x40, 0x41, 0x00, 'q'};
    TD_CHECK_EQ_INT(feed(&t, 8, s8, sizeof(s8), false), 0);
    TD_CHECK_EQ_INT(td_wt_stream_reset(t.wt, 8, 7), 0);
    TD_CHECK_EQ_INT(fs(&t.f, 8)->shut_code, td_h3_wt_error_to_h3(7));
    TD_CHECK_EQ_INT(td_wt_stream_reset(t.wt, 8, 7), TD_EINVAL);
    size_t got = t.a.data.len;
    TD_CHECK_EQ_INT(feed(&t, 8, "dropped", 7, true), 0);
    TD_CHECK_EQ_INT(t.a.data.len, got);
    TD_CHECK_EQ_INT(fs(&t.f, 8)->consumed, sizeof(s8) + 7);
    TD_CHECK_EQ_INT(td_wt_stream_reset(t.wt, 99, 7), TD_ENOTFOUND);
    /* The application resets inside on_stream_open: the payload is not delivered. */
    t.a.reset_new = true;
    td_buf_reset(&t.a.data);
    static const uint8_t s12[] = {0x40, 0x41, 0x00, 'n', 'o'};
    TD_CHECK_EQ_INT(feed(&t, 12, s12, sizeof(s12), true), 0);
    TD_CHECK_EQ_INT(t.a.data.len, 0);
    TD_CHECK_EQ_INT(fs(&t.f, 12)->shut_code, td_h3_wt_error_to_h3(9));
    /* A stream closed by QUIC is forgotten. */
    td_wt_on_stream_close(t.wt, 12, 0);
    TD_CHECK_EQ_INT(td_wt_stream_send(t.wt, 12, "x", 1, false), TD_ENOTFOUND);
    /* Abort of a critical stream. */
    TD_CHECK(td_wt_on_stream_abort(t.wt, 6, 0x100, true) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_CLOSED_CRITICAL_STREAM);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    t_free(&t);
}

TD_TEST(wt_handler_failure)
{
    struct t t;
    t_init(&t, false);
    t_establish(&t);
    t.a.fail_data = -1;
    static const uint8_t s4[] = {0x40, 0x41, 0x00, 'x'};
    TD_CHECK(feed(&t, 4, s4, sizeof(s4), false) < 0);
    TD_CHECK_EQ_INT(t.f.closes, 1);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_INTERNAL_ERROR);
    TD_CHECK_EQ_INT(t.a.closed, 1);
    TD_CHECK(td_wt_on_stream_abort(t.wt, 4, 0, true) < 0);
    td_wt_on_stream_close(t.wt, 2, 0);
    TD_CHECK_EQ_INT(t.f.closes, 1);
    t_free(&t);

    /* Datagrams: a bad quarter ID is a connection error; without the peer's H3_DATAGRAM
     * setting we send none. */
    t_init(&t, false);
    TD_CHECK_EQ_INT(td_wt_on_ready(t.wt), 0);
    struct td_buf b;
    td_buf_init(&b);
    connect_headers(&b, 0, "/echo");
    TD_CHECK_EQ_INT(feed_buf(&t, 0, &b, false), 0);
    TD_CHECK_EQ_INT(td_wt_state(t.wt), TD_WT_OPEN);
    TD_CHECK_EQ_INT(td_wt_datagram_send(t.wt, "x", 1), TD_EINVAL);
    static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    TD_CHECK(td_wt_on_datagram(t.wt, bad, sizeof(bad)) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_DATAGRAM_ERROR);
    td_buf_free(&b);
    t_free(&t);

    /* The control stream cannot be opened. */
    t_init(&t, false);
    t.f.open_fail = TD_EAGAIN;
    TD_CHECK(td_wt_on_ready(t.wt) < 0);
    TD_CHECK_EQ_INT(t.f.close_code, TD_WT_H3_INTERNAL_ERROR);
    t_free(&t);
}

TD_TEST(wt_stream_cap)
{
    /* Peer streams beyond TD_WT_MAX_STREAMS are shut down and not tracked; closing some
     * makes room again. */
    struct t t;
    t_init(&t, false);
    for (int64_t i = 0; i < TD_WT_MAX_STREAMS; i++)
        TD_CHECK_EQ_INT(feed(&t, 4 * i + 2, "\x21", 1, false), 0);
    struct td_wt_stats st;
    td_wt_stats(t.wt, &st);
    TD_CHECK_EQ_INT(st.streams, TD_WT_MAX_STREAMS);
    int64_t extra = 4 * TD_WT_MAX_STREAMS + 2;
    struct fstream *sink = fs(&t.f, extra);
    int before = sink->shutdowns;
    TD_CHECK_EQ_INT(feed(&t, extra, "\x21", 1, false), 0);
    TD_CHECK_EQ_INT(sink->shutdowns, before + 1);
    TD_CHECK_EQ_INT(sink->shut_code, TD_WT_H3_EXCESSIVE_LOAD);
    td_wt_on_stream_close(t.wt, 2, 0);
    td_wt_stats(t.wt, &st);
    TD_CHECK_EQ_INT(st.streams, TD_WT_MAX_STREAMS - 1);
    TD_CHECK_EQ_INT(t.f.closes, 0);
    t_free(&t);
}
