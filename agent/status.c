/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockdev.h"
#include "drill.h"
#include "fileio.h"
#include "encoding.h"
#include "keyring.h"
#include "log.h"
#include "ownership.h"
#include "pcr.h"
#include "reseal.h"
#include "secret.h"
#include "status.h"
#include "strutil.h"
#include "token.h"

/* Whether the current PCRs satisfy the token's policy: the policy digest of
 * the current values equals tpm2-policy-hash. 1 yes, 0 no, <0 unknown. */
static int policy_satisfied(Tpm2Context *tpm, const Tpm2Token *t, uint32_t *ret_changed) {
        _cleanup_free_ uint8_t *now = NULL;
        uint16_t bank = t->pcr_bank ?: PCR_BANK_SHA256;
        uint8_t d[SHA256_DIGEST_SIZE];
        size_t n, dsize = pcr_bank_digest_size(bank);
        int r;

        *ret_changed = 0;
        if (!tpm)
                return -ENODEV;
        r = tpm2_pcr_read(tpm, bank, t->pcr_mask, &now, &n);
        if (r < 0)
                return r;
        r = policy_digest_compute(bank, t->pcr_mask, now, n, t->pin, d);
        if (r < 0)
                return r;
        if (t->sealed_pcr_values && t->sealed_pcr_values_size == n) {
                unsigned pos = 0;
                for (unsigned i = 0; i < PCR_MAX; i++)
                        if (t->pcr_mask & (1u << i)) {
                                if (memcmp(now + pos * dsize, t->sealed_pcr_values + pos * dsize, dsize) != 0)
                                        *ret_changed |= 1u << i;
                                pos++;
                        }
        }
        return t->policy_hash_size == sizeof(d) && memcmp(d, t->policy_hash, sizeof(d)) == 0;
}

json_object *volume_status(struct crypt_device *cd, const char *device, Tpm2Context *tpm, const char *state_dir) {
        json_object *o = json_object_new_object(), *tokens = json_object_new_array();
        json_object *keyslots = json_object_new_array(), *orphans = json_object_new_array();
        const char *uuid = luks_uuid(cd);
        _cleanup_free_ char *job = NULL;
        uint32_t orphan_mask = 0;

        if (!o || !tokens || !keyslots || !orphans) {
                json_object_put(o);
                json_object_put(tokens);
                json_object_put(keyslots);
                json_object_put(orphans);
                return NULL;
        }
        json_object_object_add(o, "device", json_object_new_string(device));
        json_object_object_add(o, "uuid", json_object_new_string(uuid ?: ""));

        for (int s = 0; s < LUKS2_KEYSLOTS_MAX; s++) {
                KeyslotKind kind = keyslot_kind(cd, s);
                json_object *k;

                if (kind == KEYSLOT_UNUSED)
                        continue;
                k = json_object_new_object();
                if (!k)
                        break;
                json_object_object_add(k, "keyslot", json_object_new_int(s));
                json_object_object_add(k, "kind", json_object_new_string(keyslot_kind_to_string(kind)));
                json_object_array_add(keyslots, k);
        }
        json_object_object_add(o, "keyslots", keyslots);

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                _cleanup_free_ char *type = NULL, *err = NULL;
                const char *json = luks_token_json(cd, i);
                json_object *j;
                uint32_t changed = 0;
                int slot, r;

                if (!json)
                        continue;
                j = json_object_new_object();
                if (!j)
                        break;
                json_object_object_add(j, "token", json_object_new_int(i));
                if (token_get_type_and_keyslot(json, &type, &slot) < 0) {
                        /* Listed all the same: it takes a token slot. */
                        json_object_object_add(j, "type", NULL);
                        json_object_object_add(j, "keyslot", NULL);
                        json_object_object_add(j, "error", json_object_new_string("malformed JSON"));
                        json_object_array_add(tokens, j);
                        continue;
                }
                json_object_object_add(j, "type", json_object_new_string(type));
                json_object_object_add(j, "keyslot", slot >= 0 ? json_object_new_int(slot) : NULL);
                if (streq(type, TOKEN_TYPE_TPM2)) {
                        r = tpm2_token_parse(json, &t, &err);
                        if (r < 0)
                                json_object_object_add(j, "error", json_object_new_string(err ?: "malformed"));
                        else {
                                json_object_object_add(j, "pcr-bank", json_object_new_string(
                                                pcr_bank_to_string(t->pcr_bank ?: PCR_BANK_SHA256) ?: "unknown"));
                                json_object_object_add(j, "pcrs", json_pcr_array(t->pcr_mask));
                                json_object_object_add(j, "pin", json_object_new_boolean(t->pin));
                                json_object_object_add(j, "srk", json_object_new_boolean(!!t->srk));
                                json_object_object_add(j, "generation", json_object_new_int64((int64_t) t->generation));
                                json_object_object_add(j, "proof", json_object_new_boolean(t->has_proof));
                                /* Sealed offline (systemd-cryptenroll --tpm2-device-key):
                                 * the TPM imports it at every unlock. */
                                json_object_object_add(j, "offline-sealed", json_object_new_boolean(t->import_seed));
                                if (t->predicted) {
                                        _cleanup_free_ char *p = token_predicted_to_string(t->predicted);
                                        json_object_object_add(j, "predicted", p ? json_object_new_string(p) : NULL);
                                }
                                if (t->unsupported)
                                        json_object_object_add(j, "unsupported", json_object_new_string(t->unsupported));
                                /* A signed PCR policy (systemd-measure): the PCRs
                                 * its signatures cover. */
                                if (t->pubkey)
                                        json_object_object_add(j, "signed-pcrs", json_pcr_array(t->pubkey_pcr_mask));
                                /* Whether the PCRs satisfy the policy is computed
                                 * for a plain PCR policy only: a signed one depends
                                 * on the signatures at boot, an unsupported one on
                                 * what unlockd does not read. */
                                if (!t->pubkey && !t->unsupported) {
                                        r = policy_satisfied(tpm, t, &changed);
                                        json_object_object_add(j, "policy-satisfied",
                                                               r >= 0 ? json_object_new_boolean(r) : NULL);
                                        if (r == 0 && t->sealed_pcr_values)
                                                json_object_object_add(j, "pcrs-changed", json_pcr_array(changed));
                                }
                        }
                }
                json_object_array_add(tokens, j);
        }
        json_object_object_add(o, "tokens", tokens);

        /* A pending keyslot is live while its job and secret exist. */
        if (uuid && asprintf(&job, "%s/reseal/%s.json", state_dir, uuid) >= 0) {
                bool job_exists = access(job, F_OK) == 0;
                _cleanup_free_ char *desc = reseal_key_description(uuid);
                void *s = NULL;
                size_t n;
                bool key_exists = desc && keyring_read(desc, &s, &n) >= 0;

                secret_free(s);
                json_object_object_add(o, "job", job_exists ? json_object_new_string(job) : NULL);
                /* One entry per keyslot, however many markers name it. */
                for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                        PendingToken p;
                        const char *json;

                        if (job_exists && key_exists)
                                break;
                        if (luks_token_get(cd, i, TOKEN_TYPE_PENDING, &json, NULL) >= 0 &&
                            pending_token_parse(json, &p, NULL) >= 0 && luks_keyslot_active(cd, p.keyslot) &&
                            !(orphan_mask & (1u << p.keyslot)))
                                orphan_mask |= 1u << p.keyslot;
                }
                for (int k = 0; k < LUKS2_KEYSLOTS_MAX; k++)
                        if (orphan_mask & (1u << k))
                                json_object_array_add(orphans, json_object_new_int(k));
        }
        json_object_object_add(o, "orphaned-keyslots", orphans);

        /* The drill records are the header's word: informational only. */
        json_object_object_add(o, "drill-pending", json_object_new_boolean(drill_pending(cd) > 0));
        {
                DrillRecord d;
                json_object *l = NULL;

                if (drill_last(cd, &d) >= 0 && (l = json_object_new_object())) {
                        json_object_object_add(l, "time", json_object_new_int64((int64_t) d.time));
                        json_object_object_add(l, "result", json_object_new_string(drill_result_to_string(d.result)));
                }
                json_object_object_add(o, "last-drill", l);
        }
        return o;
}

/* Text from the header or a state file, made safe for a terminal. */
static void put(FILE *f, const char *s) {
        _cleanup_free_ char *e = cescape(s ?: "");
        fputs(e ?: "?", f);
}

static const char *str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

/* "last drill passed: <date>, with the recovery key": from a header
 * record, so said to be only what the header says. */
static void print_last_drill(FILE *f, json_object *d) {
        json_object *t, *r;
        const char *res;
        char date[64] = "an unknown time";
        struct tm tm;
        time_t when;

        if (!json_object_object_get_ex(d, "time", &t) || !json_object_object_get_ex(d, "result", &r))
                return;
        when = (time_t) json_object_get_int64(t);
        if (gmtime_r(&when, &tm))
                (void) strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
        res = json_object_get_string(r);
        if (streq_ptr(res, "recovery-key") || streq_ptr(res, "passphrase"))
                fprintf(f, "  last drill passed: %s, with the %s", date,
                        streq(res, "recovery-key") ? "recovery key" : "passphrase");
        else
                fprintf(f, "  last drill NOT passed: %s (no recovery key or passphrase was accepted)", date);
        fputs(" (as the LUKS2 header records it)\n", f);
}

void status_print_text(FILE *f, json_object *vols) {
        for (size_t i = 0; i < json_object_array_length(vols); i++) {
                json_object *v = json_object_array_get_idx(vols, i), *x, *toks, *boot;
                const char *dev = str(v, "device");

                put(f, dev);
                fputs(" (", f);
                put(f, str(v, "uuid"));
                fputs(")\n", f);
                if (json_object_object_get_ex(v, "this-boot", &boot) && boot) {
                        fputs("  this boot: opened by ", f);
                        put(f, str(boot, "method"));
                        if (str(boot, "keyslot")) {
                                fputs(", keyslot ", f);
                                put(f, str(boot, "keyslot"));
                        }
                        if (json_object_object_get_ex(boot, "drill", &x) && json_object_get_boolean(x))
                                fputs(" (a recovery drill: the TPM was not asked)", f);
                        fputs("\n", f);
                }
                if (json_object_object_get_ex(v, "drill-pending", &x) && json_object_get_boolean(x))
                        fputs("  recovery drill pending: the next boot does not ask the TPM and asks for the recovery "
                              "key or a passphrase, once (cancel: unlockctl drill --cancel)\n", f);
                if (json_object_object_get_ex(v, "last-drill", &x) && x)
                        print_last_drill(f, x);
                toks = json_object_object_get(v, "tokens");
                for (size_t k = 0; toks && k < json_object_array_length(toks); k++) {
                        json_object *t = json_object_array_get_idx(toks, k);

                        fputs("  token ", f);
                        put(f, str(t, "token"));
                        fputs(": ", f);
                        put(f, str(t, "type") ?: "(malformed)");
                        fputs(", keyslot ", f);
                        put(f, str(t, "keyslot") ?: "none");
                        if (json_object_object_get_ex(t, "pcrs", &x)) {
                                fputs(", PCRs ", f);
                                put(f, json_object_get_string(x));
                                fputs(" (", f);
                                put(f, str(t, "pcr-bank"));
                                fputs(")", f);
                        }
                        if (json_object_object_get_ex(t, "signed-pcrs", &x) && x) {
                                fputs(", signed PCR policy over PCRs ", f);
                                put(f, json_object_get_string(x));
                                fputs(" (opens where a signature for the PCRs at boot is found)", f);
                        }
                        if (json_object_object_get_ex(t, "offline-sealed", &x) && json_object_get_boolean(x))
                                fputs(", sealed offline (the TPM imports it at every unlock)", f);
                        if (json_object_object_get_ex(t, "predicted", &x) && x) {
                                fputs(", sealed to a predicted boot with a new ", f);
                                put(f, json_object_get_string(x));
                        }
                        if (json_object_object_get_ex(t, "unsupported", &x) && x) {
                                fputs(", not supported: ", f);
                                put(f, json_object_get_string(x));
                        }
                        if (json_object_object_get_ex(t, "policy-satisfied", &x))
                                fprintf(f, ", current PCRs %s", !x ? "unknown (no TPM)" :
                                        json_object_get_boolean(x) ? "satisfy the policy" : "do NOT satisfy the policy");
                        if (str(t, "error")) {
                                fputs(", ", f);
                                put(f, str(t, "error"));
                        }
                        fputs("\n", f);
                }
                if (json_object_object_get_ex(v, "job", &x) && x) {
                        fputs("  re-seal job pending: ", f);
                        put(f, json_object_get_string(x));
                        fputs("\n", f);
                }
                if (json_object_object_get_ex(v, "orphaned-keyslots", &x) && x)
                        for (size_t k = 0; k < json_object_array_length(x); k++) {
                                int slot = json_object_get_int(json_object_array_get_idx(x, k));

                                fprintf(f, "  keyslot %d is marked as a pending re-seal keyslot with no job: unlockd removes it at "
                                        "the next boot that proves it is its own; if you are sure it holds no passphrase, "
                                        "remove it by hand: cryptsetup luksKillSlot ", slot);
                                put(f, dev);
                                fprintf(f, " %d\n", slot);
                        }
        }
}

/* The parsed state.json of this boot, or NULL. */
json_object *status_state_read(const char *state_dir) {
        _cleanup_free_ char *path = NULL, *text = NULL;

        if (asprintf(&path, "%s/state.json", state_dir) < 0)
                return NULL;
        if (read_file_regular(path, 1024 * 1024, &text, NULL) < 0)
                return NULL;
        return json_parse_strict(text, 1024 * 1024);
}

/* The devices of the "volumes" array of a parsed state.json. */
static int state_devices(json_object *sv, char ***ret) {
        char **devices;
        size_t n;

        if (!sv || !json_object_is_type(sv, json_type_array) || json_object_array_length(sv) == 0)
                return -ENOENT;
        n = json_object_array_length(sv);
        devices = calloc(n + 1, sizeof(char *));
        if (!devices)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_object_get(json_object_array_get_idx(sv, i), "device");

                devices[i] = strdup(json_object_is_type(d, json_type_string) ? json_object_get_string(d) : "");
                if (!devices[i]) {
                        strv_free(devices);
                        return -ENOMEM;
                }
        }
        *ret = devices;
        return (int) n;
}

int status_state_devices(const char *state_dir, char ***ret) {
        json_object *state = status_state_read(state_dir), *sv = NULL;
        int r;

        if (state)
                (void) json_object_object_get_ex(state, "volumes", &sv);
        r = state_devices(sv, ret);
        json_object_put(state);
        return r;
}

int status_show(char **args, size_t n_args, const char *state_dir, const char *tcti, bool json) {
        _cleanup_(tpm2_context_freep) Tpm2Context *tpm = NULL;
        json_object *state = status_state_read(state_dir), *out, *vols, *sv = NULL;
        char **devices = NULL;
        bool own_devices = false;
        int n = 0, r;

        if (state)
                (void) json_object_object_get_ex(state, "volumes", &sv);

        if (n_args > 0) {
                devices = args;
                n = (int) n_args;
        } else {
                n = state_devices(sv, &devices);
                if (n == -ENOENT)
                        n = blockdev_list_luks(&devices);
                if (n < 0) {
                        json_object_put(state);
                        return log_error_errno(n, "Cannot list LUKS volumes: %m");
                }
                own_devices = true;
        }

        r = tpm2_context_new(tcti, &tpm);
        if (r < 0)
                log_debug_errno(r, "No TPM: %m");

        out = json_object_new_object();
        vols = json_object_new_array();
        for (int i = 0; i < n; i++) {
                _cleanup_luks_ struct crypt_device *cd = NULL;
                json_object *v;

                if (luks_open(devices[i], &cd) < 0) {
                        log_warning("Cannot read the LUKS2 header of %s.", devices[i]);
                        continue;
                }
                v = volume_status(cd, devices[i], tpm, state_dir);
                if (!v)
                        continue;
                /* How it was opened this boot, from unlockd's state file. */
                for (size_t k = 0; sv && k < json_object_array_length(sv); k++) {
                        json_object *s = json_object_array_get_idx(sv, k);
                        if (streq_ptr(json_object_get_string(json_object_object_get(s, "uuid")), luks_uuid(cd)))
                                json_object_object_add(v, "this-boot", json_object_get(s));
                }
                json_object_array_add(vols, v);
        }
        json_object_object_add(out, "volumes", vols);
        json_object_object_add(out, "tpm", json_object_new_boolean(tpm != NULL));

        if (json)
                printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                status_print_text(stdout, vols);

        json_object_put(out);
        json_object_put(state);
        if (own_devices)
                strv_free(devices);
        return 0;
}

