/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PROMPT_MAX_INPUT 1024

/* Asks for a secret on the controlling terminal (or stdin when it is a
 * terminal), without echo. message is printed first, then "prompt: ".
 * Editing as on the consoles (README, "How recovery works"; prompt.c), but
 * Ctrl-D ends the line (or the input, on an empty line).
 * Returns 0 with *ret a secret buffer (secret_free()); -ECANCELED when the
 * user cancelled (Ctrl-C, ESC); -ENXIO when there is no terminal; -EPIPE
 * on end of input.
 *
 * Both prompts block SIGTERM, SIGINT and SIGHUP while they ask: when one
 * comes, the prompt ends, the terminals get their settings back, the ask
 * file goes, and the signal is unblocked again, so that it takes effect
 * (by default the process dies of it; with a handler, the prompt returns
 * -EINTR). */
int prompt_ask_tty(const char *message, const char *prompt, char **ret);

/* Multi-console / ask-password prompt (design.md section 6).
 *
 * check() is called with each answer typed. It returns 0 when the answer
 * opened the volume (the prompt ends), -EPERM when it was wrong (the prompt
 * says so on the console it came from and asks again), any other negative
 * errno to abort the prompt with that error. */
typedef int (*PromptCheck)(const char *input, void *userdata);

typedef struct PromptOptions {
        const char *message;            /* why we ask, shown before the prompt (may span lines) */
        const char *prompt;             /* e.g. "Recovery key or passphrase" */
        const char *id;                 /* ask-password Id=, e.g. "unlockd:/dev/vda2" */
        char *const *consoles;          /* NULL-terminated tty paths; NULL = the active consoles, */
        const char *active_consoles;    /* named in this file (NULL = /sys/class/tty/console/active) */
        const char *dev_dir;            /* and found in this directory (NULL = /dev) */
        int ask_password;               /* -1 auto (systemd runs: /run/systemd/system exists), 0 no, 1 yes */
        const char *ask_password_dir;   /* NULL = /run/systemd/ask-password */
        uint64_t timeout_usec;          /* 0 = wait forever */
        unsigned max_tries;             /* 0 = unlimited wrong answers */
        void (*alive)(void *userdata);  /* called at least every PROMPT_ALIVE_USEC while waiting */
} PromptOptions;

#define PROMPT_ALIVE_USEC (20 * 1000000ULL)

/* Asks on every console at once (or through systemd's ask-password
 * protocol) until check() accepts an answer. A console that is not a
 * terminal (a FIFO, a regular file, /dev/null) is skipped with a warning;
 * nothing is written to it. The first accepted answer wins;
 * the other consoles' prompts are withdrawn and their terminals restored.
 * Returns 0 when accepted; -ETIME on timeout; -EDQUOT when max_tries wrong
 * answers were given; -EPIPE when every console reached end of input;
 * -ENXIO when there is no console to ask on; -EINTR after a stop signal
 * (see above); other negative errno. */
int prompt_ask_check(const PromptOptions *o, PromptCheck check, void *userdata);
