/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "luks.h"

/* The recovery drill: `unlockctl drill` asks the next boot to skip the TPM
 * once for a volume and to ask for the recovery key or a passphrase, so the
 * admin proves that the fallback works before it is needed.
 *
 * Both records live in the volume's own LUKS2 header, as tokens assigned to
 * no keyslot, which libcryptsetup and systemd ignore:
 *   {"type":"unlockd-drill","keyslots":[],"unlockd-requested":<seconds>}
 *        the flag: the next unlockd run asks, and removes it before asking;
 *   {"type":"unlockd-drill-result","keyslots":[],"unlockd-time":<seconds>,
 *    "unlockd-result":"recovery-key"|"passphrase"|"not-passed"}
 *        the outcome of the last drill, written by that run.
 * The header is written by whoever can write the disk: a forged flag costs
 * one prompt (and the TPM stays untouched), a forged result is only shown.
 * Neither ever leads unlockd to add, change or remove a keyslot; a token of
 * these types is only ever removed as a token. */

#define TOKEN_TYPE_DRILL "unlockd-drill"
#define TOKEN_TYPE_DRILL_RESULT "unlockd-drill-result"

/* Times are seconds since the epoch, at most this (the year 9999). */
#define DRILL_TIME_MAX UINT64_C(253402300799)

typedef enum DrillResult {
        DRILL_RECOVERY_KEY,
        DRILL_PASSPHRASE,
        DRILL_NOT_PASSED,
        _DRILL_RESULT_MAX,
} DrillResult;

typedef struct DrillRecord {
        uint64_t time;
        DrillResult result;
} DrillRecord;

const char *drill_result_to_string(DrillResult r);

/* The wall clock, in seconds since the epoch (0 when it is unknown). */
uint64_t drill_now(void);

/* Whether a drill flag is in the header: 1 yes, 0 no. */
int drill_pending(struct crypt_device *cd);

/* Sets the flag (once: an existing one stays). Returns 1 when it added it,
 * 0 when one was pending already, negative errno. */
int drill_request(struct crypt_device *cd);

/* Removes every drill flag (only the tokens). Returns how many it removed,
 * or negative errno when one could not be removed. */
int drill_cancel(struct crypt_device *cd);

/* Records a drill's outcome at time when: the new record first, then the
 * older ones go, so a crash leaves at most one more. Returns 0 or negative
 * errno. */
int drill_record(struct crypt_device *cd, DrillResult result, uint64_t when);

/* The newest well-formed drill record of the header (strict parse; a
 * malformed record is skipped). Returns 0 with *ret, -ENOENT when none. */
int drill_last(struct crypt_device *cd, DrillRecord *ret);

/* unlockctl drill [--cancel]: sets (or removes) the flag of each device.
 * Returns 0 when every device was done, negative errno otherwise. Logs. */
int drill_arm_devices(char *const *devices, size_t n, bool cancel);
