/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libblkid lookups. */

/* Resolves a LUKS volume UUID to a device node (malloc()ed). Returns 0 or
 * -ENODEV when no such device is known. */
int blockdev_find_by_uuid(const char *uuid, char **ret_path);

/* Lists the device nodes of every LUKS volume libblkid sees (NULL-terminated,
 * free with strv_free()). Returns the count or negative errno. */
int blockdev_list_luks(char ***ret);

/* Resolves "UUID=…", "PARTUUID=…", "LABEL=…" or a path to a device node
 * (malloc()ed). Returns 0 or -ENODEV. */
int blockdev_resolve(const char *spec, char **ret_path);

