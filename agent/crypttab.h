/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* crypttab text and its options: pure code (fuzzed). Which volumes the boot
 * opens, from these entries and the kernel command line, is volumes.h. */

typedef struct VolumeSpec {
        char *device;                   /* device node path (resolved) */
        char *name;                     /* device-mapper name, or NULL for luks-UUID */
        bool reseal;
} VolumeSpec;

void volume_specs_free(VolumeSpec *s, size_t n);

/* Appends a spec (strings copied). Returns 0 or -ENOMEM. */
int specs_add(VolumeSpec **l, size_t *n, const char *device, const char *name, bool reseal);

/* One line of crypttab: name, device, options ("" when absent). */
typedef struct CrypttabEntry {
        char *name, *device, *options;
} CrypttabEntry;

/* Every entry of a crypttab text, whatever its options. */
int crypttab_parse_entries(const char *text, CrypttabEntry **ret, size_t *ret_n);
void crypttab_entries_free(CrypttabEntry *t, size_t n);

/* The UUID a crypttab entry is for, as systemd-cryptsetup-generator finds
 * it: device UUID=…, else device /dev/disk/by-uuid/…, else name luks-…;
 * NULL when none. */
const char *crypttab_entry_uuid(const CrypttabEntry *e);

/* The boolean option key=… of an options string (key alone is true); def
 * when absent. */
bool option_bool(const char *options, const char *key, bool def);

/* Why unlockd leaves a volume with these options alone (noauto,
 * x-unlockd=no, a non-LUKS type), or NULL. */
const char *options_skip_reason(const char *options);

/* Parses crypttab text into specs (unresolved device specs) of the entries
 * unlockd opens, whatever the kernel command line says. Pure, for tests.
 * Returns 0 or negative errno. */
int crypttab_parse(const char *text, VolumeSpec **ret, size_t *ret_n);

