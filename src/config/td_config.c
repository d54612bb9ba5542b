/*
 * td_config.c - defaults, JSON file, environment.
 *
 * Every scalar key is described once in a table (path, type, where it lives), and the JSON
 * loader and the environment loader both walk that table, so a key added here is at once
 * readable from the file and from TANDEM_<KEY>. Namespaces are the one structured key.
 */
#include "config/td_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_alloc.h"
#include "core/td_err.h"
#include "core/td_json.h"

static void ns_defaults(struct td_ns_opts *ns)
{
    memset(ns, 0, sizeof(*ns));
    ns->history_meta_ttl_ms = 720LL * 3600 * 1000; /* 30 days, as Centrifugo */
    ns->history_durable = true;
}

void td_config_init(struct td_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->address = td_xstrdup("127.0.0.1");
    cfg->port = 8000;
    cfg->data_dir = td_xstrdup("./tandem-data");
    cfg->store_sync = td_xstrdup("full");
    cfg->log_level = td_xstrdup("info");
    cfg->ping_interval_ms = 25000;
    cfg->pong_timeout_ms = 8000;
    cfg->stale_close_delay_ms = 10000;
    cfg->channel_limit = 128;
    cfg->history_max_publication_limit = 300;
    cfg->recovery_max_publication_limit = 300;
    cfg->queue_max_size = 1024 * 1024;
    cfg->message_size_limit = 65536;
    cfg->http_stream_max_request_body_size = 65536;
    cfg->sse_max_request_body_size = 65536;
    cfg->emulation_max_request_body_size = 65536;
    cfg->tls_cert_file = td_xstrdup("");
    cfg->tls_key_file = td_xstrdup("");
    cfg->tls_tcp = true;
    cfg->api_key = td_xstrdup("");
    cfg->token_hmac_secret_key = td_xstrdup("");
    cfg->token_rsa_public_key = td_xstrdup("");
    cfg->token_ecdsa_public_key = td_xstrdup("");
    cfg->expired_close_delay_ms = 25000;
    cfg->api_max_body = 1024 * 1024;
    cfg->http_idle_timeout_ms = 30000;
    cfg->static_dir = td_xstrdup("");
    cfg->channel_max_length = 255;
    cfg->idempotency_window_ms = 300000;
    cfg->namespace_boundary = ':';
    cfg->yjs_enabled = true;
    cfg->yjs_max_update_size = 8u << 20;
    cfg->yjs_max_document_size = 64u << 20;
    cfg->yjs_idle_unload_ms = 30000;
    cfg->yjs_compact_every = 500;
    ns_defaults(&cfg->without_ns);
}

static void ns_free(struct td_ns_opts *ns)
{
    free(ns->name);
}

void td_config_free(struct td_config *cfg)
{
    free(cfg->address);
    free(cfg->data_dir);
    free(cfg->store_sync);
    free(cfg->log_level);
    free(cfg->api_key);
    free(cfg->token_hmac_secret_key);
    free(cfg->token_rsa_public_key);
    free(cfg->token_ecdsa_public_key);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    free(cfg->static_dir);
    for (size_t i = 0; i < cfg->n_allowed_origins; i++)
        free(cfg->allowed_origins[i]);
    free(cfg->allowed_origins);
    ns_free(&cfg->without_ns);
    for (size_t i = 0; i < cfg->n_namespaces; i++)
        ns_free(&cfg->namespaces[i]);
    free(cfg->namespaces);
    memset(cfg, 0, sizeof(*cfg));
}

const struct td_ns_opts *td_config_ns_for(const struct td_config *cfg, const char *channel,
                                          size_t len)
{
    const char *sep = memchr(channel, cfg->namespace_boundary, len);
    if (sep == NULL)
        return &cfg->without_ns;
    size_t nlen = (size_t)(sep - channel);
    for (size_t i = 0; i < cfg->n_namespaces; i++) {
        const struct td_ns_opts *ns = &cfg->namespaces[i];
        if (strlen(ns->name) == nlen && memcmp(ns->name, channel, nlen) == 0)
            return ns;
    }
    return NULL;
}

int td_parse_duration(const char *s, size_t n, int64_t *ms)
{
    if (n == 0)
        return TD_EINVAL;
    size_t i = 0;
    double total = 0;
    bool any_unit = false;
    while (i < n) {
        size_t start = i;
        while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            i++;
        if (i == start)
            return TD_EINVAL;
        char num[32];
        if (i - start >= sizeof(num))
            return TD_EINVAL;
        memcpy(num, s + start, i - start);
        num[i - start] = '\0';
        char *endp;
        double v = strtod(num, &endp);
        if (*endp != '\0')
            return TD_EINVAL;
        double mult;
        if (i == n && !any_unit) {
            mult = 1000; /* bare number: seconds */
        } else if (n - i >= 2 && s[i] == 'm' && s[i + 1] == 's') {
            mult = 1, i += 2;
        } else if (s[i] == 'h') {
            mult = 3600000, i++;
        } else if (s[i] == 'm') {
            mult = 60000, i++;
        } else if (s[i] == 's') {
            mult = 1000, i++;
        } else {
            return TD_EINVAL;
        }
        any_unit = true;
        total += v * mult;
    }
    if (total > 9e15)
        return TD_EINVAL;
    *ms = (int64_t)total;
    return 0;
}

/* ---- the key table ----------------------------------------------------------------- */

enum opt_type { OPT_BOOL, OPT_STRING, OPT_U32, OPT_U64, OPT_PORT, OPT_DURATION, OPT_STRLIST };

struct opt {
    const char *path; /* dotted path from the root */
    enum opt_type type;
    size_t off;
};

#define CFG(field) offsetof(struct td_config, field)
static const struct opt cfg_opts[] = {
    {"address", OPT_STRING, CFG(address)},
    {"port", OPT_PORT, CFG(port)},
    {"data_dir", OPT_STRING, CFG(data_dir)},
    {"store.sync", OPT_STRING, CFG(store_sync)},
    {"log.level", OPT_STRING, CFG(log_level)},
    {"client.insecure", OPT_BOOL, CFG(client_insecure)},
    {"client.allow_anonymous_connect_without_token", OPT_BOOL,
     CFG(client_allow_anonymous_connect_without_token)},
    {"client.allowed_origins", OPT_STRLIST, CFG(allowed_origins)},
    {"client.ping_interval", OPT_DURATION, CFG(ping_interval_ms)},
    {"client.pong_timeout", OPT_DURATION, CFG(pong_timeout_ms)},
    {"client.stale_close_delay", OPT_DURATION, CFG(stale_close_delay_ms)},
    {"client.channel_limit", OPT_U32, CFG(channel_limit)},
    {"client.history_max_publication_limit", OPT_U32, CFG(history_max_publication_limit)},
    {"client.recovery_max_publication_limit", OPT_U32, CFG(recovery_max_publication_limit)},
    {"client.queue_max_size", OPT_U64, CFG(queue_max_size)},
    {"client.connection_limit", OPT_U32, CFG(max_connections)},
    {"client.command_rate_limit", OPT_U32, CFG(command_rate_limit)},
    {"client.command_rate_burst", OPT_U32, CFG(command_rate_burst)},
    {"client.token.hmac_secret_key", OPT_STRING, CFG(token_hmac_secret_key)},
    {"client.token.rsa_public_key", OPT_STRING, CFG(token_rsa_public_key)},
    {"client.token.ecdsa_public_key", OPT_STRING, CFG(token_ecdsa_public_key)},
    {"client.expired_close_delay", OPT_DURATION, CFG(expired_close_delay_ms)},
    {"websocket.message_size_limit", OPT_U32, CFG(message_size_limit)},
    {"http_stream.enabled", OPT_BOOL, CFG(http_stream_enabled)},
    {"http_stream.max_request_body_size", OPT_U32, CFG(http_stream_max_request_body_size)},
    {"sse.enabled", OPT_BOOL, CFG(sse_enabled)},
    {"sse.max_request_body_size", OPT_U32, CFG(sse_max_request_body_size)},
    {"emulation.max_request_body_size", OPT_U32, CFG(emulation_max_request_body_size)},
    {"webtransport.enabled", OPT_BOOL, CFG(webtransport_enabled)},
    {"tls.cert_file", OPT_STRING, CFG(tls_cert_file)},
    {"tls.key_file", OPT_STRING, CFG(tls_key_file)},
    {"tls.tcp", OPT_BOOL, CFG(tls_tcp)},
    {"http_api.key", OPT_STRING, CFG(api_key)},
    {"http_api.insecure", OPT_BOOL, CFG(api_insecure)},
    {"http_server.idle_timeout", OPT_DURATION, CFG(http_idle_timeout_ms)},
    {"http_server.static_dir", OPT_STRING, CFG(static_dir)},
    {"channel.max_length", OPT_U32, CFG(channel_max_length)},
    {"channel.idempotency_window", OPT_DURATION, CFG(idempotency_window_ms)},
    {"yjs.enabled", OPT_BOOL, CFG(yjs_enabled)},
    {"yjs.max_update_size", OPT_U32, CFG(yjs_max_update_size)},
    {"yjs.max_document_size", OPT_U64, CFG(yjs_max_document_size)},
    {"yjs.idle_unload", OPT_DURATION, CFG(yjs_idle_unload_ms)},
    {"yjs.compact_every", OPT_U32, CFG(yjs_compact_every)},
    {"yjs.require_token", OPT_BOOL, CFG(yjs_require_token)},
    {"yjs.read_only", OPT_BOOL, CFG(yjs_read_only)},
};
#undef CFG

#define NS(field) offsetof(struct td_ns_opts, field)
static const struct opt ns_opts[] = {
    {"history_size", OPT_U32, NS(history_size)},
    {"history_ttl", OPT_DURATION, NS(history_ttl_ms)},
    {"history_meta_ttl", OPT_DURATION, NS(history_meta_ttl_ms)},
    {"history_durable", OPT_BOOL, NS(history_durable)},
    {"yjs", OPT_BOOL, NS(yjs)},
    {"datagrams", OPT_BOOL, NS(datagrams)},
    {"force_recovery", OPT_BOOL, NS(force_recovery)},
    {"force_positioning", OPT_BOOL, NS(force_positioning)},
    {"allow_recovery", OPT_BOOL, NS(allow_recovery)},
    {"allow_positioning", OPT_BOOL, NS(allow_positioning)},
    {"presence", OPT_BOOL, NS(presence)},
    {"join_leave", OPT_BOOL, NS(join_leave)},
    {"force_push_join_leave", OPT_BOOL, NS(force_push_join_leave)},
    {"allow_subscribe_for_client", OPT_BOOL, NS(allow_subscribe_for_client)},
    {"allow_subscribe_for_anonymous", OPT_BOOL, NS(allow_subscribe_for_anonymous)},
    {"allow_publish_for_subscriber", OPT_BOOL, NS(allow_publish_for_subscriber)},
    {"allow_publish_for_client", OPT_BOOL, NS(allow_publish_for_client)},
    {"allow_publish_for_anonymous", OPT_BOOL, NS(allow_publish_for_anonymous)},
    {"allow_presence_for_subscriber", OPT_BOOL, NS(allow_presence_for_subscriber)},
    {"allow_presence_for_client", OPT_BOOL, NS(allow_presence_for_client)},
    {"allow_presence_for_anonymous", OPT_BOOL, NS(allow_presence_for_anonymous)},
    {"allow_history_for_subscriber", OPT_BOOL, NS(allow_history_for_subscriber)},
    {"allow_history_for_client", OPT_BOOL, NS(allow_history_for_client)},
    {"allow_history_for_anonymous", OPT_BOOL, NS(allow_history_for_anonymous)},
};
#undef NS

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Sets one option from a string (environment). Returns 0 or TD_EINVAL. */
static int opt_set_text(void *base, const struct opt *o, const char *v)
{
    char *p = (char *)base + o->off;
    char *end;
    switch (o->type) {
    case OPT_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)p = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)p = false;
        else
            return TD_EINVAL;
        return 0;
    case OPT_STRING:
        free(*(char **)p);
        *(char **)p = td_xstrdup(v);
        return 0;
    case OPT_U32:
    case OPT_U64:
    case OPT_PORT: {
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end || end == v || v[0] == '-')
            return TD_EINVAL;
        if (o->type == OPT_U64) {
            *(uint64_t *)p = x;
        } else if (o->type == OPT_PORT) {
            if (x > 65535)
                return TD_EINVAL;
            *(int *)p = (int)x;
        } else {
            if (x > UINT32_MAX)
                return TD_EINVAL;
            *(uint32_t *)p = (uint32_t)x;
        }
        return 0;
    }
    case OPT_DURATION:
        return td_parse_duration(v, strlen(v), (int64_t *)p);
    case OPT_STRLIST: {
        struct td_config *cfg = base;
        for (size_t i = 0; i < cfg->n_allowed_origins; i++)
            free(cfg->allowed_origins[i]);
        free(cfg->allowed_origins);
        cfg->allowed_origins = NULL;
        cfg->n_allowed_origins = 0;
        const char *s = v;
        while (*s) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if (len > 0) {
                cfg->allowed_origins = td_xrealloc(cfg->allowed_origins,
                                                   (cfg->n_allowed_origins + 1) * sizeof(char *));
                cfg->allowed_origins[cfg->n_allowed_origins++] = td_xstrndup(s, len);
            }
            s += len + (comma ? 1 : 0);
        }
        return 0;
    }
    }
    return TD_EINVAL;
}

struct load_ctx {
    const char *name;
    char *err;
    size_t errlen;
    td_config_warn_cb warn;
    void *ud;
};

__attribute__((format(printf, 3, 4))) static int
load_fail(struct load_ctx *lc, const struct td_json *at, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(lc->err, lc->errlen, "%s:%u:%u: %s", lc->name, at ? at->line : 1, at ? at->col : 1,
             msg);
    return TD_EINVAL;
}

/* Sets one option from a JSON value. */
static int opt_set_json(struct load_ctx *lc, void *base, const struct opt *o,
                        const struct td_json *v, const char *path)
{
    char *p = (char *)base + o->off;
    switch (o->type) {
    case OPT_BOOL:
        if (v->type != TD_JSON_TRUE && v->type != TD_JSON_FALSE)
            return load_fail(lc, v, "%s must be true or false, not %s", path,
                             td_json_type_name(v->type));
        *(bool *)p = v->type == TD_JSON_TRUE;
        return 0;
    case OPT_STRING:
        if (v->type != TD_JSON_STRING)
            return load_fail(lc, v, "%s must be a string, not %s", path,
                             td_json_type_name(v->type));
        free(*(char **)p);
        *(char **)p = td_xstrndup(v->str, v->len);
        return 0;
    case OPT_U32:
    case OPT_U64:
    case OPT_PORT:
        if (v->type != TD_JSON_NUMBER || !v->is_int || v->i < 0)
            return load_fail(lc, v, "%s must be a non-negative integer", path);
        if (o->type == OPT_PORT && v->i > 65535)
            return load_fail(lc, v, "%s must be a port number (0-65535)", path);
        if (o->type == OPT_U32 && v->i > (int64_t)UINT32_MAX)
            return load_fail(lc, v, "%s is too large", path);
        if (o->type == OPT_U64)
            *(uint64_t *)p = (uint64_t)v->i;
        else if (o->type == OPT_PORT)
            *(int *)p = (int)v->i;
        else
            *(uint32_t *)p = (uint32_t)v->i;
        return 0;
    case OPT_DURATION:
        if (v->type == TD_JSON_NUMBER && v->num >= 0 && v->num < 9e12) {
            *(int64_t *)p = (int64_t)(v->num * 1000);
            return 0;
        }
        if (v->type != TD_JSON_STRING || td_parse_duration(v->str, v->len, (int64_t *)p) != 0)
            return load_fail(lc, v, "%s must be a duration like \"25s\", \"1m30s\" or \"720h\"",
                             path);
        return 0;
    case OPT_STRLIST: {
        if (v->type != TD_JSON_ARRAY)
            return load_fail(lc, v, "%s must be an array of strings", path);
        struct td_config *cfg = base;
        for (size_t i = 0; i < v->n; i++) {
            if (v->child[i].type != TD_JSON_STRING)
                return load_fail(lc, &v->child[i], "%s must be an array of strings", path);
        }
        for (size_t i = 0; i < cfg->n_allowed_origins; i++)
            free(cfg->allowed_origins[i]);
        free(cfg->allowed_origins);
        cfg->allowed_origins = td_xcalloc(v->n ? v->n : 1, sizeof(char *));
        cfg->n_allowed_origins = v->n;
        for (size_t i = 0; i < v->n; i++)
            cfg->allowed_origins[i] = td_xstrndup(v->child[i].str, v->child[i].len);
        return 0;
    }
    }
    return TD_EINVAL;
}

static void load_warn(struct load_ctx *lc, const struct td_json *at, const char *path)
{
    if (lc->warn == NULL)
        return;
    char msg[320];
    snprintf(msg, sizeof(msg), "%s:%u:%u: unknown key \"%s\" ignored", lc->name, at->line, at->col,
             path);
    lc->warn(msg, lc->ud);
}

static int load_ns(struct load_ctx *lc, struct td_ns_opts *ns, const struct td_json *obj,
                   const char *prefix)
{
    if (obj->type != TD_JSON_OBJECT)
        return load_fail(lc, obj, "%s must be an object", prefix);
    for (size_t i = 0; i < obj->n; i++) {
        const struct td_json *m = &obj->child[i];
        char path[256];
        snprintf(path, sizeof(path), "%s.%s", prefix, m->key);
        if (strcmp(m->key, "name") == 0 && ns->name != NULL)
            continue;
        const struct opt *o = NULL;
        for (size_t k = 0; k < NELEM(ns_opts); k++) {
            if (strcmp(ns_opts[k].path, m->key) == 0)
                o = &ns_opts[k];
        }
        if (o == NULL) {
            load_warn(lc, m, path);
            continue;
        }
        int rv = opt_set_json(lc, ns, o, m, path);
        if (rv != 0)
            return rv;
    }
    if ((ns->force_recovery || ns->force_positioning) &&
        (ns->history_size == 0 || ns->history_ttl_ms == 0))
        return load_fail(lc, obj,
                         "%s: force_recovery/force_positioning need history_size and "
                         "history_ttl",
                         prefix);
    /* A "yjs" channel's document lives in its room's log (docs/yjs.md): its history is
     * only for recovery within one process, never written to the store. */
    if (ns->yjs)
        ns->history_durable = false;
    return 0;
}

static int load_namespaces(struct load_ctx *lc, struct td_config *cfg, const struct td_json *arr)
{
    if (arr->type != TD_JSON_ARRAY)
        return load_fail(lc, arr, "channel.namespaces must be an array of objects");
    for (size_t i = 0; i < cfg->n_namespaces; i++)
        ns_free(&cfg->namespaces[i]);
    free(cfg->namespaces);
    cfg->namespaces = td_xcalloc(arr->n ? arr->n : 1, sizeof(*cfg->namespaces));
    cfg->n_namespaces = 0;
    for (size_t i = 0; i < arr->n; i++) {
        const struct td_json *o = &arr->child[i];
        if (o->type != TD_JSON_OBJECT)
            return load_fail(lc, o, "channel.namespaces[%zu] must be an object", i);
        const struct td_json *name = td_json_get(o, "name");
        if (name == NULL || name->type != TD_JSON_STRING || name->len == 0)
            return load_fail(lc, name ? name : o,
                             "channel.namespaces[%zu].name must be a "
                             "non-empty string",
                             i);
        for (size_t k = 0; k < name->len; k++) {
            char ch = name->str[k];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
                return load_fail(lc, name,
                                 "namespace name \"%s\" may only contain letters, "
                                 "digits, '_', '-' and '.'",
                                 name->str);
        }
        for (size_t k = 0; k < cfg->n_namespaces; k++) {
            if (strcmp(cfg->namespaces[k].name, name->str) == 0)
                return load_fail(lc, name, "duplicate namespace \"%s\"", name->str);
        }
        struct td_ns_opts *ns = &cfg->namespaces[cfg->n_namespaces++];
        ns_defaults(ns);
        ns->name = td_xstrndup(name->str, name->len);
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "channel.namespaces[%zu]", i);
        int rv = load_ns(lc, ns, o, prefix);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* Walks an object, matching members against the table by dotted path. */
static int load_object(struct load_ctx *lc, struct td_config *cfg, const struct td_json *obj,
                       const char *prefix)
{
    for (size_t i = 0; i < obj->n; i++) {
        const struct td_json *m = &obj->child[i];
        char path[256];
        if (prefix[0])
            snprintf(path, sizeof(path), "%s.%s", prefix, m->key);
        else
            snprintf(path, sizeof(path), "%s", m->key);
        if (strcmp(path, "channel.without_namespace") == 0) {
            int rv = load_ns(lc, &cfg->without_ns, m, path);
            if (rv != 0)
                return rv;
            continue;
        }
        if (strcmp(path, "channel.namespaces") == 0) {
            int rv = load_namespaces(lc, cfg, m);
            if (rv != 0)
                return rv;
            continue;
        }
        const struct opt *o = NULL;
        bool is_prefix = false;
        size_t plen = strlen(path);
        for (size_t k = 0; k < NELEM(cfg_opts); k++) {
            if (strcmp(cfg_opts[k].path, path) == 0)
                o = &cfg_opts[k];
            else if (strncmp(cfg_opts[k].path, path, plen) == 0 && cfg_opts[k].path[plen] == '.')
                is_prefix = true;
        }
        if (o != NULL) {
            int rv = opt_set_json(lc, cfg, o, m, path);
            if (rv != 0)
                return rv;
        } else if ((is_prefix || strcmp(path, "channel") == 0) && m->type == TD_JSON_OBJECT) {
            int rv = load_object(lc, cfg, m, path);
            if (rv != 0)
                return rv;
        } else if (is_prefix) {
            return load_fail(lc, m, "%s must be an object", path);
        } else {
            load_warn(lc, m, path);
        }
    }
    return 0;
}

/* A namespace with "yjs": true needs the rooms (its channels' documents live there). */
static int check_yjs(const struct td_config *cfg, char *err, size_t errlen, const char *where)
{
    if (cfg->yjs_enabled)
        return 0;
    const struct td_ns_opts *bad = cfg->without_ns.yjs ? &cfg->without_ns : NULL;
    for (size_t i = 0; bad == NULL && i < cfg->n_namespaces; i++) {
        if (cfg->namespaces[i].yjs)
            bad = &cfg->namespaces[i];
    }
    if (bad == NULL)
        return 0;
    snprintf(err, errlen,
             "%s: channel namespace \"%s\" has \"yjs\": true but yjs.enabled is false (its "
             "documents live in the Yjs rooms)",
             where, bad == &cfg->without_ns ? "without_namespace" : bad->name);
    return TD_EINVAL;
}

/* TLS needs the certificate and its key: one without the other is a mistake, not plaintext. */
static int check_tls(const struct td_config *cfg, char *err, size_t errlen, const char *where)
{
    bool cert = cfg->tls_cert_file[0] != '\0', key = cfg->tls_key_file[0] != '\0';
    if (cert == key)
        return 0;
    snprintf(err, errlen, "%s: tls.%s is set but tls.%s is not (TLS needs both files)", where,
             cert ? "cert_file" : "key_file", cert ? "key_file" : "cert_file");
    return TD_EINVAL;
}

int td_config_load_text(struct td_config *cfg, const char *name, const char *text, size_t n,
                        char *err, size_t errlen, td_config_warn_cb warn, void *ud)
{
    struct load_ctx lc = {name, err, errlen, warn, ud};
    struct td_json_doc doc;
    struct td_json_error jerr;
    if (td_json_parse(&doc, text, n, &jerr) != 0) {
        snprintf(err, errlen, "%s:%u:%u: %s", name, jerr.line, jerr.col, jerr.msg);
        td_json_doc_free(&doc);
        return TD_EINVAL;
    }
    const struct td_json *root = td_json_root(&doc);
    int rv;
    if (root->type != TD_JSON_OBJECT)
        rv = load_fail(&lc, root, "the configuration must be a JSON object");
    else
        rv = load_object(&lc, cfg, root, "");
    td_json_doc_free(&doc);
    if (rv == 0)
        rv = check_yjs(cfg, err, errlen, name);
    if (rv == 0)
        rv = check_tls(cfg, err, errlen, name);
    return rv;
}

int td_config_load_file(struct td_config *cfg, const char *path, char *err, size_t errlen,
                        td_config_warn_cb warn, void *ud)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -errno;
    }
    struct td_buf b;
    td_buf_init(&b);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        td_buf_append(&b, chunk, got);
        if (b.len > 16 * 1024 * 1024) {
            fclose(f);
            td_buf_free(&b);
            snprintf(err, errlen, "%s: larger than 16 MiB", path);
            return TD_ELIMIT;
        }
    }
    fclose(f);
    int rv = td_config_load_text(cfg, path, b.len ? (const char *)b.data : "", b.len, err, errlen,
                                 warn, ud);
    td_buf_free(&b);
    return rv;
}

int td_config_load_env(struct td_config *cfg, char *err, size_t errlen)
{
    for (size_t k = 0; k < NELEM(cfg_opts); k++) {
        char name[128] = "TANDEM_";
        size_t j = strlen(name);
        for (const char *s = cfg_opts[k].path; *s && j + 1 < sizeof(name); s++)
            name[j++] = (*s == '.') ? '_' : (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
        name[j] = '\0';
        const char *v = getenv(name);
        if (v == NULL)
            continue;
        if (opt_set_text(cfg, &cfg_opts[k], v) != 0) {
            snprintf(err, errlen, "environment %s: invalid value \"%s\"", name, v);
            return TD_EINVAL;
        }
    }
    int rv = check_yjs(cfg, err, errlen, "environment");
    return rv != 0 ? rv : check_tls(cfg, err, errlen, "environment");
}

const char *td_config_starter(void)
{
    return "{\n"
           "  \"client\": {\n"
           "    \"insecure\": false,\n"
           "    \"token\": {\n"
           "      \"hmac_secret_key\": \"CHANGE-ME: a long random secret shared with your "
           "backend\"\n"
           "    },\n"
           "    \"allow_anonymous_connect_without_token\": true,\n"
           "    \"allowed_origins\": [\"http://localhost:3000\"],\n"
           "    \"ping_interval\": \"25s\",\n"
           "    \"pong_timeout\": \"8s\"\n"
           "  },\n"
           "  \"http_api\": {\n"
           "    \"key\": \"CHANGE-ME\"\n"
           "  },\n"
           "  \"channel\": {\n"
           "    \"without_namespace\": {\n"
           "      \"allow_subscribe_for_client\": true,\n"
           "      \"allow_subscribe_for_anonymous\": true,\n"
           "      \"presence\": true,\n"
           "      \"history_size\": 100,\n"
           "      \"history_ttl\": \"300s\",\n"
           "      \"force_recovery\": true\n"
           "    },\n"
           "    \"namespaces\": [\n"
           "      {\n"
           "        \"name\": \"chat\",\n"
           "        \"allow_subscribe_for_client\": true,\n"
           "        \"allow_publish_for_subscriber\": true,\n"
           "        \"presence\": true,\n"
           "        \"join_leave\": true,\n"
           "        \"history_size\": 50,\n"
           "        \"history_ttl\": \"600s\",\n"
           "        \"force_recovery\": true\n"
           "      }\n"
           "    ]\n"
           "  }\n"
           "}\n";
}
