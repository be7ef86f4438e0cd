/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Hand-over of a re-seal secret from the initrd to the booted system through
 * the kernel keyring: a "user" key in root's user keyring (which survives
 * switch-root and is reachable from services with private session
 * keyrings), readable by root only, with an expiry. Never a file. */

#define KEYRING_RESEAL_TIMEOUT_SEC (24 * 60 * 60)

/* Stores data under description, replacing a key of the same name, with
 * possessor/user-only permissions and an expiry of timeout_sec. Returns 0. */
int keyring_store(const char *description, const void *data, size_t size, unsigned timeout_sec);

/* Reads a key into a secret buffer. Returns 0, -ENOKEY when there is none
 * (or it expired or was revoked), or negative errno. */
int keyring_read(const char *description, void **ret, size_t *ret_size);

/* Removes a key (invalidates it). Returns 0, also when there was none. */
int keyring_drop(const char *description);
