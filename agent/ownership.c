/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

#include "encoding.h"
#include "log.h"
#include "ownership.h"

#define PROOF_LABEL "unlockd keyslot ownership proof v1"

KeyslotKind keyslot_kind(struct crypt_device *cd, int keyslot) {
        bool recovery = false;

        assert(cd);

        if (!luks_keyslot_active(cd, keyslot))
                return KEYSLOT_UNUSED;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *type = NULL;
                const char *json = luks_token_json(cd, i);
                int slot;

                if (!json || crypt_token_is_assigned(cd, i, keyslot) != 0)
                        continue;
                /* A token unlockd cannot even parse, assigned to this
                 * keyslot, is some other program's: not typeable. */
                if (token_get_type_and_keyslot(json, &type, &slot) < 0)
                        return KEYSLOT_OTHER;
                if (streq(type, TOKEN_TYPE_TPM2))
                        return KEYSLOT_TPM2;
                if (streq(type, TOKEN_TYPE_PENDING))
                        return KEYSLOT_PENDING;
                if (!streq(type, TOKEN_TYPE_RECOVERY))
                        return KEYSLOT_OTHER;
                recovery = true;
        }
        return recovery ? KEYSLOT_RECOVERY : KEYSLOT_PASSPHRASE;
}

const char *keyslot_kind_to_string(KeyslotKind k) {
        static const char *const names[] = {
                [KEYSLOT_UNUSED] = "unused",
                [KEYSLOT_PASSPHRASE] = "passphrase",
                [KEYSLOT_RECOVERY] = "recovery-key",
                [KEYSLOT_TPM2] = "tpm2",
                [KEYSLOT_PENDING] = "pending-reseal",
                [KEYSLOT_OTHER] = "other",
        };
        return (unsigned) k < ELEMENTSOF(names) ? names[k] : NULL;
}

uint32_t keyslots_typeable(struct crypt_device *cd) {
        uint32_t m = 0;

        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++) {
                KeyslotKind k = keyslot_kind(cd, s);
                if (k == KEYSLOT_PASSPHRASE || k == KEYSLOT_RECOVERY)
                        m |= 1u << s;
        }
        return m;
}

int ownership_proof(struct crypt_device *cd, const LuksVolumeKey *vk, int keyslot,
                    uint8_t ret[static TOKEN_PROOF_SIZE]) {
        uint8_t key[EVP_MAX_MD_SIZE];
        unsigned key_len = 0, out_len = 0;
        _cleanup_free_ char *msg = NULL;
        const char *uuid = luks_uuid(cd);
        LuksKeyslotId id;
        int n, r;

        if (!vk || !vk->data || vk->size == 0 || !uuid)
                return -EINVAL;
        r = luks_keyslot_identity(cd, keyslot, &id);
        if (r < 0)
                return r;
        /* Every part is NUL-terminated: no two inputs share a message. */
        n = asprintf(&msg, "%s%c%d%c%s%c%s%c%s", uuid, 0, keyslot, 0, id.salt, 0, id.area_offset, 0, id.area_size);
        if (n < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        /* A key of its own, derived from the volume key: the proof is an
         * HMAC under it, never under the volume key itself. */
        if (!HMAC(EVP_sha256(), vk->data, (int) vk->size, (const uint8_t *) PROOF_LABEL, strlen(PROOF_LABEL), key,
                  &key_len) ||
            !HMAC(EVP_sha256(), key, (int) key_len, (const uint8_t *) msg, (size_t) n + 1, ret, &out_len) ||
            out_len != TOKEN_PROOF_SIZE)
                r = -EIO;
        else
                r = 0;
        explicit_bzero(key, sizeof(key));
        return r;
}

/* The proof a token carries, when it is a marker or TPM2 token of keyslot. */
static bool token_proof(const char *json, int keyslot, uint8_t ret[static TOKEN_PROOF_SIZE]) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        PendingToken p;

        if (pending_token_parse(json, &p, NULL) >= 0) {
                if (p.keyslot != keyslot || !p.has_proof)
                        return false;
                memcpy(ret, p.proof, TOKEN_PROOF_SIZE);
                return true;
        }
        if (tpm2_token_parse(json, &t, NULL) >= 0) {
                if (t->keyslot != keyslot || !t->has_proof)
                        return false;
                memcpy(ret, t->proof, TOKEN_PROOF_SIZE);
                return true;
        }
        return false;
}

int ownership_proven(struct crypt_device *cd, const LuksVolumeKey *vk, int keyslot) {
        uint8_t want[TOKEN_PROOF_SIZE];
        int r;

        assert(cd);
        assert(vk);

        r = ownership_proof(cd, vk, keyslot, want);
        if (r < 0)
                return r;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                uint8_t have[TOKEN_PROOF_SIZE];
                const char *json = luks_token_json(cd, i);

                if (json && token_proof(json, keyslot, have) && CRYPTO_memcmp(have, want, sizeof(want)) == 0)
                        return 1;
        }
        return 0;
}

int ownership_may_remove(struct crypt_device *cd, const LuksVolumeKey *vk, int keyslot, int opened_keyslot,
                         const char **ret_why) {
        const char *why;
        int r;

        if (!luks_keyslot_active(cd, keyslot))
                return -ENOENT;
        if (keyslot == opened_keyslot)
                why = "it is the keyslot that opened the volume this boot";
        else if (luks_keyslot_token(cd, keyslot, TOKEN_TYPE_RECOVERY, NULL) >= 0)
                why = "it has a recovery key token";
        else if (((keyslots_typeable(cd) | (opened_keyslot >= 0 && luks_keyslot_active(cd, opened_keyslot) ?
                                             1u << opened_keyslot : 0)) & ~(1u << keyslot)) == 0)
                why = "no keyslot a person can type would be left";
        else {
                r = vk ? ownership_proven(cd, vk, keyslot) : 0;
                if (r < 0)
                        return r;
                if (r > 0)
                        return 0;
                if (ret_why)
                        *ret_why = "unlockd cannot prove that it holds only a secret unlockd had";
                return -ENOKEY;
        }
        if (ret_why)
                *ret_why = why;
        return -EPERM;
}

int ownership_adopt_token(struct crypt_device *cd, const LuksVolumeKey *vk, int token, int keyslot) {
        uint8_t proof[TOKEN_PROOF_SIZE];
        _cleanup_free_ char *hex = NULL, *out = NULL;
        const char *json = luks_token_json(cd, token), *s;
        json_object *root;
        int r;

        assert(cd);
        assert(vk);

        if (!json)
                return -ENOENT;
        r = ownership_proof(cd, vk, keyslot, proof);
        if (r < 0)
                return r;
        r = hex_encode(proof, sizeof(proof), &hex);
        if (r < 0)
                return r;
        root = json_parse_strict(json, TOKEN_JSON_MAX);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return -EBADMSG;
        }
        if (json_object_object_add(root, "unlockd-proof", json_object_new_string(hex)) < 0) {
                json_object_put(root);
                return -ENOMEM;
        }
        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        out = s ? strdup(s) : NULL;
        json_object_put(root);
        if (!out)
                return -ENOMEM;
        r = crypt_token_json_set(cd, token, out);
        if (r < 0)
                return log_debug_errno(r, "Failed to rewrite token %d: %m", token);
        return 0;
}
