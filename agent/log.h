/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <syslog.h>

#include "macro.h"

/* Logging. Library code logs at debug level only; the caller that decides
 * logs once. Messages go to stderr (and, when it is available and the target
 * says so, to the kernel log in the initrd). %m expands to strerror(error). */

typedef enum LogTarget {
        LOG_TARGET_STDERR,
        LOG_TARGET_KMSG,        /* initrd without a journal: /dev/kmsg */
} LogTarget;

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_target(LogTarget target);
/* Parses "debug", "info", "notice", "warning", "err" or a number; returns the level or -EINVAL. */
int log_level_from_string(const char *s);
/* Sets the program name printed before every message. */
void log_set_prefix(const char *prefix);

/* Logs at the given level; returns -abs(error) (or 0 when error is 0), so
 * `return log_error_errno(r, "…: %m")` reads naturally. */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

#define log_full_errno(level, error, ...)                                      \
        ({                                                                     \
                int _l_ = (level);                                             \
                int _e_ = (error);                                             \
                (log_get_max_level() >= _l_)                                   \
                        ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__) \
                        : -ERRNO_VALUE(_e_);                                   \
        })
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

/* --log-level=: sets the level named by s, or logs why not and returns
 * -EINVAL. */
int log_set_max_level_from_string(const char *s);
