/*
 * td_ydoc.h - a Yjs-compatible document: struct store, YATA integration of remote updates
 * (v1 and v2, in any order), pending structs and deletes, GC and struct merging, a local
 * editing API (text, map, array at root level), and encoders for the state vector, the full
 * state and the diff against a remote state vector.
 *
 * Design note. Every struct (Item or GC) lives in one pool of fixed-size records addressed
 * by 32-bit indices; clocks are kept as uint32 (updates that would push a clock or a range
 * past UINT32_MAX are refused with TD_ELIMIT). Item content is a view into one byte arena
 * owned by the document (strings stay UTF-8, lengths in UTF-16 units; Any/JSON values stay
 * in their wire encoding). Each client keeps its structs in clock order in a blocked array
 * (binary search with a last-hit fast path). Types (roots and nested ContentType) keep the
 * document-order linked list (start item), their countable length, and their map entries
 * (key -> the rightmost item of the key's chain) in a document-wide hash.
 *
 * Transactions follow Yjs: every remote apply and every local edit (or a group of edits
 * between td_ydoc_begin and td_ydoc_commit) is one transaction. At its end deleted content is
 * garbage collected (content -> ContentDeleted; children of deleted types -> GC structs),
 * adjacent structs are merged exactly where Yjs tries to merge them, and, if the caller asks
 * for it, the transaction's update is encoded: what Yjs's `update` event carries (the structs
 * written from the transaction's before-state plus the transaction's own delete set). Nothing
 * is emitted for a transaction that changed nothing (e.g. a duplicate update).
 *
 * Remote updates are decoded completely and validated before anything is touched, so a
 * malformed, truncated or inconsistent update (TD_EPROTO) or one that would exceed the
 * document's limits (TD_ELIMIT) leaves the document unchanged. Structs whose dependencies
 * are missing wait as pending structs (kept encoded, as Yjs does) and deletes of unknown
 * clocks as a pending delete set; both are retried after every later update and are
 * included in td_ydoc_encode_state output, as Yjs's encodeStateAsUpdate does.
 *
 * A document is single-threaded; nothing here does I/O. Everything it allocated is released
 * by td_ydoc_del.
 */
#ifndef TD_YDOC_H
#define TD_YDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "crdt/td_yupdate.h"

struct td_ydoc;

/* Limits (0 in a field of td_ydoc_set_limits keeps the current value). */
struct td_ydoc_limits {
    size_t max_update_bytes;  /* one encoded update given to td_ydoc_apply (default 64 MiB) */
    size_t max_content_bytes; /* content arena of the document (default 512 MiB) */
    size_t max_structs;       /* structs in the store, pending included (default 32 Mi) */
};

/* td_ydoc_new creates an empty document whose local edits use client_id (< 2^53). */
struct td_ydoc *td_ydoc_new(uint64_t client_id);
/* td_ydoc_del frees d and everything it owns (NULL is a no-op). */
void td_ydoc_del(struct td_ydoc *d);
void td_ydoc_set_limits(struct td_ydoc *d, const struct td_ydoc_limits *l);
uint64_t td_ydoc_client_id(const struct td_ydoc *d);

/*
 * td_ydoc_apply integrates one encoded update (version 1 or 2) as one transaction. If out is
 * not NULL, the transaction's update (see above) is appended to it in the same version, or
 * nothing if the transaction changed nothing. Returns 0, TD_EPROTO (malformed, truncated or
 * inconsistent: the document is unchanged), TD_ELIMIT (a limit would be exceeded: unchanged)
 * or TD_EINVAL (bad version, or called inside td_ydoc_begin/commit).
 */
int td_ydoc_apply(struct td_ydoc *d, const uint8_t *buf, size_t len, int version,
                  struct td_buf *out);

/*
 * Local transactions. td_ydoc_begin opens one (edits made without it run in their own
 * transaction each, emitting nothing). td_ydoc_commit closes it: GC, merging, and, if out is
 * not NULL, the transaction's update appended in `version` (nothing if it changed nothing).
 * Returns 0 or TD_EINVAL (no open transaction / bad version).
 */
void td_ydoc_begin(struct td_ydoc *d);
int td_ydoc_commit(struct td_ydoc *d, struct td_buf *out, int version);

/*
 * Local edits on root types (created on first use). Indices and lengths of text are UTF-16
 * code units; text must be valid UTF-8. Text inserts follow Y.Text.insert (with no
 * attributes), deletes Y.Text.delete; arrays Y.Array.insert/delete; maps Y.Map.set/delete.
 * JSON values are encoded as the Any yjs writes for the same JavaScript value
 * (td_lib0_json_to_any). Each returns 0, TD_EINVAL (index or length out of range, a text
 * insert that would split a surrogate pair is allowed and behaves as Yjs), TD_EUTF8 (text is
 * not valid UTF-8), TD_EPROTO (value is not valid JSON) or TD_ELIMIT (document limits).
 */
int td_ydoc_text_insert(struct td_ydoc *d, const char *root, uint64_t index, const char *text,
                        size_t n);
int td_ydoc_text_delete(struct td_ydoc *d, const char *root, uint64_t index, uint64_t len);
int td_ydoc_map_set(struct td_ydoc *d, const char *root, const char *key, const char *json,
                    size_t n);
int td_ydoc_map_delete(struct td_ydoc *d, const char *root, const char *key);
/* td_ydoc_array_insert inserts the elements of the JSON array json[0..n) at index. */
int td_ydoc_array_insert(struct td_ydoc *d, const char *root, uint64_t index, const char *json,
                         size_t n);
int td_ydoc_array_delete(struct td_ydoc *d, const char *root, uint64_t index, uint64_t len);

/* td_ydoc_text_length returns root's length in UTF-16 units (0 if there is no such root). */
uint64_t td_ydoc_text_length(const struct td_ydoc *d, const char *root);
/*
 * td_ydoc_text_utf16_index converts a position in root's text given in code points (cp) or,
 * if by_bytes, in UTF-8 bytes, into a UTF-16 index (what the edit calls take). O(length).
 * Returns 0 or TD_EINVAL (past the end, or not on a character boundary).
 */
int td_ydoc_text_utf16_index(const struct td_ydoc *d, const char *root, uint64_t pos, bool by_bytes,
                             uint64_t *out);

/* How a root is read (roots are untyped on the wire). */
enum td_ydoc_as {
    TD_YDOC_AS_AUTO = 0, /* object if only map entries, string if only strings, else array */
    TD_YDOC_AS_TEXT = 1,
    TD_YDOC_AS_MAP = 2,
    TD_YDOC_AS_ARRAY = 3,
    TD_YDOC_AS_XML = 4, /* Y.XmlFragment.toString() */
};

/*
 * td_ydoc_root_json appends root `name` (name_len bytes) read as `as` to out as JSON:
 * text -> a JSON string (formats and embeds dropped), map -> an object with keys sorted by
 * their UTF-8 bytes, array -> an array, xml -> a JSON string of toString(). Nested types:
 * YMap object, YArray array, YText string, Xml* their toString() string. Binary values print
 * as arrays of numbers, undefined as null. Returns 0 or TD_ENOTFOUND (no such root).
 */
int td_ydoc_root_json(const struct td_ydoc *d, const char *name, size_t name_len,
                      enum td_ydoc_as as, struct td_buf *out);
/* td_ydoc_text appends root's text as raw UTF-8 (TEXT reading). 0 or TD_ENOTFOUND. */
int td_ydoc_text(const struct td_ydoc *d, const char *root, struct td_buf *out);
/*
 * td_ydoc_json appends {"root": value, ...} for every root with content, keys sorted, each
 * root read as AUTO unless it is named in as_names[0..nas) (then as[i]; the last mention
 * wins). A named root is shown even when it holds nothing.
 */
void td_ydoc_json(const struct td_ydoc *d, const char *const *as_names, const enum td_ydoc_as *as,
                  size_t nas, struct td_buf *out);
/* td_ydoc_root_count / td_ydoc_root_name enumerate root names (views valid until the next
 * change to d). */
size_t td_ydoc_root_count(const struct td_ydoc *d);
struct td_ybytes td_ydoc_root_name(const struct td_ydoc *d, size_t i);

/* td_ydoc_state_vector fills sv (initialised by the caller, emptied first). */
void td_ydoc_state_vector(const struct td_ydoc *d, struct td_ysv *sv);
/* td_ydoc_encode_sv appends the v1 encoding of the state vector. */
void td_ydoc_encode_sv(const struct td_ydoc *d, struct td_buf *out);
/*
 * td_ydoc_encode_state appends encodeStateAsUpdate(doc, target) in `version`: every struct
 * the holder of state vector target (NULL = empty) lacks, the first of each client sliced
 * with an offset, the full delete set derived from the store, and the pending structs and
 * deletes merged in. Returns 0 or TD_EINVAL (bad version).
 */
int td_ydoc_encode_state(const struct td_ydoc *d, const struct td_ysv *target, int version,
                         struct td_buf *out);

struct td_ydoc_stats {
    size_t clients;
    size_t structs; /* everything in the store */
    size_t items;   /* Items (structs that are not GC) */
    size_t gc_structs;
    size_t deleted_items; /* Items marked deleted */
    size_t pending_structs;
    size_t pending_deletes; /* ranges in the pending delete set */
    size_t mem_bytes;       /* heap bytes held by the document (its own accounting) */
    size_t content_bytes;   /* arena bytes in use (live and garbage) */
};
void td_ydoc_stats(const struct td_ydoc *d, struct td_ydoc_stats *st);

#endif
