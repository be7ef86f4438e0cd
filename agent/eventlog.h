/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "pcr.h"

/* The firmware's TCG event log (TCG PC Client Platform Firmware Profile,
 * "crypto agile" format, as /sys/kernel/security/tpm0/binary_bios_measurements
 * gives it): a SHA-1-format header event whose data is the "Spec ID Event03"
 * structure (the digest banks and their sizes), then TCG_PCR_EVENT2 records
 * with one digest per bank. All integers little-endian.
 *
 * The log is attacker-influenced input (anything that runs before the OS can
 * log what it likes): every length is checked against what is left, every
 * count against a fixed bound, and a record that does not fit ends the parse
 * with -EBADMSG rather than a guess. Replaying it only says what the log
 * claims; a caller trusts a PCR's replay only when it equals the TPM's value. */

/* TCG event types used here (TCG PC Client PFP, section 10.4.1). */
#define EV_PREBOOT_CERT                  0x00000000u
#define EV_POST_CODE                     0x00000001u
#define EV_NO_ACTION                     0x00000003u
#define EV_SEPARATOR                     0x00000004u
#define EV_ACTION                        0x00000005u
#define EV_EVENT_TAG                     0x00000006u
#define EV_S_CRTM_CONTENTS               0x00000007u
#define EV_S_CRTM_VERSION                0x00000008u
#define EV_CPU_MICROCODE                 0x00000009u
#define EV_PLATFORM_CONFIG_FLAGS         0x0000000Au
#define EV_TABLE_OF_DEVICES              0x0000000Bu
#define EV_COMPACT_HASH                  0x0000000Cu
#define EV_IPL                           0x0000000Du
#define EV_IPL_PARTITION_DATA            0x0000000Eu
#define EV_NONHOST_CODE                  0x0000000Fu
#define EV_NONHOST_CONFIG                0x00000010u
#define EV_NONHOST_INFO                  0x00000011u
#define EV_OMIT_BOOT_DEVICE_EVENTS       0x00000012u
#define EV_EFI_VARIABLE_DRIVER_CONFIG    0x80000001u
#define EV_EFI_VARIABLE_BOOT             0x80000002u
#define EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u
#define EV_EFI_BOOT_SERVICES_DRIVER      0x80000004u
#define EV_EFI_RUNTIME_SERVICES_DRIVER   0x80000005u
#define EV_EFI_GPT_EVENT                 0x80000006u
#define EV_EFI_ACTION                    0x80000007u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB    0x80000008u
#define EV_EFI_HANDOFF_TABLES            0x80000009u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB2   0x8000000Au
#define EV_EFI_HANDOFF_TABLES2           0x8000000Bu
#define EV_EFI_VARIABLE_BOOT2            0x8000000Cu
#define EV_EFI_HCRTM_EVENT               0x80000010u
#define EV_EFI_VARIABLE_AUTHORITY        0x800000E0u
#define EV_EFI_SPDM_FIRMWARE_BLOB        0x800000E1u
#define EV_EFI_SPDM_FIRMWARE_CONFIG      0x800000E2u

/* Bounds. A real log is a few KiB to a few hundred KiB with at most a few
 * thousand events; TPMs implement at most a handful of banks, and no TPM
 * hash is longer than SHA-512. */
#define EVENTLOG_SIZE_MAX   (16U * 1024U * 1024U)
#define EVENTLOG_EVENTS_MAX 65536U
#define EVENTLOG_BANKS_MAX  8U
#define EVENTLOG_DIGEST_MAX 64U

typedef struct EventLogBank {
        uint16_t alg;           /* TPM2_ALG_ID, e.g. PCR_BANK_SHA256 */
        uint16_t size;          /* digest size the header declares */
} EventLogBank;

typedef struct EventLogEvent {
        uint32_t pcr;           /* as logged; may be out of 0..23 (replay skips such events) */
        uint32_t type;
        /* One digest per bank, in the order of EventLog.banks, each
         * banks[i].size bytes. Points into the log's own copy. */
        const uint8_t *digests[EVENTLOG_BANKS_MAX];
        const uint8_t *data;    /* the event data; NULL when data_size is 0 */
        uint32_t data_size;
        size_t offset;          /* of the record in the log, for messages */
} EventLogEvent;

typedef struct EventLog {
        uint8_t *buf;           /* the whole log, copied */
        size_t size;
        /* From the Spec ID header event. */
        uint32_t platform_class;
        uint8_t spec_version_major, spec_version_minor, spec_errata, uintn_size;
        EventLogBank banks[EVENTLOG_BANKS_MAX];
        size_t n_banks;
        /* The TCG_PCR_EVENT2 records after the header, in log order. */
        EventLogEvent *events;
        size_t n_events;
} EventLog;

/* Parses a crypto-agile event log of size bytes (the data is copied; the
 * result does not refer to p). The header event must be the SHA-1-format
 * EV_NO_ACTION in PCR 0 with a "Spec ID Event03" structure; every record
 * must carry exactly one digest for each bank the header declares, in any
 * order. Returns 0, or -EOPNOTSUPP for a log in the SHA-1-only format of
 * TPM 1.2 firmware (or any other log that does not start with the Spec ID
 * header: it is not read as something it may not be), -EBADMSG for a
 * malformed one, -EFBIG when over EVENTLOG_SIZE_MAX or EVENTLOG_EVENTS_MAX,
 * -ENOMEM. */
int eventlog_parse(const void *p, size_t size, EventLog **ret);

/* Frees a log from eventlog_parse(); NULL is fine. Returns NULL. */
EventLog *eventlog_free(EventLog *log);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventLog *, eventlog_free);

/* The index of bank alg in log->banks, or -ENOENT when the log has none. */
int eventlog_bank_index(const EventLog *log, uint16_t alg);

/* The digest of event e in bank alg (log->banks[i].size bytes), or NULL when
 * the log has no such bank. */
const uint8_t *eventlog_event_digest(const EventLog *log, const EventLogEvent *e, uint16_t alg);

/* The OpenSSL hash of a PCR bank (SHA-1/256/384/512), or NULL for others. */
const EVP_MD *eventlog_bank_md(uint16_t bank);

/* The name the TCG gives an event type ("EV_SEPARATOR", …), or NULL. */
const char *eventlog_type_to_string(uint32_t type);

/* The PCR values a replay of the log gives for one bank. */
typedef struct EventLogReplay {
        uint16_t bank;
        size_t digest_size;
        uint8_t values[PCR_MAX][EVENTLOG_DIGEST_MAX];
        uint32_t extended;      /* mask of the PCRs at least one event extended */
        uint8_t startup_locality; /* PCR 0's initial locality (0 if not logged) */
} EventLogReplay;

/* Replays the log in bank alg: every PCR starts at its reset value (zeros;
 * all-ones for PCRs 17-22, the D-RTM PCRs no D-RTM event has reset), and
 * every event but EV_NO_ACTION extends its PCR: v = H(v || digest). An
 * EV_NO_ACTION "StartupLocality" event in PCR 0, logged before anything
 * extended PCR 0, sets PCR 0's initial value to zeros ending in the locality
 * byte (TPM2_Startup from locality 3; 4 with an H-CRTM), as the TPM does.
 * Events for PCRs beyond 23 are skipped. Returns 0, -ENOENT when the log has
 * no such bank, -EOPNOTSUPP when the bank's hash is not one OpenSSL gives
 * here, -EBADMSG when the header's digest size is not that hash's, -ENOMEM. */
int eventlog_replay(const EventLog *log, uint16_t alg, EventLogReplay *ret);
