/*
 * td_conn.c - the connection core of the TCP server (see td_conn.h): the output queue and
 * its once-per-iteration flush (cork buffer, writev, one uv_write for the rest), the TLS glue,
 * the deadline wheel, the read path (HTTP heads, then WebSocket frames handed to
 * td_ws_conn.c), HTTP answers, and the close/destroy sequence. The transports (td_ws_conn.c,
 * td_emu_conn.c, td_yjs_conn.c) and the request routing (td_server.c) build on these.
 */
#include "io/td_conn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "core/td_wheel.h"
#include "http/td_http1.h"
#include "http/td_ws.h"
#include "tls/td_tls.h"

#define CONN_CLOSE_TIMEOUT_MS 5000
#define CONN_MAX_IOV 1024
/* TLS: plaintext encrypted per flush round (then written before more is encrypted, so the
 * session's ciphertext buffer stays small); the shared decryption buffer is TD_CONN_TLS_PLAIN. */
#define CONN_TLS_CHUNK 65536

/* One queued output: an optional WebSocket frame header, then the shared buffer. */
struct td_conn_outq_entry {
    struct td_rbuf *rb;
    uint32_t done; /* bytes of (hdr + rb) already written */
    uint8_t hlen;
    uint8_t hdr[10];
};

struct write_req {
    uv_write_t req;
    struct td_conn *conn;
    struct td_conn_outq_entry *entries;
    uint32_t n;
    uint64_t bytes;
    uint8_t *cipher; /* TLS: a copy of the ciphertext written (entries is then NULL) */
};

static void on_flush_idle(uv_idle_t *h);

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
void td_conn_enqueue(struct td_conn *c, const uint8_t *hdr, size_t hlen, struct td_rbuf *rb)
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
    struct td_conn_outq_entry *e = &c->q[c->qhead + c->qlen++];
    e->rb = td_rbuf_ref(rb);
    e->done = 0;
    e->hlen = (uint8_t)hlen;
    if (hlen)
        memcpy(e->hdr, hdr, hlen);
    c->out_bytes += hlen + rb->len;
    conn_want_flush(c);
}

void td_conn_enqueue_buf(struct td_conn *c, const struct td_buf *b)
{
    struct td_rbuf *rb = td_rbuf_from(b->data, b->len);
    td_conn_enqueue(c, NULL, 0, rb);
    td_rbuf_unref(rb);
}

static size_t entry_iov(struct td_conn_outq_entry *e, uv_buf_t *iov)
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
        struct td_conn_outq_entry *e = &c->q[c->qhead];
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
        const struct td_conn_outq_entry *e = &c->q[c->qhead + i];
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
        struct td_conn_outq_entry *e = &c->q[c->qhead];
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
        if (c->qlen == 0 && c->state == TD_CONN_CLOSING)
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
        struct td_conn_outq_entry *e = &w->entries[i];
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

static void on_flush_check(uv_check_t *h)
{
    struct td_server *srv = h->data;
    while (srv->flush_head != NULL) {
        struct td_conn *c = srv->flush_head;
        srv->flush_head = c->flush_next;
        c->in_flush = false;
        if (c->tick_due) {
            c->tick_due = false;
            td_conn_schedule_client(c);
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
        td_yconn_leave(c->yconn, td_conn_now(c));
        c->yconn = NULL;
        srv->nyjs--;
    }
    if (c->client != NULL) {
        td_emu_conn_forget(c);
        td_client_free(c->client, td_conn_now(c));
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
void td_conn_deadline_at(struct td_conn *c, int64_t at)
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
    if (c->state == TD_CONN_HTTP && !c->destroyed)
        td_conn_deadline_at(c, td_conn_now(c) + c->srv->cfg->http_idle_timeout_ms);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* Called when the output queue is empty. */
static void conn_after_drain(struct td_conn *c)
{
    if (c->state != TD_CONN_CLOSING || c->shutdown_sent || c->destroyed)
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
void td_conn_begin_close(struct td_conn *c)
{
    if (c->state == TD_CONN_CLOSING || c->destroyed)
        return;
    c->state = TD_CONN_CLOSING;
    td_conn_deadline_at(c, td_conn_now(c) + CONN_CLOSE_TIMEOUT_MS);
    conn_want_flush(c);
}

/* ---- client ticks and deadlines ---------------------------------------------------- */

void td_conn_schedule_client(struct td_conn *c)
{
    if (c->client == NULL || (c->state != TD_CONN_WS && c->state != TD_CONN_STREAM))
        return;
    int64_t now = td_conn_now(c);
    int64_t next = td_client_tick(c->client, now);
    if (c->state != TD_CONN_WS && c->state != TD_CONN_STREAM)
        return;
    if (next > 0)
        td_conn_deadline_at(c, next);
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
static void on_conn_deadline(struct td_wheel_node *n, void *ud)
{
    (void)ud;
    struct td_conn *c = (struct td_conn *)((char *)n - offsetof(struct td_conn, deadline));
    if (c->state == TD_CONN_WS && c->yconn != NULL) {
        td_yjs_conn_deadline(c);
    } else if (c->state == TD_CONN_WS || c->state == TD_CONN_STREAM) {
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

/* ---- HTTP answers -------------------------------------------------------------------- */

void td_conn_respond(struct td_conn *c, int status, const char *ctype, const char *extra,
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
    td_conn_enqueue_buf(c, &b);
    td_buf_free(&b);
    if (!keep_alive)
        td_conn_begin_close(c);
}

void td_conn_respond_text(struct td_conn *c, int status, const char *text, bool keep_alive)
{
    td_conn_respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text), keep_alive);
}

/* Origin policy: no Origin header (non-browser) is allowed; "*" allows all; otherwise the
 * origin must be listed or be the same host as the Host header. */
bool td_conn_origin_allowed(const struct td_config *cfg, const struct td_http_request *req)
{
    const struct td_str *origin = td_http_header_get(req, "Origin");
    const struct td_str *host = td_http_header_get(req, "Host");
    if (origin == NULL)
        return true;
    return td_http_origin_allowed((const char *const *)cfg->allowed_origins, cfg->n_allowed_origins,
                                  *origin, host != NULL ? *host : (struct td_str){"", 0});
}

/* ---- input ------------------------------------------------------------------------- */

/* Processes p[0..n); returns how many bytes were consumed (the rest is kept). */
static size_t conn_process(struct td_conn *c, uint8_t *p, size_t n)
{
    struct td_server *srv = c->srv;
    size_t used = 0;
    while (used < n && !c->destroyed) {
        if (c->api_wait != NULL)
            return used; /* held until the pending API answer is sent */
        if (c->state == TD_CONN_CLOSING || c->state == TD_CONN_STREAM)
            return n; /* a stream's client sends nothing more on it */
        if (c->state == TD_CONN_HTTP) {
            struct td_http_limits lim;
            td_http_limits_default(&lim);
            struct td_http_request req;
            int rv = td_http1_parse_request(p + used, n - used, &lim, &req);
            if (rv == TD_EAGAIN)
                return used;
            if (rv < 0) {
                int status = rv == TD_ELIMIT ? 431 : rv == TD_EINVAL ? 501 : 400;
                td_conn_respond_text(
                    c, status, rv == TD_ELIMIT ? "request head too large\n" : "malformed request\n",
                    false);
                return n;
            }
            if (req.content_length > srv->cfg->api_max_body) {
                td_conn_respond_text(c, 413, "request body too large\n", false);
                return n;
            }
            size_t total = (size_t)rv + (size_t)req.content_length;
            if (n - used < total)
                return used;
            td_server_handle_request(c, &req, p + used + rv);
            used += total;
            conn_arm_http_timer(c);
            continue;
        }
        size_t consumed = 0;
        int rv = td_ws_conn_feed(c, p + used, n - used, &consumed);
        if (rv < 0)
            return n;
        used += consumed;
        if (rv == 0)
            return used;
    }
    return used;
}

/* Processes plaintext input p[0..n) (from the socket, or decrypted); keeps in c->in what
 * cannot be processed yet (a partial request or frame, or input held for an API answer). */
static void conn_input(struct td_conn *c, uint8_t *p, size_t n)
{
    if (c->in.len == 0) {
        size_t used = conn_process(c, p, n);
        if (used < n && !c->destroyed && c->state != TD_CONN_CLOSING)
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
            td_conn_respond_text(c, 400, "This port speaks TLS: use https:// or wss://\n", false);
            return;
        }
    }
    bool was_open = td_tls_handshake_done(c->tls);
    int rv = td_tls_feed(c->tls, p, n);
    bool eof = false;
    while (rv == 0 && !c->destroyed) {
        ssize_t k = td_tls_read(c->tls, srv->tls_plain, TD_CONN_TLS_PLAIN, &eof);
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
        td_conn_begin_close(c);
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
    if (c->state == TD_CONN_CLOSING)
        return;
    if (c->tls != NULL) {
        conn_tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    conn_input(c, (uint8_t *)buf->base, (size_t)nread);
}

/* Resumes reading after a held API answer: requests that arrived meanwhile are in c->in. */
void td_conn_resume(struct td_conn *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->in.len > 0) {
        size_t used = conn_process(c, c->in.data, c->in.len);
        if (!c->destroyed)
            td_buf_consume(&c->in, used);
    }
}

/* ---- accept, loop handles ----------------------------------------------------------- */

void td_conn_accept(struct td_server *srv, uv_stream_t *listener)
{
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
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || srv->stopping) {
        conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (srv->tls != NULL)
        c->tls = td_tls_new(srv->tls);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    conn_arm_http_timer(c); /* also bounds the TLS handshake */
}

void td_conn_loop_init(struct td_server *srv)
{
    uv_loop_t *loop = srv->loop;
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
}
