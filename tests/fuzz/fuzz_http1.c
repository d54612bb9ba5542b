/*
 * Fuzz target for the HTTP/1 request head parser and its helpers.
 *
 * Invariants checked (abort() on violation):
 *   - the return code is head_len (> 0) or one of TD_EAGAIN, TD_EPROTO, TD_ELIMIT, TD_EINVAL;
 *   - on success: head_len <= n and <= max_head, the head ends with CRLFCRLF, every view lies
 *     inside the head, path/query split the target, nheaders <= max_headers, re-parsing
 *     p[0..head_len) gives the same request, p[0..head_len-1) gives TD_EAGAIN, and larger
 *     limits give the same result;
 *   - a prefix of the input never yields a different answer than the whole, only TD_EAGAIN
 *     (statelessness must not change the outcome of incremental feeding);
 *   - td_http_query_get output fits and is a proper C string of the returned length.
 */
#include <stdlib.h>
#include <string.h>

#include "core/td_err.h"
#include "http/td_http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_view(struct td_str s, const uint8_t *p, size_t n)
{
    const char *b = (const char *)p;
    check(s.p != NULL && s.p >= b && s.n <= n && (size_t)(s.p - b) <= n - s.n);
}

static int parse(const uint8_t *p, size_t n, size_t max_head, size_t max_headers,
                 struct td_http_request *req)
{
    struct td_http_limits lim = {max_head, max_headers};
    return td_http1_parse_request(p, n, &lim, req);
}

static bool same_str(struct td_str a, struct td_str b)
{
    return a.p == b.p && a.n == b.n;
}

static bool same_request(const struct td_http_request *a, const struct td_http_request *b)
{
    if (!same_str(a->method, b->method) || !same_str(a->target, b->target) ||
        !same_str(a->path, b->path) || !same_str(a->query, b->query) ||
        a->minor_version != b->minor_version || a->nheaders != b->nheaders ||
        a->head_len != b->head_len || a->content_length != b->content_length ||
        a->has_content_length != b->has_content_length || a->keep_alive != b->keep_alive ||
        a->upgrade_websocket != b->upgrade_websocket)
        return false;
    for (size_t i = 0; i < a->nheaders; i++) {
        if (!same_str(a->headers[i].name, b->headers[i].name) ||
            !same_str(a->headers[i].value, b->headers[i].value))
            return false;
    }
    return true;
}

static void check_query_get(struct td_str q, const char *name, size_t outcap)
{
    char out[64];
    memset(out, 'Z', sizeof(out));
    int rc = td_http_query_get(q, name, out, outcap);
    if (rc >= 0) {
        check((size_t)rc < outcap && out[rc] == '\0' && strlen(out) == (size_t)rc);
    } else {
        check(rc == TD_ENOTFOUND || rc == TD_EPROTO || rc == TD_ELIMIT);
        check(out[0] == 'Z'); /* untouched on failure */
    }
}

static void check_success(const uint8_t *p, size_t n, size_t max_head, size_t max_headers,
                          const struct td_http_request *req, int rc)
{
    size_t hl = (size_t)rc;
    check(hl == req->head_len && hl <= n && hl <= max_head && hl >= 4);
    check(memcmp(p + hl - 4, "\r\n\r\n", 4) == 0);
    check(req->minor_version == 0 || req->minor_version == 1);
    check(req->nheaders <= max_headers && req->nheaders <= TD_HTTP_MAX_HEADERS);
    check(!req->has_content_length ? req->content_length == 0 : 1);
    check_view(req->method, p, hl);
    check_view(req->target, p, hl);
    check_view(req->path, p, hl);
    check_view(req->query, p, hl);
    check(req->method.n > 0 && req->target.n > 0);
    check(req->path.p == req->target.p && req->path.n <= req->target.n);
    if (req->path.n < req->target.n) {
        check(req->path.p[req->path.n] == '?');
        check(req->query.p == req->path.p + req->path.n + 1);
        check(req->path.n + 1 + req->query.n == req->target.n);
    } else {
        check(req->query.n == 0);
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct td_http_header *h = &req->headers[i];
        check_view(h->name, p, hl);
        check_view(h->value, p, hl);
        check(h->name.n > 0);
        char name[128];
        if (h->name.n < sizeof(name)) {
            memcpy(name, h->name.p, h->name.n);
            name[h->name.n] = '\0';
            const struct td_str *v = td_http_header_get(req, name);
            check(v != NULL);
            check(v == &req->headers[i].value || v < &req->headers[i].value);
        }
    }

    struct td_http_request again;
    check(parse(p, hl, max_head, max_headers, &again) == rc);
    check(same_request(req, &again));
    check(parse(p, hl - 1, max_head, max_headers, &again) == TD_EAGAIN);
    /* Larger limits accept the same head. */
    check(parse(p, n, TD_HTTP_DEFAULT_MAX_HEAD + 1000, TD_HTTP_MAX_HEADERS, &again) == rc);
    check(same_request(req, &again));

    check_query_get(req->query, "a", 64);
    check_query_get(req->query, "token", 8);
}

static void run_limits(const uint8_t *p, size_t n, size_t max_head, size_t max_headers)
{
    struct td_http_request req;
    int rc = parse(p, n, max_head, max_headers, &req);
    if (rc > 0) {
        check_success(p, n, max_head, max_headers, &req, rc);
        return;
    }
    check(rc == TD_EAGAIN || rc == TD_EPROTO || rc == TD_ELIMIT || rc == TD_EINVAL);
    if (rc == TD_EAGAIN)
        check(n < max_head);
    /* Prefixes never disagree with the whole input. */
    size_t cuts[3] = {n / 2, n > 0 ? n - 1 : 0, n > 0 ? p[0] % n : 0};
    for (size_t i = 0; i < 3; i++) {
        int prc = parse(p, cuts[i], max_head, max_headers, &req);
        check(prc == TD_EAGAIN || prc == rc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_limits(data, size, TD_HTTP_DEFAULT_MAX_HEAD, TD_HTTP_MAX_HEADERS);
    run_limits(data, size, 64, 2);
    run_limits(data, size, 24, 0);

    /* The helpers on raw input: the whole input as a query string and a header value. */
    struct td_str s = {(const char *)data, size};
    char name[16];
    size_t k = 0;
    while (k < size && k < sizeof(name) - 1 && data[k] != '=' && data[k] != '&') {
        name[k] = data[k] != 0 ? (char)data[k] : 'x';
        k++;
    }
    name[k] = '\0';
    check_query_get(s, name, 64);
    check_query_get(s, name, 4);
    check_query_get(s, "a", 1);
    /* Token matching is case-insensitive: an upper-cased token gives the same answer. */
    char upper[sizeof(name)];
    for (size_t i = 0; i <= k; i++)
        upper[i] = (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 'a' + 'A') : name[i];
    check(td_http_has_token(s, name) == td_http_has_token(s, upper));
    check(td_http_has_token(s, "upgrade") == td_http_has_token(s, "UpGrAdE"));
    return 0;
}
