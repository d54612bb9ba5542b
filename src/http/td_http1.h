/*
 * td_http1.h - strict HTTP/1.x request head parser (protocol engine, no I/O).
 *
 * The parser is stateless: td_http1_parse_request() always parses from the first byte of the
 * buffer it is given. A connection appends what it reads and calls it again until it stops
 * returning TD_EAGAIN. The head is capped (struct td_http_limits.max_head, 8 KiB by default),
 * so re-scanning a partial head on every read costs at most a few microseconds, and keeping no
 * state between calls means there is no state to get wrong.
 *
 * Every string in struct td_http_request is a view into the caller's buffer: the buffer must
 * stay unchanged while the request is used. Views are not NUL-terminated.
 *
 * The parser is deliberately stricter than RFC 9112 requires of a server, because every byte
 * it accepts can reach a proxy or a log that disagrees about it (request smuggling):
 *   - request line: `method SP request-target SP HTTP-version CRLF`, single spaces only;
 *     method is a token; the target is origin-form (starts with '/') or exactly "*" for
 *     OPTIONS; absolute-form and authority-form are rejected; target bytes are visible ASCII
 *     (0x21-0x7E) except '#'; version is exactly "HTTP/1.0" or "HTTP/1.1".
 *   - every line ends with CRLF; a bare LF or a CR not followed by LF is malformed. No empty
 *     lines are accepted before the request line.
 *   - header lines are `name ":" OWS value OWS`; name is a token with no whitespace before the
 *     colon; a line starting with SP or HTAB (obs-fold) is malformed; value bytes are HTAB,
 *     SP, visible ASCII or obs-text (0x80-0xFF); other control bytes and DEL are malformed.
 *   - Content-Length is 1*DIGIT without overflow of uint64_t; several Content-Length fields
 *     must carry the same value; Transfer-Encoding in a request is not supported;
 *     HTTP/1.1 needs exactly one Host field (HTTP/1.0 at most one).
 * Control bytes in an unfinished line are rejected at once, so binary garbage (for example a
 * TLS ClientHello sent to a plain port) fails on the first read rather than at the size cap.
 */
#ifndef TD_HTTP1_H
#define TD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_str.h"

/* Capacity of struct td_http_request.headers; the hard ceiling for max_headers. */
#define TD_HTTP_MAX_HEADERS 64
/* Default struct td_http_limits.max_head. */
#define TD_HTTP_DEFAULT_MAX_HEAD 8192

/* One header field; name and value are views into the parsed buffer, value without OWS. */
struct td_http_header {
    struct td_str name;
    struct td_str value;
};

/*
 * Caps applied by td_http1_parse_request(). max_head bounds the head including the final
 * CRLFCRLF (values above INT_MAX are treated as INT_MAX); max_headers bounds the number of
 * header fields (values above TD_HTTP_MAX_HEADERS are treated as TD_HTTP_MAX_HEADERS).
 */
struct td_http_limits {
    size_t max_head;
    size_t max_headers;
};

/*
 * A parsed request head. All td_str fields are views into the parsed buffer. Repeated
 * headers are kept in order, each as its own entry.
 */
struct td_http_request {
    struct td_str method; /* e.g. "GET"; case-sensitive, not checked against a known list */
    struct td_str target; /* request-target as sent, e.g. "/connection/websocket?x=1" */
    struct td_str path;   /* target up to the first '?' ("*" for an asterisk-form target) */
    struct td_str query;  /* after the first '?', without it; empty (n == 0) if none */
    int minor_version;    /* 0 or 1 (HTTP/1.0 or HTTP/1.1) */
    struct td_http_header headers[TD_HTTP_MAX_HEADERS];
    size_t nheaders;
    size_t head_len;         /* bytes of the request head including the final CRLFCRLF */
    uint64_t content_length; /* 0 if absent */
    bool has_content_length;
    /* HTTP/1.1: true unless a Connection field has the token "close". HTTP/1.0: true only if
     * a Connection field has "keep-alive" and none has "close". */
    bool keep_alive;
    /* An Upgrade field has the token "websocket" and a Connection field has the token
     * "upgrade" (both case-insensitive). Method and version are the caller's to check. */
    bool upgrade_websocket;
};

/* td_http_limits_default fills lim with max_head 8192 and max_headers TD_HTTP_MAX_HEADERS. */
void td_http_limits_default(struct td_http_limits *lim);

/*
 * td_http1_parse_request parses the request head at the start of p[0..n). lim may be NULL
 * for the defaults. Bytes after the head (a body, a pipelined request) are not looked at;
 * the caller consumes head_len bytes (plus any body) and calls again for the next request.
 *
 * Returns head_len (> 0) and fills *req when a complete, valid head was parsed; TD_EAGAIN
 * if the bytes so far are a valid beginning but the head is incomplete; TD_EPROTO if the
 * input is malformed (answer 400); TD_ELIMIT if there are more than max_headers fields or
 * n >= max_head without a complete head in the first max_head bytes (answer 431);
 * TD_EINVAL if an otherwise valid head carries Transfer-Encoding (answer 501). *req is
 * written only on success. Errors are reported in input order, so feeding a request in
 * pieces gives the same final answer as feeding it whole.
 */
int td_http1_parse_request(const uint8_t *p, size_t n, const struct td_http_limits *lim,
                           struct td_http_request *req);

/* td_http_header_get returns the value of the first header named `name` (ASCII
 * case-insensitive), or NULL if there is none. The pointer is into req. */
const struct td_str *td_http_header_get(const struct td_http_request *req, const char *name);

/*
 * td_http_has_token returns true if the comma-separated list `value` has an element equal to
 * `token` (ASCII case-insensitive) once SP/HTAB around the element are trimmed. An empty
 * token never matches.
 */
bool td_http_has_token(struct td_str value, const char *token);

/*
 * td_http_query_get looks up parameter `name` in a query string such as "a=1&b=x%20y"
 * (without the leading '?'). Keys are compared after percent- and '+'-decoding; the first
 * match wins; a parameter without '=' has an empty value. The value is decoded ('+' is a
 * space, %XX a byte) into out[0..outcap) and NUL-terminated; out is written only on success.
 *
 * Returns the decoded length (excluding the NUL); TD_ENOTFOUND if no key matches;
 * TD_EPROTO if the value has a bad %-escape or a NUL byte (raw or %00, so out is always a
 * proper C string); TD_ELIMIT if the value plus the NUL does not fit in outcap.
 */
int td_http_query_get(struct td_str query, const char *name, char *out, size_t outcap);

/*
 * td_http_origin_allowed decides whether a browser Origin may open a session: it matches an
 * entry of allowed[0..n) exactly (ASCII case-insensitive) or an entry "*", or else its host
 * part equals host (the Host header or :authority: a same-origin page). An empty origin
 * (not a browser) is allowed.
 */
bool td_http_origin_allowed(const char *const *allowed, size_t n, struct td_str origin,
                            struct td_str host);

/* td_http_reason returns the standard reason phrase for status ("OK", "Bad Request", ...),
 * or "Unknown" for a code it does not know. The string is static. */
const char *td_http_reason(int status);

#endif
