/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "job.h"
#include "pcr.h"
#include "token.h"

#define JOB_VERSION 1

ResealJob *reseal_job_free(ResealJob *j) {
        if (!j)
                return NULL;
        free(j->uuid);
        free(j->device);
        free(j->pcr_values);
        free(j->method);
        for (size_t i = 0; i < j->n_stale; i++)
                free(j->stale[i].salt);
        free(j);
        return NULL;
}

bool uuid_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == '-'))
                        return false;
        return true;
}

static int get_int(json_object *o, const char *key, int64_t min, int64_t max, int64_t *ret) {
        json_object *v;
        int64_t i;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -EBADMSG;
        errno = 0;
        i = json_object_get_int64(v);
        if (errno != 0 || i < min || i > max)
                return -EBADMSG;
        *ret = i;
        return 0;
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

#define job_fail(msg)                                           \
        do {                                                    \
                if (ret_error)                                  \
                        *ret_error = strdup(msg);               \
                r = -EBADMSG;                                   \
                goto finish;                                    \
        } while (0)

int reseal_job_parse(const char *json, ResealJob **ret, char **ret_error) {
        _cleanup_(reseal_job_freep) ResealJob *j = NULL;
        json_object *root = NULL, *a;
        const char *s;
        size_t dsize;
        int64_t i;
        int r;

        if (strnlen(json, RESEAL_JOB_MAX + 1) > RESEAL_JOB_MAX) {
                if (ret_error)
                        *ret_error = strdup("job file too large");
                return -EBADMSG;
        }
        root = json_parse_strict(json, RESEAL_JOB_MAX);
        if (!root)
                job_fail("not valid JSON (torn or truncated?)");
        if (!json_object_is_type(root, json_type_object))
                job_fail("not a JSON object");

        j = calloc(1, sizeof(*j));
        if (!j) {
                r = -ENOMEM;
                goto finish;
        }
        if (get_int(root, "version", JOB_VERSION, JOB_VERSION, &i) < 0)
                job_fail("version: missing or unsupported");
        s = get_string(root, "uuid");
        if (!s || !uuid_valid(s))
                job_fail("uuid: missing or not a UUID");
        j->uuid = strdup(s);
        s = get_string(root, "device");
        j->device = strdup(s ?: "");
        s = get_string(root, "method");
        j->method = strdup(s ?: "");
        if (!j->uuid || !j->device || !j->method) {
                r = -ENOMEM;
                goto finish;
        }
        if (get_int(root, "keyslot", 0, JOB_KEYSLOTS_MAX - 1, &i) < 0)
                job_fail("keyslot: missing or out of range");
        j->keyslot = (int) i;
        if (get_int(root, "generation", 1, TOKEN_GENERATION_MAX, &i) < 0)
                job_fail("generation: missing or not in 1..2^32-1");
        j->generation = (uint64_t) i;
        /* Jobs of earlier versions do not record it. */
        if (json_object_object_get_ex(root, "opened-keyslot", &a)) {
                if (get_int(root, "opened-keyslot", -1, JOB_KEYSLOTS_MAX - 1, &i) < 0)
                        job_fail("opened-keyslot: out of range");
                j->opened_keyslot = (int) i;
        } else
                j->opened_keyslot = -1;

        s = get_string(root, "pcr-bank");
        if (!s || pcr_bank_from_string(s, &j->pcr_bank) < 0)
                job_fail("pcr-bank: missing or unknown");
        dsize = pcr_bank_digest_size(j->pcr_bank);

        if (!json_object_object_get_ex(root, "pcrs", &a) || !json_object_is_type(a, json_type_array) ||
            json_object_array_length(a) > PCR_MAX)
                job_fail("pcrs: missing or too long");
        for (size_t k = 0; k < json_object_array_length(a); k++) {
                json_object *e = json_object_array_get_idx(a, k);
                int64_t p;
                if (!json_object_is_type(e, json_type_int) || (p = json_object_get_int64(e)) < 0 || p >= PCR_MAX)
                        job_fail("pcrs: entry out of range");
                j->pcr_mask |= 1u << p;
        }

        if (!json_object_object_get_ex(root, "pcr-values", &a) || !json_object_is_type(a, json_type_array) ||
            json_object_array_length(a) != pcr_mask_count(j->pcr_mask))
                job_fail("pcr-values: missing or not one per PCR");
        j->pcr_values_size = pcr_mask_count(j->pcr_mask) * dsize;
        j->pcr_values = calloc(1, MAX(j->pcr_values_size, 1u));
        if (!j->pcr_values) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t k = 0; k < json_object_array_length(a); k++) {
                json_object *e = json_object_array_get_idx(a, k);
                _cleanup_free_ void *d = NULL;
                size_t n;

                if (!json_object_is_type(e, json_type_string) ||
                    hex_decode(json_object_get_string(e), SIZE_MAX, &d, &n) < 0 || n != dsize)
                        job_fail("pcr-values: entry is not a digest of the bank's size");
                memcpy(j->pcr_values + k * dsize, d, dsize);
        }

        if (!json_object_object_get_ex(root, "stale", &a) || !json_object_is_type(a, json_type_array) ||
            json_object_array_length(a) > RESEAL_STALE_MAX)
                job_fail("stale: missing or too long");
        for (size_t k = 0; k < json_object_array_length(a); k++) {
                json_object *e = json_object_array_get_idx(a, k);
                ResealStale *st = &j->stale[k];
                _cleanup_free_ void *d = NULL;
                size_t n;

                if (!json_object_is_type(e, json_type_object))
                        job_fail("stale: entry is not an object");
                if (get_int(e, "token", 0, JOB_TOKENS_MAX - 1, &i) < 0)
                        job_fail("stale: token out of range");
                st->token = (int) i;
                if (get_int(e, "keyslot", 0, JOB_KEYSLOTS_MAX - 1, &i) < 0)
                        job_fail("stale: keyslot out of range");
                st->keyslot = (int) i;
                s = get_string(e, "blob-sha256");
                if (!s || hex_decode(s, SIZE_MAX, &d, &n) < 0 || n != sizeof(st->blob_sha256))
                        job_fail("stale: blob-sha256 missing or malformed");
                memcpy(st->blob_sha256, d, n);
                s = get_string(e, "salt");
                if (!s || strlen(s) > 256)
                        job_fail("stale: salt missing or malformed");
                st->salt = strdup(s);
                if (!st->salt) {
                        r = -ENOMEM;
                        goto finish;
                }
                j->n_stale = k + 1;
        }

        *ret = TAKE_PTR(j);
        r = 0;
finish:
        json_object_put(root);
        return r;
}

int reseal_job_format(const ResealJob *j, char **ret_json) {
        json_object *o = json_object_new_object(), *pcrs, *values, *stale;
        size_t dsize = pcr_bank_digest_size(j->pcr_bank);
        unsigned pos = 0;
        int r = -ENOMEM;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "version", json_object_new_int(JOB_VERSION));
        json_object_object_add(o, "uuid", json_object_new_string(j->uuid));
        json_object_object_add(o, "device", json_object_new_string(j->device ?: ""));
        json_object_object_add(o, "method", json_object_new_string(j->method ?: ""));
        json_object_object_add(o, "keyslot", json_object_new_int(j->keyslot));
        json_object_object_add(o, "generation", json_object_new_int64((int64_t) j->generation));
        json_object_object_add(o, "opened-keyslot", json_object_new_int(j->opened_keyslot));
        json_object_object_add(o, "pcr-bank", json_object_new_string(pcr_bank_to_string(j->pcr_bank) ?: "?"));
        pcrs = json_object_new_array();
        values = json_object_new_array();
        stale = json_object_new_array();
        json_object_object_add(o, "pcrs", pcrs);
        json_object_object_add(o, "pcr-values", values);
        json_object_object_add(o, "stale", stale);
        if (!pcrs || !values || !stale)
                goto finish;
        for (unsigned p = 0; p < PCR_MAX; p++) {
                _cleanup_free_ char *hex = NULL;
                if (!(j->pcr_mask & (1u << p)))
                        continue;
                json_object_array_add(pcrs, json_object_new_int((int) p));
                if (hex_encode(j->pcr_values + pos * dsize, dsize, &hex) < 0)
                        goto finish;
                json_object_array_add(values, json_object_new_string(hex));
                pos++;
        }
        for (size_t k = 0; k < j->n_stale; k++) {
                json_object *e = json_object_new_object();
                _cleanup_free_ char *hex = NULL;
                if (!e || hex_encode(j->stale[k].blob_sha256, 32, &hex) < 0)
                        goto finish;
                json_object_object_add(e, "token", json_object_new_int(j->stale[k].token));
                json_object_object_add(e, "keyslot", json_object_new_int(j->stale[k].keyslot));
                json_object_object_add(e, "blob-sha256", json_object_new_string(hex));
                json_object_object_add(e, "salt", json_object_new_string(j->stale[k].salt ?: ""));
                json_object_array_add(stale, e);
        }
        *ret_json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        r = *ret_json ? 0 : -ENOMEM;
finish:
        json_object_put(o);
        return r;
}

