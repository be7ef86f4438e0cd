/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "macro.h"
#include "secret.h"

/* Both decoders validate the whole input before they allocate anything, so
 * a reject never leaves a half-decoded copy (of a possible secret) behind,
 * and the output buffer has exactly the decoded size (secret_size() of a
 * secure result is the real length). */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* n bytes plus a NUL after them. */
static void *out_alloc(size_t n, bool secure) {
        char *p;

        if (secure)
                return secret_alloc(n);
        if (n == SIZE_MAX)
                return NULL;
        p = malloc(n + 1);
        if (p)
                p[n] = 0;
        return p;
}

int base64_encode(const void *p, size_t n, bool secure, char **ret) {
        const uint8_t *in = p;
        size_t len, k = 0, i;
        uint32_t v = 0;
        char *out;

        if (!ret || (!p && n > 0))
                return -EINVAL;
        /* The result length must fit the int we return. */
        if (n > (size_t) INT_MAX / 4 * 3)
                return -ENOMEM;
        len = (n + 2) / 3 * 4;

        out = out_alloc(len, secure);
        if (!out)
                return -ENOMEM;

        for (i = 0; i + 3 <= n; i += 3) {
                v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
                out[k++] = b64_alphabet[v >> 18];
                out[k++] = b64_alphabet[(v >> 12) & 63];
                out[k++] = b64_alphabet[(v >> 6) & 63];
                out[k++] = b64_alphabet[v & 63];
        }
        if (n - i == 1) {
                v = (uint32_t) in[i] << 16;
                out[k++] = b64_alphabet[v >> 18];
                out[k++] = b64_alphabet[(v >> 12) & 63];
                out[k++] = '=';
                out[k++] = '=';
        } else if (n - i == 2) {
                v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
                out[k++] = b64_alphabet[v >> 18];
                out[k++] = b64_alphabet[(v >> 12) & 63];
                out[k++] = b64_alphabet[(v >> 6) & 63];
                out[k++] = '=';
        }
        explicit_bzero(&v, sizeof(v));
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

static bool is_b64_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int base64_decode(const char *s, size_t len, bool secure, void **ret, size_t *ret_size) {
        size_t data = 0, pad = 0, size, k = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        int last = 0;
        uint8_t *out;

        if (!s || !ret || !ret_size)
                return -EINVAL;
        if (len == SIZE_MAX)
                len = strlen(s);

        /* Pass 1: syntax. Data characters, then at most two '=', nothing
         * but white space after the first '='; a multiple of 4 in all. */
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (is_b64_space(c))
                        continue;
                if (c == '=') {
                        pad++;
                        continue;
                }
                if (pad > 0)
                        return -EINVAL;         /* data after padding */
                last = b64_value(c);
                if (last < 0)
                        return -EINVAL;
                data++;
        }
        if (pad > 2 || (data + pad) % 4 != 0)
                return -EINVAL;
        /* Canonical form only: the bits that padding cuts off must be zero
         * ("Zh==" is not another spelling of "Zg=="). */
        if ((pad == 2 && (last & 0x0F)) || (pad == 1 && (last & 0x03)))
                return -EINVAL;

        size = data / 4 * 3 + (data % 4 == 0 ? 0 : data % 4 - 1);
        out = out_alloc(size, secure);
        if (!out)
                return -ENOMEM;

        /* Pass 2: decode; the input is known to be well-formed. */
        for (size_t i = 0; i < len && k < size; i++) {
                int v = b64_value(s[i]);

                if (v < 0)
                        continue;               /* white space */
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[k++] = (uint8_t) (acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        explicit_bzero(&acc, sizeof(acc));

        *ret = out;
        *ret_size = size;
        return 0;
}

int hex_encode(const void *p, size_t n, char **ret) {
        static const char digits[] = "0123456789abcdef";
        const uint8_t *in = p;
        char *out;

        if (!ret || (!p && n > 0))
                return -EINVAL;
        if (n > (size_t) INT_MAX / 2)
                return -ENOMEM;
        out = malloc(n * 2 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
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

        if (!s || !ret || !ret_size)
                return -EINVAL;
        if (len == SIZE_MAX)
                len = strlen(s);
        if (len % 2 != 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++)
                if (hex_value(s[i]) < 0)
                        return -EINVAL;

        out = malloc(len / 2 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 2)
                out[i / 2] = (uint8_t) (hex_value(s[i]) << 4 | hex_value(s[i + 1]));
        out[len / 2] = 0;
        *ret = out;
        *ret_size = len / 2;
        return 0;
}
