/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <json-c/json.h>

#include "log.h"
#include "secret.h"
#include "luks.h"
#include "token.h"

static void log_callback(int level, const char *msg, void *usrptr) {
        size_t n = strlen(msg);

        /* libcryptsetup messages end in a newline; ours add one. */
        if (n > 0 && msg[n - 1] == '\n')
                n--;
        log_debug("cryptsetup: %.*s", (int) n, msg);
}

void luks_setup(void) {
        /* No token plugins: unlockd reads its tokens itself. A plugin (such
         * as systemd's for systemd-tpm2 tokens) would otherwise be loaded
         * just to report a token's status: code and libraries chosen by
         * what an attacker-controlled header names, and milliseconds of
         * start-up. */
        crypt_token_external_disable();
        crypt_set_log_callback(NULL, log_callback, NULL);
        if (log_get_max_level() >= LOG_DEBUG)
                crypt_set_debug_level(CRYPT_DEBUG_ALL);
}

int luks_open(const char *path, struct crypt_device **ret) {
        struct crypt_device *cd = NULL;
        int r;

        assert(path);
        assert(ret);

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

int luks_token_get(struct crypt_device *cd, int token, const char *type, const char **ret_json, int *ret_keyslot) {
        _cleanup_free_ char *t = NULL;
        const char *json = luks_token_json(cd, token);
        int slot, r;

        if (!json)
                return -ENOENT;
        r = token_get_type_and_keyslot(json, &t, &slot);
        if (r < 0)
                return r;
        if (type && !streq(t, type))
                return -EMEDIUMTYPE;
        if (ret_json)
                *ret_json = json;
        if (ret_keyslot)
                *ret_keyslot = slot;
        return 0;
}

int luks_token_add(struct crypt_device *cd, const char *json) {
        int r;

        assert(json);
        r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
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
        _cleanup_(luks_volume_key_done) LuksVolumeKey vk = { .keyslot = -1 };

        return luks_volume_key_get(cd, keyslot, pass, len, &vk);
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
        /* A full keyslot table is its own outcome: libcryptsetup says
         * -EINVAL, as for much else. */
        if (luks_keyslot_free(cd) < 0)
                return -EXFULL;
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
                const char *json;
                int slot;

                if (luks_token_get(cd, i, type, &json, &slot) < 0 || slot != keyslot)
                        continue;
                if (ret_json)
                        *ret_json = json;
                return i;
        }
        return -ENOENT;
}

unsigned luks_keyslot_tokens(struct crypt_device *cd, int keyslot) {
        unsigned n = 0;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                int slot;

                if (luks_token_get(cd, i, NULL, NULL, &slot) >= 0 && slot == keyslot)
                        n++;
        }
        return n;
}

unsigned luks_keyslot_tokens_assigned(struct crypt_device *cd, int token) {
        unsigned n = 0;

        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++)
                if (crypt_token_is_assigned(cd, token, s) == 0)
                        n++;
        return n;
}

int luks_keyslot_free(struct crypt_device *cd) {
        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++)
                if (crypt_keyslot_status(cd, s) == CRYPT_SLOT_INACTIVE)
                        return s;
        return -ENOSPC;
}

bool luks_active(const char *name) {
        return crypt_status(NULL, name) == CRYPT_ACTIVE;
}

const char *luks_uuid(struct crypt_device *cd) {
        return crypt_get_uuid(cd);
}

int luks_keyslot_identity(struct crypt_device *cd, int keyslot, LuksKeyslotId *ret) {
        const char *json = NULL;
        json_object *root, *slots, *slot, *kdf, *salt, *area, *offset, *size;
        char key[16];
        int r;

        assert(ret);

        r = crypt_dump_json(cd, &json, 0);
        if (r < 0)
                return log_debug_errno(r, "Failed to read the LUKS2 header JSON: %m");
        root = json_parse_strict(json, LUKS2_JSON_MAX);
        if (!root)
                return -EBADMSG;
        snprintf(key, sizeof(key), "%d", keyslot);
        r = -ENOENT;
        if (json_object_object_get_ex(root, "keyslots", &slots) && json_object_is_type(slots, json_type_object) &&
            json_object_object_get_ex(slots, key, &slot) && json_object_is_type(slot, json_type_object) &&
            json_object_object_get_ex(slot, "kdf", &kdf) && json_object_is_type(kdf, json_type_object) &&
            json_object_object_get_ex(kdf, "salt", &salt) && json_object_is_type(salt, json_type_string) &&
            json_object_object_get_ex(slot, "area", &area) && json_object_is_type(area, json_type_object) &&
            json_object_object_get_ex(area, "offset", &offset) && json_object_is_type(offset, json_type_string) &&
            json_object_object_get_ex(area, "size", &size) && json_object_is_type(size, json_type_string)) {
                LuksKeyslotId id = {};

                if (json_object_get_string_len(salt) >= (int) sizeof(id.salt) ||
                    json_object_get_string_len(offset) >= (int) sizeof(id.area_offset) ||
                    json_object_get_string_len(size) >= (int) sizeof(id.area_size))
                        r = -EBADMSG;
                else {
                        strcpy(id.salt, json_object_get_string(salt));
                        strcpy(id.area_offset, json_object_get_string(offset));
                        strcpy(id.area_size, json_object_get_string(size));
                        /* No NUL inside: the strings are what the header says. */
                        if (strlen(id.salt) != (size_t) json_object_get_string_len(salt) ||
                            strlen(id.area_offset) != (size_t) json_object_get_string_len(offset) ||
                            strlen(id.area_size) != (size_t) json_object_get_string_len(size))
                                r = -EBADMSG;
                        else {
                                *ret = id;
                                r = 0;
                        }
                }
        }
        json_object_put(root);
        return r;
}

int luks_keyslot_salt(struct crypt_device *cd, int keyslot, char **ret) {
        LuksKeyslotId id;
        int r;

        r = luks_keyslot_identity(cd, keyslot, &id);
        if (r < 0)
                return r;
        *ret = strdup(id.salt);
        return *ret ? 0 : -ENOMEM;
}

int luks_volume_key_get(struct crypt_device *cd, int keyslot, const char *pass, size_t len, LuksVolumeKey *ret) {
        _cleanup_secret_ char *vk = NULL;
        size_t vk_size = LUKS_VOLUME_KEY_MAX;
        int r;

        assert(pass);
        assert(ret);

        vk = secret_alloc(LUKS_VOLUME_KEY_MAX);
        if (!vk)
                return -ENOMEM;
        r = crypt_volume_key_get(cd, keyslot, vk, &vk_size, pass, len);
        if (r == -EPERM || r == -ENOENT)
                return -EPERM;
        if (r < 0)
                return r;
        ret->keyslot = r;
        ret->size = vk_size;
        ret->data = (uint8_t *) TAKE_PTR(vk);
        return r;
}

void luks_volume_key_done(LuksVolumeKey *vk) {
        vk->data = secret_free(vk->data);
        vk->size = 0;
        vk->keyslot = -1;
}

const char *luks_strerror(int r) {
        switch (r) {
        case -ENOSPC:
                return "the LUKS2 metadata area is full";
        case -EXFULL:
                return "every keyslot is in use";
        case -EPERM:
                return "the passphrase does not open any keyslot";
        case -EBUSY:
                return "the device is busy";
        case -EROFS:
                return "the device is read-only";
        }
        return strerror(ERRNO_VALUE(r));
}
