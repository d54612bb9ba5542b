#include "core/td_wheel.h"
#include "td_test.h"

#include <stdlib.h>

struct fired {
    int64_t at[64];
    struct td_wheel_node *node[64];
    int n;
    int64_t now;
    struct td_wheel *w;
    struct td_wheel_node *rearm; /* re-set this node +100 ms when it fires */
};

static void on_fire(struct td_wheel_node *n, void *ud)
{
    struct fired *f = ud;
    if (f->n < 64) {
        f->node[f->n] = n;
        f->at[f->n] = f->now;
        f->n++;
    }
    if (n == f->rearm)
        td_wheel_set(f->w, n, f->now + 100);
}

static void advance(struct td_wheel *w, struct fired *f, int64_t to, int64_t step)
{
    for (int64_t t = f->now + step; t <= to; t += step) {
        f->now = t;
        td_wheel_expire(w, t, on_fire, f);
    }
}

TD_TEST(wheel_fires_at_deadline_never_early)
{
    struct td_wheel *w = malloc(sizeof(*w));
    td_wheel_init(w, 10, 1000);
    struct td_wheel_node a, b, c;
    td_wheel_node_init(&a);
    td_wheel_node_init(&b);
    td_wheel_node_init(&c);
    td_wheel_set(w, &a, 1055);
    td_wheel_set(w, &b, 1005);
    td_wheel_set(w, &c, 1000 + 60000); /* beyond one rotation (40.96 s) */
    TD_CHECK_EQ_INT(w->count, 3);
    struct fired f = {.now = 1000, .w = w};
    advance(w, &f, 1050, 5);
    TD_REQUIRE(f.n == 1);
    TD_CHECK(f.node[0] == &b && f.at[0] >= 1005);
    advance(w, &f, 1100, 5);
    TD_REQUIRE(f.n == 2);
    TD_CHECK(f.node[1] == &a && f.at[1] >= 1055 && f.at[1] < 1070);
    TD_CHECK(!td_wheel_linked(&a) && td_wheel_linked(&c));
    advance(w, &f, 60990, 10);
    TD_CHECK_EQ_INT(f.n, 2); /* c passed its slot once already without firing */
    advance(w, &f, 61010, 10);
    TD_REQUIRE(f.n == 3);
    TD_CHECK(f.node[2] == &c && f.at[2] >= 61000);
    TD_CHECK_EQ_INT(w->count, 0);
    free(w);
}

TD_TEST(wheel_delete_reset_and_rearm_in_callback)
{
    struct td_wheel *w = malloc(sizeof(*w));
    td_wheel_init(w, 10, 0);
    struct td_wheel_node a, b;
    td_wheel_node_init(&a);
    td_wheel_node_init(&b);
    td_wheel_set(w, &a, 50);
    td_wheel_set(w, &b, 50);
    td_wheel_del(w, &b);
    td_wheel_del(w, &b);      /* twice is fine */
    td_wheel_set(w, &a, 200); /* move */
    struct fired f = {.now = 0, .w = w, .rearm = &a};
    advance(w, &f, 150, 10);
    TD_CHECK_EQ_INT(f.n, 0);
    advance(w, &f, 500, 10);
    /* a fires once its tick [200,210) has ended, is re-set 100 ms later each time. */
    TD_CHECK_EQ_INT(f.n, 3);
    TD_CHECK(f.at[0] == 210 && f.at[1] == 320 && f.at[2] == 430);
    td_wheel_del(w, &a);
    TD_CHECK_EQ_INT(w->count, 0);
    free(w);
}

TD_TEST(wheel_past_deadline_and_long_pause)
{
    struct td_wheel *w = malloc(sizeof(*w));
    td_wheel_init(w, 10, 1000);
    struct td_wheel_node a, b;
    td_wheel_node_init(&a);
    td_wheel_node_init(&b);
    td_wheel_set(w, &a, 500); /* already past: fires at the next expire */
    td_wheel_set(w, &b, 5000);
    struct fired f = {.now = 1025, .w = w};
    td_wheel_expire(w, 1025, on_fire, &f);
    TD_REQUIRE(f.n == 1);
    TD_CHECK(f.node[0] == &a);
    f.now = 900000; /* the loop stalled for minutes */
    td_wheel_expire(w, f.now, on_fire, &f);
    TD_REQUIRE(f.n == 2);
    TD_CHECK(f.node[1] == &b);
    free(w);
}
