/* Tests for td_utf8 (validation) and td_base64. */
#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_utf8.h"
#include "td_test.h"

#define U8(s) ((const uint8_t *)(s))

/* Reference: a direct transcription of Unicode Table 3-7 (well-formed byte sequences). */
static size_t ref_char_len(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t len;
    if (b <= 0x7F)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        len = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        len = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        len = 4;
    else
        return 0;
    if (b == 0xE0)
        lo = 0xA0;
    else if (b == 0xED)
        hi = 0x9F;
    else if (b == 0xF0)
        lo = 0x90;
    else if (b == 0xF4)
        hi = 0x8F;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

static bool ref_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = ref_char_len(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

TD_TEST(utf8_valid_examples)
{
    TD_CHECK(td_utf8_valid(U8(""), 0));
    TD_CHECK(td_utf8_valid(U8("hello, world"), 12));
    TD_CHECK(td_utf8_valid(U8("\xC2\x80"), 2));                     /* U+0080 */
    TD_CHECK(td_utf8_valid(U8("\xDF\xBF"), 2));                     /* U+07FF */
    TD_CHECK(td_utf8_valid(U8("\xE0\xA0\x80"), 3));                 /* U+0800 */
    TD_CHECK(td_utf8_valid(U8("\xED\x9F\xBF"), 3));                 /* U+D7FF */
    TD_CHECK(td_utf8_valid(U8("\xEE\x80\x80"), 3));                 /* U+E000 */
    TD_CHECK(td_utf8_valid(U8("\xEF\xBF\xBF"), 3));                 /* U+FFFF */
    TD_CHECK(td_utf8_valid(U8("\xF0\x90\x80\x80"), 4));             /* U+10000 */
    TD_CHECK(td_utf8_valid(U8("\xF4\x8F\xBF\xBF"), 4));             /* U+10FFFF */
    TD_CHECK(td_utf8_valid(U8("\xCE\xBA\xE1\xBD\xB9\xCF\x83"), 7)); /* kosme */
    TD_CHECK(td_utf8_valid(U8("a\0b"), 3));                         /* NUL is valid */
}

TD_TEST(utf8_rejects_malformed)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\xC0\x80", 2},             /* overlong NUL */
        {"\xC1\xBF", 2},             /* overlong */
        {"\xE0\x80\x80", 3},         /* overlong */
        {"\xE0\x9F\xBF", 3},         /* overlong U+07FF */
        {"\xF0\x80\x80\x80", 4},     /* overlong */
        {"\xF0\x8F\xBF\xBF", 4},     /* overlong U+FFFF */
        {"\xED\xA0\x80", 3},         /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3},         /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4},     /* U+110000 */
        {"\xF5\x80\x80\x80", 4},     /* lead above F4 */
        {"\xF8\x88\x80\x80\x80", 5}, /* 5-byte form */
        {"\xFF", 1},
        {"\xFE", 1},
        {"\x80", 1}, /* stray continuation */
        {"a\xBF", 2},
        {"\xC3\x28", 2},     /* lead followed by ASCII */
        {"\xE2\x82\x28", 3}, /* third byte not a continuation */
        {"\xE2\x82", 2},     /* truncated */
        {"\xF0\x9F\x98", 3}, /* truncated */
        {"abc\xC3", 4},      /* truncated at end */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (td_utf8_valid(U8(bad[i].s), bad[i].n)) {
            fprintf(stderr, "  accepted bad case %zu\n", i);
            TD_CHECK(false);
        }
    }
}

/* Every 1- and 2-byte input, and every 3-byte input starting with a non-ASCII lead,
 * agrees with the table-driven reference. */
TD_TEST(utf8_exhaustive_short_sequences)
{
    uint8_t b[3];
    size_t mismatches = 0;
    for (unsigned a = 0; a < 256; a++) {
        b[0] = (uint8_t)a;
        mismatches += td_utf8_valid(b, 1) != ref_valid(b, 1);
        for (unsigned c = 0; c < 256; c++) {
            b[1] = (uint8_t)c;
            mismatches += td_utf8_valid(b, 2) != ref_valid(b, 2);
            if (a < 0xC0)
                continue;
            for (unsigned e = 0; e < 256; e++) {
                b[2] = (uint8_t)e;
                mismatches += td_utf8_valid(b, 3) != ref_valid(b, 3);
            }
        }
    }
    TD_CHECK_EQ_INT(mismatches, 0);
    /* All 4-byte sequences with F0..F4 lead and continuation tails. */
    uint8_t q[4];
    for (unsigned a = 0xF0; a <= 0xF7; a++)
        for (unsigned c = 0x80; c <= 0xBF; c++)
            for (unsigned e = 0x80; e <= 0xBF; e += 0x3F)
                for (unsigned g = 0x7F; g <= 0xC0; g += 0x41) {
                    q[0] = (uint8_t)a, q[1] = (uint8_t)c, q[2] = (uint8_t)e, q[3] = (uint8_t)g;
                    mismatches += td_utf8_valid(q, 4) != ref_valid(q, 4);
                }
    TD_CHECK_EQ_INT(mismatches, 0);
}

/* The 8-byte ASCII fast path must not skip a bad byte at any alignment. */
TD_TEST(utf8_fast_path_alignment)
{
    uint8_t buf[64];
    for (size_t pos = 0; pos < sizeof(buf); pos++) {
        memset(buf, 'a', sizeof(buf));
        buf[pos] = 0x80;
        TD_CHECK(!td_utf8_valid(buf, sizeof(buf)));
        TD_CHECK(td_utf8_valid(buf, pos)); /* the ASCII prefix alone is fine */
        if (pos + 2 <= sizeof(buf)) {
            buf[pos] = 0xC3;
            buf[pos + 1] = 0xA9; /* é */
            TD_CHECK(td_utf8_valid(buf, sizeof(buf)));
            TD_CHECK(!td_utf8_valid(buf, pos + 1)); /* cut inside the character */
        }
    }
}

TD_TEST(utf8_incremental_split_everywhere)
{
    const uint8_t *s = U8("a\xC3\xA9"
                          "b\xE2\x82\xAC"
                          "c\xF0\x9F\x98\x80"
                          "d");
    size_t n = 12;
    TD_REQUIRE(td_utf8_valid(s, n));
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct td_utf8_state st;
            td_utf8_init(&st);
            TD_CHECK(td_utf8_feed(&st, s, i));
            TD_CHECK(td_utf8_feed(&st, s + i, j - i));
            TD_CHECK(td_utf8_feed(&st, s + j, n - j));
            TD_CHECK(td_utf8_complete(&st));
        }
    }
    /* Mid-character: a valid prefix but not complete. */
    struct td_utf8_state st;
    td_utf8_init(&st);
    TD_CHECK(td_utf8_feed(&st, U8("\xF0\x9F"), 2));
    TD_CHECK(!td_utf8_complete(&st));
    TD_CHECK(td_utf8_feed(&st, U8("\x98"), 1));
    TD_CHECK(!td_utf8_complete(&st));
    TD_CHECK(td_utf8_feed(&st, U8("\x80"), 1));
    TD_CHECK(td_utf8_complete(&st));
}

/* Impossible prefixes fail at the first byte that proves them impossible. */
TD_TEST(utf8_incremental_fails_early)
{
    static const char *pairs[][2] = {
        {"\xE0", "\x80"}, /* overlong */
        {"\xED", "\xA0"}, /* surrogate */
        {"\xF4", "\x90"}, /* > U+10FFFF */
        {"\xF0", "\x8F"}, /* overlong */
    };
    for (size_t i = 0; i < 4; i++) {
        struct td_utf8_state st;
        td_utf8_init(&st);
        TD_CHECK(td_utf8_feed(&st, U8(pairs[i][0]), 1));
        TD_CHECK(!td_utf8_feed(&st, U8(pairs[i][1]), 1));
        /* Sticky: the state stays failed. */
        TD_CHECK(!td_utf8_feed(&st, U8("a"), 1));
        TD_CHECK(!td_utf8_feed(&st, U8(""), 0));
        TD_CHECK(!td_utf8_complete(&st));
    }
    struct td_utf8_state st;
    td_utf8_init(&st);
    TD_CHECK(!td_utf8_feed(&st, U8("\xC0"), 1));
    td_utf8_init(&st);
    TD_CHECK(!td_utf8_feed(&st, U8("\xF5"), 1));
}

/* ---- base64 ---- */

TD_TEST(base64_rfc4648_vectors)
{
    static const char *vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char out[32];
        size_t n = strlen(vec[i][0]);
        size_t k = td_base64_encode(U8(vec[i][0]), n, out);
        TD_CHECK_EQ_INT(k, TD_BASE64_ENCODED_LEN(n));
        TD_CHECK_MEM_STR(out, k, vec[i][1]);
        TD_CHECK_EQ_INT(out[k], 0);
        uint8_t dec[16];
        int d = td_base64_decode(vec[i][1], strlen(vec[i][1]), dec, sizeof(dec));
        TD_CHECK_EQ_INT(d, n);
        if (d >= 0)
            TD_CHECK_MEM_STR(dec, (size_t)d, vec[i][0]);
        /* Padding is optional on input. */
        size_t m = strlen(vec[i][1]);
        while (m > 0 && vec[i][1][m - 1] == '=')
            m--;
        d = td_base64_decode(vec[i][1], m, dec, sizeof(dec));
        TD_CHECK_EQ_INT(d, n);
    }
}

TD_TEST(base64_round_trip_all_bytes)
{
    uint8_t in[300], dec[300];
    char enc[TD_BASE64_ENCODED_LEN(300) + 1];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(in); i++) {
        x = x * 1103515245u + 12345u;
        in[i] = (uint8_t)(x >> 16);
    }
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t k = td_base64_encode(in, n, enc);
        TD_REQUIRE(k == TD_BASE64_ENCODED_LEN(n));
        int d = td_base64_decode(enc, k, dec, sizeof(dec));
        TD_REQUIRE(d == (int)n);
        TD_REQUIRE(memcmp(in, dec, n) == 0);
        /* The same text in the URL-safe alphabet, unpadded, decodes the same. */
        for (size_t i = 0; i < k; i++)
            enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
        while (k > 0 && enc[k - 1] == '=')
            k--;
        d = td_base64_decode(enc, k, dec, sizeof(dec));
        TD_REQUIRE(d == (int)n);
        TD_REQUIRE(memcmp(in, dec, n) == 0);
    }
}

TD_TEST(base64_url_safe_alphabet)
{
    uint8_t dec[4];
    char enc[8];
    TD_CHECK_EQ_INT(td_base64_encode(U8("\xFB\xFF"), 2, enc), 4);
    TD_CHECK_MEM_STR(enc, 4, "+/8=");
    TD_CHECK_EQ_INT(td_base64_decode("-_8", 3, dec, sizeof(dec)), 2);
    TD_CHECK(dec[0] == 0xFB && dec[1] == 0xFF);
}

TD_TEST(base64_rejects_bad_input)
{
    uint8_t dec[16];
    static const char *bad[] = {
        "Z",        /* a single leftover character carries no whole byte */
        "Zg=",      /* padding that does not complete the quantum */
        "Zg===",    /* too much padding */
        "====",     /* only padding */
        "Zm9=v",    /* data after padding */
        "Zg==Zg==", /* padding in the middle */
        "Zh==",     /* non-canonical: unused bits set */
        "Zm9=",     /* non-canonical */
        "Zm9v!",    /* not in either alphabet */
        "Zm 9v",    /* whitespace */
        "Zm9\x80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        TD_CHECK_EQ_INT(td_base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), TD_EPROTO);
    /* Output that does not fit is TD_ELIMIT, not a partial result. */
    TD_CHECK_EQ_INT(td_base64_decode("Zm9vYmFy", 8, dec, 5), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_base64_decode("Zm9vYmFy", 8, dec, 6), 6);
    TD_CHECK_EQ_INT(td_base64_decode("", 0, NULL, 0), 0);
}
