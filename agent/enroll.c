/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/random.h>

#include "encoding.h"
#include "enroll.h"
#include "fileio.h"
#include "log.h"
#include "pcr.h"
#include "recovery-key.h"
#include "secret.h"
#include "token.h"
#include "tpm2.h"

int escrow_encrypt(const char *pem_path, const void *data, size_t size, char **ret_base64) {
        EVP_PKEY *key = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_len = 0;
        FILE *f;
        int r;

        f = fopen(pem_path, "re");
        if (!f)
                return log_error_errno(errno, "Cannot open %s: %m", pem_path);
        key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
        if (!key)
                return log_error_errno(EBADMSG, "%s holds no PEM public key.", pem_path);
        if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
                r = log_error_errno(EOPNOTSUPP, "%s is not an RSA public key.", pem_path);
                goto finish;
        }

        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_encrypt(ctx, NULL, &out_len, data, size) <= 0) {
                r = log_error_errno(EIO, "Failed to set up RSA-OAEP encryption.");
                goto finish;
        }
        out = malloc(out_len);
        if (!out) {
                r = log_oom();
                goto finish;
        }
        if (EVP_PKEY_encrypt(ctx, out, &out_len, data, size) <= 0) {
                r = log_error_errno(EIO, "RSA-OAEP encryption failed (key too small?).");
                goto finish;
        }
        r = base64_encode(out, out_len, false, ret_base64);
        if (r >= 0)
                r = 0;
finish:
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(key);
        return r;
}

/* Keyslots that a systemd-tpm2 token references. */
static uint32_t tpm2_keyslots(struct crypt_device *cd) {
        uint32_t m = 0;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *type = NULL;
                const char *json = luks_token_json(cd, i);
                int slot;

                if (json && token_get_type_and_keyslot(json, &type, &slot) >= 0 && slot >= 0 &&
                    slot < LUKS2_KEYSLOTS_MAX && streq(type, TOKEN_TYPE_TPM2))
                        m |= 1u << slot;
        }
        return m;
}

/* A systemd-tpm2 token with the same PCRs, bank and PIN-ness, or -ENOENT. */
static int find_same_tpm2(struct crypt_device *cd, uint32_t mask, uint16_t bank, bool pin) {
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const char *json = luks_token_json(cd, i);

                if (!json || tpm2_token_parse(json, &t, NULL) < 0)
                        continue;
                if (t->pcr_mask == mask && (t->pcr_bank ?: PCR_BANK_SHA256) == bank && t->pin == pin &&
                    !t->unsupported && luks_keyslot_active(cd, t->keyslot))
                        return i;
        }
        return -ENOENT;
}

/* Adds a keyslot and its token; removes the keyslot again if the token
 * cannot be written, so a failed enroll leaves nothing behind. */
static int add_slot_and_token(struct crypt_device *cd, const char *pass, size_t pass_len,
                              const char *new_pass, size_t new_len, Tpm2Token *tpm2_token, int *ret_slot) {
        _cleanup_free_ char *json = NULL;
        int slot, r;

        slot = luks_keyslot_add(cd, pass, pass_len, new_pass, new_len, true);
        if (slot < 0)
                return slot;

        if (tpm2_token) {
                tpm2_token->keyslot = slot;
                r = tpm2_token_format(tpm2_token, &json);
        } else
                r = recovery_token_format(slot, &json);
        if (r >= 0)
                r = luks_token_add(cd, json);
        if (r < 0) {
                (void) luks_keyslot_destroy(cd, slot);
                return r;
        }
        *ret_slot = slot;
        return r;
}

static int enroll_tpm2(struct crypt_device *cd, const char *device, const char *pass, size_t pass_len,
                       const EnrollOptions *o, uint32_t *new_slots) {
        _cleanup_(tpm2_context_freep) Tpm2Context *tpm = NULL;
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_secret_ char *b64 = NULL;
        uint8_t *secret = NULL;
        _cleanup_free_ char *pcrs = o->pcr_mask ? pcr_mask_to_string(o->pcr_mask) : strdup("none");
        uint16_t bank = o->pcr_bank;
        int slot, token, r;

        r = tpm2_context_new(o->tcti, &tpm);
        if (r < 0)
                return log_error_errno(r, "Cannot open the TPM%s%s: %m", o->tcti ? " " : "", o->tcti ?: "");

        if (bank == 0) {
                r = tpm2_pick_bank(tpm, o->pcr_mask, &bank);
                if (r < 0)
                        return log_error_errno(r, "Cannot find an allocated PCR bank: %m");
        }

        token = find_same_tpm2(cd, o->pcr_mask, bank, !!o->pin);
        if (token >= 0) {
                log_info("%s already has a TPM2 token (%d) for PCR %s in the %s bank%s; nothing to do.",
                         device, token, pcrs ?: "?", pcr_bank_to_string(bank), o->pin ? " with a PIN" : "");
                return 0;
        }

        secret = secret_alloc(TPM2_SECRET_SIZE);
        if (!secret)
                return log_oom();
        if (getrandom(secret, TPM2_SECRET_SIZE, 0) != TPM2_SECRET_SIZE) {
                secret_free(secret);
                return log_error_errno(errno ?: EIO, "Failed to get random bytes: %m");
        }

        r = tpm2_seal(tpm, &(Tpm2SealParams) {
                        .bank = bank,
                        .mask = o->pcr_mask,
                        .pin = o->pin,
                        .use_srk = o->use_srk,
                }, secret, TPM2_SECRET_SIZE, &t);
        if (r >= 0)
                r = base64_encode(secret, TPM2_SECRET_SIZE, true, &b64);
        secret_free(secret);
        if (r < 0)
                return log_error_errno(r, "Failed to seal to the TPM: %s.", tpm2_strerror(r));

        r = add_slot_and_token(cd, pass, pass_len, b64, (size_t) r, t, &slot);
        if (r == -EPERM)
                return log_error_errno(r, "The passphrase given does not unlock %s.", device);
        if (r < 0)
                return log_error_errno(r, "Failed to add the TPM2 keyslot to %s: %m", device);

        *new_slots |= 1u << slot;
        log_info("TPM2 token enrolled as keyslot %d (PCR %s, %s bank%s%s).", slot, pcrs ?: "?",
                 pcr_bank_to_string(bank), o->pin ? ", PIN" : "", t->srk ? ", persistent SRK" : "");
        return 0;
}

static int enroll_recovery(struct crypt_device *cd, const char *device, const char *pass, size_t pass_len,
                           const EnrollOptions *o, uint32_t *new_slots) {
        _cleanup_secret_ char *key = NULL;
        _cleanup_free_ char *escrow = NULL;
        int slot, r;

        r = recovery_key_generate(&key);
        if (r < 0)
                return log_error_errno(r, "Failed to generate a recovery key: %m");

        if (o->escrow_pubkey) {
                /* Encrypt first: if the key cannot be escrowed, enroll nothing. */
                r = escrow_encrypt(o->escrow_pubkey, key, strlen(key), &escrow);
                if (r < 0)
                        return r;
        }

        r = add_slot_and_token(cd, pass, pass_len, key, strlen(key), NULL, &slot);
        if (r == -EPERM)
                return log_error_errno(r, "The passphrase given does not unlock %s.", device);
        if (r < 0)
                return log_error_errno(r, "Failed to add the recovery keyslot to %s: %m", device);
        *new_slots |= 1u << slot;

        if (escrow) {
                printf("{\"EncryptionKey\":\"%s\"}\n", escrow);
                log_info("Recovery key enrolled as keyslot %d; it was printed only encrypted to %s.",
                         slot, o->escrow_pubkey);
        } else {
                /* Straight to the descriptor: stdio would keep a copy in
                 * its buffer, which is freed unwiped. */
                fflush(stdout);
                r = write_all(STDOUT_FILENO, key, strlen(key));
                if (r >= 0)
                        r = write_all(STDOUT_FILENO, "\n", 1);
                if (r < 0)
                        return log_error_errno(r, "Failed to print the recovery key (keyslot %d was added): %m", slot);
                log_info("Recovery key enrolled as keyslot %d. It is printed above, once: keep it safe.", slot);
        }
        fflush(stdout);
        return 0;
}

int enroll(struct crypt_device *cd, const char *device, const char *pass, size_t pass_len, const EnrollOptions *o) {
        uint32_t new_slots = 0, tpm_slots, left = 0;
        int r;

        r = luks_check_passphrase(cd, CRYPT_ANY_SLOT, pass, pass_len);
        if (r == -EPERM)
                return log_error_errno(r, "The passphrase given does not unlock %s.", device);
        if (r < 0)
                return log_error_errno(r, "Failed to check the passphrase on %s: %m", device);

        /* Check the wipe first: a TPM change must never mean data loss. */
        tpm_slots = tpm2_keyslots(cd);
        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++)
                if (luks_keyslot_active(cd, s) && !(o->wipe_slots & (1u << s)) && !(tpm_slots & (1u << s)))
                        left++;
        if (o->recovery_key)
                left++;
        if (left == 0 && !o->force)
                return log_error_errno(EPERM, "Refusing to leave %s with no passphrase or recovery key: "
                                       "a TPM or firmware change would make it unopenable. Use --force to do it anyway.",
                                       device);

        if (o->recovery_key) {
                r = enroll_recovery(cd, device, pass, pass_len, o, &new_slots);
                if (r < 0)
                        return r;
        }
        if (o->tpm2) {
                r = enroll_tpm2(cd, device, pass, pass_len, o, &new_slots);
                if (r < 0)
                        return r;
        }

        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++) {
                if (!(o->wipe_slots & (1u << s)) || (new_slots & (1u << s)) || !luks_keyslot_active(cd, s))
                        continue;
                for (int tok; (tok = luks_keyslot_token(cd, s, NULL, NULL)) >= 0;)
                        if (luks_token_remove(cd, tok) < 0)
                                break;
                r = luks_keyslot_destroy(cd, s);
                if (r < 0)
                        return log_error_errno(r, "Failed to wipe keyslot %d: %m", s);
                log_info("Wiped keyslot %d.", s);
        }
        return 0;
}
