#include "engine/td_stream.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_rand.h"

struct td_pub *td_pub_new(struct td_str data, const struct td_client_info *info, int64_t now_ms)
{
    size_t extra = data.n;
    if (info != NULL)
        extra += info->user.n + info->client.n + info->conn_info.n + info->chan_info.n;
    struct td_pub *p = td_xmalloc(sizeof(*p) + extra);
    memset(p, 0, sizeof(*p));
    p->refs = 1;
    p->data_json = -1;
    p->time_ms = now_ms;
    uint8_t *w = p->bytes;
#define PUB_COPY(dst, src)                                                                         \
    do {                                                                                           \
        if ((src).n)                                                                               \
            memcpy(w, (src).p, (src).n);                                                           \
        (dst).p = (const char *)w;                                                                 \
        (dst).n = (src).n;                                                                         \
        w += (src).n;                                                                              \
    } while (0)
    PUB_COPY(p->wire.data, data);
    if (info != NULL) {
        p->has_info = true;
        PUB_COPY(p->info.user, info->user);
        PUB_COPY(p->info.client, info->client);
        PUB_COPY(p->info.conn_info, info->conn_info);
        PUB_COPY(p->info.chan_info, info->chan_info);
        p->wire.info = &p->info;
    }
#undef PUB_COPY
    return p;
}

void td_pub_unref(struct td_pub *p)
{
    if (p != NULL && --p->refs == 0)
        free(p);
}

void td_stream_init(struct td_stream *s, uint32_t size, int64_t ttl_ms)
{
    memset(s, 0, sizeof(*s));
    td_rand_alnum(s->epoch, TD_EPOCH_LEN);
    s->size = size;
    s->ttl_ms = ttl_ms;
}

void td_stream_clear(struct td_stream *s)
{
    for (uint32_t i = 0; i < s->count; i++)
        td_pub_unref(s->ring[(s->head + i) % s->size]);
    s->head = 0;
    s->count = 0;
}

void td_stream_free(struct td_stream *s)
{
    td_stream_clear(s);
    free(s->ring);
    s->ring = NULL;
}

static void stream_drop_oldest(struct td_stream *s)
{
    td_pub_unref(s->ring[s->head]);
    s->ring[s->head] = NULL;
    s->head = (s->head + 1) % s->size;
    s->count--;
}

void td_stream_append(struct td_stream *s, struct td_pub *pub, int64_t now_ms)
{
    pub->offset = ++s->top;
    pub->wire.offset = pub->offset;
    s->last_pub_ms = now_ms;
    if (s->size == 0)
        return;
    if (s->ring == NULL)
        s->ring = td_xcalloc(s->size, sizeof(*s->ring));
    if (s->count == s->size)
        stream_drop_oldest(s);
    s->ring[(s->head + s->count) % s->size] = td_pub_ref(pub);
    s->count++;
    td_stream_trim(s, now_ms);
}

void td_stream_trim(struct td_stream *s, int64_t now_ms)
{
    while (s->count > 0 && s->ttl_ms > 0 && s->ring[s->head]->time_ms + s->ttl_ms <= now_ms)
        stream_drop_oldest(s);
}

uint64_t td_stream_oldest(const struct td_stream *s)
{
    return s->count ? s->ring[s->head]->offset : 0;
}

/* Index (0 = oldest) of the first kept publication with offset > since. */
static uint32_t stream_index_after(const struct td_stream *s, uint64_t since)
{
    if (s->count == 0)
        return 0;
    uint64_t oldest = s->ring[s->head]->offset;
    if (since < oldest)
        return 0;
    uint64_t idx = since - oldest + 1; /* offsets in the ring are contiguous */
    return idx > s->count ? s->count : (uint32_t)idx;
}

size_t td_stream_read(struct td_stream *s, bool since_valid, uint64_t since, bool reverse,
                      size_t limit, int64_t now_ms, struct td_pub **out, size_t cap)
{
    td_stream_trim(s, now_ms);
    if (limit > cap)
        limit = cap;
    size_t n = 0;
    if (!reverse) {
        uint32_t i = since_valid ? stream_index_after(s, since) : 0;
        for (; i < s->count && n < limit; i++)
            out[n++] = s->ring[(s->head + i) % s->size];
    } else {
        /* Newest first; with since, only offsets strictly below it. */
        int64_t i = (int64_t)s->count - 1;
        if (since_valid) {
            uint32_t after = stream_index_after(s, since > 0 ? since - 1 : 0);
            i = (since == 0) ? -1 : (int64_t)after - 1;
        }
        for (; i >= 0 && n < limit; i--)
            out[n++] = s->ring[(s->head + (uint32_t)i) % s->size];
    }
    return n;
}

void td_stream_recover(struct td_stream *s, struct td_str epoch, uint64_t offset, size_t limit,
                       int64_t now_ms, struct td_recovery *r)
{
    memset(r, 0, sizeof(*r));
    if (epoch.n > 0 && (epoch.n != strlen(s->epoch) || memcmp(epoch.p, s->epoch, epoch.n) != 0))
        return; /* a different incarnation of the stream: offsets mean nothing */
    if (offset == s->top) {
        r->recovered = true;
        return;
    }
    if (offset > s->top)
        return;
    td_stream_trim(s, now_ms);
    size_t want = (size_t)(s->top - offset);
    if (want > limit || s->count == 0 || td_stream_oldest(s) > offset + 1)
        return; /* more missed than we may send, or part of the gap is gone */
    r->pubs = td_xmalloc(want * sizeof(*r->pubs));
    r->npubs = td_stream_read(s, true, offset, false, want, now_ms, r->pubs, want);
    r->recovered = r->npubs == want && r->npubs > 0 && r->pubs[0]->offset == offset + 1 &&
                   r->pubs[r->npubs - 1]->offset == s->top;
    if (!r->recovered) {
        free(r->pubs);
        r->pubs = NULL;
        r->npubs = 0;
    }
}
