/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <json-c/json.h>

#include "log.h"
#include "luks.h"
#include "token.h"

static void log_callback(int level, const char *msg, void *usrptr) {
        size_t n = strlen(msg);

        /* libcryptsetup messages end in a newline; ours add one. */
        if (n > 0 && msg[n - 1] == '\n')
                n--;
        log_debug("cryptsetup: %.*s", (int) n, msg);
}

int luks_open(const char *path, struct crypt_device **ret) {
        struct crypt_device *cd = NULL;
        int r;

        /* No token plugins: unlockd reads its tokens itself. A plugin (such
         * as systemd's for systemd-tpm2 tokens) would otherwise be loaded
         * just to report a token's status: code and libraries chosen by
         * what an attacker-controlled header names, and milliseconds of
         * start-up. Process-wide, and idempotent. */
        crypt_token_external_disable();
        crypt_set_log_callback(NULL, log_callback, NULL);
        if (log_get_max_level() >= LOG_DEBUG)
                crypt_set_debug_level(CRYPT_DEBUG_ALL);

        r = crypt_init(&cd, path);
        if (r < 0)
                return log_debug_errno(r, "Failed to open %s: %m", path);
        crypt_set_log_callback(cd, log_callback, NULL);

        r = crypt_load(cd, CRYPT_LUKS2, NULL);
        if (r < 0) {
                crypt_free(cd);
                return log_debug_errno(r == -EINVAL ? -EMEDIUMTYPE : r, "%s has no LUKS2 header: %m", path);
        }
        *ret = cd;
        return 0;
}

const char *luks_token_json(struct crypt_device *cd, int token) {
        const char *json = NULL;
        crypt_token_info info = crypt_token_status(cd, token, NULL);

        if (info == CRYPT_TOKEN_INVALID || info == CRYPT_TOKEN_INACTIVE)
                return NULL;
        if (crypt_token_json_get(cd, token, &json) < 0)
                return NULL;
        return json;
}

int luks_token_add(struct crypt_device *cd, const char *json) {
        int r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
        if (r < 0)
                return log_debug_errno(r, "Failed to add token: %m");
        return r;
}

int luks_token_remove(struct crypt_device *cd, int token) {
        int r = crypt_token_json_set(cd, token, NULL);
        if (r < 0)
                return log_debug_errno(r, "Failed to remove token %d: %m", token);
        return 0;
}

int luks_check_passphrase(struct crypt_device *cd, int keyslot, const char *pass, size_t len) {
        char vk[256];
        size_t vk_size = sizeof(vk);
        int r;

        r = crypt_volume_key_get(cd, keyslot, vk, &vk_size, pass, len);
        explicit_bzero(vk, sizeof(vk));
        if (r == -EPERM || r == -ENOENT)
                return -EPERM;
        return r;
}

int luks_activate(struct crypt_device *cd, const char *name, int keyslot, const char *pass, size_t len,
                  uint32_t flags) {
        int r = crypt_activate_by_passphrase(cd, name, keyslot, pass, len, flags);
        if (r == -ENOENT)
                return -EPERM;
        return r;
}

int luks_keyslot_add(struct crypt_device *cd, const char *pass, size_t pass_len,
                     const char *new_pass, size_t new_len, bool fast_kdf) {
        struct crypt_pbkdf_type fast = {
                .type = CRYPT_KDF_PBKDF2,
                .hash = "sha512",
                .iterations = 1000,
                .flags = CRYPT_PBKDF_NO_BENCHMARK,
        };
        int r;

        if (fast_kdf) {
                r = crypt_set_pbkdf_type(cd, &fast);
                if (r < 0)
                        return log_debug_errno(r, "Failed to set PBKDF: %m");
        }
        r = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, pass, pass_len, new_pass, new_len);
        if (fast_kdf)
                (void) crypt_set_pbkdf_type(cd, NULL);
        if (r == -ENOENT)
                return -EPERM;
        return r;
}

int luks_keyslot_destroy(struct crypt_device *cd, int keyslot) {
        int r = crypt_keyslot_destroy(cd, keyslot);
        if (r < 0)
                return log_debug_errno(r, "Failed to destroy keyslot %d: %m", keyslot);
        return 0;
}

bool luks_keyslot_active(struct crypt_device *cd, int keyslot) {
        crypt_keyslot_info i = crypt_keyslot_status(cd, keyslot);
        return i == CRYPT_SLOT_ACTIVE || i == CRYPT_SLOT_ACTIVE_LAST;
}

int luks_keyslot_token(struct crypt_device *cd, int keyslot, const char *type, const char **ret_json) {
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *ttype = NULL;
                const char *json = luks_token_json(cd, i);
                int slot;

                if (!json)
                        continue;
                if (token_get_type_and_keyslot(json, &ttype, &slot) < 0)
                        continue;
                if (slot != keyslot || (type && !streq(ttype, type)))
                        continue;
                if (ret_json)
                        *ret_json = json;
                return i;
        }
        return -ENOENT;
}

const char *luks_uuid(struct crypt_device *cd) {
        return crypt_get_uuid(cd);
}

int luks_keyslot_salt(struct crypt_device *cd, int keyslot, char **ret) {
        const char *json = NULL;
        json_object *root, *slots, *slot, *kdf, *salt;
        char key[16];
        int r;

        r = crypt_dump_json(cd, &json, 0);
        if (r < 0)
                return log_debug_errno(r, "Failed to read the LUKS2 header JSON: %m");
        root = json_tokener_parse(json);
        if (!root)
                return -EBADMSG;
        snprintf(key, sizeof(key), "%d", keyslot);
        r = -ENOENT;
        if (json_object_object_get_ex(root, "keyslots", &slots) &&
            json_object_object_get_ex(slots, key, &slot) &&
            json_object_object_get_ex(slot, "kdf", &kdf) &&
            json_object_object_get_ex(kdf, "salt", &salt) &&
            json_object_is_type(salt, json_type_string)) {
                *ret = strdup(json_object_get_string(salt));
                r = *ret ? 0 : -ENOMEM;
        }
        json_object_put(root);
        return r;
}
