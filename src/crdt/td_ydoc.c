/*
 * td_ydoc.c - the Yjs document engine (see td_ydoc.h for the contract).
 *
 * Layout. struct yitem is one struct of the store (Item or GC), 60 bytes, in the pool d->it
 * (index 0 is "none"). Clocks are uint32. Origins are (client index, clock) pairs with
 * client index NOC meaning "no origin". Content is a view [coff, coff+cbytes) into d->cb,
 * except for types (coff = type index). FORMAT and DOC content is stored as a 4-byte
 * little-endian key length, the key, then the value. Each client has its structs in clock
 * order in blocks of up to YBLK indices.
 *
 * The algorithms follow Yjs 13.6 closely (names in comments refer to its functions) because
 * byte-identical output depends on doing the same splits and merges: integrateStructs with
 * its dependency stack, Item.getMissing/integrate (the YATA loop), readAndApplyDeleteSet,
 * splitItem, and cleanupTransactions (tryGcDeleteSet, tryMergeDeleteSet, merging of new and
 * split structs). Local text edits extend the client's previous item in place when Yjs would
 * merge the new item into it at transaction end; the result is the same store.
 */
#include "crdt/td_ydoc.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_utf8.h"
#include "crdt/td_lib0.h"

#define NOC UINT32_MAX /* no origin / no client */
#define YBLK 64
#define MAX_CLOCK UINT32_MAX

enum {
    F_DELETED = 1,
    F_COUNTABLE = 2,
    F_ASCII = 4,  /* STRING content is pure ASCII (byte offset == UTF-16 offset) */
    F_ANYENC = 8, /* JSON/EMBED/FORMAT value is Any (v2) rather than JSON text */
};

struct yitem {
    uint32_t client, clock, len;
    uint32_t left, right;
    uint32_t oc, ok; /* origin */
    uint32_t rc, rk; /* right origin */
    uint32_t parent; /* type index, 0 for GC structs */
    uint32_t psub;   /* interned key, 0 for none */
    uint32_t coff, cbytes;
    uint8_t kind, flags, pad1, pad2;
};

/* A block keeps the clocks next to the item indices so lookups never touch the items. */
struct yblk {
    uint32_t n;
    uint32_t clk[YBLK]; /* clk[i] == it[it[i]].clock */
    uint32_t it[YBLK];
};

struct yclient {
    uint64_t id;
    uint32_t state;
    uint32_t nblk, capblk;
    uint32_t hint, hint_i;
    struct yblk **blk;
    uint32_t *bfirst; /* bfirst[b] == blk[b]->clk[0], contiguous for the block search */
    uint32_t txn_gen, txn_before;
};

struct ytype {
    uint32_t item; /* holding item, 0 for a root */
    uint32_t name; /* root name (interned), 0 for nested */
    uint32_t start;
    uint32_t length;
    uint32_t *keys;
    uint32_t nkeys, capkeys;
    /* Cached position (0: none): cur_index counted units lie before cur_item. cur_hi, if not
     * 0, is a later item with the same count before it (everything from cur_item up to it is
     * uncounted, typically a run of tombstones): walks to an index >= cur_index start there,
     * so a run of tombstones at the cursor is not crossed again on every edit. */
    uint32_t cur_item, cur_index, cur_hi;
    uint32_t nodename; /* XmlElement nodeName / XmlHook name (interned) */
    uint8_t tref;      /* TD_YT_*, 0xff for a root */
    uint8_t has_format;
};

/* uint64 -> uint32 hash map, open addressing, value 0 = empty slot. */
struct hmap {
    uint64_t *k;
    uint32_t *v;
    uint32_t cap, n;
};

struct ystr {
    uint32_t off, len;
};

struct yrange {
    uint32_t client, clock, len;
};

struct idrange {
    uint64_t client;
    uint32_t clock, len;
};

struct yid32 {
    uint32_t client, clock;
};

/* A set of item indices with O(1) clear (generation stamps). */
struct iset {
    uint32_t *k, *g;
    uint32_t cap, n, gen;
};

struct td_ydoc {
    uint64_t client_id;
    struct td_ydoc_limits lim;

    struct yitem *it;
    uint32_t nit, capit, freeit, nstructs;

    uint8_t *cb;
    size_t cblen, cbcap, cbwaste;

    struct yclient *cl;
    uint32_t ncl, capcl;
    struct hmap clmap; /* client id -> index+1 */

    struct ytype *ty;
    uint32_t nty, capty;
    struct hmap rootmap; /* name id -> type */
    uint32_t *roots;
    uint32_t nroots, caproots;
    struct hmap mapmap; /* (type << 32 | key) -> rightmost item of the key's chain */

    struct td_buf strs;
    struct ystr *sv;
    uint32_t nstr, capstr;
    uint32_t *stab;
    uint32_t stabcap;

    /* transaction */
    bool in_txn, txn_local, txn_explicit;
    uint32_t txn_gen;
    uint32_t *touched;
    uint32_t ntouched, captouched;
    struct yrange *tds;
    size_t ntds, captds;
    struct yid32 *ms; /* mergeStructs */
    size_t nms, capms;

    /* pending */
    struct td_buf pending; /* v1 update of pending structs (len 0: none) */
    struct idrange *missing;
    size_t nmissing, capmissing;
    struct idrange *pds;
    size_t npds, cappds;

    uint32_t last_root_name, last_root; /* cache for root_of */
    uint32_t local_ci;                  /* client index of client_id, NOC until it exists */
    uint32_t ci_hint;                   /* client index client_get tries first */
    /* last right origin resolved by integrate_struct in this transaction (item indices are
     * stable until the transaction's merges; splits keep the left part's index) */
    uint32_t ro_ci, ro_clock, ro_item;
    struct iset s1, s2;
    uint32_t *stack;
    size_t nstack, capstack;
};

/* ------------------------------------------------------------------------------------------
 * Small containers
 */

#define GROW(p, n, cap, extra)                                                                     \
    do {                                                                                           \
        if ((n) + (extra) > (cap)) {                                                               \
            size_t nc_ = (cap) ? (size_t)(cap)*2 : 16;                                             \
            while (nc_ < (size_t)(n) + (extra))                                                    \
                nc_ *= 2;                                                                          \
            (p) = td_xrealloc((p), nc_ * sizeof(*(p)));                                            \
            (cap) = (__typeof__(cap))nc_;                                                          \
        }                                                                                          \
    } while (0)

static inline uint64_t hmix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

static uint32_t hm_get(const struct hmap *m, uint64_t k)
{
    if (m->cap == 0)
        return 0;
    uint32_t mask = m->cap - 1;
    for (uint32_t i = (uint32_t)hmix(k) & mask;; i = (i + 1) & mask) {
        if (m->v[i] == 0)
            return 0;
        if (m->k[i] == k)
            return m->v[i];
    }
}

static void hm_put(struct hmap *m, uint64_t k, uint32_t v);

static void hm_grow(struct hmap *m)
{
    struct hmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->n = 0;
    m->k = td_xmalloc(m->cap * sizeof(*m->k));
    m->v = td_xcalloc(m->cap, sizeof(*m->v));
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.v[i] != 0)
            hm_put(m, old.k[i], old.v[i]);
    free(old.k);
    free(old.v);
}

static void hm_put(struct hmap *m, uint64_t k, uint32_t v)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        hm_grow(m);
    uint32_t mask = m->cap - 1;
    for (uint32_t i = (uint32_t)hmix(k) & mask;; i = (i + 1) & mask) {
        if (m->v[i] == 0) {
            m->k[i] = k;
            m->v[i] = v;
            m->n++;
            return;
        }
        if (m->k[i] == k) {
            m->v[i] = v;
            return;
        }
    }
}

static void hm_del(struct hmap *m, uint64_t k)
{
    if (m->cap == 0)
        return;
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)hmix(k) & mask;
    for (;; i = (i + 1) & mask) {
        if (m->v[i] == 0)
            return;
        if (m->k[i] == k)
            break;
    }
    /* backward-shift deletion */
    uint32_t j = i;
    for (;;) {
        m->v[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (m->v[j] == 0) {
                m->n--;
                return;
            }
            uint32_t h = (uint32_t)hmix(m->k[j]) & mask;
            /* can the entry at j move to i? only if h is not cyclically in (i, j] */
            if (i <= j ? (h <= i || h > j) : (h <= i && h > j))
                break;
        }
        m->k[i] = m->k[j];
        m->v[i] = m->v[j];
        i = j;
    }
}

static void hm_free(struct hmap *m)
{
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static void iset_clear(struct iset *s)
{
    s->gen++;
    s->n = 0;
    if (s->gen == 0) {
        memset(s->g, 0, s->cap * sizeof(*s->g));
        s->gen = 1;
    }
}

static bool iset_has(const struct iset *s, uint32_t x)
{
    if (s->cap == 0)
        return false;
    uint32_t mask = s->cap - 1;
    for (uint32_t i = (uint32_t)hmix(x) & mask;; i = (i + 1) & mask) {
        if (s->g[i] != s->gen)
            return false;
        if (s->k[i] == x)
            return true;
    }
}

static void iset_add(struct iset *s, uint32_t x)
{
    if ((s->n + 1) * 2 > s->cap) {
        uint32_t oc = s->cap;
        uint32_t *ok = s->k, *og = s->g;
        uint32_t ogen = s->gen;
        s->cap = oc ? oc * 2 : 64;
        s->k = td_xmalloc(s->cap * sizeof(*s->k));
        s->g = td_xcalloc(s->cap, sizeof(*s->g));
        s->gen = 1;
        s->n = 0;
        for (uint32_t i = 0; i < oc; i++)
            if (og[i] == ogen)
                iset_add(s, ok[i]);
        free(ok);
        free(og);
    }
    uint32_t mask = s->cap - 1;
    for (uint32_t i = (uint32_t)hmix(x) & mask;; i = (i + 1) & mask) {
        if (s->g[i] != s->gen) {
            s->g[i] = s->gen;
            s->k[i] = x;
            s->n++;
            return;
        }
        if (s->k[i] == x)
            return;
    }
}

/* ------------------------------------------------------------------------------------------
 * Strings (interned keys and root names), ids from 1
 */

static uint64_t str_hash(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(1099511628211);
    return hmix(h);
}

static const uint8_t *str_ptr(const struct td_ydoc *d, uint32_t id)
{
    return d->strs.data + d->sv[id].off;
}

static uint32_t str_find(const struct td_ydoc *d, const uint8_t *p, size_t n)
{
    if (d->stabcap == 0)
        return 0;
    uint32_t mask = d->stabcap - 1;
    for (uint32_t i = (uint32_t)str_hash(p, n) & mask;; i = (i + 1) & mask) {
        uint32_t id = d->stab[i];
        if (id == 0)
            return 0;
        if (d->sv[id].len == n && memcmp(str_ptr(d, id), p, n) == 0)
            return id;
    }
}

static void str_insert_slot(struct td_ydoc *d, uint32_t id)
{
    uint32_t mask = d->stabcap - 1;
    for (uint32_t i = (uint32_t)str_hash(str_ptr(d, id), d->sv[id].len) & mask;;
         i = (i + 1) & mask) {
        if (d->stab[i] == 0) {
            d->stab[i] = id;
            return;
        }
    }
}

static uint32_t str_intern(struct td_ydoc *d, const uint8_t *p, size_t n)
{
    uint32_t id = str_find(d, p, n);
    if (id != 0)
        return id;
    if ((d->nstr + 1) * 2 > d->stabcap) {
        free(d->stab);
        d->stabcap = d->stabcap ? d->stabcap * 2 : 64;
        d->stab = td_xcalloc(d->stabcap, sizeof(*d->stab));
        for (uint32_t i = 1; i < d->nstr; i++)
            str_insert_slot(d, i);
    }
    GROW(d->sv, d->nstr, d->capstr, 1);
    id = d->nstr++;
    d->sv[id].off = (uint32_t)d->strs.len;
    d->sv[id].len = (uint32_t)n;
    td_buf_append(&d->strs, p, n);
    str_insert_slot(d, id);
    return id;
}

/* ------------------------------------------------------------------------------------------
 * Items, content arena, clients
 */

/* it_reserve grows the item pool to cap records. */
static void it_reserve(struct td_ydoc *d, uint32_t cap)
{
    d->it = td_xrealloc(d->it, (size_t)cap * sizeof(*d->it));
    d->capit = cap;
}

static uint32_t item_new(struct td_ydoc *d)
{
    uint32_t x;
    if (d->freeit != 0) {
        x = d->freeit;
        d->freeit = d->it[x].right;
    } else {
        if (d->nit == d->capit)
            it_reserve(d, d->capit * 2);
        x = d->nit++;
    }
    memset(&d->it[x], 0, sizeof(d->it[x]));
    d->it[x].oc = NOC;
    d->it[x].rc = NOC;
    d->nstructs++;
    return x;
}

static void item_free(struct td_ydoc *d, uint32_t x)
{
    d->it[x].kind = 0xff;
    d->it[x].right = d->freeit;
    d->freeit = x;
    d->nstructs--;
}

/* cb_reserve makes room for n more arena bytes (the caller checked limits). */
static void cb_reserve(struct td_ydoc *d, size_t n)
{
    if (d->cblen + n > d->cbcap) {
        size_t nc = d->cbcap ? d->cbcap * 2 : 4096;
        while (nc < d->cblen + n)
            nc *= 2;
        d->cb = td_xrealloc(d->cb, nc);
        d->cbcap = nc;
    }
}

static uint32_t cb_add(struct td_ydoc *d, const void *p, size_t n)
{
    cb_reserve(d, n);
    uint32_t off = (uint32_t)d->cblen;
    if (n > 0)
        memcpy(d->cb + off, p, n);
    d->cblen += n;
    return off;
}

static uint32_t client_get(const struct td_ydoc *d, uint64_t id)
{
    if (d->ci_hint < d->ncl && d->cl[d->ci_hint].id == id)
        return d->ci_hint;
    uint32_t v = hm_get(&d->clmap, id);
    return v == 0 ? NOC : v - 1;
}

static uint32_t client_ensure(struct td_ydoc *d, uint64_t id)
{
    uint32_t c = client_get(d, id);
    if (c != NOC) {
        d->ci_hint = c;
        return c;
    }
    GROW(d->cl, d->ncl, d->capcl, 1);
    c = d->ncl++;
    memset(&d->cl[c], 0, sizeof(d->cl[c]));
    d->cl[c].id = id;
    hm_put(&d->clmap, id, c + 1);
    return c;
}

static inline uint32_t state_of(const struct td_ydoc *d, uint64_t id)
{
    uint32_t c = client_get(d, id);
    return c == NOC ? 0 : d->cl[c].state;
}

/* A position in a client's blocked array. */
struct pos {
    uint32_t b, i;
};

static inline uint32_t at(const struct yclient *c, struct pos p)
{
    return c->blk[p.b]->it[p.i];
}

/* at_clock returns the clock of the struct at p without reading the struct. */
static inline uint32_t at_clock(const struct yclient *c, struct pos p)
{
    return c->blk[p.b]->clk[p.i];
}

/* blk_end returns the clock right after block b of c. */
static inline uint32_t blk_end(const struct yclient *c, uint32_t b)
{
    return b + 1 < c->nblk ? c->bfirst[b + 1] : c->state;
}

/* blk_search returns the index of the last clk[] <= clock in block k (clk[0] <= clock). */
static inline uint32_t blk_search(const struct yblk *k, uint32_t clock)
{
    uint32_t lo = 0, n = k->n;
    while (n > 1) {
        uint32_t half = n / 2;
        if (k->clk[lo + half] <= clock)
            lo += half;
        n -= half;
    }
    return lo;
}

/* cl_find returns the position of the struct containing clock (clock < state). Structs
 * cover the clocks without gaps, so the containing struct is the last one whose first clock
 * is <= clock; only the clock arrays are read. */
static struct pos cl_find(const struct td_ydoc *d, struct yclient *c, uint32_t clock)
{
    (void)d;
    uint32_t b = c->hint;
    if (b < c->nblk && c->bfirst[b] <= clock && clock < blk_end(c, b)) {
        const struct yblk *k = c->blk[b];
        uint32_t i = c->hint_i;
        /* last hit, or the struct right after it */
        if (i < k->n && k->clk[i] <= clock) {
            if (i + 1 == k->n || clock < k->clk[i + 1])
                return (struct pos){b, i};
            if (i + 2 == k->n || clock < k->clk[i + 2]) {
                c->hint_i = i + 1;
                return (struct pos){b, i + 1};
            }
        }
    } else {
        uint32_t last = c->nblk - 1;
        if (c->bfirst[last] <= clock) {
            b = last;
        } else {
            uint32_t lo = 0, n = last; /* last block with first <= clock, among [0, last) */
            while (n > 1) {
                uint32_t half = n / 2;
                if (c->bfirst[lo + half] <= clock)
                    lo += half;
                n -= half;
            }
            b = lo;
        }
        c->hint = b;
    }
    uint32_t i = blk_search(c->blk[b], clock);
    c->hint_i = i;
    return (struct pos){b, i};
}

static bool pos_prev(const struct yclient *c, struct pos *p)
{
    if (p->i > 0) {
        p->i--;
        return true;
    }
    if (p->b == 0)
        return false;
    p->b--;
    p->i = c->blk[p->b]->n - 1;
    return true;
}

static bool pos_next(const struct yclient *c, struct pos *p)
{
    if (p->i + 1 < c->blk[p->b]->n) {
        p->i++;
        return true;
    }
    if (p->b + 1 >= c->nblk)
        return false;
    p->b++;
    p->i = 0;
    return true;
}

static bool pos_has_prev(struct pos p)
{
    return p.i > 0 || p.b > 0;
}

static struct pos pos_last(const struct yclient *c)
{
    return (struct pos){c->nblk - 1, c->blk[c->nblk - 1]->n - 1};
}

/* blk_insert makes room for a block at index b (blk[b] and bfirst[b] are left to set). */
static void blk_insert(struct yclient *c, uint32_t b)
{
    if (c->nblk == c->capblk) {
        c->capblk = c->capblk ? c->capblk * 2 : 4;
        c->blk = td_xrealloc(c->blk, c->capblk * sizeof(*c->blk));
        c->bfirst = td_xrealloc(c->bfirst, c->capblk * sizeof(*c->bfirst));
    }
    memmove(&c->blk[b + 1], &c->blk[b], (c->nblk - b) * sizeof(*c->blk));
    memmove(&c->bfirst[b + 1], &c->bfirst[b], (c->nblk - b) * sizeof(*c->bfirst));
    c->nblk++;
}

static void cl_append(struct td_ydoc *d, uint32_t ci, uint32_t x)
{
    struct yclient *c = &d->cl[ci];
    uint32_t clock = d->it[x].clock;
    if (c->nblk == 0 || c->blk[c->nblk - 1]->n == YBLK) {
        blk_insert(c, c->nblk);
        struct yblk *k = td_xmalloc(sizeof(*k));
        k->n = 0;
        c->blk[c->nblk - 1] = k;
        c->bfirst[c->nblk - 1] = clock;
    }
    struct yblk *k = c->blk[c->nblk - 1];
    k->clk[k->n] = clock;
    k->it[k->n++] = x;
    c->state = clock + d->it[x].len;
}

/* cl_insert_after inserts x right after position p and returns x's position (positions
 * taken before the call are stale afterwards: the block may have been split). */
static struct pos cl_insert_after(struct td_ydoc *d, uint32_t ci, struct pos p, uint32_t x)
{
    struct yclient *c = &d->cl[ci];
    struct yblk *k = c->blk[p.b];
    uint32_t i = p.i + 1, b = p.b;
    if (k->n == YBLK) {
        blk_insert(c, p.b + 1);
        struct yblk *k2 = td_xmalloc(sizeof(*k2));
        k2->n = YBLK / 2;
        memcpy(k2->it, k->it + YBLK / 2, (YBLK / 2) * sizeof(uint32_t));
        memcpy(k2->clk, k->clk + YBLK / 2, (YBLK / 2) * sizeof(uint32_t));
        k->n = YBLK / 2;
        c->blk[p.b + 1] = k2;
        c->bfirst[p.b + 1] = k2->clk[0];
        if (i > YBLK / 2) {
            k = k2;
            i -= YBLK / 2;
            b++;
        }
    }
    memmove(&k->it[i + 1], &k->it[i], (k->n - i) * sizeof(uint32_t));
    memmove(&k->clk[i + 1], &k->clk[i], (k->n - i) * sizeof(uint32_t));
    k->it[i] = x;
    k->clk[i] = d->it[x].clock;
    k->n++;
    if (i == 0)
        c->bfirst[b] = d->it[x].clock;
    return (struct pos){b, i};
}

static void cl_remove(struct td_ydoc *d, uint32_t ci, struct pos p)
{
    struct yclient *c = &d->cl[ci];
    struct yblk *k = c->blk[p.b];
    memmove(&k->it[p.i], &k->it[p.i + 1], (k->n - p.i - 1) * sizeof(uint32_t));
    memmove(&k->clk[p.i], &k->clk[p.i + 1], (k->n - p.i - 1) * sizeof(uint32_t));
    k->n--;
    if (k->n == 0) {
        free(k);
        memmove(&c->blk[p.b], &c->blk[p.b + 1], (c->nblk - p.b - 1) * sizeof(*c->blk));
        memmove(&c->bfirst[p.b], &c->bfirst[p.b + 1], (c->nblk - p.b - 1) * sizeof(*c->bfirst));
        c->nblk--;
        c->hint = 0;
    } else if (p.i == 0) {
        c->bfirst[p.b] = k->clk[0];
    }
}

/* find_item returns the struct containing (client, clock), or 0 if unknown (getItem). */
static uint32_t find_item(struct td_ydoc *d, uint32_t ci, uint32_t clock)
{
    if (ci == NOC || clock >= d->cl[ci].state)
        return 0;
    struct pos p = cl_find(d, &d->cl[ci], clock);
    return at(&d->cl[ci], p);
}

/* ------------------------------------------------------------------------------------------
 * Types and maps
 */

static uint32_t type_new(struct td_ydoc *d, uint8_t tref)
{
    GROW(d->ty, d->nty, d->capty, 1);
    uint32_t t = d->nty++;
    memset(&d->ty[t], 0, sizeof(d->ty[t]));
    d->ty[t].tref = tref;
    return t;
}

static uint32_t root_find(const struct td_ydoc *d, const uint8_t *name, size_t n)
{
    uint32_t s = str_find(d, name, n);
    return s == 0 ? 0 : hm_get(&d->rootmap, s);
}

static uint32_t root_ensure(struct td_ydoc *d, const uint8_t *name, size_t n)
{
    uint32_t s = str_intern(d, name, n);
    uint32_t t = hm_get(&d->rootmap, s);
    if (t != 0)
        return t;
    t = type_new(d, 0xff);
    d->ty[t].name = s;
    hm_put(&d->rootmap, s, t);
    GROW(d->roots, d->nroots, d->caproots, 1);
    d->roots[d->nroots++] = t;
    return t;
}

static inline uint64_t mkey(uint32_t t, uint32_t key)
{
    return ((uint64_t)t << 32) | key;
}

static inline uint32_t map_get(const struct td_ydoc *d, uint32_t t, uint32_t key)
{
    return hm_get(&d->mapmap, mkey(t, key));
}

static void map_set(struct td_ydoc *d, uint32_t t, uint32_t key, uint32_t x)
{
    uint64_t k = mkey(t, key);
    if (hm_get(&d->mapmap, k) == 0) {
        struct ytype *ty = &d->ty[t];
        GROW(ty->keys, ty->nkeys, ty->capkeys, 1);
        ty->keys[ty->nkeys++] = key;
    }
    hm_put(&d->mapmap, k, x);
}

/* ------------------------------------------------------------------------------------------
 * Content helpers
 */

static bool kind_countable(uint8_t kind)
{
    return kind != TD_YK_DELETED && kind != TD_YK_FORMAT;
}

static bool kind_splittable(uint8_t kind)
{
    return kind == TD_YK_STRING || kind == TD_YK_ANY || kind == TD_YK_JSON || kind == TD_YK_DELETED;
}

static bool is_ascii(const uint8_t *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & UINT64_C(0x8080808080808080)) == 0;
}

/* skip_values returns the byte length of the first n values of Any/JSON content. */
static size_t skip_values(const uint8_t *p, size_t len, uint8_t kind, bool anyenc, uint32_t n)
{
    struct td_lib0_reader r;
    td_lib0_reader_init(&r, p, len);
    for (uint32_t i = 0; i < n; i++) {
        int rv;
        if (kind == TD_YK_ANY || anyenc) {
            rv = td_lib0_skip_any(&r, 1000);
        } else {
            struct td_ybytes b;
            rv = td_lib0_read_varstring(&r, &b);
        }
        if (rv < 0)
            return len; /* cannot happen for validated content */
    }
    return (size_t)(r.p - p);
}

/*
 * str_split_at finds the byte offset of UTF-16 offset u in the item's string; *mid is set if
 * u falls inside a surrogate pair (the offset is then that character's first byte).
 */
static size_t str_split_at(const struct td_ydoc *d, const struct yitem *x, uint32_t u, bool *mid)
{
    *mid = false;
    if (x->flags & F_ASCII)
        return u;
    size_t off = 0;
    if (td_lib0_utf16_to_byte(d->cb + x->coff, x->cbytes, u, &off, mid) < 0)
        return x->cbytes;
    return off;
}

/* ------------------------------------------------------------------------------------------
 * Transaction bookkeeping
 */

static void txn_touch(struct td_ydoc *d, uint32_t ci)
{
    struct yclient *c = &d->cl[ci];
    if (c->txn_gen != d->txn_gen) {
        c->txn_gen = d->txn_gen;
        c->txn_before = c->state;
        GROW(d->touched, d->ntouched, d->captouched, 1);
        d->touched[d->ntouched++] = ci;
    }
}

static uint32_t txn_before(const struct td_ydoc *d, uint32_t ci)
{
    const struct yclient *c = &d->cl[ci];
    return c->txn_gen == d->txn_gen ? c->txn_before : c->state;
}

static void txn_add_delete(struct td_ydoc *d, uint32_t ci, uint32_t clock, uint32_t len)
{
    if (d->ntds > 0) {
        struct yrange *r = &d->tds[d->ntds - 1];
        if (r->client == ci && r->clock + r->len == clock) {
            r->len += len;
            return;
        }
    }
    GROW(d->tds, d->ntds, d->captds, 1);
    d->tds[d->ntds++] = (struct yrange){ci, clock, len};
}

static void txn_add_merge(struct td_ydoc *d, uint32_t ci, uint32_t clock)
{
    GROW(d->ms, d->nms, d->capms, 1);
    d->ms[d->nms++] = (struct yid32){ci, clock};
}

/* type_changed records that type t changed; remote changes drop its cached position. */
static inline void type_changed(struct td_ydoc *d, uint32_t t)
{
    if (!d->txn_local)
        d->ty[t].cur_item = 0;
}

/* ------------------------------------------------------------------------------------------
 * Splitting (splitItem, getItemCleanStart/End)
 */

/* split_item splits x at clock offset diff (0 < diff < len) and returns the right part. If
 * xpos (x's position) is given, it is updated (a block may split). */
static uint32_t split_item(struct td_ydoc *d, uint32_t x, uint32_t diff, struct pos *xpos)
{
    uint32_t r = item_new(d);
    struct yitem *L = &d->it[x], *R = &d->it[r];
    *R = *L;
    R->clock = L->clock + diff;
    R->len = L->len - diff;
    R->oc = L->client;
    R->ok = L->clock + diff - 1;
    if (L->kind == TD_YK_STRING) {
        bool mid;
        size_t off = str_split_at(d, L, diff, &mid);
        if (!mid) {
            R->coff = L->coff + (uint32_t)off;
            R->cbytes = L->cbytes - (uint32_t)off;
            L->cbytes = (uint32_t)off;
        } else {
            /* yjs #248: both halves of the split pair become U+FFFD */
            static const uint8_t fffd[3] = {0xef, 0xbf, 0xbd};
            uint32_t rest = L->cbytes - (uint32_t)off - 4;
            cb_reserve(d, 3 + rest);
            L = &d->it[x];
            R = &d->it[r];
            uint32_t noff = (uint32_t)d->cblen;
            memcpy(d->cb + noff, fffd, 3);
            memcpy(d->cb + noff + 3, d->cb + L->coff + off + 4, rest);
            d->cblen += 3 + rest;
            R->coff = noff;
            R->cbytes = 3 + rest;
            memcpy(d->cb + L->coff + off, fffd, 3);
            L->cbytes = (uint32_t)off + 3;
            d->cbwaste += 1;
        }
    } else if (L->kind == TD_YK_ANY || L->kind == TD_YK_JSON) {
        size_t off = skip_values(d->cb + L->coff, L->cbytes, L->kind, L->flags & F_ANYENC, diff);
        R->coff = L->coff + (uint32_t)off;
        R->cbytes = L->cbytes - (uint32_t)off;
        L->cbytes = (uint32_t)off;
    }
    L->len = diff;
    R->left = x;
    if (R->right != 0)
        d->it[R->right].left = r;
    L->right = r;
    txn_add_merge(d, R->client, R->clock);
    if (R->psub != 0 && R->right == 0)
        map_set(d, R->parent, R->psub, r);
    uint32_t ci = L->client;
    struct pos p = xpos ? *xpos : cl_find(d, &d->cl[ci], L->clock);
    p = cl_insert_after(d, ci, p, r);
    if (xpos != NULL) {
        pos_prev(&d->cl[ci], &p);
        *xpos = p;
    }
    return r;
}

/* clean_start returns the struct starting at (ci, clock), splitting an Item if needed. */
static uint32_t clean_start(struct td_ydoc *d, uint32_t ci, uint32_t clock)
{
    struct pos p = cl_find(d, &d->cl[ci], clock);
    uint32_t x = at(&d->cl[ci], p);
    if (d->it[x].clock < clock && d->it[x].kind != TD_YK_GC)
        return split_item(d, x, clock - d->it[x].clock, &p);
    return x;
}

/* clean_end returns the struct ending at (ci, clock), splitting an Item if needed. */
static uint32_t clean_end(struct td_ydoc *d, uint32_t ci, uint32_t clock)
{
    struct pos p = cl_find(d, &d->cl[ci], clock);
    uint32_t x = at(&d->cl[ci], p);
    struct yitem *X = &d->it[x];
    if (clock != X->clock + X->len - 1 && X->kind != TD_YK_GC)
        split_item(d, x, clock - X->clock + 1, &p);
    return x;
}

/* ------------------------------------------------------------------------------------------
 * Deleting (Item.delete, ContentType.delete) without recursion
 */

static void item_delete(struct td_ydoc *d, uint32_t x);

struct delframe {
    uint32_t t;   /* type whose children are being deleted */
    uint32_t cur; /* next list item, or next key index when in_map */
    bool in_map;
};

static void delete_one(struct td_ydoc *d, uint32_t x)
{
    struct yitem *X = &d->it[x];
    if (X->parent != 0 && (X->flags & F_COUNTABLE) && X->psub == 0)
        d->ty[X->parent].length -= X->len;
    X->flags |= F_DELETED;
    txn_add_delete(d, X->client, X->clock, X->len);
    if (X->parent != 0)
        type_changed(d, X->parent);
}

static void item_delete(struct td_ydoc *d, uint32_t x)
{
    if (d->it[x].flags & F_DELETED)
        return;
    delete_one(d, x);
    if (d->it[x].kind != TD_YK_TYPE)
        return;
    /* cascade in the order of Yjs's recursion: list children, then map values */
    struct delframe *st = NULL;
    size_t n = 0, cap = 0;
    GROW(st, n, cap, 1);
    st[n++] = (struct delframe){d->it[x].coff, d->ty[d->it[x].coff].start, false};
    while (n > 0) {
        struct delframe *f = &st[n - 1];
        uint32_t child = 0;
        if (!f->in_map) {
            if (f->cur == 0) {
                f->in_map = true;
                f->cur = 0;
                continue;
            }
            child = f->cur;
            f->cur = d->it[child].right;
        } else {
            struct ytype *T = &d->ty[f->t];
            if (f->cur >= T->nkeys) {
                n--;
                continue;
            }
            child = map_get(d, f->t, T->keys[f->cur++]);
            if (child == 0)
                continue;
        }
        struct yitem *C = &d->it[child];
        if (!(C->flags & F_DELETED)) {
            delete_one(d, child);
            if (d->it[child].kind == TD_YK_TYPE) {
                uint32_t t = d->it[child].coff;
                GROW(st, n, cap, 1);
                st[n++] = (struct delframe){t, d->ty[t].start, false};
            }
        } else if (C->clock < txn_before(d, C->client)) {
            txn_add_merge(d, C->client, C->clock);
        }
    }
    free(st);
}

/* ------------------------------------------------------------------------------------------
 * GC (Item.gc, ContentType.gc) without recursion
 */

static void content_drop(struct td_ydoc *d, struct yitem *X)
{
    if (X->kind != TD_YK_TYPE)
        d->cbwaste += X->cbytes;
    X->coff = 0;
    X->cbytes = 0;
}

/* gc_type_children turns every child of type t (and their descendants) into GC structs. */
static void gc_type_children(struct td_ydoc *d, uint32_t t0)
{
    uint32_t *st = NULL;
    size_t n = 0, cap = 0;
    GROW(st, n, cap, 1);
    st[n++] = t0;
    while (n > 0) {
        uint32_t t = st[--n];
        struct ytype *T = &d->ty[t];
        for (uint32_t x = T->start; x != 0; x = d->it[x].right) {
            struct yitem *X = &d->it[x];
            if (X->kind == TD_YK_TYPE) {
                GROW(st, n, cap, 1);
                st[n++] = X->coff;
            }
            content_drop(d, X);
            X->kind = TD_YK_GC;
            X->flags = F_DELETED;
            X->parent = 0;
            X->psub = 0;
        }
        T = &d->ty[t];
        T->start = 0;
        for (uint32_t k = 0; k < T->nkeys; k++) {
            uint32_t x = map_get(d, t, T->keys[k]);
            hm_del(&d->mapmap, mkey(t, T->keys[k]));
            while (x != 0) {
                struct yitem *X = &d->it[x];
                uint32_t next = X->left;
                if (X->kind == TD_YK_TYPE) {
                    GROW(st, n, cap, 1);
                    st[n++] = X->coff;
                }
                if (X->kind != TD_YK_GC) {
                    content_drop(d, X);
                    X->kind = TD_YK_GC;
                    X->flags = F_DELETED;
                    X->parent = 0;
                    X->psub = 0;
                }
                x = next;
            }
        }
        T = &d->ty[t];
        T->nkeys = 0;
        T->cur_item = 0;
    }
    free(st);
}

static void item_gc(struct td_ydoc *d, uint32_t x)
{
    struct yitem *X = &d->it[x];
    if (X->kind == TD_YK_TYPE) {
        gc_type_children(d, X->coff);
        X = &d->it[x];
    }
    content_drop(d, X);
    X->kind = TD_YK_DELETED;
}

/* ------------------------------------------------------------------------------------------
 * Merging (Item.mergeWith, tryToMergeWithLefts)
 */

static bool can_merge(const struct td_ydoc *d, uint32_t l, uint32_t r)
{
    const struct yitem *L = &d->it[l], *R = &d->it[r];
    if (L->kind == TD_YK_GC || R->kind == TD_YK_GC)
        return L->kind == R->kind;
    if ((L->flags & F_DELETED) != (R->flags & F_DELETED) || L->kind != R->kind)
        return false;
    if (!kind_splittable(L->kind))
        return false;
    if (L->kind == TD_YK_JSON && (L->flags & F_ANYENC) != (R->flags & F_ANYENC))
        return false;
    if (R->oc != L->client || R->ok != L->clock + L->len - 1 || L->right != r)
        return false;
    if (L->rc != R->rc || (L->rc != NOC && L->rk != R->rk))
        return false;
    return true;
}

static void do_merge(struct td_ydoc *d, uint32_t l, uint32_t r)
{
    struct yitem *L = &d->it[l], *R = &d->it[r];
    if (L->kind != TD_YK_GC) {
        if (R->cbytes > 0 && L->coff + L->cbytes != R->coff) {
            cb_reserve(d, (size_t)L->cbytes + R->cbytes);
            uint32_t off = (uint32_t)d->cblen;
            memcpy(d->cb + off, d->cb + L->coff, L->cbytes);
            memcpy(d->cb + off + L->cbytes, d->cb + R->coff, R->cbytes);
            d->cblen += (size_t)L->cbytes + R->cbytes;
            d->cbwaste += (size_t)L->cbytes + R->cbytes;
            L->coff = off;
        }
        L->cbytes += R->cbytes;
        if (!(R->flags & F_ASCII))
            L->flags &= (uint8_t)~F_ASCII;
        struct ytype *T = &d->ty[L->parent];
        if (T->cur_hi == r || T->cur_item == r)
            T->cur_hi = 0;
        if (T->cur_item == r) {
            T->cur_item = l;
            if (!(L->flags & F_DELETED) && (L->flags & F_COUNTABLE) && L->psub == 0)
                T->cur_index -= L->len;
        }
        L->right = R->right;
        if (L->right != 0)
            d->it[L->right].left = l;
        if (R->psub != 0 && map_get(d, R->parent, R->psub) == r)
            map_set(d, R->parent, R->psub, l);
    }
    L->len += R->len;
    item_free(d, r);
}

/* try_merge_lefts merges the struct at *p into its left neighbours while possible; *p ends at
 * the merged struct. Returns how many structs were merged away. */
static uint32_t try_merge_lefts(struct td_ydoc *d, uint32_t ci, struct pos *p)
{
    struct yclient *c = &d->cl[ci];
    uint32_t merged = 0;
    for (;;) {
        struct pos lp = *p;
        if (!pos_prev(c, &lp))
            break;
        uint32_t l = at(c, lp), r = at(c, *p);
        if (!can_merge(d, l, r))
            break;
        do_merge(d, l, r);
        cl_remove(d, ci, *p);
        *p = lp;
        merged++;
    }
    return merged;
}

/* ------------------------------------------------------------------------------------------
 * Transaction cleanup (cleanupTransactions)
 */

static int cmp_yrange(const void *a, const void *b)
{
    const struct yrange *x = a, *y = b;
    if (x->client != y->client)
        return x->client < y->client ? -1 : 1;
    if (x->clock != y->clock)
        return x->clock < y->clock ? -1 : 1;
    return 0;
}

static size_t sort_merge_ranges(struct yrange *r, size_t n)
{
    if (n <= 1)
        return n;
    size_t k = 1;
    while (k < n && cmp_yrange(&r[k - 1], &r[k]) <= 0)
        k++;
    if (k < n) /* often already in order (deletes applied in clock order) */
        qsort(r, n, sizeof(*r), cmp_yrange);
    size_t w = 0;
    for (size_t i = 1; i < n; i++) {
        struct yrange *a = &r[w];
        if (r[i].client == a->client && r[i].clock <= a->clock + a->len) {
            uint32_t end = r[i].clock + r[i].len;
            if (end > a->clock + a->len)
                a->len = end - a->clock;
        } else {
            r[++w] = r[i];
        }
    }
    return w + 1;
}

static void txn_gc_and_merge(struct td_ydoc *d)
{
    d->ntds = sort_merge_ranges(d->tds, d->ntds);
    /* tryGcDeleteSet */
    for (size_t di = d->ntds; di-- > 0;) {
        struct yrange rg = d->tds[di];
        struct yclient *c = &d->cl[rg.client];
        uint32_t end = rg.clock + rg.len;
        struct pos p = cl_find(d, c, rg.clock);
        do {
            uint32_t x = at(c, p);
            struct yitem *X = &d->it[x];
            if (X->clock >= end)
                break;
            if (X->kind != TD_YK_GC && (X->flags & F_DELETED))
                item_gc(d, x);
            c = &d->cl[rg.client];
        } while (pos_next(c, &p));
    }
    /* tryMergeDeleteSet */
    for (size_t di = d->ntds; di-- > 0;) {
        struct yrange rg = d->tds[di];
        struct yclient *c = &d->cl[rg.client];
        struct pos p = cl_find(d, c, rg.clock + rg.len - 1);
        pos_next(c, &p);
        for (;;) {
            if (!pos_has_prev(p) || at_clock(c, p) < rg.clock)
                break;
            try_merge_lefts(d, rg.client, &p);
            c = &d->cl[rg.client];
            if (!pos_prev(c, &p))
                break;
        }
    }
    /* structs added in this transaction */
    for (uint32_t k = 0; k < d->ntouched; k++) {
        uint32_t ci = d->touched[k];
        struct yclient *c = &d->cl[ci];
        if (c->txn_before == c->state)
            continue;
        struct pos f = pos_last(c);
        if (at_clock(c, f) > c->txn_before)
            f = cl_find(d, c, c->txn_before);
        if (!pos_has_prev(f) && !pos_next(c, &f))
            continue;
        uint32_t fclock = at_clock(c, f);
        struct pos p = pos_last(c);
        for (;;) {
            if (!pos_has_prev(p) || at_clock(c, p) < fclock)
                break;
            try_merge_lefts(d, ci, &p);
            c = &d->cl[ci];
            if (!pos_prev(c, &p))
                break;
        }
    }
    /* mergeStructs */
    for (size_t i = d->nms; i-- > 0;) {
        uint32_t ci = d->ms[i].client;
        struct yclient *c = &d->cl[ci];
        struct pos p = cl_find(d, c, d->ms[i].clock);
        struct pos q = p;
        if (pos_next(c, &q)) {
            if (try_merge_lefts(d, ci, &q) > 1)
                continue;
        }
        c = &d->cl[ci];
        if (pos_has_prev(p))
            try_merge_lefts(d, ci, &p);
    }
}

/* ------------------------------------------------------------------------------------------
 * Integration (Item.integrate)
 */

static bool id_eq(uint32_t c1, uint32_t k1, uint32_t c2, uint32_t k2)
{
    return c1 == c2 && (c1 == NOC || k1 == k2);
}

/*
 * yata_integrate links item x (fields set: client, clock, len, left, right, origin, right
 * origin, parent, psub, content) into its parent and the store.
 */
static void yata_integrate(struct td_ydoc *d, uint32_t x)
{
    struct yitem *X = &d->it[x];
    uint32_t t = X->parent;
    uint32_t left = X->left, right = X->right;
    if ((left == 0 && (right == 0 || d->it[right].left != 0)) ||
        (left != 0 && d->it[left].right != right)) {
        /* concurrent inserts between origin and rightOrigin: the YATA conflict loop */
        uint32_t o;
        if (left != 0) {
            o = d->it[left].right;
        } else if (X->psub != 0) {
            o = map_get(d, t, X->psub);
            while (o != 0 && d->it[o].left != 0)
                o = d->it[o].left;
        } else {
            o = d->ty[t].start;
        }
        struct iset *before = &d->s1, *conflicting = &d->s2;
        iset_clear(before);
        iset_clear(conflicting);
        uint64_t xclient = d->cl[X->client].id;
        while (o != 0 && o != right) {
            const struct yitem *O = &d->it[o];
            iset_add(before, o);
            iset_add(conflicting, o);
            if (id_eq(X->oc, X->ok, O->oc, O->ok)) {
                if (d->cl[O->client].id < xclient) {
                    left = o;
                    iset_clear(conflicting);
                } else if (id_eq(X->rc, X->rk, O->rc, O->rk)) {
                    break;
                }
            } else if (O->oc != NOC) {
                uint32_t oi = find_item(d, O->oc, O->ok);
                if (oi != 0 && iset_has(before, oi)) {
                    if (!iset_has(conflicting, oi)) {
                        left = o;
                        iset_clear(conflicting);
                    }
                } else {
                    break;
                }
            } else {
                break;
            }
            o = d->it[o].right;
        }
        X = &d->it[x];
        X->left = left;
    }
    /* link */
    if (left != 0) {
        X->right = d->it[left].right;
        d->it[left].right = x;
    } else {
        uint32_t r;
        if (X->psub != 0) {
            r = map_get(d, t, X->psub);
            while (r != 0 && d->it[r].left != 0)
                r = d->it[r].left;
        } else {
            r = d->ty[t].start;
            d->ty[t].start = x;
        }
        X->right = r;
    }
    if (X->right != 0) {
        d->it[X->right].left = x;
    } else if (X->psub != 0) {
        map_set(d, t, X->psub, x);
        if (left != 0)
            item_delete(d, left);
    }
    X = &d->it[x];
    if (X->psub == 0 && (X->flags & F_COUNTABLE) && !(X->flags & F_DELETED))
        d->ty[t].length += X->len;
    txn_touch(d, X->client);
    cl_append(d, X->client, x);
    /* content.integrate */
    X = &d->it[x];
    if (X->kind == TD_YK_DELETED) {
        txn_add_delete(d, X->client, X->clock, X->len);
        X->flags |= F_DELETED;
    } else if (X->kind == TD_YK_TYPE) {
        d->ty[X->coff].item = x;
    } else if (X->kind == TD_YK_FORMAT) {
        d->ty[t].has_format = 1;
    }
    type_changed(d, t);
    uint32_t pit = d->ty[t].item;
    if ((pit != 0 && (d->it[pit].flags & F_DELETED)) || (X->psub != 0 && X->right != 0))
        item_delete(d, x);
}

/* gc_integrate adds a GC struct (GC.integrate). */
static void gc_integrate(struct td_ydoc *d, uint32_t ci, uint32_t clock, uint32_t len)
{
    uint32_t x = item_new(d);
    struct yitem *X = &d->it[x];
    X->client = ci;
    X->clock = clock;
    X->len = len;
    X->kind = TD_YK_GC;
    X->flags = F_DELETED;
    txn_touch(d, ci);
    cl_append(d, ci, x);
}

/* set_content copies the content of s, from clock offset `offset`, into item x. */
static void set_content(struct td_ydoc *d, uint32_t x, const struct td_ystruct *s, uint32_t offset)
{
    struct yitem *X = &d->it[x];
    X->kind = s->kind;
    X->flags = kind_countable(s->kind) ? F_COUNTABLE : 0;
    if (s->enc == TD_YV_ANY)
        X->flags |= F_ANYENC;
    const uint8_t *p = s->data.p;
    size_t n = s->data.len;
    switch (s->kind) {
    case TD_YK_STRING:
        if (offset > 0) {
            size_t off = 0;
            bool mid = false;
            td_lib0_utf16_to_byte(p, n, offset, &off, &mid);
            if (mid) {
                static const uint8_t fffd[3] = {0xef, 0xbf, 0xbd};
                cb_reserve(d, 3 + n - off - 4);
                X = &d->it[x];
                X->coff = cb_add(d, fffd, 3);
                cb_add(d, p + off + 4, n - off - 4);
                X->cbytes = (uint32_t)(n - off - 1);
                break;
            }
            p += off;
            n -= off;
        }
        X->coff = cb_add(d, p, n);
        X->cbytes = (uint32_t)n;
        if (is_ascii(p, n))
            X->flags |= F_ASCII;
        break;
    case TD_YK_ANY:
    case TD_YK_JSON:
        if (offset > 0) {
            size_t off = skip_values(p, n, s->kind, s->enc == TD_YV_ANY, offset);
            p += off;
            n -= off;
        }
        X->coff = cb_add(d, p, n);
        X->cbytes = (uint32_t)n;
        break;
    case TD_YK_BINARY:
    case TD_YK_EMBED:
        X->coff = cb_add(d, p, n);
        X->cbytes = (uint32_t)n;
        break;
    case TD_YK_FORMAT:
    case TD_YK_DOC: {
        uint8_t kl[4] = {(uint8_t)s->key.len, (uint8_t)(s->key.len >> 8),
                         (uint8_t)(s->key.len >> 16), (uint8_t)(s->key.len >> 24)};
        cb_reserve(d, 4 + s->key.len + n);
        X = &d->it[x];
        X->coff = cb_add(d, kl, 4);
        cb_add(d, s->key.p, s->key.len);
        cb_add(d, p, n);
        X->cbytes = (uint32_t)(4 + s->key.len + n);
        break;
    }
    case TD_YK_TYPE: {
        uint32_t t = type_new(d, s->type_ref);
        if (s->key.len > 0 || s->type_ref == TD_YT_XML_ELEMENT || s->type_ref == TD_YT_XML_HOOK)
            d->ty[t].nodename = str_intern(d, s->key.p, s->key.len);
        X = &d->it[x];
        X->coff = t;
        X->cbytes = 0;
        break;
    }
    default: /* DELETED */
        X->coff = 0;
        X->cbytes = 0;
        break;
    }
}

/*
 * missing_client implements the checks of Item.getMissing: returns the wire client id whose
 * state is too low for s, via *miss, and true; false if nothing is missing.
 */
static bool struct_missing(const struct td_ydoc *d, const struct td_ystruct *s, uint64_t *miss)
{
    if (s->kind == TD_YK_GC || s->kind == TD_YK_SKIP)
        return false;
    if ((s->flags & TD_YS_HAS_ORIGIN) && s->origin.client != s->id.client &&
        s->origin.clock >= state_of(d, s->origin.client)) {
        *miss = s->origin.client;
        return true;
    }
    if ((s->flags & TD_YS_HAS_RIGHT_ORIGIN) && s->right_origin.client != s->id.client &&
        s->right_origin.clock >= state_of(d, s->right_origin.client)) {
        *miss = s->right_origin.client;
        return true;
    }
    if (!(s->flags & (TD_YS_HAS_ORIGIN | TD_YS_HAS_RIGHT_ORIGIN)) && s->parent == TD_YP_ID &&
        s->parent_id.client != s->id.client &&
        s->parent_id.clock >= state_of(d, s->parent_id.client)) {
        *miss = s->parent_id.client;
        return true;
    }
    return false;
}

/* integrate_struct resolves s (getMissing, nothing missing) and integrates it from offset. */
static void integrate_struct(struct td_ydoc *d, const struct td_ystruct *s, uint32_t offset)
{
    uint32_t ci = client_ensure(d, s->id.client);
    uint32_t clock = (uint32_t)s->id.clock;
    uint32_t len = (uint32_t)s->len;
    if (s->kind == TD_YK_GC) {
        gc_integrate(d, ci, clock + offset, len - offset);
        return;
    }
    bool has_o = s->flags & TD_YS_HAS_ORIGIN, has_r = s->flags & TD_YS_HAS_RIGHT_ORIGIN;
    uint32_t left = 0, right = 0, oc = NOC, ok = 0, rc = NOC, rk = 0;
    if (has_o) {
        uint32_t c = client_get(d, s->origin.client);
        const struct yclient *C = &d->cl[c];
        if ((uint32_t)s->origin.clock + 1 == C->state)
            left = at(C, pos_last(C)); /* the client's last struct ends there: no split */
        else
            left = clean_end(d, c, (uint32_t)s->origin.clock);
        oc = d->it[left].client;
        ok = d->it[left].clock + d->it[left].len - 1;
    }
    if (has_r) {
        uint32_t c = client_get(d, s->right_origin.client);
        uint32_t rclock = (uint32_t)s->right_origin.clock;
        /* consecutive structs often share their right origin (the parts of a split item) */
        if (d->ro_item != 0 && d->ro_ci == c && d->ro_clock == rclock) {
            right = d->ro_item;
        } else {
            right = clean_start(d, c, rclock);
            d->ro_ci = c;
            d->ro_clock = rclock;
            d->ro_item = right;
        }
        rc = d->it[right].client;
        rk = d->it[right].clock;
    }
    uint32_t parent = 0, psub = 0;
    if ((left != 0 && d->it[left].kind == TD_YK_GC) ||
        (right != 0 && d->it[right].kind == TD_YK_GC)) {
        parent = 0;
    } else if (has_o || has_r) {
        uint32_t from = (left != 0) ? left : right;
        parent = d->it[from].parent;
        psub = d->it[from].psub;
    } else {
        if (s->parent == TD_YP_ROOT) {
            parent = root_ensure(d, s->parent_name.p, s->parent_name.len);
        } else if (s->parent == TD_YP_ID) {
            uint32_t pi =
                find_item(d, client_get(d, s->parent_id.client), (uint32_t)s->parent_id.clock);
            if (pi != 0 && d->it[pi].kind == TD_YK_TYPE)
                parent = d->it[pi].coff;
        }
        if (parent != 0 && (s->flags & TD_YS_HAS_PARENT_SUB))
            psub = str_intern(d, s->parent_sub.p, s->parent_sub.len);
    }
    if (offset > 0) {
        clock += offset;
        len -= offset;
        left = clean_end(d, ci, clock - 1);
        oc = d->it[left].client;
        ok = d->it[left].clock + d->it[left].len - 1;
        if (d->it[left].kind == TD_YK_GC)
            parent = 0; /* yjs would fail here; a GC struct is the safe reading */
    }
    if (parent == 0) {
        gc_integrate(d, ci, clock, len);
        return;
    }
    uint32_t x = item_new(d);
    set_content(d, x, s, offset);
    struct yitem *X = &d->it[x];
    X->client = ci;
    X->clock = clock;
    X->len = len;
    X->left = left;
    X->right = right;
    X->oc = oc;
    X->ok = ok;
    X->rc = rc;
    X->rk = rk;
    X->parent = parent;
    X->psub = psub;
    yata_integrate(d, x);
}

/* ------------------------------------------------------------------------------------------
 * Applying updates (readUpdateV2, integrateStructs, readAndApplyDeleteSet)
 */

struct cref {
    uint64_t client;
    size_t first, n, i;
    bool gone;
};

static int cmp_cref(const void *a, const void *b)
{
    const struct cref *x = a, *y = b;
    return x->client < y->client ? -1 : x->client > y->client ? 1 : 0;
}

static struct cref *cref_find(struct cref *v, size_t n, uint64_t client)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid].client < client)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && v[lo].client == client && !v[lo].gone) ? &v[lo] : NULL;
}

/* One client's rest structs: a slice of u->structs, or one struct. */
struct rest {
    uint64_t client;
    size_t first, n;
};

static void missing_add(struct idrange **m, size_t *n, size_t *cap, uint64_t client, uint32_t clock)
{
    for (size_t i = 0; i < *n; i++) {
        if ((*m)[i].client == client) {
            if ((*m)[i].clock > clock)
                (*m)[i].clock = clock;
            return;
        }
    }
    GROW(*m, *n, *cap, 1);
    (*m)[(*n)++] = (struct idrange){client, clock, 0};
}

static int cmp_rest_desc(const void *a, const void *b)
{
    const struct rest *x = a, *y = b;
    return x->client > y->client ? -1 : x->client < y->client ? 1 : 0;
}

/*
 * integrate_structs integrates what it can of u (Yjs integrateStructs) and writes the rest, if
 * any, as a v1 update to rest_out with the missing clocks in *miss.
 */
static void integrate_structs(struct td_ydoc *d, const struct td_yupdate *u,
                              struct td_buf *rest_out, struct idrange **miss, size_t *nmiss,
                              size_t *capmiss)
{
    if (u->nruns == 0)
        return;
    struct cref *refs = td_xmalloc(u->nruns * sizeof(*refs));
    size_t nrefs = 0;
    /* a later run of the same client replaces an earlier one, as in readClientsStructRefs */
    for (size_t r = 0; r < u->nruns; r++) {
        size_t k;
        for (k = 0; k < nrefs; k++)
            if (refs[k].client == u->runs[r].client)
                break;
        refs[k] = (struct cref){u->runs[r].client, u->runs[r].first, u->runs[r].n, 0, false};
        if (k == nrefs)
            nrefs++;
    }
    qsort(refs, nrefs, sizeof(*refs), cmp_cref);
    size_t nids = nrefs; /* refs[0..nids) not yet popped (ascending; take from the end) */
    struct rest *rest = NULL;
    size_t nrest = 0, caprest = 0;
    size_t *stack = NULL; /* struct indices */
    size_t nstack = 0, capstack = 0;

    struct cref *cur = NULL;
    /* getNextStructTarget */
#define NEXT_TARGET()                                                                              \
    do {                                                                                           \
        cur = NULL;                                                                                \
        while (nids > 0) {                                                                         \
            struct cref *c_ = &refs[nids - 1];                                                     \
            if (!c_->gone && c_->i < c_->n) {                                                      \
                cur = c_;                                                                          \
                break;                                                                             \
            }                                                                                      \
            nids--;                                                                                \
        }                                                                                          \
    } while (0)

    NEXT_TARGET();
    if (cur == NULL)
        goto done;
    size_t head = cur->first + cur->i++;
    for (;;) {
        const struct td_ystruct *s = &u->structs[head];
        if (s->kind != TD_YK_SKIP) {
            uint32_t local = state_of(d, s->id.client);
            bool gap = s->id.clock > local;
            uint64_t mc = 0;
            bool push_rest = false;
            if (gap) {
                GROW(stack, nstack, capstack, 1);
                stack[nstack++] = head;
                missing_add(miss, nmiss, capmiss, s->id.client, (uint32_t)s->id.clock - 1);
                push_rest = true;
            } else if (struct_missing(d, s, &mc)) {
                GROW(stack, nstack, capstack, 1);
                stack[nstack++] = head;
                struct cref *t = cref_find(refs, nrefs, mc);
                if (t == NULL || t->i == t->n) {
                    missing_add(miss, nmiss, capmiss, mc, state_of(d, mc));
                    push_rest = true;
                } else {
                    head = t->first + t->i++;
                    continue;
                }
            } else {
                uint32_t offset = local - (uint32_t)s->id.clock;
                if (offset < s->len)
                    integrate_struct(d, s, offset);
            }
            if (push_rest) {
                /* addStackToRestSS */
                for (size_t k = 0; k < nstack; k++) {
                    uint64_t client = u->structs[stack[k]].id.client;
                    struct cref *t = cref_find(refs, nrefs, client);
                    struct rest rs;
                    if (t != NULL) {
                        t->i--;
                        rs = (struct rest){client, t->first + t->i, t->n - t->i};
                        t->gone = true;
                        t->n = 0;
                        t->i = 0;
                    } else {
                        rs = (struct rest){client, stack[k], 1};
                    }
                    size_t j;
                    for (j = 0; j < nrest; j++)
                        if (rest[j].client == client)
                            break;
                    if (j == nrest) {
                        GROW(rest, nrest, caprest, 1);
                        nrest++;
                    }
                    rest[j] = rs;
                }
                nstack = 0;
            }
        }
        if (nstack > 0) {
            head = stack[--nstack];
        } else if (cur != NULL && !cur->gone && cur->i < cur->n) {
            head = cur->first + cur->i++;
        } else {
            NEXT_TARGET();
            if (cur == NULL)
                break;
            head = cur->first + cur->i++;
        }
    }
#undef NEXT_TARGET
done:
    if (nrest > 0) {
        qsort(rest, nrest, sizeof(*rest), cmp_rest_desc);
        struct td_yupdate ru;
        td_yupdate_init(&ru);
        for (size_t j = 0; j < nrest; j++) {
            td_yupdate_add_run(&ru, rest[j].client);
            for (size_t k = 0; k < rest[j].n; k++)
                td_yupdate_add_struct(&ru, &u->structs[rest[j].first + k]);
        }
        td_yupdate_encode(&ru, 1, rest_out);
        td_yupdate_free(&ru);
    }
    free(rest);
    free(stack);
    free(refs);
}

static void idr_add(struct idrange **v, size_t *n, size_t *cap, uint64_t client, uint32_t clock,
                    uint32_t len)
{
    GROW(*v, *n, *cap, 1);
    (*v)[(*n)++] = (struct idrange){client, clock, len};
}

static int cmp_idr(const void *a, const void *b)
{
    const struct idrange *x = a, *y = b;
    if (x->client != y->client)
        return x->client > y->client ? -1 : 1;
    if (x->clock != y->clock)
        return x->clock < y->clock ? -1 : 1;
    return 0;
}

static size_t idr_sort_merge(struct idrange *r, size_t n)
{
    if (n == 0)
        return 0;
    qsort(r, n, sizeof(*r), cmp_idr);
    size_t w = 0;
    for (size_t i = 1; i < n; i++) {
        struct idrange *a = &r[w];
        if (r[i].client == a->client && r[i].clock <= a->clock + a->len) {
            uint32_t end = r[i].clock + r[i].len;
            if (end > a->clock + a->len)
                a->len = end - a->clock;
        } else {
            r[++w] = r[i];
        }
    }
    return w + 1;
}

/* apply_ds applies delete ranges; what is beyond the known state goes to *un. */
static void apply_ds(struct td_ydoc *d, const struct idrange *ds, size_t nds, struct idrange **un,
                     size_t *nun, size_t *capun)
{
    for (size_t k = 0; k < nds; k++) {
        uint64_t client = ds[k].client;
        uint32_t clock = ds[k].clock, end = ds[k].clock + ds[k].len;
        if (ds[k].len == 0)
            continue;
        uint32_t ci = client_get(d, client);
        uint32_t state = ci == NOC ? 0 : d->cl[ci].state;
        if (clock >= state) {
            idr_add(un, nun, capun, client, clock, end - clock);
            continue;
        }
        if (state < end)
            idr_add(un, nun, capun, client, state, end - state);
        struct yclient *c = &d->cl[ci];
        struct pos p = cl_find(d, c, clock);
        uint32_t x = at(c, p);
        if (!(d->it[x].flags & F_DELETED) && d->it[x].clock < clock) {
            split_item(d, x, clock - d->it[x].clock, &p);
            c = &d->cl[ci];
            pos_next(c, &p);
        }
        for (;;) {
            x = at(c, p);
            struct yitem *X = &d->it[x];
            if (X->clock >= end)
                break;
            if (!(X->flags & F_DELETED)) {
                if (end < X->clock + X->len)
                    split_item(d, x, end - X->clock, &p);
                item_delete(d, x);
            }
            c = &d->cl[ci];
            if (!pos_next(c, &p))
                break;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Writing structs (Item.write with offset, writeStructs, createDeleteSetFromStructStore)
 */

static void item_to_ystruct(const struct td_ydoc *d, struct td_yupdate *u, uint32_t x,
                            uint32_t offset, struct td_ystruct *s)
{
    const struct yitem *X = &d->it[x];
    memset(s, 0, sizeof(*s));
    s->id.client = d->cl[X->client].id;
    s->id.clock = X->clock + offset;
    s->len = X->len - offset;
    s->kind = X->kind;
    if (X->kind == TD_YK_GC)
        return;
    if (offset > 0) {
        s->flags |= TD_YS_HAS_ORIGIN;
        s->origin = (struct td_yid){s->id.client, s->id.clock - 1};
    } else if (X->oc != NOC) {
        s->flags |= TD_YS_HAS_ORIGIN;
        s->origin = (struct td_yid){d->cl[X->oc].id, X->ok};
    }
    if (X->rc != NOC) {
        s->flags |= TD_YS_HAS_RIGHT_ORIGIN;
        s->right_origin = (struct td_yid){d->cl[X->rc].id, X->rk};
    }
    if (X->psub != 0)
        s->flags |= TD_YS_HAS_PARENT_SUB;
    if (!(s->flags & (TD_YS_HAS_ORIGIN | TD_YS_HAS_RIGHT_ORIGIN))) {
        const struct ytype *T = &d->ty[X->parent];
        if (T->item == 0) {
            s->parent = TD_YP_ROOT;
            s->parent_name = (struct td_ybytes){str_ptr(d, T->name), d->sv[T->name].len};
        } else {
            const struct yitem *P = &d->it[T->item];
            s->parent = TD_YP_ID;
            s->parent_id = (struct td_yid){d->cl[P->client].id, P->clock};
        }
        if (X->psub != 0)
            s->parent_sub = (struct td_ybytes){str_ptr(d, X->psub), d->sv[X->psub].len};
    }
    s->enc = (X->flags & F_ANYENC) ? TD_YV_ANY : TD_YV_JSON_TEXT;
    const uint8_t *p = d->cb + X->coff;
    size_t n = X->cbytes;
    switch (X->kind) {
    case TD_YK_STRING:
        if (offset > 0) {
            bool mid;
            size_t off = str_split_at(d, X, offset, &mid);
            if (mid) {
                /* JavaScript slices the pair; TextEncoder writes U+FFFD for the lone half */
                uint8_t *tmp = td_xmalloc(n - off - 1);
                memcpy(tmp, "\xef\xbf\xbd", 3);
                memcpy(tmp + 3, p + off + 4, n - off - 4);
                p = td_yupdate_alloc(u, tmp, n - off - 1);
                n = n - off - 1;
                free(tmp);
            } else {
                p += off;
                n -= off;
            }
        }
        s->data = (struct td_ybytes){p, n};
        break;
    case TD_YK_ANY:
    case TD_YK_JSON:
        if (offset > 0) {
            size_t off = skip_values(p, n, X->kind, X->flags & F_ANYENC, offset);
            p += off;
            n -= off;
        }
        s->data = (struct td_ybytes){p, n};
        break;
    case TD_YK_BINARY:
    case TD_YK_EMBED:
        s->data = (struct td_ybytes){p, n};
        break;
    case TD_YK_FORMAT:
    case TD_YK_DOC: {
        uint32_t kl =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        s->key = (struct td_ybytes){p + 4, kl};
        s->data = (struct td_ybytes){p + 4 + kl, n - 4 - kl};
        break;
    }
    case TD_YK_TYPE: {
        const struct ytype *T = &d->ty[X->coff];
        s->type_ref = T->tref;
        if (T->nodename != 0)
            s->key = (struct td_ybytes){str_ptr(d, T->nodename), d->sv[T->nodename].len};
        break;
    }
    default:
        break;
    }
}

static int cmp_u32_client_desc(const void *a, const void *b, const struct td_ydoc *d)
{
    uint64_t x = d->cl[*(const uint32_t *)a].id, y = d->cl[*(const uint32_t *)b].id;
    return x > y ? -1 : x < y ? 1 : 0;
}

/* sort client indices by client id, descending (insertion sort: lists are short or sorted) */
static void sort_clients_desc(const struct td_ydoc *d, uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t k = v[i];
        size_t j = i;
        while (j > 0 && cmp_u32_client_desc(&v[j - 1], &k, d) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = k;
    }
}

/* write_client_structs adds client ci's structs from clock `from` (writeStructs). */
static void write_client_structs(const struct td_ydoc *d, struct td_yupdate *u, uint32_t ci,
                                 uint32_t from)
{
    struct yclient *c = &((struct td_ydoc *)d)->cl[ci];
    if (c->nblk == 0 || from >= c->state)
        return;
    uint32_t first = c->bfirst[0];
    if (from < first)
        from = first;
    struct pos p = cl_find(d, c, from);
    td_yupdate_add_run(u, c->id);
    struct td_ystruct s;
    item_to_ystruct(d, u, at(c, p), from - d->it[at(c, p)].clock, &s);
    td_yupdate_add_struct(u, &s);
    while (pos_next(c, &p)) {
        item_to_ystruct(d, u, at(c, p), 0, &s);
        td_yupdate_add_struct(u, &s);
    }
}

/* write_store_ds adds the delete set derived from the store. */
static void write_store_ds(const struct td_ydoc *d, struct td_yupdate *u)
{
    for (uint32_t ci = 0; ci < d->ncl; ci++) {
        const struct yclient *c = &d->cl[ci];
        uint32_t start = 0, len = 0;
        bool open = false;
        for (uint32_t b = 0; b < c->nblk; b++) {
            const struct yblk *k = c->blk[b];
            for (uint32_t i = 0; i < k->n; i++) {
                const struct yitem *X = &d->it[k->it[i]];
                if (X->flags & F_DELETED) {
                    if (open && start + len == X->clock) {
                        len += X->len;
                    } else {
                        if (open)
                            td_yupdate_add_delete(u, c->id, start, len);
                        open = true;
                        start = X->clock;
                        len = X->len;
                    }
                }
            }
        }
        if (open)
            td_yupdate_add_delete(u, c->id, start, len);
    }
}

/* ------------------------------------------------------------------------------------------
 * Transactions
 */

static void txn_begin(struct td_ydoc *d, bool local)
{
    d->in_txn = true;
    d->txn_local = local;
    d->txn_gen++;
    if (d->txn_gen == 0) {
        for (uint32_t i = 0; i < d->ncl; i++)
            d->cl[i].txn_gen = 0;
        d->txn_gen = 1;
    }
    d->ntouched = 0;
    d->ntds = 0;
    d->nms = 0;
    d->ro_item = 0;
}

/* txn_write_update appends the transaction's update (writeUpdateMessageFromTransaction). */
static void txn_write_update(struct td_ydoc *d, int version, struct td_buf *out)
{
    uint32_t *cls = td_xmalloc((d->ntouched + 1) * sizeof(*cls));
    size_t n = 0;
    for (uint32_t k = 0; k < d->ntouched; k++) {
        uint32_t ci = d->touched[k];
        if (d->cl[ci].state != d->cl[ci].txn_before)
            cls[n++] = ci;
    }
    if (n == 0 && d->ntds == 0) {
        free(cls);
        return;
    }
    sort_clients_desc(d, cls, n);
    struct td_yupdate u;
    td_yupdate_init(&u);
    for (size_t k = 0; k < n; k++)
        write_client_structs(d, &u, cls[k], d->cl[cls[k]].txn_before);
    for (size_t k = 0; k < d->ntds; k++)
        td_yupdate_add_delete(&u, d->cl[d->tds[k].client].id, d->tds[k].clock, d->tds[k].len);
    td_yupdate_sort_ds(&u);
    td_yupdate_encode(&u, version, out);
    td_yupdate_free(&u);
    free(cls);
}

static void txn_end(struct td_ydoc *d, int version, struct td_buf *out)
{
    txn_gc_and_merge(d);
    if (out != NULL)
        txn_write_update(d, version, out);
    d->in_txn = false;
    d->txn_explicit = false;
    d->txn_gen++;
    if (d->txn_gen == 0) {
        for (uint32_t i = 0; i < d->ncl; i++)
            d->cl[i].txn_gen = 0;
        d->txn_gen = 1;
    }
}

/* ------------------------------------------------------------------------------------------
 * Remote updates
 */

static int validate_update(const struct td_ydoc *d, const struct td_yupdate *u, size_t pending_n,
                           size_t *content)
{
    size_t bytes = 0;
    for (size_t i = 0; i < u->nstructs; i++) {
        const struct td_ystruct *s = &u->structs[i];
        if (s->len == 0)
            return TD_EPROTO;
        if (s->id.clock + s->len > MAX_CLOCK)
            return TD_ELIMIT;
        if (s->kind == TD_YK_GC || s->kind == TD_YK_SKIP)
            continue;
        if (s->kind == TD_YK_TYPE && s->type_ref > TD_YT_XML_TEXT)
            return TD_EPROTO;
        if (s->kind > TD_YK_SKIP)
            return TD_EPROTO;
        if ((s->kind == TD_YK_BINARY || s->kind == TD_YK_EMBED || s->kind == TD_YK_FORMAT ||
             s->kind == TD_YK_TYPE || s->kind == TD_YK_DOC) &&
            s->len != 1)
            return TD_EPROTO;
        /* STRING content is valid UTF-8: td_yupdate_decode rejects anything else */
        if (s->flags & TD_YS_HAS_ORIGIN) {
            if (s->origin.clock >= MAX_CLOCK)
                return TD_ELIMIT;
            if (s->origin.client == s->id.client && s->origin.clock >= s->id.clock)
                return TD_EPROTO;
        }
        if (s->flags & TD_YS_HAS_RIGHT_ORIGIN) {
            if (s->right_origin.clock >= MAX_CLOCK)
                return TD_ELIMIT;
            if (s->right_origin.client == s->id.client && s->right_origin.clock >= s->id.clock)
                return TD_EPROTO;
        }
        if (!(s->flags & (TD_YS_HAS_ORIGIN | TD_YS_HAS_RIGHT_ORIGIN))) {
            if (s->parent == TD_YP_ID) {
                if (s->parent_id.clock >= MAX_CLOCK)
                    return TD_ELIMIT;
                if (s->parent_id.client == s->id.client && s->parent_id.clock >= s->id.clock)
                    return TD_EPROTO;
            } else if (s->parent != TD_YP_ROOT) {
                return TD_EPROTO;
            }
        }
        bytes += s->data.len + s->key.len + s->parent_name.len + s->parent_sub.len + 8;
    }
    for (size_t i = 0; i < u->nds; i++)
        if (u->ds[i].clock + u->ds[i].len > MAX_CLOCK)
            return TD_ELIMIT;
    if ((size_t)d->nstructs + 3 * u->nstructs + 2 * u->nds + pending_n > d->lim.max_structs)
        return TD_ELIMIT;
    if (d->cblen + d->strs.len + 2 * bytes + d->pending.len > d->lim.max_content_bytes)
        return TD_ELIMIT;
    *content = bytes;
    return 0;
}

static void ds_from_update(const struct td_yupdate *u, struct idrange **v, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < u->nds; i++)
        idr_add(v, n, cap, u->ds[i].client, (uint32_t)u->ds[i].clock, (uint32_t)u->ds[i].len);
}

/* apply_core is readUpdateV2 inside an open transaction; u is decoded and validated. */
static void apply_core(struct td_ydoc *d, const struct td_yupdate *u)
{
    struct td_buf rest;
    td_buf_init(&rest);
    struct idrange *miss = NULL;
    size_t nmiss = 0, capmiss = 0;
    integrate_structs(d, u, &rest, &miss, &nmiss, &capmiss);
    bool retry = false;
    if (d->pending.len > 0) {
        for (size_t i = 0; i < d->nmissing; i++)
            if (d->missing[i].clock < state_of(d, d->missing[i].client))
                retry = true;
        if (rest.len > 0) {
            for (size_t i = 0; i < nmiss; i++)
                missing_add(&d->missing, &d->nmissing, &d->capmissing, miss[i].client,
                            miss[i].clock);
            const uint8_t *ups[2] = {d->pending.data, rest.data};
            size_t lens[2] = {d->pending.len, rest.len};
            struct td_buf merged;
            td_buf_init(&merged);
            if (td_yupdate_merge(ups, lens, 2, 1, &merged) == 0) {
                td_buf_free(&d->pending);
                d->pending = merged;
            } else {
                td_buf_free(&merged);
            }
        }
        td_buf_free(&rest);
    } else {
        td_buf_free(&d->pending);
        d->pending = rest;
        free(d->missing);
        d->missing = miss;
        d->nmissing = nmiss;
        d->capmissing = capmiss;
        miss = NULL;
    }
    free(miss);
    /* deletes of this update, then the pending ones */
    struct idrange *ds = NULL, *un = NULL;
    size_t nds = 0, capds = 0, nun = 0, capun = 0;
    ds_from_update(u, &ds, &nds, &capds);
    apply_ds(d, ds, nds, &un, &nun, &capun);
    free(ds);
    if (d->npds > 0) {
        struct idrange *old = d->pds;
        size_t nold = d->npds;
        d->pds = NULL;
        d->npds = d->cappds = 0;
        apply_ds(d, old, nold, &un, &nun, &capun);
        free(old);
    }
    free(d->pds);
    d->pds = un;
    d->npds = idr_sort_merge(un, nun);
    d->cappds = capun;
    if (retry) {
        struct td_buf p = d->pending;
        td_buf_init(&d->pending);
        d->nmissing = 0;
        struct td_yupdate pu;
        td_yupdate_init(&pu);
        if (td_yupdate_decode(&pu, p.data, p.len, 1) == 0)
            apply_core(d, &pu);
        td_yupdate_free(&pu);
        td_buf_free(&p);
    }
}

static size_t pending_struct_count(const struct td_ydoc *d)
{
    if (d->pending.len == 0)
        return 0;
    struct td_yupdate u;
    td_yupdate_init(&u);
    size_t n = 0;
    if (td_yupdate_decode(&u, d->pending.data, d->pending.len, 1) == 0)
        n = u.nstructs;
    td_yupdate_free(&u);
    return n;
}

int td_ydoc_apply(struct td_ydoc *d, const uint8_t *buf, size_t len, int version,
                  struct td_buf *out)
{
    if ((version != 1 && version != 2) || d->in_txn)
        return TD_EINVAL;
    if (len > d->lim.max_update_bytes)
        return TD_ELIMIT;
    struct td_yupdate u;
    td_yupdate_init(&u);
    int rv = td_yupdate_decode(&u, buf, len, version);
    size_t content = 0;
    if (rv == 0)
        rv = validate_update(d, &u, d->pending.len / 2, &content);
    if (rv < 0) {
        td_yupdate_free(&u);
        return rv;
    }
    /* room for the structs and their content up front (a full state loads without regrowing;
     * splits may still need a few more items) */
    uint32_t need = d->nit + (uint32_t)u.nstructs;
    if (need > d->capit && u.nstructs > 256)
        it_reserve(d, need + need / 16);
    if (u.nstructs > 256)
        cb_reserve(d, content);
    txn_begin(d, false);
    apply_core(d, &u);
    txn_end(d, version, out);
    td_yupdate_free(&u);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Local edits
 */

static int local_begin(struct td_ydoc *d, bool *implicit, size_t bytes)
{
    if (d->nstructs + 4 > d->lim.max_structs || d->cblen + bytes > d->lim.max_content_bytes)
        return TD_ELIMIT;
    *implicit = !d->in_txn;
    if (*implicit)
        txn_begin(d, true);
    return 0;
}

static void local_end(struct td_ydoc *d, bool implicit)
{
    if (implicit)
        txn_end(d, 1, NULL);
}

static uint32_t root_of(struct td_ydoc *d, const char *root)
{
    uint32_t s = d->last_root_name;
    if (s != 0) {
        /* names are short: compare in place instead of strlen + memcmp */
        const uint8_t *q = str_ptr(d, s);
        uint32_t n = d->sv[s].len, i = 0;
        while (i < n && root[i] != '\0' && (uint8_t)root[i] == q[i])
            i++;
        if (i == n && root[n] == '\0')
            return d->last_root;
    }
    uint32_t t = root_ensure(d, (const uint8_t *)root, strlen(root));
    d->last_root_name = d->ty[t].name;
    d->last_root = t;
    return t;
}

static inline bool counted(const struct yitem *X)
{
    return (X->flags & (F_DELETED | F_COUNTABLE)) == F_COUNTABLE;
}

/* cache_set records a position of type t after a local edit (see struct ytype). */
static inline void cache_set(struct td_ydoc *d, uint32_t t, uint32_t item, uint32_t index,
                             uint32_t hi)
{
    struct ytype *T = &d->ty[t];
    T->cur_item = item;
    T->cur_index = index;
    T->cur_hi = hi;
}

/*
 * find_left walks type t to UTF-16/element index (0 < index <= length), splitting the item
 * the index falls into, and returns the item that ends exactly there (findNextPosition).
 */
static uint32_t find_left(struct td_ydoc *d, uint32_t t, uint32_t index)
{
    const struct ytype *T = &d->ty[t];
    uint32_t p = T->start, pidx = 0;
    if (T->cur_item != 0) {
        uint32_t dist = T->cur_index > index ? T->cur_index - index : index - T->cur_index;
        if (dist < index) {
            p = (index >= T->cur_index && T->cur_hi != 0) ? T->cur_hi : T->cur_item;
            pidx = T->cur_index;
        }
    }
    while (pidx > index) {
        p = d->it[p].left;
        if (counted(&d->it[p]))
            pidx -= d->it[p].len;
    }
    uint32_t left = d->it[p].left;
    uint32_t count = index - pidx;
    uint32_t r = p;
    while (r != 0 && count > 0) {
        struct yitem *R = &d->it[r];
        if (!(R->flags & F_DELETED) && R->kind != TD_YK_FORMAT) {
            if (count < R->len)
                split_item(d, r, count, NULL);
            R = &d->it[r];
            count -= R->len;
        }
        left = r;
        r = d->it[r].right;
    }
    return left;
}

/* new_local_item creates and integrates an item of the local client between left and right. */
static uint32_t new_local_item(struct td_ydoc *d, uint32_t t, uint32_t psub, uint32_t left,
                               uint32_t right, uint8_t kind, const uint8_t *p, size_t n,
                               uint32_t len)
{
    if (d->local_ci == NOC)
        d->local_ci = client_ensure(d, d->client_id);
    uint32_t ci = d->local_ci;
    uint32_t x = item_new(d);
    struct yitem *X = &d->it[x];
    X->client = ci;
    X->clock = d->cl[ci].state;
    X->len = len;
    X->kind = kind;
    X->flags = F_COUNTABLE;
    if (kind == TD_YK_STRING && len == n) /* as many UTF-16 units as bytes: ASCII */
        X->flags |= F_ASCII;
    X->left = left;
    X->right = right;
    if (left != 0) {
        X->oc = d->it[left].client;
        X->ok = d->it[left].clock + d->it[left].len - 1;
    }
    if (right != 0) {
        X->rc = d->it[right].client;
        X->rk = d->it[right].clock;
    }
    X->parent = t;
    X->psub = psub;
    uint32_t off = cb_add(d, p, n);
    X = &d->it[x];
    X->coff = off;
    X->cbytes = (uint32_t)n;
    yata_integrate(d, x);
    return x;
}

/* try_extend appends content to `left` if Yjs would merge a new item there (same client,
 * next clock, same right origin, nothing in between). Returns true if it did. */
static bool try_extend(struct td_ydoc *d, uint32_t t, uint32_t left, uint32_t right, uint8_t kind,
                       const uint8_t *p, size_t n, uint32_t len)
{
    if (left == 0)
        return false;
    if (d->local_ci == NOC)
        d->local_ci = client_get(d, d->client_id);
    uint32_t ci = d->local_ci;
    struct yitem *L = &d->it[left];
    if (ci == NOC || L->client != ci || L->clock + L->len != d->cl[ci].state || L->kind != kind ||
        (L->flags & F_DELETED) || L->right != right || L->psub != 0)
        return false;
    if (right == 0 ? L->rc != NOC : (L->rc != d->it[right].client || L->rk != d->it[right].clock))
        return false;
    txn_touch(d, ci);
    if (L->coff + L->cbytes != d->cblen) {
        cb_reserve(d, (size_t)L->cbytes + n);
        L = &d->it[left];
        uint32_t off = cb_add(d, d->cb + L->coff, L->cbytes);
        d->cbwaste += L->cbytes;
        L->coff = off;
    }
    cb_add(d, p, n);
    L = &d->it[left];
    L->cbytes += (uint32_t)n;
    L->len += len;
    if (kind == TD_YK_STRING && len != n)
        L->flags &= (uint8_t)~F_ASCII;
    d->ty[t].length += len;
    /* the client's struct array ends with L: only the state moves */
    d->cl[ci].state += len;
    return true;
}

int td_ydoc_text_insert(struct td_ydoc *d, const char *root, uint64_t index, const char *text,
                        size_t n)
{
    const uint8_t *p = (const uint8_t *)text;
    size_t u16 = n;
    if (!is_ascii(p, n)) {
        if (!td_utf8_valid(p, n))
            return TD_EUTF8;
        u16 = td_lib0_utf16_len(p, n);
    }
    uint32_t t = root_of(d, root);
    if (index > d->ty[t].length)
        return TD_EINVAL;
    if (u16 == 0)
        return 0;
    if (u16 > MAX_CLOCK / 2)
        return TD_ELIMIT;
    bool implicit;
    int rv = local_begin(d, &implicit, n);
    if (rv < 0)
        return rv;
    uint32_t left = index == 0 ? 0 : find_left(d, t, (uint32_t)index);
    uint32_t right = left ? d->it[left].right : d->ty[t].start;
    while (right != 0 && (d->it[right].flags & F_DELETED)) {
        left = right;
        right = d->it[right].right;
    }
    if (try_extend(d, t, left, right, TD_YK_STRING, p, n, (uint32_t)u16)) {
        cache_set(d, t, left, (uint32_t)index + (uint32_t)u16 - d->it[left].len, 0);
    } else {
        uint32_t x = new_local_item(d, t, 0, left, right, TD_YK_STRING, p, n, (uint32_t)u16);
        cache_set(d, t, x, (uint32_t)index, 0);
    }
    local_end(d, implicit);
    return 0;
}

int td_ydoc_text_delete(struct td_ydoc *d, const char *root, uint64_t index, uint64_t len)
{
    uint32_t t = root_of(d, root);
    if (index > d->ty[t].length || len > d->ty[t].length - index)
        return TD_EINVAL;
    if (len == 0)
        return 0;
    bool implicit;
    int rv = local_begin(d, &implicit, 0);
    if (rv < 0)
        return rv;
    uint32_t left = index == 0 ? 0 : find_left(d, t, (uint32_t)index);
    uint32_t r = left ? d->it[left].right : d->ty[t].start;
    uint32_t first = r;
    uint32_t rem = (uint32_t)len;
    bool clean = true; /* everything walked is uncounted now */
    while (rem > 0 && r != 0) {
        struct yitem *R = &d->it[r];
        if (!(R->flags & F_DELETED)) {
            if (R->kind == TD_YK_STRING || R->kind == TD_YK_EMBED || R->kind == TD_YK_TYPE) {
                if (rem < R->len)
                    split_item(d, r, rem, NULL);
                rem -= d->it[r].len;
                item_delete(d, r);
            } else if (R->flags & F_COUNTABLE) {
                clean = false;
            }
        }
        r = d->it[r].right;
    }
    cache_set(d, t, first, (uint32_t)index, clean ? r : 0);
    local_end(d, implicit);
    return 0;
}

/* json_array_to_any converts the elements of a JSON array to Any values; *n = count. */
static int json_array_to_any(const char *json, size_t len, struct td_buf *out, uint32_t *n)
{
    struct td_json_doc jd;
    int rv = td_json_parse(&jd, json, len, NULL);
    if (rv < 0) {
        td_json_doc_free(&jd);
        return TD_EPROTO;
    }
    const struct td_json *root = td_json_root(&jd);
    if (root == NULL || root->type != TD_JSON_ARRAY) {
        td_json_doc_free(&jd);
        return TD_EPROTO;
    }
    for (size_t i = 0; i < root->n; i++) {
        rv = td_lib0_json_to_any(root->child[i].raw, root->child[i].raw_len, out);
        if (rv < 0)
            break;
    }
    *n = (uint32_t)root->n;
    td_json_doc_free(&jd);
    return rv < 0 ? TD_EPROTO : 0;
}

int td_ydoc_array_insert(struct td_ydoc *d, const char *root, uint64_t index, const char *json,
                         size_t n)
{
    struct td_buf any;
    td_buf_init(&any);
    uint32_t cnt = 0;
    int rv = json_array_to_any(json, n, &any, &cnt);
    uint32_t t = root_of(d, root);
    if (rv == 0 && index > d->ty[t].length)
        rv = TD_EINVAL;
    bool implicit = false;
    if (rv == 0 && cnt > 0)
        rv = local_begin(d, &implicit, any.len);
    if (rv < 0 || cnt == 0) {
        td_buf_free(&any);
        return rv;
    }
    uint32_t left = index == 0 ? 0 : find_left(d, t, (uint32_t)index);
    uint32_t right = left ? d->it[left].right : d->ty[t].start;
    if (try_extend(d, t, left, right, TD_YK_ANY, any.data, any.len, cnt)) {
        cache_set(d, t, left, (uint32_t)index + cnt - d->it[left].len, 0);
    } else {
        uint32_t x = new_local_item(d, t, 0, left, right, TD_YK_ANY, any.data, any.len, cnt);
        cache_set(d, t, x, (uint32_t)index, 0);
    }
    td_buf_free(&any);
    local_end(d, implicit);
    return 0;
}

int td_ydoc_array_delete(struct td_ydoc *d, const char *root, uint64_t index, uint64_t len)
{
    uint32_t t = root_of(d, root);
    if (index > d->ty[t].length || len > d->ty[t].length - index)
        return TD_EINVAL;
    if (len == 0)
        return 0;
    bool implicit;
    int rv = local_begin(d, &implicit, 0);
    if (rv < 0)
        return rv;
    uint32_t left = index == 0 ? 0 : find_left(d, t, (uint32_t)index);
    uint32_t r = left ? d->it[left].right : d->ty[t].start;
    uint32_t first = r;
    uint32_t rem = (uint32_t)len;
    while (rem > 0 && r != 0) {
        if (!(d->it[r].flags & F_DELETED)) {
            if (rem < d->it[r].len)
                split_item(d, r, rem, NULL);
            rem -= d->it[r].len;
            item_delete(d, r);
        }
        r = d->it[r].right;
    }
    /* no cur_hi: an array insert goes right after the live item, before any tombstones */
    cache_set(d, t, first, (uint32_t)index, 0);
    local_end(d, implicit);
    return 0;
}

int td_ydoc_map_set(struct td_ydoc *d, const char *root, const char *key, const char *json,
                    size_t n)
{
    struct td_buf any;
    td_buf_init(&any);
    if (td_lib0_json_to_any(json, n, &any) < 0) {
        td_buf_free(&any);
        return TD_EPROTO;
    }
    bool implicit;
    int rv = local_begin(d, &implicit, any.len + strlen(key));
    if (rv < 0) {
        td_buf_free(&any);
        return rv;
    }
    uint32_t t = root_of(d, root);
    uint32_t k = str_intern(d, (const uint8_t *)key, strlen(key));
    uint32_t left = map_get(d, t, k);
    new_local_item(d, t, k, left, 0, TD_YK_ANY, any.data, any.len, 1);
    td_buf_free(&any);
    local_end(d, implicit);
    return 0;
}

int td_ydoc_map_delete(struct td_ydoc *d, const char *root, const char *key)
{
    uint32_t t = root_of(d, root);
    uint32_t k = str_find(d, (const uint8_t *)key, strlen(key));
    uint32_t x = k == 0 ? 0 : map_get(d, t, k);
    if (x == 0)
        return 0;
    bool implicit;
    int rv = local_begin(d, &implicit, 0);
    if (rv < 0)
        return rv;
    item_delete(d, x);
    local_end(d, implicit);
    return 0;
}

void td_ydoc_begin(struct td_ydoc *d)
{
    if (!d->in_txn) {
        txn_begin(d, true);
        d->txn_explicit = true;
    }
}

int td_ydoc_commit(struct td_ydoc *d, struct td_buf *out, int version)
{
    if (!d->in_txn || !d->txn_explicit || (version != 1 && version != 2))
        return TD_EINVAL;
    txn_end(d, version, out);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Encoding the document
 */

void td_ydoc_state_vector(const struct td_ydoc *d, struct td_ysv *sv)
{
    sv->n = 0;
    for (uint32_t i = 0; i < d->ncl; i++)
        if (d->cl[i].state > 0)
            td_ysv_set(sv, d->cl[i].id, d->cl[i].state);
}

void td_ydoc_encode_sv(const struct td_ydoc *d, struct td_buf *out)
{
    struct td_ysv sv;
    td_ysv_init(&sv);
    td_ydoc_state_vector(d, &sv);
    td_ysv_encode(&sv, out);
    td_ysv_free(&sv);
}

int td_ydoc_encode_state(const struct td_ydoc *d, const struct td_ysv *target, int version,
                         struct td_buf *out)
{
    if (version != 1 && version != 2)
        return TD_EINVAL;
    uint32_t *cls = td_xmalloc((d->ncl + 1) * sizeof(*cls));
    size_t n = 0;
    for (uint32_t i = 0; i < d->ncl; i++) {
        uint64_t from = target ? td_ysv_get(target, d->cl[i].id) : 0;
        if (d->cl[i].state > from)
            cls[n++] = i;
    }
    sort_clients_desc(d, cls, n);
    struct td_yupdate u;
    td_yupdate_init(&u);
    for (size_t k = 0; k < n; k++) {
        uint64_t from = target ? td_ysv_get(target, d->cl[cls[k]].id) : 0;
        write_client_structs(d, &u, cls[k], (uint32_t)from);
    }
    free(cls);
    write_store_ds(d, &u);
    for (size_t k = 0; k < d->npds; k++)
        td_yupdate_add_delete(&u, d->pds[k].client, d->pds[k].clock, d->pds[k].len);
    td_yupdate_sort_ds(&u);
    int rv;
    if (d->pending.len == 0) {
        rv = td_yupdate_encode(&u, version, out);
        td_yupdate_free(&u);
        return rv;
    }
    /* merge in diffUpdate(pendingStructs, target) */
    struct td_buf state, pend, diff;
    td_buf_init(&state);
    td_buf_init(&pend);
    td_buf_init(&diff);
    rv = td_yupdate_encode(&u, version, &state);
    td_yupdate_free(&u);
    if (rv == 0 && version == 2)
        rv = td_yupdate_convert(d->pending.data, d->pending.len, 1, 2, &pend);
    else if (rv == 0)
        td_buf_append(&pend, d->pending.data, d->pending.len);
    struct td_ysv empty;
    td_ysv_init(&empty);
    if (rv == 0)
        rv = td_yupdate_diff(pend.data, pend.len, version, target ? target : &empty, &diff);
    td_ysv_free(&empty);
    if (rv == 0) {
        const uint8_t *ups[2] = {state.data, diff.data};
        size_t lens[2] = {state.len, diff.len};
        rv = td_yupdate_merge(ups, lens, 2, version, out);
    }
    td_buf_free(&state);
    td_buf_free(&pend);
    td_buf_free(&diff);
    return rv;
}

/* ------------------------------------------------------------------------------------------
 * Reading content
 */

static void write_type_json(const struct td_ydoc *d, uint32_t t, enum td_ydoc_as as,
                            struct td_buf *out, int depth);

static void write_text(const struct td_ydoc *d, uint32_t t, struct td_buf *out)
{
    for (uint32_t x = d->ty[t].start; x != 0; x = d->it[x].right) {
        const struct yitem *X = &d->it[x];
        if (!(X->flags & F_DELETED) && X->kind == TD_YK_STRING)
            td_buf_append(out, d->cb + X->coff, X->cbytes);
    }
}

/* write_value_json writes one JSON-text value (ContentJSON element or v1 embed/format). */
static void write_jsontext(struct td_buf *out, const uint8_t *p, size_t n)
{
    if ((n == 9 && memcmp(p, "undefined", 9) == 0) || !td_json_valid((const char *)p, n))
        td_buf_append_str(out, "null");
    else
        td_buf_append(out, p, n);
}

/* undef_to_null copies one Any value from r to out with every undefined turned into null
 * (the CLI contract prints undefined as null, also inside objects). */
static int undef_to_null(struct td_lib0_reader *r, struct td_buf *out, int depth)
{
    const uint8_t *start = r->p;
    uint8_t tag;
    uint64_t n;
    struct td_ybytes b;
    if (depth > TD_LIB0_MAX_DEPTH || td_lib0_read_u8(r, &tag) < 0)
        return TD_EPROTO;
    switch (tag) {
    case TD_LIB0_ANY_UNDEFINED:
        td_buf_append_byte(out, TD_LIB0_ANY_NULL);
        return 0;
    case TD_LIB0_ANY_OBJECT:
    case TD_LIB0_ANY_ARRAY:
        if (td_lib0_read_varuint(r, &n) < 0 || n > td_lib0_left(r))
            return TD_EPROTO;
        td_buf_append_byte(out, tag);
        td_lib0_write_varuint(out, n);
        for (uint64_t i = 0; i < n; i++) {
            if (tag == TD_LIB0_ANY_OBJECT) {
                if (td_lib0_read_varstring(r, &b) < 0)
                    return TD_EPROTO;
                td_lib0_write_varstring(out, b.p, b.len);
            }
            if (undef_to_null(r, out, depth + 1) < 0)
                return TD_EPROTO;
        }
        return 0;
    default:
        r->p = start;
        if (td_lib0_skip_any(r, 1) < 0)
            return TD_EPROTO;
        td_buf_append(out, start, (size_t)(r->p - start));
        return 0;
    }
}

static void write_any(struct td_buf *out, const uint8_t *p, size_t n, size_t *used)
{
    size_t before = out->len;
    struct td_lib0_reader r;
    td_lib0_reader_init(&r, p, n);
    struct td_buf v;
    td_buf_init(&v);
    if (undef_to_null(&r, &v, 0) == 0) {
        size_t u2;
        *used = (size_t)(r.p - p);
        int rv = td_lib0_any_to_json(v.data, v.len, out, &u2);
        td_buf_free(&v);
        if (rv == 0)
            return;
        out->len = before;
    } else {
        td_buf_free(&v);
    }
    if (td_lib0_any_to_json(p, n, out, used) < 0) {
        out->len = before;
        td_buf_append_str(out, "null");
        *used = n;
    }
}

static void write_xml(const struct td_ydoc *d, uint32_t t, struct td_buf *out, int depth);

/* write_elements writes the JSON array elements of item x's content (no brackets). */
static void write_elements(const struct td_ydoc *d, uint32_t x, struct td_buf *out, bool *first,
                           int depth)
{
    const struct yitem *X = &d->it[x];
    const uint8_t *p = d->cb + X->coff;
    size_t n = X->cbytes;
#define SEP()                                                                                      \
    do {                                                                                           \
        if (!*first)                                                                               \
            td_buf_append_byte(out, ',');                                                          \
        *first = false;                                                                            \
    } while (0)
    switch (X->kind) {
    case TD_YK_ANY:
        for (uint32_t i = 0; i < X->len && n > 0; i++) {
            SEP();
            size_t used = 0;
            write_any(out, p, n, &used);
            p += used;
            n -= used;
        }
        break;
    case TD_YK_JSON: {
        struct td_lib0_reader r;
        td_lib0_reader_init(&r, p, n);
        for (uint32_t i = 0; i < X->len; i++) {
            SEP();
            if (X->flags & F_ANYENC) {
                size_t used = 0;
                write_any(out, r.p, td_lib0_left(&r), &used);
                r.p += used;
            } else {
                struct td_ybytes b = {NULL, 0};
                if (td_lib0_read_varstring(&r, &b) < 0)
                    b.len = 0;
                write_jsontext(out, b.p, b.len);
            }
        }
        break;
    }
    case TD_YK_STRING: {
        /* a string in an array reads as one element per character */
        size_t i = 0;
        while (i < n) {
            size_t cl = (p[i] < 0x80) ? 1 : (p[i] < 0xe0) ? 2 : (p[i] < 0xf0) ? 3 : 4;
            if (i + cl > n)
                cl = n - i;
            SEP();
            td_json_write_string(out, (const char *)p + i, cl);
            i += cl;
        }
        break;
    }
    case TD_YK_BINARY:
        SEP();
        td_buf_append_byte(out, '[');
        for (size_t i = 0; i < n; i++)
            td_buf_appendf(out, i ? ",%u" : "%u", p[i]);
        td_buf_append_byte(out, ']');
        break;
    case TD_YK_EMBED:
        SEP();
        if (X->flags & F_ANYENC) {
            size_t used;
            write_any(out, p, n, &used);
        } else {
            write_jsontext(out, p, n);
        }
        break;
    case TD_YK_TYPE:
        SEP();
        write_type_json(d, X->coff, TD_YDOC_AS_AUTO, out, depth + 1);
        break;
    case TD_YK_DOC:
        SEP();
        td_buf_append_str(out, "null");
        break;
    default:
        break;
    }
#undef SEP
}

/* write_map_value writes the value of map item x (its last element). */
static void write_map_value(const struct td_ydoc *d, uint32_t x, struct td_buf *out, int depth)
{
    const struct yitem *X = &d->it[x];
    if ((X->kind == TD_YK_ANY || X->kind == TD_YK_JSON || X->kind == TD_YK_STRING) && X->len > 1) {
        struct td_buf tmp;
        td_buf_init(&tmp);
        bool first = true;
        write_elements(d, x, &tmp, &first, depth);
        /* the last element: re-split is costly, so write all and keep the tail */
        struct td_buf one;
        td_buf_init(&one);
        td_buf_append_byte(&one, '[');
        td_buf_append(&one, tmp.data, tmp.len);
        td_buf_append_byte(&one, ']');
        struct td_json_doc jd;
        if (td_json_parse(&jd, (const char *)one.data, one.len, NULL) == 0 &&
            td_json_root(&jd)->n > 0) {
            const struct td_json *last = &td_json_root(&jd)->child[td_json_root(&jd)->n - 1];
            td_buf_append(out, last->raw, last->raw_len);
        } else {
            td_buf_append_str(out, "null");
        }
        td_json_doc_free(&jd);
        td_buf_free(&one);
        td_buf_free(&tmp);
        return;
    }
    bool first = true;
    size_t before = out->len;
    write_elements(d, x, out, &first, depth);
    if (out->len == before)
        td_buf_append_str(out, "null");
}

struct keyref {
    const uint8_t *p;
    uint32_t n, item;
};

static int cmp_keyref(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n ? 1 : 0;
}

/* sorted_keys returns the live map entries of t sorted by key bytes. */
static struct keyref *sorted_keys(const struct td_ydoc *d, uint32_t t, size_t *n)
{
    const struct ytype *T = &d->ty[t];
    struct keyref *v = td_xmalloc((T->nkeys + 1) * sizeof(*v));
    size_t k = 0;
    for (uint32_t i = 0; i < T->nkeys; i++) {
        uint32_t x = map_get(d, t, T->keys[i]);
        if (x == 0 || (d->it[x].flags & F_DELETED))
            continue;
        v[k++] = (struct keyref){str_ptr(d, T->keys[i]), d->sv[T->keys[i]].len, x};
    }
    qsort(v, k, sizeof(*v), cmp_keyref);
    *n = k;
    return v;
}

static void write_map(const struct td_ydoc *d, uint32_t t, struct td_buf *out, int depth)
{
    size_t n;
    struct keyref *v = sorted_keys(d, t, &n);
    td_buf_append_byte(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            td_buf_append_byte(out, ',');
        td_json_write_string(out, (const char *)v[i].p, v[i].n);
        td_buf_append_byte(out, ':');
        write_map_value(d, v[i].item, out, depth);
    }
    td_buf_append_byte(out, '}');
    free(v);
}

static void write_array(const struct td_ydoc *d, uint32_t t, struct td_buf *out, int depth)
{
    td_buf_append_byte(out, '[');
    bool first = true;
    for (uint32_t x = d->ty[t].start; x != 0; x = d->it[x].right)
        if (counted(&d->it[x]))
            write_elements(d, x, out, &first, depth);
    td_buf_append_byte(out, ']');
}

/* xml_attr_value writes String(value) of an attribute (a map item). */
static void xml_attr_value(const struct td_ydoc *d, uint32_t x, struct td_buf *out, int depth)
{
    struct td_buf v;
    td_buf_init(&v);
    write_map_value(d, x, &v, depth);
    if (v.len >= 2 && v.data[0] == '"') {
        struct td_json_doc jd;
        if (td_json_parse(&jd, (const char *)v.data, v.len, NULL) == 0)
            td_buf_append(out, td_json_root(&jd)->str, td_json_root(&jd)->len);
        td_json_doc_free(&jd);
    } else if (v.len > 0 && (v.data[0] == '{')) {
        td_buf_append_str(out, "[object Object]");
    } else if (v.len > 0 && v.data[0] == '[') {
        td_buf_append(out, v.data + 1, v.len - 2); /* close to Array.toString for scalars */
    } else {
        td_buf_append(out, v.data, v.len);
    }
    td_buf_free(&v);
}

static void write_xml(const struct td_ydoc *d, uint32_t t, struct td_buf *out, int depth)
{
    const struct ytype *T = &d->ty[t];
    if (depth > 200)
        return;
    if (T->tref == TD_YT_XML_TEXT || T->tref == TD_YT_TEXT) {
        write_text(d, t, out);
        return;
    }
    bool element = T->tref == TD_YT_XML_ELEMENT;
    struct td_buf name;
    td_buf_init(&name);
    if (element) {
        const uint8_t *p = T->nodename ? str_ptr(d, T->nodename) : (const uint8_t *)"";
        size_t n = T->nodename ? d->sv[T->nodename].len : 0;
        for (size_t i = 0; i < n; i++)
            td_buf_append_byte(&name, (p[i] >= 'A' && p[i] <= 'Z') ? (uint8_t)(p[i] + 32) : p[i]);
        td_buf_append_byte(out, '<');
        td_buf_append(out, name.data, name.len);
        size_t nk;
        struct keyref *v = sorted_keys(d, t, &nk);
        for (size_t i = 0; i < nk; i++) {
            td_buf_append_byte(out, ' ');
            td_buf_append(out, v[i].p, v[i].n);
            td_buf_append_str(out, "=\"");
            xml_attr_value(d, v[i].item, out, depth);
            td_buf_append_byte(out, '"');
        }
        free(v);
        td_buf_append_byte(out, '>');
    }
    for (uint32_t x = T->start; x != 0; x = d->it[x].right) {
        const struct yitem *X = &d->it[x];
        if (!counted(X))
            continue;
        if (X->kind == TD_YK_TYPE) {
            write_xml(d, X->coff, out, depth + 1);
        } else if (X->kind == TD_YK_STRING) {
            td_buf_append(out, d->cb + X->coff, X->cbytes);
        }
    }
    if (element) {
        td_buf_append_str(out, "</");
        td_buf_append(out, name.data, name.len);
        td_buf_append_byte(out, '>');
    }
    td_buf_free(&name);
}

static enum td_ydoc_as auto_kind(const struct td_ydoc *d, uint32_t t)
{
    const struct ytype *T = &d->ty[t];
    switch (T->tref) {
    case TD_YT_ARRAY:
        return TD_YDOC_AS_ARRAY;
    case TD_YT_MAP:
        return TD_YDOC_AS_MAP;
    case TD_YT_TEXT:
        return TD_YDOC_AS_TEXT;
    case TD_YT_XML_ELEMENT:
    case TD_YT_XML_FRAGMENT:
    case TD_YT_XML_TEXT:
    case TD_YT_XML_HOOK:
        return TD_YDOC_AS_XML;
    default:
        break;
    }
    bool any_list = false, only_strings = true;
    for (uint32_t x = T->start; x != 0; x = d->it[x].right) {
        const struct yitem *X = &d->it[x];
        if (X->flags & F_DELETED)
            continue;
        if (X->kind == TD_YK_FORMAT)
            continue;
        any_list = true;
        if (X->kind != TD_YK_STRING && X->kind != TD_YK_EMBED)
            only_strings = false;
    }
    if (!any_list)
        return T->nkeys > 0 ? TD_YDOC_AS_MAP : TD_YDOC_AS_TEXT;
    return only_strings ? TD_YDOC_AS_TEXT : TD_YDOC_AS_ARRAY;
}

static void write_type_json(const struct td_ydoc *d, uint32_t t, enum td_ydoc_as as,
                            struct td_buf *out, int depth)
{
    if (depth > 200) {
        td_buf_append_str(out, "null");
        return;
    }
    if (as == TD_YDOC_AS_AUTO)
        as = auto_kind(d, t);
    struct td_buf s;
    switch (as) {
    case TD_YDOC_AS_MAP:
        write_map(d, t, out, depth);
        break;
    case TD_YDOC_AS_ARRAY:
        write_array(d, t, out, depth);
        break;
    case TD_YDOC_AS_XML:
        td_buf_init(&s);
        write_xml(d, t, &s, depth);
        td_json_write_string(out, (const char *)s.data, s.len);
        td_buf_free(&s);
        break;
    default:
        td_buf_init(&s);
        write_text(d, t, &s);
        td_json_write_string(out, (const char *)s.data, s.len);
        td_buf_free(&s);
        break;
    }
}

int td_ydoc_root_json(const struct td_ydoc *d, const char *name, size_t name_len,
                      enum td_ydoc_as as, struct td_buf *out)
{
    uint32_t t = root_find(d, (const uint8_t *)name, name_len);
    if (t == 0)
        return TD_ENOTFOUND;
    write_type_json(d, t, as, out, 0);
    return 0;
}

int td_ydoc_text(const struct td_ydoc *d, const char *root, struct td_buf *out)
{
    uint32_t t = root_find(d, (const uint8_t *)root, strlen(root));
    if (t == 0)
        return TD_ENOTFOUND;
    write_text(d, t, out);
    return 0;
}

static bool root_has_content(const struct td_ydoc *d, uint32_t t)
{
    const struct ytype *T = &d->ty[t];
    return T->start != 0 || T->nkeys > 0;
}

static int forced_as(const uint8_t *p, size_t n, const char *const *names,
                     const enum td_ydoc_as *as, size_t nas)
{
    for (size_t i = nas; i-- > 0;)
        if (strlen(names[i]) == n && memcmp(names[i], p, n) == 0)
            return (int)as[i];
    return -1;
}

void td_ydoc_json(const struct td_ydoc *d, const char *const *as_names, const enum td_ydoc_as *as,
                  size_t nas, struct td_buf *out)
{
    struct keyref *v = td_xmalloc((d->nroots + 1) * sizeof(*v));
    size_t n = 0;
    for (uint32_t i = 0; i < d->nroots; i++) {
        uint32_t t = d->roots[i];
        bool forced =
            forced_as(str_ptr(d, d->ty[t].name), d->sv[d->ty[t].name].len, as_names, as, nas) >= 0;
        if (!root_has_content(d, t) && !forced)
            continue;
        v[n++] = (struct keyref){str_ptr(d, d->ty[t].name), d->sv[d->ty[t].name].len, t};
    }
    qsort(v, n, sizeof(*v), cmp_keyref);
    td_buf_append_byte(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            td_buf_append_byte(out, ',');
        td_json_write_string(out, (const char *)v[i].p, v[i].n);
        td_buf_append_byte(out, ':');
        int f = forced_as(v[i].p, v[i].n, as_names, as, nas);
        write_type_json(d, v[i].item, f >= 0 ? (enum td_ydoc_as)f : TD_YDOC_AS_AUTO, out, 0);
    }
    td_buf_append_byte(out, '}');
    free(v);
}

size_t td_ydoc_root_count(const struct td_ydoc *d)
{
    return d->nroots;
}

struct td_ybytes td_ydoc_root_name(const struct td_ydoc *d, size_t i)
{
    uint32_t s = d->ty[d->roots[i]].name;
    return (struct td_ybytes){str_ptr(d, s), d->sv[s].len};
}

uint64_t td_ydoc_text_length(const struct td_ydoc *d, const char *root)
{
    uint32_t t = root_find(d, (const uint8_t *)root, strlen(root));
    return t == 0 ? 0 : d->ty[t].length;
}

int td_ydoc_text_utf16_index(const struct td_ydoc *d, const char *root, uint64_t pos, bool by_bytes,
                             uint64_t *out)
{
    uint32_t t = root_find(d, (const uint8_t *)root, strlen(root));
    uint64_t u = 0, seen = 0;
    if (pos == 0) {
        *out = 0;
        return 0;
    }
    if (t == 0)
        return TD_EINVAL;
    for (uint32_t x = d->ty[t].start; x != 0; x = d->it[x].right) {
        const struct yitem *X = &d->it[x];
        if (!counted(X))
            continue;
        if (X->kind != TD_YK_STRING) {
            seen += X->len;
            u += X->len;
        } else {
            const uint8_t *p = d->cb + X->coff;
            for (size_t i = 0; i < X->cbytes;) {
                size_t cl = (p[i] < 0x80) ? 1 : (p[i] < 0xe0) ? 2 : (p[i] < 0xf0) ? 3 : 4;
                if (seen == pos) {
                    *out = u;
                    return 0;
                }
                seen += by_bytes ? cl : 1;
                u += cl == 4 ? 2 : 1;
                i += cl;
                if (seen > pos)
                    return TD_EINVAL;
            }
        }
        if (seen == pos) {
            *out = u;
            return 0;
        }
        if (seen > pos)
            return TD_EINVAL;
    }
    return TD_EINVAL;
}

/* ------------------------------------------------------------------------------------------
 * Lifecycle and statistics
 */

struct td_ydoc *td_ydoc_new(uint64_t client_id)
{
    struct td_ydoc *d = td_xcalloc(1, sizeof(*d));
    d->client_id = client_id;
    d->local_ci = NOC;
    d->lim.max_update_bytes = (size_t)64 << 20;
    d->lim.max_content_bytes = (size_t)512 << 20;
    d->lim.max_structs = (size_t)32 << 20;
    it_reserve(d, 1024);
    d->nit = 1;
    memset(&d->it[0], 0, sizeof(d->it[0]));
    d->nty = 1;
    GROW(d->ty, 0, d->capty, 16);
    memset(&d->ty[0], 0, sizeof(d->ty[0]));
    d->nstr = 1;
    GROW(d->sv, 0, d->capstr, 16);
    d->sv[0] = (struct ystr){0, 0};
    td_buf_init(&d->strs);
    td_buf_init(&d->pending);
    /* never NULL bases: views of empty content still point into these */
    cb_reserve(d, 256);
    td_buf_reserve(&d->strs, 64);
    d->txn_gen = 1;
    return d;
}

void td_ydoc_del(struct td_ydoc *d)
{
    if (d == NULL)
        return;
    for (uint32_t i = 0; i < d->ncl; i++) {
        for (uint32_t b = 0; b < d->cl[i].nblk; b++)
            free(d->cl[i].blk[b]);
        free(d->cl[i].blk);
        free(d->cl[i].bfirst);
    }
    for (uint32_t t = 0; t < d->nty; t++)
        free(d->ty[t].keys);
    free(d->cl);
    free(d->it);
    free(d->cb);
    free(d->ty);
    free(d->roots);
    hm_free(&d->clmap);
    hm_free(&d->rootmap);
    hm_free(&d->mapmap);
    td_buf_free(&d->strs);
    free(d->sv);
    free(d->stab);
    free(d->touched);
    free(d->tds);
    free(d->ms);
    td_buf_free(&d->pending);
    free(d->missing);
    free(d->pds);
    free(d->s1.k);
    free(d->s1.g);
    free(d->s2.k);
    free(d->s2.g);
    free(d->stack);
    free(d);
}

void td_ydoc_set_limits(struct td_ydoc *d, const struct td_ydoc_limits *l)
{
    if (l->max_update_bytes)
        d->lim.max_update_bytes = l->max_update_bytes;
    if (l->max_content_bytes)
        d->lim.max_content_bytes = l->max_content_bytes;
    if (l->max_structs)
        d->lim.max_structs = l->max_structs;
}

uint64_t td_ydoc_client_id(const struct td_ydoc *d)
{
    return d->client_id;
}

void td_ydoc_stats(const struct td_ydoc *d, struct td_ydoc_stats *st)
{
    memset(st, 0, sizeof(*st));
    size_t mem = sizeof(*d) + d->capit * sizeof(struct yitem) + d->cbcap +
                 d->capcl * sizeof(struct yclient) + d->capty * sizeof(struct ytype) +
                 d->caproots * 4 + d->strs.cap + d->capstr * sizeof(struct ystr) + d->stabcap * 4 +
                 d->pending.cap;
    mem += (size_t)(d->clmap.cap + d->rootmap.cap + d->mapmap.cap) * 12;
    for (uint32_t i = 0; i < d->ncl; i++) {
        const struct yclient *c = &d->cl[i];
        if (c->state > 0)
            st->clients++;
        mem += c->capblk * (sizeof(void *) + 4) + c->nblk * sizeof(struct yblk);
        for (uint32_t b = 0; b < c->nblk; b++) {
            for (uint32_t k = 0; k < c->blk[b]->n; k++) {
                const struct yitem *X = &d->it[c->blk[b]->it[k]];
                st->structs++;
                if (X->kind == TD_YK_GC) {
                    st->gc_structs++;
                } else {
                    st->items++;
                    if (X->flags & F_DELETED)
                        st->deleted_items++;
                }
            }
        }
    }
    for (uint32_t t = 0; t < d->nty; t++)
        mem += d->ty[t].capkeys * 4;
    mem += d->captouched * 4 + d->captds * sizeof(struct yrange) + d->capms * 8 +
           d->capmissing * sizeof(struct idrange) + d->cappds * sizeof(struct idrange) +
           (d->s1.cap + d->s2.cap) * 8;
    st->pending_structs = pending_struct_count(d);
    st->pending_deletes = d->npds;
    st->mem_bytes = mem;
    st->content_bytes = d->cblen;
}

/* td_ydoc_check verifies internal invariants (for tests); returns 0 or a negative line number. */
int td_ydoc_check(const struct td_ydoc *d);
int td_ydoc_check(const struct td_ydoc *d)
{
    for (uint32_t ci = 0; ci < d->ncl; ci++) {
        const struct yclient *c = &d->cl[ci];
        uint32_t clock = 0;
        for (uint32_t b = 0; b < c->nblk; b++) {
            const struct yblk *k = c->blk[b];
            if (k->n == 0 || c->bfirst[b] != k->clk[0])
                return -__LINE__;
            for (uint32_t i = 0; i < k->n; i++) {
                const struct yitem *X = &d->it[k->it[i]];
                if (X->clock != clock || k->clk[i] != clock || X->client != ci || X->len == 0)
                    return -__LINE__;
                clock += X->len;
            }
        }
        if (clock != c->state)
            return -__LINE__;
    }
    return 0;
}
