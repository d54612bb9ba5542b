#include "core/td_json.h"

#include <math.h>
#include <stdlib.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "td_test.h"

/* parse_ok parses s, checks td_json_valid agrees, and returns the root (doc must be freed). */
static const struct td_json *parse_ok(struct td_json_doc *doc, const char *s)
{
    struct td_json_error err;
    int rc = td_json_parse(doc, s, strlen(s), &err);
    if (rc != 0) {
        fprintf(stderr, "  unexpected parse error in %s: %u:%u %s\n", s, err.line, err.col,
                err.msg);
        return NULL;
    }
    if (!td_json_valid(s, strlen(s)))
        return NULL;
    return td_json_root(doc);
}

/* rejects returns true if both the DOM parser and the validator reject s[0..n). */
static bool rejects_n(const char *s, size_t n)
{
    struct td_json_doc doc;
    struct td_json_error err;
    int rc = td_json_parse(&doc, s, n, &err);
    bool root_empty = td_json_root(&doc) == NULL;
    td_json_doc_free(&doc);
    return rc == TD_EPROTO && root_empty && !td_json_valid(s, n);
}

static bool rejects(const char *s)
{
    return rejects_n(s, strlen(s));
}

TD_TEST(json_parse_scalars)
{
    struct td_json_doc doc;
    const struct td_json *v;

    TD_REQUIRE((v = parse_ok(&doc, " true ")) != NULL);
    TD_CHECK(v->type == TD_JSON_TRUE);
    TD_CHECK_EQ_INT(v->col, 2);
    TD_CHECK_MEM_STR(v->raw, v->raw_len, "true");
    td_json_doc_free(&doc);

    TD_REQUIRE((v = parse_ok(&doc, "false")) != NULL);
    TD_CHECK(v->type == TD_JSON_FALSE);
    td_json_doc_free(&doc);

    TD_REQUIRE((v = parse_ok(&doc, "\n\tnull\r\n")) != NULL);
    TD_CHECK(v->type == TD_JSON_NULL);
    TD_CHECK_EQ_INT(v->line, 2);
    TD_CHECK_EQ_INT(v->col, 2);
    td_json_doc_free(&doc);

    TD_REQUIRE((v = parse_ok(&doc, "\"hi\"")) != NULL);
    TD_CHECK(v->type == TD_JSON_STRING);
    TD_CHECK_MEM_STR(v->str, v->len, "hi");
    TD_CHECK(v->str[v->len] == '\0');
    TD_CHECK_MEM_STR(v->raw, v->raw_len, "\"hi\"");
    td_json_doc_free(&doc);

    TD_CHECK(strcmp(td_json_type_name(TD_JSON_OBJECT), "object") == 0);
    TD_CHECK(strcmp(td_json_type_name(TD_JSON_NUMBER), "number") == 0);
}

TD_TEST(json_parse_object_tree)
{
    const char *text = "{\n"
                       "  \"name\": \"tandem\",\n"
                       "  \"port\": 8000,\n"
                       "  \"tags\": [1, \"two\", {\"three\": 3}, []],\n"
                       "  \"data\": {\"a\" : [true, null]}\n"
                       "}\n";
    struct td_json_doc doc;
    const struct td_json *root = parse_ok(&doc, text);
    TD_REQUIRE(root != NULL);
    TD_CHECK(root->type == TD_JSON_OBJECT);
    TD_CHECK_EQ_INT(root->n, 4);
    TD_CHECK(root->key == NULL);

    const struct td_json *name = td_json_get(root, "name");
    TD_REQUIRE(name != NULL && name->type == TD_JSON_STRING);
    TD_CHECK_MEM_STR(name->str, name->len, "tandem");
    TD_CHECK_MEM_STR(name->key, name->key_len, "name");
    TD_CHECK_EQ_INT(name->line, 2);
    TD_CHECK_EQ_INT(name->col, 11);

    const struct td_json *port = td_json_get(root, "port");
    TD_REQUIRE(port != NULL && port->type == TD_JSON_NUMBER);
    TD_CHECK(port->is_int);
    TD_CHECK_EQ_INT(port->i, 8000);
    TD_CHECK(port->num == 8000.0);
    TD_CHECK_EQ_INT(port->line, 3);
    TD_CHECK_EQ_INT(port->col, 11);

    const struct td_json *tags = td_json_get(root, "tags");
    TD_REQUIRE(tags != NULL && tags->type == TD_JSON_ARRAY && tags->n == 4);
    TD_CHECK(tags->child[0].type == TD_JSON_NUMBER && tags->child[0].i == 1);
    TD_CHECK(tags->child[0].key == NULL);
    TD_CHECK_MEM_STR(tags->child[1].str, tags->child[1].len, "two");
    const struct td_json *three = td_json_get(&tags->child[2], "three");
    TD_REQUIRE(three != NULL);
    TD_CHECK_EQ_INT(three->i, 3);
    TD_CHECK(tags->child[3].type == TD_JSON_ARRAY && tags->child[3].n == 0);
    TD_CHECK(tags->child[3].child == NULL);

    const struct td_json *data = td_json_get(root, "data");
    TD_REQUIRE(data != NULL);
    TD_CHECK_MEM_STR(data->raw, data->raw_len, "{\"a\" : [true, null]}");
    TD_CHECK(data->raw >= text && data->raw < text + strlen(text));

    TD_CHECK(td_json_get(root, "missing") == NULL);
    TD_CHECK(td_json_get(tags, "name") == NULL); /* not an object */
    TD_CHECK(td_json_get(NULL, "name") == NULL);
    td_json_doc_free(&doc);
    TD_CHECK(td_json_root(&doc) == NULL);
    td_json_doc_free(&doc); /* freeing an empty document is harmless */
}

TD_TEST(json_get_duplicate_last_wins)
{
    struct td_json_doc doc;
    const struct td_json *root = parse_ok(&doc, "{\"a\":1,\"b\":2,\"a\":3}");
    TD_REQUIRE(root != NULL);
    const struct td_json *a = td_json_get(root, "a");
    TD_REQUIRE(a != NULL);
    TD_CHECK_EQ_INT(a->i, 3);
    td_json_doc_free(&doc);
}

TD_TEST(json_numbers_accepted)
{
    static const struct {
        const char *text;
        double num;
        bool is_int;
        int64_t i;
    } cases[] = {
        {"0", 0, true, 0},
        {"-0", 0, true, 0},
        {"7", 7, true, 7},
        {"-12", -12, true, -12},
        {"1.5", 1.5, false, 0},
        {"1.0", 1.0, false, 0},
        {"1e2", 100, false, 0},
        {"1E+2", 100, false, 0},
        {"-1.25e-3", -0.00125, false, 0},
        {"0.5", 0.5, false, 0},
        {"9223372036854775807", 9223372036854775807.0, true, INT64_MAX},
        {"-9223372036854775808", -9223372036854775808.0, true, INT64_MIN},
        {"9223372036854775808", 9223372036854775808.0, false, 0},
        {"-9223372036854775809", -9223372036854775809.0, false, 0},
        {"123456789012345678901234567890", 1.2345678901234568e29, false, 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct td_json_doc doc;
        const struct td_json *v = parse_ok(&doc, cases[k].text);
        TD_REQUIRE(v != NULL);
        TD_CHECK(v->type == TD_JSON_NUMBER);
        TD_CHECK_MEM_STR(v->str, v->len, cases[k].text);
        TD_CHECK(fabs(v->num - cases[k].num) <= fabs(cases[k].num) * 1e-15);
        TD_CHECK(v->is_int == cases[k].is_int);
        if (cases[k].is_int)
            TD_CHECK(v->i == cases[k].i);
        td_json_doc_free(&doc);
    }
    struct td_json_doc doc;
    const struct td_json *v = parse_ok(&doc, "1e999");
    TD_REQUIRE(v != NULL);
    TD_CHECK(isinf(v->num));
    td_json_doc_free(&doc);
}

TD_TEST(json_numbers_rejected)
{
    static const char *const bad[] = {
        "01",  "-01",  "00",    "1.",  ".5",   "+1",         "-",   "1e",
        "1e+", "1E-",  "0x10",  "NaN", "-NaN", "Infinity",   "-.5", "1.e5",
        "--1", "1..2", "1e5.0", "- 1", "[01]", "{\"a\":1.}",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (!rejects(bad[k]))
            fprintf(stderr, "  accepted: %s\n", bad[k]);
        TD_CHECK(rejects(bad[k]));
    }
}

TD_TEST(json_syntax_rejected)
{
    static const char *const bad[] = {
        "",          "   ",      "[1,]",      "[,1]",    "[1,,2]", "{\"a\":1,}", "{,\"a\":1}",
        "{\"a\" 1}", "{\"a\":}", "{a:1}",     "{'a':1}", "{1:1}",  "[1 2]",      "1 2",
        "{} {}",     "[1] // c", "/* c */ 1", "# c\n1",  "{",      "[",          "[[]",
        "{\"a\":1",  "tru",      "nul",       "True",    "nulls",  "\"abc",      "\xEF\xBB\xBF{}",
        "]",         "}",        "'x'",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (!rejects(bad[k]))
            fprintf(stderr, "  accepted: %s\n", bad[k]);
        TD_CHECK(rejects(bad[k]));
    }
    TD_CHECK(rejects_n("[1]\0", 4));
    TD_CHECK(rejects_n("\0", 1));
}

static void check_error(const char *text, uint32_t line, uint32_t col, const char *msg)
{
    struct td_json_doc doc;
    struct td_json_error err;
    memset(&err, 0, sizeof(err));
    int rc = td_json_parse(&doc, text, strlen(text), &err);
    TD_CHECK_EQ_INT(rc, TD_EPROTO);
    TD_CHECK_EQ_INT(err.line, line);
    TD_CHECK_EQ_INT(err.col, col);
    if (strcmp(err.msg, msg) != 0)
        fprintf(stderr, "  message for %s: %s\n", text, err.msg);
    TD_CHECK(strcmp(err.msg, msg) == 0);
    TD_CHECK(td_json_root(&doc) == NULL);
    td_json_doc_free(&doc);
}

TD_TEST(json_error_positions)
{
    check_error("{\n  \"a\": 1,\n  \"b\" 2\n}", 3, 7, "expected ':' after object key");
    check_error("{\"a\":1 \"b\":2}", 1, 8, "expected ',' or '}' after object member");
    check_error("[1,\n 2,\n ]", 3, 2, "unexpected character");
    check_error("[1 2]", 1, 4, "expected ',' or ']' after array element");
    check_error("{\"a\":1,}", 1, 8, "expected string key");
    check_error("", 1, 1, "unexpected end of input");
    check_error("  \n  ", 2, 3, "unexpected end of input");
    check_error("[01]", 1, 3, "leading zeros are not allowed");
    check_error("1.", 1, 3, "expected a digit after '.'");
    check_error("{} x", 1, 4, "unexpected data after value");
    check_error("\"a\x01\"", 1, 3, "control character in string");
    check_error("\"a\\x\"", 1, 3, "invalid escape in string");
    check_error("\"\\uD800\"", 1, 2, "unpaired surrogate in \\u escape");
    check_error("[\"\xC3\"]", 1, 3, "invalid UTF-8 in string");
    check_error("\n\n  [\"ok\",\n   \"\\uD83D\\u0041\"]", 4, 5, "unpaired surrogate in \\u escape");
    check_error("[tru]", 1, 2, "invalid literal");
}

TD_TEST(json_string_escapes)
{
    struct td_json_doc doc;
    const struct td_json *v;

    TD_REQUIRE((v = parse_ok(&doc, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"")) != NULL);
    TD_CHECK_MEM_STR(v->str, v->len, "\"\\/\b\f\n\r\t");
    td_json_doc_free(&doc);

    TD_REQUIRE((v = parse_ok(&doc, "\"caf\\u00e9 \\u20AC \\uD83D\\uDE00 \\ud834\\udd1e\"")) !=
               NULL);
    TD_CHECK_MEM_STR(v->str, v->len, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF0\x9D\x84\x9E");
    td_json_doc_free(&doc);

    TD_REQUIRE((v = parse_ok(&doc, "\"a\\u0000b\"")) != NULL);
    TD_CHECK_EQ_INT(v->len, 3);
    TD_CHECK(memcmp(v->str, "a\0b", 4) == 0);
    td_json_doc_free(&doc);

    /* Raw UTF-8 passes through, up to U+10FFFF. */
    TD_REQUIRE((v = parse_ok(&doc, "{\"cl\xC3\xA9\":\"\xE2\x82\xAC\xF4\x8F\xBF\xBF\x7F\"}")) !=
               NULL);
    TD_CHECK_MEM_STR(v->child[0].key, v->child[0].key_len, "cl\xC3\xA9");
    TD_CHECK_MEM_STR(v->child[0].str, v->child[0].len, "\xE2\x82\xAC\xF4\x8F\xBF\xBF\x7F");
    td_json_doc_free(&doc);

    /* Escaped keys are unescaped before lookup. */
    TD_REQUIRE((v = parse_ok(&doc, "{\"\\u0063hannel\":1}")) != NULL);
    TD_CHECK(td_json_get(v, "channel") != NULL);
    td_json_doc_free(&doc);

    static const char *const bad[] = {
        "\"\\uD800\"",
        "\"\\uD800x\"",
        "\"\\uD800\\u0041\"",
        "\"\\uD800\\uD800\"",
        "\"\\uDC00\"",
        "\"\\uDFFF\\uD800\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\U0041\"",
        "\"\\x41\"",
        "\"\\'\"",
        "\"\\",
        "\"\t\"",
        "\"\n\"",
        "\"\x1f\"",
        "\"\xC0\x80\"",
        "\"\xC1\xBF\"",
        "\"\xE0\x80\xAF\"",
        "\"\xED\xA0\x80\"",
        "\"\xF0\x80\x80\xAF\"",
        "\"\xF4\x90\x80\x80\"",
        "\"\xF5\x80\x80\x80\"",
        "\"\xE2\x82\"",
        "\"\x80\"",
        "\"\xFF\"",
        "\"\xC3\"",
        "\"\xE2\x28\xA1\"",
        "{\"\xC3\":1}",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (!rejects(bad[k]))
            fprintf(stderr, "  accepted case %zu\n", k);
        TD_CHECK(rejects(bad[k]));
    }
}

static char *nested(char open, char close, int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int k = 0; k < depth; k++) {
        s[k] = open;
        s[depth * 2 - 1 - k] = close;
    }
    s[depth * 2] = '\0';
    return s;
}

TD_TEST(json_depth_cap)
{
    struct td_json_doc doc;
    struct td_json_error err;
    char *ok = nested('[', ']', TD_JSON_MAX_DEPTH);
    char *deep = nested('[', ']', TD_JSON_MAX_DEPTH + 1);
    TD_CHECK(td_json_parse(&doc, ok, strlen(ok), &err) == 0);
    td_json_doc_free(&doc);
    TD_CHECK(td_json_valid(ok, strlen(ok)));
    TD_CHECK_EQ_INT(td_json_parse(&doc, deep, strlen(deep), &err), TD_EPROTO);
    TD_CHECK(strcmp(err.msg, "nesting too deep") == 0);
    TD_CHECK_EQ_INT(err.col, TD_JSON_MAX_DEPTH + 1);
    TD_CHECK(!td_json_valid(deep, strlen(deep)));
    free(ok);
    free(deep);

    /* Objects count the same way. */
    struct td_buf b;
    td_buf_init(&b);
    for (int k = 0; k < TD_JSON_MAX_DEPTH; k++)
        td_buf_append_str(&b, "{\"a\":");
    td_buf_append_str(&b, "1");
    for (int k = 0; k < TD_JSON_MAX_DEPTH; k++)
        td_buf_append_str(&b, "}");
    TD_CHECK(td_json_parse(&doc, (const char *)b.data, b.len, &err) == 0);
    td_json_doc_free(&doc);
    TD_CHECK(td_json_valid((const char *)b.data, b.len));
    td_buf_reset(&b);
    for (int k = 0; k <= TD_JSON_MAX_DEPTH; k++)
        td_buf_append_str(&b, "{\"a\":");
    TD_CHECK(rejects_n((const char *)b.data, b.len));
    td_buf_free(&b);

    /* A very deep input fails fast without exhausting the stack. */
    char *huge = nested('[', ']', 100000);
    TD_CHECK(rejects(huge));
    free(huge);
}

static void check_write(const char *in, size_t n, const char *expect)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "x");
    td_json_write_string(&b, in, n);
    TD_CHECK_MEM_STR(b.data + 1, b.len - 1, expect);
    TD_CHECK(td_json_valid((const char *)b.data + 1, b.len - 1));
    td_buf_free(&b);
}

TD_TEST(json_write_string_escaping)
{
    check_write("", 0, "\"\"");
    check_write("plain/text", 10, "\"plain/text\"");
    check_write("q\"b\\", 4, "\"q\\\"b\\\\\"");
    check_write("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    check_write("\x01\x1f\x00z", 4, "\"\\u0001\\u001f\\u0000z\"");
    check_write("\x7f", 1, "\"\x7f\"");
    check_write("caf\xC3\xA9 \xF0\x9F\x98\x80", 10, "\"caf\xC3\xA9 \xF0\x9F\x98\x80\"");
    /* Invalid UTF-8 bytes become U+FFFD one by one. */
    check_write("a\xFF"
                "b",
                3, "\"a\\ufffdb\"");
    check_write("\xC3", 1, "\"\\ufffd\"");
    check_write("\xE2\x82", 2, "\"\\ufffd\\ufffd\"");
    check_write("\xED\xA0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    check_write("\xC0\x80", 2, "\"\\ufffd\\ufffd\"");
}

TD_TEST(json_write_string_long_round_trip)
{
    /* Longer than one internal chunk, with multi-byte sequences straddling chunk ends. */
    struct td_buf in, out;
    td_buf_init(&in);
    td_buf_init(&out);
    for (int k = 0; k < 2000; k++) {
        td_buf_append_str(&in, k % 7 == 0 ? "\xF0\x9F\x98\x80" : k % 5 == 0 ? "\"\n" : "ab");
    }
    td_json_write_string(&out, (const char *)in.data, in.len);
    struct td_json_doc doc;
    struct td_json_error err;
    TD_REQUIRE(td_json_parse(&doc, (const char *)out.data, out.len, &err) == 0);
    const struct td_json *v = td_json_root(&doc);
    TD_CHECK(v->type == TD_JSON_STRING);
    TD_CHECK(v->len == in.len && memcmp(v->str, in.data, in.len) == 0);
    td_json_doc_free(&doc);
    td_buf_free(&in);
    td_buf_free(&out);
}

TD_TEST(json_cursor_object)
{
    char text[] = " {\"id\" : 7, \"n\\u0061me\":\"a\\nb\", \"neg\":-5, \"ok\":true, "
                  "\"skip\":{\"x\":[1,{\"y\":null}]}, \"no\":false, \"nil\":null } ";
    struct td_json_cursor c;
    const char *k, *s = NULL, *raw = NULL;
    size_t kn, sn = 0, rawn = 0;
    uint64_t id = 0;
    int64_t neg = 0;
    bool ok = false, no = true, saw_nil = false;
    int rc;
    td_json_cursor_init(&c, text, sizeof(text) - 1);
    TD_CHECK_EQ_INT(td_json_cursor_peek(&c), TD_JSON_OBJECT);
    TD_REQUIRE(td_json_cursor_object_begin(&c) == 0);
    while ((rc = td_json_cursor_object_next(&c, &k, &kn)) == 1) {
        if (kn == 2 && memcmp(k, "id", 2) == 0)
            rc = td_json_cursor_uint64(&c, UINT32_MAX, &id);
        else if (kn == 4 && memcmp(k, "name", 4) == 0)
            rc = td_json_cursor_string(&c, &s, &sn);
        else if (kn == 3 && memcmp(k, "neg", 3) == 0)
            rc = td_json_cursor_int64(&c, -10, 10, &neg);
        else if (kn == 2 && memcmp(k, "ok", 2) == 0)
            rc = td_json_cursor_bool(&c, &ok);
        else if (kn == 2 && memcmp(k, "no", 2) == 0)
            rc = td_json_cursor_bool(&c, &no);
        else if (kn == 3 && memcmp(k, "nil", 3) == 0)
            saw_nil = td_json_cursor_null(&c);
        else
            rc = td_json_cursor_skip(&c, &raw, &rawn);
        TD_REQUIRE(rc >= 0);
    }
    TD_CHECK_EQ_INT(rc, 0);
    TD_CHECK_EQ_INT(td_json_cursor_end(&c), 0);
    TD_CHECK_EQ_INT(id, 7);
    TD_CHECK_MEM_STR(s, sn, "a\nb");
    TD_CHECK(s > text && s < text + sizeof(text)); /* unescaped in place */
    TD_CHECK_EQ_INT(neg, -5);
    TD_CHECK(ok && !no && saw_nil);
    TD_CHECK_MEM_STR(raw, rawn, "{\"x\":[1,{\"y\":null}]}");
    TD_CHECK_EQ_INT(c.depth, 0);
}

TD_TEST(json_cursor_nested_empty_containers)
{
    char text[] = "[{}, [], [[]], {\"a\":{}}, 1]";
    struct td_json_cursor c;
    const char *k;
    size_t kn;
    uint64_t v = 0;
    td_json_cursor_init(&c, text, sizeof(text) - 1);
    TD_REQUIRE(td_json_cursor_array_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_object_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_object_next(&c, &k, &kn) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_array_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_array_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_array_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_object_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_object_next(&c, &k, &kn) == 1);
    TD_CHECK_MEM_STR(k, kn, "a");
    TD_REQUIRE(td_json_cursor_object_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_object_next(&c, &k, &kn) == 0);
    TD_REQUIRE(td_json_cursor_object_next(&c, &k, &kn) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_uint64(&c, 10, &v) == 0);
    TD_CHECK_EQ_INT(v, 1);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 0);
    TD_CHECK_EQ_INT(td_json_cursor_end(&c), 0);
}

TD_TEST(json_cursor_errors)
{
    struct td_json_cursor c;
    const char *k, *s;
    size_t kn, sn;
    uint64_t u = 99;
    int64_t i = 99;
    bool b;

    char t1[] = "[1,]";
    td_json_cursor_init(&c, t1, 4);
    TD_REQUIRE(td_json_cursor_array_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_REQUIRE(td_json_cursor_uint64(&c, 10, &u) == 0);
    TD_CHECK_EQ_INT(td_json_cursor_array_next(&c), TD_EPROTO);
    TD_CHECK_EQ_INT(c.pos, 3);
    TD_CHECK(c.error != NULL);

    char t2[] = "{\"a\":1,}";
    td_json_cursor_init(&c, t2, sizeof(t2) - 1);
    TD_REQUIRE(td_json_cursor_object_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_object_next(&c, &k, &kn) == 1);
    TD_REQUIRE(td_json_cursor_skip(&c, NULL, NULL) == 0);
    TD_CHECK_EQ_INT(td_json_cursor_object_next(&c, &k, &kn), TD_EPROTO);
    TD_CHECK(strcmp(c.error, "expected string key") == 0);

    static const char *const bad_uint[] = {"-1",         "-0",    "1.0",  "1e3",
                                           "4294967296", "\"1\"", "true", "18446744073709551616"};
    for (size_t n = 0; n < sizeof(bad_uint) / sizeof(bad_uint[0]); n++) {
        char buf[32];
        strcpy(buf, bad_uint[n]);
        td_json_cursor_init(&c, buf, strlen(buf));
        u = 99;
        TD_CHECK_EQ_INT(td_json_cursor_uint64(&c, UINT32_MAX, &u), TD_EPROTO);
        TD_CHECK_EQ_INT(u, 99); /* out-parameter untouched on failure */
    }
    char t3[] = "18446744073709551615";
    td_json_cursor_init(&c, t3, sizeof(t3) - 1);
    TD_CHECK_EQ_INT(td_json_cursor_uint64(&c, UINT64_MAX, &u), 0);
    TD_CHECK(u == UINT64_MAX);

    char t4[] = "-9223372036854775808";
    td_json_cursor_init(&c, t4, sizeof(t4) - 1);
    TD_CHECK_EQ_INT(td_json_cursor_int64(&c, INT64_MIN, INT64_MAX, &i), 0);
    TD_CHECK(i == INT64_MIN);
    char t5[] = "-2147483649";
    td_json_cursor_init(&c, t5, sizeof(t5) - 1);
    TD_CHECK_EQ_INT(td_json_cursor_int64(&c, INT32_MIN, INT32_MAX, &i), TD_EPROTO);

    char t6[] = "\"a\\uDC00\"";
    td_json_cursor_init(&c, t6, sizeof(t6) - 1);
    TD_CHECK_EQ_INT(td_json_cursor_string(&c, &s, &sn), TD_EPROTO);
    TD_CHECK_EQ_INT(c.pos, 2);

    char t7[] = "nul";
    td_json_cursor_init(&c, t7, 3);
    TD_CHECK(!td_json_cursor_null(&c));
    TD_CHECK_EQ_INT(td_json_cursor_bool(&c, &b), TD_EPROTO);
    TD_CHECK_EQ_INT(td_json_cursor_skip(&c, NULL, NULL), TD_EPROTO);

    char t8[] = "1 2";
    td_json_cursor_init(&c, t8, 3);
    TD_REQUIRE(td_json_cursor_skip(&c, NULL, NULL) == 0);
    TD_CHECK_EQ_INT(td_json_cursor_end(&c), TD_EPROTO);

    char t9[] = "@";
    td_json_cursor_init(&c, t9, 1);
    TD_CHECK_EQ_INT(td_json_cursor_peek(&c), TD_EPROTO);
}

TD_TEST(json_cursor_depth_cap)
{
    char *ok = nested('[', ']', TD_JSON_MAX_DEPTH);
    char *deep = nested('[', ']', TD_JSON_MAX_DEPTH + 1);
    struct td_json_cursor c;
    td_json_cursor_init(&c, ok, strlen(ok));
    TD_CHECK_EQ_INT(td_json_cursor_skip(&c, NULL, NULL), 0);
    td_json_cursor_init(&c, deep, strlen(deep));
    TD_CHECK_EQ_INT(td_json_cursor_skip(&c, NULL, NULL), TD_EPROTO);
    /* Containers opened through the cursor count toward the cap. */
    td_json_cursor_init(&c, deep, strlen(deep));
    TD_REQUIRE(td_json_cursor_array_begin(&c) == 0);
    TD_REQUIRE(td_json_cursor_array_next(&c) == 1);
    TD_CHECK_EQ_INT(td_json_cursor_skip(&c, NULL, NULL), TD_EPROTO);
    td_json_cursor_init(&c, ok, strlen(ok));
    int rc = 0;
    for (int k = 0; k < TD_JSON_MAX_DEPTH && rc == 0; k++) {
        rc = td_json_cursor_array_begin(&c);
        if (rc == 0 && k + 1 < TD_JSON_MAX_DEPTH)
            rc = td_json_cursor_array_next(&c) == 1 ? 0 : -1;
    }
    TD_CHECK_EQ_INT(rc, 0);
    TD_CHECK_EQ_INT(c.depth, TD_JSON_MAX_DEPTH);
    free(ok);
    free(deep);
}
