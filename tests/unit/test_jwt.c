/*
 * Tests for td_jwt. HMAC vectors were computed independently (Python hmac/hashlib); RSA and
 * ECDSA tokens are signed here with OpenSSL directly, never through td_jwt, so a bug shared
 * by signer and verifier cannot hide.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth/td_jwt.h"
#include "core/td_base64.h"
#include "core/td_buf.h"
#include "core/td_err.h"
#include "td_test.h"

#define NOW 1700000000

static const char jwtio_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

/* ---------------------------------------------------------------------------------------
 * Helpers: token construction without td_jwt.
 */

static void b64url(struct td_buf *out, const void *p, size_t n)
{
    char *tmp = malloc(TD_BASE64_ENCODED_LEN(n) + 1);
    size_t w = td_base64_encode(p, n, tmp);
    for (size_t i = 0; i < w; i++) {
        if (tmp[i] == '=')
            break;
        td_buf_append_byte(out, (uint8_t)(tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i]));
    }
    free(tmp);
}

/* Appends b64url(header) "." b64url(payload) to out. */
static void signing_input(struct td_buf *out, const char *header, const char *payload)
{
    b64url(out, header, strlen(header));
    td_buf_append_byte(out, '.');
    b64url(out, payload, strlen(payload));
}

/* An HMAC token with any header; md selects HS256/384/512. */
static void hs_token(struct td_buf *out, const EVP_MD *md, const char *secret, const char *header,
                     const char *payload)
{
    td_buf_reset(out);
    signing_input(out, header, payload);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(md, secret, (int)strlen(secret), out->data, out->len, mac, &maclen);
    td_buf_append_byte(out, '.');
    b64url(out, mac, maclen);
}

/* A token for the "HS256" header with the given payload. */
static void hs256(struct td_buf *out, const char *secret, const char *payload)
{
    hs_token(out, EVP_sha256(), secret, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
}

static char *pubkey_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(bio);
    return s;
}

/* Signs with OpenSSL: RSA PKCS#1 v1.5, or ECDSA converted from DER to raw r||s of coord
 * bytes each (coord 0 for RSA). */
static void pk_token(struct td_buf *out, EVP_PKEY *pkey, const EVP_MD *md, size_t coord,
                     const char *alg, const char *payload)
{
    char header[64];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", alg);
    td_buf_reset(out);
    signing_input(out, header, payload);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = 0;
    EVP_DigestSignInit(ctx, NULL, md, NULL, pkey);
    EVP_DigestSign(ctx, NULL, &siglen, out->data, out->len);
    uint8_t *sig = malloc(siglen);
    EVP_DigestSign(ctx, sig, &siglen, out->data, out->len);
    EVP_MD_CTX_free(ctx);
    td_buf_append_byte(out, '.');
    if (coord == 0) {
        b64url(out, sig, siglen);
    } else {
        const uint8_t *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        uint8_t raw[2 * 66];
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)coord);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + coord, (int)coord);
        ECDSA_SIG_free(es);
        b64url(out, raw, 2 * coord);
    }
    free(sig);
}

static enum td_jwt_status verify_buf(const struct td_jwt_keys *k, const struct td_buf *t,
                                     int64_t now, struct td_jwt_claims *c, const char **why)
{
    return td_jwt_verify(k, (const char *)t->data, t->len, now, c, why);
}

/* Verifies payload signed with HS256/"secret" and returns the status (claims freed). */
static enum td_jwt_status hs_status(const char *payload, int64_t now, const char **why)
{
    struct td_jwt_keys *k = td_jwt_keys_new("secret", NULL, NULL, NULL, 0);
    struct td_buf t;
    td_buf_init(&t);
    hs256(&t, "secret", payload);
    struct td_jwt_claims c;
    memset(&c, 0, sizeof(c));
    enum td_jwt_status st = verify_buf(k, &t, now, &c, why);
    td_jwt_claims_free(&c);
    td_buf_free(&t);
    td_jwt_keys_del(k);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * HMAC
 */

TD_TEST(jwt_hs256_jwtio_vector)
{
    struct td_jwt_keys *k = td_jwt_keys_new("your-256-bit-secret", NULL, NULL, NULL, 0);
    TD_REQUIRE(k != NULL);
    TD_CHECK(!td_jwt_keys_empty(k));
    struct td_jwt_claims c;
    const char *why = NULL;
    TD_REQUIRE(td_jwt_verify(k, jwtio_token, strlen(jwtio_token), NOW, &c, &why) == TD_JWT_OK);
    TD_CHECK(strcmp(c.sub, "1234567890") == 0);
    TD_CHECK_EQ_INT(c.iat, 1516239022);
    TD_CHECK_EQ_INT(c.exp, 0);
    TD_CHECK(!c.has_expire_at);
    TD_CHECK(c.info == NULL && c.channel == NULL && c.client == NULL && c.meta == NULL);
    TD_CHECK(c.channels == NULL && c.n_channels == 0);
    td_jwt_claims_free(&c);
    td_jwt_keys_del(k);

    /* Same token, other secret. */
    k = td_jwt_keys_new("your-256-bit-secreT", NULL, NULL, NULL, 0);
    TD_CHECK(td_jwt_verify(k, jwtio_token, strlen(jwtio_token), NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "bad signature") == 0);
    td_jwt_keys_del(k);
}

TD_TEST(jwt_hs384_hs512_vectors)
{
    static const char *tokens[] = {
        "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiI0MiIsImV4cCI6MjAwMDAwMDAwMCwiY2hhbm5lbHMiOlsibmV3cyIsIiRjaGF0Il19."
        "gjFSeAp8wedJHQPFkTBDxZMlWO8VjC8wLkqhKmP3lT4bc4jEKHmRdyamR9lbU8Go",
        "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiI0MiIsImV4cCI6MjAwMDAwMDAwMCwiY2hhbm5lbHMiOlsibmV3cyIsIiRjaGF0Il19."
        "HUD2tXU03gbLppZvJtiOm7OVS3fYC9E2mHjAr9URKXHoxQs8cFrKmltp5f5IdqnxZjK0Pw-r62DQs_wvuBDIDg",
    };
    struct td_jwt_keys *k = td_jwt_keys_new("tandem-secret", NULL, NULL, NULL, 0);
    for (size_t i = 0; i < 2; i++) {
        struct td_jwt_claims c;
        const char *why = NULL;
        TD_REQUIRE(td_jwt_verify(k, tokens[i], strlen(tokens[i]), NOW, &c, &why) == TD_JWT_OK);
        TD_CHECK(strcmp(c.sub, "42") == 0);
        TD_CHECK_EQ_INT(c.exp, 2000000000);
        TD_REQUIRE(c.n_channels == 2);
        TD_CHECK(strcmp(c.channels[0], "news") == 0);
        TD_CHECK(strcmp(c.channels[1], "$chat") == 0);
        td_jwt_claims_free(&c);
        /* Expired at exactly exp, with a valid signature. */
        TD_CHECK(td_jwt_verify(k, tokens[i], strlen(tokens[i]), 2000000000, &c, &why) ==
                 TD_JWT_EXPIRED);
    }
    td_jwt_keys_del(k);
}

TD_TEST(jwt_sign_roundtrip_all_claims)
{
    const char *payload =
        "{\"sub\":\"alice\",\"exp\":1700000100,\"iat\":1699999000,\"nbf\":1699999999,"
        "\"expire_at\":0,\"info\":{\"name\":\"Alice\",\"tags\":[1,2]},\"channel\":\"$room\","
        "\"client\":\"c-1\",\"channels\":[],\"meta\":[true],\"data\":\"x\\u00e9\",\"aud\":7}";
    struct td_buf t;
    td_buf_init(&t);
    td_buf_append_str(&t, "junk");
    TD_REQUIRE(td_jwt_sign_hs256("s3cret", payload, &t) == 0);
    TD_CHECK(t.data[t.len] == '\0');
    TD_REQUIRE(memcmp(t.data, "junk", 4) == 0);
    struct td_jwt_keys *k = td_jwt_keys_new("s3cret", NULL, NULL, NULL, 0);
    struct td_jwt_claims c;
    const char *why = NULL;
    TD_REQUIRE(td_jwt_verify(k, (const char *)t.data + 4, t.len - 4, NOW, &c, &why) == TD_JWT_OK);
    TD_CHECK(strcmp(c.sub, "alice") == 0);
    TD_CHECK_EQ_INT(c.exp, 1700000100);
    TD_CHECK_EQ_INT(c.iat, 1699999000);
    TD_CHECK_EQ_INT(c.nbf, 1699999999);
    TD_CHECK(c.has_expire_at);
    TD_CHECK_EQ_INT(c.expire_at, 0);
    TD_CHECK(c.info != NULL && strcmp(c.info, "{\"name\":\"Alice\",\"tags\":[1,2]}") == 0);
    TD_CHECK(c.channel != NULL && strcmp(c.channel, "$room") == 0);
    TD_CHECK(c.client != NULL && strcmp(c.client, "c-1") == 0);
    TD_CHECK(c.n_channels == 0);
    TD_CHECK(c.meta != NULL && strcmp(c.meta, "[true]") == 0);
    TD_CHECK(c.data != NULL && strcmp(c.data, "\"x\\u00e9\"") == 0);
    td_jwt_claims_free(&c);
    td_jwt_claims_free(&c); /* harmless */

    /* The signer's output matches the jwt.io vector byte for byte. */
    td_buf_reset(&t);
    TD_REQUIRE(td_jwt_sign_hs256(
                   "your-256-bit-secret",
                   "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}", &t) == 0);
    TD_CHECK_MEM_STR(t.data, t.len, jwtio_token);
    td_buf_free(&t);
    td_jwt_keys_del(k);
}

TD_TEST(jwt_sign_rejects_bad_input)
{
    struct td_buf t;
    td_buf_init(&t);
    TD_CHECK_EQ_INT(td_jwt_sign_hs256("s", "[1]", &t), TD_EINVAL);
    TD_CHECK_EQ_INT(td_jwt_sign_hs256("s", "{\"a\":", &t), TD_EINVAL);
    TD_CHECK_EQ_INT(td_jwt_sign_hs256("", "{}", &t), TD_EINVAL);
    TD_CHECK_EQ_INT(td_jwt_sign_hs256(NULL, "{}", &t), TD_EINVAL);
    TD_CHECK_EQ_INT(t.len, 0);
    /* A payload whose token would exceed the verifier's cap. */
    size_t n = 13000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    memcpy(big, "{\"sub\":\"", 8);
    memcpy(big + n - 2, "\"}", 2);
    big[n] = '\0';
    TD_CHECK_EQ_INT(td_jwt_sign_hs256("s", big, &t), TD_ELIMIT);
    TD_CHECK_EQ_INT(t.len, 0);
    /* Just under the cap signs and verifies. */
    memcpy(big + 11000, "\"}", 3);
    TD_REQUIRE(td_jwt_sign_hs256("s", big, &t) == 0);
    TD_CHECK(t.len <= TD_JWT_MAX_TOKEN);
    struct td_jwt_keys *k = td_jwt_keys_new("s", NULL, NULL, NULL, 0);
    struct td_jwt_claims c;
    TD_REQUIRE(verify_buf(k, &t, NOW, &c, NULL) == TD_JWT_OK);
    TD_CHECK(strlen(c.sub) == 11000 - 8);
    td_jwt_claims_free(&c);
    td_jwt_keys_del(k);
    free(big);
    td_buf_free(&t);
}

TD_TEST(jwt_tampered_payload_and_signature)
{
    struct td_jwt_keys *k = td_jwt_keys_new("your-256-bit-secret", NULL, NULL, NULL, 0);
    char tok[sizeof(jwtio_token)];
    struct td_jwt_claims c;
    memset(&c, 0x5a, sizeof(c));
    struct td_jwt_claims orig = c;
    const char *why = NULL;
    size_t n = strlen(jwtio_token);

    /* One character of the payload changed. */
    memcpy(tok, jwtio_token, sizeof(tok));
    char *pay = strchr(tok, '.') + 1;
    pay[13] = pay[13] == 'N' ? 'M' : 'N';
    TD_CHECK(td_jwt_verify(k, tok, n, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(memcmp(&c, &orig, sizeof(c)) == 0); /* claims untouched */

    /* Last signature character changed. */
    memcpy(tok, jwtio_token, sizeof(tok));
    tok[n - 1] = 'A';
    TD_CHECK(td_jwt_verify(k, tok, n, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "bad signature") == 0 || strcmp(why, "malformed token") == 0);

    /* Signature truncated by one character and by a whole quantum. */
    TD_CHECK(td_jwt_verify(k, jwtio_token, n - 1, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(td_jwt_verify(k, jwtio_token, n - 4, NOW, &c, &why) == TD_JWT_INVALID);
    /* Signature dropped entirely, and the signature of another token. */
    TD_CHECK(td_jwt_verify(k, jwtio_token, (size_t)(strrchr(jwtio_token, '.') - jwtio_token) + 1,
                           NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(memcmp(&c, &orig, sizeof(c)) == 0);
    td_jwt_keys_del(k);
}

TD_TEST(jwt_expiry_and_nbf)
{
    const char *why = NULL;
    TD_CHECK(hs_status("{\"exp\":1700000001}", NOW, &why) == TD_JWT_OK);
    TD_CHECK(hs_status("{\"exp\":1700000000}", NOW, &why) == TD_JWT_EXPIRED);
    TD_CHECK(strcmp(why, "token expired") == 0);
    TD_CHECK(hs_status("{\"exp\":0}", NOW, &why) == TD_JWT_EXPIRED);
    TD_CHECK(hs_status("{\"exp\":null}", NOW, &why) == TD_JWT_OK);
    TD_CHECK(hs_status("{\"nbf\":1700000000}", NOW, &why) == TD_JWT_OK);
    TD_CHECK(hs_status("{\"nbf\":1700000001}", NOW, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "token not valid yet") == 0);
    /* Fractions are truncated: 1700000000.9 is expired at 1700000000. */
    TD_CHECK(hs_status("{\"exp\":1700000000.9}", NOW, &why) == TD_JWT_EXPIRED);
    TD_CHECK(hs_status("{\"exp\":1.7000001e9}", NOW, &why) == TD_JWT_OK);
    TD_CHECK(hs_status("{\"exp\":1e300}", NOW, &why) == TD_JWT_INVALID);

    /* An expired token with a bad signature is INVALID, not EXPIRED. */
    struct td_jwt_keys *k = td_jwt_keys_new("secret", NULL, NULL, NULL, 0);
    struct td_buf t;
    td_buf_init(&t);
    hs256(&t, "other", "{\"exp\":1}");
    struct td_jwt_claims c;
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "bad signature") == 0);
    /* ...and an expired token with an ill-typed claim is INVALID as well. */
    hs256(&t, "secret", "{\"exp\":1,\"sub\":5}");
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    td_buf_free(&t);
    td_jwt_keys_del(k);
}

TD_TEST(jwt_wrong_claim_types)
{
    static const char *bad[] = {
        "{\"sub\":1234}",
        "{\"sub\":\"a\\u0000b\"}",
        "{\"exp\":\"1800000000\"}",
        "{\"iat\":true}",
        "{\"nbf\":[1]}",
        "{\"expire_at\":{}}",
        "{\"channel\":1}",
        "{\"client\":false}",
        "{\"channels\":\"news\"}",
        "{\"channels\":[\"a\",1]}",
        "{\"channels\":[\"a\",null]}",
        "{\"channels\":[[\"a\"]]}",
        "{\"channels\":{\"a\":\"b\"}}",
        "[1,2]",
        "\"sub\"",
        "{\"sub\":\"x\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        TD_CHECK(hs_status(bad[i], NOW, &why) == TD_JWT_INVALID);
        TD_CHECK(why != NULL && strcmp(why, "bad signature") != 0);
    }
    /* null means absent; unknown claims of any type are ignored. */
    const char *why = NULL;
    TD_CHECK(hs_status("{\"sub\":null,\"channels\":null,\"info\":null,\"aud\":[1],\"x\":{}}", NOW,
                       &why) == TD_JWT_OK);
    /* Duplicate keys: the last wins, as in Go. */
    TD_CHECK(hs_status("{\"sub\":1,\"sub\":\"ok\"}", NOW, &why) == TD_JWT_OK);
    TD_CHECK(hs_status("{\"sub\":\"ok\",\"sub\":1}", NOW, &why) == TD_JWT_INVALID);
}

TD_TEST(jwt_null_claims_are_absent)
{
    struct td_jwt_keys *k = td_jwt_keys_new("secret", NULL, NULL, NULL, 0);
    struct td_buf t;
    td_buf_init(&t);
    hs256(&t, "secret", "{\"sub\":null,\"info\":null,\"expire_at\":null,\"channel\":null}");
    struct td_jwt_claims c;
    TD_REQUIRE(verify_buf(k, &t, NOW, &c, NULL) == TD_JWT_OK);
    TD_CHECK(c.sub != NULL && c.sub[0] == '\0');
    TD_CHECK(c.info == NULL && c.channel == NULL && !c.has_expire_at);
    td_jwt_claims_free(&c);
    td_buf_free(&t);
    td_jwt_keys_del(k);
}

TD_TEST(jwt_header_checks)
{
    struct td_jwt_keys *k = td_jwt_keys_new("secret", NULL, NULL, NULL, 0);
    struct td_buf t;
    td_buf_init(&t);
    struct td_jwt_claims c;
    const char *why = NULL;
    const char *pl = "{\"sub\":\"u\"}";

    /* alg none, with and without a signature part. */
    td_buf_reset(&t);
    signing_input(&t, "{\"alg\":\"none\",\"typ\":\"JWT\"}", pl);
    td_buf_append_byte(&t, '.');
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":\"none\"}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "unsupported alg") == 0);
    /* Case matters; PS256 and EdDSA are not supported. */
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":\"hs256\"}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":\"PS256\"}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    /* Header without alg, alg not a string, typ not a string, header not an object. */
    hs_token(&t, EVP_sha256(), "secret", "{\"typ\":\"JWT\"}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":256}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":\"HS256\",\"typ\":1}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    hs_token(&t, EVP_sha256(), "secret", "[\"HS256\"]", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    /* An extension we cannot honour. */
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
             pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    /* Header says HS512 but the MAC is HS256. */
    hs_token(&t, EVP_sha256(), "secret", "{\"alg\":\"HS512\"}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    /* Sanity: the same construction with a proper header verifies; typ is optional. */
    hs_token(&t, EVP_sha384(), "secret", "{\"alg\":\"HS384\",\"kid\":\"k1\"}", pl);
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_OK);
    td_jwt_claims_free(&c);
    td_buf_free(&t);
    td_jwt_keys_del(k);
}

TD_TEST(jwt_garbage_and_limits)
{
    struct td_jwt_keys *k = td_jwt_keys_new("your-256-bit-secret", NULL, NULL, NULL, 0);
    struct td_jwt_claims c;
    const char *why = NULL;
    static const char *bad[] = {
        "",
        "abc",
        "..",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJIUzI1NiJ9.e30.e30.e30",
        "eyJhbGciOiJIUzI1NiJ9..sig",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "eyJhbGciOiJIUzI1NiJ9.e3*.AAAA",
        "eyJhbGciOiJIUzI1NiJ9 .e30.AAAA",
        "eyJhbGciOiJIUzI1NiJ9.e30=.AAAA",
        "eyJhbGciOiJIUzI1NiJ9.e30.A",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TD_CHECK(td_jwt_verify(k, bad[i], strlen(bad[i]), NOW, &c, &why) == TD_JWT_INVALID);
        TD_CHECK(why != NULL);
    }
    /* The jwt.io token with a standard-alphabet or padded signature is refused even though
     * it decodes to the same bytes. */
    char tok[sizeof(jwtio_token) + 1];
    memcpy(tok, jwtio_token, sizeof(jwtio_token));
    char *us = strrchr(tok, '_');
    *us = '/';
    TD_CHECK(td_jwt_verify(k, tok, strlen(tok), NOW, &c, &why) == TD_JWT_INVALID);
    *us = '_';
    strcat(tok, "=");
    TD_CHECK(td_jwt_verify(k, tok, strlen(tok), NOW, &c, &why) == TD_JWT_INVALID);
    /* Embedded NUL inside the token. */
    memcpy(tok, jwtio_token, sizeof(jwtio_token));
    tok[5] = '\0';
    TD_CHECK(td_jwt_verify(k, tok, strlen(jwtio_token), NOW, &c, &why) == TD_JWT_INVALID);

    /* Over the cap: a valid token followed by junk would be refused before any parsing. */
    size_t n = TD_JWT_MAX_TOKEN + 1;
    char *big = malloc(n);
    memset(big, 'A', n);
    memcpy(big, jwtio_token, strlen(jwtio_token));
    TD_CHECK(td_jwt_verify(k, big, n, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "token too long") == 0);
    free(big);

    /* No keys: nothing verifies. */
    TD_CHECK(td_jwt_verify(NULL, jwtio_token, strlen(jwtio_token), NOW, &c, &why) ==
             TD_JWT_INVALID);
    struct td_jwt_keys *none = td_jwt_keys_new(NULL, "", NULL, NULL, 0);
    TD_REQUIRE(none != NULL);
    TD_CHECK(td_jwt_keys_empty(none));
    TD_CHECK(td_jwt_keys_empty(NULL));
    TD_CHECK(td_jwt_verify(none, jwtio_token, strlen(jwtio_token), NOW, &c, &why) ==
             TD_JWT_INVALID);
    td_jwt_keys_del(none);
    td_jwt_keys_del(k);
}

/* ---------------------------------------------------------------------------------------
 * RSA and ECDSA
 */

TD_TEST(jwt_rsa)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    TD_REQUIRE(key != NULL);
    char *pem = pubkey_pem(key);
    char err[128];
    struct td_jwt_keys *k = td_jwt_keys_new(NULL, pem, NULL, err, sizeof(err));
    TD_REQUIRE(k != NULL);
    struct td_buf t;
    td_buf_init(&t);
    struct td_jwt_claims c;
    const char *why = NULL;
    static const char *algs[] = {"RS256", "RS384", "RS512"};
    const EVP_MD *mds[] = {EVP_sha256(), EVP_sha384(), EVP_sha512()};
    for (size_t i = 0; i < 3; i++) {
        pk_token(&t, key, mds[i], 0, algs[i], "{\"sub\":\"bob\",\"exp\":1700000001}");
        TD_REQUIRE(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_OK);
        TD_CHECK(strcmp(c.sub, "bob") == 0);
        td_jwt_claims_free(&c);
        TD_CHECK(verify_buf(k, &t, NOW + 1, &c, &why) == TD_JWT_EXPIRED);
        /* Flip a bit in the middle of the signature. */
        t.data[t.len - 100] = t.data[t.len - 100] == 'A' ? 'B' : 'A';
        TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    }
    /* RS256 header over an RS512 signature. */
    pk_token(&t, key, EVP_sha512(), 0, "RS256", "{}");
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);

    /* Alg confusion: an HS256 token keyed with the public PEM text is refused when only
     * the RSA key is configured... */
    hs256(&t, pem, "{\"sub\":\"mallory\"}");
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
    TD_CHECK(strcmp(why, "no key for alg") == 0);
    /* ...and ES256 with no EC key too. */
    pk_token(&t, key, EVP_sha256(), 0, "ES256", "{}");
    TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);

    /* An HMAC key alongside RSA does not let RSA tokens be MAC-verified or vice versa. */
    struct td_jwt_keys *both = td_jwt_keys_new("secret", pem, NULL, err, sizeof(err));
    TD_REQUIRE(both != NULL);
    pk_token(&t, key, EVP_sha256(), 0, "RS256", "{\"sub\":\"r\"}");
    TD_CHECK(verify_buf(both, &t, NOW, &c, &why) == TD_JWT_OK);
    td_jwt_claims_free(&c);
    hs256(&t, "secret", "{\"sub\":\"h\"}");
    TD_CHECK(verify_buf(both, &t, NOW, &c, &why) == TD_JWT_OK);
    TD_CHECK(strcmp(c.sub, "h") == 0);
    td_jwt_claims_free(&c);
    hs256(&t, pem, "{\"sub\":\"mallory\"}");
    TD_CHECK(verify_buf(both, &t, NOW, &c, &why) == TD_JWT_INVALID);

    td_jwt_keys_del(both);
    td_buf_free(&t);
    td_jwt_keys_del(k);
    free(pem);
    EVP_PKEY_free(key);
}

TD_TEST(jwt_ecdsa)
{
    static const char *curves[] = {"P-256", "P-384", "P-521"};
    static const char *algs[] = {"ES256", "ES384", "ES512"};
    static const size_t coords[] = {32, 48, 66};
    const EVP_MD *mds[] = {EVP_sha256(), EVP_sha384(), EVP_sha512()};
    struct td_buf t;
    td_buf_init(&t);
    struct td_jwt_claims c;
    const char *why = NULL;
    char err[128];
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        TD_REQUIRE(key != NULL);
        char *pem = pubkey_pem(key);
        struct td_jwt_keys *k = td_jwt_keys_new(NULL, NULL, pem, err, sizeof(err));
        TD_REQUIRE(k != NULL);
        /* Several signatures, so that short r or s values (leading zero bytes) turn up. */
        for (int j = 0; j < 8; j++) {
            pk_token(&t, key, mds[i], coords[i], algs[i],
                     "{\"sub\":\"eve\",\"channel\":\"$c\",\"client\":\"abc\"}");
            TD_REQUIRE(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_OK);
            TD_CHECK(strcmp(c.sub, "eve") == 0 && strcmp(c.channel, "$c") == 0);
            TD_CHECK(strcmp(c.client, "abc") == 0);
            td_jwt_claims_free(&c);
        }
        /* Tampered signature. */
        size_t mid = t.len - 20;
        t.data[mid] = t.data[mid] == 'A' ? 'B' : 'A';
        TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
        /* A DER signature where raw r||s belongs. */
        pk_token(&t, key, mds[i], 0, algs[i], "{}");
        TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
        /* Expired needs a valid signature first. */
        pk_token(&t, key, mds[i], coords[i], algs[i], "{\"exp\":5}");
        TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_EXPIRED);
        /* The alg must match the key's curve: sign with the right key, claim another alg. */
        size_t o = (i + 1) % 3;
        pk_token(&t, key, mds[o], coords[i], algs[o], "{}");
        TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
        TD_CHECK(strcmp(why, "alg does not match the key's curve") == 0);
        /* HS256 keyed with the PEM is refused. */
        hs256(&t, pem, "{}");
        TD_CHECK(verify_buf(k, &t, NOW, &c, &why) == TD_JWT_INVALID);
        td_jwt_keys_del(k);
        free(pem);
        EVP_PKEY_free(key);
    }
    td_buf_free(&t);
}

TD_TEST(jwt_keys_bad_pem)
{
    char err[128] = "";
    TD_CHECK(td_jwt_keys_new(NULL, "not a pem", NULL, err, sizeof(err)) == NULL);
    TD_CHECK(strstr(err, "rsa") != NULL);
    err[0] = '\0';
    TD_CHECK(td_jwt_keys_new("s", NULL,
                             "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC "
                             "KEY-----\n",
                             err, sizeof(err)) == NULL);
    TD_CHECK(strstr(err, "ecdsa") != NULL);
    /* NULL err is allowed. */
    TD_CHECK(td_jwt_keys_new(NULL, "x", NULL, NULL, 0) == NULL);

    /* Keys of the wrong family or strength. */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    TD_REQUIRE(ec != NULL && k1 != NULL && rsa != NULL);
    char *ec_pem = pubkey_pem(ec), *k1_pem = pubkey_pem(k1), *rsa_pem = pubkey_pem(rsa);
    TD_CHECK(td_jwt_keys_new(NULL, ec_pem, NULL, err, sizeof(err)) == NULL);
    TD_CHECK(strstr(err, "not an RSA key") != NULL);
    TD_CHECK(td_jwt_keys_new(NULL, NULL, rsa_pem, err, sizeof(err)) == NULL);
    TD_CHECK(strstr(err, "not an EC key") != NULL);
    TD_CHECK(td_jwt_keys_new(NULL, rsa_pem, NULL, err, sizeof(err)) == NULL);
    TD_CHECK(strstr(err, "2048") != NULL);
    TD_CHECK(td_jwt_keys_new(NULL, NULL, k1_pem, err, sizeof(err)) == NULL);
    TD_CHECK(strstr(err, "curve") != NULL);
    /* A tiny err buffer is truncated, not overrun. */
    char tiny[4];
    TD_CHECK(td_jwt_keys_new(NULL, NULL, k1_pem, tiny, sizeof(tiny)) == NULL);
    TD_CHECK(strlen(tiny) == 3);
    free(ec_pem);
    free(k1_pem);
    free(rsa_pem);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa);
}
