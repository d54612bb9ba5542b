/*
 * td_jwt.h - verification of Centrifugo connection and subscription tokens (compact JWS).
 *
 * A token is header.payload.signature, each part base64url without padding (RFC 7515
 * compact serialisation). Supported algorithms are HS256/384/512 (shared secret),
 * RS256/384/512 (RSASSA-PKCS1-v1_5) and ES256/384/512 (ECDSA on P-256/P-384/P-521, raw
 * r||s signatures). "none" is never accepted, and an algorithm is accepted only when a key
 * of its family is configured, so an HS256 token cannot be verified with an RSA public key
 * used as an HMAC secret ("alg confusion").
 *
 * The module is pure: no I/O and no clock; the caller passes the current Unix time. It
 * only checks what a token says and how it is typed. Policy that depends on context is
 * the caller's: a connection token must not carry "channel" (Centrifugo answers 3500), a
 * subscription token's "channel", "sub" and "client" must match the connection. Claims
 * not listed in struct td_jwt_claims (aud, iss, jti, b64info, b64data, override) are
 * ignored, whatever their type. "subs" (an object: channel -> options) adds its channels to
 * `channels`, with the options' "info" (any JSON) as the subscription's channel info.
 *
 * Error mapping in the protocol (see the research notes, sections 4.5 and 4.6):
 * TD_JWT_INVALID is disconnect 3500 for a connection token and error 103 for a
 * subscription token; TD_JWT_EXPIRED is error 109 for both.
 */
#ifndef TD_JWT_H
#define TD_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"

/* Longest token td_jwt_verify looks at, in bytes; longer ones are TD_JWT_INVALID. */
#define TD_JWT_MAX_TOKEN 16384

/* A set of verification keys (at most one per family). Immutable once built, so one set
 * may be shared by every connection. */
struct td_jwt_keys;

/*
 * td_jwt_keys_new builds a key set from configuration strings; each may be NULL or "" to
 * leave its family unconfigured. hmac_secret is the raw shared secret (its bytes, up to the
 * NUL). rsa_pem and ecdsa_pem are PEM public keys ("-----BEGIN PUBLIC KEY-----",
 * SubjectPublicKeyInfo); the RSA key must be at least 2048 bits and the ECDSA key on P-256,
 * P-384 or P-521 (which then admits only ES256, ES384 or ES512 respectively). Returns the
 * new set (free with td_jwt_keys_del), or NULL with a one-line, NUL-terminated reason
 * written to err[0..errlen) (if err is not NULL and errlen > 0) when a PEM is unusable.
 */
struct td_jwt_keys *td_jwt_keys_new(const char *hmac_secret, const char *rsa_pem,
                                    const char *ecdsa_pem, char *err, size_t errlen);

/* td_jwt_keys_del frees a key set; NULL is a no-op. */
void td_jwt_keys_del(struct td_jwt_keys *k);

/* td_jwt_keys_empty returns true if k is NULL or holds no key, i.e. no token can verify. */
bool td_jwt_keys_empty(const struct td_jwt_keys *k);

enum td_jwt_status {
    TD_JWT_OK = 0,
    TD_JWT_INVALID, /* malformed, unsupported, wrongly signed, ill-typed or not yet valid */
    TD_JWT_EXPIRED, /* authentic and well-formed, but exp <= now */
};

/*
 * The claims of a verified token. Every pointer is owned by the struct (free with
 * td_jwt_claims_free). Strings are NUL-terminated and hold no NUL byte (a token whose
 * string claims contain "\u0000" is rejected). A claim given as JSON null counts as absent,
 * as Go's encoding/json (which Centrifugo uses) treats it.
 *
 * Time claims (exp, iat, nbf, expire_at) are JSON numbers; a fraction is truncated toward
 * zero (RFC 7519 NumericDate allows one). Values outside int64 are rejected.
 */
struct td_jwt_claims {
    char *sub;         /* user id; "" if absent (anonymous) */
    int64_t exp;       /* 0 if absent */
    int64_t iat;       /* 0 if absent */
    int64_t nbf;       /* 0 if absent */
    int64_t expire_at; /* 0 if absent; has_expire_at tells presence (0 means "never") */
    bool has_expire_at;
    char *info;           /* raw JSON text of "info" (any type), NULL if absent */
    char *channel;        /* NULL if absent (present only in subscription tokens) */
    char *client;         /* NULL if absent (subscription tokens) */
    char **channels;      /* "channels" then the keys of "subs" (connection tokens), NULL if none */
    char **channel_infos; /* per entry of channels: raw JSON of subs[ch].info, or NULL */
    size_t n_channels;
    char *meta; /* raw JSON text of "meta", NULL if absent */
    char *data; /* raw JSON text of "data" (subscription tokens), NULL if absent */
};

/*
 * td_jwt_verify checks the compact JWS token[0..n) against the key set k (NULL counts as
 * empty) at Unix time now_s. In order: the size cap (TD_JWT_MAX_TOKEN), three base64url
 * parts (url-safe alphabet only, no padding), a header that is a JSON object with a string
 * "alg" ("typ" is optional but must be a string; "crit" is refused since no extension is
 * understood), an algorithm that is supported and has a key, the signature, a payload that
 * is a JSON object with well-typed claims, nbf <= now_s (if present), and last exp > now_s
 * (if present). Expiry is thus reported only for an authentic, well-formed token.
 *
 * Returns TD_JWT_OK and fills *claims (the caller frees them with td_jwt_claims_free), or
 * TD_JWT_INVALID / TD_JWT_EXPIRED with *reason (if reason is not NULL) set to a short
 * static string such as "bad signature", "unsupported alg" or "malformed token", and
 * *claims left untouched.
 */
enum td_jwt_status td_jwt_verify(const struct td_jwt_keys *k, const char *token, size_t n,
                                 int64_t now_s, struct td_jwt_claims *claims, const char **reason);

/* td_jwt_claims_free releases what *c owns and zeroes it; freeing twice is harmless. */
void td_jwt_claims_free(struct td_jwt_claims *c);

/*
 * td_jwt_sign_hs256 builds a compact token with header {"alg":"HS256","typ":"JWT"}, the
 * bytes of payload_json (which must be one JSON object, taken verbatim) and an HMAC-SHA256
 * signature with the raw secret, and appends it to out followed by a NUL that is not
 * counted in out->len. For `tandem gentoken` and tests. Returns 0, TD_EINVAL if secret is
 * NULL or empty or payload_json is not a JSON object (out untouched), or TD_ELIMIT if the
 * token would exceed TD_JWT_MAX_TOKEN, so that td_jwt_verify would refuse it (out
 * untouched).
 */
int td_jwt_sign_hs256(const char *secret, const char *payload_json, struct td_buf *out);

#endif
