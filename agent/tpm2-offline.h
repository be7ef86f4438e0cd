/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcr.h"

/* Sealing without the TPM (design.md section 11): pure code on libcrypto.
 * The sealed object is made on the host and wrapped for the TPM's storage
 * key as a duplication blob (TPM 2.0 Part 1, "Protected Storage" and
 * "Duplication"; outer wrapper only), which the TPM takes with TPM2_Import
 * at unlock, as systemd-cryptenroll --tpm2-device-key does. */

/* The persistent handle the SRK is expected at, as systemd records it. */
#define OFFLINE_SRK_HANDLE 0x81000001u

/* OfflineSrk.type: TPM2_ALG_RSA, TPM2_ALG_ECC. */
#define OFFLINE_ALG_RSA 0x0001
#define OFFLINE_ALG_ECC 0x0023

/* Bound on an SRK.pub file (a TPM2B_PUBLIC is at most ~620 bytes). */
#define OFFLINE_SRK_FILE_MAX 4096

typedef struct OfflineSrk {
        uint8_t public[OFFLINE_SRK_FILE_MAX];   /* the TPMT_PUBLIC as given */
        size_t public_size;
        uint8_t name[2 + SHA256_DIGEST_SIZE];   /* nameAlg ‖ SHA256(TPMT_PUBLIC) */
        uint16_t type;                          /* OFFLINE_ALG_RSA or OFFLINE_ALG_ECC */
        uint16_t sym_bits;                      /* AES key bits of the SRK's symmetric scheme */
        uint8_t rsa_modulus[512];
        size_t rsa_modulus_size;
        uint32_t rsa_exponent;
        uint16_t ecc_curve;                     /* TPM2_ECC_NIST_P256 0x0003, P384 0x0004 */
        uint8_t ecc_x[66], ecc_y[66];
        size_t ecc_size;
} OfflineSrk;

/* Parses an SRK.pub: a marshalled TPM2B_PUBLIC (tpm2_readpublic -f tss,
 * systemd-analyze srk). It must be a storage key unlockd can wrap for:
 * restricted decrypt, nameAlg SHA-256, AES-CFB, RSA (≥ 2048 bits) or ECC
 * NIST P-256/P-384. Returns 0; -EBADMSG when malformed, -EOPNOTSUPP for
 * another kind of key, with *ret_error (if non-NULL) a malloc()ed sentence. */
int offline_srk_parse(const uint8_t *data, size_t size, OfflineSrk *ret, char **ret_error);

/* Builds the tpm2-blob of a token sealed offline: TPM2B_PRIVATE (the
 * duplicate) ‖ TPM2B_PUBLIC (a KEYEDHASH object holding secret, authPolicy
 * = policy, noDA unless auth is given) ‖ TPM2B_ENCRYPTED_SECRET (the seed,
 * RSA-OAEP-SHA256 "DUPLICATE" or ECDH + KDFe). auth is the object's auth
 * value (a PIN's, trailing zeros trimmed), or NULL. *ret is malloc()ed.
 * Returns 0, -EINVAL, -ENOMEM, -EIO (libcrypto failure). */
int offline_seal(const OfflineSrk *srk, const uint8_t policy[static SHA256_DIGEST_SIZE], const uint8_t *auth,
                 size_t auth_size, const void *secret, size_t secret_size, uint8_t **ret, size_t *ret_size);

/* The Esys_TR_Serialize() form of the SRK at handle, as tpm2_srk holds it:
 * u32 handle ‖ TPM2B_NAME ‖ u32 1 (a key) ‖ TPM2B_PUBLIC. *ret is
 * malloc()ed. Returns 0 or -ENOMEM. */
int offline_srk_serialize(const OfflineSrk *srk, uint32_t handle, uint8_t **ret, size_t *ret_size);

/* The building blocks, exposed for the unit tests: TPM 2.0 Part 1's KDFa
 * (SP800-108 counter mode, HMAC-SHA256) and KDFe (SP800-56A single step,
 * SHA-256). label is a string (its NUL is part of the input). */
int offline_kdfa(const uint8_t *key, size_t key_size, const char *label, const uint8_t *u, size_t u_size,
                 const uint8_t *v, size_t v_size, uint8_t *ret, size_t bits);
int offline_kdfe(const uint8_t *z, size_t z_size, const char *label, const uint8_t *u, size_t u_size,
                 const uint8_t *v, size_t v_size, uint8_t *ret, size_t bits);

/* Parses systemd's --tpm2-pcrs= syntax with values: "7:sha256=HEX+4:sha256=HEX"
 * (also ",", an optional "0x"), or plain indexes ("7+4"). All entries must
 * name the same bank, and an index may appear once. *ret_values holds the
 * values in index order (malloc()ed; NULL when no entry had a value);
 * *ret_all_values is whether every entry had one; *ret_bank is 0 when no
 * entry named a bank. Returns 0 or -EINVAL, with *ret_error set. */
int pcr_values_from_string(const char *s, uint32_t *ret_mask, uint16_t *ret_bank, uint8_t **ret_values,
                           size_t *ret_values_size, bool *ret_all_values, char **ret_error);
