#include "proto/td_yproto.h"

#include <string.h>

#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_utf8.h"

int td_yproto_decode(const uint8_t *p, size_t n, size_t max_size, struct td_yproto_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (max_size > 0 && n > max_size)
        return TD_ELIMIT;
    struct td_lib0_reader r;
    td_lib0_reader_init(&r, p, n);
    if (td_lib0_read_varuint(&r, &m->type) != 0)
        return TD_EPROTO;
    switch (m->type) {
    case TD_YPROTO_SYNC:
        if (td_lib0_read_varuint(&r, &m->subtype) != 0 || m->subtype > TD_YPROTO_UPDATE ||
            td_lib0_read_varbytes(&r, &m->payload) != 0)
            return TD_EPROTO;
        break;
    case TD_YPROTO_AWARENESS:
        if (td_lib0_read_varbytes(&r, &m->payload) != 0)
            return TD_EPROTO;
        break;
    case TD_YPROTO_AUTH:
        if (td_lib0_read_varuint(&r, &m->subtype) != 0 ||
            td_lib0_read_varstring(&r, &m->reason) != 0 ||
            !td_utf8_valid(m->reason.p, m->reason.len))
            return TD_EPROTO;
        break;
    case TD_YPROTO_QUERY_AWARENESS:
        break;
    default:
        return 0; /* unknown type: ignored by the caller */
    }
    return td_lib0_left(&r) == 0 ? 0 : TD_EPROTO;
}

int td_yproto_aware_begin(struct td_yaware_iter *it, const uint8_t *p, size_t n, uint64_t *count)
{
    td_lib0_reader_init(&it->r, p, n);
    it->left = 0;
    uint64_t c;
    if (td_lib0_read_varuint(&it->r, &c) != 0)
        return TD_EPROTO;
    /* Each entry takes at least 3 bytes (two varUints and an empty varString). */
    if (c > td_lib0_left(&it->r) / 3)
        return TD_EPROTO;
    if (c > TD_YPROTO_MAX_AWARENESS_ENTRIES)
        return TD_ELIMIT;
    it->left = c;
    if (count != NULL)
        *count = c;
    return 0;
}

int td_yproto_aware_next(struct td_yaware_iter *it, struct td_yaware_entry *e)
{
    if (it->left == 0)
        return td_lib0_left(&it->r) == 0 ? 0 : TD_EPROTO;
    struct td_yaware_entry x;
    if (td_lib0_read_varuint(&it->r, &x.client_id) != 0 ||
        td_lib0_read_varuint(&it->r, &x.clock) != 0 ||
        td_lib0_read_varstring(&it->r, &x.state) != 0)
        return TD_EPROTO;
    if (!td_json_valid((const char *)x.state.p, x.state.len))
        return TD_EPROTO;
    /* JSON.stringify(null) is exactly "null"; tolerate surrounding whitespace too. */
    size_t a = 0, b = x.state.len;
    while (a < b && (x.state.p[a] == ' ' || x.state.p[a] == '\t' || x.state.p[a] == '\n' ||
                     x.state.p[a] == '\r'))
        a++;
    while (b > a && (x.state.p[b - 1] == ' ' || x.state.p[b - 1] == '\t' ||
                     x.state.p[b - 1] == '\n' || x.state.p[b - 1] == '\r'))
        b--;
    x.removed = b - a == 4 && memcmp(x.state.p + a, "null", 4) == 0;
    it->left--;
    *e = x;
    return 1;
}

int td_yproto_aware_check(const uint8_t *p, size_t n)
{
    struct td_yaware_iter it;
    int rv = td_yproto_aware_begin(&it, p, n, NULL);
    if (rv != 0)
        return rv;
    struct td_yaware_entry e;
    while ((rv = td_yproto_aware_next(&it, &e)) == 1)
        ;
    return rv;
}

void td_yproto_sync_header(struct td_buf *out, uint64_t subtype, size_t n)
{
    td_lib0_write_varuint(out, TD_YPROTO_SYNC);
    td_lib0_write_varuint(out, subtype);
    td_lib0_write_varuint(out, n);
}

void td_yproto_write_sync(struct td_buf *out, uint64_t subtype, const void *payload, size_t n)
{
    td_yproto_sync_header(out, subtype, n);
    td_buf_append(out, payload, n);
}

void td_yproto_aware_encode(struct td_buf *out, const struct td_yaware_entry *e, size_t n)
{
    td_lib0_write_varuint(out, n);
    for (size_t i = 0; i < n; i++) {
        td_lib0_write_varuint(out, e[i].client_id);
        td_lib0_write_varuint(out, e[i].clock);
        if (e[i].removed || e[i].state.len == 0)
            td_lib0_write_varstring(out, "null", 4);
        else
            td_lib0_write_varstring(out, e[i].state.p, e[i].state.len);
    }
}

void td_yproto_write_awareness(struct td_buf *out, const void *update, size_t n)
{
    td_lib0_write_varuint(out, TD_YPROTO_AWARENESS);
    td_lib0_write_varbytes(out, update, n);
}

void td_yproto_write_auth_denied(struct td_buf *out, const char *reason)
{
    td_lib0_write_varuint(out, TD_YPROTO_AUTH);
    td_lib0_write_varuint(out, TD_YPROTO_AUTH_DENIED);
    td_lib0_write_varstring(out, reason, strlen(reason));
}

void td_yproto_write_query_awareness(struct td_buf *out)
{
    td_lib0_write_varuint(out, TD_YPROTO_QUERY_AWARENESS);
}
