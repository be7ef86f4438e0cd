/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "recovery-key.h"
#include "secret.h"

/* Every buffer that holds key material, including loop accumulators, is
 * wiped before returning, on success and on failure alike. */

static const char modhex[] = "cbdefghijklnrtuv";

#define SECBOOT_GROUPS 8
#define SECBOOT_GROUP_DIGITS 5

int recovery_key_format(const uint8_t key[RECOVERY_KEY_BYTES], char **ret) {
        char *s;
        size_t j = 0;

        if (!key || !ret)
                return -EINVAL;
        s = secret_alloc(RECOVERY_KEY_FORMATTED_LEN);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < RECOVERY_KEY_BYTES; i++) {
                if (i > 0 && i % 4 == 0)
                        s[j++] = '-';   /* 4 bytes = 8 characters per group */
                s[j++] = modhex[key[i] >> 4];
                s[j++] = modhex[key[i] & 15];
        }
        s[j] = 0;
        *ret = s;
        return 0;
}

int recovery_key_generate(char **ret) {
        uint8_t key[RECOVERY_KEY_BYTES];
        size_t done = 0;
        int r;

        if (!ret)
                return -EINVAL;
        /* Blocks until the kernel's pool is initialized: a recovery key must
         * never come from an unseeded generator. */
        while (done < sizeof(key)) {
                ssize_t n = getrandom(key + done, sizeof(key) - done, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        explicit_bzero(key, sizeof(key));
                        return r;
                }
                done += (size_t) n;
        }
        r = recovery_key_format(key, ret);
        explicit_bzero(key, sizeof(key));
        return r;
}

static int modhex_value(char c) {
        if (c >= 'A' && c <= 'Z')
                c = (char) (c - 'A' + 'a');
        for (int i = 0; i < 16; i++)
                if (modhex[i] == c)
                        return i;
        return -1;
}

int recovery_key_normalize(const char *input, char **ret) {
        uint8_t key[RECOVERY_KEY_BYTES];
        size_t nibbles = 0;
        int r = -EINVAL;

        if (!input || !ret)
                return -EINVAL;
        for (const char *p = input; *p; p++) {
                int v;

                /* Dashes, spaces and tabs are typing aids, wherever they are. */
                if (*p == '-' || *p == ' ' || *p == '\t')
                        continue;
                v = modhex_value(*p);
                if (v < 0 || nibbles >= RECOVERY_KEY_BYTES * 2)
                        goto finish;
                if (nibbles % 2 == 0)
                        key[nibbles / 2] = (uint8_t) (v << 4);
                else
                        key[nibbles / 2] |= (uint8_t) v;
                nibbles++;
        }
        if (nibbles == RECOVERY_KEY_BYTES * 2)
                r = recovery_key_format(key, ret);
finish:
        explicit_bzero(key, sizeof(key));
        return r;
}

int recovery_key_parse_secboot(const char *input, uint8_t ret[SECBOOT_RECOVERY_KEY_BYTES]) {
        uint8_t key[SECBOOT_RECOVERY_KEY_BYTES];
        unsigned digits = 0, group = 0;
        uint32_t value = 0;
        bool dash = false;              /* a '-' since the last complete group */
        int r = -EINVAL;

        if (!input || !ret)
                return -EINVAL;
        for (const char *p = input; *p; p++) {
                char c = *p;

                if (c == ' ' || c == '\t')
                        continue;
                if (c == '-') {
                        /* One dash, only between two groups. */
                        if (group == 0 || group >= SECBOOT_GROUPS || digits != 0 || dash)
                                goto finish;
                        dash = true;
                        continue;
                }
                if (c < '0' || c > '9' || group >= SECBOOT_GROUPS)
                        goto finish;
                value = value * 10 + (uint32_t) (c - '0');
                if (++digits < SECBOOT_GROUP_DIGITS)
                        continue;
                if (value > 0xFFFF)
                        goto finish;
                key[group * 2] = (uint8_t) (value & 0xFF);      /* little-endian uint16 */
                key[group * 2 + 1] = (uint8_t) (value >> 8);
                group++;
                digits = 0;
                value = 0;
                dash = false;
        }
        if (group == SECBOOT_GROUPS && digits == 0 && !dash) {
                memcpy(ret, key, sizeof(key));
                r = 0;
        }
finish:
        explicit_bzero(key, sizeof(key));
        explicit_bzero(&value, sizeof(value));
        return r;
}

void recovery_key_format_secboot(const uint8_t key[SECBOOT_RECOVERY_KEY_BYTES], char ret[48]) {
        size_t j = 0;

        for (unsigned g = 0; g < SECBOOT_GROUPS; g++) {
                unsigned v = key[g * 2] | (unsigned) key[g * 2 + 1] << 8;

                if (g > 0)
                        ret[j++] = '-';
                /* Five digits, most significant first; 65535 fits. */
                for (int d = SECBOOT_GROUP_DIGITS - 1; d >= 0; d--) {
                        ret[j + (size_t) d] = (char) ('0' + v % 10);
                        v /= 10;
                }
                j += SECBOOT_GROUP_DIGITS;
                explicit_bzero(&v, sizeof(v));
        }
        ret[j] = 0;
}
