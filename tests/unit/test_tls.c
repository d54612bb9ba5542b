/*
 * Unit tests for src/tls/td_tls: a GnuTLS client written here talks to td_tls's server
 * engine through two in-memory byte pipes (no sockets, no sleeps). The server certificate
 * comes from td_gencert; the client trusts exactly that certificate and checks the name
 * "localhost", so a completed handshake also proves the chain and key were served right.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "cli/td_gencert.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "tls/td_tls.h"
#include "td_test.h"

/* ---- fixture: a certificate and a server context ---- */

struct fix {
    struct td_tls_ctx *ctx;
    struct td_buf cert_pem; /* what the client trusts */
};

static int fix_init(struct fix *f)
{
    char dir[] = "/tmp/td_tls_test_XXXXXX";
    if (mkdtemp(dir) == NULL)
        return -1;
    uint8_t md[32];
    int64_t not_after;
    char err[256], cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    int rv = td_gencert_write(dir, 2, md, &not_after, err, sizeof(err));
    if (rv == 0)
        rv = td_tls_ctx_new(&f->ctx, cert, key, err, sizeof(err));
    td_buf_init(&f->cert_pem);
    FILE *fp = rv == 0 ? fopen(cert, "rb") : NULL;
    if (fp != NULL) {
        uint8_t tmp[4096];
        size_t k;
        while ((k = fread(tmp, 1, sizeof(tmp), fp)) > 0)
            td_buf_append(&f->cert_pem, tmp, k);
        fclose(fp);
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (rv != 0)
        fprintf(stderr, "  fixture: %s\n", err);
    return rv == 0 && f->cert_pem.len > 0 ? 0 : -1;
}

static void fix_free(struct fix *f)
{
    td_tls_ctx_del(f->ctx);
    td_buf_free(&f->cert_pem);
}

/* ---- an in-memory GnuTLS client ---- */

struct cli {
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    struct td_buf in; /* server -> client bytes not yet pulled */
    size_t in_off;
    struct td_buf out; /* client -> server bytes not yet fed */
    struct td_buf got; /* plaintext received */
    bool done, eof;
    int err; /* first fatal GnuTLS error */
};

static ssize_t cli_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    struct cli *c = p;
    td_buf_append(&c->out, data, len);
    return (ssize_t)len;
}

static ssize_t cli_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
    struct cli *c = p;
    size_t avail = c->in.len - c->in_off;
    if (avail == 0) {
        gnutls_transport_set_errno(c->s, EAGAIN);
        return -1;
    }
    size_t k = len < avail ? len : avail;
    memcpy(data, c->in.data + c->in_off, k);
    c->in_off += k;
    if (c->in_off == c->in.len) {
        c->in.len = 0;
        c->in_off = 0;
    }
    return (ssize_t)k;
}

static int cli_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    (void)ms;
    struct cli *c = p;
    if (c->in.len > c->in_off)
        return 1;
    gnutls_transport_set_errno(c->s, EAGAIN);
    return -1;
}

/* prio NULL: TLS 1.3 and 1.2; alpn: comma-free list of protocols, NULL for no ALPN. */
static int cli_init(struct cli *c, const struct fix *f, const char *prio, const char *const *alpn,
                    size_t nalpn, const gnutls_datum_t *resume)
{
    memset(c, 0, sizeof(*c));
    td_buf_init(&c->in);
    td_buf_init(&c->out);
    td_buf_init(&c->got);
    gnutls_datum_t ca = {f->cert_pem.data, (unsigned)f->cert_pem.len};
    if (gnutls_certificate_allocate_credentials(&c->cred) != 0 ||
        gnutls_certificate_set_x509_trust_mem(c->cred, &ca, GNUTLS_X509_FMT_PEM) != 1 ||
        gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK) != 0)
        return -1;
    if (gnutls_priority_set_direct(
            c->s, prio != NULL ? prio : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", NULL) != 0)
        return -2;
    if (gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->cred) != 0)
        return -1;
    gnutls_datum_t protos[4];
    for (size_t i = 0; i < nalpn && i < 4; i++) {
        protos[i].data = (unsigned char *)(uintptr_t)alpn[i];
        protos[i].size = (unsigned)strlen(alpn[i]);
    }
    if (nalpn > 0 && gnutls_alpn_set_protocols(c->s, protos, (unsigned)nalpn, 0) != 0)
        return -1;
    gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, "localhost", 9);
    gnutls_session_set_verify_cert(c->s, "localhost", 0);
    if (resume != NULL && gnutls_session_set_data(c->s, resume->data, resume->size) != 0)
        return -1;
    gnutls_handshake_set_timeout(c->s, 0);
    gnutls_transport_set_ptr(c->s, c);
    gnutls_transport_set_push_function(c->s, cli_push);
    gnutls_transport_set_pull_function(c->s, cli_pull);
    gnutls_transport_set_pull_timeout_function(c->s, cli_pull_timeout);
    return 0;
}

static void cli_free(struct cli *c)
{
    if (c->s != NULL)
        gnutls_deinit(c->s);
    if (c->cred != NULL)
        gnutls_certificate_free_credentials(c->cred);
    td_buf_free(&c->in);
    td_buf_free(&c->out);
    td_buf_free(&c->got);
}

/* Runs the client's handshake or reads what it can. */
static void cli_step(struct cli *c)
{
    if (c->err != 0)
        return;
    if (!c->done) {
        int rv = gnutls_handshake(c->s);
        if (rv == 0)
            c->done = true;
        else if (gnutls_error_is_fatal(rv))
            c->err = rv;
        if (!c->done)
            return;
    }
    uint8_t buf[20000];
    while (!c->eof) {
        ssize_t rv = gnutls_record_recv(c->s, buf, sizeof(buf));
        if (rv > 0) {
            td_buf_append(&c->got, buf, (size_t)rv);
        } else if (rv == 0) {
            c->eof = true;
        } else {
            if (gnutls_error_is_fatal((int)rv))
                c->err = (int)rv;
            if (rv != GNUTLS_E_INTERRUPTED && rv != GNUTLS_E_WARNING_ALERT_RECEIVED)
                break;
        }
    }
}

/* ---- the pair and the pump ---- */

struct pair {
    struct cli c;
    struct td_tls *t;
    struct td_buf got; /* server plaintext */
    bool eof;
    int err;          /* first error from td_tls_feed/td_tls_read */
    size_t chunk;     /* feed the server this many bytes at a time (0: all at once) */
    size_t max_out;   /* largest output the server queued between two pumps */
    bool hold_client; /* do not move client bytes to the server */
};

static void srv_read_all(struct pair *p)
{
    uint8_t buf[7000]; /* smaller than a record: records come out in pieces */
    for (;;) {
        bool eof;
        ssize_t k = td_tls_read(p->t, buf, sizeof(buf), &eof);
        if (k < 0 && p->err == 0)
            p->err = (int)k;
        if (k <= 0) {
            p->eof = eof;
            return;
        }
        td_buf_append(&p->got, buf, (size_t)k);
    }
}

/* Moves bytes both ways until neither side has anything to say. */
static void pump(struct pair *p)
{
    for (int round = 0; round < 10000; round++) {
        bool moved = false;
        if (!p->hold_client && p->c.out.len > 0) {
            size_t off = 0;
            while (off < p->c.out.len) {
                size_t k = p->c.out.len - off;
                if (p->chunk > 0 && k > p->chunk)
                    k = p->chunk;
                int rv = td_tls_feed(p->t, p->c.out.data + off, k);
                if (rv < 0 && p->err == 0)
                    p->err = rv;
                off += k;
                srv_read_all(p);
            }
            td_buf_reset(&p->c.out);
            moved = true;
        }
        size_t n;
        const uint8_t *o = td_tls_out(p->t, &n);
        if (n > p->max_out)
            p->max_out = n;
        if (n > 0) {
            td_buf_append(&p->c.in, o, n);
            td_tls_out_consume(p->t, n);
            moved = true;
        }
        size_t before = p->c.out.len + p->c.got.len;
        bool was_done = p->c.done, was_eof = p->c.eof;
        cli_step(&p->c);
        if (p->c.out.len + p->c.got.len != before || p->c.done != was_done || p->c.eof != was_eof)
            moved = true;
        if (!moved)
            return;
    }
}

static int pair_open(struct pair *p, const struct fix *f, const char *prio)
{
    static const char *const alpn[] = {"h2", "http/1.1"};
    memset(p, 0, sizeof(*p));
    td_buf_init(&p->got);
    p->t = td_tls_new(f->ctx);
    if (cli_init(&p->c, f, prio, alpn, 2, NULL) != 0)
        return -1;
    pump(p);
    return p->c.done && td_tls_handshake_done(p->t) && p->err == 0 ? 0 : -1;
}

static void pair_free(struct pair *p)
{
    cli_free(&p->c);
    td_tls_free(p->t);
    td_buf_free(&p->got);
}

static void fill_pattern(uint8_t *b, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- tests ---- */

TD_TEST(tls_handshake_alpn_and_echo)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    TD_CHECK_MEM_STR(td_tls_version_name(p.t), strlen(td_tls_version_name(p.t)), "TLS1.3");
    gnutls_datum_t sel;
    TD_CHECK(gnutls_alpn_get_selected_protocol(p.c.s, &sel) == 0);
    TD_CHECK_MEM_STR(sel.data, sel.size, "http/1.1");

    static const char req[] = "GET /connection/websocket HTTP/1.1\r\nHost: localhost\r\n\r\n";
    TD_REQUIRE(gnutls_record_send(p.c.s, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
    pump(&p);
    TD_CHECK_MEM_STR(p.got.data, p.got.len, req);
    TD_CHECK_EQ_INT(td_tls_write(p.t, "HTTP/1.1 101 ", 13), 0);
    TD_CHECK_EQ_INT(td_tls_write(p.t, "Switching Protocols\r\n\r\n", 23), 0);
    pump(&p);
    TD_CHECK_MEM_STR(p.c.got.data, p.c.got.len, "HTTP/1.1 101 Switching Protocols\r\n\r\n");
    TD_CHECK_EQ_INT(p.err, 0);
    TD_CHECK_EQ_INT(p.c.err, 0);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_handshake_tls12_and_no_alpn)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    memset(&p, 0, sizeof(p));
    td_buf_init(&p.got);
    p.t = td_tls_new(f.ctx);
    TD_CHECK_MEM_STR(td_tls_version_name(p.t), 1, "-");
    TD_REQUIRE(cli_init(&p.c, &f, "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL, 0, NULL) == 0);
    pump(&p);
    TD_REQUIRE(p.c.done && td_tls_handshake_done(p.t));
    TD_CHECK_MEM_STR(td_tls_version_name(p.t), strlen(td_tls_version_name(p.t)), "TLS1.2");
    gnutls_datum_t sel;
    TD_CHECK(gnutls_alpn_get_selected_protocol(p.c.s, &sel) != 0);
    TD_REQUIRE(gnutls_record_send(p.c.s, "ping", 4) == 4);
    pump(&p);
    TD_CHECK_MEM_STR(p.got.data, p.got.len, "ping");
    TD_CHECK_EQ_INT(td_tls_write(p.t, "pong", 4), 0);
    pump(&p);
    TD_CHECK_MEM_STR(p.c.got.data, p.c.got.len, "pong");

    /* Client-initiated renegotiation is refused. */
    int rv = gnutls_handshake(p.c.s);
    TD_CHECK(rv == GNUTLS_E_AGAIN);
    pump(&p);
    TD_CHECK_EQ_INT(p.err, TD_EPROTO);
    TD_CHECK_EQ_INT(td_tls_write(p.t, "x", 1), TD_EPROTO);
    TD_CHECK(td_tls_handshake_done(p.t));
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_old_versions_and_foreign_alpn_refused)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    /* A TLS 1.1-only client (if this GnuTLS still builds one). */
    struct pair p;
    memset(&p, 0, sizeof(p));
    td_buf_init(&p.got);
    p.t = td_tls_new(f.ctx);
    int rv = cli_init(&p.c, &f, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0", NULL, 0, NULL);
    if (rv == 0) {
        pump(&p);
        TD_CHECK(!td_tls_handshake_done(p.t));
        TD_CHECK_EQ_INT(p.err, TD_EPROTO);
        TD_CHECK(!p.c.done);
        TD_CHECK_EQ_INT(p.c.err, GNUTLS_E_FATAL_ALERT_RECEIVED);
        TD_CHECK_EQ_INT(gnutls_alert_get(p.c.s), GNUTLS_A_PROTOCOL_VERSION);
    }
    pair_free(&p);

    /* A client that speaks only h2: no_application_protocol. */
    static const char *const h2[] = {"h2"};
    memset(&p, 0, sizeof(p));
    td_buf_init(&p.got);
    p.t = td_tls_new(f.ctx);
    TD_REQUIRE(cli_init(&p.c, &f, NULL, h2, 1, NULL) == 0);
    pump(&p);
    TD_CHECK(!td_tls_handshake_done(p.t));
    TD_CHECK_EQ_INT(p.err, TD_EPROTO);
    TD_CHECK_EQ_INT(p.c.err, GNUTLS_E_FATAL_ALERT_RECEIVED);
    TD_CHECK_EQ_INT(gnutls_alert_get(p.c.s), GNUTLS_A_NO_APPLICATION_PROTOCOL);
    /* Sticky: more input changes nothing. */
    TD_CHECK_EQ_INT(td_tls_feed(p.t, (const uint8_t *)"\x16\x03\x01", 3), TD_EPROTO);
    bool eof = true;
    uint8_t b[16];
    TD_CHECK_EQ_INT(td_tls_read(p.t, b, sizeof(b), &eof), TD_EPROTO);
    TD_CHECK(!eof);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_handshake_byte_by_byte)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    memset(&p, 0, sizeof(p));
    td_buf_init(&p.got);
    p.chunk = 1;
    p.t = td_tls_new(f.ctx);
    TD_REQUIRE(cli_init(&p.c, &f, NULL, NULL, 0, NULL) == 0);
    pump(&p);
    TD_REQUIRE(p.c.done && td_tls_handshake_done(p.t));
    static const char msg[] = "hello, one byte at a time";
    TD_REQUIRE(gnutls_record_send(p.c.s, msg, sizeof(msg) - 1) == (ssize_t)(sizeof(msg) - 1));
    pump(&p);
    TD_CHECK_MEM_STR(p.got.data, p.got.len, msg);
    TD_CHECK_EQ_INT(p.err, 0);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_one_mib_both_ways)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    const size_t total = 1u << 20;
    uint8_t *data = malloc(total);
    TD_REQUIRE(data != NULL);
    fill_pattern(data, total, 7);
    static const char *const prios[] = {NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    for (size_t v = 0; v < 2; v++) {
        struct pair p;
        TD_REQUIRE(pair_open(&p, &f, prios[v]) == 0);
        p.chunk = 1500; /* roughly what TCP segments deliver */
        /* server -> client in uneven writes, pumped as they go */
        size_t off = 0, step = 1;
        while (off < total) {
            size_t k = step < total - off ? step : total - off;
            TD_REQUIRE(td_tls_write(p.t, data + off, k) == 0);
            off += k;
            step = step * 3 + 7;
            if (step > 200000)
                step = 13;
            pump(&p);
        }
        TD_CHECK_EQ_INT(p.c.got.len, total);
        TD_CHECK(p.c.got.len == total && memcmp(p.c.got.data, data, total) == 0);
        /* client -> server */
        off = 0;
        while (off < total) {
            size_t k = 50000 < total - off ? 50000 : total - off;
            ssize_t rv = gnutls_record_send(p.c.s, data + off, k);
            TD_REQUIRE(rv > 0);
            off += (size_t)rv;
            pump(&p);
        }
        TD_CHECK_EQ_INT(p.got.len, total);
        TD_CHECK(p.got.len == total && memcmp(p.got.data, data, total) == 0);
        TD_CHECK_EQ_INT(p.err, 0);
        TD_CHECK_EQ_INT(p.c.err, 0);
        pair_free(&p);
    }
    free(data);
    fix_free(&f);
}

TD_TEST(tls_writev_coalesces_small_pieces)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    /* 300 pieces of 100 bytes, then one large piece: 30000 + 40000 bytes. */
    static uint8_t buf[70000];
    fill_pattern(buf, sizeof(buf), 3);
    struct iovec iov[301];
    for (size_t i = 0; i < 300; i++) {
        iov[i].iov_base = buf + i * 100;
        iov[i].iov_len = 100;
    }
    iov[300].iov_base = buf + 30000;
    iov[300].iov_len = 40000;
    TD_REQUIRE(td_tls_writev(p.t, iov, 301) == 0);
    size_t n;
    td_tls_out(p.t, &n);
    /* ceil(70000 / 16384) = 5 records; per-record overhead is tens of bytes, not 300x. */
    TD_CHECK(n > 70000 && n < 70000 + 5 * 64);
    pump(&p);
    TD_CHECK(p.c.got.len == sizeof(buf) && memcmp(p.c.got.data, buf, sizeof(buf)) == 0);
    /* The same pieces written one by one cost a record each. */
    for (size_t i = 0; i < 300; i++)
        TD_REQUIRE(td_tls_write(p.t, iov[i].iov_base, iov[i].iov_len) == 0);
    td_tls_out(p.t, &n);
    TD_CHECK(n >= 300 * (100 + 5 + 16));
    TD_CHECK_EQ_INT(td_tls_writev(p.t, NULL, 0), 0);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_close_notify_both_ways)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    TD_REQUIRE(gnutls_record_send(p.c.s, "last", 4) == 4);
    TD_REQUIRE(gnutls_bye(p.c.s, GNUTLS_SHUT_WR) == 0);
    pump(&p);
    TD_CHECK_MEM_STR(p.got.data, p.got.len, "last");
    TD_CHECK(p.eof);
    bool eof = false;
    uint8_t b[16];
    TD_CHECK_EQ_INT(td_tls_read(p.t, b, sizeof(b), &eof), 0);
    TD_CHECK(eof);
    /* Half-close: the server can still answer, then close. */
    TD_CHECK_EQ_INT(td_tls_write(p.t, "bye", 3), 0);
    TD_CHECK_EQ_INT(td_tls_close_notify(p.t), 0);
    TD_CHECK_EQ_INT(td_tls_close_notify(p.t), 0);
    TD_CHECK_EQ_INT(td_tls_write(p.t, "more", 4), TD_EINVAL);
    pump(&p);
    TD_CHECK_MEM_STR(p.c.got.data, p.c.got.len, "bye");
    TD_CHECK(p.c.eof);
    TD_CHECK_EQ_INT(p.c.err, 0);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_garbage_is_fatal)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    /* Plaintext HTTP on the TLS port. */
    struct td_tls *t = td_tls_new(f.ctx);
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    TD_CHECK(!td_tls_looks_like_client_hello((const uint8_t *)http, sizeof(http) - 1));
    TD_CHECK_EQ_INT(td_tls_feed(t, (const uint8_t *)http, sizeof(http) - 1), TD_EPROTO);
    TD_CHECK(!td_tls_handshake_done(t));
    TD_CHECK_EQ_INT(td_tls_write(t, "x", 1), TD_EPROTO);
    TD_CHECK_EQ_INT(td_tls_close_notify(t), TD_EPROTO);
    td_tls_free(t);

    /* A handshake record holding no ClientHello. */
    t = td_tls_new(f.ctx);
    static const uint8_t notch[] = {0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00};
    TD_CHECK_EQ_INT(td_tls_feed(t, notch, sizeof(notch)), TD_EPROTO);
    size_t n;
    const uint8_t *o = td_tls_out(t, &n);
    TD_CHECK(n >= 7 && o[0] == 0x15); /* a fatal alert record */
    td_tls_free(t);

    /* A tampered record after the handshake: bad_record_mac. */
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    p.hold_client = true;
    TD_REQUIRE(gnutls_record_send(p.c.s, "secret", 6) == 6);
    TD_REQUIRE(p.c.out.len > 10);
    p.c.out.data[p.c.out.len - 3] ^= 0x40;
    TD_CHECK_EQ_INT(td_tls_feed(p.t, p.c.out.data, p.c.out.len), 0);
    bool eof;
    uint8_t b[64];
    TD_CHECK_EQ_INT(td_tls_read(p.t, b, sizeof(b), &eof), TD_EPROTO);
    td_tls_out(p.t, &n);
    TD_CHECK(n > 0); /* the encrypted bad_record_mac alert */
    TD_CHECK_EQ_INT(td_tls_feed(p.t, b, 1), TD_EPROTO);
    TD_CHECK_EQ_INT(td_tls_write(p.t, "x", 1), TD_EPROTO);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_input_cap)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    static uint8_t big[TD_TLS_MAX_IN + 1];
    TD_CHECK_EQ_INT(td_tls_feed(p.t, big, sizeof(big)), TD_ELIMIT);

    /* 200 KB from the client, fed in 64 KiB pieces without reading in between. */
    static uint8_t data[200000];
    fill_pattern(data, sizeof(data), 11);
    size_t off = 0;
    while (off < sizeof(data)) {
        ssize_t rv = gnutls_record_send(p.c.s, data + off, sizeof(data) - off);
        TD_REQUIRE(rv > 0);
        off += (size_t)rv;
    }
    size_t sent = 0, limited = 0;
    const size_t piece = 65536;
    while (sent < p.c.out.len) {
        size_t k = p.c.out.len - sent < piece ? p.c.out.len - sent : piece;
        int rv = td_tls_feed(p.t, p.c.out.data + sent, k);
        if (rv == TD_ELIMIT) {
            limited++;
            srv_read_all(&p); /* drain, then the same piece fits */
            TD_REQUIRE(td_tls_feed(p.t, p.c.out.data + sent, k) == 0);
        } else {
            TD_REQUIRE(rv == 0);
        }
        sent += k;
    }
    srv_read_all(&p);
    TD_CHECK(limited > 0);
    TD_CHECK(p.got.len == sizeof(data) && memcmp(p.got.data, data, sizeof(data)) == 0);
    TD_CHECK_EQ_INT(p.err, 0);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_output_cap)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    const size_t mib = 1u << 20;
    uint8_t *data = calloc(1, mib);
    TD_REQUIRE(data != NULL);
    TD_CHECK_EQ_INT(td_tls_write(p.t, data, TD_TLS_MAX_OUT), TD_ELIMIT);
    size_t n0;
    td_tls_out(p.t, &n0);
    TD_CHECK_EQ_INT(n0, 0); /* nothing written */
    int wrote = 0, rv;
    while ((rv = td_tls_write(p.t, data, mib)) == 0)
        wrote++;
    TD_CHECK_EQ_INT(rv, TD_ELIMIT);
    TD_CHECK_EQ_INT(wrote, 3);
    size_t n;
    td_tls_out(p.t, &n);
    TD_CHECK(n <= TD_TLS_MAX_OUT && n > 3 * mib);
    /* Half consumed: room again. */
    td_tls_out_consume(p.t, n / 2);
    TD_CHECK_EQ_INT(td_tls_write(p.t, data, mib), 0);
    size_t n2;
    td_tls_out(p.t, &n2);
    TD_CHECK(n2 > n - n / 2 + mib && n2 <= TD_TLS_MAX_OUT);
    td_tls_out_consume(p.t, n2);
    td_tls_out(p.t, &n2);
    TD_CHECK_EQ_INT(n2, 0);
    free(data);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_resumption_with_ticket)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    static const char *const prios[] = {NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    for (size_t v = 0; v < 2; v++) {
        struct pair p;
        TD_REQUIRE(pair_open(&p, &f, prios[v]) == 0);
        TD_CHECK(!gnutls_session_is_resumed(p.c.s));
        /* TLS 1.3 tickets arrive after the handshake; the client reads them with data. */
        TD_CHECK_EQ_INT(td_tls_write(p.t, "hi", 2), 0);
        pump(&p);
        TD_CHECK_MEM_STR(p.c.got.data, p.c.got.len, "hi");
        gnutls_datum_t sd = {NULL, 0};
        TD_REQUIRE(gnutls_session_get_data2(p.c.s, &sd) == 0);
        pair_free(&p);

        struct pair q;
        memset(&q, 0, sizeof(q));
        td_buf_init(&q.got);
        q.t = td_tls_new(f.ctx);
        TD_REQUIRE(cli_init(&q.c, &f, prios[v], NULL, 0, &sd) == 0);
        pump(&q);
        TD_CHECK(q.c.done && td_tls_handshake_done(q.t));
        TD_CHECK(gnutls_session_is_resumed(q.c.s));
        gnutls_free(sd.data);
        pair_free(&q);
    }
    fix_free(&f);
}

TD_TEST(tls13_key_update)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct pair p;
    TD_REQUIRE(pair_open(&p, &f, NULL) == 0);
    TD_REQUIRE(gnutls_session_key_update(p.c.s, GNUTLS_KU_PEER) == 0);
    TD_REQUIRE(gnutls_record_send(p.c.s, "after", 5) == 5);
    pump(&p);
    TD_CHECK_MEM_STR(p.got.data, p.got.len, "after");
    TD_CHECK_EQ_INT(td_tls_write(p.t, "reply", 5), 0);
    pump(&p);
    TD_CHECK_MEM_STR(p.c.got.data, p.c.got.len, "reply");
    TD_CHECK_EQ_INT(p.err, 0);
    TD_CHECK_EQ_INT(p.c.err, 0);
    pair_free(&p);
    fix_free(&f);
}

TD_TEST(tls_write_before_handshake_and_ctx_errors)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct td_tls *t = td_tls_new(f.ctx);
    TD_CHECK_EQ_INT(td_tls_write(t, "x", 1), TD_EINVAL);
    TD_CHECK_EQ_INT(td_tls_close_notify(t), 0);
    bool eof = true;
    uint8_t b[4];
    TD_CHECK_EQ_INT(td_tls_read(t, b, sizeof(b), &eof), 0);
    TD_CHECK(!eof);
    TD_CHECK_EQ_INT(td_tls_feed(t, NULL, 0), 0);
    size_t n;
    td_tls_out(t, &n);
    TD_CHECK_EQ_INT(n, 0);
    td_tls_free(t);
    td_tls_free(NULL);
    fix_free(&f);

    struct td_tls_ctx *ctx = NULL;
    char err[256] = "";
    TD_CHECK_EQ_INT(
        td_tls_ctx_new(&ctx, "/nonexistent/cert.pem", "/nonexistent/key.pem", err, sizeof(err)),
        TD_EINVAL);
    TD_CHECK(ctx == NULL);
    TD_CHECK(strstr(err, "/nonexistent/cert.pem") != NULL);
    td_tls_ctx_del(NULL);
}

TD_TEST(tls_sniff_client_hello)
{
    struct fix f;
    TD_REQUIRE(fix_init(&f) == 0);
    struct cli c;
    TD_REQUIRE(cli_init(&c, &f, NULL, NULL, 0, NULL) == 0);
    TD_REQUIRE(gnutls_handshake(c.s) == GNUTLS_E_AGAIN);
    TD_REQUIRE(c.out.len > 6);
    for (size_t k = 1; k <= 8; k++)
        TD_CHECK(td_tls_looks_like_client_hello(c.out.data, k));
    TD_CHECK(td_tls_looks_like_client_hello(c.out.data, c.out.len));
    cli_free(&c);
    fix_free(&f);

    TD_CHECK(!td_tls_looks_like_client_hello(NULL, 0));
    TD_CHECK(!td_tls_looks_like_client_hello((const uint8_t *)"GET / HTTP/1.1", 14));
    TD_CHECK(!td_tls_looks_like_client_hello((const uint8_t *)"\x16\x02", 2));
    /* A handshake record whose first message is not a ClientHello. */
    static const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x40, 0x02};
    TD_CHECK(!td_tls_looks_like_client_hello(sh, sizeof(sh)));
    TD_CHECK(td_tls_looks_like_client_hello(sh, 5));
}
