/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "luks.h"
#include "macro.h"
#include "tpm2.h"

/* The unlock path shared by unlockd and unlockctl: try every TPM2 token of a
 * volume, record a clear outcome for each, and open the volume with a typed
 * key when asked. */

typedef enum UnlockMethod {
        UNLOCK_METHOD_NONE,
        UNLOCK_METHOD_TPM2,
        UNLOCK_METHOD_RECOVERY_KEY,
        UNLOCK_METHOD_PASSPHRASE,
        UNLOCK_METHOD_ALREADY_ACTIVE,
} UnlockMethod;

typedef enum TokenResult {
        TOKEN_OPENED,
        TOKEN_PCR_MISMATCH,
        TOKEN_NO_TPM,
        TOKEN_LOCKOUT,
        TOKEN_PIN_WRONG,
        TOKEN_PIN_REQUIRED,
        TOKEN_UNSUPPORTED,
        TOKEN_MALFORMED,
        TOKEN_KEYSLOT_REJECTED,         /* unsealed, but the keyslot did not take it */
        TOKEN_SIGNATURE_MISSING,        /* signed PCR policy: no signature for the PCRs as they are */
        TOKEN_SIGNATURE_REJECTED,       /* signed PCR policy: the TPM refused the signature */
        TOKEN_FAILED,
        _TOKEN_RESULT_MAX,
} TokenResult;

typedef struct TokenOutcome {
        int token;
        int keyslot;                    /* -1 when unknown */
        TokenResult result;
        char *detail;                   /* a sentence; never secret */
        uint16_t bank;
        uint32_t pcr_mask;
        uint32_t pcrs_changed;          /* PCRs whose values differ from sealing time */
        bool pcrs_known;                /* pcrs_changed is meaningful */
} TokenOutcome;

typedef struct Volume {
        char *device;
        char *uuid;
        char *name;                     /* device-mapper name */
        bool opened;
        UnlockMethod method;
        int token;                      /* token that opened it, or -1 */
        int keyslot;                    /* keyslot that opened it, or -1 */
        TokenOutcome outcomes[LUKS2_TOKENS_MAX];
        size_t n_outcomes;
        bool drill;                     /* a recovery drill: the TPM was not asked (see drill.h) */
        /* After a TPM unlock: the other TPM2 tokens of the same keyslot
         * that the booted system retires (predict.h's preseal_retire()):
         * the predictions that were not for this boot, or, when a
         * prediction opened, the token it was made from. Each with the
         * SHA-256 of its JSON, so that only that very token goes. */
        struct {
                int token;
                uint8_t json_sha256[32];
        } retire[LUKS2_TOKENS_MAX];
        size_t n_retire;
        char *reseal;                   /* re-seal status: queued, none, disabled, failed: … (NULL: n/a) */
        char *error;                    /* why the volume is not open, when it is not */
        char *credential;               /* what opened keyslot (secret buffer), for the re-seal */
        size_t credential_len;
        LuksVolumeKey vk;               /* recovered with the credential on first need */
} Volume;

typedef struct UnlockOptions {
        const char *tcti;               /* NULL: default device */
        bool test;                      /* verify only, no activation */
        bool prompt;                    /* may ask for PINs */
        const char *pin;                /* the PIN for every PIN token ($PIN); NULL: ask */
        uint32_t activate_flags;        /* CRYPT_ACTIVATE_* */
        char *const *consoles;          /* where to ask for a PIN (NULL: active consoles) */
        int ask_password;               /* see PromptOptions */
        void (*alive)(void *userdata);  /* see PromptOptions */
        uint64_t timeout_usec;          /* recovery prompt: give up after (0: never) */
        unsigned tries;                 /* recovery prompt: wrong answers allowed (0: unlimited) */
        bool reseal;                    /* queue a re-seal after a manual unlock */
        const char *state_dir;          /* where re-seal jobs go */
} UnlockOptions;

#define UNLOCK_PIN_TRIES 3

typedef struct Unlocker {
        UnlockOptions opts;
        Tpm2Context *tpm;               /* opened on first use */
        int tpm_error;                  /* why it could not be opened */
} Unlocker;

void unlocker_done(Unlocker *u);
void volume_done(Volume *v);

/* Opens (once) and returns the TPM, or a negative errno (-ENODEV: none). */
int unlocker_tpm(Unlocker *u, Tpm2Context **ret);

/* Tries the systemd-tpm2 tokens of the volume. With more than one, the PCRs
 * are read once and the tokens whose recorded values (unlockd-pcr-values)
 * are the current ones go first, then those that record none; a token
 * whose recorded values differ is not sent to the TPM (its outcome says
 * which PCRs changed). Returns 0 when one opened it (v->opened, method,
 * token, keyslot, retire set); -ENOENT when no token did (every
 * attempt recorded in v->outcomes); other negative errno on failure. */
int unlock_volume_tpm2(Unlocker *u, struct crypt_device *cd, Volume *v);

/* Opens the volume with what a person typed: as a systemd recovery key
 * (normalized), as a secboot recovery key, and as typed. Returns 0 when it
 * opened (method recovery-key or passphrase, keyslot set, v->credential the
 * passphrase in the form that opened the keyslot); -EPERM when nothing
 * took it. */
int unlock_volume_with_input(Unlocker *u, struct crypt_device *cd, Volume *v, const char *input);

/* The boot policy for one volume: already active, else a pending recovery
 * drill (the flag removed before asking, the TPM not asked, the outcome
 * recorded in the header; no re-seal, no keyslot touched), else every TPM2
 * token, else (unless prompting is off) the recovery prompt and a re-seal job;
 * orphaned re-seal keyslots are cleaned where the volume key proves them;
 * a TPM2 token that opened the volume without a proof of ownership gets
 * one. v is initialized here. Returns 0 when the volume is open, negative
 * errno (v->error says why). Logs. */
int unlock_volume(Unlocker *u, const char *device, const char *name, bool reseal, Volume *v);

/* The volume key of an opened volume, recovered once with the credential
 * that opened it. Returns 0 with *ret, or negative errno. */
int unlock_volume_key(struct crypt_device *cd, Volume *v, const LuksVolumeKey **ret);

/* Opens the keyslot with a passphrase: activation as v->name, or with
 * opts.test a volume key check. Returns the keyslot or negative errno. */
int unlock_open_keyslot(Unlocker *u, struct crypt_device *cd, Volume *v, int keyslot,
                        const char *pass, size_t len);

const char *unlock_method_to_string(UnlockMethod m);
const char *token_result_to_string(TokenResult r);

/* A sentence for the admin saying why the TPM did not open the volume,
 * built from the outcomes (malloc()ed). */
char *volume_failure_summary(const Volume *v);

/* The documented JSON shape of a volume's outcome (see README). */
json_object *volume_to_json(const Volume *v);

/* {"volumes":[…]} of n volumes, as state.json and --json print it. */
json_object *volumes_to_json(const Volume *v, size_t n);
