/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_STDERR;
static const char *prefix = NULL;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_target(LogTarget t) {
        target = t;
}

void log_set_prefix(const char *p) {
        prefix = p;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
                [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };
        char *end;
        long l;

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        errno = 0;
        l = strtol(s, &end, 10);
        if (errno != 0 || *end || end == s || l < 0 || l > LOG_DEBUG)
                return -EINVAL;
        return (int) l;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error != 0)
                errno = ERRNO_VALUE(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (target == LOG_TARGET_KMSG) {
                _cleanup_close_ int fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0) {
                        dprintf(fd, "<%d>%s[%d]: %s\n", level, prefix ?: "unlockd", (int) getpid(), buf);
                        goto finish;
                }
        }

        if (max_level >= LOG_DEBUG)
                fprintf(stderr, "%s%s(%s:%d) %s\n", prefix ?: "", prefix ? ": " : "", file, line, buf);
        else
                fprintf(stderr, "%s%s%s\n", prefix ?: "", prefix ? ": " : "", buf);

finish:
        (void) func;
        errno = saved;
        return -ERRNO_VALUE(error);
}

int log_set_max_level_from_string(const char *s) {
        int r = log_level_from_string(s);

        if (r < 0)
                return log_error_errno(r, "Invalid log level: %s", s);
        log_set_max_level(r);
        return 0;
}
