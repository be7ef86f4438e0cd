/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sealing to a predicted next boot, and retiring what that boot did not
 * need (preseal.h). */
#include <assert.h>
#include <dirent.h>
#include <json-c/json.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashpoint.h"
#include "encoding.h"
#include "fileio.h"
#include "log.h"
#include "luks.h"
#include "pcr.h"
#include "pe.h"
#include "preseal.h"
#include "secret.h"
#include "strutil.h"
#include "token.h"

/* An EFI binary is at most this large (a kernel is ~10 MiB). */
#define EFI_BINARY_MAX (512U * 1024U * 1024U)

unsigned predict_sources_mask(const PredictSources *s) {
        return (s->boot_loader ? 1u << PREDICT_BOOT_LOADER : 0) | (s->kernel ? 1u << PREDICT_KERNEL : 0) |
               (s->initrd ? 1u << PREDICT_INITRD : 0) | (s->cmdline ? 1u << PREDICT_CMDLINE : 0);
}

static int efi_digest(const char *path, uint16_t bank, uint8_t *ret) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_file_bounded(path, EFI_BINARY_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", path);
        r = pe_authenticode_digest(data, size, bank, ret);
        if (r < 0)
                return log_error_errno(r, "%s is not an EFI binary whose Authenticode digest can be computed: %m", path);
        return 0;
}

int predict_sources_digests(const PredictSources *s, uint16_t bank, PredictDigests *ret) {
        int r;

        *ret = (PredictDigests) { .bank = bank };
        if (s->boot_loader) {
                r = efi_digest(s->boot_loader, bank, ret->digest[PREDICT_BOOT_LOADER]);
                if (r < 0)
                        return r;
                ret->has[PREDICT_BOOT_LOADER] = true;
        }
        if (s->kernel) {
                r = efi_digest(s->kernel, bank, ret->digest[PREDICT_KERNEL]);
                if (r < 0)
                        return r;
                ret->has[PREDICT_KERNEL] = true;
        }
        if (s->initrd) {
                _cleanup_close_ int fd = open(s->initrd, O_RDONLY | O_CLOEXEC | O_NOCTTY);

                if (fd < 0)
                        return log_error_errno(errno, "Cannot open %s: %m", s->initrd);
                r = predict_fd_digest(fd, bank, ret->digest[PREDICT_INITRD]);
                if (r < 0)
                        return log_error_errno(r, "Cannot read %s: %m", s->initrd);
                ret->has[PREDICT_INITRD] = true;
        }
        if (s->cmdline) {
                r = predict_cmdline_digest(s->cmdline, bank, ret->digest[PREDICT_CMDLINE]);
                if (r < 0)
                        return log_error_errno(r, "The kernel command line cannot be measured as the boot chain does: %m");
                ret->has[PREDICT_CMDLINE] = true;
        }
        return 0;
}

int predict_load_log(const char *path, EventLog **ret) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        /* $UNLOCKD_EVENTLOG: the test suites' stand-in for the kernel's file. */
        path = path ?: secure_getenv("UNLOCKD_EVENTLOG") ?: PREDICT_EVENTLOG_PATH;
        r = read_file_bounded(path, EVENTLOG_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "Cannot read the firmware's event log %s: %m", path);
        r = eventlog_parse(data, size, ret);
        if (r == -EOPNOTSUPP)
                return log_error_errno(r, "The event log %s is not in the crypto-agile format (a SHA-1-only log of "
                                       "TPM 1.2 firmware?): the next boot cannot be predicted from it.", path);
        if (r < 0)
                return log_error_errno(r, "Cannot parse the event log %s: %m", path);
        return 0;
}

int predict_pcrs(const EventLog *log, Tpm2Context *tpm, const PredictSources *s, uint16_t bank, uint32_t mask,
                 PcrPrediction *ret) {
        _cleanup_free_ uint8_t *now = NULL;
        PredictDigests d;
        size_t dsize = pcr_bank_digest_size(bank), n = 0, pos = 0;
        int r;

        assert(log);
        assert(s);
        assert(ret);

        memset(ret, 0, sizeof(*ret));
        ret->bank = bank;
        ret->mask = mask;
        ret->offline = !tpm;
        r = predict_sources_digests(s, bank, &d);
        if (r < 0)
                return r;
        r = predict_substitute(log, &d, &ret->result);
        if (r == -ENOENT && eventlog_bank_index(log, bank) >= 0)
                return log_error_errno(r, "The event log has no event of the %s: it does not boot the way unlockd "
                                       "predicts (a boot loader and a Linux EFI stub kernel).",
                                       predict_component_to_string(ret->result.missing));
        if (r == -ENOENT)
                return log_error_errno(r, "The event log has no %s bank.", pcr_bank_to_string(bank) ?: "such");
        if (r == -EINVAL)
                return log_error_errno(r, "The event log shows one EFI application: the kernel and the boot loader "
                                       "cannot both be replaced.");
        if (r < 0)
                return log_error_errno(r, "Cannot replay the event log: %m");

        if (tpm) {
                r = tpm2_pcr_read(tpm, bank, mask, &now, &n);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the %s PCRs: %m", pcr_bank_to_string(bank) ?: "?");
                if (n != pcr_mask_count(mask) * dsize)
                        return log_error_errno(EIO, "The TPM returned %zu bytes of PCR values, not %zu.", n,
                                               pcr_mask_count(mask) * dsize);
        }
        for (unsigned i = 0; i < PCR_MAX; i++) {
                if (!(mask & (1u << i)))
                        continue;
                if (now)
                        memcpy(ret->reference[i], now + dsize * pos++, dsize);
                else
                        memcpy(ret->reference[i], ret->result.current.values[i], dsize);
                if (ret->result.substituted & (1u << i)) {
                        memcpy(ret->predicted[i], ret->result.predicted.values[i], dsize);
                        if (memcmp(ret->result.current.values[i], ret->reference[i], dsize) != 0)
                                ret->unpredictable |= 1u << i;
                } else
                        memcpy(ret->predicted[i], ret->reference[i], dsize);
        }
        return 0;
}

/* The token of the volume that opens this boot: unsealed by the TPM, its
 * secret taken by its keyslot. PIN tokens are not tried (the PIN would be
 * needed, and a wrong one counts against the TPM's lockout). */
static int find_opener(struct crypt_device *cd, Tpm2Context *tpm, Tpm2Token **ret_token, int *ret_id,
                       char **ret_pass, size_t *ret_len) {
        int last = -ENOENT;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                _cleanup_secret_ char *pass = NULL;
                const char *json;
                size_t len;
                int r;

                /* A signed PCR policy is no base for a prediction: its
                 * literal PCRs (often none) are not what protects it. */
                if (luks_token_get(cd, i, TOKEN_TYPE_TPM2, &json, NULL) < 0 ||
                    tpm2_token_parse(json, &t, NULL) < 0 || t->unsupported || t->pubkey)
                        continue;
                if (t->pin) {
                        last = last == -ENOENT ? -ENOKEY : last;
                        continue;
                }
                r = tpm2_unseal_passphrase(tpm, t, NULL, &pass, &len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        last = r;
                        continue;
                }
                if (luks_check_passphrase(cd, t->keyslot, pass, len) < 0) {
                        last = -EBADMSG;
                        continue;
                }
                *ret_len = len;
                *ret_pass = TAKE_PTR(pass);
                *ret_token = TAKE_PTR(t);
                *ret_id = i;
                return 0;
        }
        return last;
}

/* The TPM2 tokens of base's keyslot: the generation to give a new
 * prediction, one sealed to values already (*ret_same), and the pending
 * predictions (all but base_id's): how many, and the oldest. */
static int scan_keyslot(struct crypt_device *cd, const Tpm2Token *base, int base_id, const uint8_t *values, size_t size,
                        uint64_t *ret_generation, int *ret_same, int *ret_oldest, unsigned *ret_n_predicted) {
        uint64_t gen = base->generation, oldest_gen = UINT64_MAX;

        *ret_same = *ret_oldest = -1;
        *ret_n_predicted = 0;
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
                const char *json;

                if (luks_token_get(cd, i, TOKEN_TYPE_TPM2, &json, NULL) < 0 ||
                    tpm2_token_parse(json, &t, NULL) < 0 || t->keyslot != base->keyslot)
                        continue;
                gen = MAX(gen, t->generation);
                if (t->pcr_bank == base->pcr_bank && t->pcr_mask == base->pcr_mask && !t->pin &&
                    t->sealed_pcr_values && t->sealed_pcr_values_size == size &&
                    memcmp(t->sealed_pcr_values, values, size) == 0)
                        *ret_same = i;
                /* The token that opens this boot is no pending prediction,
                 * whatever it was made as. */
                if (t->predicted && i != base_id) {
                        (*ret_n_predicted)++;
                        if (t->generation < oldest_gen) {
                                oldest_gen = t->generation;
                                *ret_oldest = i;
                        }
                }
        }
        *ret_generation = gen < TOKEN_GENERATION_MAX ? gen + 1 : TOKEN_GENERATION_MAX;
        return 0;
}

static int preseal_device(const char *device, Tpm2Context *tpm, const EventLog *log, const PredictSources *s) {
        _cleanup_luks_ struct crypt_device *cd = NULL;
        _cleanup_(tpm2_token_freep) Tpm2Token *base = NULL, *nt = NULL;
        _cleanup_secret_ char *pass = NULL;
        _cleanup_free_ char *json = NULL, *pcrs = NULL, *what = NULL;
        _cleanup_free_ uint8_t *values = NULL;
        PcrPrediction *p = NULL;
        uint64_t gen;
        size_t len = 0, dsize, pos = 0;
        unsigned n_predicted;
        int id = -1, same, oldest, r;

        r = luks_open(device, &cd);
        if (r < 0)
                return log_error_errno(r, "Cannot read the LUKS2 header of %s: %m", device);
        r = find_opener(cd, tpm, &base, &id, &pass, &len);
        if (r == -ENOENT)
                return log_info("%s: no TPM2 token, nothing to predict.", device), 0;
        if (r == -ENOKEY)
                return log_warning_errno(r, "%s: its TPM2 tokens need a PIN, which a prediction would need too: "
                                         "the next boot after the update asks, and re-seals.", device);
        if (r < 0)
                return log_error_errno(r, "%s: no TPM2 token opens it this boot (%s), so there is no secret to seal "
                                       "to the next boot; the re-seal after the next prompt will be needed.",
                                       device, r == -ESTALE ? "the PCRs changed since sealing" : tpm2_strerror(r));

        pcrs = pcr_mask_to_string(base->pcr_mask);
        what = token_predicted_to_string(predict_sources_mask(s));
        p = malloc(sizeof(*p));
        if (!pcrs || !what || !p) {
                free(p);
                return log_oom();
        }
        r = predict_pcrs(log, tpm, s, base->pcr_bank ?: PCR_BANK_SHA256, base->pcr_mask, p);
        if (r < 0)
                goto finish;
        if (p->unpredictable & base->pcr_mask) {
                _cleanup_free_ char *bad = pcr_mask_to_string(p->unpredictable & base->pcr_mask);

                r = log_error_errno(ESTALE, "%s: PCR %s of token %d cannot be predicted: the event log's replay "
                                    "is not the TPM's value. Nothing sealed; the next boot asks and re-seals.",
                                    device, bad ?: "?", id);
                goto finish;
        }
        if (!(p->result.substituted & base->pcr_mask)) {
                log_info("%s: token %d (PCR %s) does not depend on the %s: it keeps opening, nothing to seal.",
                         device, id, pcrs, what);
                r = 0;
                goto finish;
        }

        dsize = pcr_bank_digest_size(p->bank);
        values = malloc(pcr_mask_count(base->pcr_mask) * dsize);
        if (!values) {
                r = log_oom();
                goto finish;
        }
        for (unsigned i = 0; i < PCR_MAX; i++)
                if (base->pcr_mask & (1u << i))
                        memcpy(values + dsize * pos++, p->predicted[i], dsize);

        scan_keyslot(cd, base, id, values, pos * dsize, &gen, &same, &oldest, &n_predicted);
        if (same >= 0 || (base->sealed_pcr_values && base->sealed_pcr_values_size == pos * dsize &&
                          memcmp(base->sealed_pcr_values, values, pos * dsize) == 0)) {
                log_info("%s: the predicted PCR values are already sealed (token %d): nothing to do.", device,
                         same >= 0 ? same : id);
                r = 0;
                goto finish;
        }
        if (n_predicted >= PRESEAL_PREDICTIONS_MAX && oldest >= 0) {
                r = luks_token_remove(cd, oldest);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot remove the oldest prediction, token %d: %s", device, oldest,
                                        luks_strerror(r));
                        goto finish;
                }
                log_info("%s: removed the oldest prediction, token %d (at most %u per keyslot).", device, oldest,
                         PRESEAL_PREDICTIONS_MAX);
                crash_point("preseal-oldest-removed");
        }

        {
                _cleanup_(secret_freep) void *secret = NULL;
                size_t secret_size;
                Tpm2SealParams sp = {
                        .bank = p->bank,
                        .mask = base->pcr_mask,
                        .pcr_values = values,
                        .pcr_values_size = pos * dsize,
                        .use_srk = base->srk != NULL,
                        .primary_alg = base->primary_alg,
                };

                /* The same secret: the keyslot's passphrase is its base64. */
                r = base64_decode(pass, len, true, &secret, &secret_size);
                if (r < 0) {
                        log_error_errno(r, "%s: cannot decode the secret of token %d: %m", device, id);
                        goto finish;
                }
                r = tpm2_seal(tpm, &sp, secret, secret_size, &nt);
                if (r < 0) {
                        log_error_errno(r, "%s: sealing to the prediction failed: %s", device, tpm2_strerror(r));
                        goto finish;
                }
        }
        nt->keyslot = base->keyslot;
        nt->generation = gen;
        nt->has_proof = base->has_proof;
        memcpy(nt->proof, base->proof, sizeof(nt->proof));
        nt->predicted = predict_sources_mask(s);
        r = tpm2_token_format(nt, &json);
        if (r < 0) {
                log_error_errno(r, "%s: cannot format the token: %m", device);
                goto finish;
        }
        crash_point("preseal-sealed");
        r = luks_token_add(cd, json);
        if (r < 0) {
                log_error_errno(r, "%s: cannot write the predicted token: %s", device, luks_strerror(r));
                goto finish;
        }
        crash_point("preseal-written");
        log_info("%s: sealed keyslot %d to the next boot's PCR %s (new %s) as token %d, beside token %d.", device,
                 base->keyslot, pcrs, what, r, id);
        r = 0;
finish:
        free(p);
        return r;
}

int preseal_devices(char **devices, size_t n, Tpm2Context *tpm, const EventLog *log, const PredictSources *s) {
        int ret = 0;

        for (size_t i = 0; i < n; i++) {
                int r = preseal_device(devices[i], tpm, log, s);

                if (r < 0 && (ret == 0 || r == -ESTALE))
                        ret = r;
        }
        return ret;
}

/* The "retire" list of one state.json volume, applied. */
static int retire_volume(json_object *vol) {
        _cleanup_luks_ struct crypt_device *cd = NULL;
        json_object *j, *list;
        const char *device, *method;
        int opener, keyslot, n = 0, r;

        if (!json_object_object_get_ex(vol, "retire", &list) || !json_object_is_type(list, json_type_array))
                return 0;
        if (!json_object_object_get_ex(vol, "device", &j) || !json_object_is_type(j, json_type_string))
                return 0;
        device = json_object_get_string(j);
        if (!json_object_object_get_ex(vol, "method", &j) || !json_object_is_type(j, json_type_string))
                return 0;
        method = json_object_get_string(j);
        if (!streq(method, "tpm2") || !json_object_object_get_ex(vol, "token", &j) ||
            !json_object_is_type(j, json_type_int))
                return 0;
        opener = json_object_get_int(j);
        if (!json_object_object_get_ex(vol, "keyslot", &j) || !json_object_is_type(j, json_type_int))
                return 0;
        keyslot = json_object_get_int(j);

        r = luks_open(device, &cd);
        if (r < 0)
                return log_warning_errno(r, "Cannot read the LUKS2 header of %s to retire old tokens: %m", device);
        /* The token that opened this boot stays, and must still be there. */
        {
                int ks;
                const char *json;

                if (opener < 0 || opener >= LUKS2_TOKENS_MAX ||
                    luks_token_get(cd, opener, TOKEN_TYPE_TPM2, &json, &ks) < 0 || ks != keyslot) {
                        log_notice("%s: the token that opened this boot (%d) changed since; no token retired.",
                                   device, opener);
                        return 0;
                }
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *e = json_object_array_get_idx(list, i), *t, *h;
                uint8_t digest[32];
                unsigned dlen;
                _cleanup_free_ char *hex = NULL;
                const char *json;
                int id, ks;

                if (!json_object_object_get_ex(e, "token", &t) || !json_object_is_type(t, json_type_int) ||
                    !json_object_object_get_ex(e, "json-sha256", &h) || !json_object_is_type(h, json_type_string))
                        continue;
                id = json_object_get_int(t);
                if (id < 0 || id >= LUKS2_TOKENS_MAX || id == opener ||
                    luks_token_get(cd, id, TOKEN_TYPE_TPM2, &json, &ks) < 0 || ks != keyslot)
                        continue;
                if (EVP_Digest(json, strlen(json), digest, &dlen, EVP_sha256(), NULL) != 1 ||
                    hex_encode(digest, sizeof(digest), &hex) < 0)
                        return log_oom();
                if (!streq(hex, json_object_get_string(h))) {
                        log_notice("%s: token %d changed since boot; kept.", device, id);
                        continue;
                }
                r = luks_token_remove(cd, id);
                if (r < 0) {
                        log_warning_errno(r, "%s: cannot remove token %d: %s", device, id, luks_strerror(r));
                        continue;
                }
                log_info("%s: retired TPM2 token %d of keyslot %d: token %d opened this boot in its place.", device,
                         id, keyslot, opener);
                n++;
                crash_point("retire-removed");
        }
        return n;
}

int preseal_retire(const char *state_dir) {
        _cleanup_free_ char *dir = NULL;
        DIR *d;
        struct dirent *de;
        int n = 0;

        if (asprintf(&dir, "%s/retire", state_dir) < 0)
                return log_oom();
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : log_warning_errno(errno, "Cannot open %s: %m", dir);
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *text = NULL;
                json_object *vol;
                int r;

                if (!endswith(de->d_name, ".json"))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                        closedir(d);
                        return log_oom();
                }
                r = read_file_regular(path, 256 * 1024, &text, NULL);
                if (r < 0) {
                        log_warning_errno(r, "Skipping %s: %m", path);
                        continue;
                }
                vol = json_parse_strict(text, 256 * 1024);
                if (vol) {
                        r = retire_volume(vol);
                        if (r > 0)
                                n += r;
                        json_object_put(vol);
                }
                /* Once: what this boot opened does not change. */
                if (unlink(path) < 0)
                        log_warning_errno(errno, "Cannot remove %s: %m", path);
        }
        closedir(d);
        return n;
}
