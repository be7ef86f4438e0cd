/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "pcr.h"

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

int pcr_mask_from_string(const char *s, uint32_t *ret_mask) {
        uint32_t mask = 0;
        const char *p = s;

        if (!s)
                return -EINVAL;
        while (*p) {
                size_t n = strcspn(p, "+,");
                char word[32];
                bool found = false;

                if (n == 0 || n >= sizeof(word)) {
                        /* A trailing separator is fine ("4+9+"); an empty word elsewhere is not. */
                        if (n == 0 && p[1] == 0 && p != s)
                                break;
                        return -EINVAL;
                }
                memcpy(word, p, n);
                word[n] = 0;

                if (word[0] >= '0' && word[0] <= '9') {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(word, &end, 10);
                        if (errno || *end || v >= PCR_MAX)
                                return -EINVAL;
                        mask |= 1u << v;
                        found = true;
                } else
                        for (size_t i = 0; i < ELEMENTSOF(pcr_names); i++)
                                if (streq(word, pcr_names[i].name)) {
                                        mask |= 1u << pcr_names[i].index;
                                        found = true;
                                }
                if (!found)
                        return -EINVAL;
                p += n;
                if (*p)
                        p++;
        }
        *ret_mask = mask;
        return 0;
}

char *pcr_mask_to_string(uint32_t mask) {
        char buf[PCR_MAX * 3 + 1] = "";
        size_t k = 0;

        for (unsigned i = 0; i < PCR_MAX; i++)
                if (mask & (1u << i))
                        k += (size_t) snprintf(buf + k, sizeof(buf) - k, "%s%u", k > 0 ? "+" : "", i);
        return strdup(buf);
}

unsigned pcr_mask_count(uint32_t mask) {
        return (unsigned) __builtin_popcount(mask & ((1u << PCR_MAX) - 1));
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
        for (size_t i = 0; i < ELEMENTSOF(banks); i++)
                if (streq(s, banks[i].name)) {
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
        ret[0] = 0, ret[1] = 0, ret[2] = 0, ret[3] = 1;         /* count */
        ret[4] = (uint8_t) (bank >> 8), ret[5] = (uint8_t) bank; /* hash */
        ret[6] = 3;                                              /* sizeofSelect */
        ret[7] = (uint8_t) mask, ret[8] = (uint8_t) (mask >> 8), ret[9] = (uint8_t) (mask >> 16);
}

static int sha256(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
                  const void *d, size_t dn, uint8_t out[SHA256_DIGEST_SIZE]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned len = 0;
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             (an == 0 || EVP_DigestUpdate(ctx, a, an) == 1) &&
             (bn == 0 || EVP_DigestUpdate(ctx, b, bn) == 1) &&
             (cn == 0 || EVP_DigestUpdate(ctx, c, cn) == 1) &&
             (dn == 0 || EVP_DigestUpdate(ctx, d, dn) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == SHA256_DIGEST_SIZE;
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -EIO;
}

int policy_digest_pcr(uint8_t digest[SHA256_DIGEST_SIZE], uint16_t bank, uint32_t mask,
                      const uint8_t *values, size_t values_size) {
        static const uint8_t cc[4] = { 0x00, 0x00, 0x01, 0x7F };
        uint8_t sel[10], vdigest[SHA256_DIGEST_SIZE];
        int r;

        if (pcr_bank_digest_size(bank) == 0 || mask >= (1u << PCR_MAX) ||
            values_size != pcr_mask_count(mask) * pcr_bank_digest_size(bank))
                return -EINVAL;
        pcr_selection_marshal(bank, mask, sel);
        r = sha256(values, values_size, NULL, 0, NULL, 0, NULL, 0, vdigest);
        if (r < 0)
                return r;
        {
                uint8_t prev[SHA256_DIGEST_SIZE];
                memcpy(prev, digest, sizeof(prev));
                return sha256(prev, sizeof(prev), cc, sizeof(cc), sel, sizeof(sel), vdigest, sizeof(vdigest), digest);
        }
}

void policy_digest_auth_value(uint8_t digest[SHA256_DIGEST_SIZE]) {
        static const uint8_t cc[4] = { 0x00, 0x00, 0x01, 0x6B };
        uint8_t prev[SHA256_DIGEST_SIZE];

        memcpy(prev, digest, sizeof(prev));
        (void) sha256(prev, sizeof(prev), cc, sizeof(cc), NULL, 0, NULL, 0, digest);
}

int policy_digest_compute(uint16_t bank, uint32_t mask, const uint8_t *values, size_t values_size,
                          bool pin, uint8_t ret[SHA256_DIGEST_SIZE]) {
        uint8_t d[SHA256_DIGEST_SIZE] = {};
        int r;

        r = policy_digest_pcr(d, bank, mask, values, values_size);
        if (r < 0)
                return r;
        if (pin)
                policy_digest_auth_value(d);
        memcpy(ret, d, sizeof(d));
        return 0;
}
