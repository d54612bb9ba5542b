/*
 * Tests for td_yupdate: byte-exact round trips and update-level operations against vectors
 * produced by yjs itself (tests/crdt/vectors/gen_yupdate_vectors.js), plus hand-made cases.
 */
#include "crdt/td_yupdate.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_err.h"
#include "crdt/td_lib0.h"
#include "td_test.h"

struct yvec {
    const char *name;
    int kind; /* 0 round trip, 1 merge2, 2 diff, 3 state vector, 4 convert 1->2, 5 convert 2->1 */
    int version;
    const uint8_t *a;
    size_t alen;
    const uint8_t *b;
    size_t blen;
    const uint8_t *r;
    size_t rlen;
};

#include "../crdt/vectors/yupdate_vectors.inc"

static bool same(const struct td_buf *b, const uint8_t *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

static int run_vec(const struct yvec *v, struct td_buf *out)
{
    struct td_yupdate u;
    struct td_ysv sv;
    int rc;
    switch (v->kind) {
    case 0:
        td_yupdate_init(&u);
        rc = td_yupdate_decode(&u, v->a, v->alen, v->version);
        if (rc == 0)
            rc = td_yupdate_encode(&u, v->version, out);
        td_yupdate_free(&u);
        return rc;
    case 1: {
        const uint8_t *ups[2] = {v->a, v->b};
        size_t lens[2] = {v->alen, v->blen};
        return td_yupdate_merge(ups, lens, 2, v->version, out);
    }
    case 2:
        td_ysv_init(&sv);
        rc = td_ysv_decode(&sv, v->b, v->blen);
        if (rc == 0)
            rc = td_yupdate_diff(v->a, v->alen, v->version, &sv, out);
        td_ysv_free(&sv);
        return rc;
    case 3:
        td_ysv_init(&sv);
        rc = td_yupdate_state_vector(v->a, v->alen, v->version, &sv);
        if (rc == 0)
            td_ysv_encode(&sv, out);
        td_ysv_free(&sv);
        return rc;
    case 4:
        return td_yupdate_convert(v->a, v->alen, 1, 2, out);
    default:
        return td_yupdate_convert(v->a, v->alen, 2, 1, out);
    }
}

TD_TEST(yupdate_yjs_vectors)
{
    size_t n = sizeof(yvecs) / sizeof(yvecs[0]), bad = 0;
    for (size_t i = 0; i < n; i++) {
        const struct yvec *v = &yvecs[i];
        struct td_buf out;
        td_buf_init(&out);
        int rc = run_vec(v, &out);
        const uint8_t *want = v->kind == 0 ? v->a : v->r;
        size_t wlen = v->kind == 0 ? v->alen : v->rlen;
        if (rc != 0 || !same(&out, want, wlen)) {
            if (bad++ < 10)
                fprintf(stderr, "  vector %s (kind %d, v%d): rc=%d len %zu want %zu\n", v->name,
                        v->kind, v->version, rc, out.len, wlen);
        }
        td_buf_free(&out);
    }
    TD_CHECK_EQ_INT(bad, 0);
}

TD_TEST(yupdate_truncated_rejected)
{
    /* every strict prefix of a yjs update is malformed, and leaves the update empty */
    size_t n = sizeof(yvecs) / sizeof(yvecs[0]), bad = 0;
    for (size_t i = 0; i < n; i++) {
        const struct yvec *v = &yvecs[i];
        if (v->kind != 0)
            continue;
        for (size_t k = 0; k < v->alen; k++) {
            struct td_yupdate u;
            td_yupdate_init(&u);
            int rc = td_yupdate_decode(&u, v->a, k, v->version);
            if (rc == 0 || u.nstructs != 0 || u.nds != 0)
                bad++;
            td_yupdate_free(&u);
        }
    }
    TD_CHECK_EQ_INT(bad, 0);
}

TD_TEST(yupdate_rejects_malformed)
{
    struct td_yupdate u;
    /* client 1, "abc" in root "t", then the same with bad UTF-8, unknown content ref 11,
     * typeRef 7, parentInfo 2 and a zero-length GC */
    static const uint8_t ok[] = {1, 1, 1, 0, 4, 1, 1, 't', 3, 'a', 'b', 'c', 0};
    static const uint8_t utf[] = {1, 1, 1, 0, 4, 1, 1, 't', 3, 'a', 0xff, 'c', 0};
    static const uint8_t ref[] = {1, 1, 1, 0, 11, 1, 1, 't', 0};
    static const uint8_t typ[] = {1, 1, 1, 0, 7, 1, 1, 't', 7, 0};
    static const uint8_t par[] = {1, 1, 1, 0, 4, 2, 1, 't', 3, 'a', 'b', 'c', 0};
    static const uint8_t gc0[] = {1, 1, 1, 0, 0, 0, 0};
    static const uint8_t many[] = {1, 0x80, 0x80, 0x04, 1, 0, 0}; /* 65536 structs claimed */
    td_yupdate_init(&u);
    TD_CHECK_EQ_INT(td_yupdate_decode(&u, ok, sizeof(ok), 1), 0);
    TD_CHECK_EQ_INT(u.nstructs, 1);
    TD_CHECK_EQ_INT(u.structs[0].len, 3);
    TD_CHECK_MEM_STR(u.structs[0].parent_name.p, u.structs[0].parent_name.len, "t");
    td_yupdate_free(&u);
    const uint8_t *bad[] = {utf, ref, typ, par, gc0, many};
    size_t lens[] = {sizeof(utf), sizeof(ref), sizeof(typ), sizeof(par), sizeof(gc0), sizeof(many)};
    for (size_t i = 0; i < 6; i++) {
        td_yupdate_init(&u);
        TD_CHECK_EQ_INT(td_yupdate_decode(&u, bad[i], lens[i], 1), TD_EPROTO);
        TD_CHECK_EQ_INT(u.nstructs, 0);
        td_yupdate_free(&u);
    }
    /* trailing bytes after a v1 update are ignored, as yjs does */
    static const uint8_t trail[] = {0, 0, 0xff, 0xff};
    td_yupdate_init(&u);
    TD_CHECK_EQ_INT(td_yupdate_decode(&u, trail, sizeof(trail), 1), 0);
    td_yupdate_free(&u);
}

TD_TEST(yupdate_slice_surrogates)
{
    struct td_yupdate u;
    struct td_ystruct s, a, b;
    td_yupdate_init(&u);
    memset(&s, 0, sizeof(s));
    s.id.client = 5;
    s.id.clock = 10;
    s.kind = TD_YK_STRING;
    s.parent = TD_YP_ROOT;
    s.parent_name.p = (const uint8_t *)"t";
    s.parent_name.len = 1;
    s.data.p = (const uint8_t *)"a\xf0\x9f\x98\x80"
                                "b";
    s.data.len = 6;
    s.len = 4;
    /* split at 2 (inside the pair): both halves get U+FFFD, as ContentString.splice does */
    TD_REQUIRE(td_ystruct_slice(&u, &s, 0, 2, &a) == 0);
    TD_REQUIRE(td_ystruct_slice(&u, &s, 2, 2, &b) == 0);
    TD_CHECK_MEM_STR(a.data.p, a.data.len, "a\xef\xbf\xbd");
    TD_CHECK_MEM_STR(b.data.p, b.data.len,
                     "\xef\xbf\xbd"
                     "b");
    TD_CHECK(!(a.flags & TD_YS_HAS_ORIGIN));
    TD_CHECK(b.flags & TD_YS_HAS_ORIGIN);
    TD_CHECK(b.origin.client == 5 && b.origin.clock == 11 && b.id.clock == 12 && b.len == 2);
    /* a clean cut is a view, no copy */
    TD_REQUIRE(td_ystruct_slice(&u, &s, 3, 1, &b) == 0);
    TD_CHECK(b.data.p == s.data.p + 5 && b.data.len == 1);
    TD_CHECK_EQ_INT(td_ystruct_slice(&u, &s, 3, 2, &b), TD_EINVAL);
    /* Any values split by element */
    static const uint8_t anys[] = {0x7d, 0x01, 0x77, 0x01, 'x', 0x7e};
    s.kind = TD_YK_ANY;
    s.data.p = anys;
    s.data.len = sizeof(anys);
    s.len = 3;
    TD_REQUIRE(td_ystruct_slice(&u, &s, 1, 1, &b) == 0);
    TD_CHECK(b.data.p == anys + 2 && b.data.len == 3);
    /* length-1 kinds cannot split */
    s.kind = TD_YK_BINARY;
    s.len = 1;
    TD_CHECK_EQ_INT(td_ystruct_slice(&u, &s, 0, 1, &b), 0);
    s.kind = TD_YK_STRING;
    td_yupdate_free(&u);
}

TD_TEST(yupdate_encode_checks_runs)
{
    struct td_yupdate u;
    struct td_ystruct s;
    struct td_buf out;
    td_yupdate_init(&u);
    td_buf_init(&out);
    memset(&s, 0, sizeof(s));
    s.id.client = 3;
    s.kind = TD_YK_GC;
    s.len = 2;
    td_yupdate_add_run(&u, 3);
    td_yupdate_add_struct(&u, &s);
    s.id.clock = 2;
    td_yupdate_add_struct(&u, &s);
    td_yupdate_add_delete(&u, 3, 5, 1);
    td_yupdate_add_delete(&u, 3, 0, 2);
    td_yupdate_add_delete(&u, 3, 2, 1);
    td_yupdate_sort_ds(&u);
    TD_CHECK_EQ_INT(u.nds, 2);
    TD_CHECK(u.ds[0].clock == 0 && u.ds[0].len == 3);
    TD_CHECK_EQ_INT(td_yupdate_encode(&u, 1, &out), 0);
    static const uint8_t want[] = {1, 2, 3, 0, 0, 2, 0, 2, 1, 3, 2, 0, 3, 5, 1};
    TD_CHECK(same(&out, want, sizeof(want)));
    /* a clock gap inside a run is the caller's bug */
    u.structs[1].id.clock = 7;
    out.len = 0;
    TD_CHECK_EQ_INT(td_yupdate_encode(&u, 2, &out), TD_EINVAL);
    TD_CHECK_EQ_INT(out.len, 0);
    td_buf_free(&out);
    td_yupdate_free(&u);
}

TD_TEST(yupdate_state_vectors)
{
    struct td_ysv sv;
    struct td_buf out;
    td_ysv_init(&sv);
    td_buf_init(&out);
    td_ysv_set(&sv, 1, 4);
    td_ysv_set(&sv, 0xdeadbeef, 9);
    td_ysv_set(&sv, 7, 1);
    td_ysv_set(&sv, 7, 2);
    TD_CHECK_EQ_INT(td_ysv_get(&sv, 7), 2);
    TD_CHECK_EQ_INT(td_ysv_get(&sv, 8), 0);
    td_ysv_encode(&sv, &out);
    static const uint8_t want[] = {3, 0xef, 0xfd, 0xb6, 0xf5, 0x0d, 9, 7, 2, 1, 4};
    TD_CHECK(same(&out, want, sizeof(want)));
    struct td_ysv b;
    td_ysv_init(&b);
    TD_CHECK_EQ_INT(td_ysv_decode(&b, out.data, out.len), 0);
    TD_CHECK_EQ_INT(b.n, 3);
    TD_CHECK_EQ_INT(td_ysv_get(&b, 0xdeadbeef), 9);
    TD_CHECK_EQ_INT(td_ysv_decode(&b, out.data, out.len - 1), TD_EPROTO);
    TD_CHECK_EQ_INT(b.n, 3); /* unchanged on error */
    td_ysv_free(&b);
    td_ysv_free(&sv);
    td_buf_free(&out);
}

TD_TEST(yupdate_merge_edge_cases)
{
    /* yjs mergeUpdates([ins 'a', ins 'c']) with 'b' missing: a Skip fills the gap */
    static const uint8_t a[] = {1, 1, 1, 0, 4, 1, 1, 't', 1, 'a', 0};
    static const uint8_t c[] = {1, 1, 1, 2, 0x84, 1, 1, 1, 'c', 0};
    static const uint8_t want[] = {1,   3,    1, 0,    4, 1, 1, 't', 1,
                                   'a', 0x0a, 1, 0x84, 1, 1, 1, 'c', 0};
    const uint8_t *ups[2] = {a, c};
    size_t lens[2] = {sizeof(a), sizeof(c)};
    struct td_buf out;
    td_buf_init(&out);
    TD_CHECK_EQ_INT(td_yupdate_merge(ups, lens, 2, 1, &out), 0);
    TD_CHECK(same(&out, want, sizeof(want)));
    /* zero inputs give the empty update; one input is copied; a bad input fails cleanly */
    out.len = 0;
    TD_CHECK_EQ_INT(td_yupdate_merge(ups, lens, 0, 1, &out), 0);
    static const uint8_t empty[] = {0, 0};
    TD_CHECK(same(&out, empty, 2));
    out.len = 0;
    TD_CHECK_EQ_INT(td_yupdate_merge(ups, lens, 1, 1, &out), 0);
    TD_CHECK(same(&out, a, sizeof(a)));
    out.len = 0;
    lens[1] = 3;
    TD_CHECK_EQ_INT(td_yupdate_merge(ups, lens, 2, 1, &out), TD_EPROTO);
    TD_CHECK_EQ_INT(out.len, 0);
    /* state vector from an update that does not start at clock 0 is empty */
    struct td_ysv sv;
    td_ysv_init(&sv);
    TD_CHECK_EQ_INT(td_yupdate_state_vector(c, sizeof(c), 1, &sv), 0);
    TD_CHECK_EQ_INT(sv.n, 0);
    td_ysv_free(&sv);
    td_buf_free(&out);
}
