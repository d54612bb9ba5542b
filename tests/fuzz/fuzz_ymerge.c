/*
 * fuzz_ymerge: input = 1 byte (bit 0: version 1 or 2), 2 bytes split point (LE), then two
 * updates a and b back to back. When both decode and each names every client in one run at
 * most (what yjs writes), merging must succeed in both orders and:
 *   - the ID ranges covered by real structs (not Skips) of merge(a,b) and of merge(b,a) both
 *     equal the union of those of a and b (so merge is commutative in what it covers, and
 *     merge(merge(a,b), b) covers the same as merge(a,b));
 *   - the delete sets of both equal the union of a's and b's;
 *   - the merged updates decode again.
 * Content of overlapping structs is not compared: inputs may disagree on what an ID holds,
 * and then yjs's choice depends on the order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/td_yupdate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cov {
    struct td_yrange *r;
    size_t n, cap;
};

static void cov_add(struct cov *c, uint64_t client, uint64_t clock, uint64_t len)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->r = realloc(c->r, c->cap * sizeof(*c->r));
        if (c->r == NULL)
            abort();
    }
    c->r[c->n].client = client;
    c->r[c->n].clock = clock;
    c->r[c->n].len = len;
    c->n++;
}

static int cmp_r(const void *a, const void *b)
{
    const struct td_yrange *x = a, *y = b;
    if (x->client != y->client)
        return x->client < y->client ? -1 : 1;
    if (x->clock != y->clock)
        return x->clock < y->clock ? -1 : 1;
    return 0;
}

static void cov_norm(struct cov *c)
{
    if (c->n == 0)
        return;
    qsort(c->r, c->n, sizeof(*c->r), cmp_r);
    size_t j = 0;
    for (size_t i = 1; i < c->n; i++) {
        struct td_yrange *l = &c->r[j];
        if (c->r[i].client == l->client && c->r[i].clock <= l->clock + l->len) {
            if (c->r[i].clock + c->r[i].len > l->clock + l->len)
                l->len = c->r[i].clock + c->r[i].len - l->clock;
        } else {
            c->r[++j] = c->r[i];
        }
    }
    c->n = j + 1;
}

static void cov_structs(struct cov *c, const struct td_yupdate *u)
{
    for (size_t i = 0; i < u->nstructs; i++)
        if (u->structs[i].kind != TD_YK_SKIP)
            cov_add(c, u->structs[i].id.client, u->structs[i].id.clock, u->structs[i].len);
}

static void cov_ds(struct cov *c, const struct td_yupdate *u)
{
    for (size_t i = 0; i < u->nds; i++)
        cov_add(c, u->ds[i].client, u->ds[i].clock, u->ds[i].len);
}

static bool cov_eq(const struct cov *a, const struct cov *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->r, b->r, a->n * sizeof(*a->r)) == 0);
}

static bool unique_clients(const struct td_yupdate *u)
{
    for (size_t i = 0; i < u->nruns; i++)
        for (size_t j = i + 1; j < u->nruns; j++)
            if (u->runs[i].client == u->runs[j].client)
                return false;
    return true;
}

static void check_merged(const struct td_buf *m, int version, const struct cov *want_s,
                         const struct cov *want_d)
{
    struct td_yupdate u;
    struct cov s = {0}, d = {0};
    td_yupdate_init(&u);
    if (td_yupdate_decode(&u, m->data, m->len, version) != 0)
        abort();
    cov_structs(&s, &u);
    cov_ds(&d, &u);
    cov_norm(&s);
    cov_norm(&d);
    if (!cov_eq(&s, want_s) || !cov_eq(&d, want_d))
        abort();
    free(s.r);
    free(d.r);
    td_yupdate_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int version = (data[0] & 1) ? 2 : 1;
    size_t split = (size_t)data[1] | ((size_t)data[2] << 8);
    data += 3;
    size -= 3;
    if (split > size)
        split = size;
    const uint8_t *ups[2] = {data, data + split};
    size_t lens[2] = {split, size - split};
    const uint8_t *rev[2] = {ups[1], ups[0]};
    size_t rlens[2] = {lens[1], lens[0]};
    struct td_buf ab, ba;
    td_buf_init(&ab);
    td_buf_init(&ba);
    int rc1 = td_yupdate_merge(ups, lens, 2, version, &ab);
    int rc2 = td_yupdate_merge(rev, rlens, 2, version, &ba);

    struct td_yupdate a, b;
    td_yupdate_init(&a);
    td_yupdate_init(&b);
    bool ok = td_yupdate_decode(&a, ups[0], lens[0], version) == 0 &&
              td_yupdate_decode(&b, ups[1], lens[1], version) == 0;
    if (ok && unique_clients(&a) && unique_clients(&b)) {
        if (rc1 != 0 || rc2 != 0)
            abort();
        struct cov s = {0}, d = {0};
        cov_structs(&s, &a);
        cov_structs(&s, &b);
        cov_ds(&d, &a);
        cov_ds(&d, &b);
        cov_norm(&s);
        cov_norm(&d);
        check_merged(&ab, version, &s, &d);
        check_merged(&ba, version, &s, &d);
        /* idempotent: merging b in again covers nothing new */
        const uint8_t *again[2] = {ab.data, ups[1]};
        size_t alens[2] = {ab.len, lens[1]};
        struct td_buf abb;
        td_buf_init(&abb);
        if (td_yupdate_merge(again, alens, 2, version, &abb) != 0)
            abort();
        check_merged(&abb, version, &s, &d);
        td_buf_free(&abb);
        free(s.r);
        free(d.r);
    }
    td_yupdate_free(&a);
    td_yupdate_free(&b);
    td_buf_free(&ab);
    td_buf_free(&ba);
    return 0;
}
