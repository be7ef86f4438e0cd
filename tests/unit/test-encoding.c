/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "encoding.h"
#include "macro.h"
#include "secret.h"
#include "tests.h"

static void free_either(void *p, bool secure) {
        if (secure)
                secret_free(p);
        else
                free(p);
}

static void test_base64_vectors(void) {
        /* RFC 4648 section 10. */
        static const char *const v[][2] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };

        for (int secure = 0; secure <= 1; secure++)
                for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                        char *e = NULL;
                        void *d = NULL;
                        size_t n = 99;

                        ASSERT_EQ(base64_encode(v[i][0], strlen(v[i][0]), secure, &e), strlen(v[i][1]));
                        ASSERT_STREQ(e, v[i][1]);
                        ASSERT_EQ(base64_decode(v[i][1], SIZE_MAX, secure, &d, &n), 0);
                        ASSERT_EQ(n, strlen(v[i][0]));
                        ASSERT(memcmp(d, v[i][0], n) == 0);
                        ASSERT_EQ(((char *) d)[n], 0);  /* NUL-terminated */
                        if (secure) {
                                ASSERT_EQ(secret_size(e), strlen(v[i][1]));
                                ASSERT_EQ(secret_size(d), n);
                        }
                        free_either(e, secure);
                        free_either(d, secure);
                }
}

static void test_base64_roundtrip_binary(void) {
        uint8_t buf[300];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t) (i * 7 + 3);
        for (size_t len = 0; len <= sizeof(buf); len++) {
                char *e = NULL;
                void *d = NULL;
                size_t n;
                bool secure = len % 2;

                ASSERT_EQ(base64_encode(buf, len, secure, &e), (len + 2) / 3 * 4);
                ASSERT_EQ(base64_decode(e, SIZE_MAX, secure, &d, &n), 0);
                ASSERT_EQ(n, len);
                ASSERT(memcmp(d, buf, len) == 0);
                free_either(e, secure);
                free_either(d, secure);
        }
        /* Every byte value, in every position of a 3-byte group. */
        {
                uint8_t all[258];
                char *e = NULL;
                void *d = NULL;
                size_t n;

                for (size_t i = 0; i < sizeof(all); i++)
                        all[i] = (uint8_t) i;
                for (size_t off = 0; off < 3; off++) {
                        ASSERT(base64_encode(all + off, 255, false, &e) > 0);
                        ASSERT_EQ(base64_decode(e, SIZE_MAX, false, &d, &n), 0);
                        ASSERT_EQ(n, 255);
                        ASSERT(memcmp(d, all + off, 255) == 0);
                        free(e);
                        free(d);
                }
        }
        /* NULL with nothing to encode is fine. */
        {
                char *e = NULL;
                ASSERT_EQ(base64_encode(NULL, 0, false, &e), 0);
                ASSERT_STREQ(e, "");
                free(e);
        }
}

static void test_base64_whitespace(void) {
        void *d = NULL;
        size_t n;

        ASSERT_EQ(base64_decode(" Zm9v\nYmFy\r\n", SIZE_MAX, false, &d, &n), 0);
        ASSERT_EQ(n, 6);
        ASSERT(memcmp(d, "foobar", 6) == 0);
        free(d);
        ASSERT_EQ(base64_decode("Zm9v\tYg= =\n", SIZE_MAX, false, &d, &n), 0);
        ASSERT_EQ(n, 4);
        ASSERT(memcmp(d, "foob", 4) == 0);
        free(d);
        ASSERT_EQ(base64_decode(" \n ", SIZE_MAX, false, &d, &n), 0);
        ASSERT_EQ(n, 0);
        free(d);
}

static void test_base64_rejects(void) {
        static const char *const bad[] = {
                "Zg=",          /* short padding */
                "Zg",           /* no padding */
                "Z",
                "Zm9",
                "Zm9v!",        /* bad characters */
                "Zm9v-_",       /* URL-safe alphabet */
                "Zm9v\x80\x81",
                "Zm9v\vYmFy",   /* vertical tab is not white space here */
                "Zg==Zg==",     /* data after padding */
                "Zm9=v",
                "=Zm9",
                "Zg===",        /* too much padding */
                "====",
                "Z===",
                "Zm9vYmE==",
                "Zh==",         /* non-canonical: padding bits set */
                "Zm9=",         /* "fo" is Zm8= */
        };

        for (int secure = 0; secure <= 1; secure++)
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        void *d = NULL;
                        size_t n = 42;

                        if (base64_decode(bad[i], SIZE_MAX, secure, &d, &n) != -EINVAL) {
                                fprintf(stderr, "accepted bad base64 \"%s\"\n", bad[i]);
                                abort();
                        }
                        ASSERT(d == NULL);      /* outputs untouched on failure */
                        ASSERT_EQ(n, 42);
                }

        /* A NUL inside the given length is a bad character, not an end. */
        {
                void *d = NULL;
                size_t n;
                ASSERT_EQ(base64_decode("Zm9v\0Zm9v", 9, false, &d, &n), -EINVAL);
        }
}

static void test_base64_bounds(void) {
        void *d = NULL;
        size_t n;
        char *s;

        /* len bounds the read: a valid prefix is decoded, nothing past it. */
        ASSERT_EQ(base64_decode("Zm9v!!!!", 4, false, &d, &n), 0);
        ASSERT_EQ(n, 3);
        free(d);

        /* A buffer without a terminating NUL: valgrind/ASan would see a read
         * past the end. */
        s = malloc(8);
        ASSERT(s);
        memcpy(s, "Zm9vYmFy", 8);
        ASSERT_EQ(base64_decode(s, 8, true, &d, &n), 0);
        ASSERT_EQ(n, 6);
        ASSERT(memcmp(d, "foobar", 6) == 0);
        secret_free(d);
        ASSERT_EQ(base64_decode(s, 7, false, &d, &n), -EINVAL);
        free(s);
}

static void test_hex(void) {
        /* RFC 4648 section 10, base16. */
        static const char *const v[][2] = {
                { "", "" }, { "f", "66" }, { "fo", "666f" }, { "foo", "666f6f" },
                { "foobar", "666f6f626172" },
        };
        char *e = NULL;
        void *d = NULL;
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                ASSERT_EQ(hex_encode(v[i][0], strlen(v[i][0]), &e), strlen(v[i][1]));
                ASSERT_STREQ(e, v[i][1]);
                free(e);
                ASSERT_EQ(hex_decode(v[i][1], SIZE_MAX, &d, &n), 0);
                ASSERT_EQ(n, strlen(v[i][0]));
                ASSERT(memcmp(d, v[i][0], n) == 0);
                free(d);
        }

        ASSERT_EQ(hex_encode("\x00\xab\xff", 3, &e), 6);
        ASSERT_STREQ(e, "00abff");
        free(e);
        ASSERT_EQ(hex_decode("00ABff", SIZE_MAX, &d, &n), 0);   /* either case */
        ASSERT_EQ(n, 3);
        ASSERT(memcmp(d, "\x00\xab\xff", 3) == 0);
        free(d);

        /* Bounded by len, no NUL needed. */
        {
                char *s = malloc(4);
                ASSERT(s);
                memcpy(s, "c0de", 4);
                ASSERT_EQ(hex_decode(s, 4, &d, &n), 0);
                ASSERT_EQ(n, 2);
                ASSERT(memcmp(d, "\xc0\xde", 2) == 0);
                free(d);
                ASSERT_EQ(hex_decode(s, 3, &d, &n), -EINVAL);
                free(s);
        }
}

static void test_hex_rejects(void) {
        static const char *const bad[] = { "abc", "0", "zz", "0x00", "00 11", "0g", "-1", "\xc3\xa9" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                void *d = NULL;
                size_t n = 42;

                if (hex_decode(bad[i], SIZE_MAX, &d, &n) != -EINVAL) {
                        fprintf(stderr, "accepted bad hex \"%s\"\n", bad[i]);
                        abort();
                }
                ASSERT(d == NULL);
                ASSERT_EQ(n, 42);
        }
        {
                void *d = NULL;
                size_t n;
                ASSERT_EQ(hex_decode("0\0" "11", 4, &d, &n), -EINVAL);
        }
}

int main(void) {
        TEST(test_base64_vectors);
        TEST(test_base64_roundtrip_binary);
        TEST(test_base64_whitespace);
        TEST(test_base64_rejects);
        TEST(test_base64_bounds);
        TEST(test_hex);
        TEST(test_hex_rejects);
        return 0;
}
