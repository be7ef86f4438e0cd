/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Sends state (e.g. "READY=1", "EXTEND_TIMEOUT_USEC=60000000") to the
 * service manager through $NOTIFY_SOCKET (a path, or "@name" in the
 * abstract namespace), as systemd's notification protocol defines it.
 * Returns 1 when sent, 0 when $NOTIFY_SOCKET is not set, negative errno.
 *
 * Its own, not libsystemd's sd_notify(): unlockd needs nothing else of
 * libsystemd, which with its dependencies would add megabytes to an
 * initramfs that has no systemd (initramfs-tools). */
int notify(const char *state);

/* The same, with the state formatted as by printf(). */
int notifyf(const char *format, ...) __attribute__((format(printf, 1, 2)));
