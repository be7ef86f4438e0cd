/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "strutil.h"
#include "tpm2-offline.h"

/* TPM2 constants (TPM 2.0 Part 2), spelt out: this file has no tpm2-tss. */
#define ALG_RSA          OFFLINE_ALG_RSA
#define ALG_KEYEDHASH    0x0008
#define ALG_SHA256       0x000B
#define ALG_NULL         0x0010
#define ALG_ECC          OFFLINE_ALG_ECC
#define ALG_AES          0x0006
#define ALG_CFB          0x0043
#define ECC_NIST_P256    0x0003
#define ECC_NIST_P384    0x0004
#define ATTR_NODA        0x00000400u
#define ATTR_RESTRICTED  0x00010000u
#define ATTR_DECRYPT     0x00020000u
#define ATTR_SIGN        0x00040000u
#define IESYSC_KEY_RSRC  0x00000001u

static int fail(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

/* A bounds-checked reader of big-endian TPM marshalling. */
typedef struct Reader {
        const uint8_t *p;
        size_t left;
        bool bad;
} Reader;

static uint16_t get16(Reader *r) {
        uint16_t v;

        if (r->bad || r->left < 2) {
                r->bad = true;
                return 0;
        }
        v = (uint16_t) (r->p[0] << 8 | r->p[1]);
        r->p += 2;
        r->left -= 2;
        return v;
}

static uint32_t get32(Reader *r) {
        uint32_t hi = get16(r);
        return hi << 16 | get16(r);
}

/* A TPM2B of at most max bytes; returns its bytes, or NULL (r->bad). */
static const uint8_t *get2b(Reader *r, size_t max, size_t *ret_size) {
        const uint8_t *p;
        uint16_t n = get16(r);

        if (r->bad || n > max || n > r->left) {
                r->bad = true;
                *ret_size = 0;
                return NULL;
        }
        p = r->p;
        r->p += n;
        r->left -= n;
        *ret_size = n;
        return p;
}

/* A growing buffer for marshalling; a failed allocation sticks. */
typedef struct Writer {
        uint8_t *buf;
        size_t size, allocated;
        bool oom;
} Writer;

static void put(Writer *w, const void *p, size_t n) {
        if (w->oom)
                return;
        if (w->size + n > w->allocated) {
                size_t a = MAX(w->allocated * 2, w->size + n + 64);
                uint8_t *b = realloc(w->buf, a);
                if (!b) {
                        w->oom = true;
                        return;
                }
                w->buf = b;
                w->allocated = a;
        }
        if (n > 0)
                memcpy(w->buf + w->size, p, n);
        w->size += n;
}

static void put16(Writer *w, uint16_t v) {
        put(w, (uint8_t[]) { v >> 8, v & 0xff }, 2);
}

static void put32(Writer *w, uint32_t v) {
        put16(w, v >> 16);
        put16(w, v & 0xffff);
}

static void put2b(Writer *w, const void *p, size_t n) {
        put16(w, (uint16_t) n);
        put(w, p, n);
}

/* Wipes what the writer held (it may have held a secret) and frees it. */
static void writer_wipe(Writer *w) {
        if (w->buf)
                explicit_bzero(w->buf, w->allocated);
        free(w->buf);
        *w = (Writer) {};
}

static int writer_take(Writer *w, uint8_t **ret, size_t *ret_size) {
        if (w->oom) {
                writer_wipe(w);
                return -ENOMEM;
        }
        *ret = w->buf;
        *ret_size = w->size;
        *w = (Writer) {};
        return 0;
}

static int sha256_name(const uint8_t *public, size_t size, uint8_t ret[static 2 + SHA256_DIGEST_SIZE]) {
        ret[0] = ALG_SHA256 >> 8;
        ret[1] = ALG_SHA256 & 0xff;
        return SHA256(public, size, ret + 2) ? 0 : -EIO;
}

int offline_srk_parse(const uint8_t *data, size_t size, OfflineSrk *ret, char **ret_error) {
        Reader r = { .p = data, .left = size };
        const uint8_t *u;
        uint32_t attrs;
        size_t n, outer;

        *ret = (OfflineSrk) {};
        outer = get16(&r);
        if (r.bad || outer != r.left)
                return fail(ret_error, -EBADMSG, "not a TPM2B_PUBLIC: its size field says %zu bytes, %zu follow "
                            "(give the file tpm2_readpublic -f tss or systemd-analyze srk writes)", outer, r.left);
        if (outer > sizeof(ret->public))
                return fail(ret_error, -EBADMSG, "the public area is too large");
        memcpy(ret->public, r.p, outer);
        ret->public_size = outer;

        ret->type = get16(&r);
        if (get16(&r) != ALG_SHA256 && !r.bad)
                return fail(ret_error, -EOPNOTSUPP, "the key's name algorithm is not SHA-256");
        attrs = get32(&r);
        (void) get2b(&r, 64, &n);               /* authPolicy */
        if (r.bad)
                return fail(ret_error, -EBADMSG, "the public area is truncated");
        if (ret->type != ALG_RSA && ret->type != ALG_ECC)
                return fail(ret_error, -EOPNOTSUPP, "the key is neither RSA nor ECC (type 0x%04x)", ret->type);
        if ((attrs & (ATTR_RESTRICTED | ATTR_DECRYPT | ATTR_SIGN)) != (ATTR_RESTRICTED | ATTR_DECRYPT))
                return fail(ret_error, -EOPNOTSUPP, "the key is not a storage key (restricted decrypt): attributes 0x%08x", attrs);

        /* TPMT_SYM_DEF_OBJECT: what the duplicate is encrypted with. */
        if (get16(&r) != ALG_AES && !r.bad)
                return fail(ret_error, -EOPNOTSUPP, "the key's symmetric algorithm is not AES");
        ret->sym_bits = get16(&r);
        if (get16(&r) != ALG_CFB && !r.bad)
                return fail(ret_error, -EOPNOTSUPP, "the key's symmetric mode is not CFB");
        if (!r.bad && ret->sym_bits != 128 && ret->sym_bits != 256)
                return fail(ret_error, -EOPNOTSUPP, "the key's AES key size is %u bits", ret->sym_bits);
        /* A restricted decryption key has no scheme (and, for ECC, no KDF). */
        if (get16(&r) != ALG_NULL && !r.bad)
                return fail(ret_error, -EOPNOTSUPP, "the key has an asymmetric scheme, which a storage key has not");

        if (ret->type == ALG_RSA) {
                uint16_t bits = get16(&r);

                ret->rsa_exponent = get32(&r);
                u = get2b(&r, sizeof(ret->rsa_modulus), &n);
                if (r.bad)
                        return fail(ret_error, -EBADMSG, "the RSA public area is truncated");
                if (bits < 2048 || bits > 4096 || n * 8 != bits)
                        return fail(ret_error, -EOPNOTSUPP, "the RSA key has %u bits and a %zu-byte modulus", bits, n);
                if (ret->rsa_exponent == 0)
                        ret->rsa_exponent = 65537;
                memcpy(ret->rsa_modulus, u, n);
                ret->rsa_modulus_size = n;
        } else {
                const uint8_t *x, *y;
                size_t xn, yn;

                ret->ecc_curve = get16(&r);
                if (get16(&r) != ALG_NULL && !r.bad)
                        return fail(ret_error, -EOPNOTSUPP, "the ECC key has a KDF scheme, which a storage key has not");
                x = get2b(&r, sizeof(ret->ecc_x), &xn);
                y = get2b(&r, sizeof(ret->ecc_y), &yn);
                if (r.bad)
                        return fail(ret_error, -EBADMSG, "the ECC public area is truncated");
                ret->ecc_size = ret->ecc_curve == ECC_NIST_P256 ? 32 : ret->ecc_curve == ECC_NIST_P384 ? 48 : 0;
                if (ret->ecc_size == 0)
                        return fail(ret_error, -EOPNOTSUPP, "the ECC curve 0x%04x is not NIST P-256 or P-384", ret->ecc_curve);
                if (xn != ret->ecc_size || yn != ret->ecc_size)
                        return fail(ret_error, -EBADMSG, "the ECC point has coordinates of %zu and %zu bytes", xn, yn);
                memcpy(ret->ecc_x, x, xn);
                memcpy(ret->ecc_y, y, yn);
        }
        if (r.left != 0)
                return fail(ret_error, -EBADMSG, "%zu bytes follow the public area", r.left);
        if (sha256_name(ret->public, ret->public_size, ret->name) < 0)
                return fail(ret_error, -EIO, "SHA-256 failed");
        return 0;
}

/* One HMAC-SHA256 over the concatenation of up to five parts. */
static int hmac_parts(const uint8_t *key, size_t key_size, const void *const parts[], const size_t sizes[],
                      size_t n, uint8_t out[static SHA256_DIGEST_SIZE]) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        size_t len = 0;
        int r = -EIO;

        if (!ctx || EVP_MAC_init(ctx, key, key_size, params) != 1)
                goto finish;
        for (size_t i = 0; i < n; i++)
                if (sizes[i] > 0 && EVP_MAC_update(ctx, parts[i], sizes[i]) != 1)
                        goto finish;
        if (EVP_MAC_final(ctx, out, &len, SHA256_DIGEST_SIZE) == 1 && len == SHA256_DIGEST_SIZE)
                r = 0;
finish:
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        return r;
}

static void be32(uint8_t b[4], uint32_t v) {
        b[0] = v >> 24;
        b[1] = v >> 16;
        b[2] = v >> 8;
        b[3] = v;
}

int offline_kdfa(const uint8_t *key, size_t key_size, const char *label, const uint8_t *u, size_t u_size,
                 const uint8_t *v, size_t v_size, uint8_t *ret, size_t bits) {
        uint8_t counter[4], nbits[4], block[SHA256_DIGEST_SIZE];
        size_t bytes = (bits + 7) / 8;

        if (bits == 0 || bits % 8 != 0 || bits > 8 * 1024)
                return -EINVAL;
        be32(nbits, (uint32_t) bits);
        for (uint32_t i = 1, done = 0; done < bytes; i++) {
                const void *parts[] = { counter, label, u, v, nbits };
                const size_t sizes[] = { 4, strlen(label) + 1, u_size, v_size, 4 };
                size_t n = MIN(sizeof(block), bytes - done);

                be32(counter, i);
                if (hmac_parts(key, key_size, parts, sizes, ELEMENTSOF(parts), block) < 0)
                        return -EIO;
                memcpy(ret + done, block, n);
                done += n;
        }
        explicit_bzero(block, sizeof(block));
        return 0;
}

int offline_kdfe(const uint8_t *z, size_t z_size, const char *label, const uint8_t *u, size_t u_size,
                 const uint8_t *v, size_t v_size, uint8_t *ret, size_t bits) {
        uint8_t counter[4], block[SHA256_DIGEST_SIZE];
        size_t bytes = bits / 8;
        EVP_MD_CTX *ctx;
        int r = 0;

        if (bits == 0 || bits % 8 != 0 || bits > 8 * 1024)
                return -EINVAL;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        for (uint32_t i = 1, done = 0; done < bytes; i++) {
                size_t n = MIN(sizeof(block), bytes - done);

                be32(counter, i);
                if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, counter, 4) != 1 ||
                    EVP_DigestUpdate(ctx, z, z_size) != 1 ||
                    EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
                    (u_size > 0 && EVP_DigestUpdate(ctx, u, u_size) != 1) ||
                    (v_size > 0 && EVP_DigestUpdate(ctx, v, v_size) != 1) ||
                    EVP_DigestFinal_ex(ctx, block, NULL) != 1) {
                        r = -EIO;
                        break;
                }
                memcpy(ret + done, block, n);
                done += n;
        }
        explicit_bzero(block, sizeof(block));
        EVP_MD_CTX_free(ctx);
        return r;
}

/* The seed, protected for the RSA SRK: RSA-OAEP-SHA256, label "DUPLICATE\0". */
static int seed_rsa(const OfflineSrk *srk, const uint8_t seed[static SHA256_DIGEST_SIZE], Writer *ret_secret) {
        static const char label[] = "DUPLICATE";
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        BIGNUM *n = BN_bin2bn(srk->rsa_modulus, (int) srk->rsa_modulus_size, NULL);
        BIGNUM *e = BN_new();
        EVP_PKEY_CTX *kctx = NULL, *ctx = NULL;
        EVP_PKEY *key = NULL;
        uint8_t out[512];
        size_t out_len = sizeof(out);
        void *l = NULL;
        int r = -EIO;

        if (!bld || !n || !e || BN_set_word(e, srk->rsa_exponent) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 || !(params = OSSL_PARAM_BLD_to_param(bld)))
                goto finish;
        kctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        if (!kctx || EVP_PKEY_fromdata_init(kctx) != 1 ||
            EVP_PKEY_fromdata(kctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
                goto finish;
        /* The label is handed over to the context, which frees it. */
        l = OPENSSL_memdup(label, sizeof(label));
        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!l || !ctx || EVP_PKEY_encrypt_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
            EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int) sizeof(label)) != 1)
                goto finish;
        l = NULL;
        if (EVP_PKEY_encrypt(ctx, out, &out_len, seed, SHA256_DIGEST_SIZE) != 1)
                goto finish;
        put(ret_secret, out, out_len);
        r = 0;
finish:
        OPENSSL_free(l);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(key);
        EVP_PKEY_CTX_free(kctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(n);
        BN_free(e);
        return r;
}

/* The seed for the ECC SRK: an ephemeral key on its curve, Z = x(d_e·Q_srk),
 * seed = KDFe(SHA256, Z, "DUPLICATE", x_e, x_srk); the secret is the
 * ephemeral point. */
static int seed_ecc(const OfflineSrk *srk, uint8_t seed[static SHA256_DIGEST_SIZE], Writer *ret_secret) {
        const char *group = srk->ecc_curve == ECC_NIST_P256 ? "P-256" : "P-384";
        uint8_t point[1 + 2 * 66], z[66], xe[66], ye[66];
        OSSL_PARAM params[3];
        EVP_PKEY_CTX *kctx = NULL, *ctx = NULL;
        EVP_PKEY *peer = NULL, *eph = NULL;
        BIGNUM *bx = NULL, *by = NULL;
        size_t zn = sizeof(z), m = srk->ecc_size;
        int r = -EIO;

        point[0] = 0x04;
        memcpy(point + 1, srk->ecc_x, m);
        memcpy(point + 1 + m, srk->ecc_y, m);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * m);
        params[2] = OSSL_PARAM_construct_end();
        kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!kctx || EVP_PKEY_fromdata_init(kctx) != 1 ||
            EVP_PKEY_fromdata(kctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
                goto finish;   /* also when the point is not on the curve */
        eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
        if (!eph || EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
            EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1 ||
            BN_bn2binpad(bx, xe, (int) m) != (int) m || BN_bn2binpad(by, ye, (int) m) != (int) m)
                goto finish;
        ctx = EVP_PKEY_CTX_new(eph, NULL);
        if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
            EVP_PKEY_derive(ctx, z, &zn) != 1 || zn != m)
                goto finish;
        r = offline_kdfe(z, zn, "DUPLICATE", xe, m, srk->ecc_x, m, seed, 8 * SHA256_DIGEST_SIZE);
        if (r < 0)
                goto finish;
        put2b(ret_secret, xe, m);
        put2b(ret_secret, ye, m);
finish:
        explicit_bzero(z, sizeof(z));
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_CTX_free(kctx);
        EVP_PKEY_free(eph);
        EVP_PKEY_free(peer);
        BN_free(bx);
        BN_free(by);
        return r;
}

static int aes_cfb_encrypt(const uint8_t *key, size_t bits, const uint8_t *in, size_t n, uint8_t *out) {
        static const uint8_t iv[16] = {};
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int len = 0, fin = 0, r = -EIO;

        if (ctx && EVP_EncryptInit_ex(ctx, bits == 128 ? EVP_aes_128_cfb() : EVP_aes_256_cfb(), NULL, key, iv) == 1 &&
            EVP_EncryptUpdate(ctx, out, &len, in, (int) n) == 1 && EVP_EncryptFinal_ex(ctx, out + len, &fin) == 1 &&
            (size_t) (len + fin) == n)
                r = 0;
        EVP_CIPHER_CTX_free(ctx);
        return r;
}

int offline_seal(const OfflineSrk *srk, const uint8_t policy[static SHA256_DIGEST_SIZE], const uint8_t *auth,
                 size_t auth_size, const void *secret, size_t secret_size, uint8_t **ret, size_t *ret_size) {
        uint8_t seed[SHA256_DIGEST_SIZE], unique[SHA256_DIGEST_SIZE], name[2 + SHA256_DIGEST_SIZE];
        uint8_t k_sym[32], k_hmac[SHA256_DIGEST_SIZE], mac[SHA256_DIGEST_SIZE];
        _cleanup_free_ uint8_t *enc = NULL;
        Writer pub = {}, sens = {}, seedw = {}, blob = {};
        EVP_MD_CTX *md = NULL;
        int r;

        /* A KEYEDHASH object's data is at most MAX_SYM_DATA (128) bytes. */
        /* policy: an array parameter of static size, never NULL. */
        if (!srk || !secret || secret_size == 0 || secret_size > 128 || auth_size > SHA256_DIGEST_SIZE ||
            (srk->type != ALG_RSA && srk->type != ALG_ECC))
                return -EINVAL;

        if (RAND_priv_bytes(seed, sizeof(seed)) != 1)
                return -EIO;
        r = srk->type == ALG_RSA ? seed_rsa(srk, seed, &seedw) : seed_ecc(srk, seed, &seedw);
        if (r < 0)
                goto finish;

        /* unique = H(seedValue ‖ data): the same seed serves as the
         * object's seedValue. */
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, seed, sizeof(seed)) != 1 ||
            EVP_DigestUpdate(md, secret, secret_size) != 1 || EVP_DigestFinal_ex(md, unique, NULL) != 1) {
                r = -EIO;
                goto finish;
        }

        /* TPMT_PUBLIC: KEYEDHASH, SHA-256, no fixedTPM/fixedParent (which
         * Import refuses), no userWithAuth (policy only), noDA without a
         * PIN; scheme NULL. */
        put16(&pub, ALG_KEYEDHASH);
        put16(&pub, ALG_SHA256);
        put32(&pub, auth ? 0 : ATTR_NODA);
        put2b(&pub, policy, SHA256_DIGEST_SIZE);
        put16(&pub, ALG_NULL);
        put2b(&pub, unique, sizeof(unique));
        if (pub.oom) {
                r = -ENOMEM;
                goto finish;
        }
        r = sha256_name(pub.buf, pub.size, name);
        if (r < 0)
                goto finish;

        /* TPM2B(TPMT_SENSITIVE) */
        put16(&sens, 0);
        put16(&sens, ALG_KEYEDHASH);
        put2b(&sens, auth, auth ? auth_size : 0);
        put2b(&sens, seed, sizeof(seed));
        put2b(&sens, secret, secret_size);
        if (sens.oom) {
                r = -ENOMEM;
                goto finish;
        }
        sens.buf[0] = (uint8_t) ((sens.size - 2) >> 8);
        sens.buf[1] = (uint8_t) ((sens.size - 2) & 0xff);

        /* The outer wrapper: AES-CFB with KDFa "STORAGE" over the object's
         * name, zero IV; HMAC with KDFa "INTEGRITY" over it and the name. */
        r = offline_kdfa(seed, sizeof(seed), "STORAGE", name, sizeof(name), NULL, 0, k_sym, srk->sym_bits);
        if (r >= 0)
                r = offline_kdfa(seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL, 0, k_hmac, 8 * sizeof(k_hmac));
        if (r < 0)
                goto finish;
        enc = malloc(sens.size);
        if (!enc) {
                r = -ENOMEM;
                goto finish;
        }
        r = aes_cfb_encrypt(k_sym, srk->sym_bits, sens.buf, sens.size, enc);
        if (r < 0)
                goto finish;
        r = hmac_parts(k_hmac, sizeof(k_hmac), (const void *[]) { enc, name },
                       (const size_t[]) { sens.size, sizeof(name) }, 2, mac);
        if (r < 0)
                goto finish;

        /* TPM2B_PRIVATE(TPM2B_DIGEST(hmac) ‖ enc) ‖ TPM2B_PUBLIC ‖ TPM2B_ENCRYPTED_SECRET */
        put16(&blob, (uint16_t) (2 + sizeof(mac) + sens.size));
        put2b(&blob, mac, sizeof(mac));
        put(&blob, enc, sens.size);
        put2b(&blob, pub.buf, pub.size);
        put2b(&blob, seedw.buf, seedw.size);
        r = writer_take(&blob, ret, ret_size);
finish:
        explicit_bzero(seed, sizeof(seed));
        explicit_bzero(k_sym, sizeof(k_sym));
        explicit_bzero(k_hmac, sizeof(k_hmac));
        explicit_bzero(unique, sizeof(unique));
        EVP_MD_CTX_free(md);
        writer_wipe(&pub);
        writer_wipe(&sens);
        writer_wipe(&seedw);
        writer_wipe(&blob);
        return r;
}

int offline_srk_serialize(const OfflineSrk *srk, uint32_t handle, uint8_t **ret, size_t *ret_size) {
        Writer w = {};

        put32(&w, handle);
        put2b(&w, srk->name, sizeof(srk->name));
        put32(&w, IESYSC_KEY_RSRC);
        put2b(&w, srk->public, srk->public_size);
        return writer_take(&w, ret, ret_size);
}

int pcr_values_from_string(const char *s, uint32_t *ret_mask, uint16_t *ret_bank, uint8_t **ret_values,
                           size_t *ret_values_size, bool *ret_all_values, char **ret_error) {
        _cleanup_free_ char *copy = strdup(s);
        _cleanup_free_ uint8_t *values = NULL;
        uint8_t *byindex[PCR_MAX] = {};
        uint8_t digests[PCR_MAX][64];
        uint32_t mask = 0;
        uint16_t bank = 0;
        bool all = true, any = false;
        char *save = NULL;
        size_t dsize = 0, off = 0;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, "+,", &save); w; w = strtok_r(NULL, "+,", &save)) {
                char *colon = strchr(w, ':'), *eq = NULL;
                uint32_t one;
                unsigned idx;

                if (colon) {
                        *colon = '\0';
                        eq = strchr(colon + 1, '=');
                        if (eq)
                                *eq = '\0';
                }
                if (pcr_mask_from_string(w, &one) < 0 || pcr_mask_count(one) != 1)
                        return fail(ret_error, -EINVAL, "\"%s\" is not a PCR", w);
                idx = (unsigned) __builtin_ctz(one);
                if (mask & one)
                        return fail(ret_error, -EINVAL, "PCR %u is given twice", idx);
                mask |= one;
                if (colon) {
                        uint16_t b;

                        if (pcr_bank_from_string(colon + 1, &b) < 0)
                                return fail(ret_error, -EINVAL, "unknown PCR bank \"%s\" for PCR %u", colon + 1, idx);
                        if (bank != 0 && b != bank)
                                return fail(ret_error, -EINVAL, "PCRs of two banks (%s and %s): give one bank",
                                            pcr_bank_to_string(bank), pcr_bank_to_string(b));
                        bank = b;
                        dsize = pcr_bank_digest_size(b);
                }
                if (!eq) {
                        all = false;
                        continue;
                }
                const char *hex = eq + 1;
                _cleanup_free_ void *d = NULL;
                size_t n;

                if (strncasecmp(hex, "0x", 2) == 0)
                        hex += 2;
                if (hex_decode(hex, strlen(hex), &d, &n) < 0 || n != dsize)
                        return fail(ret_error, -EINVAL, "the value of PCR %u is not %zu bytes of hex", idx, dsize);
                memcpy(digests[idx], d, n);
                byindex[idx] = digests[idx];
                any = true;
        }
        if (any && all) {
                values = malloc(pcr_mask_count(mask) * dsize);
                if (!values)
                        return -ENOMEM;
                for (unsigned i = 0; i < PCR_MAX; i++)
                        if (mask & (1u << i)) {
                                memcpy(values + off, byindex[i], dsize);
                                off += dsize;
                        }
        }
        *ret_mask = mask;
        *ret_bank = bank;
        *ret_values_size = values ? off : 0;
        *ret_values = TAKE_PTR(values);
        *ret_all_values = any && all;
        return 0;
}
