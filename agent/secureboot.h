/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "efivars.h"
#include "eventlog.h"
#include "macro.h"

/* PCR 7 predicted from the Secure Boot variables and the boot chain's EFI
 * binaries, with no TPM and no event log (design.md section 11). The model
 * is what EDK2 firmware (OVMF) and shim ≥ 15.7 measure:
 *
 *  firmware  EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot, PK, KEK, db, dbx
 *            (dbt too when present), each as UEFI_VARIABLE_DATA of the
 *            variable's data (empty when absent); EV_SEPARATOR 00000000;
 *            when Secure Boot is on, EV_EFI_VARIABLE_AUTHORITY "db" with the
 *            EFI_SIGNATURE_DATA that verified the first image (the first
 *            Authenticode signature whose chain a db X.509 entry anchors,
 *            else the db SHA-256 entry of the image's digest), and so for
 *            every further image it verifies (each authority once).
 *  shim      (when the first image is shim) MokSBState when set, SbatLevel
 *            as shim applies it, then for each image it verifies (grub, the
 *            kernel) the authority that verified it: "db" (firmware db),
 *            "vendor_db", or "MokListRT" for its built-in vendor
 *            certificate (owner SHIM_LOCK_GUID) and the MOKs, each once.
 *
 * Everything here is computed; nothing of it is trusted beyond what the
 * inputs say: a chain the model does not know is refused with a reason. */

#define SECUREBOOT_EVENTS_MAX 32U
#define SECUREBOOT_IMAGES_MAX 8U

typedef struct SecureBootEvent {
        uint32_t type;                  /* EV_EFI_VARIABLE_DRIVER_CONFIG, EV_SEPARATOR, EV_EFI_VARIABLE_AUTHORITY;
                                         * PCR 4: EV_EFI_ACTION, EV_EFI_BOOT_SERVICES_APPLICATION */
        char name[32];                  /* the variable's name; "" for the separator */
        uint8_t guid[16];
        uint8_t *data;                  /* the measured variable data (the separator's 4 bytes, the
                                         * action's string; NULL for an EFI image) */
        size_t size;
        uint8_t digest[EVENTLOG_DIGEST_MAX];
        char what[256];                 /* what measured it and why, for messages */
} SecureBootEvent;

typedef struct SecureBootPrediction {
        unsigned pcr;                   /* 7, or 4 */
        uint16_t bank;
        size_t digest_size;
        uint8_t secure_boot;            /* the SecureBoot value measured (PCR 7) */
        SecureBootEvent events[SECUREBOOT_EVENTS_MAX];
        size_t n_events;
        uint8_t value[EVENTLOG_DIGEST_MAX];     /* the PCR's predicted value */
} SecureBootPrediction;

typedef struct SecureBootImage {
        const char *name;               /* for messages */
        const uint8_t *data;
        size_t size;
} SecureBootImage;

/* Predicts PCR 7 in bank for the store vars and the chain images[0..n)
 * in load order (the first is what the firmware starts; with shim, the
 * rest are what shim verifies: grub, the kernel; at least one). With
 * Secure Boot off, the images are not verified and measure nothing: the
 * pre-boot events are all (shim, which measures its state even then, is
 * refused). *ret is malloc()ed. Returns 0, or -EOPNOTSUPP / -EPERM /
 * -EBADMSG with *ret_error (malloc()ed, if ret_error) saying why the value
 * would not be trustworthy (an image no db entry allows, one dbx forbids,
 * a shim older than 15.7 or of unknown layout, SbatPolicy reset), or
 * -ENOMEM, -EINVAL. */
int secureboot_predict_pcr7(const EfiVarStore *vars, const SecureBootImage *images, size_t n_images,
                            uint16_t bank, SecureBootPrediction **ret, char **ret_error);

/* The boot options the firmware tries, and fails, before the one that
 * starts the chain: each adds two events to PCR 4. At most this many. */
#define SECUREBOOT_FAILED_BOOT_OPTIONS_MAX 4U

/* Predicts PCR 4 for the chain images[0..n) in load order, what EDK2
 * (OVMF) and shim 16 measure there (design.md section 11):
 *
 *  firmware  EV_EFI_ACTION "Calling EFI Application from Boot Option";
 *            EV_SEPARATOR 00000000 (at ReadyToBoot, during the first boot
 *            option); for each of the failed_boot_options options that
 *            did not start (an empty DVD drive ahead of the disk in QEMU's
 *            default order), "Returning from EFI Application from Boot
 *            Option" and "Calling ..." again; then
 *            EV_EFI_BOOT_SERVICES_APPLICATION with the Authenticode digest
 *            of the first image, and of every image started through its
 *            LoadImage (systemd-boot starts the kernel so).
 *  shim 16   the image it starts (grub, or the kernel) once; what grub then
 *            loads through shim's loader protocol (the kernel) twice: shim
 *            measures it, and the firmware's LoadImage, which shim calls,
 *            again — as a real boot of Debian 12's shim 16.1 and grub 2.06
 *            logs it. Other shim versions are refused, and so is grub
 *            without shim (its own loader measures nothing to PCR 4 here).
 *
 * The count of failed boot options cannot be read from a variable store
 * that has not booted yet (the firmware writes its boot options at the
 * first boot): the caller knows it from the machine's configuration. */
int secureboot_predict_pcr4(const SecureBootImage *images, size_t n_images, unsigned failed_boot_options,
                            uint16_t bank, SecureBootPrediction **ret, char **ret_error);

SecureBootPrediction *secureboot_prediction_free(SecureBootPrediction *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(SecureBootPrediction *, secureboot_prediction_free);

/* For shim: the SBAT level it applies (the payload of its .sbatlevel
 * section SbatPolicy picks, or the store's SbatLevel where that is newer),
 * the version from .data.ident ("15.8"), and the built-in vendor
 * certificates (.vendor_cert: one X.509 DER, or EFI_SIGNATURE_LISTs).
 * Exposed for the tests. Each returns 0, -ENOENT when the image is not
 * shim (no such section), -EBADMSG. Outputs point into image. */
int secureboot_shim_version(const uint8_t *image, size_t size, unsigned *ret_major, unsigned *ret_minor);
int secureboot_shim_sbatlevel(const uint8_t *image, size_t size, bool latest, const char **ret, size_t *ret_size);
int secureboot_shim_vendor_cert(const uint8_t *image, size_t size, const uint8_t **ret, size_t *ret_size,
                                bool *ret_is_esl);
