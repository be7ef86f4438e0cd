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
#define LUKS2_JSON_MAX (4 * 1024 * 1024)
#define LUKS_VOLUME_KEY_MAX 256

/* Process-wide libcryptsetup settings (no external token plugins, logs
 * routed into ours). Call once from main() before luks_open(). */
void luks_setup(void);

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

/* The one accessor for a token of the header, parsed strictly (the header
 * is attacker-controlled): returns 0 with *ret_json (the library's string)
 * and *ret_keyslot (-1 unless it names exactly one keyslot); -ENOENT when
 * the token slot is empty; -EMEDIUMTYPE when type is non-NULL and the token
 * is of another type; -EBADMSG when its JSON is malformed. */
int luks_token_get(struct crypt_device *cd, int token, const char *type, const char **ret_json, int *ret_keyslot);

/* Number of keyslots token is assigned to. */
unsigned luks_keyslot_tokens_assigned(struct crypt_device *cd, int token);

/* Number of tokens of any type that reference keyslot. */
unsigned luks_keyslot_tokens(struct crypt_device *cd, int keyslot);

/* The lowest unused keyslot, or -ENOSPC when all are in use (see luks_keyslot_add()). */
int luks_keyslot_free(struct crypt_device *cd);

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
 * (-EPERM: the existing passphrase is wrong; -EXFULL: no keyslot is free;
 * -ENOSPC: the metadata area is full). */
int luks_keyslot_add(struct crypt_device *cd, const char *pass, size_t pass_len,
                     const char *new_pass, size_t new_len, bool fast_kdf);

/* Destroys a keyslot. */
int luks_keyslot_destroy(struct crypt_device *cd, int keyslot);

/* Whether keyslot is active. */
bool luks_keyslot_active(struct crypt_device *cd, int keyslot);

/* Finds the token that references keyslot, or -ENOENT; with type non-NULL,
 * of that type only. *ret_json (optional) is the library's string. */
int luks_keyslot_token(struct crypt_device *cd, int keyslot, const char *type, const char **ret_json);

/* Whether a device-mapper device of that name is active. */
bool luks_active(const char *name);

/* The volume UUID (library string). */
const char *luks_uuid(struct crypt_device *cd);

/* What identifies one keyslot's material: its KDF salt and its binary
 * area, as the header's JSON writes them. */
typedef struct LuksKeyslotId {
        char salt[256];
        char area_offset[32];
        char area_size[32];
} LuksKeyslotId;

/* Reads the identity of a keyslot (strict parse of the header JSON).
 * Returns 0, -ENOENT when the keyslot is not in use, -EBADMSG. */
int luks_keyslot_identity(struct crypt_device *cd, int keyslot, LuksKeyslotId *ret);

/* A volume key in a secret buffer, and the keyslot it came from. */
typedef struct LuksVolumeKey {
        uint8_t *data;
        size_t size;
        int keyslot;
} LuksVolumeKey;

/* Recovers the volume key with a passphrase (keyslot may be
 * CRYPT_ANY_SLOT). Returns the keyslot that opened, -EPERM when the
 * passphrase is wrong, or negative errno. */
int luks_volume_key_get(struct crypt_device *cd, int keyslot, const char *pass, size_t len, LuksVolumeKey *ret);
void luks_volume_key_done(LuksVolumeKey *vk);

/* A sentence for a libcryptsetup error an admin can act on. */
const char *luks_strerror(int r);

/* The base64 KDF salt of a keyslot, from the header's JSON (malloc()ed):
 * it changes whenever a keyslot is (re)created, so it identifies one.
 * Returns 0, -ENOENT when the keyslot is not in use. */
int luks_keyslot_salt(struct crypt_device *cd, int keyslot, char **ret);
