/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "eventlog.h"
#include "predict.h"
#include "tpm2.h"

/* Sealing to the next boot before the reboot (design.md section 10): the
 * booted system unseals a TPM2 token that opens this boot, and seals the
 * same secret to the PCR values predicted for the next boot as one more
 * systemd-tpm2 token for the same keyslot. No keyslot is added or removed:
 * the recovery key and passphrases are never touched. After the next boot
 * (preseal_retire()) the predictions that did not open, or the token a
 * prediction that opened was made from, are removed. */

#define PREDICT_EVENTLOG_PATH "/sys/kernel/security/tpm0/binary_bios_measurements"

/* At most this many predicted tokens per keyslot; sealing one more
 * retires the oldest (lowest generation) first. */
#define PRESEAL_PREDICTIONS_MAX 3U

/* The new components (NULL / unset: unchanged). */
typedef struct PredictSources {
        const char *kernel;             /* EFI binary: PE/COFF Authenticode */
        const char *boot_loader;        /* EFI binary: PE/COFF Authenticode */
        const char *initrd;             /* the file as the boot loader serves it */
        const char *cmdline;            /* the LoadOptions, UTF-8 */
} PredictSources;

/* The mask of PredictComponent the sources set. */
unsigned predict_sources_mask(const PredictSources *s);

/* The sources' digests in bank. Logs what it cannot read. */
int predict_sources_digests(const PredictSources *s, uint16_t bank, PredictDigests *ret);

/* Reads and parses the event log at path (NULL: the kernel's). Logs. */
int predict_load_log(const char *path, EventLog **ret);

typedef struct PcrPrediction {
        uint16_t bank;
        uint32_t mask;                  /* the PCRs asked for */
        uint32_t unpredictable;         /* of mask: substituted, but the log's replay is not the reference */
        bool offline;                   /* the reference is the log's replay, not the TPM */
        uint8_t reference[PCR_MAX][EVENTLOG_DIGEST_MAX];        /* now: the TPM's (or the replay's) */
        uint8_t predicted[PCR_MAX][EVENTLOG_DIGEST_MAX];
        PredictResult result;
} PcrPrediction;

/* Predicts the PCRs in mask of bank: a PCR no substitution touches keeps
 * its reference value; one a substitution touches gets the replay with the
 * substitution, and is unpredictable when the log's replay of it is not
 * the TPM's value (tpm non-NULL; offline the replay is the reference).
 * Returns 0 (check ret->unpredictable), or negative errno (logged). */
int predict_pcrs(const EventLog *log, Tpm2Context *tpm, const PredictSources *s, uint16_t bank, uint32_t mask,
                 PcrPrediction *ret);

/* Seals each volume's secret to the prediction (see above) for every
 * non-PIN TPM2 token that opens this boot. Logs one line per volume of
 * what it sealed or why not. Returns 0 when every volume got its
 * prediction (or needed none), -ESTALE when a PCR could not be predicted,
 * other negative errno on failure. */
int preseal_devices(char **devices, size_t n, Tpm2Context *tpm, const EventLog *log, const PredictSources *s);

/* In the booted system: for each volume a file <state_dir>/retire/<uuid>.json
 * lists (written by unlockd in the initrd after a TPM unlock, in the shape of
 * a state.json volume), removes the tokens under "retire" when each is still
 * exactly what the initrd saw (the SHA-256 of its JSON) and of the same
 * keyslot as the token that opened, which stays and must still be there.
 * Only tokens go, never a keyslot. Each file is removed once read. Returns
 * the number of tokens removed, or negative errno. */
int preseal_retire(const char *state_dir);
