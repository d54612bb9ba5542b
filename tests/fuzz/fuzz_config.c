/* Fuzz target: the config loader must reject or accept any text without crashing or leaking. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/td_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_config cfg;
    td_config_init(&cfg);
    char err[512];
    err[0] = '\0';
    int rv =
        td_config_load_text(&cfg, "fuzz", (const char *)data, size, err, sizeof(err), NULL, NULL);
    if (rv != 0 && err[0] == '\0')
        abort(); /* every rejection must say why */
    if (rv == 0) {
        /* Whatever loaded must be usable. */
        (void)td_config_ns_for(&cfg, "a:b", 3);
        if (cfg.address == NULL || cfg.api_key == NULL)
            abort();
    }
    td_config_free(&cfg);
    return 0;
}
