/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test driver for prompt_ask_check(); not part of the product.
 *
 *   prompt-driver [--console=PATH]... [--ask-password=yes|no|auto]
 *                 [--ask-password-dir=DIR] [--timeout-usec=N] [--max-tries=N]
 *                 [--message=TEXT] [--message-lines=N] [--prompt=TEXT] [--id=TEXT]
 *                 [--active-consoles=FILE] [--dev-dir=DIR] [--tty] [--debug]
 *
 * check() accepts exactly $ANSWER and refuses anything else (-EPERM); an
 * input equal to $ABORT makes it fail with -EIO; $CHECK_DELAY_MS makes every
 * check that long (like a slow keyslot KDF). On stdout, one line per check:
 * "rejected" or "accepted: <input>" (the input is printed because this is a
 * test driver: the tests compare it). --message-lines repeats the message
 * as that many lines (a message too large for a console's output buffer).
 * Without --console, the consoles are the names in --active-consoles (like
 * /sys/class/tty/console/active) in --dev-dir (like /dev).
 * --tty asks once with prompt_ask_tty() instead (the controlling terminal,
 * else standard input) and checks the answer the same way.
 *
 * Exit status: 0 accepted, 2 timeout (-ETIME), 3 no more tries (-EDQUOT),
 * 4 every console at end of input (-EPIPE), 5 no console (-ENXIO),
 * 6 check() failed (-EIO from $ABORT), 7 cancelled (-ECANCELED, --tty),
 * 1 any other error (with --tty: a wrong answer), 64 usage. */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "prompt.h"
#include "secret.h"

enum {
        EXIT_ACCEPTED = 0,
        EXIT_OTHER = 1,
        EXIT_TIMEOUT = 2,
        EXIT_NO_MORE_TRIES = 3,
        EXIT_ALL_GONE = 4,
        EXIT_NO_CONSOLE = 5,
        EXIT_ABORTED = 6,
        EXIT_CANCELLED = 7,
        EXIT_USAGE = 64,
};

#define CONSOLES_ARG_MAX 32

typedef struct Driver {
        const char *answer;
        const char *abort_on;
        long delay_ms;
} Driver;

static int check(const char *input, void *userdata) {
        Driver *d = userdata;

        if (d->delay_ms > 0)
                nanosleep(&(struct timespec) { .tv_sec = d->delay_ms / 1000,
                                               .tv_nsec = d->delay_ms % 1000 * 1000000L }, NULL);
        if (d->abort_on && streq(input, d->abort_on)) {
                printf("aborted\n");
                fflush(stdout);
                return -EIO;
        }
        if (d->answer && streq(input, d->answer)) {
                printf("accepted: %s\n", input);
                fflush(stdout);
                return 0;
        }
        printf("rejected\n");
        fflush(stdout);
        return -EPERM;
}

static int parse_uint64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || *s == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

int main(int argc, char *argv[]) {
        enum { ARG_CONSOLE = 0x100, ARG_ASK, ARG_ASK_DIR, ARG_TIMEOUT, ARG_TRIES, ARG_MESSAGE, ARG_MESSAGE_LINES,
               ARG_PROMPT, ARG_ID, ARG_ACTIVE, ARG_DEV_DIR, ARG_TTY, ARG_DEBUG };
        static const struct option options[] = {
                { "console", required_argument, NULL, ARG_CONSOLE },
                { "ask-password", required_argument, NULL, ARG_ASK },
                { "ask-password-dir", required_argument, NULL, ARG_ASK_DIR },
                { "timeout-usec", required_argument, NULL, ARG_TIMEOUT },
                { "max-tries", required_argument, NULL, ARG_TRIES },
                { "message", required_argument, NULL, ARG_MESSAGE },
                { "message-lines", required_argument, NULL, ARG_MESSAGE_LINES },
                { "prompt", required_argument, NULL, ARG_PROMPT },
                { "id", required_argument, NULL, ARG_ID },
                { "active-consoles", required_argument, NULL, ARG_ACTIVE },
                { "dev-dir", required_argument, NULL, ARG_DEV_DIR },
                { "tty", no_argument, NULL, ARG_TTY },
                { "debug", no_argument, NULL, ARG_DEBUG },
                {}
        };
        char *consoles[CONSOLES_ARG_MAX + 1] = {};
        size_t n_consoles = 0;
        PromptOptions o = {
                .message = "unlockd prompt test.",
                .prompt = "Recovery key or passphrase",
                .id = "unlockd:prompt-driver",
                .ask_password = 0,
        };
        Driver d = {
                .answer = getenv("ANSWER"),
                .abort_on = getenv("ABORT"),
                .delay_ms = getenv("CHECK_DELAY_MS") ? atol(getenv("CHECK_DELAY_MS")) : 0,
        };
        _cleanup_free_ char *long_message = NULL;
        uint64_t v, lines = 0;
        bool tty = false;
        int c, r;

        log_set_prefix("prompt-driver");
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_CONSOLE:
                        if (n_consoles >= CONSOLES_ARG_MAX)
                                return EXIT_USAGE;
                        consoles[n_consoles++] = optarg;
                        break;
                case ARG_ASK:
                        o.ask_password = streq(optarg, "yes") ? 1 : streq(optarg, "no") ? 0 : -1;
                        break;
                case ARG_ASK_DIR:
                        o.ask_password_dir = optarg;
                        o.ask_password = 1;
                        break;
                case ARG_TIMEOUT:
                        if (parse_uint64(optarg, &v) < 0)
                                return EXIT_USAGE;
                        o.timeout_usec = v;
                        break;
                case ARG_TRIES:
                        if (parse_uint64(optarg, &v) < 0 || v > UINT32_MAX)
                                return EXIT_USAGE;
                        o.max_tries = (unsigned) v;
                        break;
                case ARG_MESSAGE:
                        o.message = optarg;
                        break;
                case ARG_MESSAGE_LINES:
                        if (parse_uint64(optarg, &lines) < 0 || lines > 100000)
                                return EXIT_USAGE;
                        break;
                case ARG_PROMPT:
                        o.prompt = optarg;
                        break;
                case ARG_ID:
                        o.id = optarg;
                        break;
                case ARG_ACTIVE:
                        o.active_consoles = optarg;
                        break;
                case ARG_DEV_DIR:
                        o.dev_dir = optarg;
                        break;
                case ARG_TTY:
                        tty = true;
                        break;
                case ARG_DEBUG:
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc)
                return EXIT_USAGE;
        if (n_consoles > 0)
                o.consoles = consoles;
        if (lines > 0) {
                size_t l = strlen(o.message);

                long_message = malloc(lines * (l + 1));
                if (!long_message)
                        return EXIT_OTHER;
                for (uint64_t i = 0; i < lines; i++) {
                        memcpy(long_message + i * (l + 1), o.message, l);
                        long_message[i * (l + 1) + l] = '\n';
                }
                long_message[lines * (l + 1) - 1] = 0;
                o.message = long_message;
        }

        if (tty) {
                _cleanup_secret_ char *input = NULL;

                r = prompt_ask_tty(o.message, o.prompt, &input);
                if (r == 0)
                        r = check(input, &d);
        } else
                r = prompt_ask_check(&o, check, &d);
        if (r < 0)
                log_error_errno(r, "prompt_ask_check() failed: %m");
        switch (r) {
        case 0:
                return EXIT_ACCEPTED;
        case -ETIME:
                return EXIT_TIMEOUT;
        case -EDQUOT:
                return EXIT_NO_MORE_TRIES;
        case -EPIPE:
                return EXIT_ALL_GONE;
        case -ENXIO:
                return EXIT_NO_CONSOLE;
        case -EIO:
                return EXIT_ABORTED;
        case -ECANCELED:
                return EXIT_CANCELLED;
        default:
                return EXIT_OTHER;
        }
}
