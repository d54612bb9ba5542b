#include "core/td_err.h"

#include <string.h>

const char *td_strerror(int err)
{
    switch (err) {
    case TD_OK:
        return "success";
    case TD_EPROTO:
        return "protocol error";
    case TD_ELIMIT:
        return "limit exceeded";
    case TD_EAGAIN:
        return "need more input";
    case TD_ENOTFOUND:
        return "not found";
    case TD_EEXIST:
        return "already exists";
    case TD_EINVAL:
        return "invalid argument";
    case TD_EUTF8:
        return "invalid UTF-8";
    case TD_ESTORE:
        return "storage failure";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
