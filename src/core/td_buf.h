/*
 * td_buf.h - growable byte buffer (caller-owned) and refcounted immutable buffer.
 *
 * struct td_buf is a plain vector of bytes: init/free on caller storage, append grows it
 * geometrically. struct td_rbuf is what output queues hold: built once, then shared by
 * reference among every connection that sends it (a publication frame goes to thousands of
 * subscribers without a copy). td_rbuf_unref frees it when the last holder lets go.
 */
#ifndef TD_BUF_H
#define TD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct td_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void td_buf_init(struct td_buf *b);
void td_buf_free(struct td_buf *b);
/* td_buf_reserve makes room for at least n more bytes. */
void td_buf_reserve(struct td_buf *b, size_t n);
void td_buf_append(struct td_buf *b, const void *p, size_t n);
void td_buf_append_byte(struct td_buf *b, uint8_t c);
void td_buf_append_str(struct td_buf *b, const char *s);
/* td_buf_appendf appends printf-formatted text. */
void td_buf_appendf(struct td_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* td_buf_consume drops the first n bytes (n <= len). */
void td_buf_consume(struct td_buf *b, size_t n);
static inline void td_buf_reset(struct td_buf *b)
{
    b->len = 0;
}

struct td_rbuf {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
};

/* td_rbuf_new allocates a buffer of len bytes with one reference, contents undefined. */
struct td_rbuf *td_rbuf_new(size_t len);
/* td_rbuf_from copies p[0..n) into a new buffer with one reference. */
struct td_rbuf *td_rbuf_from(const void *p, size_t n);
static inline struct td_rbuf *td_rbuf_ref(struct td_rbuf *r)
{
    r->refs++;
    return r;
}
void td_rbuf_unref(struct td_rbuf *r);

#endif
