/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "encoding.h"
#include "pcr.h"
#include "predict.h"
#include "token.h"

/* The token JSON comes from an unauthenticated LUKS2 header. Every field is
 * checked for type, size and range; a field of the wrong JSON type is a
 * malformed token (-EBADMSG with a sentence naming it), a well-formed field
 * that asks for something unlockd cannot do marks the token unsupported.
 * Nothing here is secret: the blob is sealed, the policy hash is public. */

#define SALT_MAX 1024
#define SRK_MAX 1024
#define PUBKEY_MAX 4096                 /* PEM of an RSA-4096 key: ~800 bytes */
#define KEYSLOT_MAX 31                  /* LUKS2 keyslots 0..31 */
#define JSON_DEPTH_MAX 16
#define TPM2_ALG_RSA_ID 0x0001
#define TPM2_ALG_ECC_ID 0x0023

Tpm2Token *tpm2_token_free(Tpm2Token *t) {
        if (!t)
                return NULL;
        free(t->blob);
        free(t->policy_hash);
        free(t->salt);
        free(t->srk);
        free(t->pubkey);
        free(t->sealed_pcr_values);
        free(t->unsupported);
        free(t);
        return NULL;
}

/* Sets *ret_error (when asked for) to a sentence; returns -EBADMSG. */
_printf_(2, 3)
static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                char *s = NULL;

                va_start(ap, fmt);
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = s;
        }
        return -EBADMSG;
}

json_object *json_parse_strict(const char *text, size_t max) {
        json_tokener *tok;
        json_object *o;
        size_t len;

        if (!text || max > INT_MAX)
                return NULL;
        len = strnlen(text, max + 1);
        if (len == 0 || len > max)
                return NULL;
        tok = json_tokener_new_ex(JSON_DEPTH_MAX);
        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, text, (int) len);
        if (o && (json_tokener_get_error(tok) != json_tokener_success ||
                  json_tokener_get_parse_end(tok) != len))
                o = (json_object_put(o), NULL);
        json_tokener_free(tok);
        return o;
}

static json_object *json_parse_bounded(const char *json) {
        return json_parse_strict(json, TOKEN_JSON_MAX);
}

/* Whether key is present; *ret is its value, which is NULL for a JSON null
 * (json-c's representation), so that a null is a wrong type, not absence. */
static bool field(json_object *root, const char *key, json_object **ret) {
        *ret = NULL;
        return json_object_object_get_ex(root, key, ret);
}

/* A JSON string without embedded NUL bytes, or NULL. */
static const char *string_of(json_object *v, size_t *ret_len) {
        const char *s;
        size_t n;

        if (!v || !json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (!s || strlen(s) != n)
                return NULL;
        if (ret_len)
                *ret_len = n;
        return s;
}

/* "0".."31" (at most two digits); returns the keyslot or -EINVAL. */
static int keyslot_from_string(const char *s) {
        size_t n = s ? strlen(s) : 0;
        int v = 0;

        if (n < 1 || n > 2)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        return v <= KEYSLOT_MAX ? v : -EINVAL;
}

/* "keyslots": exactly one entry, a decimal string 0..31. */
static int parse_keyslots(json_object *root, int *ret, char **ret_error) {
        json_object *a;
        const char *s;
        size_t n;
        int slot;

        if (!field(root, "keyslots", &a))
                return fail(ret_error, "keyslots: missing");
        if (!json_object_is_type(a, json_type_array))
                return fail(ret_error, "keyslots: not an array");
        n = json_object_array_length(a);
        if (n != 1)
                return fail(ret_error, "keyslots: %zu entries, exactly one expected", n);
        s = string_of(json_object_array_get_idx(a, 0), NULL);
        if (!s)
                return fail(ret_error, "keyslots: entry 0 is not a string");
        slot = keyslot_from_string(s);
        if (slot < 0)
                return fail(ret_error, "keyslots: \"%.16s\" is not a keyslot number in 0..%d", s, KEYSLOT_MAX);
        *ret = slot;
        return 0;
}

/* An array of PCR indexes 0..23 (possibly empty) → mask. */
static int parse_pcr_array(json_object *v, const char *key, uint32_t *ret, char **ret_error) {
        uint32_t mask = 0;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return fail(ret_error, "%s: not an array", key);
        n = json_object_array_length(v);
        if (n > PCR_MAX)
                return fail(ret_error, "%s: %zu entries, at most %d allowed", key, n, PCR_MAX);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                int64_t p;

                if (!json_object_is_type(e, json_type_int) || (p = json_object_get_int64(e)) < 0 || p >= PCR_MAX)
                        return fail(ret_error, "%s: entry %zu is not an integer in 0..%d", key, i, PCR_MAX - 1);
                mask |= 1u << p;
        }
        *ret = mask;
        return 0;
}

/* base64 text s (len characters) of at most max decoded bytes. Empty:
 * 0 with *ret = NULL. Bad base64 or too large: -EBADMSG naming key. */
static int decode_base64(const char *key, const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_size,
                         char **ret_error) {
        void *d = NULL;
        size_t n;
        int r;

        *ret = NULL;
        *ret_size = 0;
        /* Bound the work before decoding: 4 characters per 3 bytes, and a
         * little white space (which base64_decode() skips). */
        if (len > (max + 2) / 3 * 4 + 64)
                return fail(ret_error, "%s: %zu characters, more than %zu bytes can take", key, len, max);
        r = base64_decode(s, len, false, &d, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(ret_error, "%s: not valid base64", key);
        if (n > max) {
                free(d);
                return fail(ret_error, "%s: %zu bytes, at most %zu allowed", key, n, max);
        }
        if (n == 0) {
                free(d);
                return 0;
        }
        *ret = d;
        *ret_size = n;
        return 0;
}

/* An optional base64 field of at most max decoded bytes; absent or empty:
 * 0 with *ret = NULL. Wrong type or bad base64: -EBADMSG. */
static int parse_base64(json_object *root, const char *key, size_t max, uint8_t **ret, size_t *ret_size,
                        char **ret_error) {
        json_object *v;
        const char *s;
        size_t len;

        *ret = NULL;
        *ret_size = 0;
        if (!field(root, key, &v))
                return 0;
        s = string_of(v, &len);
        if (!s)
                return fail(ret_error, "%s: not a string", key);
        return decode_base64(key, s, len, max, ret, ret_size, ret_error);
}

/* tpm2-blob and tpm2-policy-hash: a string, or (systemd ≥ 256) an array
 * of strings, one per shard; systemd makes one shard, or two when a signed
 * policy and pcrlock are combined, and unseals nothing else. Returns the
 * number of shards, 1..TOKEN_SHARDS_MAX, with their strings in ret[] and
 * ret_len[]; 0 when absent; -EBADMSG for anything else. */
#define TOKEN_SHARDS_MAX 2
static int parse_shards(json_object *root, const char *key, const char *ret[static TOKEN_SHARDS_MAX],
                        size_t ret_len[static TOKEN_SHARDS_MAX], char **ret_error) {
        json_object *v;
        size_t n;

        if (!field(root, key, &v))
                return 0;
        if (v && json_object_is_type(v, json_type_string)) {
                ret[0] = string_of(v, &ret_len[0]);
                if (!ret[0])
                        return fail(ret_error, "%s: not a string", key);
                return 1;
        }
        if (!v || !json_object_is_type(v, json_type_array))
                return fail(ret_error, "%s: neither a string nor an array of strings", key);
        n = json_object_array_length(v);
        if (n == 0)
                return fail(ret_error, "%s: an empty array", key);
        if (n > TOKEN_SHARDS_MAX)
                return fail(ret_error, "%s: %zu shards, systemd makes at most %d", key, n, TOKEN_SHARDS_MAX);
        for (size_t i = 0; i < n; i++) {
                ret[i] = string_of(json_object_array_get_idx(v, i), &ret_len[i]);
                if (!ret[i])
                        return fail(ret_error, "%s: entry %zu is not a string", key, i);
        }
        return (int) n;
}

static size_t be16(const uint8_t *p) {
        return (size_t) p[0] << 8 | p[1];
}

/* tpm2-blob: TPM2B_PRIVATE ‖ TPM2B_PUBLIC [‖ TPM2B_ENCRYPTED_SECRET], each a
 * big-endian 2-byte size and that many bytes. Returns 0, 1 when an import
 * seed follows, or -EBADMSG. */
static int check_blob(const uint8_t *b, size_t n, char **ret_error) {
        static const char *const part[] = { "TPM2B_PRIVATE", "TPM2B_PUBLIC" };
        size_t off = 0, sz;

        for (size_t i = 0; i < ELEMENTSOF(part); i++) {
                if (n - off < 2)
                        return fail(ret_error, "tpm2-blob: truncated before the %s size", part[i]);
                sz = be16(b + off);
                off += 2;
                if (sz == 0)
                        return fail(ret_error, "tpm2-blob: empty %s", part[i]);
                if (sz > n - off)
                        return fail(ret_error, "tpm2-blob: %s of %zu bytes, only %zu left", part[i], sz, n - off);
                off += sz;
        }
        if (off == n)
                return 0;

        /* An import seed (offline sealing): its size must account for
         * exactly the rest. An empty one is no seed, as for systemd. */
        if (n - off < 2)
                return fail(ret_error, "tpm2-blob: %zu stray byte after TPM2B_PUBLIC", n - off);
        sz = be16(b + off);
        if (sz != n - off - 2)
                return fail(ret_error, "tpm2-blob: import seed of %zu bytes, %zu left", sz, n - off - 2);
        return sz > 0;
}

/* Records the first unsupported feature; the token stays parsed. */
static int mark_unsupported(Tpm2Token *t, const char *what) {
        if (t->unsupported)
                return 0;
        t->unsupported = strdup(what);
        return t->unsupported ? 0 : -ENOMEM;
}

/* "unlockd-pcr-values": one hex digest per PCR of tpm2-pcrs, index order.
 * dsize is the bank's digest size, 0 for a bank unlockd does not know (the
 * token is then unsupported anyway): the values cannot be sized, but their
 * types are still checked. */
static int parse_pcr_values(json_object *v, Tpm2Token *t, size_t dsize, char **ret_error) {
        static const char key[] = "unlockd-pcr-values";
        size_t n = pcr_mask_count(t->pcr_mask), count;
        _cleanup_free_ uint8_t *values = NULL;

        if (!json_object_is_type(v, json_type_array))
                return fail(ret_error, "%s: not an array", key);
        count = json_object_array_length(v);
        if (count != n)
                return fail(ret_error, "%s: %zu entries for %zu PCRs in tpm2-pcrs", key, count, n);
        if (dsize > 0) {
                values = malloc(MAX(n * dsize, 1u));
                if (!values)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < n; i++) {
                const char *s;
                void *d = NULL;
                size_t len, dn;
                int r;

                s = string_of(json_object_array_get_idx(v, i), &len);
                if (!s)
                        return fail(ret_error, "%s: entry %zu is not a string", key, i);
                r = hex_decode(s, len, &d, &dn);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || (values && dn != dsize)) {
                        free(d);
                        if (values)
                                return fail(ret_error, "%s: entry %zu is not a %zu-byte hex digest", key, i, dsize);
                        return fail(ret_error, "%s: entry %zu is not hex", key, i);
                }
                if (values)
                        memcpy(values + i * dsize, d, dsize);
                free(d);
        }
        if (values) {
                t->sealed_pcr_values = TAKE_PTR(values);
                t->sealed_pcr_values_size = n * dsize;
        }
        return 0;
}

/* "unlockd-generation": an integer in 0..TOKEN_GENERATION_MAX. A larger
 * one would make every later generation overflow. */
static int parse_generation(json_object *v, uint64_t *ret, char **ret_error) {
        int64_t g;

        if (!v || !json_object_is_type(v, json_type_int))
                return fail(ret_error, "unlockd-generation: not an integer");
        g = json_object_get_int64(v);
        if (g < 0 || (uint64_t) g > TOKEN_GENERATION_MAX)
                return fail(ret_error, "unlockd-generation: %" PRIi64 " is not in 0..%" PRIu64, g,
                            (uint64_t) TOKEN_GENERATION_MAX);
        *ret = (uint64_t) g;
        return 0;
}

/* "unlockd-proof": lowercase hex of TOKEN_PROOF_SIZE bytes. */
static int parse_proof(json_object *v, uint8_t ret[static TOKEN_PROOF_SIZE], char **ret_error) {
        _cleanup_free_ void *d = NULL;
        const char *s = string_of(v, NULL);
        size_t n;

        if (!s || strlen(s) != 2 * TOKEN_PROOF_SIZE || hex_decode(s, 2 * TOKEN_PROOF_SIZE, &d, &n) < 0 ||
            n != TOKEN_PROOF_SIZE)
                return fail(ret_error, "unlockd-proof: not %d bytes of hex", TOKEN_PROOF_SIZE);
        memcpy(ret, d, TOKEN_PROOF_SIZE);
        return 0;
}

/* "unlockd-predicted": the components a prediction replaced, as
 * "kernel+initrd" (predict_component_to_string() names, each once). */
static int parse_predicted(json_object *v, unsigned *ret, char **ret_error) {
        const char *s = string_of(v, NULL), *p;
        unsigned mask = 0;

        if (!s || !*s || strlen(s) > 64)
                return fail(ret_error, "unlockd-predicted: not a list of components");
        for (p = s; *p;) {
                size_t n = strcspn(p, "+");
                PredictComponent c;

                for (c = 0; c < _PREDICT_COMPONENT_MAX; c++)
                        if (strlen(predict_component_to_string(c)) == n &&
                            strncmp(p, predict_component_to_string(c), n) == 0)
                                break;
                if (c == _PREDICT_COMPONENT_MAX || (mask & (1u << c)))
                        return fail(ret_error, "unlockd-predicted: \"%.*s\" is not a component, or twice", (int) MIN(n, 32), p);
                mask |= 1u << c;
                p += n;
                if (*p == '+' && *++p == 0)
                        return fail(ret_error, "unlockd-predicted: ends in '+'");
        }
        *ret = mask;
        return 0;
}

char *token_predicted_to_string(unsigned mask) {
        char *s = strdup("");

        for (PredictComponent c = 0; s && c < _PREDICT_COMPONENT_MAX; c++) {
                char *n;

                if (!(mask & (1u << c)))
                        continue;
                if (asprintf(&n, "%s%s%s", s, *s ? "+" : "", predict_component_to_string(c)) < 0)
                        n = NULL;
                free(s);
                s = n;
        }
        return s;
}

static int parse_fields(json_object *root, Tpm2Token *t, char **ret_error) {
        const char *shard[TOKEN_SHARDS_MAX] = {};
        size_t shard_len[TOKEN_SHARDS_MAX] = {};
        json_object *v;
        bool bank_known = true;
        int n_shards;
        const char *s;
        int r;

        r = parse_keyslots(root, &t->keyslot, ret_error);
        if (r < 0)
                return r;

        /* tpm2-blob: required; one shard, or two (unsupported). */
        n_shards = parse_shards(root, "tpm2-blob", shard, shard_len, ret_error);
        if (n_shards < 0)
                return n_shards;
        if (n_shards == 0)
                return fail(ret_error, "tpm2-blob: missing or empty");
        for (int i = 0; i < n_shards; i++) {
                _cleanup_free_ uint8_t *b = NULL;
                size_t n;

                r = decode_base64("tpm2-blob", shard[i], shard_len[i], TOKEN_BLOB_MAX, &b, &n, ret_error);
                if (r < 0)
                        return r;
                if (!b)
                        return fail(ret_error, "tpm2-blob: missing or empty");
                r = check_blob(b, n, ret_error);
                if (r < 0)
                        return r;
                if (i == 0) {
                        /* Offline-sealed: the object is imported before load. */
                        t->import_seed = r > 0;
                        t->blob = TAKE_PTR(b);
                        t->blob_size = n;
                }
        }
        if (n_shards > 1) {
                r = mark_unsupported(t, "two shards (tpm2-blob array: signed policy and pcrlock combined)");
                if (r < 0)
                        return r;
        }

        /* tpm2-pcrs: required, may be empty. */
        if (!field(root, "tpm2-pcrs", &v))
                return fail(ret_error, "tpm2-pcrs: missing");
        r = parse_pcr_array(v, "tpm2-pcrs", &t->pcr_mask, ret_error);
        if (r < 0)
                return r;

        /* tpm2-pcr-bank: optional (absent before systemd 250). */
        if (field(root, "tpm2-pcr-bank", &v)) {
                s = string_of(v, NULL);
                if (!s)
                        return fail(ret_error, "tpm2-pcr-bank: not a string");
                if (pcr_bank_from_string(s, &t->pcr_bank) < 0) {
                        t->pcr_bank = 0;
                        bank_known = false;
                        r = mark_unsupported(t, "tpm2-pcr-bank");
                        if (r < 0)
                                return r;
                }
        }

        /* tpm2-primary-alg: optional, absent = ECC. */
        if (field(root, "tpm2-primary-alg", &v)) {
                s = string_of(v, NULL);
                if (!s)
                        return fail(ret_error, "tpm2-primary-alg: not a string");
                if (strcasecmp(s, "ecc") == 0)
                        t->primary_alg = TPM2_ALG_ECC_ID;
                else if (strcasecmp(s, "rsa") == 0)
                        t->primary_alg = TPM2_ALG_RSA_ID;
                else {
                        r = mark_unsupported(t, "tpm2-primary-alg");
                        if (r < 0)
                                return r;
                }
        }

        /* tpm2-policy-hash: required, a SHA256 digest in hex per shard. */
        r = parse_shards(root, "tpm2-policy-hash", shard, shard_len, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return fail(ret_error, "tpm2-policy-hash: missing");
        if (r != n_shards)
                return fail(ret_error, "tpm2-policy-hash: %d entries for %d tpm2-blob shards", r, n_shards);
        for (int i = 0; i < n_shards; i++) {
                void *d = NULL;
                size_t n;

                if (shard_len[i] != SHA256_DIGEST_SIZE * 2)
                        return fail(ret_error, "tpm2-policy-hash: %zu characters, a %d-byte hex digest expected",
                                    shard_len[i], SHA256_DIGEST_SIZE);
                r = hex_decode(shard[i], shard_len[i], &d, &n);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(ret_error, "tpm2-policy-hash: not hex");
                if (i > 0) {
                        free(d);
                        continue;
                }
                t->policy_hash = d;
                t->policy_hash_size = n;
        }

        /* tpm2-pin: optional boolean. */
        if (field(root, "tpm2-pin", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(ret_error, "tpm2-pin: not a boolean");
                t->pin = json_object_get_boolean(v);
        }

        r = parse_base64(root, "tpm2_salt", SALT_MAX, &t->salt, &t->salt_size, ret_error);
        if (r < 0)
                return r;
        r = parse_base64(root, "tpm2_srk", SRK_MAX, &t->srk, &t->srk_size, ret_error);
        if (r < 0)
                return r;
        /* The import runs under the parent the seed was made for, which only
         * tpm2_srk names (systemd always writes it with a seed). */
        if (t->import_seed && !t->srk) {
                r = mark_unsupported(t, "tpm2-blob (import seed) without tpm2_srk");
                if (r < 0)
                        return r;
        }

        /* Signed PCR policies: tpm2_pubkey (base64 of the PEM public key)
         * with tpm2_pubkey_pcrs, the PCRs the signature covers. Empty
         * values (written by some systemd versions) mean "not used"; one
         * without the other is nothing systemd unseals either. */
        r = parse_base64(root, "tpm2_pubkey", PUBKEY_MAX, &t->pubkey, &t->pubkey_size, ret_error);
        if (r < 0)
                return r;
        if (field(root, "tpm2_pubkey_pcrs", &v)) {
                r = parse_pcr_array(v, "tpm2_pubkey_pcrs", &t->pubkey_pcr_mask, ret_error);
                if (r < 0)
                        return r;
        }
        if (t->pubkey && t->pubkey_pcr_mask == 0)
                r = mark_unsupported(t, "tpm2_pubkey without tpm2_pubkey_pcrs");
        else if (!t->pubkey && t->pubkey_pcr_mask != 0)
                r = mark_unsupported(t, "tpm2_pubkey_pcrs without tpm2_pubkey");
        if (r < 0)
                return r;
        if (field(root, "tpm2_pcrlock", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(ret_error, "tpm2_pcrlock: not a boolean");
                if (json_object_get_boolean(v)) {
                        r = mark_unsupported(t, "tpm2_pcrlock");
                        if (r < 0)
                                return r;
                }
        }

        /* unlockd's own fields. */
        if (field(root, "unlockd-pcr-values", &v)) {
                r = parse_pcr_values(v, t,
                                     bank_known ? pcr_bank_digest_size(t->pcr_bank ?: PCR_BANK_SHA256) : 0,
                                     ret_error);
                if (r < 0)
                        return r;
        }
        if (field(root, "unlockd-generation", &v)) {
                r = parse_generation(v, &t->generation, ret_error);
                if (r < 0)
                        return r;
        }
        if (field(root, "unlockd-proof", &v)) {
                r = parse_proof(v, t->proof, ret_error);
                if (r < 0)
                        return r;
                t->has_proof = true;
        }
        if (field(root, "unlockd-predicted", &v)) {
                r = parse_predicted(v, &t->predicted, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Parses token JSON whose "type" must be type. Returns 0 with *ret the root
 * object; -EMEDIUMTYPE for another type; -EBADMSG with *ret_error. */
static int parse_root(const char *json, const char *type, json_object **ret, char **ret_error) {
        json_object *root, *v;
        const char *t;
        int r;

        root = json_parse_bounded(json);
        if (!root)
                return fail(ret_error, "not valid JSON, or empty, or larger than %d bytes", TOKEN_JSON_MAX);
        if (!json_object_is_type(root, json_type_object))
                r = fail(ret_error, "not a JSON object");
        else if (!field(root, "type", &v))
                r = fail(ret_error, "type: missing");
        else if (!(t = string_of(v, NULL)))
                r = fail(ret_error, "type: not a string");
        else if (!streq(t, type))
                r = -EMEDIUMTYPE;
        else {
                *ret = root;
                return 0;
        }
        json_object_put(root);
        return r;
}

int tpm2_token_parse(const char *json, Tpm2Token **ret, char **ret_error) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        json_object *root;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;

        r = parse_root(json, TOKEN_TYPE_TPM2, &root, ret_error);
        if (r < 0)
                return r;

        t = calloc(1, sizeof(*t));
        if (!t) {
                r = -ENOMEM;
                goto finish;
        }
        r = parse_fields(root, t, ret_error);
        if (r < 0)
                goto finish;

        *ret = TAKE_PTR(t);
        r = 0;
finish:
        json_object_put(root);
        if (r != -EBADMSG && ret_error)
                *ret_error = mfree(*ret_error);
        return r;
}

/* Adds value (consumed, may be NULL after a failed allocation) to o. */
static int add(json_object *o, const char *key, json_object *value) {
        if (!value)
                return -ENOMEM;
        if (json_object_object_add(o, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

static int append(json_object *a, json_object *value) {
        if (!value)
                return -ENOMEM;
        if (json_object_array_add(a, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

static json_object *pcr_array(uint32_t mask) {
        json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        for (unsigned i = 0; i < PCR_MAX; i++)
                if ((mask & (1u << i)) && append(a, json_object_new_int((int) i)) < 0)
                        return (json_object_put(a), NULL);
        return a;
}

static json_object *pcr_values_array(const uint8_t *values, size_t n, size_t dsize) {
        json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char *h = NULL;

                if (hex_encode(values + i * dsize, dsize, &h) < 0 ||
                    append(a, json_object_new_string(h)) < 0) {
                        free(h);
                        return (json_object_put(a), NULL);
                }
                free(h);
        }
        return a;
}

static json_object *hex_string(const uint8_t *p, size_t n) {
        _cleanup_free_ char *s = NULL;

        if (hex_encode(p, n, &s) < 0)
                return NULL;
        return json_object_new_string(s);
}

static json_object *base64_string(const uint8_t *p, size_t n) {
        _cleanup_free_ char *s = NULL;

        if (base64_encode(p, n, false, &s) < 0)
                return NULL;
        return json_object_new_string(s);
}

int tpm2_token_format(const Tpm2Token *t, char **ret_json) {
        _cleanup_free_ char *hash = NULL;
        json_object *o = NULL, *a;
        const char *bank, *s;
        char slot[4];
        size_t dsize;
        int r;

        /* Only a token unlockd can also unseal is written, and none with
         * a signed policy: unlockd makes none. */
        if (!t || !ret_json || t->unsupported || t->pubkey || t->pubkey_pcr_mask)
                return -EINVAL;
        if (t->keyslot < 0 || t->keyslot > KEYSLOT_MAX || !t->blob || t->blob_size == 0 ||
            t->blob_size > TOKEN_BLOB_MAX || !t->policy_hash || t->policy_hash_size != SHA256_DIGEST_SIZE ||
            (t->pcr_mask >> PCR_MAX) != 0 || t->generation > TOKEN_GENERATION_MAX ||
            (t->predicted >> _PREDICT_COMPONENT_MAX) != 0 ||
            (t->salt && (t->salt_size == 0 || t->salt_size > SALT_MAX)) ||
            (t->srk && (t->srk_size == 0 || t->srk_size > SRK_MAX)))
                return -EINVAL;
        bank = pcr_bank_to_string(t->pcr_bank ?: PCR_BANK_SHA256);
        if (!bank)
                return -EINVAL;
        dsize = pcr_bank_digest_size(t->pcr_bank ?: PCR_BANK_SHA256);
        if (t->sealed_pcr_values && t->sealed_pcr_values_size != pcr_mask_count(t->pcr_mask) * dsize)
                return -EINVAL;
        if (t->primary_alg != 0 && t->primary_alg != TPM2_ALG_ECC_ID && t->primary_alg != TPM2_ALG_RSA_ID)
                return -EINVAL;
        if (hex_encode(t->policy_hash, t->policy_hash_size, &hash) < 0)
                return -ENOMEM;
        snprintf(slot, sizeof(slot), "%d", t->keyslot);

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        /* The fields and their order as systemd v252 writes them, then the
         * newer systemd fields in systemd's order, then unlockd's own. */
        r = add(o, "type", json_object_new_string(TOKEN_TYPE_TPM2));
        if (r < 0)
                goto finish;
        a = json_object_new_array();
        if (!a || append(a, json_object_new_string(slot)) < 0) {
                json_object_put(a);
                r = -ENOMEM;
                goto finish;
        }
        if ((r = add(o, "keyslots", a)) < 0 ||
            (r = add(o, "tpm2-blob", base64_string(t->blob, t->blob_size))) < 0 ||
            (r = add(o, "tpm2-pcrs", pcr_array(t->pcr_mask))) < 0 ||
            (r = add(o, "tpm2-pcr-bank", json_object_new_string(bank))) < 0 ||
            (r = add(o, "tpm2-primary-alg",
                     json_object_new_string(t->primary_alg == TPM2_ALG_RSA_ID ? "rsa" : "ecc"))) < 0 ||
            (r = add(o, "tpm2-policy-hash", json_object_new_string(hash))) < 0 ||
            (r = add(o, "tpm2-pin", json_object_new_boolean(t->pin))) < 0)
                goto finish;
        if (t->salt && (r = add(o, "tpm2_salt", base64_string(t->salt, t->salt_size))) < 0)
                goto finish;
        if (t->srk && (r = add(o, "tpm2_srk", base64_string(t->srk, t->srk_size))) < 0)
                goto finish;
        if (t->sealed_pcr_values &&
            (r = add(o, "unlockd-pcr-values",
                     pcr_values_array(t->sealed_pcr_values, pcr_mask_count(t->pcr_mask), dsize))) < 0)
                goto finish;
        if (t->generation > 0 &&
            (r = add(o, "unlockd-generation", json_object_new_int64((int64_t) t->generation))) < 0)
                goto finish;
        if (t->has_proof && (r = add(o, "unlockd-proof", hex_string(t->proof, TOKEN_PROOF_SIZE))) < 0)
                goto finish;
        if (t->predicted) {
                char *p = token_predicted_to_string(t->predicted);

                r = add(o, "unlockd-predicted", p ? json_object_new_string(p) : NULL);
                free(p);
                if (r < 0)
                        goto finish;
        }

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s) {
                r = -ENOMEM;
                goto finish;
        }
        *ret_json = strdup(s);
        r = *ret_json ? 0 : -ENOMEM;
finish:
        json_object_put(o);
        return r;
}

int token_get_type_and_keyslot(const char *json, char **ret_type, int *ret_keyslot) {
        json_object *root, *v, *a;
        const char *type;
        char *dup;
        int slot = -1, r;

        if (!ret_type || !ret_keyslot)
                return -EINVAL;
        root = json_parse_bounded(json);
        if (!root)
                return -EBADMSG;
        if (!json_object_is_type(root, json_type_object) || !field(root, "type", &v) ||
            !(type = string_of(v, NULL))) {
                r = -EBADMSG;
                goto finish;
        }
        /* Any token type: a "keyslots" that is not exactly one valid
         * keyslot string links the token to no single keyslot (-1). */
        if (field(root, "keyslots", &a) && json_object_is_type(a, json_type_array) && json_object_array_length(a) == 1)
                slot = keyslot_from_string(string_of(json_object_array_get_idx(a, 0), NULL));
        dup = strdup(type);
        if (!dup) {
                r = -ENOMEM;
                goto finish;
        }
        *ret_type = dup;
        *ret_keyslot = slot < 0 ? -1 : slot;
        r = 0;
finish:
        json_object_put(root);
        return r;
}

int recovery_token_format(int keyslot, char **ret_json) {
        char *s;

        if (!ret_json || keyslot < 0 || keyslot > KEYSLOT_MAX)
                return -EINVAL;
        if (asprintf(&s, "{\"type\":\"" TOKEN_TYPE_RECOVERY "\",\"keyslots\":[\"%d\"]}", keyslot) < 0)
                return -ENOMEM;
        *ret_json = s;
        return 0;
}

int pending_token_parse(const char *json, PendingToken *ret, char **ret_error) {
        json_object *root, *v;
        PendingToken p = { .keyslot = -1 };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;
        r = parse_root(json, TOKEN_TYPE_PENDING, &root, ret_error);
        if (r < 0)
                return r;
        r = parse_keyslots(root, &p.keyslot, ret_error);
        if (r < 0)
                goto finish;
        if (!field(root, "unlockd-generation", &v)) {
                r = fail(ret_error, "unlockd-generation: missing");
                goto finish;
        }
        r = parse_generation(v, &p.generation, ret_error);
        if (r < 0)
                goto finish;
        if (field(root, "unlockd-proof", &v)) {
                r = parse_proof(v, p.proof, ret_error);
                if (r < 0)
                        goto finish;
                p.has_proof = true;
        }
        *ret = p;
        r = 0;
finish:
        json_object_put(root);
        return r;
}

int pending_token_format(const PendingToken *p, char **ret_json) {
        _cleanup_free_ char *proof = NULL;
        char *s;

        if (!p || !ret_json || p->keyslot < 0 || p->keyslot > KEYSLOT_MAX || p->generation > TOKEN_GENERATION_MAX)
                return -EINVAL;
        if (p->has_proof && hex_encode(p->proof, TOKEN_PROOF_SIZE, &proof) < 0)
                return -ENOMEM;
        if (asprintf(&s, "{\"type\":\"" TOKEN_TYPE_PENDING "\",\"keyslots\":[\"%d\"],\"unlockd-generation\":%" PRIu64 "%s%s%s}",
                     p->keyslot, p->generation, proof ? ",\"unlockd-proof\":\"" : "", proof ?: "", proof ? "\"" : "") < 0)
                return -ENOMEM;
        *ret_json = s;
        return 0;
}

int token_get_generation(const char *json, uint64_t *ret) {
        json_object *root, *v;
        int r;

        root = json_parse_bounded(json);
        if (!root)
                return -EBADMSG;
        if (!json_object_is_type(root, json_type_object) || !field(root, "unlockd-generation", &v))
                r = -ENOENT;
        else
                r = parse_generation(v, ret, NULL);
        json_object_put(root);
        return r;
}

/* The PCR mask of a signature entry's "pcrs", or -EBADMSG. */
static int signature_entry_mask(json_object *e, uint32_t *ret) {
        json_object *v;

        if (!field(e, "pcrs", &v))
                return -EBADMSG;
        return parse_pcr_array(v, "pcrs", ret, NULL);
}

/* Whether hex string field key of e equals want (a malformed field is no
 * match). */
static bool signature_entry_hex_is(json_object *e, const char *key, const uint8_t *want, size_t want_size) {
        _cleanup_free_ void *d = NULL;
        json_object *v;
        const char *s;
        size_t len, n;

        if (!field(e, key, &v) || !(s = string_of(v, &len)) || len != want_size * 2)
                return false;
        if (hex_decode(s, len, &d, &n) < 0 || n != want_size)
                return false;
        return memcmp(d, want, n) == 0;
}

int pcr_signature_find(const char *json, uint16_t bank, uint32_t mask, const uint8_t *fp, size_t fp_size,
                       const uint8_t *pol, size_t pol_size, uint8_t **ret_sig, size_t *ret_sig_size,
                       char **ret_error) {
        json_object *root, *a;
        const char *name = pcr_bank_to_string(bank);
        int r = -ENOENT;

        if (!json || !pol || pol_size == 0 || !ret_sig || !ret_sig_size || !name)
                return -EINVAL;
        root = json_parse_strict(json, PCR_SIGNATURE_MAX);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return fail(ret_error, "not a JSON object");
        }
        /* One array per bank; another bank's entries are not looked at. */
        if (!field(root, name, &a))
                goto finish;
        if (!json_object_is_type(a, json_type_array)) {
                r = fail(ret_error, "%s: not an array", name);
                goto finish;
        }
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i), *v;
                uint32_t m;
                const char *s;
                size_t len;

                if (!json_object_is_type(e, json_type_object) || signature_entry_mask(e, &m) < 0 || m != mask)
                        continue;
                /* The key's fingerprint is optional; when there, it must be
                 * this key's. */
                if (field(e, "pkfp", &v) && (!fp || !signature_entry_hex_is(e, "pkfp", fp, fp_size)))
                        continue;
                if (!signature_entry_hex_is(e, "pol", pol, pol_size))
                        continue;
                if (!field(e, "sig", &v) || !(s = string_of(v, &len))) {
                        r = fail(ret_error, "%s: entry %zu has no \"sig\" string", name, i);
                        goto finish;
                }
                r = decode_base64("sig", s, len, PCR_SIGNATURE_SIG_MAX, ret_sig, ret_sig_size, ret_error);
                if (r == 0 && !*ret_sig)
                        r = fail(ret_error, "%s: entry %zu has an empty \"sig\"", name, i);
                goto finish;
        }
finish:
        json_object_put(root);
        return r;
}
