/*
 * td_gencert.h - `tandem gencert`: a short-lived self-signed certificate for WebTransport.
 *
 * Browsers accept a self-signed certificate for WebTransport when the page pins it with
 * `serverCertificateHashes`, under rules Chromium enforces (verified against Chromium 156,
 * docs/webtransport.md): the key is ECDSA P-256 or P-384 (RSA is refused), notAfter minus
 * notBefore is at most 14 days, the current time is inside that window, and the pinned
 * value is the SHA-256 of the DER-encoded leaf certificate. The hostname is not checked on
 * that path; the SAN (localhost, 127.0.0.1) is there for clients that do check it.
 *
 * Because of the 14-day rule the certificate must be regenerated at least every 13-14 days
 * (for tests: on every run), and every regeneration changes the hash pages must pin.
 */
#ifndef TD_GENCERT_H
#define TD_GENCERT_H

#include <stddef.h>
#include <stdint.h>

/* Chromium's kCustomCertificateMaxValidityDays. */
#define TD_GENCERT_MAX_DAYS 14
#define TD_GENCERT_DEFAULT_DAYS 13

/*
 * td_gencert_write creates dir if needed (mode 0700) and writes dir/cert.pem (an X.509 v3
 * certificate: ECDSA P-256 key, ecdsa-with-SHA256, notBefore = now, notAfter = now + days,
 * SAN DNS:localhost and IP:127.0.0.1, serverAuth) and dir/key.pem (the PKCS#8 private key,
 * mode 0600), replacing existing files atomically. days must be 1..TD_GENCERT_MAX_DAYS.
 * On success stores the SHA-256 of the certificate's DER in sha256 and its notAfter (Unix
 * seconds) in *not_after. Returns 0, TD_EINVAL for a bad days value, or a negative code
 * (-errno for file errors) with a one-line reason in err.
 */
int td_gencert_write(const char *dir, int days, uint8_t sha256[32], int64_t *not_after, char *err,
                     size_t errlen);

/*
 * td_gencert_main runs `tandem gencert [--days N] --out DIR` (argv[1] = "gencert"): writes
 * the files and prints, one "key: value" per line on stdout, cert, key, not_after (ISO 8601
 * UTC), sha256_hex and sha256_base64. Returns the process exit status (0, 1 on failure, 2 on
 * a usage error).
 */
int td_gencert_main(int argc, char **argv);

#endif
