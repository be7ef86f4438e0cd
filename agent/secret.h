/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Secrets (unsealed data, passphrases, recovery keys, PINs) live in buffers
 * that are locked in memory where possible, excluded from core dumps, and
 * wiped when freed. */

/* Allocates size zeroed bytes of locked, non-dumpable memory (plus a NUL
 * byte after them, so text secrets are strings). Returns NULL on OOM. */
void *secret_alloc(size_t size);
/* Duplicates size bytes into a secret buffer (NUL-terminated). */
void *secret_memdup(const void *p, size_t size);
/* Duplicates a string into a secret buffer. */
char *secret_strdup(const char *s);
/* Wipes and frees a buffer from secret_alloc(); accepts NULL, returns NULL. */
void *secret_free(void *p);
/* Size that secret_alloc() was asked for. */
size_t secret_size(const void *p);

DEFINE_TRIVIAL_CLEANUP_FUNC(void *, secret_free);
static inline void secret_freep_char(char **p) {
        secret_free(*p);
}
#define _cleanup_secret_ _cleanup_(secret_freep_char)

/* Makes the process non-dumpable (no core dumps, no ptrace or /proc/PID/mem
 * by other users) and sets its core size limit to 0. Call once at start-up
 * of a program that handles secrets. */
void secret_harden_process(void);

/* Takes a secret from the environment ($PIN, $PASSWORD, …): copies it into
 * a secret buffer (*ret, for secret_free()), wipes the value in the
 * environment block and removes the variable. Returns 1 when it was set,
 * 0 when not (*ret = NULL), -ENOMEM (the variable is gone all the same). */
int secret_getenv_erase(const char *name, char **ret);

/* True when a typed secret is empty or only white space. */
static inline bool isempty_secret(const char *s) {
        for (; s && *s; s++)
                if (*s != ' ' && *s != '\t')
                        return false;
        return true;
}
