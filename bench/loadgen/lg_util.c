/*
 * lg_util.c - scaffolding shared by td_loadgen and td_wtload (see lg_util.h).
 */
#include "lg_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/td_alloc.h"
#include "http/td_ws.h"
#include "loadgen.h" /* lg_hist_add */

static const char *prog_name = "td_loadgen";

void lg_set_prog(const char *prog)
{
    prog_name = prog;
}

uint64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lg_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

uint64_t lg_arg_uint(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        lg_fail("%s: expected an integer in %" PRIu64 "..%" PRIu64 ", got '%s'", name, min, max, s);
    return v;
}

double lg_arg_double(const char *name, const char *s, double min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min)
        lg_fail("%s: expected a number >= %g, got '%s'", name, min, s);
    return v;
}

void lg_parse_src_ips(struct sockaddr_in **src, size_t *nsrc, const char *list)
{
    char *copy = td_xstrdup(list), *save = NULL;
    size_t cap = *nsrc;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (*nsrc == cap) {
            cap = cap ? cap * 2 : 4;
            *src = td_xrealloc(*src, cap * sizeof(**src));
        }
        struct sockaddr_in *a = &(*src)[*nsrc];
        memset(a, 0, sizeof(*a));
        a->sin_family = AF_INET;
        if (inet_pton(AF_INET, tok, &a->sin_addr) != 1)
            lg_fail("--src-ips: '%s' is not an IPv4 address", tok);
        (*nsrc)++;
    }
    free(copy);
    if (*nsrc == 0)
        lg_fail("--src-ips: empty list");
}

void lg_raise_nofile(uint32_t subs)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        lg_fail("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            lg_fail("setrlimit: %s", strerror(errno));
        fprintf(stderr, "%s: open-file limit raised from %llu to %llu\n", prog_name,
                (unsigned long long)old, (unsigned long long)rl.rlim_cur);
    }
    if ((uint64_t)subs + 10 > (uint64_t)rl.rlim_cur)
        lg_fail("--subs %" PRIu32 " needs about %" PRIu64
                " open files but the hard limit is %llu (raise it: ulimit -Hn, limits.conf)",
                subs, (uint64_t)subs + 10, (unsigned long long)rl.rlim_cur);
}

const uint8_t *lg_parse_u64(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *start = p;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 19) {
        v = v * 10u + (uint64_t)(*p - '0');
        p++;
    }
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

void lg_ws_append(struct td_buf *out, uint32_t *mask_state, uint8_t opcode, const void *p, size_t n)
{
    uint32_t x = *mask_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *mask_state = x;
    uint8_t h[TD_WS_MAX_HEADER];
    size_t hl = td_ws_frame_header(h, true, opcode, n);
    h[1] |= 0x80;
    memcpy(h + hl, &x, 4);
    const uint8_t *key = h + hl;
    hl += 4;
    td_buf_reserve(out, hl + n);
    uint8_t *dst = out->data + out->len;
    memcpy(dst, h, hl);
    dst += hl;
    const uint8_t *src = p;
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)(src[i] ^ key[i & 3]);
    out->len += hl + n;
}

int lg_ws_frame_head(const uint8_t *p, size_t n, size_t *hl, uint64_t *len)
{
    if (n < 2)
        return 0;
    if (p[1] & 0x80u)
        return -1;
    uint64_t l = p[1] & 0x7Fu;
    size_t h = 2;
    if (l == 126) {
        if (n < 4)
            return 0;
        l = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (l == 127) {
        if (n < 10)
            return 0;
        l = 0;
        for (size_t i = 0; i < 8; i++)
            l = l << 8 | p[2 + i];
        h = 10;
    }
    *hl = h;
    *len = l;
    return 1;
}

uint32_t lg_scan_deliveries(const uint8_t *p, size_t n, size_t payload, uint64_t seq0, uint64_t t0,
                            uint64_t now, struct lg_hist *hist, uint32_t *measured)
{
    const uint8_t *end = p + n;
    uint32_t found = 0;
    while (end - p >= 5) {
        const uint8_t *m = memmem(p, (size_t)(end - p), "{\"t\":", 5);
        if (m == NULL)
            break;
        uint64_t t, s;
        const uint8_t *q = lg_parse_u64(m + 5, end, &t);
        if (q == NULL || end - q < 5 || memcmp(q, ",\"s\":", 5) != 0 ||
            (q = lg_parse_u64(q + 5, end, &s)) == NULL) {
            p = m + 5;
            continue;
        }
        found++;
        if (s >= seq0) {
            (*measured)++;
            uint64_t sent = t0 + t;
            lg_hist_add(hist, now > sent ? (now - sent) / 1000u : 0);
        }
        /* skip the rest of this payload when it lies within p[0..n) */
        if ((size_t)(end - m) >= payload && m + payload > q)
            p = m + payload;
        else
            p = q;
    }
    return found;
}

bool lg_srv_sample(int pid, struct lg_srv_sample *s)
{
    if (pid <= 0)
        return false;
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        lg_fail("--server-pid: cannot read %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after the parenthesised command name: state is field 3, utime 14, stime 15 */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        lg_fail("--server-pid: cannot parse %s", path);
    s->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        lg_fail("--server-pid: cannot read %s: %s", path, strerror(errno));
    s->rss_kb = -1;
    while (fgets(buf, sizeof(buf), f) != NULL)
        if (strncmp(buf, "VmRSS:", 6) == 0)
            s->rss_kb = strtol(buf + 6, NULL, 10);
    fclose(f);
    if (s->rss_kb < 0)
        lg_fail("--server-pid: no VmRSS in %s", path);
    return true;
}

double lg_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

uint64_t lg_secs_ns(double s)
{
    return (uint64_t)(s * 1e9);
}

static void json_key(struct td_buf *b, const char *k)
{
    td_buf_appendf(b, "%s\"%s\":", b->len > 1 ? "," : "", k);
}

void lg_json_str(struct td_buf *b, const char *k, const char *v)
{
    json_key(b, k);
    if (v == NULL) {
        td_buf_append_str(b, "null");
        return;
    }
    td_buf_append_byte(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            td_buf_appendf(b, "\\%c", *p);
        else if (*p < 0x20)
            td_buf_appendf(b, "\\u%04x", *p);
        else
            td_buf_append_byte(b, *p);
    }
    td_buf_append_byte(b, '"');
}

void lg_json_bool(struct td_buf *b, const char *k, bool v)
{
    json_key(b, k);
    td_buf_append_str(b, v ? "true" : "false");
}

void lg_json_u64(struct td_buf *b, const char *k, bool valid, uint64_t v)
{
    json_key(b, k);
    if (valid)
        td_buf_appendf(b, "%" PRIu64, v);
    else
        td_buf_append_str(b, "null");
}

void lg_json_num(struct td_buf *b, const char *k, bool valid, double v, int prec)
{
    json_key(b, k);
    if (valid && isfinite(v))
        td_buf_appendf(b, "%.*f", prec, v);
    else
        td_buf_append_str(b, "null");
}
