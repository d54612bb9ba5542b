/*
 * td_str.h - a borrowed byte range, the currency of every parser: views into a buffer the
 * caller owns, never NUL-terminated, never freed through the view.
 */
#ifndef TD_STR_H
#define TD_STR_H

#include <stddef.h>

struct td_str {
    const char *p;
    size_t n;
};

#define TD_STR_NULL ((struct td_str){NULL, 0})

#endif
