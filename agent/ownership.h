/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "luks.h"
#include "token.h"

/* Which keyslots unlockd may remove (README, "Security": the ownership
 * rule). The LUKS2 header is attacker-writable without any passphrase, so
 * nothing it merely says (a token's type, the keyslot it names) proves
 * that a keyslot is unlockd's. The proof is an HMAC-SHA256 under a key
 * derived from the volume key, over the volume UUID and the identity of
 * the keyslot's material (its KDF salt and binary area): unlockd writes it
 * ("unlockd-proof") into the marker or TPM2 token of a keyslot whose
 * secret only it had (a re-seal secret it generated, a secret the TPM
 * unsealed and the keyslot accepted), and checks it with the volume key
 * before removing that keyslot. Forging one, or moving one to another
 * keyslot, needs the volume key. */

typedef enum KeyslotKind {
        KEYSLOT_UNUSED,
        KEYSLOT_PASSPHRASE,             /* no token */
        KEYSLOT_RECOVERY,               /* systemd-recovery tokens only */
        KEYSLOT_TPM2,                   /* a systemd-tpm2 token */
        KEYSLOT_PENDING,                /* an unlockd-pending marker */
        KEYSLOT_OTHER,                  /* a token of another type (fido2, clevis, …) */
} KeyslotKind;

/* What the header says a keyslot is: the token types assigned to it (as
 * libcryptsetup assigns them, every keyslot of a token counted). Any
 * non-recovery token makes it not typeable. */
KeyslotKind keyslot_kind(struct crypt_device *cd, int keyslot);
const char *keyslot_kind_to_string(KeyslotKind k);

/* The keyslots a person can type into, by the header: passphrase and
 * recovery keyslots. A forged claim can only make this smaller (the safe
 * direction for a guard). */
uint32_t keyslots_typeable(struct crypt_device *cd);

/* Computes the proof for keyslot under the volume key. Returns 0 or
 * negative errno (-ENOENT: keyslot not in use). */
int ownership_proof(struct crypt_device *cd, const LuksVolumeKey *vk, int keyslot,
                    uint8_t ret[static TOKEN_PROOF_SIZE]);

/* Whether a token of keyslot (systemd-tpm2 or unlockd-pending) carries a
 * valid proof for it. Returns 1 yes, 0 no, negative errno. */
int ownership_proven(struct crypt_device *cd, const LuksVolumeKey *vk, int keyslot);

/* The ownership rule. Returns 0 when unlockd may remove keyslot now: it is
 * proven its own, it is not the keyslot a typed credential opened the
 * volume with this boot (opened_keyslot, -1 if none), it has no
 * systemd-recovery token, and a keyslot a person can type remains (by the
 * header, or opened_keyslot, which is typeable whatever the header says).
 * Otherwise -ENOKEY when only the proof is missing or does not verify (the
 * one case where removing it by hand may be right), -EPERM when the keyslot
 * is one a person uses; *ret_why (optional) is a sentence either way. Other
 * negative errno on failure. */
int ownership_may_remove(struct crypt_device *cd, const LuksVolumeKey *vk, int keyslot, int opened_keyslot,
                         const char **ret_why);

/* Adds "unlockd-proof" for keyslot to token (any type), keeping every other
 * field as it is; the token is rewritten in place. Returns 0 or negative
 * errno. */
int ownership_adopt_token(struct crypt_device *cd, const LuksVolumeKey *vk, int token, int keyslot);
