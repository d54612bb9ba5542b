/*
 * td_static.h - serving files from one configured directory under /static/ (tandem's own
 * feature, `http_server.static_dir`; docs/configuration.md).
 *
 * It exists so that a browser page and the scripts it loads (for example the centrifuge-js
 * bundle in the interop tests) can come from the same origin as the server. It is not a
 * general web server: no directory listings, no ranges, no conditional requests, no
 * compression, and files are read whole (at most TD_STATIC_MAX_FILE bytes) with ordinary
 * blocking reads on the calling thread. Serve big or busy assets from a real web server.
 *
 * Safety rules, all applied to the percent-decoded path below /static/:
 *   - the path is relative: it must not be empty or start with '/';
 *   - every component is non-empty and does not start with '.', which refuses ".", "..",
 *     and hidden files such as ".git" or ".env";
 *   - NUL, backslash and other control bytes (0x00-0x1F, 0x7F) are refused anywhere;
 *   - every component is opened with openat(O_NOFOLLOW) relative to the previous one, so
 *     a symbolic link anywhere below the directory is refused, and nothing outside the
 *     directory can be reached;
 *   - only regular files are served.
 * The configured directory itself may be reached through a symbolic link.
 */
#ifndef TD_STATIC_H
#define TD_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/td_buf.h"
#include "core/td_str.h"

/* The URL prefix the server routes to this module. */
#define TD_STATIC_PREFIX "/static/"
/* Longest relative path accepted, in bytes after percent-decoding. */
#define TD_STATIC_MAX_PATH 1024
/* Largest file served, in bytes; bigger files are refused (403). */
#define TD_STATIC_MAX_FILE (8u << 20)

/*
 * td_static_path_decode percent-decodes p[0..n) (the request path after TD_STATIC_PREFIX,
 * without the query) into out[0..outcap) and checks it against the rules above. On success
 * out is NUL-terminated and holds components separated by single '/'.
 *
 * Returns the decoded length (> 0, excluding the NUL); TD_EPROTO if the path is refused (a
 * bad %-escape or a rule above); TD_ELIMIT if the decoded path is longer than
 * TD_STATIC_MAX_PATH or does not fit in outcap with its NUL. out is written only on success.
 */
int td_static_path_decode(const char *p, size_t n, char *out, size_t outcap);

/*
 * td_static_content_type returns the Content-Type for a file name by its extension (ASCII
 * case-insensitive): .html, .js, .mjs, .css, .json, .map, .wasm, .txt; anything else is
 * "application/octet-stream". The string is static.
 */
const char *td_static_content_type(const char *name);

/*
 * td_static_read reads the file at rel (a path accepted by td_static_path_decode) below the
 * directory dir, and appends its bytes to out.
 *
 * Returns 0; TD_ENOTFOUND if it does not exist (or a component is not a directory);
 * TD_EPROTO if it is refused (a symbolic link, not a regular file, no permission);
 * TD_ELIMIT if it is larger than TD_STATIC_MAX_FILE; or another -errno from opening dir or
 * reading. out is unchanged unless 0 is returned.
 */
int td_static_read(const char *dir, const char *rel, struct td_buf *out);

/*
 * td_static_respond answers one request for a path starting with TD_STATIC_PREFIX: it
 * appends a complete HTTP/1.1 response (head and, except for HEAD, body) to out. dir is the
 * configured directory (non-empty); path is the request path without the query.
 *
 * 200 with the file (GET) or only its head (HEAD); 405 with `Allow: GET, HEAD` for any other
 * method; 403 for a refused path or file; 404 for a missing one; 500 if the directory or file
 * cannot be read. Every response has Cache-Control: no-cache, X-Content-Type-Options: nosniff,
 * a Content-Length, and Connection: keep-alive or close according to keep_alive (the caller
 * closes the connection after a close). Returns the status code.
 */
int td_static_respond(const char *dir, struct td_str method, struct td_str path, bool keep_alive,
                      struct td_buf *out);

#endif
