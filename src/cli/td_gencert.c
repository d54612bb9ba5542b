/*
 * td_gencert.c - self-signed ECDSA certificates for WebTransport serverCertificateHashes.
 *
 * Built with OpenSSL's libcrypto, which tandem already links (the QUIC stack reads the
 * resulting PEM files through GnuTLS, which accepts them). Each file is written to a
 * temporary name in the same directory and renamed, so a server (re)starting concurrently
 * never reads a half-written file; between the two renames the new key sits beside the old
 * certificate, a mismatch that GnuTLS reports at load time and a restart clears.
 */
#include "cli/td_gencert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/td_base64.h"
#include "core/td_err.h"

static int gencert_fail(char *err, size_t errlen, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int gencert_fail(char *err, size_t errlen, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rv;
}

static int gencert_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* Builds and signs the certificate; returns NULL on a libcrypto failure. */
static X509 *gencert_build(EVP_PKEY *key, int64_t not_before, int days)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    ASN1_INTEGER *sn = NULL;
    int ok = x != NULL && serial != NULL && X509_set_version(x, 2) == 1 &&
             /* 127 random bits: positive, at most 16 bytes as RFC 5280 wants. */
             BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
             (sn = BN_to_ASN1_INTEGER(serial, NULL)) != NULL && X509_set_serialNumber(x, sn) == 1 &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) != NULL &&
             ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(not_before + (int64_t)days * 86400)) !=
                 NULL &&
             X509_set_pubkey(x, key) == 1;
    if (ok) {
        X509_NAME *name = X509_get_subject_name(x);
        ok = X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tandem",
                                        -1, -1, 0) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
             X509_set_issuer_name(x, name) == 1 &&
             gencert_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             gencert_add_ext(x, NID_key_usage, "critical,digitalSignature") == 0 &&
             gencert_add_ext(x, NID_ext_key_usage, "serverAuth") == 0 &&
             gencert_add_ext(x, NID_subject_key_identifier, "hash") == 0 &&
             gencert_add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
             X509_sign(x, key, EVP_sha256()) > 0;
    }
    ASN1_INTEGER_free(sn);
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes path via path.tmp + rename with the given mode. Returns 0 or -errno. */
static int gencert_write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) != 0) { /* an old tmp file may have had other permissions */
        int e = -errno;
        close(fd);
        unlink(tmp);
        return e;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        int e = -errno;
        close(fd);
        unlink(tmp);
        return e;
    }
    int ok = cert != NULL ? PEM_write_X509(f, cert) == 1
                          : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    int rv = 0;
    if (!ok)
        rv = -EIO;
    if (fflush(f) != 0 && rv == 0)
        rv = -errno;
    if (fsync(fileno(f)) != 0 && rv == 0)
        rv = -errno;
    if (fclose(f) != 0 && rv == 0)
        rv = -errno;
    if (rv == 0 && rename(tmp, path) != 0)
        rv = -errno;
    if (rv != 0)
        unlink(tmp);
    return rv;
}

int td_gencert_write(const char *dir, int days, uint8_t sha256[32], int64_t *not_after, char *err,
                     size_t errlen)
{
    if (days < 1 || days > TD_GENCERT_MAX_DAYS)
        return gencert_fail(err, errlen, TD_EINVAL,
                            "--days must be 1-%d (browsers refuse pinned certificates valid "
                            "for longer)",
                            TD_GENCERT_MAX_DAYS);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return gencert_fail(err, errlen, -errno, "cannot create %s: %s", dir, strerror(errno));

    char cert_path[4096], key_path[4096];
    if ((size_t)snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir) >=
            sizeof(cert_path) - 8 ||
        (size_t)snprintf(key_path, sizeof(key_path), "%s/key.pem", dir) >= sizeof(key_path) - 8)
        return gencert_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", dir);

    int64_t now = (int64_t)time(NULL);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        return gencert_fail(err, errlen, -EIO, "cannot generate a P-256 key");
    X509 *cert = gencert_build(key, now, days);
    if (cert == NULL) {
        EVP_PKEY_free(key);
        return gencert_fail(err, errlen, -EIO, "cannot build the certificate");
    }
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    unsigned int md_len = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    int rv = 0;
    if (der_len <= 0 || EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32)
        rv = gencert_fail(err, errlen, -EIO, "cannot hash the certificate");
    OPENSSL_free(der);
    /* Key first: a reader that sees the new certificate also sees its key. */
    if (rv == 0 && (rv = gencert_write_pem(key_path, 0600, NULL, key)) != 0)
        gencert_fail(err, errlen, rv, "cannot write %s: %s", key_path, strerror(-rv));
    if (rv == 0 && (rv = gencert_write_pem(cert_path, 0644, cert, NULL)) != 0)
        gencert_fail(err, errlen, rv, "cannot write %s: %s", cert_path, strerror(-rv));
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rv != 0)
        return rv;
    memcpy(sha256, md, 32);
    *not_after = now + (int64_t)days * 86400;
    return 0;
}

static void gencert_usage(FILE *f)
{
    fprintf(f,
            "usage: tandem gencert [--days N] --out DIR\n"
            "  writes DIR/cert.pem and DIR/key.pem: a self-signed ECDSA P-256 certificate\n"
            "  for localhost and 127.0.0.1, valid N days (1-%d, default %d), and prints its\n"
            "  SHA-256 for WebTransport serverCertificateHashes\n",
            TD_GENCERT_MAX_DAYS, TD_GENCERT_DEFAULT_DAYS);
}

int td_gencert_main(int argc, char **argv)
{
    const char *out = NULL, *days_s = NULL;
    for (int i = 2; i < argc; i++) {
        const char **slot = NULL;
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            gencert_usage(stdout);
            return 0;
        }
        if (strncmp(a, "--out", 5) == 0 && (a[5] == '\0' || a[5] == '='))
            slot = &out;
        else if (strncmp(a, "--days", 6) == 0 && (a[6] == '\0' || a[6] == '='))
            slot = &days_s;
        if (slot == NULL) {
            fprintf(stderr, "tandem gencert: unknown argument '%s'\n", a);
            gencert_usage(stderr);
            return 2;
        }
        const char *eq = strchr(a, '=');
        if (eq != NULL) {
            *slot = eq + 1;
        } else if (i + 1 < argc) {
            *slot = argv[++i];
        } else {
            fprintf(stderr, "tandem gencert: %s needs a value\n", a);
            return 2;
        }
    }
    long days = TD_GENCERT_DEFAULT_DAYS;
    if (days_s != NULL) {
        char *end;
        errno = 0;
        days = strtol(days_s, &end, 10);
        if (errno != 0 || end == days_s || *end != '\0')
            days = -1;
    }
    if (out == NULL || out[0] == '\0' || days < 1 || days > TD_GENCERT_MAX_DAYS) {
        fprintf(stderr, "tandem gencert: need --out DIR and --days between 1 and %d\n",
                TD_GENCERT_MAX_DAYS);
        return 2;
    }
    uint8_t md[32];
    int64_t not_after;
    char err[512];
    int rv = td_gencert_write(out, (int)days, md, &not_after, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "tandem gencert: %s\n", err);
        return 1;
    }
    char hex[65], b64[TD_BASE64_ENCODED_LEN(32) + 1], when[32];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    td_base64_encode(md, 32, b64);
    time_t t = (time_t)not_after;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("cert: %s/cert.pem\n"
           "key: %s/key.pem\n"
           "not_after: %s\n"
           "sha256_hex: %s\n"
           "sha256_base64: %s\n",
           out, out, when, hex, b64);
    fprintf(stderr,
            "tandem gencert: pin it in the page with serverCertificateHashes: [{algorithm: "
            "'sha-256', value: Uint8Array.from(atob('%s'), c => c.charCodeAt(0))}]; "
            "regenerate before %s\n",
            b64, when);
    return 0;
}
