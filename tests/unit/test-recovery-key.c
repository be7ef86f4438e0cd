/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>

#include "macro.h"
#include "recovery-key.h"
#include "secret.h"
#include "tests.h"

/* Bytes 00 01 … 1f in the systemd form, worked out by hand: each byte is two
 * modhex digits, high nibble first (c=0 b=1 d=2 e=3 f=4 g=5 h=6 i=7 j=8 k=9
 * l=a n=b r=c t=d u=e v=f), a dash after every 4 bytes (8 characters). */
static const char vector[] =
        "cccbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv";

static void test_format_vector(void) {
        uint8_t key[RECOVERY_KEY_BYTES];
        char *s = NULL;

        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t) i;
        ASSERT_EQ(recovery_key_format(key, &s), 0);
        ASSERT_STREQ(s, vector);
        ASSERT_EQ(strlen(s), RECOVERY_KEY_FORMATTED_LEN);
        secret_free(s);

        /* All ones and all zeros. */
        memset(key, 0xFF, sizeof(key));
        ASSERT_EQ(recovery_key_format(key, &s), 0);
        ASSERT_STREQ(s, "vvvvvvvv-vvvvvvvv-vvvvvvvv-vvvvvvvv-vvvvvvvv-vvvvvvvv-vvvvvvvv-vvvvvvvv");
        secret_free(s);
        memset(key, 0, sizeof(key));
        ASSERT_EQ(recovery_key_format(key, &s), 0);
        ASSERT_STREQ(s, "cccccccc-cccccccc-cccccccc-cccccccc-cccccccc-cccccccc-cccccccc-cccccccc");
        secret_free(s);
}

static void test_generate(void) {
        char *a = NULL, *b = NULL, *n = NULL;

        ASSERT_EQ(recovery_key_generate(&a), 0);
        ASSERT_EQ(recovery_key_generate(&b), 0);
        ASSERT_EQ(strlen(a), RECOVERY_KEY_FORMATTED_LEN);
        ASSERT_EQ(secret_size(a), RECOVERY_KEY_FORMATTED_LEN);
        ASSERT(strcmp(a, b) != 0);
        for (size_t i = 0; i < RECOVERY_KEY_FORMATTED_LEN; i++)
                ASSERT(i % 9 == 8 ? a[i] == '-' : strchr("cbdefghijklnrtuv", a[i]) != NULL);
        ASSERT_EQ(recovery_key_normalize(a, &n), 0);
        ASSERT_STREQ(n, a);
        secret_free(a);
        secret_free(b);
        secret_free(n);
}

static void test_normalize_forms(void) {
        char upper[sizeof(vector)], nodash[80] = "", spaced[200] = "", odd_dashes[200] = "";
        size_t k;
        char *s = NULL;

        for (size_t i = 0; i < sizeof(vector); i++)
                upper[i] = (char) toupper((unsigned char) vector[i]);
        k = 0;
        for (size_t i = 0; vector[i]; i++)
                if (vector[i] != '-')
                        nodash[k++] = vector[i];
        /* Spaces and tabs everywhere, including around the dashes. */
        k = 0;
        spaced[k++] = ' ';
        for (size_t i = 0; vector[i]; i++) {
                spaced[k++] = vector[i];
                if (i % 5 == 0)
                        spaced[k++] = i % 2 ? '\t' : ' ';
        }
        spaced[k++] = '\t';
        /* Dashes in the wrong places (groups of 4 instead of 8). */
        k = 0;
        for (size_t i = 0; nodash[i]; i++) {
                if (i > 0 && i % 4 == 0)
                        odd_dashes[k++] = '-';
                odd_dashes[k++] = (char) (i % 3 ? toupper((unsigned char) nodash[i]) : nodash[i]);
        }

        const char *forms[] = { vector, upper, nodash, spaced, odd_dashes, "-cccbcdce-cfcgchcicjckclcncrctcucvbcbbbdbebfbgbhbibjbkblbnbrbtbubv--" };
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                if (recovery_key_normalize(forms[i], &s) != 0) {
                        fprintf(stderr, "rejected \"%s\"\n", forms[i]);
                        abort();
                }
                ASSERT_STREQ(s, vector);
                secret_free(s);
        }
}

static void test_normalize_rejects(void) {
        char longer[100], shorter[100], *s = NULL;

        snprintf(longer, sizeof(longer), "%sc", vector);
        snprintf(shorter, sizeof(shorter), "%.70s", vector);
        const char *bad[] = {
                "",
                "   ",
                "--------",
                "cccbcdce",
                longer,                 /* 65 modhex characters */
                shorter,                /* 63 */
                vector + 1,
                /* 'a' and 'o' and digits are not modhex. */
                "accbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv",
                "cccbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubo",
                "0ccbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv",
                /* Other separators are not typing aids. */
                "cccbcdce_cfcgchci_cjckclcn_crctcucv_bcbbbdbe_bfbgbhbi_bjbkblbn_brbtbubv",
                "cccbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv\n",
                "correct horse battery staple",
                "00001-65535-00256-00000-00000-00000-00000-00002",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (recovery_key_normalize(bad[i], &s) != -EINVAL) {
                        fprintf(stderr, "accepted \"%s\"\n", bad[i]);
                        abort();
                }
                ASSERT(s == NULL);
        }
        ASSERT_EQ(recovery_key_normalize(NULL, &s), -EINVAL);
}

static void test_secboot_vectors(void) {
        uint8_t out[SECBOOT_RECOVERY_KEY_BYTES];
        char s[48];

        /* Little-endian uint16 per group: 00001 → 01 00; 65535 → ff ff; 00256 → 00 01. */
        static const uint8_t expect[16] = { 0x01, 0x00, 0xff, 0xff, 0x00, 0x01, 0x00, 0x00,
                                            0x39, 0x30, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00 };
        const char *forms[] = {
                "00001-65535-00256-00000-12345-00000-00000-00002",
                "00001 65535 00256 00000 12345 00000 00000 00002",
                "0000165535002560000012345000000000000002",
                " 00001-65535 00256000001234500000-00000 00002\t",
                "000 01-655 35-00256-00000-12345-00000-00000-00002",
        };
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                memset(out, 0xAA, sizeof(out));
                if (recovery_key_parse_secboot(forms[i], out) != 0) {
                        fprintf(stderr, "rejected \"%s\"\n", forms[i]);
                        abort();
                }
                ASSERT(memcmp(out, expect, sizeof(expect)) == 0);
        }
        recovery_key_format_secboot(expect, s);
        ASSERT_STREQ(s, "00001-65535-00256-00000-12345-00000-00000-00002");
}

static void test_secboot_roundtrip(void) {
        uint8_t key[SECBOOT_RECOVERY_KEY_BYTES], out[SECBOOT_RECOVERY_KEY_BYTES];
        uint32_t x = 2463534242u;
        char s[48];

        for (int round = 0; round < 1000; round++) {
                for (size_t i = 0; i < sizeof(key); i++) {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        key[i] = (uint8_t) x;
                }
                recovery_key_format_secboot(key, s);
                ASSERT_EQ(strlen(s), 47);
                ASSERT_EQ(recovery_key_parse_secboot(s, out), 0);
                ASSERT(memcmp(key, out, sizeof(key)) == 0);
        }
}

static void test_secboot_rejects(void) {
        static const char *const bad[] = {
                "",
                "65536-00000-00000-00000-00000-00000-00000-00000",      /* > 65535 */
                "00000-00000-00000-00000-00000-00000-00000-99999",
                "00000-00000-00000-00000-00000-00000-00000",            /* 7 groups */
                "00000-00000-00000-00000-00000-00000-00000-00000-00000",/* 9 groups */
                "00000000000000000000000000000000000000000",         /* 41 digits */
                "000000000000000000000000000000000000000",              /* 39 digits */
                "0000a-00000-00000-00000-00000-00000-00000-00000",      /* letters */
                "ABCDE-00000-00000-00000-00000-00000-00000-00000",
                "00000--00000-00000-00000-00000-00000-00000-00000",     /* double dash */
                "000-00000000-00000-00000-00000-00000-00000-00000",     /* dash inside a group */
                "-00000-00000-00000-00000-00000-00000-00000-00000",     /* leading dash */
                "00000-00000-00000-00000-00000-00000-00000-00000-",     /* trailing dash */
                "00000_00000_00000_00000_00000_00000_00000_00000",
                "00000-00000-00000-00000-00000-00000-00000-0000\n",
                "+0000-00000-00000-00000-00000-00000-00000-00000",
                "cccbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv",
        };
        uint8_t out[SECBOOT_RECOVERY_KEY_BYTES];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(out, 0xAA, sizeof(out));
                if (recovery_key_parse_secboot(bad[i], out) != -EINVAL) {
                        fprintf(stderr, "accepted \"%s\"\n", bad[i]);
                        abort();
                }
                for (size_t j = 0; j < sizeof(out); j++)
                        ASSERT_EQ(out[j], 0xAA);        /* untouched on failure */
        }
}

int main(void) {
        TEST(test_format_vector);
        TEST(test_generate);
        TEST(test_normalize_forms);
        TEST(test_normalize_rejects);
        TEST(test_secboot_vectors);
        TEST(test_secboot_roundtrip);
        TEST(test_secboot_rejects);
        return 0;
}
