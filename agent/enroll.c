/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/random.h>

#include "encoding.h"
#include "enroll.h"
#include "fileio.h"
#include "log.h"
#include "ownership.h"
#include "pcr.h"
#include "recovery-key.h"
#include "strutil.h"
#include "secret.h"
#include "token.h"
#include "tpm2-offline.h"
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

/* Whether the current PCR values satisfy the token's policy. 1 yes, 0 no,
 * negative errno. */
static int policy_current(Tpm2Context *tpm, const Tpm2Token *t) {
        _cleanup_free_ uint8_t *now = NULL;
        uint8_t d[SHA256_DIGEST_SIZE];
        size_t n;
        int r;

        r = tpm2_pcr_read(tpm, t->pcr_bank ?: PCR_BANK_SHA256, t->pcr_mask, &now, &n);
        if (r < 0)
                return r;
        r = policy_digest_compute(t->pcr_bank ?: PCR_BANK_SHA256, t->pcr_mask, now, n, t->pin, d);
        if (r < 0)
                return r;
        return t->policy_hash_size == sizeof(d) && memcmp(d, t->policy_hash, sizeof(d)) == 0;
}

/* Whether a PIN-less token really opens its keyslot now: the TPM unseals
 * it and the keyslot takes the secret (then its proof is recorded). The
 * header's policy hash alone proves nothing. */
static bool token_opens(struct crypt_device *cd, const LuksVolumeKey *vk, Tpm2Context *tpm, int token,
                        const Tpm2Token *t) {
        _cleanup_secret_ char *b64 = NULL;
        size_t n;

        if (tpm2_unseal_passphrase(tpm, t, NULL, &b64, &n) < 0 || luks_check_passphrase(cd, t->keyslot, b64, n) != t->keyslot)
                return false;
        if (ownership_proven(cd, vk, t->keyslot) == 0)
                (void) ownership_adopt_token(cd, vk, token, t->keyslot);
        return true;
}

/* A systemd-tpm2 token with the same PCRs, bank and PIN-ness whose policy
 * the current PCRs satisfy and that (without a PIN) opens its keyslot now
 * (*ret_current), and one whose policy they no longer satisfy
 * (*ret_stale); -1 where none. A PIN token is judged by its policy alone:
 * trying a PIN that may not be its own would cost a dictionary-attack try. */
static int find_same_tpm2(struct crypt_device *cd, const LuksVolumeKey *vk, Tpm2Context *tpm, uint32_t mask,
                          uint16_t bank, bool pin, int *ret_current, int *ret_stale) {
        *ret_current = *ret_stale = -1;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const char *json;
                int r;

                if (luks_token_get(cd, i, TOKEN_TYPE_TPM2, &json, NULL) < 0 || tpm2_token_parse(json, &t, NULL) < 0)
                        continue;
                if (t->pcr_mask != mask || (t->pcr_bank ?: PCR_BANK_SHA256) != bank || t->pin != pin ||
                    t->unsupported || t->pubkey || !luks_keyslot_active(cd, t->keyslot))
                        continue;
                r = policy_current(tpm, t);
                if (r < 0)
                        return r;
                if (r > 0 && *ret_current < 0 && (t->pin || token_opens(cd, vk, tpm, i, t)))
                        *ret_current = i;
                else if (r == 0 && *ret_stale < 0)
                        *ret_stale = i;
        }
        return 0;
}

/* What an admin can do about a header that has no room. */
static int log_header_full(int r, const char *device, const char *what) {
        if (r == -EXFULL)
                return log_error_errno(r, "Cannot add %s to %s: every keyslot is in use. Remove one that is no longer "
                                       "needed first (unlockctl status lists them; 'unlockctl enroll --wipe-slot=N %s'), "
                                       "then enroll again. Nothing was changed.", what, device, device);
        if (r == -ENOSPC)
                return log_error_errno(r, "Cannot add %s to %s: the LUKS2 metadata area is full. Remove unused tokens "
                                       "('cryptsetup token remove --token-id N %s') or keyslots first, then enroll "
                                       "again. Nothing was changed.", what, device, device);
        return log_error_errno(r, "Failed to add %s to %s: %s", what, device, luks_strerror(r));
}

/* Adds a keyslot and its token; removes the keyslot again if the token
 * cannot be written, so a failed enroll leaves nothing behind. A TPM2
 * keyslot gets the proof of ownership (ownership.h). */
static int add_slot_and_token(struct crypt_device *cd, const LuksVolumeKey *vk, const char *pass, size_t pass_len,
                              const char *new_pass, size_t new_len, Tpm2Token *tpm2_token, int *ret_slot) {
        _cleanup_free_ char *json = NULL;
        int slot, r;

        slot = luks_keyslot_add(cd, pass, pass_len, new_pass, new_len, true);
        if (slot < 0)
                return slot;

        if (tpm2_token) {
                tpm2_token->keyslot = slot;
                tpm2_token->has_proof = true;
                r = ownership_proof(cd, vk, slot, tpm2_token->proof);
                if (r >= 0)
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

/* Removes a keyslot and then the tokens that referenced it: a crash in
 * between leaves tokens for no keyslot, never a TPM keyslot without its
 * token (which would look like a passphrase). */
static int wipe_keyslot(struct crypt_device *cd, int keyslot) {
        uint32_t tokens = 0;
        int r;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++)
                if (luks_token_json(cd, i) && crypt_token_is_assigned(cd, i, keyslot) == 0)
                        tokens |= 1u << i;
        r = luks_keyslot_destroy(cd, keyslot);
        if (r < 0)
                return r;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                bool others = false;

                if (!(tokens & (1u << i)))
                        continue;
                /* A token that still names other keyslots stays. */
                for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++)
                        if (crypt_token_is_assigned(cd, i, s) == 0)
                                others = true;
                if (!others)
                        (void) luks_token_remove(cd, i);
        }
        return 0;
}

/* Whether a TPM2 keyslot holds only a TPM secret, as far as unlockd can
 * prove it: a valid proof of ownership, or its token unseals now and the
 * secret opens it (then the proof is recorded). */
static bool tpm2_keyslot_proven(struct crypt_device *cd, const LuksVolumeKey *vk, Tpm2Context *tpm, int keyslot) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        const char *json;
        int token;

        if (ownership_proven(cd, vk, keyslot) > 0)
                return true;
        token = luks_keyslot_token(cd, keyslot, TOKEN_TYPE_TPM2, &json);
        if (!tpm || token < 0 || tpm2_token_parse(json, &t, NULL) < 0 || t->pin || t->unsupported ||
            t->keyslot != keyslot)
                return false;
        return token_opens(cd, vk, tpm, token, t);
}

/* What the credential that authorized the command is, by its form: a
 * recovery key (systemd's or secboot's) or a passphrase. */
static KeyslotKind credential_kind(const char *pass, size_t len) {
        _cleanup_secret_ char *key = NULL;
        uint8_t sb[SECBOOT_RECOVERY_KEY_BYTES];
        bool recovery;

        if (strnlen(pass, len) != len)
                return KEYSLOT_PASSPHRASE;
        recovery = recovery_key_normalize(pass, &key) == 0 || recovery_key_parse_secboot(pass, sb) == 0;
        explicit_bzero(sb, sizeof(sb));
        return recovery ? KEYSLOT_RECOVERY : KEYSLOT_PASSPHRASE;
}

/* Resolves --wipe-slot=. A number is the admin's own choice. A kind is
 * resolved against the header, which anyone may have written: "password"
 * and "recovery" select by token type, except for the keyslot the given
 * credential opened, whose kind is what the credential is (a forged token
 * cannot make a kind take it, nor hide it from its own kind); "tpm2" takes
 * only the TPM2 keyslots unlockd can prove hold nothing but a TPM secret.
 * The guard then counts only verified ways in. */
static int resolve_wipe(struct crypt_device *cd, const char *device, const LuksVolumeKey *vk, Tpm2Context *tpm,
                        KeyslotKind credential_kind, const char *spec, uint32_t *ret) {
        _cleanup_free_ char *copy = strdup(spec);
        uint32_t m = 0;
        char *save = NULL;

        if (!copy)
                return log_oom();
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                if (streq(w, "all") || streq(w, "password") || streq(w, "recovery") || streq(w, "tpm2")) {
                        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++) {
                                /* What the given passphrase opened is what
                                 * its form says, whatever the header says. */
                                KeyslotKind k = s == vk->keyslot ? credential_kind : keyslot_kind(cd, s);

                                if (k == KEYSLOT_UNUSED)
                                        continue;
                                if (streq(w, "all") || (streq(w, "password") && k == KEYSLOT_PASSPHRASE) ||
                                    (streq(w, "recovery") && k == KEYSLOT_RECOVERY))
                                        m |= 1u << s;
                                else if (streq(w, "tpm2") && k == KEYSLOT_TPM2) {
                                        if (tpm2_keyslot_proven(cd, vk, tpm, s))
                                                m |= 1u << s;
                                        else
                                                log_notice("Keyslot %d of %s has a TPM2 token, but unlockd cannot prove it holds "
                                                           "only a TPM secret (the header may say otherwise than it is): not "
                                                           "wiped. If you are sure, wipe it by number: --wipe-slot=%d.",
                                                           s, device, s);
                                }
                        }
                        continue;
                }
                unsigned n;
                if (parse_unsigned(w, LUKS2_KEYSLOTS_MAX - 1, &n) < 0)
                        return log_error_errno(EINVAL, "Invalid --wipe-slot= entry: %s", w);
                m |= 1u << n;
        }
        *ret = m;
        return 0;
}

typedef struct EnrollState {
        struct crypt_device *cd;
        const char *device;
        const char *pass;
        size_t pass_len;
        const EnrollOptions *o;
        LuksVolumeKey vk;               /* from pass */
        Tpm2Context *tpm;
        uint16_t bank;
        int current_token;              /* a TPM2 token like the one asked for, still valid: kept */
        int stale_token;                /* one like it whose policy the PCRs no longer satisfy: replaced */
        uint32_t keep;                  /* keyslots this command keeps or creates: never wiped */
        uint32_t wipe;                  /* keyslots to remove after enrolling */
} EnrollState;

/* Adds the keyslot for a sealed secret (its base64) and its token; the
 * command keeps it. Returns 0 or a logged negative errno. */
static int add_tpm2_slot(EnrollState *e, const void *secret, Tpm2Token *t, int *ret_slot) {
        _cleanup_secret_ char *b64 = NULL;
        int r;

        r = base64_encode(secret, UNLOCKD_SECRET_SIZE, true, &b64);
        if (r < 0)
                return log_oom();
        r = add_slot_and_token(e->cd, &e->vk, e->pass, e->pass_len, b64, (size_t) r, t, ret_slot);
        if (r == -EPERM)
                return log_error_errno(r, "The passphrase given does not unlock %s.", e->device);
        if (r < 0)
                return log_header_full(r, e->device, "the TPM2 keyslot");
        e->keep |= 1u << *ret_slot;
        return 0;
}

static int enroll_tpm2(EnrollState *e) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_(secret_freep) void *secret = NULL;
        const EnrollOptions *o = e->o;
        _cleanup_free_ char *pcrs = o->pcr_mask ? pcr_mask_to_string(o->pcr_mask) : strdup("none");
        int slot, r;

        if (e->current_token >= 0) {
                int keyslot = -1;
                (void) luks_token_get(e->cd, e->current_token, TOKEN_TYPE_TPM2, NULL, &keyslot);
                log_info("%s already has a TPM2 token (%d, keyslot %d) for PCR %s in the %s bank%s that the current "
                         "PCRs satisfy; it is kept, nothing to do.", e->device, e->current_token, keyslot, pcrs ?: "?",
                         pcr_bank_to_string(e->bank), o->pin ? " with a PIN" : "");
                return 0;
        }

        secret = secret_alloc(UNLOCKD_SECRET_SIZE);
        if (!secret)
                return log_oom();
        if (getrandom(secret, UNLOCKD_SECRET_SIZE, 0) != UNLOCKD_SECRET_SIZE)
                return log_error_errno(errno ?: EIO, "Failed to get random bytes: %m");

        r = tpm2_seal(e->tpm, &(Tpm2SealParams) {
                        .bank = e->bank,
                        .mask = o->pcr_mask,
                        .pin = o->pin,
                        .use_srk = o->use_srk,
                }, secret, UNLOCKD_SECRET_SIZE, &t);
        if (r < 0)
                return log_error_errno(r, "Failed to seal to the TPM: %s.", tpm2_strerror(r));
        r = add_tpm2_slot(e, secret, t, &slot);
        if (r < 0)
                return r;
        log_info("TPM2 token enrolled as keyslot %d (PCR %s, %s bank%s%s).", slot, pcrs ?: "?",
                 pcr_bank_to_string(e->bank), o->pin ? ", PIN" : "", t->srk ? ", persistent SRK" : "");
        return 0;
}

/* Seals without the TPM (design.md section 11): the sealed object is
 * wrapped for the SRK whose public key the image builder has, to the PCR
 * values it was given, and the TPM imports it at every unlock. Nothing can
 * check here that the TPM will unseal it: the values are the caller's word. */
static int enroll_tpm2_offline(EnrollState *e) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_(secret_freep) void *secret = NULL;
        _cleanup_free_ char *file = NULL, *error = NULL, *pcrs = NULL;
        _cleanup_free_ OfflineSrk *srk = NULL;
        const EnrollOptions *o = e->o;
        uint8_t auth[SHA256_DIGEST_SIZE];
        int auth_size = 0, slot, r;
        size_t file_size;

        r = read_file_regular(o->device_key, OFFLINE_SRK_FILE_MAX, &file, &file_size);
        if (r < 0)
                return log_error_errno(r, "Cannot read the SRK public key %s: %m", o->device_key);
        srk = malloc(sizeof(*srk));
        if (!srk)
                return log_oom();
        r = offline_srk_parse((const uint8_t *) file, file_size, srk, &error);
        if (r < 0)
                return log_error_errno(r, "%s is not an SRK public key unlockd can seal to: %s.", o->device_key,
                                       error ?: "malformed");

        t = calloc(1, sizeof(*t));
        secret = secret_alloc(UNLOCKD_SECRET_SIZE);
        if (!t || !secret)
                return log_oom();
        t->pcr_mask = o->pcr_mask;
        t->pcr_bank = e->bank;
        t->pin = !!o->pin;
        t->import_seed = true;
        /* As systemd records it: the SRK's algorithm (unused with tpm2_srk). */
        t->primary_alg = srk->type;
        t->policy_hash = malloc(SHA256_DIGEST_SIZE);
        t->policy_hash_size = SHA256_DIGEST_SIZE;
        if (o->pcr_values_size > 0) {
                t->sealed_pcr_values = malloc(o->pcr_values_size);
                if (!t->sealed_pcr_values)
                        return log_oom();
                memcpy(t->sealed_pcr_values, o->pcr_values, o->pcr_values_size);
                t->sealed_pcr_values_size = o->pcr_values_size;
        }
        if (!t->policy_hash)
                return log_oom();
        r = policy_digest_compute(e->bank, o->pcr_mask, o->pcr_values, o->pcr_values_size, t->pin, t->policy_hash);
        if (r < 0)
                return log_error_errno(r, "The PCR values do not fit the PCRs and bank given.");

        if (o->pin) {
                /* Salted, as systemd does for a PIN. */
                t->salt_size = 32;
                t->salt = malloc(t->salt_size);
                if (!t->salt)
                        return log_oom();
                if (getrandom(t->salt, t->salt_size, 0) != (ssize_t) t->salt_size)
                        return log_error_errno(errno ?: EIO, "Failed to get random bytes: %m");
                auth_size = tpm2_pin_auth_value(o->pin, t->salt, t->salt_size, auth);
                if (auth_size < 0)
                        return log_error_errno(auth_size, "Failed to derive the PIN's auth value.");
        }

        if (getrandom(secret, UNLOCKD_SECRET_SIZE, 0) != UNLOCKD_SECRET_SIZE)
                return log_error_errno(errno ?: EIO, "Failed to get random bytes: %m");
        r = offline_seal(srk, t->policy_hash, o->pin ? auth : NULL, (size_t) auth_size, secret, UNLOCKD_SECRET_SIZE,
                         &t->blob, &t->blob_size);
        explicit_bzero(auth, sizeof(auth));
        if (r >= 0)
                r = offline_srk_serialize(srk, OFFLINE_SRK_HANDLE, &t->srk, &t->srk_size);
        if (r < 0)
                return log_error_errno(r, "Failed to seal to %s: %m", o->device_key);
        r = add_tpm2_slot(e, secret, t, &slot);
        if (r < 0)
                return r;
        pcrs = o->pcr_mask ? pcr_mask_to_string(o->pcr_mask) : strdup("none");
        log_info("TPM2 token enrolled offline as keyslot %d (PCR %s, %s bank%s, for the %s SRK of %s at 0x%08x); "
                 "its TPM imports it at every unlock.", slot, pcrs ?: "?", pcr_bank_to_string(e->bank),
                 o->pin ? ", PIN" : "", srk->type == OFFLINE_ALG_RSA ? "RSA" : "ECC", o->device_key, OFFLINE_SRK_HANDLE);
        return 0;
}

/* After a new TPM2 token was written: the token it replaces goes, when the
 * ownership rule allows it; otherwise it stays, and the admin is told. */
static void replace_stale(EnrollState *e) {
        const char *why = NULL;
        int keyslot = -1, r;

        if (e->stale_token < 0 || e->current_token >= 0)
                return;
        if (luks_token_get(e->cd, e->stale_token, TOKEN_TYPE_TPM2, NULL, &keyslot) < 0 || keyslot < 0)
                return;
        if (e->wipe & (1u << keyslot))
                return; /* the wipe below takes it */
        r = ownership_may_remove(e->cd, &e->vk, keyslot, e->vk.keyslot, &why);
        if (r == -ENOKEY) {
                log_notice("TPM2 token %d (keyslot %d) no longer matches the current PCRs and stays: %s. If keyslot %d "
                           "holds only a TPM secret, remove it with 'unlockctl enroll --wipe-slot=%d %s'.",
                           e->stale_token, keyslot, why, keyslot, keyslot, e->device);
                return;
        }
        if (r < 0) {
                log_notice("TPM2 token %d (keyslot %d) no longer matches the current PCRs; the keyslot stays: %s.",
                           e->stale_token, keyslot, why ?: strerror(ERRNO_VALUE(r)));
                return;
        }
        r = wipe_keyslot(e->cd, keyslot);
        if (r < 0)
                log_warning_errno(r, "Failed to remove the replaced TPM2 keyslot %d: %m", keyslot);
        else
                log_info("Removed TPM2 token %d and keyslot %d, which the current PCRs no longer satisfy.",
                         e->stale_token, keyslot);
}

static int enroll_recovery(EnrollState *e) {
        _cleanup_secret_ char *key = NULL;
        _cleanup_free_ char *escrow = NULL;
        const EnrollOptions *o = e->o;
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

        r = add_slot_and_token(e->cd, &e->vk, e->pass, e->pass_len, key, strlen(key), NULL, &slot);
        if (r == -EPERM)
                return log_error_errno(r, "The passphrase given does not unlock %s.", e->device);
        if (r < 0)
                return log_header_full(r, e->device, "the recovery keyslot");
        e->keep |= 1u << slot;

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

static unsigned free_keyslots(struct crypt_device *cd) {
        unsigned n = 0;

        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++)
                if (crypt_keyslot_status(cd, s) == CRYPT_SLOT_INACTIVE)
                        n++;
        return n;
}

int enroll(struct crypt_device *cd, const char *device, const char *pass, size_t pass_len, const EnrollOptions *o) {
        EnrollState e = {
                .cd = cd, .device = device, .pass = pass, .pass_len = pass_len, .o = o,
                .vk = { .keyslot = -1 }, .current_token = -1, .stale_token = -1,
        };
        uint32_t typeable;
        unsigned needed;
        int r;

        r = luks_volume_key_get(cd, CRYPT_ANY_SLOT, pass, pass_len, &e.vk);
        if (r == -EPERM)
                return log_error_errno(r, "The passphrase given does not unlock %s.", device);
        if (r < 0)
                return log_error_errno(r, "Failed to check the passphrase on %s: %m", device);

        if (o->tpm2 && o->device_key) {
                /* Offline: no TPM, nothing on the header to compare with. */
                e.bank = o->pcr_bank ?: PCR_BANK_SHA256;
        } else if (o->tpm2) {
                r = tpm2_context_new(o->tcti, &e.tpm);
                if (r < 0) {
                        log_error_errno(r, "Cannot open the TPM%s%s: %m", o->tcti ? " " : "", o->tcti ?: "");
                        goto finish;
                }
                e.bank = o->pcr_bank;
                if (e.bank == 0) {
                        r = tpm2_pick_bank(e.tpm, o->pcr_mask, &e.bank);
                        if (r < 0) {
                                log_error_errno(r, "Cannot find an allocated PCR bank: %m");
                                goto finish;
                        }
                }
                r = find_same_tpm2(cd, &e.vk, e.tpm, o->pcr_mask, e.bank, !!o->pin, &e.current_token, &e.stale_token);
                if (r < 0) {
                        log_error_errno(r, "Cannot read the PCRs: %s", tpm2_strerror(r));
                        goto finish;
                }
                if (e.current_token >= 0) {
                        int keyslot = -1;
                        (void) luks_token_get(cd, e.current_token, TOKEN_TYPE_TPM2, NULL, &keyslot);
                        if (keyslot >= 0)
                                e.keep |= 1u << keyslot;
                }
        }

        if (o->wipe) {
                if (!e.tpm && !o->device_key) {
                        r = tpm2_context_new(o->tcti, &e.tpm);
                        if (r < 0)
                                log_debug_errno(r, "No TPM to check TPM2 keyslots with: %m");
                }
                r = resolve_wipe(cd, device, &e.vk, e.tpm, credential_kind(pass, pass_len), o->wipe, &e.wipe);
                if (r < 0)
                        goto finish;
        }

        /* Check the wipe first: a TPM change must never mean data loss.
         * What counts is a way in that unlockctl has verified and that
         * stays: the keyslot the given passphrase opened, or a recovery key
         * this command enrolls. The header's word counts for nothing here
         * (a keyslot without a token may be a half-enrolled TPM keyslot, or
         * one nobody can open). */
        typeable = (e.vk.keyslot >= 0 ? 1u << e.vk.keyslot : 0) & ~(e.wipe & ~e.keep);
        if ((e.wipe & ~e.keep) != 0 && typeable == 0 && !o->recovery_key && !o->force) {
                r = log_error_errno(EPERM, "Refusing to leave %s with no passphrase or recovery key: "
                                    "a TPM or firmware change would make it unopenable. The keyslot the given "
                                    "passphrase opened (%d) is among those to wipe, and no other can be checked "
                                    "(the header is not authenticated). Authenticate with a passphrase or recovery "
                                    "key that stays, add --recovery-key, or use --force to do it anyway.",
                                    device, e.vk.keyslot);
                goto finish;
        }
        needed = !!o->recovery_key + (o->tpm2 && e.current_token < 0);
        if (needed > free_keyslots(cd)) {
                r = log_header_full(-EXFULL, device, needed > 1 ? "the new keyslots" : "a keyslot");
                goto finish;
        }

        if (o->recovery_key) {
                r = enroll_recovery(&e);
                if (r < 0)
                        goto finish;
        }
        if (o->tpm2) {
                r = o->device_key ? enroll_tpm2_offline(&e) : enroll_tpm2(&e);
                if (r < 0)
                        goto finish;
                replace_stale(&e);
        }

        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++) {
                if (!(e.wipe & (1u << s)) || !luks_keyslot_active(cd, s))
                        continue;
                if (e.keep & (1u << s)) {
                        log_notice("Keyslot %d is not wiped: this command keeps it or just created it.", s);
                        continue;
                }
                r = wipe_keyslot(cd, s);
                if (r < 0) {
                        log_error_errno(r, "Failed to wipe keyslot %d: %s", s, luks_strerror(r));
                        goto finish;
                }
                log_info("Wiped keyslot %d.", s);
        }
        r = 0;
finish:
        tpm2_context_free(e.tpm);
        luks_volume_key_done(&e.vk);
        return r;
}
