/*
 * Fuzz target for td_json: the DOM parser, the validator and the cursor must agree on
 * every input; strings written by td_json_write_string must parse back to the same bytes;
 * nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_json.h"

static void check_tree(const struct td_json *v, const char *text, size_t n, struct td_buf *tmp)
{
    if (v->raw < text || v->raw + v->raw_len > text + n || v->raw_len == 0)
        abort();
    if (v->type == TD_JSON_NUMBER && (v->len != v->raw_len || memcmp(v->str, v->raw, v->len)))
        abort();
    if (v->type == TD_JSON_STRING) {
        /* Writing the unescaped string and parsing it back is the identity. */
        struct td_json_doc doc;
        td_buf_reset(tmp);
        td_json_write_string(tmp, v->str, v->len);
        if (td_json_parse(&doc, (const char *)tmp->data, tmp->len, NULL) != 0)
            abort();
        const struct td_json *r = td_json_root(&doc);
        if (r->type != TD_JSON_STRING || r->len != v->len || memcmp(r->str, v->str, v->len))
            abort();
        td_json_doc_free(&doc);
    }
    if (v->type == TD_JSON_OBJECT || v->type == TD_JSON_ARRAY) {
        for (size_t i = 0; i < v->n; i++) {
            const struct td_json *c = &v->child[i];
            if ((v->type == TD_JSON_OBJECT) != (c->key != NULL))
                abort();
            if (c->key != NULL && strlen(c->key) == c->key_len && td_json_get(v, c->key) == NULL)
                abort();
            check_tree(c, text, n, tmp);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct td_json_doc doc;
    struct td_json_error err;
    struct td_buf tmp;
    td_buf_init(&tmp);

    int rc = td_json_parse(&doc, text, size, &err);
    bool valid = td_json_valid(text, size);
    if ((rc == 0) != valid)
        abort();
    if (rc == 0) {
        check_tree(td_json_root(&doc), text, size, &tmp);
    } else if (err.line == 0 || err.col == 0 || td_json_root(&doc) != NULL) {
        abort();
    }
    td_json_doc_free(&doc);

    /* The cursor's skip agrees with the validator and leaves the buffer untouched. */
    char *copy = malloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    struct td_json_cursor c;
    td_json_cursor_init(&c, copy, size);
    bool cur_ok = td_json_cursor_skip(&c, NULL, NULL) == 0 && td_json_cursor_end(&c) == 0;
    if (cur_ok != valid || (size && memcmp(copy, data, size) != 0))
        abort();
    free(copy);

    /* Any bytes written as a string yield valid JSON. */
    td_buf_reset(&tmp);
    td_json_write_string(&tmp, text, size);
    if (!td_json_valid((const char *)tmp.data, tmp.len))
        abort();
    td_buf_free(&tmp);
    return 0;
}
