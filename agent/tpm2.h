/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "token.h"

/* TPM2 access through ESAPI: context, PCR reads, seal and policy unseal.
 *
 * Error codes of this module (documented outcomes, see tpm2_unseal()):
 *   -ENODEV      no TPM (no device, TCTI failed to load or connect)
 *   -ESTALE      PCR policy mismatch: the PCRs differ from sealing time
 *   -ENOLCK      the TPM is in dictionary-attack lockout
 *   -EACCES      wrong PIN
 *   -EOPNOTSUPP  the token or the TPM lacks something needed (bank, algorithm)
 *   -EBADMSG     the token's sealed object is malformed or does not belong to this TPM
 *   -ENOMSG      signed PCR policy: no signature for the PCRs as they are now (no
 *                signature file, or no entry in it for the bank, PCRs, key and digest)
 *   -EKEYREJECTED signed PCR policy: the TPM did not verify the signature with the
 *                token's key
 *   -EIO         any other TPM failure
 */

#define UNLOCKD_SRK_HANDLE 0x81000001
#define UNLOCKD_SECRET_SIZE 32

typedef struct Tpm2Context Tpm2Context;

/* Sets up the process for this module: tpm2-tss takes its log levels from
 * $TSS2_LOG, which this sets, unless the user did, to nothing at all, or to
 * warnings and errors at debug log level (TSS would log on the console).
 * Call once from main(), after the log level is set and before any other
 * tpm2_ call. */
void tpm2_setup(void);

/* Opens a TPM. tcti is a TCTI string ("device:/dev/tpmrm0",
 * "swtpm:path=/run/swtpm.sock", …) or NULL for the default: /dev/tpmrm0,
 * else /dev/tpm0. Returns 0, -ENODEV when there is no TPM, or another
 * negative errno. */
int tpm2_context_new(const char *tcti, Tpm2Context **ret);
Tpm2Context *tpm2_context_free(Tpm2Context *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tpm2Context *, tpm2_context_free);

/* Reads the PCRs in mask from bank; *ret_values is the digests concatenated
 * in index order (malloc()ed). Returns 0; -EOPNOTSUPP when the bank is not
 * allocated; other negative errno on failure. */
int tpm2_pcr_read(Tpm2Context *c, uint16_t bank, uint32_t mask, uint8_t **ret_values, size_t *ret_size);

/* Picks the bank to seal to when none is given: sha256 when it is allocated
 * with values, else sha1. Returns 0 or negative errno. */
int tpm2_pick_bank(Tpm2Context *c, uint32_t mask, uint16_t *ret_bank);

typedef struct Tpm2SealParams {
        uint16_t bank;                  /* PCR bank; 0 = tpm2_pick_bank() */
        uint32_t mask;                  /* PCRs to seal to */
        const uint8_t *pcr_values;      /* values to seal to (index order); NULL = current values */
        size_t pcr_values_size;
        const char *pin;                /* NULL = no PIN */
        bool use_srk;                   /* use a persistent SRK at UNLOCKD_SRK_HANDLE when one exists */
        uint16_t primary_alg;           /* 0 = ECC, falling back to RSA */
} Tpm2SealParams;

/* Seals secret (≤ 128 bytes) to the PCR policy (and PIN). On success *ret is
 * a token with everything but the keyslot filled in: blob, PCRs, bank,
 * primary algorithm, policy hash, pin flag, tpm2_srk when sealed under the
 * persistent SRK, and unlockd-pcr-values. Returns 0 or negative errno. */
int tpm2_seal(Tpm2Context *c, const Tpm2SealParams *p, const void *secret, size_t secret_size, Tpm2Token **ret);

/* Unseals a token's secret with a salted, parameter-encrypted policy
 * session (for a signed PCR policy: PolicyPCR over tpm2_pubkey_pcrs, the
 * signature for that digest verified by the TPM with the token's key, and
 * PolicyAuthorize, before the literal PolicyPCR), after checking the token's tpm2-policy-hash against the sealed
 * object's policy; the TPM refuses a PCR mismatch before it looks at the
 * PIN, so a mismatch never touches the dictionary-attack counter. pin is
 * required when t->pin. On success *ret_secret is a secret buffer
 * (secret_free()). Returns 0 or one of the error codes at the top of this
 * file. */
int tpm2_unseal(Tpm2Context *c, const Tpm2Token *t, const char *pin, void **ret_secret, size_t *ret_size);

/* The signature JSON of signed PCR policies: $UNLOCKD_PCR_SIGNATURE (a
 * test override, read with secure_getenv()) when set, else the first that
 * exists of /etc/systemd/, /run/systemd/, /usr/lib/systemd/
 * tpm2-pcr-signature.json and, in the initrd, /.extra/tpm2-pcr-signature.json
 * (where systemd-stub leaves a UKI's .pcrsig section). tpm2_unseal() reads
 * it once per context, when a token needs it. Returns the path it read, or
 * NULL when none was found (or none was needed yet). */
const char *tpm2_pcr_signature_path(Tpm2Context *c);

/* Derives the TPM auth value from a PIN as systemd does: SHA256(pin), or with
 * a salt SHA256(base64(PBKDF2-HMAC-SHA256(pin, salt, 10000, 32))); trailing
 * zero bytes are stripped (TPM rule). ret must hold 32 bytes; returns the
 * auth value length, or negative errno. */
int tpm2_pin_auth_value(const char *pin, const uint8_t *salt, size_t salt_size, uint8_t ret[32]);

/* The keyslot passphrase of token t, base64 of its unsealed secret (the
 * secret wiped at once): *ret_pass (secret memory) and its length. Returns
 * what tpm2_unseal() returns, or -ENOMEM. */
int tpm2_unseal_passphrase(Tpm2Context *c, const Tpm2Token *t, const char *pin, char **ret_pass, size_t *ret_len);

/* A human sentence for a tpm2_unseal() error code. */
const char *tpm2_strerror(int r);
