/*
 * td_json.h - strict JSON (RFC 8259): a DOM parser, a pull cursor, a validator and a
 * string writer.
 *
 * Strictness, shared by every reader below: exactly one value per text (surrounding
 * whitespace allowed), no comments, no trailing commas, no leading zeros ("01"), no bare
 * "1." / ".5" / "+1", no control characters (< 0x20) inside strings, strings must be valid
 * UTF-8 (no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF), and \u escapes
 * must not leave a surrogate unpaired (\uD800 must be followed by \uDC00-\uDFFF, a lone
 * \uDC00 is an error). No byte order mark. Containers nest at most TD_JSON_MAX_DEPTH deep
 * (the root array or object counts as depth 1). The whole input size is the caller's cap:
 * callers bound what they read before handing it here.
 *
 * Which reader to use:
 *   - td_json_parse builds a read-only tree (config files, HTTP API bodies). The input is
 *     not modified; strings are unescaped into an arena the document owns.
 *   - struct td_json_cursor reads a writable buffer token by token without allocating
 *     (protocol codecs). Strings are unescaped in place, so the buffer is clobbered.
 *   - td_json_valid checks one value without building anything (publish payloads).
 *   - td_json_write_string appends a quoted, escaped string to a td_buf.
 */
#ifndef TD_JSON_H
#define TD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"

#define TD_JSON_MAX_DEPTH 64

enum td_json_type {
    TD_JSON_NULL,
    TD_JSON_FALSE,
    TD_JSON_TRUE,
    TD_JSON_NUMBER,
    TD_JSON_STRING,
    TD_JSON_ARRAY,
    TD_JSON_OBJECT,
};

/* td_json_type_name returns a static lowercase name ("null", "number", "object"...). */
const char *td_json_type_name(enum td_json_type t);

/* ---------------------------------------------------------------------------------------
 * DOM
 */

/*
 * One value of a parsed document. Every pointer except `raw` points into the document's
 * arena and lives until td_json_doc_free; `raw` points into the caller's input text.
 */
struct td_json {
    enum td_json_type type;
    uint32_t line, col; /* 1-based position of the value's first byte (col counts bytes) */
    /* Object members only: the key, unescaped and NUL-terminated (may hold NUL bytes,
     * key_len is authoritative). NULL for array elements and the root. */
    const char *key;
    size_t key_len;
    /* STRING: the unescaped value, NUL-terminated (may hold NUL bytes via \u0000).
     * NUMBER: the literal as written ("-1.5e3"), NUL-terminated. NULL otherwise. */
    const char *str;
    size_t len;
    /* NUMBER: the value as a double (strtod; may be +-HUGE_VAL for huge exponents). When
     * the literal has no fraction or exponent and fits an int64, is_int is true and i holds
     * it exactly ("1.0" and "1e2" are not is_int). */
    double num;
    int64_t i;
    bool is_int;
    /* ARRAY/OBJECT: the elements or members in source order, child[0..n). */
    const struct td_json *child;
    size_t n;
    /* The value's exact source text (e.g. to embed a payload verbatim); points into the
     * text given to td_json_parse, so it is valid only while that text is. */
    const char *raw;
    size_t raw_len;
};

struct td_json_chunk;

/* A parsed document: owns every node and string (an arena). Caller-provided storage. */
struct td_json_doc {
    struct td_json_chunk *chunks;
    const struct td_json *root;
};

struct td_json_error {
    uint32_t line, col; /* 1-based position of the offending byte (col counts bytes) */
    char msg[128];
};

/*
 * td_json_parse parses text[0..n) as one JSON value (surrounding whitespace allowed) into
 * *doc, which need not be initialised. Returns 0 with the tree available through
 * td_json_root, or TD_EPROTO with *err (if not NULL) holding the position of the offending
 * byte and a short message, e.g. "expected ',' or '}' after object member". On error the
 * document is left empty. Either way td_json_doc_free releases it (freeing an empty
 * document is a no-op). The text is not modified. Memory: about sizeof(struct td_json)
 * (~100 bytes) per value plus the unescaped strings, so "[0,0,...]" costs ~50x its size;
 * size the caller's input cap with that in mind.
 */
int td_json_parse(struct td_json_doc *doc, const char *text, size_t n, struct td_json_error *err);

/* td_json_root returns the root value, or NULL if the document is empty. */
const struct td_json *td_json_root(const struct td_json_doc *doc);

/* td_json_doc_free releases everything the document owns and leaves it empty. */
void td_json_doc_free(struct td_json_doc *doc);

/*
 * td_json_get returns the member of object `obj` named `key` (a C string), or NULL if
 * absent or if obj is NULL or not an object. With duplicate keys the LAST one wins, as in
 * JavaScript's JSON.parse and Go's encoding/json.
 */
const struct td_json *td_json_get(const struct td_json *obj, const char *key);

/* ---------------------------------------------------------------------------------------
 * Validation and writing
 */

/* td_json_valid returns true if p[0..n) is exactly one valid JSON value (surrounding
 * whitespace allowed) under the rules above; it agrees with td_json_parse. */
bool td_json_valid(const char *p, size_t n);

/*
 * td_json_write_string appends p[0..n) as a quoted JSON string: '"' and '\' are escaped,
 * \b \f \n \r \t use their short forms, other bytes < 0x20 become \u00XX, valid UTF-8
 * passes through unchanged, and each byte that is not part of a valid UTF-8 sequence is
 * replaced by \ufffd. The output is always valid JSON.
 */
void td_json_write_string(struct td_buf *out, const char *p, size_t n);

/* ---------------------------------------------------------------------------------------
 * Pull cursor
 *
 * A cursor walks one JSON value in a writable buffer without allocating. Reading calls
 * skip leading whitespace, consume exactly one token or value, and return 0 (or 1/0 for
 * the *_next calls) on success or TD_EPROTO on malformed input or a type mismatch; on
 * failure c->error names the reason (a static string), c->pos is left at the offending
 * byte, no out-parameter is written, and the cursor must not be used further.
 *
 * Containers are read in order: *_begin opens one, then *_next is called before each
 * member/element until it returns 0 (which consumes the closing bracket). Between two
 * *_next calls exactly one value must be consumed (by a typed read, a nested container
 * read to its end, or td_json_cursor_skip). Nesting is capped at TD_JSON_MAX_DEPTH.
 *
 * Example, reading {"id":7,"name":"x"}:
 *   td_json_cursor_init(&c, buf, len);
 *   if (td_json_cursor_object_begin(&c) < 0) ...
 *   while ((rc = td_json_cursor_object_next(&c, &k, &kn)) == 1) {
 *       if (kn == 2 && memcmp(k, "id", 2) == 0) rc = td_json_cursor_uint64(&c, UINT32_MAX, &id);
 *       else rc = td_json_cursor_skip(&c, NULL, NULL);
 *       if (rc < 0) ...
 *   }
 *   if (rc < 0 || td_json_cursor_end(&c) < 0) ...
 */
struct td_json_cursor {
    char *p;           /* the text; written only where strings/keys are unescaped */
    size_t pos;        /* offset of the next unread byte */
    size_t end;        /* offset one past the last byte */
    uint32_t depth;    /* containers currently open */
    bool first;        /* internal: nothing read yet in the innermost open container */
    const char *error; /* static reason after a failed call, NULL otherwise */
};

/* td_json_cursor_init points the cursor at p[0..n). */
void td_json_cursor_init(struct td_json_cursor *c, char *p, size_t n);

/* td_json_cursor_peek returns the type of the next value judged by its first byte
 * (TD_JSON_TRUE for 't', TD_JSON_NUMBER for '-' or a digit...) without consuming or
 * validating it, or TD_EPROTO if no value can start there. */
int td_json_cursor_peek(struct td_json_cursor *c);

/* td_json_cursor_null consumes a null literal and returns true if the next value is
 * null; otherwise it consumes nothing and returns false. */
bool td_json_cursor_null(struct td_json_cursor *c);

/* td_json_cursor_object_begin consumes '{'. Returns 0 or TD_EPROTO (not an object, or
 * nested too deep). */
int td_json_cursor_object_begin(struct td_json_cursor *c);

/*
 * td_json_cursor_object_next moves to the next member of the open object: returns 1 with
 * *key and *key_len set to the member name (unescaped in place, not NUL-terminated) and the
 * cursor before its value, 0 after consuming the closing '}', or TD_EPROTO.
 */
int td_json_cursor_object_next(struct td_json_cursor *c, const char **key, size_t *key_len);

/* td_json_cursor_array_begin consumes '['. Returns 0 or TD_EPROTO. */
int td_json_cursor_array_begin(struct td_json_cursor *c);

/* td_json_cursor_array_next returns 1 if an element follows (the cursor is before it), 0
 * after consuming the closing ']', or TD_EPROTO. */
int td_json_cursor_array_next(struct td_json_cursor *c);

/* td_json_cursor_string reads a string, unescaping it in place: *s points into the
 * buffer, *n is its length (not NUL-terminated; may hold NUL bytes). Returns 0 or
 * TD_EPROTO (not a string, or malformed). */
int td_json_cursor_string(struct td_json_cursor *c, const char **s, size_t *n);

/* td_json_cursor_uint64 reads an integer literal in [0, max]: no sign, fraction or
 * exponent ("1.0", "1e3", "-0" are rejected). Returns 0 or TD_EPROTO. */
int td_json_cursor_uint64(struct td_json_cursor *c, uint64_t max, uint64_t *v);

/* td_json_cursor_int64 reads an integer literal in [min, max] (no fraction or exponent).
 * Returns 0 or TD_EPROTO. */
int td_json_cursor_int64(struct td_json_cursor *c, int64_t min, int64_t max, int64_t *v);

/* td_json_cursor_bool reads true or false. Returns 0 or TD_EPROTO. */
int td_json_cursor_bool(struct td_json_cursor *c, bool *v);

/* td_json_cursor_skip validates and skips any one value without modifying the buffer;
 * if raw is not NULL, *raw and *raw_len receive its exact source span (no surrounding
 * whitespace). Returns 0 or TD_EPROTO. */
int td_json_cursor_skip(struct td_json_cursor *c, const char **raw, size_t *raw_len);

/* td_json_cursor_end checks that only whitespace remains. Returns 0 or TD_EPROTO. */
int td_json_cursor_end(struct td_json_cursor *c);

#endif
