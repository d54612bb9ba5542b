/*
 * Fuzz target for the TLS server engine (src/tls/td_tls): arbitrary bytes from a "client" are
 * fed to a fresh server session, as a careful caller would (read after every feed, take the
 * output, try to write). No handshake can complete, as that would take the client's Finished
 * under keys derived from the server's fresh randomness, so what is exercised is GnuTLS's
 * record layer and ClientHello parsing behind the engine's buffering, caps and error paths.
 *
 * Input layout: byte 0 picks the chunking (0: all at once; otherwise chunk sizes from a PRNG
 * seeded with it), the rest is the client->server byte stream. Checked invariants: results are
 * within the documented set; errors are sticky; the handshake never completes and no
 * plaintext ever comes out; the output stays under its cap; the ClientHello sniff agrees with
 * its definition.
 *
 * The server certificate is generated once per process (td_gencert) and its files removed
 * right after loading.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/td_gencert.h"
#include "core/td_err.h"
#include "tls/td_tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static struct td_tls_ctx *fuzz_ctx(void)
{
    static struct td_tls_ctx *ctx;
    if (ctx != NULL)
        return ctx;
    char dir[] = "/tmp/td_fuzz_tls_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cert[300], key[300], err[256];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    uint8_t md[32];
    int64_t not_after;
    int rv = td_gencert_write(dir, 2, md, &not_after, err, sizeof(err));
    if (rv == 0)
        rv = td_tls_ctx_new(&ctx, cert, key, err, sizeof(err));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (rv != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    return ctx;
}

static void check_sniff(const uint8_t *p, size_t n)
{
    bool want = n > 0 && p[0] == 0x16 && (n < 2 || p[1] == 3) && (n < 6 || p[5] == 1);
    CHECK(td_tls_looks_like_client_hello(p, n) == want);
}

/* Takes the output in two uneven pieces, as a partial socket write would. */
static void drain_out(struct td_tls *t)
{
    size_t n;
    const uint8_t *o = td_tls_out(t, &n);
    CHECK(n <= TD_TLS_MAX_OUT + 65536);
    if (n == 0)
        return;
    CHECK(o != NULL);
    volatile uint8_t sink = o[0] ^ o[n - 1];
    (void)sink;
    td_tls_out_consume(t, n / 3);
    o = td_tls_out(t, &n);
    td_tls_out_consume(t, n);
    o = td_tls_out(t, &n);
    CHECK(n == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct td_tls_ctx *ctx = fuzz_ctx();
    uint32_t seed = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    check_sniff(p, n);

    struct td_tls *t = td_tls_new(ctx);
    int failed = 0; /* the sticky error once seen */
    size_t off = 0;
    while (off < n || off == 0) {
        size_t k = n - off;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            size_t c = 1 + (seed >> 16) % 700;
            if (k > c)
                k = c;
        }
        int rv = td_tls_feed(t, p + off, k);
        CHECK(rv == 0 || rv == TD_EPROTO || rv == TD_ELIMIT);
        CHECK(rv != TD_ELIMIT || k > 65536); /* reads below drain, so only huge feeds hit it */
        if (failed != 0)
            CHECK(rv == failed);
        if (rv == TD_EPROTO)
            failed = rv;
        uint8_t buf[4096];
        bool eof = true;
        ssize_t r = td_tls_read(t, buf, sizeof(buf), &eof);
        CHECK(r == 0 || r == TD_EPROTO);
        CHECK(!eof);
        if (failed != 0)
            CHECK(r == failed);
        if (r == TD_EPROTO)
            failed = TD_EPROTO;
        CHECK(!td_tls_handshake_done(t));
        int w = td_tls_write(t, "x", 1);
        CHECK(w == (failed != 0 ? failed : TD_EINVAL));
        drain_out(t);
        off += k;
        if (n == 0)
            break;
    }
    CHECK(td_tls_close_notify(t) == (failed != 0 ? failed : 0));
    drain_out(t);
    td_tls_free(t);
    return 0;
}
