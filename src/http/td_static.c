/*
 * td_static.c - files under /static/ from http_server.static_dir.
 *
 * The path is checked twice, in two different ways: td_static_path_decode refuses every
 * name that could leave the directory or reach a hidden file, and td_static_read then walks
 * the components with openat(O_NOFOLLOW), so even a symbolic link planted inside the
 * directory cannot lead out of it. Each component is first looked at with fstatat, so a FIFO
 * or a device node is never opened (opening one can block or have side effects).
 */
#include "http/td_static.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/td_err.h"
#include "http/td_http1.h"

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks a decoded path against the rules in the header; true if it may be served. */
static bool static_path_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '/')
        return false;
    size_t start = 0; /* first byte of the current component */
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? (unsigned char)s[i] : '/';
        if (c == '/') {
            if (i == start || s[start] == '.')
                return false; /* empty component ("a//b", "a/"), ".", "..", hidden */
            start = i + 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return false;
    }
    return true;
}

int td_static_path_decode(const char *p, size_t n, char *out, size_t outcap)
{
    char tmp[TD_STATIC_MAX_PATH];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_val(p[i + 1]) : -1;
            int lo = i + 2 < n ? hex_val(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return TD_EPROTO;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (len == sizeof(tmp))
            return TD_ELIMIT;
        tmp[len++] = c;
    }
    if (!static_path_ok(tmp, len))
        return TD_EPROTO;
    if (len + 1 > outcap)
        return TD_ELIMIT;
    memcpy(out, tmp, len);
    out[len] = '\0';
    return (int)len;
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    if (n < m)
        return false;
    for (size_t i = 0; i < m; i++) {
        char c = s[n - m + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != suffix[i])
            return false;
    }
    return true;
}

const char *td_static_content_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".wasm", "application/wasm"},
        {".txt", "text/plain; charset=utf-8"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (ends_with_ci(name, n, types[i].ext))
            return types[i].type;
    }
    return "application/octet-stream";
}

/* Maps an errno from openat/fstatat on a path below the directory to a module code. */
static int static_open_err(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return TD_ENOTFOUND;
    case ELOOP: /* O_NOFOLLOW met a symbolic link */
    case EACCES:
    case EPERM:
        return TD_EPROTO;
    default:
        return -e;
    }
}

/* Reads the regular file fd (size bytes by fstat) into out; returns 0 or -errno. */
static int static_read_fd(int fd, size_t size, struct td_buf *out)
{
    td_buf_reserve(out, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, out->data + out->len + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break; /* the file shrank meanwhile: serve what is there */
        got += (size_t)r;
    }
    out->len += got;
    return 0;
}

int td_static_read(const char *dir, const char *rel, struct td_buf *out)
{
    size_t n = strlen(rel);
    if (n > TD_STATIC_MAX_PATH || !static_path_ok(rel, n))
        return TD_EPROTO;
    char path[TD_STATIC_MAX_PATH + 1];
    memcpy(path, rel, n + 1);

    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rv = 0;
    char *comp = path;
    for (;;) {
        char *slash = strchr(comp, '/');
        if (slash != NULL)
            *slash = '\0';
        struct stat st;
        if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rv = static_open_err(errno);
            break;
        }
        if (slash != NULL) {
            if (!S_ISDIR(st.st_mode)) {
                rv = S_ISLNK(st.st_mode) ? TD_EPROTO : TD_ENOTFOUND;
                break;
            }
            int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0) {
                rv = static_open_err(errno);
                break;
            }
            close(fd);
            fd = next;
            comp = slash + 1;
            continue;
        }
        if (!S_ISREG(st.st_mode)) {
            rv = TD_EPROTO;
            break;
        }
        if ((uint64_t)st.st_size > TD_STATIC_MAX_FILE) {
            rv = TD_ELIMIT;
            break;
        }
        int f = openat(fd, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (f < 0) {
            rv = static_open_err(errno);
            break;
        }
        /* The name may have been replaced between fstatat and openat: check what we got. */
        struct stat fst;
        if (fstat(f, &fst) != 0) {
            rv = -errno;
        } else if (!S_ISREG(fst.st_mode)) {
            rv = TD_EPROTO;
        } else if ((uint64_t)fst.st_size > TD_STATIC_MAX_FILE) {
            rv = TD_ELIMIT;
        } else {
            size_t old = out->len;
            rv = static_read_fd(f, (size_t)fst.st_size, out);
            if (rv != 0)
                out->len = old;
        }
        close(f);
        break;
    }
    close(fd);
    return rv;
}

static void static_head(struct td_buf *out, int status, const char *ctype, size_t len,
                        bool keep_alive)
{
    td_buf_appendf(out,
                   "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: %s\r\n"
                   "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
                   status, td_http_reason(status), len, ctype);
    if (status == 405)
        td_buf_append_str(out, "Allow: GET, HEAD\r\n");
    td_buf_append_str(out,
                      keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

static int static_error(struct td_buf *out, int status, const char *text, bool head,
                        bool keep_alive)
{
    size_t n = strlen(text);
    static_head(out, status, "text/plain; charset=utf-8", n, keep_alive);
    if (!head)
        td_buf_append(out, text, n);
    return status;
}

int td_static_respond(const char *dir, struct td_str method, struct td_str path, bool keep_alive,
                      struct td_buf *out)
{
    bool get = method.n == 3 && memcmp(method.p, "GET", 3) == 0;
    bool head = method.n == 4 && memcmp(method.p, "HEAD", 4) == 0;
    if (!get && !head)
        return static_error(out, 405, "method not allowed\n", false, keep_alive);
    size_t plen = strlen(TD_STATIC_PREFIX);
    if (path.n < plen || memcmp(path.p, TD_STATIC_PREFIX, plen) != 0)
        return static_error(out, 404, "not found\n", head, keep_alive);

    char rel[TD_STATIC_MAX_PATH + 1];
    if (td_static_path_decode(path.p + plen, path.n - plen, rel, sizeof(rel)) < 0)
        return static_error(out, 403, "forbidden\n", head, keep_alive);

    struct td_buf body;
    td_buf_init(&body);
    int rv = td_static_read(dir, rel, &body);
    int status;
    if (rv == 0) {
        static_head(out, 200, td_static_content_type(rel), body.len, keep_alive);
        if (!head)
            td_buf_append(out, body.data, body.len);
        status = 200;
    } else if (rv == TD_ENOTFOUND) {
        status = static_error(out, 404, "not found\n", head, keep_alive);
    } else if (rv == TD_EPROTO || rv == TD_ELIMIT) {
        status = static_error(out, 403, "forbidden\n", head, keep_alive);
    } else {
        status = static_error(out, 500, "cannot read the file\n", head, keep_alive);
    }
    td_buf_free(&body);
    return status;
}
