/*
 * td_wheel.h - a hashed timing wheel: one intrusive 24-byte node per timer instead of one
 * event-loop timer handle per connection.
 *
 * Deadlines are in ms on the caller's clock. A node fires at the first td_wheel_expire call
 * after the resolution tick holding its deadline has ended: never early, at most about one
 * resolution late (plus however late expire is called). Slots cover TD_WHEEL_SLOTS * resolution ms;
 * a node further in the future waits in its slot and is skipped on earlier rotations. Nodes are
 * owned by the caller; the wheel only links them.
 */
#ifndef TD_WHEEL_H
#define TD_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_WHEEL_SLOTS 4096

struct td_wheel_node {
    struct td_wheel_node *next; /* NULL when not linked */
    struct td_wheel_node *prev;
    int64_t deadline;
};

struct td_wheel {
    struct td_wheel_node slots[TD_WHEEL_SLOTS]; /* list heads (sentinels) */
    int64_t res_ms;
    int64_t tick; /* the last tick (deadline / res_ms) processed */
    size_t count; /* linked nodes */
};

/* td_wheel_init prepares an empty wheel with resolution res_ms (> 0), current time now. */
void td_wheel_init(struct td_wheel *w, int64_t res_ms, int64_t now);

static inline void td_wheel_node_init(struct td_wheel_node *n)
{
    n->next = n->prev = NULL;
    n->deadline = 0;
}

static inline bool td_wheel_linked(const struct td_wheel_node *n)
{
    return n->next != NULL;
}

/* td_wheel_set (re)schedules n for deadline, unlinking it first if it was linked. */
void td_wheel_set(struct td_wheel *w, struct td_wheel_node *n, int64_t deadline);
/* td_wheel_del unlinks n if it is linked. */
void td_wheel_del(struct td_wheel *w, struct td_wheel_node *n);

typedef void (*td_wheel_cb)(struct td_wheel_node *n, void *ud);
/*
 * td_wheel_expire processes every tick up to now and calls cb for each node whose deadline
 * is <= now, after unlinking it. cb may set or delete any node, including the one it got.
 */
void td_wheel_expire(struct td_wheel *w, int64_t now, td_wheel_cb cb, void *ud);

#endif
