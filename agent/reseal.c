/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "blockdev.h"
#include "encoding.h"
#include "fileio.h"
#include "keyring.h"
#include "log.h"
#include "strutil.h"
#include "pcr.h"
#include "reseal.h"
#include "secret.h"
#include "token.h"
#include "tpm2.h"

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

void reseal_result_done(ResealResult *r) {
        free(r->uuid);
        free(r->device);
        free(r->message);
        *r = (ResealResult) { .keyslot = -1, .token = -1 };
}

void reseal_crash_point(const char *step) {
        const char *e = getenv("UNLOCKD_RESEAL_CRASH_AT");

        if (e && streq(e, step)) {
                log_notice("Crashing at step %s (test hook).", step);
                raise(SIGKILL);
        }
}

char *reseal_key_description(const char *uuid) {
        char *s = NULL;
        if (asprintf(&s, "unlockd:reseal:%s", uuid) < 0)
                return NULL;
        return s;
}

/* ---- job JSON ---------------------------------------------------------- */

static bool uuid_valid(const char *s) {
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
        json_tokener *tok = NULL;
        json_object *root = NULL, *a;
        const char *s;
        size_t len = strnlen(json, RESEAL_JOB_MAX + 1), dsize;
        int64_t i;
        int r;

        if (len > RESEAL_JOB_MAX) {
                if (ret_error)
                        *ret_error = strdup("job file too large");
                return -EBADMSG;
        }
        tok = json_tokener_new_ex(16);
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int) len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len)
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
        if (get_int(root, "keyslot", 0, LUKS2_KEYSLOTS_MAX - 1, &i) < 0)
                job_fail("keyslot: missing or out of range");
        j->keyslot = (int) i;
        if (get_int(root, "generation", 1, INT64_MAX, &i) < 0)
                job_fail("generation: missing or not positive");
        j->generation = (uint64_t) i;

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
                if (get_int(e, "token", 0, LUKS2_TOKENS_MAX - 1, &i) < 0)
                        job_fail("stale: token out of range");
                st->token = (int) i;
                if (get_int(e, "keyslot", 0, LUKS2_KEYSLOTS_MAX - 1, &i) < 0)
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
        json_tokener_free(tok);
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

/* ---- header helpers ----------------------------------------------------- */

static int pending_token_format(int keyslot, uint64_t generation, char **ret) {
        return asprintf(ret, "{\"type\":\"" TOKEN_TYPE_PENDING "\",\"keyslots\":[\"%d\"],\"unlockd-generation\":%llu}",
                        keyslot, (unsigned long long) generation) < 0 ? -ENOMEM : 0;
}

/* The generation of an unlockd-pending token, or -EBADMSG. */
static int pending_token_generation(const char *json, uint64_t *ret) {
        json_object *o = json_tokener_parse(json), *g;
        int r = -EBADMSG;

        if (o && json_object_object_get_ex(o, "unlockd-generation", &g) && json_object_is_type(g, json_type_int) &&
            json_object_get_int64(g) >= 0) {
                *ret = (uint64_t) json_object_get_int64(g);
                r = 0;
        }
        json_object_put(o);
        return r;
}

/* Finds the token of type with keyslot (and generation, when gen > 0). */
static int find_token(struct crypt_device *cd, const char *type, int keyslot, uint64_t gen) {
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *t = NULL;
                const char *json = luks_token_json(cd, i);
                uint64_t g = 0;
                int slot;

                if (!json || token_get_type_and_keyslot(json, &t, &slot) < 0 || !streq(t, type) || slot != keyslot)
                        continue;
                if (gen > 0) {
                        if (streq(type, TOKEN_TYPE_PENDING)) {
                                if (pending_token_generation(json, &g) < 0)
                                        continue;
                        } else {
                                _cleanup_(tpm2_token_freep) Tpm2Token *tt = NULL;
                                if (tpm2_token_parse(json, &tt, NULL) < 0)
                                        continue;
                                g = tt->generation;
                        }
                        if (g != gen)
                                continue;
                }
                return i;
        }
        return -ENOENT;
}

/* Number of tokens referencing keyslot, of any type. */
static unsigned tokens_on_keyslot(struct crypt_device *cd, int keyslot) {
        unsigned n = 0;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *t = NULL;
                const char *json = luks_token_json(cd, i);
                int slot;

                if (json && token_get_type_and_keyslot(json, &t, &slot) >= 0 && slot == keyslot)
                        n++;
        }
        return n;
}

static uint64_t max_generation(struct crypt_device *cd) {
        uint64_t m = 0;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const char *json = luks_token_json(cd, i);
                uint64_t g;

                if (!json)
                        continue;
                if (tpm2_token_parse(json, &t, NULL) >= 0)
                        m = MAX(m, t->generation);
                else if (pending_token_generation(json, &g) >= 0)
                        m = MAX(m, g);
        }
        return m;
}

static char *job_path(const char *state_dir, const char *uuid) {
        char *p = NULL;
        if (asprintf(&p, "%s/reseal/%s.json", state_dir, uuid) < 0)
                return NULL;
        return p;
}

/* ---- initrd side ---------------------------------------------------------- */

int reseal_queue(Unlocker *u, struct crypt_device *cd, Volume *v, const char *pass, size_t len,
                 const char *state_dir) {
        _cleanup_(reseal_job_freep) ResealJob *j = NULL;
        _cleanup_free_ char *desc = NULL, *path = NULL, *json = NULL, *pending = NULL, *dir = NULL;
        _cleanup_secret_ char *b64 = NULL;
        uint8_t *secret = NULL;
        Tpm2Context *tpm;
        int slot = -1, ptok = -1, r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;

        /* The tokens to replace: those the TPM refused because the PCRs
         * changed. PIN tokens are left alone: the booted system does not
         * have the PIN to seal a new one. */
        for (size_t i = 0; i < v->n_outcomes; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const TokenOutcome *o = &v->outcomes[i];
                ResealStale *st;
                const char *tj;

                if (o->result != TOKEN_PCR_MISMATCH)
                        continue;
                tj = luks_token_json(cd, o->token);
                if (!tj || tpm2_token_parse(tj, &t, NULL) < 0)
                        continue;
                if (t->pin) {
                        log_notice("TPM2 token %d of %s has a PIN; it is not re-sealed automatically "
                                   "(re-enroll it with 'unlockctl enroll --tpm2 --pin').", o->token, v->device);
                        continue;
                }
                if (j->n_stale >= RESEAL_STALE_MAX)
                        break;
                if (j->n_stale == 0) {
                        j->pcr_bank = t->pcr_bank ?: PCR_BANK_SHA256;
                        j->pcr_mask = t->pcr_mask;
                } else if (t->pcr_mask != j->pcr_mask || (t->pcr_bank ?: PCR_BANK_SHA256) != j->pcr_bank)
                        continue; /* one job re-seals one policy */
                st = &j->stale[j->n_stale];
                st->token = o->token;
                st->keyslot = t->keyslot;
                SHA256(t->blob, t->blob_size, st->blob_sha256);
                r = luks_keyslot_salt(cd, t->keyslot, &st->salt);
                if (r < 0)
                        return log_debug_errno(r, "Cannot identify keyslot %d: %m", t->keyslot);
                j->n_stale++;
        }
        if (j->n_stale == 0)
                return 0;

        r = unlocker_tpm(u, &tpm);
        if (r < 0)
                return log_debug_errno(r, "No TPM to read the PCRs from: %m");
        /* The PCR values here, at the unseal point, are what the next boot
         * will show; the booted system's later values may differ. */
        r = tpm2_pcr_read(tpm, j->pcr_bank, j->pcr_mask, &j->pcr_values, &j->pcr_values_size);
        if (r < 0)
                return log_debug_errno(r, "Failed to read the PCRs: %m");

        /* Pending keyslots of earlier boots whose job never finished. */
        (void) reseal_clean_orphans(cd, state_dir);

        j->uuid = strdup(v->uuid);
        j->device = strdup(v->device);
        j->method = strdup(unlock_method_to_string(v->method));
        desc = reseal_key_description(v->uuid);
        path = job_path(state_dir, v->uuid);
        if (asprintf(&dir, "%s/reseal", state_dir) < 0)
                dir = NULL;
        if (!j->uuid || !j->device || !j->method || !desc || !path || !dir)
                return -ENOMEM;
        j->generation = max_generation(cd) + 1;

        secret = secret_alloc(TPM2_SECRET_SIZE);
        if (!secret)
                return -ENOMEM;
        if (getrandom(secret, TPM2_SECRET_SIZE, 0) != TPM2_SECRET_SIZE) {
                secret_free(secret);
                return -EIO;
        }
        r = base64_encode(secret, TPM2_SECRET_SIZE, true, &b64);
        if (r < 0) {
                secret_free(secret);
                return r;
        }

        slot = luks_keyslot_add(cd, pass, len, b64, (size_t) r, true);
        if (slot < 0) {
                secret_free(secret);
                return log_debug_errno(slot, "Failed to add the re-seal keyslot: %m");
        }
        j->keyslot = slot;

        r = pending_token_format(slot, j->generation, &pending);
        if (r >= 0)
                r = ptok = luks_token_add(cd, pending);
        if (r >= 0)
                r = keyring_store(desc, secret, TPM2_SECRET_SIZE, KEYRING_RESEAL_TIMEOUT_SEC);
        secret = secret_free(secret);
        if (r >= 0)
                r = reseal_job_format(j, &json);
        if (r >= 0)
                r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = write_file_atomic(path, json, strlen(json), 0600);
        if (r < 0) {
                /* Leave nothing behind. */
                (void) keyring_drop(desc);
                if (ptok >= 0)
                        (void) luks_token_remove(cd, ptok);
                (void) luks_keyslot_destroy(cd, slot);
                return log_debug_errno(r, "Failed to queue the re-seal job: %m");
        }
        log_debug("Queued re-seal job %s: keyslot %d, generation %llu.", path, slot,
                  (unsigned long long) j->generation);
        return 1;
}

/* ---- orphans ---------------------------------------------------------------- */

/* Whether a job in state_dir covers this pending keyslot and its secret is
 * still in the keyring. */
static bool pending_is_live(const char *state_dir, const char *uuid, int keyslot, uint64_t gen) {
        _cleanup_free_ char *path = job_path(state_dir, uuid), *json = NULL, *desc = NULL;
        _cleanup_(reseal_job_freep) ResealJob *j = NULL;
        void *s = NULL;
        size_t n;

        if (!path || read_file_bounded(path, RESEAL_JOB_MAX, &json, NULL) < 0)
                return false;
        if (reseal_job_parse(json, &j, NULL) < 0 || j->keyslot != keyslot || j->generation != gen)
                return false;
        desc = reseal_key_description(uuid);
        if (!desc || keyring_read(desc, &s, &n) < 0)
                return false;
        secret_free(s);
        return true;
}

int reseal_clean_orphans(struct crypt_device *cd, const char *state_dir) {
        const char *uuid = luks_uuid(cd);
        int removed = 0;

        if (!uuid)
                return -EINVAL;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_free_ char *type = NULL;
                const char *json = luks_token_json(cd, i);
                uint64_t gen = 0;
                int slot, r;

                if (!json || token_get_type_and_keyslot(json, &type, &slot) < 0 || !streq(type, TOKEN_TYPE_PENDING))
                        continue;
                (void) pending_token_generation(json, &gen);
                if (pending_is_live(state_dir, uuid, slot, gen))
                        continue;

                /* The pending token proves the keyslot is unlockd's own;
                 * if a TPM2 token was already written for it, the keyslot
                 * is in use and only the marker goes. */
                bool in_use = find_token(cd, TOKEN_TYPE_TPM2, slot, 0) >= 0;
                r = luks_token_remove(cd, i);
                if (r < 0)
                        return r;
                if (!in_use && slot >= 0 && luks_keyslot_active(cd, slot) && tokens_on_keyslot(cd, slot) == 0) {
                        r = luks_keyslot_destroy(cd, slot);
                        if (r < 0)
                                return r;
                        log_notice("Removed orphaned re-seal keyslot %d of %s (its secret is gone).", slot, uuid);
                } else
                        log_notice("Removed a stale re-seal marker for keyslot %d of %s.", slot, uuid);
                removed++;
        }
        return removed;
}

/* ---- booted side ---------------------------------------------------------- */

static int open_job_volume(const ResealJob *j, struct crypt_device **ret, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        struct crypt_device *cd = NULL;

        /* The initrd's path is a hint; the UUID decides. */
        if (j->device && *j->device && luks_open(j->device, &cd) >= 0) {
                if (streq_ptr(luks_uuid(cd), j->uuid)) {
                        *ret = cd;
                        *ret_path = strdup(j->device);
                        return *ret_path ? 0 : -ENOMEM;
                }
                crypt_free(cd);
                cd = NULL;
        }
        if (blockdev_find_by_uuid(j->uuid, &path) < 0)
                return -ENODEV;
        if (luks_open(path, &cd) < 0)
                return -ENODEV;
        if (!streq_ptr(luks_uuid(cd), j->uuid)) {
                crypt_free(cd);
                return -ENODEV;
        }
        *ret = cd;
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* Unseals the token and checks that its keyslot takes the secret. */
static int verify_token(Tpm2Context *tpm, struct crypt_device *cd, int token) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_secret_ char *b64 = NULL;
        const char *json = luks_token_json(cd, token);
        void *s = NULL;
        size_t n;
        int r;

        if (!json)
                return -ENOENT;
        r = tpm2_token_parse(json, &t, NULL);
        if (r < 0)
                return r;
        r = tpm2_unseal(tpm, t, NULL, &s, &n);
        if (r < 0)
                return r;
        r = base64_encode(s, n, true, &b64);
        secret_free(s);
        if (r < 0)
                return r;
        r = luks_check_passphrase(cd, t->keyslot, b64, (size_t) r);
        return r < 0 ? r : 0;
}

static void finish_job(const char *path, const char *desc) {
        (void) keyring_drop(desc);
        reseal_crash_point("after-drop-key");
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove %s: %m", path);
}

/* Step D: retire each stale token that is still exactly what the job
 * recorded, and its keyslot when it is still the same keyslot and nothing
 * else uses it. */
static unsigned retire_stale(struct crypt_device *cd, const ResealJob *j) {
        unsigned removed = 0;

        for (size_t k = 0; k < j->n_stale; k++) {
                const ResealStale *st = &j->stale[k];
                const char *json = luks_token_json(cd, st->token);
                _cleanup_free_ char *salt = NULL;

                if (st->keyslot == j->keyslot)
                        continue;
                if (json) {
                        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                        uint8_t h[32];

                        if (tpm2_token_parse(json, &t, NULL) >= 0 && t->keyslot == st->keyslot) {
                                SHA256(t->blob, t->blob_size, h);
                                if (memcmp(h, st->blob_sha256, sizeof(h)) == 0) {
                                        if (luks_token_remove(cd, st->token) < 0)
                                                continue;
                                        removed++;
                                        reseal_crash_point("after-stale-token");
                                }
                        }
                }
                /* The keyslot goes only if it is the very keyslot recorded
                 * (same KDF salt) and no token uses it any more. */
                if (luks_keyslot_active(cd, st->keyslot) && tokens_on_keyslot(cd, st->keyslot) == 0 &&
                    luks_keyslot_salt(cd, st->keyslot, &salt) >= 0 && streq(salt, st->salt)) {
                        if (luks_keyslot_destroy(cd, st->keyslot) >= 0)
                                reseal_crash_point("after-stale-keyslot");
                }
        }
        return removed;
}

int reseal_run_job(const char *path, const char *state_dir, const char *tcti, ResealResult *res) {
        _cleanup_(reseal_job_freep) ResealJob *j = NULL;
        _cleanup_(tpm2_context_freep) Tpm2Context *tpm = NULL;
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_free_ char *json = NULL, *error = NULL, *desc = NULL, *tjson = NULL, *pending = NULL;
        _cleanup_free_ uint8_t *now = NULL;
        _cleanup_secret_ char *b64 = NULL;
        _cleanup_luks_ struct crypt_device *cd = NULL;
        void *secret = NULL;
        size_t secret_size = 0, now_size = 0;
        int token, ptok, r;

        *res = (ResealResult) { .keyslot = -1, .token = -1 };

        r = read_file_bounded(path, RESEAL_JOB_MAX, &json, NULL);
        if (r < 0) {
                free_and_printf(&res->message, "cannot read %s: %s", path, strerror(ERRNO_VALUE(r)));
                return r;
        }
        r = reseal_job_parse(json, &j, &error);
        if (r < 0) {
                /* A torn job cannot be finished; its pending keyslot, if
                 * any, is an orphan and goes with the next orphan scan. */
                _cleanup_free_ char *base = strdup(strrchr(path, '/') ? strrchr(path, '/') + 1 : path), *tdesc = NULL;

                free_and_printf(&res->message, "job %s is unreadable (%s); removed", path, error ?: "malformed");
                (void) unlink(path);
                /* Its secret is useless now; the file name names the volume. */
                if (base && strlen(base) > 5 && streq(base + strlen(base) - 5, ".json")) {
                        base[strlen(base) - 5] = 0;
                        if (uuid_valid(base) && (tdesc = reseal_key_description(base)))
                                (void) keyring_drop(tdesc);
                }
                return 1;
        }
        res->uuid = strdup(j->uuid);
        desc = reseal_key_description(j->uuid);
        if (!res->uuid || !desc)
                return -ENOMEM;

        r = open_job_volume(j, &cd, &res->device);
        if (r < 0) {
                free_and_printf(&res->message, "volume %s is not present", j->uuid);
                return r;
        }
        res->keyslot = j->keyslot;
        reseal_crash_point("after-load");

        token = find_token(cd, TOKEN_TYPE_TPM2, j->keyslot, j->generation);
        ptok = find_token(cd, TOKEN_TYPE_PENDING, j->keyslot, j->generation);

        if (token < 0) {
                /* Step A: not sealed yet. */
                if (ptok < 0 || !luks_keyslot_active(cd, j->keyslot)) {
                        free_and_printf(&res->message, "job for keyslot %d is obsolete (keyslot or marker gone); removed", j->keyslot);
                        finish_job(path, desc);
                        (void) reseal_clean_orphans(cd, state_dir);
                        return 1;
                }
                r = keyring_read(desc, &secret, &secret_size);
                if (r == -ENOKEY) {
                        finish_job(path, desc);
                        (void) reseal_clean_orphans(cd, state_dir);
                        free_and_printf(&res->message, "the re-seal secret is gone from the keyring (expired?); "
                                       "orphaned keyslot %d removed; the next recovery unlock queues a new job", j->keyslot);
                        return 1;
                }
                if (r < 0) {
                        free_and_printf(&res->message, "cannot read the re-seal secret: %s", strerror(ERRNO_VALUE(r)));
                        return r;
                }
                r = base64_encode(secret, secret_size, true, &b64);
                if (r < 0) {
                        secret_free(secret);
                        return r;
                }
                r = luks_check_passphrase(cd, j->keyslot, b64, (size_t) r);
                if (r < 0) {
                        secret_free(secret);
                        free_and_printf(&res->message, "the re-seal secret does not open keyslot %d", j->keyslot);
                        return -EBADMSG;
                }

                r = tpm2_context_new(tcti, &tpm);
                if (r < 0) {
                        secret_free(secret);
                        free_and_printf(&res->message, "cannot open the TPM: %s", tpm2_strerror(r));
                        return r;
                }
                r = tpm2_seal(tpm, &(Tpm2SealParams) {
                                .bank = j->pcr_bank,
                                .mask = j->pcr_mask,
                                .pcr_values = j->pcr_values,
                                .pcr_values_size = j->pcr_values_size,
                                .use_srk = true,
                        }, secret, secret_size, &t);
                secret = secret_free(secret);
                if (r < 0) {
                        free_and_printf(&res->message, "sealing failed: %s", tpm2_strerror(r));
                        return r;
                }
                t->keyslot = j->keyslot;
                t->generation = j->generation;
                r = tpm2_token_format(t, &tjson);
                if (r < 0)
                        return r;
                reseal_crash_point("before-token");
                token = luks_token_add(cd, tjson);
                if (token < 0) {
                        free_and_printf(&res->message, "cannot write the TPM2 token: %s", strerror(ERRNO_VALUE(token)));
                        return token;
                }
                reseal_crash_point("after-token");
        }
        res->token = token;

        /* Step B: the keyslot now has its TPM2 token; drop the marker. */
        if (ptok >= 0) {
                r = luks_token_remove(cd, ptok);
                if (r < 0)
                        return r;
                reseal_crash_point("after-pending");
        }

        /* Step C: verify where the PCRs still match the recorded values. */
        if (!tpm) {
                r = tpm2_context_new(tcti, &tpm);
                if (r < 0) {
                        free_and_printf(&res->message, "cannot open the TPM: %s", tpm2_strerror(r));
                        return r;
                }
        }
        r = tpm2_pcr_read(tpm, j->pcr_bank, j->pcr_mask, &now, &now_size);
        if (r >= 0 && now_size == j->pcr_values_size && memcmp(now, j->pcr_values, now_size) == 0) {
                r = verify_token(tpm, cd, token);
                if (r < 0) {
                        /* Never retire the old path on an unproven new one:
                         * take the new token back, keep the job. */
                        (void) pending_token_format(j->keyslot, j->generation, &pending);
                        if (pending)
                                (void) luks_token_add(cd, pending);
                        (void) luks_token_remove(cd, token);
                        free_and_printf(&res->message, "the new TPM2 token did not verify (%s); job kept", tpm2_strerror(r));
                        return -EIO;
                }
                res->verified = true;
        } else
                res->verify_skipped = true;
        reseal_crash_point("after-verify");

        /* Step D and E. */
        res->stale_removed = retire_stale(cd, j);
        finish_job(path, desc);
        /* Pending keyslots of superseded jobs for this volume. */
        (void) reseal_clean_orphans(cd, state_dir);
        {
                _cleanup_free_ char *pcrs = pcr_mask_to_string(j->pcr_mask);
                free_and_printf(&res->message, "re-sealed keyslot %d to PCR %s (%s bank) as token %d%s; %u stale token%s removed",
                               j->keyslot, pcrs ?: "?", pcr_bank_to_string(j->pcr_bank), token,
                               res->verified ? ", verified by unsealing" : ", not verified (the PCRs moved on since boot)",
                               res->stale_removed, res->stale_removed == 1 ? "" : "s");
        }
        return 0;
}
