/*
 * td_wt.h - the HTTP/3 + WebTransport session engine of one QUIC connection, without I/O.
 *
 * td_wt sits between a QUIC connection (td_quic in the server, fakes in tests and the fuzzer)
 * and the application (tandem's WebTransport transport). It speaks just enough HTTP/3 to
 * carry one WebTransport session (docs/webtransport.md):
 *
 *   - our control stream with SETTINGS (td_h3_settings_server_default: QPACK table capacity
 *     0, so no QPACK streams of our own), opened by td_wt_on_ready;
 *   - the peer's control stream (SETTINGS first, GREASE and unknown frames skipped), its QPACK
 *     encoder stream (checked: a dynamic-table insert is QPACK_ENCODER_STREAM_ERROR, since we
 *     advertised capacity 0) and decoder stream (discarded), unknown uni streams (discarded);
 *   - request streams: the HEADERS frame is decoded with nghttp3's QPACK decoder. An extended
 *     CONNECT with :protocol webtransport (or webtransport-h3) asks the handler; a 2xx answer
 *     establishes the session, whose ID is the CONNECT stream's ID. Anything else gets a
 *     status and FIN: 404 for other methods, 405 for a plain CONNECT, 501 for another
 *     :protocol, 429 while a session exists or existed (one session per connection: Chromium
 *     opens a connection per session);
 *   - the CONNECT stream body: DATA frames carrying capsules (unknown ones, e.g. Chromium's
 *     first GREASE capsule, skipped; CLOSE_WEBTRANSPORT_SESSION and DRAIN handled);
 *   - WebTransport streams (bidi 0x41 / uni 0x54 + session ID) and datagrams (quarter
 *     stream ID), in both directions, with application error codes mapped to HTTP/3 codes.
 *
 * Session states (td_wt_state):
 *   TD_WT_NONE   no session yet. WT streams naming a session are buffered (at most
 *                TD_WT_MAX_BUFFERED_STREAMS, TD_WT_MAX_BUFFERED_BYTES each) until a CONNECT
 *                for that ID is accepted; a refusal rejects them (WT_BUFFERED_STREAM_REJECTED).
 *   TD_WT_OPEN   a CONNECT was answered 2xx. Streams and datagrams of the session flow; the
 *                application API works.
 *   TD_WT_CLOSED the session ended, for good. Every stream of it was shut down with
 *                H3_CONNECT_ERROR (streams already finished in both directions are left
 *                alone); the application API returns TD_EINVAL; late streams are reset.
 * The session ends on: a CLOSE capsule (answered with FIN), a bare FIN (= close(0, "")), a
 * reset, STOP_SENDING or close of the CONNECT stream, a malformed capsule (the CONNECT stream
 * is shut down with H3_MESSAGE_ERROR), td_wt_session_close (CLOSE capsule + FIN, and no
 * STOP_SENDING on that stream: Chromium would drop the capsule), or a connection error.
 * on_session_closed runs exactly once per established session, whichever of these ended it
 * (inside td_wt_session_close for an application close, with its code and reason). It does
 * not run from td_wt_free.
 *
 * Errors: a connection error (e.g. no SETTINGS first on the peer control stream) calls
 * ops->conn_close once with the HTTP/3 code; from then on every td_wt_on_* returns a negative
 * code and does nothing. A request stream error (malformed header section: missing or
 * repeated pseudo-headers, uppercase names, undecodable QPACK) resets that stream with
 * H3_MESSAGE_ERROR and leaves the connection up. Every buffer the peer can grow is capped
 * (frame headers, HEADERS payload TD_H3_HEADERS_MAX_LEN, decoded header list, capsules
 * TD_H3_CAPSULE_MAX_LEN, prefixes, buffered streams, tracked streams).
 *
 * Flow control: td_wt returns the credit (ops->stream_consumed) for every byte it is given,
 * after it has parsed, buffered (under the caps above) or delivered it; WebTransport payload
 * is credited when on_stream_data returns, so the application caps its own buffers.
 *
 * Reentrancy: handler callbacks may call the application API (td_wt_stream_*, td_wt_datagram_send,
 * td_wt_session_*), including for the stream being reported; td_wt re-checks its state after
 * every callback. They must not call td_wt_on_* or td_wt_free. The ops must not call back
 * into td_wt synchronously.
 */
#ifndef TD_WT_H
#define TD_WT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_str.h"
#include "quic/td_h3.h"

/* HTTP/3 error codes td_wt sends (RFC 9114 8.1, RFC 9204 6, RFC 9297, WebTransport drafts). */
#define TD_WT_H3_NO_ERROR UINT64_C(0x100)
#define TD_WT_H3_INTERNAL_ERROR UINT64_C(0x102)
#define TD_WT_H3_STREAM_CREATION_ERROR UINT64_C(0x103)
#define TD_WT_H3_CLOSED_CRITICAL_STREAM UINT64_C(0x104)
#define TD_WT_H3_FRAME_UNEXPECTED UINT64_C(0x105)
#define TD_WT_H3_FRAME_ERROR UINT64_C(0x106)
#define TD_WT_H3_EXCESSIVE_LOAD UINT64_C(0x107)
#define TD_WT_H3_ID_ERROR UINT64_C(0x108)
#define TD_WT_H3_SETTINGS_ERROR UINT64_C(0x109)
#define TD_WT_H3_MISSING_SETTINGS UINT64_C(0x10a)
#define TD_WT_H3_REQUEST_INCOMPLETE UINT64_C(0x10d)
#define TD_WT_H3_MESSAGE_ERROR UINT64_C(0x10e)
#define TD_WT_H3_CONNECT_ERROR TD_H3_ERR_CONNECT_ERROR /* 0x10f: session gone */
#define TD_WT_QPACK_ENCODER_STREAM_ERROR UINT64_C(0x201)
#define TD_WT_H3_DATAGRAM_ERROR UINT64_C(0x33)
#define TD_WT_BUFFERED_STREAM_REJECTED UINT64_C(0x3994bd84)

/* Streams td_wt tracks at once (peer streams plus ours); a peer stream beyond this is shut
 * down with H3_EXCESSIVE_LOAD and not tracked. QUIC's own stream limits (td_quic: 100 + 100)
 * keep a well-behaved peer far below. */
#define TD_WT_MAX_STREAMS 1024
/* WebTransport streams held while their session is not established yet, and the payload
 * bytes each may hold; beyond either, the stream is reset with WT_BUFFERED_STREAM_REJECTED. */
#define TD_WT_MAX_BUFFERED_STREAMS 8
#define TD_WT_MAX_BUFFERED_BYTES 4096
/* The decoded header section of a request, counted as name + value + 32 per field (RFC 9114
 * 4.2.2); beyond it the request stream is reset with H3_EXCESSIVE_LOAD. */
#define TD_WT_MAX_HEADER_LIST 16384
/* The longest wt-protocol value td_wt_session_set_protocol accepts. */
#define TD_WT_MAX_PROTOCOL_LEN 256

/* The QUIC connection underneath; q is passed back unchanged. */
struct td_wt_ops {
    /* Opens a stream of ours. Returns 0 with *id, or TD_EAGAIN at the peer's stream limit. */
    int (*stream_open)(void *q, bool bidi, int64_t *id);
    /* Queues a copy of p[0..n) (then the end of the stream if fin). Returns 0, TD_ELIMIT
     * (output backlog full), TD_ENOTFOUND (stream gone) or TD_EINVAL (after fin). */
    int (*stream_send)(void *q, int64_t id, const void *p, size_t n, bool fin);
    /* RESET_STREAM (our side, when we have one) plus STOP_SENDING (theirs) with h3_code. */
    int (*stream_shutdown)(void *q, int64_t id, uint64_t h3_code);
    /* Returns n bytes of flow-control credit for stream id. */
    void (*stream_consumed)(void *q, int64_t id, size_t n);
    /* Queues one DATAGRAM payload (copied). Returns 0, TD_EINVAL (too big, or the peer takes
     * no datagrams) or TD_ELIMIT (queue full). */
    int (*datagram_send)(void *q, const void *p, size_t n);
    /* Closes the connection with an HTTP/3 error code (connection error). */
    void (*conn_close)(void *q, uint64_t h3_code);
};

/* An extended CONNECT as received. The views point into td_wt's memory and are valid only
 * during on_session_request; absent fields have p == NULL and n == 0. */
struct td_wt_request {
    struct td_str method, scheme, authority, path, protocol;
    struct td_str origin;              /* "origin" header (the page's origin) */
    struct td_str available_protocols; /* "wt-available-protocols" (an sf-list), raw */
};

/* The application. Callbacks returning nonzero fail the connection (H3_INTERNAL_ERROR).
 * Every member except on_session_drain must be set. */
struct td_wt_handler {
    /* An extended CONNECT for a WebTransport session arrived: return the :status to answer
     * (a 2xx accepts; 300..599 refuses; other non-negative values answer 500; a negative
     * value fails the connection). To answer a wt-protocol, call td_wt_session_set_protocol
     * before returning. */
    int (*on_session_request)(void *ud, const struct td_wt_request *req);
    /* The peer opened a WebTransport stream of the session (before its first data). */
    int (*on_stream_open)(void *ud, int64_t id, bool bidi);
    /* Payload of a WebTransport stream (after the prefix), in order; fin on the last call
     * (possibly with n == 0). Also for data the peer sends on a bidi stream we opened. */
    int (*on_stream_data)(void *ud, int64_t id, const uint8_t *p, size_t n, bool fin);
    /* The peer reset the stream (reset) or asked us to stop sending (!reset). wt_code is the
     * application code, or 0 for codes outside the WebTransport range. After a reset no more
     * data comes; after STOP_SENDING td_wt_stream_send fails on that stream. */
    void (*on_stream_reset)(void *ud, int64_t id, uint32_t wt_code, bool reset);
    /* A datagram of the session (payload after the quarter stream ID). */
    void (*on_datagram)(void *ud, const uint8_t *p, size_t n);
    /* The established session ended (see the top of this file); exactly once. */
    void (*on_session_closed)(void *ud, uint32_t code, const uint8_t *reason, size_t n);
    /* Optional (may be NULL): the peer sent DRAIN_WEBTRANSPORT_SESSION. */
    void (*on_session_drain)(void *ud);
};

enum td_wt_state {
    TD_WT_NONE,   /* no session yet */
    TD_WT_OPEN,   /* established */
    TD_WT_CLOSED, /* ended */
};

struct td_wt_stats {
    uint64_t requests;          /* request HEADERS received and answered or reset */
    uint64_t refused;           /* requests answered with a non-2xx status */
    uint64_t streams;           /* streams tracked now */
    uint64_t streams_rejected;  /* WT streams reset for an unknown session or a full buffer */
    uint64_t datagrams_in;      /* datagrams delivered to on_datagram */
    uint64_t datagrams_dropped; /* datagrams for no open session */
    uint64_t datagrams_out;     /* datagrams accepted by ops->datagram_send */
};

struct td_wt;

/* td_wt_new creates the engine for one connection. ops, h (borrowed, must outlive it), q
 * and ud are passed back in every call. Never returns NULL. */
struct td_wt *td_wt_new(const struct td_wt_ops *ops, void *q, const struct td_wt_handler *h,
                        void *ud);
/* td_wt_free releases everything; no callback runs and nothing is sent. NULL is a no-op. */
void td_wt_free(struct td_wt *wt);

/* ---- input, fed from the QUIC connection's callbacks ----
 * A negative return means the connection is failing: td_wt has already called
 * ops->conn_close with the HTTP/3 error; the caller only needs to stop feeding it. */

/* td_wt_on_ready opens our control stream and writes the stream type and SETTINGS. Call it
 * once the 1-RTT keys exist (td_quic's on_ready). Returns 0, or negative (the stream could
 * not be opened or written: H3_INTERNAL_ERROR). A second call does nothing. */
int td_wt_on_ready(struct td_wt *wt);
/* td_wt_on_stream_data feeds stream bytes in order (fin: the peer ended the stream). Data for
 * unknown streams of ours is ignored. Returns 0 or negative (connection error). */
int td_wt_on_stream_data(struct td_wt *wt, int64_t id, const uint8_t *p, size_t n, bool fin);
/* td_wt_on_stream_abort: the peer reset stream id (reset) or sent STOP_SENDING (!reset) with
 * h3_code. Returns 0 or negative (a critical stream was aborted: H3_CLOSED_CRITICAL_STREAM). */
int td_wt_on_stream_abort(struct td_wt *wt, int64_t id, uint64_t h3_code, bool reset);
/* td_wt_on_stream_close: stream id is gone in both directions; td_wt forgets it. Closing a
 * critical stream fails the connection; closing the CONNECT stream ends the session. */
void td_wt_on_stream_close(struct td_wt *wt, int64_t id, uint64_t h3_code);
/* td_wt_on_datagram feeds one QUIC DATAGRAM payload. Datagrams for no open session are
 * dropped. Returns 0, or negative for a malformed quarter stream ID (H3_DATAGRAM_ERROR). */
int td_wt_on_datagram(struct td_wt *wt, const uint8_t *p, size_t n);

/* ---- application API (TD_EINVAL unless the session is TD_WT_OPEN) ---- */

/* td_wt_session_set_protocol sets the wt-protocol answered with the 2xx (sent as an
 * sf-string); callable only inside on_session_request. p must be printable ASCII without
 * '"' or '\\'. Returns 0, TD_EINVAL (bad value or wrong time) or TD_ELIMIT (longer than
 * TD_WT_MAX_PROTOCOL_LEN). */
int td_wt_session_set_protocol(struct td_wt *wt, const char *p, size_t n);
/* td_wt_stream_open opens a WebTransport stream of the session and writes its prefix (0x41 or
 * 0x54, then the session ID). Returns 0 with *id; TD_EAGAIN at the peer's stream limit;
 * TD_ELIMIT at TD_WT_MAX_STREAMS; or another ops error. */
int td_wt_stream_open(struct td_wt *wt, bool bidi, int64_t *id);
/* td_wt_stream_send sends payload on a WebTransport stream of the session (ours, or a peer's
 * bidi stream). Returns 0; TD_ENOTFOUND for a stream that is not a live WT stream of the
 * session; TD_EINVAL after fin, reset or the peer's STOP_SENDING (or for a peer uni stream);
 * or the ops error (TD_ELIMIT: backlog full). */
int td_wt_stream_send(struct td_wt *wt, int64_t id, const void *p, size_t n, bool fin);
/* td_wt_stream_reset shuts a WebTransport stream of the session down in both directions with
 * the application code wt_code; later data from the peer is discarded. Returns 0,
 * TD_ENOTFOUND or TD_EINVAL (already reset). */
int td_wt_stream_reset(struct td_wt *wt, int64_t id, uint32_t wt_code);
/* td_wt_datagram_send sends a datagram of the session (the quarter stream ID is prepended).
 * Returns 0; TD_EINVAL if the peer did not negotiate HTTP datagrams (in its SETTINGS) or the
 * ops refuse the size; TD_ELIMIT when the queue is full. */
int td_wt_datagram_send(struct td_wt *wt, const void *p, size_t n);
/* td_wt_session_close ends the session: a CLOSE_WEBTRANSPORT_SESSION capsule (code, reason)
 * in a DATA frame and FIN on the CONNECT stream (no STOP_SENDING there), then every other
 * stream of the session is shut down, then on_session_closed(code, reason) runs. Returns 0,
 * TD_EINVAL (not open) or TD_ELIMIT (reason longer than TD_H3_WT_CLOSE_REASON_MAX; nothing
 * done). A failure to queue the capsule still ends the session (the stream is then reset). */
int td_wt_session_close(struct td_wt *wt, uint32_t code, const char *reason, size_t n);
/* td_wt_session_drain sends DRAIN_WEBTRANSPORT_SESSION (the peer should wind down). Returns 0,
 * TD_EINVAL (not open) or the ops error. */
int td_wt_session_drain(struct td_wt *wt);

/* ---- inspection ---- */

enum td_wt_state td_wt_state(const struct td_wt *wt);
/* td_wt_session_id returns the session's ID (its CONNECT stream), or -1 if none was ever
 * established. */
int64_t td_wt_session_id(const struct td_wt *wt);
/* td_wt_peer_version returns the WebTransport version the peer's SETTINGS negotiate with
 * ours (TD_H3_WT_NONE until they arrive). */
enum td_h3_wt_version td_wt_peer_version(const struct td_wt *wt);
void td_wt_stats(const struct td_wt *wt, struct td_wt_stats *out);

#endif
