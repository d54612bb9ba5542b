/*
 * td_emulation.h - the I/O-free parts of the bidirectional emulation transports
 * (HTTP-streaming and SSE, centrifuge-protocol.md sections 1.3-1.4).
 *
 * Design note. An emulation client opens one long-lived streaming response (POST
 * /connection/http_stream, or GET|POST /connection/sse) whose request carries the connect
 * command; every later command arrives in its own short POST /emulation request naming the
 * session. The connect reply tells the client its session id and the node id
 * (ConnectResult.session / .node). This module holds:
 *   - the session table: session id -> the transport's connection (an opaque pointer). Ids
 *     are 32 lowercase hex characters from the OS random source: they are credentials (a
 *     known id lets anyone inject commands into that session), so they are never the public
 *     client id and never come from the non-cryptographic td_rand generator;
 *   - the parsers of the /emulation body: JSON {"session","node","data"} where data is a
 *     JSON string holding the encoded command frame, or a protobuf EmulationRequest
 *     {node = 1, session = 2, data = 3};
 *   - the framing helpers for the stream: chunk headers (http_stream uses chunked transfer
 *     coding) and SSE events ("data: <line>\n" per line, then "\n").
 * The server (src/io/td_emu_conn.c) does the routing, the streaming response and the
 * td_transport_ops glue.
 */
#ifndef TD_EMULATION_H
#define TD_EMULATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "core/td_map.h"
#include "core/td_str.h"

/* Length of a session id (hex characters, without the NUL). */
#define TD_EMU_SESSION_LEN 32
/* Longest session or node string a parser accepts; longer ones are malformed. */
#define TD_EMU_ID_MAX 128
/* Longest chunk header td_emu_chunk_header writes ("ffffffff\r\n"). */
#define TD_EMU_CHUNK_HDR_MAX 10
/* The SSE event prefix put before every line of a message. */
#define TD_EMU_SSE_PREFIX "data: "
#define TD_EMU_SSE_PREFIX_LEN 6

/* One session: its id (the table's key points into it) and the connection it belongs to. */
struct td_emu_session {
    char id[TD_EMU_SESSION_LEN + 1];
    void *conn;
};

/*
 * The emulation state of a server: the session table plus small immutable buffers that
 * every stream shares as per-message trailers (a queue holds a reference to them, so no
 * trailer is allocated per message).
 */
struct td_emu {
    struct td_map sessions;     /* id -> struct td_emu_session (owned) */
    struct td_rbuf *crlf;       /* "\r\n": ends a chunk (protobuf http_stream) */
    struct td_rbuf *nl_crlf;    /* "\n\r\n": a JSON line's '\n', then the end of the chunk */
    struct td_rbuf *sse_end;    /* "\n\n": ends an SSE event of one line */
    struct td_rbuf *last_chunk; /* "0\r\n\r\n": ends a chunked response */
};

/* td_emu_init prepares an empty table and the shared trailers. */
void td_emu_init(struct td_emu *e);
/* td_emu_free frees every session entry (not the connections) and the trailers. */
void td_emu_free(struct td_emu *e);

/*
 * td_emu_session_add registers conn under a fresh random id and returns the session (owned
 * by the table; its id stays valid until td_emu_session_del). Never fails.
 */
const struct td_emu_session *td_emu_session_add(struct td_emu *e, void *conn);
/* td_emu_session_get returns the connection of session `id`, or NULL if there is none. */
void *td_emu_session_get(const struct td_emu *e, struct td_str id);
/* td_emu_session_del forgets session `id` (a no-op if unknown). Returns the connection it
 * had, or NULL. */
void *td_emu_session_del(struct td_emu *e, struct td_str id);

/*
 * A parsed /emulation body. session and node are views; data is the command frame to hand
 * to td_client_on_frame. All point into the body buffer given to the parser.
 */
struct td_emu_request {
    struct td_str session;
    struct td_str node; /* empty if the client sent none */
    uint8_t *data;
    size_t len;
};

/*
 * td_emu_parse_json parses a JSON /emulation body {"session":S,"node":N,"data":D} in place
 * (strings are unescaped inside body, which is clobbered). session and data are required
 * strings, node an optional string; other members are ignored; the last of duplicate keys
 * wins. Returns 0 and fills *req, or TD_EPROTO for malformed JSON, a missing or mistyped
 * field, an empty session or data, or a session/node longer than TD_EMU_ID_MAX.
 */
int td_emu_parse_json(char *body, size_t n, struct td_emu_request *req);

/*
 * td_emu_parse_pb parses a protobuf EmulationRequest (node = 1, session = 2, data = 3, all
 * length-delimited; unknown fields skipped; the last occurrence of a field wins). Views
 * point into body. Returns 0 and fills *req, or TD_EPROTO under the same rules as
 * td_emu_parse_json.
 */
int td_emu_parse_pb(uint8_t *body, size_t n, struct td_emu_request *req);

/* td_emu_chunk_header writes the chunked-coding header for an n-byte chunk ("<hex>\r\n") to
 * out (room for TD_EMU_CHUNK_HDR_MAX bytes); returns its length. */
size_t td_emu_chunk_header(uint8_t *out, uint32_t n);

/*
 * td_emu_sse_append appends p[0..n) to out as one SSE event: every '\n'-separated line gets
 * its own "data: " prefix and a '\n', then an empty line ends the event; a '\r' (never in
 * the protocol's JSON, which has no raw control characters) is dropped so it cannot end a
 * line early; one final '\n' of p is dropped. The EventSource joins the lines with '\n',
 * restoring the original text.
 */
void td_emu_sse_append(struct td_buf *out, const uint8_t *p, size_t n);

/* td_emu_sse_single_line returns true if p[0..n) has no '\n' or '\r', so that the event is
 * exactly TD_EMU_SSE_PREFIX + p + "\n\n" (the cheap path: a header and a shared trailer). */
bool td_emu_sse_single_line(const uint8_t *p, size_t n);

#endif
