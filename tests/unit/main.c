/* Runner for the unit tests: runs every registered case, prints "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "td_test.h"

struct test_case {
    const char *name;
    td_test_fn fn;
};

static struct test_case *cases;
static size_t ncases, capcases;
static int current_failed;

void td_test_register(const char *name, td_test_fn fn)
{
    if (ncases == capcases) {
        capcases = capcases ? capcases * 2 : 64;
        cases = realloc(cases, capcases * sizeof(*cases));
        if (cases == NULL)
            abort();
    }
    cases[ncases].name = name;
    cases[ncases].fn = fn;
    ncases++;
}

void td_test_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, expr);
    current_failed = 1;
}

static int case_cmp(const void *a, const void *b)
{
    return strcmp(((const struct test_case *)a)->name, ((const struct test_case *)b)->name);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    qsort(cases, ncases, sizeof(*cases), case_cmp);
    for (size_t i = 0; i < ncases; i++) {
        if (filter != NULL && strstr(cases[i].name, filter) == NULL)
            continue;
        current_failed = 0;
        cases[i].fn();
        if (current_failed) {
            printf("FAIL %s\n", cases[i].name);
            failed++;
        } else {
            printf("ok   %s\n", cases[i].name);
            passed++;
        }
    }
    free(cases);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
