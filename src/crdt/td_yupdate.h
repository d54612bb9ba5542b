/*
 * td_yupdate.h - Yjs updates as data: decode v1/v2 into a neutral struct list, encode it back,
 * and the operations Yjs offers on encoded updates without a document (merge, diff, state
 * vector from update, v1 <-> v2).
 *
 * Design note. A decoded update is a flat array of structs (GC, Skip, Item) grouped by client,
 * plus a delete set. Content is never interpreted beyond what splitting needs: strings stay
 * UTF-8 (lengths in UTF-16 units, as Yjs counts), Any values stay in lib0 "Any" bytes. Every
 * byte view in a decoded update points either into the caller's input buffer (which must
 * outlive the update) or into the update's own arena (bytes made by conversion or slicing).
 * The document engine (td_ydoc.h) uses the same representation to write what it holds:
 * it fills a struct td_yupdate with views into its own memory and calls td_yupdate_encode.
 *
 * Formats: version 1 is what y-protocols and y-websocket carry; version 2 is the column
 * format (Yjs UpdateEncoderV2). JSON-text values (ContentJSON, Embed, Format in v1) and Any
 * values (the same contents in v2) are kept in the encoding they arrived in and converted
 * only when written in the other version, so a v1 -> v1 or v2 -> v2 round trip is
 * byte-identical for anything Yjs itself would write.
 *
 * Limits: clocks and lengths above 2^53 are rejected (Yjs cannot produce them); nesting of
 * Any values deeper than TD_YUPDATE_MAX_DEPTH is rejected; every count read from the wire is
 * checked against the bytes that remain before anything is allocated for it.
 */
#ifndef TD_YUPDATE_H
#define TD_YUPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"

#define TD_YUPDATE_MAX_DEPTH 64

/* Content refs, exactly the numbers in the info byte's low 5 bits. */
enum td_ykind {
    TD_YK_GC = 0,
    TD_YK_DELETED = 1,
    TD_YK_JSON = 2,
    TD_YK_BINARY = 3,
    TD_YK_STRING = 4,
    TD_YK_EMBED = 5,
    TD_YK_FORMAT = 6,
    TD_YK_TYPE = 7,
    TD_YK_ANY = 8,
    TD_YK_DOC = 9,
    TD_YK_SKIP = 10,
};

/* Type refs of ContentType. */
enum td_ytype_ref {
    TD_YT_ARRAY = 0,
    TD_YT_MAP = 1,
    TD_YT_TEXT = 2,
    TD_YT_XML_ELEMENT = 3,
    TD_YT_XML_FRAGMENT = 4,
    TD_YT_XML_HOOK = 5,
    TD_YT_XML_TEXT = 6,
};

struct td_yid {
    uint64_t client;
    uint64_t clock;
};

/* A byte view; never NUL-terminated. */
struct td_ybytes {
    const uint8_t *p;
    size_t len;
};

/* How a struct names its parent (only written when it has neither origin). */
enum td_yparent {
    TD_YP_NONE = 0, /* inherited from origin/rightOrigin: not on the wire */
    TD_YP_ROOT = 1, /* root type named parent_name */
    TD_YP_ID = 2,   /* nested type held by the item parent_id */
};

/* How JSON, Embed and Format values are encoded in a struct's `value` bytes. */
enum td_yvalue_enc {
    TD_YV_JSON_TEXT = 0, /* v1: JSON text (for JSON content: n lib0 varStrings back to back) */
    TD_YV_ANY = 1,       /* v2: lib0 Any (for JSON content: n Any values back to back) */
};

#define TD_YS_HAS_ORIGIN 0x01u
#define TD_YS_HAS_RIGHT_ORIGIN 0x02u
#define TD_YS_HAS_PARENT_SUB 0x04u /* an item of a map key (even when the key is inherited) */

struct td_ystruct {
    struct td_yid id;
    uint64_t len;               /* clock units (UTF-16 units for strings, elements for Any/JSON) */
    uint8_t kind;               /* enum td_ykind; GC and SKIP carry nothing but id and len */
    uint8_t flags;              /* TD_YS_* */
    uint8_t parent;             /* enum td_yparent */
    uint8_t enc;                /* enum td_yvalue_enc, for JSON/EMBED/FORMAT */
    uint8_t type_ref;           /* enum td_ytype_ref, for TYPE */
    struct td_yid origin;       /* if TD_YS_HAS_ORIGIN */
    struct td_yid right_origin; /* if TD_YS_HAS_RIGHT_ORIGIN */
    struct td_yid parent_id;    /* if parent == TD_YP_ID */
    struct td_ybytes parent_name; /* if parent == TD_YP_ROOT (UTF-8) */
    struct td_ybytes parent_sub;  /* if TD_YS_HAS_PARENT_SUB and parent != TD_YP_NONE */
    /*
     * Content, by kind:
     *   STRING  data = UTF-8 text (len = its UTF-16 length)
     *   BINARY  data = the bytes (len = 1)
     *   ANY     data = len lib0 Any values back to back
     *   JSON    data = len values back to back, encoded per `enc`
     *   EMBED   data = one value per `enc` (len = 1)
     *   FORMAT  key = format key, data = one value per `enc` (len = 1)
     *   TYPE    key = nodeName (XmlElement) or hookName (XmlHook), else empty (len = 1)
     *   DOC     key = guid, data = one Any (the options) (len = 1)
     *   DELETED nothing (len = number of deleted units)
     * "One value per enc" is, for TD_YV_JSON_TEXT, the JSON text itself (no length prefix) and,
     * for TD_YV_ANY, one Any value. JSON content is JSON text in v2 too (yjs writes it through
     * the string column), so decode always gives JSON structs enc = TD_YV_JSON_TEXT; EMBED and
     * FORMAT decode as JSON_TEXT from v1 and as ANY from v2 (see td_yupdate_encode).
     */
    struct td_ybytes key;
    struct td_ybytes data;
};

/* One client's structs, contiguous in clock order (clock of i+1 = clock of i + len of i). */
struct td_yclient_run {
    uint64_t client;
    size_t first; /* index into td_yupdate.structs */
    size_t n;
};

struct td_yrange {
    uint64_t client;
    uint64_t clock;
    uint64_t len;
};

struct td_yarena_block;

struct td_yupdate {
    struct td_ystruct *structs;
    size_t nstructs, capstructs;
    struct td_yclient_run *runs; /* as decoded (writers emit client-descending order) */
    size_t nruns, capruns;
    struct td_yrange *ds; /* delete set: sorted by client desc, then clock; merged */
    size_t nds, capds;
    struct td_yarena_block *arena; /* bytes owned by this update */
};

/* A state vector: client -> next expected clock. */
struct td_ysv_entry {
    uint64_t client;
    uint64_t clock;
};
struct td_ysv {
    struct td_ysv_entry *e; /* sorted by client descending */
    size_t n, cap;
};

void td_yupdate_init(struct td_yupdate *u);
void td_yupdate_free(struct td_yupdate *u);
/* td_yupdate_alloc copies n bytes into u's arena and returns the copy (valid until free). */
const uint8_t *td_yupdate_alloc(struct td_yupdate *u, const void *p, size_t n);
/* td_yupdate_add_run starts a new client run; structs appended next belong to it. */
void td_yupdate_add_run(struct td_yupdate *u, uint64_t client);
/* td_yupdate_add_struct appends s to the current run (views are copied as views); if there is
 * no run yet or s->id.client differs from the current run's client, it starts a new run. */
void td_yupdate_add_struct(struct td_yupdate *u, const struct td_ystruct *s);
/* td_yupdate_add_delete adds [clock, clock+len) of client to the delete set (unsorted). */
void td_yupdate_add_delete(struct td_yupdate *u, uint64_t client, uint64_t clock, uint64_t len);
/* td_yupdate_sort_ds sorts and merges the delete set (done by decode and before encode). */
void td_yupdate_sort_ds(struct td_yupdate *u);

/*
 * td_yupdate_decode parses a whole update of the given version (1 or 2) into u (which must
 * be freshly initialised). u keeps views into buf, which must outlive u. Returns 0, or
 * TD_EPROTO for malformed or truncated input (u is then left empty), TD_ELIMIT past the
 * limits above. Trailing bytes after a v1 update are ignored, as Yjs does.
 */
int td_yupdate_decode(struct td_yupdate *u, const uint8_t *buf, size_t len, int version);
/*
 * td_yupdate_encode appends u to out in the given version. Runs are written in the order
 * they appear in u; the delete set as stored (call td_yupdate_sort_ds first if unsorted).
 * Returns 0, or TD_EINVAL if u is inconsistent (a run with a clock gap, a value that cannot
 * be converted between JSON text and Any).
 */
int td_yupdate_encode(const struct td_yupdate *u, int version, struct td_buf *out);
/*
 * Encoding notes (td_yupdate.c): the info byte is rebuilt from kind and flags (GC and Skip are
 * written as 0 and 10 whatever their flags); EMBED/FORMAT values and JSON content are converted
 * between JSON text and Any when the version needs it (JSON.parse / JSON.stringify semantics,
 * td_lib0.h); on error nothing is appended to out. Decoding rejects zero-length structs, invalid
 * UTF-8 in strings, keys and names, invalid JSON text, unknown content or type refs, and drops
 * zero-length delete ranges. v2 decoding caps the struct count at 16 per input byte (at least
 * 65536; TD_ELIMIT), since column RLE lets a struct cost no input bytes.
 */

/*
 * td_ystruct_slice writes to *out the part [offset, offset+len) of s (in clock units) as
 * Yjs's splitItem would: out->id.clock = s->id.clock + offset and, if offset > 0, origin
 * becomes (client, clock+offset-1); rightOrigin, parent and parentSub are kept. Strings split
 * at a UTF-16 offset; a split inside a surrogate pair turns both halves' broken char into
 * U+FFFD as Yjs does (the new bytes live in u's arena). Returns 0, or TD_EINVAL if s cannot
 * split there (kinds of length 1).
 */
int td_ystruct_slice(struct td_yupdate *u, const struct td_ystruct *s, uint64_t offset,
                     uint64_t len, struct td_ystruct *out);

/* td_ysv_* : state vectors (v1 encoding: varUint n, then n x (client, clock)). */
void td_ysv_init(struct td_ysv *sv);
void td_ysv_free(struct td_ysv *sv);
/* td_ysv_get returns the clock for client, 0 if absent. */
uint64_t td_ysv_get(const struct td_ysv *sv, uint64_t client);
/* td_ysv_set sets client's clock (inserting in order). */
void td_ysv_set(struct td_ysv *sv, uint64_t client, uint64_t clock);
/* td_ysv_decode parses an encoded state vector; returns 0 or TD_EPROTO. */
int td_ysv_decode(struct td_ysv *sv, const uint8_t *buf, size_t len);
/* td_ysv_encode appends sv (client-descending) to out. */
void td_ysv_encode(const struct td_ysv *sv, struct td_buf *out);

/*
 * td_yupdate_merge merges n encoded updates of one version into one update of the same
 * version in out, as Yjs mergeUpdates does (overlaps sliced, gaps as Skip structs, adjacent
 * structs joined, delete sets unioned) but as a balanced tree of pairwise merges, so the cost
 * is O(total log n). A single input is copied unchanged. Returns 0, TD_EPROTO (an input is
 * malformed; out unchanged) or TD_ELIMIT.
 * For two inputs the output equals yjs mergeUpdates/mergeUpdatesV2 byte for byte, quirks
 * included: items are never joined (only GC with GC), and items with an origin lose the
 * parentSub bit. Unlike yjs, runs are visited in client-descending order even when an input
 * lists them otherwise (yjs silently drops structs then), and a struct that does not continue
 * the previous one of its client starts a new run (yjs would write a corrupt update).
 */
int td_yupdate_merge(const uint8_t *const *ups, const size_t *lens, size_t n, int version,
                     struct td_buf *out);
/*
 * td_yupdate_diff appends to out what of update `up` is not covered by sv (Yjs diffUpdate:
 * the whole delete set is kept). Returns 0 or TD_EPROTO.
 */
int td_yupdate_diff(const uint8_t *up, size_t len, int version, const struct td_ysv *sv,
                    struct td_buf *out);
/*
 * td_yupdate_state_vector computes the state vector of an update without a document
 * (Yjs encodeStateVectorFromUpdate: clients whose structs do not start at 0 are omitted).
 * Returns 0 or TD_EPROTO.
 */
int td_yupdate_state_vector(const uint8_t *up, size_t len, int version, struct td_ysv *sv);
/* td_yupdate_convert re-encodes an update from version `from` to version `to`. */
int td_yupdate_convert(const uint8_t *up, size_t len, int from, int to, struct td_buf *out);

#endif
