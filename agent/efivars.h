/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* UEFI variables as a VM's firmware keeps them, read offline (design.md
 * section 11): the Secure Boot databases an image builder predicts PCR 7
 * from. The sources are attacker-controlled files: every length is checked
 * against what is left and against the bounds below, and a store that
 * does not parse as one meaning is refused, not guessed at. */

/* Bounds. OVMF's largest store is 4 MiB; db/dbx are tens of KiB. */
#define EFIVARS_FILE_MAX     (64U * 1024U * 1024U)
#define EFIVARS_VARIABLES_MAX 4096U
#define EFIVARS_NAME_MAX     1024U      /* UTF-16 units, NUL excluded */

/* Attributes (UEFI 2.10, SetVariable()). */
#define EFI_VARIABLE_NON_VOLATILE                          0x00000001u
#define EFI_VARIABLE_BOOTSERVICE_ACCESS                    0x00000002u
#define EFI_VARIABLE_RUNTIME_ACCESS                        0x00000004u
#define EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS 0x00000020u

/* The vendor GUIDs as they are on the wire (mixed-endian). */
extern const uint8_t EFI_GLOBAL_VARIABLE_GUID[16];              /* 8be4df61-93ca-11d2-aa0d-00e098032b8c */
extern const uint8_t EFI_IMAGE_SECURITY_DATABASE_GUID[16];      /* d719b2cb-3d3a-4596-a3bc-dad00e67656f */
extern const uint8_t EFI_SHIM_LOCK_GUID[16];                    /* 605dab50-e046-4300-abb6-3dd810dd8b23 */
extern const uint8_t EFI_SECURE_BOOT_ENABLE_DISABLE_GUID[16];   /* f0a30bc7-af08-4556-99c4-001009c93a44 */
extern const uint8_t EFI_CERT_X509_GUID[16];                    /* a5c059a1-94e4-4aa7-87b5-ab155c2bf072 */
extern const uint8_t EFI_CERT_SHA256_GUID[16];                  /* c1c41626-504c-4092-aca9-41f936934328 */

typedef struct EfiVariable {
        uint8_t guid[16];
        char *name;             /* ASCII (a name with other characters is kept as '?'s) */
        uint32_t attributes;
        uint8_t *data;          /* NULL when size is 0 */
        size_t size;
} EfiVariable;

typedef struct EfiVarStore {
        EfiVariable *variables;
        size_t n_variables;
        /* Whether SecureBoot in the store is what the firmware computes at
         * start (OVMF: PK present and SecureBootEnable not 0) rather than a
         * stored value: see efivars_secure_boot(). */
        bool computed_secure_boot;
} EfiVarStore;

/* Parses an EDK2 (OVMF, AAVMF) variable store file as a VM's VARS .fd is:
 * a firmware volume (EFI_FIRMWARE_VOLUME_HEADER, FileSystemGuid
 * EFI_SYSTEM_NV_DATA_FV_GUID, signature "_FVH") holding a
 * VARIABLE_STORE_HEADER (authenticated or plain format, formatted and
 * healthy) and its VARIABLE_HEADER entries up to the first without the
 * 0x55AA start mark. An entry counts when its State is VAR_ADDED; one
 * whose deletion was under way (VAR_ADDED & VAR_IN_DELETED_TRANSITION)
 * counts only when no VAR_ADDED entry of the same name and GUID exists,
 * as the firmware reads it; deleted entries are skipped. Returns 0,
 * -EBADMSG when malformed (two live entries of one variable included),
 * -EFBIG over the bounds, -ENOMEM. */
int efivars_parse_ovmf(const void *p, size_t size, EfiVarStore **ret);

/* Parses the JSON form {"PK": BASE64, "KEK": …, "db": …, "dbx": …} (each
 * the variable's data: EFI_SIGNATURE_LISTs, no attributes, no
 * authentication header; a key absent or null is a variable absent) that
 * image-building tools keep a cloud VM's Secure Boot configuration in.
 * SecureBoot is on when PK is there. Other keys are ignored. Returns 0,
 * -EBADMSG, -ENOMEM. */
int efivars_parse_json(const char *text, size_t size, EfiVarStore **ret);

/* Reads a file of either kind (by its content), or a directory: of ESL
 * files (PK.esl, KEK*.esl, db*.esl, dbx*.esl, each database the files'
 * lists in name order; Secure Boot on with a PK), else an efivarfs
 * directory (/sys/firmware/efi/efivars or a copy: files NAME-GUID holding
 * the u32 LE attributes and the data; SecureBoot as stored there).
 * Returns as the parsers, -EBADMSG for a variable file under 4 bytes or a
 * malformed ESL file, or a negative errno of reading. */
int efivars_load(const char *path, EfiVarStore **ret);

EfiVarStore *efivars_free(EfiVarStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(EfiVarStore *, efivars_free);

/* The variable name of vendor guid, or NULL. */
const EfiVariable *efivars_find(const EfiVarStore *s, const uint8_t guid[16], const char *name);

/* The SecureBoot value the firmware measures: with a computed SecureBoot
 * (OVMF), 1 when PK is present and SecureBootEnable is absent or 1, else 0;
 * otherwise the stored SecureBoot's first byte (0 when absent). */
uint8_t efivars_secure_boot(const EfiVarStore *s);

/* Walks the EFI_SIGNATURE_LISTs of a signature database (PK, KEK, db, dbx):
 * each list is SignatureType GUID, u32 ListSize, u32 HeaderSize, u32
 * SignatureSize, the header, then (ListSize - 28 - HeaderSize) /
 * SignatureSize EFI_SIGNATURE_DATA of SignatureSize bytes (owner GUID,
 * data). cb is called for each EFI_SIGNATURE_DATA with its list's type;
 * a positive return stops the walk and is returned. Returns 0, that
 * positive value, -EBADMSG for a malformed database (before any callback:
 * the whole is checked first), or cb's negative errno. */
typedef int (*EfiSignatureCallback)(const uint8_t type[16], const uint8_t *esd, size_t esd_size, void *userdata);
int efivars_signature_foreach(const void *db, size_t size, EfiSignatureCallback cb, void *userdata);
