#include "io/td_server.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/td_jwt.h"
#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "core/td_wheel.h"
#include "http/td_api.h"
#include "http/td_http1.h"
#include "http/td_metrics.h"
#include "http/td_static.h"
#include "core/td_base64.h"
#include "http/td_ws.h"
#include "tls/td_tls.h"
#include "io/td_wtsrv.h"

#define CONN_CLOSE_TIMEOUT_MS 5000
#define CONN_MAX_IOV 1024
/* TLS: plaintext encrypted per flush round (then written before more is encrypted, so the
 * session's ciphertext buffer stays small), and the shared decryption buffer. */
#define CONN_TLS_CHUNK 65536
#define CONN_TLS_PLAIN 65536

enum conn_state { CONN_HTTP, CONN_WS, CONN_STREAM, CONN_CLOSING };

/* What a STREAM connection sends (td_conn.emu_kind). */
enum conn_emu_kind { EMU_STREAM_JSON, EMU_STREAM_PB, EMU_SSE };

/* One queued output: an optional WebSocket frame header, then the shared buffer. */
struct outq_entry {
    struct td_rbuf *rb;
    uint32_t done; /* bytes of (hdr + rb) already written */
    uint8_t hlen;
    uint8_t hdr[10];
};

struct td_conn {
    uv_tcp_t tcp;
    struct td_wheel_node deadline; /* the one pending deadline; meaning depends on state */
    struct td_server *srv;
    struct td_conn *prev, *next;
    struct td_conn *flush_next;
    enum conn_state state;
    bool in_flush;
    bool tick_due; /* the client's timer fired: run td_client_tick after this poll phase */
    bool writing;
    bool shutdown_sent;
    bool destroyed;
    int open_handles;
    struct td_buf in;
    struct outq_entry *q;
    uint32_t qhead, qlen, qcap;
    uint64_t out_bytes;
    struct td_ws_decoder ws;
    struct td_client *client;
    uint8_t ws_opcode;
    uint8_t emu_kind;                 /* STREAM: enum conn_emu_kind */
    const struct td_emu_session *emu; /* STREAM: the session, NULL once it is forgotten */
    struct api_wait *api_wait;        /* HTTP: an API answer still to come; input is held */
    struct td_yconn *yconn;           /* WS of a y-websocket client: its room handle */
    int64_t y_next_ping;              /* yjs: when the next WebSocket ping is due */
    int64_t y_last_out;               /* yjs: when a message was last queued */
    bool y_pong_wait;                 /* yjs: a ping is unanswered */
    struct td_tls *tls;               /* TLS session; NULL on a plaintext connection */
    size_t tls_pending;               /* TLS: ciphertext in the session, counted in out_bytes */
    bool tls_started;                 /* TLS: the first bytes were checked for a ClientHello */
};

/* An API request waiting for the store; conn is NULL once the connection is gone. */
struct api_wait {
    struct td_conn *conn;
    bool keep_alive;
    bool in_call; /* td_api_call has not returned yet */
    bool answered;
};

struct write_req {
    uv_write_t req;
    struct td_conn *conn;
    struct outq_entry *entries;
    uint32_t n;
    uint64_t bytes;
    uint8_t *cipher; /* TLS: a copy of the ciphertext written (entries is then NULL) */
};

static const struct td_transport_ops conn_ws_ops;
static const struct td_yconn_ops conn_yjs_ops;
static void on_flush_idle(uv_idle_t *h);
static void conn_emu_forget(struct td_conn *c);

static int64_t conn_now(const struct td_conn *c)
{
    return (int64_t)uv_now(c->srv->loop);
}

/* ---- output ------------------------------------------------------------------------ */

static void conn_want_flush(struct td_conn *c)
{
    if (c->in_flush || c->destroyed)
        return;
    c->in_flush = true;
    c->flush_next = c->srv->flush_head;
    /* An active idle handle makes the next poll non-blocking, so output queued outside the
     * poll phase (timers) is written in this loop iteration, not after the next event. */
    if (c->srv->flush_head == NULL)
        uv_idle_start(&c->srv->flush_idle, on_flush_idle);
    c->srv->flush_head = c;
}

/* Queues rb (taking a new reference) behind hdr[0..hlen). */
static void conn_enqueue(struct td_conn *c, const uint8_t *hdr, size_t hlen, struct td_rbuf *rb)
{
    if (c->destroyed)
        return;
    if (c->qhead + c->qlen == c->qcap) {
        if (c->qhead > 0) {
            memmove(c->q, c->q + c->qhead, c->qlen * sizeof(*c->q));
            c->qhead = 0;
        } else {
            c->qcap = c->qcap ? c->qcap * 2 : 2;
            c->q = td_xrealloc(c->q, c->qcap * sizeof(*c->q));
        }
    }
    struct outq_entry *e = &c->q[c->qhead + c->qlen++];
    e->rb = td_rbuf_ref(rb);
    e->done = 0;
    e->hlen = (uint8_t)hlen;
    if (hlen)
        memcpy(e->hdr, hdr, hlen);
    c->out_bytes += hlen + rb->len;
    conn_want_flush(c);
}

static void conn_enqueue_buf(struct td_conn *c, const struct td_buf *b)
{
    struct td_rbuf *rb = td_rbuf_from(b->data, b->len);
    conn_enqueue(c, NULL, 0, rb);
    td_rbuf_unref(rb);
}

static size_t entry_iov(struct outq_entry *e, uv_buf_t *iov)
{
    size_t n = 0;
    if (e->done < e->hlen) {
        iov[n++] = uv_buf_init((char *)e->hdr + e->done, (unsigned)(e->hlen - e->done));
        if (e->rb->len)
            iov[n++] = uv_buf_init((char *)e->rb->data, e->rb->len);
    } else if (e->done - e->hlen < e->rb->len) {
        uint32_t skip = e->done - e->hlen;
        iov[n++] = uv_buf_init((char *)e->rb->data + skip, e->rb->len - skip);
    }
    return n;
}

static void conn_destroy(struct td_conn *c);
static void conn_after_drain(struct td_conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct td_conn *c = w->conn;
    for (uint32_t i = 0; i < w->n; i++)
        td_rbuf_unref(w->entries[i].rb);
    free(w->entries);
    free(w->cipher);
    if (!c->destroyed) {
        c->out_bytes -= w->bytes;
        c->srv->bytes_out += w->bytes;
    }
    free(w);
    c->writing = false;
    if (c->destroyed)
        return;
    if (status < 0) {
        conn_destroy(c);
        return;
    }
    conn_want_flush(c);
}

/* Drops `written` bytes from the front of the queue: whole entries, then part of one. */
static void conn_consume(struct td_conn *c, size_t written)
{
    c->srv->bytes_out += written;
    c->out_bytes -= written;
    while (c->qlen > 0 && written > 0) {
        struct outq_entry *e = &c->q[c->qhead];
        size_t left = e->hlen + e->rb->len - e->done;
        if (written >= left) {
            written -= left;
            td_rbuf_unref(e->rb);
            c->qhead++;
            c->qlen--;
        } else {
            e->done += (uint32_t)written;
            written = 0;
        }
    }
    if (c->qlen == 0)
        c->qhead = 0;
}

/*
 * Copies whole pending entries into the loop's cork buffer; returns the bytes copied (0 if
 * the first entry alone is larger than the buffer: such big messages go out by iovec).
 */
static size_t conn_cork(struct td_conn *c)
{
    uint8_t *cork = c->srv->cork;
    size_t n = 0;
    for (uint32_t i = 0; i < c->qlen; i++) {
        const struct outq_entry *e = &c->q[c->qhead + i];
        size_t left = e->hlen + e->rb->len - e->done;
        if (n + left > sizeof(c->srv->cork))
            break;
        if (e->done < e->hlen) {
            memcpy(cork + n, e->hdr + e->done, e->hlen - e->done);
            n += e->hlen - e->done;
            memcpy(cork + n, e->rb->data, e->rb->len);
            n += e->rb->len;
        } else {
            size_t skip = e->done - e->hlen;
            memcpy(cork + n, e->rb->data + skip, e->rb->len - skip);
            n += e->rb->len - skip;
        }
    }
    return n;
}

/* ---- TLS output --------------------------------------------------------------------- */

/* Counts in out_bytes the ciphertext the session holds: besides what conn_tls_encrypt makes,
 * handshake flights, session tickets and alerts appear there. */
static void conn_tls_sync(struct td_conn *c)
{
    size_t n;
    (void)td_tls_out(c->tls, &n);
    c->out_bytes = c->out_bytes - c->tls_pending + n;
    c->tls_pending = n;
}

/* Encrypts up to CONN_TLS_CHUNK bytes from the front of the queue in one td_tls_writev (small
 * frames share records) and drops them from the queue. Returns 0 or the session's error. */
static int conn_tls_encrypt(struct td_conn *c)
{
    struct iovec iov[CONN_MAX_IOV];
    size_t niov = 0, total = 0;
    for (uint32_t i = 0; i < c->qlen && niov + 2 <= CONN_MAX_IOV && total < CONN_TLS_CHUNK; i++) {
        uv_buf_t b[2];
        size_t k = entry_iov(&c->q[c->qhead + i], b);
        for (size_t j = 0; j < k && total < CONN_TLS_CHUNK; j++) {
            size_t len = b[j].len < CONN_TLS_CHUNK - total ? b[j].len : CONN_TLS_CHUNK - total;
            iov[niov++] = (struct iovec){.iov_base = b[j].base, .iov_len = len};
            total += len;
        }
    }
    int rv = td_tls_writev(c->tls, iov, niov);
    if (rv < 0)
        return rv;
    c->out_bytes -= total;
    /* Drop what was encrypted, and entries with nothing left (empty buffers too). */
    while (c->qlen > 0) {
        struct outq_entry *e = &c->q[c->qhead];
        size_t left = e->hlen + e->rb->len - e->done;
        if (total < left) {
            e->done += (uint32_t)total;
            break;
        }
        total -= left;
        td_rbuf_unref(e->rb);
        c->qhead++;
        c->qlen--;
    }
    if (c->qlen == 0)
        c->qhead = 0;
    return 0;
}

/*
 * conn_flush for a TLS connection: encrypts a chunk of the queue, writes the ciphertext, and
 * repeats until the queue is empty or the kernel is full; then the unwritten ciphertext is
 * copied (the session's buffer moves on its next call) into one uv_write. A closing
 * connection sends close_notify once its queue is empty, before the FIN.
 */
static void conn_tls_flush(struct td_conn *c)
{
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    for (;;) {
        bool open = td_tls_handshake_done(c->tls);
        if (c->qlen > 0 && open) {
            int rv = conn_tls_encrypt(c);
            if (rv < 0) {
                td_log_debug("tls write failed", "err=\"%s\"", td_strerror(rv));
                conn_destroy(c);
                return;
            }
        }
        if (c->qlen == 0 && c->state == CONN_CLOSING)
            (void)td_tls_close_notify(c->tls); /* no-op when sent or failed before */
        conn_tls_sync(c);
        size_t n;
        const uint8_t *p = td_tls_out(c->tls, &n);
        if (n == 0) {
            if (c->qlen == 0)
                conn_after_drain(c);
            if (c->qlen == 0 || !open)
                return; /* drained, or output waits for the handshake */
            continue;   /* only empty entries were dropped */
        }
        uv_buf_t buf = uv_buf_init((char *)p, (unsigned)n);
        int rv = uv_try_write(s, &buf, 1);
        if (rv < 0 && rv != UV_EAGAIN) {
            conn_destroy(c);
            return;
        }
        size_t written = rv > 0 ? (size_t)rv : 0;
        c->out_bytes -= written;
        c->srv->bytes_out += written;
        if (written == n) {
            td_tls_out_consume(c->tls, n);
            c->tls_pending = 0;
            continue;
        }
        /* The kernel buffer is full. The copy stays counted in out_bytes until on_write. */
        struct write_req *w = td_xcalloc(1, sizeof(*w));
        w->conn = c;
        w->bytes = n - written;
        w->cipher = td_xmalloc(n - written);
        memcpy(w->cipher, p + written, n - written);
        td_tls_out_consume(c->tls, n);
        c->tls_pending = 0;
        buf = uv_buf_init((char *)w->cipher, (unsigned)w->bytes);
        c->writing = true;
        rv = uv_write(&w->req, s, &buf, 1, on_write);
        if (rv < 0) {
            c->writing = false;
            c->out_bytes -= w->bytes;
            free(w->cipher);
            free(w);
            conn_destroy(c);
        }
        return;
    }
}

/*
 * Writes as much as the kernel takes now; hands the rest to one uv_write. Small frames
 * are first copied into one contiguous cork buffer: one segment per write is markedly
 * cheaper in the kernel than many small iovecs (measured: bench/, scenario s1 with 16
 * publications per round).
 */
static void conn_flush(struct td_conn *c)
{
    if (c->writing || c->destroyed)
        return;
    if (c->tls != NULL) {
        conn_tls_flush(c);
        return;
    }
    for (;;) {
        if (c->qlen == 0) {
            conn_after_drain(c);
            return;
        }
        size_t n = conn_cork(c);
        if (n == 0)
            break; /* a large message: write it by iovec below */
        uv_buf_t buf = uv_buf_init((char *)c->srv->cork, (unsigned)n);
        int rv = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (rv < 0 && rv != UV_EAGAIN) {
            conn_destroy(c);
            return;
        }
        size_t written = rv > 0 ? (size_t)rv : 0;
        conn_consume(c, written);
        if (written < n)
            break; /* the kernel buffer is full */
    }
    if (c->qlen == 0) {
        conn_after_drain(c);
        return;
    }
    uv_buf_t iov[CONN_MAX_IOV];
    size_t niov = 0;
    uint32_t nent = 0;
    while (nent < c->qlen && niov + 2 <= CONN_MAX_IOV) {
        niov += entry_iov(&c->q[c->qhead + nent], iov + niov);
        nent++;
    }
    int rv = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)niov);
    if (rv < 0 && rv != UV_EAGAIN) {
        conn_destroy(c);
        return;
    }
    conn_consume(c, rv > 0 ? (size_t)rv : 0);
    if (c->qlen == 0) {
        conn_after_drain(c);
        return;
    }
    /* The kernel buffer is full: move the rest we tried into one uv_write request. */
    uint32_t take = c->qlen < nent ? c->qlen : nent;
    struct write_req *w = td_xcalloc(1, sizeof(*w));
    w->conn = c;
    w->n = take;
    w->entries = td_xmalloc(take * sizeof(*w->entries));
    memcpy(w->entries, c->q + c->qhead, take * sizeof(*w->entries));
    c->qhead += take;
    c->qlen -= take;
    if (c->qlen == 0)
        c->qhead = 0;
    niov = 0;
    for (uint32_t i = 0; i < take; i++) {
        struct outq_entry *e = &w->entries[i];
        w->bytes += e->hlen + e->rb->len - e->done;
        niov += entry_iov(e, iov + niov);
    }
    c->writing = true;
    rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, iov, (unsigned)niov, on_write);
    if (rv < 0) {
        c->writing = false;
        for (uint32_t i = 0; i < w->n; i++)
            td_rbuf_unref(w->entries[i].rb);
        c->out_bytes -= w->bytes;
        free(w->entries);
        free(w);
        conn_destroy(c);
    }
}

static void conn_schedule_client(struct td_conn *c);

static void on_flush_check(uv_check_t *h)
{
    struct td_server *srv = h->data;
    while (srv->flush_head != NULL) {
        struct td_conn *c = srv->flush_head;
        srv->flush_head = c->flush_next;
        c->in_flush = false;
        if (c->tick_due) {
            c->tick_due = false;
            conn_schedule_client(c);
        }
        conn_flush(c);
    }
    uv_idle_stop(&srv->flush_idle);
}

static void on_flush_idle(uv_idle_t *h)
{
    (void)h; /* exists only to keep the poll phase from blocking; see conn_want_flush */
}

/* ---- closing ----------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct td_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    td_buf_free(&c->in);
    free(c->q);
    td_tls_free(c->tls);
    free(c);
}

static void conn_destroy(struct td_conn *c)
{
    if (c->destroyed)
        return;
    c->destroyed = true;
    struct td_server *srv = c->srv;
    if (c->api_wait != NULL) {
        c->api_wait->conn = NULL;
        c->api_wait = NULL;
    }
    if (c->yconn != NULL) {
        td_yconn_leave(c->yconn, conn_now(c));
        c->yconn = NULL;
        srv->nyjs--;
    }
    if (c->client != NULL) {
        conn_emu_forget(c);
        td_client_free(c->client, conn_now(c));
        c->client = NULL;
        srv->nws--;
    }
    td_ws_decoder_free(&c->ws);
    for (uint32_t i = 0; i < c->qlen; i++)
        td_rbuf_unref(c->q[c->qhead + i].rb);
    c->qlen = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    /* Remove from the flush list if queued there. */
    for (struct td_conn **pp = &srv->flush_head; *pp != NULL; pp = &(*pp)->flush_next) {
        if (*pp == c) {
            *pp = c->flush_next;
            break;
        }
    }
    td_wheel_del(srv->wheel, &c->deadline);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_wheel_timer(uv_timer_t *t);

/* Sets the connection's deadline to `at` (loop ms; on_conn_deadline says what it means). */
static void conn_deadline_at(struct td_conn *c, int64_t at)
{
    struct td_server *srv = c->srv;
    td_wheel_set(srv->wheel, &c->deadline, at);
    if (!uv_is_active((uv_handle_t *)&srv->wheel_timer))
        uv_timer_start(&srv->wheel_timer, on_wheel_timer, TD_SERVER_WHEEL_MS, TD_SERVER_WHEEL_MS);
}

/* An HTTP connection must complete a request within http_server.idle_timeout of the
 * previous one (or of accepting), or it is closed: idle keep-alive connections and slow
 * request heads do not hold a slot forever. */
static void conn_arm_http_timer(struct td_conn *c)
{
    if (c->state == CONN_HTTP && !c->destroyed)
        conn_deadline_at(c, conn_now(c) + c->srv->cfg->http_idle_timeout_ms);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* Called when the output queue is empty. */
static void conn_after_drain(struct td_conn *c)
{
    if (c->state != CONN_CLOSING || c->shutdown_sent || c->destroyed)
        return;
    c->shutdown_sent = true;
    uv_shutdown_t *req = td_xmalloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_destroy(c);
    }
    /* Wait for the peer's EOF, but not forever. */
}

/* Starts a graceful close: whatever is queued is still sent, then FIN. */
static void conn_begin_close(struct td_conn *c)
{
    if (c->state == CONN_CLOSING || c->destroyed)
        return;
    c->state = CONN_CLOSING;
    conn_deadline_at(c, conn_now(c) + CONN_CLOSE_TIMEOUT_MS);
    conn_want_flush(c);
}

static void conn_ws_close(struct td_conn *c, uint16_t code, const char *reason)
{
    if (c->state != CONN_WS)
        return;
    struct td_buf b;
    td_buf_init(&b);
    td_ws_append_close(&b, code, reason);
    conn_enqueue_buf(c, &b);
    td_buf_free(&b);
    if (c->client != NULL && c->client->state != TD_CLIENT_CLOSED)
        c->client->state = TD_CLIENT_CLOSED;
    conn_begin_close(c);
}

/* ---- transport ops for the hub ------------------------------------------------------ */

static int ws_send(void *t, struct td_rbuf *unit)
{
    struct td_conn *c = t;
    if (c->state != CONN_WS)
        return 0;
    if (c->out_bytes + unit->len > c->srv->cfg->queue_max_size) {
        td_log_info("slow client disconnected", "client=%s queued=%llu", c->client->id,
                    (unsigned long long)c->out_bytes);
        conn_ws_close(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    uint8_t hdr[10];
    size_t hlen = td_ws_frame_header(hdr, true, c->ws_opcode, unit->len);
    conn_enqueue(c, hdr, hlen, unit);
    return 0;
}

static void ws_close(void *t, uint32_t code, const char *reason)
{
    conn_ws_close(t, (uint16_t)code, reason);
}

static const struct td_transport_ops conn_ws_ops = {ws_send, ws_close, NULL};

/* ---- HTTP-streaming and SSE emulation transport ------------------------------------- */

/*
 * Queues one message unit framed for the stream, without copying it: http_stream puts it in
 * a chunk (header in the queue entry, the shared trailer as the next entry; JSON lines end
 * with '\n'), SSE in an event ("data: " header, shared "\n\n" trailer). Only an SSE unit
 * holding several lines (a batch of replies) is copied, to prefix each line.
 */
static void conn_emu_enqueue(struct td_conn *c, struct td_rbuf *unit)
{
    struct td_emu *e = &c->srv->emu;
    if (c->emu_kind == EMU_SSE) {
        if (td_emu_sse_single_line(unit->data, unit->len)) {
            conn_enqueue(c, (const uint8_t *)TD_EMU_SSE_PREFIX, TD_EMU_SSE_PREFIX_LEN, unit);
            conn_enqueue(c, NULL, 0, e->sse_end);
        } else {
            struct td_buf b;
            td_buf_init(&b);
            td_emu_sse_append(&b, unit->data, unit->len);
            conn_enqueue_buf(c, &b);
            td_buf_free(&b);
        }
        return;
    }
    bool json = c->emu_kind == EMU_STREAM_JSON;
    if (unit->len == 0 && !json)
        return; /* a zero-size chunk would end the response */
    uint8_t hdr[TD_EMU_CHUNK_HDR_MAX];
    size_t hlen = td_emu_chunk_header(hdr, unit->len + (json ? 1u : 0u));
    conn_enqueue(c, hdr, hlen, unit);
    conn_enqueue(c, NULL, 0, json ? e->nl_crlf : e->crlf);
}

/* Removes the connection's session from the table: later /emulation requests get 404. */
static void conn_emu_forget(struct td_conn *c)
{
    if (c->emu == NULL)
        return;
    td_emu_session_del(&c->srv->emu, (struct td_str){c->emu->id, TD_EMU_SESSION_LEN});
    c->emu = NULL;
    if (c->client != NULL)
        c->client->session = NULL;
}

/* Ends a stream: the disconnect push (emulation has no close frame), then the end of the
 * response, then FIN. The client reconnects or not according to the push's code. */
static void conn_emu_close(struct td_conn *c, uint32_t code, const char *reason)
{
    if (c->state != CONN_STREAM)
        return;
    if (c->client != NULL) {
        if (code != 0) {
            struct td_buf b;
            td_buf_init(&b);
            c->client->codec->push_disconnect(&b, code, reason);
            struct td_rbuf *rb = td_rbuf_from(b.data, b.len);
            conn_emu_enqueue(c, rb);
            td_rbuf_unref(rb);
            td_buf_free(&b);
        }
        c->client->state = TD_CLIENT_CLOSED;
    }
    if (c->emu_kind != EMU_SSE)
        conn_enqueue(c, NULL, 0, c->srv->emu.last_chunk);
    conn_emu_forget(c);
    conn_begin_close(c);
}

static int emu_send(void *t, struct td_rbuf *unit)
{
    struct td_conn *c = t;
    if (c->state != CONN_STREAM)
        return 0;
    if (c->out_bytes + unit->len > c->srv->cfg->queue_max_size) {
        td_log_info("slow client disconnected", "client=%s queued=%llu", c->client->id,
                    (unsigned long long)c->out_bytes);
        conn_emu_close(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    conn_emu_enqueue(c, unit);
    return 0;
}

static void emu_close(void *t, uint32_t code, const char *reason)
{
    conn_emu_close(t, code, reason);
}

static const struct td_transport_ops conn_emu_ops = {emu_send, emu_close, NULL};

static void conn_schedule_client(struct td_conn *c)
{
    if (c->client == NULL || (c->state != CONN_WS && c->state != CONN_STREAM))
        return;
    int64_t now = conn_now(c);
    int64_t next = td_client_tick(c->client, now);
    if (c->state != CONN_WS && c->state != CONN_STREAM)
        return;
    if (next > 0)
        conn_deadline_at(c, next);
    else
        td_wheel_del(c->srv->wheel, &c->deadline);
}

/*
 * A connection's deadline: for an HTTP connection the idle timeout, for a closing one the
 * end of the wait for the peer's EOF, for a WebSocket session the client's next ping or
 * pong/stale check. Timers run before the poll phase of a loop iteration, so a pong that
 * already sits in the socket has not been read yet: the client tick is deferred to the check
 * phase, after this iteration's reads, so a timely pong is never mistaken for a missing one.
 */
static void conn_yjs_deadline(struct td_conn *c);

static void on_conn_deadline(struct td_wheel_node *n, void *ud)
{
    (void)ud;
    struct td_conn *c = (struct td_conn *)((char *)n - offsetof(struct td_conn, deadline));
    if (c->state == CONN_WS && c->yconn != NULL) {
        conn_yjs_deadline(c);
    } else if (c->state == CONN_WS || c->state == CONN_STREAM) {
        c->tick_due = true;
        conn_want_flush(c);
    } else {
        conn_destroy(c);
    }
}

static void on_wheel_timer(uv_timer_t *t)
{
    struct td_server *srv = t->data;
    td_wheel_expire(srv->wheel, (int64_t)uv_now(srv->loop), on_conn_deadline, NULL);
    if (srv->wheel->count == 0)
        uv_timer_stop(t);
}

/* ---- HTTP -------------------------------------------------------------------------- */

static void conn_respond(struct td_conn *c, int status, const char *ctype, const char *extra,
                         const void *body, size_t n, bool keep_alive)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_appendf(&b, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status, td_http_reason(status),
                   n);
    if (ctype)
        td_buf_appendf(&b, "Content-Type: %s\r\n", ctype);
    if (extra)
        td_buf_append_str(&b, extra);
    td_buf_append_str(&b,
                      keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    td_buf_append(&b, body, n);
    conn_enqueue_buf(c, &b);
    td_buf_free(&b);
    if (!keep_alive)
        conn_begin_close(c);
}

static void conn_respond_text(struct td_conn *c, int status, const char *text, bool keep_alive)
{
    conn_respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text), keep_alive);
}

static bool str_eq(struct td_str s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Origin policy: no Origin header (non-browser) is allowed; "*" allows all; otherwise the
 * origin must be listed or be the same host as the Host header. */
static bool origin_allowed(const struct td_config *cfg, const struct td_http_request *req)
{
    const struct td_str *origin = td_http_header_get(req, "Origin");
    const struct td_str *host = td_http_header_get(req, "Host");
    if (origin == NULL)
        return true;
    return td_http_origin_allowed((const char *const *)cfg->allowed_origins, cfg->n_allowed_origins,
                                  *origin, host != NULL ? *host : (struct td_str){"", 0});
}

/*
 * Checks a WebSocket handshake request; on failure answers it (400, 426 or 403) and returns
 * NULL, else returns the Sec-WebSocket-Key.
 */
static const struct td_str *ws_handshake_check(struct td_conn *c, const struct td_http_request *req)
{
    const struct td_str *key = td_http_header_get(req, "Sec-WebSocket-Key");
    const struct td_str *ver = td_http_header_get(req, "Sec-WebSocket-Version");
    if (!str_eq(req->method, "GET") || !req->upgrade_websocket || key == NULL || ver == NULL) {
        conn_respond_text(c, 400, "bad websocket handshake\n", false);
        return NULL;
    }
    if (!str_eq(*ver, "13")) {
        conn_respond(c, 426, "text/plain; charset=utf-8", "Sec-WebSocket-Version: 13\r\n",
                     "unsupported websocket version\n", 30, false);
        return NULL;
    }
    uint8_t raw[32];
    if (key->n != 24 || td_base64_decode(key->p, key->n, raw, sizeof(raw)) != 16) {
        conn_respond_text(c, 400, "bad Sec-WebSocket-Key\n", false);
        return NULL;
    }
    if (!origin_allowed(c->srv->cfg, req)) {
        conn_respond_text(c, 403, "origin not allowed\n", false);
        return NULL;
    }
    return key;
}

static void conn_upgrade_ws(struct td_conn *c, const struct td_http_request *req)
{
    struct td_server *srv = c->srv;
    const struct td_str *key = ws_handshake_check(c, req);
    if (key == NULL)
        return;
    const struct td_codec *codec = &td_codec_json;
    const char *subproto = NULL;
    const struct td_str *proto = td_http_header_get(req, "Sec-WebSocket-Protocol");
    if (proto != NULL && td_http_has_token(*proto, "centrifuge-protobuf")) {
        codec = &td_codec_protobuf;
        subproto = "centrifuge-protobuf";
    } else if (proto != NULL && td_http_has_token(*proto, "centrifuge-json")) {
        subproto = "centrifuge-json";
    }
    char qv[32];
    if ((td_http_query_get(req->query, "cf_protocol", qv, sizeof(qv)) > 0 ||
         td_http_query_get(req->query, "format", qv, sizeof(qv)) > 0) &&
        strcmp(qv, "protobuf") == 0)
        codec = &td_codec_protobuf;

    char accept[29];
    td_ws_accept_key(key->p, key->n, accept);
    struct td_buf b;
    td_buf_init(&b);
    td_buf_appendf(&b,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                   accept);
    if (subproto)
        td_buf_appendf(&b, "Sec-WebSocket-Protocol: %s\r\n", subproto);
    td_buf_append_str(&b, "\r\n");
    conn_enqueue_buf(c, &b);
    td_buf_free(&b);

    c->state = CONN_WS;
    c->ws_opcode = codec->binary ? TD_WS_OP_BINARY : TD_WS_OP_TEXT;
    td_ws_decoder_init(&c->ws, srv->cfg->message_size_limit);
    c->client = td_client_new(&srv->hub, codec, &conn_ws_ops, c, conn_now(c));
    srv->nws++;
    if (srv->cfg->max_connections > 0 && srv->nws > srv->cfg->max_connections) {
        conn_ws_close(c, TD_DISC_CONNECTION_LIMIT, "connection limit");
        return;
    }
    conn_schedule_client(c);
}

/* ---- Yjs (y-websocket) sessions ---------------------------------------------------- */

/* Keepalive cadence: a WebSocket ping every 30 s, an empty awareness update after 15 s of
 * output silence (see td_server.h). */
#define YJS_PING_MS 30000
#define YJS_QUIET_MS 15000

static int yjs_send(void *t, struct td_rbuf *msg)
{
    struct td_conn *c = t;
    if (c->state != CONN_WS)
        return 0;
    const struct td_config *cfg = c->srv->cfg;
    if (c->out_bytes + msg->len > cfg->queue_max_size + cfg->yjs_max_document_size) {
        td_log_info("slow yjs client disconnected", "queued=%llu",
                    (unsigned long long)c->out_bytes);
        conn_ws_close(c, TD_DISC_SLOW, "slow");
        return TD_ELIMIT;
    }
    uint8_t hdr[10];
    size_t hlen = td_ws_frame_header(hdr, true, TD_WS_OP_BINARY, msg->len);
    conn_enqueue(c, hdr, hlen, msg);
    c->y_last_out = conn_now(c);
    return 0;
}

static void yjs_close(void *t, uint16_t code, const char *reason)
{
    conn_ws_close(t, code, reason);
}

static const struct td_yconn_ops conn_yjs_ops = {yjs_send, yjs_close};

/* Pings, the pong check and the quiet-output keepalive of a y-websocket session. */
static void conn_yjs_deadline(struct td_conn *c)
{
    int64_t now = conn_now(c);
    if (now >= c->y_next_ping) {
        if (c->y_pong_wait) {
            td_log_debug("yjs client did not answer a ping", "port=%d", c->srv->bound_port);
            conn_ws_close(c, TD_WS_CLOSE_GOING_AWAY, "no pong");
            return;
        }
        struct td_buf b;
        td_buf_init(&b);
        td_ws_append_frame(&b, TD_WS_OP_PING, NULL, 0);
        conn_enqueue_buf(c, &b);
        td_buf_free(&b);
        c->y_pong_wait = true;
        c->y_next_ping = now + YJS_PING_MS;
    }
    if (now - c->y_last_out >= YJS_QUIET_MS) {
        static const uint8_t keepalive[] = {1, 1, 0}; /* awareness update with 0 entries */
        struct td_rbuf *rb = td_rbuf_from(keepalive, sizeof(keepalive));
        yjs_send(c, rb);
        td_rbuf_unref(rb);
    }
    if (c->state != CONN_WS)
        return;
    int64_t next = c->y_last_out + YJS_QUIET_MS;
    conn_deadline_at(c, next < c->y_next_ping ? next : c->y_next_ping);
}

/*
 * Decides what a y-websocket session may do from its ?token= and yjs.require_token /
 * yjs.read_only (docs/yjs.md). Returns 0 with *read_only set, or -1 after starting to close
 * the (upgraded) connection with 4401 or 4403.
 */
static int yjs_access(struct td_conn *c, const struct td_http_request *req, const char *room,
                      size_t room_len, bool *read_only)
{
    struct td_server *srv = c->srv;
    char *tok = td_xmalloc(TD_JWT_MAX_TOKEN + 1);
    int n = td_http_query_get(req->query, "token", tok, TD_JWT_MAX_TOKEN + 1);
    if (n == TD_ENOTFOUND || n == 0) {
        free(tok);
        if (srv->cfg->yjs_require_token) {
            conn_ws_close(c, 4401, "token required");
            return -1;
        }
        *read_only = srv->cfg->yjs_read_only;
        return 0;
    }
    const char *why = "malformed token";
    enum td_jwt_status st = TD_JWT_INVALID;
    struct td_jwt_claims claims;
    memset(&claims, 0, sizeof(claims));
    if (n > 0)
        st = td_jwt_verify(srv->hub.keys, tok, (size_t)n, srv->hub.wall_s(), &claims, &why);
    if (st != TD_JWT_OK) {
        td_log_info("yjs token refused", "reason=\"%s\"", why);
        free(tok);
        conn_ws_close(c, 4401, st == TD_JWT_EXPIRED ? "token expired" : "invalid token");
        return -1;
    }
    td_jwt_claims_free(&claims);
    enum td_yroom_access acc = td_yrooms_token_access(tok, (size_t)n, room, room_len);
    free(tok);
    if (acc == TD_YROOM_ACCESS_NONE) {
        conn_ws_close(c, 4403, "permission denied");
        return -1;
    }
    *read_only = acc == TD_YROOM_ACCESS_READ;
    return 0;
}

/* GET /yjs/<room>: the room is the rest of the path, as sent (not URL-decoded). */
static void conn_upgrade_yjs(struct td_conn *c, const struct td_http_request *req)
{
    struct td_server *srv = c->srv;
    const char *room = req->path.p + 5;
    size_t room_len = req->path.n - 5;
    if (room_len == 0 || room_len > TD_YROOM_MAX_NAME) {
        conn_respond_text(c, 400, "bad room name\n", false);
        return;
    }
    const struct td_str *key = ws_handshake_check(c, req);
    if (key == NULL)
        return;
    char accept[29];
    td_ws_accept_key(key->p, key->n, accept);
    struct td_buf b;
    td_buf_init(&b);
    td_buf_appendf(&b,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                   accept);
    /* A client offering subprotocols fails the handshake unless one is chosen: take the
     * first one it offered. */
    const struct td_str *proto = td_http_header_get(req, "Sec-WebSocket-Protocol");
    if (proto != NULL) {
        size_t i = 0;
        while (i < proto->n && (proto->p[i] == ' ' || proto->p[i] == '\t'))
            i++;
        size_t j = i;
        while (j < proto->n && proto->p[j] != ',' && proto->p[j] != ' ' && proto->p[j] != '\t')
            j++;
        if (j > i)
            td_buf_appendf(&b, "Sec-WebSocket-Protocol: %.*s\r\n", (int)(j - i), proto->p + i);
    }
    td_buf_append_str(&b, "\r\n");
    conn_enqueue_buf(c, &b);
    td_buf_free(&b);

    c->state = CONN_WS;
    c->ws_opcode = TD_WS_OP_BINARY;
    /* The room checks the exact cap (0 = its default); the frame cap only has to let it. */
    size_t max_msg = srv->cfg->yjs_max_update_size ? srv->cfg->yjs_max_update_size : 8u << 20;
    td_ws_decoder_init(&c->ws, max_msg + 16);
    if (srv->cfg->max_connections > 0 && srv->nws + srv->nyjs + 1 > srv->cfg->max_connections) {
        conn_ws_close(c, TD_DISC_CONNECTION_LIMIT, "connection limit");
        return;
    }
    bool read_only = false;
    if (yjs_access(c, req, room, room_len, &read_only) != 0)
        return;
    int64_t now = conn_now(c);
    c->y_next_ping = now + YJS_PING_MS;
    c->y_last_out = now;
    srv->nyjs++;
    c->yconn = td_yrooms_join(srv->yrooms, room, room_len, c, now);
    td_yconn_set_read_only(c->yconn, read_only);
    if (c->state == CONN_WS)
        conn_deadline_at(c, now + YJS_QUIET_MS);
}

/* One WebSocket event of a y-websocket session. */
static void conn_yjs_event(struct td_conn *c, const struct td_ws_event *ev)
{
    c->y_pong_wait = false; /* anything from the peer shows it is alive */
    switch (ev->type) {
    case TD_WS_EV_MESSAGE:
        if (!ev->binary) {
            conn_ws_close(c, TD_YROOM_CLOSE_MALFORMED, "binary messages only");
            return;
        }
        td_yconn_message(c->yconn, ev->payload, ev->len, conn_now(c));
        break;
    case TD_WS_EV_CLOSE:
        /* Leave now: the others see the awareness removal without waiting for EOF. */
        td_yconn_leave(c->yconn, conn_now(c));
        c->yconn = NULL;
        c->srv->nyjs--;
        conn_ws_close(c, ev->close_code == TD_WS_CLOSE_NO_STATUS ? 0 : ev->close_code, "");
        break;
    case TD_WS_EV_PING: {
        struct td_buf b;
        td_buf_init(&b);
        td_ws_append_frame(&b, TD_WS_OP_PONG, ev->payload, ev->len);
        conn_enqueue_buf(c, &b);
        td_buf_free(&b);
        break;
    }
    case TD_WS_EV_PONG:
        break;
    }
}

static size_t conn_process(struct td_conn *c, uint8_t *p, size_t n);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_api_done(void *ud, int status, const struct td_buf *body)
{
    struct api_wait *w = ud;
    struct td_conn *c = w->conn;
    w->answered = true;
    if (c != NULL) {
        c->api_wait = NULL;
        conn_respond(c, status, "application/json", NULL, body->data, body->len, w->keep_alive);
    }
    if (w->in_call)
        return; /* conn_handle_api frees it and carries on with the input */
    free(w);
    if (c == NULL || c->destroyed || c->state != CONN_HTTP)
        return;
    /* Resume: requests that arrived meanwhile are in c->in. */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->in.len > 0) {
        size_t used = conn_process(c, c->in.data, c->in.len);
        if (!c->destroyed)
            td_buf_consume(&c->in, used);
    }
}

static void conn_handle_api(struct td_conn *c, const struct td_http_request *req,
                            const uint8_t *body)
{
    struct td_server *srv = c->srv;
    struct td_str method = {req->path.p + 5, req->path.n - 5}; /* after "/api/" */
    const char *json = "application/json";
    if (!str_eq(req->method, "POST")) {
        static const char msg[] = "{\"error\":{\"code\":107,\"message\":\"use POST\"}}";
        conn_respond(c, 405, json, "Allow: POST\r\n", msg, sizeof(msg) - 1, req->keep_alive);
        return;
    }
    if (!td_api_authorized(srv->cfg, req)) {
        static const char msg[] =
            "{\"error\":{\"code\":101,\"message\":\"unauthorized: send the API key in "
            "X-API-Key or Authorization: apikey KEY\"}}";
        conn_respond(c, 401, json, NULL, msg, sizeof(msg) - 1, req->keep_alive);
        return;
    }
    int64_t now = conn_now(c);
    struct api_wait *w = td_xcalloc(1, sizeof(*w));
    w->conn = c;
    w->keep_alive = req->keep_alive;
    w->in_call = true;
    c->api_wait = w;
    td_api_call(&srv->hub, srv->yrooms, method, (const char *)body, (size_t)req->content_length,
                now, (now - srv->started_ms) / 1000, on_api_done, w);
    w->in_call = false;
    if (w->answered) {
        free(w);
        return;
    }
    /* The answer waits for a commit: read nothing more until it is sent, so answers keep
     * the order of requests and a pipelining client cannot grow our input buffer. */
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void conn_respond_metrics(struct td_conn *c, const struct td_http_request *req)
{
    struct td_server *srv = c->srv;
    struct td_metrics m = {0};
    m.tcp_connections = srv->nconns;
    m.clients = srv->nws;
    m.subscriptions = srv->hub.stats.subscriptions;
    m.channels = srv->hub.channels.count;
    for (size_t i = 0; i < srv->hub.channels.cap; i++) {
        const struct td_channel *ch = srv->hub.channels.slots[i].value;
        if (srv->hub.channels.slots[i].key != NULL)
            m.history_publications += ch->stream.count;
    }
    m.publications_total = srv->hub.stats.publications;
    m.deliveries_total = srv->hub.stats.deliveries;
    m.slow_disconnects_total = srv->hub.stats.slow_disconnects;
    m.bytes_in_total = srv->bytes_in;
    m.bytes_out_total = srv->bytes_out;
    m.uptime_seconds = (conn_now(c) - srv->started_ms) / 1000;
    struct td_store_stats st;
    if (srv->store != NULL) {
        td_store_worker_stats(&srv->store_worker, &st);
        m.store_enabled = true;
        m.store_pending = srv->hub.stats.store_pending;
        m.store_commits_failed = st.failed_commits;
        m.store_expired_rows = st.expired_rows;
        m.commit_bounds = td_store_worker_buckets;
        m.commit_nbounds = TD_STORE_WORKER_NBUCKETS;
        m.commit_buckets = st.commit_buckets;
        m.commit_sum_seconds = st.commit_seconds_sum;
        m.committed_ops_total = st.committed_ops;
    }
    if (srv->yrooms != NULL) {
        struct td_yrooms_stats ys;
        td_yrooms_stats(srv->yrooms, &ys);
        m.yjs_enabled = true;
        m.yjs_rooms = ys.rooms;
        m.yjs_connections = ys.conns;
        m.yjs_updates_total = ys.updates;
        m.yjs_rejected_total = ys.rejected;
    }
    if (srv->tls != NULL) {
        m.tls_enabled = true;
        m.tls_handshakes_total = srv->tls_handshakes;
        m.tls_handshake_errors_total = srv->tls_handshake_errors;
    }
    if (srv->wt != NULL) {
        struct td_wtsrv_stats ws;
        td_wtsrv_stats(srv->wt, &ws);
        m.wt_enabled = true;
        m.wt_sessions = ws.sessions;
        m.wt_connections = ws.conns;
        m.wt_sessions_total = ws.accepted;
        m.wt_refused_total = ws.refused;
        m.wt_datagrams_total = ws.datagrams;
        m.quic_packets_in_total = ws.packets_in;
        m.quic_packets_out_total = ws.packets_out;
        m.quic_dropped_total = ws.dropped;
        m.quic_conns_refused_total = ws.conns_refused;
    }
    struct td_buf b;
    td_buf_init(&b);
    td_metrics_write(&b, &m);
    conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len,
                 req->keep_alive);
    td_buf_free(&b);
}

/* ---- HTTP-streaming and SSE endpoints ------------------------------------------------ */

static bool header_is(const struct td_http_request *req, const char *name, const char *lit)
{
    const struct td_str *v = td_http_header_get(req, name);
    if (v == NULL)
        return false;
    size_t n = strlen(lit);
    /* Parameters such as "; charset=..." do not change the media type. */
    return v->n >= n && strncasecmp(v->p, lit, n) == 0 && (v->n == n || v->p[n] == ';');
}

/* CORS response headers for a browser request (Origin present and already allowed). */
static void emu_cors_headers(struct td_buf *b, const struct td_http_request *req)
{
    const struct td_str *origin = td_http_header_get(req, "Origin");
    if (origin == NULL)
        return;
    td_buf_appendf(b,
                   "Access-Control-Allow-Origin: %.*s\r\nAccess-Control-Allow-Credentials: "
                   "true\r\nVary: Origin\r\n",
                   (int)origin->n, origin->p);
    const struct td_str *rh = td_http_header_get(req, "Access-Control-Request-Headers");
    if (rh != NULL)
        td_buf_appendf(b, "Access-Control-Allow-Headers: %.*s\r\n", (int)rh->n, rh->p);
}

/* Answers 204 without a body (and so without Content-Length): a preflight or a delivered
 * emulation request. */
static void emu_respond_204(struct td_conn *c, const struct td_http_request *req, const char *extra)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "HTTP/1.1 204 No Content\r\n");
    emu_cors_headers(&b, req);
    if (extra)
        td_buf_append_str(&b, extra);
    td_buf_append_str(&b, req->keep_alive ? "Connection: keep-alive\r\n\r\n"
                                          : "Connection: close\r\n\r\n");
    conn_enqueue_buf(c, &b);
    td_buf_free(&b);
    if (!req->keep_alive)
        conn_begin_close(c);
}

/* Common checks of the emulation endpoints; returns false after answering. */
static bool emu_request_ok(struct td_conn *c, const struct td_http_request *req,
                           const char *methods, bool allow_get, uint32_t body_limit)
{
    char extra[96];
    if (str_eq(req->method, "OPTIONS")) {
        snprintf(extra, sizeof(extra),
                 "Access-Control-Max-Age: 300\r\nAccess-Control-Allow-Methods: %s\r\n", methods);
        if (!origin_allowed(c->srv->cfg, req))
            conn_respond_text(c, 403, "origin not allowed\n", req->keep_alive);
        else
            emu_respond_204(c, req, extra);
        return false;
    }
    if (!str_eq(req->method, "POST") && !(allow_get && str_eq(req->method, "GET"))) {
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", methods);
        conn_respond(c, 405, "text/plain; charset=utf-8", extra, "method not allowed\n", 19,
                     req->keep_alive);
        return false;
    }
    if (!origin_allowed(c->srv->cfg, req)) {
        conn_respond_text(c, 403, "origin not allowed\n", req->keep_alive);
        return false;
    }
    if (req->content_length > body_limit) {
        conn_respond_text(c, 413, "request body too large\n", false);
        return false;
    }
    return true;
}

/*
 * Turns the connection into a stream for a new client whose connect command is frame[0..n)
 * (writable): response head, session, then the connect handled like a first WebSocket frame.
 */
static void conn_emu_start(struct td_conn *c, const struct td_http_request *req,
                           enum conn_emu_kind kind, uint8_t *frame, size_t n)
{
    struct td_server *srv = c->srv;
    const struct td_codec *codec = kind == EMU_STREAM_PB ? &td_codec_protobuf : &td_codec_json;
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "HTTP/1.1 200 OK\r\n");
    if (kind == EMU_SSE)
        td_buf_append_str(&b, "Content-Type: text/event-stream; charset=utf-8\r\n");
    else
        td_buf_appendf(&b, "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n",
                       kind == EMU_STREAM_PB ? "application/octet-stream" : "application/json");
    td_buf_append_str(&b,
                      "Cache-Control: private, no-cache, no-store, must-revalidate, "
                      "max-age=0\r\nPragma: no-cache\r\nExpires: 0\r\nX-Accel-Buffering: no\r\n");
    emu_cors_headers(&b, req);
    /* SSE's body ends when the connection does; a chunked stream ends with its last chunk,
     * and the connection is not reused after it either. */
    td_buf_append_str(&b, "Connection: close\r\n\r\n");
    if (kind == EMU_SSE)
        td_buf_append_str(&b, "\r\n"); /* a first byte, so that EventSource opens at once */
    conn_enqueue_buf(c, &b);
    td_buf_free(&b);

    c->state = CONN_STREAM;
    c->emu_kind = (uint8_t)kind;
    int64_t now = conn_now(c);
    c->client = td_client_new(&srv->hub, codec, &conn_emu_ops, c, now);
    srv->nws++;
    c->emu = td_emu_session_add(&srv->emu, c);
    c->client->session = c->emu->id;
    if (srv->cfg->max_connections > 0 && srv->nws > srv->cfg->max_connections) {
        conn_emu_close(c, TD_DISC_CONNECTION_LIMIT, "connection limit");
        return;
    }
    td_client_on_frame(c->client, frame, n, now);
    conn_schedule_client(c);
}

/* POST /connection/http_stream, GET|POST /connection/sse (and their preflights). */
static void conn_handle_emu_stream(struct td_conn *c, const struct td_http_request *req,
                                   const uint8_t *body, bool sse)
{
    const struct td_config *cfg = c->srv->cfg;
    if (!(sse ? cfg->sse_enabled : cfg->http_stream_enabled)) {
        conn_respond_text(c, 404, "not found\n", req->keep_alive);
        return;
    }
    uint32_t limit = sse ? cfg->sse_max_request_body_size : cfg->http_stream_max_request_body_size;
    if (!emu_request_ok(c, req, sse ? "GET, POST, OPTIONS" : "POST, OPTIONS", sse, limit))
        return;
    if (req->minor_version == 0) { /* a chunked or long-lived response needs HTTP/1.1 */
        conn_respond_text(c, 505, "HTTP/1.1 required\n", false);
        return;
    }
    struct td_buf frame;
    td_buf_init(&frame);
    enum conn_emu_kind kind = EMU_STREAM_JSON;
    if (sse && str_eq(req->method, "GET")) {
        kind = EMU_SSE;
        size_t cap = req->query.n + 1;
        td_buf_reserve(&frame, cap);
        int rv = td_http_query_get(req->query, "cf_connect", (char *)frame.data, cap);
        if (rv > 0)
            frame.len = (size_t)rv;
    } else {
        if (sse)
            kind = EMU_SSE;
        else if (header_is(req, "Content-Type", "application/octet-stream"))
            kind = EMU_STREAM_PB;
        td_buf_append(&frame, body, (size_t)req->content_length);
    }
    if (frame.len == 0 || frame.len > limit) {
        conn_respond_text(c, 400,
                          sse ? "cf_connect or a body with the connect command required\n"
                              : "connect command required in the body\n",
                          req->keep_alive);
    } else {
        conn_emu_start(c, req, kind, frame.data, frame.len);
    }
    td_buf_free(&frame);
}

/* POST /emulation: one batch of commands for an existing stream session. */
static void conn_handle_emulation(struct td_conn *c, const struct td_http_request *req,
                                  const uint8_t *body)
{
    struct td_server *srv = c->srv;
    const struct td_config *cfg = srv->cfg;
    if (!cfg->sse_enabled && !cfg->http_stream_enabled) {
        conn_respond_text(c, 404, "not found\n", req->keep_alive);
        return;
    }
    if (!emu_request_ok(c, req, "POST, OPTIONS", false, cfg->emulation_max_request_body_size))
        return;
    struct td_buf copy; /* parsed and then decoded in place */
    td_buf_init(&copy);
    td_buf_append(&copy, body, (size_t)req->content_length);
    struct td_emu_request er;
    int rv = header_is(req, "Content-Type", "application/octet-stream")
                 ? td_emu_parse_pb(copy.data, copy.len, &er)
                 : td_emu_parse_json((char *)copy.data, copy.len, &er);
    if (rv < 0) {
        conn_respond_text(c, 400, "malformed emulation request\n", req->keep_alive);
        td_buf_free(&copy);
        return;
    }
    struct td_conn *t = NULL;
    if (er.node.n == 0 || (er.node.n == strlen(srv->hub.node_id) &&
                           memcmp(er.node.p, srv->hub.node_id, er.node.n) == 0))
        t = td_emu_session_get(&srv->emu, er.session);
    if (t == NULL || t->state != CONN_STREAM || t->client == NULL) {
        /* No such session (or another node's): the client drops its transport and
         * reconnects. */
        conn_respond_text(c, 404, "session not found\n", req->keep_alive);
        td_buf_free(&copy);
        return;
    }
    td_client_on_frame(t->client, er.data, er.len, conn_now(c));
    conn_schedule_client(t);
    td_buf_free(&copy);
    emu_respond_204(c, req, NULL);
}

/* Handles one complete request. */
static void conn_handle_request(struct td_conn *c, const struct td_http_request *req,
                                const uint8_t *body)
{
    if (str_eq(req->path, "/connection/websocket")) {
        conn_upgrade_ws(c, req);
    } else if (str_eq(req->path, "/connection/http_stream")) {
        conn_handle_emu_stream(c, req, body, false);
    } else if (str_eq(req->path, "/connection/sse")) {
        conn_handle_emu_stream(c, req, body, true);
    } else if (str_eq(req->path, "/emulation")) {
        conn_handle_emulation(c, req, body);
    } else if (c->srv->yrooms != NULL && req->path.n >= 5 && memcmp(req->path.p, "/yjs/", 5) == 0) {
        conn_upgrade_yjs(c, req);
    } else if (str_eq(req->path, "/metrics")) {
        conn_respond_metrics(c, req);
    } else if (str_eq(req->path, "/health")) {
        conn_respond(c, 200, "application/json", NULL, "{}", 2, req->keep_alive);
    } else if (c->srv->cfg->static_dir[0] != '\0' && req->path.n > strlen(TD_STATIC_PREFIX) &&
               memcmp(req->path.p, TD_STATIC_PREFIX, strlen(TD_STATIC_PREFIX)) == 0) {
        struct td_buf b;
        td_buf_init(&b);
        td_static_respond(c->srv->cfg->static_dir, req->method, req->path, req->keep_alive, &b);
        conn_enqueue_buf(c, &b);
        td_buf_free(&b);
        if (!req->keep_alive)
            conn_begin_close(c);
    } else if (req->path.n > 5 && memcmp(req->path.p, "/api/", 5) == 0) {
        conn_handle_api(c, req, body);
    } else {
        conn_respond_text(c, 404, "not found\n", req->keep_alive);
    }
}

/* ---- input ------------------------------------------------------------------------- */

static void conn_ws_event(struct td_conn *c, const struct td_ws_event *ev)
{
    if (c->yconn != NULL) {
        conn_yjs_event(c, ev);
        return;
    }
    switch (ev->type) {
    case TD_WS_EV_MESSAGE:
        td_client_on_frame(c->client, ev->payload, ev->len, conn_now(c));
        conn_schedule_client(c);
        break;
    case TD_WS_EV_PING: {
        struct td_buf b;
        td_buf_init(&b);
        td_ws_append_frame(&b, TD_WS_OP_PONG, ev->payload, ev->len);
        conn_enqueue_buf(c, &b);
        td_buf_free(&b);
        break;
    }
    case TD_WS_EV_PONG:
        break;
    case TD_WS_EV_CLOSE:
        /* Echo the peer's code, as RFC 6455 section 5.5.1 asks. */
        conn_ws_close(c, ev->close_code == TD_WS_CLOSE_NO_STATUS ? 0 : ev->close_code, "");
        break;
    }
}

/* Processes p[0..n); returns how many bytes were consumed (the rest is kept). */
static size_t conn_process(struct td_conn *c, uint8_t *p, size_t n)
{
    struct td_server *srv = c->srv;
    size_t used = 0;
    while (used < n && !c->destroyed) {
        if (c->api_wait != NULL)
            return used; /* held until the pending API answer is sent */
        if (c->state == CONN_CLOSING || c->state == CONN_STREAM)
            return n; /* a stream's client sends nothing more on it */
        if (c->state == CONN_HTTP) {
            struct td_http_limits lim;
            td_http_limits_default(&lim);
            struct td_http_request req;
            int rv = td_http1_parse_request(p + used, n - used, &lim, &req);
            if (rv == TD_EAGAIN)
                return used;
            if (rv < 0) {
                int status = rv == TD_ELIMIT ? 431 : rv == TD_EINVAL ? 501 : 400;
                conn_respond_text(
                    c, status, rv == TD_ELIMIT ? "request head too large\n" : "malformed request\n",
                    false);
                return n;
            }
            if (req.content_length > srv->cfg->api_max_body) {
                conn_respond_text(c, 413, "request body too large\n", false);
                return n;
            }
            size_t total = (size_t)rv + (size_t)req.content_length;
            if (n - used < total)
                return used;
            conn_handle_request(c, &req, p + used + rv);
            used += total;
            conn_arm_http_timer(c);
            continue;
        }
        size_t consumed = 0;
        struct td_ws_event ev;
        int rv = td_ws_decoder_feed(&c->ws, p + used, n - used, &consumed, &ev);
        if (rv < 0) {
            uint16_t code = td_ws_decoder_close_code(&c->ws);
            td_log_debug("websocket protocol error", "code=%u err=\"%s\"", code, td_strerror(rv));
            if (c->yconn != NULL && code == TD_WS_CLOSE_TOO_BIG) {
                /* 4400-4499: y-websocket >= 3.1 does not retry (it would resend the same) */
                conn_ws_close(c, TD_YROOM_CLOSE_TOO_LARGE, "message too big");
                return n;
            }
            conn_ws_close(c, code,
                          code == TD_WS_CLOSE_TOO_BIG        ? "message too big"
                          : code == TD_WS_CLOSE_INVALID_DATA ? "invalid utf-8"
                                                             : "protocol error");
            return n;
        }
        used += consumed;
        if (rv == 0)
            return used;
        conn_ws_event(c, &ev);
    }
    return used;
}

/* Processes plaintext input p[0..n) (from the socket, or decrypted); keeps in c->in what
 * cannot be processed yet (a partial request or frame, or input held for an API answer). */
static void conn_input(struct td_conn *c, uint8_t *p, size_t n)
{
    if (c->in.len == 0) {
        size_t used = conn_process(c, p, n);
        if (used < n && !c->destroyed && c->state != CONN_CLOSING)
            td_buf_append(&c->in, p + used, n - used);
    } else {
        td_buf_append(&c->in, p, n);
        size_t used = conn_process(c, c->in.data, c->in.len);
        td_buf_consume(&c->in, used);
    }
    /* Idle connections keep no input memory. */
    if (c->in.len == 0 && c->in.cap > 0)
        td_buf_free(&c->in);
}

/*
 * Ciphertext p[0..n) from the socket of a TLS connection: feeds it, passes every decrypted
 * byte to conn_input (the session keeps nothing undecrypted once td_tls_read returns 0, so
 * input held for an API answer lives in c->in as on a plaintext connection), and schedules a
 * flush for what the session queued (handshake flights, tickets). A session error closes the
 * connection after a best-effort write of the alert; the peer's close_notify starts a close.
 */
static void conn_tls_input(struct td_conn *c, const uint8_t *p, size_t n)
{
    struct td_server *srv = c->srv;
    if (!c->tls_started) {
        c->tls_started = true;
        if (!td_tls_looks_like_client_hello(p, n)) {
            /* Most likely http:// or ws:// sent to this port: say so, in plaintext. */
            srv->tls_handshake_errors++;
            td_log_debug("plaintext request on the TLS port refused", "%s", "");
            td_tls_free(c->tls);
            c->tls = NULL;
            conn_respond_text(c, 400, "This port speaks TLS: use https:// or wss://\n", false);
            return;
        }
    }
    bool was_open = td_tls_handshake_done(c->tls);
    int rv = td_tls_feed(c->tls, p, n);
    bool eof = false;
    while (rv == 0 && !c->destroyed) {
        ssize_t k = td_tls_read(c->tls, srv->tls_plain, CONN_TLS_PLAIN, &eof);
        if (k <= 0) {
            rv = (int)k;
            break;
        }
        conn_input(c, srv->tls_plain, (size_t)k);
    }
    if (c->destroyed)
        return;
    bool open = td_tls_handshake_done(c->tls);
    if (open && !was_open) {
        srv->tls_handshakes++;
        td_log_debug("tls handshake done", "version=%s", td_tls_version_name(c->tls));
    }
    if (rv < 0) {
        if (!open)
            srv->tls_handshake_errors++;
        td_log_debug(open ? "tls session failed" : "tls handshake failed", "err=\"%s\"",
                     td_strerror(rv));
        size_t m;
        const uint8_t *alert = td_tls_out(c->tls, &m);
        if (m > 0 && !c->writing) {
            uv_buf_t b = uv_buf_init((char *)alert, (unsigned)m);
            (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
        conn_destroy(c);
        return;
    }
    if (eof)
        conn_begin_close(c);
    conn_tls_sync(c);
    if (c->tls_pending > 0)
        conn_want_flush(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct td_conn *c = h->data;
    buf->base = (char *)c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct td_conn *c = s->data;
    if (nread < 0) {
        conn_destroy(c);
        return;
    }
    if (nread == 0 || c->destroyed)
        return;
    c->srv->bytes_in += (uint64_t)nread;
    if (c->state == CONN_CLOSING)
        return;
    if (c->tls != NULL) {
        conn_tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    conn_input(c, (uint8_t *)buf->base, (size_t)nread);
}

/* ---- accept, start, stop ------------------------------------------------------------ */

static void on_connection(uv_stream_t *server, int status)
{
    struct td_server *srv = server->data;
    if (status < 0) {
        td_log_warn("accept failed", "err=\"%s\"", uv_strerror(status));
        return;
    }
    struct td_conn *c = td_xcalloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    td_wheel_node_init(&c->deadline);
    c->tcp.data = c;
    c->open_handles = 1;
    td_buf_init(&c->in);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || srv->stopping) {
        conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (srv->tls != NULL)
        c->tls = td_tls_new(srv->tls);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    conn_arm_http_timer(c); /* also bounds the TLS handshake */
}

static void on_hub_timer(uv_timer_t *t)
{
    struct td_server *srv = t->data;
    td_hub_tick(&srv->hub, (int64_t)uv_now(srv->loop));
    if (srv->yrooms != NULL)
        td_yrooms_tick(srv->yrooms, (int64_t)uv_now(srv->loop));
}

/* ---- the durable store ------------------------------------------------------------- */

static bool ns_durable(const struct td_ns_opts *ns)
{
    return ns->history_size > 0 && ns->history_ttl_ms > 0 && ns->history_durable;
}

struct store_load_ctx {
    struct td_server *srv;
    uint64_t channels, pubs;
};

static void *on_load_channel(void *ud, const char *name, size_t len, const char *epoch,
                             uint64_t top, int64_t last_pub_wall_ms)
{
    struct store_load_ctx *x = ud;
    int64_t now = (int64_t)uv_now(x->srv->loop);
    struct td_channel *ch = td_hub_restore_channel(&x->srv->hub, (struct td_str){name, len}, epoch,
                                                   top, last_pub_wall_ms, now);
    if (ch != NULL)
        x->channels++;
    return ch;
}

static void on_load_pub(void *ud, void *channel, uint64_t offset, int64_t wall_ms,
                        struct td_str data, bool has_info, const struct td_client_info *info)
{
    struct store_load_ctx *x = ud;
    td_hub_restore_pub(&x->srv->hub, channel, offset, wall_ms, data, has_info ? info : NULL,
                       (int64_t)uv_now(x->srv->loop));
    x->pubs++;
}

static void on_store_done(void *ud, struct td_store_op *op)
{
    struct td_server *srv = ud;
    if (td_store_op_is_doc(op->kind)) {
        td_yrooms_store_done(srv->yrooms, op, (int64_t)uv_now(srv->loop));
        return;
    }
    td_hub_store_done(&srv->hub, op, (int64_t)uv_now(srv->loop));
}

static void server_store_submit(void *ud, struct td_store_op *op)
{
    struct td_server *srv = ud;
    td_store_worker_submit(&srv->store_worker, op);
}

static void server_doc_submit(void *ud, struct td_store_op *op)
{
    struct td_server *srv = ud;
    td_store_worker_submit(&srv->store_worker, op);
}

/* Opens the store and restores history when any namespace keeps durable history or Yjs
 * rooms are served (their documents live in the store). */
static int server_store_open(struct td_server *srv)
{
    const struct td_config *cfg = srv->cfg;
    bool any = ns_durable(&cfg->without_ns) || srv->yrooms != NULL;
    uint32_t max_size = ns_durable(&cfg->without_ns) ? cfg->without_ns.history_size : 0;
    for (size_t i = 0; i < cfg->n_namespaces; i++) {
        if (ns_durable(&cfg->namespaces[i])) {
            any = true;
            if (cfg->namespaces[i].history_size > max_size)
                max_size = cfg->namespaces[i].history_size;
        }
    }
    if (!any)
        return 0;
    enum td_store_sync sync;
    if (strcmp(cfg->store_sync, "full") == 0) {
        sync = TD_STORE_SYNC_FULL;
    } else if (strcmp(cfg->store_sync, "normal") == 0) {
        sync = TD_STORE_SYNC_NORMAL;
    } else if (strcmp(cfg->store_sync, "off") == 0) {
        sync = TD_STORE_SYNC_OFF;
    } else {
        td_log_error("store.sync must be \"full\", \"normal\" or \"off\"", "value=\"%s\"",
                     cfg->store_sync);
        return TD_EINVAL;
    }
    char err[512];
    int rv = td_store_open(cfg->data_dir, sync, &srv->store, err, sizeof(err));
    if (rv != 0) {
        td_log_error("cannot open the durable store", "data_dir=\"%s\" err=\"%s\"", cfg->data_dir,
                     err);
        return rv;
    }
    /* Set before loading: restored channels must see that history is durable. */
    srv->hub.store.submit = server_store_submit;
    srv->hub.store.ud = srv;
    uint64_t t0 = uv_hrtime();
    struct store_load_ctx x = {.srv = srv};
    struct td_store_load_cb cb = {on_load_channel, on_load_pub, &x};
    rv = td_store_load(srv->store, srv->hub.wall_ms(), max_size, &cb, err, sizeof(err));
    if (rv != 0) {
        td_log_error("cannot load history from the durable store", "err=\"%s\"", err);
        return rv;
    }
    td_log_info("history restored", "data_dir=\"%s\" channels=%llu publications=%llu ms=%.1f",
                cfg->data_dir, (unsigned long long)x.channels, (unsigned long long)x.pubs,
                (double)(uv_hrtime() - t0) / 1e6);
    struct td_store *ckpt = NULL;
    if (td_store_open(cfg->data_dir, sync, &ckpt, err, sizeof(err)) != 0) {
        td_log_warn("no second store connection for checkpoints", "err=\"%s\"", err);
        ckpt = NULL;
    }
    rv = td_store_worker_start(&srv->store_worker, srv->loop, srv->store, ckpt, srv->hub.wall_ms,
                               on_store_done, srv);
    if (rv != 0) {
        td_log_error("cannot start the store thread", "err=\"%s\"", uv_strerror(rv));
        return rv;
    }
    if (srv->yrooms != NULL)
        td_yrooms_set_store(srv->yrooms, server_doc_submit, srv);
    return 0;
}

static void server_store_close(struct td_server *srv)
{
    td_store_worker_stop(&srv->store_worker);
    srv->hub.store.submit = NULL;
}

int td_server_start(struct td_server *srv, uv_loop_t *loop, const struct td_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    srv->started_ms = (int64_t)uv_now(loop);
    bool tls = cfg->tls_cert_file[0] != '\0' && cfg->tls_key_file[0] != '\0';
    if (tls != (cfg->tls_cert_file[0] != '\0' || cfg->tls_key_file[0] != '\0')) {
        td_log_error("tls.cert_file and tls.key_file must both be set", "%s", "");
        return TD_EINVAL;
    }
    if (tls && cfg->tls_tcp) { /* https and wss only; the QUIC side loads the files itself */
        char err[512];
        if (td_tls_ctx_new(&srv->tls, cfg->tls_cert_file, cfg->tls_key_file, err, sizeof(err)) !=
            0) {
            td_log_error("cannot serve TLS on TCP", "err=\"%s\"", err);
            return TD_EINVAL;
        }
        srv->tls_plain = td_xmalloc(CONN_TLS_PLAIN);
    }
    td_hub_init(&srv->hub, cfg);
    if (cfg->token_hmac_secret_key[0] || cfg->token_rsa_public_key[0] ||
        cfg->token_ecdsa_public_key[0]) {
        char err[256];
        srv->hub.keys = td_jwt_keys_new(cfg->token_hmac_secret_key, cfg->token_rsa_public_key,
                                        cfg->token_ecdsa_public_key, err, sizeof(err));
        if (srv->hub.keys == NULL) {
            td_log_error("bad token key in client.token", "err=\"%s\"", err);
            td_hub_free(&srv->hub);
            return TD_EINVAL;
        }
    }
    if (cfg->yjs_enabled) {
        struct td_yrooms_config ycfg = {
            .max_message = cfg->yjs_max_update_size,
            .max_document = (size_t)cfg->yjs_max_document_size,
            .compact_every = cfg->yjs_compact_every,
            .idle_unload_ms = cfg->yjs_idle_unload_ms,
        };
        srv->yrooms = td_yrooms_new(&ycfg, &conn_yjs_ops);
        td_hub_set_yrooms(&srv->hub, srv->yrooms); /* "yjs" channels are rooms */
    }
    int rv = server_store_open(srv);
    if (rv != 0) {
        td_yrooms_free(srv->yrooms);
        srv->yrooms = NULL;
        td_hub_free(&srv->hub);
        td_store_close(srv->store);
        return rv;
    }
    struct sockaddr_storage addr;
    rv = uv_ip4_addr(cfg->address, cfg->port, (struct sockaddr_in *)&addr);
    if (rv != 0)
        rv = uv_ip6_addr(cfg->address, cfg->port, (struct sockaddr_in6 *)&addr);
    if (rv != 0) {
        td_log_error("invalid address", "address=%s", cfg->address);
        server_store_close(srv);
        return rv;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    rv = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
    if (rv != 0) {
        td_log_error("cannot listen", "address=%s port=%d err=\"%s\"", cfg->address, cfg->port,
                     uv_strerror(rv));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        server_store_close(srv);
        return rv;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    td_emu_init(&srv->emu);
    srv->wheel = td_xmalloc(sizeof(*srv->wheel));
    td_wheel_init(srv->wheel, TD_SERVER_WHEEL_MS, (int64_t)uv_now(loop));
    uv_timer_init(loop, &srv->wheel_timer);
    srv->wheel_timer.data = srv;
    uv_unref((uv_handle_t *)&srv->wheel_timer);
    uv_idle_init(loop, &srv->flush_idle);
    srv->flush_idle.data = srv;
    uv_check_init(loop, &srv->flush_check);
    srv->flush_check.data = srv;
    uv_check_start(&srv->flush_check, on_flush_check);
    uv_unref((uv_handle_t *)&srv->flush_check);
    uv_timer_init(loop, &srv->hub_timer);
    srv->hub_timer.data = srv;
    uv_timer_start(&srv->hub_timer, on_hub_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->hub_timer);
    const char *tls_mode = srv->tls != NULL ? "on" : tls ? "quic-only" : "off";
    td_log_info("listening", "address=%s port=%d tls=%s", cfg->address, srv->bound_port, tls_mode);
    if (cfg->webtransport_enabled) {
        char err[256];
        rv = td_wtsrv_start(&srv->wt, loop, cfg, &srv->hub, cfg->address, srv->bound_port, err,
                            sizeof(err));
        if (rv != 0) {
            td_log_error("cannot serve webtransport", "err=\"%s\"", err);
            td_server_shutdown(srv);
            return rv;
        }
        td_log_info("webtransport listening",
                    "address=%s udp_port=%d path=/connection/webtransport", cfg->address,
                    td_wtsrv_port(srv->wt));
    }
    return 0;
}

void td_server_shutdown(struct td_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    /* Commit what is queued and send those answers before the connections close. */
    server_store_close(srv);
    if (srv->wt != NULL)
        td_wtsrv_shutdown(srv->wt, NULL, NULL);
    for (struct td_conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->state == CONN_WS)
            conn_ws_close(c, TD_DISC_SHUTDOWN, "shutdown");
        else if (c->state == CONN_STREAM)
            conn_emu_close(c, TD_DISC_SHUTDOWN, "shutdown");
        else
            conn_begin_close(c);
    }
    uv_timer_stop(&srv->hub_timer);
    uv_close((uv_handle_t *)&srv->hub_timer, NULL);
    /* The flush check stays active (unreferenced) so closing connections still drain. */
}

void td_server_free(struct td_server *srv)
{
    uv_close((uv_handle_t *)&srv->flush_idle, NULL);
    uv_close((uv_handle_t *)&srv->wheel_timer, NULL);
    uv_close((uv_handle_t *)&srv->flush_check, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    td_wtsrv_free(srv->wt);
    td_emu_free(&srv->emu);
    td_yrooms_free(srv->yrooms);
    td_hub_free(&srv->hub);
    td_store_close(srv->store);
    free(srv->wheel);
    td_tls_ctx_del(srv->tls); /* after the loop closed every connection and so its session */
    free(srv->tls_plain);
}
