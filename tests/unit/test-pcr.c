/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PCR lists, banks, TPML_PCR_SELECTION and policy digests, offline. The
 * digests are also checked against a TPM's trial sessions by test-pcr-tpm. */
#include "macro.h"
#include "pcr.h"
#include "tests.h"

#define BIT(i) (1u << (i))

static void hex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
        out[2 * n] = 0;
}

static void test_mask_parse(void) {
        static const struct {
                const char *s;
                uint32_t mask;
        } good[] = {
                { "", 0 },
                { "0", BIT(0) },
                { "0+7", BIT(0) | BIT(7) },
                { "7,9", BIT(7) | BIT(9) },
                { "4+9+", BIT(4) | BIT(9) },
                { "7,", BIT(7) },
                { "7+7", BIT(7) },
                { "23", BIT(23) },
                { "07", BIT(7) },
                { "0+1,2+3", BIT(0) | BIT(1) | BIT(2) | BIT(3) },
                { "secure-boot-policy+kernel-initrd", BIT(7) | BIT(9) },
                { "platform-code,boot-loader-code", BIT(0) | BIT(4) },
                { "7+secure-boot-policy", BIT(7) },
        };
        uint32_t m;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                m = 0xdeadbeef;
                if (pcr_mask_from_string(good[i].s, &m) != 0 || m != good[i].mask) {
                        fprintf(stderr, "\"%s\" → %#x, expected %#x\n", good[i].s, m, good[i].mask);
                        abort();
                }
        }
}

static void test_mask_names(void) {
        /* systemd's names for PCRs. */
        static const struct {
                const char *name;
                unsigned index;
        } names[] = {
                { "platform-code", 0 },       { "platform-config", 1 },     { "external-code", 2 },
                { "external-config", 3 },     { "boot-loader-code", 4 },    { "boot-loader-config", 5 },
                { "host-platform", 6 },       { "secure-boot-policy", 7 },  { "kernel-initrd", 9 },
                { "ima", 10 },                { "kernel-boot", 11 },        { "kernel-config", 12 },
                { "sysexts", 13 },            { "shim-policy", 14 },        { "system-identity", 15 },
                { "debug", 16 },              { "application-support", 23 },
        };
        uint32_t m;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ASSERT_EQ(pcr_mask_from_string(names[i].name, &m), 0);
                ASSERT_EQ(m, BIT(names[i].index));
        }
}

static void test_mask_rejects(void) {
        static const char *const bad[] = {
                "24", "-1", "7++", "7++9", "+7", "+", ",", "+,", "garbage", "7;9", "0x7", "7 9", " 7", "7 ",
                "99999999999999999999", "100", "007", "1e1", "7.0", "secure-boot", "Secure-Boot-Policy",
                "kernel-initrd+", /* fine */
        };
        uint32_t m = 42;

        /* The last entry is valid: it proves the loop does not pass by accident. */
        for (size_t i = 0; i + 1 < ELEMENTSOF(bad); i++) {
                if (pcr_mask_from_string(bad[i], &m) != -EINVAL) {
                        fprintf(stderr, "\"%s\" was accepted\n", bad[i]);
                        abort();
                }
                ASSERT_EQ(m, 42);       /* untouched on failure */
        }
        ASSERT_EQ(pcr_mask_from_string(bad[ELEMENTSOF(bad) - 1], &m), 0);
        ASSERT_EQ(m, BIT(9));
        ASSERT_EQ(pcr_mask_from_string(NULL, &m), -EINVAL);
}

static void test_mask_format(void) {
        char *s;
        uint32_t m;

        s = pcr_mask_to_string(BIT(0) | BIT(7) | BIT(23));
        ASSERT_STREQ(s, "0+7+23");
        free(s);
        s = pcr_mask_to_string(0);
        ASSERT_STREQ(s, "");
        free(s);
        s = pcr_mask_to_string(0xFFFFFF);
        ASSERT_STREQ(s, "0+1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16+17+18+19+20+21+22+23");
        ASSERT_EQ(pcr_mask_from_string(s, &m), 0);
        ASSERT_EQ(m, 0xFFFFFF);
        free(s);
        s = pcr_mask_to_string(BIT(4) | BIT(30));       /* bits ≥ 24 are not PCRs */
        ASSERT_STREQ(s, "4");
        free(s);

        ASSERT_EQ(pcr_mask_count(0), 0);
        ASSERT_EQ(pcr_mask_count(BIT(4) | BIT(9) | BIT(30)), 2);
        ASSERT_EQ(pcr_mask_count(0xFFFFFFFF), 24);
}

static void test_banks(void) {
        uint16_t b = 0;

        ASSERT_EQ(pcr_bank_from_string("sha1", &b), 0);
        ASSERT_EQ(b, PCR_BANK_SHA1);
        ASSERT_EQ(pcr_bank_from_string("sha256", &b), 0);
        ASSERT_EQ(b, PCR_BANK_SHA256);
        ASSERT_EQ(pcr_bank_from_string("sha384", &b), 0);
        ASSERT_EQ(b, PCR_BANK_SHA384);
        ASSERT_EQ(pcr_bank_from_string("sha512", &b), 0);
        ASSERT_EQ(b, PCR_BANK_SHA512);
        ASSERT_EQ(pcr_bank_from_string("SHA256", &b), 0);        /* as systemd: any case */
        ASSERT_EQ(b, PCR_BANK_SHA256);
        b = 7;
        ASSERT_EQ(pcr_bank_from_string("md5", &b), -EOPNOTSUPP);
        ASSERT_EQ(pcr_bank_from_string("sm3_256", &b), -EOPNOTSUPP);
        ASSERT_EQ(pcr_bank_from_string("", &b), -EOPNOTSUPP);
        ASSERT_EQ(pcr_bank_from_string("sha2567", &b), -EOPNOTSUPP);
        ASSERT_EQ(b, 7);

        ASSERT_STREQ(pcr_bank_to_string(PCR_BANK_SHA1), "sha1");
        ASSERT_STREQ(pcr_bank_to_string(PCR_BANK_SHA256), "sha256");
        ASSERT_STREQ(pcr_bank_to_string(PCR_BANK_SHA384), "sha384");
        ASSERT_STREQ(pcr_bank_to_string(PCR_BANK_SHA512), "sha512");
        ASSERT(pcr_bank_to_string(0) == NULL);
        ASSERT(pcr_bank_to_string(0x0012) == NULL);     /* TPM2_ALG_SM3_256 */

        ASSERT_EQ(pcr_bank_digest_size(PCR_BANK_SHA1), 20);
        ASSERT_EQ(pcr_bank_digest_size(PCR_BANK_SHA256), 32);
        ASSERT_EQ(pcr_bank_digest_size(PCR_BANK_SHA384), 48);
        ASSERT_EQ(pcr_bank_digest_size(PCR_BANK_SHA512), 64);
        ASSERT_EQ(pcr_bank_digest_size(0), 0);
}

static void test_selection_marshal(void) {
        uint8_t b[10];

        pcr_selection_marshal(PCR_BANK_SHA256, BIT(0) | BIT(7) | BIT(9) | BIT(23), b);
        ASSERT(memcmp(b, "\x00\x00\x00\x01\x00\x0b\x03\x81\x02\x80", 10) == 0);
        pcr_selection_marshal(PCR_BANK_SHA1, 0, b);
        ASSERT(memcmp(b, "\x00\x00\x00\x01\x00\x04\x03\x00\x00\x00", 10) == 0);
        pcr_selection_marshal(PCR_BANK_SHA512, BIT(4) | BIT(11) | BIT(16), b);
        ASSERT(memcmp(b, "\x00\x00\x00\x01\x00\x0d\x03\x10\x08\x01", 10) == 0);
}

/* Digests worked out independently (Python's hashlib over the same byte
 * strings) and, for the v252 token, by the TPM that sealed it. */
static void test_digest_vectors(void) {
        uint8_t d[SHA256_DIGEST_SIZE], zeros[64] = {}, v[40];
        char h[2 * SHA256_DIGEST_SIZE + 1];

        /* PCR 0+7 of sha256 all zero: the policy of test-token's v252
         * token, sealed on a fresh swtpm. */
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(0) | BIT(7), zeros, 64, false, d), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "02e3642b3e29eeccfffd8031c00a6f0a0febe5ceea2f6ef6b0322fe81598cf31");
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(0) | BIT(7), zeros, 64, true, d), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "a459f3351d48706d42b6a920938f56e28b7356602a02784cf0f37b6f5aeb068c");

        /* Empty selection: no PolicyPCR at all (systemd's empty-PCR tokens
         * carry an all-zero policy hash); policy_digest_pcr() itself still
         * hashes an empty selection. */
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, 0, NULL, 0, false, d), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "0000000000000000000000000000000000000000000000000000000000000000");
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, 0, NULL, 0, true, d), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e");
        memset(d, 0, sizeof(d));
        ASSERT_EQ(policy_digest_pcr(d, PCR_BANK_SHA256, 0, NULL, 0), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "7df052f36836e42176aaa0b800a56ef35ed728f46c6cb4cc83d56059490ba361");

        /* sha1 bank, PCR 4 = 11…, PCR 9 = 22… */
        memset(v, 0x11, 20);
        memset(v + 20, 0x22, 20);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA1, BIT(4) | BIT(9), v, 40, false, d), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "d20dc82f88bc87377ca7d3ff6965ead4cc2480d9da9c842db39f184fb1c8b03f");

        /* PolicyAuthValue alone, from the all-zero start. */
        memset(d, 0, sizeof(d));
        policy_digest_auth_value(d);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e");
}

/* PolicyAuthorize: the policy of a systemd 257 signed-policy token
 * (--tpm2-public-key of an RSA-2048 key, --tpm2-pcrs=7 on a fresh swtpm),
 * from the name of its key; and the reset of the digest so far. */
static void test_digest_authorize(void) {
        static const uint8_t name[34] = {
                0x00, 0x0b, 0x15, 0xea, 0x36, 0x04, 0xf5, 0x9f, 0xd7, 0xb3, 0x87, 0xf1, 0x3a, 0xc3, 0xf6, 0xce, 0x63,
                0x03, 0x70, 0xfa, 0xb3, 0x70, 0xc9, 0x66, 0x74, 0x22, 0xf7, 0x18, 0x95, 0x1a, 0xf0, 0x54, 0x8f, 0x78,
        };
        uint8_t d[SHA256_DIGEST_SIZE], e[SHA256_DIGEST_SIZE], zeros[32] = {};
        char h[2 * SHA256_DIGEST_SIZE + 1];

        memset(d, 0xAA, sizeof(d));
        ASSERT_EQ(policy_digest_authorize(d, name, sizeof(name)), 0);
        memset(e, 0, sizeof(e));
        ASSERT_EQ(policy_digest_authorize(e, name, sizeof(name)), 0);
        ASSERT(memcmp(d, e, sizeof(d)) == 0);
        ASSERT_EQ(policy_digest_pcr(d, PCR_BANK_SHA256, BIT(7), zeros, 32), 0);
        hex(d, sizeof(d), h);
        ASSERT_STREQ(h, "09462e8135e76e7f8a11b5023a772f4e35163593b7994da7e7eaddfd758d5831");
        ASSERT_EQ(policy_digest_authorize(d, name, 0), -EINVAL);
        ASSERT_EQ(policy_digest_authorize(d, NULL, 34), -EINVAL);
}

static void test_digest_chain(void) {
        uint8_t a[SHA256_DIGEST_SIZE] = {}, b[SHA256_DIGEST_SIZE], v[64] = { 1 };

        /* compute() = policy_digest_pcr() then policy_digest_auth_value(). */
        ASSERT_EQ(policy_digest_pcr(a, PCR_BANK_SHA256, BIT(7) | BIT(9), v, 64), 0);
        policy_digest_auth_value(a);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(7) | BIT(9), v, 64, true, b), 0);
        ASSERT(memcmp(a, b, sizeof(a)) == 0);

        /* The values matter, and so does their order. */
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(7) | BIT(9), v, 64, false, a), 0);
        v[32] = 1;
        v[0] = 0;
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(7) | BIT(9), v, 64, false, b), 0);
        ASSERT(memcmp(a, b, sizeof(a)) != 0);
}

static void test_digest_rejects(void) {
        uint8_t d[SHA256_DIGEST_SIZE], v[64] = {};

        memset(d, 0xAA, sizeof(d));
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(7), v, 31, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(7), v, 64, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(7), NULL, 32, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, BIT(24), v, 32, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, 0, v, 32, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(0x1234, BIT(7), v, 32, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(0, 0, NULL, 0, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_pcr(d, PCR_BANK_SHA1, BIT(7), v, 32), -EINVAL);
        for (size_t i = 0; i < sizeof(d); i++)
                ASSERT_EQ(d[i], 0xAA);  /* untouched on failure */
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA1, BIT(7), v, 20, false, d), 0);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA512, BIT(7), v, 64, false, d), 0);
}

int main(void) {
        TEST(test_mask_parse);
        TEST(test_mask_names);
        TEST(test_mask_rejects);
        TEST(test_mask_format);
        TEST(test_banks);
        TEST(test_selection_marshal);
        TEST(test_digest_vectors);
        TEST(test_digest_authorize);
        TEST(test_digest_chain);
        TEST(test_digest_rejects);
        return 0;
}
