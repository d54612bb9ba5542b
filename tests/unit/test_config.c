#include "config/td_config.h"
#include "core/td_err.h"
#include "td_test.h"

#include <stdlib.h>

static int load(struct td_config *cfg, const char *text, char *err, size_t errlen)
{
    td_config_init(cfg);
    return td_config_load_text(cfg, "t.json", text, strlen(text), err, errlen, NULL, NULL);
}

TD_TEST(config_defaults_are_safe)
{
    struct td_config cfg;
    td_config_init(&cfg);
    TD_CHECK(strcmp(cfg.address, "127.0.0.1") == 0);
    TD_CHECK_EQ_INT(cfg.port, 8000);
    TD_CHECK(strcmp(cfg.data_dir, "./tandem-data") == 0);
    TD_CHECK(!cfg.client_insecure);
    TD_CHECK_EQ_INT(cfg.ping_interval_ms, 25000);
    TD_CHECK_EQ_INT(cfg.message_size_limit, 65536);
    TD_CHECK_EQ_INT(cfg.channel_limit, 128);
    TD_CHECK(cfg.api_key[0] == '\0'); /* API closed until a key is set */
    td_config_free(&cfg);
}

TD_TEST(config_centrifugo_keys)
{
    struct td_config cfg;
    char err[256];
    int rv = load(&cfg,
                  "{\"client\":{\"insecure\":true,\"allowed_origins\":[\"http://a\",\"*\"],"
                  "\"ping_interval\":\"1m30s\"},\"http_api\":{\"key\":\"k\"},\"channel\":{"
                  "\"without_namespace\":{\"presence\":true,\"history_size\":10,\"history_ttl\":"
                  "\"300s\"},\"namespaces\":[{\"name\":\"chat\",\"join_leave\":true}]}}",
                  err, sizeof(err));
    TD_REQUIRE(rv == 0);
    TD_CHECK(cfg.client_insecure);
    TD_CHECK_EQ_INT(cfg.n_allowed_origins, 2);
    TD_CHECK_EQ_INT(cfg.ping_interval_ms, 90000);
    TD_CHECK(strcmp(cfg.api_key, "k") == 0);
    TD_CHECK(cfg.without_ns.presence);
    TD_CHECK_EQ_INT(cfg.without_ns.history_ttl_ms, 300000);
    const struct td_ns_opts *ns = td_config_ns_for(&cfg, "chat:room", 9);
    TD_REQUIRE(ns != NULL);
    TD_CHECK(ns->join_leave && !ns->presence);
    TD_CHECK(td_config_ns_for(&cfg, "nope:room", 9) == NULL);
    TD_CHECK(td_config_ns_for(&cfg, "plain", 5) == &cfg.without_ns);
    td_config_free(&cfg);
}

TD_TEST(config_errors_have_line_and_column)
{
    struct td_config cfg;
    char err[256];
    int rv = load(&cfg, "{\n  \"client\": {\n    \"insecure\": \"yes\"\n  }\n}", err, sizeof(err));
    TD_CHECK_EQ_INT(rv, TD_EINVAL);
    TD_CHECK(strstr(err, "t.json:3:17:") != NULL);
    TD_CHECK(strstr(err, "client.insecure must be true or false") != NULL);
    td_config_free(&cfg);

    rv = load(&cfg, "{\n  \"port\": 1,\n}", err, sizeof(err));
    TD_CHECK_EQ_INT(rv, TD_EINVAL);
    TD_CHECK(strncmp(err, "t.json:3:", 9) == 0);
    td_config_free(&cfg);

    rv = load(&cfg, "{\"channel\":{\"namespaces\":[{\"name\":\"a\"},{\"name\":\"a\"}]}}", err,
              sizeof(err));
    TD_CHECK(rv != 0 && strstr(err, "duplicate namespace") != NULL);
    td_config_free(&cfg);

    rv = load(&cfg, "{\"channel\":{\"without_namespace\":{\"force_recovery\":true}}}", err,
              sizeof(err));
    TD_CHECK(rv != 0 && strstr(err, "need history_size") != NULL);
    td_config_free(&cfg);

    rv = load(&cfg, "{\"client\":{\"ping_interval\":\"soon\"}}", err, sizeof(err));
    TD_CHECK(rv != 0 && strstr(err, "duration") != NULL);
    td_config_free(&cfg);
}

static void count_warn(const char *msg, void *ud)
{
    (void)msg;
    (*(int *)ud)++;
}

TD_TEST(config_unknown_keys_warn_not_fail)
{
    struct td_config cfg;
    td_config_init(&cfg);
    char err[256];
    int warnings = 0;
    const char *text = "{\"engine\":{\"type\":\"memory\"},\"client\":{\"frobnicate\":1}}";
    int rv =
        td_config_load_text(&cfg, "t", text, strlen(text), err, sizeof(err), count_warn, &warnings);
    TD_CHECK_EQ_INT(rv, 0);
    TD_CHECK_EQ_INT(warnings, 2);
    td_config_free(&cfg);
}

TD_TEST(config_durations)
{
    int64_t ms;
    TD_CHECK(td_parse_duration("25s", 3, &ms) == 0 && ms == 25000);
    TD_CHECK(td_parse_duration("500ms", 5, &ms) == 0 && ms == 500);
    TD_CHECK(td_parse_duration("720h", 4, &ms) == 0 && ms == 720LL * 3600000);
    TD_CHECK(td_parse_duration("1h2m3s", 6, &ms) == 0 && ms == 3723000);
    TD_CHECK(td_parse_duration("30", 2, &ms) == 0 && ms == 30000);
    TD_CHECK(td_parse_duration("", 0, &ms) != 0);
    TD_CHECK(td_parse_duration("5x", 2, &ms) != 0);
    TD_CHECK(td_parse_duration("s", 1, &ms) != 0);
}

TD_TEST(config_env_overrides)
{
    struct td_config cfg;
    td_config_init(&cfg);
    char err[256];
    setenv("TANDEM_CLIENT_INSECURE", "true", 1);
    setenv("TANDEM_HTTP_API_KEY", "envkey", 1);
    setenv("TANDEM_PORT", "9001", 1);
    TD_CHECK_EQ_INT(td_config_load_env(&cfg, err, sizeof(err)), 0);
    TD_CHECK(cfg.client_insecure);
    TD_CHECK(strcmp(cfg.api_key, "envkey") == 0);
    TD_CHECK_EQ_INT(cfg.port, 9001);
    setenv("TANDEM_PORT", "99999", 1);
    TD_CHECK(td_config_load_env(&cfg, err, sizeof(err)) != 0);
    TD_CHECK(strstr(err, "TANDEM_PORT") != NULL);
    unsetenv("TANDEM_CLIENT_INSECURE");
    unsetenv("TANDEM_HTTP_API_KEY");
    unsetenv("TANDEM_PORT");
    td_config_free(&cfg);
}

TD_TEST(config_yjs_namespace_is_a_room)
{
    struct td_config cfg;
    char err[256] = "";
    /* no history needed (late joiners use doc_state); durable history is forced off */
    TD_REQUIRE(load(&cfg,
                    "{\"channel\":{\"namespaces\":[{\"name\":\"d\",\"yjs\":true},{\"name\":\"e\","
                    "\"yjs\":true,\"history_size\":5,\"history_ttl\":\"1m\",\"history_durable\":"
                    "true},{\"name\":\"p\",\"history_size\":5,\"history_ttl\":\"1m\"}]}}",
                    err, sizeof(err)) == 0);
    TD_REQUIRE(cfg.n_namespaces == 3);
    TD_CHECK(!cfg.namespaces[0].history_durable);
    TD_CHECK(!cfg.namespaces[1].history_durable);
    TD_CHECK(cfg.namespaces[2].history_durable);
    /* the environment turning the rooms off is refused */
    setenv("TANDEM_YJS_ENABLED", "false", 1);
    TD_CHECK(td_config_load_env(&cfg, err, sizeof(err)) == TD_EINVAL);
    TD_CHECK(strstr(err, "namespace \"d\" has \"yjs\": true but yjs.enabled is false") != NULL);
    unsetenv("TANDEM_YJS_ENABLED");
    td_config_free(&cfg);
    /* so is a file that does (wherever the key is) */
    TD_CHECK(load(&cfg,
                  "{\"channel\":{\"namespaces\":[{\"name\":\"d\",\"yjs\":true}]},\"yjs\":{"
                  "\"enabled\":false}}",
                  err, sizeof(err)) == TD_EINVAL);
    TD_CHECK(strstr(err, "t.json: channel namespace \"d\"") != NULL);
    td_config_free(&cfg);
    /* rooms off without "yjs" namespaces is fine */
    TD_CHECK(load(&cfg, "{\"yjs\":{\"enabled\":false}}", err, sizeof(err)) == 0);
    td_config_free(&cfg);
}

TD_TEST(config_tls_tcp_key_and_file_pairs)
{
    struct td_config cfg;
    char err[256] = "";
    /* default: TLS on TCP whenever both files are set */
    td_config_init(&cfg);
    TD_CHECK(cfg.tls_tcp);
    TD_CHECK(cfg.tls_cert_file[0] == '\0' && cfg.tls_key_file[0] == '\0');
    td_config_free(&cfg);
    TD_REQUIRE(load(&cfg,
                    "{\"tls\":{\"cert_file\":\"/c.pem\",\"key_file\":\"/k.pem\",\"tcp\":false}}",
                    err, sizeof(err)) == 0);
    TD_CHECK(!cfg.tls_tcp);
    TD_CHECK(strcmp(cfg.tls_cert_file, "/c.pem") == 0 && strcmp(cfg.tls_key_file, "/k.pem") == 0);
    /* the environment sets it too */
    setenv("TANDEM_TLS_TCP", "true", 1);
    TD_CHECK_EQ_INT(td_config_load_env(&cfg, err, sizeof(err)), 0);
    TD_CHECK(cfg.tls_tcp);
    setenv("TANDEM_TLS_TCP", "maybe", 1);
    TD_CHECK_EQ_INT(td_config_load_env(&cfg, err, sizeof(err)), TD_EINVAL);
    TD_CHECK(strstr(err, "TANDEM_TLS_TCP") != NULL);
    unsetenv("TANDEM_TLS_TCP");
    /* ...and unsetting one file there is refused */
    setenv("TANDEM_TLS_KEY_FILE", "", 1);
    TD_CHECK_EQ_INT(td_config_load_env(&cfg, err, sizeof(err)), TD_EINVAL);
    TD_CHECK(strstr(err, "environment: tls.cert_file is set but tls.key_file is not") != NULL);
    unsetenv("TANDEM_TLS_KEY_FILE");
    td_config_free(&cfg);
    /* a type error names the key */
    TD_CHECK(load(&cfg, "{\"tls\":{\"tcp\":\"yes\"}}", err, sizeof(err)) == TD_EINVAL);
    TD_CHECK(strstr(err, "tls.tcp must be true or false") != NULL);
    td_config_free(&cfg);
    /* one file without the other is an error, whichever it is */
    TD_CHECK(load(&cfg, "{\"tls\":{\"cert_file\":\"/c.pem\"}}", err, sizeof(err)) == TD_EINVAL);
    TD_CHECK(strstr(err, "t.json: tls.cert_file is set but tls.key_file is not") != NULL);
    td_config_free(&cfg);
    TD_CHECK(load(&cfg, "{\"tls\":{\"key_file\":\"/k.pem\",\"tcp\":false}}", err, sizeof(err)) ==
             TD_EINVAL);
    TD_CHECK(strstr(err, "tls.key_file is set but tls.cert_file is not") != NULL);
    td_config_free(&cfg);
    /* tls.tcp alone (no files) is fine: TCP stays plaintext */
    TD_CHECK(load(&cfg, "{\"tls\":{\"tcp\":true}}", err, sizeof(err)) == 0);
    td_config_free(&cfg);
}
