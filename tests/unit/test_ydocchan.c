/* Yjs documents over channels: validation and normalization of published updates. */
#include "config/td_config.h"
#include "core/td_base64.h"
#include "core/td_err.h"
#include "crdt/td_ydoc.h"
#include "engine/td_hub.h"
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
    TD_REQUIRE(td_ydocchan_apply(srv, str_of(&data), &out) == 0);
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
    TD_REQUIRE(td_ydocchan_apply(srv, str_of(&upd), &out) == 0);
    TD_CHECK(out.len > 0);
    /* The same update again changes nothing: nothing to publish, in either form. */
    size_t before = out.len;
    TD_CHECK(td_ydocchan_apply(srv, str_of(&upd), &out) == 0);
    TD_CHECK_EQ_INT(out.len, before);
    as_json(&upd, &data);
    TD_CHECK(td_ydocchan_apply(srv, str_of(&data), &out) == 0);
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
        TD_CHECK(td_ydocchan_apply(srv, bad[i], &out) == TD_EPROTO);
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

TD_TEST(ydocchan_doc_per_channel)
{
    struct td_config cfg;
    td_config_init(&cfg);
    struct td_ydoc *a = NULL, *b = NULL;
    struct td_buf upd, out;
    td_buf_init(&upd);
    td_buf_init(&out);
    make_update(11, "x", &upd);
    TD_CHECK(td_ydocchan_publish(&a, &cfg, (struct td_str){"[]", 2}, &out) == TD_EPROTO);
    TD_REQUIRE(td_ydocchan_publish(&a, &cfg, str_of(&upd), &out) == 0);
    TD_CHECK(out.len > 0);
    TD_REQUIRE(a != NULL); /* created on first use */
    TD_CHECK_EQ_INT(strcmp(text_of(a), "x"), 0);
    TD_CHECK(b == NULL); /* another channel, another document */
    td_ydocchan_restore(&b, &cfg, str_of(&out));
    TD_REQUIRE(b != NULL);
    TD_CHECK_EQ_INT(strcmp(text_of(b), "x"), 0);
    td_ydoc_del(a);
    td_ydoc_del(b);
    td_buf_free(&upd);
    td_buf_free(&out);
    td_config_free(&cfg);
}

/* Through the hub: a memory channel of a "yjs" namespace. */
TD_TEST(ydocchan_hub_publish)
{
    struct td_config cfg;
    td_config_init(&cfg);
    const char *conf = "{\"channel\":{\"namespaces\":[{\"name\":\"doc\",\"yjs\":true,"
                       "\"history_size\":10,\"history_ttl\":\"60s\"}]}}";
    char err[256];
    TD_REQUIRE(td_config_load_text(&cfg, "t", conf, strlen(conf), err, sizeof(err), NULL, NULL) ==
               0);
    struct td_hub hub;
    td_hub_init(&hub, &cfg);
    struct td_buf upd, data;
    td_buf_init(&upd);
    td_buf_init(&data);
    make_update(21, "hi", &upd);
    as_json(&upd, &data);
    struct td_str chan = {"doc:1", 5};
    struct td_publish_result res;
    TD_CHECK(td_hub_publish(&hub, chan, (struct td_str){"\"!!\"", 4}, NULL, 1, &res) == TD_EPROTO);
    TD_REQUIRE(td_hub_publish(&hub, chan, str_of(&data), NULL, 2, &res) == 0);
    TD_CHECK_EQ_INT(res.offset, 1);
    /* A duplicate publishes nothing: no offset, history unchanged. */
    TD_REQUIRE(td_hub_publish(&hub, chan, str_of(&data), NULL, 3, &res) == 0);
    TD_CHECK_EQ_INT(res.offset, 0);
    struct td_channel *ch = td_hub_channel(&hub, chan);
    TD_REQUIRE(ch != NULL);
    TD_CHECK_EQ_INT(ch->stream.top, 1);
    TD_REQUIRE(ch->ydoc != NULL);
    TD_CHECK_EQ_INT(strcmp(text_of(ch->ydoc), "hi"), 0);
    td_hub_free(&hub); /* frees the document with the channel (ASan would report a leak) */
    td_buf_free(&upd);
    td_buf_free(&data);
    td_config_free(&cfg);
}

TD_TEST(ydocchan_config_needs_history)
{
    struct td_config cfg;
    td_config_init(&cfg);
    const char *conf = "{\"channel\":{\"namespaces\":[{\"name\":\"doc\",\"yjs\":true}]}}";
    char err[256] = "";
    TD_CHECK(td_config_load_text(&cfg, "t", conf, strlen(conf), err, sizeof(err), NULL, NULL) != 0);
    TD_CHECK(strstr(err, "yjs needs history_size and history_ttl") != NULL);
    td_config_free(&cfg);
}
