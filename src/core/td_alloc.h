/*
 * td_alloc.h - allocation that never returns NULL.
 *
 * Running out of memory is not a condition tandem recovers from: these wrappers abort
 * with a message instead (as redis zmalloc does). Limits on what a peer may grow are
 * enforced by explicit caps elsewhere, never by malloc failing.
 */
#ifndef TD_ALLOC_H
#define TD_ALLOC_H

#include <stddef.h>

void *td_xmalloc(size_t n);
void *td_xcalloc(size_t count, size_t size);
void *td_xrealloc(void *p, size_t n);
/* td_xstrndup returns a NUL-terminated copy of the first n bytes of s. */
char *td_xstrndup(const char *s, size_t n);
char *td_xstrdup(const char *s);

#endif
