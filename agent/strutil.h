/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* Replaces *s (freed) with a newly formatted string; on OOM *s becomes NULL.
 * For messages that are never secret. */
void free_and_printf(char **s, const char *fmt, ...) _printf_(2, 3);

/* Parses 1/yes/true/on and 0/no/false/off. Returns 1, 0, or -EINVAL. */
int parse_boolean(const char *s);

/* Parses a decimal number of at most max: digits only (no sign, no
 * spaces). Returns 0, or -EINVAL (*ret untouched). */
int parse_unsigned(const char *s, unsigned max, unsigned *ret);

/* A JSON array of the PCR indexes set in mask, ascending. */
json_object *json_pcr_array(uint32_t mask);

/* A copy of s for a terminal: control characters (ESC among them) as \xNN,
 * backslashes doubled; other bytes (UTF-8) kept. malloc()ed, NULL on OOM. */
char *cescape(const char *s);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);

/* Frees a NULL-terminated array of strings and the strings; accepts NULL,
 * returns NULL. */
char **strv_free(char **l);

/* Whether the NULL-terminated array l has s (ASCII case ignored). */
bool strv_contains_case(char **l, const char *s);
