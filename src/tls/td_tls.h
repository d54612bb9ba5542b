/*
 * td_tls.h - an I/O-free TLS server engine on GnuTLS (https and wss on TCP).
 *
 * The engine owns no socket and reads no clock of its own: the caller feeds it the ciphertext
 * it received, takes out the plaintext, hands it plaintext to encrypt, and writes whatever
 * ciphertext the engine queued. GnuTLS is driven through in-memory transport functions (its
 * pull side says "would block" when the input is empty), so the engine can be unit-tested
 * against an in-memory GnuTLS client and fuzzed without a network.
 *
 * Protocol choices: TLS 1.3 and TLS 1.2 only (GnuTLS priority
 * "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2": GnuTLS's default cipher suites, groups and
 * signature algorithms, without SSL 3.0, TLS 1.0 and 1.1, which browsers no longer offer and
 * RFC 8996 deprecates). ALPN offers "http/1.1" only, so browsers use HTTP/1.1 and its
 * WebSocket upgrade over the connection; a client whose ALPN list lacks "http/1.1" (say "h2"
 * only) is refused with a no_application_protocol alert (RFC 7301 3.2); a client that sends
 * no ALPN is accepted. Session tickets are on, with one key per td_tls_ctx, so a reconnecting
 * browser resumes without a full handshake; 0-RTT data, renegotiation and client
 * certificates are off. GnuTLS's wall-clock handshake timeout is disabled: the server's own
 * timers bound how long a handshake may take.
 *
 * Using a session (what src/io/td_conn.c does):
 *
 *   on bytes from the socket:
 *       rv = td_tls_feed(t, p, n);              -- drives the handshake while it runs
 *       while rv == 0 and (k = td_tls_read(t, buf, sizeof(buf), &eof)) > 0:
 *           process k plaintext bytes
 *       rv < 0 or k < 0: write td_tls_out (it may hold an alert), then close
 *       eof: the peer sent close_notify; td_tls_close_notify, write td_tls_out, close
 *   to send: td_tls_write(t, plaintext, n) once td_tls_handshake_done
 *   after any of the calls above: p = td_tls_out(t, &len); write p[0..len) to the socket
 *       (copy it or keep it until written); td_tls_out_consume(t, written)
 *
 * Feeding and reading produce output too (the handshake flights, session tickets, TLS 1.3
 * KeyUpdate answers, alerts), so td_tls_out must be checked after every call, not only after
 * td_tls_write. Errors are sticky: once the session failed (TD_EPROTO, or TD_ELIMIT for an
 * output overrun) every later feed, read, write and close_notify returns that same code
 * (td_tls_out may still hold the alert to send). The input-cap TD_ELIMIT of td_tls_feed is the
 * one result that leaves the session usable.
 *
 * Caps: the unprocessed input is at most TD_TLS_MAX_IN bytes (td_tls_feed) and what
 * td_tls_write queues at most TD_TLS_MAX_OUT. Reading drains the input completely whenever it
 * returns 0, so a caller that reads after each feed never buffers more than one partial
 * record inside GnuTLS and never hits the input cap with feeds of up to 64 KiB. Output the peer
 * provokes by itself (KeyUpdate answers, alerts) may take the output 64 KiB past
 * TD_TLS_MAX_OUT; beyond that the session fails with TD_ELIMIT (sticky) from the call that
 * would have queued more, which only happens to a caller that stopped taking td_tls_out.
 *
 * Not thread-safe: a session and the context it uses belong to one thread (the context may
 * be shared by every session on that thread).
 */
#ifndef TD_TLS_H
#define TD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Largest TLS record on the wire: 5-byte header + 2^14 plaintext + 2048 (the TLS 1.2 bound on
 * expansion; TLS 1.3 allows 256). */
#define TD_TLS_MAX_RECORD_WIRE (5 + 16384 + 2048)
/* Cap on ciphertext fed but not yet processed: one 64 KiB socket read plus one record. */
#define TD_TLS_MAX_IN (65536 + TD_TLS_MAX_RECORD_WIRE)
/* Cap on ciphertext queued for the socket and not yet consumed. */
#define TD_TLS_MAX_OUT (4u * 1024 * 1024)

/* Credentials and settings shared by every session: certificate chain, key, priorities,
 * session ticket key. */
struct td_tls_ctx;

/*
 * td_tls_ctx_new loads the PEM certificate chain (leaf first) in cert_file and its PEM private
 * key in key_file (PKCS#8 or the traditional formats GnuTLS reads) and stores a new context
 * in *out. Returns 0, or TD_EINVAL with a one-line reason in err (missing or unreadable file,
 * key not matching the certificate, ...).
 */
int td_tls_ctx_new(struct td_tls_ctx **out, const char *cert_file, const char *key_file, char *err,
                   size_t errlen);

/* td_tls_ctx_del frees the context; NULL is allowed. Every session made from it must be freed
 * first. */
void td_tls_ctx_del(struct td_tls_ctx *ctx);

/* One server-side TLS session (one TCP connection). */
struct td_tls;

/* td_tls_new returns a new session waiting for a ClientHello. ctx must outlive it. Never
 * returns NULL (allocation failure aborts; GnuTLS failing to set up a session aborts too, as
 * it only happens when the library itself is broken). */
struct td_tls *td_tls_new(struct td_tls_ctx *ctx);

/* td_tls_free frees the session and everything it buffers; NULL is allowed. Sends nothing:
 * call td_tls_close_notify and write td_tls_out first for an orderly close. */
void td_tls_free(struct td_tls *t);

/*
 * td_tls_feed appends n bytes of ciphertext received from the peer (p is borrowed for the
 * call) and, while the handshake runs, advances it as far as the input allows; handshake
 * messages and alerts to send are appended to the output. After the handshake the bytes are
 * only buffered: call td_tls_read to decrypt them. n == 0 is allowed (it just retries the
 * handshake). Returns 0; TD_EPROTO when the peer broke TLS or the handshake failed (fatal:
 * write td_tls_out, which may hold an alert, then close); or TD_ELIMIT when the buffered
 * input plus n would exceed TD_TLS_MAX_IN, in which case nothing was consumed and the session
 * is unchanged (drain with td_tls_read and retry, or close).
 */
int td_tls_feed(struct td_tls *t, const uint8_t *p, size_t n);

/*
 * td_tls_read decrypts buffered input into out[0..cap). Returns the number of plaintext bytes
 * stored (> 0; call again, there may be more), or 0 when nothing more can be decrypted from
 * the input so far, or TD_EPROTO on a fatal TLS error (bad record MAC, unexpected message,
 * fatal alert received, renegotiation attempt, ...; the output may hold an alert to send),
 * or TD_ELIMIT when the output cap was overrun (see Caps above).
 * Before the handshake completes it returns 0. *eof is set to true once the peer's
 * close_notify was processed (it then stays true and reads return 0), otherwise to false.
 * Plaintext is only ever returned in order and never twice; a record larger than cap is
 * returned over several calls.
 */
ssize_t td_tls_read(struct td_tls *t, uint8_t *out, size_t cap, bool *eof);

/*
 * td_tls_write encrypts p[0..n) into as few records as the negotiated record size allows and
 * appends them to the output. Returns 0; TD_EINVAL before the handshake completed or after
 * td_tls_close_notify; TD_ELIMIT when the output already queued plus the records for n bytes
 * (counting the worst-case overhead of the cipher suite) would exceed TD_TLS_MAX_OUT, in which
 * case nothing is written; or the session's error (TD_EPROTO) once it failed.
 */
int td_tls_write(struct td_tls *t, const void *p, size_t n);

/*
 * td_tls_writev is td_tls_write on the concatenation of iov[0..niov): small pieces share
 * records (many small frames flushed together cost one record, not one each). Same returns.
 */
int td_tls_writev(struct td_tls *t, const struct iovec *iov, size_t niov);

/* td_tls_out returns the ciphertext waiting to be written to the socket and stores its length
 * in *n (0: nothing; the pointer is then unspecified). The pointer stays valid until the next
 * call on the session. */
const uint8_t *td_tls_out(struct td_tls *t, size_t *n);

/* td_tls_out_consume drops the first n bytes of the output (n <= the length td_tls_out
 * reported), after the caller wrote or copied them. */
void td_tls_out_consume(struct td_tls *t, size_t n);

/*
 * td_tls_close_notify appends a close_notify alert to the output; later writes return
 * TD_EINVAL. Reading stays possible (TLS allows half-close). Calling it twice, or before the
 * handshake completed (then it does nothing), is allowed. Returns 0, or TD_EPROTO when the
 * session already failed.
 */
int td_tls_close_notify(struct td_tls *t);

/* td_tls_handshake_done returns true once the handshake completed successfully (and stays
 * true if the session fails later). */
bool td_tls_handshake_done(const struct td_tls *t);

/* td_tls_version_name returns the negotiated protocol version ("TLS1.3", "TLS1.2") for logs,
 * or "-" before the handshake completed. The string is static. */
const char *td_tls_version_name(const struct td_tls *t);

/*
 * td_tls_looks_like_client_hello tells a TLS connection from plaintext HTTP on a port that
 * serves both, from the first bytes received: returns true when p[0..n) is consistent with
 * the start of a TLS record carrying a ClientHello (byte 0 is 0x16, the handshake content
 * type; byte 1, when present, is 3, the major version; byte 5, when present, is 1, the
 * ClientHello message type), false otherwise or when n == 0. No HTTP request can start with
 * 0x16, so one byte is enough to decide; the other checks only reject junk early.
 */
bool td_tls_looks_like_client_hello(const uint8_t *p, size_t n);

#endif
