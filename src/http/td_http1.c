#include "http/td_http1.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#include "core/td_err.h"

/*
 * Parsing works line by line inside a window of min(n, max_head) bytes. Each complete line
 * is checked fully before the next one is looked at, and the unfinished tail only for bytes
 * that no line may contain, so a prefix of the input never fails with a different code than
 * the whole input. Field semantics (Content-Length, Host, Transfer-Encoding, Connection) are
 * checked once the head is complete.
 */

void td_http_limits_default(struct td_http_limits *lim)
{
    lim->max_head = TD_HTTP_DEFAULT_MAX_HEAD;
    lim->max_headers = TD_HTTP_MAX_HEADERS;
}

static bool http_is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/* Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text. */
static bool http_is_value_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool http_is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static uint8_t http_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* True if s[0..n) equals the NUL-terminated `lit`, ASCII case-insensitive. */
static bool http_ieq(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || http_lower((uint8_t)s[i]) != http_lower((uint8_t)lit[i]))
            return false;
    }
    return lit[i] == '\0';
}

static struct td_str http_view(const uint8_t *p, size_t n)
{
    return (struct td_str){(const char *)p, n};
}

/*
 * The unfinished tail of the window: reject bytes that make any line malformed, i.e.
 * control bytes other than HTAB and a CR that is not the last byte (it has no LF after it).
 */
static int http_check_partial(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '\r') {
            if (i + 1 < n)
                return TD_EPROTO;
        } else if (!http_is_value_char(c)) {
            return TD_EPROTO;
        }
    }
    return 0;
}

static int http_parse_request_line(const uint8_t *s, size_t n, struct td_http_request *r)
{
    size_t i = 0;
    while (i < n && http_is_tchar(s[i]))
        i++;
    if (i == 0 || i == n || s[i] != ' ')
        return TD_EPROTO;
    r->method = http_view(s, i);

    size_t t = ++i;
    size_t q = SIZE_MAX;
    for (; i < n && s[i] != ' '; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '#')
            return TD_EPROTO;
        if (s[i] == '?' && q == SIZE_MAX)
            q = i;
    }
    if (i == t || i == n)
        return TD_EPROTO;
    r->target = http_view(s + t, i - t);
    if (s[t] == '/') {
        if (q == SIZE_MAX) {
            r->path = r->target;
            r->query = http_view(s + i, 0);
        } else {
            r->path = http_view(s + t, q - t);
            r->query = http_view(s + q + 1, i - q - 1);
        }
    } else if (r->target.n == 1 && s[t] == '*' && r->method.n == 7 &&
               memcmp(r->method.p, "OPTIONS", 7) == 0) {
        r->path = r->target;
        r->query = http_view(s + i, 0);
    } else {
        return TD_EPROTO;
    }

    i++;
    if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 || (s[i + 7] != '0' && s[i + 7] != '1'))
        return TD_EPROTO;
    r->minor_version = s[i + 7] - '0';
    return 0;
}

static int http_parse_header_line(const uint8_t *s, size_t n, struct td_http_request *r,
                                  size_t max_headers)
{
    size_t i = 0;
    while (i < n && http_is_tchar(s[i]))
        i++;
    /* Covers obs-fold (line starting with SP/HTAB), space before ':' and a missing ':'. */
    if (i == 0 || i == n || s[i] != ':')
        return TD_EPROTO;
    for (size_t k = i + 1; k < n; k++) {
        if (!http_is_value_char(s[k]))
            return TD_EPROTO;
    }
    size_t b = i + 1, e = n;
    while (b < e && http_is_ows(s[b]))
        b++;
    while (e > b && http_is_ows(s[e - 1]))
        e--;
    /* Checked after the syntax so that a prefix and the whole input agree on the code. */
    if (r->nheaders >= max_headers)
        return TD_ELIMIT;
    struct td_http_header *h = &r->headers[r->nheaders++];
    h->name = http_view(s, i);
    h->value = http_view(s + b, e - b);
    return 0;
}

static int http_parse_content_length(struct td_str v, uint64_t *out)
{
    uint64_t x = 0;
    if (v.n == 0)
        return TD_EPROTO;
    for (size_t i = 0; i < v.n; i++) {
        uint8_t c = (uint8_t)v.p[i];
        if (c < '0' || c > '9')
            return TD_EPROTO;
        uint64_t d = (uint64_t)(c - '0');
        if (x > (UINT64_MAX - d) / 10)
            return TD_EPROTO;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Field semantics, once the whole head is known. */
static int http_check_fields(struct td_http_request *r)
{
    bool te = false, conn_close = false, conn_keep = false, conn_upgrade = false;
    bool upgrade_ws = false;
    size_t hosts = 0;

    for (size_t i = 0; i < r->nheaders; i++) {
        const struct td_http_header *h = &r->headers[i];
        const char *name = h->name.p;
        size_t len = h->name.n;
        if (http_ieq(name, len, "content-length")) {
            uint64_t v;
            if (http_parse_content_length(h->value, &v) != 0)
                return TD_EPROTO;
            if (r->has_content_length && v != r->content_length)
                return TD_EPROTO;
            r->content_length = v;
            r->has_content_length = true;
        } else if (http_ieq(name, len, "host")) {
            hosts++;
        } else if (http_ieq(name, len, "transfer-encoding")) {
            te = true;
        } else if (http_ieq(name, len, "connection")) {
            conn_close = conn_close || td_http_has_token(h->value, "close");
            conn_keep = conn_keep || td_http_has_token(h->value, "keep-alive");
            conn_upgrade = conn_upgrade || td_http_has_token(h->value, "upgrade");
        } else if (http_ieq(name, len, "upgrade")) {
            upgrade_ws = upgrade_ws || td_http_has_token(h->value, "websocket");
        }
    }
    if (hosts > 1 || (hosts == 0 && r->minor_version == 1))
        return TD_EPROTO;
    if (te)
        return TD_EINVAL;
    if (conn_close)
        r->keep_alive = false;
    else
        r->keep_alive = r->minor_version == 1 || conn_keep;
    r->upgrade_websocket = upgrade_ws && conn_upgrade;
    return 0;
}

/* Copies only the used part of the header array. */
static void http_copy_request(struct td_http_request *dst, const struct td_http_request *src)
{
    dst->method = src->method;
    dst->target = src->target;
    dst->path = src->path;
    dst->query = src->query;
    dst->minor_version = src->minor_version;
    memcpy(dst->headers, src->headers, src->nheaders * sizeof(src->headers[0]));
    dst->nheaders = src->nheaders;
    dst->head_len = src->head_len;
    dst->content_length = src->content_length;
    dst->has_content_length = src->has_content_length;
    dst->keep_alive = src->keep_alive;
    dst->upgrade_websocket = src->upgrade_websocket;
}

int td_http1_parse_request(const uint8_t *p, size_t n, const struct td_http_limits *lim,
                           struct td_http_request *req)
{
    size_t max_head = lim != NULL ? lim->max_head : TD_HTTP_DEFAULT_MAX_HEAD;
    size_t max_headers = lim != NULL ? lim->max_headers : TD_HTTP_MAX_HEADERS;
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    if (max_headers > TD_HTTP_MAX_HEADERS)
        max_headers = TD_HTTP_MAX_HEADERS;
    size_t win = n < max_head ? n : max_head;

    /* Parsed into a local so that *req is untouched on failure. */
    struct td_http_request r;
    r.nheaders = 0;
    r.content_length = 0;
    r.has_content_length = false;

    size_t pos = 0;
    for (;;) {
        const uint8_t *lf = pos < win ? memchr(p + pos, '\n', win - pos) : NULL;
        if (lf == NULL) {
            if (pos < win && http_check_partial(p + pos, win - pos) != 0)
                return TD_EPROTO;
            return n >= max_head ? TD_ELIMIT : TD_EAGAIN;
        }
        size_t end = (size_t)(lf - p);
        if (end == pos || p[end - 1] != '\r')
            return TD_EPROTO; /* bare LF */
        const uint8_t *line = p + pos;
        size_t len = end - 1 - pos;
        int rc;
        if (pos == 0) {
            rc = http_parse_request_line(line, len, &r);
        } else if (len == 0) {
            r.head_len = end + 1;
            break;
        } else {
            rc = http_parse_header_line(line, len, &r, max_headers);
        }
        if (rc != 0)
            return rc;
        pos = end + 1;
    }

    int rc = http_check_fields(&r);
    if (rc != 0)
        return rc;
    http_copy_request(req, &r);
    return (int)r.head_len;
}

const struct td_str *td_http_header_get(const struct td_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (http_ieq(req->headers[i].name.p, req->headers[i].name.n, name))
            return &req->headers[i].value;
    }
    return NULL;
}

bool td_http_has_token(struct td_str value, const char *token)
{
    size_t tlen = strlen(token);
    if (tlen == 0)
        return false;
    size_t i = 0;
    while (i < value.n) {
        size_t b = i;
        while (i < value.n && value.p[i] != ',')
            i++;
        size_t e = i;
        while (b < e && http_is_ows((uint8_t)value.p[b]))
            b++;
        while (e > b && http_is_ows((uint8_t)value.p[e - 1]))
            e--;
        if (e - b == tlen && http_ieq(value.p + b, e - b, token))
            return true;
        i++; /* skip the ',' */
    }
    return false;
}

static int http_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = http_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Decodes the byte of s[0..n) at *i ('+' or %XX or itself), advancing *i. Returns the byte
 * (1..255), or -1 for a bad escape or a NUL byte.
 */
static int http_query_byte(const char *s, size_t n, size_t *i)
{
    uint8_t c = (uint8_t)s[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c == '%') {
        if (n - *i < 3)
            return -1;
        int hi = http_hex((uint8_t)s[*i + 1]), lo = http_hex((uint8_t)s[*i + 2]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return -1;
        *i += 3;
        return hi * 16 + lo;
    }
    (*i)++;
    return c == 0 ? -1 : c;
}

static bool http_query_key_eq(const char *s, size_t n, const char *name)
{
    size_t i = 0, j = 0;
    while (i < n) {
        int c = http_query_byte(s, n, &i);
        if (c < 0 || name[j] == '\0' || (uint8_t)name[j] != (uint8_t)c)
            return false;
        j++;
    }
    return name[j] == '\0';
}

int td_http_query_get(struct td_str query, const char *name, char *out, size_t outcap)
{
    size_t i = 0;
    while (i < query.n) {
        const char *pair = query.p + i;
        size_t rest = query.n - i;
        const char *amp = memchr(pair, '&', rest);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : rest;
        i += plen + 1;
        if (plen == 0)
            continue;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - pair) : plen;
        if (!http_query_key_eq(pair, klen, name))
            continue;

        const char *v = eq != NULL ? eq + 1 : pair + plen;
        size_t vlen = plen - (size_t)(v - pair);
        /* Validate and measure first, so out is written only on success. */
        size_t dlen = 0;
        for (size_t k = 0; k < vlen; dlen++) {
            if (http_query_byte(v, vlen, &k) < 0)
                return TD_EPROTO;
        }
        if (dlen >= outcap || dlen > INT_MAX)
            return TD_ELIMIT;
        size_t o = 0;
        for (size_t k = 0; k < vlen;)
            out[o++] = (char)http_query_byte(v, vlen, &k);
        out[o] = '\0';
        return (int)dlen;
    }
    return TD_ENOTFOUND;
}

const char *td_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

bool td_http_origin_allowed(const char *const *allowed, size_t n, struct td_str origin,
                            struct td_str host)
{
    if (origin.n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        const char *a = allowed[i];
        if (strcmp(a, "*") == 0 ||
            (strlen(a) == origin.n && strncasecmp(a, origin.p, origin.n) == 0))
            return true;
    }
    if (host.n == 0)
        return false;
    const char *sep = memchr(origin.p, ':', origin.n);
    if (sep == NULL || (size_t)(sep - origin.p) + 3 > origin.n || sep[1] != '/' || sep[2] != '/')
        return false;
    const char *oh = sep + 3;
    size_t ohn = origin.n - (size_t)(oh - origin.p);
    return ohn == host.n && strncasecmp(oh, host.p, ohn) == 0;
}
