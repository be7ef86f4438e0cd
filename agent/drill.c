/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drill.h"
#include "log.h"
#include "strutil.h"
#include "token.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static const char *const drill_result_names[_DRILL_RESULT_MAX] = {
        [DRILL_RECOVERY_KEY] = "recovery-key",
        [DRILL_PASSPHRASE] = "passphrase",
        [DRILL_NOT_PASSED] = "not-passed",
};

const char *drill_result_to_string(DrillResult r) {
        return r >= 0 && r < _DRILL_RESULT_MAX ? drill_result_names[r] : NULL;
}

uint64_t drill_now(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || ts.tv_sec < 0)
                return 0;
        return (uint64_t) ts.tv_sec;
}

static int drill_result_from_string(const char *s, DrillResult *ret) {
        for (int i = 0; i < _DRILL_RESULT_MAX; i++)
                if (streq(s, drill_result_names[i])) {
                        *ret = (DrillResult) i;
                        return 0;
                }
        return -EBADMSG;
}

int drill_pending(struct crypt_device *cd) {
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++)
                if (luks_token_get(cd, i, TOKEN_TYPE_DRILL, NULL, NULL) >= 0)
                        return 1;
        return 0;
}

/* A token of unlockd's drill types, as compact JSON. */
static int drill_token_add(struct crypt_device *cd, const char *type, uint64_t when, const char *result) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *s;
        int r;

        if (!o)
                return -ENOMEM;
        if (json_object_object_add(o, "type", json_object_new_string(type)) < 0 ||
            json_object_object_add(o, "keyslots", json_object_new_array()) < 0 ||
            json_object_object_add(o, result ? "unlockd-time" : "unlockd-requested",
                                   json_object_new_int64((int64_t) MIN(when, DRILL_TIME_MAX))) < 0 ||
            (result && json_object_object_add(o, "unlockd-result", json_object_new_string(result)) < 0))
                return -ENOMEM;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (!s)
                return -ENOMEM;
        r = luks_token_add(cd, s);
        return r < 0 ? r : 0;
}

int drill_request(struct crypt_device *cd) {
        int r;

        if (drill_pending(cd) > 0)
                return 0;
        r = drill_token_add(cd, TOKEN_TYPE_DRILL, drill_now(), NULL);
        return r < 0 ? r : 1;
}

/* Removes every token of type; returns how many, or the first error. */
static int remove_tokens(struct crypt_device *cd, const char *type, int keep) {
        int n = 0, ret = 0;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                int r;

                if (i == keep || luks_token_get(cd, i, type, NULL, NULL) < 0)
                        continue;
                r = luks_token_remove(cd, i);
                if (r < 0) {
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                n++;
        }
        return ret < 0 ? ret : n;
}

int drill_cancel(struct crypt_device *cd) {
        return remove_tokens(cd, TOKEN_TYPE_DRILL, -1);
}

/* Parses a drill record strictly: its type, a time in range, a known
 * result. Any other field is ignored. */
static int drill_record_parse(const char *json, DrillRecord *ret) {
        _cleanup_(json_object_putp) json_object *o = json_parse_strict(json, TOKEN_JSON_MAX);
        json_object *t, *w, *res;
        int64_t when;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (!json_object_object_get_ex(o, "type", &t) || !json_object_is_type(t, json_type_string) ||
            !streq(json_object_get_string(t), TOKEN_TYPE_DRILL_RESULT))
                return -EMEDIUMTYPE;
        if (!json_object_object_get_ex(o, "unlockd-time", &w) || !json_object_is_type(w, json_type_int))
                return -EBADMSG;
        errno = 0;
        when = json_object_get_int64(w);
        if (errno != 0 || when < 0 || (uint64_t) when > DRILL_TIME_MAX)
                return -EBADMSG;
        if (!json_object_object_get_ex(o, "unlockd-result", &res) || !json_object_is_type(res, json_type_string) ||
            drill_result_from_string(json_object_get_string(res), &ret->result) < 0)
                return -EBADMSG;
        ret->time = (uint64_t) when;
        return 0;
}

int drill_record(struct crypt_device *cd, DrillResult result, uint64_t when) {
        const char *name = drill_result_to_string(result);
        int r, id = -1;

        if (!name)
                return -EINVAL;
        r = drill_token_add(cd, TOKEN_TYPE_DRILL_RESULT, when, name);
        if (r < 0)
                return r;
        /* The new one is the token whose time and result are ours and that
         * is the last such: keep it, drop the others. */
        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                const char *json;
                DrillRecord d;

                if (luks_token_get(cd, i, TOKEN_TYPE_DRILL_RESULT, &json, NULL) >= 0 &&
                    drill_record_parse(json, &d) >= 0 && d.time == MIN(when, DRILL_TIME_MAX) && d.result == result)
                        id = i;
        }
        r = remove_tokens(cd, TOKEN_TYPE_DRILL_RESULT, id);
        if (r < 0)
                log_debug_errno(r, "Cannot remove an older drill record: %m");
        return 0;
}

int drill_last(struct crypt_device *cd, DrillRecord *ret) {
        bool found = false;

        for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
                const char *json;
                DrillRecord d;

                if (luks_token_get(cd, i, TOKEN_TYPE_DRILL_RESULT, &json, NULL) < 0 ||
                    drill_record_parse(json, &d) < 0)
                        continue;
                if (!found || d.time > ret->time)
                        *ret = d;
                found = true;
        }
        return found ? 0 : -ENOENT;
}

int drill_arm_devices(char *const *devices, size_t n, bool cancel) {
        int ret = 0;

        for (size_t i = 0; i < n; i++) {
                _cleanup_luks_ struct crypt_device *cd = NULL;
                bool has_tpm2 = false;
                int r;

                r = luks_open(devices[i], &cd);
                if (r < 0) {
                        log_error_errno(r, "Cannot read the LUKS2 header of %s: %m", devices[i]);
                        ret = ret ?: r;
                        continue;
                }
                if (cancel) {
                        r = drill_cancel(cd);
                        if (r < 0) {
                                log_error_errno(r, "Cannot remove the drill of %s: %s", devices[i], luks_strerror(r));
                                ret = ret ?: r;
                        } else if (r == 0)
                                log_info("No recovery drill was pending for %s.", devices[i]);
                        else
                                log_info("Cancelled the recovery drill of %s: the next boot unlocks by TPM as usual.",
                                         devices[i]);
                        continue;
                }
                for (int t = 0; t < LUKS2_TOKENS_MAX && !has_tpm2; t++)
                        has_tpm2 = luks_token_get(cd, t, TOKEN_TYPE_TPM2, NULL, NULL) >= 0;
                if (!has_tpm2) {
                        log_error("%s has no TPM2 token: every boot asks for the recovery key or a passphrase "
                                  "already, there is nothing to drill.", devices[i]);
                        ret = ret ?: -ENOENT;
                        continue;
                }
                r = drill_request(cd);
                if (r < 0) {
                        log_error_errno(r, "Cannot set up the drill of %s: %s", devices[i], luks_strerror(r));
                        ret = ret ?: r;
                } else
                        log_info("%s: %s the next boot does not ask the TPM and asks for the recovery key or a "
                                 "passphrase instead, once (cancel with 'unlockctl drill --cancel').",
                                 devices[i], r > 0 ? "recovery drill set up:" : "a recovery drill is pending already:");
        }
        return ret;
}
