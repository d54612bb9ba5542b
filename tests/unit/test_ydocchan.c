/* Yjs documents over channels: validation and normalization of published updates. */
#include "core/td_base64.h"
#include "core/td_err.h"
#include "crdt/td_ydoc.h"
#include "engine/td_ydocchan.h"
#include "td_test.h"

#include <stdlib.h>

/* Makes a v1 update inserting text at index 0 of root "t" in a fresh doc of client `id`. */
static void make_update(uint64_t id, const char *text, struct td_buf *out)
{
    struct td_ydoc *d = td_ydoc_new(id);
    td_ydoc_begin(d);
    td_ydoc_text_insert(d, "t", 0, text, strlen(text));
    td_ydoc_commit(d, out, 1);
    td_ydoc_del(d);
}

/* Wraps bytes as publication data of a JSON client: a JSON string of base64. */
static void as_json(const struct td_buf *bytes, struct td_buf *out)
{
    char *b64 = malloc(TD_BASE64_ENCODED_LEN(bytes->len) + 1);
    size_t n = td_base64_encode(bytes->data, bytes->len, b64);
    td_buf_append_byte(out, '"');
    td_buf_append(out, b64, n);
    td_buf_append_byte(out, '"');
    free(b64);
}

static struct td_str str_of(const struct td_buf *b)
{
    return (struct td_str){(const char *)b->data, b->len};
}

/* Reads root "t" of doc as text into a static buffer. */
static const char *text_of(const struct td_ydoc *d)
{
    static char buf[256];
    struct td_buf b;
    td_buf_init(&b);
    if (td_ydoc_text(d, "t", &b) != 0)
        b.len = 0;
    size_t n = b.len < sizeof(buf) - 1 ? b.len : sizeof(buf) - 1;
    memcpy(buf, b.data, n);
    buf[n] = '\0';
    td_buf_free(&b);
    return buf;
}

/* What the server does with a channel publication: decode, apply (the room's job), and
 * publish the normalized update in the channel's wire form. */
static int apply_pub(struct td_ydoc *doc, struct td_str data, struct td_buf *out)
{
    struct td_buf update, norm;
    td_buf_init(&update);
    td_buf_init(&norm);
    int rv = td_ydocchan_decode(data, &update);
    if (rv == 0)
        rv = td_ydoc_apply(doc, update.data, update.len, 1, &norm);
    if (rv == 0 && norm.len > 0)
        td_ydocchan_encode(norm.data, norm.len, out);
    td_buf_free(&update);
    td_buf_free(&norm);
    return rv == TD_ELIMIT ? TD_ELIMIT : rv == 0 ? 0 : TD_EPROTO;
}

TD_TEST(ydocchan_valid_update_normalized)
{
    struct td_buf upd, data, out, decoded;
    td_buf_init(&upd);
    td_buf_init(&data);
    td_buf_init(&out);
    td_buf_init(&decoded);
    make_update(7, "hello", &upd);
    as_json(&upd, &data);
    struct td_ydoc *srv = td_ydoc_new(0);
    TD_REQUIRE(apply_pub(srv, str_of(&data), &out) == 0);
    TD_CHECK_EQ_INT(strcmp(text_of(srv), "hello"), 0);
    /* The output is a JSON string of base64 that another doc can apply. */
    TD_REQUIRE(out.len > 2 && out.data[0] == '"' && out.data[out.len - 1] == '"');
    TD_REQUIRE(td_ydocchan_decode(str_of(&out), &decoded) == 0);
    struct td_ydoc *peer = td_ydoc_new(9);
    TD_CHECK(td_ydoc_apply(peer, decoded.data, decoded.len, 1, NULL) == 0);
    TD_CHECK_EQ_INT(strcmp(text_of(peer), "hello"), 0);
    td_ydoc_del(peer);
    td_ydoc_del(srv);
    td_buf_free(&upd);
    td_buf_free(&data);
    td_buf_free(&out);
    td_buf_free(&decoded);
}

TD_TEST(ydocchan_raw_bytes_and_duplicate)
{
    struct td_buf upd, out, data;
    td_buf_init(&upd);
    td_buf_init(&out);
    td_buf_init(&data);
    make_update(3, "abc", &upd);
    struct td_ydoc *srv = td_ydoc_new(0);
    /* Raw update bytes (protobuf clients) are accepted as well. */
    TD_REQUIRE(apply_pub(srv, str_of(&upd), &out) == 0);
    TD_CHECK(out.len > 0);
    /* The same update again changes nothing: nothing to publish, in either form. */
    size_t before = out.len;
    TD_CHECK(apply_pub(srv, str_of(&upd), &out) == 0);
    TD_CHECK_EQ_INT(out.len, before);
    as_json(&upd, &data);
    TD_CHECK(apply_pub(srv, str_of(&data), &out) == 0);
    TD_CHECK_EQ_INT(out.len, before);
    TD_CHECK_EQ_INT(strcmp(text_of(srv), "abc"), 0);
    td_ydoc_del(srv);
    td_buf_free(&upd);
    td_buf_free(&out);
    td_buf_free(&data);
}

TD_TEST(ydocchan_invalid_rejected_doc_unchanged)
{
    struct td_buf upd, out, sv0, sv1;
    td_buf_init(&upd);
    td_buf_init(&out);
    td_buf_init(&sv0);
    td_buf_init(&sv1);
    make_update(5, "keep", &upd);
    struct td_ydoc *srv = td_ydoc_new(0);
    TD_REQUIRE(td_ydoc_apply(srv, upd.data, upd.len, 1, NULL) == 0);
    td_ydoc_encode_sv(srv, &sv0);
    /* A truncated update, raw garbage, JSON that is not a string, a string not base64. */
    const struct td_str bad[] = {
        {(const char *)upd.data, upd.len - 1},
        {"\x01\x02\xff\xff\xff", 5},
        {"{\"a\":1}", 7},
        {"\"not base64!\"", 13},
        {"42", 2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        TD_CHECK(apply_pub(srv, bad[i], &out) == TD_EPROTO);
    TD_CHECK_EQ_INT(out.len, 0);
    td_ydoc_encode_sv(srv, &sv1);
    TD_CHECK(sv0.len == sv1.len && memcmp(sv0.data, sv1.data, sv0.len) == 0);
    TD_CHECK_EQ_INT(strcmp(text_of(srv), "keep"), 0);
    td_ydoc_del(srv);
    td_buf_free(&upd);
    td_buf_free(&out);
    td_buf_free(&sv0);
    td_buf_free(&sv1);
}

TD_TEST(ydocchan_encode_round_trip)
{
    struct td_buf upd, out, back;
    td_buf_init(&upd);
    td_buf_init(&out);
    td_buf_init(&back);
    make_update(11, "x", &upd);
    td_buf_append_str(&out, "prefix");
    td_ydocchan_encode(upd.data, upd.len, &out);
    /* appended after what was there: a JSON string of standard padded base64 */
    TD_REQUIRE(out.len > 8 && memcmp(out.data, "prefix\"", 7) == 0);
    TD_CHECK(out.data[out.len - 1] == '"');
    TD_CHECK_EQ_INT((int)((out.len - 8) % 4), 0);
    struct td_str enc = {(const char *)out.data + 6, out.len - 6};
    TD_REQUIRE(td_ydocchan_decode(enc, &back) == 0);
    TD_CHECK(back.len == upd.len && memcmp(back.data, upd.data, upd.len) == 0);
    /* the empty update (00 00) encodes as "AAA=" */
    td_buf_reset(&out);
    static const uint8_t empty[] = {0, 0};
    td_ydocchan_encode(empty, 2, &out);
    TD_CHECK_MEM_STR((const char *)out.data, out.len, "\"AAA=\"");
    td_buf_free(&upd);
    td_buf_free(&out);
    td_buf_free(&back);
}
