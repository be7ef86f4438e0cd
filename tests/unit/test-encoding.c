/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "encoding.h"
#include "secret.h"
#include "tests.h"

static void test_base64_vectors(void) {
        /* RFC 4648 section 10. */
        static const char *const v[][2] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                char *e = NULL;
                void *d = NULL;
                size_t n;

                ASSERT_EQ(base64_encode(v[i][0], strlen(v[i][0]), i % 2, &e), strlen(v[i][1]));
                ASSERT_STREQ(e, v[i][1]);
                ASSERT_EQ(base64_decode(v[i][1], SIZE_MAX, i % 2, &d, &n), 0);
                ASSERT_EQ(n, strlen(v[i][0]));
                ASSERT(memcmp(d, v[i][0], n) == 0);
                if (i % 2) {
                        secret_free(e);
                        secret_free(d);
                } else {
                        free(e);
                        free(d);
                }
        }
}

static void test_base64_roundtrip_binary(void) {
        uint8_t buf[256];
        char *e = NULL;
        void *d = NULL;
        size_t n;

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t) (i * 7 + 3);
        for (size_t len = 0; len <= sizeof(buf); len += 17) {
                ASSERT(base64_encode(buf, len, false, &e) >= 0);
                ASSERT_EQ(base64_decode(e, SIZE_MAX, false, &d, &n), 0);
                ASSERT_EQ(n, len);
                ASSERT(memcmp(d, buf, len) == 0);
                free(e);
                free(d);
        }
}

static void test_base64_whitespace(void) {
        void *d = NULL;
        size_t n;

        ASSERT_EQ(base64_decode(" Zm9v\nYmFy\r\n", SIZE_MAX, false, &d, &n), 0);
        ASSERT_EQ(n, 6);
        ASSERT(memcmp(d, "foobar", 6) == 0);
        free(d);
}

static void test_base64_rejects(void) {
        static const char *const bad[] = {
                "Zg=", "Zg", "Z", "Zm9v!", "Zg==Zg==", "Zm9=v", "Zh==", "Zm9vYmE==", "====", "Zg===", "\x80\x81",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                void *d = NULL;
                size_t n = 0;
                ASSERT_EQ(base64_decode(bad[i], SIZE_MAX, false, &d, &n), -EINVAL);
                ASSERT(d == NULL);
        }
        /* len bounds the read: a valid prefix is decoded, nothing past it. */
        {
                void *d = NULL;
                size_t n;
                ASSERT_EQ(base64_decode("Zm9v!!!!", 4, false, &d, &n), 0);
                ASSERT_EQ(n, 3);
                free(d);
        }
}

static void test_hex(void) {
        char *e = NULL;
        void *d = NULL;
        size_t n;

        ASSERT_EQ(hex_encode("\x00\xab\xff", 3, &e), 6);
        ASSERT_STREQ(e, "00abff");
        ASSERT_EQ(hex_decode("00ABff", SIZE_MAX, &d, &n), 0);
        ASSERT_EQ(n, 3);
        ASSERT(memcmp(d, "\x00\xab\xff", 3) == 0);
        free(e);
        free(d);
        ASSERT_EQ(hex_decode("abc", SIZE_MAX, &d, &n), -EINVAL);
        ASSERT_EQ(hex_decode("zz", SIZE_MAX, &d, &n), -EINVAL);
        ASSERT_EQ(hex_decode("0x00", SIZE_MAX, &d, &n), -EINVAL);
}

int main(void) {
        TEST(test_base64_vectors);
        TEST(test_base64_roundtrip_binary);
        TEST(test_base64_whitespace);
        TEST(test_base64_rejects);
        TEST(test_hex);
        return 0;
}
