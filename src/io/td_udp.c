/*
 * td_udp.c - the QUIC UDP listener on libuv (see td_udp.h).
 *
 * Design note. A connection node (struct udp_conn, the td_quic user data) is
 *   accepting: created for one client Initial, inside td_quic_conn_accept. Its CIDs already
 *     enter the map (td_quic reports them there), but it is not on any list and the handler
 *     has not seen it: on_ready is remembered (ready_pending), other events fail the
 *     connection (no 0-RTT, so none can come).
 *   linked: on_accept returned the app state; the node is on u->conns, has a timer and may
 *     sit on the dirty list (dirty == on it). Every event (read, timer, want_write) only marks
 *     it dirty; the uv_check pass (udp_run) writes it, re-arms its timer, or reaps it.
 *   gone: reaped (CIDs out of the map, on_closed called, td_quic_conn_del done, off every
 *     list); its memory lives until the timer's close callback frees it.
 * Invariants: every map entry in u->cids is a struct udp_cid on its node's list; a node is
 * on the dirty list iff dirty; reaping happens only in udp_run and td_udp_stop, never inside
 * a td_quic callback; while nsend > 0 (libuv holds queued packets because the socket said
 * EAGAIN) no connection is written (except by td_udp_close_all) so packets stay in order
 * and nothing spins.
 */
#include "io/td_udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "core/td_map.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* libuv's recvmmsg slices the read buffer into 64 KiB slots, one datagram each. */
#define UDP_RX_SLOT (64 * 1024)
#define UDP_RX_SLOTS 8
/* Packets gathered before one sendmmsg. */
#define UDP_TX_BATCH 64
/* One UDP_SEGMENT message: at most this many segments and bytes (kernel limits). */
#define UDP_GSO_MAX_SEGS 64
#define UDP_GSO_MAX_BYTES 65000
/* A client's first datagram is padded to at least this (RFC 9000 14.1). */
#define UDP_MIN_INITIAL 1200
/* What a failing on_ready (deferred out of td_quic_conn_accept) closes with. */
#define UDP_H3_INTERNAL_ERROR 0x102

struct udp_conn;

struct udp_cid {
    struct udp_cid *next;
    struct udp_conn *conn;
    struct td_quic_cid cid; /* the map key points here */
};

struct udp_ip {
    uint32_t n;
    size_t len;
    uint8_t addr[16]; /* the map key points here */
};

struct udp_conn {
    struct td_udp *u;
    struct td_quic_conn *qc;
    void *app;
    struct udp_cid *cids;
    struct udp_ip *ip;
    uv_timer_t timer;
    uint64_t armed; /* the deadline the timer is set for; UINT64_MAX: not set */
    struct udp_conn *prev, *next;
    struct udp_conn *dirty_next;
    bool linked, dirty, gone, ready_pending;
};

struct udp_pkt {
    size_t len;
    socklen_t to_len;
    struct sockaddr_storage to;
};

struct udp_send {
    uv_udp_send_t req;
    struct td_udp *u;
    size_t len;
    uint8_t data[];
};

struct td_udp {
    uv_loop_t *loop;
    struct td_quic_ctx *ctx;
    struct td_udp_handler h;
    void *ud;
    struct td_udp_limits lim;
    uv_udp_t sock;
    uv_check_t check;
    uv_idle_t idle;
    int fd;
    int port;
    struct sockaddr_storage local;
    socklen_t local_len;
    struct td_map cids; /* CID bytes -> struct udp_cid */
    struct td_map ips;  /* remote address bytes -> struct udp_ip */
    struct udp_conn *conns;
    struct udp_conn *dirty;
    struct td_udp_stats st;
    uint32_t nsend; /* packets handed to uv_udp_send and not completed */
    bool gso, closing, stopping;
    uint64_t sl_window_ms; /* stateless replies: start of the current one-second window */
    uint32_t sl_left;      /* ... and how many it still allows */
    int open_handles;
    void (*done)(void *ud);
    void *done_ud;
    size_t tx_n;
    struct udp_pkt tx[UDP_TX_BATCH];
    uint8_t *txbuf; /* UDP_TX_BATCH slots of TD_QUIC_MAX_UDP_PAYLOAD */
    uint8_t *rxbuf; /* UDP_RX_SLOTS slots of UDP_RX_SLOT */
};

static void udp_handle_closed(struct td_udp *u);
static void on_idle(uv_idle_t *h);

static socklen_t addr_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                    : (socklen_t)sizeof(struct sockaddr_in);
}

/* ---- the CID map --------------------------------------------------------------------- */

static void cid_add(struct udp_conn *n, const struct td_quic_cid *cid)
{
    struct td_udp *u = n->u;
    if (cid->len == 0 || cid->len > TD_QUIC_MAX_CIDLEN)
        return;
    /* The first owner keeps a CID: a client may reuse another connection's original DCID,
     * and that must not steal its packets. */
    if (td_map_get(&u->cids, (const char *)cid->data, cid->len) != NULL)
        return;
    struct udp_cid *e = td_xmalloc(sizeof(*e));
    e->cid = *cid;
    e->conn = n;
    e->next = n->cids;
    n->cids = e;
    td_map_put(&u->cids, (const char *)e->cid.data, e->cid.len, e);
}

static void cid_free(struct td_udp *u, struct udp_cid *e)
{
    if (td_map_get(&u->cids, (const char *)e->cid.data, e->cid.len) == e)
        td_map_del(&u->cids, (const char *)e->cid.data, e->cid.len);
    free(e);
}

static void cid_remove(struct udp_conn *n, const struct td_quic_cid *cid)
{
    for (struct udp_cid **pp = &n->cids; *pp != NULL; pp = &(*pp)->next) {
        struct udp_cid *e = *pp;
        if (e->cid.len == cid->len && memcmp(e->cid.data, cid->data, cid->len) == 0) {
            *pp = e->next;
            cid_free(n->u, e);
            return;
        }
    }
}

static void cid_remove_all(struct udp_conn *n)
{
    while (n->cids != NULL) {
        struct udp_cid *e = n->cids;
        n->cids = e->next;
        cid_free(n->u, e);
    }
}

/* ---- per-address counts -------------------------------------------------------------- */

/* The address bytes connections are counted by (IPv4-mapped IPv6 counts as IPv4). */
static size_t ip_key(const struct sockaddr *a, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)a)->sin_addr, 4);
        return 4;
    }
    const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)a)->sin6_addr.s6_addr;
    if (memcmp(b, mapped, sizeof(mapped)) == 0) {
        memcpy(out, b + 12, 4);
        return 4;
    }
    memcpy(out, b, 16);
    return 16;
}

static void ip_release(struct td_udp *u, struct udp_ip *ip)
{
    if (ip == NULL || --ip->n > 0)
        return;
    td_map_del(&u->ips, (const char *)ip->addr, ip->len);
    free(ip);
}

/* ---- sending ------------------------------------------------------------------------- */

static uint8_t *tx_data(struct td_udp *u, size_t i)
{
    return u->txbuf + i * TD_QUIC_MAX_UDP_PAYLOAD;
}

static void on_sent(uv_udp_send_t *req, int status)
{
    struct udp_send *s = (struct udp_send *)(void *)req;
    struct td_udp *u = s->u;
    if (status >= 0) {
        u->st.packets_out++;
        u->st.bytes_out += s->len;
    } else if (status != UV_ECANCELED) {
        u->st.send_errors++;
    }
    free(s);
    if (--u->nsend == 0 && !u->stopping && u->dirty != NULL)
        uv_idle_start(&u->idle, on_idle);
}

/* Hands packets [from, tx_n) to libuv, which sends them when the socket is writable. */
static void tx_queue(struct td_udp *u, size_t from)
{
    for (size_t i = from; i < u->tx_n; i++) {
        const struct udp_pkt *pk = &u->tx[i];
        struct udp_send *s = td_xmalloc(sizeof(*s) + pk->len);
        s->u = u;
        s->len = pk->len;
        memcpy(s->data, tx_data(u, i), pk->len);
        uv_buf_t b = uv_buf_init((char *)s->data, (unsigned)pk->len);
        if (uv_udp_send(&s->req, &u->sock, &b, 1, (const struct sockaddr *)&pk->to, on_sent) != 0) {
            free(s);
            u->st.send_errors++;
            continue;
        }
        u->nsend++;
    }
}

static bool same_dest(const struct udp_pkt *a, const struct udp_pkt *b)
{
    return a->to_len == b->to_len && memcmp(&a->to, &b->to, a->to_len) == 0;
}

union udp_cmsg {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    size_t align; /* struct cmsghdr alignment (it has a flexible array member) */
};

/*
 * Sends the batch with sendmmsg. Runs of equal-size packets to one destination (the last
 * may be shorter) become one UDP_SEGMENT message when GSO is on; a kernel or device that
 * refuses GSO turns it off for good and the batch is re-sent without it.
 */
static void tx_flush(struct td_udp *u)
{
    if (u->tx_n == 0)
        return;
    if (u->nsend > 0) { /* libuv still holds packets: queue behind them, keep the order */
        tx_queue(u, 0);
        u->tx_n = 0;
        return;
    }
    struct mmsghdr msgs[UDP_TX_BATCH];
    struct iovec iov[UDP_TX_BATCH];
    union udp_cmsg cm[UDP_TX_BATCH];
    size_t ends[UDP_TX_BATCH];
    size_t i = 0;
    while (i < u->tx_n) {
        size_t nm = 0;
        memset(msgs, 0, sizeof(msgs));
        for (size_t j = i; j < u->tx_n; nm++) {
            size_t seg = u->tx[j].len, total = 0, k = j;
            do {
                iov[k].iov_base = tx_data(u, k);
                iov[k].iov_len = u->tx[k].len;
                total += u->tx[k].len;
                k++;
            } while (u->gso && k < u->tx_n && k - j < UDP_GSO_MAX_SEGS && u->tx[k - 1].len == seg &&
                     u->tx[k].len <= seg && total + u->tx[k].len <= UDP_GSO_MAX_BYTES &&
                     same_dest(&u->tx[k], &u->tx[j]));
            struct msghdr *h = &msgs[nm].msg_hdr;
            h->msg_name = &u->tx[j].to;
            h->msg_namelen = u->tx[j].to_len;
            h->msg_iov = &iov[j];
            h->msg_iovlen = k - j;
            if (k - j > 1) {
                memset(&cm[nm], 0, sizeof(cm[nm]));
                h->msg_control = cm[nm].buf;
                h->msg_controllen = sizeof(cm[nm].buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(h);
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t v = (uint16_t)seg;
                memcpy(CMSG_DATA(c), &v, sizeof(v));
            }
            ends[nm] = k;
            j = k;
        }
        int r;
        do {
            r = sendmmsg(u->fd, msgs, (unsigned)nm, 0);
        } while (r < 0 && errno == EINTR);
        if (r > 0) {
            size_t start = i;
            for (size_t m = 0; m < (size_t)r; m++) {
                size_t segs = ends[m] - start;
                u->st.packets_out += segs;
                u->st.bytes_out += msgs[m].msg_len;
                if (segs > 1)
                    u->st.gso_messages++;
                start = ends[m];
            }
            i = ends[r - 1];
            continue;
        }
        int e = r < 0 ? errno : EAGAIN;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            u->st.send_blocked++;
            tx_queue(u, i);
            break;
        }
        if (u->gso && ends[0] - i > 1 &&
            (e == EIO || e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT || e == EMSGSIZE)) {
            u->gso = false;
            td_log_warn("udp gso disabled", "err=\"%s\"", td_strerror(-e));
            continue;
        }
        /* This message cannot go (e.g. no route to that peer): drop it, QUIC recovers. */
        u->st.send_errors += ends[0] - i;
        i = ends[0];
    }
    u->tx_n = 0;
}

/* The next free slot of the batch (flushing a full batch first). */
static uint8_t *tx_slot(struct td_udp *u)
{
    if (u->tx_n == UDP_TX_BATCH)
        tx_flush(u);
    return tx_data(u, u->tx_n);
}

static void tx_commit(struct td_udp *u, size_t len, const void *to, socklen_t to_len)
{
    struct udp_pkt *pk = &u->tx[u->tx_n++];
    pk->len = len;
    if (to_len > sizeof(pk->to))
        to_len = sizeof(pk->to);
    memset(&pk->to, 0, sizeof(pk->to));
    memcpy(&pk->to, to, to_len);
    pk->to_len = to_len;
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_mark_dirty(struct udp_conn *n)
{
    struct td_udp *u = n->u;
    if (!n->linked || n->gone || n->dirty || u->stopping)
        return;
    n->dirty = true;
    n->dirty_next = u->dirty;
    u->dirty = n;
    if (u->nsend == 0)
        uv_idle_start(&u->idle, on_idle);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct udp_conn *n = t->data;
    n->armed = UINT64_MAX;
    td_quic_conn_on_deadline(n->qc, uv_hrtime());
    conn_mark_dirty(n);
}

static void conn_arm(struct udp_conn *n)
{
    uint64_t dl = td_quic_conn_deadline(n->qc);
    if (dl == n->armed)
        return;
    n->armed = dl;
    if (dl == UINT64_MAX) {
        uv_timer_stop(&n->timer);
        return;
    }
    /* Nanoseconds to whole milliseconds, rounded up: a timer that fires early only re-arms
     * (td_quic ignores an early call), one that fired at 0 ms would spin. */
    uint64_t now = uv_hrtime();
    uint64_t ms = dl <= now ? 0 : (dl - now + 999999) / 1000000;
    uv_timer_start(&n->timer, on_conn_timer, ms, 0);
}

static void on_conn_timer_closed(uv_handle_t *h)
{
    struct udp_conn *n = h->data;
    struct td_udp *u = n->u;
    free(n);
    udp_handle_closed(u);
}

/* Ends a linked connection: CIDs out, on_closed, td_quic_conn_del, off the lists. */
static void conn_reap(struct udp_conn *n)
{
    struct td_udp *u = n->u;
    n->gone = true;
    if (n->dirty) {
        for (struct udp_conn **pp = &u->dirty; *pp != NULL; pp = &(*pp)->dirty_next) {
            if (*pp == n) {
                *pp = n->dirty_next;
                break;
            }
        }
        n->dirty = false;
    }
    cid_remove_all(n);
    if (u->h.on_closed != NULL)
        u->h.on_closed(n->app, n->qc);
    u->st.closed++;
    n->app = NULL;
    td_quic_conn_del(n->qc);
    n->qc = NULL;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        u->conns = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    u->st.conns--;
    ip_release(u, n->ip);
    n->ip = NULL;
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, on_conn_timer_closed);
}

/* Runs the write loop of n into the batch; force writes even while libuv holds packets. */
static void conn_write(struct udp_conn *n, bool force)
{
    struct td_udp *u = n->u;
    uint64_t now = uv_hrtime();
    for (;;) {
        if (u->nsend > 0 && !force) {
            conn_mark_dirty(n); /* written again once the socket drains (on_sent) */
            return;
        }
        uint8_t *out = tx_slot(u);
        struct sockaddr_storage to;
        socklen_t to_len = 0;
        int len = td_quic_conn_write(n->qc, out, TD_QUIC_MAX_UDP_PAYLOAD, &to, &to_len, now);
        if (len <= 0 || to_len == 0)
            return;
        tx_commit(u, (size_t)len, &to, to_len);
    }
}

static void conn_service(struct udp_conn *n, bool force)
{
    if (td_quic_conn_state(n->qc) != TD_QUIC_DEAD)
        conn_write(n, force);
    if (td_quic_conn_state(n->qc) == TD_QUIC_DEAD)
        conn_reap(n);
    else
        conn_arm(n);
}

/* One pass: write (or reap) every dirty connection, then send the batch. Connections marked
 * dirty during the pass wait for the next one (the idle handle keeps it coming soon). */
static void udp_run(struct td_udp *u, bool force)
{
    if (u->nsend == 0 || force) {
        struct udp_conn *list = u->dirty;
        u->dirty = NULL;
        while (list != NULL) {
            struct udp_conn *n = list;
            list = n->dirty_next;
            n->dirty_next = NULL;
            n->dirty = false;
            conn_service(n, force);
        }
    }
    tx_flush(u);
    if (u->dirty == NULL || u->nsend > 0)
        uv_idle_stop(&u->idle);
}

static void on_check(uv_check_t *h)
{
    struct td_udp *u = h->data;
    if (!u->stopping)
        udp_run(u, false);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only keeps the poll phase from blocking while connections are dirty */
}

/* ---- td_quic callbacks --------------------------------------------------------------- */

/* Until on_accept has run (inside td_quic_conn_accept) nothing reaches the handler: on_ready
 * is replayed afterwards, and stream data or datagrams cannot come yet (no 0-RTT). */

static int q_ready(struct td_quic_conn *c, void *ud)
{
    struct udp_conn *n = ud;
    if (!n->linked) {
        n->ready_pending = true;
        return 0;
    }
    return n->u->h.on_ready != NULL ? n->u->h.on_ready(n->app, c) : 0;
}

static int q_stream_data(struct td_quic_conn *c, int64_t id, const uint8_t *data, size_t len,
                         bool fin, void *ud)
{
    struct udp_conn *n = ud;
    if (!n->linked)
        return -1;
    return n->u->h.on_stream_data != NULL ? n->u->h.on_stream_data(n->app, c, id, data, len, fin)
                                          : 0;
}

static int q_stream_abort(struct td_quic_conn *c, int64_t id, uint64_t code, bool reset, void *ud)
{
    struct udp_conn *n = ud;
    if (!n->linked)
        return -1;
    return n->u->h.on_stream_abort != NULL ? n->u->h.on_stream_abort(n->app, c, id, code, reset)
                                           : 0;
}

static void q_stream_close(struct td_quic_conn *c, int64_t id, uint64_t code, void *ud)
{
    struct udp_conn *n = ud;
    if (n->linked && n->u->h.on_stream_close != NULL)
        n->u->h.on_stream_close(n->app, c, id, code);
}

static int q_datagram(struct td_quic_conn *c, const uint8_t *data, size_t len, void *ud)
{
    struct udp_conn *n = ud;
    if (!n->linked)
        return -1;
    return n->u->h.on_datagram != NULL ? n->u->h.on_datagram(n->app, c, data, len) : 0;
}

static void q_cid_new(struct td_quic_conn *c, const struct td_quic_cid *cid, void *ud)
{
    (void)c;
    cid_add(ud, cid);
}

static void q_cid_retire(struct td_quic_conn *c, const struct td_quic_cid *cid, void *ud)
{
    (void)c;
    cid_remove(ud, cid);
}

static const struct td_quic_callbacks udp_quic_callbacks = {
    .on_ready = q_ready,
    .on_stream_data = q_stream_data,
    .on_stream_abort = q_stream_abort,
    .on_stream_close = q_stream_close,
    .on_datagram = q_datagram,
    .on_cid_new = q_cid_new,
    .on_cid_retire = q_cid_retire,
};

/* ---- receiving ----------------------------------------------------------------------- */

/* Version Negotiation and Stateless Reset replies share a per-second budget: both answer
 * packets from anyone, unauthenticated. */
static bool stateless_allow(struct td_udp *u)
{
    uint64_t now = uv_now(u->loop);
    if (now - u->sl_window_ms >= 1000) {
        u->sl_window_ms = now;
        u->sl_left = u->lim.max_stateless_per_sec;
    }
    if (u->sl_left == 0)
        return false;
    u->sl_left--;
    return true;
}

static void udp_accept(struct td_udp *u, const struct sockaddr *from, const uint8_t *p, size_t n,
                       uint64_t now)
{
    if (n < UDP_MIN_INITIAL) {
        u->st.dropped++;
        return;
    }
    uint8_t key[16];
    size_t klen = ip_key(from, key);
    struct udp_ip *ip = td_map_get(&u->ips, (const char *)key, klen);
    if (u->closing || u->st.conns >= u->lim.max_conns ||
        (ip != NULL && ip->n >= u->lim.max_conns_per_ip)) {
        u->st.refused++;
        return;
    }
    struct udp_conn *c = td_xcalloc(1, sizeof(*c));
    c->u = u;
    c->armed = UINT64_MAX;
    struct td_quic_conn *qc = NULL;
    int rv = td_quic_conn_accept(&qc, u->ctx, (const struct sockaddr *)&u->local, u->local_len,
                                 from, addr_len(from), p, n, now, &udp_quic_callbacks, c);
    if (rv != 0) {
        cid_remove_all(c);
        free(c);
        u->st.dropped++;
        return;
    }
    c->qc = qc;
    c->app = u->h.on_accept(u->ud, qc);
    if (c->app == NULL) {
        cid_remove_all(c);
        td_quic_conn_del(qc);
        free(c);
        u->st.refused++;
        return;
    }
    if (ip == NULL) {
        ip = td_xcalloc(1, sizeof(*ip));
        ip->len = klen;
        memcpy(ip->addr, key, klen);
        td_map_put(&u->ips, (const char *)ip->addr, ip->len, ip);
    }
    ip->n++;
    c->ip = ip;
    c->linked = true;
    c->next = u->conns;
    if (u->conns != NULL)
        u->conns->prev = c;
    u->conns = c;
    u->st.conns++;
    u->st.accepted++;
    uv_timer_init(u->loop, &c->timer);
    c->timer.data = c;
    u->open_handles++;
    if (c->ready_pending) {
        c->ready_pending = false;
        if (u->h.on_ready != NULL && u->h.on_ready(c->app, qc) != 0)
            td_quic_conn_close(qc, UDP_H3_INTERNAL_ERROR);
    }
    conn_mark_dirty(c);
}

static void udp_input(struct td_udp *u, const struct sockaddr *from, const uint8_t *p, size_t n)
{
    struct td_quic_route r;
    if (td_quic_packet_route(p, n, &r) != 0) {
        u->st.dropped++;
        return;
    }
    if (r.need_version_negotiation) {
        if (!stateless_allow(u)) {
            u->st.dropped++;
            return;
        }
        int len = td_quic_write_version_negotiation(&r, tx_slot(u), TD_QUIC_MAX_UDP_PAYLOAD);
        if (len <= 0) {
            u->st.dropped++;
            return;
        }
        tx_commit(u, (size_t)len, from, addr_len(from));
        u->st.version_negotiations++;
        return;
    }
    uint64_t now = uv_hrtime();
    struct udp_cid *e =
        r.dcid.len > 0 ? td_map_get(&u->cids, (const char *)r.dcid.data, r.dcid.len) : NULL;
    if (e != NULL) {
        struct udp_conn *c = e->conn;
        td_quic_conn_read(c->qc, (const struct sockaddr *)&u->local, u->local_len, from,
                          addr_len(from), p, n, now);
        conn_mark_dirty(c);
        return;
    }
    if (!r.long_header) {
        if (!stateless_allow(u)) {
            u->st.dropped++;
            return;
        }
        int len =
            td_quic_write_stateless_reset(u->ctx, &r.dcid, n, tx_slot(u), TD_QUIC_MAX_UDP_PAYLOAD);
        if (len <= 0) {
            u->sl_left++; /* nothing was sent: give the budget back */
            u->st.dropped++;
            return;
        }
        tx_commit(u, (size_t)len, from, addr_len(from));
        u->st.stateless_resets++;
        return;
    }
    udp_accept(u, from, p, n, now);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct td_udp *u = h->data;
    (void)suggested;
    /* One listener-wide buffer: every datagram is handled before libuv reads the next. */
    buf->base = (char *)u->rxbuf;
    buf->len = UDP_RX_SLOTS * UDP_RX_SLOT;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    struct td_udp *u = h->data;
    /* addr NULL: nothing more to read, a read error, or the end of a recvmmsg batch
     * (UV_UDP_MMSG_FREE); the buffer is ours and reused, so there is nothing to free. */
    if (addr == NULL || nread < 0 || u->stopping)
        return;
    u->st.packets_in++;
    u->st.bytes_in += (uint64_t)nread;
    /* Empty (ngtcp2 asserts on those) and truncated datagrams never reach td_quic. */
    if (nread == 0 || (flags & UV_UDP_PARTIAL) != 0) {
        u->st.dropped++;
        return;
    }
    udp_input(u, addr, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void udp_free(struct td_udp *u)
{
    td_map_free(&u->cids);
    td_map_free(&u->ips);
    free(u->txbuf);
    free(u->rxbuf);
    free(u);
}

static void udp_handle_closed(struct td_udp *u)
{
    if (--u->open_handles > 0 || !u->stopping)
        return;
    void (*done)(void *) = u->done;
    void *done_ud = u->done_ud;
    udp_free(u);
    if (done != NULL)
        done(done_ud);
}

static void on_udp_handle_closed(uv_handle_t *h)
{
    udp_handle_closed(h->data);
}

static void on_start_failed_closed(uv_handle_t *h)
{
    udp_free(h->data);
}

int td_udp_start(struct td_udp **out, uv_loop_t *loop, const char *address, int port,
                 struct td_quic_ctx *ctx, const struct td_udp_handler *h, void *ud,
                 const struct td_udp_limits *lim, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    if (port < 0 || port > 65535 || h == NULL || h->on_accept == NULL ||
        (uv_ip4_addr(address, port, (struct sockaddr_in *)&addr) != 0 &&
         uv_ip6_addr(address, port, (struct sockaddr_in6 *)&addr) != 0)) {
        snprintf(err, errlen, "invalid UDP listener address %s port %d", address, port);
        return TD_EINVAL;
    }
    struct td_udp *u = td_xcalloc(1, sizeof(*u));
    u->loop = loop;
    u->ctx = ctx;
    u->h = *h;
    u->ud = ud;
    if (lim != NULL)
        u->lim = *lim;
    if (u->lim.max_conns == 0)
        u->lim.max_conns = TD_UDP_DEFAULT_MAX_CONNS;
    if (u->lim.max_conns_per_ip == 0)
        u->lim.max_conns_per_ip = TD_UDP_DEFAULT_MAX_CONNS_PER_IP;
    if (u->lim.max_stateless_per_sec == 0)
        u->lim.max_stateless_per_sec = TD_UDP_DEFAULT_MAX_STATELESS_PER_SEC;
    td_map_init(&u->cids);
    td_map_init(&u->ips);
    u->sl_window_ms = uv_now(loop);
    u->sl_left = u->lim.max_stateless_per_sec;

    int rv = uv_udp_init_ex(loop, &u->sock, (unsigned)addr.ss_family | UV_UDP_RECVMMSG);
    if (rv != 0) {
        snprintf(err, errlen, "cannot create UDP socket: %s", uv_strerror(rv));
        udp_free(u);
        return rv;
    }
    u->sock.data = u;
    const char *what = "bind";
    rv = uv_udp_bind(&u->sock, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        uv_os_fd_t fd;
        what = "fileno";
        rv = uv_fileno((uv_handle_t *)&u->sock, &fd);
        u->fd = fd;
    }
    if (rv == 0) {
        int len = (int)sizeof(u->local);
        what = "getsockname";
        rv = uv_udp_getsockname(&u->sock, (struct sockaddr *)&u->local, &len);
        u->local_len = (socklen_t)len;
    }
    if (rv == 0) {
        u->rxbuf = td_xmalloc(UDP_RX_SLOTS * UDP_RX_SLOT);
        u->txbuf = td_xmalloc(UDP_TX_BATCH * TD_QUIC_MAX_UDP_PAYLOAD);
        what = "recv_start";
        rv = uv_udp_recv_start(&u->sock, on_alloc, on_recv);
    }
    if (rv != 0) {
        snprintf(err, errlen, "cannot serve UDP on %s port %d: %s: %s", address, port, what,
                 uv_strerror(rv));
        uv_close((uv_handle_t *)&u->sock, on_start_failed_closed);
        return rv;
    }
    /* Best effort: bursts of Initials and ACKs want more than the default buffers. */
    int sz = 2 << 20;
    uv_recv_buffer_size((uv_handle_t *)&u->sock, &sz);
    sz = 2 << 20;
    uv_send_buffer_size((uv_handle_t *)&u->sock, &sz);
    int v = 0;
    socklen_t vlen = sizeof(v);
    u->gso = getsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &v, &vlen) == 0;
    u->port = ntohs(u->local.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&u->local)->sin6_port
                                                   : ((struct sockaddr_in *)&u->local)->sin_port);

    uv_check_init(loop, &u->check);
    u->check.data = u;
    uv_check_start(&u->check, on_check);
    uv_unref((uv_handle_t *)&u->check);
    uv_idle_init(loop, &u->idle);
    u->idle.data = u;
    u->open_handles = 3;
    td_log_info("quic listening", "address=%s port=%d gso=%d", address, u->port, u->gso ? 1 : 0);
    *out = u;
    return 0;
}

int td_udp_port(const struct td_udp *u)
{
    return u->port;
}

void td_udp_want_write(struct td_quic_conn *c)
{
    struct udp_conn *n = td_quic_conn_user_data(c);
    if (n != NULL)
        conn_mark_dirty(n);
}

void td_udp_close_all(struct td_udp *u, uint64_t h3_code)
{
    if (u->stopping)
        return;
    u->closing = true;
    for (struct udp_conn *n = u->conns; n != NULL; n = n->next) {
        td_quic_conn_close(n->qc, h3_code);
        conn_mark_dirty(n);
    }
    udp_run(u, true);
}

void td_udp_stop(struct td_udp *u, void (*done)(void *ud), void *done_ud)
{
    if (u->stopping)
        return;
    tx_flush(u);
    u->stopping = true;
    u->done = done;
    u->done_ud = done_ud;
    uv_udp_recv_stop(&u->sock);
    while (u->conns != NULL)
        conn_reap(u->conns);
    u->dirty = NULL;
    uv_idle_stop(&u->idle);
    uv_check_stop(&u->check);
    uv_close((uv_handle_t *)&u->sock, on_udp_handle_closed);
    uv_close((uv_handle_t *)&u->check, on_udp_handle_closed);
    uv_close((uv_handle_t *)&u->idle, on_udp_handle_closed);
}

void td_udp_get_stats(const struct td_udp *u, struct td_udp_stats *out)
{
    *out = u->st;
    out->cids = u->cids.count;
    out->gso = u->gso;
}
