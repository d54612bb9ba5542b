/*
 * td_pb.h - low-level Protocol Buffers wire format helpers (no protobuf library).
 *
 * Reading works on a struct td_pb_cur, a [p, end) window over borrowed bytes. Every read
 * function checks bounds, returns 0 on success or TD_EPROTO on malformed input, advances the
 * cursor only on success, and writes its out-parameters only on success. Nothing here
 * allocates or asserts on input.
 *
 * Writing appends to a struct td_buf. Two ways to length-prefix a nested message:
 *   - size first: compute the body size with the td_pb_size_* helpers, then
 *     td_pb_append_len(); no byte is written twice (used on hot paths);
 *   - patch afterwards: m = td_pb_begin(b); write the body; td_pb_end(b, m). One byte is
 *     reserved for the length and the body is moved when the length needs more bytes.
 * The td_pb_append_<scalar> field writers omit zero values, as proto3 does.
 *
 * Wire format reference: https://protobuf.dev/programming-guides/encoding/
 */
#ifndef TD_PB_H
#define TD_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"

enum td_pb_wire {
    TD_PB_VARINT = 0,
    TD_PB_I64 = 1,
    TD_PB_LEN = 2,
    TD_PB_SGROUP = 3, /* groups: deprecated, rejected */
    TD_PB_EGROUP = 4,
    TD_PB_I32 = 5,
};

#define TD_PB_VARINT_MAX 10         /* bytes in the longest (64-bit) varint */
#define TD_PB_FIELD_MAX 0x1fffffffu /* largest valid field number (2^29 - 1) */

/* A read window [p, end). */
struct td_pb_cur {
    const uint8_t *p;
    const uint8_t *end;
};

static inline void td_pb_cur_init(struct td_pb_cur *c, const void *p, size_t n)
{
    c->p = (const uint8_t *)p;
    c->end = c->p + n;
}

static inline size_t td_pb_cur_left(const struct td_pb_cur *c)
{
    return (size_t)(c->end - c->p);
}

/*
 * td_pb_read_varint reads an unsigned varint of at most 10 bytes (the 10th byte may only
 * hold the top bit, 0 or 1). Returns 0, or TD_EPROTO when truncated or overlong.
 */
int td_pb_read_varint(struct td_pb_cur *c, uint64_t *v);

/*
 * td_pb_read_tag reads a field tag. Returns 0, or TD_EPROTO when the varint is bad, it does
 * not fit in 32 bits, the field number is 0 or above TD_PB_FIELD_MAX, or the wire type is
 * 6 or 7 (which do not exist). Group wire types 3/4 are returned; td_pb_skip rejects them.
 */
int td_pb_read_tag(struct td_pb_cur *c, uint32_t *field, enum td_pb_wire *wire);

/*
 * td_pb_read_len reads a length-delimited payload (varint length + bytes) and points
 * *p / *n at it, inside the cursor's window. Returns 0, or TD_EPROTO when the length is bad
 * or runs past the end of the window.
 */
int td_pb_read_len(struct td_pb_cur *c, const uint8_t **p, size_t *n);

/* td_pb_read_fixed64 / td_pb_read_fixed32 read little-endian fixed-width values. Return 0 or
 * TD_EPROTO when truncated. */
int td_pb_read_fixed64(struct td_pb_cur *c, uint64_t *v);
int td_pb_read_fixed32(struct td_pb_cur *c, uint32_t *v);

/*
 * td_pb_skip skips the value of a field whose tag was just read. Wire types 0, 1, 2 and 5
 * are skipped; groups (3, 4) and anything else are rejected. Returns 0 or TD_EPROTO.
 */
int td_pb_skip(struct td_pb_cur *c, enum td_pb_wire wire);

/* ZigZag mapping used by sint32/sint64. */
static inline uint64_t td_pb_zigzag_encode(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v < 0 ? -1 : 0);
}

static inline int64_t td_pb_zigzag_decode(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* td_pb_size_varint returns the encoded size of v, 1..10. */
static inline size_t td_pb_size_varint(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* td_pb_size_tag returns the encoded size of a tag for field (wire type does not matter). */
static inline size_t td_pb_size_tag(uint32_t field)
{
    return td_pb_size_varint((uint64_t)field << 3);
}

/* td_pb_size_uint returns the size of a varint field, 0 when v == 0 (omitted). */
static inline size_t td_pb_size_uint(uint32_t field, uint64_t v)
{
    return v == 0 ? 0 : td_pb_size_tag(field) + td_pb_size_varint(v);
}

/* td_pb_size_bytes returns the size of a length-delimited field of n bytes, 0 when n == 0
 * (omitted, as td_pb_append_bytes does). */
static inline size_t td_pb_size_bytes(uint32_t field, size_t n)
{
    return n == 0 ? 0 : td_pb_size_tag(field) + td_pb_size_varint(n) + n;
}

/* td_pb_size_msg returns the size of an always-emitted nested message with an n-byte body. */
static inline size_t td_pb_size_msg(uint32_t field, size_t n)
{
    return td_pb_size_tag(field) + td_pb_size_varint(n) + n;
}

/* td_pb_put_varint writes v at dst (room for TD_PB_VARINT_MAX bytes) and returns the number
 * of bytes written. */
size_t td_pb_put_varint(uint8_t *dst, uint64_t v);

void td_pb_append_varint(struct td_buf *b, uint64_t v);
void td_pb_append_tag(struct td_buf *b, uint32_t field, enum td_pb_wire wire);
/* td_pb_append_uint writes a varint field (uint32/uint64/bool/enum); omitted when v == 0. */
void td_pb_append_uint(struct td_buf *b, uint32_t field, uint64_t v);
/* td_pb_append_int writes an int32/int64 field (negative values take 10 bytes); omitted
 * when v == 0. */
void td_pb_append_int(struct td_buf *b, uint32_t field, int64_t v);
static inline void td_pb_append_bool(struct td_buf *b, uint32_t field, bool v)
{
    td_pb_append_uint(b, field, v ? 1 : 0);
}
/* td_pb_append_bytes writes a bytes/string field; omitted when n == 0. p may be NULL when
 * n == 0. */
void td_pb_append_bytes(struct td_buf *b, uint32_t field, const void *p, size_t n);
/* td_pb_append_bytes_always writes a bytes/string field even when empty (map keys). */
void td_pb_append_bytes_always(struct td_buf *b, uint32_t field, const void *p, size_t n);
/* td_pb_append_len writes the tag and length of a nested message whose n-byte body the
 * caller appends next. */
void td_pb_append_len(struct td_buf *b, uint32_t field, size_t n);

/*
 * td_pb_begin reserves one byte for a length prefix and returns the offset where the body
 * starts; td_pb_end(b, mark) writes the length of everything appended since, moving the
 * body forward when the length needs more than one byte. The caller writes the tag (if any)
 * before td_pb_begin. Begin/end pairs nest.
 */
size_t td_pb_begin(struct td_buf *b);
void td_pb_end(struct td_buf *b, size_t mark);

#endif
