/*
 * td_utf8.h - UTF-8 validation, whole-buffer and incremental.
 *
 * "Valid" means well-formed UTF-8 as defined by RFC 3629 / Unicode Table 3-7: no overlong
 * forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray or missing
 * continuation bytes. Both entry points reject a bad sequence at the first byte that makes
 * it impossible (for example E0 80, ED A0 and F4 90 fail at their second byte), which is what
 * RFC 6455 asks of a WebSocket endpoint receiving a text message in fragments.
 *
 * Runs of ASCII are checked 8 bytes at a time.
 */
#ifndef TD_UTF8_H
#define TD_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* td_utf8_valid returns true if p[0..n) is well-formed UTF-8 (n == 0 is valid). */
bool td_utf8_valid(const uint8_t *p, size_t n);

/*
 * Incremental validator state, caller-owned. need = continuation bytes still expected for the
 * current character (0 at a character boundary), cp = the bits of that character decoded so
 * far, min = the smallest code point its length may encode (to reject overlong forms).
 * After td_utf8_feed has returned false the state stays failed: every later feed returns
 * false and td_utf8_complete returns false.
 */
struct td_utf8_state {
    uint32_t need;
    uint32_t cp;
    uint32_t min;
};

/* td_utf8_init sets s to the start of a text (at a character boundary). */
void td_utf8_init(struct td_utf8_state *s);

/*
 * td_utf8_feed validates the next n bytes of a text whose earlier bytes were fed before;
 * a character may be split across calls. Returns true while everything fed so far is a
 * prefix of valid UTF-8, false as soon as it cannot be.
 */
bool td_utf8_feed(struct td_utf8_state *s, const uint8_t *p, size_t n);

/* td_utf8_complete returns true iff no partial character is pending (and no failure). */
bool td_utf8_complete(const struct td_utf8_state *s);

#endif
