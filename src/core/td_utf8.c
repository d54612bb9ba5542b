#include "core/td_utf8.h"

#include <string.h>

/*
 * Validation works on ranges rather than tables: after each byte of a multi-byte character
 * the code points it can still become form the range [cp << 6*need, that | low bits all 1].
 * The character is rejected as soon as that whole range is overlong (below min), above
 * U+10FFFF, or inside the surrogate block. Every 64-aligned block of 3-byte code points is
 * either inside D800..DFFF or disjoint from it, so the surrogate test is exact at the second
 * byte. Lead bytes C0, C1 and F5..F7 are rejected by the same test on the lead byte alone.
 */

#define UTF8_FAILED 4u /* impossible value of need: the state is poisoned */
#define UTF8_ASCII_MASK 0x8080808080808080ull

void td_utf8_init(struct td_utf8_state *s)
{
    s->need = 0;
    s->cp = 0;
    s->min = 0;
}

static bool utf8_range_ok(uint32_t cp, uint32_t need, uint32_t min)
{
    uint32_t shift = 6u * need;
    uint32_t lo = cp << shift;
    uint32_t hi = lo | ((1u << shift) - 1u);
    if (hi < min || lo > 0x10FFFFu)
        return false;
    return !(lo >= 0xD800u && hi <= 0xDFFFu);
}

bool td_utf8_feed(struct td_utf8_state *s, const uint8_t *p, size_t n)
{
    uint32_t need = s->need, cp = s->cp, min = s->min;
    size_t i = 0;
    if (need >= UTF8_FAILED)
        return false;
    while (i < n) {
        if (need == 0) {
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & UTF8_ASCII_MASK)
                    break;
                i += 8;
            }
            if (i == n)
                break;
            uint8_t b = p[i++];
            if (b < 0x80)
                continue;
            if (b < 0xC0) {
                goto fail; /* continuation byte without a lead */
            } else if (b < 0xE0) {
                need = 1, cp = b & 0x1Fu, min = 0x80;
            } else if (b < 0xF0) {
                need = 2, cp = b & 0x0Fu, min = 0x800;
            } else if (b < 0xF8) {
                need = 3, cp = b & 0x07u, min = 0x10000;
            } else {
                goto fail;
            }
        } else {
            uint8_t b = p[i++];
            if ((b & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (b & 0x3Fu);
            need--;
        }
        if (!utf8_range_ok(cp, need, min))
            goto fail;
    }
    s->need = need;
    s->cp = cp;
    s->min = min;
    return true;
fail:
    s->need = UTF8_FAILED;
    return false;
}

bool td_utf8_complete(const struct td_utf8_state *s)
{
    return s->need == 0;
}

bool td_utf8_valid(const uint8_t *p, size_t n)
{
    struct td_utf8_state s;
    td_utf8_init(&s);
    return td_utf8_feed(&s, p, n) && td_utf8_complete(&s);
}
