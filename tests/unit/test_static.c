/* Unit tests for td_static: path validation, content types, reading files safely. */
#include "http/td_static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/td_err.h"
#include "td_test.h"

/* Decodes s; returns the td_static_path_decode result, the decoded text in out. */
static int decode(const char *s, char *out, size_t cap)
{
    return td_static_path_decode(s, strlen(s), out, cap);
}

TD_TEST(static_path_accepts_plain_paths)
{
    char out[TD_STATIC_MAX_PATH + 1];
    TD_CHECK_EQ_INT(decode("index.html", out, sizeof(out)), 10);
    TD_CHECK(strcmp(out, "index.html") == 0);
    TD_CHECK_EQ_INT(decode("js/lib/centrifuge.js", out, sizeof(out)), 20);
    TD_CHECK(strcmp(out, "js/lib/centrifuge.js") == 0);
    /* a dot inside a name is fine, only a leading one is refused */
    TD_CHECK_EQ_INT(decode("a.b/c..d", out, sizeof(out)), 8);
    TD_CHECK_EQ_INT(decode("x", out, sizeof(out)), 1);
}

TD_TEST(static_path_percent_decoding)
{
    char out[64];
    TD_CHECK_EQ_INT(decode("my%20file.txt", out, sizeof(out)), 11);
    TD_CHECK(strcmp(out, "my file.txt") == 0);
    TD_CHECK_EQ_INT(decode("a%2fb%2Fc", out, sizeof(out)), 5); /* %2F is a separator */
    TD_CHECK(strcmp(out, "a/b/c") == 0);
    TD_CHECK_EQ_INT(decode("%C3%A9.js", out, sizeof(out)), 5);
    TD_CHECK(strcmp(out, "\xc3\xa9.js") == 0);
    /* bad escapes */
    const char *bad[] = {"%", "%2", "a%zz", "a%2g", "abc%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(out, "untouched", 10);
        TD_CHECK_EQ_INT(decode(bad[i], out, sizeof(out)), TD_EPROTO);
        TD_CHECK(strcmp(out, "untouched") == 0);
    }
}

TD_TEST(static_path_refuses_traversal_and_hidden)
{
    char out[64];
    const char *refused[] = {
        "",      "/etc/passwd", "..",         "../x",        "a/../../x",       "a/..",
        ".",     "./a",         "a/./b",      ".git/config", "a/.env",          "a//b",
        "a/",    "%2e%2e/x",    "%2E%2E%2Fx", "a%2f..%2fb",  "%2fetc%2fpasswd", "a%00.js",
        "a\\b",  "a%5c..%5cb",  "a\tb",       "a%0ab",       "a%7fb",           "..%2f",
        "%2e/x", "a/%2e%2e",    "x/.hidden",  "%2F",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memcpy(out, "untouched", 10);
        int rv = decode(refused[i], out, sizeof(out));
        if (rv != TD_EPROTO)
            fprintf(stderr, "  path %zu \"%s\" -> %d\n", i, refused[i], rv);
        TD_CHECK_EQ_INT(rv, TD_EPROTO);
        TD_CHECK(strcmp(out, "untouched") == 0);
    }
    /* a raw NUL inside the view is refused too */
    TD_CHECK_EQ_INT(td_static_path_decode("a\0b", 3, out, sizeof(out)), TD_EPROTO);
}

TD_TEST(static_path_limits)
{
    char big[TD_STATIC_MAX_PATH + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *out = malloc(TD_STATIC_MAX_PATH + 8);
    TD_REQUIRE(out != NULL);
    /* exactly the maximum fits */
    big[TD_STATIC_MAX_PATH] = '\0';
    TD_CHECK_EQ_INT(td_static_path_decode(big, TD_STATIC_MAX_PATH, out, TD_STATIC_MAX_PATH + 1),
                    TD_STATIC_MAX_PATH);
    /* one more byte does not */
    big[TD_STATIC_MAX_PATH] = 'a';
    TD_CHECK_EQ_INT(td_static_path_decode(big, TD_STATIC_MAX_PATH + 1, out, TD_STATIC_MAX_PATH + 8),
                    TD_ELIMIT);
    /* the output buffer must hold the NUL */
    TD_CHECK_EQ_INT(td_static_path_decode("abcd", 4, out, 4), TD_ELIMIT);
    TD_CHECK_EQ_INT(td_static_path_decode("abcd", 4, out, 5), 4);
    free(out);
}

TD_TEST(static_content_types)
{
    TD_CHECK(strcmp(td_static_content_type("a.html"), "text/html; charset=utf-8") == 0);
    TD_CHECK(strcmp(td_static_content_type("x/INDEX.HTML"), "text/html; charset=utf-8") == 0);
    TD_CHECK(strcmp(td_static_content_type("c.js"), "text/javascript; charset=utf-8") == 0);
    TD_CHECK(strcmp(td_static_content_type("c.mjs"), "text/javascript; charset=utf-8") == 0);
    TD_CHECK(strcmp(td_static_content_type("s.css"), "text/css; charset=utf-8") == 0);
    TD_CHECK(strcmp(td_static_content_type("d.json"), "application/json") == 0);
    TD_CHECK(strcmp(td_static_content_type("c.js.map"), "application/json") == 0);
    TD_CHECK(strcmp(td_static_content_type("m.wasm"), "application/wasm") == 0);
    TD_CHECK(strcmp(td_static_content_type("r.txt"), "text/plain; charset=utf-8") == 0);
    TD_CHECK(strcmp(td_static_content_type("a.jsx"), "application/octet-stream") == 0);
    TD_CHECK(strcmp(td_static_content_type("html"), "application/octet-stream") == 0);
    TD_CHECK(strcmp(td_static_content_type("noext"), "application/octet-stream") == 0);
    TD_CHECK(strcmp(td_static_content_type(""), "application/octet-stream") == 0);
}

/* A temp directory tree for the reading tests:
 *   root/index.html ("<p>hi</p>"), root/sub/app.js ("x=1;"), root/empty.txt (""),
 *   root/link.js -> sub/app.js, root/linkdir -> sub, root/fifo, root/.secret,
 *   outside/secret.txt next to root, root/out -> ../outside */
struct tree {
    char base[64];
    char root[96];
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

static int tree_make(struct tree *t)
{
    snprintf(t->base, sizeof(t->base), "/tmp/td-static-test-XXXXXX");
    if (mkdtemp(t->base) == NULL)
        return -1;
    char p[192];
    snprintf(t->root, sizeof(t->root), "%s/root", t->base);
    mkdir(t->root, 0700);
    snprintf(p, sizeof(p), "%s/sub", t->root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/outside", t->base);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/outside/secret.txt", t->base);
    write_file(p, "secret");
    snprintf(p, sizeof(p), "%s/index.html", t->root);
    write_file(p, "<p>hi</p>");
    snprintf(p, sizeof(p), "%s/sub/app.js", t->root);
    write_file(p, "x=1;");
    snprintf(p, sizeof(p), "%s/empty.txt", t->root);
    write_file(p, "");
    snprintf(p, sizeof(p), "%s/.secret", t->root);
    write_file(p, "hidden");
    snprintf(p, sizeof(p), "%s/link.js", t->root);
    if (symlink("sub/app.js", p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/linkdir", t->root);
    if (symlink("sub", p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/out", t->root);
    if (symlink("../outside", p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/fifo", t->root);
    if (mkfifo(p, 0600) != 0)
        return -1;
    return 0;
}

static void tree_remove(struct tree *t)
{
    const char *names[] = {"root/index.html", "root/sub/app.js", "root/empty.txt",
                           "root/.secret",    "root/link.js",    "root/linkdir",
                           "root/out",        "root/fifo",       "outside/secret.txt",
                           "root/big.bin"};
    char p[192];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", t->base, names[i]);
        unlink(p);
    }
    const char *dirs[] = {"root/sub", "root", "outside", ""};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", t->base, dirs[i]);
        rmdir(p);
    }
}

TD_TEST(static_read_files)
{
    struct tree t;
    TD_REQUIRE(tree_make(&t) == 0);
    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_static_read(t.root, "index.html", &b), 0);
    TD_CHECK_MEM_STR(b.data, b.len, "<p>hi</p>");
    td_buf_reset(&b);
    TD_CHECK_EQ_INT(td_static_read(t.root, "sub/app.js", &b), 0);
    TD_CHECK_MEM_STR(b.data, b.len, "x=1;");
    /* appends after what is there */
    TD_CHECK_EQ_INT(td_static_read(t.root, "index.html", &b), 0);
    TD_CHECK_MEM_STR(b.data, b.len, "x=1;<p>hi</p>");
    td_buf_reset(&b);
    TD_CHECK_EQ_INT(td_static_read(t.root, "empty.txt", &b), 0);
    TD_CHECK_EQ_INT(b.len, 0);
    td_buf_free(&b);
    tree_remove(&t);
}

TD_TEST(static_read_refuses_links_and_specials)
{
    struct tree t;
    TD_REQUIRE(tree_make(&t) == 0);
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "keep");
    TD_CHECK_EQ_INT(td_static_read(t.root, "link.js", &b), TD_EPROTO);        /* file symlink */
    TD_CHECK_EQ_INT(td_static_read(t.root, "linkdir/app.js", &b), TD_EPROTO); /* dir symlink */
    TD_CHECK_EQ_INT(td_static_read(t.root, "out/secret.txt", &b), TD_EPROTO); /* leads outside */
    TD_CHECK_EQ_INT(td_static_read(t.root, "fifo", &b), TD_EPROTO);           /* not regular */
    TD_CHECK_EQ_INT(td_static_read(t.root, "sub", &b), TD_EPROTO);            /* a directory */
    TD_CHECK_EQ_INT(td_static_read(t.root, "missing.js", &b), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_static_read(t.root, "sub/missing.js", &b), TD_ENOTFOUND);
    TD_CHECK_EQ_INT(td_static_read(t.root, "index.html/x", &b), TD_ENOTFOUND); /* not a dir */
    /* paths that td_static_path_decode refuses are refused here too */
    TD_CHECK_EQ_INT(td_static_read(t.root, ".secret", &b), TD_EPROTO);
    TD_CHECK_EQ_INT(td_static_read(t.root, "../outside/secret.txt", &b), TD_EPROTO);
    TD_CHECK_EQ_INT(td_static_read(t.root, "/etc/passwd", &b), TD_EPROTO);
    TD_CHECK_MEM_STR(b.data, b.len, "keep");
    /* a missing directory is an errno */
    char nodir[160];
    snprintf(nodir, sizeof(nodir), "%s/nope", t.base);
    TD_CHECK_EQ_INT(td_static_read(nodir, "index.html", &b), -ENOENT);
    /* the configured directory itself may be a symlink */
    char viasym[160];
    snprintf(viasym, sizeof(viasym), "%s/linkdir", t.root);
    td_buf_reset(&b);
    TD_CHECK_EQ_INT(td_static_read(viasym, "app.js", &b), 0);
    TD_CHECK_MEM_STR(b.data, b.len, "x=1;");
    td_buf_free(&b);
    tree_remove(&t);
}

TD_TEST(static_read_size_cap)
{
    struct tree t;
    TD_REQUIRE(tree_make(&t) == 0);
    char p[192];
    snprintf(p, sizeof(p), "%s/big.bin", t.root);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    TD_REQUIRE(fd >= 0);
    /* a sparse file: the size is checked before anything is read */
    TD_CHECK(ftruncate(fd, (off_t)TD_STATIC_MAX_FILE + 1) == 0);
    struct td_buf b;
    td_buf_init(&b);
    TD_CHECK_EQ_INT(td_static_read(t.root, "big.bin", &b), TD_ELIMIT);
    TD_CHECK_EQ_INT(b.len, 0);
    TD_CHECK(ftruncate(fd, (off_t)TD_STATIC_MAX_FILE) == 0);
    close(fd);
    TD_CHECK_EQ_INT(td_static_read(t.root, "big.bin", &b), 0);
    TD_CHECK_EQ_INT(b.len, TD_STATIC_MAX_FILE);
    td_buf_free(&b);
    tree_remove(&t);
}

/* Responds to method + path in t's root; returns the status, the response in b. */
static int respond(const struct tree *t, const char *method, const char *path, bool ka,
                   struct td_buf *b)
{
    td_buf_reset(b);
    return td_static_respond(t->root, (struct td_str){method, strlen(method)},
                             (struct td_str){path, strlen(path)}, ka, b);
}

static bool has(const struct td_buf *b, const char *s)
{
    return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

TD_TEST(static_respond_statuses_and_headers)
{
    struct tree t;
    TD_REQUIRE(tree_make(&t) == 0);
    struct td_buf b;
    td_buf_init(&b);

    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/index.html", true, &b), 200);
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
                     "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\n"
                     "X-Content-Type-Options: nosniff\r\nConnection: keep-alive\r\n\r\n<p>hi</p>";
    TD_CHECK_MEM_STR(b.data, b.len, ok);

    /* HEAD: the same head, no body */
    TD_CHECK_EQ_INT(respond(&t, "HEAD", "/static/sub/app.js", false, &b), 200);
    TD_CHECK(has(&b, "Content-Length: 4\r\n"));
    TD_CHECK(has(&b, "Content-Type: text/javascript; charset=utf-8\r\n"));
    TD_CHECK(has(&b, "Connection: close\r\n\r\n"));
    TD_CHECK(b.len >= 4 && memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0);

    TD_CHECK_EQ_INT(respond(&t, "POST", "/static/index.html", true, &b), 405);
    TD_CHECK(has(&b, "Allow: GET, HEAD\r\n"));
    TD_CHECK_EQ_INT(respond(&t, "get", "/static/index.html", true, &b), 405);

    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/missing.html", true, &b), 404);
    TD_CHECK(has(&b, "X-Content-Type-Options: nosniff\r\n"));
    TD_CHECK(has(&b, "Cache-Control: no-cache\r\n"));
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/../outside/secret.txt", true, &b), 403);
    TD_CHECK(!has(&b, "secret\n") && !has(&b, "\r\n\r\nsecret"));
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/%2e%2e/outside/secret.txt", true, &b), 403);
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/out/secret.txt", true, &b), 403);
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/link.js", true, &b), 403);
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/.secret", true, &b), 403);
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/sub/", true, &b), 403);
    TD_CHECK_EQ_INT(respond(&t, "GET", "/static/", true, &b), 403);
    TD_CHECK_EQ_INT(respond(&t, "GET", "/other", true, &b), 404);
    /* HEAD of an error has no body */
    TD_CHECK_EQ_INT(respond(&t, "HEAD", "/static/missing.html", true, &b), 404);
    TD_CHECK(b.len >= 4 && memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0);

    /* an unreadable directory is a server error, not a 404 */
    struct td_buf e;
    td_buf_init(&e);
    int st = td_static_respond("/nonexistent-td-static-dir", (struct td_str){"GET", 3},
                               (struct td_str){"/static/a.js", 12}, true, &e);
    TD_CHECK_EQ_INT(st, 500);
    td_buf_free(&e);
    td_buf_free(&b);
    tree_remove(&t);
}
