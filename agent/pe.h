/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* PE/COFF Authenticode digests of EFI binaries (kernel with its EFI stub,
 * systemd-boot, shim, grub), computed as UEFI firmware computes the digest
 * it measures into PCR 4 (EV_EFI_BOOT_SERVICES_APPLICATION) and checks
 * against db. The image comes from the ESP or a package: attacker-controlled
 * input. Every offset is checked before it is used; an image the firmware
 * would hash ambiguously (sections that overlap each other or the headers,
 * a certificate table that is not at the end) is rejected, not guessed. */

/* Images larger than this are refused (-EFBIG): the biggest EFI binaries
 * (grub, a UKI) are tens of MiB. */
#define PE_IMAGE_SIZE_MAX (256U * 1024U * 1024U)

/* PE/COFF allows at most 96 sections. */
#define PE_SECTIONS_MAX 96U

/* Computes the Authenticode digest of the PE/COFF image image[0..size) with
 * the hash of the PCR bank `bank` (PCR_BANK_SHA1/256/384/512, see pcr.h;
 * Authenticode proper is SHA-256, firmware uses each bank's hash). Hashed,
 * in this order: the headers up to SizeOfHeaders without the CheckSum field
 * and without the Certificate Table entry of the data directory; each
 * section's raw data with SizeOfRawData != 0, in file order; then the
 * trailing data from (SizeOfHeaders + the sum of SizeOfRawData) up to the
 * certificate table (or the end of the file when there is none).
 * ret must hold pcr_bank_digest_size(bank) bytes.
 * Returns the digest size, or -EBADMSG (not a PE image, or a malformed or
 * ambiguous one), -EFBIG (over PE_IMAGE_SIZE_MAX), -EOPNOTSUPP (unknown
 * bank), -ENOMEM. */
int pe_authenticode_digest(const void *image, size_t size, uint16_t bank, uint8_t *ret);

/* The raw data of the section called name (a long name through the COFF
 * string table, as ".sbatlevel" is in shim): its
 * offset in the file and min(VirtualSize, SizeOfRawData) bytes (all of the
 * raw data when VirtualSize is 0). Returns 0, -ENOENT when there is none,
 * -EBADMSG for a malformed image, -EFBIG. */
int pe_find_section(const void *image, size_t size, const char *name, size_t *ret_offset, size_t *ret_size);

/* Where the certificate table (the WIN_CERTIFICATE entries of the
 * Authenticode signatures) is. Returns 0, -ENOENT for an unsigned image,
 * -EBADMSG, -EFBIG. */
int pe_certificate_table(const void *image, size_t size, size_t *ret_offset, size_t *ret_size);
