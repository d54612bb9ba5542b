/*
 * Fuzz target for td_jwt: arbitrary bytes go through td_jwt_verify with an HMAC key set
 * (secret "secret", which the seed tokens use). Invariants: a failure leaves the claims
 * untouched and names a reason; a success yields a non-NULL sub and well-formed strings.
 * The input is also signed as a payload: whatever td_jwt_sign_hs256 produces must pass the
 * format and signature checks. Nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/td_jwt.h"
#include "core/td_buf.h"
#include "core/td_json.h"

#define FUZZ_NOW 1700000000

static void check_claims(const struct td_jwt_claims *c)
{
    if (c->sub == NULL)
        abort();
    if ((c->n_channels > 0) != (c->channels != NULL))
        abort();
    for (size_t i = 0; i < c->n_channels; i++) {
        if (c->channels[i] == NULL)
            abort();
    }
    /* Raw JSON claims are exactly one valid JSON value each. */
    const char *raws[] = {c->info, c->meta, c->data};
    for (size_t i = 0; i < 3; i++) {
        if (raws[i] != NULL && !td_json_valid(raws[i], strlen(raws[i])))
            abort();
    }
}

static enum td_jwt_status verify_checked(const struct td_jwt_keys *k, const char *tok, size_t n,
                                         const char **why)
{
    struct td_jwt_claims c, sentinel;
    memset(&sentinel, 0xa5, sizeof(sentinel));
    c = sentinel;
    *why = NULL;
    enum td_jwt_status st = td_jwt_verify(k, tok, n, FUZZ_NOW, &c, why);
    if (st == TD_JWT_OK) {
        check_claims(&c);
        td_jwt_claims_free(&c);
    } else if (st == TD_JWT_INVALID || st == TD_JWT_EXPIRED) {
        if (*why == NULL || memcmp(&c, &sentinel, sizeof(c)) != 0)
            abort();
    } else {
        abort();
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct td_jwt_keys *keys;
    if (keys == NULL)
        keys = td_jwt_keys_new("secret", NULL, NULL, NULL, 0);

    const char *why;
    verify_checked(keys, (const char *)data, size, &why);

    /* The same bytes as a payload: sign, then the verifier may reject only the claims. */
    if (size <= TD_JWT_MAX_TOKEN) {
        char *payload = malloc(size + 1);
        if (size)
            memcpy(payload, data, size);
        payload[size] = '\0';
        struct td_buf tok;
        td_buf_init(&tok);
        if (td_jwt_sign_hs256("secret", payload, &tok) == 0) {
            if (verify_checked(keys, (const char *)tok.data, tok.len, &why) == TD_JWT_INVALID &&
                (strcmp(why, "bad signature") == 0 || strcmp(why, "malformed token") == 0 ||
                 strcmp(why, "bad header") == 0 || strcmp(why, "token too long") == 0 ||
                 strcmp(why, "payload is not a JSON object") == 0))
                abort();
        }
        td_buf_free(&tok);
        free(payload);
    }
    return 0;
}
