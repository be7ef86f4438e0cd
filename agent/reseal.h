/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "luks.h"
#include "macro.h"
#include "unlock.h"

/* The re-seal job (design.md section 7, and README "How recovery works").
 *
 * In the initrd, after a manual unlock (reseal_queue()):
 *   1. a fresh 32-byte secret S gets a new keyslot N (authorized by what was
 *      typed), marked as unlockd's by a token {"type":"unlockd-pending",
 *      "keyslots":["N"],"unlockd-generation":G};
 *   2. S goes into root's user keyring as "unlockd:reseal:<uuid>";
 *   3. the job <state-dir>/reseal/<uuid>.json records the volume, N, G, the
 *      PCR bank/selection/values read at the unseal point, and the stale
 *      TPM2 tokens (id, keyslot, SHA256 of their blob).
 *
 * In the booted system (reseal_run()), each step idempotent:
 *   A. seal S to the recorded PCR values, write a systemd-tpm2 token for
 *      keyslot N with unlockd-generation G;
 *   B. remove the pending token;
 *   C. verify by unsealing when the PCRs still match the recorded values;
 *   D. remove each stale token that is still exactly what the job recorded,
 *      and its keyslot when nothing else references it;
 *   E. drop S from the keyring, delete the job.
 * A crash anywhere leaves the recovery key and passphrases untouched, and
 * the next run finishes the job. A pending token whose job or secret is gone
 * is an orphan: its keyslot (only ever one unlockd created) is removed. */

#define TOKEN_TYPE_PENDING "unlockd-pending"
#define RESEAL_JOB_MAX (64 * 1024)
#define RESEAL_STALE_MAX 8

typedef struct ResealStale {
        int token;
        int keyslot;
        uint8_t blob_sha256[32];
        char *salt;                     /* the keyslot's KDF salt: identifies it */
} ResealStale;

typedef struct ResealJob {
        char *uuid;
        char *device;                   /* path the initrd saw, a hint */
        int keyslot;                    /* the new keyslot N */
        uint64_t generation;
        uint16_t pcr_bank;
        uint32_t pcr_mask;
        uint8_t *pcr_values;            /* index order */
        size_t pcr_values_size;
        char *method;                   /* how the volume was opened: recovery-key, passphrase */
        ResealStale stale[RESEAL_STALE_MAX];
        size_t n_stale;
} ResealJob;

ResealJob *reseal_job_free(ResealJob *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(ResealJob *, reseal_job_free);

/* Parses a job file's JSON defensively. Returns 0, or -EBADMSG with
 * *ret_error (optional) naming the fault. */
int reseal_job_parse(const char *json, ResealJob **ret, char **ret_error);
/* Formats a job as JSON. */
int reseal_job_format(const ResealJob *j, char **ret_json);

/* The keyring description of a volume's re-seal secret. */
char *reseal_key_description(const char *uuid);

/* Test hook: with $UNLOCKD_RESEAL_CRASH_AT=<step>, the process kills
 * itself with SIGKILL at that step (fault-injection tests). */
void reseal_crash_point(const char *step);

/* In the initrd, after v was opened by a typed credential (pass, len):
 * queue a re-seal job for the TPM2 tokens that failed with a PCR mismatch.
 * Returns 1 when a job was queued, 0 when there was nothing to re-seal (no
 * stale token, PIN tokens, no TPM), negative errno on failure (nothing is
 * left behind then). */
int reseal_queue(Unlocker *u, struct crypt_device *cd, Volume *v, const char *pass, size_t len,
                 const char *state_dir);

/* Removes orphaned pending keyslots of a volume: pending tokens that no
 * job in state_dir accounts for (or whose secret is gone). Returns the
 * number removed, or negative errno. */
int reseal_clean_orphans(struct crypt_device *cd, const char *state_dir);

typedef struct ResealResult {
        char *uuid;
        char *device;
        int keyslot;                    /* the new TPM2 keyslot */
        int token;                      /* the new token */
        bool verified;                  /* unsealed and opened the keyslot */
        bool verify_skipped;            /* PCRs no longer match the recorded values */
        unsigned stale_removed;
        char *message;                  /* what happened, for the journal */
} ResealResult;

void reseal_result_done(ResealResult *r);

/* Runs the job in file path. Returns 0 when done (job deleted), 1 when the
 * job was obsolete or orphaned and has been cleaned up, negative errno on
 * failure (the job stays for the next run). */
int reseal_run_job(const char *path, const char *state_dir, const char *tcti, ResealResult *ret);
