/*
 * td_wt.c - HTTP/3 + WebTransport session engine (see td_wt.h for the contract).
 *
 * Design note. Every stream td_wt knows is a struct wt_stream in a hash map keyed by the
 * stream ID; it lives until td_wt_on_stream_close (or td_wt_free), so a pointer held across
 * a handler callback stays valid. A peer stream starts as K_PREFIX until its first varint(s)
 * classify it, then becomes one of:
 *
 *   K_CONTROL / K_QPACK_ENC / K_QPACK_DEC  critical uni streams (one of each; closing any
 *                                          fails the connection)
 *   K_REQUEST   a request stream until its HEADERS are handled; it then becomes K_CONNECT
 *               (the accepted session), K_DISCARD (answered and FINed) or K_DEAD (reset)
 *   K_CONNECT   the session's CONNECT stream while the session is open: DATA frames carry
 *               capsules; when the session ends it becomes K_DISCARD
 *   K_WT        a WebTransport stream of the session (peer's or ours): payload goes to the
 *               handler unless `dropped` (reset by us, or the session ended)
 *   K_WT_BUFFERED  a WT stream whose session is not established yet (in wt->buffered)
 *   K_DISCARD / K_DEAD  input read and dropped (unknown uni streams, answered requests,
 *               rejected streams)
 *
 * Invariants: wt->state moves NONE -> OPEN -> CLOSED only (a refusal leaves NONE); while OPEN,
 * the stream wt->session_id is K_CONNECT (until it closes); K_WT_BUFFERED streams exist only
 * in state NONE and are exactly those in wt->buffered; once wt->failed is set nothing is
 * sent except the single conn_close already made.
 */
#include "quic/td_wt.h"

#include <nghttp3/nghttp3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_map.h"

enum wt_kind {
    K_PREFIX,
    K_CONTROL,
    K_QPACK_ENC,
    K_QPACK_DEC,
    K_REQUEST,
    K_CONNECT,
    K_WT,
    K_WT_BUFFERED,
    K_DISCARD,
    K_DEAD,
    K_LOCAL_CONTROL, /* our control stream */
};

/* What the frame reader does with the current frame's payload. */
enum frame_mode {
    FM_HOLD,     /* buffer it whole (SETTINGS, GOAWAY..., HEADERS), capped by td_h3 */
    FM_CAPSULES, /* DATA on the CONNECT stream: feed the capsule reader */
    FM_SKIP,     /* unknown, GREASE, trailers */
};

struct wt_stream {
    int64_t id; /* the map key (its bytes) */
    enum wt_kind kind;
    bool bidi;
    bool local;
    bool fin_in;  /* nothing more comes from the peer (fin or reset, or no receive side) */
    bool fin_out; /* nothing more goes out (fin or reset, or no send side) */
    bool stopped; /* the peer sent STOP_SENDING */
    bool dropped; /* WT: reset by us or gone with the session: input is discarded */
    uint64_t session_id;
    /* prefix or frame header being assembled */
    uint8_t acc[TD_H3_FRAME_HDR_MAXLEN];
    size_t acc_len;
    /* frame reader */
    bool in_frame;
    enum frame_mode fmode;
    uint64_t ftype;
    uint64_t fleft;
    struct td_buf buf; /* FM_HOLD payload, or K_WT_BUFFERED payload */
    /* capsule reader (K_CONNECT) */
    uint8_t cacc[TD_H3_FRAME_HDR_MAXLEN];
    size_t cacc_len;
    bool in_capsule;
    bool chold;
    uint64_t ctype;
    uint64_t cleft;
    struct td_buf cbuf;
};

struct td_wt {
    const struct td_wt_ops *ops;
    void *q;
    const struct td_wt_handler *h;
    void *ud;
    struct td_map streams;
    enum td_wt_state state;
    int64_t session_id; /* -1 until a session is established */
    bool ready;
    bool failed;
    bool peer_control, peer_qenc, peer_qdec;
    bool peer_settings;
    bool peer_datagrams;
    enum td_h3_wt_version peer_version;
    struct wt_stream *buffered[TD_WT_MAX_BUFFERED_STREAMS];
    size_t nbuffered;
    nghttp3_qpack_encoder *qenc;
    nghttp3_qpack_decoder *qdec; /* only checks the peer's encoder stream */
    bool in_request;             /* inside on_session_request */
    char protocol[TD_WT_MAX_PROTOCOL_LEN];
    size_t protocol_len;
    struct td_buf scratch; /* outgoing bytes; never held across a callback */
    struct td_wt_stats stats;
};

static const uint8_t empty[1];

/* ---- streams ---- */

static struct wt_stream *wt_find(const struct td_wt *wt, int64_t id)
{
    return td_map_get(&wt->streams, (const char *)&id, sizeof(id));
}

static struct wt_stream *wt_stream_add(struct td_wt *wt, int64_t id, enum wt_kind kind, bool local)
{
    struct wt_stream *s = td_xcalloc(1, sizeof(*s));
    s->id = id;
    s->kind = kind;
    s->local = local;
    s->bidi = (id & 2) == 0;
    /* A uni stream has one direction only. */
    if (!s->bidi) {
        s->fin_in = local;
        s->fin_out = !local;
    }
    td_buf_init(&s->buf);
    td_buf_init(&s->cbuf);
    td_map_put(&wt->streams, (const char *)&s->id, sizeof(s->id), s);
    return s;
}

static void buffered_remove(struct td_wt *wt, struct wt_stream *s)
{
    for (size_t i = 0; i < wt->nbuffered; i++) {
        if (wt->buffered[i] == s) {
            /* keep arrival order: streams are handed over in the order they came */
            memmove(&wt->buffered[i], &wt->buffered[i + 1],
                    (wt->nbuffered - i - 1) * sizeof(wt->buffered[0]));
            wt->nbuffered--;
            return;
        }
    }
}

static void wt_stream_free(struct wt_stream *s)
{
    td_buf_free(&s->buf);
    td_buf_free(&s->cbuf);
    free(s);
}

/* ---- errors ---- */

/* Fails the connection once with an HTTP/3 code; an open session ends (nothing sent). */
static void session_end_conn(struct td_wt *wt);

static int wt_fail(struct td_wt *wt, uint64_t h3_code)
{
    if (!wt->failed) {
        wt->failed = true;
        wt->ops->conn_close(wt->q, h3_code);
        session_end_conn(wt);
    }
    return TD_EPROTO;
}

/* Resets a stream (both directions) and drops whatever else it brings. */
static void stream_kill(struct td_wt *wt, struct wt_stream *s, uint64_t h3_code)
{
    if (s->kind == K_WT_BUFFERED)
        buffered_remove(wt, s);
    if (!(s->fin_in && s->fin_out))
        wt->ops->stream_shutdown(wt->q, s->id, h3_code);
    s->fin_in = s->fin_out = true;
    s->kind = K_DEAD;
    s->dropped = true;
    td_buf_free(&s->buf);
    td_buf_free(&s->cbuf);
}

static void stream_reject(struct td_wt *wt, struct wt_stream *s, uint64_t h3_code)
{
    wt->stats.streams_rejected++;
    stream_kill(wt, s, h3_code);
}

/* ---- the session ---- */

enum end_how {
    END_ANSWER_FIN, /* the peer closed (CLOSE capsule or FIN): answer with FIN */
    END_RESET,      /* abrupt: shut the CONNECT stream down with the given code */
    END_SENT,       /* we already wrote CLOSE + FIN (td_wt_session_close) */
    END_GONE,       /* the CONNECT stream is closed: nothing to send on it */
    END_CONN,       /* the connection is failing: send nothing at all */
};

static void session_end(struct td_wt *wt, enum end_how how, uint64_t h3_code, uint32_t code,
                        const uint8_t *reason, size_t rlen)
{
    if (wt->state != TD_WT_OPEN)
        return;
    wt->state = TD_WT_CLOSED;
    struct wt_stream *cs = wt_find(wt, wt->session_id);
    if (cs != NULL) {
        if (how == END_ANSWER_FIN && !cs->fin_out) {
            wt->ops->stream_send(wt->q, cs->id, empty, 0, true);
        } else if (how == END_RESET && !(cs->fin_in && cs->fin_out)) {
            wt->ops->stream_shutdown(wt->q, cs->id, h3_code);
            cs->fin_in = true;
        }
        cs->fin_out = true;
        cs->kind = K_DISCARD;
    }
    if (how != END_CONN) {
        /* Every other stream of the session goes (Chromium uses H3_CONNECT_ERROR). The ops
         * do not call back, so the map is not modified while we walk it. */
        for (size_t i = 0; i < wt->streams.cap; i++) {
            if (wt->streams.slots[i].key == NULL)
                continue;
            struct wt_stream *s = wt->streams.slots[i].value;
            if (s->kind == K_WT && !s->dropped) {
                if (!(s->fin_in && s->fin_out))
                    wt->ops->stream_shutdown(wt->q, s->id, TD_WT_H3_CONNECT_ERROR);
                s->fin_in = s->fin_out = true;
                s->dropped = true;
            }
        }
    }
    wt->h->on_session_closed(wt->ud, code, reason != NULL ? reason : empty, rlen);
}

static void session_end_conn(struct td_wt *wt)
{
    session_end(wt, END_CONN, 0, 0, NULL, 0);
}

/* Rejects buffered streams: those naming session_id, or all when all is set. */
static void buffered_reject(struct td_wt *wt, uint64_t session_id, bool all)
{
    for (size_t i = 0; i < wt->nbuffered;) {
        struct wt_stream *s = wt->buffered[i];
        if (all || s->session_id == session_id)
            stream_reject(wt, s, TD_WT_BUFFERED_STREAM_REJECTED); /* removes it at i */
        else
            i++;
    }
}

/* Hands a WT stream of the open session to the application: on_stream_open, then any
 * buffered payload and fin. Returns 0 or negative (connection failed). */
static int wt_stream_deliver_open(struct td_wt *wt, struct wt_stream *s)
{
    s->kind = K_WT;
    if (wt->h->on_stream_open(wt->ud, s->id, s->bidi) != 0)
        return wt_fail(wt, TD_WT_H3_INTERNAL_ERROR);
    if (s->dropped || (s->buf.len == 0 && !s->fin_in))
        return 0;
    /* Buffered payload: hand over a private copy of the pointer range, then release it. */
    struct td_buf b = s->buf;
    td_buf_init(&s->buf);
    int rv = wt->h->on_stream_data(wt->ud, s->id, b.len > 0 ? b.data : empty, b.len, s->fin_in);
    td_buf_free(&b);
    if (rv != 0)
        return wt_fail(wt, TD_WT_H3_INTERNAL_ERROR);
    return 0;
}

/* The session was just established: deliver the streams buffered for it, reject others. */
static int buffered_flush(struct td_wt *wt)
{
    while (wt->nbuffered > 0 && wt->state == TD_WT_OPEN && !wt->failed) {
        struct wt_stream *s = wt->buffered[0];
        buffered_remove(wt, s);
        if (s->session_id != (uint64_t)wt->session_id) {
            stream_reject(wt, s, TD_WT_BUFFERED_STREAM_REJECTED);
            continue;
        }
        int rv = wt_stream_deliver_open(wt, s);
        if (rv < 0)
            return rv;
    }
    /* The session may have ended inside a callback: whatever is left cannot be served. */
    if (!wt->failed)
        buffered_reject(wt, 0, true);
    return wt->failed ? TD_EPROTO : 0;
}

/* A WT stream's prefix named session s->session_id. Returns 0 or negative. */
static int wt_stream_associate(struct td_wt *wt, struct wt_stream *s)
{
    uint64_t sid = s->session_id;
    if (wt->state == TD_WT_OPEN && sid == (uint64_t)wt->session_id)
        return wt_stream_deliver_open(wt, s);
    if (wt->state == TD_WT_NONE) {
        /* The CONNECT may still be on its way (streams are not ordered): hold a few. A
         * session ID whose stream we already know is not a pending request cannot become
         * a session. */
        struct wt_stream *cs = sid <= (uint64_t)INT64_MAX ? wt_find(wt, (int64_t)sid) : NULL;
        bool pending = cs == NULL || cs->kind == K_PREFIX || cs->kind == K_REQUEST;
        if (!pending || wt->nbuffered >= TD_WT_MAX_BUFFERED_STREAMS) {
            stream_reject(wt, s, TD_WT_BUFFERED_STREAM_REJECTED);
            return 0;
        }
        s->kind = K_WT_BUFFERED;
        wt->buffered[wt->nbuffered++] = s;
        return 0;
    }
    stream_reject(wt, s,
                  sid == (uint64_t)wt->session_id ? TD_WT_H3_CONNECT_ERROR : TD_WT_H3_ID_ERROR);
    return 0;
}

/* ---- requests ---- */

enum {
    F_METHOD,
    F_SCHEME,
    F_AUTHORITY,
    F_PATH,
    F_PROTOCOL,
    F_ORIGIN,
    F_AVAIL,
    F_COUNT,
};

struct req_fields {
    struct td_buf store;
    size_t off[F_COUNT], len[F_COUNT];
    bool have[F_COUNT];
    bool regular_seen;
    size_t total;
};

static bool name_is(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

static void field_store(struct req_fields *f, int idx, const uint8_t *v, size_t n)
{
    f->have[idx] = true;
    f->off[idx] = f->store.len;
    f->len[idx] = n;
    td_buf_append(&f->store, v, n);
}

/* Checks and records one decoded field (RFC 9114 4.2 and 4.3). Returns 0, TD_EPROTO
 * (malformed) or TD_ELIMIT (header list too large). */
static int field_add(struct req_fields *f, const uint8_t *nm, size_t nl, const uint8_t *v,
                     size_t vl)
{
    f->total += nl + vl + 32;
    if (f->total > TD_WT_MAX_HEADER_LIST)
        return TD_ELIMIT;
    if (nl == 0)
        return TD_EPROTO;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] == 0 || v[i] == '\r' || v[i] == '\n')
            return TD_EPROTO;
    }
    if (nm[0] == ':') {
        static const char *const pseudo[] = {":method", ":scheme", ":authority", ":path",
                                             ":protocol"};
        if (f->regular_seen)
            return TD_EPROTO;
        for (int i = 0; i < 5; i++) {
            if (name_is(nm, nl, pseudo[i])) {
                if (f->have[i])
                    return TD_EPROTO;
                field_store(f, i, v, vl);
                return 0;
            }
        }
        return TD_EPROTO; /* :status or an unknown pseudo-header in a request */
    }
    f->regular_seen = true;
    for (size_t i = 0; i < nl; i++) {
        uint8_t c = nm[i];
        if ((c >= 'A' && c <= 'Z') || c <= 0x20 || c >= 0x7f || c == ':')
            return TD_EPROTO;
    }
    if (name_is(nm, nl, "connection") || name_is(nm, nl, "keep-alive") ||
        name_is(nm, nl, "proxy-connection") || name_is(nm, nl, "transfer-encoding") ||
        name_is(nm, nl, "upgrade"))
        return TD_EPROTO;
    if (name_is(nm, nl, "te") && !(vl == 8 && memcmp(v, "trailers", 8) == 0))
        return TD_EPROTO;
    if (name_is(nm, nl, "origin") && !f->have[F_ORIGIN])
        field_store(f, F_ORIGIN, v, vl);
    else if (name_is(nm, nl, "wt-available-protocols") && !f->have[F_AVAIL])
        field_store(f, F_AVAIL, v, vl);
    return 0;
}

/* Decodes a HEADERS payload with a fresh QPACK decoder (capacity 0: no state to share, and
 * a decoding error leaves nghttp3's decoder unusable, so a per-request one keeps it a
 * stream error). Returns 0, TD_EPROTO or TD_ELIMIT. */
static int headers_decode(int64_t id, const uint8_t *p, size_t n, struct req_fields *f)
{
    const nghttp3_mem *mem = nghttp3_mem_default(); /* never NULL: 0.8 crashes on it */
    nghttp3_qpack_decoder *dec = NULL;
    nghttp3_qpack_stream_context *sctx = NULL;
    if (nghttp3_qpack_decoder_new(&dec, 0, 0, mem) != 0)
        return TD_ELIMIT;
    if (nghttp3_qpack_stream_context_new(&sctx, id, mem) != 0) {
        nghttp3_qpack_decoder_del(dec);
        return TD_ELIMIT;
    }
    if (n == 0)
        p = empty;
    int rv = 0;
    for (;;) {
        nghttp3_qpack_nv nv;
        uint8_t flags = 0;
        nghttp3_ssize r = nghttp3_qpack_decoder_read_request(dec, sctx, &nv, &flags, p, n, 1);
        if (r < 0 || (size_t)r > n) {
            rv = TD_EPROTO;
            break;
        }
        p += r;
        n -= (size_t)r;
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT) {
            nghttp3_vec nm = nghttp3_rcbuf_get_buf(nv.name);
            nghttp3_vec vl = nghttp3_rcbuf_get_buf(nv.value);
            rv = field_add(f, nm.base, nm.len, vl.base, vl.len);
            nghttp3_rcbuf_decref(nv.name);
            nghttp3_rcbuf_decref(nv.value);
            if (rv != 0)
                break;
        }
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_FINAL)
            break;
        if ((flags & NGHTTP3_QPACK_DECODE_FLAG_BLOCKED) ||
            (r == 0 && !(flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT))) {
            rv = TD_EPROTO;
            break;
        }
    }
    nghttp3_qpack_stream_context_del(sctx);
    nghttp3_qpack_decoder_del(dec);
    return rv;
}

static struct td_str field_str(const struct req_fields *f, int idx)
{
    if (!f->have[idx])
        return TD_STR_NULL;
    if (f->store.data == NULL) /* every stored value was empty */
        return (struct td_str){"", 0};
    return (struct td_str){(const char *)f->store.data + f->off[idx], f->len[idx]};
}

static bool str_is(struct td_str s, const char *lit)
{
    return s.p != NULL && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Writes a response HEADERS frame (QPACK: static table and literals only). */
static int send_response(struct td_wt *wt, struct wt_stream *s, int status, bool accept, bool fin)
{
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    nghttp3_nv nva[3];
    size_t nv = 0;
    nva[nv++] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0};
    if (accept) {
        nva[nv++] =
            (nghttp3_nv){(uint8_t *)"sec-webtransport-http3-draft", (uint8_t *)"draft02", 28, 7, 0};
        if (wt->protocol_len > 0)
            nva[nv++] = (nghttp3_nv){(uint8_t *)"wt-protocol", (uint8_t *)wt->protocol, 11,
                                     wt->protocol_len, 0};
    }
    const nghttp3_mem *mem = nghttp3_mem_default();
    nghttp3_buf pbuf, rbuf, ebuf;
    nghttp3_buf_init(&pbuf);
    nghttp3_buf_init(&rbuf);
    nghttp3_buf_init(&ebuf);
    int rv = nghttp3_qpack_encoder_encode(wt->qenc, &pbuf, &rbuf, &ebuf, s->id, nva, nv);
    if (rv == 0) {
        size_t plen = nghttp3_buf_len(&pbuf), rlen = nghttp3_buf_len(&rbuf);
        uint8_t hdr[TD_H3_FRAME_HDR_MAXLEN];
        size_t hl = td_h3_frame_hdr_encode(hdr, TD_H3_FRAME_HEADERS, plen + rlen);
        td_buf_reset(&wt->scratch);
        td_buf_append(&wt->scratch, hdr, hl);
        td_buf_append(&wt->scratch, pbuf.pos, plen);
        td_buf_append(&wt->scratch, rbuf.pos, rlen);
        /* Capacity 0: ebuf stays empty, there is no encoder stream to write. */
        rv = wt->ops->stream_send(wt->q, s->id, wt->scratch.data, wt->scratch.len, fin);
    } else {
        rv = TD_EINVAL;
    }
    nghttp3_buf_free(&pbuf, mem);
    nghttp3_buf_free(&rbuf, mem);
    nghttp3_buf_free(&ebuf, mem);
    if (rv == 0 && fin)
        s->fin_out = true;
    return rv;
}

/* Refuses a request: status and FIN, then its input is dropped. */
static void request_refuse(struct td_wt *wt, struct wt_stream *s, int status)
{
    wt->stats.refused++;
    s->kind = K_DISCARD;
    if (send_response(wt, s, status, false, true) != 0)
        stream_kill(wt, s, TD_WT_H3_INTERNAL_ERROR);
    if (wt->state == TD_WT_NONE)
        buffered_reject(wt, (uint64_t)s->id, false);
}

/* A whole HEADERS payload arrived on a request stream (in s->buf). Returns 0 or negative. */
static int request_headers(struct td_wt *wt, struct wt_stream *s)
{
    wt->stats.requests++;
    struct req_fields f;
    memset(&f, 0, sizeof(f));
    td_buf_init(&f.store);
    int rv = headers_decode(s->id, s->buf.data, s->buf.len, &f);
    td_buf_free(&s->buf);
    struct td_wt_request req = {
        .method = field_str(&f, F_METHOD),
        .scheme = field_str(&f, F_SCHEME),
        .authority = field_str(&f, F_AUTHORITY),
        .path = field_str(&f, F_PATH),
        .protocol = field_str(&f, F_PROTOCOL),
        .origin = field_str(&f, F_ORIGIN),
        .available_protocols = field_str(&f, F_AVAIL),
    };
    if (rv == 0) {
        bool connect = str_is(req.method, "CONNECT");
        if (req.method.n == 0 || (req.protocol.p != NULL && !connect))
            rv = TD_EPROTO;
        else if (connect && req.protocol.p != NULL)
            rv = req.scheme.p != NULL && req.path.n > 0 && req.authority.n > 0 ? 0 : TD_EPROTO;
        else if (connect)
            rv = req.scheme.p == NULL && req.path.p == NULL && req.authority.n > 0 ? 0 : TD_EPROTO;
        else
            rv = req.scheme.p != NULL && req.path.n > 0 ? 0 : TD_EPROTO;
    }
    if (rv != 0) {
        td_buf_free(&f.store);
        stream_kill(wt, s, rv == TD_ELIMIT ? TD_WT_H3_EXCESSIVE_LOAD : TD_WT_H3_MESSAGE_ERROR);
        if (wt->state == TD_WT_NONE)
            buffered_reject(wt, (uint64_t)s->id, false);
        return 0;
    }
    int status;
    if (!str_is(req.method, "CONNECT"))
        status = 404;
    else if (req.protocol.p == NULL)
        status = 405;
    else if (!str_is(req.protocol, "webtransport") && !str_is(req.protocol, "webtransport-h3"))
        status = 501;
    else if (wt->state != TD_WT_NONE)
        status = 429; /* one session per connection */
    else {
        wt->in_request = true;
        wt->protocol_len = 0;
        status = wt->h->on_session_request(wt->ud, &req);
        wt->in_request = false;
        if (status < 0) {
            td_buf_free(&f.store);
            return wt_fail(wt, TD_WT_H3_INTERNAL_ERROR);
        }
        if (status < 200 || status > 599)
            status = 500;
    }
    td_buf_free(&f.store);
    if (status >= 300) {
        request_refuse(wt, s, status);
        return 0;
    }
    /* Accepted: the session exists from here, even if the answer cannot be queued (then
     * it ends at once and on_session_closed reports it). */
    wt->state = TD_WT_OPEN;
    wt->session_id = s->id;
    s->kind = K_CONNECT;
    if (send_response(wt, s, status, true, false) != 0) {
        session_end(wt, END_RESET, TD_WT_H3_INTERNAL_ERROR, 0, NULL, 0);
        buffered_reject(wt, 0, true);
        return 0;
    }
    return buffered_flush(wt);
}

/* ---- capsules on the CONNECT stream ---- */

static int capsule_end(struct td_wt *wt, struct wt_stream *s)
{
    s->in_capsule = false;
    if (!s->chold)
        return 0;
    const uint8_t *v = s->cbuf.len > 0 ? s->cbuf.data : empty;
    size_t n = s->cbuf.len;
    if (s->ctype == TD_H3_CAPSULE_CLOSE_WT_SESSION) {
        uint32_t code;
        const uint8_t *reason;
        size_t rlen;
        if (td_h3_wt_close_decode(v, n, &code, &reason, &rlen) != 0) {
            session_end(wt, END_RESET, TD_WT_H3_MESSAGE_ERROR, 0, NULL, 0);
            return 0;
        }
        /* cbuf stays intact during the callback: the session is closed, nothing refills it. */
        session_end(wt, END_ANSWER_FIN, 0, code, reason, rlen);
        td_buf_free(&s->cbuf);
        return 0;
    }
    /* DRAIN */
    td_buf_reset(&s->cbuf);
    if (td_h3_wt_drain_decode(v, n) != 0) {
        session_end(wt, END_RESET, TD_WT_H3_MESSAGE_ERROR, 0, NULL, 0);
        return 0;
    }
    if (wt->h->on_session_drain != NULL)
        wt->h->on_session_drain(wt->ud);
    return 0;
}

/* Feeds DATA payload bytes of the CONNECT stream to the capsule reader. */
static int capsules_feed(struct td_wt *wt, struct wt_stream *s, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && s->kind == K_CONNECT && wt->state == TD_WT_OPEN && !wt->failed) {
        if (!s->in_capsule) {
            size_t k = n - off;
            if (k > sizeof(s->cacc) - s->cacc_len)
                k = sizeof(s->cacc) - s->cacc_len;
            memcpy(s->cacc + s->cacc_len, p + off, k);
            uint64_t type, len;
            size_t hl;
            if (td_h3_capsule_hdr_decode(s->cacc, s->cacc_len + k, &type, &len, &hl) != 0) {
                s->cacc_len += k; /* two varints fit in cacc: this is only a partial header */
                off += k;
                continue;
            }
            off += hl - s->cacc_len;
            s->cacc_len = 0;
            s->in_capsule = true;
            s->ctype = type;
            s->cleft = len;
            /* Only CLOSE and DRAIN are held; anything else (GREASE, DATAGRAM) is skipped by
             * its header, so its size does not matter. */
            s->chold =
                type == TD_H3_CAPSULE_CLOSE_WT_SESSION || type == TD_H3_CAPSULE_DRAIN_WT_SESSION;
            if (s->chold && len > TD_H3_CAPSULE_MAX_LEN) {
                session_end(wt, END_RESET, TD_WT_H3_EXCESSIVE_LOAD, 0, NULL, 0);
                return 0;
            }
            td_buf_reset(&s->cbuf);
        } else {
            size_t k = n - off;
            if (k > s->cleft)
                k = (size_t)s->cleft;
            if (s->chold)
                td_buf_append(&s->cbuf, p + off, k);
            off += k;
            s->cleft -= k;
        }
        if (s->in_capsule && s->cleft == 0) {
            int rv = capsule_end(wt, s);
            if (rv < 0)
                return rv;
        }
    }
    return wt->failed ? TD_EPROTO : 0;
}

/* ---- frames on control, request and CONNECT streams ---- */

static bool frame_kind(enum wt_kind k)
{
    return k == K_CONTROL || k == K_REQUEST || k == K_CONNECT;
}

/* A frame header arrived: decide what to do with its payload. Returns 0 or negative. */
static int frame_begin(struct td_wt *wt, struct wt_stream *s, const struct td_h3_frame_hdr *h)
{
    s->in_frame = true;
    s->ftype = h->type;
    s->fleft = h->len;
    s->fmode = FM_SKIP;
    td_buf_reset(&s->buf);
    bool control_frame = h->type == TD_H3_FRAME_SETTINGS || h->type == TD_H3_FRAME_GOAWAY ||
                         h->type == TD_H3_FRAME_CANCEL_PUSH || h->type == TD_H3_FRAME_MAX_PUSH_ID;
    switch (s->kind) {
    case K_CONTROL: {
        bool first = !wt->peer_settings;
        if (first && h->type != TD_H3_FRAME_SETTINGS)
            return wt_fail(wt, TD_WT_H3_MISSING_SETTINGS);
        if ((!first && h->type == TD_H3_FRAME_SETTINGS) || h->type == TD_H3_FRAME_DATA ||
            h->type == TD_H3_FRAME_HEADERS || h->type == TD_H3_FRAME_PUSH_PROMISE)
            return wt_fail(wt, TD_WT_H3_FRAME_UNEXPECTED);
        if (control_frame)
            s->fmode = FM_HOLD;
        return 0;
    }
    case K_REQUEST:
        if (h->type == TD_H3_FRAME_DATA || h->type == TD_H3_FRAME_PUSH_PROMISE || control_frame)
            return wt_fail(wt, TD_WT_H3_FRAME_UNEXPECTED);
        if (h->type == TD_H3_FRAME_HEADERS)
            s->fmode = FM_HOLD;
        return 0;
    default: /* K_CONNECT */
        if (h->type == TD_H3_FRAME_PUSH_PROMISE || control_frame)
            return wt_fail(wt, TD_WT_H3_FRAME_UNEXPECTED);
        if (h->type == TD_H3_FRAME_DATA)
            s->fmode = FM_CAPSULES;
        return 0; /* trailers (HEADERS) and unknown frames are skipped */
    }
}

/* A held frame payload is complete. Returns 0 or negative. */
static int frame_end(struct td_wt *wt, struct wt_stream *s)
{
    s->in_frame = false;
    if (s->fmode != FM_HOLD)
        return 0;
    const uint8_t *p = s->buf.len > 0 ? s->buf.data : empty;
    if (s->kind == K_REQUEST)
        return request_headers(wt, s);
    /* K_CONTROL */
    if (s->ftype == TD_H3_FRAME_SETTINGS) {
        struct td_h3_settings set;
        int rv = td_h3_settings_decode(p, s->buf.len, &set);
        td_buf_free(&s->buf);
        if (rv != 0)
            return wt_fail(wt, rv == TD_ELIMIT ? TD_WT_H3_EXCESSIVE_LOAD : TD_WT_H3_SETTINGS_ERROR);
        wt->peer_settings = true;
        wt->peer_version = td_h3_settings_wt_version(&set);
        wt->peer_datagrams =
            ((set.present & TD_H3_SET_H3_DATAGRAM) && set.h3_datagram == 1) ||
            ((set.present & TD_H3_SET_H3_DATAGRAM_DRAFT04) && set.h3_datagram_draft04 == 1);
        return 0;
    }
    /* GOAWAY, CANCEL_PUSH, MAX_PUSH_ID: one varint each; we never push and serve one
     * session, so only the format matters. */
    uint64_t v;
    int rv = td_h3_goaway_decode(p, s->buf.len, &v);
    td_buf_free(&s->buf);
    return rv == 0 ? 0 : wt_fail(wt, TD_WT_H3_FRAME_ERROR);
}

/* Feeds bytes to the frame reader; stops early when the stream changes to a non-frame kind
 * (answered request). Returns 0 with *used set, or negative. */
static int frames_feed(struct td_wt *wt, struct wt_stream *s, const uint8_t *p, size_t n,
                       size_t *used)
{
    size_t off = 0;
    while (off < n && frame_kind(s->kind) && !wt->failed) {
        if (!s->in_frame) {
            size_t k = n - off;
            if (k > sizeof(s->acc) - s->acc_len)
                k = sizeof(s->acc) - s->acc_len;
            memcpy(s->acc + s->acc_len, p + off, k);
            struct td_h3_frame_hdr h;
            int rv = td_h3_frame_hdr_decode(s->acc, s->acc_len + k, &h);
            if (rv == TD_EAGAIN) {
                s->acc_len += k;
                off += k;
                continue;
            }
            if (rv == TD_EPROTO) {
                uint64_t type = 0;
                size_t tl;
                td_h3_varint_decode(s->acc, s->acc_len + k, &type, &tl);
                bool h2 = type == 0x02 || type == 0x06 || type == 0x08 || type == 0x09;
                return wt_fail(wt, h2 ? TD_WT_H3_FRAME_UNEXPECTED : TD_WT_H3_FRAME_ERROR);
            }
            if (rv != 0) { /* TD_ELIMIT: SETTINGS or HEADERS over the cap */
                if (s->kind == K_CONTROL)
                    return wt_fail(wt, TD_WT_H3_EXCESSIVE_LOAD);
                if (s->kind == K_CONNECT) {
                    session_end(wt, END_RESET, TD_WT_H3_EXCESSIVE_LOAD, 0, NULL, 0);
                } else {
                    stream_kill(wt, s, TD_WT_H3_EXCESSIVE_LOAD);
                    if (wt->state == TD_WT_NONE)
                        buffered_reject(wt, (uint64_t)s->id, false);
                }
                break;
            }
            off += h.hdr_len - s->acc_len;
            s->acc_len = 0;
            rv = frame_begin(wt, s, &h);
            if (rv < 0)
                return rv;
        } else {
            size_t k = n - off;
            if (k > s->fleft)
                k = (size_t)s->fleft;
            if (s->fmode == FM_HOLD) {
                td_buf_append(&s->buf, p + off, k);
            } else if (s->fmode == FM_CAPSULES) {
                int rv = capsules_feed(wt, s, p + off, k);
                if (rv < 0)
                    return rv;
            }
            off += k;
            s->fleft -= k;
        }
        if (s->in_frame && s->fleft == 0) {
            int rv = frame_end(wt, s);
            if (rv < 0)
                return rv;
        }
    }
    *used = off;
    return wt->failed ? TD_EPROTO : 0;
}

/* ---- peer stream input ---- */

/* Classifies a peer stream from its first bytes. Returns 0 with *used, or negative. */
static int prefix_feed(struct td_wt *wt, struct wt_stream *s, const uint8_t *p, size_t n,
                       size_t *used)
{
    size_t k = n;
    if (k > sizeof(s->acc) - s->acc_len)
        k = sizeof(s->acc) - s->acc_len;
    memcpy(s->acc + s->acc_len, p, k);
    struct td_h3_stream_prefix pf;
    int rv = td_h3_stream_prefix_decode(s->acc, s->acc_len + k, s->bidi, &pf);
    if (rv == TD_EAGAIN) {
        s->acc_len += k;
        *used = k;
        return 0;
    }
    if (rv != 0) { /* a session ID that is not a client bidi stream ID */
        *used = k;
        s->acc_len = 0;
        stream_reject(wt, s, TD_WT_H3_ID_ERROR);
        return 0;
    }
    size_t old = s->acc_len;
    s->acc_len = 0;
    if (pf.kind == TD_H3_STREAM_REQUEST) {
        /* Frames start at offset 0: replay the bytes held so far, then the input. */
        uint8_t held[sizeof(s->acc)];
        memcpy(held, s->acc, old);
        s->kind = K_REQUEST;
        *used = 0;
        size_t u = 0;
        return old > 0 ? frames_feed(wt, s, held, old, &u) : 0;
    }
    *used = pf.len - old;
    switch (pf.kind) {
    case TD_H3_STREAM_CONTROL:
        if (wt->peer_control)
            return wt_fail(wt, TD_WT_H3_STREAM_CREATION_ERROR);
        wt->peer_control = true;
        s->kind = K_CONTROL;
        return 0;
    case TD_H3_STREAM_PUSH: /* only servers push */
        return wt_fail(wt, TD_WT_H3_STREAM_CREATION_ERROR);
    case TD_H3_STREAM_QPACK_ENCODER:
        if (wt->peer_qenc)
            return wt_fail(wt, TD_WT_H3_STREAM_CREATION_ERROR);
        wt->peer_qenc = true;
        s->kind = K_QPACK_ENC;
        return 0;
    case TD_H3_STREAM_QPACK_DECODER:
        if (wt->peer_qdec)
            return wt_fail(wt, TD_WT_H3_STREAM_CREATION_ERROR);
        wt->peer_qdec = true;
        s->kind = K_QPACK_DEC;
        return 0;
    case TD_H3_STREAM_WT_BIDI:
    case TD_H3_STREAM_WT_UNI:
        s->session_id = pf.session_id;
        return wt_stream_associate(wt, s);
    default: /* unknown or GREASE stream type: read and discard */
        s->kind = K_DISCARD;
        return 0;
    }
}

/* Delivers payload of a WT stream (fin included). Returns 0 or negative. */
static int wt_data(struct td_wt *wt, struct wt_stream *s, const uint8_t *p, size_t n, bool fin)
{
    if (fin)
        s->fin_in = true;
    if (s->dropped)
        return 0;
    if (wt->h->on_stream_data(wt->ud, s->id, n > 0 ? p : empty, n, fin) != 0)
        return wt_fail(wt, TD_WT_H3_INTERNAL_ERROR);
    return 0;
}

/* Buffers payload of a WT stream whose session is not established yet. */
static void wt_buffer(struct td_wt *wt, struct wt_stream *s, const uint8_t *p, size_t n, bool fin)
{
    if (s->buf.len + n > TD_WT_MAX_BUFFERED_BYTES) {
        stream_reject(wt, s, TD_WT_BUFFERED_STREAM_REJECTED);
        return;
    }
    td_buf_append(&s->buf, p, n);
    if (fin)
        s->fin_in = true;
}

/* The peer ended a stream cleanly: what that means per kind. Returns 0 or negative. */
static int stream_fin(struct td_wt *wt, struct wt_stream *s)
{
    bool truncated = s->acc_len > 0 || s->in_frame;
    switch (s->kind) {
    case K_CONTROL:
    case K_QPACK_ENC:
    case K_QPACK_DEC:
        return wt_fail(wt, TD_WT_H3_CLOSED_CRITICAL_STREAM);
    case K_REQUEST:
        if (truncated)
            return wt_fail(wt, TD_WT_H3_FRAME_ERROR);
        stream_kill(wt, s, TD_WT_H3_REQUEST_INCOMPLETE);
        if (wt->state == TD_WT_NONE)
            buffered_reject(wt, (uint64_t)s->id, false);
        return 0;
    case K_CONNECT:
        s->fin_in = true;
        if (truncated)
            return wt_fail(wt, TD_WT_H3_FRAME_ERROR);
        if (s->in_capsule || s->cacc_len > 0)
            session_end(wt, END_RESET, TD_WT_H3_MESSAGE_ERROR, 0, NULL, 0);
        else
            session_end(wt, END_ANSWER_FIN, 0, 0, NULL, 0); /* a bare FIN is close(0, "") */
        return 0;
    case K_WT:
        return s->fin_in ? 0 : wt_data(wt, s, empty, 0, true);
    case K_WT_BUFFERED:
        s->fin_in = true;
        return 0;
    case K_PREFIX: /* ended before it said what it is */
        if (s->bidi) {
            /* a request without HEADERS (or a cut WT prefix) */
            stream_kill(wt, s, TD_WT_H3_REQUEST_INCOMPLETE);
            return 0;
        }
        s->kind = K_DEAD;
        s->fin_in = true;
        return 0;
    default:
        s->fin_in = true;
        return 0;
    }
}

static int stream_input(struct td_wt *wt, struct wt_stream *s, const uint8_t *p, size_t n, bool fin)
{
    while (n > 0 && !wt->failed) {
        size_t used = n;
        int rv = 0;
        enum wt_kind kind = s->kind;
        switch (kind) {
        case K_PREFIX:
            rv = prefix_feed(wt, s, p, n, &used);
            break;
        case K_CONTROL:
        case K_REQUEST:
        case K_CONNECT:
            rv = frames_feed(wt, s, p, n, &used);
            break;
        case K_QPACK_ENC: {
            /* Capacity 0: only "Set Dynamic Table Capacity 0" is legal; nghttp3's decoder,
             * built with a hard maximum of 0, rejects everything else. */
            nghttp3_ssize r = nghttp3_qpack_decoder_read_encoder(wt->qdec, p, n);
            if (r < 0)
                return wt_fail(wt, TD_WT_QPACK_ENCODER_STREAM_ERROR);
            break;
        }
        case K_WT:
            return wt_data(wt, s, p, n, fin);
        case K_WT_BUFFERED:
            wt_buffer(wt, s, p, n, fin);
            return 0;
        default: /* K_QPACK_DEC (capacity 0: nothing to track), K_DISCARD, K_DEAD */
            break;
        }
        if (rv < 0)
            return rv;
        if (used == 0 && s->kind == kind)
            break; /* no progress: cannot happen, but never loop forever */
        p += used;
        n -= used;
    }
    if (wt->failed)
        return TD_EPROTO;
    return fin ? stream_fin(wt, s) : 0;
}

/* ---- public: lifecycle and input ---- */

struct td_wt *td_wt_new(const struct td_wt_ops *ops, void *q, const struct td_wt_handler *h,
                        void *ud)
{
    struct td_wt *wt = td_xcalloc(1, sizeof(*wt));
    wt->ops = ops;
    wt->q = q;
    wt->h = h;
    wt->ud = ud;
    wt->session_id = -1;
    td_map_init(&wt->streams);
    td_buf_init(&wt->scratch);
    const nghttp3_mem *mem = nghttp3_mem_default();
    if (nghttp3_qpack_encoder_new(&wt->qenc, 0, mem) != 0 ||
        nghttp3_qpack_decoder_new(&wt->qdec, 0, 0, mem) != 0) {
        fprintf(stderr, "td_wt: out of memory\n");
        abort();
    }
    return wt;
}

void td_wt_free(struct td_wt *wt)
{
    if (wt == NULL)
        return;
    for (size_t i = 0; i < wt->streams.cap; i++) {
        if (wt->streams.slots[i].key != NULL)
            wt_stream_free(wt->streams.slots[i].value);
    }
    td_map_free(&wt->streams);
    td_buf_free(&wt->scratch);
    nghttp3_qpack_encoder_del(wt->qenc);
    nghttp3_qpack_decoder_del(wt->qdec);
    free(wt);
}

int td_wt_on_ready(struct td_wt *wt)
{
    if (wt->failed)
        return TD_EPROTO;
    if (wt->ready)
        return 0;
    wt->ready = true;
    int64_t id;
    if (wt->ops->stream_open(wt->q, false, &id) != 0 || wt_find(wt, id) != NULL)
        return wt_fail(wt, TD_WT_H3_INTERNAL_ERROR);
    struct td_h3_settings set;
    td_h3_settings_server_default(&set, 1);
    td_buf_reset(&wt->scratch);
    if (td_h3_control_stream_open_append(&wt->scratch, &set) != 0 ||
        wt->ops->stream_send(wt->q, id, wt->scratch.data, wt->scratch.len, false) != 0)
        return wt_fail(wt, TD_WT_H3_INTERNAL_ERROR);
    wt_stream_add(wt, id, K_LOCAL_CONTROL, true);
    return 0;
}

int td_wt_on_stream_data(struct td_wt *wt, int64_t id, const uint8_t *p, size_t n, bool fin)
{
    if (wt->failed)
        return TD_EPROTO;
    if (n == 0)
        p = empty;
    struct wt_stream *s = wt_find(wt, id);
    int rv = 0;
    if (s == NULL && (id & 1) == 0 && id >= 0) {
        if (wt->streams.count >= TD_WT_MAX_STREAMS) {
            wt->ops->stream_shutdown(wt->q, id, TD_WT_H3_EXCESSIVE_LOAD);
        } else {
            s = wt_stream_add(wt, id, K_PREFIX, false);
        }
    }
    if (s != NULL && !s->fin_in)
        rv = stream_input(wt, s, p, n, fin);
    if (wt->failed)
        return TD_EPROTO;
    if (n > 0)
        wt->ops->stream_consumed(wt->q, id, n);
    return rv;
}

int td_wt_on_stream_abort(struct td_wt *wt, int64_t id, uint64_t h3_code, bool reset)
{
    if (wt->failed)
        return TD_EPROTO;
    struct wt_stream *s = wt_find(wt, id);
    if (s == NULL)
        return 0;
    uint32_t app = 0;
    switch (s->kind) {
    case K_CONTROL:
    case K_QPACK_ENC:
    case K_QPACK_DEC:
    case K_LOCAL_CONTROL:
        return wt_fail(wt, TD_WT_H3_CLOSED_CRITICAL_STREAM);
    case K_CONNECT:
        if (reset)
            s->fin_in = true;
        session_end(wt, END_RESET, TD_WT_H3_CONNECT_ERROR, 0, NULL, 0);
        return 0;
    case K_WT:
        if (reset)
            s->fin_in = true;
        else
            s->stopped = true;
        if (s->dropped)
            return 0;
        if (td_h3_wt_error_from_h3(h3_code, &app) != 0)
            app = 0;
        wt->h->on_stream_reset(wt->ud, id, app, reset);
        return 0;
    case K_WT_BUFFERED:
        if (reset) {
            buffered_remove(wt, s);
            s->kind = K_DEAD;
            s->fin_in = true;
            td_buf_free(&s->buf);
        } else {
            s->stopped = true;
        }
        return 0;
    default: /* K_PREFIX (cannot be associated), K_REQUEST, K_DISCARD, K_DEAD */
        if (reset) {
            bool request = s->kind == K_REQUEST;
            s->kind = K_DEAD;
            s->fin_in = true;
            if (request && wt->state == TD_WT_NONE)
                buffered_reject(wt, (uint64_t)s->id, false);
        }
        return 0;
    }
}

void td_wt_on_stream_close(struct td_wt *wt, int64_t id, uint64_t h3_code)
{
    (void)h3_code;
    struct wt_stream *s = wt_find(wt, id);
    if (s == NULL)
        return;
    if (!wt->failed) {
        switch (s->kind) {
        case K_CONTROL:
        case K_QPACK_ENC:
        case K_QPACK_DEC:
        case K_LOCAL_CONTROL:
            wt_fail(wt, TD_WT_H3_CLOSED_CRITICAL_STREAM);
            break;
        case K_CONNECT:
            s->fin_in = s->fin_out = true;
            session_end(wt, END_GONE, 0, 0, NULL, 0);
            break;
        case K_REQUEST:
            if (wt->state == TD_WT_NONE)
                buffered_reject(wt, (uint64_t)s->id, false);
            break;
        default:
            break;
        }
    }
    buffered_remove(wt, s);
    td_map_del(&wt->streams, (const char *)&id, sizeof(id));
    wt_stream_free(s);
}

int td_wt_on_datagram(struct td_wt *wt, const uint8_t *p, size_t n)
{
    if (wt->failed)
        return TD_EPROTO;
    uint64_t sid;
    const uint8_t *payload;
    size_t len;
    if (n == 0 || td_h3_datagram_decode(p, n, &sid, &payload, &len) != 0)
        return wt_fail(wt, TD_WT_H3_DATAGRAM_ERROR);
    if (wt->state != TD_WT_OPEN || sid != (uint64_t)wt->session_id) {
        wt->stats.datagrams_dropped++;
        return 0;
    }
    wt->stats.datagrams_in++;
    wt->h->on_datagram(wt->ud, len > 0 ? payload : empty, len);
    return 0;
}

/* ---- public: application API ---- */

int td_wt_session_set_protocol(struct td_wt *wt, const char *p, size_t n)
{
    if (!wt->in_request || n == 0)
        return TD_EINVAL;
    if (n + 2 > TD_WT_MAX_PROTOCOL_LEN)
        return TD_ELIMIT;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return TD_EINVAL;
    }
    /* An sf-string (RFC 8941 3.3.3): the value in double quotes. */
    wt->protocol[0] = '"';
    memcpy(wt->protocol + 1, p, n);
    wt->protocol[n + 1] = '"';
    wt->protocol_len = n + 2;
    return 0;
}

/* The live WT stream id of the open session, or NULL with *err set. */
static struct wt_stream *app_stream(struct td_wt *wt, int64_t id, int *err)
{
    if (wt->state != TD_WT_OPEN) {
        *err = TD_EINVAL;
        return NULL;
    }
    struct wt_stream *s = wt_find(wt, id);
    if (s == NULL || s->kind != K_WT || s->session_id != (uint64_t)wt->session_id) {
        *err = TD_ENOTFOUND;
        return NULL;
    }
    return s;
}

int td_wt_stream_open(struct td_wt *wt, bool bidi, int64_t *id)
{
    if (wt->state != TD_WT_OPEN)
        return TD_EINVAL;
    if (wt->streams.count >= TD_WT_MAX_STREAMS)
        return TD_ELIMIT;
    int64_t sid;
    int rv = wt->ops->stream_open(wt->q, bidi, &sid);
    if (rv != 0)
        return rv;
    if (wt_find(wt, sid) != NULL)
        return TD_EINVAL; /* the ops reused a live ID: refuse rather than corrupt the map */
    uint8_t prefix[2 * TD_H3_VARINT_MAXLEN];
    size_t pl = td_h3_wt_stream_prefix_encode(prefix, bidi, (uint64_t)wt->session_id);
    rv = wt->ops->stream_send(wt->q, sid, prefix, pl, false);
    if (rv != 0) {
        wt->ops->stream_shutdown(wt->q, sid, TD_WT_H3_INTERNAL_ERROR);
        return rv;
    }
    struct wt_stream *s = wt_stream_add(wt, sid, K_WT, true);
    s->session_id = (uint64_t)wt->session_id;
    *id = sid;
    return 0;
}

int td_wt_stream_send(struct td_wt *wt, int64_t id, const void *p, size_t n, bool fin)
{
    int err;
    struct wt_stream *s = app_stream(wt, id, &err);
    if (s == NULL)
        return err;
    if (s->fin_out || s->dropped || s->stopped)
        return TD_EINVAL;
    int rv = wt->ops->stream_send(wt->q, id, n > 0 ? p : empty, n, fin);
    if (rv == 0 && fin)
        s->fin_out = true;
    return rv;
}

int td_wt_stream_reset(struct td_wt *wt, int64_t id, uint32_t wt_code)
{
    int err;
    struct wt_stream *s = app_stream(wt, id, &err);
    if (s == NULL)
        return err;
    if (s->dropped)
        return TD_EINVAL;
    wt->ops->stream_shutdown(wt->q, id, td_h3_wt_error_to_h3(wt_code));
    s->fin_in = s->fin_out = true;
    s->dropped = true;
    return 0;
}

int td_wt_datagram_send(struct td_wt *wt, const void *p, size_t n)
{
    if (wt->state != TD_WT_OPEN || !wt->peer_datagrams)
        return TD_EINVAL;
    uint8_t hdr[TD_H3_VARINT_MAXLEN];
    size_t hl = td_h3_datagram_hdr_encode(hdr, (uint64_t)wt->session_id);
    td_buf_reset(&wt->scratch);
    td_buf_append(&wt->scratch, hdr, hl);
    if (n > 0)
        td_buf_append(&wt->scratch, p, n);
    int rv = wt->ops->datagram_send(wt->q, wt->scratch.data, wt->scratch.len);
    if (rv == 0)
        wt->stats.datagrams_out++;
    return rv;
}

/* Sends one capsule (already encoded in cap) in a DATA frame on the CONNECT stream. */
static int capsule_send(struct td_wt *wt, const struct td_buf *cap, bool fin)
{
    td_buf_reset(&wt->scratch);
    td_h3_frame_append(&wt->scratch, TD_H3_FRAME_DATA, cap->data, cap->len);
    return wt->ops->stream_send(wt->q, wt->session_id, wt->scratch.data, wt->scratch.len, fin);
}

int td_wt_session_close(struct td_wt *wt, uint32_t code, const char *reason, size_t n)
{
    if (wt->state != TD_WT_OPEN)
        return TD_EINVAL;
    if (n > TD_H3_WT_CLOSE_REASON_MAX)
        return TD_ELIMIT;
    struct td_buf cap;
    td_buf_init(&cap);
    td_h3_wt_close_append(&cap, code, n > 0 ? reason : "", n);
    int rv = capsule_send(wt, &cap, true);
    td_buf_free(&cap);
    /* Capsule + FIN only: a STOP_SENDING in the same flight makes Chromium drop the capsule. */
    enum end_how how = END_SENT;
    if (rv != 0)
        how = END_RESET;
    session_end(wt, how, TD_WT_H3_CONNECT_ERROR, code, (const uint8_t *)(n > 0 ? reason : ""), n);
    return 0;
}

int td_wt_session_drain(struct td_wt *wt)
{
    if (wt->state != TD_WT_OPEN)
        return TD_EINVAL;
    struct td_buf cap;
    td_buf_init(&cap);
    td_h3_wt_drain_append(&cap);
    int rv = capsule_send(wt, &cap, false);
    td_buf_free(&cap);
    return rv;
}

/* ---- public: inspection ---- */

enum td_wt_state td_wt_state(const struct td_wt *wt)
{
    return wt->state;
}

int64_t td_wt_session_id(const struct td_wt *wt)
{
    return wt->session_id;
}

enum td_h3_wt_version td_wt_peer_version(const struct td_wt *wt)
{
    return wt->peer_version;
}

void td_wt_stats(const struct td_wt *wt, struct td_wt_stats *out)
{
    *out = wt->stats;
    out->streams = wt->streams.count;
}
