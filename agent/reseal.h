/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "luks.h"
#include "macro.h"
#include "unlock.h"

/* The re-seal (design.md section 7, and README "How recovery works").
 *
 * In the initrd, after a manual unlock (reseal_queue()):
 *   1. a fresh 32-byte secret S gets a new keyslot N (authorized by what was
 *      typed), marked as unlockd's by a token {"type":"unlockd-pending",
 *      "keyslots":["N"],"unlockd-generation":G,"unlockd-proof":P}, P the
 *      proof of ownership of N (ownership.h);
 *   2. S goes into root's user keyring as "unlockd:reseal:<uuid>";
 *   3. the job <state-dir>/reseal/<uuid>.json (job.h) records the volume,
 *      N, G, the keyslot that opened the volume, the PCR bank/selection/
 *      values read at the unseal point, and the stale TPM2 tokens (id,
 *      keyslot, SHA256 of their blob, the keyslot's KDF salt).
 *
 * In the booted system (reseal_run_job()), one function per step, each
 * idempotent:
 *   A. seal: seal S to the recorded PCR values, write a systemd-tpm2 token
 *      for keyslot N with generation G and proof P;
 *   B. marker: remove the pending marker;
 *   C. verify: unseal the new token and open keyslot N with it, where the
 *      PCRs still match the recorded values (a TPM that fails here keeps
 *      the job; PCRs that moved on retire nothing);
 *   D. retire: only after C, remove each stale keyslot that the ownership
 *      rule lets unlockd remove (its keyslot first, then its token), if its
 *      token is still exactly what the job recorded;
 *   E. finish: drop S from the keyring, delete the job.
 * A crash anywhere leaves the recovery key and passphrases untouched, and
 * the next run finishes the job. A pending keyslot whose job or secret is
 * gone is an orphan: it is removed where unlockd holds the volume key to
 * check its proof (reseal_clean_orphans()), and left, reported by
 * `unlockctl status`, where not. */

#define RESEAL_KEY_PREFIX "unlockd:reseal:"

/* The keyring description of a volume's re-seal secret. */
char *reseal_key_description(const char *uuid);

/* <state_dir>/reseal/<uuid>.json (malloc()ed, NULL on OOM). */
char *reseal_job_path(const char *state_dir, const char *uuid);

/* The token of type (systemd-tpm2 or unlockd-pending) for keyslot, and of
 * generation gen when gen > 0, or -ENOENT. */
int reseal_find_token(struct crypt_device *cd, const char *type, int keyslot, uint64_t gen);

/* The largest generation among the markers and TPM2 tokens whose proof of
 * ownership holds under vk: a forged token cannot push it to the limit. */
uint64_t reseal_max_generation(struct crypt_device *cd, const LuksVolumeKey *vk);

/* In the initrd, after v was opened by a typed credential (v->credential):
 * queue a re-seal job for the TPM2 tokens that failed with a PCR mismatch.
 * Returns 1 when a job was queued, 0 when there was nothing to re-seal (no
 * stale token, PIN tokens, no TPM), negative errno on failure (nothing is
 * left behind then). */
int reseal_queue(Unlocker *u, struct crypt_device *cd, Volume *v, const char *state_dir);

/* Removes the orphaned pending keyslots of a volume: markers that no job in
 * state_dir accounts for (or whose secret is gone), when the ownership rule
 * lets unlockd remove their keyslot under vk (NULL: none is removed, they
 * are only counted). Returns the number removed, or negative errno. */
int reseal_clean_orphans(struct crypt_device *cd, const LuksVolumeKey *vk, int opened_keyslot, const char *state_dir);

typedef struct ResealResult {
        char *uuid;
        char *device;
        int keyslot;                    /* the new TPM2 keyslot */
        int token;                      /* the new token */
        bool verified;                  /* unsealed and opened the keyslot */
        bool verify_skipped;            /* PCRs no longer match the recorded values */
        unsigned stale_removed;
        unsigned stale_kept;            /* stale keyslots the ownership rule kept */
        char *message;                  /* what happened, for the journal */
} ResealResult;

void reseal_result_done(ResealResult *r);

/* Runs the job in file path. Returns 0 when done (job deleted), 1 when the
 * job was obsolete or orphaned and has been cleaned up, negative errno on
 * failure (the job stays for the next run). */
int reseal_run_job(const char *path, const char *state_dir, const char *tcti, ResealResult *ret);

/* Dismisses the job in file path: the admin does not accept the boot chain
 * that was unlocked by hand. Its keyslot goes (when the job's secret in the
 * keyring opens it, which proves it is the job's), with its marker or new
 * token, then the secret and the job; the old TPM2 tokens stay as they
 * were. Returns 0 done, 1 when only the job could go (the secret is gone;
 * the keyslot stays for an orphan clean-up), negative errno (job kept). */
int reseal_dismiss_job(const char *path, ResealResult *ret);

typedef enum ResealMode {
        RESEAL_RUN,
        RESEAL_DISMISS,
} ResealMode;

/* Runs (or dismisses) every job in <state_dir>/reseal, or only those of the
 * volume UUIDs in uuids (NULL-terminated; NULL: all): entries that are not
 * regular files are skipped with a warning; of several jobs for one volume
 * the largest generation the header confirms wins. Logs each outcome.
 * Returns the number of failed jobs (0: all done), or negative errno;
 * *ret_done (optional) counts the jobs done. */
int reseal_run_all(const char *state_dir, const char *tcti, ResealMode mode, char **uuids, unsigned *ret_done);
