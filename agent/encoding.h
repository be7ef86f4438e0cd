/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Strict base64 (RFC 4648 standard alphabet, '=' padding) and hex codecs.
 * Input is attacker-controlled (LUKS2 header): every decoder bounds-checks
 * and rejects rather than guesses. */

/* Encodes n bytes as base64. With secure, the result lives in a secret
 * buffer (free with secret_free()), else in malloc() memory.
 * Returns the length of *ret, or -ENOMEM. */
int base64_encode(const void *p, size_t n, bool secure, char **ret);

/* Decodes base64 of length len (SIZE_MAX: strlen). Whitespace (space, \t, \r,
 * \n) is skipped; padding must be correct; any other character, or data
 * after padding, gives -EINVAL. With secure, *ret is a secret buffer.
 * *ret is NUL-terminated for convenience. Returns 0. */
int base64_decode(const char *s, size_t len, bool secure, void **ret, size_t *ret_size);

/* Lowercase hex. Returns the string length or -ENOMEM. */
int hex_encode(const void *p, size_t n, char **ret);
/* Decodes hex (either case, even length, no separators). Returns 0 or -EINVAL/-ENOMEM. */
int hex_decode(const char *s, size_t len, void **ret, size_t *ret_size);
