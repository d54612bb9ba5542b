/*
 * Fuzz target for the /static/ path validator (td_static_path_decode) and the content type
 * lookup.
 *
 * Invariants checked (abort() on violation):
 *   - the return code is a length in 1..TD_STATIC_MAX_PATH or TD_EPROTO or TD_ELIMIT, and the
 *     output buffer is untouched on failure;
 *   - on success the output is a C string of the returned length that obeys every rule the
 *     header promises: relative, no empty component, no component starting with '.', no
 *     control byte, no backslash;
 *   - the result is a fixed point: decoding it again (when it holds no '%') gives itself,
 *     and an input without '%' is either refused or accepted unchanged;
 *   - a smaller output buffer gives TD_ELIMIT, never a truncated success;
 *   - td_static_content_type returns one of its known strings.
 */
#include <stdlib.h>
#include <string.h>

#include "core/td_err.h"
#include "http/td_static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_rules(const char *s, size_t n)
{
    check(n > 0 && s[0] != '/' && s[n - 1] != '/');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        check(c >= 0x20 && c != 0x7f && c != '\\');
        if (i == start)
            check(c != '.' && c != '/');
        if (c == '/')
            start = i + 1;
    }
}

static void check_ctype(const char *name)
{
    const char *t = td_static_content_type(name);
    static const char *known[] = {"text/html; charset=utf-8", "text/javascript; charset=utf-8",
                                  "text/css; charset=utf-8",  "application/json",
                                  "application/wasm",         "text/plain; charset=utf-8",
                                  "application/octet-stream"};
    int found = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        found |= t != NULL && strcmp(t, known[i]) == 0;
    check(found);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    static char out[TD_STATIC_MAX_PATH + 1];
    static char again[TD_STATIC_MAX_PATH + 1];
    memset(out, 0x5a, sizeof(out));
    int rv = td_static_path_decode(p, size, out, sizeof(out));
    if (rv < 0) {
        check(rv == TD_EPROTO || rv == TD_ELIMIT);
        for (size_t i = 0; i < sizeof(out); i++)
            check(out[i] == 0x5a);
        return 0;
    }
    size_t n = (size_t)rv;
    check(n >= 1 && n <= TD_STATIC_MAX_PATH && n <= size && out[n] == '\0' && strlen(out) == n);
    check_rules(out, n);
    if (memchr(data, '%', size) == NULL)
        check(n == size && memcmp(out, data, n) == 0);
    if (memchr(out, '%', n) == NULL) {
        int rv2 = td_static_path_decode(out, n, again, sizeof(again));
        check(rv2 == rv && memcmp(again, out, n + 1) == 0);
    }
    /* a buffer one byte too small for the NUL is refused, not truncated */
    memset(again, 0x5a, sizeof(again));
    check(td_static_path_decode(p, size, again, n) == TD_ELIMIT);
    check(again[0] == 0x5a);
    check_ctype(out);
    return 0;
}
