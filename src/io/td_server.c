/*
 * td_server.c - the TCP server (see td_server.h): the listener, the routing of HTTP requests
 * to the transports (td_ws_conn.c, td_emu_conn.c, td_yjs_conn.c) and to the server's own
 * endpoints (the server API, whose answer may wait for the store while the connection's
 * input is held; /metrics; /health; static files), the durable store's wiring and restore,
 * and start/shutdown/free. The connection core is td_conn.c.
 */
#include "io/td_server.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/td_jwt.h"
#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_log.h"
#include "http/td_api.h"
#include "http/td_http1.h"
#include "http/td_metrics.h"
#include "http/td_static.h"
#include "io/td_conn.h"
#include "io/td_wtsrv.h"
#include "tls/td_tls.h"

/* ---- the server API and /metrics ----------------------------------------------------- */

static void on_api_done(void *ud, int status, const struct td_buf *body)
{
    struct td_conn_api_wait *w = ud;
    struct td_conn *c = w->conn;
    w->answered = true;
    if (c != NULL) {
        c->api_wait = NULL;
        td_conn_respond(c, status, "application/json", NULL, body->data, body->len, w->keep_alive);
    }
    if (w->in_call)
        return; /* conn_handle_api frees it and carries on with the input */
    free(w);
    if (c == NULL || c->destroyed || c->state != TD_CONN_HTTP)
        return;
    td_conn_resume(c); /* requests that arrived meanwhile are in c->in */
}

static void conn_handle_api(struct td_conn *c, const struct td_http_request *req,
                            const uint8_t *body)
{
    struct td_server *srv = c->srv;
    struct td_str method = {req->path.p + 5, req->path.n - 5}; /* after "/api/" */
    const char *json = "application/json";
    if (!td_conn_str_eq(req->method, "POST")) {
        static const char msg[] = "{\"error\":{\"code\":107,\"message\":\"use POST\"}}";
        td_conn_respond(c, 405, json, "Allow: POST\r\n", msg, sizeof(msg) - 1, req->keep_alive);
        return;
    }
    if (!td_api_authorized(srv->cfg, req)) {
        static const char msg[] =
            "{\"error\":{\"code\":101,\"message\":\"unauthorized: send the API key in "
            "X-API-Key or Authorization: apikey KEY\"}}";
        td_conn_respond(c, 401, json, NULL, msg, sizeof(msg) - 1, req->keep_alive);
        return;
    }
    int64_t now = td_conn_now(c);
    struct td_conn_api_wait *w = td_xcalloc(1, sizeof(*w));
    w->conn = c;
    w->keep_alive = req->keep_alive;
    w->in_call = true;
    c->api_wait = w;
    td_api_call(&srv->hub, srv->yrooms, method, (const char *)body, (size_t)req->content_length,
                now, (now - srv->started_ms) / 1000, on_api_done, w);
    w->in_call = false;
    if (w->answered) {
        free(w);
        return;
    }
    /* The answer waits for a commit: read nothing more until it is sent, so answers keep
     * the order of requests and a pipelining client cannot grow our input buffer. */
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void conn_respond_metrics(struct td_conn *c, const struct td_http_request *req)
{
    struct td_server *srv = c->srv;
    struct td_metrics m = {0};
    m.tcp_connections = srv->nconns;
    m.clients = srv->nws;
    m.subscriptions = srv->hub.stats.subscriptions;
    m.channels = srv->hub.channels.count;
    for (size_t i = 0; i < srv->hub.channels.cap; i++) {
        const struct td_channel *ch = srv->hub.channels.slots[i].value;
        if (srv->hub.channels.slots[i].key != NULL)
            m.history_publications += ch->stream.count;
    }
    m.publications_total = srv->hub.stats.publications;
    m.deliveries_total = srv->hub.stats.deliveries;
    m.slow_disconnects_total = srv->hub.stats.slow_disconnects;
    m.bytes_in_total = srv->bytes_in;
    m.bytes_out_total = srv->bytes_out;
    m.uptime_seconds = (td_conn_now(c) - srv->started_ms) / 1000;
    struct td_store_stats st;
    if (srv->store != NULL) {
        td_store_worker_stats(&srv->store_worker, &st);
        m.store_enabled = true;
        m.store_pending = srv->hub.stats.store_pending;
        m.store_commits_failed = st.failed_commits;
        m.store_expired_rows = st.expired_rows;
        m.commit_bounds = td_store_worker_buckets;
        m.commit_nbounds = TD_STORE_WORKER_NBUCKETS;
        m.commit_buckets = st.commit_buckets;
        m.commit_sum_seconds = st.commit_seconds_sum;
        m.committed_ops_total = st.committed_ops;
    }
    if (srv->yrooms != NULL) {
        struct td_yrooms_stats ys;
        td_yrooms_stats(srv->yrooms, &ys);
        m.yjs_enabled = true;
        m.yjs_rooms = ys.rooms;
        m.yjs_connections = ys.conns;
        m.yjs_updates_total = ys.updates;
        m.yjs_rejected_total = ys.rejected;
    }
    if (srv->tls != NULL) {
        m.tls_enabled = true;
        m.tls_handshakes_total = srv->tls_handshakes;
        m.tls_handshake_errors_total = srv->tls_handshake_errors;
    }
    if (srv->wt != NULL) {
        struct td_wtsrv_stats ws;
        td_wtsrv_stats(srv->wt, &ws);
        m.wt_enabled = true;
        m.wt_sessions = ws.sessions;
        m.wt_connections = ws.conns;
        m.wt_sessions_total = ws.accepted;
        m.wt_refused_total = ws.refused;
        m.wt_datagrams_total = ws.datagrams;
        m.quic_packets_in_total = ws.packets_in;
        m.quic_packets_out_total = ws.packets_out;
        m.quic_dropped_total = ws.dropped;
        m.quic_conns_refused_total = ws.conns_refused;
    }
    struct td_buf b;
    td_buf_init(&b);
    td_metrics_write(&b, &m);
    td_conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len,
                    req->keep_alive);
    td_buf_free(&b);
}

/* ---- routing ----------------------------------------------------------------------- */

/* Handles one complete request. */
void td_server_handle_request(struct td_conn *c, const struct td_http_request *req,
                              const uint8_t *body)
{
    if (td_conn_str_eq(req->path, "/connection/websocket")) {
        td_ws_conn_upgrade(c, req);
    } else if (td_conn_str_eq(req->path, "/connection/http_stream")) {
        td_emu_conn_handle_stream(c, req, body, false);
    } else if (td_conn_str_eq(req->path, "/connection/sse")) {
        td_emu_conn_handle_stream(c, req, body, true);
    } else if (td_conn_str_eq(req->path, "/emulation")) {
        td_emu_conn_handle_emulation(c, req, body);
    } else if (c->srv->yrooms != NULL && req->path.n >= 5 && memcmp(req->path.p, "/yjs/", 5) == 0) {
        td_yjs_conn_upgrade(c, req);
    } else if (td_conn_str_eq(req->path, "/metrics")) {
        conn_respond_metrics(c, req);
    } else if (td_conn_str_eq(req->path, "/health")) {
        td_conn_respond(c, 200, "application/json", NULL, "{}", 2, req->keep_alive);
    } else if (c->srv->cfg->static_dir[0] != '\0' && req->path.n > strlen(TD_STATIC_PREFIX) &&
               memcmp(req->path.p, TD_STATIC_PREFIX, strlen(TD_STATIC_PREFIX)) == 0) {
        struct td_buf b;
        td_buf_init(&b);
        td_static_respond(c->srv->cfg->static_dir, req->method, req->path, req->keep_alive, &b);
        td_conn_enqueue_buf(c, &b);
        td_buf_free(&b);
        if (!req->keep_alive)
            td_conn_begin_close(c);
    } else if (req->path.n > 5 && memcmp(req->path.p, "/api/", 5) == 0) {
        conn_handle_api(c, req, body);
    } else {
        td_conn_respond_text(c, 404, "not found\n", req->keep_alive);
    }
}

/* ---- accept, start, stop ------------------------------------------------------------ */

static void on_connection(uv_stream_t *server, int status)
{
    struct td_server *srv = server->data;
    if (status < 0) {
        td_log_warn("accept failed", "err=\"%s\"", uv_strerror(status));
        return;
    }
    td_conn_accept(srv, server);
}

static void on_hub_timer(uv_timer_t *t)
{
    struct td_server *srv = t->data;
    td_hub_tick(&srv->hub, (int64_t)uv_now(srv->loop));
    if (srv->yrooms != NULL)
        td_yrooms_tick(srv->yrooms, (int64_t)uv_now(srv->loop));
}

/* ---- the durable store ------------------------------------------------------------- */

static bool ns_durable(const struct td_ns_opts *ns)
{
    return ns->history_size > 0 && ns->history_ttl_ms > 0 && ns->history_durable;
}

struct store_load_ctx {
    struct td_server *srv;
    uint64_t channels, pubs;
};

static void *on_load_channel(void *ud, const char *name, size_t len, const char *epoch,
                             uint64_t top, int64_t last_pub_wall_ms)
{
    struct store_load_ctx *x = ud;
    int64_t now = (int64_t)uv_now(x->srv->loop);
    struct td_channel *ch = td_hub_restore_channel(&x->srv->hub, (struct td_str){name, len}, epoch,
                                                   top, last_pub_wall_ms, now);
    if (ch != NULL)
        x->channels++;
    return ch;
}

static void on_load_pub(void *ud, void *channel, uint64_t offset, int64_t wall_ms,
                        struct td_str data, bool has_info, const struct td_client_info *info)
{
    struct store_load_ctx *x = ud;
    td_hub_restore_pub(&x->srv->hub, channel, offset, wall_ms, data, has_info ? info : NULL,
                       (int64_t)uv_now(x->srv->loop));
    x->pubs++;
}

static void on_store_done(void *ud, struct td_store_op *op)
{
    struct td_server *srv = ud;
    if (td_store_op_is_doc(op->kind)) {
        td_yrooms_store_done(srv->yrooms, op, (int64_t)uv_now(srv->loop));
        return;
    }
    td_hub_store_done(&srv->hub, op, (int64_t)uv_now(srv->loop));
}

static void server_store_submit(void *ud, struct td_store_op *op)
{
    struct td_server *srv = ud;
    td_store_worker_submit(&srv->store_worker, op);
}

static void server_doc_submit(void *ud, struct td_store_op *op)
{
    struct td_server *srv = ud;
    td_store_worker_submit(&srv->store_worker, op);
}

/* Opens the store and restores history when any namespace keeps durable history or Yjs
 * rooms are served (their documents live in the store). */
static int server_store_open(struct td_server *srv)
{
    const struct td_config *cfg = srv->cfg;
    bool any = ns_durable(&cfg->without_ns) || srv->yrooms != NULL;
    uint32_t max_size = ns_durable(&cfg->without_ns) ? cfg->without_ns.history_size : 0;
    for (size_t i = 0; i < cfg->n_namespaces; i++) {
        if (ns_durable(&cfg->namespaces[i])) {
            any = true;
            if (cfg->namespaces[i].history_size > max_size)
                max_size = cfg->namespaces[i].history_size;
        }
    }
    if (!any)
        return 0;
    enum td_store_sync sync;
    if (strcmp(cfg->store_sync, "full") == 0) {
        sync = TD_STORE_SYNC_FULL;
    } else if (strcmp(cfg->store_sync, "normal") == 0) {
        sync = TD_STORE_SYNC_NORMAL;
    } else if (strcmp(cfg->store_sync, "off") == 0) {
        sync = TD_STORE_SYNC_OFF;
    } else {
        td_log_error("store.sync must be \"full\", \"normal\" or \"off\"", "value=\"%s\"",
                     cfg->store_sync);
        return TD_EINVAL;
    }
    char err[512];
    int rv = td_store_open(cfg->data_dir, sync, &srv->store, err, sizeof(err));
    if (rv != 0) {
        td_log_error("cannot open the durable store", "data_dir=\"%s\" err=\"%s\"", cfg->data_dir,
                     err);
        return rv;
    }
    /* Set before loading: restored channels must see that history is durable. */
    srv->hub.store.submit = server_store_submit;
    srv->hub.store.ud = srv;
    uint64_t t0 = uv_hrtime();
    struct store_load_ctx x = {.srv = srv};
    struct td_store_load_cb cb = {on_load_channel, on_load_pub, &x};
    rv = td_store_load(srv->store, srv->hub.wall_ms(), max_size, &cb, err, sizeof(err));
    if (rv != 0) {
        td_log_error("cannot load history from the durable store", "err=\"%s\"", err);
        return rv;
    }
    td_log_info("history restored", "data_dir=\"%s\" channels=%llu publications=%llu ms=%.1f",
                cfg->data_dir, (unsigned long long)x.channels, (unsigned long long)x.pubs,
                (double)(uv_hrtime() - t0) / 1e6);
    struct td_store *ckpt = NULL;
    if (td_store_open(cfg->data_dir, sync, &ckpt, err, sizeof(err)) != 0) {
        td_log_warn("no second store connection for checkpoints", "err=\"%s\"", err);
        ckpt = NULL;
    }
    rv = td_store_worker_start(&srv->store_worker, srv->loop, srv->store, ckpt, srv->hub.wall_ms,
                               on_store_done, srv);
    if (rv != 0) {
        td_log_error("cannot start the store thread", "err=\"%s\"", uv_strerror(rv));
        return rv;
    }
    if (srv->yrooms != NULL)
        td_yrooms_set_store(srv->yrooms, server_doc_submit, srv);
    return 0;
}

static void server_store_close(struct td_server *srv)
{
    td_store_worker_stop(&srv->store_worker);
    srv->hub.store.submit = NULL;
}

/* Releases the TCP TLS context when td_server_start fails after creating it. */
static void server_tls_free(struct td_server *srv)
{
    td_tls_ctx_del(srv->tls);
    srv->tls = NULL;
    free(srv->tls_plain);
    srv->tls_plain = NULL;
}

int td_server_start(struct td_server *srv, uv_loop_t *loop, const struct td_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    srv->started_ms = (int64_t)uv_now(loop);
    bool tls = cfg->tls_cert_file[0] != '\0' && cfg->tls_key_file[0] != '\0';
    if (tls != (cfg->tls_cert_file[0] != '\0' || cfg->tls_key_file[0] != '\0')) {
        td_log_error("tls.cert_file and tls.key_file must both be set", "%s", "");
        return TD_EINVAL;
    }
    if (tls && cfg->tls_tcp) { /* https and wss only; the QUIC side loads the files itself */
        char err[512];
        if (td_tls_ctx_new(&srv->tls, cfg->tls_cert_file, cfg->tls_key_file, err, sizeof(err)) !=
            0) {
            td_log_error("cannot serve TLS on TCP", "err=\"%s\"", err);
            return TD_EINVAL;
        }
        srv->tls_plain = td_xmalloc(TD_CONN_TLS_PLAIN);
    }
    td_hub_init(&srv->hub, cfg);
    if (cfg->token_hmac_secret_key[0] || cfg->token_rsa_public_key[0] ||
        cfg->token_ecdsa_public_key[0]) {
        char err[256];
        srv->hub.keys = td_jwt_keys_new(cfg->token_hmac_secret_key, cfg->token_rsa_public_key,
                                        cfg->token_ecdsa_public_key, err, sizeof(err));
        if (srv->hub.keys == NULL) {
            td_log_error("bad token key in client.token", "err=\"%s\"", err);
            td_hub_free(&srv->hub);
            server_tls_free(srv);
            return TD_EINVAL;
        }
    }
    if (cfg->yjs_enabled) {
        struct td_yrooms_config ycfg = {
            .max_message = cfg->yjs_max_update_size,
            .max_document = (size_t)cfg->yjs_max_document_size,
            .compact_every = cfg->yjs_compact_every,
            .idle_unload_ms = cfg->yjs_idle_unload_ms,
        };
        srv->yrooms = td_yrooms_new(&ycfg, &td_yjs_conn_ops);
        td_hub_set_yrooms(&srv->hub, srv->yrooms); /* "yjs" channels are rooms */
    }
    int rv = server_store_open(srv);
    if (rv != 0) {
        td_yrooms_free(srv->yrooms);
        srv->yrooms = NULL;
        td_hub_free(&srv->hub);
        td_store_close(srv->store);
        server_tls_free(srv);
        return rv;
    }
    struct sockaddr_storage addr;
    rv = uv_ip4_addr(cfg->address, cfg->port, (struct sockaddr_in *)&addr);
    if (rv != 0)
        rv = uv_ip6_addr(cfg->address, cfg->port, (struct sockaddr_in6 *)&addr);
    if (rv != 0) {
        td_log_error("invalid address", "address=%s", cfg->address);
        server_store_close(srv);
        server_tls_free(srv);
        return rv;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    rv = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
    if (rv != 0) {
        td_log_error("cannot listen", "address=%s port=%d err=\"%s\"", cfg->address, cfg->port,
                     uv_strerror(rv));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        server_store_close(srv);
        server_tls_free(srv);
        return rv;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    td_emu_init(&srv->emu);
    td_conn_loop_init(srv);
    uv_timer_init(loop, &srv->hub_timer);
    srv->hub_timer.data = srv;
    uv_timer_start(&srv->hub_timer, on_hub_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->hub_timer);
    const char *tls_mode = srv->tls != NULL ? "on" : tls ? "quic-only" : "off";
    td_log_info("listening", "address=%s port=%d tls=%s", cfg->address, srv->bound_port, tls_mode);
    if (cfg->webtransport_enabled) {
        char err[256];
        rv = td_wtsrv_start(&srv->wt, loop, cfg, &srv->hub, cfg->address, srv->bound_port, err,
                            sizeof(err));
        if (rv != 0) {
            td_log_error("cannot serve webtransport", "err=\"%s\"", err);
            td_server_shutdown(srv);
            return rv;
        }
        td_log_info("webtransport listening",
                    "address=%s udp_port=%d path=/connection/webtransport", cfg->address,
                    td_wtsrv_port(srv->wt));
    }
    return 0;
}

void td_server_shutdown(struct td_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    /* Commit what is queued and send those answers before the connections close. */
    server_store_close(srv);
    if (srv->wt != NULL)
        td_wtsrv_shutdown(srv->wt, NULL, NULL);
    for (struct td_conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->state == TD_CONN_WS)
            td_ws_conn_close(c, TD_DISC_SHUTDOWN, "shutdown");
        else if (c->state == TD_CONN_STREAM)
            td_emu_conn_close(c, TD_DISC_SHUTDOWN, "shutdown");
        else
            td_conn_begin_close(c);
    }
    uv_timer_stop(&srv->hub_timer);
    uv_close((uv_handle_t *)&srv->hub_timer, NULL);
    /* The flush check stays active (unreferenced) so closing connections still drain. */
}

void td_server_free(struct td_server *srv)
{
    uv_close((uv_handle_t *)&srv->flush_idle, NULL);
    uv_close((uv_handle_t *)&srv->wheel_timer, NULL);
    uv_close((uv_handle_t *)&srv->flush_check, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    td_wtsrv_free(srv->wt);
    td_emu_free(&srv->emu);
    td_yrooms_free(srv->yrooms);
    td_hub_free(&srv->hub);
    td_store_close(srv->store);
    free(srv->wheel);
    td_tls_ctx_del(srv->tls); /* after the loop closed every connection and so its session */
    free(srv->tls_plain);
}
