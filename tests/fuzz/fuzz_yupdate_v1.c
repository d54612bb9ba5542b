/*
 * fuzz_yupdate_v1: decode an update v1; when it decodes, encode, decode again and encode again:
 * the two encodings must be identical (decode normalises once, then it is a fixed point), and
 * the update-level operations must not crash on it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/td_yupdate.h"

#define VERSION 1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_yupdate u, u2;
    struct td_buf e1, e2, tmp;
    td_yupdate_init(&u);
    if (td_yupdate_decode(&u, data, size, VERSION) != 0)
        return 0;
    td_buf_init(&e1);
    td_buf_init(&e2);
    td_buf_init(&tmp);
    if (td_yupdate_encode(&u, VERSION, &e1) != 0)
        abort();
    td_yupdate_init(&u2);
    if (td_yupdate_decode(&u2, e1.data, e1.len, VERSION) != 0)
        abort();
    if (td_yupdate_encode(&u2, VERSION, &e2) != 0)
        abort();
    if (e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0)
        abort();
    if (u.nstructs != u2.nstructs || u.nds != u2.nds)
        abort();

    /* slices of every struct at every offset must work for splittable kinds */
    for (size_t i = 0; i < u.nstructs && i < 64; i++) {
        const struct td_ystruct *s = &u.structs[i];
        struct td_ystruct a, b;
        for (uint64_t off = 1; off < s->len && off < 16; off++) {
            if (td_ystruct_slice(&u, s, 0, off, &a) != 0 ||
                td_ystruct_slice(&u, s, off, s->len - off, &b) != 0)
                abort();
            if (a.len + b.len != s->len || b.id.clock != s->id.clock + off)
                abort();
        }
    }

    /* update-level operations: no crash; the state vector and diff must succeed */
    struct td_ysv sv;
    td_ysv_init(&sv);
    if (td_yupdate_state_vector(data, size, VERSION, &sv) != 0)
        abort();
    if (td_yupdate_diff(data, size, VERSION, &sv, &tmp) != 0)
        abort();
    tmp.len = 0;
    (void)td_yupdate_convert(data, size, VERSION, 3 - VERSION, &tmp);
    td_ysv_free(&sv);
    td_buf_free(&tmp);
    td_buf_free(&e1);
    td_buf_free(&e2);
    td_yupdate_free(&u);
    td_yupdate_free(&u2);
    return 0;
}
