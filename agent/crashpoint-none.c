/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "crashpoint.h"

/* A build without -Dtest-hooks: no fault injection. */
void crash_point(const char *step) {
        (void) step;
}
