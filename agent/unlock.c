/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill.h"
#include "encoding.h"
#include "eventlog.h"
#include "log.h"
#include "ownership.h"
#include "reseal.h"
#include "strutil.h"
#include "pcr.h"
#include "prompt.h"
#include "recovery-key.h"
#include "secret.h"
#include "token.h"
#include "tpm2-tss-quirks.h"
#include "unlock.h"

static const char *const token_result_names[_TOKEN_RESULT_MAX] = {
        [TOKEN_OPENED] = "opened",
        [TOKEN_PCR_MISMATCH] = "pcr-mismatch",
        [TOKEN_NO_TPM] = "no-tpm",
        [TOKEN_LOCKOUT] = "lockout",
        [TOKEN_PIN_WRONG] = "pin-wrong",
        [TOKEN_PIN_REQUIRED] = "pin-required",
        [TOKEN_UNSUPPORTED] = "unsupported",
        [TOKEN_MALFORMED] = "malformed",
        [TOKEN_KEYSLOT_REJECTED] = "keyslot-rejected",
        [TOKEN_SIGNATURE_MISSING] = "signature-missing",
        [TOKEN_SIGNATURE_REJECTED] = "signature-rejected",
        [TOKEN_FAILED] = "failed",
};

const char *token_result_to_string(TokenResult r) {
        return r >= 0 && r < _TOKEN_RESULT_MAX ? token_result_names[r] : NULL;
}

const char *unlock_method_to_string(UnlockMethod m) {
        switch (m) {
        case UNLOCK_METHOD_NONE:
                return "none";
        case UNLOCK_METHOD_TPM2:
                return "tpm2";
        case UNLOCK_METHOD_RECOVERY_KEY:
                return "recovery-key";
        case UNLOCK_METHOD_PASSPHRASE:
                return "passphrase";
        case UNLOCK_METHOD_ALREADY_ACTIVE:
                return "already-active";
        }
        return NULL;
}

void unlocker_done(Unlocker *u) {
        u->tpm = tpm2_context_free(u->tpm);
}

void volume_done(Volume *v) {
        free(v->device);
        free(v->uuid);
        free(v->name);
        free(v->reseal);
        free(v->error);
        for (size_t i = 0; i < v->n_outcomes; i++)
                free(v->outcomes[i].detail);
        secret_free(v->credential);
        luks_volume_key_done(&v->vk);
        *v = (Volume) { .token = -1, .keyslot = -1, .vk.keyslot = -1 };
}

int unlocker_tpm(Unlocker *u, Tpm2Context **ret) {
        int r;

        if (u->tpm) {
                *ret = u->tpm;
                return 0;
        }
        if (u->tpm_error != 0)
                return u->tpm_error;
        r = tpm2_context_new(u->opts.tcti, &u->tpm);
        if (r < 0) {
                u->tpm_error = r;
                return r;
        }
        *ret = u->tpm;
        return 0;
}

int unlock_open_keyslot(Unlocker *u, struct crypt_device *cd, Volume *v, int keyslot,
                        const char *pass, size_t len) {
        if (u->opts.test) {
                /* The check recovers the volume key anyway: keep it for
                 * what may need it after (proofs of ownership). */
                if (!v->vk.data)
                        return luks_volume_key_get(cd, keyslot, pass, len, &v->vk);
                return luks_check_passphrase(cd, keyslot, pass, len);
        }
        return luks_activate(cd, v->name, keyslot, pass, len, u->opts.activate_flags);
}

static TokenOutcome *outcome_new(Volume *v, int token) {
        TokenOutcome *o;

        if (v->n_outcomes >= ELEMENTSOF(v->outcomes))
                return NULL;
        o = &v->outcomes[v->n_outcomes++];
        *o = (TokenOutcome) { .token = token, .keyslot = -1, .result = TOKEN_FAILED };
        return o;
}

/* The PCR values of token t now, as read into now[bank] (index order, the
 * bank's digest size each): 1 when they are the recorded ones, 0 when not
 * (*ret_changed the PCRs that differ), -ENODATA when t records none or the
 * bank was not read. */
typedef struct PcrSnapshot {
        uint16_t bank;
        uint8_t values[PCR_MAX][EVENTLOG_DIGEST_MAX];
        bool read;
} PcrSnapshot;

static int token_matches_now(const Tpm2Token *t, const PcrSnapshot *snap, size_t n_snap, uint32_t *ret_changed) {
        uint16_t bank = t->pcr_bank ?: PCR_BANK_SHA256;
        size_t dsize = pcr_bank_digest_size(bank);
        uint32_t changed = 0;
        unsigned pos = 0;

        if (!t->sealed_pcr_values || dsize == 0 || t->sealed_pcr_values_size != pcr_mask_count(t->pcr_mask) * dsize)
                return -ENODATA;
        for (size_t k = 0; k < n_snap; k++) {
                if (snap[k].bank != bank || !snap[k].read)
                        continue;
                for (unsigned i = 0; i < PCR_MAX; i++) {
                        if (!(t->pcr_mask & (1u << i)))
                                continue;
                        if (memcmp(snap[k].values[i], t->sealed_pcr_values + pos * dsize, dsize) != 0)
                                changed |= 1u << i;
                        pos++;
                }
                if (ret_changed)
                        *ret_changed = changed;
                return changed == 0;
        }
        return -ENODATA;
}

/* Reads PCRs mask of bank into snap (snap->read tells whether it worked). */
static void pcr_snapshot_read(Tpm2Context *tpm, uint16_t bank, uint32_t mask, PcrSnapshot *snap) {
        _cleanup_free_ uint8_t *values = NULL;
        size_t n, pos = 0, dsize = pcr_bank_digest_size(bank);

        *snap = (PcrSnapshot) { .bank = bank };
        if (mask == 0 || dsize == 0 || dsize > EVENTLOG_DIGEST_MAX ||
            tpm2_pcr_read(tpm, bank, mask, &values, &n) < 0 || n != pcr_mask_count(mask) * dsize)
                return;
        for (unsigned p = 0; p < PCR_MAX; p++)
                if (mask & (1u << p))
                        memcpy(snap->values[p], values + dsize * pos++, dsize);
        snap->read = true;
}

/* Which PCRs differ now from the values recorded at sealing time. */
static void diagnose_pcrs(Tpm2Context *tpm, const Tpm2Token *t, TokenOutcome *o) {
        PcrSnapshot snap;
        uint32_t changed = 0;

        if (!t->sealed_pcr_values)
                return;
        pcr_snapshot_read(tpm, o->bank, t->pcr_mask, &snap);
        if (token_matches_now(t, &snap, 1, &changed) < 0)
                return;
        o->pcrs_changed = changed;
        o->pcrs_known = true;
}

typedef struct PinContext {
        Tpm2Context *tpm;
        const Tpm2Token *token;
        void *secret;
        size_t secret_size;
        int error;                      /* the TPM's last answer */
} PinContext;

static int pin_check(const char *pin, void *userdata) {
        PinContext *p = userdata;
        int r;

        if (!*pin)
                return -EPERM;
        r = tpm2_unseal(p->tpm, p->token, pin, &p->secret, &p->secret_size);
        p->error = r;
        if (r == -EACCES)
                return -EPERM;          /* wrong PIN: ask again (bounded) */
        return r;                       /* 0, or lockout/PCR mismatch/…: stop at once */
}

/* Unseals a PIN token: the PIN from the options ($PIN), else asked (bounded
 * tries, on the same consoles or agents as the recovery prompt). */
static int unseal_with_pin(Unlocker *u, Tpm2Context *tpm, const Volume *v, int token, const Tpm2Token *t,
                           void **ret_secret, size_t *ret_size) {
        _cleanup_free_ char *msg = NULL, *id = NULL;
        PinContext p = { .tpm = tpm, .token = t };
        int r;

        if (u->opts.pin)
                return tpm2_unseal(tpm, t, u->opts.pin, ret_secret, ret_size);
        if (!u->opts.prompt)
                return -ENOKEY;
        if (asprintf(&msg, "TPM2 token %d of %s (%s) is protected by a PIN.", token, v->device, v->uuid ?: "") < 0 ||
            asprintf(&id, "unlockd-pin:%s", v->device) < 0)
                return -ENOMEM;
        r = prompt_ask_check(&(PromptOptions) {
                        .message = msg,
                        .prompt = "TPM2 PIN",
                        .id = id,
                        .consoles = u->opts.consoles,
                        .ask_password = u->opts.ask_password,
                        .max_tries = UNLOCK_PIN_TRIES,
                        .alive = u->opts.alive,
                }, pin_check, &p);
        if (r == 0) {
                *ret_secret = p.secret;
                *ret_size = p.secret_size;
                return 0;
        }
        if (r == -EDQUOT)
                return -EACCES;
        if (p.error < 0 && p.error != -EACCES)
                return p.error;
        return r == -ETIME || r == -EPIPE || r == -ENXIO || r == -ECANCELED ? -ENOKEY : r;
}

/* One systemd-tpm2 token. Returns 0 when it opened the volume. */
static int try_token(Unlocker *u, struct crypt_device *cd, Volume *v, int token, const char *json) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_secret_ char *pass = NULL;
        void *secret = NULL;
        size_t secret_size = 0;
        Tpm2Context *tpm;
        TokenOutcome *o;
        int r;

        o = outcome_new(v, token);
        if (!o)
                return -E2BIG;

        r = tpm2_token_parse(json, &t, &error);
        if (r < 0) {
                o->result = TOKEN_MALFORMED;
                free_and_printf(&o->detail, "token %d is malformed: %s", token, error ?: "unreadable");
                return r;
        }
        o->keyslot = t->keyslot;
        o->bank = t->pcr_bank ?: PCR_BANK_SHA256;
        o->pcr_mask = t->pcr_mask;
        if (t->unsupported) {
                o->result = TOKEN_UNSUPPORTED;
                free_and_printf(&o->detail, "token %d uses %s, which is not supported", token, t->unsupported);
                return -EOPNOTSUPP;
        }
        if (!luks_keyslot_active(cd, t->keyslot)) {
                o->result = TOKEN_MALFORMED;
                free_and_printf(&o->detail, "token %d refers to keyslot %d, which is not in use", token, t->keyslot);
                return -EBADMSG;
        }

        r = unlocker_tpm(u, &tpm);
        if (r < 0) {
                o->result = TOKEN_NO_TPM;
                free_and_printf(&o->detail, "no TPM found");
                return r;
        }

        if (t->pin)
                r = unseal_with_pin(u, tpm, v, token, t, &secret, &secret_size);
        else
                r = tpm2_unseal(tpm, t, NULL, &secret, &secret_size);
        switch (r) {
        case -ENOKEY:
                o->result = TOKEN_PIN_REQUIRED;
                free_and_printf(&o->detail, "token %d needs a PIN and none was given", token);
                return r;
        case 0:
                break;
        case -ESTALE:
                o->result = TOKEN_PCR_MISMATCH;
                /* Only the literal PCRs (tpm2-pcrs) have recorded values;
                 * the signed ones (tpm2_pubkey_pcrs) are the signature's
                 * business, and the signature matched. */
                diagnose_pcrs(tpm, t, o);
                if (o->pcrs_known && o->pcrs_changed) {
                        _cleanup_free_ char *s = pcr_mask_to_string(o->pcrs_changed);
                        free_and_printf(&o->detail, "PCR %s changed since sealing", s ?: "?");
                } else if (t->pubkey) {
                        _cleanup_free_ char *s = pcr_mask_to_string(t->pcr_mask),
                                            *sp = pcr_mask_to_string(t->pubkey_pcr_mask);
                        free_and_printf(&o->detail, "PCR policy (signed PCR %s%s%s) not satisfied", sp ?: "?",
                                        t->pcr_mask ? ", PCR " : "", t->pcr_mask ? s ?: "?" : "");
                } else {
                        _cleanup_free_ char *s = pcr_mask_to_string(t->pcr_mask);
                        free_and_printf(&o->detail, "PCR policy (PCR %s) not satisfied", s ?: "?");
                }
                return r;
        case -ENOMSG: {
                _cleanup_free_ char *sp = pcr_mask_to_string(t->pubkey_pcr_mask);
                const char *path = tpm2_pcr_signature_path(tpm);

                o->result = TOKEN_SIGNATURE_MISSING;
                if (path)
                        free_and_printf(&o->detail,
                                        "signed PCR policy: %s has no signature for PCR %s (%s) as it is now",
                                        path, sp ?: "?", pcr_bank_to_string(o->bank) ?: "?");
                else
                        free_and_printf(&o->detail,
                                        "signed PCR policy: no signature file (tpm2-pcr-signature.json in /.extra, "
                                        "/run/systemd, /etc/systemd, /usr/lib/systemd)");
                return r;
        }
        case -EKEYREJECTED:
                o->result = TOKEN_SIGNATURE_REJECTED;
                free_and_printf(&o->detail, "signed PCR policy: the signature in %s does not verify with the token's key",
                                tpm2_pcr_signature_path(tpm) ?: "?");
                return r;
        case -ENOLCK:
                o->result = TOKEN_LOCKOUT;
                free_and_printf(&o->detail, "the TPM is in dictionary-attack lockout");
                return r;
        case -EACCES:
                o->result = TOKEN_PIN_WRONG;
                free_and_printf(&o->detail, "wrong PIN");
                return r;
        case -ENODEV:
                o->result = TOKEN_NO_TPM;
                free_and_printf(&o->detail, "the TPM stopped answering");
                return r;
        case -EOPNOTSUPP:
                o->result = TOKEN_UNSUPPORTED;
                free_and_printf(&o->detail, "%s", tpm2_strerror(r));
                return r;
        case -EBADMSG:
                o->result = TOKEN_MALFORMED;
                free_and_printf(&o->detail, "%s", tpm2_strerror(r));
                return r;
        default:
                o->result = TOKEN_FAILED;
                free_and_printf(&o->detail, "%s (%s)", tpm2_strerror(r), strerror(ERRNO_VALUE(r)));
                return r;
        }

        /* The keyslot passphrase is base64 of the unsealed secret. */
        r = base64_encode(secret, secret_size, true, &pass);
        secret = secret_free(secret);
        if (r < 0)
                return r;

        r = unlock_open_keyslot(u, cd, v, t->keyslot, pass, (size_t) r);
        if (r < 0) {
                o->result = TOKEN_KEYSLOT_REJECTED;
                free_and_printf(&o->detail, "keyslot %d did not accept the unsealed secret (%s)", t->keyslot,
                               strerror(ERRNO_VALUE(r)));
                return r;
        }

        o->result = TOKEN_OPENED;
        v->opened = true;
        v->method = UNLOCK_METHOD_TPM2;
        v->token = token;
        v->keyslot = r;
        v->credential_len = strlen(pass);
        v->credential = TAKE_PTR(pass);
        return 0;
}

/* One PCR read per bank the tokens use, of the PCRs any of them uses. */
static void read_pcrs(Unlocker *u, Tpm2Token **tokens, PcrSnapshot *snap, size_t *n_snap) {
        Tpm2Context *tpm;

        if (unlocker_tpm(u, &tpm) < 0)
                return;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                uint16_t bank;
                uint32_t mask = 0;
                size_t k;

                if (!tokens[i] || !tokens[i]->sealed_pcr_values)
                        continue;
                bank = tokens[i]->pcr_bank ?: PCR_BANK_SHA256;
                for (k = 0; k < *n_snap; k++)
                        if (snap[k].bank == bank)
                                break;
                if (k < *n_snap || *n_snap >= 4)
                        continue;
                for (int j = 0; j < LUKS2_TOKENS_MAX; j++)
                        if (tokens[j] && (tokens[j]->pcr_bank ?: PCR_BANK_SHA256) == bank)
                                mask |= tokens[j]->pcr_mask;
                pcr_snapshot_read(tpm, bank, mask, &snap[(*n_snap)++]);
        }
}

/* After token opened: which other tokens of its keyslot the booted system
 * retires (see Volume.retire). Only tokens whose recorded values differ
 * from the opener's in the same bank and PCRs: a token for this very boot
 * stays, and so does one sealed to other PCRs. */
static void note_retirements(struct crypt_device *cd, Volume *v, Tpm2Token **tokens) {
        const Tpm2Token *o = tokens[v->token];

        if (!o || !o->sealed_pcr_values)
                return;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                const Tpm2Token *t = tokens[i];
                const char *json;
                unsigned len;

                if (i == v->token || !t || t->keyslot != o->keyslot || !(t->predicted || o->predicted))
                        continue;
                if (!t->sealed_pcr_values || t->pcr_bank != o->pcr_bank || t->pcr_mask != o->pcr_mask ||
                    (t->sealed_pcr_values_size == o->sealed_pcr_values_size &&
                     memcmp(t->sealed_pcr_values, o->sealed_pcr_values, t->sealed_pcr_values_size) == 0))
                        continue;
                json = luks_token_json(cd, i);
                if (!json || v->n_retire >= ELEMENTSOF(v->retire) ||
                    EVP_Digest(json, strlen(json), v->retire[v->n_retire].json_sha256, &len, EVP_sha256(), NULL) != 1)
                        continue;
                v->retire[v->n_retire++].token = i;
        }
}

int unlock_volume_tpm2(Unlocker *u, struct crypt_device *cd, Volume *v) {
        Tpm2Token *tokens[LUKS2_TOKENS_MAX] = {};
        const char *jsons[LUKS2_TOKENS_MAX] = {};
        PcrSnapshot snap[4];
        size_t n_snap = 0, n_tokens = 0;
        int r = -ENOENT;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                if (luks_token_get(cd, i, TOKEN_TYPE_TPM2, &jsons[i], NULL) < 0) {
                        jsons[i] = NULL;
                        continue;
                }
                n_tokens++;
                if (tpm2_token_parse(jsons[i], &tokens[i], NULL) < 0 || tokens[i]->unsupported)
                        tokens[i] = tpm2_token_free(tokens[i]);
        }
        /* With one token, no PCR read: the TPM's answer is the test. */
        if (n_tokens > 1)
                read_pcrs(u, tokens, snap, &n_snap);

        /* Pass 0: the tokens for this boot; pass 1: the others, except
         * those whose recorded values say the TPM would refuse. */
        for (int pass = 0; pass < 2 && r != 0; pass++)
                for (int i = 0; i < LUKS2_TOKENS_MAX && r != 0; i++) {
                        uint32_t changed = 0;
                        int m;

                        if (!jsons[i])
                                continue;
                        m = tokens[i] ? token_matches_now(tokens[i], snap, n_snap, &changed) : -ENODATA;
                        if ((pass == 0) != (m > 0))
                                continue;
                        if (m == 0) {
                                TokenOutcome *o = outcome_new(v, i);
                                _cleanup_free_ char *s = pcr_mask_to_string(changed);

                                if (o) {
                                        *o = (TokenOutcome) { .token = i, .keyslot = tokens[i]->keyslot,
                                                              .result = TOKEN_PCR_MISMATCH,
                                                              .bank = tokens[i]->pcr_bank ?: PCR_BANK_SHA256,
                                                              .pcr_mask = tokens[i]->pcr_mask,
                                                              .pcrs_changed = changed, .pcrs_known = true };
                                        free_and_printf(&o->detail, "PCR %s changed since sealing (not tried)", s ?: "?");
                                }
                                continue;
                        }
                        if (try_token(u, cd, v, i, jsons[i]) == 0)
                                r = 0;
                }
        if (r == 0)
                note_retirements(cd, v, tokens);
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++)
                tpm2_token_free(tokens[i]);
        /* What the unseal, the PIN and the keyslot check left below this
         * frame (copies of the secret in callees' stack frames). */
        tpm2_quirk_wipe_stack();
        return r;
}

static int opened_with(Volume *v, int keyslot, UnlockMethod method, const char *pass, size_t len) {
        v->credential = secret_memdup(pass, len);
        if (!v->credential)
                return -ENOMEM;
        v->credential_len = len;
        v->opened = true;
        v->method = method;
        v->keyslot = keyslot;
        v->token = -1;
        return 0;
}

int unlock_volume_with_input(Unlocker *u, struct crypt_device *cd, Volume *v, const char *input) {
        _cleanup_secret_ char *key = NULL;
        uint8_t sb[SECBOOT_RECOVERY_KEY_BYTES];
        int r;

        /* What the user typed counts: each form it can be is tried. */
        if (recovery_key_normalize(input, &key) == 0) {
                r = unlock_open_keyslot(u, cd, v, CRYPT_ANY_SLOT, key, strlen(key));
                if (r >= 0)
                        return opened_with(v, r, UNLOCK_METHOD_RECOVERY_KEY, key, strlen(key));
        }
        if (recovery_key_parse_secboot(input, sb) == 0) {
                key = secret_free(key);
                key = secret_memdup(sb, sizeof(sb));
                explicit_bzero(sb, sizeof(sb));
                if (!key)
                        return -ENOMEM;
                r = unlock_open_keyslot(u, cd, v, CRYPT_ANY_SLOT, key, SECBOOT_RECOVERY_KEY_BYTES);
                if (r >= 0)
                        return opened_with(v, r, UNLOCK_METHOD_RECOVERY_KEY, key, SECBOOT_RECOVERY_KEY_BYTES);
        }
        r = unlock_open_keyslot(u, cd, v, CRYPT_ANY_SLOT, input, strlen(input));
        if (r < 0)
                return r == -EPERM ? -EPERM : r;
        return opened_with(v, r,
                           luks_keyslot_token(cd, r, TOKEN_TYPE_RECOVERY, NULL) >= 0 ? UNLOCK_METHOD_RECOVERY_KEY
                                                                                    : UNLOCK_METHOD_PASSPHRASE,
                           input, strlen(input));
}

int unlock_volume_key(struct crypt_device *cd, Volume *v, const LuksVolumeKey **ret) {
        int r;

        if (!v->vk.data) {
                if (!v->credential || v->keyslot < 0)
                        return -ENOKEY;
                r = luks_volume_key_get(cd, v->keyslot, v->credential, v->credential_len, &v->vk);
                if (r < 0)
                        return r;
        }
        *ret = &v->vk;
        return 0;
}

/* After a TPM unlock: the unsealed secret opened the keyslot, which proves
 * the keyslot holds a TPM secret. A token without a proof (enrolled by
 * systemd-cryptenroll, or by an older unlockd) gets one, so that a later
 * re-seal may retire its keyslot; one header write, once. */
static void adopt_token(struct crypt_device *cd, Volume *v) {
        const LuksVolumeKey *vk;
        int r;

        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        const char *json;

        if (v->method != UNLOCK_METHOD_TPM2 || v->token < 0)
                return;
        /* A token that carries a proof is left alone: checking it needs
         * the volume key (a keyslot check more at every boot), and only a
         * removal needs it checked. */
        if (luks_token_get(cd, v->token, TOKEN_TYPE_TPM2, &json, NULL) < 0 || tpm2_token_parse(json, &t, NULL) < 0 ||
            t->has_proof)
                return;
        r = unlock_volume_key(cd, v, &vk);
        if (r >= 0)
                r = ownership_proven(cd, vk, v->keyslot);
        if (r != 0) {
                if (r < 0)
                        log_debug_errno(r, "Cannot check the proof of keyslot %d: %m", v->keyslot);
                return;
        }
        r = ownership_adopt_token(cd, vk, v->token, v->keyslot);
        if (r < 0)
                log_debug_errno(r, "Cannot record the proof of keyslot %d in token %d: %m", v->keyslot, v->token);
        else
                log_debug("Recorded in token %d that keyslot %d holds a TPM secret.", v->token, v->keyslot);
}

/* Orphaned re-seal keyslots, proven with the volume key when there are
 * markers at all (recovering the volume key costs a keyslot check). */
static void clean_orphans(Unlocker *u, struct crypt_device *cd, Volume *v) {
        const LuksVolumeKey *vk = NULL;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++)
                if (luks_token_get(cd, i, TOKEN_TYPE_PENDING, NULL, NULL) >= 0) {
                        if (unlock_volume_key(cd, v, &vk) < 0)
                                vk = NULL;
                        /* A keyslot the TPM opened has its TPM2 token: a
                         * marker on it goes alone. Only a typed
                         * credential's keyslot counts as typeable. */
                        (void) reseal_clean_orphans(cd, vk, v->method == UNLOCK_METHOD_TPM2 ? -1 : v->keyslot,
                                                    u->opts.state_dir);
                        return;
                }
}

typedef struct PromptContext {
        Unlocker *u;
        struct crypt_device *cd;
        Volume *v;
} PromptContext;

static int check_input(const char *input, void *userdata) {
        PromptContext *p = userdata;

        if (isempty_secret(input))
                return -EPERM;
        return unlock_volume_with_input(p->u, p->cd, p->v, input);
}

/* Asks for a recovery key or passphrase, saying msg, until one opens the
 * volume (on the consoles or agents of the options, bounded by them). */
static int ask_volume(Unlocker *u, struct crypt_device *cd, Volume *v, const char *msg) {
        _cleanup_free_ char *id = NULL;
        PromptContext p = { .u = u, .cd = cd, .v = v };

        if (asprintf(&id, "unlockd:%s", v->device) < 0)
                return log_oom();
        return prompt_ask_check(&(PromptOptions) {
                        .message = msg,
                        .prompt = "Recovery key or passphrase",
                        .id = id,
                        .consoles = u->opts.consoles,
                        .ask_password = u->opts.ask_password,
                        .timeout_usec = u->opts.timeout_usec,
                        .max_tries = u->opts.tries,
                        .alive = u->opts.alive,
                }, check_input, &p);
}

/* Asks for a recovery key or passphrase until one opens the volume. */
static int prompt_volume(Unlocker *u, struct crypt_device *cd, Volume *v, bool reseal) {
        bool full = reseal && luks_keyslot_free(cd) < 0;
        _cleanup_free_ char *why = volume_failure_summary(v), *msg = NULL;

        if (asprintf(&msg, "The TPM did not unlock %s (%s): %s.\n%s",
                     v->device, v->uuid, why ?: "unknown reason",
                     full ? "The TPM cannot be re-sealed automatically: every keyslot is in use (free one in the booted "
                            "system, then run 'unlockctl enroll --tpm2')." :
                     reseal ? "After you unlock it, the TPM will be re-sealed to this boot, so the next boot unlocks by itself."
                            : "Automatic re-seal is off.") < 0)
                return log_oom();

        return ask_volume(u, cd, v, msg);
}

/* A recovery drill (unlockctl drill): the flag is removed before asking,
 * so a drill, and a forged flag, cost one prompt at most; the TPM is not
 * asked; what opens is recorded in the header and in state.json, and
 * nothing else changes: no re-seal, no keyslot added, adopted or removed
 * (the TPM tokens are still good). Returns 0 when the volume is open. */
static int drill_volume(Unlocker *u, struct crypt_device *cd, Volume *v) {
        _cleanup_free_ char *msg = NULL;
        int r;

        v->drill = true;
        free_and_printf(&v->reseal, "none");
        log_notice("%s: a recovery drill was requested with 'unlockctl drill': the TPM is not asked this boot.",
                   v->device);
        if (asprintf(&msg, "This is a recovery drill requested with 'unlockctl drill' for %s (%s): "
                     "the TPM was not asked.\nType the recovery key or a passphrase to prove that it works. "
                     "Nothing is re-sealed; the next boot unlocks by TPM again.", v->device, v->uuid) < 0)
                return log_oom();

        r = ask_volume(u, cd, v, msg);
        if (r < 0) {
                free_and_printf(&v->error, "recovery drill: no recovery key or passphrase was accepted: %s",
                                r == -ETIME ? "timed out" : r == -EDQUOT ? "too many wrong answers" : strerror(ERRNO_VALUE(r)));
                if (drill_record(cd, DRILL_NOT_PASSED, drill_now()) < 0)
                        log_debug("Cannot record the failed drill in the header of %s.", v->device);
                return log_error_errno(r, "%s stays locked: %s", v->device, v->error);
        }
        log_notice("Recovery drill passed: %s %s with a %s (keyslot %d).", v->device,
                   u->opts.test ? "verified" : "unlocked",
                   v->method == UNLOCK_METHOD_RECOVERY_KEY ? "recovery key" : "passphrase", v->keyslot);
        r = drill_record(cd, v->method == UNLOCK_METHOD_RECOVERY_KEY ? DRILL_RECOVERY_KEY : DRILL_PASSPHRASE,
                         drill_now());
        if (r < 0)
                log_warning("Could not record the passed drill in the header of %s (%s); state.json has it.",
                            v->device, luks_strerror(r));
        return 0;
}

static void queue_reseal(Unlocker *u, struct crypt_device *cd, Volume *v, bool reseal) {
        int r;

        if (!u->opts.reseal || !reseal) {
                free_and_printf(&v->reseal, "disabled");
                return;
        }
        r = reseal_queue(u, cd, v, u->opts.state_dir);
        if (r < 0) {
                free_and_printf(&v->reseal, "failed: %s", luks_strerror(r));
                log_warning("Could not queue a re-seal of %s: %s. The next boot will ask again; "
                            "%s", v->device, luks_strerror(r),
                            r == -EXFULL ? "free a keyslot (unlockctl status shows them)." :
                            r == -ENOSPC ? "remove unused tokens or keyslots from the header." :
                                           "run 'unlockctl enroll --tpm2' in the booted system to re-seal by hand.");
        } else if (r == 0)
                free_and_printf(&v->reseal, "none");
        else {
                free_and_printf(&v->reseal, "queued");
                log_notice("Queued a re-seal of %s for the booted system.", v->device);
        }
}

int unlock_volume(Unlocker *u, const char *device, const char *name, bool reseal, Volume *v) {
        _cleanup_luks_ struct crypt_device *cd = NULL;
        int r;

        *v = (Volume) { .token = -1, .keyslot = -1, .vk.keyslot = -1 };
        v->device = strdup(device);
        if (!v->device)
                return log_oom();

        r = luks_open(device, &cd);
        if (r < 0) {
                free_and_printf(&v->error, "cannot read the LUKS2 header: %s", strerror(ERRNO_VALUE(r)));
                return log_error_errno(r, "Cannot read the LUKS2 header of %s: %m", device);
        }

        v->uuid = strdup(luks_uuid(cd) ?: "");
        if (name)
                v->name = strdup(name);
        else if (asprintf(&v->name, "luks-%s", v->uuid) < 0)
                v->name = NULL;
        if (!v->uuid || !v->name)
                return log_oom();

        if (!u->opts.test && luks_active(v->name)) {
                v->opened = true;
                v->method = UNLOCK_METHOD_ALREADY_ACTIVE;
                log_info("%s is already active as %s.", device, v->name);
                return 0;
        }

        if (drill_pending(cd) > 0) {
                /* Not asked yet, so the flag stays: a later prompting run
                 * (the Plymouth pass of the initramfs-tools script) asks. */
                if (!u->opts.prompt) {
                        free_and_printf(&v->error, "a recovery drill is pending and prompting is off");
                        return log_error_errno(ENOKEY, "A recovery drill is pending for %s and prompting is off.", device);
                }
                /* Removed before asking: a flag that cannot be removed
                 * would ask at every boot, so without that no drill. */
                r = drill_cancel(cd);
                if (r >= 0)
                        return drill_volume(u, cd, v);
                log_warning("Cannot remove the recovery drill flag of %s (%s): no drill this boot.", device,
                            luks_strerror(r));
        }

        r = unlock_volume_tpm2(u, cd, v);
        if (r == 0) {
                log_info("%s %s with TPM2 token %d (keyslot %d).", device,
                         u->opts.test ? "verified" : "unlocked", v->token, v->keyslot);
                adopt_token(cd, v);
                clean_orphans(u, cd, v);
                return 0;
        }

        for (size_t i = 0; i < v->n_outcomes; i++)
                log_notice("%s: TPM2 token %d: %s.", device, v->outcomes[i].token,
                           v->outcomes[i].detail ?: "failed");
        if (v->n_outcomes == 0)
                log_notice("%s has no TPM2 token.", device);

        if (!u->opts.prompt) {
                free_and_printf(&v->error, "the TPM did not unlock it and prompting is off");
                return log_error_errno(ENOKEY, "The TPM did not unlock %s and prompting is off.", device);
        }

        r = prompt_volume(u, cd, v, u->opts.reseal && reseal);
        if (r < 0) {
                free_and_printf(&v->error, "no recovery key or passphrase was accepted: %s",
                                r == -ETIME ? "timed out" : r == -EDQUOT ? "too many wrong answers" : strerror(ERRNO_VALUE(r)));
                return log_error_errno(r, "%s stays locked: %s", device, v->error);
        }
        log_info("%s %s with a %s (keyslot %d).", device, u->opts.test ? "verified" : "unlocked",
                 v->method == UNLOCK_METHOD_RECOVERY_KEY ? "recovery key" : "passphrase", v->keyslot);

        queue_reseal(u, cd, v, reseal);
        return 0;
}

char *volume_failure_summary(const Volume *v) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        if (v->n_outcomes == 0)
                fputs("it has no TPM2 token", f);
        for (size_t i = 0; i < v->n_outcomes; i++)
                fprintf(f, "%s%s", i > 0 ? "; " : "", v->outcomes[i].detail ?: token_result_to_string(v->outcomes[i].result));
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(s);
}

json_object *volume_to_json(const Volume *v) {
        json_object *o = json_object_new_object(), *tokens;

        if (!o)
                return NULL;
        json_object_object_add(o, "device", json_object_new_string(v->device ?: ""));
        json_object_object_add(o, "uuid", v->uuid ? json_object_new_string(v->uuid) : NULL);
        json_object_object_add(o, "name", v->name ? json_object_new_string(v->name) : NULL);
        json_object_object_add(o, "opened", json_object_new_boolean(v->opened));
        json_object_object_add(o, "method", json_object_new_string(unlock_method_to_string(v->method)));
        json_object_object_add(o, "token", v->token >= 0 ? json_object_new_int(v->token) : NULL);
        json_object_object_add(o, "keyslot", v->keyslot >= 0 ? json_object_new_int(v->keyslot) : NULL);
        json_object_object_add(o, "drill", json_object_new_boolean(v->drill));
        json_object_object_add(o, "reseal", v->reseal ? json_object_new_string(v->reseal) : NULL);
        json_object_object_add(o, "error", v->error ? json_object_new_string(v->error) : NULL);

        tokens = json_object_new_array();
        for (size_t i = 0; tokens && i < v->n_outcomes; i++) {
                const TokenOutcome *t = &v->outcomes[i];
                json_object *j = json_object_new_object();

                if (!j)
                        break;
                json_object_object_add(j, "token", json_object_new_int(t->token));
                json_object_object_add(j, "keyslot", t->keyslot >= 0 ? json_object_new_int(t->keyslot) : NULL);
                json_object_object_add(j, "result", json_object_new_string(token_result_to_string(t->result)));
                json_object_object_add(j, "detail", json_object_new_string(t->detail ?: ""));
                if (t->pcr_mask || t->result != TOKEN_MALFORMED) {
                        json_object_object_add(j, "pcr-bank", json_object_new_string(pcr_bank_to_string(t->bank) ?: "unknown"));
                        json_object_object_add(j, "pcrs", json_pcr_array(t->pcr_mask));
                }
                if (t->pcrs_known)
                        json_object_object_add(j, "pcrs-changed", json_pcr_array(t->pcrs_changed));
                json_object_array_add(tokens, j);
        }
        json_object_object_add(o, "tokens", tokens);
        if (v->n_retire > 0) {
                json_object *a = json_object_new_array();

                for (size_t i = 0; a && i < v->n_retire; i++) {
                        json_object *j = json_object_new_object();
                        _cleanup_free_ char *h = NULL;

                        if (!j || hex_encode(v->retire[i].json_sha256, 32, &h) < 0) {
                                json_object_put(j);
                                break;
                        }
                        json_object_object_add(j, "token", json_object_new_int(v->retire[i].token));
                        json_object_object_add(j, "json-sha256", json_object_new_string(h));
                        json_object_array_add(a, j);
                }
                json_object_object_add(o, "retire", a);
        }
        return o;
}

json_object *volumes_to_json(const Volume *v, size_t n) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();

        if (!o || !arr) {
                json_object_put(o);
                json_object_put(arr);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                json_object_array_add(arr, volume_to_json(&v[i]));
        json_object_object_add(o, "volumes", arr);
        return o;
}
