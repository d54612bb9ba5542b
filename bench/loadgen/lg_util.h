/*
 * lg_util.h - scaffolding shared by td_loadgen and td_wtload: the clock, fatal errors
 * with the tool's own prefix, command-line number parsing, --src-ips, the open-file
 * limit, sampling the server's CPU and RSS from /proc, and the JSON report writer.
 *
 * Every failure ends the process through lg_fail: a benchmark tool has no result worth
 * reporting after one.
 */
#ifndef TD_BENCH_LG_UTIL_H
#define TD_BENCH_LG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "core/td_buf.h"

/* lg_set_prog sets the name lg_fail and lg_raise_nofile put before their messages
 * ("td_loadgen" unless set). prog must outlive the process (a string literal). */
void lg_set_prog(const char *prog);

/* lg_now returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t lg_now(void);

/* lg_fail prints "<prog>: <reason>" on stderr and exits with status 1. */
_Noreturn void lg_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* lg_arg_uint parses s as a decimal integer in min..max, or fails naming option name. */
uint64_t lg_arg_uint(const char *name, const char *s, uint64_t min, uint64_t max);

/* lg_arg_double parses s as a finite number >= min, or fails naming option name. */
double lg_arg_double(const char *name, const char *s, double min);

/* lg_parse_src_ips appends the comma-separated IPv4 addresses in list to *src (grown
 * with td_xrealloc, owned by the caller) and *nsrc; fails on a bad or empty list. */
void lg_parse_src_ips(struct sockaddr_in **src, size_t *nsrc, const char *list);

/* lg_raise_nofile raises the open-file soft limit to the hard limit (saying so on
 * stderr) and fails if subs connections would not fit. */
void lg_raise_nofile(uint32_t subs);

/* lg_parse_u64 parses up to 19 decimal digits at p (not past end) into *out; returns the
 * byte after them, or NULL when p does not start with a digit. */
const uint8_t *lg_parse_u64(const uint8_t *p, const uint8_t *end, uint64_t *out);

/* lg_ws_append appends to out one client WebSocket frame (FIN set, masked) of type
 * opcode carrying p[0..n). The masking key comes from *mask_state, an xorshift32 state
 * (nonzero) that it advances: the key must vary, it need not be strong. */
void lg_ws_append(struct td_buf *out, uint32_t *mask_state, uint8_t opcode, const void *p,
                  size_t n);

/* lg_ws_frame_head parses the header of a server-to-client WebSocket frame at p[0..n).
 * Returns 1 with *hl (header bytes) and *len (payload bytes) set when the header is
 * complete, 0 when more bytes are needed, -1 when the frame is masked (servers must not
 * mask). The caller checks len against its own cap. */
int lg_ws_frame_head(const uint8_t *p, size_t n, size_t *hl, uint64_t *len);

struct lg_hist;

/* lg_scan_deliveries counts every publication payload in p[0..n): each starts with
 * {"t":T,"s":S, T being the send time in ns after t0 and S the sequence number. A payload
 * with S >= seq0 is measured: its latency (now - (t0 + T), in us) goes into hist and
 * *measured is incremented. After a match the scan skips the rest of the payload (payload
 * bytes long; its padding cannot contain the prefix), so a message costs one memmem per
 * publication it carries. Returns the number of payloads found. */
uint32_t lg_scan_deliveries(const uint8_t *p, size_t n, size_t payload, uint64_t seq0, uint64_t t0,
                            uint64_t now, struct lg_hist *hist, uint32_t *measured);

struct lg_srv_sample {
    double cpu_s; /* utime + stime of all threads */
    long rss_kb;  /* VmRSS */
};

/* lg_srv_sample reads the CPU time and VmRSS of process pid into *s; returns false
 * (and leaves *s alone) when pid <= 0, fails when /proc cannot be read or parsed. */
bool lg_srv_sample(int pid, struct lg_srv_sample *s);

/* lg_self_cpu returns this process's user + system CPU time in seconds. */
double lg_self_cpu(void);

/* lg_secs_ns converts seconds to nanoseconds. */
uint64_t lg_secs_ns(double s);

/* JSON object writer. b holds "{" and the fields so far; each call appends a comma
 * when needed, then "k":value. A NULL string or a false valid writes null, as does a
 * non-finite number. */
void lg_json_str(struct td_buf *b, const char *k, const char *v);
void lg_json_bool(struct td_buf *b, const char *k, bool v);
void lg_json_u64(struct td_buf *b, const char *k, bool valid, uint64_t v);
void lg_json_num(struct td_buf *b, const char *k, bool valid, double v, int prec);

#endif
