/*
 * td_test.h - a tiny unit test harness.
 *
 * TD_TEST(name) { ... } defines and registers a test case; TD_CHECK* record failures
 * without stopping the case; TD_REQUIRE* return from it. The runner (main.c) runs every
 * registered case, optionally filtered by a substring argument, and ends with the line
 * "N passed, N failed".
 */
#ifndef TD_TEST_H
#define TD_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*td_test_fn)(void);
void td_test_register(const char *name, td_test_fn fn);
void td_test_fail(const char *file, int line, const char *expr);

#define TD_TEST(name)                                                                              \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        td_test_register(#name, test_##name);                                                      \
    }                                                                                              \
    static void test_##name(void)

#define TD_CHECK(expr)                                                                             \
    do {                                                                                           \
        if (!(expr))                                                                               \
            td_test_fail(__FILE__, __LINE__, #expr);                                               \
    } while (0)

#define TD_REQUIRE(expr)                                                                           \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            td_test_fail(__FILE__, __LINE__, #expr);                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define TD_CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                           \
        long long td_a_ = (long long)(a), td_b_ = (long long)(b);                                  \
        if (td_a_ != td_b_) {                                                                      \
            char td_msg_[256];                                                                     \
            snprintf(td_msg_, sizeof(td_msg_), "%s == %s (%lld != %lld)", #a, #b, td_a_, td_b_);   \
            td_test_fail(__FILE__, __LINE__, td_msg_);                                             \
        }                                                                                          \
    } while (0)

/* Compare n bytes at p with a NUL-terminated string s. */
#define TD_CHECK_MEM_STR(p, n, s)                                                                  \
    do {                                                                                           \
        size_t td_n_ = (size_t)(n);                                                                \
        const char *td_s_ = (s);                                                                   \
        if (td_n_ != strlen(td_s_) || memcmp((p), td_s_, td_n_) != 0) {                            \
            char td_msg_[512];                                                                     \
            snprintf(td_msg_, sizeof(td_msg_), "%s == \"%s\" (got \"%.*s\")", #p, td_s_,           \
                     (int)(td_n_ > 200 ? 200 : td_n_), (const char *)(p));                         \
            td_test_fail(__FILE__, __LINE__, td_msg_);                                             \
        }                                                                                          \
    } while (0)

#endif
