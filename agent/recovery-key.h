/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Recovery keys.
 *
 * systemd form: 32 random bytes as 64 "modhex" characters (alphabet
 * "cbdefghijklnrtuv", value = index, high nibble first), a dash after every
 * 8 characters: 71 characters. It is enrolled as a plain passphrase, so the
 * canonical formatted string is what a keyslot takes.
 *
 * secboot form: 8 groups of 5 decimal digits (each 0..65535), each the
 * little-endian uint16 of 2 bytes of a 16-byte key; the 16 raw bytes are the
 * keyslot passphrase. */

#define RECOVERY_KEY_BYTES 32
#define RECOVERY_KEY_FORMATTED_LEN 71
#define SECBOOT_RECOVERY_KEY_BYTES 16

/* Generates a fresh systemd-form recovery key from getrandom(). *ret is a
 * secret buffer (secret_free()). Returns 0 or negative errno. */
int recovery_key_generate(char **ret);

/* Formats 32 bytes in the systemd form into a secret buffer. */
int recovery_key_format(const uint8_t key[RECOVERY_KEY_BYTES], char **ret);

/* Recognizes what a person typed as a systemd recovery key: any case, with
 * or without dashes, with stray spaces/tabs anywhere. On success *ret is the
 * canonical 71-character form (secret buffer) and 0 is returned; -EINVAL if
 * the input is not a systemd recovery key. */
int recovery_key_normalize(const char *input, char **ret);

/* Recognizes a secboot-form key: 8 groups of 5 digits separated by '-',
 * spaces, or nothing; stray spaces allowed. Writes 16 bytes to ret on
 * success and returns 0; -EINVAL otherwise (including a group > 65535). */
int recovery_key_parse_secboot(const char *input, uint8_t ret[SECBOOT_RECOVERY_KEY_BYTES]);

/* Formats 16 bytes in the secboot form (for tests and enrollment). ret must
 * hold 48 bytes ("xxxxx-" × 8, NUL-terminated). */
void recovery_key_format_secboot(const uint8_t key[SECBOOT_RECOVERY_KEY_BYTES], char ret[48]);
