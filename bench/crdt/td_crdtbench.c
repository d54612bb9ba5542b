/*
 * td_crdtbench - times the C Yjs engine on one editing trace and prints one JSON line:
 *
 *   td_crdtbench TRACE.json.gz [--runs N]
 *
 * Fields (each time is the median of N runs, default 5, in milliseconds):
 *   replay_ms          local replay, one transaction per txn, no update encoding
 *   replay_updates_ms  the same while encoding each transaction's update (v1)
 *   apply_updates_ms   applying every per-txn v1 update, one at a time, to a fresh document
 *   encode_ms          encoding the final document's full state as v1
 *   load_ms            applying that full state to a fresh document
 *   final_bytes        size of the full-state v1 update
 *   mem_bytes          heap bytes held by the final replayed document, from the engine's own
 *                      accounting (capacities of its pools, arena, tables: td_ydoc_stats)
 *   ok                 the final text equals endContent (and the reloaded document's text too)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/td_doc_cli.h"
#include "crdt/td_lib0.h"
#include "crdt/td_ydoc.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool text_is(struct td_ydoc *d, const struct td_doc_trace *t)
{
    struct td_buf b;
    td_buf_init(&b);
    td_ydoc_text(d, "text", &b);
    bool ok = b.len == t->end_len && memcmp(b.data, t->text.data + t->end_off, b.len) == 0;
    td_buf_free(&b);
    return ok;
}

static int replay(const struct td_doc_trace *t, struct td_ydoc *d, struct td_buf *ups)
{
    if (t->start_len > 0 &&
        td_ydoc_text_insert(d, "text", 0, (const char *)t->text.data + t->start_off, t->start_len) <
            0)
        return -1;
    return td_doc_trace_replay(t, d, 1, ups);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else
            path = argv[i];
    }
    if (path == NULL || runs < 1 || runs > 1000) {
        fprintf(stderr, "usage: td_crdtbench TRACE.json.gz [--runs N]\n");
        return 2;
    }
    struct td_doc_trace t;
    char err[512];
    if (td_doc_trace_load(&t, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "td_crdtbench: %s\n", err);
        return 1;
    }
    double *rep = calloc((size_t)runs, sizeof(double)),
           *repu = calloc((size_t)runs, sizeof(double));
    double *app = calloc((size_t)runs, sizeof(double)), *enc = calloc((size_t)runs, sizeof(double));
    double *lod = calloc((size_t)runs, sizeof(double));
    bool ok = true;
    size_t final_bytes = 0, mem = 0;
    for (int r = 0; r < runs; r++) {
        struct td_ydoc *d = td_ydoc_new(1);
        double t0 = now_ms();
        ok &= replay(&t, d, NULL) == 0;
        rep[r] = now_ms() - t0;
        ok &= text_is(d, &t);
        td_ydoc_del(d);

        struct td_buf ups;
        td_buf_init(&ups);
        d = td_ydoc_new(1);
        t0 = now_ms();
        ok &= replay(&t, d, &ups) == 0;
        repu[r] = now_ms() - t0;
        ok &= text_is(d, &t);
        struct td_ydoc_stats st;
        td_ydoc_stats(d, &st);
        mem = st.mem_bytes;

        struct td_ydoc *a = td_ydoc_new(2);
        struct td_lib0_reader rd;
        td_lib0_reader_init(&rd, ups.data, ups.len);
        t0 = now_ms();
        while (td_lib0_left(&rd) > 0) {
            struct td_ybytes u;
            if (td_lib0_read_varbytes(&rd, &u) < 0 || td_ydoc_apply(a, u.p, u.len, 1, NULL) < 0) {
                ok = false;
                break;
            }
        }
        app[r] = now_ms() - t0;
        ok &= text_is(a, &t);
        td_ydoc_del(a);
        td_buf_free(&ups);

        struct td_buf full;
        td_buf_init(&full);
        t0 = now_ms();
        td_ydoc_encode_state(d, NULL, 1, &full);
        enc[r] = now_ms() - t0;
        final_bytes = full.len;
        struct td_ydoc *l = td_ydoc_new(3);
        t0 = now_ms();
        ok &= td_ydoc_apply(l, full.data, full.len, 1, NULL) == 0;
        lod[r] = now_ms() - t0;
        ok &= text_is(l, &t);
        td_ydoc_del(l);
        td_buf_free(&full);
        td_ydoc_del(d);
    }
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    size_t nl = strlen(name);
    if (nl > 8 && strcmp(name + nl - 8, ".json.gz") == 0)
        nl -= 8;
    else if (nl > 5 && strcmp(name + nl - 5, ".json") == 0)
        nl -= 5;
    printf("{\"engine\":\"tandem\",\"trace\":\"%.*s\",\"txns\":%zu,\"replay_ms\":%.3f,"
           "\"replay_updates_ms\":%.3f,\"apply_updates_ms\":%.3f,\"encode_ms\":%.3f,"
           "\"load_ms\":%.3f,\"final_bytes\":%zu,\"mem_bytes\":%zu,\"ok\":%s}\n",
           (int)nl, name, t.ntxns, median(rep, runs), median(repu, runs), median(app, runs),
           median(enc, runs), median(lod, runs), final_bytes, mem, ok ? "true" : "false");
    free(rep);
    free(repu);
    free(app);
    free(enc);
    free(lod);
    td_doc_trace_free(&t);
    return ok ? 0 : 1;
}
