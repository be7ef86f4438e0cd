/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libcryptsetup.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* libcryptsetup access: loading LUKS2 headers, tokens, keyslots, checking
 * passphrases and activating volumes. Library logs are routed into ours at
 * debug level. */

#define LUKS2_TOKENS_MAX 32
#define LUKS2_KEYSLOTS_MAX 32

/* Opens a LUKS2 device or image file and loads its header. Returns 0,
 * -EMEDIUMTYPE when it is not LUKS2, or negative errno. */
int luks_open(const char *path, struct crypt_device **ret);

static inline void luks_closep(struct crypt_device **cd) {
        if (*cd)
                crypt_free(*cd);
}
#define _cleanup_luks_ _cleanup_(luks_closep)

/* The JSON of token id, or NULL when that token slot is empty or inactive. */
const char *luks_token_json(struct crypt_device *cd, int token);

/* Adds a token; returns its id or negative errno. */
int luks_token_add(struct crypt_device *cd, const char *json);

/* Removes a token. */
int luks_token_remove(struct crypt_device *cd, int token);

/* Verifies a passphrase by really recovering the volume key (no device-mapper
 * needed). keyslot may be CRYPT_ANY_SLOT. Returns the keyslot that opened,
 * -EPERM when the passphrase is wrong, or negative errno. */
int luks_check_passphrase(struct crypt_device *cd, int keyslot, const char *pass, size_t len);

/* Activates the volume as name (CRYPT_ANY_SLOT or a keyslot) with a
 * passphrase. Returns the keyslot used or negative errno (-EPERM: wrong). */
int luks_activate(struct crypt_device *cd, const char *name, int keyslot, const char *pass, size_t len,
                  uint32_t flags);

/* Adds a keyslot for new_pass, authorized by an existing passphrase. With
 * fast_kdf, the slot uses PBKDF2-SHA512 with 1000 iterations (for
 * high-entropy secrets: TPM secrets and recovery keys); otherwise the
 * library's default KDF. Returns the new keyslot or negative errno
 * (-EPERM: the existing passphrase is wrong). */
int luks_keyslot_add(struct crypt_device *cd, const char *pass, size_t pass_len,
                     const char *new_pass, size_t new_len, bool fast_kdf);

/* Destroys a keyslot. */
int luks_keyslot_destroy(struct crypt_device *cd, int keyslot);

/* Whether keyslot is active. */
bool luks_keyslot_active(struct crypt_device *cd, int keyslot);

/* Finds the token that references keyslot, or -ENOENT; with type non-NULL,
 * of that type only. *ret_json (optional) is the library's string. */
int luks_keyslot_token(struct crypt_device *cd, int keyslot, const char *type, const char **ret_json);

/* The volume UUID (library string). */
const char *luks_uuid(struct crypt_device *cd);

/* The base64 KDF salt of a keyslot, from the header's JSON (malloc()ed):
 * it changes whenever a keyslot is (re)created, so it identifies one.
 * Returns 0, -ENOENT when the keyslot is not in use. */
int luks_keyslot_salt(struct crypt_device *cd, int keyslot, char **ret);
