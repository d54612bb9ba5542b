/*
 * td_h3.h - I/O-free codecs for the parts of HTTP/3 that WebTransport needs beyond QPACK.
 *
 * tandem speaks just enough HTTP/3 to carry WebTransport sessions (QPACK itself comes from
 * nghttp3's encoder/decoder; see docs/webtransport.md for why nghttp3's connection layer is
 * not used). This module holds the pure byte-level pieces:
 *
 *   - QUIC variable-length integers (RFC 9000 section 16);
 *   - HTTP/3 frame headers (RFC 9114 section 7) with per-type length caps;
 *   - the prefix that opens a peer stream: the unidirectional stream type (control, QPACK,
 *     WebTransport 0x54) or the WebTransport bidirectional signal 0x41, and its session ID;
 *   - the SETTINGS payload, including the WebTransport codepoints Chromium negotiates with
 *     (draft-02 0x2b603742, draft-07 0xc671706a) and HTTP datagrams (RFC 9297 0x33, draft-04
 *     0xffd277);
 *   - GOAWAY payloads;
 *   - capsules (RFC 9297 section 3), with CLOSE_WEBTRANSPORT_SESSION (0x2843) and
 *     DRAIN_WEBTRANSPORT_SESSION (0x78ae);
 *   - HTTP datagram framing (quarter stream ID prefix);
 *   - the mapping between WebTransport application error codes and HTTP/3 error codes.
 *
 * Conventions: decoders take (p, n) and never read past p[n-1]. They return 0, TD_EAGAIN
 * when the input ends before the item does (feed more bytes and call again from the same
 * start), TD_EPROTO when the bytes are malformed, or TD_ELIMIT when a length exceeds the cap
 * named for it here. Out-parameters are written only on success. Pointers a decoder returns
 * point into the caller's input. Encoders either write into a caller array whose minimum
 * size is stated, or append to a struct td_buf.
 */
#ifndef TD_H3_H
#define TD_H3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"

/* ---- QUIC variable-length integers ---- */

/* The largest value a QUIC varint can carry (2^62 - 1). */
#define TD_H3_VARINT_MAX ((UINT64_C(1) << 62) - 1)
/* The longest encoding of a varint, in bytes. */
#define TD_H3_VARINT_MAXLEN 8

/* td_h3_varint_len returns the minimal encoded length of v (1, 2, 4 or 8), or 0 if v is
 * larger than TD_H3_VARINT_MAX. */
size_t td_h3_varint_len(uint64_t v);

/*
 * td_h3_varint_decode reads one varint from p[0..n). Non-minimal encodings are accepted
 * (RFC 9000 allows them). On success stores the value in *v and its encoded length in
 * *used. Returns 0, or TD_EAGAIN if n is shorter than the encoding.
 */
int td_h3_varint_decode(const uint8_t *p, size_t n, uint64_t *v, size_t *used);

/*
 * td_h3_varint_encode writes v with the minimal encoding into out (at least
 * TD_H3_VARINT_MAXLEN bytes). Returns the number of bytes written, or 0 (nothing written)
 * if v is larger than TD_H3_VARINT_MAX.
 */
size_t td_h3_varint_encode(uint8_t *out, uint64_t v);

/* td_h3_varint_append appends v, minimally encoded, to b. Returns 0, or TD_EINVAL if v is
 * larger than TD_H3_VARINT_MAX (b is unchanged). */
int td_h3_varint_append(struct td_buf *b, uint64_t v);

/* td_h3_is_grease reports whether v is a reserved GREASE codepoint of the form
 * 0x1f * N + 0x21 (RFC 9114 sections 6.2.3, 7.2.8, 8.1, 11.2.1). */
bool td_h3_is_grease(uint64_t v);

/* ---- Frames ---- */

enum {
    TD_H3_FRAME_DATA = 0x00,
    TD_H3_FRAME_HEADERS = 0x01,
    TD_H3_FRAME_CANCEL_PUSH = 0x03,
    TD_H3_FRAME_SETTINGS = 0x04,
    TD_H3_FRAME_PUSH_PROMISE = 0x05,
    TD_H3_FRAME_GOAWAY = 0x07,
    TD_H3_FRAME_MAX_PUSH_ID = 0x0d,
    /* WEBTRANSPORT_STREAM: not a frame but a signal that may only open a bidirectional
     * stream; see td_h3_stream_prefix_decode. */
    TD_H3_FRAME_WT_STREAM = 0x41,
};

/* Caps on the payloads a receiver must buffer whole before acting on them. DATA and
 * unknown (including GREASE) frames have no cap: they are consumed or skipped as they
 * arrive. */
#define TD_H3_SETTINGS_MAX_LEN 1024  /* Chromium 156's SETTINGS payload is about 40 bytes */
#define TD_H3_HEADERS_MAX_LEN 16384  /* HEADERS and PUSH_PROMISE (QPACK-encoded) */
#define TD_H3_VARINT_FRAME_MAX_LEN 8 /* GOAWAY, CANCEL_PUSH, MAX_PUSH_ID: one varint */
/* The largest encoded frame header (type + length). */
#define TD_H3_FRAME_HDR_MAXLEN (2 * TD_H3_VARINT_MAXLEN)

struct td_h3_frame_hdr {
    uint64_t type;
    uint64_t len;   /* payload length in bytes */
    size_t hdr_len; /* encoded size of the type and length varints */
};

/*
 * td_h3_frame_hdr_decode reads a frame header (type varint, length varint) from p[0..n).
 * It does not need the payload to be present. Returns 0; TD_EAGAIN if the header is
 * incomplete; TD_EPROTO for a type that HTTP/3 reserves from HTTP/2 (0x02, 0x06, 0x08,
 * 0x09), for TD_H3_FRAME_WT_STREAM (legal only as a stream prefix) or for a one-varint
 * frame whose length is 0 or above TD_H3_VARINT_FRAME_MAX_LEN; TD_ELIMIT if a SETTINGS,
 * HEADERS or PUSH_PROMISE length exceeds its cap above. Which frame may appear on which
 * stream is the caller's business.
 */
int td_h3_frame_hdr_decode(const uint8_t *p, size_t n, struct td_h3_frame_hdr *hdr);

/*
 * td_h3_frame_hdr_encode writes a minimal frame header into out (at least
 * TD_H3_FRAME_HDR_MAXLEN bytes). Returns the bytes written, or 0 if type or len is larger
 * than TD_H3_VARINT_MAX.
 */
size_t td_h3_frame_hdr_encode(uint8_t *out, uint64_t type, uint64_t len);

/* td_h3_frame_append appends a whole frame (header plus payload[0..len)) to b. Returns 0,
 * or TD_EINVAL if type is larger than TD_H3_VARINT_MAX (b is unchanged). */
int td_h3_frame_append(struct td_buf *b, uint64_t type, const void *payload, size_t len);

/* td_h3_goaway_decode parses a GOAWAY (or CANCEL_PUSH / MAX_PUSH_ID) payload: exactly one
 * varint. Returns 0 with the ID in *id, or TD_EPROTO if the payload is not exactly one
 * varint. */
int td_h3_goaway_decode(const uint8_t *payload, size_t len, uint64_t *id);

/* td_h3_goaway_append appends a whole GOAWAY frame carrying id. Returns 0, or TD_EINVAL
 * if id is larger than TD_H3_VARINT_MAX. */
int td_h3_goaway_append(struct td_buf *b, uint64_t id);

/* ---- Stream prefixes ---- */

enum {
    TD_H3_UNI_CONTROL = 0x00,
    TD_H3_UNI_PUSH = 0x01,
    TD_H3_UNI_QPACK_ENCODER = 0x02,
    TD_H3_UNI_QPACK_DECODER = 0x03,
    TD_H3_UNI_WT = 0x54, /* WebTransport unidirectional stream */
};

enum td_h3_stream_kind {
    TD_H3_STREAM_REQUEST,       /* bidirectional, HTTP/3 frames follow from offset 0 */
    TD_H3_STREAM_WT_BIDI,       /* bidirectional, 0x41 + session ID, then WebTransport data */
    TD_H3_STREAM_CONTROL,       /* unidirectional type 0x00 */
    TD_H3_STREAM_PUSH,          /* unidirectional type 0x01 (a server never accepts it) */
    TD_H3_STREAM_QPACK_ENCODER, /* unidirectional type 0x02 */
    TD_H3_STREAM_QPACK_DECODER, /* unidirectional type 0x03 */
    TD_H3_STREAM_WT_UNI,        /* unidirectional type 0x54 + session ID, then data */
    TD_H3_STREAM_UNKNOWN,       /* unidirectional, any other type (GREASE included) */
};

struct td_h3_stream_prefix {
    enum td_h3_stream_kind kind;
    uint64_t type;       /* the stream type (unidirectional) or 0x41 (WT_BIDI); else 0 */
    uint64_t session_id; /* WT_BIDI and WT_UNI only: the CONNECT stream's ID */
    size_t len;          /* prefix bytes to consume; 0 for TD_H3_STREAM_REQUEST */
};

/*
 * td_h3_stream_prefix_decode classifies a peer-initiated stream from its first bytes.
 * bidi says whether the stream is bidirectional. On a bidirectional stream a first varint
 * of 0x41 makes it a WebTransport stream (the session ID follows); anything else makes it
 * a request stream whose frames start at offset 0. On a unidirectional stream the first
 * varint is the stream type; type 0x54 is followed by the session ID. Returns 0; TD_EAGAIN
 * if more bytes are needed; TD_EPROTO if a session ID is not a client-initiated
 * bidirectional stream ID (a multiple of 4).
 */
int td_h3_stream_prefix_decode(const uint8_t *p, size_t n, bool bidi,
                               struct td_h3_stream_prefix *out);

/*
 * td_h3_wt_stream_prefix_encode writes the prefix that opens a WebTransport stream we
 * initiate (0x41 or 0x54, then session_id) into out (at least 2 * TD_H3_VARINT_MAXLEN
 * bytes). Returns the bytes written (Chromium's own prefix for session 0 is the three
 * bytes 40 41 00 / 40 54 00), or 0 if session_id is not a multiple of 4 or too large.
 */
size_t td_h3_wt_stream_prefix_encode(uint8_t *out, bool bidi, uint64_t session_id);

/* ---- SETTINGS ---- */

enum {
    TD_H3_SETTING_QPACK_MAX_TABLE_CAPACITY = 0x01,
    TD_H3_SETTING_MAX_FIELD_SECTION_SIZE = 0x06,
    TD_H3_SETTING_QPACK_BLOCKED_STREAMS = 0x07,
    TD_H3_SETTING_ENABLE_CONNECT_PROTOCOL = 0x08, /* RFC 9220 */
    TD_H3_SETTING_H3_DATAGRAM = 0x33,             /* RFC 9297 */
};
/* Codepoints above 2^30 are not enums (they would not fit an int). */
#define TD_H3_SETTING_H3_DATAGRAM_DRAFT04 UINT64_C(0xffd277)
#define TD_H3_SETTING_ENABLE_WEBTRANSPORT UINT64_C(0x2b603742) /* WT draft-02, value 0/1 */
#define TD_H3_SETTING_WT_MAX_SESSIONS_D07 UINT64_C(0xc671706a) /* WT draft-07, value > 0 */
#define TD_H3_SETTING_WT_ENABLED_D15 UINT64_C(0x2c7cf000)      /* WT draft-15, value 0/1 */
#define TD_H3_SETTING_WT_MAX_SESSIONS_D13 UINT64_C(0x14e9cd29) /* WT draft-13+ */

/* Bits of td_h3_settings.present, one per setting the struct holds. */
enum {
    TD_H3_SET_QPACK_MAX_TABLE_CAPACITY = 1u << 0,
    TD_H3_SET_MAX_FIELD_SECTION_SIZE = 1u << 1,
    TD_H3_SET_QPACK_BLOCKED_STREAMS = 1u << 2,
    TD_H3_SET_ENABLE_CONNECT_PROTOCOL = 1u << 3,
    TD_H3_SET_H3_DATAGRAM = 1u << 4,
    TD_H3_SET_H3_DATAGRAM_DRAFT04 = 1u << 5,
    TD_H3_SET_ENABLE_WEBTRANSPORT = 1u << 6,
    TD_H3_SET_WT_MAX_SESSIONS_D07 = 1u << 7,
    TD_H3_SET_WT_ENABLED_D15 = 1u << 8,
    TD_H3_SET_WT_MAX_SESSIONS_D13 = 1u << 9,
};

/*
 * The settings tandem understands. A field is meaningful only if its bit is set in present;
 * absent settings take the defaults of RFC 9114 (0, or unlimited for max_field_section_size)
 * as the caller sees fit. Boolean settings hold 0 or 1.
 */
struct td_h3_settings {
    uint32_t present;
    uint32_t unknown; /* count of ignored unknown or GREASE settings (decode only) */
    uint64_t qpack_max_table_capacity;
    uint64_t max_field_section_size;
    uint64_t qpack_blocked_streams;
    uint64_t enable_connect_protocol;
    uint64_t h3_datagram;
    uint64_t h3_datagram_draft04;
    uint64_t enable_webtransport;
    uint64_t wt_max_sessions_d07;
    uint64_t wt_enabled_d15;
    uint64_t wt_max_sessions_d13;
};

/*
 * td_h3_settings_decode parses a whole SETTINGS frame payload. Unknown identifiers
 * (GREASE included) are counted and ignored. Returns 0; TD_ELIMIT if len exceeds
 * TD_H3_SETTINGS_MAX_LEN; TD_EPROTO (H3_SETTINGS_ERROR or H3_FRAME_ERROR for the caller)
 * if the payload ends inside a varint, an identifier repeats, an HTTP/2-only identifier
 * (0x02-0x05) appears, a boolean setting (0x08, 0x33, 0xffd277, 0x2b603742,
 * 0x2c7cf000) is not 0 or 1, or 0xc671706a is 0.
 */
int td_h3_settings_decode(const uint8_t *payload, size_t len, struct td_h3_settings *out);

/*
 * td_h3_settings_append appends the SETTINGS *payload* for every setting present in s, in
 * ascending identifier order, minimally encoded. Returns 0, or TD_EINVAL if a value is too
 * large for a varint or a boolean setting is not 0 or 1 (b is unchanged).
 */
int td_h3_settings_append(struct td_buf *b, const struct td_h3_settings *s);

/*
 * td_h3_settings_server_default fills s with what tandem's server sends, the set verified
 * against Chromium 156 (docs/webtransport.md): QPACK_MAX_TABLE_CAPACITY=0,
 * QPACK_BLOCKED_STREAMS=0 (no dynamic table, so no QPACK streams are needed),
 * ENABLE_CONNECT_PROTOCOL=1, H3_DATAGRAM=1, ENABLE_WEBTRANSPORT(draft-02)=1 and
 * WEBTRANSPORT_MAX_SESSIONS(draft-07)=max_sessions (at least 1). The draft-13/15
 * codepoints are deliberately left out: a client negotiating those would expect
 * reset_stream_at and WebTransport flow control, which ngtcp2 0.12 and tandem lack.
 */
void td_h3_settings_server_default(struct td_h3_settings *s, uint64_t max_sessions);

/* td_h3_control_stream_open_append appends what a server writes first on its control
 * stream: the stream type 0x00 and a SETTINGS frame for s. Returns 0 or TD_EINVAL as
 * td_h3_settings_append. */
int td_h3_control_stream_open_append(struct td_buf *b, const struct td_h3_settings *s);

enum td_h3_wt_version {
    TD_H3_WT_NONE = 0,
    TD_H3_WT_DRAFT02 = 2,
    TD_H3_WT_DRAFT07 = 7,
};

/*
 * td_h3_settings_wt_version returns the WebTransport version a server that sent
 * td_h3_settings_server_default settings ends up using with a client that sent peer: the
 * highest common one, as quiche computes it. Draft-07 needs the client's 0xc671706a > 0 and
 * RFC datagrams (0x33=1); draft-02 needs 0x2b603742=1 and either datagram setting.
 * TD_H3_WT_NONE means the client cannot do WebTransport with us.
 */
enum td_h3_wt_version td_h3_settings_wt_version(const struct td_h3_settings *peer);

/* ---- Capsules (carried in DATA frames on the CONNECT stream) ---- */

#define TD_H3_CAPSULE_DATAGRAM UINT64_C(0x00)
#define TD_H3_CAPSULE_CLOSE_WT_SESSION UINT64_C(0x2843)
#define TD_H3_CAPSULE_DRAIN_WT_SESSION UINT64_C(0x78ae)
/* The cap on a capsule value held whole in memory. Chromium's GREASE capsules carry under
 * 64 bytes; a CLOSE carries at most 4 + 1024. Callers skip larger unknown capsules with
 * td_h3_capsule_hdr_decode instead of buffering them. */
#define TD_H3_CAPSULE_MAX_LEN 4096
/* The cap on a CLOSE_WEBTRANSPORT_SESSION reason, in bytes. */
#define TD_H3_WT_CLOSE_REASON_MAX 1024

struct td_h3_capsule {
    uint64_t type;
    const uint8_t *value; /* points into the input */
    size_t len;           /* value length */
    size_t size;          /* whole capsule: header plus value */
};

/* td_h3_capsule_hdr_decode reads a capsule's type and length varints, without needing the
 * value. Returns 0 with *hdr_len the header size; or TD_EAGAIN. */
int td_h3_capsule_hdr_decode(const uint8_t *p, size_t n, uint64_t *type, uint64_t *len,
                             size_t *hdr_len);

/*
 * td_h3_capsule_decode reads one whole capsule from p[0..n). Returns 0; TD_EAGAIN if the
 * header or value is incomplete; TD_ELIMIT if the value is longer than
 * TD_H3_CAPSULE_MAX_LEN (before waiting for it).
 */
int td_h3_capsule_decode(const uint8_t *p, size_t n, struct td_h3_capsule *c);

/* td_h3_capsule_append appends a capsule (type, length, value[0..len)) to b. Returns 0, or
 * TD_EINVAL if type is larger than TD_H3_VARINT_MAX (b is unchanged). */
int td_h3_capsule_append(struct td_buf *b, uint64_t type, const void *value, size_t len);

/*
 * td_h3_wt_close_decode parses a CLOSE_WEBTRANSPORT_SESSION value: a 32-bit big-endian
 * application error code, then a reason that should be UTF-8 (not checked here: validate or
 * escape it before showing it). Returns 0; TD_EPROTO if len < 4; TD_ELIMIT if the reason is
 * longer than TD_H3_WT_CLOSE_REASON_MAX.
 */
int td_h3_wt_close_decode(const uint8_t *value, size_t len, uint32_t *code, const uint8_t **reason,
                          size_t *reason_len);

/* td_h3_wt_close_append appends a whole CLOSE_WEBTRANSPORT_SESSION capsule. Returns 0, or
 * TD_ELIMIT if reason_len exceeds TD_H3_WT_CLOSE_REASON_MAX (b is unchanged). */
int td_h3_wt_close_append(struct td_buf *b, uint32_t code, const void *reason, size_t reason_len);

/* td_h3_wt_drain_decode checks a DRAIN_WEBTRANSPORT_SESSION value. Returns 0, or TD_EPROTO
 * if it is not empty. */
int td_h3_wt_drain_decode(const uint8_t *value, size_t len);

/* td_h3_wt_drain_append appends a whole DRAIN_WEBTRANSPORT_SESSION capsule. */
void td_h3_wt_drain_append(struct td_buf *b);

/* ---- HTTP datagrams (QUIC DATAGRAM frame payloads) ---- */

/* The largest quarter stream ID (RFC 9297 section 2.1). */
#define TD_H3_QUARTER_ID_MAX ((UINT64_C(1) << 60) - 1)

/*
 * td_h3_datagram_decode splits a whole QUIC DATAGRAM payload into the session (the quarter
 * stream ID times 4) and the application payload. Returns 0, or TD_EPROTO if the payload
 * ends inside the varint or the quarter stream ID exceeds TD_H3_QUARTER_ID_MAX
 * (H3_DATAGRAM_ERROR).
 */
int td_h3_datagram_decode(const uint8_t *p, size_t n, uint64_t *session_id, const uint8_t **payload,
                          size_t *payload_len);

/* td_h3_datagram_hdr_encode writes the quarter-stream-ID prefix for session_id into out (at
 * least TD_H3_VARINT_MAXLEN bytes). Returns its length, or 0 if session_id is not a
 * multiple of 4 or its quarter exceeds TD_H3_QUARTER_ID_MAX. */
size_t td_h3_datagram_hdr_encode(uint8_t *out, uint64_t session_id);

/* ---- Error codes ---- */

/* First and last HTTP/3 codes of the WebTransport application error range (draft-07+;
 * Chromium uses it with draft-02 too). */
#define TD_H3_WT_ERROR_FIRST UINT64_C(0x52e4a40fa8db)
#define TD_H3_WT_ERROR_LAST UINT64_C(0x52e5ac983162)
/* Codes a session end resets streams with: Chromium's H3_CONNECT_ERROR and the newer
 * drafts' WT_SESSION_GONE. */
#define TD_H3_ERR_CONNECT_ERROR UINT64_C(0x10f)
#define TD_H3_ERR_WT_SESSION_GONE UINT64_C(0x170d7b68)

/* td_h3_wt_error_to_h3 maps a WebTransport application error code (what JS sees as
 * streamErrorCode) to the HTTP/3 code for RESET_STREAM / STOP_SENDING. */
uint64_t td_h3_wt_error_to_h3(uint32_t app);

/* td_h3_wt_error_from_h3 maps an HTTP/3 code back. Returns 0 with *app set, or
 * TD_ENOTFOUND if h3 is outside the range or a GREASE codepoint inside it (treat as "no
 * application code", e.g. a session-gone reset). */
int td_h3_wt_error_from_h3(uint64_t h3, uint32_t *app);

#endif
