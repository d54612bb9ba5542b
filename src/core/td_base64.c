#include "core/td_base64.h"

#include <limits.h>

#include "core/td_err.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t td_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Value of one base64 character in either alphabet, or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int td_base64_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
    /* Strip padding: at most two '=', and only if they complete a 4-character quantum. */
    size_t pad = 0;
    while (pad < n && in[n - 1 - pad] == '=')
        pad++;
    if (pad > 0 && (pad > 2 || n % 4 != 0))
        return TD_EPROTO;
    n -= pad;
    size_t rem = n % 4;
    if (rem == 1 || (pad > 0 && 4 - rem != pad))
        return TD_EPROTO;
    size_t outlen = n / 4 * 3 + (rem ? rem - 1 : 0);
    if (outlen > (size_t)INT_MAX || outlen > outcap)
        return TD_ELIMIT;

    size_t o = 0, i = 0;
    for (; n - i >= 4; i += 4) {
        int a = b64_value(in[i]), b = b64_value(in[i + 1]);
        int c = b64_value(in[i + 2]), d = b64_value(in[i + 3]);
        if ((a | b | c | d) < 0)
            return TD_EPROTO;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem >= 2) {
        int a = b64_value(in[i]), b = b64_value(in[i + 1]);
        int c = rem == 3 ? b64_value(in[i + 2]) : 0;
        if ((a | b | c) < 0)
            return TD_EPROTO;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        /* The bits below the last whole byte must be zero (canonical encoding). */
        if (rem == 2 ? (v & 0xFFFFu) != 0 : (v & 0xFFu) != 0)
            return TD_EPROTO;
        out[o++] = (uint8_t)(v >> 16);
        if (rem == 3)
            out[o++] = (uint8_t)(v >> 8);
    }
    return (int)o;
}
