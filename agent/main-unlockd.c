/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "luks.h"
#include "prompt.h"
#include "secret.h"
#include "unlock.h"

static bool arg_test = false;
static bool arg_prompt = true;
static bool arg_json = false;
static const char *arg_tcti = NULL;
static const char *arg_name = NULL;
static char **arg_devices = NULL;
static size_t arg_n_devices = 0;

static void help(void) {
        printf("%s [OPTIONS...] DEVICE...\n\n"
               "Unlock LUKS2 volumes with their TPM2 tokens, falling back to a recovery key.\n\n"
               "  -h --help             Show this help\n"
               "     --version          Show the version\n"
               "     --test             Verify only: recover the volume key, do not activate\n"
               "     --no-prompt        Never ask for a PIN, recovery key or passphrase\n"
               "     --tcti=STRING      TPM2 TCTI (default: device:/dev/tpmrm0)\n"
               "     --name=NAME        Device-mapper name (one DEVICE only; default luks-UUID)\n"
               "     --json             Print the outcome as JSON on standard output\n"
               "     --log-level=LEVEL  debug, info, notice, warning, err\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_TEST, ARG_NO_PROMPT, ARG_TCTI, ARG_NAME, ARG_JSON, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "test", no_argument, NULL, ARG_TEST },
                { "no-prompt", no_argument, NULL, ARG_NO_PROMPT },
                { "tcti", required_argument, NULL, ARG_TCTI },
                { "name", required_argument, NULL, ARG_NAME },
                { "json", no_argument, NULL, ARG_JSON },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("unlockd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_TEST:
                        arg_test = true;
                        break;
                case ARG_NO_PROMPT:
                        arg_prompt = false;
                        break;
                case ARG_TCTI:
                        arg_tcti = optarg;
                        break;
                case ARG_NAME:
                        arg_name = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_level_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid log level: %s", optarg);
                        log_set_max_level(r);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        arg_devices = argv + optind;
        arg_n_devices = (size_t) (argc - optind);
        if (arg_n_devices == 0)
                return log_error_errno(EINVAL, "No device given.");
        if (arg_name && arg_n_devices > 1)
                return log_error_errno(EINVAL, "--name= takes exactly one device.");
        return 1;
}

/* Asks for a recovery key or passphrase until one opens the volume. */
static int prompt_volume(Unlocker *u, struct crypt_device *cd, Volume *v) {
        _cleanup_free_ char *why = volume_failure_summary(v);
        _cleanup_free_ char *msg = NULL;
        int r;

        if (asprintf(&msg, "The TPM did not unlock %s: %s.\nA re-seal will be queued after unlock.",
                     v->device, why ?: "unknown reason") < 0)
                return log_oom();

        for (;;) {
                _cleanup_secret_ char *input = NULL;

                r = prompt_ask_tty(msg, "Recovery key or passphrase", &input);
                if (r == -ECANCELED)
                        continue;
                if (r < 0)
                        return log_error_errno(r, "Cannot ask for a recovery key for %s: %m", v->device);
                if (isempty_secret(input))
                        continue;
                r = unlock_volume_with_input(u, cd, v, input);
                if (r == 0)
                        return 0;
                if (r != -EPERM)
                        return log_error_errno(r, "Failed to unlock %s: %m", v->device);
                free(msg);
                if (asprintf(&msg, "That key did not open %s. Try again.", v->device) < 0)
                        return log_oom();
        }
}

static int unlock_one(Unlocker *u, const char *path, Volume *v) {
        _cleanup_luks_ struct crypt_device *cd = NULL;
        int r;

        *v = (Volume) { .token = -1, .keyslot = -1 };
        v->device = strdup(path);
        if (!v->device)
                return log_oom();

        r = luks_open(path, &cd);
        if (r < 0)
                return log_error_errno(r, "Cannot read the LUKS2 header of %s: %m", path);

        v->uuid = strdup(luks_uuid(cd) ?: "");
        if (arg_name)
                v->name = strdup(arg_name);
        else if (asprintf(&v->name, "luks-%s", v->uuid) < 0)
                v->name = NULL;
        if (!v->uuid || !v->name)
                return log_oom();

        if (!arg_test && crypt_status(NULL, v->name) == CRYPT_ACTIVE) {
                v->opened = true;
                v->method = UNLOCK_METHOD_ALREADY_ACTIVE;
                log_info("%s is already active as %s.", path, v->name);
                return 0;
        }

        r = unlock_volume_tpm2(u, cd, v);
        if (r == 0) {
                log_info("%s %s with TPM2 token %d (keyslot %d).", path,
                         arg_test ? "verified" : "unlocked", v->token, v->keyslot);
                return 0;
        }

        for (size_t i = 0; i < v->n_outcomes; i++)
                log_notice("%s: TPM2 token %d: %s.", path, v->outcomes[i].token, v->outcomes[i].detail ?: "failed");
        if (v->n_outcomes == 0)
                log_notice("%s has no TPM2 token.", path);

        if (!arg_prompt)
                return log_error_errno(ENOKEY, "The TPM did not unlock %s and prompting is off.", path);

        r = prompt_volume(u, cd, v);
        if (r < 0)
                return r;
        log_info("%s %s with a %s (keyslot %d).", path, arg_test ? "verified" : "unlocked",
                 v->method == UNLOCK_METHOD_RECOVERY_KEY ? "recovery key" : "passphrase", v->keyslot);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_free_ Volume *volumes = NULL;
        Unlocker u = {};
        json_object *all = NULL;
        int ret = 0, r;

        log_set_prefix("unlockd");
        secret_harden_process();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        u.opts = (UnlockOptions) { .tcti = arg_tcti, .test = arg_test, .prompt = arg_prompt };

        volumes = calloc(arg_n_devices, sizeof(Volume));
        if (!volumes)
                return log_oom();

        for (size_t i = 0; i < arg_n_devices; i++) {
                r = unlock_one(&u, arg_devices[i], &volumes[i]);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        unlocker_done(&u);

        if (arg_json) {
                json_object *arr = json_object_new_array();

                all = json_object_new_object();
                for (size_t i = 0; i < arg_n_devices; i++)
                        json_object_array_add(arr, volume_to_json(&volumes[i]));
                json_object_object_add(all, "volumes", arr);
                printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN));
                json_object_put(all);
        }
        for (size_t i = 0; i < arg_n_devices; i++)
                volume_done(&volumes[i]);
        return ret;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
