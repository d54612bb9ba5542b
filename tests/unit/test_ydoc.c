/*
 * test_ydoc.c - the Yjs document engine: integration order, conflicts, pending data, GC and
 * merging, validation, limits, local edits, and byte-exact output against vectors produced
 * by yjs 13.6.33 (research/yjs.md section 1.7 and scripts run here).
 */
#include "crdt/td_ydoc.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_err.h"
#include "td_test.h"

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        while (*h == ' ')
            h++;
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static bool buf_is_hex(const struct td_buf *b, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want);
    return b->len == n && memcmp(b->data, want, n) == 0;
}

static void text_of(struct td_ydoc *d, const char *root, struct td_buf *out)
{
    td_buf_reset(out);
    td_ydoc_text(d, root, out);
}

static void json_of(struct td_ydoc *d, struct td_buf *out)
{
    td_buf_reset(out);
    td_ydoc_json(d, NULL, NULL, 0, out);
}

static int apply_buf(struct td_ydoc *d, const struct td_buf *u)
{
    return td_ydoc_apply(d, u->data, u->len, 1, NULL);
}

TD_TEST(ydoc_yjs_vectors_text)
{
    struct td_ydoc *d = td_ydoc_new(1);
    struct td_buf u, s;
    td_buf_init(&u);
    td_buf_init(&s);
    td_ydoc_begin(d);
    TD_CHECK_EQ_INT(td_ydoc_text_insert(d, "t", 0, "abc", 3), 0);
    td_ydoc_commit(d, &u, 1);
    TD_CHECK(buf_is_hex(&u, "01010100040101740361626300"));
    td_buf_reset(&u);
    td_ydoc_begin(d);
    td_ydoc_text_insert(d, "t", 1, "X", 1);
    td_ydoc_commit(d, &u, 1);
    TD_CHECK(buf_is_hex(&u, "01010103c401000101015800"));
    td_buf_reset(&u);
    td_ydoc_begin(d);
    td_ydoc_text_delete(d, "t", 0, 1);
    td_ydoc_commit(d, &u, 1);
    TD_CHECK(buf_is_hex(&u, "000101010001"));
    TD_CHECK_EQ_INT(td_ydoc_encode_state(d, NULL, 1, &s), 0);
    TD_CHECK(buf_is_hex(&s, "010301000101017401840100026263c4010001010158010101 0001"));
    td_buf_reset(&s);
    td_ydoc_encode_sv(d, &s);
    TD_CHECK(buf_is_hex(&s, "010104"));
    td_buf_reset(&s);
    text_of(d, "t", &s);
    TD_CHECK_MEM_STR(s.data, s.len, "Xbc");
    td_buf_free(&u);
    td_buf_free(&s);
    td_ydoc_del(d);
}

TD_TEST(ydoc_yjs_vectors_map)
{
    struct td_ydoc *d = td_ydoc_new(2);
    struct td_buf u, j;
    td_buf_init(&u);
    td_buf_init(&j);
    td_ydoc_begin(d);
    TD_CHECK_EQ_INT(td_ydoc_map_set(d, "m", "k", "1", 1), 0);
    td_ydoc_commit(d, &u, 1);
    TD_CHECK(buf_is_hex(&u, "010102002801016d016b017d0100"));
    /* overwrite: origin = old value, no parent written, DS deletes the old value */
    td_buf_reset(&u);
    td_ydoc_begin(d);
    td_ydoc_map_set(d, "m", "k", "2", 1);
    td_ydoc_commit(d, &u, 1);
    TD_CHECK(buf_is_hex(&u, "01010201a8020001 7d02 0102010001"));
    json_of(d, &j);
    TD_CHECK_MEM_STR(j.data, j.len, "{\"m\":{\"k\":2}}");
    td_buf_free(&u);
    td_buf_free(&j);
    td_ydoc_del(d);
}

TD_TEST(ydoc_concurrent_insert_tiebreak)
{
    struct td_ydoc *a = td_ydoc_new(1), *b = td_ydoc_new(2);
    struct td_buf ua, ub, t;
    td_buf_init(&ua);
    td_buf_init(&ub);
    td_buf_init(&t);
    td_ydoc_begin(a);
    td_ydoc_text_insert(a, "text", 0, "A", 1);
    td_ydoc_commit(a, &ua, 1);
    td_ydoc_begin(b);
    td_ydoc_text_insert(b, "text", 0, "B", 1);
    td_ydoc_commit(b, &ub, 1);
    TD_CHECK_EQ_INT(apply_buf(a, &ub), 0);
    TD_CHECK_EQ_INT(apply_buf(b, &ua), 0);
    text_of(a, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "AB");
    text_of(b, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "AB");
    td_buf_free(&ua);
    td_buf_free(&ub);
    td_buf_free(&t);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_map_concurrent_overwrite)
{
    struct td_ydoc *a = td_ydoc_new(1), *b = td_ydoc_new(2);
    struct td_buf ua, ub, ja, jb;
    td_buf_init(&ua);
    td_buf_init(&ub);
    td_buf_init(&ja);
    td_buf_init(&jb);
    td_ydoc_begin(a);
    td_ydoc_map_set(a, "m", "k", "\"from1\"", 7);
    td_ydoc_commit(a, &ua, 1);
    td_ydoc_begin(b);
    td_ydoc_map_set(b, "m", "k", "\"from2\"", 7);
    td_ydoc_commit(b, &ub, 1);
    apply_buf(a, &ub);
    apply_buf(b, &ua);
    json_of(a, &ja);
    json_of(b, &jb);
    TD_CHECK_MEM_STR(ja.data, ja.len, "{\"m\":{\"k\":\"from2\"}}");
    TD_CHECK_MEM_STR(jb.data, jb.len, "{\"m\":{\"k\":\"from2\"}}");
    struct td_ydoc_stats st;
    td_ydoc_stats(a, &st);
    TD_CHECK_EQ_INT(st.deleted_items, 1); /* the losing value is deleted */
    td_buf_free(&ua);
    td_buf_free(&ub);
    td_buf_free(&ja);
    td_buf_free(&jb);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_out_of_order_pending)
{
    struct td_ydoc *a = td_ydoc_new(7), *b = td_ydoc_new(8);
    struct td_buf u[3], t, sa, sb;
    td_buf_init(&t);
    td_buf_init(&sa);
    td_buf_init(&sb);
    const char *parts[3] = {"ab", "cd", "ef"};
    for (int i = 0; i < 3; i++) {
        td_buf_init(&u[i]);
        td_ydoc_begin(a);
        td_ydoc_text_insert(a, "text", (uint64_t)(2 * i), parts[i], 2);
        td_ydoc_commit(a, &u[i], 1);
    }
    TD_CHECK_EQ_INT(apply_buf(b, &u[2]), 0);
    TD_CHECK_EQ_INT(apply_buf(b, &u[1]), 0);
    struct td_ydoc_stats st;
    td_ydoc_stats(b, &st);
    TD_CHECK_EQ_INT(st.pending_structs, 2);
    TD_CHECK_EQ_INT(st.structs, 0);
    /* the full state of a document with pending structs carries them (as yjs does) */
    td_ydoc_encode_state(b, NULL, 1, &sb);
    TD_CHECK(sb.len > 4);
    TD_CHECK_EQ_INT(apply_buf(b, &u[0]), 0);
    td_ydoc_stats(b, &st);
    TD_CHECK_EQ_INT(st.pending_structs, 0);
    text_of(b, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "abcdef");
    td_buf_reset(&sb);
    td_ydoc_encode_state(a, NULL, 1, &sa);
    td_ydoc_encode_state(b, NULL, 1, &sb);
    TD_CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    TD_CHECK_EQ_INT(st.structs, 1); /* merged back into one struct */
    for (int i = 0; i < 3; i++)
        td_buf_free(&u[i]);
    td_buf_free(&t);
    td_buf_free(&sa);
    td_buf_free(&sb);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_pending_delete_and_duplicates)
{
    struct td_ydoc *a = td_ydoc_new(3), *b = td_ydoc_new(4);
    struct td_buf ins, del, t, out;
    td_buf_init(&ins);
    td_buf_init(&del);
    td_buf_init(&t);
    td_buf_init(&out);
    td_ydoc_begin(a);
    td_ydoc_text_insert(a, "text", 0, "hello", 5);
    td_ydoc_commit(a, &ins, 1);
    td_ydoc_begin(a);
    td_ydoc_text_delete(a, "text", 1, 3);
    td_ydoc_commit(a, &del, 1);
    TD_CHECK_EQ_INT(apply_buf(b, &del), 0);
    struct td_ydoc_stats st;
    td_ydoc_stats(b, &st);
    TD_CHECK_EQ_INT(st.pending_deletes, 1);
    TD_CHECK_EQ_INT(td_ydoc_apply(b, ins.data, ins.len, 1, &out), 0);
    TD_CHECK(out.len > 0);
    text_of(b, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "ho");
    td_ydoc_stats(b, &st);
    TD_CHECK_EQ_INT(st.pending_deletes, 0);
    /* duplicates change nothing and emit nothing */
    td_buf_reset(&out);
    TD_CHECK_EQ_INT(td_ydoc_apply(b, ins.data, ins.len, 1, &out), 0);
    TD_CHECK_EQ_INT(td_ydoc_apply(b, del.data, del.len, 1, &out), 0);
    TD_CHECK_EQ_INT(out.len, 0);
    text_of(b, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "ho");
    td_buf_free(&ins);
    td_buf_free(&del);
    td_buf_free(&t);
    td_buf_free(&out);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_nested_type_delete_gc)
{
    /* yjs (gc:false): m.set('s', new Y.Map()); s.set('a','x'); m.delete('s') */
    uint8_t in[64], want[64];
    size_t n = unhex("010209002701016d017301280009000161017701780109010002", in);
    size_t wn = unhex("010209002101016d01730100010109010002", want);
    struct td_ydoc *d = td_ydoc_new(1);
    TD_CHECK_EQ_INT(td_ydoc_apply(d, in, n, 1, NULL), 0);
    struct td_buf s;
    td_buf_init(&s);
    td_ydoc_encode_state(d, NULL, 1, &s);
    TD_CHECK(s.len == wn && memcmp(s.data, want, wn) == 0);
    struct td_ydoc_stats st;
    td_ydoc_stats(d, &st);
    TD_CHECK_EQ_INT(st.gc_structs, 1);
    td_buf_reset(&s);
    json_of(d, &s);
    TD_CHECK_MEM_STR(s.data, s.len, "{\"m\":{}}");
    td_buf_free(&s);
    td_ydoc_del(d);
}

TD_TEST(ydoc_nested_cascading_delete)
{
    /* the same doc without the delete: a nested map, then delete the key locally */
    uint8_t in[64];
    size_t n = unhex("010209002701016d0173012800090001610177017800", in);
    struct td_ydoc *d = td_ydoc_new(5);
    TD_REQUIRE(td_ydoc_apply(d, in, n, 1, NULL) == 0);
    struct td_buf s;
    td_buf_init(&s);
    json_of(d, &s);
    TD_CHECK_MEM_STR(s.data, s.len, "{\"m\":{\"s\":{\"a\":\"x\"}}}");
    td_buf_reset(&s);
    td_ydoc_begin(d);
    td_ydoc_map_delete(d, "m", "s");
    td_ydoc_commit(d, &s, 1);
    TD_CHECK(buf_is_hex(&s, "00 0109010002")); /* the type and its child */
    struct td_ydoc_stats st;
    td_ydoc_stats(d, &st);
    TD_CHECK_EQ_INT(st.gc_structs, 1);
    TD_CHECK_EQ_INT(st.deleted_items, 1);
    td_buf_free(&s);
    td_ydoc_del(d);
}

TD_TEST(ydoc_struct_merging_bound)
{
    struct td_ydoc *d = td_ydoc_new(1);
    for (int i = 0; i < 10000; i++)
        TD_REQUIRE(td_ydoc_text_insert(d, "text", (uint64_t)i, "x", 1) == 0);
    struct td_ydoc_stats st;
    td_ydoc_stats(d, &st);
    TD_CHECK_EQ_INT(st.structs, 1);
    /* delete every other char in one run, then all: everything collapses again */
    for (int i = 0; i < 5000; i++)
        td_ydoc_text_delete(d, "text", (uint64_t)i, 1);
    td_ydoc_text_delete(d, "text", 0, 5000);
    td_ydoc_stats(d, &st);
    TD_CHECK_EQ_INT(st.structs, 1);
    TD_CHECK_EQ_INT(td_ydoc_text_length(d, "text"), 0);
    td_ydoc_del(d);
}

TD_TEST(ydoc_malformed_leaves_doc_unchanged)
{
    struct td_ydoc *a = td_ydoc_new(1), *b = td_ydoc_new(2);
    struct td_buf u1, u2, before, after;
    td_buf_init(&u1);
    td_buf_init(&u2);
    td_buf_init(&before);
    td_buf_init(&after);
    td_ydoc_begin(a);
    td_ydoc_text_insert(a, "text", 0, "abc", 3);
    td_ydoc_commit(a, &u1, 1);
    td_ydoc_begin(a);
    td_ydoc_text_insert(a, "text", 1, "XYZ", 3);
    td_ydoc_text_delete(a, "text", 0, 1);
    td_ydoc_commit(a, &u2, 1);
    TD_REQUIRE(apply_buf(b, &u1) == 0);
    td_ydoc_encode_state(b, NULL, 1, &before);
    for (size_t cut = 1; cut < u2.len; cut++)
        TD_CHECK(td_ydoc_apply(b, u2.data, cut, 1, NULL) < 0);
    /* origin pointing at the struct itself: inconsistent */
    uint8_t bad[64];
    size_t n = unhex("01010103c40103010201015800", bad);
    TD_CHECK_EQ_INT(td_ydoc_apply(b, bad, n, 1, NULL), TD_EPROTO);
    /* a clock beyond uint32 */
    n = unhex("010101ffffffff0f04010174016100", bad);
    TD_CHECK_EQ_INT(td_ydoc_apply(b, bad, n, 1, NULL), TD_ELIMIT);
    td_ydoc_encode_state(b, NULL, 1, &after);
    TD_CHECK(before.len == after.len && memcmp(before.data, after.data, after.len) == 0);
    TD_CHECK_EQ_INT(apply_buf(b, &u2), 0);
    td_buf_reset(&after);
    text_of(b, "text", &after);
    TD_CHECK_MEM_STR(after.data, after.len, "XYZbc");
    td_buf_free(&u1);
    td_buf_free(&u2);
    td_buf_free(&before);
    td_buf_free(&after);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_limits)
{
    struct td_ydoc *a = td_ydoc_new(1), *b = td_ydoc_new(2);
    struct td_buf u;
    td_buf_init(&u);
    td_ydoc_begin(a);
    td_ydoc_text_insert(a, "text", 0, "hello world", 11);
    td_ydoc_commit(a, &u, 1);
    struct td_ydoc_limits lim = {.max_update_bytes = 8};
    td_ydoc_set_limits(b, &lim);
    TD_CHECK_EQ_INT(apply_buf(b, &u), TD_ELIMIT);
    lim = (struct td_ydoc_limits){.max_update_bytes = 1024, .max_structs = 2};
    td_ydoc_set_limits(b, &lim);
    TD_CHECK_EQ_INT(apply_buf(b, &u), TD_ELIMIT);
    struct td_ydoc_stats st;
    td_ydoc_stats(b, &st);
    TD_CHECK_EQ_INT(st.structs, 0);
    lim.max_structs = 100;
    td_ydoc_set_limits(b, &lim);
    TD_CHECK_EQ_INT(apply_buf(b, &u), 0);
    td_buf_free(&u);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_local_edits_replicate)
{
    struct td_ydoc *a = td_ydoc_new(11), *b = td_ydoc_new(12);
    struct td_buf u, ja, jb;
    td_buf_init(&u);
    td_buf_init(&ja);
    td_buf_init(&jb);
    static const char *arr = "[1, 2147483648, 0.5, \"s\", null, true, {\"o\": [1]}]";
    for (int step = 0; step < 8; step++) {
        td_buf_reset(&u);
        td_ydoc_begin(a);
        switch (step) {
        case 0:
            td_ydoc_text_insert(a, "t", 0, "hello", 5);
            break;
        case 1:
            td_ydoc_text_insert(a, "t", 5, " world", 6);
            td_ydoc_text_delete(a, "t", 0, 1);
            break;
        case 2:
            td_ydoc_map_set(a, "m", "x", "{\"a\":1}", 7);
            break;
        case 3:
            td_ydoc_map_set(a, "m", "y", "[1,2]", 5);
            td_ydoc_map_delete(a, "m", "x");
            break;
        case 4:
            td_ydoc_array_insert(a, "a", 0, arr, strlen(arr));
            break;
        case 5:
            td_ydoc_array_delete(a, "a", 1, 2);
            break;
        case 6:
            td_ydoc_array_insert(a, "a", 2, "[\"mid\"]", 7);
            break;
        default:
            td_ydoc_text_insert(a, "t", 3, "--", 2);
            break;
        }
        TD_CHECK_EQ_INT(td_ydoc_commit(a, &u, 1), 0);
        TD_CHECK(u.len > 0);
        TD_CHECK_EQ_INT(apply_buf(b, &u), 0);
    }
    json_of(a, &ja);
    json_of(b, &jb);
    TD_CHECK_MEM_STR(ja.data, ja.len,
                     "{\"a\":[1,\"s\",\"mid\",null,true,{\"o\":[1]}],\"m\":{\"y\":[1,2]},"
                     "\"t\":\"ell--o world\"}");
    TD_CHECK(ja.len == jb.len && memcmp(ja.data, jb.data, ja.len) == 0);
    td_buf_free(&u);
    td_buf_free(&ja);
    td_buf_free(&jb);
    td_ydoc_del(a);
    td_ydoc_del(b);
}

TD_TEST(ydoc_utf16_astral)
{
    struct td_ydoc *d = td_ydoc_new(1);
    struct td_buf t, s;
    td_buf_init(&t);
    td_buf_init(&s);
    TD_CHECK_EQ_INT(td_ydoc_text_insert(d, "text", 0,
                                        "a\xf0\x9f\x98\x80"
                                        "b",
                                        6),
                    0);
    TD_CHECK_EQ_INT(td_ydoc_text_length(d, "text"), 4);
    td_ydoc_encode_sv(d, &s);
    TD_CHECK(buf_is_hex(&s, "010104"));
    uint64_t u16 = 0;
    TD_CHECK_EQ_INT(td_ydoc_text_utf16_index(d, "text", 2, false, &u16), 0);
    TD_CHECK_EQ_INT(u16, 3);
    TD_CHECK_EQ_INT(td_ydoc_text_utf16_index(d, "text", 5, true, &u16), 0);
    TD_CHECK_EQ_INT(u16, 3);
    /* inserting between the surrogates turns both halves into U+FFFD, as yjs does */
    TD_CHECK_EQ_INT(td_ydoc_text_insert(d, "text", 2, "X", 1), 0);
    text_of(d, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len,
                     "a\xef\xbf\xbdX\xef\xbf\xbd"
                     "b");
    TD_CHECK_EQ_INT(td_ydoc_text_delete(d, "text", 1, 3), 0);
    text_of(d, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "ab");
    TD_CHECK_EQ_INT(td_ydoc_text_insert(d, "text", 9, "x", 1), TD_EINVAL);
    TD_CHECK_EQ_INT(td_ydoc_text_insert(d, "text", 0, "\xff", 1), TD_EUTF8);
    td_buf_free(&t);
    td_buf_free(&s);
    td_ydoc_del(d);
}

TD_TEST(ydoc_diff_against_state_vector)
{
    struct td_ydoc *a = td_ydoc_new(1), *b = td_ydoc_new(2);
    td_ydoc_text_insert(a, "text", 0, "abc", 3);
    struct td_buf s, diff, t;
    td_buf_init(&s);
    td_buf_init(&diff);
    td_buf_init(&t);
    td_ydoc_encode_state(a, NULL, 2, &s);
    TD_CHECK_EQ_INT(td_ydoc_apply(b, s.data, s.len, 2, NULL), 0);
    td_ydoc_text_insert(a, "text", 3, "def", 3);
    struct td_ysv sv;
    td_ysv_init(&sv);
    td_ydoc_state_vector(b, &sv);
    td_ydoc_encode_state(a, &sv, 1, &diff);
    /* written with an offset: the first struct starts at clock 3 with origin (1,2) */
    TD_CHECK(buf_is_hex(&diff, "01010103840102036465 6600"));
    TD_CHECK_EQ_INT(td_ydoc_apply(b, diff.data, diff.len, 1, NULL), 0);
    text_of(b, "text", &t);
    TD_CHECK_MEM_STR(t.data, t.len, "abcdef");
    td_ysv_free(&sv);
    td_buf_free(&s);
    td_buf_free(&diff);
    td_buf_free(&t);
    td_ydoc_del(a);
    td_ydoc_del(b);
}
