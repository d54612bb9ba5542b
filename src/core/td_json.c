#include "core/td_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"

/*
 * The readers share the scanners below (whitespace, strings, numbers, literals, skipping a
 * whole value). They work on offsets into p[0..end) and, on failure, leave *pos at the
 * offending byte and *err at a static reason, so each reader can report a position.
 */

const char *td_json_type_name(enum td_json_type t)
{
    switch (t) {
    case TD_JSON_NULL:
        return "null";
    case TD_JSON_FALSE:
        return "false";
    case TD_JSON_TRUE:
        return "true";
    case TD_JSON_NUMBER:
        return "number";
    case TD_JSON_STRING:
        return "string";
    case TD_JSON_ARRAY:
        return "array";
    case TD_JSON_OBJECT:
        return "object";
    }
    return "?";
}

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline size_t skip_ws(const char *p, size_t i, size_t end)
{
    while (i < end && is_ws(p[i]))
        i++;
    return i;
}

/* Length (1-4) of the valid UTF-8 sequence at s[0..avail), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2) /* stray continuation byte or overlong 2-byte form */
        return 0;
    if (c < 0xE0) {
        if (avail < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (avail < 3 || (s[2] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        unsigned char hi = c == 0xED ? 0x9F : 0xBF; /* no UTF-16 surrogates */
        return s[1] >= lo && s[1] <= hi ? 3 : 0;
    }
    if (c < 0xF5) {
        if (avail < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80; /* no overlongs */
        unsigned char hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
        return s[1] >= lo && s[1] <= hi ? 4 : 0;
    }
    return 0;
}

static int hex4(const char *s, uint32_t *v)
{
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return -1;
        r = r << 4 | d;
    }
    *v = r;
    return 0;
}

static size_t utf8_put(char *w, uint32_t cp)
{
    if (cp < 0x80) {
        w[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        w[0] = (char)(0xC0 | cp >> 6);
        w[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        w[0] = (char)(0xE0 | cp >> 12);
        w[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        w[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | cp >> 18);
    w[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    w[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    w[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int fail_at(size_t *pos, size_t at, const char **err, const char *msg)
{
    *pos = at;
    *err = msg;
    return TD_EPROTO;
}

/*
 * scan_string validates the string whose opening quote is p[*pos] and moves *pos past the
 * closing quote. If dst is not NULL the unescaped bytes are written there and *dlen set.
 * dst may be p + *pos + 1 (in place): every escape shrinks or keeps the length, so the
 * write index never passes the read index.
 */
static int scan_string(const char *p, size_t end, size_t *pos, char *dst, size_t *dlen,
                       const char **err)
{
    size_t i = *pos + 1, w = 0;
    for (;;) {
        if (i >= end)
            return fail_at(pos, i, err, "unterminated string");
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            if (dst != NULL)
                dst[w] = (char)c;
            w++;
            i++;
            continue;
        }
        if (c == '"')
            break;
        if (c < 0x20)
            return fail_at(pos, i, err, "control character in string");
        if (c >= 0x80) {
            size_t k = utf8_len((const unsigned char *)p + i, end - i);
            if (k == 0)
                return fail_at(pos, i, err, "invalid UTF-8 in string");
            if (dst != NULL) {
                for (size_t j = 0; j < k; j++)
                    dst[w + j] = p[i + j];
            }
            w += k;
            i += k;
            continue;
        }
        /* backslash */
        if (i + 1 >= end)
            return fail_at(pos, i, err, "unterminated string");
        char e = p[i + 1], out;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            out = e;
            break;
        case 'b':
            out = '\b';
            break;
        case 'f':
            out = '\f';
            break;
        case 'n':
            out = '\n';
            break;
        case 'r':
            out = '\r';
            break;
        case 't':
            out = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (end - i < 6 || hex4(p + i + 2, &cp) < 0)
                return fail_at(pos, i, err, "invalid \\u escape");
            size_t used = 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(pos, i, err, "unpaired surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - i < 12 || p[i + 6] != '\\' || p[i + 7] != 'u' ||
                    hex4(p + i + 8, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(pos, i, err, "unpaired surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                used = 12;
            }
            char tmp[4];
            size_t k = utf8_put(tmp, cp);
            if (dst != NULL)
                memcpy(dst + w, tmp, k);
            w += k;
            i += used;
            continue;
        }
        default:
            return fail_at(pos, i, err, "invalid escape in string");
        }
        if (dst != NULL)
            dst[w] = out;
        w++;
        i += 2;
    }
    *pos = i + 1;
    if (dlen != NULL)
        *dlen = w;
    return 0;
}

/* scan_number validates the number at p[*pos] and moves *pos past it; *is_int tells
 * whether it has neither a fraction nor an exponent. */
static int scan_number(const char *p, size_t end, size_t *pos, bool *is_int, const char **err)
{
    size_t i = *pos;
    bool integer = true;
    if (i < end && p[i] == '-')
        i++;
    if (i >= end || !is_digit(p[i]))
        return fail_at(pos, i, err, "invalid number");
    if (p[i] == '0') {
        i++;
        if (i < end && is_digit(p[i]))
            return fail_at(pos, i, err, "leading zeros are not allowed");
    } else {
        while (i < end && is_digit(p[i]))
            i++;
    }
    if (i < end && p[i] == '.') {
        i++;
        integer = false;
        if (i >= end || !is_digit(p[i]))
            return fail_at(pos, i, err, "expected a digit after '.'");
        while (i < end && is_digit(p[i]))
            i++;
    }
    if (i < end && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        integer = false;
        if (i < end && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= end || !is_digit(p[i]))
            return fail_at(pos, i, err, "expected a digit in exponent");
        while (i < end && is_digit(p[i]))
            i++;
    }
    *pos = i;
    *is_int = integer;
    return 0;
}

/* digits_u64 converts s[0..n) (digits only) to *v; false on overflow. */
static bool digits_u64(const char *s, size_t n, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t d = (uint64_t)(s[k] - '0');
        if (r > (UINT64_MAX - d) / 10)
            return false;
        r = r * 10 + d;
    }
    *v = r;
    return true;
}

/* int_literal converts an integer literal ("-12") to int64; false if it does not fit. */
static bool int_literal(const char *s, size_t n, int64_t *v)
{
    bool neg = n > 0 && s[0] == '-';
    uint64_t mag;
    if (!digits_u64(s + neg, n - neg, &mag))
        return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return false;
        *v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return false;
        *v = (int64_t)mag;
    }
    return true;
}

static bool match_lit(const char *p, size_t end, size_t i, const char *lit, size_t n)
{
    return end - i >= n && memcmp(p + i, lit, n) == 0;
}

/*
 * skip_value validates one value starting at p[*pos] (after optional whitespace) and moves
 * *pos past it. `depth` is the number of containers already open around it.
 */
static int skip_value(const char *p, size_t end, size_t *pos, uint32_t depth, const char **err)
{
    size_t i = skip_ws(p, *pos, end);
    if (i >= end)
        return fail_at(pos, i, err, "unexpected end of input");
    char ch = p[i];
    switch (ch) {
    case '"':
        *pos = i;
        return scan_string(p, end, pos, NULL, NULL, err);
    case '{':
    case '[': {
        if (depth >= TD_JSON_MAX_DEPTH)
            return fail_at(pos, i, err, "nesting too deep");
        bool obj = ch == '{';
        char close = obj ? '}' : ']';
        i = skip_ws(p, i + 1, end);
        if (i < end && p[i] == close) {
            *pos = i + 1;
            return 0;
        }
        for (;;) {
            if (obj) {
                if (i >= end || p[i] != '"')
                    return fail_at(pos, i, err, "expected string key");
                *pos = i;
                if (scan_string(p, end, pos, NULL, NULL, err) < 0)
                    return TD_EPROTO;
                i = skip_ws(p, *pos, end);
                if (i >= end || p[i] != ':')
                    return fail_at(pos, i, err, "expected ':' after object key");
                i++;
            }
            *pos = i;
            if (skip_value(p, end, pos, depth + 1, err) < 0)
                return TD_EPROTO;
            i = skip_ws(p, *pos, end);
            if (i < end && p[i] == ',') {
                i = skip_ws(p, i + 1, end);
                continue;
            }
            if (i < end && p[i] == close) {
                *pos = i + 1;
                return 0;
            }
            return fail_at(pos, i, err,
                           obj ? "expected ',' or '}' after object member"
                               : "expected ',' or ']' after array element");
        }
    }
    case 't':
        if (!match_lit(p, end, i, "true", 4))
            return fail_at(pos, i, err, "invalid literal");
        *pos = i + 4;
        return 0;
    case 'f':
        if (!match_lit(p, end, i, "false", 5))
            return fail_at(pos, i, err, "invalid literal");
        *pos = i + 5;
        return 0;
    case 'n':
        if (!match_lit(p, end, i, "null", 4))
            return fail_at(pos, i, err, "invalid literal");
        *pos = i + 4;
        return 0;
    default:
        if (ch == '-' || is_digit(ch)) {
            bool is_int;
            *pos = i;
            return scan_number(p, end, pos, &is_int, err);
        }
        return fail_at(pos, i, err, "unexpected character");
    }
}

bool td_json_valid(const char *p, size_t n)
{
    size_t pos = 0;
    const char *err;
    if (skip_value(p, n, &pos, 0, &err) < 0)
        return false;
    return skip_ws(p, pos, n) == n;
}

/* ---------------------------------------------------------------------------------------
 * Writer
 */

void td_json_write_string(struct td_buf *out, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    td_buf_append_byte(out, '"');
    while (i < n) {
        /* Reserve per chunk: each input byte yields at most 6 output bytes, and a UTF-8
         * sequence may run up to 3 bytes past the chunk end. */
        size_t chunk = n - i < 1024 ? n - i : 1024;
        size_t stop = i + chunk;
        td_buf_reserve(out, chunk * 6 + 24);
        uint8_t *w = out->data + out->len;
        while (i < stop) {
            unsigned char c = s[i];
            if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                *w++ = c;
                i++;
                continue;
            }
            if (c >= 0x80) {
                size_t k = utf8_len(s + i, n - i);
                if (k == 0) {
                    memcpy(w, "\\ufffd", 6);
                    w += 6;
                    i++;
                } else {
                    memcpy(w, s + i, k);
                    w += k;
                    i += k;
                }
                continue;
            }
            *w++ = '\\';
            switch (c) {
            case '"':
            case '\\':
                *w++ = c;
                break;
            case '\b':
                *w++ = 'b';
                break;
            case '\f':
                *w++ = 'f';
                break;
            case '\n':
                *w++ = 'n';
                break;
            case '\r':
                *w++ = 'r';
                break;
            case '\t':
                *w++ = 't';
                break;
            default:
                *w++ = 'u';
                *w++ = '0';
                *w++ = '0';
                *w++ = (uint8_t)hex[c >> 4];
                *w++ = (uint8_t)hex[c & 15];
                break;
            }
            i++;
        }
        out->len = (size_t)(w - out->data);
    }
    td_buf_append_byte(out, '"');
}

/* ---------------------------------------------------------------------------------------
 * DOM
 */

struct td_json_chunk {
    struct td_json_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

#define ARENA_CHUNK 16384

static void *arena_alloc(struct td_json_doc *doc, size_t n)
{
    n = (n + (sizeof(max_align_t) - 1)) & ~(sizeof(max_align_t) - 1);
    struct td_json_chunk *c = doc->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = td_xmalloc(sizeof(*c) + cap);
        c->used = 0;
        c->cap = cap;
        c->next = doc->chunks;
        doc->chunks = c;
    }
    void *r = (char *)c->data + c->used;
    c->used += n;
    return r;
}

struct dom {
    const char *p;
    size_t pos, end;
    uint32_t line;
    size_t line_start; /* offset of the first byte of the current line */
    struct td_json_doc *doc;
    struct td_json *stack; /* children of the open containers, innermost last */
    size_t sn, scap;
    const char *err;
};

static uint32_t clamp_u32(size_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void dom_ws(struct dom *d)
{
    while (d->pos < d->end) {
        char c = d->p[d->pos];
        if (c == '\n') {
            d->pos++;
            d->line++;
            d->line_start = d->pos;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            d->pos++;
        } else {
            break;
        }
    }
}

static int dom_fail(struct dom *d, const char *msg)
{
    d->err = msg;
    return TD_EPROTO;
}

/* dom_string reads the string at d->pos into a NUL-terminated arena copy. */
static int dom_string(struct dom *d, const char **s, size_t *n)
{
    size_t pos = d->pos;
    if (scan_string(d->p, d->end, &pos, NULL, NULL, &d->err) < 0) {
        d->pos = pos;
        return TD_EPROTO;
    }
    /* The unescaped text is never longer than the quoted source. */
    char *dst = arena_alloc(d->doc, pos - d->pos - 1);
    size_t len;
    pos = d->pos;
    scan_string(d->p, d->end, &pos, dst, &len, &d->err);
    dst[len] = '\0';
    d->pos = pos;
    *s = dst;
    *n = len;
    return 0;
}

static void dom_push(struct dom *d, const struct td_json *v)
{
    if (d->sn == d->scap) {
        d->scap = d->scap ? d->scap * 2 : 32;
        d->stack = td_xrealloc(d->stack, d->scap * sizeof(*d->stack));
    }
    d->stack[d->sn++] = *v;
}

static int dom_value(struct dom *d, uint32_t depth, struct td_json *v);

static int dom_container(struct dom *d, uint32_t depth, struct td_json *v)
{
    bool obj = v->type == TD_JSON_OBJECT;
    char close = obj ? '}' : ']';
    size_t base = d->sn;
    if (depth >= TD_JSON_MAX_DEPTH)
        return dom_fail(d, "nesting too deep");
    d->pos++;
    dom_ws(d);
    if (d->pos < d->end && d->p[d->pos] == close) {
        d->pos++;
    } else {
        for (;;) {
            struct td_json child;
            const char *key = NULL;
            size_t key_len = 0;
            if (obj) {
                if (d->pos >= d->end || d->p[d->pos] != '"')
                    return dom_fail(d, "expected string key");
                if (dom_string(d, &key, &key_len) < 0)
                    return TD_EPROTO;
                dom_ws(d);
                if (d->pos >= d->end || d->p[d->pos] != ':')
                    return dom_fail(d, "expected ':' after object key");
                d->pos++;
            }
            if (dom_value(d, depth + 1, &child) < 0)
                return TD_EPROTO;
            child.key = key;
            child.key_len = key_len;
            dom_push(d, &child);
            dom_ws(d);
            if (d->pos < d->end && d->p[d->pos] == ',') {
                d->pos++;
                dom_ws(d);
                continue;
            }
            if (d->pos < d->end && d->p[d->pos] == close) {
                d->pos++;
                break;
            }
            return dom_fail(d, obj ? "expected ',' or '}' after object member"
                                   : "expected ',' or ']' after array element");
        }
    }
    v->n = d->sn - base;
    if (v->n > 0) {
        struct td_json *kids = arena_alloc(d->doc, v->n * sizeof(*kids));
        memcpy(kids, d->stack + base, v->n * sizeof(*kids));
        v->child = kids;
    }
    d->sn = base;
    return 0;
}

static int dom_value(struct dom *d, uint32_t depth, struct td_json *v)
{
    dom_ws(d);
    memset(v, 0, sizeof(*v));
    if (d->pos >= d->end)
        return dom_fail(d, "unexpected end of input");
    size_t start = d->pos;
    v->line = d->line;
    v->col = clamp_u32(start - d->line_start + 1);
    char ch = d->p[start];
    int rc = 0;
    switch (ch) {
    case '"':
        v->type = TD_JSON_STRING;
        rc = dom_string(d, &v->str, &v->len);
        break;
    case '{':
    case '[':
        v->type = ch == '{' ? TD_JSON_OBJECT : TD_JSON_ARRAY;
        rc = dom_container(d, depth, v);
        break;
    case 't':
    case 'f':
    case 'n': {
        static const char *const lits[] = {"true", "false", "null"};
        static const enum td_json_type types[] = {TD_JSON_TRUE, TD_JSON_FALSE, TD_JSON_NULL};
        int k = ch == 't' ? 0 : ch == 'f' ? 1 : 2;
        size_t n = strlen(lits[k]);
        if (!match_lit(d->p, d->end, start, lits[k], n))
            return dom_fail(d, "invalid literal");
        v->type = types[k];
        d->pos += n;
        break;
    }
    default: {
        if (ch != '-' && !is_digit(ch))
            return dom_fail(d, "unexpected character");
        bool is_int;
        size_t pos = start;
        if (scan_number(d->p, d->end, &pos, &is_int, &d->err) < 0) {
            d->pos = pos;
            return TD_EPROTO;
        }
        size_t n = pos - start;
        char *s = arena_alloc(d->doc, n + 1);
        memcpy(s, d->p + start, n);
        s[n] = '\0';
        v->type = TD_JSON_NUMBER;
        v->str = s;
        v->len = n;
        /* The process never calls setlocale, so strtod uses '.' as the decimal point. */
        v->num = strtod(s, NULL);
        v->is_int = is_int && int_literal(s, n, &v->i);
        d->pos = pos;
        break;
    }
    }
    if (rc < 0)
        return rc;
    v->raw = d->p + start;
    v->raw_len = d->pos - start;
    return 0;
}

int td_json_parse(struct td_json_doc *doc, const char *text, size_t n, struct td_json_error *err)
{
    struct dom d = {.p = text, .end = n, .line = 1, .doc = doc};
    struct td_json root;
    doc->chunks = NULL;
    doc->root = NULL;
    int rc = dom_value(&d, 0, &root);
    if (rc == 0) {
        dom_ws(&d);
        if (d.pos != d.end)
            rc = dom_fail(&d, "unexpected data after value");
    }
    free(d.stack);
    if (rc < 0) {
        td_json_doc_free(doc);
        if (err != NULL) {
            err->line = d.line;
            err->col = clamp_u32(d.pos - d.line_start + 1);
            snprintf(err->msg, sizeof(err->msg), "%s", d.err);
        }
        return TD_EPROTO;
    }
    struct td_json *r = arena_alloc(doc, sizeof(*r));
    *r = root;
    doc->root = r;
    return 0;
}

const struct td_json *td_json_root(const struct td_json_doc *doc)
{
    return doc->root;
}

void td_json_doc_free(struct td_json_doc *doc)
{
    struct td_json_chunk *c = doc->chunks;
    while (c != NULL) {
        struct td_json_chunk *next = c->next;
        free(c);
        c = next;
    }
    doc->chunks = NULL;
    doc->root = NULL;
}

const struct td_json *td_json_get(const struct td_json *obj, const char *key)
{
    if (obj == NULL || obj->type != TD_JSON_OBJECT)
        return NULL;
    size_t kn = strlen(key);
    for (size_t k = obj->n; k-- > 0;) {
        const struct td_json *m = &obj->child[k];
        if (m->key_len == kn && memcmp(m->key, key, kn) == 0)
            return m;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Cursor
 */

void td_json_cursor_init(struct td_json_cursor *c, char *p, size_t n)
{
    c->p = p;
    c->pos = 0;
    c->end = n;
    c->depth = 0;
    c->first = false;
    c->error = NULL;
}

static int cur_fail(struct td_json_cursor *c, size_t at, const char *msg)
{
    c->pos = at;
    c->error = msg;
    return TD_EPROTO;
}

/* cur_next skips whitespace and returns the offset of the next byte, failing at the end. */
static int cur_next(struct td_json_cursor *c, size_t *at)
{
    size_t i = skip_ws(c->p, c->pos, c->end);
    if (i >= c->end)
        return cur_fail(c, i, "unexpected end of input");
    *at = i;
    return 0;
}

int td_json_cursor_peek(struct td_json_cursor *c)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    c->pos = i;
    switch (c->p[i]) {
    case '"':
        return TD_JSON_STRING;
    case '{':
        return TD_JSON_OBJECT;
    case '[':
        return TD_JSON_ARRAY;
    case 't':
        return TD_JSON_TRUE;
    case 'f':
        return TD_JSON_FALSE;
    case 'n':
        return TD_JSON_NULL;
    default:
        if (c->p[i] == '-' || is_digit(c->p[i]))
            return TD_JSON_NUMBER;
        return cur_fail(c, i, "unexpected character");
    }
}

bool td_json_cursor_null(struct td_json_cursor *c)
{
    size_t i = skip_ws(c->p, c->pos, c->end);
    if (!match_lit(c->p, c->end, i, "null", 4))
        return false;
    c->pos = i + 4;
    return true;
}

static int cur_begin(struct td_json_cursor *c, char open, const char *what)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    if (c->p[i] != open)
        return cur_fail(c, i, what);
    if (c->depth >= TD_JSON_MAX_DEPTH)
        return cur_fail(c, i, "nesting too deep");
    c->depth++;
    c->first = true;
    c->pos = i + 1;
    return 0;
}

int td_json_cursor_object_begin(struct td_json_cursor *c)
{
    return cur_begin(c, '{', "expected an object");
}

int td_json_cursor_array_begin(struct td_json_cursor *c)
{
    return cur_begin(c, '[', "expected an array");
}

/* The parent of a closed container has always read something already, so `first` is
 * false again after any close; that keeps one flag enough for nested containers. */
static int cur_close(struct td_json_cursor *c, size_t i)
{
    c->depth--;
    c->first = false;
    c->pos = i + 1;
    return 0;
}

int td_json_cursor_object_next(struct td_json_cursor *c, const char **key, size_t *key_len)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    if (c->p[i] == '}')
        return cur_close(c, i);
    if (!c->first) {
        if (c->p[i] != ',')
            return cur_fail(c, i, "expected ',' or '}' after object member");
        i = skip_ws(c->p, i + 1, c->end);
    }
    if (i >= c->end || c->p[i] != '"')
        return cur_fail(c, i, "expected string key");
    c->first = false;
    size_t pos = i, n;
    const char *err;
    if (scan_string(c->p, c->end, &pos, c->p + i + 1, &n, &err) < 0)
        return cur_fail(c, pos, err);
    pos = skip_ws(c->p, pos, c->end);
    if (pos >= c->end || c->p[pos] != ':')
        return cur_fail(c, pos, "expected ':' after object key");
    c->pos = pos + 1;
    *key = c->p + i + 1;
    *key_len = n;
    return 1;
}

int td_json_cursor_array_next(struct td_json_cursor *c)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    if (c->p[i] == ']')
        return cur_close(c, i);
    if (!c->first) {
        if (c->p[i] != ',')
            return cur_fail(c, i, "expected ',' or ']' after array element");
        i = skip_ws(c->p, i + 1, c->end);
        if (i < c->end && c->p[i] == ']')
            return cur_fail(c, i, "trailing comma");
    }
    c->first = false;
    c->pos = i;
    return 1;
}

int td_json_cursor_string(struct td_json_cursor *c, const char **s, size_t *n)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    if (c->p[i] != '"')
        return cur_fail(c, i, "expected a string");
    size_t pos = i, len;
    const char *err;
    if (scan_string(c->p, c->end, &pos, c->p + i + 1, &len, &err) < 0)
        return cur_fail(c, pos, err);
    c->pos = pos;
    *s = c->p + i + 1;
    *n = len;
    return 0;
}

/* cur_integer scans an integer literal; *neg tells its sign, *mag its magnitude. */
static int cur_integer(struct td_json_cursor *c, bool *neg, uint64_t *mag)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    if (c->p[i] != '-' && !is_digit(c->p[i]))
        return cur_fail(c, i, "expected a number");
    size_t pos = i;
    bool is_int;
    const char *err;
    if (scan_number(c->p, c->end, &pos, &is_int, &err) < 0)
        return cur_fail(c, pos, err);
    if (!is_int)
        return cur_fail(c, i, "expected an integer");
    *neg = c->p[i] == '-';
    if (!digits_u64(c->p + i + *neg, pos - i - *neg, mag))
        return cur_fail(c, i, "integer out of range");
    c->pos = pos;
    return 0;
}

int td_json_cursor_uint64(struct td_json_cursor *c, uint64_t max, uint64_t *v)
{
    bool neg;
    uint64_t mag;
    size_t start = skip_ws(c->p, c->pos, c->end);
    if (cur_integer(c, &neg, &mag) < 0)
        return TD_EPROTO;
    if (neg || mag > max)
        return cur_fail(c, start, "integer out of range");
    *v = mag;
    return 0;
}

int td_json_cursor_int64(struct td_json_cursor *c, int64_t min, int64_t max, int64_t *v)
{
    bool neg;
    uint64_t mag;
    size_t start = skip_ws(c->p, c->pos, c->end);
    if (cur_integer(c, &neg, &mag) < 0)
        return TD_EPROTO;
    int64_t r;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return cur_fail(c, start, "integer out of range");
        r = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return cur_fail(c, start, "integer out of range");
        r = (int64_t)mag;
    }
    if (r < min || r > max)
        return cur_fail(c, start, "integer out of range");
    *v = r;
    return 0;
}

int td_json_cursor_bool(struct td_json_cursor *c, bool *v)
{
    size_t i;
    if (cur_next(c, &i) < 0)
        return TD_EPROTO;
    if (match_lit(c->p, c->end, i, "true", 4)) {
        c->pos = i + 4;
        *v = true;
        return 0;
    }
    if (match_lit(c->p, c->end, i, "false", 5)) {
        c->pos = i + 5;
        *v = false;
        return 0;
    }
    return cur_fail(c, i, "expected true or false");
}

int td_json_cursor_skip(struct td_json_cursor *c, const char **raw, size_t *raw_len)
{
    size_t i = skip_ws(c->p, c->pos, c->end), pos = i;
    const char *err;
    if (skip_value(c->p, c->end, &pos, c->depth, &err) < 0)
        return cur_fail(c, pos, err);
    c->pos = pos;
    if (raw != NULL) {
        *raw = c->p + i;
        *raw_len = pos - i;
    }
    return 0;
}

int td_json_cursor_end(struct td_json_cursor *c)
{
    size_t i = skip_ws(c->p, c->pos, c->end);
    if (i != c->end)
        return cur_fail(c, i, "unexpected data after value");
    c->pos = i;
    return 0;
}
