/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "recovery-key.h"
#include "secret.h"

static const char modhex[] = "cbdefghijklnrtuv";

int recovery_key_format(const uint8_t key[RECOVERY_KEY_BYTES], char **ret) {
        char *s = secret_alloc(RECOVERY_KEY_FORMATTED_LEN);
        size_t j = 0;

        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < RECOVERY_KEY_BYTES; i++) {
                s[j++] = modhex[key[i] >> 4];
                s[j++] = modhex[key[i] & 15];
                if (i % 4 == 3 && i + 1 < RECOVERY_KEY_BYTES)
                        s[j++] = '-';
        }
        s[j] = 0;
        *ret = s;
        return 0;
}

int recovery_key_generate(char **ret) {
        uint8_t key[RECOVERY_KEY_BYTES];
        ssize_t n;
        int r;

        n = getrandom(key, sizeof(key), 0);
        if (n != (ssize_t) sizeof(key)) {
                explicit_bzero(key, sizeof(key));
                return n < 0 ? -errno : -EIO;
        }
        r = recovery_key_format(key, ret);
        explicit_bzero(key, sizeof(key));
        return r;
}

static int modhex_value(char c) {
        const char *p;

        if (c >= 'A' && c <= 'Z')
                c = (char) (c - 'A' + 'a');
        p = c ? strchr(modhex, c) : NULL;
        return p ? (int) (p - modhex) : -1;
}

int recovery_key_normalize(const char *input, char **ret) {
        uint8_t key[RECOVERY_KEY_BYTES];
        size_t nibbles = 0;
        int r;

        for (const char *p = input; *p; p++) {
                int v;

                if (*p == ' ' || *p == '\t' || *p == '-')
                        continue;
                v = modhex_value(*p);
                if (v < 0 || nibbles >= RECOVERY_KEY_BYTES * 2) {
                        explicit_bzero(key, sizeof(key));
                        return -EINVAL;
                }
                if (nibbles % 2 == 0)
                        key[nibbles / 2] = (uint8_t) (v << 4);
                else
                        key[nibbles / 2] |= (uint8_t) v;
                nibbles++;
        }
        if (nibbles != RECOVERY_KEY_BYTES * 2) {
                explicit_bzero(key, sizeof(key));
                return -EINVAL;
        }
        r = recovery_key_format(key, ret);
        explicit_bzero(key, sizeof(key));
        return r;
}

int recovery_key_parse_secboot(const char *input, uint8_t ret[SECBOOT_RECOVERY_KEY_BYTES]) {
        uint8_t key[SECBOOT_RECOVERY_KEY_BYTES];
        unsigned digits = 0, group = 0;
        uint32_t value = 0;
        bool sep_ok = false;

        for (const char *p = input;; p++) {
                char c = *p;

                if (c >= '0' && c <= '9') {
                        if (group >= 8) {
                                explicit_bzero(key, sizeof(key));
                                return -EINVAL;
                        }
                        value = value * 10 + (uint32_t) (c - '0');
                        digits++;
                        sep_ok = false;
                        if (digits == 5) {
                                if (value > 0xFFFF) {
                                        explicit_bzero(key, sizeof(key));
                                        return -EINVAL;
                                }
                                key[group * 2] = (uint8_t) (value & 0xFF);
                                key[group * 2 + 1] = (uint8_t) (value >> 8);
                                group++;
                                digits = 0;
                                value = 0;
                                sep_ok = true;
                        }
                        continue;
                }
                if (c == 0)
                        break;
                /* Separators only between groups (spaces anywhere). */
                if (c == ' ' || c == '\t')
                        continue;
                if (c == '-' && sep_ok && digits == 0) {
                        sep_ok = false;
                        continue;
                }
                explicit_bzero(key, sizeof(key));
                return -EINVAL;
        }
        if (group != 8 || digits != 0) {
                explicit_bzero(key, sizeof(key));
                return -EINVAL;
        }
        memcpy(ret, key, sizeof(key));
        explicit_bzero(key, sizeof(key));
        return 0;
}

void recovery_key_format_secboot(const uint8_t key[SECBOOT_RECOVERY_KEY_BYTES], char ret[48]) {
        size_t j = 0;

        for (unsigned g = 0; g < 8; g++) {
                unsigned v = key[g * 2] | (unsigned) key[g * 2 + 1] << 8;
                j += (size_t) snprintf(ret + j, 48 - j, "%s%05u", g > 0 ? "-" : "", v);
        }
}
