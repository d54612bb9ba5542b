/*
 * td_yproto.h - the y-protocols message codec spoken by y-websocket: sync (step1, step2,
 * update), awareness, auth and query-awareness. A protocol engine: no I/O, no state.
 *
 * Wire format (lib0 encoding, see crdt/td_lib0.h). One WebSocket binary message holds one
 * y-protocols message:
 *
 *   varUint type
 *   type 0 (sync):            varUint subtype, varUint8Array payload
 *                             subtype 0 = step1 (payload: a v1 state vector),
 *                                     1 = step2 (payload: a v1 update),
 *                                     2 = update (payload: a v1 update)
 *   type 1 (awareness):       varUint8Array awareness_update
 *   type 2 (auth):            varUint auth_type (0 = permission denied), varString reason
 *   type 3 (query awareness): nothing
 *
 *   awareness_update := varUint n, n x (varUint clientID, varUint clock, varString state)
 *   where state is the JSON text of the client's state, "null" for a removed client.
 *
 * Decoding never copies: every byte view points into the caller's buffer. Trailing bytes
 * after a complete message are refused (no y-protocols implementation writes any).
 */
#ifndef TD_YPROTO_H
#define TD_YPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "crdt/td_lib0.h"

enum {
    TD_YPROTO_SYNC = 0,
    TD_YPROTO_AWARENESS = 1,
    TD_YPROTO_AUTH = 2,
    TD_YPROTO_QUERY_AWARENESS = 3,
};

enum {
    TD_YPROTO_STEP1 = 0,
    TD_YPROTO_STEP2 = 1,
    TD_YPROTO_UPDATE = 2,
};

enum { TD_YPROTO_AUTH_DENIED = 0 };

/* Most entries one awareness update may carry (a cap on peer input). */
#define TD_YPROTO_MAX_AWARENESS_ENTRIES 4096

/* A decoded message; views into the decoded buffer. */
struct td_yproto_msg {
    uint64_t type;            /* TD_YPROTO_*; other values are reported, not refused */
    uint64_t subtype;         /* SYNC: TD_YPROTO_STEP1/STEP2/UPDATE; AUTH: auth type */
    struct td_ybytes payload; /* SYNC: SV or update; AWARENESS: the awareness update */
    struct td_ybytes reason;  /* AUTH: the reason (UTF-8, checked) */
};

/*
 * td_yproto_decode parses one message p[0..n). max_size (0 = no cap) bounds n. A message of
 * an unknown type decodes with just `type` set and the rest of the bytes ignored (the
 * reference server ignores such messages too). Returns 0, TD_ELIMIT (n > max_size) or
 * TD_EPROTO (truncated, an unknown sync subtype, a bad auth reason, trailing bytes).
 * Payload contents (state vector, update, awareness entries) are not checked here.
 */
int td_yproto_decode(const uint8_t *p, size_t n, size_t max_size, struct td_yproto_msg *m);

/* One awareness entry (views into the awareness update). */
struct td_yaware_entry {
    uint64_t client_id;
    uint64_t clock;
    struct td_ybytes state; /* JSON text; "null" = the client is gone */
    bool removed;           /* state is JSON null */
};

/* Iterator over an awareness update; see td_yproto_aware_begin. */
struct td_yaware_iter {
    struct td_lib0_reader r;
    uint64_t left;
};

/*
 * td_yproto_aware_begin starts reading the awareness update p[0..n) (which must outlive the
 * iterator) and stores the entry count in *count (if not NULL). Returns 0, TD_EPROTO
 * (truncated, or more entries than the bytes could hold) or TD_ELIMIT (more than
 * TD_YPROTO_MAX_AWARENESS_ENTRIES).
 */
int td_yproto_aware_begin(struct td_yaware_iter *it, const uint8_t *p, size_t n, uint64_t *count);
/*
 * td_yproto_aware_next reads the next entry: returns 1 with *e filled, 0 at the end (only
 * if no bytes are left over), or TD_EPROTO (truncated, state not valid JSON, trailing
 * bytes). Clocks and client IDs above 2^53 are refused (TD_EPROTO), as lib0 does.
 */
int td_yproto_aware_next(struct td_yaware_iter *it, struct td_yaware_entry *e);
/* td_yproto_aware_check walks a whole awareness update: 0 if every entry is valid. */
int td_yproto_aware_check(const uint8_t *p, size_t n);

/* ---- encoding (append to out; never fails) ---- */

/* td_yproto_write_sync appends a sync message: subtype and payload[0..n). */
void td_yproto_write_sync(struct td_buf *out, uint64_t subtype, const void *payload, size_t n);
/*
 * td_yproto_sync_header appends only the header of a sync message whose payload of n bytes
 * the caller appends next (to avoid copying a large update twice).
 */
void td_yproto_sync_header(struct td_buf *out, uint64_t subtype, size_t n);
/* td_yproto_aware_encode appends an awareness update (not the message) of e[0..n). */
void td_yproto_aware_encode(struct td_buf *out, const struct td_yaware_entry *e, size_t n);
/* td_yproto_write_awareness appends an awareness message carrying update[0..n). */
void td_yproto_write_awareness(struct td_buf *out, const void *update, size_t n);
/* td_yproto_write_auth_denied appends an auth "permission denied" message with reason. */
void td_yproto_write_auth_denied(struct td_buf *out, const char *reason);
/* td_yproto_write_query_awareness appends a query-awareness message. */
void td_yproto_write_query_awareness(struct td_buf *out);

#endif
