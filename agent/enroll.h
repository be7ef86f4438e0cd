/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "luks.h"

typedef struct EnrollOptions {
        bool tpm2;
        uint32_t pcr_mask;
        uint16_t pcr_bank;              /* 0 = pick */
        const char *pin;                /* NULL = no PIN */
        bool use_srk;
        const char *tcti;
        bool recovery_key;
        const char *escrow_pubkey;      /* PEM file, or NULL */
        const char *wipe;               /* --wipe-slot=: numbers, password, recovery, tpm2, all; NULL: none */
        bool force;                     /* allow leaving no passphrase/recovery keyslot */
        const char *device_key;         /* --tpm2-device-key=: seal offline to this SRK.pub, no TPM */
        const uint8_t *pcr_values;      /* with device_key: the values of the PCRs in pcr_mask, index order */
        size_t pcr_values_size;
} EnrollOptions;

/* Enrolls what the options ask for, authorized by an existing passphrase.
 * Prints the recovery key (or its escrow JSON) on standard output. Returns 0
 * or negative errno; logs its own errors. */
int enroll(struct crypt_device *cd, const char *device, const char *pass, size_t pass_len, const EnrollOptions *o);

/* Encrypts data with RSA-OAEP-SHA256 to the public key in a PEM file and
 * returns base64 of the ciphertext. */
int escrow_encrypt(const char *pem_path, const void *data, size_t size, char **ret_base64);
