/*
 * td_wtload.c - td_wtload: command line, the modes and the JSON report.
 *
 *   rate     open loop: --rate publications/s in total, round-robin over the channels,
 *            paced on a 1 ms tick, then up to --timeout for stragglers
 *   rounds   closed loop: each round sends --batch publications to every channel and waits
 *            for all subs*batch deliveries
 *
 * Subscribers are WebTransport sessions (wt_quic.c); the publisher is a WebSocket
 * connection (wt_pub.c). The report has td_loadgen's field names (bench/loadgen/README.md)
 * with proto "webtransport", so bench/wt.sh can put both side by side.
 */
#include "wtload.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "core/td_alloc.h"

static struct wl G; /* large (the histogram): static rather than on the stack */

struct result {
    bool has_pubs;
    uint64_t publications, deliveries, expected, errors;
    double seconds;
    bool has_cpu;
    double server_cpu;
    long rss_before, rss_after;
    double loadgen_cpu;
    double setup_s;
};

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: td_wtload --port P [--ws-port P] [--host 127.0.0.1] [--path PATH]\n"
            "         [--ws-path PATH] --mode rate|rounds --subs N [--channels C]\n"
            "         [--payload BYTES] [--batch B] [--duration SEC] [--rounds R] [--rate R]\n"
            "         [--warmup SEC] [--server-pid PID] [--src-ips A,B,...] [--label NAME]\n"
            "         [--timeout SEC]\n"
            "\n"
            "N WebTransport subscribers (one QUIC connection each, HTTP/3 extended CONNECT to\n"
            "--path, default /connection/webtransport, on UDP --port) each join channel\n"
            "bench<i %% C> with Centrifugo JSON; one WebSocket publisher (TCP --ws-port, default\n"
            "--port, --ws-path default /connection/websocket) publishes payloads of --payload\n"
            "bytes. Prints one JSON line with td_loadgen's fields (bench/loadgen/README.md).\n"
            "The server's TLS certificate is NOT verified: a benchmark tool for loopback only.\n"
            "A server that allows 100 QUIC connections per address needs --src-ips\n"
            "(127.0.0.1,127.0.0.2,... - any 127/8 address works on Linux loopback).\n");
}

static void parse_opts(struct wl_opts *o, int argc, char **argv)
{
    enum {
        O_PORT = 256,
        O_WS_PORT,
        O_HOST,
        O_PATH,
        O_WS_PATH,
        O_MODE,
        O_SUBS,
        O_CHANNELS,
        O_PAYLOAD,
        O_BATCH,
        O_DURATION,
        O_ROUNDS,
        O_RATE,
        O_WARMUP,
        O_PID,
        O_SRC,
        O_LABEL,
        O_TIMEOUT,
        O_HELP
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, O_PORT},
        {"ws-port", required_argument, NULL, O_WS_PORT},
        {"host", required_argument, NULL, O_HOST},
        {"path", required_argument, NULL, O_PATH},
        {"ws-path", required_argument, NULL, O_WS_PATH},
        {"mode", required_argument, NULL, O_MODE},
        {"subs", required_argument, NULL, O_SUBS},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"payload", required_argument, NULL, O_PAYLOAD},
        {"batch", required_argument, NULL, O_BATCH},
        {"duration", required_argument, NULL, O_DURATION},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"rate", required_argument, NULL, O_RATE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"server-pid", required_argument, NULL, O_PID},
        {"src-ips", required_argument, NULL, O_SRC},
        {"label", required_argument, NULL, O_LABEL},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    o->host = "127.0.0.1";
    o->path = "/connection/webtransport";
    o->ws_path = "/connection/websocket";
    o->mode = WL_MODE_RATE;
    o->channels = 1;
    o->payload = 100;
    o->batch = 1;
    o->duration = 5;
    o->warmup = 1;
    o->timeout = 10;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_PORT:
            lg_arg_uint("--port", optarg, 1, 65535);
            o->port = optarg;
            break;
        case O_WS_PORT:
            lg_arg_uint("--ws-port", optarg, 1, 65535);
            o->ws_port = optarg;
            break;
        case O_HOST:
            o->host = optarg;
            break;
        case O_PATH:
        case O_WS_PATH:
            if (optarg[0] != '/' || strlen(optarg) > 500)
                lg_fail("paths must start with '/' (and be at most 500 bytes)");
            if (opt == O_PATH)
                o->path = optarg;
            else
                o->ws_path = optarg;
            break;
        case O_MODE:
            if (strcmp(optarg, "rate") == 0)
                o->mode = WL_MODE_RATE;
            else if (strcmp(optarg, "rounds") == 0)
                o->mode = WL_MODE_ROUNDS;
            else
                lg_fail("--mode: unknown mode '%s' (rate or rounds)", optarg);
            break;
        case O_SUBS:
            o->subs = (uint32_t)lg_arg_uint("--subs", optarg, 1, 1000000);
            break;
        case O_CHANNELS:
            o->channels = (uint32_t)lg_arg_uint("--channels", optarg, 1, 1000000);
            break;
        case O_PAYLOAD:
            o->payload = (uint32_t)lg_arg_uint("--payload", optarg, 16, 1 << 20);
            break;
        case O_BATCH:
            o->batch = (uint32_t)lg_arg_uint("--batch", optarg, 1, 100000);
            break;
        case O_DURATION:
            o->duration = lg_arg_double("--duration", optarg, 0.01);
            break;
        case O_ROUNDS:
            o->rounds = lg_arg_uint("--rounds", optarg, 1, UINT64_MAX);
            break;
        case O_RATE:
            o->rate = lg_arg_double("--rate", optarg, 0.001);
            break;
        case O_WARMUP:
            o->warmup = lg_arg_double("--warmup", optarg, 0);
            break;
        case O_PID:
            o->server_pid = (int)lg_arg_uint("--server-pid", optarg, 1, INT32_MAX);
            break;
        case O_SRC:
            lg_parse_src_ips(&o->src, &o->nsrc, optarg);
            break;
        case O_LABEL:
            o->label = optarg;
            break;
        case O_TIMEOUT:
            o->timeout = lg_arg_double("--timeout", optarg, 0.1);
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        lg_fail("unexpected argument '%s'", argv[optind]);
    if (o->port == NULL)
        lg_fail("--port is required");
    if (o->ws_port == NULL)
        o->ws_port = o->port;
    if (o->subs == 0)
        lg_fail("--subs is required");
    if (o->channels > o->subs)
        lg_fail("--channels must not exceed --subs (a channel without subscribers)");
    if (o->mode == WL_MODE_RATE && o->rate <= 0)
        lg_fail("--mode rate needs --rate > 0");
    if (o->mode == WL_MODE_RATE && o->rate * o->duration < 1)
        lg_fail("--rate * --duration must be at least one publication");
}

/* ---- environment ---- */

static void resolve_one(const char *host, const char *port, int socktype,
                        struct sockaddr_storage *out, socklen_t *outlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = socktype, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(host, port, &hints, &res);
    if (rv != 0 || res == NULL)
        lg_fail("cannot resolve %s: %s", host, gai_strerror(rv));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *outlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void resolve(struct wl *g)
{
    resolve_one(g->o.host, g->o.port, SOCK_DGRAM, &g->addr, &g->addrlen);
    resolve_one(g->o.host, g->o.ws_port, SOCK_STREAM, &g->ws_addr, &g->ws_addrlen);
    if (g->addr.ss_family == AF_INET6) {
        if (g->o.nsrc > 0)
            lg_fail("--src-ips takes IPv4 addresses but %s is IPv6", g->o.host);
        snprintf(g->authority, sizeof(g->authority), "[%s]:%s", g->o.host, g->o.port);
    } else {
        snprintf(g->authority, sizeof(g->authority), "%s:%s", g->o.host, g->o.port);
    }
    snprintf(g->origin, sizeof(g->origin), "https://%s", g->authority);
}

/* ---- the loop ---- */

void wl_poll(struct wl *g, int max_ms)
{
    g->now = lg_now();
    uint64_t next = wl_timers(g);
    int timeout = max_ms;
    if (next != UINT64_MAX) {
        uint64_t ms = next <= g->now ? 0 : (next - g->now + 999999u) / 1000000u;
        if (ms < (uint64_t)timeout)
            timeout = (int)ms;
    }
    struct epoll_event evs[512];
    int n = epoll_wait(g->ep, evs, 512, timeout);
    if (n < 0 && errno != EINTR)
        lg_fail("epoll_wait: %s", strerror(errno));
    g->now = lg_now();
    for (int i = 0; i < n; i++) {
        uint32_t id = evs[i].data.u32;
        if (id == g->o.subs)
            wl_pub_event(g, evs[i].events);
        else
            wl_conn_readable(g, &g->conns[id]);
    }
}

static void check_stall(struct wl *g, const char *what)
{
    if (g->now - g->last_progress <= lg_secs_ns(g->o.timeout))
        return;
    uint32_t st[WL_ST_READY + 1] = {0};
    for (uint32_t i = 0; i < g->o.subs; i++)
        st[g->conns[i].state]++;
    lg_fail("%s stalled for %.1f s: %" PRIu32 " of %" PRIu32 " sessions ready (not started %" PRIu32
            ", QUIC handshake %" PRIu32 ", waiting for SETTINGS %" PRIu32 ", CONNECT sent %" PRIu32
            ", waiting for the subscribe reply %" PRIu32 ")%s",
            what, g->o.timeout, g->ready_subs, g->o.subs, st[WL_ST_NEW], st[WL_ST_HANDSHAKE],
            st[WL_ST_SETTINGS], st[WL_ST_CONNECT], st[WL_ST_PROTO],
            g->pub.state == 3 ? "" : ", publisher not ready");
}

static void setup_subs(struct wl *g)
{
    g->now = g->last_progress = lg_now();
    uint64_t next_report = g->now + 1000000000u;
    while (g->ready_subs < g->o.subs) {
        while (g->started < g->o.subs && g->inflight < WL_MAX_INFLIGHT)
            wl_conn_start(g, &g->conns[g->started++]);
        wl_poll(g, 50);
        check_stall(g, "setup");
        if (g->now >= next_report) {
            fprintf(stderr, "td_wtload: %" PRIu32 "/%" PRIu32 " sessions ready\n", g->ready_subs,
                    g->o.subs);
            next_report = g->now + 1000000000u;
        }
    }
}

static void setup_pub(struct wl *g)
{
    wl_pub_start(g);
    g->now = g->last_progress = lg_now();
    while (g->pub.state != 3) {
        wl_poll(g, 50);
        check_stall(g, "publisher setup");
    }
}

static void poll_for(struct wl *g, double secs)
{
    uint64_t until = lg_now() + lg_secs_ns(secs);
    g->now = lg_now();
    while (g->now < until) {
        uint64_t left_ms = (until - g->now) / 1000000u;
        wl_poll(g, (int)(left_ms > 50 ? 50 : left_ms + 1));
    }
}

static uint64_t subs_on_channel(const struct wl *g, uint32_t ch)
{
    uint32_t s = g->o.subs, c = g->o.channels;
    return s / c + (ch < s % c ? 1u : 0u);
}

static uint64_t check_per_sub(const struct wl *g, const uint64_t *chan_pubs)
{
    uint64_t bad = 0, bad_subs = 0;
    for (uint32_t i = 0; i < g->o.subs; i++) {
        const struct wl_conn *c = &g->conns[i];
        uint64_t want = chan_pubs[c->channel];
        if (c->measured != want) {
            bad += c->measured > want ? c->measured - want : want - c->measured;
            if (bad_subs++ < 5)
                fprintf(stderr,
                        "td_wtload: session %" PRIu32 " (bench%" PRIu32 ") got %" PRIu64
                        " of %" PRIu64 " deliveries\n",
                        i, c->channel, c->measured, want);
        }
    }
    if (bad_subs > 0)
        fprintf(stderr, "td_wtload: %" PRIu64 " sessions with wrong delivery counts\n", bad_subs);
    return bad;
}

/* ---- modes ---- */

static void run_rate(struct wl *g, struct result *r)
{
    const struct wl_opts *o = &g->o;
    uint64_t *chan_pubs = td_xcalloc(o->channels, sizeof(*chan_pubs));
    uint64_t base = g->seq;
    uint64_t seq_meas = base + (uint64_t)(o->warmup * o->rate);
    uint64_t seq_end = seq_meas + (uint64_t)(o->duration * o->rate);
    if (seq_end == seq_meas)
        seq_end++;
    g->measure_seq0 = seq_meas;
    uint64_t t_start = lg_now(), t_meas = t_start, t_last = t_start;
    struct lg_srv_sample s0 = {0}, s1 = {0};
    double cpu0 = lg_self_cpu();
    uint32_t ch = 0;
    while (g->seq < seq_end) {
        uint64_t now = lg_now();
        uint64_t due = base + (uint64_t)((double)(now - t_start) / 1e9 * o->rate) + 1;
        if (due > seq_end)
            due = seq_end;
        bool sent = false;
        while (g->seq < due) {
            if (g->seq == seq_meas) {
                r->has_cpu = lg_srv_sample(o->server_pid, &s0);
                cpu0 = lg_self_cpu();
                t_meas = now;
            }
            if (g->seq >= seq_meas)
                chan_pubs[ch]++;
            wl_pub_append(g, ch);
            ch = ch + 1 == o->channels ? 0 : ch + 1;
            sent = true;
        }
        if (sent) {
            t_last = now;
            wl_pub_flush(g);
        }
        wl_poll(g, 1);
    }
    /* CPU is sampled when the last publication is sent, as td_loadgen does. */
    r->loadgen_cpu = lg_self_cpu() - cpu0;
    if (r->has_cpu) {
        lg_srv_sample(o->server_pid, &s1);
        r->server_cpu = s1.cpu_s - s0.cpu_s;
        r->rss_before = s0.rss_kb;
        r->rss_after = s1.rss_kb;
    }
    uint64_t expected = 0;
    for (uint32_t c = 0; c < o->channels; c++)
        expected += chan_pubs[c] * subs_on_channel(g, c);
    uint64_t deadline = lg_now() + lg_secs_ns(o->timeout);
    g->now = lg_now();
    while (g->deliveries_measured < expected && g->now < deadline)
        wl_poll(g, 10);
    poll_for(g, 0.05); /* a duplicate would show up now */
    r->has_pubs = true;
    r->publications = seq_end - seq_meas;
    r->seconds = (double)(t_last - t_meas) / 1e9 + 1.0 / o->rate;
    r->deliveries = g->deliveries_measured;
    r->expected = expected;
    r->errors = check_per_sub(g, chan_pubs);
    free(chan_pubs);
}

static void run_rounds(struct wl *g, struct result *r)
{
    const struct wl_opts *o = &g->o;
    uint64_t *chan_pubs = td_xcalloc(o->channels, sizeof(*chan_pubs));
    uint64_t per_round = (uint64_t)o->subs * o->batch;
    uint64_t want = g->deliveries_all;
    uint64_t t_start = lg_now(), t_meas = 0, rounds = 0, warm_rounds = 0;
    bool measuring = false;
    struct lg_srv_sample s0 = {0}, s1 = {0};
    double cpu0 = 0;
    for (;;) {
        uint64_t now = lg_now();
        if (!measuring && now - t_start >= lg_secs_ns(o->warmup)) {
            measuring = true;
            g->measure_seq0 = g->seq;
            r->has_cpu = lg_srv_sample(o->server_pid, &s0);
            cpu0 = lg_self_cpu();
            t_meas = now = lg_now();
        }
        if (measuring &&
            (now - t_meas >= lg_secs_ns(o->duration) || (o->rounds > 0 && rounds >= o->rounds)))
            break;
        for (uint32_t b = 0; b < o->batch; b++)
            for (uint32_t ch = 0; ch < o->channels; ch++) {
                if (measuring)
                    chan_pubs[ch]++;
                wl_pub_append(g, ch);
            }
        wl_pub_flush(g);
        want += per_round;
        g->now = g->last_progress = now;
        while (g->deliveries_all < want) {
            wl_poll(g, 50);
            if (g->now - g->last_progress > lg_secs_ns(o->timeout))
                lg_fail("round %" PRIu64 " stalled for %.1f s: %" PRIu64 " of %" PRIu64
                        " deliveries arrived",
                        warm_rounds + rounds + 1, o->timeout,
                        g->deliveries_all - (want - per_round), per_round);
        }
        if (measuring)
            rounds++;
        else
            warm_rounds++;
    }
    uint64_t t_end = lg_now();
    r->loadgen_cpu = lg_self_cpu() - cpu0;
    if (r->has_cpu) {
        lg_srv_sample(o->server_pid, &s1);
        r->server_cpu = s1.cpu_s - s0.cpu_s;
        r->rss_before = s0.rss_kb;
        r->rss_after = s1.rss_kb;
    }
    poll_for(g, 0.05);
    r->has_pubs = true;
    r->seconds = (double)(t_end - t_meas) / 1e9;
    r->publications = rounds * o->batch * o->channels;
    r->deliveries = g->deliveries_measured;
    r->expected = rounds * per_round;
    r->errors = check_per_sub(g, chan_pubs);
    fprintf(stderr, "td_wtload: %" PRIu64 " rounds (+%" PRIu64 " warm-up)\n", rounds, warm_rounds);
    free(chan_pubs);
}

/* ---- report ---- */

static void report(const struct wl *g, const struct result *r)
{
    const struct wl_opts *o = &g->o;
    bool pubs = r->has_pubs, lat = pubs && g->hist.count > 0;
    bool cpu = r->has_cpu && r->server_cpu > 0;
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_byte(&b, '{');
    lg_json_str(&b, "label", o->label);
    lg_json_str(&b, "proto", "webtransport");
    lg_json_str(&b, "mode", o->mode == WL_MODE_RATE ? "rate" : "rounds");
    lg_json_u64(&b, "subs", true, o->subs);
    lg_json_u64(&b, "channels", true, o->channels);
    lg_json_u64(&b, "payload", true, o->payload);
    lg_json_u64(&b, "batch", o->mode == WL_MODE_ROUNDS, o->batch);
    lg_json_u64(&b, "publications", pubs, r->publications);
    lg_json_u64(&b, "deliveries", pubs, r->deliveries);
    lg_json_u64(&b, "expected_deliveries", pubs, r->expected);
    lg_json_num(&b, "seconds", true, r->seconds, 3);
    lg_json_num(&b, "deliveries_per_s", pubs && r->seconds > 0, (double)r->deliveries / r->seconds,
                0);
    lg_json_num(&b, "server_cpu_s", r->has_cpu, r->server_cpu, 2);
    lg_json_num(&b, "deliveries_per_cpu_s", pubs && cpu, (double)r->deliveries / r->server_cpu, 0);
    lg_json_u64(&b, "lat_p50_us", lat, lg_hist_quantile(&g->hist, 0.5));
    lg_json_u64(&b, "lat_p99_us", lat, lg_hist_quantile(&g->hist, 0.99));
    lg_json_u64(&b, "lat_p999_us", lat, lg_hist_quantile(&g->hist, 0.999));
    lg_json_u64(&b, "lat_max_us", lat, g->hist.max);
    lg_json_u64(&b, "rss_before_kb", r->has_cpu, (uint64_t)r->rss_before);
    lg_json_u64(&b, "rss_after_kb", r->has_cpu, (uint64_t)r->rss_after);
    lg_json_num(&b, "setup_s", true, r->setup_s, 3);
    lg_json_u64(&b, "errors", true, r->errors);
    lg_json_num(&b, "loadgen_cpu_s", true, r->loadgen_cpu, 2);
    td_buf_append_str(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    td_buf_free(&b);
}

int main(int argc, char **argv)
{
    struct wl *g = &G;
    lg_set_prog("td_wtload");
    g->ep = -1;
    g->pub.fd = -1;
    parse_opts(&g->o, argc, argv);
    lg_raise_nofile(g->o.subs);
    resolve(g);
    signal(SIGPIPE, SIG_IGN);
    if (gnutls_global_init() != 0)
        lg_fail("gnutls_global_init failed");
    g->t0 = lg_now();
    g->measure_seq0 = UINT64_MAX;
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    if (g->ep < 0)
        lg_fail("epoll_create1: %s", strerror(errno));
    g->rbuf = td_xmalloc((size_t)WL_RECV_BATCH * WL_PKT_BUF);
    g->payload_buf = td_xmalloc((size_t)g->o.payload + 64);
    td_buf_init(&g->scratch);
    g->conns = td_xcalloc(g->o.subs, sizeof(*g->conns));
    for (uint32_t i = 0; i < g->o.subs; i++) {
        struct wl_conn *c = &g->conns[i];
        c->fd = -1;
        c->id = i;
        c->channel = i % g->o.channels;
        c->expiry = UINT64_MAX;
        for (int k = 0; k < WL_TX_N; k++) {
            c->tx[k].id = -1;
            td_buf_init(&c->tx[k].buf);
        }
        for (int k = 0; k < WL_MAX_UNI; k++)
            c->uni[k].id = -1;
        td_buf_init(&c->ctl);
        td_buf_init(&c->req);
        td_buf_init(&c->line);
    }
    wl_quic_init(g);

    struct result r = {0};
    uint64_t t_setup = lg_now();
    setup_subs(g);
    r.setup_s = (double)(lg_now() - t_setup) / 1e9;
    setup_pub(g);
    fprintf(stderr,
            "td_wtload: %" PRIu32 " WebTransport sessions ready in %.2f s (%.0f/s); publisher "
            "ready\n",
            g->ready_subs, r.setup_s, (double)g->o.subs / (r.setup_s > 0 ? r.setup_s : 1));
    if (g->o.mode == WL_MODE_RATE)
        run_rate(g, &r);
    else
        run_rounds(g, &r);
    if (r.loadgen_cpu > 0 && r.seconds > 0)
        fprintf(stderr,
                "td_wtload: loadgen CPU %.2f s over %.2f s (%.0f%% of one core); %" PRIu64
                " datagrams in, %" PRIu64 " out\n",
                r.loadgen_cpu, r.seconds, 100.0 * r.loadgen_cpu / r.seconds, g->pkts_in,
                g->pkts_out);
    report(g, &r);
    wl_quic_free(g);
    wl_pub_free(g);
    free(g->conns);
    free(g->rbuf);
    free(g->payload_buf);
    td_buf_free(&g->scratch);
    free(g->o.src);
    close(g->ep);
    gnutls_global_deinit();
    if (r.errors > 0 || r.deliveries != r.expected)
        lg_fail("%" PRIu64 " of %" PRIu64 " expected deliveries arrived (%" PRIu64
                " per-session errors)",
                r.deliveries, r.expected, r.errors);
    return 0;
}
