#include "proto/td_pb.h"

#include <string.h>

#include "core/td_err.h"

int td_pb_read_varint(struct td_pb_cur *c, uint64_t *v)
{
    const uint8_t *p = c->p;
    uint64_t x = 0;
    for (unsigned i = 0; i < TD_PB_VARINT_MAX; i++) {
        if (p == c->end)
            return TD_EPROTO;
        uint8_t byte = *p++;
        if (i == TD_PB_VARINT_MAX - 1 && byte > 1)
            return TD_EPROTO; /* bits beyond 64 (as protobuf-go rejects) */
        x |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (byte < 0x80) {
            c->p = p;
            *v = x;
            return 0;
        }
    }
    return TD_EPROTO; /* more than 10 bytes */
}

int td_pb_read_tag(struct td_pb_cur *c, uint32_t *field, enum td_pb_wire *wire)
{
    struct td_pb_cur save = *c;
    uint64_t v;
    if (td_pb_read_varint(c, &v) != 0)
        return TD_EPROTO;
    uint64_t num = v >> 3;
    unsigned w = (unsigned)(v & 7);
    if (num == 0 || num > TD_PB_FIELD_MAX || w == 6 || w == 7) {
        *c = save;
        return TD_EPROTO;
    }
    *field = (uint32_t)num;
    *wire = (enum td_pb_wire)w;
    return 0;
}

int td_pb_read_len(struct td_pb_cur *c, const uint8_t **p, size_t *n)
{
    struct td_pb_cur save = *c;
    uint64_t len;
    if (td_pb_read_varint(c, &len) != 0)
        return TD_EPROTO;
    if (len > td_pb_cur_left(c)) {
        *c = save;
        return TD_EPROTO;
    }
    *p = c->p;
    *n = (size_t)len;
    c->p += len;
    return 0;
}

int td_pb_read_fixed64(struct td_pb_cur *c, uint64_t *v)
{
    if (td_pb_cur_left(c) < 8)
        return TD_EPROTO;
    uint64_t x = 0;
    for (unsigned i = 0; i < 8; i++)
        x |= (uint64_t)c->p[i] << (8 * i);
    c->p += 8;
    *v = x;
    return 0;
}

int td_pb_read_fixed32(struct td_pb_cur *c, uint32_t *v)
{
    if (td_pb_cur_left(c) < 4)
        return TD_EPROTO;
    uint32_t x = 0;
    for (unsigned i = 0; i < 4; i++)
        x |= (uint32_t)c->p[i] << (8 * i);
    c->p += 4;
    *v = x;
    return 0;
}

int td_pb_skip(struct td_pb_cur *c, enum td_pb_wire wire)
{
    uint64_t v;
    uint32_t v32;
    const uint8_t *p;
    size_t n;
    switch (wire) {
    case TD_PB_VARINT:
        return td_pb_read_varint(c, &v);
    case TD_PB_I64:
        return td_pb_read_fixed64(c, &v);
    case TD_PB_LEN:
        return td_pb_read_len(c, &p, &n);
    case TD_PB_I32:
        return td_pb_read_fixed32(c, &v32);
    case TD_PB_SGROUP:
    case TD_PB_EGROUP:
    default:
        return TD_EPROTO;
    }
}

size_t td_pb_put_varint(uint8_t *dst, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        dst[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (uint8_t)v;
    return n;
}

void td_pb_append_varint(struct td_buf *b, uint64_t v)
{
    td_buf_reserve(b, TD_PB_VARINT_MAX);
    b->len += td_pb_put_varint(b->data + b->len, v);
}

void td_pb_append_tag(struct td_buf *b, uint32_t field, enum td_pb_wire wire)
{
    td_pb_append_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void td_pb_append_uint(struct td_buf *b, uint32_t field, uint64_t v)
{
    if (v == 0)
        return;
    td_pb_append_tag(b, field, TD_PB_VARINT);
    td_pb_append_varint(b, v);
}

void td_pb_append_int(struct td_buf *b, uint32_t field, int64_t v)
{
    /* int32 and int64 both sign-extend to 64 bits on the wire. */
    td_pb_append_uint(b, field, (uint64_t)v);
}

void td_pb_append_bytes_always(struct td_buf *b, uint32_t field, const void *p, size_t n)
{
    td_pb_append_tag(b, field, TD_PB_LEN);
    td_pb_append_varint(b, n);
    td_buf_append(b, p, n);
}

void td_pb_append_bytes(struct td_buf *b, uint32_t field, const void *p, size_t n)
{
    if (n == 0)
        return;
    td_pb_append_bytes_always(b, field, p, n);
}

void td_pb_append_len(struct td_buf *b, uint32_t field, size_t n)
{
    td_pb_append_tag(b, field, TD_PB_LEN);
    td_pb_append_varint(b, n);
}

size_t td_pb_begin(struct td_buf *b)
{
    td_buf_append_byte(b, 0);
    return b->len;
}

void td_pb_end(struct td_buf *b, size_t mark)
{
    size_t body = b->len - mark;
    size_t n = td_pb_size_varint(body);
    if (n > 1) {
        td_buf_reserve(b, n - 1);
        memmove(b->data + mark + n - 1, b->data + mark, body);
        b->len += n - 1;
    }
    td_pb_put_varint(b->data + mark - 1, body);
}
