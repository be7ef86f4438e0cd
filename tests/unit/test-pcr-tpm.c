/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* unlockd computes PolicyPCR and PolicyAuthValue digests offline (to seal to
 * recorded PCR values and to diagnose a mismatch without the TPM). This test
 * asks a real TPM for the same digests: it starts a private swtpm, extends a
 * few PCRs, reads them with tpm2_pcrread, builds the policy in a trial
 * session with tpm2_policypcr (+ tpm2_policyauthvalue), and compares the
 * TPM's digest with policy_digest_compute() on the values read.
 *
 * Exits 77 only when swtpm or tpm2-tools are not installed. swtpm runs as our
 * child with PR_SET_PDEATHSIG, so it dies with the test on every path, even
 * SIGKILL; its state and socket live in a private temporary directory that is
 * removed on exit. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcr.h"

/* Short: the socket path must fit sockaddr_un.sun_path (108 bytes). */
static char tmpdir[100];
static char sock_path[sizeof(tmpdir) + 8];
static char log_path[sizeof(tmpdir) + 8];
static volatile pid_t swtpm_pid = -1;

static const char *const tools[] = {
        "tpm2_pcrextend", "tpm2_pcrread", "tpm2_startauthsession",
        "tpm2_policypcr", "tpm2_policyauthvalue", "tpm2_flushcontext",
};

static bool have_program(const char *name) {
        const char *path = getenv("PATH");
        char buf[PATH_MAX];

        if (!path || !*path)
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");

                if (n > 0 && (size_t) snprintf(buf, sizeof(buf), "%.*s/%s", (int) n, path, name) < sizeof(buf) &&
                    access(buf, X_OK) == 0)
                        return true;
                path += n;
                if (*path == ':')
                        path++;
        }
        return false;
}

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* Only async-signal-safe calls: also run from signal handlers. */
static void kill_swtpm(void) {
        if (swtpm_pid > 0)
                kill(swtpm_pid, SIGKILL);
}

static void cleanup(void);

/* SIGINT/SIGTERM (meson's timeout): stop swtpm and remove the directory,
 * best effort, then die of the signal. SIGABRT (a crash): only what is
 * async-signal-safe. */
static void on_signal(int sig) {
        kill_swtpm();
        if (sig != SIGABRT)
                cleanup();
        signal(sig, SIG_DFL);
        raise(sig);
}

static void stop_swtpm(void) {
        pid_t pid = swtpm_pid;

        if (pid <= 0)
                return;
        kill(pid, SIGTERM);
        for (int i = 0; i < 100; i++) {
                if (waitpid(pid, NULL, WNOHANG) != 0)
                        goto done;
                sleep_ms(20);
        }
        kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
done:
        swtpm_pid = -1;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        (void) ftw;
        (void) remove(path);
        return 0;
}

static void cleanup(void) {
        stop_swtpm();
        if (tmpdir[0])
                (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = 0;
}

/* Shows what the tools said (minus swtpm's line per connection). */
static void dump_log(void) {
        char line[1024];
        bool any = false;
        FILE *f = fopen(log_path, "r");

        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (strstr(line, "Data client disconnected"))
                        continue;
                if (!any)
                        fprintf(stderr, "--- swtpm and tpm2-tools output ---\n");
                any = true;
                fputs(line, stderr);
        }
        if (any)
                fprintf(stderr, "---\n");
        fclose(f);
}

/* Starts the log afresh, so that a failure shows only its own case. */
static void reset_log(void) {
        (void) truncate(log_path, 0);
}

/* Runs argv with stdout and stderr appended to the log; returns the exit
 * status, or -1 when it did not exit normally. */
static int run(const char *const argv[]) {
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

static bool socket_ready(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        close(fd);
        return r == 0;
}

static int start_swtpm(void) {
        char runner[PATH_MAX];
        const char *src = getenv("UNLOCKD_SOURCE_DIR");
        pid_t parent = getpid(), pid;

        /* The suites' one swtpm command line: tools/swtpm-run DIR. */
        snprintf(runner, sizeof(runner), "%s/tools/swtpm-run", src && *src ? src : ".");
        const char *const argv[] = { runner, tmpdir, NULL };

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int fd;

                /* Die with the test, however it ends. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(1);
                fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        swtpm_pid = pid;

        for (int i = 0; i < 250; i++) {         /* up to 5 s */
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        swtpm_pid = -1;
                        fprintf(stderr, "swtpm exited at start-up\n");
                        return -1;
                }
                if (socket_ready())
                        return 0;
                sleep_ms(20);
        }
        fprintf(stderr, "swtpm did not open %s\n", sock_path);
        return -1;
}

static void hex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
        out[2 * n] = 0;
}

/* Reads a whole small file; returns its size or -1. */
static long read_file(const char *name, uint8_t *buf, size_t size) {
        char path[PATH_MAX + 64];
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        f = fopen(path, "rb");
        if (!f)
                return -1;
        n = fread(buf, 1, size, f);
        if (ferror(f) || fgetc(f) != EOF)
                n = SIZE_MAX;
        fclose(f);
        return n == SIZE_MAX ? -1 : (long) n;
}

static void path_in(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* One comparison. pcrs is tpm2-tools syntax ("0,7", "none"), mask the
 * same selection in unlockd's syntax. Returns 0 when the digests agree,
 * 1 when the TPM lacks the bank and optional is set, -1 on failure. */
static int check(const char *bank_name, const char *pcrs, const char *mask_string, bool pin, bool optional) {
        char values_path[PATH_MAX + 64], session_path[PATH_MAX + 64], policy_path[PATH_MAX + 64];
        char sel[64], tpm_hex[2 * SHA256_DIGEST_SIZE + 1], our_hex[2 * SHA256_DIGEST_SIZE + 1];
        uint8_t values[PCR_MAX * 64], tpm[SHA256_DIGEST_SIZE + 1], ours[SHA256_DIGEST_SIZE];
        long values_size = 0, tpm_size;
        uint32_t mask;
        uint16_t bank;
        int r;

        if (pcr_bank_from_string(bank_name, &bank) < 0 || pcr_mask_from_string(mask_string, &mask) < 0) {
                fprintf(stderr, "bad test case %s:%s\n", bank_name, mask_string);
                return -1;
        }
        snprintf(sel, sizeof(sel), "%s:%s", bank_name, pcrs);
        path_in(values_path, sizeof(values_path), "values.bin");
        path_in(session_path, sizeof(session_path), "session.ctx");
        path_in(policy_path, sizeof(policy_path), "policy.bin");
        (void) unlink(values_path);
        (void) unlink(policy_path);

        if (mask != 0) {
                const char *const read_argv[] = { "tpm2_pcrread", "-Q", sel, "-o", values_path, NULL };

                r = run(read_argv);
                values_size = r == 0 ? read_file("values.bin", values, sizeof(values)) : -1;
                if (values_size <= 0) {
                        if (optional) {
                                printf("# %s: bank not allocated in this TPM, not checked\n", sel);
                                return 1;
                        }
                        fprintf(stderr, "tpm2_pcrread %s failed\n", sel);
                        return -1;
                }
                if ((size_t) values_size != pcr_mask_count(mask) * pcr_bank_digest_size(bank)) {
                        fprintf(stderr, "tpm2_pcrread %s: %ld bytes of values\n", sel, values_size);
                        return -1;
                }
        }

        const char *const start_argv[] = { "tpm2_startauthsession", "-Q", "-S", session_path, NULL };
        const char *const pcr_argv[] = { "tpm2_policypcr", "-Q", "-S", session_path, "-l", sel, "-L", policy_path, NULL };
        const char *const auth_argv[] = { "tpm2_policyauthvalue", "-Q", "-S", session_path, "-L", policy_path, NULL };
        const char *const flush_argv[] = { "tpm2_flushcontext", session_path, NULL };

        if (run(start_argv) != 0) {
                fprintf(stderr, "tpm2_startauthsession failed\n");
                return -1;
        }
        /* An empty selection means no PolicyPCR at all (as systemd does):
         * with no PIN either, the policy is the session's initial all-zero
         * digest. */
        r = mask != 0 ? run(pcr_argv) : 0;
        if (r == 0 && pin)
                r = run(auth_argv);
        if (r == 0 && mask == 0 && !pin) {
                FILE *z = fopen(policy_path, "wb");
                static const uint8_t zeros[SHA256_DIGEST_SIZE];
                if (!z || fwrite(zeros, 1, sizeof(zeros), z) != sizeof(zeros))
                        r = -1;
                if (z)
                        fclose(z);
        }
        /* Always flush: swtpm has no resource manager, and a leaked session
         * would make later cases fail. */
        if (run(flush_argv) != 0 && r == 0)
                r = -1;
        if (r != 0) {
                fprintf(stderr, "trial session for %s%s failed\n", sel, pin ? " + PolicyAuthValue" : "");
                return -1;
        }
        tpm_size = read_file("policy.bin", tpm, sizeof(tpm));
        if (tpm_size != SHA256_DIGEST_SIZE) {
                fprintf(stderr, "%s: TPM policy digest of %ld bytes\n", sel, tpm_size);
                return -1;
        }

        r = policy_digest_compute(bank, mask, values, (size_t) values_size, pin, ours);
        if (r < 0) {
                fprintf(stderr, "policy_digest_compute(%s) failed: %s\n", sel, strerror(-r));
                return -1;
        }
        hex(tpm, SHA256_DIGEST_SIZE, tpm_hex);
        hex(ours, SHA256_DIGEST_SIZE, our_hex);
        if (strcmp(tpm_hex, our_hex) != 0) {
                fprintf(stderr, "%s%s: TPM %s, unlockd %s\n", sel, pin ? " +PIN" : "", tpm_hex, our_hex);
                return -1;
        }
        printf("ok - %s%s = %s\n", sel, pin ? " +PolicyAuthValue" : "", our_hex);
        return 0;
}

static int extend(const char *spec) {
        const char *const argv[] = { "tpm2_pcrextend", spec, NULL };

        reset_log();
        if (run(argv) != 0) {
                fprintf(stderr, "tpm2_pcrextend %s failed\n", spec);
                dump_log();
                return -1;
        }
        return 0;
}

static int run_checks(void) {
        static const struct {
                const char *bank, *pcrs, *mask;
                bool optional;
        } cases[] = {
                { "sha256", "0,7", "0+7", false },
                { "sha256", "7", "secure-boot-policy", false },
                { "sha256", "4,9", "4+9", false },
                { "sha256", "none", "", false },
                /* All three select bytes; tpm2-tools takes at most 8 PCRs. */
                { "sha256", "0,1,2,3,7,9,14,23", "0+1+2+3+7+9+14+23", false },
                { "sha1", "0,7", "0+7", false },
                { "sha1", "4,9", "4,9", false },
                { "sha1", "none", "", false },
                { "sha384", "0,7", "0+7", true },
                { "sha512", "4,9", "4+9", true },
        };
        int failed = 0;

        /* Non-zero values where the cases look, different per bank. */
        if (extend("7:sha256=7777777777777777777777777777777777777777777777777777777777777777,"
                   "sha1=7777777777777777777777777777777777777777") < 0 ||
            extend("4:sha256=4444444444444444444444444444444444444444444444444444444444444444,"
                   "sha1=4444444444444444444444444444444444444444") < 0 ||
            extend("9:sha256=9999999999999999999999999999999999999999999999999999999999999999,"
                   "sha1=9999999999999999999999999999999999999999") < 0 ||
            extend("23:sha256=2323232323232323232323232323232323232323232323232323232323232323") < 0)
                return -1;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                for (int pin = 0; pin <= 1; pin++) {
                        reset_log();
                        if (check(cases[i].bank, cases[i].pcrs, cases[i].mask, pin, cases[i].optional) < 0) {
                                dump_log();
                                failed++;
                        }
                }
        return failed > 0 ? -1 : 0;
}

int main(void) {
        const char *base = getenv("TMPDIR");
        int r;

        if (!have_program("swtpm")) {
                printf("SKIP: swtpm is not installed\n");
                return 77;
        }
        for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
                if (!have_program(tools[i])) {
                        printf("SKIP: %s (tpm2-tools) is not installed\n", tools[i]);
                        return 77;
                }

        /* A socket path must fit sockaddr_un.sun_path. */
        if (!base || !*base || strlen(base) > sizeof(tmpdir) - 40)
                base = "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/unlockd-test-pcr-tpm.XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(sock_path, sizeof(sock_path), "%s/sock", tmpdir);
        snprintf(log_path, sizeof(log_path), "%s/log", tmpdir);
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGABRT, on_signal);

        if (start_swtpm() < 0) {
                dump_log();
                return 1;
        }
        {
                char tcti[PATH_MAX + 16];

                snprintf(tcti, sizeof(tcti), "swtpm:path=%s", sock_path);
                setenv("TPM2TOOLS_TCTI", tcti, 1);
        }

        r = run_checks();
        return r < 0 ? 1 : 0;
}
