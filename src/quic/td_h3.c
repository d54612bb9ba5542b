/*
 * td_h3.c - HTTP/3 and WebTransport wire codecs (see td_h3.h).
 *
 * Everything here is a pure function of its input. Decoders check lengths before every
 * read; a peer controls every byte they see.
 */
#include "quic/td_h3.h"

#include <string.h>

#include "core/td_err.h"

/* ---- varints ---- */

size_t td_h3_varint_len(uint64_t v)
{
    if (v < 64)
        return 1;
    if (v < 16384)
        return 2;
    if (v < (UINT64_C(1) << 30))
        return 4;
    if (v <= TD_H3_VARINT_MAX)
        return 8;
    return 0;
}

int td_h3_varint_decode(const uint8_t *p, size_t n, uint64_t *v, size_t *used)
{
    if (n == 0)
        return TD_EAGAIN;
    size_t len = (size_t)1 << (p[0] >> 6);
    if (n < len)
        return TD_EAGAIN;
    uint64_t x = p[0] & 0x3f;
    for (size_t i = 1; i < len; i++)
        x = (x << 8) | p[i];
    *v = x;
    *used = len;
    return 0;
}

size_t td_h3_varint_encode(uint8_t *out, uint64_t v)
{
    size_t len = td_h3_varint_len(v);
    static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
    for (size_t i = len; i > 0; i--) {
        out[i - 1] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    if (len > 0)
        out[0] |= prefix[len];
    return len;
}

int td_h3_varint_append(struct td_buf *b, uint64_t v)
{
    uint8_t tmp[TD_H3_VARINT_MAXLEN];
    size_t n = td_h3_varint_encode(tmp, v);
    if (n == 0)
        return TD_EINVAL;
    td_buf_append(b, tmp, n);
    return 0;
}

bool td_h3_is_grease(uint64_t v)
{
    return v >= 0x21 && v <= TD_H3_VARINT_MAX && (v - 0x21) % 0x1f == 0;
}

/* ---- frames ---- */

int td_h3_frame_hdr_decode(const uint8_t *p, size_t n, struct td_h3_frame_hdr *hdr)
{
    uint64_t type, len;
    size_t a, b;
    int rv = td_h3_varint_decode(p, n, &type, &a);
    if (rv != 0)
        return rv;
    rv = td_h3_varint_decode(p + a, n - a, &len, &b);
    if (rv != 0)
        return rv;
    switch (type) {
    case 0x02: /* HTTP/2 PRIORITY, PING, WINDOW_UPDATE, CONTINUATION (RFC 9114 7.2.8) */
    case 0x06:
    case 0x08:
    case 0x09:
    case TD_H3_FRAME_WT_STREAM:
        return TD_EPROTO;
    case TD_H3_FRAME_SETTINGS:
        if (len > TD_H3_SETTINGS_MAX_LEN)
            return TD_ELIMIT;
        break;
    case TD_H3_FRAME_HEADERS:
    case TD_H3_FRAME_PUSH_PROMISE:
        if (len > TD_H3_HEADERS_MAX_LEN)
            return TD_ELIMIT;
        break;
    case TD_H3_FRAME_GOAWAY:
    case TD_H3_FRAME_CANCEL_PUSH:
    case TD_H3_FRAME_MAX_PUSH_ID:
        if (len == 0 || len > TD_H3_VARINT_FRAME_MAX_LEN)
            return TD_EPROTO;
        break;
    default:
        break;
    }
    hdr->type = type;
    hdr->len = len;
    hdr->hdr_len = a + b;
    return 0;
}

size_t td_h3_frame_hdr_encode(uint8_t *out, uint64_t type, uint64_t len)
{
    if (type > TD_H3_VARINT_MAX || len > TD_H3_VARINT_MAX)
        return 0;
    size_t a = td_h3_varint_encode(out, type);
    return a + td_h3_varint_encode(out + a, len);
}

int td_h3_frame_append(struct td_buf *b, uint64_t type, const void *payload, size_t len)
{
    uint8_t hdr[TD_H3_FRAME_HDR_MAXLEN];
    size_t n = td_h3_frame_hdr_encode(hdr, type, (uint64_t)len);
    if (n == 0)
        return TD_EINVAL;
    td_buf_reserve(b, n + len);
    td_buf_append(b, hdr, n);
    if (len > 0)
        td_buf_append(b, payload, len);
    return 0;
}

int td_h3_goaway_decode(const uint8_t *payload, size_t len, uint64_t *id)
{
    uint64_t v;
    size_t used;
    if (td_h3_varint_decode(payload, len, &v, &used) != 0 || used != len)
        return TD_EPROTO;
    *id = v;
    return 0;
}

int td_h3_goaway_append(struct td_buf *b, uint64_t id)
{
    uint8_t v[TD_H3_VARINT_MAXLEN];
    size_t n = td_h3_varint_encode(v, id);
    if (n == 0)
        return TD_EINVAL;
    return td_h3_frame_append(b, TD_H3_FRAME_GOAWAY, v, n);
}

/* ---- stream prefixes ---- */

static int h3_session_id_decode(const uint8_t *p, size_t n, uint64_t *sid, size_t *used)
{
    int rv = td_h3_varint_decode(p, n, sid, used);
    if (rv != 0)
        return rv;
    /* A session is named by the client-initiated bidirectional stream that carried its
     * CONNECT; any other ID is H3_ID_ERROR. */
    if ((*sid & 3) != 0)
        return TD_EPROTO;
    return 0;
}

int td_h3_stream_prefix_decode(const uint8_t *p, size_t n, bool bidi,
                               struct td_h3_stream_prefix *out)
{
    uint64_t type, sid = 0;
    size_t a, b = 0;
    int rv = td_h3_varint_decode(p, n, &type, &a);
    if (rv != 0)
        return rv;
    struct td_h3_stream_prefix r = {.type = type};
    if (bidi) {
        if (type != TD_H3_FRAME_WT_STREAM) {
            r.kind = TD_H3_STREAM_REQUEST;
            r.type = 0;
            r.len = 0;
            *out = r;
            return 0;
        }
        rv = h3_session_id_decode(p + a, n - a, &sid, &b);
        if (rv != 0)
            return rv;
        r.kind = TD_H3_STREAM_WT_BIDI;
    } else {
        switch (type) {
        case TD_H3_UNI_CONTROL:
            r.kind = TD_H3_STREAM_CONTROL;
            break;
        case TD_H3_UNI_PUSH:
            r.kind = TD_H3_STREAM_PUSH;
            break;
        case TD_H3_UNI_QPACK_ENCODER:
            r.kind = TD_H3_STREAM_QPACK_ENCODER;
            break;
        case TD_H3_UNI_QPACK_DECODER:
            r.kind = TD_H3_STREAM_QPACK_DECODER;
            break;
        case TD_H3_UNI_WT:
            rv = h3_session_id_decode(p + a, n - a, &sid, &b);
            if (rv != 0)
                return rv;
            r.kind = TD_H3_STREAM_WT_UNI;
            break;
        default:
            r.kind = TD_H3_STREAM_UNKNOWN;
            break;
        }
    }
    r.session_id = sid;
    r.len = a + b;
    *out = r;
    return 0;
}

size_t td_h3_wt_stream_prefix_encode(uint8_t *out, bool bidi, uint64_t session_id)
{
    if ((session_id & 3) != 0 || session_id > TD_H3_VARINT_MAX)
        return 0;
    size_t a = td_h3_varint_encode(out, bidi ? TD_H3_FRAME_WT_STREAM : TD_H3_UNI_WT);
    return a + td_h3_varint_encode(out + a, session_id);
}

/* ---- SETTINGS ---- */

struct setting_desc {
    uint64_t id;
    uint32_t bit;
    uint8_t boolean; /* value must be 0 or 1 */
    uint8_t nonzero; /* value must be > 0 */
    size_t off;      /* of the value in struct td_h3_settings */
};

/* In ascending identifier order: the encoder emits in this order. */
static const struct setting_desc settings_table[] = {
    {TD_H3_SETTING_QPACK_MAX_TABLE_CAPACITY, TD_H3_SET_QPACK_MAX_TABLE_CAPACITY, 0, 0,
     offsetof(struct td_h3_settings, qpack_max_table_capacity)},
    {TD_H3_SETTING_MAX_FIELD_SECTION_SIZE, TD_H3_SET_MAX_FIELD_SECTION_SIZE, 0, 0,
     offsetof(struct td_h3_settings, max_field_section_size)},
    {TD_H3_SETTING_QPACK_BLOCKED_STREAMS, TD_H3_SET_QPACK_BLOCKED_STREAMS, 0, 0,
     offsetof(struct td_h3_settings, qpack_blocked_streams)},
    {TD_H3_SETTING_ENABLE_CONNECT_PROTOCOL, TD_H3_SET_ENABLE_CONNECT_PROTOCOL, 1, 0,
     offsetof(struct td_h3_settings, enable_connect_protocol)},
    {TD_H3_SETTING_H3_DATAGRAM, TD_H3_SET_H3_DATAGRAM, 1, 0,
     offsetof(struct td_h3_settings, h3_datagram)},
    {TD_H3_SETTING_H3_DATAGRAM_DRAFT04, TD_H3_SET_H3_DATAGRAM_DRAFT04, 1, 0,
     offsetof(struct td_h3_settings, h3_datagram_draft04)},
    {TD_H3_SETTING_WT_MAX_SESSIONS_D13, TD_H3_SET_WT_MAX_SESSIONS_D13, 0, 0,
     offsetof(struct td_h3_settings, wt_max_sessions_d13)},
    {TD_H3_SETTING_ENABLE_WEBTRANSPORT, TD_H3_SET_ENABLE_WEBTRANSPORT, 1, 0,
     offsetof(struct td_h3_settings, enable_webtransport)},
    {TD_H3_SETTING_WT_ENABLED_D15, TD_H3_SET_WT_ENABLED_D15, 1, 0,
     offsetof(struct td_h3_settings, wt_enabled_d15)},
    {TD_H3_SETTING_WT_MAX_SESSIONS_D07, TD_H3_SET_WT_MAX_SESSIONS_D07, 0, 1,
     offsetof(struct td_h3_settings, wt_max_sessions_d07)},
};
#define SETTINGS_COUNT (sizeof(settings_table) / sizeof(settings_table[0]))

static uint64_t *setting_field(struct td_h3_settings *s, const struct setting_desc *d)
{
    return (uint64_t *)(void *)((char *)s + d->off);
}

static uint64_t setting_value(const struct td_h3_settings *s, const struct setting_desc *d)
{
    uint64_t v;
    memcpy(&v, (const char *)s + d->off, sizeof(v));
    return v;
}

int td_h3_settings_decode(const uint8_t *payload, size_t len, struct td_h3_settings *out)
{
    if (len > TD_H3_SETTINGS_MAX_LEN)
        return TD_ELIMIT;
    struct td_h3_settings s;
    memset(&s, 0, sizeof(s));
    size_t off = 0;
    while (off < len) {
        uint64_t id, value;
        size_t a, b;
        if (td_h3_varint_decode(payload + off, len - off, &id, &a) != 0 ||
            td_h3_varint_decode(payload + off + a, len - off - a, &value, &b) != 0)
            return TD_EPROTO;
        off += a + b;
        if (id >= 0x02 && id <= 0x05)
            return TD_EPROTO;
        const struct setting_desc *d = NULL;
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
            if (settings_table[i].id == id) {
                d = &settings_table[i];
                break;
            }
        }
        if (d == NULL) {
            /* Unknown or GREASE (Chromium sends one random GREASE setting): ignore. The
             * payload cap bounds how many there can be. */
            s.unknown++;
            continue;
        }
        if ((s.present & d->bit) != 0)
            return TD_EPROTO;
        if ((d->boolean && value > 1) || (d->nonzero && value == 0))
            return TD_EPROTO;
        s.present |= d->bit;
        *setting_field(&s, d) = value;
    }
    *out = s;
    return 0;
}

int td_h3_settings_append(struct td_buf *b, const struct td_h3_settings *s)
{
    uint8_t tmp[SETTINGS_COUNT * 2 * TD_H3_VARINT_MAXLEN];
    size_t n = 0;
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const struct setting_desc *d = &settings_table[i];
        if ((s->present & d->bit) == 0)
            continue;
        uint64_t v = setting_value(s, d);
        if (v > TD_H3_VARINT_MAX || (d->boolean && v > 1))
            return TD_EINVAL;
        n += td_h3_varint_encode(tmp + n, d->id);
        n += td_h3_varint_encode(tmp + n, v);
    }
    td_buf_append(b, tmp, n);
    return 0;
}

void td_h3_settings_server_default(struct td_h3_settings *s, uint64_t max_sessions)
{
    memset(s, 0, sizeof(*s));
    if (max_sessions == 0)
        max_sessions = 1;
    if (max_sessions > TD_H3_VARINT_MAX)
        max_sessions = TD_H3_VARINT_MAX;
    s->present = TD_H3_SET_QPACK_MAX_TABLE_CAPACITY | TD_H3_SET_QPACK_BLOCKED_STREAMS |
                 TD_H3_SET_ENABLE_CONNECT_PROTOCOL | TD_H3_SET_H3_DATAGRAM |
                 TD_H3_SET_ENABLE_WEBTRANSPORT | TD_H3_SET_WT_MAX_SESSIONS_D07;
    s->enable_connect_protocol = 1;
    s->h3_datagram = 1;
    s->enable_webtransport = 1;
    s->wt_max_sessions_d07 = max_sessions;
}

int td_h3_control_stream_open_append(struct td_buf *b, const struct td_h3_settings *s)
{
    struct td_buf payload;
    td_buf_init(&payload);
    int rv = td_h3_settings_append(&payload, s);
    if (rv == 0) {
        td_buf_append_byte(b, TD_H3_UNI_CONTROL);
        rv = td_h3_frame_append(b, TD_H3_FRAME_SETTINGS, payload.data, payload.len);
    }
    td_buf_free(&payload);
    return rv;
}

enum td_h3_wt_version td_h3_settings_wt_version(const struct td_h3_settings *peer)
{
    bool rfc_dgram = (peer->present & TD_H3_SET_H3_DATAGRAM) && peer->h3_datagram == 1;
    bool d04_dgram =
        (peer->present & TD_H3_SET_H3_DATAGRAM_DRAFT04) && peer->h3_datagram_draft04 == 1;
    if ((peer->present & TD_H3_SET_WT_MAX_SESSIONS_D07) && peer->wt_max_sessions_d07 > 0 &&
        rfc_dgram)
        return TD_H3_WT_DRAFT07;
    if ((peer->present & TD_H3_SET_ENABLE_WEBTRANSPORT) && peer->enable_webtransport == 1 &&
        (rfc_dgram || d04_dgram))
        return TD_H3_WT_DRAFT02;
    return TD_H3_WT_NONE;
}

/* ---- capsules ---- */

int td_h3_capsule_hdr_decode(const uint8_t *p, size_t n, uint64_t *type, uint64_t *len,
                             size_t *hdr_len)
{
    uint64_t t, l;
    size_t a, b;
    int rv = td_h3_varint_decode(p, n, &t, &a);
    if (rv != 0)
        return rv;
    rv = td_h3_varint_decode(p + a, n - a, &l, &b);
    if (rv != 0)
        return rv;
    *type = t;
    *len = l;
    *hdr_len = a + b;
    return 0;
}

int td_h3_capsule_decode(const uint8_t *p, size_t n, struct td_h3_capsule *c)
{
    uint64_t type, len;
    size_t h;
    int rv = td_h3_capsule_hdr_decode(p, n, &type, &len, &h);
    if (rv != 0)
        return rv;
    if (len > TD_H3_CAPSULE_MAX_LEN)
        return TD_ELIMIT;
    if (n - h < len)
        return TD_EAGAIN;
    c->type = type;
    c->value = p + h;
    c->len = (size_t)len;
    c->size = h + (size_t)len;
    return 0;
}

int td_h3_capsule_append(struct td_buf *b, uint64_t type, const void *value, size_t len)
{
    uint8_t hdr[2 * TD_H3_VARINT_MAXLEN];
    if (type > TD_H3_VARINT_MAX || (uint64_t)len > TD_H3_VARINT_MAX)
        return TD_EINVAL;
    size_t n = td_h3_varint_encode(hdr, type);
    n += td_h3_varint_encode(hdr + n, (uint64_t)len);
    td_buf_reserve(b, n + len);
    td_buf_append(b, hdr, n);
    if (len > 0)
        td_buf_append(b, value, len);
    return 0;
}

int td_h3_wt_close_decode(const uint8_t *value, size_t len, uint32_t *code, const uint8_t **reason,
                          size_t *reason_len)
{
    if (len < 4)
        return TD_EPROTO;
    if (len - 4 > TD_H3_WT_CLOSE_REASON_MAX)
        return TD_ELIMIT;
    *code = (uint32_t)value[0] << 24 | (uint32_t)value[1] << 16 | (uint32_t)value[2] << 8 |
            (uint32_t)value[3];
    *reason = value + 4;
    *reason_len = len - 4;
    return 0;
}

int td_h3_wt_close_append(struct td_buf *b, uint32_t code, const void *reason, size_t reason_len)
{
    if (reason_len > TD_H3_WT_CLOSE_REASON_MAX)
        return TD_ELIMIT;
    uint8_t v[4 + TD_H3_WT_CLOSE_REASON_MAX];
    v[0] = (uint8_t)(code >> 24);
    v[1] = (uint8_t)(code >> 16);
    v[2] = (uint8_t)(code >> 8);
    v[3] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(v + 4, reason, reason_len);
    return td_h3_capsule_append(b, TD_H3_CAPSULE_CLOSE_WT_SESSION, v, 4 + reason_len);
}

int td_h3_wt_drain_decode(const uint8_t *value, size_t len)
{
    (void)value;
    return len == 0 ? 0 : TD_EPROTO;
}

void td_h3_wt_drain_append(struct td_buf *b)
{
    (void)td_h3_capsule_append(b, TD_H3_CAPSULE_DRAIN_WT_SESSION, NULL, 0);
}

/* ---- datagrams ---- */

int td_h3_datagram_decode(const uint8_t *p, size_t n, uint64_t *session_id, const uint8_t **payload,
                          size_t *payload_len)
{
    uint64_t q;
    size_t a;
    if (td_h3_varint_decode(p, n, &q, &a) != 0 || q > TD_H3_QUARTER_ID_MAX)
        return TD_EPROTO;
    *session_id = q * 4;
    *payload = p + a;
    *payload_len = n - a;
    return 0;
}

size_t td_h3_datagram_hdr_encode(uint8_t *out, uint64_t session_id)
{
    if ((session_id & 3) != 0 || session_id / 4 > TD_H3_QUARTER_ID_MAX)
        return 0;
    return td_h3_varint_encode(out, session_id / 4);
}

/* ---- error codes ---- */

uint64_t td_h3_wt_error_to_h3(uint32_t app)
{
    /* Every 0x1f-th code of the range is a GREASE codepoint and is skipped. */
    return TD_H3_WT_ERROR_FIRST + app + app / 0x1e;
}

int td_h3_wt_error_from_h3(uint64_t h3, uint32_t *app)
{
    if (h3 < TD_H3_WT_ERROR_FIRST || h3 > TD_H3_WT_ERROR_LAST || td_h3_is_grease(h3))
        return TD_ENOTFOUND;
    uint64_t shifted = h3 - TD_H3_WT_ERROR_FIRST;
    *app = (uint32_t)(shifted - shifted / 0x1f);
    return 0;
}
