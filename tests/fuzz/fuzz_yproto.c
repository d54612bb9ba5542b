/*
 * fuzz_yproto.c - y-protocols messages: decoding never crashes, and whatever decodes
 * re-encodes to the same bytes (sync, awareness entries, auth, query-awareness).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "proto/td_yproto.h"

static void check_awareness(const uint8_t *p, size_t n)
{
    struct td_yaware_iter it;
    uint64_t count;
    if (td_yproto_aware_begin(&it, p, n, &count) != 0)
        return;
    struct td_yaware_entry *e = calloc(count ? count : 1, sizeof(*e));
    size_t got = 0;
    int rv;
    while ((rv = td_yproto_aware_next(&it, &e[got])) == 1) {
        if (got >= count)
            abort();
        got++;
    }
    if (rv == 0) {
        if (got != count)
            abort();
        if (td_yproto_aware_check(p, n) != 0)
            abort();
        /* Re-encoding parses back to the same entries (state text may be normalised only
         * for removals written with whitespace). */
        struct td_buf b;
        td_buf_init(&b);
        td_yproto_aware_encode(&b, e, got);
        struct td_yaware_iter it2;
        uint64_t c2;
        if (td_yproto_aware_begin(&it2, b.data, b.len, &c2) != 0 || c2 != count)
            abort();
        for (size_t i = 0; i < got; i++) {
            struct td_yaware_entry x;
            if (td_yproto_aware_next(&it2, &x) != 1 || x.client_id != e[i].client_id ||
                x.clock != e[i].clock || x.removed != e[i].removed)
                abort();
            if (!x.removed &&
                (x.state.len != e[i].state.len || memcmp(x.state.p, e[i].state.p, x.state.len)))
                abort();
        }
        td_buf_free(&b);
    }
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_yproto_msg m;
    if (td_yproto_decode(data, size, 1 << 20, &m) != 0)
        return 0;
    struct td_buf b;
    td_buf_init(&b);
    switch (m.type) {
    case TD_YPROTO_SYNC:
        td_yproto_write_sync(&b, m.subtype, m.payload.p, m.payload.len);
        break;
    case TD_YPROTO_AWARENESS:
        td_yproto_write_awareness(&b, m.payload.p, m.payload.len);
        check_awareness(m.payload.p, m.payload.len);
        break;
    case TD_YPROTO_QUERY_AWARENESS:
        td_yproto_write_query_awareness(&b);
        break;
    default:
        td_buf_free(&b);
        return 0;
    }
    /* lib0 varUints may carry redundant continuation bytes, so compare re-decoded fields. */
    struct td_yproto_msg m2;
    if (td_yproto_decode(b.data, b.len, 0, &m2) != 0 || m2.type != m.type ||
        m2.subtype != m.subtype || m2.payload.len != m.payload.len ||
        (m.payload.len && memcmp(m2.payload.p, m.payload.p, m.payload.len) != 0))
        abort();
    td_buf_free(&b);
    return 0;
}
