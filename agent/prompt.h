/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#define PROMPT_MAX_INPUT 1024

/* Asks for a secret on the controlling terminal (or stdin when it is a
 * terminal), without echo. message is printed first, then "prompt: ".
 * Returns 0 with *ret a secret buffer (secret_free()); -ECANCELED when the
 * user cancelled (Ctrl-C, ESC); -ENXIO when there is no terminal; -EPIPE
 * on end of input. */
int prompt_ask_tty(const char *message, const char *prompt, char **ret);
