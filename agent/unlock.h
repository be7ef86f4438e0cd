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
        char *reseal;                   /* re-seal status: queued, none, disabled, failed: … (NULL: n/a) */
        char *error;                    /* why the volume is not open, when it is not */
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

/* Tries every systemd-tpm2 token of the volume. Returns 0 when one opened it
 * (v->opened, method, token, keyslot set); -ENOENT when no token did (every
 * attempt recorded in v->outcomes); other negative errno on failure. */
int unlock_volume_tpm2(Unlocker *u, struct crypt_device *cd, Volume *v);

/* Opens the volume with what a person typed: as a systemd recovery key
 * (normalized), as a secboot recovery key, and as typed. Returns 0 when it
 * opened (method recovery-key or passphrase, keyslot set), with
 * *ret_pass and *ret_len (optional) the passphrase in the form that opened the
 * keyslot (secret buffer); -EPERM when nothing took it. */
int unlock_volume_with_input(Unlocker *u, struct crypt_device *cd, Volume *v, const char *input,
                             char **ret_pass, size_t *ret_len);

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
