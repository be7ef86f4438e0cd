/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "macro.h"
#include "secret.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void *alloc(size_t n, bool secure) {
        return secure ? secret_alloc(n) : calloc(1, n + 1);
}

static void dealloc(void *p, size_t n, bool secure) {
        if (secure)
                secret_free(p);
        else
                erase_and_free(p, n);
}

int base64_encode(const void *p, size_t n, bool secure, char **ret) {
        const uint8_t *s = p;
        size_t len, k = 0;
        char *out;

        if (n > (SIZE_MAX / 4) * 3 - 3)
                return -ENOMEM;
        len = (n + 2) / 3 * 4;
        out = alloc(len, secure);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) s[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t) s[i + 1] << 8;
                if (i + 2 < n)
                        v |= s[i + 2];
                out[k++] = b64_alphabet[(v >> 18) & 63];
                out[k++] = b64_alphabet[(v >> 12) & 63];
                out[k++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
                out[k++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
        }
        out[k] = 0;
        *ret = out;
        return (int) k;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *s, size_t len, bool secure, void **ret, size_t *ret_size) {
        uint8_t *out;
        uint32_t acc = 0;
        size_t n = 0, chars = 0, pad = 0;

        if (len == SIZE_MAX)
                len = strlen(s);
        out = alloc(len / 4 * 3 + 3, secure);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                int v;

                if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                        continue;
                if (c == '=') {
                        pad++;
                        chars++;
                        continue;
                }
                if (pad > 0)
                        goto fail;              /* data after padding */
                v = b64_value(c);
                if (v < 0)
                        goto fail;
                acc = (acc << 6) | (uint32_t) v;
                chars++;
                if (chars % 4 == 0) {
                        out[n++] = (uint8_t) (acc >> 16);
                        out[n++] = (uint8_t) (acc >> 8);
                        out[n++] = (uint8_t) acc;
                        acc = 0;
                }
        }
        if (chars % 4 != 0 || pad > 2)
                goto fail;
        if (pad > 0) {
                /* The last group: 4 chars with pad '=' at the end. */
                size_t data = 4 - pad;
                acc <<= 6 * pad;
                out[n++] = (uint8_t) (acc >> 16);
                if (data == 3)
                        out[n++] = (uint8_t) (acc >> 8);
                /* Non-zero bits in the padding are not canonical. */
                if ((data == 2 && (acc & 0xFFFF)) || (data == 3 && (acc & 0xFF)))
                        goto fail;
        }
        out[n] = 0;
        *ret = out;
        *ret_size = n;
        return 0;
fail:
        dealloc(out, len / 4 * 3 + 3, secure);
        return -EINVAL;
}

int hex_encode(const void *p, size_t n, char **ret) {
        static const char digits[] = "0123456789abcdef";
        const uint8_t *s = p;
        char *out;

        if (n > SIZE_MAX / 2 - 1)
                return -ENOMEM;
        out = malloc(n * 2 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[s[i] >> 4];
                out[2 * i + 1] = digits[s[i] & 15];
        }
        out[n * 2] = 0;
        *ret = out;
        return (int) (n * 2);
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *s, size_t len, void **ret, size_t *ret_size) {
        uint8_t *out;

        if (len == SIZE_MAX)
                len = strlen(s);
        if (len % 2 != 0)
                return -EINVAL;
        out = malloc(len / 2 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 2) {
                int a = hex_value(s[i]), b = hex_value(s[i + 1]);
                if (a < 0 || b < 0) {
                        free(out);
                        return -EINVAL;
                }
                out[i / 2] = (uint8_t) (a << 4 | b);
        }
        out[len / 2] = 0;
        *ret = out;
        *ret_size = len / 2;
        return 0;
}
