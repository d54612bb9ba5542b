/*
 * td_base64.h - base64 (RFC 4648) encoding and decoding.
 *
 * Encoding always uses the standard alphabet (A-Z a-z 0-9 + /) with '=' padding, as the
 * WebSocket handshake needs. Decoding accepts the standard and the URL-safe alphabet
 * (- and _ in place of + and /; JWT uses the latter without padding).
 */
#ifndef TD_BASE64_H
#define TD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Number of characters td_base64_encode writes for n input bytes, not counting the NUL. */
#define TD_BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/* Upper bound on the bytes td_base64_decode produces from n characters. */
#define TD_BASE64_DECODED_MAX(n) ((((n) + 3) / 4) * 3)

/*
 * td_base64_encode writes the standard, padded encoding of in[0..n) to out, which must hold
 * TD_BASE64_ENCODED_LEN(n) + 1 bytes, followed by a NUL. Returns the number of characters
 * written, not counting the NUL.
 */
size_t td_base64_encode(const uint8_t *in, size_t n, char *out);

/*
 * td_base64_decode decodes in[0..n) into out[0..outcap). Either alphabet is accepted (even
 * mixed); '=' padding is optional, but when present it must complete the last quantum and
 * nothing may follow it. Whitespace is not accepted, nor are non-canonical encodings (the
 * unused low bits of the last character must be zero). Returns the decoded length, TD_EPROTO
 * if the input is not base64, or TD_ELIMIT if the output does not fit in outcap (or would not
 * fit in an int). On failure out may hold
 * partial output, which must be ignored.
 */
int td_base64_decode(const char *in, size_t n, uint8_t *out, size_t outcap);

#endif
