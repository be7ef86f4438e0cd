/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>

#include "recovery-key.h"
#include "secret.h"
#include "tests.h"

/* Bytes 00 01 … 1f in the systemd form, computed by hand: each byte is
 * two modhex digits (c=0 b=1 d=2 e=3 f=4 g=5 h=6 i=7 j=8 k=9 l=a n=b r=c
 * t=d u=e v=f), a dash after every 4 bytes. */
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
}

static void test_generate(void) {
        char *a = NULL, *b = NULL, *n = NULL;

        ASSERT_EQ(recovery_key_generate(&a), 0);
        ASSERT_EQ(recovery_key_generate(&b), 0);
        ASSERT_EQ(strlen(a), RECOVERY_KEY_FORMATTED_LEN);
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
        char upper[sizeof(vector)], nodash[80] = "", spaced[200] = "";
        size_t k = 0;
        char *s = NULL;

        for (size_t i = 0; i < sizeof(vector); i++)
                upper[i] = (char) toupper((unsigned char) vector[i]);
        for (size_t i = 0; vector[i]; i++)
                if (vector[i] != '-')
                        nodash[k++] = vector[i];
        k = 0;
        for (size_t i = 0; vector[i]; i++) {
                spaced[k++] = vector[i];
                if (i % 5 == 0)
                        spaced[k++] = ' ';
        }
        spaced[k++] = '\t';

        const char *forms[] = { vector, upper, nodash, spaced };
        for (size_t i = 0; i < 4; i++) {
                ASSERT_EQ(recovery_key_normalize(forms[i], &s), 0);
                ASSERT_STREQ(s, vector);
                secret_free(s);
        }
}

static void test_normalize_rejects(void) {
        char *s = NULL;
        char longer[100];

        snprintf(longer, sizeof(longer), "%sc", vector);
        ASSERT_EQ(recovery_key_normalize("", &s), -EINVAL);
        ASSERT_EQ(recovery_key_normalize("cccbcdce", &s), -EINVAL);
        ASSERT_EQ(recovery_key_normalize(longer, &s), -EINVAL);
        ASSERT_EQ(recovery_key_normalize(vector + 1, &s), -EINVAL);
        /* 'a' is not modhex. */
        ASSERT_EQ(recovery_key_normalize("accbcdce-cfcgchci-cjckclcn-crctcucv-bcbbbdbe-bfbgbhbi-bjbkblbn-brbtbubv", &s), -EINVAL);
        ASSERT_EQ(recovery_key_normalize("correct horse battery staple", &s), -EINVAL);
        ASSERT(s == NULL);
}

static void test_secboot(void) {
        uint8_t key[SECBOOT_RECOVERY_KEY_BYTES], out[SECBOOT_RECOVERY_KEY_BYTES];
        char s[48];

        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t) (0xF0 + i);
        recovery_key_format_secboot(key, s);
        ASSERT_EQ(strlen(s), 47);
        ASSERT_EQ(recovery_key_parse_secboot(s, out), 0);
        ASSERT(memcmp(key, out, sizeof(key)) == 0);

        /* Little-endian uint16 per group: 00001 → 01 00; 65535 → ff ff; 256 → 00 01. */
        ASSERT_EQ(recovery_key_parse_secboot("00001-65535-00256-00000-00000-00000-00000-00002", out), 0);
        ASSERT(memcmp(out, "\x01\x00\xff\xff\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00", 16) == 0);
        /* Without separators and with stray spaces. */
        ASSERT_EQ(recovery_key_parse_secboot(" 0000165535002560000000000000000000000002 ", out), 0);
        ASSERT(memcmp(out, "\x01\x00\xff\xff\x00\x01", 6) == 0);
        ASSERT_EQ(recovery_key_parse_secboot("00001 65535 00256 00000 00000 00000 00000 00002", out), 0);

        ASSERT_EQ(recovery_key_parse_secboot("65536-00000-00000-00000-00000-00000-00000-00000", out), -EINVAL);
        ASSERT_EQ(recovery_key_parse_secboot("00000-00000-00000-00000-00000-00000-00000", out), -EINVAL);
        ASSERT_EQ(recovery_key_parse_secboot("00000-00000-00000-00000-00000-00000-00000-00000-00000", out), -EINVAL);
        ASSERT_EQ(recovery_key_parse_secboot("0000a-00000-00000-00000-00000-00000-00000-00000", out), -EINVAL);
        ASSERT_EQ(recovery_key_parse_secboot("00000--00000-00000-00000-00000-00000-00000-00000", out), -EINVAL);
        ASSERT_EQ(recovery_key_parse_secboot("000-00000000-00000-00000-00000-00000-00000-00000", out), -EINVAL);
        ASSERT_EQ(recovery_key_parse_secboot("", out), -EINVAL);
}

int main(void) {
        TEST(test_format_vector);
        TEST(test_generate);
        TEST(test_normalize_forms);
        TEST(test_normalize_rejects);
        TEST(test_secboot);
        return 0;
}
