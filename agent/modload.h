/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Loads kernel modules with libkmod: the TPM drivers (tpm_crb, tpm_tis) and
 * dm_crypt. A module that is built in or absent is not an error: it is
 * reported at debug/notice level. Returns the number of modules inserted,
 * or negative errno when libkmod itself fails. */
int modload_boot_modules(void);

/* Loads one module (or alias). Returns 1 inserted, 0 already loaded or
 * built in, -ENOENT not found, other negative errno. */
int modload_one(const char *name);
