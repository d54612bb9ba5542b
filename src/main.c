/*
 * main.c - the tandem binary: argument parsing, subcommands, then the event loop.
 *
 *   tandem [--config FILE] [--address A] [--port P] [--data-dir DIR] [--log-level L]
 *   tandem genconfig [FILE]      write a starter config (stdout without FILE)
 *   tandem checkconfig FILE      validate a config file
 *   tandem version
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/td_config.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "core/td_log.h"
#include "auth/td_jwt.h"
#include "core/td_buf.h"
#include "core/td_rand.h"
#include <time.h>
#include "io/td_server.h"
#include "cli/td_doc_cli.h"
#include "cli/td_gencert.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem [--config FILE] [--address ADDR] [--port PORT] [--data-dir DIR]\n"
               "              [--log-level debug|info|warn|error]\n"
               "       tandem genconfig [FILE]\n"
               "       tandem gentoken [--config FILE] --user USER [--ttl SECONDS]\n"
               "       tandem checkconfig FILE\n"
               "       tandem doc merge|diff|sv|show|stats|replay|edit ... (Yjs documents)\n"
               "       tandem gencert [--days N] --out DIR   (WebTransport test certificate)\n"
               "       tandem version\n");
}

static void on_config_warn(const char *msg, void *ud)
{
    int *count = ud;
    (*count)++;
    fprintf(stderr, "warning: %s\n", msg);
}

static int cmd_checkconfig(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "tandem checkconfig: missing FILE\n");
        return 2;
    }
    struct td_config cfg;
    td_config_init(&cfg);
    char err[512];
    int warnings = 0;
    int rv = td_config_load_file(&cfg, argv[2], err, sizeof(err), on_config_warn, &warnings);
    td_config_free(&cfg);
    if (rv != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s: valid%s\n", argv[2], warnings ? " (with warnings above)" : "");
    return 0;
}

static int cmd_genconfig(int argc, char **argv)
{
    const char *text = td_config_starter();
    if (argc < 3) {
        fputs(text, stdout);
        return 0;
    }
    FILE *f = fopen(argv[2], "wx");
    if (f == NULL) {
        perror(argv[2]);
        return 1;
    }
    fputs(text, f);
    fclose(f);
    fprintf(stderr, "wrote %s\n", argv[2]);
    return 0;
}

static int arg_value(int argc, char **argv, int *i, const char *name, const char **out);

/* gentoken: an HS256 connection token signed with client.token.hmac_secret_key. */
static int cmd_gentoken(int argc, char **argv)
{
    const char *config = NULL, *user = NULL, *ttl_s = "3600";
    for (int i = 2; i < argc; i++) {
        if (arg_value(argc, argv, &i, "--config", &config) ||
            arg_value(argc, argv, &i, "--user", &user) ||
            arg_value(argc, argv, &i, "--ttl", &ttl_s))
            continue;
        fprintf(stderr, "tandem gentoken: unknown argument '%s'\n", argv[i]);
        return 2;
    }
    char *end;
    long long ttl = strtoll(ttl_s, &end, 10);
    if (user == NULL || *end != '\0' || ttl < 0) {
        fprintf(stderr, "tandem gentoken: need --user USER and a --ttl of 0 (no expiry) or more "
                        "seconds\n");
        return 2;
    }
    struct td_config cfg;
    td_config_init(&cfg);
    char err[512];
    if ((config != NULL && td_config_load_file(&cfg, config, err, sizeof(err), NULL, NULL) != 0) ||
        td_config_load_env(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tandem gentoken: %s\n", err);
        td_config_free(&cfg);
        return 1;
    }
    if (cfg.token_hmac_secret_key[0] == '\0') {
        fprintf(stderr, "tandem gentoken: no client.token.hmac_secret_key configured\n");
        td_config_free(&cfg);
        return 1;
    }
    struct td_buf payload, token;
    td_buf_init(&payload);
    td_buf_init(&token);
    td_buf_append_str(&payload, "{\"sub\":");
    td_json_write_string(&payload, user, strlen(user));
    if (ttl > 0)
        td_buf_appendf(&payload, ",\"exp\":%lld", (long long)time(NULL) + ttl);
    td_buf_append_str(&payload, "}");
    td_buf_append_byte(&payload, 0);
    int rv = td_jwt_sign_hs256(cfg.token_hmac_secret_key, (const char *)payload.data, &token);
    if (rv == 0)
        printf("%.*s\n", (int)token.len, (const char *)token.data);
    else
        fprintf(stderr, "tandem gentoken: cannot sign: %s\n", td_strerror(rv));
    td_buf_free(&payload);
    td_buf_free(&token);
    td_config_free(&cfg);
    return rv == 0 ? 0 : 1;
}

static struct td_server server;
static uv_signal_t sig_int, sig_term;

static void on_signal(uv_signal_t *h, int signum)
{
    td_log_info("shutting down", "signal=%d", signum);
    td_server_shutdown(&server);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    (void)h;
}

/* Each connection is a file descriptor: use all the process is allowed. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        td_log_debug("raised open file limit", "limit=%llu", (unsigned long long)rl.rlim_cur);
}

static int arg_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "tandem: %s needs a value\n", name);
        exit(2);
    }
    *out = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("tandem %s\n", TD_VERSION);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "checkconfig") == 0)
        return cmd_checkconfig(argc, argv);
    if (argc > 1 && strcmp(argv[1], "genconfig") == 0)
        return cmd_genconfig(argc, argv);
    if (argc > 1 && strcmp(argv[1], "gentoken") == 0)
        return cmd_gentoken(argc, argv);
    if (argc > 1 && strcmp(argv[1], "doc") == 0)
        return td_doc_cli_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "gencert") == 0)
        return td_gencert_main(argc, argv);

    const char *config = NULL, *address = NULL, *port = NULL, *data_dir = NULL, *level = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (arg_value(argc, argv, &i, "--config", &config) ||
            arg_value(argc, argv, &i, "--address", &address) ||
            arg_value(argc, argv, &i, "--port", &port) ||
            arg_value(argc, argv, &i, "--data-dir", &data_dir) ||
            arg_value(argc, argv, &i, "--log-level", &level))
            continue;
        fprintf(stderr, "tandem: unknown argument '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }

    td_rand_seed(0);
    struct td_config cfg;
    td_config_init(&cfg);
    char err[512];
    int warnings = 0;
    if (config != NULL &&
        td_config_load_file(&cfg, config, err, sizeof(err), on_config_warn, &warnings) != 0) {
        fprintf(stderr, "tandem: %s\n", err);
        td_config_free(&cfg);
        return 1;
    }
    if (td_config_load_env(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tandem: %s\n", err);
        td_config_free(&cfg);
        return 1;
    }
    /* Flags override file and environment. */
    if (address != NULL) {
        free(cfg.address);
        cfg.address = strdup(address);
    }
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end != '\0' || end == port || p < 0 || p > 65535) {
            fprintf(stderr, "tandem: --port must be 0-65535\n");
            td_config_free(&cfg);
            return 2;
        }
        cfg.port = (int)p;
    }
    if (data_dir != NULL) {
        free(cfg.data_dir);
        cfg.data_dir = strdup(data_dir);
    }
    if (level != NULL) {
        free(cfg.log_level);
        cfg.log_level = strdup(level);
    }
    enum td_log_level lvl;
    if (td_log_parse_level(cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "tandem: unknown log level '%s'\n", cfg.log_level);
        td_config_free(&cfg);
        return 2;
    }
    td_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    if (cfg.client_insecure)
        td_log_warn("client.insecure is on: any client may connect, subscribe and publish "
                    "without a token. Not for production.",
                    "%s", "");

    uv_loop_t *loop = uv_default_loop();
    int rv = td_server_start(&server, loop, &cfg);
    if (rv != 0) {
        td_config_free(&cfg);
        return 1;
    }
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&sig_int);
    uv_unref((uv_handle_t *)&sig_term);
    uv_run(loop, UV_RUN_DEFAULT);
    td_server_free(&server);
    uv_loop_close(loop);
    td_config_free(&cfg);
    td_log_info("stopped", "%s", "");
    return 0;
}
