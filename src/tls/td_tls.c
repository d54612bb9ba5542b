/*
 * td_tls.c - TLS server sessions on GnuTLS over in-memory buffers (see td_tls.h).
 *
 * Design note. A session is in one of three states:
 *   HANDSHAKE: every feed runs gnutls_handshake until it wants more input (GNUTLS_E_AGAIN) or
 *     completes. Reads return 0, writes TD_EINVAL.
 *   OPEN: feeds only buffer; reads run gnutls_record_recv; writes run gnutls_record_send.
 *   FAILED (sticky): a fatal GnuTLS error happened; the appropriate alert, if any, was queued
 *     once; every later feed/read/write returns t->err.
 * Two flags refine OPEN: eof (the peer's close_notify was read) and closed (we sent ours).
 *
 * The transport: GnuTLS pulls from t->in starting at in_off, and "would block" (EAGAIN) when
 * nothing is left; it pushes into t->out, whose unconsumed part starts at out_off. GnuTLS
 * reads a record as its header then its body, buffering partial records itself. A call is
 * repeated until it returns GNUTLS_E_AGAIN with t->in empty (GnuTLS also returns AGAIN after a
 * post-handshake message with input still waiting), so then everything fed was consumed and
 * the input memory is released (idle connections hold no input buffer).
 * Invariants: in_off <= in.len; in.len - in_off <= TD_TLS_MAX_IN; out_off <= out.len;
 * out.len - out_off <= TLS_OUT_HARD. Output is never refused to GnuTLS below TLS_OUT_HARD
 * (refusing would make GnuTLS keep a half-sent record and ask us to repeat the call), so
 * td_tls_write checks TD_TLS_MAX_OUT before encrypting, and TLS_OUT_HARD only bounds what the
 * peer can provoke on its own (KeyUpdate answers, alerts) while the caller does not flush.
 */
#include "tls/td_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "core/td_alloc.h"
#include "core/td_buf.h"
#include "core/td_err.h"

#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_MAX_PLAINTEXT 16384
/* Hard bound on queued output: the write cap plus room for what the peer provokes. */
#define TLS_OUT_HARD (TD_TLS_MAX_OUT + 65536)
/* Non-fatal GnuTLS results (warning alerts, EINTR) in a row that consume no input before the
 * session is failed rather than spun on. */
#define TLS_MAX_STALLS 8
/* Free the output buffer when drained if it grew past this. */
#define TLS_OUT_KEEP 65536

struct td_tls_ctx {
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    gnutls_datum_t ticket_key;
};

enum tls_state { TLS_HANDSHAKE, TLS_OPEN, TLS_FAILED };

struct td_tls {
    struct td_tls_ctx *ctx;
    gnutls_session_t s;
    enum tls_state state;
    int err;      /* TD_EPROTO or TD_ELIMIT once FAILED */
    bool hs_done; /* the handshake completed (stays true once FAILED) */
    bool eof;     /* the peer's close_notify was read */
    bool closed;  /* our close_notify was queued */
    bool out_overflow;
    struct td_buf in;
    size_t in_off;
    uint64_t pulled; /* bytes handed to GnuTLS so far: progress marker for the stall guard */
    struct td_buf out;
    size_t out_off;
};

/* ---- context ---- */

int td_tls_ctx_new(struct td_tls_ctx **out, const char *cert_file, const char *key_file, char *err,
                   size_t errlen)
{
    struct td_tls_ctx *ctx = td_xcalloc(1, sizeof(*ctx));
    const char *what = "cannot load TLS certificate";
    int rv = gnutls_certificate_allocate_credentials(&ctx->cred);
    if (rv == 0)
        rv = gnutls_certificate_set_x509_key_file(ctx->cred, cert_file, key_file,
                                                  GNUTLS_X509_FMT_PEM);
    if (rv == 0) {
        what = "cannot set TLS priorities";
        rv = gnutls_priority_init(&ctx->prio, TLS_PRIORITY, NULL);
    }
    if (rv == 0) {
        what = "cannot generate a session ticket key";
        rv = gnutls_session_ticket_key_generate(&ctx->ticket_key);
    }
    if (rv < 0) {
        snprintf(err, errlen, "%s (certificate %s, key %s): %s", what, cert_file, key_file,
                 gnutls_strerror(rv));
        td_tls_ctx_del(ctx);
        return TD_EINVAL;
    }
    *out = ctx;
    return 0;
}

void td_tls_ctx_del(struct td_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->ticket_key.data != NULL) {
        gnutls_memset(ctx->ticket_key.data, 0, ctx->ticket_key.size);
        gnutls_free(ctx->ticket_key.data);
    }
    if (ctx->prio != NULL)
        gnutls_priority_deinit(ctx->prio);
    if (ctx->cred != NULL)
        gnutls_certificate_free_credentials(ctx->cred);
    free(ctx);
}

/* ---- transport ---- */

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    struct td_tls *t = ptr;
    size_t avail = t->in.len - t->in_off;
    if (avail == 0) {
        gnutls_transport_set_errno(t->s, EAGAIN);
        return -1;
    }
    size_t k = len < avail ? len : avail;
    memcpy(data, t->in.data + t->in_off, k);
    t->in_off += k;
    t->pulled += k;
    return (ssize_t)k;
}

/* Only called when GnuTLS was given a timeout; we never give one, but GnuTLS requires the
 * function once the pull function is replaced. It must not report a timeout (that is fatal):
 * "would block" when empty. */
static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    (void)ms;
    struct td_tls *t = ptr;
    if (t->in.len > t->in_off)
        return 1;
    gnutls_transport_set_errno(t->s, EAGAIN);
    return -1;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    struct td_tls *t = ptr;
    size_t pending = t->out.len - t->out_off;
    if (len > TLS_OUT_HARD - pending) {
        t->out_overflow = true;
        gnutls_transport_set_errno(t->s, ENOBUFS);
        return -1;
    }
    if (t->out_off > 0) {
        memmove(t->out.data, t->out.data + t->out_off, pending);
        t->out.len = pending;
        t->out_off = 0;
    }
    td_buf_append(&t->out, data, len);
    return (ssize_t)len;
}

/* Called once GnuTLS reported "would block" on input: everything fed was consumed. */
static void tls_input_drained(struct td_tls *t)
{
    if (t->in_off == t->in.len) {
        td_buf_free(&t->in);
        t->in_off = 0;
    }
}

/* ---- sessions ---- */

struct td_tls *td_tls_new(struct td_tls_ctx *ctx)
{
    static const gnutls_datum_t alpn = {(unsigned char *)(uintptr_t) "http/1.1", 8};
    struct td_tls *t = td_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->state = TLS_HANDSHAKE;
    td_buf_init(&t->in);
    td_buf_init(&t->out);
    if (gnutls_init(&t->s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) != 0)
        abort(); /* only fails on allocation failure */
    if (gnutls_priority_set(t->s, ctx->prio) != 0 ||
        gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, ctx->cred) != 0 ||
        gnutls_alpn_set_protocols(t->s, &alpn, 1, GNUTLS_ALPN_MANDATORY) != 0 ||
        gnutls_session_ticket_enable_server(t->s, &ctx->ticket_key) != 0)
        abort(); /* cannot fail with the arguments above */
    gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_IGNORE);
    gnutls_handshake_set_timeout(t->s, 0);
    gnutls_transport_set_ptr(t->s, t);
    gnutls_transport_set_push_function(t->s, tls_push);
    gnutls_transport_set_pull_function(t->s, tls_pull);
    gnutls_transport_set_pull_timeout_function(t->s, tls_pull_timeout);
    return t;
}

void td_tls_free(struct td_tls *t)
{
    if (t == NULL)
        return;
    gnutls_deinit(t->s);
    td_buf_free(&t->in);
    td_buf_free(&t->out);
    free(t);
}

/* Enters FAILED for GnuTLS error gerr, queueing the matching alert once. Returns t->err. */
static int tls_fail(struct td_tls *t, int gerr)
{
    if (t->state != TLS_FAILED) {
        t->state = TLS_FAILED;
        t->err = t->out_overflow ? TD_ELIMIT : TD_EPROTO;
        /* Nothing to tell a peer that sent a fatal alert, or whose output we could not hold. */
        if (!t->out_overflow && gerr != GNUTLS_E_FATAL_ALERT_RECEIVED)
            (void)gnutls_alert_send_appropriate(t->s, gerr);
    }
    return t->err;
}

/* Decides what to do with a negative GnuTLS result rv of a call that may be retried: returns 1
 * to retry the call, 0 to stop (all input consumed), or a negative code after failing the
 * session. *stalls counts retries that consumed no input; *mark is the progress marker. */
static int tls_retry(struct td_tls *t, int rv, int *stalls, uint64_t *mark)
{
    /* GNUTLS_E_AGAIN also ends a recv that handled a post-handshake message (KeyUpdate,
     * NewSessionTicket) with more input waiting: only an empty input means "would block". */
    if (rv == GNUTLS_E_AGAIN && t->in_off == t->in.len) {
        tls_input_drained(t);
        return 0;
    }
    if (gnutls_error_is_fatal(rv) || rv == GNUTLS_E_REHANDSHAKE)
        return tls_fail(t, rv); /* client-initiated renegotiation is refused */
    /* Warning alerts, EINTR, AGAIN with input left: retry while input keeps being consumed. */
    if (t->pulled == *mark && ++*stalls > TLS_MAX_STALLS)
        return tls_fail(t, rv);
    *mark = t->pulled;
    return 1;
}

static int tls_handshake(struct td_tls *t)
{
    int stalls = 0;
    uint64_t mark = t->pulled;
    for (;;) {
        int rv = gnutls_handshake(t->s);
        if (rv == 0) {
            t->state = TLS_OPEN;
            t->hs_done = true;
            return 0;
        }
        rv = tls_retry(t, rv, &stalls, &mark);
        if (rv <= 0)
            return rv;
    }
}

int td_tls_feed(struct td_tls *t, const uint8_t *p, size_t n)
{
    if (t->state == TLS_FAILED)
        return t->err;
    size_t pending = t->in.len - t->in_off;
    if (n > TD_TLS_MAX_IN - pending)
        return TD_ELIMIT;
    if (t->in_off > 0) {
        memmove(t->in.data, t->in.data + t->in_off, pending);
        t->in.len = pending;
        t->in_off = 0;
    }
    if (n > 0)
        td_buf_append(&t->in, p, n);
    if (t->state == TLS_HANDSHAKE)
        return tls_handshake(t);
    return 0;
}

ssize_t td_tls_read(struct td_tls *t, uint8_t *out, size_t cap, bool *eof)
{
    *eof = t->eof;
    if (t->state == TLS_FAILED)
        return t->err;
    if (t->state == TLS_HANDSHAKE || t->eof || cap == 0)
        return 0;
    int stalls = 0;
    uint64_t mark = t->pulled;
    for (;;) {
        ssize_t rv = gnutls_record_recv(t->s, out, cap);
        if (rv > 0)
            return rv;
        if (rv == 0) {
            t->eof = true;
            *eof = true;
            return 0;
        }
        int r = tls_retry(t, (int)rv, &stalls, &mark);
        if (r <= 0)
            return r;
    }
}

/* Encrypts p[0..n) with as many gnutls_record_send calls as it takes (each sends at most one
 * record). Returns 0 or the session's error. */
static int tls_send(struct td_tls *t, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t rv = gnutls_record_send(t->s, p, n);
        if (rv <= 0) /* the push side never blocks, so even GNUTLS_E_AGAIN is a failure */
            return tls_fail(t, rv < 0 ? (int)rv : GNUTLS_E_INTERNAL_ERROR);
        p += rv;
        n -= (size_t)rv;
    }
    return 0;
}

int td_tls_writev(struct td_tls *t, const struct iovec *iov, size_t niov)
{
    if (t->state == TLS_FAILED)
        return t->err;
    if (t->state != TLS_OPEN || t->closed)
        return TD_EINVAL;
    size_t total = 0;
    for (size_t i = 0; i < niov; i++) {
        if (iov[i].iov_len > TD_TLS_MAX_OUT - total)
            return TD_ELIMIT;
        total += iov[i].iov_len;
    }
    size_t maxrec = gnutls_record_get_max_size(t->s);
    if (maxrec == 0 || maxrec > TLS_MAX_PLAINTEXT)
        maxrec = TLS_MAX_PLAINTEXT;
    /* Every record but the last is full (see below), so this bounds the ciphertext. */
    size_t nrec = total / maxrec + 1;
    size_t wire = total + nrec * (5 + gnutls_record_overhead_size(t->s));
    size_t pending = t->out.len - t->out_off;
    if (wire > TD_TLS_MAX_OUT - pending)
        return TD_ELIMIT;

    /* Pieces are gathered into full records in stage; a piece met with an empty stage sends
     * its whole records directly, without the copy. */
    uint8_t stage[TLS_MAX_PLAINTEXT];
    size_t staged = 0;
    for (size_t i = 0; i < niov; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len > 0) {
            if (staged == 0 && len >= maxrec) {
                size_t direct = len - len % maxrec;
                int rv = tls_send(t, p, direct);
                if (rv < 0)
                    return rv;
                p += direct;
                len -= direct;
                continue;
            }
            size_t k = maxrec - staged < len ? maxrec - staged : len;
            memcpy(stage + staged, p, k);
            staged += k;
            p += k;
            len -= k;
            if (staged == maxrec) {
                int rv = tls_send(t, stage, staged);
                if (rv < 0)
                    return rv;
                staged = 0;
            }
        }
    }
    return staged > 0 ? tls_send(t, stage, staged) : 0;
}

int td_tls_write(struct td_tls *t, const void *p, size_t n)
{
    struct iovec v = {.iov_base = (void *)(uintptr_t)p, .iov_len = n};
    return td_tls_writev(t, &v, 1);
}

const uint8_t *td_tls_out(struct td_tls *t, size_t *n)
{
    *n = t->out.len - t->out_off;
    return *n > 0 ? t->out.data + t->out_off : t->out.data;
}

void td_tls_out_consume(struct td_tls *t, size_t n)
{
    t->out_off += n;
    if (t->out_off >= t->out.len) {
        t->out_off = 0;
        if (t->out.cap > TLS_OUT_KEEP)
            td_buf_free(&t->out);
        else
            t->out.len = 0;
    }
}

int td_tls_close_notify(struct td_tls *t)
{
    if (t->state == TLS_FAILED)
        return t->err;
    if (t->state != TLS_OPEN || t->closed)
        return 0;
    t->closed = true;
    int rv = gnutls_bye(t->s, GNUTLS_SHUT_WR);
    return rv < 0 ? tls_fail(t, rv) : 0;
}

bool td_tls_handshake_done(const struct td_tls *t)
{
    return t->hs_done;
}

const char *td_tls_version_name(const struct td_tls *t)
{
    if (!t->hs_done)
        return "-";
    const char *name = gnutls_protocol_get_name(gnutls_protocol_get_version(t->s));
    return name != NULL ? name : "?";
}

bool td_tls_looks_like_client_hello(const uint8_t *p, size_t n)
{
    if (n == 0 || p[0] != 0x16)
        return false;
    if (n > 1 && p[1] != 0x03)
        return false;
    return n <= 5 || p[5] == 0x01;
}
