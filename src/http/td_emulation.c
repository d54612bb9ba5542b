/*
 * td_emulation.c - session table, /emulation body parsers and stream framing helpers.
 */
#include "http/td_emulation.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_rand.h"
#include "proto/td_pb.h"

void td_emu_init(struct td_emu *e)
{
    td_map_init(&e->sessions);
    e->crlf = td_rbuf_from("\r\n", 2);
    e->nl_crlf = td_rbuf_from("\n\r\n", 3);
    e->sse_end = td_rbuf_from("\n\n", 2);
    e->last_chunk = td_rbuf_from("0\r\n\r\n", 5);
}

void td_emu_free(struct td_emu *e)
{
    for (size_t i = 0; i < e->sessions.cap; i++) {
        if (e->sessions.slots[i].key != NULL)
            free(e->sessions.slots[i].value);
    }
    td_map_free(&e->sessions);
    td_rbuf_unref(e->crlf);
    td_rbuf_unref(e->nl_crlf);
    td_rbuf_unref(e->sse_end);
    td_rbuf_unref(e->last_chunk);
    memset(e, 0, sizeof(*e));
}

/* Fills raw with unpredictable bytes. getrandom only fails before the kernel's pool is
 * initialised or when interrupted; then it is retried, and as a last resort mixed from
 * td_rand so the server keeps working (ids stay unique, if less secret). */
static void emu_random(uint8_t *raw, size_t n)
{
    size_t got = 0;
    for (int tries = 0; got < n && tries < 8; tries++) {
        ssize_t rv = getrandom(raw + got, n - got, 0);
        if (rv > 0)
            got += (size_t)rv;
    }
    for (; got < n; got++)
        raw[got] = (uint8_t)td_rand_u64();
}

const struct td_emu_session *td_emu_session_add(struct td_emu *e, void *conn)
{
    static const char hex[] = "0123456789abcdef";
    struct td_emu_session *s = td_xmalloc(sizeof(*s));
    s->conn = conn;
    do {
        uint8_t raw[TD_EMU_SESSION_LEN / 2];
        emu_random(raw, sizeof(raw));
        for (size_t i = 0; i < sizeof(raw); i++) {
            s->id[2 * i] = hex[raw[i] >> 4];
            s->id[2 * i + 1] = hex[raw[i] & 15];
        }
        s->id[TD_EMU_SESSION_LEN] = '\0';
    } while (td_map_get(&e->sessions, s->id, TD_EMU_SESSION_LEN) != NULL);
    td_map_put(&e->sessions, s->id, TD_EMU_SESSION_LEN, s);
    return s;
}

void *td_emu_session_get(const struct td_emu *e, struct td_str id)
{
    if (id.n != TD_EMU_SESSION_LEN)
        return NULL;
    const struct td_emu_session *s = td_map_get(&e->sessions, id.p, id.n);
    return s != NULL ? s->conn : NULL;
}

void *td_emu_session_del(struct td_emu *e, struct td_str id)
{
    if (id.n != TD_EMU_SESSION_LEN)
        return NULL;
    struct td_emu_session *s = td_map_del(&e->sessions, id.p, id.n);
    if (s == NULL)
        return NULL;
    void *conn = s->conn;
    free(s);
    return conn;
}

static bool key_is(const char *k, size_t kn, const char *lit)
{
    return kn == strlen(lit) && memcmp(k, lit, kn) == 0;
}

static int emu_check(const struct td_emu_request *r, bool have_session, bool have_data)
{
    if (!have_session || !have_data || r->session.n == 0 || r->len == 0 ||
        r->session.n > TD_EMU_ID_MAX || r->node.n > TD_EMU_ID_MAX)
        return TD_EPROTO;
    return 0;
}

int td_emu_parse_json(char *body, size_t n, struct td_emu_request *req)
{
    struct td_emu_request r = {TD_STR_NULL, TD_STR_NULL, NULL, 0};
    bool have_session = false, have_data = false;
    if (n == 0)
        return TD_EPROTO;
    struct td_json_cursor c;
    td_json_cursor_init(&c, body, n);
    if (td_json_cursor_object_begin(&c) < 0)
        return TD_EPROTO;
    const char *k;
    size_t kn;
    int rc;
    while ((rc = td_json_cursor_object_next(&c, &k, &kn)) == 1) {
        const char *s;
        size_t sn;
        if (key_is(k, kn, "session") || key_is(k, kn, "node") || key_is(k, kn, "data")) {
            bool is_session = key_is(k, kn, "session"), is_node = key_is(k, kn, "node");
            if (td_json_cursor_string(&c, &s, &sn) < 0)
                return TD_EPROTO;
            if (is_session) {
                r.session = (struct td_str){s, sn};
                have_session = true;
            } else if (is_node) {
                r.node = (struct td_str){s, sn};
            } else {
                r.data = (uint8_t *)(uintptr_t)s; /* unescaped in place inside body */
                r.len = sn;
                have_data = true;
            }
        } else if (td_json_cursor_skip(&c, NULL, NULL) < 0) {
            return TD_EPROTO;
        }
    }
    if (rc < 0 || td_json_cursor_end(&c) < 0)
        return TD_EPROTO;
    if (emu_check(&r, have_session, have_data) < 0)
        return TD_EPROTO;
    *req = r;
    return 0;
}

int td_emu_parse_pb(uint8_t *body, size_t n, struct td_emu_request *req)
{
    struct td_emu_request r = {TD_STR_NULL, TD_STR_NULL, NULL, 0};
    bool have_session = false, have_data = false;
    if (n == 0)
        return TD_EPROTO; /* (and body may then be NULL) */
    struct td_pb_cur c;
    td_pb_cur_init(&c, body, n);
    while (td_pb_cur_left(&c) > 0) {
        uint32_t field;
        enum td_pb_wire wire;
        if (td_pb_read_tag(&c, &field, &wire) < 0)
            return TD_EPROTO;
        if (field >= 1 && field <= 3) {
            const uint8_t *p;
            size_t pn;
            if (wire != TD_PB_LEN || td_pb_read_len(&c, &p, &pn) < 0)
                return TD_EPROTO;
            if (field == 1) {
                r.node = (struct td_str){(const char *)p, pn};
            } else if (field == 2) {
                r.session = (struct td_str){(const char *)p, pn};
                have_session = true;
            } else {
                /* p points into body, which the caller gave us writable. */
                r.data = body + (p - body);
                r.len = pn;
                have_data = true;
            }
        } else if (td_pb_skip(&c, wire) < 0) {
            return TD_EPROTO;
        }
    }
    if (emu_check(&r, have_session, have_data) < 0)
        return TD_EPROTO;
    *req = r;
    return 0;
}

size_t td_emu_chunk_header(uint8_t *out, uint32_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[8];
    size_t k = 0;
    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n != 0);
    size_t len = 0;
    while (k > 0)
        out[len++] = (uint8_t)tmp[--k];
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}

bool td_emu_sse_single_line(const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    return memchr(p, '\n', n) == NULL && memchr(p, '\r', n) == NULL;
}

void td_emu_sse_append(struct td_buf *out, const uint8_t *p, size_t n)
{
    if (n == 0) {
        td_buf_append(out, TD_EMU_SSE_PREFIX "\n\n", TD_EMU_SSE_PREFIX_LEN + 2);
        return;
    }
    if (p[n - 1] == '\n')
        n--; /* a final newline would only add an empty line to the event's data */
    size_t i = 0;
    for (;;) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - p) : n;
        td_buf_append(out, TD_EMU_SSE_PREFIX, TD_EMU_SSE_PREFIX_LEN);
        while (i < end) {
            const uint8_t *cr = memchr(p + i, '\r', end - i);
            size_t stop = cr != NULL ? (size_t)(cr - p) : end;
            td_buf_append(out, p + i, stop - i);
            i = cr != NULL ? stop + 1 : end;
        }
        td_buf_append_byte(out, '\n');
        if (nl == NULL)
            break;
        i = end + 1;
    }
    td_buf_append_byte(out, '\n');
}
