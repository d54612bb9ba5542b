#include "crdt/td_lib0.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_utf8.h"

/* ---------------------------------------------------------------------------------------
 * Reading
 */

int td_lib0_read_u8(struct td_lib0_reader *r, uint8_t *v)
{
    if (r->p >= r->end)
        return TD_EPROTO;
    *v = *r->p++;
    return 0;
}

int td_lib0_read_varuint(struct td_lib0_reader *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    /* Fast path: one byte. */
    if (p < r->end && *p < 0x80) {
        *v = *p;
        r->p = p + 1;
        return 0;
    }
    uint64_t num = 0;
    unsigned shift = 0;
    while (p < r->end) {
        uint8_t b = *p++;
        num |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            if (num > TD_LIB0_MAX_UINT)
                return TD_EPROTO;
            *v = num;
            r->p = p;
            return 0;
        }
        shift += 7;
        if (shift > 49) /* a 9th byte would exceed 2^53 */
            return TD_EPROTO;
    }
    return TD_EPROTO;
}

int td_lib0_read_varint(struct td_lib0_reader *r, uint64_t *mag, bool *neg)
{
    const uint8_t *p = r->p;
    if (p >= r->end)
        return TD_EPROTO;
    uint8_t b = *p++;
    uint64_t num = b & 0x3f;
    bool sign = (b & 0x40) != 0;
    unsigned shift = 6;
    while (b & 0x80) {
        if (p >= r->end || shift > 48)
            return TD_EPROTO;
        b = *p++;
        num |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    }
    if (num > TD_LIB0_MAX_UINT)
        return TD_EPROTO;
    *mag = num;
    *neg = sign;
    r->p = p;
    return 0;
}

int td_lib0_read_bytes(struct td_lib0_reader *r, size_t n, struct td_ybytes *out)
{
    if (td_lib0_left(r) < n)
        return TD_EPROTO;
    out->p = r->p;
    out->len = n;
    r->p += n;
    return 0;
}

int td_lib0_read_varbytes(struct td_lib0_reader *r, struct td_ybytes *out)
{
    uint64_t n;
    struct td_lib0_reader save = *r;
    if (td_lib0_read_varuint(r, &n) < 0 || n > td_lib0_left(r)) {
        *r = save;
        return TD_EPROTO;
    }
    return td_lib0_read_bytes(r, (size_t)n, out);
}

int td_lib0_read_varstring(struct td_lib0_reader *r, struct td_ybytes *out)
{
    return td_lib0_read_varbytes(r, out);
}

static uint64_t load_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int td_lib0_read_f32(struct td_lib0_reader *r, float *v)
{
    if (td_lib0_left(r) < 4)
        return TD_EPROTO;
    uint32_t u = (uint32_t)load_be(r->p, 4);
    memcpy(v, &u, 4);
    r->p += 4;
    return 0;
}

int td_lib0_read_f64(struct td_lib0_reader *r, double *v)
{
    if (td_lib0_left(r) < 8)
        return TD_EPROTO;
    uint64_t u = load_be(r->p, 8);
    memcpy(v, &u, 8);
    r->p += 8;
    return 0;
}

int td_lib0_read_i64be(struct td_lib0_reader *r, int64_t *v)
{
    if (td_lib0_left(r) < 8)
        return TD_EPROTO;
    uint64_t u = load_be(r->p, 8);
    memcpy(v, &u, 8);
    r->p += 8;
    return 0;
}

static int skip_string(struct td_lib0_reader *r)
{
    struct td_ybytes s;
    if (td_lib0_read_varstring(r, &s) < 0 || !td_utf8_valid(s.p, s.len))
        return TD_EPROTO;
    return 0;
}

static int skip_any(struct td_lib0_reader *r, unsigned depth, unsigned max_depth)
{
    uint8_t tag;
    uint64_t n, mag;
    bool neg;
    struct td_ybytes b;
    if (td_lib0_read_u8(r, &tag) < 0)
        return TD_EPROTO;
    switch (tag) {
    case TD_LIB0_ANY_UNDEFINED:
    case TD_LIB0_ANY_NULL:
    case TD_LIB0_ANY_FALSE:
    case TD_LIB0_ANY_TRUE:
        return 0;
    case TD_LIB0_ANY_INT:
        return td_lib0_read_varint(r, &mag, &neg);
    case TD_LIB0_ANY_FLOAT32:
        return td_lib0_read_bytes(r, 4, &b);
    case TD_LIB0_ANY_FLOAT64:
    case TD_LIB0_ANY_BIGINT:
        return td_lib0_read_bytes(r, 8, &b);
    case TD_LIB0_ANY_STRING:
        return skip_string(r);
    case TD_LIB0_ANY_BINARY:
        return td_lib0_read_varbytes(r, &b);
    case TD_LIB0_ANY_OBJECT:
    case TD_LIB0_ANY_ARRAY: {
        if (depth >= max_depth)
            return TD_ELIMIT;
        if (td_lib0_read_varuint(r, &n) < 0)
            return TD_EPROTO;
        /* every element takes at least one byte (two for an object member) */
        if (n > td_lib0_left(r))
            return TD_EPROTO;
        for (uint64_t i = 0; i < n; i++) {
            if (tag == TD_LIB0_ANY_OBJECT && skip_string(r) < 0)
                return TD_EPROTO;
            int rc = skip_any(r, depth + 1, max_depth);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    default:
        return TD_EPROTO;
    }
}

int td_lib0_skip_any(struct td_lib0_reader *r, unsigned max_depth)
{
    return skip_any(r, 0, max_depth);
}

/* ---------------------------------------------------------------------------------------
 * Writing
 */

void td_lib0_write_u8(struct td_buf *b, uint8_t v)
{
    td_buf_append_byte(b, v);
}

void td_lib0_write_varuint(struct td_buf *b, uint64_t v)
{
    td_buf_reserve(b, 10);
    uint8_t *w = b->data + b->len;
    while (v >= 0x80) {
        *w++ = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    b->len = (size_t)(w - b->data);
}

void td_lib0_write_varint(struct td_buf *b, uint64_t mag, bool neg)
{
    td_buf_reserve(b, 10);
    uint8_t *w = b->data + b->len;
    *w++ = (uint8_t)((mag > 0x3f ? 0x80 : 0) | (neg ? 0x40 : 0) | (mag & 0x3f));
    mag >>= 6;
    while (mag > 0) {
        *w++ = (uint8_t)((mag > 0x7f ? 0x80 : 0) | (mag & 0x7f));
        mag >>= 7;
    }
    b->len = (size_t)(w - b->data);
}

void td_lib0_write_varint_i64(struct td_buf *b, int64_t v)
{
    if (v < 0)
        td_lib0_write_varint(b, (uint64_t)0 - (uint64_t)v, true);
    else
        td_lib0_write_varint(b, (uint64_t)v, false);
}

void td_lib0_write_varbytes(struct td_buf *b, const void *p, size_t n)
{
    td_lib0_write_varuint(b, n);
    td_buf_append(b, p, n);
}

void td_lib0_write_varstring(struct td_buf *b, const void *s, size_t n)
{
    td_lib0_write_varbytes(b, s, n);
}

static void store_be(struct td_buf *b, uint64_t v, unsigned n)
{
    td_buf_reserve(b, n);
    for (unsigned i = 0; i < n; i++)
        b->data[b->len + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    b->len += n;
}

void td_lib0_write_f32(struct td_buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    store_be(b, u, 4);
}

void td_lib0_write_f64(struct td_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    store_be(b, u, 8);
}

void td_lib0_write_i64be(struct td_buf *b, int64_t v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    store_be(b, u, 8);
}

void td_lib0_write_any_number(struct td_buf *b, double v)
{
    if (v == floor(v) && fabs(v) <= 2147483647.0) {
        td_lib0_write_u8(b, TD_LIB0_ANY_INT);
        td_lib0_write_varint(b, (uint64_t)fabs(v), signbit(v) != 0);
    } else if (!isnan(v) && (isinf(v) || (fabs(v) <= FLT_MAX && (double)(float)v == v))) {
        td_lib0_write_u8(b, TD_LIB0_ANY_FLOAT32);
        td_lib0_write_f32(b, (float)v);
    } else {
        td_lib0_write_u8(b, TD_LIB0_ANY_FLOAT64);
        td_lib0_write_f64(b, v);
    }
}

/* ---------------------------------------------------------------------------------------
 * Numbers as JavaScript prints them
 */

/* fmt_js_number writes v as Number.prototype.toString would (finite v); returns length. */
static size_t fmt_js_number(double v, char *out)
{
    char *w = out;
    if (v == 0) {
        *w++ = '0';
        return (size_t)(w - out);
    }
    if (v < 0) {
        *w++ = '-';
        v = -v;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp = d[.ddd]e[+-]xx */
    char digits[24];
    int k = 0;
    const char *p = tmp;
    for (; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int e = atoi(p + 1);
    int n = e + 1; /* position of the decimal point relative to the digits */
    if (k <= n && n <= 21) {
        memcpy(w, digits, (size_t)k);
        w += k;
        for (int i = k; i < n; i++)
            *w++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(w, digits, (size_t)n);
        w += n;
        *w++ = '.';
        memcpy(w, digits + n, (size_t)(k - n));
        w += k - n;
    } else if (-6 < n && n <= 0) {
        *w++ = '0';
        *w++ = '.';
        for (int i = 0; i < -n; i++)
            *w++ = '0';
        memcpy(w, digits, (size_t)k);
        w += k;
    } else {
        *w++ = digits[0];
        if (k > 1) {
            *w++ = '.';
            memcpy(w, digits + 1, (size_t)(k - 1));
            w += k - 1;
        }
        w += sprintf(w, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    return (size_t)(w - out);
}

static void json_number(struct td_buf *out, double v)
{
    if (isnan(v) || isinf(v)) {
        td_buf_append(out, "null", 4);
        return;
    }
    char tmp[64];
    size_t n = fmt_js_number(v, tmp);
    td_buf_append(out, tmp, n);
}

/* ---------------------------------------------------------------------------------------
 * Object key order (JavaScript OrdinaryOwnPropertyKeys)
 */

struct keyent {
    const uint8_t *k;
    size_t n;
    size_t pos; /* first appearance */
    size_t val; /* index of the entry whose value wins (last appearance) */
    uint32_t idx;
    bool isidx;
    bool dead;
};

static bool array_index(const uint8_t *k, size_t n, uint32_t *idx)
{
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v > 4294967294u)
        return false;
    *idx = (uint32_t)v;
    return true;
}

static int cmp_key(const void *a, const void *b)
{
    const struct keyent *x = *(const struct keyent *const *)a;
    const struct keyent *y = *(const struct keyent *const *)b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = m ? memcmp(x->k, y->k, m) : 0;
    if (c != 0)
        return c;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos ? 1 : 0);
}

static int cmp_order(const void *a, const void *b)
{
    const struct keyent *x = *(const struct keyent *const *)a;
    const struct keyent *y = *(const struct keyent *const *)b;
    if (x->isidx != y->isidx)
        return x->isidx ? -1 : 1;
    if (x->isidx && x->idx != y->idx)
        return x->idx < y->idx ? -1 : 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos ? 1 : 0);
}

/*
 * key_order fills ord[0..*nout) with the live entries of e[0..n) in JavaScript property order;
 * duplicates are folded into their first entry (whose ->val names the last one).
 */
static void key_order(struct keyent *e, size_t n, struct keyent **ord, size_t *nout)
{
    bool need = false;
    for (size_t i = 0; i < n; i++) {
        e[i].pos = i;
        e[i].val = i;
        e[i].dead = false;
        e[i].isidx = array_index(e[i].k, e[i].n, &e[i].idx);
        need |= e[i].isidx;
        ord[i] = &e[i];
    }
    if (n > 1) {
        qsort(ord, n, sizeof(*ord), cmp_key);
        for (size_t i = 0; i + 1 < n; i++) {
            size_t j = i;
            while (j + 1 < n && ord[j + 1]->n == ord[i]->n &&
                   memcmp(ord[j + 1]->k, ord[i]->k, ord[i]->n) == 0) {
                ord[j + 1]->dead = true;
                ord[i]->val = ord[j + 1]->pos;
                need = true;
                j++;
            }
            i = j;
        }
        if (!need) {
            for (size_t i = 0; i < n; i++)
                ord[i] = &e[i];
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!e[i].dead)
            ord[m++] = &e[i];
    if (need && m > 1)
        qsort(ord, m, sizeof(*ord), cmp_order);
    *nout = m;
}

/* ---------------------------------------------------------------------------------------
 * Any -> JSON
 */

struct anyent {
    struct td_ybytes val; /* the value's Any bytes */
};

static int any_json(struct td_lib0_reader *r, unsigned depth, unsigned flags, bool top,
                    struct td_buf *out);

static int any_json_object(struct td_lib0_reader *r, unsigned depth, unsigned flags,
                           struct td_buf *out)
{
    uint64_t n;
    if (td_lib0_read_varuint(r, &n) < 0 || n > td_lib0_left(r) / 2)
        return TD_EPROTO;
    struct keyent small_e[8];
    struct keyent *small_o[8];
    struct td_ybytes small_v[8];
    struct keyent *e = small_e;
    struct keyent **ord = small_o;
    struct td_ybytes *vals = small_v;
    if (n > 8) {
        e = td_xmalloc((size_t)n * sizeof(*e));
        ord = td_xmalloc((size_t)n * sizeof(*ord));
        vals = td_xmalloc((size_t)n * sizeof(*vals));
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct td_ybytes k;
        if (td_lib0_read_varstring(r, &k) < 0 || !td_utf8_valid(k.p, k.len)) {
            rc = TD_EPROTO;
            break;
        }
        e[i].k = k.p;
        e[i].n = k.len;
        const uint8_t *vs = r->p;
        rc = skip_any(r, depth + 1, TD_LIB0_MAX_DEPTH);
        vals[i].p = vs;
        vals[i].len = (size_t)(r->p - vs);
    }
    if (rc == 0) {
        size_t m;
        key_order(e, (size_t)n, ord, &m);
        td_buf_append_byte(out, '{');
        bool first = true;
        for (size_t i = 0; i < m && rc == 0; i++) {
            const struct keyent *k = ord[i];
            const struct td_ybytes *v = &vals[k->val];
            if (v->p[0] == TD_LIB0_ANY_UNDEFINED)
                continue;
            if (k->n == 9 && memcmp(k->k, "__proto__", 9) == 0)
                continue; /* obj['__proto__'] = v sets the prototype, not a property */
            if (!first)
                td_buf_append_byte(out, ',');
            first = false;
            td_json_write_string(out, (const char *)k->k, k->n);
            td_buf_append_byte(out, ':');
            struct td_lib0_reader sub;
            td_lib0_reader_init(&sub, v->p, v->len);
            rc = any_json(&sub, depth + 1, flags, false, out);
        }
        td_buf_append_byte(out, '}');
    }
    if (e != small_e) {
        free(e);
        free(ord);
        free(vals);
    }
    return rc;
}

static int any_json(struct td_lib0_reader *r, unsigned depth, unsigned flags, bool top,
                    struct td_buf *out)
{
    uint8_t tag;
    uint64_t n, mag;
    bool neg;
    struct td_ybytes b;
    if (td_lib0_read_u8(r, &tag) < 0)
        return TD_EPROTO;
    switch (tag) {
    case TD_LIB0_ANY_UNDEFINED:
        if (top && (flags & TD_LIB0_JSON_STRICT))
            return TD_EINVAL;
        td_buf_append(out, "null", 4);
        return 0;
    case TD_LIB0_ANY_NULL:
        td_buf_append(out, "null", 4);
        return 0;
    case TD_LIB0_ANY_FALSE:
        td_buf_append(out, "false", 5);
        return 0;
    case TD_LIB0_ANY_TRUE:
        td_buf_append(out, "true", 4);
        return 0;
    case TD_LIB0_ANY_INT:
        if (td_lib0_read_varint(r, &mag, &neg) < 0)
            return TD_EPROTO;
        if (neg && mag != 0)
            td_buf_appendf(out, "-%" PRIu64, mag);
        else
            td_buf_appendf(out, "%" PRIu64, mag);
        return 0;
    case TD_LIB0_ANY_FLOAT32: {
        float f;
        if (td_lib0_read_f32(r, &f) < 0)
            return TD_EPROTO;
        json_number(out, (double)f);
        return 0;
    }
    case TD_LIB0_ANY_FLOAT64: {
        double d;
        if (td_lib0_read_f64(r, &d) < 0)
            return TD_EPROTO;
        json_number(out, d);
        return 0;
    }
    case TD_LIB0_ANY_BIGINT: {
        int64_t i;
        if (td_lib0_read_i64be(r, &i) < 0)
            return TD_EPROTO;
        if (flags & TD_LIB0_JSON_STRICT)
            return TD_EINVAL;
        td_buf_appendf(out, "%" PRId64, i);
        return 0;
    }
    case TD_LIB0_ANY_STRING:
        if (td_lib0_read_varstring(r, &b) < 0 || !td_utf8_valid(b.p, b.len))
            return TD_EPROTO;
        td_json_write_string(out, (const char *)b.p, b.len);
        return 0;
    case TD_LIB0_ANY_BINARY:
        if (td_lib0_read_varbytes(r, &b) < 0)
            return TD_EPROTO;
        if (flags & TD_LIB0_JSON_STRICT) {
            td_buf_append_byte(out, '{');
            for (size_t i = 0; i < b.len; i++)
                td_buf_appendf(out, "%s\"%zu\":%u", i ? "," : "", i, (unsigned)b.p[i]);
            td_buf_append_byte(out, '}');
        } else {
            td_buf_append_byte(out, '[');
            for (size_t i = 0; i < b.len; i++)
                td_buf_appendf(out, "%s%u", i ? "," : "", (unsigned)b.p[i]);
            td_buf_append_byte(out, ']');
        }
        return 0;
    case TD_LIB0_ANY_ARRAY: {
        if (depth >= TD_LIB0_MAX_DEPTH)
            return TD_ELIMIT;
        if (td_lib0_read_varuint(r, &n) < 0 || n > td_lib0_left(r))
            return TD_EPROTO;
        td_buf_append_byte(out, '[');
        for (uint64_t i = 0; i < n; i++) {
            if (i)
                td_buf_append_byte(out, ',');
            int rc = any_json(r, depth + 1, flags, false, out);
            if (rc < 0)
                return rc;
        }
        td_buf_append_byte(out, ']');
        return 0;
    }
    case TD_LIB0_ANY_OBJECT:
        if (depth >= TD_LIB0_MAX_DEPTH)
            return TD_ELIMIT;
        return any_json_object(r, depth, flags, out);
    default:
        return TD_EPROTO;
    }
}

int td_lib0_read_any_json(struct td_lib0_reader *r, unsigned flags, struct td_buf *out)
{
    return any_json(r, 0, flags, true, out);
}

int td_lib0_any_to_json_ex(const uint8_t *p, size_t len, unsigned flags, struct td_buf *out,
                           size_t *used)
{
    struct td_lib0_reader r;
    td_lib0_reader_init(&r, p, len);
    int rc = any_json(&r, 0, flags, true, out);
    if (rc == 0 && used != NULL)
        *used = (size_t)(r.p - p);
    return rc;
}

int td_lib0_any_to_json(const uint8_t *p, size_t len, struct td_buf *out, size_t *used)
{
    return td_lib0_any_to_json_ex(p, len, 0, out, used);
}

/* ---------------------------------------------------------------------------------------
 * JSON -> Any
 */

static void json_any(const struct td_json *v, struct td_buf *out)
{
    switch (v->type) {
    case TD_JSON_NULL:
        td_lib0_write_u8(out, TD_LIB0_ANY_NULL);
        break;
    case TD_JSON_FALSE:
        td_lib0_write_u8(out, TD_LIB0_ANY_FALSE);
        break;
    case TD_JSON_TRUE:
        td_lib0_write_u8(out, TD_LIB0_ANY_TRUE);
        break;
    case TD_JSON_NUMBER:
        td_lib0_write_any_number(out, v->num);
        break;
    case TD_JSON_STRING:
        td_lib0_write_u8(out, TD_LIB0_ANY_STRING);
        td_lib0_write_varstring(out, v->str, v->len);
        break;
    case TD_JSON_ARRAY:
        td_lib0_write_u8(out, TD_LIB0_ANY_ARRAY);
        td_lib0_write_varuint(out, v->n);
        for (size_t i = 0; i < v->n; i++)
            json_any(&v->child[i], out);
        break;
    case TD_JSON_OBJECT: {
        struct keyent small_e[8];
        struct keyent *small_o[8];
        struct keyent *e = small_e;
        struct keyent **ord = small_o;
        if (v->n > 8) {
            e = td_xmalloc(v->n * sizeof(*e));
            ord = td_xmalloc(v->n * sizeof(*ord));
        }
        for (size_t i = 0; i < v->n; i++) {
            e[i].k = (const uint8_t *)v->child[i].key;
            e[i].n = v->child[i].key_len;
        }
        size_t m;
        key_order(e, v->n, ord, &m);
        td_lib0_write_u8(out, TD_LIB0_ANY_OBJECT);
        td_lib0_write_varuint(out, m);
        for (size_t i = 0; i < m; i++) {
            td_lib0_write_varstring(out, ord[i]->k, ord[i]->n);
            json_any(&v->child[ord[i]->val], out);
        }
        if (e != small_e) {
            free(e);
            free(ord);
        }
        break;
    }
    }
}

int td_lib0_json_to_any(const char *json, size_t len, struct td_buf *out)
{
    struct td_json_doc doc;
    if (td_json_parse(&doc, json, len, NULL) < 0) {
        td_json_doc_free(&doc);
        return TD_EPROTO;
    }
    json_any(td_json_root(&doc), out);
    td_json_doc_free(&doc);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * UTF-16 accounting
 */

size_t td_lib0_utf16_len(const uint8_t *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        units += (size_t)((c & 0xc0) != 0x80) + (size_t)(c >= 0xf0);
    }
    return units;
}

int td_lib0_utf16_to_byte(const uint8_t *s, size_t n, uint64_t units, size_t *byte_off,
                          bool *mid_pair)
{
    size_t i = 0;
    uint64_t u = 0;
    while (u < units) {
        if (i >= n)
            return TD_EINVAL;
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (k == 4) {
            if (u + 1 == units) {
                *byte_off = i;
                *mid_pair = true;
                return 0;
            }
            u += 2;
        } else {
            u += 1;
        }
        i += k;
        if (i > n)
            return TD_EINVAL;
    }
    *byte_off = i;
    *mid_pair = false;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * v2 column coders
 */

void td_lib0_rle_enc_init(struct td_lib0_rle_enc *e)
{
    td_buf_init(&e->buf);
    e->s = 0;
    e->has = false;
    e->count = 0;
}

void td_lib0_rle_enc_free(struct td_lib0_rle_enc *e)
{
    td_buf_free(&e->buf);
}

void td_lib0_rle_enc_write(struct td_lib0_rle_enc *e, uint8_t v)
{
    if (e->has && e->s == v) {
        e->count++;
        return;
    }
    if (e->count > 0)
        td_lib0_write_varuint(&e->buf, e->count - 1);
    e->count = 1;
    td_buf_append_byte(&e->buf, v);
    e->s = v;
    e->has = true;
}

void td_lib0_rle_enc_finish(struct td_lib0_rle_enc *e, struct td_buf *out)
{
    td_buf_append(out, e->buf.data, e->buf.len);
}

void td_lib0_rle_dec_init(struct td_lib0_rle_dec *d, const uint8_t *p, size_t n)
{
    td_lib0_reader_init(&d->r, p, n);
    d->s = 0;
    d->forever = false;
    d->count = 0;
}

int td_lib0_rle_dec_read(struct td_lib0_rle_dec *d, uint8_t *v)
{
    if (!d->forever && d->count == 0) {
        if (td_lib0_read_u8(&d->r, &d->s) < 0)
            return TD_EPROTO;
        if (d->r.p < d->r.end) {
            uint64_t c;
            if (td_lib0_read_varuint(&d->r, &c) < 0)
                return TD_EPROTO;
            d->count = c + 1;
        } else {
            d->forever = true;
        }
    }
    if (!d->forever)
        d->count--;
    *v = d->s;
    return 0;
}

void td_lib0_uintrle_enc_init(struct td_lib0_uintrle_enc *e)
{
    td_buf_init(&e->buf);
    e->s = 0;
    e->count = 0;
}

void td_lib0_uintrle_enc_free(struct td_lib0_uintrle_enc *e)
{
    td_buf_free(&e->buf);
}

static void uintrle_flush(struct td_lib0_uintrle_enc *e)
{
    if (e->count > 0) {
        td_lib0_write_varint(&e->buf, e->s, e->count > 1);
        if (e->count > 1)
            td_lib0_write_varuint(&e->buf, e->count - 2);
    }
}

void td_lib0_uintrle_enc_write(struct td_lib0_uintrle_enc *e, uint64_t v)
{
    if (e->s == v) {
        e->count++;
        return;
    }
    uintrle_flush(e);
    e->count = 1;
    e->s = v;
}

void td_lib0_uintrle_enc_finish(struct td_lib0_uintrle_enc *e, struct td_buf *out)
{
    uintrle_flush(e);
    e->count = 0;
    td_buf_append(out, e->buf.data, e->buf.len);
}

void td_lib0_uintrle_dec_init(struct td_lib0_uintrle_dec *d, const uint8_t *p, size_t n)
{
    td_lib0_reader_init(&d->r, p, n);
    d->s = 0;
    d->count = 0;
}

int td_lib0_uintrle_dec_read(struct td_lib0_uintrle_dec *d, uint64_t *v)
{
    if (d->count == 0) {
        uint64_t mag;
        bool neg;
        if (td_lib0_read_varint(&d->r, &mag, &neg) < 0)
            return TD_EPROTO;
        d->s = mag;
        d->count = 1;
        if (neg) {
            uint64_t c;
            if (td_lib0_read_varuint(&d->r, &c) < 0)
                return TD_EPROTO;
            d->count = c + 2;
        }
    }
    d->count--;
    *v = d->s;
    return 0;
}

void td_lib0_intdiff_enc_init(struct td_lib0_intdiff_enc *e)
{
    td_buf_init(&e->buf);
    e->s = 0;
    e->diff = 0;
    e->count = 0;
}

void td_lib0_intdiff_enc_free(struct td_lib0_intdiff_enc *e)
{
    td_buf_free(&e->buf);
}

static void intdiff_flush(struct td_lib0_intdiff_enc *e)
{
    if (e->count > 0) {
        int64_t enc = e->diff * 2 + (e->count == 1 ? 0 : 1);
        td_lib0_write_varint_i64(&e->buf, enc);
        if (e->count > 1)
            td_lib0_write_varuint(&e->buf, e->count - 2);
    }
}

void td_lib0_intdiff_enc_write(struct td_lib0_intdiff_enc *e, int64_t v)
{
    if (e->diff == v - e->s) {
        e->s = v;
        e->count++;
        return;
    }
    intdiff_flush(e);
    e->count = 1;
    e->diff = v - e->s;
    e->s = v;
}

void td_lib0_intdiff_enc_finish(struct td_lib0_intdiff_enc *e, struct td_buf *out)
{
    intdiff_flush(e);
    e->count = 0;
    td_buf_append(out, e->buf.data, e->buf.len);
}

void td_lib0_intdiff_dec_init(struct td_lib0_intdiff_dec *d, const uint8_t *p, size_t n)
{
    td_lib0_reader_init(&d->r, p, n);
    d->s = 0;
    d->diff = 0;
    d->count = 0;
}

int td_lib0_intdiff_dec_read(struct td_lib0_intdiff_dec *d, int64_t *v)
{
    if (d->count == 0) {
        uint64_t mag;
        bool neg;
        if (td_lib0_read_varint(&d->r, &mag, &neg) < 0)
            return TD_EPROTO;
        /* diff = floor(value / 2); the low bit says whether a count follows */
        d->diff = neg ? -(int64_t)((mag + 1) >> 1) : (int64_t)(mag >> 1);
        d->count = 1;
        if (mag & 1) {
            uint64_t c;
            if (td_lib0_read_varuint(&d->r, &c) < 0)
                return TD_EPROTO;
            d->count = c + 2;
        }
    }
    int64_t s = d->s + d->diff;
    if (s > (int64_t)TD_LIB0_MAX_UINT || s < -(int64_t)TD_LIB0_MAX_UINT)
        return TD_EPROTO;
    d->s = s;
    d->count--;
    *v = s;
    return 0;
}

void td_lib0_str_enc_init(struct td_lib0_str_enc *e)
{
    td_buf_init(&e->text);
    td_lib0_uintrle_enc_init(&e->lens);
}

void td_lib0_str_enc_free(struct td_lib0_str_enc *e)
{
    td_buf_free(&e->text);
    td_lib0_uintrle_enc_free(&e->lens);
}

void td_lib0_str_enc_write(struct td_lib0_str_enc *e, const uint8_t *s, size_t n)
{
    td_buf_append(&e->text, s, n);
    td_lib0_uintrle_enc_write(&e->lens, td_lib0_utf16_len(s, n));
}

void td_lib0_str_enc_finish(struct td_lib0_str_enc *e, struct td_buf *out)
{
    td_lib0_write_varstring(out, e->text.data, e->text.len);
    td_lib0_uintrle_enc_finish(&e->lens, out);
}

int td_lib0_str_dec_init(struct td_lib0_str_dec *d, const uint8_t *p, size_t n)
{
    struct td_lib0_reader r;
    struct td_ybytes text;
    td_lib0_reader_init(&r, p, n);
    if (td_lib0_read_varstring(&r, &text) < 0 || !td_utf8_valid(text.p, text.len))
        return TD_EPROTO;
    d->s = text.p;
    d->end = text.p + text.len;
    td_lib0_uintrle_dec_init(&d->lens, r.p, td_lib0_left(&r));
    return 0;
}

int td_lib0_str_dec_read(struct td_lib0_str_dec *d, struct td_ybytes *out, uint64_t *units)
{
    uint64_t want;
    if (td_lib0_uintrle_dec_read(&d->lens, &want) < 0)
        return TD_EPROTO;
    const uint8_t *p = d->s;
    uint64_t u = 0;
    while (u < want) {
        if (p >= d->end)
            return TD_EPROTO;
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            u++;
        } else if (c < 0xe0) {
            p += 2;
            u++;
        } else if (c < 0xf0) {
            p += 3;
            u++;
        } else {
            if (u + 1 == want)
                return TD_EPROTO; /* the length cuts a surrogate pair */
            p += 4;
            u += 2;
        }
    }
    out->p = d->s;
    out->len = (size_t)(p - d->s);
    d->s = p;
    if (units != NULL)
        *units = want;
    return 0;
}
