/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdlib.h>

#include "crashpoint.h"
#include "log.h"
#include "macro.h"

void crash_point(const char *step) {
        const char *e = secure_getenv("UNLOCKD_RESEAL_CRASH_AT");

        if (e && streq(e, step)) {
                log_notice("Crashing at step %s (test hook).", step);
                raise(SIGKILL);
        }
}
