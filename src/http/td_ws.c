#include "http/td_ws.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_log.h"

/*
 * Design of the decoder.
 *
 * The decoder never copies a frame that is still arriving: it parses the header of the
 * frame at the start of the input, and if the payload is not all there it returns 0 and the
 * caller keeps the bytes (they are usually the tail of a per-loop read buffer). So a call
 * always starts at a frame boundary and the only state carried between calls is message
 * state:
 *
 *   idle         msg_opcode == 0, msg empty. TEXT/BINARY/control frames allowed; CONT is a
 *                protocol error. A FIN data frame is delivered in place (no copy); a
 *                non-FIN one opens a fragmented message and is copied into msg.
 *   fragmented   msg_opcode == TEXT or BINARY, msg holds the fragments so far (<= max).
 *                CONT and control frames allowed; TEXT/BINARY are a protocol error. The
 *                FIN CONT delivers msg and returns to idle (msg_delivered is set so the
 *                buffer lives until the next call, when it is freed).
 *   closed       a close frame was delivered; input is ignored.
 *   failed       err != 0; every call returns err.
 *
 * Every check that needs only the header runs as soon as the bytes it needs are present, so
 * a bad opcode or an oversized length fails after one or a few bytes, and no payload beyond
 * max_message is ever waited for. Text payloads are validated incrementally (utf8 across
 * fragments, scan within a frame still arriving) so invalid UTF-8 fails at the first bad byte
 * received rather than at the end of the message.
 */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void td_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* Failure here means libcrypto itself is broken (or out of memory): not recoverable. */
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, key, key_len) != 1 ||
        EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 20) {
        td_log_error("ws accept key: SHA-1 failed", "lib=%s", "libcrypto");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    td_base64_encode(md, 20, out);
}

size_t td_ws_frame_header(uint8_t out[10], bool fin, uint8_t opcode, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80u : 0u) | (opcode & 0x0Fu));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void td_ws_append_frame(struct td_buf *out, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t h[10];
    size_t hl = td_ws_frame_header(h, true, opcode, len);
    td_buf_reserve(out, hl + len);
    td_buf_append(out, h, hl);
    td_buf_append(out, payload, len);
}

void td_ws_append_close(struct td_buf *out, uint16_t code, const char *reason)
{
    uint8_t p[2 + TD_WS_MAX_CLOSE_REASON];
    size_t n = 0;
    if (code != 0) {
        size_t rl = reason != NULL ? strnlen(reason, TD_WS_MAX_CLOSE_REASON + 1) : 0;
        if (rl > TD_WS_MAX_CLOSE_REASON) {
            /* Cut before the character that straddles the limit: back off over
             * continuation bytes so the cut lands on a lead byte or ASCII. */
            rl = TD_WS_MAX_CLOSE_REASON;
            while (rl > 0 && ((uint8_t)reason[rl] & 0xC0) == 0x80)
                rl--;
        }
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        if (rl > 0)
            memcpy(p + 2, reason, rl);
        n = 2 + rl;
    }
    td_ws_append_frame(out, TD_WS_OP_CLOSE, p, n);
}

/* ---- Decoder ---- */

void td_ws_decoder_init(struct td_ws_decoder *d, size_t max_message)
{
    memset(d, 0, sizeof(*d));
    d->max_message = max_message ? max_message : TD_WS_DEFAULT_MAX_MESSAGE;
    td_buf_init(&d->msg);
    td_utf8_init(&d->utf8);
    td_utf8_init(&d->scan);
}

void td_ws_decoder_free(struct td_ws_decoder *d)
{
    td_buf_free(&d->msg);
}

uint16_t td_ws_decoder_close_code(const struct td_ws_decoder *d)
{
    return d->close_code;
}

static int ws_fail(struct td_ws_decoder *d, int err)
{
    d->err = err;
    d->close_code = err == TD_ELIMIT  ? TD_WS_CLOSE_TOO_BIG
                    : err == TD_EUTF8 ? TD_WS_CLOSE_INVALID_DATA
                                      : TD_WS_CLOSE_PROTOCOL;
    return err;
}

struct ws_frame {
    bool fin;
    uint8_t opcode;
    size_t hlen; /* header length including the mask key */
    uint64_t len;
    const uint8_t *mask;
};

static bool ws_is_control(uint8_t op)
{
    return op >= 8;
}

/*
 * Parses (and checks) the header at p[0..n). Returns 1 with *f filled once the whole header
 * is present, 0 if more bytes are needed, or a negative error as soon as the bytes present
 * prove the frame is unacceptable.
 */
static int ws_parse_header(const struct td_ws_decoder *d, const uint8_t *p, size_t n,
                           struct ws_frame *f)
{
    if (n < 1)
        return 0;
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0F;
    if (p[0] & 0x70)
        return TD_EPROTO; /* RSV1-3: no extension was negotiated */
    switch (f->opcode) {
    case TD_WS_OP_CONT:
        if (d->msg_opcode == 0)
            return TD_EPROTO;
        break;
    case TD_WS_OP_TEXT:
    case TD_WS_OP_BINARY:
        if (d->msg_opcode != 0)
            return TD_EPROTO;
        break;
    case TD_WS_OP_CLOSE:
    case TD_WS_OP_PING:
    case TD_WS_OP_PONG:
        if (!f->fin)
            return TD_EPROTO;
        break;
    default:
        return TD_EPROTO;
    }
    if (n < 2)
        return 0;
    if (!(p[1] & 0x80))
        return TD_EPROTO; /* client frames must be masked */
    uint8_t len7 = p[1] & 0x7F;
    if (ws_is_control(f->opcode) && len7 > TD_WS_MAX_CONTROL_PAYLOAD)
        return TD_EPROTO;
    size_t pos = 2;
    if (len7 == 126) {
        if (n < 4)
            return 0;
        f->len = (uint64_t)p[2] << 8 | p[3];
        pos = 4;
    } else if (len7 == 127) {
        if (n >= 3 && (p[2] & 0x80))
            return TD_EPROTO; /* the most significant bit must be 0 */
        if (n < 10)
            return 0;
        f->len = 0;
        for (int i = 0; i < 8; i++)
            f->len = f->len << 8 | p[2 + i];
        pos = 10;
    } else {
        f->len = len7;
    }
    /* Non-minimal length encodings are tolerated: they cost nothing to accept. */
    if (!ws_is_control(f->opcode)) {
        size_t have = f->opcode == TD_WS_OP_CONT ? d->msg.len : 0;
        if (f->len > d->max_message - have)
            return TD_ELIMIT;
    }
    if (n < pos + 4)
        return 0;
    f->mask = p + pos;
    f->hlen = pos + 4;
    return 1;
}

/* XORs p[0..n) with the mask key, the key's phase starting at payload offset `start`. */
static void ws_unmask(uint8_t *p, size_t n, const uint8_t *mask, size_t start)
{
    uint8_t m[8];
    for (size_t i = 0; i < 8; i++)
        m[i] = mask[(start + i) & 3];
    uint64_t w8;
    memcpy(&w8, m, 8);
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= w8;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= m[i & 7];
}

/*
 * Validates the received part p[from..avail) of a masked text payload without modifying it
 * (the caller keeps the frame's bytes as they are until it is complete).
 */
static bool ws_scan_masked(struct td_utf8_state *s, const uint8_t *p, size_t from, size_t avail,
                           const uint8_t *mask)
{
    uint8_t tmp[256];
    while (from < avail) {
        size_t k = avail - from < sizeof(tmp) ? avail - from : sizeof(tmp);
        memcpy(tmp, p + from, k);
        ws_unmask(tmp, k, mask, from);
        if (!td_utf8_feed(s, tmp, k))
            return false;
        from += k;
    }
    return true;
}

static bool ws_close_code_valid(uint16_t c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/*
 * Handles one complete, unmasked frame. Returns 1 with *ev filled if it completes an event,
 * 0 if it was a non-final fragment, or a negative error.
 */
static int ws_frame_done(struct td_ws_decoder *d, const struct ws_frame *f, uint8_t *pl,
                         struct td_ws_event *ev)
{
    size_t len = (size_t)f->len;
    memset(ev, 0, sizeof(*ev));
    ev->payload = pl;
    ev->len = len;
    switch (f->opcode) {
    case TD_WS_OP_PING:
        ev->type = TD_WS_EV_PING;
        return 1;
    case TD_WS_OP_PONG:
        ev->type = TD_WS_EV_PONG;
        return 1;
    case TD_WS_OP_CLOSE:
        ev->type = TD_WS_EV_CLOSE;
        if (len == 0) {
            ev->close_code = TD_WS_CLOSE_NO_STATUS;
            ev->close_reason = (struct td_str){(const char *)pl, 0};
        } else {
            if (len == 1)
                return TD_EPROTO;
            ev->close_code = (uint16_t)(pl[0] << 8 | pl[1]);
            if (!ws_close_code_valid(ev->close_code))
                return TD_EPROTO;
            if (!td_utf8_valid(pl + 2, len - 2))
                return TD_EUTF8;
            ev->close_reason = (struct td_str){(const char *)pl + 2, len - 2};
        }
        d->closed = true;
        return 1;
    default:
        break;
    }

    /* Data frame. d->scan holds the text state through scan_done bytes of this payload. */
    uint8_t kind = f->opcode == TD_WS_OP_CONT ? d->msg_opcode : f->opcode;
    if (kind == TD_WS_OP_TEXT) {
        size_t from = (size_t)d->scan_done;
        if (!td_utf8_feed(&d->scan, pl + from, len - from))
            return TD_EUTF8;
        if (f->fin && !td_utf8_complete(&d->scan))
            return TD_EUTF8;
        d->utf8 = d->scan;
    }
    if (f->opcode != TD_WS_OP_CONT) {
        if (f->fin) {
            ev->type = TD_WS_EV_MESSAGE;
            ev->binary = kind == TD_WS_OP_BINARY;
            td_utf8_init(&d->utf8);
            return 1;
        }
        d->msg_opcode = kind;
        /* Reserve at least one byte so a message of empty fragments has a non-NULL data. */
        td_buf_reserve(&d->msg, len ? len : 1);
    }
    td_buf_append(&d->msg, pl, len);
    if (!f->fin)
        return 0;
    ev->type = TD_WS_EV_MESSAGE;
    ev->binary = kind == TD_WS_OP_BINARY;
    ev->payload = d->msg.data;
    ev->len = d->msg.len;
    d->msg_opcode = 0;
    d->msg_delivered = true;
    td_utf8_init(&d->utf8);
    return 1;
}

int td_ws_decoder_feed(struct td_ws_decoder *d, uint8_t *p, size_t n, size_t *consumed,
                       struct td_ws_event *ev)
{
    if (d->err != 0)
        return d->err;
    if (d->msg_delivered) {
        /* The previous call's event pointed into msg; release it so an idle connection
         * holds no input memory. */
        td_buf_free(&d->msg);
        d->msg_delivered = false;
    }
    if (d->closed) {
        *consumed = n;
        return 0;
    }
    size_t off = 0;
    while (off < n) {
        struct ws_frame f;
        int rc = ws_parse_header(d, p + off, n - off, &f);
        if (rc < 0)
            return ws_fail(d, rc);
        if (rc == 0)
            break;
        /* Resume the previous call's partial-frame scan only if it was about this frame. */
        if (off != 0 || !d->scan_valid || d->scan_done > f.len) {
            d->scan = d->utf8;
            d->scan_done = 0;
        }
        size_t avail = n - off - f.hlen;
        uint8_t *pl = p + off + f.hlen;
        if ((uint64_t)avail < f.len) {
            bool text = !ws_is_control(f.opcode) &&
                        (f.opcode == TD_WS_OP_TEXT ||
                         (f.opcode == TD_WS_OP_CONT && d->msg_opcode == TD_WS_OP_TEXT));
            d->scan_valid = text;
            if (text && avail > d->scan_done) {
                if (!ws_scan_masked(&d->scan, pl, (size_t)d->scan_done, avail, f.mask))
                    return ws_fail(d, TD_EUTF8);
                d->scan_done = avail;
            }
            break;
        }
        size_t len = (size_t)f.len; /* <= max_message or 125, checked by ws_parse_header */
        ws_unmask(pl, len, f.mask, 0);
        off += f.hlen + len;
        d->scan_valid = false;
        struct td_ws_event e;
        rc = ws_frame_done(d, &f, pl, &e);
        d->scan_done = 0;
        if (rc < 0)
            return ws_fail(d, rc);
        if (rc == 1) {
            *ev = e;
            *consumed = off;
            return 1;
        }
    }
    *consumed = off;
    return 0;
}
