/*
 * loadgen.c - td_loadgen: command line, the four modes and the JSON report.
 *
 *   rounds   closed loop: each round the publisher sends --batch publications to every
 *            channel in one write and waits for all subs*batch deliveries
 *   rate     open loop: --rate publications/s in total, paced on a 1 ms tick, then a wait
 *            of up to --timeout for stragglers
 *   idle     subscribe, settle 2 s, measure server RSS per connection, hold --duration
 *   connect  set up --subs connections (at most 256 in flight) and report the rate
 *
 * Exactly one JSON line goes to stdout at the end; everything else goes to stderr. See
 * bench/loadgen/README.md for the fields.
 */
#include "loadgen.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/td_alloc.h"

static struct lg G; /* large (the histogram): static rather than on the stack */

/* What the report says; a false has_* prints null. */
struct result {
    bool has_pubs;
    uint64_t publications, deliveries, expected, errors;
    double seconds;
    bool has_cpu;
    double server_cpu;
    bool has_rss;
    long rss_before, rss_after;
    bool has_rss_per_conn;
    double rss_per_conn;
    bool has_connect;
    double connect_per_s;
    double loadgen_cpu;
};

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: td_loadgen --port P [--host 127.0.0.1] [--path PATH]\n"
            "         --proto centrifuge-json|centrifuge-protobuf|raw|nats\n"
            "         --mode rounds|rate|idle|connect --subs N [--channels C] [--payload BYTES]\n"
            "         [--batch B] [--duration SEC] [--rounds R] [--rate R] [--warmup SEC]\n"
            "         [--server-pid PID] [--src-ips A,B,...] [--label NAME] [--timeout SEC]\n"
            "         [--tls]\n"
            "\n"
            "  --tls  wss: every connection (subscribers and publisher) does a TLS handshake\n"
            "         (GnuTLS, ALPN http/1.1) before the WebSocket upgrade. The server's\n"
            "         certificate is NOT verified: this is a loopback benchmark tool.\n");
}

static void parse_opts(struct lg_opts *o, int argc, char **argv)
{
    enum {
        O_PORT = 256,
        O_HOST,
        O_PATH,
        O_PROTO,
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
        O_TLS,
        O_HELP
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, O_PORT},
        {"host", required_argument, NULL, O_HOST},
        {"path", required_argument, NULL, O_PATH},
        {"proto", required_argument, NULL, O_PROTO},
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
        {"tls", no_argument, NULL, O_TLS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    o->host = "127.0.0.1";
    o->proto = LG_PROTO_JSON;
    o->mode = LG_MODE_ROUNDS;
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
        case O_HOST:
            o->host = optarg;
            break;
        case O_PATH:
            if (optarg[0] != '/' || strlen(optarg) > 500)
                lg_fail("--path must start with '/' (and be at most 500 bytes)");
            o->path = optarg;
            break;
        case O_PROTO:
            if (strcmp(optarg, "centrifuge-json") == 0)
                o->proto = LG_PROTO_JSON;
            else if (strcmp(optarg, "centrifuge-protobuf") == 0)
                o->proto = LG_PROTO_PB;
            else if (strcmp(optarg, "raw") == 0)
                o->proto = LG_PROTO_RAW;
            else if (strcmp(optarg, "nats") == 0)
                o->proto = LG_PROTO_NATS;
            else
                lg_fail("--proto: unknown protocol '%s'", optarg);
            break;
        case O_MODE:
            if (strcmp(optarg, "rounds") == 0)
                o->mode = LG_MODE_ROUNDS;
            else if (strcmp(optarg, "rate") == 0)
                o->mode = LG_MODE_RATE;
            else if (strcmp(optarg, "idle") == 0)
                o->mode = LG_MODE_IDLE;
            else if (strcmp(optarg, "connect") == 0)
                o->mode = LG_MODE_CONNECT;
            else
                lg_fail("--mode: unknown mode '%s'", optarg);
            break;
        case O_SUBS:
            o->subs = (uint32_t)lg_arg_uint("--subs", optarg, 1, 10000000);
            break;
        case O_CHANNELS:
            o->channels = (uint32_t)lg_arg_uint("--channels", optarg, 1, 10000000);
            break;
        case O_PAYLOAD:
            o->payload = (uint32_t)lg_arg_uint("--payload", optarg, 16, 16 << 20);
            break;
        case O_BATCH:
            o->batch = (uint32_t)lg_arg_uint("--batch", optarg, 1, 1000000);
            break;
        case O_DURATION:
            o->duration = lg_arg_double("--duration", optarg, 0);
            break;
        case O_ROUNDS:
            o->rounds = lg_arg_uint("--rounds", optarg, 1, UINT64_MAX);
            break;
        case O_RATE:
            o->rate = lg_arg_double("--rate", optarg, 0);
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
            o->timeout = lg_arg_double("--timeout", optarg, 0.001);
            break;
        case O_TLS:
            o->tls = true;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(1);
        }
    }
    if (optind < argc)
        lg_fail("unexpected argument '%s'", argv[optind]);
    if (o->port == NULL)
        lg_fail("--port is required");
    if (o->subs == 0)
        lg_fail("--subs is required");
    if (o->mode == LG_MODE_RATE && o->rate <= 0)
        lg_fail("--mode rate needs --rate > 0");
    if (o->mode == LG_MODE_RATE && o->rate * o->duration < 1)
        lg_fail("--rate * --duration must be at least one publication");
}

/* ---- environment ---- */

static void resolve(struct lg *g)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(g->o.host, g->o.port, &hints, &res);
    if (rv != 0 || res == NULL)
        lg_fail("cannot resolve %s: %s", g->o.host, gai_strerror(rv));
    memcpy(&g->addr, res->ai_addr, res->ai_addrlen);
    g->addrlen = res->ai_addrlen;
    if (res->ai_family == AF_INET6) {
        if (g->o.nsrc > 0)
            lg_fail("--src-ips takes IPv4 addresses but %s is IPv6", g->o.host);
        snprintf(g->hostport, sizeof(g->hostport), "[%s]:%s", g->o.host, g->o.port);
    } else {
        snprintf(g->hostport, sizeof(g->hostport), "%s:%s", g->o.host, g->o.port);
    }
    freeaddrinfo(res);
}

/* ---- setup ---- */

static void check_stall(struct lg *g, const char *what)
{
    if (g->now - g->last_progress > lg_secs_ns(g->o.timeout))
        lg_fail("%s stalled for %.1f s: %" PRIu32 " of %" PRIu32 " subscribers ready%s", what,
                g->o.timeout, g->ready_subs, g->o.subs,
                g->o.mode == LG_MODE_CONNECT || g->o.mode == LG_MODE_IDLE || g->pub_ready
                    ? ""
                    : ", publisher not ready");
}

static void setup_subs(struct lg *g)
{
    g->now = g->last_progress = lg_now();
    uint64_t next_report = g->now + 1000000000u;
    while (g->ready_subs < g->o.subs) {
        while (g->started < g->o.subs && g->inflight < LG_MAX_INFLIGHT)
            lg_conn_start(g, &g->conns[g->started++]);
        lg_poll(g, 100);
        check_stall(g, "setup");
        if (g->now >= next_report) {
            fprintf(stderr, "td_loadgen: %" PRIu32 "/%" PRIu32 " subscribers ready\n",
                    g->ready_subs, g->o.subs);
            next_report = g->now + 1000000000u;
        }
    }
}

static void setup_pub(struct lg *g)
{
    lg_conn_start(g, &g->conns[g->o.subs]);
    g->now = g->last_progress = lg_now();
    while (!g->pub_ready) {
        lg_poll(g, 100);
        check_stall(g, "publisher setup");
    }
    if (g->o.proto == LG_PROTO_RAW) { /* no acknowledgement: give the server a moment */
        uint64_t until = lg_now() + 200000000u;
        while (g->now < until)
            lg_poll(g, 10);
    }
}

/* poll_for keeps answering the server for secs seconds. */
static void poll_for(struct lg *g, double secs)
{
    uint64_t until = lg_now() + lg_secs_ns(secs);
    g->now = lg_now();
    while (g->now < until) {
        uint64_t left_ms = (until - g->now) / 1000000u;
        lg_poll(g, (int)(left_ms > 100 ? 100 : left_ms + 1));
    }
}

static uint64_t subs_on_channel(const struct lg *g, uint32_t ch)
{
    uint32_t s = g->o.subs, c = g->o.channels;
    return s / c + (ch < s % c ? 1u : 0u);
}

/* check_per_sub compares each subscriber's measured deliveries with what was published on
 * its channel; returns the total shortfall plus excess (0 when all is well). */
static uint64_t check_per_sub(const struct lg *g, const uint64_t *chan_pubs)
{
    uint64_t bad = 0, bad_subs = 0;
    for (uint32_t i = 0; i < g->o.subs; i++) {
        const struct lg_conn *c = &g->conns[i];
        uint64_t want = chan_pubs[c->channel];
        if (c->measured != want) {
            bad += c->measured > want ? c->measured - want : want - c->measured;
            if (bad_subs++ < 5)
                fprintf(stderr,
                        "td_loadgen: subscriber %" PRIu32 " (bench%" PRIu32 ") got %" PRIu64
                        " of %" PRIu64 " deliveries\n",
                        i, c->channel, c->measured, want);
        }
    }
    if (bad_subs > 0)
        fprintf(stderr, "td_loadgen: %" PRIu64 " subscribers with wrong delivery counts\n",
                bad_subs);
    return bad;
}

/* ---- modes ---- */

static void run_rounds(struct lg *g, struct result *r)
{
    const struct lg_opts *o = &g->o;
    struct lg_conn *pub = &g->conns[o->subs];
    uint64_t *chan_pubs = td_xcalloc(o->channels, sizeof(*chan_pubs));
    uint64_t per_round = (uint64_t)o->subs * o->batch;
    uint64_t want = g->deliveries_all;
    uint64_t t_start = lg_now(), t_meas = 0, rounds = 0, warm_rounds = 0;
    uint64_t round_sum = 0, round_max = 0;
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
                lg_pub_append(g, ch);
            }
        lg_conn_flush(g, pub);
        want += per_round;
        g->now = g->last_progress = now;
        while (g->deliveries_all < want) {
            lg_poll(g, 100);
            if (g->now - g->last_progress > lg_secs_ns(o->timeout))
                lg_fail("round %" PRIu64 " stalled for %.1f s: %" PRIu64 " of %" PRIu64
                        " deliveries arrived",
                        warm_rounds + rounds + 1, o->timeout,
                        g->deliveries_all - (want - per_round), per_round);
        }
        uint64_t took = g->now - now;
        if (measuring) {
            rounds++;
            round_sum += took;
            if (took > round_max)
                round_max = took;
        } else {
            warm_rounds++;
        }
    }
    uint64_t t_end = lg_now();
    r->loadgen_cpu = lg_self_cpu() - cpu0;
    if (r->has_cpu) {
        lg_srv_sample(o->server_pid, &s1);
        r->server_cpu = s1.cpu_s - s0.cpu_s;
        r->has_rss = true;
        r->rss_before = s0.rss_kb;
        r->rss_after = s1.rss_kb;
    }
    r->has_pubs = true;
    r->seconds = (double)(t_end - t_meas) / 1e9;
    r->publications = rounds * o->batch * o->channels;
    r->deliveries = g->deliveries_measured;
    r->expected = rounds * per_round;
    r->errors = check_per_sub(g, chan_pubs);
    fprintf(stderr,
            "td_loadgen: %" PRIu64 " rounds (+%" PRIu64 " warm-up), round avg %.3f ms max %.3f ms, "
            "%" PRIu64 " publish replies\n",
            rounds, warm_rounds, rounds ? (double)round_sum / (double)rounds / 1e6 : 0.0,
            (double)round_max / 1e6, g->pub_replies);
    free(chan_pubs);
}

static void run_rate(struct lg *g, struct result *r)
{
    const struct lg_opts *o = &g->o;
    struct lg_conn *pub = &g->conns[o->subs];
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
            lg_pub_append(g, ch);
            ch = ch + 1 == o->channels ? 0 : ch + 1;
            sent = true;
        }
        if (sent) {
            t_last = now;
            lg_conn_flush(g, pub);
        }
        lg_poll(g, 1);
    }
    r->loadgen_cpu = lg_self_cpu() - cpu0;
    if (r->has_cpu) {
        lg_srv_sample(o->server_pid, &s1);
        r->server_cpu = s1.cpu_s - s0.cpu_s;
        r->has_rss = true;
        r->rss_before = s0.rss_kb;
        r->rss_after = s1.rss_kb;
    }
    uint64_t expected = 0;
    for (uint32_t c = 0; c < o->channels; c++)
        expected += chan_pubs[c] * subs_on_channel(g, c);
    uint64_t deadline = lg_now() + lg_secs_ns(o->timeout);
    g->now = lg_now();
    while (g->deliveries_measured < expected && g->now < deadline)
        lg_poll(g, 10);
    poll_for(g, 0.05); /* a duplicate would show up now */
    r->has_pubs = true;
    r->publications = seq_end - seq_meas;
    r->seconds = (double)(t_last - t_meas) / 1e9 + 1.0 / o->rate;
    r->deliveries = g->deliveries_measured;
    r->expected = expected;
    r->errors = check_per_sub(g, chan_pubs);
    free(chan_pubs);
}

static void run_idle(struct lg *g, struct result *r)
{
    struct lg_srv_sample s0 = {0}, s1 = {0}, s2 = {0};
    r->has_rss = lg_srv_sample(g->o.server_pid, &s0);
    setup_subs(g);
    fprintf(stderr, "td_loadgen: %" PRIu32 " subscribers ready, settling 2 s\n", g->ready_subs);
    poll_for(g, 2.0);
    if (r->has_rss) {
        lg_srv_sample(g->o.server_pid, &s1);
        r->rss_before = s0.rss_kb;
        r->rss_after = s1.rss_kb;
        r->has_rss_per_conn = true;
        r->rss_per_conn = (double)(s1.rss_kb - s0.rss_kb) * 1024.0 / (double)g->o.subs;
    }
    double cpu0 = lg_self_cpu();
    poll_for(g, g->o.duration);
    r->loadgen_cpu = lg_self_cpu() - cpu0;
    r->seconds = g->o.duration;
    if (r->has_rss) {
        lg_srv_sample(g->o.server_pid, &s2);
        r->has_cpu = true;
        r->server_cpu = s2.cpu_s - s1.cpu_s;
    }
}

static void run_connect(struct lg *g, struct result *r)
{
    struct lg_srv_sample s0 = {0}, s1 = {0};
    r->has_cpu = r->has_rss = lg_srv_sample(g->o.server_pid, &s0);
    double cpu0 = lg_self_cpu();
    setup_subs(g);
    r->loadgen_cpu = lg_self_cpu() - cpu0;
    if (r->has_cpu) {
        lg_srv_sample(g->o.server_pid, &s1);
        r->server_cpu = s1.cpu_s - s0.cpu_s;
        r->rss_before = s0.rss_kb;
        r->rss_after = s1.rss_kb;
    }
    r->seconds = (double)(g->t_last_ready - g->t_first_connect) / 1e9;
    r->has_connect = r->seconds > 0;
    r->connect_per_s = r->has_connect ? (double)g->o.subs / r->seconds : 0;
}

/* ---- report ---- */

static const char *const proto_names[] = {"centrifuge-json", "centrifuge-protobuf", "raw", "nats"};
static const char *const mode_names[] = {"rounds", "rate", "idle", "connect"};

static void report(const struct lg *g, const struct result *r)
{
    const struct lg_opts *o = &g->o;
    bool pubs = r->has_pubs, lat = pubs && g->hist.count > 0;
    bool cpu = r->has_cpu && r->server_cpu > 0;
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_byte(&b, '{');
    lg_json_str(&b, "label", o->label);
    lg_json_str(&b, "proto", proto_names[o->proto]);
    lg_json_bool(&b, "tls", o->tls);
    lg_json_str(&b, "mode", mode_names[o->mode]);
    lg_json_u64(&b, "subs", true, o->subs);
    lg_json_u64(&b, "channels", true, o->channels);
    lg_json_u64(&b, "payload", true, o->payload);
    lg_json_u64(&b, "batch", o->mode == LG_MODE_ROUNDS, o->batch);
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
    lg_json_u64(&b, "rss_before_kb", r->has_rss, (uint64_t)r->rss_before);
    lg_json_u64(&b, "rss_after_kb", r->has_rss, (uint64_t)r->rss_after);
    lg_json_num(&b, "rss_per_conn_bytes", r->has_rss_per_conn, r->rss_per_conn, 0);
    lg_json_num(&b, "connect_per_s", r->has_connect, r->connect_per_s, 0);
    lg_json_u64(&b, "errors", true, r->errors);
    lg_json_num(&b, "loadgen_cpu_s", true, r->loadgen_cpu, 2);
    td_buf_append_str(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    td_buf_free(&b);
}

int main(int argc, char **argv)
{
    struct lg *g = &G;
    g->ep = -1;
    parse_opts(&g->o, argc, argv);
    lg_raise_nofile(g->o.subs);
    resolve(g);
    signal(SIGPIPE, SIG_IGN);
    g->t0 = lg_now();
    g->measure_seq0 = UINT64_MAX;
    lg_net_init(g);

    struct result r = {0};
    switch (g->o.mode) {
    case LG_MODE_ROUNDS:
    case LG_MODE_RATE:
        setup_subs(g);
        setup_pub(g);
        fprintf(stderr, "td_loadgen: %" PRIu32 " subscribers and the publisher ready\n",
                g->ready_subs);
        if (g->o.mode == LG_MODE_ROUNDS)
            run_rounds(g, &r);
        else
            run_rate(g, &r);
        break;
    case LG_MODE_IDLE:
        run_idle(g, &r);
        break;
    case LG_MODE_CONNECT:
        run_connect(g, &r);
        break;
    }
    if (r.has_pubs && r.loadgen_cpu > 0 && r.seconds > 0)
        fprintf(stderr, "td_loadgen: loadgen CPU %.2f s over %.2f s (%.0f%% of one core)\n",
                r.loadgen_cpu, r.seconds, 100.0 * r.loadgen_cpu / r.seconds);
    report(g, &r);
    lg_net_free(g);
    free(g->o.src);
    if (r.errors > 0 || (r.has_pubs && r.deliveries != r.expected))
        lg_fail("%" PRIu64 " of %" PRIu64 " expected deliveries arrived (%" PRIu64
                " per-subscriber errors)",
                r.deliveries, r.expected, r.errors);
    return 0;
}
