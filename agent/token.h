/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* LUKS2 token JSON ⇄ struct, pure code (fuzzed). The JSON comes from the
 * LUKS2 header, which is unauthenticated: every field is type- and
 * range-checked.
 *
 * Format: systemd's "systemd-tpm2" token (design.md section 4), plus
 * unlockd's own fields, which systemd ignores:
 *   "unlockd-pcr-values": ["<hex digest>", …]  PCR values sealed to, in
 *                                              index order of tpm2-pcrs,
 *                                              in the tpm2-pcr-bank bank
 *   "unlockd-generation": <integer 0..2^32-1>   re-seal generation
 *   "unlockd-proof": "<hex>"                   proof that the keyslot holds a
 *                                              secret only unlockd had
 *                                              (ownership.h)
 *   "unlockd-predicted": "kernel+initrd"       sealed to a prediction of the
 *                                              next boot with these components
 *                                              replaced (predict.h)
 */

#define TOKEN_TYPE_TPM2 "systemd-tpm2"
#define TOKEN_TYPE_RECOVERY "systemd-recovery"
#define TOKEN_TYPE_PENDING "unlockd-pending"

/* Re-seal generations are at most this (a forged larger one would make the
 * next generation overflow); the proof of ownership is an HMAC-SHA256. */
#define TOKEN_GENERATION_MAX UINT32_MAX
#define TOKEN_PROOF_SIZE 32

/* Bounds on attacker-controlled sizes. */
#define TOKEN_JSON_MAX (64 * 1024)
#define TOKEN_BLOB_MAX 4096

typedef struct Tpm2Token {
        int keyslot;                    /* the single keyslot, ≥ 0 */

        uint8_t *blob;                  /* decoded tpm2-blob: TPM2B_PRIVATE ‖ TPM2B_PUBLIC [‖ seed] */
        size_t blob_size;               /* (of the first shard: a one-element array is the same token) */
        bool import_seed;               /* the blob ends in a TPM2B_ENCRYPTED_SECRET: sealed offline
                                         * (systemd-cryptenroll --tpm2-device-key), TPM2_Import before Load */

        uint32_t pcr_mask;              /* tpm2-pcrs */
        uint16_t pcr_bank;              /* TPM2_ALG_ID; 0 when the field is absent */
        uint16_t primary_alg;           /* TPM2_ALG_ECC or TPM2_ALG_RSA; 0 when absent (= ECC) */

        uint8_t *policy_hash;           /* tpm2-policy-hash, decoded */
        size_t policy_hash_size;

        bool pin;                       /* tpm2-pin */
        uint8_t *salt;                  /* tpm2_salt, decoded; NULL when absent */
        size_t salt_size;
        uint8_t *srk;                   /* tpm2_srk: serialized ESYS_TR of the parent; NULL when absent */
        size_t srk_size;
        uint8_t *pubkey;                /* tpm2_pubkey, decoded: the PEM text of the signed-policy key;
                                         * NULL when the token has no signed PCR policy */
        size_t pubkey_size;
        uint32_t pubkey_pcr_mask;       /* tpm2_pubkey_pcrs: the PCRs the signed policy covers */

        uint8_t *sealed_pcr_values;     /* unlockd-pcr-values, concatenated; NULL when absent */
        size_t sealed_pcr_values_size;
        uint64_t generation;            /* unlockd-generation, 0 when absent */
        bool has_proof;                 /* unlockd-proof present (see ownership.h) */
        uint8_t proof[TOKEN_PROOF_SIZE];
        unsigned predicted;             /* unlockd-predicted: mask of PredictComponent; 0: not a prediction */

        /* When the token parsed but uses a feature unlockd cannot unseal:
         * "two shards (…)" (a two-element tpm2-blob array), "tpm2_pubkey
         * without tpm2_pubkey_pcrs" (and the reverse), "tpm2_pcrlock", "tpm2-pcr-bank",
         * "tpm2-primary-alg" (unknown algorithm), "tpm2-blob (import seed)
         * without tpm2_srk". NULL when fully supported. */
        char *unsupported;
} Tpm2Token;

Tpm2Token *tpm2_token_free(Tpm2Token *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tpm2Token *, tpm2_token_free);

/* Parses a systemd-tpm2 token. tpm2-blob and tpm2-policy-hash may be
 * strings or (systemd ≥ 256) arrays of one or two, as many hashes as blobs.
 * Returns 0 with *ret set; -EMEDIUMTYPE when the
 * type is not systemd-tpm2; -EBADMSG when malformed, with *ret_error (if
 * non-NULL) a malloc()ed sentence naming the field and the fault. A token
 * with unknown extra fields parses; one with a field that changes how it must
 * be unsealed and that unlockd does not support parses with ->unsupported set. */
int tpm2_token_parse(const char *json, Tpm2Token **ret, char **ret_error);

/* Formats a token as compact JSON (the exact field set and spelling systemd
 * v252 writes, then tpm2_salt and tpm2_srk when set, in systemd's order, then
 * the unlockd- fields). Returns 0 or -ENOMEM; -EINVAL for a token that is
 * inconsistent, has ->unsupported set, or has a signed PCR policy (unlockd
 * seals none, and writes no token that it would have to sign for). */
int tpm2_token_format(const Tpm2Token *t, char **ret_json);

/* "kernel+initrd" for a mask of PredictComponent (malloc()ed; "" for 0),
 * or NULL on OOM. */
char *token_predicted_to_string(unsigned mask);

/* The signature JSON of signed PCR policies, as systemd-measure writes it
 * and systemd-stub leaves it in the initrd:
 *   {"sha256":[{"pcrs":[11],"pkfp":"<hex>","pol":"<hex>","sig":"<base64>"},…],…}
 * Finds the entry for bank, the PCR mask, the public key's fingerprint (when
 * the entry has one) and the policy digest pol. The text is untrusted (the
 * TPM verifies the signature): parsed strictly, bounded by PCR_SIGNATURE_MAX.
 * Returns 0 with the signature (malloc()ed) in *ret_sig; -ENOENT when no
 * entry matches; -EBADMSG when the text is not such a JSON object (with
 * *ret_error, if non-NULL, a malloc()ed sentence). Entries that do not
 * match are skipped whatever they hold; a matching one must be well formed. */
#define PCR_SIGNATURE_MAX (256 * 1024)
#define PCR_SIGNATURE_SIG_MAX 512       /* RSA-4096 */
int pcr_signature_find(const char *json, uint16_t bank, uint32_t mask, const uint8_t *fp, size_t fp_size,
                       const uint8_t *pol, size_t pol_size, uint8_t **ret_sig, size_t *ret_sig_size,
                       char **ret_error);

/* Reads "type" and the single "keyslots" entry of any token JSON. Returns 0;
 * -EBADMSG when it is not a JSON object with a string "type". *ret_type is
 * malloc()ed; *ret_keyslot is -1 unless "keyslots" holds exactly one keyslot
 * number "0".."31". */
int token_get_type_and_keyslot(const char *json, char **ret_type, int *ret_keyslot);

/* Formats {"type":"systemd-recovery","keyslots":["N"]}. */
int recovery_token_format(int keyslot, char **ret_json);

/* unlockd's marker of a keyslot added for a re-seal whose TPM2 token is not
 * written yet: {"type":"unlockd-pending","keyslots":["N"],
 * "unlockd-generation":G[,"unlockd-proof":"<hex>"]}. */
typedef struct PendingToken {
        int keyslot;
        uint64_t generation;
        bool has_proof;
        uint8_t proof[TOKEN_PROOF_SIZE];
} PendingToken;

/* Parses a pending marker strictly. Returns 0; -EMEDIUMTYPE for another
 * type; -EBADMSG (with *ret_error) when malformed. */
int pending_token_parse(const char *json, PendingToken *ret, char **ret_error);
int pending_token_format(const PendingToken *p, char **ret_json);

/* Parses a whole JSON text of at most max bytes: strict syntax, valid
 * UTF-8, bounded nesting, nothing after the value but white space. Returns
 * NULL on any fault. For every JSON that comes from a LUKS2 header. */
struct json_object;
struct json_object *json_parse_strict(const char *text, size_t max);

/* The "unlockd-generation" of any token JSON, whatever else it holds (a
 * marker or TPM2 token whose keyslot libcryptsetup already unassigned).
 * Returns 0, -ENOENT when absent, -EBADMSG. */
int token_get_generation(const char *json, uint64_t *ret);
