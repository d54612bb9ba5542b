#include "engine/td_ydocchan.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_json.h"

int td_ydocchan_decode(struct td_str data, struct td_buf *out)
{
    if (!td_json_valid(data.p, data.n)) {
        if (data.n > 0)
            td_buf_append(out, data.p, data.n); /* raw bytes (protobuf clients) */
        return 0;
    }
    struct td_json_doc jd;
    int rv = td_json_parse(&jd, data.p, data.n, NULL);
    const struct td_json *v = rv == 0 ? td_json_root(&jd) : NULL;
    if (v == NULL || v->type != TD_JSON_STRING) {
        td_json_doc_free(&jd);
        return TD_EPROTO;
    }
    size_t cap = TD_BASE64_DECODED_MAX(v->len);
    size_t start = out->len;
    td_buf_reserve(out, cap + 1);
    int n = td_base64_decode(v->str, v->len, out->data + start, cap);
    td_json_doc_free(&jd);
    if (n < 0)
        return TD_EPROTO;
    out->len = start + (size_t)n;
    return 0;
}

void td_ydocchan_encode(const uint8_t *update, size_t n, struct td_buf *out)
{
    size_t start = out->len;
    td_buf_reserve(out, TD_BASE64_ENCODED_LEN(n) + 3);
    out->data[start] = '"';
    size_t k = td_base64_encode(update, n, (char *)out->data + start + 1);
    out->data[start + 1 + k] = '"';
    out->len = start + k + 2;
}
