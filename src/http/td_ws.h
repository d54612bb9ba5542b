/*
 * td_ws.h - RFC 6455 WebSocket codec, server side. A protocol engine: no I/O.
 *
 * Encoding: helpers that append unmasked server frames to a td_buf (or write a bare header so
 * a caller can send a large payload by reference with writev).
 *
 * Decoding: struct td_ws_decoder is fed client->server bytes and yields one event at a time
 * (a complete message, a ping, a pong or a close). It enforces the RFC's rules for a server
 * that negotiated no extension; any breach is an error that carries the close code the
 * server should send. It never buffers more than max_message bytes itself, and it only
 * ever asks the caller to keep one partial frame, whose size was already checked from its
 * header: a caller whose input buffer holds TD_WS_MAX_HEADER plus the larger of max_message
 * and TD_WS_MAX_CONTROL_PAYLOAD bytes can always make progress.
 *
 * Only the handshake's accept key uses OpenSSL (SHA-1); the rest is plain C.
 */
#ifndef TD_WS_H
#define TD_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "core/td_utf8.h"
#include "core/td_str.h"

enum {
    TD_WS_OP_CONT = 0,
    TD_WS_OP_TEXT = 1,
    TD_WS_OP_BINARY = 2,
    TD_WS_OP_CLOSE = 8,
    TD_WS_OP_PING = 9,
    TD_WS_OP_PONG = 10,
};

/* Close status codes (RFC 6455 section 7.4.1). */
enum {
    TD_WS_CLOSE_NORMAL = 1000,
    TD_WS_CLOSE_GOING_AWAY = 1001,
    TD_WS_CLOSE_PROTOCOL = 1002,
    TD_WS_CLOSE_UNSUPPORTED = 1003,
    TD_WS_CLOSE_NO_STATUS = 1005, /* received close had no payload; never sent */
    TD_WS_CLOSE_INVALID_DATA = 1007,
    TD_WS_CLOSE_POLICY = 1008,
    TD_WS_CLOSE_TOO_BIG = 1009,
    TD_WS_CLOSE_INTERNAL = 1011,
};

enum {
    TD_WS_MAX_HEADER = 14,           /* largest client frame header: 2 + 8 length + 4 mask */
    TD_WS_MAX_CONTROL_PAYLOAD = 125, /* control frames carry at most this many bytes */
    TD_WS_MAX_CLOSE_REASON = 123,    /* a close payload is a 2-byte code plus the reason */
    TD_WS_DEFAULT_MAX_MESSAGE = 65536,
};

/* ---- Handshake and encoding ---- */

/*
 * td_ws_accept_key computes the Sec-WebSocket-Accept value for the client's
 * Sec-WebSocket-Key key[0..key_len): base64(SHA-1(key + the RFC's GUID)). Writes 28
 * characters and a NUL to out. The key is used as given (the caller trims whitespace).
 */
void td_ws_accept_key(const char *key, size_t key_len, char out[29]);

/*
 * td_ws_frame_header writes the header of an unmasked frame (as a server sends) carrying
 * len payload bytes, with the FIN bit if fin and the low 4 bits of opcode. Returns the
 * header length: 2, 4 or 10.
 */
size_t td_ws_frame_header(uint8_t out[10], bool fin, uint8_t opcode, uint64_t len);

/*
 * td_ws_append_frame appends a complete unmasked frame (FIN set) with the given opcode and
 * payload[0..len) to out. A control opcode requires len <= 125; that is the caller's job.
 */
void td_ws_append_frame(struct td_buf *out, uint8_t opcode, const void *payload, size_t len);

/*
 * td_ws_append_close appends a complete close frame to out. code 0 gives an empty payload
 * (reason ignored); otherwise the payload is the code followed by reason (NUL-terminated,
 * may be NULL for none), which must be UTF-8 and is cut to at most 123 bytes without
 * splitting a character.
 */
void td_ws_append_close(struct td_buf *out, uint16_t code, const char *reason);

/* ---- Decoding ---- */

/*
 * Decoder state, caller-owned; the fields are private to td_ws.c.
 *
 * Between calls the decoder is at a frame boundary of the caller's input. It remembers:
 * whether a fragmented data message is in progress (msg_opcode TEXT or BINARY, 0 if not) and
 * its fragments so far in msg (capped at max_message); the UTF-8 state of a text message at
 * the end of its last complete fragment (utf8); and, for a text frame whose payload is only
 * partly received, how far its payload was already validated (scan, scan_done), so invalid
 * UTF-8 is reported before the rest of the frame arrives.
 */
struct td_ws_decoder {
    size_t max_message;        /* cap on a message's payload (sum of its fragments) */
    struct td_buf msg;         /* reassembly of a fragmented message; empty otherwise */
    uint8_t msg_opcode;        /* TD_WS_OP_TEXT/BINARY while fragmented message open, else 0 */
    bool msg_delivered;        /* msg holds a message already delivered: drop it next call */
    bool closed;               /* a close frame was delivered; later input is ignored */
    bool scan_valid;           /* scan/scan_done describe the frame at the next input start */
    struct td_utf8_state utf8; /* text state after the last complete fragment */
    struct td_utf8_state scan; /* text state after scan_done bytes of the partial frame */
    uint64_t scan_done;
    int err;             /* sticky: once set, every call returns it */
    uint16_t close_code; /* close code to send after err */
};

enum td_ws_event_type {
    TD_WS_EV_MESSAGE,
    TD_WS_EV_PING,
    TD_WS_EV_PONG,
    TD_WS_EV_CLOSE,
};

struct td_ws_event {
    enum td_ws_event_type type;
    bool binary;      /* MESSAGE: binary (true) or text (false, and valid UTF-8) */
    uint8_t *payload; /* unmasked payload, never NULL: into the caller's input (single-frame
                         message, control frame) or the decoder's reassembly buffer
                         (fragmented message); valid until the next feed or free */
    size_t len;
    uint16_t close_code;        /* CLOSE: the peer's code, 1005 if it sent none; else 0 */
    struct td_str close_reason; /* CLOSE: the peer's reason (valid UTF-8), may be empty */
};

/* td_ws_decoder_init prepares d; max_message 0 selects TD_WS_DEFAULT_MAX_MESSAGE. */
void td_ws_decoder_init(struct td_ws_decoder *d, size_t max_message);

/* td_ws_decoder_free releases d's memory; d may be initialised again afterwards. */
void td_ws_decoder_free(struct td_ws_decoder *d);

/*
 * td_ws_decoder_feed decodes client frames from p[0..n); p must be writable because
 * payloads are unmasked in place.
 *
 * The decoder consumes only whole frames. It processes frames until one completes an event,
 * then returns 1, fills *ev and sets *consumed to the end of that frame. If the input ends
 * first (including in the middle of a frame), it returns 0 and sets *consumed to the start
 * of the incomplete frame (n if none). Either way the caller must keep p[*consumed..n)
 * exactly as it is and pass those bytes again, followed by any new ones, at the start of the
 * next call. Once a close frame has been delivered, later input is ignored (returns 0 with
 * *consumed = n).
 *
 * Returns a negative error when the peer broke the protocol: TD_EPROTO (close code 1002),
 * TD_ELIMIT (message above max_message, 1009, detected from a frame header before its
 * payload is received) or TD_EUTF8 (invalid text, 1007). Errors are sticky and leave *ev and
 * *consumed unwritten; td_ws_decoder_close_code then gives the close code to send.
 */
int td_ws_decoder_feed(struct td_ws_decoder *d, uint8_t *p, size_t n, size_t *consumed,
                       struct td_ws_event *ev);

/* td_ws_decoder_close_code returns the close code for the last error (1002, 1007 or 1009),
 * or 0 if there was none. */
uint16_t td_ws_decoder_close_code(const struct td_ws_decoder *d);

#endif
