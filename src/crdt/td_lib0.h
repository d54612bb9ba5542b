/*
 * td_lib0.h - the lib0 binary primitives Yjs is built on, the "Any" value format, JSON <-> Any
 * conversion, UTF-16 length helpers, and the column coders of Yjs update v2.
 *
 * Everything here is a pure function of its inputs (no I/O, no globals). Readers work on a
 * struct td_lib0_reader, a pair of pointers into a caller-owned buffer that is advanced as
 * values are read; on failure a reader function returns a negative code, writes no
 * out-parameter, and leaves the reader at an unspecified position inside its buffer (callers
 * abandon the whole parse). Writers append to a struct td_buf and cannot fail.
 *
 * Wire facts (lib0 encoding.js / decoding.js):
 *   varUint   unsigned LEB128, 7 bits per byte, least significant group first. Values above
 *             2^53 (what a JavaScript number holds exactly) are rejected with TD_EPROTO.
 *   varInt    sign-magnitude: first byte = continue(0x80) | sign(0x40) | 6 low bits, then
 *             7-bit groups. Negative zero exists and means something to the RLE coders, so
 *             the sign is reported separately from the magnitude.
 *   varString varUint byte length + UTF-8 bytes. varUint8Array: varUint length + bytes.
 *   Any       one tag byte (127 - index) then a payload; see enum td_lib0_any_tag.
 *   float32/float64/bigint64 are big-endian.
 */
#ifndef TD_LIB0_H
#define TD_LIB0_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "crdt/td_yupdate.h" /* struct td_ybytes */

/* The largest integer lib0 accepts in a varUint/varInt (2^53). */
#define TD_LIB0_MAX_UINT (UINT64_C(1) << 53)
/* Default nesting cap for Any values (arrays/objects inside each other). */
#define TD_LIB0_MAX_DEPTH 64

enum td_lib0_any_tag {
    TD_LIB0_ANY_UNDEFINED = 127,
    TD_LIB0_ANY_NULL = 126,
    TD_LIB0_ANY_INT = 125,     /* varInt */
    TD_LIB0_ANY_FLOAT32 = 124, /* 4 bytes BE */
    TD_LIB0_ANY_FLOAT64 = 123, /* 8 bytes BE */
    TD_LIB0_ANY_BIGINT = 122,  /* int64 BE */
    TD_LIB0_ANY_FALSE = 121,
    TD_LIB0_ANY_TRUE = 120,
    TD_LIB0_ANY_STRING = 119, /* varString */
    TD_LIB0_ANY_OBJECT = 118, /* varUint n, n x (varString key, Any) */
    TD_LIB0_ANY_ARRAY = 117,  /* varUint n, n x Any */
    TD_LIB0_ANY_BINARY = 116, /* varUint8Array */
};

/* ---------------------------------------------------------------------------------------
 * Reading
 */

struct td_lib0_reader {
    const uint8_t *p;   /* next unread byte */
    const uint8_t *end; /* one past the last byte */
};

static inline void td_lib0_reader_init(struct td_lib0_reader *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->end = p + n;
}

/* td_lib0_left returns how many bytes remain unread. */
static inline size_t td_lib0_left(const struct td_lib0_reader *r)
{
    return (size_t)(r->end - r->p);
}

/* td_lib0_read_u8 reads one byte. Returns 0 or TD_EPROTO (end of input). */
int td_lib0_read_u8(struct td_lib0_reader *r, uint8_t *v);

/* td_lib0_read_varuint reads a varUint. Returns 0, or TD_EPROTO if truncated or > 2^53. */
int td_lib0_read_varuint(struct td_lib0_reader *r, uint64_t *v);

/*
 * td_lib0_read_varint reads a varInt as magnitude and sign (so -0 is *neg == true, *mag == 0).
 * Returns 0, or TD_EPROTO if truncated or the magnitude exceeds 2^53.
 */
int td_lib0_read_varint(struct td_lib0_reader *r, uint64_t *mag, bool *neg);

/* td_lib0_read_bytes takes a view of the next n bytes. Returns 0 or TD_EPROTO (too few). */
int td_lib0_read_bytes(struct td_lib0_reader *r, size_t n, struct td_ybytes *out);

/*
 * td_lib0_read_varbytes reads a varUint8Array as a view into the reader's buffer.
 * Returns 0 or TD_EPROTO (truncated, or a length larger than what remains).
 */
int td_lib0_read_varbytes(struct td_lib0_reader *r, struct td_ybytes *out);

/*
 * td_lib0_read_varstring reads a varString as a view (not NUL-terminated). The bytes are not
 * checked for UTF-8 validity (use td_utf8_valid where it matters). Returns 0 or TD_EPROTO.
 */
int td_lib0_read_varstring(struct td_lib0_reader *r, struct td_ybytes *out);

/* td_lib0_read_f32 / _f64 / _i64be read big-endian fixed-size numbers. 0 or TD_EPROTO. */
int td_lib0_read_f32(struct td_lib0_reader *r, float *v);
int td_lib0_read_f64(struct td_lib0_reader *r, double *v);
int td_lib0_read_i64be(struct td_lib0_reader *r, int64_t *v);

/*
 * td_lib0_skip_any skips one Any value, checking its structure: a known tag, complete
 * payloads, containers nested at most max_depth deep (the value itself is depth 1 if it is a
 * container), string/object-key bytes are valid UTF-8. Returns 0, TD_EPROTO (malformed) or
 * TD_ELIMIT (nested deeper than max_depth).
 */
int td_lib0_skip_any(struct td_lib0_reader *r, unsigned max_depth);

/* ---------------------------------------------------------------------------------------
 * Writing (append to a td_buf; never fails)
 */

void td_lib0_write_u8(struct td_buf *b, uint8_t v);
void td_lib0_write_varuint(struct td_buf *b, uint64_t v);
/* td_lib0_write_varint writes sign-magnitude; (0, true) writes negative zero (0x40). */
void td_lib0_write_varint(struct td_buf *b, uint64_t mag, bool neg);
/* td_lib0_write_varint_i64 writes v (never -0). */
void td_lib0_write_varint_i64(struct td_buf *b, int64_t v);
void td_lib0_write_varbytes(struct td_buf *b, const void *p, size_t n);
/* td_lib0_write_varstring writes n UTF-8 bytes (not checked) with their byte length. */
void td_lib0_write_varstring(struct td_buf *b, const void *s, size_t n);
void td_lib0_write_f32(struct td_buf *b, float v);
void td_lib0_write_f64(struct td_buf *b, double v);
void td_lib0_write_i64be(struct td_buf *b, int64_t v);
/*
 * td_lib0_write_any_number appends the Any encoding lib0 writeAny gives the JavaScript number
 * v: integer tag 125 if v is an integer with |v| <= 2^31-1 (-0 becomes varInt -0), else
 * float32 tag 124 if (float)v == v (infinities too), else float64 tag 123 (NaN too).
 */
void td_lib0_write_any_number(struct td_buf *b, double v);

/* ---------------------------------------------------------------------------------------
 * Any <-> JSON
 */

/* Flags for td_lib0_any_to_json_ex. */
#define TD_LIB0_JSON_STRICT 0x01u /* exactly JSON.stringify (see below) */

/*
 * td_lib0_any_to_json appends one Any value from p[0..len) to out as JSON text, as
 * JSON.stringify renders the value yjs decodes from it, with these choices for values JSON
 * cannot hold: undefined at the top level or in an array -> null (inside an object the member
 * is omitted, like JSON.stringify does); Uint8Array -> an array of numbers [1,2]; bigint -> its
 * decimal digits; NaN and infinities -> null. Numbers print like JavaScript's
 * Number.prototype.toString (shortest round-trip digits: 0.1, 1e+21, 1.5e-7, -0 -> 0); float32
 * values are widened to double first (float32 0.1 prints 0.10000000149011612). Strings are
 * escaped as JSON.stringify does (", \, control characters; other UTF-8 verbatim). *used
 * (if not NULL) receives the number of bytes of p consumed. Returns 0, TD_EPROTO (malformed
 * Any) or TD_ELIMIT (nested deeper than TD_LIB0_MAX_DEPTH); out may then hold a partial
 * value, which the caller should discard.
 */
int td_lib0_any_to_json(const uint8_t *p, size_t len, struct td_buf *out, size_t *used);

/*
 * td_lib0_any_to_json_ex is td_lib0_any_to_json with flags. With TD_LIB0_JSON_STRICT the
 * output is byte-for-byte JSON.stringify: a Uint8Array becomes an object {"0":1,"1":2}, and a
 * bigint anywhere or an undefined at the top level is an error (TD_EINVAL), because
 * JSON.stringify throws or returns undefined there. Used to write v1 JSON text from v2 Any.
 */
int td_lib0_any_to_json_ex(const uint8_t *p, size_t len, unsigned flags, struct td_buf *out,
                           size_t *used);

/* td_lib0_read_any_json is td_lib0_any_to_json_ex reading from (and advancing) r. */
int td_lib0_read_any_json(struct td_lib0_reader *r, unsigned flags, struct td_buf *out);

/*
 * td_lib0_json_to_any parses json[0..len) (one strict JSON value, see core/td_json.h) and
 * appends the Any encoding yjs writes for the JavaScript value JSON.parse gives: numbers as
 * td_lib0_write_any_number; objects with their keys in JavaScript property order (keys that
 * are array indices, "0".."4294967294" in canonical form, first in ascending numeric order,
 * then the others in first-appearance order; a repeated key keeps its first position and its
 * last value). Returns 0, or TD_EPROTO if the text is not valid JSON (nothing is appended).
 */
int td_lib0_json_to_any(const char *json, size_t len, struct td_buf *out);

/* ---------------------------------------------------------------------------------------
 * UTF-16 accounting over UTF-8 text (Yjs measures strings in UTF-16 code units)
 */

/*
 * td_lib0_utf16_len returns the UTF-16 length of s[0..n): 1 unit per code point below
 * U+10000, 2 above. s must be valid UTF-8 (for invalid input the result is unspecified but
 * bounded by n).
 */
size_t td_lib0_utf16_len(const uint8_t *s, size_t n);

/*
 * td_lib0_utf16_to_byte finds where UTF-16 offset `units` falls in the valid UTF-8 text
 * s[0..n). On success *byte_off is the byte offset of the code point that starts at that
 * offset, or, if the offset falls between the two halves of a surrogate pair (inside a 4-byte
 * character), the offset of that character's first byte with *mid_pair set to true. Returns 0,
 * or TD_EINVAL if units exceeds the text's UTF-16 length.
 */
int td_lib0_utf16_to_byte(const uint8_t *s, size_t n, uint64_t units, size_t *byte_off,
                          bool *mid_pair);

/* ---------------------------------------------------------------------------------------
 * Update v2 column coders (lib0 RleEncoder<uint8>, UintOptRleEncoder, IntDiffOptRleEncoder,
 * StringEncoder and their decoders). Each encoder owns a td_buf; *_finish appends the column's
 * final bytes (flushing the pending run) to `out` and leaves the encoder reusable only after
 * *_free + *_init. Decoders read a column given as a byte view and return TD_EPROTO when a
 * value is requested past the column's end (Yjs would silently produce zeros there; no update
 * Yjs writes does that).
 */

/* Rle<uint8>: value, then varUint(count-1) when the value changes; the last run is open. */
struct td_lib0_rle_enc {
    struct td_buf buf;
    uint8_t s;
    bool has;
    uint64_t count;
};
void td_lib0_rle_enc_init(struct td_lib0_rle_enc *e);
void td_lib0_rle_enc_free(struct td_lib0_rle_enc *e);
void td_lib0_rle_enc_write(struct td_lib0_rle_enc *e, uint8_t v);
void td_lib0_rle_enc_finish(struct td_lib0_rle_enc *e, struct td_buf *out);

struct td_lib0_rle_dec {
    struct td_lib0_reader r;
    uint8_t s;
    bool forever;   /* the open last run: s repeats forever */
    uint64_t count; /* values of s still to return */
};
void td_lib0_rle_dec_init(struct td_lib0_rle_dec *d, const uint8_t *p, size_t n);
int td_lib0_rle_dec_read(struct td_lib0_rle_dec *d, uint8_t *v);

/* UintOptRle: varInt(v) for a single value, varInt(-v) + varUint(count-2) for a run. */
struct td_lib0_uintrle_enc {
    struct td_buf buf;
    uint64_t s;
    uint64_t count;
};
void td_lib0_uintrle_enc_init(struct td_lib0_uintrle_enc *e);
void td_lib0_uintrle_enc_free(struct td_lib0_uintrle_enc *e);
void td_lib0_uintrle_enc_write(struct td_lib0_uintrle_enc *e, uint64_t v);
void td_lib0_uintrle_enc_finish(struct td_lib0_uintrle_enc *e, struct td_buf *out);

struct td_lib0_uintrle_dec {
    struct td_lib0_reader r;
    uint64_t s;
    uint64_t count;
};
void td_lib0_uintrle_dec_init(struct td_lib0_uintrle_dec *d, const uint8_t *p, size_t n);
int td_lib0_uintrle_dec_read(struct td_lib0_uintrle_dec *d, uint64_t *v);

/* IntDiffOptRle: varInt(diff*2 + hasCount) [+ varUint(count-2)], diffs between values. */
struct td_lib0_intdiff_enc {
    struct td_buf buf;
    int64_t s;
    int64_t diff;
    uint64_t count;
};
void td_lib0_intdiff_enc_init(struct td_lib0_intdiff_enc *e);
void td_lib0_intdiff_enc_free(struct td_lib0_intdiff_enc *e);
void td_lib0_intdiff_enc_write(struct td_lib0_intdiff_enc *e, int64_t v);
void td_lib0_intdiff_enc_finish(struct td_lib0_intdiff_enc *e, struct td_buf *out);

struct td_lib0_intdiff_dec {
    struct td_lib0_reader r;
    int64_t s;
    int64_t diff;
    uint64_t count;
};
void td_lib0_intdiff_dec_init(struct td_lib0_intdiff_dec *d, const uint8_t *p, size_t n);
/* Returns 0 or TD_EPROTO (past the end, or the running value leaves +-2^53). */
int td_lib0_intdiff_dec_read(struct td_lib0_intdiff_dec *d, int64_t *v);

/*
 * StringEncoder: every string is appended to one UTF-8 text, written as a varString, followed
 * (without a length prefix) by the UintOptRle column of each string's UTF-16 length.
 */
struct td_lib0_str_enc {
    struct td_buf text;
    struct td_lib0_uintrle_enc lens;
};
void td_lib0_str_enc_init(struct td_lib0_str_enc *e);
void td_lib0_str_enc_free(struct td_lib0_str_enc *e);
/* td_lib0_str_enc_write appends valid UTF-8 s[0..n). */
void td_lib0_str_enc_write(struct td_lib0_str_enc *e, const uint8_t *s, size_t n);
void td_lib0_str_enc_finish(struct td_lib0_str_enc *e, struct td_buf *out);

struct td_lib0_str_dec {
    const uint8_t *s, *end; /* the unread part of the concatenated text */
    struct td_lib0_uintrle_dec lens;
};
/*
 * td_lib0_str_dec_init reads the text's varString header from the column p[0..n) and checks
 * that the text is valid UTF-8. Returns 0 or TD_EPROTO.
 */
int td_lib0_str_dec_init(struct td_lib0_str_dec *d, const uint8_t *p, size_t n);
/*
 * td_lib0_str_dec_read returns the next string as a view into the column, and its UTF-16
 * length in *units (if not NULL). Returns 0, or TD_EPROTO if the lengths run past the text or
 * cut a surrogate pair.
 */
int td_lib0_str_dec_read(struct td_lib0_str_dec *d, struct td_ybytes *out, uint64_t *units);

#endif
