/*
 * td_config.h - server configuration: defaults, JSON file, environment, flags.
 *
 * Key names follow Centrifugo v6 wherever the feature is the same (docs/configuration.md
 * lists every key tandem reads). Durations are Go-style strings ("25s", "1m30s", "720h")
 * or plain numbers of seconds.
 */
#ifndef TD_CONFIG_H
#define TD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Channel options, per namespace (and for channels without a namespace). */
struct td_ns_opts {
    char *name; /* NULL for channel.without_namespace */
    uint32_t history_size;
    int64_t history_ttl_ms;
    int64_t history_meta_ttl_ms;
    bool history_durable; /* history in the durable store (tandem's own key; default true) */
    bool yjs;       /* channels are Yjs rooms (tandem's own key; needs yjs.enabled; history stays in
                     * memory: history_durable is forced off; docs/yjs.md) */
    bool datagrams; /* publications go to WebTransport subscribers as HTTP/3 datagrams
                     * (tandem's own key; docs/webtransport.md) */
    bool force_recovery;
    bool force_positioning;
    bool allow_recovery;
    bool allow_positioning;
    bool presence;
    bool join_leave;
    bool force_push_join_leave;
    bool allow_subscribe_for_client;
    bool allow_subscribe_for_anonymous;
    bool allow_publish_for_subscriber;
    bool allow_publish_for_client;
    bool allow_publish_for_anonymous;
    bool allow_presence_for_subscriber;
    bool allow_presence_for_client;
    bool allow_presence_for_anonymous;
    bool allow_history_for_subscriber;
    bool allow_history_for_client;
    bool allow_history_for_anonymous;
};

struct td_config {
    char *address;
    int port;
    char *data_dir;
    char *store_sync; /* store.sync: "full" (default), "normal" or "off" (tandem's own key) */
    char *log_level;

    bool client_insecure;
    bool client_allow_anonymous_connect_without_token;
    char **allowed_origins;
    size_t n_allowed_origins;
    int64_t ping_interval_ms;
    int64_t pong_timeout_ms;
    int64_t stale_close_delay_ms;
    uint32_t channel_limit;
    uint32_t history_max_publication_limit;
    uint32_t recovery_max_publication_limit;
    uint64_t queue_max_size;
    uint32_t max_connections;    /* 0 = unlimited */
    uint32_t command_rate_limit; /* client.command_rate_limit: commands/s, 0 = off (tandem's) */
    uint32_t command_rate_burst; /* client.command_rate_burst: 0 = same as the limit */

    uint32_t message_size_limit; /* websocket.message_size_limit */

    /* HTTP-streaming and SSE emulation transports (POST /emulation carries client commands) */
    bool http_stream_enabled;                   /* http_stream.enabled */
    uint32_t http_stream_max_request_body_size; /* http_stream.max_request_body_size */
    bool sse_enabled;                           /* sse.enabled */
    uint32_t sse_max_request_body_size;         /* sse.max_request_body_size */
    uint32_t emulation_max_request_body_size;   /* emulation.max_request_body_size */

    /* WebTransport over HTTP/3 (docs/webtransport.md). Not served yet: the QUIC layer exists
     * (src/quic/) but is not wired into the server. */
    bool webtransport_enabled; /* webtransport.enabled (Centrifugo's name; default false) */
    char *tls_cert_file;       /* tls.cert_file: PEM certificate chain for QUIC/TLS */
    char *tls_key_file;        /* tls.key_file: PEM private key for tls.cert_file */
    bool tls_tcp; /* tls.tcp: with both files set, the TCP listener speaks TLS only (https,
                   * wss); false keeps TCP plaintext, the files serving QUIC alone (tandem's
                   * own key; default true). Setting one file without the other is an error. */

    char *token_hmac_secret_key;    /* client.token.hmac_secret_key */
    char *token_rsa_public_key;     /* client.token.rsa_public_key (PEM) */
    char *token_ecdsa_public_key;   /* client.token.ecdsa_public_key (PEM) */
    int64_t expired_close_delay_ms; /* client.expired_close_delay */

    char *api_key;
    bool api_insecure;
    uint64_t api_max_body;
    int64_t http_idle_timeout_ms; /* http_server.idle_timeout (tandem's own key) */
    char *static_dir; /* http_server.static_dir: files served under /static/; "" = off (tandem's) */

    uint32_t channel_max_length;
    int64_t idempotency_window_ms; /* channel.idempotency_window (tandem's own key) */
    char namespace_boundary;

    /* Yjs rooms on /yjs/<room> (tandem's own keys, docs/yjs.md) */
    bool yjs_enabled;               /* yjs.enabled (default true) */
    uint32_t yjs_max_update_size;   /* yjs.max_update_size: one y-protocols message, bytes */
    uint64_t yjs_max_document_size; /* yjs.max_document_size: content bytes of a document */
    int64_t yjs_idle_unload_ms;     /* yjs.idle_unload: unload a room this long after it empties */
    uint32_t yjs_compact_every;     /* yjs.compact_every: appends between compactions */
    bool yjs_require_token;         /* yjs.require_token: refuse connections without ?token= */
    bool yjs_read_only;             /* yjs.read_only: connections without a token are read-only */
    struct td_ns_opts without_ns;
    struct td_ns_opts *namespaces;
    size_t n_namespaces;
};

/* td_config_init fills safe defaults (127.0.0.1:8000, ./tandem-data, no insecure mode). */
void td_config_init(struct td_config *cfg);
void td_config_free(struct td_config *cfg);

/*
 * td_config_load_file parses a JSON config file over the current values. Returns 0, or a
 * negative code with a one-line message "FILE:LINE:COL: problem" in err (size errlen).
 * Unknown keys are reported through warn (may be NULL), one call per key, not failures.
 */
typedef void (*td_config_warn_cb)(const char *msg, void *ud);
int td_config_load_file(struct td_config *cfg, const char *path, char *err, size_t errlen,
                        td_config_warn_cb warn, void *ud);
/* td_config_load_text is td_config_load_file on an in-memory document named `name`. */
int td_config_load_text(struct td_config *cfg, const char *name, const char *text, size_t n,
                        char *err, size_t errlen, td_config_warn_cb warn, void *ud);
/*
 * td_config_load_env applies TANDEM_<KEY> variables (key path upper-cased, '.' -> '_', e.g.
 * TANDEM_CLIENT_INSECURE=true, TANDEM_HTTP_API_KEY=...). Returns 0 or TD_EINVAL with err.
 */
int td_config_load_env(struct td_config *cfg, char *err, size_t errlen);

/* td_config_ns_for finds the options for a channel name; NULL = unknown namespace. */
const struct td_ns_opts *td_config_ns_for(const struct td_config *cfg, const char *channel,
                                          size_t len);

/* td_parse_duration parses "25s", "1m30s", "500ms", "720h" or "30" (seconds) into ms. */
int td_parse_duration(const char *s, size_t n, int64_t *ms);

/* td_config_starter returns the text `tandem genconfig` writes (static storage). */
const char *td_config_starter(void);

#endif
