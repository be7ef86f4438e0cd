/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Fault-injection points for the test suites. In a build with
 * -Dtest-hooks=true (crashpoint.c), crash_point(step) kills the process
 * with SIGKILL when $UNLOCKD_RESEAL_CRASH_AT names step (read with
 * secure_getenv()); in every other build (crashpoint-none.c) it does
 * nothing and the variable's name is not even in the binary. */
void crash_point(const char *step);
