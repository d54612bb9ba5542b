#include "core/td_wheel.h"

static int64_t wheel_tick_of(const struct td_wheel *w, int64_t t)
{
    return t >= 0 ? t / w->res_ms : -((-t + w->res_ms - 1) / w->res_ms);
}

static struct td_wheel_node *wheel_slot(struct td_wheel *w, int64_t tick)
{
    return &w->slots[(uint64_t)tick % TD_WHEEL_SLOTS];
}

void td_wheel_init(struct td_wheel *w, int64_t res_ms, int64_t now)
{
    w->res_ms = res_ms > 0 ? res_ms : 1;
    w->count = 0;
    for (size_t i = 0; i < TD_WHEEL_SLOTS; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    w->tick = wheel_tick_of(w, now);
}

void td_wheel_del(struct td_wheel *w, struct td_wheel_node *n)
{
    if (n->next == NULL)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
    w->count--;
}

void td_wheel_set(struct td_wheel *w, struct td_wheel_node *n, int64_t deadline)
{
    td_wheel_del(w, n);
    n->deadline = deadline;
    /* A deadline fires at the end of its tick; one already past goes to the next tick. */
    int64_t tick = wheel_tick_of(w, deadline);
    if (tick <= w->tick)
        tick = w->tick + 1;
    struct td_wheel_node *head = wheel_slot(w, tick);
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
    w->count++;
}

void td_wheel_expire(struct td_wheel *w, int64_t now, td_wheel_cb cb, void *ud)
{
    /* Only ticks that have ended are processed: every deadline in them is <= now. */
    int64_t until = wheel_tick_of(w, now) - 1;
    /* After a long pause, one full rotation visits every slot once. */
    if (until - w->tick > TD_WHEEL_SLOTS)
        w->tick = until - TD_WHEEL_SLOTS;
    while (w->tick < until && w->count > 0) {
        w->tick++;
        struct td_wheel_node *head = wheel_slot(w, w->tick);
        /* Detach the slot's list first: callbacks may add nodes to this very slot. */
        struct td_wheel_node pending;
        if (head->next == head)
            continue;
        pending.next = head->next;
        pending.prev = head->prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head->next = head->prev = head;
        while (pending.next != &pending) {
            struct td_wheel_node *n = pending.next;
            n->prev->next = n->next;
            n->next->prev = n->prev;
            if (n->deadline <= now) {
                n->next = n->prev = NULL;
                w->count--;
                cb(n, ud);
            } else {
                /* Not due yet (a later rotation): back into its slot. */
                n->next = head;
                n->prev = head->prev;
                head->prev->next = n;
                head->prev = n;
            }
        }
    }
    if (w->tick < until)
        w->tick = until;
}
