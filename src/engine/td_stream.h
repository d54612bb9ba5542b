/*
 * td_stream.h - a channel's publication stream: epoch, top offset and bounded history.
 *
 * Offsets are per channel, start at 1 and never repeat within an epoch. The epoch is a
 * random string chosen when the stream is created; a new epoch means old offsets are
 * meaningless (the stream was lost). History is a ring of at most `size` publications,
 * each also dropped once older than `ttl_ms`. Time is passed in by the caller (ms).
 *
 * This is the in-memory store; a durable store implements the same operations.
 */
#ifndef TD_STREAM_H
#define TD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "proto/td_proto.h"

#define TD_EPOCH_LEN 8

/*
 * An immutable, refcounted publication. data/info point into the same allocation. The
 * history ring and every in-flight fan-out hold references.
 */
struct td_pub {
    uint32_t refs;
    bool has_info;
    int8_t data_json; /* -1 unknown, 0 not valid JSON, 1 valid JSON (checked lazily) */
    uint64_t offset;
    int64_t time_ms;
    struct td_publication wire; /* view used by codecs; wire.info -> info when has_info */
    struct td_client_info info;
    uint8_t bytes[];
};

/* td_pub_new copies data and info (info may be NULL) into a new publication, one ref. */
struct td_pub *td_pub_new(struct td_str data, const struct td_client_info *info, int64_t now_ms);
static inline struct td_pub *td_pub_ref(struct td_pub *p)
{
    p->refs++;
    return p;
}
void td_pub_unref(struct td_pub *p);

struct td_stream {
    char epoch[TD_EPOCH_LEN + 1];
    uint64_t top;         /* offset of the newest publication ever appended (0 = none) */
    uint32_t size;        /* max publications kept */
    int64_t ttl_ms;       /* max age of a kept publication */
    struct td_pub **ring; /* capacity `size`, allocated on first append */
    uint32_t head;        /* index of the oldest kept publication */
    uint32_t count;
    int64_t last_pub_ms;
};

/* td_stream_init prepares an empty stream with a fresh random epoch. */
void td_stream_init(struct td_stream *s, uint32_t size, int64_t ttl_ms);
void td_stream_free(struct td_stream *s);

/* td_stream_append assigns the next offset to pub, keeps a reference, evicts beyond size. */
void td_stream_append(struct td_stream *s, struct td_pub *pub, int64_t now_ms);
/* td_stream_trim drops publications older than ttl at now_ms. */
void td_stream_trim(struct td_stream *s, int64_t now_ms);
/* td_stream_clear drops all history (epoch and top offset stay). */
void td_stream_clear(struct td_stream *s);
/* td_stream_oldest returns the oldest kept offset, or 0 when history is empty. */
uint64_t td_stream_oldest(const struct td_stream *s);

/*
 * td_stream_read lists kept publications (borrowed pointers valid until the stream changes)
 * into out (capacity `cap`): with since_valid, those with offset > since (forward) or
 * < since (reverse); otherwise from the oldest (forward) or newest (reverse). At most
 * min(limit, cap). Returns the number written. Trims by ttl first.
 */
size_t td_stream_read(struct td_stream *s, bool since_valid, uint64_t since, bool reverse,
                      size_t limit, int64_t now_ms, struct td_pub **out, size_t cap);

/* Outcome of a recovery attempt (section 3.2 of the protocol notes). */
struct td_recovery {
    bool recovered;
    struct td_pub **pubs; /* the missed publications in order (malloc'd; caller frees array) */
    size_t npubs;
};

/*
 * td_stream_recover decides whether a subscriber that last saw (epoch, offset) can be
 * brought up to date with at most `limit` publications. Fills *r; r->pubs must be released
 * with free() (the pointers are borrowed from the stream).
 */
void td_stream_recover(struct td_stream *s, struct td_str epoch, uint64_t offset, size_t limit,
                       int64_t now_ms, struct td_recovery *r);

#endif
