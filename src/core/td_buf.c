#include "core/td_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"

void td_buf_init(struct td_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void td_buf_free(struct td_buf *b)
{
    free(b->data);
    td_buf_init(b);
}

void td_buf_reserve(struct td_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap *= 2;
    b->data = td_xrealloc(b->data, cap);
    b->cap = cap;
}

void td_buf_append(struct td_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    td_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void td_buf_append_byte(struct td_buf *b, uint8_t c)
{
    td_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

void td_buf_append_str(struct td_buf *b, const char *s)
{
    td_buf_append(b, s, strlen(s));
}

void td_buf_appendf(struct td_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        td_buf_append(b, tmp, (size_t)n);
        return;
    }
    td_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void td_buf_consume(struct td_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

struct td_rbuf *td_rbuf_new(size_t len)
{
    struct td_rbuf *r = td_xmalloc(sizeof(*r) + len);
    r->refs = 1;
    r->len = (uint32_t)len;
    return r;
}

struct td_rbuf *td_rbuf_from(const void *p, size_t n)
{
    struct td_rbuf *r = td_rbuf_new(n);
    if (n)
        memcpy(r->data, p, n);
    return r;
}

void td_rbuf_unref(struct td_rbuf *r)
{
    if (r != NULL && --r->refs == 0)
        free(r);
}
