/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"

/* The digests the boot chain measures for the components an update changes,
 * computed from the new components (design.md section 10), so that they can
 * stand in for the old ones' events in a replay of the event log. Each takes
 * the PCR bank whose hash to use (PCR_BANK_SHA1/256/384/512) and writes
 * pcr_bank_digest_size(bank) bytes to ret; each returns that size, or
 * -EOPNOTSUPP for an unknown bank, -ENOMEM, or what it says. */

/* The longest kernel command line taken, in bytes of UTF-8. */
#define PREDICT_CMDLINE_MAX (64U * 1024U)

/* The tagged-event IDs of the Linux EFI stub's PCR 9 events (EV_EVENT_TAG;
 * the event data is TCG_PCClientTaggedEvent: ID, size, description). */
#define LINUX_EVENT_TAG_LOAD_OPTIONS 0x8F3B22EDu        /* "LOADED_IMAGE::LoadOptions" */
#define LINUX_EVENT_TAG_INITRD       0x8F3B22ECu        /* "Linux initrd" */

/* The kernel command line as UTF-16LE with its NUL: the LoadOptions the boot
 * loader hands the kernel. cmdline is UTF-8 and must be exactly those
 * LoadOptions: with systemd-boot, the entry's options preceded by the
 * "initrd=…" it adds for each initrd line — /proc/cmdline shows the same,
 * minus its trailing newline. *ret (malloc()ed) gets *ret_size bytes,
 * the NUL included. Returns 0, -EINVAL (not UTF-8, or a character outside
 * the BMP, which neither systemd-boot nor the stub converts), -E2BIG (over
 * PREDICT_CMDLINE_MAX), -ENOMEM. */
int predict_cmdline_utf16(const char *cmdline, uint8_t **ret, size_t *ret_size);

/* The digest of the kernel command line both measure: the Linux EFI stub in
 * PCR 9 (EV_EVENT_TAG, tag LINUX_EVENT_TAG_LOAD_OPTIONS) and systemd-boot in
 * PCR 12 (EV_IPL, the UTF-16LE string as event data). Both hash the
 * UTF-16LE string with its NUL (predict_cmdline_utf16()); seen in a real
 * log of systemd-boot 252 and Linux 6.1. Errors as predict_cmdline_utf16(). */
int predict_cmdline_digest(const char *cmdline, uint16_t bank, uint8_t *ret);

/* The digest of a component measured as it is, byte for byte: the initrd
 * (the Linux EFI stub's "Linux initrd" event in PCR 9 hashes the initrd data
 * the boot loader serves; one initrd file, as it is on the ESP). */
int predict_data_digest(const void *p, size_t size, uint16_t bank, uint8_t *ret);

/* As predict_data_digest() for everything read from fd up to its end (an
 * initrd file; tens of MiB, so it is streamed). Returns the size, or a
 * negative errno from read(). */
int predict_fd_digest(int fd, uint16_t bank, uint8_t *ret);

/* The digest of a UEFI variable as the firmware measures it into PCR 7
 * (EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY): the hash of
 * UEFI_VARIABLE_DATA = vendor GUID (16 bytes, as on the wire:
 * mixed-endian), UINT64 LE length of the name in UTF-16 units, UINT64 LE
 * data size, the name in UTF-16LE without NUL, the data. name is ASCII
 * (every variable the boot chain measures is). Not for PCR 1's
 * EV_EFI_VARIABLE_BOOT events: for those EDK2 (OVMF) hashes the variable's
 * data alone (predict_data_digest()), as a real log shows.
 * Returns the size, or -EINVAL for a name that is not ASCII, -E2BIG for one
 * over 1024 characters. */
int predict_uefi_variable_digest(const uint8_t guid[16], const char *name, const void *data, size_t size,
                                 uint16_t bank, uint8_t *ret);

/* Substitution (design.md section 10): the next boot's PCR values are the
 * replay of this boot's log with the events of the components an update
 * replaces measured as the new components. */
typedef enum PredictComponent {
        PREDICT_BOOT_LOADER,    /* the first EFI application the firmware started (PCR 4) */
        PREDICT_KERNEL,         /* the last EFI application started (PCR 4) */
        PREDICT_INITRD,         /* the EFI stub's "Linux initrd" event (PCR 9) */
        PREDICT_CMDLINE,        /* the EFI stub's LoadOptions event (PCR 9) and every event
                                 * of the same digest in PCR 12 (systemd-boot's EV_IPL) */
        _PREDICT_COMPONENT_MAX,
} PredictComponent;

/* "boot-loader", "kernel", "initrd", "cmdline". */
const char *predict_component_to_string(PredictComponent c);

/* The new components' digests in one bank: has[c] set for those replaced. */
typedef struct PredictDigests {
        uint16_t bank;
        bool has[_PREDICT_COMPONENT_MAX];
        uint8_t digest[_PREDICT_COMPONENT_MAX][EVENTLOG_DIGEST_MAX];
} PredictDigests;

#define PREDICT_SUBSTITUTIONS_MAX 64U

typedef struct PredictResult {
        EventLogReplay current;         /* the log as it is */
        EventLogReplay predicted;       /* with the substitutions */
        uint32_t substituted;           /* mask of the PCRs a substitution touched */
        size_t n_substitutions;
        struct {
                size_t event;           /* index in log->events */
                uint32_t pcr;
                PredictComponent component;
        } substitutions[PREDICT_SUBSTITUTIONS_MAX];
        PredictComponent missing;       /* with -ENOENT: the component the log has no event for */
} PredictResult;

/* Replays log in d->bank as it is and with the events of every component in
 * d->has measured as d->digest. The events are found by what the boot
 * chain logs (see PredictComponent); every event of the same PCR with the
 * same digest as the one found is replaced too (a component measured
 * twice). Returns 0; -ENOENT when the log has no event for a component
 * (ret->missing says which); -EINVAL when the boot loader and the kernel
 * are both given but the log shows only one EFI application (a kernel the
 * firmware starts itself) or the same one; -E2BIG past
 * PREDICT_SUBSTITUTIONS_MAX; else as eventlog_replay(). The result is only
 * as good as the log: a caller trusts a substituted PCR only where
 * ret->current equals the TPM's value. */
int predict_substitute(const EventLog *log, const PredictDigests *d, PredictResult *ret);
