#include "auth/td_jwt.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "core/td_alloc.h"
#include "core/td_base64.h"
#include "core/td_err.h"
#include "core/td_json.h"

struct td_jwt_keys {
    uint8_t *hmac; /* NULL if no shared secret */
    size_t hmac_len;
    EVP_PKEY *rsa; /* NULL if none */
    EVP_PKEY *ec;  /* NULL if none */
    int ec_nid;    /* curve of ec */
};

enum jwt_family { JWT_HS, JWT_RS, JWT_ES };

struct jwt_alg {
    const char *name;
    enum jwt_family family;
    const EVP_MD *(*md)(void);
    int ec_nid;      /* ES only: the curve the alg mandates */
    size_t ec_coord; /* ES only: bytes of r and of s in the raw signature */
};

static const struct jwt_alg jwt_algs[] = {
    {"HS256", JWT_HS, EVP_sha256, 0, 0},
    {"HS384", JWT_HS, EVP_sha384, 0, 0},
    {"HS512", JWT_HS, EVP_sha512, 0, 0},
    {"RS256", JWT_RS, EVP_sha256, 0, 0},
    {"RS384", JWT_RS, EVP_sha384, 0, 0},
    {"RS512", JWT_RS, EVP_sha512, 0, 0},
    {"ES256", JWT_ES, EVP_sha256, NID_X9_62_prime256v1, 32},
    {"ES384", JWT_ES, EVP_sha384, NID_secp384r1, 48},
    {"ES512", JWT_ES, EVP_sha512, NID_secp521r1, 66},
};

/* ---------------------------------------------------------------------------------------
 * Keys
 */

static void jwt_seterr(char *err, size_t errlen, const char *what, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", what, why);
}

/* Reads the first PEM public key in pem; NULL if there is none. */
static EVP_PKEY *jwt_read_pem(const char *pem)
{
    size_t n = strlen(pem);
    if (n > INT_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL)
        return NULL;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return pkey;
}

static int jwt_ec_nid(const EVP_PKEY *pkey)
{
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &len) != 1)
        return NID_undef;
    return OBJ_txt2nid(name);
}

struct td_jwt_keys *td_jwt_keys_new(const char *hmac_secret, const char *rsa_pem,
                                    const char *ecdsa_pem, char *err, size_t errlen)
{
    struct td_jwt_keys *k = td_xcalloc(1, sizeof(*k));
    if (hmac_secret != NULL && hmac_secret[0] != '\0') {
        k->hmac_len = strlen(hmac_secret);
        if (k->hmac_len > INT_MAX) {
            jwt_seterr(err, errlen, "hmac secret", "too long");
            goto fail;
        }
        k->hmac = td_xmalloc(k->hmac_len);
        memcpy(k->hmac, hmac_secret, k->hmac_len);
    }
    if (rsa_pem != NULL && rsa_pem[0] != '\0') {
        k->rsa = jwt_read_pem(rsa_pem);
        if (k->rsa == NULL) {
            jwt_seterr(err, errlen, "rsa public key", "no PEM public key (BEGIN PUBLIC KEY) found");
            goto fail;
        }
        if (!EVP_PKEY_is_a(k->rsa, "RSA")) {
            jwt_seterr(err, errlen, "rsa public key", "not an RSA key");
            goto fail;
        }
        if (EVP_PKEY_get_bits(k->rsa) < 2048) {
            jwt_seterr(err, errlen, "rsa public key", "shorter than 2048 bits");
            goto fail;
        }
    }
    if (ecdsa_pem != NULL && ecdsa_pem[0] != '\0') {
        k->ec = jwt_read_pem(ecdsa_pem);
        if (k->ec == NULL) {
            jwt_seterr(err, errlen, "ecdsa public key",
                       "no PEM public key (BEGIN PUBLIC KEY) found");
            goto fail;
        }
        if (!EVP_PKEY_is_a(k->ec, "EC")) {
            jwt_seterr(err, errlen, "ecdsa public key", "not an EC key");
            goto fail;
        }
        k->ec_nid = jwt_ec_nid(k->ec);
        if (k->ec_nid != NID_X9_62_prime256v1 && k->ec_nid != NID_secp384r1 &&
            k->ec_nid != NID_secp521r1) {
            jwt_seterr(err, errlen, "ecdsa public key", "curve is not P-256, P-384 or P-521");
            goto fail;
        }
    }
    return k;

fail:
    /* OpenSSL queues errors per thread; leave nothing behind for unrelated callers. */
    ERR_clear_error();
    td_jwt_keys_del(k);
    return NULL;
}

void td_jwt_keys_del(struct td_jwt_keys *k)
{
    if (k == NULL)
        return;
    if (k->hmac != NULL) {
        OPENSSL_cleanse(k->hmac, k->hmac_len);
        free(k->hmac);
    }
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    free(k);
}

bool td_jwt_keys_empty(const struct td_jwt_keys *k)
{
    return k == NULL || (k->hmac == NULL && k->rsa == NULL && k->ec == NULL);
}

/* ---------------------------------------------------------------------------------------
 * Signatures
 */

static bool jwt_hmac_ok(const struct jwt_alg *alg, const uint8_t *key, size_t keylen,
                        const char *input, size_t n, const uint8_t *sig, size_t siglen)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(alg->md(), key, (int)keylen, (const unsigned char *)input, n, mac, &maclen) == NULL)
        return false;
    bool ok = siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

static bool jwt_digest_verify(const struct jwt_alg *alg, EVP_PKEY *pkey, const char *input,
                              size_t n, const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return false;
    bool ok = EVP_DigestVerifyInit(ctx, NULL, alg->md(), NULL, pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* JWS carries ECDSA signatures as fixed-width big-endian r||s (RFC 7518 3.4); OpenSSL wants
 * the DER SEQUENCE of two INTEGERs, so convert and then verify. */
static bool jwt_ecdsa_ok(const struct jwt_alg *alg, EVP_PKEY *pkey, const char *input, size_t n,
                         const uint8_t *sig, size_t siglen)
{
    if (siglen != 2 * alg->ec_coord)
        return false;
    int coord = (int)alg->ec_coord;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, coord, NULL);
    BIGNUM *s = BN_bin2bn(sig + alg->ec_coord, coord, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return false;
    }
    /* es owns r and s now. */
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (derlen <= 0)
        return false;
    bool ok = jwt_digest_verify(alg, pkey, input, n, der, (size_t)derlen);
    OPENSSL_free(der);
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * Claims
 */

/* A claim value that is absent or JSON null counts as absent. */
static const struct td_json *jwt_claim(const struct td_json *obj, const char *name)
{
    const struct td_json *v = td_json_get(obj, name);
    return v == NULL || v->type == TD_JSON_NULL ? NULL : v;
}

/* Copies a string value; false if v is not a string or holds a NUL byte (which would
 * silently truncate a user id or channel name in C). */
static bool jwt_string(const struct td_json *v, char **out)
{
    if (v->type != TD_JSON_STRING || memchr(v->str, '\0', v->len) != NULL)
        return false;
    *out = td_xstrndup(v->str, v->len);
    return true;
}

/* Reads a NumericDate: any JSON number within int64 range, fraction truncated. */
static bool jwt_time(const struct td_json *v, int64_t *out)
{
    if (v->type != TD_JSON_NUMBER)
        return false;
    if (v->is_int) {
        *out = v->i;
        return true;
    }
    /* -2^63 is exact as a double; 2^63 is the first value past the top. */
    if (!isfinite(v->num) || v->num < -9223372036854775808.0 || v->num >= 9223372036854775808.0)
        return false;
    *out = (int64_t)v->num;
    return true;
}

static char *jwt_raw(const struct td_json *v)
{
    return td_xstrndup(v->raw, v->raw_len);
}

/* Fills *c from the payload object; returns NULL or a static reason. On failure *c may be
 * partly filled and must be freed. */
static const char *jwt_read_claims(const struct td_json *obj, struct td_jwt_claims *c,
                                   bool *has_exp, bool *has_nbf)
{
    const struct td_json *v;
    if ((v = jwt_claim(obj, "sub")) != NULL) {
        if (!jwt_string(v, &c->sub))
            return "claim sub is not a string";
    } else {
        c->sub = td_xstrdup("");
    }
    if ((v = jwt_claim(obj, "exp")) != NULL) {
        if (!jwt_time(v, &c->exp))
            return "claim exp is not a time";
        *has_exp = true;
    }
    if ((v = jwt_claim(obj, "iat")) != NULL && !jwt_time(v, &c->iat))
        return "claim iat is not a time";
    if ((v = jwt_claim(obj, "nbf")) != NULL) {
        if (!jwt_time(v, &c->nbf))
            return "claim nbf is not a time";
        *has_nbf = true;
    }
    if ((v = jwt_claim(obj, "expire_at")) != NULL) {
        if (!jwt_time(v, &c->expire_at))
            return "claim expire_at is not a time";
        c->has_expire_at = true;
    }
    if ((v = jwt_claim(obj, "channel")) != NULL && !jwt_string(v, &c->channel))
        return "claim channel is not a string";
    if ((v = jwt_claim(obj, "client")) != NULL && !jwt_string(v, &c->client))
        return "claim client is not a string";
    if ((v = jwt_claim(obj, "channels")) != NULL) {
        if (v->type != TD_JSON_ARRAY)
            return "claim channels is not an array of strings";
        if (v->n > 0) {
            c->channels = td_xcalloc(v->n, sizeof(*c->channels));
            for (size_t i = 0; i < v->n; i++) {
                if (!jwt_string(&v->child[i], &c->channels[i]))
                    return "claim channels is not an array of strings";
                c->n_channels = i + 1;
            }
        }
    }
    if ((v = jwt_claim(obj, "subs")) != NULL) {
        if (v->type != TD_JSON_OBJECT)
            return "claim subs is not an object";
        if (v->n > 0) {
            size_t n0 = c->n_channels, total = n0 + v->n;
            c->channels = td_xrealloc(c->channels, total * sizeof(*c->channels));
            c->channel_infos = td_xcalloc(total, sizeof(*c->channel_infos));
            for (size_t i = 0; i < v->n; i++) {
                const struct td_json *opts = &v->child[i];
                if (opts->type != TD_JSON_OBJECT)
                    return "claim subs has a value that is not an object";
                c->channels[n0 + i] = td_xstrndup(opts->key, opts->key_len);
                const struct td_json *info = td_json_get(opts, "info");
                if (info != NULL)
                    c->channel_infos[n0 + i] = jwt_raw(info);
                c->n_channels = n0 + i + 1;
            }
        }
    }
    if ((v = jwt_claim(obj, "info")) != NULL)
        c->info = jwt_raw(v);
    if ((v = jwt_claim(obj, "meta")) != NULL)
        c->meta = jwt_raw(v);
    if ((v = jwt_claim(obj, "data")) != NULL)
        c->data = jwt_raw(v);
    return NULL;
}

void td_jwt_claims_free(struct td_jwt_claims *c)
{
    if (c == NULL)
        return;
    free(c->sub);
    free(c->info);
    free(c->channel);
    free(c->client);
    if (c->channels != NULL) {
        /* Entries past n_channels are NULL (calloc) after a failed read. */
        for (size_t i = 0; i < c->n_channels; i++)
            free(c->channels[i]);
        free(c->channels);
    }
    if (c->channel_infos != NULL) {
        for (size_t i = 0; i < c->n_channels; i++)
            free(c->channel_infos[i]);
        free(c->channel_infos);
    }
    free(c->meta);
    free(c->data);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------------------------------
 * Verification
 */

/* RFC 7515 base64url: only A-Z a-z 0-9 - _, no padding. td_base64_decode is more lenient
 * (both alphabets, optional '='), so the alphabet is checked here first. */
static bool jwt_b64url_chars(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* Decodes p[0..n) into out (room for TD_BASE64_DECODED_MAX(n)); returns the length or -1. */
static long jwt_b64url_decode(const char *p, size_t n, uint8_t *out)
{
    if (!jwt_b64url_chars(p, n))
        return -1;
    int rc = td_base64_decode(p, n, out, TD_BASE64_DECODED_MAX(n));
    return rc < 0 ? -1 : rc;
}

static const struct jwt_alg *jwt_find_alg(const struct td_json *name)
{
    for (size_t i = 0; i < sizeof(jwt_algs) / sizeof(jwt_algs[0]); i++) {
        if (strlen(jwt_algs[i].name) == name->len &&
            memcmp(jwt_algs[i].name, name->str, name->len) == 0)
            return &jwt_algs[i];
    }
    return NULL;
}

/* Checks the signature over token[0..signed_len) with the key alg needs; NULL or a reason. */
static const char *jwt_check_sig(const struct td_jwt_keys *k, const struct jwt_alg *alg,
                                 const char *token, size_t signed_len, const uint8_t *sig,
                                 size_t siglen)
{
    bool ok = false;
    switch (alg->family) {
    case JWT_HS:
        if (k->hmac == NULL)
            return "no key for alg";
        ok = jwt_hmac_ok(alg, k->hmac, k->hmac_len, token, signed_len, sig, siglen);
        break;
    case JWT_RS:
        if (k->rsa == NULL)
            return "no key for alg";
        ok = jwt_digest_verify(alg, k->rsa, token, signed_len, sig, siglen);
        break;
    case JWT_ES:
        if (k->ec == NULL)
            return "no key for alg";
        if (k->ec_nid != alg->ec_nid)
            return "alg does not match the key's curve";
        ok = jwt_ecdsa_ok(alg, k->ec, token, signed_len, sig, siglen);
        break;
    }
    ERR_clear_error();
    return ok ? NULL : "bad signature";
}

/* The verification proper; on success *c is filled, otherwise the reason is returned and
 * *c may hold partial claims to be freed. */
static enum td_jwt_status jwt_verify(const struct td_jwt_keys *k, const char *token, size_t n,
                                     int64_t now_s, struct td_jwt_claims *c, uint8_t *scratch,
                                     const char **why)
{
    /* Split at the two dots. */
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 == NULL ? NULL : memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token));
    if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) != NULL) {
        *why = "malformed token";
        return TD_JWT_INVALID;
    }
    const char *hp = token, *pp = d1 + 1, *sp = d2 + 1;
    size_t hn = (size_t)(d1 - token), pn = (size_t)(d2 - pp), sn = n - (size_t)(sp - token);

    /* The three decoded parts share the scratch buffer (see td_jwt_verify for its size),
     * each in a slot of its own decoded maximum. */
    uint8_t *hdr = scratch;
    uint8_t *pay = hdr + TD_BASE64_DECODED_MAX(hn);
    uint8_t *sig = pay + TD_BASE64_DECODED_MAX(pn);
    long hlen = jwt_b64url_decode(hp, hn, hdr);
    long plen = jwt_b64url_decode(pp, pn, pay);
    long slen = jwt_b64url_decode(sp, sn, sig);
    if (hlen <= 0 || plen <= 0 || slen <= 0) {
        *why = "malformed token";
        return TD_JWT_INVALID;
    }

    struct td_json_doc doc;
    if (td_json_parse(&doc, (const char *)hdr, (size_t)hlen, NULL) != 0) {
        *why = "bad header";
        return TD_JWT_INVALID;
    }
    const struct td_json *h = td_json_root(&doc);
    const struct td_json *alg_name = td_json_get(h, "alg");
    const struct td_json *typ = td_json_get(h, "typ");
    const struct jwt_alg *alg = NULL;
    *why = NULL;
    if (h->type != TD_JSON_OBJECT || alg_name == NULL || alg_name->type != TD_JSON_STRING ||
        (typ != NULL && typ->type != TD_JSON_STRING))
        *why = "bad header";
    else if (td_json_get(h, "crit") != NULL)
        *why = "unsupported header extension";
    else if ((alg = jwt_find_alg(alg_name)) == NULL)
        *why = "unsupported alg";
    td_json_doc_free(&doc);
    if (*why != NULL)
        return TD_JWT_INVALID;

    if ((*why = jwt_check_sig(k, alg, token, (size_t)(d2 - token), sig, (size_t)slen)) != NULL)
        return TD_JWT_INVALID;

    /* Authentic from here on: the payload is parsed only once the signer is known. */
    if (td_json_parse(&doc, (const char *)pay, (size_t)plen, NULL) != 0 ||
        td_json_root(&doc)->type != TD_JSON_OBJECT) {
        td_json_doc_free(&doc);
        *why = "payload is not a JSON object";
        return TD_JWT_INVALID;
    }
    bool has_exp = false, has_nbf = false;
    *why = jwt_read_claims(td_json_root(&doc), c, &has_exp, &has_nbf);
    td_json_doc_free(&doc);
    if (*why != NULL)
        return TD_JWT_INVALID;
    if (has_nbf && c->nbf > now_s) {
        *why = "token not valid yet";
        return TD_JWT_INVALID;
    }
    if (has_exp && c->exp <= now_s) {
        *why = "token expired";
        return TD_JWT_EXPIRED;
    }
    return TD_JWT_OK;
}

enum td_jwt_status td_jwt_verify(const struct td_jwt_keys *k, const char *token, size_t n,
                                 int64_t now_s, struct td_jwt_claims *claims, const char **reason)
{
    const char *why = NULL;
    enum td_jwt_status st = TD_JWT_INVALID;
    if (n > TD_JWT_MAX_TOKEN) {
        why = "token too long";
    } else if (td_jwt_keys_empty(k)) {
        why = "no verification key configured";
    } else if (token == NULL || n == 0) {
        why = "malformed token";
    } else {
        struct td_jwt_claims c;
        memset(&c, 0, sizeof(c));
        /* Decoding the parts separately can round up by one 3-byte quantum more than
         * decoding the whole length would. */
        uint8_t *scratch = td_xmalloc(TD_BASE64_DECODED_MAX(n) + 3);
        st = jwt_verify(k, token, n, now_s, &c, scratch, &why);
        free(scratch);
        if (st == TD_JWT_OK)
            *claims = c;
        else
            td_jwt_claims_free(&c);
    }
    if (st != TD_JWT_OK && reason != NULL)
        *reason = why;
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Signing
 */

static void jwt_b64url_append(struct td_buf *out, const uint8_t *p, size_t n)
{
    size_t need = TD_BASE64_ENCODED_LEN(n) + 1;
    td_buf_reserve(out, need);
    char *dst = (char *)out->data + out->len;
    size_t w = td_base64_encode(p, n, dst);
    while (w > 0 && dst[w - 1] == '=')
        w--;
    for (size_t i = 0; i < w; i++) {
        if (dst[i] == '+')
            dst[i] = '-';
        else if (dst[i] == '/')
            dst[i] = '_';
    }
    out->len += w;
}

int td_jwt_sign_hs256(const char *secret, const char *payload_json, struct td_buf *out)
{
    if (secret == NULL || secret[0] == '\0' || payload_json == NULL)
        return TD_EINVAL;
    size_t plen = strlen(payload_json), slen = strlen(secret);
    if (slen > INT_MAX)
        return TD_EINVAL;
    /* Early out before parsing; the exact length is checked once the token is built. */
    if (plen > TD_JWT_MAX_TOKEN)
        return TD_ELIMIT;
    struct td_json_doc doc;
    if (td_json_parse(&doc, payload_json, plen, NULL) != 0 ||
        td_json_root(&doc)->type != TD_JSON_OBJECT) {
        td_json_doc_free(&doc);
        return TD_EINVAL;
    }
    td_json_doc_free(&doc);

    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct td_buf tok;
    td_buf_init(&tok);
    jwt_b64url_append(&tok, (const uint8_t *)header, sizeof(header) - 1);
    td_buf_append_byte(&tok, '.');
    jwt_b64url_append(&tok, (const uint8_t *)payload_json, plen);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), secret, (int)slen, tok.data, tok.len, mac, &maclen) == NULL) {
        ERR_clear_error();
        td_buf_free(&tok);
        return TD_EINVAL;
    }
    td_buf_append_byte(&tok, '.');
    jwt_b64url_append(&tok, mac, maclen);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (tok.len > TD_JWT_MAX_TOKEN) {
        td_buf_free(&tok);
        return TD_ELIMIT;
    }
    td_buf_append(out, tok.data, tok.len);
    td_buf_reserve(out, 1);
    out->data[out->len] = '\0';
    td_buf_free(&tok);
    return 0;
}
