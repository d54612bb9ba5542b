/*
 * td_map.h - string-keyed hash map (open addressing, linear probing, tombstone-free
 * backward-shift deletion).
 *
 * Keys are borrowed: the map stores the pointer and length given to td_map_put, so the key
 * bytes must live as long as the entry (typically the key is a field of the value).
 */
#ifndef TD_MAP_H
#define TD_MAP_H

#include <stddef.h>
#include <stdint.h>

struct td_map_entry {
    const char *key;
    size_t key_len;
    uint64_t hash;
    void *value;
};

struct td_map {
    struct td_map_entry *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
};

void td_map_init(struct td_map *m);
void td_map_free(struct td_map *m);
/* td_map_get returns the value stored for key, or NULL. */
void *td_map_get(const struct td_map *m, const char *key, size_t key_len);
/* td_map_put inserts or replaces; returns the previous value or NULL. */
void *td_map_put(struct td_map *m, const char *key, size_t key_len, void *value);
/* td_map_del removes key; returns the removed value or NULL. */
void *td_map_del(struct td_map *m, const char *key, size_t key_len);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ... (no changes while
 * iterating). */

uint64_t td_hash_bytes(const void *p, size_t n);

#endif
