/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <systemd/sd-bus.h>

#include "blockdev.h"
#include "config.h"
#include "drill.h"
#include "encoding.h"
#include "enroll.h"
#include "tpm2-offline.h"
#include "fileio.h"
#include "log.h"
#include "luks.h"
#include "notify.h"
#include "pcr.h"
#include "pe.h"
#include "preseal.h"
#include "prompt.h"
#include "reseal.h"
#include "secret.h"
#include "secureboot.h"
#include "status.h"
#include "strutil.h"
#include "token.h"

#define KEY_FILE_MAX (8 * 1024 * 1024)

static const char *arg_unlock_key_file = NULL;
static const char *arg_wipe = NULL;
static bool arg_pin = false;
static bool arg_json = false;
static bool arg_via_service = false;
static bool arg_dismiss = false;
static bool arg_cancel = false;
static const char *arg_state_dir = UNLOCKD_STATE_DIR;
static bool arg_predict = false;
static bool arg_pcrs_given = false;
static const char *arg_event_log = NULL;
static const char *arg_secure_boot_vars = NULL;
/* --failed-boot-options=: boot options the firmware tries before the disk (PCR 4). */
static unsigned arg_failed_boot_options = 0;
/* Every --boot-loader=, in order: with --secure-boot-vars=, the boot chain. */
static const char *arg_boot_chain[SECUREBOOT_IMAGES_MAX];
static size_t arg_n_boot_chain = 0;
static char *arg_cmdline = NULL;
static PredictSources arg_sources = {};
static EnrollOptions arg_enroll = { .pcr_mask = 1u << 7, .use_srk = true };
/* $PASSWORD and $NEWPIN, taken out of the environment at start-up. */
static char *arg_password = NULL;
static char *arg_newpin = NULL;
/* --pcrs= values (7:sha256=HEX), for --tpm2-device-key=. */
static uint8_t *arg_pcr_values = NULL;
static bool arg_pcr_all_values = false;

static void help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Manage unlockd's TPM2 enrollment of LUKS2 volumes.\n\n"
               "Commands:\n"
               "  enroll DEVICE          Enroll a TPM2 token and/or a recovery key\n"
               "  reseal [DEVICE...]     Run the pending re-seal jobs (of these volumes)\n"
               "  status [DEVICE...]     How volumes were opened this boot, their tokens, jobs\n"
               "  drill [DEVICE...]      Next boot: skip the TPM once, ask for the recovery key\n"
               "  predict                The next boot's PCR values with new components\n\n"
               "Options:\n"
               "  -h --help                 Show this help\n"
               "     --version              Show the version\n"
               "     --tpm2                 Enroll a TPM2 token\n"
               "     --pcrs=LIST            PCRs to seal to, e.g. 0+7 (default 7; \"\" for none)\n"
               "     --pcr-bank=BANK        sha1, sha256, sha384 or sha512 (default: sha256 if allocated)\n"
               "     --pin                  Protect the TPM2 token with a PIN ($NEWPIN or asked)\n"
               "     --no-srk               Do not seal under the persistent SRK 0x81000001 even if present\n"
               "     --tpm2-device-key=SRK.pub\n"
               "                            Seal offline to this SRK (TPM2B_PUBLIC) without a TPM;\n"
               "                            --pcrs= then gives values: 7:sha256=HEX[+4:sha256=HEX]\n"
               "     --secure-boot-vars=FILE\n"
               "                            enroll --tpm2-device-key=, predict: PCR 7 from this variable\n"
               "                            store (OVMF VARS .fd or uefi-config.json) and the chain\n"
               "                            of --boot-loader= (and --kernel=), offline; with\n"
               "                            --pcrs=4+7 PCR 4 as well (--pcrs=4: PCR 4 alone)\n"
               "     --failed-boot-options=N\n"
               "                            with --secure-boot-vars=, PCR 4: the firmware tries N boot\n"
               "                            options before the disk (QEMU's empty DVD drive: 1; default 0)\n"
               "     --recovery-key         Enroll a recovery key and print it once\n"
               "     --escrow-pubkey=PEM    Print the recovery key only RSA-OAEP-SHA256 encrypted to PEM\n"
               "     --unlock-key-file=FILE Existing passphrase (else $PASSWORD, else asked)\n"
               "     --wipe-slot=LIST       After enrolling, remove keyslots: numbers, password,\n"
               "                            recovery, tpm2, all (comma-separated)\n"
               "     --force                Allow leaving no passphrase or recovery keyslot\n"
               "     --tcti=STRING          TPM2 TCTI (default: device:/dev/tpmrm0)\n"
               "     --state-dir=DIR        unlockd's state directory (default " UNLOCKD_STATE_DIR ")\n"
               "     --via-service          reseal: start unlockd-reseal.service and wait for it\n"
               "     --dismiss              reseal: drop the pending jobs instead, keep the old TPM2 tokens\n"
               "     --cancel               drill: remove the pending drill instead\n"
               "     --json                 status, predict: print JSON\n"
               "     --predict              reseal: seal to the next boot's predicted PCRs\n"
               "     --kernel=FILE          predict: the new kernel (EFI binary)\n"
               "     --initrd=FILE          predict: the new initrd\n"
               "     --cmdline=STRING       predict: the new kernel command line\n"
               "     --cmdline-file=FILE    predict: the new kernel command line, from FILE\n"
               "     --boot-loader=FILE     predict: the new boot loader (EFI binary); with\n"
               "                            --secure-boot-vars=, once per image in load order\n"
               "     --event-log=FILE       predict: this saved event log, offline (no TPM)\n"
               "     --log-level=LEVEL      debug, info, notice, warning, err\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100, ARG_TPM2, ARG_PCRS, ARG_PCR_BANK, ARG_PIN, ARG_NO_SRK, ARG_RECOVERY_KEY,
                ARG_ESCROW, ARG_UNLOCK_KEY_FILE, ARG_WIPE, ARG_FORCE, ARG_TCTI, ARG_LOG_LEVEL,
                ARG_STATE_DIR, ARG_VIA_SERVICE, ARG_DISMISS, ARG_CANCEL, ARG_JSON,
                ARG_PREDICT, ARG_KERNEL, ARG_INITRD, ARG_CMDLINE, ARG_CMDLINE_FILE, ARG_BOOT_LOADER, ARG_EVENT_LOG,
                ARG_SECURE_BOOT_VARS, ARG_FAILED_BOOT_OPTIONS,
                ARG_DEVICE_KEY,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "tpm2", no_argument, NULL, ARG_TPM2 },
                { "pcrs", required_argument, NULL, ARG_PCRS },
                { "tpm2-pcrs", required_argument, NULL, ARG_PCRS },
                { "pcr-bank", required_argument, NULL, ARG_PCR_BANK },
                { "pin", no_argument, NULL, ARG_PIN },
                { "no-srk", no_argument, NULL, ARG_NO_SRK },
                { "tpm2-device-key", required_argument, NULL, ARG_DEVICE_KEY },
                { "recovery-key", no_argument, NULL, ARG_RECOVERY_KEY },
                { "escrow-pubkey", required_argument, NULL, ARG_ESCROW },
                { "unlock-key-file", required_argument, NULL, ARG_UNLOCK_KEY_FILE },
                { "wipe-slot", required_argument, NULL, ARG_WIPE },
                { "force", no_argument, NULL, ARG_FORCE },
                { "tcti", required_argument, NULL, ARG_TCTI },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "via-service", no_argument, NULL, ARG_VIA_SERVICE },
                { "dismiss", no_argument, NULL, ARG_DISMISS },
                { "cancel", no_argument, NULL, ARG_CANCEL },
                { "json", no_argument, NULL, ARG_JSON },
                { "predict", no_argument, NULL, ARG_PREDICT },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "initrd", required_argument, NULL, ARG_INITRD },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "cmdline-file", required_argument, NULL, ARG_CMDLINE_FILE },
                { "boot-loader", required_argument, NULL, ARG_BOOT_LOADER },
                { "event-log", required_argument, NULL, ARG_EVENT_LOG },
                { "secure-boot-vars", required_argument, NULL, ARG_SECURE_BOOT_VARS },
                { "failed-boot-options", required_argument, NULL, ARG_FAILED_BOOT_OPTIONS },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("unlockctl %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_TPM2:
                        arg_enroll.tpm2 = true;
                        break;
                case ARG_PCRS: {
                        _cleanup_free_ char *error = NULL;
                        uint16_t bank;

                        arg_pcr_values = mfree(arg_pcr_values);
                        r = pcr_values_from_string(optarg, &arg_enroll.pcr_mask, &bank, &arg_pcr_values,
                                                   &arg_enroll.pcr_values_size, &arg_pcr_all_values, &error);
                        if (r == -ENOMEM)
                                return log_oom();
                        if (r < 0)
                                return log_error_errno(r, "Invalid PCR list %s: %s.", optarg, error ?: "malformed");
                        arg_enroll.pcr_values = arg_pcr_values;
                        if (bank != 0)
                                arg_enroll.pcr_bank = bank;
                        arg_pcrs_given = true;
                        break;
                }
                case ARG_DEVICE_KEY:
                        arg_enroll.device_key = optarg;
                        arg_enroll.tpm2 = true;
                        break;
                case ARG_PCR_BANK:
                        r = pcr_bank_from_string(optarg, &arg_enroll.pcr_bank);
                        if (r < 0)
                                return log_error_errno(r, "Unknown PCR bank: %s", optarg);
                        break;
                case ARG_PIN:
                        arg_pin = true;
                        break;
                case ARG_NO_SRK:
                        arg_enroll.use_srk = false;
                        break;
                case ARG_RECOVERY_KEY:
                        arg_enroll.recovery_key = true;
                        break;
                case ARG_ESCROW:
                        arg_enroll.escrow_pubkey = optarg;
                        break;
                case ARG_UNLOCK_KEY_FILE:
                        arg_unlock_key_file = optarg;
                        break;
                case ARG_WIPE:
                        arg_wipe = optarg;
                        break;
                case ARG_FORCE:
                        arg_enroll.force = true;
                        break;
                case ARG_TCTI:
                        arg_enroll.tcti = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_VIA_SERVICE:
                        arg_via_service = true;
                        break;
                case ARG_DISMISS:
                        arg_dismiss = true;
                        break;
                case ARG_CANCEL:
                        arg_cancel = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_PREDICT:
                        arg_predict = true;
                        break;
                case ARG_KERNEL:
                        arg_sources.kernel = optarg;
                        break;
                case ARG_INITRD:
                        arg_sources.initrd = optarg;
                        break;
                case ARG_BOOT_LOADER:
                        if (arg_n_boot_chain >= ELEMENTSOF(arg_boot_chain))
                                return log_error_errno(E2BIG, "At most %zu --boot-loader= images.",
                                                       ELEMENTSOF(arg_boot_chain));
                        if (arg_n_boot_chain == 0)
                                arg_sources.boot_loader = optarg;
                        arg_boot_chain[arg_n_boot_chain++] = optarg;
                        break;
                case ARG_SECURE_BOOT_VARS:
                        arg_secure_boot_vars = optarg;
                        break;
                case ARG_FAILED_BOOT_OPTIONS: {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end || *optarg == '-' ||
                            v > SECUREBOOT_FAILED_BOOT_OPTIONS_MAX)
                                return log_error_errno(EINVAL, "--failed-boot-options= takes a number from 0 to %u, "
                                                       "not \"%s\".", SECUREBOOT_FAILED_BOOT_OPTIONS_MAX, optarg);
                        arg_failed_boot_options = (unsigned) v;
                        break;
                }
                case ARG_CMDLINE:
                        free(arg_cmdline);
                        arg_cmdline = strdup(optarg);
                        if (!arg_cmdline)
                                return log_oom();
                        arg_sources.cmdline = arg_cmdline;
                        break;
                case ARG_CMDLINE_FILE: {
                        size_t n;

                        free(arg_cmdline);
                        arg_cmdline = NULL;
                        r = read_file_bounded(optarg, PREDICT_CMDLINE_MAX, &arg_cmdline, &n);
                        if (r < 0)
                                return log_error_errno(r, "Cannot read %s: %m", optarg);
                        if (strlen(arg_cmdline) != n)
                                return log_error_errno(EINVAL, "%s holds a NUL byte.", optarg);
                        /* As /proc/cmdline: one trailing newline is not part of it. */
                        if (n > 0 && arg_cmdline[n - 1] == '\n')
                                arg_cmdline[n - 1] = 0;
                        arg_sources.cmdline = arg_cmdline;
                        break;
                }
                case ARG_EVENT_LOG:
                        arg_event_log = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_string(optarg);
                        if (r < 0)
                                return r;
                        break;
                default:
                        return -EINVAL;
                }
        return 1;
}

/* Reads a key file whole, as cryptsetup does (no newline stripping). */
static int read_key_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_secret_ char *buf = NULL;
        size_t n = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open key file %s: %m", path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Cannot stat %s: %m", path);
        if (S_ISREG(st.st_mode) && st.st_size > KEY_FILE_MAX)
                return log_error_errno(EFBIG, "Key file %s is too large.", path);
        buf = secret_alloc(KEY_FILE_MAX);
        if (!buf)
                return log_oom();
        for (;;) {
                ssize_t k = read(fd, buf + n, KEY_FILE_MAX - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "Cannot read %s: %m", path);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n == KEY_FILE_MAX)
                        return log_error_errno(EFBIG, "Key file %s is too large.", path);
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static int get_unlock_passphrase(const char *device, char **ret, size_t *ret_size) {
        _cleanup_free_ char *msg = NULL;
        int r;

        if (arg_unlock_key_file)
                return read_key_file(arg_unlock_key_file, ret, ret_size);
        if (arg_password) {
                *ret_size = strlen(arg_password);
                *ret = TAKE_PTR(arg_password);
                return 0;
        }
        if (asprintf(&msg, "Enrolling into %s needs a current passphrase or recovery key.", device) < 0)
                return log_oom();
        r = prompt_ask_tty(msg, "Current passphrase", ret);
        if (r < 0)
                return log_error_errno(r, "Cannot ask for the passphrase (use --unlock-key-file= or $PASSWORD): %m");
        *ret_size = strlen(*ret);
        return 0;
}

static int get_new_pin(char **ret) {
        _cleanup_secret_ char *a = NULL, *b = NULL;
        int r;

        if (arg_newpin) {
                if (!*arg_newpin)
                        return log_error_errno(EINVAL, "$NEWPIN is empty.");
                *ret = TAKE_PTR(arg_newpin);
                return 0;
        }
        for (unsigned i = 0; i < 3; i++) {
                r = prompt_ask_tty(NULL, "New TPM2 PIN", &a);
                if (r < 0)
                        return log_error_errno(r, "Cannot ask for the PIN (use $NEWPIN): %m");
                r = prompt_ask_tty(NULL, "Repeat the PIN", &b);
                if (r < 0)
                        return log_error_errno(r, "Cannot ask for the PIN (use $NEWPIN): %m");
                if (*a && streq(a, b)) {
                        *ret = TAKE_PTR(a);
                        return 0;
                }
                log_error("The PINs are empty or differ. Try again.");
                a = secret_free(a);
                b = secret_free(b);
        }
        return -EPERM;
}

/* The PCRs --secure-boot-vars= can predict: 4 and 7. */
#define SECURE_BOOT_PCRS ((1u << 4) | (1u << 7))

/* PCRs 4 and 7 (those of mask) predicted offline from --secure-boot-vars=
 * and the boot chain (every --boot-loader=, then --kernel=): ret[0] is
 * PCR 4's prediction, ret[1] PCR 7's, NULL where not in mask. Logs. */
static int secure_boot_predict(uint16_t bank, uint32_t mask, SecureBootPrediction *ret[static 2]) {
        _cleanup_(efivars_freep) EfiVarStore *vars = NULL;
        SecureBootImage images[SECUREBOOT_IMAGES_MAX + 1];
        char *bufs[SECUREBOOT_IMAGES_MAX + 1] = {};
        _cleanup_free_ char *error = NULL;
        size_t n = 0;
        int r;

        ret[0] = ret[1] = NULL;
        r = efivars_load(arg_secure_boot_vars, &vars);
        if (r == -EBADMSG)
                return log_error_errno(r, "%s is neither an OVMF variable store (VARS .fd) nor a uefi-config.json "
                                       "of base64 signature lists, or it is malformed.", arg_secure_boot_vars);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", arg_secure_boot_vars);
        if ((mask & (1u << 7)) && efivars_secure_boot(vars) == 1 && arg_n_boot_chain == 0)
                return log_error_errno(EINVAL, "Secure Boot is on in %s: PCR 7 depends on what verifies the boot "
                                       "chain; give it with --boot-loader= for each image in load order "
                                       "(shim, then grub) and --kernel=.", arg_secure_boot_vars);
        if ((mask & (1u << 4)) && arg_n_boot_chain == 0)
                return log_error_errno(EINVAL, "PCR 4 is made of the boot chain's images: give --boot-loader= for "
                                       "each image in load order (shim, then grub; or systemd-boot) and --kernel=.");
        for (size_t i = 0; i <= arg_n_boot_chain; i++) {
                const char *path = i < arg_n_boot_chain ? arg_boot_chain[i] : arg_sources.kernel;
                size_t size;

                if (!path)
                        continue;
                r = read_file_regular(path, PE_IMAGE_SIZE_MAX, bufs + n, &size);
                if (r < 0) {
                        log_error_errno(r, "Cannot read %s: %m", path);
                        goto finish;
                }
                images[n] = (SecureBootImage) { .name = path, .data = (const uint8_t *) bufs[n], .size = size };
                n++;
        }
        for (unsigned k = 0; k < 2; k++) {
                unsigned pcr = k == 0 ? 4 : 7;

                if (!(mask & (1u << pcr)))
                        continue;
                error = mfree(error);
                if (pcr == 4)
                        r = secureboot_predict_pcr4(images, n, arg_failed_boot_options, bank, ret + k, &error);
                else
                        r = secureboot_predict_pcr7(vars, images, n, bank, ret + k, &error);
                if (r == -ENOMEM) {
                        log_oom();
                        break;
                }
                if (r < 0) {
                        log_error_errno(r, "Cannot predict PCR %u: %s.", pcr, error ?: "the inputs are not usable");
                        break;
                }
        }
        if (r < 0)
                for (unsigned k = 0; k < 2; k++)
                        ret[k] = secureboot_prediction_free(ret[k]);
finish:
        for (size_t i = 0; i < ELEMENTSOF(bufs); i++)
                free(bufs[i]);
        return r;
}

static int check_secure_boot_options(void) {
        if (arg_failed_boot_options > 0 && (!arg_secure_boot_vars || !(arg_enroll.pcr_mask & (1u << 4))))
                return log_error_errno(EINVAL, "--failed-boot-options= is for PCR 4 predicted with "
                                       "--secure-boot-vars= and --pcrs=4+7 (or 4).");
        if (arg_n_boot_chain > 1 && !arg_secure_boot_vars)
                return log_error_errno(EINVAL, "--boot-loader= names more than one image only with "
                                       "--secure-boot-vars=.");
        if (!arg_secure_boot_vars)
                return 0;
        if (arg_event_log || arg_sources.initrd || arg_sources.cmdline)
                return log_error_errno(EINVAL, "--secure-boot-vars= predicts PCRs 7 and 4 from the variables and "
                                       "the EFI images alone: no --event-log=, --initrd= or --cmdline=.");
        if (arg_pcrs_given && (arg_enroll.pcr_mask == 0 || (arg_enroll.pcr_mask & ~SECURE_BOOT_PCRS) ||
                               arg_pcr_values))
                return log_error_errno(EINVAL, "--secure-boot-vars= gives PCRs 7 and 4: --pcrs= may be 7, 4 or 4+7, "
                                       "without values.");
        return 0;
}

static int verb_enroll(int argc, char *argv[]) {
        _cleanup_luks_ struct crypt_device *cd = NULL;
        _cleanup_secret_ char *pass = NULL, *pin = NULL;
        size_t pass_len = 0;
        const char *device;
        int r;

        if (argc != 2)
                return log_error_errno(EINVAL, "enroll takes exactly one DEVICE.");
        device = argv[1];
        if (!arg_enroll.tpm2 && !arg_enroll.recovery_key && !arg_wipe)
                return log_error_errno(EINVAL, "Nothing to do: give --tpm2, --recovery-key or --wipe-slot=.");
        if (arg_enroll.escrow_pubkey && !arg_enroll.recovery_key)
                return log_error_errno(EINVAL, "--escrow-pubkey= goes with --recovery-key.");
        r = check_secure_boot_options();
        if (r < 0)
                return r;
        if (arg_secure_boot_vars) {
                SecureBootPrediction *p[2] = {};
                uint16_t bank = arg_enroll.pcr_bank ?: PCR_BANK_SHA256;
                size_t dsize = pcr_bank_digest_size(bank), off = 0;

                if (!arg_enroll.device_key)
                        return log_error_errno(EINVAL, "--secure-boot-vars= is for --tpm2-device-key=: with a TPM, "
                                               "unlockd seals to its current PCRs.");
                r = secure_boot_predict(bank, arg_enroll.pcr_mask, p);
                if (r < 0)
                        return r;
                /* The policy takes the values in ascending PCR order: 4, then 7. */
                arg_pcr_values = mfree(arg_pcr_values);
                arg_pcr_values = malloc(2 * dsize);
                if (!arg_pcr_values)
                        r = log_oom();
                for (unsigned k = 0; k < 2 && r >= 0; k++) {
                        _cleanup_free_ char *hex = NULL;

                        if (!p[k])
                                continue;
                        if (p[k]->digest_size != dsize) {
                                r = log_error_errno(EINVAL, "PCR %u's prediction is not of bank %s.", p[k]->pcr,
                                                    pcr_bank_to_string(bank));
                                break;
                        }
                        memcpy(arg_pcr_values + off, p[k]->value, dsize);
                        off += dsize;
                        if (hex_encode(p[k]->value, dsize, &hex) >= 0)
                                log_info("PCR %u predicted from %s and the boot chain: %s:%s", p[k]->pcr,
                                         arg_secure_boot_vars, pcr_bank_to_string(bank), hex);
                }
                for (unsigned k = 0; k < 2; k++)
                        secureboot_prediction_free(p[k]);
                if (r < 0)
                        return r;
                arg_enroll.pcr_bank = bank;
                arg_enroll.pcr_values = arg_pcr_values;
                arg_enroll.pcr_values_size = off;
                arg_pcr_all_values = true;
        }
        if (arg_enroll.device_key && arg_enroll.pcr_mask != 0 && !arg_pcr_all_values)
                return log_error_errno(EINVAL, "--tpm2-device-key= needs the value of every PCR: give "
                                       "--pcrs=7:sha256=HEX (the value the TPM's PCR will have at boot).");
        if (!arg_enroll.device_key && arg_enroll.pcr_values)
                return log_error_errno(EINVAL, "PCR values in --pcrs= are for --tpm2-device-key=; with a TPM, "
                                       "unlockd seals to its current PCRs.");

        r = luks_open(device, &cd);
        if (r < 0)
                return log_error_errno(r, "Cannot read the LUKS2 header of %s: %m", device);

        arg_enroll.wipe = arg_wipe;
        if (arg_pin && arg_enroll.tpm2) {
                r = get_new_pin(&pin);
                if (r < 0)
                        return r;
                arg_enroll.pin = pin;
        }

        r = get_unlock_passphrase(device, &pass, &pass_len);
        if (r < 0)
                return r;

        return enroll(cd, device, pass, pass_len, &arg_enroll);
}


/* The system bus, or where no D-Bus daemon runs (minimal systems), systemd's
 * private socket, which root may use directly. */
static int bus_open(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0) {
                *ret = TAKE_PTR(bus);
                return 0;
        }
        if (geteuid() != 0)
                return r;
        log_debug_errno(r, "No system bus (%m); trying systemd's private socket.");
        bus = sd_bus_flush_close_unref(bus);
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Starts unlockd-reseal.service through systemd and waits for its job. */
static int reseal_via_service(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *job = NULL;
        const char *path;
        int r;

        r = bus_open(&bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to systemd (system bus or private socket): %m");
        /* systemd emits JobRemoved only while someone subscribed. */
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Subscribe", &error, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot subscribe to systemd's signals: %s", error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        /* No sender in the match: on the private socket messages have none. */
        r = sd_bus_match_signal(bus, NULL, NULL, "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot watch systemd jobs: %m");
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "StartUnit", &error, &reply,
                               "ss", "unlockd-reseal.service", "replace");
        if (r < 0)
                return log_error_errno(r, "Cannot start unlockd-reseal.service: %s", error.message ?: strerror(-r));
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return log_error_errno(r, "Unexpected reply from systemd: %m");
        job = strdup(path);
        if (!job)
                return log_oom();

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                const char *jpath, *unit, *res;
                uint32_t id;

                r = sd_bus_process(bus, &m);
                if (r < 0)
                        return log_error_errno(r, "Lost the system bus: %m");
                if (r == 0) {
                        r = sd_bus_wait(bus, UINT64_MAX);
                        if (r < 0)
                                return log_error_errno(r, "Lost the system bus: %m");
                        continue;
                }
                if (!m || !sd_bus_message_is_signal(m, "org.freedesktop.systemd1.Manager", "JobRemoved"))
                        continue;
                if (sd_bus_message_read(m, "uoss", &id, &jpath, &unit, &res) < 0 || !streq(jpath, job))
                        continue;
                if (!streq(res, "done"))
                        return log_error_errno(EIO, "unlockd-reseal.service ended with result '%s'; "
                                               "see 'journalctl -u unlockd-reseal.service'.", res);
                log_info("unlockd-reseal.service finished.");
                return 0;
        }
}

/* The volumes named, else those of this boot's state.json, else every
 * LUKS2 volume. *ret is a strv to free when *ret_own. */
static int pick_devices(int argc, char *argv[], char ***ret, bool *ret_own) {
        int n;

        if (argc > 1) {
                *ret = argv + 1;
                *ret_own = false;
                return argc - 1;
        }
        *ret_own = true;
        n = status_state_devices(arg_state_dir, ret);
        if (n == -ENOENT)
                n = blockdev_list_luks(ret);
        if (n < 0)
                return log_error_errno(n, "Cannot list LUKS volumes: %m");
        return n;
}

static int check_sources(void) {
        if (predict_sources_mask(&arg_sources) == 0)
                return log_error_errno(EINVAL, "Name what the update replaces: --kernel=, --initrd=, --cmdline=, "
                                       "--cmdline-file= or --boot-loader=.");
        return 0;
}

/* reseal --predict: retire what this boot did not need, then seal. */
static int reseal_predict(int argc, char *argv[]) {
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        _cleanup_(tpm2_context_freep) Tpm2Context *tpm = NULL;
        char **devices = NULL;
        bool own = false;
        int n, r;

        r = check_sources();
        if (r < 0)
                return r;
        if (arg_event_log)
                return log_error_errno(EINVAL, "reseal --predict works from this boot's own event log: no --event-log.");
        if (arg_secure_boot_vars || arg_n_boot_chain > 1)
                return log_error_errno(EINVAL, "reseal --predict substitutes components in this boot's event log: "
                                       "no --secure-boot-vars=, one --boot-loader=.");
        (void) preseal_retire(arg_state_dir);
        r = predict_load_log(NULL, &log);
        if (r < 0)
                return r;
        r = tpm2_context_new(arg_enroll.tcti, &tpm);
        if (r < 0)
                return log_error_errno(r, "Cannot open the TPM: %s", tpm2_strerror(r));
        n = pick_devices(argc, argv, &devices, &own);
        if (n < 0)
                return n;
        r = preseal_devices(devices, (size_t) n, tpm, log, &arg_sources);
        if (own)
                strv_free(devices);
        return r;
}

static void print_prediction(const PcrPrediction *p, const EventLog *log, json_object *pcrs) {
        size_t dsize = pcr_bank_digest_size(p->bank);

        for (unsigned i = 0; i < PCR_MAX; i++) {
                _cleanup_free_ char *now = NULL, *next = NULL;
                char subst[128] = "";

                if (!(p->mask & (1u << i)))
                        continue;
                if (hex_encode(p->reference[i], dsize, &now) < 0 || hex_encode(p->predicted[i], dsize, &next) < 0)
                        continue;
                for (size_t k = 0; k < p->result.n_substitutions; k++) {
                        const char *c = predict_component_to_string(p->result.substitutions[k].component);

                        if (p->result.substitutions[k].pcr == i && !strstr(subst, c))
                                snprintf(subst + strlen(subst), sizeof(subst) - strlen(subst), "%s%s",
                                         *subst ? "+" : "", c);
                }
                if (pcrs) {
                        json_object *o = json_object_new_object();

                        json_object_object_add(o, "pcr", json_object_new_int((int) i));
                        json_object_object_add(o, "current", json_object_new_string(now));
                        json_object_object_add(o, "predicted", json_object_new_string(next));
                        json_object_object_add(o, "predictable", json_object_new_boolean(!(p->unpredictable & (1u << i))));
                        json_object_object_add(o, "substituted", *subst ? json_object_new_string(subst) : NULL);
                        json_object_array_add(pcrs, o);
                        continue;
                }
                printf("%2u %s %s%s%s%s\n", i, pcr_bank_to_string(p->bank), next,
                       *subst ? "  (" : "", subst, *subst ? ")" : "");
                if (p->unpredictable & (1u << i))
                        printf("   not predictable: the event log's replay is not the TPM's value %s\n", now);
        }
        (void) log;
}

static const char *secureboot_event_type(uint32_t type) {
        return eventlog_type_to_string(type) ?: "?";
}

/* predict --secure-boot-vars=: PCRs 7 and 4 and the events they are made of. */
static int predict_secure_boot(uint16_t bank) {
        SecureBootPrediction *p[2] = {};
        json_object *o = NULL, *pcrs = NULL, *events = NULL;
        int r;

        r = secure_boot_predict(bank, arg_enroll.pcr_mask, p);
        if (r < 0)
                return r;
        if (arg_json) {
                o = json_object_new_object();
                pcrs = json_object_new_array();
                events = json_object_new_array();
                json_object_object_add(o, "bank", json_object_new_string(pcr_bank_to_string(bank)));
                json_object_object_add(o, "reference", json_object_new_string("secure-boot-vars"));
        }
        for (unsigned k = 0; k < 2 && r >= 0; k++) {
                _cleanup_free_ char *value = NULL;

                if (!p[k])
                        continue;
                if (hex_encode(p[k]->value, p[k]->digest_size, &value) < 0) {
                        r = log_oom();
                        break;
                }
                if (o) {
                        json_object *pcr = json_object_new_object();

                        json_object_object_add(pcr, "pcr", json_object_new_int((int) p[k]->pcr));
                        json_object_object_add(pcr, "predicted", json_object_new_string(value));
                        json_object_array_add(pcrs, pcr);
                        if (p[k]->pcr == 7)
                                json_object_object_add(o, "secure-boot", json_object_new_boolean(p[k]->secure_boot == 1));
                } else
                        printf("%2u %s %s\n", p[k]->pcr, pcr_bank_to_string(bank), value);
                for (size_t i = 0; i < p[k]->n_events; i++) {
                        const SecureBootEvent *ev = p[k]->events + i;
                        _cleanup_free_ char *d = NULL;

                        if (hex_encode(ev->digest, p[k]->digest_size, &d) < 0) {
                                r = log_oom();
                                break;
                        }
                        if (!o) {
                                printf("measured: %s %s%s%s (%s)\n", secureboot_event_type(ev->type), ev->name,
                                       *ev->name ? " " : "", d, ev->what);
                                continue;
                        }
                        json_object *e = json_object_new_object();

                        json_object_object_add(e, "pcr", json_object_new_int((int) p[k]->pcr));
                        json_object_object_add(e, "type", json_object_new_string(secureboot_event_type(ev->type)));
                        if (*ev->name)
                                json_object_object_add(e, "name", json_object_new_string(ev->name));
                        json_object_object_add(e, "digest", json_object_new_string(d));
                        json_object_object_add(e, "measured-by", json_object_new_string(ev->what));
                        json_object_array_add(events, e);
                }
        }
        if (o) {
                json_object_object_add(o, "pcrs", pcrs);
                json_object_object_add(o, "events", events);
                if (r >= 0)
                        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        }
        for (unsigned k = 0; k < 2; k++)
                secureboot_prediction_free(p[k]);
        return r < 0 ? r : 0;
}

static int verb_predict(int argc, char *argv[]) {
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        _cleanup_(tpm2_context_freep) Tpm2Context *tpm = NULL;
        PcrPrediction *p = NULL;
        uint16_t bank = arg_enroll.pcr_bank ?: PCR_BANK_SHA256;
        uint32_t mask;
        int r;

        if (argc > 1)
                return log_error_errno(EINVAL, "predict takes no arguments.");
        r = check_secure_boot_options();
        if (r < 0)
                return r;
        if (arg_secure_boot_vars)
                return predict_secure_boot(bank);
        r = check_sources();
        if (r < 0)
                return r;
        r = predict_load_log(arg_event_log, &log);
        if (r < 0)
                return r;
        if (!arg_event_log) {
                r = tpm2_context_new(arg_enroll.tcti, &tpm);
                if (r < 0)
                        return log_error_errno(r, "Cannot open the TPM (or give --event-log= to predict offline): %s",
                                               tpm2_strerror(r));
        }
        p = malloc(sizeof(*p));
        if (!p)
                return log_oom();
        /* Default: every PCR the log extends. */
        if (arg_pcrs_given)
                mask = arg_enroll.pcr_mask;
        else {
                EventLogReplay *rp = malloc(sizeof(*rp));

                r = rp ? eventlog_replay(log, bank, rp) : -ENOMEM;
                mask = r >= 0 ? rp->extended : 0;
                free(rp);
                if (r < 0) {
                        free(p);
                        return log_error_errno(r, "Cannot replay the event log's %s bank: %m",
                                               pcr_bank_to_string(bank) ?: "?");
                }
        }
        r = predict_pcrs(log, tpm, &arg_sources, bank, mask, p);
        if (r >= 0 && arg_json) {
                json_object *o = json_object_new_object(), *pcrs = json_object_new_array(), *subs = json_object_new_array();

                print_prediction(p, log, pcrs);
                for (size_t k = 0; k < p->result.n_substitutions; k++) {
                        json_object *e = json_object_new_object();

                        json_object_object_add(e, "event", json_object_new_int64((int64_t) p->result.substitutions[k].event));
                        json_object_object_add(e, "pcr", json_object_new_int((int) p->result.substitutions[k].pcr));
                        json_object_object_add(e, "component",
                                               json_object_new_string(predict_component_to_string(p->result.substitutions[k].component)));
                        json_object_array_add(subs, e);
                }
                json_object_object_add(o, "bank", json_object_new_string(pcr_bank_to_string(bank)));
                json_object_object_add(o, "reference", json_object_new_string(tpm ? "tpm" : "event-log"));
                json_object_object_add(o, "pcrs", pcrs);
                json_object_object_add(o, "substitutions", subs);
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else if (r >= 0) {
                print_prediction(p, log, NULL);
                for (size_t k = 0; k < p->result.n_substitutions; k++)
                        printf("substituted: event %zu (PCR %u, %s)\n", p->result.substitutions[k].event,
                               p->result.substitutions[k].pcr,
                               predict_component_to_string(p->result.substitutions[k].component));
        }
        if (r >= 0 && p->unpredictable)
                r = -ESTALE;
        free(p);
        return r;
}

static int verb_reseal(int argc, char *argv[]) {
        char **uuids = NULL;
        unsigned done = 0;
        int r;

        if (arg_predict) {
                if (arg_dismiss || arg_via_service)
                        return log_error_errno(EINVAL, "--predict takes no --dismiss or --via-service.");
                return reseal_predict(argc, argv);
        }
        if (!arg_dismiss)
                (void) preseal_retire(arg_state_dir);

        if (arg_via_service) {
                if (arg_dismiss || argc > 1)
                        return log_error_errno(EINVAL, "--via-service takes no DEVICE and no --dismiss.");
                return reseal_via_service();
        }
        /* DEVICE… names the volumes whose jobs to run or dismiss. */
        if (argc > 1) {
                uuids = calloc((size_t) argc, sizeof(char *));
                if (!uuids)
                        return log_oom();
                for (int i = 1; i < argc; i++) {
                        _cleanup_luks_ struct crypt_device *cd = NULL;

                        r = luks_open(argv[i], &cd);
                        if (r < 0) {
                                strv_free(uuids);
                                return log_error_errno(r, "Cannot read the LUKS2 header of %s: %m", argv[i]);
                        }
                        uuids[i - 1] = strdup(luks_uuid(cd) ?: "");
                        if (!uuids[i - 1]) {
                                strv_free(uuids);
                                return log_oom();
                        }
                }
        }
        r = reseal_run_all(arg_state_dir, arg_enroll.tcti, arg_dismiss ? RESEAL_DISMISS : RESEAL_RUN, uuids, &done);
        strv_free(uuids);
        if (r < 0)
                return r;
        if (done == 0 && r == 0)
                log_info("No re-seal jobs pending%s.", argc > 1 ? " for these volumes" : "");
        return r > 0 ? -EIO : 0;
}

static int verb_status(int argc, char *argv[]) {
        return status_show(argv + 1, (size_t) (argc - 1), arg_state_dir, arg_enroll.tcti, arg_json);
}

/* The volumes named, else those of this boot's state.json (as status). */
static int verb_drill(int argc, char *argv[]) {
        char **devices = NULL;
        int n, r;

        if (argc > 1)
                return drill_arm_devices(argv + 1, (size_t) (argc - 1), arg_cancel);
        n = status_state_devices(arg_state_dir, &devices);
        if (n == -ENOENT)
                return log_error_errno(n, "No volumes in %s/state.json: name the DEVICE to drill.", arg_state_dir);
        if (n < 0)
                return log_error_errno(n, "Cannot read %s/state.json: %m", arg_state_dir);
        r = drill_arm_devices(devices, (size_t) n, arg_cancel);
        strv_free(devices);
        return r;
}

static int run(int argc, char *argv[]) {
        static const struct {
                const char *name;
                int (*func)(int argc, char *argv[]);
        } verbs[] = {
                { "enroll", verb_enroll },
                { "reseal", verb_reseal },
                { "status", verb_status },
                { "drill", verb_drill },
                { "predict", verb_predict },
        };
        int r;

        log_set_prefix("unlockctl");
        secret_harden_process();
        /* Secrets do not stay in the environment for the process's life. */
        if (secret_getenv_erase("PASSWORD", &arg_password) < 0 || secret_getenv_erase("NEWPIN", &arg_newpin) < 0)
                return log_oom();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        luks_setup();
        tpm2_setup();
        if (optind >= argc) {
                help();
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].func(argc - optind, argv + optind);
        return log_error_errno(EINVAL, "Unknown command: %s", argv[optind]);
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        arg_password = secret_free(arg_password);
        arg_newpin = secret_free(arg_newpin);
        free(arg_cmdline);
        arg_pcr_values = mfree(arg_pcr_values);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
