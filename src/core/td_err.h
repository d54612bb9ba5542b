/*
 * td_err.h - error codes shared by every module.
 *
 * Fallible functions return 0 on success or a negative code: -errno for system calls
 * (libuv's UV_E* values are -errno on Linux too) or one of the project codes below.
 */
#ifndef TD_ERR_H
#define TD_ERR_H

enum {
    TD_OK = 0,
    TD_EPROTO = -10001,    /* the peer broke the protocol (malformed input) */
    TD_ELIMIT = -10002,    /* a cap was hit (size, count, rate) */
    TD_EAGAIN = -10003,    /* need more input before a decision can be made */
    TD_ENOTFOUND = -10004, /* the named thing does not exist */
    TD_EEXIST = -10005,    /* the thing already exists */
    TD_EINVAL = -10006,    /* a caller passed an invalid argument or config value */
    TD_EUTF8 = -10007,     /* text is not valid UTF-8 */
    TD_ESTORE = -10008,    /* the durable store failed (disk, database); nothing was written */
};

/* td_strerror returns a static, human-readable name for any code above or any -errno. */
const char *td_strerror(int err);

#endif
