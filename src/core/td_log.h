/*
 * td_log.h - structured log lines on stderr.
 *
 * One line per event: `ts=... level=info msg="..." key=value ...`. The level threshold
 * is process-wide and set once at start-up.
 */
#ifndef TD_LOG_H
#define TD_LOG_H

enum td_log_level { TD_LOG_DEBUG, TD_LOG_INFO, TD_LOG_WARN, TD_LOG_ERROR, TD_LOG_NONE };

void td_log_set_level(enum td_log_level lvl);
/* td_log_parse_level maps "debug"/"info"/"warn"/"error"/"none"; returns 0 or TD_EINVAL. */
int td_log_parse_level(const char *s, enum td_log_level *out);
/* td_log writes one line; fmt yields the key=value tail after msg. */
void td_log(enum td_log_level lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define td_log_debug(msg, ...) td_log(TD_LOG_DEBUG, msg, __VA_ARGS__)
#define td_log_info(msg, ...) td_log(TD_LOG_INFO, msg, __VA_ARGS__)
#define td_log_warn(msg, ...) td_log(TD_LOG_WARN, msg, __VA_ARGS__)
#define td_log_error(msg, ...) td_log(TD_LOG_ERROR, msg, __VA_ARGS__)

#endif
