/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "pcr.h"
#include "token.h"

#define SALT_MAX 1024
#define SRK_MAX 1024
#define TPM2_ALG_RSA_ID 0x0001
#define TPM2_ALG_ECC_ID 0x0023

Tpm2Token *tpm2_token_free(Tpm2Token *t) {
        if (!t)
                return NULL;
        free(t->blob);
        free(t->policy_hash);
        free(t->salt);
        free(t->srk);
        free(t->sealed_pcr_values);
        free(t->unsupported);
        free(t);
        return NULL;
}

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

static json_object *parse_json(const char *json) {
        json_tokener *tok;
        json_object *o;
        size_t len;

        if (!json)
                return NULL;
        len = strnlen(json, TOKEN_JSON_MAX + 1);
        if (len == 0 || len > TOKEN_JSON_MAX)
                return NULL;
        tok = json_tokener_new_ex(32);          /* bounded nesting */
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, json, (int) len);
        if (o && (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

/* The single keyslot of "keyslots": exactly one decimal string 0..31. */
static int parse_keyslots(json_object *root, int *ret, char **ret_error) {
        json_object *a, *e;
        const char *s;
        char *end;
        long v;

        if (!json_object_object_get_ex(root, "keyslots", &a) || !json_object_is_type(a, json_type_array))
                return fail(ret_error, "keyslots: missing or not an array");
        if (json_object_array_length(a) != 1)
                return fail(ret_error, "keyslots: %zu entries, expected exactly one", json_object_array_length(a));
        e = json_object_array_get_idx(a, 0);
        if (!json_object_is_type(e, json_type_string))
                return fail(ret_error, "keyslots: entry is not a string");
        s = json_object_get_string(e);
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || s[0] < '0' || s[0] > '9' || v < 0 || v > 31)
                return fail(ret_error, "keyslots: \"%.16s\" is not a keyslot number 0..31", s);
        *ret = (int) v;
        return 0;
}

int token_get_type_and_keyslot(const char *json, char **ret_type, int *ret_keyslot) {
        json_object *root = parse_json(json), *t, *a;
        int slot = -1;

        if (!root || !json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "type", &t) || !json_object_is_type(t, json_type_string)) {
                json_object_put(root);
                return -EBADMSG;
        }
        if (json_object_object_get_ex(root, "keyslots", &a) && json_object_is_type(a, json_type_array) &&
            json_object_array_length(a) >= 1 && parse_keyslots(root, &slot, NULL) < 0)
                slot = -1;
        *ret_type = strdup(json_object_get_string(t));
        json_object_put(root);
        if (!*ret_type)
                return -ENOMEM;
        *ret_keyslot = slot;
        return 0;
}

/* Decodes an optional base64 field. Absent: 0 with *ret NULL. */
static int get_base64(json_object *root, const char *key, size_t max, uint8_t **ret, size_t *ret_size,
                      char **ret_error) {
        json_object *v;
        void *d = NULL;
        size_t n;

        *ret = NULL;
        *ret_size = 0;
        if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return fail(ret_error, "%s: not a string", key);
        if ((size_t) json_object_get_string_len(v) > (max + 2) / 3 * 4 + 64)
                return fail(ret_error, "%s: too long", key);
        if (base64_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), false, &d, &n) < 0)
                return fail(ret_error, "%s: not valid base64", key);
        if (n > max) {
                free(d);
                return fail(ret_error, "%s: %zu bytes, at most %zu allowed", key, n, max);
        }
        *ret = d;
        *ret_size = n;
        return 0;
}

/* Checks a tpm2-blob's structure: TPM2B_PRIVATE ‖ TPM2B_PUBLIC [‖ seed].
 * Returns 0, 1 when an import seed follows, or -EBADMSG. */
static int check_blob(const uint8_t *b, size_t n, char **ret_error) {
        size_t off = 0;

        for (unsigned part = 0; part < 2; part++) {
                size_t sz;
                if (n - off < 2)
                        return fail(ret_error, "tpm2-blob: truncated (%s size)", part == 0 ? "private" : "public");
                sz = (size_t) b[off] << 8 | b[off + 1];
                off += 2;
                if (sz == 0 || sz > n - off)
                        return fail(ret_error, "tpm2-blob: %s part of %zu bytes does not fit", part == 0 ? "private" : "public", sz);
                off += sz;
        }
        if (off == n)
                return 0;
        {
                size_t sz;
                if (n - off < 2)
                        return fail(ret_error, "tpm2-blob: %zu trailing bytes", n - off);
                sz = (size_t) b[off] << 8 | b[off + 1];
                if (sz != n - off - 2)
                        return fail(ret_error, "tpm2-blob: trailing seed of %zu bytes does not fit", sz);
        }
        return 1;
}

static int set_unsupported(Tpm2Token *t, const char *field) {
        if (t->unsupported)
                return 0;
        t->unsupported = strdup(field);
        return t->unsupported ? 0 : -ENOMEM;
}

int tpm2_token_parse(const char *json, Tpm2Token **ret, char **ret_error) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        json_object *root, *v;
        const char *s;
        int r;

        if (ret_error)
                *ret_error = NULL;
        root = parse_json(json);
        if (!root)
                return fail(ret_error, "not valid JSON (or larger than %u bytes)", TOKEN_JSON_MAX);
        if (!json_object_is_type(root, json_type_object)) {
                r = fail(ret_error, "not a JSON object");
                goto finish;
        }
        if (!json_object_object_get_ex(root, "type", &v) || !json_object_is_type(v, json_type_string)) {
                r = fail(ret_error, "type: missing or not a string");
                goto finish;
        }
        if (!streq(json_object_get_string(v), TOKEN_TYPE_TPM2)) {
                r = -EMEDIUMTYPE;
                goto finish;
        }

        t = calloc(1, sizeof(*t));
        if (!t) {
                r = -ENOMEM;
                goto finish;
        }
        r = parse_keyslots(root, &t->keyslot, ret_error);
        if (r < 0)
                goto finish;

        /* tpm2-blob */
        r = get_base64(root, "tpm2-blob", TOKEN_BLOB_MAX, &t->blob, &t->blob_size, ret_error);
        if (r < 0)
                goto finish;
        if (!t->blob) {
                r = fail(ret_error, "tpm2-blob: missing");
                goto finish;
        }
        r = check_blob(t->blob, t->blob_size, ret_error);
        if (r < 0)
                goto finish;
        if (r > 0 && (r = set_unsupported(t, "tpm2-blob (import seed)")) < 0)
                goto finish;

        /* tpm2-pcrs */
        if (!json_object_object_get_ex(root, "tpm2-pcrs", &v) || !json_object_is_type(v, json_type_array)) {
                r = fail(ret_error, "tpm2-pcrs: missing or not an array");
                goto finish;
        }
        if (json_object_array_length(v) > PCR_MAX) {
                r = fail(ret_error, "tpm2-pcrs: %zu entries, at most %d", json_object_array_length(v), PCR_MAX);
                goto finish;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                int64_t p;

                if (!json_object_is_type(e, json_type_int) || (p = json_object_get_int64(e)) < 0 || p >= PCR_MAX) {
                        r = fail(ret_error, "tpm2-pcrs: entry %zu is not an integer in 0..%d", i, PCR_MAX - 1);
                        goto finish;
                }
                t->pcr_mask |= 1u << p;
        }

        /* tpm2-pcr-bank */
        if (json_object_object_get_ex(root, "tpm2-pcr-bank", &v)) {
                if (!json_object_is_type(v, json_type_string)) {
                        r = fail(ret_error, "tpm2-pcr-bank: not a string");
                        goto finish;
                }
                if (pcr_bank_from_string(json_object_get_string(v), &t->pcr_bank) < 0 &&
                    (r = set_unsupported(t, "tpm2-pcr-bank")) < 0)
                        goto finish;
        }

        /* tpm2-primary-alg */
        if (json_object_object_get_ex(root, "tpm2-primary-alg", &v)) {
                if (!json_object_is_type(v, json_type_string)) {
                        r = fail(ret_error, "tpm2-primary-alg: not a string");
                        goto finish;
                }
                s = json_object_get_string(v);
                if (streq(s, "ecc"))
                        t->primary_alg = TPM2_ALG_ECC_ID;
                else if (streq(s, "rsa"))
                        t->primary_alg = TPM2_ALG_RSA_ID;
                else if ((r = set_unsupported(t, "tpm2-primary-alg")) < 0)
                        goto finish;
        }

        /* tpm2-policy-hash */
        if (!json_object_object_get_ex(root, "tpm2-policy-hash", &v) || !json_object_is_type(v, json_type_string)) {
                r = fail(ret_error, "tpm2-policy-hash: missing or not a string");
                goto finish;
        }
        {
                void *d = NULL;
                size_t n;
                if (hex_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), &d, &n) < 0 ||
                    n != SHA256_DIGEST_SIZE) {
                        free(d);
                        r = fail(ret_error, "tpm2-policy-hash: not %d bytes of hex", SHA256_DIGEST_SIZE);
                        goto finish;
                }
                t->policy_hash = d;
                t->policy_hash_size = n;
        }

        /* tpm2-pin */
        if (json_object_object_get_ex(root, "tpm2-pin", &v)) {
                if (!json_object_is_type(v, json_type_boolean)) {
                        r = fail(ret_error, "tpm2-pin: not a boolean");
                        goto finish;
                }
                t->pin = json_object_get_boolean(v);
        }

        r = get_base64(root, "tpm2_salt", SALT_MAX, &t->salt, &t->salt_size, ret_error);
        if (r < 0)
                goto finish;
        r = get_base64(root, "tpm2_srk", SRK_MAX, &t->srk, &t->srk_size, ret_error);
        if (r < 0)
                goto finish;

        /* Signed PCR policies and pcrlock change how the token must be
         * unsealed; unlockd does not do those (yet). */
        if (json_object_object_get_ex(root, "tpm2_pubkey", &v) &&
            !(json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0) &&
            !json_object_is_type(v, json_type_null) && (r = set_unsupported(t, "tpm2_pubkey")) < 0)
                goto finish;
        if (json_object_object_get_ex(root, "tpm2_pubkey_pcrs", &v) && json_object_is_type(v, json_type_array) &&
            json_object_array_length(v) > 0 && (r = set_unsupported(t, "tpm2_pubkey_pcrs")) < 0)
                goto finish;
        if (json_object_object_get_ex(root, "tpm2_pcrlock", &v) && json_object_is_type(v, json_type_boolean) &&
            json_object_get_boolean(v) && (r = set_unsupported(t, "tpm2_pcrlock")) < 0)
                goto finish;

        /* unlockd-pcr-values */
        if (json_object_object_get_ex(root, "unlockd-pcr-values", &v)) {
                size_t dsize = pcr_bank_digest_size(t->pcr_bank ?: PCR_BANK_SHA256), n = pcr_mask_count(t->pcr_mask);

                if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != n) {
                        r = fail(ret_error, "unlockd-pcr-values: not an array of one value per PCR");
                        goto finish;
                }
                if (dsize > 0) {
                        t->sealed_pcr_values = calloc(MAX(n, 1u), dsize);
                        if (!t->sealed_pcr_values) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        t->sealed_pcr_values_size = n * dsize;
                        for (size_t i = 0; i < n; i++) {
                                json_object *e = json_object_array_get_idx(v, i);
                                void *d = NULL;
                                size_t dn;

                                if (!json_object_is_type(e, json_type_string) ||
                                    hex_decode(json_object_get_string(e), (size_t) json_object_get_string_len(e), &d, &dn) < 0 ||
                                    dn != dsize) {
                                        free(d);
                                        r = fail(ret_error, "unlockd-pcr-values: entry %zu is not a %zu-byte hex digest", i, dsize);
                                        goto finish;
                                }
                                memcpy(t->sealed_pcr_values + i * dsize, d, dsize);
                                free(d);
                        }
                }
        }

        /* unlockd-generation */
        if (json_object_object_get_ex(root, "unlockd-generation", &v)) {
                int64_t g;
                if (!json_object_is_type(v, json_type_int) || (g = json_object_get_int64(v)) < 0) {
                        r = fail(ret_error, "unlockd-generation: not a non-negative integer");
                        goto finish;
                }
                t->generation = (uint64_t) g;
        }

        *ret = TAKE_PTR(t);
        r = 0;
finish:
        json_object_put(root);
        return r;
}

int tpm2_token_format(const Tpm2Token *t, char **ret_json) {
        _cleanup_free_ char *blob = NULL, *hash = NULL, *salt = NULL, *srk = NULL;
        json_object *o, *a;
        const char *bank;
        char slot[16];
        int r = -ENOMEM;

        if (t->keyslot < 0 || !t->blob || t->policy_hash_size == 0)
                return -EINVAL;
        bank = pcr_bank_to_string(t->pcr_bank ?: PCR_BANK_SHA256);
        if (!bank)
                return -EINVAL;
        if (base64_encode(t->blob, t->blob_size, false, &blob) < 0 ||
            hex_encode(t->policy_hash, t->policy_hash_size, &hash) < 0 ||
            (t->salt && base64_encode(t->salt, t->salt_size, false, &salt) < 0) ||
            (t->srk && base64_encode(t->srk, t->srk_size, false, &srk) < 0))
                return -ENOMEM;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        snprintf(slot, sizeof(slot), "%d", t->keyslot);
        json_object_object_add(o, "type", json_object_new_string(TOKEN_TYPE_TPM2));
        a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(slot));
        json_object_object_add(o, "keyslots", a);
        json_object_object_add(o, "tpm2-blob", json_object_new_string(blob));
        a = json_object_new_array();
        for (unsigned i = 0; i < PCR_MAX; i++)
                if (t->pcr_mask & (1u << i))
                        json_object_array_add(a, json_object_new_int((int) i));
        json_object_object_add(o, "tpm2-pcrs", a);
        json_object_object_add(o, "tpm2-pcr-bank", json_object_new_string(bank));
        json_object_object_add(o, "tpm2-primary-alg",
                               json_object_new_string(t->primary_alg == TPM2_ALG_RSA_ID ? "rsa" : "ecc"));
        json_object_object_add(o, "tpm2-policy-hash", json_object_new_string(hash));
        json_object_object_add(o, "tpm2-pin", json_object_new_boolean(t->pin));
        if (srk)
                json_object_object_add(o, "tpm2_srk", json_object_new_string(srk));
        if (salt)
                json_object_object_add(o, "tpm2_salt", json_object_new_string(salt));
        if (t->sealed_pcr_values) {
                size_t dsize = pcr_bank_digest_size(t->pcr_bank ?: PCR_BANK_SHA256);
                size_t n = pcr_mask_count(t->pcr_mask);

                if (t->sealed_pcr_values_size != n * dsize) {
                        r = -EINVAL;
                        goto finish;
                }
                a = json_object_new_array();
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *h = NULL;
                        if (hex_encode(t->sealed_pcr_values + i * dsize, dsize, &h) < 0)
                                goto finish;
                        json_object_array_add(a, json_object_new_string(h));
                }
                json_object_object_add(o, "unlockd-pcr-values", a);
        }
        if (t->generation > 0)
                json_object_object_add(o, "unlockd-generation", json_object_new_int64((int64_t) t->generation));

        *ret_json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        r = *ret_json ? 0 : -ENOMEM;
finish:
        json_object_put(o);
        return r;
}

int recovery_token_format(int keyslot, char **ret_json) {
        if (keyslot < 0 || keyslot > 31)
                return -EINVAL;
        return asprintf(ret_json, "{\"type\":\"" TOKEN_TYPE_RECOVERY "\",\"keyslots\":[\"%d\"]}", keyslot) < 0 ? -ENOMEM : 0;
}
