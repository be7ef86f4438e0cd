/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "strutil.h"
#include "luks.h"
#include "modload.h"
#include "notify.h"
#include "prompt.h"
#include "reseal.h"
#include "secret.h"
#include "unlock.h"
#include "volumes.h"

/* Exit statuses (documented in unlockd(8) and the README). */
#define EXIT_PROMPT_TIMEOUT 2
#define EXIT_PROMPT_TRIES   3
#define EXIT_NO_CONSOLE     4

static bool arg_test = false;
static bool arg_prompt = true;
static bool arg_json = false;
static bool arg_reseal = true;
static const char *arg_tcti = NULL;
static const char *arg_name = NULL;
static const char *arg_state_dir = UNLOCKD_STATE_DIR;
static char **arg_consoles = NULL;
static size_t arg_n_consoles = 0;
static int arg_ask_password = -1;
static uint64_t arg_timeout_usec = 0;
static unsigned arg_watchdog_sec = 0;
static unsigned arg_tries = 0;
static char **arg_devices = NULL;
static size_t arg_n_devices = 0;
static char *arg_pin = NULL;            /* from $PIN, taken out of the environment */

static void help(void) {
        printf("%s [OPTIONS...] [DEVICE...]\n\n"
               "Unlock LUKS2 volumes with their TPM2 tokens; when the TPM refuses, ask for the\n"
               "recovery key or a passphrase on every console, and queue a re-seal.\n"
               "Without DEVICE: the volumes of /etc/crypttab and the kernel command line.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --test              Verify only: recover the volume key, do not activate\n"
               "     --no-prompt         Never ask for a PIN, recovery key or passphrase\n"
               "     --no-reseal         Do not queue a re-seal job after a manual unlock\n"
               "     --tcti=STRING       TPM2 TCTI (default: device:/dev/tpmrm0)\n"
               "     --name=NAME         Device-mapper name (one DEVICE only; default luks-UUID)\n"
               "     --state-dir=DIR     Where state.json and re-seal jobs go (default %s)\n"
               "     --console=PATH[,…]  Ask on these terminals (default: every active console)\n"
               "     --ask-password=BOOL Ask through systemd's ask-password agents (default: when systemd runs)\n"
               "     --timeout=SEC       Give up asking after SEC seconds (default: wait forever)\n"
               "     --tries=N           Give up after N wrong answers (default: unlimited)\n"
               "     --watchdog=SEC      Die (SIGALRM) after SEC seconds without a sign of life, for\n"
               "                         initrds without a service manager; more than 20 when it may\n"
               "                         ask (the prompt gives one every 20 s) (default: off)\n"
               "     --json              Print the outcome as JSON on standard output\n"
               "     --log-level=LEVEL   debug, info, notice, warning, err\n",
               program_invocation_short_name, UNLOCKD_STATE_DIR);
}

static int add_consoles(const char *list) {
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;

        if (!copy)
                return log_oom();
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                char **n = realloc(arg_consoles, (arg_n_consoles + 2) * sizeof(char *));
                if (!n)
                        return log_oom();
                arg_consoles = n;
                arg_consoles[arg_n_consoles] = strdup(w);
                if (!arg_consoles[arg_n_consoles])
                        return log_oom();
                arg_consoles[++arg_n_consoles] = NULL;
        }
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100, ARG_TEST, ARG_NO_PROMPT, ARG_NO_RESEAL, ARG_TCTI, ARG_NAME, ARG_STATE_DIR,
                ARG_CONSOLE, ARG_ASK_PASSWORD, ARG_TIMEOUT, ARG_TRIES, ARG_WATCHDOG, ARG_JSON, ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "test", no_argument, NULL, ARG_TEST },
                { "no-prompt", no_argument, NULL, ARG_NO_PROMPT },
                { "no-reseal", no_argument, NULL, ARG_NO_RESEAL },
                { "tcti", required_argument, NULL, ARG_TCTI },
                { "name", required_argument, NULL, ARG_NAME },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "console", required_argument, NULL, ARG_CONSOLE },
                { "ask-password", required_argument, NULL, ARG_ASK_PASSWORD },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "tries", required_argument, NULL, ARG_TRIES },
                { "watchdog", required_argument, NULL, ARG_WATCHDOG },
                { "json", no_argument, NULL, ARG_JSON },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        char *end;
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
                case ARG_NO_RESEAL:
                        arg_reseal = false;
                        break;
                case ARG_TCTI:
                        arg_tcti = optarg;
                        break;
                case ARG_NAME:
                        arg_name = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_CONSOLE:
                        r = add_consoles(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_ASK_PASSWORD:
                        arg_ask_password = parse_boolean(optarg);
                        if (arg_ask_password < 0)
                                return log_error_errno(EINVAL, "Invalid --ask-password= value: %s", optarg);
                        break;
                case ARG_TIMEOUT: {
                        double d;
                        errno = 0;
                        d = strtod(optarg, &end);
                        if (errno || *end || end == optarg || d < 0 || d > 1e9)
                                return log_error_errno(EINVAL, "Invalid --timeout= value: %s", optarg);
                        arg_timeout_usec = (uint64_t) (d * 1e6);
                        break;
                }
                case ARG_TRIES:
                        if (parse_unsigned(optarg, 1000000, &arg_tries) < 0)
                                return log_error_errno(EINVAL, "Invalid --tries= value: %s", optarg);
                        break;
                case ARG_WATCHDOG:
                        if (parse_unsigned(optarg, 86400, &arg_watchdog_sec) < 0)
                                return log_error_errno(EINVAL, "Invalid --watchdog= value: %s", optarg);
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_string(optarg);
                        if (r < 0)
                                return r;
                        break;
                default:
                        return -EINVAL;
                }

        arg_devices = argv + optind;
        arg_n_devices = (size_t) (argc - optind);
        if (arg_name && arg_n_devices != 1)
                return log_error_errno(EINVAL, "--name= takes exactly one device.");
        return 1;
}

/* Under systemd, start-up is bounded (TimeoutStartSec=); while unlockd is
 * alive and working or waiting for the admin it extends the bound, so only
 * a hung unlockd runs into it. Where no service manager bounds it (an
 * initramfs-tools initrd), --watchdog= does the same with alarm(): SIGALRM,
 * which is not handled, kills an unlockd that stopped giving signs of life,
 * and the initrd's own prompt takes over. The prompt gives one at least
 * every PROMPT_ALIVE_USEC, the wait for a device every WAIT_ALIVE_USEC. */
static void notify_alive(void *userdata) {
        (void) notify("EXTEND_TIMEOUT_USEC=60000000");
        if (arg_watchdog_sec > 0)
                (void) alarm(arg_watchdog_sec);
}

static int write_state(const Volume *volumes, size_t n) {
        _cleanup_free_ char *path = NULL;
        json_object *o = volumes_to_json(volumes, n);
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "time", json_object_new_int64((int64_t) time(NULL)));

        r = mkdir_p(arg_state_dir, 0755);
        if (r >= 0 && asprintf(&path, "%s/state.json", arg_state_dir) < 0)
                r = -ENOMEM;
        if (r >= 0) {
                const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
                r = write_file_atomic(path, s, strlen(s), 0644);
        }
        json_object_put(o);
        if (r < 0)
                return r;

        /* The tokens the booted system retires (preseal.h), one file a
         * volume. Not for a check by hand (--test), which is no boot: the
         * predictions it did not use are still for the next one. */
        if (arg_test && !secure_getenv("UNLOCKD_TEST_RETIRE"))
                return 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dir = NULL, *file = NULL;
                json_object *v;
                const char *s;

                if (volumes[i].n_retire == 0 || !volumes[i].uuid)
                        continue;
                if (asprintf(&dir, "%s/retire", arg_state_dir) < 0 ||
                    asprintf(&file, "%s/%s.json", dir, volumes[i].uuid) < 0)
                        return -ENOMEM;
                r = mkdir_p(dir, 0700);
                if (r < 0)
                        return r;
                v = volume_to_json(&volumes[i]);
                if (!v)
                        return -ENOMEM;
                s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                r = write_file_atomic(file, s, strlen(s), 0600);
                json_object_put(v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int exit_status(int r) {
        switch (r) {
        case 0:
                return EXIT_SUCCESS;
        case -ETIME:
                return EXIT_PROMPT_TIMEOUT;
        case -EDQUOT:
                return EXIT_PROMPT_TRIES;
        case -ENXIO:
        case -EPIPE:
                return EXIT_NO_CONSOLE;
        }
        return EXIT_FAILURE;
}

static int run(int argc, char *argv[]) {
        _cleanup_free_ Volume *volumes = NULL;
        VolumeSpec *specs = NULL;
        size_t n_specs = 0;
        Unlocker u = {};
        int ret = 0, r;

        log_set_prefix("unlockd");
        secret_harden_process();
        /* As systemd-cryptsetup, the PIN may come in $PIN; keep it in a
         * secret buffer only, not in the environment for the process's life. */
        if (secret_getenv_erase("PIN", &arg_pin) < 0)
                return log_oom();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        luks_setup();
        tpm2_setup();

        if (!kernel_cmdline_bool("rd.unlockd.reseal", true))
                arg_reseal = false;

        /* In the initrd: the TPM drivers and dm-crypt may be modules. The
         * TPM driver probes while it is inserted, so its device node exists
         * when the insert returns; a short bounded wait covers devtmpfs. */
        if (!arg_test && access("/etc/initrd-release", F_OK) == 0) {
                (void) modload_boot_modules();
                if (!arg_tcti && access("/sys/class/tpm/tpm0", F_OK) == 0)
                        (void) wait_for_path("/dev/tpmrm0", 2 * 1000000, NULL);
        }

        notify_alive(NULL);
        r = volumes_collect(arg_devices, arg_n_devices, arg_name, notify_alive, &specs, &n_specs);
        if (r < 0)
                return log_error_errno(r, "Cannot find the volumes to unlock: %m");
        if (n_specs == 0) {
                log_info("No volumes to unlock.");
                return 0;
        }

        u.opts = (UnlockOptions) {
                .tcti = arg_tcti,
                .test = arg_test,
                .prompt = arg_prompt,
                .pin = arg_pin,
                .consoles = arg_consoles,
                .ask_password = arg_ask_password,
                .alive = notify_alive,
                .timeout_usec = arg_timeout_usec,
                .tries = arg_tries,
                .reseal = arg_reseal,
                .state_dir = arg_state_dir,
        };

        volumes = calloc(n_specs, sizeof(Volume));
        if (!volumes) {
                volume_specs_free(specs, n_specs);
                return log_oom();
        }
        for (size_t i = 0; i < n_specs; i++) {
                notify_alive(NULL);
                r = unlock_volume(&u, specs[i].device, specs[i].name, specs[i].reseal, &volumes[i]);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        unlocker_done(&u);
        volume_specs_free(specs, n_specs);

        r = write_state(volumes, n_specs);
        if (r < 0)
                log_warning_errno(r, "Failed to write %s/state.json: %m", arg_state_dir);

        if (arg_json) {
                json_object *all = volumes_to_json(volumes, n_specs);
                if (all)
                        printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(all);
        }
        for (size_t i = 0; i < n_specs; i++)
                volume_done(&volumes[i]);
        return ret;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        (void) alarm(0);
        for (size_t i = 0; i < arg_n_consoles; i++)
                free(arg_consoles[i]);
        free(arg_consoles);
        secret_free(arg_pin);
        return r < 0 ? exit_status(r) : EXIT_SUCCESS;
}
