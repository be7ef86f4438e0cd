/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "luks.h"
#include "tpm2.h"

/* The status of one volume (unlockctl status): its TPM2 tokens with whether
 * the current PCRs satisfy each policy, recovery and pending keyslots, and
 * orphans. tpm may be NULL (no TPM). Returns a JSON object (see README). */
json_object *volume_status(struct crypt_device *cd, const char *device, Tpm2Context *tpm, const char *state_dir);

/* The text form of `unlockctl status` for the array of volume_status()
 * objects; every string from a header or a state file is escaped. */
void status_print_text(FILE *f, json_object *vols);

/* unlockctl status: the volumes named (n_args > 0), else those of
 * <state_dir>/state.json, else every LUKS volume libblkid sees, with how
 * each was opened this boot; printed as JSON or text. Returns 0 or negative
 * errno. */
int status_show(char **args, size_t n_args, const char *state_dir, const char *tcti, bool json);

/* The devices of <state_dir>/state.json (this boot's volumes), as a
 * NULL-terminated strv. Returns their number, -ENOENT when there is no
 * state file or it lists no volume, or negative errno. */
/* This boot's state.json, parsed, or NULL. */
json_object *status_state_read(const char *state_dir);

int status_state_devices(const char *state_dir, char ***ret);
