#include "core/td_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/td_err.h"

static enum td_log_level log_threshold = TD_LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error", "none"};

void td_log_set_level(enum td_log_level lvl)
{
    log_threshold = lvl;
}

int td_log_parse_level(const char *s, enum td_log_level *out)
{
    for (int i = 0; i <= TD_LOG_NONE; i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum td_log_level)i;
            return 0;
        }
    }
    return TD_EINVAL;
}

void td_log(enum td_log_level lvl, const char *msg, const char *fmt, ...)
{
    if (lvl < log_threshold || lvl >= TD_LOG_NONE)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    int n =
        snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, log_names[lvl], msg);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (fmt != NULL && fmt[0] != '\0' && used + 2 < sizeof(line)) {
        line[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
        va_end(ap);
        if (m > 0)
            used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    }
    line[used] = '\n';
    fwrite(line, 1, used + 1, stderr);
}
