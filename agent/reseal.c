/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The booted system's side of the re-seal (reseal.h, steps A–E), one
 * function per step, and the orphan clean-up both sides use. */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blockdev.h"
#include "crashpoint.h"
#include "encoding.h"
#include "fileio.h"
#include "keyring.h"
#include "log.h"
#include "notify.h"
#include "ownership.h"
#include "pcr.h"
#include "reseal.h"
#include "secret.h"
#include "strutil.h"
#include "token.h"
#include "tpm2.h"

void reseal_result_done(ResealResult *r) {
        free(r->uuid);
        free(r->device);
        free(r->message);
        *r = (ResealResult) { .keyslot = -1, .token = -1 };
}

char *reseal_key_description(const char *uuid) {
        char *s = NULL;
        if (asprintf(&s, RESEAL_KEY_PREFIX "%s", uuid) < 0)
                return NULL;
        return s;
}

/* ---- header helpers ----------------------------------------------------- */

/* Finds the token of type for keyslot (and generation, when gen > 0). */
int reseal_find_token(struct crypt_device *cd, const char *type, int keyslot, uint64_t gen) {
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                const char *json;
                uint64_t g;
                int slot;

                if (luks_token_get(cd, i, type, &json, &slot) < 0 || slot != keyslot)
                        continue;
                if (gen > 0) {
                        if (streq(type, TOKEN_TYPE_PENDING)) {
                                PendingToken p;
                                if (pending_token_parse(json, &p, NULL) < 0)
                                        continue;
                                g = p.generation;
                        } else {
                                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                                if (tpm2_token_parse(json, &t, NULL) < 0)
                                        continue;
                                g = t->generation;
                        }
                        if (g != gen)
                                continue;
                }
                return i;
        }
        return -ENOENT;
}

/* The largest generation among the markers and TPM2 tokens whose proof of
 * ownership holds under vk: a forged token cannot push it to the limit. */
uint64_t reseal_max_generation(struct crypt_device *cd, const LuksVolumeKey *vk) {
        uint64_t m = 0;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const char *json = luks_token_json(cd, i);
                PendingToken p;
                uint64_t g;
                int slot;

                if (!json)
                        continue;
                if (tpm2_token_parse(json, &t, NULL) >= 0)
                        g = t->generation, slot = t->keyslot;
                else if (pending_token_parse(json, &p, NULL) >= 0)
                        g = p.generation, slot = p.keyslot;
                else
                        continue;
                if (g > m && ownership_proven(cd, vk, slot) > 0)
                        m = g;
        }
        return m;
}

char *reseal_job_path(const char *state_dir, const char *uuid) {
        char *p = NULL;
        if (asprintf(&p, "%s/reseal/%s.json", state_dir, uuid) < 0)
                return NULL;
        return p;
}

/* ---- orphans ---------------------------------------------------------------- */

/* Whether a job in state_dir covers this pending keyslot and its secret is
 * still in the keyring. */
static bool pending_is_live(const char *state_dir, const char *uuid, int keyslot, uint64_t gen) {
        _cleanup_free_ char *path = reseal_job_path(state_dir, uuid), *json = NULL, *desc = NULL;
        _cleanup_(reseal_job_freep) ResealJob *j = NULL;
        void *s = NULL;
        size_t n;

        if (!path || read_file_regular(path, RESEAL_JOB_MAX, &json, NULL) < 0)
                return false;
        if (reseal_job_parse(json, &j, NULL) < 0 || j->keyslot != keyslot || j->generation != gen)
                return false;
        desc = reseal_key_description(uuid);
        if (!desc || keyring_read(desc, &s, &n) < 0)
                return false;
        secret_free(s);
        return true;
}

int reseal_clean_orphans(struct crypt_device *cd, const LuksVolumeKey *vk, int opened_keyslot, const char *state_dir) {
        const char *uuid = luks_uuid(cd);
        int removed = 0;

        if (!uuid)
                return -EINVAL;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                const char *json, *why = NULL;
                PendingToken p;
                int r;

                if (luks_token_get(cd, i, TOKEN_TYPE_PENDING, &json, NULL) < 0 ||
                    pending_token_parse(json, &p, NULL) < 0)
                        continue;
                if (pending_is_live(state_dir, uuid, p.keyslot, p.generation))
                        continue;

                /* A TPM2 token was already written for the keyslot: only
                 * the marker is left over, and removing a marker removes
                 * no way in. */
                if (reseal_find_token(cd, TOKEN_TYPE_TPM2, p.keyslot, 0) >= 0 || !luks_keyslot_active(cd, p.keyslot)) {
                        r = luks_token_remove(cd, i);
                        if (r < 0)
                                return r;
                        log_notice("Removed a stale re-seal marker for keyslot %d of %s.", p.keyslot, uuid);
                        continue;
                }
                r = ownership_may_remove(cd, vk, p.keyslot, opened_keyslot, &why);
                if (r == -EPERM || r == -ENOKEY) {
                        if (vk)
                                log_notice("Keyslot %d of %s is marked as a pending re-seal keyslot, but it stays: %s.",
                                           p.keyslot, uuid, why);
                        continue;
                }
                if (r < 0)
                        return r;
                /* The keyslot first: libcryptsetup unassigns it from the
                 * marker, so a crash in between leaves only a marker for
                 * no keyslot. */
                r = luks_keyslot_destroy(cd, p.keyslot);
                if (r < 0)
                        return r;
                (void) luks_token_remove(cd, i);
                log_notice("Removed orphaned re-seal keyslot %d of %s (its secret is gone).", p.keyslot, uuid);
                removed++;
        }
        return removed;
}

/* ---- booted side ---------------------------------------------------------- */

typedef struct ResealRun {
        const char *path;
        const char *state_dir;
        const char *tcti;
        ResealJob *job;
        struct crypt_device *cd;
        Tpm2Context *tpm;
        char *desc;                     /* the keyring description */
        LuksVolumeKey vk;               /* through keyslot N, once S or the new token gave it */
        int token;                      /* the new TPM2 token, or -1 */
        ResealResult *res;
} ResealRun;

static void reseal_run_done(ResealRun *r) {
        r->job = reseal_job_free(r->job);
        if (r->cd)
                crypt_free(r->cd);
        r->cd = NULL;
        r->tpm = tpm2_context_free(r->tpm);
        r->desc = mfree(r->desc);
        luks_volume_key_done(&r->vk);
}

/* What happened, for the journal. */
#define say(r, ...) free_and_printf(&(r)->res->message, __VA_ARGS__)

static int open_job_volume(const ResealJob *j, struct crypt_device **ret, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        struct crypt_device *cd = NULL;

        /* The initrd's path is a hint; the UUID decides. */
        if (j->device && *j->device && luks_open(j->device, &cd) >= 0) {
                if (streq_ptr(luks_uuid(cd), j->uuid)) {
                        *ret = cd;
                        *ret_path = strdup(j->device);
                        return *ret_path ? 0 : -ENOMEM;
                }
                crypt_free(cd);
                cd = NULL;
        }
        if (blockdev_find_by_uuid(j->uuid, &path) < 0)
                return -ENODEV;
        if (luks_open(path, &cd) < 0)
                return -ENODEV;
        if (!streq_ptr(luks_uuid(cd), j->uuid)) {
                crypt_free(cd);
                return -ENODEV;
        }
        *ret = cd;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int run_tpm(ResealRun *r) {
        int k;

        if (r->tpm)
                return 0;
        k = tpm2_context_new(r->tcti, &r->tpm);
        if (k < 0)
                say(r, "cannot open the TPM: %s; job kept, the next run finishes it", tpm2_strerror(k));
        return k;
}

/* Ends the job: the secret leaves the keyring, the file goes. */
static void step_finish(ResealRun *r) {
        (void) keyring_drop(r->desc);
        crash_point("after-drop-key");
        if (unlink(r->path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove %s: %m", r->path);
}

/* Ends an obsolete job: the file goes; the volume's secret stays in the
 * keyring while any marker may still need it (another job's, under the same
 * description), else it goes too. */
static void step_drop_obsolete(ResealRun *r) {
        bool markers = false;

        for (int i = 0; i < LUKS2_TOKENS_MAX && !markers; i++)
                markers = luks_token_get(r->cd, i, TOKEN_TYPE_PENDING, NULL, NULL) >= 0;
        if (!markers)
                (void) keyring_drop(r->desc);
        if (unlink(r->path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove %s: %m", r->path);
}

/* Reads and parses the job and opens its volume. Returns 0; 1 when the job
 * was torn and has been removed; negative errno. */
static int step_load(ResealRun *r) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        int k;

        k = read_file_regular(r->path, RESEAL_JOB_MAX, &json, NULL);
        if (k < 0) {
                say(r, "cannot read %s: %s", r->path,
                    k == -EBADFD ? "not a regular file" : strerror(ERRNO_VALUE(k)));
                return k;
        }
        k = reseal_job_parse(json, &r->job, &error);
        if (k < 0) {
                /* A torn job cannot be finished; its pending keyslot, if
                 * any, is an orphan for the next scan that can prove it. */
                const char *base = strrchr(r->path, '/') ? strrchr(r->path, '/') + 1 : r->path;
                _cleanup_free_ char *uuid = strndup(base, strlen(base) > 5 ? strlen(base) - 5 : 0), *desc = NULL;

                say(r, "job %s is unreadable (%s); removed", r->path, error ?: "malformed");
                (void) unlink(r->path);
                /* Its secret is useless now; the file name names the volume. */
                if (uuid && uuid_valid(uuid) && (desc = reseal_key_description(uuid)))
                        (void) keyring_drop(desc);
                return 1;
        }
        r->res->uuid = strdup(r->job->uuid);
        r->desc = reseal_key_description(r->job->uuid);
        if (!r->res->uuid || !r->desc)
                return -ENOMEM;
        k = open_job_volume(r->job, &r->cd, &r->res->device);
        if (k < 0) {
                say(r, "volume %s is not present", r->job->uuid);
                return k;
        }
        r->res->keyslot = r->job->keyslot;
        crash_point("after-load");
        return 0;
}

/* Step A. Returns 0 when the new token exists (now or already); 1 when the
 * job is obsolete and has been finished; negative errno. */
static int step_seal(ResealRun *r) {
        const ResealJob *j = r->job;
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_(secret_freep) void *secret = NULL;
        _cleanup_secret_ char *b64 = NULL;
        _cleanup_free_ char *tjson = NULL;
        size_t secret_size = 0;
        int k;

        r->token = reseal_find_token(r->cd, TOKEN_TYPE_TPM2, j->keyslot, j->generation);
        if (r->token >= 0)
                return 0;
        if (reseal_find_token(r->cd, TOKEN_TYPE_PENDING, j->keyslot, j->generation) < 0 ||
            !luks_keyslot_active(r->cd, j->keyslot)) {
                say(r, "job for keyslot %d, generation %llu is obsolete (no such keyslot or marker in the header); removed",
                    j->keyslot, (unsigned long long) j->generation);
                step_drop_obsolete(r);
                return 1;
        }
        k = keyring_read(r->desc, &secret, &secret_size);
        if (k == -ENOKEY) {
                step_finish(r);
                say(r, "the re-seal secret is gone from the keyring (expired?); pending keyslot %d stays until "
                    "a boot that can prove it is unlockd's removes it; the next recovery unlock queues a new job",
                    j->keyslot);
                return 1;
        }
        if (k < 0) {
                say(r, "cannot read the re-seal secret: %s", strerror(ERRNO_VALUE(k)));
                return k;
        }
        k = base64_encode(secret, secret_size, true, &b64);
        if (k < 0)
                return k;
        /* Holding S and seeing keyslot N take it is the proof that N is
         * the keyslot this job made; it also gives the volume key. */
        k = luks_volume_key_get(r->cd, j->keyslot, b64, (size_t) k, &r->vk);
        if (k < 0) {
                say(r, "the re-seal secret does not open keyslot %d", j->keyslot);
                return -EBADMSG;
        }

        k = run_tpm(r);
        if (k < 0)
                return k;
        k = tpm2_seal(r->tpm, &(Tpm2SealParams) {
                        .bank = j->pcr_bank,
                        .mask = j->pcr_mask,
                        .pcr_values = j->pcr_values,
                        .pcr_values_size = j->pcr_values_size,
                        .use_srk = true,
                }, secret, secret_size, &t);
        if (k < 0) {
                say(r, "sealing failed: %s", tpm2_strerror(k));
                return k;
        }
        t->keyslot = j->keyslot;
        t->generation = j->generation;
        t->has_proof = true;
        k = ownership_proof(r->cd, &r->vk, j->keyslot, t->proof);
        if (k >= 0)
                k = tpm2_token_format(t, &tjson);
        if (k < 0)
                return k;
        crash_point("before-token");
        r->token = luks_token_add(r->cd, tjson);
        if (r->token < 0) {
                say(r, "cannot write the TPM2 token: %s", luks_strerror(r->token));
                return r->token;
        }
        crash_point("after-token");
        return 0;
}

/* Step B: keyslot N has its TPM2 token (and its proof); drop the marker. */
static int step_marker(ResealRun *r) {
        int ptok = reseal_find_token(r->cd, TOKEN_TYPE_PENDING, r->job->keyslot, r->job->generation), k;

        if (ptok < 0)
                return 0;
        k = luks_token_remove(r->cd, ptok);
        if (k < 0)
                return k;
        crash_point("after-pending");
        return 0;
}

/* Unseals the new token and opens keyslot N with it; keeps the volume key. */
static int verify_token(ResealRun *r) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_(luks_volume_key_done) LuksVolumeKey vk = { .keyslot = -1 };
        _cleanup_secret_ char *b64 = NULL;
        const char *json;
        size_t n;
        int k;

        if (luks_token_get(r->cd, r->token, TOKEN_TYPE_TPM2, &json, NULL) < 0)
                return -ENOENT;
        k = tpm2_token_parse(json, &t, NULL);
        if (k < 0)
                return k;
        k = tpm2_unseal_passphrase(r->tpm, t, NULL, &b64, &n);
        if (k < 0)
                return k;
        k = luks_volume_key_get(r->cd, t->keyslot, b64, n, &vk);
        if (k < 0)
                return k;
        if (!r->vk.data) {
                r->vk = vk;
                vk = (LuksVolumeKey) { .keyslot = -1 };
        }
        return 0;
}

/* Step C. Returns 0 verified, 1 not verifiable (the PCRs moved on),
 * negative errno (the job stays). */
static int step_verify(ResealRun *r) {
        const ResealJob *j = r->job;
        _cleanup_free_ uint8_t *now = NULL;
        _cleanup_free_ char *marker = NULL;
        size_t now_size = 0;
        int k;

        k = run_tpm(r);
        if (k < 0)
                return k;
        k = tpm2_pcr_read(r->tpm, j->pcr_bank, j->pcr_mask, &now, &now_size);
        if (k < 0) {
                /* Not "the PCRs moved on": nothing is known. */
                say(r, "cannot read the PCRs to verify the new TPM2 token: %s; job kept, the next run finishes it",
                    tpm2_strerror(k));
                return k;
        }
        if (now_size != j->pcr_values_size || memcmp(now, j->pcr_values, now_size) != 0) {
                r->res->verify_skipped = true;
                return 1;
        }
        k = verify_token(r);
        if (k == -ENODEV || k == -EIO) {
                say(r, "the TPM failed while verifying the new TPM2 token (%s); job kept, the next run finishes it",
                    tpm2_strerror(k));
                return k;
        }
        if (k < 0) {
                /* Never retire the old path on an unproven new one: take
                 * the new token back, keep the job. */
                PendingToken p = { .keyslot = j->keyslot, .generation = j->generation };
                if (r->vk.data && ownership_proof(r->cd, &r->vk, j->keyslot, p.proof) >= 0)
                        p.has_proof = true;
                if (pending_token_format(&p, &marker) >= 0)
                        (void) luks_token_add(r->cd, marker);
                (void) luks_token_remove(r->cd, r->token);
                say(r, "the new TPM2 token did not verify (%s); job kept", tpm2_strerror(k));
                return -EIO;
        }
        r->res->verified = true;
        crash_point("after-verify");
        return 0;
}

/* Whether the stale token st is still there as the job recorded it: same
 * blob, and the recorded keyslot (or none left, after a crash between the
 * keyslot and the token). */
static bool stale_token_same(struct crypt_device *cd, const ResealStale *st) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        const char *json;
        uint8_t h[32];
        int slot;

        if (luks_token_get(cd, st->token, TOKEN_TYPE_TPM2, &json, &slot) < 0)
                return false;
        if (slot >= 0) {
                if (tpm2_token_parse(json, &t, NULL) < 0 || t->keyslot != st->keyslot)
                        return false;
                SHA256(t->blob, t->blob_size, h);
        } else {
                /* No keyslot left: compare the blob field itself. */
                json_object *o = json_parse_strict(json, TOKEN_JSON_MAX), *b;
                _cleanup_free_ void *blob = NULL;
                size_t n = 0;
                bool ok = o && json_object_object_get_ex(o, "tpm2-blob", &b) && json_object_is_type(b, json_type_string) &&
                          base64_decode(json_object_get_string(b), SIZE_MAX, false, &blob, &n) >= 0;
                json_object_put(o);
                if (!ok)
                        return false;
                SHA256(blob, n, h);
        }
        return memcmp(h, st->blob_sha256, sizeof(h)) == 0;
}

/* Step D: only after a verified new token. Each stale keyslot goes when
 * the ownership rule allows it and it is still the very keyslot recorded
 * (same KDF salt); its token then. What the rule keeps is said. */
static void step_retire(ResealRun *r) {
        const ResealJob *j = r->job;
        _cleanup_free_ char *kept = NULL;

        for (size_t k = 0; k < j->n_stale; k++) {
                const ResealStale *st = &j->stale[k];
                _cleanup_free_ char *salt = NULL;
                const char *why = NULL;

                if (st->keyslot == j->keyslot || !stale_token_same(r->cd, st))
                        continue;
                if (luks_keyslot_active(r->cd, st->keyslot)) {
                        if (luks_keyslot_salt(r->cd, st->keyslot, &salt) < 0 || !streq(salt, st->salt))
                                continue;
                        int m = ownership_may_remove(r->cd, &r->vk, st->keyslot, j->opened_keyslot, &why);
                        if (m == -ENOKEY)
                                log_notice("Stale TPM2 token %d and keyslot %d of %s stay: %s. If keyslot %d holds "
                                           "only a TPM secret, remove it by hand: cryptsetup luksKillSlot %s %d",
                                           st->token, st->keyslot, j->uuid, why, st->keyslot,
                                           r->res->device ?: "DEVICE", st->keyslot);
                        else if (m < 0)
                                log_notice("TPM2 token %d names keyslot %d of %s, which stays: %s.", st->token,
                                           st->keyslot, j->uuid, why ?: strerror(ERRNO_VALUE(m)));
                        if (m < 0) {
                                free_and_printf(&kept, "%s%s%d", kept ?: "", kept ? ", " : "", st->keyslot);
                                r->res->stale_kept++;
                                continue;
                        }
                        if (luks_keyslot_destroy(r->cd, st->keyslot) < 0)
                                continue;
                        crash_point("after-stale-keyslot");
                }
                if (luks_token_remove(r->cd, st->token) >= 0) {
                        r->res->stale_removed++;
                        crash_point("after-stale-token");
                }
        }
}

int reseal_run_job(const char *path, const char *state_dir, const char *tcti, ResealResult *res) {
        _cleanup_(reseal_run_done) ResealRun r = {
                .path = path, .state_dir = state_dir, .tcti = tcti, .token = -1, .res = res,
                .vk = { .keyslot = -1 },
        };
        _cleanup_free_ char *pcrs = NULL;
        int verified, k;

        assert(path);
        assert(state_dir);
        assert(res);

        *res = (ResealResult) { .keyslot = -1, .token = -1 };

        k = step_load(&r);
        if (k != 0)
                return k;
        k = step_seal(&r);
        if (k != 0)
                return k;
        res->token = r.token;
        k = step_marker(&r);
        if (k < 0)
                return k;
        verified = step_verify(&r);
        if (verified < 0)
                return verified;
        if (verified == 0)
                step_retire(&r);
        step_finish(&r);
        /* Pending keyslots of superseded jobs for this volume. */
        (void) reseal_clean_orphans(r.cd, r.vk.data ? &r.vk : NULL, r.job->opened_keyslot, state_dir);

        pcrs = pcr_mask_to_string(r.job->pcr_mask);
        if (verified == 0)
                say(&r, "re-sealed keyslot %d to PCR %s (%s bank) as token %d, verified by unsealing; "
                    "%u stale token%s removed%s",
                    r.job->keyslot, pcrs ?: "?", pcr_bank_to_string(r.job->pcr_bank), r.token, res->stale_removed,
                    res->stale_removed == 1 ? "" : "s",
                    res->stale_kept ? ", others kept (see above)" : "");
        else
                say(&r, "re-sealed keyslot %d to PCR %s (%s bank) as token %d, not verified (the PCRs moved on "
                    "since boot): the stale tokens stay until you remove them",
                    r.job->keyslot, pcrs ?: "?", pcr_bank_to_string(r.job->pcr_bank), r.token);
        return 0;
}

/* ---- dismissing --------------------------------------------------------- */

/* Removes the job's marker and TPM2 token: of its generation, and naming
 * its keyslot or none any more (libcryptsetup unassigns a destroyed
 * keyslot from its tokens). */
static void drop_job_tokens(struct crypt_device *cd, const ResealJob *j) {
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *type = NULL;
                const char *json = luks_token_json(cd, i);
                uint64_t g;
                int slot;

                if (!json || token_get_type_and_keyslot(json, &type, &slot) < 0 ||
                    (!streq(type, TOKEN_TYPE_PENDING) && !streq(type, TOKEN_TYPE_TPM2)) ||
                    (slot >= 0 && slot != j->keyslot) || token_get_generation(json, &g) < 0 || g != j->generation)
                        continue;
                if (slot < 0 && luks_keyslot_tokens_assigned(cd, i) > 0)
                        continue; /* names several keyslots: not the job's */
                if (luks_token_remove(cd, i) >= 0)
                        crash_point("dismiss-after-token");
        }
}

int reseal_dismiss_job(const char *path, ResealResult *res) {
        _cleanup_(reseal_run_done) ResealRun r = {
                .path = path, .token = -1, .res = res, .vk = { .keyslot = -1 },
        };
        _cleanup_(secret_freep) void *secret = NULL;
        _cleanup_secret_ char *b64 = NULL;
        const char *why = NULL;
        size_t n = 0;
        int k;

        assert(path);
        assert(res);

        *res = (ResealResult) { .keyslot = -1, .token = -1 };
        k = step_load(&r);
        if (k != 0)
                return k;

        if (luks_keyslot_active(r.cd, r.job->keyslot)) {
                /* The keyslot goes only when this job's secret opens it:
                 * that proves it is the one the job made. */
                k = keyring_read(r.desc, &secret, &n);
                if (k >= 0)
                        k = base64_encode(secret, n, true, &b64);
                if (k >= 0)
                        k = luks_volume_key_get(r.cd, r.job->keyslot, b64, (size_t) k, &r.vk);
                if (k < 0) {
                        say(&r, "the re-seal secret %s; keyslot %d stays (unlockd removes it at a boot that proves "
                            "it is its own); the job is removed",
                            k == -ENOKEY ? "is gone from the keyring" : "does not open the job's keyslot", r.job->keyslot);
                        step_finish(&r);
                        return 1;
                }
                k = ownership_may_remove(r.cd, &r.vk, r.job->keyslot, r.job->opened_keyslot, &why);
                if (k < 0) {
                        say(&r, "keyslot %d stays: %s; job kept", r.job->keyslot, why ?: strerror(ERRNO_VALUE(k)));
                        return -EPERM;
                }
                k = luks_keyslot_destroy(r.cd, r.job->keyslot);
                if (k < 0) {
                        say(&r, "cannot remove keyslot %d: %s; job kept", r.job->keyslot, luks_strerror(k));
                        return k;
                }
                crash_point("dismiss-after-keyslot");
        }
        drop_job_tokens(r.cd, r.job);
        step_finish(&r);
        say(&r, "re-seal dismissed: keyslot %d and its marker or token removed, the re-seal secret dropped; "
            "the old TPM2 tokens are as they were", r.job->keyslot);
        return 0;
}

/* ---- every job ------------------------------------------------------------ */

typedef struct JobEntry {
        char *path;
        char *uuid;
        uint64_t generation;
        bool live;                      /* the header has its marker or token */
} JobEntry;

/* Whether the job's keyslot and generation are in its volume's header (a
 * marker or a TPM2 token): only such a job may supersede another. */
static bool job_live(const ResealJob *j) {
        _cleanup_luks_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *path = NULL;

        if (open_job_volume(j, &cd, &path) < 0)
                return false;
        return reseal_find_token(cd, TOKEN_TYPE_PENDING, j->keyslot, j->generation) >= 0 ||
               reseal_find_token(cd, TOKEN_TYPE_TPM2, j->keyslot, j->generation) >= 0;
}

static bool job_name(const char *name) {
        size_t l = strlen(name);
        return l > 5 && streq(name + l - 5, ".json") && name[0] != '.';
}

int reseal_run_all(const char *state_dir, const char *tcti, ResealMode mode, char **uuids, unsigned *ret_done) {
        _cleanup_free_ char *dir = NULL;
        JobEntry *jobs = NULL;
        struct dirent **names = NULL;
        unsigned done = 0, failed = 0;
        size_t n_jobs = 0;
        int n, r = 0;

        assert(state_dir);

        if (asprintf(&dir, "%s/reseal", state_dir) < 0)
                return -ENOMEM;
        n = scandir(dir, &names, NULL, alphasort);
        if (n < 0) {
                if (errno == ENOENT) {
                        if (ret_done)
                                *ret_done = 0;
                        return 0;
                }
                return log_error_errno(errno, "Cannot read %s: %m", dir);
        }
        jobs = calloc((size_t) n + 1, sizeof(JobEntry));
        if (!jobs) {
                r = -ENOMEM;
                goto finish;
        }

        /* What each job file is, read once (regular files only: a FIFO or
         * a directory named *.json is skipped, said, and never blocks). */
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *json = NULL;
                _cleanup_(reseal_job_freep) ResealJob *j = NULL;
                JobEntry *e = &jobs[n_jobs];
                int k;

                if (!job_name(names[i]->d_name))
                        continue;
                if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                k = read_file_regular(path, RESEAL_JOB_MAX, &json, NULL);
                if (k == -EBADFD) {
                        log_warning("Skipping %s: not a regular file.", path);
                        continue;
                }
                /* An unreadable or torn job still runs: reseal_run_job()
                 * says why and removes it. */
                if (k >= 0 && reseal_job_parse(json, &j, NULL) >= 0) {
                        e->uuid = strdup(j->uuid);
                        e->generation = j->generation;
                        e->live = job_live(j);
                        if (!e->uuid) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
                e->path = TAKE_PTR(path);
                n_jobs++;
        }

        /* Several jobs for one volume: the largest generation that the
         * header confirms wins (the last in name order among equals); the
         * others are obsolete, their keyslots orphans for the winner's
         * clean-up. A job the header does not confirm supersedes nothing. */
        for (size_t i = 0; i < n_jobs; i++) {
                if (!jobs[i].uuid)
                        continue;
                for (size_t k = 0; k < n_jobs; k++)
                        if (k != i && jobs[k].uuid && jobs[k].live && streq(jobs[k].uuid, jobs[i].uuid) &&
                            (jobs[k].generation > jobs[i].generation ||
                             (jobs[k].generation == jobs[i].generation && k > i))) {
                                log_notice("Job %s is superseded by %s; removing it.", jobs[i].path, jobs[k].path);
                                (void) unlink(jobs[i].path);
                                jobs[i].path = mfree(jobs[i].path);
                                break;
                        }
        }

        for (size_t i = 0; i < n_jobs; i++) {
                ResealResult res;
                int k;

                if (!jobs[i].path)
                        continue;
                if (uuids && !(jobs[i].uuid && strv_contains_case(uuids, jobs[i].uuid)))
                        continue;
                (void) notifyf("STATUS=%s %s", mode == RESEAL_DISMISS ? "Dismissing the re-seal of" : "Re-sealing",
                               jobs[i].uuid ?: jobs[i].path);
                k = mode == RESEAL_DISMISS ? reseal_dismiss_job(jobs[i].path, &res)
                                           : reseal_run_job(jobs[i].path, state_dir, tcti, &res);
                if (k < 0) {
                        failed++;
                        log_error("%s of %s (%s) failed: %s", mode == RESEAL_DISMISS ? "Dismissing the re-seal" : "Re-seal",
                                  res.uuid ?: jobs[i].path, res.device ?: "?",
                                  res.message ?: strerror(ERRNO_VALUE(k)));
                } else {
                        done++;
                        log_notice("%s (%s): %s.", res.device ?: "?", res.uuid ?: jobs[i].path, res.message ?: "done");
                }
                reseal_result_done(&res);
        }
        (void) notifyf("STATUS=%u re-seal job%s done, %u failed", done, done == 1 ? "" : "s", failed);
        if (ret_done)
                *ret_done = done;
        r = (int) failed;
finish:
        for (size_t i = 0; jobs && i < n_jobs; i++) {
                free(jobs[i].path);
                free(jobs[i].uuid);
        }
        free(jobs);
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}
