/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The initrd's side of the re-seal (reseal.h, steps 1–3): after a manual
 * unlock, a new keyslot for a fresh secret, its marker with the proof, the
 * secret in the keyring, the job file. */
#include <assert.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "encoding.h"
#include "fileio.h"
#include "keyring.h"
#include "log.h"
#include "ownership.h"
#include "pcr.h"
#include "reseal.h"
#include "secret.h"
#include "token.h"
#include "tpm2.h"

/* The tokens to replace: those the TPM refused because the PCRs changed, of
 * one policy. PIN tokens are left alone: the booted system does not have
 * the PIN to seal a new one. */
static int collect_stale(struct crypt_device *cd, const Volume *v, ResealJob *j) {
        for (size_t i = 0; i < v->n_outcomes; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const TokenOutcome *o = &v->outcomes[i];
                ResealStale *st;
                const char *tj;
                int r;

                if (o->result != TOKEN_PCR_MISMATCH)
                        continue;
                if (luks_token_get(cd, o->token, TOKEN_TYPE_TPM2, &tj, NULL) < 0 || tpm2_token_parse(tj, &t, NULL) < 0)
                        continue;
                /* A signed PCR policy is renewed by signing, not by a re-seal
                 * to literal values (which would drop it). */
                if (t->pubkey)
                        continue;
                if (t->pin) {
                        log_notice("TPM2 token %d of %s has a PIN; it is not re-sealed automatically "
                                   "(re-enroll it with 'unlockctl enroll --tpm2 --pin').", o->token, v->device);
                        continue;
                }
                if (j->n_stale >= RESEAL_STALE_MAX)
                        break;
                if (j->n_stale == 0) {
                        j->pcr_bank = t->pcr_bank ?: PCR_BANK_SHA256;
                        j->pcr_mask = t->pcr_mask;
                } else if (t->pcr_mask != j->pcr_mask || (t->pcr_bank ?: PCR_BANK_SHA256) != j->pcr_bank)
                        continue; /* one job re-seals one policy */
                st = &j->stale[j->n_stale];
                st->token = o->token;
                st->keyslot = t->keyslot;
                SHA256(t->blob, t->blob_size, st->blob_sha256);
                r = luks_keyslot_salt(cd, t->keyslot, &st->salt);
                if (r < 0)
                        return log_debug_errno(r, "Cannot identify keyslot %d: %m", t->keyslot);
                j->n_stale++;
        }
        return 0;
}

/* Adds keyslot N for base64(secret) and its pending marker, with the proof
 * of ownership; *ret_vk is the volume key, recovered through N. On failure
 * nothing is left behind. */
static int add_pending_keyslot(struct crypt_device *cd, const Volume *v, ResealJob *j, const uint8_t *secret,
                               LuksVolumeKey *ret_vk) {
        _cleanup_secret_ char *b64 = NULL;
        _cleanup_free_ char *marker = NULL;
        PendingToken p = {};
        int slot, r;

        r = base64_encode(secret, UNLOCKD_SECRET_SIZE, true, &b64);
        if (r < 0)
                return r;
        slot = luks_keyslot_add(cd, v->credential, v->credential_len, b64, (size_t) r, true);
        if (slot < 0)
                return log_debug_errno(slot, "Failed to add the re-seal keyslot: %m");
        /* The new keyslot uses the fast KDF: the cheap way to the volume
         * key, whatever KDF the typed credential's keyslot has. */
        r = luks_volume_key_get(cd, slot, b64, strlen(b64), ret_vk);
        if (r >= 0) {
                j->keyslot = slot;
                j->generation = reseal_max_generation(cd, ret_vk) + 1;
                if (j->generation > TOKEN_GENERATION_MAX)
                        r = -EOVERFLOW;
        }
        if (r >= 0) {
                p = (PendingToken) { .keyslot = slot, .generation = j->generation, .has_proof = true };
                r = ownership_proof(cd, ret_vk, slot, p.proof);
        }
        if (r >= 0)
                r = pending_token_format(&p, &marker);
        if (r >= 0)
                r = luks_token_add(cd, marker);
        if (r < 0) {
                luks_volume_key_done(ret_vk);
                (void) luks_keyslot_destroy(cd, slot);
                return log_debug_errno(r, "Failed to mark the re-seal keyslot: %m");
        }
        return 0;
}

int reseal_queue(Unlocker *u, struct crypt_device *cd, Volume *v, const char *state_dir) {
        _cleanup_(reseal_job_freep) ResealJob *j = NULL;
        _cleanup_(luks_volume_key_done) LuksVolumeKey vk = { .keyslot = -1 };
        _cleanup_free_ char *desc = NULL, *path = NULL, *json = NULL, *dir = NULL;
        _cleanup_(secret_freep) void *secret = NULL;
        Tpm2Context *tpm;
        int r;

        assert(u);
        assert(cd);
        assert(v);
        assert(state_dir);

        if (!v->credential)
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        r = collect_stale(cd, v, j);
        if (r < 0)
                return r;
        if (j->n_stale == 0)
                return 0;

        r = unlocker_tpm(u, &tpm);
        if (r < 0)
                return log_debug_errno(r, "No TPM to read the PCRs from: %m");
        /* The PCR values here, at the unseal point, are what the next boot
         * will show; the booted system's later values may differ. */
        r = tpm2_pcr_read(tpm, j->pcr_bank, j->pcr_mask, &j->pcr_values, &j->pcr_values_size);
        if (r < 0)
                return log_debug_errno(r, "Failed to read the PCRs: %m");

        j->uuid = strdup(v->uuid);
        j->device = strdup(v->device);
        j->method = strdup(unlock_method_to_string(v->method));
        j->opened_keyslot = v->keyslot;
        desc = reseal_key_description(v->uuid);
        path = reseal_job_path(state_dir, v->uuid);
        if (asprintf(&dir, "%s/reseal", state_dir) < 0)
                dir = NULL;
        if (!j->uuid || !j->device || !j->method || !desc || !path || !dir)
                return -ENOMEM;

        secret = secret_alloc(UNLOCKD_SECRET_SIZE);
        if (!secret)
                return -ENOMEM;
        if (getrandom(secret, UNLOCKD_SECRET_SIZE, 0) != UNLOCKD_SECRET_SIZE)
                return -EIO;

        r = add_pending_keyslot(cd, v, j, secret, &vk);
        if (r < 0)
                return r;
        r = keyring_store(desc, secret, UNLOCKD_SECRET_SIZE, KEYRING_RESEAL_TIMEOUT_SEC);
        if (r >= 0)
                r = reseal_job_format(j, &json);
        if (r >= 0)
                r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = write_file_atomic(path, json, strlen(json), 0600);
        if (r < 0) {
                /* Leave nothing behind: the keyslot first (libcryptsetup
                 * unassigns it from the marker), then the marker. */
                int ptok = reseal_find_token(cd, TOKEN_TYPE_PENDING, j->keyslot, j->generation);
                (void) keyring_drop(desc);
                (void) luks_keyslot_destroy(cd, j->keyslot);
                if (ptok >= 0)
                        (void) luks_token_remove(cd, ptok);
                return log_debug_errno(r, "Failed to queue the re-seal job: %m");
        }
        log_debug("Queued re-seal job %s: keyslot %d, generation %llu.", path, j->keyslot,
                  (unsigned long long) j->generation);

        /* Pending keyslots of earlier boots whose job never finished. */
        (void) reseal_clean_orphans(cd, &vk, v->keyslot, state_dir);
        return 1;
}

