/*
 * td_doc_cli.c - `tandem doc ...` (see td_doc_cli.h). All I/O of the CRDT engine lives here;
 * the engine itself (crdt/td_ydoc.c) only sees bytes.
 */
#include "cli/td_doc_cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "crdt/td_lib0.h"
#include "crdt/td_yupdate.h"

#define DOC_MAX_FILE ((size_t)1 << 30)

/* ------------------------------------------------------------------------------------------
 * Files
 */

int td_doc_read_file(const char *path, struct td_buf *out, char *err, size_t errlen)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", path);
        return TD_ENOTFOUND;
    }
    for (;;) {
        td_buf_reserve(out, 1 << 16);
        int n = gzread(f, out->data + out->len, (unsigned)(out->cap - out->len));
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s", path);
            gzclose(f);
            return TD_EPROTO;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
        if (out->len > DOC_MAX_FILE) {
            snprintf(err, errlen, "%s is larger than 1 GiB", path);
            gzclose(f);
            return TD_ELIMIT;
        }
    }
    gzclose(f);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Traces
 */

static int trace_string(struct td_json_cursor *c, struct td_doc_trace *t, size_t *off, size_t *len)
{
    const char *s;
    size_t n;
    if (td_json_cursor_string(c, &s, &n) < 0)
        return TD_EPROTO;
    *off = t->text.len;
    *len = n;
    td_buf_append(&t->text, s, n);
    return 0;
}

static int trace_patches(struct td_json_cursor *c, struct td_doc_trace *t, size_t *cap)
{
    if (td_json_cursor_array_begin(c) < 0)
        return TD_EPROTO;
    int rv;
    while ((rv = td_json_cursor_array_next(c)) == 1) {
        uint64_t pos, del;
        size_t off, len;
        if (td_json_cursor_array_begin(c) < 0 || td_json_cursor_array_next(c) != 1 ||
            td_json_cursor_uint64(c, UINT32_MAX, &pos) < 0 || td_json_cursor_array_next(c) != 1 ||
            td_json_cursor_uint64(c, UINT32_MAX, &del) < 0 || td_json_cursor_array_next(c) != 1 ||
            trace_string(c, t, &off, &len) < 0 || td_json_cursor_array_next(c) != 0)
            return TD_EPROTO;
        if (t->npatches == *cap) {
            *cap = *cap ? *cap * 2 : 1024;
            t->patches = td_xrealloc(t->patches, *cap * sizeof(*t->patches));
        }
        t->patches[t->npatches++] =
            (struct td_doc_patch){(uint32_t)pos, (uint32_t)del, (uint32_t)off, (uint32_t)len};
    }
    return rv < 0 ? TD_EPROTO : 0;
}

int td_doc_trace_load(struct td_doc_trace *t, const char *path, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    td_buf_init(&t->text);
    struct td_buf raw;
    td_buf_init(&raw);
    int rv = td_doc_read_file(path, &raw, err, errlen);
    if (rv < 0) {
        td_buf_free(&raw);
        return rv;
    }
    struct td_json_cursor c;
    td_json_cursor_init(&c, (char *)raw.data, raw.len);
    size_t pcap = 0, tcap = 0;
    const char *k;
    size_t kn;
    rv = td_json_cursor_object_begin(&c) < 0 ? TD_EPROTO : 0;
    while (rv == 0 && (rv = td_json_cursor_object_next(&c, &k, &kn)) == 1) {
        if (kn == 12 && memcmp(k, "startContent", 12) == 0) {
            rv = trace_string(&c, t, &t->start_off, &t->start_len);
        } else if (kn == 10 && memcmp(k, "endContent", 10) == 0) {
            rv = trace_string(&c, t, &t->end_off, &t->end_len);
        } else if (kn == 4 && memcmp(k, "txns", 4) == 0) {
            rv = td_json_cursor_array_begin(&c) < 0 ? TD_EPROTO : 0;
            while (rv == 0 && (rv = td_json_cursor_array_next(&c)) == 1) {
                rv = td_json_cursor_object_begin(&c) < 0 ? TD_EPROTO : 0;
                while (rv == 0 && (rv = td_json_cursor_object_next(&c, &k, &kn)) == 1) {
                    if (kn == 7 && memcmp(k, "patches", 7) == 0)
                        rv = trace_patches(&c, t, &pcap);
                    else
                        rv = td_json_cursor_skip(&c, NULL, NULL) < 0 ? TD_EPROTO : 0;
                }
                if (rv == 0) {
                    if (t->ntxns == tcap) {
                        tcap = tcap ? tcap * 2 : 1024;
                        t->txn_end = td_xrealloc(t->txn_end, tcap * sizeof(*t->txn_end));
                    }
                    t->txn_end[t->ntxns++] = t->npatches;
                }
            }
        } else {
            rv = td_json_cursor_skip(&c, NULL, NULL) < 0 ? TD_EPROTO : 0;
        }
    }
    td_buf_free(&raw);
    if (rv < 0) {
        snprintf(err, errlen, "%s is not an editing trace (%s)", path,
                 c.error ? c.error : "unexpected structure");
        td_doc_trace_free(t);
        return TD_EPROTO;
    }
    return 0;
}

void td_doc_trace_free(struct td_doc_trace *t)
{
    free(t->patches);
    free(t->txn_end);
    td_buf_free(&t->text);
    memset(t, 0, sizeof(*t));
}

/* Astral characters' code-point positions, to turn code points into UTF-16 units. */
struct astral {
    uint32_t *v;
    size_t n, cap;
};

static size_t astral_lower(const struct astral *a, uint32_t pos)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->v[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int td_doc_trace_replay(const struct td_doc_trace *t, struct td_ydoc *d, int version,
                        struct td_buf *updates)
{
    struct astral a = {NULL, 0, 0};
    struct td_buf up;
    td_buf_init(&up);
    int rv = 0;
    size_t p = 0;
    const uint8_t *text = t->text.data;
    for (size_t i = 0; i < t->ntxns && rv == 0; i++) {
        td_ydoc_begin(d);
        for (; p < t->txn_end[i] && rv == 0; p++) {
            const struct td_doc_patch *pa = &t->patches[p];
            size_t lo = astral_lower(&a, pa->pos);
            uint64_t u16 = pa->pos + lo;
            if (pa->del > 0) {
                size_t hi = astral_lower(&a, pa->pos + pa->del);
                rv = td_ydoc_text_delete(d, "text", u16, pa->del + (hi - lo));
                if (hi > lo || a.n > 0) {
                    memmove(a.v + lo, a.v + hi, (a.n - hi) * sizeof(*a.v));
                    a.n -= hi - lo;
                    for (size_t k = lo; k < a.n; k++)
                        a.v[k] -= pa->del;
                }
            }
            if (pa->ins_len > 0 && rv == 0) {
                const uint8_t *s = text + pa->ins_off;
                rv = td_ydoc_text_insert(d, "text", u16, (const char *)s, pa->ins_len);
                uint32_t cps = 0;
                size_t nast = 0;
                for (size_t k = 0; k < pa->ins_len; k++) {
                    if ((s[k] & 0xc0) != 0x80)
                        cps++;
                    if (s[k] >= 0xf0)
                        nast++;
                }
                if (a.n > 0 || nast > 0) {
                    for (size_t k = lo; k < a.n; k++)
                        a.v[k] += cps;
                    if (nast > 0) {
                        if (a.n + nast > a.cap) {
                            a.cap = (a.n + nast) * 2;
                            a.v = td_xrealloc(a.v, a.cap * sizeof(*a.v));
                        }
                        memmove(a.v + lo + nast, a.v + lo, (a.n - lo) * sizeof(*a.v));
                        uint32_t cp = 0;
                        size_t w = lo;
                        for (size_t k = 0; k < pa->ins_len; k++) {
                            if ((s[k] & 0xc0) == 0x80)
                                continue;
                            if (s[k] >= 0xf0)
                                a.v[w++] = pa->pos + cp;
                            cp++;
                        }
                        a.n += nast;
                    }
                }
            }
        }
        if (updates != NULL) {
            td_buf_reset(&up);
            td_ydoc_commit(d, &up, version);
            td_lib0_write_varuint(updates, up.len);
            td_buf_append(updates, up.data, up.len);
        } else {
            td_ydoc_commit(d, NULL, version);
        }
    }
    free(a.v);
    td_buf_free(&up);
    return rv;
}

/* ------------------------------------------------------------------------------------------
 * Commands
 */

struct opts {
    int version;
    bool lazy;
    const char *out, *updates, *text, *in, *client;
    const char **as;
    int nas;
    const char **files;
    int nfiles;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tandem doc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->version = 1;
    o->files = td_xcalloc((size_t)argc + 1, sizeof(*o->files));
    o->as = td_xcalloc((size_t)argc + 1, sizeof(*o->as));
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--v2") == 0) {
            o->version = 2;
            continue;
        }
        if (strcmp(a, "--lazy") == 0) {
            o->lazy = true;
            continue;
        }
        if (strcmp(a, "--out") == 0)
            dst = &o->out;
        else if (strcmp(a, "--updates") == 0)
            dst = &o->updates;
        else if (strcmp(a, "--text") == 0)
            dst = &o->text;
        else if (strcmp(a, "--as") == 0)
            dst = &o->as[o->nas++];
        else if (strcmp(a, "--in") == 0)
            dst = &o->in;
        else if (strcmp(a, "--client") == 0)
            dst = &o->client;
        else if (strncmp(a, "--", 2) == 0 && a[2] != '\0')
            return fail("unknown option %s", a);
        if (dst != NULL) {
            if (i + 1 >= argc)
                return fail("%s needs a value", a);
            *dst = argv[++i];
            continue;
        }
        o->files[o->nfiles++] = a;
    }
    return 0;
}

static int write_out(const char *path, const void *p, size_t n)
{
    FILE *f = path ? fopen(path, "wb") : stdout;
    if (f == NULL)
        return fail("cannot write %s", path);
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    int bad = (w != n) | (path ? fclose(f) != 0 : fflush(f) != 0);
    if (bad)
        return fail("cannot write %s", path ? path : "stdout");
    return 0;
}

static const char *errname(int rv)
{
    switch (rv) {
    case TD_EPROTO:
        return "malformed or inconsistent update";
    case TD_ELIMIT:
        return "update exceeds the document limits";
    default:
        return td_strerror(rv);
    }
}

/* load_doc applies the update in file path to d. */
static int load_into(struct td_ydoc *d, const char *path, int version, size_t *bytes)
{
    struct td_buf b;
    td_buf_init(&b);
    char err[256];
    int rv = td_doc_read_file(path, &b, err, sizeof(err));
    if (rv < 0) {
        td_buf_free(&b);
        return fail("%s", err);
    }
    if (bytes)
        *bytes += b.len;
    rv = td_ydoc_apply(d, b.data, b.len, version, NULL);
    td_buf_free(&b);
    if (rv < 0)
        return fail("%s: %s", path, errname(rv));
    return 0;
}

static int write_state(struct td_ydoc *d, const struct td_ysv *sv, int version, const char *out)
{
    struct td_buf b;
    td_buf_init(&b);
    int rv = td_ydoc_encode_state(d, sv, version, &b);
    int st = rv < 0 ? fail("cannot encode the document: %s", td_strerror(rv))
                    : write_out(out, b.data, b.len);
    td_buf_free(&b);
    return st;
}

static int cmd_merge(struct opts *o)
{
    if (o->nfiles < 1)
        return fail("merge needs at least one update file");
    if (o->lazy) {
        struct td_buf *bufs = td_xcalloc((size_t)o->nfiles, sizeof(*bufs));
        const uint8_t **ups = td_xcalloc((size_t)o->nfiles, sizeof(*ups));
        size_t *lens = td_xcalloc((size_t)o->nfiles, sizeof(*lens));
        int st = 0;
        for (int i = 0; i < o->nfiles && st == 0; i++) {
            char err[256];
            td_buf_init(&bufs[i]);
            if (td_doc_read_file(o->files[i], &bufs[i], err, sizeof(err)) < 0)
                st = fail("%s", err);
            ups[i] = bufs[i].data;
            lens[i] = bufs[i].len;
        }
        struct td_buf out;
        td_buf_init(&out);
        if (st == 0) {
            int rv = td_yupdate_merge(ups, lens, (size_t)o->nfiles, o->version, &out);
            st = rv < 0 ? fail("cannot merge: %s", errname(rv))
                        : write_out(o->out, out.data, out.len);
        }
        td_buf_free(&out);
        for (int i = 0; i < o->nfiles; i++)
            td_buf_free(&bufs[i]);
        free(bufs);
        free(ups);
        free(lens);
        return st;
    }
    struct td_ydoc *d = td_ydoc_new(0);
    int st = 0;
    for (int i = 0; i < o->nfiles && st == 0; i++)
        st = load_into(d, o->files[i], o->version, NULL);
    if (st == 0)
        st = write_state(d, NULL, o->version, o->out);
    td_ydoc_del(d);
    return st;
}

static int cmd_diff(struct opts *o)
{
    if (o->nfiles != 2)
        return fail("usage: tandem doc diff DOC.bin SV.bin [--v2] [--out F]");
    struct td_ydoc *d = td_ydoc_new(0);
    int st = load_into(d, o->files[0], o->version, NULL);
    struct td_buf b;
    td_buf_init(&b);
    struct td_ysv sv;
    td_ysv_init(&sv);
    char err[256];
    if (st == 0 && td_doc_read_file(o->files[1], &b, err, sizeof(err)) < 0)
        st = fail("%s", err);
    if (st == 0 && td_ysv_decode(&sv, b.data, b.len) < 0)
        st = fail("%s: malformed state vector", o->files[1]);
    if (st == 0)
        st = write_state(d, &sv, o->version, o->out);
    td_ysv_free(&sv);
    td_buf_free(&b);
    td_ydoc_del(d);
    return st;
}

static int cmd_sv(struct opts *o)
{
    if (o->nfiles != 1)
        return fail("usage: tandem doc sv DOC.bin [--v2] [--out F]");
    struct td_ydoc *d = td_ydoc_new(0);
    int st = load_into(d, o->files[0], o->version, NULL);
    if (st == 0) {
        struct td_buf b;
        td_buf_init(&b);
        td_ydoc_encode_sv(d, &b);
        st = write_out(o->out, b.data, b.len);
        td_buf_free(&b);
    }
    td_ydoc_del(d);
    return st;
}

static int parse_as(const char *s, char **name, enum td_ydoc_as *as)
{
    const char *eq = strrchr(s, '=');
    if (eq == NULL)
        return fail("--as wants NAME=text|map|array|xml");
    const char *k = eq + 1;
    if (strcmp(k, "text") == 0)
        *as = TD_YDOC_AS_TEXT;
    else if (strcmp(k, "map") == 0)
        *as = TD_YDOC_AS_MAP;
    else if (strcmp(k, "array") == 0)
        *as = TD_YDOC_AS_ARRAY;
    else if (strcmp(k, "xml") == 0)
        *as = TD_YDOC_AS_XML;
    else
        return fail("--as wants NAME=text|map|array|xml");
    *name = td_xstrndup(s, (size_t)(eq - s));
    return 0;
}

static int cmd_show(struct opts *o)
{
    if (o->nfiles != 1)
        return fail("usage: tandem doc show DOC.bin [--v2] [--text NAME] [--as NAME=KIND]...");
    char **names = td_xcalloc((size_t)o->nas + 1, sizeof(*names));
    enum td_ydoc_as *as = td_xcalloc((size_t)o->nas + 1, sizeof(*as));
    int st = 0;
    for (int i = 0; i < o->nas && st == 0; i++)
        st = parse_as(o->as[i], &names[i], &as[i]);
    struct td_ydoc *d = td_ydoc_new(0);
    if (st == 0)
        st = load_into(d, o->files[0], o->version, NULL);
    struct td_buf b;
    td_buf_init(&b);
    if (st == 0 && o->text != NULL) {
        td_ydoc_text(d, o->text, &b); /* a missing root reads as empty text */
        st = write_out(NULL, b.data, b.len);
    } else if (st == 0) {
        td_ydoc_json(d, (const char *const *)names, as, (size_t)o->nas, &b);
        td_buf_append_byte(&b, '\n');
        st = write_out(NULL, b.data, b.len);
    }
    td_buf_free(&b);
    for (int i = 0; i < o->nas; i++)
        free(names[i]);
    free(names);
    free(as);
    td_ydoc_del(d);
    return st;
}

struct namev {
    const uint8_t *p;
    size_t n;
};

static int cmp_namev(const void *a, const void *b)
{
    const struct namev *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    return c ? c : (x->n < y->n ? -1 : x->n > y->n ? 1 : 0);
}

static int cmd_stats(struct opts *o)
{
    if (o->nfiles != 1)
        return fail("usage: tandem doc stats DOC.bin [--v2]");
    struct td_ydoc *d = td_ydoc_new(0);
    size_t bytes = 0;
    int st = load_into(d, o->files[0], o->version, &bytes);
    if (st == 0) {
        struct td_ydoc_stats s;
        td_ydoc_stats(d, &s);
        struct td_buf b;
        td_buf_init(&b);
        td_buf_appendf(&b,
                       "{\"bytes\":%zu,\"clients\":%zu,\"structs\":%zu,\"items\":%zu,"
                       "\"gc_structs\":%zu,\"deleted_items\":%zu,\"pending_structs\":%zu,"
                       "\"pending_deletes\":%zu,\"roots\":[",
                       bytes, s.clients, s.structs, s.items, s.gc_structs, s.deleted_items,
                       s.pending_structs, s.pending_deletes);
        size_t nr = td_ydoc_root_count(d);
        struct namev *v = td_xcalloc(nr + 1, sizeof(*v));
        for (size_t i = 0; i < nr; i++) {
            struct td_ybytes nm = td_ydoc_root_name(d, i);
            v[i] = (struct namev){nm.p, nm.len};
        }
        qsort(v, nr, sizeof(*v), cmp_namev);
        for (size_t i = 0; i < nr; i++) {
            if (i)
                td_buf_append_byte(&b, ',');
            td_json_write_string(&b, (const char *)v[i].p, v[i].n);
        }
        free(v);
        td_buf_append_str(&b, "],\"state_vector\":{");
        struct td_ysv sv;
        td_ysv_init(&sv);
        td_ydoc_state_vector(d, &sv);
        for (size_t i = 0; i < sv.n; i++)
            td_buf_appendf(&b, "%s\"%llu\":%llu", i ? "," : "", (unsigned long long)sv.e[i].client,
                           (unsigned long long)sv.e[i].clock);
        td_ysv_free(&sv);
        td_buf_append_str(&b, "}}\n");
        st = write_out(NULL, b.data, b.len);
        td_buf_free(&b);
    }
    td_ydoc_del(d);
    return st;
}

static int cmd_replay(struct opts *o)
{
    if (o->nfiles != 1)
        return fail("usage: tandem doc replay TRACE.json.gz [--v2] [--out F] [--updates F]");
    struct td_doc_trace t;
    char err[512];
    if (td_doc_trace_load(&t, o->files[0], err, sizeof(err)) < 0)
        return fail("%s", err);
    struct td_ydoc *d = td_ydoc_new(1);
    struct td_buf ups;
    td_buf_init(&ups);
    int st = 0;
    if (t.start_len > 0)
        st = td_ydoc_text_insert(d, "text", 0, (const char *)t.text.data + t.start_off,
                                 t.start_len) < 0
                 ? fail("cannot insert startContent")
                 : 0;
    int rv = st ? 0 : td_doc_trace_replay(&t, d, o->version, o->updates ? &ups : NULL);
    if (st == 0 && rv < 0)
        st = fail("replay failed: %s", td_strerror(rv));
    if (st == 0) {
        struct td_buf txt;
        td_buf_init(&txt);
        td_ydoc_text(d, "text", &txt);
        if (txt.len != t.end_len || memcmp(txt.data, t.text.data + t.end_off, txt.len) != 0)
            st = fail("final text differs from endContent (%zu vs %zu bytes)", txt.len, t.end_len);
        td_buf_free(&txt);
    }
    if (st == 0 && o->updates != NULL)
        st = write_out(o->updates, ups.data, ups.len);
    if (st == 0)
        st = write_state(d, NULL, o->version, o->out);
    td_buf_free(&ups);
    td_ydoc_del(d);
    td_doc_trace_free(&t);
    return st;
}

static const struct td_json *jget(const struct td_json *obj, const char *k, enum td_json_type ty)
{
    const struct td_json *v = td_json_get(obj, k);
    return (v != NULL && v->type == ty) ? v : NULL;
}

static bool juint(const struct td_json *obj, const char *k, uint64_t *out)
{
    const struct td_json *v = jget(obj, k, TD_JSON_NUMBER);
    if (v == NULL || !v->is_int || v->i < 0)
        return false;
    *out = (uint64_t)v->i;
    return true;
}

/* edit_op applies one op (an object) to d; returns 0 or a message via fail(). */
static int edit_op(struct td_ydoc *d, const struct td_json *op, size_t idx)
{
    const struct td_json *name = jget(op, "op", TD_JSON_STRING);
    const struct td_json *root = jget(op, "root", TD_JSON_STRING);
    if (op->type != TD_JSON_OBJECT || name == NULL || root == NULL)
        return fail("op %zu: needs \"op\" and \"root\" strings", idx);
    const char *r = root->str;
    uint64_t index = 0, len = 0;
    int rv;
    if (strcmp(name->str, "text_insert") == 0) {
        const struct td_json *text = jget(op, "text", TD_JSON_STRING);
        if (!juint(op, "index", &index) || text == NULL)
            return fail("op %zu: text_insert needs index and text", idx);
        rv = td_ydoc_text_insert(d, r, index, text->str, text->len);
    } else if (strcmp(name->str, "text_delete") == 0) {
        if (!juint(op, "index", &index) || !juint(op, "len", &len))
            return fail("op %zu: text_delete needs index and len", idx);
        rv = td_ydoc_text_delete(d, r, index, len);
    } else if (strcmp(name->str, "map_set") == 0) {
        const struct td_json *key = jget(op, "key", TD_JSON_STRING);
        const struct td_json *val = td_json_get(op, "value");
        if (key == NULL || val == NULL)
            return fail("op %zu: map_set needs key and value", idx);
        rv = td_ydoc_map_set(d, r, key->str, val->raw, val->raw_len);
    } else if (strcmp(name->str, "map_delete") == 0) {
        const struct td_json *key = jget(op, "key", TD_JSON_STRING);
        if (key == NULL)
            return fail("op %zu: map_delete needs key", idx);
        rv = td_ydoc_map_delete(d, r, key->str);
    } else if (strcmp(name->str, "array_insert") == 0) {
        const struct td_json *vals = jget(op, "values", TD_JSON_ARRAY);
        if (!juint(op, "index", &index) || vals == NULL)
            return fail("op %zu: array_insert needs index and values", idx);
        rv = td_ydoc_array_insert(d, r, index, vals->raw, vals->raw_len);
    } else if (strcmp(name->str, "array_delete") == 0) {
        if (!juint(op, "index", &index) || !juint(op, "len", &len))
            return fail("op %zu: array_delete needs index and len", idx);
        rv = td_ydoc_array_delete(d, r, index, len);
    } else {
        return fail("op %zu: unknown op \"%s\"", idx, name->str);
    }
    if (rv < 0)
        return fail("op %zu (%s): %s", idx, name->str,
                    rv == TD_EINVAL ? "index or length out of range" : td_strerror(rv));
    return 0;
}

static int cmd_edit(struct opts *o)
{
    if (o->nfiles != 1)
        return fail("usage: tandem doc edit OPS.json [--in DOC.bin] [--client ID] [--v2] "
                    "[--out F] [--updates F]");
    uint64_t client = 1;
    if (o->client != NULL) {
        char *end;
        unsigned long long v = strtoull(o->client, &end, 10);
        if (*end != '\0' || end == o->client || v >= (1ULL << 53))
            return fail("--client wants an integer below 2^53");
        client = v;
    }
    struct td_buf raw;
    td_buf_init(&raw);
    char err[256];
    if (td_doc_read_file(o->files[0], &raw, err, sizeof(err)) < 0) {
        td_buf_free(&raw);
        return fail("%s", err);
    }
    struct td_json_doc jd;
    struct td_json_error je;
    int st = 0;
    if (td_json_parse(&jd, (const char *)raw.data, raw.len, &je) < 0)
        st = fail("%s:%u:%u: %s", o->files[0], je.line, je.col, je.msg);
    const struct td_json *ops = st ? NULL : td_json_root(&jd);
    if (st == 0 && ops->type != TD_JSON_ARRAY)
        st = fail("%s: expected a JSON array of ops", o->files[0]);
    struct td_ydoc *d = td_ydoc_new(client);
    if (st == 0 && o->in != NULL)
        st = load_into(d, o->in, o->version, NULL);
    struct td_buf ups, up;
    td_buf_init(&ups);
    td_buf_init(&up);
    for (size_t i = 0; st == 0 && i < ops->n; i++) {
        td_ydoc_begin(d);
        st = edit_op(d, &ops->child[i], i);
        td_buf_reset(&up);
        td_ydoc_commit(d, o->updates ? &up : NULL, o->version);
        if (o->updates && up.len > 0) {
            td_lib0_write_varuint(&ups, up.len);
            td_buf_append(&ups, up.data, up.len);
        }
    }
    if (st == 0 && o->updates != NULL)
        st = write_out(o->updates, ups.data, ups.len);
    if (st == 0)
        st = write_state(d, NULL, o->version, o->out);
    td_buf_free(&ups);
    td_buf_free(&up);
    td_ydoc_del(d);
    td_json_doc_free(&jd);
    td_buf_free(&raw);
    return st;
}

int td_doc_cli_main(int argc, char **argv)
{
    if (argc < 3)
        return fail("usage: tandem doc merge|diff|sv|show|stats|replay|edit ...");
    struct opts o;
    int st = parse_opts(argc, argv, &o) != 0 ? 1 : -1;
    const char *c = argv[2];
    if (st == 1) {
        /* the option error is already reported */
    } else if (strcmp(c, "merge") == 0)
        st = cmd_merge(&o);
    else if (strcmp(c, "diff") == 0)
        st = cmd_diff(&o);
    else if (strcmp(c, "sv") == 0)
        st = cmd_sv(&o);
    else if (strcmp(c, "show") == 0)
        st = cmd_show(&o);
    else if (strcmp(c, "stats") == 0)
        st = cmd_stats(&o);
    else if (strcmp(c, "replay") == 0)
        st = cmd_replay(&o);
    else if (strcmp(c, "edit") == 0)
        st = cmd_edit(&o);
    else
        st = fail("unknown subcommand '%s' (merge, diff, sv, show, stats, replay, edit)", c);
    free(o.files);
    free(o.as);
    return st;
}
