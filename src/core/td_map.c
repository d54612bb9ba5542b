#include "core/td_map.h"

#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"

uint64_t td_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a, then a final avalanche so low bits are usable as a bucket index. */
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void td_map_init(struct td_map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void td_map_free(struct td_map *m)
{
    free(m->slots);
    td_map_init(m);
}

static size_t map_find(const struct td_map *m, const char *key, size_t key_len, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const struct td_map_entry *e = &m->slots[i];
        if (e->key == NULL)
            return i;
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

void *td_map_get(const struct td_map *m, const char *key, size_t key_len)
{
    if (m->count == 0)
        return NULL;
    size_t i = map_find(m, key, key_len, td_hash_bytes(key, key_len));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static void map_grow(struct td_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct td_map_entry *old = m->slots;
    size_t ocap = m->cap;
    m->slots = td_xcalloc(ncap, sizeof(*m->slots));
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].key == NULL)
            continue;
        size_t j = map_find(m, old[i].key, old[i].key_len, old[i].hash);
        m->slots[j] = old[i];
    }
    free(old);
}

void *td_map_put(struct td_map *m, const char *key, size_t key_len, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        map_grow(m);
    uint64_t h = td_hash_bytes(key, key_len);
    size_t i = map_find(m, key, key_len, h);
    struct td_map_entry *e = &m->slots[i];
    void *prev = NULL;
    if (e->key != NULL) {
        prev = e->value;
    } else {
        m->count++;
    }
    e->key = key;
    e->key_len = key_len;
    e->hash = h;
    e->value = value;
    return prev;
}

void *td_map_del(struct td_map *m, const char *key, size_t key_len)
{
    if (m->count == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = map_find(m, key, key_len, td_hash_bytes(key, key_len));
    if (m->slots[i].key == NULL)
        return NULL;
    void *value = m->slots[i].value;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = i;
    size_t j = (i + 1) & mask;
    while (m->slots[j].key != NULL) {
        size_t home = (size_t)m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
        j = (j + 1) & mask;
    }
    memset(&m->slots[hole], 0, sizeof(m->slots[hole]));
    m->count--;
    return value;
}
