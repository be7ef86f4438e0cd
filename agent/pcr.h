/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCR_MAX 24            /* PCR indexes 0..23 */
#define SHA256_DIGEST_SIZE 32

/* TPM2_ALG_ID values of the PCR banks (tss2_tpm2_types.h). */
#define PCR_BANK_SHA1   0x0004
#define PCR_BANK_SHA256 0x000B
#define PCR_BANK_SHA384 0x000C
#define PCR_BANK_SHA512 0x000D

/* Parses a PCR list: indexes 0..23 separated by '+' or ',' ("0+7", "7,9",
 * "4+9+"), or "" for none; duplicates are fine. The names systemd gives PCRs
 * are accepted too ("boot-loader-code" = 4, "secure-boot-policy" = 7,
 * "kernel-initrd" = 9, "kernel-boot" = 11 …).
 * Returns 0 and the bit mask, or -EINVAL. */
int pcr_mask_from_string(const char *s, uint32_t *ret_mask);

/* Formats a mask as "0+7" ("" for 0) into a malloc()ed string, or NULL on OOM. */
char *pcr_mask_to_string(uint32_t mask);

/* Number of bits set. */
unsigned pcr_mask_count(uint32_t mask);

/* "sha1" | "sha256" | "sha384" | "sha512" ⇄ TPM2_ALG_ID. from_string takes
 * any case (as systemd reads tpm2-pcr-bank) and returns 0 or -EOPNOTSUPP for
 * an unknown name; to_string returns NULL for unknown. */
int pcr_bank_from_string(const char *s, uint16_t *ret_bank);
const char *pcr_bank_to_string(uint16_t bank);
/* Digest size of a bank's hash, 0 for unknown. */
size_t pcr_bank_digest_size(uint16_t bank);

/* Marshals the TPML_PCR_SELECTION that PolicyPCR and PCR_Read take for one
 * bank: count=1, hash, sizeofSelect=3, pcrSelect[3]. Writes 10 bytes. */
void pcr_selection_marshal(uint16_t bank, uint32_t mask, uint8_t ret[10]);

/* PolicyPCR digest update, always SHA256:
 *   d = SHA256(d || 0000017F || TPML_PCR_SELECTION || SHA256(values))
 * where values are the selected PCRs' digests concatenated in index order
 * (values_size must be pcr_mask_count(mask) × pcr_bank_digest_size(bank)).
 * digest is updated in place. Returns 0, or -EINVAL on a size mismatch or
 * unknown bank. */
int policy_digest_pcr(uint8_t digest[SHA256_DIGEST_SIZE], uint16_t bank, uint32_t mask,
                      const uint8_t *values, size_t values_size);

/* PolicyAuthValue digest update: d = SHA256(d || 0000016B). */
void policy_digest_auth_value(uint8_t digest[SHA256_DIGEST_SIZE]);

/* Extends a SHA-256 policy digest as TPM2_PolicyAuthorize does, with an
 * empty policyRef: the digest is reset, then D = H(H(0 ‖ CC ‖ key_name)).
 * key_name is the TPM2B_NAME's buffer (algorithm ‖ digest). Returns 0 or
 * -EINVAL/-EIO. */
int policy_digest_authorize(uint8_t digest[SHA256_DIGEST_SIZE], const uint8_t *key_name, size_t key_name_size);

/* Full policy digest of a token's policy (PolicyPCR, then PolicyAuthValue when
 * pin), starting from all-zeros. Returns 0 or -EINVAL. With mask 0 there
 * is no PolicyPCR at all (as in systemd's tokens), so the digest is all zeros,
 * or PolicyAuthValue's alone. */
int policy_digest_compute(uint16_t bank, uint32_t mask, const uint8_t *values, size_t values_size,
                          bool pin, uint8_t ret[SHA256_DIGEST_SIZE]);
