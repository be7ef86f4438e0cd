/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* The re-seal job file, <state-dir>/reseal/<uuid>.json: pure code (fuzzed).
 * The initrd writes it after a manual unlock; the booted system's
 * `unlockctl reseal` runs it (reseal.h). Every field is checked for type
 * and range where it is parsed. */

#define RESEAL_JOB_MAX (64 * 1024)
#define RESEAL_STALE_MAX 8
#define JOB_KEYSLOTS_MAX 32
#define JOB_TOKENS_MAX 32

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
        int opened_keyslot;             /* the keyslot that opened the volume that boot, or -1 */
        uint64_t generation;            /* 1..TOKEN_GENERATION_MAX */
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

/* Whether s looks like a volume UUID (hex digits and dashes, ≤ 64). */
bool uuid_valid(const char *s);
