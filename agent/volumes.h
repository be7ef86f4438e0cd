/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypttab.h"

/* Which volumes to unlock, and under which names.
 *
 * From the command line when devices are given; otherwise from the kernel
 * command line and /etc/crypttab (in the initrd, the initrd's own), as
 * systemd-cryptsetup-generator reads them, so that systemd-cryptsetup finds
 * the volumes unlockd opened under the names it expects:
 *   rd.luks.uuid=UUID       (repeatable; "luks-" prefix allowed) only these
 *   rd.luks.name=UUID=NAME  likewise, with a device-mapper name (the last wins)
 *   rd.unlockd.uuid=UUID    likewise, for unlockd only
 *   rd.luks.options=UUID=OPTIONS  replace that volume's crypttab options
 *   rd.luks.options=OPTIONS the options of chosen volumes without an entry
 *   rd.luks.crypttab=no     ignore crypttab
 *   rd.unlockd=no           unlockd does nothing
 *   rd.unlockd.reseal=no    no re-seal job after a manual unlock
 *   rd.unlockd.timeout=SEC  how long to wait for a device (default 90)
 * The command line chooses which volumes; without it, every crypttab entry.
 * The crypttab entry of a chosen volume (device UUID=UUID or
 * /dev/disk/by-uuid/UUID, or name luks-UUID) gives its device, name and
 * options. Options noauto (the last of noauto/auto wins), x-unlockd=no, or
 * another type (plain, swap, tmp, bitlk, tcrypt) mean unlockd leaves the
 * volume alone; x-unlockd-reseal=no turns re-seal off for it. */

/* Called at least every WAIT_ALIVE_USEC while waiting for a device: a
 * sign of life for the service manager or the watchdog. May be NULL. */
typedef void (*WaitAlive)(void *userdata);
#define WAIT_ALIVE_USEC (5 * 1000000ULL)

/* Builds the list. devices/n_devices from the command line (name applies to
 * a single device). Waits (by inotify, bounded) for devices named by UUID,
 * LABEL or PARTUUID to appear, calling alive meanwhile. Returns 0 or
 * negative errno. */
int volumes_collect(char **devices, size_t n_devices, const char *name, WaitAlive alive,
                    VolumeSpec **ret, size_t *ret_n);

/* The value of key=… on the kernel command line ($UNLOCKD_CMDLINE, else
 * /proc/cmdline), as a bool; def when absent or unparsable. */
bool kernel_cmdline_bool(const char *key, bool def);

/* Waits until path exists, by inotify on its nearest existing parent
 * directory, calling alive (may be NULL) at least every WAIT_ALIVE_USEC.
 * Returns 0, -ETIMEDOUT, or negative errno. */
int wait_for_path(const char *path, uint64_t timeout_usec, WaitAlive alive);
