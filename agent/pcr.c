/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "pcr.h"

#define PCR_MASK_ALL ((1u << PCR_MAX) - 1)

/* TPM2_CC values that go into policy digests. */
static const uint8_t cc_policy_pcr[4] = { 0x00, 0x00, 0x01, 0x7F };
static const uint8_t cc_policy_auth_value[4] = { 0x00, 0x00, 0x01, 0x6B };
static const uint8_t cc_policy_authorize[4] = { 0x00, 0x00, 0x01, 0x6A };

/* The names systemd gives PCRs (its "TPM2 PCR Measurements" documentation),
 * so that "--pcrs=boot-loader-code+kernel-initrd" reads the same in both. */
static const struct {
        const char *name;
        unsigned index;
} pcr_names[] = {
        { "platform-code", 0 },
        { "platform-config", 1 },
        { "external-code", 2 },
        { "external-config", 3 },
        { "boot-loader-code", 4 },
        { "boot-loader-config", 5 },
        { "host-platform", 6 },
        { "secure-boot-policy", 7 },
        { "kernel-initrd", 9 },
        { "ima", 10 },
        { "kernel-boot", 11 },
        { "kernel-config", 12 },
        { "sysexts", 13 },
        { "shim-policy", 14 },
        { "system-identity", 15 },
        { "debug", 16 },
        { "application-support", 23 },
};

/* One word of a PCR list: a decimal index or a name. */
static int pcr_word(const char *w, size_t n, unsigned *ret) {
        if (n == 0)
                return -EINVAL;
        if (w[0] >= '0' && w[0] <= '9') {
                unsigned v = 0;

                if (n > 2)
                        return -EINVAL;         /* 0..23: at most two digits */
                for (size_t i = 0; i < n; i++) {
                        if (w[i] < '0' || w[i] > '9')
                                return -EINVAL;
                        v = v * 10 + (unsigned) (w[i] - '0');
                }
                if (v >= PCR_MAX)
                        return -EINVAL;
                *ret = v;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(pcr_names); i++)
                if (strlen(pcr_names[i].name) == n && memcmp(pcr_names[i].name, w, n) == 0) {
                        *ret = pcr_names[i].index;
                        return 0;
                }
        return -EINVAL;
}

int pcr_mask_from_string(const char *s, uint32_t *ret_mask) {
        uint32_t mask = 0;
        const char *p;

        if (!s || !ret_mask)
                return -EINVAL;
        for (p = s; *p;) {
                size_t n = strcspn(p, "+,");
                unsigned idx;

                if (pcr_word(p, n, &idx) < 0)
                        return -EINVAL;
                mask |= 1u << idx;
                p += n;
                if (*p == 0)
                        break;
                p++;                    /* the separator */
                /* A single trailing separator is fine ("4+9+"); an empty
                 * word anywhere else ("7++9", "+7") is not. */
        }
        *ret_mask = mask;
        return 0;
}

char *pcr_mask_to_string(uint32_t mask) {
        char buf[PCR_MAX * 3 + 1];
        size_t k = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < PCR_MAX; i++)
                if (mask & (1u << i))
                        k += (size_t) snprintf(buf + k, sizeof(buf) - k, "%s%u", k > 0 ? "+" : "", i);
        return strdup(buf);
}

unsigned pcr_mask_count(uint32_t mask) {
        return (unsigned) __builtin_popcount(mask & PCR_MASK_ALL);
}

static const struct {
        const char *name;
        uint16_t bank;
        size_t size;
} banks[] = {
        { "sha1", PCR_BANK_SHA1, 20 },
        { "sha256", PCR_BANK_SHA256, 32 },
        { "sha384", PCR_BANK_SHA384, 48 },
        { "sha512", PCR_BANK_SHA512, 64 },
};

int pcr_bank_from_string(const char *s, uint16_t *ret_bank) {
        if (!s || !ret_bank)
                return -EINVAL;
        /* Any case, as systemd reads tpm2-pcr-bank. */
        for (size_t i = 0; i < ELEMENTSOF(banks); i++)
                if (strcasecmp(s, banks[i].name) == 0) {
                        *ret_bank = banks[i].bank;
                        return 0;
                }
        return -EOPNOTSUPP;
}

const char *pcr_bank_to_string(uint16_t bank) {
        for (size_t i = 0; i < ELEMENTSOF(banks); i++)
                if (banks[i].bank == bank)
                        return banks[i].name;
        return NULL;
}

size_t pcr_bank_digest_size(uint16_t bank) {
        for (size_t i = 0; i < ELEMENTSOF(banks); i++)
                if (banks[i].bank == bank)
                        return banks[i].size;
        return 0;
}

void pcr_selection_marshal(uint16_t bank, uint32_t mask, uint8_t ret[10]) {
        /* TPML_PCR_SELECTION, big-endian: count, then one TPMS_PCR_SELECTION. */
        ret[0] = 0;
        ret[1] = 0;
        ret[2] = 0;
        ret[3] = 1;                             /* count */
        ret[4] = (uint8_t) (bank >> 8);         /* hash */
        ret[5] = (uint8_t) bank;
        ret[6] = 3;                             /* sizeofSelect */
        ret[7] = (uint8_t) mask;                /* pcrSelect: bit i%8 of byte i/8 is PCR i */
        ret[8] = (uint8_t) (mask >> 8);
        ret[9] = (uint8_t) (mask >> 16);
}

static int sha256(const void *p, size_t n, uint8_t out[SHA256_DIGEST_SIZE]) {
        unsigned len = 0;

        /* EVP_Digest() with n == 0 hashes the empty string; p may be NULL then. */
        if (EVP_Digest(n > 0 ? p : "", n, out, &len, EVP_sha256(), NULL) != 1 || len != SHA256_DIGEST_SIZE)
                return -EIO;
        return 0;
}

int policy_digest_pcr(uint8_t digest[SHA256_DIGEST_SIZE], uint16_t bank, uint32_t mask,
                      const uint8_t *values, size_t values_size) {
        /* d ‖ TPM2_CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ SHA256(values) */
        uint8_t buf[SHA256_DIGEST_SIZE + 4 + 10 + SHA256_DIGEST_SIZE];
        size_t dsize = pcr_bank_digest_size(bank);
        int r;

        if (!digest || dsize == 0 || (mask & ~PCR_MASK_ALL) ||
            values_size != pcr_mask_count(mask) * dsize || (!values && values_size > 0))
                return -EINVAL;

        memcpy(buf, digest, SHA256_DIGEST_SIZE);
        memcpy(buf + SHA256_DIGEST_SIZE, cc_policy_pcr, 4);
        pcr_selection_marshal(bank, mask, buf + SHA256_DIGEST_SIZE + 4);
        r = sha256(values, values_size, buf + SHA256_DIGEST_SIZE + 4 + 10);
        if (r < 0)
                return r;
        return sha256(buf, sizeof(buf), digest);
}

void policy_digest_auth_value(uint8_t digest[SHA256_DIGEST_SIZE]) {
        uint8_t buf[SHA256_DIGEST_SIZE + 4];

        memcpy(buf, digest, SHA256_DIGEST_SIZE);
        memcpy(buf + SHA256_DIGEST_SIZE, cc_policy_auth_value, 4);
        /* SHA256 of 36 bytes only fails when libcrypto cannot allocate. Then
         * leave a digest that no TPM session produces, never the old one. */
        if (sha256(buf, sizeof(buf), digest) < 0)
                memset(digest, 0xFF, SHA256_DIGEST_SIZE);
}

int policy_digest_authorize(uint8_t digest[SHA256_DIGEST_SIZE], const uint8_t *key_name, size_t key_name_size) {
        /* 0 ‖ TPM2_CC_PolicyAuthorize ‖ keyName, hashed; then ‖ policyRef (empty), hashed */
        uint8_t buf[SHA256_DIGEST_SIZE + 4 + 2 + 64];
        int r;

        if (!digest || !key_name || key_name_size == 0 || key_name_size > sizeof(buf) - SHA256_DIGEST_SIZE - 4)
                return -EINVAL;
        memset(buf, 0, SHA256_DIGEST_SIZE);
        memcpy(buf + SHA256_DIGEST_SIZE, cc_policy_authorize, 4);
        memcpy(buf + SHA256_DIGEST_SIZE + 4, key_name, key_name_size);
        r = sha256(buf, SHA256_DIGEST_SIZE + 4 + key_name_size, digest);
        if (r < 0)
                return r;
        return sha256(digest, SHA256_DIGEST_SIZE, digest);
}

int policy_digest_compute(uint16_t bank, uint32_t mask, const uint8_t *values, size_t values_size,
                          bool pin, uint8_t ret[SHA256_DIGEST_SIZE]) {
        uint8_t d[SHA256_DIGEST_SIZE] = {};
        int r;

        if (!ret)
                return -EINVAL;
        /* No PCRs: no PolicyPCR at all, as in systemd's tokens. */
        if (mask != 0) {
                r = policy_digest_pcr(d, bank, mask, values, values_size);
                if (r < 0)
                        return r;
        } else if (values_size != 0 || pcr_bank_digest_size(bank) == 0)
                return -EINVAL;
        if (pin)
                policy_digest_auth_value(d);
        memcpy(ret, d, sizeof(d));
        return 0;
}
