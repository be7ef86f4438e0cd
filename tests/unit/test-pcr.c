/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pcr.h"
#include "tests.h"

static void test_mask_parse(void) {
        uint32_t m = 0;

        ASSERT_EQ(pcr_mask_from_string("0+7", &m), 0);
        ASSERT_EQ(m, (1u << 0) | (1u << 7));
        ASSERT_EQ(pcr_mask_from_string("7,9", &m), 0);
        ASSERT_EQ(m, (1u << 7) | (1u << 9));
        ASSERT_EQ(pcr_mask_from_string("4+9+", &m), 0);
        ASSERT_EQ(m, (1u << 4) | (1u << 9));
        ASSERT_EQ(pcr_mask_from_string("", &m), 0);
        ASSERT_EQ(m, 0);
        ASSERT_EQ(pcr_mask_from_string("7+7", &m), 0);
        ASSERT_EQ(m, 1u << 7);
        ASSERT_EQ(pcr_mask_from_string("23", &m), 0);
        ASSERT_EQ(m, 1u << 23);
        ASSERT_EQ(pcr_mask_from_string("secure-boot-policy+kernel-initrd", &m), 0);
        ASSERT_EQ(m, (1u << 7) | (1u << 9));
        ASSERT_EQ(pcr_mask_from_string("platform-code,boot-loader-code", &m), 0);
        ASSERT_EQ(m, (1u << 0) | (1u << 4));

        m = 42;
        static const char *const bad[] = { "24", "-1", "7++9", "+7", "garbage", "7;9", "0x7", "99999999999999999999", "7 9" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ASSERT_EQ(pcr_mask_from_string(bad[i], &m), -EINVAL);
        ASSERT_EQ(m, 42); /* untouched on failure */
}

static void test_mask_format(void) {
        char *s;

        s = pcr_mask_to_string((1u << 0) | (1u << 7) | (1u << 23));
        ASSERT_STREQ(s, "0+7+23");
        free(s);
        s = pcr_mask_to_string(0);
        ASSERT_STREQ(s, "");
        free(s);
        ASSERT_EQ(pcr_mask_count((1u << 4) | (1u << 9) | (1u << 30)), 2); /* bits ≥ 24 ignored */
}

static void test_banks(void) {
        uint16_t b;

        ASSERT_EQ(pcr_bank_from_string("sha256", &b), 0);
        ASSERT_EQ(b, PCR_BANK_SHA256);
        ASSERT_EQ(pcr_bank_from_string("sha1", &b), 0);
        ASSERT_EQ(b, PCR_BANK_SHA1);
        ASSERT_EQ(pcr_bank_from_string("md5", &b), -EOPNOTSUPP);
        ASSERT_STREQ(pcr_bank_to_string(PCR_BANK_SHA384), "sha384");
        ASSERT(pcr_bank_to_string(0x1234) == NULL);
        ASSERT_EQ(pcr_bank_digest_size(PCR_BANK_SHA1), 20);
        ASSERT_EQ(pcr_bank_digest_size(PCR_BANK_SHA512), 64);
        ASSERT_EQ(pcr_bank_digest_size(0), 0);
}

static void test_selection_marshal(void) {
        uint8_t b[10];

        pcr_selection_marshal(PCR_BANK_SHA256, (1u << 0) | (1u << 7) | (1u << 9) | (1u << 23), b);
        ASSERT(memcmp(b, "\x00\x00\x00\x01\x00\x0b\x03\x81\x02\x80", 10) == 0);
}

static void test_digest_rejects(void) {
        uint8_t d[SHA256_DIGEST_SIZE] = {}, v[64] = {};

        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, 1u << 7, v, 31, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA256, 1u << 7, v, 64, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(0x1234, 1u << 7, v, 32, false, d), -EINVAL);
        ASSERT_EQ(policy_digest_compute(PCR_BANK_SHA1, 1u << 7, v, 20, false, d), 0);
}

int main(void) {
        TEST(test_mask_parse);
        TEST(test_mask_format);
        TEST(test_banks);
        TEST(test_selection_marshal);
        TEST(test_digest_rejects);
        return 0;
}
