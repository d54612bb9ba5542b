#include "crdt/td_yupdate.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_utf8.h"
#include "crdt/td_lib0.h"

/*
 * Decoding keeps views: strings, keys, Any runs and binary payloads point into the input.
 * The only copies are v2 ContentJSON (its strings live in the string column and are rebuilt
 * as varStrings in the arena) and string slices that cut a surrogate pair.
 *
 * Update-level operations (merge, diff, convert) follow yjs updates.js: yjs reads structs
 * "lazily" there, which drops the parentSub bit of items that carry an origin (the key is not
 * on the wire), and Item.mergeWith never succeeds on lazily read items (their `right` is
 * null), so only GC structs are joined. We do the same so our output matches byte for byte.
 */

#define YU_MAX_CLOCK (UINT64_C(1) << 53)

/* ---------------------------------------------------------------------------------------
 * Arena and containers
 */

struct td_yarena_block {
    struct td_yarena_block *next;
    size_t used, cap;
    uint8_t data[];
};

static uint8_t *arena_reserve(struct td_yupdate *u, size_t n)
{
    struct td_yarena_block *b = u->arena;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 4000 ? n : 4000;
        struct td_yarena_block *nb = td_xmalloc(sizeof(*nb) + cap);
        nb->used = 0;
        nb->cap = cap;
        /* keep the block with the most room at the head */
        if (b != NULL && b->cap - b->used > cap - n) {
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        u->arena = nb;
        b = nb;
    }
    uint8_t *p = b->data + b->used;
    b->used += n;
    return p;
}

void td_yupdate_init(struct td_yupdate *u)
{
    memset(u, 0, sizeof(*u));
}

void td_yupdate_free(struct td_yupdate *u)
{
    free(u->structs);
    free(u->runs);
    free(u->ds);
    struct td_yarena_block *b = u->arena;
    while (b != NULL) {
        struct td_yarena_block *n = b->next;
        free(b);
        b = n;
    }
    td_yupdate_init(u);
}

const uint8_t *td_yupdate_alloc(struct td_yupdate *u, const void *p, size_t n)
{
    uint8_t *d = arena_reserve(u, n ? n : 1);
    if (n)
        memcpy(d, p, n);
    return d;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    *cap = c;
    return td_xrealloc(p, c * elem);
}

void td_yupdate_add_run(struct td_yupdate *u, uint64_t client)
{
    u->runs = grow(u->runs, &u->capruns, u->nruns + 1, sizeof(*u->runs));
    u->runs[u->nruns].client = client;
    u->runs[u->nruns].first = u->nstructs;
    u->runs[u->nruns].n = 0;
    u->nruns++;
}

void td_yupdate_add_struct(struct td_yupdate *u, const struct td_ystruct *s)
{
    if (u->nruns == 0 || u->runs[u->nruns - 1].client != s->id.client)
        td_yupdate_add_run(u, s->id.client);
    u->structs = grow(u->structs, &u->capstructs, u->nstructs + 1, sizeof(*u->structs));
    u->structs[u->nstructs++] = *s;
    u->runs[u->nruns - 1].n++;
}

void td_yupdate_add_delete(struct td_yupdate *u, uint64_t client, uint64_t clock, uint64_t len)
{
    u->ds = grow(u->ds, &u->capds, u->nds + 1, sizeof(*u->ds));
    u->ds[u->nds].client = client;
    u->ds[u->nds].clock = clock;
    u->ds[u->nds].len = len;
    u->nds++;
}

static int cmp_range(const void *a, const void *b)
{
    const struct td_yrange *x = a, *y = b;
    if (x->client != y->client)
        return x->client > y->client ? -1 : 1;
    if (x->clock != y->clock)
        return x->clock < y->clock ? -1 : 1;
    return 0;
}

void td_yupdate_sort_ds(struct td_yupdate *u)
{
    bool sorted = true;
    for (size_t i = 1; i < u->nds && sorted; i++)
        sorted = cmp_range(&u->ds[i - 1], &u->ds[i]) <= 0;
    if (!sorted)
        qsort(u->ds, u->nds, sizeof(*u->ds), cmp_range);
    size_t j = 0;
    for (size_t i = 0; i < u->nds; i++) {
        struct td_yrange r = u->ds[i];
        if (r.len == 0)
            continue;
        if (j > 0) {
            struct td_yrange *l = &u->ds[j - 1];
            if (l->client == r.client && l->clock + l->len >= r.clock) {
                if (r.clock + r.len > l->clock + l->len)
                    l->len = r.clock + r.len - l->clock;
                continue;
            }
        }
        u->ds[j++] = r;
    }
    u->nds = j;
}

/* ---------------------------------------------------------------------------------------
 * Shared decode helpers
 */

static bool valid_utf8(struct td_ybytes b)
{
    return td_utf8_valid(b.p, b.len);
}

/* utf8_utf16_len checks that p[0..n) is UTF-8 and sets *u16 to its UTF-16 length (one pass
 * over the ASCII prefix, which is most text); returns 0 or TD_EPROTO. */
static int utf8_utf16_len(const uint8_t *p, size_t n, uint64_t *u16)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < n && p[i] < 0x80)
        i++;
    if (i == n) {
        *u16 = n;
        return 0;
    }
    /* p[0..i) is ASCII, so validation can start at i */
    if (!td_utf8_valid(p + i, n - i))
        return TD_EPROTO;
    *u16 = i + td_lib0_utf16_len(p + i, n - i);
    return 0;
}

static bool valid_json_text(struct td_ybytes b)
{
    return td_json_valid((const char *)b.p, b.len);
}

/* Any values: skip n of them from r; *span covers them. */
static int read_anys(struct td_lib0_reader *r, uint64_t n, struct td_ybytes *span)
{
    const uint8_t *start = r->p;
    if (n > td_lib0_left(r))
        return TD_EPROTO;
    for (uint64_t i = 0; i < n; i++) {
        int rc = td_lib0_skip_any(r, TD_YUPDATE_MAX_DEPTH);
        if (rc < 0)
            return rc;
    }
    span->p = start;
    span->len = (size_t)(r->p - start);
    return 0;
}

static int finish_struct(struct td_yupdate *u, struct td_ystruct *s, uint64_t *clock)
{
    if (s->len == 0 || s->len > YU_MAX_CLOCK - *clock)
        return TD_EPROTO;
    *clock += s->len;
    u->structs = grow(u->structs, &u->capstructs, u->nstructs + 1, sizeof(*u->structs));
    u->structs[u->nstructs++] = *s;
    u->runs[u->nruns - 1].n++;
    return 0;
}

static int read_ds_v1(struct td_yupdate *u, struct td_lib0_reader *r)
{
    uint64_t nclients;
    if (td_lib0_read_varuint(r, &nclients) < 0 || nclients > td_lib0_left(r))
        return TD_EPROTO;
    for (uint64_t i = 0; i < nclients; i++) {
        uint64_t client, n;
        if (td_lib0_read_varuint(r, &client) < 0 || td_lib0_read_varuint(r, &n) < 0 ||
            n > td_lib0_left(r))
            return TD_EPROTO;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t clock, len;
            if (td_lib0_read_varuint(r, &clock) < 0 || td_lib0_read_varuint(r, &len) < 0 ||
                len > YU_MAX_CLOCK - clock)
                return TD_EPROTO;
            if (len > 0)
                td_yupdate_add_delete(u, client, clock, len);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * v1 decode
 */

static int read_id_v1(struct td_lib0_reader *r, struct td_yid *id)
{
    if (td_lib0_read_varuint(r, &id->client) < 0 || td_lib0_read_varuint(r, &id->clock) < 0)
        return TD_EPROTO;
    return 0;
}

static int read_str_v1(struct td_lib0_reader *r, struct td_ybytes *s)
{
    if (td_lib0_read_varstring(r, s) < 0 || !valid_utf8(*s))
        return TD_EPROTO;
    return 0;
}

static int decode_item_v1(struct td_lib0_reader *r, uint8_t info, struct td_ystruct *s)
{
    uint64_t v;
    if (info & 0x80) {
        s->flags |= TD_YS_HAS_ORIGIN;
        if (read_id_v1(r, &s->origin) < 0)
            return TD_EPROTO;
    }
    if (info & 0x40) {
        s->flags |= TD_YS_HAS_RIGHT_ORIGIN;
        if (read_id_v1(r, &s->right_origin) < 0)
            return TD_EPROTO;
    }
    if (info & 0x20)
        s->flags |= TD_YS_HAS_PARENT_SUB;
    if ((info & 0xc0) == 0) {
        if (td_lib0_read_varuint(r, &v) < 0 || v > 1)
            return TD_EPROTO;
        if (v == 1) {
            s->parent = TD_YP_ROOT;
            if (read_str_v1(r, &s->parent_name) < 0)
                return TD_EPROTO;
        } else {
            s->parent = TD_YP_ID;
            if (read_id_v1(r, &s->parent_id) < 0)
                return TD_EPROTO;
        }
        if ((info & 0x20) && read_str_v1(r, &s->parent_sub) < 0)
            return TD_EPROTO;
    }
    switch (s->kind) {
    case TD_YK_DELETED:
        return td_lib0_read_varuint(r, &s->len);
    case TD_YK_JSON: {
        if (td_lib0_read_varuint(r, &s->len) < 0 || s->len > td_lib0_left(r))
            return TD_EPROTO;
        const uint8_t *start = r->p;
        for (uint64_t i = 0; i < s->len; i++) {
            struct td_ybytes t;
            if (td_lib0_read_varstring(r, &t) < 0)
                return TD_EPROTO;
            if (!(t.len == 9 && memcmp(t.p, "undefined", 9) == 0) && !valid_json_text(t))
                return TD_EPROTO;
        }
        s->data.p = start;
        s->data.len = (size_t)(r->p - start);
        s->enc = TD_YV_JSON_TEXT;
        return 0;
    }
    case TD_YK_BINARY:
        s->len = 1;
        return td_lib0_read_varbytes(r, &s->data);
    case TD_YK_STRING:
        if (td_lib0_read_varstring(r, &s->data) < 0 ||
            utf8_utf16_len(s->data.p, s->data.len, &s->len) < 0)
            return TD_EPROTO;
        return 0;
    case TD_YK_FORMAT:
        if (read_str_v1(r, &s->key) < 0)
            return TD_EPROTO;
        /* fall through */
    case TD_YK_EMBED:
        s->len = 1;
        s->enc = TD_YV_JSON_TEXT;
        if (td_lib0_read_varstring(r, &s->data) < 0 || !valid_json_text(s->data))
            return TD_EPROTO;
        return 0;
    case TD_YK_TYPE:
        s->len = 1;
        if (td_lib0_read_varuint(r, &v) < 0 || v > TD_YT_XML_TEXT)
            return TD_EPROTO;
        s->type_ref = (uint8_t)v;
        if (v == TD_YT_XML_ELEMENT || v == TD_YT_XML_HOOK)
            return read_str_v1(r, &s->key);
        return 0;
    case TD_YK_ANY:
        if (td_lib0_read_varuint(r, &s->len) < 0)
            return TD_EPROTO;
        return read_anys(r, s->len, &s->data);
    case TD_YK_DOC:
        s->len = 1;
        if (read_str_v1(r, &s->key) < 0)
            return TD_EPROTO;
        return read_anys(r, 1, &s->data);
    default:
        return TD_EPROTO;
    }
}

static int decode_v1(struct td_yupdate *u, const uint8_t *buf, size_t len)
{
    struct td_lib0_reader r;
    uint64_t nclients;
    int rc;
    td_lib0_reader_init(&r, buf, len);
    if (td_lib0_read_varuint(&r, &nclients) < 0 || nclients > td_lib0_left(&r))
        return TD_EPROTO;
    for (uint64_t c = 0; c < nclients; c++) {
        uint64_t n, client, clock;
        if (td_lib0_read_varuint(&r, &n) < 0 || td_lib0_read_varuint(&r, &client) < 0 ||
            td_lib0_read_varuint(&r, &clock) < 0 || n > td_lib0_left(&r))
            return TD_EPROTO;
        td_yupdate_add_run(u, client);
        u->structs = grow(u->structs, &u->capstructs, u->nstructs + n, sizeof(*u->structs));
        for (uint64_t i = 0; i < n; i++) {
            struct td_ystruct s;
            uint8_t info;
            memset(&s, 0, sizeof(s));
            if (td_lib0_read_u8(&r, &info) < 0)
                return TD_EPROTO;
            s.id.client = client;
            s.id.clock = clock;
            s.kind = (uint8_t)(info & 0x1f);
            if (s.kind == TD_YK_GC || s.kind == TD_YK_SKIP) {
                if (s.kind == TD_YK_SKIP && info != TD_YK_SKIP)
                    return TD_EPROTO;
                if (td_lib0_read_varuint(&r, &s.len) < 0)
                    return TD_EPROTO;
            } else if ((rc = decode_item_v1(&r, info, &s)) < 0) {
                return rc;
            }
            if ((rc = finish_struct(u, &s, &clock)) < 0)
                return rc;
        }
    }
    if ((rc = read_ds_v1(u, &r)) < 0)
        return rc;
    td_yupdate_sort_ds(u);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * v2 decode
 */

struct v2dec {
    struct td_lib0_intdiff_dec keyclock;
    struct td_lib0_uintrle_dec client;
    struct td_lib0_intdiff_dec leftclock;
    struct td_lib0_intdiff_dec rightclock;
    struct td_lib0_rle_dec info;
    struct td_lib0_str_dec str;
    struct td_lib0_rle_dec parentinfo;
    struct td_lib0_uintrle_dec typeref;
    struct td_lib0_uintrle_dec len;
    struct td_lib0_reader rest;
    struct td_ybytes *keys;
    size_t nkeys, capkeys;
};

static int v2_clock(struct td_lib0_intdiff_dec *d, uint64_t *v)
{
    int64_t x;
    if (td_lib0_intdiff_dec_read(d, &x) < 0 || x < 0)
        return TD_EPROTO;
    *v = (uint64_t)x;
    return 0;
}

static int v2_left_id(struct v2dec *d, struct td_yid *id)
{
    if (td_lib0_uintrle_dec_read(&d->client, &id->client) < 0)
        return TD_EPROTO;
    return v2_clock(&d->leftclock, &id->clock);
}

static int v2_string(struct v2dec *d, struct td_ybytes *s)
{
    return td_lib0_str_dec_read(&d->str, s, NULL);
}

static int v2_key(struct v2dec *d, struct td_ybytes *s)
{
    int64_t kc;
    if (td_lib0_intdiff_dec_read(&d->keyclock, &kc) < 0 || kc < 0)
        return TD_EPROTO;
    if ((uint64_t)kc < d->nkeys) {
        *s = d->keys[kc];
        return 0;
    }
    if (v2_string(d, s) < 0)
        return TD_EPROTO;
    d->keys = grow(d->keys, &d->capkeys, d->nkeys + 1, sizeof(*d->keys));
    d->keys[d->nkeys++] = *s;
    return 0;
}

static int decode_item_v2(struct td_yupdate *u, struct v2dec *d, uint8_t info, struct td_ystruct *s)
{
    uint8_t pi;
    uint64_t v;
    if (info & 0x80) {
        s->flags |= TD_YS_HAS_ORIGIN;
        if (v2_left_id(d, &s->origin) < 0)
            return TD_EPROTO;
    }
    if (info & 0x40) {
        s->flags |= TD_YS_HAS_RIGHT_ORIGIN;
        if (td_lib0_uintrle_dec_read(&d->client, &s->right_origin.client) < 0 ||
            v2_clock(&d->rightclock, &s->right_origin.clock) < 0)
            return TD_EPROTO;
    }
    if (info & 0x20)
        s->flags |= TD_YS_HAS_PARENT_SUB;
    if ((info & 0xc0) == 0) {
        if (td_lib0_rle_dec_read(&d->parentinfo, &pi) < 0 || pi > 1)
            return TD_EPROTO;
        if (pi == 1) {
            s->parent = TD_YP_ROOT;
            if (v2_string(d, &s->parent_name) < 0)
                return TD_EPROTO;
        } else {
            s->parent = TD_YP_ID;
            if (v2_left_id(d, &s->parent_id) < 0)
                return TD_EPROTO;
        }
        if ((info & 0x20) && v2_string(d, &s->parent_sub) < 0)
            return TD_EPROTO;
    }
    switch (s->kind) {
    case TD_YK_DELETED:
        return td_lib0_uintrle_dec_read(&d->len, &s->len);
    case TD_YK_JSON: {
        /* JSON text in the string column; rebuilt as varStrings back to back */
        struct td_buf tmp;
        if (td_lib0_uintrle_dec_read(&d->len, &s->len) < 0 ||
            s->len > (uint64_t)(d->str.end - d->str.s))
            return TD_EPROTO;
        td_buf_init(&tmp);
        for (uint64_t i = 0; i < s->len; i++) {
            struct td_ybytes t;
            if (v2_string(d, &t) < 0 ||
                (!(t.len == 9 && memcmp(t.p, "undefined", 9) == 0) && !valid_json_text(t))) {
                td_buf_free(&tmp);
                return TD_EPROTO;
            }
            td_lib0_write_varstring(&tmp, t.p, t.len);
        }
        s->data.p = td_yupdate_alloc(u, tmp.data, tmp.len);
        s->data.len = tmp.len;
        s->enc = TD_YV_JSON_TEXT;
        td_buf_free(&tmp);
        return 0;
    }
    case TD_YK_BINARY:
        s->len = 1;
        return td_lib0_read_varbytes(&d->rest, &s->data);
    case TD_YK_STRING:
        return td_lib0_str_dec_read(&d->str, &s->data, &s->len);
    case TD_YK_FORMAT:
        if (v2_key(d, &s->key) < 0)
            return TD_EPROTO;
        /* fall through */
    case TD_YK_EMBED:
        s->len = 1;
        s->enc = TD_YV_ANY;
        return read_anys(&d->rest, 1, &s->data);
    case TD_YK_TYPE:
        s->len = 1;
        if (td_lib0_uintrle_dec_read(&d->typeref, &v) < 0 || v > TD_YT_XML_TEXT)
            return TD_EPROTO;
        s->type_ref = (uint8_t)v;
        if (v == TD_YT_XML_ELEMENT || v == TD_YT_XML_HOOK)
            return v2_key(d, &s->key);
        return 0;
    case TD_YK_ANY:
        if (td_lib0_uintrle_dec_read(&d->len, &s->len) < 0)
            return TD_EPROTO;
        return read_anys(&d->rest, s->len, &s->data);
    case TD_YK_DOC:
        s->len = 1;
        if (v2_string(d, &s->key) < 0)
            return TD_EPROTO;
        return read_anys(&d->rest, 1, &s->data);
    default:
        return TD_EPROTO;
    }
}

static int decode_v2_body(struct td_yupdate *u, struct v2dec *d, size_t inlen)
{
    struct td_lib0_reader *r = &d->rest;
    uint64_t nclients;
    int rc;
    /* Column RLE lets a struct cost no bytes at all, so cap the total instead: 16 structs per
     * input byte (yjs documents have fewer than 1), and never less than 65536. */
    uint64_t max_structs = (uint64_t)inlen * 16;
    if (max_structs < 65536)
        max_structs = 65536;
    if (td_lib0_read_varuint(r, &nclients) < 0 || nclients > td_lib0_left(r))
        return TD_EPROTO;
    for (uint64_t c = 0; c < nclients; c++) {
        uint64_t n, client, clock;
        if (td_lib0_read_varuint(r, &n) < 0 || td_lib0_uintrle_dec_read(&d->client, &client) < 0 ||
            td_lib0_read_varuint(r, &clock) < 0)
            return TD_EPROTO;
        if (n > max_structs - u->nstructs)
            return TD_ELIMIT;
        td_yupdate_add_run(u, client);
        for (uint64_t i = 0; i < n; i++) {
            struct td_ystruct s;
            uint8_t info;
            memset(&s, 0, sizeof(s));
            if (td_lib0_rle_dec_read(&d->info, &info) < 0)
                return TD_EPROTO;
            s.id.client = client;
            s.id.clock = clock;
            s.kind = (uint8_t)(info & 0x1f);
            if (s.kind == TD_YK_GC) {
                if (td_lib0_uintrle_dec_read(&d->len, &s.len) < 0)
                    return TD_EPROTO;
            } else if (s.kind == TD_YK_SKIP) {
                if (info != TD_YK_SKIP || td_lib0_read_varuint(r, &s.len) < 0)
                    return TD_EPROTO;
            } else if ((rc = decode_item_v2(u, d, info, &s)) < 0) {
                return rc;
            }
            if ((rc = finish_struct(u, &s, &clock)) < 0)
                return rc;
        }
    }
    /* delete set: clock deltas from the previous range end, len - 1 */
    if (td_lib0_read_varuint(r, &nclients) < 0 || nclients > td_lib0_left(r))
        return TD_EPROTO;
    for (uint64_t i = 0; i < nclients; i++) {
        uint64_t client, n, cur = 0;
        if (td_lib0_read_varuint(r, &client) < 0 || td_lib0_read_varuint(r, &n) < 0 ||
            n > td_lib0_left(r))
            return TD_EPROTO;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t dc, dl;
            if (td_lib0_read_varuint(r, &dc) < 0 || td_lib0_read_varuint(r, &dl) < 0 ||
                dc > YU_MAX_CLOCK - cur || dl + 1 > YU_MAX_CLOCK - (cur + dc))
                return TD_EPROTO;
            cur += dc;
            td_yupdate_add_delete(u, client, cur, dl + 1);
            cur += dl + 1;
        }
    }
    td_yupdate_sort_ds(u);
    return 0;
}

static int decode_v2(struct td_yupdate *u, const uint8_t *buf, size_t len)
{
    struct v2dec d;
    struct td_lib0_reader r;
    struct td_ybytes col[9];
    uint64_t feature;
    td_lib0_reader_init(&r, buf, len);
    if (td_lib0_read_varuint(&r, &feature) < 0)
        return TD_EPROTO;
    for (int i = 0; i < 9; i++)
        if (td_lib0_read_varbytes(&r, &col[i]) < 0)
            return TD_EPROTO;
    memset(&d, 0, sizeof(d));
    td_lib0_intdiff_dec_init(&d.keyclock, col[0].p, col[0].len);
    td_lib0_uintrle_dec_init(&d.client, col[1].p, col[1].len);
    td_lib0_intdiff_dec_init(&d.leftclock, col[2].p, col[2].len);
    td_lib0_intdiff_dec_init(&d.rightclock, col[3].p, col[3].len);
    td_lib0_rle_dec_init(&d.info, col[4].p, col[4].len);
    if (td_lib0_str_dec_init(&d.str, col[5].p, col[5].len) < 0)
        return TD_EPROTO;
    td_lib0_rle_dec_init(&d.parentinfo, col[6].p, col[6].len);
    td_lib0_uintrle_dec_init(&d.typeref, col[7].p, col[7].len);
    td_lib0_uintrle_dec_init(&d.len, col[8].p, col[8].len);
    d.rest = r;
    int rc = decode_v2_body(u, &d, len);
    free(d.keys);
    return rc;
}

int td_yupdate_decode(struct td_yupdate *u, const uint8_t *buf, size_t len, int version)
{
    int rc;
    if (version == 1)
        rc = decode_v1(u, buf, len);
    else if (version == 2)
        rc = decode_v2(u, buf, len);
    else
        return TD_EINVAL;
    if (rc < 0)
        td_yupdate_free(u);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Value conversion between v1 JSON text and v2 Any
 */

/* one JSON text -> Any, appended to out */
static int json_text_to_any(struct td_ybytes t, struct td_buf *out)
{
    if (td_lib0_json_to_any((const char *)t.p, t.len, out) < 0)
        return TD_EINVAL;
    return 0;
}

/* one Any (from r) -> JSON text as JSON.stringify writes it; undefined -> "undefined" if
 * allow_undefined (ContentJSON), else an error */
static int any_to_json_text(struct td_lib0_reader *r, bool allow_undefined, struct td_buf *out)
{
    if (allow_undefined && r->p < r->end && *r->p == TD_LIB0_ANY_UNDEFINED) {
        r->p++;
        td_buf_append(out, "undefined", 9);
        return 0;
    }
    if (td_lib0_read_any_json(r, TD_LIB0_JSON_STRICT, out) < 0)
        return TD_EINVAL;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * v1 encode
 */

static bool runs_ok(const struct td_yupdate *u, const struct td_yclient_run *run)
{
    if (run->first > u->nstructs || run->n > u->nstructs - run->first)
        return false;
    const struct td_ystruct *s = u->structs + run->first;
    for (size_t i = 0; i < run->n; i++) {
        if (s[i].id.client != run->client || s[i].len == 0)
            return false;
        if (i > 0 && s[i].id.clock != s[i - 1].id.clock + s[i - 1].len)
            return false;
    }
    return true;
}

static size_t count_runs(const struct td_yupdate *u)
{
    size_t n = 0;
    for (size_t i = 0; i < u->nruns; i++)
        n += u->runs[i].n > 0;
    return n;
}

static uint8_t info_byte(const struct td_ystruct *s)
{
    if (s->kind == TD_YK_GC || s->kind == TD_YK_SKIP)
        return s->kind;
    return (uint8_t)(s->kind | ((s->flags & TD_YS_HAS_ORIGIN) ? 0x80 : 0) |
                     ((s->flags & TD_YS_HAS_RIGHT_ORIGIN) ? 0x40 : 0) |
                     ((s->flags & TD_YS_HAS_PARENT_SUB) ? 0x20 : 0));
}

static int write_value_v1(struct td_buf *out, const struct td_ystruct *s)
{
    if (s->enc == TD_YV_JSON_TEXT) {
        td_lib0_write_varstring(out, s->data.p, s->data.len);
        return 0;
    }
    struct td_buf tmp;
    struct td_lib0_reader r;
    td_buf_init(&tmp);
    td_lib0_reader_init(&r, s->data.p, s->data.len);
    int rc = any_to_json_text(&r, false, &tmp);
    if (rc == 0)
        td_lib0_write_varstring(out, tmp.data, tmp.len);
    td_buf_free(&tmp);
    return rc;
}

static int encode_struct_v1(struct td_buf *out, const struct td_ystruct *s)
{
    td_lib0_write_u8(out, info_byte(s));
    if (s->kind == TD_YK_GC || s->kind == TD_YK_SKIP) {
        td_lib0_write_varuint(out, s->len);
        return 0;
    }
    if (s->flags & TD_YS_HAS_ORIGIN) {
        td_lib0_write_varuint(out, s->origin.client);
        td_lib0_write_varuint(out, s->origin.clock);
    }
    if (s->flags & TD_YS_HAS_RIGHT_ORIGIN) {
        td_lib0_write_varuint(out, s->right_origin.client);
        td_lib0_write_varuint(out, s->right_origin.clock);
    }
    if (!(s->flags & (TD_YS_HAS_ORIGIN | TD_YS_HAS_RIGHT_ORIGIN))) {
        if (s->parent == TD_YP_ROOT) {
            td_lib0_write_varuint(out, 1);
            td_lib0_write_varstring(out, s->parent_name.p, s->parent_name.len);
        } else if (s->parent == TD_YP_ID) {
            td_lib0_write_varuint(out, 0);
            td_lib0_write_varuint(out, s->parent_id.client);
            td_lib0_write_varuint(out, s->parent_id.clock);
        } else {
            return TD_EINVAL;
        }
        if (s->flags & TD_YS_HAS_PARENT_SUB)
            td_lib0_write_varstring(out, s->parent_sub.p, s->parent_sub.len);
    }
    switch (s->kind) {
    case TD_YK_DELETED:
        td_lib0_write_varuint(out, s->len);
        return 0;
    case TD_YK_JSON:
        td_lib0_write_varuint(out, s->len);
        if (s->enc == TD_YV_JSON_TEXT) {
            td_buf_append(out, s->data.p, s->data.len);
        } else {
            struct td_lib0_reader r;
            td_lib0_reader_init(&r, s->data.p, s->data.len);
            struct td_buf tmp;
            td_buf_init(&tmp);
            for (uint64_t i = 0; i < s->len; i++) {
                tmp.len = 0;
                if (any_to_json_text(&r, true, &tmp) < 0) {
                    td_buf_free(&tmp);
                    return TD_EINVAL;
                }
                td_lib0_write_varstring(out, tmp.data, tmp.len);
            }
            td_buf_free(&tmp);
        }
        return 0;
    case TD_YK_BINARY:
        td_lib0_write_varbytes(out, s->data.p, s->data.len);
        return 0;
    case TD_YK_STRING:
        td_lib0_write_varstring(out, s->data.p, s->data.len);
        return 0;
    case TD_YK_FORMAT:
        td_lib0_write_varstring(out, s->key.p, s->key.len);
        /* fall through */
    case TD_YK_EMBED:
        return write_value_v1(out, s);
    case TD_YK_TYPE:
        td_lib0_write_varuint(out, s->type_ref);
        if (s->type_ref == TD_YT_XML_ELEMENT || s->type_ref == TD_YT_XML_HOOK)
            td_lib0_write_varstring(out, s->key.p, s->key.len);
        return 0;
    case TD_YK_ANY:
        td_lib0_write_varuint(out, s->len);
        td_buf_append(out, s->data.p, s->data.len);
        return 0;
    case TD_YK_DOC:
        td_lib0_write_varstring(out, s->key.p, s->key.len);
        td_buf_append(out, s->data.p, s->data.len);
        return 0;
    default:
        return TD_EINVAL;
    }
}

static size_t count_ds_clients(const struct td_yupdate *u)
{
    size_t n = 0;
    for (size_t i = 0; i < u->nds; i++)
        n += i == 0 || u->ds[i].client != u->ds[i - 1].client;
    return n;
}

static int encode_v1(const struct td_yupdate *u, struct td_buf *out)
{
    int rc;
    td_lib0_write_varuint(out, count_runs(u));
    for (size_t i = 0; i < u->nruns; i++) {
        const struct td_yclient_run *run = &u->runs[i];
        if (run->n == 0)
            continue;
        if (!runs_ok(u, run))
            return TD_EINVAL;
        const struct td_ystruct *s = u->structs + run->first;
        td_lib0_write_varuint(out, run->n);
        td_lib0_write_varuint(out, run->client);
        td_lib0_write_varuint(out, s[0].id.clock);
        for (size_t k = 0; k < run->n; k++)
            if ((rc = encode_struct_v1(out, &s[k])) < 0)
                return rc;
    }
    td_lib0_write_varuint(out, count_ds_clients(u));
    for (size_t i = 0; i < u->nds;) {
        size_t j = i;
        while (j < u->nds && u->ds[j].client == u->ds[i].client)
            j++;
        td_lib0_write_varuint(out, u->ds[i].client);
        td_lib0_write_varuint(out, j - i);
        for (size_t k = i; k < j; k++) {
            td_lib0_write_varuint(out, u->ds[k].clock);
            td_lib0_write_varuint(out, u->ds[k].len);
        }
        i = j;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * v2 encode
 */

struct v2enc {
    struct td_lib0_intdiff_enc keyclock;
    struct td_lib0_uintrle_enc client;
    struct td_lib0_intdiff_enc leftclock;
    struct td_lib0_intdiff_enc rightclock;
    struct td_lib0_rle_enc info;
    struct td_lib0_str_enc str;
    struct td_lib0_rle_enc parentinfo;
    struct td_lib0_uintrle_enc typeref;
    struct td_lib0_uintrle_enc len;
    struct td_buf rest;
    int64_t nextkey;
};

static void v2enc_init(struct v2enc *e)
{
    td_lib0_intdiff_enc_init(&e->keyclock);
    td_lib0_uintrle_enc_init(&e->client);
    td_lib0_intdiff_enc_init(&e->leftclock);
    td_lib0_intdiff_enc_init(&e->rightclock);
    td_lib0_rle_enc_init(&e->info);
    td_lib0_str_enc_init(&e->str);
    td_lib0_rle_enc_init(&e->parentinfo);
    td_lib0_uintrle_enc_init(&e->typeref);
    td_lib0_uintrle_enc_init(&e->len);
    td_buf_init(&e->rest);
    e->nextkey = 0;
}

static void v2enc_free(struct v2enc *e)
{
    td_lib0_intdiff_enc_free(&e->keyclock);
    td_lib0_uintrle_enc_free(&e->client);
    td_lib0_intdiff_enc_free(&e->leftclock);
    td_lib0_intdiff_enc_free(&e->rightclock);
    td_lib0_rle_enc_free(&e->info);
    td_lib0_str_enc_free(&e->str);
    td_lib0_rle_enc_free(&e->parentinfo);
    td_lib0_uintrle_enc_free(&e->typeref);
    td_lib0_uintrle_enc_free(&e->len);
    td_buf_free(&e->rest);
}

static void v2_column(struct td_buf *out, struct td_buf *tmp)
{
    td_lib0_write_varbytes(out, tmp->data, tmp->len);
    tmp->len = 0;
}

static void v2enc_finish(struct v2enc *e, struct td_buf *out)
{
    struct td_buf tmp;
    td_buf_init(&tmp);
    td_lib0_write_varuint(out, 0);
    td_lib0_intdiff_enc_finish(&e->keyclock, &tmp);
    v2_column(out, &tmp);
    td_lib0_uintrle_enc_finish(&e->client, &tmp);
    v2_column(out, &tmp);
    td_lib0_intdiff_enc_finish(&e->leftclock, &tmp);
    v2_column(out, &tmp);
    td_lib0_intdiff_enc_finish(&e->rightclock, &tmp);
    v2_column(out, &tmp);
    td_lib0_rle_enc_finish(&e->info, &tmp);
    v2_column(out, &tmp);
    td_lib0_str_enc_finish(&e->str, &tmp);
    v2_column(out, &tmp);
    td_lib0_rle_enc_finish(&e->parentinfo, &tmp);
    v2_column(out, &tmp);
    td_lib0_uintrle_enc_finish(&e->typeref, &tmp);
    v2_column(out, &tmp);
    td_lib0_uintrle_enc_finish(&e->len, &tmp);
    v2_column(out, &tmp);
    td_buf_append(out, e->rest.data, e->rest.len);
    td_buf_free(&tmp);
}

static void v2_write_key(struct v2enc *e, struct td_ybytes k)
{
    td_lib0_intdiff_enc_write(&e->keyclock, e->nextkey++);
    td_lib0_str_enc_write(&e->str, k.p, k.len);
}

static int write_value_v2(struct v2enc *e, const struct td_ystruct *s)
{
    if (s->enc == TD_YV_ANY) {
        td_buf_append(&e->rest, s->data.p, s->data.len);
        return 0;
    }
    return json_text_to_any(s->data, &e->rest);
}

static int encode_struct_v2(struct v2enc *e, const struct td_ystruct *s)
{
    td_lib0_rle_enc_write(&e->info, info_byte(s));
    if (s->kind == TD_YK_GC) {
        td_lib0_uintrle_enc_write(&e->len, s->len);
        return 0;
    }
    if (s->kind == TD_YK_SKIP) {
        td_lib0_write_varuint(&e->rest, s->len);
        return 0;
    }
    if (s->flags & TD_YS_HAS_ORIGIN) {
        td_lib0_uintrle_enc_write(&e->client, s->origin.client);
        td_lib0_intdiff_enc_write(&e->leftclock, (int64_t)s->origin.clock);
    }
    if (s->flags & TD_YS_HAS_RIGHT_ORIGIN) {
        td_lib0_uintrle_enc_write(&e->client, s->right_origin.client);
        td_lib0_intdiff_enc_write(&e->rightclock, (int64_t)s->right_origin.clock);
    }
    if (!(s->flags & (TD_YS_HAS_ORIGIN | TD_YS_HAS_RIGHT_ORIGIN))) {
        if (s->parent == TD_YP_ROOT) {
            td_lib0_rle_enc_write(&e->parentinfo, 1);
            td_lib0_str_enc_write(&e->str, s->parent_name.p, s->parent_name.len);
        } else if (s->parent == TD_YP_ID) {
            td_lib0_rle_enc_write(&e->parentinfo, 0);
            td_lib0_uintrle_enc_write(&e->client, s->parent_id.client);
            td_lib0_intdiff_enc_write(&e->leftclock, (int64_t)s->parent_id.clock);
        } else {
            return TD_EINVAL;
        }
        if (s->flags & TD_YS_HAS_PARENT_SUB)
            td_lib0_str_enc_write(&e->str, s->parent_sub.p, s->parent_sub.len);
    }
    switch (s->kind) {
    case TD_YK_DELETED:
        td_lib0_uintrle_enc_write(&e->len, s->len);
        return 0;
    case TD_YK_JSON: {
        td_lib0_uintrle_enc_write(&e->len, s->len);
        struct td_lib0_reader r;
        td_lib0_reader_init(&r, s->data.p, s->data.len);
        if (s->enc == TD_YV_JSON_TEXT) {
            for (uint64_t i = 0; i < s->len; i++) {
                struct td_ybytes t;
                if (td_lib0_read_varstring(&r, &t) < 0)
                    return TD_EINVAL;
                td_lib0_str_enc_write(&e->str, t.p, t.len);
            }
        } else {
            struct td_buf tmp;
            td_buf_init(&tmp);
            for (uint64_t i = 0; i < s->len; i++) {
                tmp.len = 0;
                if (any_to_json_text(&r, true, &tmp) < 0) {
                    td_buf_free(&tmp);
                    return TD_EINVAL;
                }
                td_lib0_str_enc_write(&e->str, tmp.data, tmp.len);
            }
            td_buf_free(&tmp);
        }
        return 0;
    }
    case TD_YK_BINARY:
        td_lib0_write_varbytes(&e->rest, s->data.p, s->data.len);
        return 0;
    case TD_YK_STRING:
        td_lib0_str_enc_write(&e->str, s->data.p, s->data.len);
        return 0;
    case TD_YK_FORMAT:
        v2_write_key(e, s->key);
        /* fall through */
    case TD_YK_EMBED:
        return write_value_v2(e, s);
    case TD_YK_TYPE:
        td_lib0_uintrle_enc_write(&e->typeref, s->type_ref);
        if (s->type_ref == TD_YT_XML_ELEMENT || s->type_ref == TD_YT_XML_HOOK)
            v2_write_key(e, s->key);
        return 0;
    case TD_YK_ANY:
        td_lib0_uintrle_enc_write(&e->len, s->len);
        td_buf_append(&e->rest, s->data.p, s->data.len);
        return 0;
    case TD_YK_DOC:
        td_lib0_str_enc_write(&e->str, s->key.p, s->key.len);
        td_buf_append(&e->rest, s->data.p, s->data.len);
        return 0;
    default:
        return TD_EINVAL;
    }
}

static int encode_v2(const struct td_yupdate *u, struct td_buf *out)
{
    struct v2enc e;
    int rc = 0;
    v2enc_init(&e);
    td_lib0_write_varuint(&e.rest, count_runs(u));
    for (size_t i = 0; i < u->nruns && rc == 0; i++) {
        const struct td_yclient_run *run = &u->runs[i];
        if (run->n == 0)
            continue;
        if (!runs_ok(u, run)) {
            rc = TD_EINVAL;
            break;
        }
        const struct td_ystruct *s = u->structs + run->first;
        td_lib0_write_varuint(&e.rest, run->n);
        td_lib0_uintrle_enc_write(&e.client, run->client);
        td_lib0_write_varuint(&e.rest, s[0].id.clock);
        for (size_t k = 0; k < run->n && rc == 0; k++)
            rc = encode_struct_v2(&e, &s[k]);
    }
    if (rc == 0) {
        td_lib0_write_varuint(&e.rest, count_ds_clients(u));
        for (size_t i = 0; i < u->nds && rc == 0;) {
            size_t j = i;
            uint64_t cur = 0;
            while (j < u->nds && u->ds[j].client == u->ds[i].client)
                j++;
            td_lib0_write_varuint(&e.rest, u->ds[i].client);
            td_lib0_write_varuint(&e.rest, j - i);
            for (size_t k = i; k < j; k++) {
                if (u->ds[k].clock < cur || u->ds[k].len == 0) {
                    rc = TD_EINVAL;
                    break;
                }
                td_lib0_write_varuint(&e.rest, u->ds[k].clock - cur);
                td_lib0_write_varuint(&e.rest, u->ds[k].len - 1);
                cur = u->ds[k].clock + u->ds[k].len;
            }
            i = j;
        }
    }
    if (rc == 0)
        v2enc_finish(&e, out);
    v2enc_free(&e);
    return rc;
}

int td_yupdate_encode(const struct td_yupdate *u, int version, struct td_buf *out)
{
    size_t mark = out->len;
    int rc;
    if (version == 1)
        rc = encode_v1(u, out);
    else if (version == 2)
        rc = encode_v2(u, out);
    else
        rc = TD_EINVAL;
    if (rc < 0)
        out->len = mark;
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Slicing
 */

/* skip n values of a JSON (JSON text or Any) or ANY struct's data */
static int skip_values(const struct td_ystruct *s, struct td_lib0_reader *r, uint64_t n)
{
    bool text = s->kind == TD_YK_JSON && s->enc == TD_YV_JSON_TEXT;
    for (uint64_t i = 0; i < n; i++) {
        struct td_ybytes t;
        if (text ? td_lib0_read_varstring(r, &t) < 0
                 : td_lib0_skip_any(r, TD_YUPDATE_MAX_DEPTH) < 0)
            return TD_EINVAL;
    }
    return 0;
}

static const uint8_t fffd[3] = {0xef, 0xbf, 0xbd};

int td_ystruct_slice(struct td_yupdate *u, const struct td_ystruct *s, uint64_t offset,
                     uint64_t len, struct td_ystruct *out)
{
    if (len == 0 || offset > s->len || len > s->len - offset)
        return TD_EINVAL;
    struct td_ystruct r = *s;
    r.id.clock = s->id.clock + offset;
    r.len = len;
    if (offset > 0 && s->kind != TD_YK_GC && s->kind != TD_YK_SKIP) {
        r.flags |= TD_YS_HAS_ORIGIN;
        r.origin.client = s->id.client;
        r.origin.clock = s->id.clock + offset - 1;
    }
    switch (s->kind) {
    case TD_YK_GC:
    case TD_YK_SKIP:
    case TD_YK_DELETED:
        break;
    case TD_YK_STRING: {
        size_t b0, b1;
        bool m0, m1;
        if (td_lib0_utf16_to_byte(s->data.p, s->data.len, offset, &b0, &m0) < 0 ||
            td_lib0_utf16_to_byte(s->data.p, s->data.len, offset + len, &b1, &m1) < 0)
            return TD_EINVAL;
        if (!m0 && !m1) {
            r.data.p = s->data.p + b0;
            r.data.len = b1 - b0;
            break;
        }
        /* Yjs ContentString.splice: a cut inside a surrogate pair turns the broken
         * character on both sides into U+FFFD (one UTF-16 unit each). */
        size_t from = m0 ? b0 + 4 : b0;
        size_t n = (m0 ? 3 : 0) + (b1 > from ? b1 - from : 0) + (m1 ? 3 : 0);
        uint8_t *d = arena_reserve(u, n);
        size_t w = 0;
        if (m0) {
            memcpy(d, fffd, 3);
            w = 3;
        }
        if (b1 > from) {
            memcpy(d + w, s->data.p + from, b1 - from);
            w += b1 - from;
        }
        if (m1)
            memcpy(d + w, fffd, 3);
        r.data.p = d;
        r.data.len = n;
        break;
    }
    case TD_YK_JSON:
    case TD_YK_ANY: {
        struct td_lib0_reader rd;
        td_lib0_reader_init(&rd, s->data.p, s->data.len);
        if (skip_values(s, &rd, offset) < 0)
            return TD_EINVAL;
        const uint8_t *start = rd.p;
        if (skip_values(s, &rd, len) < 0)
            return TD_EINVAL;
        r.data.p = start;
        r.data.len = (size_t)(rd.p - start);
        break;
    }
    default:
        if (offset != 0 || len != s->len)
            return TD_EINVAL;
        break;
    }
    *out = r;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * State vectors
 */

void td_ysv_init(struct td_ysv *sv)
{
    sv->e = NULL;
    sv->n = 0;
    sv->cap = 0;
}

void td_ysv_free(struct td_ysv *sv)
{
    free(sv->e);
    td_ysv_init(sv);
}

/* index of the first entry with client <= c (entries are client-descending) */
static size_t sv_find(const struct td_ysv *sv, uint64_t c)
{
    size_t lo = 0, hi = sv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sv->e[mid].client > c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t td_ysv_get(const struct td_ysv *sv, uint64_t client)
{
    size_t i = sv_find(sv, client);
    return i < sv->n && sv->e[i].client == client ? sv->e[i].clock : 0;
}

void td_ysv_set(struct td_ysv *sv, uint64_t client, uint64_t clock)
{
    size_t i = sv_find(sv, client);
    if (i < sv->n && sv->e[i].client == client) {
        sv->e[i].clock = clock;
        return;
    }
    sv->e = grow(sv->e, &sv->cap, sv->n + 1, sizeof(*sv->e));
    memmove(sv->e + i + 1, sv->e + i, (sv->n - i) * sizeof(*sv->e));
    sv->e[i].client = client;
    sv->e[i].clock = clock;
    sv->n++;
}

int td_ysv_decode(struct td_ysv *sv, const uint8_t *buf, size_t len)
{
    struct td_lib0_reader r;
    uint64_t n;
    struct td_ysv tmp;
    td_lib0_reader_init(&r, buf, len);
    if (td_lib0_read_varuint(&r, &n) < 0 || n > td_lib0_left(&r))
        return TD_EPROTO;
    td_ysv_init(&tmp);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t c, k;
        if (td_lib0_read_varuint(&r, &c) < 0 || td_lib0_read_varuint(&r, &k) < 0) {
            td_ysv_free(&tmp);
            return TD_EPROTO;
        }
        td_ysv_set(&tmp, c, k);
    }
    td_ysv_free(sv);
    *sv = tmp;
    return 0;
}

void td_ysv_encode(const struct td_ysv *sv, struct td_buf *out)
{
    td_lib0_write_varuint(out, sv->n);
    for (size_t i = 0; i < sv->n; i++) {
        td_lib0_write_varuint(out, sv->e[i].client);
        td_lib0_write_varuint(out, sv->e[i].clock);
    }
}

/* ---------------------------------------------------------------------------------------
 * Update-level operations (yjs updates.js)
 */

/* How yjs's lazy reader sees a struct: parentSub is known only with explicit parent info. */
static void lazy_view(struct td_ystruct *s)
{
    if (s->flags & (TD_YS_HAS_ORIGIN | TD_YS_HAS_RIGHT_ORIGIN))
        s->flags &= (uint8_t)~TD_YS_HAS_PARENT_SUB;
}

/* A cursor over an update's structs in run order (lazyStructReaderGenerator). */
struct lazy {
    const struct td_yupdate *u;
    const size_t *order; /* run visiting order, or NULL for as stored */
    size_t run, k;
    bool filter_skips;
    bool has;
    struct td_ystruct cur;
};

static void lazy_next(struct lazy *l)
{
    const struct td_yupdate *u = l->u;
    for (;;) {
        while (l->run < u->nruns && l->k >= u->runs[l->order ? l->order[l->run] : l->run].n) {
            l->run++;
            l->k = 0;
        }
        if (l->run >= u->nruns) {
            l->has = false;
            return;
        }
        size_t ri = l->order ? l->order[l->run] : l->run;
        const struct td_ystruct *s = &u->structs[u->runs[ri].first + l->k++];
        if (l->filter_skips && s->kind == TD_YK_SKIP)
            continue;
        l->cur = *s;
        lazy_view(&l->cur);
        l->has = true;
        return;
    }
}

static void lazy_init(struct lazy *l, const struct td_yupdate *u, bool filter_skips)
{
    l->u = u;
    l->order = NULL;
    l->run = 0;
    l->k = 0;
    l->filter_skips = filter_skips;
    lazy_next(l);
}

/*
 * LazyStructWriter: a new run whenever the client changes. yjs would also append a struct that
 * does not continue the run (possible only when an input names a client in two runs), writing
 * a corrupt update; we start a new run instead.
 */
static void lazy_write(struct td_yupdate *out, const struct td_ystruct *s)
{
    if (out->nruns > 0 && out->runs[out->nruns - 1].n > 0) {
        const struct td_ystruct *last = &out->structs[out->nstructs - 1];
        if (last->id.client == s->id.client && last->id.clock + last->len != s->id.clock)
            td_yupdate_add_run(out, s->id.client);
    }
    td_yupdate_add_struct(out, s);
}

static uint64_t s_end(const struct td_ystruct *s)
{
    return s->id.clock + s->len;
}

static int lazy_cmp(const struct lazy *a, const struct lazy *b)
{
    if (a->cur.id.client != b->cur.id.client)
        return a->cur.id.client > b->cur.id.client ? -1 : 1;
    if (a->cur.id.clock != b->cur.id.clock)
        return a->cur.id.clock < b->cur.id.clock ? -1 : 1;
    return 0;
}

static int cmp_run(const void *a, const void *b, void *arg)
{
    const struct td_yupdate *u = arg;
    const struct td_yclient_run *x = &u->runs[*(const size_t *)a];
    const struct td_yclient_run *y = &u->runs[*(const size_t *)b];
    if (x->client != y->client)
        return x->client > y->client ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/*
 * run_order returns the runs of u in client-descending order (stable), or NULL when they are
 * already in that order (always, for what yjs writes). The yjs merge loop relies on that order:
 * fed ascending clients it silently drops structs.
 */
static size_t *run_order(const struct td_yupdate *u)
{
    bool sorted = true;
    for (size_t i = 1; i < u->nruns && sorted; i++)
        sorted = u->runs[i - 1].client > u->runs[i].client;
    if (sorted)
        return NULL;
    size_t *o = td_xmalloc(u->nruns * sizeof(*o));
    for (size_t i = 0; i < u->nruns; i++)
        o[i] = i;
    qsort_r(o, u->nruns, sizeof(*o), cmp_run, (void *)(uintptr_t)u);
    return o;
}

/*
 * merge_structs merges the struct sections of a and b into out exactly as yjs
 * mergeUpdatesV2 does for two updates (the same decisions in the same order).
 */
static int merge_structs(const struct td_yupdate *a, const struct td_yupdate *b,
                         struct td_yupdate *out)
{
    struct lazy la, lb;
    struct lazy *arr[2];
    size_t n;
    struct td_ystruct cw; /* currWrite */
    bool has_cw = false;
    size_t *oa = run_order(a), *ob = run_order(b);
    int rc = 0;
    lazy_init(&la, a, true);
    lazy_init(&lb, b, true);
    if (oa || ob) {
        la.order = oa;
        lb.order = ob;
        la.run = lb.run = la.k = lb.k = 0;
        lazy_next(&la);
        lazy_next(&lb);
    }
    arr[0] = &la;
    arr[1] = &lb;
    n = 2;
    for (;;) {
        /* filter exhausted readers, then a stable sort (client desc, clock asc) */
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (arr[i]->has)
                arr[m++] = arr[i];
        n = m;
        if (n == 0)
            break;
        if (n == 2 && lazy_cmp(arr[0], arr[1]) > 0) {
            struct lazy *t = arr[0];
            arr[0] = arr[1];
            arr[1] = t;
        }
        struct lazy *cd = arr[0];
        uint64_t first_client = cd->cur.id.client;
        if (has_cw) {
            bool iterated = false;
            while (cd->has && s_end(&cd->cur) <= s_end(&cw) && cd->cur.id.client >= cw.id.client) {
                lazy_next(cd);
                iterated = true;
            }
            if (!cd->has || cd->cur.id.client != first_client ||
                (iterated && cd->cur.id.clock > s_end(&cw)))
                continue;
            struct td_ystruct curr = cd->cur;
            if (first_client != cw.id.client) {
                lazy_write(out, &cw);
                cw = curr;
                lazy_next(cd);
            } else if (s_end(&cw) < curr.id.clock) {
                if (cw.kind == TD_YK_SKIP) {
                    /* extend the existing skip (yjs swallows curr into it) */
                    cw.len = s_end(&curr) - cw.id.clock;
                } else {
                    lazy_write(out, &cw);
                    struct td_ystruct sk;
                    memset(&sk, 0, sizeof(sk));
                    sk.kind = TD_YK_SKIP;
                    sk.id.client = first_client;
                    sk.id.clock = s_end(&cw);
                    sk.len = curr.id.clock - sk.id.clock;
                    cw = sk;
                }
            } else {
                if (curr.id.clock > s_end(&cw)) {
                    rc = TD_EPROTO; /* cannot happen with well-formed inputs */
                    break;
                }
                uint64_t diff = s_end(&cw) - curr.id.clock;
                if (diff > 0) {
                    if (cw.kind == TD_YK_SKIP) {
                        cw.len -= diff;
                        if (cw.len == 0) {
                            rc = TD_EPROTO;
                            break;
                        }
                    } else {
                        struct td_ystruct sl;
                        if (diff >= curr.len ||
                            td_ystruct_slice(out, &curr, diff, curr.len - diff, &sl) < 0) {
                            rc = TD_EPROTO;
                            break;
                        }
                        curr = sl;
                    }
                }
                /* only GC merges with GC here (Item.mergeWith needs item.right === right,
                 * which a lazily read item never satisfies) */
                if (cw.kind == TD_YK_GC && curr.kind == TD_YK_GC) {
                    cw.len += curr.len;
                } else {
                    lazy_write(out, &cw);
                    cw = curr;
                    lazy_next(cd);
                }
            }
        } else {
            cw = cd->cur;
            has_cw = true;
            lazy_next(cd);
        }
        while (cd->has && cd->cur.id.client == first_client && cd->cur.id.clock == s_end(&cw) &&
               cd->cur.kind != TD_YK_SKIP) {
            lazy_write(out, &cw);
            cw = cd->cur;
            lazy_next(cd);
        }
    }
    if (has_cw && rc == 0)
        lazy_write(out, &cw);
    free(oa);
    free(ob);
    return rc;
}

/* out takes over the arena blocks of u (views in out may point into them). */
static void steal_arena(struct td_yupdate *out, struct td_yupdate *u)
{
    struct td_yarena_block *b = u->arena;
    if (b == NULL)
        return;
    struct td_yarena_block *last = b;
    while (last->next != NULL)
        last = last->next;
    if (out->arena == NULL) {
        out->arena = b;
    } else {
        last->next = out->arena->next;
        out->arena->next = b;
    }
    u->arena = NULL;
}

static int merge2(struct td_yupdate *a, struct td_yupdate *b, struct td_yupdate *out)
{
    int rc = merge_structs(a, b, out);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < a->nds; i++)
        td_yupdate_add_delete(out, a->ds[i].client, a->ds[i].clock, a->ds[i].len);
    for (size_t i = 0; i < b->nds; i++)
        td_yupdate_add_delete(out, b->ds[i].client, b->ds[i].clock, b->ds[i].len);
    td_yupdate_sort_ds(out);
    steal_arena(out, a);
    steal_arena(out, b);
    return 0;
}

static int merge_range(const uint8_t *const *ups, const size_t *lens, size_t lo, size_t hi,
                       int version, struct td_yupdate *out)
{
    if (hi - lo == 1)
        return td_yupdate_decode(out, ups[lo], lens[lo], version);
    size_t mid = lo + (hi - lo) / 2;
    struct td_yupdate a, b;
    td_yupdate_init(&a);
    td_yupdate_init(&b);
    int rc = merge_range(ups, lens, lo, mid, version, &a);
    if (rc == 0)
        rc = merge_range(ups, lens, mid, hi, version, &b);
    if (rc == 0)
        rc = merge2(&a, &b, out);
    if (rc < 0)
        td_yupdate_free(out);
    td_yupdate_free(&a);
    td_yupdate_free(&b);
    return rc;
}

int td_yupdate_merge(const uint8_t *const *ups, const size_t *lens, size_t n, int version,
                     struct td_buf *out)
{
    struct td_yupdate m;
    int rc;
    if (version != 1 && version != 2)
        return TD_EINVAL;
    td_yupdate_init(&m);
    if (n == 0) {
        rc = td_yupdate_encode(&m, version, out);
        td_yupdate_free(&m);
        return rc;
    }
    if (n == 1) {
        rc = td_yupdate_decode(&m, ups[0], lens[0], version);
        td_yupdate_free(&m);
        if (rc == 0)
            td_buf_append(out, ups[0], lens[0]);
        return rc;
    }
    rc = merge_range(ups, lens, 0, n, version, &m);
    if (rc == 0)
        rc = td_yupdate_encode(&m, version, out);
    td_yupdate_free(&m);
    return rc == TD_EINVAL ? TD_EPROTO : rc;
}

int td_yupdate_diff(const uint8_t *up, size_t len, int version, const struct td_ysv *sv,
                    struct td_buf *out)
{
    struct td_yupdate u, o;
    struct lazy l;
    int rc;
    td_yupdate_init(&u);
    td_yupdate_init(&o);
    if ((rc = td_yupdate_decode(&u, up, len, version)) < 0)
        return rc;
    lazy_init(&l, &u, false);
    while (l.has) {
        uint64_t client = l.cur.id.client;
        uint64_t svc = td_ysv_get(sv, client);
        if (l.cur.kind == TD_YK_SKIP) {
            lazy_next(&l);
            continue;
        }
        if (s_end(&l.cur) > svc) {
            struct td_ystruct s = l.cur;
            if (svc > s.id.clock) {
                /* Item.write(encoder, offset): origin rewritten, content sliced */
                rc = td_ystruct_slice(&o, &l.cur, svc - s.id.clock, s_end(&l.cur) - svc, &s);
                if (rc < 0)
                    break;
            }
            lazy_write(&o, &s);
            lazy_next(&l);
            while (l.has && l.cur.id.client == client) {
                lazy_write(&o, &l.cur);
                lazy_next(&l);
            }
        } else {
            while (l.has && l.cur.id.client == client && s_end(&l.cur) <= svc)
                lazy_next(&l);
        }
    }
    if (rc == 0) {
        o.ds = u.ds;
        o.nds = u.nds;
        o.capds = u.capds;
        u.ds = NULL;
        u.nds = u.capds = 0;
        rc = td_yupdate_encode(&o, version, out);
    }
    td_yupdate_free(&o);
    td_yupdate_free(&u);
    return rc == TD_EINVAL ? TD_EPROTO : rc;
}

int td_yupdate_state_vector(const uint8_t *up, size_t len, int version, struct td_ysv *sv)
{
    struct td_yupdate u;
    struct lazy l;
    struct td_ysv res;
    int rc;
    td_yupdate_init(&u);
    if ((rc = td_yupdate_decode(&u, up, len, version)) < 0)
        return rc;
    td_ysv_init(&res);
    lazy_init(&l, &u, false);
    if (l.has) {
        /* encodeStateVectorFromUpdateV2, quirks included */
        uint64_t cur_client = l.cur.id.client;
        bool stop = l.cur.id.clock != 0;
        uint64_t cur_clock = stop ? 0 : s_end(&l.cur);
        for (; l.has; lazy_next(&l)) {
            if (cur_client != l.cur.id.client) {
                if (cur_clock != 0)
                    td_ysv_set(&res, cur_client, cur_clock);
                cur_client = l.cur.id.client;
                cur_clock = 0;
                stop = l.cur.id.clock != 0;
            }
            if (l.cur.kind == TD_YK_SKIP)
                stop = true;
            if (!stop)
                cur_clock = s_end(&l.cur);
        }
        if (cur_clock != 0)
            td_ysv_set(&res, cur_client, cur_clock);
    }
    td_yupdate_free(&u);
    td_ysv_free(sv);
    *sv = res;
    return 0;
}

int td_yupdate_convert(const uint8_t *up, size_t len, int from, int to, struct td_buf *out)
{
    struct td_yupdate u;
    int rc;
    td_yupdate_init(&u);
    if ((rc = td_yupdate_decode(&u, up, len, from)) < 0)
        return rc;
    for (size_t i = 0; i < u.nstructs; i++)
        lazy_view(&u.structs[i]);
    rc = td_yupdate_encode(&u, to, out);
    td_yupdate_free(&u);
    return rc == TD_EINVAL ? TD_EPROTO : rc;
}
