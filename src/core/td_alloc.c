#include "core/td_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void alloc_oom(size_t n)
{
    fprintf(stderr, "tandem: out of memory allocating %zu bytes\n", n);
    abort();
}

void *td_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        alloc_oom(n);
    return p;
}

void *td_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        alloc_oom(count * size);
    return p;
}

void *td_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        alloc_oom(n);
    return q;
}

char *td_xstrndup(const char *s, size_t n)
{
    char *p = td_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *td_xstrdup(const char *s)
{
    return td_xstrndup(s, strlen(s));
}
